import { expect } from "chai";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, openAccount, spotShocks, wad } from "../shared/system";
import { assetId, deployMockFeed, setFeedPrice } from "../shared/oracles";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { advanceTo } from "../shared/perps";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;
const ETH = assetId("ETH");

/**
 * Alice is long 2 calls and 1 put, Bob short 2 calls and 1 put (strike 3,000, 7 days). Then the chain
 * moves to expiry: every feed gets a round 30 s before expiry (round `before`), and the ETH feed a
 * round exactly at expiry answering `settlementPrice` (round `first`) and one a minute later answering
 * 3,500 (round `later`).
 */
async function expiredBook(settlementPrice: string) {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(7n * DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const put = await listSeries(sys.options, "ETH", "3000", expiry, false);
  const aliceAccount = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const bobAccount = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  await tradeOption(sys.options, sys.alice, aliceAccount, call, wad("2"));
  await tradeOption(sys.options, sys.alice, aliceAccount, put, WAD);
  await tradeOption(sys.options, sys.bob, bobAccount, call, -wad("2"));
  await tradeOption(sys.options, sys.bob, bobAccount, put, -WAD);

  await advanceTo(sys, expiry);
  const before = await sys.feeds.ETH.latestRound();
  await setFeedPrice(sys.feeds.ETH, settlementPrice);
  const first = before + 1n;
  await time.increase(60);
  await setFeedPrice(sys.feeds.ETH, "3500");
  const later = first + 1n;
  return { ...sys, expiry, call, put, aliceAccount, bobAccount, before, first, later };
}

const itmBook = () => expiredBook("3300");
const otmBook = () => expiredBook("2700");
const atStrikeBook = () => expiredBook("3000");

describe("OptionMarket settlement", function () {
  it("settles a series at the first round at or after expiry", async function () {
    const { options, call, first, expiry } = await loadFixture(itmBook);
    await expect(options.settleSeries(call, first))
      .to.emit(options, "SeriesSettled")
      .withArgs(call, first, wad("3300"), expiry);
    const info = await options.series(call);
    expect(info.settled).to.equal(true);
    expect(info.settlementPrice).to.equal(wad("3300"));
  });

  it("reverts with WrongRoundHint for a round before expiry (too early)", async function () {
    const { options, call, before } = await loadFixture(itmBook);
    await expect(options.settleSeries(call, before))
      .to.be.revertedWithCustomError(options, "WrongRoundHint")
      .withArgs(before);
  });

  it("reverts with WrongRoundHint for a later round after expiry (too late)", async function () {
    const { options, call, later } = await loadFixture(itmBook);
    await expect(options.settleSeries(call, later))
      .to.be.revertedWithCustomError(options, "WrongRoundHint")
      .withArgs(later);
  });

  it("reverts with WrongRoundHint when the previous round is missing or the hint opens a phase", async function () {
    const { options, feeds, call, expiry } = await loadFixture(itmBook);
    const now = BigInt(await time.latest());
    // Round 100 after expiry, round 99 never written (updatedAt 0).
    await feeds.ETH.updateRoundData(100n, 3_300n * 10n ** 8n, now, now);
    await expect(options.settleSeries(call, 100n))
      .to.be.revertedWithCustomError(options, "WrongRoundHint")
      .withArgs(100n);
    // The first round of phase 2 ((2 << 64) | 1) has no previous round in its phase.
    const phaseStart = (2n << 64n) | 1n;
    await feeds.ETH.updateRoundData(phaseStart, 3_300n * 10n ** 8n, expiry, expiry);
    await expect(options.settleSeries(call, phaseStart))
      .to.be.revertedWithCustomError(options, "WrongRoundHint")
      .withArgs(phaseStart);
  });

  // Review round 22: mid-migration, the old aggregator (phase 1) and the new one (phase 2, the proxy's
  // current phase) each had a first round after expiry, and the settler chose: the longs took the old
  // aggregator's 3,015 (150 USDC on 10 calls) where the current phase said 3,000 (worthless).
  it("settles only at a round of the feed's current phase, whatever an older aggregator posted", async function () {
    const { options, feeds, call, expiry } = await loadFixture(atStrikeBook);
    const phaseRound = (phase: bigint, round: bigint) => (phase << 64n) | round;
    const price = (usd: bigint) => usd * 10n ** 8n;
    await time.increaseTo(expiry + 700n);
    await feeds.ETH.updateRoundData(phaseRound(1n, 5n), price(3_000n), expiry - 30n, expiry - 30n);
    await feeds.ETH.updateRoundData(phaseRound(1n, 6n), price(3_015n), expiry + 10n, expiry + 10n);
    await feeds.ETH.updateRoundData(phaseRound(2n, 7n), price(3_000n), expiry - 20n, expiry - 20n);
    await feeds.ETH.updateRoundData(phaseRound(2n, 8n), price(3_000n), expiry + 600n, expiry + 600n);
    const now = BigInt(await time.latest());
    await feeds.ETH.updateRoundData(phaseRound(2n, 9n), price(3_000n), now, now); // the proxy's latest

    await expect(options.settleSeries(call, phaseRound(1n, 6n)))
      .to.be.revertedWithCustomError(options, "WrongRoundHint")
      .withArgs(phaseRound(1n, 6n));
    await expect(options.settleSeries(call, phaseRound(2n, 8n)))
      .to.emit(options, "SeriesSettled")
      .withArgs(call, phaseRound(2n, 8n), wad("3000"), expiry + 600n);
  });

  it("settles at the first round of a new phase only through governance, and only at or after expiry", async function () {
    // The proxy moved to a new aggregator between the last round before expiry and the first after:
    // no hint can pass `settleSeries` (the new phase's round 1 has no previous round in its phase, and
    // round 2's previous round is after expiry), so without this the series could never settle.
    const { options, feeds, call, expiry, carol, before } = await loadFixture(itmBook);
    const phaseStart = (2n << 64n) | 1n;
    await feeds.ETH.updateRoundData(phaseStart, 3_250n * 10n ** 8n, expiry + 5n, expiry + 5n);
    await expect(options.connect(carol).settleSeriesAtPhaseStart(call, phaseStart))
      .to.be.revertedWithCustomError(options, "AccessManagedUnauthorized")
      .withArgs(carol.address);
    // Not a phase start (a round of phase 1), or a phase start before expiry: refused.
    await expect(options.settleSeriesAtPhaseStart(call, before + 1n))
      .to.be.revertedWithCustomError(options, "WrongRoundHint")
      .withArgs(before + 1n);
    const earlyPhase = (3n << 64n) | 1n;
    await feeds.ETH.updateRoundData(earlyPhase, 3_250n * 10n ** 8n, expiry - 1n, expiry - 1n);
    await expect(options.settleSeriesAtPhaseStart(call, earlyPhase))
      .to.be.revertedWithCustomError(options, "WrongRoundHint")
      .withArgs(earlyPhase);

    await expect(options.settleSeriesAtPhaseStart(call, phaseStart))
      .to.emit(options, "SeriesSettled")
      .withArgs(call, phaseStart, wad("3250"), expiry + 5n);
    expect(await options.liveSeriesCount()).to.equal(1n); // the put is still live
  });

  // Review round 34 (row 105): two aggregator upgrades within the timelock's delay left the first round
  // after expiry in a phase that is no longer the proxy's current one, and the router scaled it with the
  // current decimals: 3,300 posted with 6 decimals read as 33 under the next 8-decimal aggregator, and
  // Alice's call (strike 3,000) settled worthless instead of at 300 USDC a contract.
  it("settles at a phase start in that phase's decimals after two aggregator upgrades (8 → 6 → 8)", async function () {
    const sys = await loadFixture(deployOptionsSystem);
    const { options, router } = sys;
    const proxy = await ethers.deployContract("AggregatorProxyMock", [
      await deployMockFeed(8, 3_000n * 10n ** 8n),
    ]);
    const current = await router.assetConfig(ETH);
    await router.configureAsset(ETH, {
      primary: await proxy.getAddress(),
      primaryHeartbeat: current.sources[0].heartbeat,
      secondaries: [],
      secondaryHeartbeats: [],
      minPrice: current.minPrice,
      maxPrice: current.maxPrice,
      maxDeviation: 0n,
    });
    const expiry = await fromNow(DAY);
    const call = await listSeries(options, "ETH", "3000", expiry, true);
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
    await tradeOption(options, sys.alice, alice, call, WAD);

    await time.increaseTo(expiry);
    await proxy.confirmAggregator(await deployMockFeed(6, 3_300n * 10n ** 6n)); // phase 2 opens at 3,300
    await proxy.confirmAggregator(await deployMockFeed(8, 3_400n * 10n ** 8n)); // phase 3, current
    const phaseTwoStart = (2n << 64n) | 1n;
    await expect(options.settleSeriesAtPhaseStart(call, phaseTwoStart))
      .to.emit(options, "SeriesSettled")
      .withArgs(call, phaseTwoStart, wad("3300"), anyValue);
  });

  it("reverts with SeriesNotExpired before expiry", async function () {
    const { options } = await loadFixture(deployOptionsSystem);
    const expiry = await fromNow(DAY);
    const call = await listSeries(options, "ETH", "3000", expiry, true);
    await expect(options.settleSeries(call, 1n))
      .to.be.revertedWithCustomError(options, "SeriesNotExpired")
      .withArgs(call, expiry);
  });

  it("reverts with SeriesAlreadySettled the second time", async function () {
    const { options, call, first } = await loadFixture(itmBook);
    await options.settleSeries(call, first);
    await expect(options.settleSeries(call, first))
      .to.be.revertedWithCustomError(options, "SeriesAlreadySettled")
      .withArgs(call);
  });

  it("pays an in-the-money call's intrinsic value from the pool and charges the short", async function () {
    const {
      options,
      vault,
      usdc,
      engine,
      call,
      put,
      first,
      alice,
      bob,
      aliceAccount,
      bobAccount,
      poolAccountId,
    } = await loadFixture(itmBook);
    await options.settleSeries(call, first);
    const aliceBefore = await vault.balanceOf(aliceAccount, usdc);
    const bobBefore = await vault.balanceOf(bobAccount, usdc);
    const poolBefore = await vault.balanceOf(poolAccountId, usdc);
    // 2 calls · (3,300 − 3,000) = 600 USD.
    await expect(options.connect(bob).settleAccount(aliceAccount, call))
      .to.emit(options, "PositionSettled")
      .withArgs(aliceAccount, call, wad("2"), wad("600"));
    await expect(options.connect(alice).settleAccount(bobAccount, call))
      .to.emit(options, "PositionSettled")
      .withArgs(bobAccount, call, -wad("2"), -wad("600"));
    expect((await vault.balanceOf(aliceAccount, usdc)) - aliceBefore).to.equal(600n * USDC);
    expect((await vault.balanceOf(bobAccount, usdc)) - bobBefore).to.equal(-600n * USDC);
    expect(await vault.balanceOf(poolAccountId, usdc)).to.equal(poolBefore);
    // Settled positions leave the accounts; the puts (not settled yet) stay.
    const optionsAddress = await options.getAddress();
    for (const accountId of [aliceAccount, bobAccount]) {
      expect(await options.positionSize(accountId, call)).to.equal(0n);
      expect((await engine.accountMarkets(accountId)).map((k) => [k.market, k.marketId])).to.deep.equal([
        [optionsAddress, put],
      ]);
    }
    const info = await options.series(call);
    expect([info.longOpenInterest, info.shortOpenInterest]).to.deep.equal([0n, 0n]);
  });

  it("settles an out-of-the-money call for nothing and removes it", async function () {
    const { options, vault, usdc, engine, call, first, aliceAccount, bobAccount } =
      await loadFixture(otmBook);
    await options.settleSeries(call, first); // 2,700 < 3,000
    const aliceBefore = await vault.balanceOf(aliceAccount, usdc);
    // Batches skip accounts without a position (999).
    await options.settleAccounts([aliceAccount, bobAccount, 999n], call);
    expect(await vault.balanceOf(aliceAccount, usdc)).to.equal(aliceBefore);
    expect(await options.positionSize(aliceAccount, call)).to.equal(0n);
    expect(await options.positionSize(bobAccount, call)).to.equal(0n);
    expect((await engine.accountMarkets(aliceAccount)).length).to.equal(1); // the put
  });

  it("settles exactly at the strike for nothing on both sides", async function () {
    const { options, vault, usdc, engine, call, put, first, aliceAccount, bobAccount, poolAccountId } =
      await loadFixture(atStrikeBook);
    await options.settleSeries(call, first);
    await options.settleSeries(put, first);
    const balances = async () =>
      Promise.all([aliceAccount, bobAccount, poolAccountId].map((id) => vault.balanceOf(id, usdc)));
    const before = await balances();
    for (const series of [call, put]) await options.settleAccounts([aliceAccount, bobAccount], series);
    expect(await balances()).to.deep.equal(before);
    for (const id of [aliceAccount, bobAccount, poolAccountId]) {
      expect(await engine.accountMarkets(id)).to.deep.equal([]);
    }
  });

  it("values an unsettled pool position at intrinsic value and drops it once traders settle", async function () {
    const { options, engine, put, first, aliceAccount, bobAccount, poolAccountId } =
      await loadFixture(otmBook);
    // Alice +1 put, Bob −1 put: the pool is flat in the put, so it never held it.
    expect(await options.positionSize(poolAccountId, put)).to.equal(0n);
    await options.settleSeries(put, first);
    await expect(options.settleAccount(aliceAccount, put))
      .to.emit(options, "PositionSettled")
      .withArgs(aliceAccount, put, WAD, wad("300"));
    // The pool now mirrors Bob's open short: −(−1) = +1 put, worth 3,000 − 2,700 = 300.
    expect(await options.positionSize(poolAccountId, put)).to.equal(WAD);
    const e = await options.exposure(poolAccountId, put, wad("3500"), wad("0.6"));
    // A settled series: the fixed amount at the settlement price, no Greeks, no notional.
    expect([e.value, e.delta, e.gamma, e.vega, e.notional, e.optionSize]).to.deep.equal([
      wad("300"),
      0n,
      0n,
      0n,
      0n,
      0n,
    ]);
    await options.settleAccount(bobAccount, put);
    expect(await options.positionSize(poolAccountId, put)).to.equal(0n);
    expect((await engine.accountMarkets(poolAccountId)).map((k) => k.marketId)).to.not.include(put);
  });

  it("reverts with SeriesNotSettled and NoPosition where settlement does not apply, the pool's account included", async function () {
    const { options, call, first, carol, poolAccountId, aliceAccount } = await loadFixture(itmBook);
    await expect(options.settleAccount(aliceAccount, call))
      .to.be.revertedWithCustomError(options, "SeriesNotSettled")
      .withArgs(call);
    await options.settleSeries(call, first);
    await expect(options.connect(carol).settleAccount(999n, call))
      .to.be.revertedWithCustomError(options, "NoPosition")
      .withArgs(999n, call);
    // The pool's position is the traders' net, settled with each of theirs.
    await expect(options.settleAccount(poolAccountId, call))
      .to.be.revertedWithCustomError(options, "NoPosition")
      .withArgs(poolAccountId, call);
  });

  it("refuses to trade a settled series", async function () {
    const { options, call, first, alice, aliceAccount } = await loadFixture(itmBook);
    await options.settleSeries(call, first);
    await expect(tradeOption(options, alice, aliceAccount, call, -WAD))
      .to.be.revertedWithCustomError(options, "SeriesAlreadySettled")
      .withArgs(call);
  });

  describe("an expired series nobody settles", function () {
    /** Bob, 2,000 USDC, short one 7-day ATM call; after expiry ETH trades at 4,900. */
    async function unsettledShort() {
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(7n * DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const bobAccount = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 2_000n * USDC]]);
      const carolAccount = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      await tradeOption(sys.options, sys.bob, bobAccount, call, -WAD);
      await advanceTo(sys, expiry + DAY);
      await setFeedPrice(sys.feeds.ETH, "4900");
      return { ...sys, expiry, call, bobAccount, carolAccount };
    }

    it("cannot be traded, even to reduce", async function () {
      const { options, bob, bobAccount, call, expiry } = await loadFixture(unsettledShort);
      await expect(tradeOption(options, bob, bobAccount, call, WAD))
        .to.be.revertedWithCustomError(options, "SeriesExpired")
        .withArgs(call, expiry);
      await expect(options.quoteTrade(call, WAD)).to.be.revertedWithCustomError(options, "SeriesExpired");
    });

    it("is valued at intrinsic value at the current spot, repriced in every scenario, with its floor", async function () {
      const { options, bobAccount, call, engine, router, vault, usdc } = await loadFixture(unsettledShort);
      const math = await ethers.deployContract("PortfolioMathHarness");
      const e = await options.exposure(bobAccount, call, wad("4900"), wad("0.6"));
      expect([e.value, e.delta, e.gamma, e.vega, e.notional, e.optionSize]).to.deep.equal([
        -wad("1900"),
        -WAD,
        0n,
        0n,
        wad("4900"),
        -WAD,
      ]);
      // σ√τ of 1 wei: every spot shock exceeds it, so the engine reprices the kink (the settlement
      // round, not today's spot, decides which side of the strike the position ends on).
      expect(e.totalVolatility).to.equal(1n);
      const h = await engine.health(bobAccount);
      const balance = (await vault.balanceOf(bobAccount, usdc)) * QUOTE_UNIT;
      expect(h.equityMaintenance).to.equal(balance - wad("1900"));
      // MM: the worst repriced loss, at 4,900 + ⌈4,900·s⌉ with s = 2.33·0.6·√(1/365) = 7.3175% (rounded up
      // as the engine does): 1 short call deep in the money loses the whole move; plus the short-option
      // floor on 1 contract at 4,900, plus the 0.2% contingency on 4,900.
      const [, mmShock] = await spotShocks({ engine, router }, math, ETH, wad("4900"));
      const fullMove = (wad("4900") * mmShock + WAD - 1n) / WAD;
      const { shortOptionFloor } = await engine.riskParams(ETH);
      const floor = (wad("4900") * shortOptionFloor + WAD - 1n) / WAD;
      expect(h.maintenanceRequirement).to.equal(fullMove + floor + wad("9.8"));
    });

    it("does not block liquidation: the auction moves the position with the rest of the slice", async function () {
      const { options, auction, engine, keeper, carol, bobAccount, carolAccount, call } =
        await loadFixture(unsettledShort);
      const h = await engine.health(bobAccount);
      expect(h.equityMaintenance).to.be.lessThan(BigInt(h.maintenanceRequirement));
      expect(h.equityMark).to.be.greaterThan(0n);
      await auction.connect(keeper).startAuction(bobAccount);
      await expect(
        auction.connect(carol).bid(bobAccount, carolAccount, wad("0.5"), ethers.MaxUint256),
      ).to.emit(options, "PositionTransferred");
      const moved = await options.positionSize(carolAccount, call);
      expect(moved).to.be.lessThan(0n);
      expect((await options.positionSize(bobAccount, call)) + moved).to.equal(-WAD);
      expect((await engine.accountMarkets(carolAccount)).map((k) => k.marketId)).to.deep.equal([call]);
    });
  });
});
