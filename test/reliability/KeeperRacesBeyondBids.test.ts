/**
 * Several keepers racing for the transactions round 117 left unchecked (review round 124): ending a
 * recovered account's auction, a single start, recording a deficit, settling an option series and paying
 * it out, sweeping and unwinding the backstop, accruing funding. Deterministic: the keepers step at once
 * on one head with automine off, a block is mined only when every keeper has sent (its transaction waits
 * in the pool) or finished its pass, and the keepers make their last checks in turn, keeper i's only once
 * every keeper before it has sent or finished — the order their race jitters give them when the draws
 * differ, held here by the harness instead of by wall-clock gaps (which a loaded machine closed: with
 * 200 ms between the draws, a clean-clone CI run under three mocha workers mined two backstop unwinds).
 * RACE_TABLE=1 prints what each race mined and wasted.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { TransactionReceipt } from "ethers";
import type { OptionMarket } from "../../typechain-types";
import type { Eip1193Like } from "../../scripts/keeper/chain";
import { Role } from "../../deploy/roles";
import { MarginMode, openAccount, wad, type System } from "../shared/system";
import { deployOptionsSystem, deployOptionsSystemWithoutFunding } from "../shared/options";
import { refreshFeeds, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { hardhatWallet } from "../shared/e2e";
import {
  absorbedLong,
  aliceLongInAuction,
  expiredCallWritten,
  startInProcessKeeper,
  stillOpen,
  threeLongsUnderWater,
  type InProcessKeeper,
} from "../shared/keeper";

const USDC = 10n ** 6n;

type Sys = System & { options: OptionMarket };
type Request = (args: { method: string; params?: unknown[] }) => Promise<unknown>;
const request: Request = network.provider.request.bind(network.provider);

/** Hardhat's #4 (the keeper's own key) and two competitors' keys (#6, #7: no fixture signs with them). */
const KEYS = [hardhatWallet(4), hardhatWallet(6), hardhatWallet(7)];
const ADDRESSES = KEYS.map((k) => k.address.toLowerCase());

/**
 * Per keeper, whether its pass in the running `passInLockstep` has finished; null outside one (the
 * keepers' warm-up passes, automine on, check without waiting their turn).
 */
let passDone: boolean[] | null = null;

const pause = () => new Promise((resolve) => setTimeout(resolve, 10));

/** Which of `addresses` have a transaction waiting in the pool, by the pool's nonce (building the pending block on every poll slowed the chain). */
async function waitingInPool(addresses: string[]): Promise<Set<string>> {
  const counts = await Promise.all(
    addresses.map(async (a) => [
      await ethers.provider.getTransactionCount(a, "pending"),
      await ethers.provider.getTransactionCount(a, "latest"),
    ]),
  );
  return new Set(addresses.filter((_, i) => counts[i][0] > counts[i][1]));
}

/**
 * Returns once keeper `i` may make a last check: every keeper before it has finished its pass or has its
 * transaction in the pool. Nothing is mined meanwhile (keeper i has neither), so what it then reads at
 * pending holds every transaction the keepers before it will send on this head.
 */
async function turnOf(i: number): Promise<void> {
  for (;;) {
    const done = passDone;
    if (done === null) return;
    const before = ADDRESSES.slice(0, i);
    const waiting = await waitingInPool(before);
    if (before.every((a, j) => done[j] || waiting.has(a))) return;
    await pause();
  }
}

/** Hardhat's provider as keeper `i` sees it: its eth_call at pending (a raced send's last check) waits its turn. */
function inTurn(i: number): Eip1193Like {
  return {
    async request(args) {
      if (args.method === "eth_call" && args.params?.[1] === "pending") await turnOf(i);
      return request(args);
    },
  };
}

/**
 * Three keepers on `sys` with `args`, no jitter (their turns order the checks). Each has run a pass
 * before (`warm`, unless false), as running keepers have.
 */
async function keepers(sys: Sys, args: string[], { warm = true } = {}): Promise<InProcessKeeper[]> {
  const out: InProcessKeeper[] = [];
  for (const [i, key] of KEYS.entries())
    out.push(
      await startInProcessKeeper(
        sys,
        ["--race-jitter-ms", "0", ...args],
        key.privateKey,
        undefined,
        inTurn(i),
      ),
    );
  if (warm) for (const k of out) await k.step();
  return out;
}

/** A keeper transaction mined in the race: what it called, who sent it, and whether it did anything. */
interface Mined {
  keeper: number;
  fn: string;
  receipt: TransactionReceipt;
  /** Reverted, or mined without a single event: what a rival's transaction already did. */
  wasted: boolean;
}

