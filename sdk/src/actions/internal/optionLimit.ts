/** The premium an option trade's default limit is set from. Internal: not exported. */
import type { XMarginClient } from "../../client";
import { optionQuote } from "../../markets/option";
import type { OptionMarketState } from "../../state";
import { optionMarketOf, quoteUnit } from "./chain";
import { readerFor } from "./readers";

/**
 * Seconds after the quote's block that a sale's limit allows for: one block of 12 s. A sale receives the
 * series' low bound less the spread, and both fall with time alone: with the limit 50 bp under the quote,
 * a 90-minute put quoted 0.1192 USD filled at 0.1181 (−0.92%) a block later and the sale reverted
 * `PriceLimitExceeded` with spot and volatility unchanged (review round 161).
 */
export const SALE_DECAY_SECONDS = 12n;

/**
 * The premium per contract (USD WAD) a trade's default limit is moved from: the chain's quote `premium`
 * at block `blockNumber` (timestamp `timestamp`), and for a sale (`sizeDelta` < 0) the lower of it and the
 * pure model's quote `SALE_DECAY_SECONDS` later at the block's spot and volatility, the time decay a sale
 * mined a block later meets (a buy pays the high bound plus the spread, which do not rise with time).
 */
export async function optionLimitBase(
  client: XMarginClient,
  seriesId: bigint,
  sizeDelta: bigint,
  premium: bigint,
  block: { number: number; timestamp: bigint },
): Promise<bigint> {
  if (sizeDelta >= 0n) return premium;
  const market = optionMarketOf(client);
  const series = (await readerFor(client, await market.getAddress()).readMarket(
    client,
    seriesId,
    block.number,
  )) as OptionMarketState;
  const later = block.timestamp + SALE_DECAY_SECONDS;
  // A series expiring within the block has no later quote: mined late, the sale reverts SeriesExpired.
  if (series.settled || later >= series.expiry) return premium;
  const [[spot, volatility], unit] = await Promise.all([
    client.contracts.oracleRouter.getPriceAndVolatility(series.underlying, { blockTag: block.number }),
    quoteUnit(client),
  ]);
  const decayed = optionQuote(series, spot, volatility, later, sizeDelta, unit).premium;
  return decayed < premium ? decayed : premium;
}
