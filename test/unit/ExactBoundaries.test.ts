/**
 * Exact thresholds and one-unit roundings, where the wei-exact invariants do not reach: each test here
 * fails on a small plausible bug (named in its comment) that the rest of the suite let through when the
 * money-critical code was changed one bug at a time (review round 66: 45 such changes, 37 caught before
 * these tests, 44 after; the one left changes nothing but the share price of an empty pool).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { ContractTransactionReceipt } from "ethers";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, deploySystem, openAccount, wad, type System } from "../shared/system";
import { advanceTo, frozenLongAndPartner, marketParams, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { collateralValue } from "../../sdk/src/math/health";

const USDC = 10n ** 6n;
const DURATION = 1800n; // DEFAULT_AUCTION_PARAMS.duration
const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/** The vault's BalanceTransferred events of `token` from `from` to `to` in a receipt, in order. */
async function transfers(
  sys: System,
  receipt: ContractTransactionReceipt,
  from: bigint,
  to: bigint,
): Promise<bigint[]> {
  const usdc = (await sys.usdc.getAddress()).toLowerCase();
  return receipt.logs
    .map((log) => {
      try {
        return sys.vault.interface.parseLog(log);
      } catch {
        return null;
      }
    })
    .filter((e) => e?.name === "BalanceTransferred")
    .filter((e) => e!.args.fromAccountId === from && e!.args.toAccountId === to)
    .filter((e) => (e!.args.token as string).toLowerCase() === usdc)
    .map((e) => e!.args.amount as bigint);
}

/**
 * Alice holds 1 WETH and no USDC, and is long 4 ETH bought at 3,006 (3,000·(1 + 2/1,000)): the taker
 * fee 4 · 3,006 · 0.0005 = 6.012 USDC is quote debt. ETH then falls to 2,500: equity_MM ≈ 0.95·2,500 −
 * 4·506 − 6.01 = 345 < MM ≈ 4·2,500·0.0732 + 20 = 752, mark ≈ 470 > 0, and the keeper's start adds the
 * 10 USDC flag reward to her debt (16.012 USDC). Funding off. Bob bids from 20,000 USDC.
 */
async function liquidatableDebtor() {
  const sys = await deploySystem();
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("1")]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("4"));
  await setFeedPrice(sys.feeds.ETH, "2500");
  await sys.auction.connect(sys.keeper).startAuction(alice);
  return { sys, alice, bob, start: BigInt(await time.latest()) };
}

