/**
 * Previews: what an action would do to an account, computed with the pure math on a snapshot, without
 * sending anything. `simulate` is the pure part; `preview` reads the snapshot first.
 * @packageDocumentation
 */
import { type BlockTag, ZeroAddress } from "ethers";
import type { XMarginClient } from "./client";
import { getAccountState } from "./actions/getAccountState";
import { errorContext, read, resolveToken } from "./actions/internal/chain";
import { UNLIMITED_TRADING_ALLOWANCE } from "./actions/setTrader";
import { type XMarginError, decodeRevertData, makeXMarginError } from "./errors";
import { askStatically, tokenRefusal } from "./actions/internal/tokenRefusal";
import { WAD, max, min, mulDiv } from "./math/fixedPoint";
import {
  accountHealth,
  collateralValue,
  meetsInitialMargin,
  hasNothingAtRisk,
  priceFailure,
  toHealth,
  tokenValue,
  volatilityErrorOf,
  volatilityFailure,
} from "./math/health";
import { fillPrice, increasesRisk } from "./math/perp";
import { accruedInterestAt, interestIndexAt } from "./math/interest";
import { applyPerpTrade } from "./markets/perp";
import { poolLimit } from "./markets/types";
import { applyOptionTrade, optionPoolLimits, recountOptionPool } from "./markets/option";
import { MissingContractError } from "./errors";
import { erc20, pausable } from "./contracts";
import {
  type AccountState,
  type CollateralState,
  type Health,
  type OptionMarketState,
  type OptionPositionState,
  type PerpMarketState,
  type PerpPositionState,
  type MarketState,
  type PositionState,
  marketKey,
} from "./state";

/** MarginEngine.MAX_MARKETS_PER_ACCOUNT. */
export const MAX_MARKETS_PER_ACCOUNT = 16;

/** An action to preview. Tokens are symbols of the deployment or addresses. */
export type PreviewAction =
  | { type: "deposit"; token: string; amount: bigint }
  /**
   * A withdrawal of `amount` to `to` (default: the account's owner, as `withdraw` sends it). An
   * operator may only send to the owner (`InvalidRecipient`); the zero address is refused for anyone.
   */
  | { type: "withdraw"; token: string; amount: bigint; to?: string }
  /** A perp trade of `sizeDelta` (> 0 buy, < 0 sell) in `marketId` of the deployment's PerpMarket. */
  | { type: "trade"; marketId: bigint; sizeDelta: bigint }
  /** Closes the whole perp position in `marketId`. */
  | { type: "close"; marketId: bigint }
  /** Buys (`sizeDelta` > 0) or sells (< 0) contracts of option series `seriesId`. */
  | { type: "optionTrade"; seriesId: bigint; sizeDelta: bigint }
  /** Closes the whole position in option series `seriesId`. */
  | { type: "optionClose"; seriesId: bigint }
  /** No action: the account's health now. */
  | { type: "none" };

/** What a previewed trade fills at and settles. */
export interface TradeFill {
  marketId: bigint;
  sizeDelta: bigint;
  fillPrice: bigint;
  /** Fee in quote units. */
  fee: bigint;
  /** Fee plus skew premium paid, quote units: what the trade charges a trader's allowance. */
  tradingCost: bigint;
  /** Realised PnL, USD WAD (> 0: gain), rounded down. */
  realizedPnl: bigint;
  /** Funding settled, USD WAD (> 0: paid), rounded up. */
  fundingPaid: bigint;
  newSize: bigint;
  newEntryPrice: bigint;
  /** Whether the trade opens, grows or flips the position (and so needs equity_IM ≥ IM). */
  increasesRisk: boolean;
}

/** What a previewed option trade pays and leaves. */
export interface OptionFill {
  seriesId: bigint;
  sizeDelta: bigint;
  /** Premium per contract, spread included (USD WAD). */
  premium: bigint;
  /** Quote units paid (buy, rounded up) or received (sell, rounded down). */
  premiumQuote: bigint;
  /** Fee in quote units. */
  fee: bigint;
  /**
   * What the trade can cost the account at a constant spot, quote units (fee, premium beyond the mark a
   * close removes, an opened long's time value): what it charges a trader's allowance.
   */
  tradingCost: bigint;
  newSize: bigint;
  /** Whether the trade opens, grows or flips the position (and so needs equity_IM ≥ IM). */
  increasesRisk: boolean;
}

