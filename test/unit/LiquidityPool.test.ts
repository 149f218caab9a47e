import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  EXIT_DELAY,
  HOLDING_PERIOD,
  MarginMode,
  deploySystem,
  fundInsurance,
  openAccount,
  wad,
  type System,
  atLatestTimestamp,
} from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { advanceTo, mineAt, poolShortTen, refreshFeeds, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { DAY } from "../shared/options";

const USDC = 10n ** 6n;
// The fixture's LP deposited 1,000,000 USDC; with 6 virtual decimals a share is 1e-12 USDC.
const POOL_CAPITAL = 1_000_000n * USDC;

describe("LiquidityPool", function () {
  it("deposits LP capital into its own margin account", async function () {
    const { pool, vault, usdc, poolAccountId, lp } = await loadFixture(deploySystem);
    expect(await vault.balanceOf(poolAccountId, usdc)).to.equal(POOL_CAPITAL);
    expect(await pool.totalAssets()).to.equal(POOL_CAPITAL);
    expect(await pool.balanceOf(lp)).to.equal(POOL_CAPITAL * 10n ** 6n);
    expect(await pool.positionValue()).to.equal(0n);
  });

  it("prices a second LP's shares at the pool's equity", async function () {
    const { pool, usdc, alice } = await loadFixture(deploySystem);
    await mintAndApprove(usdc, alice, await pool.getAddress(), 500n * USDC);
    await pool.connect(alice).deposit(500n * USDC, alice);
    expect(await pool.convertToAssets(await pool.balanceOf(alice))).to.equal(500n * USDC);
    expect(await pool.totalAssets()).to.equal(POOL_CAPITAL + 500n * USDC);
  });

  it("mints exact shares with mint() and redeems them back after the holding period", async function () {
    const sys = await loadFixture(deploySystem);
    const { pool, usdc, alice } = sys;
    const shares = 250n * USDC * 10n ** 6n;
    await mintAndApprove(usdc, alice, await pool.getAddress(), 250n * USDC);
    await pool.connect(alice).mint(shares, alice);
    await time.increase(HOLDING_PERIOD);
    await refreshFeeds(sys);
    await expect(pool.connect(alice).redeem(shares, alice, alice)).to.changeTokenBalance(
      usdc,
      alice,
      250n * USDC,
    );
  });

  it("withdraws through the vault to the receiver and burns the owner's shares", async function () {
    const { pool, usdc, lp, bob } = await loadFixture(deploySystem);
    await expect(pool.connect(lp).withdraw(100n * USDC, bob, lp)).to.changeTokenBalance(
      usdc,
      bob,
      100n * USDC,
    );
    expect(await pool.totalAssets()).to.equal(POOL_CAPITAL - 100n * USDC);
  });

  it("lets an approved spender withdraw for the owner, and nobody else", async function () {
    const { pool, usdc, lp, bob, carol } = await loadFixture(deploySystem);
    await expect(pool.connect(carol).withdraw(1n * USDC, carol, lp)).to.be.revertedWithCustomError(
      pool,
      "ERC20InsufficientAllowance",
    );
    await pool.connect(lp).approve(bob, ethers.MaxUint256);
    await expect(pool.connect(bob).withdraw(1n * USDC, bob, lp)).to.changeTokenBalance(usdc, bob, 1n * USDC);
  });

  it("caps maxWithdraw and maxRedeem at the owner's share when the pool has no positions", async function () {
    const { pool, lp, alice } = await loadFixture(deploySystem);
    expect(await pool.maxWithdraw(lp)).to.equal(POOL_CAPITAL);
    expect(await pool.maxRedeem(lp)).to.equal(await pool.balanceOf(lp));
    expect(await pool.maxWithdraw(alice)).to.equal(0n);
  });

  it("refuses withdrawals above maxWithdraw", async function () {
    const { pool, lp } = await loadFixture(deploySystem);
    await expect(pool.connect(lp).withdraw(POOL_CAPITAL + 1n, lp, lp)).to.be.revertedWithCustomError(
      pool,
      "ERC4626ExceededMaxWithdraw",
    );
  });

  it("makes a first-depositor donation attack unprofitable (virtual shares)", async function () {
    const { manager, vault, accounts, engine, usdc, alice, bob } = await loadFixture(deploySystem);
    const fresh = await ethers.deployContract("LiquidityPool", [
      manager,
      vault,
      accounts,
      engine,
      "fresh",
      "F",
    ]);
    // Attacker deposits 1 wei, then donates 10,000 USDC to the pool's margin account.
    await mintAndApprove(usdc, alice, await fresh.getAddress(), 1n);
    await fresh.connect(alice).deposit(1n, alice);
    await mintAndApprove(usdc, alice, await vault.getAddress(), 10_000n * USDC);
    await vault.connect(alice).deposit(await fresh.accountId(), usdc, 10_000n * USDC);
    // The victim's 1,000 USDC still buys shares worth ≥ 99.9% of it.
    await mintAndApprove(usdc, bob, await fresh.getAddress(), 1_000n * USDC);
    await fresh.connect(bob).deposit(1_000n * USDC, bob);
    expect(await fresh.convertToAssets(await fresh.balanceOf(bob))).to.be.gte(999n * USDC);
  });
});

describe("LiquidityPool holding period", function () {
  /** Alice deposits 1,000 USDC: her shares are locked for a day. */
  async function aliceDeposited() {
    const sys = await deploySystem();
    await mintAndApprove(sys.usdc, sys.alice, await sys.pool.getAddress(), 1_000n * USDC);
    await sys.pool.connect(sys.alice).deposit(1_000n * USDC, sys.alice);
    return { sys, mintedAt: BigInt(await time.latest()), shares: await sys.pool.balanceOf(sys.alice) };
  }

  it("locks minted shares: redeem, withdraw and transfer revert with SharesLocked until the period ends", async function () {
    const { sys, mintedAt, shares } = await loadFixture(aliceDeposited);
    const { pool, usdc, alice, bob } = sys;
    const unlocksAt = mintedAt + HOLDING_PERIOD;
    expect(await pool.sharesLock(alice)).to.deep.equal([shares, unlocksAt]);
    expect([
      await pool.unlockedShares(alice),
      await pool.maxRedeem(alice),
      await pool.maxWithdraw(alice),
    ]).to.deep.equal([0n, 0n, 0n]);
    const attempts = [
      () => pool.connect(alice).redeem(shares, alice, alice),
      () => pool.connect(alice).withdraw(1_000n * USDC, alice, alice),
      () => pool.connect(alice).transfer(bob, shares),
    ];
    for (const attempt of attempts) {
      await expect(attempt())
        .to.be.revertedWithCustomError(pool, "SharesLocked")
        .withArgs(alice.address, shares, 0n, unlocksAt);
    }
    // More than the whole balance is ERC-4626's refusal, lock or not.
    await expect(pool.connect(alice).withdraw(ethers.MaxUint256, alice, alice)).to.be.revertedWithCustomError(
      pool,
      "ERC4626ExceededMaxWithdraw",
    );
    // One second before the end they are still locked; at the end they are free.
    await advanceTo(sys, unlocksAt - 1n);
    await expect(pool.connect(alice).redeem(1n, alice, alice))
      .to.be.revertedWithCustomError(pool, "SharesLocked")
      .withArgs(alice.address, 1n, 0n, unlocksAt);
    await time.setNextBlockTimestamp(unlocksAt);
    await expect(pool.connect(alice).redeem(shares, alice, alice)).to.changeTokenBalance(
      usdc,
      alice,
      1_000n * USDC,
    );
  });

  it("locks only the new shares: an LP's older shares stay free, and shares received by transfer are free", async function () {
    const { sys } = await loadFixture(aliceDeposited);
    const { pool, usdc, lp, bob } = sys;
    const seed = await pool.balanceOf(lp);
    await mintAndApprove(usdc, lp, await pool.getAddress(), 500n * USDC);
    await pool.connect(lp).deposit(500n * USDC, lp);
    // The new shares' lock ends a holding period after the deposit's block (not the latest block's: the
    // transfer below takes the wall clock's next second whenever one ticks over in between).
    const depositedAt = BigInt(await time.latest());
    expect(await pool.unlockedShares(lp)).to.equal(seed);
    expect(await pool.maxRedeem(lp)).to.equal(seed);
    await pool.connect(lp).transfer(bob, seed / 2n);
    expect(await pool.unlockedShares(bob)).to.equal(seed / 2n);
    await expect(pool.connect(lp).transfer(bob, seed / 2n + 1n))
      .to.be.revertedWithCustomError(pool, "SharesLocked")
      .withArgs(lp.address, seed / 2n + 1n, seed / 2n, depositedAt + HOLDING_PERIOD);
  });

  it("averages a running lock's end by shares, so a gift of dust barely moves it", async function () {
    const { sys, mintedAt, shares } = await loadFixture(aliceDeposited);
    const { pool, usdc, alice, bob } = sys;
    await time.increaseTo(mintedAt + HOLDING_PERIOD / 2n);
    await refreshFeeds(sys);
    // Bob deposits 1 USDC for Alice half-way: (shares·(t0 + P) + dust·(t0 + 1.5·P)) / (shares + dust), up.
    await mintAndApprove(usdc, bob, await pool.getAddress(), 1n * USDC);
    await pool.connect(bob).deposit(1n * USDC, alice);
    const giftedAt = BigInt(await time.latest());
    const dust = (await pool.balanceOf(alice)) - shares;
    const weighted = shares * (mintedAt + HOLDING_PERIOD) + dust * (giftedAt + HOLDING_PERIOD);
    const unlocksAt = (weighted + shares + dust - 1n) / (shares + dust);
    expect(await pool.sharesLock(alice)).to.deep.equal([shares + dust, unlocksAt]);
    // 1 USDC beside 1,000 adds a thousandth of the half day left: 44 seconds, not a day.
    expect(unlocksAt - (mintedAt + HOLDING_PERIOD)).to.equal(44n);
  });

  // Review of session 11, finding 1: with the end kept in whole seconds and rounded up, every 1-share
  // mint (1 wei of USDC) pushed it back a second, so one per block held any deposit back for ever.
  it("cannot be held back by mints of dust: 100 one-share mints to Alice move her end by under a second", async function () {
    const { sys, mintedAt, shares } = await loadFixture(aliceDeposited);
    const { pool, usdc, alice, bob } = sys;
    const unlocksAt = mintedAt + HOLDING_PERIOD;
    await mintAndApprove(usdc, bob, await pool.getAddress(), 1n * USDC);
    await advanceTo(sys, unlocksAt - 100n);
    // One mint a second, whatever the wall clock does: all 100 land before the lock's end.
    for (let i = 0n; i < 100n; i++) {
      await time.setNextBlockTimestamp(unlocksAt - 100n + i);
      await pool.connect(bob).mint(1n, alice);
    }
    // The end moved by 100 × ~2^-32 s; the view rounds it up to the next whole second.
    expect(await pool.sharesLock(alice)).to.deep.equal([shares + 100n, unlocksAt + 1n]);
    await time.setNextBlockTimestamp(unlocksAt + 1n);
    await expect(pool.connect(alice).redeem(shares + 100n, alice, alice)).to.emit(pool, "Withdraw");
  });

  it("starts a new lock once the last one is over", async function () {
    const { sys, mintedAt, shares } = await loadFixture(aliceDeposited);
    const { pool, usdc, alice } = sys;
    await time.increaseTo(mintedAt + HOLDING_PERIOD);
    await refreshFeeds(sys);
    await mintAndApprove(usdc, alice, await pool.getAddress(), 1_000n * USDC);
    await pool.connect(alice).deposit(1_000n * USDC, alice);
    const fresh = (await pool.balanceOf(alice)) - shares;
    expect(await pool.sharesLock(alice)).to.deep.equal([fresh, BigInt(await time.latest()) + HOLDING_PERIOD]);
    expect(await pool.unlockedShares(alice)).to.equal(shares);
  });

  it("is set by the risk manager only, up to 7 days; locks already running keep their time", async function () {
    const { sys, mintedAt, shares } = await loadFixture(aliceDeposited);
    const { pool, usdc, alice, bob } = sys;
    await expect(pool.connect(alice).setHoldingPeriod(0n)).to.be.revertedWithCustomError(
      pool,
      "AccessManagedUnauthorized",
    );
    await expect(pool.setHoldingPeriod(7n * HOLDING_PERIOD + 1n))
      .to.be.revertedWithCustomError(pool, "HoldingPeriodTooLong")
      .withArgs(7n * HOLDING_PERIOD + 1n);
    const half = HOLDING_PERIOD / 2n;
    await expect(pool.setHoldingPeriod(half)).to.emit(pool, "HoldingPeriodSet").withArgs(half);
    expect(await pool.sharesLock(alice)).to.deep.equal([shares, mintedAt + HOLDING_PERIOD]);
    // A new deposit gets the new period.
    await mintAndApprove(usdc, bob, await pool.getAddress(), 1_000n * USDC);
    await pool.connect(bob).deposit(1_000n * USDC, bob);
    expect((await pool.sharesLock(bob))[1]).to.equal(BigInt(await time.latest()) + half);
    await expect(pool.setHoldingPeriod(7n * HOLDING_PERIOD)).to.emit(pool, "HoldingPeriodSet");
  });

  it("reaches 0 only in daily halving cuts: then a new deposit is free at once", async function () {
    const { sys } = await loadFixture(aliceDeposited);
    const { pool, usdc, bob } = sys;
    // 12 h, 6 h, 3 h, 1.5 h, 45 min, 0: six days.
    let period = HOLDING_PERIOD;
    while (period !== 0n) {
      period = period > 3_600n ? period / 2n : 0n;
      await pool.setHoldingPeriod(period);
      await time.increase(DAY);
    }
    expect(await pool.holdingPeriod()).to.equal(0n);
    await refreshFeeds(sys);
    await mintAndApprove(usdc, bob, await pool.getAddress(), 1_000n * USDC);
    await pool.connect(bob).deposit(1_000n * USDC, bob);
    await expect(pool.connect(bob).redeem(await pool.balanceOf(bob), bob, bob)).to.changeTokenBalance(
      usdc,
      bob,
      1_000n * USDC,
    );
  });
});

describe("LiquidityPool redeem requests (exit delay)", function () {
  const CLAIM_WINDOW = 7_200n;

  /**
   * The deployments' one-day exit delay; Alice is long 10 ETH against the pool, so the share price
   * moves with ETH; the LP (1,000,000 USDC, free shares) asks for 100,000 USDC worth of shares.
   */
  async function lpRequested() {
    const sys = await deploySystem();
    await sys.pool.setExitDelay(EXIT_DELAY);
    const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
    await trade(sys.perps, sys.alice, account, sys.markets.ETH, wad("10"));
    const shares = await sys.pool.convertToShares(100_000n * USDC);
    await atLatestTimestamp();
    await sys.pool.connect(sys.lp).requestRedeem(shares);
    const [, assets, claimableAt] = await sys.pool.redeemRequest(sys.lp);
    return { sys, shares, assets, claimableAt };
  }

  it("replaces ERC-4626's immediate exits: withdraw and redeem revert with RedeemRequestRequired, max* read 0", async function () {
    const { sys } = await loadFixture(lpRequested);
    const { pool, lp } = sys;
    expect([await pool.maxWithdraw(lp), await pool.maxRedeem(lp)]).to.deep.equal([0n, 0n]);
    await expect(pool.connect(lp).withdraw(USDC, lp, lp))
      .to.be.revertedWithCustomError(pool, "RedeemRequestRequired")
      .withArgs(EXIT_DELAY);
    await expect(pool.connect(lp).redeem(1n, lp, lp))
      .to.be.revertedWithCustomError(pool, "RedeemRequestRequired")
      .withArgs(EXIT_DELAY);
  });

  it("moves the requested shares into the pool at their worth then, claimable after the delay for two hours", async function () {
    const { sys, shares, assets, claimableAt } = await loadFixture(lpRequested);
    const { pool, lp } = sys;
    const requestedAt = BigInt(await time.latest());
    expect(claimableAt).to.equal(requestedAt + EXIT_DELAY);
    expect(await pool.redeemRequest(lp)).to.deep.equal([
      shares,
      assets,
      claimableAt,
      claimableAt + CLAIM_WINDOW,
    ]);
    expect(await pool.balanceOf(await pool.getAddress())).to.equal(shares);
    // Worth 100,000 USDC to the unit when asked (convertToShares rounds down, so a unit less at most).
    expect(100_000n * USDC - assets <= 1n).to.equal(true);
    await expect(pool.connect(lp).claimRedeem(shares, lp, 0n))
      .to.be.revertedWithCustomError(pool, "NotClaimable")
      .withArgs(lp.address, claimableAt, claimableAt + CLAIM_WINDOW);
  });

  it("pays the share price of the request when it has risen since: the rise stays with the LPs who carried the risk", async function () {
    const { sys, shares, assets, claimableAt } = await loadFixture(lpRequested);
    const { pool, usdc, feeds, lp } = sys;
    // Alice's long loses 1,000 USD: the pool gains it, and the requested shares are worth more now.
    await setFeedPrice(feeds.ETH, "2900");
    await mineAt(sys, claimableAt);
    const before = await pool.totalAssets();
    expect(await pool.convertToAssets(shares)).to.be.greaterThan(assets);
    await time.setNextBlockTimestamp(claimableAt); // the views' second: no funding in between
    await expect(pool.connect(lp).claimRedeem(shares, lp, assets)).to.changeTokenBalance(usdc, lp, assets);
    expect(await pool.totalAssets()).to.equal(before - assets);
    expect(await pool.redeemRequest(lp)).to.deep.equal([0n, 0n, 0n, 0n]);
    expect(await pool.balanceOf(await pool.getAddress())).to.equal(0n);
  });

  it("pays today's lower share price when a loss landed between the request and the claim", async function () {
    const { sys, shares, assets, claimableAt } = await loadFixture(lpRequested);
    const { pool, usdc, feeds, lp } = sys;
    // Alice's long gains 1,000 USD: the pool loses it.
    await setFeedPrice(feeds.ETH, "3100");
    await advanceTo(sys, claimableAt + 60n);
    await ethers.provider.send("evm_mine", []);
    const now = await pool.convertToAssets(shares);
    expect(now).to.be.lessThan(assets);
    expect(await pool.previewClaim(lp, shares)).to.equal(now);
    await atLatestTimestamp();
    await expect(pool.connect(lp).claimRedeem(shares, lp, now + 1n))
      .to.be.revertedWithCustomError(pool, "SlippageExceeded")
      .withArgs(now, now + 1n);
    await atLatestTimestamp();
    const claim = pool.connect(lp).claimRedeem(shares, lp, now);
    await expect(claim).to.emit(pool, "Withdraw").withArgs(lp.address, lp.address, lp.address, now, shares);
    await expect(claim).to.changeTokenBalance(usdc, lp, now);
  });

  it("claims part of a request at the request's price per share and keeps the rest claimable", async function () {
    const { sys, shares, assets, claimableAt } = await loadFixture(lpRequested);
    const { pool, feeds, bob, lp } = sys;
    await setFeedPrice(feeds.ETH, "2900"); // the price at the request is the lower one
    await advanceTo(sys, claimableAt);
    await pool.connect(lp).claimRedeem(shares / 4n, bob, 0n);
    const part = (assets * (shares / 4n)) / shares;
    expect(await sys.usdc.balanceOf(bob)).to.equal(part);
    expect(await pool.redeemRequest(lp)).to.deep.equal([
      shares - shares / 4n,
      assets - part,
      claimableAt,
      claimableAt + CLAIM_WINDOW,
    ]);
    await expect(pool.connect(lp).claimRedeem(shares, lp, 0n))
      .to.be.revertedWithCustomError(pool, "InvalidRedeemShares")
      .withArgs(shares, shares - shares / 4n);
  });

  it("can be cancelled at any time for the shares it is worth: after a loss all of them, after a rise fewer", async function () {
    const { sys, shares, assets, claimableAt } = await loadFixture(lpRequested);
    const { pool, feeds, lp } = sys;
    const balance = await pool.balanceOf(lp);
    const snapshot = await takeSnapshot();
    // Alice's long gains 1,000: the pool loses, and the requested shares are worth less than asked.
    await setFeedPrice(feeds.ETH, "3100");
    await expect(pool.connect(lp).cancelRedeemRequest())
      .to.emit(pool, "RedeemRequestCancelled")
      .withArgs(lp.address, shares, 0n);
    expect(await pool.balanceOf(lp)).to.equal(balance + shares);
    await snapshot.restore();
    // Alice's long loses 1,000: the pool gains. Cancelled in its claim window, the request comes back as
    // the shares its 100,000 USDC buy now; the rest are burned, their gain left with the other LPs.
    await setFeedPrice(feeds.ETH, "2900");
    await mineAt(sys, claimableAt);
    await time.setNextBlockTimestamp(claimableAt);
    const receipt = await (await pool.connect(lp).cancelRedeemRequest()).wait();
    const [, back, burned] = pool.interface.parseLog(receipt!.logs.at(-1)!)!.args;
    expect(back + burned).to.equal(shares);
    expect(burned).to.be.greaterThan(0n);
    expect(await pool.balanceOf(lp)).to.equal(balance + back);
    // Worth the request's 100,000 USDC after the burn, to the unit.
    expect(assets - (await pool.convertToAssets(back))).to.be.within(0n, 1n);
    await expect(pool.connect(lp).cancelRedeemRequest())
      .to.be.revertedWithCustomError(pool, "NoRedeemRequest")
      .withArgs(lp.address);
  });

  it("cannot be claimed after its two-hour window, only cancelled", async function () {
    const { sys, shares, claimableAt } = await loadFixture(lpRequested);
    const { pool, lp } = sys;
    const until = claimableAt + CLAIM_WINDOW;
    expect(await pool.redeemRequest(lp)).to.deep.include.members([claimableAt, until]);
    await advanceTo(sys, until + 1n);
    await expect(pool.connect(lp).claimRedeem(shares, lp, 0n))
      .to.be.revertedWithCustomError(pool, "NotClaimable")
      .withArgs(lp.address, claimableAt, until);
    await expect(pool.connect(lp).cancelRedeemRequest()).to.emit(pool, "RedeemRequestCancelled");
  });

  it("refuses a second request, zero shares and locked shares", async function () {
    const { sys, claimableAt } = await loadFixture(lpRequested);
    const { pool, usdc, alice, lp } = sys;
    await expect(pool.connect(lp).requestRedeem(1n))
      .to.be.revertedWithCustomError(pool, "RedeemRequestPending")
      .withArgs(lp.address, claimableAt);
    await expect(pool.connect(alice).requestRedeem(0n))
      .to.be.revertedWithCustomError(pool, "InvalidRedeemShares")
      .withArgs(0n, 0n);
    await mintAndApprove(usdc, alice, await pool.getAddress(), 1_000n * USDC);
    await pool.connect(alice).deposit(1_000n * USDC, alice);
    await expect(
      pool.connect(alice).requestRedeem(await pool.balanceOf(alice)),
    ).to.be.revertedWithCustomError(pool, "SharesLocked");
    await expect(pool.connect(alice).claimRedeem(1n, alice, 0n))
      .to.be.revertedWithCustomError(pool, "NoRedeemRequest")
      .withArgs(alice.address);
    await expect(pool.previewClaim(alice, 1n))
      .to.be.revertedWithCustomError(pool, "NoRedeemRequest")
      .withArgs(alice.address);
  });

  it("previews a claim of no shares or of more than requested as InvalidRedeemShares, as claimRedeem refuses it", async function () {
    const { sys, shares } = await loadFixture(lpRequested);
    const { pool, lp } = sys;
    await expect(pool.previewClaim(lp, 0n))
      .to.be.revertedWithCustomError(pool, "InvalidRedeemShares")
      .withArgs(0n, shares);
    await expect(pool.previewClaim(lp, shares + 1n))
      .to.be.revertedWithCustomError(pool, "InvalidRedeemShares")
      .withArgs(shares + 1n, shares);
  });

  it("refuses a request worth nothing, which no later share price could pay", async function () {
    const { pool, lp } = await loadFixture(deploySystem);
    // One share is 1e-12 USDC: 0 units at any price the pool can reach.
    await expect(pool.connect(lp).requestRedeem(1n))
      .to.be.revertedWithCustomError(pool, "InvalidRedeemShares")
      .withArgs(1n, 0n);
  });

  it("pays a claim only out of the pool's free margin, and nothing while the vault is paused", async function () {
    const { sys, shares, claimableAt } = await loadFixture(lpRequested);
    const { pool, vault, lp } = sys;
    await advanceTo(sys, claimableAt);
    await vault.pause();
    const assets = await pool.previewClaim(lp, shares);
    await time.setNextBlockTimestamp(claimableAt);
    await expect(pool.connect(lp).claimRedeem(shares, lp, 0n))
      .to.be.revertedWithCustomError(pool, "ClaimUnavailable")
      .withArgs(assets, 0n);
  });

  it("is set by the risk manager only, up to 7 days", async function () {
    const { pool, alice } = await loadFixture(deploySystem);
    await expect(pool.connect(alice).setExitDelay(EXIT_DELAY)).to.be.revertedWithCustomError(
      pool,
      "AccessManagedUnauthorized",
    );
    await expect(pool.setExitDelay(7n * 86_400n + 1n))
      .to.be.revertedWithCustomError(pool, "ExitDelayTooLong")
      .withArgs(7n * 86_400n + 1n);
    await expect(pool.setExitDelay(7n * 86_400n))
      .to.emit(pool, "ExitDelaySet")
      .withArgs(7n * 86_400n);
  });
});

describe("LiquidityPool slippage limits", function () {
  it("refuses a deposit or a mint that the share price moved past the limit, and fills one within it", async function () {
    const { pool, feeds, bob } = await loadFixture(poolShortTen);
    const amount = 1_000n * USDC;
    const quotedShares = await pool.previewDeposit(amount);
    const quotedAssets = await pool.previewMint(quotedShares);
    // Alice's long loses 1,000 USD: the pool gains it and a share costs more than quoted.
    await setFeedPrice(feeds.ETH, "2900");
    await atLatestTimestamp(); // no funding between the views and the trades
    const shares = await pool.previewDeposit(amount);
    expect(shares).to.be.lessThan(quotedShares);
    await expect(pool.connect(bob).depositWithLimit(amount, bob, quotedShares))
      .to.be.revertedWithCustomError(pool, "SlippageExceeded")
      .withArgs(shares, quotedShares);
    await atLatestTimestamp();
    await expect(pool.connect(bob).mintWithLimit(quotedShares, bob, quotedAssets))
      .to.be.revertedWithCustomError(pool, "SlippageExceeded")
      .withArgs(await pool.previewMint(quotedShares), quotedAssets);
    await atLatestTimestamp();
    await expect(pool.connect(bob).depositWithLimit(amount, bob, shares))
      .to.emit(pool, "Deposit")
      .withArgs(bob.address, bob.address, amount, shares);
  });

  it("refuses a withdrawal or a redemption that the share price moved past the limit, and fills one within it", async function () {
    const { pool, feeds, lp } = await loadFixture(poolShortTen);
    const amount = 1_000n * USDC;
    const quotedShares = await pool.previewWithdraw(amount);
    const quotedAssets = await pool.previewRedeem(quotedShares);
    // Alice's long gains 1,000 USD: the pool loses it and a share is worth less than quoted.
    await setFeedPrice(feeds.ETH, "3100");
    await atLatestTimestamp();
    await expect(pool.connect(lp).withdrawWithLimit(amount, lp, lp, quotedShares))
      .to.be.revertedWithCustomError(pool, "SlippageExceeded")
      .withArgs(await pool.previewWithdraw(amount), quotedShares);
    await atLatestTimestamp();
    const assets = await pool.previewRedeem(quotedShares);
    expect(assets).to.be.lessThan(quotedAssets);
    await expect(pool.connect(lp).redeemWithLimit(quotedShares, lp, lp, quotedAssets))
      .to.be.revertedWithCustomError(pool, "SlippageExceeded")
      .withArgs(assets, quotedAssets);
    await atLatestTimestamp();
    await expect(pool.connect(lp).redeemWithLimit(quotedShares, lp, lp, assets)).to.emit(pool, "Withdraw");
  });
});

describe("LiquidityPool under water", function () {
  /** Alice holds the largest long the pool allows (net delta ≤ its 1M capital) and ETH more than doubles. */
  async function underwaterPool() {
    const sys = await deploySystem();
    const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 400_000n * USDC]]);
    await trade(sys.perps, sys.alice, account, sys.markets.ETH, wad("330"));
    await setFeedPrice(sys.feeds.ETH, "7000"); // the pool is short 330 ETH: −1.32M on 1M of capital
    return sys;
  }

  it("refuses deposits while its equity is below zero: a new LP would only pay down the deficit", async function () {
    const { pool, usdc, bob } = await loadFixture(underwaterPool);
    expect(await pool.totalAssets()).to.equal(0n);
    expect(await pool.maxDeposit(bob)).to.equal(0n);
    expect(await pool.maxMint(bob)).to.equal(0n);
    await mintAndApprove(usdc, bob, await pool.getAddress(), 100_000n * USDC);
    await expect(pool.connect(bob).deposit(100_000n * USDC, bob))
      .to.be.revertedWithCustomError(pool, "ERC4626ExceededMaxDeposit")
      .withArgs(bob.address, 100_000n * USDC, 0n);
    await expect(pool.connect(bob).mint(1n, bob)).to.be.revertedWithCustomError(
      pool,
      "ERC4626ExceededMaxMint",
    );
  });

  it("refuses deposits into a pool every LP has left if a deficit came after them", async function () {
    const sys = await deploySystem();
    const { pool, usdc, lp, bob } = sys;
    // Balanced books: the pool holds no net position, so its LP can leave entirely.
    const long = await openAccount(sys, sys.alice, MarginMode.CROSS, [[usdc, 3_500n * USDC]]);
    const short = await openAccount(sys, sys.carol, MarginMode.CROSS, [[usdc, 10_000n * USDC]]);
    await trade(sys.perps, sys.alice, long, sys.markets.ETH, wad("10"));
    await trade(sys.perps, sys.carol, short, sys.markets.ETH, -wad("10"));
    await pool.connect(lp).redeem(await pool.balanceOf(lp), lp, lp);
    expect(await pool.totalSupply()).to.equal(0n);
    // ETH −1/6: the long owes 1,500 more than it has, which the fund cannot cover.
    await setFeedPrice(sys.feeds.ETH, "2500");
    await sys.auction.startAuction(long);
    expect(await pool.uncoveredDeficit()).to.be.greaterThan(
      await sys.vault.balanceOf(sys.poolAccountId, usdc),
    );
    expect(await pool.totalAssets()).to.equal(0n);
    expect(await pool.maxDeposit(bob)).to.equal(0n);
  });

  it("accepts deposits again once its equity is back above zero", async function () {
    const { pool, vault, usdc, bob, feeds } = await loadFixture(underwaterPool);
    await setFeedPrice(feeds.ETH, "3000");
    // The room under the vault's USDC deposit cap.
    const room = (await vault.collateralConfig(usdc)).depositCap - (await vault.totalDeposits(usdc));
    expect(await pool.maxDeposit(bob)).to.equal(room);
    await mintAndApprove(usdc, bob, await pool.getAddress(), 100_000n * USDC);
    await pool.connect(bob).deposit(100_000n * USDC, bob);
    expect(await pool.convertToAssets(await pool.balanceOf(bob))).to.be.closeTo(100_000n * USDC, 1n);
  });
});

