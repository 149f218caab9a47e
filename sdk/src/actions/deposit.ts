import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import {
  type ApprovalMode,
  type ApprovalUsed,
  ensureAllowance,
  requireAcceptedDeposit,
} from "./internal/allowance";
import { requireSigner, resolveToken, send } from "./internal/chain";

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
 * `ZeroAmount`, `TokenNotListed`, `ProtocolAccountCollateral`) before an approval or permit is sent. So
 * does any sender whose deposit the vault refuses before it pulls the tokens (`ZeroAmount`,
 * `UnknownAccount` for the quote into an id that does not exist, `TokenNotListed`), a signer holding
 * less than `amount` (`ERC20InsufficientBalance`), a pull the token itself refuses (a pause, a blocklisted
 * signer or vault, a `false`: the token's own error), and, where an allowance already covers `amount`, a
 * token that would deliver another amount (`TransferAmountMismatch`: fee-on-transfer, rebasing). A
 * negative `amount` is a RangeError.
 * @example
 * await deposit(client, { accountId, token: "USDC", amount: 10_000n * 10n ** 6n });
 */
export async function deposit(client: XMarginClient, params: DepositParameters): Promise<DepositReturnType> {
  requireSigner(client);
  if (params.amount < 0n) throw new RangeError("deposit: amount must not be negative (token units)");
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
 * Throws the vault's revert when the deposit cannot happen, the signer's short balance or the token's
 * refusal of the pull, before any allowance is granted (`requireAcceptedDeposit`). The vault's checks
 * before it pulls the tokens are `BEFORE_PULL`; anything else is the pull failing (for want of an
 * allowance, or the token's refusal, which is then asked of the token itself), and a revert after the
 * pull (a deposit cap) reaches the caller from the send, but for `TransferAmountMismatch`.
 */
async function requireDepositor(
  client: XMarginClient,
  accountId: bigint,
  token: string,
  amount: bigint,
): Promise<void> {
  const owner = await requireSigner(client).getAddress();
  await requireAcceptedDeposit(client, {
    simulate: () => client.contracts.vault.deposit.staticCall(accountId, token, amount, { from: owner }),
    isRefusal: (name) => BEFORE_PULL.has(name),
    token,
    owner,
    spender: client.deployment.contracts.vault,
    amount,
  });
}

/**
 * CollateralVault.deposit's errors before it pulls the tokens: ZeroAmount; UnknownAccount for the quote
 * (Accounts'); TokenNotListed; for another token than the quote, ProtocolAccountCollateral and
 * NotAuthorized.
 */
const BEFORE_PULL = new Set([
  "ZeroAmount",
  "UnknownAccount",
  "TokenNotListed",
  "ProtocolAccountCollateral",
  "NotAuthorized",
]);
