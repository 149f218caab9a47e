import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad } from "../shared/system";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { underCoverage } from "../shared/coverage";

const USDC = 10n ** 6n;
/**
 * The issue asked for ≤ 350,000 gas to open a fifth series; that is NOT met (≈ 405k measured). Most of
 * an open is spent outside the market (the first test prints the attribution): the engine's initial-
 * margin check over five series (≈ 190k: five exposure calls of ≈ 16k, each a Black-Scholes valuation
 * with vanna and volga; the vault's collateral valuation with its cold USDC feed, ≈ 29k; the IM grid;
 * the maintenance level is not computed after a trade, which saved ≈ 22k), the engine's position
 * bookkeeping (≈ 24k), premium and fee transfers (≈ 34k) and cold oracle reads (≈ 42k); the market itself
 * takes ≈ 73k plus the 21k base. The security fixes of 2026-12-02 added ≈ 5.4k (the pool's premium-held
 * total, so premiums cannot raise the pool's vega limit) and ≈ 1.5k (the value-weighted short-option
 * floor). Review round 27's pool delta limit added ≈ 12.2k (the series' delta per contract, the
 * underlying's delta sides and ratio: three cold slots), ≈ 32k on a series' first trade (its delta slot
 * goes from zero). Review round 59's sized-requirement decision (the shocks before the size factor) added
 * ≈ 1.6k (the bench's option.open.k4 421,066 → 422,633). These ceilings are the measured values plus a
 * little headroom, kept as regression bounds.
 */
const OPEN_BUDGET = 424_000n;
const OPEN_NEW_SERIES_BUDGET = 501_000n;
const HEALTH_BUDGET = 1_500_000n;

/** 17 ETH series (strikes 2,200 … 3,800 step 100, calls and puts alternating, 30 and 60 days). */
async function book() {
  const sys = await deployOptionsSystem();
  const near = await fromNow(30n * DAY);
  const far = await fromNow(60n * DAY);
  const series: bigint[] = [];
  for (let i = 0n; i < 17n; i++) {
    const strike = String(2200n + 100n * i);
    series.push(await listSeries(sys.options, "ETH", strike, i % 3n === 0n ? far : near, i % 2n === 0n));
  }
  const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  const bobAccount = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  return { ...sys, series, accountId, bobAccount };
}

interface StructLog {
  op: string;
  gas: number;
  depth: number;
  stack?: string[];
}

/** Gas of each call the transaction's top-level contract makes, summed by callee name. */
async function attribute(hash: string, names: Map<string, string>): Promise<Map<string, number>> {
  const trace = (await network.provider.send("debug_traceTransaction", [
    hash,
    { disableMemory: true, disableStorage: true },
  ])) as { structLogs: StructLog[] };
  const logs = trace.structLogs;
  const byCallee = new Map<string, number>();
  for (let i = 0; i < logs.length; i++) {
    const log = logs[i];
    if (log.depth !== 1 || !["CALL", "STATICCALL", "DELEGATECALL"].includes(log.op)) continue;
    const stack = log.stack!;
    const callee = "0x" + stack[stack.length - 2].slice(-40);
    let next = i + 1;
    while (next < logs.length && logs[next].depth > 1) next++;
    const name = names.get(callee.toLowerCase()) ?? callee;
    byCallee.set(name, (byCallee.get(name) ?? 0) + log.gas - logs[next].gas);
  }
  return byCallee;
}

describe("OptionMarket gas", function () {
  before(function () {
    if (underCoverage()) this.skip(); // instrumented bytecode: gas numbers mean nothing
  });

  it(`opens a fifth series in an account for at most ${OPEN_BUDGET} gas (issue budget 350,000: not met)`, async function () {
    const sys = await loadFixture(book);
    const { options, alice, bob, accountId, bobAccount, series } = sys;
    // Other traders already hold every series, so the pool holds them too (the usual case).
    for (let i = 0; i < 5; i++) await tradeOption(options, bob, bobAccount, series[i], wad("2"));
    for (let i = 0; i < 4; i++) {
      await tradeOption(options, alice, accountId, series[i], i % 2 === 0 ? wad("1") : -wad("1"));
    }
    // A sale: the margin check runs over all five series.
    const tx = await tradeOption(options, alice, accountId, series[4], -wad("1"));
    const receipt = (await tx.wait())!;
    const names = new Map<string, string>();
    for (const name of ["engine", "router", "accounts", "vault"] as const) {
      names.set((await sys[name].getAddress()).toLowerCase(), name);
    }
    const parts = await attribute(tx.hash, names);
    const outside = [...parts.values()].reduce((a, b) => a + b, 0);
    console.log(
      `      open 5th series: ${receipt.gasUsed} gas; calls out of the market:`,
      Object.fromEntries(parts),
    );
    console.log(
      `      the market itself (incl. 21,000 base and calldata): ${Number(receipt.gasUsed) - outside}`,
    );
    expect(receipt.gasUsed).to.be.at.most(OPEN_BUDGET);
  });

  it(`opens the first position of a fresh series as a fifth for at most ${OPEN_NEW_SERIES_BUDGET} gas`, async function () {
    const { options, alice, accountId, series } = await loadFixture(book);
    for (let i = 0; i < 4; i++) {
      await tradeOption(options, alice, accountId, series[i], i % 2 === 0 ? wad("1") : -wad("1"));
    }
    // New storage for the series' open interest and pool vega, and the pool starts holding it.
    const receipt = (await (await tradeOption(options, alice, accountId, series[4], -wad("1"))).wait())!;
    console.log(`      first trade of a series, as the account's 5th: ${receipt.gasUsed} gas`);
    expect(receipt.gasUsed).to.be.at.most(OPEN_NEW_SERIES_BUDGET);
  });

  it(`computes the health of an account holding 16 series of one underlying for at most ${HEALTH_BUDGET} gas`, async function () {
    const { options, engine, alice, accountId, series } = await loadFixture(book);
    for (let i = 0; i < 16; i++) {
      await tradeOption(options, alice, accountId, series[i], i % 2 === 0 ? wad("1") : -wad("1"));
    }
    expect((await engine.accountMarkets(accountId)).length).to.equal(16);
    const gas = await engine.health.estimateGas(accountId);
    console.log(`      engine.health, 16 option series on ETH: ${gas} gas (estimateGas, incl. 21,000 base)`);
    expect(gas).to.be.at.most(HEALTH_BUDGET);
  });

  it("measures, for scale, a full revaluation of 16 series over the 15-scenario grid", async function () {
    const bs = await ethers.deployContract("BlackScholesHarness");
    // The IM grid at ETH 3,000: spot ±10%, ±5%, 0 × vol 60% ± 25 points; 16 strikes, 30 days.
    let total = 0n;
    for (let k = 0n; k < 16n; k++) {
      for (const dS of [-300n, -150n, 0n, 150n, 300n]) {
        for (const vol of ["0.35", "0.6", "0.85"]) {
          const strike = wad(String(2200n + 100n * k));
          const [, gasUsed] = await bs.priceGas(
            wad(String(3000n + dS)),
            strike,
            30n * DAY,
            wad(vol),
            k % 2n === 0n,
          );
          total += gasUsed;
        }
      }
    }
    console.log(
      `      full revaluation: 240 Black-Scholes prices = ${total} gas (${total / 240n} per price)`,
    );
    // 16 · 15 · ~5.3k ≈ 1.27M for the library calls alone, against ~16 valuations in a Greek health check.
    expect(total).to.be.greaterThan(1_000_000n);
  });
});
