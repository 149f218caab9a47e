import type { XMarginClient } from "../client";
import { protocolAccounts, requireSigner, send } from "./internal/chain";
import { booksCheckedGas } from "./internal/gas";
import { bidFromReceipt, type BidReturnType } from "./bid";

/** Parameters of `absorb`. */
export interface AbsorbParameters {
  /** An account whose auction has run its duration (`AuctionInfo.absorbableAt`) and is still liquidatable. */
  accountId: bigint;
}

/**
 * The bidder of last resort: has the auction's backstop account (owned by the protocol, its value the
 * LPs') take the slice of an auction nobody bid on by its maximum discount (an insolvent account's whole
 * book, the insurance fund paying it the deficit). Anyone may send it; it pays no reward. Throws XMarginError "AbsorbTooEarly" before `absorbableAt`,
 * "AccountHealthy" once the account is no longer liquidatable.
 * @returns The backstop's bid, from its AuctionBid event (the bidder is `backstopAccountId`).
 * @example
 * const [auction] = await listAuctions(client);
 * if (now >= auction.absorbableAt) await absorb(client, { accountId: auction.accountId });
 */
export async function absorb(client: XMarginClient, params: AbsorbParameters): Promise<BidReturnType> {
  requireSigner(client);
  const auction = client.contracts.liquidationAuction;
  const { backstop } = await protocolAccounts(client);
  // The account's book and the backstop's that takes it are valued: their options may need repricing.
  const receipt = await send(client, async () =>
    auction.absorb(
      params.accountId,
      await booksCheckedGas(client, [params.accountId, backstop], () =>
        auction.absorb.estimateGas(params.accountId),
      ),
    ),
  );
  return bidFromReceipt(client, receipt, "absorb");
}
