/**
 * Several keepers on one chain (review round 117): competitors with their own keys racing for the same
 * books, and two processes on one key (a supervisor's restart, a blue/green deploy). The chain mines on
 * an interval (automine hides every race): a transaction waits in the pending pool until the next block.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { MaxUint256, Wallet, type TransactionReceipt } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { OptionMarket } from "../../typechain-types";
import { Eip1193JsonRpcProvider } from "../../scripts/keeper/chain";
import { createLogger } from "../../scripts/keeper/log";
import { tx } from "../../scripts/keeper/liquidation";
import { TxSender, type SendResult } from "../../scripts/keeper/sender";
import { MarginMode, WAD, openAccount, wad, type System } from "../shared/system";
import { deployOptionsSystemWithoutFunding } from "../shared/options";
import { refreshFeeds, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { hardhatWallet } from "../shared/e2e";
import {
  callDataOf,
  onRequests,
  startInProcessKeeper,
  threeLongsUnderWater,
  type InProcessKeeper,
} from "../shared/keeper";

const USDC = 10n ** 6n;
const GWEI = 10n ** 9n;

/**
 * The whole-scenario races run keepers' own loops against a block every wall-clock second: what they
 * count (reverted bids, a receipt timeout) moves with the machine's load, so they are measurements, run
 * by `npm run test:competition`, not part of `npm test` (whose race specs above each stage one race).
 */
const scenarios = process.env.KEEPER_COMPETITION === "1" ? describe : describe.skip;
type Sys = System & { options: OptionMarket };
type Request = (args: { method: string; params?: unknown[] }) => Promise<unknown>;

/** Hardhat's #4 (the keeper's key), and two competitors' keys (#6 and #7: no fixture signs with them). */
const KEEPER = hardhatWallet(4);
const RIVAL = hardhatWallet(6);
const THIRD = hardhatWallet(7);

/**
 * Automine off and a block every `ms` while `run` runs (none while `miner.paused`); automine restored
 * afterwards.
 */
async function withIntervalMining<T>(
  ms: number,
  run: (miner: { paused: boolean }) => Promise<T>,
): Promise<T> {
  const request: Request = network.provider.request.bind(network.provider);
  await request({ method: "evm_setAutomine", params: [false] });
  const miner = { paused: false, stopped: false };
  const loop = (async () => {
    while (!miner.stopped) {
      if (!miner.paused) await request({ method: "evm_mine", params: [] });
      await new Promise((resolve) => setTimeout(resolve, ms));
    }
  })();
  try {
    return await run(miner);
  } finally {
    miner.stopped = true;
    await loop;
    await request({ method: "evm_setAutomine", params: [true] });
  }
}

/** Each address's transactions mined in blocks [from, latest], with their receipts. */
async function minedBy(from: number, addresses: string[]): Promise<Map<string, TransactionReceipt[]>> {
  const out = new Map(addresses.map((a) => [a, [] as TransactionReceipt[]]));
  const head = await ethers.provider.getBlockNumber();
  for (let n = from; n <= head; n++) {
    const block = await ethers.provider.getBlock(n, true);
    for (const t of block!.prefetchedTransactions) {
      const list = out.get(t.from);
      if (list) list.push((await ethers.provider.getTransactionReceipt(t.hash))!);
    }
  }
  return out;
}

/** A CROSS account of `signer` that the auction may trade (what bidAndClose needs), without collateral. */
async function rivalBidder(sys: Sys, signer: HardhatEthersSigner): Promise<bigint> {
  const id = await openAccount(sys, signer, MarginMode.CROSS);
  await sys.accounts.connect(signer).setTrader(id, sys.auction, MaxUint256);
  return id;
}

/** A rival's fees: above the keeper's tip, so that in one block the rival's transaction goes first. */
const RIVAL_FEES = { maxFeePerGas: 100n * GWEI, maxPriorityFeePerGas: 10n * GWEI };

