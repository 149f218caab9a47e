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

/**
 * Liquidation prices of `asset` (an oracle asset id, e.g. an underlying), by bisection to 1 wei
 * between the current price and `minPrice` (default 1 wei) below, `maxPrice` (default 100× spot)
 * above. Bisection finds a crossing between a safe and a liquidatable price; with perps and collateral
 * only, equity − MM is concave in the price, so each side has at most one and it is the one found. An
 * account liquidatable now gets `down = up = spot`.
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

  let down: bigint | null = null;
  if (minPrice < spot && liquidatableAt(minPrice)) {
    let lo = minPrice; // liquidatable
    let hi = spot; // safe
    while (hi - lo > 1n) {
      const mid = (lo + hi) / 2n;
      if (liquidatableAt(mid)) lo = mid;
      else hi = mid;
    }
    down = lo;
  }
  let up: bigint | null = null;
  if (maxPrice > spot && liquidatableAt(maxPrice)) {
    let lo = spot; // safe
    let hi = maxPrice; // liquidatable
    while (hi - lo > 1n) {
      const mid = (lo + hi) / 2n;
      if (liquidatableAt(mid)) hi = mid;
      else lo = mid;
    }
    up = hi;
  }
  return { spot, down, up };
}
