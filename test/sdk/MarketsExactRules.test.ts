import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  type AccountState,
  type OptionMarketState,
  type OptionPoolState,
  type OptionPositionState,
  type OptionValuation,
  type PerpMarketState,
  type PerpPositionState,
  WAD,
  ZERO_EXPOSURE,
  accountHealth,
  applyOptionTrade,
  applyPerpTrade,
  blackScholes,
  countedDelta,
  getAccountState,
  marketKey,
  modelVolatility,
  movedSpot,
  optionExposure,
  optionIncreasesRisk,
  optionPoolLimits,
  optionPositionValue,
  optionQuote,
  optionScenarioPnls,
  optionValuation,
  perpExposure,
  perpFundingAt,
  perpQuote,
  poolLimit,
  premiumAndFee,
  recountOptionPool,
  scenarioPnlsOf,
  seriesStatus,
  settlementPayout,
  toHealth,
} from "../../sdk/src";
import { optionTradingCost } from "../../sdk/src/markets/option";
import { DEFAULT_RISK_PARAMS, MarginMode, deploySystem, eventOf, openAccount, wad } from "../shared/system";
import {
  DAY,
  HOUR,
  deployOptionsSystemWithoutFunding,
  fromNow,
  listSeries,
  tradeOption,
  unsettledSeries,
} from "../shared/options";
import {
  absorbAfterAuction,
  backstopLong100,
  frozenLongAndPartner,
  mineAt,
  perpMarketState,
  trade,
  wethDebtorSystem,
} from "../shared/perps";
import { INTEREST_MODEL } from "../shared/interest";
import { mintAndApprove } from "../shared/tokens";
import { assetId, setFeedPrice } from "../shared/oracles";
import { sdkClient, sdkExposureOf } from "../shared/sdk";
import { oneExpiredCall } from "../shared/keeper";

const USDC = 10n ** 6n;
/** One USDC unit in USD WAD. */
const USDC_UNIT = 10n ** 12n;
const ETH = assetId("ETH").toLowerCase();
/** The Black-Scholes library's largest spot (BlackScholes.MAX_PRICE). */
const MAX_PRICE = 10n ** 36n;

/**
 * The SDK's market models (`sdk/src/markets/option.ts`, `perp.ts`, `types.ts`) and its state reader
 * (`actions/getAccountState.ts`, `actions/internal/readers.ts`), pinned to the contracts they copy: the
 * option market's own views (`exposure`, `scenarioPnls`, `quoteTrade`, `series`, `traderVega`) at the
 * edges of every regime, compared to the wei, and the pure rules with hand-worked numbers (review rounds
 * 109 and 112: mutation testing of these files).
 */
