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
 * quote and a deadline. Closing reduces risk: it is allowed while paused or frozen. After expiry a
 * position cannot be traded: it is paid at settlement.
 * @example
 * await closeOption(client, { accountId, seriesId: 1n });
 */
export function closeOption(
  client: XMarginClient,
  params: CloseOptionParameters,
): Promise<OptionTradeReturnType> {
  return sendOptionTrade(client, params.accountId, params.seriesId, "close", params);
}
