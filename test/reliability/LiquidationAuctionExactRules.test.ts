/**
 * Rules of the liquidation auction, its arithmetic and the insurance fund that no other test held
 * (review round 97: small bugs put one at a time into `LiquidationAuction`, `LiquidationMath` and
 * `InsuranceFund`; the comment above each test names the mutant it catches; docs/reliability.md rows 240–242).
 * Each test passes on the contracts as written and fails with its mutant in.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import type { ContractTransactionResponse } from "ethers";
import {
  MarginMode,
  WAD,
  deploySystem,
  eventOf,
  fundInsurance,
  openAccount,
  wad,
  type System,
} from "../shared/system";
import { aliceLongTwoEth, mineAt, trade, wethDebtorSystem } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { mintAndApprove } from "../shared/tokens";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n; // one USDC unit in quote WAD
const D0 = wad("0.02");
const DMAX = wad("0.10");
const PENALTY = wad("0.01");
const DURATION = 1800n;

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/** LiquidationAuction.test's book (`aliceLongTwoEth`), ETH then at `price`. */
const aliceAt = (price: string) => aliceLongTwoEth(price);
const crashed = () => aliceAt("2650");

/** An owner's cure: Alice deposits `amount` USDC units into her account. */
async function topUp(sys: System, alice: bigint, amount: bigint): Promise<void> {
  await sys.usdc.mint(sys.alice, amount);
  await sys.usdc.connect(sys.alice).approve(sys.vault, amount);
  await sys.vault.connect(sys.alice).deposit(alice, sys.usdc, amount);
}

/** The AuctionBid event of a mined bid: [fraction, payment, penalty, discount]. */
async function bidEvent(sys: System, tx: Promise<ContractTransactionResponse>): Promise<bigint[]> {
  const receipt = await (await tx).wait();
  const ev = eventOf(receipt, sys.auction, "AuctionBid");
  return [ev.args.fraction, ev.args.payment, ev.args.penalty, ev.args.discount] as bigint[];
}

/** `fixture` with Alice's auction started by the keeper at `start`. */
async function started<T extends { sys: System; alice: bigint }>(fixture: () => Promise<T>) {
  const f = await fixture();
  await f.sys.auction.connect(f.sys.keeper).startAuction(f.alice);
  return { ...f, start: BigInt(await time.latest()) };
}
const crashedStarted = () => started(crashed);

/**
 * Alice's 0.5 WETH (1,500 USD at ETH 3,000) backs a short 0.1 BTC (~60,000); BTC at `btc`, her auction
 * started by the keeper; the keeper's account is empty and lets the auction trade it.
 */
async function wethBookStarted(btc: string) {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("0.5")]]);
  const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS);
  await sys.accounts.connect(sys.keeper).approve(sys.auction, keeper);
  // The short, the move and the start in one second, whatever the wall clock does: BTC's funding runs
  // by the second from the short on.
  const opened = BigInt(await time.latest()) + 1n;
  for (const send of [
    () => trade(sys.perps, sys.alice, alice, sys.markets.BTC, -wad("0.1")),
    () => setFeedPrice(sys.feeds.BTC, btc),
    () => sys.auction.connect(sys.keeper).startAuction(alice),
  ]) {
    await time.setNextBlockTimestamp(opened);
    await send();
  }
  return { sys, alice, keeper, start: opened };
}
const wethBook74k = () => wethBookStarted("74000");

/** `wethBookStarted` at BTC 75,000, absorbed by the backstop (WETH included) after the duration. */
async function backstopHoldsWeth() {
  const f = await wethBookStarted("75000");
  await mineAt(f.sys, f.start + DURATION);
  await time.setNextBlockTimestamp(f.start + DURATION);
  await f.sys.auction.absorb(f.alice);
  return { ...f, absorbedAt: BigInt(await time.latest()) };
}

