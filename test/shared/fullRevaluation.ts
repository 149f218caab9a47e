/**
 * Full-revaluation margin of a one-underlying portfolio of European options and perps, in float64:
 * every option is repriced with the Black-Scholes reference in every scenario of the engine's grid,
 * instead of the engine's second-order Taylor estimate from aggregated Greeks. Pure functions, no
 * chain, so the SDK and reports can reuse them.
 *
 * Grid (contracts/libraries/PortfolioMath.sol): spot moves dS ∈ {−s, −s/2, 0, +s/2, +s}·spot × vol moves
 * dσ ∈ {−v, 0, +v}. The requirement is the worst scenario loss plus the floor for net short options
 * (shortOptionFloor · spot per net short contract) plus the contingency (a fraction of gross notional),
 * exactly as the engine adds them.
 *
 * `engineModelRequirement` is the engine's own model in float64: options whose σ√τ is below the spot
 * shock or whose volatility is below the volatility shock are repriced, the rest enter through their
 * aggregated Greeks (second order in spot and volatility, with the vanna cross term).
 */
import { blackScholes } from "./blackScholesReference";

/** Lowest volatility a scenario reprices at (the Black-Scholes library's domain starts at 1%). */
export const MIN_SCENARIO_VOLATILITY = 0.01;

export interface OptionLeg {
  strike: number;
  /** Seconds to expiry. */
  timeToExpiry: number;
  isCall: boolean;
  /** Signed contracts (long > 0). */
  size: number;
}

export interface Portfolio {
  spot: number;
  /** Annualised volatility every option is priced at (feed + skew). */
  volatility: number;
  options: OptionLeg[];
  /** Signed perp size (its delta). */
  perp: number;
}

/** One requirement level's shocks and add-ons, as fractions (0.1 = 10%). */
export interface GridParams {
  spotShock: number;
  volShock: number;
  shortOptionFloor: number;
  contingency: number;
}

export interface Scenario {
  /** Spot move as a fraction of spot. */
  spotMove: number;
  /** Absolute volatility move. */
  volMove: number;
}

export interface Requirement {
  worstLoss: number;
  floor: number;
  contingency: number;
  total: number;
}

/** The 5 × 3 grid of PortfolioMath.worstScenarioLoss. */
export function scenarioGrid(spotShock: number, volShock: number): Scenario[] {
  const grid: Scenario[] = [];
  for (const i of [-2, -1, 0, 1, 2]) {
    for (const j of [-1, 0, 1]) grid.push({ spotMove: (spotShock * i) / 2, volMove: volShock * j });
  }
  return grid;
}

/** Gross notional: Σ |size| · spot over options and the perp (what the engine's contingency uses). */
export function grossNotional(p: Portfolio): number {
  return (p.options.reduce((sum, o) => sum + Math.abs(o.size), 0) + Math.abs(p.perp)) * p.spot;
}

/** Mark-to-market value of the options at `spot` and `volatility`. */
export function optionsValue(options: OptionLeg[], spot: number, volatility: number): number {
  return options.reduce(
    (sum, o) =>
      sum +
      o.size *
        blackScholes({ spot, strike: o.strike, timeToExpiry: o.timeToExpiry, volatility, isCall: o.isCall })
          .price,
    0,
  );
}

/** Portfolio PnL in one scenario, every option repriced. */
export function scenarioPnl(p: Portfolio, s: Scenario): number {
  const spot = p.spot * (1 + s.spotMove);
  const volatility = Math.max(p.volatility + s.volMove, MIN_SCENARIO_VOLATILITY);
  const options = optionsValue(p.options, spot, volatility) - optionsValue(p.options, p.spot, p.volatility);
  return options + p.perp * (spot - p.spot);
}

function addOns(p: Portfolio, g: GridParams, worstLoss: number): Requirement {
  const netOptions = p.options.reduce((sum, o) => sum + o.size, 0);
  const floor = Math.max(-netOptions, 0) * p.spot * g.shortOptionFloor;
  const contingency = grossNotional(p) * g.contingency;
  return { worstLoss, floor, contingency, total: worstLoss + floor + contingency };
}

