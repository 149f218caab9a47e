/**
 * Account health as MarginEngine._evaluate computes it: collateral value (CollateralVault
 * .collateralValue), position values and Greeks by underlying (each market's `exposure`: perps and
 * option series alike), the portfolio requirement per underlying (PortfolioMath, with the floor on
 * net short options) and the health ratio (RiskMath).
 * @packageDocumentation
 */
import { exposureOf } from "../markets";
import { type AccountState, type CollateralState, type Health, marketKey } from "../state";
import { WAD, mulDiv, type Rounding } from "./fixedPoint";
import { type Greeks, ZERO_GREEKS, requirement, shocksFor } from "./portfolio";

/** 2^256 − 1: the health ratio of an account without requirement. */
export const MAX_UINT256 = 2n ** 256n - 1n;

/** Collateral value of an account (ICollateralVault.CollateralValue), USD WAD. */
export interface CollateralValue {
  initial: bigint;
  maintenance: bigint;
  mark: bigint;
}

/**
 * equity / requirement as WAD, rounded down; 2^256 − 1 with no requirement, 0 when equity ≤ 0
 * (RiskMath.healthRatio).
 * @example
 * healthRatio(3n * WAD, 2n * WAD); // 1_500_000_000_000_000_000n
 */
export function healthRatio(equity: bigint, req: bigint): bigint {
  if (req === 0n) return MAX_UINT256;
  if (equity <= 0n) return 0n;
  return mulDiv(equity, WAD, req);
}

/**
 * USD WAD price of one whole token: the oracle price, times `convertToAssets` for an ERC-4626 share
 * (CollateralVault._price).
 * @example
 * tokenPrice(wethCollateral, prices, "floor"); // 3000n * WAD
 */
export function tokenPrice(c: CollateralState, prices: Record<string, bigint>, rounding: Rounding): bigint {
  const price = prices[c.oracleAsset];
  if (price === undefined) throw new RangeError(`no price for ${c.oracleAsset}`);
  if (!c.erc4626) return price;
  return mulDiv(price, c.erc4626.assetsPerShare, 10n ** BigInt(c.erc4626.assetDecimals), rounding);
}

/**
 * USD value (WAD, rounded down) of `amount` token units, unweighted (CollateralVault.tokenValue).
 * @example
 * tokenValue(usdcCollateral, prices, 1_000_000n); // 1n * WAD
 */
export function tokenValue(c: CollateralState, prices: Record<string, bigint>, amount: bigint): bigint {
  return mulDiv(amount, tokenPrice(c, prices, "floor"), 10n ** BigInt(c.decimals));
}

/**
 * Collateral value at initial weights, maintenance weights and without haircut. Each positive balance
 * is valued and weighted on its own, rounded down; a negative quote balance is a debt at full value,
 * rounded up (more negative).
 * @example
 * collateralValue(state.collateral, state.quoteToken, state.prices); // { initial, maintenance, mark }
 */
export function collateralValue(
  collateral: readonly CollateralState[],
  quoteToken: string,
  prices: Record<string, bigint>,
): CollateralValue {
  const value: CollateralValue = { initial: 0n, maintenance: 0n, mark: 0n };
  for (const c of collateral) {
    if (c.balance > 0n) {
      const mark = tokenValue(c, prices, c.balance);
      value.mark += mark;
      value.initial += mulDiv(mark, c.initialWeight, WAD);
      value.maintenance += mulDiv(mark, c.maintenanceWeight, WAD);
    } else if (c.balance < 0n) {
      if (c.token !== quoteToken) throw new RangeError(`negative balance of ${c.token}`);
      const debt = mulDiv(-c.balance, tokenPrice(c, prices, "ceil"), 10n ** BigInt(c.decimals), "ceil");
      value.initial -= debt;
      value.maintenance -= debt;
      value.mark -= debt;
    }
  }
  return value;
}

/** Health with the engine's comparison requirements (IMarginEngine.standardRequirements). */
export interface HealthBreakdown extends Health {
  /** Σ over positions of each position margined alone (no netting). */
  standardInitial: bigint;
  standardMaintenance: bigint;
  /** Greeks and requirements per underlying (asset id). */
  groups: Record<string, { spot: bigint; greeks: Greeks; initial: bigint; maintenance: bigint }>;
}

