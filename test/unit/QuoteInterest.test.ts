import { expect } from "chai";
import { ethers } from "hardhat";
import { impersonateAccount, loadFixture, setBalance, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, deploySystem, openAccount, wad } from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { refreshFeeds, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n; // one USDC unit in USD WAD
const YEAR = 365n * 86_400n;
const DAY = 86_400n;
const RATE = wad("0.10"); // 10% a year

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/**
 * Alice's only collateral is 10 WETH; she went long 20 ETH and closed after a 10% fall, so she owes
 * ~6,100 USDC (a negative quote balance). Then governance sets a 10% borrow rate: interest runs from
 * that block (`rateSetAt`).
 */
async function debtor() {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("10")]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
  await setFeedPrice(sys.feeds.ETH, "2700");
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("20"));
  await sys.vault.setQuoteBorrowRate(RATE);
  const rateSetAt = BigInt(await time.latest());
  const debt = -(await sys.vault.balanceOf(alice, sys.usdc));
  return { sys, alice, debt, rateSetAt };
}

/** Mines a block at exactly `timestamp` with fresh feeds, so views read that block's time. */
async function mineAt(sys: Awaited<ReturnType<typeof debtor>>["sys"], timestamp: bigint): Promise<void> {
  await time.increaseTo(timestamp - 10n);
  await refreshFeeds(sys);
  await time.increaseTo(timestamp);
}

