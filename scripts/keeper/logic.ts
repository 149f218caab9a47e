/**
 * The keeper's decisions as pure functions of chain data: no I/O here, so each rule is unit-tested
 * (test/unit/Keeper.test.ts) and mirrors the contracts' own checks.
 *
 * Units: USD amounts and prices are WAD (1e18); quote amounts are in quote-token units; gas in wei.
 */
import { divCeil, divFloor } from "../../sdk/src/math/fixedPoint";

export const WAD = 10n ** 18n;

/** The fields of IMarginEngine.Health the keeper reads. */
export interface HealthLike {
  equityMaintenance: bigint;
  maintenanceRequirement: bigint;
  equityMark: bigint;
  /** The volatility feed is down and the shocks are at their floors: a recovery cannot be shown. */
  volatilityUnavailable: boolean;
}

/** LiquidationAuction._liquidatable: equity_MM < MM (a negative equity is always below). */
export function isLiquidatable(h: Pick<HealthLike, "equityMaintenance" | "maintenanceRequirement">): boolean {
  return h.equityMaintenance < 0n || h.equityMaintenance < h.maintenanceRequirement;
}

type Requirement = Pick<HealthLike, "equityMaintenance" | "maintenanceRequirement">;

/**
 * Orders liquidatable accounts closest to insolvency first: equity_MM ÷ MM ascending. MM is about a
 * shock times the book's notional, so this ratio is how far, in shocks, the equity is from zero: MM 100
 * with equity 10 goes insolvent on a tenth of the move that MM 1,000,000 with equity 950,000 needs; and
 * with one transaction at a time, the order decides whose losses reach the insurance fund. A debt
 * without a requirement (ratio −∞) comes first; ties go to the larger requirement. Stable.
 */
export function byUrgency<T, H extends Requirement>(accounts: readonly (readonly [T, H])[]): [T, H][] {
  return accounts.map(([id, h]): [T, H] => [id, h]).sort(([, a], [, b]) => compareUrgency(a, b));
}

/** Negative when `a` is closer to insolvency than `b` (see `byUrgency`); exact, no division. */
export function compareUrgency(a: Requirement, b: Requirement): number {
  const sign = (x: bigint): number => (x < 0n ? -1 : x > 0n ? 1 : 0);
  const [ma, mb] = [a.maintenanceRequirement, b.maintenanceRequirement];
  if (ma === 0n || mb === 0n) {
    return ma !== mb ? (ma === 0n ? -1 : 1) : sign(a.equityMaintenance - b.equityMaintenance);
  }
  return sign(a.equityMaintenance * mb - b.equityMaintenance * ma) || sign(mb - ma);
}

/** What the keeper reads of one of its own accounts before bidding from it (`ensureKeeperAccount`). */
export interface BidderAccountFacts {
  /** Accounts.marginMode is ISOLATED (one market only: a multi-market slice could not land). */
  isolated: boolean;
  /** MarginEngine.accountMarkets(id).length: the markets it holds positions in. */
  markets: number;
  /** LiquidationAuction.isFrozen(id): in a running auction, so every bid from it reverts AccountFrozen. */
  frozen: boolean;
  /** CollateralVault.balanceOf(id, quote token), quote units: the only balance that can be negative. */
  quoteBalance: bigint;
  /** MarginEngine.health(id).equityMark; null when that read reverted (e.g. a collateral's stale feed). */
  equityMark: bigint | null;
  /**
   * MarginEngine.health(id): equity_IM < IM. With a quote debt every `bidAndClose` from the account must
   * end above its initial requirement, so such an account can bid on nothing (review round 60).
   */
  belowInitial?: boolean;
}

/**
 * Why the keeper cannot bid from one of its accounts, or null when it can: it must be CROSS, hold no
 * positions, not be frozen by an auction, not be insolvent (equity at mark ≥ 0: a negative equity
 * must be filled before any bid meets its initial margin), and with a quote debt meet its initial
 * requirement (else every bid from it reverts). A quote debt alone is fine when the other
 * collateral covers it: it is what a bid that leaves the slice's WETH in the account against its quote
 * payment produces, so the keeper's own account can hold one. Anyone can send the keeper an account
 * (ERC-721 transfer) before its first start, so an adopted account is checked, not trusted.
 */
