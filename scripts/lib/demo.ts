/**
 * The story `npm run demo` prints (scripts/demo.ts runs it; test/e2e/demo.e2e.test.ts checks it): the whole story on Hardhat's in-process chain, printed as tables.
 *
 *   1. deploy     the Ignition module (deploy/modules/XMargin.ts) with the localhost parameters, the
 *                 same path as `npm run deploy:local` (scripts/lib/deploy.ts)
 *   2. collateral several kinds of collateral, ERC-4626 shares priced through convertToAssets
 *   3. liquidity  LP deposit, insurance top-up (scripts/lib/seed.ts, as `npm run seed:local`)
 *   4. cross vs isolated: the same perps in one cross account and two isolated ones, prices +8%, a
 *                 Dutch-auction bid by hand; the positions are closed afterwards
 *   5. traders    option series and traders in cross and isolated accounts with perps and options
 *                 (scripts/lib/seed.ts)
 *   6. crash      ETH 3,000 → 2,650; the keeper's own code (scripts/keeper/loop.ts keeperStep) runs
 *                 in-process against the chain: starts the auction and bids with bidAndClose
 *   7. expiry     time passes the 2-hour series' expiry, a new ETH round is posted; the keeper settles
 *                 the series at that round and pays out the positions
 *   8. options next to perps: the reference books' margin under isolated, standard and portfolio margin
 */
import hre, { ethers } from "hardhat";
import { Wallet, type Signer } from "ethers";
import type { Deployment } from "../../deploy/deployment";
import { deployXMargin } from "./deploy";
import { seedLiquidity, seedTraders, type SeedResult } from "./seed";
import { parseKeeperArgs } from "../keeper/config";
import { Eip1193JsonRpcProvider } from "../keeper/chain";
import { createLogger } from "../keeper/log";
import { keeperStep, openSession, type Session, type StepReport } from "../keeper/loop";
import { TxSender } from "../keeper/sender";
import { MarginMode, openAccount, type System } from "../../test/shared/system";
import { mintAndApprove } from "../../test/shared/tokens";
import { trade } from "../../test/shared/perps";
import { setFeedPrice } from "../../test/shared/oracles";
import { hardhatWallet } from "../../test/shared/e2e";
import { marginTableMarkdown, referenceMarginTable } from "../../test/shared/referenceBooks";
import type { OptionMarket } from "../../typechain-types";

const fmt = (value: bigint, decimals = 18, digits = 2): string =>
  Number(ethers.formatUnits(value, decimals)).toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
const USDC = (x: bigint): bigint => x * 10n ** 6n;
const ratio = (r: bigint): string => (r === ethers.MaxUint256 ? "∞" : fmt(r, 18, 3));

type DemoSystem = System & { options: OptionMarket; deployment: Deployment };

/** Typed handles on the deployed contracts, shaped like the test fixture so its helpers apply. */
async function systemAt(deployment: Deployment): Promise<DemoSystem> {
  const [deployer, alice, bob, carol, keeper, lp] = await ethers.getSigners();
  const c = deployment.contracts;
  const at = ethers.getContractAt;
  const engine = await at("MarginEngine", c.engine);
  return {
    deployment,
    deployer,
    alice,
    bob,
    carol,
    keeper,
    lp,
    manager: await at("AccessManager", c.accessManager),
    router: await at("OracleRouter", c.oracleRouter),
    accounts: await at("Accounts", c.accounts),
    vault: await at("CollateralVault", c.vault),
    engine,
    pool: await at("LiquidityPool", c.liquidityPool),
    insuranceFund: await at("InsuranceFund", c.insuranceFund),
    auction: await at("LiquidationAuction", c.liquidationAuction),
    perps: await at("PerpMarket", c.perpMarket),
    options: await at("OptionMarket", c.optionMarket),
    markets: { ETH: BigInt(deployment.markets.ETH), BTC: BigInt(deployment.markets.BTC) },
    usdc: await at("MockERC20", deployment.tokens.USDC),
    weth: await at("MockERC20", deployment.tokens.WETH),
    wbtc: await at("MockERC20", deployment.tokens.WBTC),
    sweth: await at("MockERC4626", deployment.tokens.sWETH),
    feeds: {
      USDC: await at("MockV3Aggregator", deployment.feeds.USDC),
      ETH: await at("MockV3Aggregator", deployment.feeds.ETH),
      BTC: await at("MockV3Aggregator", deployment.feeds.BTC),
    },
    volFeeds: {
      ETH: await at("MockV3Aggregator", deployment.volatilityFeeds.ETH),
      BTC: await at("MockV3Aggregator", deployment.volatilityFeeds.BTC),
    },
    poolAccountId: await engine.poolAccountId(),
  };
}

