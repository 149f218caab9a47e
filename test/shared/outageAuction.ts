import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, atLatestTimestamp, eventOf, openAccount, wad, type System } from "./system";
import { deployOptionsSystemWithoutFunding } from "./options";
import {
  SEQUENCER_GRACE,
  configureSequencer,
  setFeedPrice,
  setSequencerStatus,
  type Sequencer,
} from "./oracles";
import { advanceTo, trade } from "./perps";

/**
 * An auction across a sequencer outage, for the specs of a change of the uptime feed under it (review
 * rounds 163 and 166, docs/reliability.md §4 row 580: CampaignGaps47, SequencerSwapAuctions).
 */
const USDC = 10n ** 6n;
export const GRACE = SEQUENCER_GRACE;
/** The auction's duration (the system's parameters). */
export const DURATION = 1_800n;
export const OUTAGE = 7_200n;

/** When the clock of an auction begun at `start` counts from if prices were closed from `start + 60` to `end`. */
export const pausedTo = (start: bigint, end: bigint) => start + (end - (start + 60n));
/** The discount `seconds` into the ramp of the system's parameters (2% to 10% over `DURATION`). */
export const ramp = (seconds: bigint) => wad("0.02") + (wad("0.08") * seconds) / DURATION;

/**
 * Alice (5,000 USDC) long 10 ETH, auctioned at ETH 2,600 (funding off); the sequencer goes down a minute
 * after the auction's start (the last block). A spare uptime feed, up for two days, is deployed before
 * the auction: what a timelock would swap to (a new feed, a new proxy).
 */
export async function auctionIntoOutage() {
  const sys = await deployOptionsSystemWithoutFunding();
  const seq = await configureSequencer(sys.router, 0, 2n * 86_400n);
  // Before the auction: the spare's configuration and the swap back to `seq` fall before the outage, so
  // that every window the specs carry begins at `start + 60` exactly. Made after the sequencer went down,
  // the swap back landed a second later in 1 of 40 runs on a loaded machine (review round 172), and the
  // pause began then, a second late (the first bid after a swap at 62 s, not 61).
  const spare = await configureSpare(sys, seq);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
  await setFeedPrice(sys.feeds.ETH, "2600");
  await atLatestTimestamp();
  await sys.auction.connect(sys.keeper).startAuction(alice);
  const start = (await sys.auction.auctions(alice)).startTime;
  await setSequencerStatus(seq, 1, start + 60n);
  return { sys, seq, spare, alice, carol, start };
}

/**
 * `auctionIntoOutage`, the sequencer down for two hours and back at `up`: the next block is `open`, the
 * first second after the grace hour, where the auction has run 61 s (row 296's pause).
 */
export async function auctionThroughOutage() {
  const into = await auctionIntoOutage();
  const up = into.start + 60n + OUTAGE;
  await setSequencerStatus(into.seq, 0, up);
  const open = up + GRACE + 1n;
  await advanceTo(into.sys, open - 1n);
  await ethers.provider.send("evm_mine", []);
  return { ...into, up, open };
}

/** Deploys an uptime feed up since two days ago, leaving `seq` configured. */
async function configureSpare(sys: System, seq: Sequencer) {
  const spare = await configureSequencer(sys.router, 0, 2n * 86_400n);
  await sys.router.configureSequencerFeed(seq.feed, GRACE);
  return spare;
}

/** Carol bids for the whole restoring slice at `at`: the bid's discount and Alice's equity at mark after. */
export async function carolBidsAt(sys: System, alice: bigint, carol: bigint, at: bigint) {
  await time.setNextBlockTimestamp(at);
  const receipt = await (await sys.auction.connect(sys.carol).bid(alice, carol, WAD, 2n ** 255n)).wait();
  const event = eventOf(receipt!, sys.auction, "AuctionBid");
  return { discount: event.args.discount as bigint, aliceMark: (await sys.engine.health(alice)).equityMark };
}
