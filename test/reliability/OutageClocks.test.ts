import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import {
  MarginMode,
  WAD,
  atLatestTimestamp,
  deploySystem,
  eventOf,
  openAccount,
  wad,
  type System,
} from "../shared/system";
import { deployOptionsSystemWithoutFunding } from "../shared/options";
import {
  SEQUENCER_GRACE,
  configureSequencer,
  postSequencerRound,
  setFeedPrice,
  setSequencerStatus,
  type Sequencer,
} from "../shared/oracles";
import { mintAndApprove } from "../shared/tokens";
import { INTEREST_MODEL } from "../shared/interest";
import { advanceTo, mineAt, refreshFeeds, trade } from "../shared/perps";
import { deploymentOf, sdkClient } from "../shared/sdk";
import { listAuctions } from "../../sdk/src";
import { connectContracts } from "../../scripts/keeper/chain";
import { auctionOf } from "../../scripts/keeper/liquidation";
import type { Deployment } from "../../deploy/deployment";

/**
 * Clocks that run while nobody can act (review round 115, docs/reliability.md §4 rows 280–286): while the
 * L2 sequencer is down and then in the router's grace period, `engine.health` reverts, so nobody can bid,
 * end, absorb or buy the backstop's collateral, but the auction's schedules kept counting from the start.
 * The first transaction after the grace period then met an auction at its maximum discount, an insolvent
 * one at its full payout and an absorb already open. The schedules now pause from the sequencer going
 * down to the end of the grace period after it (`LiquidationAuction._elapsed`; round 118, row 296: they
 * first restarted there, which sent an auction at its maximum back to d0 after a one-minute blip).
 */
const USDC = 10n ** 6n;
const GRACE = SEQUENCER_GRACE;
const DURATION = 1_800n;
const OUTAGE = 7_200n; // two hours down, then the grace hour
/** The auction's seconds before the outage (a minute) and after the grace period (one) at `open`. */
const RAN = 61n;

/** An uptime feed on `sys`'s router, up since two days ago, with the router's one-hour grace. */
const sequencerUp = (sys: System) => configureSequencer(sys.router, 0, 2n * 86_400n);

/** Alice (5,000 USDC) long 10 ETH, ETH then at `priceUsd`, her auction started at `start`; funding off. */
async function aliceAuctioned(priceUsd: string) {
  const sys = await deployOptionsSystemWithoutFunding();
  const seq = await sequencerUp(sys);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
  await setFeedPrice(sys.feeds.ETH, priceUsd);
  await atLatestTimestamp();
  await sys.auction.connect(sys.keeper).startAuction(alice);
  const start = (await sys.auction.auctions(alice)).startTime;
  return { sys, seq, alice, carol, start };
}

const solventAuction = () => aliceAuctioned("2600");
const insolventAuction = () => aliceAuctioned("2400");

/**
 * The sequencer goes down a minute after the auction's start, for two hours, and comes back; returns
 * the first second after the grace period (`up + GRACE + 1`), where the next block is pinned, feeds fresh.
 */
async function throughOutage(
  sys: System,
  seq: Sequencer,
  start: bigint,
): Promise<{ up: bigint; open: bigint }> {
  await setSequencerStatus(seq, 1, start + 60n);
  const up = start + 60n + OUTAGE;
  await setSequencerStatus(seq, 0, up);
  const open = up + GRACE + 1n;
  await advanceTo(sys, open);
  return { up, open };
}

/** Carol's bid for the whole restoring slice of Alice; the AuctionBid's discount and Alice's equity at mark after. */
async function carolBids(sys: System, alice: bigint, carol: bigint) {
  const receipt = await (await sys.auction.connect(sys.carol).bid(alice, carol, WAD, 2n ** 255n)).wait();
  const event = eventOf(receipt!, sys.auction, "AuctionBid");
  return {
    fraction: event.args.fraction as bigint,
    payment: event.args.payment as bigint,
    discount: event.args.discount as bigint,
    aliceMark: (await sys.engine.health(alice)).equityMark,
  };
}

