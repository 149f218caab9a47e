import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  MarginMode,
  WAD,
  atLatestTimestamp,
  deploySystem,
  fundInsurance,
  openAccount,
  wad,
} from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { setFeedPrice } from "../shared/oracles";
import { absorbAfterAuction, backstopLong100, trade } from "../shared/perps";
import { expWad } from "../../sdk/src";

/**
 * Behaviours of the liquidity pool and the interest math that no other test held: each of these fails
 * a small change of the code that the rest of the suite let through (review round 85: 48 mutants of
 * LiquidityPool, PortfolioMath and InterestMath, 36 caught, 5 equivalent, these 7 held here).
 */
const USDC = 10n ** 6n;
/** ERC-4626 virtual shares of the pool (`_decimalsOffset` 6). */
const VIRTUAL_SHARES = 10n ** 6n;
/** One quote unit (USDC) in USD WAD. */
const QUOTE_UNIT = 10n ** 12n;

/**
 * Alice (0.05 WBTC, long 5 ETH) and Carol (short 5 ETH) leave the pool's account flat; ETH falls to
 * 2,500 and the backstop absorbs Alice's book, her WBTC with it. An hour later every feed has reported
 * again but BTC's price: the backstop's book cannot be priced, the pool's own (no BTC in it) can.
 */
async function backstopOnStaleFeed() {
  const sys = await deploySystem();
  await fundInsurance(sys, 50_000n * USDC);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.wbtc, 5n * 10n ** 6n]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("5"));
  await trade(sys.perps, sys.carol, carol, sys.markets.ETH, -wad("5"));
  await setFeedPrice(sys.feeds.ETH, "2500");
  const backstop = await absorbAfterAuction(sys, alice);
  await time.increase(3_700);
  await setFeedPrice(sys.feeds.USDC, "1");
  await setFeedPrice(sys.feeds.ETH, "2500");
  await setFeedPrice(sys.volFeeds.ETH, "0.6");
  await setFeedPrice(sys.volFeeds.BTC, "0.5");
  return { ...sys, backstop };
}

/**
 * Alice (long 10 ETH) and Carol (short 10 ETH) leave the pool's account flat and its LP redeems every
 * share. ETH falls to 2,700, the backstop absorbs Alice's long, and ETH falls to 2,000: the backstop is
 * thousands under water, the pool's own account holds only its fees.
 */
async function emptyPoolBehindLosingBackstop() {
  const sys = await deploySystem();
  await fundInsurance(sys, 50_000n * USDC);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 3_500n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
  await trade(sys.perps, sys.carol, carol, sys.markets.ETH, -wad("10"));
  await sys.pool.connect(sys.lp).redeem(await sys.pool.balanceOf(sys.lp), sys.lp, sys.lp);
  await setFeedPrice(sys.feeds.ETH, "2700");
  await absorbAfterAuction(sys, alice);
  await setFeedPrice(sys.feeds.ETH, "2000");
  return sys;
}

/**
 * Alice (long 10 ETH on 3,500 USDC) and Carol (short 10 ETH) leave the pool's account flat; its LP
 * redeems all but 100 USDC of shares. ETH falls to 2,500 and Alice's auction starts ~1,500 USDC short;
 * the insurance fund is topped up to exactly the part of that deficit the pool cannot hold: the pool's
 * equity is then exactly 0 with shares outstanding.
 */