export function bidderAccountUnfit(f: BidderAccountFacts): string | null {
  if (f.isolated) return "isolated";
  if (f.markets !== 0) return "holds positions";
  if (f.frozen) return "frozen by an auction";
  // Without positions or a quote debt the equity cannot be negative, whatever the feeds say.
  if (f.quoteBalance >= 0n) return null;
  if (f.equityMark === null) return "equity unreadable";
  if (f.equityMark < 0n) return "negative equity";
  // A quote debt against collateral that fell since (a WETH slice's, say): every bid reverts until the
  // keeper's owner repays it; another account bids meanwhile (review round 60).
  if (f.belowInitial) return "below its initial requirement with a quote debt";
  return null;
}

export type AuctionStatus = "none" | "running" | "absorbable";

/**
 * An auction that has run its duration is at its maximum discount and the pool may absorb it
 * (LiquidationAuction.absorb) from `absorbableAt` on, the chain's own time (a sequencer outage moves
 * it: review round 115); it stays open to bids until then and after.
 */
export function auctionStatus(
  auction: { active: boolean; absorbableAt: bigint },
  now: bigint,
): AuctionStatus {
  if (!auction.active) return "none";
  return now >= auction.absorbableAt ? "absorbable" : "running";
}

/** What to do with an account this block. */
export type Action = "none" | "start" | "bid";

export function chooseAction(
  h: Pick<HealthLike, "equityMaintenance" | "maintenanceRequirement">,
  status: AuctionStatus,
): Action {
  if (!isLiquidatable(h)) return "none";
  // A stale auction stays open to bids at the maximum discount; restarting it pays no reward and
  // would lower the discount, so the keeper bids on it (or has the backstop absorb it) instead.
  return status === "none" ? "start" : "bid";
}

/** A slice of a position, rounded toward zero as PerpMarket.transferPosition does. */
export function sliceSize(size: bigint, fraction: bigint): bigint {
  return (size * fraction) / WAD; // bigint division truncates toward zero
}

/**
 * Cost (USD WAD, negative = gain) of closing `size` at `fillPrice` when the oracle marks it at
 * `oraclePrice`, plus `fee`. The slice is valued at the oracle in the auction's MtM, so the close
 * realises (fill − oracle)·size on top of the fee: a long sold below the oracle costs, a long sold
 * above it (a trade that reduces the skew earns its premium) gains. Rounded up, against the keeper, as
 * every other term of its bid economics.
 */
export function closeCost(size: bigint, oraclePrice: bigint, fillPrice: bigint, fee: bigint): bigint {
  return fee + divCeil(size * (oraclePrice - fillPrice), WAD);
}

/**
 * The engine's mark of one contract (USD WAD) of an option position worth `value` for `held` contracts
 * (`held` ≠ 0), the oracle price `closeCost` takes for an option slice. Rounded against the keeper: up
 * for a long position (its slice is sold: a higher mark is a larger cost), down for a short one (bought
 * back: a lower mark is a larger cost).
 */
export function optionMarkPerContract(value: bigint, held: bigint): bigint {
  return held > 0n ? divCeil(value * WAD, held) : divFloor(-value * WAD, -held);
}

export interface BidQuote {
  /** Fraction the auction will fill (capped at the restoring fraction), WAD. */
  filled: bigint;
  /**
   * Quote units the bidder pays; for an insolvent account (`mark` ≤ 0) the deficit less the payout, a
   * bound for `maxPayment` that moves nothing (the book's mark already counts the deficit).
   */
  payment: bigint;
  /** Quote units the insurance fund pays the bidder (insolvent accounts). */
  insurancePayout: bigint;
}

export interface BidEconomics {
  /** Slice value at mark minus the payment, plus any insurance payout (USD WAD). */
  discountUsd: bigint;
  /** Fees and fill premiums of closing the slice (USD WAD, negative = gain). */
  closeCostUsd: bigint;
  gasUsd: bigint;
  netUsd: bigint;
}

