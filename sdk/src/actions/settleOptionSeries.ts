import type { XMarginClient } from "../client";
import { makeXMarginError } from "../errors";
import { getOptionSettlement } from "./getOptionSettlement";
import { errorContext, optionMarketOf, requireSigner } from "./internal/chain";
import { type SeriesSettledEvent, requirePrice, sendSettleSeries } from "./internal/settlement";

export type { SeriesSettledEvent } from "./internal/settlement";

/** Parameters of `settleOptionSeries`. */
export interface SettleOptionSeriesParameters {
  seriesId: bigint;
}

/**
 * Records an expired series' settlement price (`OptionMarket.settleSeries`; anyone may send it, as the
 * keeper does) at the round `getOptionSettlement` finds, its preview: the price it reports as
 * "provable" is the one recorded. Sent with the estimate's padded gas limit. Refused before anything is
 * sent: XMarginError "UnknownSeries", "SeriesNotExpired" before expiry, "SeriesAlreadySettled" once
 * settled (by the keeper, say), and SettlementPendingError while no round proves a price.
 * @returns The recorded round, price and its time, from the SeriesSettled event.
 * @example
 * const { price } = await settleOptionSeries(client, { seriesId });
 * await settleOptionPositions(client, { seriesId, accountIds: [accountId] });
 */
export async function settleOptionSeries(
  client: XMarginClient,
  params: SettleOptionSeriesParameters,
): Promise<SeriesSettledEvent> {
  optionMarketOf(client);
  requireSigner(client);
  const s = requirePrice(client, await getOptionSettlement(client, { seriesId: params.seriesId }));
  if (s.status === "settled")
    throw makeXMarginError("SeriesAlreadySettled", [params.seriesId], errorContext(client));
  return sendSettleSeries(client, params.seriesId, s.roundId);
}
