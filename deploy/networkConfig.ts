/**
 * Per-network deployment parameters (`deploy/config/<network>.json`), read when the Ignition module is
 * built: the module's shape (which feeds, tokens, markets) depends on them, so they cannot be Ignition
 * runtime parameters. This file parses and checks them into exact bigints; deploy/README.md documents
 * the format.
 */
import fs from "node:fs";
import path from "node:path";
import { formatEther, getAddress, parseUnits } from "ethers";
import type { RiskParams } from "../sdk/src/math/portfolio";
import type { PerpMarketParams } from "../sdk/src/math/perp";
import { MIN_COUNTED_DELTA } from "../sdk/src/markets/option";

export type { RiskParams };

export type RoleName = "RISK_MANAGER" | "LISTING" | "GUARDIAN" | "TREASURY" | "BACKSTOP";

/** "deployer" (the deploying account), "timelock" (the module's TimelockController) or an address. */
export type AccountRef = "deployer" | "timelock" | string;

/** A Chainlink-compatible source: an existing feed, or a MockV3Aggregator the module deploys. */
export type FeedSource = { address: string } | { mock: { decimals: number; answer: bigint } };

export interface PriceFeedConfig {
  source: FeedSource;
  /**
   * The longest the router accepts the feed's latest round (`primaryHeartbeat`, seconds), at most
   * OracleRouter.MAX_HEARTBEAT (2 days).
   */
  heartbeat: number;
  /**
   * The heartbeat Chainlink publishes for a feed given by address (seconds), when stated: `heartbeat` must
   * then exceed it by at least a 24th (`HEARTBEAT_SLACK_DIVISOR`). A heartbeat round is started once the
   * heartbeat is reached and lands after it, so a limit equal to the published heartbeat reverted every
   * price read of the asset from then until the round landed, once a heartbeat (review round 173).
   */
  publishedHeartbeat?: number;
  minPrice: bigint;
  maxPrice: bigint;
  /**
   * The feed's published deviation threshold (a fraction: 0.005 = 0.5%), when given: a trader who sees a
   * round coming opens at the old answer and closes at the new one, so every perp market on the asset
   * must charge at least this much for a round trip (makerFee + takerFee; review round 65). Required for
   * every feed, live or mock, off the local chain and the testnets (`TESTNET_CHAIN_IDS`); above 0, below 1.
   */
  deviationThreshold?: bigint;
}

export interface VolatilityFeedConfig {
  source: FeedSource;
  heartbeat: number;
  minVol: bigint;
  maxVol: bigint;
}

export interface SequencerFeedConfig {
  /** An existing uptime feed, or a MockV3Aggregator (0 decimals, answer 0 = up) on testnets. */
  source: { address: string } | { mock: true };
  gracePeriod: number;
}

/** An existing token, a MockERC20 (open mint) or a MockERC4626 over another listed token. */
export type TokenSource =
  | { address: string; decimals: number }
  | { mock: { name: string; decimals: number } }
  | { mockVault: { name: string; asset: string } };

export interface TokenConfig {
  source: TokenSource;
  decimals: number;
  oracleAsset: string;
  initialWeight: bigint;
  maintenanceWeight: bigint;
  /**
   * The weight the mark counts at while the engine shocks the token with positions on its oracle asset
   * (`CollateralVault.setShockedWeight`): a haircut for basis and liquidity only. 0 (absent): its weights.
   */
  shockedWeight: bigint;
  /** In token units. */
  depositCap: bigint;
  isErc4626: boolean;
}

export interface PerpMarketConfig {
  underlying: string;
  params: PerpMarketParams;
  /**
   * The floor of makerFee + takerFee (`PerpMarket.listMarket`), which the risk role cannot take the fees
   * below: at most the listed round trip and at least the price feed's `deviationThreshold` where one is
   * stated. Only the timelock moves it (`setMinRoundTripFee`).
   */
  minRoundTripFee: bigint;
}

export interface AuctionParams {
  startDiscount: bigint;
  maxDiscount: bigint;
  penalty: bigint;
  duration: bigint;
  /** In quote-token units. */
  flagReward: bigint;
}

export interface OptionMarketConfig {
  /**
   * Pool vega limit per underlying (|pool net vega| ≤ ratio · pool quote balance), set at deployment;
   * an underlying without one cannot list series. Every key must be an underlying.
   */
  poolVegaRatio: Record<string, bigint>;
  /**
   * Pool delta limit of the option market per underlying (each side of the traders' option delta, in
   * notional, ≤ ratio · the vega limit's base), set at deployment; an underlying without one cannot list
   * series. Every key must be an underlying.
   */
  poolDeltaRatio: Record<string, bigint>;
  /**
   * The floor of every series' fee on the underlying (one side, a fraction of notional, at most 0.005):
   * LISTING lists no series below it and the risk role lowers none below it (`configureUnderlying`).
   * minFee must cover the price feed's `deviationThreshold` where one is stated: a deep in-the-money
   * series moves like a perp, and one held to settlement pays a single fee (settlement charges none),
   * so one fee, not a round trip's two, must cover a round seen coming (review round 113). Same keys
   * as `poolVegaRatio`.
   */
  minFee: Record<string, bigint>;
  /**
   * The floor of every series' spread factor on the underlying (at most 0.1): 2 · minSpreadFactor
   * should cover the largest step the volatility feed makes in one round. Same keys as `poolVegaRatio`.
   */
  minSpreadFactor: Record<string, bigint>;
  /**
   * Series expire at `expiry % expiryPeriod == expiryOffset` (seconds: the period at most 7 days and, off the
   * local chain, at least one (`MIN_EXPIRY_PERIOD`); the offset below it; OptionMarket's constructor). The testnets: 86,400 and 28,800 (08:00 UTC daily), which
   * bounds how long settlements close LP exits to about an hour a day; localhost: 1 (any second), so the
   * demo's series expire exactly two hours after seeding.
   */
  expiryPeriod: number;
  expiryOffset: number;
}