/**
 * The keeper's result of `bidAndClose`: it receives f·`mark` of value, pays `payment`, receives
 * `insurancePayout` and pays the closing costs (all quote WAD: the book counted in the quote token as
 * the auction counts it, `ICollateralVault.markInQuote` plus positions, which settle in quote 1:1),
 * then the gas (USD). Quote amounts become USD at `quotePrice` (USD WAD per quote token): off peg the
 * engine's USD equityMark is not what the slice is worth in the quote the payment is made in (review
 * round 13: at USDC 0.95 the keeper saw −995 where a bid made +282). Rounding: the quote amounts are
 * exact units; the slice value rounds down (against us).
 */
export function bidEconomics(args: {
  quote: BidQuote;
  mark: bigint;
  quotePrice: bigint;
  quoteUnit: bigint;
  closeCost: bigint;
  gasUnits: bigint;
  gasPriceWei: bigint;
  /** The L1 data fee (wei) on OP-stack chains; 0 (the default) elsewhere (`TxSender.l1DataFee`). */
  l1FeeWei?: bigint;
  nativeUsd: bigint;
}): BidEconomics {
  const { quote, mark, quotePrice, quoteUnit } = args;
  const slice = (mark * quote.filled) / WAD;
  // An insolvent book is taken for nothing: its quoted payment is the deficit (in `slice`) less the payout.
  const paid = mark > 0n ? quote.payment : 0n;
  const discount = slice - paid * quoteUnit + quote.insurancePayout * quoteUnit;
  const toUsd = (x: bigint): bigint => (x * quotePrice) / WAD;
  const discountUsd = toUsd(discount);
  const closeCostUsd = toUsd(args.closeCost);
  const gasUsd = gasCostUsd(args.gasUnits, args.gasPriceWei, args.nativeUsd, args.l1FeeWei);
  return { discountUsd, closeCostUsd, gasUsd, netUsd: discountUsd - closeCostUsd - gasUsd };
}

/**
 * Gas cost in USD WAD: (units·price + the L1 data fee, wei) · native price (USD WAD per 1e18 wei),
 * rounded up.
 */
export function gasCostUsd(gasUnits: bigint, gasPriceWei: bigint, nativeUsd: bigint, l1FeeWei = 0n): bigint {
  const wei = gasUnits * gasPriceWei + l1FeeWei;
  return (wei * nativeUsd + WAD - 1n) / WAD;
}

/** Bid only when the net result (after closing costs and gas) reaches the keeper's minimum. */
export function isBidProfitable(economics: BidEconomics, minProfitUsd: bigint): boolean {
  return economics.netUsd > 0n && economics.netUsd >= minProfitUsd;
}

/**
 * The deficit (quote units) an auction should record for an account whose book is worth `mark` in the
 * quote token (quote WAD: its equity at mark with the collateral counted in quote,
 * `ICollateralVault.markInQuote`): −mark rounded up, 0 while solvent — what
 * `LiquidationAuction.updateDeficit` would write.
 */
export function deficitOf(mark: bigint, quoteUnit: bigint): bigint {
  return mark < 0n ? (-mark + quoteUnit - 1n) / quoteUnit : 0n;
}

/**
 * An account's book counted in the quote token (quote WAD), as the auction values it for payments and
 * deficits: its equity at mark (USD WAD) with the collateral's USD mark `usdMark` replaced by the same
 * collateral counted in quote, `inQuote` (both from `ICollateralVault.markInQuote`); positions settle
 * in quote 1:1.
 */
export function bookInQuote(equityMark: bigint, inQuote: bigint, usdMark: bigint): bigint {
  return equityMark - usdMark + inQuote;
}

/** A perp market as the funding stage reads it (`PerpMarket.market`). */
export interface FundingState {
  marketId: bigint;
  lastFundingTime: bigint;
  /** Long plus short open interest. */
  openInterest: bigint;
  /** The funding rate at `lastFundingTime` (> 0: longs pay). */
  fundingRate: bigint;
  /** Whether the rate moves: a funding velocity and a skew without the backstop's position. */
  rateMoving: boolean;
}

/**
 * The perp markets whose funding to accrue now: open interest on either side, and funding last accrued
 * `interval` seconds ago or more. `accrueFunding` prices the whole stretch since the last accrual at
 * the spot of whoever calls it, so a payer could wait for a dip to accrue days of funding
 * (docs/reliability.md §4, row 52); a keeper accruing every `interval` bounds the stretch. A market
 * whose rate is 0 and does not move accrues nothing, and is left alone.
 */
