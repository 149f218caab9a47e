import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse } from "ethers";
import { MarginMode, openAccount, wad } from "../shared/system";
import { assetId, deployMockFeed, primarySwapInput } from "../shared/oracles";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { QUIET_KEEPER, startInProcessKeeper } from "../shared/keeper";

/**
 * Review round 162 (§4 row 511): a swap of ETH's primary feed (`configureAsset`) before an expired
 * series was settled stranded the series, and with it the pool's deposits and exits, because
 * settlement proved its round on the router's current primary only. The router now keeps the feeds it
 * replaced (event `PrimaryRetired`, with each one's latest round when it was replaced) and proves the
 * settlement round where it was posted (`getSettlementPrice`): the first round at or after expiry
 * posted by a feed while it was ETH's primary. Here `old` is the fixture's ETH feed (8 decimals).
 */
const USDC = 10n ** 6n;
const ETH = assetId("ETH");
const usd = (dollars: bigint) => dollars * 10n ** 8n; // a mock feed's 8-decimal answer

/** Alice long 2 ETH-3000 calls a day from expiry (the pool is short them: its exits wait for settlement). */
async function longCall() {
  const sys = await deployOptionsSystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const expiry = await fromNow(DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  await tradeOption(sys.options, sys.alice, alice, call, wad("2"));
  return { sys, alice, call, expiry, old: sys.feeds.ETH };
}

type Fixture = Awaited<ReturnType<typeof longCall>>;

/** The block time of `tx`. */
async function minedAt(tx: ContractTransactionResponse): Promise<bigint> {
  const receipt = await tx.wait();
  return BigInt((await ethers.provider.getBlock(receipt!.blockNumber))!.timestamp);
}

/** Sends the timelock's `configureAsset` of ETH to `feed` alone, with the fixture's bounds. */
async function swapSend(f: Fixture, feed: { getAddress(): Promise<string> }, gasLimit?: number) {
  const input = await primarySwapInput(f.sys.router, ETH, feed);
  return f.sys.router.configureAsset(ETH, input, gasLimit === undefined ? {} : { gasLimit });
}

/** Half a minute later, swaps ETH's primary to `feed`; returns the swap's time. */
async function swapTo(f: Fixture, feed: { getAddress(): Promise<string> }): Promise<bigint> {
  await time.increase(30); // blocks may share a second: a round in the swap's second counts as after it
  return minedAt(await swapSend(f, feed));
}

/** Half a minute later, posts `answer` on `feed`; returns the round's id and time. */
async function post(
  feed: Awaited<ReturnType<typeof deployMockFeed>>,
  answer: bigint,
): Promise<{ round: bigint; at: bigint }> {
  await time.increase(30);
  const at = await minedAt(await feed.updateAnswer(answer));
  return { round: await feed.latestRound(), at };
}

/** Expects `settleSeries(call, round)` to revert WrongRoundHint(round), for each round. */
async function refused(f: Fixture, rounds: bigint[]): Promise<void> {
  for (const round of rounds)
    await expect(f.sys.options.settleSeries(f.call, round))
      .to.be.revertedWithCustomError(f.sys.options, "WrongRoundHint")
      .withArgs(round);
}

/** Expects `settleSeries(call, round)` to settle at `price` (WAD) updated at `at`, and the pool's exits open. */
async function settles(f: Fixture, round: bigint, price: bigint, at: bigint): Promise<void> {
  await expect(f.sys.options.settleSeries(f.call, round))
    .to.emit(f.sys.options, "SeriesSettled")
    .withArgs(f.call, round, price, at);
  expect((await f.sys.options.series(f.call)).settlementPrice).to.equal(price);
  expect(await f.sys.pool.settlementPending()).to.equal(false);
}

/** The expiry passed a minute ago; ETH's feed posted nothing since (its last round is before expiry). */
async function expiredUnposted() {
  const f = await longCall();
  await time.increaseTo(f.expiry + 60n);
  return f;
}

/** `expiredUnposted`, then the old feed's first round after expiry at 3,300. */
async function expiredPosted() {
  const f = await expiredUnposted();
  return { ...f, first: await post(f.old, usd(3_300n)) };
}

describe("Reliability: a price-feed swap does not strand an expired series (round 162, §4 row 511)", function () {
  describe("the feed primary at expiry posted its first round after expiry before the swap", function () {
    it("settles at that round (3,300), refuses the new feed's rounds, a phase start and the old feed's rounds posted after the swap, and reopens the pool's exits", async function () {
      const f = await loadFixture(expiredPosted);
      const old = await f.old.getAddress();
      // Row 511's swap: the new aggregator's rounds (3,050, 3,060) are all after expiry.
      const fresh = await deployMockFeed(8, usd(3_050n));
      await fresh.updateAnswer(usd(3_060n));
      await time.increase(30);
      const tx = await swapSend(f, fresh);
      await expect(tx).to.emit(f.sys.router, "PrimaryRetired").withArgs(ETH, old, f.first.round, f.first.at);
      const late = await post(f.old, usd(3_400n)); // posted by the old feed after it was replaced
      expect(await f.sys.pool.settlementPending()).to.equal(true);

      // The new feed's rounds are 1 and 2; the old feed's are 1 (before expiry), `first`, then `late`.
      expect(f.first.round).to.equal(2n);
      await refused(f, [1n, late.round]);
      await expect(f.sys.options.settleSeriesAtPhaseStart(f.call, (2n << 64n) | 1n))
        .to.be.revertedWithCustomError(f.sys.options, "WrongRoundHint")
        .withArgs((2n << 64n) | 1n);
      expect(await f.sys.router.settlementFeed(ETH, f.expiry)).to.deep.equal([
        old,
        f.expiry,
        f.first.round,
        f.first.at,
      ]);
      await settles(f, f.first.round, wad("3300"), f.first.at);
    });

    it("retires nothing when configureAsset keeps the primary (a bounds change)", async function () {
      const f = await loadFixture(expiredPosted);
      await expect(swapSend(f, f.old)).to.not.emit(f.sys.router, "PrimaryRetired");
      expect((await f.sys.router.settlementFeed(ETH, f.expiry))[0]).to.equal(await f.old.getAddress());
    });

    it("is found by the keeper on the replaced feed: one step settles the series at 3,300", async function () {
      const f = await loadFixture(expiredPosted);
      const fresh = await deployMockFeed(8, usd(3_050n));
      await swapTo(f, fresh);
      await fresh.updateAnswer(usd(3_060n));
      const keeper = await startInProcessKeeper(f.sys, QUIET_KEEPER);
      const report = await keeper.step();
      expect(report.options?.seriesSettled).to.deep.equal([f.call]);
      expect((await f.sys.options.series(f.call)).settlementPrice).to.equal(wad("3300"));
    });
  });

  describe("the feed primary at expiry posted nothing after expiry before the swap (often why it was swapped)", function () {
    it("settles at the new feed's first round after the swap (3,100): its rounds from before the swap, its later rounds and the old feed's rounds after the swap are refused", async function () {
      const f = await loadFixture(expiredUnposted);
      const fresh = await deployMockFeed(8, usd(3_050n)); // round 1: after expiry, before the swap
      const swappedAt = await swapTo(f, fresh);
      const oldLate = await post(f.old, usd(3_400n));
      expect(await f.sys.router.settlementFeed(ETH, f.expiry)).to.deep.equal([
        await fresh.getAddress(),
        swappedAt,
        1n,
        (await fresh.getRoundData(1n)).updatedAt,
      ]);
      await refused(f, [1n, oldLate.round]); // nothing posted after the swap yet
      const keeper = await startInProcessKeeper(f.sys, QUIET_KEEPER);
      expect((await keeper.step()).options?.seriesSettled).to.deep.equal([]); // waits for the round
      const first = await post(fresh, usd(3_100n));
      const second = await post(fresh, usd(3_200n));
      await refused(f, [1n, second.round]);
      await settles(f, first.round, wad("3100"), first.at);
    });

    it("is found by the keeper on the new feed once it posts after the swap", async function () {
      const f = await loadFixture(expiredUnposted);
      const fresh = await deployMockFeed(8, usd(3_050n));
      await swapTo(f, fresh);
      await post(fresh, usd(3_100n));
      const keeper = await startInProcessKeeper(f.sys, QUIET_KEEPER);
      expect((await keeper.step()).options?.seriesSettled).to.deep.equal([f.call]);
      expect((await f.sys.options.series(f.call)).settlementPrice).to.equal(wad("3100"));
    });

    it("settles at the first round of a new feed that had none before the swap (its round 1, which no round precedes), and the keeper finds it", async function () {
      const f = await loadFixture(expiredUnposted);
      const fresh = await deployMockFeed(8, usd(3_050n));
      const swappedAt = await swapTo(f, fresh);
      // The feed's round 1 rewritten to after the swap: a feed configured before its first answer.
      await time.increase(30);
      const at = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(at);
      await fresh.updateRoundData(1n, usd(3_100n), at, at);
      expect((await f.sys.router.settlementFeed(ETH, f.expiry)).slice(0, 3)).to.deep.equal([
        await fresh.getAddress(),
        swappedAt,
        1n,
      ]);
      const keeper = await startInProcessKeeper(f.sys, QUIET_KEEPER);
      expect((await keeper.step()).options?.seriesSettled).to.deep.equal([f.call]);
      const series = await f.sys.options.series(f.call);
      expect([series.settlementPrice, await f.sys.pool.settlementPending()]).to.deep.equal([
        wad("3100"),
        false,
      ]);
    });

    it("after two swaps in a row, settles at the second successor's first round when the first posted nothing as primary, refusing the first's rounds after its own replacement", async function () {
      const f = await loadFixture(expiredUnposted);
      const b = await deployMockFeed(8, usd(3_050n));
      await swapTo(f, b);
      const c = await deployMockFeed(8, usd(3_070n));
      const secondSwap = await swapTo(f, c);
      const bLate = await post(b, usd(3_500n)); // b's round 2, after its replacement
      expect((await f.sys.router.settlementFeed(ETH, f.expiry)).slice(0, 2)).to.deep.equal([
        await c.getAddress(),
        secondSwap,
      ]);
      await refused(f, [bLate.round, 1n]); // c has posted nothing since the swap
      const first = await post(c, usd(3_120n));
      await refused(f, [1n]);
      await settles(f, first.round, wad("3120"), first.at);
    });

    it("after two swaps in a row, settles at the first successor's first round as primary when it posted one before it was replaced too", async function () {
      const f = await loadFixture(expiredUnposted);
      const b = await deployMockFeed(8, usd(3_050n));
      const firstSwap = await swapTo(f, b);
      const bFirst = await post(b, usd(3_110n));
      await post(b, usd(3_130n));
      const c = await deployMockFeed(8, usd(3_070n));
      await swapTo(f, c);
      await post(c, usd(3_120n));
      expect((await f.sys.router.settlementFeed(ETH, f.expiry)).slice(0, 2)).to.deep.equal([
        await b.getAddress(),
        firstSwap,
      ]);
      await refused(f, [1n, bFirst.round + 1n]); // b's round before its swap, and its next one
      await settles(f, bFirst.round, wad("3110"), bFirst.at);
    });

    it("after a swap and a swap back, settles at the old feed's first round after the swap back, not at the rounds it posted while replaced", async function () {
      const f = await loadFixture(expiredUnposted);
      const b = await deployMockFeed(8, usd(3_050n));
      await swapTo(f, b);
      const whileReplaced = await post(f.old, usd(3_500n));
      const back = await swapTo(f, f.old);
      expect((await f.sys.router.settlementFeed(ETH, f.expiry)).slice(0, 2)).to.deep.equal([
        await f.old.getAddress(),
        back,
      ]);
      const afterBack = await post(f.old, usd(3_600n));
      await refused(f, [whileReplaced.round]);
      await settles(f, afterBack.round, wad("3600"), afterBack.at);
    });
  });

  it("after a swap and a swap back, settles at the old feed's round posted before the first swap, not at its rounds since", async function () {
    const f = await loadFixture(expiredPosted);
    const b = await deployMockFeed(8, usd(3_050n));
    await swapTo(f, b);
    await swapTo(f, f.old);
    const later = await post(f.old, usd(3_600n));
    await refused(f, [later.round]);
    await settles(f, f.first.round, wad("3300"), f.first.at);
  });

  it("refuses an asset the router does not know with UnknownAsset, in settlementFeed and getSettlementPrice alike", async function () {
    const f = await loadFixture(expiredPosted);
    const unknown = assetId("NOPE");
    await expect(f.sys.router.settlementFeed(unknown, f.expiry))
      .to.be.revertedWithCustomError(f.sys.router, "UnknownAsset")
      .withArgs(unknown);
    await expect(f.sys.router.getSettlementPrice(unknown, f.expiry, f.first.round, false))
      .to.be.revertedWithCustomError(f.sys.router, "UnknownAsset")
      .withArgs(unknown);
  });

  describe("a replaced feed that reverts", function () {
    /** ETH's primary is a breakable wrapper of the fixture's feed before expiry; its first round after expiry is 3,300. */
    async function breakablePosted() {
      const f = await longCall();
      const breakable = await ethers.deployContract("BreakableFeedMock", [await f.old.getAddress()]);
      await swapTo(f, breakable);
      await time.increaseTo(f.expiry + 60n);
      return { ...f, breakable, first: await post(f.old, usd(3_300n)) };
    }

    it("refuses settlement with SourceUnavailable while the feed that posted the settlement round reverts, and settles at that round once it answers", async function () {
      const f = await loadFixture(breakablePosted);
      await swapTo(f, await deployMockFeed(8, usd(3_050n)));
      await f.breakable.setBroken(true);
      await expect(f.sys.options.settleSeries(f.call, f.first.round))
        .to.be.revertedWithCustomError(f.sys.router, "SourceUnavailable")
        .withArgs(await f.breakable.getAddress());
      expect(await f.sys.pool.settlementPending()).to.equal(true);
      await f.breakable.setBroken(false);
      await settles(f, f.first.round, wad("3300"), f.first.at);
    });

    it("counts a feed that reverts when it is replaced as having posted nothing: the new feed's first round after the swap settles (3,100)", async function () {
      const f = await loadFixture(breakablePosted);
      await f.breakable.setBroken(true);
      const fresh = await deployMockFeed(8, usd(3_050n));
      await time.increase(30);
      const tx = await swapSend(f, fresh);
      await expect(tx)
        .to.emit(f.sys.router, "PrimaryRetired")
        .withArgs(ETH, await f.breakable.getAddress(), 0n, 0n);
      await f.breakable.setBroken(false);
      const first = await post(fresh, usd(3_100n));
      expect((await f.sys.router.settlementFeed(ETH, f.expiry)).slice(0, 2)).to.deep.equal([
        await fresh.getAddress(),
        await minedAt(tx),
      ]);
      await settles(f, first.round, wad("3100"), first.at);
    });

    it("refuses with SourceUnavailable a swap sent with too little gas to read the retiring feed (a starved read would pass for a dead one)", async function () {
      const f = await loadFixture(expiredPosted);
      const fresh = await deployMockFeed(8, usd(3_050n));
      await expect(swapSend(f, fresh, 125_000))
        .to.be.revertedWithCustomError(f.sys.router, "SourceUnavailable")
        .withArgs(await f.old.getAddress());
      expect(await f.sys.router.primaryFeed(ETH)).to.equal(await f.old.getAddress());
    });
  });
});
