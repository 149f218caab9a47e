/**
 * Account health as MarginEngine._evaluate computes it: collateral value (CollateralVault
 * .collateralValue), position values and Greeks by underlying (each market's `exposure`: perps and
 * option series alike), the portfolio requirement per underlying and level (PortfolioMath, with the
 * floor on net short options; positions whose Greeks cannot be trusted over the level's shocks repriced
 * by their market over the scenario grid, `_levelRequirement`) and the health ratio (RiskMath).
 * @packageDocumentation
 */
import { type Exposure, exposureOf, scenarioPnlsOf } from "../markets";
import {
  type AccountState,
  type CollateralState,
  type Health,
  type MarketState,
  type PositionState,
  type UnderlyingState,
  marketKey,
} from "../state";
import type { XMarginError } from "../errors";
import { WAD, max, min, mulDiv, type Rounding } from "./fixedPoint";
import {
  CELLS,
  type Greeks,
  type Shocks,
  ZERO_GREEKS,
  coveringContracts,
  linearRequirement,
  needsRepricing,
  requirement,
  scenarioMoves,
  seriesVolatilityHoldback,
  shocksFor,
} from "./portfolio";

/** 2^256 − 1: the health ratio of an account without requirement. */
export const MAX_UINT256 = 2n ** 256n - 1n;

/** Collateral value of an account (ICollateralVault.CollateralValue), USD WAD. */
export interface CollateralValue {
  initial: bigint;
  maintenance: bigint;
  mark: bigint;
}

/**
 * equity / requirement as WAD, rounded down; 0 when equity is negative, else 2^256 − 1 with no
 * requirement (RiskMath.healthRatio).
 * @example
 * healthRatio(3n * WAD, 2n * WAD); // 1_500_000_000_000_000_000n
 */
export function healthRatio(equity: bigint, req: bigint): bigint {
  if (equity < 0n) return 0n;
  if (req === 0n) return MAX_UINT256;
  return mulDiv(equity, WAD, req);
}

/** Most one unit of an ERC-4626 share counts for in a valuation, USD WAD (CollateralVault.MAX_SHARE_UNIT_VALUE). */
export const MAX_SHARE_UNIT_VALUE = 10n * WAD;

/**
 * USD WAD price of one whole token: the oracle price, times `convertToAssets` for an ERC-4626 share
 * (CollateralVault._price). Rounded down, as valuations read it, a share's price is at most
 * MAX_SHARE_UNIT_VALUE per unit: a donation to a share vault with next to no supply can grow its unit past
 * the listing bound.
 * @example
 * tokenPrice(wethCollateral, prices, "floor"); // 3000n * WAD
 */
