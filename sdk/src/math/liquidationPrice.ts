/**
 * Liquidation price of one underlying with everything else held: the oracle price of that asset at
 * which the account crosses equity_MM < MM, found by bisection on the pure health model. Moving an
 * asset's price moves everything priced by it: the perps on it (values, notional, shocks, the funding
 * accrued at that price) and collateral with that oracle asset (WETH and an ERC-4626 over it for ETH).
 * @packageDocumentation
 */
import type { AccountState } from "../state";
import { accountHealth, isLiquidatable } from "./health";

/** Liquidation prices on either side of the current price (WAD), null where none is in range. */
export interface LiquidationPrices {
  /** The asset's current price. */
  spot: bigint;
  /** Highest price below spot at which the account is liquidatable (for a net long). */
  down: bigint | null;
  /** Lowest price above spot at which the account is liquidatable (for a net short). */
  up: bigint | null;
}

/**
 * The state with the oracle price of `asset` replaced.
 * @example
 * accountHealth(withPrice(state, ETH, 2500n * WAD));
 */
export function withPrice(state: AccountState, asset: string, price: bigint): AccountState {
  return { ...state, prices: { ...state.prices, [asset.toLowerCase()]: price } };
}

/** Steps of the outward scan on each side of spot (`liquidationPrice`). */
export const LIQUIDATION_PRICE_SCAN_STEPS = 256;

/**
 * Liquidation prices of `asset` (an oracle asset id, e.g. an underlying): the nearest prices below and
 * above the current one at which the account is liquidatable, between `minPrice` (default 1 wei) and
 * `maxPrice` (default 100× spot), to 1 wei by bisection against the safe price before each. With perps
 * and collateral only, equity − MM is concave in the price, so each side has at most one crossing, and
 * it lies before the side's end if the account is liquidatable there. An option book is not: a
 * calendar or a covered short can be liquidatable on a band of prices and safe again beyond it (at 1
 * wei, or far above), so with options each side is scanned outward from spot for its first
 * liquidatable price (below: 256 equal steps of (spot − minPrice)/256; above: 256 steps growing
 * geometrically to `maxPrice`, ~1.8% each at the default), which finds the band nearest to spot unless
 * it is narrower than a step. An account liquidatable now gets `down = up = spot`.
 * @example
 * const { down } = liquidationPrice(state, ethers.encodeBytes32String("ETH"));
 * if (down !== null) console.log(`liquidated if ETH falls to ${ethers.formatEther(down)}`);
 */
export function liquidationPrice(
  state: AccountState,
  asset: string,
  opts: { minPrice?: bigint; maxPrice?: bigint } = {},
): LiquidationPrices {
  const key = asset.toLowerCase();
  const spot = state.prices[key];
  if (spot === undefined) throw state.priceErrors?.[key] ?? new RangeError(`no price for ${asset} in state`);
  const liquidatableAt = (price: bigint): boolean =>
    isLiquidatable(accountHealth(withPrice(state, key, price)));
  if (liquidatableAt(spot)) return { spot, down: spot, up: spot };
  const minPrice = opts.minPrice ?? 1n;
  const maxPrice = opts.maxPrice ?? spot * 100n;
  // Without options equity − MM is concave in the price: each side's end says whether it has a crossing,
  // so the path is that end alone (one evaluation instead of up to 256 before the bisection).
  const steps = state.positions.some((p) => p.kind === "option") ? LIQUIDATION_PRICE_SCAN_STEPS : 1;
  const below: bigint[] = [];
  for (let k = 1; k <= steps && minPrice < spot; k++)
    below.push(spot - ((spot - minPrice) * BigInt(k)) / BigInt(steps));
  const above: bigint[] = [];
  const ratio = Math.pow(Number(maxPrice) / Number(spot), 1 / steps);
  for (let k = 1; k <= steps && maxPrice > spot; k++) {
    const stepped = BigInt(Math.floor(Number(spot) * Math.pow(ratio, k)));
    above.push(k === steps || stepped > maxPrice ? maxPrice : stepped);
  }
  return {
    spot,
    down: nearestLiquidatable(spot, below, liquidatableAt),
    up: nearestLiquidatable(spot, above, liquidatableAt),
  };
}

/**
 * The liquidatable price nearest the safe `spot` along `path` (prices moving away from it): the first
 * liquidatable one on the path, bisected to 1 wei against the safe price before it; null if none is.
 */
function nearestLiquidatable(
  spot: bigint,
  path: readonly bigint[],
  liquidatableAt: (price: bigint) => boolean,
): bigint | null {
  let safe = spot;
  for (const price of path) {
    if (price === safe) continue;
    if (!liquidatableAt(price)) {
      safe = price;
      continue;
    }
    let liquidatable = price;
    while (liquidatable - safe > 1n || safe - liquidatable > 1n) {
      const mid = (safe + liquidatable) / 2n;
      if (liquidatableAt(mid)) liquidatable = mid;
      else safe = mid;
    }
    return liquidatable;
  }
  return null;
}
