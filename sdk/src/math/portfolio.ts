/**
 * PortfolioMath: the scenario-based requirement of one underlying's positions, and the shock sizes the
 * engine derives from its risk parameters (MarginEngine._shocks). Same integer steps and rounding as
 * `contracts/libraries/PortfolioMath.sol` (and RiskMath.linearRequirement, its linear fast path).
 *
 * A scenario moves spot by dS and volatility by dσ over the grid dS ∈ {−s, −s/2, 0, +s/2, +s}·spot ×
 * dσ ∈ {−v, 0, +v}. Positions whose Greeks describe them well over that range enter through their
 * aggregated Greeks, as the second-order Taylor estimate Δ·dS + ½·Γ·dS² + vega·dσ + vanna·dS·dσ +
 * ½·volga·dσ²; the others (`needsRepricing`: an option whose σ√τ is below the spot shock or whose
 * volatility is below twice the volatility shock) are repriced in every cell by their market
 * (`scenarioPnlsOf`) and enter as exact PnLs. The requirement is the worst loss over the 15 cells, plus
 * a floor on net short options and a contingency on gross notional.
 * @packageDocumentation
 */
import { WAD, divFloor, max, mulDiv, mulDivUp, mulWadDown, sqrt } from "./fixedPoint";

/** 365 days in seconds: the year of `horizonVolatility`. */
export const YEAR = 365n * 86_400n;
/** Spot moves in the grid (−s, −s/2, 0, +s/2, +s): PortfolioMath.SPOT_MOVES. */
export const SPOT_MOVES = 5;
/** Volatility moves in the grid (−v, 0, +v): PortfolioMath.VOL_MOVES. */
export const VOL_MOVES = 3;
/**
 * Cells of the grid (PortfolioMath.CELLS); cell i·VOL_MOVES + j moves spot by `spotMoves[i]` and
 * volatility by `volMoves[j]`.
 */
export const CELLS = SPOT_MOVES * VOL_MOVES;

/**
 * Aggregated risk of the positions on one underlying (PortfolioMath.Greeks), all WAD. Field order as the
 * struct's: delta, gamma, vega, optionSize, notional, vanna, volga.
 */
export interface Greeks {
  /** Σ ∂value/∂spot, underlying units (WAD; a perp counts its size). */
  delta: bigint;
  /** Σ ∂²value/∂spot², underlying units per USD (WAD). */
  gamma: bigint;
  /** Σ ∂value/∂σ, USD WAD per 1.0 of volatility (÷ 100 per volatility point). */
  vega: bigint;
  /** Σ signed contracts of unexpired option series (calls and puts alike: the floor is on the net short). */
  optionSize: bigint;
  /** Σ |size|·spot, USD WAD. */
  notional: bigint;
  /** ∂delta/∂σ, underlying units per 1.0 of volatility. */
  vanna: bigint;
  /** ∂vega/∂σ, USD per 1.0 of volatility squared. */
  volga: bigint;
}

/** Shock sizes and add-ons for one requirement level (PortfolioMath.Shocks), all WAD. */
export interface Shocks {
  spotShock: bigint;
  volShock: bigint;
  shortOptionFloor: bigint;
  contingency: bigint;
}

/** Portfolio-margin parameters of one underlying (IMarginEngine.RiskParams), WAD unless stated. */
export interface RiskParams {
  mmShockFloor: bigint;
  imShockFloor: bigint;
  mmZ: bigint;
  imZ: bigint;
  /** Liquidation horizon, seconds. */
  horizon: bigint;
  maxShock: bigint;
  mmVolShock: bigint;
  imVolShock: bigint;
  shortOptionFloor: bigint;
  contingency: bigint;
  /** Gross notional (USD WAD) at which the shock doubles; 0 disables size scaling. */
  sizeScale: bigint;
}

