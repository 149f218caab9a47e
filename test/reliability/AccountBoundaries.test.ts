import { expect } from "chai";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  HOLDING_PERIOD,
  MarginMode,
  atLatestTimestamp,
  deploySystem,
  openAccount,
  wad,
  type System,
} from "../shared/system";
import { refreshFeeds, trade } from "../shared/perps";
import { assetId, setFeedPrice } from "../shared/oracles";
import { mintAndApprove } from "../shared/tokens";

/**
 * Account boundaries (review round 39): what others can put into an account, what a bidder's account is
 * checked for, isolation and the protocol's own accounts. The tests named "F…" failed before the
 * round's fixes, with the numbers in their titles.
 */
const USDC = 10n ** 6n;

/**
 * Bob: 10,000 USDC, long 20 ETH at 3,000; a day later ETH at `priceUsd`. Carol: a flat keeper account
 * with 50,000 USDC, the auction granted trading on it (as the keeper does) for bidAndClose.
 */
async function bobLong(priceUsd: string) {
  const sys = await deploySystem();
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
  await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("20"));
  await sys.accounts.connect(sys.carol).setTrader(carol, sys.auction, 2n ** 256n - 1n);
  await time.increase(HOLDING_PERIOD);
  await refreshFeeds(sys);
  await setFeedPrice(sys.feeds.ETH, priceUsd);
  return { sys, bob, carol };
}

const bobAt2600 = () => bobLong("2600");

/**
 * 1 satoshi of WBTC in Carol's keeper account, as a slice of a book holding WBTC leaves there (a
 * bidAndClose closes the slice's positions, not its collateral).
 */
async function satoshiOfWbtc(sys: System, carol: bigint): Promise<void> {
  await mintAndApprove(sys.wbtc, sys.carol, await sys.vault.getAddress(), 1n);
  await sys.vault.connect(sys.carol).deposit(carol, sys.wbtc, 1n);
}

/** An hour on: the BTC price feed is past its heartbeat, every other feed is posted again. */
async function btcStale(sys: System): Promise<void> {
  await time.increase(3_601);
  for (const feed of [sys.feeds.USDC, sys.feeds.ETH, sys.volFeeds.ETH, sys.volFeeds.BTC])
    await (await feed.updateAnswer(await feed.latestAnswer())).wait();
  await expect(sys.router.getPrice(assetId("BTC"))).to.be.revertedWithCustomError(sys.router, "StalePrice");
}

