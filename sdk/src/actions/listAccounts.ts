import type { XMarginClient } from "../client";
import { read } from "./internal/chain";

/** Parameters of `listAccounts`. */
export interface ListAccountsParameters {
  /** Default: the signer's address. */
  owner?: string;
}

/**
 * Every account id owned by `owner` (one call to `Accounts.accountsOf`).
 * @example
 * const ids = await listAccounts(client); // [1n, 4n]
 */
export async function listAccounts(
  client: XMarginClient,
  params: ListAccountsParameters = {},
): Promise<bigint[]> {
  const owner = params.owner ?? (await client.signer?.getAddress());
  if (!owner) throw new TypeError("listAccounts: pass an owner or create the client with a Signer");
  return read(client, async () => [...(await client.contracts.accounts.accountsOf(owner))]);
}