async function poolAtZeroEquity() {
  const sys = await deploySystem();
  const { pool, vault, usdc, lp } = sys;
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[usdc, 3_500n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
  // In Alice's second, whatever the wall clock does: a pool short for a second accrues funding.
  await atLatestTimestamp();
  await trade(sys.perps, sys.carol, carol, sys.markets.ETH, -wad("10"));
  await pool
    .connect(lp)
    .redeem((await pool.balanceOf(lp)) - (await pool.convertToShares(100n * USDC)), lp, lp);
  await setFeedPrice(sys.feeds.ETH, "2500");
  await sys.auction.startAuction(alice);
  // The pool's equity before the deduction (its account is flat: its value is its quote balance).
  expect((await pool.positionValue()) + (await pool.backstopValue())).to.equal(0n);
  const held = (await vault.balanceOf(sys.poolAccountId, usdc)) + (await vault.interestReceivable());
  const topUp = (await pool.uncoveredDeficit()) - held;
  expect(topUp).to.be.greaterThan(0n);
  await fundInsurance(sys, topUp);
  return sys;
}

/** `backstopLong100` as a fixture: the backstop long 100 ETH taken at 2,600. */
async function backstopLong100Fixture() {
  return backstopLong100();
}

describe("LiquidityPool", function () {
  describe("maxMint", function () {
    it("converts the room under the deposit cap to shares rounded down, so minting it fits the cap", async function () {
      const sys = await loadFixture(deploySystem);
      const { pool, vault, usdc, bob } = sys;
      // A unit given to the pool's account: one share is no longer a whole number of quote units.
      await mintAndApprove(usdc, bob, await vault.getAddress(), 1n);
      await vault.connect(bob).deposit(sys.poolAccountId, usdc, 1n);
      await vault.setDepositCap(usdc, (await vault.totalDeposits(usdc)) + 500n * USDC);
      const room = 500n * USDC;
      const [supply, assets] = [await pool.totalSupply(), await pool.totalAssets()];
      const floor = (room * (supply + VIRTUAL_SHARES)) / (assets + 1n);
      expect((room * (supply + VIRTUAL_SHARES)) % (assets + 1n)).to.not.equal(0n);
      expect(await pool.maxMint(bob)).to.equal(floor);
      await mintAndApprove(usdc, bob, await pool.getAddress(), room);
      await pool.connect(bob).mint(floor, bob);
      expect(await vault.totalDeposits(usdc)).to.be.at.most((await vault.collateralConfig(usdc)).depositCap);
    });
  });

  describe("maxDeposit", function () {
    it("stays closed while the backstop's loss exceeds the pool's own equity, with no shares outstanding", async function () {
      const { pool, vault, usdc, poolAccountId, bob } = await loadFixture(emptyPoolBehindLosingBackstop);
      expect(await pool.totalSupply()).to.equal(0n);
      const own = (await vault.balanceOf(poolAccountId, usdc)) * QUOTE_UNIT + (await pool.positionValue());
      expect(own).to.be.at.least(0n);
      expect(own + (await pool.backstopValue())).to.be.lessThan(0n);
      expect(await pool.maxDeposit(bob)).to.equal(0n);
      expect(await pool.maxMint(bob)).to.equal(0n);
      // The deposit reads the same: a new LP would only pay the backstop's loss down.
      await mintAndApprove(usdc, bob, await pool.getAddress(), 1_000n * USDC);
      await expect(pool.connect(bob).deposit(1_000n * USDC, bob))
        .to.be.revertedWithCustomError(pool, "ERC4626ExceededMaxDeposit")
        .withArgs(bob.address, 1_000n * USDC, 0n);
    });
    it("stays closed at exactly zero equity while shares are outstanding", async function () {
      const sys = await loadFixture(poolAtZeroEquity);
      const { pool, bob } = sys;
      expect(await pool.uncoveredDeficit()).to.be.greaterThan(0n);
      expect(await pool.totalAssets()).to.equal(0n);
      expect(await pool.totalSupply()).to.be.greaterThan(0n);
      expect(await pool.maxDeposit(bob)).to.equal(0n);
      // One unit less of uncovered deficit and the pool is above water again.
      await fundInsurance(sys, 1n);
      expect(await pool.totalAssets()).to.equal(1n);
      expect(await pool.maxDeposit(bob)).to.be.greaterThan(0n);
    });
  });

  describe("free margin (maxWithdraw)", function () {
    it("counts the backstop's shortfall against the pool, never its surplus for it", async function () {
      const { sys, backstop } = await loadFixture(backstopLong100Fixture);
      const { pool, engine, vault, lp, poolAccountId } = sys;
      // ETH back above where the backstop took Alice's long: the backstop has margin to spare.
      await setFeedPrice(sys.feeds.ETH, "3300");
      const [backstopEquity, backstopRequirement] = await engine.initialMargin(backstop);
      expect(backstopEquity - BigInt(backstopRequirement)).to.be.greaterThan(0n);
      const [equity, requirement] = await engine.initialMargin(poolAccountId);
      const free = await vault.quoteForMargin(equity - BigInt(requirement));
      expect(await pool.uncoveredDeficit()).to.equal(0n);
      // The pool's own free margin binds the LP (its shares are worth more).
      expect(await pool.convertToAssets(await pool.balanceOf(lp))).to.be.greaterThan(free);
      expect(await pool.maxWithdraw(lp)).to.equal(free);
    });
  });

  describe("while only the backstop's book cannot be priced", function () {
    it("reads maxDeposit, maxMint, maxWithdraw and maxRedeem as 0", async function () {
      const { pool, router, engine, vault, wbtc, backstop, lp, bob } = await loadFixture(backstopOnStaleFeed);
      expect(await vault.balanceOf(backstop, wbtc)).to.be.greaterThan(0n);
      // The pool's own book is priced; the backstop's is not.
      await engine.initialMargin(await pool.accountId());
      await expect(pool.backstopValue()).to.be.revertedWithCustomError(router, "StalePrice");
      expect(await pool.maxDeposit(bob)).to.equal(0n);
      expect(await pool.maxMint(bob)).to.equal(0n);
      expect(await pool.maxWithdraw(lp)).to.equal(0n);
      expect(await pool.maxRedeem(lp)).to.equal(0n);
    });
  });
});

async function interestMath() {
  return ethers.deployContract("InterestMathHarness");
}

describe("InterestMath", function () {
  const YEAR = 365n * 86_400n;

  it("caps the exponent at 100: an index left for decades at the highest rate compounds to e^100, never reverts", async function () {
    const math = await loadFixture(interestMath);
    // 300% (MAX_QUOTE_BORROW_RATE) for 40 and for 50 years: exponents 120 and 150, the second past what
    // e^x can carry (~135).
    const rate = wad("3");
    const capped = expWad(wad("100"));
    expect(await math.compound(WAD, rate, 40n * YEAR)).to.equal(capped);
    expect(await math.compound(WAD, rate, 50n * YEAR)).to.equal(capped);
    // Just below the cap the exponent is the rate's.
    expect(await math.compound(WAD, rate, (100n * YEAR) / 3n)).to.equal(
      expWad((rate * ((100n * YEAR) / 3n)) / YEAR),
    );
  });
});