/** The outcome of a simulated action. */
export interface SimulationResult {
  /** Health before the action (at the evaluation time). */
  before: Health;
  /** Health after the action. */
  health: Health;
  /**
   * The account's state after the action. Simulate further actions on it at the same timestamp: it
   * keeps the quote's borrow rate from the snapshot, while the vault sets a new one on every quote
   * movement (from its total quote debt and deposits, which the snapshot does not hold), so a debt's
   * interest at a later timestamp would drift from the chain's. Read a fresh state (`preview` does) to
   * look later.
   */
  state: AccountState;
  /** For perp trades: the fill. */
  trade?: TradeFill;
  /** For option trades: the premium, fee and new position. */
  option?: OptionFill;
  /**
   * The error the chain would revert with, as far as the snapshot can tell (margin, balances, caps,
   * pause, freeze; for a trade previewed by a client with a signer, the signer's authorisation and
   * trading allowance; for a withdrawal previewed by a client with a signer, the signer's authorisation
   * and the recipient; for a withdrawal previewed with `preview`, the vault's pause); undefined when the
   * action should pass. Checks needing data outside the snapshot (deposit caps, ERC-20 allowances and
   * transfer pauses (for `preview`, see `tokenError` and `allowance`), the vault's pause in `simulate`,
   * the vault's liquidity; the pool's option vega and delta limits when the snapshot has no `optionPool`
   * for the underlying) are not predicted.
   */
  revert?: XMarginError;
  /**
   * For a withdrawal previewed with `preview` that should otherwise pass: the token's own refusal of the
   * transfer the vault would then make (a paused token, as USDC under `pause()`; a blocklisted recipient
   * or vault), from a static call of that transfer from the vault's address at the snapshot's block. The
   * chain reverts with the token's error, which no XMarginError names, so `revert` stays undefined: check
   * both before sending. For a deposit previewed with `preview` that should otherwise pass: what the
   * vault's pull of the tokens from the depositor (the client's signer; without one, the owner) would
   * meet, at the snapshot's block: the token's pause, a blocklisted depositor or vault, a balance short of
   * the amount (`ERC20InsufficientBalance`), a `false` returned; and, once `allowance` covers the amount
   * (the deposit itself is then called statically), what the token delivers: `TransferAmountMismatch` for
   * a fee-on-transfer or rebasing token. An allowance short of the amount is not a refusal here (`deposit`
   * grants it first; see `allowance`).
   */
  tokenError?: Error;
  /**
   * For a deposit previewed with `preview` that should otherwise pass: the depositor's ERC-20 allowance
   * to the vault at the snapshot's block. Below the amount, `deposit` grants it (a permit or an `approve`)
   * before it sends, while a bare `vault.deposit` reverts with the token's allowance error; and a fee the
   * token would take is only seen (`tokenError`) once it covers the amount.
   */
  allowance?: bigint;
  /**
   * For a deposit into a book the engine cannot value (a live option on an underlying whose volatility
   * feed fails), or a deposit or withdrawal of an account with nothing at risk whose collateral price
   * feed fails (`AccountState.priceErrors`; for a deposit, also one that brings in such a token, the quote
   * at a zero balance included): the feed's error, which `engine.health` reverts with before (or, for a
   * token the deposit brings in, after) the action. The vault reads the health only for a quote deposit
   * past the cap, before crediting it (`revert` is then the error of the health before), and not at all
   * for such a withdrawal; the action otherwise goes through, and the healths that cannot be valued are
   * placeholders (zeros, `volatilityUnavailable`). For a trade of an account the engine cannot value (a
   * failed feed of a token it holds or of another underlying, a live option whose volatility feed fails):
   * that feed's error, on a trade the chain lets through or refuses first for another reason
   * (`AccountFrozen`, `IsolatedAccountMarketTaken`). The markets read the account's health only for new
   * risk, a reduction next to another position on its underlying and a perp reduction that pays a skew
   * premium: a preview of one of those that meets the failed feed throws its error (as `accountHealth`
   * does); any other reduction goes through, with placeholder healths.
   */
  healthError?: XMarginError;
}

/** Options of `simulate`. */
export interface SimulateOptions {
  /** Evaluate at this timestamp (funding accrues to it); default the snapshot's. */
  timestamp?: bigint;
  /**
   * For a deposit: the token's deposit cap and the vault's total deposits of it (token units), to check
   * the vault's cap (`preview` reads them); without them the cap is not checked.
   */
  depositLimit?: { cap: bigint; totalDeposits: bigint };
}

function withTimestamp(state: AccountState, timestamp: bigint | undefined): AccountState {
  if (timestamp === undefined || timestamp === state.timestamp) return state;
  if (timestamp < state.timestamp) throw new RangeError("simulate: timestamp before the snapshot");
  // A quote debt keeps accruing interest to the new timestamp.
  const interest = state.protocol.quoteInterest;
  const collateral = state.collateral.map((c) => {
    if (!c.debt) return c;
    const { recordedBalance, paidIndex } = c.debt;
    const owed = accruedInterestAt(recordedBalance, paidIndex, interest, timestamp, state.accountId);
    return { ...c, balance: recordedBalance - owed };
  });
  return { ...state, timestamp, collateral };
}

/** What `amount` of `c` adds to equity_IM: its value at the initial weight, rounded down. */
function initialValue(c: CollateralState, prices: Record<string, bigint>, amount: bigint): bigint {
  return mulDiv(tokenValue(c, prices, amount), c.initialWeight, WAD);
}

function findCollateral(state: AccountState, token: string): CollateralState {
  const c = state.collateral.find((x) => x.token === token.toLowerCase());
  if (!c) throw new RangeError(`token ${token} is not in the snapshot (pass it in getAccountState's tokens)`);
  return c;
}

function setBalance(state: AccountState, token: string, balance: bigint): AccountState {
  const isQuote = token.toLowerCase() === state.quoteToken;
  return {
    ...state,
    collateral: state.collateral.map((c) => {
      if (c.token !== token.toLowerCase()) return c;
      if (!isQuote || balance === c.balance) return { ...c, balance };
      // Every quote movement settles the interest first: what is owed afterwards is recorded, and
      // paid up to now.
      const paidIndex = interestIndexAt(state.protocol.quoteInterest, state.timestamp);
      return { ...c, balance, debt: balance < 0n ? { recordedBalance: balance, paidIndex } : undefined };
    }),
  };
}

/**
 * The snapshot after a trade in market `key`: its quote flow settled into the quote balance, the
 * position replaced in the engine's list of held markets (it joins at the end on open and leaves by
 * swap-and-pop on close), the market's new state recorded.
 */
function applyTradeResult(
  state: AccountState,
  key: string,
  r: { position: PositionState; market: MarketState; quoteDelta: bigint },
): AccountState {
  const quote = findCollateral(state, state.quoteToken);
  // In the engine's order, which decides which failed volatility feed a strict check reverts with: a
  // position keeps its slot, a new one is appended, a closed one is swapped with the last and popped.
  const positions = [...state.positions];
  const i = positions.findIndex((p) => marketKey(p.market, p.marketId) === key);
  if (i < 0) {
    if (r.position.size !== 0n) positions.push(r.position);
  } else if (r.position.size !== 0n) positions[i] = r.position;
  else {
    positions[i] = positions[positions.length - 1];
    positions.pop();
  }
  return {
    ...setBalance(state, quote.token, quote.balance + r.quoteDelta),
    positions,
    markets: { ...state.markets, [key]: r.market },
  };
}

/**
 * Applies `action` to `state` with the contracts' math and returns the health before and after, the
 * state after, the fill of a trade and the revert the chain would raise. Pure.
 * @example
 * const state = await getAccountState(client, { accountId, markets: [{ marketId: 1n }] });
 * const r = simulate(state, { type: "trade", marketId: 1n, sizeDelta: 10n ** 18n });
 * if (r.revert) console.log(r.revert.message); else console.log(r.health.healthRatio);
 */
