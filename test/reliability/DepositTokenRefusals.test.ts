import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { Interface, type JsonRpcProvider } from "ethers";
import { wad } from "../shared/system";
import { swapTokenCode } from "../shared/tokens";
import { carolsBlocklistingWallet, deploymentOf, sdkClient } from "../shared/sdk";
import { createClient, deposit, depositLiquidity, isXMarginError, preview } from "../../sdk/src";
import type { FeeOnTransferToken, OddERC20 } from "../../typechain-types";

/**
 * Review round 152: the SDK's previews of what moves a user's tokens into the protocol ask the token.
 * Two contract calls pull tokens from a user (`grep safeTransferFrom contracts`, OpenZeppelin's
 * ERC4626 included): `CollateralVault.deposit` (the sender's tokens, then a check that the vault received
 * exactly the amount: `TransferAmountMismatch`) and `LiquidityPool.deposit`/`depositWithLimit` (the LP's
 * quote to the pool, then the pool's into the vault). Bids, `bidAndClose`, `buyBackstopCollateral` and
 * option premiums move balances inside the vault and pull nothing (round 142, §4 row 406). The SDK's
 * entry points to them: `preview({ type: "deposit" })`, `deposit` and `depositLiquidity`. Round 142 made
 * a withdrawal's preview name the token's own refusal (`tokenError`); deposits still previewed only the
 * protocol's rules.
 */

const USDC = 10n ** 6n;
const BLOCKED = "Blacklistable: account is blacklisted";
const PAUSED = "Pausable: paused";
/** Runtime code answering every call with 32 zero bytes: `transfer`/`transferFrom` return false. */
const RETURNS_FALSE = "0x600060005260206000f3";

/** The name of an error a preview gives: an XMarginError's name, else its message's first line. */
function nameOf(error: Error | undefined): string | undefined {
  if (error === undefined) return undefined;
  return isXMarginError(error) ? error.name : error.message.split("\n")[0];
}

