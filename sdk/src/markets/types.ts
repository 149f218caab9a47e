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
  /**
   * Signed option contracts of an unexpired series (0 for perps and expired or settled series); feeds
   * the engine's floor for net short options.
   */
  optionSize: bigint;
}

/** The exposure of no position. */
export const ZERO_EXPOSURE: Readonly<Exposure> = Object.freeze({
  delta: 0n,
  gamma: 0n,
  vega: 0n,
  value: 0n,
  notional: 0n,
  optionSize: 0n,
});
