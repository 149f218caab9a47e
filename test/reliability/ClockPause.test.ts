import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, atLatestTimestamp, openAccount, wad, type System } from "../shared/system";
import { deployOptionsSystemWithoutFunding } from "../shared/options";
import {
  configureSequencer,
  deployMockFeed,
  postSequencerRound,
  setFeedPrice,
  setSequencerStatus,
} from "../shared/oracles";
import { mineAt, trade } from "../shared/perps";
import { sdkClient } from "../shared/sdk";
import { DURATION, GRACE, OUTAGE, ramp } from "../shared/outageAuction";
import { listAuctions } from "../../sdk/src";

/**
 * Review round 121 of session 39's change (a8c5de5, row 296): an auction's clocks pause through the
 * sequencer's last outage and its grace period, from the uptime feed's previous round (the sequencer
 * going down) to the end of the grace period after the latest (it coming back), and restart at the end
 * of the grace period where the feed cannot show that window. Chainlink's uptime feeds (Arbitrum's
 * `ArbitrumSequencerUptimeFeed`, `BaseSequencerUptimeFeed` behind Optimism, Base, Scroll, zkSync and
 * Linea) open a round only when the status changes, date it with the timestamp the status message
 * carries (L1's block time; Linea's updater supplies its own), and are read through an AggregatorProxy
 * whose round ids are `(phaseId << 64) | aggregatorRoundId`.
 */
const USDC = 10n ** 6n;

/** Alice (5,000 USDC) long 10 ETH, at ETH 2,600 below maintenance, her auction started at `start`. */
async function auctionOn(sys: System) {
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
  await setFeedPrice(sys.feeds.ETH, "2600");
  await atLatestTimestamp();
  await sys.auction.connect(sys.keeper).startAuction(alice);
  const start = (await sys.auction.auctions(alice)).startTime;
  return { alice, start };
}

/** The auction with the shared helper's uptime feed (a plain aggregator), up since two days ago. */
async function auctionWithFeed() {
  const sys = await deployOptionsSystemWithoutFunding();
  const seq = await configureSequencer(sys.router, 0, 2n * 86_400n);
  return { sys, seq, ...(await auctionOn(sys)) };
}

/**
 * The auction with the uptime feed read through an AggregatorProxy, as deployed: phase 1's aggregator
 * (up two days ago) was replaced before the auction by phase 2's, whose first round says up since a
 * day ago. Round ids read back are phase-encoded.
 */
async function auctionThroughProxy() {
  const sys = await deployOptionsSystemWithoutFunding();
  const now = BigInt(await time.latest());
  const phase1 = await deployMockFeed(0, 0n);
  await phase1.updateRoundData(1, 1, now - 3n * 86_400n, now - 3n * 86_400n);
  await phase1.updateRoundData(2, 0, now - 2n * 86_400n, now - 2n * 86_400n);
  const proxy = await ethers.deployContract("AggregatorProxyMock", [phase1]);
  const phase2 = await deployMockFeed(0, 0n);
  await phase2.updateRoundData(1, 0, now - 86_400n, now - 86_400n);
  await proxy.confirmAggregator(phase2);
  await sys.router.configureSequencerFeed(proxy, GRACE);
  return { sys, proxy, phase2, ...(await auctionOn(sys)) };
}

