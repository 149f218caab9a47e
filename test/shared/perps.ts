import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse, Signer } from "ethers";
import type { MockV3Aggregator, PerpMarket } from "../../typechain-types";
import type { IPerpMarket } from "../../typechain-types/contracts/markets/PerpMarket";
import type { PerpMarketState } from "../../sdk/src/state";
// system.ts will import deployPerps from here: use its exports only inside functions (never at module
// load), so the import cycle is harmless.
import {
  DEFAULT_RISK_PARAMS,
  HOLDING_PERIOD,
  MarginMode,
  applyFunctionRoles,
  atLatestTimestamp,
  deploySystem,
  fundInsurance,
  openAccount,
  type System,
} from "./system";
import { addPriceFeed, addVolatilityFeed, assetId, setFeedPrice } from "./oracles";
import { mintAndApprove } from "./tokens";
import { wad } from "./units";

export type MarketParams = IPerpMarket.MarketParamsStruct;

/**
 * Market parameters used in tests and the local deployment. Small enough skew scale that premiums
 * show in hand-computed numbers: at ETH 3,000 a 10 ETH buy on a flat book fills at
 * 3000·(1 + 5/1000) = 3,015.
 */
export const DEFAULT_MARKET_PARAMS: MarketParams = {
  skewScale: wad("1000"),
  maxFundingVelocity: wad("0.1"), // at 1% skew the daily rate drifts 0.001 per day
  maxFundingRate: wad("0.01"),
  makerFee: wad("0.0002"),
  takerFee: wad("0.0005"),
  insuranceFeeShare: wad("0.2"),
  maxPoolDeltaRatio: wad("1"),
  maxOpenInterest: wad("500"),
};

/**
 * A "hot" market for property tests: a small skew scale (open interest capped at `maxOpenInterest`),
 * fast funding and high fees, so random sequences reach the funding-rate bounds within hours, cross the
 * skew's zero and run traders into quote debt.
 */
export function hotMarketParams(skewScale: bigint, maxOpenInterest: bigint): MarketParams {
  return marketParams({
    skewScale,
    maxFundingVelocity: wad("5"),
    maxFundingRate: wad("0.05"),
    makerFee: wad("0.001"),
    takerFee: wad("0.003"),
    insuranceFeeShare: wad("0.3"),
    maxPoolDeltaRatio: wad("1"),
    maxOpenInterest,
  });
}

/** DEFAULT_MARKET_PARAMS with some fields replaced. */
export function marketParams(overrides: Partial<MarketParams> = {}): MarketParams {
  return { ...DEFAULT_MARKET_PARAMS, ...overrides };
}

/** What deployPerps needs from the system (a subset of System, so the fixture can call it early). */
export type PerpsDeps = Pick<System, "manager" | "engine" | "accounts" | "router" | "usdc">;

/**
 * Deploys PerpMarket, registers it with the engine and maps its restricted functions to their roles
 * (deploy/roles.ts). The engine must already know its pool account (`engine.initialize`): the
 * market reads it once, at deployment.
 */
export async function deployPerps(sys: PerpsDeps): Promise<PerpMarket> {
  const perps = await ethers.deployContract("PerpMarket", [
    await sys.manager.getAddress(),
    await sys.engine.getAddress(),
    await sys.accounts.getAddress(),
    await sys.router.getAddress(),
    await sys.usdc.decimals(),
  ]);
  await perps.waitForDeployment();
  await (await sys.engine.registerMarket(perps)).wait();
  await applyFunctionRoles(sys.manager, { PerpMarket: perps });
  return perps;
}

/**
 * The floor of a market's makerFee + takerFee (`listMarket`), as the deployments': a 0.05% price feed's
 * deviation threshold, under today's 2 + 5 bp.
 */
export const DEFAULT_MIN_ROUND_TRIP_FEE = wad("0.0005");