export interface RoleGrant {
  account: AccountRef;
  executionDelay: number;
}

/** ICollateralVault.InterestRateModel: annual rates by utilisation (WAD). */
export interface InterestRateModel {
  baseRate: bigint;
  kinkRate: bigint;
  maxRate: bigint;
  kinkUtilization: bigint;
}

export interface NetworkDeployConfig {
  network: string;
  chainId: number;
  quoteToken: string;
  /** The oracle asset of the chain's gas token (keepers price gas with it). */
  nativeAsset: string;
  feeds: Record<string, PriceFeedConfig>;
  volatilityFeeds: Record<string, VolatilityFeedConfig>;
  sequencerUptimeFeed: SequencerFeedConfig | null;
  tokens: Record<string, TokenConfig>;
  underlyings: Record<string, RiskParams>;
  /** Listed in this order, so market ids are 1, 2, ... in key order. */
  perpMarkets: Record<string, PerpMarketConfig>;
  optionMarket: OptionMarketConfig;
  auction: AuctionParams;
  /** The pool's token, and how the rate traders' quote debts pay it follows utilisation (WAD). */
  liquidityPool: {
    name: string;
    symbol: string;
    /** Seconds minted LP shares stay locked (`LiquidityPool.setHoldingPeriod`, at most 7 days). */
    holdingPeriod: number;
    /**
     * Seconds between an LP's redeem request and its claim (`LiquidityPool.setExitDelay`, at most 7
     * days, claimable for 2 hours after it); 0 lets LPs exit at once through ERC-4626's withdraw and redeem.
     */
    exitDelay: number;
    interestRateModel: InterestRateModel;
  };
  governance: {
    timelockMinDelay: number;
    proposers: AccountRef[];
    executors: AccountRef[];
    roles: Record<RoleName, RoleGrant[]>;
  };
}

const CONFIG_DIR = path.join(__dirname, "config");

/**
 * The timelock's least delay: docs/decisions.md (Governance) makes whatever is the timelock's alone (feeds,
 * collateral listings, market registration, role grants, the treasury) "a decision made in public, two
 * days ahead". Review round 32: every config had 60 s or 3,600 s, and the deployer, their only proposer,
 * could register itself as a market and take the pool's USDC a minute after scheduling it.
 */
export const MIN_TIMELOCK_DELAY = 2 * 86_400;

/**
 * MarginEngine.MAX_UNDERLYINGS and PerpMarket.MAX_MARKETS: a config beyond them would stop halfway
 * through a deployment, at the first listing the contract refuses (review round 87).
 */
export const MAX_UNDERLYINGS = 32;
export const MAX_PERP_MARKETS = 32;

/** OptionMarket's hard bounds on a series' fee and spread factor (its MAX_FEE, MAX_SPREAD_FACTOR). */
const MAX_OPTION_FEE = 5n * 10n ** 15n;
const MAX_OPTION_SPREAD_FACTOR = 10n ** 17n;

/**
 * The most of the pool's balance the short-option floors of far out-of-the-money contracts may pin, over
 * every side of every underlying: Σ 2 · poolDeltaRatio · shortOptionFloor / MIN_COUNTED_DELTA. Each side
 * of an underlying pins at most its own term's half; without a pool-wide bound, two underlyings at ratio
 * 1 let far calls and puts pin all of it and LP exits closed for 30 days (§4 rows 220, 225).
 */
export const MAX_FAR_OPTION_PIN = 5n * 10n ** 17n;

/** OptionMarket's MAX_TOTAL_POOL_DELTA_RATIO: the sum of the delta ratios the risk role's raises keep to. */
export const MAX_TOTAL_POOL_DELTA_RATIO = 10n ** 18n;

/**
 * The quote token's decimals the contracts take: at most 18 (`MarketBase`, `LiquidityPool` and
 * `LiquidationAuction` scale by 10^(18 − decimals)), at least 2 (the vault lists no token whose unit is
 * worth more than `MAX_UNIT_VALUE`, ten cents: a 0-decimal dollar is refused at listing, a 1-decimal one
 * at any price above 1.00). Checked here, not by the first constructor or listing that reverts midway
 * through a deployment (review round 126).
 */
export const QUOTE_DECIMALS_RANGE = [2, 18] as const;

/** The option market's settings kept per underlying. */
type OptionUnderlyingKey = "poolVegaRatio" | "poolDeltaRatio" | "minFee" | "minSpreadFactor";

/**
 * The least grace period with a live sequencer-uptime feed (Chainlink's own examples use an hour). The
 * feed dates its "up" round with the L1 time of the status change, and the router counts the grace from
 * that date: a message relayed later than the grace arrives with it already run, and accounts are
 * liquidatable the moment the sequencer is back, with no time to top up (review round 121). The
 * testnets' mock feeds, which nothing relays, keep 600 s.
 */
export const MIN_LIVE_SEQUENCER_GRACE = 3_600;

/** The finest option expiry grid a public network's config may set (`optionMarket.expiryPeriod`). */
export const MIN_EXPIRY_PERIOD = 86_400;

/**
 * OracleRouter's bounds on a source, mirrored so that a config beyond them is refused before anything is
 * deployed rather than by `configureAsset`, `configureVolatilityFeed` or `configureSequencerFeed`
 * (`InvalidConfig`) after AccessManager, OracleRouter and the mock feeds are on chain (review round 173):
 * a heartbeat of 1 s to 2 days (MAX_HEARTBEAT), a grace period of 1 s to a day (MAX_GRACE_PERIOD), at most
 * 36 decimals (MAX_DECIMALS), price bounds 0 < minPrice < maxPrice < 2^120, volatility bounds
 * 0 < minVol < maxVol ≤ 10 (MAX_VOLATILITY).
 */
