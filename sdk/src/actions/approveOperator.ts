import { type ContractTransactionReceipt, ZeroAddress } from "ethers";
import type { XMarginClient } from "../client";
import { requireSigner, send } from "./internal/chain";

/** Parameters of `approveOperator`. */
export type ApproveOperatorParameters =
  /** Approve (or, with `approved: false`, clear) `operator` on one account: ERC-721 `approve`. */
  | { accountId: bigint; operator: string; approved?: boolean }
  /** Approve or revoke `operator` on every account of the signer: ERC-721 `setApprovalForAll`. */
  | { all: true; operator: string; approved?: boolean };

/**
 * Lets `operator` trade for an account (or all the signer's accounts). Operators may trade, and may
 * withdraw only to the owner.
 * An ERC-721 approval is custody: it also lets the operator transfer the account to itself. Approve
 * only contracts and agents you would hand the account to; a bot that only trades needs `setTrader`.
 * @example
 * await approveOperator(client, { accountId, operator: myVaultContract });
 */
export async function approveOperator(
  client: XMarginClient,
  params: ApproveOperatorParameters,
): Promise<ContractTransactionReceipt> {
  requireSigner(client);
  const { accounts } = client.contracts;
  const approved = params.approved ?? true;
  return send(client, () =>
    "all" in params
      ? accounts.setApprovalForAll(params.operator, approved)
      : accounts.approve(approved ? params.operator : ZeroAddress, params.accountId),
  );
}
