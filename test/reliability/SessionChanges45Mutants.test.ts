/**
 * Review round 155: mutation test of session 45's changes (`git diff 26c36d8 a0ed69d -- contracts sdk/src
 * deploy`): the vault's one shocked credit per token and the quote's refusal (`QuoteTokenNeverShocked`,
 * the deploy parser's), the SDK's `HealthGroup.credit`/`shockedCredit`, round 152's deposit checks
 * (`tokenRefusal`, `requireAcceptedDeposit`, `preview`'s `depositPull`) and `decodeRevertData` leaving
 * Error(string) and Panic raw. Each spec fails on a hand-written mutant the rest of the suite let through
 * (named in the spec: round 155's REPORT.md) and passes on the code.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import type { JsonRpcProvider } from "ethers";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import {
  type AccountState,
  accountHealth,
  createClient,
  deposit,
  depositLiquidity,
  getAccountState,
  preview,
} from "../../sdk/src";
import { parseNetworkConfig } from "../../deploy/networkConfig";
import { rawConfig } from "../shared/configs";
import { MarginMode, WAD, atLatestTimestamp, deploySystem, openAccount, wad } from "../shared/system";
import { trade } from "../shared/perps";
import { mintAndApprove } from "../shared/tokens";
import { carolsBlocklistingWallet, deploymentOf, sdkClient } from "../shared/sdk";

const USDC = 10n ** 6n;
const BLOCKED = "Blacklistable: account is blacklisted";
/** Runtime code answering every call with the word 2: neither ERC-20's `true` nor its `false`. */
const RETURNS_TWO = "0x600260005260206000f3";
/** ERC-20's `transfer(address,uint256)` selector. */
const TRANSFER = "0xa9059cbb";

