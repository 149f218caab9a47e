/**
 * The liquidity pool's rules at their exact numbers and endpoints. Review round 98 mutated
 * `contracts/markets/LiquidityPool.sol` one small change at a time (docs/reliability.md row 233): each
 * specification here fails on a mutant the rest of the suite let through; its comment names it (Mnn).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  EXIT_DELAY,
  HOLDING_PERIOD,
  MarginMode,
  atLatestTimestamp,
  deploySystem,
  openAccount,
  wad,
} from "../shared/system";
import { INTEREST_MODEL } from "../shared/interest";
import { mintAndApprove } from "../shared/tokens";
import { setFeedPrice } from "../shared/oracles";
import { advanceTo, mineAt, poolShortTen, refreshFeeds, trade, wethDebtorSystem } from "../shared/perps";

const USDC = 10n ** 6n;
/** One quote unit (USDC) in USD WAD. */
const QUOTE_UNIT = 10n ** 12n;
/** ERC-4626 virtual shares of the pool (`_decimalsOffset` 6). */
const VIRTUAL_SHARES = 10n ** 6n;
const CLAIM_WINDOW = 7_200n;
/** `LiquidityPool.MAX_CUT_TO_ZERO`: the largest value a protection may be cut to 0 from. */
const MAX_CUT_TO_ZERO = 3_600n;

/** Floor division of bigints, rounding towards −∞ (BigInt's `/` truncates towards 0). */
function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** The pool with a 1-hour holding period (a raise from 0 at deployment): the lock can be cut to 0 at once. */
async function hourHoldingPeriod() {
  return deploySystem({ holdingPeriod: MAX_CUT_TO_ZERO });
}

/** Alice long 100 ETH against the pool: the pool's initial requirement bounds its LP's withdrawals. */
async function poolShortHundred() {
  const sys = await deploySystem();
  const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await trade(sys.perps, sys.alice, account, sys.markets.ETH, wad("100"));
  return sys;
}

/** `poolShortTen` with the deployments' one-day exit delay; the LP asks for 100,000 USDC worth of shares. */
async function lpRequested() {
  const sys = await poolShortTen();
  await sys.pool.setExitDelay(EXIT_DELAY);
  const shares = await sys.pool.convertToShares(100_000n * USDC);
  await atLatestTimestamp();
  await sys.pool.connect(sys.lp).requestRedeem(shares);
  const [, assets, claimableAt] = await sys.pool.redeemRequest(sys.lp);
  return { sys, shares, assets, claimableAt };
}

/** Alice deposits 1,000 USDC: her shares are locked for the day's holding period. */
async function aliceLocked() {
  const sys = await deploySystem();
  await mintAndApprove(sys.usdc, sys.alice, await sys.pool.getAddress(), 2_000n * USDC);
  await sys.pool.connect(sys.alice).deposit(1_000n * USDC, sys.alice);
  const [shares, unlocksAt] = await sys.pool.sharesLock(sys.alice);
  return { sys, shares, unlocksAt };
}

describe("LiquidityPool protection cuts", function () {
  // M02 (`current >= MAX_CUT_TO_ZERO`): the cut to 0 is allowed from exactly an hour.
  it("cuts to 0 from exactly MAX_CUT_TO_ZERO (an hour), and refuses it from a second more", async function () {
    const { pool } = await loadFixture(deploySystem);
    const parameter = ethers.encodeBytes32String("exitDelay");
    await pool.setExitDelay(MAX_CUT_TO_ZERO + 1n); // a raise from 0: free
    await expect(pool.setExitDelay(0n))
      .to.be.revertedWithCustomError(pool, "ProtectionCutTooLarge")
      .withArgs(parameter, MAX_CUT_TO_ZERO + 1n, 0n);
    await pool.setExitDelay(MAX_CUT_TO_ZERO); // a cut of one second, within a half
    await time.increase(86_400n);
    await expect(pool.setExitDelay(0n)).to.emit(pool, "ExitDelaySet").withArgs(0n);
    expect(await pool.exitDelay()).to.equal(0n);
  });

  // M04 (half rounded up, `next < (current + 1) / 2`): an odd value may be cut to its half rounded down.
  it("cuts an odd value to its half rounded down: 3,601 s to 1,800 s (⌊3,601 / 2⌋), not 1,799 s", async function () {
    const { pool } = await loadFixture(deploySystem);
    await pool.setExitDelay(3_601n);
    // 1,799 < 3,601 / 2 = 1,800 (integer division): more than a half.
    await expect(pool.setExitDelay(1_799n))
      .to.be.revertedWithCustomError(pool, "ProtectionCutTooLarge")
      .withArgs(ethers.encodeBytes32String("exitDelay"), 3_601n, 1_799n);
    await expect(pool.setExitDelay(1_800n)).to.emit(pool, "ExitDelaySet").withArgs(1_800n);
  });
});

