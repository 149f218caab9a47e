/**
 * The keeper's liquidations before its non-urgent sends (review round 129). A pass sends its option
 * payouts (one transaction per 50 holders), the backstop's unwinds and sweep and its funding accruals
 * after its health checks, starts and bids, each waiting for its receipt; the next pass waited for all of
 * them. Deterministic: automine off, and a block is mined whenever the keeper's transaction waits in the
 * pool (one keeper transaction a block, as on a chain whose blocks are its receipts' pace); passes run as
 * `runKeeper` runs them, a pass on each new head. URGENT_TABLE=1 prints each pass's head and sends.
 *
 * Scaling (row 328): an account crossing maintenance in the block of a pass's first payout batch waited
 * ceil(holders / 50) blocks for its `startAuction` (3 here for 101 holders; 50 for 2,500: 600 s at 12 s
 * blocks, 100 s at 2 s); now 1 block, whatever the number of holders.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { Transaction } from "ethers";
import type { OptionMarket } from "../../typechain-types";
import type { StepReport } from "../../scripts/keeper/loop";
import { MarginMode, openAccount, wad, type System } from "../shared/system";
import { refreshFeeds, trade } from "../shared/perps";
import { hardhatWallet } from "../shared/e2e";
import {
  callDataOf,
  expiredCallWritten,
  minedKeeperCalls,
  onRequests,
  startInProcessKeeper,
  stillOpen,
  type InProcessKeeper,
  QUIET_KEEPER,
} from "../shared/keeper";

type Sys = System & { options: OptionMarket };

const USDC = 10n ** 6n;
/** Three payout batches of SETTLE_BATCH (50): 50, 50, 1. */
const HOLDERS = 101;
const KEEPER = hardhatWallet(4).address.toLowerCase();

/** 101 writers of an expired ETH-3000 call (settlement round at 3,100); Alice long 10 ETH on 5,000 USDC. */
async function expiredSeriesAndAlice() {
  const { sys, call, writers } = await expiredCallWritten(HOLDERS);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
  return { sys, call, writers, alice };
}

/** One pass: the head it ran on, its report, and the keeper's transactions it had mined (by function). */
interface Pass {
  head: number;
  report: StepReport;
  mined: { fn: string; block: number }[];
}

/**
 * Keeper passes as `runKeeper` runs them (one on each new head; an empty block when nothing is new),
 * automine off and a block mined whenever the keeper's transaction waits in the pool, `beforeBlock`
 * first (the name of the function waiting: the test may add its own transaction to the block). With
 * `blockAhead`, a block is mined as each pass has read its head: blocks faster than the pass, so a block
 * newer than its head is out before any of its sends. Stops once `until` holds or after `maxPasses`.
 */
async function passesUnderMiner(
  sys: Sys,
  keeper: InProcessKeeper,
  opts: {
    until: () => Promise<boolean>;
    maxPasses: number;
    beforeBlock?: (waiting: string) => Promise<void>;
    blockAhead?: boolean;
  },
): Promise<Pass[]> {
  const request = network.provider.request.bind(network.provider);
  const mine = () => request({ method: "evm_mine", params: [] });
  const waitingInPool = async (): Promise<boolean> =>
    (await ethers.provider.getTransactionCount(KEEPER, "pending")) >
    (await ethers.provider.getTransactionCount(KEEPER, "latest"));
  let lastSent = "";
  let armed = false;
  const passes: Pass[] = [];
  await request({ method: "evm_setAutomine", params: [false] });
  try {
    await onRequests(
      async (method, params) => {
        if (method === "eth_sendRawTransaction") {
          const data = Transaction.from(params[0] as string).data;
          lastSent = sys.options.interface.parseTransaction({ data })?.name ?? callDataOf([{ data }]);
        }
        // The step asks for its head's block right after its number: the head is fixed by then.
        if (armed && method === "eth_getBlockByNumber") {
          armed = false;
          await mine();
        }
      },
      async () => {
        let processed = -1;
        while (passes.length < opts.maxPasses && !(await opts.until())) {
          const head = await ethers.provider.getBlockNumber();
          if (head <= processed) {
            await mine();
            continue;
          }
          armed = opts.blockAhead ?? false;
          let done = false;
          const stepping = keeper.step().finally(() => (done = true));
          while (!done) {
            if (await waitingInPool()) {
              await opts.beforeBlock?.(lastSent);
              await mine();
            } else await new Promise((resolve) => setTimeout(resolve, 5));
          }
          const report = await stepping;
          processed = head;
          passes.push({
            head,
            report,
            mined: await minedKeeperCalls(sys, head, await ethers.provider.getBlockNumber()),
          });
        }
      },
    );
  } finally {
    await request({ method: "evm_setAutomine", params: [true] });
  }
  if (process.env.URGENT_TABLE === "1")
    for (const p of passes)
      console.log(JSON.stringify({ head: p.head, mined: p.mined, deferred: p.report.deferred }));
  return passes;
}

