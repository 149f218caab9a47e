/**
 * Black-Scholes price, delta, gamma, vega, vanna and volga of a European option in WAD, the integer
 * algorithm of
 * `contracts/libraries/BlackScholes.sol` step by step: ln S − ln K and e^{−d²/2} with solady's `lnWad`
 * and `expWad` (see `expLn.ts`), σ√τ with an integer square root, the normal CDF from W. J. Cody's rational
 * approximations of erf/erfc on three intervals, every division rounded as in the Solidity. The result
 * equals the contract's to the wei (held against BlackScholesHarness in test/sdk/Math.test.ts).
 *
 * Model: zero rate, no dividends; τ = timeToExpiry / 365 days; d1 = (ln(S/K) + σ²τ/2)/(σ√τ), d2 = d1 − σ√τ;
 * vega is USD per 1.0 (100 points) of volatility; vanna = ∂delta/∂σ = −φ(d1)·d2/σ and volga = ∂vega/∂σ =
 * vega·d1·d2/σ (the same for calls and puts), each division truncated toward zero. Domain as the library's: 0 < S, K ≤ 1e36, K/S ∈
 * [1/100, 100], τ ∈ [1 hour, 2 years], σ ∈ [0.01, 5]; outside it the functions throw a RangeError named
 * after the library's custom error.
 * @packageDocumentation
 */
import { WAD, mulDiv, sqrt } from "./fixedPoint";
import { expWad, lnWad } from "./expLn";

/** Price and Greeks of one option on one unit of underlying (BlackScholes.Valuation), WAD. */
export interface BlackScholesValuation {
  /** Model value in USD (≥ 0), rounded down. */
  price: bigint;
  /** ∂price/∂S: [0, 1e18] for a call, [−1e18, 0] for a put. */
  delta: bigint;
  /** ∂²price/∂S², underlying units per USD (≥ 0). */
  gamma: bigint;
  /** ∂price/∂σ, USD per 1.0 of volatility (≥ 0). */
  vega: bigint;
  /** ∂delta/∂σ, underlying units per 1.0 of volatility (truncated toward zero). */
  vanna: bigint;
  /** ∂vega/∂σ, USD per 1.0 of volatility squared (truncated toward zero). */
  volga: bigint;
  /** w = σ√τ (rounded down): the option's one-standard-deviation move in log spot until expiry. */
  totalVolatility: bigint;
}

/** The year that annualises time: 365 days, in seconds. */
export const BS_YEAR = 365n * 86_400n;
/** Largest spot and strike (1e18 USD). */
export const BS_MAX_PRICE = 10n ** 36n;
/** Largest K/S and S/K. */
export const BS_MAX_MONEYNESS = 100n;
/** Shortest time to expiry the model prices: one hour. */
export const BS_MIN_TIME_TO_EXPIRY = 3_600n;
/** Longest time to expiry: two years. */
export const BS_MAX_TIME_TO_EXPIRY = 2n * BS_YEAR;
/** Volatility bounds: 1% and 500%. */
export const BS_MIN_VOLATILITY = 10n ** 16n;
export const BS_MAX_VOLATILITY = 5n * WAD;

const INV_SQRT_2PI = 398942280401432678n;
const INV_SQRT_2 = 707106781186547524n;
const INV_SQRT_PI = 564189583547756287n;
const D_NEGLIGIBLE = 9_200000000000000000n;
const Y_ERF = 468750000000000000n;
const Y_ERFC = 4n * WAD;

// Cody's CALERF coefficients in WAD (see the library for their sources).
const A = [
  3161123743870565600n,
  113864154151050156000n,
  377485237685302021000n,
  3209377589138469470000n,
  185777706184603153n,
];
const B = [23601290952344120900n, 244024637934444173000n, 1282616526077372280000n, 2844236833439170620000n];
const C = [
  564188496988670089n,
  8883149794388375940n,
  66119190637141629500n,
  298635138197400131000n,
  881952221241769090000n,
  1712047612634070580000n,
  2051078377826071470000n,
  1230339354797997250000n,
  21531153547n,
];
const D = [
  15744926110709834700n,
  117693950891312499000n,
  537181101862009858000n,
  1621389574566690190000n,
  3290799235733459630000n,
  4362619090143247160000n,
  3439367674143721640000n,
  1230339354803749420000n,
];
const P = [
  305326634961232344n,
  360344899949804439n,
  125781726111229246n,
  16083785148742277n,
  658749161529838n,
  16315387137302098n,
];
const Q = [
  2568520192289822420n,
  1872952849923460470n,
  527905102951428412n,
  60518341312441319n,
  2335204976268692n,
];