/** Lists a market on `symbol` (already an engine underlying with a price feed); returns its id. */
export async function listPerpMarket(
  perps: PerpMarket,
  symbol: string,
  params: MarketParams = DEFAULT_MARKET_PARAMS,
  minRoundTripFee = DEFAULT_MIN_ROUND_TRIP_FEE,
): Promise<bigint> {
  await (await perps.listMarket(assetId(symbol), params, minRoundTripFee)).wait();
  return perps.marketCount();
}

/**
 * Adds a new underlying end to end: a price feed and a volatility feed in the router, the engine's
 * DEFAULT_RISK_PARAMS, and a perp market on it.
 */
export async function addPerpUnderlying(
  sys: Pick<System, "router" | "engine">,
  perps: PerpMarket,
  symbol: string,
  price: string,
  volatility: string,
  params: MarketParams = DEFAULT_MARKET_PARAMS,
): Promise<{ marketId: bigint; feed: MockV3Aggregator; volFeed: MockV3Aggregator }> {
  const feed = await addPriceFeed(sys.router, symbol, price);
  const volFeed = await addVolatilityFeed(sys.router, symbol, volatility);
  await (await sys.engine.listUnderlying(assetId(symbol), DEFAULT_RISK_PARAMS)).wait();
  const marketId = await listPerpMarket(perps, symbol, params);
  return { marketId, feed, volFeed };
}

/**
 * The skew premium a full close-out of a market pays its traders back at `spot`:
 * spot·skew²/(2·skewScale), USD WAD, rounded down. The fill premium is path-independent (its integral
 * from skew a to b is spot·(b² − a²)/(2·skewScale)), so the pool's value leaves this out
 * (PerpMarket._poolExposure, which rounds it up): Σ trader values + pool value = −this, to the dust.
 */
export function unwindPremiumOf(spot: bigint, skew: bigint, skewScale: bigint): bigint {
  return (spot * skew * skew) / (2n * skewScale * 10n ** 18n);
}

/** unwindPremiumOf for `marketId`'s current skew and skew scale. */
export async function unwindPremium(perps: PerpMarket, marketId: bigint, spot: bigint): Promise<bigint> {
  const info = await perps.market(marketId);
  return unwindPremiumOf(spot, info.skew, info.params.skewScale);
}

const NO_DEADLINE = 2n ** 64n;

/**
 * Trades `sizeDelta` for `accountId` as `signer` with no price limit (max for a buy, 0 for a sell)
 * and no deadline unless given.
 */
export function trade(
  perps: PerpMarket,
  signer: Signer,
  accountId: bigint,
  marketId: bigint,
  sizeDelta: bigint,
  opts: { limitPrice?: bigint; deadline?: bigint } = {},
): Promise<ContractTransactionResponse> {
  const limitPrice = opts.limitPrice ?? (sizeDelta > 0n ? ethers.MaxUint256 : 0n);
  return perps
    .connect(signer)
    .trade(accountId, marketId, sizeDelta, limitPrice, opts.deadline ?? NO_DEADLINE);
}

/**
 * Bob's `count` accounts, each long `size` ETH on `deposit` USDC units (CROSS), then ETH at `priceUsd`:
 * a book split into accounts that go under water together. Returns their ids.
 */
export async function bobLongsUnderWater(
  sys: System,
  count: number,
  deposit: bigint,
  size: bigint,
  priceUsd: string,
): Promise<bigint[]> {
  const ids: bigint[] = [];
  for (let i = 0; i < count; i++) {
    const id = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, deposit]]);
    await trade(sys.perps, sys.bob, id, sys.markets.ETH, size);
    ids.push(id);
  }
  await setFeedPrice(sys.feeds.ETH, priceUsd);
  return ids;
}

/**
 * The liquidation tests' book: Alice long 2 ETH (bought at ~3,006 with the skew premium) on 1,000 USDC;
 * Bob and Carol bidders with 20,000 USDC each, the keeper an empty account. Funding off, so equity does
 * not drift between a read and the next block and numbers are exact. ETH then at `priceUsd` if given
 * (2,650: below maintenance, solvent; 2,300: insolvent).
 */