describe("Exact thresholds and roundings", function () {
  describe("LiquidationAuction.startAuction", function () {
    // Fails if `_liquidatable` read `equity_MM <= MM`.
    it("refuses an empty account: equity_MM = MM = 0 is healthy, not liquidatable", async function () {
      const sys = await loadFixture(deploySystem);
      const empty = await openAccount(sys, sys.carol, MarginMode.CROSS);
      const h = await sys.engine.health(empty);
      expect([h.equityMaintenance, h.maintenanceRequirement]).to.deep.equal([0n, 0n]);
      await expect(sys.auction.connect(sys.keeper).startAuction(empty))
        .to.be.revertedWithCustomError(sys.auction, "AccountHealthy")
        .withArgs(empty, 0n, 0n);
    });

    // Fails if the restart window were `startTime + duration` rather than `startTime + 2·duration`.
    it("refuses a restart past the auction's duration until twice the duration has passed", async function () {
      const { sys, alice, start } = await loadFixture(liquidatableDebtor);
      // 1,800 s < 3,599 s < 2 · 1,800 s: the discount is at its maximum, the auction is not yet stale.
      await advanceTo(sys, start + 2n * DURATION - 1n);
      await expect(sys.auction.startAuction(alice))
        .to.be.revertedWithCustomError(sys.auction, "AuctionAlreadyActive")
        .withArgs(alice);
      await advanceTo(sys, start + 2n * DURATION);
      await expect(sys.auction.startAuction(alice)).to.emit(sys.auction, "AuctionStarted");
    });
  });

  describe("MarginEngine.transferSlice", function () {
    // Fails if the bidder's share of a quote debt were rounded down.
    it("has the bidder take over f of the account's quote debt rounded up, against the bidder", async function () {
      const { sys, alice, bob } = await loadFixture(liquidatableDebtor);
      const debt = -(await sys.vault.balanceOf(alice, sys.usdc)); // 6.012 fee + 10 flag reward
      expect(debt).to.equal(16_012_000n);
      const fraction = 123_456_789_012_345_678n; // ~12.35%, below the restoring fraction
      // 16,012,000 · 0.123456789012345678 = 1,976,790.1…: rounded up, 1,976,791 units.
      expect((debt * fraction) % WAD).to.not.equal(0n);
      const receipt = await (
        await sys.auction.connect(sys.bob).bid(alice, bob, fraction, ethers.MaxUint256)
      ).wait();
      const [sliced] = await transfers(sys, receipt!, bob, alice); // the slice first, then the payment
      expect(sliced).to.equal(ceilDiv(debt * fraction, WAD));
      expect(sliced).to.equal(1_976_791n);
    });
  });

  describe("MarginEngine.requirePremiumAffordable", function () {
    /** `frozenLongAndPartner`, with Bob's short of 500 ETH swinging the skew from +300 to −200. */
    async function frozenLongIntoSwungSkew() {
      const { sys, a, b } = await frozenLongAndPartner();
      await trade(sys.perps, sys.bob, b, sys.markets.ETH, -wad("500"));
      return { sys, a };
    }

    // Fails if the shortfall check had slack (`marginAfter < marginBefore - 1e18`): SecurityReview's
    // closes of 61 and 10 ETH grow the shortfall by hundreds of USD, this one by cents.
    it("refuses a close of any size below maintenance that grows the shortfall, even by cents", async function () {
      const { sys, a } = await loadFixture(frozenLongIntoSwungSkew);
      const h = await sys.engine.health(a);
      expect(h.equityMaintenance).to.be.lessThan(h.maintenanceRequirement);
      // Selling 0.0005 ETH at ~2,240 realises (2,800 − 2,240) · 0.0005 = 0.28 USD of premium and fee,
      // and frees 0.1087 USD of MM: the shortfall grows 24,706.8589 → 24,707.0308, by 0.1719 USD, under a
      // dollar (measured with the slack, which lets the trade through).
      await expect(
        trade(sys.perps, sys.alice, a, sys.markets.ETH, -wad("0.0005")),
      ).to.be.revertedWithCustomError(sys.engine, "MaintenanceShortfallIncreased");
    });
  });

  describe("PortfolioMath.spotShock", function () {
    // Fails if √(horizon/year) were rounded down in `horizonVolatility`. With z = 1, no floor and
    // σ = 100% the shock is σ√horizon itself, so its last wei shows the rounding.
    it("rounds σ·√(horizon/year) up, against the account", async function () {
      const math = await ethers.deployContract("PortfolioMathHarness");
      // √(1 day / 365 days) in WAD: √⌊10^36/365⌋ = 52,342,392,259,021,370.35…, rounded up …371.
      const n = 10n ** 36n / 365n;
      let r = BigInt(Math.floor(Math.sqrt(Number(n))));
      while (r * r > n) r -= 1n;
      while ((r + 1n) * (r + 1n) <= n) r += 1n;
      expect(r * r).to.not.equal(n); // not a square: the two roundings differ
      const shock = await math.spotShock(0n, WAD, WAD, 86_400n, WAD, 0n, 0n);
      expect(shock).to.equal(r + 1n);
      expect(shock).to.equal(52_342_392_259_021_371n);
    });
  });

  describe("LiquidityPool.totalAssets", function () {
    // Fails if a negative position value were converted to quote units toward zero rather than down
    // (the LPs would over-count by a unit).
    it("rounds a negative position value down to the quote unit, so LPs never over-count", async function () {
      const sys = await loadFixture(deploySystem);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("1"));
      // ETH 3,000 → 3,100.12345678: the pool's short 1 ETH loses ~98.6 USD, a value with digits below
      // the 10^-6 USDC unit (10^12 wei).
      await setFeedPrice(sys.feeds.ETH, "3100.12345678");
      const value = (await sys.pool.positionValue()) + (await sys.pool.backstopValue());
      expect(value).to.be.lessThan(0n);
      expect(value % 10n ** 12n).to.not.equal(0n);
      const floorUnits = (value - (10n ** 12n - 1n)) / 10n ** 12n; // ⌊value / 10^12⌋ for value < 0
      const balance = await sys.vault.balanceOf(sys.poolAccountId, sys.usdc);
      const owed = await sys.vault.interestReceivable();
      const uncovered = await sys.pool.uncoveredDeficit();
      expect(await sys.pool.totalAssets()).to.equal(balance + floorUnits + owed - uncovered);
    });
  });

  describe("SDK collateralValue", function () {
    // Fails if the SDK valued a quote debt rounded down. With the
    // deployments' 8-decimal USDC feed a 6-decimal debt's value is exact, so only a price with more
    // digits tells the roundings apart (as CollateralVault.test.ts's vault fixture has).
    it("values a quote debt rounded up, as the vault does, at a price with 18 decimals", function () {
      const usdc = "0x00000000000000000000000000000000000000c0";
      const debtor = {
        token: usdc,
        balance: -1n, // one unit of 10^-6 USDC owed
        decimals: 6,
        oracleAsset: "USDC",
        initialWeight: WAD,
        maintenanceWeight: WAD,
        listed: true,
      };
      // USDC at $0.999999999999999999: 1 unit · (10^18 − 1) / 10^6 = 999,999,999,999.999999 wei → the
      // debt counts −1,000,000,000,000 in all three sums (CollateralVault: "quote debts up").
      const v = collateralValue([debtor], usdc, { USDC: WAD - 1n });
      expect([v.initial, v.maintenance, v.mark]).to.deep.equal([
        -1_000_000_000_000n,
        -1_000_000_000_000n,
        -1_000_000_000_000n,
      ]);
    });
  });
});
