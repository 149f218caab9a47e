/**
 * PortfolioMath: the scenario-based requirement of one underlying's aggregated Greeks, and the shock
 * sizes the engine derives from its risk parameters (MarginEngine._shocks). Same integer steps and
 * rounding as `contracts/libraries/PortfolioMath.sol`.
 * @packageDocumentation
 */
import { WAD, divFloor, max, mulDiv, mulDivUp, mulWadDown, sqrt } from "./fixedPoint";

/** 365 days in seconds: the year of `horizonVolatility`. */
export const YEAR = 365n * 86_400n;

/** Aggregated risk of the positions on one underlying (PortfolioMath.Greeks), all WAD. */
export interface Greeks {
  delta: bigint;
  gamma: bigint;
  vega: bigint;
  /** Σ signed contracts of unexpired option series (calls and puts alike: the floor is on the net short). */
  optionSize: bigint;
  notional: bigint;
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
 * The largest loss (≥ 0) over the 5 × 3 grid of spot moves {−s, −s/2, +s/2, +s}·spot (0 is dominated)
 * and volatility moves ±v, evaluated separably like the contract: worst spot PnL plus |vega|·v.
 * @example
 * // A 10-unit long at 3,000 with a 10% shock loses 10·300 = 3,000 USD in the worst scenario.
 * worstScenarioLoss({ ...ZERO_GREEKS, delta: 10n * WAD }, 3000n * WAD, WAD / 10n, 0n); // 3000n * WAD
 */
export function worstScenarioLoss(g: Greeks, spot: bigint, shock: bigint, volShock: bigint): bigint {
  const fullMove = mulDivUp(spot, shock, WAD);
  let worstSpotPnl = 0n;
  for (const i of [-2n, -1n, 1n, 2n]) {
    // Solidity's signed division truncates toward zero, as bigint division does.
    const dS = (fullMove * i) / 2n;
    let pnl = mulWadDown(g.delta, dS);
    if (g.gamma !== 0n) pnl += divFloor(g.gamma * dS * dS, 2n * WAD * WAD);
    if (pnl < worstSpotPnl) worstSpotPnl = pnl;
  }
  let volLoss = 0n;
  if (g.vega !== 0n) {
    const negAbsVega = g.vega < 0n ? g.vega : -g.vega;
    volLoss = -mulWadDown(negAbsVega, volShock);
  }
  return -worstSpotPnl + volLoss;
}

/**
 * Requirement of `g` at `spot` under `k`, rounded up: worst scenario loss + the floor on net short
 * options (⌈⌈max(0, −optionSize)·spot⌉·shortOptionFloor⌉) + the contingency on gross notional. The floor
 * is on *net* short contracts, calls and puts together: parity-consistent (a covered call pays it like
 * the short put it equals; a synthetic forward pays nothing).
 * @example
 * requirement({ ...ZERO_GREEKS, delta: 10n * WAD, notional: 30_000n * WAD }, 3000n * WAD, {
 *   spotShock: WAD / 10n, volShock: 0n, shortOptionFloor: 0n, contingency: 2n * 10n ** 15n,
 * }); // 3060n * WAD
 */
export function requirement(g: Greeks, spot: bigint, k: Shocks): bigint {
  const worst = worstScenarioLoss(g, spot, k.spotShock, k.volShock);
  const netShortOptions = g.optionSize < 0n ? -g.optionSize : 0n;
  const floor = mulDivUp(mulDivUp(netShortOptions, spot, WAD), k.shortOptionFloor, WAD);
  const contingency = mulDivUp(g.notional, k.contingency, WAD);
  return worst + floor + contingency;
}
