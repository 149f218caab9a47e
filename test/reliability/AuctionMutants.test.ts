/**
 * Rules of the liquidation auction, its arithmetic and the insurance fund that no other test held (review
 * round 119: mutation testing of `LiquidationAuction`, `LiquidationMath` and `InsuranceFund` after the
 * backstop's absorb, the payout ramp, bidAndClose, held-back quote, restarts, batches and the backstop's
 * collateral sale were added). The comment above each test names the mutant it catches; each test passes
 * on the contracts as written and fails with its mutant in. The list of mutants is in the round's report.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import type { LiquidationMathHarness } from "../../typechain-types";
import { MarginMode, WAD, openAccount, wad } from "../shared/system";
import { aliceLongTwoEth, mineAt, refreshFeeds, wethDebtorSystem } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";

const USDC = 10n ** 6n;
const DAY = 86_400n;
const QUOTE_UNIT = 10n ** 12n; // one USDC unit in quote WAD
const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

async function harness(): Promise<LiquidationMathHarness> {
  return (await ethers.deployContract("LiquidationMathHarness")) as unknown as LiquidationMathHarness;
}

/** LiquidationAuction.test's book (`aliceLongTwoEth`), ETH at 2,650 (solvent, below maintenance). */
const crashed = () => aliceLongTwoEth("2650");

/** `crashed` with Alice's auction started by the keeper; `start` is its second. */
async function crashedStarted() {
  const f = await crashed();
  await f.sys.auction.connect(f.sys.keeper).startAuction(f.alice);
  return { ...f, start: BigInt(await time.latest()) };
}

/** A health whose only fields restoringFraction reads are the initial requirement and equity. */
function healthIM(initialRequirement: bigint, equityInitial: bigint) {
  return {
    equityInitial,
    equityMaintenance: 0n,
    equityMark: 0n,
    initialRequirement,
    maintenanceRequirement: 0n,
    healthRatio: 0n,
    grossNotional: 0n,
    volatilityUnavailable: false,
  };
}