describe("Deposits and the token's own refusals (review round 152)", function () {
  describe("preview of a deposit asks the token about the vault's pull", function () {
    it("gives USDC's pause as tokenError, with or without an allowance, while the chain reverts with it", async function () {
      const { sys, usdc, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      const action = { type: "deposit", token: "USDC", amount: 100n * USDC } as const;
      expect((await preview(client, carol, action)).tokenError).to.equal(undefined);

      await usdc.setPaused(true);
      let r = await preview(client, carol, action);
      expect(r.revert).to.equal(undefined);
      expect(r.tokenError?.message).to.contain(PAUSED);
      expect(r.allowance).to.equal(0n);
      await usdc.connect(sys.carol).approve(vault, 100n * USDC);
      r = await preview(client, carol, action);
      expect(r.tokenError?.message).to.contain(PAUSED);
      expect(r.allowance).to.equal(100n * USDC);
      await expect(sys.vault.connect(sys.carol).deposit(carol, sys.usdc, 100n * USDC)).to.be.revertedWith(
        PAUSED,
      );
    });

    it("gives a blocklisted depositor's and a blocklisted vault's refusal, and none once both are clear", async function () {
      const { sys, usdc, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      const action = { type: "deposit", token: "USDC", amount: 100n * USDC } as const;
      await usdc.connect(sys.carol).approve(vault, 100n * USDC);
      for (const listed of [sys.carol.address, vault]) {
        await usdc.setBlocklisted(listed, true);
        const r = await preview(client, carol, action);
        expect(r.revert).to.equal(undefined);
        expect(r.tokenError?.message).to.contain(BLOCKED);
        await expect(sys.vault.connect(sys.carol).deposit(carol, sys.usdc, 100n * USDC)).to.be.revertedWith(
          BLOCKED,
        );
        await usdc.setBlocklisted(listed, false);
      }
      expect((await preview(client, carol, action)).tokenError).to.equal(undefined);
      await sys.vault.connect(sys.carol).deposit(carol, sys.usdc, 100n * USDC);
    });

    it("gives a wallet short of the amount as ERC20InsufficientBalance, the token's error on the chain", async function () {
      const { sys, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      const amount = 10_001n * USDC; // the wallet holds 10,000
      const r = await preview(client, carol, { type: "deposit", token: "USDC", amount });
      expect(r.revert).to.equal(undefined);
      expect(nameOf(r.tokenError)).to.equal("ERC20InsufficientBalance");
      await sys.usdc.connect(sys.carol).approve(vault, amount);
      expect(
        nameOf((await preview(client, carol, { type: "deposit", token: "USDC", amount })).tokenError),
      ).to.equal("ERC20InsufficientBalance");
      await expect(
        sys.vault.connect(sys.carol).deposit(carol, sys.usdc, amount),
      ).to.be.revertedWithCustomError(sys.usdc, "ERC20InsufficientBalance");
    });

    it("gives the depositor's allowance, short of the amount before `deposit` grants it, with no tokenError for it", async function () {
      const { sys, carol, client } = await loadFixture(carolsBlocklistingWallet);
      const action = { type: "deposit", token: "USDC", amount: 100n * USDC } as const;
      const r = await preview(client, carol, action);
      expect(r.allowance).to.equal(0n);
      expect(r.tokenError).to.equal(undefined);
      // A bare vault.deposit needs the allowance; the SDK's deposit grants it and goes through.
      await expect(
        sys.vault.connect(sys.carol).deposit(carol, sys.usdc, 100n * USDC),
      ).to.be.revertedWithCustomError(sys.usdc, "ERC20InsufficientAllowance");
      expect((await deposit(client, { accountId: carol, ...action })).approval).to.equal("approve");
    });

    it("gives a fee-on-transfer token's short delivery (TransferAmountMismatch) once the allowance covers the amount", async function () {
      const { sys, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      await swapTokenCode<FeeOnTransferToken>(sys.weth, "FeeOnTransferToken", ["Wrapped Ether", "WETH", 18]);
      await sys.weth.connect(sys.carol).approve(vault, wad("1"));
      const r = await preview(client, carol, { type: "deposit", token: "WETH", amount: wad("1") });
      expect(r.revert).to.equal(undefined);
      expect(nameOf(r.tokenError)).to.equal("TransferAmountMismatch");
      expect(isXMarginError(r.tokenError) && r.tokenError.args).to.deep.include({
        expected: wad("1"),
        received: wad("0.99"),
      });
      await expect(sys.vault.connect(sys.carol).deposit(carol, sys.weth, wad("1")))
        .to.be.revertedWithCustomError(sys.vault, "TransferAmountMismatch")
        .withArgs(sys.weth, wad("1"), wad("0.99"));
    });

    it("gives a token's `false` as tokenError, and reads one returning nothing (USDT's) as sending", async function () {
      const { sys, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      const action = { type: "deposit", token: "USDC", amount: 100n * USDC } as const;
      // OddERC20 (no return value) over USDC: its own slots, its bonus set to none.
      const odd = await swapTokenCode<OddERC20>(sys.usdc, "OddERC20", ["USD Coin", "USDC", 6]);
      await odd.setBonus(0n);
      await odd.mint(sys.carol.address, 100n * USDC);
      expect((await preview(client, carol, action)).tokenError).to.equal(undefined);
      await odd.connect(sys.carol).approve(vault, 100n * USDC);
      expect((await preview(client, carol, action)).tokenError).to.equal(undefined);
      await sys.vault.connect(sys.carol).deposit(carol, sys.usdc, 100n * USDC);
      // A rebase landing inside the pull (one unit more than sent) is the vault's refusal too.
      await odd.setBonus(1n);
      await odd.mint(sys.carol.address, 100n * USDC);
      await odd.connect(sys.carol).approve(vault, 100n * USDC);
      expect(nameOf((await preview(client, carol, action)).tokenError)).to.equal("TransferAmountMismatch");
      await expect(
        sys.vault.connect(sys.carol).deposit(carol, sys.usdc, 100n * USDC),
      ).to.be.revertedWithCustomError(sys.vault, "TransferAmountMismatch");

      await network.provider.send("hardhat_setCode", [await sys.usdc.getAddress(), RETURNS_FALSE]);
      const r = await preview(client, carol, action);
      expect(r.revert).to.equal(undefined);
      expect(r.tokenError?.message).to.contain("returned false for the depositor's transfer of 100000000");
      await expect(
        sys.vault.connect(sys.carol).deposit(carol, sys.usdc, 100n * USDC),
      ).to.be.revertedWithCustomError(sys.vault, "SafeERC20FailedOperation");
    });

    it("gives a protocol refusal first, with no tokenError, and asks a read-only client's owner", async function () {
      const { sys, usdc, carol, client } = await loadFixture(carolsBlocklistingWallet);
      await usdc.setPaused(true);
      const r = await preview(client, carol, { type: "deposit", token: "USDC", amount: 0n });
      expect(r.revert?.name).to.equal("ZeroAmount");
      expect(r.tokenError).to.equal(undefined);
      expect(r.allowance).to.equal(undefined);
      const bob = await sdkClient(sys, sys.bob);
      const stranger = await preview(bob, carol, { type: "deposit", token: "WETH", amount: wad("1") });
      expect(stranger.revert?.name).to.equal("NotAuthorized");
      expect(stranger.tokenError).to.equal(undefined);

      await usdc.setPaused(false);
      await usdc.setBlocklisted(sys.carol.address, true);
      const readOnly = createClient({ runner: ethers.provider, deployment: await deploymentOf(sys) });
      const owners = await preview(readOnly, carol, { type: "deposit", token: "USDC", amount: USDC });
      expect(owners.tokenError?.message).to.contain(BLOCKED);
      // Bob, a clean payer of the quote into Carol's account, is asked about his own wallet.
      await sys.usdc.mint(sys.bob.address, USDC);
      expect(
        (await preview(bob, carol, { type: "deposit", token: "USDC", amount: USDC })).tokenError,
      ).to.equal(undefined);
    });

    it("asks with two calls beyond the protocol's reads (the allowance, one static call), at the snapshot's block", async function () {
      const { sys, usdc, carol } = await loadFixture(carolsBlocklistingWallet);
      const usdcAddress = (await sys.usdc.getAddress()).toLowerCase();
      const vaultAddress = (await sys.vault.getAddress()).toLowerCase();
      const asked: string[] = [];
      const ALLOWANCE = "0xdd62ed3e";
      const TRANSFER = "0xa9059cbb";
      const DEPOSIT = sys.vault.interface.getFunction("deposit").selector;
      const provider = new Proxy(ethers.provider, {
        get(target, key, proxy) {
          if (key === "provider") return proxy;
          if (key === "call") {
            return async (tx: { to?: string; data?: string; blockTag?: unknown }) => {
              const to = tx.to?.toLowerCase();
              const selector = tx.data?.slice(0, 10);
              if (to === usdcAddress && (selector === ALLOWANCE || selector === TRANSFER))
                asked.push(selector);
              if (to === vaultAddress && selector === DEPOSIT) asked.push(selector);
              return target.call(tx as Parameters<typeof target.call>[0]);
            };
          }
          const value = Reflect.get(target, key, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }) as unknown as JsonRpcProvider;
      const client = createClient({
        runner: sys.carol.connect(provider),
        deployment: await deploymentOf(sys),
      });
      const action = { type: "deposit", token: "USDC", amount: 100n * USDC } as const;
      const before = await ethers.provider.getBlockNumber();
      await usdc.setPaused(true);
      expect((await preview(client, carol, action, { blockTag: before })).tokenError).to.equal(undefined);
      expect(asked).to.deep.equal([ALLOWANCE, TRANSFER]);
      asked.length = 0;
      await usdc.setPaused(false);
      await usdc.connect(sys.carol).approve(sys.vault, 100n * USDC);
      expect((await preview(client, carol, action)).tokenError).to.equal(undefined);
      expect(asked).to.deep.equal([ALLOWANCE, DEPOSIT]);
    });
  });

  describe("deposit and depositLiquidity refuse before they approve", function () {
    it("throws USDC's pause out of deposit before any approval: no transaction, no allowance left", async function () {
      const { sys, usdc, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      await usdc.setPaused(true);
      const nonce = await sys.carol.getNonce();
      await expect(
        deposit(client, { accountId: carol, token: "USDC", amount: 100n * USDC }),
      ).to.be.rejectedWith(PAUSED);
      expect(await sys.carol.getNonce()).to.equal(nonce);
      expect(await usdc.allowance(sys.carol.address, vault)).to.equal(0n);
    });

    it("throws a blocklisted LP's refusal out of depositLiquidity before any approval", async function () {
      const { sys, usdc } = await loadFixture(carolsBlocklistingWallet);
      const lp = await sdkClient(sys, sys.carol);
      await usdc.setBlocklisted(sys.carol.address, true);
      const nonce = await sys.carol.getNonce();
      await expect(depositLiquidity(lp, { amount: 1_000n * USDC })).to.be.rejectedWith(BLOCKED);
      expect(await sys.carol.getNonce()).to.equal(nonce);
      expect(await usdc.allowance(sys.carol.address, sys.pool)).to.equal(0n);
      // Clear, the same deposit goes through.
      await usdc.setBlocklisted(sys.carol.address, false);
      expect((await depositLiquidity(lp, { amount: 1_000n * USDC })).assets).to.equal(1_000n * USDC);
    });

    it("throws a fee-on-transfer token's TransferAmountMismatch out of deposit before sending, when the allowance covers it", async function () {
      const { sys, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      await swapTokenCode<FeeOnTransferToken>(sys.weth, "FeeOnTransferToken", ["Wrapped Ether", "WETH", 18]);
      await sys.weth.connect(sys.carol).approve(vault, wad("1"));
      const nonce = await sys.carol.getNonce();
      const error = await deposit(client, { accountId: carol, token: "WETH", amount: wad("1") }).catch(
        (e: unknown) => e,
      );
      expect(isXMarginError(error) && error.name).to.equal("TransferAmountMismatch");
      expect(await sys.carol.getNonce()).to.equal(nonce);
    });

    it("still approves, then reverts, a fee-on-transfer deposit whose allowance it must grant (left: no static call sees what the token delivers)", async function () {
      const { sys, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      await swapTokenCode<FeeOnTransferToken>(sys.weth, "FeeOnTransferToken", ["Wrapped Ether", "WETH", 18]);
      const r = await preview(client, carol, { type: "deposit", token: "WETH", amount: wad("1") });
      expect([r.revert, r.tokenError, r.allowance]).to.deep.equal([undefined, undefined, 0n]);
      const nonce = await sys.carol.getNonce();
      const error = await deposit(client, { accountId: carol, token: "WETH", amount: wad("1") }).catch(
        (e: unknown) => e,
      );
      expect(isXMarginError(error) && error.name).to.equal("TransferAmountMismatch");
      expect(await sys.carol.getNonce()).to.equal(nonce + 2); // the approval, then the reverted deposit
      expect(await sys.weth.allowance(sys.carol.address, vault)).to.equal(wad("1"));
    });
  });

  describe("which static call sees which refusal (the evaluation)", function () {
    const ERC20 = new Interface([
      "function transfer(address to, uint256 amount) returns (bool)",
      "function transferFrom(address from, address to, uint256 amount) returns (bool)",
    ]);

    /** "ok", "false", or the revert's first words, of a static call of `data` to `to` from `from`. */
    async function ask(to: string, from: string, data: string): Promise<string> {
      try {
        const out = await ethers.provider.call({ to, from, data });
        return out !== "0x" && BigInt(out.slice(0, 66)) !== 1n ? "false" : "ok";
      } catch (error) {
        const message = String((error as Error).message);
        const custom = /reverted with custom error '(\w+)/.exec(message)?.[1];
        const reason = /reverted with reason string '([^']+)'/.exec(message)?.[1];
        return custom ?? reason ?? message.slice(0, 40);
      }
    }

    it("tells the three candidates apart on seven token behaviours, against the chain", async function () {
      const { sys, usdc, carol, vault } = await loadFixture(carolsBlocklistingWallet);
      const c = sys.carol.address;
      const amount = 100n * USDC;
      const deposits = sys.vault.interface.encodeFunctionData("deposit", [
        carol,
        await sys.usdc.getAddress(),
        amount,
      ]);
      const usdcAddress = await sys.usdc.getAddress();
      /** [transferFrom(carol, vault) from the vault, transfer(vault) from Carol, vault.deposit from Carol]. */
      const candidates = async (): Promise<string[]> => [
        await ask(usdcAddress, vault, ERC20.encodeFunctionData("transferFrom", [c, vault, amount])),
        await ask(usdcAddress, c, ERC20.encodeFunctionData("transfer", [vault, amount])),
        await ask(vault, c, deposits),
      ];
      const table: Record<string, string[]> = {};
      await usdc.setPaused(true);
      table.pausedNoAllowance = await candidates();
      await usdc.connect(sys.carol).approve(vault, amount);
      table.pausedAllowed = await candidates();
      await usdc.setPaused(false);
      await usdc.setBlocklisted(c, true);
      table.depositorListed = await candidates();
      await usdc.setBlocklisted(c, false);
      table.clean = await candidates();
      await usdc.connect(sys.carol).approve(vault, 0n);
      table.noAllowance = await candidates();
      await usdc.connect(sys.carol).approve(vault, 20_000n * USDC);
      await usdc.connect(sys.carol).transfer(sys.bob.address, 9_950n * USDC); // 50 left
      table.balanceShort = await candidates();
      expect(table).to.deep.equal({
        // OpenZeppelin's ERC20 spends the allowance before `_update`: the pause is hidden behind it.
        pausedNoAllowance: ["ERC20InsufficientAllowance", PAUSED, "ERC20InsufficientAllowance"],
        pausedAllowed: [PAUSED, PAUSED, PAUSED],
        depositorListed: [BLOCKED, BLOCKED, BLOCKED],
        clean: ["ok", "ok", "ok"],
        noAllowance: ["ERC20InsufficientAllowance", "ok", "ERC20InsufficientAllowance"],
        balanceShort: ["ERC20InsufficientBalance", "ERC20InsufficientBalance", "ERC20InsufficientBalance"],
      });

      // A fee-on-transfer token: only the deposit itself sees what arrives.
      await sys.usdc.connect(sys.bob).transfer(c, 9_950n * USDC);
      await swapTokenCode<FeeOnTransferToken>(sys.usdc, "FeeOnTransferToken", ["USD Coin", "USDC", 6]);
      expect(await candidates()).to.deep.equal(["ok", "ok", "TransferAmountMismatch"]);
      // A token returning false: both token calls see it, the deposit as SafeERC20's error.
      await network.provider.send("hardhat_setCode", [usdcAddress, RETURNS_FALSE]);
      expect(await candidates()).to.deep.equal(["false", "false", "SafeERC20FailedOperation"]);
    });
  });
});
