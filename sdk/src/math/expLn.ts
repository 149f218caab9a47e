/**
 * `expWad` and `lnWad` of solady's FixedPointMathLib (node_modules/solady/src/utils/FixedPointMathLib.sol,
 * credit Remco Bloemen), ported step by step with bigints so they return the contract's value to the wei:
 * the same rational approximations, the same binary bases (2^96) and the same rounding of every shift
 * (arithmetic, toward −∞) and division (toward zero). BlackScholes prices with them.
 *
 * Within the inputs the contracts accept, every intermediate of the Solidity fits in 256 bits, so the
 * wrapping arithmetic of the EVM and exact bigint arithmetic agree.
 * @packageDocumentation
 */

/**
 * e^x for a WAD `x`, WAD (solady `expWad`). 0 for x ≤ −41.45e18 (the result is below 0.5 wei); throws a
 * RangeError ("ExpOverflow") where solady reverts (x ≥ 135.3e18).
 * @example
 * expWad(10n ** 18n); // 2718281828459045235n
 * expWad(-(10n ** 18n)); // 367879441171442321n
 */
export function expWad(x: bigint): bigint {
  if (x <= -41446531673892822313n) return 0n;
  if (x >= 135305999368893231589n) throw new RangeError("ExpOverflow");
  // Base conversion to 2^96: multiply by 1e18 / 2^96 = 5^18 / 2^78 (Solidity `/` truncates, as bigint's).
  x = (x << 78n) / 5n ** 18n;
  // k = round(x / ln 2); x' = x − k·ln 2 ∈ (−½ ln 2, ½ ln 2)·2^96. `>>` floors, as Solidity's on int256.
  const k = ((x << 96n) / 54916777467707473351141471128n + 2n ** 95n) >> 96n;
  x = x - k * 54916777467707473351141471128n;
  // (6, 7)-term rational approximation; p is monic and left in a 2^192 basis.
  let y = x + 1346386616545796478920950773328n;
  y = ((y * x) >> 96n) + 57155421227552351082224309758442n;
  let p = y + x - 94201549194550492254356042504812n;
  p = ((p * y) >> 96n) + 28719021644029726153956944680412240n;
  p = p * x + (4385272521454847904659076985693276n << 96n);
  let q = x - 2855989394907223263936484059900n;
  q = ((q * x) >> 96n) + 50020603652535783019961831881945n;
  q = ((q * x) >> 96n) - 533845033583426703283633433725380n;
  q = ((q * x) >> 96n) + 3604857256930695427073651918091429n;
  q = ((q * x) >> 96n) - 14423608567350463180887372962807573n;
  q = ((q * x) >> 96n) + 26449188498355588339934803723976023n;
  // sdiv: truncation toward zero. r ∈ (0.09, 0.25)·2^96 > 0.
  const r = p / q;
  // Scale factor, 2^k and the base conversion at once, in a 2^213 basis.
  return (r * 3822833074963236453042738258902158003155416615667n) >> (195n - k);
}

/**
 * ln(x) for a positive WAD `x`, WAD (solady `lnWad`); throws a RangeError ("LnWadUndefined") for x ≤ 0.
 * @example
 * lnWad(2n * 10n ** 18n); // 693147180559945309n
 * lnWad(10n ** 18n); // 0n
 */
export function lnWad(x: bigint): bigint {
  if (x <= 0n) throw new RangeError("LnWadUndefined");
  // r = 255 − ⌊log2 x⌋; the Solidity computes it with a de Bruijn lookup, the result is the same.
  const log2 = BigInt(x.toString(2).length - 1);
  const r = 255n - log2;
  // Reduce x to [1, 2)·2^96: shr(159, shl(r, x)); shl(r, x) puts the top bit at 255, nothing wraps.
  x = (x << r) >> 159n;
  // (8, 8)-term rational approximation; p monic, in a 2^192 basis.
  let p =
    ((((((3273285459638523848632254066296n + x) * x) >> 96n) + 24828157081833163892658089445524n) * x) >>
      96n) +
    43456485725739037958740375743393n;
  p = ((p * x) >> 96n) - 11111509109440967052023855526967n;
  p = ((p * x) >> 96n) - 45023709667254063763336534515857n;
  p = ((p * x) >> 96n) - 14706773417378608786704636184526n;
  p = p * x - (795164235651350426258249787498n << 96n);
  let q = 5573035233440673466300451813936n + x;
  q = 71694874799317883764090561454958n + ((x * q) >> 96n);
  q = 283447036172924575727196451306956n + ((x * q) >> 96n);
  q = 401686690394027663651624208769553n + ((x * q) >> 96n);
  q = 204048457590392012362485061816622n + ((x * q) >> 96n);
  q = 31853899698501571402653359427138n + ((x * q) >> 96n);
  q = 909429971244387300277376558375n + ((x * q) >> 96n);
  // sdiv truncates toward zero; then scale, add k·ln 2 and ln(2^96 / 1e18), convert the base.
  p = p / q;
  p = 1677202110996718588342820967067443963516166n * p;
  p = 16597577552685614221487285958193947469193820559219878177908093499208371n * (159n - r) + p;
  p = 600920179829731861736702779321621459595472258049074101567377883020018308n + p;
  return p >> 174n;
}
