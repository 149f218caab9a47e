import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { signerFor } from "../shared/impersonate";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import type { ContractTransactionResponse } from "ethers";
import type { BlackScholesHarness, OptionMarket } from "../../typechain-types";
import { DEFAULT_RISK_PARAMS, MarginMode, WAD, openAccount, wad, eventOf } from "../shared/system";
import { addPriceFeed, addVolatilityFeed, assetId, setFeedPrice } from "../shared/oracles";
import {
  DAILY_EXPIRY_GRID,
  DAY,
  DEFAULT_SERIES_PARAMS,
  FULL_SKEW_STEP_PARAMS,
  HOUR,
  deployOptionMarket,
  deployOptionsSystem,
  fromNow,
  listSeries,
  seriesParams,
  tradeOption,
} from "../shared/options";
import { advanceTo, trade } from "../shared/perps";
import { Role } from "../../deploy/roles";

const ETH = assetId("ETH");
const BTC = assetId("BTC");
const USDC = 10n ** 6n;
/** USD WAD per quote unit (USDC has 6 decimals), and the divisor of a 36-decimal amount into quote units. */
const QUOTE_UNIT = 10n ** 12n;
const RAW_PER_QUOTE = WAD * QUOTE_UNIT;
const SPOT = wad("3000");
const STRIKE = wad("3000");
const VOL = wad("0.6");

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;
const abs = (x: bigint): bigint => (x < 0n ? -x : x);
/** a / b rounded toward −∞ (b > 0), and a·b / 1e18 so (SignedWadMath). */
const divFloor = (a: bigint, b: bigint): bigint => (a % b !== 0n && a < 0n ? a / b - 1n : a / b);
const mulWadDown = (a: bigint, b: bigint): bigint => divFloor(a * b, WAD);

/** The contract's bounds of one contract before the last hour: BlackScholes ± (1e-17·(S + K) + 10 wei). */
async function modelBounds(
  bs: BlackScholesHarness,
  spot: bigint,
  strike: bigint,
  timeToExpiry: bigint,
  vol: bigint,
  isCall: boolean,
) {
  const v = await bs.valuation(spot, strike, timeToExpiry, vol, isCall);
  const margin = (spot + strike) / 10n ** 17n + 10n;
  return {
    price: v.price,
    low: v.price > margin ? v.price - margin : 0n,
    high: v.price + margin,
    delta: v.delta,
    gamma: v.gamma,
    vega: v.vega,
  };
}

/** Buy premium per contract, its quote units (rounded up) and the fee in quote units (rounded up). */
function buyCost(high: bigint, vega: bigint, size: bigint, spot: bigint) {
  const spread = ceilDiv((DEFAULT_SERIES_PARAMS.spreadFactor as bigint) * vega, WAD);
  const premium = high + spread;
  const premiumQuote = ceilDiv(size * premium, RAW_PER_QUOTE);
  const notional = ceilDiv(size * spot, WAD);
  const feeQuote = ceilDiv(notional * (DEFAULT_SERIES_PARAMS.fee as bigint), RAW_PER_QUOTE);
  return { premium, premiumQuote, feeQuote };
}

