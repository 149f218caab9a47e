import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, deploySystem, openAccount, wad, type System, eventOf } from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { signerFor } from "../shared/impersonate";
import { refreshFeeds, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { INTEREST_MODEL, compoundIndex, interestRateAt, owedAtRecordedIndex } from "../shared/interest";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n; // one USDC unit in USD WAD
const DAY = 86_400n;

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/**
 * Alice's only collateral is 10 WETH; she went long 20 ETH and closed after a 10% fall, so she owes
 * ~6,100 USDC (a negative quote balance). Then governance sets the interest rate model: interest runs
 * from that block (`modelSetAt`) at the rate of the utilisation then.
 */
async function debtor() {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("10")]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
  await setFeedPrice(sys.feeds.ETH, "2700");
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("20"));
  await sys.vault.setInterestRateModel(INTEREST_MODEL);
  const modelSetAt = BigInt(await time.latest());
  const debt = -(await sys.vault.balanceOf(alice, sys.usdc));
  const rate = interestRateAt(debt, await sys.vault.totalDeposits(sys.usdc));
  return { sys, alice, debt, rate, modelSetAt };
}

/** Mines a block at exactly `timestamp` with fresh feeds, so views read that block's time. */
async function mineAt(sys: System, timestamp: bigint): Promise<void> {
  await time.increaseTo(timestamp - 10n);
  await refreshFeeds(sys, { atLatest: true });
  await time.increaseTo(timestamp);
}

