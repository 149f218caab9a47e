/**
 * What every market type reports to the engine about one position (IMarket.Exposure), all WAD.
 * @packageDocumentation
 */

/** Risk and value of one position (IMarket.Exposure). */
export interface Exposure {
  /** ∂value/∂spot, underlying units (a perp: its size). */
  delta: bigint;
  /** ∂²value/∂spot² (0 for perps). */
  gamma: bigint;
  /** ∂value/∂σ per 1.0 of volatility (0 for perps). */
  vega: bigint;
  /** Mark-to-market value, USD, rounded against the account. */
  value: bigint;
  /** |size|·spot, USD. */
  notional: bigint;
  /** Signed option contracts (0 for perps). */
  optionSize: bigint;
}