export const ROUTER_MAX_HEARTBEAT = 2 * 86_400;
export const ROUTER_MAX_GRACE_PERIOD = 86_400;
export const ROUTER_MAX_DECIMALS = 36;
export const ROUTER_MAX_VOLATILITY = 10n * 10n ** 18n;
const ROUTER_MAX_PRICE = 2n ** 120n - 1n;

/**
 * A price feed's `heartbeat` exceeds its `publishedHeartbeat` by at least a 24th of it: an hour on a 24-hour
 * feed, 150 s on a one-hour one (GMX's testnet configs give 25 h and 1 h + 120 s). Chainlink starts the
 * heartbeat round when the heartbeat is reached, and "there may be a slight delay for the latest round to
 * get onchain" (docs.chain.link, Data Feeds): with no slack every read of the asset reverts `StalePrice`
 * in between, once a heartbeat (review round 173).
 */
export const HEARTBEAT_SLACK_DIVISOR = 24;

/** Hardhat's chain id (the in-process network and `hardhat node`): the one config with a finer grid. */
export const LOCAL_CHAIN_ID = 31_337;

/**
 * Sepolia, Arbitrum Sepolia, Base Sepolia: their tokens are open-mint mocks, so a feed there may leave
 * out its `deviationThreshold` (nothing of value to take through its lag). Everywhere else a live feed
 * states it and the perp fees must cover it (review round 65, docs/decisions.md "Oracle lag").
 */
export const TESTNET_CHAIN_IDS: readonly number[] = [11_155_111, 421_614, 84_532];

/**
 * Roles that act at once and can close a user's exit: GUARDIAN pauses withdrawals and LP claims,
 * RISK_MANAGER raises the LPs' exit delay and holding period to 7 days, LISTING lists series whose
 * settlement closes LP exits. An account holding one of them with an execution delay below the timelock's
 * may not propose to the timelock: it could close the exits for the whole delay of its own proposal, which
 * is then no warning to anyone (review round 32).
 */
const EXIT_CLOSING_ROLES = ["GUARDIAN", "RISK_MANAGER", "LISTING"] as const;

/**
 * The first grant of GUARDIAN, RISK_MANAGER or LISTING with an execution delay below the timelock's to an
 * account that also proposes to the timelock, or undefined. With `deployer` (the deploying account's
 * address) the alias "deployer" and that address are the same account: the parser, which does not know
 * the address, compares references as written, so `deployXMargin` checks again once it does (review
 * round 34: proposers ["0xf39F…"] beside GUARDIAN for "deployer" passed the parser and deployed).
 */
export function proposingExitCloser(
  governance: Pick<NetworkDeployConfig["governance"], "timelockMinDelay" | "proposers" | "roles">,
  deployer?: string,
): { at: string; message: string } | undefined {
  const resolve = (ref: AccountRef) => (ref === "deployer" && deployer ? deployer : ref).toLowerCase();
  const proposers = governance.proposers.map(resolve);
  for (const role of EXIT_CLOSING_ROLES) {
    const grants = governance.roles[role];
    for (let i = 0; i < grants.length; ++i) {
      const grant = grants[i];
      if (grant.executionDelay < governance.timelockMinDelay && proposers.includes(resolve(grant.account))) {
        return {
          at: `governance.roles.${role}[${i}]`,
          message: `${grant.account} proposes to the timelock: it may hold ${role} only with an execution delay of at least the timelock's`,
        };
      }
    }
  }
  return undefined;
}

/** Hardhat's in-process network deploys what a local node does. */
const CONFIG_ALIASES: Record<string, string> = { hardhat: "localhost" };

/** The config file of `network`; `XMARGIN_DEPLOY_CONFIG` (a path) overrides it. */
export function configPath(network: string): string {
  const override = process.env.XMARGIN_DEPLOY_CONFIG;
  if (override) return path.resolve(override);
  return path.join(CONFIG_DIR, `${CONFIG_ALIASES[network] ?? network}.json`);
}

/** Reads and checks the deployment parameters of `network`; throws with the offending field's path. */
export function loadNetworkConfig(network: string): NetworkDeployConfig {
  const file = configPath(network);
  if (!fs.existsSync(file)) throw new ConfigError(`no deployment config for network "${network}" (${file})`);
  return parseNetworkConfig(JSON.parse(fs.readFileSync(file, "utf8")), file);
}

type Json = Record<string, unknown>;

/** A deployment config that does not parse: the message names the file and the field. */
export class ConfigError extends Error {}