export function simulate(
  snapshot: AccountState,
  action: PreviewAction,
  opts: SimulateOptions = {},
): SimulationResult {
  const state = withTimestamp(snapshot, opts.timestamp);
  if ((action.type === "deposit" || action.type === "withdraw") && action.amount < 0n) {
    throw new RangeError(`simulate: a ${action.type}'s amount must not be negative (token units)`);
  }
  if (action.type === "deposit") return simulateDeposit(state, action, opts);
  if (action.type === "withdraw") return simulateWithdrawal(state, action);
  // A trade's market reads the account's health only for some trades (new risk, a hedge unwound, a skew
  // premium paid): one that needs none goes through while a feed the account holds fails.
  const { health: before, error: beforeError } = healthOrFeedError(state);
  switch (action.type) {
    case "none":
      if (beforeError) throw beforeError;
      return { before, health: before, state };
    case "trade":
    case "close": {
      const key = marketKey(perpMarketAddress(state), action.marketId);
      const market = state.markets[key];
      if (market?.kind !== "perp") throw new RangeError(`market ${action.marketId} is not in the snapshot`);
      const held = state.positions.find(
        (p): p is PerpPositionState => p.kind === "perp" && marketKey(p.market, p.marketId) === key,
      );
      const position: PerpPositionState = held ?? {
        kind: "perp",
        market: market.market,
        marketId: market.marketId,
        size: 0n,
        entryPrice: 0n,
        fundingIndex: 0n,
      };
      const sizeDelta = action.type === "close" ? -position.size : action.sizeDelta;
      return unvalued(
        state,
        simulatePerpTrade(state, before, beforeError, market, position, held !== undefined, sizeDelta),
      );
    }
    case "optionTrade":
    case "optionClose": {
      const market = Object.values(state.markets).find(
        (m): m is OptionMarketState => m.kind === "option" && m.marketId === action.seriesId,
      );
      if (!market) throw new RangeError(`option series ${action.seriesId} is not in the snapshot`);
      const key = marketKey(market.market, market.marketId);
      const held = state.positions.find(
        (p): p is OptionPositionState => p.kind === "option" && marketKey(p.market, p.marketId) === key,
      );
      const position: OptionPositionState = held ?? {
        kind: "option",
        market: market.market,
        marketId: market.marketId,
        size: 0n,
      };
      const sizeDelta = action.type === "optionClose" ? -position.size : action.sizeDelta;
      return unvalued(state, simulateOptionTrade(state, before, beforeError, market, position, sizeDelta));
    }
  }
}

/**
 * A trade of an account the engine cannot value that the chain refuses on the failed feed throws the
 * feed's error, as `accountHealth` does (and as previews did before they told the other trades apart);
 * one the chain refuses first for another reason (a freeze, an isolated account's market) or lets through
 * (a reduction that reads no price it lacks) returns its result, with `healthError`.
 */
function unvalued(state: AccountState, result: SimulationResult): SimulationResult {
  const { healthError, revert } = result;
  if (healthError && revert && isFeedFailure(state, revert)) throw revert;
  return result;
}

/**
 * A refusal before the action changes anything: the snapshot as it was, `before` as the health after,
 * and the error the account's valuation met, if any.
 */
function refusal(
  state: AccountState,
  before: Health,
  healthError: XMarginError | undefined,
): (revert: XMarginError) => SimulationResult {
  return (revert) => ({ before, health: before, state, revert, healthError });
}

function perpMarketAddress(state: AccountState): string {
  const perp = Object.values(state.markets).find((m) => m.kind === "perp");
  if (!perp) throw new RangeError("no perp market in the snapshot");
  return perp.market;
}

function requireInitialMargin(state: AccountState, h: Health): XMarginError | undefined {
  if (state.frozen) return makeXMarginError("AccountFrozen", [state.accountId]);
  // The valuation meets a failed price feed (collateral, then underlyings) before any volatility.
  const failure = priceFailure(state) ?? volatilityFailure(state);
  if (failure) return failure;
  if (!meetsInitialMargin(h)) {
    return makeXMarginError("InsufficientMargin", [state.accountId, h.equityInitial, h.initialRequirement]);
  }
  return undefined;
}

function simulatePerpTrade(
  state: AccountState,
  before: Health,
  beforeError: XMarginError | undefined,
  market: PerpMarketState,
  position: PerpPositionState,
  held: boolean,
  sizeDelta: bigint,
): SimulationResult {
  const id = state.accountId;
  const fail = refusal(state, before, beforeError);
  if (sizeDelta === 0n) return fail(makeXMarginError("ZeroSizeDelta", []));
  if (id === state.protocol.poolAccountId) return fail(makeXMarginError("PoolAccountCannotTrade", []));
  const price = state.prices[market.underlying];
  const unpriced = state.priceErrors?.[market.underlying];
  if (unpriced) return fail(unpriced); // the market prices the trade first
  const key = marketKey(market.market, market.marketId);
  // A reduction next to another position on the same underlying may unwind a hedge (requireRiskReduced).
  const others = othersOnUnderlying(state, key, market.underlying);
  const skew = market.longOpenInterest - market.shortOpenInterest;
  const fill = fillPrice(price, skew, sizeDelta, market.params.skewScale);
  if (fill <= 0n) return fail(makeXMarginError("InvalidFillPrice", [fill]));

  const r = applyPerpTrade(market, position, sizeDelta, price, state.timestamp, state.protocol.quoteUnit);
  const after = applyTradeResult(state, key, r);
  const { health, error: afterError } = healthOrFeedError(after);
  const healthError = beforeError ?? afterError;
  const trade: TradeFill = {
    marketId: market.marketId,
    sizeDelta,
    fillPrice: r.fillPrice,
    fee: r.feeQuote,
    tradingCost: r.tradingCost,
    realizedPnl: r.realizedPnl,
    fundingPaid: r.fundingPaid,
    newSize: r.position.size,
    newEntryPrice: r.position.entryPrice,
    increasesRisk: r.increasesRisk,
  };

  let revert: XMarginError | undefined;
  if (r.increasesRisk) {
    const p = market.params;
    // Each side of the traders' book that grows, without the backstop's position, is the LPs' delta
    // once the other side has closed (PerpMarket._checkNewRisk).
    const longGrows = r.newLong > market.longOpenInterest;
    const shortGrows = r.newShort > market.shortOpenInterest;
    const grownSide = max(
      longGrows ? r.newLong - max(market.backstopSize, 0n) : 0n,
      shortGrows ? r.newShort - max(-market.backstopSize, 0n) : 0n,
    );
    const poolDelta = mulDiv(grownSide, price, WAD, "ceil");
    const limit = poolLimit(state.protocol.poolDeltaBase, state.protocol.quoteUnit, p.maxPoolDeltaRatio);
    if (state.protocol.paused) revert = makeXMarginError("RiskIncreasePaused", []);
    else if (longGrows && r.newLong > p.maxOpenInterest) {
      revert = makeXMarginError("OpenInterestCapExceeded", [
        market.marketId,
        true,
        r.newLong,
        p.maxOpenInterest,
      ]);
    } else if (shortGrows && r.newShort > p.maxOpenInterest) {
      revert = makeXMarginError("OpenInterestCapExceeded", [
        market.marketId,
        false,
        r.newShort,
        p.maxOpenInterest,
      ]);
    } else if (grownSide > 0n && poolDelta > limit) {
      revert = makeXMarginError("PoolDeltaLimitExceeded", [market.marketId, poolDelta, limit]);
    }
  }
  revert ??= marginChecks(state, before, after, health, healthError, r.increasesRisk, held, others !== 0);
  // A reduction that fills worse than the oracle (a skew premium) may not leave equity at mark below
  // zero, nor the account further below maintenance than before (MarginEngine.requirePremiumAffordable).
  const paysPremium = sizeDelta > 0n ? r.fillPrice > price : r.fillPrice < price;
  if (!r.increasesRisk && paysPremium && revert === undefined) {
    revert = wholeAccountReadFailure(state, after, healthError);
    if (revert) return { before, health, state: after, trade, revert, healthError };
    const marginBefore = before.equityMaintenance - before.maintenanceRequirement;
    const marginAfter = health.equityMaintenance - health.maintenanceRequirement;
    if (health.equityMark < 0n) revert = makeXMarginError("InsolventAfterTrade", [id, health.equityMark]);
    else if (marginAfter < 0n && marginAfter < marginBefore) {
      revert = makeXMarginError("MaintenanceShortfallIncreased", [id, marginBefore, marginAfter]);
    }
  }
  return { before, health, state: after, trade, revert, healthError };
}

