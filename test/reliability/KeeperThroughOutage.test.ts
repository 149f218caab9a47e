import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad, type System } from "../shared/system";
import { deployOptionsSystem } from "../shared/options";
import {
  SEQUENCER_GRACE,
  configureSequencer,
  setFeedPrice,
  setSequencerStatus,
  type Sequencer,
} from "../shared/oracles";
import { mineAt, trade } from "../shared/perps";
import { callDataOf, onRequests, startInProcessKeeper, type InProcessKeeper } from "../shared/keeper";
import { sdkClient } from "../shared/sdk";
import { hardhatWallet } from "../shared/e2e";
import { XMarginError, getHealth, getHealthMany, listAuctions, preview, quoteBid } from "../../sdk/src";
import type { StepReport } from "../../scripts/keeper/loop";

/**
 * The keeper and the SDK through an L2 sequencer outage (review round 122). While the uptime feed says
 * down, and for the router's grace hour after it says up, every price read reverts (`SequencerDown`,
 * `GracePeriodNotOver`): no health, start, bid, absorb, end, trade or funding accrual can go through.
 * Before the fix the keeper read that as every account failing on its own: the first pass bisected the
 * whole book (2n − 1 = 81 `healthMany` calls for 41 accounts), and again every 10th pass; each pass
 * warned naming every account; and at recovery the whole book, marked failing, was read in one
 * unbisected call that one account still failing on its own (a stale BTC feed) failed for everyone, so
 * nothing was started or bid on until the next 10th pass.
 */
const USDC = 10n ** 6n;
const GRACE = SEQUENCER_GRACE;
/** Two hours down, then the grace hour. */
const OUTAGE = 7_200n;

/**
 * Alice, Bob and Carol long 10 ETH each on 5,000 USDC, 36 accounts of 1,000 USDC, and Bob's BTC account
 * (long 0.01 BTC on 10,000 USDC): 41 accounts for the keeper with the insurance fund's; the sequencer up
 * for two days with the router's one-hour grace; ETH still at 3,000.
 */
