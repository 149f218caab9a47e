import { type Signer, encodeBytes32String, parseEther, parseUnits } from "ethers";
import {
  type XMarginClient,
  closePosition,
  createAccount,
  deposit,
  formatHealthRatio,
  formatUsd,
  getHealth,
  getLiquidationPrice,
  listPerpMarkets,
  openPosition,
  preview,
} from "../src";

/**
 * Create an account, deposit 10,000 USDC, preview a 2 ETH long, open it, read its health and
 * liquidation price, close it. `signer` must hold the USDC (and be the client's runner).
 */
export async function main(client: XMarginClient, signer: Signer) {
  // 1. A cross-margin account owned by the signer.
  const { accountId } = await createAccount(client, { mode: "cross" });
  console.log(`account #${accountId} owned by ${await signer.getAddress()}`);

  // 2. Collateral: approve, or an EIP-2612 permit when the token supports it.
  await deposit(client, { accountId, token: "USDC", amount: parseUnits("10000", 6) });

  // 3. Preview a 2 ETH long: fill, fee and the account's health after it, nothing sent.
  const eth = (await listPerpMarkets(client)).find((m) => m.symbol === "ETH");
  if (!eth) throw new Error("no ETH perp market");
  const size = parseEther("2");
  const planned = await preview(client, accountId, {
    type: "trade",
    marketId: eth.marketId,
    sizeDelta: size,
  });
  if (planned.revert) throw planned.revert; // e.g. InsufficientMargin, with a readable message
  console.log(
    `fill ≈ ${formatUsd(planned.trade?.fillPrice ?? 0n)}; after it: equity ${formatUsd(planned.health.equityInitial)} USD, ` +
      `initial requirement ${formatUsd(planned.health.initialRequirement)} USD`,
  );

  // 4. Open it: limit 0.5% worse than the quote, 10 minutes to execute.
  const opened = await openPosition(client, { accountId, marketId: eth.marketId, size, slippageBps: 50 });
  console.log(
    `bought ${formatUsd(opened.newSize, 4)} ETH at ${formatUsd(opened.fillPrice)}, fee ${formatUsd(opened.fee)} USD`,
  );

  // 5. Health as the engine computes it, and where ETH would have to fall for a liquidation.
  const health = await getHealth(client, { accountId });
  const { down } = await getLiquidationPrice(client, { accountId, asset: encodeBytes32String("ETH") });
  console.log(
    `health ratio ${formatHealthRatio(health.healthRatio)}; liquidation below ETH ${down === null ? "—" : formatUsd(down)}`,
  );

  // 6. Close the position.
  const closed = await closePosition(client, { accountId, marketId: eth.marketId });
  console.log(`closed: realised ${formatUsd(closed.realizedPnl)} USD, fee ${formatUsd(closed.fee)} USD`);

  return { accountId, planned, opened, health, liquidationPrice: down, closed };
}