/**
 * The engine's checks after a trade: a new market must fit the account (isolated: one; cross: 16); a
 * risk-increasing trade needs equity_IM ≥ IM on an unfrozen account; a reduction next to another
 * position on the same underlying may not raise MM unless equity_IM ≥ IM afterwards (requireRiskReduced).
 */
function marginChecks(
  state: AccountState,
  before: Health,
  after: AccountState,
  health: Health,
  healthError: XMarginError | undefined,
  increasesRisk: boolean,
  held: boolean,
  hasOthers: boolean,
): XMarginError | undefined {
  const id = state.accountId;
  if (increasesRisk) {
    if (!held) {
      if (state.positions.length !== 0 && state.marginMode === "isolated") {
        return makeXMarginError("IsolatedAccountMarketTaken", [id]);
      }
      if (state.positions.length === MAX_MARKETS_PER_ACCOUNT) return makeXMarginError("TooManyMarkets", [id]);
    }
    return requireInitialMargin(after, health);
  }
  // Only a reduction next to another position on its underlying reads the health: the requirement before
  // it (every price), then requireRiskReduced strictly (every price and volatility). Any other reduction
  // reads no price beyond its own market's, so it goes through while another feed fails.
  if (!hasOthers) return undefined;
  const failure = wholeAccountReadFailure(state, after, healthError);
  if (failure) return failure;
  if (health.maintenanceRequirement > before.maintenanceRequirement) {
    if (state.frozen || !meetsInitialMargin(health)) {
      return makeXMarginError("RiskIncreased", [
        id,
        before.maintenanceRequirement,
        health.maintenanceRequirement,
      ]);
    }
  }
  return undefined;
}

/**
 * The error a reduction that values the whole account meets (requireRiskReduced, requirePremiumAffordable):
 * the market reads the health before the trade (every price), the engine the health after it strictly
 * (every price and volatility); `healthError` is the valuation's own failure, if any.
 */
function wholeAccountReadFailure(
  state: AccountState,
  after: AccountState,
  healthError: XMarginError | undefined,
): XMarginError | undefined {
  return priceFailure(state) ?? priceFailure(after) ?? volatilityFailure(after) ?? healthError;
}

/**
 * The health of `state`, or the error of the volatility or price feed the engine's health reverts with
 * on its book (with placeholder healths).
 */
function healthOrFeedError(state: AccountState): { health: Health; error?: XMarginError } {
  try {
    return { health: toHealth(accountHealth(state)) };
  } catch (error) {
    if (!isFeedFailure(state, error)) throw error;
    return { health: UNPRICED_HEALTH, error };
  }
}

/** The placeholder health of a preview whose account the engine cannot value (`healthError`). */
const UNPRICED_HEALTH: Health = {
  equityInitial: 0n,
  equityMaintenance: 0n,
  equityMark: 0n,
  initialRequirement: 0n,
  maintenanceRequirement: 0n,
  healthRatio: 0n,
  grossNotional: 0n,
  volatilityUnavailable: true,
};

/**
 * CollateralVault.withdraw, after the sender's checks: the amount, the zero recipient, the balance, then
 * the margin, which an account with nothing at risk skips (it reads no price, so it goes through while a
 * feed fails). Where a feed fails, `before` and `health` are placeholders and `healthError` its error.
 */
function simulateWithdrawal(
  state: AccountState,
  action: Extract<PreviewAction, { type: "withdraw" }>,
): SimulationResult {
  // A failed volatility feed under a live option fails the valuation too; the vault still refuses a
  // frozen account first (`requireInitialMargin` reads the auction before any price).
  const { health: before, error: healthError } = healthOrFeedError(state);
  const fail = refusal(state, before, healthError);
  const c = findCollateral(state, action.token);
  if (action.amount === 0n) return fail(makeXMarginError("ZeroAmount", []));
  // CollateralVault.withdraw refuses the zero address before it looks at the sender.
  if (action.to !== undefined && sameAddress(action.to, ZeroAddress)) {
    return fail(makeXMarginError("InvalidRecipient", [action.to]));
  }
  if (c.balance < action.amount) {
    // The vault reports the balance it records: a debt without the interest accrued since it paid.
    const recorded = c.debt?.recordedBalance ?? c.balance;
    return fail(makeXMarginError("InsufficientBalance", [state.accountId, c.token, recorded, action.amount]));
  }
  const after = setBalance(state, c.token, c.balance - action.amount);
  if (healthError && hasNothingAtRisk(state)) return { before, health: before, state: after, healthError };
  // requireInitialMargin values the debited account, which may meet no failed feed any more (the
  // withdrawal took out the whole balance of the token whose feed failed).
  const { health, error: afterError } = healthOrFeedError(after);
  const revert = requireInitialMargin(after, health);
  return { before, health, state: after, revert, healthError: healthError ?? afterError };
}