async function collateralTable(sys: System, label: string, accountId: bigint): Promise<void> {
  const rows = [];
  for (const token of await sys.vault.collateralTokens(accountId)) {
    const erc20 = await ethers.getContractAt("MockERC20", token);
    const config = await sys.vault.collateralConfig(token);
    const balance = await sys.vault.balanceOf(accountId, token);
    const value = await sys.vault.tokenValue(token, balance);
    rows.push({
      token: await erc20.symbol(),
      balance: fmt(balance, Number(config.decimals), 4),
      "value (USD)": fmt(value),
      "initial weight": fmt(config.initialWeight, 18),
      "maint. weight": fmt(config.maintenanceWeight, 18),
      // Counted at both levels where the account trades the token's underlying: the grid shocks it there.
      "shocked weight": config.shockedWeight === 0n ? "-" : fmt(config.shockedWeight, 18),
    });
  }
  const total = await sys.vault.collateralValue(accountId);
  const mode = (await sys.accounts.marginMode(accountId)) === 0n ? "CROSS" : "ISOLATED";
  out.log(`\n${label}: account #${accountId} (${mode})`);
  out.table(rows);
  out.log(
    `  mark ${fmt(total.mark)} USD | at initial weights ${fmt(total.initial)} | at maintenance weights ${fmt(total.maintenance)}`,
  );
}

async function stakedEth(sys: System, owner: Signer, assets: bigint): Promise<bigint> {
  await mintAndApprove(sys.weth, owner, await sys.sweth.getAddress(), assets);
  await sys.sweth.connect(owner).deposit(assets, await owner.getAddress());
  return sys.sweth.balanceOf(await owner.getAddress());
}

async function healthRows(sys: System, accounts: [string, bigint][]): Promise<Record<string, string>[]> {
  const rows = [];
  for (const [label, id] of accounts) {
    const h = await sys.engine.health(id);
    rows.push({
      account: label,
      equity_IM: fmt(h.equityInitial),
      IM: fmt(h.initialRequirement),
      equity_MM: fmt(h.equityMaintenance),
      MM: fmt(h.maintenanceRequirement),
      "health (eq_MM/MM)": ratio(h.healthRatio),
      status: h.equityMaintenance < h.maintenanceRequirement ? "LIQUIDATABLE" : "healthy",
    });
  }
  return rows;
}

/** The pool's and the insurance fund's state: what LPs own and what backs insolvencies. */
async function protocolLine(sys: System): Promise<string> {
  const shareUnit = 10n ** (await sys.pool.decimals());
  const assetsPerShare = await sys.pool.convertToAssets(shareUnit);
  const fund = await sys.vault.balanceOf(await sys.insuranceFund.accountId(), sys.usdc);
  const [lent, interest] = await Promise.all([sys.vault.quoteDebt(), sys.vault.interestReceivable()]);
  return (
    `LP share price ${fmt(assetsPerShare, 6, 6)} USDC (pool assets ${fmt(await sys.pool.totalAssets(), 6)} USDC) | ` +
    `insurance fund ${fmt(fund, 6)} USDC | ` +
    `USDC owed by traders ${fmt(lent, 6)} + ${fmt(interest, 6)} interest`
  );
}

/** Where the story is printed: the console, or a buffer in the smoke test. */
let out: Pick<Console, "log" | "table"> = console;

/** What happened, for the smoke test's assertions. */
export interface DemoSummary {
  /** Accounts the keeper found liquidatable after the crash, and the actions it sent. */
  liquidated: bigint[];
  liquidationTxs: string[];
  /** The keeper's settlement actions, and blocks from the settlement round to the last payout. */
  settlementTxs: string[];
  settlementBlocks: number;
  /** PositionSettled payouts (USD WAD) by account. */
  payouts: Map<bigint, bigint>;
  /** Transactions a further keeper step sent after settlement. */
  txsAfterSettlement: number;
  elapsedMs: number;
}

