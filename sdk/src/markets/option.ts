/**
 * The option market model: how an OptionMarket values a series (`_valuation`: Black-Scholes bounds in
 * its domain, intrinsic value outside it, in the last hour and after expiry, the settlement price once
 * settled), what it reports to the engine (`exposure`), what a trade costs (`_premiumAndFee`: model
 * price ± k·vega, fee on the underlying notional) and what it does to the position, open interest and
 * quote balance (`_price`, `trade`), what settlement pays (`_settlePosition`), and how a position's value
 * moves over the engine's margin scenarios (`scenarioPnls`). Pure; mirrors
 * `contracts/markets/OptionMarket.sol` to the wei.
 * @packageDocumentation
 */
import {
  BS_MAX_MONEYNESS,
  BS_MAX_PRICE,
  BS_MAX_VOLATILITY,
  BS_MIN_TIME_TO_EXPIRY,
  BS_MIN_VOLATILITY,
  blackScholes,
} from "../math/blackScholes";
import { WAD, abs, ceilDiv, divFloor, max, min, mulDiv, mulWadDown } from "../math/fixedPoint";
import type { OptionMarketState, OptionPoolState, OptionPositionState, OptionSides } from "../state";
import { type Exposure, ZERO_EXPOSURE, movedSpot, poolLimit } from "./types";

/**
 * Smallest |delta| per contract the pool delta limit counts (OptionMarket.MIN_COUNTED_DELTA): a contract
 * the pool writes pins its short-option floor however far from the money it is.
 */
export const MIN_COUNTED_DELTA = 2n * 10n ** 17n;

/** The rate at which a series' open interest counts in its underlying's delta sides. */
export function countedDelta(v: OptionValuation): bigint {
  return max(abs(v.delta), MIN_COUNTED_DELTA);
}

/**
 * What the market knows of one long contract's value: bounds bracketing it (longs are marked and sellers
 * paid at `low`, shorts marked and buyers charged at `high`) and its Greeks, all WAD.
 */
export interface OptionValuation {
  /** Lower bound of one contract's value (USD WAD): longs are marked and sellers paid at it. */
  low: bigint;
  /** Upper bound of one contract's value (USD WAD): shorts are marked and buyers charged at it. */
  high: bigint;
  /** ∂value/∂spot of one contract (WAD: underlying units per contract; a call's in [0, 1]). */
  delta: bigint;
  /** ∂delta/∂spot of one contract (WAD: underlying units per USD). */
  gamma: bigint;
  /** ∂value/∂σ of one contract, USD WAD per 1.0 of volatility (÷ 100 per volatility point). */
  vega: bigint;
  /** ∂delta/∂σ of one contract, underlying units (WAD) per 1.0 of volatility. */
  vanna: bigint;
  /** ∂vega/∂σ of one contract, USD WAD per 1.0 of volatility squared. */
  volga: bigint;
  /** σ√τ of the Black-Scholes model; 0 when settled or expired, 1 wei far from the money (repriced). */
  totalVolatility: bigint;
  /** The volatility passed to Black-Scholes (feed + skew + move, clamped); 0 outside the model. */
  modelVolatility: bigint;
}

/**
 * Where a series is in its life at `timestamp`: `active` (tradable, priced with Black-Scholes), `expired`
 * (at or past expiry, not settled: valued at intrinsic value at the current spot, not tradable) or
 * `settled` (valued at the settlement price; positions await `settleAccount`).
 */
export type SeriesStatus = "active" | "expired" | "settled";

/**
 * The status of series `m` at `timestamp`.
 * @example
 * seriesStatus(series, state.timestamp); // "active"
 */
export function seriesStatus(m: OptionMarketState, timestamp: bigint): SeriesStatus {
  if (m.settled) return "settled";
  return timestamp >= m.expiry ? "expired" : "active";
}

/**
 * Intrinsic value of one contract at `price` (OptionMarket._intrinsic).
 * @example
 * intrinsicValue(true, 3000n * WAD, 3200n * WAD); // 200n * WAD
 */
export function intrinsicValue(isCall: boolean, strike: bigint, price: bigint): bigint {
  if (isCall) return price > strike ? price - strike : 0n;
  return strike > price ? strike - price : 0n;
}

/**
 * Feed volatility plus the series' skew, clamped into the model's domain [1%, 500%]
 * (OptionMarket._modelVolatility).
 * @example
 * modelVolatility(6n * 10n ** 17n, 5n * 10n ** 16n); // 650000000000000000n (60% + 5 points)
 */
