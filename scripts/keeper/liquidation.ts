/**
 * Liquidation I/O for the loop: the keeper's own bidder account, auction state, and the data behind a
 * bid decision (quote, closing costs, gas). The decisions themselves are in logic.ts.
 */
import { MaxUint256, type TransactionReceipt } from "ethers";
import { optionPositionsOf } from "../../sdk/src/actions/internal/gas";
import { eventsOf } from "../../sdk/src/actions/internal/chain";
import { soldMark } from "../../sdk/src/math/liquidation";
import type { Contracts } from "./chain";
import {
  WAD,
  auctionStatus,
  bidEconomics,
  bidderAccountUnfit,
  bookInQuote,
  closeCost,
  maxPaymentFor,
  optionMarkPerContract,
  sliceSize,
  type AuctionStatus,
  type BidderAccountFacts,
  type BidEconomics,
  type BidQuote,
} from "./logic";
import type { Logger } from "./log";
import { isTransientError } from "./retry";
import { succeeded, type SendResult, type TxRequest, type TxSender } from "./sender";

const CROSS = 0n;
/** Accounts read before the usable one past which the keeper suggests `--account-id`. */
const SCAN_HINT_AFTER = 16n;

/**
 * The keeper's bidder account: the first of the keeper's accounts that it can bid from
 * (`logic.bidderAccountUnfit`: CROSS, no positions, not frozen, equity at mark ≥ 0), granted to the
 * auction if it is not yet (bidAndClose closes the slice with it; `setTrader`), or a new one. The
 * keeper's accounts are read one at a time in their ERC-721 enumeration order (`balanceOf`, then
 * `tokenOfOwnerByIndex`), stopping at the first that fits: its own account, created on its first start,
 * comes first unless others were sent to it before, so a restart reads one. Not `accountsOf`: anyone can
 * mint accounts to the keeper (`createAccountFor`), and past ~10,000 that single call no longer fits an
 * eth_call (review round 23). Null in a dry run when none exists yet.
 */
export async function ensureKeeperAccount(
  c: Contracts,
  sender: TxSender,
  log: Logger,
  dryRun: boolean,
  pinned: bigint | null = null,
): Promise<bigint | null> {
  const auction = await c.auction.getAddress();
  const owner = sender.address;
  const quoteToken = await c.vault.quoteToken();
  const adopt = async (id: bigint): Promise<bigint> => {
    const canTrade =
      (await c.accounts.traderAllowance(id, auction)) === MaxUint256 ||
      (await c.accounts.getApproved(id)) === auction ||
      (await c.accounts.isApprovedForAll(owner, auction));
    if (!canTrade) await grantAuction(c, sender, id, auction);
    log.info("keeper account", { accountId: id, created: false });
    return id;
  };
  // `--account-id`: one check instead of a scan whose length whoever mints accounts to the keeper sets
  // (review round 25: 300 isolated accounts minted before its first start were read on every restart).
  if (pinned !== null) {
    const owned = await c.accounts.ownerOf(pinned).then(
      (o) => o.toLowerCase() === owner.toLowerCase(),
      () => false,
    );
    const unfit = owned ? await bidderAccountUnfitness(c, pinned, quoteToken) : "not the keeper's";
    if (unfit === null) return adopt(pinned);
    log.warn("--account-id not usable; looking for another", { accountId: pinned, reason: unfit });
  }
  const count = await c.accounts.balanceOf(owner);
  for (let index = 0n; index < count; index++) {
    const id = await c.accounts.tokenOfOwnerByIndex(owner, index);
    const unfit = await bidderAccountUnfitness(c, id, quoteToken);
    if (unfit !== null) {
      log.debug("keeper account skipped", { accountId: id, reason: unfit });
      continue;
    }
    if (index >= SCAN_HINT_AFTER)
      log.warn("pass --account-id to skip this scan", { accountId: id, read: index + 1n });
    return adopt(id);
  }
  if (dryRun) {
    log.info("dry run: would create and approve a keeper account", { owner });
    return null;
  }
  const created = await sender.send("createAccount", tx(c.accounts, "createAccount", [CROSS]));
  if (created.status !== "mined") throw new Error(`could not create the keeper account: ${created.status}`);
  const event = created.receipt.logs
    .map((l) => {
      try {
        return c.accounts.interface.parseLog(l);
      } catch {
        return null;
      }
    })
    .find((e) => e?.name === "AccountCreated");
  const id = event!.args.accountId as bigint;
  await grantAuction(c, sender, id, auction);
  log.info("keeper account", { accountId: id, created: true });
  return id;
}

/** What the engine's `health` view returns. */
type EngineHealth = Awaited<ReturnType<Contracts["engine"]["health"]>>;

/**
 * Reads what `bidderAccountUnfit` needs of account `id` (one round of parallel calls) and returns its
 * verdict, with the quote balance and health it read (null when the health read reverts: a transport
 * failure is thrown instead), so that a caller can say why without reading them again.
 */