export async function aliceLongTwoEth(priceUsd?: string) {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000n * 10n ** 6n]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * 10n ** 6n]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 20_000n * 10n ** 6n]]);
  const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS);
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2"));
  if (priceUsd !== undefined) await setFeedPrice(sys.feeds.ETH, priceUsd);
  return { sys, alice, bob, carol, keeper };
}

/** Closes the position of `accountId` in `marketId` with no price limit (0 for a sell, max for a buy). */
export async function closePosition(
  perps: PerpMarket,
  signer: Signer,
  accountId: bigint,
  marketId: bigint,
): Promise<ContractTransactionResponse> {
  const size = await perps.positionSize(accountId, marketId);
  const limitPrice = size > 0n ? 0n : ethers.MaxUint256;
  return perps.connect(signer).closePosition(accountId, marketId, limitPrice, NO_DEADLINE);
}

/**
 * The system with Bob holding 10 WETH (30,000 USD at WETH's 0.90 / 0.95 weights) and owing ~26,050 USDC
 * from a closed 1 BTC long (60,000 → 34,000): no position, no requirement, and ~950 USD of free
 * initial margin (review round 49's debtor). A fixture: pass it to `loadFixture`.
 */
export async function wethDebtorSystem(): Promise<System & { debtorId: bigint }> {
  const sys = await deploySystem();
  const debtorId = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad("10")]]);
  await trade(sys.perps, sys.bob, debtorId, sys.markets.BTC, wad("1"));
  await setFeedPrice(sys.feeds.BTC, "34000");
  await closePosition(sys.perps, sys.bob, debtorId, sys.markets.BTC);
  return { ...sys, debtorId };
}

/** How the feed refreshes below time their blocks. */
export interface RefreshOptions {
  /**
   * Mines every update at the latest block's timestamp (`atLatestTimestamp`), so the refresh takes no
   * chain time: for tests whose numbers move with time (funding, decay) after a jump to an exact time.
   * Without it each update's block takes the wall clock's time.
   */
  atLatest?: boolean;
}

/**
 * Posts each mock feed's current answer again, so prices stay fresh (heartbeat 1 hour) after the
 * test moves time forward.
 */
export async function refreshFeeds(
  sys: Pick<System, "feeds" | "volFeeds">,
  opts: RefreshOptions = {},
): Promise<void> {
  for (const feed of [...Object.values(sys.feeds), ...Object.values(sys.volFeeds)]) {
    if (opts.atLatest) await atLatestTimestamp();
    await (await feed.updateAnswer(await feed.latestAnswer())).wait();
  }
}

/** Posts each price feed's current answer again, leaving the volatility feeds to go stale. */
export async function refreshPrices(sys: Pick<System, "feeds">, opts: RefreshOptions = {}): Promise<void> {
  for (const feed of Object.values(sys.feeds)) {
    if (opts.atLatest) await atLatestTimestamp();
    await (await feed.updateAnswer(await feed.latestAnswer())).wait();
  }
}

/**
 * Moves the chain to exactly `timestamp` for the next transaction, with fresh feeds: for a jump of a
 * minute or more, refreshes them half a minute before; then pins the next block's timestamp.
 */
export async function advanceTo(sys: Pick<System, "feeds" | "volFeeds">, timestamp: bigint): Promise<void> {
  if (timestamp - BigInt(await time.latest()) >= 60n) {
    await time.increaseTo(timestamp - 30n);
    await refreshFeeds(sys);
  }
  await time.setNextBlockTimestamp(timestamp);
}

/** Mines a block at exactly `timestamp`, with fresh feeds (`advanceTo`, then the block). */
export async function mineAt(sys: Pick<System, "feeds" | "volFeeds">, timestamp: bigint): Promise<void> {
  await advanceTo(sys, timestamp);
  await ethers.provider.send("evm_mine", []);
}