describe("Clocks that run while nobody can act", function () {
  describe("a solvent auction started a minute before two hours down and the grace hour", function () {
    it("refuses bids and ends while down and in grace, and takes the owner's deposit", async function () {
      const { sys, seq, alice, carol, start } = await loadFixture(solventAuction);
      await setSequencerStatus(seq, 1, start + 60n);
      await mineAt(sys, start + 60n + DURATION);
      await expect(
        sys.auction.connect(sys.carol).bid(alice, carol, WAD, 2n ** 255n),
      ).to.be.revertedWithCustomError(sys.router, "SequencerDown");
      await expect(sys.auction.endAuction(alice)).to.be.revertedWithCustomError(sys.router, "SequencerDown");
      await mintAndApprove(sys.usdc, sys.alice, await sys.vault.getAddress(), 1n * USDC);
      await sys.vault.connect(sys.alice).deposit(alice, sys.usdc, 1n * USDC);
      await setSequencerStatus(seq, 0, start + 60n + OUTAGE);
      await advanceTo(sys, start + 60n + OUTAGE + GRACE - 1n);
      await expect(
        sys.auction.connect(sys.carol).bid(alice, carol, WAD, 2n ** 255n),
      ).to.be.revertedWithCustomError(sys.router, "GracePeriodNotOver");
      await time.setNextBlockTimestamp(start + 60n + OUTAGE + GRACE);
      await expect(sys.auction.endAuction(alice)).to.be.revertedWithCustomError(
        sys.router,
        "GracePeriodNotOver",
      );
    });

    it("prices the first bid after the grace period as a bid 61 seconds into the auction (2.2711%), not at the 10% maximum", async function () {
      const { sys, alice, carol, start } = await loadFixture(solventAuction);
      // Without the outage: Carol bids the minute before it and the second after the grace period in.
      await advanceTo(sys, start + RAN);
      const calm = await carolBids(sys, alice, carol);
      expect(calm.discount).to.equal(wad("0.02") + (wad("0.08") * RAN) / DURATION);

      const outage = await loadFixture(solventAuction);
      await throughOutage(outage.sys, outage.seq, outage.start);
      const after = await carolBids(outage.sys, outage.alice, outage.carol);
      // Before the fix: 10% (the clock ran through the outage), 71.35% of the book for 529.73 USDC
      // instead of 69.56% for 562.31 a second into the auction: Alice's equity at mark went from 824.93
      // to 760.18 USDC, not 807.69; the outage cost her 47.50 USDC (5.8% of her equity).
      expect(after.discount).to.equal(calm.discount);
      expect(after.fraction).to.equal(calm.fraction);
      expect(after.payment).to.equal(calm.payment);
      expect(after.aliceMark).to.equal(calm.aliceMark);
    });

    it("opens the backstop's absorb once the auction has run its duration outside the outage, not at once", async function () {
      const { sys, seq, alice, start } = await loadFixture(solventAuction);
      await throughOutage(sys, seq, start);
      // Before the fix: the absorb went through here, the whole restoring slice at 10% to the backstop.
      // Now it waits the 1,740 s of the duration the minute before the outage left.
      await expect(sys.auction.absorb(alice))
        .to.be.revertedWithCustomError(sys.auction, "AbsorbTooEarly")
        .withArgs(alice, start + OUTAGE + GRACE + DURATION);
      await advanceTo(sys, start + OUTAGE + GRACE + DURATION);
      await expect(sys.auction.absorb(alice))
        .to.emit(sys.auction, "AuctionBid")
        .withArgs(alice, await sys.auction.backstopAccountId(), anyValue, anyValue, anyValue, wad("0.10"));
    });

    it("tells the SDK's listAuctions and the keeper the absorb time the outage moved", async function () {
      const { sys, seq, alice, start } = await loadFixture(solventAuction);
      const { open } = await throughOutage(sys, seq, start);
      await mineAt(sys, open);
      const absorbableAt = start + OUTAGE + GRACE + DURATION;
      const [listed] = await listAuctions(await sdkClient(sys, sys.keeper));
      expect(listed.absorbableAt).to.equal(absorbableAt);
      // The keeper would otherwise try `absorb` at start + duration, and every pass for half an hour.
      const contracts = connectContracts((await deploymentOf(sys)) as Deployment, sys.keeper);
      expect(await auctionOf(contracts, alice, open)).to.equal("running");
      expect(await auctionOf(contracts, alice, absorbableAt)).to.equal("absorbable");
    });

    it("lets the owner cure with a deposit during the outage: at recovery no bid goes through and anyone ends it", async function () {
      const { sys, seq, alice, carol, start } = await loadFixture(solventAuction);
      await setSequencerStatus(seq, 1, start + 60n);
      await mintAndApprove(sys.usdc, sys.alice, await sys.vault.getAddress(), 2_000n * USDC);
      await sys.vault.connect(sys.alice).deposit(alice, sys.usdc, 2_000n * USDC);
      await setSequencerStatus(seq, 0, start + 60n + OUTAGE);
      await advanceTo(sys, start + 60n + OUTAGE + GRACE + 1n);
      await expect(
        sys.auction.connect(sys.carol).bid(alice, carol, WAD, 2n ** 255n),
      ).to.be.revertedWithCustomError(sys.auction, "AccountHealthy");
      await expect(sys.auction.absorb(alice)).to.be.reverted;
      await expect(sys.auction.endAuction(alice)).to.emit(sys.auction, "AuctionEnded").withArgs(alice, 0);
    });
  });

  describe("what the uptime feed shows of the outage (the clock pauses only for a window it can prove)", function () {
    const ramp = (seconds: bigint) => wad("0.02") + (wad("0.08") * seconds) / DURATION;

    it("holds the discount and the absorb time where the outage found them while the sequencer is down", async function () {
      const { sys, seq, alice, start } = await loadFixture(solventAuction);
      await setSequencerStatus(seq, 1, start + 600n);
      await ethers.provider.send("evm_mine", []);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(600n));
      await time.increaseTo(start + 5_000n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(600n));
      expect(await sys.auction.absorbableAt(alice)).to.equal(start + 5_000n + DURATION - 600n);
    });

    it("restarts the clock after the grace period when the auction also saw an earlier outage", async function () {
      const { sys, seq, alice, start } = await loadFixture(solventAuction);
      // Down at +60 for a minute, then down again at +4,000 (after the first grace hour) for two hours:
      // the feed's previous rounds show only the last outage, so the first one cannot be paused.
      await setSequencerStatus(seq, 1, start + 60n);
      await setSequencerStatus(seq, 0, start + 120n);
      await setSequencerStatus(seq, 1, start + 4_000n);
      const up = start + 4_000n + OUTAGE;
      await setSequencerStatus(seq, 0, up);
      await mineAt(sys, up + GRACE + 1n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(1n));
      expect(await sys.auction.absorbableAt(alice)).to.equal(up + GRACE + DURATION);
    });

    it("restarts it when the outage's down round is dated before the auction began (a status that reached the L2 late)", async function () {
      const { sys, seq, alice, start } = await loadFixture(solventAuction);
      await postSequencerRound(seq.feed, (await seq.feed.latestRound()) + 1n, 1, start - 30n, start + 60n);
      const up = start + 60n + OUTAGE;
      await setSequencerStatus(seq, 0, up);
      await mineAt(sys, up + GRACE + 1n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(1n));
    });

    it("restarts it when the round before the outage is missing (round ids after a new aggregator phase)", async function () {
      const { sys, seq, alice, start } = await loadFixture(solventAuction);
      const last = await seq.feed.latestRound();
      // The down round follows a gap in the ids: the round before it reads as zeros, which proves no
      // uptime before the auction (read as "up since 0" it would pause the clock: 2.2711%).
      await postSequencerRound(seq.feed, last + 5n, 1, start + 60n);
      await postSequencerRound(seq.feed, last + 6n, 0, start + 60n + OUTAGE);
      await mineAt(sys, start + 60n + OUTAGE + GRACE + 1n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(1n));
    });

    it("restarts it when the round before the latest is no status change (up after up)", async function () {
      const { sys, seq, alice, start } = await loadFixture(solventAuction);
      const last = await seq.feed.latestRound();
      await postSequencerRound(seq.feed, last + 1n, 0, start + 60n);
      await postSequencerRound(seq.feed, last + 2n, 0, start + 60n + OUTAGE);
      await mineAt(sys, start + 60n + OUTAGE + GRACE + 1n);
      expect(await sys.auction.currentDiscount(alice)).to.equal(ramp(1n));
    });
  });

  describe("an insolvent auction across the same outage", function () {
    it("pays the bidder the fund's payout of the auction's 61 seconds outside the outage, not the whole deficit plus dmax·MM", async function () {
      const { sys, alice, start } = await loadFixture(insolventAuction);
      await advanceTo(sys, start + RAN);
      await ethers.provider.send("evm_mine", []);
      const [, , calmPayout] = await sys.auction.quoteBid(alice, WAD);
      const h = await sys.engine.health(alice);
      expect(h.equityMark).to.be.lt(0n);

      const outage = await loadFixture(insolventAuction);
      await throughOutage(outage.sys, outage.seq, outage.start);
      await ethers.provider.send("evm_mine", []);
      const [, , payout] = await outage.sys.auction.quoteBid(outage.alice, WAD);
      // Before the fix: the whole ramp, deficit + dmax·MM = 1,165.08 + 180.50 = 1,345.58 USDC from the
      // fund at the first block after the grace period, where 61 seconds into the calm auction pays 45.60
      // and a bidder at cost 0 (payout = deficit) took it for 180.50 less.
      expect(h.equityMark).to.equal(-wad("1165.075"));
      expect(payout).to.equal(calmPayout);
      expect(calmPayout).to.equal(45_600_159n);
    });
  });

  describe("the backstop's collateral sale across the same outage", function () {
    /** Alice (5,000 USDC, 0.2 WETH) long 10 ETH at ETH 2,600, absorbed at the end of her auction. */
    async function absorbedWithWeth() {
      const sys = await deployOptionsSystemWithoutFunding();
      const seq = await sequencerUp(sys);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [
        [sys.usdc, 5_000n * USDC],
        [sys.weth, wad("0.2")],
      ]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
      await setFeedPrice(sys.feeds.ETH, "2600");
      await atLatestTimestamp();
      await sys.auction.connect(sys.keeper).startAuction(alice);
      const start = (await sys.auction.auctions(alice)).startTime;
      await advanceTo(sys, start + DURATION);
      await sys.auction.absorb(alice);
      const backstop = await sys.auction.backstopAccountId();
      return {
        sys,
        seq,
        absorbedAt: await sys.auction.lastAbsorbAt(),
        held: await sys.vault.balanceOf(backstop, sys.weth),
      };
    }

    it("sells the absorbed WETH at the discount of the sale's 61 seconds outside the outage (0.3389%), not at 10%", async function () {
      const { sys, seq, absorbedAt, held } = await loadFixture(absorbedWithWeth);
      expect(held).to.be.gt(0n);
      await throughOutage(sys, seq, absorbedAt);
      await ethers.provider.send("evm_mine", []);
      const [payment, discount] = await sys.auction.backstopCollateralQuote(sys.weth, held);
      // Before the fix: 10%, the LPs' 0.1064 WETH (276.62 USD) sold for 27.66 USD under the oracle to the
      // first buyer after the outage; now 275.68 USDC.
      expect(discount).to.equal((wad("0.10") * RAN) / DURATION);
      const value = await sys.vault.tokenValue(sys.weth, held);
      expect(payment * 10n ** 12n).to.be.gte((value * (WAD - discount)) / WAD);
    });
  });

  describe("a stale price feed (left open: nothing on chain says when a feed came back)", function () {
    /** Alice's auction started a minute before every feed (last posted at `posted`) goes stale. */
    async function auctionedBeforeStale() {
      const sys = await deployOptionsSystemWithoutFunding();
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
      await setFeedPrice(sys.feeds.ETH, "2600");
      await refreshFeeds(sys);
      const posted = BigInt(await time.latest());
      await time.setNextBlockTimestamp(posted + 3_540n);
      await sys.auction.connect(sys.keeper).startAuction(alice);
      return { sys, alice, carol, posted };
    }

    it("meets the first bid after an hour without rounds at the 10% maximum; only a restart, if first, resets it", async function () {
      const { sys, alice, carol, posted } = await loadFixture(auctionedBeforeStale);
      await time.setNextBlockTimestamp(posted + 3_601n);
      await expect(
        sys.auction.connect(sys.carol).bid(alice, carol, WAD, 2n ** 255n),
      ).to.be.revertedWithCustomError(sys.router, "StalePrice");
      await time.increaseTo(posted + 2n * 3_600n);
      await refreshFeeds(sys);
      // 29 of the auction's 30 minutes ran while no bid could be made; the clock does not know.
      expect(await sys.auction.currentDiscount(alice)).to.equal(wad("0.10"));
      await sys.auction.startAuction(alice); // stale (2·duration): the owner's race against the bidders
      expect(await sys.auction.currentDiscount(alice)).to.equal(wad("0.02"));
    });
  });

  describe("quote-debt interest across an outage (held)", function () {
    it("lets a debtor repay its debt and interest with a deposit while the sequencer is down, so nothing accrues after", async function () {
      // Alice's only collateral is 10 WETH; long 20 ETH closed after a 10% fall, she owes ~6,100 USDC.
      const sys = await deploySystem();
      const seq = await sequencerUp(sys);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("10")]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
      await setFeedPrice(sys.feeds.ETH, "2700");
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("20"));
      await sys.vault.setInterestRateModel(INTEREST_MODEL);
      const now = BigInt(await time.latest());
      await setSequencerStatus(seq, 1, now + 1n);
      await time.increase(86_400);
      const owed = -(await sys.vault.balanceOf(alice, sys.usdc)) + (await sys.vault.accruedInterest(alice));
      expect(await sys.vault.accruedInterest(alice)).to.be.gt(0n);
      const amount = owed + 10n * USDC; // a day's interest more than the view reads, at most
      await mintAndApprove(sys.usdc, sys.alice, await sys.vault.getAddress(), amount);
      await sys.vault.connect(sys.alice).deposit(alice, sys.usdc, amount);
      expect(await sys.vault.balanceOf(alice, sys.usdc)).to.be.gte(0n);
      await time.increase(86_400);
      expect(await sys.vault.accruedInterest(alice)).to.equal(0n);
    });
  });
});
