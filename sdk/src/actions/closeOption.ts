import type { XMarginClient } from "../client";
import { type OptionTradeReturnType, sendOptionTrade } from "./internal/optionTrade";
import type { TradeOptions } from "./internal/trade";

/** Parameters of `closeOption`. */
export interface CloseOptionParameters extends TradeOptions {
  accountId: bigint;
  seriesId: bigint;
}

/**
 * Closes the whole position in a series before expiry (trades its opposite), with a limit from the
 * quote and a deadline. Closing is allowed while paused or frozen, but a close that unwinds a hedge
 * (another position on the same underlying, say a long call next to a short put) and raises the
 * maintenance requirement reverts `RiskIncreased` unless the account meets its initial requirement
 * afterwards (never while frozen): on a book withdrawn to its maximum, close the short legs first
 * (`preview`'s `optionClose` predicts it). After expiry a position cannot be traded: it is paid at
 * settlement.
 * @example
 * await closeOption(client, { accountId, seriesId: 1n });
 */
export function closeOption(
  client: XMarginClient,
  params: CloseOptionParameters,
): Promise<OptionTradeReturnType> {
  return sendOptionTrade(client, params.accountId, params.seriesId, "close", params);
}