export function tokenPrice(c: CollateralState, prices: Record<string, bigint>, rounding: Rounding): bigint {
  const price = prices[c.oracleAsset];
  if (price === undefined) throw new RangeError(`no price for ${c.oracleAsset}`);
  if (!c.erc4626) return price;
  const share = mulDiv(price, c.erc4626.assetsPerShare, 10n ** BigInt(c.erc4626.assetDecimals), rounding);
  return rounding === "floor" ? min(share, MAX_SHARE_UNIT_VALUE * 10n ** BigInt(c.decimals)) : share;
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

/** One underlying's positions in a HealthBreakdown. */
export interface HealthGroup {
  /** The oracle's spot price of the underlying, USD WAD. */
  spot: bigint;
  /** The oracle's annualised volatility of the underlying (WAD: 6·10^17 is 60%; `formatPercent`). */
  volatility: bigint;
  /** Σ of the positions' Greeks (all of them, repriced ones included), with the delta of the collateral this underlying prices. */
  greeks: Greeks;
  /** The group's initial requirement, USD WAD. */
  initial: bigint;
  /** The group's maintenance requirement, USD WAD. */
  maintenance: bigint;
  /**
   * What the collateral this underlying prices adds to equity_IM and to equity_MM (the same at both) at
   * its shocked weight rather than its weights (CollateralVault.setShockedWeight): each token's at most
   * its mark times the underlying's MM shock floor.
   */
  credit: bigint;
  /**
   * How many of the group's positions were repriced over the scenario grid at the IM and MM shocks
   * (`needsRepricing`) instead of entering through their Greeks.
   */
  repricedInitial: number;
  /** Likewise at the MM shocks. */
  repricedMaintenance: number;
}

/** Health with the engine's comparison requirements (IMarginEngine.standardRequirements). */
export interface HealthBreakdown extends Health {
  /** Σ over positions of each position margined alone (no netting). */
  standardInitial: bigint;
  standardMaintenance: bigint;
  /** Greeks and requirements per underlying (asset id). */
  groups: Record<string, HealthGroup>;
}

/** One held position with its market, underlying and exposure (an entry of MarginEngine's Book). */
interface HeldPosition {
  position: PositionState;
  market: MarketState;
  underlying: string;
  exposure: Exposure;
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
  const unpriced = priceFailure(state);
  if (unpriced) throw unpriced;
  if (state.accountId === state.protocol.poolAccountId && state.positions.length !== 0) {
    // The pool's positions are valued from the market's entry basis, which no view exposes.
    throw new RangeError("the pool account's positions are not modelled: use getHealth");
  }
  const c = collateralValue(state.collateral, state.quoteToken, state.prices);
  const groups: HealthBreakdown["groups"] = {};
  const book: HeldPosition[] = [];
  let positionValue = 0n;
  let exitDiscount = 0n;
  for (const position of state.positions) {
    const market = state.markets[marketKey(position.market, position.marketId)];
    if (!market) throw new RangeError(`market ${position.market}:${position.marketId} missing in state`);
    const underlying = market.underlying;
    const spot = state.prices[underlying];
    const u = state.underlyings[underlying];
    if (spot === undefined || !u) throw new RangeError(`underlying ${underlying} missing in state`);
    const e = exposureOf(position, market, spot, u.volatility, state.timestamp);
    // A live option's value needs its volatility, which no floor bounds: the engine reverts with the
    // feed's error (MarginEngine._addExposure).
    if (e.totalVolatility !== 0n && u.volatility === 0n) throw volatilityErrorOf(u, underlying);
    book.push({ position, market, underlying, exposure: e });
    positionValue += e.value;
    exitDiscount += e.exitDiscount + seriesVolatilityHoldback(e.vega);
    const g = (groups[underlying] ??= {
      spot,
      volatility: u.volatility,
      greeks: { ...ZERO_GREEKS },
      initial: 0n,
      maintenance: 0n,
      credit: 0n,
      repricedInitial: 0,
      repricedMaintenance: 0,
    });
    g.greeks.delta += e.delta;
    g.greeks.gamma += e.gamma;
    g.greeks.vega += e.vega;
    g.greeks.vanna += e.vanna;
    g.greeks.volga += e.volga;
    g.greeks.optionSize +=
      e.optionSize > 0n ? coveringContracts(e.optionSize, e.timeValue, spot) : e.optionSize;
    g.greeks.notional += e.notional;
  }
  addCollateralDeltas(state, groups);
  let initialRequirement = 0n;
  let maintenanceRequirement = 0n;
  let grossNotional = 0n;
  let credit = 0n;
  for (const [underlying, g] of Object.entries(groups)) {
    const members = book.filter((p) => p.underlying === underlying);
    const r = requirements(state, underlying, g, g.greeks, members);
    g.initial = r.initial;
    g.maintenance = r.maintenance;
    credit += g.credit;
    g.repricedInitial = r.repricedInitial;
    g.repricedMaintenance = r.repricedMaintenance;
    initialRequirement += g.initial;
    maintenanceRequirement += g.maintenance;
    grossNotional += g.greeks.notional;
  }
  // Each position margined alone: its own Greeks and notional, repriced like in its group if it needs it.
  let standardInitial = 0n;
  let standardMaintenance = 0n;
  for (const p of book) {
    const e = p.exposure;
    const alone = requirements(state, p.underlying, groups[p.underlying], exposureGreeks(e), [p]);
    standardInitial += alone.initial;
    standardMaintenance += alone.maintenance;
  }
  const equityMaintenance = c.maintenance + credit + positionValue;
  return {
    // What closing the perps would pay the skew is not margin for new risk (IMarket.Exposure).
    equityInitial: c.initial + credit + positionValue - exitDiscount,
    equityMaintenance,
    equityMark: c.mark + positionValue,
    initialRequirement,
    maintenanceRequirement,
    healthRatio: healthRatio(equityMaintenance, maintenanceRequirement),
    grossNotional,
    volatilityUnavailable: Object.values(groups).some((g) => g.volatility === 0n),
    standardInitial,
    standardMaintenance,
    groups,
  };
}

/**
 * Enters each token other than the quote whose oracle asset is an underlying of `groups` as a long delta
 * of it, its mark over spot rounded down (MarginEngine._addCollateralDelta): the grid shocks WETH with
 * the ETH positions it margins. Equity takes the credit of its shocked weight (`shockedCredit`), capped
 * at the group's MM shock floor, at both levels; tokens of other assets are left to their weights.
 */
function addCollateralDeltas(state: AccountState, groups: Record<string, HealthGroup>): void {
  for (const c of state.collateral) {
    const g = groups[c.oracleAsset];
    if (c.token === state.quoteToken || c.balance <= 0n || !g) continue;
    const mark = tokenValue(c, state.prices, c.balance);
    g.greeks.delta += mulDiv(mark, WAD, g.spot);
    // At most mark · the shock floor, the least the grid charges the token alone: the first position on
    // an underlying never frees margin (MarginEngine._addCollateralDelta).
    const risk = state.underlyings[c.oracleAsset].risk;
    // One credit at both levels, capped at the MM floor (≤ the IM floor): the levels keep the weights' gap.
    g.credit += min(shockedCredit(c, mark), (mark * risk.mmShockFloor) / WAD);
  }
}

/**
 * What the shocked weight of token `c` adds to `mark`'s value at each level, the same at both:
 * mark·(max(maintenanceWeight, shockedWeight) − maintenanceWeight), rounded down, so the weights' gap
 * between the levels stays (CollateralVault._addValue, review round 148). Uncapped: the engine caps it
 * at mark times the MM shock floor of the underlying that shocks the token.
 */
export function shockedCredit(c: CollateralState, mark: bigint): bigint {
  const shocked = c.shockedWeight ?? 0n;
  return shocked > c.maintenanceWeight ? (mark * (shocked - c.maintenanceWeight)) / WAD : 0n;
}

/**
 * IM and MM of `members` (a group's positions, or one of them alone) with Greeks `greeks`, at the
 * shocks of `greeks.notional` (MarginEngine._requirements).
 */
/**
 * One position's risk as PortfolioMath.Greeks (what the engine margins a position with when it stands
 * alone: `standardRequirements`).
 * @example
 * requirement(exposureGreeks(e), spot, shocks); // the position margined alone
 */
export function exposureGreeks(e: Omit<Exposure, "value" | "totalVolatility" | "modelVolatility">): Greeks {
  return {
    delta: e.delta,
    gamma: e.gamma,
    vega: e.vega,
    optionSize: e.optionSize,
    notional: e.notional,
    vanna: e.vanna,
    volga: e.volga,
  };
}

function requirements(
  state: AccountState,
  underlying: string,
  group: Pick<HealthGroup, "spot" | "volatility">,
  greeks: Greeks,
  members: readonly HeldPosition[],
): { initial: bigint; maintenance: bigint; repricedInitial: number; repricedMaintenance: number } {
  const u = state.underlyings[underlying];
  const { im, mm } = shocksFor(u.risk, u.volatility, greeks.notional);
  // The spot shocks before the size factor decide which positions leave their Greeks outright
  // (MarginEngine._levelRequirement).
  const base = shocksFor(u.risk, u.volatility, 0n);
  const initial = levelRequirement(state, group, greeks, im, members, base.im.spotShock);
  const maintenance = levelRequirement(state, group, greeks, mm, members, base.mm.spotShock);
  return {
    initial: initial.requirement,
    // Capped at IM, as the engine caps it (MarginEngine._requirements).
    maintenance: min(maintenance.requirement, initial.requirement),
    repricedInitial: initial.repriced,
    repricedMaintenance: maintenance.repriced,
  };
}

/**
 * One level's requirement (MarginEngine._levelRequirement): the members that need repricing under `k`
 * leave the Taylor estimate (their delta, gamma, vega, vanna and volga subtracted; optionSize and
 * notional stay) and enter with their market's PnL in every cell of the grid; a book left linear with
 * nothing repriced takes the linear fast path. Members that need it only because the size factor took
 * the spot shock past their σ√τ (`decideSpotShock`, the shock before it, keeps them on their Greeks)
 * leave one σ√τ at a time, least first, and the level is the largest of those grids: a larger book
 * never needs less for the switch (review rounds 59 and 61).
 */
function levelRequirement(
  state: AccountState,
  group: Pick<HealthGroup, "spot" | "volatility">,
  greeks: Greeks,
  k: Shocks,
  members: readonly HeldPosition[],
  decideSpotShock: bigint,
): { requirement: bigint; repriced: number } {
  const taylor: Greeks = { ...greeks };
  const { spotMoves, volMoves } = scenarioMoves(group.spot, k);
  const pnls: bigint[] = [];
  let repriced = 0;
  const reprice = (p: HeldPosition): void => {
    const e = p.exposure;
    if (repriced++ === 0) pnls.push(...new Array<bigint>(CELLS).fill(0n));
    taylor.delta -= e.delta;
    taylor.gamma -= e.gamma;
    taylor.vega -= e.vega;
    taylor.vanna -= e.vanna;
    taylor.volga -= e.volga;
    const cells = scenarioPnlsOf(
      p.position,
      p.market,
      group.spot,
      group.volatility,
      state.timestamp,
      spotMoves,
      volMoves,
    );
    for (let c = 0; c < CELLS; c++) pnls[c] += cells[c];
  };
  const grid = (): bigint =>
    repriced === 0 &&
    taylor.gamma === 0n &&
    taylor.vega === 0n &&
    taylor.vanna === 0n &&
    taylor.volga === 0n &&
    taylor.optionSize === 0n
      ? linearRequirement(taylor.delta, taylor.notional, group.spot, k.spotShock, k.contingency)
      : requirement(taylor, group.spot, k, pnls);
  const band: HeldPosition[] = [];
  for (const p of members) {
    const e = p.exposure;
    if (!needsRepricing(e.totalVolatility, e.modelVolatility, k)) continue;
    if (e.totalVolatility >= decideSpotShock && 2n * k.volShock <= e.modelVolatility) band.push(p);
    else reprice(p);
  }
  // A stable sort, as the engine's insertion sort: equal σ√τ keep the book's order.
  band.sort((a, b) =>
    a.exposure.totalVolatility < b.exposure.totalVolatility
      ? -1
      : a.exposure.totalVolatility > b.exposure.totalVolatility
        ? 1
        : 0,
  );
  let level = grid();
  band.forEach((p, i) => {
    reprice(p);
    // Positions of one σ√τ cross together: only the grid with all of them is one a book can have.
    const next = band[i + 1];
    if (next === undefined || next.exposure.totalVolatility !== p.exposure.totalVolatility)
      level = max(level, grid());
  });
  return { requirement: level, repriced };
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
 * The error of the first underlying the account holds whose volatility feed fails (volatility 0), in the
 * engine's order of its markets: what every check on new risk (`requireInitialMargin`,
 * `requireRiskReduced`, `requirePremiumAffordable`) reverts with. Undefined when every one is available.
 * @example
 * const failure = volatilityFailure(state); // e.g. StalePrice of the ETH volatility feed
 */
export function volatilityFailure(state: AccountState): XMarginError | undefined {
  for (const position of state.positions) {
    const underlying = state.markets[marketKey(position.market, position.marketId)]?.underlying;
    if (underlying === undefined) continue;
    const u = state.underlyings[underlying];
    if (u?.volatility === 0n) return volatilityErrorOf(u, underlying);
  }
  return undefined;
}

/**
 * The error of the first failed price feed `engine.health` meets (`AccountState.priceErrors`): the
 * tokens the account holds (a nonzero balance, in the vault's order), then the underlyings of its
 * markets (in the engine's order). Undefined when every price the health needs is there.
 * @example
 * const failure = priceFailure(state); // e.g. StalePrice of the WBTC price feed
 */
export function priceFailure(state: AccountState): XMarginError | undefined {
  const errors = state.priceErrors;
  if (!errors) return undefined;
  for (const c of state.collateral) {
    if (c.balance !== 0n && errors[c.oracleAsset]) return errors[c.oracleAsset];
  }
  for (const position of state.positions) {
    const underlying = state.markets[marketKey(position.market, position.marketId)]?.underlying;
    if (underlying !== undefined && errors[underlying]) return errors[underlying];
  }
  return undefined;
}

/**
 * Whether the account has nothing at risk (no position, no quote debt, no auction;
 * `CollateralVault.hasNothingAtRisk`): the vault lets it withdraw without a margin check, so without a
 * price.
 */
export function hasNothingAtRisk(state: AccountState): boolean {
  const quote = state.collateral.find((c) => c.token === state.quoteToken);
  return state.positions.length === 0 && (quote?.balance ?? 0n) >= 0n && !state.frozen;
}

/** The error of `underlying`'s failed volatility feed (`u.volatility` is 0), from the snapshot. */
export function volatilityErrorOf(u: UnderlyingState, underlying: string): XMarginError {
  if (!u.volatilityError)
    throw new RangeError(`the volatility of ${underlying} is 0 with no error in the snapshot`);
  return u.volatilityError;
}

/**
 * The eight Health fields of a HealthBreakdown, or of the engine's Health struct (an ethers Result).
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
    volatilityUnavailable: h.volatilityUnavailable,
  };
}