describe("Account boundaries", function () {
  describe("F1: a keeper's flat bidder account holding another token", function () {
    it("lets the keeper's bidAndClose of an ETH-only book through while the BTC feed is stale, although its flat account holds 1 satoshi of WBTC (before the fix: StalePrice, and the book waited for the backstop's 10%)", async function () {
      const { sys, bob, carol } = await loadFixture(bobAt2600);
      await satoshiOfWbtc(sys, carol);
      expect(await sys.vault.collateralTokens(carol)).to.include(await sys.wbtc.getAddress());

      await btcStale(sys);
      await sys.auction.connect(sys.keeper).startAuction(bob);
      // Bob holds no BTC and no BTC market: his book and his auction price without the BTC feed.
      const quote = await sys.auction.quoteBid(bob, wad("1"));
      expect(quote.filled).to.be.greaterThan(0n);

      // Before the fix: reverted StalePrice (BTC) in the bidder's final requireInitialMargin, which
      // priced the keeper's flat, debt-free account although its IM is 0 at any price.
      await expect(sys.auction.connect(sys.carol).bidAndClose(bob, carol, wad("1"), 2n ** 255n)).to.emit(
        sys.auction,
        "AuctionBid",
      );
      expect(await sys.engine.accountMarkets(carol)).to.deep.equal([]);
      expect(await sys.perps.positionSize(bob, sys.markets.ETH)).to.be.lessThan(wad("20"));
      // The keeper kept the discount, less the close's costs: more USDC than it started with.
      expect(await sys.vault.balanceOf(carol, sys.usdc)).to.be.greaterThan(50_000n * USDC);
    });

    it("still fails closed for a bidder that keeps the slice (plain bid) or holds quote debt", async function () {
      const { sys, bob, carol } = await loadFixture(bobAt2600);
      await satoshiOfWbtc(sys, carol);
      // Dave: 5 WETH and 1 satoshi of WBTC; a 1 ETH round trip's fees leave him flat with quote debt.
      const dave = await openAccount(sys, sys.lp, MarginMode.CROSS, [
        [sys.weth, wad("5")],
        [sys.wbtc, 1n],
      ]);
      await trade(sys.perps, sys.lp, dave, sys.markets.ETH, wad("1"));
      await trade(sys.perps, sys.lp, dave, sys.markets.ETH, -wad("1"));
      expect(await sys.vault.balanceOf(dave, sys.usdc)).to.be.lessThan(0n);
      await sys.accounts.connect(sys.lp).setTrader(dave, sys.auction, 2n ** 256n - 1n);
      await sys.auction.connect(sys.keeper).startAuction(bob);
      await btcStale(sys);
      // A plain bid keeps the slice: its margin needs every price the account holds.
      await expect(
        sys.auction.connect(sys.carol).bid(bob, carol, wad("1"), 2n ** 255n),
      ).to.be.revertedWithCustomError(sys.router, "StalePrice");
      // A bidder left flat with quote debt (a small slice does not repay it) is still margin-checked.
      await expect(
        sys.auction.connect(sys.lp).bidAndClose(bob, dave, wad("0.0001"), 2n ** 255n),
      ).to.be.revertedWithCustomError(sys.router, "StalePrice");
      // The one rule both the vault's withdrawals and the auction's bidders follow: nothing at risk means
      // no position, no quote debt and no auction, whatever else the account holds.
      expect(await sys.vault.hasNothingAtRisk(carol)).to.equal(true);
      expect(await sys.vault.hasNothingAtRisk(dave)).to.equal(false); // quote debt
      expect(await sys.vault.hasNothingAtRisk(bob)).to.equal(false); // a position, in auction
    });
    it("spares Bob the backstop's 10%: with the WBTC in the keeper's account, its bid a minute into the auction takes 32.46 USD of his mark equity, the absorb it left to the backstop 113.31 (before the fix the bid reverted)", async function () {
      const { sys, bob, carol } = await loadFixture(bobAt2600);
      await satoshiOfWbtc(sys, carol);
      await btcStale(sys);
      await sys.auction.connect(sys.keeper).startAuction(bob);
      const markOf = async () => (await sys.engine.health(bob)).equityMark;
      const before = await markOf();
      const snapshot = await takeSnapshot();
      // The keeper's bid, as it lands after the fix: at the discount of the moment.
      const start = (await sys.auction.auctions(bob)).startTime;
      await time.setNextBlockTimestamp(start + 60n);
      await sys.auction.connect(sys.carol).bidAndClose(bob, carol, wad("1"), 2n ** 255n);
      const lostToKeeper = before - (await markOf());
      await snapshot.restore();
      // Before the fix the keeper's bid reverted: nothing else bids, and the backstop absorbs at 10%.
      // The refreshes and the absorb are pinned to the half hour: Bob's funding accrues to the absorb, so
      // each second a loaded machine crossed before it added to his loss.
      await time.increase(1_800);
      for (const feed of [sys.feeds.USDC, sys.feeds.ETH, sys.volFeeds.ETH]) {
        await atLatestTimestamp();
        await (await feed.updateAnswer(await feed.latestAnswer())).wait();
      }
      await atLatestTimestamp();
      await sys.auction.absorb(bob);
      const lostToBackstop = before - (await markOf());
      // 32.46 USD to the keeper a minute in (2.27%), 113.31 to the backstop at 10%: 80.86 more.
      expect(lostToKeeper).to.be.closeTo(wad("32.46"), wad("0.01"));
      expect(lostToBackstop).to.be.closeTo(wad("113.31"), wad("0.01"));
    });
  });
  describe("F2: a stranger's dust in a trader's account", function () {
    // Before the fix anyone could deposit any listed token into any account: with a stranger's 1 satoshi
    // of WBTC in it, Alice's 1,000 USDC withdrawal and the close of her long (into Bob's short skew: a
    // premium-paying reduction reads her health) reverted StalePrice while the BTC feed was stale, and so
    // did her health; withdrawing the dust got her out until the stranger deposited it again.
    it("refuses a stranger's WBTC into Alice's account (NotAuthorized), so her withdrawal and premium-paying close go through while the BTC feed is stale", async function () {
      const sys = await deploySystem();
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.bob, bob, sys.markets.ETH, -wad("20"));
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("5"));
      await mintAndApprove(sys.wbtc, sys.carol, await sys.vault.getAddress(), 1n);
      await expect(sys.vault.connect(sys.carol).deposit(alice, sys.wbtc, 1n))
        .to.be.revertedWithCustomError(sys.accounts, "NotAuthorized")
        .withArgs(alice, sys.carol.address);
      // The quote stays open to anyone: a cure or a gift needs no price of its own.
      await mintAndApprove(sys.usdc, sys.carol, await sys.vault.getAddress(), USDC);
      await sys.vault.connect(sys.carol).deposit(alice, sys.usdc, USDC);

      await btcStale(sys);
      await sys.vault.connect(sys.alice).withdraw(alice, sys.usdc, 1_000n * USDC, sys.alice.address);
      await sys.perps.connect(sys.alice).closePosition(alice, sys.markets.ETH, 0n, 2n ** 64n);
      expect(await sys.perps.positionSize(alice, sys.markets.ETH)).to.equal(0n);
    });
  });

  describe("isolation and the protocol's accounts", function () {
    it("keeps an ISOLATED bidder to one market: a slice of another market reverts IsolatedAccountMarketTaken, a flat ISOLATED keeper account bids and closes", async function () {
      const sys = await deploySystem();
      const bob = await openAccount(sys, sys.bob, MarginMode.ISOLATED, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("20"));
      // Carol's ISOLATED account holds BTC; Dave's is flat; both let the auction trade.
      const carol = await openAccount(sys, sys.carol, MarginMode.ISOLATED, [[sys.usdc, 50_000n * USDC]]);
      await trade(sys.perps, sys.carol, carol, sys.markets.BTC, wad("0.1"));
      const dave = await openAccount(sys, sys.lp, MarginMode.ISOLATED, [[sys.usdc, 50_000n * USDC]]);
      await sys.accounts.connect(sys.lp).setTrader(dave, sys.auction, 2n ** 256n - 1n);
      await time.increase(HOLDING_PERIOD);
      await refreshFeeds(sys);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.connect(sys.keeper).startAuction(bob);
      await expect(sys.auction.connect(sys.carol).bid(bob, carol, wad("1"), 2n ** 255n))
        .to.be.revertedWithCustomError(sys.engine, "IsolatedAccountMarketTaken")
        .withArgs(carol);
      await sys.auction.connect(sys.lp).bidAndClose(bob, dave, wad("1"), 2n ** 255n);
      expect(await sys.engine.accountMarkets(dave)).to.deep.equal([]);
      expect((await sys.engine.accountMarkets(bob)).length).to.equal(1);
    });

    it("lets nobody trade, grant, transfer or auction the pool's, the backstop's or the insurance fund's account", async function () {
      const sys = await deploySystem();
      const pool = sys.poolAccountId;
      const backstop = await sys.auction.backstopAccountId();
      const insurance = await sys.insuranceFund.accountId();
      await expect(
        trade(sys.perps, sys.alice, pool, sys.markets.ETH, wad("1")),
      ).to.be.revertedWithCustomError(sys.perps, "PoolAccountCannotTrade");
      for (const id of [backstop, insurance]) {
        await expect(trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("1")))
          .to.be.revertedWithCustomError(sys.accounts, "NotAuthorized")
          .withArgs(id, sys.alice.address);
      }
      for (const id of [pool, backstop, insurance]) {
        await expect(
          sys.accounts.connect(sys.alice).setTrader(id, sys.alice, 1n),
        ).to.be.revertedWithCustomError(sys.accounts, "NotAuthorized");
        await expect(
          sys.accounts.connect(sys.alice).transferFrom(await sys.accounts.ownerOf(id), sys.alice, id),
        ).to.be.revertedWithCustomError(sys.accounts, "ERC721InsufficientApproval");
        await expect(sys.vault.connect(sys.alice).withdraw(id, sys.usdc, 1n, sys.alice)).to.be.reverted;
      }
      await expect(sys.auction.startAuction(pool)).to.be.revertedWithCustomError(
        sys.auction,
        "PoolNotLiquidatable",
      );
      await expect(sys.auction.startAuction(backstop)).to.be.revertedWithCustomError(
        sys.auction,
        "PoolNotLiquidatable",
      );
      await expect(sys.auction.startAuction(insurance)).to.be.revertedWithCustomError(
        sys.auction,
        "AccountHealthy",
      );
    });
  });
});