/**
 * The account's health from a snapshot: exactly what `engine.health(accountId)` returns at the
 * snapshot's block (prices, volatilities and funding as of `state.timestamp`). Not for the pool
 * account while it holds positions (throws).
 * @example
 * const state = await getAccountState(client, accountId);
 * const h = accountHealth(state); // equals await getHealth(client, accountId)
 */
export function accountHealth(state: AccountState): HealthBreakdown {
  if (state.accountId === state.protocol.poolAccountId && state.positions.length !== 0) {
    // The pool's positions are valued from the market's entry basis, which no view exposes.
    throw new RangeError("the pool account's positions are not modelled: use getHealth");
  }
  const c = collateralValue(state.collateral, state.quoteToken, state.prices);
  const groups: HealthBreakdown["groups"] = {};
  let positionValue = 0n;
  let standardInitial = 0n;
  let standardMaintenance = 0n;
  for (const position of state.positions) {
    const market = state.markets[marketKey(position.market, position.marketId)];
    if (!market) throw new RangeError(`market ${position.market}:${position.marketId} missing in state`);
    const underlying = market.underlying;
    const spot = state.prices[underlying];
    const u = state.underlyings[underlying];
    if (spot === undefined || !u) throw new RangeError(`underlying ${underlying} missing in state`);
    const e = exposureOf(position, market, spot, u.volatility, state.timestamp);
    positionValue += e.value;
    const g = (groups[underlying] ??= {
      spot,
      greeks: { ...ZERO_GREEKS },
      initial: 0n,
      maintenance: 0n,
    });
    g.greeks.delta += e.delta;
    g.greeks.gamma += e.gamma;
    g.greeks.vega += e.vega;
    g.greeks.optionSize += e.optionSize;
    g.greeks.notional += e.notional;
    const alone = requirements(state, underlying, spot, {
      delta: e.delta,
      gamma: e.gamma,
      vega: e.vega,
      optionSize: e.optionSize,
      notional: e.notional,
    });
    standardInitial += alone.initial;
    standardMaintenance += alone.maintenance;
  }
  let initialRequirement = 0n;
  let maintenanceRequirement = 0n;
  let grossNotional = 0n;
  for (const [underlying, g] of Object.entries(groups)) {
    const r = requirements(state, underlying, g.spot, g.greeks);
    g.initial = r.initial;
    g.maintenance = r.maintenance;
    initialRequirement += r.initial;
    maintenanceRequirement += r.maintenance;
    grossNotional += g.greeks.notional;
  }
  const equityMaintenance = c.maintenance + positionValue;
  return {
    equityInitial: c.initial + positionValue,
    equityMaintenance,
    equityMark: c.mark + positionValue,
    initialRequirement,
    maintenanceRequirement,
    healthRatio: healthRatio(equityMaintenance, maintenanceRequirement),
    grossNotional,
    standardInitial,
    standardMaintenance,
    groups,
  };
}

function requirements(
  state: AccountState,
  underlying: string,
  spot: bigint,
  greeks: Greeks,
): { initial: bigint; maintenance: bigint } {
  const u = state.underlyings[underlying];
  const { im, mm } = shocksFor(u.risk, u.volatility, greeks.notional);
  return { initial: requirement(greeks, spot, im), maintenance: requirement(greeks, spot, mm) };
}

/**
 * Whether the account meets its initial requirement (equity_IM ≥ IM): trades that add risk and
 * withdrawals are allowed only then.
 * @example
 * meetsInitialMargin(accountHealth(state)); // true
 */
export function meetsInitialMargin(h: Health): boolean {
  return h.equityInitial >= 0n && h.equityInitial >= h.initialRequirement;
}

/**
 * Whether the account can be auctioned (equity_MM < MM).
 * @example
 * isLiquidatable(accountHealth(state)); // false
 */
export function isLiquidatable(h: Health): boolean {
  return h.equityMaintenance < 0n || h.equityMaintenance < h.maintenanceRequirement;
}

/**
 * The seven Health fields of a HealthBreakdown, or of the engine's Health struct (an ethers Result).
 * @example
 * toHealth(accountHealth(state));
 */
export function toHealth(h: Health): Health {
  return {
    equityInitial: h.equityInitial,
    equityMaintenance: h.equityMaintenance,
    equityMark: h.equityMark,
    initialRequirement: h.initialRequirement,
    maintenanceRequirement: h.maintenanceRequirement,
    healthRatio: h.healthRatio,
    grossNotional: h.grossNotional,
  };
}
