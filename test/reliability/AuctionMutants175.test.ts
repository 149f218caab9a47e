/**
 * Rules of the liquidation auction that no test held (review round 175: 60 hand-made mutants of
 * `LiquidationAuction`, `LiquidationMath` and `InsuranceFund` as they are after sessions 40–48, each run
 * against the auction's own specs and then against every file that calls the mutated function). The
 * comment above each test names the mutant it catches; the round's report lists them all. Each test
 * passes on the contracts as written and fails with its mutant in. Funding is off, and every amount that
 * moves with time is read at a set timestamp.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, fundInsurance, openAccount, wad } from "../shared/system";
import { aliceLongTwoEth, mineAt, wethDebtorSystem } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { mintAndApprove } from "../shared/tokens";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n; // one USDC unit in quote WAD
const DURATION = 1_800n;
const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/** `aliceLongTwoEth`'s book at ETH 2,650, Alice's auction started by the keeper at `start`. */
async function crashedStarted() {
  const f = await aliceLongTwoEth("2650");
  await f.sys.auction.connect(f.sys.keeper).startAuction(f.alice);
  return { ...f, start: BigInt(await time.latest()) };
}

describe("Liquidation auction mutants (review round 175)", function () {
  describe("an insolvent take's results", function () {
    // A26 (an insolvent bid returns the fund's payout as its payment). The interface says a bid returns
    // the quote units the bidder paid, 0 when insolvent. Only events were read (IntegratorContracts
    // reads a solvent bid's returns). `wethDebtorSystem`'s debtor (10 WETH, ~26,050 USDC of debt, no
    // position: MM 0) at ETH 2,500 is insolvent by its debt less 25,000 USDC; at the duration the payout
    // is that whole deficit.
    it("returns the whole book and a payment of 0 from an insolvent take", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      const debtor = sys.debtorId;
      const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
      await fundInsurance(sys, 10_000n * USDC);
      await setFeedPrice(sys.feeds.ETH, "2500");
      await sys.auction.connect(sys.keeper).startAuction(debtor);
      await mineAt(sys, BigInt(await time.latest()) + DURATION);
      const h = await sys.engine.health(debtor);
      expect(h.maintenanceRequirement).to.equal(0n);
      const deficit = ceilDiv(-h.equityMark, QUOTE_UNIT);
      expect(deficit).to.be.greaterThan(1_000n * USDC);
      expect(await sys.auction.quoteBid(debtor, WAD)).to.deep.equal([WAD, 0n, deficit]);
      expect(await sys.auction.connect(sys.keeper).bid.staticCall(debtor, keeper, WAD, 0n)).to.deep.equal([
        WAD,
        0n,
      ]);
    });
  });

  describe("held-back quote in a depeg", function () {
    // A60 (the quote held back counts at 1 USD per token in the restoring fraction). Bid 1 (5%, one
    // second in) leaves 13.627730 USDC paid in and held back (LiquidationAuctionRemainingRules' numbers).
    // At the duration (d = 0.10, p = 0.01) with USDC at 0.95, the fraction that restores Alice is
    // f = ⌈S·1e18 / (S + H + ⌊M·0.89⌋)⌉, the sold book's mark M and the held quote H both valued at 0.95
    // USD a token. The mutant counts H at 1 USD (0.681387 more) and stops short of the target. Earlier
    // depeg specs sliced books with nothing held back.
    it("values the held-back quote at the quote's price in the restoring fraction", async function () {
      const { sys, alice, bob, start } = await loadFixture(crashedStarted);
      await time.setNextBlockTimestamp(start + 1n);
      await sys.auction.connect(sys.bob).bid(alice, bob, wad("0.05"), ethers.MaxUint256);
      const held = (await sys.auction.auctions(alice)).paidIn;
      expect(held).to.equal(13_627_730n);
      await mineAt(sys, start + DURATION);
      await setFeedPrice(sys.feeds.USDC, "0.95");
      const h = await sys.engine.health(alice);
      const [inQuote, usdMark] = await sys.vault.markInQuote(alice);
      const mark = h.equityMark - usdMark + inQuote; // the auction's mark, in quote WAD
      expect(mark).to.be.greaterThan(held * QUOTE_UNIT); // held back, not sold with the book
      const price = await sys.vault.tokenValue(sys.usdc, USDC);
      expect(price).to.equal(wad("0.95"));
      const shortfall = h.initialRequirement - h.equityInitial;
      const markValue = ((mark - held * QUOTE_UNIT) * price) / WAD;
      const fraction = (heldValue: bigint) =>
        ceilDiv(shortfall * WAD, shortfall + heldValue + (markValue * wad("0.89")) / WAD);
      const f = fraction((held * QUOTE_UNIT * price) / WAD);
      expect(fraction(held * QUOTE_UNIT)).to.be.lessThan(f);
      const [filled] = await sys.auction.quoteBid(alice, WAD);
      expect(filled).to.equal(f);
      expect(filled).to.be.lessThan(WAD);
    });
  });

  describe("a bid that leaves the account exactly at its initial requirement", function () {
    // A65 (`equity_IM > IM` restores, not `>=`). The debtor (10 WETH, no position: IM 0) is given 24 quote
    // units and ETH 2,722.5805775 (answer 272,258,057,750), found by search so that selling 60% of the
    // book at d = 0.10 leaves equity_IM at 0 to the wei. Its debt after the 10 USDC flag reward is
    // D = 26,059.818376 USDC, its mark M = 27,225.805775 − D = 1,165.987399 USDC. The bid of 0.6 at the
    // duration: slice 699.5924394, payment ⌈629.63319546⌉ = 629.633196, penalty ⌈6.995924394⌉ =
    // 6.995925; the bidder takes ⌈0.6·D⌉ = 15,635.891026 of the debt and 6 WETH. Left: 4 WETH at 0.9,
    // 9,801.290079 USD, against a quote balance of −10,423.92735 + 629.633196 − 6.995925 = −9,801.290079:
    // equity_IM = 0 = IM, restored, and the bid ends the auction (reason 0). The mutant leaves it open.
    it("ends the auction when a bid leaves equity_IM equal to IM", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      const debtor = sys.debtorId;
      const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      expect(await sys.vault.balanceOf(debtor, sys.usdc)).to.equal(-26_049_818_400n);
      await mintAndApprove(sys.usdc, sys.deployer, await sys.vault.getAddress(), 24n);
      await sys.vault.deposit(debtor, sys.usdc, 24n);
      await sys.feeds.ETH.updateAnswer(272_258_057_750n);
      await sys.auction.connect(sys.keeper).startAuction(debtor);
      expect(await sys.vault.balanceOf(debtor, sys.usdc)).to.equal(-26_059_818_376n);
      const start = (await sys.auction.auctions(debtor)).startTime;
      await mineAt(sys, start + DURATION);
      expect((await sys.auction.quoteBid(debtor, wad("0.6")))[0]).to.equal(wad("0.6"));
      await time.setNextBlockTimestamp(start + DURATION);
      const tx = sys.auction.connect(sys.keeper).bid(debtor, keeper, wad("0.6"), ethers.MaxUint256);
      await expect(tx)
        .to.emit(sys.auction, "AuctionBid")
        .withArgs(debtor, keeper, wad("0.6"), 629_633_196n, 6_995_925n, wad("0.10"));
      await expect(tx).to.emit(sys.auction, "AuctionEnded").withArgs(debtor, 0);
      expect(await sys.vault.balanceOf(debtor, sys.usdc)).to.equal(-9_801_290_079n);
      expect(await sys.vault.balanceOf(debtor, sys.weth)).to.equal(wad("4"));
      const h = await sys.engine.health(debtor);
      expect([h.equityInitial, h.initialRequirement]).to.deep.equal([0n, 0n]);
      expect((await sys.auction.auctions(debtor)).active).to.equal(false);
    });
  });
});
