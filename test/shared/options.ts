import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse, Signer } from "ethers";
import type { OptionMarket, OptionMarket__factory } from "../../typechain-types";
import type { IOptionMarket } from "../../typechain-types/contracts/markets/OptionMarket";
import type { OptionMarketState } from "../../sdk/src/state";
import { applyFunctionRoles, deploySystem, wad, type System } from "./system";
import { assetId } from "./oracles";
import { marketParams } from "./perps";

export type SeriesParams = IOptionMarket.SeriesParamsStruct;

export const HOUR = 3_600n;
export const DAY = 86_400n;
/** The testnet deployments' expiry grid: 08:00 UTC daily (OptionMarket's `expiryPeriod`, `expiryOffset`). */
export const DAILY_EXPIRY_GRID: [bigint, bigint] = [DAY, 8n * HOUR];
const NO_DEADLINE = 2n ** 64n;

/**
 * Series parameters used in tests and the local deployment: a one-vol-point spread each side
 * (premium ± 0.01·vega), a 3 bp fee on the underlying notional with a 20% insurance share, and
 * 1,000 contracts of open interest per side.
 */
export const DEFAULT_SERIES_PARAMS: SeriesParams = {
  spreadFactor: wad("0.01"),
  fee: wad("0.0003"),
  insuranceFeeShare: wad("0.2"),
  maxOpenInterest: wad("1000"),
};

/** Pool vega limit: |pool net vega| ≤ 1 · pool quote balance (a 100-point vol move costs the balance). */
export const DEFAULT_POOL_VEGA_RATIO = wad("1");

/**
 * Pool delta limit of the option market: each side of the traders' option delta, in notional, ≤ 1 ·
 * the vega limit's base (as the perp markets' maxPoolDeltaRatio).
 */
export const DEFAULT_POOL_DELTA_RATIO = wad("1");

/**
 * The floors of a series' fee and spread factor on ETH and BTC (`configureUnderlying`), as the
 * deployments': a 2.5 bp fee covers a price feed threshold up to 0.025% (one fee must since review round
 * 113), 2 × 0.005 a one-point volatility step.
 */
export const DEFAULT_LISTING_FLOORS = { minFee: wad("0.00025"), minSpreadFactor: wad("0.005") };

/** DEFAULT_SERIES_PARAMS with some fields replaced. */
export function seriesParams(overrides: Partial<SeriesParams> = {}): SeriesParams {
  return { ...DEFAULT_SERIES_PARAMS, ...overrides };
}

/**
 * Series parameters whose spread (2.5 vol points a side) covers OptionMarket's largest skew step, 5
 * points: a skew step is at most twice the series' spread factor (review round 113), so tests that step
 * a skew by a full MAX_SKEW_STEP list their series with these.
 */
export const FULL_SKEW_STEP_PARAMS: SeriesParams = seriesParams({ spreadFactor: wad("0.025") });

/** What deployOptions needs from the system. */
/** The option market's deployment choices (see `deployOptions`). */
export interface OptionsOptions {
  poolDeltaRatio?: bigint;
  listingFloors?: typeof DEFAULT_LISTING_FLOORS;
  expiryGrid?: [period: bigint, offset: bigint];
  /** The quote token's decimals (`deploySystem`'s `quoteDecimals`; `deployOptionsSystem` only). */
  quoteDecimals?: number;
}

export type OptionsDeps = Pick<System, "manager" | "engine" | "accounts" | "router" | "usdc" | "perps">;

/**
 * Deploys an OptionMarket linked to a fresh SeriesParamsLib (its series-parameter checks are an external
 * library, as the engine's RiskParamsLib) with the constructor's arguments, unregistered and unconfigured.
 */
export async function deployOptionMarket(
  args: Parameters<OptionMarket__factory["deploy"]>,
): Promise<OptionMarket> {
  const seriesParamsLib = await ethers.deployContract("SeriesParamsLib");
  return ethers.deployContract("OptionMarket", args, {
    libraries: { SeriesParamsLib: await seriesParamsLib.getAddress() },
  });
}

/**
 * Deploys OptionMarket, registers it with the engine, tells the perp market (whose delta limits leave
 * its premiums out), maps its restricted functions to their roles (deploy/roles.ts) and sets
 * DEFAULT_POOL_VEGA_RATIO, DEFAULT_POOL_DELTA_RATIO and DEFAULT_LISTING_FLOORS on ETH and BTC. The engine must already know
 * its pool account (`engine.initialize`). Series may expire at any second (`expiryGrid` [1, 0]), so tests
 * choose their time to expiry; the deployments' grid is 08:00 UTC daily (DAILY_EXPIRY_GRID).
 */
