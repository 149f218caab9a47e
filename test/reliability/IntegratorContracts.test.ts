import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, eventOf, openAccount, wad } from "../shared/system";
import {
  deployOptionsSystemWithoutFunding,
  fromNow,
  listSeries,
  tradeOption,
  DAY,
  HOUR,
} from "../shared/options";
import { mintAndApprove } from "../shared/tokens";
import { refreshFeeds, refreshPrices, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";

/**
 * Review round 78: a developer building contracts on top of xmargin from the README, docs/decisions.md,
 * ARCHITECTURE.md and the interfaces' NatSpec only (contracts/test/IntegratorContracts.sol).
 */
const USDC = 10n ** 6n;

async function fixture() {
  const sys = await deployOptionsSystemWithoutFunding();
  const integrator = await ethers.deployContract("IntegratorVault", [sys.accounts, sys.vault]);
  return { ...sys, integrator };
}

async function vaultAccount(sys: Awaited<ReturnType<typeof fixture>>, usdc: bigint) {
  const id = await sys.integrator.createAccount.staticCall(MarginMode.CROSS);
  await sys.integrator.createAccount(MarginMode.CROSS);
  await mintAndApprove(sys.usdc, sys.deployer, await sys.integrator.getAddress(), usdc);
  await sys.integrator.deposit(id, sys.usdc, usdc);
  return id;
}

describe("Contracts built on xmargin: owning, buying and liquidating accounts", function () {
  describe("buying an account (ERC-721 transfer)", function () {
    it("carries no grant, approval or auction right of the seller; a receiver re-entering on receipt acts as the owner", async function () {
      const sys = await loadFixture(fixture);
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await sys.accounts.connect(sys.alice).setTrader(id, sys.bob, 1_000n * USDC);
      await sys.accounts.connect(sys.alice).setTrader(id, sys.auction, ethers.MaxUint256);
      await sys.accounts.connect(sys.alice).approve(sys.carol, id);
      await sys.accounts.connect(sys.alice).setApprovalForAll(sys.keeper, true);
      await sys.integrator.setReentry(sys.usdc, 1_000n * USDC, sys.lp.address);
      const buyer = await sys.integrator.getAddress();
      const tx = await sys.accounts
        .connect(sys.alice)
        ["safeTransferFrom(address,address,uint256)"](sys.alice, buyer, id);
      const ev = eventOf(await tx.wait(), sys.integrator, "Received");
      expect(ev.args.owner).to.equal(buyer);
      expect(await sys.usdc.balanceOf(buyer)).to.equal(1_000n * USDC);
      for (const who of [sys.alice, sys.bob, sys.carol, sys.keeper]) {
        expect(await sys.accounts.isAuthorized(id, who), who.address).to.equal(false);
      }
      expect(await sys.accounts.traderAllowance(id, sys.bob)).to.equal(0n);
      expect(await sys.accounts.traderAllowance(id, sys.auction)).to.equal(0n);
      expect(await sys.accounts.traderAllowance(id, sys.lp)).to.equal(1_000_000n);
      await expect(trade(sys.perps, sys.bob, id, sys.markets.ETH, wad("1")))
        .to.be.revertedWithCustomError(sys.accounts, "NotAuthorized")
        .withArgs(id, sys.bob.address);
      await expect(
        sys.vault.connect(sys.alice).withdraw(id, sys.usdc, 1n, sys.alice),
      ).to.be.revertedWithCustomError(sys.accounts, "NotAuthorized");
    });
  });

  describe("previews in the same transaction", function () {
    it("a perp trade fills at quoteTrade's price and fee", async function () {
      const sys = await loadFixture(fixture);
      const id = await vaultAccount(sys, 50_000n * USDC);
      await trade(
        sys.perps,
        sys.alice,
        await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]),
        sys.markets.ETH,
        wad("7"),
      );
      const tx = await sys.integrator.tradePerpPreviewed(sys.perps, id, sys.markets.ETH, -wad("10"));
      const r = await tx.wait();
      const q = eventOf(r, sys.integrator, "Previewed").args;
      const m = eventOf(r, sys.perps, "PositionModified").args;
      expect([m.fillPrice, m.fee]).to.deep.equal([q.quotedPrice, q.quotedFee]);
    });

    it("an option trade fills at quoteTrade's premium and fee", async function () {
      const sys = await loadFixture(fixture);
      const id = await vaultAccount(sys, 50_000n * USDC);
      const call = await listSeries(sys.options, "ETH", "3200", await fromNow(30n * DAY), true);
      const tx = await sys.integrator.tradeOptionPreviewed(sys.options, id, call, -wad("5"));
      const r = await tx.wait();
      const q = eventOf(r, sys.integrator, "Previewed").args;
      const o = eventOf(r, sys.options, "OptionTraded").args;
      expect([o.premiumPerContract, o.fee]).to.deep.equal([q.quotedPrice, q.quotedFee]);
    });

    it("health + quoteForMargin give the exact largest USDC withdrawal", async function () {
      const sys = await loadFixture(fixture);
      const id = await vaultAccount(sys, 10_000n * USDC);
      await sys.integrator.tradePerpPreviewed(sys.perps, id, sys.markets.ETH, wad("10"));
      const max = await sys.integrator.maxQuoteWithdraw(sys.engine, id);
      await expect(
        sys.integrator.withdraw(id, sys.usdc, max + 1n, sys.deployer),
      ).to.be.revertedWithCustomError(sys.engine, "InsufficientMargin");
      await sys.integrator.withdraw(id, sys.usdc, max, sys.deployer);
    });

    it("a bid fills and pays what quoteBid said, also with bidAndClose", async function () {
      const sys = await loadFixture(fixture);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
      await setFeedPrice(sys.feeds.ETH, "2650");
      await sys.auction.startAuction(alice);
      await time.increase(600);
      await refreshPrices(sys);
      const bidder = await vaultAccount(sys, 2_000n * USDC);
      await sys.integrator.setTrader(bidder, sys.auction, ethers.MaxUint256);
      const tx = await sys.integrator.bidPreviewed(sys.auction, alice, bidder, wad("0.2"), true);
      const r = await tx.wait();
      const q = eventOf(r, sys.integrator, "BidPreviewed").args;
      const d = eventOf(r, sys.integrator, "BidDone").args;
      expect([d.filled, d.payment]).to.deep.equal([q.filled, q.payment]);
    });
  });

  describe("views a contract needs a number from (documented in this round: IMarginEngine.health)", function () {
    it("health reverts with the feed's error on a stale price feed, also for a flat account, which still withdraws", async function () {
      const sys = await loadFixture(fixture);
      const flat = await vaultAccount(sys, 10_000n * USDC);
      const trader = await vaultAccount(sys, 20_000n * USDC);
      await sys.integrator.tradePerpPreviewed(sys.perps, trader, sys.markets.ETH, wad("5"));
      await time.increase(3_601);
      await expect(sys.engine.health(trader)).to.be.revertedWithCustomError(sys.router, "StalePrice");
      await expect(sys.engine.health(flat)).to.be.revertedWithCustomError(sys.router, "StalePrice");
      await expect(sys.engine.healthMany([flat, trader])).to.be.revertedWithCustomError(
        sys.router,
        "StalePrice",
      );
      await sys.integrator.withdraw(flat, sys.usdc, 10_000n * USDC, sys.deployer);
    });
  });

  describe("a liquidation bot contract (documented in this round: ILiquidationAuction.bid, bidAndClose)", function () {
    it("an ISOLATED bidder account cannot take a book of two markets", async function () {
      const sys = await loadFixture(fixture);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
      await trade(sys.perps, sys.alice, alice, sys.markets.BTC, wad("0.5"));
      await setFeedPrice(sys.feeds.ETH, "2400");
      await setFeedPrice(sys.feeds.BTC, "50000");
      await sys.auction.startAuction(alice);
      const bob = await openAccount(sys, sys.bob, MarginMode.ISOLATED, [[sys.usdc, 50_000n * USDC]]);
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, wad("0.1"), ethers.MaxUint256))
        .to.be.revertedWithCustomError(sys.engine, "IsolatedAccountMarketTaken")
        .withArgs(bob);
    });

    it("bidAndClose refuses a book holding an expired, unsettled series (SeriesExpired) that bid takes", async function () {
      const sys = await loadFixture(fixture);
      const call = await listSeries(sys.options, "ETH", "3000", await fromNow(2n * HOUR), true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 12_000n * USDC]]);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, -wad("10"));
      await tradeOption(sys.options, sys.carol, carol, call, wad("10"));
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
      await time.increase(2n * HOUR + 10n);
      await refreshFeeds(sys);
      await setFeedPrice(sys.feeds.ETH, "2500");
      await sys.auction.startAuction(alice);
      const bidder = await vaultAccount(sys, 5_000n * USDC);
      await sys.integrator.setTrader(bidder, sys.auction, ethers.MaxUint256);
      await expect(sys.integrator.bidPreviewed(sys.auction, alice, bidder, wad("0.1"), true))
        .to.be.revertedWithCustomError(sys.options, "SeriesExpired")
        .withArgs(call, (await sys.options.series(call)).expiry);
      await expect(sys.integrator.bidPreviewed(sys.auction, alice, bidder, wad("0.1"), false)).to.emit(
        sys.auction,
        "AuctionBid",
      );
    });
  });
});
