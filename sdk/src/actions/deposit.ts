import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { type ApprovalMode, type ApprovalUsed, ensureAllowance } from "./internal/allowance";
import { quoteToken, read, requireSigner, resolveToken, send } from "./internal/chain";

export { permitDomain } from "./internal/allowance";
export type { ApprovalMode, ApprovalUsed } from "./internal/allowance";

/** Parameters of `deposit`. */
export interface DepositParameters {
  accountId: bigint;
  /** A symbol of the deployment or a token address. */
  token: string;
  /** Token units. */
  amount: bigint;
  /**
   * How to grant the vault the allowance when it is short: "auto" (default) signs an EIP-2612 permit
   * when the token supports it and approves otherwise; "permit" requires a permit; "approve" never
   * signs one. An allowance that already covers `amount` is used as it is.
   */
  approval?: ApprovalMode;
  /** Seconds a permit stays valid (default 3,600). */
  permitValidity?: number;
}

/** The deposit and how its allowance was granted. */
export interface DepositReturnType {
  receipt: ContractTransactionReceipt;
  approval: ApprovalUsed;
}

/**
 * Deposits `amount` of `token` from the signer into `accountId`, granting the vault the allowance
 * first if needed: by EIP-2612 permit when the token supports it, else by `approve` (exact amount).
 * Anyone may deposit the quote token into any account; another token only the owner or an operator:
 * any other sender gets the vault's revert (`NotAuthorized`, or an error the vault checks before it:
 * `ZeroAmount`, `TokenNotListed`, `ProtocolAccountCollateral`) before an approval or permit is sent.
 * @example
 * await deposit(client, { accountId, token: "USDC", amount: 10_000n * 10n ** 6n });
 */
export async function deposit(client: XMarginClient, params: DepositParameters): Promise<DepositReturnType> {
  requireSigner(client);
  const token = resolveToken(client, params.token);
  const vault = client.deployment.contracts.vault;
  await requireDepositor(client, params.accountId, token, params.amount);
  const approval = await ensureAllowance(
    client,
    token,
    vault,
    params.amount,
    params.approval,
    params.permitValidity,
  );
  const receipt = await send(client, () =>
    client.contracts.vault.deposit(params.accountId, token, params.amount),
  );
  return { receipt, approval };
}

/**
 * Throws the vault's revert when the signer may not deposit `token` into `accountId` (another token
 * than the quote, from neither the owner nor an operator), before any allowance is granted: an approval
 * or permit sent first was mined and left the vault an allowance for a deposit that could not happen.
 * Such a deposit reverts before the vault pulls the tokens, so a static call names the vault's first
 * error (ZeroAmount, TokenNotListed, ProtocolAccountCollateral, NotAuthorized) without an allowance.
 */
async function requireDepositor(
  client: XMarginClient,
  accountId: bigint,
  token: string,
  amount: bigint,
): Promise<void> {
  const { vault, accounts } = client.contracts;
  if (token.toLowerCase() === (await read(client, () => quoteToken(client)))) return;
  const caller = await requireSigner(client).getAddress();
  if (await read(client, () => accounts.isAuthorized(accountId, caller))) return;
  await read(client, () => vault.deposit.staticCall(accountId, token, amount));
}