describe("LiquidityPool share price", function () {
  // M11 (no floor step for a negative value): a loss that is not a whole quote unit costs the LPs the
  // whole unit, so they never over-count.
  it("counts a loss of the book that is not a whole quote unit as the next whole unit (floor towards −∞)", async function () {
    const { pool, vault, usdc, feeds, poolAccountId } = await loadFixture(poolShortTen);
    // Alice's long gains ~1,000.0000012 USD: the pool's book is worth that much less than nothing.
    await setFeedPrice(feeds.ETH, "3100.00000012");
    const value = (await pool.positionValue()) + (await pool.backstopValue());
    expect(value).to.be.lessThan(0n);
    expect(value % QUOTE_UNIT).to.not.equal(0n);
    const balance = await vault.balanceOf(poolAccountId, usdc);
    const interest = await vault.interestReceivable();
    const uncovered = await pool.uncoveredDeficit();
    // totalAssets = balance + ⌊value / 10^12⌋ + interest − uncovered: a value of −1,000.0000012 USD is
    // −1,000,000,002 units (a fraction of a unit lost counts whole), not truncation's −1,000,000,001.
    const expected = balance + floorDiv(value, QUOTE_UNIT) + interest - uncovered;
    expect(await pool.totalAssets()).to.equal(expected);
    expect(expected).to.equal(balance + value / QUOTE_UNIT - 1n + interest - uncovered);
  });

  // M12 (interest left out; test/unit/QuoteInterest.test.ts also catches it): the interest traders' quote
  // debts owe the pool is its own, as it counts in their equity, accrued or not.
  it("counts the interest accrued on traders' quote debts, before anyone pays it", async function () {
    const sys = await loadFixture(wethDebtorSystem);
    const { pool, vault, usdc, poolAccountId } = sys;
    await vault.setInterestRateModel(INTEREST_MODEL);
    await time.increase(30n * 86_400n);
    await refreshFeeds(sys);
    const interest = await vault.interestReceivable();
    expect(interest).to.be.greaterThan(0n);
    const value = (await pool.positionValue()) + (await pool.backstopValue());
    const balance = await vault.balanceOf(poolAccountId, usdc);
    // totalAssets = balance + ⌊value / 10^12⌋ + interest − uncovered (no auction: uncovered 0).
    expect(await pool.uncoveredDeficit()).to.equal(0n);
    expect(await pool.totalAssets()).to.equal(balance + floorDiv(value, QUOTE_UNIT) + interest);
  });
});