/** The scenario with the largest repriced loss (the first of equals), and that loss (≥ 0). */
export function worstScenario(p: Portfolio, g: GridParams): { scenario: Scenario; loss: number } {
  const grid = scenarioGrid(g.spotShock, g.volShock);
  let worst = { scenario: grid[7], loss: 0 }; // no move: no loss
  for (const s of grid) {
    const loss = -scenarioPnl(p, s);
    if (loss > worst.loss) worst = { scenario: s, loss };
  }
  return worst;
}

/** The full-revaluation requirement: worst repriced loss over the grid plus the engine's add-ons. */
export function fullRevaluationRequirement(p: Portfolio, g: GridParams): Requirement {
  return addOns(p, g, worstScenario(p, g).loss);
}

export interface Greeks {
  delta: number;
  gamma: number;
  vega: number;
  vanna: number;
  volga: number;
}

/** Aggregated Greeks from the reference (perps add their size to delta). */
export function portfolioGreeks(p: Portfolio): Greeks {
  const greeks = { delta: p.perp, gamma: 0, vega: 0, vanna: 0, volga: 0 };
  for (const o of p.options) {
    const v = blackScholes({
      spot: p.spot,
      strike: o.strike,
      timeToExpiry: o.timeToExpiry,
      volatility: p.volatility,
      isCall: o.isCall,
    });
    greeks.delta += o.size * v.delta;
    greeks.gamma += o.size * v.gamma;
    greeks.vega += o.size * v.vega;
    greeks.vanna += o.size * v.vanna;
    greeks.volga += o.size * v.volga;
  }
  return greeks;
}

/**
 * Whether the engine reprices `leg` under `g` instead of using its Greeks (PortfolioMath.needsRepricing):
 * a spot shock beyond the option's σ√τ, or a volatility shock beyond half its volatility.
 */
export function needsRepricing(p: Portfolio, leg: OptionLeg, g: GridParams): boolean {
  const totalVolatility = p.volatility * Math.sqrt(leg.timeToExpiry / (365 * 86_400));
  return g.spotShock > totalVolatility || 2 * g.volShock > p.volatility;
}

/**
 * The engine's model in float64 (for cross-checks of the on-chain requirement). A repriced option is
 * repriced at each moved spot; volatility moves no larger than half its volatility are applied to second order
 * at that spot (vega and volga there), larger ones reprice every cell (OptionMarket.scenarioPnls).
 */
export function engineModelRequirement(p: Portfolio, g: GridParams): Requirement {
  const repriced = p.options.filter((o) => needsRepricing(p, o, g));
  const { delta, gamma, vega, vanna, volga } = portfolioGreeks({
    ...p,
    options: p.options.filter((o) => !needsRepricing(p, o, g)),
  });
  const exactVolatility = 2 * g.volShock > p.volatility;
  let worst = 0;
  for (const s of scenarioGrid(g.spotShock, g.volShock)) {
    const dS = s.spotMove * p.spot;
    const dv = s.volMove;
    let pnl = delta * dS + 0.5 * gamma * dS * dS + vega * dv + vanna * dS * dv + 0.5 * volga * dv * dv;
    if (exactVolatility) pnl += scenarioPnl({ ...p, options: repriced, perp: 0 }, s);
    else {
      const atSpot = { ...p, spot: p.spot + dS, options: repriced, perp: 0 };
      const moved = portfolioGreeks(atSpot);
      pnl += scenarioPnl({ ...p, options: repriced, perp: 0 }, { spotMove: s.spotMove, volMove: 0 });
      pnl += moved.vega * dv + 0.5 * moved.volga * dv * dv;
    }
    worst = Math.max(worst, -pnl);
  }
  return addOns(p, g, worst);
}

/** min, median, 95th percentile and max of `values` (nearest rank). */
export function distribution(values: number[]): { min: number; median: number; p95: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
  return { min: sorted[0], median: rank(0.5), p95: rank(0.95), max: sorted[sorted.length - 1] };
}