/** Every writer's position closed. */
async function allPaid(sys: Sys, call: bigint): Promise<boolean> {
  const s = await sys.options.series(call);
  return s.settled && s.longOpenInterest === 0n && s.shortOpenInterest === 0n;
}

describe("The keeper's liquidations before its non-urgent sends (review round 129)", function () {
  it("starts the auction of an account that crossed maintenance in its first payout batch's block in the next block", async function () {
    const { sys, call, alice } = await loadFixture(expiredSeriesAndAlice);
    const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--funding-interval", "0"]);
    let dropBlock = -1;
    const passes = await passesUnderMiner(sys, keeper, {
      maxPasses: 12,
      until: async () => (await sys.auction.auctions(alice)).active && (await allPaid(sys, call)),
      // ETH falls to 2,650 in the block of the first payout batch: Alice crosses maintenance.
      beforeBlock: async (waiting) => {
        if (waiting !== "settleAccounts" || dropBlock >= 0) return;
        await sys.feeds.ETH.updateAnswer(2_650n * 10n ** 8n);
        dropBlock = (await ethers.provider.getBlockNumber()) + 1;
      },
    });
    expect((await sys.engine.health(alice)).equityMaintenance).to.be.lessThan(
      (await sys.engine.health(alice)).maintenanceRequirement,
    );
    const mined = passes.flatMap((p) => p.mined);
    const start = mined.find((m) => m.fn === "startAuction");
    expect(start, "startAuction mined").to.not.equal(undefined);
    // Before: block dropBlock + 3 (the pass sent its 2 other batches first: ceil(101 / 50) blocks, and
    // 50 for 2,500 holders). Now: the pass stops after the batch, the next one starts the auction.
    expect(start!.block - dropBlock).to.equal(1);
    expect(await allPaid(sys, call)).to.equal(true);
    expect(mined.filter((m) => m.fn === "settleAccounts")).to.have.length(3);
  });

  it("pays 101 holders out over passes, one batch a pass, reading each holder's position once", async function () {
    const { sys, call, writers } = await loadFixture(expiredSeriesAndAlice);
    const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--funding-interval", "0"]);
    const positionSize = sys.options.interface.getFunction("positionSize").selector;
    let reads = 0;
    const passes = await onRequests(
      (method, params) => {
        if (method === "eth_call" && callDataOf(params).startsWith(positionSize)) reads += 1;
      },
      () => passesUnderMiner(sys, keeper, { maxPasses: 8, until: () => allPaid(sys, call) }),
    );
    expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
    // settleSeries and the first batch, then a batch a pass; each pass but the last leaves the rest.
    expect(passes.map((p) => p.mined.map((m) => m.fn))).to.deep.equal([
      ["settleSeries", "settleAccounts"],
      ["settleAccounts"],
      ["settleAccounts"],
    ]);
    expect(passes.map((p) => p.report.deferred)).to.deep.equal([true, true, false]);
    expect(passes.map((p) => p.report.options?.positionsSettled)).to.deep.equal([50, 50, 1]);
    // Every holder read once (re-read from the first each pass: 50 + 100 + 101 = 251).
    expect(reads).to.equal(HOLDERS);
  });

  it("starves nothing when a newer block is out before every pass sends: one non-urgent send a pass, payouts then funding", async function () {
    const { sys, call } = await loadFixture(expiredSeriesAndAlice);
    const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--funding-interval", "3600"]);
    await time.increase(3_600);
    await refreshFeeds(sys);
    const lastFunding = async () => (await sys.perps.market(sys.markets.ETH)).lastFundingTime;
    const before = await lastFunding();
    const passes = await passesUnderMiner(sys, keeper, {
      maxPasses: 8,
      blockAhead: true,
      until: async () => (await allPaid(sys, call)) && (await lastFunding()) > before,
    });
    // A stage that sent nothing once a newer block was out would send nothing, ever, here.
    expect(passes.map((p) => p.mined.map((m) => m.fn))).to.deep.equal([
      ["settleSeries", "settleAccounts"],
      ["settleAccounts"],
      ["settleAccounts"],
      ["accrueFunding"],
    ]);
    expect(await allPaid(sys, call)).to.equal(true);
    expect(passes.at(-1)!.report.fundingAccrued).to.deep.equal([sys.markets.ETH]);
  });

  it("sends every payout of a pass when no newer block comes (a dry run): 101 positions in one pass", async function () {
    const { sys, call } = await loadFixture(expiredSeriesAndAlice);
    await sys.options.settleSeries(call, await sys.feeds.ETH.latestRound());
    const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--dry-run", "--funding-interval", "0"]);
    const report = await keeper.step();
    expect(report.options?.positionsSettled).to.equal(HOLDERS);
    expect(report.deferred).to.equal(false);
    const wouldSend = keeper.lines.filter((l) => l.msg === "dry run: would send");
    expect(wouldSend.map((l) => [l.fields.action, l.fields.accounts])).to.deep.equal([
      ["settleAccounts", 50],
      ["settleAccounts", 50],
      ["settleAccounts", 1],
    ]);
  });
});
