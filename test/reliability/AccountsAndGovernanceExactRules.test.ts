/**
 * The account registry's and the risk parameters' exact rules, pinned where review round 99's mutants
 * (docs/reliability.md §4, rows 235–239) showed the suite let a small change through: who owns an account
 * a contract creates, a trading grant spent from a market to the wei and its refusals' arguments, each
 * risk parameter's max step to the wei in both directions, every maintenance field's share of the
 * one-step budget, the raise's rounding and its fifth-of-a-step base, IM ≥ MM at equality, and what
 * the deployer keeps of the timelock and the registry after a deployment; and `Roles.sol` agreeing with
 * deploy/roles.ts.
 */
import { expect } from "chai";
import fs from "node:fs";
import path from "node:path";
import hre, { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { deployModule } from "../../deploy/ignition";
import { buildXMarginModule } from "../../deploy/modules/XMargin";
import { loadNetworkConfig } from "../../deploy/networkConfig";
import { Role } from "../../deploy/roles";
import type { IMarginEngine } from "../../typechain-types";
import { DEFAULT_RISK_PARAMS, MarginMode, deploySystem, wad } from "../shared/system";
import { signerFor } from "../shared/impersonate";
import { assetId } from "../shared/oracles";

type RiskParams = IMarginEngine.RiskParamsStruct;
const name = (parameter: string) => ethers.encodeBytes32String(parameter);

/** A bare registry, an integrator contract that creates accounts, and the registry bound to `market`. */
async function registry() {
  const [deployer, alice, bot, stranger] = await ethers.getSigners();
  const accounts = await ethers.deployContract("Accounts");
  // Any address stands in for the vault: creating an account never calls it.
  const integrator = await ethers.deployContract("IntegratorVault", [accounts, stranger.address]);
  return { accounts, integrator, deployer, alice, bot, stranger };
}

/** The protocol, Alice's account granting her bot 1,000 USDC units, and the perp market as a signer. */
async function grantFromMarket() {
  const sys = await deploySystem();
  const [, , , , , , , bot] = await ethers.getSigners();
  await sys.accounts.connect(sys.alice).createAccount(MarginMode.CROSS);
  const account = await sys.accounts.accountCount();
  await sys.accounts.connect(sys.alice).setTrader(account, bot.address, 1_000n);
  const market = await signerFor(sys.perps);
  return { ...sys, account, bot, market };
}

describe("Accounts: exact rules", function () {
  describe("creation", function () {
    it("makes the contract that calls createAccount the owner, not the transaction's sender", async function () {
      const { accounts, integrator, alice } = await loadFixture(registry);
      await expect(integrator.connect(alice).createAccount(MarginMode.ISOLATED))
        .to.emit(accounts, "AccountCreated")
        .withArgs(1n, await integrator.getAddress(), MarginMode.ISOLATED);
      expect(await accounts.ownerOf(1n)).to.equal(await integrator.getAddress());
      expect(await accounts.balanceOf(alice.address)).to.equal(0n);
    });
  });

  describe("a trading grant spent by a registered market", function () {
    it("spends a cost of 1 from 1,000 to 999, emits (cost 1, remaining 999), and refuses 1,000 with (1,000, allowance 999)", async function () {
      const { accounts, account, bot, market } = await loadFixture(grantFromMarket);
      await expect(accounts.connect(market).authorizeTrade(account, bot.address, 1n))
        .to.emit(accounts, "TraderAllowanceSpent")
        .withArgs(account, bot.address, 1n, 999n);
      expect(await accounts.traderAllowance(account, bot.address)).to.equal(999n);
      await expect(accounts.connect(market).authorizeTrade(account, bot.address, 1_000n))
        .to.be.revertedWithCustomError(accounts, "TraderAllowanceExceeded")
        .withArgs(account, bot.address, 1_000n, 999n);
    });

    it("refuses an address without a grant even at zero cost from a market (NotAuthorized, not a free trade)", async function () {
      const { accounts, account, market, carol } = await loadFixture(grantFromMarket);
      await expect(accounts.connect(market).authorizeTrade(account, carol.address, 0n))
        .to.be.revertedWithCustomError(accounts, "NotAuthorized")
        .withArgs(account, carol.address);
    });

    it("never spends an unlimited grant, from a market or from anyone else", async function () {
      const { accounts, account, alice, bot, market, carol } = await loadFixture(grantFromMarket);
      await accounts.connect(alice).setTrader(account, bot.address, ethers.MaxUint256);
      for (const caller of [market, carol]) {
        await expect(accounts.connect(caller).authorizeTrade(account, bot.address, 123n)).not.to.emit(
          accounts,
          "TraderAllowanceSpent",
        );
      }
      expect(await accounts.traderAllowance(account, bot.address)).to.equal(ethers.MaxUint256);
    });
  });
});

/**
 * SOL listed (listing is not throttled, so each case starts from the same state) at values from which
 * every field can move a full max step up or down inside its hard bounds: mmShockFloor 0.10,
 * imShockFloor 0.20, maxShock 0.5, mmZ 2.33, imZ 3.5, horizon 1 day, mmVolShock 0.25, imVolShock 0.4,
 * shortOptionFloor 0.2, contingency 0.05, sizeScale 50M.
 */
const BASE: RiskParams = {
  ...DEFAULT_RISK_PARAMS,
  mmShockFloor: wad("0.10"),
  imShockFloor: wad("0.20"),
  maxShock: wad("0.5"),
  mmZ: wad("2.33"),
  imZ: wad("3.5"),
  horizon: 86_400n,
  mmVolShock: wad("0.25"),
  imVolShock: wad("0.4"),
  shortOptionFloor: wad("0.2"),
  contingency: wad("0.05"),
  sizeScale: wad("50000000"),
};
const SOL = assetId("SOL");

async function solListed() {
  const sys = await deploySystem();
  await sys.engine.listUnderlying(SOL, BASE);
  return sys;
}

/** Sets SOL's parameters to BASE with `change` from a fresh listing. */
async function update(change: Partial<RiskParams>) {
  const { engine } = await loadFixture(solListed);
  return { engine, sent: engine.setRiskParams(SOL, { ...BASE, ...change }) };
}

describe("RiskParamsLib: exact rules", function () {
  // [field, a full step up, a full step down]: each field's max step from BASE (the horizon and the size
  // scale ×2 and ÷2). A full step up of a maintenance field is exactly one step of the budget.
  const steps: [keyof RiskParams & string, bigint, bigint, bigint][] = [
    ["mmShockFloor", wad("0.15"), wad("0.05"), 1n],
    ["imShockFloor", wad("0.25"), wad("0.15"), 1n],
    ["maxShock", wad("0.55"), wad("0.45"), 1n],
    ["mmZ", wad("3.33"), wad("1.33"), 1n],
    ["imZ", wad("4.5"), wad("2.5"), 1n],
    ["horizon", 2n * 86_400n, 43_200n, 1n],
    ["mmVolShock", wad("0.35"), wad("0.15"), 1n],
    ["imVolShock", wad("0.5"), wad("0.3"), 1n],
    ["shortOptionFloor", wad("0.25"), wad("0.15"), 1n],
    ["contingency", wad("0.06"), wad("0.04"), 1n],
    ["sizeScale", wad("100000000"), wad("25000000"), 1n],
  ];
  for (const [field, up, down, unit] of steps) {
    it(`moves ${field} by exactly its max step up and down, and refuses one unit more either way`, async function () {
      for (const value of [up, down]) {
        const { engine, sent } = await update({ [field]: value });
        await expect(sent, `${field} → ${value}`).to.emit(engine, "RiskParamsUpdated");
      }
      for (const value of [up + unit, down - unit]) {
        const { engine, sent } = await update({ [field]: value });
        await expect(sent, `${field} → ${value}`)
          .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
          .withArgs(name(field));
      }
    });
  }

  // Each maintenance field's full step is the whole budget: 1% of a step more anywhere (mmZ +0.01, or
  // the contingency +0.0001 for mmZ itself) makes 1.01 steps. Left out of the sum, the field's raise
  // would leave only the 1%.
  const fullSteps: [string, Partial<RiskParams>, Partial<RiskParams>][] = [
    ["mmShockFloor", { mmShockFloor: wad("0.15") }, { mmZ: wad("2.34") }],
    ["maxShock", { maxShock: wad("0.55") }, { mmZ: wad("2.34") }],
    ["mmZ", { mmZ: wad("3.33") }, { contingency: wad("0.0501") }],
    ["horizon", { horizon: 2n * 86_400n }, { mmZ: wad("2.34") }],
    ["mmVolShock", { mmVolShock: wad("0.35") }, { mmZ: wad("2.34") }],
    ["shortOptionFloor", { shortOptionFloor: wad("0.25") }, { mmZ: wad("2.34") }],
    ["contingency", { contingency: wad("0.06") }, { mmZ: wad("2.34") }],
    ["sizeScale", { sizeScale: wad("25000000") }, { mmZ: wad("2.34") }],
  ];
  for (const [field, full, onePercent] of fullSteps) {
    it(`counts a full ${field} step as the whole budget: 1% of a step more elsewhere is refused`, async function () {
      const alone = await update(full);
      await expect(alone.sent).to.emit(alone.engine, "RiskParamsUpdated");
      const over = await update({ ...full, ...onePercent });
      await expect(over.sent)
        .to.be.revertedWithCustomError(over.engine, "RiskParamOutOfBounds")
        .withArgs(name("maintenanceStep"));
    });
  }

  it("counts a raise of a value above its max step against the step, not the larger value: maxShock 0.5 → 0.55 is one step", async function () {
    // 0.05 / min(0.05, max(0.5, 0.01)) = 1; against the value it would be 0.05 / 0.5 = 0.1 step, and
    // with mmZ +0.5 (0.5 step) the update would pass at 0.6.
    const { engine, sent } = await update({
      maxShock: wad("0.55"),
      mmZ: wad("2.83"),
    });
    await expect(sent)
      .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
      .withArgs(name("maintenanceStep"));
  });

  it("counts a raise from below a fifth of the step against that fifth: contingency 0 → 0.002 is one whole step", async function () {
    // 0.002 / min(0.01, max(0, 0.01 / 5)) = 1 step; against a quarter of the step it would be 0.8.
    const { engine } = await loadFixture(solListed);
    await engine.listUnderlying(assetId("AVAX"), { ...BASE, contingency: 0n });
    await expect(
      engine.setRiskParams(assetId("AVAX"), {
        ...BASE,
        contingency: wad("0.002"),
        mmZ: wad("2.34"),
      }),
    )
      .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
      .withArgs(name("maintenanceStep"));
    await expect(
      engine.setRiskParams(assetId("AVAX"), {
        ...BASE,
        contingency: wad("0.002"),
      }),
    ).to.emit(engine, "RiskParamsUpdated");
  });

  it("rounds each raise down: the horizon +1 s (0.000011574074074074 step) and mmZ +0.999988425925925926 make exactly one step", async function () {
    // 1e18 / 86,400 = 11,574,074,074,074.07… → 11,574,074,074,074 wei of a step; mmZ's step is 1, so its
    // raise counts to the wei: 1e18 − 11,574,074,074,074 = 999,988,425,925,925,926. Rounded up, the sum
    // would be one wei over.
    const mmZ = wad("2.33") + 999_988_425_925_925_926n;
    const exact = await update({ horizon: 86_401n, mmZ });
    await expect(exact.sent).to.emit(exact.engine, "RiskParamsUpdated");
    const over = await update({ horizon: 86_401n, mmZ: mmZ + 1n });
    await expect(over.sent)
      .to.be.revertedWithCustomError(over.engine, "RiskParamOutOfBounds")
      .withArgs(name("maintenanceStep"));
  });

  it("updates an underlying listed without size scaling (sizeScale 0 → 0: no raise, not a division by zero)", async function () {
    // _rise(0, 0, 0) is 0 before it divides by min(max(0, 0 / 5), 0) = 0.
    const { engine } = await loadFixture(solListed);
    await engine.listUnderlying(assetId("AVAX"), { ...BASE, sizeScale: 0n });
    await expect(
      engine.setRiskParams(assetId("AVAX"), {
        ...BASE,
        sizeScale: 0n,
        mmZ: wad("2.34"),
      }),
    ).to.emit(engine, "RiskParamsUpdated");
  });

  it("holds each IM parameter at or above its MM counterpart to the wei, and the shock cap at or above the IM floor", async function () {
    const { engine } = await loadFixture(solListed);
    const equal = {
      ...BASE,
      imZ: BASE.mmZ,
      imVolShock: BASE.mmVolShock,
      imShockFloor: BASE.mmShockFloor,
    };
    await expect(engine.listUnderlying(assetId("AVAX"), equal)).to.emit(engine, "RiskParamsUpdated");
    await expect(
      engine.listUnderlying(assetId("DOGE"), {
        ...BASE,
        maxShock: BASE.imShockFloor,
      }),
    ).to.emit(engine, "RiskParamsUpdated");
    const below: [string, Partial<RiskParams>][] = [
      ["imShockFloor", { imShockFloor: wad("0.10") - 1n }],
      ["imZ", { imZ: wad("2.33") - 1n }],
      ["imVolShock", { imVolShock: wad("0.25") - 1n }],
      // Between the MM and the IM floor: at or above the MM floor is not enough.
      ["maxShock", { maxShock: wad("0.20") - 1n }],
    ];
    for (const [field, change] of below) {
      await expect(engine.listUnderlying(assetId("LINK"), { ...BASE, ...change }), field)
        .to.be.revertedWithCustomError(engine, "RiskParamOutOfBounds")
        .withArgs(name(field));
    }
  });
});

/** The localhost config deployed by the Ignition module (the timelock's proposer and executor: account #9). */
async function deployedLocally() {
  const r = await deployModule(hre, buildXMarginModule(loadNetworkConfig("localhost")), {
    deploymentId: "round-99-holdings",
  });
  const signers = await ethers.getSigners();
  return {
    r,
    deployer: signers[0],
    governor: signers[9],
    timelock: await ethers.getContractAt("TimelockController", r.timelock),
    manager: await ethers.getContractAt("AccessManager", r.accessManager),
    accounts: await ethers.getContractAt("Accounts", r.accounts),
  };
}

describe("Deployment: what the deployer keeps", function () {
  it("leaves the timelock administering itself: the deployer holds no role on it and cannot grant itself one", async function () {
    this.timeout(120_000);
    const { r, deployer, governor, timelock } = await loadFixture(deployedLocally);
    expect(await timelock.getMinDelay()).to.equal(172_800n);
    const [admin, proposer, executor, canceller] = await Promise.all([
      timelock.DEFAULT_ADMIN_ROLE(),
      timelock.PROPOSER_ROLE(),
      timelock.EXECUTOR_ROLE(),
      timelock.CANCELLER_ROLE(),
    ]);
    expect(await timelock.hasRole(admin, r.timelock)).to.equal(true);
    for (const role of [admin, proposer, executor, canceller]) {
      expect(await timelock.hasRole(role, deployer.address), role).to.equal(false);
    }
    for (const role of [proposer, executor, canceller]) {
      expect(await timelock.hasRole(role, governor.address), role).to.equal(true);
    }
    expect(await timelock.hasRole(admin, governor.address)).to.equal(false);
    await expect(timelock.connect(deployer).grantRole(proposer, deployer.address))
      .to.be.revertedWithCustomError(timelock, "AccessControlUnauthorizedAccount")
      .withArgs(deployer.address, admin);
  });

  it("binds the registry to the deployed engine, so registered markets spend grants, and the deployer cannot rebind it", async function () {
    this.timeout(120_000);
    const { r, deployer, accounts } = await loadFixture(deployedLocally);
    expect(await accounts.marginEngine()).to.equal(r.engine);
    await expect(accounts.connect(deployer).bindMarginEngine(deployer.address))
      .to.be.revertedWithCustomError(accounts, "NotDeployer")
      .withArgs(deployer.address);
  });

  it("gives the deployer the operational roles the config names without delay, and never TREASURY, BACKSTOP or ADMIN", async function () {
    this.timeout(120_000);
    const { r, deployer, manager } = await loadFixture(deployedLocally);
    for (const role of [Role.RISK_MANAGER, Role.LISTING, Role.GUARDIAN]) {
      expect(await manager.hasRole(role, deployer.address), String(role)).to.deep.equal([true, 0n]);
    }
    for (const role of [Role.TREASURY, Role.BACKSTOP, Role.ADMIN]) {
      expect(await manager.hasRole(role, deployer.address), String(role)).to.deep.equal([false, 0n]);
    }
    expect(await manager.hasRole(Role.TREASURY, r.timelock)).to.deep.equal([true, 0n]);
  });
});

describe("Roles.sol", function () {
  it("names every role deploy/roles.ts grants, with the same ids: RISK_MANAGER 1, LISTING 2, GUARDIAN 3, TREASURY 4, BACKSTOP 5", function () {
    // The contracts' NatSpec points at `Roles.*`; deploy/roles.ts is what the module maps. ADMIN (0) is
    // AccessManager's own ADMIN_ROLE.
    const source = fs.readFileSync(path.join(__dirname, "../../contracts/governance/Roles.sol"), "utf8");
    const declared = Object.fromEntries(
      [...source.matchAll(/uint64 internal constant (\w+) = (\d+);/g)].map(([, role, id]) => [
        role,
        BigInt(id),
      ]),
    );
    const { ADMIN, ...granted } = Role;
    expect(ADMIN).to.equal(0n);
    expect(declared).to.deep.equal(granted);
  });
});