describe("Quote interest (CollateralVault)", function () {
  describe("setQuoteBorrowRate", function () {
    it("bounds the rate, limits it to the risk manager and to one change a day", async function () {
      const { sys } = await loadFixture(debtor);
      await expect(sys.vault.setQuoteBorrowRate(wad("0.5") + 1n))
        .to.be.revertedWithCustomError(sys.vault, "ParameterOutOfBounds")
        .withArgs(ethers.encodeBytes32String("quoteBorrowRate"), wad("0.5") + 1n);
      await expect(sys.vault.connect(sys.alice).setQuoteBorrowRate(0n)).to.be.revertedWithCustomError(
        sys.vault,
        "AccessManagedUnauthorized",
      );
      await expect(sys.vault.setQuoteBorrowRate(0n)).to.be.revertedWithCustomError(
        sys.vault,
        "UpdateTooSoon",
      );
      await time.increase(DAY);
      await expect(sys.vault.setQuoteBorrowRate(wad("0.2")))
        .to.emit(sys.vault, "QuoteBorrowRateUpdated")
        .withArgs(wad("0.2"));
      const [, rate, updatedAt, lender] = await sys.vault.quoteInterest();
      expect([rate, updatedAt, lender]).to.deep.equal([
        wad("0.2"),
        BigInt(await time.latest()),
        sys.poolAccountId,
      ]);
    });

    it("reverts with MarginEngineNotSet until the engine knows the pool's account (the lender)", async function () {
      const { deployer, accounts, router, usdc, manager } = await loadFixture(deploySystem);
      const bare = await ethers.deployContract("CollateralVault", [manager, accounts, router, usdc]);
      await manager.setTargetFunctionRole(
        bare,
        [bare.interface.getFunction("setQuoteBorrowRate").selector],
        0n,
      );
      await expect(bare.connect(deployer).setQuoteBorrowRate(RATE)).to.be.revertedWithCustomError(
        bare,
        "MarginEngineNotSet",
      );
    });
  });

  describe("accrual", function () {
    it("accrues debt · rate · time / year on the debt, and the engine and the pool count it at once", async function () {
      const { sys, alice, debt, rateSetAt } = await loadFixture(debtor);
      const before = await sys.engine.health(alice);
      const poolAssets = await sys.pool.totalAssets();
      await mineAt(sys, rateSetAt + 30n * DAY);
      // 30 days at 10%: debt · 0.1 · 30/365, rounded up against the debtor (down for the pool).
      const index = (RATE * 30n * DAY) / YEAR;
      const owed = ceilDiv(debt * index, WAD);
      expect(await sys.vault.accruedInterest(alice)).to.equal(owed);
      expect(await sys.vault.interestReceivable()).to.equal((debt * index) / WAD);
      expect(owed).to.be.closeTo((debt * 30n) / 3650n, 1n); // ~50.15 USDC on ~6,101
      // The recorded balance has not moved; its valuation has (USDC at 1 USD, a debt at full weight).
      expect(await sys.vault.balanceOf(alice, sys.usdc)).to.equal(-debt);
      const after = await sys.engine.health(alice);
      expect(before.equityMark - after.equityMark).to.equal(owed * QUOTE_UNIT);
      expect(before.equityInitial - after.equityInitial).to.equal(owed * QUOTE_UNIT);
      expect((await sys.pool.totalAssets()) - poolAssets).to.equal((debt * index) / WAD);
    });

    it("charges the interest to the lender on the debtor's next quote movement, and then starts again", async function () {
      const { sys, alice, debt, rateSetAt } = await loadFixture(debtor);
      const poolQuote = await sys.vault.balanceOf(sys.poolAccountId, sys.usdc);
      await mintAndApprove(sys.usdc, sys.alice, await sys.vault.getAddress(), 100n * USDC);
      await time.setNextBlockTimestamp(rateSetAt + 30n * DAY);
      const owed = ceilDiv(debt * ((RATE * 30n * DAY) / YEAR), WAD);
      await expect(sys.vault.connect(sys.alice).deposit(alice, sys.usdc, 100n * USDC))
        .to.emit(sys.vault, "QuoteInterestCharged")
        .withArgs(alice, sys.poolAccountId, owed);
      expect(await sys.vault.balanceOf(alice, sys.usdc)).to.equal(-debt - owed + 100n * USDC);
      expect(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)).to.equal(poolQuote + owed);
      expect(await sys.vault.quoteDebt()).to.equal(debt + owed - 100n * USDC);
      expect([await sys.vault.accruedInterest(alice), await sys.vault.interestReceivable()]).to.deep.equal([
        0n,
        0n,
      ]);
    });

    it("keeps what accrued at the old rate when the rate changes", async function () {
      const { sys, alice, debt, rateSetAt } = await loadFixture(debtor);
      await time.setNextBlockTimestamp(rateSetAt + 30n * DAY);
      await sys.vault.setQuoteBorrowRate(wad("0.2"));
      await mineAt(sys, rateSetAt + 40n * DAY);
      // 30 days at 10%, then 10 days at 20%.
      const index = (RATE * 30n * DAY) / YEAR + (wad("0.2") * 10n * DAY) / YEAR;
      expect(await sys.vault.accruedInterest(alice)).to.equal(ceilDiv(debt * index, WAD));
    });

    it("settles for anyone who asks (a keeper), once per block", async function () {
      const { sys, alice, rateSetAt } = await loadFixture(debtor);
      await time.setNextBlockTimestamp(rateSetAt + DAY);
      await expect(sys.vault.connect(sys.keeper).settleInterest(alice)).to.emit(
        sys.vault,
        "QuoteInterestCharged",
      );
      const balance = await sys.vault.balanceOf(alice, sys.usdc);
      await time.setNextBlockTimestamp(rateSetAt + DAY + 1n);
      await ethers.provider.send("evm_setAutomine", [false]);
      const first = await sys.vault.connect(sys.keeper).settleInterest(alice);
      const second = await sys.vault.connect(sys.keeper).settleInterest(alice);
      await ethers.provider.send("evm_mine", []);
      await ethers.provider.send("evm_setAutomine", [true]);
      expect((await first.wait())!.logs.length).to.equal(2); // BalanceTransferred, QuoteInterestCharged
      expect((await second.wait())!.logs.length).to.equal(0);
      expect(await sys.vault.balanceOf(alice, sys.usdc)).to.be.lessThan(balance);
      // No debt, no interest: a no-op for an account in credit.
      await expect(sys.vault.settleInterest(sys.poolAccountId)).not.to.emit(
        sys.vault,
        "QuoteInterestCharged",
      );
    });

    it("charges the lender nothing on its own debt and leaves it out of the receivable", async function () {
      const { sys, alice, debt, rateSetAt } = await loadFixture(debtor);
      // Put the pool's account into debt: the engine pays 2,000,000 USDC of it to Bob.
      const engineAddress = await sys.engine.getAddress();
      await impersonateAccount(engineAddress);
      await setBalance(engineAddress, WAD);
      const engine = await ethers.getSigner(engineAddress);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS);
      const poolQuote = await sys.vault.balanceOf(sys.poolAccountId, sys.usdc);
      await sys.vault
        .connect(engine)
        .transferBalance(sys.poolAccountId, bob, sys.usdc, poolQuote + 1_000n * USDC);
      await mineAt(sys, rateSetAt + 30n * DAY);
      const index = (RATE * 30n * DAY) / YEAR;
      expect(await sys.vault.accruedInterest(sys.poolAccountId)).to.equal(0n);
      expect(await sys.vault.interestReceivable()).to.equal((debt * index) / WAD);
      await expect(sys.vault.settleInterest(sys.poolAccountId)).not.to.emit(
        sys.vault,
        "QuoteInterestCharged",
      );
      expect(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)).to.equal(-1_000n * USDC);
      // Alice's interest still reaches it, and pays down its debt.
      await time.setNextBlockTimestamp(rateSetAt + 30n * DAY + 1n);
      await sys.vault.settleInterest(alice);
      const owed = ceilDiv(debt * ((RATE * (30n * DAY + 1n)) / YEAR), WAD);
      expect(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)).to.equal(-1_000n * USDC + owed);
      const debts = [
        await sys.vault.balanceOf(alice, sys.usdc),
        await sys.vault.balanceOf(sys.poolAccountId, sys.usdc),
      ];
      expect(await sys.vault.quoteDebt()).to.equal(-debts[0] - debts[1]);
    });
  });
});