/** Greeks of an empty group. */
export const ZERO_GREEKS: Readonly<Greeks> = Object.freeze({
  delta: 0n,
  gamma: 0n,
  vega: 0n,
  optionSize: 0n,
  notional: 0n,
  vanna: 0n,
  volga: 0n,
});

/**
 * σ·√(horizon/year), rounded up: the one-standard-deviation move over the liquidation horizon.
 * @example
 * horizonVolatility(6n * 10n ** 17n, 86_400n); // 31405435355412823n (60% over one day)
 */
export function horizonVolatility(volatility: bigint, horizon: bigint): bigint {
  const sqrtTime = sqrt(mulDiv(horizon, WAD * WAD, YEAR), "ceil");
  return mulDivUp(volatility, sqrtTime, WAD);
}

/**
 * Spot shock s = min(maxShock, max(floor, z·σ√h)·(1 + notional/sizeScale)), rounded up.
 * @example
 * spotShock(10n ** 17n, 3n * WAD, 31405426983400588n, WAD / 2n, 0n, 0n); // 10n ** 17n (the floor)
 */
export function spotShock(
  floor: bigint,
  z: bigint,
  sigmaSqrtHorizon: bigint,
  maxShock: bigint,
  sizeScale: bigint,
  grossNotional: bigint,
): bigint {
  let shock = max(floor, mulDivUp(z, sigmaSqrtHorizon, WAD));
  if (sizeScale !== 0n) {
    shock = mulDivUp(shock, WAD + mulDivUp(grossNotional, WAD, sizeScale), WAD);
  }
  return shock > maxShock ? maxShock : shock;
}

/**
 * The IM and MM shocks of a group of `grossNotional` USD (MarginEngine._shocks).
 * @example
 * const { im, mm } = shocksFor(params, 6n * 10n ** 17n, 30_000n * WAD);
 */
export function shocksFor(
  p: RiskParams,
  volatility: bigint,
  grossNotional: bigint,
): { im: Shocks; mm: Shocks } {
  const sigma = horizonVolatility(volatility, p.horizon);
  return {
    im: {
      spotShock: spotShock(p.imShockFloor, p.imZ, sigma, p.maxShock, p.sizeScale, grossNotional),
      volShock: p.imVolShock,
      shortOptionFloor: p.shortOptionFloor,
      contingency: p.contingency,
    },
    mm: {
      spotShock: spotShock(p.mmShockFloor, p.mmZ, sigma, p.maxShock, p.sizeScale, grossNotional),
      volShock: p.mmVolShock,
      shortOptionFloor: p.shortOptionFloor,
      contingency: p.contingency,
    },
  };
}

/**
 * Whether a position with σ√τ `totalVolatility` and model volatility `modelVolatility` must be repriced
 * under `k` rather than enter through its Greeks (PortfolioMath.needsRepricing): a spot shock larger than
 * the option's own one-standard-deviation move in log spot until expiry, or a volatility shock larger
 * than half its volatility. Linear positions (`totalVolatility` 0) never need it.
 * @example
 * // A call with 4 hours left at 60%: σ√τ = 0.6·√(4/8760) ≈ 0.0128 < a 10% spot shock.
 * const im = { spotShock: WAD / 10n, volShock: WAD / 4n, shortOptionFloor: 0n, contingency: 0n };
 * needsRepricing(12821000000000000n, 6n * 10n ** 17n, im); // true
 */
export function needsRepricing(totalVolatility: bigint, modelVolatility: bigint, k: Shocks): boolean {
  return totalVolatility !== 0n && (k.spotShock > totalVolatility || 2n * k.volShock > modelVolatility);
}

/**
 * The grid's moves at `spot` under `k` (PortfolioMath.scenarioMoves): spot moves (USD WAD)
 * fullMove·{−1, −½, 0, ½, 1} with fullMove = ⌈spot·s⌉ (each half truncated toward zero, as Solidity's
 * signed division and bigint's), and volatility moves {−v, 0, +v}.
 * @example
 * const im = { spotShock: WAD / 10n, volShock: WAD / 4n, shortOptionFloor: 0n, contingency: 0n };
 * scenarioMoves(3000n * WAD, im); // { spotMoves: [−300, −150, 0, 150, 300]·1e18, volMoves: [−0.25, 0, 0.25]·1e18 }
 */