/** The keeper's (Hardhat #4's) eth_call of a `selector` call: the last check before its send. */
function isKeepersCall(method: string, params: unknown[], selector: string): boolean {
  const from = String((params[0] as { from?: string } | undefined)?.from ?? "").toLowerCase();
  return (
    method === "eth_call" && from === KEEPER.address.toLowerCase() && callDataOf(params).startsWith(selector)
  );
}

/** Alice, Bob and Carol long 2.5 ETH on 1,250 USDC, four accounts each; ETH not moved yet. */
async function twelveLongs() {
  const sys = await deployOptionsSystemWithoutFunding();
  const ids: bigint[] = [];
  for (let i = 0; i < 4; i++)
    for (const signer of [sys.alice, sys.bob, sys.carol]) {
      const id = await openAccount(sys, signer, MarginMode.CROSS, [[sys.usdc, 1_250n * USDC]]);
      await trade(sys.perps, signer, id, sys.markets.ETH, wad("2.5"));
      ids.push(id);
    }
  return { sys, ids };
}

/** Whether every account of `ids` is out of auction and above its maintenance line. */
async function allLiquidated(sys: Sys, ids: bigint[]): Promise<boolean> {
  for (const id of ids) {
    const [auction, h] = await Promise.all([sys.auction.auctions(id), sys.engine.health(id)]);
    if (auction.active || h.equityMaintenance < h.maintenanceRequirement) return false;
  }
  return true;
}

/**
 * Runs each keeper's own loop (a step on every new block, polled every 20 ms) under a block every
 * second until `done` holds.
 */
async function loopsUntil(keepers: InProcessKeeper[], done: () => Promise<boolean>): Promise<void> {
  await withIntervalMining(1_000, async () => {
    let stop = false;
    const loops = keepers.map(async (k) => {
      let processed = -1;
      while (!stop) {
        const head = await ethers.provider.getBlockNumber();
        if (head > processed) {
          await k.step();
          processed = head;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    });
    while (!(await done())) await new Promise((resolve) => setTimeout(resolve, 100));
    stop = true;
    await Promise.all(loops);
  });
}

/** `loopsUntil` every book of `ids` is liquidated; each keeper's receipts from the first block. */
async function race(sys: Sys, ids: bigint[], keepers: InProcessKeeper[], addresses: string[]) {
  const from = (await ethers.provider.getBlockNumber()) + 1;
  await loopsUntil(keepers, () => allLiquidated(sys, ids));
  return minedBy(from, [...new Set(addresses)]);
}

/** Two senders on Hardhat #4's key, as two processes would have (nothing shared), on the in-process chain. */
async function twoProcessesOnOneKey() {
  const chainId = Number((await ethers.provider.getNetwork()).chainId);
  const sender = (lines: string[]) => {
    const provider = new Eip1193JsonRpcProvider(network.provider, chainId);
    const log = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line).msg) });
    return new TxSender(new Wallet(KEEPER.privateKey, provider), provider, chainId, log, {
      maxGasPriceWei: 100n * GWEI,
      dryRun: false,
      txTimeoutMs: 3_000,
      pollMs: 10,
    });
  };
  const linesA: string[] = [];
  const linesB: string[] = [];
  return { a: sender(linesA), b: sender(linesB), linesA, linesB };
}

