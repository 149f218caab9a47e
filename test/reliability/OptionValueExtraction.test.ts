/**
 * A trader with capital trying to take value from the LPs with options only, or options and perps
 * (review round 113). The pool is the counterparty of every option trade: it sells at the model's upper
 * bound plus spreadFactor·vega and buys at the lower bound less it, charges fee·spot per contract, and
 * marks its own positions at those bounds without the spread. Within one oracle state a round trip
 * therefore always pays two spreads and two fees; value can only move with what changes the marks between
 * the two legs: the price feed (round 65, `OracleLag.test.ts`), the volatility feed (round 65, at-the-money
 * straddles), a series' skew, time and settlement. Measured here with the deployments' parameters (fee and
 * spread at the listing floors, 2.5 bp and 0.005; option delta ratio 0.5, vega ratio 1; a 1,000,000-USDC
 * pool; ETH 3,000 at 60%). The skew is the risk role's (`setSkew`), not the trades': no trade moves it.
 * One attack worked (docs/reliability.md §4, row 271): a skew step is a volatility round on one series
 * that the risk role's execution delay schedules in public, and a 5-point step paid a straddle bought
 * before it 7,666.97 USDC of the LPs'; a step is now at most twice the series' spread factor, the step a
 * round trip's spread covers (the rule the listing floors already state for the volatility feed). A
 * second (row 272): settlement charges no fee, so a deep in-the-money series bought before a round seen
 * coming and held to settlement pays one fee; the deploy parser now asks minFee ≥ the feed's threshold
 * (it asked 2 · minFee, a round trip's).
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { EXIT_DELAY, MarginMode, atLatestTimestamp, openAccount, wad, type System } from "../shared/system";
import { measureTake, type Take } from "../shared/takes";
import { setFeedPrice } from "../shared/oracles";
import { closePosition, mineAt, trade } from "../shared/perps";
import {
  DAY,
  DEFAULT_LISTING_FLOORS,
  HOUR,
  deployOptionsSystem,
  fromNow,
  listSeries,
  seriesParams,
  tradeOption,
} from "../shared/options";

const USDC = 10n ** 6n;

/** A round trip here spans a few seconds of the pool's time value: 2 USDC either way. */
const measure = (sys: System, account: bigint, actions: () => Promise<void>): Promise<Take> =>
  measureTake(sys, account, actions, { below: 2n * USDC, above: 2n * USDC });

/** The listing floors of the deployments' ETH and BTC: 2.5 bp of spot a contract, 0.005·vega a side. */
const FLOORS = seriesParams({
  fee: DEFAULT_LISTING_FLOORS.minFee,
  spreadFactor: DEFAULT_LISTING_FLOORS.minSpreadFactor,
});

/**
 * The deployments' option market (delta ratio 0.5) with a 30-day at-the-money call and put at the listing
 * floors, the same pair at a spread factor of 0.025, and a 3,600 call and a 2,400 put at the floors;
 * Bob's account with 3,000,000 USDC.
 */
/** The option market with the deployments' option delta ratio, 0.5 (a fixture). */
function deployDeploymentsOptions() {
  return deployOptionsSystem({ poolDeltaRatio: wad("0.5") });
}

async function book() {
  const sys = await deployDeploymentsOptions();
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 3_000_000n * USDC]]);
  const expiry = await fromNow(30n * DAY);
  const wide = seriesParams({ fee: DEFAULT_LISTING_FLOORS.minFee, spreadFactor: wad("0.025") });
  return {
    sys,
    bob,
    call: await listSeries(sys.options, "ETH", "3000", expiry, true, FLOORS),
    put: await listSeries(sys.options, "ETH", "3000", expiry, false, FLOORS),
    // An hour later: a series' terms are listed once.
    wideCall: await listSeries(sys.options, "ETH", "3000", expiry + 3_600n, true, wide),
    widePut: await listSeries(sys.options, "ETH", "3000", expiry + 3_600n, false, wide),
    // About 17-delta calls and puts, where vega is smallest against volga.
    wingCall: await listSeries(sys.options, "ETH", "3600", expiry, true, FLOORS),
    wingPut: await listSeries(sys.options, "ETH", "2400", expiry, false, FLOORS),
  };
}

