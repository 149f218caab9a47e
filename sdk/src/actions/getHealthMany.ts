import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import type { Health } from "../state";
import { read } from "./internal/chain";
import { toPlainHealth } from "./getHealth";

/** Parameters of `getHealthMany`. */
export interface GetHealthManyParameters {
  accountIds: readonly bigint[];
  blockTag?: BlockTag;
  /**
   * Accounts per `healthMany` call (default: all in one call). Split when a node's eth_call gas cap is
   * below what the batch needs (about 20k gas per collateral and 40k per position).
   */
  chunkSize?: number;
  /** Gas for each eth_call (nodes default to their cap, often the block gas limit). */
  gasLimit?: bigint;
}

/**
 * The health of many accounts in one `MarginEngine.healthMany` call (keepers, dashboards), in the
 * order of `accountIds`.
 * @example
 * const healths = await getHealthMany(client, { accountIds: [1n, 2n, 3n] });
 */
export async function getHealthMany(
  client: XMarginClient,
  params: GetHealthManyParameters,
): Promise<Health[]> {
  const ids = [...params.accountIds];
  const size = params.chunkSize ?? Math.max(ids.length, 1);
  if (!Number.isInteger(size) || size < 1) throw new RangeError("chunkSize must be a positive integer");
  // A block number pins every chunk to the same state.
  const blockTag = params.blockTag ?? (await client.provider.getBlockNumber());
  const chunks: bigint[][] = [];
  for (let i = 0; i < ids.length; i += size) chunks.push(ids.slice(i, i + size));
  const results = await Promise.all(
    chunks.map((chunk) =>
      read(client, () =>
        client.contracts.engine.healthMany(
          chunk,
          params.gasLimit === undefined ? { blockTag } : { blockTag, gasLimit: params.gasLimit },
        ),
      ),
    ),
  );
  return results.flat().map(toPlainHealth);
}