/**
 * CollateralVault.deposit: it reads the account's health only to tell a quote cure past the cap, so a
 * book the engine cannot value (a live option on an underlying whose volatility feed fails) still takes
 * every other deposit.
 */
function simulateDeposit(
  state: AccountState,
  action: Extract<PreviewAction, { type: "deposit" }>,
  opts: SimulateOptions,
): SimulationResult {
  const id = state.accountId;
  // The vault reads the health before the deposit (a quote deposit past the cap); the health after it
  // may fail too, when the deposit brings in a token whose price feed fails (the quote at zero included).
  const { health: before, error: beforeError } = healthOrFeedError(state);
  const c = findCollateral(state, action.token);
  const after = setBalance(state, c.token, c.balance + action.amount);
  const { health, error: afterError } = beforeError
    ? { health: before, error: undefined }
    : healthOrFeedError(after);
  const healthError = beforeError ?? afterError;
  let revert: XMarginError | undefined;
  if (action.amount === 0n) revert = makeXMarginError("ZeroAmount", []);
  else if (!c.listed) revert = makeXMarginError("TokenNotListed", [c.token]);
  else if (state.protocol.quoteOnlyAccountIds.includes(id) && c.token.toLowerCase() !== state.quoteToken) {
    // CollateralVault._requireOwnCollateral.
    revert = makeXMarginError("ProtocolAccountCollateral", [id, c.token]);
  } else if (opts.depositLimit) {
    // CollateralVault.deposit: capped unless it only repays debt, or cures in the quote token an
    // account in auction, or one below its initial requirement by at least the initial value of the
    // deposit's part past the cap (CollateralVault._quoteCure, which reads the health only there).
    const totalAfter = opts.depositLimit.totalDeposits + action.amount;
    const isQuote = c.token.toLowerCase() === state.quoteToken;
    if (totalAfter > opts.depositLimit.cap && c.balance + action.amount > 0n) {
      if (isQuote && !state.frozen && beforeError) revert = beforeError;
      else {
        const excess = max(min(action.amount, totalAfter - opts.depositLimit.cap), 0n);
        const shortfall = before.initialRequirement - before.equityInitial;
        const cures = state.frozen || (shortfall > 0n && initialValue(c, state.prices, excess) <= shortfall);
        if (!(cures && isQuote)) {
          revert = makeXMarginError("DepositCapExceeded", [c.token, totalAfter, opts.depositLimit.cap]);
        }
      }
    }
  }
  return { before, health, state: after, revert, healthError };
}

/** Positions of the account on `underlying` other than in `key`. */
function othersOnUnderlying(state: AccountState, key: string, underlying: string): number {
  return state.positions.filter(
    (p) =>
      marketKey(p.market, p.marketId) !== key &&
      state.markets[marketKey(p.market, p.marketId)]?.underlying === underlying,
  ).length;
}

function simulateOptionTrade(
  state: AccountState,
  before: Health,
  beforeError: XMarginError | undefined,
  market: OptionMarketState,
  position: OptionPositionState,
  sizeDelta: bigint,
): SimulationResult {
  const id = state.accountId;
  const fail = refusal(state, before, beforeError);
  if (sizeDelta === 0n) return fail(makeXMarginError("ZeroSizeDelta", []));
  if (id === state.protocol.poolAccountId) return fail(makeXMarginError("PoolAccountCannotTrade", []));
  if (market.settled) return fail(makeXMarginError("SeriesAlreadySettled", [market.marketId]));
  if (state.timestamp >= market.expiry) {
    return fail(makeXMarginError("SeriesExpired", [market.marketId, market.expiry]));
  }
  const key = marketKey(market.market, market.marketId);
  const hasOthers = othersOnUnderlying(state, key, market.underlying) !== 0;
  // A reduction next to another position reads the maintenance requirement before the trade prices the
  // series, strictly: every price and volatility the account needs (OptionMarket.trade). Any other
  // reduction reads no price beyond its series' underlying.
  const strictBefore =
    hasOthers && !increasesRisk(position.size, sizeDelta)
      ? (priceFailure(state) ?? volatilityFailure(state))
      : undefined;
  if (strictBefore) return fail(strictBefore);
  const spot = state.prices[market.underlying];
  const unpriced = state.priceErrors?.[market.underlying];
  if (unpriced) return fail(unpriced); // the market prices the trade first
  const u = state.underlyings[market.underlying];
  if (spot === undefined || !u) throw new RangeError(`underlying ${market.underlying} missing in state`);
  if (u.volatility === 0n) return fail(volatilityErrorOf(u, market.underlying));
  const r = applyOptionTrade(
    market,
    position,
    sizeDelta,
    spot,
    u.volatility,
    state.timestamp,
    state.protocol.quoteUnit,
  );
  // The backstop's own trades (unwinds) move the position the pool limits leave out.
  const series: OptionMarketState =
    id === state.protocol.backstopAccountId ? { ...r.market, backstopSize: r.position.size } : r.market;
  const pool = u.optionPool && recountOptionPool(u.optionPool, market, series, r.valuation);
  const traded = applyTradeResult(state, key, { ...r, market: series });
  const after: AccountState = pool
    ? { ...traded, underlyings: { ...traded.underlyings, [market.underlying]: { ...u, optionPool: pool } } }
    : traded;
  const { health, error: afterError } = healthOrFeedError(after);
  const healthError = beforeError ?? afterError;
  const option: OptionFill = {
    seriesId: market.marketId,
    sizeDelta,
    premium: r.premium,
    premiumQuote: r.premiumQuote,
    fee: r.feeQuote,
    tradingCost: r.tradingCost,
    newSize: r.position.size,
    increasesRisk: r.increasesRisk,
  };
  let revert: XMarginError | undefined;
  if (r.increasesRisk) {
    const cap = market.params.maxOpenInterest;
    if (state.protocol.paused) revert = makeXMarginError("RiskIncreasePaused", []);
    else if (r.newLong > market.longOpenInterest && r.newLong > cap) {
      revert = makeXMarginError("OpenInterestCapExceeded", [market.marketId, true, r.newLong, cap]);
    } else if (r.newShort > market.shortOpenInterest && r.newShort > cap) {
      revert = makeXMarginError("OpenInterestCapExceeded", [market.marketId, false, r.newShort, cap]);
    } else if (pool) {
      const { protocol } = state;
      const use = optionPoolLimits(
        pool,
        market,
        r.newLong,
        r.newShort,
        spot,
        protocol.poolDeltaBase,
        protocol.quoteUnit,
      );
      const underlying = market.underlying;
      if (use.vega.grown > use.vega.limit) {
        revert = makeXMarginError("PoolVegaLimitExceeded", [underlying, use.vega.grown, use.vega.limit]);
      } else if (use.delta.grown > use.delta.limit) {
        revert = makeXMarginError("PoolOptionDeltaLimitExceeded", [
          underlying,
          use.delta.grown,
          use.delta.limit,
        ]);
      }
    }
  }
  revert ??= marginChecks(
    state,
    before,
    after,
    health,
    healthError,
    r.increasesRisk,
    position.size !== 0n,
    hasOthers,
  );
  return { before, health, state: after, option, revert, healthError };
}

