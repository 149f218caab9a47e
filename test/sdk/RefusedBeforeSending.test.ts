import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  bid,
  buyOption,
  createAccount,
  deposit,
  openPosition,
  preview,
  quoteBid,
  withdraw,
} from "../../sdk/src";
import { MarginMode, openAccount, wad } from "../shared/system";
import { DAY, deployOptionsSystem, fromNow, listSeries } from "../shared/options";
import { expectXMarginError, sdkClient, systemWithClients } from "../shared/sdk";

/**
 * Mistakes a frontend written from the READMEs makes (review round 73, docs/reliability.md §4 rows
 * 171–174): each is refused before a transaction is sent, and leaves no allowance behind.
 */
const USDC = 10n ** 6n;

/** `promise` with what it resolves to replaced by "sent" (a receipt does not cross mocha's workers). */
const sent = (promise: Promise<unknown>): Promise<string> => promise.then(() => "sent");

async function owner() {
  const { sys, alice } = await systemWithClients();
  const { accountId } = await createAccount(alice, { mode: "cross" });
  const unlisted = await ethers.deployContract("MockERC20", ["Unlisted", "UNL", 18]);
  await unlisted.mint(sys.alice.address, wad("10"));
  await sys.weth.mint(sys.alice.address, wad("5"));
  await sys.usdc.mint(sys.alice.address, 1_000n * USDC);
  return { sys, alice, accountId, unlisted };
}

async function trader() {
  const sys = await deployOptionsSystem();
  const call = await listSeries(sys.options, "ETH", "3300", await fromNow(30n * DAY), true);
  const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  return { sys, alice: await sdkClient(sys, sys.alice), accountId, call };
}

