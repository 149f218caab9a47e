/**
 * Roundings of amounts that are not whole quote units, and bounds that include their endpoint, tested
 * at the endpoint. Review round 71 (docs/reliability.md §4) changed OptionMarket, BlackScholes, Accounts,
 * InsuranceFund, UpdateThrottle, RiskParamsLib and the pool's exit requests one small bug at a time;
 * these are the bugs the suite let through (each comment names the round's mutant and the bug).
 */
import { expect } from "chai";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  DEFAULT_RISK_PARAMS,
  EXIT_DELAY,
  atLatestTimestamp,
  MarginMode,
  deploySystem,
  openAccount,
  wad,
} from "../shared/system";
import { signerFor } from "../shared/impersonate";
import { assetId, setFeedPrice } from "../shared/oracles";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { advanceTo, mineAt } from "../shared/perps";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;

/**
 * Alice long 2 calls struck at 3,000 and Bob short 2 (7 days; the pool flat), then the ETH feed's first
 * round at expiry answers 3,300.1234567: each call is worth 300.1234567 USD, two are 600.2469134 USD,
 * i.e. 600,246,913.4 USDC units — a payout that is not a whole quote unit.
 */
async function fractionalSettlement() {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(7n * DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const aliceAccount = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const bobAccount = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  await tradeOption(sys.options, sys.alice, aliceAccount, call, wad("2"));
  await tradeOption(sys.options, sys.bob, bobAccount, call, -wad("2"));
  await advanceTo(sys, expiry);
  const round = (await sys.feeds.ETH.latestRound()) + 1n;
  await setFeedPrice(sys.feeds.ETH, "3300.1234567");
  return { ...sys, expiry, call, aliceAccount, bobAccount, round };
}

describe("OptionMarket", function () {
  describe("settlement of a payout that is not a whole quote unit", function () {
    // Kills O15 (a long's payout rounded up), O16 (a short's debt rounded down) and O19 (the payouts
    // held at settlement rounded down for the longs): each moved one of the numbers below by one unit.
    it("pays longs rounded down, charges shorts rounded up, and holds the longs' due rounded up", async function () {
      const { options, vault, usdc, call, round, aliceAccount, bobAccount, poolAccountId } =
        await loadFixture(fractionalSettlement);
      // Only this series traded: the premium held is its own.
      await options.settleSeries(call, round);
      // ceil(600,246,913.4) owed to the longs − floor(600,246,913.4) owed by the shorts.
      expect(await options.poolPremiumHeld()).to.equal(1n);

      const pool = await vault.balanceOf(poolAccountId, usdc);
      const alice = await vault.balanceOf(aliceAccount, usdc);
      const bob = await vault.balanceOf(bobAccount, usdc);
      await expect(options.settleAccount(aliceAccount, call))
        .to.emit(options, "PositionSettled")
        .withArgs(aliceAccount, call, wad("2"), 600_246_913n * QUOTE_UNIT);
      await expect(options.settleAccount(bobAccount, call))
        .to.emit(options, "PositionSettled")
        .withArgs(bobAccount, call, -wad("2"), -600_246_914n * QUOTE_UNIT);
      expect((await vault.balanceOf(aliceAccount, usdc)) - alice).to.equal(600_246_913n);
      expect((await vault.balanceOf(bobAccount, usdc)) - bob).to.equal(-600_246_914n);
      // The rounding stays with the pool: it pays a unit less than it receives.
      expect((await vault.balanceOf(poolAccountId, usdc)) - pool).to.equal(1n);
      // The premium held keeps its rounding against the pool (1 unit at settlement, 1 more now).
      expect(await options.poolPremiumHeld()).to.equal(2n);
    });
  });
});

/** Alice long one at-the-money call (3,000, a day), ETH at 3,000: intrinsic value 0. */
async function atTheMoneyLong() {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const aliceAccount = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  await tradeOption(sys.options, sys.alice, aliceAccount, call, wad("1"));
  return { ...sys, expiry, call, aliceAccount };
}

describe("OptionMarket at exactly one hour to expiry", function () {
  // Kills O28 (`timeToExpiry <= MIN_TIME_TO_EXPIRY` marks longs at intrinsic value): the last hour
  // starts one second after expiry − 1 hour; at exactly one hour the model still prices the option.
  it("marks a long at the model price with exactly one hour left and at intrinsic value a second later", async function () {
    const sys = await loadFixture(atTheMoneyLong);
    const { options, expiry, call, aliceAccount } = sys;
    await mineAt(sys, expiry - 3_600n);
    const atOneHour = await options.exposure(aliceAccount, call, wad("3000"), wad("0.6"));
    // 0.6·√(1/8760)·3,000·0.4 ≈ 7.7 USD of time value, less the model's error margin.
    expect(atOneHour.value).to.be.closeTo(wad("7.67"), wad("0.05"));
    expect(atOneHour.timeValue).to.equal(atOneHour.value);
    await mineAt(sys, expiry - 3_599n);
    const inLastHour = await options.exposure(aliceAccount, call, wad("3000"), wad("0.6"));
    expect(inLastHour.value).to.equal(0n);
  });
});

describe("OptionMarket trades at their limit", function () {
  // Kills O04 (`t.premium >= limitPrice` refused a buy): a buyer whose limit is exactly the quoted
  // premium (what a front end sends with no slippage allowance) is filled at it.
  it("fills a buy whose limit is exactly the premium quoted for it", async function () {
    const sys = await loadFixture(atTheMoneyLong);
    const { options, call, bob } = sys;
    const bobAccount = await openAccount(sys, bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
    const [premium] = await options.quoteTrade(call, wad("1"));
    await atLatestTimestamp(); // the quote's second
    await expect(tradeOption(options, bob, bobAccount, call, wad("1"), { limitPrice: premium }))
      .to.emit(options, "OptionTraded")
      .withArgs(bobAccount, call, wad("1"), premium, wad("1"), anyValue, anyValue);
  });

  // Kills O01 (the fee rounded down): 0.0000013 contracts at 3,000 are 0.0039 USD of notional, a
  // 3 bp fee of 1.17 quote units, charged as 2.
  it("charges a fee that is not a whole quote unit rounded up", async function () {
    const sys = await loadFixture(atTheMoneyLong);
    const { options, call, bob } = sys;
    const bobAccount = await openAccount(sys, bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
    await expect(tradeOption(options, bob, bobAccount, call, wad("0.0000013")))
      .to.emit(options, "OptionTraded")
      .withArgs(bobAccount, call, wad("0.0000013"), anyValue, wad("0.0000013"), anyValue, 2n * QUOTE_UNIT);
  });
});

describe("Accounts", function () {
  describe("trading grants", function () {
    // Kills A02 (`cost >= allowance` refused): a grant is spent down to exactly zero.
    it("lets a market spend a trader's whole remaining allowance, leaving it at zero", async function () {
      const sys = await loadFixture(deploySystem);
      const { accounts, alice, carol, perps } = sys;
      const account = await openAccount(sys, alice, MarginMode.CROSS);
      await accounts.connect(alice).setTrader(account, carol.address, 500n * USDC);
      const market = await signerFor(perps);
      await expect(accounts.connect(market).authorizeTrade(account, carol.address, 200n * USDC))
        .to.emit(accounts, "TraderAllowanceSpent")
        .withArgs(account, carol.address, 200n * USDC, 300n * USDC);
      await expect(accounts.connect(market).authorizeTrade(account, carol.address, 300n * USDC))
        .to.emit(accounts, "TraderAllowanceSpent")
        .withArgs(account, carol.address, 300n * USDC, 0n);
      expect(await accounts.traderAllowance(account, carol.address)).to.equal(0n);
      await expect(accounts.connect(market).authorizeTrade(account, carol.address, 1n))
        .to.be.revertedWithCustomError(accounts, "NotAuthorized")
        .withArgs(account, carol.address);
    });
  });
});

describe("MarginEngine risk parameters", function () {
  // Every hard bound of RiskParamsLib.checkBounds is inclusive. Kills R01 (mmShockFloor > MIN_SHOCK),
  // R02 (maxShock < 1), R03 (horizon < MAX_HORIZON), R04 (sizeScale > MIN_SIZE_SCALE) and R09
  // (contingency < MAX_CONTINGENCY): the suite's bound tests used values far outside the bounds.
  const atLowerBounds = {
    ...DEFAULT_RISK_PARAMS,
    mmShockFloor: wad("0.01"),
    imShockFloor: wad("0.01"),
    maxShock: wad("0.01"),
    horizon: 3_600n,
    mmVolShock: wad("0.05"),
    imVolShock: wad("0.05"),
    shortOptionFloor: 0n,
    contingency: 0n,
    sizeScale: wad("10000"),
  };
  const atUpperBounds = {
    ...DEFAULT_RISK_PARAMS,
    maxShock: wad("1"),
    imZ: wad("10"),
    horizon: 30n * 86_400n,
    imVolShock: wad("2"),
    shortOptionFloor: wad("0.5"),
    contingency: wad("0.1"),
  };

  it("lists an underlying with every parameter at its lower or at its upper hard bound", async function () {
    const { engine } = await loadFixture(deploySystem);
    await expect(engine.listUnderlying(assetId("SOL"), atLowerBounds)).to.emit(engine, "RiskParamsUpdated");
    await expect(engine.listUnderlying(assetId("AVAX"), atUpperBounds)).to.emit(engine, "RiskParamsUpdated");
  });

  const oneBeyond: [string, Partial<typeof DEFAULT_RISK_PARAMS>, typeof DEFAULT_RISK_PARAMS][] = [
    ["mmShockFloor", { mmShockFloor: wad("0.01") - 1n }, atLowerBounds],
    ["horizon", { horizon: 3_599n }, atLowerBounds],
    ["mmVolShock", { mmVolShock: wad("0.05") - 1n }, atLowerBounds],
    ["sizeScale", { sizeScale: wad("10000") - 1n }, atLowerBounds],
    ["maxShock", { maxShock: wad("1") + 1n }, atUpperBounds],
    ["imZ", { imZ: wad("10") + 1n }, atUpperBounds],
    ["horizon", { horizon: 30n * 86_400n + 1n }, atUpperBounds],
    ["imVolShock", { imVolShock: wad("2") + 1n }, atUpperBounds],
    ["shortOptionFloor", { shortOptionFloor: wad("0.5") + 1n }, atUpperBounds],
    ["contingency", { contingency: wad("0.1") + 1n }, atUpperBounds],
  ];
  it("refuses each parameter one unit beyond its hard bound", async function () {
    const { engine } = await loadFixture(deploySystem);
    for (const [name, change, base] of oneBeyond) {
      await expect(engine.listUnderlying(assetId("SOL"), { ...base, ...change }))
        .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
        .withArgs(ethers.encodeBytes32String(name));
    }
  });
});

/** The deployments' one-day exit delay; the pool flat; the LP asks for 100,000 USDC worth of shares. */
async function lpRequested() {
  const sys = await deploySystem();
  await sys.pool.setExitDelay(EXIT_DELAY);
  const shares = await sys.pool.convertToShares(100_000n * USDC);
  await sys.pool.connect(sys.lp).requestRedeem(shares);
  const [, assets, claimableAt, claimableUntil] = await sys.pool.redeemRequest(sys.lp);
  return { sys, shares, assets, claimableAt, claimableUntil };
}

describe("LiquidityPool", function () {
  describe("redeem requests", function () {
    // Kills L01 (`block.timestamp >= until` refused) and L08 (maxClaim 0 from `until`): the window's
    // last second, claimableAt + CLAIM_WINDOW, is inside it (`redeemRequest` reports it as claimableUntil).
    it("can be claimed in the last second of the claim window, and not one second later", async function () {
      const { sys, shares, assets, claimableAt, claimableUntil } = await loadFixture(lpRequested);
      const { pool, lp } = sys;
      const snapshot = await takeSnapshot();
      await mineAt(sys, claimableUntil);
      expect(await pool.maxClaim(lp)).to.equal(shares);
      await time.setNextBlockTimestamp(claimableUntil); // the view's second
      await expect(pool.connect(lp).claimRedeem(shares, lp, assets))
        .to.emit(pool, "Withdraw")
        .withArgs(lp.address, lp.address, lp.address, assets, shares);
      await snapshot.restore();
      await mineAt(sys, claimableUntil + 1n);
      expect(await pool.maxClaim(lp)).to.equal(0n);
      await expect(pool.connect(lp).claimRedeem(shares, lp, 0n))
        .to.be.revertedWithCustomError(pool, "NotClaimable")
        .withArgs(lp.address, claimableAt, claimableUntil);
    });
  });
});
