import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import {
  type AccountState,
  type CollateralState,
  MAX_SHARE_UNIT_VALUE,
  MAX_UINT256,
  WAD,
  accountHealth,
  collateralValue,
  coveringContracts,
  getAccountState,
  healthRatio,
  makeXMarginError,
  marketKey,
  needsRepricing,
  priceFailure,
  tokenPrice,
  tokenValue,
  shocksFor,
} from "../../sdk/src";
import { MarginMode, openAccount, wad } from "../shared/system";
import { setFeedPrice } from "../shared/oracles";
import { deployOptionsSystem, listSeries, tradeOption } from "../shared/options";
import { sdkClient } from "../shared/sdk";

const USDC = 10n ** 6n;

/**
 * The SDK's own margin math at its exact rules (review round 105: hand-written mutants of
 * sdk/src/math/health.ts, portfolio.ts, fixedPoint.ts and expLn.ts, each a one-token change; these
 * specifications hold the ones the suite let through). The arithmetic is written out in each test; where
 * the rule is the chain's, the comment names the contract line it mirrors.
 */

const QUOTE = "0x00000000000000000000000000000000000000aa";
const SHARE = "0x00000000000000000000000000000000000000bb";

/** An ERC-4626 share of `decimals` decimals on an 18-decimal asset priced by "eth". */
function share(decimals: number, assetsPerShare: bigint, balance = 0n, token = SHARE): CollateralState {
  return {
    token,
    balance,
    decimals,
    oracleAsset: "eth",
    initialWeight: (WAD * 8n) / 10n,
    maintenanceWeight: (WAD * 9n) / 10n,
    listed: true,
    erc4626: { assetsPerShare, assetDecimals: 18 },
  };
}

/** WETH: 18 decimals, priced by "eth", weights 0.8 / 0.9. */
function weth(balance: bigint): CollateralState {
  return {
    token: "0x00000000000000000000000000000000000000cc",
    balance,
    decimals: 18,
    oracleAsset: "eth",
    initialWeight: (WAD * 8n) / 10n,
    maintenanceWeight: (WAD * 9n) / 10n,
    listed: true,
  };
}

/** An account with no position holding `collateral` (the quote first), priced by `prices`. */
function idleState(
  collateral: CollateralState[],
  prices: Record<string, bigint>,
  priceErrors?: AccountState["priceErrors"],
): AccountState {
  return {
    accountId: 7n,
    blockNumber: 1,
    timestamp: 1_700_000_000n,
    quoteToken: QUOTE,
    collateral,
    prices,
    priceErrors,
    underlyings: {},
    positions: [],
    markets: {},
    frozen: false,
    marginMode: "cross",
    protocol: {
      poolAccountId: 1n,
      backstopAccountId: 2n,
      quoteOnlyAccountIds: [],
      paused: false,
      poolDeltaBase: 0n,
      quoteUnit: 10n ** 12n,
      quoteInterest: { index: WAD, rate: 0n, updatedAt: 1_700_000_000n, lenderAccountId: 1n },
    },
  };
}

/** The quote token (6 decimals, priced by "usd", weight 1) with `balance` units. */
function quote(balance: bigint): CollateralState {
  return {
    token: QUOTE,
    balance,
    decimals: 6,
    oracleAsset: "usd",
    initialWeight: WAD,
    maintenanceWeight: WAD,
    listed: true,
  };
}

describe("SDK margin math: share prices and collateral value (CollateralVault._price, _collateralValue)", function () {
  it("rounds a share's price down for valuations and up for a debt, to the wei", function () {
    // price·assetsPerShare/10^18 = (3000e18 + 1)·1.5 = 4500e18 + 1.5 wei: 4500e18 + 1 down, 4500e18 + 2 up.
    const c = share(18, (3n * WAD) / 2n);
    const prices = { eth: 3000n * WAD + 1n };
    expect(tokenPrice(c, prices, "floor")).to.equal(4500n * WAD + 1n);
    expect(tokenPrice(c, prices, "ceil")).to.equal(4500n * WAD + 2n);
  });

  it("caps a share's unit at MAX_SHARE_UNIT_VALUE per unit of the share's own decimals, on the valuation side only", function () {
    // A 2-decimal share converting to one whole ETH at 3,000 USD: 30 USD a unit, over the 10 USD bound. Rounded
    // down it counts MAX_SHARE_UNIT_VALUE·10^2 = 1,000 USD a share; the listing bound and a debt read it
    // uncapped (CollateralVault._price caps only Math.Rounding.Floor).
    const c = share(2, WAD);
    const prices = { eth: 3000n * WAD };
    expect(MAX_SHARE_UNIT_VALUE).to.equal(10n * WAD);
    expect(tokenPrice(c, prices, "floor")).to.equal(1000n * WAD);
    expect(tokenPrice(c, prices, "ceil")).to.equal(3000n * WAD);
    // 7 units = 0.07 share: 70 USD, not 210.
    expect(tokenValue(c, prices, 7n)).to.equal(70n * WAD);
  });

  it("values a debt in a share-priced quote at the uncapped price rounded up (the vault's debt side)", function () {
    // The quote listed as a 2-decimal share (listCollateral does not forbid it), 3 units owed: at the uncapped
    // price rounded up, 3·(3000e18 + 1)/10^2 = 90e18 + 0.03 wei, counted as 90e18 + 1 in all three sums
    // (capped, it would be 3·1000e18/100 = 30 USD).
    const quote = share(2, WAD, -3n, QUOTE);
    const v = collateralValue([quote], QUOTE, { eth: 3000n * WAD + 1n });
    const debt = 90n * WAD + 1n;
    expect(v).to.deep.equal({ initial: -debt, maintenance: -debt, mark: -debt });
  });
  it("reads no price for a token of zero balance: the quote at 0 with its feed down still values the rest", function () {
    // CollateralVault._collateralValue skips a zero quote balance (neither > 0 nor < 0) and holds no other token
    // at 0; the snapshot then has no "usd" price. 2 WETH at 3,000.5: 6,001 USD, ·0.8 = 4,800.8, ·0.9 = 5,400.9.
    const v = collateralValue([quote(0n), weth(2n * WAD)], QUOTE, { eth: 3000n * WAD + WAD / 2n });
    expect(v).to.deep.equal({
      initial: (48_008n * WAD) / 10n,
      maintenance: (54_009n * WAD) / 10n,
      mark: 6001n * WAD,
    });
  });
});