async function fixture() {
  const sys = await deployOptionsSystem();
  const bs = await ethers.deployContract("BlackScholesHarness");
  const expiry = await fromNow(30n * DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const put = await listSeries(sys.options, "ETH", "3000", expiry, false);
  const aliceAccount = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  const bobAccount = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  return { ...sys, bs, expiry, call, put, aliceAccount, bobAccount };
}

/** The option market on the deployments' expiry grid (08:00 UTC daily). */
function dailyGridFixture() {
  return deployOptionsSystem({ expiryGrid: DAILY_EXPIRY_GRID });
}

/** Time to expiry the next transaction will see, after pinning its timestamp 10 s ahead. */
async function pinNextBlock(expiry: bigint): Promise<bigint> {
  const next = BigInt(await time.latest()) + 10n;
  await time.setNextBlockTimestamp(next);
  return expiry - next;
}

async function timeToExpiryNow(expiry: bigint): Promise<bigint> {
  return expiry - BigInt(await time.latest());
}

describe("OptionMarket", function () {
  describe("listing", function () {
    it("lists series with sequential ids, their terms and a zero skew", async function () {
      const { options, expiry, call, put } = await loadFixture(fixture);
      expect([call, put]).to.deep.equal([1n, 2n]);
      const info = await options.series(put);
      expect(info.underlying).to.equal(ETH);
      expect(info.strike).to.equal(STRIKE);
      expect(info.expiry).to.equal(expiry);
      expect(info.isCall).to.equal(false);
      expect(info.settled).to.equal(false);
      expect(info.skew).to.equal(0n);
      expect(info.params.maxOpenInterest).to.equal(DEFAULT_SERIES_PARAMS.maxOpenInterest);
      const later = expiry + DAY;
      await expect(options.listSeries(ETH, wad("3500"), later, true, DEFAULT_SERIES_PARAMS))
        .to.emit(options, "SeriesListed")
        .withArgs(3n, ETH, wad("3500"), later, true, Object.values(DEFAULT_SERIES_PARAMS));
    });

    it("reverts deployment with InvalidQuoteDecimals when the decimals are not the quote token's", async function () {
      const { manager, engine, accounts, router, options } = await loadFixture(fixture);
      // A wrong value would scale every premium, fee and payout by a power of ten.
      await expect(deployOptionMarket([manager, engine, accounts, router, 18, 1, 0]))
        .to.be.revertedWithCustomError(options, "InvalidQuoteDecimals")
        .withArgs(18);
    });

    it("reverts with SeriesAlreadyListed for the terms of a listed series", async function () {
      const { options, expiry } = await loadFixture(fixture);
      await expect(options.listSeries(ETH, STRIKE, expiry, false, DEFAULT_SERIES_PARAMS))
        .to.be.revertedWithCustomError(options, "SeriesAlreadyListed")
        .withArgs(2n);
    });

    it("refuses a series beyond MAX_LIVE_SERIES live ones until one is settled", async function () {
      const sys = await loadFixture(fixture);
      const { options } = sys;
      const max = await options.MAX_LIVE_SERIES();
      const soon = await fromNow(DAY);
      const listed: bigint[] = [];
      for (let i = 2n; i < max; i++)
        listed.push(await listSeries(options, "ETH", String(2000n + 50n * i), soon, true));
      expect(await options.liveSeriesCount()).to.equal(max);
      await expect(options.listSeries(ETH, wad("5000"), soon, true, DEFAULT_SERIES_PARAMS))
        .to.be.revertedWithCustomError(options, "TooManyLiveSeries")
        .withArgs(max);
      expect(await options.seriesCount()).to.equal(max);

      // An expired series still counts until its settlement round is posted and it is settled.
      await advanceTo(sys, soon);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "3000");
      await options.settleSeries(listed[0], round);
      expect(await options.liveSeriesCount()).to.equal(max - 1n);
      await listSeries(options, "ETH", "5000", await fromNow(DAY), true);
      expect(await options.liveSeriesCount()).to.equal(max);
    });

    it("reverts with InvalidExpiry less than one hour or more than two years away", async function () {
      const { options } = await loadFixture(fixture);
      const now = BigInt(await time.latest());
      // Each attempt is mined at `now` (blocks may share a timestamp: hardhat.config.ts).
      for (const expiry of [now, now + HOUR - 1n, now + 2n * 365n * DAY + 1n]) {
        await time.setNextBlockTimestamp(now);
        await expect(options.listSeries(ETH, STRIKE, expiry, true, DEFAULT_SERIES_PARAMS))
          .to.be.revertedWithCustomError(options, "InvalidExpiry")
          .withArgs(expiry);
      }
    });

    it("lists only on its expiry grid: 08:00 UTC daily on the deployments, InvalidExpiry off it", async function () {
      const { options } = await loadFixture(dailyGridFixture);
      // Two days ahead at 08:00 UTC, then one second and 55 minutes past it.
      const onGrid = (BigInt(await time.latest()) / DAY + 2n) * DAY + 8n * HOUR;
      for (const expiry of [onGrid + 1n, onGrid + 55n * 60n, onGrid - HOUR]) {
        await expect(options.listSeries(ETH, STRIKE, expiry, true, DEFAULT_SERIES_PARAMS))
          .to.be.revertedWithCustomError(options, "InvalidExpiry")
          .withArgs(expiry);
      }
      await expect(options.listSeries(ETH, STRIKE, onGrid, true, DEFAULT_SERIES_PARAMS)).to.emit(
        options,
        "SeriesListed",
      );
    });

    it("reverts deployment with InvalidExpiryGrid for a zero period, one over a week, or an offset not below it", async function () {
      const { manager, engine, accounts, router, options } = await loadFixture(fixture);
      for (const [period, offset] of [
        [0n, 0n],
        [7n * DAY + 1n, 0n],
        [DAY, DAY],
      ]) {
        await expect(deployOptionMarket([manager, engine, accounts, router, 6, period, offset]))
          .to.be.revertedWithCustomError(options, "InvalidExpiryGrid")
          .withArgs(period, offset);
      }
    });

    it("reverts with BlackScholes' MoneynessOutOfRange for a strike more than 100× from spot", async function () {
      const { options, expiry } = await loadFixture(fixture);
      const bs = await ethers.getContractFactory("BlackScholesHarness");
      await expect(
        options.listSeries(ETH, wad("300001"), expiry, true, DEFAULT_SERIES_PARAMS),
      ).to.be.revertedWithCustomError(bs, "MoneynessOutOfRange");
    });

    it("lists series on an underlying only once the timelock has configured its pool vega and delta limits", async function () {
      const { options, router, engine, manager, expiry } = await loadFixture(fixture);
      const SOL = assetId("SOL");
      await addPriceFeed(router, "SOL", "150");
      await addVolatilityFeed(router, "SOL", "0.9");
      await engine.listUnderlying(SOL, DEFAULT_RISK_PARAMS);
      await expect(options.listSeries(SOL, wad("150"), expiry, true, DEFAULT_SERIES_PARAMS))
        .to.be.revertedWithCustomError(options, "UnderlyingNotConfigured")
        .withArgs(SOL);
      // The risk role steps limits that exist; it cannot open an underlying's (round 49: from 0 no step
      // bounds the first value).
      for (const setRatio of [options.setPoolVegaRatio, options.setPoolDeltaRatio]) {
        await expect(setRatio(SOL, wad("1")))
          .to.be.revertedWithCustomError(options, "UnderlyingNotConfigured")
          .withArgs(SOL);
      }
      const risk = (await ethers.getSigners())[11];
      await manager.grantRole(Role.RISK_MANAGER, risk.address, 0);
      const [minFee, minSpreadFactor] = [wad("0.00025"), wad("0.005")];
      await expect(
        options.connect(risk).configureUnderlying(SOL, wad("1"), wad("1"), minFee, minSpreadFactor),
      )
        .to.be.revertedWithCustomError(options, "AccessManagedUnauthorized")
        .withArgs(risk.address);
      await expect(options.configureUnderlying(SOL, wad("5") + 1n, wad("1"), minFee, minSpreadFactor))
        .to.be.revertedWithCustomError(options, "PoolRatioOutOfBounds")
        .withArgs(ethers.encodeBytes32String("poolVegaRatio"), wad("5") + 1n);
      await expect(options.configureUnderlying(SOL, wad("1"), 0n, minFee, minSpreadFactor))
        .to.be.revertedWithCustomError(options, "PoolRatioOutOfBounds")
        .withArgs(ethers.encodeBytes32String("poolDeltaRatio"), 0n);
      await expect(options.configureUnderlying(SOL, wad("0.5"), wad("2"), minFee, minSpreadFactor))
        .to.emit(options, "UnderlyingConfigured")
        .withArgs(SOL, wad("0.5"), wad("2"), minFee, minSpreadFactor);
      expect(await options.underlyingLimits(SOL)).to.deep.equal([
        wad("0.5"),
        wad("2"),
        minFee,
        minSpreadFactor,
      ]);
      await expect(options.listSeries(SOL, wad("150"), expiry, true, DEFAULT_SERIES_PARAMS)).to.emit(
        options,
        "SeriesListed",
      );
      // From here the risk role's steps apply: at most a doubling.
      await expect(options.connect(risk).setPoolVegaRatio(SOL, wad("1"))).to.emit(
        options,
        "PoolVegaRatioUpdated",
      );
    });

    it("reverts with UnknownUnderlying for an underlying the engine does not list", async function () {
      const { options, expiry } = await loadFixture(fixture);
      await expect(options.listSeries(assetId("DOGE"), wad("1"), expiry, true, DEFAULT_SERIES_PARAMS))
        .to.be.revertedWithCustomError(options, "UnknownUnderlying")
        .withArgs(assetId("DOGE"));
      await expect(options.configureUnderlying(assetId("DOGE"), wad("1"), wad("1"), 0n, 0n))
        .to.be.revertedWithCustomError(options, "UnknownUnderlying")
        .withArgs(assetId("DOGE"));
    });

    it("reverts with SeriesParamOutOfBounds outside the hard bounds", async function () {
      const { options, expiry } = await loadFixture(fixture);
      const cases: [string, Partial<typeof DEFAULT_SERIES_PARAMS>][] = [
        ["spreadFactor", { spreadFactor: wad("0.1") + 1n }],
        ["fee", { fee: wad("0.005") + 1n }],
        ["insuranceFeeShare", { insuranceFeeShare: wad("0.5") + 1n }],
        ["maxOpenInterest", { maxOpenInterest: 0n }],
        ["maxOpenInterest", { maxOpenInterest: 10n ** 30n + 1n }],
      ];
      for (const [name, change] of cases) {
        await expect(options.listSeries(ETH, wad("3100"), expiry, true, seriesParams(change)))
          .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
          .withArgs(ethers.encodeBytes32String(name));
      }
    });

    it("refuses a series whose fee or spread factor is below its underlying's floor, and lists one at the floors", async function () {
      // The fixture's floors on ETH: a 2.5 bp fee (a round trip covers a 0.05% feed threshold) and a
      // half-point spread factor.
      const { options, expiry } = await loadFixture(fixture);
      const [minFee, minSpreadFactor] = [wad("0.00025"), wad("0.005")];
      expect((await options.underlyingLimits(ETH)).slice(2)).to.deep.equal([minFee, minSpreadFactor]);
      for (const [name, change] of [
        ["fee", { fee: minFee - 1n }],
        ["spreadFactor", { spreadFactor: minSpreadFactor - 1n }],
      ] as const) {
        await expect(options.listSeries(ETH, wad("3100"), expiry, true, seriesParams(change)))
          .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
          .withArgs(ethers.encodeBytes32String(name));
      }
      await expect(
        options.listSeries(
          ETH,
          wad("3100"),
          expiry,
          true,
          seriesParams({ fee: minFee, spreadFactor: minSpreadFactor }),
        ),
      ).to.emit(options, "SeriesListed");
    });

    it("refuses floors above the hard bounds of a series' fee and spread factor", async function () {
      const { options } = await loadFixture(fixture);
      for (const [name, minFee, minSpreadFactor] of [
        ["fee", wad("0.005") + 1n, 0n],
        ["spreadFactor", 0n, wad("0.1") + 1n],
      ] as const) {
        await expect(options.configureUnderlying(ETH, wad("1"), wad("1"), minFee, minSpreadFactor))
          .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
          .withArgs(ethers.encodeBytes32String(name));
      }
      await options.configureUnderlying(ETH, wad("1"), wad("1"), wad("0.005"), wad("0.1"));
      expect((await options.underlyingLimits(ETH)).slice(2)).to.deep.equal([wad("0.005"), wad("0.1")]);
    });

    it("keeps listing, parameters, skew and the vega ratio closed to callers without their role", async function () {
      const { options, carol, expiry, call } = await loadFixture(fixture);
      const stranger = options.connect(carol);
      const checks = [
        () => stranger.listSeries(ETH, wad("3100"), expiry, true, DEFAULT_SERIES_PARAMS),
        () => stranger.setSeriesParams(call, DEFAULT_SERIES_PARAMS),
        () => stranger.setSkew(call, wad("0.01")),
        () => stranger.setPoolVegaRatio(ETH, wad("1")),
        () => stranger.setPoolDeltaRatio(ETH, wad("1")),
        () => stranger.configureUnderlying(ETH, wad("1"), wad("1"), 0n, 0n),
      ];
      for (const check of checks) {
        await expect(check()).to.be.revertedWithCustomError(options, "AccessManagedUnauthorized");
      }
    });
  });

  describe("risk parameters", function () {
    it("moves the skew by at most twice the series' spread factor per update (review round 113)", async function () {
      const { options, call, put } = await loadFixture(fixture);
      // The fixture's series quote one point of spread a side: a round trip across a step covers 2 points.
      await expect(options.setSkew(call, wad("0.02") + 1n))
        .to.be.revertedWithCustomError(options, "SkewOutOfBounds")
        .withArgs(wad("0.02") + 1n);
      await expect(options.setSkew(call, -wad("0.02") - 1n))
        .to.be.revertedWithCustomError(options, "SkewOutOfBounds")
        .withArgs(-wad("0.02") - 1n);
      await expect(options.setSkew(call, wad("0.02"))).to.emit(options, "SkewUpdated");
      await expect(options.setSkew(put, -wad("0.02"))).to.emit(options, "SkewUpdated");
    });

    it("moves the skew by at most MAX_SKEW_STEP per update and never beyond ±MAX_SKEW", async function () {
      const { options, expiry } = await loadFixture(fixture);
      // A spread factor of 0.025 or more lets a step reach MAX_SKEW_STEP (5 points).
      const call = await listSeries(options, "ETH", "3100", expiry, true, FULL_SKEW_STEP_PARAMS);
      await expect(options.setSkew(call, wad("0.05")))
        .to.emit(options, "SkewUpdated")
        .withArgs(call, wad("0.05"));
      await expect(options.setSkew(call, wad("0.1") + 1n))
        .to.be.revertedWithCustomError(options, "SkewOutOfBounds")
        .withArgs(wad("0.1") + 1n);
      // One step per series per MIN_SKEW_UPDATE_INTERVAL (12 hours).
      const interval = 12n * HOUR;
      for (let step = 2n; step <= 10n; step++) {
        await time.increase(interval);
        await options.setSkew(call, wad("0.05") * step);
      }
      expect((await options.series(call)).skew).to.equal(wad("0.5"));
      await time.increase(interval);
      await expect(options.setSkew(call, wad("0.55"))).to.be.revertedWithCustomError(
        options,
        "SkewOutOfBounds",
      );
      await options.setSkew(call, wad("0.45"));
      expect((await options.series(call)).skew).to.equal(wad("0.45"));
    });

    it("changes series parameters within max steps and rejects larger changes", async function () {
      const { options, call } = await loadFixture(fixture);
      const next = seriesParams({
        spreadFactor: wad("0.02"),
        fee: wad("0.0013"),
        maxOpenInterest: wad("2000"),
      });
      await expect(options.setSeriesParams(call, next))
        .to.emit(options, "SeriesParamsUpdated")
        .withArgs(call, Object.values(next));
      const tooFar: [string, Partial<typeof DEFAULT_SERIES_PARAMS>][] = [
        ["spreadFactor", { spreadFactor: wad("0.0301") }],
        ["fee", { fee: wad("0.0024") }],
        ["insuranceFeeShare", { insuranceFeeShare: wad("0.31") }],
        ["maxOpenInterest", { maxOpenInterest: wad("4000") + 1n }],
      ];
      for (const [name, change] of tooFar) {
        await expect(options.setSeriesParams(call, { ...next, ...change }))
          .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
          .withArgs(ethers.encodeBytes32String(name));
      }
      // Caps may fall freely (a day later: one update per series per day).
      await time.increase(await options.MIN_UPDATE_INTERVAL());
      await options.setSeriesParams(call, { ...next, maxOpenInterest: 1n });
    });

    it("lowers no series below its underlying's floors, and steps one below a raised floor only up", async function () {
      const { options, call } = await loadFixture(fixture);
      const interval = await options.MIN_UPDATE_INTERVAL();
      for (const [name, change] of [
        ["fee", { fee: wad("0.00025") - 1n }],
        ["spreadFactor", { spreadFactor: wad("0.005") - 1n }],
      ] as const) {
        await expect(options.setSeriesParams(call, seriesParams(change)))
          .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
          .withArgs(ethers.encodeBytes32String(name));
      }
      // The timelock raises ETH's floors above the series' 3 bp fee and one-point spread.
      await options.configureUnderlying(ETH, wad("1"), wad("1"), wad("0.001"), wad("0.02"));
      for (const [name, change] of [
        ["fee", { fee: wad("0.0003") - 1n }],
        ["spreadFactor", { spreadFactor: wad("0.01") - 1n }],
      ] as const) {
        await expect(options.setSeriesParams(call, seriesParams(change)))
          .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
          .withArgs(ethers.encodeBytes32String(name));
      }
      // Unchanged, or one step toward the floors (fee +0.0005, spread +0.005), is accepted.
      await options.setSeriesParams(call, DEFAULT_SERIES_PARAMS);
      await time.increase(interval);
      const stepUp = seriesParams({ fee: wad("0.0008"), spreadFactor: wad("0.015") });
      await expect(options.setSeriesParams(call, stepUp)).to.emit(options, "SeriesParamsUpdated");
      // Once at or above a floor, a series stays there.
      await time.increase(interval);
      await options.setSeriesParams(call, seriesParams({ fee: wad("0.001"), spreadFactor: wad("0.02") }));
      await time.increase(interval);
      await expect(
        options.setSeriesParams(call, seriesParams({ fee: wad("0.001") - 1n, spreadFactor: wad("0.02") })),
      )
        .to.be.revertedWithCustomError(options, "SeriesParamOutOfBounds")
        .withArgs(ethers.encodeBytes32String("fee"));
    });

    it("bounds each pool limit ratio: nonzero, at most doubled, raised at most once a day", async function () {
      const { options } = await loadFixture(fixture);
      // Room under the delta ratios' sum (the fixture's ETH and BTC at 1 fill it twice over): a cut.
      await options.setPoolDeltaRatio(BTC, wad("0.5"));
      for (const [setRatio, parameter, event] of [
        [options.setPoolVegaRatio, "poolVegaRatio", "PoolVegaRatioUpdated"],
        [options.setPoolDeltaRatio, "poolDeltaRatio", "PoolDeltaRatioUpdated"],
      ] as const) {
        await expect(setRatio(ETH, 0n))
          .to.be.revertedWithCustomError(options, "PoolRatioOutOfBounds")
          .withArgs(ethers.encodeBytes32String(parameter), 0n);
        // Cuts are free; a raise may at most double, and comes once a day.
        await expect(setRatio(ETH, wad("0.01")))
          .to.emit(options, event)
          .withArgs(ETH, wad("0.01"));
        await expect(setRatio(ETH, wad("0.03")))
          .to.be.revertedWithCustomError(options, "PoolRatioOutOfBounds")
          .withArgs(ethers.encodeBytes32String(parameter), wad("0.03"));
        await expect(setRatio(ETH, wad("0.02")))
          .to.emit(options, event)
          .withArgs(ETH, wad("0.02"));
        await expect(setRatio(ETH, wad("0.04"))).to.be.revertedWithCustomError(options, "UpdateTooSoon");
      }
      await time.increase(DAY);
      await expect(options.setPoolVegaRatio(ETH, wad("0.04"))).to.emit(options, "PoolVegaRatioUpdated");
      await expect(options.setPoolDeltaRatio(ETH, wad("0.04"))).to.emit(options, "PoolDeltaRatioUpdated");
      const limits = await options.underlyingLimits(ETH);
      expect([limits.poolVegaRatio, limits.poolDeltaRatio]).to.deep.equal([wad("0.04"), wad("0.04")]);
    });

    it("keeps the delta ratios' sum over underlyings to 1 on raises, counting the timelock's first values, while cuts always go through", async function () {
      const { options, router, engine } = await loadFixture(fixture);
      // configureUnderlying's first values add up unchecked (the fixture's 1 + 1; the deploy scripts bound
      // a config's): the sum tracks them.
      expect(await options.totalPoolDeltaRatio()).to.equal(wad("2"));
      const SOL = assetId("SOL");
      await addPriceFeed(router, "SOL", "150");
      await engine.listUnderlying(SOL, DEFAULT_RISK_PARAMS);
      await options.configureUnderlying(SOL, wad("1"), wad("0.25"), 0n, 0n);
      expect(await options.totalPoolDeltaRatio()).to.equal(wad("2.25"));
      // A raise above 1 is refused with the sum it would make, even one that only doubles SOL's.
      await expect(options.setPoolDeltaRatio(SOL, wad("0.5")))
        .to.be.revertedWithCustomError(options, "PoolRatioOutOfBounds")
        .withArgs(ethers.encodeBytes32String("totalPoolDeltaRatio"), wad("2.5"));
      // Cuts go through at any sum: ETH 0.5, BTC 0.25 (the sum 1.0 with SOL's 0.25).
      await options.setPoolDeltaRatio(ETH, wad("0.5"));
      await options.setPoolDeltaRatio(BTC, wad("0.25"));
      expect(await options.totalPoolDeltaRatio()).to.equal(wad("1"));
      await options.setPoolDeltaRatio(BTC, wad("0.125"));
      // Raised to exactly 1 (inclusive), and not one wei above it.
      await expect(options.setPoolDeltaRatio(SOL, wad("0.375") + 1n))
        .to.be.revertedWithCustomError(options, "PoolRatioOutOfBounds")
        .withArgs(ethers.encodeBytes32String("totalPoolDeltaRatio"), wad("1") + 1n);
      await expect(options.setPoolDeltaRatio(SOL, wad("0.375")))
        .to.emit(options, "PoolDeltaRatioUpdated")
        .withArgs(SOL, wad("0.375"));
      expect(await options.totalPoolDeltaRatio()).to.equal(wad("1"));
      // A floors change restates no ratio and adds nothing to the sum.
      await options.configureUnderlying(SOL, wad("1"), wad("1"), 0n, 0n);
      expect(await options.totalPoolDeltaRatio()).to.equal(wad("1"));
    });
  });

  describe("pool delta limit (review round 27)", function () {
    /**
     * 30-day calls struck at 1,500 and 2,000 and a put at 4,500, deep in the money at ETH 3,000 (delta ≈ ±1,
     * vega ≈ 0); Alice and Bob with 1,500,000 USDC each. The pool delta ratio is 1: each side of the
     * traders' option delta may reach the pool's premium-free balance in notional (~333 ETH).
     */
    async function deepBook() {
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(30n * DAY);
      const call1500 = await listSeries(sys.options, "ETH", "1500", expiry, true);
      const call2000 = await listSeries(sys.options, "ETH", "2000", expiry, true);
      const put4500 = await listSeries(sys.options, "ETH", "4500", expiry, false);
      const aliceAccount = await openAccount(sys, sys.alice, MarginMode.CROSS, [
        [sys.usdc, 1_500_000n * USDC],
      ]);
      const bobAccount = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_500_000n * USDC]]);
      return { ...sys, call1500, call2000, put4500, aliceAccount, bobAccount };
    }
    type DeepBook = Awaited<ReturnType<typeof deepBook>>;

    /** The pool's ETH delta over its option series (the pool account's exposure, underlying units WAD). */
    async function poolOptionDelta(sys: DeepBook): Promise<bigint> {
      const spot = await sys.router.getPrice(ETH);
      const vol = await sys.router.getVolatility(ETH);
      let delta = 0n;
      for (const id of [sys.call1500, sys.call2000, sys.put4500]) {
        delta += (await sys.options.exposure(sys.poolAccountId, id, spot, vol)).delta;
      }
      return delta;
    }

    /** The limit at ratio 1: the pool's quote balance less max(0, premium held), USD WAD. */
    async function deltaLimit(sys: DeepBook): Promise<bigint> {
      const held = await sys.options.poolPremiumHeld();
      const balance = await sys.vault.balanceOf(sys.poolAccountId, sys.usdc);
      return (balance - (held > 0n ? held : 0n)) * QUOTE_UNIT;
    }

    it("stops deep in-the-money call buyers at the limit, summed over the underlying's series", async function () {
      const sys = await loadFixture(deepBook);
      const { options, alice, aliceAccount, call1500, call2000 } = sys;
      // The review's trade (1,000 calls, pool short ~1,000 ETH) is refused; the vega limit never saw it.
      await expect(tradeOption(options, alice, aliceAccount, call1500, wad("1000")))
        .to.be.revertedWithCustomError(options, "PoolOptionDeltaLimitExceeded")
        .withArgs(ETH, anyValue, await deltaLimit(sys));
      await tradeOption(options, alice, aliceAccount, call1500, wad("200"));
      await tradeOption(options, alice, aliceAccount, call2000, wad("120"));
      // A second series adds to the same side: 200 + 120 + 20 contracts ≈ 340 ETH > 333.
      await expect(tradeOption(options, alice, aliceAccount, call2000, wad("20")))
        .to.be.revertedWithCustomError(options, "PoolOptionDeltaLimitExceeded")
        .withArgs(ETH, anyValue, await deltaLimit(sys));
      const delta = await poolOptionDelta(sys);
      expect(-delta * (await sys.router.getPrice(ETH))).to.be.at.most((await deltaLimit(sys)) * WAD);
      expect(-delta).to.be.greaterThan(wad("315"));
    });

    it("counts short puts with long calls and long puts with short calls, and a partner's opposite side adds nothing", async function () {
      const sys = await loadFixture(deepBook);
      const { options, alice, bob, aliceAccount, bobAccount, call1500, put4500 } = sys;
      // Bob writes deep puts: long the underlying, the side of a call buyer.
      await tradeOption(options, bob, bobAccount, put4500, -wad("200"));
      const [long, short] = await options.traderDelta(ETH);
      expect(short).to.equal(0n);
      expect(long).to.be.within(wad("190"), wad("200")); // 200 · |delta| ≈ 0.99
      await expect(tradeOption(options, alice, aliceAccount, call1500, wad("200")))
        .to.be.revertedWithCustomError(options, "PoolOptionDeltaLimitExceeded")
        .withArgs(ETH, anyValue, await deltaLimit(sys));
      // Alice buying deep puts is the other side: it does not free room on Bob's (each side is bounded).
      await tradeOption(options, alice, aliceAccount, put4500, wad("200"));
      await expect(tradeOption(options, bob, bobAccount, put4500, -wad("150")))
        .to.be.revertedWithCustomError(options, "PoolOptionDeltaLimitExceeded")
        .withArgs(ETH, anyValue, await deltaLimit(sys));
      // Closes are never refused.
      await tradeOption(options, bob, bobAccount, put4500, wad("200"));
      await tradeOption(options, alice, aliceAccount, put4500, -wad("200"));
      expect(await poolOptionDelta(sys)).to.equal(0n);
      expect(await options.traderDelta(ETH)).to.deep.equal([0n, 0n]);
    });

    it("recounts a series at its new delta on every trade", async function () {
      const sys = await loadFixture(deepBook);
      const { options, alice, aliceAccount, call1500, feeds } = sys;
      await tradeOption(options, alice, aliceAccount, call1500, wad("300"));
      await expect(
        tradeOption(options, alice, aliceAccount, call1500, wad("400")),
      ).to.be.revertedWithCustomError(options, "PoolOptionDeltaLimitExceeded");
      // ETH halves: the calls are at the money (delta ~0.5); the tracked term is stale until the next
      // trade, which recounts all 300 at the new delta and leaves room for more.
      await setFeedPrice(feeds.ETH, "1500");
      await expect(tradeOption(options, alice, aliceAccount, call1500, wad("400"))).to.not.be.reverted;
    });

    it("counts a contract far from the money at 0.2 delta, the floor it pins of the pool (row 220)", async function () {
      const sys = await loadFixture(deepBook);
      const { options, alice, aliceAccount } = sys;
      const expiry = (await options.series(sys.put4500)).expiry;
      const put1500 = await listSeries(options, "ETH", "1500", expiry, false);
      const put1600 = await listSeries(options, "ETH", "1600", expiry, false);
      await tradeOption(options, alice, aliceAccount, put1500, wad("1000"));
      // The puts' own delta is ~0.0001 a contract; the limit counts 0.2: 1,000 contracts, 200 ETH short.
      const spot = await sys.router.getPrice(ETH);
      const vol = await sys.router.getVolatility(ETH);
      const exposure = await options.exposure(aliceAccount, put1500, spot, vol);
      expect(-exposure.delta).to.be.lessThan(wad("1"));
      expect((await options.series(put1500)).deltaPerContract).to.equal(wad("0.2"));
      expect(await options.traderDelta(ETH)).to.deep.equal([0n, wad("200")]);
      // 700 more would make 340 ETH, above the ~333 ETH limit; 600 make 320.
      await expect(tradeOption(options, alice, aliceAccount, put1600, wad("700")))
        .to.be.revertedWithCustomError(options, "PoolOptionDeltaLimitExceeded")
        .withArgs(ETH, wad("340") * 3_000n, await deltaLimit(sys));
      await tradeOption(options, alice, aliceAccount, put1600, wad("600"));
      expect(await options.traderDelta(ETH)).to.deep.equal([0n, wad("320")]);
    });

    it("leaves the premiums the pool holds out of the perp markets' delta limit too", async function () {
      const sys = await loadFixture(deepBook);
      const { options, perps, alice, bob, aliceAccount, bobAccount, call1500 } = sys;
      const balance = await sys.vault.balanceOf(sys.poolAccountId, sys.usdc);
      expect(await perps.poolDeltaBase()).to.equal(balance);
      // 330 deep calls within the option limit pay the pool ~495,000 USDC of premium, on Alice's debt.
      await tradeOption(options, alice, aliceAccount, call1500, wad("330"));
      const held = await options.poolPremiumHeld();
      expect(held).to.be.greaterThan(490_000n * USDC);
      expect(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)).to.be.greaterThan(balance + held);
      expect(await perps.poolDeltaBase()).to.equal(
        (await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)) - held,
      );
      // The perp limit stays ~333 ETH (it was 498 ETH with the premium counted): a 340 ETH long is refused.
      const price = await sys.router.getPrice(ETH);
      const limit = ((await perps.poolDeltaBase()) * QUOTE_UNIT * WAD) / WAD;
      await expect(trade(perps, bob, bobAccount, sys.markets.ETH, wad("340")))
        .to.be.revertedWithCustomError(perps, "PoolDeltaLimitExceeded")
        .withArgs(sys.markets.ETH, anyValue, limit);
      expect((limit * WAD) / price).to.be.lessThan(wad("340"));
      await trade(perps, bob, bobAccount, sys.markets.ETH, wad("300"));
    });

    it("lets only the timelock point the perp market at a registered option market, or at none", async function () {
      const sys = await loadFixture(deepBook);
      const { perps, options, carol } = sys;
      expect(await perps.optionMarket()).to.equal(await options.getAddress());
      // Neither an address the engine does not know nor a registered market without poolPremiumHeld
      // (which would revert every risk-increasing perp trade).
      for (const wrong of [carol.address, await perps.getAddress()]) {
        await expect(perps.setOptionMarket(wrong))
          .to.be.revertedWithCustomError(perps, "InvalidOptionMarket")
          .withArgs(wrong);
      }
      await expect(perps.connect(carol).setOptionMarket(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        perps,
        "AccessManagedUnauthorized",
      );
      await expect(perps.setOptionMarket(ethers.ZeroAddress))
        .to.emit(perps, "OptionMarketSet")
        .withArgs(ethers.ZeroAddress);
      expect(await perps.poolDeltaBase()).to.equal(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc));
    });
  });
  describe("trading", function () {
    it("charges a buyer the model price plus its error margin and k·vega, rounded up, plus the fee", async function () {
      const { options, engine, vault, usdc, bs, expiry, call, alice, aliceAccount, poolAccountId } =
        await loadFixture(fixture);
      const size = wad("2");
      const tte = await pinNextBlock(expiry);
      const m = await modelBounds(bs, SPOT, STRIKE, tte, VOL, true);
      const { premium, premiumQuote, feeQuote } = buyCost(m.high, m.vega, size, SPOT);
      // Fee: 3 bp of 2·3,000 = 1.8 USDC, 20% of it to the insurance fund.
      expect(feeQuote).to.equal(1_800_000n);
      const poolBefore = await vault.balanceOf(poolAccountId, usdc);
      await expect(tradeOption(options, alice, aliceAccount, call, size))
        .to.emit(options, "OptionTraded")
        .withArgs(aliceAccount, call, size, premium, size, premiumQuote * QUOTE_UNIT, feeQuote * QUOTE_UNIT);
      expect(await vault.balanceOf(aliceAccount, usdc)).to.equal(100_000n * USDC - premiumQuote - feeQuote);
      expect((await vault.balanceOf(poolAccountId, usdc)) - poolBefore).to.equal(premiumQuote + 1_440_000n);
      expect(await vault.balanceOf(await engine.insuranceAccountId(), usdc)).to.equal(360_000n);
      expect(await options.positionSize(aliceAccount, call)).to.equal(size);
    });

    it("pays a seller the model price minus its error margin and k·vega, rounded down", async function () {
      const { options, vault, usdc, bs, expiry, put, bob, bobAccount } = await loadFixture(fixture);
      const size = wad("3");
      const tte = await pinNextBlock(expiry);
      const m = await modelBounds(bs, SPOT, STRIKE, tte, VOL, false);
      const spread = ceilDiv((DEFAULT_SERIES_PARAMS.spreadFactor as bigint) * m.vega, WAD);
      const premium = m.low - spread;
      const premiumQuote = (size * premium) / RAW_PER_QUOTE;
      const feeQuote = 2_700_000n; // 3 bp of 9,000 USD
      await expect(tradeOption(options, bob, bobAccount, put, -size))
        .to.emit(options, "OptionTraded")
        .withArgs(bobAccount, put, -size, premium, -size, premiumQuote * QUOTE_UNIT, feeQuote * QUOTE_UNIT);
      expect(await vault.balanceOf(bobAccount, usdc)).to.equal(100_000n * USDC + premiumQuote - feeQuote);
      // Sanity: a 30-day ATM put at 60% vol is worth about 0.4·S·σ·√τ ≈ 206 USD.
      expect(premium).to.be.closeTo(wad("204"), wad("4"));
    });

    it("reverts with PriceLimitExceeded above a buyer's limit or below a seller's", async function () {
      const { options, bs, expiry, call, alice, aliceAccount } = await loadFixture(fixture);
      const tte = await pinNextBlock(expiry);
      const m = await modelBounds(bs, SPOT, STRIKE, tte, VOL, true);
      const { premium } = buyCost(m.high, m.vega, WAD, SPOT);
      await expect(tradeOption(options, alice, aliceAccount, call, WAD, { limitPrice: premium - 1n }))
        .to.be.revertedWithCustomError(options, "PriceLimitExceeded")
        .withArgs(premium, premium - 1n);
      await tradeOption(options, alice, aliceAccount, call, WAD, { limitPrice: wad("1000") });
      await expect(
        tradeOption(options, alice, aliceAccount, call, -WAD, { limitPrice: wad("1000") }),
      ).to.be.revertedWithCustomError(options, "PriceLimitExceeded");
    });

    it("rejects past deadlines, zero sizes, the pool account, strangers and unknown series", async function () {
      const { options, alice, carol, aliceAccount, poolAccountId, accounts, call } =
        await loadFixture(fixture);
      const past = BigInt(await time.latest()) - 1n;
      await expect(tradeOption(options, alice, aliceAccount, call, WAD, { deadline: past }))
        .to.be.revertedWithCustomError(options, "DeadlineExpired")
        .withArgs(past);
      await expect(tradeOption(options, alice, aliceAccount, call, 0n)).to.be.revertedWithCustomError(
        options,
        "ZeroSizeDelta",
      );
      await expect(tradeOption(options, alice, poolAccountId, call, WAD)).to.be.revertedWithCustomError(
        options,
        "PoolAccountCannotTrade",
      );
      await expect(tradeOption(options, carol, aliceAccount, call, WAD)).to.be.revertedWithCustomError(
        accounts,
        "NotAuthorized",
      );
      await expect(tradeOption(options, alice, aliceAccount, 99n, WAD))
        .to.be.revertedWithCustomError(options, "UnknownSeries")
        .withArgs(99n);
    });

    it("makes the pool the counterparty: it holds minus the traders' net while that is nonzero", async function () {
      const { options, engine, alice, bob, aliceAccount, bobAccount, poolAccountId, call } =
        await loadFixture(fixture);
      const optionsAddress = await options.getAddress();
      const held = async (accountId: bigint) =>
        (await engine.accountMarkets(accountId)).map((k) => [k.market, k.marketId]);

      await tradeOption(options, alice, aliceAccount, call, wad("5"));
      await tradeOption(options, bob, bobAccount, call, -wad("2"));
      expect(await options.positionSize(poolAccountId, call)).to.equal(-wad("3"));
      expect(await held(poolAccountId)).to.deep.equal([[optionsAddress, call]]);
      expect(await held(bobAccount)).to.deep.equal([[optionsAddress, call]]);
      const info = await options.series(call);
      expect([info.longOpenInterest, info.shortOpenInterest]).to.deep.equal([wad("5"), wad("2")]);

      await tradeOption(options, bob, bobAccount, call, -wad("3"));
      expect(await options.positionSize(poolAccountId, call)).to.equal(0n);
      expect(await held(poolAccountId)).to.deep.equal([]);

      // Alice flips to short 1: she closes 5 and opens 1 short; the pool is long 1 - 5... = net −(−1 − 5).
      await tradeOption(options, alice, aliceAccount, call, -wad("6"));
      expect(await options.positionSize(aliceAccount, call)).to.equal(-wad("1"));
      expect(await options.positionSize(poolAccountId, call)).to.equal(wad("6"));
      await tradeOption(options, alice, aliceAccount, call, wad("1"));
      await tradeOption(options, bob, bobAccount, call, wad("5"));
      expect(await held(aliceAccount)).to.deep.equal([]);
      expect(await held(bobAccount)).to.deep.equal([]);
      expect(await held(poolAccountId)).to.deep.equal([]);
    });

    it("reports exposure: Greeks times size, a long's value rounded down and a short's up", async function () {
      const { options, bs, expiry, call, put, alice, bob, aliceAccount, bobAccount, poolAccountId } =
        await loadFixture(fixture);
      await tradeOption(options, alice, aliceAccount, call, wad("1.5"));
      await tradeOption(options, bob, bobAccount, put, -wad("2.5"));
      const tte = await timeToExpiryNow(expiry);
      const c = await modelBounds(bs, SPOT, STRIKE, tte, VOL, true);
      const p = await modelBounds(bs, SPOT, STRIKE, tte, VOL, false);

      const long = await options.exposure(aliceAccount, call, SPOT, VOL);
      expect(long.delta).to.equal((wad("1.5") * c.delta) / WAD);
      expect(long.gamma).to.equal((wad("1.5") * c.gamma) / WAD);
      expect(long.vega).to.equal((wad("1.5") * c.vega) / WAD);
      expect(long.value).to.equal((wad("1.5") * c.low) / WAD);
      expect(long.notional).to.equal(wad("4500"));
      expect(long.optionSize).to.equal(wad("1.5"));

      const short = await options.exposure(bobAccount, put, SPOT, VOL);
      // −2.5·delta(put) > 0; floor division of negative products rounds toward −∞.
      expect(short.delta).to.equal((-wad("2.5") * p.delta) / WAD);
      expect(short.vega).to.equal(-ceilDiv(wad("2.5") * p.vega, WAD));
      expect(short.value).to.equal(-ceilDiv(wad("2.5") * p.high, WAD));
      expect(short.optionSize).to.equal(-wad("2.5"));

      // The pool mirrors both: short 1.5 calls, long 2.5 puts.
      const poolCall = await options.exposure(poolAccountId, call, SPOT, VOL);
      expect(poolCall.value).to.equal(-ceilDiv(wad("1.5") * c.high, WAD));
      const poolPut = await options.exposure(poolAccountId, put, SPOT, VOL);
      expect(poolPut.value).to.equal((wad("2.5") * p.low) / WAD);
      expect(poolPut.optionSize).to.equal(wad("2.5"));
    });

    it("adds the series' skew to the feed volatility", async function () {
      const { options, bs, expiry, call, alice, aliceAccount } = await loadFixture(fixture);
      await options.setSkew(call, -wad("0.02"));
      await tradeOption(options, alice, aliceAccount, call, WAD);
      const m = await modelBounds(bs, SPOT, STRIKE, await timeToExpiryNow(expiry), wad("0.58"), true);
      expect((await options.exposure(aliceAccount, call, SPOT, VOL)).value).to.equal(m.low);
    });

    it("rejects risk-increasing trades while the engine is paused but always lets positions shrink", async function () {
      const { options, engine, alice, aliceAccount, call } = await loadFixture(fixture);
      await tradeOption(options, alice, aliceAccount, call, wad("2"));
      await engine.pause();
      await expect(tradeOption(options, alice, aliceAccount, call, WAD)).to.be.revertedWithCustomError(
        options,
        "RiskIncreasePaused",
      );
      // A flip adds new risk too.
      await expect(tradeOption(options, alice, aliceAccount, call, -wad("3"))).to.be.revertedWithCustomError(
        options,
        "RiskIncreasePaused",
      );
      await tradeOption(options, alice, aliceAccount, call, -wad("2"));
      expect(await options.positionSize(aliceAccount, call)).to.equal(0n);
    });

    it("reverts with the engine's RiskIncreased when closing the long leg of a spread leaves a naked short it cannot carry", async function () {
      const sys = await loadFixture(fixture);
      const { options, engine, usdc, carol, call } = sys;
      const call3300 = await listSeries(options, "ETH", "3300", sys.expiry, true);
      const carolAccount = await openAccount(sys, carol, MarginMode.CROSS, [[usdc, 300n * USDC]]);
      // A bull call spread: long the 3,000 call, short the 3,300 call (IM ≈ 81 USD, net premium ≈ 75).
      await tradeOption(options, carol, carolAccount, call, WAD);
      await tradeOption(options, carol, carolAccount, call3300, -WAD);
      const before = (await engine.health(carolAccount)).maintenanceRequirement;
      // Selling the long call is a reduction, but it leaves a naked short call (floor alone 150 USD).
      await expect(tradeOption(options, carol, carolAccount, call, -WAD))
        .to.be.revertedWithCustomError(engine, "RiskIncreased")
        // The requirement decays with time to expiry between this read and the trade's block.
        .withArgs(
          carolAccount,
          (b: bigint) => b <= before + before / 1000n && b >= before - before / 1000n,
          anyValue,
        );
      // Buying back the short leg first really reduces risk, then the long leg can go.
      await tradeOption(options, carol, carolAccount, call3300, WAD);
      await tradeOption(options, carol, carolAccount, call, -WAD);
      expect(await engine.accountMarkets(carolAccount)).to.deep.equal([]);
    });

    it("reverts with InsufficientMargin when the account cannot carry a new short", async function () {
      const sys = await loadFixture(fixture);
      const { options, engine, usdc, carol, call } = sys;
      const carolAccount = await openAccount(sys, carol, MarginMode.CROSS, [[usdc, 1_000n * USDC]]);
      // 10 short calls need about 10·(0.5·300 + ½Γ·300² + ...) ≫ 1,000 USDC.
      await expect(tradeOption(options, carol, carolAccount, call, -wad("10"))).to.be.revertedWithCustomError(
        engine,
        "InsufficientMargin",
      );
    });

    it("reverts with OpenInterestCapExceeded when a side would exceed the series' cap", async function () {
      const { options, alice, bob, aliceAccount, bobAccount, call } = await loadFixture(fixture);
      await options.setSeriesParams(call, seriesParams({ maxOpenInterest: wad("10") }));
      await tradeOption(options, alice, aliceAccount, call, wad("10"));
      await expect(tradeOption(options, alice, aliceAccount, call, 1n))
        .to.be.revertedWithCustomError(options, "OpenInterestCapExceeded")
        .withArgs(call, true, wad("10") + 1n, wad("10"));
      await tradeOption(options, bob, bobAccount, call, -wad("10"));
      await expect(tradeOption(options, bob, bobAccount, call, -1n))
        .to.be.revertedWithCustomError(options, "OpenInterestCapExceeded")
        .withArgs(call, false, wad("10") + 1n, wad("10"));
    });

    it("tracks the traders' vega per side and caps each side it grows at ratio × (pool quote balance − premiums held)", async function () {
      const {
        options,
        vault,
        usdc,
        bs,
        expiry,
        call,
        put,
        alice,
        bob,
        aliceAccount,
        bobAccount,
        poolAccountId,
      } = await loadFixture(fixture);
      // Ratio 0.0005: the pool (≈ 1,000,000 USDC) may carry about 500 USD of vega per 1.0 of volatility.
      // An ATM 30-day ETH option has vega S·φ(d1)·√τ ≈ 3000·0.398·0.287 ≈ 343 (calls and puts alike).
      await options.setPoolVegaRatio(ETH, wad("0.0005"));
      const tte = await pinNextBlock(expiry);
      const vega = (await modelBounds(bs, SPOT, STRIKE, tte, VOL, true)).vega;
      await tradeOption(options, alice, aliceAccount, call, WAD);
      expect(await options.traderVega(ETH)).to.deep.equal([vega, 0n]); // the pool is short one call

      // Another 0.6 puts bought: 343 + 0.6·343 ≈ 549 > 500. The call's premium is not in the base.
      const base = (await vault.balanceOf(poolAccountId, usdc)) - (await options.poolPremiumHeld());
      const limit = (base * QUOTE_UNIT * wad("0.0005")) / WAD;
      expect(limit).to.be.closeTo(wad("500"), wad("0.1"));
      await expect(tradeOption(options, alice, aliceAccount, put, wad("0.6")))
        .to.be.revertedWithCustomError(options, "PoolVegaLimitExceeded")
        .withArgs(ETH, anyValue, limit);
      // Bob writes a put: the pool is flat in vega, but Bob may buy it back at any time and leave the
      // pool short Alice's options alone, so the buyers' side still counts on its own.
      await tradeOption(options, bob, bobAccount, put, -WAD);
      const [longVega, shortVega] = await options.traderVega(ETH);
      expect(abs(shortVega - longVega)).to.be.lessThan(wad("0.01"));
      await expect(tradeOption(options, alice, aliceAccount, put, wad("0.6")))
        .to.be.revertedWithCustomError(options, "PoolVegaLimitExceeded")
        .withArgs(ETH, anyValue, anyValue);
      // The writers' side has its own room: 0.4 more puts written (≈ 480) fit, 0.6 (≈ 549) do not.
      await expect(tradeOption(options, bob, bobAccount, put, -wad("0.6"))).to.be.revertedWithCustomError(
        options,
        "PoolVegaLimitExceeded",
      );
      await tradeOption(options, bob, bobAccount, put, -wad("0.4"));
      // Buying back takes the writers' side down whatever the limit (closes are never refused).
      await options.setPoolVegaRatio(ETH, wad("0.0001"));
      await tradeOption(options, bob, bobAccount, put, wad("1.4"));
      expect((await options.traderVega(ETH))[1]).to.equal(0n);
    });

    it("reverts with SeriesExpired at and after expiry", async function () {
      const { options, alice, aliceAccount, call, expiry, feeds, volFeeds } = await loadFixture(fixture);
      await tradeOption(options, alice, aliceAccount, call, WAD);
      await advanceTo({ feeds, volFeeds }, expiry);
      await expect(tradeOption(options, alice, aliceAccount, call, -WAD))
        .to.be.revertedWithCustomError(options, "SeriesExpired")
        .withArgs(call, expiry);
    });
  });

  describe("pool vega limit", function () {
    /**
     * One-year ETH calls (strikes 2,600 … 3,800 and a deep in-the-money 300), Alice with 20M USDC. The
     * pool delta ratio is at its bound (10) so that the vega limit is the one tested.
     */
    async function yearBook() {
      const sys = await deployOptionsSystem({ poolDeltaRatio: wad("10") });
      const bs = await ethers.deployContract("BlackScholesHarness");
      const expiry = await fromNow(365n * DAY);
      const calls = new Map<string, bigint>();
      for (const k of ["300", "2600", "2800", "3000", "3200", "3400", "3600", "3800"]) {
        calls.set(k, await listSeries(sys.options, "ETH", k, expiry, true));
      }
      const aliceAccount = await openAccount(sys, sys.alice, MarginMode.CROSS, [
        [sys.usdc, 20_000_000n * USDC],
      ]);
      return { ...sys, bs, expiry, calls, aliceAccount };
    }

    /** The fee's share that stays with the pool (the rest goes to the insurance fund, rounded down). */
    const poolFeeShare = (feeQuote: bigint): bigint =>
      feeQuote - (feeQuote * (DEFAULT_SERIES_PARAMS.insuranceFeeShare as bigint)) / WAD;

    /** Premium and fee (quote units) of a trade, from its OptionTraded event. */
    async function traded(options: OptionMarket, tx: ContractTransactionResponse) {
      const log = eventOf(await tx.wait(), options, "OptionTraded");
      return { premiumQuote: log.args.premium / QUOTE_UNIT, feeQuote: log.args.fee / QUOTE_UNIT };
    }

    /**
     * Buys `lot` contracts of each series in turn until the pool vega limit refuses one; returns the
     * pool's fee income over the fills and the refused trade (series id), if any.
     */
    async function buyUntilLimit(
      sys: Awaited<ReturnType<typeof yearBook>>,
      strikes: string[],
      lot: bigint,
      lotsPerSeries: number,
    ) {
      let feeIncome = 0n;
      let premiums = 0n;
      for (const k of strikes) {
        const id = sys.calls.get(k)!;
        for (let i = 0; i < lotsPerSeries; i++) {
          let tx: ContractTransactionResponse;
          try {
            tx = await tradeOption(sys.options, sys.alice, sys.aliceAccount, id, lot);
          } catch {
            return { feeIncome, premiums, refused: id };
          }
          const { premiumQuote, feeQuote } = await traded(sys.options, tx);
          feeIncome += poolFeeShare(feeQuote);
          premiums += premiumQuote;
        }
      }
      return { feeIncome, premiums, refused: undefined };
    }

    it("premiums the pool receives do not raise its vega limit", async function () {
      const sys = await loadFixture(yearBook);
      const { options, vault, usdc, bs, pool, poolAccountId, volFeeds, expiry, calls } = sys;
      const balance0 = await vault.balanceOf(poolAccountId, usdc);

      // By hand: 250 one-year ATM calls pay premiumQuote into the pool's balance, and the same amount is
      // held against them, so the base moves only by the pool's share of the fee.
      const tte = await pinNextBlock(expiry);
      const m = await modelBounds(bs, SPOT, STRIKE, tte, VOL, true);
      const cost = buyCost(m.high, m.vega, wad("250"), SPOT);
      await tradeOption(options, sys.alice, sys.aliceAccount, calls.get("3000")!, wad("250"));
      expect(await options.poolPremiumHeld()).to.equal(cost.premiumQuote);
      const balance1 = await vault.balanceOf(poolAccountId, usdc);
      expect(balance1).to.equal(balance0 + cost.premiumQuote + poolFeeShare(cost.feeQuote));
      expect(balance1 - (await options.poolPremiumHeld())).to.equal(balance0 + poolFeeShare(cost.feeQuote));

      // Keep writing (the reviewer's F3): at ratio 1 the limit stays at the premium-free balance.
      const run = await buyUntilLimit(sys, ["2600", "2800", "3000", "3200", "3400", "3600"], wad("250"), 4);
      expect(run.refused, "the limit refused a trade").to.be.a("bigint");
      expect(await options.poolPremiumHeld()).to.equal(cost.premiumQuote + run.premiums);
      const base = balance0 + poolFeeShare(cost.feeQuote) + run.feeIncome;
      expect(base).to.equal((await vault.balanceOf(poolAccountId, usdc)) - (await options.poolPremiumHeld()));
      await expect(tradeOption(options, sys.alice, sys.aliceAccount, run.refused!, wad("250")))
        .to.be.revertedWithCustomError(options, "PoolVegaLimitExceeded")
        .withArgs(ETH, anyValue, base * QUOTE_UNIT); // ratio 1
      const [vega] = await options.traderVega(ETH); // the buyers' side: the pool's short vega
      const equity = await pool.totalAssets();
      expect(vega).to.be.at.most(base * QUOTE_UNIT);
      expect(vega).to.be.at.most(equity * QUOTE_UNIT);

      // A 40-point volatility rise costs about 40% of equity, not all of it (the review: 1,031,895 → 0).
      await setFeedPrice(volFeeds.ETH, "1.0");
      expect(await pool.totalAssets()).to.be.greaterThan(equity / 2n);
    });

    it("deep in-the-money purchases do not raise the pool's vega limit", async function () {
      const sys = await loadFixture(yearBook);
      const { options, vault, usdc, pool, poolAccountId, calls } = sys;
      const balance0 = await vault.balanceOf(poolAccountId, usdc);
      // 1,000 calls struck at 300 park ~2.7M of premium in the pool's balance and carry ~no vega.
      const itm = await traded(
        options,
        await tradeOption(options, sys.alice, sys.aliceAccount, calls.get("300")!, wad("1000")),
      );
      expect(itm.premiumQuote).to.be.greaterThan(2_600_000n * USDC);
      expect(await options.poolPremiumHeld()).to.equal(itm.premiumQuote);

      // The reviewer's F3b: the ATM calls that followed filled at 5.46× equity. Now they stop at the
      // limit computed without the parked premium.
      const run = await buyUntilLimit(sys, ["2800", "3000", "3200", "3400", "3600", "3800"], wad("250"), 4);
      expect(run.refused, "the limit refused a trade").to.be.a("bigint");
      expect(run.premiums).to.be.greaterThan(0n); // some ATM calls did fill
      const base = balance0 + poolFeeShare(itm.feeQuote) + run.feeIncome;
      await expect(tradeOption(options, sys.alice, sys.aliceAccount, run.refused!, wad("250")))
        .to.be.revertedWithCustomError(options, "PoolVegaLimitExceeded")
        .withArgs(ETH, anyValue, base * QUOTE_UNIT);
      expect((await options.traderVega(ETH))[0]).to.be.at.most((await pool.totalAssets()) * QUOTE_UNIT);
    });

    it("premium the pool paid for options it holds is not added to its balance", async function () {
      const { options, vault, usdc, alice, bob, aliceAccount, bobAccount, call, put, poolAccountId } =
        await loadFixture(fixture);
      // Ratio 0.0005: about 500 USD of vega; one ATM 30-day option has ≈ 343.
      await options.setPoolVegaRatio(ETH, wad("0.0005"));
      await tradeOption(options, bob, bobAccount, call, -WAD); // the pool buys a call: it pays the premium
      const held = await options.poolPremiumHeld();
      expect(held).to.be.lessThan(0n);
      // The base is the balance (the premium already left it), not balance − held.
      const limit = ((await vault.balanceOf(poolAccountId, usdc)) * QUOTE_UNIT * wad("0.0005")) / WAD;
      await expect(tradeOption(options, alice, aliceAccount, put, -wad("0.6")))
        .to.be.revertedWithCustomError(options, "PoolVegaLimitExceeded")
        .withArgs(ETH, anyValue, limit);
    });

    it("settling a series holds back the payouts it owes until its accounts are settled", async function () {
      const sys = await loadFixture(fixture);
      const { options, alice, bob, aliceAccount, bobAccount, call, expiry, feeds } = sys;
      const bought = await traded(options, await tradeOption(options, alice, aliceAccount, call, wad("2")));
      const sold = await traded(options, await tradeOption(options, bob, bobAccount, call, -WAD));
      expect(await options.poolPremiumHeld()).to.equal(bought.premiumQuote - sold.premiumQuote);

      await advanceTo(sys, expiry);
      const round = (await feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(feeds.ETH, "3300");
      await options.settleSeries(call, round);
      // The premiums give way to the net payout due: 2 × 300 to Alice less 1 × 300 from Bob.
      expect(await options.poolPremiumHeld()).to.equal(300n * USDC);
      await options.settleAccount(aliceAccount, call); // the pool pays 600
      expect(await options.poolPremiumHeld()).to.equal(-300n * USDC);
      await options.settleAccount(bobAccount, call); // and receives 300
      expect(await options.poolPremiumHeld()).to.equal(0n);
    });

    it("a liquidation transfer leaves the premium held unchanged (the pool's position does not move)", async function () {
      const { options, engine, alice, bob, aliceAccount, bobAccount, call } = await loadFixture(fixture);
      await tradeOption(options, alice, aliceAccount, call, wad("2"));
      await tradeOption(options, bob, bobAccount, call, -WAD);
      const held = await options.poolPremiumHeld();
      await options
        .connect(await signerFor(engine))
        .transferPosition(aliceAccount, bobAccount, call, wad("0.5"));
      expect(await options.positionSize(bobAccount, call)).to.equal(0n);
      expect(await options.poolPremiumHeld()).to.equal(held);
    });
  });

  describe("scenario PnLs (the engine's repricing)", function () {
    /** Alice long 2 calls, Bob short 3, the pool long 1: three positions to reprice. */
    async function holders() {
      const sys = await loadFixture(fixture);
      await tradeOption(sys.options, sys.alice, sys.aliceAccount, sys.call, wad("2"));
      await tradeOption(sys.options, sys.bob, sys.bobAccount, sys.call, -wad("3"));
      return sys;
    }

    it("reprices every scenario when a volatility move exceeds the series' volatility", async function () {
      const { options, aliceAccount, bobAccount, call, poolAccountId } = await holders();
      const spot = wad("3000");
      const spotMoves = [-wad("300"), 0n, wad("150")];
      const volMoves = [-wad("0.5"), 0n, wad("0.7")]; // 0.7 > 0.6
      for (const account of [aliceAccount, bobAccount, poolAccountId]) {
        const pnls = await options.scenarioPnls(account, call, spot, VOL, spotMoves, volMoves);
        const base = (await options.exposure(account, call, spot, VOL)).value;
        const expected = [];
        for (const dS of spotMoves) {
          for (const dv of volMoves) {
            expected.push((await options.exposure(account, call, spot + dS, VOL + dv)).value - base);
          }
        }
        expect(pnls).to.deep.equal(expected);
        expect(pnls[4]).to.equal(0n); // no move
      }
    });

    it("reprices each spot move and applies smaller volatility moves to second order there", async function () {
      const { options, aliceAccount, bobAccount, call, poolAccountId } = await holders();
      const spot = wad("3000");
      const spotMoves = [-wad("300"), 0n, wad("150")];
      const volMoves = [-wad("0.25"), 0n, wad("0.25")]; // ≤ 0.6
      for (const account of [aliceAccount, bobAccount, poolAccountId]) {
        const pnls = await options.scenarioPnls(account, call, spot, VOL, spotMoves, volMoves);
        const base = (await options.exposure(account, call, spot, VOL)).value;
        for (const [i, dS] of spotMoves.entries()) {
          // Exposure at the moved spot: its value, and size·vega and size·volga rounded down.
          const e = await options.exposure(account, call, spot + dS, VOL);
          for (const [j, dv] of volMoves.entries()) {
            const second =
              dv === 0n ? 0n : mulWadDown(e.vega, dv) + divFloor(mulWadDown(mulWadDown(e.volga, dv), dv), 2n);
            expect(pnls[i * 3 + j]).to.equal(e.value - base + second);
            // Second order in 25 points of volatility: within 0.5% of the call's notional of repricing.
            const exact = (await options.exposure(account, call, spot + dS, VOL + dv)).value - base;
            expect(abs(pnls[i * 3 + j] - exact)).to.be.lessThan(wad("15"));
          }
        }
      }
      // A long call gains when spot and volatility rise; the short loses.
      const [long, short] = await Promise.all(
        [aliceAccount, bobAccount].map((a) => options.scenarioPnls(a, call, spot, VOL, spotMoves, volMoves)),
      );
      expect(long[8]).to.be.greaterThan(0n);
      expect(short[8]).to.be.lessThan(0n);
    });

    it("reports 0 in every scenario for an account without a position", async function () {
      const { options, aliceAccount, put } = await loadFixture(fixture);
      expect(
        await options.scenarioPnls(aliceAccount, put, wad("3000"), VOL, [wad("-300")], [0n, wad("0.1")]),
      ).to.deep.equal([0n, 0n]);
    });
  });

  describe("the last hour before expiry", function () {
    it("marks longs at intrinsic value, shorts at the one-hour price, with one-hour Greeks", async function () {
      const { options, bs, feeds, volFeeds, expiry, call, alice, bob, aliceAccount, bobAccount } =
        await loadFixture(fixture);
      await tradeOption(options, alice, aliceAccount, call, WAD);
      await tradeOption(options, bob, bobAccount, call, -WAD);
      await advanceTo({ feeds, volFeeds }, expiry - 30n * 60n);
      await setFeedPrice(feeds.ETH, "3030");
      const spot = wad("3030");
      const oneHour = await modelBounds(bs, spot, STRIKE, HOUR, VOL, true);
      const long = await options.exposure(aliceAccount, call, spot, VOL);
      expect(long.value).to.equal(wad("30")); // intrinsic 3,030 − 3,000
      expect(long.delta).to.equal(oneHour.delta);
      expect(long.gamma).to.equal(oneHour.gamma);
      const short = await options.exposure(bobAccount, call, spot, VOL);
      expect(short.value).to.equal(-oneHour.high);
      // 1% in the money with one hour left (σ√τ = 0.6·√(1/8760) ≈ 0.0064, d1 ≈ 1.56) the time value
      // is about half a dollar; the short owes it, the long is not credited with it.
      expect(oneHour.price - wad("30")).to.be.closeTo(wad("0.5"), wad("0.05"));
    });

    it("charges buyers the one-hour price and pays sellers intrinsic value minus the spread", async function () {
      const { options, bs, vault, usdc, feeds, volFeeds, expiry, call, alice, aliceAccount } =
        await loadFixture(fixture);
      await advanceTo({ feeds, volFeeds }, expiry - 10n * 60n);
      await setFeedPrice(feeds.ETH, "3100");
      const spot = wad("3100");
      const m = await modelBounds(bs, spot, STRIKE, HOUR, VOL, true);
      const { premium } = buyCost(m.high, m.vega, WAD, spot);
      await expect(tradeOption(options, alice, aliceAccount, call, WAD))
        .to.emit(options, "OptionTraded")
        .withArgs(aliceAccount, call, WAD, premium, WAD, ceilDiv(premium, QUOTE_UNIT) * QUOTE_UNIT, anyValue);
      const before = await vault.balanceOf(aliceAccount, usdc);
      const spread = ceilDiv((DEFAULT_SERIES_PARAMS.spreadFactor as bigint) * m.vega, WAD);
      const sellPremium = wad("100") - spread;
      await expect(tradeOption(options, alice, aliceAccount, call, -WAD))
        .to.emit(options, "OptionTraded")
        .withArgs(
          aliceAccount,
          call,
          -WAD,
          sellPremium,
          0n,
          (sellPremium / QUOTE_UNIT) * QUOTE_UNIT,
          anyValue,
        );
      expect((await vault.balanceOf(aliceAccount, usdc)) - before).to.equal(
        sellPremium / QUOTE_UNIT - 930_000n,
      );
    });
  });

  describe("outside the model's domain", function () {
    it("values a series whose strike is more than 100× the spot without reverting, from the model at 100× spot", async function () {
      const { options, engine, feeds, call, put, alice, bob, aliceAccount, bobAccount } =
        await loadFixture(fixture);
      await tradeOption(options, alice, aliceAccount, call, WAD);
      await tradeOption(options, bob, bobAccount, put, -WAD);
      await setFeedPrice(feeds.ETH, "25");
      const spot = wad("25");
      const longCall = await options.exposure(aliceAccount, call, spot, VOL);
      expect([longCall.value, longCall.delta, longCall.gamma, longCall.vega]).to.deep.equal([0n, 0n, 0n, 0n]);
      // Short put: priced at K' = 100·S = 2,500 (2,475 of intrinsic value, no time value left) plus the
      // 500 of strike beyond it (review round 44: intrinsic + min(S, K) = 3,000 jumped at the edge);
      // delta of a long put is −1; σ√τ 1 wei, so the engine reprices it in every scenario.
      const shortPut = await options.exposure(bobAccount, put, spot, VOL);
      expect(shortPut.value).to.be.closeTo(-wad("2975"), 10n ** 6n);
      expect(shortPut.value).to.be.lessThan(-wad("2975"));
      expect(shortPut.delta).to.equal(WAD);
      expect(shortPut.optionSize).to.equal(-WAD);
      expect(shortPut.totalVolatility).to.equal(1n);
      await engine.health(bobAccount); // does not revert
    });
  });

  describe("transferPosition", function () {
    it("reverts with PoolAccountCannotTrade for a slice to or from the pool's account (its position is the traders' net)", async function () {
      const { options, engine, alice, aliceAccount, call, poolAccountId } = await loadFixture(fixture);
      await tradeOption(options, alice, aliceAccount, call, wad("2"));
      const asEngine = options.connect(await signerFor(engine));
      for (const [from, to] of [
        [aliceAccount, poolAccountId],
        [poolAccountId, aliceAccount],
      ]) {
        await expect(asEngine.transferPosition(from, to, call, WAD)).to.be.revertedWithCustomError(
          options,
          "PoolAccountCannotTrade",
        );
      }
    });

    it("reverts with NotMarginEngine for any caller but the engine", async function () {
      const { options, alice, aliceAccount, bobAccount, call } = await loadFixture(fixture);
      await expect(options.connect(alice).transferPosition(aliceAccount, bobAccount, call, WAD))
        .to.be.revertedWithCustomError(options, "NotMarginEngine")
        .withArgs(alice.address);
    });

    it("nets open interest and the traders' side vegas at the series' last vega when the receiver is opposite", async function () {
      const { options, engine, alice, bob, aliceAccount, bobAccount, call } = await loadFixture(fixture);
      await tradeOption(options, alice, aliceAccount, call, wad("2"));
      await tradeOption(options, bob, bobAccount, call, -WAD);
      const [long0, short0] = await options.traderVega(ETH);
      const vega = short0; // one contract written: the vega per contract at the last trade
      expect(long0).to.equal(2n * vega);
      // Half of Alice's 2 moves to Bob, who is short 1: both sides fall by 1 contract.
      await options
        .connect(await signerFor(engine))
        .transferPosition(aliceAccount, bobAccount, call, wad("0.5"));
      const info = await options.series(call);
      expect([info.longOpenInterest, info.shortOpenInterest]).to.deep.equal([WAD, 0n]);
      expect(await options.traderVega(ETH)).to.deep.equal([vega, 0n]);
    });

    it("leaves a position and the open interest as they are when moved to the same account", async function () {
      const { options, engine, alice, aliceAccount, call } = await loadFixture(fixture);
      await tradeOption(options, alice, aliceAccount, call, wad("2"));
      const before = await options.series(call);
      const asEngine = options.connect(await signerFor(engine));
      await asEngine.transferPosition(aliceAccount, aliceAccount, call, wad("0.5"));
      expect(await options.positionSize(aliceAccount, call)).to.equal(wad("2"));
      const after = await options.series(call);
      expect([after.longOpenInterest, after.shortOpenInterest]).to.deep.equal([
        before.longOpenInterest,
        before.shortOpenInterest,
      ]);
    });
  });

  describe("liquidation", function () {
    it("moves floor(|size|·fraction) to the bidder, netting an opposite position and its open interest", async function () {
      const sys = await loadFixture(fixture);
      const { options, engine, auction, feeds, usdc, bob, carol, keeper, call, poolAccountId } = sys;
      const bobAccount = await openAccount(sys, bob, MarginMode.CROSS, [[usdc, 600n * USDC]]);
      const carolAccount = await openAccount(sys, carol, MarginMode.CROSS, [[usdc, 50_000n * USDC]]);
      await tradeOption(options, bob, bobAccount, call, -WAD);
      await tradeOption(options, carol, carolAccount, call, WAD);
      await setFeedPrice(feeds.ETH, "3600"); // Bob's short call is now ~650 deep
      await auction.connect(keeper).startAuction(bobAccount);
      const receipt = (await (
        await auction.connect(carol).bid(bobAccount, carolAccount, WAD, ethers.MaxUint256)
      ).wait())!;
      const bid = eventOf(receipt, auction, "AuctionBid");
      const filled = bid.args.fraction as bigint;
      const moved = (WAD * filled) / WAD; // floor(|size| · fraction) with |size| = 1 contract
      expect(filled).to.be.greaterThan(0n);
      expect(await options.positionSize(bobAccount, call)).to.equal(-WAD + moved);
      expect(await options.positionSize(carolAccount, call)).to.equal(WAD - moved);
      // Carol's long absorbed the slice: both sides of open interest shrink, the pool stays flat.
      const info = await options.series(call);
      expect([info.longOpenInterest, info.shortOpenInterest]).to.deep.equal([WAD - moved, WAD - moved]);
      expect(await options.positionSize(poolAccountId, call)).to.equal(0n);
      if (moved === WAD) expect(await engine.accountMarkets(carolAccount)).to.deep.equal([]);
    });
  });

  describe("quoteTrade", function () {
    it("quotes the premium per contract and the fee the trade would pay", async function () {
      const { options, bs, expiry, call } = await loadFixture(fixture);
      const m = await modelBounds(bs, SPOT, STRIKE, await timeToExpiryNow(expiry), VOL, true);
      const { premium, feeQuote } = buyCost(m.high, m.vega, wad("2"), SPOT);
      expect(await options.quoteTrade(call, wad("2"))).to.deep.equal([premium, feeQuote * QUOTE_UNIT]);
    });
  });
});