export async function runDemo(output: Pick<Console, "log" | "table"> = console): Promise<DemoSummary> {
  out = output;
  const started = Date.now();

  // ---------------------------------------------------------------- 1. deploy
  const { deployment, blocks } = await deployXMargin(hre);
  const sys = await systemAt(deployment);
  out.log(
    `xmargin deployed on the in-process chain by the Ignition module deploy/modules/XMargin.ts ` +
      `(deploy/config/localhost.json, ${blocks} blocks)`,
  );
  out.table(Object.entries(deployment.contracts).map(([name, address]) => ({ contract: name, address })));
  out.log("  prices: ETH 3,000 USD, BTC 60,000 USD, USDC 1 USD (Chainlink MockV3Aggregator feeds)");

  // ---------------------------------------------------------------- 2. collateral
  const aliceMain = await openAccount(sys, sys.alice, MarginMode.CROSS, [
    [sys.usdc, USDC(10_000n)],
    [sys.weth, ethers.parseEther("5")],
    [sys.wbtc, 20_000_000n],
  ]);
  const aliceHedge = await openAccount(sys, sys.alice, MarginMode.ISOLATED, [[sys.usdc, USDC(2_500n)]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, ethers.parseEther("2")]]);
  const bobShares = await stakedEth(sys, sys.bob, ethers.parseEther("3"));
  await sys.sweth.simulateYield(ethers.parseEther("0.3")); // 10% yield accrues to the vault's shares
  await sys.sweth.connect(sys.bob).approve(sys.vault, bobShares);
  await sys.vault.connect(sys.bob).deposit(bob, sys.sweth, bobShares);

  await collateralTable(sys, "Alice, main", aliceMain);
  await collateralTable(sys, "Alice, isolated", aliceHedge);
  await collateralTable(sys, "Bob (sWETH shares priced via convertToAssets after 10% yield)", bob);

  // ---------------------------------------------------------------- 3. liquidity
  const signers = { deployer: sys.deployer, lp: sys.lp, alice: sys.alice, bob: sys.bob, carol: sys.carol };
  const lpShares = await seedLiquidity(deployment, signers);
  out.log(
    `\nThe LP deposits 1,000,000 USDC into the pool (${fmt(lpShares, Number(await sys.pool.decimals()))} xLP shares); ` +
      `10,000 USDC tops up the insurance fund.\n  ${await protocolLine(sys)}`,
  );

  // ---------------------------------------------------------------- 4. cross vs isolated
  await crossVersusIsolated(sys);
  await setFeedPrice(sys.feeds.ETH, "3000");
  await setFeedPrice(sys.feeds.BTC, "60000");

  // ---------------------------------------------------------------- 5. traders, perps and options
  const seeded = { ...(await seedTraders(deployment, signers)), lpShares };
  out.log("\nPrices back at ETH 3,000, BTC 60,000. Traders open perps and options (scripts/lib/seed.ts).");
  await optionSeriesTable(sys, seeded);
  const seededAccounts: [string, bigint][] = [
    ["Alice cross: +1 ETH, −0.2 BTC perps; long calls and a BTC put", seeded.accounts.aliceCross],
    ["Alice isolated: +0.5 BTC perp (0.5 WBTC)", seeded.accounts.aliceIsolated],
    ["Bob isolated: +20 ETH perp (10,000 USDC)", seeded.accounts.bob],
    ["Carol cross: −0.3 BTC perp, −1 ETH-3000 put", seeded.accounts.carol],
    ["Carol isolated: +2 ETH-3000 puts", seeded.accounts.carolOptions],
  ];
  // The keeper opens its account now, so the table below and the crash's "health before" are one
  // reading of one block (a block later, the books' options have decayed by a few seconds).
  const keeper = await startInProcessKeeper(sys);
  const before = await healthRows(sys, seededAccounts);
  out.table(before);
  out.log(`  ${await protocolLine(sys)}`);

  // ---------------------------------------------------------------- 6. crash and the keeper
  out.log("\nETH crashes 11.7% to 2,650.");
  await setFeedPrice(sys.feeds.ETH, "2650");
  const crashBlock = await ethers.provider.getBlockNumber();
  out.table(
    (await healthRows(sys, seededAccounts)).map((row, i) => ({
      account: row.account,
      "health before": before[i]["health (eq_MM/MM)"],
      "equity_MM after": row.equity_MM,
      "MM after": row.MM,
      "health after": row["health (eq_MM/MM)"],
      status: row.status,
    })),
  );
  const walletBefore = await sys.usdc.balanceOf(sys.keeper.address);
  const ethBefore = await ethers.provider.getBalance(sys.keeper.address);
  const liquidation = await keeper.step("liquidation");
  out.log(
    `\nThe keeper (scripts/keeper, run in-process) checked ${liquidation.report.accounts} accounts, found ` +
      `${liquidation.report.liquidatable.map((id) => `#${id}`).join(", ") || "none"} liquidatable, and sent ` +
      `${liquidation.sent.length} transactions: ${liquidation.sent.join(", ")}`,
  );
  await auctionEventsTable(sys, crashBlock);
  out.table(await healthRows(sys, [seededAccounts[2]]));
  const keeperAccount = keeper.session.keeperAccountId!;
  const flagReward = (await sys.usdc.balanceOf(sys.keeper.address)) - walletBefore;
  const bidProfit = await sys.vault.balanceOf(keeperAccount, sys.usdc);
  const gasSpent = ethBefore - (await ethers.provider.getBalance(sys.keeper.address));
  out.log("Keeper profit");
  out.table([
    {
      "flag reward (wallet)": `${fmt(flagReward, 6)} USDC`,
      [`bid discount net of closing (account #${keeperAccount})`]: `${fmt(bidProfit, 6)} USDC`,
      "gas paid": `${fmt(gasSpent, 18, 6)} ETH`,
    },
  ]);
  out.log(`  ${await protocolLine(sys)}`);

  // ---------------------------------------------------------------- 7. expiry and settlement
  const settlement = await expiryAndSettlement(sys, seeded, keeper);

  // ---------------------------------------------------------------- 8. options reference books
  out.log(
    "\nOptions next to perps: initial margin of reference books (ETH 3,000, 30-day options, USD) when each leg\n" +
      "sits in its own isolated account, when legs are margined one by one (standard), and on the portfolio grid",
  );
  out.log(marginTableMarkdown(await referenceMarginTable()));
  const elapsedMs = Date.now() - started;
  out.log(`\ndemo finished in ${(elapsedMs / 1000).toFixed(1)} s`);
  return {
    liquidated: liquidation.report.liquidatable,
    liquidationTxs: liquidation.sent,
    ...settlement,
    elapsedMs,
  };
}

