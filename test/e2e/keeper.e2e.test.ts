/**
 * The whole system on a real JSON-RPC node: `hardhat node` as a child process, the Ignition module
 * deployed by scripts/deploy.ts, demo accounts seeded (scripts/lib/seed.ts), the keeper CLI as its own
 * process. The tests in this file share one node and run in order (each builds on the chain the
 * previous one left); every process they start is killed in `after`, also when a test fails. The
 * option settlement test runs last: it moves the node's clock two hours ahead.
 */
import { expect } from "chai";
import { parseUnits, type ContractTransactionResponse, type TransactionReceipt } from "ethers";
import { readDeployment, type Deployment } from "../../deploy/deployment";
import type { SeedResult } from "../../scripts/lib/seed";
import { IAccounts__factory } from "../../typechain-types/factories/contracts/interfaces/IAccounts__factory";
import { ICollateralVault__factory } from "../../typechain-types/factories/contracts/interfaces/ICollateralVault__factory";
import { ILiquidationAuction__factory } from "../../typechain-types/factories/contracts/interfaces/ILiquidationAuction__factory";
import { IMarginEngine__factory } from "../../typechain-types/factories/contracts/interfaces/IMarginEngine__factory";
import { IOptionMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IOptionMarket__factory";
import { MockERC20__factory } from "../../typechain-types/factories/contracts/test/MockERC20__factory";
import { MockV3Aggregator__factory } from "../../typechain-types/factories/@chainlink/contracts/src/v0.8/tests/MockV3Aggregator__factory";
import { AccessManager__factory } from "../../typechain-types/factories/@openzeppelin/contracts/access/manager/AccessManager__factory";
import { Role } from "../../deploy/roles";
import {
  hardhatWallet,
  KEEPER_START_MS,
  nodeForSuite,
  nodeProvider,
  sleep,
  startFlakyProxy,
  startKeeper,
  startNode,
  waitFor,
  waitForLog,
  type Proc,
} from "../shared/e2e";

const KEEPER = hardhatWallet(4);
const USDC = 10n ** 6n;
const FLAG_REWARD = 10n * USDC; // deploy/config/localhost.json auction.flagReward

/** Gas for a mock feed's `updateAnswer` (~100,000 at most), above any estimate a second can move. */
const FEED_UPDATE_GAS = 200_000n;

describe("Keeper end to end on a hardhat node", function () {
  // A net under the tests' own bounded waits (a node start, deploys, a keeper's start: up to 75 s of a
  // test under load in review round 133).
  this.timeout(240_000);

  const e2e = nodeForSuite("e2e");
  const { procs, deploymentFile } = e2e;
  let deployment: Deployment;
  /** What the latest seeding created (on the current chain). */
  let seeded: SeedResult;

  /** Seeds demo accounts with the node's unlocked accounts. */
  async function seed(): Promise<SeedResult> {
    seeded = await e2e.seed(deployment);
    return seeded;
  }

  /** Posts a new ETH price on the mock feed; returns the block it landed in. */
  async function setEthPrice(usd: string): Promise<number> {
    const feed = MockV3Aggregator__factory.connect(deployment.feeds.ETH, await e2e.provider.getSigner(0));
    // A fixed gas limit: the estimate runs at the latest block's second, and a round posted in that same
    // second rewrites the stored timestamp at no cost there; mined a second later, the write costs
    // ~2,900 more and an exact estimate ran out of gas (seen once in a full run).
    const receipt = await (await feed.updateAnswer(parseUnits(usd, 8), { gasLimit: FEED_UPDATE_GAS })).wait();
    return receipt!.blockNumber;
  }

  const auction = () =>
    ILiquidationAuction__factory.connect(deployment.contracts.liquidationAuction, e2e.provider);
  const engine = () => IMarginEngine__factory.connect(deployment.contracts.engine, e2e.provider);

  /** Receipts of every transaction `from` sent in blocks [fromBlock, head]. */
  async function receiptsFrom(from: string, fromBlock: number): Promise<TransactionReceipt[]> {
    const head = await e2e.provider.getBlockNumber();
    const receipts: TransactionReceipt[] = [];
    for (let n = fromBlock; n <= head; n++) {
      const block = await e2e.provider.getBlock(n, true);
      for (const tx of block!.prefetchedTransactions) {
        if (tx.from === from) receipts.push((await e2e.provider.getTransactionReceipt(tx.hash))!);
      }
    }
    return receipts;
  }

  /** Waits for the keeper's bid on `accountId` after `fromBlock`; returns the auction's events since then. */
  async function waitForLiquidation(accountId: bigint, fromBlock: number, timeoutMs = 45_000) {
    await waitFor(
      `a bid on account ${accountId}`,
      async () =>
        (await auction().queryFilter(auction().filters.AuctionBid(accountId), fromBlock)).length > 0,
      timeoutMs,
      200,
    );
    return {
      started: await auction().queryFilter(auction().filters.AuctionStarted(), fromBlock),
      bids: await auction().queryFilter(auction().filters.AuctionBid(), fromBlock),
    };
  }

  async function stopGracefully(keeper: Proc): Promise<void> {
    keeper.signal("SIGTERM");
    const code = await Promise.race([keeper.exited, sleep(15_000).then(() => "timeout")]);
    expect(code, "the keeper exits 0 on SIGTERM").to.equal(0);
    expect(keeper.json().some((l) => l.msg === "keeper stopped")).to.equal(true);
  }

  async function keeperAccountId(): Promise<bigint> {
    const ids = await IAccounts__factory.connect(deployment.contracts.accounts, e2e.provider).accountsOf(
      KEEPER.address,
    );
    return ids[ids.length - 1];
  }

  it("deploys the Ignition module twice in a row on a fresh node: the second run sends nothing", async function () {
    const first = await e2e.deploy();
    expect(first.journal).to.equal("none");
    expect(first.blocks).to.be.greaterThan(40);
    const afterFirst = readDeployment(deploymentFile);

    const blockBefore = await e2e.provider.getBlockNumber();
    const second = await e2e.deploy();
    expect(second.journal).to.equal("kept");
    expect(second.blocks).to.equal(0);
    expect(await e2e.provider.getBlockNumber()).to.equal(blockBefore);
    deployment = readDeployment(deploymentFile);
    expect(deployment).to.deep.equal(afterFirst);

    // The handover happened: the timelock is the only admin, the deployer kept its operational roles.
    const manager = AccessManager__factory.connect(deployment.contracts.accessManager, e2e.provider);
    const deployer = hardhatWallet(0).address;
    expect((await manager.hasRole(Role.ADMIN, deployment.contracts.timelock))[0]).to.equal(true);
    expect((await manager.hasRole(Role.ADMIN, deployer))[0]).to.equal(false);
    expect((await manager.hasRole(Role.LISTING, deployer))[0]).to.equal(true);
    expect((await manager.hasRole(Role.TREASURY, deployment.contracts.timelock))[0]).to.equal(true);
    // Wired: engine initialised with the pool, fund and auction; markets listed in config order.
    expect(await engine().liquidator()).to.equal(deployment.contracts.liquidationAuction);
    expect(await engine().insuranceFund()).to.equal(deployment.contracts.insuranceFund);
    expect(deployment.markets).to.deep.equal({ ETH: 1, BTC: 2 });
    expect(Object.keys(deployment.tokens)).to.deep.equal(["USDC", "WETH", "WBTC", "sWETH"]);
    expect(deployment.startBlock).to.equal(1);
  });

  it("auctions and bids on the account a price crash made liquidatable within 5 blocks, and leaves healthy accounts alone", async function () {
    const seeded = await seed();
    const keeper = startKeeper(procs, {
      rpcUrl: e2e.rpcUrl,
      deploymentFile,
      key: KEEPER,
      args: ["--poll-ms", "100"],
    });
    await waitForLog(keeper, "session ready", KEEPER_START_MS);
    const keeperAccount = await keeperAccountId();
    const usdc = MockERC20__factory.connect(deployment.tokens.USDC, e2e.provider);
    const vault = ICollateralVault__factory.connect(deployment.contracts.vault, e2e.provider);
    expect(await vault.balanceOf(keeperAccount, usdc)).to.equal(0n);
    const walletBefore = await usdc.balanceOf(KEEPER.address);

    const crashBlock = await setEthPrice("2650");
    const { started, bids } = await waitForLiquidation(seeded.accounts.bob, crashBlock);

    // Only Bob's account was touched, by the keeper, within 5 blocks of the crash.
    expect(started.map((e) => e.args.accountId)).to.deep.equal([seeded.accounts.bob]);
    expect(started[0].args.starter).to.equal(KEEPER.address);
    expect(started[0].blockNumber).to.be.lte(crashBlock + 5);
    expect(bids.map((e) => [e.args.accountId, e.args.bidderAccountId])).to.deep.equal([
      [seeded.accounts.bob, keeperAccount],
    ]);
    expect(bids[0].blockNumber).to.be.lte(crashBlock + 5);
    // The bid restored Bob (the auction ended), the others were healthy throughout.
    expect((await auction().auctions(seeded.accounts.bob)).active).to.equal(false);
    for (const id of [seeded.accounts.aliceCross, seeded.accounts.aliceIsolated, seeded.accounts.carol]) {
      const h = await engine().health(id);
      expect(h.equityMaintenance).to.be.gte(h.maintenanceRequirement);
    }
    // The keeper earned the flag reward in its wallet and the bid's profit in its account.
    expect(await usdc.balanceOf(KEEPER.address)).to.equal(walletBefore + FLAG_REWARD);
    expect(await vault.balanceOf(keeperAccount, usdc)).to.be.gt(0n);
    expect(await engine().accountMarkets(keeperAccount)).to.have.length(0);
    // Every keeper transaction since the crash succeeded: startAuction, bidAndClose.
    const receipts = await receiptsFrom(KEEPER.address, crashBlock);
    expect(receipts.map((r) => r.status)).to.deep.equal([1, 1]);

    await stopGracefully(keeper);
  });

  it("liquidates through an RPC that fails every 4th request and loses a send's answer, without sending twice", async function () {
    await setEthPrice("3000");
    const seeded = await seed();
    const proxy = await startFlakyProxy(e2e.port, 4);
    try {
      const keeper = startKeeper(procs, {
        rpcUrl: proxy.url,
        deploymentFile,
        key: KEEPER,
        args: ["--poll-ms", "100"],
      });
      await waitForLog(keeper, "session ready", KEEPER_START_MS);
      const nonceBefore = await e2e.provider.getTransactionCount(KEEPER.address);

      const crashBlock = await setEthPrice("2650");
      const { started, bids } = await waitForLiquidation(seeded.accounts.bob, crashBlock);
      await sleep(1_000); // would a duplicate follow?

      expect(started.map((e) => e.args.accountId)).to.deep.equal([seeded.accounts.bob]);
      expect(bids.map((e) => e.args.accountId)).to.deep.equal([seeded.accounts.bob]);
      expect(bids[0].blockNumber).to.be.lte(crashBlock + 5);
      // Exactly two transactions left the keeper (one nonce each) and both succeeded, although the
      // answer to the first eth_sendRawTransaction was lost on the way back.
      const receipts = await receiptsFrom(KEEPER.address, crashBlock);
      expect(receipts.map((r) => r.status)).to.deep.equal([1, 1]);
      expect(await e2e.provider.getTransactionCount(KEEPER.address)).to.equal(nonceBefore + 2);
      expect(proxy.stats.failedAfterForwarding).to.equal(1);
      expect(proxy.stats.failedBeforeForwarding).to.be.greaterThan(3);
      const logs = keeper.json();
      expect(logs.some((l) => l.msg === "send failed but the node has the transaction")).to.equal(true);
      expect(logs.some((l) => l.msg === "rpc retry" || l.msg === "step failed; retrying")).to.equal(true);

      await stopGracefully(keeper);
    } finally {
      await proxy.close();
    }
  });

  it("survives the node restarting: retries while the RPC is down, then liquidates on the redeployed chain", async function () {
    const keeper = startKeeper(procs, {
      rpcUrl: e2e.rpcUrl,
      deploymentFile,
      key: KEEPER,
      args: ["--poll-ms", "100"],
    });
    await waitForLog(keeper, "session ready", KEEPER_START_MS);
    const oldAddresses = deployment.contracts;

    // The node dies: the keeper keeps retrying and stays up.
    e2e.node.kill();
    await e2e.node.exited;
    e2e.provider.destroy();
    const linesBefore = keeper.lines.length;
    await waitForLog(keeper, "step failed; retrying", 15_000, linesBefore);
    await sleep(500);
    expect(keeper.running).to.equal(true);

    // A new node on the same port has lost everything: redeploy (the stale journal is wiped) and reseed.
    e2e.node = await startNode(procs, e2e.port);
    e2e.provider = nodeProvider(e2e.port);
    const redeploy = await e2e.deploy();
    expect(redeploy.journal).to.equal("wiped");
    deployment = readDeployment(deploymentFile);
    expect(deployment.contracts).to.deep.equal(oldAddresses); // same deployer, same nonces
    await waitForLog(keeper, "chain reset detected; rebuilding state", 30_000, linesBefore);
    const seeded = await seed();
    await waitFor(
      "the keeper's session on the new chain",
      () =>
        keeper
          .json()
          .slice(linesBefore)
          .filter((l) => l.msg === "session ready").length > 0,
      30_000,
    );

    // While the new node had no contracts (a redeploy of ~10 s, up to 41 s on a loaded 2-core machine), the keeper
    // said so at most once a minute, not on every retry (≤ 2 s apart): once, unless the redeploy took more
    // than a minute, and then a later line counts the retries it stood for. (Before review round 133:
    // "at most once", which a redeploy past the keeper's one-minute notice interval would fail.)
    const waiting = keeper
      .json()
      .slice(linesBefore)
      .filter((l) => l.msg === "deployment not on chain; waiting");
    const gaps = waiting.slice(1).map((l, i) => Date.parse(l.ts) - Date.parse(waiting[i].ts));
    expect(
      gaps.filter((ms) => ms < 59_000),
      "notices less than a minute apart",
    ).to.deep.equal([]);
    expect(waiting.slice(1).filter((l) => !(Number(l.fields.repeated) >= 1))).to.deep.equal([]);
    const crashBlock = await setEthPrice("2650");
    const { started, bids } = await waitForLiquidation(seeded.accounts.bob, crashBlock);
    expect(started.map((e) => e.args.accountId)).to.deep.equal([seeded.accounts.bob]);
    expect(started[0].blockNumber).to.be.lte(crashBlock + 5);
    expect(bids.map((e) => e.args.accountId)).to.deep.equal([seeded.accounts.bob]);
    expect(bids[0].blockNumber).to.be.lte(crashBlock + 5);
    // On the new chain the keeper sent: createAccount, approve (its account is new), then exactly one
    // startAuction and one bidAndClose, all successful.
    const all = await receiptsFrom(KEEPER.address, 1);
    expect(all.map((r) => r.status)).to.deep.equal([1, 1, 1, 1]);
    expect(await e2e.provider.getTransactionCount(KEEPER.address)).to.equal(4);

    await stopGracefully(keeper);
  });
  it("settles expired option series at the first round after expiry within 3 blocks, pays every holder, and sends nothing for a series another keeper settled", async function () {
    // Funding accrual off: the two-hour jump below makes every market's funding stale, and accruals
    // sent in the pass that overlaps the round's block would be counted as settlement latency.
    const keeper = startKeeper(procs, {
      rpcUrl: e2e.rpcUrl,
      deploymentFile,
      key: KEEPER,
      args: ["--poll-ms", "100", "--funding-interval", "0"],
    });
    await waitForLog(keeper, "session ready", KEEPER_START_MS);
    const deployer = await e2e.provider.getSigner(0);
    const options = IOptionMarket__factory.connect(deployment.contracts.optionMarket, deployer);
    const vault = ICollateralVault__factory.connect(deployment.contracts.vault, e2e.provider);
    const feeds = {
      USDC: MockV3Aggregator__factory.connect(deployment.feeds.USDC, deployer),
      BTC: MockV3Aggregator__factory.connect(deployment.feeds.BTC, deployer),
      ETH: MockV3Aggregator__factory.connect(deployment.feeds.ETH, deployer),
      volETH: MockV3Aggregator__factory.connect(deployment.volatilityFeeds.ETH, deployer),
      volBTC: MockV3Aggregator__factory.connect(deployment.volatilityFeeds.BTC, deployer),
    };
    const { ethCallSoon: call, ethPutSoon: put } = seeded.series;
    const { aliceCross, carol, carolOptions } = seeded.accounts;
    const poolAccount = await engine().poolAccountId();
    const holders = [aliceCross, carol, carolOptions, poolAccount];
    const usdcAddress = deployment.tokens.USDC;
    const balances = () => Promise.all(holders.map((id) => vault.balanceOf(id, usdcAddress)));

    // Two hours pass: the series expire, every feed is past its one-hour heartbeat and is re-posted;
    // meanwhile ETH's latest round is still before expiry, so there is nothing to settle yet.
    const now = BigInt((await e2e.provider.getBlock("latest"))!.timestamp);
    await e2e.provider.send("evm_increaseTime", [Number(seeded.expiries.soon - now + 60n)]);
    for (const [feed, answer] of [
      [feeds.USDC, "1"],
      [feeds.BTC, "60000"],
      [feeds.volETH, "0.6"],
      [feeds.volBTC, "0.5"],
    ] as const) {
      await (await feed.updateAnswer(parseUnits(answer, 8), { gasLimit: FEED_UPDATE_GAS })).wait();
    }
    const before = await balances();

    // One block holds ETH's first round after expiry (2,900) and another keeper's settlement of the
    // put series at that round.
    const roundId = (await feeds.ETH.latestRound()) + 1n;
    await e2e.provider.send("evm_setAutomine", [false]);
    let settlePut: ContractTransactionResponse | undefined;
    try {
      await feeds.ETH.updateAnswer(parseUnits("2900", 8), { gasLimit: FEED_UPDATE_GAS });
      settlePut = await options.settleSeries(put, roundId, { gasLimit: 500_000n });
      await e2e.provider.send("evm_mine", []);
    } finally {
      await e2e.provider.send("evm_setAutomine", [true]);
    }
    // The block that holds the round, from the receipt: the keeper may have mined another since.
    const roundBlock = (await settlePut!.wait())!.blockNumber;
    const settledPut = await options.queryFilter(options.filters.SeriesSettled(put), roundBlock);
    expect(settledPut.map((e) => [e.blockNumber, e.args.roundId])).to.deep.equal([[roundBlock, roundId]]);

    // The keeper settles the call series at that round and pays out both series' positions.
    await waitFor(
      "every position of both series settled",
      async () => (await options.queryFilter(options.filters.PositionSettled(), roundBlock)).length === 3,
      30_000,
      200,
    );
    await sleep(1_000); // would anything else follow?
    const settledCall = await options.queryFilter(options.filters.SeriesSettled(call), roundBlock);
    expect(settledCall.map((e) => [e.args.roundId, e.args.settlementPrice])).to.deep.equal([
      [roundId, parseUnits("2900", 18)],
    ]);
    const positions = await options.queryFilter(options.filters.PositionSettled(), roundBlock);
    const lastBlock = Math.max(...positions.map((e) => e.blockNumber));
    console.log(
      `      option settlement: ${lastBlock - roundBlock} blocks from the round to the last payout`,
    );
    // Settlement opens each pass (before the health check, which must not read an expired series at
    // today's spot): a round that lands while a pass is under way is settled by the next one.
    expect(settledCall[0].blockNumber).to.be.lte(roundBlock + 2);
    expect(lastBlock).to.be.lte(roundBlock + 3);

    // Payouts at 2,900: the 3,000 calls expire worthless; each 3,000 put pays 100 USD.
    const USD = 10n ** 18n;
    expect(
      positions
        .map((e) => [e.args.accountId, e.args.seriesId, e.args.size, e.args.payout])
        .sort((a, b) => Number(a[0] as bigint) - Number(b[0] as bigint)),
    ).to.deep.equal([
      [aliceCross, call, 2n * USD, 0n], // long 2 calls: 2·max(2900 − 3000, 0) = 0
      [carol, put, -1n * USD, -100n * USD], // short 1 put: −1·(3000 − 2900) = −100
      [carolOptions, put, 2n * USD, 200n * USD], // long 2 puts: 2·(3000 − 2900) = 200
    ]);
    const after = await balances();
    expect(after.map((b, i) => b - before[i])).to.deep.equal([0n, -100n * USDC, 200n * USDC, -100n * USDC]);
    for (const id of holders) {
      expect(await options.positionSize(id, call), `account ${id}`).to.equal(0n);
      expect(await options.positionSize(id, put), `account ${id}`).to.equal(0n);
    }
    // Settled positions left the accounts' market lists (the 30-day series stay).
    for (const id of [carol, carolOptions]) {
      const held = (await engine().accountMarkets(id)).filter(
        (k) => k.market === deployment.contracts.optionMarket && (k.marketId === call || k.marketId === put),
      );
      expect(held, `account ${id}`).to.have.length(0);
    }

    // The keeper's transactions to the option market since the round: settleSeries for the call only
    // (the put was settled by someone else) and one settleAccounts per series, the call's after its
    // settlement; all successful, nothing else. (Its other transactions accrue the perp markets'
    // funding, hours old by now.) The put's payout may come first: a pass that reads ETH's latest round
    // before the round's block and the put's series after it pays the put, and the next settles the call.
    const sent = (await receiptsFrom(KEEPER.address, roundBlock)).filter(
      (r) => r.to === deployment.contracts.optionMarket,
    );
    const calls = await Promise.all(
      sent.map(async (r) => {
        const tx = await e2e.provider.getTransaction(r.hash);
        const parsed = options.interface.parseTransaction({ data: tx!.data });
        return [r.status, tx!.to, parsed?.name, parsed?.args[parsed.name === "settleSeries" ? 0 : 1]];
      }),
    );
    const market = deployment.contracts.optionMarket;
    const inOrder = (a: unknown[], b: unknown[]) => String(a).localeCompare(String(b));
    expect([...calls].sort(inOrder)).to.deep.equal(
      [
        [1, market, "settleSeries", call],
        [1, market, "settleAccounts", call],
        [1, market, "settleAccounts", put],
      ].sort(inOrder),
    );
    const indexOf = (name: string, id: bigint) => calls.findIndex((c) => c[2] === name && c[3] === id);
    expect(indexOf("settleSeries", call)).to.be.lt(indexOf("settleAccounts", call));

    await stopGracefully(keeper);
  });
});
