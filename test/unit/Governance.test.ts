import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { Role } from "../../deploy/roles";
import { MAX_UNDERLYINGS } from "../../deploy/networkConfig";
import { DEFAULT_RISK_PARAMS, MarginMode, deploySystem, openAccount, wad } from "../shared/system";
import { assetId } from "../shared/oracles";
import { listPerpMarket, marketParams, trade } from "../shared/perps";

const TIMELOCK_DELAY = 2 * 86_400;
const RISK_DELAY = 86_400;

/**
 * The production set-up: the TimelockController is the AccessManager's only admin, the risk manager
 * acts with an execution delay, the guardian acts at once.
 */
async function governedSystem() {
  const sys = await deploySystem();
  const [, , , , , , proposer, riskManager, guardian, stranger, lister] = await ethers.getSigners();
  const timelock = await ethers.deployContract("TimelockController", [
    TIMELOCK_DELAY,
    [proposer.address],
    [proposer.address],
    ethers.ZeroAddress,
  ]);
  const { manager, deployer } = sys;
  await manager.grantRole(Role.ADMIN, timelock, 0);
  await manager.grantRole(Role.RISK_MANAGER, riskManager.address, RISK_DELAY);
  await manager.grantRole(Role.GUARDIAN, guardian.address, 0);
  await manager.grantRole(Role.LISTING, lister.address, 0);
  for (const role of [Role.RISK_MANAGER, Role.LISTING, Role.GUARDIAN, Role.TREASURY]) {
    await manager.revokeRole(role, deployer);
  }
  await manager.renounceRole(Role.ADMIN, deployer);
  return { ...sys, timelock, proposer, riskManager, guardian, stranger, lister };
}