/**
 * Throws a RangeError named after the library's error (SpotOutOfRange, StrikeOutOfRange,
 * MoneynessOutOfRange, TimeToExpiryOutOfRange, VolatilityOutOfRange) unless the inputs are in the
 * model's domain (BlackScholes.checkDomain).
 * @example
 * checkDomain(3000n * WAD, 3000n * WAD, 1800n, WAD / 2n); // throws RangeError("TimeToExpiryOutOfRange(1800)")
 */
export function checkDomain(spot: bigint, strike: bigint, timeToExpiry: bigint, volatility: bigint): void {
  // `<= 0n`, not `=== 0n`: the contract's prices are unsigned, a bigint is not, and a negative spot
  // must be named for what it is rather than reach the moneyness check.
  if (spot <= 0n || spot > BS_MAX_PRICE) throw new RangeError(`SpotOutOfRange(${spot})`);
  if (strike <= 0n || strike > BS_MAX_PRICE) throw new RangeError(`StrikeOutOfRange(${strike})`);
  if (strike * BS_MAX_MONEYNESS < spot || strike > spot * BS_MAX_MONEYNESS) {
    throw new RangeError(`MoneynessOutOfRange(${spot}, ${strike})`);
  }
  if (timeToExpiry < BS_MIN_TIME_TO_EXPIRY || timeToExpiry > BS_MAX_TIME_TO_EXPIRY) {
    throw new RangeError(`TimeToExpiryOutOfRange(${timeToExpiry})`);
  }
  if (volatility < BS_MIN_VOLATILITY || volatility > BS_MAX_VOLATILITY) {
    throw new RangeError(`VolatilityOutOfRange(${volatility})`);
  }
}

/**
 * Price, delta, gamma, vega, vanna, volga and σ√τ of one option on one unit of underlying
 * (BlackScholes.valuation).
 * @example
 * // ETH at 3,000, an at-the-money call, 30 days, 60% volatility:
 * const v = blackScholes(3000n * WAD, 3000n * WAD, 30n * 86_400n, 6n * 10n ** 17n, true);
 * v.price; // 205618221547606416000n (205.62 USD); v.delta: 534269703591267736n (0.534)
 */
export function blackScholes(
  spot: bigint,
  strike: bigint,
  timeToExpiry: bigint,
  volatility: bigint,
  isCall: boolean,
): BlackScholesValuation {
  checkDomain(spot, strike, timeToExpiry, volatility);
  const { d1, d2, totalVol27 } = d1d2(spot, strike, timeToExpiry, volatility);
  const gauss1 = gauss(abs(d1));
  const nd1 = cdf(d1, gauss1);
  const nd2 = cdf(d2, gauss(abs(d2)));
  const pdf = (gauss1 * INV_SQRT_2PI) / WAD;
  const vega = mulDiv(spot * pdf, totalVol27, volatility * 10n ** 27n);
  return {
    price: priceOf(spot, strike, nd1, nd2, isCall),
    delta: isCall ? nd1 : nd1 - WAD,
    gamma: (pdf * 10n ** 45n) / (spot * totalVol27),
    vega,
    // Signed divisions truncate toward zero, in Solidity and with bigints alike.
    vanna: -(pdf * d2) / volatility,
    volga: (((vega * d1) / WAD) * d2) / volatility,
    totalVolatility: totalVol27 / 1_000_000_000n,
  };
}

/**
 * The price only (BlackScholes.price): the same value as `blackScholes(...).price`.
 * @example
 * blackScholesPrice(3000n * WAD, 3300n * WAD, 30n * 86_400n, 6n * 10n ** 17n, false); // 398107815141282256200n
 */
