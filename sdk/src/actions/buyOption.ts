import type { XMarginClient } from "../client";
import { type OptionTradeReturnType, sendOptionTrade } from "./internal/optionTrade";
import type { TradeOptions } from "./internal/trade";

/** Parameters of `buyOption` and `sellOption`. */
export interface OptionOrderParameters extends TradeOptions {
  accountId: bigint;
  seriesId: bigint;
  /** Contracts to buy or sell (> 0, WAD). */
  size: bigint;
}

/**
 * Buys `size` contracts (`tradeOption` with +size): pays at most the quoted premium plus `slippageBps`.
 * A `size` ≤ 0 rejects the returned promise with a RangeError, before anything is read or sent.
 * @example
 * const r = await buyOption(client, { accountId, seriesId: 1n, size: parseEther("2") });
 */
export async function buyOption(
  client: XMarginClient,
  params: OptionOrderParameters,
): Promise<OptionTradeReturnType> {
  if (params.size <= 0n) throw new RangeError("buyOption: size must be positive");
  return sendOptionTrade(client, params.accountId, params.seriesId, params.size, params);
}
