/**
 * Review round 128: round 124's raced sends (rows 312–315) seen by an operator who must not lose a
 * liquidation or a settlement. Can a last check at pending decide "a rival did it" when nobody did
 * (a user's transaction waiting in the pool), how long until a later pass mends it, what a node that
 * refuses the pending state does to the new `check` views, and what the jitter costs a single keeper.
 * Deterministic: automine off where a transaction must wait in the pool, the jitter 0 or a constant draw.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { OptionMarket } from "../../typechain-types";
import { MarginMode, openAccount, wad, type System } from "../shared/system";
import { deployOptionsSystem } from "../shared/options";
import { refreshFeeds, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { hardhatWallet } from "../shared/e2e";
import {
  aliceLongInAuction,
  callDataOf,
  expiredCallWritten,
  stillOpen,
  onRequests,
  startInProcessKeeper,
  type InProcessKeeper,
} from "../shared/keeper";
import type { StepReport } from "../../scripts/keeper/loop";
import { paidOutBy, sidesOf } from "../../scripts/keeper/logic";

type Sys = System & { options: OptionMarket };
type Request = (args: { method: string; params?: unknown[] }) => Promise<unknown>;
const request: Request = (args) => network.provider.request(args);

const KEEPER = hardhatWallet(4).address;
const NO_JITTER = ["--race-jitter-ms", "0"];

/** The answer of a node that serves no pending state to an eth_call at "pending" (review round 118). */
function refusingPending(method: string, params: unknown[]): void {
  if (method === "eth_call" && params[1] === "pending")
    throw Object.assign(new Error("pending block is not available"), { code: -32000 });
}

/**
 * One keeper pass with automine off, as on a chain where others' transactions wait in the pool: a block
 * is mined whenever the keeper's own transaction waits (it sends one at a time and waits for the receipt),
 * and with it whatever else waits. Returns the pass's report.
 */
async function stepMiningOwn(keeper: InProcessKeeper): Promise<StepReport> {
  await request({ method: "evm_setAutomine", params: [false] });
  try {
    let done = false;
    const step = keeper.step().finally(() => (done = true));
    while (!done) {
      const [pending, mined] = await Promise.all([
        ethers.provider.getTransactionCount(KEEPER, "pending"),
        ethers.provider.getTransactionCount(KEEPER, "latest"),
      ]);
      if (pending > mined) await request({ method: "evm_mine", params: [] });
      else await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return await step;
  } finally {
    await request({ method: "evm_setAutomine", params: [true] });
  }
}

/** Sends `send`'s transaction with automine off, so that it waits in the pool; returns its hash. */
async function waitingInPool(send: () => Promise<{ hash: string }>): Promise<string> {
  await request({ method: "evm_setAutomine", params: [false] });
  try {
    return (await send()).hash;
  } finally {
    await request({ method: "evm_setAutomine", params: [true] });
  }
}

/** An expired call written in `holders` accounts, its series settled (the keeper has only payouts to do). */
async function settledCall(holders: number) {
  const written = await expiredCallWritten(holders);
  const { sys, call } = written;
  await sys.options.settleSeries(call, await sys.feeds.ETH.latestRound());
  return written;
}

/** Bob long 10 ETH; an hour later, the market's funding is stale for a keeper run with `--funding-interval 3600`. */
async function staleFunding(sys: Sys): Promise<bigint> {
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * 10n ** 6n]]);
  await (await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("10"))).wait();
  await time.increase(3_600);
  await refreshFeeds(sys);
  return bob;
}

