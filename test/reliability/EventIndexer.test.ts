import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse, Interface, Log, LogDescription } from "ethers";
import { MarginMode, WAD, atLatestTimestamp, openAccount, wad } from "../shared/system";
import {
  DAY,
  HOUR,
  deployOptionsSystem,
  deployOptionsSystemWithoutFunding,
  listSeries,
  tradeOption,
} from "../shared/options";
import { aliceLongInAuction } from "../shared/keeper";
import { systemWithClients } from "../shared/sdk";
import { absorb } from "../../sdk/src";
import { closePosition, marketParams, mineAt, refreshFeeds, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { mintAndApprove } from "../shared/tokens";

/**
 * Can an indexer rebuild the protocol from its events alone (review round 116)? `reduce` is a pure
 * function over the decoded logs of every xmargin contract (replayed from the deployment's first block),
 * one handler per event family. A scenario on the in-process chain (two collateral tokens, perps in two
 * markets with funding, options to settlement, an LP in and out, a partial bid, a `bidAndClose`, an
 * insolvent absorb paid by the fund and the pool, the backstop's unwind, an account NFT transfer, a
 * governance change) compares what the events rebuilt with the contracts' views after every step.
 *
 * Legitimately derived state, not compared (an indexer reads it with a view call at the block it
 * shows): funding accrued since a position's last touch (`accruedFunding`, `currentFundingIndex`), the
 * interest a quote debt accrued since it last paid (`accruedInterest`), marks, health and the LP share
 * price (`totalAssets`, the pool account's mark-to-market equity).
 */
const USDC = 10n ** 6n;
type Sys = Awaited<ReturnType<typeof deployOptionsSystem>>;

// ------------------------------------------------------------------ the reducer (pure)

/** A decoded log with the block facts an indexer has (its timestamp). */
interface Decoded {
  source: Source;
  event: LogDescription;
  timestamp: bigint;
  tx: string;
}
type Source = "accounts" | "vault" | "engine" | "auction" | "pool" | "perps" | "options" | "fund";

interface PerpPosition {
  size: bigint;
  entryPrice: bigint;
  fundingIndex: bigint;
}
interface AuctionState {
  startTime: bigint;
  active: boolean;
  deficit: bigint;
  endedAt: bigint;
  paidIn: bigint;
  /** Σ fraction bought, each of the book left at its bid (WAD), and Σ payments (quote units). */
  fractions: bigint[];
  payments: bigint;
}
/** What the events say an account's quote did, by cause (quote units, or USD WAD where the event is). */
interface QuoteFlows {
  /** Deposits less withdrawals and payouts to addresses, quote units. */
  cashQuote: bigint;
  /** Each trade's realizedPnl − fundingPaid in quote units, rounded against the trader. */
  settledQuote: bigint;
  feesQuote: bigint;
  realizedPnlWad: bigint;
  fundingPaidWad: bigint;
  premiumsWad: bigint;
  payoutsWad: bigint;
  interestQuote: bigint;
}
export interface IndexedState {
  balances: Map<string, bigint>; // `${accountId}:${token}`
  owners: Map<bigint, string>;
  perps: Map<string, PerpPosition>; // `${marketId}:${accountId}`
  perpOi: Map<bigint, { long: bigint; short: bigint }>;
  funding: Map<bigint, { rate: bigint; index: bigint; time: bigint }>;
  takerFee: Map<bigint, bigint>;
  options: Map<string, bigint>; // `${seriesId}:${accountId}`
  optionOi: Map<bigint, { long: bigint; short: bigint }>;
  auctions: Map<bigint, AuctionState>;
  pendingDeficit: bigint;
  shares: Map<string, bigint>;
  totalShares: bigint;
  flows: Map<bigint, QuoteFlows>;
  socialised: bigint;
  paidByInsurance: bigint;
  /** The engine's list of markets each account holds (`${market}:${marketId}`), from PositionOpened/Closed. */
  held: Map<bigint, Set<string>>;
  /** Trading grants (`${accountId}:${trader}`), ended by the account's transfer. */
  grants: Map<string, bigint>;
  settlementPrice: Map<bigint, bigint>;
  lastAbsorbAt: bigint;
  redeemRequests: Map<string, { shares: bigint; assets: bigint; claimableAt: bigint }>;
  exitDelay: bigint;
  backstop: bigint;
}

export function emptyState(): IndexedState {
  return {
    balances: new Map(),
    owners: new Map(),
    perps: new Map(),
    perpOi: new Map(),
    funding: new Map(),
    takerFee: new Map(),
    options: new Map(),
    optionOi: new Map(),
    auctions: new Map(),
    pendingDeficit: 0n,
    shares: new Map(),
    totalShares: 0n,
    flows: new Map(),
    socialised: 0n,
    paidByInsurance: 0n,
    held: new Map(),
    grants: new Map(),
    settlementPrice: new Map(),
    lastAbsorbAt: 0n,
    redeemRequests: new Map(),
    exitDelay: 0n,
    backstop: 0n,
  };
}

const pos = (x: bigint) => (x > 0n ? x : 0n);
/** USD WAD to quote units (6 decimals), rounded against the account: a gain down, a debt up. */
const toQuoteAgainst = (wadAmount: bigint) =>
  wadAmount >= 0n ? wadAmount / 10n ** 12n : -((-wadAmount + 10n ** 12n - 1n) / 10n ** 12n);
const ZERO = ethers.ZeroAddress.toLowerCase();

function addBalance(s: IndexedState, accountId: bigint, token: string, delta: bigint): void {
  const key = `${accountId}:${token.toLowerCase()}`;
  s.balances.set(key, (s.balances.get(key) ?? 0n) + delta);
}

function flowsOf(s: IndexedState, accountId: bigint): QuoteFlows {
  let f = s.flows.get(accountId);
  if (!f) {
    f = {
      cashQuote: 0n,
      settledQuote: 0n,
      feesQuote: 0n,
      realizedPnlWad: 0n,
      fundingPaidWad: 0n,
      premiumsWad: 0n,
      payoutsWad: 0n,
      interestQuote: 0n,
    };
    s.flows.set(accountId, f);
  }
  return f;
}

/** Moves one side of an open-interest book from `oldSize` to `newSize`. */
function moveOi(book: { long: bigint; short: bigint }, oldSize: bigint, newSize: bigint): void {
  book.long += pos(newSize) - pos(oldSize);
  book.short += pos(-newSize) - pos(-oldSize);
}

/** `PerpMarket._applyFill`'s entry price after `delta` at `fill` (PerpMath.averageEntry's rounding). */
function entryAfter(oldSize: bigint, oldEntry: bigint, delta: bigint, fill: bigint): bigint {
  const newSize = oldSize + delta;
  if (newSize === 0n) return 0n;
  const opposite = oldSize !== 0n && oldSize > 0n !== delta > 0n;
  if (!opposite) {
    const a = oldSize < 0n ? -oldSize : oldSize;
    const b = delta < 0n ? -delta : delta;
    const cost = a * oldEntry + b * fill;
    return delta > 0n ? (cost + a + b - 1n) / (a + b) : cost / (a + b);
  }
  return newSize > 0n === oldSize > 0n ? oldEntry : fill;
}

/** Deposited, Withdrawn, BalanceTransferred, QuotePaidOut, QuoteInterestCharged, ProtocolAccountsSet. */
function reduceVault(s: IndexedState, e: LogDescription, quote: string): void {
  const a = e.args;
  if ((e.name === "Deposited" || e.name === "Withdrawn") && a.token.toLowerCase() === quote)
    flowsOf(s, a.accountId).cashQuote += e.name === "Deposited" ? BigInt(a.amount) : -BigInt(a.amount);
  if (e.name === "QuotePaidOut") flowsOf(s, a.accountId).cashQuote -= BigInt(a.amount);
  switch (e.name) {
    case "Deposited":
      return addBalance(s, a.accountId, a.token, a.amount);
    case "Withdrawn":
      return addBalance(s, a.accountId, a.token, -BigInt(a.amount));
    case "BalanceTransferred":
      addBalance(s, a.fromAccountId, a.token, -BigInt(a.amount));
      return addBalance(s, a.toAccountId, a.token, a.amount);
    case "QuotePaidOut":
      return addBalance(s, a.accountId, quote, -BigInt(a.amount));
    case "ProtocolAccountsSet":
      s.backstop = a.backstopAccountId;
      return;
    case "QuoteInterestCharged":
      flowsOf(s, a.accountId).interestQuote += a.amount;
      return;
  }
}

/** FundingAccrued, PositionModified, PositionTransferred, MarketListed / MarketParamsUpdated. */
function reducePerps(s: IndexedState, e: LogDescription, timestamp: bigint): void {
  const a = e.args;
  const key = (account: bigint) => `${a.marketId}:${account}`;
  const book = () => {
    const b = s.perpOi.get(a.marketId) ?? { long: 0n, short: 0n };
    s.perpOi.set(a.marketId, b);
    return b;
  };
  const index = () => s.funding.get(a.marketId)?.index ?? 0n;
  const store = (account: bigint, size: bigint, entryPrice: bigint) => {
    if (size === 0n) s.perps.delete(key(account));
    else s.perps.set(key(account), { size, entryPrice, fundingIndex: index() });
  };
  switch (e.name) {
    case "MarketListed":
      // Listing starts funding at this block, rate and index 0, without a FundingAccrued.
      s.funding.set(a.marketId, { rate: 0n, index: 0n, time: timestamp });
      s.takerFee.set(a.marketId, a.params.takerFee);
      return;
    case "MarketParamsUpdated":
      s.takerFee.set(a.marketId, a.params.takerFee);
      return;
    case "FundingAccrued":
      s.funding.set(a.marketId, { rate: a.rate, index: a.index, time: timestamp });
      return;
    case "PositionModified": {
      const old = s.perps.get(key(a.accountId))?.size ?? 0n;
      moveOi(book(), old, a.newSize);
      store(a.accountId, a.newSize, a.entryPrice);
      const f = flowsOf(s, a.accountId);
      f.realizedPnlWad += a.realizedPnl;
      f.fundingPaidWad += a.fundingPaid;
      f.settledQuote += toQuoteAgainst(BigInt(a.realizedPnl) - BigInt(a.fundingPaid));
      return;
    }
    case "PositionTransferred": {
      const from = s.perps.get(key(a.fromAccountId)) ?? { size: 0n, entryPrice: 0n, fundingIndex: 0n };
      const to = s.perps.get(key(a.toAccountId)) ?? { size: 0n, entryPrice: 0n, fundingIndex: 0n };
      moveOi(book(), from.size, from.size - a.size);
      moveOi(book(), to.size, to.size + a.size);
      store(a.fromAccountId, from.size - a.size, from.entryPrice);
      store(a.toAccountId, to.size + a.size, entryAfter(to.size, to.entryPrice, a.size, a.price));
      flowsOf(s, a.fromAccountId).fundingPaidWad += a.fromFundingPaid;
      flowsOf(s, a.toAccountId).fundingPaidWad += a.toFundingPaid;
      flowsOf(s, a.toAccountId).realizedPnlWad += a.toRealizedPnl;
      return;
    }
  }
}

/** OptionTraded, PositionTransferred, PositionSettled. */
function reduceOptions(s: IndexedState, e: LogDescription): void {
  const a = e.args;
  const key = (account: bigint) => `${a.seriesId}:${account}`;
  const book = s.optionOi.get(a.seriesId) ?? { long: 0n, short: 0n };
  s.optionOi.set(a.seriesId, book);
  const set = (account: bigint, size: bigint) => {
    moveOi(book, s.options.get(key(account)) ?? 0n, size);
    if (size === 0n) s.options.delete(key(account));
    else s.options.set(key(account), size);
  };
  switch (e.name) {
    case "OptionTraded":
      set(a.accountId, a.newSize);
      flowsOf(s, a.accountId).premiumsWad += a.sizeDelta > 0n ? -a.premium : a.premium;
      return;
    case "PositionTransferred":
      set(a.fromAccountId, (s.options.get(key(a.fromAccountId)) ?? 0n) - a.size);
      set(a.toAccountId, (s.options.get(key(a.toAccountId)) ?? 0n) + a.size);
      return;
    case "SeriesSettled":
      s.settlementPrice.set(a.seriesId, a.settlementPrice);
      return;
    case "PositionSettled":
      set(a.accountId, 0n);
      flowsOf(s, a.accountId).payoutsWad += a.payout;
      return;
  }
}

/** AuctionStarted, AuctionBid, PaidInUpdated, PendingDeficitUpdated, InsolvencyCovered, AuctionEnded. */
function reduceAuction(s: IndexedState, e: LogDescription, timestamp: bigint): void {
  const a = e.args;
  const auction = (id: bigint): AuctionState => {
    let x = s.auctions.get(id);
    if (!x) {
      x = { startTime: 0n, active: false, deficit: 0n, endedAt: 0n, paidIn: 0n, fractions: [], payments: 0n };
      s.auctions.set(id, x);
    }
    return x;
  };
  switch (e.name) {
    case "AuctionStarted": {
      const x = auction(a.accountId);
      if (!x.active) x.fractions = [];
      x.startTime = timestamp;
      x.active = true;
      return;
    }
    case "AuctionBid": {
      const x = auction(a.accountId);
      if (a.bidderAccountId === s.backstop) s.lastAbsorbAt = timestamp;
      x.fractions.push(a.fraction);
      x.payments += a.payment;
      return;
    }
    case "PaidInUpdated":
      auction(a.accountId).paidIn = a.paidIn;
      return;
    case "PendingDeficitUpdated":
      auction(a.accountId).deficit = a.deficit;
      s.pendingDeficit = a.pendingDeficit;
      return;
    case "InsolvencyCovered":
      s.paidByInsurance += a.paidByInsurance;
      s.socialised += a.socialisedLoss;
      return;
    case "AuctionEnded": {
      const x = auction(a.accountId);
      Object.assign(x, { startTime: 0n, active: false, endedAt: timestamp, paidIn: 0n });
      return;
    }
  }
}

/** The LP's exit requests: RedeemRequested, a claim's Withdraw (with an exit delay, every Withdraw is one),
 * RedeemRequestCancelled. A partial claim takes the claimed shares' part of the request's assets, rounded
 * down (`LiquidityPool._claimValue`). */
function reduceRedeemRequests(s: IndexedState, e: LogDescription): void {
  const a = e.args;
  if (e.name === "ExitDelaySet") s.exitDelay = a.exitDelay;
  else if (e.name === "RedeemRequested")
    s.redeemRequests.set(a.owner.toLowerCase(), {
      shares: a.shares,
      assets: a.assets,
      claimableAt: a.claimableAt,
    });
  else if (e.name === "RedeemRequestCancelled") s.redeemRequests.delete(a.owner.toLowerCase());
  else if (e.name === "Withdraw" && s.exitDelay !== 0n) {
    const r = s.redeemRequests.get(a.owner.toLowerCase());
    if (!r) return;
    if (a.shares === r.shares) s.redeemRequests.delete(a.owner.toLowerCase());
    else
      s.redeemRequests.set(a.owner.toLowerCase(), {
        shares: r.shares - a.shares,
        assets: r.assets - (r.assets * a.shares) / r.shares,
        claimableAt: r.claimableAt,
      });
  }
}

/** Accounts: the ERC-721 `Transfer` (owners), TraderSet and TraderAllowanceSpent (grants). */
function reduceAccounts(s: IndexedState, e: LogDescription): void {
  const a = e.args;
  if (e.name === "Transfer") {
    s.owners.set(a.tokenId, a.to.toLowerCase());
    // A transfer ends every trading grant of the account without a TraderSet (IAccounts' NatSpec).
    for (const key of [...s.grants.keys()]) if (key.startsWith(`${a.tokenId}:`)) s.grants.delete(key);
  } else if (e.name === "TraderSet") {
    s.grants.set(`${a.accountId}:${a.trader.toLowerCase()}`, a.allowance);
  } else if (e.name === "TraderAllowanceSpent") {
    s.grants.set(`${a.accountId}:${a.trader.toLowerCase()}`, a.remaining);
  }
}

/** The engine: FeeCharged, and PositionOpened / PositionClosed (the markets each account holds). */
function reduceEngine(s: IndexedState, e: LogDescription): void {
  const a = e.args;
  if (e.name === "FeeCharged") {
    flowsOf(s, a.accountId).feesQuote += a.toPool + a.toInsurance;
  } else if (e.name === "PositionOpened" || e.name === "PositionClosed") {
    const set = s.held.get(a.accountId) ?? new Set<string>();
    const key = `${a.market.toLowerCase()}:${a.marketId}`;
    if (e.name === "PositionOpened") set.add(key);
    else set.delete(key);
    s.held.set(a.accountId, set);
  }
}

/** The pool's ERC-20 share `Transfer`s, then its exit requests. */
function reducePool(s: IndexedState, e: LogDescription): void {
  const a = e.args;
  if (e.name !== "Transfer") return reduceRedeemRequests(s, e);
  const from = a.from.toLowerCase();
  const to = a.to.toLowerCase();
  if (from === ZERO) s.totalShares += a.value;
  else s.shares.set(from, (s.shares.get(from) ?? 0n) - a.value);
  if (to === ZERO) s.totalShares -= a.value;
  else s.shares.set(to, (s.shares.get(to) ?? 0n) + a.value);
}

/** The indexer: folds decoded logs, in chain order, into `state`. */
export function reduce(state: IndexedState, logs: readonly Decoded[], quote: string): IndexedState {
  for (const { source, event, timestamp } of logs) {
    if (source === "vault") reduceVault(state, event, quote);
    else if (source === "perps") reducePerps(state, event, timestamp);
    else if (source === "options") reduceOptions(state, event);
    else if (source === "auction") reduceAuction(state, event, timestamp);
    else if (source === "accounts") reduceAccounts(state, event);
    else if (source === "engine") reduceEngine(state, event);
    else if (source === "pool") reducePool(state, event);
  }
  return state;
}

// ------------------------------------------------------------------ the chain side

/** Reads the logs of every xmargin contract since the last read and decodes them. */
class LogSource {
  private next = 0;
  private readonly byAddress = new Map<string, { source: Source; iface: Interface }>();
  private readonly times = new Map<number, bigint>();

  static async of(sys: Sys): Promise<LogSource> {
    const src = new LogSource();
    const entries: [Source, { getAddress(): Promise<string>; interface: Interface }][] = [
      ["accounts", sys.accounts],
      ["vault", sys.vault],
      ["engine", sys.engine],
      ["auction", sys.auction],
      ["pool", sys.pool],
      ["perps", sys.perps],
      ["options", sys.options],
      ["fund", sys.insuranceFund],
    ];
    for (const [source, c] of entries)
      src.byAddress.set((await c.getAddress()).toLowerCase(), { source, iface: c.interface });
    return src;
  }

  async read(): Promise<Decoded[]> {
    const latest = await ethers.provider.getBlockNumber();
    if (latest < this.next) return [];
    const logs: Log[] = await ethers.provider.getLogs({
      fromBlock: this.next,
      toBlock: latest,
      address: [...this.byAddress.keys()],
    });
    this.next = latest + 1;
    const out: Decoded[] = [];
    for (const log of logs) {
      const c = this.byAddress.get(log.address.toLowerCase())!;
      const event = c.iface.parseLog(log);
      if (!event) continue;
      out.push({
        source: c.source,
        event,
        timestamp: await this.timestamp(log.blockNumber),
        tx: log.transactionHash,
      });
    }
    return out;
  }

  private async timestamp(block: number): Promise<bigint> {
    let t = this.times.get(block);
    if (t === undefined) {
      t = BigInt((await ethers.provider.getBlock(block))!.timestamp);
      this.times.set(block, t);
    }
    return t;
  }
}

/** Every difference between the rebuilt state and the contracts' views: "field: events X, chain Y". */
async function differences(
  sys: Sys,
  s: IndexedState,
  ids: bigint[],
  series: bigint[],
  lps: string[],
  traders: string[],
): Promise<string[]> {
  const out: string[] = [];
  const eq = (field: string, fromEvents: unknown, chain: unknown) => {
    if (String(fromEvents) !== String(chain)) out.push(`${field}: events ${fromEvents}, chain ${chain}`);
  };
  const tokens = [await sys.usdc.getAddress(), await sys.weth.getAddress()];
  const fundId = await sys.insuranceFund.accountId();
  const markets = [sys.markets.ETH, sys.markets.BTC];
  await Promise.all(
    ids.map(async (id) => {
      for (const [i, token] of tokens.entries())
        eq(
          `balance ${id} ${i === 0 ? "USDC" : "WETH"}`,
          s.balances.get(`${id}:${token.toLowerCase()}`) ?? 0n,
          await sys.vault.balanceOf(id, token),
        );
      for (const m of markets) {
        if (id === sys.poolAccountId) {
          const b = s.perpOi.get(m) ?? { long: 0n, short: 0n };
          eq(`perp ${m} size ${id}`, b.short - b.long, await sys.perps.positionSize(id, m));
          continue;
        }
        const p = await sys.perps.position(id, m);
        const r = s.perps.get(`${m}:${id}`) ?? { size: 0n, entryPrice: 0n, fundingIndex: 0n };
        eq(`perp ${m} size ${id}`, r.size, p.size);
        eq(`perp ${m} entry ${id}`, r.entryPrice, p.entryPrice);
        eq(`perp ${m} funding index ${id}`, r.fundingIndex, p.fundingIndex);
      }
      for (const sid of series) {
        const b = s.optionOi.get(sid) ?? { long: 0n, short: 0n };
        const size = id === sys.poolAccountId ? b.short - b.long : (s.options.get(`${sid}:${id}`) ?? 0n);
        eq(`option ${sid} size ${id}`, size, await sys.options.positionSize(id, sid));
      }
      const x = await sys.auction.auctions(id);
      const r = s.auctions.get(id);
      eq(`auction ${id} active`, r?.active ?? false, x.active);
      eq(`auction ${id} startTime`, r?.startTime ?? 0n, x.startTime);
      eq(`auction ${id} deficit`, r?.deficit ?? 0n, x.deficit);
      eq(`auction ${id} endedAt`, r?.endedAt ?? 0n, x.endedAt);
      eq(`auction ${id} paidIn`, r?.paidIn ?? 0n, x.paidIn);
      if (id !== sys.poolAccountId && id !== fundId && id !== (await sys.auction.backstopAccountId()))
        eq(`owner ${id}`, s.owners.get(id), (await sys.accounts.ownerOf(id)).toLowerCase());
      const held = (await sys.engine.accountMarkets(id)).map(
        (k) => `${k.market.toLowerCase()}:${k.marketId}`,
      );
      eq(`markets held by ${id}`, [...(s.held.get(id) ?? [])].sort(), held.sort());
      for (const trader of traders)
        eq(
          `allowance of ${trader} on ${id}`,
          s.grants.get(`${id}:${trader.toLowerCase()}`) ?? 0n,
          await sys.accounts.traderAllowance(id, trader),
        );
    }),
  );
  eq("last absorb", s.lastAbsorbAt, await sys.auction.lastAbsorbAt());
  for (const m of markets) {
    const info = await sys.perps.market(m);
    const b = s.perpOi.get(m) ?? { long: 0n, short: 0n };
    eq(`perp ${m} long OI`, b.long, info.longOpenInterest);
    eq(`perp ${m} short OI`, b.short, info.shortOpenInterest);
    const f = s.funding.get(m);
    eq(`perp ${m} funding index`, f?.index, info.fundingIndex);
    eq(`perp ${m} funding rate`, f?.rate, info.fundingRate);
    eq(`perp ${m} funding time`, f?.time, info.lastFundingTime);
    eq(`perp ${m} taker fee`, s.takerFee.get(m), info.params.takerFee);
  }
  for (const sid of series) {
    const info = await sys.options.series(sid);
    const b = s.optionOi.get(sid) ?? { long: 0n, short: 0n };
    eq(`option ${sid} long OI`, b.long, info.longOpenInterest);
    eq(`option ${sid} short OI`, b.short, info.shortOpenInterest);
    eq(`option ${sid} settlement price`, s.settlementPrice.get(sid) ?? 0n, info.settlementPrice);
  }
  eq("pending deficit", s.pendingDeficit, await sys.auction.pendingDeficit());
  eq(
    "insurance fund",
    s.balances.get(`${fundId}:${tokens[0].toLowerCase()}`) ?? 0n,
    await sys.insuranceFund.balance(),
  );
  eq("pool total shares", s.totalShares, await sys.pool.totalSupply());
  for (const lp of lps) {
    eq(`pool shares ${lp}`, s.shares.get(lp.toLowerCase()) ?? 0n, await sys.pool.balanceOf(lp));
    const r = s.redeemRequests.get(lp.toLowerCase()) ?? { shares: 0n, assets: 0n, claimableAt: 0n };
    const chain = await sys.pool.redeemRequest(lp);
    eq(
      `redeem request of ${lp}`,
      [r.shares, r.assets, r.claimableAt],
      [chain.shares, chain.assets, chain.claimableAt],
    );
  }
  return out;
}

/**
 * Each amount an event states against the balance moves of its own transaction: a fee, a flag reward, a
 * bid's payment and penalty, an insolvency's payouts, a premium, a settlement payout and a trade's
 * realised PnL net of funding must each be the quote the vault moved (USD WAD fields divided by the quote
 * unit; a trade's PnL and funding are rounded separately in its event and once in its transfer, so 1
 * unit). Returns every mismatch.
 */
function fieldMismatches(all: readonly Decoded[], quoteUnit: bigint, pool: bigint, fund: bigint): string[] {
  const out: string[] = [];
  const byTx = new Map<string, Decoded[]>();
  for (const d of all) byTx.set(d.tx, [...(byTx.get(d.tx) ?? []), d]);
  for (const [tx, logs] of byTx) {
    const moves = logs.filter((d) => d.event.name === "BalanceTransferred").map((d) => d.event.args);
    const moved = (from: bigint, to: bigint) =>
      moves.filter((m) => m.fromAccountId === from && m.toAccountId === to).map((m) => BigInt(m.amount));
    const has = (from: bigint, to: bigint, amount: bigint) =>
      amount === 0n || moved(from, to).includes(amount);
    // A trade's FeeCharged comes just before its PositionModified / OptionTraded (a bidAndClose trades
    // several times in one transaction).
    const lastFee = new Map<bigint, bigint>();
    for (const { source, event } of logs) {
      const a = event.args;
      const where = `${tx.slice(0, 10)} ${source}.${event.name}(${a.accountId ?? a.fromAccountId})`;
      if (event.name === "FeeCharged") lastFee.set(a.accountId, BigInt(a.toPool) + BigInt(a.toInsurance));
      if (event.name === "PositionModified" || event.name === "OptionTraded") {
        const charged = lastFee.get(a.accountId) ?? 0n;
        lastFee.delete(a.accountId);
        if (charged * quoteUnit !== BigInt(a.fee))
          out.push(`${where}: fee ${a.fee} WAD, FeeCharged ${charged}`);
      }
      if (event.name === "PositionModified" && a.accountId !== pool) {
        const net = BigInt(a.realizedPnl) - BigInt(a.fundingPaid);
        const quote = net >= 0n ? net / quoteUnit : -((-net + quoteUnit - 1n) / quoteUnit);
        const settle = [...moved(pool, a.accountId), ...moved(a.accountId, pool).map((x) => -x)];
        if (!settle.some((x) => x - quote <= 1n && quote - x <= 1n) && quote !== 0n)
          out.push(`${where}: realizedPnl − fundingPaid ${net} WAD, moved ${settle}`);
      }
      if (event.name === "OptionTraded") {
        const premium = BigInt(a.premium) / quoteUnit;
        const ok = a.sizeDelta > 0n ? has(a.accountId, pool, premium) : has(pool, a.accountId, premium);
        if (!ok) out.push(`${where}: premium ${a.premium} WAD not moved`);
      }
      if (event.name === "PositionSettled") {
        const payout = BigInt(a.payout) / quoteUnit;
        const ok = payout >= 0n ? has(pool, a.accountId, payout) : has(a.accountId, pool, -payout);
        if (!ok) out.push(`${where}: payout ${a.payout} WAD not moved`);
      }
      if (event.name === "AuctionStarted" && a.flagReward !== 0n) {
        const paid = logs.find((d) => d.event.name === "QuotePaidOut")?.event.args.amount;
        if (paid !== a.flagReward) out.push(`${where}: flagReward ${a.flagReward}, paid out ${paid}`);
      }
      if (event.name === "AuctionBid") {
        if (!has(a.bidderAccountId, a.accountId, BigInt(a.payment)))
          out.push(`${where}: payment ${a.payment} not moved`);
        if (!has(a.accountId, fund, BigInt(a.penalty))) out.push(`${where}: penalty ${a.penalty} not moved`);
      }
      if (event.name === "InsolvencyCovered") {
        if (!has(fund, a.bidderAccountId, BigInt(a.paidByInsurance)))
          out.push(`${where}: paidByInsurance ${a.paidByInsurance} not moved`);
        if (!has(pool, a.bidderAccountId, BigInt(a.socialisedLoss)))
          out.push(`${where}: socialisedLoss ${a.socialisedLoss} not moved`);
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------ the scenario

interface Run {
  sys: Sys;
  state: IndexedState;
  /** Every step's differences, in order; empty when the events rebuilt everything. */
  diffs: { step: string; differences: string[] }[];
  ids: Record<"alice" | "bob" | "debtor" | "victim" | "insolvent" | "keeper" | "backstop", bigint>;
  /** Every decoded log of the run, in chain order. */
  all: Decoded[];
}

async function scenario(): Promise<Run> {
  const sys = await deployOptionsSystem();
  const { alice, bob, carol, keeper, deployer } = sys;
  const quote = (await sys.usdc.getAddress()).toLowerCase();
  const logs = await LogSource.of(sys);
  const all = await logs.read();
  const state = reduce(emptyState(), all, quote);
  const ids: bigint[] = [sys.poolAccountId, await sys.insuranceFund.accountId()];
  const series: bigint[] = [];
  const lps = [sys.lp.address, carol.address, await sys.pool.getAddress()];
  const diffs: Run["diffs"] = [];
  const vault = await sys.vault.getAddress();

  const step = async (label: string, send: () => Promise<ContractTransactionResponse>) => {
    const receipt = await (await send()).wait();
    const fresh = await logs.read();
    all.push(...fresh);
    reduce(state, fresh, quote);
    diffs.push({ step: label, differences: await differences(sys, state, ids, series, lps, [bob.address]) });
    return receipt;
  };
  const open = async (signer: typeof alice, label: string) => {
    const receipt = await step(`${label} creates an account`, () =>
      sys.accounts.connect(signer).createAccount(MarginMode.CROSS),
    );
    const id = BigInt(
      receipt!.logs.map((l) => sys.accounts.interface.parseLog(l)).find((e) => e?.name === "AccountCreated")!
        .args.accountId,
    );
    ids.push(id);
    return id;
  };
  const deposit = async (signer: typeof alice, id: bigint, token: typeof sys.usdc, amount: bigint) => {
    await mintAndApprove(token, signer, vault, amount);
    await step(`deposit ${amount} ${await token.symbol()} into ${id}`, () =>
      sys.vault.connect(signer).deposit(id, token, amount),
    );
  };
  const later = async (seconds: bigint) => {
    await time.increase(seconds);
    await refreshFeeds(sys);
  };

  // Governance: quote debt pays interest from now.
  const rate = wad("0.5");
  await step("the risk manager sets the interest rate model", () =>
    sys.vault
      .connect(deployer)
      .setInterestRateModel({ baseRate: rate, kinkRate: rate, maxRate: rate, kinkUtilization: wad("0.8") }),
  );

  // Collateral in two tokens, and withdrawals of each.
  const a = await open(alice, "Alice");
  await deposit(alice, a, sys.usdc, 60_000n * USDC);
  await deposit(alice, a, sys.weth, wad("5"));
  const b = await open(bob, "Bob");
  await deposit(bob, b, sys.usdc, 200_000n * USDC);
  await deposit(bob, b, sys.weth, wad("10"));
  await step("Alice withdraws 1,000 USDC", () =>
    sys.vault.connect(alice).withdraw(a, sys.usdc, 1_000n * USDC, alice),
  );
  await step("Alice withdraws 1 WETH", () => sys.vault.connect(alice).withdraw(a, sys.weth, wad("1"), alice));
  await step("Alice lets Bob trade her account for up to 100 USDC", () =>
    sys.accounts.connect(alice).setTrader(a, bob, 100n * USDC),
  );
  // A WETH-only account: its first fee is a quote debt, which pays interest.
  const debtor = await open(bob, "Bob (WETH only)");
  await deposit(bob, debtor, sys.weth, wad("10"));
  await step("the WETH-only account buys 0.1 BTC on credit", () =>
    trade(sys.perps, bob, debtor, sys.markets.BTC, wad("0.1")),
  );

  // An LP deposit (its exit follows the option settlement, after the holding period).
  await mintAndApprove(sys.usdc, carol, await sys.pool.getAddress(), 20_000n * USDC);
  await step("Carol deposits 20,000 USDC as an LP", () =>
    sys.pool.connect(carol).deposit(20_000n * USDC, carol),
  );

  // Perps: open, increase, reduce, flip, close in two markets, with funding accruing between.
  await step("Alice opens long 10 ETH", () => trade(sys.perps, alice, a, sys.markets.ETH, wad("10")));
  await step("Bob opens short 1 BTC", () => trade(sys.perps, bob, b, sys.markets.BTC, -wad("1")));
  await later(HOUR);
  await step("Alice increases to 15 ETH", () => trade(sys.perps, alice, a, sys.markets.ETH, wad("5")));
  await later(HOUR);
  await step("Alice reduces to 7 ETH", () => trade(sys.perps, alice, a, sys.markets.ETH, -wad("8")));
  await step("Alice flips to short 5 ETH", () => trade(sys.perps, alice, a, sys.markets.ETH, -wad("12")));
  await step("Bob, as Alice's trader, opens her long 0.5 BTC", () =>
    trade(sys.perps, bob, a, sys.markets.BTC, wad("0.5")),
  );
  await later(HOUR);
  await step("Alice closes BTC", () => closePosition(sys.perps, alice, a, sys.markets.BTC));
  await step("anyone accrues ETH funding", () => sys.perps.accrueFunding(sys.markets.ETH));

  // Governance: a parameter change inside its step.
  await step("the risk manager raises the ETH taker fee", () =>
    sys.perps.connect(deployer).setMarketParams(sys.markets.ETH, marketParams({ takerFee: wad("0.00055") })),
  );

  // Options: buy, write, sell back, expiry, settlement.
  const expiry = BigInt(await time.latest()) + DAY;
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  series.push(call);
  await step("Alice buys 5 calls", () => tradeOption(sys.options, alice, a, call, wad("5")));
  await step("Bob writes 3 calls", () => tradeOption(sys.options, bob, b, call, -wad("3")));
  await step("Alice sells 2 calls back", () => tradeOption(sys.options, alice, a, call, -wad("2")));
  await mineAt(sys, expiry + 5n);
  const round = (await sys.feeds.ETH.latestRound()) + 1n;
  await setFeedPrice(sys.feeds.ETH, "3100");
  await step("the keeper settles the series at 3,100", () =>
    sys.options.connect(keeper).settleSeries(call, round),
  );
  await step("the keeper settles Alice and Bob", () =>
    sys.options.connect(keeper).settleAccounts([a, b], call),
  );

  await step("the WETH-only account closes, paying its interest", () =>
    closePosition(sys.perps, bob, debtor, sys.markets.BTC),
  );

  // The LP exits: half at once, then, with an exit delay, a request, a partial claim and a cancel.
  const shares = await sys.pool.balanceOf(carol);
  await step("Carol redeems half her shares", () =>
    sys.pool.connect(carol).redeem(shares / 2n, carol, carol),
  );
  await step("governance sets an exit delay of a day", () => sys.pool.connect(deployer).setExitDelay(DAY));
  await step("Carol asks to redeem a quarter", () => sys.pool.connect(carol).requestRedeem(shares / 4n));
  await later(DAY);
  await step("Carol claims a third of her request", () =>
    sys.pool.connect(carol).claimRedeem(shares / 12n, carol, 0n),
  );
  await step("Carol cancels the rest of her request", () => sys.pool.connect(carol).cancelRedeemRequest());
  await step("the treasury withdraws 1 USDC from the insurance fund", () =>
    sys.insuranceFund.connect(deployer).withdraw(deployer, USDC),
  );

  // A solvent auction: a partial bid, then a bidAndClose.
  const victim = await open(carol, "Carol");
  await deposit(carol, victim, sys.usdc, 5_000n * USDC);
  await step("Carol goes long 10 ETH", () => trade(sys.perps, carol, victim, sys.markets.ETH, wad("10")));
  const weekly = await listSeries(sys.options, "ETH", "3000", BigInt(await time.latest()) + 7n * DAY, true);
  series.push(weekly);
  await step("Carol buys 2 weekly calls", () => tradeOption(sys.options, carol, victim, weekly, wad("2")));
  const insolvent = await open(alice, "Alice (second)");
  await deposit(alice, insolvent, sys.usdc, 50_000n * USDC);
  await step("Alice's second account goes long 100 ETH", () =>
    trade(sys.perps, alice, insolvent, sys.markets.ETH, wad("100")),
  );
  await setFeedPrice(sys.feeds.ETH, "2700");
  await step("the keeper starts Carol's auction", () => sys.auction.connect(keeper).startAuction(victim));
  await step("Bob bids for 10% of Carol's book", () =>
    sys.auction.connect(bob).bid(victim, b, wad("0.1"), ethers.MaxUint256),
  );
  const k = await open(keeper, "the keeper");
  await deposit(keeper, k, sys.usdc, 5_000n * USDC);
  await step("the keeper lets the auction trade its account", () =>
    sys.accounts.connect(keeper).approve(sys.auction, k),
  );
  await step("the keeper bidAndCloses the rest it may take", () =>
    sys.auction.connect(keeper).bidAndClose(victim, k, WAD, ethers.MaxUint256),
  );

  // An insolvent auction the backstop absorbs: the fund pays what it holds, the pool the rest.
  await step("the keeper starts the insolvent auction", () =>
    sys.auction.connect(keeper).startAuction(insolvent),
  );
  const backstop = await sys.auction.backstopAccountId();
  ids.push(backstop);
  await later(BigInt((await sys.auction.params()).duration));
  await step("the backstop absorbs the insolvent book", () => sys.auction.connect(keeper).absorb(insolvent));
  const deadline = BigInt(await time.latest()) + DAY;
  await step("the backstop unwinds 10 ETH", () =>
    sys.auction.connect(deployer).unwindBackstop(sys.perps, sys.markets.ETH, -wad("10"), 0n, deadline),
  );

  // The account NFT changes hands; the new owner trades it.
  await step("Alice transfers her first account to Carol", () =>
    sys.accounts.connect(alice).transferFrom(alice, carol, a),
  );
  await step("Carol closes its ETH short", () => closePosition(sys.perps, carol, a, sys.markets.ETH));

  return {
    sys,
    state,
    diffs,
    ids: { alice: a, bob: b, debtor, victim, insolvent, keeper: k, backstop },
    all,
  };
}

/**
 * Alice long 10 ETH on 5,000 USDC in auction at 2,600 (`aliceLongInAuction`, funding off); Bob buys 10% of
 * her book, then ETH falls until her book is worth half of what his bid paid in: still solvent, but under
 * water without that cash, so the next bid sells it with the book (`LiquidationAuction._heldBack` = 0).
 */
async function secondBidBelowPaidIn() {
  const sys = await deployOptionsSystemWithoutFunding();
  const victim = await aliceLongInAuction(sys);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await sys.auction.connect(sys.bob).bid(victim, bob, wad("0.1"), ethers.MaxUint256);
  const paidIn = (await sys.auction.auctions(victim)).paidIn;
  const mark = (await sys.engine.health(victim)).equityMark;
  const size = await sys.perps.positionSize(victim, sys.markets.ETH);
  const quoteUnit = 10n ** 12n;
  // The price at which her mark is paidIn / 2, to the cent (below it, a little lower).
  const drop = ((mark - (paidIn * quoteUnit) / 2n) * WAD) / size;
  const price = ((wad("2600") - drop) / 10n ** 16n) * 10n ** 16n;
  await setFeedPrice(sys.feeds.ETH, ethers.formatUnits(price, 18));
  return { sys, victim, bob, paidIn };
}

describe("EventIndexer: the protocol rebuilt from its events (review round 116)", function () {
  it("has the SDK's absorb of an insolvent account report the payout the backstop received: the deficit", async function () {
    const { sys, keeper } = await loadFixture(systemWithClients);
    await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
    const victim = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
    await trade(sys.perps, sys.bob, victim, sys.markets.ETH, wad("10"));
    await setFeedPrice(sys.feeds.ETH, "2000");
    await sys.auction.startAuction(victim);
    await mineAt(sys, BigInt(await time.latest()) + BigInt((await sys.auction.params()).duration) + 1n);
    const deficit = -(await sys.engine.health(victim)).equityMark / 10n ** 12n;
    const backstop = await sys.auction.backstopAccountId();
    const fund = await sys.insuranceFund.accountId();
    await atLatestTimestamp();
    const r = await absorb(keeper, { accountId: victim });
    const vault = await sys.vault.getAddress();
    const moved = r.receipt.logs
      .map((l) => (l.address === vault ? sys.vault.interface.parseLog(l) : null))
      .filter((e) => e?.name === "BalanceTransferred" && e.args.toAccountId === backstop)
      .filter((e) => e!.args.fromAccountId === fund || e!.args.fromAccountId === sys.poolAccountId)
      .reduce((sum, e) => sum + BigInt(e!.args.amount), 0n);
    expect([r.filled, r.payment, r.penalty]).to.deep.equal([WAD, 0n, 0n]);
    // An absorb is paid the deficit (a bidder's take, `quoteBid`, also the premium dmax·MM).
    expect(r.insurancePayout).to.be.closeTo(deficit, 1n);
    expect(r.insurancePayout).to.equal(moved);
  });

  it("rebuilds what an auction's bids paid in only while the book is worth more than it", async function () {
    const { sys, victim, bob, paidIn } = await loadFixture(secondBidBelowPaidIn);
    const quote = (await sys.usdc.getAddress()).toLowerCase();
    const logs = await LogSource.of(sys);
    const state = reduce(emptyState(), await logs.read(), quote);
    expect(state.auctions.get(victim)!.paidIn, "after the first bid").to.equal(paidIn);
    const mark = (await sys.engine.health(victim)).equityMark;
    expect(mark > 0n && mark <= paidIn * 10n ** 12n, `mark ${mark}, paid in ${paidIn}`).to.equal(true);
    await sys.auction.connect(sys.bob).bid(victim, bob, wad("0.1"), ethers.MaxUint256);
    reduce(state, await logs.read(), quote);
    const chain = await sys.auction.auctions(victim);
    expect(chain.active).to.equal(true);
    expect(state.auctions.get(victim)!.paidIn).to.equal(chain.paidIn);
  });

  it("states in each money event the amount its transaction moved", async function () {
    const { sys, all } = await loadFixture(scenario);
    const quoteUnit = 10n ** (18n - (await sys.usdc.decimals()));
    const mismatches = fieldMismatches(
      all,
      quoteUnit,
      sys.poolAccountId,
      await sys.insuranceFund.accountId(),
    );
    expect(mismatches).to.deep.equal([]);
    // The scenario reaches every case the checks cover: the payments and penalties of two solvent bids,
    // a fund payout and a socialised loss, interest, option and perp slices, a flag reward.
    const args = (name: string) => all.filter((d) => d.event.name === name).map((d) => d.event.args);
    expect(args("AuctionBid").filter((a) => a.payment > 0n && a.penalty > 0n)).to.have.length(2);
    const [covered] = args("InsolvencyCovered");
    expect(covered.paidByInsurance > 0n && covered.socialisedLoss > 0n).to.equal(true);
    expect(args("QuoteInterestCharged")).to.have.length(1);
    expect(args("PositionTransferred")).to.have.length(5); // 3 perp slices, 2 option slices
    expect(args("AuctionStarted").filter((a) => a.flagReward > 0n)).to.have.length(1);
    expect(args("PositionSettled")).to.have.length(2);
  });

  it("explains a traded account's quote by cause: cash, PnL net of funding, fees, premiums, payouts, interest", async function () {
    const { sys, state, all, ids } = await loadFixture(scenario);
    const quote = (await sys.usdc.getAddress()).toLowerCase();
    for (const id of [ids.alice, ids.bob, ids.debtor]) {
      const f = state.flows.get(id)!;
      const explained =
        f.cashQuote +
        f.settledQuote -
        f.feesQuote +
        f.premiumsWad / 10n ** 12n +
        f.payoutsWad / 10n ** 12n -
        f.interestQuote;
      // Bob's bid paid Carol for a slice (AuctionBid.payment) and took its quote: the auction's own moves.
      const auction = all
        .filter((d) => d.event.name === "BalanceTransferred" && d.source === "vault")
        .filter((d) => all.some((x) => x.tx === d.tx && x.event.name === "AuctionBid"))
        .map((d) => d.event.args)
        .filter((a) => a.token.toLowerCase() === quote && (a.toAccountId === id || a.fromAccountId === id))
        .reduce((sum, a) => sum + (a.toAccountId === id ? BigInt(a.amount) : -BigInt(a.amount)), 0n);
      // A trade's event rounds PnL and funding apart, its transfer once: 1 unit per trade at most.
      const trades = BigInt(
        all.filter((d) => d.event.name === "PositionModified" && d.event.args.accountId === id).length,
      );
      const balance = state.balances.get(`${id}:${quote}`)!;
      expect(balance - (explained + auction), `account ${id}`).to.be.within(-trades, trades);
    }
    expect(state.flows.get(ids.debtor)!.interestQuote).to.be.greaterThan(0n);
    // The fraction of Carol's book sold, from the bids' fractions (each of the book left at the time):
    // her 10 ETH less the slices, each rounded toward zero.
    const carol = state.auctions.get(ids.victim)!;
    expect(carol.fractions).to.have.length(2);
    const left = carol.fractions.reduce((size, f) => size - (size * f) / WAD, wad("10"));
    const pieces = all.filter(
      (d) =>
        d.source === "perps" &&
        d.event.name === "PositionTransferred" &&
        d.event.args.fromAccountId === ids.victim,
    );
    const sold = pieces.reduce((sum, d) => sum + BigInt(d.event.args.size), 0n);
    expect(wad("10") - sold - left).to.be.within(0n, 2n);
  });

  it("rebuilds balances, positions, open interest, funding, auctions, shares and owners after every step", async function () {
    const { diffs } = await loadFixture(scenario);
    expect(diffs.length).to.equal(53);
    const first = new Map<string, string>();
    for (const d of diffs)
      for (const x of d.differences) {
        const field = x.replace(/:.*/, "");
        if (!first.has(field)) first.set(field, `${d.step} → ${x}`);
      }
    expect([...first.values()]).to.deep.equal([]);
  });
});
