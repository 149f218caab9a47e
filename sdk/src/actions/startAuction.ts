import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { eventsOf, requireSigner, send } from "./internal/chain";
import { booksCheckedGas } from "./internal/gas";

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
  const auction = client.contracts.liquidationAuction;
  // The start values the book: options a volatility round reprices by the block cost their grid.
  return send(client, async () =>
    auction.startAuction(
      params.accountId,
      await booksCheckedGas(client, [params.accountId], () =>
        auction.startAuction.estimateGas(params.accountId),
      ),
    ),
  );
}

/** Parameters of `startAuctions`. */
export interface StartAuctionsParameters {
  /** Accounts to auction, most urgent first; those `startAuction` would refuse are skipped. */
  accountIds: readonly bigint[];
}

/** What `startAuctions` started. */
export interface StartAuctionsReturnType {
  receipt: ContractTransactionReceipt;
  /** The accounts whose auction started (or stale auction restarted), in order. */
  started: bigint[];
}

/**
 * Starts the auctions of several accounts in one transaction, each paying the signer its flag reward.
 * An account that is not liquidatable, already in a running auction, or the pool's or the backstop's
 * is skipped rather than failing the rest; a stale or broken price feed fails the whole transaction.
 * @example
 * const { started } = await startAuctions(client, { accountIds: [7n, 9n, 12n] });
 */
export async function startAuctions(
  client: XMarginClient,
  params: StartAuctionsParameters,
): Promise<StartAuctionsReturnType> {
  requireSigner(client);
  const auction = client.contracts.liquidationAuction;
  const ids = [...params.accountIds];
  const receipt = await send(client, async () =>
    auction.startAuctions(
      ids,
      await booksCheckedGas(client, ids, () => auction.startAuctions.estimateGas(ids)),
    ),
  );
  const started = eventsOf(receipt, auction.interface, "AuctionStarted", String(auction.target)).map(
    (event) => event.args.accountId as bigint,
  );
  return { receipt, started };
}
