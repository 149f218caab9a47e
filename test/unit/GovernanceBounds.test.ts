import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse } from "ethers";
import { Role } from "../../deploy/roles";
import {
  DEFAULT_AUCTION_PARAMS,
  DEFAULT_RISK_PARAMS,
  MarginMode,
  deploySystem,
  openAccount,
  wad,
} from "../shared/system";
import { assetId, setFeedPrice } from "../shared/oracles";
import { advanceTo, listPerpMarket, marketParams, trade, wethDebtorSystem } from "../shared/perps";
import { mintAndApprove } from "../shared/tokens";
import { deployOptionsSystem, fromNow, listSeries, seriesParams } from "../shared/options";

const DAY = 86_400n;
const USDC = 10n ** 6n;
const ETH = assetId("ETH");
const set = (name: string) => ethers.encodeBytes32String(name);
const idOf = (n: bigint) => ethers.toBeHex(n, 32);

/**
 * The production shape of the risk role (test/review's set-up): RISK_MANAGER held by an operator
 * without an execution delay, as in every deploy/config/*.json; the deployer keeps nothing. Alice is
 * long 10 ETH on 10,000 USDC, comfortably healthy.
 */
async function system() {
  const sys = await deploySystem();
  const risk = (await ethers.getSigners())[11];
  const { manager, deployer } = sys;
  // Funding off (the first change after listing), so numbers are exact between blocks.
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  await manager.grantRole(Role.RISK_MANAGER, risk.address, 0);
  for (const role of [Role.RISK_MANAGER, Role.LISTING, Role.GUARDIAN, Role.TREASURY]) {
    await manager.revokeRole(role, deployer);
  }
  const aliceId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * 10n ** 6n]]);
  await trade(sys.perps, sys.alice, aliceId, sys.markets.ETH, wad("10"));
  return { ...sys, risk, aliceId };
}

/**
 * A whale long 62,500 ETH (187.5M USD, 3.75 × ETH's 50M size scale) in a deep ETH market, volatility 5%
 * so that the shock floors bind, on 92.1M USDC: above its initial requirement and at ~2.05× its
 * maintenance requirement (review round 49).
 */
async function whale() {
  const sys = await deploySystem();
  const { usdc, vault, engine, perps, deployer, alice, volFeeds } = sys;
  await setFeedPrice(volFeeds.ETH, "0.05");
  const deep = await listPerpMarket(
    perps,
    "ETH",
    marketParams({
      skewScale: wad("1000000000"),
      maxOpenInterest: wad("1000000"),
      maxPoolDeltaRatio: wad("10"),
      maxFundingVelocity: 0n,
    }),
  );
  // The pool's delta limit: 10 × its quote balance.
  const poolTopUp = 20_000_000n * USDC;
  await mintAndApprove(usdc, deployer, await vault.getAddress(), poolTopUp);
  await vault.deposit(sys.poolAccountId, usdc, poolTopUp);
  const id = await openAccount(sys, alice, MarginMode.CROSS, [[usdc, 92_100_000n * USDC]]);
  await trade(perps, alice, id, deep, wad("62500"));
  const h = await engine.health(id);
  expect(h.equityInitial).to.be.gte(h.initialRequirement);
  expect(h.healthRatio).to.be.within(wad("2.04"), wad("2.06"));
  return { ...sys, id };
}