describe("Liquidation auction mutants (review round 119)", function () {
  describe("LiquidationMath's roundings at the inputs where they part", function () {
    // M13 (the premium dmax·MM is rounded up). At the duration the payout is ⌊(deficit + ⌊MM·dmax⌋)/1e12⌋
    // units: with deficit = 1e12 − 1 wei and MM = 5 wei, ⌊5·0.1⌋ = 0 and the payout is ⌊(1e12 − 1)/1e12⌋
    // = 0; the premium rounded up (1) would make the sum a whole unit and pay 1.
    it("rounds the insolvency premium dmax·MM down before adding it to the deficit", async function () {
      const lib = await loadFixture(harness);
      expect(await lib.insolvencyPayout(QUOTE_UNIT - 1n, 5n, WAD / 10n, 1800n, 1800n, QUOTE_UNIT)).to.equal(
        0n,
      );
      expect(await lib.insolvencyPayout(QUOTE_UNIT, 5n, WAD / 10n, 1800n, 1800n, QUOTE_UNIT)).to.equal(1n);
    });

    // M07 (the proceeds M·(1 − d − p) are rounded up). Shortfall 250 USD, M = 1,000 USD + 4,202 wei,
    // d = 0.10, p = 0.01: M·0.89 = 890e18 + 3,739.78 wei, floored to …3,739. f = ⌈250e36 / (250e18 +
    // 890e18 + 3,739)⌉ = 219,298,245,614,035,088; with the proceeds rounded up (…3,740) the quotient
    // falls one wei below a whole number and f is …087: the fraction that restores the account, one wei
    // short.
    it("rounds the proceeds down, so the restoring fraction is never a wei short", async function () {
      const lib = await loadFixture(harness);
      const shortfall = 250n * WAD;
      const M = 1_000n * WAD + 4_202n;
      const d = WAD / 10n;
      const p = WAD / 100n;
      const proceeds = (M * (WAD - d - p)) / WAD;
      expect(proceeds).to.equal(890n * WAD + 3_739n);
      const f = ceilDiv(shortfall * WAD, shortfall + proceeds);
      expect(f).to.equal(219_298_245_614_035_088n);
      expect(ceilDiv(shortfall * WAD, shortfall + proceeds + 1n)).to.equal(f - 1n);
      expect(await lib.restoringFraction(healthIM(shortfall, 0n), M, 0n, d, p)).to.equal(f);
    });

    // M09 (the slice f·M is rounded down before the discount). M = 4,000 USDC + 1 wei of quote WAD, f = ½:
    // f·M = 2e21 + ½ wei, rounded up to 2e21 + 1. At d = 0.02, (2e21 + 1)·0.98/1e30 rounds up to
    // 1,960,000,001 units; the slice floored (2e21, whose 0.98 is exactly 1,960 USDC) would pay 1,960,000,000.
    it("rounds the slice up before applying the discount, so the bidder pays the last unit", async function () {
      const lib = await loadFixture(harness);
      const M = 4_000n * WAD + 1n;
      expect(await lib.payment(M, WAD / 2n, WAD / 50n, QUOTE_UNIT)).to.equal(1_960_000_001n);
      expect(await lib.payment(M - 1n, WAD / 2n, WAD / 50n, QUOTE_UNIT)).to.equal(1_960_000_000n);
    });

    // M08 (`shortfall < 0` instead of `<= 0`): an account that meets its initial requirement needs no
    // fraction, even with a book worth nothing to sell (proceeds 0): 0, not a division by zero.
    it("needs no fraction of a book that meets its initial requirement, whatever the book is worth", async function () {
      const lib = await loadFixture(harness);
      expect(
        await lib.restoringFraction(healthIM(100n * WAD, 100n * WAD), 0n, 0n, WAD / 10n, WAD / 100n),
      ).to.equal(0n);
    });
  });

  describe("the flag reward's cooldown", function () {
    // A15 (`block.timestamp <= endedAt + FLAG_REWARD_COOLDOWN`): the cooldown is one day from the last
    // end, exclusive of its last second. Alice's auction, ended when ETH came back to 3,000, starts again at
    // 2,650: one second before endedAt + 86,400 it pays no reward, at endedAt + 86,400 exactly the 10 USDC.
    it("pays the flag reward again from exactly a day after the account's last auction ended", async function () {
      const { sys, alice } = await loadFixture(crashedStarted);
      await setFeedPrice(sys.feeds.ETH, "3000");
      await sys.auction.endAuction(alice);
      const endedAt = BigInt(await time.latest());
      await time.increaseTo(endedAt + DAY - 30n);
      await refreshFeeds(sys);
      await setFeedPrice(sys.feeds.ETH, "2650");
      const before = await takeSnapshot();
      await time.setNextBlockTimestamp(endedAt + DAY - 1n);
      const early = sys.auction.connect(sys.keeper).startAuction(alice);
      await expect(early)
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(alice, sys.keeper.address, anyValue, anyValue, 0n);
      await expect(early).to.changeTokenBalance(sys.usdc, sys.keeper, 0n);
      await before.restore();
      await time.setNextBlockTimestamp(endedAt + DAY);
      const onTime = sys.auction.connect(sys.keeper).startAuction(alice);
      await expect(onTime)
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(alice, sys.keeper.address, anyValue, anyValue, 10n * USDC);
      await expect(onTime).to.changeTokenBalance(sys.usdc, sys.keeper, 10n * USDC);
    });
  });
  describe("a book worth exactly 0", function () {
    // A88 (a sale of the whole book ends with reason 0, "restored") and A74 (`v.mark <= 0`: a book worth
    // 0 is taken as insolvent). The debtor (10 WETH, ~26,050 USDC of debt with interest, no position) is
    // priced at ETH = debt/10 in the second of the start and the bid, so its WETH is worth its debt to the
    // wei: mark 0, equity_MM = 0.95·debt − debt < 0 = MM. The restoring fraction of a book whose proceeds
    // are 0 is 1: the keeper takes the whole book for 0 USDC, no penalty, and the auction ends with reason
    // 1 (whole book sold); no insolvency is covered.
    it("sells the whole book for nothing and ends with reason 1, not as insolvent", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
      const T = BigInt(await time.latest()) + 120n;
      await mineAt(sys, T);
      const debtor = sys.debtorId;
      const mark0 = (await sys.engine.health(debtor)).equityMark;
      const debt = (await sys.vault.tokenValue(sys.weth, wad("10"))) - mark0;
      expect(debt % QUOTE_UNIT).to.equal(0n); // whole USDC units
      expect(debt).to.be.greaterThan(26_000n * WAD);
      await time.setNextBlockTimestamp(T);
      await sys.feeds.ETH.updateAnswer(debt / 10n / 10n ** 10n); // 8 decimals: debt/10 USD
      const h = await sys.engine.health(debtor);
      expect(h.equityMark).to.equal(0n);
      expect(h.maintenanceRequirement).to.equal(0n);
      expect(h.equityMaintenance).to.be.lessThan(0n);
      await time.setNextBlockTimestamp(T);
      await sys.auction.connect(sys.keeper).startAuction(debtor);
      await time.setNextBlockTimestamp(T);
      const tx = sys.auction.connect(sys.keeper).bid(debtor, keeper, WAD, 0n);
      await expect(tx).to.emit(sys.auction, "AuctionBid").withArgs(debtor, keeper, WAD, 0n, 0n, wad("0.02"));
      await expect(tx).to.emit(sys.auction, "AuctionEnded").withArgs(debtor, 1);
      await expect(tx).to.not.emit(sys.auction, "InsolvencyCovered");
      expect(await sys.vault.balanceOf(keeper, sys.weth)).to.equal(wad("10"));
      expect(await sys.vault.balanceOf(keeper, sys.usdc)).to.equal(5_000n * USDC - debt / QUOTE_UNIT);
    });
  });
  describe("bidAndClose's loss check", function () {
    // A27 (a loss of up to one quote unit's worth passes: `gain < -1e12`). The debtor (10 WETH, no
    // position, MM 0) is priced 1,799 s into its auction so that its WETH is worth its debt less exactly
    // 0.001 USDC: deficit 1,000 units. The payout then is ⌊1,000e12 · ⌊1,799e18/1,800⌋ / 1e30⌋ =
    // ⌊999.44⌋ = 999 units, so the keeper takes the debt and 10 WETH for 999 units: at the oracle it loses
    // exactly one unit, 1e12 wei of USD, and the take is refused.
    it("refuses a take that loses the bidder a single USDC unit at the oracle", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
      await sys.accounts.connect(sys.keeper).approve(sys.auction, keeper);
      const debtor = sys.debtorId;
      await setFeedPrice(sys.feeds.ETH, "2500");
      await sys.auction.connect(sys.keeper).startAuction(debtor);
      const start = BigInt(await time.latest());
      const T = start + 1_799n;
      await mineAt(sys, T);
      const debt =
        (await sys.vault.tokenValue(sys.weth, wad("10"))) - (await sys.engine.health(debtor)).equityMark;
      const value = debt - 1_000n * QUOTE_UNIT;
      await time.setNextBlockTimestamp(T);
      await sys.feeds.ETH.updateAnswer(value / 10n / 10n ** 10n); // 8 decimals: value/10 USD
      const h = await sys.engine.health(debtor);
      expect([h.equityMark, h.maintenanceRequirement]).to.deep.equal([-1_000n * QUOTE_UNIT, 0n]);
      const ramp = (1_799n * WAD) / 1_800n;
      expect((1_000n * QUOTE_UNIT * ramp) / (WAD * QUOTE_UNIT)).to.equal(999n);
      await time.setNextBlockTimestamp(T);
      await expect(sys.auction.connect(sys.keeper).bidAndClose(debtor, keeper, WAD, ethers.MaxUint256))
        .to.be.revertedWithCustomError(sys.auction, "BidAndCloseLoss")
        .withArgs(keeper, QUOTE_UNIT);
    });
  });
  describe("an insolvent bid's event", function () {
    // A77 (an insolvent take's AuctionBid reports a discount of 0). Alice's auction started at 2,650;
    // at 2,300 her book is insolvent. 900 s in, the take reports the whole book, no payment, no penalty
    // and the discount the schedule stands at: 0.02 + 0.08·900/1,800 = 0.06.
    it("reports the schedule's discount on an insolvent take", async function () {
      const { sys, alice, bob, start } = await loadFixture(crashedStarted);
      await mineAt(sys, start + 900n);
      await time.setNextBlockTimestamp(start + 900n);
      await setFeedPrice(sys.feeds.ETH, "2300");
      expect((await sys.engine.health(alice)).equityMark).to.be.lessThan(0n);
      await time.setNextBlockTimestamp(start + 900n);
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256))
        .to.emit(sys.auction, "AuctionBid")
        .withArgs(alice, bob, WAD, 0n, 0n, wad("0.06"));
    });
  });
});
