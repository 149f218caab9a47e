import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import type { OptionMarketState } from "../state";
import { type OptionSeriesInfo, describeSeries } from "./getOptionSeries";
import { blockAt, optionMarketOf, read } from "./internal/chain";
import { readerFor } from "./internal/readers";

/** Parameters of `listOptionSeries`. */
export interface ListOptionSeriesParameters {
  blockTag?: BlockTag;
  /** Which series to return by status (default: all). */
  status?: OptionSeriesInfo["status"];
}

/**
 * Every series of the deployment's OptionMarket (ids 1..seriesCount) with terms, state and status, read
 * at one block. Throws MissingContractError when the deployment has no OptionMarket.
 * @example
 * const calls = (await listOptionSeries(client, { status: "active" })).filter((s) => s.isCall);
 */
export async function listOptionSeries(
  client: XMarginClient,
  params: ListOptionSeriesParameters = {},
): Promise<OptionSeriesInfo[]> {
  const market = optionMarketOf(client);
  return read(client, async () => {
    const block = await blockAt(client, params.blockTag);
    const count = await market.seriesCount({ blockTag: block.number });
    const reader = readerFor(client, await market.getAddress());
    const ids = Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1));
    const all = await Promise.all(
      ids.map(async (seriesId) =>
        describeSeries(
          (await reader.readMarket(client, seriesId, block.number)) as OptionMarketState,
          block.timestamp,
        ),
      ),
    );
    return params.status === undefined ? all : all.filter((s) => s.status === params.status);
  });
}
