import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { read, requireSigner, resolveToken, send, tokenInfo } from "./internal/chain";
import { marginCheckedGas } from "./internal/gas";

/** Parameters of `withdraw`. */
export interface WithdrawParameters {
  accountId: bigint;
  /** A symbol of the deployment or a token address. */
  token: string;
  /** Token units. */
  amount: bigint;
  /**
   * Recipient; default the account's owner (read before sending), which is also the only recipient an
   * operator may send to (else the vault reverts with `InvalidRecipient`). The owner may send anywhere.
   */
  to?: string;
}

/**
 * Withdraws `amount` of `token` from `accountId` to `to` (default: the account's owner). The signer must
 * be the owner or an ERC-721 operator of the account (a trading grant does not cover withdrawals:
 * "NotAuthorized"). The account must meet its initial requirement afterwards, or the call throws
 * XMarginError "InsufficientMargin" (see `maxWithdrawable`; `preview` predicts all three).
 * @example
 * await withdraw(client, { accountId, token: "USDC", amount: 500n * 10n ** 6n });
 */
export async function withdraw(
  client: XMarginClient,
  params: WithdrawParameters,
): Promise<ContractTransactionReceipt> {
  requireSigner(client);
  if (params.amount < 0n) throw new RangeError("withdraw: amount must not be negative (token units)");
  const token = resolveToken(client, params.token);
  await tokenInfo(client, token); // for readable error messages
  const to = params.to ?? (await read(client, () => client.contracts.accounts.ownerOf(params.accountId)));
  const { vault } = client.contracts;
  const args = [params.accountId, token, params.amount, to] as const;
  // Options the account holds may be repriced by the margin check when mined (`marginCheckedGas`).
  return send(client, async () =>
    vault.withdraw(
      ...args,
      await marginCheckedGas(client, params.accountId, () => vault.withdraw.estimateGas(...args)),
    ),
  );
}
