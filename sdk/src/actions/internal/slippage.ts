/** The slippage actions allow by default, in basis points (0.5%). */
export const DEFAULT_SLIPPAGE_BPS = 50;

/** `amount` plus `bps` basis points, rounded up: the most a caller pays. */
export function plusSlippage(amount: bigint, bps: number = DEFAULT_SLIPPAGE_BPS): bigint {
  return (amount * (10_000n + BigInt(bps)) + 9_999n) / 10_000n;
}

/** `amount` less `bps` basis points, rounded down: the fewest a caller accepts. */
export function lessSlippage(amount: bigint, bps: number = DEFAULT_SLIPPAGE_BPS): bigint {
  return (amount * (10_000n - BigInt(bps))) / 10_000n;
}
