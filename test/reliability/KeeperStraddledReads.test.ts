/**
 * Review round 132: a keeper pass whose reads straddle blocks. A pass fixes its `head` (block number and
 * timestamp) once, but reads the chain at "latest" call by call: a block mined between two reads of one
 * decision shows the decision two states. Each specification mines that block between two chosen reads
 * (by hooking the in-process chain's requests, `onRequests`) and checks what the keeper does: what it
 * sends, what it wastes, whom it leaves unpaid.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { Transaction } from "ethers";
import { MarginMode, WAD, openAccount, wad } from "../shared/system";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { setFeedPrice } from "../shared/oracles";
import { mineAt, refreshFeeds, trade } from "../shared/perps";
import {
  aliceLongInAuction,
  callDataOf,
  expiredCallWritten,
  minedKeeperCalls,
  onRequests,
  startInProcessKeeper,
  stillOpen,
  QUIET_KEEPER,
} from "../shared/keeper";

const USDC = 10n ** 6n;

/**
 * Runs `step` with `rival` run once, before the chain answers the pass's first eth_call whose calldata
 * starts with `selector` (after the pass fixed its head): the rival's transactions are mined between the
 * pass's earlier reads and that one. Returns whether it ran.
 */
async function withRivalBefore(
  selector: string,
  rival: () => Promise<unknown>,
  step: () => Promise<unknown>,
) {
  let ran = false;
  await onRequests(async (method, params) => {
    if (ran || method !== "eth_call" || !callDataOf(params).startsWith(selector)) return;
    ran = true;
    await rival();
  }, step);
  return ran;
}

/**
 * Alice writes 4 ETH-3300 calls (a day) on 1,500 USDC; ETH at 3,800 puts her 500 USDC under water (the whole book goes) and her auction
 * starts; it runs its duration and the series expires with no round of ETH's feed after expiry yet: the
 * keeper cannot settle the series, finds no bid that closes an expired series, and absorbs her book
 * (the backstop takes her calls: `transferPosition` moves an expired series until it is settled).
 */
async function expiredWriterAbsorbable() {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(DAY);
  const call = await listSeries(sys.options, "ETH", "3300", expiry, true);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_500n * USDC]]);
  await tradeOption(sys.options, sys.alice, alice, call, -wad("4"));
  await setFeedPrice(sys.feeds.ETH, "3800");
  await sys.auction.startAuction(alice);
  await mineAt(sys, expiry);
  return { sys, call, alice, backstop: await sys.auction.backstopAccountId() };
}

describe("Keeper reads straddling blocks: option payouts", function () {
  it("pays a holder who received a position in a block after the pass's head, once the series is settled", async function () {
    // The pass scans holders (OptionTraded, PositionTransferred) up to its head and reads their positions
    // at latest. Its own absorb moves Alice's expired calls to the backstop in a block after the head, and
    // ETH's first round after expiry lands before its payout step settles the series: Alice, the only
    // holder the scan knows, reads closed. The bug: the series was marked done, never read again, and the
    // backstop's calls were never paid by the keeper.
    const { sys, call, alice, backstop } = await expiredWriterAbsorbable();
    const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
    const absorb = sys.auction.interface.getFunction("absorb").selector;
    let absorbSent = false;
    let rivalSettled = false;
    await onRequests(
      async (method, params) => {
        if (method === "eth_sendRawTransaction")
          absorbSent ||= Transaction.from(params[0] as string).data.startsWith(absorb);
        else if (absorbSent && !rivalSettled && method === "eth_getTransactionReceipt") {
          rivalSettled = true;
          await setFeedPrice(sys.feeds.ETH, "3800");
          const [hint] = await sys.feeds.ETH.latestRoundData();
          await sys.options.connect(sys.carol).settleSeries(call, hint);
        }
      },
      () => keeper.step(),
    );
    expect(rivalSettled).to.equal(true);
    expect((await sys.options.series(call)).settled).to.equal(true);
    expect(await sys.options.positionSize(alice, call)).to.equal(0n);
    const absorbed = await sys.options.positionSize(backstop, call);
    expect(absorbed).to.be.lessThan(0n);

    for (let pass = 0; pass < 2; pass++) {
      await refreshFeeds(sys);
      await keeper.step();
    }

    expect(await sys.options.positionSize(backstop, call)).to.equal(0n);
    const s = await sys.options.series(call);
    expect([s.longOpenInterest, s.shortOpenInterest]).to.deep.equal([0n, 0n]);
  });
});

/** Alice long 10 ETH on 5,000 USDC, ETH then at 2,600 (below maintenance, solvent); Bob 50,000 USDC. */
async function aliceUnderWater() {
  const sys = await deployOptionsSystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
  await setFeedPrice(sys.feeds.ETH, "2600");
  return { sys, alice, bob };
}