describe("Governance", function () {
  it("leaves the timelock as the only admin of the AccessManager", async function () {
    const { manager, timelock, deployer } = await loadFixture(governedSystem);
    expect((await manager.hasRole(Role.ADMIN, timelock))[0]).to.equal(true);
    expect((await manager.hasRole(Role.ADMIN, deployer))[0]).to.equal(false);
    await expect(
      manager.connect(deployer).grantRole(Role.LISTING, deployer, 0),
    ).to.be.revertedWithCustomError(manager, "AccessManagerUnauthorizedAccount");
  });

  it("grants a role only through a timelocked proposal, after the delay", async function () {
    const { manager, timelock, proposer, stranger } = await loadFixture(governedSystem);
    const call = manager.interface.encodeFunctionData("grantRole", [Role.LISTING, stranger.address, 0]);
    const salt = ethers.id("grant listing");
    const target = await manager.getAddress();
    await timelock.connect(proposer).schedule(target, 0, call, ethers.ZeroHash, salt, TIMELOCK_DELAY);
    await expect(
      timelock.connect(proposer).execute(target, 0, call, ethers.ZeroHash, salt),
    ).to.be.revertedWithCustomError(timelock, "TimelockUnexpectedOperationState");
    await time.increase(TIMELOCK_DELAY);
    await timelock.connect(proposer).execute(target, 0, call, ethers.ZeroHash, salt);
    expect((await manager.hasRole(Role.LISTING, stranger))[0]).to.equal(true);
  });

  it("makes the risk manager schedule parameter changes and wait out its execution delay", async function () {
    const { manager, vault, weth, riskManager } = await loadFixture(governedSystem);
    const call = vault.interface.encodeFunctionData("setCollateralWeights", [
      await weth.getAddress(),
      wad("0.85"),
      wad("0.9"),
    ]);
    await expect(
      vault.connect(riskManager).setCollateralWeights(weth, wad("0.85"), wad("0.9")),
    ).to.be.revertedWithCustomError(manager, "AccessManagerNotScheduled");
    await manager.connect(riskManager).schedule(vault, call, 0);
    await expect(manager.connect(riskManager).execute(vault, call)).to.be.revertedWithCustomError(
      manager,
      "AccessManagerNotReady",
    );
    await time.increase(RISK_DELAY);
    await manager.connect(riskManager).execute(vault, call);
    const config = await vault.collateralConfig(weth);
    expect(config.initialWeight).to.equal(wad("0.85"));
    expect(config.maintenanceWeight).to.equal(wad("0.9"));
  });

  it("lets the guardian pause withdrawals at once but never deposits", async function () {
    const sys = await loadFixture(governedSystem);
    const { vault, usdc, guardian, stranger, alice } = sys;
    await expect(vault.connect(stranger).pause()).to.be.revertedWithCustomError(
      vault,
      "AccessManagedUnauthorized",
    );
    await vault.connect(guardian).pause();
    expect(await vault.paused()).to.equal(true);
    const accountId = await openAccount(sys, alice, MarginMode.CROSS, [[usdc, 1_000_000n]]);
    await expect(
      vault.connect(alice).withdraw(accountId, usdc, 1n, alice.address),
    ).to.be.revertedWithCustomError(vault, "EnforcedPause");
    await vault.connect(guardian).unpause();
    await vault.connect(alice).withdraw(accountId, usdc, 1n, alice.address);
  });

  it("lets the guardian pause new risk in the engine", async function () {
    const { engine, guardian, stranger } = await loadFixture(governedSystem);
    await expect(engine.connect(stranger).pause()).to.be.revertedWithCustomError(
      engine,
      "AccessManagedUnauthorized",
    );
    await engine.connect(guardian).pause();
    expect(await engine.paused()).to.equal(true);
  });

  // Found by the security review of 2026-12-02: with these on LISTING (no delay), the role registered
  // itself as a market and moved 909,000 USDC out of the pool and an account in four transactions, or
  // replaced ETH's live feed and liquidated a healthy account.
  it("leaves feeds, collateral listings, market registration and listings of underlyings and perp markets to the timelock, not the listing role", async function () {
    const { router, vault, engine, perps, weth, wbtc, lister } = await loadFixture(governedSystem);
    const feed = await ethers.deployContract("MockV3Aggregator", [8, 1n]);
    const eth = assetId("ETH");
    const attempts = [
      () => engine.connect(lister).registerMarket(lister.address),
      () =>
        router.connect(lister).configureAsset(eth, {
          primary: feed,
          primaryHeartbeat: 3_600,
          secondaries: [],
          secondaryHeartbeats: [],
          minPrice: 1n,
          maxPrice: wad("1000000"),
          maxDeviation: wad("0.02"),
        }),
      () => router.connect(lister).configureVolatilityFeed(eth, feed, 3_600, wad("0.05"), wad("5")),
      () => router.connect(lister).configureSequencerFeed(ethers.ZeroAddress, 0),
      () => vault.connect(lister).listCollateral(feed, eth, wad("0.9"), wad("0.95"), 1n, false),
      () => vault.connect(lister).relistCollateral(weth),
      // Review round 22: first parameters have no step, so the role listed a second ETH market at 10×
      // the delta limit the risk manager could only reach in ten daily steps (LPs −991,633 on +10%).
      () => engine.connect(lister).listUnderlying(assetId("SOL"), DEFAULT_RISK_PARAMS),
      () => perps.connect(lister).listMarket(eth, marketParams(), 0n),
    ];
    for (const attempt of attempts) {
      await expect(attempt()).to.be.revertedWithCustomError(engine, "AccessManagedUnauthorized");
    }
    // What the role is for still works: taking a token out of new deposits.
    await expect(vault.connect(lister).delistCollateral(wbtc)).to.emit(vault, "CollateralDelisted");
  });

  it("keeps every restricted function closed to callers without its role", async function () {
    const { router, vault, engine, insuranceFund, weth, stranger } = await loadFixture(governedSystem);
    const eth = assetId("ETH");
    const checks = [
      () => router.connect(stranger).configureSequencerFeed(ethers.ZeroAddress, 0),
      () => vault.connect(stranger).listCollateral(weth, eth, wad("0.5"), wad("0.6"), 1n, false),
      () => vault.connect(stranger).delistCollateral(weth),
      () => vault.connect(stranger).setDepositCap(weth, 1n),
      () => vault.connect(stranger).setMarginEngine(stranger.address),
      () => engine.connect(stranger).registerMarket(stranger.address),
      () => engine.connect(stranger).listUnderlying(assetId("SOL"), DEFAULT_RISK_PARAMS),
      () => engine.connect(stranger).setRiskParams(eth, DEFAULT_RISK_PARAMS),
      () => engine.connect(stranger).initialize(1n, stranger.address, stranger.address),
      () => insuranceFund.connect(stranger).withdraw(stranger.address, 1n),
    ];
    for (const call of checks) {
      await expect(call()).to.be.revertedWithCustomError(vault, "AccessManagedUnauthorized");
    }
  });
});

