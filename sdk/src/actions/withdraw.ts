import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { requireSigner, resolveToken, send, tokenInfo } from "./internal/chain";

/** Parameters of `withdraw`. */
export interface WithdrawParameters {
  accountId: bigint;
  /** A symbol of the deployment or a token address. */
  token: string;
  /** Token units. */
  amount: bigint;
  /** Recipient; default the signer (an operator may only send to the owner). */
  to?: string;
}

/**
 * Withdraws `amount` of `token` from `accountId`. The account must meet its initial requirement
 * afterwards, or the call throws XMarginError "InsufficientMargin" (see `maxWithdrawable`).
 * @example
 * await withdraw(client, { accountId, token: "USDC", amount: 500n * 10n ** 6n });
 */
export async function withdraw(
  client: XMarginClient,
  params: WithdrawParameters,
): Promise<ContractTransactionReceipt> {
  const signer = requireSigner(client);
  const token = resolveToken(client, params.token);
  await tokenInfo(client, token); // for readable error messages
  const to = params.to ?? (await signer.getAddress());
  return send(client, () => client.contracts.vault.withdraw(params.accountId, token, params.amount, to));
}
