import { expect } from "chai";
import { ethers, network } from "hardhat";
import type { TransactionReceipt } from "ethers";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import { deploySystem, eventOf, findEvent } from "../shared/system";
import { backstopLong100, bobLongsUnderWater } from "../shared/perps";
import { assetId, deployMockFeed, deployOracleRouter, setFeedPrice, sourcesInput } from "../shared/oracles";

type Send = (gasLimit: bigint) => Promise<unknown>;

/**
 * Sends `send(gasLimit)` one second after the latest block, on a snapshot restored after, and returns
 * the mined receipt (Hardhat mines a reverted transaction) and what `inspect` read before the restore.
 */
async function attempt<T>(
  send: Send,
  gasLimit: bigint,
  inspect?: (receipt: TransactionReceipt) => Promise<T>,
): Promise<{ status: number; seen?: T }> {
  const snap = await takeSnapshot();
  await time.setNextBlockTimestamp((await time.latest()) + 1);
  await send(gasLimit).catch(() => undefined);
  const block = await ethers.provider.getBlock("latest");
  const receipt = (await ethers.provider.getTransactionReceipt(block!.transactions[0]))!;
  const seen = inspect ? await inspect(receipt) : undefined;
  await snap.restore();
  return { status: receipt.status ?? 0, seen };
}

/** The lowest gas limit in (lo, hi] at which the transaction succeeds (binary search on mined receipts). */
async function lowestSuccess(send: Send, lo: bigint, hi: bigint): Promise<bigint> {
  while (hi - lo > 1n) {
    const mid = (lo + hi) / 2n;
    if ((await attempt(send, mid)).status === 1) hi = mid;
    else lo = mid;
  }
  return hi;
}

interface Step {
  op: string;
  depth: number;
  gas: number;
  gasCost: number;
}

/** The transaction's opcode trace, without stack, memory or storage (~70 ms for 17,000 steps). */
async function steps(receipt: TransactionReceipt): Promise<Step[]> {
  const trace = (await network.provider.send("debug_traceTransaction", [
    receipt.hash,
    { disableMemory: true, disableStorage: true, disableStack: true },
  ])) as { structLogs: Step[] };
  return trace.structLogs;
}

interface CallOutcome {
  /** The call was made and returned normally (its frame ended in RETURN or STOP). */
  ok: boolean;
  /** The caller's gas on the first step after the call. */
  gasAfter: number;
  /** The transaction's last step and the gas it had. */
  lastOp: string;
  lastGas: number;
}

/** Which call a trace is asked about: the heaviest, the last, or the first that failed (else the heaviest). */
type Pick = "heaviest" | "last" | "failed";

/**
 * The outcome of an `op` (CALL, STATICCALL) made at `depth`: by `pick`, the heaviest (the frame with
 * the most steps: the one the try guards), the last, or the first that failed. Undefined when no such
 * call was made.
 */
function heaviestCall(
  trace: Step[],
  op: string,
  depth: number,
  pick: Pick = "heaviest",
): CallOutcome | undefined {
  const tail = trace[trace.length - 1];
  let best: CallOutcome | undefined;
  let bestSteps = -1;
  for (let i = 0; i < trace.length; i++) {
    if (trace[i].op !== op || trace[i].depth !== depth) continue;
    let end = i + 1;
    while (end < trace.length && trace[end].depth > depth) end++;
    const last = trace[end - 1];
    const ok = last.depth === depth + 1 && (last.op === "RETURN" || last.op === "STOP");
    const call = { ok, gasAfter: trace[end]?.gas ?? 0, lastOp: tail.op, lastGas: tail.gas };
    if (pick === "failed" && !ok) return call;
    if (pick === "last" || end - i > bestSteps) {
      best = call;
      bestSteps = end - i;
    }
  }
  return best;
}

/**
 * The largest gas limit in [lo, hi) at which the guarded call fails (it fails at `lo`, not at `hi`), by
 * binary search on traces of mined transactions, with that attempt. The gas a failed call leaves its
 * caller grows with the limit, so if the transaction reverts there, it reverts at every lower limit at
 * which the call fails: the catch branch has no window.
 */
async function lastCatch(
  send: Send,
  op: string,
  depth: number,
  lo: bigint,
  hi: bigint,
  pick: Pick = "heaviest",
): Promise<{ gasLimit: bigint; status: number; call: CallOutcome }> {
  const probe = (g: bigint) => attempt(send, g, async (r) => heaviestCall(await steps(r), op, depth, pick));
  let low = await probe(lo);
  if (low.seen === undefined || low.seen.ok) throw new Error(`the call does not fail at ${lo}`);
  while (hi - lo > 1n) {
    const mid = (lo + hi) / 2n;
    const a = await probe(mid);
    if (a.seen !== undefined && a.seen.ok) hi = mid;
    else if (a.seen !== undefined) {
      lo = mid;
      low = a;
    } else throw new Error(`no call at ${mid}`);
  }
  return { gasLimit: lo, status: low.status, call: low.seen! };
}

