/**
 * Granting a contract an ERC-20 allowance before it pulls tokens: by EIP-2612 permit when the token
 * supports it, else by `approve`. Shared by the vault's `deposit` and the pool's `depositLiquidity`.
 */
import { Signature, TypedDataEncoder, type TypedDataDomain } from "ethers";
import type { XMarginClient } from "../../client";
import { eip5267, erc20, erc20Permit } from "../../contracts";
import { decodeError, makeXMarginError } from "../../errors";
import { blockAt, errorContext, read, requireSigner, send } from "./chain";
import { PaddedGasSigner } from "./gas";
import { tokenRefusal } from "./tokenRefusal";

/**
 * How to grant the allowance when it is short: "auto" signs an EIP-2612 permit when the token supports
 * it and approves otherwise; "permit" requires a permit; "approve" never signs one.
 */
export type ApprovalMode = "auto" | "permit" | "approve";

/** How the allowance was granted: it already covered the amount, by permit, or by `approve`. */
export type ApprovalUsed = "existing" | "permit" | "approve";

const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

/**
 * The token's EIP-712 domain if it implements EIP-2612 (`nonces` and `DOMAIN_SEPARATOR` answer), else
 * null. The domain comes from EIP-5267 `eip712Domain()` when present, else {name, version "1"}; it is
 * used only if it hashes to the token's DOMAIN_SEPARATOR.
 * @example
 * const domain = await permitDomain(client, usdc, owner); // null for a token without permits
 */
export async function permitDomain(
  client: XMarginClient,
  token: string,
  owner: string,
): Promise<TypedDataDomain | null> {
  const permit = erc20Permit(token, client.provider);
  let separator: string;
  try {
    [separator] = await Promise.all([permit.DOMAIN_SEPARATOR(), permit.nonces(owner)]);
  } catch {
    return null;
  }
  const { chainId } = await client.provider.getNetwork();
  let domain: TypedDataDomain;
  try {
    const d = await eip5267(token, client.provider).eip712Domain();
    domain = { name: d.name, version: d.version, chainId: d.chainId, verifyingContract: d.verifyingContract };
  } catch {
    domain = {
      name: await erc20(token, client.provider).name(),
      version: "1",
      chainId,
      verifyingContract: token,
    };
  }
  return TypedDataEncoder.hashDomain(domain) === separator ? domain : null;
}

/** A deposit to check before its allowance is granted (`requireAcceptedDeposit`). */
export interface DepositCheck {
  /** A static call of the deposit itself, from `owner`, without the allowance. */
  simulate: () => Promise<unknown>;
  /** Whether a revert the simulation decodes to is the spender's refusal, not the pull's want of an allowance. */
  isRefusal: (errorName: string) => boolean;
  token: string;
  owner: string;
  /** The contract that pulls the tokens (the vault, the pool). */
  spender: string;
  amount: bigint;
}

/**
 * Throws what a deposit would be refused for, before an approval or permit is sent: one sent first was
 * mined and left the spender an allowance for a deposit that could not happen (review rounds 73, 76 and
 * 152). The spender's own refusal comes from a static call of the deposit, which otherwise fails at the
 * pull for want of the allowance (ignored here); where it already pulls (an allowance covers the amount),
 * a `TransferAmountMismatch` (a fee-on-transfer token) is thrown too. Where it did not pull: a signer
 * holding less than `amount` gets ERC20InsufficientBalance, the OpenZeppelin error the pull would revert
 * with once approved, and then the token is asked about the movement itself (`tokenRefusal` of the
 * signer's transfer of `amount` to the spender: a pause, a blocklisted signer or spender, a `false`).
 */
export async function requireAcceptedDeposit(client: XMarginClient, check: DepositCheck): Promise<void> {
  try {
    await check.simulate();
    return; // it pulled the tokens and went through: nothing to refuse
  } catch (error) {
    const decoded = decodeError(error, errorContext(client));
    if (decoded && (check.isRefusal(decoded.name) || decoded.name === "TransferAmountMismatch"))
      throw decoded;
  }
  const { token, owner, spender, amount } = check;
  const balance = await read(client, () => erc20(token, client.provider).balanceOf(owner));
  if (balance < amount) {
    throw makeXMarginError("ERC20InsufficientBalance", [owner, balance, amount], errorContext(client));
  }
  const refusal = await tokenRefusal(client, {
    token,
    from: owner,
    to: spender,
    amount,
    sender: "the depositor",
  });
  if (refusal) throw refusal;
}

/**
 * Makes sure `spender` may pull `amount` of `token` from the signer: an allowance that covers it is
 * used as it is, otherwise a permit or an exact `approve` per `mode`.
 */
export async function ensureAllowance(
  client: XMarginClient,
  token: string,
  spender: string,
  amount: bigint,
  mode: ApprovalMode = "auto",
  permitValidity = 3600,
): Promise<ApprovalUsed> {
  const signer = requireSigner(client);
  const owner = await signer.getAddress();
  if ((await erc20(token, client.provider).allowance(owner, spender)) >= amount) return "existing";
  const domain = mode === "approve" ? null : await permitDomain(client, token, owner);
  if (domain) {
    const permit = erc20Permit(token, new PaddedGasSigner(signer));
    const nonce = await permit.nonces(owner);
    const deadline = (await blockAt(client)).timestamp + BigInt(permitValidity);
    const signature = Signature.from(
      await signer.signTypedData(domain, PERMIT_TYPES, { owner, spender, value: amount, nonce, deadline }),
    );
    await send(client, () =>
      permit.permit(owner, spender, amount, deadline, signature.v, signature.r, signature.s),
    );
    return "permit";
  }
  if (mode === "permit") throw new Error(`token ${token} does not support EIP-2612 permits`);
  await send(client, () => erc20(token, new PaddedGasSigner(signer)).approve(spender, amount));
  return "approve";
}
