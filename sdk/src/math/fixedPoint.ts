/**
 * Integer arithmetic with the rounding of the contracts: OpenZeppelin `Math` (`mulDiv`, `ceilDiv`,
 * `sqrt`), `SignedWadMath` and `PerpMath.divFloor`/`divCeil`. Every function is pure bigint math; the
 * rounding direction is in the name (`Down` toward −∞, `Up` toward +∞), as in the Solidity.
 *
 * Solidity reverts on overflow; bigints do not overflow, so for inputs the contracts would reject these
 * functions return the mathematically exact result instead of throwing.
 * @packageDocumentation
 */

/** 1e18: the fixed-point unit of USD values, prices and fractions. */
export const WAD = 10n ** 18n;

/** Rounding direction, as OpenZeppelin's `Math.Rounding` (Floor / Ceil). */
export type Rounding = "floor" | "ceil";

/**
 * `x·y / d` for non-negative operands, rounded as asked (OpenZeppelin `Math.mulDiv`).
 * @example
 * mulDiv(10n, 3n, 4n); // 7n
 * mulDiv(10n, 3n, 4n, "ceil"); // 8n
 */
export function mulDiv(x: bigint, y: bigint, d: bigint, rounding: Rounding = "floor"): bigint {
  if (x < 0n || y < 0n || d <= 0n) throw new RangeError("mulDiv: operands must be non-negative, d > 0");
  const p = x * y;
  const q = p / d;
  return rounding === "ceil" && q * d !== p ? q + 1n : q;
}

/**
 * `x·y / d` rounded down.
 * @example
 * mulDivDown(10n, 3n, 4n); // 7n
 */
export function mulDivDown(x: bigint, y: bigint, d: bigint): bigint {
  return mulDiv(x, y, d, "floor");
}

/**
 * `x·y / d` rounded up.
 * @example
 * mulDivUp(10n, 3n, 4n); // 8n
 */
export function mulDivUp(x: bigint, y: bigint, d: bigint): bigint {
  return mulDiv(x, y, d, "ceil");
}

/**
 * `⌈a / b⌉` for non-negative `a` and positive `b` (OpenZeppelin `Math.ceilDiv`).
 * @example
 * ceilDiv(7n, 2n); // 4n
 */
export function ceilDiv(a: bigint, b: bigint): bigint {
  if (a < 0n || b <= 0n) throw new RangeError("ceilDiv: a must be non-negative, b > 0");
  return a === 0n ? 0n : (a - 1n) / b + 1n;
}

/**
 * `x·y / 1e18` rounded down (unsigned).
 * @example
 * wMulDown(2n * WAD, 3n * WAD); // 6n * WAD
 */
export function wMulDown(x: bigint, y: bigint): bigint {
  return mulDiv(x, y, WAD, "floor");
}

/**
 * `x·y / 1e18` rounded up (unsigned).
 * @example
 * wMulUp(1n, 1n); // 1n
 */
export function wMulUp(x: bigint, y: bigint): bigint {
  return mulDiv(x, y, WAD, "ceil");
}

/**
 * `x·1e18 / y` rounded down (unsigned).
 * @example
 * wDivDown(WAD, 3n * WAD); // 333333333333333333n
 */
export function wDivDown(x: bigint, y: bigint): bigint {
  return mulDiv(x, WAD, y, "floor");
}

/**
 * `x·1e18 / y` rounded up (unsigned).
 * @example
 * wDivUp(WAD, 3n * WAD); // 333333333333333334n
 */
export function wDivUp(x: bigint, y: bigint): bigint {
  return mulDiv(x, WAD, y, "ceil");
}

/**
 * Integer square root with OpenZeppelin `Math.sqrt(a, rounding)` semantics: the floor root, plus one
 * when rounding up and the root is not exact.
 * @example
 * sqrt(10n); // 3n
 * sqrt(10n, "ceil"); // 4n
 */
export function sqrt(a: bigint, rounding: Rounding = "floor"): bigint {
  if (a < 0n) throw new RangeError("sqrt of a negative number");
  if (a < 2n) return a;
  // Newton's method from a power of two above the root; decreasing until it settles on ⌊√a⌋.
  let x = 1n << BigInt(Math.ceil(a.toString(2).length / 2));
  for (;;) {
    const y = (x + a / x) >> 1n;
    if (y >= x) break;
    x = y;
  }
  return rounding === "ceil" && x * x < a ? x + 1n : x;
}

/**
 * Signed `a·b / 1e18` rounded toward −∞ (`SignedWadMath.mulWadDown`).
 * @example
 * mulWadDown(-1n, 1n); // -1n
 */
export function mulWadDown(a: bigint, b: bigint): bigint {
  return divFloor(a * b, WAD);
}

/**
 * Signed `a / b` rounded toward −∞, for positive `b` (`SignedWadMath.divDown`, `PerpMath.divFloor`).
 * @example
 * divFloor(-7n, 2n); // -4n
 */
export function divFloor(a: bigint, b: bigint): bigint {
  if (b <= 0n) throw new RangeError("divFloor: b must be positive");
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/**
 * Signed `a / b` rounded toward +∞, for positive `b` (`PerpMath.divCeil`).
 * @example
 * divCeil(7n, 2n); // 4n
 * divCeil(-7n, 2n); // -3n
 */
export function divCeil(a: bigint, b: bigint): bigint {
  if (b <= 0n) throw new RangeError("divCeil: b must be positive");
  const q = a / b;
  return a % b !== 0n && a > 0n ? q + 1n : q;
}

/**
 * |x| (OpenZeppelin `SignedMath.abs`).
 * @example
 * abs(-5n); // 5n
 */
export function abs(x: bigint): bigint {
  return x < 0n ? -x : x;
}

/**
 * The smaller of two bigints.
 * @example
 * min(2n, 3n); // 2n
 */
export function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/**
 * The larger of two bigints.
 * @example
 * max(2n, 3n); // 3n
 */
export function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
