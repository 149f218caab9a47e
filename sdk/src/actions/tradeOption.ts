import type { XMarginClient } from "../client";
import { type OptionTradeReturnType, sendOptionTrade } from "./internal/optionTrade";
import type { TradeOptions } from "./internal/trade";

export type { OptionTradeReturnType } from "./internal/optionTrade";

/** Parameters of `tradeOption`. */
export interface TradeOptionParameters extends TradeOptions {
  accountId: bigint;
  seriesId: bigint;
  /** Contracts: > 0 buy, < 0 sell (WAD). */
  sizeDelta: bigint;
}

/**
 * Buys (`sizeDelta` > 0) or sells (< 0) option contracts against the pool: quotes the premium, sets the
 * limit `slippageBps` worse (a sale's from the premium a block later, after time decay; or uses
 * `limitPrice`), sends `OptionMarket.trade` with the limit and a
 * deadline, and returns the premium and fee from the OptionTraded event. Throws MissingContractError
 * without an OptionMarket, XMarginError (e.g. "PriceLimitExceeded", "InsufficientMargin",
 * "SeriesExpired") when the chain reverts.
 * @example
 * const r = await tradeOption(client, { accountId, seriesId: 1n, sizeDelta: -parseEther("1"), slippageBps: 100 });
 */
export function tradeOption(
  client: XMarginClient,
  params: TradeOptionParameters,
): Promise<OptionTradeReturnType> {
  return sendOptionTrade(client, params.accountId, params.seriesId, params.sizeDelta, params);
}