describe("LiquidityPool redeem requests", function () {
  // M34 (Ceil) and M37 (the event's claimableAt), which the suite catches only through a 1-share request
  // and the random property: the request's worth is ⌊s·(T + 1) / (N + 10^6)⌋ and the event carries the
  // second it becomes claimable.
  it("prices a request at its shares' worth rounded down and emits when it becomes claimable", async function () {
    const { pool, lp } = await loadFixture(poolShortTen);
    await pool.setExitDelay(EXIT_DELAY);
    const shares = 100_000n * USDC * VIRTUAL_SHARES + 12_345n;
    await atLatestTimestamp(); // the views' second: no funding in between
    const [assets, supply] = [await pool.totalAssets(), await pool.totalSupply()];
    const now = BigInt(await time.latest());
    const worth = (shares * (assets + 1n)) / (supply + VIRTUAL_SHARES);
    expect((shares * (assets + 1n)) % (supply + VIRTUAL_SHARES)).to.not.equal(0n);
    await expect(pool.connect(lp).requestRedeem(shares))
      .to.emit(pool, "RedeemRequested")
      .withArgs(lp.address, shares, worth, now + EXIT_DELAY);
    expect(await pool.redeemRequest(lp)).to.deep.equal([
      shares,
      worth,
      now + EXIT_DELAY,
      now + EXIT_DELAY + CLAIM_WINDOW,
    ]);
  });

  // M45 (`block.timestamp <= claimableAt` reads 0; BidLossAndExitViews' maxClaim spec also catches it):
  // the window's first second is inside it.
  it("reads maxClaim as the whole request from the window's first second, and 0 a second before", async function () {
    const { sys, shares, claimableAt } = await loadFixture(lpRequested);
    const { pool, lp } = sys;
    await mineAt(sys, claimableAt - 1n);
    expect(await pool.maxClaim(lp)).to.equal(0n);
    await mineAt(sys, claimableAt);
    expect(await pool.maxClaim(lp)).to.equal(shares);
  });

  // M48 (maxClaim's request term without its −1): a request worth exactly free + 1 units. Its claim of s
  // shares pays ⌊A·s/S⌋ at most, which is ≤ free for s ≤ ((free + 1)·S − 1)/A = S − 1; all S would pay
  // A = free + 1, one unit beyond the free margin.
  it("sizes maxClaim of a request worth free + 1 units at S − 1 shares: the whole request is ClaimUnavailable", async function () {
    const { pool, lp } = await loadFixture(poolShortHundred);
    // No exit delay: the request is claimable in its own second, at the same free margin and price.
    await atLatestTimestamp();
    const free = await pool.maxWithdraw(lp); // the free margin binds the LP's 1,000,000 USDC
    expect(free).to.be.lessThan(await pool.convertToAssets(await pool.balanceOf(lp)));
    const [total, supply] = [await pool.totalAssets(), await pool.totalSupply()];
    const virtualSupply = supply + VIRTUAL_SHARES;
    // S = ⌈(free + 1)·N / (T + 1)⌉: the fewest shares worth free + 1 units, ⌊S·(T + 1)/N⌋ = free + 1.
    const shares = ((free + 1n) * virtualSupply + total) / (total + 1n);
    expect((shares * (total + 1n)) / virtualSupply).to.equal(free + 1n);
    await pool.connect(lp).requestRedeem(shares);
    expect((await pool.redeemRequest(lp))[1]).to.equal(free + 1n);
    // byRequest = ((free + 1)·S − 1)/(free + 1) = S − 1; byPrice = ((free + 1)·N − 1)/(T + 1) ≤ S − 1.
    expect(await pool.maxClaim(lp)).to.equal(shares - 1n);
    await atLatestTimestamp();
    await expect(pool.connect(lp).claimRedeem(shares, lp, 0n))
      .to.be.revertedWithCustomError(pool, "ClaimUnavailable")
      .withArgs(free + 1n, free);
    await atLatestTimestamp();
    // S − 1 shares pay min(⌊A·(S − 1)/S⌋, ⌊(S − 1)·(T + 1)/N⌋) = free.
    await expect(pool.connect(lp).claimRedeem(shares - 1n, lp, 0n))
      .to.emit(pool, "Withdraw")
      .withArgs(lp.address, lp.address, lp.address, free, shares - 1n);
  });

  // M41 (the rest shrinks by the paid assets) and M42 (the event's receiver): a partial claim after a
  // loss pays today's lower price, but what remains keeps its price at the request: the request's
  // assets shrink by the claimed part of them, ⌊A·s/S⌋, not by what was paid.
  it("pays a partial claim after a loss at today's price to the receiver, and keeps the rest at the request's price", async function () {
    const { sys, shares, assets, claimableAt } = await loadFixture(lpRequested);
    const { pool, usdc, feeds, lp, bob } = sys;
    // Alice's long gains ~1,000 USD: the pool loses it, a share is worth less than at the request.
    await setFeedPrice(feeds.ETH, "3100");
    await mineAt(sys, claimableAt);
    const part = shares / 4n;
    const [total, supply] = [await pool.totalAssets(), await pool.totalSupply()];
    const requestedPart = (assets * part) / shares; // ⌊A·s/S⌋
    const paid = (part * (total + 1n)) / (supply + VIRTUAL_SHARES); // ⌊s·(T + 1)/N⌋
    expect(paid).to.be.lessThan(requestedPart);
    await atLatestTimestamp();
    const claim = pool.connect(lp).claimRedeem(part, bob, paid);
    await expect(claim).to.emit(pool, "Withdraw").withArgs(lp.address, bob.address, lp.address, paid, part);
    await expect(claim).to.changeTokenBalance(usdc, bob, paid);
    expect(await pool.redeemRequest(lp)).to.deep.equal([
      shares - part,
      assets - requestedPart,
      claimableAt,
      claimableAt + CLAIM_WINDOW,
    ]);
  });

  // M63 (worth rounded up) and M64 (no virtual asset): a cancel after a rise gives back exactly the
  // shares the request's assets buy once the rest are burned, s' = ⌊A·(N − S)/(T + 1 − A)⌋.
  it("gives back on a cancel after a rise exactly ⌊A·(N − S) / (T + 1 − A)⌋ shares and burns the rest", async function () {
    const { sys, shares, assets } = await loadFixture(lpRequested);
    const { pool, feeds, lp } = sys;
    // Alice's long loses ~1,000 USD: the pool gains it, the requested shares are worth more than A.
    await setFeedPrice(feeds.ETH, "2900");
    await atLatestTimestamp();
    const [total, supply] = [await pool.totalAssets(), await pool.totalSupply()];
    const virtualSupply = supply + VIRTUAL_SHARES;
    expect((shares * (total + 1n)) / virtualSupply).to.be.greaterThan(assets);
    const back = (assets * (virtualSupply - shares)) / (total + 1n - assets);
    expect((assets * (virtualSupply - shares)) % (total + 1n - assets)).to.not.equal(0n);
    const before = await pool.balanceOf(lp);
    await expect(pool.connect(lp).cancelRedeemRequest())
      .to.emit(pool, "RedeemRequestCancelled")
      .withArgs(lp.address, back, shares - back);
    expect(await pool.balanceOf(lp)).to.equal(before + back);
    expect(await pool.totalSupply()).to.equal(supply - (shares - back));
  });
});

