/**
 * OptionMarket behaviours at their edges that the suite did not hold (review round 88 mutated
 * contracts/markets/OptionMarket.sol one small change at a time; see docs/reliability.md §4). Each test
 * names the line it holds.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, eventOf, openAccount, wad } from "../shared/system";
import { assetId, setFeedPrice } from "../shared/oracles";
import {
  DAY,
  DEFAULT_SERIES_PARAMS,
  HOUR,
  deployOptionsSystem,
  fromNow,
  listSeries,
  seriesParams,
  tradeOption,
} from "../shared/options";
import { advanceTo, mineAt } from "../shared/perps";
import { signerFor } from "../shared/impersonate";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;
const VOL = wad("0.6");
const SPOT = wad("3000");
const ETH = assetId("ETH");

/** A 3,000 call and put expiring in a day; Alice and Bob with 100,000 USDC each. */
async function dayBook() {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const put = await listSeries(sys.options, "ETH", "3000", expiry, false);
  const aliceAccount = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  const bobAccount = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  return { ...sys, expiry, call, put, aliceAccount, bobAccount };
}

/** `dayBook` with Alice long 2 calls and Bob short 2 (the pool flat). */
async function matchedCalls() {
  const sys = await dayBook();
  await tradeOption(sys.options, sys.alice, sys.aliceAccount, sys.call, wad("2"));
  await tradeOption(sys.options, sys.bob, sys.bobAccount, sys.call, -wad("2"));
  return sys;
}