/** A market-wide move of the random-sequence tests: an oracle price, a volatility, or time passing. */
export type MarketMove =
  | { kind: "price"; asset: "ETH" | "BTC" | "USDC"; permille: number }
  | { kind: "vol"; asset: "ETH" | "BTC"; percent: number }
  | { kind: "time"; dt: number };

/** The test system's feed prices (USD) before any move. */
const BASE_PRICE = { ETH: 3000n, BTC: 60000n, USDC: 1n } as const;

/**
 * Applies `move`: the asset's feed at `permille`/1000 of its base price, the volatility feed at
 * `percent`, or `dt` seconds later with the feeds refreshed and a block mined at that time.
 */
export async function applyMarketMove(
  sys: Pick<System, "feeds" | "volFeeds">,
  move: MarketMove,
): Promise<void> {
  switch (move.kind) {
    case "price": {
      const answer = (BASE_PRICE[move.asset] * 10n ** 8n * BigInt(move.permille)) / 1000n;
      await (await sys.feeds[move.asset].updateAnswer(answer)).wait();
      return;
    }
    case "vol":
      await (await sys.volFeeds[move.asset].updateAnswer(BigInt(move.percent) * 10n ** 6n)).wait();
      return;
    case "time":
      await mineAt(sys, BigInt(await time.latest()) + BigInt(move.dt));
      return;
  }
}

/**
 * Alice long 300 ETH on 235,000 USDC, frozen in an auction at 2,800; Bob (`b`) has 400,000 USDC to make
 * the skew. The pool delta ratio is 2, so that a short of 500 ETH (1,400,000 USD) fits under its limit.
 * A fixture: pass it to `loadFixture`.
 */
export async function frozenLongAndPartner() {
  const usdc = 10n ** 6n;
  const sys = await deploySystem();
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxPoolDeltaRatio: 2n * 10n ** 18n }));
  const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 235_000n * usdc]]);
  await trade(sys.perps, sys.alice, a, sys.markets.ETH, 300n * 10n ** 18n);
  await setFeedPrice(sys.feeds.ETH, "2800");
  await sys.auction.connect(sys.carol).startAuction(a);
  const b = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 400_000n * usdc]]);
  return { sys, a, b };
}

/**
 * The backstop long 100 ETH (review round 7): Alice, long 100 ETH (fill ~3,150) on 50,000 USDC, is
 * ~5,000 insolvent at 2,600; the fund (50,000 USDC) covers it and the backstop absorbs her whole long.
 * Funding on or off, the ETH market's pool delta ratio and the pool's holding period as given.
 */
export async function backstopLong100(
  opts: { funding?: boolean; maxPoolDeltaRatio?: bigint; holdingPeriod?: bigint } = {},
): Promise<{ sys: System; backstop: bigint }> {
  const sys = await deploySystem({ holdingPeriod: opts.holdingPeriod ?? HOLDING_PERIOD });
  await sys.perps.setMarketParams(
    sys.markets.ETH,
    marketParams({
      maxFundingVelocity: opts.funding ? ethers.parseEther("0.1") : 0n,
      maxPoolDeltaRatio: opts.maxPoolDeltaRatio ?? ethers.parseEther("1"),
    }),
  );
  return { sys, backstop: await absorbLong100(sys) };
}

/**
 * The keeper starts `accountId`'s auction (it must be liquidatable) and, at the end of its duration, the
 * backstop absorbs the book. Returns the backstop's account id.
 */
export async function absorbAfterAuction(sys: System, accountId: bigint): Promise<bigint> {
  await sys.auction.connect(sys.keeper).startAuction(accountId);
  // The absorb at the duration's end exactly, whatever the wall clock does: what a slice with options is
  // worth moves with time.
  await advanceTo(sys, BigInt(await time.latest()) + BigInt((await sys.auction.params()).duration));
  await sys.auction.absorb(accountId);
  return sys.auction.backstopAccountId();
}