/**
 * The most of `token` the account can withdraw: its balance, capped so that equity_IM ≥ IM holds
 * afterwards (found by bisection on the pure collateral valuation, or on `accountHealth` for a token
 * shocked with the account's positions: its delta moves the requirement; exact to the unit) and, if given,
 * by what the vault holds for accounts (`totalDeposits`). Zero for a frozen account or one below IM;
 * the whole balance for an account with nothing at risk, which the vault does not margin-check (even
 * while a price feed fails: `AccountState.priceErrors`). Evaluated at `timestamp` (default the
 * snapshot's), as `simulate` is: a withdrawal lands at least a block later, and a quote debt's interest,
 * perp funding and options' decay move the maximum in between, so pass the time it is expected to be
 * mined (the maximum at the snapshot's time then reverts `InsufficientMargin`).
 * @example
 * const max = maxWithdrawableFromState(state, usdcAddress, undefined, state.timestamp + 24n);
 */
export function maxWithdrawableFromState(
  snapshot: AccountState,
  token: string,
  totalDeposits?: bigint,
  timestamp?: bigint,
): bigint {
  const state = withTimestamp(snapshot, timestamp);
  const c = findCollateral(state, token);
  if (state.frozen || c.balance <= 0n) return 0n;
  const cap = (amount: bigint) =>
    totalDeposits !== undefined && totalDeposits < amount ? totalDeposits : amount;
  // Nothing at risk: the vault checks no margin and reads no price (a failed feed included).
  if (hasNothingAtRisk(state)) return cap(c.balance);
  // Any withdrawal from an account holding positions is margin-checked strictly.
  if (volatilityFailure(state)) return 0n;
  const h = accountHealth(state);
  const others = state.collateral.filter((x) => x.token !== c.token);
  const othersInitial = collateralValue(others, state.quoteToken, state.prices).initial;
  const positionValue =
    h.equityInitial - collateralValue(state.collateral, state.quoteToken, state.prices).initial;
  // A token the account's positions are shocked with moves the requirement too (the grid takes it as
  // delta: MarginEngine._addCollateralDelta): evaluate the whole health at each amount.
  const shocked = c.token !== state.quoteToken && h.groups[c.oracleAsset] !== undefined;
  const ok = (x: bigint): boolean => {
    const left = c.balance - x;
    if (shocked) {
      const collateral = state.collateral.map((t) => (t === c ? { ...t, balance: left } : t));
      return meetsInitialMargin(accountHealth({ ...state, collateral }));
    }
    const own = initialValue(c, state.prices, left);
    return othersInitial + own + positionValue >= h.initialRequirement;
  };
  if (!ok(0n)) return 0n;
  let lo = 0n; // ok
  let hi = c.balance + 1n; // first amount not allowed (or one past the balance)
  if (ok(c.balance)) lo = c.balance;
  else {
    while (hi - lo > 1n) {
      const mid = (lo + hi) / 2n;
      if (ok(mid)) lo = mid;
      else hi = mid;
    }
  }
  return cap(lo);
}

/** Options of `preview`. */
export interface PreviewOptions extends SimulateOptions {
  /** Block to read the snapshot at (default: the latest). */
  blockTag?: BlockTag;
}

/**
 * The account's health after `action`, without sending it: reads a snapshot (`getAccountState`, with the
 * token or market the action needs) and applies the action with the pure math (`simulate`). A trade
 * previewed by a client with a signer also checks that the signer may send it: an owner or operator, or
 * a trader whose allowance covers the trade's `tradingCost`. So does a withdrawal: the owner may send it
 * anywhere, an operator only to the owner (`InvalidRecipient`; `to` defaults to the owner, as in
 * `withdraw`), anyone else not at all (`NotAuthorized`: a trading grant does not cover withdrawals). A
 * deposit of a token other than the quote also needs the owner or an operator (`NotAuthorized`).
 * Without a signer the sender is not checked. A withdrawal or deposit that should otherwise pass also
 * asks the token about the transfer the vault would make (`tokenError`; for a deposit, with the
 * depositor's `allowance`).
 * @example
 * const r = await preview(client, accountId, { type: "trade", marketId: 1n, sizeDelta: parseEther("2") });
 * console.log(formatUsd(r.health.initialRequirement), r.trade?.fillPrice, r.revert?.message);
 * const o = await preview(client, accountId, { type: "optionTrade", seriesId: 1n, sizeDelta: -parseEther("1") });
 * console.log(o.option?.premium, formatUsd(o.health.maintenanceRequirement));
 * const w = await preview(operator, accountId, { type: "withdraw", token: "USDC", amount: 10n ** 9n, to });
 * w.revert?.name; // "InvalidRecipient" unless `to` is the owner
 */
