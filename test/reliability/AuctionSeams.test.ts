import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  MarginMode,
  WAD,
  atLatestTimestamp,
  openAccount,
  wad,
  withdrawToInitialMargin,
  eventOf,
  fundInsurance,
  expectQuoteLedgerBalanced,
} from "../shared/system";
import {
  DAY,
  HOUR,
  deployOptionsSystem,
  deployOptionsSystemWithoutFunding,
  fromNow,
  listSeries,
  tradeOption,
} from "../shared/options";
import { mineAt, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { startInProcessKeeper } from "../shared/keeper";
import { sdkClient } from "../shared/sdk";
import { accountHealth, getAccountState, toHealth } from "../../sdk/src";

/**
 * Seams around an auction, where one contract's assumption is another's edge case (review round 64;
 * docs/reliability.md §4, row 154): the ERC-721 account transferred in auction, options expiring during
 * one, collateral delisted mid-auction, a frozen account as bidder, the keeper on a book holding a
 * settled, unpaid series, and the pool's share price around funding, settlement and payouts.
 */
const USDC = 10n ** 6n;
type Sys = Awaited<ReturnType<typeof deployOptionsSystemWithoutFunding>>;

const liquidatable = (h: { equityMaintenance: bigint; maintenanceRequirement: bigint }) =>
  h.equityMaintenance < BigInt(h.maintenanceRequirement);

/** The SDK's health of each account equals the engine's at the same block (invariant 6). */
async function sdkMatches(sys: Sys, ids: bigint[]): Promise<void> {
  const client = await sdkClient(sys, sys.deployer);
  for (const id of ids) {
    const state = await getAccountState(client, { accountId: id });
    expect(toHealth(accountHealth(state)), `SDK health of account ${id}`).to.deep.equal(
      toHealth(await sys.engine.health(id, { blockTag: state.blockNumber })),
    );
  }
}

/**
 * Alice: 20,000 USDC, short 10 ETH-3000 calls expiring at `expiry` (Carol holds them), long 20 ETH perp,
 * withdrawn to her initial requirement.
 */
async function writerAtInitialMargin(sys: Sys, expiry: bigint) {
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await tradeOption(sys.options, sys.alice, alice, call, -wad("10"));
  await tradeOption(sys.options, sys.carol, carol, call, wad("10"));
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
  await withdrawToInitialMargin(sys, sys.alice, alice);
  return { alice, carol, call };
}

describe("Seams around an auction", function () {
  describe("the ERC-721 account in auction", function () {
    /** Alice: 10,000 USDC, long 20 ETH at 3,000; Carol her operator and a 1,000 USDC trader; ETH 2,600. */
    async function frozenAlice() {
      const sys = await deployOptionsSystemWithoutFunding();
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
      await sys.accounts.connect(sys.alice).setApprovalForAll(sys.carol, true);
      await sys.accounts.connect(sys.alice).setTrader(alice, sys.keeper, 1_000n * USDC);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.connect(sys.keeper).startAuction(alice);
      return { sys, alice };
    }

    it("a transfer ends the old operator's and trader's access; the new owner can only reduce or cure, and the flag reward's cooldown stays with the account", async function () {
      const { sys, alice } = await loadFixture(frozenAlice);
      await sys.accounts.connect(sys.alice).transferFrom(sys.alice, sys.bob, alice);
      expect(await sys.accounts.isAuthorized(alice, sys.carol)).to.equal(false);
      expect(await sys.accounts.traderAllowance(alice, sys.keeper)).to.equal(0n);
      await expect(
        trade(sys.perps, sys.keeper, alice, sys.markets.ETH, -wad("1")),
      ).to.be.revertedWithCustomError(sys.accounts, "NotAuthorized");
      await expect(
        sys.vault.connect(sys.bob).withdraw(alice, sys.usdc, 1n, sys.bob),
      ).to.be.revertedWithCustomError(sys.engine, "AccountFrozen");
      await expect(trade(sys.perps, sys.bob, alice, sys.markets.ETH, wad("1"))).to.be.revertedWithCustomError(
        sys.engine,
        "AccountFrozen",
      );
      // Bob reduces and cures, ends the auction, and a dip right after restarts it without a reward.
      await trade(sys.perps, sys.bob, alice, sys.markets.ETH, -wad("5"));
      await sys.usdc.mint(sys.bob, 5_000n * USDC);
      await sys.usdc.connect(sys.bob).approve(sys.vault, 5_000n * USDC);
      await sys.vault.connect(sys.bob).deposit(alice, sys.usdc, 5_000n * USDC);
      await sys.auction.endAuction(alice);
      await setFeedPrice(sys.feeds.ETH, "2000");
      const tx = await sys.auction.connect(sys.bob).startAuction(alice);
      const ev = eventOf(await tx.wait(), sys.auction, "AuctionStarted");
      expect(ev.args.flagReward, "the cooldown is the account's, whoever owns it").to.equal(0n);
    });
  });

  describe("options expiring during an auction", function () {
    /**
     * Alice: 20,000 USDC, short 10 ETH-3000 calls expiring in 90 minutes, long 20 ETH perp, at her IM.
     * Carol holds the 10 calls. 20 minutes before expiry ETH falls to 2,800: Alice is auctioned.
     */
    async function writerInAuction() {
      const sys = await deployOptionsSystemWithoutFunding();
      await fundInsurance(sys, 10_000n * USDC);
      const expiry = await fromNow(90n * 60n);
      const { alice, carol, call } = await writerAtInitialMargin(sys, expiry);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
      await mineAt(sys, expiry - 20n * 60n);
      await setFeedPrice(sys.feeds.ETH, "2800");
      expect(liquidatable(await sys.engine.health(alice))).to.equal(true);
      await sys.auction.connect(sys.keeper).startAuction(alice);
      return { sys, alice, bob, carol, call, expiry };
    }

    it("a settlement paid into the frozen account between two bids moves neither its mark, the pool's assets nor what the first bid paid in", async function () {
      const { sys, alice, bob, carol, call, expiry } = await loadFixture(writerInAuction);
      await sys.auction.connect(sys.bob).bid(alice, bob, wad("0.2"), ethers.MaxUint256);
      const paidIn1 = (await sys.auction.auctions(alice)).paidIn;
      await expectQuoteLedgerBalanced(sys);
      await mineAt(sys, expiry + 5n);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "2790");
      await setFeedPrice(sys.feeds.ETH, "2800");
      await sys.options.settleSeries(call, round);
      await setFeedPrice(sys.feeds.ETH, "2650");
      await sdkMatches(sys, [alice, bob, carol]);
      const before = await sys.engine.health(alice);
      const poolBefore = await sys.pool.totalAssets();
      await sys.options.settleAccounts([alice, bob, carol], call);
      const after = await sys.engine.health(alice);
      expect(after.equityMark).to.equal(before.equityMark);
      expect(await sys.pool.totalAssets()).to.equal(poolBefore);
      await expectQuoteLedgerBalanced(sys);
      expect((await sys.auction.auctions(alice)).paidIn).to.equal(paidIn1);
      const restoring = await sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256);
      await expect(restoring).to.emit(sys.auction, "AuctionEnded").withArgs(alice, 0);
      const h = await sys.engine.health(alice);
      expect(h.equityInitial).to.be.gte(BigInt(h.initialRequirement));
      await expectQuoteLedgerBalanced(sys);
    });

    it("a bid's slice of an expired, unsettled series settles for exactly its share", async function () {
      const { sys, alice, bob, call, expiry } = await loadFixture(writerInAuction);
      await mineAt(sys, expiry + 5n);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "3050");
      await setFeedPrice(sys.feeds.ETH, "2750");
      const b = await sys.auction.connect(sys.bob).bid(alice, bob, wad("0.3"), ethers.MaxUint256);
      const f = eventOf(await b.wait(), sys.auction, "AuctionBid").args.fraction as bigint;
      const slice = await sys.options.positionSize(bob, call);
      const rest = await sys.options.positionSize(alice, call);
      expect(slice + rest).to.equal(-wad("10"));
      expect(slice).to.equal(-((wad("10") * f) / WAD));
      await sdkMatches(sys, [alice, bob]);
      await sys.options.settleSeries(call, round);
      const bobQuote = await sys.vault.balanceOf(bob, sys.usdc);
      await sys.options.settleAccount(bob, call);
      const paid = bobQuote - (await sys.vault.balanceOf(bob, sys.usdc));
      expect(paid).to.equal((-slice * 50n * USDC + WAD - 1n) / WAD);
      await expectQuoteLedgerBalanced(sys);
    });
  });

  describe("collateral and bidders around an auction", function () {
    /** Alice: 6 WETH and 2,000 USDC, long 20 ETH perp; ETH 3,000 → 2,300; auction started. */
    async function wethAlice() {
      const sys = await deployOptionsSystemWithoutFunding();
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [
        [sys.usdc, 2_000n * USDC],
        [sys.weth, wad("6")],
      ]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
      await setFeedPrice(sys.feeds.ETH, "2300");
      expect(liquidatable(await sys.engine.health(alice))).to.equal(true);
      await sys.auction.connect(sys.keeper).startAuction(alice);
      return { sys, alice, bob };
    }

    it("a collateral delisted and cut mid-auction still moves with a bid, leaves with its bidder, and is absorbed and sold by the backstop", async function () {
      const { sys, alice, bob } = await loadFixture(wethAlice);
      await sys.vault.delistCollateral(sys.weth);
      await sys.vault.setCollateralWeights(sys.weth, wad("0.8"), wad("0.9"));
      await sys.auction.connect(sys.bob).bid(alice, bob, wad("0.1"), ethers.MaxUint256);
      const got = await sys.vault.balanceOf(bob, sys.weth);
      expect(got).to.equal(wad("0.6"));
      await sdkMatches(sys, [alice, bob]);
      await sys.vault.connect(sys.bob).withdraw(bob, sys.weth, got, sys.bob);
      await expect(sys.vault.connect(sys.alice).deposit(alice, sys.weth, 1n)).to.be.revertedWithCustomError(
        sys.vault,
        "TokenNotListed",
      );
      await mineAt(sys, BigInt(await time.latest()) + 1800n);
      await sys.auction.absorb(alice);
      const backstop = await sys.auction.backstopAccountId();
      const held = await sys.vault.balanceOf(backstop, sys.weth);
      const [payment] = await sys.auction.backstopCollateralQuote(sys.weth, held);
      await sdkMatches(sys, [backstop]);
      await sys.auction.connect(sys.bob).buyBackstopCollateral(bob, sys.weth, held, payment);
      expect(await sys.vault.balanceOf(backstop, sys.weth)).to.equal(0n);
    });

    it("a frozen account cannot bid, by its owner or its operator, with bid or bidAndClose", async function () {
      const { sys, alice } = await loadFixture(wethAlice);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.carol, carol, sys.markets.ETH, wad("150"));
      await setFeedPrice(sys.feeds.ETH, "1700");
      await sys.auction.startAuction(carol);
      await sys.accounts.connect(sys.alice).setApprovalForAll(sys.bob, true);
      await sys.accounts.connect(sys.alice).approve(sys.auction, alice);
      for (const signer of [sys.alice, sys.bob]) {
        await expect(
          sys.auction.connect(signer).bid(carol, alice, wad("0.01"), ethers.MaxUint256),
        ).to.be.revertedWithCustomError(sys.engine, "AccountFrozen");
      }
      await expect(
        sys.auction.connect(sys.alice).bidAndClose(carol, alice, wad("0.01"), ethers.MaxUint256),
      ).to.be.revertedWithCustomError(sys.auction, "BidderHasPositions");
    });
  });

  describe("a book holding a settled, unpaid series (row 154)", function () {
    /**
     * Alice: 20,000 USDC, short 10 ETH-3000 calls (1 day), long 20 ETH perp, at her IM. After expiry
     * the settlement round posts 3,100 (she owes 1,000) and ETH falls to 2,700: liquidatable.
     */
    async function settledWriter() {
      const sys = await deployOptionsSystemWithoutFunding();
      const expiry = await fromNow(DAY);
      const { alice, call } = await writerAtInitialMargin(sys, expiry);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      await mineAt(sys, expiry);
      await setFeedPrice(sys.feeds.ETH, "3100");
      await setFeedPrice(sys.feeds.ETH, "2700");
      return { sys, alice, call, keeper };
    }

    it("is bid on by the keeper in the pass that settles the series (bidAndClose pays a settled position out)", async function () {
      const { sys, alice, call, keeper } = await loadFixture(settledWriter);
      const report = await keeper.step();
      expect(report.options?.seriesSettled).to.deep.equal([call]);
      expect(report.liquidatable).to.deep.equal([alice]);
      const bids = await sys.auction.queryFilter(sys.auction.filters.AuctionBid());
      expect(bids.length, "the keeper's bid in the pass that settled the series").to.equal(1);
    });

    it("costs its writer more the longer the bid waits: 6 minutes of payouts take the discount from 2% to 3.6%", async function () {
      const { sys, alice, call } = await loadFixture(settledWriter);
      const round = (await sys.feeds.ETH.latestRound()) - 1n;
      await sys.options.settleSeries(call, round);
      const bidder = await openAccount(sys, sys.bob, MarginMode.CROSS);
      await sys.accounts.connect(sys.bob).approve(sys.auction, bidder);
      await sys.auction.connect(sys.keeper).startAuction(alice);
      const loss = async () => {
        const before = (await sys.engine.health(alice)).equityMark;
        // The bid at the second its health was read: the discount moves by the second.
        await atLatestTimestamp();
        const tx = await sys.auction.connect(sys.bob).bidAndClose(alice, bidder, WAD, ethers.MaxUint256);
        const ev = eventOf(await tx.wait(), sys.auction, "AuctionBid");
        return {
          lost: before - (await sys.engine.health(alice)).equityMark,
          f: ev.args.fraction as bigint,
          d: ev.args.discount as bigint,
        };
      };
      const snap = await takeSnapshot();
      const now = await loss();
      await snap.restore();
      await mineAt(sys, BigInt(await time.latest()) + 360n);
      const later = await loss();
      // At once: a 2% discount, Alice loses 18.72 USD; after row 89's 30 payout transactions on L1
      // (~6 minutes): 3.6%, 28.76 USD.
      expect([now.d, later.d]).to.deep.equal([wad("0.02"), wad("0.036")]);
      expect(later.lost).to.be.gt(now.lost);
    });
  });

  describe("the pool's share price", function () {
    it("moves by at most 2 USDC units on a funding accrual, a series' settlement and its payouts", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const expiry = await fromNow(DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("100"));
      await tradeOption(sys.options, sys.carol, carol, call, wad("20"));
      await tradeOption(sys.options, sys.alice, alice, call, -wad("5"));
      const measure = async (action: () => Promise<unknown>) => {
        await time.setNextBlockTimestamp(BigInt(await time.latest()) + 1n);
        await ethers.provider.send("evm_mine", []);
        // Both reads and the action at one timestamp: funding and decay do not move between them.
        const t = BigInt(await time.latest()) + 1n;
        await time.setNextBlockTimestamp(t);
        await ethers.provider.send("evm_mine", []);
        const before = await sys.pool.totalAssets();
        await time.setNextBlockTimestamp(t);
        await action();
        const after = await sys.pool.totalAssets();
        return after - before;
      };
      await mineAt(sys, BigInt(await time.latest()) + 8n * HOUR);
      expect(await measure(() => sys.perps.accrueFunding(sys.markets.ETH))).to.be.within(-2n, 2n);
      await mineAt(sys, expiry);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "3100");
      expect(await measure(() => sys.options.settleSeries(call, round))).to.be.within(-2n, 2n);
      expect(await measure(() => sys.options.settleAccounts([alice, carol], call))).to.be.within(-2n, 2n);
    });
  });
});
