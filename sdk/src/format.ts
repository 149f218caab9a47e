/**
 * Display helpers for WAD values and token amounts (pure; used in error messages and examples).
 * @packageDocumentation
 */
import { MAX_UINT256 } from "./math/health";

function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * A fixed-point `value` with `decimals` decimals as a decimal string with `digits` fraction digits,
 * rounded half away from zero, with thousands separators.
 * @example
 * formatFixed(1234567n, 3, 2); // "1,234.57"
 */
export function formatFixed(value: bigint, decimals: number, digits = 2): string {
  const negative = value < 0n;
  let abs = negative ? -value : value;
  if (digits < decimals) {
    const unit = 10n ** BigInt(decimals - digits);
    abs = (abs + unit / 2n) / unit;
  } else {
    abs *= 10n ** BigInt(digits - decimals);
  }
  const scale = 10n ** BigInt(digits);
  const whole = groupThousands((abs / scale).toString());
  const fraction = digits > 0 ? "." + (abs % scale).toString().padStart(digits, "0") : "";
  return `${negative && abs !== 0n ? "-" : ""}${whole}${fraction}`;
}

/**
 * A USD WAD amount with two decimals and thousands separators (no currency sign).
 * @example
 * formatUsd(1234_560000000000000000n); // "1,234.56"
 */
export function formatUsd(wad: bigint, digits = 2): string {
  return formatFixed(wad, 18, digits);
}

/**
 * A WAD fraction as a percentage.
 * @example
 * formatPercent(5n * 10n ** 16n); // "5.00%"
 */
export function formatPercent(wad: bigint, digits = 2): string {
  return `${formatFixed(wad * 100n, 18, digits)}%`;
}

/**
 * A health ratio (`Health.healthRatio`, equityMaintenance / MM as WAD) for display: "∞" for the
 * engine's 2^256 − 1, the ratio of an account without a maintenance requirement (no position, say a
 * fresh account or a preview's `before`), which `formatUsd` prints as a 78-digit number (review round
 * 158); otherwise `digits` decimals.
 * @example
 * formatHealthRatio(1_915_533_494_190_742_500n); // "1.92"
 * formatHealthRatio(MAX_UINT256); // "∞"
 */
export function formatHealthRatio(ratio: bigint, digits = 2): string {
  return ratio === MAX_UINT256 ? "∞" : formatFixed(ratio, 18, digits);
}
