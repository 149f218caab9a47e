/**
 * `npm run bench`: gas per operation (from receipts, and `eth_estimateGas` for views) on the in-process
 * chain with Chainlink's mock feeds, the scaling with the number of markets an account holds, and the
 * keeper's scan time with the batched health view against one call per account. Writes
 * bench/results.json (stable keys) and bench/results.md. Deterministic except the keeper timings.
 */
import { writeFileSync, mkdirSync } from "node:fs";
import { ethers, network, run } from "hardhat";
import { TASK_NODE_CREATE_SERVER } from "hardhat/builtin-tasks/task-names";
import { JsonRpcProvider, type ContractTransactionResponse } from "ethers";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import {
  EXIT_DELAY,
  HOLDING_PERIOD,
  MarginMode,
  deploySystem,
  openAccount,
  wad,
  type System,
} from "../test/shared/system";
import { addPerpUnderlying, marketParams, mineAt, trade } from "../test/shared/perps";
import { mintAndApprove } from "../test/shared/tokens";
import { SEQUENCER_GRACE, configureSequencer, setSequencerStatus } from "../test/shared/oracles";
import { startLatencyProxy } from "./lib/latencyProxy";
import { healthGas, steadyClock } from "./lib/gasMeasurement";
import type { MarginEngine } from "../typechain-types";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../test/shared/options";
import { INTEREST_MODEL } from "../test/shared/interest";

const USDC = 10n ** 6n;
/** Round-trip latency the proxy adds in the "remote RPC" keeper scan (a hosted endpoint nearby). */
const RPC_LATENCY_MS = Number(process.env.BENCH_RPC_LATENCY_MS ?? 20);
const gas: Record<string, number> = {};
const keeper: Record<string, number> = {};
const notes: string[] = [];

async function used(tx: Promise<ContractTransactionResponse>): Promise<number> {
  return Number((await (await tx).wait())!.gasUsed);
}

/** Markets 1..n on distinct underlyings (ETH, BTC, then X2, X3, ...), funding off for determinism. */
async function marketsUpTo(sys: System, n: number): Promise<{ ids: bigint[]; prices: bigint[] }> {
  const noFunding = marketParams({ maxFundingVelocity: 0n });
  await sys.perps.setMarketParams(sys.markets.ETH, noFunding);
  await sys.perps.setMarketParams(sys.markets.BTC, noFunding);
  const ids = [sys.markets.ETH, sys.markets.BTC];
  const prices = [3000n, 60000n];
  for (let i = 2; i < n; i++) {
    ids.push((await addPerpUnderlying(sys, sys.perps, `X${i}`, "100", "0.6", noFunding)).marketId);
    prices.push(100n);
  }
  return { ids, prices };
}

async function accountsAndCollateral(sys: System): Promise<void> {
  gas["account.create"] = await used(sys.accounts.connect(sys.alice).createAccount(MarginMode.CROSS));
  // Someone already holds WETH in the vault: "first" is an account's first deposit of a token, not the
  // vault's (that one also pays for the vault's balance slot and the token's total: ~141,000).
  await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, ethers.parseEther("1")]]);
  const id = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10n * USDC]]);
  const amount = ethers.parseEther("1");
  await mintAndApprove(sys.weth, sys.bob, await sys.vault.getAddress(), 2n * amount);
  gas["deposit.first"] = await used(sys.vault.connect(sys.bob).deposit(id, sys.weth, amount));
  gas["deposit.repeat"] = await used(sys.vault.connect(sys.bob).deposit(id, sys.weth, amount));
  gas["withdraw"] = await used(
    sys.vault.connect(sys.bob).withdraw(id, sys.weth, amount / 2n, sys.bob.address),
  );
}

