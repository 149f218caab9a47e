import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, deploySystem, findEvent, openAccount, wad } from "../shared/system";
import { deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { advanceTo, aliceLongTwoEth, backstopLong100, trade } from "../shared/perps";
import { mintAndApprove } from "../shared/tokens";

/**
 * Round 143: the campaign's model (test/reliability/model.ts) gained six governance and keeper moves it
 * never made: option series parameters and skew, WETH's deposit cap and listing, the pool's exit delay,
 * pauses held across steps with liquidations inside them, and sweeps of a positive backstop quote.
 * 8,400 fresh steps met no violation; each spec pins, on a hand-picked state, the property the model
 * asserts after its action.
 */
const USDC = 10n ** 6n;
const DAY = 86_400n;

async function optionHolder() {
  const sys = await deployOptionsSystem();
  const seriesId = await listSeries(sys.options, "ETH", "3000", await fromNow(2n * DAY), true);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await tradeOption(sys.options, sys.alice, alice, seriesId, wad("5"));
  return { sys, seriesId, alice };
}

async function wethHolder() {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [
    [sys.usdc, 1_000n * USDC],
    [sys.weth, wad("2")],
  ]);
  await mintAndApprove(sys.weth, sys.alice, await sys.vault.getAddress(), wad("1"));
  return { sys, alice };
}

async function lpWithoutHoldingPeriod() {
  const sys = await deploySystem({ holdingPeriod: 0n });
  await mintAndApprove(sys.usdc, sys.bob, await sys.pool.getAddress(), 10_000n * USDC);
  await sys.pool.connect(sys.bob).deposit(10_000n * USDC, sys.bob.address);
  return { sys, shares: await sys.pool.balanceOf(sys.bob.address) };
}