export async function readBidderAccount(
  c: Contracts,
  id: bigint,
  quoteToken: string,
): Promise<{ unfit: string | null; quoteBalance: bigint; health: EngineHealth | null }> {
  const [mode, markets, frozen, quoteBalance, health] = await Promise.all([
    c.accounts.marginMode(id),
    c.engine.accountMarkets(id),
    c.auction.isFrozen(id),
    c.vault.balanceOf(id, quoteToken),
    c.engine.health(id).then(
      (h) => h,
      (error: unknown) => {
        if (isTransientError(error)) throw error;
        return null;
      },
    ),
  ]);
  const facts: BidderAccountFacts = {
    isolated: mode !== CROSS,
    markets: markets.length,
    frozen,
    quoteBalance,
    equityMark: health?.equityMark ?? null,
    // The requirement is never negative, so a negative equity is below it too.
    belowInitial: health !== null && health.equityInitial < health.initialRequirement,
  };
  return { unfit: bidderAccountUnfit(facts), quoteBalance, health };
}

/** `readBidderAccount`'s verdict alone: why account `id` cannot bid, or null when it can. */
export async function bidderAccountUnfitness(
  c: Contracts,
  id: bigint,
  quoteToken: string,
): Promise<string | null> {
  return (await readBidderAccount(c, id, quoteToken)).unfit;
}

/**
 * Lets the auction trade the keeper's account (bidAndClose closes the slice with it): a trading grant,
 * not an ERC-721 approval, so the auction gets no custody of the account. Unlimited: the closes pay
 * fees and premiums the keeper has already priced into every bid (an account without positions between
 * bids has nothing else a trader could spend).
 */
async function grantAuction(c: Contracts, sender: TxSender, id: bigint, auction: string): Promise<void> {
  const result = await sender.send(
    "grantAuctionTrading",
    tx(c.accounts, "setTrader", [id, auction, MaxUint256]),
    {
      accountId: id,
    },
  );
  if (!succeeded(result)) {
    throw new Error(`could not let the auction trade account ${id}: ${result.status}`);
  }
}

/** Encodes a call of a typechain contract as a plain request (the sender simulates, signs and sends it). */
export function tx(
  contract: {
    interface: { encodeFunctionData(fn: string, args: readonly unknown[]): string };
    target: unknown;
  },
  fn: string,
  args: readonly unknown[],
): TxRequest {
  return { to: contract.target as string, data: contract.interface.encodeFunctionData(fn, args) };
}

/** The accounts whose AuctionStarted is in `receipt` (none without one). */
export function startedIn(c: Contracts, receipt: TransactionReceipt | null): Set<bigint> {
  if (receipt === null) return new Set();
  const events = eventsOf(receipt, c.auction.interface, "AuctionStarted", c.auction.target as string);
  return new Set(events.map((event) => event.args.accountId as bigint));
}

export async function auctionOf(c: Contracts, accountId: bigint, now: bigint): Promise<AuctionStatus> {
  const [, active] = await c.auction.auctions(accountId);
  const absorbableAt = active ? await c.auction.absorbableAt(accountId) : 0n;
  return auctionStatus({ active, absorbableAt }, now);
}

export interface BidPlan {
  request: TxRequest;
  gasUnits: bigint;
  quote: BidQuote;
  economics: BidEconomics;
}

export type BidAssessment = { plan: BidPlan } | { skip: string; detail?: Record<string, unknown> };

/** What `assessBid` asks of the sender: the bid's gas, today's fees and, on OP-stack chains, the L1 fee. */
export type BidPricing = Pick<TxSender, "estimateGas" | "fees" | "l1DataFee">;

/**
 * Everything a bid decision needs, read from the chain: what the auction would fill and charge now,
 * what closing the slice against the pool would cost (each market's quoteTrade per position: perps at
 * the oracle, options at the value the engine marks them at), the gas the
 * simulated `bidAndClose` uses (a revert here means we would lose the race or the bid is invalid), the
 * fee under the cap and the gas token's price.
 */