async function optionSeriesTable(sys: DemoSystem, seeded: SeedResult): Promise<void> {
  const rows = [];
  for (const [name, id] of Object.entries(seeded.series)) {
    const s = await sys.options.series(id);
    const [premium] = await sys.options.quoteTrade(id, ethers.parseEther("1"));
    rows.push({
      series: `#${id} ${name}`,
      underlying: ethers.decodeBytes32String(s.underlying),
      strike: fmt(s.strike, 18, 0),
      type: s.isCall ? "call" : "put",
      expiry: s.expiry === seeded.expiries.soon ? "in 2 hours" : "in 30 days",
      "ask (USD)": fmt(premium),
      "open interest long/short": `${fmt(s.longOpenInterest, 18, 1)} / ${fmt(s.shortOpenInterest, 18, 1)}`,
    });
  }
  out.log(
    "\nOption series listed by the LISTING role (Black-Scholes on the volatility feeds: ETH 60%, BTC 50%)",
  );
  out.table(rows);
}

async function auctionEventsTable(sys: System, fromBlock: number): Promise<void> {
  const a = sys.auction;
  const rows: Record<string, string>[] = [];
  for (const e of await a.queryFilter(a.filters.AuctionStarted(), fromBlock)) {
    rows.push({
      block: String(e.blockNumber),
      event: "AuctionStarted",
      account: `#${e.args.accountId}`,
      detail: `equity_MM ${fmt(e.args.equityMaintenance)} < MM ${fmt(e.args.maintenanceRequirement)}; flag reward ${fmt(e.args.flagReward, 6)} USDC to ${e.args.starter === sys.keeper.address ? "the keeper" : e.args.starter}`,
    });
  }
  for (const e of await a.queryFilter(a.filters.AuctionBid(), fromBlock)) {
    rows.push({
      block: String(e.blockNumber),
      event: "AuctionBid",
      account: `#${e.args.accountId}`,
      detail: `bidder #${e.args.bidderAccountId} bought ${fmt(e.args.fraction * 100n, 18, 2)}% for ${fmt(e.args.payment, 6)} USDC at a ${fmt(e.args.discount * 100n, 18, 2)}% discount; penalty ${fmt(e.args.penalty, 6)} USDC`,
    });
  }
  for (const e of await a.queryFilter(a.filters.AuctionEnded(), fromBlock)) {
    const reasons = ["account restored", "fully liquidated", "insolvency resolved"];
    rows.push({
      block: String(e.blockNumber),
      event: "AuctionEnded",
      account: `#${e.args.accountId}`,
      detail: reasons[Number(e.args.reason)] ?? String(e.args.reason),
    });
  }
  rows.sort((x, y) => Number(x.block) - Number(y.block));
  out.log("Auction events");
  out.table(rows);
}

