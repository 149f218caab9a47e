/**
 * The perp market model: how a PerpMarket values a position for the engine (`exposure`, and over the
 * engine's margin scenarios `scenarioPnls`), what a trade does to the market, the position and the quote
 * balance (`_price`, `_applyFill`, `_settle`, fee). Pure; mirrors `contracts/markets/PerpMarket.sol`.
 * @packageDocumentation
 */
import { WAD, abs, divCeil, divFloor, max, mulDiv } from "../math/fixedPoint";
import {
  accrueFunding,
  applyFill,
  fillPrice,
  perpFee,
  perpValue,
  premiumPaid,
  settlementQuoteDelta,
  skewPremium,
} from "../math/perp";
import type { PerpMarketState, PerpPositionState } from "../state";
import { type Exposure, ZERO_EXPOSURE, movedSpot } from "./types";

/**
 * The market's funding rate and index at `timestamp`, accrued at `price` (PerpMarket._currentIndex).
 * @example
 * const { index } = perpFundingAt(market, 3000n * WAD, state.timestamp);
 */
export function perpFundingAt(
  m: PerpMarketState,
  price: bigint,
  timestamp: bigint,
): { rate: bigint; index: bigint } {
  if (m.lastFundingTime === timestamp) return { rate: m.fundingRate, index: m.fundingIndex };
  const { newRate, newIndex } = accrueFunding({
    rate: m.fundingRate,
    index: m.fundingIndex,
    // The backstop's book is the LPs': funding reads the traders' net without it (PerpMarket._fundingAt).
    skew: m.longOpenInterest - m.shortOpenInterest - m.backstopSize,
    skewScale: m.params.skewScale,
    maxFundingVelocity: m.params.maxFundingVelocity,
    maxFundingRate: m.params.maxFundingRate,
    price,
    dt: timestamp - m.lastFundingTime,
  });
  return { rate: newRate, index: newIndex };
}

/**
 * A trader's perp exposure at `spot` (PerpMarket.exposure): delta = size, value = unrealised PnL minus
 * unsettled funding (rounded down, the funding index accrued at `spot`), notional = |size|·spot (rounded
 * up), exit discount = the skew premium closing it whole now would pay (`skewPremium`, 0 for a
 * rebate); no option Greeks (gamma, vega, vanna, volga, σ√τ and model volatility all 0).
 * @example
 * const e = perpExposure(position, market, 3000n * WAD, state.timestamp);
 */
export function perpExposure(
  pos: PerpPositionState,
  m: PerpMarketState,
  spot: bigint,
  timestamp: bigint,
): Exposure {
  if (pos.size === 0n) return { ...ZERO_EXPOSURE };
  const { index } = perpFundingAt(m, spot, timestamp);
  return {
    ...ZERO_EXPOSURE,
    delta: pos.size,
    value: perpValue(pos.size, pos.entryPrice, pos.fundingIndex, spot, index),
    notional: mulDiv(abs(pos.size), spot, WAD, "ceil"),
    exitDiscount: max(
      0n,
      skewPremium(spot, m.longOpenInterest - m.shortOpenInterest, -pos.size, m.params.skewScale),
    ),
  };
}

/**
 * How a perp position's value (as `perpExposure` values it, the funding index accrued at each moved spot)
 * changes over a grid of scenarios (PerpMarket.scenarioPnls): value(spot + spotMoves[i]) − value(spot) at
 * index i·volMoves.length + j, the same for every volatility move. Throws a RangeError for a move taking
 * spot below 0 (outside the interface's domain: the engine's shocks are at most 100%).
 * @example
 * const { spotMoves, volMoves } = scenarioMoves(spot, shocks.mm);
 * const pnls = perpScenarioPnls(position, market, spot, state.timestamp, spotMoves, volMoves);
 */
export function perpScenarioPnls(
  pos: PerpPositionState,
  m: PerpMarketState,
  spot: bigint,
  timestamp: bigint,
  spotMoves: readonly bigint[],
  volMoves: readonly bigint[],
): bigint[] {
  const base = perpExposure(pos, m, spot, timestamp).value;
  const pnls: bigint[] = [];
  for (const move of spotMoves) {
    const pnl = perpExposure(pos, m, movedSpot(spot, move), timestamp).value - base;
    for (let j = 0; j < volMoves.length; j++) pnls.push(pnl);
  }
  return pnls;
}