async function perpsScaling(sys: System): Promise<void> {
  const { ids, prices } = await marketsUpTo(sys, 17);
  const owner = sys.carol;
  const id = await openAccount(sys, owner, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  const size = (i: number): bigint => wad(1000) / prices[i]; // $1,000 per market
  // The market's first trade ever also fills the pool's position and the market's open-interest slots;
  // `perp.open.first` is an account's first position in a market others already trade.
  const pioneer = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  gas["perp.open.firstInMarket"] = await used(trade(sys.perps, sys.alice, pioneer, ids[0], size(0)));
  gas["perp.open.first"] = await used(trade(sys.perps, owner, id, ids[0], size(0)));
  gas["health.k1"] = await healthGas(sys.engine, id);
  gas["perp.open.k1"] = await used(trade(sys.perps, owner, id, ids[0], size(0)));
  for (let k = 2; k <= 16; k++) {
    await trade(sys.perps, owner, id, ids[k - 1], size(k - 1));
    if ([4, 8, 16].includes(k)) {
      gas[`health.k${k}`] = await healthGas(sys.engine, id);
      gas[`perp.open.k${k}`] = await used(trade(sys.perps, owner, id, ids[0], size(0)));
    }
  }
  const closer = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.alice, closer, ids[0], size(0));
  gas["perp.close"] = await used(sys.perps.connect(sys.alice).closePosition(closer, ids[0], 0n, 2n ** 64n));
  // The same first position on WETH margin, at WETH's deployed shocked weight: the engine shocks the WETH
  // with the ETH position (docs/decisions.md, Margin), which USDC margin does not pay for.
  await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
  const wethMargined = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad(10)]]);
  gas["perp.open.first.wethMargined"] = await used(trade(sys.perps, sys.bob, wethMargined, ids[0], size(0)));
  gas["health.k1.wethMargined"] = await healthGas(sys.engine, wethMargined);
  // The fixture sets no interest model and that open was the vault's first debt: it wrote the debt totals
  // and the interest clock from zero, which a deployment pays once. The common case: the model set (deploy/
  // sets one) and a debt already outstanding.
  await sys.vault.setInterestRateModel(INTEREST_MODEL);
  const nextWethMargined = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad(10)]]);
  gas["perp.open.first.wethMargined.steady"] = await used(
    trade(sys.perps, sys.bob, nextWethMargined, ids[0], size(0)),
  );
  // `perp.open.first` placed by a trader with a limited allowance (Accounts.authorizeTrade spends it).
  const granted = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await sys.accounts.connect(sys.bob).setTrader(granted, sys.alice, 1_000n * USDC);
  gas["perp.open.firstByTrader"] = await used(trade(sys.perps, sys.alice, granted, ids[0], size(0)));
}

/**
 * Alice's and Carol's books, each long 1,000 USD in each of k markets on 150·k USDC, every price then
 * down 10% (both under water); Bob's bidder account with 100,000 USDC.
 */
async function booksUnderWater(sys: System, k: number) {
  const { ids } = await marketsUpTo(sys, Math.max(k, 2));
  const feeds = [sys.feeds.ETH, sys.feeds.BTC];
  for (let i = 2; i < k; i++)
    feeds.push(
      await ethers.getContractAt(
        "MockV3Aggregator",
        await sys.router.primaryFeed(ethers.encodeBytes32String(`X${i}`)),
      ),
    );
  const victims = [];
  for (const owner of [sys.alice, sys.carol]) {
    const id = await openAccount(sys, owner, MarginMode.CROSS, [[sys.usdc, 150n * BigInt(k) * USDC]]);
    for (let i = 0; i < k; i++) {
      await trade(sys.perps, owner, id, ids[i], (wad(1000) * 10n ** 8n) / (await feeds[i].latestAnswer()));
    }
    victims.push(id);
  }
  for (const feed of feeds.slice(0, k)) await feed.updateAnswer(((await feed.latestAnswer()) * 90n) / 100n);
  const bidder = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  return { victims, bidder };
}

/** Bob's bid for 5% of `victim`'s book. */
function bidFivePercent(sys: System, victim: bigint, bidder: bigint) {
  return sys.auction.connect(sys.bob).bid(victim, bidder, wad("0.05"), ethers.MaxUint256);
}

async function auctions(): Promise<void> {
  for (const k of [1, 4, 8]) {
    const sys = await deploySystem();
    const { victims, bidder } = await booksUnderWater(sys, k);
    const start = await used(sys.auction.startAuction(victims[0]));
    if (k === 1) gas["auction.start"] = start;
    gas[`auction.bid.k${k}`] = await used(bidFivePercent(sys, victims[0], bidder));
    if (k === 1) {
      const closer = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await sys.accounts.connect(sys.keeper).approve(sys.auction, closer);
      await sys.auction.startAuction(victims[1]);
      gas["auction.bidAndClose.k1"] = await used(
        sys.auction.connect(sys.keeper).bidAndClose(victims[1], closer, wad("0.05"), ethers.MaxUint256),
      );
    }
    if (k <= 4) {
      // The rest of the first auction, nobody else bidding: the backstop absorbs it at dmax.
      const { startTime } = await sys.auction.auctions(victims[0]);
      await mineAt(sys, startTime + BigInt((await sys.auction.params()).duration));
      gas[`auction.absorb.k${k}`] = await used(sys.auction.absorb(victims[0]));
    }
  }
}