/** Parses a config object (as read from JSON). Exported for tests. */
export function parseNetworkConfig(raw: unknown, where = "config"): NetworkDeployConfig {
  const r = new Reader(where);
  const root = r.fields(raw, "", [
    "network",
    "chainId",
    "quoteToken",
    "nativeAsset",
    "feeds",
    "volatilityFeeds",
    "sequencerUptimeFeed",
    "tokens",
    "underlyings",
    "perpMarkets",
    "optionMarket",
    "auction",
    "liquidityPool",
    "governance",
  ]);
  const tokensRaw = r.object(root.tokens, "tokens");
  const quoteToken = r.string(root.quoteToken, "quoteToken");

  const chainId = r.int(root.chainId, "chainId");
  const feeds = mapValues(r.object(root.feeds, "feeds"), (v, k) => {
    const o = r.fields(v, `feeds.${k}`, [
      "address",
      "mock",
      "heartbeat",
      "publishedHeartbeat",
      "minPrice",
      "maxPrice",
      "deviationThreshold",
    ]);
    const source = r.feedSource(o, `feeds.${k}`);
    const feed: PriceFeedConfig = {
      source,
      heartbeat: r.heartbeat(o.heartbeat, `feeds.${k}.heartbeat`),
      ...r.bounds(o.minPrice, o.maxPrice, `feeds.${k}`, ["minPrice", "maxPrice"], ROUTER_MAX_PRICE),
    };
    r.mockWithin(source, feed.minPrice, feed.maxPrice, `feeds.${k}`);
    if (o.publishedHeartbeat !== undefined) {
      if ("mock" in source)
        throw r.error(`feeds.${k}.publishedHeartbeat`, "only for a feed given by address");
      const published = r.heartbeat(o.publishedHeartbeat, `feeds.${k}.publishedHeartbeat`);
      const least = published + Math.ceil(published / HEARTBEAT_SLACK_DIVISOR);
      if (feed.heartbeat < least) {
        throw r.error(
          `feeds.${k}.heartbeat`,
          `at least ${least} s, a 24th above the feed's publishedHeartbeat of ${published} s: the heartbeat round lands after the heartbeat is reached, and every read of ${k} reverts StalePrice until it does (review round 173)`,
        );
      }
      feed.publishedHeartbeat = published;
    }
    if (o.deviationThreshold !== undefined) {
      const threshold = r.wad(o.deviationThreshold, `feeds.${k}.deviationThreshold`);
      // 0 would exempt the feed's perp markets from the rule below; a whole 100% is no threshold either.
      if (threshold === 0n || threshold >= 10n ** 18n)
        throw r.error(`feeds.${k}.deviationThreshold`, "a fraction above 0 and below 1 (0.005 = 0.5%)");
      feed.deviationThreshold = threshold;
    } else if (chainId !== LOCAL_CHAIN_ID && !TESTNET_CHAIN_IDS.includes(chainId)) {
      // A mock too: whoever posts its rounds can be seen doing so (review round 67, row 163).
      throw r.error(
        `feeds.${k}.deviationThreshold`,
        "missing: a live feed states its deviation threshold, which the perp fees must cover (review round 65)",
      );
    }
    return feed;
  });
  const volatilityFeeds = mapValues(r.object(root.volatilityFeeds, "volatilityFeeds"), (v, k) => {
    const o = r.fields(v, `volatilityFeeds.${k}`, ["address", "mock", "heartbeat", "minVol", "maxVol"]);
    const source = r.feedSource(o, `volatilityFeeds.${k}`);
    const bounds = r.bounds(
      o.minVol,
      o.maxVol,
      `volatilityFeeds.${k}`,
      ["minVol", "maxVol"],
      ROUTER_MAX_VOLATILITY,
    );
    r.mockWithin(source, bounds.minVol, bounds.maxVol, `volatilityFeeds.${k}`);
    return {
      source,
      heartbeat: r.heartbeat(o.heartbeat, `volatilityFeeds.${k}.heartbeat`),
      minVol: bounds.minVol,
      maxVol: bounds.maxVol,
    };
  });

  let sequencerUptimeFeed: SequencerFeedConfig | null = null;
  if (root.sequencerUptimeFeed !== null && root.sequencerUptimeFeed !== undefined) {
    const o = r.fields(root.sequencerUptimeFeed, "sequencerUptimeFeed", [
      "address",
      "mock",
      "mainnetAddress",
      "gracePeriod",
    ]);
    if (o.mock !== undefined && o.address !== undefined)
      throw r.error("sequencerUptimeFeed", 'give "address" or "mock", not both');
    sequencerUptimeFeed = {
      source:
        o.mock === true ? { mock: true } : { address: r.address(o.address, "sequencerUptimeFeed.address") },
      gracePeriod: r.int(o.gracePeriod, "sequencerUptimeFeed.gracePeriod"),
    };
    const { gracePeriod } = sequencerUptimeFeed;
    if (gracePeriod === 0 || gracePeriod > ROUTER_MAX_GRACE_PERIOD) {
      throw r.error(
        "sequencerUptimeFeed.gracePeriod",
        `between 1 and ${ROUTER_MAX_GRACE_PERIOD} s (OracleRouter.MAX_GRACE_PERIOD)`,
      );
    }
    if (o.mock !== true && sequencerUptimeFeed.gracePeriod < MIN_LIVE_SEQUENCER_GRACE) {
      throw r.error(
        "sequencerUptimeFeed.gracePeriod",
        `at least ${MIN_LIVE_SEQUENCER_GRACE} s with a live uptime feed (its up round can arrive late)`,
      );
    }
  }

  const decimalsOf = (symbol: string, seen: string[] = []): number => {
    if (seen.includes(symbol)) throw r.error(`tokens.${symbol}`, "vault token cycle");
    const o = r.object(tokensRaw[symbol], `tokens.${symbol}`);
    const at = `tokens.${symbol}`;
    if (o.mock !== undefined) return r.int(r.object(o.mock, `${at}.mock`).decimals, `${at}.mock.decimals`);
    if (o.mockVault !== undefined) {
      // Checked here, before the recursion reads the asset's entry (which reported tokens.<asset>).
      const asset = r.string(r.object(o.mockVault, `${at}.mockVault`).asset, `${at}.mockVault.asset`);
      if (!Object.hasOwn(tokensRaw, asset)) throw r.error(`${at}.mockVault.asset`, `unknown token ${asset}`);
      return decimalsOf(asset, [...seen, symbol]);
    }
    return r.int(o.decimals, `tokens.${symbol}.decimals`);
  };

  const tokens = mapValues(tokensRaw, (v, k) => {
    const at = `tokens.${k}`;
    const o = r.fields(v, at, [
      "address",
      "decimals",
      "mock",
      "mockVault",
      "erc4626",
      "oracleAsset",
      "initialWeight",
      "maintenanceWeight",
      "shockedWeight",
      "depositCap",
    ]);
    if ([o.address, o.mock, o.mockVault].filter((x) => x !== undefined).length > 1)
      throw r.error(at, 'give one of "address", "mock" and "mockVault"');
    const decimals = decimalsOf(k);
    let source: TokenSource;
    if (o.mock !== undefined) {
      const m = r.object(o.mock, `${at}.mock`);
      source = { mock: { name: r.string(m.name, `${at}.mock.name`), decimals } };
    } else if (o.mockVault !== undefined) {
      const m = r.object(o.mockVault, `${at}.mockVault`);
      const asset = r.string(m.asset, `${at}.mockVault.asset`); // a listed token: checked by decimalsOf
      source = { mockVault: { name: r.string(m.name, `${at}.mockVault.name`), asset } };
    } else {
      source = { address: r.address(o.address, `${at}.address`), decimals };
    }
    const oracleAsset = r.string(o.oracleAsset, `${at}.oracleAsset`);
    if (!Object.hasOwn(feeds, oracleAsset))
      throw r.error(`${at}.oracleAsset`, `no price feed for ${oracleAsset}`);
    return {
      source,
      decimals,
      oracleAsset,
      initialWeight: r.wad(o.initialWeight, `${at}.initialWeight`),
      maintenanceWeight: r.wad(o.maintenanceWeight, `${at}.maintenanceWeight`),
      shockedWeight: o.shockedWeight === undefined ? 0n : r.wad(o.shockedWeight, `${at}.shockedWeight`),
      depositCap: r.units(o.depositCap, decimals, `${at}.depositCap`),
      isErc4626: "mockVault" in source || o.erc4626 === true,
    };
  });
  if (!Object.hasOwn(tokens, quoteToken)) throw r.error("quoteToken", `not in tokens: ${quoteToken}`);
  const [minQuoteDecimals, maxQuoteDecimals] = QUOTE_DECIMALS_RANGE;
  const quoteDecimals = tokens[quoteToken].decimals;
  if (quoteDecimals < minQuoteDecimals || quoteDecimals > maxQuoteDecimals)
    throw r.error(
      "quoteToken",
      `${quoteToken} has ${quoteDecimals} decimals; a quote token needs ${minQuoteDecimals} to ${maxQuoteDecimals}`,
    );
  // The vault refuses it (QuoteTokenNeverShocked): said here, before anything is deployed.
  if (tokens[quoteToken].shockedWeight !== 0n)
    throw r.error(
      `tokens.${quoteToken}.shockedWeight`,
      "the quote token prices no underlying and is never shocked",
    );

  const underlyings = mapValues(r.object(root.underlyings, "underlyings"), (v, k) => {
    const at = `underlyings.${k}`;
    const o = r.fields(v, at, [
      "mmShockFloor",
      "imShockFloor",
      "mmZ",
      "imZ",
      "horizon",
      "maxShock",
      "mmVolShock",
      "imVolShock",
      "shortOptionFloor",
      "contingency",
      "sizeScale",
    ]);
    if (!Object.hasOwn(feeds, k) || !Object.hasOwn(volatilityFeeds, k)) {
      throw r.error(at, `an underlying needs a price feed and a volatility feed`);
    }
    return {
      mmShockFloor: r.wad(o.mmShockFloor, `${at}.mmShockFloor`),
      imShockFloor: r.wad(o.imShockFloor, `${at}.imShockFloor`),
      mmZ: r.wad(o.mmZ, `${at}.mmZ`),
      imZ: r.wad(o.imZ, `${at}.imZ`),
      horizon: BigInt(r.int(o.horizon, `${at}.horizon`)),
      maxShock: r.wad(o.maxShock, `${at}.maxShock`),
      mmVolShock: r.wad(o.mmVolShock, `${at}.mmVolShock`),
      imVolShock: r.wad(o.imVolShock, `${at}.imVolShock`),
      shortOptionFloor: r.wad(o.shortOptionFloor, `${at}.shortOptionFloor`),
      contingency: r.wad(o.contingency, `${at}.contingency`),
      sizeScale: r.wad(o.sizeScale, `${at}.sizeScale`),
    };
  });

  if (Object.keys(underlyings).length > MAX_UNDERLYINGS)
    throw r.error("underlyings", `at most ${MAX_UNDERLYINGS} (MarginEngine.MAX_UNDERLYINGS)`);

  const perpMarkets = mapValues(r.object(root.perpMarkets, "perpMarkets"), (v, k) => {
    const at = `perpMarkets.${k}`;
    const o = r.fields(v, at, [
      "underlying",
      "skewScale",
      "maxFundingVelocity",
      "maxFundingRate",
      "makerFee",
      "takerFee",
      "insuranceFeeShare",
      "maxPoolDeltaRatio",
      "maxOpenInterest",
      "minRoundTripFee",
    ]);
    const underlying = r.string(o.underlying, `${at}.underlying`);
    if (!Object.hasOwn(underlyings, underlying))
      throw r.error(`${at}.underlying`, `not an underlying: ${underlying}`);
    // A round seen coming (in the mempool, or a feed lagging the market inside its threshold) is a
    // riskless round trip worth size·price·(threshold − round-trip fee); the cheapest round trip pays
    // makerFee + takerFee (review round 65: 5,014.93 USDC a 0.5% round at the pool's delta limit).
    const threshold = feeds[underlying].deviationThreshold;
    const roundTripFee = r.wad(o.makerFee, `${at}.makerFee`) + r.wad(o.takerFee, `${at}.takerFee`);
    if (threshold !== undefined && roundTripFee < threshold) {
      throw r.error(
        `${at}.takerFee`,
        `makerFee + takerFee below the ${underlying} feed's deviation threshold: a round seen coming is a riskless round trip (review round 65)`,
      );
    }
    // The same rule after deployment: the risk role steps fees without delay, down to this floor.
    const minRoundTripFee = r.wad(o.minRoundTripFee, `${at}.minRoundTripFee`);
    if (minRoundTripFee > roundTripFee)
      throw r.error(`${at}.minRoundTripFee`, "above makerFee + takerFee (PerpMarket.listMarket refuses it)");
    if (threshold !== undefined && minRoundTripFee < threshold) {
      throw r.error(
        `${at}.minRoundTripFee`,
        `below the ${underlying} feed's deviation threshold: the risk role could lower the fees to a riskless round trip`,
      );
    }
    return {
      underlying,
      minRoundTripFee,
      params: {
        skewScale: r.wad(o.skewScale, `${at}.skewScale`),
        maxFundingVelocity: r.wad(o.maxFundingVelocity, `${at}.maxFundingVelocity`),
        maxFundingRate: r.wad(o.maxFundingRate, `${at}.maxFundingRate`),
        makerFee: r.wad(o.makerFee, `${at}.makerFee`),
        takerFee: r.wad(o.takerFee, `${at}.takerFee`),
        insuranceFeeShare: r.wad(o.insuranceFeeShare, `${at}.insuranceFeeShare`),
        maxPoolDeltaRatio: r.wad(o.maxPoolDeltaRatio, `${at}.maxPoolDeltaRatio`),
        maxOpenInterest: r.wad(o.maxOpenInterest, `${at}.maxOpenInterest`),
      },
    };
  });
  if (Object.keys(perpMarkets).length > MAX_PERP_MARKETS)
    throw r.error("perpMarkets", `at most ${MAX_PERP_MARKETS} (PerpMarket.MAX_MARKETS)`);

  const o = r.fields(root.optionMarket, "optionMarket", [
    "poolVegaRatio",
    "poolDeltaRatio",
    "minFee",
    "minSpreadFactor",
    "expiryPeriod",
    "expiryOffset",
  ]);
  const perUnderlying = (
    key: OptionUnderlyingKey,
    check: (value: bigint, underlying: string) => string | undefined,
  ) =>
    mapValues(r.object(o[key], `optionMarket.${key}`), (v, k) => {
      const at = `optionMarket.${key}.${k}`;
      if (!Object.hasOwn(underlyings, k)) throw r.error(at, `not an underlying: ${k}`);
      const value = r.wad(v, at);
      const problem = check(value, k);
      if (problem) throw r.error(at, problem);
      return value;
    });
  const expiryPeriod = r.int(o.expiryPeriod, "optionMarket.expiryPeriod");
  const expiryOffset = r.int(o.expiryOffset, "optionMarket.expiryOffset");
  if (expiryPeriod < 1 || expiryPeriod > 7 * 86_400) {
    throw r.error("optionMarket.expiryPeriod", "must be between 1 second and 7 days");
  }
  // Each held series closes LP exits for its last hour until it is settled: on a grid finer than a day,
  // LISTING (no delay) could keep them closed around the clock (review round 32, row 96). Only the local
  // chain, whose demo series expire two hours after seeding, lists on a finer one.
  if (chainId !== LOCAL_CHAIN_ID && expiryPeriod < MIN_EXPIRY_PERIOD) {
    throw r.error("optionMarket.expiryPeriod", `at least ${MIN_EXPIRY_PERIOD} s (a day) off the local chain`);
  }
  if (expiryOffset >= expiryPeriod) throw r.error("optionMarket.expiryOffset", "must be below expiryPeriod");
  const positive = (ratio: bigint) => (ratio === 0n ? "must be positive" : undefined);
  const atMost = (max: bigint, label: string) => (value: bigint) =>
    value > max ? `at most ${label} (OptionMarket's bound)` : undefined;
  const optionLimits = {
    poolVegaRatio: perUnderlying("poolVegaRatio", positive),
    poolDeltaRatio: perUnderlying("poolDeltaRatio", positive),
    // A deep in-the-money series moves like a perp: the perp markets' rule, on one fee, because a
    // series held to settlement exits without a second (review round 113). Enforced on-chain for every
    // series LISTING lists.
    minFee: perUnderlying("minFee", (fee, underlying) => {
      const threshold = feeds[underlying].deviationThreshold;
      if (threshold !== undefined && fee < threshold) {
        return `minFee below the ${underlying} feed's deviation threshold: a deep in-the-money series bought before a round seen coming and held to settlement pays one fee (review rounds 65, 113)`;
      }
      return atMost(MAX_OPTION_FEE, "0.005")(fee);
    }),
    minSpreadFactor: perUnderlying("minSpreadFactor", atMost(MAX_OPTION_SPREAD_FACTOR, "0.1")),
  };
  // One call configures an underlying's limits and floors (`OptionMarket.configureUnderlying`).
  const configured = new Set(Object.values(optionLimits).flatMap((m) => Object.keys(m)));
  for (const k of configured) {
    for (const [key, values] of Object.entries(optionLimits)) {
      if (!Object.hasOwn(values, k)) throw r.error(`optionMarket.${key}.${k}`, "missing");
    }
  }
  // What far options may pin at the config's ratios, and what the risk role's raises may reach after
  // deployment within OptionMarket's sum of 1 (MAX_TOTAL_POOL_DELTA_RATIO), whatever the floors: all of
  // it on the underlying with the highest floor pins 2 × 1 × floor / 0.2 of the pool, and a config
  // summing above 1 leaves every cut final (a raise back is refused until the sum is within 1). Review
  // rounds 93 and 101.
  let farOptionPin = 0n;
  let deltaRatioSum = 0n;
  let highestFloor = 0n;
  for (const [k, ratio] of Object.entries(optionLimits.poolDeltaRatio)) {
    const floor = underlyings[k].shortOptionFloor;
    farOptionPin += (2n * ratio * floor) / MIN_COUNTED_DELTA;
    deltaRatioSum += ratio;
    if (floor > highestFloor) highestFloor = floor;
  }
  if (farOptionPin > MAX_FAR_OPTION_PIN) {
    throw r.error(
      "optionMarket.poolDeltaRatio",
      `far out-of-the-money options could pin ${formatEther(farOptionPin)} of the pool (Σ 2 × ratio × shortOptionFloor / 0.2), at most ${formatEther(MAX_FAR_OPTION_PIN)}: LP exits must keep the rest`,
    );
  }
  if (deltaRatioSum > MAX_TOTAL_POOL_DELTA_RATIO) {
    throw r.error(
      "optionMarket.poolDeltaRatio",
      `the ratios sum to ${formatEther(deltaRatioSum)}, above OptionMarket's ${formatEther(MAX_TOTAL_POOL_DELTA_RATIO)} (totalPoolDeltaRatio): the risk role could not raise a ratio back after a cut`,
    );
  }
  const reachablePin = (2n * MAX_TOTAL_POOL_DELTA_RATIO * highestFloor) / MIN_COUNTED_DELTA;
  if (reachablePin > MAX_FAR_OPTION_PIN) {
    throw r.error(
      "optionMarket.poolDeltaRatio",
      `the risk role's raises within OptionMarket's ratio sum of ${formatEther(MAX_TOTAL_POOL_DELTA_RATIO)} could let far out-of-the-money options pin ${formatEther(reachablePin)} of the pool at a shortOptionFloor of ${formatEther(highestFloor)}, at most ${formatEther(MAX_FAR_OPTION_PIN)}`,
    );
  }
  const optionMarket = { ...optionLimits, expiryPeriod, expiryOffset };

  const a = r.fields(root.auction, "auction", [
    "startDiscount",
    "maxDiscount",
    "penalty",
    "duration",
    "flagReward",
  ]);
  const auction = {
    startDiscount: r.wad(a.startDiscount, "auction.startDiscount"),
    maxDiscount: r.wad(a.maxDiscount, "auction.maxDiscount"),
    penalty: r.wad(a.penalty, "auction.penalty"),
    duration: BigInt(r.int(a.duration, "auction.duration")),
    flagReward: r.units(a.flagReward, tokens[quoteToken].decimals, "auction.flagReward"),
  };

  const lp = r.fields(root.liquidityPool, "liquidityPool", [
    "name",
    "symbol",
    "holdingPeriod",
    "exitDelay",
    "interestRateModel",
  ]);
  const irm = r.fields(lp.interestRateModel, "liquidityPool.interestRateModel", [
    "baseRate",
    "kinkRate",
    "maxRate",
    "kinkUtilization",
  ]);
  const interestRateModel = {
    baseRate: r.wad(irm.baseRate, "liquidityPool.interestRateModel.baseRate"),
    kinkRate: r.wad(irm.kinkRate, "liquidityPool.interestRateModel.kinkRate"),
    maxRate: r.wad(irm.maxRate, "liquidityPool.interestRateModel.maxRate"),
    kinkUtilization: r.wad(irm.kinkUtilization, "liquidityPool.interestRateModel.kinkUtilization"),
  };
  const g = r.fields(root.governance, "governance", ["timelockMinDelay", "proposers", "executors", "roles"]);
  // A role spelt otherwise ("BACKSTOPS", "backstop") granted nothing, silently (review round 74, row 177).
  const rolesRaw = r.fields(g.roles, "governance.roles", [
    "RISK_MANAGER",
    "LISTING",
    "GUARDIAN",
    "TREASURY",
    "BACKSTOP",
  ]);
  const roles = {} as Record<RoleName, RoleGrant[]>;
  for (const role of ["RISK_MANAGER", "LISTING", "GUARDIAN", "TREASURY", "BACKSTOP"] as const) {
    const grants = rolesRaw[role] ?? [];
    if (!Array.isArray(grants)) throw r.error(`governance.roles.${role}`, "expected an array");
    roles[role] = grants.map((grant, i) => {
      const o = r.fields(grant, `governance.roles.${role}[${i}]`, ["account", "executionDelay"]);
      return {
        account: r.accountRef(o.account, `governance.roles.${role}[${i}].account`),
        executionDelay: r.int(o.executionDelay, `governance.roles.${role}[${i}].executionDelay`),
      };
    });
  }
  const refs = (value: unknown, at: string): AccountRef[] => {
    if (!Array.isArray(value)) throw r.error(at, "expected an array");
    return value.map((v, i) => r.accountRef(v, `${at}[${i}]`));
  };

  const timelockMinDelay = r.int(g.timelockMinDelay, "governance.timelockMinDelay");
  if (timelockMinDelay < MIN_TIMELOCK_DELAY) {
    throw r.error("governance.timelockMinDelay", `at least ${MIN_TIMELOCK_DELAY} s (two days)`);
  }
  const proposers = refs(g.proposers, "governance.proposers");
  const conflict = proposingExitCloser({ timelockMinDelay, proposers, roles });
  if (conflict) throw r.error(conflict.at, conflict.message);

  return {
    network: r.string(root.network, "network"),
    chainId,
    quoteToken,
    nativeAsset: r.string(root.nativeAsset, "nativeAsset"),
    feeds,
    volatilityFeeds,
    sequencerUptimeFeed,
    tokens,
    underlyings,
    perpMarkets,
    optionMarket,
    auction,
    liquidityPool: {
      name: r.string(lp.name, "liquidityPool.name"),
      symbol: r.string(lp.symbol, "liquidityPool.symbol"),
      holdingPeriod: r.int(lp.holdingPeriod, "liquidityPool.holdingPeriod"),
      exitDelay: r.int(lp.exitDelay, "liquidityPool.exitDelay"),
      interestRateModel,
    },
    governance: {
      timelockMinDelay,
      proposers,
      executors: refs(g.executors, "governance.executors"),
      roles,
    },
  };
}

