/**
 * Market-crash scenarios (issue 8): `npm run stress`, i.e. `hardhat run scripts/stress.ts`.
 *
 * A population of STRESS_ACCOUNTS (default 200) accounts with random leveraged books (seeded:
 * STRESS_SEED) — perps on ETH and BTC, long and short, a quarter of them with short or long options,
 * USDC and WETH collateral, each opened up to 30–97% of its initial margin — then, each from the same
 * snapshot, a price path with the keeper running throughout (scripts/lib/stressKeeper.ts: one keeper
 * pass per step):
 *   crash-24h    ETH and BTC −45% over 24 h in 5-minute steps
 *   gap-20       a single −20% oracle round on ETH and BTC, then an hour of 5-minute steps
 *   vol-spike    ETH and BTC volatility 60% / 50% → 200% at once, then an hour
 *   squeeze      ETH and BTC +60% over 2 h in 5-minute steps, then an hour
 *   bleed        ETH and BTC −15% over 7 days in 2-hour steps, the book skewed so funding runs
 * Per scenario: auctions started, bids, insolvent accounts, bad debt, what the insurance fund paid,
 * what fell on the pool, the LP share-price change, and auctions or bids on an account the engine
 * called healthy at that block (must be 0). WRITE_DOCS=1 writes the table into docs/reliability.md
 * (all scenarios only; STRESS_ONLY=crash-24h,squeeze runs a subset).
 */
import { ethers, network } from "hardhat";
import {
  deploySystem,
  fundInsurance,
  openAccount,
  MarginMode,
  wad,
  type System,
} from "../test/shared/system";
import { deployOptions, listSeries } from "../test/shared/options";
import { mintAndApprove } from "../test/shared/tokens";
import { deploymentOf } from "../test/shared/sdk";
import { isLiquidatable } from "../test/shared/invariants";
import type { OptionMarket } from "../typechain-types";
import type { Deployment } from "../deploy/deployment";
import { createStressKeeper } from "./lib/stressKeeper";
import { writeSection } from "./lib/docSections";
import { mulberry32 } from "./lib/random";

const USDC = 10n ** 6n;
const NO_DEADLINE = 2n ** 64n;
const ACCOUNTS = Number(process.env.STRESS_ACCOUNTS ?? 200);
const SEED = Number(process.env.STRESS_SEED ?? 8);
/** STRESS_ONLY=crash-24h,squeeze runs those scenarios only. */
const ONLY = process.env.STRESS_ONLY?.split(",");
const INSURANCE = 20_000n * USDC;
const POOL_EXTRA = 9_000_000n * USDC;

interface Population {
  sys: System & { options: OptionMarket };
  ids: bigint[];
  series: bigint[];
  keeperAccountId: bigint;
  optionHolders: number;
}

async function populate(): Promise<Population> {
  const sys = await deploySystem();
  const options = await deployOptions(sys);
  const signers = await ethers.getSigners();
  const keeper = signers[4];
  await fundInsurance(sys, INSURANCE);
  await mintAndApprove(sys.usdc, sys.lp, await sys.pool.getAddress(), POOL_EXTRA);
  await sys.pool.connect(sys.lp).deposit(POOL_EXTRA, sys.lp.address);
  const keeperAccountId = await openAccount(sys, keeper, MarginMode.CROSS, [[sys.usdc, 10_000_000n * USDC]]);
  await sys.accounts.connect(keeper).approve(sys.auction, keeperAccountId);
  const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
  const series = [
    await listSeries(options, "ETH", "2700", now + 14n * 86_400n, false),
    await listSeries(options, "ETH", "3300", now + 14n * 86_400n, true),
  ];

  const random = mulberry32(SEED);
  const owners = signers.slice(6);
  const ids: bigint[] = [];
  let optionHolders = 0;
  for (let i = 0; i < ACCOUNTS; i++) {
    const owner = owners[i % owners.length];
    const usdc = BigInt(Math.floor(2_000 + random() * 48_000)) * USDC;
    const deposits: [System["usdc"], bigint][] = [[sys.usdc, usdc]];
    if (random() < 0.3) deposits.push([sys.weth, wad((0.5 + random() * 9.5).toFixed(3))]);
    const id = await openAccount(sys, owner, MarginMode.CROSS, deposits);
    ids.push(id);
    // Target notional: a share u of what the initial requirement allows (~10.2% of notional).
    const h = await sys.engine.health(id);
    const u = 0.3 + random() * 0.67;
    const notional = ((Number(h.equityInitial) / 1e18) * u) / 0.103;
    const ethShare = random();
    // 60% long ETH, and the bleed's funding needs a skewed book: BTC is 70% long.
    const ethSign = random() < 0.6 ? 1 : -1;
    const btcSign = random() < 0.7 ? 1 : -1;
    const ethSize = (ethSign * notional * ethShare) / 3000;
    const btcSize = (btcSign * notional * (1 - ethShare)) / 60000;
    const tryTrade = async (market: bigint, size: number) => {
      for (const scale of [1, 0.5, 0.25]) {
        const delta = wad((size * scale).toFixed(6));
        if (delta === 0n) return;
        try {
          await (
            await sys.perps
              .connect(owner)
              .trade(id, market, delta, delta > 0n ? ethers.MaxUint256 : 0n, NO_DEADLINE)
          ).wait();
          return;
        } catch {
          // not enough margin: try smaller
        }
      }
    };
    await tryTrade(sys.markets.ETH, ethSize);
    await tryTrade(sys.markets.BTC, btcSize);
    if (random() < 0.25) {
      const seriesId = series[random() < 0.5 ? 0 : 1];
      const size = wad((random() < 0.7 ? -1 : 1) * (1 + Math.floor(random() * 5)));
      try {
        await (
          await options
            .connect(owner)
            .trade(id, seriesId, size, size > 0n ? ethers.MaxUint256 : 0n, NO_DEADLINE)
        ).wait();
        optionHolders++;
      } catch {
        // not enough margin left for the option
      }
    }
  }
  return { sys: { ...sys, options }, ids, series, keeperAccountId, optionHolders };
}

