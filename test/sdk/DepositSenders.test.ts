import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { UNLIMITED_TRADING_ALLOWANCE, deposit, preview, setTrader } from "../../sdk/src";
import { MarginMode, deploySystem, openAccount, wad } from "../shared/system";
import { expectXMarginError, sdkClient } from "../shared/sdk";

/**
 * Who may deposit what (review rounds 39 and 40): anyone the quote token, another token only the owner
 * or an operator. The SDK's `deposit` refuses before it sends an approval or a permit (round 40: it
 * approved first and left the vault an allowance for a deposit that could not happen), and `preview`
 * predicts the vault's order.
 */
const USDC = 10n ** 6n;

async function fixture() {
  const sys = await deploySystem();
  const alice = await sdkClient(sys, sys.alice);
  const bob = await sdkClient(sys, sys.bob);
  const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
  await sys.weth.mint(sys.bob.address, wad("2"));
  await sys.usdc.mint(sys.bob.address, 10n * USDC);
  return { sys, alice, bob, accountId };
}

describe("SDK deposits: who may send them", function () {
  describe("deposit", function () {
    it("sends no approval for a stranger's WETH deposit: NotAuthorized, no allowance left to the vault", async function () {
      const { sys, bob, accountId } = await loadFixture(fixture);
      const vault = await sys.vault.getAddress();
      const nonce = await sys.bob.getNonce();
      const error = await expectXMarginError(
        deposit(bob, { accountId, token: "WETH", amount: wad("1") }),
        "NotAuthorized",
      );
      expect(error.args).to.have.property("caller", sys.bob.address);
      expect(await sys.weth.allowance(sys.bob.address, vault)).to.equal(0n);
      expect(await sys.bob.getNonce()).to.equal(nonce);
    });

    it("nor for a trader holding an unlimited grant (a bot topping up WETH): NotAuthorized before any transaction", async function () {
      const { sys, alice, bob, accountId } = await loadFixture(fixture);
      await setTrader(alice, { accountId, trader: sys.bob.address, allowance: UNLIMITED_TRADING_ALLOWANCE });
      const nonce = await sys.bob.getNonce();
      await expectXMarginError(deposit(bob, { accountId, token: "WETH", amount: wad("1") }), "NotAuthorized");
      expect(await sys.weth.allowance(sys.bob.address, await sys.vault.getAddress())).to.equal(0n);
      expect(await sys.bob.getNonce()).to.equal(nonce);
    });

    it("throws the vault's own first error, in its order, and sends nothing: ZeroAmount, ProtocolAccountCollateral, NotAuthorized for an unknown id", async function () {
      const { sys, bob } = await loadFixture(fixture);
      const nonce = await sys.bob.getNonce();
      await expectXMarginError(deposit(bob, { accountId: 1n, token: "WETH", amount: 0n }), "ZeroAmount");
      const insurance = await sys.insuranceFund.accountId();
      await expectXMarginError(
        deposit(bob, { accountId: insurance, token: "WETH", amount: wad("1") }),
        "ProtocolAccountCollateral",
      );
      await expectXMarginError(
        deposit(bob, { accountId: 999n, token: "WETH", amount: wad("1") }),
        "NotAuthorized",
      );
      expect(await sys.bob.getNonce()).to.equal(nonce);
      // The chain agrees on each.
      const v = sys.vault.connect(sys.bob);
      await expect(v.deposit(1n, sys.weth, 0n)).to.be.revertedWithCustomError(sys.vault, "ZeroAmount");
      await expect(v.deposit(insurance, sys.weth, wad("1"))).to.be.revertedWithCustomError(
        sys.vault,
        "ProtocolAccountCollateral",
      );
      await expect(v.deposit(999n, sys.weth, wad("1"))).to.be.revertedWithCustomError(
        sys.accounts,
        "NotAuthorized",
      );
    });

    it("still lets anyone pay in the quote, and the owner and an operator deposit WETH", async function () {
      const { sys, alice, bob, accountId } = await loadFixture(fixture);
      await deposit(bob, { accountId, token: "USDC", amount: USDC });
      await sys.weth.mint(sys.alice.address, wad("1"));
      await deposit(alice, { accountId, token: "WETH", amount: wad("1") });
      await sys.accounts.connect(sys.alice).approve(sys.bob.address, accountId);
      await deposit(bob, { accountId, token: "WETH", amount: wad("1") });
      expect(await sys.vault.balanceOf(accountId, sys.weth)).to.equal(wad("2"));
      expect(await sys.vault.balanceOf(accountId, sys.usdc)).to.equal(1_001n * USDC);
    });
  });

  describe("preview", function () {
    it("predicts what the vault reverts with for a stranger: ZeroAmount, ProtocolAccountCollateral, NotAuthorized, and DepositCapExceeded only for an authorised sender", async function () {
      const { sys, bob, accountId } = await loadFixture(fixture);
      const weth = (amount: bigint) => ({ type: "deposit", token: "WETH", amount }) as const;
      expect((await preview(bob, accountId, weth(0n))).revert?.name).to.equal("ZeroAmount");
      const insurance = await sys.insuranceFund.accountId();
      expect((await preview(bob, insurance, weth(wad("1")))).revert?.name).to.equal(
        "ProtocolAccountCollateral",
      );
      // Past the cap (100,000 WETH): the stranger is refused first, as on chain.
      const big = wad("200000");
      expect((await preview(bob, accountId, weth(big))).revert?.name).to.equal("NotAuthorized");
      await sys.weth.mint(sys.bob.address, big);
      await sys.weth.connect(sys.bob).approve(await sys.vault.getAddress(), big);
      await expect(
        sys.vault.connect(sys.bob).deposit(accountId, sys.weth, big),
      ).to.be.revertedWithCustomError(sys.accounts, "NotAuthorized");
      const alice = await sdkClient(sys, sys.alice);
      expect((await preview(alice, accountId, weth(big))).revert?.name).to.equal("DepositCapExceeded");
    });
  });
});