export function modelVolatility(volatility: bigint, skew: bigint): bigint {
  const vol = volatility + skew;
  if (vol < BS_MIN_VOLATILITY) return BS_MIN_VOLATILITY;
  if (vol > BS_MAX_VOLATILITY) return BS_MAX_VOLATILITY;
  return vol;
}

/**
 * Bounds and Greeks of one long contract of `m` at `spot`, feed `volatility` and `timestamp`
 * (OptionMarket._valuation): Black-Scholes ± (1e-17·(S + K) + 10 wei) with τ clamped to one hour (low =
 * intrinsic value in the last hour); outside the model's moneyness range, the model at the nearest strike K'
 * inside it, widened by |K − K'| (high in the money, low out of it; low ≥ intrinsic value), with σ√τ
 * reported as 1 wei so that the engine reprices it; intrinsic value at the current spot after expiry (and
 * + min(S, K) on the high side for a spot of 0 or beyond the model); at the settlement price once settled.
 * `volMove` (a margin scenario's volatility move, signed WAD; 0 otherwise) is added to the series' skew
 * before the model volatility is clamped into [1%, 500%].
 * @example
 * const v = optionValuation(series, 3000n * WAD, 6n * 10n ** 17n, state.timestamp);
 */
export function optionValuation(
  m: OptionMarketState,
  spot: bigint,
  volatility: bigint,
  timestamp: bigint,
  volMove: bigint = 0n,
): OptionValuation {
  const v: OptionValuation = {
    low: 0n,
    high: 0n,
    delta: 0n,
    gamma: 0n,
    vega: 0n,
    vanna: 0n,
    volga: 0n,
    totalVolatility: 0n,
    modelVolatility: 0n,
  };
  if (m.settled) {
    v.low = v.high = intrinsicValue(m.isCall, m.strike, m.settlementPrice);
    return v;
  }
  const intrinsic = intrinsicValue(m.isCall, m.strike, spot);
  const expired = timestamp >= m.expiry;
  if (expired || spot === 0n || spot > BS_MAX_PRICE) {
    v.low = intrinsic;
    v.high = expired ? intrinsic : intrinsic + min(spot, m.strike);
    if (intrinsic !== 0n) v.delta = m.isCall ? WAD : -WAD;
    return v;
  }
  const timeToExpiry = m.expiry - timestamp;
  const sigma = modelVolatility(volatility, m.skew + volMove);
  // Too far from the money for the model: the nearest strike K' inside its range (OptionMarket._modelStrike).
  let strike = m.strike;
  let gap = 0n;
  if (strike * BS_MAX_MONEYNESS < spot) {
    strike = (spot - 1n) / BS_MAX_MONEYNESS + 1n;
    gap = strike - m.strike;
  } else if (strike > spot * BS_MAX_MONEYNESS) {
    strike = spot * BS_MAX_MONEYNESS;
    gap = m.strike - strike;
  }
  const bs = blackScholes(spot, strike, max(timeToExpiry, BS_MIN_TIME_TO_EXPIRY), sigma, m.isCall);
  // The library's error margin: 1e-17·(S + K) + 10 wei.
  const margin = (spot + strike) / 10n ** 17n + 10n;
  const out: OptionValuation = {
    low: bs.price > margin ? bs.price - margin : 0n,
    high: bs.price + margin,
    delta: bs.delta,
    gamma: bs.gamma,
    vega: bs.vega,
    vanna: bs.vanna,
    volga: bs.volga,
    totalVolatility: bs.totalVolatility,
    modelVolatility: sigma,
  };
  if (gap !== 0n) {
    // OptionMarket._beyondModel: in the money beyond K', high + gap; out of the money, low − gap (at
    // least 0); low at least intrinsic value; repriced in every scenario.
    if (m.isCall === m.strike < strike) out.high += gap;
    else out.low = out.low > gap ? out.low - gap : 0n;
    if (out.low < intrinsic) out.low = intrinsic;
    [out.totalVolatility, out.modelVolatility] = [1n, 0n];
  }
  if (timeToExpiry < BS_MIN_TIME_TO_EXPIRY) out.low = intrinsic;
  return out;
}