/**
 * One pass of every keeper of `ks` at once, on one head: automine off, and a block mined only when each
 * keeper has finished its pass or has its transaction waiting in the pool (a keeper sends one at a time
 * and waits for its receipt). So every keeper that would send on this head has sent before the block,
 * as keepers that saw the same block at the same moment do. Returns the keepers' transactions mined.
 */
async function passInLockstep(sys: Sys, ks: InProcessKeeper[]): Promise<Mined[]> {
  const addresses = ADDRESSES.slice(0, ks.length);
  const from = (await ethers.provider.getBlockNumber()) + 1;
  await request({ method: "evm_setAutomine", params: [false] });
  const done = ks.map(() => false);
  passDone = done;
  try {
    const steps = ks.map((k, i) => k.step().finally(() => (done[i] = true)));
    for (;;) {
      const waiting = await waitingInPool(addresses);
      if (waiting.size > 0 && addresses.every((a, i) => done[i] || waiting.has(a)))
        await request({ method: "evm_mine", params: [] });
      else if (done.every(Boolean)) break;
      else await pause();
    }
    await Promise.all(steps);
  } finally {
    passDone = null;
    await request({ method: "evm_setAutomine", params: [true] });
  }
  const mined = await minedBy(sys, from, addresses);
  printTally(mined);
  return mined;
}

/** The transactions of `addresses` mined in blocks [from, latest], named by the function they call. */
async function minedBy(sys: Sys, from: number, addresses: string[]): Promise<Mined[]> {
  const interfaces = [
    sys.auction.interface,
    sys.options.interface,
    sys.perps.interface,
    sys.accounts.interface,
  ];
  const out: Mined[] = [];
  const head = await ethers.provider.getBlockNumber();
  for (let n = from; n <= head; n++) {
    const block = await ethers.provider.getBlock(n, true);
    for (const t of block!.prefetchedTransactions) {
      const keeper = addresses.indexOf(t.from.toLowerCase());
      if (keeper < 0) continue;
      const receipt = (await ethers.provider.getTransactionReceipt(t.hash))!;
      const fn = interfaces.map((i) => i.parseTransaction({ data: t.data })?.name).find(Boolean) ?? t.data;
      out.push({ keeper, fn, receipt, wasted: receipt.status !== 1 || receipt.logs.length === 0 });
    }
  }
  return out;
}

/**
 * With RACE_TABLE=1, prints per function [mined, wasted, gas wasted] and the gas each keeper wasted:
 * the review's measurement (run on the code before and after the fix).
 */
function printTally(mined: Mined[]): void {
  if (process.env.RACE_TABLE !== "1") return;
  const byFn: Record<string, [number, number, bigint]> = {};
  const perKeeper = KEYS.map(() => 0n);
  for (const m of mined) {
    const row = (byFn[m.fn] ??= [0, 0, 0n]);
    row[0] += 1;
    if (!m.wasted) continue;
    row[1] += 1;
    row[2] += m.receipt.gasUsed;
    perKeeper[m.keeper] += m.receipt.gasUsed;
  }
  console.log(JSON.stringify({ byFn, perKeeper }, (_, v) => (typeof v === "bigint" ? Number(v) : v)));
}

/** The wasted transactions of `mined` as [function, status, gas used]. */
function wasted(mined: Mined[]): [string, number, bigint][] {
  return mined.filter((m) => m.wasted).map((m) => [m.fn, m.receipt.status ?? -1, m.receipt.gasUsed]);
}

