/**
 * Benchmark: the health of 1,000 accounts through the SDK's `getHealthMany` (MarginEngine.healthMany)
 * on Hardhat's in-process chain. Reported, not asserted (the target: under 2 s).
 *
 *   npx hardhat run scripts/bench-sdk-health.ts        (ACCOUNTS=200 for a quicker run)
 *
 * Setup. Accounts hold one or two collaterals (USDC, WETH, WBTC); two thirds hold an ETH perp, one in five
 * a BTC perp. They are created quickly: with automine off, the transactions of 100 accounts (create,
 * deposits, trades; explicit gas limits, so no estimation) are sent back to back and mined in one block.
 *
 * Measured. `getHealthMany` with the SDK's default chunk size (DEFAULT_CHUNK_SIZE calls, sent in parallel
 * at one block), with other chunk sizes including one call for all accounts, and — for comparison — one
 * `health()` call per account. Each line gives the median wall time of RUNS runs and the median CPU time
 * of this process (the in-process EVM runs in it): on a loaded machine wall time exceeds CPU time.
 * One healthMany call over 1,000 such accounts needs ~39M gas, more than the 2^24 gas per call that
 * Osaka (EIP-7825, the in-process chain's default hardfork) allows: to time the one-call batch the
 * script runs the chain as Prague with a 1e9 block gas limit.
 */
import hre from "hardhat";
import { performance } from "node:perf_hooks";
import { DEFAULT_CHUNK_SIZE, getHealthMany, toHealth, type Health } from "../sdk/src";
import { MarginMode, deploySystem, wad } from "../test/shared/system";
import { sdkClient } from "../test/shared/sdk";

// Before anything touches the provider (it is created on first use).
hre.config.networks.hardhat.hardfork = "prague";
hre.config.networks.hardhat.blockGasLimit = 1_000_000_000;

const COUNT = Number(process.env.ACCOUNTS ?? 1000);
const RUNS = 3;
const MAX_RSS_GB = Number(process.env.MAX_RSS_GB ?? 8);
const USDC = 10n ** 6n;
const BATCH = 100; // accounts per mined block during setup

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Wall and CPU milliseconds of `runs` runs of `f`. */
async function measure(runs: number, f: () => Promise<unknown>): Promise<{ wall: number[]; cpu: number[] }> {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r < runs; r++) {
    const c = process.cpuUsage();
    const t = performance.now();
    await f();
    wall.push(performance.now() - t);
    const used = process.cpuUsage(c);
    cpu.push((used.user + used.system) / 1000);
  }
  return { wall, cpu };
}