/** Carol's SDK client over a provider that records the selectors of the static calls made to `token`. */
async function recordingClient(sys: Awaited<ReturnType<typeof deploySystem>>, token: string) {
  const asked: string[] = [];
  const provider = new Proxy(ethers.provider, {
    get(target, key, proxy) {
      if (key === "provider") return proxy;
      if (key === "call") {
        return async (tx: { to?: string; data?: string }) => {
          if (tx.to?.toLowerCase() === token.toLowerCase() && tx.data) asked.push(tx.data.slice(0, 10));
          return target.call(tx as Parameters<typeof target.call>[0]);
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as unknown as JsonRpcProvider;
  const client = createClient({ runner: sys.carol.connect(provider), deployment: await deploymentOf(sys) });
  return { client, asked };
}

/**
 * Three shocked tokens on two underlyings, each credit below its MM floor (so uncapped): WETH shocked at
 * 0.99 (credit 0.04 of its mark), sWETH at 0.95 (0.03), WBTC at 0.99 (0.04). Alice's account holds 10 WETH
 * + 1 wei, 5 sWETH + 3 wei and 0.5 WBTC + 1 unit, long 1 ETH and 0.1 BTC perp; its SDK snapshot.
 */
async function threeShockedTokens() {
  const sys = await deploySystem();
  await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
  await sys.vault.setShockedWeight(sys.sweth, wad("0.95"));
  await sys.vault.setShockedWeight(sys.wbtc, wad("0.99"));
  const shares = wad("5") + 3n;
  await mintAndApprove(sys.weth, sys.alice, await sys.sweth.getAddress(), shares);
  await sys.sweth.connect(sys.alice).deposit(shares, sys.alice.address);
  const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [
    [sys.weth, wad("10") + 1n],
    [sys.wbtc, 50_000_000n + 1n],
  ]);
  await sys.sweth.connect(sys.alice).approve(await sys.vault.getAddress(), shares);
  await sys.vault.connect(sys.alice).deposit(id, sys.sweth, shares);
  await atLatestTimestamp();
  await trade(sys.perps, sys.alice, id, sys.markets.ETH, WAD);
  await trade(sys.perps, sys.alice, id, sys.markets.BTC, wad("0.1"));
  await atLatestTimestamp();
  const client = await sdkClient(sys, sys.alice);
  return { sys, id, state: await getAccountState(client, { accountId: id }) };
}

describe("Session changes 45: mutants of session 45's changes the earlier specs let through", function () {
  describe("deposit and depositLiquidity ask the token about the pull into the contract that pulls", function () {
    it("throws a blocklisted vault's refusal out of deposit before any approval: no transaction, no allowance", async function () {
      // Mutants A5 (the token asked about the depositor's transfer to itself) and A7 (to the pool) approved.
      const { sys, usdc, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      await usdc.setBlocklisted(vault, true);
      const nonce = await sys.carol.getNonce();
      await expect(
        deposit(client, { accountId: carol, token: "USDC", amount: 100n * USDC }),
      ).to.be.rejectedWith(BLOCKED);
      expect(await sys.carol.getNonce()).to.equal(nonce);
      expect(await usdc.allowance(sys.carol.address, vault)).to.equal(0n);
      // What the chain would have done: the vault's pull refused by the token.
      await usdc.connect(sys.carol).approve(vault, 100n * USDC);
      await expect(sys.vault.connect(sys.carol).deposit(carol, usdc, 100n * USDC)).to.be.revertedWith(
        BLOCKED,
      );
    });

    it("throws a blocklisted pool's refusal out of depositLiquidity before any approval: no transaction, no allowance", async function () {
      // Mutants A8 (the token asked about a transfer to the vault) and A9 (to the LP itself) approved.
      const { sys, usdc } = await loadFixture(carolsBlocklistingWallet);
      const pool = await sys.pool.getAddress();
      const lp = await sdkClient(sys, sys.carol);
      await usdc.setBlocklisted(pool, true);
      const nonce = await sys.carol.getNonce();
      await expect(depositLiquidity(lp, { amount: 1_000n * USDC })).to.be.rejectedWith(BLOCKED);
      expect(await sys.carol.getNonce()).to.equal(nonce);
      expect(await usdc.allowance(sys.carol.address, pool)).to.equal(0n);
      await usdc.connect(sys.carol).approve(pool, 1_000n * USDC);
      await expect(sys.pool.connect(sys.carol).deposit(1_000n * USDC, sys.carol.address)).to.be.revertedWith(
        BLOCKED,
      );
    });

    it("asks the token nothing more once the deposit's static call pulled the tokens (an allowance covers it)", async function () {
      // Mutant A1 (no return after a passing static deposit) also asked the token's transfer: one more
      // call before each such deposit, and a refusal of a transfer that the pull does not make.
      const { sys, carol, vault } = await loadFixture(carolsBlocklistingWallet);
      const { client, asked } = await recordingClient(sys, await sys.usdc.getAddress());
      await deposit(client, { accountId: carol, token: "USDC", amount: 100n * USDC });
      expect(asked).to.include(TRANSFER); // without the allowance: the pull is asked of the token
      asked.length = 0;
      await sys.usdc.connect(sys.carol).approve(vault, 100n * USDC);
      const { approval } = await deposit(client, { accountId: carol, token: "USDC", amount: 100n * USDC });
      expect(approval).to.equal("existing");
      expect(asked).to.not.include(TRANSFER);
    });
  });

  describe("preview of a deposit (preview.depositPull, tokenRefusal)", function () {
    it("asks the token's transfer, not the deposit, while the allowance is one unit short: no tokenError", async function () {
      // Mutant V2 (`allowance + 1n >= amount`) called the deposit statically and gave the token's
      // ERC20InsufficientAllowance as a refusal, which `deposit` would have cured with its approval.
      const { sys, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      const amount = 100n * USDC;
      await sys.usdc.connect(sys.carol).approve(vault, amount - 1n);
      const r = await preview(client, carol, { type: "deposit", token: "USDC", amount });
      expect([r.revert, r.tokenError, r.allowance]).to.deep.equal([undefined, undefined, amount - 1n]);
      expect((await deposit(client, { accountId: carol, token: "USDC", amount })).approval).to.equal(
        "approve",
      );
    });

    it("reads the allowance and calls the deposit at the snapshot's block, not the latest", async function () {
      // Mutants V6 (the allowance read at latest) and V8 (the deposit's static call at latest) answered
      // for a block the snapshot does not describe: an approval and a pause that came after it.
      const { sys, usdc, carol, client, vault } = await loadFixture(carolsBlocklistingWallet);
      const action = { type: "deposit", token: "USDC", amount: 100n * USDC } as const;
      const beforeApproval = await ethers.provider.getBlockNumber();
      await usdc.connect(sys.carol).approve(vault, 100n * USDC);
      const beforePause = await ethers.provider.getBlockNumber();
      await usdc.setPaused(true);
      const early = await preview(client, carol, action, { blockTag: beforeApproval });
      expect([early.allowance, early.tokenError]).to.deep.equal([0n, undefined]);
      const late = await preview(client, carol, action, { blockTag: beforePause });
      expect([late.allowance, late.tokenError]).to.deep.equal([100n * USDC, undefined]);
      expect((await preview(client, carol, action)).tokenError?.message).to.contain("Pausable: paused");
    });

    it("keeps a read-only client's protocol refusal, with nothing asked of the token", async function () {
      // Mutant V13 (a client without a signer taking `undefined` for the simulation's revert) previewed a
      // zero deposit as passing.
      const { sys, carol } = await loadFixture(carolsBlocklistingWallet);
      const readOnly = createClient({ runner: ethers.provider, deployment: await deploymentOf(sys) });
      const r = await preview(readOnly, carol, { type: "deposit", token: "USDC", amount: 0n });
      expect(r.revert?.name).to.equal("ZeroAmount");
      expect([r.tokenError, r.allowance]).to.deep.equal([undefined, undefined]);
    });

    it("reads a token returning neither true nor false (the word 2) as refusing, as SafeERC20 does", async function () {
      // Mutant T2 (any non-zero word read as true) gave no tokenError for a deposit the vault reverts.
      const { sys, carol, client } = await loadFixture(carolsBlocklistingWallet);
      await network.provider.send("hardhat_setCode", [await sys.usdc.getAddress(), RETURNS_TWO]);
      const r = await preview(client, carol, { type: "deposit", token: "USDC", amount: 100n * USDC });
      expect(r.revert).to.equal(undefined);
      expect(r.tokenError?.message).to.contain("returned false for the depositor's transfer of 100000000");
      const w = await preview(client, carol, { type: "withdraw", token: "USDC", amount: 100n * USDC });
      expect(w.tokenError?.message).to.contain(`returned false for the vault's transfer of 100000000`);
      await expect(sys.vault.connect(sys.carol).deposit(carol, sys.usdc, 100n * USDC))
        .to.be.revertedWithCustomError(sys.vault, "SafeERC20FailedOperation")
        .withArgs(await sys.usdc.getAddress());
    });
  });

  describe("the SDK's credits of shocked tokens (math/health.ts)", function () {
    it("reads a collateral state without a shocked weight (built by hand, or before session 44) as no credit", async function () {
      // Mutant H10 (an absent shocked weight read as 1) gave WETH a credit of 0.05 of its mark.
      const { state } = await loadFixture(threeShockedTokens);
      const withShocked = (shockedWeight: bigint | undefined): AccountState => ({
        ...state,
        collateral: state.collateral.map((c) => {
          const copy = { ...c };
          delete copy.shockedWeight;
          return shockedWeight === undefined ? copy : { ...copy, shockedWeight };
        }),
      });
      const absent = accountHealth(withShocked(undefined));
      const none = accountHealth(withShocked(0n));
      expect(absent.equityInitial).to.equal(none.equityInitial);
      expect(absent.equityMaintenance).to.equal(none.equityMaintenance);
      expect(accountHealth(state).equityMaintenance).to.be.greaterThan(none.equityMaintenance);
    });
  });

  describe("the deploy config's shocked weight on the quote token", function () {
    it("refuses one wei of shocked weight on the quote token, as the vault would", function () {
      // Mutant P3 (`> 1n`) let it through to a deployment the vault reverts (QuoteTokenNeverShocked).
      const raw = rawConfig("sepolia");
      raw.tokens.USDC.shockedWeight = "0.000000000000000001";
      expect(() => parseNetworkConfig(raw)).to.throw(
        "tokens.USDC.shockedWeight: the quote token prices no underlying and is never shocked",
      );
    });
  });
});