describe("Keepers in competition", function () {
  describe("a rival's transaction waiting in the pending pool", function () {
    it("makes the keeper's last check of its bid revert instead of a bidAndClose mined to revert", async function () {
      const { sys, ids } = await threeLongsUnderWater();
      await sys.auction.startAuctions(ids);
      const rival = await ethers.getSigner(RIVAL.address);
      const rivalAccount = await rivalBidder(sys, rival);
      const keeper = await startInProcessKeeper(sys);
      const from = (await ethers.provider.getBlockNumber()) + 1;
      const bidAndClose = sys.auction.interface.getFunction("bidAndClose").selector;
      const raced: { victim: bigint | null } = { victim: null };
      await withIntervalMining(50, async (miner) => {
        await onRequests(
          async (method, params) => {
            if (raced.victim !== null) {
              miner.paused = false;
              return;
            }
            if (!isKeepersCall(method, params, bidAndClose)) return;
            // The rival's bid on the same book reaches the pool between the keeper's estimate and its
            // last check; no block is mined in between.
            miner.paused = true;
            const [victim] = sys.auction.interface.decodeFunctionData("bidAndClose", callDataOf(params));
            raced.victim = victim as bigint;
            await sys.auction.connect(rival).bidAndClose(victim, rivalAccount, WAD, MaxUint256, RIVAL_FEES);
          },
          () => keeper.step(),
        );
      });
      const victim = raced.victim!;
      const mined = (await minedBy(from, [KEEPER.address])).get(KEEPER.address)!;
      // Before: checked against the latest block, the bid went out and was mined reverted
      // (AuctionNotActive: [0, 47350]) after the rival's; the two other books' bids went through.
      expect(mined.map((r) => [r.status, r.gasUsed > 400_000n])).to.deep.equal([
        [1, true],
        [1, true],
      ]);
      const skipped = keeper.lines.filter((l) => l.msg === "simulation reverted; not sending");
      expect(skipped.map((l) => [l.fields.action, l.fields.accountId])).to.deep.equal([
        ["bidAndClose", String(victim)],
      ]);
      expect((await sys.auction.auctions(victim)).active).to.equal(false);
    });

    it("makes a start batch the rival's waiting batch empties go unsent instead of mined for nothing", async function () {
      const { sys, ids } = await threeLongsUnderWater();
      // Start only: no bid, so the pass sends its start batch and nothing else.
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      const rival = await ethers.getSigner(RIVAL.address);
      const startAuctions = sys.auction.interface.getFunction("startAuctions").selector;
      const from = (await ethers.provider.getBlockNumber()) + 1;
      let raced = false;
      await withIntervalMining(50, async (miner) => {
        await onRequests(
          async (method, params) => {
            if (raced) {
              miner.paused = false;
              return;
            }
            if (!isKeepersCall(method, params, startAuctions)) return;
            raced = true;
            miner.paused = true;
            await sys.auction.connect(rival).startAuctions(ids, RIVAL_FEES);
          },
          () => keeper.step(),
        );
        miner.paused = false;
        while ((await ethers.provider.send("eth_getBlockByNumber", ["pending", false])).transactions.length)
          await new Promise((resolve) => setTimeout(resolve, 20));
      });
      expect(raced).to.equal(true);
      // Before: the batch's count was read at the latest block (3 to start), the batch was mined after the
      // rival's and started none: 80,437 gas for no start and no flag reward.
      const mined = (await minedBy(from, [KEEPER.address])).get(KEEPER.address)!;
      expect(mined.map((r) => [r.status, r.gasUsed])).to.deep.equal([]);
      expect(
        keeper.lines.filter((l) => l.msg === "start batch would start nothing; not sending"),
      ).to.have.length(1);
      const starters = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted());
      expect(starters.map((e) => e.args.starter)).to.deep.equal(ids.map(() => RIVAL.address));
    });
  });

  scenarios("three keepers with their own keys on twelve books under water, a block a second", function () {
    it("liquidate every book, and lose few races: each lost one a reverted bid (47,350 gas)", async function () {
      const { sys, ids } = await twelveLongs();
      const keys = [KEEPER, RIVAL, THIRD];
      const keepers = [];
      for (const k of keys) keepers.push(await startInProcessKeeper(sys, [], k.privateKey));
      await setFeedPrice(sys.feeds.ETH, "2600");
      const before = await Promise.all(keys.map((k) => ethers.provider.getBalance(k.address)));
      const mined = await race(
        sys,
        ids,
        keepers,
        keys.map((k) => k.address),
      );
      expect(await allLiquidated(sys, ids)).to.equal(true);
      let reverted = 0;
      let starts = 0;
      const startAuctions = sys.auction.interface.getFunction("startAuctions").selector;
      for (const [i, k] of keys.entries()) {
        const receipts = mined.get(k.address)!;
        reverted += receipts.filter((r) => r.status === 0).length;
        for (const r of receipts) {
          const sent = await ethers.provider.getTransaction(r.hash);
          if (sent!.data.startsWith(startAuctions)) starts += 1;
        }
        // What each keeper spent on gas is in its wallet's ETH; what it earned, in its bidder account's
        // equity at mark and its wallet's USDC (flag rewards): reported, not asserted (one that wins no
        // race and loses one has spent 47,350 gas for nothing).
        const spent = before[i] - (await ethers.provider.getBalance(k.address));
        const earned = (await sys.engine.health(keepers[i].session.keeperAccountId!)).equityMark;
        expect(spent).to.equal(receipts.reduce((sum, r) => sum + r.gasUsed * r.gasPrice, 0n));
        expect(earned).to.be.greaterThanOrEqual(0n);
      }
      // Before: every keeper checked its last call against the latest block, at the same moment: 12 to
      // 21 reverted bidAndClose over six runs (of 31 to 36 transactions), and two batches of 12 starts
      // that started none. Now: 0 to 3 reverted over six runs, and one start batch.
      expect(reverted).to.be.lessThanOrEqual(6);
      expect(starts).to.be.lessThanOrEqual(3);
    });
  });

  describe("a rival's absorb waiting in the pending pool", function () {
    it("makes the keeper's last check of its absorb revert instead of an absorb mined to revert", async function () {
      const { sys, ids } = await threeLongsUnderWater();
      await sys.auction.startAuctions(ids);
      await time.increase((await sys.auction.params()).duration);
      await refreshFeeds(sys);
      // No bid pays (a minimum profit of 1,000,000 USD): the keeper absorbs each book.
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      const rival = await ethers.getSigner(RIVAL.address);
      const absorb = sys.auction.interface.getFunction("absorb").selector;
      const from = (await ethers.provider.getBlockNumber()) + 1;
      const race: { estimated: bigint | null; victim: bigint | null } = { estimated: null, victim: null };
      await withIntervalMining(50, async (miner) => {
        await onRequests(
          async (method, params) => {
            if (method === "evm_mine") return;
            if (race.victim !== null) {
              miner.paused = false;
              return;
            }
            if (race.estimated === null) {
              const from = String((params[0] as { from?: string } | undefined)?.from ?? "").toLowerCase();
              if (method === "eth_estimateGas" && from === KEEPER.address.toLowerCase()) {
                const data = callDataOf(params);
                if (data.startsWith(absorb))
                  [race.estimated] = sys.auction.interface.decodeFunctionData("absorb", data) as unknown as [
                    bigint,
                  ];
              }
              return;
            }
            // The keeper's next request after its absorb's estimate: the rival's absorb of the same book
            // reaches the pool now, and no block is mined before the keeper's send.
            miner.paused = true;
            race.victim = race.estimated;
            await sys.auction.connect(rival).absorb(race.victim, RIVAL_FEES);
          },
          () => keeper.step(),
        );
      });
      const mined = (await minedBy(from, [KEEPER.address])).get(KEEPER.address)!;
      // Before: an absorb was only estimated, before the rival's was sent: it went out and was mined to
      // revert (AuctionNotActive) after the rival's, [0, 26394]; the two other books' absorbs went through.
      expect(mined.map((r) => [r.status, r.gasUsed > 300_000n])).to.deep.equal([
        [1, true],
        [1, true],
      ]);
      const skipped = keeper.lines.filter((l) => l.msg === "simulation reverted; not sending");
      expect(skipped.map((l) => [l.fields.action, l.fields.accountId])).to.deep.equal([
        ["absorb", String(race.victim)],
      ]);
      for (const id of ids) expect((await sys.auction.auctions(id)).active).to.equal(false);
    });
  });

  describe("two processes on one key", function () {
    it("do not replace each other's transaction that took the nonce first", async function () {
      const { usdc } = await deployOptionsSystemWithoutFunding();
      const { a, b, linesA, linesB } = await twoProcessesOnOneKey();
      const approve = (amount: bigint) => tx(usdc, "approve", [RIVAL.address, amount]);
      const keeper = KEEPER.address;
      const nonce = await ethers.provider.getTransactionCount(keeper);
      const request: Request = network.provider.request.bind(network.provider);
      await request({ method: "evm_setAutomine", params: [false] });
      let first: Promise<SendResult> | null = null;
      const bData = approve(2n).data;
      try {
        // B read the nonce before A's transaction reached the pool; A's reaches it before B's.
        const second = await onRequests(
          async (method, params) => {
            if (first || method !== "eth_sendRawTransaction") return;
            if (ethers.Transaction.from(params[0] as string).data !== bData) return;
            first = a.send("approve", approve(1n));
            while ((await ethers.provider.getTransactionCount(keeper, "pending")) === nonce)
              await new Promise((resolve) => setTimeout(resolve, 5));
          },
          async () => [await b.send("approve", approve(2n)), await b.send("approve", approve(3n))],
        );
        // Before: B's refusal as an underpriced replacement was taken for a stuck transaction of its own,
        // and its next send replaced A's at 9/8 of the fees: A's approve was dropped and A waited its whole
        // receipt timeout ("no receipt before timeout").
        expect(second.map((r) => r.status)).to.deep.equal(["waiting-behind", "waiting-behind"]);
        await request({ method: "evm_mine", params: [] });
        const aResult = await first!;
        expect(aResult.status).to.equal("mined");
        expect(await usdc.allowance(keeper, RIVAL.address)).to.equal(1n);
        expect(linesA).to.not.include("no receipt before timeout");
        expect(linesB).to.include("another transaction took the nonce; waiting behind it");
      } finally {
        await request({ method: "evm_setAutomine", params: [true] });
      }
    });

    it("gives up a nonce the other process's transaction was mined at, without waiting for a receipt", async function () {
      const { usdc } = await deployOptionsSystemWithoutFunding();
      const { a, b, linesB } = await twoProcessesOnOneKey();
      const approve = (amount: bigint) => tx(usdc, "approve", [RIVAL.address, amount]);
      const keeper = KEEPER.address;
      const request: Request = network.provider.request.bind(network.provider);
      await request({ method: "evm_setAutomine", params: [false] });
      let raced = false;
      const bData = approve(2n).data;
      try {
        // B read the nonce before A's transaction was mined at it.
        const result = await onRequests(
          async (method, params) => {
            if (raced || method !== "eth_sendRawTransaction") return;
            if (ethers.Transaction.from(params[0] as string).data !== bData) return;
            raced = true;
            const first = a.send("approve", approve(1n));
            while (
              (await ethers.provider.getTransactionCount(keeper, "pending")) ===
              (await ethers.provider.getTransactionCount(keeper))
            )
              await new Promise((resolve) => setTimeout(resolve, 5));
            await request({ method: "evm_mine", params: [] });
            expect((await first).status).to.equal("mined");
          },
          () => b.send("approve", approve(2n)),
        );
        // Before: "nonce too low" was read as sent, and B waited its whole receipt timeout for a
        // transaction that could never be mined ("dropped", "no receipt before timeout").
        expect(result).to.deep.include({ status: "nonce-taken" });
        expect(linesB).to.not.include("no receipt before timeout");
        expect(await usdc.allowance(keeper, RIVAL.address)).to.equal(1n);
      } finally {
        await request({ method: "evm_setAutomine", params: [true] });
      }
    });
  });

  scenarios("two processes on one key beside a competitor, a block a second", function () {
    it("liquidate every book, neither process left waiting out a receipt timeout", async function () {
      const { sys, ids } = await twelveLongs();
      const args = ["--tx-timeout-ms", "5000"];
      const keepers = [
        await startInProcessKeeper(sys, args),
        await startInProcessKeeper(sys, args),
        await startInProcessKeeper(sys, args, RIVAL.privateKey),
      ];
      await setFeedPrice(sys.feeds.ETH, "2600");
      await race(sys, ids, keepers, [KEEPER.address, RIVAL.address]);
      expect(await allLiquidated(sys, ids)).to.equal(true);
      for (const k of keepers) expect(k.lines.map((l) => l.msg)).to.not.include("no receipt before timeout");
    });
  });
});