export function staleFundingMarkets(
  markets: readonly FundingState[],
  now: bigint,
  interval: bigint,
): bigint[] {
  return markets
    .filter(
      (m) =>
        m.openInterest > 0n && (m.fundingRate !== 0n || m.rateMoving) && now - m.lastFundingTime >= interval,
    )
    .map((m) => m.marketId);
}

/**
 * Whether an auction's recorded deficit is worth raising (it feeds the LP share price; `updateDeficit`
 * only raises it): the deficit now exceeds the record by more than 1%, so a keeper does not pay a
 * transaction per block for dust.
 */
export function isDeficitStale(recorded: bigint, current: bigint): boolean {
  return current > recorded && (current - recorded) * 100n > current;
}

/** The payment limit sent with a bid: the quote plus `slippageBps`, so a later block cannot overcharge. */
export function maxPaymentFor(payment: bigint, slippageBps: bigint): bigint {
  return payment + (payment * slippageBps + 9_999n) / 10_000n;
}

export interface FeeQuote {
  /** Latest block's base fee (EIP-1559 chains). */
  baseFeePerGas: bigint | null;
  maxPriorityFeePerGas: bigint | null;
  /** eth_gasPrice (legacy chains). */
  gasPrice: bigint | null;
}

export type TxFees =
  | { type: 2; maxFeePerGas: bigint; maxPriorityFeePerGas: bigint; expectedPrice: bigint }
  | { type: 0; gasPrice: bigint; expectedPrice: bigint };

/**
 * Fees for the next transaction under the keeper's cap, or null when the chain is above the cap (the
 * keeper waits rather than overpay). EIP-1559: maxFee = min(2·base + tip, cap), the tip trimmed to
 * fit; the expected price (for profit checks) is base + tip.
 */
export function chooseFees(quote: FeeQuote, capWei: bigint): TxFees | null {
  if (quote.baseFeePerGas !== null) {
    const base = quote.baseFeePerGas;
    if (base > capWei) return null;
    const tip = min(quote.maxPriorityFeePerGas ?? 10n ** 9n, capWei - base);
    const maxFeePerGas = min(2n * base + tip, capWei);
    return { type: 2, maxFeePerGas, maxPriorityFeePerGas: tip, expectedPrice: base + tip };
  }
  if (quote.gasPrice === null) return null;
  if (quote.gasPrice > capWei) return null;
  return { type: 0, gasPrice: quote.gasPrice, expectedPrice: quote.gasPrice };
}

/** 9/8 of a fee, rounded up: above the +10% nodes want of a replacement (`replacementFees`). */
const bump = (x: bigint): bigint => (x * 9n + 7n) / 8n;

/**
 * Fees for a transaction that replaces one of ours still waiting in the mempool at the same nonce (sent
 * at `previous`, no receipt: the base fee rose past its max fee, say). Nodes take a replacement only when
 * it raises both the max fee and the tip (or the gas price) by at least 10% (geth's price bump, Hardhat's
 * too), so each is the larger of today's and 9/8 of the previous one, rounded up. Null when that is above
 * the cap: then nothing of ours can be mined before the waiting one, whatever is sent.
 */
export function replacementFees(current: TxFees, previous: TxFees, capWei: bigint): TxFees | null {
  if (current.type === 2 && previous.type === 2) {
    const tip = max(current.maxPriorityFeePerGas, bump(previous.maxPriorityFeePerGas));
    const maxFeePerGas = max(current.maxFeePerGas, bump(previous.maxFeePerGas));
    if (maxFeePerGas > capWei) return null;
    const base = current.expectedPrice - current.maxPriorityFeePerGas;
    return { type: 2, maxFeePerGas, maxPriorityFeePerGas: tip, expectedPrice: min(maxFeePerGas, base + tip) };
  }
  if (current.type === 0 && previous.type === 0) {
    const gasPrice = max(current.gasPrice, bump(previous.gasPrice));
    return gasPrice > capWei ? null : { type: 0, gasPrice, expectedPrice: gasPrice };
  }
  return current;
}

