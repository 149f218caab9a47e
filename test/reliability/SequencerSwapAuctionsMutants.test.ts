import { expect } from "chai";
import { ethers } from "hardhat";
import { time, loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { WAD, atLatestTimestamp } from "../shared/system";
import { postSequencerRound, setFeedPrice, setSequencerStatus } from "../shared/oracles";
import { advanceTo, mineAt } from "../shared/perps";
import {
  DURATION,
  GRACE,
  OUTAGE,
  auctionIntoOutage,
  auctionThroughOutage,
  carolBidsAt,
  pausedTo,
  ramp,
} from "../shared/outageAuction";

/**
 * Review round 172: the mutation test of round 166's carried sequencer window (`OracleRouter._carryOutage`,
 * `sequencerClockStart`; docs/reliability.md §4 rows 610–612). These specs pin what the round's own specs
 * left open: a window carried across several changes (merged when they fall in one outage, a restart
 * when they are two outages), an empty window, which carries nothing, and the feed's own rounds at their
 * edges. One survivor was a bug (§4 row 670): a feed swapped in during an outage carried, when swapped
 * out, a restart for its outage before the swap, though the router read another feed then.
 *
 * The fixtures (test/shared/outageAuction.ts): Alice's auction starts at `start`, the sequencer goes down
 * at `start + 60` for two hours and comes back at `up`; the grace hour ends at `up + 3,600`, and the
 * spare uptime feed has shown the sequencer up for two days.
 */
describe("Sequencer feed changes under running auctions: windows carried across several changes", function () {
  it("keeps one pause across two changes during one outage (a grace change, then a swap): the first bid after the swap is 61 s into the ramp", async function () {
    const { sys, seq, spare, alice, carol, start } = await loadFixture(auctionIntoOutage);
    const graceChangeAt = start + 60n + 2_000n;
    await advanceTo(sys, graceChangeAt);
    await sys.router.configureSequencerFeed(seq.feed, 2n * GRACE);
    const swapAt = start + 60n + 4_000n;
    await advanceTo(sys, swapAt);
    // The second window runs on from the first (the same outage): one window, from the sequencer going down.
    await expect(sys.router.configureSequencerFeed(spare.feed, GRACE))
      .to.emit(sys.router, "SequencerOutageCarried")
      .withArgs(start + 60n, swapAt, (restartBefore: bigint) => restartBefore < start);
    await sys.router.checkSequencer();
    expect(await sys.auction.absorbableAt(alice)).to.equal(pausedTo(start, swapAt) + DURATION);
    const first = await carolBidsAt(sys, alice, carol, swapAt + 1n);
    expect(first.discount).to.equal(ramp(61n));
  });

  describe("an auction across two outages, each carried by a change", function () {
    /**
     * `auctionThroughOutage`, the spare swapped in at `open` (it carries the first outage), then down at
     * `open + 100` for 600 s: the second outage, on the spare.
     */
    async function secondOutageOnSpare() {
      const through = await auctionThroughOutage();
      const { sys, seq, spare, start, up, open } = through;
      await time.setNextBlockTimestamp(open);
      await expect(sys.router.configureSequencerFeed(spare.feed, GRACE))
        .to.emit(sys.router, "SequencerOutageCarried")
        .withArgs(start + 60n, up + GRACE, (restartBefore: bigint) => restartBefore < start);
      const down2 = open + 100n;
      await setSequencerStatus(spare, 1, down2);
      const up2 = down2 + 600n;
      await setSequencerStatus(spare, 0, up2);
      return { ...through, seq, down2, up2 };
    }

    it("restarts the clock at the end of the second window after a swap back: the router keeps one window, and the auction crossed both", async function () {
      const { sys, seq, alice, start, up, down2, up2 } = await loadFixture(secondOutageOnSpare);
      const swapBackAt = up2 + GRACE + 10n;
      await advanceTo(sys, swapBackAt - 1n);
      await ethers.provider.send("evm_mine", []);
      // Before: both windows paused exactly (the carried one and the spare's own, which shows it up before).
      expect(await sys.auction.absorbableAt(alice)).to.equal(
        pausedTo(start, up + GRACE) + (up2 + GRACE - down2) + DURATION,
      );
      await time.setNextBlockTimestamp(swapBackAt);
      await expect(sys.router.configureSequencerFeed(seq.feed, GRACE))
        .to.emit(sys.router, "SequencerOutageCarried")
        .withArgs(down2, up2 + GRACE, up + GRACE);
      expect(await sys.auction.absorbableAt(alice)).to.equal(up2 + GRACE + DURATION);
    });

    it("still restarts it when the second window is carried by two changes during the second outage", async function () {
      const { sys, seq, spare, alice, up, down2, up2 } = await loadFixture(secondOutageOnSpare);
      const graceChangeAt = up2 + 1_000n;
      await advanceTo(sys, graceChangeAt);
      await sys.router.configureSequencerFeed(spare.feed, 2n * GRACE);
      const swapBackAt = up2 + 2_000n;
      await advanceTo(sys, swapBackAt);
      // Merged with the window the grace change carried: it keeps that one's restart, not the spare's own.
      await expect(sys.router.configureSequencerFeed(seq.feed, GRACE))
        .to.emit(sys.router, "SequencerOutageCarried")
        .withArgs(down2, swapBackAt, up + GRACE);
      expect(await sys.auction.absorbableAt(alice)).to.equal(swapBackAt + DURATION);
    });
  });

  it("pauses a later auction for the grace period of an outage whose down and up rounds carry the same date, rather than restarting it", async function () {
    const { sys, seq, alice, carol, open } = await loadFixture(auctionThroughOutage);
    await carolBidsAt(sys, alice, carol, open);
    await setFeedPrice(sys.feeds.ETH, "2200");
    await sys.auction.connect(sys.keeper).startAuction(alice);
    const start = (await sys.auction.auctions(alice)).startTime;
    // Down and back within one second of the feed's clock: the rounds share a date, in two blocks.
    const flap = BigInt(await time.latest()) + 60n;
    await postSequencerRound(seq.feed, (await seq.feed.latestRound()) + 1n, 1, flap);
    await postSequencerRound(seq.feed, (await seq.feed.latestRound()) + 1n, 0, flap, flap + 1n);
    expect(await sys.auction.absorbableAt(alice)).to.equal(start + GRACE + DURATION);
  });

  it("pauses, and does not restart, an auction begun in the second a swap ended the carried window, when a later window is carried", async function () {
    const { sys, seq, spare, alice, carol, start } = await loadFixture(auctionIntoOutage);
    const up = start + 60n + OUTAGE;
    await setSequencerStatus(seq, 0, up);
    // In the grace hour, a swap to the spare opens prices: the window carried ends here.
    const swapAt = up + 1_000n;
    await advanceTo(sys, swapAt);
    await sys.router.configureSequencerFeed(spare.feed, GRACE);
    // In the same second: Carol's bid restores Alice, the price falls, and a new auction starts.
    await atLatestTimestamp();
    await sys.auction.connect(sys.carol).bid(alice, carol, WAD, 2n ** 255n);
    await atLatestTimestamp();
    await setFeedPrice(sys.feeds.ETH, "2200");
    await atLatestTimestamp();
    await sys.auction.connect(sys.keeper).startAuction(alice);
    const restarted = (await sys.auction.auctions(alice)).startTime;
    expect(restarted, "the auction begins where the carried window ends").to.equal(swapAt);
    // A second outage, on the spare, carried by a swap back after its grace hour.
    const down2 = swapAt + 100n;
    await setSequencerStatus(spare, 1, down2);
    const up2 = down2 + 600n;
    await setSequencerStatus(spare, 0, up2);
    await advanceTo(sys, up2 + GRACE + 10n);
    await expect(sys.router.configureSequencerFeed(seq.feed, GRACE))
      .to.emit(sys.router, "SequencerOutageCarried")
      .withArgs(down2, up2 + GRACE, swapAt);
    // It began after the first window, so only the second pauses it.
    expect(await sys.auction.absorbableAt(alice)).to.equal(restarted + (up2 + GRACE - down2) + DURATION);
  });

  it("restarts from a grace cut between two outages the clock of an auction that crossed both: it keeps the seconds before the cut, not those after it", async function () {
    const { sys, seq, alice, start, up, open } = await loadFixture(auctionThroughOutage);
    const cutAt = open + 100n;
    await advanceTo(sys, cutAt);
    await expect(sys.router.configureSequencerFeed(seq.feed, 1_800n))
      .to.emit(sys.router, "SequencerOutageCarried")
      .withArgs(start + 60n, up + GRACE, (restartBefore: bigint) => restartBefore < start);
    const down2 = cutAt + 1_000n;
    await setSequencerStatus(seq, 1, down2);
    const up2 = down2 + 600n;
    await setSequencerStatus(seq, 0, up2);
    // The feed shows the sequencer up only since the first outage, which the auction crossed: the time the
    // feed speaks for (from the cut) is paused to the second grace end. Counted: the 60 s before the first
    // outage and the 101 s from its grace end to the cut; not the 1,000 s from the cut to the second outage.
    expect(await sys.auction.absorbableAt(alice)).to.equal(
      pausedTo(start, up + GRACE) + (up2 + 1_800n - cutAt) + DURATION,
    );
    await mineAt(sys, up2 + 1_800n + 1n);
    expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(162n));
  });

  it("restarts an auction that crossed the outage before at the date of a down round dated after its block, not at the block", async function () {
    const { sys, seq, alice } = await loadFixture(auctionThroughOutage);
    // The status message's clock 90 s ahead of the L2's: the sequencer is down from `downAt` on.
    const downAt = BigInt(await time.latest()) + 100n;
    await postSequencerRound(seq.feed, (await seq.feed.latestRound()) + 1n, 1, downAt, downAt - 90n);
    expect(await sys.auction.absorbableAt(alice)).to.equal(downAt + DURATION);
  });

  it("moves no clock when a feed swapped in during an outage is swapped out after its grace: its outage before the swap, under the other feed, restarts nothing", async function () {
    const { sys, seq, spare, alice, carol, up, open } = await loadFixture(auctionThroughOutage);
    await carolBidsAt(sys, alice, carol, open);
    await setFeedPrice(sys.feeds.ETH, "2200");
    await sys.auction.connect(sys.keeper).startAuction(alice);
    const start = (await sys.auction.auctions(alice)).startTime;
    // The spare's own outage while the router reads `seq` (prices open), then a second one.
    const down1 = start + 100n;
    await setSequencerStatus(spare, 1, down1);
    await setSequencerStatus(spare, 0, down1 + 300n);
    const down2 = down1 + 300n + GRACE + 200n;
    await setSequencerStatus(spare, 1, down2);
    const swapAt = down2 + 100n;
    await advanceTo(sys, swapAt);
    await sys.router.configureSequencerFeed(spare.feed, GRACE);
    const up2 = down2 + 600n;
    await setSequencerStatus(spare, 0, up2);
    const swapBackAt = up2 + GRACE + 10n;
    await advanceTo(sys, swapBackAt - 1n);
    await ethers.provider.send("evm_mine", []);
    // Paused from the swap to the spare's grace end: the 4,300 s before the swap ran.
    const absorbable = start + (up2 + GRACE - swapAt) + DURATION;
    expect(await sys.auction.absorbableAt(alice)).to.equal(absorbable);
    await time.setNextBlockTimestamp(swapBackAt);
    await expect(sys.router.configureSequencerFeed(seq.feed, GRACE))
      .to.emit(sys.router, "SequencerOutageCarried")
      .withArgs(swapAt, up2 + GRACE, up + GRACE);
    expect(await sys.auction.absorbableAt(alice), "the swap back re-dates nothing").to.equal(absorbable);
  });

  it("carries nothing from a feed whose outage begins in the block of the change (an empty window), and keeps the window carried before", async function () {
    const { sys, seq, spare, alice, start, up, open } = await loadFixture(auctionThroughOutage);
    await time.setNextBlockTimestamp(open);
    await sys.router.configureSequencerFeed(spare.feed, GRACE);
    // A down round dated a second after the block that records it (the status message's clock ahead of
    // the L2's), and the change in the block at that second.
    const changeAt = BigInt(await time.latest()) + 20n;
    await postSequencerRound(spare.feed, (await spare.feed.latestRound()) + 1n, 1, changeAt, changeAt - 1n);
    await time.setNextBlockTimestamp(changeAt);
    await expect(sys.router.configureSequencerFeed(seq.feed, GRACE)).not.to.emit(
      sys.router,
      "SequencerOutageCarried",
    );
    expect(await sys.auction.absorbableAt(alice)).to.equal(pausedTo(start, up + GRACE) + DURATION);
  });
});
