/**
 * Rules of the liquidation auction that round 97's mutants left unheld and no other test held (review
 * round 100: the 36 mutants of `LiquidationAuction`, `LiquidationMath` and `InsuranceFund` round 97 did
 * not run, run one at a time against the suite; the comment above each test names the mutant it catches).
 * Each test passes on the contracts as written and fails with its mutant in. Funding is off and every
 * amount that moves with time is read at a set timestamp, so none depends on how long the test took.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyUint } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import type { ContractTransactionResponse } from "ethers";
import {
  DEFAULT_AUCTION_PARAMS,
  MarginMode,
  deploySystem,
  eventOf,
  openAccount,
  wad,
  type System,
} from "../shared/system";
import { marketParams, mineAt, trade, wethDebtorSystem } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";

const USDC = 10n ** 6n;
const WAD = 10n ** 18n;
const DURATION = 1800n;

/**
 * LiquidationAuction.test's book: Alice long 2 ETH (~3,006 with the skew premium) on 1,000 USDC, funding
 * off; Bob has 20,000 USDC. ETH at 2,650, Alice's auction started by the keeper at `start`.
 */
async function crashedStarted() {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2"));
  await setFeedPrice(sys.feeds.ETH, "2650");
  await sys.auction.connect(sys.keeper).startAuction(alice);
  return { sys, alice, bob, start: BigInt(await time.latest()) };
}

/** `crashedStarted`, absorbed by the backstop a duration after the start: it holds a long slice and USDC. */
async function backstopHoldsEthLong() {
  const f = await crashedStarted();
  await mineAt(f.sys, f.start + DURATION);
  await f.sys.auction.absorb(f.alice);
  return f;
}

/**
 * `wethDebtorSystem`'s debtor (Bob: 10 WETH, ~26,050 USDC of debt, no position) with ETH at 2,500, its
 * WETH worth 25,000 USDC: insolvent by its debt less that. Its auction started by the keeper at `start`.
 */
async function insolventDebtorStarted() {
  const sys = await wethDebtorSystem();
  await setFeedPrice(sys.feeds.ETH, "2500");
  await sys.auction.connect(sys.keeper).startAuction(sys.debtorId);
  return { sys, debtor: sys.debtorId, start: BigInt(await time.latest()) };
}

/** The AuctionBid event of a mined bid: [fraction, payment, penalty, discount]. */
async function bidEvent(sys: System, tx: Promise<ContractTransactionResponse>): Promise<bigint[]> {
  const receipt = await (await tx).wait();
  const ev = eventOf(receipt, sys.auction, "AuctionBid");
  return [ev.args.fraction, ev.args.payment, ev.args.penalty, ev.args.discount] as bigint[];
}