/**
 * The value of `size` contracts at valuation `v`, against the account (OptionMarket._positionValue): a
 * long is worth its low bound (rounded down), a short owes its high bound (rounded up).
 * @example
 * optionPositionValue(-2n * WAD, v); // −⌈2·v.high⌉
 */
export function optionPositionValue(size: bigint, v: OptionValuation): bigint {
  return size > 0n ? mulDiv(size, v.low, WAD) : -mulDiv(-size, v.high, WAD, "ceil");
}

/**
 * A trader's exposure in series `m` (OptionMarket.exposure): size × Greeks (delta, gamma, vega, vanna,
 * volga; rounded down), the model's σ√τ and volatility (0 outside the model), value at the low bound
 * when long (rounded down) and minus the high bound when short (rounded up), notional |size|·spot
 * (rounded up, 0 once settled), and the signed contracts as `optionSize` until the series settles. Expired
 * and unsettled, `totalVolatility` is 1 wei so that the engine reprices the position in every scenario.
 * @example
 * const e = optionExposure(position, series, 3000n * WAD, 6n * 10n ** 17n, state.timestamp);
 */
export function optionExposure(
  pos: OptionPositionState,
  m: OptionMarketState,
  spot: bigint,
  volatility: bigint,
  timestamp: bigint,
): Exposure {
  const size = pos.size;
  if (size === 0n) return { ...ZERO_EXPOSURE };
  const v = optionValuation(m, spot, volatility, timestamp);
  const e: Exposure = {
    ...ZERO_EXPOSURE,
    delta: mulWadDown(size, v.delta),
    gamma: mulWadDown(size, v.gamma),
    vega: mulWadDown(size, v.vega),
    vanna: mulWadDown(size, v.vanna),
    volga: mulWadDown(size, v.volga),
    totalVolatility: v.totalVolatility,
    modelVolatility: v.modelVolatility,
    value: optionPositionValue(size, v),
  };
  if (m.settled) return e;
  e.notional = mulDiv(abs(size), spot, WAD, "ceil");
  e.optionSize = size;
  if (size > 0n) {
    // Rounded as the value is (down), so an option at intrinsic value has no time value.
    const intrinsic = mulDiv(size, intrinsicValue(m.isCall, m.strike, spot), WAD);
    if (e.value > intrinsic) e.timeValue = e.value - intrinsic;
  }
  // Expired but unsettled: the settlement round decides the payoff, so the engine reprices it.
  if (timestamp >= m.expiry) e.totalVolatility = 1n;
  return e;
}

/**
 * How the value of a position in series `m` (valued as `optionExposure` values it) changes over a grid of
 * scenarios (OptionMarket.scenarioPnls): spot moved by `spotMoves[i]` and the feed volatility by
 * `volMoves[j]` (signed WAD), at index i·volMoves.length + j; the unmoved cell is 0. Every spot move
 * reprices the series (the model, the last hour, far from the money, expired, settled). Volatility moves
 * no larger than the series' model volatility now are applied to that repricing to second order — the
 * position's vega·dσ + ½·volga·dσ² at the moved spot, each term rounded down; larger moves (or a series
 * outside the model now) reprice every cell, the move added to the series' skew before the model
 * volatility is clamped. Throws a RangeError for a move taking spot below 0 (outside the interface's
 * domain: the engine's shocks are at most 100%).
 * @example
 * const { spotMoves, volMoves } = scenarioMoves(spot, shocks.im);
 * const pnls = optionScenarioPnls(position, series, spot, vol, state.timestamp, spotMoves, volMoves);
 */
export function optionScenarioPnls(
  pos: OptionPositionState,
  m: OptionMarketState,
  spot: bigint,
  volatility: bigint,
  timestamp: bigint,
  spotMoves: readonly bigint[],
  volMoves: readonly bigint[],
): bigint[] {
  const pnls: bigint[] = new Array<bigint>(spotMoves.length * volMoves.length).fill(0n);
  const size = pos.size;
  if (size === 0n) return pnls;
  const now = optionValuation(m, spot, volatility, timestamp);
  const base = optionPositionValue(size, now);
  const largestMove = volMoves.reduce((largest, dv) => max(largest, abs(dv)), 0n);
  const exactVolatility = 2n * largestMove > now.modelVolatility;
  for (let i = 0; i < spotMoves.length; i++) {
    const moved = movedSpot(spot, spotMoves[i]);
    const unmoved = spotMoves[i] === 0n;
    const at = unmoved ? now : optionValuation(m, moved, volatility, timestamp);
    const spotPnl = unmoved ? 0n : optionPositionValue(size, at) - base;
    const vega = mulWadDown(size, at.vega);
    const volga = mulWadDown(size, at.volga);
    for (let j = 0; j < volMoves.length; j++) {
      const dv = volMoves[j];
      if (unmoved && dv === 0n) continue;
      pnls[i * volMoves.length + j] = exactVolatility
        ? optionPositionValue(size, optionValuation(m, moved, volatility, timestamp, dv)) - base
        : dv === 0n
          ? spotPnl
          : spotPnl + mulWadDown(vega, dv) + divFloor(mulWadDown(mulWadDown(volga, dv), dv), 2n);
    }
  }
  return pnls;
}

