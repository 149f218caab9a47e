import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import { min } from "../math/fixedPoint";
import { latestBlockNumber, read } from "./internal/chain";

/** Ids read in parallel per round by `listAccounts` (one `tokenOfOwnerByIndex` call each). */
export const LIST_ACCOUNTS_BATCH = 100;

/** Parameters of `listAccounts`. */
export interface ListAccountsParameters {
  /** Default: the signer's address. */
  owner?: string;
  /** Index of the first id to return in the owner's list (ERC-721 enumeration order); default 0. */
  start?: number;
  /** At most this many ids; default every id from `start` on. */
  count?: number;
  /** Block to read at (default: the latest); every read is at this one block. */
  blockTag?: BlockTag;
}

/**
 * The account ids owned by `owner`, in the order of its ERC-721 enumeration (creation order, but a
 * transfer out moves the owner's last id into the hole), from `start`, at most `count` of them. Reads
 * `balanceOf`, then one `tokenOfOwnerByIndex` per id, `LIST_ACCOUNTS_BATCH` (100) calls in parallel at
 * a time, all at one block: each call costs the same small gas whatever the owner holds. (Not
 * `Accounts.accountsOf`: anyone can mint accounts to any owner with `createAccountFor`, and past about
 * 10,000 of them that one call no longer fits a node's eth_call gas cap.) For an owner with many
 * accounts, page with `start`/`count`; `client.contracts.accounts.balanceOf(owner)` is the total.
 * @example
 * const ids = await listAccounts(client); // [1n, 4n]
 * const page = await listAccounts(client, { owner, start: 100, count: 20 }); // the 101st to 120th
 */
export async function listAccounts(
  client: XMarginClient,
  params: ListAccountsParameters = {},
): Promise<bigint[]> {
  const owner = params.owner ?? (await client.signer?.getAddress());
  if (!owner) throw new TypeError("listAccounts: pass an owner or create the client with a Signer");
  const start = params.start ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) throw new RangeError("start must be a non-negative integer");
  if (params.count !== undefined && (!Number.isSafeInteger(params.count) || params.count < 0)) {
    throw new RangeError("count must be a non-negative integer");
  }
  const { accounts } = client.contracts;
  const blockTag = params.blockTag ?? (await latestBlockNumber(client));
  const total = await read(client, () => accounts.balanceOf(owner, { blockTag }));
  const end = params.count === undefined ? total : min(total, BigInt(start) + BigInt(params.count));
  const ids: bigint[] = [];
  for (let from = BigInt(start); from < end; from += BigInt(LIST_ACCOUNTS_BATCH)) {
    const to = min(end, from + BigInt(LIST_ACCOUNTS_BATCH));
    const indices = Array.from({ length: Number(to - from) }, (_, i) => from + BigInt(i));
    ids.push(
      ...(await read(client, () =>
        Promise.all(indices.map((i) => accounts.tokenOfOwnerByIndex(owner, i, { blockTag }))),
      )),
    );
  }
  return ids;
}
