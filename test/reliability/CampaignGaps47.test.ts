import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, deploySystem, openAccount, wad } from "../shared/system";
import { DURATION, GRACE, auctionThroughOutage, carolBidsAt } from "../shared/outageAuction";

/**
 * Review round 163: what the campaign's round-163 kinds (`sequencerFeed`, `surplus`, `roundTripFloor` in
 * test/reliability/model.ts) showed that the campaign itself does not hold as an invariant. A running
 * auction's clock pauses through the last sequencer outage and its grace period
 * (`LiquidationAuction._clockStart`, rows 280 and 296). Round 163 found it read from the uptime feed and
 * grace period configured *now*, so that `configureSequencerFeed` re-dated every auction that crossed an
 * outage (row 580); since round 166 the router keeps the window the replaced configuration showed
 * (`OracleRouter.sequencerClockStart`), and these specs pin that no change re-dates it.
 */
const USDC = 10n ** 6n;

describe("Campaign gaps of round 163: the sequencer feed reconfigured under a running auction (row 580, fixed in round 166)", function () {
  it("keeps an auction that crossed an outage at 61 s of its ramp when nothing is reconfigured", async function () {
    const { sys, alice, carol, start, up, open } = await loadFixture(auctionThroughOutage);
    expect(await sys.auction.absorbableAt(alice)).to.equal(start + (up + GRACE - (start + 60n)) + DURATION);
    const calm = await carolBidsAt(sys, alice, carol, open);
    expect(calm.discount).to.be.lessThan(wad("0.023"));
  });

  it("keeps the first bid at 61 s of the ramp (2.2711%) when the timelock swaps the uptime feed after the outage", async function () {
    const { sys, spare, alice, carol, start, up, open } = await loadFixture(auctionThroughOutage);
    const calm = await carolBidsAt(sys, alice, carol, open);
    // The same auction again (the fixture reverted to its snapshot), with the swap before the bid.
    await loadFixture(auctionThroughOutage);
    // The swap, executed at `open − 1` (a timelock's delay is public: anyone can bid right after it).
    await time.setNextBlockTimestamp(open - 1n);
    await expect(sys.router.configureSequencerFeed(spare.feed, GRACE))
      .to.emit(sys.router, "SequencerOutageCarried")
      // Kept from the sequencer going down to the end of the grace hour; a clock begun before the grace
      // after the feed's outage before (two days ago) would restart.
      .withArgs(start + 60n, up + GRACE, (restartBefore: bigint) => restartBefore < start);
    expect(await sys.auction.absorbableAt(alice), "the outage's seconds kept").to.equal(
      start + (up + GRACE - (start + 60n)) + DURATION,
    );
    const swapped = await carolBidsAt(sys, alice, carol, open);
    console.log(
      `      first bid: ${ethers.formatUnits(calm.discount, 16)}% without the swap, ${ethers.formatUnits(swapped.discount, 16)}% after it`,
    );
    expect(swapped.discount).to.equal(calm.discount);
    expect(swapped.aliceMark).to.equal(calm.aliceMark);
  });

  it("keeps the clock where it is through a grace cut, and pauses it again only for the prices a raise closes again", async function () {
    const { sys, seq, alice, start, up, open } = await loadFixture(auctionThroughOutage);
    const kept = start + (up + GRACE - (start + 60n)) + DURATION;
    await time.setNextBlockTimestamp(open - 1n);
    await sys.router.configureSequencerFeed(seq.feed, 60n);
    expect(await sys.auction.absorbableAt(alice), "a cut").to.equal(kept);
    // A raise past the time since the outage closes every price again until the longer grace ends: the
    // clock pauses from the raise to then, not for the hour of open prices before it.
    await time.setNextBlockTimestamp(open);
    await sys.router.configureSequencerFeed(seq.feed, 86_400n);
    expect(await sys.auction.absorbableAt(alice), "a raise").to.equal(kept + (up + 86_400n - open));
    await expect(sys.router.checkSequencer()).to.be.revertedWithCustomError(sys.router, "GracePeriodNotOver");
  });

  it("keeps the outage's pause once the uptime feed is removed (an L1 router)", async function () {
    const { sys, alice, start, up, open } = await loadFixture(auctionThroughOutage);
    await time.setNextBlockTimestamp(open - 1n);
    await sys.router.configureSequencerFeed(ethers.ZeroAddress, 0);
    expect(await sys.auction.absorbableAt(alice)).to.equal(start + (up + GRACE - (start + 60n)) + DURATION);
    // 60 s before the outage and none after it (the next block is `open − 1` + 1).
    expect(await sys.auction.currentDiscount(alice)).to.be.lessThan(wad("0.023"));
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
