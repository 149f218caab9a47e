import type { XMarginClient } from "../client";
import { type TradeOptions, type TradeReturnType, sendTrade } from "./internal/trade";

/** Parameters of `closePosition`. */
export interface ClosePositionParameters extends TradeOptions {
  accountId: bigint;
  marketId: bigint;
}

/**
 * Closes the whole perp position (`PerpMarket.closePosition`), with a limit from the quote of the
 * opposite trade and a deadline. Closing is allowed while paused or frozen, but a close that unwinds a
 * hedge (another position on the same underlying) and raises the maintenance requirement reverts
 * `RiskIncreased` unless the account meets its initial requirement afterwards (never while frozen);
 * `preview`'s `close` predicts it.
 * @example
 * const { realizedPnl } = await closePosition(client, { accountId, marketId: 1n });
 */
export function closePosition(
  client: XMarginClient,
  params: ClosePositionParameters,
): Promise<TradeReturnType> {
  return sendTrade(client, params.accountId, params.marketId, "close", params);
}