describe("Keeper reads straddling blocks: health, then the auction", function () {
  it("sends no start when a rival's bid restores the account between the health read and the auction read", async function () {
    // healthMany (block N) says liquidatable; Bob's bid, mined before the keeper reads the auction, ends
    // it with Alice healthy: the auction reads "none", so the pass would start one. The start is checked
    // at pending first (reverts `AccountNotLiquidatable`-like): no transaction, the next pass reads her healthy.
    const { sys, alice, bob } = await aliceUnderWater();
    await sys.auction.startAuction(alice);
    const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
    const from = await ethers.provider.getBlockNumber();
    const raced = await withRivalBefore(
      sys.auction.interface.getFunction("auctions").selector,
      async () => {
        const [, payment] = await sys.auction.quoteBid(alice, WAD);
        await sys.auction.connect(sys.bob).bid(alice, bob, WAD, payment * 2n + 1n);
      },
      () => keeper.step(),
    );
    expect(raced).to.equal(true);
    const [, active] = await sys.auction.auctions(alice);
    expect(active).to.equal(false);
    const skipped = keeper.lines.filter((l) => l.msg === "simulation reverted; not sending");
    expect(skipped.map((l) => l.fields.action)).to.deep.equal(["startAuction"]);

    const second = await keeper.step();

    expect(second.liquidatable).to.deep.equal([]);
    expect(await minedKeeperCalls(sys, from, await ethers.provider.getBlockNumber())).to.deep.equal([]);
  });

  it("neither starts nor waits when a rival starts the auction between the health read and the auction read", async function () {
    // The auction reads "running": the pass goes to its bid (none pays here) in the same pass.
    const { sys, alice } = await aliceUnderWater();
    const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
    const from = await ethers.provider.getBlockNumber();
    const raced = await withRivalBefore(
      sys.auction.interface.getFunction("auctions").selector,
      () => sys.auction.connect(sys.carol).startAuction(alice),
      () => keeper.step(),
    );
    expect(raced).to.equal(true);
    expect(
      keeper.lines.some((l) => l.msg === "bid not profitable" && l.fields.accountId === alice.toString()),
    ).to.equal(true);
    expect(await minedKeeperCalls(sys, from, await ethers.provider.getBlockNumber())).to.deep.equal([]);
    expect(await sys.auction.queryFilter(sys.auction.filters.AuctionStarted(alice))).to.have.length(1);
  });
});

describe("Keeper reads straddling blocks: an auction's deficit", function () {
  it("records no deficit that ETH's recovery erased between the health read and the update", async function () {
    // Alice's auction starts at 2,600 (solvent, no deficit); ETH at 2,400 puts her ~1,000 USDC under
    // water. The pass's healthMany reads that; ETH is back at 2,600 before it reads her collateral. The
    // bug: the deficit was taken from the health read, the last check at pending reads only the record
    // (still 0), and an update recording nothing was mined (165,304 gas: `updateDeficit` only raises).
    const sys = await deployOptionsSystem();
    await aliceLongInAuction(sys);
    await setFeedPrice(sys.feeds.ETH, "2400");
    const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
    const from = await ethers.provider.getBlockNumber();
    const raced = await withRivalBefore(
      sys.vault.interface.getFunction("markInQuote").selector,
      () => setFeedPrice(sys.feeds.ETH, "2600"),
      () => keeper.step(),
    );
    expect(raced).to.equal(true);
    expect(await minedKeeperCalls(sys, from, await ethers.provider.getBlockNumber())).to.deep.equal([]);
  });

  it("records the deficit when the fresh read still shows it (no straddle)", async function () {
    // What the re-read must not lose: ETH stays at 2,400 and the update goes out, raising the record.
    const sys = await deployOptionsSystem();
    const alice = await aliceLongInAuction(sys);
    await setFeedPrice(sys.feeds.ETH, "2400");
    const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
    const from = await ethers.provider.getBlockNumber();
    await keeper.step();
    const sent = await minedKeeperCalls(sys, from, await ethers.provider.getBlockNumber());
    expect(sent.map((t) => t.fn)).to.deep.equal(["updateDeficit"]);
    expect((await sys.auction.auctions(alice)).deficit).to.be.greaterThan(900n * USDC);
  });
});

describe("Keeper reads straddling blocks: a payout batch", function () {
  it("sends no payout batch that a rival's payout, mined while the keeper read its holders, emptied", async function () {
    // Three writers of an expired call, one batch. A rival pays all three out while the keeper reads the
    // third holder's position: two read open, and the batch is those two. The bug: the series' open
    // interest (the last check's baseline) was read after the holders, so it already showed the rival's
    // payout, the check at pending saw no further fall, and the batch was mined paying nobody.
    const { sys, call, writers } = await expiredCallWritten(3);
    const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
    const from = await ethers.provider.getBlockNumber();
    const positionSize = sys.options.interface.getFunction("positionSize").selector;
    let reads = 0;
    await onRequests(
      async (method, params) => {
        if (method !== "eth_call" || !callDataOf(params).startsWith(positionSize) || ++reads !== 3) return;
        await sys.options.connect(sys.carol).settleAccounts(writers, call);
      },
      () => keeper.step(),
    );
    expect(reads).to.be.at.least(3);
    expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
    const sent = await minedKeeperCalls(sys, from, await ethers.provider.getBlockNumber());
    expect(sent.map((t) => t.fn)).to.deep.equal(["settleSeries"]);
  });
});