/**
 * Premium per contract (spread included, bounds against the trader) and fee in quote units of trading
 * `sizeDelta` contracts at valuation `v` (OptionMarket._premiumAndFee): a buy pays high + ⌈k·vega⌉, a sell
 * receives low − ⌈k·vega⌉ (floored at 0); the fee is ⌈⌈|sizeDelta|·spot⌉·fee / quote unit⌉.
 * @example
 * premiumAndFee(v, series.params, 3000n * WAD, 2n * WAD, 10n ** 12n); // { premium, feeQuote }
 */
export function premiumAndFee(
  v: OptionValuation,
  params: OptionMarketState["params"],
  spot: bigint,
  sizeDelta: bigint,
  quoteUnit: bigint,
): { premium: bigint; feeQuote: bigint } {
  const spread = mulDiv(params.spreadFactor, v.vega, WAD, "ceil");
  const premium = sizeDelta > 0n ? v.high + spread : v.low > spread ? v.low - spread : 0n;
  const notional = mulDiv(abs(sizeDelta), spot, WAD, "ceil");
  return { premium, feeQuote: mulDiv(notional, params.fee, WAD * quoteUnit, "ceil") };
}

/**
 * What `OptionMarket.quoteTrade` returns: the premium per contract (USD WAD, spread included) and the fee
 * in USD WAD (exactly the quote units charged, times the quote unit). Throws a RangeError where the market
 * reverts: ZeroSizeDelta, SeriesAlreadySettled, SeriesExpired.
 * @example
 * optionQuote(series, 3000n * WAD, 6n * 10n ** 17n, state.timestamp, WAD, 10n ** 12n); // { premium, fee }
 */
export function optionQuote(
  m: OptionMarketState,
  spot: bigint,
  volatility: bigint,
  timestamp: bigint,
  sizeDelta: bigint,
  quoteUnit: bigint,
): { premium: bigint; fee: bigint } {
  const v = tradableValuation(m, spot, volatility, timestamp, sizeDelta);
  const { premium, feeQuote } = premiumAndFee(v, m.params, spot, sizeDelta, quoteUnit);
  return { premium, fee: feeQuote * quoteUnit };
}

/** The series' valuation for a trade, after the checks the market makes before pricing one. */
function tradableValuation(
  m: OptionMarketState,
  spot: bigint,
  volatility: bigint,
  timestamp: bigint,
  sizeDelta: bigint,
): OptionValuation {
  if (sizeDelta === 0n) throw new RangeError("ZeroSizeDelta");
  if (m.settled) throw new RangeError(`SeriesAlreadySettled(${m.marketId})`);
  if (timestamp >= m.expiry) throw new RangeError(`SeriesExpired(${m.marketId}, ${m.expiry})`);
  return optionValuation(m, spot, volatility, timestamp);
}

/** Everything an option trade changes, as OptionMarket.trade computes it. */
export interface OptionTradeResult {
  /** The series with its new open interest. */
  market: OptionMarketState;
  position: OptionPositionState;
  /** Premium per contract, spread included (USD WAD). */
  premium: bigint;
  /** Quote units paid (buy, rounded up) or received (sell, rounded down). */
  premiumQuote: bigint;
  /** Fee, quote units (rounded up). */
  feeQuote: bigint;
  /**
   * What the trade costs the account at a constant spot, quote units rounded up: fee plus
   * `optionTradingCost`; what a trader's allowance is charged (Accounts.authorizeTrade).
   */
  tradingCost: bigint;
  /** Signed change of the trader's quote balance, quote units: ∓premium − fee. */
  quoteDelta: bigint;
  /** Whether |size| grows or the sign flips (the trade then needs equity_IM ≥ IM). */
  increasesRisk: boolean;
  /** The position before the trade, contracts (WAD). */
  oldSize: bigint;
  /** The series' long open interest after the trade, contracts (WAD). */
  newLong: bigint;
  /** The series' short open interest after the trade, contracts (WAD). */
  newShort: bigint;
  /** The valuation the trade was priced at: its vega and |delta| become the series' per-contract rates. */
  valuation: OptionValuation;
}