/**
 * Fees for a transaction that replaces one waiting at its nonce whose fees are not known: one an earlier
 * run left (`refused` null: assume today's), or one whose last replacement the node refused as
 * underpriced at `refused` (its fees are above those). 9/8 of that, at least today's; the cap where that
 * is above it, since the waiting one may well be below the cap (review round 67, row 160: a guess at
 * today's max fee, clamped to the cap while the base fee is above half of it, sent nothing). Null only
 * once an offer at the cap was refused.
 */
export function replacementFeesForUnknown(
  current: TxFees,
  refused: TxFees | null,
  capWei: bigint,
): TxFees | null {
  const previous = refused ?? current;
  const bumped = replacementFees(current, previous, capWei);
  if (bumped !== null) return bumped;
  if (refused !== null && (refused.type === 2 ? refused.maxFeePerGas : refused.gasPrice) >= capWei)
    return null;
  if (current.type === 2 && previous.type === 2) {
    const tip = min(max(current.maxPriorityFeePerGas, bump(previous.maxPriorityFeePerGas)), capWei);
    const base = current.expectedPrice - current.maxPriorityFeePerGas;
    return {
      type: 2,
      maxFeePerGas: capWei,
      maxPriorityFeePerGas: tip,
      expectedPrice: min(capWei, base + tip),
    };
  }
  return { type: 0, gasPrice: capWei, expectedPrice: capWei };
}

export interface BlockRef {
  number: number;
  hash: string;
}

/**
 * Whether the node still serves the chain on which the keeper saw `anchor`: `hashNow` is the hash the
 * node reports at that height (null when it is below it). A different or missing hash means that chain
 * is gone (a restarted dev node, a deep reorg), and every cached fact must be rebuilt.
 */
export function isSameChain(anchor: BlockRef, hashNow: string | null): boolean {
  return hashNow !== null && hashNow === anchor.hash;
}

/**
 * Accounts per health batch from now on. After a batch of `timedOut` accounts timed out (the smallest
 * such) and a smaller one answered, half of it, as the split that answered: every retry of a batch the
 * endpoint cannot answer in time costs the HTTP timeout (5 attempts × 10 s in runKeeper), so sending the
 * configured size again would cost that on every pass. After `growAfter` passes without a timeout,
 * twice the current size, up to `configured` (the endpoint's load may have passed).
 */