describe("LiquidationAuction clock pause (review round 121)", function () {
  describe("a down round dated after the block that records it (row 298)", function () {
    it("keeps the views answering: the clock runs to the round's date, then holds", async function () {
      const { sys, seq, alice, start } = await loadFixture(auctionWithFeed);
      // The down status reaches the L2 at start + 600 dated 30 s ahead of that block (the router already
      // refuses an up round dated in the future as incomplete; a down one only says SequencerDown).
      await postSequencerRound(seq.feed, (await seq.feed.latestRound()) + 1n, 1, start + 630n, start + 600n);
      await mineAt(sys, start + 610n);
      // Before the fix: currentDiscount, absorbableAt and the SDK's listAuctions reverted with
      // Panic(0x11), `blockedUntil - blockedFrom` = now − (start + 630).
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(610n));
      expect(await sys.auction.absorbableAt(alice)).to.equal(start + DURATION);
      const [listed] = await listAuctions(await sdkClient(sys, sys.keeper));
      expect(listed.discount).to.equal(ramp(610n));

      await mineAt(sys, start + 700n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(630n));
      expect(await sys.auction.absorbableAt(alice)).to.equal(start + 700n + DURATION - 630n);
      // The owner's restart is refused with the rule's own error, not a panic.
      await expect(sys.auction.connect(sys.alice).startAuction(alice))
        .to.be.revertedWithCustomError(sys.auction, "AuctionAlreadyActive")
        .withArgs(alice);
    });

    it("resumes after the grace period where it held, one second on (631 s of the ramp)", async function () {
      const { sys, seq, alice, start } = await loadFixture(auctionWithFeed);
      await postSequencerRound(seq.feed, (await seq.feed.latestRound()) + 1n, 1, start + 630n, start + 600n);
      const up = start + 630n + OUTAGE;
      await setSequencerStatus(seq, 0, up);
      await mineAt(sys, up + GRACE + 1n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(631n));
      expect(await sys.auction.absorbableAt(alice)).to.equal(start + DURATION + OUTAGE + GRACE);
    });
  });

  describe("what the views say while the sequencer is down (held)", function () {
    it("shows an auction that also saw an earlier outage at d0 while down, the restart it gets after", async function () {
      const { sys, seq, alice, start } = await loadFixture(auctionWithFeed);
      await setSequencerStatus(seq, 1, start + 60n);
      await setSequencerStatus(seq, 0, start + 120n);
      await setSequencerStatus(seq, 1, start + 4_000n);
      // Paused from the last down round alone, it would show 3,940 s: the maximum (10%), absorbable.
      await mineAt(sys, start + 4_100n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(0n));
      expect(await sys.auction.absorbableAt(alice)).to.equal(start + 4_100n + DURATION);
      const up = start + 4_000n + OUTAGE;
      await setSequencerStatus(seq, 0, up);
      await mineAt(sys, up + GRACE + 1n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(1n));
    });

    it("restarts an auction whose earlier outage reached the L2 after it began, dated before it, its grace overlapping it", async function () {
      const { sys, seq, alice, start } = await loadFixture(auctionWithFeed);
      // Both rounds of a short outage land 5 s after the start, dated before it: blocked until
      // start + 3,590; down again at +4,000 for two hours. The auction could be bid on for 415 s.
      const round = await seq.feed.latestRound();
      await postSequencerRound(seq.feed, round + 1n, 1, start - 100n, start + 5n);
      await postSequencerRound(seq.feed, round + 2n, 0, start - 10n, start + 6n);
      await setSequencerStatus(seq, 1, start + 4_000n);
      const up = start + 4_000n + OUTAGE;
      await setSequencerStatus(seq, 0, up);
      await mineAt(sys, up + GRACE + 1n);
      // Paused from the last down round alone (an earlier up round counted only if dated after the
      // start), it is 4,001 s in: the 10% maximum, 3,585 s of it while nobody could bid.
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(1n));
    });

    it("never moves the absorb time earlier from block to block across an outage", async function () {
      const { sys, seq, alice, start } = await loadFixture(auctionWithFeed);
      const down = start + 600n;
      const up = down + OUTAGE;
      const seen: bigint[] = [];
      const look = async (at: bigint) => {
        await mineAt(sys, at);
        seen.push(await sys.auction.absorbableAt(alice));
      };
      await look(down - 1n);
      await setSequencerStatus(seq, 1, down);
      seen.push(await sys.auction.absorbableAt(alice));
      for (const at of [down + 1n, up - 1n]) await look(at);
      await setSequencerStatus(seq, 0, up);
      seen.push(await sys.auction.absorbableAt(alice));
      for (const at of [up + GRACE, up + GRACE + 1n, up + GRACE + DURATION]) await look(at);
      for (let i = 1; i < seen.length; i++) expect(seen[i]).to.be.gte(seen[i - 1]);
      expect(seen.at(-1)).to.equal(start + DURATION + OUTAGE + GRACE);
    });
  });

  describe("round ids through an AggregatorProxy (phase-encoded, held)", function () {
    it("pauses an outage inside the aggregator's phase as with a plain feed (61 s of the ramp)", async function () {
      const { sys, proxy, phase2, alice, start } = await loadFixture(auctionThroughProxy);
      await postSequencerRound(phase2, 2n, 1, start + 60n, start + 60n);
      const up = start + 60n + OUTAGE;
      await postSequencerRound(phase2, 3n, 0, up, up);
      const [round] = await proxy.latestRoundData();
      expect(round).to.equal((2n << 64n) | 3n);
      await mineAt(sys, up + GRACE + 1n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(61n));
    });

    it("restarts where the down round is its phase's first: the round before it is round 0, zeros", async function () {
      const { sys, proxy, alice, start } = await loadFixture(auctionThroughProxy);
      // A third aggregator, confirmed while the sequencer is down: its first round says so.
      const phase3 = await deployMockFeed(0, 0n);
      await postSequencerRound(phase3, 1n, 1, start + 60n, start + 60n);
      await proxy.confirmAggregator(phase3);
      const up = start + 60n + OUTAGE;
      await postSequencerRound(phase3, 2n, 0, up, up);
      const [, answer, startedAt] = await proxy.getRoundData(3n << 64n);
      expect([answer, startedAt]).to.deep.equal([0n, 0n]);
      await mineAt(sys, up + GRACE + 1n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(1n));
    });
  });

  describe("a down status that reaches the L2 after its date (pinned)", function () {
    it("takes back the seconds between the round's date and its block: the view discount drops", async function () {
      const { sys, seq, alice, start } = await loadFixture(auctionWithFeed);
      // Dated start + 600 on L1, recorded at start + 900 (Arbitrum's delayed inbox, a late relay): the
      // 300 s between were open to bids, then come off the clock; nobody can bid on the lower figure
      // until the grace period ends, and no bid made in them is repriced.
      await mineAt(sys, start + 899n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(899n));
      await postSequencerRound(seq.feed, (await seq.feed.latestRound()) + 1n, 1, start + 600n, start + 900n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(600n));
      const up = start + 600n + OUTAGE;
      await setSequencerStatus(seq, 0, up);
      await mineAt(sys, up + GRACE + 1n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(601n));
    });
  });
});