/**
 * Applies a trade of `sizeDelta` contracts of `m` at `spot`, feed `volatility` and `timestamp`: premium
 * with spread, fee, new position and open interest, and the quote the trader pays or receives (rounded
 * against the trader). Does not check limits, caps or margin (`simulate` predicts those); throws like
 * `optionQuote` on a zero size or an expired or settled series.
 * @example
 * const r = applyOptionTrade(series, position, WAD, 3000n * WAD, vol, state.timestamp, 10n ** 12n);
 */
export function applyOptionTrade(
  m: OptionMarketState,
  pos: OptionPositionState,
  sizeDelta: bigint,
  spot: bigint,
  volatility: bigint,
  timestamp: bigint,
  quoteUnit: bigint,
): OptionTradeResult {
  const v = tradableValuation(m, spot, volatility, timestamp, sizeDelta);
  const { premium, feeQuote } = premiumAndFee(v, m.params, spot, sizeDelta, quoteUnit);
  const premiumQuote = mulDiv(abs(sizeDelta), premium, WAD * quoteUnit, sizeDelta > 0n ? "ceil" : "floor");
  const cost = optionTradingCost(v, m, spot, pos.size, sizeDelta, premium);
  const tradingCost = feeQuote + ceilDiv(cost, WAD * quoteUnit);
  const oldSize = pos.size;
  const newSize = oldSize + sizeDelta;
  const newLong = m.longOpenInterest - positive(oldSize) + positive(newSize);
  const newShort = m.shortOpenInterest - positive(-oldSize) + positive(-newSize);
  return {
    // The series' per-contract rates become the trade's (OptionMarket._recountSides).
    market: {
      ...m,
      longOpenInterest: newLong,
      shortOpenInterest: newShort,
      vegaPerContract: v.vega,
      deltaPerContract: countedDelta(v),
    },
    position: { ...pos, size: newSize },
    premium,
    premiumQuote,
    feeQuote,
    tradingCost,
    quoteDelta: (sizeDelta > 0n ? -premiumQuote : premiumQuote) - feeQuote,
    increasesRisk: optionIncreasesRisk(oldSize, newSize),
    oldSize,
    newLong,
    newShort,
    valuation: v,
  };
}

/**
 * The underlying's pool sides after a trade in series `m` (OptionMarket._recountSides): the series' old
 * terms (its traders' open interest, backstop left out, at its last vega and |delta| per contract) are
 * replaced by its new ones at the trade's valuation `v`, each term rounded down. A put's long side is
 * short the underlying. `after` is the series after the trade (open interest, backstop position).
 * @example
 * const pool = recountOptionPool(state.underlyings[u].optionPool!, series, afterTrade, r.valuation);
 */
export function recountOptionPool(
  pool: OptionPoolState,
  before: OptionMarketState,
  after: OptionMarketState,
  v: OptionValuation,
): OptionPoolState {
  const traders = (m: OptionMarketState): OptionSides => ({
    long: m.longOpenInterest - positive(m.backstopSize),
    short: m.shortOpenInterest - positive(-m.backstopSize),
  });
  const [old, now] = [traders(before), traders(after)];
  const vega = recountSides(pool.vega, old, now, before.vegaPerContract, v.vega);
  const flip = (x: OptionSides): OptionSides => (before.isCall ? x : { long: x.short, short: x.long });
  const delta = recountSides(pool.delta, flip(old), flip(now), before.deltaPerContract, countedDelta(v));
  return { ...pool, vega, delta };
}

function recountSides(
  sides: OptionSides,
  old: OptionSides,
  now: OptionSides,
  oldRate: bigint,
  newRate: bigint,
): OptionSides {
  const term = (openInterest: bigint, rate: bigint): bigint => mulDiv(openInterest, rate, WAD);
  return {
    long: sides.long - term(old.long, oldRate) + term(now.long, newRate),
    short: sides.short - term(old.short, oldRate) + term(now.short, newRate),
  };
}