export function nextHealthBatch(args: {
  current: number;
  configured: number;
  timedOut: number | null;
  cleanPasses: number;
  growAfter: number;
}): number {
  const { current, configured, timedOut, cleanPasses, growAfter } = args;
  if (timedOut !== null) return Math.max(1, Math.min(current, Math.ceil(timedOut / 2)));
  if (cleanPasses > 0 && cleanPasses % growAfter === 0) return Math.min(configured, current * 2);
  return current;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  if (size < 1) throw new Error("chunk size must be positive");
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** One item of a batched read: its result, or the error a call of the item alone still fails with. */
export type ItemOutcome<T, R> = { ok: true; item: T; result: R } | { ok: false; item: T; error: unknown };

/**
 * `call` over `items` in batches of at most `size`, one outcome per item, in order. A batch that fails
 * is halved until the failing items stand alone: the node refused it for gas (a few heavy accounts: an
 * option book repriced in every scenario costs up to ~3M gas of health), or one item reverts and takes
 * the whole call with it (one account holding an asset whose feed is stale makes `healthMany` revert).
 * An item that still fails alone is returned with its error; every other item gets its result, so one
 * bad item never hides the rest. Errors `isFatal` accepts (transport failures, which say nothing about
 * the items) propagate at once, unsplit, unless `split` accepts them too (a timeout: the batch is halved,
 * and an item that still times out alone propagates it).
 *
 * Cost: one call per batch when nothing fails; each failing item adds about 2·log2(size) calls; a batch
 * whose every item fails (a stale feed every account depends on) costs 2·size − 1 calls. With
 * `bisect: false` a failing batch fails all of its items (one call per batch, for items already known to
 * fail); a function decides by the batch's error (halve only when it is not the one the items are known
 * to fail with). `size` may be a function, read before each batch: the keeper lowers its health batch when one
 * times out, and the rest of the same pass then goes out at the lowered size (review round 57: a
 * thousand accounts in batches of 100 on an endpoint answering 40 cost 30 timeouts in the first pass,
 * three per batch, ~50 s each in runKeeper; now 3).
 */
export async function inBatchesIsolatingFailures<T, R>(
  items: readonly T[],
  size: number | (() => number),
  call: (batch: T[]) => Promise<R[]>,
  isFatal: (error: unknown) => boolean,
  {
    bisect = true,
    split,
  }: { bisect?: boolean | ((error: unknown) => boolean); split?: (error: unknown) => boolean } = {},
): Promise<ItemOutcome<T, R>[]> {
  const out: ItemOutcome<T, R>[] = [];
  const run = async (batch: T[]): Promise<void> => {
    let results: R[];
    try {
      results = await call(batch);
    } catch (error) {
      const halves = typeof bisect === "function" ? bisect(error) : bisect;
      // `split`: a fatal error that a smaller batch may not meet (an HTTP timeout on a heavy batch).
      if (isFatal(error) && !(halves && batch.length > 1 && split?.(error))) throw error;
      if (batch.length === 1 || !halves) {
        for (const item of batch) out.push({ ok: false, item, error });
        return;
      }
      const half = Math.ceil(batch.length / 2);
      await run(batch.slice(0, half));
      await run(batch.slice(half));
      return;
    }
    if (results.length !== batch.length) {
      throw new Error(`batched read returned ${results.length} results for ${batch.length} items`);
    }
    results.forEach((result, i) => out.push({ ok: true, item: batch[i], result }));
  };
  for (let start = 0; start < items.length; ) {
    const n = typeof size === "function" ? size() : size;
    if (!Number.isInteger(n) || n < 1) throw new Error("chunk size must be positive");
    await run(items.slice(start, start + n));
    start += n;
  }
  return out;
}

/** Block ranges [from, to] of at most `span` blocks covering from..to (eth_getLogs limits). */
export function blockRanges(from: number, to: number, span: number): [number, number][] {
  const out: [number, number][] = [];
  for (let start = from; start <= to; start += span) out.push([start, Math.min(to, start + span - 1)]);
  return out;
}

/**
 * Option settlement's round search, shared with the SDK (one search: a UI and the keeper name the same
 * round): see `sdk/src/actions/internal/settlementRound.ts`.
 */
export { findSettlementRound } from "../../sdk/src/actions/internal/settlementRound";

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

/** Smallest backstop unwind worth a transaction, USD WAD of notional (dust leans are left alone). */
export const MIN_UNWIND_NOTIONAL = 1_000n * WAD;

/**
 * The backstop's unwind in one perp market (`LiquidationAuction.unwindBackstop`): the reduction that
 * takes its position out of the skew as far as the skew leans its way, and no further. Such a trade
 * fills better than the oracle (the skew shrinks), so it costs the LPs nothing beyond the fee's
 * insurance share; past a flat skew it would pay a premium. 0 when the skew leans the other way.
 */
export function backstopUnwindSize(position: bigint, skew: bigint): bigint {
  if (position === 0n || skew === 0n || position > 0n !== skew > 0n) return 0n;
  const abs = (x: bigint) => (x < 0n ? -x : x);
  const size = abs(position) < abs(skew) ? abs(position) : abs(skew);
  return position > 0n ? -size : size;
}

/** Whether an unwind of `sizeDelta` at `price` clears MIN_UNWIND_NOTIONAL. */
export function isUnwindWorthSending(sizeDelta: bigint, price: bigint): boolean {
  const size = sizeDelta < 0n ? -sizeDelta : sizeDelta;
  return (size * price) / WAD >= MIN_UNWIND_NOTIONAL;
}

/**
 * The flag reward `startAuction` would pay now (quote units), as `LiquidationAuction` computes it: the
 * auction's `flagReward` capped at the book's mark in quote (`markQuote`, quote WAD, rounded down), 0 for
 * an insolvent book, and 0 within `cooldown` seconds of the account's last auction ending (`endedAt`, 0
 * if none has). Also capped by the vault's quote liquidity on chain, which only lowers it.
 */
export function expectedFlagReward(args: {
  flagReward: bigint;
  markQuote: bigint;
  quoteUnit: bigint;
  now: bigint;
  endedAt: bigint;
  cooldown: bigint;
}): bigint {
  const { flagReward, markQuote, quoteUnit, now, endedAt, cooldown } = args;
  if (markQuote <= 0n) return 0n;
  if (endedAt !== 0n && now < endedAt + cooldown) return 0n;
  const equity = markQuote / quoteUnit;
  return equity < flagReward ? equity : flagReward;
}

/**
 * Whether an account below maintenance has lost more than half its maintenance requirement's margin:
 * equity_MM < MM/2. Such an account is not hovering at its line (row 146: a restart within the flag
 * reward's cooldown pays nothing, and is not sent for one that is) but falling, as in a crash's next
 * leg (review round 137); like an insolvent book's, its start is worth what it protects, about its MM.
 */
export function isFarBelowMaintenance(
  h: Pick<HealthLike, "equityMaintenance" | "maintenanceRequirement">,
): boolean {
  return h.equityMaintenance < h.maintenanceRequirement / 2n;
}

/**
 * Whether an account matters on its own (review round 60): its maintenance requirement, about the loss
 * of one shock on its book, is at least `minStakeUsd`. Such an account is always auctioned, and before
 * any account that does not, whatever a start costs or pays.
 */
export function isMaterial(h: Pick<HealthLike, "maintenanceRequirement">, minStakeUsd: bigint): boolean {
  return h.maintenanceRequirement >= minStakeUsd;
}

/**
 * Whether to send `startAuction` for a liquidatable account (review round 60): always for a material one
 * (`isMaterial`); for any other, only when the flag reward pays for the start's gas counted twice, as
 * an auction the keeper starts and nobody bids on costs an `absorb` after it (no reward), of about the
 * same gas. Dust pushed under water (1 USD at maximum leverage, flag reward capped at its equity of
 * cents) is otherwise a transaction at a loss per account, ahead of the books that matter.
 */
export function isStartWorthSending(args: { material: boolean; rewardUsd: bigint; gasUsd: bigint }): boolean {
  return args.material || args.rewardUsd >= 2n * args.gasUsd;
}

/**
 * `byUrgency` with the material accounts (`isMaterial`) first: a flood of dust under water, each closer
 * to insolvency than a large book, cannot make the large book wait behind one transaction per dust
 * account (review round 60). Among themselves, each group keeps the urgency order.
 */
export function byStakeThenUrgency<T, H extends Requirement>(
  accounts: readonly (readonly [T, H])[],
  minStakeUsd: bigint,
): [T, H][] {
  const sorted = byUrgency(accounts);
  return [
    ...sorted.filter(([, h]) => isMaterial(h, minStakeUsd)),
    ...sorted.filter(([, h]) => !isMaterial(h, minStakeUsd)),
  ];
}

/**
 * Whether to send `updateDeficit` (review round 60): the deficit is stale (`isDeficitStale`, more than
 * 1% above the record) and the rise is worth the transaction's gas. A dust book a few cents under water
 * moves by more than 1% with every tick of its price; recording each tick cost a transaction per pass
 * for cents of LP share price.
 */
export function isDeficitWorthRecording(args: {
  recorded: bigint;
  current: bigint;
  /** The rise (current − recorded) in USD WAD. */
  riseUsd: bigint;
  gasUsd: bigint;
}): boolean {
  return isDeficitStale(args.recorded, args.current) && args.riseUsd >= args.gasUsd;
}

/** Open interest, or positions summed by side, in contracts (WAD). */
export interface Sides {
  long: bigint;
  short: bigint;
}

/** The positions of a payout batch (signed sizes) summed by side: what paying them takes off open interest. */
export function sidesOf(sizes: readonly bigint[]): Sides {
  let long = 0n;
  let short = 0n;
  for (const size of sizes) {
    if (size > 0n) long += size;
    else short -= size;
  }
  return { long, short };
}

/**
 * Whether open interest fell from `read` to `pending` by at least `batch` on both sides: what a rival's
 * payout of the batch does. A holder settling their own position (or a bid paying out a liquidated one)
 * moves it by one position only: read as a rival's payout, it skipped the batch's other holders for the
 * pass, every batch of the series in turn (review round 128).
 */
export function paidOutBy(read: Sides, pending: Sides, batch: Sides): boolean {
  return read.long - pending.long >= batch.long && read.short - pending.short >= batch.short;
}
