/**
 * Review round 153 measuring script: the bench's perp.open.first, perp.open.first.wethMargined,
 * health.k1 and auction.bid.k1 (same setup, same steady clock), and debug_traceTransaction of the two
 * first opens split by contract frame and by storage access. `npx hardhat run scripts/traceFirstOpen.ts`.
 * TRACE_OUT=<file.json> writes the raw attribution.
 */
import { writeFileSync } from "node:fs";
import { ethers, network } from "hardhat";
import type { ContractTransactionResponse } from "ethers";
import { MarginMode, deploySystem, openAccount, wad, type System } from "../test/shared/system";
import { marketParams, trade } from "../test/shared/perps";
import { INTEREST_MODEL } from "../test/shared/interest";
import { healthGas, steadyClock } from "./lib/gasMeasurement";

const USDC = 10n ** 6n;

async function receipt(tx: Promise<ContractTransactionResponse>) {
  return (await (await tx).wait())!;
}

interface StructLog {
  pc: number;
  op: string;
  gas: number;
  gasCost: number;
  depth: number;
  stack?: string[];
}

interface Access {
  contract: string;
  op: string;
  slot: string;
  value?: string;
  cost: number;
}

/** Exclusive gas per storage context (a frame's own steps, call overheads included), and each access. */
async function attribute(hash: string, to: string, names: Map<string, string>) {
  const trace = (await network.provider.send("debug_traceTransaction", [
    hash,
    { disableMemory: true, disableStorage: true },
  ])) as { structLogs: StructLog[]; gas: number };
  const logs = trace.structLogs;
  const name = (a: string) => names.get(a.toLowerCase()) ?? a.toLowerCase();
  const frames: string[] = [name(to)];
  const byContract: Record<string, number> = {};
  const byOp: Record<string, number> = {};
  const accesses: Access[] = [];
  const steps: [string, number, number][] = [];
  for (let i = 0; i < logs.length; i++) {
    const l = logs[i];
    const here = frames[l.depth - 1];
    let cost: number;
    if (
      ["CALL", "STATICCALL", "DELEGATECALL", "CALLCODE"].includes(l.op) &&
      logs[i + 1]?.depth === l.depth + 1
    ) {
      // The call's own overhead: what the caller lost minus what the callee used.
      let end = i + 1;
      while (end < logs.length && logs[end].depth > l.depth) end++;
      const last = logs[end - 1];
      const childUsed = logs[i + 1].gas - (last.gas - last.gasCost);
      cost = l.gas - logs[end].gas - childUsed;
      const target = "0x" + l.stack![l.stack!.length - 2].slice(-40);
      frames[l.depth] = l.op === "DELEGATECALL" ? here : name(target);
    } else if (i + 1 < logs.length && logs[i + 1].depth === l.depth) {
      cost = l.gas - logs[i + 1].gas;
    } else {
      cost = l.gasCost;
    }
    byContract[here] = (byContract[here] ?? 0) + cost;
    if (here === "Vault" || here === "Engine") steps.push([here, l.pc, cost]);
    const key =
      l.op === "SLOAD" || l.op === "SSTORE" ? `${l.op}.${cost}` : l.op.startsWith("LOG") ? "LOG" : l.op;
    byOp[key] = (byOp[key] ?? 0) + cost;
    if (l.op === "SLOAD" || l.op === "SSTORE") {
      const s = l.stack!;
      accesses.push({
        contract: here,
        op: l.op,
        slot: s[s.length - 1],
        value: l.op === "SSTORE" ? s[s.length - 2] : undefined,
        cost,
      });
    }
  }
  return { byContract, byOp, accesses, steps, total: Object.values(byContract).reduce((a, b) => a + b, 0) };
}

async function names(sys: System): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  const entries: [string, { getAddress(): Promise<string> }][] = [
    ["Vault", sys.vault],
    ["Engine", sys.engine],
    ["PerpMarket", sys.perps],
    ["Router", sys.router],
    ["Accounts", sys.accounts],
    ["Auction", sys.auction],
    ["Pool", sys.pool],
    ["Manager", sys.manager],
    ["USDC", sys.usdc],
    ["WETH", sys.weth],
    ["feed.USDC", sys.feeds.USDC],
    ["feed.ETH", sys.feeds.ETH],
    ["feed.BTC", sys.feeds.BTC],
    ["volFeed.ETH", sys.volFeeds.ETH],
  ];
  for (const [n, c] of entries) m.set((await c.getAddress()).toLowerCase(), n);
  return m;
}

/**
 * steady: the deployments' state rather than the fixture's: an interest-rate model set (deploy/ sets one)
 * and another WETH-margined trader already in debt, so the vault's debt total, scaled debt and clock are
 * nonzero before the measured trades.
 */