describe("Keepers racing beyond bids (three keepers, one head, every keeper's transaction in the block)", function () {
  it("end each recovered account's auction once, no endAuction mined to revert", async function () {
    const { sys, ids } = await threeLongsUnderWater();
    await sys.auction.startAuctions(ids);
    // No bid pays: the auctions still run when ETH comes back.
    const ks = await keepers(sys, ["--min-profit-usd", "1000000"]);
    await setFeedPrice(sys.feeds.ETH, "3000");
    const mined = await passInLockstep(sys, ks);
    for (const id of ids) expect((await sys.auction.auctions(id)).active).to.equal(false);
    // Before: 9 endAuction mined, 6 of them reverted (AuctionNotActive, 24,079 gas each).
    expect(mined.filter((m) => m.fn === "endAuction" && !m.wasted)).to.have.length(3);
    expect(wasted(mined)).to.deep.equal([]);
  });

  it("start a single account's auction once, no startAuction mined to revert", async function () {
    const sys = await deployOptionsSystemWithoutFunding();
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * 10n ** 6n]]);
    await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
    // No bid pays: the pass starts the auction and does nothing else.
    const ks = await keepers(sys, ["--min-profit-usd", "1000000"]);
    await setFeedPrice(sys.feeds.ETH, "2600");
    const mined = await passInLockstep(sys, ks);
    expect((await sys.auction.auctions(alice)).active).to.equal(true);
    // Before: 3 startAuction mined, 2 of them reverted (AuctionAlreadyActive, 39,752 gas each).
    expect(mined.filter((m) => m.fn === "startAuction" && !m.wasted)).to.have.length(1);
    expect(wasted(mined)).to.deep.equal([]);
  });

  it("record a risen deficit once, no updateDeficit mined for nothing", async function () {
    const sys = await deployOptionsSystemWithoutFunding();
    const alice = await aliceLongInAuction(sys);
    const ks = await keepers(sys, ["--min-profit-usd", "1000000"]);
    await setFeedPrice(sys.feeds.ETH, "2400");
    const mined = await passInLockstep(sys, ks);
    expect((await sys.auction.auctions(alice)).deficit).to.be.greaterThan(0n);
    // Before: 3 updateDeficit mined, 2 of them recording nothing (170,622 gas each).
    expect(mined.filter((m) => m.fn === "updateDeficit" && !m.wasted)).to.have.length(1);
    expect(wasted(mined)).to.deep.equal([]);
  });

  it("settle an expired series and pay it out once, no settlement mined to revert or pay nobody", async function () {
    const { sys, call, writers } = await expiredCallWritten(3);
    // Not warmed: the first pass would settle the series.
    const ks = await keepers(sys, [], { warm: false });
    const mined = await passInLockstep(sys, ks);
    expect((await sys.options.series(call)).settled).to.equal(true);
    expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
    // Before: 2 of 3 settleSeries reverted (SeriesAlreadySettled, 26,433 gas each) and 2 of 3
    // settleAccounts paid nobody (35,136 gas each).
    expect(mined.filter((m) => m.fn === "settleSeries" && !m.wasted)).to.have.length(1);
    expect(mined.filter((m) => m.fn === "settleAccounts" && !m.wasted)).to.have.length(1);
    expect(wasted(mined)).to.deep.equal([]);
  });

  it("sweep the backstop's spare quote once, no sweep mined that moves nothing", async function () {
    const { sys } = await absorbedLong();
    const ks = await keepers(sys, []);
    // ETH back at 3,000: the backstop's long needs less than its cash, and the rest can move.
    await setFeedPrice(sys.feeds.ETH, "3000");
    const spare = await sys.auction.sweepBackstopQuote.staticCall();
    expect(spare).to.be.greaterThanOrEqual(100n * USDC);
    const mined = await passInLockstep(sys, ks);
    expect(await sys.auction.sweepBackstopQuote.staticCall()).to.equal(0n);
    // Before: 2 of 3 sweeps moved nothing, after a health read of the backstop (164,440-167,960 gas each).
    expect(mined.filter((m) => m.fn === "sweepBackstopQuote" && !m.wasted)).to.have.length(1);
    expect(wasted(mined)).to.deep.equal([]);
  });

  it("unwind the backstop once where every keeper holds the BACKSTOP role, no unwind mined to revert", async function () {
    const { sys, backstop } = await absorbedLong();
    for (const k of KEYS) await sys.manager.grantRole(Role.BACKSTOP, k.address, 0);
    // Carol's short makes the skew lean against the backstop's long while the keepers start (no
    // unwind), then she closes it: the skew leans the backstop's way.
    const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
    await trade(sys.perps, sys.carol, carol, sys.markets.ETH, -wad("30"));
    const ks = await keepers(sys, ["--unwind-backstop"]);
    await trade(sys.perps, sys.carol, carol, sys.markets.ETH, wad("30"));
    const mined = await passInLockstep(sys, ks);
    expect(await sys.perps.positionSize(backstop, sys.markets.ETH)).to.equal(0n);
    // Before: 2 of 3 unwinds reverted (UnwindNotReducing, 42,802 gas each).
    expect(mined.filter((m) => m.fn === "unwindBackstop" && !m.wasted)).to.have.length(1);
    expect(wasted(mined)).to.deep.equal([]);
  });

  it("accrue a market's stale funding once, no accrueFunding mined for nothing", async function () {
    const sys = await deployOptionsSystem();
    const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * 10n ** 6n]]);
    await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("10"));
    const ks = await keepers(sys, ["--funding-interval", "3600"]);
    await time.increase(3_600);
    await refreshFeeds(sys);
    const mined = await passInLockstep(sys, ks);
    // Before: 2 of 3 accrueFunding accrued nothing, in the block of the first (50,254 gas each).
    expect(mined.filter((m) => m.fn === "accrueFunding" && !m.wasted)).to.have.length(1);
    expect(wasted(mined)).to.deep.equal([]);
  });
});
