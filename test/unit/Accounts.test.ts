import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { Accounts } from "../../typechain-types";

const CROSS = 0n;
const ISOLATED = 1n;

async function deployAccountsFixture() {
  const [deployer, alice, bob, operator, stranger] = await ethers.getSigners();
  const accounts: Accounts = await ethers.deployContract("Accounts");
  await accounts.waitForDeployment();
  return { accounts, deployer, alice, bob, operator, stranger };
}

describe("Accounts", function () {
  describe("creation", function () {
    it("is an ERC-721 named xmargin Account (XMA) with enumeration", async function () {
      const { accounts } = await loadFixture(deployAccountsFixture);
      expect(await accounts.name()).to.equal("xmargin Account");
      expect(await accounts.symbol()).to.equal("XMA");
      // ERC-721 0x80ac58cd, ERC-721 Enumerable 0x780e9d63, ERC-165 0x01ffc9a7.
      expect(await accounts.supportsInterface("0x80ac58cd")).to.equal(true);
      expect(await accounts.supportsInterface("0x780e9d63")).to.equal(true);
      expect(await accounts.supportsInterface("0x01ffc9a7")).to.equal(true);
      expect(await accounts.accountCount()).to.equal(0n);
    });

    it("numbers accounts from 1 and emits AccountCreated with the mode", async function () {
      const { accounts, alice } = await loadFixture(deployAccountsFixture);
      await expect(accounts.connect(alice).createAccount(CROSS))
        .to.emit(accounts, "AccountCreated")
        .withArgs(1n, alice.address, CROSS);
      await expect(accounts.connect(alice).createAccount(ISOLATED))
        .to.emit(accounts, "AccountCreated")
        .withArgs(2n, alice.address, ISOLATED);
      expect(await accounts.ownerOf(1n)).to.equal(alice.address);
      expect(await accounts.accountCount()).to.equal(2n);
    });

    it("returns the new id from createAccount", async function () {
      const { accounts, alice } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      expect(await accounts.connect(alice).createAccount.staticCall(ISOLATED)).to.equal(2n);
      expect(await accounts.connect(alice).createAccountFor.staticCall(alice.address, CROSS)).to.equal(2n);
    });

    it("lets anyone create an account for another owner", async function () {
      const { accounts, alice, bob } = await loadFixture(deployAccountsFixture);
      await expect(accounts.connect(bob).createAccountFor(alice.address, ISOLATED))
        .to.emit(accounts, "AccountCreated")
        .withArgs(1n, alice.address, ISOLATED);
      expect(await accounts.ownerOf(1n)).to.equal(alice.address);
      expect(await accounts.marginMode(1n)).to.equal(ISOLATED);
    });

    it("reverts with ERC721InvalidReceiver when creating for the zero address", async function () {
      const { accounts, alice } = await loadFixture(deployAccountsFixture);
      await expect(accounts.connect(alice).createAccountFor(ethers.ZeroAddress, CROSS))
        .to.be.revertedWithCustomError(accounts, "ERC721InvalidReceiver")
        .withArgs(ethers.ZeroAddress);
    });

    it("keeps each account's margin mode fixed, also across transfers", async function () {
      const { accounts, alice, bob } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(ISOLATED);
      await accounts.connect(alice).createAccount(CROSS);
      await accounts.connect(alice).transferFrom(alice.address, bob.address, 1n);
      expect(await accounts.marginMode(1n)).to.equal(ISOLATED);
      expect(await accounts.marginMode(2n)).to.equal(CROSS);
    });
  });

  describe("many accounts per owner", function () {
    it("lists every account of each owner with accountsOf, following transfers", async function () {
      const { accounts, alice, bob } = await loadFixture(deployAccountsFixture);
      // Ids 1..5 to alice, 6..8 to bob, interleaved with a createAccountFor.
      for (let i = 0; i < 5; i++) await accounts.connect(alice).createAccount(i % 2 === 0 ? CROSS : ISOLATED);
      for (let i = 0; i < 3; i++) await accounts.connect(alice).createAccountFor(bob.address, CROSS);
      expect(await accounts.accountsOf(alice.address)).to.deep.equal([1n, 2n, 3n, 4n, 5n]);
      expect(await accounts.accountsOf(bob.address)).to.deep.equal([6n, 7n, 8n]);
      expect(await accounts.balanceOf(alice.address)).to.equal(5n);
      expect(await accounts.totalSupply()).to.equal(8n);
      expect(await accounts.marginMode(4n)).to.equal(ISOLATED);

      // ERC721Enumerable moves the last of alice's tokens into the gap left by id 2.
      await accounts.connect(alice).transferFrom(alice.address, bob.address, 2n);
      expect(await accounts.accountsOf(alice.address)).to.deep.equal([1n, 5n, 3n, 4n]);
      expect(await accounts.accountsOf(bob.address)).to.deep.equal([6n, 7n, 8n, 2n]);
    });

    it("returns an empty list for an address without accounts", async function () {
      const { accounts, stranger } = await loadFixture(deployAccountsFixture);
      expect(await accounts.accountsOf(stranger.address)).to.deep.equal([]);
    });
  });

  describe("authorisation", function () {
    it("authorises the owner only, until approvals are given", async function () {
      const { accounts, alice, operator } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      expect(await accounts.isAuthorized(1n, alice.address)).to.equal(true);
      expect(await accounts.isAuthorized(1n, operator.address)).to.equal(false);
      await expect(accounts.requireAuthorized(1n, alice.address)).not.to.be.reverted;
    });

    it("authorises the address approved for one account, for that account only", async function () {
      const { accounts, alice, operator } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      await accounts.connect(alice).createAccount(CROSS);
      await accounts.connect(alice).approve(operator.address, 1n);
      expect(await accounts.isAuthorized(1n, operator.address)).to.equal(true);
      expect(await accounts.isAuthorized(2n, operator.address)).to.equal(false);
      await expect(accounts.requireAuthorized(1n, operator.address)).not.to.be.reverted;
      await expect(accounts.requireAuthorized(2n, operator.address))
        .to.be.revertedWithCustomError(accounts, "NotAuthorized")
        .withArgs(2n, operator.address);
    });

    it("authorises an operator approved for all of the owner's accounts, until revoked", async function () {
      const { accounts, alice, operator } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      await accounts.connect(alice).createAccount(ISOLATED);
      await accounts.connect(alice).setApprovalForAll(operator.address, true);
      expect(await accounts.isAuthorized(1n, operator.address)).to.equal(true);
      expect(await accounts.isAuthorized(2n, operator.address)).to.equal(true);
      await accounts.connect(alice).setApprovalForAll(operator.address, false);
      expect(await accounts.isAuthorized(2n, operator.address)).to.equal(false);
    });

    it("drops the per-account approval and the old owner's rights on transfer", async function () {
      const { accounts, alice, bob, operator } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      await accounts.connect(alice).approve(operator.address, 1n);
      await accounts.connect(alice).transferFrom(alice.address, bob.address, 1n);
      expect(await accounts.isAuthorized(1n, operator.address)).to.equal(false);
      expect(await accounts.isAuthorized(1n, alice.address)).to.equal(false);
      expect(await accounts.isAuthorized(1n, bob.address)).to.equal(true);
    });

    it("reverts with NotAuthorized for a stranger", async function () {
      const { accounts, alice, stranger } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      await expect(accounts.requireAuthorized(1n, stranger.address))
        .to.be.revertedWithCustomError(accounts, "NotAuthorized")
        .withArgs(1n, stranger.address);
    });

    it("never authorises the zero address", async function () {
      const { accounts, alice } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      expect(await accounts.isAuthorized(1n, ethers.ZeroAddress)).to.equal(false);
    });
  });

  describe("trading grants (setTrader)", function () {
    const ALLOWANCE = 500n * 10n ** 6n;

    it("lets the owner set and revoke a trader's allowance, emitting TraderSet; a trader is no operator", async function () {
      const { accounts, alice, operator } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      await expect(accounts.connect(alice).setTrader(1n, operator.address, ALLOWANCE))
        .to.emit(accounts, "TraderSet")
        .withArgs(1n, operator.address, ALLOWANCE);
      expect(await accounts.traderAllowance(1n, operator.address)).to.equal(ALLOWANCE);
      // Not an operator: no withdrawals, bids or transfers (they check isAuthorized / ERC-721 approval).
      expect(await accounts.isAuthorized(1n, operator.address)).to.equal(false);
      await expect(
        accounts.connect(operator).transferFrom(alice.address, operator.address, 1n),
      ).to.be.revertedWithCustomError(accounts, "ERC721InsufficientApproval");
      await accounts.connect(alice).setTrader(1n, operator.address, 0n);
      expect(await accounts.traderAllowance(1n, operator.address)).to.equal(0n);
      await expect(accounts.authorizeTrade(1n, operator.address, 0n))
        .to.be.revertedWithCustomError(accounts, "NotAuthorized")
        .withArgs(1n, operator.address);
    });

    it("lets owners and ERC-721 operators trade at any cost without a grant, and nobody else", async function () {
      const { accounts, alice, operator, stranger } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      await accounts.connect(alice).approve(operator.address, 1n);
      for (const caller of [alice, operator]) {
        await expect(accounts.connect(stranger).authorizeTrade(1n, caller.address, ethers.MaxUint256)).not.to
          .be.reverted;
      }
      await expect(accounts.authorizeTrade(1n, stranger.address, 0n))
        .to.be.revertedWithCustomError(accounts, "NotAuthorized")
        .withArgs(1n, stranger.address);
    });

    it("spends a trader's allowance only from a market registered in the bound engine", async function () {
      const { accounts, alice, operator, stranger } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      await accounts.connect(alice).setTrader(1n, operator.address, ALLOWANCE);
      // Unbound here; bound, a non-market caller gets the same error (test/integration/TradingGrants).
      await expect(accounts.connect(stranger).authorizeTrade(1n, operator.address, 1n))
        .to.be.revertedWithCustomError(accounts, "NotMarket")
        .withArgs(stranger.address);
      expect(await accounts.traderAllowance(1n, operator.address)).to.equal(ALLOWANCE);
    });

    it("takes grants from the owner only: not from operators, traders or for unknown accounts", async function () {
      const { accounts, alice, operator, stranger } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      await accounts.connect(alice).setApprovalForAll(operator.address, true);
      await accounts.connect(alice).setTrader(1n, stranger.address, ALLOWANCE);
      for (const [caller, id] of [
        [operator, 1n],
        [stranger, 1n],
        [alice, 2n],
      ] as const) {
        await expect(accounts.connect(caller).setTrader(id, caller.address, ALLOWANCE))
          .to.be.revertedWithCustomError(accounts, "NotAuthorized")
          .withArgs(id, caller.address);
      }
    });

    it("ends every grant when the account changes hands, also when it comes back", async function () {
      const { accounts, alice, bob, operator } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      await accounts.connect(alice).setTrader(1n, operator.address, ALLOWANCE);
      await accounts.connect(alice).transferFrom(alice.address, bob.address, 1n);
      expect(await accounts.traderAllowance(1n, operator.address)).to.equal(0n);
      await accounts.connect(bob).transferFrom(bob.address, alice.address, 1n);
      expect(await accounts.traderAllowance(1n, operator.address)).to.equal(0n);
      await accounts.connect(alice).setTrader(1n, operator.address, ALLOWANCE);
      expect(await accounts.traderAllowance(1n, operator.address)).to.equal(ALLOWANCE);
    });
  });

  describe("bindMarginEngine", function () {
    it("binds once, by the deployer only, never to zero", async function () {
      const { accounts, deployer, stranger } = await loadFixture(deployAccountsFixture);
      await expect(accounts.connect(stranger).bindMarginEngine(stranger.address))
        .to.be.revertedWithCustomError(accounts, "NotDeployer")
        .withArgs(stranger.address);
      await expect(accounts.bindMarginEngine(ethers.ZeroAddress)).to.be.revertedWithCustomError(
        accounts,
        "ZeroMarginEngine",
      );
      await expect(accounts.bindMarginEngine(stranger.address))
        .to.emit(accounts, "MarginEngineBound")
        .withArgs(stranger.address);
      expect(await accounts.marginEngine()).to.equal(stranger.address);
      await expect(accounts.bindMarginEngine(deployer.address))
        .to.be.revertedWithCustomError(accounts, "NotDeployer")
        .withArgs(deployer.address);
    });
  });

  describe("unknown accounts", function () {
    it("reverts marginMode with UnknownAccount for id 0 and ids not yet created", async function () {
      const { accounts, alice } = await loadFixture(deployAccountsFixture);
      await accounts.connect(alice).createAccount(CROSS);
      for (const id of [0n, 2n, 2n ** 256n - 1n]) {
        await expect(accounts.marginMode(id))
          .to.be.revertedWithCustomError(accounts, "UnknownAccount")
          .withArgs(id);
      }
    });

    it("authorises nobody for an account that does not exist", async function () {
      const { accounts, alice } = await loadFixture(deployAccountsFixture);
      expect(await accounts.isAuthorized(1n, alice.address)).to.equal(false);
      await expect(accounts.requireAuthorized(1n, alice.address))
        .to.be.revertedWithCustomError(accounts, "NotAuthorized")
        .withArgs(1n, alice.address);
      await expect(accounts.ownerOf(1n))
        .to.be.revertedWithCustomError(accounts, "ERC721NonexistentToken")
        .withArgs(1n);
    });
  });
});
