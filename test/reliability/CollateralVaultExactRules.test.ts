import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, deploySystem, openAccount, wad, whatIf, type System } from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { signerFor } from "../shared/impersonate";
import { addPriceFeed, assetId, setFeedPrice } from "../shared/oracles";
import { refreshFeeds } from "../shared/perps";
import { INTEREST_MODEL, YEAR, compoundIndex, interestRateAt, owedAtRecordedIndex } from "../shared/interest";

/**
 * Review round 95: hand mutation testing of CollateralVault and InterestMath. Each spec fails on at least
 * one mutant of the round's list (docs/reliability.md row 245), and most of those mutants survived the
 * rest of the suite; each names the exact rule it holds. OddERC20 (contracts/test) is the USDT-style
 * token without return values that can also credit a pull with more than was sent.
 */

const USDC = 10n ** 6n;
const DAY = 86_400n;
const b32 = (name: string): string => ethers.encodeBytes32String(name);

/**
 * The full system (ETH 3,000, USDC 1, no interest model yet). Alice's CROSS account holds 1 WETH and owes
 * 2,800 USDC to Bob's (moved by the engine), so her initial equity is 0.9 · 3,000 − 2,800 = −100 USD
 * with no requirement: a shortfall of exactly 100 USD. Bob's account holds 10,000 USDC of his own.
 */
async function debtorWorld() {
  const sys = await deploySystem();
  const engineSigner = await signerFor(sys.engine);
  const aliceId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("1")]]);
  const bobId = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await sys.vault.connect(engineSigner).transferBalance(aliceId, bobId, sys.usdc, 2_800n * USDC);
  return { sys, engineSigner, aliceId, bobId };
}

/** The world above with INTEREST_MODEL set (the pool's account is the lender). */
async function interestWorld() {
  const world = await debtorWorld();
  await world.sys.vault.setInterestRateModel(INTEREST_MODEL);
  return world;
}

/** Mints `amount` USDC to `payer` and deposits it into `accountId`. */
async function payQuote(sys: System, payer: System["carol"], accountId: bigint, amount: bigint) {
  await mintAndApprove(sys.usdc, payer, await sys.vault.getAddress(), amount);
  return sys.vault.connect(payer).deposit(accountId, sys.usdc, amount);
}

/** debt · index / paidIndex − debt, rounded up (InterestMath.owed). */
const owed = (debt: bigint, index: bigint, paidIndex: bigint): bigint =>
  (debt * index + paidIndex - 1n) / paidIndex - debt;

/** The index at `timestamp`, from the vault's last record. */
async function indexAt(sys: System, timestamp: bigint): Promise<bigint> {
  const [index, rate, updatedAt] = await sys.vault.quoteInterest();
  return compoundIndex(index, rate, timestamp - updatedAt);
}

/** Sends `txs` in one block (automining off meanwhile) and returns their receipts. */
async function inOneBlock(txs: (() => Promise<{ hash: string }>)[]) {
  await ethers.provider.send("evm_setAutomine", [false]);
  const sent = [];
  try {
    for (const tx of txs) sent.push(await tx());
    await ethers.provider.send("evm_mine", []);
  } finally {
    await ethers.provider.send("evm_setAutomine", [true]);
  }
  return Promise.all(sent.map((tx) => ethers.provider.getTransactionReceipt(tx.hash)));
}

/**
 * Asserts the vault's recorded rate is the model's at what the debts owe at the recorded index (settled
 * or not: review round 170) and the quote held now, recorded this block.
 */
async function expectRateRecordedNow(sys: System): Promise<void> {
  const [, rate, updatedAt] = await sys.vault.quoteInterest();
  const debt = await owedAtRecordedIndex(sys);
  expect(rate).to.equal(interestRateAt(debt, await sys.vault.totalDeposits(sys.usdc)));
  expect(updatedAt).to.equal(BigInt(await time.latest()));
}

