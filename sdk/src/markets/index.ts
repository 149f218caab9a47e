/**
 * Market models by type. The engine asks each market for a position's exposure, and for the PnLs of a
 * position it reprices over the margin scenarios; the SDK does the same through `exposureOf` and
 * `scenarioPnlsOf`, which dispatch on the position's `kind`. A new market type adds its state
 * variants in `state.ts`, a model file here with a case below, and a reader in
 * `actions/internal/readers.ts`.
 * @packageDocumentation
 */
import type { MarketState, PositionState } from "../state";
import { optionExposure, optionScenarioPnls } from "./option";
import { perpExposure, perpScenarioPnls } from "./perp";
import type { Exposure } from "./types";

export { type Exposure, ZERO_EXPOSURE, movedSpot, poolLimit } from "./types";
export {
  applyPerpTrade,
  perpExposure,
  perpFundingAt,
  perpQuote,
  perpScenarioPnls,
  type PerpTradeResult,
} from "./perp";
export {
  MIN_COUNTED_DELTA,
  applyOptionTrade,
  countedDelta,
  intrinsicValue,
  modelVolatility,
  optionExposure,
  optionIncreasesRisk,
  optionPoolLimits,
  optionPositionValue,
  optionQuote,
  optionScenarioPnls,
  optionValuation,
  premiumAndFee,
  recountOptionPool,
  seriesStatus,
  settlementPayout,
  settlementPayoutAt,
  optionMark,
  type OptionTradeResult,
  type PoolLimitUse,
  type OptionValuation,
  type SeriesStatus,
  type OptionMark,
  type OptionGreeks,
} from "./option";

/**
 * The exposure of `position` in `market` at `spot` and `volatility` (both read once per underlying, as
 * the engine does) at `timestamp` (perps accrue funding to it; options price their time to expiry).
 * @example
 * const e = exposureOf(state.positions[0], market, spot, vol, state.timestamp);
 */
export function exposureOf(
  position: PositionState,
  market: MarketState,
  spot: bigint,
  volatility: bigint,
  timestamp: bigint,
): Exposure {
  if (position.kind === "perp" && market.kind === "perp") {
    return perpExposure(position, market, spot, timestamp);
  }
  if (position.kind === "option" && market.kind === "option") {
    return optionExposure(position, market, spot, volatility, timestamp);
  }
  throw new RangeError(`position of kind ${position.kind} in a market of kind ${market.kind}`);
}

/**
 * The change of `position`'s value (as `exposureOf` values it) in each scenario of a grid: spot moved by
 * `spotMoves[i]` and the feed volatility by `volMoves[j]`, at index i·volMoves.length + j
 * (IMarket.scenarioPnls). The engine asks for it where a position's Greeks would be unreliable over its
 * shocks (`needsRepricing`).
 * @example
 * const { spotMoves, volMoves } = scenarioMoves(spot, shocks.im);
 * const pnls = scenarioPnlsOf(position, market, spot, vol, state.timestamp, spotMoves, volMoves);
 */
export function scenarioPnlsOf(
  position: PositionState,
  market: MarketState,
  spot: bigint,
  volatility: bigint,
  timestamp: bigint,
  spotMoves: readonly bigint[],
  volMoves: readonly bigint[],
): bigint[] {
  if (position.kind === "perp" && market.kind === "perp") {
    return perpScenarioPnls(position, market, spot, timestamp, spotMoves, volMoves);
  }
  if (position.kind === "option" && market.kind === "option") {
    return optionScenarioPnls(position, market, spot, volatility, timestamp, spotMoves, volMoves);
  }
  throw new RangeError(`position of kind ${position.kind} in a market of kind ${market.kind}`);
}
