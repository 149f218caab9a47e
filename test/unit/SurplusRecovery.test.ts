import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { EXIT_DELAY, HOLDING_PERIOD, MarginMode, deploySystem, openAccount, wad } from "../shared/system";
import { advanceTo, trade } from "../shared/perps";
import { deployToken, mintAndApprove } from "../shared/tokens";

const USDC = 10n ** 6n;

/**
 * Tokens transferred to the vault's or the pool's address instead of deposited are credited to no one:
 * no account can withdraw them. `recoverSurplus` (TREASURY role) sends them on, for governance to return
 * them to their sender, and nothing an account or an LP holds can leave that way.
 */
async function world() {
  const sys = await deploySystem();
  // Alice's USDC, and Bob's WETH-only account whose trading fee leaves it owing quote: the vault's USDC
  // total is then less than the accounts' positive balances (a debt is a negative balance within it).
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad(10)]]);
  await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad(1));
  expect(await sys.vault.balanceOf(bob, sys.usdc)).to.be.lessThan(0n);
  await mintAndApprove(sys.usdc, sys.lp, await sys.pool.getAddress(), 100_000n * USDC);
  await sys.pool.connect(sys.lp).deposit(100_000n * USDC, sys.lp.address);
  const stray = await deployToken("Stray", "STRAY", 18);
  return { sys, alice, bob, stray };
}

describe("Surplus recovery", function () {
  describe("CollateralVault.recoverSurplus", function () {
    it("sends only the USDC transferred to the vault's address, not the accounts' or the pool's", async function () {
      const { sys, alice } = await loadFixture(world);
      const credited = await sys.vault.totalDeposits(sys.usdc);
      expect(await sys.usdc.balanceOf(sys.vault)).to.equal(credited);
      await sys.usdc.mint(sys.carol.address, 250n * USDC);
      await sys.usdc.connect(sys.carol).transfer(sys.vault, 250n * USDC);

      await expect(sys.vault.recoverSurplus(sys.usdc, sys.carol.address))
        .to.emit(sys.vault, "SurplusRecovered")
        .withArgs(await sys.usdc.getAddress(), sys.carol.address, 250n * USDC);
      expect(await sys.usdc.balanceOf(sys.carol.address)).to.equal(250n * USDC);
      expect(await sys.usdc.balanceOf(sys.vault)).to.equal(credited);
      expect(await sys.vault.totalDeposits(sys.usdc)).to.equal(credited);
      // Every depositor can still take out all it was credited with.
      await sys.vault.connect(sys.alice).withdraw(alice, sys.usdc, 10_000n * USDC, sys.alice.address);
    });

    it("sends a token that was never listed whole", async function () {
      const { sys, stray } = await loadFixture(world);
      await stray.mint(await sys.vault.getAddress(), wad(3));
      await expect(sys.vault.recoverSurplus(stray, sys.carol.address))
        .to.emit(sys.vault, "SurplusRecovered")
        .withArgs(await stray.getAddress(), sys.carol.address, wad(3));
      expect(await stray.balanceOf(sys.vault)).to.equal(0n);
    });

    it("refuses with NoSurplus while the vault holds exactly what its accounts are credited with", async function () {
      const { sys, stray } = await loadFixture(world);
      for (const token of [sys.usdc, sys.weth, stray]) {
        await expect(sys.vault.recoverSurplus(token, sys.carol.address))
          .to.be.revertedWithCustomError(sys.vault, "NoSurplus")
          .withArgs(await token.getAddress());
      }
    });

    it("refuses the zero address as recipient, and anyone without the TREASURY role", async function () {
      const { sys } = await loadFixture(world);
      await sys.usdc.mint(await sys.vault.getAddress(), USDC);
      await expect(sys.vault.recoverSurplus(sys.usdc, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(sys.vault, "InvalidRecipient")
        .withArgs(ethers.ZeroAddress);
      await expect(sys.vault.connect(sys.alice).recoverSurplus(sys.usdc, sys.alice.address))
        .to.be.revertedWithCustomError(sys.vault, "AccessManagedUnauthorized")
        .withArgs(sys.alice.address);
    });
  });

  describe("LiquidityPool.recoverSurplus", function () {
    it("sends the pool's whole balance of a token sent to its address; the share price does not move", async function () {
      const { sys } = await loadFixture(world);
      const assets = await sys.pool.totalAssets();
      await sys.usdc.mint(await sys.pool.getAddress(), 40n * USDC);
      expect(await sys.pool.totalAssets(), "counted nowhere").to.equal(assets);
      await expect(sys.pool.recoverSurplus(sys.usdc, sys.carol.address))
        .to.emit(sys.pool, "SurplusRecovered")
        .withArgs(await sys.usdc.getAddress(), sys.carol.address, 40n * USDC);
      expect(await sys.usdc.balanceOf(sys.pool)).to.equal(0n);
      expect(await sys.pool.totalAssets()).to.equal(assets);
    });

    it("refuses its own shares, which its address holds for pending redeem requests", async function () {
      const { sys } = await loadFixture(world);
      await sys.pool.setExitDelay(EXIT_DELAY);
      // The LP's shares, minted in the fixture, are free after the holding period.
      await advanceTo(sys, BigInt(await time.latest()) + HOLDING_PERIOD);
      await sys.pool.connect(sys.lp).requestRedeem(await sys.pool.balanceOf(sys.lp.address));
      expect(await sys.pool.balanceOf(sys.pool)).to.be.greaterThan(0n);
      await expect(sys.pool.recoverSurplus(sys.pool, sys.carol.address))
        .to.be.revertedWithCustomError(sys.vault, "NoSurplus")
        .withArgs(await sys.pool.getAddress());
    });

    it("refuses an empty balance, the zero address, and anyone without the TREASURY role", async function () {
      const { sys, stray } = await loadFixture(world);
      await expect(sys.pool.recoverSurplus(stray, sys.carol.address))
        .to.be.revertedWithCustomError(sys.vault, "NoSurplus")
        .withArgs(await stray.getAddress());
      await stray.mint(await sys.pool.getAddress(), wad(1));
      await expect(sys.pool.recoverSurplus(stray, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(sys.vault, "InvalidRecipient")
        .withArgs(ethers.ZeroAddress);
      await expect(sys.pool.connect(sys.lp).recoverSurplus(stray, sys.lp.address))
        .to.be.revertedWithCustomError(sys.pool, "AccessManagedUnauthorized")
        .withArgs(sys.lp.address);
    });
  });
});