/**
 * `backstopLong100`'s absorb on a system already deployed (ETH at 3,000): the fund gets 50,000 USDC,
 * Alice goes long 100 ETH on 50,000 USDC, ETH falls to 2,600 and the backstop absorbs her long after
 * the auction's duration. Returns the backstop's account id.
 */
export async function absorbLong100(sys: System): Promise<bigint> {
  const usdc = 10n ** 6n;
  await fundInsurance(sys, 50_000n * usdc);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 50_000n * usdc]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, ethers.parseEther("100"));
  await setFeedPrice(sys.feeds.ETH, "2600");
  const backstop = await absorbAfterAuction(sys, alice);
  if ((await sys.perps.positionSize(backstop, sys.markets.ETH)) !== ethers.parseEther("100"))
    throw new Error("the backstop did not absorb Alice's 100 ETH");
  return backstop;
}

/**
 * The seed LP's shares free, Bob an LP with fresh locked shares (5,000 USDC), the pool short 0.1 BTC to Alice, the backstop empty (it
 * holds no quote: its collateral reads no price); an hour later every feed is reported again but
 * `stale`'s.
 */
export async function lockedLpWithStaleFeed(stale: "USDC" | "BTC"): Promise<System> {
  const sys = await deploySystem();
  await mintAndApprove(sys.usdc, sys.bob, await sys.pool.getAddress(), 10_000n * 10n ** 6n);
  await sys.pool.connect(sys.bob).deposit(5_000n * 10n ** 6n, sys.bob.address);
  const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * 10n ** 6n]]);
  await trade(sys.perps, sys.alice, account, sys.markets.BTC, 10n ** 17n);
  await time.increase(3_700);
  if (stale !== "USDC") await setFeedPrice(sys.feeds.USDC, "1");
  if (stale !== "BTC") await setFeedPrice(sys.feeds.BTC, "60000");
  await setFeedPrice(sys.feeds.ETH, "3000");
  await setFeedPrice(sys.volFeeds.ETH, "0.6");
  await setFeedPrice(sys.volFeeds.BTC, "0.5");
  return sys;
}

/**
 * Alice long 10 ETH against the pool on 10,000 USDC (so the LP share price moves with ETH); Bob holds
 * 10,000 USDC approved to the pool. A fixture (use with `loadFixture`).
 */
export async function poolShortTen(): Promise<System> {
  const sys = await deploySystem();
  const usdc = 10n ** 6n;
  const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * usdc]]);
  await trade(sys.perps, sys.alice, account, sys.markets.ETH, ethers.parseEther("10"));
  await mintAndApprove(sys.usdc, sys.bob, await sys.pool.getAddress(), 10_000n * usdc);
  return sys;
}

/**
 * The SDK's state of a perp market no chain holds, for the pure perp model (`perpQuote`, `perpExposure`):
 * no fees, funding, limits, open interest or backstop unless `overrides` gives them.
 */
export function perpMarketState(
  skewScale: bigint,
  overrides: Partial<PerpMarketState> = {},
): PerpMarketState {
  return {
    kind: "perp",
    market: ethers.ZeroAddress,
    marketId: 1n,
    underlying: assetId("ETH").toLowerCase(),
    params: {
      skewScale,
      maxFundingVelocity: 0n,
      maxFundingRate: 0n,
      makerFee: 0n,
      takerFee: 0n,
      insuranceFeeShare: 0n,
      maxPoolDeltaRatio: 0n,
      maxOpenInterest: 0n,
    },
    longOpenInterest: 0n,
    shortOpenInterest: 0n,
    fundingRate: 0n,
    fundingIndex: 0n,
    lastFundingTime: 0n,
    backstopSize: 0n,
    ...overrides,
  };
}
