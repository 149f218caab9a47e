/**
 * What every market type reports to the engine about one position (IMarket.Exposure), all WAD, and the
 * pool limit every market type checks new risk against.
 * @packageDocumentation
 */
import { WAD, mulDiv } from "../math/fixedPoint";

/** Risk and value of one position (IMarket.Exposure). */
export interface Exposure {
  /** ∂value/∂spot, underlying units (a perp: its size). */
  delta: bigint;
  /** ∂²value/∂spot², underlying units per USD (0 for perps). */
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
  /** ∂delta/∂σ, underlying units per 1.0 of volatility (0 for perps). */
  vanna: bigint;
  /** ∂vega/∂σ, USD per 1.0 of volatility squared (0 for perps). */
  volga: bigint;
  /**
   * σ√τ of the option's model: the move in log spot over which its Greeks stay meaningful. 0 when the
   * value is linear in spot (perps; settled options); 1 wei for an option the engine must reprice
   * whatever the shock (expired and unsettled, or far from the money). The engine
   * reprices the position (`scenarioPnls`) instead of using its Greeks when a spot shock exceeds it.
   */
  totalVolatility: bigint;
  /**
   * The volatility the option is priced at (feed plus skew, clamped; 0 outside the model and for
   * perps). The engine reprices the position when a volatility shock exceeds it.
   */
  modelVolatility: bigint;
  /**
   * USD (≥ 0, rounded up) by which closing the whole position now would fall short of `value`: a perp's
   * skew premium on the close. Deducted from equity for the initial requirement only (0 for options).
   */
  exitDiscount: bigint;
  /**
   * A long option's value beyond its intrinsic value at spot (USD, ≥ 0, rounded down): what it offsets
   * of short options' floor (intrinsic value is a forward's worth). 0 for perps, shorts and settled series.
   */
  timeValue: bigint;
}

/** The exposure of no position. */
export const ZERO_EXPOSURE: Readonly<Exposure> = Object.freeze({
  delta: 0n,
  gamma: 0n,
  vega: 0n,
  value: 0n,
  notional: 0n,
  optionSize: 0n,
  vanna: 0n,
  volga: 0n,
  totalVolatility: 0n,
  modelVolatility: 0n,
  exitDiscount: 0n,
  timeValue: 0n,
});

/**
 * spot + move for a margin scenario (IMarket.scenarioPnls: the engine's moves keep spot ≥ 0). Throws a
 * RangeError below 0, outside the interface's domain.
 * @example
 * movedSpot(3000n * WAD, -300n * WAD); // 2700n * WAD
 */
export function movedSpot(spot: bigint, move: bigint): bigint {
  const moved = spot + move;
  if (moved < 0n) throw new RangeError(`spot ${spot} moved by ${move} is below 0`);
  return moved;
}

/**
 * A pool limit, USD WAD: `ratio` (WAD) of the pool's base in quote units (its quote balance less the
 * premiums it holds for open options, `PerpMarket.poolDeltaBase`), none when the base is ≤ 0. The perp
 * markets' delta limit and the option market's vega and delta limits are all this, at their own ratios.
 * @example
 * poolLimit(1_000_000n * 10n ** 6n, 10n ** 12n, WAD); // 1,000,000 USD
 */
export function poolLimit(base: bigint, quoteUnit: bigint, ratio: bigint): bigint {
  return base > 0n ? mulDiv(base * quoteUnit, ratio, WAD) : 0n;
}
