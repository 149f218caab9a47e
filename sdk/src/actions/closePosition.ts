import type { XMarginClient } from "../client";
import { type TradeOptions, type TradeReturnType, sendTrade } from "./internal/trade";

/** Parameters of `closePosition`. */
export interface ClosePositionParameters extends TradeOptions {
  accountId: bigint;
  marketId: bigint;
}

/**
 * Closes the whole perp position (`PerpMarket.closePosition`), with a limit from the quote of the
 * opposite trade and a deadline. Closing reduces risk: it is allowed while paused or frozen.
 * @example
 * const { realizedPnl } = await closePosition(client, { accountId, marketId: 1n });
 */
export function closePosition(
  client: XMarginClient,
  params: ClosePositionParameters,
): Promise<TradeReturnType> {
  return sendTrade(client, params.accountId, params.marketId, "close", params);
}