export async function deployOptions(sys: OptionsDeps, opts: OptionsOptions = {}): Promise<OptionMarket> {
  const options = await deployOptionMarket([
    await sys.manager.getAddress(),
    await sys.engine.getAddress(),
    await sys.accounts.getAddress(),
    await sys.router.getAddress(),
    await sys.usdc.decimals(),
    opts.expiryGrid?.[0] ?? 1n,
    opts.expiryGrid?.[1] ?? 0n,
  ]);
  await options.waitForDeployment();
  await (await sys.engine.registerMarket(options)).wait();
  await (await sys.perps.setOptionMarket(options)).wait();
  await applyFunctionRoles(sys.manager, { OptionMarket: options });
  for (const symbol of ["ETH", "BTC"]) {
    const deltaRatio = opts.poolDeltaRatio ?? DEFAULT_POOL_DELTA_RATIO;
    const { minFee, minSpreadFactor } = opts.listingFloors ?? DEFAULT_LISTING_FLOORS;
    const configure = options.configureUnderlying(
      assetId(symbol),
      DEFAULT_POOL_VEGA_RATIO,
      deltaRatio,
      minFee,
      minSpreadFactor,
    );
    await (await configure).wait();
  }
  return options;
}

/**
 * The system fixture plus the option market (use with `loadFixture`). `poolDeltaRatio` (default
 * DEFAULT_POOL_DELTA_RATIO): tests of the vega limit alone set a delta ratio that does not bind;
 * `expiryGrid` (default any second): tests of the grid set the deployments' (DAILY_EXPIRY_GRID);
 * `quoteDecimals` (default 6): tests of other quote tokens.
 */
export async function deployOptionsSystem(
  opts: OptionsOptions = {},
): Promise<System & { options: OptionMarket }> {
  const sys = await deploySystem({ quoteDecimals: opts.quoteDecimals });
  return { ...sys, options: await deployOptions(sys, opts) };
}

/**
 * `deployOptionsSystem` with the ETH perp market's funding off, so that values are exact between blocks.
 * A fixture: pass it to `loadFixture`.
 */
export async function deployOptionsSystemWithoutFunding(): Promise<System & { options: OptionMarket }> {
  const sys = await deployOptionsSystem();
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  return sys;
}

/** Lists a series on `symbol`; `strike` in USD (a decimal string or WAD); returns its id. */
export async function listSeries(
  options: OptionMarket,
  symbol: string,
  strike: string | bigint,
  expiry: bigint,
  isCall: boolean,
  params: SeriesParams = DEFAULT_SERIES_PARAMS,
): Promise<bigint> {
  const strikeWad = typeof strike === "bigint" ? strike : wad(strike);
  await (await options.listSeries(assetId(symbol), strikeWad, expiry, isCall, params)).wait();
  return options.seriesCount();
}

/** The chain's latest timestamp plus `seconds`. */
export async function fromNow(seconds: bigint): Promise<bigint> {
  return BigInt(await time.latest()) + seconds;
}

/**
 * Trades `sizeDelta` contracts for `accountId` as `signer` with no premium limit (max for a buy, 0 for
 * a sell) and no deadline unless given.
 */
export function tradeOption(
  options: OptionMarket,
  signer: Signer,
  accountId: bigint,
  seriesId: bigint,
  sizeDelta: bigint,
  opts: { limitPrice?: bigint; deadline?: bigint } = {},
): Promise<ContractTransactionResponse> {
  const limitPrice = opts.limitPrice ?? (sizeDelta > 0n ? ethers.MaxUint256 : 0n);
  return options
    .connect(signer)
    .trade(accountId, seriesId, sizeDelta, limitPrice, opts.deadline ?? NO_DEADLINE);
}

/**
 * The SDK's state of an unsettled series (struck at `strike`, expiring at `expiry`, skew 0 unless
 * given), for the pure option model (`optionValuation`, `optionExposure`): a series no chain holds.
 */
export function unsettledSeries(
  strike: bigint,
  expiry: bigint,
  isCall: boolean,
  skew = 0n,
): OptionMarketState {
  return {
    kind: "option",
    market: ethers.ZeroAddress,
    marketId: 0n,
    underlying: assetId("ETH").toLowerCase(),
    strike,
    expiry,
    isCall,
    settled: false,
    skew,
    settlementPrice: 0n,
    longOpenInterest: 0n,
    shortOpenInterest: 0n,
    params: { spreadFactor: 0n, fee: 0n, insuranceFeeShare: 0n, maxOpenInterest: 0n },
    backstopSize: 0n,
    vegaPerContract: 0n,
    deltaPerContract: 0n,
  };
}

/**
 * The option positions `accountIds` hold together (`engine.accountMarkets` in `sys.options`), read
 * without the SDK's or the keeper's code: what a send's repricing padding should count.
 */
export async function optionPositionCount(
  sys: Pick<System, "engine"> & { options: OptionMarket },
  accountIds: readonly bigint[],
): Promise<bigint> {
  const market = (await sys.options.getAddress()).toLowerCase();
  let n = 0n;
  for (const id of accountIds)
    for (const key of await sys.engine.accountMarkets(id)) if (key.market.toLowerCase() === market) n++;
  return n;
}