/**
 * `wethDebtorSystem`'s debtor (Bob: 10 WETH, ~26,050 USDC of debt, no position) with ETH at 2,500: its
 * WETH is worth exactly 25,000 USDC, and it is insolvent by its debt less that. The keeper's account
 * holds 5,000 USDC, the fund 10,000; the auction has run its duration.
 */
async function insolventDebtorAtEnd() {
  const sys = await wethDebtorSystem();
  const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  await fundInsurance(sys, 10_000n * USDC);
  await setFeedPrice(sys.feeds.ETH, "2500");
  await sys.auction.connect(sys.keeper).startAuction(sys.debtorId);
  const start = BigInt(await time.latest());
  await mineAt(sys, start + DURATION);
  return { sys, debtor: sys.debtorId, keeper, start };
}

describe("LiquidationAuction, LiquidationMath and InsuranceFund: exact rules", function () {
  describe("bid and quoteBid on a solvent book", function () {
    // M57 (a bid is refused when its payment equals its limit: `payment >= maxPayment`). One second
    // after the start, d = 0.02 + ⌊0.08·1/1800⌋ = 0.020044444444444444; the restoring fraction and its
    // payment are the formula's: f = ⌈(IM − E)·1e18 / (IM − E + ⌊M·(1 − d − p)⌋)⌉,
    // payment = ⌈⌈M·f⌉·(1 − d) / 1e30⌉ USDC units. A limit of exactly that payment goes through.
    it("fills a bid whose limit is exactly its payment", async function () {
      const { sys, alice, bob, start } = await loadFixture(crashedStarted);
      const h = await sys.engine.health(alice);
      const d = D0 + ((DMAX - D0) * 1n) / DURATION;
      expect(d).to.equal(20_044_444_444_444_444n);
      const shortfall = h.initialRequirement - h.equityInitial;
      const f = ceilDiv(shortfall * WAD, shortfall + (h.equityMark * (WAD - d - PENALTY)) / WAD);
      const payment = ceilDiv(ceilDiv(h.equityMark * f, WAD) * (WAD - d), WAD * QUOTE_UNIT);
      await time.setNextBlockTimestamp(start + 1n);
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, WAD, payment))
        .to.emit(sys.auction, "AuctionBid")
        .withArgs(alice, bob, f, payment, anyValue, d);
    });

    // M50 (quoteBid does not cap the fraction at the restoring one). The preview of a whole-book bid
    // fills what a bid would: f = ⌈(IM − E)·1e18 / (IM − E + ⌊M·(1 − d − p)⌋)⌉ at the discount now, < 1.
    it("quotes a whole-book bid capped at the restoring fraction, as the bid fills it", async function () {
      const { sys, alice, bob } = await loadFixture(crashedStarted);
      const h = await sys.engine.health(alice);
      const d = await sys.auction.currentDiscount(alice);
      const shortfall = h.initialRequirement - h.equityInitial;
      const f = ceilDiv(shortfall * WAD, shortfall + (h.equityMark * (WAD - d - PENALTY)) / WAD);
      expect(f).to.be.lessThan(WAD / 2n);
      const payment = ceilDiv(ceilDiv(h.equityMark * f, WAD) * (WAD - d), WAD * QUOTE_UNIT);
      expect(await sys.auction.quoteBid(alice, WAD)).to.deep.equal([f, payment, 0n]);
      // The same second, a bid fills it.
      await time.setNextBlockTimestamp(await time.latest());
      expect(await bidEvent(sys, sys.auction.connect(sys.bob).bid(alice, bob, WAD, payment))).to.deep.equal([
        f,
        payment,
        ceilDiv(ceilDiv(h.equityMark * f, WAD) * PENALTY, WAD * QUOTE_UNIT),
        d,
      ]);
    });

    // M48 (quoteBid previews a bid on an account that is no longer liquidatable): the bid would revert
    // AccountHealthy, so the preview does, with the same arguments.
    it("refuses to quote a bid on a cured account, as the bid refuses it", async function () {
      const { sys, alice, bob } = await loadFixture(crashedStarted);
      await topUp(sys, alice, 2_000n * USDC);
      const h = await sys.engine.health(alice);
      await expect(sys.auction.quoteBid(alice, WAD))
        .to.be.revertedWithCustomError(sys.auction, "AccountHealthy")
        .withArgs(alice, h.equityMaintenance, h.maintenanceRequirement);
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256))
        .to.be.revertedWithCustomError(sys.auction, "AccountHealthy")
        .withArgs(alice, h.equityMaintenance, h.maintenanceRequirement);
    });

    // M58 (the penalty's slice f·M is rounded down). penalty = ⌈⌈M·f/1e18⌉·0.01 / 1e12⌉ USDC units: the
    // two roundings part only when ⌊M·f/1e18⌋ is a whole multiple of 1e14 wei (one penalty unit) and
    // M·f/1e18 is not whole. f below is the smallest fraction ≥ 1% with M·f ∈ [k·1e32, k·1e32 + 1e18),
    // not exact: rounded up, the slice is k·1e14 + 1 wei and its penalty k + 1 units; down, k.
    it("rounds the penalty's slice up before applying the rate, so the account pays the last unit", async function () {
      const { sys, alice, bob } = await loadFixture(crashedStarted);
      const mark = (await sys.engine.health(alice)).equityMark; // USDC only, at par: the auction's mark
      const unit = 10n ** 32n; // one penalty unit of M·f: 1e14 wei of slice, times 1e18
      let k = ceilDiv(mark * wad("0.01"), unit);
      let f = ceilDiv(k * unit, mark);
      while ((mark * f) % unit >= WAD || (mark * f) % WAD === 0n) {
        k += 1n;
        f = ceilDiv(k * unit, mark);
      }
      expect(f).to.be.lessThan(wad("0.05")); // below the restoring fraction: filled as asked
      const [filled, , penalty] = await bidEvent(
        sys,
        sys.auction.connect(sys.bob).bid(alice, bob, f, ethers.MaxUint256),
      );
      expect(filled).to.equal(f);
      expect(penalty).to.equal(k + 1n);
    });

    // M65 (what was paid in is scaled by 1 − f even while it is held back). Held back (the book without
    // it still worth more than 0), it stays whole: paidIn after the second bid = paidIn₁ + payment₂ −
    // penalty₂, not paidIn₁·(1 − f₂) + payment₂ − penalty₂.
    it("keeps what earlier bids paid in whole while it is held back, adding the next payment less its penalty", async function () {
      const { sys, alice, bob } = await loadFixture(crashedStarted);
      const [f1, pay1, pen1] = await bidEvent(
        sys,
        sys.auction.connect(sys.bob).bid(alice, bob, wad("0.05"), ethers.MaxUint256),
      );
      expect(f1).to.equal(wad("0.05"));
      const paid1 = (await sys.auction.auctions(alice)).paidIn;
      expect(paid1).to.equal(pay1 - pen1);
      const [f2, pay2, pen2] = await bidEvent(
        sys,
        sys.auction.connect(sys.bob).bid(alice, bob, wad("0.05"), ethers.MaxUint256),
      );
      expect(f2).to.equal(wad("0.05"));
      expect((await sys.auction.auctions(alice)).paidIn).to.equal(paid1 + pay2 - pen2);
    });

    // M74 (the end leaves paidIn): the next auction of the account would hold back quote no bid of it
    // paid in. After a partial bid and the owner's cure, the ended auction's record is all zero.
    it("clears what was paid in when the auction ends", async function () {
      const { sys, alice, bob } = await loadFixture(crashedStarted);
      await sys.auction.connect(sys.bob).bid(alice, bob, wad("0.05"), ethers.MaxUint256);
      expect((await sys.auction.auctions(alice)).paidIn).to.be.greaterThan(0n);
      await topUp(sys, alice, 2_000n * USDC);
      await sys.auction.endAuction(alice);
      const a = await sys.auction.auctions(alice);
      expect([a.startTime, a.active, a.paidIn, a.deficit]).to.deep.equal([0n, false, 0n, 0n]);
      expect(a.endedAt).to.equal(await time.latest());
    });

    // M64 (a bid that leaves the auction open does not update its deficit): recorded at ETH 2,300
    // (updateDeficit), the deficit leaves the sum with the first bid after the book is back above water.
    it("clears a recorded deficit with a partial bid once the book is solvent again", async function () {
      const { sys, alice, bob } = await loadFixture(crashedStarted);
      await setFeedPrice(sys.feeds.ETH, "2300");
      await sys.auction.updateDeficit(alice);
      const deficit = await sys.auction.pendingDeficit();
      expect(deficit).to.be.greaterThan(0n);
      await setFeedPrice(sys.feeds.ETH, "2650");
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, wad("0.05"), ethers.MaxUint256))
        .to.emit(sys.auction, "PendingDeficitUpdated")
        .withArgs(alice, 0n, 0n);
      expect(await sys.auction.isFrozen(alice)).to.equal(true);
      expect(await sys.auction.pendingDeficit()).to.equal(0n);
    });
  });

  describe("views and the sweep at rest", function () {
    // M109 (quoteBid previews a bid of fraction 0) and M108 (currentDiscount answers for an account with
    // no auction: its start 0 reads as a discount long at dmax). Both refuse as the bid does.
    it("refuses to quote a fraction of 0 or the discount of an account not in auction", async function () {
      const { sys, alice, bob } = await loadFixture(crashedStarted);
      await expect(sys.auction.quoteBid(alice, 0n))
        .to.be.revertedWithCustomError(sys.auction, "InvalidFraction")
        .withArgs(0n);
      await expect(sys.auction.quoteBid(alice, WAD + 1n))
        .to.be.revertedWithCustomError(sys.auction, "InvalidFraction")
        .withArgs(WAD + 1n);
      await expect(sys.auction.currentDiscount(bob))
        .to.be.revertedWithCustomError(sys.auction, "AuctionNotActive")
        .withArgs(bob);
      expect(await sys.auction.currentDiscount(alice)).to.equal(D0);
    });

    // M105 (the sweep goes on with a zero balance): the new system's backstop holds nothing, so a sweep
    // moves nothing and says nothing.
    it("sweeps nothing, and emits nothing, from an empty backstop", async function () {
      const sys = await loadFixture(deploySystem);
      const backstop = await sys.auction.backstopAccountId();
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(0n);
      expect(await sys.auction.sweepBackstopQuote.staticCall()).to.equal(0n);
      await expect(sys.auction.sweepBackstopQuote()).to.not.emit(sys.auction, "BackstopQuoteSwept");
    });
  });

  describe("buyBackstopCollateral", function () {
    // M36 (a buyer whose cash equals the payment is refused: `cash <= payment`). A duration after the
    // absorb the discount is dmax: payment = ⌈value·0.9 / 1e30⌉ USDC units for the backstop's WETH
    // (value = its USD WAD at the oracle). Carol's account holds exactly that and buys it all: 0 left.
    it("sells to a buyer whose quote balance is exactly the payment", async function () {
      const { sys, absorbedAt } = await loadFixture(backstopHoldsWeth);
      const backstop = await sys.auction.backstopAccountId();
      const held = await sys.vault.balanceOf(backstop, sys.weth);
      expect(held).to.be.greaterThan(0n);
      await mineAt(sys, absorbedAt + DURATION);
      const value = await sys.vault.tokenValue(sys.weth, held);
      const payment = ceilDiv(value * (WAD - DMAX), WAD * QUOTE_UNIT);
      expect(await sys.auction.backstopCollateralQuote(sys.weth, held)).to.deep.equal([payment, DMAX]);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, payment]]);
      await expect(sys.auction.connect(sys.carol).buyBackstopCollateral(carol, sys.weth, held, payment))
        .to.emit(sys.auction, "BackstopCollateralSold")
        .withArgs(carol, await sys.weth.getAddress(), held, payment, DMAX);
      expect(await sys.vault.balanceOf(carol, sys.usdc)).to.equal(0n);
      expect(await sys.vault.balanceOf(carol, sys.weth)).to.equal(held);
    });
    // M43 (the sale's USD value is rounded down before its conversion to quote). One second after the
    // absorb, d = ⌊0.1·1/1800⌋ = 55,555,555,555,555 wei; 167,675,981,999 wei of WETH at 3,000 are worth
    // 503,027,945,997,000 wei, less d: 503,027,945,997,000·(1e18 − d)/1e18 = 503,000,000,000,000.1669…
    // USD WAD. Rounded up (the buyer's), that is 503e12 + 1 and costs ⌈(503e12 + 1)/1e12⌉ = 504 USDC
    // units; rounded down it would cost 503.
    it("rounds the sale's discounted value up before converting it, so the buyer pays the last unit", async function () {
      const { sys, absorbedAt } = await loadFixture(backstopHoldsWeth);
      const amount = 167_675_981_999n;
      const d = DMAX / DURATION;
      expect(d).to.equal(55_555_555_555_555n);
      await mineAt(sys, absorbedAt + 1n);
      const value = await sys.vault.tokenValue(sys.weth, amount);
      expect(value).to.equal(503_027_945_997_000n);
      expect((value * (WAD - d)) / WAD).to.equal(503n * 10n ** 12n); // floored: exactly 503 units
      expect((value * (WAD - d)) % WAD).to.be.greaterThan(0n); // with a remainder
      expect(await sys.auction.backstopCollateralQuote(sys.weth, amount)).to.deep.equal([504n, d]);
    });

    // M39 (a sale does not end with the sweep): the backstop, its BTC short unwound (1,501.124925 USDC
    // of debt left) and 5,000 USDC deposited into it, holds no position, so the sale's sweep moves all
    // its quote to the pool's account: 3,498.875075 + the payment, 0.5 WETH·3,000·0.9 = 1,350 USDC.
    it("ends a sale with the sweep: a backstop without positions sends the pool all its quote", async function () {
      const { sys, absorbedAt } = await loadFixture(backstopHoldsWeth);
      const backstop = await sys.auction.backstopAccountId();
      const size = await sys.perps.positionSize(backstop, sys.markets.BTC);
      const deadline = BigInt(await time.latest()) + 600n;
      // In the absorb's second, whatever the wall clock does: BTC's funding runs by the second.
      await time.setNextBlockTimestamp(absorbedAt);
      await sys.auction.unwindBackstop(sys.perps, sys.markets.BTC, -size, ethers.MaxUint256, deadline);
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(-1_501_124_925n);
      await mintAndApprove(sys.usdc, sys.deployer, await sys.vault.getAddress(), 5_000n * USDC);
      await sys.vault.deposit(backstop, sys.usdc, 5_000n * USDC);
      const held = await sys.vault.balanceOf(backstop, sys.usdc);
      expect(held).to.equal(3_498_875_075n);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 2_000n * USDC]]);
      await mineAt(sys, absorbedAt + DURATION);
      const poolQuote = await sys.vault.balanceOf(sys.poolAccountId, sys.usdc);
      const payment = 1_350n * USDC;
      await expect(sys.auction.connect(sys.carol).buyBackstopCollateral(carol, sys.weth, wad("0.5"), payment))
        .to.emit(sys.auction, "BackstopQuoteSwept")
        .withArgs(held + payment);
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(0n);
      expect(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)).to.equal(poolQuote + held + payment);
    });
  });

  describe("bidAndClose", function () {
    // M15 (bidAndClose never checks the bidder's IM): the keeper, flat after its closes, still holds the
    // slice's WETH against the quote debt its payment and the short's loss ran up. At the oracle it
    // gained f·M·d less costs (the loss check passes), but WETH counts 0.9 of its value at IM. With
    // M = 86.70 USD (the book's mark) and W = 1,500 (its WETH), the restoring f ≈ 0.91 leaves the keeper
    // f·W ≈ 1,360 of WETH (1,224 at IM) against ≈ f·(W − M·d) ≈ 1,359 of debt: equity_IM ≈ −135 USD.
    it("checks the bidder's IM once it is flat but holds the slice's collateral on quote debt", async function () {
      const { sys, alice, keeper } = await loadFixture(wethBook74k);
      expect((await sys.engine.health(alice)).equityMark).to.equal(wad("86.70015"));
      await expect(
        sys.auction.connect(sys.keeper).bidAndClose(alice, keeper, WAD, ethers.MaxUint256),
      ).to.be.revertedWithCustomError(sys.engine, "InsufficientMargin");
    });

    // Round 39's rule (row 241: the mutant that always checks the bidder's IM was caught only by a gas
    // ceiling): a keeper flat after its closes, with quote ≥ 0, holds nothing at risk, so its collateral
    // is not priced. One satoshi of WBTC in its account, the BTC feed's last round two days old, and the
    // ETH book still goes: the check would have read the BTC feed and reverted with StalePrice.
    it("prices no collateral of a bidder left with nothing at risk: a stale feed of a token it holds does not stop its take", async function () {
      const { sys, alice, keeper } = await loadFixture(crashedStarted);
      await sys.accounts.connect(sys.keeper).approve(sys.auction, keeper);
      await mintAndApprove(sys.wbtc, sys.keeper, await sys.vault.getAddress(), 1n);
      await sys.vault.connect(sys.keeper).deposit(keeper, sys.wbtc, 1n);
      const [roundId, answer] = await sys.feeds.BTC.latestRoundData();
      const twoDaysAgo = BigInt(await time.latest()) - 2n * 86_400n;
      await sys.feeds.BTC.updateRoundData(roundId + 1n, answer, twoDaysAgo, twoDaysAgo);
      await expect(sys.vault.collateralValue(keeper)).to.be.revertedWithCustomError(sys.router, "StalePrice");
      await expect(
        sys.auction.connect(sys.keeper).bidAndClose(alice, keeper, WAD, ethers.MaxUint256),
      ).to.emit(sys.auction, "AuctionBid");
      expect(await sys.engine.accountMarkets(keeper)).to.deep.equal([]);
      expect(await sys.vault.balanceOf(keeper, sys.usdc)).to.be.greaterThan(0n);
    });

    // M18 (the loss check refuses a gain of 0 too: `gain <= 0`): the debtor holds no position, so its MM
    // is 0 and the payout at the duration is its deficit exactly, debt − 25,000 USDC (10 WETH at 2,500,
    // a whole number of units). The keeper takes the debt and the payout: its quote moves by
    // −debt + (debt − 25,000) = −25,000.000000 USDC, its WETH by +10 (25,000 USD): a gain of exactly 0.
    it("lets a take whose gain at the oracle is exactly 0 through: only a loss is refused", async function () {
      const { sys, debtor, keeper } = await loadFixture(insolventDebtorAtEnd);
      const h = await sys.engine.health(debtor);
      expect(h.maintenanceRequirement).to.equal(0n);
      const deficit = ceilDiv(-h.equityMark, QUOTE_UNIT);
      expect(deficit * QUOTE_UNIT).to.equal(-h.equityMark); // whole units
      await time.setNextBlockTimestamp(await time.latest());
      await expect(sys.auction.connect(sys.keeper).bidAndClose(debtor, keeper, WAD, ethers.MaxUint256))
        .to.emit(sys.auction, "InsolvencyCovered")
        .withArgs(debtor, keeper, deficit, deficit, 0n);
      expect(await sys.vault.balanceOf(keeper, sys.usdc)).to.equal(-20_000n * USDC); // 5,000 − 25,000
      expect(await sys.vault.balanceOf(keeper, sys.weth)).to.equal(wad("10"));
    });
  });
});
