/**
 * Trading against the oracle's lag (review round 65; docs/reliability.md §4, rows 156–158;
 * docs/decisions.md "Oracle lag"). Trades fill at the feed's answer, and a Chainlink round can be seen
 * before it lands (its transmission in the public mempool; on an L2, the off-chain market a feed lags by
 * up to its deviation threshold). Whoever opens against the pool at the old answer and closes at the new
 * one takes the move, less what a round trip costs. Measured at the pool's limits with the fixture's
 * parameters (those of deploy/config: perps 2 / 5 bp maker / taker, skew scale 1,000; series 3 bp and
 * 1 volatility point of spread; pool delta and vega ratios 1; a 1,000,000-USDC pool; ETH 3,000 at 60%).
 * The deployment's rule that bounds the perp side, and the option fee floor's, are tested in
 * `DeployConfig.test.ts`; the floor itself is OptionMarket's (`configureUnderlying`).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad, type System } from "../shared/system";
import { measureTake, type Take } from "../shared/takes";
import { setFeedPrice } from "../shared/oracles";
import { closePosition, trade } from "../shared/perps";
import {
  DAY,
  DEFAULT_POOL_DELTA_RATIO,
  DEFAULT_POOL_VEGA_RATIO,
  deployOptionsSystem,
  fromNow,
  listSeries,
  seriesParams,
  tradeOption,
} from "../shared/options";
import { assetId } from "../shared/oracles";

const USDC = 10n ** 6n;
/** The pool's perp delta limit in ETH: maxPoolDeltaRatio 1 · 1,000,000 USDC / 3,000, to 0.1 ETH. */
const PERP_LIMIT = wad("333.3");

/** The feed's answer after a move of `d` from 3,000. */
const movedBy = (d: number): string => (3000 * (1 + d)).toFixed(4);

/** Bob's account with 3,000,000 USDC, enough that his margin never binds before the pool's limits. */
async function frontRunner(sys: System): Promise<bigint> {
  return openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 3_000_000n * USDC]]);
}

/** A perp round trip at the delta limit: long before a round of `d`, closed after it. */
async function perpRoundTrip(d: number): Promise<Take> {
  const sys = await loadFixture(deployOptionsSystem);
  const account = await frontRunner(sys);
  return measureTake(sys, account, async () => {
    await trade(sys.perps, sys.bob, account, sys.markets.ETH, PERP_LIMIT);
    await setFeedPrice(sys.feeds.ETH, movedBy(d));
    await closePosition(sys.perps, sys.bob, account, sys.markets.ETH);
  });
}

