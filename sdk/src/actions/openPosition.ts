import type { XMarginClient } from "../client";
import { type TradeOptions, type TradeReturnType, sendTrade } from "./internal/trade";

export type { TradeOptions, TradeReturnType } from "./internal/trade";

/** Parameters of `openPosition`. */
export interface OpenPositionParameters extends TradeOptions {
  accountId: bigint;
  marketId: bigint;
  /** Size to open or add: > 0 long, < 0 short (underlying units, WAD). */
  size: bigint;
}

/**
 * Opens (or adds to) a perp position: quotes the fill, sets the limit `slippageBps` worse, sends the
 * trade with a deadline and returns the fill from the PositionModified event. Throws XMarginError
 * (e.g. "InsufficientMargin", "PriceLimitExceeded") when the chain reverts.
 * @example
 * const fill = await openPosition(client, { accountId, marketId: 1n, size: parseEther("2"), slippageBps: 30 });
 */
export function openPosition(
  client: XMarginClient,
  params: OpenPositionParameters,
): Promise<TradeReturnType> {
  return sendTrade(client, params.accountId, params.marketId, params.size, params);
}