describe("Quote interest (CollateralVault)", function () {
  describe("setInterestRateModel", function () {
    it("bounds the model, limits it to the risk manager and to one change a day", async function () {
      const { sys } = await loadFixture(debtor);
      for (const [bad, name, value] of [
        [{ ...INTEREST_MODEL, maxRate: wad("3") + 1n }, "maxRate", wad("3") + 1n],
        [{ ...INTEREST_MODEL, kinkRate: wad("1.6") }, "kinkRate", wad("1.6")],
        [{ ...INTEREST_MODEL, baseRate: wad("0.11") }, "baseRate", wad("0.11")],
        [{ ...INTEREST_MODEL, kinkUtilization: wad("0.49") }, "kinkUtilization", wad("0.49")],
        [{ ...INTEREST_MODEL, kinkUtilization: wad("0.995") }, "kinkUtilization", wad("0.995")],
        // Review round 14 (row 57): every rate at 0 made borrowing the whole vault free again.
        [
          { baseRate: 0n, kinkRate: 0n, maxRate: 0n, kinkUtilization: INTEREST_MODEL.kinkUtilization },
          "maxRate",
          0n,
        ],
        [{ ...INTEREST_MODEL, maxRate: wad("0.5") - 1n }, "maxRate", wad("0.5") - 1n],
        // One call took every debtor from ~2.6% to 300% a year: the rate at any utilisation moves ≤ 25
        // points a day, checked at 0, both kinks and 1 (the value is the utilisation that moved too far).
        [{ ...INTEREST_MODEL, baseRate: wad("0.27") + 1n, kinkRate: wad("0.3") }, "rateStep", 0n],
        [{ ...INTEREST_MODEL, kinkRate: wad("0.35") + 1n }, "rateStep", wad("0.8")],
        [{ ...INTEREST_MODEL, maxRate: wad("1.25") - 1n }, "rateStep", WAD],
        // Round 15: each field within its step, the kink moved 0.8 → 0.9: at 90% utilisation the rate
        // fell from 80% to 0.
        [
          { baseRate: 0n, kinkRate: 0n, maxRate: wad("1.25"), kinkUtilization: wad("0.9") },
          "rateStep",
          wad("0.9"),
        ],
      ] as const) {
        await expect(sys.vault.setInterestRateModel(bad))
          .to.be.revertedWithCustomError(sys.vault, "ParameterOutOfBounds")
          .withArgs(ethers.encodeBytes32String(name), value);
      }
      await expect(
        sys.vault.connect(sys.alice).setInterestRateModel(INTEREST_MODEL),
      ).to.be.revertedWithCustomError(sys.vault, "AccessManagedUnauthorized");
      await expect(sys.vault.setInterestRateModel(INTEREST_MODEL)).to.be.revertedWithCustomError(
        sys.vault,
        "UpdateTooSoon",
      );
      await time.increase(DAY);
      const next = { ...INTEREST_MODEL, kinkRate: wad("0.2") };
      await expect(sys.vault.setInterestRateModel(next)).to.emit(sys.vault, "InterestRateModelUpdated");
      expect(await sys.vault.interestRateModel()).to.deep.equal(Object.values(next));
    });

    it("reverts with MarginEngineNotSet until the engine knows the pool's account (the lender)", async function () {
      const { deployer, accounts, router, usdc, manager } = await loadFixture(deploySystem);
      const bare = await ethers.deployContract("CollateralVault", [manager, accounts, router, usdc]);
      await manager.setTargetFunctionRole(
        bare,
        [bare.interface.getFunction("setInterestRateModel").selector],
        0n,
      );
      await expect(bare.connect(deployer).setInterestRateModel(INTEREST_MODEL)).to.be.revertedWithCustomError(
        bare,
        "MarginEngineNotSet",
      );
    });
  });

  describe("rate", function () {
    it("follows utilisation: near the base rate with little lent, the maximum with every USDC lent out", async function () {
      const { sys, debt, rate } = await loadFixture(debtor);
      const cash = await sys.vault.totalDeposits(sys.usdc);
      // ~6,101 lent against ~1,010,000 held: u ≈ 0.6%, so 2% + 8%·u/80% ≈ 2.06%.
      expect((await sys.vault.quoteInterest()).rate).to.equal(rate);
      expect(rate).to.equal(
        INTEREST_MODEL.baseRate +
          ((INTEREST_MODEL.kinkRate - INTEREST_MODEL.baseRate) * ((debt * WAD) / (debt + cash))) /
            INTEREST_MODEL.kinkUtilization,
      );
      // The engine pays 990,000 USDC out of a WETH-only account (as a gain paid in cash would):
      // u = (6,101 + 990,000) / (6,101 + 990,000 + ~20,000) ≈ 98%, above the kink.
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad("1000")]]);
      // A day later, so that Alice owes interest she has not paid (the fixture's seconds may be none).
      await time.increase(DAY);
      await sys.vault.connect(await signerFor(sys.engine)).payOutQuote(bob, sys.bob.address, 990_000n * USDC);
      // Utilisation counts Alice's interest unpaid since the fixture (review round 170).
      const [debtNow, cashNow] = [await owedAtRecordedIndex(sys), await sys.vault.totalDeposits(sys.usdc)];
      expect(debtNow).to.be.greaterThan(await sys.vault.quoteDebt());
      expect((await sys.vault.quoteInterest()).rate).to.equal(interestRateAt(debtNow, cashNow));
      expect((await sys.vault.quoteInterest()).rate).to.be.greaterThan(wad("1.3"));
      // And the last USDC leaves: every unit in the vault is lent, the rate is the maximum.
      await sys.vault.connect(await signerFor(sys.engine)).payOutQuote(bob, sys.bob.address, cashNow);
      expect((await sys.vault.quoteInterest()).rate).to.equal(INTEREST_MODEL.maxRate);
    });
  });

  describe("accrual", function () {
    it("compounds continuously on the debt, and the engine and the pool count it at once", async function () {
      const { sys, alice, debt, rate, modelSetAt } = await loadFixture(debtor);
      const before = await sys.engine.health(alice);
      const poolAssets = await sys.pool.totalAssets();
      await mineAt(sys, modelSetAt + 30n * DAY);
      // The index starts at 1: the debt grows by e^(rate · 30/365), rounded up against Alice.
      const index = compoundIndex(WAD, rate, 30n * DAY);
      const owed = ceilDiv(debt * index, WAD) - debt;
      expect(await sys.vault.accruedInterest(alice)).to.equal(owed);
      const float = Number(debt) * (Math.exp((Number(rate) / 1e18) * (30 / 365)) - 1);
      expect(Math.abs(Number(owed) - float)).to.be.lessThan(2); // ~10.3 USDC on ~6,101
      // The recorded balance has not moved; its valuation has (USDC at 1 USD, a debt at full weight).
      expect(await sys.vault.balanceOf(alice, sys.usdc)).to.equal(-debt);
      const after = await sys.engine.health(alice);
      expect(before.equityMark - after.equityMark).to.equal(owed * QUOTE_UNIT);
      expect(before.equityInitial - after.equityInitial).to.equal(owed * QUOTE_UNIT);
      // The pool counts what Alice owes, rounded down (at most a unit less).
      const receivable = await sys.vault.interestReceivable();
      expect(receivable).to.be.within(owed - 1n, owed);
      expect((await sys.pool.totalAssets()) - poolAssets).to.equal(receivable);
    });

    it("charges the interest to the lender on the debtor's next quote movement", async function () {
      const { sys, alice, debt, rate, modelSetAt } = await loadFixture(debtor);
      const poolQuote = await sys.vault.balanceOf(sys.poolAccountId, sys.usdc);
      await mintAndApprove(sys.usdc, sys.alice, await sys.vault.getAddress(), 100n * USDC);
      await time.setNextBlockTimestamp(modelSetAt + 30n * DAY);
      const owed = ceilDiv(debt * compoundIndex(WAD, rate, 30n * DAY), WAD) - debt;
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

    // Found by the review of 2026-12-02: with simple interest, whoever called settleInterest daily
    // compounded a debtor's debt (64.81% a year paid at a 50% rate).
    it("owes the same however often anyone settles it (up to a unit per settlement)", async function () {
      const { sys, alice, debt } = await loadFixture(debtor);
      const owes = async (id: bigint) =>
        -(await sys.vault.balanceOf(id, sys.usdc)) + (await sys.vault.accruedInterest(id));
      // Bob owes exactly what Alice owes and is left alone; a keeper settles Alice every day. Alice's
      // interest has run since the fixture, so Bob borrows her debt with it, read at the latest block's
      // time and lent in a block at that time.
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad("10")]]);
      const aliceOwesNow = await owes(alice);
      await time.setNextBlockTimestamp(await time.latest());
      await sys.vault
        .connect(await signerFor(sys.engine))
        .transferBalance(bob, sys.poolAccountId, sys.usdc, aliceOwesNow);
      for (let day = 0; day < 30; day++) {
        await time.increase(DAY);
        await sys.vault.connect(sys.keeper).settleInterest(alice);
      }
      const [aliceOwes, bobOwes] = [await owes(alice), await owes(bob)];
      expect(aliceOwes - debt).to.be.greaterThan(0n);
      expect(aliceOwes - bobOwes).to.be.within(0n, 30n);
    });

    it("keeps what accrued at the old rate when the model changes", async function () {
      const { sys, alice, debt, rate, modelSetAt } = await loadFixture(debtor);
      await time.setNextBlockTimestamp(modelSetAt + 30n * DAY);
      const faster = { ...INTEREST_MODEL, baseRate: wad("0.05"), kinkRate: wad("0.2") };
      await sys.vault.setInterestRateModel(faster);
      const [index, newRate, updatedAt] = await sys.vault.quoteInterest();
      expect([index, updatedAt]).to.deep.equal([compoundIndex(WAD, rate, 30n * DAY), modelSetAt + 30n * DAY]);
      // At what Alice owes with the 30 days' interest (paid from 1e18, rounded down: review round 170).
      expect(await sys.vault.paidInterestIndex(alice)).to.equal(WAD);
      const owes = (debt * index) / WAD;
      const u = (owes * WAD) / (owes + (await sys.vault.totalDeposits(sys.usdc)));
      expect(newRate).to.equal(
        faster.baseRate + ((faster.kinkRate - faster.baseRate) * u) / faster.kinkUtilization,
      );
    });

    it("charges the lender nothing on its own debt and leaves it out of the receivable", async function () {
      const { sys, alice, debt, modelSetAt } = await loadFixture(debtor);
      // Put the pool's account into debt: the engine pays 1,000 USDC more than it holds to Bob.
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS);
      const poolQuote = await sys.vault.balanceOf(sys.poolAccountId, sys.usdc);
      // In the latest block's second (modelSetAt + 1 is already past if opening Bob's account took longer).
      await time.setNextBlockTimestamp(await time.latest());
      await sys.vault
        .connect(await signerFor(sys.engine))
        .transferBalance(sys.poolAccountId, bob, sys.usdc, poolQuote + 1_000n * USDC);
      await mineAt(sys, modelSetAt + 30n * DAY);
      expect(await sys.vault.accruedInterest(sys.poolAccountId)).to.equal(0n);
      const aliceOwes = await sys.vault.accruedInterest(alice);
      expect(await sys.vault.interestReceivable()).to.be.within(aliceOwes - 1n, aliceOwes);
      await expect(sys.vault.settleInterest(sys.poolAccountId)).not.to.emit(
        sys.vault,
        "QuoteInterestCharged",
      );
      expect(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)).to.equal(-1_000n * USDC);
      // Alice's interest still reaches it, and pays its debt down.
      await time.setNextBlockTimestamp(modelSetAt + 30n * DAY + 10n);
      const tx = await sys.vault.settleInterest(alice);
      const charged = eventOf(await tx.wait(), sys.vault, "QuoteInterestCharged").args.amount as bigint;
      expect(charged).to.be.greaterThan(0n);
      expect(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)).to.equal(-1_000n * USDC + charged);
      const debts = [
        await sys.vault.balanceOf(alice, sys.usdc),
        await sys.vault.balanceOf(sys.poolAccountId, sys.usdc),
      ];
      expect(await sys.vault.quoteDebt()).to.equal(-debts[0] - debts[1]);
      expect(-debts[0]).to.equal(debt + charged);
    });
  });
});