/** The backstop long 100 ETH absorbed from Alice, ETH back at 3,000: its quote is above its requirement. */
async function backstopWithSurplus() {
  const { sys, backstop } = await backstopLong100();
  await setFeedPrice(sys.feeds.ETH, "3000");
  return { sys, backstop };
}

const USDC = 10n ** 6n;

describe("Gas griefing through try/catch (EIP-150's 63/64)", function () {
  describe("LiquidationAuction.startAuction's flag reward", function () {
    it("cannot be skipped by the starter's gas limit: with payOut out of gas the start reverts", async function () {
      const sys = await deploySystem();
      const [id] = await bobLongsUnderWater(sys, 1, 150n * USDC, ethers.parseEther("0.4"), "2650");
      const send = (g: bigint) => sys.auction.connect(sys.keeper).startAuction(id, { gasLimit: g });
      const lowest = await lowestSuccess(send, 200_000n, 400_000n);
      // The largest limit at which payOut still fails leaves the starter's frame the most gas a
      // failed payOut can: it runs out on AuctionStarted's LOG3 (2,268 gas with its 96 data bytes).
      const c = await lastCatch(send, "CALL", 1, lowest - 4_000n, lowest);
      expect(c.call.ok).to.equal(false);
      expect(c.status).to.equal(0);
      expect(c.call.lastOp).to.equal("LOG3");
      expect(c.call.gasAfter).to.be.lessThan(2_268);
      // Every start that succeeds pays the reward: the lowest one pays it whole (9.159879 USDC).
      await time.setNextBlockTimestamp((await time.latest()) + 1);
      const receipt = await (await send(lowest)).wait();
      const started = eventOf(receipt!, sys.auction, "AuctionStarted");
      expect(started.args[4]).to.equal(9_159_879n);
    });
  });

  describe("OracleRouter's three-source median", function () {
    it("cannot drop its last source for gas: the router frame keeps too little to average the other two", async function () {
      const [deployer] = await ethers.getSigners();
      const manager = await ethers.deployContract("AccessManager", [deployer.address]);
      const router = await deployOracleRouter(await manager.getAddress());
      const first = await deployMockFeed(8, 3000n * 10n ** 8n);
      const second = await deployMockFeed(8, 3010n * 10n ** 8n);
      // The costliest source a deployment has: Chainlink's proxy over its OCR aggregator (read replicas).
      const ocr = await ethers.deployContract("OffchainAggregatorReadReplica");
      const third = await ethers.deployContract("EACAggregatorProxyReadReplica", [ocr]);
      await ocr.addAccess(third);
      await ocr.transmit(2990n * 10n ** 8n);
      const eth = assetId("ETH");
      await router.configureAsset(eth, await sourcesInput([first, second, third], ethers.parseEther("0.05")));
      // The median is 3,000; without the third source the average of the others would be 3,005.
      expect(await router.getPrice(eth)).to.equal(ethers.parseEther("3000"));
      // A transaction to the router itself: no frame after the read, the attacker's best case (a caller
      // adds no gas to the router's frame, only work after it).
      const send = (g: bigint) => router.getPrice.send(eth, { gasLimit: g });
      const lowest = await lowestSuccess(send, 21_000n, 200_000n);
      const c = await lastCatch(send, "STATICCALL", 1, lowest - 4_000n, lowest, "last");
      expect(c.call.ok).to.equal(false);
      expect(c.status).to.equal(0);
      expect(c.call.gasAfter).to.be.lessThan(300);
      // The lowest success read all three sources.
      const read = await attempt(send, lowest, async (r) =>
        heaviestCall(await steps(r), "STATICCALL", 1, "last"),
      );
      expect(read.status).to.equal(1);
      expect(read.seen!.ok).to.equal(true);
    });
  });

  describe("LiquidationAuction._sweepBackstopQuote", function () {
    it("sent with too little gas for the backstop's health sweeps nothing and succeeds; the next sweep moves the quote", async function () {
      const { sys, backstop } = await loadFixture(backstopWithSurplus);
      const pool = sys.poolAccountId;
      const surplus = await sys.auction.sweepBackstopQuote.staticCall();
      expect(surplus).to.equal(9_220n * USDC);
      const send = (g: bigint) => sys.auction.sweepBackstopQuote({ gasLimit: g });
      const lowest = await lowestSuccess(send, 30_000n, 1_000_000n);
      // The catch path: health out of gas, nothing swept, the transaction succeeds.
      const c = await lastCatch(send, "STATICCALL", 1, lowest, 400_000n);
      expect(c.status).to.equal(1);
      expect(c.call.ok).to.equal(false);
      const before = [
        await sys.vault.balanceOf(backstop, sys.usdc),
        await sys.vault.balanceOf(pool, sys.usdc),
      ];
      await time.setNextBlockTimestamp((await time.latest()) + 1);
      const griefed = await (await send(c.gasLimit)).wait();
      expect(findEvent(griefed!.logs, sys.auction, "BackstopQuoteSwept")).to.equal(undefined);
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(before[0]);
      expect(await sys.vault.balanceOf(pool, sys.usdc)).to.equal(before[1]);
      // Above the window the sweep fails until it can afford the transfer, then moves the whole surplus.
      const full = await lowestSuccess(send, c.gasLimit + 1n, 1_000_000n);
      const swept = await attempt(
        send,
        full,
        async (r) => findEvent(r.logs, sys.auction, "BackstopQuoteSwept")?.args[0],
      );
      expect(swept.seen).to.equal(surplus);
      // Anyone's next sweep (the keeper's, every pass) moves what the griefed one left.
      await expect(sys.auction.sweepBackstopQuote())
        .to.emit(sys.auction, "BackstopQuoteSwept")
        .withArgs(surplus);
      expect(await sys.vault.balanceOf(pool, sys.usdc)).to.equal(before[1] + surplus);
    });
  });

  describe("LiquidityPool's valuations", function () {
    it("an exit sent with too little gas for one of its reads reverts; the lowest that succeeds pays the LP in full", async function () {
      const { sys } = await loadFixture(backstopWithSurplus);
      const send = (g: bigint) =>
        sys.pool.connect(sys.lp).withdraw(1_000n * USDC, sys.lp.address, sys.lp.address, { gasLimit: g });
      const lowest = await lowestSuccess(send, 100_000n, 3_000_000n);
      // The largest limit at which any of the pool's reads fails (the pool's or the backstop's
      // initial-margin evaluation in a try, whose catch values the book again): it reverts.
      const c = await lastCatch(send, "STATICCALL", 1, lowest - 150_000n, lowest, "failed");
      expect(c.call.ok).to.equal(false);
      expect(c.status).to.equal(0);
      const paid = await attempt(send, lowest, async (r) => findEvent(r.logs, sys.pool, "Withdraw")?.args[3]);
      expect(paid.seen).to.equal(1_000n * USDC);
    });

    it("maxDeposit read with too little gas answers 0 (closed), never more than the room", async function () {
      const { sys } = await loadFixture(backstopWithSurplus);
      const room = await sys.pool.maxDeposit(sys.lp.address);
      expect(room).to.be.greaterThan(0n);
      const to = await sys.pool.getAddress();
      const data = sys.pool.interface.encodeFunctionData("maxDeposit", [sys.lp.address]);
      const answers = new Set<bigint>();
      for (let g = 30_000n; g <= 400_000n; g += 5_000n) {
        const out = await ethers.provider.call({ to, data, gasLimit: g }).catch(() => undefined);
        if (out !== undefined) answers.add(BigInt(out));
      }
      expect([...answers].sort()).to.deep.equal([0n, room]);
    });
  });

  describe("OracleRouter.configureAsset's circuit-breaker read", function () {
    it("accepts no bounds outside the aggregator's band at any gas limit", async function () {
      const [deployer] = await ethers.getSigners();
      const manager = await ethers.deployContract("AccessManager", [deployer.address]);
      const router = await deployOracleRouter(await manager.getAddress());
      // A band of [100, 10,000] USD; the bounds [1, 1,000,000] USD lie outside it.
      const feed = await ethers.deployContract("CircuitBreakerAggregatorMock", [
        8,
        3000n * 10n ** 8n,
        100n * 10n ** 8n,
        10_000n * 10n ** 8n,
      ]);
      const input = await sourcesInput([feed]);
      const eth = assetId("ETH");
      await expect(router.configureAsset(eth, input)).to.be.revertedWithCustomError(router, "InvalidConfig");
      const send = (g: bigint) => router.configureAsset(eth, input, { gasLimit: g });
      // The largest limit at which a read fails (maxAnswer, or the phase read after it) leaves the most
      // gas a skipped check could: the transaction still reverts, and above it InvalidConfig refuses it.
      // Its storage writes come first (~44,000 gas), then the feed's reads: find a limit where a read fails.
      let lo = 60_000n;
      const failed = async (g: bigint) =>
        (await attempt(send, g, async (r) => heaviestCall(await steps(r), "STATICCALL", 1, "failed"))).seen
          ?.ok === false;
      while (!(await failed(lo))) lo += 1_000n;
      const c = await lastCatch(send, "STATICCALL", 1, lo, 1_000_000n, "failed");
      expect(c.call.ok).to.equal(false);
      expect(c.status).to.equal(0);
      expect((await attempt(send, c.gasLimit + 1n)).status).to.equal(0);
      expect((await router.assetConfig(eth)).sources).to.have.length(0);
    });
  });
});