interface InProcessKeeper {
  session: Session;
  /** Runs one keeper step at the current block; returns its report and the actions it sent. */
  step(phase: string): Promise<{ report: StepReport; sent: string[] }>;
}

/**
 * The keeper's code (session, step, sender, logs) against the in-process chain: an ethers provider over
 * Hardhat's EIP-1193 provider instead of HTTP, Hardhat's account #4 as the keeper key, the CLI's defaults.
 */
async function startInProcessKeeper(sys: DemoSystem): Promise<InProcessKeeper> {
  const key = hardhatWallet(4).privateKey;
  const cfg = parseKeeperArgs(["--rpc", "http://in-process", "--deployment", "(in memory)"], {
    KEEPER_PRIVATE_KEY: key,
  });
  if (cfg === "help") throw new Error("unreachable");
  const chainId = sys.deployment.chainId;
  const provider = new Eip1193JsonRpcProvider(hre.network.provider, chainId);
  const wallet = new Wallet(key, provider);
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  const log = createLogger({
    level: "info",
    write: (line) => lines.push(JSON.parse(line) as { msg: string; fields: Record<string, unknown> }),
  });
  const sender = new TxSender(wallet, provider, chainId, log, {
    maxGasPriceWei: cfg.maxGasPriceWei,
    dryRun: false,
    txTimeoutMs: cfg.txTimeoutMs,
    pollMs: 10,
  });
  const session = await openSession(cfg, provider, wallet, sender, log, sys.deployment);
  if (!session) throw new Error("the deployment is not on the chain");
  return {
    session,
    async step(phase: string) {
      const from = lines.length;
      const head = await provider.getBlockNumber();
      const block = await provider.getBlock(head);
      const report = await keeperStep(session, head, BigInt(block!.timestamp), { cfg, sender, log });
      // Each of the demo's blocks is one of the keeper's transactions: a pass leaves its non-urgent sends
      // after the first to the next (loop.ts NonUrgentSends); the phase runs passes until none is left.
      for (let passes = 1; report.deferred && passes < 20; passes++) {
        const next = await provider.getBlockNumber();
        const at = await provider.getBlock(next);
        Object.assign(
          report,
          mergeLaterPass(
            report,
            await keeperStep(session, next, BigInt(at!.timestamp), { cfg, sender, log }),
          ),
        );
      }
      const fresh = lines.slice(from);
      for (const line of fresh.filter((l) => l.msg.includes("failed") || l.msg.includes("reverted")))
        out.log(`  [keeper ${phase}] ${line.msg} ${JSON.stringify(line.fields)}`);
      const sent = fresh.filter((l) => l.msg === "transaction mined").map((l) => String(l.fields.action));
      return { report, sent };
    },
  };
}

