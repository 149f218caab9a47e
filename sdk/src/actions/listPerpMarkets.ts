import { type BlockTag, decodeBytes32String } from "ethers";
import type { XMarginClient } from "../client";
import type { PerpMarketState } from "../state";
import { latestBlockNumber, read } from "./internal/chain";
import { readerFor } from "./internal/readers";

/** A listed perp market with its underlying's name. */
export interface PerpMarketInfo extends PerpMarketState {
  /** The underlying's oracle id as text, e.g. "ETH". */
  symbol: string;
}

/**
 * Every perp market of the deployment's PerpMarket (ids 1..marketCount), with parameters and state.
 * @example
 * const eth = (await listPerpMarkets(client)).find((m) => m.symbol === "ETH");
 */
export async function listPerpMarkets(
  client: XMarginClient,
  params: { blockTag?: BlockTag } = {},
): Promise<PerpMarketInfo[]> {
  const perps = client.contracts.perpMarket;
  return read(client, async () => {
    const blockTag = params.blockTag ?? (await latestBlockNumber(client));
    const count = await perps.marketCount({ blockTag });
    const reader = readerFor(client, client.deployment.contracts.perpMarket);
    const ids = Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1));
    return Promise.all(
      ids.map(async (marketId) => {
        const state = (await reader.readMarket(client, marketId, blockTag)) as PerpMarketState;
        let symbol: string;
        try {
          symbol = decodeBytes32String(state.underlying);
        } catch {
          symbol = state.underlying;
        }
        return { ...state, symbol };
      }),
    );
  });
}
