import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import { type SimulationResult, preview } from "../preview";
import { blockAt, optionMarketOf, read } from "./internal/chain";
import { optionLimitBase } from "./internal/optionLimit";
import { limitPriceFor } from "./internal/trade";

/** Parameters of `quoteOption`. */
export interface QuoteOptionParameters {
  seriesId: bigint;
  /** Contracts: > 0 buy, < 0 sell (WAD). */
  sizeDelta: bigint;
  /** Slippage for the returned limit price, basis points (default 50). */
  slippageBps?: number;
  /** With an account, the quote also previews the account's health after the trade. */
  accountId?: bigint;
  blockTag?: BlockTag;
}

/** An option quote. */
export interface QuoteOptionReturnType {
  /** Premium per contract (USD WAD): model price (feed volatility + the series' skew) ± k·vega. */
  premium: bigint;
  /** Fee, USD WAD (exactly the quote units charged). */
  fee: bigint;
  /**
   * The limit to send with the trade (USD WAD per contract): the premium moved by the slippage against the
   * trader; a sale's from the premium a block (12 s) later if time decay alone lowers it.
   */
  limitPrice: bigint;
  /** With `accountId`: the preview of the trade (health after it, the revert the chain would raise). */
  preview?: SimulationResult;
}

/**
 * What trading `sizeDelta` contracts of a series costs now (`OptionMarket.quoteTrade`): premium per
 * contract with the vega spread and the series' skew, the fee, a limit price `slippageBps` worse, and —
 * given `accountId` — the account's health after the trade (`preview`, at the same block). Throws
 * MissingContractError without an OptionMarket; XMarginError "SeriesExpired" past expiry.
 * @example
 * const q = await quoteOption(client, { seriesId: 1n, sizeDelta: parseEther("2"), accountId });
 * console.log(formatUsd(q.premium), q.preview?.health.healthRatio, q.preview?.revert?.message);
 */
export async function quoteOption(
  client: XMarginClient,
  params: QuoteOptionParameters,
): Promise<QuoteOptionReturnType> {
  const market = optionMarketOf(client);
  const block = await read(client, () => blockAt(client, params.blockTag));
  const blockTag = block.number;
  const [[premium, fee], simulated] = await Promise.all([
    read(client, () => market.quoteTrade(params.seriesId, params.sizeDelta, { blockTag })),
    params.accountId === undefined
      ? Promise.resolve(undefined)
      : preview(
          client,
          params.accountId,
          { type: "optionTrade", seriesId: params.seriesId, sizeDelta: params.sizeDelta },
          { blockTag },
        ),
  ]);
  const limitBase = await read(client, () =>
    optionLimitBase(client, params.seriesId, params.sizeDelta, premium, block),
  );
  return {
    premium,
    fee,
    limitPrice: limitPriceFor(limitBase, params.sizeDelta, params.slippageBps),
    preview: simulated,
  };
}
