import { expect } from "chai";
import { ethers } from "hardhat";
import { takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import type {
  AddressLike,
  BaseContract,
  ContractTransactionReceipt,
  Interface,
  LogDescription,
  Signer,
} from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type {
  AccessManager,
  Accounts,
  CollateralVault,
  InsuranceFund,
  LiquidationAuction,
  LiquidityPool,
  MarginEngine,
  MockERC20,
  MockERC4626,
  MockV3Aggregator,
  OracleRouter,
  PerpMarket,
  PortfolioMathHarness,
} from "../../typechain-types";
import type { IMarginEngine } from "../../typechain-types/contracts/core/MarginEngine";
import type { ILiquidationAuction } from "../../typechain-types/contracts/core/LiquidationAuction";
import { FUNCTION_ROLES, Role, type ContractName } from "../../deploy/roles";
import { addPriceFeed, addVolatilityFeed, assetId, deployOracleRouter } from "./oracles";
import { deployToken, mintAndApprove } from "./tokens";
import { wad } from "./units";
import { deployPerps, listPerpMarket } from "./perps";

export const MarginMode = { CROSS: 0, ISOLATED: 1 } as const;

export { WAD, wad } from "./units";

/** Portfolio-margin parameters used for every underlying in tests and the local deployment. */
export const DEFAULT_RISK_PARAMS: IMarginEngine.RiskParamsStruct = {
  mmShockFloor: wad("0.05"),
  imShockFloor: wad("0.10"),
  mmZ: wad("2.33"),
  imZ: wad("3"),
  horizon: 86_400n,
  maxShock: wad("0.5"),
  mmVolShock: wad("0.15"),
  imVolShock: wad("0.25"),
  shortOptionFloor: wad("0.05"),
  contingency: wad("0.002"),
  sizeScale: wad("50000000"),
};

/** The test quote token's decimals (6, as USDC on Ethereum and its L2s): `deploySystem`'s default. */
export const DEFAULT_QUOTE_DECIMALS = 6;

/**
 * Dutch auction: 2% → 10% discount over 30 minutes, 1% penalty to the fund, a flag reward of 10 quote
 * tokens (10 USDC) in units of a quote token with `quoteDecimals`.
 */
export function auctionParams(
  quoteDecimals = DEFAULT_QUOTE_DECIMALS,
): ILiquidationAuction.AuctionParamsStruct {
  return {
    startDiscount: wad("0.02"),
    maxDiscount: wad("0.10"),
    penalty: wad("0.01"),
    duration: 1800,
    flagReward: 10n * 10n ** BigInt(quoteDecimals),
  };
}

/** `auctionParams` of the 6-decimal USDC every test but the quote-decimals ones deploys. */
export const DEFAULT_AUCTION_PARAMS: ILiquidationAuction.AuctionParamsStruct = auctionParams();

export interface System {
  deployer: HardhatEthersSigner;
  alice: HardhatEthersSigner;
  bob: HardhatEthersSigner;
  carol: HardhatEthersSigner;
  keeper: HardhatEthersSigner;
  lp: HardhatEthersSigner;
  manager: AccessManager;
  router: OracleRouter;
  accounts: Accounts;
  vault: CollateralVault;
  engine: MarginEngine;
  pool: LiquidityPool;
  insuranceFund: InsuranceFund;
  auction: LiquidationAuction;
  /** The perp markets contract, with an ETH and a BTC market (DEFAULT_MARKET_PARAMS). */
  perps: PerpMarket;
  markets: Record<"ETH" | "BTC", bigint>;
  usdc: MockERC20;
  weth: MockERC20;
  wbtc: MockERC20;
  /** An ERC-4626 vault over WETH (a staked-ETH stand-in), priced through convertToAssets. */
  sweth: MockERC4626;
  feeds: Record<"USDC" | "ETH" | "BTC", MockV3Aggregator>;
  volFeeds: Record<"ETH" | "BTC", MockV3Aggregator>;
  poolAccountId: bigint;
}

/** The LP shares' holding period of every network's deploy config (`LiquidityPool.holdingPeriod`). */
export const HOLDING_PERIOD = 86_400n;
/**
 * The LP exit delay of every network's deploy config (`LiquidityPool.exitDelay`). The fixture leaves it
 * at 0 (ERC-4626's immediate exits, which most tests of the pool's limits use); tests of the requests
 * set it.
 */
export const EXIT_DELAY = 86_400n;

/**
 * Maps every restricted function of `contracts` to its role (deploy/roles.ts) and grants the
 * operational roles to `operator` with no delay. Production grants them to multisigs with delays,
 * and the timelock holds ADMIN (see test/unit/Governance.test.ts and deploy/).
 */
export async function applyFunctionRoles(
  manager: AccessManager,
  contracts: Partial<Record<ContractName, BaseContract>>,
): Promise<void> {
  for (const [name, contract] of Object.entries(contracts) as [ContractName, BaseContract][]) {
    const byRole = new Map<bigint, string[]>();
    for (const [fn, role] of Object.entries(FUNCTION_ROLES[name])) {
      const selector = contract.interface.getFunction(fn)?.selector;
      if (!selector) throw new Error(`${name}.${fn} does not exist`);
      byRole.set(role, [...(byRole.get(role) ?? []), selector]);
    }
    for (const [role, selectors] of byRole) {
      await manager.setTargetFunctionRole(await contract.getAddress(), selectors, role);
    }
  }
}

export async function grantOperationalRoles(manager: AccessManager, operator: string): Promise<void> {
  for (const role of [Role.RISK_MANAGER, Role.LISTING, Role.GUARDIAN, Role.TREASURY]) {
    await manager.grantRole(role, operator, 0);
  }
}

/**
 * Deploys a MarginEngine linked to a fresh RiskParamsLib (its risk-parameter checks are an external
 * library: kept inline they did not fit under EIP-170).
 */
export async function deployMarginEngine(
  authority: AddressLike,
  vault: AddressLike,
  accounts: AddressLike,
  router: AddressLike,
): Promise<MarginEngine> {
  const riskParamsLib = await ethers.deployContract("RiskParamsLib");
  return ethers.deployContract("MarginEngine", [authority, vault, accounts, router], {
    libraries: { RiskParamsLib: await riskParamsLib.getAddress() },
  });
}

/** `deploySystem` without the LP holding period, for tests of the LP share price alone. */
export async function deploySystemWithoutHoldingPeriod(): Promise<System> {
  return deploySystem({ holdingPeriod: 0n });
}

/** The system fixture's deployment choices (see `deploySystem`). */
export interface SystemOptions {
  holdingPeriod?: bigint;
  quoteDecimals?: number;
}

/**
 * Deploys the whole protocol on the in-process chain: governance, oracles (Chainlink mocks),
 * accounts, vault with USDC/WETH/WBTC/sWETH collateral, engine with ETH and BTC underlyings, perp
 * markets on both, insurance fund, liquidation auction and a liquidity pool holding 1,000,000 USDC.
 * Use with `loadFixture`. `holdingPeriod` (default `HOLDING_PERIOD`): tests of the share price alone
 * deploy without one, since a cut is stepped once a day (`LiquidityPool.setHoldingPeriod`).
 * `quoteDecimals` (default 6): the quote token's ("USDC") decimals, 2–18, for tests of other quote
 * tokens (DAI's 18, GUSD's 2); its deposit cap, flag reward and the pool's capital are the same USD.
 */
export async function deploySystem(options: SystemOptions = {}): Promise<System> {
  const quoteDecimals = options.quoteDecimals ?? DEFAULT_QUOTE_DECIMALS;
  const quoteToken = 10n ** BigInt(quoteDecimals);
  const [deployer, alice, bob, carol, keeper, lp] = await ethers.getSigners();
  const manager = await ethers.deployContract("AccessManager", [deployer.address]);
  const authority = await manager.getAddress();

  const router = await deployOracleRouter(authority);
  const feeds = {
    USDC: await addPriceFeed(router, "USDC", "1"),
    ETH: await addPriceFeed(router, "ETH", "3000"),
    BTC: await addPriceFeed(router, "BTC", "60000"),
  };
  const volFeeds = {
    ETH: await addVolatilityFeed(router, "ETH", "0.6"),
    BTC: await addVolatilityFeed(router, "BTC", "0.5"),
  };

  const usdc = await deployToken("USD Coin", "USDC", quoteDecimals);
  const weth = await deployToken("Wrapped Ether", "WETH", 18);
  const wbtc = await deployToken("Wrapped Bitcoin", "WBTC", 8);
  const sweth = await ethers.deployContract("MockERC4626", [weth, "Staked Ether Vault", "sWETH", 0]);

  const accounts = await ethers.deployContract("Accounts");
  const vault = await ethers.deployContract("CollateralVault", [authority, accounts, router, usdc]);
  const engine = await deployMarginEngine(authority, vault, accounts, router);
  await vault.setMarginEngine(engine);
  await accounts.bindMarginEngine(engine);

  await vault.listCollateral(usdc, assetId("USDC"), wad("1"), wad("1"), 1_000_000_000n * quoteToken, false);
  await vault.listCollateral(weth, assetId("ETH"), wad("0.9"), wad("0.95"), wad("100000"), false);
  await vault.listCollateral(wbtc, assetId("BTC"), wad("0.9"), wad("0.95"), 10_000n * 10n ** 8n, false);
  await vault.listCollateral(sweth, assetId("ETH"), wad("0.85"), wad("0.92"), wad("100000"), true);
  await engine.listUnderlying(assetId("ETH"), DEFAULT_RISK_PARAMS);
  await engine.listUnderlying(assetId("BTC"), DEFAULT_RISK_PARAMS);

  const insuranceFund = await ethers.deployContract("InsuranceFund", [authority, vault, accounts]);
  const pool = await ethers.deployContract("LiquidityPool", [
    authority,
    vault,
    accounts,
    engine,
    "xmargin LP",
    "xLP",
  ]);
  const poolAccountId = await pool.accountId();
  const auction = await ethers.deployContract("LiquidationAuction", [
    authority,
    engine,
    accounts,
    insuranceFund,
    auctionParams(quoteDecimals),
  ]);
  await engine.initialize(poolAccountId, insuranceFund, auction);

  await applyFunctionRoles(manager, {
    OracleRouter: router,
    CollateralVault: vault,
    MarginEngine: engine,
    InsuranceFund: insuranceFund,
    LiquidityPool: pool,
    LiquidationAuction: auction,
  });
  await grantOperationalRoles(manager, deployer.address);
  // Unwinding the backstop (LiquidationAuction.unwindBackstop), granted to no one at deployment, is the
  // deployer's here.
  await manager.grantRole(Role.BACKSTOP, deployer.address, 0);

  const perps = await deployPerps({ manager, engine, accounts, router, usdc });
  const markets = { ETH: await listPerpMarket(perps, "ETH"), BTC: await listPerpMarket(perps, "BTC") };

  const poolCapital = 1_000_000n * quoteToken;
  await mintAndApprove(usdc, lp, await pool.getAddress(), poolCapital);
  await pool.connect(lp).deposit(poolCapital, lp.address);
  // The seed capital is deposited before the holding period is set, as if long ago: tests of LP
  // withdrawals start from free shares, and shares minted in a test are locked as in production.
  const holdingPeriod = options.holdingPeriod ?? HOLDING_PERIOD;
  if (holdingPeriod !== 0n) await pool.setHoldingPeriod(holdingPeriod);

  return {
    deployer,
    alice,
    bob,
    carol,
    keeper,
    lp,
    manager,
    router,
    accounts,
    vault,
    engine,
    pool,
    insuranceFund,
    auction,
    perps,
    markets,
    usdc,
    weth,
    wbtc,
    sweth,
    feeds,
    volFeeds,
    poolAccountId,
  };
}

/** The gas used by the latest block's first transaction, which must have reverted. */
export async function gasOfLatestRevert(): Promise<bigint> {
  const block = await ethers.provider.getBlock("latest");
  const receipt = await ethers.provider.getTransactionReceipt(block!.transactions[0]);
  expect(receipt!.status).to.equal(0);
  return receipt!.gasUsed;
}

/**
 * The gas of the transaction `send` sends, which must be mined and revert (give it a gas limit, so no
 * estimate refuses it before it is sent).
 */
export async function gasOfRevert(send: () => Promise<unknown>): Promise<bigint> {
  await send().catch(() => undefined);
  return gasOfLatestRevert();
}

/**
 * The first event `name` that `contract`'s ABI decodes in `logs`, if any (logs it cannot decode, such
 * as another contract's event with the same topic but other indexed fields, are skipped).
 */
export function findEvent(
  logs: readonly { topics: readonly string[]; data: string }[],
  contract: { interface: Interface },
  name: string,
): LogDescription | undefined {
  for (const log of logs) {
    let parsed: LogDescription | null = null;
    try {
      parsed = contract.interface.parseLog(log);
    } catch {
      continue;
    }
    if (parsed?.name === name) return parsed;
  }
  return undefined;
}

/** The first event `name` of `contract` in a transaction's receipt; throws if there is none. */
export function eventOf(
  receipt: ContractTransactionReceipt | null,
  contract: { interface: Interface },
  name: string,
): LogDescription {
  const event = findEvent(receipt?.logs ?? [], contract, name);
  if (!event) throw new Error(`no ${name} event in the receipt`);
  return event;
}

/** Creates an account for `owner` and deposits each `[token, amount]` into it. Returns its id. */
export async function openAccount(
  sys: System,
  owner: Signer,
  mode: number,
  deposits: [MockERC20, bigint][] = [],
): Promise<bigint> {
  const tx = await sys.accounts.connect(owner).createAccount(mode);
  const accountId = eventOf(await tx.wait(), sys.accounts, "AccountCreated").args.accountId as bigint;
  for (const [token, amount] of deposits) {
    await mintAndApprove(token, owner, await sys.vault.getAddress(), amount);
    await sys.vault.connect(owner).deposit(accountId, token, amount);
  }
  return accountId;
}

/**
 * Withdraws `accountId`'s USDC down to its initial requirement, less one unit of slack (nothing when
 * there are at most two units to take): the account then sits at its IM, as a trader who used all
 * its margin would.
 */
export async function withdrawToInitialMargin(sys: System, owner: Signer, accountId: bigint): Promise<void> {
  const h = await sys.engine.health(accountId);
  const quoteUnit = 10n ** (18n - (await sys.usdc.decimals()));
  const free = (h.equityInitial - BigInt(h.initialRequirement)) / quoteUnit;
  const cash = await sys.vault.balanceOf(accountId, sys.usdc);
  const amount = free < cash ? free : cash;
  if (amount <= 2n) return;
  // A view runs at the latest block's timestamp and the next block would come later by the wall clock:
  // options decay in between, so the withdrawal is pinned to the time the health was read at.
  await atLatestTimestamp();
  await sys.vault.connect(owner).withdraw(accountId, sys.usdc, amount - 1n, owner);
}

/**
 * Withdraws `token` from `accountId` down to its initial requirement, to `precision` token units, found by
 * bisection: a token priced by an underlying the account holds positions on is shocked with them
 * (MarginEngine._addCollateralDelta), so each unit withdrawn moves the requirement as well as the equity.
 */
export async function withdrawCollateralToInitialMargin(
  sys: System,
  owner: Signer,
  accountId: bigint,
  token: AddressLike,
  precision = 10n ** 9n,
): Promise<void> {
  const meetsIm = async (amount: bigint) =>
    whatIf(async () => {
      await atLatestTimestamp();
      await (await sys.vault.connect(owner).withdraw(accountId, token, amount, owner)).wait();
      const h = await sys.engine.health(accountId);
      return h.equityInitial >= BigInt(h.initialRequirement);
    }).catch(() => false);
  let [low, high] = [0n, BigInt(await sys.vault.balanceOf(accountId, token))];
  while (high - low > precision) {
    const mid = (low + high) / 2n;
    if (await meetsIm(mid)) low = mid;
    else high = mid;
  }
  await atLatestTimestamp();
  await sys.vault.connect(owner).withdraw(accountId, token, low, owner);
}

/**
 * Pins the next block to the latest block's timestamp, as if no time passed since it. Unpinned, a block
 * takes the wall clock's time (never earlier than the latest block's): whatever moves with time (perp
 * funding, option decay, quote interest, an auction's discount) then moves by however many seconds the
 * machine took between the two, which a test asserting exact numbers must not depend on.
 */
export async function atLatestTimestamp(): Promise<void> {
  await time.setNextBlockTimestamp(await time.latest());
}

/** Tops up the insurance fund: a deposit into its margin account (anyone may deposit the quote token into any account). */
export async function fundInsurance(sys: System, amount: bigint): Promise<void> {
  await mintAndApprove(sys.usdc, sys.deployer, await sys.vault.getAddress(), amount);
  await sys.vault.deposit(await sys.insuranceFund.accountId(), sys.usdc, amount);
}

/**
 * The spot shocks [IM, MM] the engine applies to `underlying` for a group of `grossNotional` USD
 * (`MarginEngine._shocks`): the underlying's risk parameters and the router's volatility through
 * PortfolioMath (`math`, deployed by the caller: a deployment here would mine a block between the
 * caller's reads).
 */
export async function spotShocks(
  sys: Pick<System, "engine" | "router">,
  math: PortfolioMathHarness,
  underlying: string,
  grossNotional: bigint,
): Promise<[bigint, bigint]> {
  const p = await sys.engine.riskParams(underlying);
  const volatility = await sys.router.getVolatility(underlying);
  const shock = (floor: bigint, z: bigint) =>
    math.spotShock(floor, z, volatility, p.horizon, p.maxShock, p.sizeScale, grossNotional);
  return [await shock(p.imShockFloor, p.imZ), await shock(p.mmShockFloor, p.mmZ)];
}

/** Runs `body` on a snapshot and restores it: a what-if that leaves the chain as it was. */
export async function whatIf<T>(body: () => Promise<T>): Promise<T> {
  const snap = await takeSnapshot();
  try {
    return await body();
  } finally {
    await snap.restore();
  }
}

/**
 * Σ USDC balances of every account equal the vault's USDC, and Σ debts equal `quoteDebt`, to the unit
 * (ARCHITECTURE.md invariant 1 for the quote token).
 */
export async function expectQuoteLedgerBalanced(sys: System): Promise<void> {
  const n = await sys.accounts.accountCount();
  let total = 0n;
  let debt = 0n;
  for (let id = 1n; id <= n; id++) {
    const b = await sys.vault.balanceOf(id, sys.usdc);
    total += b;
    if (b < 0n) debt -= b;
  }
  expect(total, "Σ USDC balances = the vault's USDC").to.equal(await sys.usdc.balanceOf(sys.vault));
  expect(debt, "quoteDebt = Σ debts").to.equal(await sys.vault.quoteDebt());
}
