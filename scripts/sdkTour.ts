/**
 * A newcomer's tour of the SDK, written from sdk/README.md alone and used the way a frontend would
 * (review round 158): cross and isolated accounts, USDC and WETH deposits, a previewed perp and option,
 * health and account state, a previewed withdrawal beyond what is free (its refusal shown), closes, a
 * withdrawal of everything left and the account list. `test/reliability/SdkFirstDay.test.ts` runs it
 * in-process; against a node:
 *
 *   npm run node                    # or: npx hardhat node --port 8600
 *   npm run deploy:local && npm run seed:local
 *   RPC_URL=http://127.0.0.1:8545 npx ts-node --transpile-only scripts/sdkTour.ts
 *
 * The wallet (the node's account SIGNER_INDEX, default 6: the seed uses #0–#3 and #5) is funded with
 * the local mock tokens' open `mint`.
 */
import { readFileSync } from "node:fs";
import { Contract, JsonRpcProvider, parseEther, parseUnits } from "ethers";
import {
  type XMarginClient,
  buyOption,
  closeOption,
  closePosition,
  createAccount,
  createClient,
  deposit,
  formatFixed,
  formatHealthRatio,
  formatUsd,
  getAccountState,
  getHealth,
  listAccounts,
  listOptionSeries,
  listPerpMarkets,
  maxWithdrawable,
  openPosition,
  parseDeployment,
  preview,
  quoteOption,
  withdraw,
} from "../sdk/src";

/** What the tour deposits: 20,000 USDC and 5 WETH in the cross account, 5,000 USDC in the isolated one. */
export const TOUR_FUNDS = { usdc: parseUnits("25000", 6), weth: parseEther("5") };

/** Runs the tour as the client's signer, which must hold `TOUR_FUNDS`; `say` gets each line shown. */
export async function tour(client: XMarginClient, say: (line: string) => void = console.log) {
  const usdc = (units: bigint) => `${formatFixed(units, 6)} USDC`;

  const cross = (await createAccount(client, { mode: "cross" })).accountId;
  const isolated = (await createAccount(client, { mode: "isolated" })).accountId;
  await deposit(client, { accountId: cross, token: "USDC", amount: parseUnits("20000", 6) });
  await deposit(client, { accountId: cross, token: "WETH", amount: TOUR_FUNDS.weth });
  await deposit(client, { accountId: isolated, token: "USDC", amount: parseUnits("5000", 6) });

  const markets = await listPerpMarkets(client);
  const eth = markets.find((m) => m.symbol === "ETH");
  const btc = markets.find((m) => m.symbol === "BTC");
  if (!eth || !btc) throw new Error("no ETH and BTC perp markets");

  // A perp in each account, previewed first; a refusal is shown, not sent.
  const size = parseEther("10");
  const planned = await preview(client, cross, { type: "trade", marketId: eth.marketId, sizeDelta: size });
  if (planned.revert) throw planned.revert;
  say(
    `long 10 ETH ≈ ${formatUsd(planned.trade?.fillPrice ?? 0n)}, fee ${usdc(planned.trade?.fee ?? 0n)}; ` +
      `health ${formatHealthRatio(planned.before.healthRatio)} → ${formatHealthRatio(planned.health.healthRatio)}`,
  );
  const perp = await openPosition(client, { accountId: cross, marketId: eth.marketId, size });
  const isoPerp = await openPosition(client, {
    accountId: isolated,
    marketId: btc.marketId,
    size: parseEther("0.5"),
  });
  const secondMarket = await preview(client, isolated, {
    type: "trade",
    marketId: eth.marketId,
    sizeDelta: parseEther("1"),
  });
  say(`isolated account, a second market: ${secondMarket.revert?.message ?? "ok"}`);

  // An option: quote with the health after it, then buy.
  const call = (await listOptionSeries(client, { status: "active" })).find(
    (s) => s.symbol === "ETH" && s.isCall,
  );
  if (!call) throw new Error("no ETH call listed");
  const quote = await quoteOption(client, {
    seriesId: call.marketId,
    sizeDelta: parseEther("2"),
    accountId: cross,
  });
  if (quote.preview?.revert) throw quote.preview.revert;
  say(`2 calls at ${formatUsd(quote.premium)} USD each, fee ${formatUsd(quote.fee)} USD`);
  const option = await buyOption(client, {
    accountId: cross,
    seriesId: call.marketId,
    size: parseEther("2"),
  });

  // Health and state, then a withdrawal of the free USDC and one unit more: shown, not sent.
  const health = await getHealth(client, { accountId: cross });
  const state = await getAccountState(client, { accountId: cross });
  say(`health ${formatHealthRatio(health.healthRatio)}, IM ${formatUsd(health.initialRequirement)} USD`);
  const free = await maxWithdrawable(client, { accountId: cross, token: "WETH" });
  const beyond = await preview(client, cross, { type: "withdraw", token: "WETH", amount: free + 1n });
  say(`withdraw ${formatUsd(free + 1n, 6)} WETH: ${beyond.revert?.message ?? "ok"}`);

  // Close everything, then take every unit of USDC out.
  const optionClosed = await closeOption(client, { accountId: cross, seriesId: call.marketId });
  const perpClosed = await closePosition(client, { accountId: cross, marketId: eth.marketId });
  const all = await maxWithdrawable(client, { accountId: cross, token: "USDC" });
  const allPreview = await preview(client, cross, { type: "withdraw", token: "USDC", amount: all });
  if (allPreview.revert) throw allPreview.revert;
  await withdraw(client, { accountId: cross, token: "USDC", amount: all });
  const accounts = await listAccounts(client);
  say(`withdrew ${usdc(all)}; accounts ${accounts.join(", ")}`);
  return {
    ...{ cross, isolated, planned, perp, isoPerp, secondMarket, quote, option, health, state },
    ...{ free, beyond, optionClosed, perpClosed, all, allPreview, accounts },
  };
}

async function main(): Promise<void> {
  const provider = new JsonRpcProvider(process.env.RPC_URL ?? "http://127.0.0.1:8545");
  const signer = await provider.getSigner(Number(process.env.SIGNER_INDEX ?? 6));
  const deployment = parseDeployment(JSON.parse(readFileSync("deploy/deployments/31337.json", "utf8")));
  const client = createClient({ runner: signer, deployment });
  const mint = (token: string) => new Contract(token, ["function mint(address,uint256)"], signer);
  const me = await signer.getAddress();
  await (await mint(deployment.tokens.USDC).mint(me, TOUR_FUNDS.usdc)).wait();
  await (await mint(deployment.tokens.WETH).mint(me, TOUR_FUNDS.weth)).wait();
  await tour(client);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