describe("LiquidityPool holding period locks", function () {
  // M58 (`>=`: a lock ending this second still averaged in; the unit test's "new lock" also catches it):
  // a lock that ends at the mint's second is over, and the new shares start a lock of their own.
  it("starts a fresh lock for a mint in the very second the last lock ends; the old shares are free", async function () {
    const { sys, shares, unlocksAt } = await loadFixture(aliceLocked);
    const { pool, alice } = sys;
    await advanceTo(sys, unlocksAt);
    await pool.connect(alice).deposit(1_000n * USDC, alice);
    const fresh = (await pool.balanceOf(alice)) - shares;
    // (fresh, unlocksAt + 86,400), not the average (shares·unlocksAt + fresh·(unlocksAt + 86,400)) / (shares + fresh).
    expect(await pool.sharesLock(alice)).to.deep.equal([fresh, unlocksAt + HOLDING_PERIOD]);
    expect(await pool.unlockedShares(alice)).to.equal(shares);
  });

  // M57 (a zero holding period still averaged in): with no holding period new shares are free at once
  // and a running lock keeps its shares and its end.
  it("leaves a running lock as it is for shares minted with no holding period, which are free at once", async function () {
    const sys = await loadFixture(hourHoldingPeriod);
    const { pool, usdc, alice } = sys;
    await mintAndApprove(usdc, alice, await pool.getAddress(), 2_000n * USDC);
    await pool.connect(alice).deposit(1_000n * USDC, alice);
    const lock = await pool.sharesLock(alice);
    const [locked] = lock;
    await pool.setHoldingPeriod(0n); // from an hour: a cut to 0 is allowed at once
    await pool.connect(alice).deposit(1_000n * USDC, alice);
    const fresh = (await pool.balanceOf(alice)) - locked;
    expect(await pool.sharesLock(alice)).to.deep.equal(lock);
    expect(await pool.unlockedShares(alice)).to.equal(fresh);
    await expect(pool.connect(alice).redeem(fresh, alice, alice)).to.emit(pool, "Withdraw");
  });

  // M84 (the pool's own address locked): shares minted to the pool's address (where requests' shares
  // wait) join no lock.
  it("locks no shares minted to the pool's own address", async function () {
    const { pool, bob } = await loadFixture(poolShortTen);
    const poolAddress = await pool.getAddress();
    await pool.connect(bob).deposit(1_000n * USDC, poolAddress);
    expect(await pool.sharesLock(poolAddress)).to.deep.equal([0n, 0n]);
    expect(await pool.unlockedShares(poolAddress)).to.equal(await pool.balanceOf(poolAddress));
  });

  // M30 (the lock check at the shares rounded down): a withdrawal into locked shares names the shares
  // it would burn, previewWithdraw's ⌈a·N / (T + 1)⌉.
  it("names the shares a withdrawal would burn, rounded up, when it reaches into locked shares", async function () {
    const sys = await loadFixture(poolShortTen);
    const { pool, usdc, lp } = sys;
    const seed = await pool.balanceOf(lp);
    await mintAndApprove(usdc, lp, await pool.getAddress(), 500n * USDC);
    await pool.connect(lp).deposit(500n * USDC, lp);
    const [, unlocksAt] = await pool.sharesLock(lp);
    await atLatestTimestamp();
    const [total, supply] = [await pool.totalAssets(), await pool.totalSupply()];
    const virtualSupply = supply + VIRTUAL_SHARES;
    // One unit more than the free shares' worth, ⌊seed·(T + 1)/N⌋ + 1.
    const assets = (seed * (total + 1n)) / virtualSupply + 1n;
    const burned = (assets * virtualSupply + total) / (total + 1n); // ⌈a·N/(T + 1)⌉
    expect((assets * virtualSupply) % (total + 1n)).to.not.equal(0n);
    await expect(pool.connect(lp).withdraw(assets, lp, lp))
      .to.be.revertedWithCustomError(pool, "SharesLocked")
      .withArgs(lp.address, burned, seed, unlocksAt);
  });
});