interface Step {
  dt: bigint;
  /** Multipliers applied to the ETH and BTC prices in this step. */
  eth: number;
  btc: number;
  /** New volatilities (fractions), if they change. */
  vol?: { eth: number; btc: number };
}

const repeat = (n: number, step: Step): Step[] => Array.from({ length: n }, () => step);
const hold = (n: number, dt = 300n): Step[] => repeat(n, { dt, eth: 1, btc: 1 });

const SCENARIOS: { name: string; description: string; steps: Step[] }[] = [
  {
    name: "crash-24h",
    description: "ETH, BTC −45% over 24 h, 5-min steps (288), then 1 h",
    steps: [...repeat(288, { dt: 300n, eth: 0.55 ** (1 / 288), btc: 0.55 ** (1 / 288) }), ...hold(12)],
  },
  {
    name: "gap-20",
    description: "one −20% oracle round on ETH and BTC, then 1 h of 5-min steps",
    steps: [{ dt: 300n, eth: 0.8, btc: 0.8 }, ...hold(12)],
  },
  {
    name: "vol-spike",
    description: "volatility 60% / 50% → 200% in one round, then 1 h",
    steps: [{ dt: 300n, eth: 1, btc: 1, vol: { eth: 2, btc: 2 } }, ...hold(12)],
  },
  {
    name: "squeeze",
    description: "ETH, BTC +60% over 2 h, 5-min steps (24), then 1 h",
    steps: [...repeat(24, { dt: 300n, eth: 1.6 ** (1 / 24), btc: 1.6 ** (1 / 24) }), ...hold(12)],
  },
  {
    name: "bleed",
    description: "ETH, BTC −15% over 7 days, 2-h steps (84), funding accruing",
    steps: repeat(84, { dt: 7_200n, eth: 0.85 ** (1 / 84), btc: 0.85 ** (1 / 84) }),
  },
];

const scale = (answer: bigint, factor: number): bigint =>
  (answer * BigInt(Math.round(factor * 1e9))) / 10n ** 9n;

async function sharePrice(sys: System): Promise<number> {
  const [assets, supply] = await Promise.all([sys.pool.totalAssets(), sys.pool.totalSupply()]);
  return Number(assets) / Number(supply);
}