/**
 * `perp.open.first` and the k = 1 bid on an L2 deployment (a sequencer-uptime feed, up for a day, which
 * the router checks on every price read): the bid as it is, and as the first bid after a one-minute
 * outage and its grace hour interrupted the auction, whose clock then reads the feed's two earlier rounds
 * to pause (`LiquidationAuction._clockStart`).
 */
async function onL2(): Promise<void> {
  const l2 = await deploySystem();
  await configureSequencer(l2.router, 0, DAY);
  const { ids } = await marketsUpTo(l2, 2);
  const size = wad(1000) / 3000n;
  const pioneer = await openAccount(l2, l2.alice, MarginMode.CROSS, [[l2.usdc, 10_000n * USDC]]);
  await trade(l2.perps, l2.alice, pioneer, ids[0], size);
  const id = await openAccount(l2, l2.carol, MarginMode.CROSS, [[l2.usdc, 1_000_000n * USDC]]);
  gas["perp.open.first.l2"] = await used(trade(l2.perps, l2.carol, id, ids[0], size));
  gas["health.k1.l2"] = await healthGas(l2.engine, id);
  for (const interrupted of [false, true]) {
    const sys = await deploySystem();
    const sequencer = await configureSequencer(sys.router, 0, DAY);
    const { victims, bidder } = await booksUnderWater(sys, 1);
    await sys.auction.startAuction(victims[0]);
    if (interrupted) {
      const { startTime } = await sys.auction.auctions(victims[0]);
      await setSequencerStatus(sequencer, 1, startTime + 60n);
      await setSequencerStatus(sequencer, 0, startTime + 120n);
      await mineAt(sys, startTime + 120n + SEQUENCER_GRACE + 1n);
    }
    gas[interrupted ? "auction.bid.k1.l2.afterOutage" : "auction.bid.k1.l2"] = await used(
      bidFivePercent(sys, victims[0], bidder),
    );
  }
}

/** Twenty one-market books under water started in one `startAuctions` (the keeper's batch) vs one each. */
async function startBatch(): Promise<void> {
  const sys = await deploySystem();
  const victims: bigint[] = [];
  for (let i = 0; i < 21; i++) {
    const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 150n * USDC]]);
    await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("0.3333"));
    victims.push(id);
  }
  await sys.feeds.ETH.updateAnswer(((await sys.feeds.ETH.latestAnswer()) * 90n) / 100n);
  gas["auction.start.single"] = await used(sys.auction.startAuction(victims[20]));
  gas["auction.startAuctions.n20"] = await used(sys.auction.startAuctions(victims.slice(0, 20)));
  gas["auction.startAuctions.perAccount"] = Math.round(gas["auction.startAuctions.n20"] / 20);
}

