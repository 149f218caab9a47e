import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import { read } from "./internal/chain";
import { limitPriceFor } from "./internal/trade";

/** Parameters of `quoteTrade`. */
export interface QuoteTradeParameters {
  marketId: bigint;
  /** > 0 buy, < 0 sell (underlying units, WAD). */
  sizeDelta: bigint;
  /** Slippage for the returned limit price, basis points (default 50). */
  slippageBps?: number;
  blockTag?: BlockTag;
}

/** The market's quote. */
export interface QuoteTradeReturnType {
  /** Fill price with the skew premium (WAD). */
  fillPrice: bigint;
  /** Fee, USD WAD (exactly the quote units charged). */
  fee: bigint;
  /** The fill moved by the slippage against the trader: the limit to send with the trade. */
  limitPrice: bigint;
}

/**
 * What trading `sizeDelta` now costs (`PerpMarket.quoteTrade`, one call), with a limit price for it.
 * Ignores caps and margin; `preview` checks those.
 * @example
 * const q = await quoteTrade(client, { marketId: 1n, sizeDelta: parseEther("2") });
 */
export async function quoteTrade(
  client: XMarginClient,
  params: QuoteTradeParameters,
): Promise<QuoteTradeReturnType> {
  const [fillPrice, fee] = await read(client, () =>
    client.contracts.perpMarket.quoteTrade(params.marketId, params.sizeDelta, {
      blockTag: params.blockTag ?? "latest",
    }),
  );
  return { fillPrice, fee, limitPrice: limitPriceFor(fillPrice, params.sizeDelta, params.slippageBps) };
}