/**
 * A phase's report after a later pass of it: its first pass's health read, what every pass sent, and
 * whether sends are still left.
 */
function mergeLaterPass(first: StepReport, later: StepReport): Partial<StepReport> {
  return {
    unwound: [...first.unwound, ...later.unwound],
    swept: first.swept + later.swept,
    fundingAccrued: [...first.fundingAccrued, ...later.fundingAccrued],
    options:
      first.options && later.options
        ? {
            seriesSettled: [...first.options.seriesSettled, ...later.options.seriesSettled],
            positionsSettled: first.options.positionsSettled + later.options.positionsSettled,
            skipped: later.options.skipped,
          }
        : (later.options ?? first.options),
    deferred: later.deferred,
  };
}

/**
 * The 2-hour series expire: time moves past expiry, the feeds are re-posted (their heartbeat is one
 * hour), and ETH's first round after expiry answers 2,900. The keeper settles both series at that round
 * and pays every position out: calls struck at 3,000 expire worthless, puts pay 100 USD each.
 */
async function expiryAndSettlement(
  sys: DemoSystem,
  seeded: SeedResult,
  keeper: InProcessKeeper,
): Promise<Pick<DemoSummary, "settlementTxs" | "settlementBlocks" | "payouts" | "txsAfterSettlement">> {
  const { ethCallSoon, ethPutSoon } = seeded.series;
  const holders: [string, bigint][] = [
    ["Alice cross (+2 calls)", seeded.accounts.aliceCross],
    ["Carol cross (−1 put)", seeded.accounts.carol],
    ["Carol isolated (+2 puts)", seeded.accounts.carolOptions],
    ["pool (counterparty)", sys.poolAccountId],
  ];
  const balances = async () => Promise.all(holders.map(([, id]) => sys.vault.balanceOf(id, sys.usdc)));
  const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
  await ethers.provider.send("evm_increaseTime", [Number(seeded.expiries.soon - now + 60n)]);
  for (const [symbol, feed, answer] of [
    ["USDC", sys.feeds.USDC, "1"],
    ["BTC", sys.feeds.BTC, "60000"],
    ["ETH vol", sys.volFeeds.ETH, "0.6"],
    ["BTC vol", sys.volFeeds.BTC, "0.5"],
  ] as const) {
    void symbol;
    await setFeedPrice(feed, answer);
  }
  const before = await balances();
  await setFeedPrice(sys.feeds.ETH, "2900");
  const roundBlock = await ethers.provider.getBlockNumber();
  const roundId = await sys.feeds.ETH.latestRound();
  out.log(
    `\nTwo hours later the 2-hour series have expired; ETH's first round after expiry (round ${roundId}, block ${roundBlock}) answers 2,900.`,
  );
  const settlement = await keeper.step("settlement");
  const o = sys.options;
  const settled = await o.queryFilter(o.filters.SeriesSettled(), roundBlock);
  const positions = await o.queryFilter(o.filters.PositionSettled(), roundBlock);
  const lastBlock = Math.max(...[...settled, ...positions].map((e) => e.blockNumber));
  out.log(
    `The keeper sent ${settlement.sent.length} transactions (${settlement.sent.join(", ")}); ` +
      `everything was settled ${lastBlock - roundBlock} blocks after the round.`,
  );
  out.table(
    settled.map((e) => ({
      series: `#${e.args.seriesId} ${e.args.seriesId === ethCallSoon ? "ETH-3000 call" : e.args.seriesId === ethPutSoon ? "ETH-3000 put" : ""}`,
      "round used": String(e.args.roundId),
      "settlement price": fmt(e.args.settlementPrice),
    })),
  );
  const after = await balances();
  const paid = new Map<bigint, bigint>();
  for (const e of positions) paid.set(e.args.accountId, (paid.get(e.args.accountId) ?? 0n) + e.args.payout);
  const rows = [];
  for (const [i, [label, id]] of holders.entries()) {
    const left =
      (await o.positionSize(id, ethCallSoon)) !== 0n || (await o.positionSize(id, ethPutSoon)) !== 0n;
    rows.push({
      account: `${label} #${id}`,
      "payout (PositionSettled)": id === sys.poolAccountId ? "–" : fmt(paid.get(id) ?? 0n),
      "USDC balance change": fmt(after[i] - before[i], 6),
      "positions left in the 2-hour series": left ? "yes" : "none",
    });
  }
  out.log("Settlement payouts (USDC)");
  out.table(rows);
  const again = await keeper.step("after settlement");
  out.log(`A further keeper step sends ${again.sent.length} transactions: nothing is left to settle.`);
  out.log(`  ${await protocolLine(sys)}`);
  return {
    settlementTxs: settlement.sent,
    settlementBlocks: lastBlock - roundBlock,
    payouts: paid,
    txsAfterSettlement: again.sent.length,
  };
}

