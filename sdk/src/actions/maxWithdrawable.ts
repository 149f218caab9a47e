import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import { maxWithdrawableFromState } from "../preview";
import { getAccountState } from "./getAccountState";
import { read, resolveToken } from "./internal/chain";
import { pausable } from "../contracts";

/** Parameters of `maxWithdrawable`. */
export interface MaxWithdrawableParameters {
  accountId: bigint;
  /** A symbol of the deployment or a token address. */
  token: string;
  blockTag?: BlockTag;
  /**
   * Evaluate at this timestamp (≥ the snapshot's; default the snapshot's): the time the withdrawal is
   * expected to be mined. A quote debt's interest, perp funding and options' decay lower the maximum
   * from one block to the next, so the maximum at the snapshot's block reverts a block later.
   */
  timestamp?: bigint;
}

/**
 * The most of `token` that `accountId` can withdraw (token units): its balance, capped so the account
 * still meets its initial requirement and by what the vault holds for accounts; 0 while a liquidation
 * auction freezes the account or the guardian has paused the vault's withdrawals. At the snapshot's
 * block unless given the `timestamp` the withdrawal is expected to be mined at.
 * @example
 * const max = await maxWithdrawable(client, { accountId, token: "WETH", timestamp: now + 24n });
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
  const at = { blockTag: state.blockNumber };
  const vault = pausable(client.deployment.contracts.vault, client.runner);
  const [total, paused] = await read(client, () =>
    Promise.all([client.contracts.vault.totalDeposits(token, at), vault.paused(at)]),
  );
  // `whenNotPaused`: a paused vault refuses every withdrawal.
  return paused ? 0n : maxWithdrawableFromState(state, token, total, params.timestamp);
}