/** The option market with one ETH call a month out; the deployer holds every role. */
async function optionsSystem() {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(30n * DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const put = await listSeries(sys.options, "ETH", "3000", expiry, false);
  return { ...sys, call, put };
}

/**
 * Sends `send(nonce)` for every nonce in one block (automine off) and returns the receipts' statuses:
 * how the reviewer chained setter calls so that no one could react between them.
 */
async function inOneBlock(
  count: number,
  from: { getNonce(): Promise<number> },
  send: (i: number, nonce: number) => Promise<ContractTransactionResponse>,
): Promise<number[]> {
  await network.provider.send("evm_setAutomine", [false]);
  const hashes: string[] = [];
  try {
    let nonce = await from.getNonce();
    for (let i = 0; i < count; i++) hashes.push((await send(i, nonce++)).hash);
    await network.provider.send("evm_mine");
  } finally {
    await network.provider.send("evm_setAutomine", [true]);
  }
  const receipts = await Promise.all(hashes.map((h) => ethers.provider.getTransactionReceipt(h)));
  expect(new Set(receipts.map((r) => r!.blockNumber)).size).to.equal(1);
  return receipts.map((r) => r!.status!);
}

describe("GovernanceBounds", function () {
  describe("MarginEngine.setRiskParams", function () {
    const stepUp = (k: bigint) => ({
      ...DEFAULT_RISK_PARAMS,
      mmShockFloor: wad("0.05") + k * wad("0.05"),
      imShockFloor: wad("0.10") + k * wad("0.05"),
    });

    it("refuses a second risk-parameter change within a day and accepts it a day later", async function () {
      const { engine, risk, feeds, volFeeds } = await loadFixture(system);
      await engine.connect(risk).setRiskParams(ETH, stepUp(1n));
      const t = BigInt(await time.latest());
      expect(await engine.nextUpdateAt(set("riskParams"), ETH)).to.equal(t + DAY);
      await advanceTo({ feeds, volFeeds }, t + DAY - 1n);
      await expect(engine.connect(risk).setRiskParams(ETH, stepUp(2n)))
        .to.be.revertedWithCustomError(engine, "UpdateTooSoon")
        .withArgs(set("riskParams"), ETH, t + DAY);
      await time.setNextBlockTimestamp(t + DAY);
      await expect(engine.connect(risk).setRiskParams(ETH, stepUp(2n))).to.emit(engine, "RiskParamsUpdated");
      expect((await engine.riskParams(ETH)).mmShockFloor).to.equal(wad("0.15"));
    });

    it("keeps a healthy account healthy when seven max-step updates are sent in one block", async function () {
      const { engine, risk, aliceId } = await loadFixture(system);
      const before = await engine.health(aliceId);
      const statuses = await inOneBlock(7, risk, (i, nonce) =>
        engine.connect(risk).setRiskParams(ETH, stepUp(BigInt(i + 1)), { nonce, gasLimit: 500_000 }),
      );
      // Only the first step lands: 0.05 → 0.10, not 0.40.
      expect(statuses).to.deep.equal([1, 0, 0, 0, 0, 0, 0]);
      expect((await engine.riskParams(ETH)).mmShockFloor).to.equal(wad("0.10"));
      const after = await engine.health(aliceId);
      expect(after.maintenanceRequirement).to.be.gt(before.maintenanceRequirement);
      expect(after.equityMaintenance).to.be.gt(after.maintenanceRequirement);
    });

    it("throttles each underlying separately", async function () {
      const { engine, risk } = await loadFixture(system);
      await engine.connect(risk).setRiskParams(ETH, stepUp(1n));
      await expect(engine.connect(risk).setRiskParams(assetId("BTC"), stepUp(1n))).to.emit(
        engine,
        "RiskParamsUpdated",
      );
    });

    it("does not throttle listing: the first change after it is allowed at once", async function () {
      const { engine, manager, risk } = await loadFixture(system);
      const [deployer] = await ethers.getSigners();
      await manager.grantRole(Role.LISTING, deployer.address, 0);
      const sol = assetId("SOL");
      await engine.listUnderlying(sol, DEFAULT_RISK_PARAMS);
      expect(await engine.nextUpdateAt(set("riskParams"), sol)).to.equal(0n);
      await engine.connect(risk).setRiskParams(sol, stepUp(1n));
      await expect(engine.connect(risk).setRiskParams(sol, stepUp(2n))).to.be.revertedWithCustomError(
        engine,
        "UpdateTooSoon",
      );
    });

    it("reports a step violation as such, not as an update too soon", async function () {
      const { engine, risk } = await loadFixture(system);
      await engine.connect(risk).setRiskParams(ETH, stepUp(1n));
      await expect(engine.connect(risk).setRiskParams(ETH, stepUp(3n)))
        .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
        .withArgs(set("mmShockFloor"));
    });

    it("compounds a size-scale cut with the other raises: half steps on both that more than double a large book's MM are refused", async function () {
      const { engine, id } = await loadFixture(whale);
      // 0.65 of a step (0.05 → 0.0825) plus 0.35 (50M → 37.04M): 0.9999 by the sum. Without the fix it
      // passes and takes the whale's MM from 44.91M to 94.13M USD, above its 92.0M equity.
      const combined = { ...DEFAULT_RISK_PARAMS, mmShockFloor: wad("0.0825"), sizeScale: wad("37040000") };
      await expect(engine.setRiskParams(ETH, combined))
        .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
        .withArgs(set("maintenanceStep"));
      const h = await engine.health(id);
      expect(h.equityMaintenance).to.be.gte(h.maintenanceRequirement);
      // Still accepted: each full step alone, and raises whose product is a doubling; the whale stays
      // healthy through each.
      const updates = [
        { mmShockFloor: wad("0.10") }, // one step: the floor doubles
        { sizeScale: wad("25000000") }, // one step: the size scale halves
        { mmShockFloor: wad("0.075"), sizeScale: wad("37500000") }, // ×1.5 · ×4/3 = ×2
      ];
      for (const change of updates) {
        const { engine: fresh, id: whaleId } = await loadFixture(whale);
        await expect(fresh.setRiskParams(ETH, { ...DEFAULT_RISK_PARAMS, ...change })).to.emit(
          fresh,
          "RiskParamsUpdated",
        );
        const after = await fresh.health(whaleId);
        expect(after.equityMaintenance).to.be.gte(after.maintenanceRequirement);
      }
    });
  });

  describe("CollateralVault.setCollateralWeights and setDepositCap", function () {
    it("refuses a second collateral-weight change within a day and accepts it a day later", async function () {
      const { vault, weth, risk } = await loadFixture(system);
      await vault.connect(risk).setCollateralWeights(weth, wad("0.8"), wad("0.9"));
      const t = BigInt(await time.latest());
      const id = ethers.zeroPadValue(await weth.getAddress(), 32);
      await time.setNextBlockTimestamp(t + DAY - 1n);
      await expect(vault.connect(risk).setCollateralWeights(weth, wad("0.7"), wad("0.8")))
        .to.be.revertedWithCustomError(vault, "UpdateTooSoon")
        .withArgs(set("collateralWeights"), id, t + DAY);
      await time.setNextBlockTimestamp(t + DAY);
      await expect(vault.connect(risk).setCollateralWeights(weth, wad("0.7"), wad("0.8"))).to.emit(
        vault,
        "CollateralWeightsUpdated",
      );
    });

    it("keeps a healthy WETH-backed account healthy when eight weight cuts are sent in one block", async function () {
      const sys = await loadFixture(system);
      const { vault, engine, weth, risk, bob } = sys;
      // Bob: 10 WETH (30,000 USD), long 40 ETH.
      const bobId = await openAccount(sys, bob, MarginMode.CROSS, [[weth, wad("10")]]);
      await trade(sys.perps, bob, bobId, sys.markets.ETH, wad("40"));
      const statuses = await inOneBlock(8, risk, (i, nonce) => {
        // Each cut the largest one allowed from the last: the maintenance weight to the initial one.
        const mm = wad("1") - BigInt(i + 1) * wad("0.1");
        const im = wad("0.9") - BigInt(i + 1) * wad("0.1");
        return vault
          .connect(risk)
          .setCollateralWeights(weth, im < wad("0.1") ? wad("0.1") : im, mm, { nonce, gasLimit: 200_000 });
      });
      // Only the first cut lands: 0.95 → 0.90, not 0.20.
      expect(statuses).to.deep.equal([1, 0, 0, 0, 0, 0, 0, 0]);
      expect((await vault.collateralConfig(weth)).maintenanceWeight).to.equal(wad("0.9"));
      const h = await engine.health(bobId);
      expect(h.equityMaintenance).to.be.gt(h.maintenanceRequirement);
    });

    it("throttles the weights and the deposit cap of each token separately", async function () {
      const { vault, weth, wbtc, risk } = await loadFixture(system);
      await vault.connect(risk).setCollateralWeights(weth, wad("0.8"), wad("0.9"));
      await expect(vault.connect(risk).setCollateralWeights(wbtc, wad("0.8"), wad("0.9"))).to.emit(
        vault,
        "CollateralWeightsUpdated",
      );
      const cap = (await vault.collateralConfig(weth)).depositCap;
      await expect(vault.connect(risk).setDepositCap(weth, cap * 2n)).to.emit(vault, "DepositCapUpdated");
    });

    it("raises a deposit cap at most once a day but lowers it at any time", async function () {
      const { vault, weth, risk } = await loadFixture(system);
      const cap = (await vault.collateralConfig(weth)).depositCap;
      await vault.connect(risk).setDepositCap(weth, cap * 2n);
      const t = BigInt(await time.latest());
      const id = ethers.zeroPadValue(await weth.getAddress(), 32);
      await expect(vault.connect(risk).setDepositCap(weth, cap * 4n))
        .to.be.revertedWithCustomError(vault, "UpdateTooSoon")
        .withArgs(set("depositCap"), id, t + DAY);
      // Cuts are free and do not restart the interval; raising back is still an increase.
      await vault.connect(risk).setDepositCap(weth, cap / 2n);
      await vault.connect(risk).setDepositCap(weth, cap / 4n);
      await expect(vault.connect(risk).setDepositCap(weth, cap / 2n)).to.be.revertedWithCustomError(
        vault,
        "UpdateTooSoon",
      );
      await time.setNextBlockTimestamp(t + DAY);
      await expect(vault.connect(risk).setDepositCap(weth, cap / 2n)).to.emit(vault, "DepositCapUpdated");
    });

    it("refuses a maintenance-weight cut below the current initial weight: an account meeting its IM is not liquidated by one update", async function () {
      const {
        vault,
        weth,
        usdc,
        auction,
        engine,
        keeper,
        debtorId: id,
      } = await loadFixture(wethDebtorSystem);
      expect(await vault.balanceOf(id, usdc)).to.be.lt(-25_000n * USDC);
      const before = await engine.health(id);
      expect(before.equityInitial).to.be.gte(before.initialRequirement);
      // One 0.1 step of both weights (0.80 / 0.85) would take his equity_MM from 2,449.9 to −550.1 USD.
      await expect(vault.setCollateralWeights(weth, wad("0.8"), wad("0.85")))
        .to.be.revertedWithCustomError(vault, "ParameterOutOfBounds")
        .withArgs(set("maintenanceWeightStep"), wad("0.85"));
      // The same day's largest cut: the initial weight by a step, the maintenance weight to the old
      // initial one. Bob no longer meets his initial requirement (he has a day to top up) but is healthy.
      await vault.setCollateralWeights(weth, wad("0.8"), wad("0.9"));
      const h = await engine.health(id);
      expect(h.equityMaintenance).to.be.gte(h.maintenanceRequirement);
      await expect(auction.connect(keeper).startAuction(id)).to.be.revertedWithCustomError(
        auction,
        "AccountHealthy",
      );
    });
  });

  describe("PerpMarket.setMarketParams", function () {
    it("refuses a second market-parameter change within a day and accepts it a day later", async function () {
      const { perps, markets, risk, feeds, volFeeds } = await loadFixture(system);
      await perps.connect(risk).setMarketParams(markets.BTC, marketParams({ takerFee: wad("0.001") }));
      const t = BigInt(await time.latest());
      await expect(perps.connect(risk).setMarketParams(markets.BTC, marketParams({ takerFee: wad("0.002") })))
        .to.be.revertedWithCustomError(perps, "UpdateTooSoon")
        .withArgs(set("marketParams"), idOf(markets.BTC), t + DAY);
      await advanceTo({ feeds, volFeeds }, t + DAY);
      await expect(
        perps.connect(risk).setMarketParams(markets.BTC, marketParams({ takerFee: wad("0.002") })),
      ).to.emit(perps, "MarketParamsUpdated");
    });

    it("counts the first change after listing: the fixture's funding switch-off starts ETH's interval", async function () {
      const { perps, markets, risk } = await loadFixture(system);
      await expect(
        perps.connect(risk).setMarketParams(markets.ETH, marketParams({ maxFundingVelocity: wad("0.1") })),
      ).to.be.revertedWithCustomError(perps, "UpdateTooSoon");
    });
  });

  describe("OptionMarket.setSeriesParams, setSkew and setPoolVegaRatio", function () {
    it("refuses a second series-parameter change within a day", async function () {
      const { options, call } = await loadFixture(optionsSystem);
      await options.setSeriesParams(call, seriesParams({ fee: wad("0.0013") }));
      const t = BigInt(await time.latest());
      await expect(options.setSeriesParams(call, seriesParams({ fee: wad("0.0016") })))
        .to.be.revertedWithCustomError(options, "UpdateTooSoon")
        .withArgs(set("seriesParams"), idOf(call), t + DAY);
      await time.setNextBlockTimestamp(t + DAY);
      await expect(options.setSeriesParams(call, seriesParams({ fee: wad("0.0016") }))).to.emit(
        options,
        "SeriesParamsUpdated",
      );
    });

    it("moves a series' skew at most once every 12 hours, each series on its own clock", async function () {
      const { options, call, put } = await loadFixture(optionsSystem);
      const interval = 12n * 3600n; // MIN_SKEW_UPDATE_INTERVAL
      // Steps of 2 points: twice the series' spread factor (0.01), the largest step allowed.
      await options.setSkew(call, wad("0.02"));
      const t = BigInt(await time.latest());
      await expect(options.setSkew(call, wad("0.04")))
        .to.be.revertedWithCustomError(options, "UpdateTooSoon")
        .withArgs(set("skew"), idOf(call), t + interval);
      await expect(options.setSkew(put, wad("0.02"))).to.emit(options, "SkewUpdated");
      await time.setNextBlockTimestamp(t + interval);
      await expect(options.setSkew(call, wad("0.04"))).to.emit(options, "SkewUpdated");
    });

    it("raises the pool vega ratio at most once a day but lowers it at any time", async function () {
      const { options } = await loadFixture(optionsSystem);
      // The fixture's first value (1.0) configured ETH and started no interval.
      await options.setPoolVegaRatio(ETH, wad("2"));
      const t = BigInt(await time.latest());
      await expect(options.setPoolVegaRatio(ETH, wad("4")))
        .to.be.revertedWithCustomError(options, "UpdateTooSoon")
        .withArgs(set("poolVegaRatio"), ETH, t + DAY);
      await options.setPoolVegaRatio(ETH, wad("0.5"));
      await time.setNextBlockTimestamp(t + DAY);
      await expect(options.setPoolVegaRatio(ETH, wad("1"))).to.emit(options, "PoolVegaRatioUpdated");
    });
  });

  describe("LiquidationAuction.setAuctionParams", function () {
    const P = DEFAULT_AUCTION_PARAMS; // 2% → 10% over 1,800 s, penalty 1%, flag reward 10 USDC

    it("refuses the reviewer's one-call change, and the flagger takes 10 USDC, not a barely-unhealthy account's equity", async function () {
      const { auction, engine, usdc, risk, feeds, aliceId } = await loadFixture(system);
      await setFeedPrice(feeds.ETH, "2150");
      const h = await engine.health(aliceId);
      expect(h.equityMaintenance).to.be.lt(h.maintenanceRequirement);
      expect(h.equityMark).to.be.gt(1_000n * 10n ** 18n);
      for (const change of [
        { flagReward: 10n ** 30n },
        { penalty: wad("0.05") },
        { duration: 60 },
        { flagReward: 10n ** 30n, penalty: wad("0.05"), duration: 60 },
      ]) {
        await expect(
          auction.connect(risk).setAuctionParams({ ...P, ...change }),
        ).to.be.revertedWithCustomError(auction, "AuctionParamsOutOfBounds");
      }
      const before = await usdc.balanceOf(risk.address);
      await auction.connect(risk).startAuction(aliceId);
      expect((await usdc.balanceOf(risk.address)) - before).to.equal(10n * USDC);
    });

    it("refuses a flag reward above 100 USDC, whatever the steps", async function () {
      const { auction, risk, feeds, volFeeds } = await loadFixture(system);
      expect(await auction.maxFlagReward()).to.equal(100n * USDC);
      // The fastest escalation allowed: +25 USDC a day, 10 → 35 → 60 → 85 → 100.
      for (const reward of [35n, 60n, 85n]) {
        await auction.connect(risk).setAuctionParams({ ...P, flagReward: reward * USDC });
        await advanceTo({ feeds, volFeeds }, BigInt(await time.latest()) + DAY);
      }
      await expect(
        auction.connect(risk).setAuctionParams({ ...P, flagReward: 100n * USDC + 1n }),
      ).to.be.revertedWithCustomError(auction, "AuctionParamsOutOfBounds");
      await auction.connect(risk).setAuctionParams({ ...P, flagReward: 100n * USDC });
      expect((await auction.params()).flagReward).to.equal(100n * USDC);
    });

    it("moves the flag reward by at most 25 USDC, the penalty by one point and the duration by ×2 or ÷2 per update", async function () {
      const { auction, risk } = await loadFixture(system);
      for (const change of [
        { flagReward: 35n * USDC + 1n },
        { penalty: wad("0.02") + 1n },
        { duration: 3_601 },
        { duration: 899 },
      ]) {
        await expect(
          auction.connect(risk).setAuctionParams({ ...P, ...change }),
        ).to.be.revertedWithCustomError(auction, "AuctionParamsOutOfBounds");
      }
      const atSteps = { ...P, flagReward: 35n * USDC, penalty: wad("0.02"), duration: 3_600 };
      await expect(auction.connect(risk).setAuctionParams(atSteps)).to.emit(auction, "AuctionParamsUpdated");
    });

    it("refuses a second auction-parameter change within a day", async function () {
      const { auction, risk, feeds, volFeeds } = await loadFixture(system);
      await auction.connect(risk).setAuctionParams({ ...P, duration: 900 });
      const t = BigInt(await time.latest());
      await expect(auction.connect(risk).setAuctionParams({ ...P, duration: 450 }))
        .to.be.revertedWithCustomError(auction, "UpdateTooSoon")
        .withArgs(set("auctionParams"), ethers.ZeroHash, t + DAY);
      await advanceTo({ feeds, volFeeds }, t + DAY);
      await expect(auction.connect(risk).setAuctionParams({ ...P, duration: 450 })).to.emit(
        auction,
        "AuctionParamsUpdated",
      );
    });
  });
});