export function scenarioMoves(spot: bigint, k: Shocks): { spotMoves: bigint[]; volMoves: bigint[] } {
  const fullMove = mulDivUp(spot, k.spotShock, WAD);
  const spotMoves: bigint[] = [];
  for (let i = 0; i < SPOT_MOVES; i++) spotMoves.push((fullMove * BigInt(i - 2)) / 2n);
  return { spotMoves, volMoves: [-k.volShock, 0n, k.volShock] };
}

/**
 * The largest loss (≥ 0) over the grid's 15 cells (PortfolioMath.worstScenarioLoss): in each, the Taylor
 * PnL of `g` — Δ·dS + ½·Γ·dS² and, when dσ ≠ 0, vega·dσ + (vanna·dS)·dσ + ½·volga·dσ², each term rounded
 * down so the loss rounds up — plus `repricedPnls[i·3 + j]`, the exact PnL of the repriced positions
 * (CELLS entries, or empty when none are repriced).
 * @example
 * // A 10-unit long at 3,000 with a 10% shock loses 10·300 = 3,000 USD in the worst scenario.
 * const k = { spotShock: WAD / 10n, volShock: 0n, shortOptionFloor: 0n, contingency: 0n };
 * worstScenarioLoss({ ...ZERO_GREEKS, delta: 10n * WAD }, 3000n * WAD, k); // 3000n * WAD
 */
export function worstScenarioLoss(
  g: Greeks,
  spot: bigint,
  k: Shocks,
  repricedPnls: readonly bigint[] = [],
): bigint {
  if (repricedPnls.length !== 0 && repricedPnls.length !== CELLS) {
    throw new RangeError(`repricedPnls: ${repricedPnls.length} entries, expected 0 or ${CELLS}`);
  }
  const { spotMoves, volMoves } = scenarioMoves(spot, k);
  const repriced = repricedPnls.length !== 0;
  let worstPnl = 0n;
  for (let i = 0; i < SPOT_MOVES; i++) {
    const dS = spotMoves[i];
    let spotPnl = mulWadDown(g.delta, dS);
    if (g.gamma !== 0n) spotPnl += divFloor(g.gamma * dS * dS, 2n * WAD * WAD);
    const vannaDS = mulWadDown(g.vanna, dS);
    for (let j = 0; j < VOL_MOVES; j++) {
      let pnl = spotPnl + volatilityPnl(g, vannaDS, volMoves[j]);
      if (repriced) pnl += repricedPnls[i * VOL_MOVES + j];
      if (pnl < worstPnl) worstPnl = pnl;
    }
  }
  return -worstPnl;
}

/**
 * The Taylor terms in dσ: vega·dσ + (vanna·dS)·dσ + ½·volga·dσ², each rounded down
 * (PortfolioMath._volatilityPnl).
 */
function volatilityPnl(g: Greeks, vannaDS: bigint, dv: bigint): bigint {
  if (dv === 0n) return 0n;
  return (
    mulWadDown(g.vega, dv) + mulWadDown(vannaDS, dv) + divFloor(mulWadDown(mulWadDown(g.volga, dv), dv), 2n)
  );
}

/** How far one option series' volatility may move alone in one governance update (the skew step). */
export const SERIES_VOLATILITY_STEP = 5n * 10n ** 16n;

/**
 * What the engine holds back from a position's equity for new risk for one skew step of its series:
 * ⌈|vega|·SERIES_VOLATILITY_STEP⌉ (MarginEngine._addExposure), so an account meeting its IM survives a
 * step of every series it holds. 0 for perps (no vega).
 * @example
 * seriesVolatilityHoldback(-400n * WAD); // 20n * WAD: a short with 400 USD of vega per 1.0 of volatility
 */
