import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import { maxWithdrawableFromState } from "../preview";
import { getAccountState } from "./getAccountState";
import { read, resolveToken } from "./internal/chain";

/** Parameters of `maxWithdrawable`. */
export interface MaxWithdrawableParameters {
  accountId: bigint;
  /** A symbol of the deployment or a token address. */
  token: string;
  blockTag?: BlockTag;
}

/**
 * The most of `token` that `accountId` can withdraw now (token units): its balance, capped so the
 * account still meets its initial requirement and by what the vault holds for accounts; 0 while a
 * liquidation auction freezes the account.
 * @example
 * const max = await maxWithdrawable(client, { accountId, token: "WETH" });
 */
export async function maxWithdrawable(
  client: XMarginClient,
  params: MaxWithdrawableParameters,
): Promise<bigint> {
  const token = resolveToken(client, params.token);
  const state = await getAccountState(client, {
    accountId: params.accountId,
    blockTag: params.blockTag,
    tokens: [token],
  });
  const total = await read(client, () =>
    client.contracts.vault.totalDeposits(token, { blockTag: state.blockNumber }),
  );
  return maxWithdrawableFromState(state, token, total);
}