/** 1-year ATM straddles (`size` calls and puts) bought before a volatility round of +`points`, sold after. */
async function straddleRoundTrip(size: bigint, points: number): Promise<Take> {
  const sys = await loadFixture(deployOptionsSystem);
  const account = await frontRunner(sys);
  const expiry = await fromNow(360n * DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const put = await listSeries(sys.options, "ETH", "3000", expiry, false);
  return measureTake(sys, account, async () => {
    await tradeOption(sys.options, sys.bob, account, call, size);
    await tradeOption(sys.options, sys.bob, account, put, size);
    await setFeedPrice(sys.volFeeds.ETH, (0.6 + points / 100).toFixed(4));
    await tradeOption(sys.options, sys.bob, account, call, -size);
    await tradeOption(sys.options, sys.bob, account, put, -size);
  });
}

describe("Oracle lag: a round seen coming, traded against the pool", function () {
  describe("perps at the pool's delta limit (333.3 ETH)", function () {
    it("lose on a round inside the round trip's cost (0.05% against 7 bp of fees)", async function () {
      const take = await perpRoundTrip(0.0005);
      // 333.3 · ~3,500 fill · (0.0005 − 0.0005 − 0.0002 · 1.0005) ≈ −233 USDC.
      expect(take.trader).to.be.lessThan(0n);
    });

    it("take size · fill · (d − taker − maker · (1 + d)) on a 0.5% round: 5,014.93 USDC", async function () {
      const take = await perpRoundTrip(0.005);
      // Fill ≈ 3,000 · (1 + 333.3 / 2 / 1,000) = 3,499.95 (the skew premium, paid back on the close):
      // 333.3 · 3,499.95 · (0.005 − 0.0005 − 0.0002 · 1.005) = 5,014.9 USDC.
      const fill = 3000 * (1 + 333.3 / 2 / 1000);
      const expected = 333.3 * fill * (0.005 - 0.0005 - 0.0002 * 1.005);
      expect(Number(take.trader) / 1e6).to.be.closeTo(expected, 5);
      expect(take.lps, "the LPs pay it, less their 80% of the fees").to.be.lessThan(-take.trader);
    });
  });

  describe("options", function () {
    it("deep in-the-money calls add a perp's take on top of the perp's limit (3 bp fee, no vega to spread)", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const account = await frontRunner(sys);
      const deepCall = await listSeries(sys.options, "ETH", "1500", await fromNow(30n * DAY), true);
      const take = await measureTake(sys, account, async () => {
        await trade(sys.perps, sys.bob, account, sys.markets.ETH, PERP_LIMIT);
        // The option delta limit is the perps' again: 333 calls of delta ≈ 1.
        await tradeOption(sys.options, sys.bob, account, deepCall, wad("333"));
        await setFeedPrice(sys.feeds.ETH, movedBy(0.005));
        await closePosition(sys.perps, sys.bob, account, sys.markets.ETH);
        await tradeOption(sys.options, sys.bob, account, deepCall, -wad("333"));
      });
      // 5,014.93 from the perp, 4,393.56 from the calls (333 · 3,000 · (0.005 − 2 · 0.0003), less rounding).
      expect(take.trader).to.be.closeTo(9_408_480_000n, 100n * USDC);
    });

    it("a fee floor of half the feed's threshold, enforced at listing, leaves the deep call's round trip nothing", async function () {
      // The timelock sets ETH's floor for a 0.5% feed: 25 bp a side. LISTING's 3 bp series is refused.
      const sys = await loadFixture(deployOptionsSystem);
      const floors = [wad("0.0025"), wad("0.005")] as const;
      await sys.options.configureUnderlying(
        assetId("ETH"),
        DEFAULT_POOL_VEGA_RATIO,
        DEFAULT_POOL_DELTA_RATIO,
        ...floors,
      );
      const expiry = await fromNow(30n * DAY);
      await expect(listSeries(sys.options, "ETH", "1500", expiry, true))
        .to.be.revertedWithCustomError(sys.options, "SeriesParamOutOfBounds")
        .withArgs(ethers.encodeBytes32String("fee"));
      const deepCall = await listSeries(
        sys.options,
        "ETH",
        "1500",
        expiry,
        true,
        seriesParams({ fee: floors[0] }),
      );
      const account = await frontRunner(sys);
      const take = await measureTake(sys, account, async () => {
        await tradeOption(sys.options, sys.bob, account, deepCall, wad("333"));
        await setFeedPrice(sys.feeds.ETH, movedBy(0.005));
        await tradeOption(sys.options, sys.bob, account, deepCall, -wad("333"));
      });
      // 333 · 3,000 · 0.005 = 4,995 gained against 2,497.50 + 2,509.99 of fees (−12.49), and the call's
      // delta just under 1: −13.03 USDC. The fund's 20% of the fees (1,001.50) is still the LPs'.
      expect(take.trader).to.be.within(-20n * USDC, 0n);
      expect(take.fund).to.equal(1_001_497_500n);
    });

    it("a volatility round pays once past twice the spread: straddles lose at +2 points, take at +5", async function () {
      // The vega limit: 439 calls and 439 puts. Break-even is about 2 · spreadFactor (1 point a side).
      const atTwo = await straddleRoundTrip(wad("439"), 2);
      const atFive = await straddleRoundTrip(wad("439"), 5);
      expect(atTwo.trader).to.be.lessThan(0n);
      expect(atFive.trader).to.be.closeTo(28_255_560_000n, 300n * USDC);
    });
  });
});