export function blackScholesPrice(
  spot: bigint,
  strike: bigint,
  timeToExpiry: bigint,
  volatility: bigint,
  isCall: boolean,
): bigint {
  checkDomain(spot, strike, timeToExpiry, volatility);
  const { d1, d2 } = d1d2(spot, strike, timeToExpiry, volatility);
  return priceOf(spot, strike, cdf(d1, gauss(abs(d1))), cdf(d2, gauss(abs(d2))), isCall);
}

/**
 * The standard normal CDF N(d) of a WAD `d`, WAD (BlackScholes.normCdf; absolute error ≤ 1.5 wei).
 * @example
 * normCdf(0n); // 500000000000000000n
 */
export function normCdf(d: bigint): bigint {
  return cdf(d, gauss(abs(d)));
}

function abs(x: bigint): bigint {
  return x < 0n ? -x : x;
}

/** d1, d2 (WAD) and σ√τ scaled by 1e27 (BlackScholes._d1d2). Signed divisions truncate, as bigint's. */
function d1d2(
  spot: bigint,
  strike: bigint,
  timeToExpiry: bigint,
  volatility: bigint,
): { d1: bigint; d2: bigint; totalVol27: bigint } {
  const logMoneyness = lnWad(spot) - lnWad(strike);
  const variance36 = (volatility * volatility * timeToExpiry) / BS_YEAR;
  const totalVol27 = sqrt(variance36 * WAD);
  const halfVariance27 = variance36 / 2_000_000_000n;
  const x27 = logMoneyness * 1_000_000_000n;
  return {
    d1: ((x27 + halfVariance27) * WAD) / totalVol27,
    d2: ((x27 - halfVariance27) * WAD) / totalVol27,
    totalVol27,
  };
}

function priceOf(spot: bigint, strike: bigint, nd1: bigint, nd2: bigint, isCall: boolean): bigint {
  const [plus, minus] = isCall ? [spot * nd1, strike * nd2] : [strike * (WAD - nd2), spot * (WAD - nd1)];
  return plus > minus ? (plus - minus) / WAD : 0n;
}

function cdf(d: bigint, g: bigint): bigint {
  const t = tail(abs(d), g);
  return d < 0n ? t : WAD - t;
}

/** e^{−d²/2} (WAD); 0 from |d| ≥ 9.2. */
function gauss(absD: bigint): bigint {
  if (absD >= D_NEGLIGIBLE) return 0n;
  return expWad(-((absD * absD) / (2n * WAD)));
}

function tail(absD: bigint, g: bigint): bigint {
  if (g === 0n) return 0n;
  const y = (absD * INV_SQRT_2) / WAD;
  if (y <= Y_ERF) return tailNear(y);
  if (y <= Y_ERFC) return tailMid(y, g);
  return tailFar(y, g);
}

function tailNear(y: bigint): bigint {
  const z = (y * y) / WAD;
  let num = (A[4] * z) / WAD;
  let den = z;
  for (let i = 0; i < 3; i++) {
    num = ((num + A[i]) * z) / WAD;
    den = ((den + B[i]) * z) / WAD;
  }
  num += A[3];
  den += B[3];
  return (WAD * den - y * num) / (2n * den);
}

function tailMid(y: bigint, g: bigint): bigint {
  let num = (C[8] * y) / WAD;
  let den = y;
  for (let i = 0; i < 7; i++) {
    num = ((num + C[i]) * y) / WAD;
    den = ((den + D[i]) * y) / WAD;
  }
  return (g * (num + C[7])) / (2n * (den + D[7]));
}

function tailFar(y: bigint, g: bigint): bigint {
  const z = (WAD * WAD * WAD) / (y * y);
  let num = (P[5] * z) / WAD;
  let den = z;
  for (let i = 0; i < 4; i++) {
    num = ((num + P[i]) * z) / WAD;
    den = ((den + Q[i]) * z) / WAD;
  }
  const correction = (z * (num + P[4])) / (den + Q[4]);
  return (g * (INV_SQRT_PI - correction)) / (2n * y);
}