describe("LiquidityPool limits (what max* promises, the pool pays)", function () {
  /** Alice long 100 ETH against the pool: the pool has an initial requirement. */
  async function poolWithPosition() {
    const sys = await deploySystem();
    const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
    await trade(sys.perps, sys.alice, account, sys.markets.ETH, wad("100"));
    return sys;
  }

  // Found by the security review (2026-12-02): the free margin was divided by the quote's decimals
  // alone, so at USDC 1.01 withdraw(maxWithdraw) and redeem(maxRedeem) failed the margin check.
  it("converts the free margin at the quote's price: withdraw(maxWithdraw) passes above 1 USD", async function () {
    const { pool, feeds, lp } = await loadFixture(poolWithPosition);
    await setFeedPrice(feeds.USDC, "1.01");
    const max = await pool.maxRedeem(lp);
    // Views run at the latest block's time; the pool's short earns funding every second after it.
    await atLatestTimestamp();
    await pool.connect(lp).redeem(max, lp, lp);
    expect(await pool.maxWithdraw(lp)).to.be.lessThan(USDC);
  });

  it("promises nothing while the vault is paused", async function () {
    const { pool, vault, lp } = await loadFixture(poolWithPosition);
    await vault.pause();
    expect([await pool.maxWithdraw(lp), await pool.maxRedeem(lp)]).to.deep.equal([0n, 0n]);
  });

  it("promises deposits only up to the vault's deposit cap on the quote token", async function () {
    const { pool, vault, usdc, bob } = await loadFixture(poolWithPosition);
    const total = await vault.totalDeposits(usdc);
    await vault.setDepositCap(usdc, total + 500n * USDC);
    expect(await pool.maxDeposit(bob)).to.equal(500n * USDC);
    await mintAndApprove(usdc, bob, await pool.getAddress(), 600n * USDC);
    await expect(pool.connect(bob).deposit(600n * USDC, bob))
      .to.be.revertedWithCustomError(pool, "ERC4626ExceededMaxDeposit")
      .withArgs(bob.address, 600n * USDC, 500n * USDC);
    await pool.connect(bob).deposit(500n * USDC, bob);
  });

  it("reserves the backstop's requirement and loss out of what LPs can withdraw", async function () {
    const sys = await loadFixture(deploySystem);
    const { pool, engine, auction, poolAccountId, lp } = sys;
    // Alice's long 2 ETH on 1,000 USDC is insolvent at 2,300; the backstop takes it at the auction's
    // end, then ETH falls another 300: the backstop is ~600 USDC under water, the pool's short up as much.
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
    await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2"));
    await setFeedPrice(sys.feeds.ETH, "2300");
    await auction.startAuction(alice);
    await time.increase((await auction.params()).duration);
    await refreshFeeds(sys);
    await auction.absorb(alice);
    await setFeedPrice(sys.feeds.ETH, "2000");
    // Bob's long 100 gives the pool a requirement above its unrealised gains, so its free margin (not
    // its quote balance) bounds withdrawals.
    const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
    await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("100"));

    expect(await pool.backstopValue()).to.be.lessThan(-590n * 10n ** 18n);
    const h = await engine.health(poolAccountId);
    const b = await engine.health(await auction.backstopAccountId());
    // Nobody margins the backstop: the LPs' capital does. Its shortfall against its own initial
    // requirement (its loss, its exit discount and the requirement of its long 2) comes off the pool's
    // free margin, at USDC = 1 and weight 1 (USD WAD → units).
    const shortfall = b.equityInitial - b.initialRequirement;
    expect(shortfall).to.be.lessThan(-1_000n * 10n ** 18n);
    const free = (h.equityInitial + shortfall - h.initialRequirement) / 10n ** 12n;
    expect(await pool.maxWithdraw(lp)).to.equal(free);
    // Views run at the latest block's time; the pool's short earns funding every second after it.
    await atLatestTimestamp();
    await expect(pool.connect(lp).withdraw(free + 1n, lp, lp)).to.be.revertedWithCustomError(
      pool,
      "ERC4626ExceededMaxWithdraw",
    );
  });

  // Found by the security review (2026-12-02): a trader's realised loss credits the pool with quote
  // the trader owes but the vault never received; LPs withdrew it out of other depositors' USDC.
  it("keeps back the quote traders owe, so every other depositor can still withdraw theirs", async function () {
    const sys = await loadFixture(deploySystem);
    const { pool, vault, usdc, poolAccountId, lp, alice, bob } = sys;
    // Alice's only collateral is WETH; she is long 20 ETH and closes after a 10% fall: she owes ~6,000 USDC.
    const debtor = await openAccount(sys, alice, MarginMode.CROSS, [[sys.weth, wad("10")]]);
    const saver = await openAccount(sys, bob, MarginMode.CROSS, [[usdc, 20_000n * USDC]]);
    await trade(sys.perps, alice, debtor, sys.markets.ETH, wad("20"));
    await setFeedPrice(sys.feeds.ETH, "2700");
    await trade(sys.perps, alice, debtor, sys.markets.ETH, -wad("20"));

    const debt = -(await vault.balanceOf(debtor, usdc));
    expect(debt).to.be.greaterThan(6_000n * USDC);
    expect(await vault.quoteDebt()).to.equal(debt);
    const poolQuote = await vault.balanceOf(poolAccountId, usdc);
    // The pool holds no position now: its free margin is its whole balance, the debt is what binds.
    expect(await pool.maxWithdraw(lp)).to.equal(poolQuote - debt);
    await expect(pool.connect(lp).withdraw(poolQuote - debt + 1n, lp, lp)).to.be.revertedWithCustomError(
      pool,
      "ERC4626ExceededMaxWithdraw",
    );
    await pool.connect(lp).withdraw(poolQuote - debt, lp, lp);
    // Every positive quote balance but the pool's is still in the vault: Bob takes all of his.
    await expect(vault.connect(bob).withdraw(saver, usdc, 20_000n * USDC, bob)).to.changeTokenBalance(
      usdc,
      bob,
      20_000n * USDC,
    );
    const fund = await vault.balanceOf(await sys.insuranceFund.accountId(), usdc);
    expect(await vault.totalDeposits(usdc)).to.equal(fund);
    // Alice repays: the debt is gone and the LP can take the rest.
    await mintAndApprove(usdc, alice, await vault.getAddress(), debt);
    await vault.connect(alice).deposit(debtor, usdc, debt);
    expect(await vault.quoteDebt()).to.equal(0n);
    // (ERC-4626 rounds the LP's share of the pool down by a unit.)
    expect(await pool.maxWithdraw(lp)).to.be.within(debt - 1n, debt);
  });
});