/**
 * What `quoteTrade` returns: the fill price with premium and the fee in USD WAD (exactly the quote
 * units charged, times the quote unit). Throws a RangeError where the market reverts with
 * ZeroSizeDelta or InvalidFillPrice.
 * @example
 * perpQuote(market, 3000n * WAD, 10n * WAD, 10n ** 12n); // { fillPrice: 3015n * WAD, fee: 15075n * 10n ** 15n }
 */
export function perpQuote(
  m: PerpMarketState,
  price: bigint,
  sizeDelta: bigint,
  quoteUnit: bigint,
): { fillPrice: bigint; fee: bigint } {
  if (sizeDelta === 0n) throw new RangeError("ZeroSizeDelta");
  const skew = m.longOpenInterest - m.shortOpenInterest;
  const fill = fillPrice(price, skew, sizeDelta, m.params.skewScale);
  if (fill <= 0n) throw new RangeError(`InvalidFillPrice(${fill})`);
  const fee = perpFee(skew, sizeDelta, fill, m.params.makerFee, m.params.takerFee, quoteUnit) * quoteUnit;
  return { fillPrice: fill, fee };
}

/** Everything a perp trade changes, as PerpMarket._trade computes it. */
export interface PerpTradeResult {
  market: PerpMarketState;
  position: PerpPositionState;
  fillPrice: bigint;
  /** Fee in quote units. */
  feeQuote: bigint;
  /**
   * What the trade costs the account at the oracle price, quote units: fee plus skew premium paid
   * (what a trader's allowance is charged, Accounts.authorizeTrade).
   */
  tradingCost: bigint;
  /** Realised PnL, USD WAD rounded down (the event's value). */
  realizedPnl: bigint;
  /** Funding settled, USD WAD rounded up (> 0: paid). */
  fundingPaid: bigint;
  /** Signed change of the trader's quote balance, quote units: settlement minus fee. */
  quoteDelta: bigint;
  increasesRisk: boolean;
  oldSize: bigint;
  /** Open interest after the trade. */
  newLong: bigint;
  newShort: bigint;
  /** Skew before the trade. */
  skew: bigint;
}

/**
 * Applies a trade of `sizeDelta` at oracle `price` and time `timestamp`: funding accrual, fill with
 * premium, realised PnL and funding settled into the quote balance (rounded against the trader), fee,
 * new entry and open interest. Does not check limits, caps or margin (see `simulate` for those).
 * @example
 * const r = applyPerpTrade(market, position, 10n * WAD, 3000n * WAD, state.timestamp, 10n ** 12n);
 */
export function applyPerpTrade(
  m: PerpMarketState,
  pos: PerpPositionState,
  sizeDelta: bigint,
  price: bigint,
  timestamp: bigint,
  quoteUnit: bigint,
): PerpTradeResult {
  const { rate, index } = perpFundingAt(m, price, timestamp);
  const skew = m.longOpenInterest - m.shortOpenInterest;
  const { fillPrice: fill } = perpQuote(m, price, sizeDelta, quoteUnit);
  const fundingRaw = pos.size * (index - pos.fundingIndex);
  const applied = applyFill(pos.size, pos.entryPrice, sizeDelta, fill);
  const pos0 = (x: bigint): bigint => (x > 0n ? x : 0n);
  const newLong = m.longOpenInterest - pos0(pos.size) + pos0(applied.newSize);
  const newShort = m.shortOpenInterest - pos0(-pos.size) + pos0(-applied.newSize);
  const feeQuote = perpFee(skew, sizeDelta, fill, m.params.makerFee, m.params.takerFee, quoteUnit);
  const settled = settlementQuoteDelta(applied.realizedRaw - fundingRaw, WAD * quoteUnit);
  return {
    market: {
      ...m,
      fundingRate: rate,
      fundingIndex: index,
      lastFundingTime: timestamp,
      longOpenInterest: newLong,
      shortOpenInterest: newShort,
    },
    position: {
      ...pos,
      size: applied.newSize,
      entryPrice: applied.newSize === 0n ? 0n : applied.newEntry,
      fundingIndex: applied.newSize === 0n ? 0n : index,
    },
    fillPrice: fill,
    feeQuote,
    tradingCost: feeQuote + premiumPaid(price, fill, sizeDelta, quoteUnit),
    realizedPnl: divFloor(applied.realizedRaw, WAD),
    fundingPaid: divCeil(fundingRaw, WAD),
    quoteDelta: settled - feeQuote,
    increasesRisk: applied.increasesRisk,
    oldSize: pos.size,
    newLong,
    newShort,
    skew,
  };
}
