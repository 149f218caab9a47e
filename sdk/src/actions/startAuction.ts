import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { requireSigner, send } from "./internal/chain";

/** Parameters of `startAuction`. */
export interface StartAuctionParameters {
  /** An account with equity_MM < MM (see `isLiquidatable`). */
  accountId: bigint;
}

/**
 * Starts the liquidation auction of an account below its maintenance requirement; the signer earns
 * the flag reward. Throws XMarginError "AccountHealthy" when the account is not liquidatable.
 * @example
 * await startAuction(client, { accountId: 7n });
 */
export async function startAuction(
  client: XMarginClient,
  params: StartAuctionParameters,
): Promise<ContractTransactionReceipt> {
  requireSigner(client);
  return send(client, () => client.contracts.liquidationAuction.startAuction(params.accountId));
}
