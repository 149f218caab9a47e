import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
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
  setFeedPrice,
  setSequencerStatus,
  type Sequencer,
} from "../shared/oracles";
import { advanceTo, trade } from "../shared/perps";

/**
 * Review round 163: what the campaign's round-163 kinds (`sequencerFeed`, `surplus`, `roundTripFloor` in
 * test/reliability/model.ts) showed that the campaign itself does not hold as an invariant. A running
 * auction's clock pauses through the last sequencer outage and its grace period
 * (`LiquidationAuction._clockStart`, rows 280 and 296), read from the uptime feed and grace period
 * configured *now*: `configureSequencerFeed` re-dates every auction that crossed an outage.
 */
const USDC = 10n ** 6n;
const GRACE = SEQUENCER_GRACE;
const DURATION = 1_800n;
const OUTAGE = 7_200n;

/**
 * Alice (5,000 USDC) long 10 ETH, auctioned at ETH 2,600 (funding off); the sequencer goes down a minute
 * after the auction's start for two hours and comes back: the next block is `open`, the first second
 * after the grace hour, where the auction has run 61 s (row 296's pause).
 */
async function auctionThroughOutage() {
  const sys = await deployOptionsSystemWithoutFunding();
  const seq = await configureSequencer(sys.router, 0, 2n * 86_400n);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
  await setFeedPrice(sys.feeds.ETH, "2600");
  await atLatestTimestamp();
  await sys.auction.connect(sys.keeper).startAuction(alice);
  const start = (await sys.auction.auctions(alice)).startTime;
  await setSequencerStatus(seq, 1, start + 60n);
  const up = start + 60n + OUTAGE;
  await setSequencerStatus(seq, 0, up);
  const open = up + GRACE + 1n;
  // A spare uptime feed, up for two days: what a timelock would swap to (a new feed, a new proxy).
  const spare = await configureSpare(sys, seq);
  await advanceTo(sys, open - 1n);
  await ethers.provider.send("evm_mine", []);
  return { sys, seq, spare, alice, carol, start, up, open };
}

/** Deploys an uptime feed up since two days ago, leaving `seq` configured. */
async function configureSpare(sys: System, seq: Sequencer) {
  const spare = await configureSequencer(sys.router, 0, 2n * 86_400n);
  await sys.router.configureSequencerFeed(seq.feed, GRACE);
  return spare;
}

/** Carol bids for the whole restoring slice at `at`: the bid's discount and Alice's equity at mark after. */
async function carolBidsAt(sys: System, alice: bigint, carol: bigint, at: bigint) {
  await time.setNextBlockTimestamp(at);
  const receipt = await (await sys.auction.connect(sys.carol).bid(alice, carol, WAD, 2n ** 255n)).wait();
  const event = eventOf(receipt!, sys.auction, "AuctionBid");
  return { discount: event.args.discount as bigint, aliceMark: (await sys.engine.health(alice)).equityMark };
}

