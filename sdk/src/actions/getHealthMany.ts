import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import type { Health } from "../state";
import { isXMarginError, makeXMarginError } from "../errors";
import { toHealth } from "../math/health";
import { errorContext, latestBlockNumber, read } from "./internal/chain";

/** Default accounts per healthMany call (see `GetHealthManyParameters.chunkSize`). */
export const DEFAULT_CHUNK_SIZE = 200;

/** Parameters of `getHealthMany`. */
export interface GetHealthManyParameters {
  accountIds: readonly bigint[];
  blockTag?: BlockTag;
  /**
   * Most accounts per `healthMany` call (default 200). An account with a position and a collateral
   * costs about 60k gas to evaluate, so 200 stay under the 16,777,216 gas per call that EIP-7825 (Osaka)
   * and many nodes' eth_call caps allow; longer lists are split into parallel calls at one block, and a
   * call that runs out of gas (accounts with many positions) is retried in halves. Gas per account does
   * not grow with the batch (healthMany returns its scratch memory after each account: ~62.7k at 200 and
   * at 1,000). On Hardhat's in-process chain the time is the EVM's (~2 ms of CPU per account), whatever
   * the chunk size between 50 and 500 (scripts/bench-sdk-health.ts).
   */
  chunkSize?: number;
  /** Gas for each eth_call (nodes default to their cap, often the block gas limit). */
  gasLimit?: bigint;
}

/**
 * The health of many accounts through `MarginEngine.healthMany` (keepers, dashboards), in the order of
 * `accountIds`: one call for up to `chunkSize` (200) accounts, parallel calls at one block beyond.
 * Throws `UnknownAccount` for an id no account had at that block (the view reads it as an empty,
 * healthy account); ids run from 1 to `Accounts.accountCount()` and are never burnt.
 * @example
 * const healths = await getHealthMany(client, { accountIds: [1n, 2n, 3n] });
 */
export async function getHealthMany(
  client: XMarginClient,
  params: GetHealthManyParameters,
): Promise<Health[]> {
  const ids = [...params.accountIds];
  const size = params.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(size) || size < 1) throw new RangeError("chunkSize must be a positive integer");
  // A block number pins every chunk to the same state.
  const blockTag = params.blockTag ?? (await latestBlockNumber(client));
  const count = await read(client, () => client.contracts.accounts.accountCount({ blockTag }));
  if (ids.some((id) => id < 0n)) throw new RangeError("account ids are not negative");
  const unknown = ids.find((id) => id < 1n || id > count);
  if (unknown !== undefined) throw makeXMarginError("UnknownAccount", [unknown], errorContext(client));
  const chunks: bigint[][] = [];
  for (let i = 0; i < ids.length; i += size) chunks.push(ids.slice(i, i + size));
  const call = async (chunk: bigint[]): Promise<Health[]> => {
    try {
      const overrides =
        params.gasLimit === undefined ? { blockTag } : { blockTag, gasLimit: params.gasLimit };
      return (await read(client, () => client.contracts.engine.healthMany(chunk, overrides))).map(toHealth);
    } catch (error) {
      // Out of gas or above the node's call gas cap (heavy accounts): halve the batch. A protocol
      // revert (a stale price) would fail the halves too, so it is thrown as it is.
      if (chunk.length === 1 || isXMarginError(error)) throw error;
      const half = Math.ceil(chunk.length / 2);
      return [...(await call(chunk.slice(0, half))), ...(await call(chunk.slice(half)))];
    }
  };
  const results = await Promise.all(chunks.map(call));
  return results.flat();
}
