/**
 * Market models by type. The engine asks each market for a position's exposure; the SDK does the same
 * through `exposureOf`, which dispatches on the position's `kind`. A new market type (options) adds its
 * state variants in `state.ts`, a model file here with a case below, and a reader in
 * `actions/internal/readers.ts`.
 * @packageDocumentation
 */
import type { MarketState, PositionState } from "../state";
import { perpExposure } from "./perp";
import type { Exposure } from "./types";

export type { Exposure } from "./types";
export { applyPerpTrade, perpExposure, perpFundingAt, perpQuote, type PerpTradeResult } from "./perp";

/**
 * The exposure of `position` in `market` at `spot` and `volatility` (both read once per underlying, as
 * the engine does), with funding accrued to `timestamp`.
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
  void volatility; // perps ignore it; option models price with it
  switch (position.kind) {
    case "perp":
      return perpExposure(position, market, spot, timestamp);
  }
}
