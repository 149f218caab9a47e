/** The refusals and send shared by the settlement actions. Internal: not exported from the package. */
import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../../client";
import { SettlementPendingError, makeXMarginError } from "../../errors";
import type { OptionSettlement } from "../getOptionSettlement";
import { errorContext, eventsOf, optionMarketOf, send } from "./chain";
import { paddedGas } from "./gas";

/** A settlement whose price is known: proven by a round, or recorded. */
export type PricedSettlement = Extract<OptionSettlement, { status: "provable" | "settled" }>;

/**
 * `s` when its price is known; otherwise what the chain would refuse, thrown before anything is sent:
 * XMarginError "SeriesNotExpired" before expiry, SettlementPendingError while no round proves a price.
 */
export function requirePrice(client: XMarginClient, s: OptionSettlement): PricedSettlement {
  if (s.status === "active")
    throw makeXMarginError("SeriesNotExpired", [s.series.marketId, s.series.expiry], errorContext(client));
  if (s.status === "pending") throw new SettlementPendingError(s.series.marketId, s.series.expiry);
  return s;
}

/** What `settleSeries` recorded, from its SeriesSettled event. */
export interface SeriesSettledEvent {
  receipt: ContractTransactionReceipt;
  /** The round it settled at. */
  roundId: bigint;
  /** The settlement price (USD WAD). */
  price: bigint;
  /** The round's `updatedAt`, seconds. */
  updatedAt: bigint;
}

/** Sends `settleSeries(seriesId, roundId)` with a padded gas limit and reads its SeriesSettled event. */
export async function sendSettleSeries(
  client: XMarginClient,
  seriesId: bigint,
  roundId: bigint,
): Promise<SeriesSettledEvent> {
  const market = optionMarketOf(client);
  const receipt = await send(client, async () =>
    market.settleSeries(
      seriesId,
      roundId,
      await paddedGas(() => market.settleSeries.estimateGas(seriesId, roundId)),
    ),
  );
  const [event] = eventsOf(receipt, market.interface, "SeriesSettled", String(market.target));
  if (!event) throw new Error(`settleSeries: no SeriesSettled event in ${receipt.hash}`);
  return {
    receipt,
    roundId: event.args.roundId as bigint,
    price: event.args.settlementPrice as bigint,
    updatedAt: event.args.updatedAt as bigint,
  };
}