describe("InsuranceFund", function () {
  it("releases money only to the treasury role", async function () {
    const sys = await loadFixture(deploySystem);
    const { insuranceFund, deployer, alice } = sys;
    await fundInsurance(sys, 50n * USDC);
    expect(await insuranceFund.balance()).to.equal(50n * USDC);
    await expect(insuranceFund.connect(alice).withdraw(alice, 1n)).to.be.revertedWithCustomError(
      insuranceFund,
      "AccessManagedUnauthorized",
    );
    await expect(insuranceFund.connect(deployer).withdraw(alice, 20n * USDC))
      .to.emit(insuranceFund, "FundsWithdrawn")
      .withArgs(alice.address, 20n * USDC);
    expect(await insuranceFund.balance()).to.equal(30n * USDC);
  });

  it("lets anyone move quote sent straight to the fund's contract into its account", async function () {
    const sys = await loadFixture(deploySystem);
    const { insuranceFund, usdc, vault, alice, bob } = sys;
    await fundInsurance(sys, 50n * USDC);
    // A donation to the contract's address, not into its vault account, covers nothing yet.
    await usdc.mint(alice, 70n * USDC);
    await usdc.connect(alice).transfer(insuranceFund, 70n * USDC);
    expect(await insuranceFund.balance()).to.equal(50n * USDC);
    const held = await vault.totalDeposits(usdc);
    await expect(insuranceFund.connect(bob).depositHeld())
      .to.emit(insuranceFund, "HeldDeposited")
      .withArgs(bob.address, 70n * USDC);
    // 50 + 70: the vault holds the tokens and the fund's account counts them.
    expect(await insuranceFund.balance()).to.equal(120n * USDC);
    expect(await vault.totalDeposits(usdc)).to.equal(held + 70n * USDC);
    expect(await usdc.balanceOf(insuranceFund)).to.equal(0n);
    await expect(insuranceFund.depositHeld()).to.be.revertedWithCustomError(insuranceFund, "NothingHeld");
  });

  it("rejects a zero amount or the zero address", async function () {
    const { insuranceFund, alice } = await loadFixture(deploySystem);
    await expect(insuranceFund.withdraw(alice, 0n)).to.be.revertedWithCustomError(
      insuranceFund,
      "InvalidWithdrawal",
    );
    await expect(insuranceFund.withdraw(ethers.ZeroAddress, 1n)).to.be.revertedWithCustomError(
      insuranceFund,
      "InvalidWithdrawal",
    );
  });
});

