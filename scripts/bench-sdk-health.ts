/**
 * Benchmark: the health of 1,000 accounts through the SDK's `getHealthMany` (MarginEngine.healthMany)
 * on Hardhat's in-process chain.
 *
 *   npx hardhat run scripts/bench-sdk-health.ts        (ACCOUNTS=200 for a quicker run)
 *
 * Accounts hold one or two collaterals (USDC, WETH, WBTC); two thirds hold an ETH perp, one in five a
 * BTC perp. One healthMany call over 1,000 such accounts needs ~60M gas: more than the 2^24 gas per
 * call that Osaka (EIP-7825, the in-process chain's default hardfork) allows. To time the one-call
 * batch the script runs the chain as Prague with a 1e9 block gas limit; it then times the SDK's default
 * (calls of 200, which fit under the Osaka cap, sent in parallel at one block). Not part of
 * `npm test`: timings depend on the machine and on Hardhat's in-process EVM.
 */
import hre from "hardhat";
import { performance } from "node:perf_hooks";
import { getHealthMany, type Health } from "../sdk/src";
import { MarginMode, deploySystem, openAccount, wad } from "../test/shared/system";
import { trade } from "../test/shared/perps";
import { sdkClient } from "../test/shared/sdk";

// Before anything touches the provider (it is created on first use).
hre.config.networks.hardhat.hardfork = "prague";
hre.config.networks.hardhat.blockGasLimit = 1_000_000_000;

const COUNT = Number(process.env.ACCOUNTS ?? 1000);
const RUNS = 5;
const USDC = 10n ** 6n;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(runs: number, f: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    await f();
    out.push(performance.now() - t);
  }
  return out;
}

async function main(): Promise<void> {
  const setupStart = performance.now();
  const sys = await deploySystem();
  const ids: bigint[] = [];
  for (let i = 0; i < COUNT; i++) {
    const deposits: Parameters<typeof openAccount>[3] = [[sys.usdc, BigInt(2_000 + (i % 50) * 100) * USDC]];
    if (i % 4 === 1) deposits.push([sys.weth, wad("0.5")]);
    if (i % 4 === 2) deposits.push([sys.wbtc, 2n * 10n ** 6n]);
    const id = await openAccount(sys, sys.alice, MarginMode.CROSS, deposits);
    if (i % 3 !== 0)
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, (i % 2 === 0 ? 1n : -1n) * wad("0.05"));
    if (i % 5 === 0)
      await trade(sys.perps, sys.alice, id, sys.markets.BTC, (i % 2 === 0 ? -1n : 1n) * wad("0.002"));
    ids.push(id);
    if ((i + 1) % 250 === 0) console.log(`  ${i + 1} accounts…`);
  }
  const setupSeconds = (performance.now() - setupStart) / 1000;

  const client = await sdkClient(sys, sys.alice);
  const blockTag = await hre.ethers.provider.getBlockNumber();
  const gasLimit = 900_000_000n;
  const gas = await sys.engine.healthMany.estimateGas(ids, { gasLimit });
  let healths: Health[] = [];
  const oneCall = await time(RUNS, async () => {
    healths = await getHealthMany(client, { accountIds: ids, blockTag, chunkSize: ids.length, gasLimit });
  });
  const chunked = await time(RUNS, () => getHealthMany(client, { accountIds: ids, blockTag }));
  const single = await time(1, () =>
    Promise.all(ids.map((accountId) => sys.engine.health(accountId, { blockTag }))),
  );
  const withPositions = healths.filter((h) => h.maintenanceRequirement > 0n).length;

  const ms = (xs: number[]): string =>
    `${median(xs).toFixed(0)} ms (runs: ${xs.map((x) => x.toFixed(0)).join(", ")})`;
  console.log(`\nHealth of ${COUNT} accounts (${withPositions} with positions), Hardhat in-process chain`);
  console.log(`  setup (deploy + accounts)            ${setupSeconds.toFixed(1)} s`);
  console.log(
    `  healthMany gas, one call             ${gas.toLocaleString("en-US")} (${(Number(gas) / COUNT).toFixed(0)} per account)`,
  );
  console.log(`  getHealthMany, one call              ${ms(oneCall)}`);
  console.log(`  getHealthMany, default (calls of 200) ${ms(chunked)}`);
  console.log(`  for comparison: ${COUNT} health() calls  ${ms(single)}`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