describe("SDK margin math: health ratio (RiskMath.healthRatio)", function () {
  it("is 2^256 − 1 for zero equity and no requirement, 0 only for negative equity", function () {
    expect(healthRatio(0n, 0n)).to.equal(MAX_UINT256);
    expect(healthRatio(-1n, 0n)).to.equal(0n);
    expect(healthRatio(0n, 1n)).to.equal(0n);
  });
});

describe("SDK margin math: which price failures engine.health meets (priceFailure)", function () {
  const stale = makeXMarginError("StalePrice", ["0x" + "11".repeat(20), 1n, 3600n]);

  it("fails on the quote's feed when the account owes quote (the vault prices a debt), not when it holds none", function () {
    const prices = { eth: 3000n * WAD };
    expect(priceFailure(idleState([quote(-5n), weth(WAD)], prices, { usd: stale }))).to.equal(stale);
    expect(priceFailure(idleState([quote(0n), weth(WAD)], prices, { usd: stale }))).to.equal(undefined);
  });
});

describe("SDK margin math: covering contracts (MarginEngine._coveringContracts)", function () {
  it("measures time value against 5% of spot rounded up, so a spot off a multiple of 20 wei covers a wei less", function () {
    // spot 3000e18 + 1: 5% is 150e18 + 0.05 wei, ⌈·⌉ = 150e18 + 1. A long with 15 USD of time value covers
    // ⌊15e36 / (150e18 + 1)⌋ = 99,999,999,999,999,999 contracts (0.1 less a wei), not 1e17 as with 150e18.
    const spot = 3000n * WAD + 1n;
    expect(coveringContracts(10n * WAD, 15n * WAD, spot)).to.equal(10n ** 17n - 1n);
    expect((15n * WAD * WAD) / (150n * WAD + 1n)).to.equal(10n ** 17n - 1n);
    // At a whole price (every 8-decimal feed) 5% is exact and the long covers 0.1 contract.
    expect(coveringContracts(10n * WAD, 15n * WAD, 3000n * WAD)).to.equal(10n ** 17n);
  });
});

describe("SDK margin math: repricing outright (MarginEngine._levelRequirement)", function () {
  it("reprices an option whose volatility is under twice the IM volatility shock outright, not through the band, as the engine does", async function () {
    const sys = await deployOptionsSystem();
    // ETH volatility 40% < 2 · imVolShock 0.25: the calls' Greeks cannot be trusted over the IM grid, whatever the
    // spot shock. σ√τ = 0.4 · √(30/365) ≈ 0.1147 is above the un-sized IM shock (the 10% floor), so only the
    // volatility condition keeps them out of the size factor's band, whose level is the larger of the Taylor grid
    // and the repriced one.
    await setFeedPrice(sys.volFeeds.ETH, "0.4");
    const now = BigInt(await time.latest());
    const call = await listSeries(sys.options, "ETH", "3000", now + 30n * 86_400n, true);
    const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
    const b = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
    await tradeOption(sys.options, sys.alice, a, call, wad("10"));
    await tradeOption(sys.options, sys.bob, b, call, wad("-10"));
    for (const [signer, id] of [
      [sys.alice, a],
      [sys.bob, b],
    ] as const) {
      const blockTag = await ethers.provider.getBlockNumber();
      const state = await getAccountState(await sdkClient(sys, signer), { accountId: id, blockTag });
      const eth = state.markets[marketKey(await sys.options.getAddress(), call)].underlying;
      const u = state.underlyings[eth];
      const e = await sys.options.exposure(id, call, state.prices[eth], u.volatility, { blockTag });
      const im = shocksFor(u.risk, u.volatility, 0n).im;
      expect(2n * im.volShock).to.be.greaterThan(e.modelVolatility);
      expect(e.totalVolatility).to.be.greaterThanOrEqual(im.spotShock);
      expect(needsRepricing(e.totalVolatility, e.modelVolatility, im)).to.equal(true);
      const engine = await sys.engine.health(id, { blockTag });
      const sdk = accountHealth(state);
      expect(sdk.groups[eth].repricedInitial).to.equal(1);
      expect(sdk.initialRequirement).to.equal(engine.initialRequirement);
      expect(sdk.maintenanceRequirement).to.equal(engine.maintenanceRequirement);
    }
  });
});
