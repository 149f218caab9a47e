/**
 * Market models by type. The engine asks each market for a position's exposure; the SDK does the same
 * through `exposureOf`, which dispatches on the position's `kind`. A new market type adds its state
 * variants in `state.ts`, a model file here with a case below, and a reader in
 * `actions/internal/readers.ts`.
 * @packageDocumentation
 */
import type { MarketState, PositionState } from "../state";
import { optionExposure } from "./option";
import { perpExposure } from "./perp";
import type { Exposure } from "./types";

export { type Exposure, ZERO_EXPOSURE } from "./types";
export { applyPerpTrade, perpExposure, perpFundingAt, perpQuote, type PerpTradeResult } from "./perp";
export {
  applyOptionTrade,
  intrinsicValue,
  modelVolatility,
  optionExposure,
  optionIncreasesRisk,
  optionQuote,
  optionValuation,
  premiumAndFee,
  seriesStatus,
  settlementPayout,
  type OptionTradeResult,
  type OptionValuation,
  type SeriesStatus,
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