describe("Reliability: the campaign's gaps (round 143)", function () {
  describe("seriesParams: series parameters and skew moved mid-run", function () {
    it("never refuses a holder's reduction for an OI cap cut below the open interest or a skew step, and throttles each per series", async function () {
      const { sys, seriesId, alice } = await loadFixture(optionHolder);
      const { spreadFactor, fee, insuranceFeeShare } = (await sys.options.series(seriesId)).params;
      const params = { spreadFactor, fee, insuranceFeeShare };
      await sys.options.setSeriesParams(seriesId, { ...params, maxOpenInterest: wad("1") });
      await expect(
        tradeOption(sys.options, sys.alice, alice, seriesId, wad("1")),
      ).to.be.revertedWithCustomError(sys.options, "OpenInterestCapExceeded");
      // The step is min(0.05, 2·spreadFactor) = 0.02 for the default 0.01 spread.
      await sys.options.setSkew(seriesId, wad("0.02"));
      await tradeOption(sys.options, sys.alice, alice, seriesId, -wad("2"));
      expect(await sys.options.positionSize(alice, seriesId)).to.equal(wad("3"));

      await expect(sys.options.setSkew(seriesId, wad("0.03"))).to.be.revertedWithCustomError(
        sys.options,
        "UpdateTooSoon",
      );
      await expect(
        sys.options.setSeriesParams(seriesId, { ...params, maxOpenInterest: wad("2") }),
      ).to.be.revertedWithCustomError(sys.options, "UpdateTooSoon");
      await advanceTo(sys, (await fromNow(12n * 3_600n)) + 1n);
      await expect(sys.options.setSkew(seriesId, wad("0.05"))).to.be.revertedWithCustomError(
        sys.options,
        "SkewOutOfBounds",
      );
      await sys.options.setSkew(seriesId, wad("0.04"));
      expect((await sys.options.series(seriesId)).skew).to.equal(wad("0.04"));
    });
  });

  describe("collateral: WETH's deposit cap and listing moved while accounts hold it", function () {
    it("refuses WETH deposits beyond a cap cut below the deposits, moves no health, and raises it at most twofold once a day", async function () {
      const { sys, alice } = await loadFixture(wethHolder);
      const total = await sys.vault.totalDeposits(sys.weth);
      const before = await sys.engine.health(alice);
      const cap = (total * 90n) / 100n;
      await sys.vault.setDepositCap(sys.weth, cap);
      const after = await sys.engine.health(alice);
      expect([after.equityMark, after.initialRequirement]).to.deep.equal([
        before.equityMark,
        before.initialRequirement,
      ]);
      await expect(
        sys.vault.connect(sys.alice).deposit(alice, sys.weth, wad("0.01")),
      ).to.be.revertedWithCustomError(sys.vault, "DepositCapExceeded");
      await sys.vault.connect(sys.alice).withdraw(alice, sys.weth, wad("0.5"), sys.alice.address);

      await expect(sys.vault.setDepositCap(sys.weth, 2n * cap + 1n)).to.be.revertedWithCustomError(
        sys.vault,
        "ParameterOutOfBounds",
      );
      await sys.vault.setDepositCap(sys.weth, 2n * cap);
      await sys.vault.connect(sys.alice).deposit(alice, sys.weth, wad("0.01"));
      await expect(sys.vault.setDepositCap(sys.weth, 2n * cap + 1n)).to.be.revertedWithCustomError(
        sys.vault,
        "UpdateTooSoon",
      );
      await sys.vault.setDepositCap(sys.weth, cap / 2n); // cuts are free
      expect((await sys.vault.collateralConfig(sys.weth)).depositCap).to.equal(cap / 2n);
    });

    it("refuses deposits of delisted WETH as TokenNotListed while its balance keeps its weight and withdraws, and takes them again once relisted", async function () {
      const { sys, alice } = await loadFixture(wethHolder);
      const before = await sys.engine.health(alice);
      await sys.vault.delistCollateral(sys.weth);
      const after = await sys.engine.health(alice);
      expect([after.equityMark, after.equityInitial]).to.deep.equal([
        before.equityMark,
        before.equityInitial,
      ]);
      await expect(
        sys.vault.connect(sys.alice).deposit(alice, sys.weth, wad("0.01")),
      ).to.be.revertedWithCustomError(sys.vault, "TokenNotListed");
      await sys.vault.connect(sys.alice).withdraw(alice, sys.weth, wad("0.5"), sys.alice.address);
      await sys.vault.relistCollateral(sys.weth);
      await sys.vault.connect(sys.alice).deposit(alice, sys.weth, wad("0.01"));
      expect(await sys.vault.balanceOf(alice, sys.weth)).to.equal(wad("1.51"));
    });
  });

  describe("lpProtection: a pool with an exit delay", function () {
    it("closes synchronous exits, opens a request's claim window after the delay, lets it be cancelled inside the delay, and steps cuts", async function () {
      const { sys, shares } = await loadFixture(lpWithoutHoldingPeriod);
      const lp = sys.pool.connect(sys.bob);
      await sys.pool.setExitDelay(3_600n);
      expect(await sys.pool.maxRedeem(sys.bob.address)).to.equal(0n);
      await expect(lp.redeem(shares / 2n, sys.bob.address, sys.bob.address)).to.be.revertedWithCustomError(
        sys.pool,
        "RedeemRequestRequired",
      );

      await lp.requestRedeem(shares / 2n);
      const [, assets, claimableAt] = await sys.pool.redeemRequest(sys.bob.address);
      expect(claimableAt).to.equal(BigInt(await time.latest()) + 3_600n);
      await expect(lp.claimRedeem(shares / 2n, sys.bob.address, 0n)).to.be.revertedWithCustomError(
        sys.pool,
        "NotClaimable",
      );
      await lp.cancelRedeemRequest();
      // Nothing moved the price: (nearly) every share comes back, at most the request's worth.
      expect(await sys.pool.balanceOf(sys.bob.address)).to.be.within(shares - 1n, shares);

      await lp.requestRedeem(shares / 4n);
      await advanceTo(sys, claimableAt + 3_600n);
      const paid = findEvent(
        (await (await lp.claimRedeem(shares / 4n, sys.bob.address, 0n)).wait())!.logs,
        sys.pool,
        "Withdraw",
      )!.args.assets as bigint;
      expect(paid)
        .to.be.gt(0n)
        .and.lte(assets / 2n);

      await sys.pool.setExitDelay(0n); // from an hour: a cut to 0 is allowed
      await sys.pool.setExitDelay(7_200n); // raises are free
      await expect(sys.pool.setExitDelay(0n)).to.be.revertedWithCustomError(
        sys.pool,
        "ProtectionCutTooLarge",
      );
      await expect(sys.pool.setExitDelay(3_600n)).to.be.revertedWithCustomError(sys.pool, "UpdateTooSoon");
    });
  });

  describe("hold: pauses held across steps", function () {
    it("starts, bids on, restarts once stale (no reward) and absorbs an auction while the engine and the vault are paused, refusing only new risk and withdrawals", async function () {
      const { sys, alice, bob } = await loadFixture(aliceLongTwoEth.bind(null, "2650"));
      await sys.engine.pause();
      await sys.vault.pause();
      await expect(
        trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("0.1")),
      ).to.be.revertedWithCustomError(sys.perps, "RiskIncreasePaused");
      await expect(
        sys.vault.connect(sys.alice).withdraw(alice, sys.usdc, 1n, sys.alice.address),
      ).to.be.revertedWithCustomError(sys.vault, "EnforcedPause");

      await expect(sys.auction.connect(sys.keeper).startAuction(alice)).to.emit(
        sys.auction,
        "AuctionStarted",
      );
      await sys.auction.connect(sys.bob).bid(alice, bob, wad("0.01"), ethers.MaxUint256);
      const { startTime } = await sys.auction.auctions(alice);
      const duration = BigInt((await sys.auction.params()).duration);
      await advanceTo(sys, startTime + 2n * duration - 1n);
      await expect(sys.auction.connect(sys.keeper).startAuction(alice)).to.be.revertedWithCustomError(
        sys.auction,
        "AuctionAlreadyActive",
      );
      await advanceTo(sys, startTime + 2n * duration); // stale from here
      const restart = await (await sys.auction.connect(sys.keeper).startAuction(alice)).wait();
      expect(findEvent(restart!.logs, sys.auction, "AuctionStarted")!.args.flagReward).to.equal(0n);

      await advanceTo(sys, await sys.auction.absorbableAt(alice));
      await expect(sys.auction.absorb(alice)).to.emit(sys.auction, "AuctionBid");
      expect(await sys.engine.paused()).to.equal(true);
      expect(await sys.vault.paused()).to.equal(true);
    });
  });

  describe("backstopTopUp: a positive backstop quote swept", function () {
    it("sweeps all of a flat backstop's positive quote to the pool's account, leaving it at 0", async function () {
      const sys = await loadFixture(deploySystem);
      const backstop = await sys.auction.backstopAccountId();
      await mintAndApprove(sys.usdc, sys.bob, await sys.vault.getAddress(), 500n * USDC);
      await sys.vault.connect(sys.bob).deposit(backstop, sys.usdc, 500n * USDC);
      const pool = await sys.vault.balanceOf(sys.poolAccountId, sys.usdc);
      await expect(sys.auction.sweepBackstopQuote())
        .to.emit(sys.auction, "BackstopQuoteSwept")
        .withArgs(500n * USDC);
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(0n);
      expect(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)).to.equal(pool + 500n * USDC);
    });

    it("sweeps from a backstop with a book exactly min(balance, the quote for its IM surplus), leaving it at its IM", async function () {
      const { sys, backstop } = await loadFixture(backstopLong100);
      // The absorb left cash (the fund's cover) below the book's IM: it stays to pay the book's losses.
      const below = await sys.engine.health(backstop);
      expect(below.equityInitial).to.be.lt(below.initialRequirement);
      await expect(sys.auction.sweepBackstopQuote()).not.to.emit(sys.auction, "BackstopQuoteSwept");
      await mintAndApprove(sys.usdc, sys.bob, await sys.vault.getAddress(), 100_000n * USDC);
      await sys.vault.connect(sys.bob).deposit(backstop, sys.usdc, 100_000n * USDC);
      const [balance, health] = [
        await sys.vault.balanceOf(backstop, sys.usdc),
        await sys.engine.health(backstop),
      ];
      const surplus = await sys.vault.quoteForMargin(health.equityInitial - health.initialRequirement);
      const expected = balance < surplus ? balance : surplus;
      expect(expected).to.be.gt(0n).and.lt(balance);
      await expect(sys.auction.sweepBackstopQuote())
        .to.emit(sys.auction, "BackstopQuoteSwept")
        .withArgs(expected);
      const after = await sys.engine.health(backstop);
      expect(after.equityInitial).to.be.gte(after.initialRequirement);
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(balance - expected);
    });
  });
});