describe("LiquidationAuction: the rules round 97's unrun mutants showed unheld", function () {
  describe("startAuction's event", function () {
    // M07's replacement (AuctionStarted reports equity_IM where equity_MM is documented). Every other
    // test starts books on USDC alone, weighted 1 at both margins, where the two equities are equal.
    // Alice's 0.5 WETH (1,500 USD at 3,000) backs a short 0.1 BTC (funding off); at BTC 74,000 her WETH counts
    // at its maintenance weight 0.95 in equity_MM and at its initial weight 0.90 in equity_IM: her
    // mark is 96.70015 USD, equity_MM 96.70015 − 75 = 21.70015, equity_IM 21.70015 − 75 = −53.29985
    //. The mutant reports −53.29985.
    it("reports the account's maintenance equity and requirement, not its initial equity", async function () {
      const sys = await loadFixture(deploySystem);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("0.5")]]);
      await sys.perps.setMarketParams(sys.markets.BTC, marketParams({ maxFundingVelocity: 0n }));
      await trade(sys.perps, sys.alice, alice, sys.markets.BTC, -wad("0.1"));
      await setFeedPrice(sys.feeds.BTC, "74000");
      const h = await sys.engine.health(alice);
      expect(h.equityMaintenance - h.equityInitial).to.equal(wad("75")); // 1,500·(0.95 − 0.90)
      expect(h.equityMark - h.equityMaintenance).to.equal(wad("75")); // 1,500·(1 − 0.95)
      expect(h.equityMaintenance).to.equal(wad("21.70015"));
      expect(h.equityInitial).to.equal(-wad("53.29985"));
      await expect(sys.auction.connect(sys.keeper).startAuction(alice))
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(alice, sys.keeper.address, h.equityMaintenance, h.maintenanceRequirement, anyUint);
    });
  });

  describe("what earlier bids paid in, once the book without it is under water", function () {
    // M66 (what was paid in is kept whole when the bid sells it with the book: `mulDiv(paidIn, WAD,
    // WAD)`). Alice's mark at 2,650 is M0 = 280.997 USD. Bid 1 (5%, one second in, d1 = 0.02 +
    // ⌊0.08/1800⌋ = 0.020044444444444444): slice ⌈M0·0.05⌉ = 14.04985 USD, payment ⌈14,049,850 units ·
    // (1 − d1)⌉ = ⌈13,768,228.56⌉ = 13,768,229, penalty ⌈140,498.5⌉ = 140,499, paidIn 13,627,730.
    // At ETH 2,505 the account's mark is 0.95·280.997 + 13.627730 − 1.9·145 = 5.07488 USD, below what was
    // paid in, so bid 2 holds nothing back (held = 0) and sells the paid-in quote with the slice. Bid 2
    // (5%, at the duration, d = 0.10): slice 0.253744 USD, payment ⌈253,744·0.9⌉ = ⌈228,369.6⌉ = 228,370,
    // penalty ⌈2,537.44⌉ = 2,538. What stays held back is the 95% the slice did not take:
    // ⌊13,627,730·0.95⌋ = 12,946,343, plus 228,370 − 2,538: paidIn = 13,172,175 units. The mutant keeps
    // it whole: 13,627,730 + 225,832 = 13,853,562, and would hold back 0.681387 USDC bid 2 sold.
    it("scales what was paid in by 1 − f when a bid sells it with the book, and adds the payment less its penalty", async function () {
      const { sys, alice, bob, start } = await loadFixture(crashedStarted);
      expect((await sys.engine.health(alice)).equityMark).to.equal(wad("280.997"));
      await time.setNextBlockTimestamp(start + 1n);
      expect(
        await bidEvent(sys, sys.auction.connect(sys.bob).bid(alice, bob, wad("0.05"), ethers.MaxUint256)),
      ).to.deep.equal([wad("0.05"), 13_768_229n, 140_499n, 20_044_444_444_444_444n]);
      expect((await sys.auction.auctions(alice)).paidIn).to.equal(13_627_730n);

      await setFeedPrice(sys.feeds.ETH, "2505");
      expect((await sys.engine.health(alice)).equityMark).to.equal(wad("5.07488")); // < 13.627730 USDC
      await time.setNextBlockTimestamp(start + DURATION);
      expect(
        await bidEvent(sys, sys.auction.connect(sys.bob).bid(alice, bob, wad("0.05"), ethers.MaxUint256)),
      ).to.deep.equal([wad("0.05"), 228_370n, 2_538n, wad("0.10")]);
      const a = await sys.auction.auctions(alice);
      expect(a.active).to.equal(true);
      expect(a.paidIn).to.equal(12_946_343n + 228_370n - 2_538n);
    });
    // M76 (what was paid in is held back also when the book is worth exactly that: `mark >= paidIn`).
    // After bid 1 above, Alice holds 1.9 ETH and her mark at 2,650 is 0.95·280.997 + 13.627730 =
    // 280.57488 USD. At ETH 2,650 − 266.94715/1.9 = 2,509.5015 it is 280.57488 − 1.9·140.4985 =
    // 13.62773 USD: exactly paidIn·1e12 wei. The book without the paid-in quote is worth 0, so bid 2
    // sells it with the book (held = 0, what a book under water gets): slice ⌈13.62773·0.05⌉ =
    // 0.6813865 USD, payment ⌈681,386.5·0.9⌉ = ⌈613,247.85⌉ = 613,248 units, penalty ⌈6,813.865⌉ =
    // 6,814, paidIn ⌊13,627,730·0.95⌋ + 613,248 − 6,814 = 13,552,777. The mutant holds the 13.62773 back
    // and sells a book worth 0: a slice for a payment of 0.
    it("sells what was paid in with the book when the book is worth exactly that", async function () {
      const { sys, alice, bob, start } = await loadFixture(crashedStarted);
      await time.setNextBlockTimestamp(start + 1n);
      await sys.auction.connect(sys.bob).bid(alice, bob, wad("0.05"), ethers.MaxUint256);
      expect((await sys.auction.auctions(alice)).paidIn).to.equal(13_627_730n);
      await setFeedPrice(sys.feeds.ETH, "2509.5015");
      expect((await sys.engine.health(alice)).equityMark).to.equal(13_627_730n * 10n ** 12n);
      await time.setNextBlockTimestamp(start + DURATION);
      expect(
        await bidEvent(sys, sys.auction.connect(sys.bob).bid(alice, bob, wad("0.05"), ethers.MaxUint256)),
      ).to.deep.equal([wad("0.05"), 613_248n, 6_814n, wad("0.10")]);
      expect((await sys.auction.auctions(alice)).paidIn).to.equal(12_946_343n + 613_248n - 6_814n);
    });
  });

  describe("the insolvent payout in a depeg", function () {
    // M81 (the payout's premium dmax·MM is paid in quote as if the quote were worth 1 USD). Alice's
    // book at ETH 2,300 is under water by 280.997 − 2·350 = 419.003 USDC (positions settle in quote
    // 1:1, so the deficit in quote does not move with the quote's price). With USDC at 0.95 and the
    // auction past its duration (ramp 1), the payout is ⌊(419.003 USDC + 0.10·MM / 0.95)⌋ in units:
    // the premium's USD bought at 0.95. MM = 345.834423657279459 USD, so the premium is 34.583442365727945900
    // USD = 36.403623542871522 USDC and the payout 455,406,623 units (no cost: it exceeds the deficit).
    // The mutant pays ⌊419.003 + 34.583442…⌋ = 453,586,442 units, 1.820181 USDC short.
    it("pays the premium's USD in quote at the quote's price", async function () {
      const { sys, alice, start } = await loadFixture(crashedStarted);
      await setFeedPrice(sys.feeds.ETH, "2300");
      await mineAt(sys, start + DURATION);
      await setFeedPrice(sys.feeds.USDC, "0.95");
      const h = await sys.engine.health(alice);
      expect(h.maintenanceRequirement).to.equal(345_834_423_657_279_459_000n);
      // (419.003e18 + ⌊⌊MM·0.10⌋·1e18 / 0.95e18⌋) / 1e12 = (419.003e18 + 36.403623542871522e18) / 1e12
      expect(await sys.auction.quoteBid(alice, WAD)).to.deep.equal([WAD, 0n, 455_406_623n]);
    });
  });

  describe("the restoring fraction in a depeg", function () {
    // M78 (the restoring fraction counts the sold book's mark as USD, ignoring the quote's price). At
    // the duration (d = 0.10, p = 0.01) with USDC at 0.95, a bid pays for Alice's book in USDC worth
    // 0.95 USD each: the proceeds the margin counts are ⌊M·0.95⌋·0.89, M = 280.997 USDC, and
    // f = ⌈(IM − E)·1e18 / (IM − E + ⌊⌊M·0.95⌋·0.89⌋)⌉. The mutant counts M·0.89 USD and stops short.
    it("values the payment at the quote's price when it caps a bid at the restoring fraction", async function () {
      const { sys, alice, start } = await loadFixture(crashedStarted);
      await mineAt(sys, start + DURATION);
      await setFeedPrice(sys.feeds.USDC, "0.95");
      const h = await sys.engine.health(alice);
      const shortfall = h.initialRequirement - h.equityInitial;
      const markUsd = (wad("280.997") * wad("0.95")) / WAD; // 266.94715 USD
      const proceeds = (markUsd * (WAD - wad("0.10") - wad("0.01"))) / WAD;
      const f = (shortfall * WAD + shortfall + proceeds - 1n) / (shortfall + proceeds);
      const [filled] = await sys.auction.quoteBid(alice, WAD);
      expect(filled).to.equal(f);
      expect(filled).to.be.lessThan(WAD);
    });
  });

  describe("the insolvent payout's ramp", function () {
    // M96 (the ramp elapsed/duration is rounded up). The debtor holds no position (MM = 0), so the
    // payout is ⌊n·1e12·ramp / 1e30⌋ for a deficit of n whole units. 200 s into the auction
    // ramp = ⌊200·1e18/1800⌋ = 111,111,111,111,111,111 (1/9 less 1/9 wei); for n divisible by 9,
    // n·ramp/1e18 = n/9 − n/(9·1e18), just below n/9: the payout is n/9 − 1 units. Rounded up, the ramp
    // is 111,…,112 and the payout n/9. The price of its 10 WETH sets n mod 9: ten feed steps (1e-7 USD)
    // move the deficit by one unit; the first pass reads n, the second sets the price that makes it a
    // multiple of 9, each read at the same timestamps so the debt's interest is the same.
    it("rounds the payout's ramp down: 200 s into 1,800, a deficit of 9k units is paid k − 1", async function () {
      const deficitAt200 = async (stepsUp: bigint) => {
        const f = await loadFixture(insolventDebtorStarted);
        await time.setNextBlockTimestamp(f.start + 100n);
        await f.sys.feeds.ETH.updateAnswer(250_000_000_000n + 10n * stepsUp);
        await mineAt(f.sys, f.start + 200n);
        const h = await f.sys.engine.health(f.debtor);
        expect(h.maintenanceRequirement).to.equal(0n);
        expect(-h.equityMark % 10n ** 12n).to.equal(0n); // whole units
        return { ...f, n: -h.equityMark / 10n ** 12n };
      };
      const { n: n0 } = await deficitAt200(0n);
      const { sys, debtor, n } = await deficitAt200(n0 % 9n);
      expect(n % 9n).to.equal(0n);
      expect(await sys.auction.quoteBid(debtor, WAD)).to.deep.equal([WAD, n - (n / 9n - 1n), n / 9n - 1n]);
    });
  });

  describe("the backstop's sweep", function () {
    // M106 (the sweep goes on when the surplus is worth less than one quote unit: `amount == 0` not
    // returned). The absorbed slice (≈1.0188 ETH long, 373.942189 USDC) has an IM surplus that moves by
    // ≈0.915 USD per USD of ETH, ≈9.15e9 wei per step of the 8-decimal feed: at ETH 2,935.37606595 it is
    // 81,297,869,262 wei (8.1e-8 USD). quoteForMargin gives ⌊surplus·1e6 / 1e18⌋ = ⌊0.081⌋ = 0 units (USDC
    // at 1, weight 1): the sweep moves nothing and says nothing. The mutant emits BackstopQuoteSwept(0).
    // A dollar higher the surplus is ≈0.915 USD and the sweep moves exactly what it converts to.
    it("sweeps nothing, and emits nothing, when the backstop's surplus is worth less than one quote unit", async function () {
      const { sys } = await loadFixture(backstopHoldsEthLong);
      const backstop = await sys.auction.backstopAccountId();
      const cash = await sys.vault.balanceOf(backstop, sys.usdc);
      expect(cash).to.equal(373_942_189n);
      await sys.feeds.ETH.updateAnswer(293_537_606_595n);
      const h = await sys.engine.health(backstop);
      const surplus = h.equityInitial - h.initialRequirement;
      expect(surplus).to.equal(81_297_869_262n);
      expect(await sys.vault.quoteForMargin(surplus)).to.equal(0n);
      expect(await sys.auction.sweepBackstopQuote.staticCall()).to.equal(0n);
      await expect(sys.auction.sweepBackstopQuote()).to.not.emit(sys.auction, "BackstopQuoteSwept");
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(cash);

      await sys.feeds.ETH.updateAnswer(293_637_606_595n);
      const h2 = await sys.engine.health(backstop);
      const swept = await sys.vault.quoteForMargin(h2.equityInitial - h2.initialRequirement);
      expect(swept).to.be.greaterThan(900_000n).and.lessThan(930_000n);
      await expect(sys.auction.sweepBackstopQuote())
        .to.emit(sys.auction, "BackstopQuoteSwept")
        .withArgs(swept);
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(cash - swept);
    });
  });

  describe("setAuctionParams at its exact bounds", function () {
    const P = DEFAULT_AUCTION_PARAMS; // d0 2%, dmax 10%, penalty 1%, 1,800 s, flag reward 10 USDC
    const DAY = 86_400;

    // M86 (the start discount may exceed the maximum) and M113 (a start-discount step of exactly
    // MAX_DISCOUNT_STEP = 5 points is refused). d0 2% → 7% is a step of exactly 0.05 and is taken; with
    // dmax 10% → 6% (a step of 4 points, within its own) the steps all pass and only the bound
    // d0 ≤ dmax refuses it: the discount would fall from 7% to 6% over the auction.
    it("takes a start-discount step of exactly 5 points and refuses a start discount above the maximum", async function () {
      const sys = await loadFixture(deploySystem);
      await expect(
        sys.auction.setAuctionParams({ ...P, startDiscount: wad("0.07"), maxDiscount: wad("0.06") }),
      ).to.be.revertedWithCustomError(sys.auction, "AuctionParamsOutOfBounds");
      await expect(sys.auction.setAuctionParams({ ...P, startDiscount: wad("0.07") })).to.emit(
        sys.auction,
        "AuctionParamsUpdated",
      );
      expect((await sys.auction.params()).startDiscount).to.equal(wad("0.07"));
    });

    // M87 (a duration of exactly MIN_DURATION = 60 s is refused). Halving at most once a day:
    // 1,800 → 900 → 450 → 225 → 120 → 60 (2·60 = 120 is not below 120: a halving, allowed).
    it("takes a duration of exactly MIN_DURATION, reached by halvings a day apart", async function () {
      const sys = await loadFixture(deploySystem);
      expect(await sys.auction.MIN_DURATION()).to.equal(60n);
      for (const duration of [900, 450, 225, 120, 60]) {
        await sys.auction.setAuctionParams({ ...P, duration });
        await time.increase(DAY);
      }
      expect((await sys.auction.params()).duration).to.equal(60n);
    });
  });
});
