import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, openAccount, wad } from "../shared/system";
import { deployOptionsSystemWithoutFunding } from "../shared/options";
import { SEQUENCER_GRACE, configureSequencer, setFeedPrice, setSequencerStatus } from "../shared/oracles";
import { marketParams, mineAt, trade } from "../shared/perps";
import { systemWithClients } from "../shared/sdk";
import { bid } from "../../sdk/src";
import { hardhatWallet } from "../shared/e2e";
import { aliceLongInAuction, onRequests, startInProcessKeeper, threeLongsUnderWater } from "../shared/keeper";

/**
 * Review round 118: the session's changes (rows 280–293). The keeper's last check of a bid, a start
 * batch and an absorb runs at blockTag "pending"; nodes that do not serve that tag answer an error
 * (IoTeX: "pending block number is not supported", reth's callMany: "unknown block", OpenEthereum:
 * "`BlockNumber::Pending` is not supported", a pruned Parity: "This request is not supported ...").
 */
const KEEPER = hardhatWallet(4);

/** The answer of a node that serves no pending state, to an eth_call at "pending". */
function refusingPending(method: string, params: unknown[]): void {
  if (method === "eth_call" && params[1] === "pending")
    throw Object.assign(new Error("pending block is not available"), { code: -32000 });
}

describe("Keeper on a node without a pending state", function () {
  it("still starts and liquidates the books when eth_call at pending is answered with an error", async function () {
    const { sys, ids } = await threeLongsUnderWater();
    const keeper = await startInProcessKeeper(sys);
    const before = await ethers.provider.getTransactionCount(KEEPER.address);
    await onRequests(refusingPending, () => keeper.step());
    const sent = (await ethers.provider.getTransactionCount(KEEPER.address)) - before;
    const stillLiquidatable: bigint[] = [];
    for (const id of ids) {
      const h = await sys.engine.health(id);
      if (h.equityMaintenance < h.maintenanceRequirement) stillLiquidatable.push(id);
    }
    // Before the fix: every last check read as a revert, "simulation reverted; not sending": 0 sent,
    // all three books left liquidatable, pass after pass.
    expect({ sent: sent > 0, stillLiquidatable }).to.deep.equal({ sent: true, stillLiquidatable: [] });
    expect(keeper.lines.some((l) => l.msg === "simulation reverted; not sending")).to.equal(false);
  });

  it("still skips a bid whose pending check reverts with the contract's error", async function () {
    const { sys, ids } = await threeLongsUnderWater();
    await sys.auction.startAuctions(ids);
    const keeper = await startInProcessKeeper(sys);
    const bidAndClose = sys.auction.interface.getFunction("bidAndClose").selector;
    const before = await ethers.provider.getTransactionCount(KEEPER.address);
    // A pending state in which a rival took the book: the contract's AuctionNotActive, with its data.
    await onRequests(
      (method, params) => {
        const call = params[0] as { from?: string; data?: string } | undefined;
        if (
          method === "eth_call" &&
          params[1] === "pending" &&
          String(call?.data ?? "").startsWith(bidAndClose)
        ) {
          const data = sys.auction.interface.encodeErrorResult("AuctionNotActive", [ids[0]]);
          throw Object.assign(new Error("execution reverted"), { code: 3, data });
        }
      },
      () => keeper.step(),
    );
    expect((await ethers.provider.getTransactionCount(KEEPER.address)) - before).to.equal(0);
    expect(keeper.lines.filter((l) => l.msg === "simulation reverted; not sending").length).to.equal(3);
  });
});

const GRACE = SEQUENCER_GRACE;
const DURATION = 1_800n;

/** Alice's long 10 ETH auctioned at 2,600 on a chain whose sequencer has been up for a day; funding off. */
async function aliceAuctionedOnL2() {
  const sys = await deployOptionsSystemWithoutFunding();
  const seq = await configureSequencer(sys.router, 0, 86_400n);
  const alice = await aliceLongInAuction(sys);
  return { sys, seq, alice };
}