describe("SDK actions: what is refused before anything is sent", function () {
  describe("deposit (row 171)", function () {
    it("sends no approval for a token the vault does not list: TokenNotListed, no allowance, no transaction", async function () {
      const { sys, alice, accountId, unlisted } = await loadFixture(owner);
      const nonce = await sys.alice.getNonce();
      await expectXMarginError(
        deposit(alice, { accountId, token: await unlisted.getAddress(), amount: wad("1") }),
        "TokenNotListed",
      );
      expect(await unlisted.allowance(sys.alice.address, await sys.vault.getAddress())).to.equal(0n);
      // An address without code: the vault's error too, not ethers' BAD_DATA from `allowance`.
      await expectXMarginError(
        deposit(alice, { accountId, token: "0x000000000000000000000000000000000000dEaD", amount: 1n }),
        "TokenNotListed",
      );
      expect(await sys.alice.getNonce()).to.equal(nonce);
    });

    it("sends no approval for the quote into an account that does not exist: UnknownAccount", async function () {
      const { sys, alice } = await loadFixture(owner);
      const nonce = await sys.alice.getNonce();
      await expectXMarginError(
        deposit(alice, { accountId: 999n, token: "USDC", amount: 100n * USDC }),
        "UnknownAccount",
      );
      expect(await sys.usdc.allowance(sys.alice.address, await sys.vault.getAddress())).to.equal(0n);
      expect(await sys.alice.getNonce()).to.equal(nonce);
    });

    it("sends no approval for more than the signer holds: ERC20InsufficientBalance with the balance", async function () {
      const { sys, alice, accountId } = await loadFixture(owner);
      const nonce = await sys.alice.getNonce();
      const error = await expectXMarginError(
        deposit(alice, { accountId, token: "WETH", amount: wad("6") }),
        "ERC20InsufficientBalance",
      );
      expect(error.args).to.deep.include({ balance: wad("5"), needed: wad("6") });
      expect(await sys.weth.allowance(sys.alice.address, await sys.vault.getAddress())).to.equal(0n);
      expect(await sys.alice.getNonce()).to.equal(nonce);
      // What the signer holds still goes in.
      await deposit(alice, { accountId, token: "WETH", amount: wad("5") });
      expect(await sys.vault.balanceOf(accountId, sys.weth)).to.equal(wad("5"));
    });
  });

  describe("trade deadlines (row 172)", function () {
    it("refuses a deadline in milliseconds (Date.now()) before sending a perp or an option trade", async function () {
      const { sys, alice, accountId, call } = await loadFixture(trader);
      const ms = BigInt(await time.latest()) * 1000n + 600_000n;
      const nonce = await sys.alice.getNonce();
      await expect(
        sent(openPosition(alice, { accountId, marketId: sys.markets.ETH, size: wad("0.1"), deadline: ms })),
      ).to.be.rejectedWith(RangeError, /seconds/);
      await expect(
        sent(buyOption(alice, { accountId, seriesId: call, size: wad("1"), deadline: ms })),
      ).to.be.rejectedWith(RangeError, /seconds/);
      expect(await sys.alice.getNonce()).to.equal(nonce);
      // The same deadline in seconds is sent and kept.
      const opened = await openPosition(alice, {
        accountId,
        marketId: sys.markets.ETH,
        size: wad("0.1"),
        deadline: ms / 1000n,
      });
      expect(opened.deadline).to.equal(ms / 1000n);
    });
  });

  describe("createAccount (row 173)", function () {
    it("refuses a mode it does not know (the README's CROSS / ISOLATED spelling) instead of creating a cross account", async function () {
      const { sys, alice } = await loadFixture(owner);
      const nonce = await sys.alice.getNonce();
      const count = await sys.accounts.balanceOf(sys.alice.address);
      await expect(sent(createAccount(alice, { mode: "ISOLATED" as "isolated" }))).to.be.rejectedWith(
        RangeError,
        /"cross" or "isolated"/,
      );
      expect(await sys.accounts.balanceOf(sys.alice.address)).to.equal(count);
      expect(await sys.alice.getNonce()).to.equal(nonce);
      const { accountId } = await createAccount(alice, { mode: "isolated" });
      expect(await sys.accounts.marginMode(accountId)).to.equal(BigInt(MarginMode.ISOLATED));
    });
  });

  describe("negative amounts (row 174)", function () {
    it("preview refuses a negative withdrawal or deposit instead of predicting that it passes", async function () {
      const { alice, accountId } = await loadFixture(owner);
      await deposit(alice, { accountId, token: "USDC", amount: 100n * USDC });
      await expect(
        preview(alice, accountId, { type: "withdraw", token: "USDC", amount: -5n }),
      ).to.be.rejectedWith(RangeError, /negative/);
      await expect(
        preview(alice, accountId, { type: "deposit", token: "USDC", amount: -5n }),
      ).to.be.rejectedWith(RangeError, /negative/);
    });

    it("withdraw and deposit refuse a negative amount with a RangeError naming it", async function () {
      const { sys, alice, accountId } = await loadFixture(owner);
      const nonce = await sys.alice.getNonce();
      await expect(sent(withdraw(alice, { accountId, token: "USDC", amount: -1n }))).to.be.rejectedWith(
        RangeError,
        /negative/,
      );
      await expect(sent(deposit(alice, { accountId, token: "USDC", amount: -1n }))).to.be.rejectedWith(
        RangeError,
        /negative/,
      );
      expect(await sys.alice.getNonce()).to.equal(nonce);
    });

    it("quoteBid and bid refuse a negative fraction with a RangeError, not ethers' ABI error", async function () {
      const { sys, alice, accountId } = await loadFixture(owner);
      const nonce = await sys.alice.getNonce();
      await expect(quoteBid(alice, { accountId, fraction: -1n })).to.be.rejectedWith(RangeError, /negative/);
      const bidding = bid(alice, { accountId, bidderAccountId: accountId, fraction: -1n, maxPayment: 0n });
      await expect(sent(bidding)).to.be.rejectedWith(RangeError, /negative/);
      expect(await sys.alice.getNonce()).to.equal(nonce);
    });
  });
});