describe("OptionMarket", function () {
  describe("listing", function () {
    // Lines 256–257: the expiry bounds are inclusive. Each listing is mined at `now` (blocks may share
    // a timestamp: hardhat.config.ts), so the time to expiry is exactly one hour, then exactly two years.
    it("lists a series expiring exactly one hour or exactly two years from its block", async function () {
      const { options } = await loadFixture(dayBook);
      const now = BigInt(await time.latest()) + 10n;
      for (const expiry of [now + HOUR, now + 2n * 365n * DAY]) {
        await time.setNextBlockTimestamp(now);
        await expect(options.listSeries(ETH, wad("3000"), expiry, true, DEFAULT_SERIES_PARAMS)).to.emit(
          options,
          "SeriesListed",
        );
      }
    });
  });

  describe("series parameter steps", function () {
    // Line 1306: a step down by exactly the largest step is allowed, as a step up is: the insurance
    // share from 0.2 to 0.1 (MAX_INSURANCE_FEE_SHARE_STEP).
    it("lowers a series parameter by exactly its largest step", async function () {
      const { options, call } = await loadFixture(dayBook);
      const lowered = seriesParams({ insuranceFeeShare: wad("0.1") });
      await expect(options.setSeriesParams(call, lowered)).to.emit(options, "SeriesParamsUpdated");
      expect((await options.series(call)).params.insuranceFeeShare).to.equal(wad("0.1"));
    });
  });

  describe("fees", function () {
    // Line 543: the notional is rounded up before the fee is taken from it. At 3,000.5 USD,
    // 0.505295784035994001 contracts are 1,516.14 USD and a fraction of a wei: 3 bp of exactly
    // 1,516.14 is a whole 454,842 quote units, so only the notional's rounding adds the last one.
    it("takes the fee on the notional rounded up, so a fraction of a wei above a whole fee costs one unit more", async function () {
      const sys = await loadFixture(dayBook);
      const { options, feeds, call } = sys;
      await setFeedPrice(feeds.ETH, "3000.5");
      const size = 505_295_784_035_994_001n;
      const notional = (size * wad("3000.5") + WAD - 1n) / WAD;
      expect(notional).to.equal(wad("1516.14") + 1n);
      const [, fee] = await options.quoteTrade(call, size);
      expect(fee).to.equal(454_843n * QUOTE_UNIT);
    });

    // Line 428: the insurance fund's share of a fee is rounded down, so the odd unit stays with the
    // pool (which keeps at least half). 1.000001 contracts at 3,000: 3 bp of 3,000.003 USD is
    // 900,001 quote units (rounded up); 20% of it is 180,000.2.
    it("rounds the insurance fund's share of a fee down and leaves the rest with the pool", async function () {
      const { options, engine, vault, usdc, alice, aliceAccount, call, poolAccountId } =
        await loadFixture(dayBook);
      const insuranceAccountId = await engine.insuranceAccountId();
      const [insurance0, pool0] = await Promise.all(
        [insuranceAccountId, poolAccountId].map((id) => vault.balanceOf(id, usdc)),
      );
      const tx = await tradeOption(options, alice, aliceAccount, call, wad("1.000001"));
      const traded = eventOf(await tx.wait(), options, "OptionTraded");
      expect(traded.args.fee).to.equal(900_001n * QUOTE_UNIT);
      const premiumQuote = traded.args.premium / QUOTE_UNIT;
      expect((await vault.balanceOf(insuranceAccountId, usdc)) - insurance0).to.equal(180_000n);
      expect((await vault.balanceOf(poolAccountId, usdc)) - pool0).to.equal(premiumQuote + 720_001n);
    });
  });

  describe("pool vega and delta limits", function () {
    /**
     * The size of a 3,000 call and the limit ratio at which `bound` (the traders' long side the trade
     * leaves, as the market counts it) equals the limit exactly, ratios from `from` up by one wei.
     */
    function exactFit(balance: bigint, from: bigint, bound: (size: bigint) => bigint, step: bigint) {
      for (let ratio = from; ; ratio++) {
        const limit = (balance * QUOTE_UNIT * ratio) / WAD;
        const size = (limit * WAD + step - 1n) / step;
        if (bound(size) === limit) return { ratio, size, limit };
      }
    }

    // Line 570: a risk-increasing trade may take a side of the traders' vega to the limit itself.
    it("fills a purchase that brings the traders' long vega to exactly the pool vega limit", async function () {
      const { options, vault, usdc, alice, aliceAccount, call, expiry, poolAccountId } =
        await loadFixture(dayBook);
      const bs = await ethers.deployContract("BlackScholesHarness");
      const balance = await vault.balanceOf(poolAccountId, usdc); // no premium held yet
      const at = BigInt(await time.latest()) + 100n;
      const { vega } = await bs.valuation(SPOT, SPOT, expiry - at, VOL, true);
      const fit = exactFit(balance, wad("0.0001"), (size) => (size * vega) / WAD, vega);
      await options.setPoolVegaRatio(ETH, fit.ratio); // a cut: not throttled
      await time.setNextBlockTimestamp(at);
      await expect(tradeOption(options, alice, aliceAccount, call, fit.size)).to.emit(
        options,
        "OptionTraded",
      );
      expect((await options.traderVega(ETH))[0]).to.equal(fit.limit);
    });

    // Line 635: a trade is held to the limit only on the sides it grows. After a cut that leaves Bob's
    // 50 written calls (~3,100 USD of short vega per unit of volatility) above the limit (1,000), a
    // buyer still opens: the long side stays within it; a writer is refused.
    it("checks only the side a trade grows: a buyer opens while the writers' side is above the limit", async function () {
      const { options, alice, bob, aliceAccount, bobAccount, call } = await loadFixture(dayBook);
      await tradeOption(options, bob, bobAccount, call, -wad("50"));
      await options.setPoolVegaRatio(ETH, wad("0.001")); // 1,000,000 USDC × 0.001
      const [, short] = await options.traderVega(ETH);
      expect(short).to.be.greaterThan(wad("3000"));
      await expect(tradeOption(options, alice, aliceAccount, call, WAD)).to.emit(options, "OptionTraded");
      await expect(tradeOption(options, bob, bobAccount, call, -WAD)).to.be.revertedWithCustomError(
        options,
        "PoolVegaLimitExceeded",
      );
    });

    // Line 648: the backstop's positions are the LPs' own and stay out of the traders' sides, longs as
    // well as shorts. A slice of Alice's 2 long calls moved to the backstop (a liquidation's transfer)
    // leaves the buyers' side at 1 contract's vega and delta.
    it("takes a long the backstop receives out of the traders' long vega and delta", async function () {
      const { options, engine, alice, aliceAccount, call } = await loadFixture(dayBook);
      await tradeOption(options, alice, aliceAccount, call, wad("2"));
      const { vegaPerContract, deltaPerContract } = await options.series(call);
      expect((await options.traderVega(ETH))[0]).to.equal(2n * vegaPerContract);
      const backstop = await options.backstopAccountId();
      await options
        .connect(await signerFor(engine))
        .transferPosition(aliceAccount, backstop, call, wad("0.5"));
      expect(await options.positionSize(backstop, call)).to.equal(WAD);
      expect(await options.traderVega(ETH)).to.deep.equal([vegaPerContract, 0n]);
      expect(await options.traderDelta(ETH)).to.deep.equal([deltaPerContract, 0n]);
    });

    // Line 576: the same for the delta limit, in notional at the oracle price (3,000).
    it("fills a purchase that brings the traders' long delta notional to exactly the pool delta limit", async function () {
      const { options, vault, usdc, alice, aliceAccount, call, expiry, poolAccountId } =
        await loadFixture(dayBook);
      const bs = await ethers.deployContract("BlackScholesHarness");
      const balance = await vault.balanceOf(poolAccountId, usdc);
      const at = BigInt(await time.latest()) + 100n;
      const { delta } = await bs.valuation(SPOT, SPOT, expiry - at, VOL, true);
      const notional = (size: bigint) => ((size * delta) / WAD) * 3000n;
      const fit = exactFit(balance, wad("0.003"), notional, delta * 3000n);
      await options.setPoolDeltaRatio(ETH, fit.ratio);
      await time.setNextBlockTimestamp(at);
      await expect(tradeOption(options, alice, aliceAccount, call, fit.size)).to.emit(
        options,
        "OptionTraded",
      );
      expect((await options.traderDelta(ETH))[0] * 3000n).to.equal(fit.limit);
    });
  });

  describe("open-interest caps", function () {
    // Lines 483–487: a cap binds only the side a trade grows. After a cut below Bob's 100 written calls,
    // a buyer still opens longs (the short side does not move), and a new writer is refused.
    it("caps only the side a trade grows: a cut below one side's open interest still lets the other side open", async function () {
      const { options, alice, bob, aliceAccount, bobAccount, call } = await loadFixture(dayBook);
      await tradeOption(options, bob, bobAccount, call, -wad("100"));
      await options.setSeriesParams(call, seriesParams({ maxOpenInterest: wad("50") }));
      await expect(tradeOption(options, alice, aliceAccount, call, wad("10"))).to.emit(
        options,
        "OptionTraded",
      );
      expect((await options.series(call)).longOpenInterest).to.equal(wad("10"));
      await expect(tradeOption(options, alice, aliceAccount, call, -wad("20")))
        .to.be.revertedWithCustomError(options, "OpenInterestCapExceeded")
        .withArgs(call, false, wad("110"), wad("50"));
    });
  });

  describe("nearSettlement", function () {
    // Line 969: the pool closes LP exits from a held series' last hour until it is settled. With
    // exactly one hour left the model still prices the series (the last hour starts a second later),
    // and once settled the series pays a fixed amount: neither is near settlement.
    it("is false with exactly one hour left, true a second later, and false again once the series is settled", async function () {
      const sys = await loadFixture(matchedCalls);
      const { options, feeds, call, expiry } = sys;
      await mineAt(sys, expiry - HOUR);
      expect(await options.nearSettlement(call)).to.equal(false);
      await mineAt(sys, expiry - HOUR + 1n);
      expect(await options.nearSettlement(call)).to.equal(true);
      await advanceTo(sys, expiry);
      const round = (await feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(feeds.ETH, "3100");
      await time.increase(60);
      expect(await options.nearSettlement(call)).to.equal(true); // expired, not settled
      await options.settleSeries(call, round);
      // Alice and Bob have not settled their accounts yet: the series is settled all the same.
      expect(await options.nearSettlement(call)).to.equal(false);
    });
  });

  describe("trading deadlines", function () {
    // Line 396: a deadline is the last second a trade may execute.
    it("fills a trade whose deadline is its own block's timestamp", async function () {
      const { options, alice, aliceAccount, call } = await loadFixture(dayBook);
      const deadline = BigInt(await time.latest()) + 10n;
      await time.setNextBlockTimestamp(deadline);
      await expect(tradeOption(options, alice, aliceAccount, call, WAD, { deadline })).to.emit(
        options,
        "OptionTraded",
      );
    });
  });

  describe("settlement round hints", function () {
    const price = (usd: bigint) => usd * 10n ** 8n;

    // Line 678: the first round of a phase cannot be proven the first at or after expiry by
    // `settleSeries`, whatever its aggregator answers for round 0 (the round before it in the phase).
    it("refuses a phase's first round as a hint even when the feed answers its round 0 from before expiry", async function () {
      const sys = await loadFixture(matchedCalls);
      const { options, feeds, call, expiry } = sys;
      await time.increaseTo(expiry + 60n);
      const phase2 = 2n << 64n;
      await feeds.ETH.updateRoundData(phase2, price(3_000n), expiry - 30n, expiry - 30n);
      await feeds.ETH.updateRoundData(phase2 | 1n, price(3_100n), expiry + 5n, expiry + 5n);
      await expect(options.settleSeries(call, phase2 | 1n))
        .to.be.revertedWithCustomError(options, "WrongRoundHint")
        .withArgs(phase2 | 1n);
    });

    // Line 705: governance settles at a phase start only from phase 2 on: phase 1's first round is the
    // feed's first, which no series can expire before.
    it("refuses to settle at the first round of phase 1 through governance", async function () {
      const sys = await loadFixture(matchedCalls);
      const { options, feeds, call, expiry } = sys;
      await time.increaseTo(expiry + 60n);
      const phase1Start = (1n << 64n) | 1n;
      await feeds.ETH.updateRoundData(phase1Start, price(3_100n), expiry + 5n, expiry + 5n);
      await expect(options.settleSeriesAtPhaseStart(call, phase1Start))
        .to.be.revertedWithCustomError(options, "WrongRoundHint")
        .withArgs(phase1Start);
    });
  });

  describe("exposure", function () {
    // Line 958: a short owes its upper bound rounded up. Bob's 2 written calls value one contract's
    // upper bound exactly; Alice's 1 contract and 1 wei owe a fraction of a wei more, rounded up.
    it("values a short whose size is not whole contracts rounded up against the writer", async function () {
      const { options, alice, bob, aliceAccount, bobAccount, call } = await loadFixture(dayBook);
      await tradeOption(options, bob, bobAccount, call, -wad("2"));
      await tradeOption(options, alice, aliceAccount, call, -(WAD + 1n));
      const high = -(await options.exposure(bobAccount, call, SPOT, VOL)).value / 2n;
      const owed = ((WAD + 1n) * high + WAD - 1n) / WAD;
      expect(((WAD + 1n) * high) % WAD).to.not.equal(0n);
      expect((await options.exposure(aliceAccount, call, SPOT, VOL)).value).to.equal(-owed);
    });

    // Line 825: the notional the engine scales requirements by is rounded up (against the account).
    // 1.5 contracts at 3,000 USD and 1 wei are 4,500 USD and 1.5 wei.
    it("reports a notional that is not a whole wei rounded up", async function () {
      const { options, alice, aliceAccount, call } = await loadFixture(dayBook);
      await tradeOption(options, alice, aliceAccount, call, wad("1.5"));
      const e = await options.exposure(aliceAccount, call, SPOT + 1n, VOL);
      expect(e.notional).to.equal(wad("4500") + 2n);
    });
  });

  describe("exposure beyond the model's price range", function () {
    // Line 1160: above BlackScholes' MAX_PRICE (1e36) the market has no model price. Before expiry the
    // bounds are [intrinsic value, intrinsic value + min(S, K)]: a call's upper bound is the spot
    // itself, so a writer owes S per contract, not only S − K (the option's time value is below K).
    it("values a short call at the spot itself when spot is beyond the model's range", async function () {
      const { options, aliceAccount, bobAccount, call } = await loadFixture(matchedCalls);
      const spot = 10n ** 36n + 1n;
      const short = await options.exposure(bobAccount, call, spot, VOL);
      expect(short.value).to.equal(-2n * spot);
      const long = await options.exposure(aliceAccount, call, spot, VOL);
      expect(long.value).to.equal(2n * (spot - wad("3000")));
    });
  });

  describe("exposure at expiry", function () {
    // Lines 836 and 1156: at expiry's second the series is expired: both sides are worth intrinsic
    // value (no one-hour price for the short) and the engine reprices the position in every scenario
    // (σ√τ of 1 wei) until the settlement round fixes its payoff.
    it("values both sides at intrinsic value in the second of expiry and has the engine reprice them", async function () {
      const sys = await loadFixture(matchedCalls);
      const { options, feeds, call, expiry, aliceAccount, bobAccount } = sys;
      await advanceTo(sys, expiry);
      await setFeedPrice(feeds.ETH, "3100"); // the block at expiry
      expect(BigInt(await time.latest())).to.equal(expiry);
      const long = await options.exposure(aliceAccount, call, wad("3100"), VOL);
      const short = await options.exposure(bobAccount, call, wad("3100"), VOL);
      expect([long.value, short.value]).to.deep.equal([wad("200"), -wad("200")]);
      expect([long.delta, short.delta]).to.deep.equal([wad("2"), -wad("2")]);
      expect([long.vega, long.gamma, long.totalVolatility]).to.deep.equal([0n, 0n, 1n]);
      expect(short.totalVolatility).to.equal(1n);
    });
  });
});