describe("LiquidityPool while a feed under its book is stale", function () {
  /** The pool is short 1 BTC to Alice; an hour later every feed but BTC's price has reported again. */
  async function staleBtcFeed() {
    const sys = await deploySystem();
    const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
    await trade(sys.perps, sys.alice, account, sys.markets.BTC, wad("0.1"));
    await time.increase(3_700);
    await setFeedPrice(sys.feeds.USDC, "1");
    await setFeedPrice(sys.feeds.ETH, "3000");
    await setFeedPrice(sys.volFeeds.ETH, "0.6");
    await setFeedPrice(sys.volFeeds.BTC, "0.5");
    await mintAndApprove(sys.usdc, sys.bob, await sys.pool.getAddress(), 1_000n * USDC);
    return sys;
  }

  it("reads 0 from every max* instead of reverting (ERC-4626: max* must not revert)", async function () {
    const { pool, router, lp, bob } = await loadFixture(staleBtcFeed);
    // No price, no share price: totalAssets has nothing to give.
    await expect(pool.totalAssets()).to.be.revertedWithCustomError(router, "StalePrice");
    expect(await pool.maxDeposit(bob)).to.equal(0n);
    expect(await pool.maxMint(bob)).to.equal(0n);
    expect(await pool.maxWithdraw(lp)).to.equal(0n);
    expect(await pool.maxRedeem(lp)).to.equal(0n);
  });

  it("reverts deposits and withdrawals with the feed's own error, and reopens when the feed reports", async function () {
    const { pool, router, feeds, usdc, lp, bob } = await loadFixture(staleBtcFeed);
    await expect(pool.connect(bob).deposit(1_000n * USDC, bob)).to.be.revertedWithCustomError(
      router,
      "StalePrice",
    );
    await expect(pool.connect(lp).withdraw(1_000n * USDC, lp, lp)).to.be.revertedWithCustomError(
      router,
      "StalePrice",
    );
    await setFeedPrice(feeds.BTC, "60000");
    expect(await pool.maxWithdraw(lp)).to.be.greaterThan(0n);
    await pool.connect(bob).deposit(1_000n * USDC, bob);
    await expect(pool.connect(lp).withdraw(1_000n * USDC, lp, lp)).to.changeTokenBalance(
      usdc,
      lp,
      1_000n * USDC,
    );
  });
});

