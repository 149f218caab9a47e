import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { eventsOf, requireSigner, send } from "./internal/chain";

/** Parameters of `createAccount`. */
export interface CreateAccountParameters {
  /** CROSS (default): one collateral pool for many markets; ISOLATED: one market only. */
  mode?: "cross" | "isolated";
  /** Create the account for another owner (e.g. a dApp onboarding a user); default the signer. */
  owner?: string;
}

/** The new account and the transaction. */
export interface CreateAccountReturnType {
  accountId: bigint;
  receipt: ContractTransactionReceipt;
}

/**
 * Creates a margin account (an ERC-721 token) owned by the signer or by `owner`. A `mode` other than
 * "cross" or "isolated" (say "ISOLATED") is a RangeError, before anything is sent.
 * @example
 * const { accountId } = await createAccount(client, { mode: "cross" });
 */
export async function createAccount(
  client: XMarginClient,
  params: CreateAccountParameters = {},
): Promise<CreateAccountReturnType> {
  requireSigner(client);
  const { accounts } = client.contracts;
  if (params.mode !== undefined && params.mode !== "cross" && params.mode !== "isolated") {
    throw new RangeError(`createAccount: mode must be "cross" or "isolated", not ${String(params.mode)}`);
  }
  const mode = params.mode === "isolated" ? 1 : 0;
  const receipt = await send(client, () =>
    params.owner === undefined ? accounts.createAccount(mode) : accounts.createAccountFor(params.owner, mode),
  );
  const [created] = eventsOf(receipt, accounts.interface, "AccountCreated");
  if (!created) throw new Error("createAccount: no AccountCreated event in the receipt");
  return { accountId: created.args.accountId as bigint, receipt };
}