function mapValues<T>(record: Json, fn: (value: unknown, key: string) => T): Record<string, T> {
  return Object.fromEntries(
    Object.entries(record)
      .filter(([key]) => !key.startsWith("$"))
      .map(([key, value]) => [key, fn(value, key)]),
  );
}

/** Small typed accessors that report the JSON path of a bad value. */
class Reader {
  constructor(private readonly where: string) {}

  error(at: string, message: string): Error {
    return new ConfigError(`${this.where}: ${at || "<root>"}: ${message}`);
  }

  object(value: unknown, at: string): Json {
    if (typeof value !== "object" || value === null || Array.isArray(value))
      throw this.error(at, "expected an object");
    return value as Json;
  }

  string(value: unknown, at: string): string {
    if (typeof value !== "string" || value === "") throw this.error(at, "expected a non-empty string");
    return value;
  }

  int(value: unknown, at: string): number {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
      throw this.error(at, "expected a non-negative integer");
    }
    return value;
  }

  /** A decimal string scaled to `decimals` exactly (too many fraction digits is an error, not a rounding). */
  units(value: unknown, decimals: number, at: string): bigint {
    if (typeof value !== "string" || !/^\d+(\.\d+)?$/.test(value))
      throw this.error(at, "expected a decimal string");
    try {
      return parseUnits(value, decimals);
    } catch {
      throw this.error(at, `more than ${decimals} decimals`);
    }
  }

  wad(value: unknown, at: string): bigint {
    return this.units(value, 18, at);
  }

  /** A source's heartbeat: 1 s to OracleRouter.MAX_HEARTBEAT. */
  heartbeat(value: unknown, at: string): number {
    const heartbeat = this.int(value, at);
    if (heartbeat === 0 || heartbeat > ROUTER_MAX_HEARTBEAT)
      throw this.error(at, `between 1 and ${ROUTER_MAX_HEARTBEAT} s (OracleRouter.MAX_HEARTBEAT)`);
    return heartbeat;
  }

  /** A source's bounds in WAD, as the router takes them: 0 < low < high ≤ `max`. */
  bounds<L extends string, H extends string>(
    lowValue: unknown,
    highValue: unknown,
    at: string,
    [lowKey, highKey]: [L, H],
    max: bigint,
  ): Record<L | H, bigint> {
    const low = this.wad(lowValue, `${at}.${lowKey}`);
    const high = this.wad(highValue, `${at}.${highKey}`);
    if (low === 0n) throw this.error(`${at}.${lowKey}`, "must be above 0");
    if (low >= high) throw this.error(`${at}.${lowKey}`, `must be below ${highKey}`);
    if (high > max)
      throw this.error(`${at}.${highKey}`, `at most ${formatEther(max)} (OracleRouter's bound)`);
    return { [lowKey]: low, [highKey]: high } as Record<L | H, bigint>;
  }

  /**
   * A mock's answer, read as the router reads it (scaled to WAD, rounded down), within [low, high]: outside
   * them every read is `PriceOutOfBounds`, and the first that needs one (listing a collateral prices its
   * token) stopped the deployment.
   */
  mockWithin(source: FeedSource, low: bigint, high: bigint, at: string): void {
    if (!("mock" in source)) return;
    const { decimals, answer } = source.mock;
    const value =
      decimals <= 18 ? answer * 10n ** BigInt(18 - decimals) : answer / 10n ** BigInt(decimals - 18);
    if (value < low || value > high)
      throw this.error(
        `${at}.mock.answer`,
        `${formatEther(value)} is outside [${formatEther(low)}, ${formatEther(high)}]`,
      );
  }

  address(value: unknown, at: string): string {
    try {
      return getAddress(this.string(value, at));
    } catch {
      throw this.error(at, "expected an address (checksummed or lower case)");
    }
  }

  accountRef(value: unknown, at: string): AccountRef {
    const s = this.string(value, at);
    if (s === "deployer" || s === "timelock") return s;
    const address = this.address(s, at);
    if (BigInt(address) === 0n) throw this.error(at, "the zero address: nobody would hold the role");
    return address;
  }

  /**
   * `value` as an object whose every key is one of `keys` (or a `$comment`): a misspelt key was read as
   * absent, so an optional setting was silently left out (review round 74, row 177).
   */
  fields(value: unknown, at: string, keys: readonly string[]): Json {
    const o = this.object(value, at);
    for (const key of Object.keys(o)) {
      if (!key.startsWith("$") && !keys.includes(key))
        throw this.error(at ? `${at}.${key}` : key, `unknown key (expected one of ${keys.join(", ")})`);
    }
    return o;
  }

  feedSource(o: Json, at: string): FeedSource {
    // With both, the mock won: a feed anyone may post to, where the config named Chainlink's (row 177).
    if (o.mock !== undefined && o.address !== undefined)
      throw this.error(at, 'give "address" or "mock", not both');
    if (o.mock !== undefined) {
      const m = this.fields(o.mock, `${at}.mock`, ["decimals", "answer"]);
      const decimals = this.int(m.decimals, `${at}.mock.decimals`);
      if (decimals > ROUTER_MAX_DECIMALS)
        throw this.error(`${at}.mock.decimals`, `at most ${ROUTER_MAX_DECIMALS} (OracleRouter.MAX_DECIMALS)`);
      return { mock: { decimals, answer: this.units(m.answer, decimals, `${at}.mock.answer`) } };
    }
    return { address: this.address(o.address, `${at}.address`) };
  }
}