/** The straddle the option delta limit admits (0.5 · 1,000,000 / 3,000 = 166.7 ETH a side). */
const CALLS = wad("290");
const PUTS = wad("340");

/** Bob buys CALLS calls and PUTS puts, `between` runs, and he sells them back. */
async function straddleAcross(
  f: Awaited<ReturnType<typeof book>>,
  call: bigint,
  put: bigint,
  between: () => Promise<void>,
): Promise<Take> {
  const { sys, bob } = f;
  return measure(sys, bob, async () => {
    await tradeOption(sys.options, sys.bob, bob, call, CALLS);
    await tradeOption(sys.options, sys.bob, bob, put, PUTS);
    await between();
    await tradeOption(sys.options, sys.bob, bob, call, -CALLS);
    await tradeOption(sys.options, sys.bob, bob, put, -PUTS);
  });
}

describe("Option value extraction by a trader with capital", function () {
  describe("the skew: the risk role's, seen coming", function () {
    it("does not move with trades: a straddle at the delta limit leaves both skews and the next quotes as they were", async function () {
      const f = await loadFixture(book);
      const [callQuote, putQuote] = [
        await f.sys.options.quoteTrade(f.call, wad("1")),
        await f.sys.options.quoteTrade(f.put, -wad("1")),
      ];
      await tradeOption(f.sys.options, f.sys.bob, f.bob, f.call, CALLS);
      await tradeOption(f.sys.options, f.sys.bob, f.bob, f.put, PUTS);
      expect((await f.sys.options.series(f.call)).skew).to.equal(0n);
      expect((await f.sys.options.series(f.put)).skew).to.equal(0n);
      // Two seconds of time value later, the same prices to a few parts in a million: no impact.
      const [callAfter, putAfter] = [
        await f.sys.options.quoteTrade(f.call, wad("1")),
        await f.sys.options.quoteTrade(f.put, -wad("1")),
      ];
      expect(callAfter.premiumPerContract).to.be.closeTo(callQuote.premiumPerContract, wad("0.01"));
      expect(putAfter.premiumPerContract).to.be.closeTo(putQuote.premiumPerContract, wad("0.01"));
    });

    it("row 271: refuses a step beyond twice the series' spread factor, which a straddle bought before a 5-point step sold after for 7,666.97 USDC of the LPs'", async function () {
      const f = await loadFixture(book);
      const { sys } = f;
      const take = await straddleAcross(f, f.call, f.put, async () => {
        // At the listing floors a round trip's spreads cover one point (2 · 0.005): 5 and 1 point + 1 wei
        // are refused; before the fix both were accepted, and 5 points on both legs paid Bob 7,666.97
        // (the LPs −7,855.97, the fund +189.00 of fees).
        for (const step of [wad("0.05"), wad("0.01") + 1n]) {
          await expect(sys.options.setSkew(f.call, step))
            .to.be.revertedWithCustomError(sys.options, "SkewOutOfBounds")
            .withArgs(step);
        }
        await sys.options.setSkew(f.call, wad("0.01"));
        await sys.options.setSkew(f.put, wad("0.01"));
      });
      // The largest step accepted: the spreads take what the step gives, the fees are the loss
      // (2 · 630 contracts · 0.00025 · 3,000 = 945).
      expect(take.trader).to.be.within(-946n * USDC, -944n * USDC);
      expect(take.fund).to.equal(189n * USDC);
    });

    it("row 271: a 5-point step on series whose spread covers it (0.025) still costs the round trip its fees", async function () {
      const f = await loadFixture(book);
      const take = await straddleAcross(f, f.wideCall, f.widePut, async () => {
        await f.sys.options.setSkew(f.wideCall, wad("0.05"));
        await f.sys.options.setSkew(f.widePut, wad("0.05"));
      });
      expect(take.trader).to.be.lessThan(-940n * USDC);
      expect(take.lps).to.be.greaterThan(0n);
    });
  });
  describe("related series: parity through the perp (no skew)", function () {
    it("a conversion (long call, short put, short perp at the strike) and its unwind lose both spreads and every fee", async function () {
      const f = await loadFixture(book);
      const { sys, bob } = f;
      const n = wad("100");
      const take = await measure(sys, bob, async () => {
        await tradeOption(sys.options, sys.bob, bob, f.call, n);
        await tradeOption(sys.options, sys.bob, bob, f.put, -n);
        await trade(sys.perps, sys.bob, bob, sys.markets.ETH, -n);
        await tradeOption(sys.options, sys.bob, bob, f.call, -n);
        await tradeOption(sys.options, sys.bob, bob, f.put, n);
        await closePosition(sys.perps, sys.bob, bob, sys.markets.ETH);
      });
      console.log(
        `      100 conversions and back: trader ${take.trader}, LPs +${take.lps}, fund +${take.fund} units`,
      );
      // Four option fees (4 · 100 · 0.00025 · 3,000 = 300) and four spreads (4 · 100 · 0.005 · ~343 = 686)
      // at least, and the perp's round trip on top.
      expect(take.trader).to.be.lessThan(-986n * USDC);
      expect(take.lps).to.be.greaterThan(0n);
    });
  });

  describe("a volatility round at the spread's bound", function () {
    it("a one-point round (what the spread floor covers) loses on 17-delta strangles, where volga is largest against vega", async function () {
      const f = await loadFixture(book);
      const { sys, bob } = f;
      // 800 of each: 160 ETH of counted delta a side (0.2 a contract), under the 166.7 limit.
      const n = wad("800");
      const take = await measure(sys, bob, async () => {
        await tradeOption(sys.options, sys.bob, bob, f.wingCall, n);
        await tradeOption(sys.options, sys.bob, bob, f.wingPut, n);
        await setFeedPrice(sys.volFeeds.ETH, "0.61");
        await tradeOption(sys.options, sys.bob, bob, f.wingCall, -n);
        await tradeOption(sys.options, sys.bob, bob, f.wingPut, -n);
      });
      console.log(`      800 strangles across +1 point: trader ${take.trader}, LPs +${take.lps} units`);
      // The spreads take the round's vega·dσ + ½·volga·dσ² to second order; the fees are the loss
      // (4 · 800 · 0.00025 · 3,000 = 2,400).
      expect(take.trader).to.be.within(-2_500n * USDC, -2_300n * USDC);
    });
  });

  describe("a trade split into pieces", function () {
    /** Bob's round trip in `pieces` buys and as many sales of 100 / `pieces` calls, all at one second. */
    async function splitRoundTrip(pieces: bigint): Promise<Take> {
      const f = await loadFixture(book);
      const { sys, bob } = f;
      const piece = wad("100") / pieces;
      return measure(sys, bob, async () => {
        for (const sign of [1n, -1n]) {
          for (let i = 0n; i < pieces; i++) {
            await atLatestTimestamp();
            await tradeOption(sys.options, sys.bob, bob, f.call, sign * piece);
          }
        }
      });
    }

    it("costs a round trip in 20 pieces no less than in one, and at most a quote unit a piece a leg more", async function () {
      const one = await splitRoundTrip(1n);
      const twenty = await splitRoundTrip(20n);
      console.log(
        `      100 calls round trip: one piece ${one.trader}, twenty pieces ${twenty.trader} units`,
      );
      expect(twenty.trader).to.be.lte(one.trader);
      // Premium and fee each round once per trade, against the trader: 2 · 2 · 20 units at most.
      expect(one.trader - twenty.trader).to.be.lte(80n);
      expect(twenty.lps).to.be.gte(one.lps);
    });
  });

  describe("the LP share price around a volatility round, with the deployments' exit delay", function () {
    it("an LP who asks to leave before a rise the pool's short straddle loses on is paid the lower price", async function () {
      const f = await loadFixture(book);
      const { sys, bob } = f;
      await sys.pool.setExitDelay(EXIT_DELAY);
      await tradeOption(sys.options, sys.bob, bob, f.call, CALLS);
      await tradeOption(sys.options, sys.bob, bob, f.put, PUTS);
      // The seed LP's shares are free; she asks to leave with a tenth before a +5-point round.
      const shares = (await sys.pool.balanceOf(sys.lp.address)) / 10n;
      await sys.pool.connect(sys.lp).requestRedeem(shares);
      const asked = (await sys.pool.redeemRequest(sys.lp.address)).assets;
      await setFeedPrice(sys.volFeeds.ETH, "0.65");
      await mineAt(sys, BigInt(await time.latest()) + EXIT_DELAY);
      const paid = await sys.pool.previewClaim(sys.lp.address, shares);
      console.log(`      asked ${asked}, paid ${paid} units: the round's loss is hers too`);
      expect(paid).to.be.lessThan(asked);
      expect(paid).to.be.closeTo(await sys.pool.convertToAssets(shares), 1n);
    });
  });
  describe("settlement at the first round at or after expiry", function () {
    /**
     * Bob buys the 166 deep in-the-money calls (K 1,500, delta ≈ 1) the option delta limit admits a
     * minute before expiry, at a fee of `fee`, and the first round after expiry moves ETH by `move`: the
     * round he saw coming (in the mempool, or the off-chain market a lagging feed has not caught up
     * with). Settlement pays him the moved price with no second fee.
     */
    async function deepCallIntoSettlement(fee: string, move: string): Promise<Take> {
      const sys = await loadFixture(deployDeploymentsOptions);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 3_000_000n * USDC]]);
      const expiry = await fromNow(2n * HOUR);
      const params = seriesParams({ fee: wad(fee), spreadFactor: DEFAULT_LISTING_FLOORS.minSpreadFactor });
      const deep = await listSeries(sys.options, "ETH", "1500", expiry, true, params);
      await mineAt(sys, expiry - 60n);
      return measure(sys, bob, async () => {
        await tradeOption(sys.options, sys.bob, bob, deep, wad("166"));
        await mineAt(sys, expiry);
        await setFeedPrice(sys.feeds.ETH, move);
        await sys.options.settleSeries(deep, await sys.feeds.ETH.latestRound());
        await sys.options.settleAccount(bob, deep);
      });
    }

    it("row 272: a deep call bought before a round that lands after expiry pays one fee, not a round trip's: +124.50 USDC on a 0.05% round at 2.5 bp, the floor the old rule (2 · minFee ≥ threshold) allowed", async function () {
      // 166 · (1.50 − 0.75): the round's move less one fee; the one-hour value above intrinsic, the
      // spread (vega ≈ 0) and the model's error margin round to nothing.
      const take = await deepCallIntoSettlement("0.00025", "3001.5");
      console.log(
        `      166 deep calls into a +0.05% settlement round: trader +${take.trader}, LPs ${take.lps} units`,
      );
      expect(take.trader).to.be.closeTo(124_500_000n, USDC);
      expect(take.lps).to.be.lessThan(-124n * USDC);
    });

    it("row 272: on an L1 feed (0.5% threshold) at the 25 bp fee the old rule allowed, the same trade takes +1,245 USDC", async function () {
      const take = await deepCallIntoSettlement("0.0025", "3015");
      console.log(
        `      166 deep calls into a +0.5% settlement round: trader +${take.trader}, LPs ${take.lps} units`,
      );
      expect(take.trader).to.be.closeTo(1_245_000_000n, 2n * USDC);
    });

    it("row 272: a fee of the whole threshold, the floor the deploy parser now asks (one fee for a one-way trade), leaves it nothing", async function () {
      const take = await deepCallIntoSettlement("0.0005", "3001.5");
      expect(take.trader).to.be.within(-USDC, 0n);
    });
  });
});
