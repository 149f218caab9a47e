import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { WAD } from "../shared/system";
import { configureSequencer, setFeedPrice, setSequencerStatus } from "../shared/oracles";
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
 * Review round 166 (docs/reliability.md §4 row 580): `configureSequencerFeed` keeps the blocked window the
 * configuration it replaces showed up to the change (`OracleRouter._carryOutage`), and an auction's clock
 * counts that window for the time before the change and the configured feed's for the time after it
 * (`OracleRouter.sequencerClockStart`). A swap, a removal or a grace change moves no clock by time that
 * has passed; it pauses clocks only for the prices it closes again from its block on.
 *
 * The fixtures (test/shared/outageAuction.ts): Alice's auction starts at `start`, the sequencer goes down
 * at `start + 60` for two hours and comes back at `up`; the grace hour ends at `up + 3,600`.
 */
describe("Sequencer feed changes under running auctions", function () {
  describe("a change while the sequencer is down", function () {
    it("pauses the clock up to a swap to an up feed, and no longer: the first bid a second later is 61 s into the ramp", async function () {
      const { sys, spare, alice, carol, start } = await loadFixture(auctionIntoOutage);
      const swapAt = start + 60n + OUTAGE / 2n;
      await advanceTo(sys, swapAt);
      await expect(sys.router.configureSequencerFeed(spare.feed, GRACE))
        .to.emit(sys.router, "SequencerOutageCarried")
        .withArgs(start + 60n, swapAt, (restartBefore: bigint) => restartBefore < start);
      await sys.router.checkSequencer();
      expect(await sys.auction.absorbableAt(alice)).to.equal(pausedTo(start, swapAt) + DURATION);
      const first = await carolBidsAt(sys, alice, carol, swapAt + 1n);
      expect(first.discount).to.equal(ramp(61n));
    });

    it("keeps the pause up to a removal of the feed (an L1 router)", async function () {
      const { sys, alice, start } = await loadFixture(auctionIntoOutage);
      const removedAt = start + 60n + OUTAGE / 2n;
      await mineAt(sys, removedAt - 1n);
      await time.setNextBlockTimestamp(removedAt);
      await sys.router.configureSequencerFeed(ethers.ZeroAddress, 0);
      expect(await sys.auction.absorbableAt(alice)).to.equal(pausedTo(start, removedAt) + DURATION);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(60n));
    });

    it("keeps pausing across a swap to a feed that shows the sequencer down too, to the end of its grace period", async function () {
      const { sys, alice, start } = await loadFixture(auctionIntoOutage);
      const swapAt = start + 60n + OUTAGE / 2n;
      await advanceTo(sys, swapAt);
      // The new feed: down since 600 s ago (its own record of the same outage).
      const other = await configureSequencer(sys.router, 1, 600n);
      const swappedAt = BigInt(await time.latest());
      const up = swappedAt + 1_000n;
      await setSequencerStatus(other, 0, up);
      await mineAt(sys, up + GRACE);
      await expect(sys.router.checkSequencer()).to.be.revertedWithCustomError(
        sys.router,
        "GracePeriodNotOver",
      );
      // Down from `start + 60` to the swap on the old feed, from the swap to the new feed's grace end on it.
      expect(await sys.auction.absorbableAt(alice)).to.equal(pausedTo(start, up + GRACE) + DURATION);
      expect(swappedAt).to.be.greaterThan(start + 60n);
    });
  });

  describe("a change in the grace period", function () {
    it("ends the pause where a grace cut opens prices: 600 s after the sequencer came back, not the hour", async function () {
      const { sys, seq, alice, start } = await loadFixture(auctionIntoOutage);
      const up = start + 60n + OUTAGE;
      await setSequencerStatus(seq, 0, up);
      await mineAt(sys, up + 599n);
      expect(await sys.auction.absorbableAt(alice), "in the grace hour").to.equal(
        pausedTo(start, up + GRACE) + DURATION,
      );
      await time.setNextBlockTimestamp(up + 600n);
      await sys.router.configureSequencerFeed(seq.feed, 60n);
      await sys.router.checkSequencer();
      expect(await sys.auction.absorbableAt(alice)).to.equal(pausedTo(start, up + 600n) + DURATION);
    });

    it("pauses from a swap back to the feed whose grace is running, to its end, and not for the open prices between", async function () {
      const { sys, seq, spare, alice, start } = await loadFixture(auctionIntoOutage);
      const up = start + 60n + OUTAGE;
      await setSequencerStatus(seq, 0, up);
      await advanceTo(sys, up + 1_000n);
      await sys.router.configureSequencerFeed(spare.feed, GRACE); // prices open at `up + 1,000`
      await advanceTo(sys, up + 2_000n);
      await sys.router.configureSequencerFeed(seq.feed, GRACE); // closed again until `up + 3,600`
      await expect(sys.router.checkSequencer()).to.be.revertedWithCustomError(
        sys.router,
        "GracePeriodNotOver",
      );
      expect(await sys.auction.absorbableAt(alice)).to.equal(
        pausedTo(start, up + 1_000n) + (up + GRACE - (up + 2_000n)) + DURATION,
      );
    });
  });

  describe("after the grace period", function () {
    it("moves no clock of an auction that began after the outage, whatever the change", async function () {
      const { sys, spare, alice, carol, open } = await loadFixture(auctionThroughOutage);
      await carolBidsAt(sys, alice, carol, open);
      expect((await sys.auction.auctions(alice)).active, "the bid restored Alice").to.equal(false);
      await setFeedPrice(sys.feeds.ETH, "2200");
      await sys.auction.connect(sys.keeper).startAuction(alice);
      const start = (await sys.auction.auctions(alice)).startTime;
      expect(await sys.auction.absorbableAt(alice)).to.equal(start + DURATION);
      await sys.router.configureSequencerFeed(spare.feed, GRACE);
      await sys.router.configureSequencerFeed(spare.feed, 60n);
      await sys.router.configureSequencerFeed(ethers.ZeroAddress, 0);
      expect(await sys.auction.absorbableAt(alice)).to.equal(start + DURATION);
      expect(await sys.router.sequencerClockStart(start)).to.equal(start);
    });

    it("refuses the restart of a stale auction with AuctionAlreadyActive after a swap until it has run 2·duration outside the outage", async function () {
      const { sys, spare, alice, start, up, open } = await loadFixture(auctionThroughOutage);
      await time.setNextBlockTimestamp(open);
      await sys.router.configureSequencerFeed(spare.feed, GRACE);
      // Counted from its start, the swap would have made it stale long ago (start + 3,600).
      await expect(sys.auction.connect(sys.keeper).startAuction(alice))
        .to.be.revertedWithCustomError(sys.auction, "AuctionAlreadyActive")
        .withArgs(alice);
      const staleAt = pausedTo(start, up + GRACE) + 2n * DURATION;
      await mineAt(sys, staleAt - 2n);
      await expect(sys.auction.connect(sys.keeper).startAuction(alice))
        .to.be.revertedWithCustomError(sys.auction, "AuctionAlreadyActive")
        .withArgs(alice);
      await advanceTo(sys, staleAt);
      await expect(sys.auction.connect(sys.keeper).startAuction(alice)).to.emit(
        sys.auction,
        "AuctionStarted",
      );
    });
  });

  describe("an uptime feed that fails (the emergency a swap is for)", function () {
    it("replaces a reverting uptime feed at once, carrying nothing from it and keeping the window carried before it", async function () {
      const { sys, seq, spare, alice, start, up } = await loadFixture(auctionThroughOutage);
      // Deployed after the grace hour (the fixture's last block is `open - 1`): the change lands at or after `open`.
      const breakable = await (await ethers.getContractFactory("BreakableFeedMock")).deploy(seq.feed);
      await expect(sys.router.configureSequencerFeed(breakable, GRACE))
        .to.emit(sys.router, "SequencerOutageCarried")
        .withArgs(start + 60n, up + GRACE, (restartBefore: bigint) => restartBefore < start);
      await breakable.setBroken(true);
      await expect(sys.router.checkSequencer()).to.be.revertedWithCustomError(breakable, "FeedBroken");
      await expect(sys.auction.absorbableAt(alice)).to.be.revertedWithCustomError(breakable, "FeedBroken");
      await expect(sys.router.configureSequencerFeed(spare.feed, GRACE)).not.to.emit(
        sys.router,
        "SequencerOutageCarried",
      );
      expect(await sys.auction.absorbableAt(alice)).to.equal(pausedTo(start, up + GRACE) + DURATION);
    });

    it("replaces an uptime feed address without code", async function () {
      const { sys, spare, alice, start, up } = await loadFixture(auctionThroughOutage);
      await sys.router.configureSequencerFeed(sys.carol.address, GRACE);
      await expect(sys.router.checkSequencer()).to.be.reverted;
      await expect(sys.router.configureSequencerFeed(spare.feed, GRACE)).not.to.emit(
        sys.router,
        "SequencerOutageCarried",
      );
      expect(await sys.auction.absorbableAt(alice)).to.equal(pausedTo(start, up + GRACE) + DURATION);
    });

    it("refuses with SourceUnavailable a change left too little gas to read the replaced feed's outage", async function () {
      const { sys, seq, spare, alice, start, up } = await loadFixture(auctionThroughOutage);
      await expect(sys.router.configureSequencerFeed(spare.feed, GRACE, { gasLimit: 250_000 }))
        .to.be.revertedWithCustomError(sys.router, "SourceUnavailable")
        .withArgs(await seq.feed.getAddress());
      const receipt = await (await sys.router.configureSequencerFeed(spare.feed, GRACE)).wait();
      console.log(`      configureSequencerFeed with a window to carry: ${receipt!.gasUsed} gas`);
      expect(await sys.auction.absorbableAt(alice)).to.equal(pausedTo(start, up + GRACE) + DURATION);
    });
  });

  describe("an insolvent auction across a swap", function () {
    it("pays the bidder the fund's payout of the seconds outside the outage, not the ramp's end", async function () {
      const { sys, spare, alice } = await loadFixture(auctionThroughOutage);
      await setFeedPrice(sys.feeds.ETH, "2150");
      // A few seconds after the grace hour, with room for the price update's block under load.
      const at = BigInt(await time.latest()) + 10n;
      await mineAt(sys, at);
      const [, , calm] = await sys.auction.quoteBid(alice, WAD);
      // The same auction again, the swap in the block at `at`.
      await loadFixture(auctionThroughOutage);
      await setFeedPrice(sys.feeds.ETH, "2150");
      await time.setNextBlockTimestamp(at);
      await sys.router.configureSequencerFeed(spare.feed, GRACE);
      const [, , swapped] = await sys.auction.quoteBid(alice, WAD);
      console.log(
        `      insolvent payout seconds after the grace hour: ${calm} units, ${swapped} after a swap`,
      );
      expect(swapped).to.equal(calm);
    });
  });
});
