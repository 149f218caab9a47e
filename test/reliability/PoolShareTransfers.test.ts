import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { HOLDING_PERIOD, deploySystem, type System } from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { refreshFeeds } from "../shared/perps";

/**
 * Review round 141: LP shares moved to a second holder by ERC-20 `transfer`, as the long campaign's
 * `lpTransfer` action does (test/reliability/model.ts). Shares leave an address only out of its
 * unlocked balance; beyond the balance the refusal is ERC-20's own, as row 209 made it for `redeem`.
 */
const USDC = 10n ** 6n;

/** The fixture's system with its LP's deposit past the holding period (feeds fresh again). */
async function unlockedLp(): Promise<System> {
  const sys = await deploySystem();
  await time.increase(HOLDING_PERIOD + 1n);
  await refreshFeeds(sys);
  return sys;
}

/** The fixture's LP (its deposit past the holding period) plus a fresh deposit still locked. */
async function lpWithLockedDeposit(): Promise<{ sys: System; unlocked: bigint; locked: bigint }> {
  const sys = await unlockedLp();
  const unlocked = await sys.pool.balanceOf(sys.lp.address);
  await mintAndApprove(sys.usdc, sys.lp, await sys.pool.getAddress(), 1_000n * USDC);
  await (await sys.pool.connect(sys.lp).deposit(1_000n * USDC, sys.lp.address)).wait();
  const locked = (await sys.pool.balanceOf(sys.lp.address)) - unlocked;
  return { sys, unlocked, locked };
}

describe("Reliability: LP share transfers to a second holder (round 141)", function () {
  it("refuses a transfer beyond the sender's balance with ERC20InsufficientBalance, not a lock unlocking in the past", async function () {
    const sys = await loadFixture(unlockedLp);
    const [holder] = (await ethers.getSigners()).slice(12);
    const balance = await sys.pool.balanceOf(sys.lp.address);
    expect(await sys.pool.unlockedShares(sys.lp.address)).to.equal(balance);
    await expect(sys.pool.connect(sys.lp).transfer(holder.address, balance + 1n))
      .to.be.revertedWithCustomError(sys.pool, "ERC20InsufficientBalance")
      .withArgs(sys.lp.address, balance, balance + 1n);
  });

  it("refuses a transfer of shares still in their holding period with SharesLocked naming the unlock time", async function () {
    const { sys, unlocked, locked } = await loadFixture(lpWithLockedDeposit);
    const [holder] = (await ethers.getSigners()).slice(12);
    const [, unlocksAt] = await sys.pool.sharesLock(sys.lp.address);
    expect(unlocksAt).to.be.gt(await time.latest());
    await expect(sys.pool.connect(sys.lp).transfer(holder.address, unlocked + 1n))
      .to.be.revertedWithCustomError(sys.pool, "SharesLocked")
      .withArgs(sys.lp.address, unlocked + 1n, unlocked, unlocksAt);
    // Beyond the whole balance (locked shares included) ERC-20's error, not the lock.
    await expect(
      sys.pool.connect(sys.lp).transfer(holder.address, unlocked + locked + 1n),
    ).to.be.revertedWithCustomError(sys.pool, "ERC20InsufficientBalance");
  });

  it("moves unlocked shares unlocked, and the holder redeems them at the share price", async function () {
    const { sys, unlocked } = await loadFixture(lpWithLockedDeposit);
    const [holder] = (await ethers.getSigners()).slice(12);
    const shares = unlocked / 3n;
    await (await sys.pool.connect(sys.lp).transfer(holder.address, shares)).wait();
    expect(await sys.pool.unlockedShares(holder.address)).to.equal(shares);
    const preview = await sys.pool.previewRedeem(shares);
    const before = await sys.usdc.balanceOf(holder.address);
    await (await sys.pool.connect(holder).redeem(shares, holder.address, holder.address)).wait();
    expect((await sys.usdc.balanceOf(holder.address)) - before).to.equal(preview);
    expect(await sys.pool.balanceOf(holder.address)).to.equal(0n);
  });

  it("leaves an exit request's shares with the pool: the LP cannot transfer them", async function () {
    const sys = await loadFixture(unlockedLp);
    const [holder] = (await ethers.getSigners()).slice(12);
    const balance = await sys.pool.balanceOf(sys.lp.address);
    const requested = balance / 2n;
    await (await sys.pool.connect(sys.lp).requestRedeem(requested)).wait();
    expect(await sys.pool.balanceOf(await sys.pool.getAddress())).to.equal(requested);
    await expect(sys.pool.connect(sys.lp).transfer(holder.address, balance))
      .to.be.revertedWithCustomError(sys.pool, "ERC20InsufficientBalance")
      .withArgs(sys.lp.address, balance - requested, balance);
    await (await sys.pool.connect(sys.lp).transfer(holder.address, balance - requested)).wait();
    expect((await sys.pool.redeemRequest(sys.lp.address))[0]).to.equal(requested);
  });
});
