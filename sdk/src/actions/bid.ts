import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { eventsOf, requireSigner, send } from "./internal/chain";
import { booksCheckedGas } from "./internal/gas";
import { plusSlippage } from "./internal/slippage";
import { quoteBid } from "./quoteBid";

/** Parameters of `bid`. */
export interface BidParameters {
  /** The liquidated account. */
  accountId: bigint;
  /** The signer's account that receives the slice and pays. */
  bidderAccountId: bigint;
  /** Fraction to buy (WAD); capped by the auction at the restoring fraction. */
  fraction: bigint;
  /**
   * Most quote units to pay; default the quote's payment plus `slippageBps`. For an insolvent account
   * (taken whole) it bounds the deficit less the fund's payout.
   */
  maxPayment?: bigint;
  /** Headroom over the quoted payment, basis points (default 50). */
  slippageBps?: number;
  /**
   * `bidAndClose`: close the slice's positions against the pool in the same transaction. The bidder
   * account must hold no positions and let the auction trade it (`setTrader`, or `approveOperator`).
   * The chain refuses a `bidAndClose` that would leave the bidder worth less at the oracle than before
   * (`BidAndCloseLoss`): the closes take the market's fill with no limit, and `maxPayment` bounds only
   * the auction's part.
   */
  close?: boolean;
}

/** The bid from its AuctionBid event (and, for an insolvent account, its InsolvencyCovered event). */
export interface BidReturnType {
  receipt: ContractTransactionReceipt;
  filled: bigint;
  /** Quote units the bidder paid the account: 0 for an insolvent account, taken whole for a payout. */
  payment: bigint;
  penalty: bigint;
  discount: bigint;
  /**
   * Quote units the bidder was paid for taking an insolvent account (the fund's part and, beyond it, the
   * pool's, from InsolvencyCovered): for a bid what `quoteBid`'s `insurancePayout` quotes at its second,
   * for an absorb the deficit; 0 for a solvent account.
   */
  insurancePayout: bigint;
}

/**
 * Bids on a running auction: buys up to `fraction` of the account's portfolio into `bidderAccountId`.
 * @example
 * const { filled, payment } = await bid(client, { accountId: 7n, bidderAccountId: 3n, fraction: parseEther("1") });
 */
export async function bid(client: XMarginClient, params: BidParameters): Promise<BidReturnType> {
  requireSigner(client);
  if (params.fraction < 0n) throw new RangeError("bid: fraction must not be negative (WAD)");
  const auction = client.contracts.liquidationAuction;
  const limit =
    params.maxPayment ??
    plusSlippage(
      (await quoteBid(client, { accountId: params.accountId, fraction: params.fraction })).payment,
      params.slippageBps,
    );
  const args = [params.accountId, params.bidderAccountId, params.fraction, limit] as const;
  const method = params.close ? auction.bidAndClose : auction.bid;
  // The slice is valued and the bidder margin-checked: their options may need repricing by the block.
  const books = [params.accountId, params.bidderAccountId];
  const receipt = await send(client, async () =>
    method(...args, await booksCheckedGas(client, books, () => method.estimateGas(...args))),
  );
  return bidFromReceipt(client, receipt, "bid");
}

/** The AuctionBid event of a bid's (or an absorb's) receipt. */
export function bidFromReceipt(
  client: XMarginClient,
  receipt: ContractTransactionReceipt,
  action: string,
): BidReturnType {
  const [event] = eventsOf(receipt, client.contracts.liquidationAuction.interface, "AuctionBid");
  if (!event) throw new Error(`${action}: no AuctionBid event in the receipt`);
  const [covered] = eventsOf(receipt, client.contracts.liquidationAuction.interface, "InsolvencyCovered");
  return {
    receipt,
    filled: event.args.fraction as bigint,
    payment: event.args.payment as bigint,
    penalty: event.args.penalty as bigint,
    discount: event.args.discount as bigint,
    insurancePayout: covered
      ? (covered.args.paidByInsurance as bigint) + (covered.args.socialisedLoss as bigint)
      : 0n,
  };
}