export function seriesVolatilityHoldback(vega: bigint): bigint {
  return mulDivUp(vega < 0n ? -vega : vega, SERIES_VOLATILITY_STEP, WAD);
}

/** A long contract covers a short one in full from this much time value per unit of spot (MarginEngine). */
export const COVERING_TIME_VALUE = 5n * 10n ** 16n;

/**
 * How many of a long option position's `size` contracts offset short ones in the short-option floor
 * (MarginEngine._coveringContracts): all when the position's time value (USD WAD) is at least
 * ⌈spot·COVERING_TIME_VALUE⌉ (5% of spot) per contract, proportionally fewer when it is less (rounded
 * down): neither a nearly worthless far-out-of-the-money long nor a deep in-the-money one (a forward) can
 * cancel a short's floor. The measure does not move with `shortOptionFloor`, so the floor is linear in it.
 * @example
 * coveringContracts(10n * WAD, 15n * WAD, 3000n * WAD); // 0.1 contract
 */
export function coveringContracts(size: bigint, timeValue: bigint, spot: bigint): bigint {
  const floorPerContract = mulDivUp(spot, COVERING_TIME_VALUE, WAD);
  const covering = (timeValue * WAD) / floorPerContract;
  return covering < size ? covering : size;
}

/**
 * Requirement of the positions with aggregated Greeks `g` plus the repriced ones (their PnL per cell in
 * `repricedPnls`, CELLS entries, or empty when none are) at `spot` under `k`, rounded up
 * (PortfolioMath.requirement): worst scenario loss + the floor on net short options
 * (⌈⌈max(0, −optionSize)·spot⌉·shortOptionFloor⌉) + the contingency on gross notional. `g.optionSize` and
 * `g.notional` cover all positions, repriced ones included. The floor is on *net* short contracts, calls
 * and puts together: parity-consistent (a covered call pays it like the short put it equals; a synthetic
 * forward pays nothing); long contracts count as far as `coveringContracts` says.
 * @example
 * requirement({ ...ZERO_GREEKS, delta: 10n * WAD, notional: 30_000n * WAD }, 3000n * WAD, {
 *   spotShock: WAD / 10n, volShock: 0n, shortOptionFloor: 0n, contingency: 2n * 10n ** 15n,
 * }); // 3060n * WAD
 */
export function requirement(
  g: Greeks,
  spot: bigint,
  k: Shocks,
  repricedPnls: readonly bigint[] = [],
): bigint {
  const worst = worstScenarioLoss(g, spot, k, repricedPnls);
  const netShortOptions = g.optionSize < 0n ? -g.optionSize : 0n;
  const floor = mulDivUp(mulDivUp(netShortOptions, spot, WAD), k.shortOptionFloor, WAD);
  const contingency = mulDivUp(g.notional, k.contingency, WAD);
  return worst + floor + contingency;
}

/**
 * `requirement` of a linear book (Γ = vega = vanna = volga = net option size = 0, e.g. perps only), the
 * engine's fast path (RiskMath.linearRequirement): the full move against the position, −|Δ|·⌈spot·s⌉
 * rounded down, plus the contingency rounded up. Equal to `requirement` on such Greeks, to the wei.
 * @example
 * linearRequirement(10n * WAD, 30_000n * WAD, 3000n * WAD, WAD / 10n, 2n * 10n ** 15n); // 3060n * WAD
 */
export function linearRequirement(
  delta: bigint,
  notional: bigint,
  spot: bigint,
  spotShock: bigint,
  contingency: bigint,
): bigint {
  const fullMove = mulDivUp(spot, spotShock, WAD);
  const worstPnl = mulWadDown(delta > 0n ? -delta : delta, fullMove);
  return -worstPnl + mulDivUp(notional, contingency, WAD);
}
