/** The slippage actions allow by default, in basis points (0.5%). */
export const DEFAULT_SLIPPAGE_BPS = 50;

const BPS = 10_000n;

/** `bps` as a bigint; a RangeError unless it is an integer in [0, 10000]. */
export function slippageBpsOf(bps: number): bigint {
  if (!Number.isInteger(bps) || bps < 0 || bps > 10_000) {
    throw new RangeError("slippageBps must be an integer in [0, 10000]");
  }
  return BigInt(bps);
}

/** `amount` plus `bps` basis points, rounded up: the most a caller pays. */
export function plusSlippage(amount: bigint, bps: number = DEFAULT_SLIPPAGE_BPS): bigint {
  return (amount * (BPS + slippageBpsOf(bps)) + BPS - 1n) / BPS;
}

/** `amount` less `bps` basis points, rounded down: the fewest a caller accepts. */
export function lessSlippage(amount: bigint, bps: number = DEFAULT_SLIPPAGE_BPS): bigint {
  return (amount * (BPS - slippageBpsOf(bps))) / BPS;
}