/**
 * The same two positions — long 5 ETH, short 0.25 BTC — held once in a CROSS account and once split
 * over two ISOLATED accounts with the same total collateral. Both prices rise 8%: the ETH gain carries
 * the BTC loss in the cross account, while the isolated short BTC account falls below maintenance.
 * Afterwards Carol closes what is left, so the crash that follows hits the seeded accounts only.
 */
async function crossVersusIsolated(sys: System): Promise<void> {
  const cross = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, USDC(3_400n)]]);
  const isoLong = await openAccount(sys, sys.carol, MarginMode.ISOLATED, [[sys.usdc, USDC(1_700n)]]);
  const isoShort = await openAccount(sys, sys.carol, MarginMode.ISOLATED, [[sys.usdc, USDC(1_700n)]]);
  const eth = ethers.parseEther("5");
  const btc = ethers.parseEther("0.25");
  await trade(sys.perps, sys.carol, cross, sys.markets.ETH, eth);
  await trade(sys.perps, sys.carol, cross, sys.markets.BTC, -btc);
  await trade(sys.perps, sys.carol, isoLong, sys.markets.ETH, eth);
  await trade(sys.perps, sys.carol, isoShort, sys.markets.BTC, -btc);
  const accounts: [string, bigint][] = [
    ["cross: +5 ETH, −0.25 BTC (3,400 USDC)", cross],
    ["isolated: +5 ETH (1,700 USDC)", isoLong],
    ["isolated: −0.25 BTC (1,700 USDC)", isoShort],
  ];

  out.log("\nPerpetuals against the liquidity pool: ETH 3,000, BTC 60,000");
  out.table(await healthRows(sys, accounts));

  await setFeedPrice(sys.feeds.ETH, "3240");
  await setFeedPrice(sys.feeds.BTC, "64800");
  out.log("\nBoth prices +8%: the ETH gain carries the BTC loss only where they share collateral");
  out.table(await healthRows(sys, accounts));

  // The isolated short is liquidated by a Dutch auction: a keeper starts it, Bob buys a slice.
  await sys.auction.connect(sys.keeper).startAuction(isoShort);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, USDC(50_000n)]]);
  const tx = await sys.auction.connect(sys.bob).bid(isoShort, bob, ethers.parseEther("1"), ethers.MaxUint256);
  const receipt = await tx.wait();
  const bid = receipt!.logs
    .map((log) => sys.auction.interface.parseLog(log))
    .find((event) => event?.name === "AuctionBid");
  const [, , fraction, payment, penalty, discount] = bid!.args as unknown as bigint[];
  out.log(
    `\nLiquidation auction of the isolated short: Bob bought ${fmt(fraction * 100n, 18, 2)}% of the portfolio ` +
      `(capped at the fraction that restores it) for ${fmt(payment, 6)} USDC at a ${fmt(discount * 100n, 18, 2)}% ` +
      `discount; penalty to the insurance fund ${fmt(penalty, 6)} USDC.`,
  );
  out.table(await healthRows(sys, [...accounts.slice(2), ["Bob (bidder)", bob]]));

  for (const [owner, id] of [
    [sys.carol, cross],
    [sys.carol, isoLong],
    [sys.carol, isoShort],
    [sys.bob, bob],
  ] as const) {
    for (const key of await sys.engine.accountMarkets(id)) {
      const size = await sys.perps.positionSize(id, key.marketId);
      await (await trade(sys.perps, owner, id, key.marketId, -size)).wait();
    }
  }
}