describe("LiquidityPool free margin at a quote price above 1 USD", function () {
  // M75 (the spare margin divided by 10^12 alone): with the vault no longer checking the pool's account
  // (§4 row 198), this conversion is the only bound. Each USDC withdrawn at 1.01 takes 1.01 USD of
  // equity_IM, so the free margin in units is ⌊spare · 10^6 / 1.01·10^18⌋, not ⌊spare / 10^12⌋.
  it("converts the spare margin at the quote's price and initial weight: ⌊spare · 10^6 / (1.01 · 1 · 10^18)⌋", async function () {
    const { pool, engine, feeds, lp, poolAccountId } = await loadFixture(poolShortHundred);
    await setFeedPrice(feeds.USDC, "1.01");
    const [equity, requirement] = await engine.initialMargin(poolAccountId);
    const spare = equity - requirement;
    const free = (spare * USDC) / 1_010_000_000_000_000_000n;
    expect(free).to.be.lessThan(spare / QUOTE_UNIT);
    // The LP's shares are worth more than that: the free margin binds.
    expect(await pool.convertToAssets(await pool.balanceOf(lp))).to.be.greaterThan(free);
    expect(await pool.maxWithdraw(lp)).to.equal(free);
    await atLatestTimestamp();
    await expect(pool.connect(lp).withdraw(free + 1n, lp, lp))
      .to.be.revertedWithCustomError(pool, "ERC4626ExceededMaxWithdraw")
      .withArgs(lp.address, free + 1n, free);
  });
});

describe("LiquidityPool slippage limits at their endpoint", function () {
  // M53 (`assets >= maxAssets`): a mint whose cost is exactly the limit fills.
  it("fills a mint whose cost is exactly its maxAssets", async function () {
    const { pool, bob } = await loadFixture(poolShortTen);
    const shares = 1_000n * USDC * VIRTUAL_SHARES;
    await atLatestTimestamp();
    const cost = await pool.previewMint(shares);
    await expect(pool.connect(bob).mintWithLimit(shares, bob, cost))
      .to.emit(pool, "Deposit")
      .withArgs(bob.address, bob.address, cost, shares);
  });

  // M54 (`shares >= maxShares`; caught in the suite only by ExitValuedOnce's backstop exit): a withdrawal
  // that burns exactly the limit fills.
  it("fills a withdrawal that burns exactly its maxShares", async function () {
    const { pool, lp } = await loadFixture(poolShortTen);
    const assets = 1_000n * USDC;
    await atLatestTimestamp();
    const burned = await pool.previewWithdraw(assets);
    await expect(pool.connect(lp).withdrawWithLimit(assets, lp, lp, burned))
      .to.emit(pool, "Withdraw")
      .withArgs(lp.address, lp.address, lp.address, assets, burned);
  });

  // M56 (the event's caller taken from the owner): a spender's withdrawal names the spender as caller.
  it("emits a spender's withdrawal with the spender as caller, the receiver and the owner", async function () {
    const { pool, lp, bob, carol } = await loadFixture(poolShortTen);
    await pool.connect(lp).approve(bob, ethers.MaxUint256);
    const assets = 1_000n * USDC;
    await atLatestTimestamp();
    const burned = await pool.previewWithdraw(assets);
    await expect(pool.connect(bob).withdraw(assets, carol, lp))
      .to.emit(pool, "Withdraw")
      .withArgs(bob.address, carol.address, lp.address, assets, burned);
  });
});