async function bookOnL2() {
  const sys = await deployOptionsSystem();
  const seq = await configureSequencer(sys.router, 0, 2n * 86_400n);
  const longs: bigint[] = [];
  for (const signer of [sys.alice, sys.bob, sys.carol]) {
    const id = await openAccount(sys, signer, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
    await trade(sys.perps, signer, id, sys.markets.ETH, wad("10"));
    longs.push(id);
  }
  for (let i = 0; i < 36; i++) await openAccount(sys, sys.lp, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
  const btc = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.bob, btc, sys.markets.BTC, wad("0.01"));
  return { sys, seq, longs, btc };
}

interface CountedPass {
  report: StepReport;
  healthMany: number;
  calls: number;
  estimates: number;
  sent: number;
}

/** One keeper pass, counting its `healthMany` calls, eth_calls, gas estimates and raw transactions. */
async function countedPass(sys: System, keeper: InProcessKeeper): Promise<CountedPass> {
  const healthMany = sys.engine.interface.getFunction("healthMany").selector;
  const counted = { healthMany: 0, calls: 0, estimates: 0, sent: 0 };
  const report = await onRequests(
    (method, params) => {
      if (method === "eth_call") {
        counted.calls += 1;
        if (callDataOf(params).startsWith(healthMany)) counted.healthMany += 1;
      }
      if (method === "eth_estimateGas") counted.estimates += 1;
      if (method === "eth_sendRawTransaction") counted.sent += 1;
    },
    () => keeper.step(),
  );
  return { report, ...counted };
}

/** Refreshes every feed but BTC's (price and volatility), which stay stale. */
async function refreshAllButBtc(sys: System): Promise<void> {
  for (const feed of [sys.feeds.USDC, sys.feeds.ETH, sys.volFeeds.ETH])
    await (await feed.updateAnswer(await feed.latestAnswer())).wait();
}

/** The sequencer down from `down` for OUTAGE seconds; returns when it came back up. */
async function outage(seq: Sequencer, down: bigint): Promise<bigint> {
  await setSequencerStatus(seq, 1, down);
  return down + OUTAGE;
}

describe("The keeper and the SDK through an L2 sequencer outage", function () {
  describe("while the sequencer is down and in its grace period", function () {
    it("asks the router once a pass and reads no health: 0 healthMany calls for 41 accounts, not 81 on the first pass and every 10th, and no gas estimate or transaction", async function () {
      const { sys, seq } = await loadFixture(bookOnL2);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      const calm = await countedPass(sys, keeper);
      expect(calm.report.accounts).to.equal(41);
      expect(calm.healthMany).to.equal(1);

      const down = BigInt(await time.latest()) + 10n;
      const up = await outage(seq, down);
      await setFeedPrice(sys.feeds.ETH, "2600"); // the longs go under water while nobody can act
      const passes: CountedPass[] = [];
      for (let i = 0; i < 10; i++) passes.push(await countedPass(sys, keeper));
      // Funding an hour and more old: before the fix each pass simulated two refused accrueFunding.
      await mineAt(sys, down + 4_000n);
      passes.push(await countedPass(sys, keeper));
      await setSequencerStatus(seq, 0, up);
      passes.push(await countedPass(sys, keeper));
      await mineAt(sys, up + GRACE - 1n);
      passes.push(await countedPass(sys, keeper));

      // Before the fix: [81, 1, 1, 1, 1, 1, 1, 1, 81, 1, 1, 1, 1] healthMany calls (2·41 − 1 on the
      // first pass and on every 10th), 2 refused accrueFunding estimates a pass once funding was stale.
      expect(passes.map((p) => p.healthMany)).to.deep.equal(Array(13).fill(0));
      expect(passes.map((p) => p.estimates)).to.deep.equal(Array(13).fill(0));
      expect(passes.map((p) => p.sent)).to.deep.equal(Array(13).fill(0));
      // checkSequencer and the option series count (nothing listed): 3 eth_calls a pass.
      expect(passes.map((p) => p.calls)).to.deep.equal(Array(13).fill(3));
      expect(passes.map((p) => p.report.pricesRefused?.error)).to.deep.equal([
        ...Array(11).fill("SequencerDown"),
        "GracePeriodNotOver",
        "GracePeriodNotOver",
      ]);
      expect(passes.map((p) => p.report.unchecked.length)).to.deep.equal(Array(13).fill(0));
      expect(passes.map((p) => p.report.accounts)).to.deep.equal(Array(13).fill(0));
      expect(keeper.session.failing.size).to.equal(0);
    });

    it("says so once at warn level when the refusal starts and once when it changes, not a warning naming 41 accounts every pass", async function () {
      const { sys, seq } = await loadFixture(bookOnL2);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      await keeper.step();
      const from = keeper.lines.length;
      const up = await outage(seq, BigInt(await time.latest()) + 10n);
      for (let i = 0; i < 5; i++) await keeper.step();
      await setSequencerStatus(seq, 0, up);
      for (let i = 0; i < 5; i++) await keeper.step();
      await mineAt(sys, up + GRACE + 1n);
      await keeper.step();

      const loud = keeper.lines
        .slice(from)
        .filter((l) => l.level === "warn" || l.level === "error")
        .map((l) => [l.msg, l.fields.error]);
      // Before the fix: 10 × "health reverted; accounts skipped this pass", each naming all 41 accounts.
      expect(loud).to.deep.equal([
        ["the oracle router refuses every price; liquidations wait", "SequencerDown"],
        ["the oracle router refuses every price; liquidations wait", "GracePeriodNotOver"],
      ]);
      expect(keeper.lines.slice(from).map((l) => l.msg)).to.include(
        "the oracle router prices again; liquidations resume",
      );
    });
  });

  describe("at the first block after the grace period", function () {
    it("auctions and bids on the three longs at the first pass though Bob's BTC account still fails on its own (before: all 41 accounts unread until the next 10th pass)", async function () {
      const { sys, seq, longs, btc } = await loadFixture(bookOnL2);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      await keeper.step();
      const up = await outage(seq, BigInt(await time.latest()) + 10n);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await keeper.step();
      await setSequencerStatus(seq, 0, up);
      await keeper.step();
      // Every feed comes back but BTC's; the first block after the grace period.
      await time.increaseTo(up + GRACE - 60n);
      await refreshAllButBtc(sys);
      await time.setNextBlockTimestamp(up + GRACE + 1n);
      await ethers.provider.send("evm_mine", []);

      const first = await countedPass(sys, keeper);
      // Before the fix: unchecked named all 41 accounts (StalePrice, BTC's, for everyone), nothing liquidatable.
      expect(first.report.unchecked.map((u) => [u.key, u.reason.error])).to.deep.equal([[btc, "StalePrice"]]);
      expect(first.report.liquidatable).to.have.members(longs);
      const keeperAddress = hardhatWallet(4).address;
      const started = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted());
      expect(
        started.filter((e) => e.args.starter === keeperAddress).map((e) => e.args.accountId),
      ).to.have.members(longs);
      const bids = await sys.auction.queryFilter(sys.auction.filters.AuctionBid());
      expect(
        bids
          .filter((e) => e.args.bidderAccountId === keeper.session.keeperAccountId)
          .map((e) => e.args.accountId),
      ).to.have.members(longs);
      expect(first.report.pricesRefused).to.equal(null);
    });

    it("does so too when the sequencer goes down in the middle of a pass, after the keeper asked the router (before: the 41 accounts marked failing, and read as one after the outage)", async function () {
      const { sys, seq, longs, btc } = await loadFixture(bookOnL2);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      await keeper.step();
      const healthMany = sys.engine.interface.getFunction("healthMany").selector;
      let down: bigint | null = null;
      const racy = await onRequests(
        async (method, params) => {
          if (down !== null || method !== "eth_call" || !callDataOf(params).startsWith(healthMany)) return;
          down = BigInt(await time.latest()) + 1n;
          await setSequencerStatus(seq, 1, down);
        },
        () => keeper.step(),
      );
      expect(racy.pricesRefused).to.equal(null);
      expect(racy.unchecked.map((u) => u.reason.error)).to.deep.equal(Array(41).fill("SequencerDown"));

      const up = down! + OUTAGE;
      await setFeedPrice(sys.feeds.ETH, "2600");
      await setSequencerStatus(seq, 0, up);
      await time.increaseTo(up + GRACE - 60n);
      await refreshAllButBtc(sys);
      await time.setNextBlockTimestamp(up + GRACE + 1n);
      await ethers.provider.send("evm_mine", []);
      const first = await keeper.step();
      expect(first.unchecked.map((u) => [u.key, u.reason.error])).to.deep.equal([[btc, "StalePrice"]]);
      expect(first.liquidatable).to.have.members(longs);
    });

    it("absorbs an auction that ran across the outage at the chain's absorbableAt: no absorb simulated before it, the absorb mined at it", async function () {
      const { sys, seq, longs } = await loadFixture(bookOnL2);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.startAuction(longs[0]);
      const start = (await sys.auction.auctions(longs[0])).startTime;
      // It bids on nothing: only the backstop's absorb takes the slice.
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      const up = await outage(seq, start + 60n);
      await setSequencerStatus(seq, 0, up);
      await mineAt(sys, up + GRACE + 1n);
      const absorbableAt = await sys.auction.absorbableAt(longs[0]);
      // The minute before the outage counted; the rest of the 30-minute duration runs after the grace hour.
      expect(absorbableAt).to.equal(up + GRACE + 1_800n - 60n);

      const absorb = sys.auction.interface.getFunction("absorb").selector;
      let absorbChecks = 0;
      const passes = async (at: bigint[]) => {
        await onRequests(
          (method, params) => {
            if (
              (method === "eth_call" || method === "eth_estimateGas") &&
              callDataOf(params).startsWith(absorb)
            )
              absorbChecks += 1;
          },
          async () => {
            for (const t of at) {
              if (t > BigInt(await time.latest())) await mineAt(sys, t);
              await keeper.step();
            }
          },
        );
      };
      await passes([up + GRACE + 1n, up + GRACE + 900n, absorbableAt - 1n]);
      expect(absorbChecks).to.equal(0);
      expect((await sys.auction.auctions(longs[0])).active).to.equal(true);

      await passes([absorbableAt]);
      const absorbed = await sys.auction.queryFilter(
        sys.auction.filters.AuctionBid(longs[0], await sys.auction.backstopAccountId()),
      );
      expect(absorbed).to.have.length(1);
      const block = await ethers.provider.getBlock(absorbed[0].blockNumber);
      expect(BigInt(block!.timestamp)).to.be.greaterThanOrEqual(absorbableAt);
      expect(BigInt(block!.timestamp)).to.be.lessThan(absorbableAt + 10n);
    });
  });

  describe("the SDK a frontend reads during the outage", function () {
    it("lists the auctions with the clock paused and throws a typed SequencerDown for health, quotes and previews", async function () {
      const { sys, seq, longs } = await loadFixture(bookOnL2);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.startAuction(longs[0]);
      const start = (await sys.auction.auctions(longs[0])).startTime;
      await outage(seq, start + 60n);
      await mineAt(sys, start + 900n);
      const client = await sdkClient(sys, sys.carol);

      const [listed] = await listAuctions(client);
      expect(listed.accountId).to.equal(longs[0]);
      expect(listed.discount).to.equal(wad("0.02") + (wad("0.08") * 60n) / 1_800n);
      const sequencerDown = async (read: Promise<unknown>) => {
        const error = await read.then(
          () => expect.fail("did not throw"),
          (e: unknown) => e,
        );
        expect(error).to.be.instanceOf(XMarginError);
        expect((error as XMarginError).name).to.equal("SequencerDown");
        expect((error as XMarginError).message).to.equal("the L2 sequencer is down");
      };
      await sequencerDown(getHealth(client, { accountId: longs[1] }));
      await sequencerDown(getHealthMany(client, { accountIds: longs }));
      await sequencerDown(quoteBid(client, { accountId: longs[0], fraction: wad("1") }));
      await sequencerDown(
        preview(client, longs[1], { type: "trade", marketId: sys.markets.ETH, sizeDelta: -wad("1") }),
      );
      // A deposit goes through while down: previewed, its healths placeholders and the reason given.
      const deposit = await preview(client, longs[1], { type: "deposit", token: "USDC", amount: USDC });
      expect(deposit.revert).to.equal(undefined);
      expect(deposit.healthError?.name).to.equal("SequencerDown");
    });
  });

  describe("after a stale feed (no outage) comes back while another stays stale", function () {
    it("reads the accounts it had marked failing again at the first pass, though Bob's BTC account still fails (before: all unread until the next 10th pass)", async function () {
      const { sys, longs, btc } = await loadFixture(bookOnL2);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      await keeper.step();
      // Every feed passes its one-hour heartbeat: the longs and Bob's BTC account fail on their own.
      await time.increase(3_700);
      const stale = await keeper.step();
      expect(stale.unchecked.map((u) => u.key)).to.include.members([...longs, btc]);
      // Every feed but BTC's comes back, ETH at 2,600: the longs under water.
      await refreshAllButBtc(sys);
      await setFeedPrice(sys.feeds.ETH, "2600");
      const back = await countedPass(sys, keeper);
      // Before the fix the marked accounts were read as one batch that BTC's stale feed failed for all.
      expect(back.report.unchecked.map((u) => [u.key, u.reason.error])).to.deep.equal([[btc, "StalePrice"]]);
      expect(back.report.liquidatable).to.have.members(longs);
    });
  });
});
