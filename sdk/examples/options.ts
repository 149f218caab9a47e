import { parseEther } from "ethers";
import {
  type XMarginClient,
  buyOption,
  closeOption,
  formatUsd,
  getOptionSeries,
  listOptionSeries,
  quoteOption,
  sellOption,
} from "../src";

/**
 * On an account holding collateral: find an ETH call and put, quote buying the call with the health after
 * it, buy it, write the put against it (a risk reversal), read the series' settlement state, then close
 * both. Option actions throw MissingContractError on a deployment without an OptionMarket.
 */
export async function main(client: XMarginClient, accountId: bigint) {
  // 1. Active series, with terms (strike, expiry, call/put), skew, open interest and status.
  const active = await listOptionSeries(client, { status: "active" });
  const call = active.find((s) => s.symbol === "ETH" && s.isCall);
  const put = active.find((s) => s.symbol === "ETH" && !s.isCall);
  if (!call || !put) throw new Error("no ETH call and put listed");

  // 2. Quote 2 calls: premium per contract (model price with the series' skew, plus the vega spread),
  //    fee, a limit 0.5% worse, and the account's health after the trade (nothing sent).
  const size = parseEther("2");
  const q = await quoteOption(client, { seriesId: call.marketId, sizeDelta: size, accountId });
  if (q.preview?.revert) throw q.preview.revert; // e.g. InsufficientMargin, with a readable message
  console.log(
    `call ${formatUsd(call.strike)}: premium ${formatUsd(q.premium, 4)} USD, fee ${formatUsd(q.fee)} USD; ` +
      `initial requirement after it ${formatUsd(q.preview?.health.initialRequirement ?? 0n)} USD`,
  );

  // 3. Buy them (the limit and a 10-minute deadline go to the contract), then write 2 puts.
  const bought = await buyOption(client, { accountId, seriesId: call.marketId, size, slippageBps: 50 });
  const sold = await sellOption(client, { accountId, seriesId: put.marketId, size, slippageBps: 50 });
  console.log(
    `paid ${formatUsd(bought.premium)} USD for the calls, received ${formatUsd(sold.premium)} USD for the puts`,
  );

  // 4. Settlement state: "active" until expiry, then "expired" until a keeper settles it, then "settled".
  const state = await getOptionSeries(client, { seriesId: call.marketId });
  console.log(
    `series ${state.marketId} is ${state.status}, expiring ${new Date(Number(state.expiry) * 1000).toISOString()}`,
  );

  // 5. Close both before expiry (after it, positions are paid at settlement instead).
  await closeOption(client, { accountId, seriesId: call.marketId });
  await closeOption(client, { accountId, seriesId: put.marketId });
  return { call, put, quote: q, bought, sold, state };
}