describe("Keeper raced sends, review round 128", function () {
  describe("false skips: a user's transaction in the pool read as a rival's", function () {
    it("pays a batch's holders while another holder's own settlement waits in the pool, instead of skipping the batch", async function () {
      const { sys, call, writers } = await settledCall(3);
      const keeper = await startInProcessKeeper(sys, NO_JITTER);
      // Carol settles her first account herself (anyone may); her transaction waits for the next block.
      await waitingInPool(() => sys.options.connect(sys.carol).settleAccount(writers[0], call));
      const report = await stepMiningOwn(keeper);
      // Before the fix: the series' open interest at pending moved by writer 0's 0.01, read as a rival's
      // payout: "series being paid out by another; not sending", writers 1 and 2 left unpaid this pass.
      expect(
        keeper.lines.filter((l) => l.msg === "series being paid out by another; not sending"),
      ).to.have.length(0);
      expect(report.options?.positionsSettled).to.equal(3);
      expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
    });

    it("skips a batch whose every holder a rival's payout in the pool pays, and pays on the next pass what a dropped one left", async function () {
      const { sys, call, writers } = await settledCall(3);
      const keeper = await startInProcessKeeper(sys, NO_JITTER);
      const rival = await waitingInPool(() =>
        sys.options.connect(sys.bob).settleAccounts([...writers].reverse(), call),
      );
      await stepMiningOwn(keeper);
      expect(
        keeper.lines.filter((l) => l.msg === "series being paid out by another; not sending"),
      ).to.have.length(1);
      expect(await stillOpen(sys, call, writers)).to.deep.equal(writers);
      // The rival's payout never makes it (dropped, or replaced by its sender): the next pass pays.
      await request({ method: "hardhat_dropTransaction", params: [rival] });
      const next = await keeper.step();
      expect(next.options?.positionsSettled).to.equal(3);
      expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
    });

    it("skips a funding accrual while a trade in the pool moves the funding time, and accrues on the next pass once the trade is dropped", async function () {
      const sys = await deployOptionsSystem();
      const bob = await staleFunding(sys);
      const keeper = await startInProcessKeeper(sys, [...NO_JITTER, "--funding-interval", "3600"]);
      const before = (await sys.perps.market(sys.markets.ETH)).lastFundingTime;
      // Bob's trade accrues the market's funding first: at pending the funding time has moved.
      const trade2 = await waitingInPool(() => trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("1")));
      const first = await stepMiningOwn(keeper);
      expect(first.fundingAccrued).to.deep.equal([]);
      expect(keeper.lines.some((l) => l.msg === "funding already accrued; not sending")).to.equal(true);
      // The trade is dropped (or reverts): nobody accrued. The next pass (the next block) does, over the
      // whole time since: nothing is lost but a block's delay.
      await request({ method: "hardhat_dropTransaction", params: [trade2] });
      const second = await keeper.step();
      expect(second.fundingAccrued).to.deep.equal([sys.markets.ETH]);
      const after = (await sys.perps.market(sys.markets.ETH)).lastFundingTime;
      expect(after).to.equal(BigInt(await time.latest()));
      expect(after - before).to.be.greaterThanOrEqual(3_600n);
    });
  });

  describe("a rival's transaction in the pool that never makes it", function () {
    it("skips a deficit update while a rival's waits in the pool, and records it on the next pass once that one is dropped", async function () {
      const sys = await deployOptionsSystem();
      const alice = await aliceLongInAuction(sys);
      const keeper = await startInProcessKeeper(sys, [...NO_JITTER, "--min-profit-usd", "1000000"]);
      await keeper.step();
      await setFeedPrice(sys.feeds.ETH, "2400");
      // The auctions(id) answer decoded by name: active (2nd field) and deficit (3rd), as the getter has them.
      const rival = await waitingInPool(() => sys.auction.connect(sys.bob).updateDeficit(alice));
      await stepMiningOwn(keeper);
      expect(keeper.lines.some((l) => l.msg === "deficit already recorded; not sending")).to.equal(true);
      expect((await sys.auction.auctions(alice)).deficit).to.equal(0n);
      await request({ method: "hardhat_dropTransaction", params: [rival] });
      await keeper.step();
      // Recorded a block late: the LP share price deducted nothing for that block; the fund pays only
      // when the book is taken, which no skip touches.
      expect((await sys.auction.auctions(alice)).deficit).to.be.greaterThan(0n);
    });
  });

  describe("the payout check (paidOutBy)", function () {
    const read = { long: wad("5"), short: wad("3") };
    const batch = { long: wad("1"), short: wad("0.5") };
    it("reads open interest fallen by the batch's positions on both sides as a rival's payout", function () {
      expect(paidOutBy(read, { long: wad("4"), short: wad("2.5") }, batch)).to.equal(true);
      expect(paidOutBy(read, { long: wad("3"), short: wad("2") }, batch)).to.equal(true);
    });
    it("does not read one holder's own settlement, smaller than the batch, as a rival's payout", function () {
      expect(paidOutBy(read, { long: wad("4.5"), short: wad("3") }, batch)).to.equal(false);
      expect(paidOutBy(read, { long: wad("4"), short: wad("3") }, batch)).to.equal(false);
      expect(paidOutBy(read, read, batch)).to.equal(false);
    });
    it("sums a batch's signed positions by side", function () {
      expect(sidesOf([wad("1"), -wad("0.25"), wad("2"), -wad("0.5")])).to.deep.equal({
        long: wad("3"),
        short: wad("0.75"),
      });
    });
  });

  describe("a node that refuses eth_call at pending (round 118, PENDING_REPROBE_MS)", function () {
    it("reads the check views at latest and still pays a series out and accrues funding", async function () {
      const { sys, call, writers } = await settledCall(3);
      await staleFunding(sys);
      const keeper = await startInProcessKeeper(sys, [...NO_JITTER, "--funding-interval", "3600"]);
      let refused = 0;
      // Two passes: the accrual waits for the next once the payout is mined (review round 129).
      const [report, next] = await onRequests(
        (method, params) => {
          if (method === "eth_call" && params[1] === "pending") refused += 1;
          refusingPending(method, params);
        },
        async () => [await keeper.step(), await keeper.step()],
      );
      // Refused once, then straight to latest for the next 10 minutes.
      expect(refused).to.equal(1);
      expect(
        keeper.lines.filter((l) => l.msg.startsWith("the node refuses eth_call at pending")),
      ).to.have.length(1);
      expect(report.options?.positionsSettled).to.equal(3);
      expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
      expect(next.fundingAccrued).to.deep.equal([sys.markets.ETH]);
    });
  });

  describe("a single keeper: what the check adds", function () {
    it("with --race-jitter-ms 0 makes one eth_call more per send (the accrual's market read at pending), and waits nothing", async function () {
      const sys = await deployOptionsSystem();
      await staleFunding(sys);
      let draws = 0;
      const keeper = await startInProcessKeeper(
        sys,
        [...NO_JITTER, "--funding-interval", "3600"],
        undefined,
        () => (draws += 1) && 0.5,
      );
      const accrue = sys.perps.interface.getFunction("accrueFunding").selector;
      const market = sys.perps.interface.getFunction("market").selector;
      const seen: string[] = [];
      const report = await onRequests(
        (method, params) => {
          const data = callDataOf(params);
          if (method === "eth_estimateGas" && data.startsWith(accrue)) seen.push("estimate accrueFunding");
          if (method === "eth_call" && params[1] === "pending")
            seen.push(data.startsWith(market) ? "market at pending" : `${data.slice(0, 10)} at pending`);
        },
        () => keeper.step(),
      );
      expect(report.fundingAccrued).to.deep.equal([sys.markets.ETH]);
      expect(seen).to.deep.equal(["estimate accrueFunding", "market at pending"]);
      expect(draws).to.equal(0);
    });

    it("in a dry run reports the accrual and the payouts it would send, and sends nothing", async function () {
      const { sys, call, writers } = await settledCall(3);
      await staleFunding(sys);
      const keeper = await startInProcessKeeper(sys, [
        ...NO_JITTER,
        "--funding-interval",
        "3600",
        "--dry-run",
      ]);
      const nonce = await ethers.provider.getTransactionCount(KEEPER);
      const report = await keeper.step();
      expect(report.fundingAccrued).to.deep.equal([sys.markets.ETH]);
      expect(report.options?.positionsSettled).to.equal(3);
      expect(await ethers.provider.getTransactionCount(KEEPER)).to.equal(nonce);
      expect(await stillOpen(sys, call, writers)).to.deep.equal(writers);
    });

    it("waits up to the jitter once per raced send, in sequence: settlement, payout batch and accrual cost 3 draws, ≥ 747 ms over the two passes they take", async function () {
      const { sys } = await expiredCallWritten(3);
      await staleFunding(sys);
      let draws = 0;
      const keeper = await startInProcessKeeper(
        sys,
        ["--race-jitter-ms", "250", "--funding-interval", "3600"],
        undefined,
        () => {
          draws += 1;
          return 0.999;
        },
      );
      const started = Date.now();
      // The accrual goes out at the next pass, once the payout is mined (review round 129).
      const report = await keeper.step();
      const next = await keeper.step();
      const elapsed = Date.now() - started;
      expect(report.options?.seriesSettled).to.have.length(1);
      expect(report.options?.positionsSettled).to.equal(3);
      expect(next.fundingAccrued).to.deep.equal([sys.markets.ETH]);
      expect(draws).to.equal(3);
      expect(elapsed).to.be.greaterThanOrEqual(3 * 249);
      if (process.env.JITTER_TABLE === "1") console.log(JSON.stringify({ draws, elapsed }));
    });

    it("leaves a series to a rival seen paying it out: one jitter for the pass, not one per batch", async function () {
      // 51 holders: two batches (50 and 1); a rival's payout of the first waits in the pool.
      const { sys, call, writers } = await settledCall(51);
      let draws = 0;
      const keeper = await startInProcessKeeper(sys, ["--race-jitter-ms", "250"], undefined, () => {
        draws += 1;
        return 0.999;
      });
      await waitingInPool(() => sys.options.connect(sys.bob).settleAccounts(writers.slice(0, 50), call));
      const started = Date.now();
      const report = await stepMiningOwn(keeper);
      const elapsed = Date.now() - started;
      if (process.env.JITTER_TABLE === "1") console.log(JSON.stringify({ draws, elapsed }));
      // Before: both batches checked after a 249 ms wait each and skipped (the rival's 50 positions at
      // pending cover the second batch's one): a wait per batch, 50 per pass for 2,500 holders (12.5 s).
      expect(draws).to.equal(1);
      expect(report.options?.positionsSettled).to.equal(0);
      // The rival's payout mined; the next pass pays the holder it left.
      await request({ method: "evm_mine", params: [] });
      expect(await stillOpen(sys, call, writers)).to.deep.equal([writers[50]]);
      const next = await keeper.step();
      expect(next.options?.positionsSettled).to.equal(1);
      expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
    });
  });
});
