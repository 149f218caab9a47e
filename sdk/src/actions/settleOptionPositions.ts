import type { BlockTag, ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { isXMarginError, makeXMarginError } from "../errors";
import { settlementPayoutAt } from "../markets/option";
import {
  type PaidOptionSettlementPosition,
  type OptionSettlement,
  getOptionSettlement,
} from "./getOptionSettlement";
import {
  blockAt,
  errorContext,
  eventsOf,
  optionMarketOf,
  quoteUnit,
  read,
  requireSigner,
  send,
} from "./internal/chain";
import { paddedGas } from "./internal/gas";
import { type SeriesSettledEvent, requirePrice, sendSettleSeries } from "./internal/settlement";

/** Parameters of `quoteSettleOptionPositions`. */
export interface QuoteSettleOptionPositionsParameters {
  seriesId: bigint;
  /** Accounts whose positions to settle (anyone's: the payouts go to and from the accounts themselves). */
  accountIds: readonly bigint[];
  blockTag?: BlockTag;
}

/** What settling positions in a series pays, before anything is sent. */
export interface SettleOptionPositionsQuote {
  /** The series' settlement: its price is known ("provable": `settleSeries` is sent first; or "settled"). */
  settlement: Extract<OptionSettlement, { status: "provable" | "settled" }>;
  /** The accounts holding a position, in the order given, with what each is paid (quote units). */
  positions: PaidOptionSettlementPosition[];
  /** The accounts without a position (none, or already paid out): `settleAccounts` skips them. */
  empty: bigint[];
}

/**
 * The preview of `settleOptionPositions`: per account, its position and the quote units settlement pays
 * it (> 0) or takes from it (< 0), as `settleAccounts` will, all read at one block. Throws where the
 * send would be refused: XMarginError "UnknownSeries", "SeriesNotExpired" before expiry,
 * SettlementPendingError while no round proves a price.
 * @example
 * const q = await quoteSettleOptionPositions(client, { seriesId, accountIds: [accountId] });
 * console.log(q.positions.map((p) => formatFixed(p.payout, 6, 2)));
 */
export async function quoteSettleOptionPositions(
  client: XMarginClient,
  params: QuoteSettleOptionPositionsParameters,
): Promise<SettleOptionPositionsQuote> {
  if (params.accountIds.length === 0) throw new RangeError("settleOptionPositions: no account given");
  const market = optionMarketOf(client);
  const block = await read(client, () => blockAt(client, params.blockTag));
  const at = { blockTag: block.number };
  const [settlement, sizes, unit] = await Promise.all([
    getOptionSettlement(client, { seriesId: params.seriesId, blockTag: block.number }),
    read(client, () =>
      Promise.all(params.accountIds.map((id) => market.positionSize(id, params.seriesId, at))),
    ),
    quoteUnit(client),
  ]);
  const priced = requirePrice(client, settlement);
  const positions: PaidOptionSettlementPosition[] = [];
  const empty: bigint[] = [];
  params.accountIds.forEach((accountId, i) => {
    const size = sizes[i];
    if (size === 0n) empty.push(accountId);
    else
      positions.push({
        accountId,
        size,
        payout: settlementPayoutAt(priced.series, priced.price, size, unit),
      });
  });
  return { settlement: priced, positions, empty };
}

/** Parameters of `settleOptionPositions`. */
export type SettleOptionPositionsParameters = Omit<QuoteSettleOptionPositionsParameters, "blockTag">;

/** Positions settled, from the PositionSettled events. */
export interface SettleOptionPositionsReturnType {
  /** The series' settlement this action sent first, when the series was not settled yet. */
  series?: SeriesSettledEvent;
  /** The `settleAccounts` transaction. */
  receipt: ContractTransactionReceipt;
  /** Each position paid out: contracts, and quote units paid to (> 0) or taken from (< 0) the account. */
  settled: PaidOptionSettlementPosition[];
}

/**
 * Settles the positions of `accountIds` in an expired series (`OptionMarket.settleAccounts`; anyone may,
 * for any account): each is paid |size| × intrinsic value at the settlement price from the pool, or pays
 * it, and the position is removed. When no one has recorded the price yet but a round proves it, it first
 * sends `settleSeries` at that round (two transactions; a keeper's settlement in between is taken as
 * is). Both are sent with the estimate's padded gas limit. Refused before anything is sent, with
 * `quoteSettleOptionPositions`' errors, and XMarginError "NoPosition" (the first account's) when none of
 * the accounts holds a position, already paid out included.
 * @example
 * const { settled } = await settleOptionPositions(client, { seriesId, accountIds: [accountId] });
 */
export async function settleOptionPositions(
  client: XMarginClient,
  params: SettleOptionPositionsParameters,
): Promise<SettleOptionPositionsReturnType> {
  const market = optionMarketOf(client);
  requireSigner(client);
  const q = await quoteSettleOptionPositions(client, params);
  if (q.positions.length === 0)
    throw makeXMarginError("NoPosition", [params.accountIds[0], params.seriesId], errorContext(client));
  let series: SeriesSettledEvent | undefined;
  if (q.settlement.status === "provable") {
    try {
      series = await sendSettleSeries(client, params.seriesId, q.settlement.roundId);
    } catch (error) {
      // Settled by someone else since the read (the keeper): at the same round, so the same payouts.
      if (!isXMarginError(error, "SeriesAlreadySettled")) throw error;
    }
  }
  const holders = q.positions.map((p) => p.accountId);
  const receipt = await send(client, async () =>
    market.settleAccounts(
      holders,
      params.seriesId,
      await paddedGas(() => market.settleAccounts.estimateGas(holders, params.seriesId)),
    ),
  );
  const unit = await quoteUnit(client);
  const settled = eventsOf(receipt, market.interface, "PositionSettled", String(market.target)).map((e) => ({
    accountId: e.args.accountId as bigint,
    size: e.args.size as bigint,
    payout: (e.args.payout as bigint) / unit, // the event's USD WAD: exactly the quote units moved × unit
  }));
  return { series, receipt, settled };
}
