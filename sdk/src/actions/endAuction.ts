import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { requireSigner, send } from "./internal/chain";
import { booksCheckedGas } from "./internal/gas";

/** Parameters of `endAuction`. */
export interface EndAuctionParameters {
  /** An account in auction that is no longer liquidatable (equity_MM ≥ MM). */
  accountId: bigint;
}

/**
 * Ends the auction of an account that has recovered (a top-up, or prices moving back): it unfreezes the
 * account and clears its recorded deficit from the LP share price. Nothing ends an auction on its own;
 * anyone may call this. Throws XMarginError "AccountNotHealthy" while the account is still
 * liquidatable, "AuctionNotActive" when no auction runs, and the feed's error (e.g. "StalePrice") while
 * a volatility feed of its book fails (`Health.volatilityUnavailable`: no recovery can be shown).
 * @example
 * await deposit(client, { accountId: 7n, token: "USDC", amount: 5_000n * 10n ** 6n });
 * await endAuction(client, { accountId: 7n });
 */
export async function endAuction(
  client: XMarginClient,
  params: EndAuctionParameters,
): Promise<ContractTransactionReceipt> {
  requireSigner(client);
  const auction = client.contracts.liquidationAuction;
  // The end reads the account's health: its options may need repricing by the block.
  return send(client, async () =>
    auction.endAuction(
      params.accountId,
      await booksCheckedGas(client, [params.accountId], () =>
        auction.endAuction.estimateGas(params.accountId),
      ),
    ),
  );
}