async function firstOpens(steady: boolean) {
  const sys = await deploySystem();
  if (steady) await sys.vault.setInterestRateModel(INTEREST_MODEL);
  const noFunding = marketParams({ maxFundingVelocity: 0n });
  await sys.perps.setMarketParams(sys.markets.ETH, noFunding);
  await sys.perps.setMarketParams(sys.markets.BTC, noFunding);
  const eth = sys.markets.ETH;
  const size = wad(1000) / 3000n;
  const id = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  const pioneer = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.alice, pioneer, eth, size);
  if (steady) {
    await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
    const earlier = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.weth, wad(10)]]);
    await trade(sys.perps, sys.keeper, earlier, eth, size);
  }
  const usdcOpen = await receipt(trade(sys.perps, sys.carol, id, eth, size));
  const healthK1 = await healthGas(sys.engine, id);
  if (!steady) await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
  const wethAccount = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad(10)]]);
  const wethOpen = await receipt(trade(sys.perps, sys.bob, wethAccount, eth, size));
  const healthWeth = await healthGas(sys.engine, wethAccount);
  const n = await names(sys);
  const perpsAddr = await sys.perps.getAddress();
  return {
    gas: {
      "perp.open.first": Number(usdcOpen.gasUsed),
      "perp.open.first.wethMargined": Number(wethOpen.gasUsed),
      "health.k1": healthK1,
      "health.k1.wethMargined": healthWeth,
    },
    usdc: await attribute(usdcOpen.hash, perpsAddr, n),
    weth: await attribute(wethOpen.hash, perpsAddr, n),
  };
}

async function bidK1() {
  const sys = await deploySystem();
  const noFunding = marketParams({ maxFundingVelocity: 0n });
  await sys.perps.setMarketParams(sys.markets.ETH, noFunding);
  await sys.perps.setMarketParams(sys.markets.BTC, noFunding);
  const victims = [];
  for (const owner of [sys.alice, sys.carol]) {
    const id = await openAccount(sys, owner, MarginMode.CROSS, [[sys.usdc, 150n * USDC]]);
    await trade(
      sys.perps,
      owner,
      id,
      sys.markets.ETH,
      (wad(1000) * 10n ** 8n) / (await sys.feeds.ETH.latestAnswer()),
    );
    victims.push(id);
  }
  await sys.feeds.ETH.updateAnswer(((await sys.feeds.ETH.latestAnswer()) * 90n) / 100n);
  const bidder = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await sys.auction.startAuction(victims[0]);
  const r = await receipt(
    sys.auction.connect(sys.bob).bid(victims[0], bidder, wad("0.05"), ethers.MaxUint256),
  );
  const n = await names(sys);
  const traced = await attribute(r.hash, await sys.auction.getAddress(), n);
  const events: Record<string, number> = {};
  for (const log of r.logs) {
    const parsed = sys.vault.interface.parseLog(log) ?? sys.engine.interface.parseLog(log);
    if (parsed) events[parsed.name] = (events[parsed.name] ?? 0) + 1;
  }
  console.log("bid events", events);
  return { gas: Number(r.gasUsed), byContract: traced.byContract, steps: traced.steps };
}

function report(opens: Awaited<ReturnType<typeof firstOpens>>): void {
  const contracts = new Set([...Object.keys(opens.usdc.byContract), ...Object.keys(opens.weth.byContract)]);
  console.log("\nby contract (exclusive)   usdc   weth   diff");
  for (const c of contracts) {
    const a = opens.usdc.byContract[c] ?? 0;
    const b = opens.weth.byContract[c] ?? 0;
    console.log(
      `${c.padEnd(24)} ${String(a).padStart(7)} ${String(b).padStart(7)} ${String(b - a).padStart(7)}`,
    );
  }
  console.log(`traced total ${opens.usdc.total} ${opens.weth.total}`);
  const ops = new Set([...Object.keys(opens.usdc.byOp), ...Object.keys(opens.weth.byOp)]);
  console.log("\nby op          usdc    weth    diff");
  const rest = [0, 0];
  for (const o of [...ops].sort()) {
    const a = opens.usdc.byOp[o] ?? 0;
    const b = opens.weth.byOp[o] ?? 0;
    if (/^(SLOAD|SSTORE|LOG|CALL|STATICCALL)/.test(o)) {
      console.log(
        `${o.padEnd(12)} ${String(a).padStart(7)} ${String(b).padStart(7)} ${String(b - a).padStart(7)}`,
      );
    } else {
      rest[0] += a;
      rest[1] += b;
    }
  }
  console.log(
    `${"other ops".padEnd(12)} ${String(rest[0]).padStart(7)} ${String(rest[1]).padStart(7)} ${String(rest[1] - rest[0]).padStart(7)}`,
  );
}

async function main(): Promise<void> {
  steadyClock();
  const opens = await firstOpens(false);
  const bid = await bidK1();
  const steady = await firstOpens(true);
  const gas = { ...opens.gas, "auction.bid.k1": bid.gas };
  console.log("bid by contract", bid.byContract);
  console.log(gas);
  report(opens);
  console.log("\nsteady state (interest model set, another debtor):", steady.gas);
  report(steady);
  if (process.env.TRACE_OUT)
    writeFileSync(process.env.TRACE_OUT, JSON.stringify({ ...opens, gas, steady, bid }, null, 1));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
