import type { XMarginClient } from "../client";
import { type TradeOptions, type TradeReturnType, sendTrade } from "./internal/trade";

/** Parameters of `modifyPosition`. */
export interface ModifyPositionParameters extends TradeOptions {
  accountId: bigint;
  marketId: bigint;
  /** > 0 buys, < 0 sells: increases, reduces or flips the position. */
  sizeDelta: bigint;
}

/**
 * Trades `sizeDelta` in a perp market (any direction), with a limit from the quote and a deadline.
 * @example
 * await modifyPosition(client, { accountId, marketId: 1n, sizeDelta: -parseEther("0.5") });
 */
export function modifyPosition(
  client: XMarginClient,
  params: ModifyPositionParameters,
): Promise<TradeReturnType> {
  return sendTrade(client, params.accountId, params.marketId, params.sizeDelta, params);
}