/** A side of the traders' vega or delta against its limit, USD WAD. */
export interface PoolLimitUse {
  grown: bigint;
  limit: bigint;
}

/**
 * What a risk-increasing trade in series `m` checks against the pool's limits on its underlying
 * (OptionMarket._updatePoolLimits), with `pool` the sides after the trade: the larger side the trade
 * grows (long when its long open interest grows, short when its short does), vega as it is, delta at
 * `spot` (rounded up; a put's long side is short the underlying), each against its ratio of `base` (the
 * pool's quote balance less the premiums it holds, quote units; none when ≤ 0).
 * @example
 * const { vega, delta } = optionPoolLimits(pool, series, r.newLong, r.newShort, spot, base, quoteUnit);
 * if (vega.grown > vega.limit) console.log("PoolVegaLimitExceeded");
 */
export function optionPoolLimits(
  pool: OptionPoolState,
  m: OptionMarketState,
  newLong: bigint,
  newShort: bigint,
  spot: bigint,
  base: bigint,
  quoteUnit: bigint,
): { vega: PoolLimitUse; delta: PoolLimitUse } {
  const longGrows = newLong > m.longOpenInterest;
  const shortGrows = newShort > m.shortOpenInterest;
  const grownSide = (sides: OptionSides, long: boolean, short: boolean, price: bigint): bigint =>
    mulDiv(max(long ? sides.long : 0n, short ? sides.short : 0n), price, WAD, "ceil");
  const [deltaLong, deltaShort] = m.isCall ? [longGrows, shortGrows] : [shortGrows, longGrows];
  return {
    vega: {
      grown: grownSide(pool.vega, longGrows, shortGrows, WAD),
      limit: poolLimit(base, quoteUnit, pool.maxPoolVegaRatio),
    },
    delta: {
      grown: grownSide(pool.delta, deltaLong, deltaShort, spot),
      limit: poolLimit(base, quoteUnit, pool.maxPoolDeltaRatio),
    },
  };
}

function positive(x: bigint): bigint {
  return x > 0n ? x : 0n;
}

/**
 * What an option trade costs the account at a constant spot, before fees (USD WAD·contracts), as
 * OptionMarket._tradingCost: a contract bought opens a long at the premium above intrinsic value
 * (what the long loses by expiry if spot stays where it is) or buys back a short at the premium above
 * `low`; a contract sold opens a short at `high` less the premium, or sells a long at `low` less it.
 * @example
 * optionTradingCost(v, series, 3000n * WAD, 0n, WAD, premium); // premium − intrinsic, one long
 */
export function optionTradingCost(
  v: OptionValuation,
  m: OptionMarketState,
  spot: bigint,
  oldSize: bigint,
  sizeDelta: bigint,
  premium: bigint,
): bigint {
  const size = abs(sizeDelta);
  const buy = sizeDelta > 0n;
  const closing = oldSize > 0n !== buy ? min(size, abs(oldSize)) : 0n;
  const closeCost = positive(buy ? premium - v.low : v.low - premium);
  const openCost = buy ? positive(premium - intrinsicValue(m.isCall, m.strike, spot)) : v.high - premium;
  return closing * closeCost + (size - closing) * openCost;
}

/**
 * Whether going from `oldSize` to `newSize` adds risk: |size| grows or the sign flips
 * (OptionMarket._increasesRisk).
 * @example
 * optionIncreasesRisk(-WAD, 0n); // false
 */
export function optionIncreasesRisk(oldSize: bigint, newSize: bigint): boolean {
  return newSize !== 0n && (oldSize >= 0n !== newSize >= 0n || abs(newSize) > abs(oldSize));
}

/**
 * Quote units a settled series pays a position of `size` (> 0: paid to the account, rounded down;
 * < 0: paid by it, rounded up), as OptionMarket._settlePosition. Throws for a series not yet settled
 * (before `settleSeries`, `settlementPayoutAt` with the price `getOptionSettlement` proves).
 * @example
 * settlementPayout(settledCall, 2n * WAD, 10n ** 12n); // 2 × (settlement − strike), USDC units
 */
export function settlementPayout(m: OptionMarketState, size: bigint, quoteUnit: bigint): bigint {
  if (!m.settled) throw new RangeError(`SeriesNotSettled(${m.marketId})`);
  return settlementPayoutAt(m, m.settlementPrice, size, quoteUnit);
}