/** Option open with 4 series held, health with 16 series on one underlying, and one settlement. */
async function options(): Promise<void> {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(30n * DAY);
  const series: bigint[] = [];
  for (let i = 0n; i < 16n; i++) {
    series.push(await listSeries(sys.options, "ETH", String(2200n + 100n * i), expiry, i % 2n === 0n));
  }
  const owner = sys.carol;
  const id = await openAccount(sys, owner, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  // Each series traded once elsewhere first, so the measured open is not the series' first ever.
  const other = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  for (const s of series) await tradeOption(sys.options, sys.alice, other, s, wad("1"));
  for (let i = 0; i < 4; i++) await tradeOption(sys.options, owner, id, series[i], wad("1"));
  gas["option.open.k4"] = await used(tradeOption(sys.options, owner, id, series[4], wad("1")));
  for (let i = 5; i < 16; i++) await tradeOption(sys.options, owner, id, series[i], wad("1"));
  gas["health.options16"] = await healthGas(sys.engine, id);
  // The same book six hours from expiry: σ√τ ≈ 1.6% < the 10% (IM) and 5% (MM) spot shocks, so every
  // series is repriced in every cell (PortfolioMath.needsRepricing) — the most a health check costs.
  const soon = await fromNow(6n * 3_600n);
  const shortDated: bigint[] = [];
  for (let i = 0n; i < 16n; i++) {
    shortDated.push(await listSeries(sys.options, "ETH", String(2200n + 100n * i), soon, i % 2n === 0n));
  }
  const repriced = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  for (const s of shortDated) await tradeOption(sys.options, sys.bob, repriced, s, wad("1"));
  gas["health.options16.repriced"] = await healthGas(sys.engine, repriced);
  // Expire, post the settlement round, settle the series and one account.
  await ethers.provider.send("evm_setNextBlockTimestamp", [Number(expiry)]);
  await sys.feeds.ETH.updateAnswer(await sys.feeds.ETH.latestAnswer());
  const round = await sys.feeds.ETH.latestRound();
  gas["option.settleSeries"] = await used(sys.options.settleSeries(series[0], round));
  gas["option.settle"] = await used(sys.options.settleAccount(id, series[0]));
}

/**
 * One cold price read through Chainlink's `MockV3Aggregator` (what every other number here uses) and
 * through a production feed's read path (`EACAggregatorProxy` in front of an OCR aggregator, replicated
 * in contracts/test/ChainlinkReadReplicas.sol): the difference is what each feed read of a health
 * check or trade costs more on a real network.
 */
async function feedReads(): Promise<void> {
  const probe = await ethers.deployContract("FeedReadProbe");
  const mock = await ethers.deployContract("MockV3Aggregator", [8, 3_000n * 10n ** 8n]);
  const aggregator = await ethers.deployContract("OffchainAggregatorReadReplica");
  const proxy = await ethers.deployContract("EACAggregatorProxyReadReplica", [aggregator]);
  await aggregator.addAccess(proxy);
  await aggregator.transmit(3_000n * 10n ** 8n);
  gas["oracle.read.mock"] = Number(await probe.coldRead(mock));
  gas["oracle.read.chainlinkProxy"] = Number(await probe.coldRead(proxy));
  gas["oracle.read.proxyExtra"] = gas["oracle.read.chainlinkProxy"] - gas["oracle.read.mock"];
}

async function liquidityPool(sys: System): Promise<void> {
  const amount = 1_000n * USDC;
  await mintAndApprove(sys.usdc, sys.alice, await sys.pool.getAddress(), amount);
  gas["lp.deposit"] = await used(sys.pool.connect(sys.alice).deposit(amount, sys.alice.address));
  // The new shares are free after the holding period.
  await mineAt(sys, BigInt(await time.latest()) + HOLDING_PERIOD);
  gas["lp.withdraw"] = await used(
    sys.pool.connect(sys.alice).withdraw(amount / 2n, sys.alice.address, sys.alice.address),
  );
  // The deployments' exit: a request, claimed after the exit delay.
  await sys.pool.setExitDelay(EXIT_DELAY);
  gas["lp.requestRedeem"] = await used(
    sys.pool.connect(sys.alice).requestRedeem(await sys.pool.balanceOf(sys.alice)),
  );
  const [shares, , claimableAt] = await sys.pool.redeemRequest(sys.alice);
  await mineAt(sys, claimableAt);
  gas["lp.claimRedeem"] = await used(sys.pool.connect(sys.alice).claimRedeem(shares, sys.alice.address, 0n));
}

/** Sends `n` eth_calls (one per item of `calls`) one after another and returns the elapsed milliseconds. */
async function timeSequential(calls: (() => Promise<unknown>)[]): Promise<number> {
  const t0 = performance.now();
  for (const call of calls) await call();
  return performance.now() - t0;
}

/**
 * Keeper scan: N accounts each holding one perp, checked with `healthMany` (chunks of 250) vs one `health`
 * call per account, both over JSON-RPC: Hardhat's own JSON-RPC server (the one `hardhat node` runs) on
 * top of the in-process chain, queried over HTTP with request batching off, as a keeper against a
 * node would. The in-process figures (no transport) are kept beside them for comparison.
 */
async function keeperScan(): Promise<void> {
  const sys = await deploySystem();
  const sizes = (process.env.BENCH_SCAN_SIZES ?? "100,1000,10000").split(",").map(Number);
  const max = Math.max(...sizes);
  // Setting up 10,000 accounts one transaction at a time takes minutes; a helper contract opens them
  // through the same entry points, 25 per transaction.
  const populator = await ethers.deployContract("AccountPopulator");
  const collateral = 1_000n * USDC;
  await sys.usdc.mint(populator, BigInt(max) * collateral);
  const firstId = (await sys.accounts.totalSupply()) + 1n;
  for (let opened = 0; opened < max; opened += 25) {
    const count = Math.min(25, max - opened);
    await (
      await populator.populate(
        sys.accounts,
        sys.vault,
        sys.usdc,
        collateral,
        sys.perps,
        sys.markets.ETH,
        wad("0.01"),
        count,
      )
    ).wait();
  }
  const ids = Array.from({ length: max }, (_, i) => firstId + BigInt(i));
  const healthy = await sys.engine.healthMany(ids.slice(0, 10));
  if (healthy.some((h) => h.grossNotional === 0n)) throw new Error("populated accounts hold no position");

  // Warm the node's state caches once (the first pass over 10,000 accounts is several times slower
  // than the next): a keeper checks every block, so the steady state is what it lives with.
  for (let i = 0; i < max; i += 250) await sys.engine.healthMany(ids.slice(i, i + 250));

  const server = await run(TASK_NODE_CREATE_SERVER, {
    hostname: "127.0.0.1",
    port: 0,
    provider: network.provider,
  });
  const { port } = await server.listen();
  const nodeUrl = `http://127.0.0.1:${port}`;
  const latency = await startLatencyProxy(nodeUrl, RPC_LATENCY_MS);
  const providers: JsonRpcProvider[] = [];
  /** The engine as seen through `url`, one request per call (no JSON-RPC batching). */
  const engineAt = (url: string) => {
    const provider = new JsonRpcProvider(url, undefined, { batchMaxCount: 1, staticNetwork: true });
    providers.push(provider);
    return sys.engine.connect(provider);
  };
  /** Scans `n` accounts both ways through `engine` and records `<prefix>.{batched,single,ratio}`. */
  const scan = async (engine: MarginEngine, prefix: string, n: number) => {
    const subset = ids.slice(0, n);
    const chunks = Array.from({ length: Math.ceil(n / 250) }, (_, i) => subset.slice(i * 250, (i + 1) * 250));
    // A batched scan of 1,000 accounts is four calls, a second or two, and one garbage collection in it
    // can triple it: take the median of three. The single scan is hundreds of calls and averages itself.
    const batchedRuns: number[] = [];
    for (let run = 0; run < 3; run++) {
      batchedRuns.push(await timeSequential(chunks.map((chunk) => () => engine.healthMany(chunk))));
    }
    const batched = batchedRuns.sort((a, b) => a - b)[1];
    const single = await timeSequential(subset.map((id) => () => engine.health(id)));
    keeper[`${prefix}.batched.n${n}_ms`] = Math.round(batched);
    keeper[`${prefix}.single.n${n}_ms`] = Math.round(single);
    keeper[`${prefix}.ratio.n${n}`] = Math.round((single / batched) * 100) / 100;
  };
  try {
    const local = engineAt(nodeUrl);
    for (const n of sizes) await scan(local, "scan", n);
    const remote = engineAt(latency.url);
    for (const n of sizes.filter((size) => size <= 1000))
      await scan(remote, `scan.rtt${RPC_LATENCY_MS}ms`, n);
    await scan(sys.engine, "inprocess.scan", Math.min(1000, max));
  } finally {
    for (const provider of providers) provider.destroy();
    await latency.close();
    await server.close();
  }
}

async function main(): Promise<void> {
  steadyClock();
  if (process.env.BENCH_ONLY === "keeper") {
    // Iterating on the keeper scan alone: print, do not overwrite the committed results.
    await keeperScan();
    console.log(keeper);
    return;
  }
  await accountsAndCollateral(await deploySystem());
  await perpsScaling(await deploySystem());
  await auctions();
  await onL2();
  await startBatch();
  await options();
  await liquidityPool(await deploySystem());
  await feedReads();
  if (process.env.BENCH_ONLY === "gas") {
    // Iterating on gas alone: print, do not overwrite the committed results.
    console.log(gas);
    return;
  }
  await keeperScan();
  notes.push(
    "Gas from transaction receipts (21,000 base included); health.* is the smallest gas limit at which an eth_call of MarginEngine.health succeeds (eth_estimateGas, searched to the unit). Every transaction is mined one second after the previous block, so the numbers are the same every run.",
    "Markets beyond ETH and BTC are synthetic underlyings X2..X16, each with its own price and volatility feed.",
    "`*.wethMargined`: `perp.open.first` and `health.k1` for an account holding 10 WETH (shocked weight 0.99) instead of USDC: its WETH is a long ETH delta in the ETH group, counted at its shocked weight. Its fee opens a quote debt; `perp.open.first.wethMargined` is the vault's first (no interest model, no debt before: the debt totals and the interest clock written from zero), `perp.open.first.wethMargined.steady` the next such open with the interest model set and that debt outstanding.",
    "`perp.open.firstByTrader`: `perp.open.first` placed by a trader whose grant has a limited allowance (the engine's market check, the allowance write and its event; owners, operators and unlimited grants pay neither).",
    "`auction.absorb.k*`: `LiquidationAuction.absorb` of the auction `auction.bid.k*` left open, once it has run its duration: the backstop account takes the restoring slice at dmax and keeps it (a bid without the bidder's margin check).",
    "`*.l2`: the operation on a deployment with an L2 sequencer-uptime feed (up for a day), which the router checks on every price read. `auction.bid.k1.l2`: `auction.bid.k1` on such a deployment. `auction.bid.k1.l2.afterOutage`: the same bid, the first after a one-minute outage and its grace hour interrupted the auction (the clock reads the feed's two earlier rounds to pause through them).",
    "`auction.startAuctions.n20`: twenty accounts long 0.3333 ETH on 150 USDC each, ETH down 10%, started in one `startAuctions` (the keeper's default `--start-batch`); `auction.start.single`: a 21st such account's own `startAuction`.",
    "`lp.withdraw`: ERC-4626's immediate `withdraw` (the test fixture's pool, exit delay 0); `lp.requestRedeem` and `lp.claimRedeem`: the deployments' exit of the same LP's remaining shares, a request claimed after the exit delay at the lower of the two share prices.",
    `\`oracle.read.*\`: one cold \`latestRoundData\` (gasleft() around the call): Chainlink's \`MockV3Aggregator\`, and a production feed's read path (\`EACAggregatorProxy\` in front of an OCR aggregator: two contracts and five slots, replicated in contracts/test/ChainlinkReadReplicas.sol because solc 0.6 cannot be fetched here). A real feed costs \`oracle.read.proxyExtra\` more per read; a health check reads the quote token's price feed plus a price and a volatility feed per underlying, so on a real network \`health.k16\` would be about ${(33 * gas["oracle.read.proxyExtra"]).toLocaleString("en-US")} gas higher.`,
    "`health.options16`: 16 ETH series 30 days from expiry (on their Greeks); `health.options16.repriced`: 16 series 6 hours from expiry, each repriced in the 15 scenarios of both levels (PortfolioMath.needsRepricing).",
    `Keeper scan: N accounts with one perp each; \`healthMany\` in chunks of 250 (median of three scans) vs one \`health\` call per account, sequential eth_calls over HTTP to Hardhat's JSON-RPC server (the one \`hardhat node\` runs) on the in-process chain, request batching off. \`inprocess.*\`: the same scan without a transport. \`scan.rtt${RPC_LATENCY_MS}ms.*\`: the same over a proxy that holds each request ${RPC_LATENCY_MS} ms, as a hosted endpoint a network hop away would (N ≤ 1,000).`,
  );
  const results = { gas, keeper, notes };
  mkdirSync("bench", { recursive: true });
  writeFileSync("bench/results.json", JSON.stringify(results, null, 2) + "\n");
  const lines = [
    "# Benchmarks",
    "",
    "Reproduce with `npm run bench` (in-process Hardhat chain, Chainlink `MockV3Aggregator` feeds).",
    "",
    "| operation | gas |",
    "| --- | ---: |",
    ...Object.entries(gas).map(([k, v]) => `| \`${k}\` | ${v.toLocaleString("en-US")} |`),
    "",
    "| keeper scan | value |",
    "| --- | ---: |",
    ...Object.entries(keeper).map(([k, v]) => `| \`${k}\` | ${v.toLocaleString("en-US")} |`),
    "",
    ...notes.map((n) => `- ${n}`),
    "",
  ];
  writeFileSync("bench/results.md", lines.join("\n"));
  console.log(lines.join("\n"));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