export async function preview(
  client: XMarginClient,
  accountId: bigint,
  action: PreviewAction,
  opts: PreviewOptions = {},
): Promise<SimulationResult> {
  return worded(client, await previewAction(client, accountId, action, opts));
}

/**
 * `result` with its `revert` worded as the sent action's error would be, with the token metadata and
 * quote decimals the snapshot loaded into the client: `simulate` has no client, so its messages named
 * tokens by address and amounts in raw units ("holds 19971544021 units of 0x2279…", review round 158).
 */
function worded(client: XMarginClient, result: SimulationResult): SimulationResult {
  if (!result.revert) return result;
  return {
    ...result,
    revert: decodeRevertData(result.revert.data, errorContext(client), result.revert.cause) ?? result.revert,
  };
}

/** `preview` before its revert is worded for the client. */
async function previewAction(
  client: XMarginClient,
  accountId: bigint,
  action: PreviewAction,
  opts: PreviewOptions,
): Promise<SimulationResult> {
  const tokens =
    action.type === "deposit" || action.type === "withdraw" ? [resolveToken(client, action.token)] : [];
  const markets: { market?: string; marketId: bigint }[] = [];
  if (action.type === "trade" || action.type === "close") markets.push({ marketId: action.marketId });
  if (action.type === "optionTrade" || action.type === "optionClose") {
    const optionMarket = client.deployment.contracts.optionMarket;
    if (optionMarket === undefined) throw new MissingContractError("optionMarket");
    markets.push({ market: optionMarket, marketId: action.seriesId });
  }
  const state = await getAccountState(client, { accountId, blockTag: opts.blockTag, tokens, markets });
  const resolved: PreviewAction =
    action.type === "deposit" || action.type === "withdraw" ? { ...action, token: tokens[0] } : action;
  if (markets.length !== 0 && client.signer) {
    const result = simulate(state, resolved, opts);
    return { ...result, revert: await tradeAuthorisation(client, state, result) };
  }
  if (action.type === "withdraw") {
    const result = simulate(state, resolved, opts);
    // `whenNotPaused` runs before every other check of CollateralVault.withdraw.
    const vault = pausable(client.deployment.contracts.vault, client.runner);
    if (await read(client, () => vault.paused({ blockTag: state.blockNumber }))) {
      return { ...result, revert: makeXMarginError("EnforcedPause", []) };
    }
    const revert = client.signer
      ? await withdrawalAuthorisation(client, state, action.to, result)
      : result.revert;
    if (revert) return { ...result, revert };
    const tokenError = await withdrawalRefusedByToken(client, state, tokens[0], action);
    return tokenError ? { ...result, revert, tokenError } : { ...result, revert };
  }
  if (action.type === "deposit") {
    let depositLimit = opts.depositLimit;
    if (depositLimit === undefined) {
      const vault = client.contracts.vault;
      const [config, totalDeposits] = await Promise.all([
        vault.collateralConfig(tokens[0], { blockTag: state.blockNumber }),
        vault.totalDeposits(tokens[0], { blockTag: state.blockNumber }),
      ]);
      depositLimit = { cap: config.depositCap, totalDeposits };
    }
    const result = simulate(state, resolved, { ...opts, depositLimit });
    const revert = client.signer
      ? await depositAuthorisation(client, state, tokens[0], result)
      : result.revert;
    if (revert) return { ...result, revert };
    return { ...result, revert, ...(await depositPull(client, state, tokens[0], action.amount)) };
  }
  return simulate(state, resolved, opts);
}

/**
 * The token's refusal of the transfer `CollateralVault.withdraw` ends with (`safeTransfer` of the amount
 * from the vault to the recipient, the owner by default), asked at the snapshot's block
 * (`tokenRefusal`); undefined when it would send.
 */
async function withdrawalRefusedByToken(
  client: XMarginClient,
  state: AccountState,
  token: string,
  action: Extract<PreviewAction, { type: "withdraw" }>,
): Promise<Error | undefined> {
  const blockTag = state.blockNumber;
  const to =
    action.to ?? (await read(client, () => client.contracts.accounts.ownerOf(state.accountId, { blockTag })));
  const vault = client.deployment.contracts.vault;
  return tokenRefusal(
    client,
    { token, from: vault, to, amount: action.amount, sender: "the vault" },
    blockTag,
  );
}

/** What a deposit's pull tells a preview: the depositor's allowance and the token's refusal, if any. */
type DepositPull = Pick<SimulationResult, "allowance" | "tokenError">;

/**
 * What `CollateralVault.deposit`'s pull (`safeTransferFrom(sender, vault, amount)`, then the vault's
 * check that it received exactly `amount`) would meet, at the snapshot's block: the depositor's
 * allowance to the vault, and the token's refusal. With an allowance covering the amount the deposit
 * itself is called statically from the depositor, which also sees what the token delivers
 * (`TransferAmountMismatch` for a fee-on-transfer or rebasing token, `SafeERC20FailedOperation` for a
 * `false`); without one, a static call of the depositor's `transfer` of the amount to the vault (the same
 * movement less the allowance, which `deposit` grants before it sends) sees the token's pause, blocklist
 * and balance, but not what a fee would deliver. The depositor is the client's signer, or the account's
 * owner for a client without one.
 */
async function depositPull(
  client: XMarginClient,
  state: AccountState,
  token: string,
  amount: bigint,
): Promise<DepositPull> {
  const blockTag = state.blockNumber;
  const vault = client.deployment.contracts.vault;
  const from = client.signer
    ? await client.signer.getAddress()
    : await read(client, () => client.contracts.accounts.ownerOf(state.accountId, { blockTag }));
  const allowance = await read(client, () =>
    erc20(token, client.provider).allowance(from, vault, { blockTag }),
  );
  let tokenError: Error | undefined;
  if (allowance >= amount) {
    const data = client.contracts.vault.interface.encodeFunctionData("deposit", [
      state.accountId,
      token,
      amount,
    ]);
    const answer = await askStatically(client, { to: vault, from, data, blockTag });
    tokenError = answer instanceof Error ? answer : undefined;
  } else {
    tokenError = await tokenRefusal(
      client,
      { token, from, to: vault, amount, sender: "the depositor" },
      blockTag,
    );
  }
  return tokenError ? { allowance, tokenError } : { allowance };
}