describe("SDK market models and state reader: exact rules", function () {
  /** A long contract's valuation with the given fields (others 0). */
  function valuation(fields: Partial<OptionValuation>): OptionValuation {
    return {
      low: 0n,
      high: 0n,
      delta: 0n,
      gamma: 0n,
      vega: 0n,
      vanna: 0n,
      volga: 0n,
      totalVolatility: 0n,
      modelVolatility: 0n,
      ...fields,
    };
  }

  describe("option series status and valuation regimes", function () {
    const expiry = 1_000_000n;
    const call = unsettledSeries(wad("3000"), expiry, true);
    const put = unsettledSeries(wad("3000"), expiry, false);

    it("counts a series as expired from its expiry second on", function () {
      expect(seriesStatus(call, expiry - 1n)).to.equal("active");
      expect(seriesStatus(call, expiry)).to.equal("expired");
      expect(seriesStatus({ ...call, settled: true }, expiry - 1n)).to.equal("settled");
    });

    it("clamps feed volatility plus skew into [1%, 500%]", function () {
      expect(modelVolatility(wad("0.6"), wad("0.05"))).to.equal(wad("0.65"));
      // 2% − 1.5% = 0.5% → 1%; 4.9 + 0.2 = 5.1 → 5; 5 + 1 wei → 5.
      expect(modelVolatility(wad("0.02"), -wad("0.015"))).to.equal(wad("0.01"));
      expect(modelVolatility(wad("4.9"), wad("0.2"))).to.equal(wad("5"));
      expect(modelVolatility(wad("5") + 1n, 0n)).to.equal(wad("5"));
      expect(modelVolatility(wad("0.01"), 0n)).to.equal(wad("0.01"));
    });

    it("values a settled series at its settlement price, not at spot", function () {
      const settled = { ...call, settled: true, settlementPrice: wad("3200") };
      const v = optionValuation(settled, wad("5000"), wad("0.6"), expiry + 10n);
      // max(0, 3200 − 3000) = 200.
      expect([v.low, v.high, v.delta, v.totalVolatility]).to.deep.equal([wad("200"), wad("200"), 0n, 0n]);
    });

    it("values a series at intrinsic value from its expiry second on, with a delta of ±1 in the money", function () {
      const v = optionValuation(call, wad("3200"), wad("0.6"), expiry);
      expect([v.low, v.high, v.delta, v.vega, v.totalVolatility]).to.deep.equal([
        wad("200"),
        wad("200"),
        WAD,
        0n,
        0n,
      ]);
      const p = optionValuation(put, wad("2900"), wad("0.6"), expiry);
      expect([p.low, p.high, p.delta]).to.deep.equal([wad("100"), wad("100"), -WAD]);
      // Out of the money: 0 and no delta.
      const otm = optionValuation(put, wad("3100"), wad("0.6"), expiry);
      expect([otm.low, otm.high, otm.delta]).to.deep.equal([0n, 0n, 0n]);
    });

    it("bounds a series at a spot of 0 by intrinsic value and intrinsic value + min(S, K)", function () {
      // Put at spot 0: intrinsic 3000, + min(0, 3000) = 3000; call: 0 and 0 + 0.
      const p = optionValuation(put, 0n, wad("0.6"), expiry - DAY);
      expect([p.low, p.high, p.delta]).to.deep.equal([wad("3000"), wad("3000"), -WAD]);
      const c = optionValuation(call, 0n, wad("0.6"), expiry - DAY);
      expect([c.low, c.high, c.delta]).to.deep.equal([0n, 0n, 0n]);
    });

    it("prices a spot of exactly MAX_PRICE in the model (at K' = MAX_PRICE/100) and one wei above outside it", function () {
      const at = optionValuation(call, MAX_PRICE, wad("0.6"), expiry - DAY);
      // 3000·100 < 1e36: K' = (1e36 − 1)/100 + 1 = 1e34, repriced (σ√τ = 1 wei).
      const kPrime = 10n ** 34n;
      const bs = blackScholes(MAX_PRICE, kPrime, DAY, wad("0.6"), true);
      const margin = (MAX_PRICE + kPrime) / 10n ** 17n + 10n;
      expect([at.high, at.totalVolatility]).to.deep.equal([bs.price + margin + (kPrime - wad("3000")), 1n]);
      const beyond = optionValuation(call, MAX_PRICE + 1n, wad("0.6"), expiry - DAY);
      // Intrinsic value, + min(S, K) = K on the high side.
      expect([beyond.low, beyond.high, beyond.totalVolatility]).to.deep.equal([
        MAX_PRICE + 1n - wad("3000"),
        MAX_PRICE + 1n,
        0n,
      ]);
    });

    it("takes the model strike K' = ⌈S/100⌉ for a call far in the money: a 1-wei gap is repriced", function () {
      // K = 10, S = 1000 + 1 wei: K·100 < S, K' = (S − 1)/100 + 1 = 10 + 1 wei, gap 1 wei.
      const deep = unsettledSeries(wad("10"), expiry, true);
      const spot = wad("1000") + 1n;
      const v = optionValuation(deep, spot, wad("0.6"), expiry - DAY);
      const kPrime = wad("10") + 1n;
      const bs = blackScholes(spot, kPrime, DAY, wad("0.6"), true);
      const margin = (spot + kPrime) / 10n ** 17n + 10n;
      // In the money beyond K': high + gap; low = max(low, intrinsic = 990 + 1 wei).
      expect(v.high).to.equal(bs.price + margin + 1n);
      expect(v.low).to.equal(bs.price - margin > spot - wad("10") ? bs.price - margin : spot - wad("10"));
      expect([v.totalVolatility, v.modelVolatility]).to.deep.equal([1n, 0n]);
      // At S = K·100 exactly the model prices K itself: no gap, not repriced.
      const edge = optionValuation(deep, wad("1000"), wad("0.6"), expiry - DAY);
      expect(edge.totalVolatility).to.not.equal(1n);
      expect(edge.modelVolatility).to.equal(wad("0.6"));
    });

    it("adds 1e-17·(S + K') + 10 wei each side of the model price, K' the model strike", function () {
      // ATM: margin = 6000e18/1e17 + 10 = 60,010 wei each side.
      const atm = optionValuation(call, wad("3000"), wad("0.6"), expiry - DAY);
      const bs = blackScholes(wad("3000"), wad("3000"), DAY, wad("0.6"), true);
      expect([atm.low, atm.high]).to.deep.equal([bs.price - 60_010n, bs.price + 60_010n]);
      // Far out of the money: K = 400,000 > 100·3,000, K' = 300,000; margin (3,000 + 300,000)e18/1e17 + 10
      // = 3,030,010 wei; out of the money the gap widens the low side (to 0 here), not the high.
      const far = unsettledSeries(wad("400000"), expiry, true);
      const v = optionValuation(far, wad("3000"), wad("0.6"), expiry - DAY);
      const farBs = blackScholes(wad("3000"), wad("300000"), DAY, wad("0.6"), true);
      expect([v.low, v.high, v.totalVolatility]).to.deep.equal([0n, farBs.price + 3_030_010n, 1n]);
    });

    it("keeps the model's low bound with exactly one hour left, and intrinsic value one second later", function () {
      const spot = wad("3100");
      const bs = blackScholes(spot, wad("3000"), HOUR, wad("0.6"), true);
      const margin = (spot + wad("3000")) / 10n ** 17n + 10n;
      const hour = optionValuation(call, spot, wad("0.6"), expiry - HOUR);
      expect([hour.low, hour.high]).to.deep.equal([bs.price - margin, bs.price + margin]);
      const later = optionValuation(call, spot, wad("0.6"), expiry - HOUR + 1n);
      // τ clamped to one hour: the same high; low = intrinsic 100.
      expect([later.low, later.high]).to.deep.equal([wad("100"), bs.price + margin]);
    });
  });

  describe("option position value, premium, fee and trading cost", function () {
    it("rounds a long's value down and a short's up", function () {
      const v = valuation({ low: WAD - 1n, high: WAD + 1n });
      // 1 wei long: ⌊(1e18 − 1)/1e18⌋ = 0; 1 wei short: −⌈(1e18 + 1)/1e18⌉ = −2.
      expect(optionPositionValue(1n, v)).to.equal(0n);
      expect(optionPositionValue(-1n, v)).to.equal(-2n);
      // 3 contracts: 3·low rounded down; −3·high.
      expect(optionPositionValue(3n * WAD, v)).to.equal(3n * WAD - 3n);
      expect(optionPositionValue(-3n * WAD, v)).to.equal(-(3n * WAD + 3n));
    });

    it("charges a buy high + ⌈k·vega⌉ and pays a sell low − ⌈k·vega⌉, at least 0", function () {
      const params = { spreadFactor: wad("0.01"), fee: 0n, insuranceFeeShare: 0n, maxOpenInterest: 0n };
      // vega 150 wei: k·vega = 1.5 wei → 2.
      const v = valuation({ low: 100n, high: 120n, vega: 150n });
      expect(premiumAndFee(v, params, WAD, WAD, 1n).premium).to.equal(122n);
      expect(premiumAndFee(v, params, WAD, -WAD, 1n).premium).to.equal(98n);
      // low 1 < spread 2: the seller is paid 0.
      expect(premiumAndFee({ ...v, low: 1n }, params, WAD, -WAD, 1n).premium).to.equal(0n);
    });

    it("charges ⌈⌈|size|·spot⌉·fee / quote unit⌉ as the fee", function () {
      const params = { spreadFactor: 0n, fee: WAD, insuranceFeeShare: 0n, maxOpenInterest: 0n };
      // |size| 1 wei at spot 3000e18 + 1: notional ⌈(3000e18 + 1)/1e18⌉ = 3001; a 100% fee, quote unit 1.
      expect(premiumAndFee(valuation({}), params, wad("3000") + 1n, 1n, 1n).feeQuote).to.equal(3001n);
      // 3 bp on 1 wei × 3000 USD in USDC: ⌈3000·3e14/1e30⌉ = 1 unit.
      const usdcFee = { ...params, fee: wad("0.0003") };
      expect(premiumAndFee(valuation({}), usdcFee, wad("3000"), -1n, USDC_UNIT).feeQuote).to.equal(1n);
      // 2 contracts at 3000: ⌈6000e18·3e14/1e30⌉ = 1,800,000 units (1.8 USDC), exactly.
      expect(premiumAndFee(valuation({}), usdcFee, wad("3000"), 2n * WAD, USDC_UNIT).feeQuote).to.equal(
        1_800_000n,
      );
    });

    it("rounds the premium against the trader and the trading cost up, and takes the trade's rates", function () {
      const m: OptionMarketState = {
        ...unsettledSeries(wad("3000"), 1_000_000n, true),
        longOpenInterest: 5n * WAD,
        shortOpenInterest: 3n * WAD,
        params: { spreadFactor: 0n, fee: 0n, insuranceFeeShare: 0n, maxOpenInterest: 0n },
      };
      const pos: OptionPositionState = { kind: "option", market: m.market, marketId: 0n, size: -2n * WAD };
      const spot = wad("3000");
      const r = applyOptionTrade(m, pos, 3n * WAD + 1n, spot, wad("0.6"), 1_000_000n - DAY, USDC_UNIT);
      const v = optionValuation(m, spot, wad("0.6"), 1_000_000n - DAY);
      // Buy at high: ⌈(3e18 + 1)·high / 1e30⌉.
      const raw = (3n * WAD + 1n) * v.high;
      expect(r.premium).to.equal(v.high);
      expect(r.premiumQuote).to.equal((raw + WAD * USDC_UNIT - 1n) / (WAD * USDC_UNIT));
      // Sizes: −2 → 1 + 1 wei; long OI 5 + 1 + 1 wei, short OI 3 − 2.
      expect([r.newLong, r.newShort]).to.deep.equal([6n * WAD + 1n, WAD]);
      // Cost: 2 closing at high − low, 1 + 1 wei opening at high − intrinsic (0 at the money).
      const cost = 2n * WAD * (v.high - v.low) + (WAD + 1n) * v.high;
      expect(r.tradingCost).to.equal((cost + WAD * USDC_UNIT - 1n) / (WAD * USDC_UNIT));
      expect([r.market.vegaPerContract, r.market.deltaPerContract]).to.deep.equal([v.vega, v.delta]);
      // Out of the money (spot 2,500, a day left) |delta| < 0.2: the series counts 0.2 per contract.
      const otm = applyOptionTrade(m, pos, WAD, wad("2500"), wad("0.6"), 1_000_000n - DAY, USDC_UNIT);
      expect(otm.valuation.delta < wad("0.2")).to.equal(true);
      expect(otm.market.deltaPerContract).to.equal(wad("0.2"));
      // The sale of 1 wei: premium·1/1e30 rounded down to 0.
      const sold = applyOptionTrade(m, pos, -1n, spot, wad("0.6"), 1_000_000n - DAY, USDC_UNIT);
      expect(sold.premiumQuote).to.equal(0n);
      expect(sold.quoteDelta).to.equal(0n);
    });

    it("counts a series' delta at no less than 0.2 per contract", function () {
      expect(countedDelta(valuation({ delta: -wad("0.05") }))).to.equal(wad("0.2"));
      expect(countedDelta(valuation({ delta: -wad("0.7") }))).to.equal(wad("0.7"));
    });

    it("costs a contract bought back its premium above low, and one sold to open high less the premium", function () {
      const m = unsettledSeries(wad("3000"), 1_000_000n, true);
      const v = valuation({ low: 100n, high: 130n });
      // Old short 1, buy 3 at 140: 1 × (140 − 100) + 2 × (140 − intrinsic 50).
      expect(optionTradingCost(v, m, wad("3000") + 50n, -1n, 3n, 140n)).to.equal(40n + 2n * 90n);
      // Old long 2, sell 5 at 90: 2 × (100 − 90) + 3 × (130 − 90).
      expect(optionTradingCost(v, m, wad("3000"), 2n, -5n, 90n)).to.equal(20n + 120n);
      // A buy-back below low and a sale above it cost 0 (saturating, as the contract's).
      expect(optionTradingCost(v, m, wad("3000"), -1n, 1n, 90n)).to.equal(0n);
      expect(optionTradingCost(v, m, wad("3000"), 1n, -1n, 110n)).to.equal(0n);
    });

    it("counts only a growing |size| or a sign flip as added risk", function () {
      expect(optionIncreasesRisk(-WAD, -WAD)).to.equal(false);
      expect(optionIncreasesRisk(WAD, -WAD)).to.equal(true);
      expect(optionIncreasesRisk(0n, -1n)).to.equal(true);
      expect(optionIncreasesRisk(-2n, -1n)).to.equal(false);
      expect(optionIncreasesRisk(-1n, 0n)).to.equal(false);
    });

    it("pays a settled long rounded down and charges a settled short rounded up", function () {
      const settled: OptionMarketState = {
        ...unsettledSeries(wad("3000"), 1_000_000n, true),
        settled: true,
        settlementPrice: wad("3000.5"),
      };
      // 0.5 USD × 1 wei contract = 5e17/1e30 USDC units: 0 to a long, −1 from a short.
      expect(settlementPayout(settled, 1n, USDC_UNIT)).to.equal(0n);
      expect(settlementPayout(settled, -1n, USDC_UNIT)).to.equal(-1n);
      expect(settlementPayout(settled, -3n * WAD, USDC_UNIT)).to.equal(-1_500_000n);
      expect(() => settlementPayout({ ...settled, settled: false }, WAD, USDC_UNIT)).to.throw(
        RangeError,
        "SeriesNotSettled",
      );
    });
  });

  describe("option exposure of a settled series", function () {
    it("reports a settled position's value alone: no notional, option size or time value", function () {
      const settled: OptionMarketState = {
        ...unsettledSeries(wad("3000"), 1_000_000n, true),
        settled: true,
        settlementPrice: wad("3200"),
      };
      const pos: OptionPositionState = {
        kind: "option",
        market: settled.market,
        marketId: 0n,
        size: 2n * WAD,
      };
      const e = optionExposure(pos, settled, wad("3500"), wad("0.6"), 1_000_000n + DAY);
      // 2 × (3200 − 3000) = 400; no Greeks, notional, size or time value.
      expect(e).to.deep.equal({ ...ZERO_EXPOSURE, value: wad("400") });
    });
  });

  describe("option pool sides and limits", function () {
    const call: OptionMarketState = {
      ...unsettledSeries(wad("3000"), 1_000_000n, true),
      longOpenInterest: 10n * WAD,
      shortOpenInterest: 4n * WAD,
      vegaPerContract: wad("3"),
      deltaPerContract: wad("0.5"),
    };
    const pool: OptionPoolState = {
      vega: { long: wad("100"), short: wad("50") },
      delta: { long: wad("20"), short: wad("10") },
      maxPoolVegaRatio: wad("1"),
      maxPoolDeltaRatio: wad("0.5"),
    };

    it("replaces the series' trader terms, the backstop's position left out, each rounded down", function () {
      // Backstop long 2 of the 10 long, and after the trade long 11, short 4.
      const before = { ...call, backstopSize: 2n * WAD };
      const after = { ...before, longOpenInterest: 11n * WAD };
      const v = valuation({ vega: wad("2") + 1n, delta: wad("0.4") });
      const r = recountOptionPool(pool, before, after, v);
      // Vega long: 100 − 8·3 + 9·(2 + 1e-18) = 76 + 18 + 9 wei; short: 50 − 4·3 + 4·(2 + 1e-18).
      expect(r.vega).to.deep.equal({ long: wad("94") + 9n, short: wad("46") + 4n });
      // Delta long: 20 − 8·0.5 + 9·0.4 = 19.6; short: 10 − 4·0.5 + 4·0.4 = 9.6.
      expect(r.delta).to.deep.equal({ long: wad("19.6"), short: wad("9.6") });
      // A backstop short of 1 leaves 3 of the short side.
      const shortBackstop = { ...call, backstopSize: -WAD };
      const s = recountOptionPool(pool, shortBackstop, { ...shortBackstop, shortOpenInterest: 5n * WAD }, v);
      // Short vega: 50 − 3·3 + 4·(2 + 1e-18).
      expect(s.vega.short).to.equal(wad("49") + 4n);
      // A 1-wei rate on 1.5 contracts: ⌊1.5⌋ = 1 wei per side.
      const tiny = recountOptionPool(
        pool,
        { ...call, longOpenInterest: 0n, shortOpenInterest: 0n },
        { ...call, longOpenInterest: wad("1.5"), shortOpenInterest: 0n },
        valuation({ vega: 1n }),
      );
      expect(tiny.vega.long).to.equal(wad("100") + 1n);
    });

    it("counts a put's long open interest on the short side of delta", function () {
      const put = { ...call, isCall: false };
      const after = { ...put, longOpenInterest: 11n * WAD };
      const r = recountOptionPool(pool, put, after, valuation({ vega: wad("3"), delta: -wad("0.5") }));
      // Delta short: 10 − 10·0.5 + 11·0.5 = 10.5; long: 20 − 4·0.5 + 4·0.5 = 20.
      expect(r.delta).to.deep.equal({ long: wad("20"), short: wad("10.5") });
    });

    it("checks the larger side the trade grows, delta at spot rounded up, against each ratio of the base", function () {
      // A put whose long side grows: vega long 100; delta: the short side (10) at spot 3000 + 1 wei.
      const put = { ...call, isCall: false };
      const spot = wad("3000") + 1n;
      const sides = { ...pool, delta: { long: wad("20"), short: wad("10") + 1n } };
      const r = optionPoolLimits(sides, put, 11n * WAD, 4n * WAD, spot, 1_000_000n * USDC, USDC_UNIT);
      // ⌈(10e18 + 1)·(3000e18 + 1)/1e18⌉ = ⌈30,000e18 + 3,010 + 1e-18⌉ = 30,000e18 + 3,011; limits 1 × and
      // 0.5 × 1,000,000 USD.
      expect(r.vega).to.deep.equal({ grown: wad("100"), limit: wad("1000000") });
      expect(r.delta).to.deep.equal({ grown: wad("30000") + 3_011n, limit: wad("500000") });
      // Neither side grows: nothing counted.
      const none = optionPoolLimits(pool, call, 10n * WAD, 4n * WAD, spot, 1_000_000n * USDC, USDC_UNIT);
      expect([none.vega.grown, none.delta.grown]).to.deep.equal([0n, 0n]);
    });

    it("gives no limit for a base at or below 0, and rounds a limit down", function () {
      expect(poolLimit(-1n, USDC_UNIT, WAD)).to.equal(0n);
      expect(poolLimit(0n, USDC_UNIT, WAD)).to.equal(0n);
      // 1 unit × 1e12 × (1/3) = 333,333,333,333.33 → 333,333,333,333.
      expect(poolLimit(1n, USDC_UNIT, WAD / 3n)).to.equal(333_333_333_333n);
    });
  });

  describe("perp exposure and scenario spots", function () {
    const market = perpMarketState(wad("1000000"), {
      longOpenInterest: 110n * WAD,
      shortOpenInterest: 10n * WAD,
    });
    const long: PerpPositionState = {
      kind: "perp",
      market: market.market,
      marketId: 1n,
      size: 1n,
      entryPrice: WAD,
      fundingIndex: 0n,
    };

    it("rounds a perp's notional up and gives no exit discount for a close that earns a rebate", function () {
      // 1 wei at spot 1 + 1e-18: ⌈(1e18 + 1)/1e18⌉ = 2 wei.
      const e = perpExposure(long, market, WAD + 1n, 0n);
      expect(e.notional).to.equal(2n);
      // Skew +100: closing a long (selling) pulls it toward 0, a rebate: discount 0.
      expect(e.exitDiscount).to.equal(0n);
    });

    it("reads the funding skew without the backstop's position", function () {
      const funded: PerpMarketState = {
        ...market,
        params: { ...market.params, maxFundingVelocity: wad("0.1"), maxFundingRate: wad("1") },
        backstopSize: 40n * WAD,
      };
      const traders = { ...funded, longOpenInterest: 70n * WAD, backstopSize: 0n };
      expect(perpFundingAt(funded, wad("3000"), DAY)).to.deep.equal(perpFundingAt(traders, wad("3000"), DAY));
      expect(perpFundingAt(funded, wad("3000"), DAY)).to.not.deep.equal(
        perpFundingAt({ ...funded, backstopSize: 0n }, wad("3000"), DAY),
      );
    });

    it("refuses a fill at exactly 0 (InvalidFillPrice, as the market's fill <= 0) and quotes one at 1 wei", function () {
      const flat = { ...market, longOpenInterest: 0n, shortOpenInterest: 0n };
      // Selling 2·skewScale into a flat skew: premium 3000·2,000,000/(2·1,000,000) = 3000, fill 0.
      expect(() => perpQuote(flat, wad("3000"), -wad("2000000"), USDC_UNIT)).to.throw(
        RangeError,
        "InvalidFillPrice(0)",
      );
      // 1,000 wei less: premium ⌈3000e18·(2e24 − 1000)/2e24⌉ = ⌈3000e18 − 1.5⌉ = 3000e18 − 1 (up: the seller
      // gets less), fill 1 wei.
      const { fillPrice } = perpQuote(flat, wad("3000"), -wad("2000000") + 1_000n, USDC_UNIT);
      expect(fillPrice).to.equal(1n);
    });

    it("moves spot down to exactly 0 and refuses below it", function () {
      expect(movedSpot(wad("3000"), -wad("3000"))).to.equal(0n);
      expect(() => movedSpot(wad("3000"), -wad("3000") - 1n)).to.throw(RangeError);
    });
  });

  describe("against the option market's views", function () {
    /**
     * Funding off (exact between blocks). Alice (1,000,000 USDC) is long 2 + 1 wei 7-day ETH 3000 calls
     * and short 3 + 1 wei puts; Bob (1,000,000 USDC) is short 1 call and long 1 put, and long 1 + 1 wei
     * calls of a series expiring in two hours; Alice short 1 of those.
     */
    async function fixture() {
      const sys = await deployOptionsSystemWithoutFunding();
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
      const expiry = await fromNow(7n * DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const put = await listSeries(sys.options, "ETH", "3000", expiry, false);
      const nearExpiry = await fromNow(2n * HOUR);
      const near = await listSeries(sys.options, "ETH", "3000", nearExpiry, true);
      await tradeOption(sys.options, sys.alice, alice, call, 2n * WAD + 1n);
      await tradeOption(sys.options, sys.alice, alice, put, -3n * WAD - 1n);
      await tradeOption(sys.options, sys.bob, bob, call, -WAD);
      await tradeOption(sys.options, sys.bob, bob, put, WAD);
      await tradeOption(sys.options, sys.bob, bob, near, WAD + 1n);
      await tradeOption(sys.options, sys.alice, alice, near, -WAD);
      const aliceClient = await sdkClient(sys, sys.alice);
      return { sys, alice, bob, call, put, near, nearExpiry, aliceClient };
    }

    type Fixture = Awaited<ReturnType<typeof fixture>>;

    /** The states of Alice's and Bob's accounts at the latest block. */
    async function states(f: Fixture): Promise<AccountState[]> {
      return Promise.all([f.alice, f.bob].map((accountId) => getAccountState(f.aliceClient, { accountId })));
    }

    /** Every option position of `state` with its series. */
    function holdings(state: AccountState): [OptionPositionState, OptionMarketState][] {
      return state.positions.flatMap((p) => {
        const m = state.markets[marketKey(p.market, p.marketId)];
        return p.kind === "option" && m.kind === "option"
          ? [[p, m] as [OptionPositionState, OptionMarketState]]
          : [];
      });
    }

    async function chainExposure(f: Fixture, s: AccountState, seriesId: bigint, spot: bigint, vol: bigint) {
      return sdkExposureOf(
        await f.sys.options.exposure(s.accountId, seriesId, spot, vol, { blockTag: s.blockNumber }),
      );
    }

    /** Compares `optionExposure` with the market's `exposure` for every holding at every spot and vol. */
    async function expectExposures(f: Fixture, spots: bigint[], vols: bigint[]): Promise<number> {
      let compared = 0;
      for (const s of await states(f)) {
        for (const [pos, m] of holdings(s)) {
          for (const spot of spots) {
            for (const vol of vols) {
              const sdk = optionExposure(pos, m, spot, vol, s.timestamp);
              const chain = await chainExposure(f, s, m.marketId, spot, vol);
              expect(
                sdk,
                `account ${s.accountId} series ${m.marketId} spot ${spot} vol ${vol}`,
              ).to.deep.equal(chain);
              compared++;
            }
          }
        }
      }
      return compared;
    }

    it("values long and short calls and puts at every regime's edge as exposure does, to the wei", async function () {
      const f = await loadFixture(fixture);
      const K = wad("3000");
      const spots = [
        0n,
        1n,
        K / 100n - 1n,
        K / 100n,
        K / 100n + 1n,
        wad("2999.999999999999999999"),
        K,
        K + 1n,
        K * 100n - 1n,
        K * 100n,
        K * 100n + 1n,
        K * 100n + 99n,
        wad("1234567.123456789012345678"),
        MAX_PRICE,
        MAX_PRICE + 1n,
      ];
      // Model volatility clamped at 1% and 500%, 1 wei inside each bound, and an ordinary one.
      const vols = [0n, wad("0.01") + 1n, wad("0.6"), wad("5") - 1n, wad("6")];
      expect(await expectExposures(f, spots, vols)).to.equal(6 * spots.length * vols.length);
    });

    it("values every holding as exposure does with exactly one hour left, one second later and at expiry", async function () {
      const f = await loadFixture(fixture);
      const spots = [wad("2900"), wad("3000"), wad("3100") + 1n];
      for (const at of [f.nearExpiry - HOUR, f.nearExpiry - HOUR + 1n, f.nearExpiry]) {
        await mineAt(f.sys, at);
        expect(await expectExposures(f, spots, [wad("0.6")])).to.equal(6 * spots.length);
      }
      // At expiry the near series is expired: the SDK refuses to quote it, as the market does.
      const [s] = await states(f);
      const near = s.markets[marketKey(await f.sys.options.getAddress(), f.near)] as OptionMarketState;
      expect(seriesStatus(near, s.timestamp)).to.equal("expired");
      expect(() => optionQuote(near, wad("3000"), wad("0.6"), s.timestamp, WAD, USDC_UNIT)).to.throw(
        RangeError,
        "SeriesExpired",
      );
      await expect(f.sys.options.quoteTrade(f.near, WAD)).to.be.revertedWithCustomError(
        f.sys.options,
        "SeriesExpired",
      );
    });

    it("moves every holding over a scenario grid as scenarioPnls does, at the exact-repricing threshold and past it", async function () {
      const f = await loadFixture(fixture);
      const spot = wad("3000");
      const vol = wad("0.6");
      const spotMoves = [-spot, -wad("1500") - 1n, -1n, 0n, wad("450") + 7n, spot * 150n];
      let compared = 0;
      for (const s of await states(f)) {
        for (const [pos, m] of holdings(s)) {
          const sigma = optionValuation(m, spot, vol, s.timestamp).modelVolatility;
          // 2·|dσ| = σ: second order; 1 wei more: every cell repriced.
          for (const half of [sigma / 2n, sigma / 2n + 1n, wad("0.07")]) {
            const volMoves = [-half, 0n, half - 3n];
            const sdk = optionScenarioPnls(pos, m, spot, vol, s.timestamp, spotMoves, volMoves);
            const chain = await f.sys.options.scenarioPnls(
              s.accountId,
              m.marketId,
              spot,
              vol,
              spotMoves,
              volMoves,
              {
                blockTag: s.blockNumber,
              },
            );
            expect(sdk, `account ${s.accountId} series ${m.marketId} dσ ${half}`).to.deep.equal([...chain]);
            compared++;
          }
        }
      }
      expect(compared).to.equal(18);
    });

    it("quotes buys and sells of every series as quoteTrade does", async function () {
      const f = await loadFixture(fixture);
      const [s] = await states(f);
      const spot = s.prices[ETH];
      const vol = s.underlyings[ETH].volatility;
      const sizes = [1n, -1n, WAD + 1n, -(WAD + 1n), (7n * WAD) / 3n, -(7n * WAD) / 3n];
      for (const [, m] of holdings(s)) {
        for (const size of sizes) {
          const [premium, fee] = await f.sys.options.quoteTrade(m.marketId, size, {
            blockTag: s.blockNumber,
          });
          expect(
            optionQuote(m, spot, vol, s.timestamp, size, USDC_UNIT),
            `series ${m.marketId} size ${size}`,
          ).to.deep.equal({
            premium,
            fee,
          });
        }
      }
    });

    it("recounts the pool's trader vega and delta after a trade as the market does", async function () {
      const f = await loadFixture(fixture);
      const optionMarket = (await f.sys.options.getAddress()).toLowerCase();
      for (const [seriesId, size] of [
        [f.put, 2n * WAD + 3n],
        [f.call, -(5n * WAD) - 1n],
      ] as const) {
        const s = await getAccountState(f.aliceClient, {
          accountId: f.alice,
          markets: [{ market: optionMarket, marketId: seriesId }],
        });
        const m = s.markets[marketKey(optionMarket, seriesId)] as OptionMarketState;
        const pos = s.positions.find((p) => p.marketId === seriesId) as OptionPositionState;
        // The trade's block: one second later.
        const r = applyOptionTrade(
          m,
          pos,
          size,
          s.prices[ETH],
          s.underlyings[ETH].volatility,
          s.timestamp + 1n,
          USDC_UNIT,
        );
        const pool = recountOptionPool(s.underlyings[ETH].optionPool!, m, r.market, r.valuation);
        await time.setNextBlockTimestamp(s.timestamp + 1n);
        await (await tradeOption(f.sys.options, f.sys.alice, f.alice, seriesId, size)).wait();
        const [vega, delta, info] = await Promise.all([
          f.sys.options.traderVega(ETH),
          f.sys.options.traderDelta(ETH),
          f.sys.options.series(seriesId),
        ]);
        expect([pool.vega.long, pool.vega.short, pool.delta.long, pool.delta.short]).to.deep.equal([
          vega.longVega,
          vega.shortVega,
          delta.longDelta,
          delta.shortDelta,
        ]);
        expect([r.market.vegaPerContract, r.market.deltaPerContract, r.newLong, r.newShort]).to.deep.equal([
          info.vegaPerContract,
          info.deltaPerContract,
          info.longOpenInterest,
          info.shortOpenInterest,
        ]);
      }
    });

    it("maps the contracts' structs field by field into the snapshot", async function () {
      const f = await loadFixture(fixture);
      await f.sys.options.setPoolVegaRatio(ETH, wad("0.8"));
      await f.sys.options.setPoolDeltaRatio(ETH, wad("0.6"));
      await f.sys.options.setSkew(f.put, -wad("0.02"));
      await trade(f.sys.perps, f.sys.alice, f.alice, f.sys.markets.ETH, wad("2"));
      await trade(f.sys.perps, f.sys.bob, f.bob, f.sys.markets.ETH, -wad("7"));
      const isolated = await openAccount(f.sys, f.sys.carol, MarginMode.ISOLATED, [
        [f.sys.usdc, 1_000n * USDC],
      ]);
      const s = await getAccountState(f.aliceClient, { accountId: f.alice });
      const blockTag = s.blockNumber;
      const optionMarket = (await f.sys.options.getAddress()).toLowerCase();
      for (const id of [f.call, f.put, f.near]) {
        const info = await f.sys.options.series(id, { blockTag });
        const m = s.markets[marketKey(optionMarket, id)] as OptionMarketState;
        expect(m).to.deep.equal({
          kind: "option",
          market: optionMarket,
          marketId: id,
          underlying: ETH,
          strike: info.strike,
          expiry: info.expiry,
          isCall: info.isCall,
          settled: info.settled,
          skew: info.skew,
          settlementPrice: info.settlementPrice,
          longOpenInterest: info.longOpenInterest,
          shortOpenInterest: info.shortOpenInterest,
          params: {
            spreadFactor: info.params.spreadFactor,
            fee: info.params.fee,
            insuranceFeeShare: info.params.insuranceFeeShare,
            maxOpenInterest: info.params.maxOpenInterest,
          },
          backstopSize: 0n,
          vegaPerContract: info.vegaPerContract,
          deltaPerContract: info.deltaPerContract,
        });
        const size = await f.sys.options.positionSize(f.alice, id, { blockTag });
        expect(s.positions.find((p) => p.marketId === id && p.kind === "option")?.size).to.equal(size);
      }
      // Distinct long and short sides, ratios 0.8 and 0.6.
      const [vega, delta] = [await f.sys.options.traderVega(ETH), await f.sys.options.traderDelta(ETH)];
      expect(s.underlyings[ETH].optionPool).to.deep.equal({
        vega: { long: vega.longVega, short: vega.shortVega },
        delta: { long: delta.longDelta, short: delta.shortDelta },
        maxPoolVegaRatio: wad("0.8"),
        maxPoolDeltaRatio: wad("0.6"),
      });
      expect(vega.longVega).to.not.equal(vega.shortVega);
      expect(delta.longDelta).to.not.equal(delta.shortDelta);
      const risk = await f.sys.engine.riskParams(ETH, { blockTag });
      expect(s.underlyings[ETH].risk).to.deep.equal({
        mmShockFloor: risk.mmShockFloor,
        imShockFloor: risk.imShockFloor,
        mmZ: risk.mmZ,
        imZ: risk.imZ,
        horizon: risk.horizon,
        maxShock: risk.maxShock,
        mmVolShock: risk.mmVolShock,
        imVolShock: risk.imVolShock,
        shortOptionFloor: risk.shortOptionFloor,
        contingency: risk.contingency,
        sizeScale: risk.sizeScale,
      });
      const perp = await f.sys.perps.market(f.sys.markets.ETH, { blockTag });
      const perpAddress = (await f.sys.perps.getAddress()).toLowerCase();
      expect(s.markets[marketKey(perpAddress, f.sys.markets.ETH)]).to.deep.equal({
        kind: "perp",
        market: perpAddress,
        marketId: f.sys.markets.ETH,
        underlying: ETH,
        params: {
          skewScale: perp.params.skewScale,
          maxFundingVelocity: perp.params.maxFundingVelocity,
          maxFundingRate: perp.params.maxFundingRate,
          makerFee: perp.params.makerFee,
          takerFee: perp.params.takerFee,
          insuranceFeeShare: perp.params.insuranceFeeShare,
          maxPoolDeltaRatio: perp.params.maxPoolDeltaRatio,
          maxOpenInterest: perp.params.maxOpenInterest,
        },
        longOpenInterest: perp.longOpenInterest,
        shortOpenInterest: perp.shortOpenInterest,
        fundingRate: perp.fundingRate,
        fundingIndex: perp.fundingIndex,
        lastFundingTime: perp.lastFundingTime,
        backstopSize: perp.backstopSize,
      });
      const p = await f.sys.perps.position(f.alice, f.sys.markets.ETH, { blockTag });
      expect(s.positions.find((x) => x.kind === "perp")).to.deep.equal({
        kind: "perp",
        market: perpAddress,
        marketId: f.sys.markets.ETH,
        size: p.size,
        entryPrice: p.entryPrice,
        fundingIndex: p.fundingIndex,
      });
      expect(s.marginMode).to.equal("cross");
      const carol = await getAccountState(f.aliceClient, { accountId: isolated });
      expect(carol.marginMode).to.equal("isolated");
    });

    it("reads every field at the block asked for, whatever changed since", async function () {
      const f = await loadFixture(fixture);
      await trade(f.sys.perps, f.sys.alice, f.alice, f.sys.markets.ETH, wad("2"));
      // 2 sWETH beside her USDC, at 1 WETH a share.
      const { sweth, vault } = f.sys;
      await mintAndApprove(f.sys.weth, f.sys.alice, await sweth.getAddress(), wad("2"));
      await sweth.connect(f.sys.alice).deposit(wad("2"), f.sys.alice.address);
      await sweth.connect(f.sys.alice).approve(await vault.getAddress(), wad("2"));
      await vault.connect(f.sys.alice).deposit(f.alice, sweth, wad("2"));
      const before = await getAccountState(f.aliceClient, { accountId: f.alice });
      // Afterwards: perp and option trades by both (Alice in a new market), new prices and volatility, new risk parameters and
      // pool ratios, sWETH's weights cut and its share rate up by half (review round 109's G05 and G06:
      // the collateral's configuration and the share's rate read at the latest block), the engine paused.
      await trade(f.sys.perps, f.sys.alice, f.alice, f.sys.markets.ETH, wad("1"));
      await trade(f.sys.perps, f.sys.bob, f.bob, f.sys.markets.ETH, -wad("9"));
      await tradeOption(f.sys.options, f.sys.alice, f.alice, f.call, WAD);
      await tradeOption(f.sys.options, f.sys.bob, f.bob, f.put, wad("2"));
      await trade(f.sys.perps, f.sys.alice, f.alice, f.sys.markets.BTC, wad("0.1"));
      await (await f.sys.feeds.ETH.updateAnswer(3100n * 10n ** 8n)).wait();
      await (await f.sys.volFeeds.ETH.updateAnswer(70n * 10n ** 6n)).wait();
      await f.sys.engine.setRiskParams(ETH, {
        ...DEFAULT_RISK_PARAMS,
        imZ: wad("3.5"),
        shortOptionFloor: wad("0.07"),
      });
      await f.sys.options.setPoolVegaRatio(ETH, wad("0.8"));
      await vault.setCollateralWeights(sweth, wad("0.8"), wad("0.9"));
      await sweth.simulateYield(wad("1"));
      await f.sys.engine.pause();
      const again = await getAccountState(f.aliceClient, {
        accountId: f.alice,
        blockTag: before.blockNumber,
      });
      expect(again).to.deep.equal(before);
      const now = await getAccountState(f.aliceClient, { accountId: f.alice });
      // Every change shows at the latest block.
      expect([now.protocol.paused, now.prices[ETH], now.underlyings[ETH].volatility]).to.deep.equal([
        true,
        wad("3100"),
        wad("0.7"),
      ]);
      expect(now.protocol.poolDeltaBase).to.not.equal(before.protocol.poolDeltaBase);
      expect(now.underlyings[ETH].optionPool).to.not.deep.equal(before.underlyings[ETH].optionPool);
      expect(now.underlyings[ETH].risk).to.not.deep.equal(before.underlyings[ETH].risk);
      expect(now.positions.length).to.equal(before.positions.length + 1);
      expect(now.markets).to.not.deep.equal(before.markets);
      const swethAddress = (await sweth.getAddress()).toLowerCase();
      const shares = (state: AccountState) =>
        state.collateral.find((c) => c.token.toLowerCase() === swethAddress)!;
      expect(shares(before).balance).to.equal(wad("2"));
      expect([shares(before).initialWeight, shares(before).maintenanceWeight]).to.deep.equal([
        wad("0.85"),
        wad("0.92"),
      ]);
      expect([shares(now).initialWeight, shares(now).maintenanceWeight]).to.deep.equal([
        wad("0.8"),
        wad("0.9"),
      ]);
      expect([shares(before).erc4626?.assetsPerShare, shares(now).erc4626?.assetsPerShare]).to.deep.equal([
        WAD,
        // OpenZeppelin's virtual share and asset: ⌊1e18 · (3e18 + 1) / (2e18 + 1)⌋.
        wad("1.5") - 1n,
      ]);
    });
  });

  describe("against the perp market's views", function () {
    /** Funding on: Alice long 10 ETH, Bob short 3, a day later (the rate and index have moved). */
    async function perpFixture() {
      const sys = await deploySystem();
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
      await trade(sys.perps, sys.bob, bob, sys.markets.ETH, -wad("3"));
      await mineAt(sys, BigInt(await time.latest()) + DAY);
      return { sys, alice, bob, client: await sdkClient(sys, sys.alice) };
    }

    it("values and moves Alice's and Bob's positions as exposure and scenarioPnls do, funding accrued at each spot", async function () {
      const f = await loadFixture(perpFixture);
      const spot = wad("3000");
      const spotMoves = [-spot, -wad("1000") - 1n, 0n, wad("333") + 3n, wad("6000")];
      const volMoves = [-wad("0.2"), 0n, wad("0.3")];
      for (const accountId of [f.alice, f.bob]) {
        const s = await getAccountState(f.client, { accountId });
        const [pos] = s.positions as PerpPositionState[];
        const m = s.markets[marketKey(pos.market, pos.marketId)] as PerpMarketState;
        expect(m.lastFundingTime).to.be.lessThan(s.timestamp);
        const blockTag = s.blockNumber;
        for (const at of [1n, wad("2999.999999999999999999"), spot, wad("4500") + 1n]) {
          const e = await f.sys.perps.exposure(accountId, pos.marketId, at, 0n, { blockTag });
          const sdk = perpExposure(pos, m, at, s.timestamp);
          expect([sdk.delta, sdk.value, sdk.notional, sdk.exitDiscount]).to.deep.equal([
            e.delta,
            e.value,
            e.notional,
            e.exitDiscount,
          ]);
        }
        const chain = await f.sys.perps.scenarioPnls(accountId, pos.marketId, spot, 0n, spotMoves, volMoves, {
          blockTag,
        });
        expect(scenarioPnlsOf(pos, m, spot, 0n, s.timestamp, spotMoves, volMoves)).to.deep.equal([...chain]);
      }
    });

    it("applies a trade as the market does: funding settled at the accrued index, entry, open interest, quote", async function () {
      const f = await loadFixture(perpFixture);
      for (const sizeDelta of [-wad("4") - 1n, -wad("9") + 1n, -1n, wad("3") + 1n]) {
        const s = await getAccountState(f.client, { accountId: f.alice });
        const pos = s.positions.find((p) => p.kind === "perp") as PerpPositionState;
        const m = s.markets[marketKey(pos.market, pos.marketId)] as PerpMarketState;
        const r = applyPerpTrade(m, pos, sizeDelta, s.prices[ETH], s.timestamp + 1n, USDC_UNIT);
        const balance = await f.sys.vault.balanceOf(f.alice, await f.sys.usdc.getAddress());
        await time.setNextBlockTimestamp(s.timestamp + 1n);
        const receipt = await (
          await trade(f.sys.perps, f.sys.alice, f.alice, pos.marketId, sizeDelta)
        ).wait();
        const event = eventOf(receipt, f.sys.perps, "PositionModified");
        expect([r.fillPrice, r.realizedPnl, r.fundingPaid, r.feeQuote * USDC_UNIT]).to.deep.equal([
          event.args.fillPrice,
          event.args.realizedPnl,
          event.args.fundingPaid,
          event.args.fee,
        ]);
        const [p, info] = await Promise.all([
          f.sys.perps.position(f.alice, pos.marketId),
          f.sys.perps.market(pos.marketId),
        ]);
        expect([r.position.size, r.position.entryPrice, r.position.fundingIndex]).to.deep.equal([
          p.size,
          p.entryPrice,
          p.fundingIndex,
        ]);
        expect([r.market.fundingRate, r.market.fundingIndex, r.market.lastFundingTime]).to.deep.equal([
          info.fundingRate,
          info.fundingIndex,
          info.lastFundingTime,
        ]);
        expect([r.newLong, r.newShort]).to.deep.equal([info.longOpenInterest, info.shortOpenInterest]);
        const after = await f.sys.vault.balanceOf(f.alice, await f.sys.usdc.getAddress());
        expect(after - balance).to.equal(r.quoteDelta);
      }
    });
  });

  describe("state reader at a past block: freeze, quote debt, backstop", function () {
    /** The backstop long 100 ETH (funding on): its book is the LPs', left out of funding's skew. */
    async function backstopFixture() {
      return backstopLong100({ funding: true });
    }

    it("reads the perp backstop's size into the market and accrues funding without it, as the market does", async function () {
      const { sys } = await loadFixture(backstopFixture);
      const bobId = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.bob, bobId, sys.markets.ETH, -wad("30"));
      await mineAt(sys, BigInt(await time.latest()) + DAY);
      const s = await getAccountState(await sdkClient(sys, sys.bob), { accountId: bobId });
      const m = s.markets[marketKey(await sys.perps.getAddress(), sys.markets.ETH)] as PerpMarketState;
      const info = await sys.perps.market(sys.markets.ETH, { blockTag: s.blockNumber });
      expect(m.backstopSize).to.equal(wad("100"));
      expect(m.backstopSize).to.equal(info.backstopSize);
      const pos = s.positions[0] as PerpPositionState;
      const e = await sys.perps.exposure(bobId, sys.markets.ETH, s.prices[ETH], 0n, {
        blockTag: s.blockNumber,
      });
      const sdk = perpExposure(pos, m, s.prices[ETH], s.timestamp);
      expect([sdk.value, sdk.exitDiscount]).to.deep.equal([e.value, e.exitDiscount]);
      // The exit discount reads the whole skew, the backstop's long in it: buying back 30 into +70 pays.
      expect(e.exitDiscount).to.be.greaterThan(0n);
    });

    it("reads the auction freeze at the block asked for", async function () {
      const { sys, a } = await loadFixture(frozenLongAndPartner);
      const client = await sdkClient(sys, sys.alice);
      const latest = await ethers.provider.getBlockNumber();
      const seen: boolean[] = [];
      for (let blockTag = latest; blockTag > latest - 8; blockTag--) {
        const s = await getAccountState(client, { accountId: a, blockTag });
        expect(s.frozen, `block ${blockTag}`).to.equal(await sys.auction.isFrozen(a, { blockTag }));
        seen.push(s.frozen);
      }
      // Frozen at the latest blocks, not before the auction started.
      expect(seen.includes(true) && seen.includes(false)).to.equal(true);
    });

    it("reads a quote debt's paid index and the interest state at the block asked for", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      await sys.vault.setInterestRateModel(INTEREST_MODEL);
      const bob = await sdkClient(sys, sys.bob);
      await mineAt(sys, BigInt(await time.latest()) + 30n * DAY);
      const before = await getAccountState(bob, { accountId: sys.debtorId });
      const usdc = (await sys.usdc.getAddress()).toLowerCase();
      const debt = before.collateral.find((c) => c.token === usdc)?.debt;
      expect(debt?.recordedBalance).to.be.lessThan(0n);
      // A repayment 30 days later pays the interest: a new paid index, a new interest state.
      await mineAt(sys, before.timestamp + 30n * DAY);
      await mintAndApprove(sys.usdc, sys.bob, await sys.vault.getAddress(), 1_000n * USDC);
      await sys.vault.connect(sys.bob).deposit(sys.debtorId, sys.usdc, 1_000n * USDC);
      expect(await sys.vault.paidInterestIndex(sys.debtorId)).to.not.equal(debt?.paidIndex);
      const again = await getAccountState(bob, { accountId: sys.debtorId, blockTag: before.blockNumber });
      expect(again).to.deep.equal(before);
      const now = await getAccountState(bob, { accountId: sys.debtorId });
      expect(now.protocol.quoteInterest).to.not.deep.equal(before.protocol.quoteInterest);
    });
  });

  describe("state reader with an option book absorbed by the backstop (review round 112: R05, R06)", function () {
    /**
     * Alice's 250 written one-year ETH-3000 calls (180,000 USDC) absorbed by the backstop at ETH 3,400
     * (`absorbAfterAuction`: a slice of her calls, not all), funding off; Carol long 100 of the calls on
     * 5,000,000 USDC buys 20 more one second after the absorb's block; then the backstop buys back half
     * of its short (`unwindBackstop`). The three blocks: `absorbed`, `traded`, `unwound`.
     */
    async function absorbedCalls() {
      const sys = await deployOptionsSystemWithoutFunding();
      const { options } = sys;
      const call = await listSeries(options, "ETH", "3000", await fromNow(365n * DAY), true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 180_000n * USDC]]);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 5_000_000n * USDC]]);
      await tradeOption(options, sys.alice, alice, call, -wad("250"));
      await tradeOption(options, sys.carol, carol, call, wad("100"));
      await setFeedPrice(sys.feeds.ETH, "3400");
      const backstop = await absorbAfterAuction(sys, alice);
      const absorbed = await ethers.provider.getBlockNumber();
      const short = await options.positionSize(backstop, call);
      await time.setNextBlockTimestamp((await time.latest()) + 1);
      await (await tradeOption(options, sys.carol, carol, call, wad("20"))).wait();
      const traded = await ethers.provider.getBlockNumber();
      await sys.auction.unwindBackstop(options, call, -short / 2n, ethers.MaxUint256, await fromNow(HOUR));
      const unwound = await ethers.provider.getBlockNumber();
      const client = await sdkClient(sys, sys.carol);
      return { sys, call, carol, backstop, short, absorbed, traded, unwound, client };
    }

    it("reads the backstop's option position, the series and the pool sides at the block asked for, before and after the backstop unwinds", async function () {
      const f = await loadFixture(absorbedCalls);
      const { options } = f.sys;
      const key = marketKey(await options.getAddress(), f.call);
      expect(f.short).to.be.lessThan(0n);
      const sizes: bigint[] = [];
      // Read after the unwind, each snapshot holds the backstop's position and the series of its block.
      for (const blockTag of [f.absorbed, f.traded, f.unwound]) {
        const s = await getAccountState(f.client, { accountId: f.carol, blockTag });
        const m = s.markets[key] as OptionMarketState;
        const info = await options.series(f.call, { blockTag });
        expect(
          [m.backstopSize, m.longOpenInterest, m.shortOpenInterest, m.vegaPerContract, m.deltaPerContract],
          `block ${blockTag}`,
        ).to.deep.equal([
          await options.positionSize(f.backstop, f.call, { blockTag }),
          info.longOpenInterest,
          info.shortOpenInterest,
          info.vegaPerContract,
          info.deltaPerContract,
        ]);
        const [vega, delta] = await Promise.all([
          options.traderVega(ETH, { blockTag }),
          options.traderDelta(ETH, { blockTag }),
        ]);
        expect(s.underlyings[ETH].optionPool, `block ${blockTag}`).to.deep.include({
          vega: { long: vega.longVega, short: vega.shortVega },
          delta: { long: delta.longDelta, short: delta.shortDelta },
        });
        sizes.push(m.backstopSize);
      }
      expect(sizes).to.deep.equal([f.short, f.short, f.short - f.short / 2n]);
    });

    it("values the backstop's absorbed calls and Carol's book as engine.health does at each block", async function () {
      const f = await loadFixture(absorbedCalls);
      for (const blockTag of [f.absorbed, f.traded, f.unwound]) {
        for (const accountId of [f.backstop, f.carol]) {
          const s = await getAccountState(f.client, { accountId, blockTag });
          const h = await f.sys.engine.health(accountId, { blockTag });
          expect(toHealth(accountHealth(s)), `account ${accountId} at block ${blockTag}`).to.deep.equal(
            toHealth(h),
          );
        }
      }
    });

    it("recounts a trade beside the backstop's short as the market does, from a snapshot read after the unwind", async function () {
      const f = await loadFixture(absorbedCalls);
      const { options } = f.sys;
      const s = await getAccountState(f.client, { accountId: f.carol, blockTag: f.absorbed });
      const m = s.markets[marketKey(await options.getAddress(), f.call)] as OptionMarketState;
      const pos = s.positions.find(
        (p) => p.marketId === f.call && p.kind === "option",
      ) as OptionPositionState;
      // Carol's 20 calls, one second after the snapshot: the backstop's short stays out of the traders'
      // sides, as traderVega and traderDelta at the trade's block say.
      const r = applyOptionTrade(
        m,
        pos,
        wad("20"),
        s.prices[ETH],
        s.underlyings[ETH].volatility,
        s.timestamp + 1n,
        USDC_UNIT,
      );
      const pool = recountOptionPool(s.underlyings[ETH].optionPool!, m, r.market, r.valuation);
      const blockTag = f.traded;
      const [vega, delta, info] = await Promise.all([
        options.traderVega(ETH, { blockTag }),
        options.traderDelta(ETH, { blockTag }),
        options.series(f.call, { blockTag }),
      ]);
      expect([pool.vega.long, pool.vega.short, pool.delta.long, pool.delta.short]).to.deep.equal([
        vega.longVega,
        vega.shortVega,
        delta.longDelta,
        delta.shortDelta,
      ]);
      expect([r.newLong, r.newShort, r.market.vegaPerContract]).to.deep.equal([
        info.longOpenInterest,
        info.shortOpenInterest,
        info.vegaPerContract,
      ]);
    });
  });

  describe("a settled series' quote (review round 112: O49)", function () {
    it("refuses to quote or trade a settled series with SeriesAlreadySettled, as quoteTrade reverts", async function () {
      const {
        sys,
        call,
        writers: [writer],
      } = await loadFixture(oneExpiredCall);
      const [round] = await sys.feeds.ETH.latestRoundData();
      await sys.options.connect(sys.deployer).settleSeries(call, round);
      const s = await getAccountState(await sdkClient(sys, sys.carol), { accountId: writer });
      const m = s.markets[marketKey(await sys.options.getAddress(), call)] as OptionMarketState;
      const pos = s.positions.find((p) => p.kind === "option") as OptionPositionState;
      expect([m.settled, s.timestamp >= m.expiry]).to.deep.equal([true, true]);
      const [spot, vol] = [s.prices[ETH], s.underlyings[ETH].volatility];
      for (const size of [WAD, -WAD]) {
        await expect(sys.options.quoteTrade(call, size, { blockTag: s.blockNumber }))
          .to.be.revertedWithCustomError(sys.options, "SeriesAlreadySettled")
          .withArgs(call);
        // Settled is checked before expired, as OptionMarket._tradable does.
        expect(() => optionQuote(m, spot, vol, s.timestamp, size, USDC_UNIT)).to.throw(
          RangeError,
          `SeriesAlreadySettled(${call})`,
        );
        expect(() => applyOptionTrade(m, pos, size, spot, vol, s.timestamp, USDC_UNIT)).to.throw(
          RangeError,
          `SeriesAlreadySettled(${call})`,
        );
      }
    });
  });
});