// Review round 14 (docs/reliability.md §4, row 56): the risk manager cut the exit delay to 0 for one
// block and an LP stepped out before a losing oracle round and back in after it (+5,224.98 USDC).
describe("LiquidityPool protection cuts (holding period, exit delay)", function () {
  const setters = [
    ["holdingPeriod", (sys: System, v: bigint) => sys.pool.setHoldingPeriod(v)],
    ["exitDelay", (sys: System, v: bigint) => sys.pool.setExitDelay(v)],
  ] as const;

  for (const [name, set] of setters) {
    it(`${name}: a cut at most halves it, once a day, and reaches 0 only from an hour or less; raises are free`, async function () {
      const sys = await loadFixture(deploySystem);
      const parameter = ethers.encodeBytes32String(name);
      await set(sys, DAY); // a raise (from 0 for the exit delay)
      await expect(set(sys, 0n))
        .to.be.revertedWithCustomError(sys.pool, "ProtectionCutTooLarge")
        .withArgs(parameter, DAY, 0n);
      await expect(set(sys, DAY / 2n - 1n))
        .to.be.revertedWithCustomError(sys.pool, "ProtectionCutTooLarge")
        .withArgs(parameter, DAY, DAY / 2n - 1n);
      await set(sys, DAY / 2n);
      const nextAt = BigInt(await time.latest()) + DAY;
      expect(await sys.pool.nextUpdateAt(parameter, ethers.ZeroHash)).to.equal(nextAt);
      await expect(set(sys, DAY / 4n))
        .to.be.revertedWithCustomError(sys.pool, "UpdateTooSoon")
        .withArgs(parameter, ethers.ZeroHash, nextAt);
      await set(sys, 7n * DAY); // raising back is never held up
      await time.increaseTo(nextAt);
      await expect(set(sys, (7n * DAY) / 2n)).to.not.be.reverted; // the next day, the next halving
    });
  }
});