/**
 * The revert of a previewed deposit sent by the client's signer: anyone may deposit the quote token, but
 * another token only the owner or an operator (`NotAuthorized`, checked after the listing and the
 * protocol accounts' rule and before the cap). Read at the snapshot's block.
 */
async function depositAuthorisation(
  client: XMarginClient,
  state: AccountState,
  token: string,
  result: SimulationResult,
): Promise<XMarginError | undefined> {
  if (sameAddress(token, state.quoteToken)) return result.revert;
  if (result.revert && result.revert.name !== "DepositCapExceeded") return result.revert;
  const caller = await client.signer!.getAddress();
  const authorized = await read(client, () =>
    client.contracts.accounts.isAuthorized(state.accountId, caller, { blockTag: state.blockNumber }),
  );
  return authorized ? result.revert : makeXMarginError("NotAuthorized", [state.accountId, caller]);
}

/** Errors the markets raise after `Accounts.authorizeTrade`: an authorisation failure comes first. */
const CHECKED_AFTER_AUTHORISATION = new Set([
  "InsufficientMargin",
  "AccountFrozen",
  "RiskIncreased",
  "InsolventAfterTrade",
  "MaintenanceShortfallIncreased",
  "TooManyMarkets",
  "IsolatedAccountMarketTaken",
]);

/**
 * The revert of a previewed trade sent by the client's signer, with the authorisation the markets check
 * between pricing and margin (`Accounts.authorizeTrade`): owners and operators trade at any cost, a
 * trader up to its allowance, anyone else not at all. Read at the snapshot's block.
 */
async function tradeAuthorisation(
  client: XMarginClient,
  state: AccountState,
  result: SimulationResult,
): Promise<XMarginError | undefined> {
  const cost = result.trade?.tradingCost ?? result.option?.tradingCost;
  // A priced trade's volatility failure is the margin check's after it (the option market's own strict
  // reads, before pricing, return no fill): authorizeTrade comes first.
  const afterAuthorisation =
    result.revert !== undefined &&
    (CHECKED_AFTER_AUTHORISATION.has(result.revert.name) || isFeedFailure(state, result.revert));
  if (cost === undefined || (result.revert && !afterAuthorisation)) {
    return result.revert;
  }
  const caller = await client.signer!.getAddress();
  const at = { blockTag: state.blockNumber };
  const [authorized, allowance] = await Promise.all([
    client.contracts.accounts.isAuthorized(state.accountId, caller, at),
    client.contracts.accounts.traderAllowance(state.accountId, caller, at),
  ]);
  if (authorized || allowance === UNLIMITED_TRADING_ALLOWANCE) return result.revert;
  if (allowance === 0n) return makeXMarginError("NotAuthorized", [state.accountId, caller]);
  if (cost > allowance) {
    return makeXMarginError("TraderAllowanceExceeded", [state.accountId, caller, cost, allowance]);
  }
  return result.revert;
}

/** Errors CollateralVault.withdraw raises after it has checked the sender and the recipient. */
const WITHDRAWAL_CHECKED_AFTER_AUTHORISATION = new Set([
  "InsufficientBalance",
  "InsufficientMargin",
  "AccountFrozen",
]);

/** Who sends a withdrawal and where to, with what the account registry says of them (one block). */
export interface WithdrawalSender {
  accountId: bigint;
  /** `Accounts.ownerOf(accountId)`. */
  owner: string;
  /** The withdrawal's sender (`msg.sender`). */
  caller: string;
  /** `Accounts.isAuthorized(accountId, caller)`: the owner or an ERC-721 operator of the account. */
  authorized: boolean;
  /** The recipient; default the owner (as `withdraw` sends it). */
  to?: string;
}

/**
 * The revert `CollateralVault.withdraw` raises for its sender and recipient, in the vault's order: the
 * owner may withdraw to any address, anyone else must be authorised on the account (owner or ERC-721
 * operator: a trader's grant does not count; else `NotAuthorized`) and may only withdraw to the owner
 * (else `InvalidRecipient`). Undefined when the sender may send it. The zero recipient, refused before
 * these checks, is `simulate`'s. Pure.
 * @example
 * withdrawalSenderRevert({ accountId: 4n, owner: alice, caller: bob, authorized: false })?.name; // "NotAuthorized"
 */
export function withdrawalSenderRevert(s: WithdrawalSender): XMarginError | undefined {
  if (sameAddress(s.caller, s.owner)) return undefined;
  if (!s.authorized) return makeXMarginError("NotAuthorized", [s.accountId, s.caller]);
  if (s.to !== undefined && !sameAddress(s.to, s.owner)) return makeXMarginError("InvalidRecipient", [s.to]);
  return undefined;
}

/**
 * The revert of a previewed withdrawal sent by the client's signer to `to`: the simulated revert, unless
 * it comes before the vault checks the sender (ZeroAmount, InvalidRecipient of the zero address) or the
 * sender's check fails first (`withdrawalSenderRevert`). Owner and authorisation read at the snapshot's
 * block.
 */
async function withdrawalAuthorisation(
  client: XMarginClient,
  state: AccountState,
  to: string | undefined,
  result: SimulationResult,
): Promise<XMarginError | undefined> {
  // A volatility failure is requireInitialMargin's, after the sender's checks.
  if (
    result.revert &&
    !WITHDRAWAL_CHECKED_AFTER_AUTHORISATION.has(result.revert.name) &&
    !isFeedFailure(state, result.revert)
  )
    return result.revert;
  const caller = await client.signer!.getAddress();
  const at = { blockTag: state.blockNumber };
  const [owner, authorized] = await read(client, () =>
    Promise.all([
      client.contracts.accounts.ownerOf(state.accountId, at),
      client.contracts.accounts.isAuthorized(state.accountId, caller, at),
    ]),
  );
  return (
    withdrawalSenderRevert({ accountId: state.accountId, owner, caller, authorized, to }) ?? result.revert
  );
}

/** Whether `error` is the error of a volatility or price feed the snapshot read as failed. */
function isFeedFailure(state: AccountState, error: unknown): error is XMarginError {
  return (
    Object.values(state.underlyings).some((u) => u.volatilityError === error) ||
    Object.values(state.priceErrors ?? {}).includes(error as XMarginError)
  );
}

/** Whether two addresses are the same (any capitalisation). */
function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}