async function main(): Promise<void> {
  const setupStart = performance.now();
  const sys = await deploySystem();
  const { alice, accounts, vault, perps, usdc, weth, wbtc } = sys;
  // One mint and one approval per token for every account's deposits.
  for (const [token, amount] of [
    [usdc, 10_000_000n * USDC],
    [weth, wad("1000")],
    [wbtc, 10_000n * 10n ** 8n],
  ] as const) {
    await (await token.mint(alice.address, amount)).wait();
    await (await token.connect(alice).approve(await vault.getAddress(), amount)).wait();
  }
  // The first id is read from a normally mined account; the rest follow it (Accounts ids are sequential).
  const first = await accounts.connect(alice).createAccount.staticCall(MarginMode.CROSS);
  const ids = Array.from({ length: COUNT }, (_, i) => first + BigInt(i));
  const provider = hre.network.provider;
  await provider.send("evm_setAutomine", [false]);
  const [a, v, p] = [accounts.connect(alice), vault.connect(alice), perps.connect(alice)];
  const noDeadline = 2n ** 64n;
  // Explicit nonces and fees: ethers would otherwise ask for the pending nonce, which makes the node
  // re-execute its growing pending block on every transaction.
  let nonce = await alice.getNonce();
  const fees = await hre.ethers.provider.getFeeData();
  const tx = () => ({
    gasLimit: 600_000n,
    nonce: nonce++,
    maxFeePerGas: fees.maxFeePerGas ?? undefined,
    maxPriorityFeePerGas: fees.maxPriorityFeePerGas ?? undefined,
  });
  for (let start = 0; start < COUNT; start += BATCH) {
    const sent: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(start + BATCH, COUNT); i++) {
      const id = ids[i];
      sent.push(a.createAccount(MarginMode.CROSS, tx()));
      sent.push(v.deposit(id, usdc, BigInt(2_000 + (i % 50) * 100) * USDC, tx()));
      if (i % 4 === 1) sent.push(v.deposit(id, weth, wad("0.5"), tx()));
      if (i % 4 === 2) sent.push(v.deposit(id, wbtc, 2n * 10n ** 6n, tx()));
      const eth = (i % 2 === 0 ? 1n : -1n) * wad("0.05");
      if (i % 3 !== 0)
        sent.push(p.trade(id, sys.markets.ETH, eth, eth > 0n ? 2n ** 255n : 0n, noDeadline, tx()));
      const btc = (i % 2 === 0 ? -1n : 1n) * wad("0.002");
      if (i % 5 === 0)
        sent.push(p.trade(id, sys.markets.BTC, btc, btc > 0n ? 2n ** 255n : 0n, noDeadline, tx()));
    }
    await Promise.all(sent);
    await provider.send("evm_mine", []);
  }
  await provider.send("evm_setAutomine", [true]);
  const setupSeconds = (performance.now() - setupStart) / 1000;
  // Every transaction succeeded: the last account exists and holds its deposit.
  if ((await vault.balanceOf(ids[COUNT - 1], usdc)) === 0n) throw new Error("setup failed");

  const client = await sdkClient(sys, alice);
  const blockTag = await hre.ethers.provider.getBlockNumber();
  const gasLimit = 900_000_000n;
  const gas = await sys.engine.healthMany.estimateGas(ids, { gasLimit });
  const chunked = (chunkSize: number) => () =>
    getHealthMany(client, { accountIds: ids, blockTag, chunkSize, gasLimit });
  const print = (label: string, m: { wall: number[]; cpu: number[] }): void => {
    console.log(
      `    ${label.padEnd(32)} ${median(m.wall).toFixed(0).padStart(8)} ${median(m.cpu).toFixed(0).padStart(10)}   ${m.wall.map((x) => x.toFixed(0)).join(", ")}`,
    );
  };
  // Hardhat's in-process EVM keeps memory per large call (GBs over a run of 62M-gas calls on this
  // machine): stop before it takes the machine down.
  const memoryOk = (): boolean => {
    const gb = process.memoryUsage().rss / 2 ** 30;
    if (gb > MAX_RSS_GB) console.log(`    (stopping: the process holds ${gb.toFixed(1)} GiB)`);
    return gb <= MAX_RSS_GB;
  };
  // Warm up the EVM and the client (first calls compile and cache).
  const healths: Health[] = await getHealthMany(client, { accountIds: ids, blockTag });
  const withPositions = healths.filter((h) => h.maintenanceRequirement > 0n).length;
  console.log(`\nHealth of ${COUNT} accounts (${withPositions} with positions), Hardhat in-process chain`);
  console.log(`  setup (deploy + accounts)          ${setupSeconds.toFixed(1)} s`);
  console.log(
    `  healthMany gas, one call           ${gas.toLocaleString("en-US")} (${(Number(gas) / COUNT).toFixed(0)} per account)`,
  );
  console.log(`  getHealthMany                      wall ms     CPU ms   (medians; wall of each run)`);
  print(
    `default (calls of ${DEFAULT_CHUNK_SIZE})`,
    await measure(RUNS, () => getHealthMany(client, { accountIds: ids, blockTag })),
  );
  // Where the time of one default call goes: the node's eth_call (EVM) against ABI decoding.
  const to = await sys.engine.getAddress();
  const chunk = ids.slice(0, DEFAULT_CHUNK_SIZE);
  const data = sys.engine.interface.encodeFunctionData("healthMany", [chunk]);
  let raw = "0x";
  print(
    `  one chunk: eth_call (raw)`,
    await measure(RUNS, async () => {
      raw = await hre.ethers.provider.call({ to, data, blockTag });
    }),
  );
  print(
    `  one chunk: ABI decode + toHealth`,
    await measure(RUNS, async () =>
      (sys.engine.interface.decodeFunctionResult("healthMany", raw)[0] as Health[]).map(toHealth),
    ),
  );
  for (const size of [500, 100, 50, 25]) {
    if (size >= COUNT || !memoryOk()) continue;
    print(`calls of ${size}`, await measure(RUNS, chunked(size)));
  }
  if (memoryOk()) print(`one call (${COUNT})`, await measure(1, chunked(COUNT)));
  if (memoryOk()) {
    print(
      `${COUNT} health() calls`,
      await measure(1, () => Promise.all(ids.map((accountId) => sys.engine.health(accountId, { blockTag })))),
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