describe("CollateralVault's exact rules", function () {
  describe("listing bounds", function () {
    it("measures a smallest unit's value rounded up: 10.000000000000000001 USD over 2 decimals is refused", async function () {
      const { sys } = await loadFixture(debtorWorld);
      await addPriceFeed(sys.router, "ODD", "10.000000000000000001", { decimals: 18 });
      const token = await ethers.deployContract("MockERC20", ["Odd cent", "ODD", 2]);
      // 0.100000000000000000 01 USD a unit rounds up to one wei past MAX_UNIT_VALUE.
      await expect(sys.vault.listCollateral(token, assetId("ODD"), wad("0.5"), wad("0.6"), 1n, false))
        .to.be.revertedWithCustomError(sys.vault, "ParameterOutOfBounds")
        .withArgs(b32("unitValue"), wad("0.1") + 1n);
    });

    it("prices an ERC-4626 share rounded up for the unit bound: 101 assets per 100 shares at 9.900990099009900991 USD is refused", async function () {
      const { sys } = await loadFixture(debtorWorld);
      // The underlying: 2 decimals. 99 units deposited, then 1 donated: 100 shares convert to 101 units.
      const cent = await ethers.deployContract("MockERC20", ["Cent", "CENT", 2]);
      const share = await ethers.deployContract("MockERC4626", [cent, "Cent share", "sCENT", 0]);
      await cent.mint(sys.carol.address, 100n);
      await cent.connect(sys.carol).approve(share, 99n);
      await share.connect(sys.carol).deposit(99n, sys.carol.address);
      await cent.connect(sys.carol).transfer(share, 1n);
      expect(await share.convertToAssets(100n)).to.equal(101n);
      // 9.900990099009900991 · 101 / 100 = 10.00000000000000000091 USD a whole share: rounded down it is
      // exactly ten cents a unit (listable), rounded up one wei more (refused).
      await addPriceFeed(sys.router, "CENT", "9.900990099009900991", { decimals: 18 });
      await expect(sys.vault.listCollateral(share, assetId("CENT"), wad("0.5"), wad("0.6"), 1n, true))
        .to.be.revertedWithCustomError(sys.vault, "ParameterOutOfBounds")
        .withArgs(b32("unitValue"), wad("0.1") + 1n);
    });
  });

  describe("risk steps at their exact bounds", function () {
    it("accepts a maintenance weight equal to the current initial weight while the initial weight is cut", async function () {
      const { sys } = await loadFixture(debtorWorld);
      // WETH 0.90 / 0.95 → 0.85 / 0.90: the new maintenance weight is the current initial weight.
      await expect(sys.vault.setCollateralWeights(sys.weth, wad("0.85"), wad("0.9")))
        .to.emit(sys.vault, "CollateralWeightsUpdated")
        .withArgs(await sys.weth.getAddress(), wad("0.85"), wad("0.9"));
    });

    it("does not start the cap interval when a cap is set to its current value", async function () {
      const { sys } = await loadFixture(debtorWorld);
      const cap = (await sys.vault.collateralConfig(sys.weth)).depositCap;
      await sys.vault.setDepositCap(sys.weth, cap);
      // The day's raise is still available, and then spent.
      await expect(sys.vault.setDepositCap(sys.weth, cap * 2n))
        .to.emit(sys.vault, "DepositCapUpdated")
        .withArgs(await sys.weth.getAddress(), cap * 2n);
      await expect(sys.vault.setDepositCap(sys.weth, cap * 3n)).to.be.revertedWithCustomError(
        sys.vault,
        "UpdateTooSoon",
      );
    });

    it("accepts a first interest model at each inclusive bound", async function () {
      const { sys } = await loadFixture(debtorWorld);
      const models = [
        { ...INTEREST_MODEL, maxRate: wad("3") }, // MAX_QUOTE_BORROW_RATE
        { ...INTEREST_MODEL, maxRate: wad("0.5") }, // MIN_MAX_RATE
        { ...INTEREST_MODEL, kinkRate: INTEREST_MODEL.maxRate }, // kinkRate = maxRate
        { ...INTEREST_MODEL, baseRate: INTEREST_MODEL.kinkRate }, // baseRate = kinkRate
        { ...INTEREST_MODEL, kinkUtilization: wad("0.5") }, // MIN_KINK
        { ...INTEREST_MODEL, kinkUtilization: wad("0.99") }, // MAX_KINK
      ];
      for (const model of models) {
        await whatIf(async () => {
          await expect(sys.vault.setInterestRateModel(model)).to.emit(sys.vault, "InterestRateModelUpdated");
          expect((await sys.vault.interestRateModel()).maxRate).to.equal(model.maxRate);
        });
      }
    });
  });

  describe("interest model steps", function () {
    it("checks the rate step at the current kink too: moving the kink from 80% to 90% at an unchanged rate there is refused", async function () {
      const { sys } = await loadFixture(interestWorld);
      await time.increase(DAY);
      // At 0, 90% and 100% the rates are unchanged (2%, 80%, 150%), but at 80% (the current kink) the
      // rate would jump from 10% to 2% + 78% · 0.8 / 0.9 = 71.3%.
      const moved = { ...INTEREST_MODEL, kinkRate: wad("0.8"), kinkUtilization: wad("0.9") };
      await expect(sys.vault.setInterestRateModel(moved))
        .to.be.revertedWithCustomError(sys.vault, "ParameterOutOfBounds")
        .withArgs(b32("rateStep"), wad("0.8"));
      // A move of exactly 25 points (at full utilisation) is accepted.
      await expect(sys.vault.setInterestRateModel({ ...INTEREST_MODEL, maxRate: wad("1.75") })).to.emit(
        sys.vault,
        "InterestRateModelUpdated",
      );
    });
  });

  describe("quote cures past the cap", function () {
    /** Caps USDC at what the vault holds plus 3,000 USDC of room. */
    async function capWithRoom(sys: System): Promise<bigint> {
      const cap = (await sys.vault.totalDeposits(sys.usdc)) + 3_000n * USDC;
      await sys.vault.setDepositCap(sys.usdc, cap);
      return cap;
    }

    it("takes past the cap exactly the part worth the shortfall: 3,100 USDC with 3,000 of room cures 100 USD", async function () {
      const { sys, aliceId } = await loadFixture(debtorWorld);
      const cap = await capWithRoom(sys);
      const health = await sys.engine.health(aliceId);
      expect(BigInt(health.initialRequirement) - BigInt(health.equityInitial)).to.equal(wad("100"));
      // One unit more than the shortfall past the cap is not a cure.
      await whatIf(async () => {
        await expect(payQuote(sys, sys.carol, aliceId, 3_100n * USDC + 1n))
          .to.be.revertedWithCustomError(sys.vault, "DepositCapExceeded")
          .withArgs(await sys.usdc.getAddress(), cap + 100n * USDC + 1n, cap);
      });
      // Only the 100 USDC past the cap is measured against the shortfall, and it matches it exactly.
      await expect(payQuote(sys, sys.carol, aliceId, 3_100n * USDC)).to.emit(sys.vault, "Deposited");
      expect(await sys.vault.balanceOf(aliceId, sys.usdc)).to.equal(300n * USDC);
      expect(await sys.vault.totalDeposits(sys.usdc)).to.equal(cap + 100n * USDC);
    });

    it("never caps a repayment that leaves the balance at exactly zero, even with no shortfall to cure", async function () {
      const { sys, aliceId } = await loadFixture(debtorWorld);
      await payQuote(sys, sys.carol, aliceId, 2_000n * USDC);
      // Alice now owes 800 USDC behind 2,700 USD of initial collateral: nothing to cure. The cap is cut to
      // what the vault holds, so any deposit past it is capped unless it only repays.
      const cap = await sys.vault.totalDeposits(sys.usdc);
      await sys.vault.setDepositCap(sys.usdc, cap);
      await payQuote(sys, sys.carol, aliceId, 800n * USDC);
      expect(await sys.vault.balanceOf(aliceId, sys.usdc)).to.equal(0n);
      expect(await sys.vault.totalDeposits(sys.usdc)).to.equal(cap + 800n * USDC);
    });

    it("values the excess at the quote's initial weight (0.9: 111.111111 USDC cures 100 USD, one unit more does not)", async function () {
      const { sys, aliceId } = await loadFixture(debtorWorld);
      await sys.vault.setCollateralWeights(sys.usdc, wad("0.9"), wad("1"));
      await refreshFeeds(sys, { atLatest: true });
      await capWithRoom(sys);
      await whatIf(async () => {
        await expect(payQuote(sys, sys.carol, aliceId, 3_111_111_112n)).to.be.revertedWithCustomError(
          sys.vault,
          "DepositCapExceeded",
        );
      });
      await expect(payQuote(sys, sys.carol, aliceId, 3_111_111_111n)).to.emit(sys.vault, "Deposited");
    });
  });

  describe("quote interest: who pays, when, and the rate recorded", function () {
    it("charges a debtor paying out of its debt first, then moves the payment (transferBalance from the debtor)", async function () {
      const { sys, engineSigner, aliceId, bobId } = await loadFixture(interestWorld);
      const paid = await sys.vault.paidInterestIndex(aliceId);
      const at = BigInt(await time.latest()) + 30n * DAY;
      const index = await indexAt(sys, at);
      const charged = owed(2_800n * USDC, index, paid);
      expect(charged).to.be.greaterThan(0n);
      await time.setNextBlockTimestamp(at);
      await expect(sys.vault.connect(engineSigner).transferBalance(aliceId, bobId, sys.usdc, 100n * USDC))
        .to.emit(sys.vault, "QuoteInterestCharged")
        .withArgs(aliceId, sys.poolAccountId, charged);
      expect(await sys.vault.balanceOf(aliceId, sys.usdc)).to.equal(-(2_900n * USDC + charged));
      expect(await sys.vault.paidInterestIndex(aliceId)).to.equal(index);
      // A payee without debt before or after writes no paid index.
      expect(await sys.vault.paidInterestIndex(bobId)).to.equal(0n);
      await expectRateRecordedNow(sys);
    });

    it("charges a debtor being paid into before the payment repays it (transferBalance to the debtor)", async function () {
      const { sys, engineSigner, aliceId, bobId } = await loadFixture(interestWorld);
      const paid = await sys.vault.paidInterestIndex(aliceId);
      const at = BigInt(await time.latest()) + 30n * DAY;
      const charged = owed(2_800n * USDC, await indexAt(sys, at), paid);
      await time.setNextBlockTimestamp(at);
      await expect(sys.vault.connect(engineSigner).transferBalance(bobId, aliceId, sys.usdc, 100n * USDC))
        .to.emit(sys.vault, "QuoteInterestCharged")
        .withArgs(aliceId, sys.poolAccountId, charged);
      expect(await sys.vault.balanceOf(aliceId, sys.usdc)).to.equal(-(2_700n * USDC + charged));
      await expectRateRecordedNow(sys);
    });

    it("records the rate at the new utilisation after a deposit, a withdrawal and a payout, and nothing at a settlement", async function () {
      const { sys, engineSigner, aliceId, bobId } = await loadFixture(interestWorld);
      await time.increase(30n * DAY);
      await payQuote(sys, sys.carol, bobId, 500_000n * USDC);
      await expectRateRecordedNow(sys);
      await time.increase(DAY);
      await sys.vault.connect(sys.bob).withdraw(bobId, sys.usdc, 400_000n * USDC, sys.bob.address);
      await expectRateRecordedNow(sys);
      await time.increase(DAY);
      await sys.vault.connect(engineSigner).payOutQuote(bobId, sys.carol.address, 50_000n * USDC);
      await expectRateRecordedNow(sys);
      // A settlement moves interest from owed to settled, which utilisation counts alike: the index,
      // the rate and its clock stay (before review round 170 it re-read the rate on the settled debt).
      const recorded = await sys.vault.quoteInterest();
      await time.increase(DAY);
      await expect(sys.vault.settleInterest(aliceId)).to.emit(sys.vault, "QuoteInterestCharged");
      expect(await sys.vault.quoteInterest()).to.deep.equal(recorded);
    });

    it("stops accruing once the last debt is repaid: the rate is zero, not the base rate", async function () {
      const { sys, aliceId } = await loadFixture(interestWorld);
      await time.increase(30n * DAY);
      await payQuote(sys, sys.carol, aliceId, 3_000n * USDC);
      expect(await sys.vault.quoteDebt()).to.equal(0n);
      const [index, rate] = await sys.vault.quoteInterest();
      expect(rate).to.equal(0n);
      await time.increase(YEAR);
      await sys.vault.settleInterest(aliceId);
      expect((await sys.vault.quoteInterest())[0]).to.equal(index);
    });

    it("charges nothing, and emits nothing, twice in one block or for an account that owes nothing", async function () {
      const { sys, aliceId, bobId } = await loadFixture(interestWorld);
      const carolId = await openAccount(sys, sys.carol, MarginMode.CROSS);
      await time.increase(30n * DAY);
      const [first, second, positive, empty] = await inOneBlock([
        () => sys.vault.settleInterest(aliceId),
        () => sys.vault.settleInterest(aliceId),
        () => sys.vault.settleInterest(bobId),
        () => sys.vault.settleInterest(carolId),
      ]);
      expect(first!.logs.length).to.equal(2); // BalanceTransferred and QuoteInterestCharged
      expect(second!.logs).to.deep.equal([]);
      expect(positive!.logs).to.deep.equal([]);
      expect(empty!.logs).to.deep.equal([]);
      expect(await sys.vault.paidInterestIndex(carolId)).to.equal(0n);
      expect(await sys.vault.paidInterestIndex(bobId)).to.equal(0n);
    });

    it("never charges the lender: a pool debt from before the model accrues nothing and stays out of the receivable", async function () {
      const { sys, engineSigner, aliceId, bobId } = await loadFixture(debtorWorld);
      // The pool's account owes 1,000 USDC before governance sets the first model.
      await sys.vault
        .connect(engineSigner)
        .transferBalance(sys.poolAccountId, bobId, sys.usdc, 1_001_000n * USDC);
      expect(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)).to.equal(-1_000n * USDC);
      await sys.vault.setInterestRateModel(INTEREST_MODEL);
      await time.increase(30n * DAY);
      expect(await sys.vault.accruedInterest(sys.poolAccountId)).to.equal(0n);
      await expect(sys.vault.settleInterest(sys.poolAccountId)).not.to.emit(
        sys.vault,
        "QuoteInterestCharged",
      );
      expect(await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)).to.equal(-1_000n * USDC);
      // The receivable is Alice's interest alone (her scaled debt times the index, rounded down).
      const index = await indexAt(sys, BigInt(await time.latest()));
      expect(await sys.vault.interestReceivable()).to.equal((2_800n * USDC * index) / WAD - 2_800n * USDC);
      expect(await sys.vault.accruedInterest(aliceId)).to.equal(owed(2_800n * USDC, index, WAD));
    });

    it("keeps the receivable to what debtors owe after one of them pays (the old scaled debt leaves at its paid index)", async function () {
      const { sys, aliceId } = await loadFixture(interestWorld);
      await time.increase(180n * DAY);
      await sys.vault.settleInterest(aliceId);
      const debt = -(await sys.vault.balanceOf(aliceId, sys.usdc));
      const paid = await sys.vault.paidInterestIndex(aliceId);
      await time.increase(180n * DAY);
      const index = await indexAt(sys, BigInt(await time.latest()));
      // Σ scaled debt = ⌊debt · 1e18 / paid⌋, times the index now, rounded down, less the debt.
      const scaled = (debt * WAD) / paid;
      expect(await sys.vault.interestReceivable()).to.equal((scaled * index) / WAD - debt);
      expect((scaled * index) / WAD - debt).to.be.closeTo(await sys.vault.accruedInterest(aliceId), 3n);
    });

    it("values a debt with the interest it owes in markInQuote", async function () {
      const { sys, aliceId } = await loadFixture(interestWorld);
      await time.increase(30n * DAY);
      await refreshFeeds(sys, { atLatest: true });
      const accrued = await sys.vault.accruedInterest(aliceId);
      expect(accrued).to.be.greaterThan(0n);
      const [inQuote] = await sys.vault.markInQuote(aliceId);
      // 1 WETH at 3,000 USD is 3,000 USDC (WAD); the debt counts with its interest.
      expect(inQuote).to.equal(wad("3000") - (2_800n * USDC + accrued) * 10n ** 12n);
    });
  });

  describe("InterestMath", function () {
    it("clamps the exponent at 100: 34 and 50 years at 300% compound like 100 years at 100%", async function () {
      const harness = await ethers.deployContract("InterestMathHarness");
      const atClamp = await harness.compound(WAD, WAD, 100n * YEAR); // exponent exactly 100
      // 3 · 34 = 102 and 3 · 50 = 150 (past expWad's range, which reverts near 135) are both clamped.
      expect(await harness.compound(WAD, wad("3"), 34n * YEAR)).to.equal(atClamp);
      expect(await harness.compound(WAD, wad("3"), 50n * YEAR)).to.equal(atClamp);
      expect(await harness.compound(WAD, wad("3"), 33n * YEAR)).to.be.lessThan(atClamp);
    });
  });

  describe("accounts with nothing at risk read no price", function () {
    it("withdraw WETH from an account with no quote, no position and no auction while every feed is stale", async function () {
      const { sys, bobId } = await loadFixture(debtorWorld);
      const daveId = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.weth, wad("2")]]);
      const emptyId = await openAccount(sys, sys.carol, MarginMode.CROSS);
      await time.increase(2n * DAY);
      await expect(sys.vault.collateralValue(daveId)).to.be.reverted; // the ETH feed is stale
      await sys.vault.connect(sys.carol).withdraw(daveId, sys.weth, wad("1"), sys.carol.address);
      await sys.vault.connect(sys.bob).withdraw(bobId, sys.usdc, 100n * USDC, sys.bob.address);
      // An empty account's value in quote reads no feed either (the backstop before its first absorb).
      expect(await sys.vault.markInQuote(emptyId)).to.deep.equal([0n, 0n]);
    });

    it("still asks the engine for an account its auction froze, once its owner has repaid the debt: AccountFrozen", async function () {
      const { sys, aliceId } = await loadFixture(debtorWorld);
      // No position, so no requirement: Alice is liquidatable once her maintenance equity is negative,
      // 0.95 · 2,900 − 2,800 = −45 USD.
      await setFeedPrice(sys.feeds.ETH, "2900");
      await sys.auction.connect(sys.keeper).startAuction(aliceId);
      // Deposits stay open while frozen: repaying the 2,800 USDC and the 10 USDC flag reward the start
      // charged leaves no debt, no position and the auction running until someone ends it.
      expect(await sys.vault.balanceOf(aliceId, sys.usdc)).to.equal(-2_810n * USDC);
      await payQuote(sys, sys.alice, aliceId, 2_810n * USDC);
      expect(await sys.vault.balanceOf(aliceId, sys.usdc)).to.equal(0n);
      expect(await sys.auction.isFrozen(aliceId)).to.equal(true);
      await expect(sys.vault.connect(sys.alice).withdraw(aliceId, sys.weth, wad("1"), sys.alice.address))
        .to.be.revertedWithCustomError(sys.engine, "AccountFrozen")
        .withArgs(aliceId);
      expect(await sys.vault.hasNothingAtRisk(aliceId)).to.equal(false);
      // Ended (healthy now), the same withdrawal needs no price and goes through.
      await sys.auction.endAuction(aliceId);
      expect(await sys.vault.hasNothingAtRisk(aliceId)).to.equal(true);
      await expect(
        sys.vault.connect(sys.alice).withdraw(aliceId, sys.weth, wad("1"), sys.alice.address),
      ).to.emit(sys.vault, "Withdrawn");
    });
  });

  describe("reentrancy", function () {
    it("refuses an engine transfer reached from a token hook inside a deposit (a perp trade's fee): ReentrancyGuardReentrantCall", async function () {
      const { sys } = await loadFixture(debtorWorld);
      const hooked = await ethers.deployContract("ReentrantToken", ["Hooked", "HOOK", 18]);
      await sys.vault.listCollateral(hooked, assetId("ETH"), wad("0.5"), wad("0.5"), wad("1000"), false);
      const carolId = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await sys.accounts.connect(sys.carol).setApprovalForAll(hooked, true);
      await refreshFeeds(sys, { atLatest: true });
      // The hook opens a 1 ETH long for Carol from inside her deposit's transferFrom: the trade reaches the
      // vault only through chargeFees (its fee), whose own guard check must refuse it.
      await hooked.arm(
        sys.perps,
        sys.perps.interface.encodeFunctionData("trade", [
          carolId,
          sys.markets.ETH,
          wad("1"),
          ethers.MaxUint256,
          2n ** 64n,
        ]),
      );
      await mintAndApprove(hooked, sys.carol, await sys.vault.getAddress(), wad("1"));
      await sys.vault.connect(sys.carol).deposit(carolId, hooked, wad("1"));
      expect(await hooked.reentryCount()).to.equal(1n);
      expect(await hooked.lastCallSucceeded(), "the nested trade").to.equal(false);
      expect(await hooked.lastReturnData()).to.equal(
        sys.vault.interface.encodeErrorResult("ReentrancyGuardReentrantCall", []),
      );
      expect(await sys.engine.accountMarkets(carolId)).to.deep.equal([]);
    });
  });

  describe("quoteForMargin", function () {
    it("divides by the token's margin rounded up (fewer quote units per USD of margin)", async function () {
      const { sys } = await loadFixture(debtorWorld);
      const weight = 933_333_333_333_333_333n;
      await sys.vault.setCollateralWeights(sys.usdc, weight, WAD);
      await sys.feeds.USDC.updateAnswer(100_010_000n); // 1.0001 USD
      await refreshFeeds(sys, { atLatest: true });
      const price = wad("1.0001");
      const tokenMargin = (price * weight + WAD - 1n) / WAD; // ⌈value of one USDC · weight⌉
      const margin = 10n ** 30n;
      const expected = (margin * USDC) / tokenMargin;
      // The rounding is visible at this size: dividing by the truncated margin gives more.
      expect((margin * USDC) / (tokenMargin - 1n)).to.be.greaterThan(expected);
      expect(await sys.vault.quoteForMargin(margin)).to.equal(expected);
    });
  });

  describe("events", function () {
    it("names the paying contract, not the transaction's sender, as the depositor (an LP deposit)", async function () {
      const { sys } = await loadFixture(debtorWorld);
      await mintAndApprove(sys.usdc, sys.lp, await sys.pool.getAddress(), 500n * USDC);
      await expect(sys.pool.connect(sys.lp).deposit(500n * USDC, sys.lp.address))
        .to.emit(sys.vault, "Deposited")
        .withArgs(sys.poolAccountId, await sys.usdc.getAddress(), await sys.pool.getAddress(), 500n * USDC);
    });
  });

  describe("odd ERC-20s: balance-delta accounting", function () {
    async function oddWorld() {
      const world = await debtorWorld();
      const odd = await ethers.deployContract("OddERC20", ["No-return dollar", "NRD", 18]);
      await world.sys.vault.listCollateral(odd, assetId("ETH"), wad("0.5"), wad("0.5"), wad("1000"), false);
      await odd.mint(world.sys.alice.address, wad("10"));
      await odd.connect(world.sys.alice).approve(world.sys.vault, wad("10"));
      return { ...world, odd };
    }

    it("takes and returns a token whose transfer and transferFrom return nothing", async function () {
      const { sys, aliceId, odd } = await loadFixture(oddWorld);
      await expect(sys.vault.connect(sys.alice).deposit(aliceId, odd, wad("5")))
        .to.emit(sys.vault, "Deposited")
        .withArgs(aliceId, await odd.getAddress(), sys.alice.address, wad("5"));
      await sys.vault.connect(sys.alice).withdraw(aliceId, odd, wad("2"), sys.alice.address);
      expect(await sys.vault.balanceOf(aliceId, odd)).to.equal(wad("3"));
      expect(await odd.balanceOf(sys.alice.address)).to.equal(wad("7"));
      expect(await odd.balanceOf(sys.vault)).to.equal(wad("3"));
    });

    it("refuses a pull that credits the vault more than the amount (TransferAmountMismatch), not only less", async function () {
      const { sys, aliceId, odd } = await loadFixture(oddWorld);
      await odd.setBonus(1n);
      await expect(sys.vault.connect(sys.alice).deposit(aliceId, odd, wad("5")))
        .to.be.revertedWithCustomError(sys.vault, "TransferAmountMismatch")
        .withArgs(await odd.getAddress(), wad("5"), wad("5") + 1n);
    });

    it("measures a deposit against the vault's own holdings: a donation is neither credited nor blocks deposits", async function () {
      const { sys, aliceId, odd } = await loadFixture(oddWorld);
      await odd.mint(sys.carol.address, wad("1"));
      await odd.connect(sys.carol).transfer(sys.vault, wad("1"));
      await sys.vault.connect(sys.alice).deposit(aliceId, odd, wad("5"));
      expect(await sys.vault.balanceOf(aliceId, odd)).to.equal(wad("5"));
      expect(await sys.vault.totalDeposits(odd)).to.equal(wad("5"));
      expect(await odd.balanceOf(sys.vault)).to.equal(wad("6"));
    });
  });
});