/**
 * Quote units a position of `size` in series `m` is paid (> 0, rounded down) or pays (< 0, rounded up)
 * when the series settles at `price` (USD WAD), as OptionMarket._settlePosition: |size| × intrinsic value
 * at `price`. With the price of the round that proves the settlement (`getOptionSettlement`'s
 * "provable"), this is what `settleAccounts` pays once `settleSeries` records it.
 * @example
 * settlementPayoutAt(call3000, 3300n * WAD, -2n * WAD, 10n ** 12n); // -600_000_000n: the writer pays 600 USDC
 */
export function settlementPayoutAt(
  m: OptionMarketState,
  price: bigint,
  size: bigint,
  quoteUnit: bigint,
): bigint {
  const value = intrinsicValue(m.isCall, m.strike, price);
  return size >= 0n ? mulDiv(size, value, WAD * quoteUnit) : -mulDiv(-size, value, WAD * quoteUnit, "ceil");
}

/** One contract's Greeks while its series trades (WAD, as `OptionValuation`'s). */
export interface OptionGreeks {
  /** ∂value/∂spot (WAD: underlying units per contract). */
  delta: bigint;
  /** ∂delta/∂spot (WAD: underlying units per USD). */
  gamma: bigint;
  /** ∂value/∂σ, USD WAD per 1.0 of volatility (÷ 100 per volatility point). */
  vega: bigint;
  /** ∂delta/∂σ, underlying units (WAD) per 1.0 of volatility. */
  vanna: bigint;
  /** ∂vega/∂σ, USD WAD per 1.0 of volatility squared. */
  volga: bigint;
}

/**
 * What a UI shows for one contract of a series: while it trades (`active`), the model's bounds, Greeks and
 * volatility; from expiry on, no model and no Greeks (`greeks: null`): the value is intrinsic at the
 * settlement price (`expired` with the price a round already proves, `settled` with the recorded one), or
 * unknown (`value` undefined) while no round at or after expiry proves one.
 */
export type OptionMark =
  | {
      status: "active";
      /** Model value, low bound (USD WAD per contract): what a long is marked at, a seller paid at. */
      low: bigint;
      /** Model value, high bound (USD WAD per contract): what a short is marked at, a buyer charged at. */
      high: bigint;
      greeks: OptionGreeks;
      /** The volatility the model prices at (feed + skew, clamped; 0 outside the model's range). */
      modelVolatility: bigint;
    }
  | {
      status: "expired" | "settled";
      /** The settlement price (USD WAD): proven by a round (expired) or recorded (settled); undefined while none is. */
      price: bigint | undefined;
      /** Intrinsic value per contract at `price` (USD WAD): what settlement pays a long; undefined with it. */
      value: bigint | undefined;
      /** No Greeks after expiry: the payoff is fixed by the settlement round, not by spot or volatility. */
      greeks: null;
    };

/**
 * One contract of series `m` as a UI shows it at `timestamp` (a UI's view; margin uses `optionValuation`,
 * which after expiry marks intrinsic value at today's spot until settlement, as the engine does): active,
 * the model at `spot` and feed `volatility` (`optionValuation`); expired, intrinsic value at
 * `settlementPrice` (the price `getOptionSettlement` proves; undefined while pending); settled, at the
 * recorded price. `vegaPerContract` / `deltaPerContract` of a series are the pool limits' rates as of its
 * last trade, not Greeks to show.
 * @example
 * const mark = optionMark(series, spot, vol, now, settlement.status === "provable" ? settlement.price : undefined);
 * if (mark.greeks === null) show(mark.value); // expired: no Greeks
 */
export function optionMark(
  m: OptionMarketState,
  spot: bigint,
  volatility: bigint,
  timestamp: bigint,
  settlementPrice?: bigint,
): OptionMark {
  const status = seriesStatus(m, timestamp);
  if (status !== "active") {
    const price = status === "settled" ? m.settlementPrice : settlementPrice;
    const value = price === undefined ? undefined : intrinsicValue(m.isCall, m.strike, price);
    return { status, price, value, greeks: null };
  }
  const v = optionValuation(m, spot, volatility, timestamp);
  const { delta, gamma, vega, vanna, volga } = v;
  return {
    status,
    low: v.low,
    high: v.high,
    greeks: { delta, gamma, vega, vanna, volga },
    modelVolatility: v.modelVolatility,
  };
}