describe("LiquidationAuction clock after an outage of an auction already at its maximum", function () {
  it("keeps it at its maximum, absorbable, after a one-minute outage and its grace hour (row 296)", async function () {
    const { sys, seq, alice } = await aliceAuctionedOnL2();
    const start = (await sys.auction.auctions(alice)).startTime;
    // Nobody bid: at start + 2·duration the auction is at its maximum and absorbable.
    await time.increaseTo(start + 2n * DURATION);
    const p = await sys.auction.params();
    expect(await sys.auction.currentDiscount(alice)).to.equal(p.maxDiscount);
    expect(await sys.auction.absorbableAt(alice)).to.equal(start + DURATION);
    // The sequencer is down for one minute, then up.
    const down = start + 2n * DURATION + 1n;
    await setSequencerStatus(seq, 1, down);
    const up = down + 60n;
    await setSequencerStatus(seq, 0, up);
    await mineAt(sys, up + GRACE + 1n);
    // The clock paused for the minute and the grace hour. Before the fix it restarted at up + grace:
    // within 1% of d0, and the absorb a whole duration (90 minutes after the blip) away.
    expect(await sys.auction.absorbableAt(alice)).to.equal(start + DURATION + 60n + GRACE);
    expect(await sys.auction.currentDiscount(alice)).to.equal(p.maxDiscount);
    await expect(sys.auction.absorb(alice)).to.emit(sys.auction, "AuctionBid");
  });
});

describe("LiquidationAuction restart after an outage", function () {
  it("refuses the owner's restart of an auction whose clock the outage paused, until it has run 2·duration", async function () {
    const { sys, seq, alice } = await aliceAuctionedOnL2();
    const start = (await sys.auction.auctions(alice)).startTime;
    // Down a minute after the start for two hours, then the grace hour.
    await setSequencerStatus(seq, 1, start + 60n);
    const up = start + 60n + 7_200n;
    await setSequencerStatus(seq, 0, up);
    // 1,700 s into the paused clock (60 before the outage, 1,640 after): the discount near its
    // maximum, the absorb 100 s away.
    const late = up + GRACE + 1_640n;
    await mineAt(sys, late - 5n);
    const p = await sys.auction.params();
    const ramp = p.startDiscount + ((p.maxDiscount - p.startDiscount) * 1_695n) / DURATION;
    expect(await sys.auction.currentDiscount(alice)).to.equal(ramp);
    expect(await sys.auction.absorbableAt(alice)).to.equal(late + 100n);
    // Before round 118's fix the owner's restart went through (stale by its start, 3·duration + 1,700 s
    // ago): discount back to d0 (2%, from 9.55%) and the absorb moved 1,700 s later, to late + duration.
    await time.setNextBlockTimestamp(late);
    await expect(sys.auction.connect(sys.alice).startAuction(alice))
      .to.be.revertedWithCustomError(sys.auction, "AuctionAlreadyActive")
      .withArgs(alice);
  });
});

describe("SDK bid result of an insolvent take", function () {
  it("reports as insurancePayout of a bidAndClose what the fund and the pool paid the bidder", async function () {
    const { sys, bob } = await systemWithClients();
    await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
    const victim = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * 10n ** 6n]]);
    await trade(sys.perps, sys.alice, victim, sys.markets.ETH, wad("10"));
    const bidder = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * 10n ** 6n]]);
    await sys.accounts.connect(sys.bob).setTrader(bidder, sys.auction, ethers.MaxUint256);
    await setFeedPrice(sys.feeds.ETH, "2300");
    await sys.auction.startAuction(victim);
    const start = (await sys.auction.auctions(victim)).startTime;
    await mineAt(sys, start + 1_800n);
    expect((await sys.engine.health(victim)).equityMark < 0n).to.equal(true);
    const r = await bid(bob, {
      accountId: victim,
      bidderAccountId: bidder,
      fraction: WAD,
      close: true,
      maxPayment: ethers.MaxUint256,
    });
    const fund = await sys.insuranceFund.accountId();
    const vault = await sys.vault.getAddress();
    const paid = r.receipt.logs
      .map((l) => (l.address === vault ? sys.vault.interface.parseLog(l) : null))
      .filter((e) => e?.name === "BalanceTransferred" && e.args.toAccountId === bidder)
      .filter((e) => e!.args.fromAccountId === fund || e!.args.fromAccountId === sys.poolAccountId)
      .reduce((sum, e) => sum + BigInt(e!.args.amount), 0n);
    expect([r.filled, r.payment, r.penalty]).to.deep.equal([WAD, 0n, 0n]);
    expect(r.insurancePayout > 0n).to.equal(true);
    expect(r.insurancePayout).to.equal(paid);
    // At the ramp's end: the deficit + dmax·MM, 2,338.054146 USDC.
    expect(paid).to.equal(2_338_054_146n);
  });
});