describe("MarginEngine risk parameters", function () {
  it("accepts a change within every max step", async function () {
    const { engine } = await loadFixture(deploySystem);
    const next = {
      ...DEFAULT_RISK_PARAMS,
      imShockFloor: wad("0.12"),
      mmZ: wad("2.83"), // half of its max step
      contingency: wad("0.0028"), // 0.4 of its current value: 0.9 of one step in all
    };
    await expect(engine.setRiskParams(assetId("ETH"), next)).to.emit(engine, "RiskParamsUpdated");
    expect((await engine.riskParams(assetId("ETH"))).imShockFloor).to.equal(wad("0.12"));
  });

  const steps: [string, Partial<typeof DEFAULT_RISK_PARAMS>][] = [
    ["mmShockFloor", { mmShockFloor: wad("0.101"), imShockFloor: wad("0.12") }],
    ["imShockFloor", { imShockFloor: wad("0.2") }],
    ["maxShock", { maxShock: wad("0.6") }],
    ["mmZ", { mmZ: wad("1") }],
    ["imZ", { imZ: wad("4.5") }],
    ["horizon", { horizon: 86_400n * 3n }],
    ["mmVolShock", { mmVolShock: wad("0.01") }],
    ["imVolShock", { imVolShock: wad("0.4") }],
    ["shortOptionFloor", { shortOptionFloor: wad("0.2") }],
    ["contingency", { contingency: wad("0.02") }],
    ["sizeScale", { sizeScale: wad("200000000") }],
  ];
  for (const [name, change] of steps) {
    it(`rejects a ${name} change larger than its max step`, async function () {
      const { engine } = await loadFixture(deploySystem);
      await expect(engine.setRiskParams(assetId("ETH"), { ...DEFAULT_RISK_PARAMS, ...change }))
        .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
        .withArgs(ethers.encodeBytes32String(name));
    });
  }

  // Each maintenance field at its full max step (IM fields follow where IM ≥ MM requires it).
  const maintenanceSteps: [string, Partial<typeof DEFAULT_RISK_PARAMS>][] = [
    ["mmShockFloor", { mmShockFloor: wad("0.10") }],
    ["maxShock", { maxShock: wad("0.55") }],
    ["mmZ", { mmZ: wad("3.33"), imZ: wad("3.33") }],
    ["horizon", { horizon: 2n * 86_400n }],
    ["mmVolShock", { mmVolShock: wad("0.25") }],
    ["shortOptionFloor", { shortOptionFloor: wad("0.10") }],
    ["contingency", { contingency: wad("0.004") }], // a doubling: 0.002 is below the 0.01 max step
    ["sizeScale", { sizeScale: wad("25000000") }],
  ];

  // Review round 22: bounded one field at a time, one call took all eight their full step and made an
  // account at twice its maintenance requirement liquidatable at an unchanged price.
  it("refuses an update whose maintenance-raising moves add up to more than one max step", async function () {
    const { engine } = await loadFixture(deploySystem);
    const everyStep = Object.assign({ ...DEFAULT_RISK_PARAMS }, ...maintenanceSteps.map(([, c]) => c));
    await expect(engine.setRiskParams(assetId("ETH"), everyStep))
      .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
      .withArgs(ethers.encodeBytes32String("maintenanceStep"));
    // Two half steps make one; a raise paid for by lowering other fields counts only its own step.
    const halves = { ...DEFAULT_RISK_PARAMS, mmShockFloor: wad("0.075"), contingency: wad("0.003") };
    const justOver = { ...halves, contingency: wad("0.0030001") };
    await expect(engine.setRiskParams(assetId("ETH"), justOver))
      .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
      .withArgs(ethers.encodeBytes32String("maintenanceStep"));
    await expect(engine.setRiskParams(assetId("ETH"), halves)).to.emit(engine, "RiskParamsUpdated");
    const { engine: fresh } = await loadFixture(deploySystem);
    const traded = { ...DEFAULT_RISK_PARAMS, mmShockFloor: wad("0.10"), mmZ: wad("1.33"), contingency: 0n };
    await expect(fresh.setRiskParams(assetId("ETH"), traded)).to.emit(fresh, "RiskParamsUpdated");
  });

  /** A naked long (its MM the shock's) and a hedge across two ETH markets (its MM nearly all contingency). */
  async function booksAtTwiceMaintenance() {
    const sys = await deploySystem();
    const naked = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * 10n ** 6n]]);
    await trade(sys.perps, sys.alice, naked, sys.markets.ETH, wad("20")); // 60,000 USD long
    // Deep markets (little skew premium to close), then the margin withdrawn down to 2.5× MM.
    const deep = marketParams({ skewScale: wad("1000000"), maxOpenInterest: wad("1000") });
    const [ethA, ethB] = [
      await listPerpMarket(sys.perps, "ETH", deep),
      await listPerpMarket(sys.perps, "ETH", deep),
    ];
    const hedged = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * 10n ** 6n]]);
    await trade(sys.perps, sys.bob, hedged, ethA, wad("20"));
    await trade(sys.perps, sys.bob, hedged, ethB, -wad("20"));
    const h = await sys.engine.health(hedged);
    const excess = h.equityMaintenance - (h.maintenanceRequirement * 5n) / 2n;
    await sys.vault.connect(sys.bob).withdraw(hedged, sys.usdc, excess / 10n ** 12n, sys.bob);
    return { sys, books: [naked, hedged] };
  }

  for (const [name, change] of maintenanceSteps) {
    it(`keeps a naked and a hedged account at twice their maintenance requirement healthy through a full ${name} step`, async function () {
      const { sys, books } = await loadFixture(booksAtTwiceMaintenance);
      for (const id of books)
        expect((await sys.engine.health(id)).healthRatio).to.be.within(wad("2"), wad("3"));
      await sys.engine.setRiskParams(assetId("ETH"), { ...DEFAULT_RISK_PARAMS, ...change });
      for (const id of books) {
        const after = await sys.engine.health(id);
        expect(after.equityMaintenance).to.be.gte(after.maintenanceRequirement);
      }
    });
  }

  // Review round 25: a full absolute step of a small value multiplied it. The contingency's 0.002 →
  // 0.012 took the hedge from 4× its MM to 0.67×; a raise now also counts against the current value.
  it("counts a raise of a small value against that value: the contingency at most doubles in one update", async function () {
    const { engine } = await loadFixture(deploySystem);
    await expect(engine.setRiskParams(assetId("ETH"), { ...DEFAULT_RISK_PARAMS, contingency: wad("0.012") }))
      .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
      .withArgs(ethers.encodeBytes32String("maintenanceStep"));
    await expect(
      engine.setRiskParams(assetId("ETH"), { ...DEFAULT_RISK_PARAMS, contingency: wad("0.004") }),
    ).to.emit(engine, "RiskParamsUpdated");
  });

  const bounds: [string, Partial<typeof DEFAULT_RISK_PARAMS>][] = [
    ["mmShockFloor", { mmShockFloor: wad("0.001") }],
    ["imShockFloor", { imShockFloor: wad("0.04") }],
    ["maxShock", { maxShock: wad("1.01") }],
    ["imZ", { imZ: wad("2") }],
    ["horizon", { horizon: 60n }],
    ["mmVolShock", { mmVolShock: wad("0.049") }], // review round 59: no lower bound before
    ["imVolShock", { imVolShock: wad("0.1") }],
    ["shortOptionFloor", { shortOptionFloor: wad("0.6") }],
    ["contingency", { contingency: wad("0.2") }],
    ["sizeScale", { sizeScale: wad("1") }],
  ];
  for (const [name, change] of bounds) {
    it(`rejects listing with ${name} outside its hard bounds`, async function () {
      const { engine } = await loadFixture(deploySystem);
      await expect(engine.listUnderlying(assetId("SOL"), { ...DEFAULT_RISK_PARAMS, ...change }))
        .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
        .withArgs(ethers.encodeBytes32String(name));
    });
  }

  it("refuses to list an underlying twice or update an unknown one", async function () {
    const { engine } = await loadFixture(deploySystem);
    await expect(engine.listUnderlying(assetId("ETH"), DEFAULT_RISK_PARAMS)).to.be.revertedWithCustomError(
      engine,
      "UnderlyingAlreadyListed",
    );
    await expect(engine.setRiskParams(assetId("SOL"), DEFAULT_RISK_PARAMS)).to.be.revertedWithCustomError(
      engine,
      "UnknownUnderlying",
    );
  });

  it("lists at most MAX_UNDERLYINGS underlyings: the next reverts with UnderlyingLimitReached and lists nothing", async function () {
    const { engine } = await loadFixture(deploySystem);
    const max = await engine.MAX_UNDERLYINGS();
    // The deployment config's parser refuses more (DeployConfig.test.ts).
    expect(max).to.equal(BigInt(MAX_UNDERLYINGS));
    // The fixture lists ETH and BTC.
    await expect(engine.underlyings(2n)).to.be.reverted;
    for (let i = 2n; i < max; i++) await engine.listUnderlying(assetId(`U${i}`), DEFAULT_RISK_PARAMS);
    await expect(engine.listUnderlying(assetId("SOL"), DEFAULT_RISK_PARAMS))
      .to.be.revertedWithCustomError(engine, "UnderlyingLimitReached")
      .withArgs(max);
    await expect(engine.riskParams(assetId("SOL"))).to.be.revertedWithCustomError(
      engine,
      "UnknownUnderlying",
    );
    await expect(engine.underlyings(max)).to.be.reverted;
  });
});
