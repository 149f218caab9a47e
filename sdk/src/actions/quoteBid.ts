import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import { latestBlockNumber, read } from "./internal/chain";

/** Parameters of `quoteBid`. */
export interface QuoteBidParameters {
  /** The liquidated account. */
  accountId: bigint;
  /** Fraction of the portfolio to buy (WAD, ≤ 1e18); the auction caps it at the restoring fraction. */
  fraction: bigint;
  blockTag?: BlockTag;
}

/** What a bid would fill and pay now. */
export interface QuoteBidReturnType {
  /** Fraction after the cap (WAD). */
  filled: bigint;
  /**
   * Quote units the bidder pays; for an insolvent account (whose book a bid takes whole) the deficit less
   * `insurancePayout`, 0 once the payout covers it: what the take costs the bidder at mark, and the
   * least `maxPayment` that goes through.
   */
  payment: bigint;
  /** Quote units the bidder receives for taking an insolvent account. */
  insurancePayout: bigint;
  /** d(t) now (WAD). */
  discount: bigint;
}

/**
 * What a bid of `fraction` on `accountId`'s auction fills and pays now (`LiquidationAuction.quoteBid`).
 * Throws where `bid` would revert before pricing, with the same typed errors: AuctionNotActive,
 * InvalidFraction (0 or above 1e18; a negative one is a RangeError), AccountHealthy (back above its maintenance line while the auction
 * still runs: end it with `endAuction`).
 * @example
 * const q = await quoteBid(client, { accountId: 7n, fraction: parseEther("1") });
 */
export async function quoteBid(
  client: XMarginClient,
  params: QuoteBidParameters,
): Promise<QuoteBidReturnType> {
  if (params.fraction < 0n) throw new RangeError("quoteBid: fraction must not be negative (WAD)");
  const auction = client.contracts.liquidationAuction;
  const blockTag = params.blockTag ?? (await latestBlockNumber(client));
  return read(client, async () => {
    const [[filled, payment, insurancePayout], discount] = await Promise.all([
      auction.quoteBid(params.accountId, params.fraction, { blockTag }),
      auction.currentDiscount(params.accountId, { blockTag }),
    ]);
    return { filled, payment, insurancePayout, discount };
  });
}
