import { type BlockTag, decodeBytes32String } from "ethers";
import type { XMarginClient } from "../client";
import { type SeriesStatus, seriesStatus } from "../markets/option";
import type { OptionMarketState } from "../state";
import { blockAt, optionMarketOf, read } from "./internal/chain";
import { readerFor } from "./internal/readers";

/** An option series with its underlying's name and where it is in its life. */
export interface OptionSeriesInfo extends OptionMarketState {
  /** The underlying's oracle id as text, e.g. "ETH". */
  symbol: string;
  /** `active` (tradable), `expired` (awaiting settlement) or `settled`, at the block read. */
  status: SeriesStatus;
}

/** Parameters of `getOptionSeries`. */
export interface GetOptionSeriesParameters {
  seriesId: bigint;
  blockTag?: BlockTag;
}

/**
 * One option series: terms, skew, open interest, parameters and settlement state (`settled`,
 * `settlementPrice`, and `status` at the block read). Throws MissingContractError without an
 * OptionMarket in the deployment, XMarginError "UnknownSeries" for an id never listed.
 * @example
 * const s = await getOptionSeries(client, { seriesId: 1n });
 * if (s.status === "settled") console.log("settled at", formatUsd(s.settlementPrice));
 */
export async function getOptionSeries(
  client: XMarginClient,
  params: GetOptionSeriesParameters,
): Promise<OptionSeriesInfo> {
  const market = optionMarketOf(client);
  return read(client, async () => {
    const block = await blockAt(client, params.blockTag);
    const state = (await readerFor(client, await market.getAddress()).readMarket(
      client,
      params.seriesId,
      block.number,
    )) as OptionMarketState;
    return describeSeries(state, block.timestamp);
  });
}

/** Adds the symbol and status to a series' state. */
export function describeSeries(state: OptionMarketState, timestamp: bigint): OptionSeriesInfo {
  let symbol: string;
  try {
    symbol = decodeBytes32String(state.underlying);
  } catch {
    symbol = state.underlying;
  }
  return { ...state, symbol, status: seriesStatus(state, timestamp) };
}