export async function assessBid(
  c: Contracts,
  sender: BidPricing,
  opts: {
    accountId: bigint;
    keeperAccountId: bigint;
    quoteToken: string;
    quoteUnit: bigint;
    nativeAssetId: string;
  },
): Promise<BidAssessment> {
  const { accountId } = opts;
  const [perpMarket, optionMarket] = await Promise.all([c.perps.getAddress(), c.options.getAddress()]);
  const [quoteResult, health, [inQuote, usdMark], held, auction] = await Promise.all([
    c.auction.quoteBid(accountId, WAD).then(
      (q) => ({ quote: { filled: q.filled, payment: q.payment, insurancePayout: q.insurancePayout } }),
      (error: unknown) => {
        if (isTransientError(error)) throw error;
        return { error };
      },
    ),
    c.engine.health(accountId),
    c.vault.markInQuote(accountId),
    c.engine.accountMarkets(accountId),
    c.auction.auctions(accountId),
  ]);
  // `quoteBid` refuses what `bid` refuses (an account back above its maintenance line since the
  // health pass): nothing to bid on, as a reverted simulation below.
  if ("error" in quoteResult) return { skip: "bid quote reverted", detail: { error: quoteResult.error } };
  const quote: BidQuote = quoteResult.quote;
  // Quote WAD, as PnL settles: perps and options close at 1 quote unit per USD of PnL.
  let closeCostQuote = 0n;
  for (const key of held) {
    if (key.market === optionMarket) {
      const cost = await optionCloseCost(c, accountId, key.marketId, quote.filled);
      if (cost === null) return { skip: "option series not tradable (expired, awaiting settlement)" };
      closeCostQuote += cost;
      continue;
    }
    if (key.market !== perpMarket) {
      return { skip: "account holds a market the keeper cannot price", detail: { market: key.market } };
    }
    const size = sliceSize(await c.perps.positionSize(accountId, key.marketId), quote.filled);
    if (size === 0n) continue;
    const [[fillPrice, fee], info] = await Promise.all([
      c.perps.quoteTrade(key.marketId, -size),
      c.perps.market(key.marketId),
    ]);
    const oracle = await c.router.getPrice(info.underlying);
    closeCostQuote += closeCost(size, oracle, fillPrice, fee);
  }

  // For an insolvent book the quoted payment is its deficit less the fund's payout (0 once the payout
  // covers it), so the limit also refuses a take that a further fall made dearer than the quote.
  const request = tx(c.auction, "bidAndClose", [
    accountId,
    opts.keeperAccountId,
    WAD,
    maxPaymentFor(quote.payment, 50n),
  ]);
  let gasUnits: bigint;
  try {
    gasUnits = await sender.estimateGas(request);
  } catch (error) {
    if (isTransientError(error)) throw error;
    return { skip: "bid simulation reverted", detail: { error } };
  }
  const fees = await sender.fees();
  if (fees === null) return { skip: "gas price above cap" };
  const [nativeUsd, quotePrice, l1FeeWei] = await Promise.all([
    c.router.getPrice(opts.nativeAssetId),
    c.vault.tokenValue(opts.quoteToken, WAD / opts.quoteUnit),
    sender.l1DataFee(request),
  ]);
  const economics = bidEconomics({
    quote,
    // The slice is of the book without what earlier bids paid in (LiquidationAuction._soldMark).
    mark: soldMark(bookInQuote(health.equityMark, inQuote, usdMark), auction.paidIn, opts.quoteUnit),
    quotePrice,
    quoteUnit: opts.quoteUnit,
    closeCost: closeCostQuote,
    gasUnits,
    gasPriceWei: fees.expectedPrice,
    l1FeeWei,
    nativeUsd,
  });
  return { plan: { request, gasUnits, quote, economics } };
}

/**
 * What closing the `filled` slice of an option position costs: the slice is in the auction's MtM at the
 * value the engine marks it at (`exposure(...).value`, per contract), and closes at the market's quote
 * (model price ± spread) plus fee; 0 for a settled series (paid out, not moved). Null when an expired
 * series is not settled yet (bidAndClose cannot close it: the settlement strategy settles it first, then
 * the account can be bid on).
 */
async function optionCloseCost(
  c: Contracts,
  accountId: bigint,
  seriesId: bigint,
  filled: bigint,
): Promise<bigint | null> {
  const held = await c.options.positionSize(accountId, seriesId);
  const size = sliceSize(held, filled);
  if (size === 0n) return 0n;
  const info = await c.options.series(seriesId);
  // Settled: the slice does not move it, `transferPosition` pays the account's whole position out into
  // its quote balance (in the mark already), so there is nothing to close. `quoteTrade` refuses a settled
  // series, and read as "awaiting settlement" it skipped every holder's bid in the pass that settled the
  // series, until after that pass's payouts (review round 64).
  if (info.settled) return 0n;
  const [spot, volatility] = await Promise.all([
    c.router.getPrice(info.underlying),
    c.router.getVolatility(info.underlying),
  ]);
  let premium: bigint, fee: bigint;
  try {
    [premium, fee] = await c.options.quoteTrade(seriesId, -size);
  } catch (error) {
    if (isTransientError(error)) throw error;
    return null;
  }
  const { value } = await c.options.exposure(accountId, seriesId, spot, volatility);
  return closeCost(size, optionMarkPerContract(value, held), premium, fee);
}

export type { SendResult };

/**
 * The option positions `accountIds` hold together (`engine.accountMarkets` at the latest block, markets
 * of the deployment's `optionMarket`; 0 without one): what the margin checks of a send on those books
 * may reprice when a volatility round lands between its estimate and its block (TxSender.send's
 * `repricedOptions`, review round 164).
 */
export async function optionsHeld(
  c: Contracts,
  optionMarket: string | null | undefined,
  accountIds: readonly bigint[],
): Promise<number> {
  return (await optionPositionsOf(c.engine, optionMarket, accountIds)).length;
}
