/**
 * The keeper against a degraded chain: a base-fee spike, an RPC that refuses large log answers, a
 * one-block reorg (review round 48; docs/reliability.md §4, rows 126–128), a restart while a transaction
 * waits (row 153).
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { MarginMode, openAccount, wad, type System } from "../shared/system";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { mineAt, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { hardhatWallet, waitFor } from "../shared/e2e";
import {
  onRequest,
  runKeeperOverBridge,
  startInProcessKeeper,
  type InProcessKeeper,
  waitForPassOn,
} from "../shared/keeper";
import { mintAccountsTo } from "../shared/accounts";
import { chooseFees, replacementFees } from "../../scripts/keeper/logic";

const USDC = 10n ** 6n;
const GWEI = 10n ** 9n;
const KEEPER = hardhatWallet(4).address;

type Request = (args: { method: string; params?: unknown[] }) => Promise<unknown>;

/**
 * Interval mining on the in-process chain (automine off, a block every 50 ms) while `run` runs; while
 * `spike.on`, every block is given a base fee of `spike.baseFee`. Automine is restored afterwards.
 */
async function withIntervalMining<T>(
  spike: { on: boolean; baseFee: bigint },
  run: () => Promise<T>,
): Promise<T> {
  const request: Request = network.provider.request.bind(network.provider);
  await request({ method: "evm_setAutomine", params: [false] });
  let mining = true;
  const miner = (async () => {
    while (mining) {
      if (spike.on)
        await request({
          method: "hardhat_setNextBlockBaseFeePerGas",
          params: [ethers.toQuantity(spike.baseFee)],
        });
      await request({ method: "evm_mine", params: [] });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  try {
    return await run();
  } finally {
    mining = false;
    await miner;
    await request({ method: "evm_setAutomine", params: [true] });
  }
}

/** The keeper's transactions mined in blocks [from, latest], with their receipts' status. */
async function keeperTransactions(from: number) {
  const out: { hash: string; nonce: number; status: number; to: string | null }[] = [];
  const head = await ethers.provider.getBlockNumber();
  for (let n = from; n <= head; n++) {
    const block = await ethers.provider.getBlock(n, true);
    for (const tx of block!.prefetchedTransactions) {
      if (tx.from !== KEEPER) continue;
      const receipt = await ethers.provider.getTransactionReceipt(tx.hash);
      out.push({ hash: tx.hash, nonce: tx.nonce, status: receipt!.status!, to: tx.to });
    }
  }
  return out;
}

/** Start auctions only: no bid, so a keeper pass sends one transaction; a 1 s receipt timeout. */
const START_ONLY = ["--min-profit-usd", "1000000", "--tx-timeout-ms", "1000"];

/** Alice's 10 ETH long on 5,000 USDC after ETH falls to 2,600 (equity_MM 834.93 against MM 1,955.53). */
async function aliceUnderWater() {
  const sys = await deployOptionsSystem();
  const victim = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  await trade(sys.perps, sys.alice, victim, sys.markets.ETH, wad("10"));
  const keeper = await startInProcessKeeper(sys, START_ONLY);
  // The same key in a process started later (the keeper restarted): it knows nothing `keeper` sent.
  const restarted = await startInProcessKeeper(sys, START_ONLY);
  await setFeedPrice(sys.feeds.ETH, "2600");
  const from = (await ethers.provider.getBlockNumber()) + 1;
  const nonce = await ethers.provider.getTransactionCount(KEEPER);
  return { sys, victim, keeper, restarted, nonce, from };
}

/**
 * A keeper pass whose startAuction the base fee leaves behind: it jumps to `spike.baseFee` (the cap is
 * 100 gwei) just after the keeper priced the transaction at ~2·base + 1 gwei tip, ~1 gwei, so it is
 * not mined and the wait times out. Run under `withIntervalMining(spike, …)`.
 */
async function leaveStartBehind(
  keeper: InProcessKeeper,
  spike: { on: boolean; baseFee: bigint },
  nonce: number,
) {
  // The next block's base fee is set before the transaction reaches the pool: with only `spike.on`, a
  // block the miner had begun before it (its check passed) could mine the transaction at the old base
  // fee, which it did under CPU load (review round 67).
  const report = await onRequest(
    "eth_sendRawTransaction",
    async () => {
      spike.on = true;
      await network.provider.request({
        method: "hardhat_setNextBlockBaseFeePerGas",
        params: [ethers.toQuantity(spike.baseFee)],
      });
    },
    () => keeper.step(),
  );
  const stuck = keeper.lines.filter((l) => l.msg === "no receipt before timeout");
  expect(stuck).to.have.length(1);
  const stuckTx = await ethers.provider.getTransaction(String(stuck[0].fields.hash));
  expect(stuckTx!.nonce).to.equal(nonce);
  expect(stuckTx!.maxFeePerGas).to.be.lessThan(5n * GWEI);
  return report;
}

/** The spike ends: whatever waits in the mempool is mined. */
async function endSpike(spike: { on: boolean }): Promise<void> {
  spike.on = false;
  await new Promise((resolve) => setTimeout(resolve, 1_000));
}

/** The auction on `victim` was started by the keeper, with one transaction at `nonce` (the replacement). */
async function expectOneStartAt(sys: System, victim: bigint, nonce: number, from: number): Promise<void> {
  const [started] = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted(victim));
  expect(started.args.starter).to.equal(KEEPER);
  const sent = await keeperTransactions(from);
  expect(sent.map((t) => [t.nonce, t.status])).to.deep.equal([[nonce, 1]]);
}

/**
 * Runs `run` with the chain's pending count of the keeper including its transaction at `nonce` that
 * cannot be mined, as geth's does (Hardhat's leaves such a transaction out).
 */
async function countingWaitingAsPending<T>(nonce: number, run: () => Promise<T>): Promise<T> {
  const original = network.provider.request.bind(network.provider);
  network.provider.request = (async (args: { method: string; params?: unknown[] }) => {
    const answer = await original(args);
    const pendingOfKeeper =
      args.method === "eth_getTransactionCount" &&
      args.params?.[1] === "pending" &&
      String(args.params?.[0]).toLowerCase() === KEEPER.toLowerCase();
    return pendingOfKeeper && Number(answer) === nonce ? ethers.toQuantity(nonce + 1) : answer;
  }) as typeof network.provider.request;
  try {
    return await run();
  } finally {
    network.provider.request = original;
  }
}

describe("Keeper against a degraded chain", function () {
  describe("a transaction the base fee left behind", function () {
    it("is replaced at fees 9/8 of its own at least (nodes want +10% on both), never above the cap", function () {
      const cap = 100n * GWEI;
      // The test below: sent at ~1 gwei, the base fee then at 5 gwei.
      const waiting = chooseFees(
        { baseFeePerGas: 73_069n, maxPriorityFeePerGas: GWEI, gasPrice: null },
        cap,
      )!;
      const now = chooseFees({ baseFeePerGas: 5n * GWEI, maxPriorityFeePerGas: GWEI, gasPrice: null }, cap)!;
      expect(replacementFees(now, waiting, cap)).to.deep.equal({
        type: 2,
        maxFeePerGas: 11n * GWEI,
        maxPriorityFeePerGas: 1_125_000_000n,
        expectedPrice: 6_125_000_000n,
      });
      // Fees fell since: 9/8 of the waiting one's, rounded up.
      const high = {
        type: 2 as const,
        maxFeePerGas: 21n * GWEI,
        maxPriorityFeePerGas: GWEI + 1n,
        expectedPrice: 0n,
      };
      expect(replacementFees(now, high, cap)).to.deep.equal({
        type: 2,
        maxFeePerGas: 23_625_000_000n,
        maxPriorityFeePerGas: 1_125_000_002n,
        expectedPrice: 6_125_000_002n,
      });
      expect(replacementFees(now, { ...high, maxFeePerGas: 89n * GWEI }, cap)).to.equal(null);
      const legacy = { type: 0 as const, gasPrice: 10n * GWEI, expectedPrice: 10n * GWEI };
      expect(replacementFees(legacy, legacy, cap)).to.deep.equal({
        type: 0,
        gasPrice: 11_250_000_000n,
        expectedPrice: 11_250_000_000n,
      });
    });

    it("is replaced by the keeper's next one instead of holding back every later transaction", async function () {
      const { sys, victim, keeper, nonce, from } = await aliceUnderWater();
      const spike = { on: false, baseFee: 5n * GWEI };
      const { first, second } = await withIntervalMining(spike, async () => {
        const first = await leaveStartBehind(keeper, spike, nonce);
        // The next pass, base fee still 5 gwei, well under the cap: the keeper is willing to pay it.
        const second = await keeper.step();
        const frozen = await sys.auction.isFrozen(victim);
        await endSpike(spike);
        return { first, second: { report: second, frozen } };
      });
      expect(first.liquidatable).to.deep.equal([victim]);
      // Before the fix the second startAuction went out at the stuck one's nonce (Hardhat's pending count
      // leaves a transaction it cannot mine out; geth's counts it, and the new one waits behind it) with
      // the same 1 gwei tip: refused as an underpriced replacement, and nothing of the keeper's was mined
      // until the base fee fell back under ~1 gwei.
      expect(
        keeper.lines.filter((l) => JSON.stringify(l.fields).includes("REPLACEMENT_UNDERPRICED")),
      ).to.deep.equal([]);
      expect(second.frozen, "the auction started during the spike").to.equal(true);
      await expectOneStartAt(sys, victim, nonce, from);
    });

    describe("after a restart, when the keeper no longer knows its fees", function () {
      it("offers 9/8 of the fees the node refused, where the pending count leaves it out (Hardhat)", async function () {
        const { sys, victim, keeper, restarted, nonce, from } = await aliceUnderWater();
        const spike = { on: false, baseFee: 5n * GWEI };
        const passes = await withIntervalMining(spike, async () => {
          await leaveStartBehind(keeper, spike, nonce);
          await restarted.step();
          const frozenAfterFirst = await sys.auction.isFrozen(victim);
          await restarted.step();
          const frozenAfterSecond = await sys.auction.isFrozen(victim);
          await endSpike(spike);
          return { frozenAfterFirst, frozenAfterSecond };
        });
        // Its first try, at today's fees and the same 1 gwei tip, is refused; before the fix every later
        // pass was refused the same way until the spike ended.
        const refused = restarted.lines.filter(
          (l) => l.msg === "an earlier transaction holds the nonce at higher fees",
        );
        expect(passes.frozenAfterSecond, "the auction started during the spike").to.equal(true);
        expect(passes.frozenAfterFirst).to.equal(false);
        expect(refused.map((l) => l.fields.nonce)).to.deep.equal([nonce]);
        await expectOneStartAt(sys, victim, nonce, from);
      });

      it("takes the waiting nonce once it has waited the receipt timeout, where the pending count includes it (geth)", async function () {
        const { sys, victim, keeper, restarted, nonce, from } = await aliceUnderWater();
        const spike = { on: false, baseFee: 5n * GWEI };
        const { frozen, waited } = await withIntervalMining(spike, async () => {
          await leaveStartBehind(keeper, spike, nonce);
          return countingWaitingAsPending(nonce, async () => {
            // First sight: it may be mined in the next block, or be the operator's (review round 67,
            // row 159): nothing sent. After the timeout (1 s here) it is replaced.
            await restarted.step();
            const waited = restarted.lines.filter((l) =>
              l.msg.startsWith("a transaction this run did not send"),
            );
            await new Promise((resolve) => setTimeout(resolve, 1_100));
            await restarted.step();
            const frozen = await sys.auction.isFrozen(victim);
            await endSpike(spike);
            return { frozen, waited: waited.map((l) => l.fields.waitingNonce) };
          });
        });
        // Before the fix it went out at the next nonce, behind the stuck one, and timed out there.
        expect(waited).to.deep.equal([nonce]);
        expect(frozen, "the auction started during the spike").to.equal(true);
        await expectOneStartAt(sys, victim, nonce, from);
      });
    });
  });
});

describe("Keeper event scans", function () {
  describe("an eth_getLogs range the RPC refuses for its size", function () {
    // Infura refuses an eth_getLogs answer of more than 10,000 logs (-32005), Alchemy past 2,000 blocks
    // the same; scaled here to 50. Anyone can mint accounts to anyone (`createAccountFor`).
    const CAP = 50;
    async function refusingLargeLogAnswers<T>(run: () => Promise<T>): Promise<T> {
      const original = network.provider.request.bind(network.provider);
      network.provider.request = (async (args: { method: string; params?: unknown[] }) => {
        const result = await original(args);
        if (args.method === "eth_getLogs" && (result as unknown[]).length > CAP) {
          throw Object.assign(new Error(`query returned more than ${CAP} results`), { code: -32005 });
        }
        return result;
      }) as typeof network.provider.request;
      try {
        return await run();
      } finally {
        network.provider.request = original;
      }
    }

    it("is split until the node answers, so 51 accounts minted in one stretch of blocks stop no liquidation", async function () {
      const sys = await deployOptionsSystem();
      const victim = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
      await trade(sys.perps, sys.alice, victim, sys.markets.ETH, wad("10"));
      // Mallory mints CAP + 1 empty accounts to herself: a few dollars of L2 gas for Infura's 10,001.
      await mintAccountsTo(sys.accounts, sys.carol, sys.carol.address, CAP + 1);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      await setFeedPrice(sys.feeds.ETH, "2600"); // Alice below maintenance

      // Before the fix the account scan asked for blocks 0..head−64 in one request (--log-range 5000),
      // the refusal was taken for a transport failure and failed the whole step, on every retry: no
      // account was ever checked, Alice never auctioned.
      const report = await refusingLargeLogAnswers(() => keeper.step());
      expect(report.liquidatable).to.deep.equal([victim]);
      expect(report.accounts).to.equal(CAP + 1 + 2); // Mallory's, Alice's, the insurance fund's
      const [started] = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted(victim));
      expect(started.args.starter).to.equal(KEEPER);
    });

    it("is split in the option holders' scan too: 52 trades of an expired series, every holder paid", async function () {
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const holders: bigint[] = [];
      for (let i = 0; i < CAP / 2 + 1; i++) {
        const account = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
        await tradeOption(sys.options, sys.carol, account, call, wad("0.01"));
        await tradeOption(sys.options, sys.carol, account, call, wad("0.01"));
        holders.push(account);
      }
      const keeper = await startInProcessKeeper(sys);
      await mineAt(sys, expiry);
      await setFeedPrice(sys.feeds.ETH, "3100"); // the settlement round: 100 a contract

      // Before the fix the payouts' scan of OptionTraded asked for all 52 at once and failed the step
      // after its liquidations, on every retry: the series was settled, no holder ever paid.
      const report = await refusingLargeLogAnswers(() => keeper.step());
      expect(report.options?.seriesSettled).to.deep.equal([call]);
      expect(report.options?.positionsSettled).to.equal(holders.length);
      for (const account of holders) expect(await sys.options.positionSize(account, call)).to.equal(0n);
    });
  });
});

describe("Keeper loop", function () {
  describe("without new blocks", function () {
    it("re-runs a pass every --recheck-ms on the same block, and not sooner", async function () {
      const sys = await deployOptionsSystem();
      const { lines, stop } = await runKeeperOverBridge(sys, {
        privateKey: hardhatWallet(4).privateKey,
        args: ["--recheck-ms", "1000", "--log-level", "debug"],
      });
      const passes = () => lines.filter((l) => l.msg === "health checked");
      try {
        // Setting the keeper up mines two transactions (its bidder account), which the second pass follows.
        await waitFor("the first two passes", () => passes().length >= 2, 30_000);
        const head = await ethers.provider.getBlockNumber();
        await waitFor("two more passes", () => passes().length >= 4, 30_000);
        // Nothing was mined since: the clock alone ran them, each a second after the last one ended (the
        // line is written mid-pass, so a gap may come short by what a pass spends after it: a few ms).
        // The loop polls every 20 ms: without the interval the two would come within a few hundred ms.
        expect(await ethers.provider.getBlockNumber()).to.equal(head);
        const [, second, , fourth] = passes().map((l) => Date.parse(l.ts));
        expect(fourth - second).to.be.at.least(1_700);
      } finally {
        await stop();
      }
    });
  });

  describe("a one-block reorg", function () {
    it("rebuilds the session, and the rebuilt session no longer reads every holder of every settled series", async function () {
      // 10 holders of one ETH-3000 call expiring in a day, all paid out by the keeper.
      const HOLDERS = 10;
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      for (let i = 0; i < HOLDERS; i++) {
        const account = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
        await tradeOption(sys.options, sys.carol, account, call, wad("0.01"));
      }
      await mineAt(sys, expiry);
      await setFeedPrice(sys.feeds.ETH, "3100");

      const { lines, bridge, stop } = await runKeeperOverBridge(sys, {
        privateKey: hardhatWallet(4).privateKey,
        args: ["--log-level", "debug"],
      });
      const positionSize = sys.options.interface.getFunction("positionSize").selector;
      const passes = () => lines.filter((l) => l.msg === "health checked").length;
      // The loop steps on a new block (or every 15 s without one): mine until `count` passes are logged.
      const untilPasses = (what: string, count: number) =>
        waitFor(
          what,
          async () =>
            passes() >= count || (await network.provider.request({ method: "evm_mine", params: [] }), false),
          30_000,
          250,
        );
      try {
        await waitFor(
          "every holder paid",
          async () =>
            (await sys.options.queryFilter(sys.options.filters.PositionSettled())).length === HOLDERS,
          60_000,
        );
        await untilPasses("a quiet pass after the payouts", 3);
        expect(lines.filter((l) => l.msg === "session ready")).to.have.length(1);

        // The reorg: the keeper's newest block is replaced (evm_revert), and the new chain is one longer.
        const before = await ethers.provider.getBlockNumber();
        const fork = (await network.provider.request({ method: "evm_snapshot", params: [] })) as string;
        await network.provider.request({ method: "evm_mine", params: [] });
        // A pass on that very block (its anchor), not any next pass: one still running on an older block
        // when this one was mined would leave the old anchor, which the reorg does not replace (review
        // round 133).
        const mined = before + 1;
        await waitForPassOn(lines, mined);
        await network.provider.request({ method: "evm_revert", params: [fork] });
        // The new chain's blocks come 7 s later than the one they replace (another hash).
        const latest = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
        for (const dt of [7n, 8n])
          await network.provider.request({ method: "evm_mine", params: [Number(latest + dt)] });
        expect(await ethers.provider.getBlockNumber()).to.equal(before + 2);

        const positionReads = () => bridge.calls.filter((c) => c.selector === positionSize).length;
        const readsBefore = positionReads();
        await waitFor(
          "the rebuild",
          () => lines.some((l) => l.msg === "chain reset detected; rebuilding state"),
          30_000,
        );
        const rebuilt = passes();
        await untilPasses("a full pass of the rebuilt session", rebuilt + 2);
        expect(lines.filter((l) => l.msg === "session ready")).to.have.length(2);
        // Before the fix: the rebuilt session read positionSize once per holder of the settled, paid-out
        // series (10 here; a year of daily series with 20 holders each: ~73,000 sequential calls in the
        // pass, before the next liquidation check).
        expect(positionReads() - readsBefore).to.equal(0);
      } finally {
        await stop();
      }
    });
  });
});
