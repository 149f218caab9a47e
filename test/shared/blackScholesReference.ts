/**
 * Float64 reference for contracts/libraries/BlackScholes.sol: pure functions, no chain, reusable by the
 * SDK and by full-revaluation comparisons.
 *
 * Model (same as the contract): zero interest rate, no dividends, τ = timeToExpiry / 365 days.
 *   d1 = (ln(S/K) + σ²τ/2) / (σ√τ), d2 = d1 − σ√τ
 *   call = S·N(d1) − K·N(d2), put = K·N(−d2) − S·N(−d1)
 *   delta = N(d1) (call) or N(d1) − 1 (put), gamma = φ(d1)/(S·σ√τ), vega = S·φ(d1)·√τ
 * Units: spot, strike and price in USD; delta in underlying units; gamma per USD; vega in USD per 1.0
 * of volatility.
 *
 * N is computed from erfc with W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev
 * approximations for the error function", Math. Comp. 23 (1969), 631–638; coefficients of his SPECFUN
 * routine CALERF), ≥ 18 significant digits in exact arithmetic, so float64 rounding dominates. The
 * smaller tail is always evaluated directly, never as 1 − (something close to 1).
 */

export const SECONDS_PER_YEAR = 365 * 86_400;

export interface BlackScholesInput {
  /** Spot price S in USD (> 0). */
  spot: number;
  /** Strike K in USD (> 0). */
  strike: number;
  /** Time to expiry in seconds (> 0). */
  timeToExpiry: number;
  /** Annualised volatility σ (1 = 100%, > 0). */
  volatility: number;
  isCall: boolean;
}

export interface BlackScholesValuation {
  price: number;
  delta: number;
  gamma: number;
  vega: number;
  /** ∂delta/∂σ = −φ(d1)·d2/σ (the same for calls and puts). */
  vanna: number;
  /** ∂vega/∂σ = vega·d1·d2/σ. */
  volga: number;
  /** σ√τ. */
  totalVolatility: number;
}

// Cody's CALERF coefficients (netlib.org/specfun/erf).
const A = [
  3.1611237438705656, 113.864154151050156, 377.485237685302021, 3209.37758913846947, 0.185777706184603153,
];
const B = [23.6012909523441209, 244.024637934444173, 1282.61652607737228, 2844.23683343917062];
const C = [
  0.564188496988670089, 8.88314979438837594, 66.1191906371416295, 298.635138197400131, 881.95222124176909,
  1712.04761263407058, 2051.07837782607147, 1230.33935479799725, 2.15311535474403846e-8,
];
const D = [
  15.7449261107098347, 117.693950891312499, 537.181101862009858, 1621.38957456669019, 3290.79923573345963,
  4362.61909014324716, 3439.36767414372164, 1230.33935480374942,
];
const P = [
  0.305326634961232344, 0.360344899949804439, 0.125781726111229246, 0.0160837851487422766,
  6.58749161529837803e-4, 0.0163153871373020978,
];
const Q = [
  2.56852019228982242, 1.87295284992346047, 0.527905102951428412, 0.0605183413124413191,
  0.00233520497626869185,
];
const INV_SQRT_PI = 0.56418958354775628695;
const INV_SQRT_2PI = 0.3989422804014327;

/** e^{−y²}, with y² split as in CALERF (y = k/16 + r) so the exponent's rounding does not grow with y. */
function expMinusSquare(y: number): number {
  const head = Math.trunc(y * 16) / 16;
  const del = (y - head) * (y + head);
  return Math.exp(-head * head) * Math.exp(-del);
}

/** Complementary error function erfc(x), any real x (Cody's algorithm). */
export function erfc(x: number): number {
  const y = Math.abs(x);
  let result: number;
  if (y <= 0.46875) {
    const z = y * y;
    let num = A[4] * z;
    let den = z;
    for (let i = 0; i < 3; i++) {
      num = (num + A[i]) * z;
      den = (den + B[i]) * z;
    }
    const erf = (x * (num + A[3])) / (den + B[3]);
    return 1 - erf;
  } else if (y <= 4) {
    let num = C[8] * y;
    let den = y;
    for (let i = 0; i < 7; i++) {
      num = (num + C[i]) * y;
      den = (den + D[i]) * y;
    }
    result = (expMinusSquare(y) * (num + C[7])) / (den + D[7]);
  } else if (y >= 26.543) {
    result = 0; // below the smallest double
  } else {
    const z = 1 / (y * y);
    let num = P[5] * z;
    let den = z;
    for (let i = 0; i < 4; i++) {
      num = (num + P[i]) * z;
      den = (den + Q[i]) * z;
    }
    const correction = (z * (num + P[4])) / (den + Q[4]);
    result = (expMinusSquare(y) * (INV_SQRT_PI - correction)) / y;
  }
  return x < 0 ? 2 - result : result;
}

/** Standard normal CDF N(d) = erfc(−d/√2)/2. */
export function normCdf(d: number): number {
  return 0.5 * erfc(-d / Math.SQRT2);
}

/** Standard normal density φ(d). */
export function normPdf(d: number): number {
  return INV_SQRT_2PI * Math.exp(-0.5 * d * d);
}

interface D1D2 {
  d1: number;
  d2: number;
  totalVol: number;
  sqrtTau: number;
}

function d1d2({ spot, strike, timeToExpiry, volatility }: BlackScholesInput): D1D2 {
  const sqrtTau = Math.sqrt(timeToExpiry / SECONDS_PER_YEAR);
  const totalVol = volatility * sqrtTau;
  const d1 = (Math.log(spot / strike) + 0.5 * totalVol * totalVol) / totalVol;
  return { d1, d2: d1 - totalVol, totalVol, sqrtTau };
}

/** Price, delta, gamma, vega, vanna and volga together. */
export function blackScholes(input: BlackScholesInput): BlackScholesValuation {
  const { spot, strike, isCall } = input;
  const { d1, d2, totalVol, sqrtTau } = d1d2(input);
  // Each N(±d) is evaluated on its own, so a small tail is never 1 − (a number close to 1).
  const price = isCall
    ? spot * normCdf(d1) - strike * normCdf(d2)
    : strike * normCdf(-d2) - spot * normCdf(-d1);
  const pdf = normPdf(d1);
  const vega = spot * pdf * sqrtTau;
  return {
    price: Math.max(price, 0),
    delta: isCall ? normCdf(d1) : -normCdf(-d1),
    gamma: pdf / (spot * totalVol),
    vega,
    vanna: (-pdf * d2) / input.volatility,
    volga: (vega * d1 * d2) / input.volatility,
    totalVolatility: totalVol,
  };
}

/** Model price in USD. */
export function price(input: BlackScholesInput): number {
  return blackScholes(input).price;
}

/** ∂price/∂spot: in [0, 1] for a call, [−1, 0] for a put. */
export function delta(input: BlackScholesInput): number {
  return blackScholes(input).delta;
}

/** ∂²price/∂spot², per USD. */
export function gamma(input: BlackScholesInput): number {
  return blackScholes(input).gamma;
}

/** ∂price/∂σ, USD per 1.0 of volatility. */
export function vega(input: BlackScholesInput): number {
  return blackScholes(input).vega;
}