describe("Campaign gaps of round 163: the sequencer feed reconfigured under a running auction", function () {
  it("keeps an auction that crossed an outage at 61 s of its ramp when nothing is reconfigured", async function () {
    const { sys, alice, carol, start, up, open } = await loadFixture(auctionThroughOutage);
    expect(await sys.auction.absorbableAt(alice)).to.equal(start + (up + GRACE - (start + 60n)) + DURATION);
    const calm = await carolBidsAt(sys, alice, carol, open);
    expect(calm.discount).to.be.lessThan(wad("0.023"));
  });

  it("gives the auction back the outage's seconds when the timelock swaps the uptime feed after it: the first bid at the 10% maximum", async function () {
    const { sys, spare, alice, carol, start, open } = await loadFixture(auctionThroughOutage);
    const calm = await carolBidsAt(sys, alice, carol, open);
    // The same auction again (the fixture reverted to its snapshot), with the swap before the bid.
    await loadFixture(auctionThroughOutage);
    // The swap, executed at `open − 1` (a timelock's delay is public: anyone can bid right after it).
    await time.setNextBlockTimestamp(open - 1n);
    await sys.router.configureSequencerFeed(spare.feed, GRACE);
    expect(await sys.auction.absorbableAt(alice), "absorbable since long ago").to.equal(start + DURATION);
    const swapped = await carolBidsAt(sys, alice, carol, open);
    expect(swapped.discount).to.equal((await sys.auction.params()).maxDiscount);
    const lost = calm.aliceMark - swapped.aliceMark;
    console.log(
      `      first bid: ${ethers.formatUnits(calm.discount, 16)}% without the swap, ${ethers.formatUnits(swapped.discount, 16)}% after it; Alice ${ethers.formatUnits(lost, 18)} USD poorer`,
    );
    expect(lost).to.be.greaterThan(wad("40"));
  });

  it("moves the auction's clock forward by what a grace cut takes off the blocked window, and back by a raise", async function () {
    const { sys, seq, alice, start, up, open } = await loadFixture(auctionThroughOutage);
    const paused = (grace: bigint) => start + (up + grace - (start + 60n)) + DURATION;
    await time.setNextBlockTimestamp(open - 1n);
    await sys.router.configureSequencerFeed(seq.feed, 60n);
    expect(await sys.auction.absorbableAt(alice)).to.equal(paused(60n));
    // A raise past the time since the outage closes every price again until the longer grace ends.
    await sys.router.configureSequencerFeed(seq.feed, 86_400n);
    expect(await sys.auction.absorbableAt(alice)).to.equal(paused(86_400n));
    await expect(sys.router.checkSequencer()).to.be.revertedWithCustomError(sys.router, "GracePeriodNotOver");
  });

  it("counts no outage at all once the uptime feed is removed (an L1 router)", async function () {
    const { sys, alice, start, open } = await loadFixture(auctionThroughOutage);
    await time.setNextBlockTimestamp(open - 1n);
    await sys.router.configureSequencerFeed(ethers.ZeroAddress, 0);
    expect(await sys.auction.absorbableAt(alice)).to.equal(start + DURATION);
    expect(await sys.auction.currentDiscount(alice)).to.equal(wad("0.10"));
  });
});

/** Alice's 10,000 USDC deposited, Carol's 250 USDC sent to the vault's address instead. */
async function strayInVault() {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await sys.usdc.mint(sys.carol.address, 250n * USDC);
  await sys.usdc.connect(sys.carol).transfer(sys.vault, 250n * USDC);
  return { sys, alice };
}

describe("Campaign gaps of round 163: a surplus recovered while the guardian holds the vault's pause", function () {
  it("sends exactly the stray 250 USDC, and the depositor withdraws all 10,000 after the pause", async function () {
    const { sys, alice } = await loadFixture(strayInVault);
    await sys.vault.pause();
    await expect(
      sys.vault.connect(sys.alice).withdraw(alice, sys.usdc, 1n, sys.alice.address),
    ).to.be.revertedWithCustomError(sys.vault, "EnforcedPause");
    // The pause holds the accounts' money; what no account is credited with is not theirs to hold.
    await expect(sys.vault.recoverSurplus(sys.usdc, sys.carol.address))
      .to.emit(sys.vault, "SurplusRecovered")
      .withArgs(await sys.usdc.getAddress(), sys.carol.address, 250n * USDC);
    await expect(sys.vault.recoverSurplus(sys.usdc, sys.carol.address))
      .to.be.revertedWithCustomError(sys.vault, "NoSurplus")
      .withArgs(await sys.usdc.getAddress());
    await sys.vault.unpause();
    await sys.vault.connect(sys.alice).withdraw(alice, sys.usdc, 10_000n * USDC, sys.alice.address);
    expect(await sys.usdc.balanceOf(sys.vault)).to.equal(await sys.vault.totalDeposits(sys.usdc));
  });
});
