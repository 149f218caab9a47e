import { type ContractTransactionReceipt, Signature, TypedDataEncoder, type TypedDataDomain } from "ethers";
import type { XMarginClient } from "../client";
import { eip5267, erc20, erc20Permit } from "../contracts";
import { blockAt, requireSigner, resolveToken, send } from "./internal/chain";

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
  approval?: "auto" | "permit" | "approve";
  /** Seconds a permit stays valid (default 3,600). */
  permitValidity?: number;
}

/** The deposit and how its allowance was granted. */
export interface DepositReturnType {
  receipt: ContractTransactionReceipt;
  approval: "existing" | "permit" | "approve";
}

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

/**
 * Deposits `amount` of `token` from the signer into `accountId`, granting the vault the allowance
 * first if needed: by EIP-2612 permit when the token supports it, else by `approve` (exact amount).
 * Anyone may deposit into any account.
 * @example
 * await deposit(client, { accountId, token: "USDC", amount: 10_000n * 10n ** 6n });
 */
export async function deposit(client: XMarginClient, params: DepositParameters): Promise<DepositReturnType> {
  const signer = requireSigner(client);
  const token = resolveToken(client, params.token);
  const owner = await signer.getAddress();
  const vaultAddress = client.deployment.contracts.vault;
  const mode = params.approval ?? "auto";
  const allowance = await erc20(token, client.provider).allowance(owner, vaultAddress);

  let approval: DepositReturnType["approval"] = "existing";
  if (allowance < params.amount) {
    const domain = mode === "approve" ? null : await permitDomain(client, token, owner);
    if (domain) {
      const permit = erc20Permit(token, signer);
      const nonce = await permit.nonces(owner);
      const deadline = (await blockAt(client)).timestamp + BigInt(params.permitValidity ?? 3600);
      const signature = Signature.from(
        await signer.signTypedData(domain, PERMIT_TYPES, {
          owner,
          spender: vaultAddress,
          value: params.amount,
          nonce,
          deadline,
        }),
      );
      await send(client, () =>
        permit.permit(owner, vaultAddress, params.amount, deadline, signature.v, signature.r, signature.s),
      );
      approval = "permit";
    } else {
      if (mode === "permit") throw new Error(`deposit: token ${token} does not support EIP-2612 permits`);
      await send(client, () => erc20(token, signer).approve(vaultAddress, params.amount));
      approval = "approve";
    }
  }
  const receipt = await send(client, () =>
    client.contracts.vault.deposit(params.accountId, token, params.amount),
  );
  return { receipt, approval };
}
