import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import { aggregatorV3 } from "../contracts";
import { intrinsicValue, settlementPayoutAt } from "../markets/option";
import type { OptionMarketState } from "../state";
import { type OptionSeriesInfo, describeSeries } from "./getOptionSeries";
import { blockAt, optionMarketOf, quoteUnit, read } from "./internal/chain";
import { readerFor } from "./internal/readers";
import { settlementRound } from "./internal/settlementRound";

/** Parameters of `getOptionSettlement`. */
export interface GetOptionSettlementParameters {
  seriesId: bigint;
  /** With an account: its position in the series and, once a price is known, its payout. */
  accountId?: bigint;
  blockTag?: BlockTag;
}

/** An account's position in a series whose settlement price is not known yet. */
export interface OptionSettlementPosition {
  accountId: bigint;
  /** Contracts (WAD; > 0 long, < 0 short, 0 none or already paid out). */
  size: bigint;
}

/** An account's position in a series whose settlement price is known, with what settlement pays it. */
export interface PaidOptionSettlementPosition extends OptionSettlementPosition {
  /**
   * Quote-token units `settleAccounts` pays the account (> 0, rounded down) or takes from it (< 0,
   * rounded up): |size| × `value` (`settlementPayoutAt`). 0 for no position.
   */
  payout: bigint;
}

/**
 * Where a series' settlement stands at the block read, by `status`:
 * - `active`: before expiry; nothing to settle (the series trades: quote it with `quoteOption`).
 * - `pending`: expired, and no round of the settlement feed proves a price yet (none at or after expiry,
 *   or the first one opens a feed phase only governance can settle on): no price, no payout.
 * - `provable`: expired, unsettled, and the round that settles it exists: `price` is what `settleSeries`
 *   records with `roundId` as its hint (anyone may send it: `settleOptionSeries`), so payouts are known.
 * - `settled`: the price is recorded; positions are paid by `settleAccounts` (`settleOptionPositions`).
 *
 * From expiry on there are no Greeks nor model price (see `optionMark`): `value` is one contract's
 * intrinsic value at the settlement price.
 */
export type OptionSettlement =
  | { status: "active"; series: OptionSeriesInfo; position?: OptionSettlementPosition }
  | { status: "pending"; series: OptionSeriesInfo; position?: OptionSettlementPosition }
  | {
      status: "provable";
      series: OptionSeriesInfo;
      /** The settlement price `settleSeries` would record (USD WAD; `OracleRouter.getSettlementPrice`). */
      price: bigint;
      /** One contract's intrinsic value at `price` (USD WAD): what a long is paid per contract. */
      value: bigint;
      /** The round that proves it: `settleSeries`' hint. */
      roundId: bigint;
      /** When that round was updated, seconds (at or after expiry, or after a feed swap). */
      updatedAt: bigint;
      /** The feed the round is on (`OracleRouter.settlementFeed`: the primary at expiry, or a successor). */
      feed: string;
      position?: PaidOptionSettlementPosition;
    }
  | {
      status: "settled";
      series: OptionSeriesInfo;
      /** The recorded settlement price (USD WAD). */
      price: bigint;
      /** One contract's intrinsic value at `price` (USD WAD). */
      value: bigint;
      position?: PaidOptionSettlementPosition;
    };

/**
 * A series' settlement (`OptionSettlement`) at one block, and with `accountId` that account's position
 * and payout: the same number of quote units `settleAccounts` pays, known from the first feed round at or
 * after expiry, before anyone sends `settleSeries`. The round is found as the keeper finds it (on the
 * feed `OracleRouter.settlementFeed` names, across a primary-feed swap: one search, shared). The preview
 * of `settleOptionSeries`. Throws MissingContractError without an OptionMarket, XMarginError
 * "UnknownSeries" for an id never listed, and the router's error (e.g. "PriceOutOfBounds",
 * "SourceUnavailable") when the settling round fails its checks: `settleSeries` would revert with it too.
 * @example
 * const s = await getOptionSettlement(client, { seriesId, accountId });
 * if (s.status === "provable" || s.status === "settled") console.log(formatUsd(s.price), s.position?.payout);
 */
export async function getOptionSettlement(
  client: XMarginClient,
  params: GetOptionSettlementParameters,
): Promise<OptionSettlement> {
  const market = optionMarketOf(client);
  return read(client, async () => {
    const block = await blockAt(client, params.blockTag);
    const at = { blockTag: block.number };
    const [state, size, unit] = await Promise.all([
      readerFor(client, await market.getAddress()).readMarket(client, params.seriesId, block.number),
      params.accountId === undefined ? undefined : market.positionSize(params.accountId, params.seriesId, at),
      quoteUnit(client),
    ]);
    const series = describeSeries(state as OptionMarketState, block.timestamp);
    const open =
      params.accountId === undefined || size === undefined
        ? undefined
        : { accountId: params.accountId, size };
    const paid = (price: bigint) =>
      open && { ...open, payout: settlementPayoutAt(series, price, open.size, unit) };
    if (series.status === "active") return { status: "active", series, position: open };
    if (series.status === "settled") {
      const price = series.settlementPrice;
      return { status: "settled", series, price, value: value(series, price), position: paid(price) };
    }
    const { oracleRouter } = client.contracts;
    const aggregatorAt = (address: string) => aggregatorV3(address, client.provider);
    const round = await settlementRound(
      oracleRouter,
      aggregatorAt,
      series.underlying,
      series.expiry,
      block.number,
    );
    if (round === null) return { status: "pending", series, position: open };
    const [price, updatedAt] = await oracleRouter.getSettlementPrice(
      series.underlying,
      series.expiry,
      round.roundId,
      false,
      at,
    );
    return {
      status: "provable",
      series,
      price,
      value: value(series, price),
      roundId: round.roundId,
      updatedAt,
      feed: round.feed,
      position: paid(price),
    };
  });
}

function value(series: OptionMarketState, price: bigint): bigint {
  return intrinsicValue(series.isCall, series.strike, price);
}