async function main(): Promise<void> {
  const started = Date.now();
  const pop = await populate();
  const { sys, ids } = pop;
  console.log(
    `population: ${ids.length} accounts (${pop.optionHolders} with options) in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  const addresses = {
    ...(await deploymentOf(sys)).contracts,
    optionMarket: await sys.options.getAddress(),
  } as Deployment["contracts"];
  const signers = await ethers.getSigners();
  const base = (await network.provider.send("evm_snapshot")) as string;
  const rows: string[] = [];
  let snapshot = base;

  for (const scenario of SCENARIOS.filter((x) => ONLY === undefined || ONLY.includes(x.name))) {
    const t0 = Date.now();
    await network.provider.send("evm_revert", [snapshot]);
    snapshot = (await network.provider.send("evm_snapshot")) as string;
    let clock = BigInt((await ethers.provider.getBlock("latest"))!.timestamp) + 1n;
    const pin = () => network.provider.send("evm_setNextBlockTimestamp", [Number(clock)]);
    const keeper = await createStressKeeper({
      addresses,
      keeper: signers[4],
      keeperAccountId: pop.keeperAccountId,
      engine: sys.engine,
      auction: sys.auction,
      beforeSend: pin,
    });
    const healthsBefore = await healthAll(sys, ids);
    const unhealthyBefore = healthsBefore.filter(isLiquidatable).length;
    const priceBefore = await sharePrice(sys);
    const insuranceBefore = await sys.insuranceFund.balance();

    for (const step of scenario.steps) {
      clock += step.dt;
      for (const [feed, factor] of [
        [sys.feeds.ETH, step.eth],
        [sys.feeds.BTC, step.btc],
        [sys.feeds.USDC, 1],
      ] as const) {
        const answer = await feed.latestAnswer();
        await pin();
        await (await feed.updateAnswer(scale(answer, factor))).wait();
      }
      for (const [feed, vol] of [
        [sys.volFeeds.ETH, step.vol?.eth],
        [sys.volFeeds.BTC, step.vol?.btc],
      ] as const) {
        const answer = vol === undefined ? await feed.latestAnswer() : BigInt(Math.round(vol * 1e8));
        await pin();
        await (await feed.updateAnswer(answer)).wait();
      }
      await keeper.pass(ids);
    }

    const s = keeper.stats;
    const healthsAfter = await healthAll(sys, ids);
    const stillLiquidatable = healthsAfter.filter(isLiquidatable).length;
    const priceAfter = await sharePrice(sys);
    const insuranceAfter = await sys.insuranceFund.balance();
    const fmt = (x: bigint) => (Number(x) / 1e6).toLocaleString("en-US", { maximumFractionDigits: 0 });
    const lpChange = ((priceAfter / priceBefore - 1) * 100).toFixed(3);
    const row = {
      scenario: scenario.name,
      passes: s.passes,
      liquidatableAtStart: unhealthyBefore,
      accountsAuctioned: s.auctioned.size,
      auctions: s.auctionsStarted,
      keeperBids: s.bids,
      backstopAbsorbs: s.absorbs,
      insolvent: s.insolvencies,
      badDebt: fmt(s.deficit),
      insurancePaid: fmt(s.paidByInsurance),
      insuranceNet: fmt(insuranceAfter - insuranceBefore),
      beyondInsurance: fmt(s.socialised),
      lpSharePricePct: lpChange,
      healthyLiquidated: s.healthyLiquidated,
      stillLiquidatable,
      skipped: s.skipped,
      seconds: Math.round((Date.now() - t0) / 1000),
    };
    console.log(JSON.stringify(row));
    rows.push(
      `| ${scenario.name} | ${scenario.description} | ${s.passes} | ${s.auctioned.size} | ${s.auctionsStarted} | ${s.bids} / ${s.absorbs} | ${s.insolvencies} | ${fmt(s.deficit)} | ${fmt(s.paidByInsurance)} | ${fmt(s.socialised)} | ${lpChange}% | ${s.healthyLiquidated} | ${stillLiquidatable} |`,
    );
  }

  const table = [
    `Population: ${ids.length} accounts (seed ${SEED}; ${pop.optionHolders} also hold options), insurance fund`,
    `${fmt6(INSURANCE)} USDC, pool ${fmt6(POOL_EXTRA + 1_000_000n * USDC)} USDC. Amounts in USDC. Keeper bids are`,
    "`bidAndClose` from the keeper's flat account; absorbs are `LiquidationAuction.absorb` calls, the backstop account taking the slice of an auction nobody bid on by its maximum discount (its value is the LPs').",
    "",
    "| Scenario | Path | Keeper passes | Accounts liquidated | Auctions | Bids (keeper) / backstop absorbs | Insolvent | Bad debt | Insurance paid | Beyond insurance (pool) | LP share price | Healthy liquidated | Still liquidatable |",
    "| - | - | - | - | - | - | - | - | - | - | - | - | - |",
    ...rows,
  ].join("\n");
  console.log(table);
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (process.env.WRITE_DOCS === "1" && ONLY === undefined)
    writeSection("docs/reliability.md", "crash-table", table);
}

const fmt6 = (x: bigint) => (Number(x) / 1e6).toLocaleString("en-US");

async function healthAll(sys: System, ids: bigint[]) {
  const out = [];
  for (let i = 0; i < ids.length; i += 40) out.push(...(await sys.engine.healthMany(ids.slice(i, i + 40))));
  return out;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
