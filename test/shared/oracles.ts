import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { IOracleRouter, MockV3Aggregator, OracleRouter } from "../../typechain-types";

/** Decimals of the mock USD price and volatility feeds (as Chainlink's USD feeds). */
export const ORACLE_DECIMALS = 8;

const DEFAULT_HEARTBEAT = 3600;
const WAD_DECIMALS = 18;

/** The router's id of an asset: the symbol as a bytes32 string, e.g. assetId("ETH"). */
export function assetId(symbol: string): string {
  return ethers.encodeBytes32String(symbol);
}

/**
 * A `configureAsset` input on `feeds` in order (primary first), each with a one-hour heartbeat, bounds
 * [1, 1,000,000] USD and `maxDeviation` (0: a single source needs none).
 */
export async function sourcesInput(
  feeds: { getAddress(): Promise<string> }[],
  maxDeviation = 0n,
): Promise<IOracleRouter.AssetInputStruct> {
  const [primary, ...secondaries] = await Promise.all(feeds.map((feed) => feed.getAddress()));
  return {
    primary,
    primaryHeartbeat: DEFAULT_HEARTBEAT,
    secondaries,
    secondaryHeartbeats: secondaries.map(() => DEFAULT_HEARTBEAT),
    minPrice: 10n ** 18n,
    maxPrice: 10n ** 24n,
    maxDeviation,
  };
}

/**
 * The timelock's `configureAsset` input that swaps `asset`'s primary to `feed` alone (one-hour heartbeat,
 * no secondaries), keeping the bounds it has on `router`: a primary-feed swap (review round 162).
 */
export async function primarySwapInput(
  router: OracleRouter,
  asset: string,
  feed: { getAddress(): Promise<string> },
): Promise<IOracleRouter.AssetInputStruct> {
  const [current, primary] = await Promise.all([router.assetConfig(asset), feed.getAddress()]);
  return {
    primary,
    primaryHeartbeat: DEFAULT_HEARTBEAT,
    secondaries: [],
    secondaryHeartbeats: [],
    minPrice: current.minPrice,
    maxPrice: current.maxPrice,
    maxDeviation: 0n,
  };
}

/** Deploys an OracleRouter governed by `authority` (an AccessManager), without a sequencer feed. */
export async function deployOracleRouter(authority: string): Promise<OracleRouter> {
  const router = await ethers.deployContract("OracleRouter", [authority]);
  await router.waitForDeployment();
  return router;
}

/**
 * Deploys a MockV3Aggregator with `decimals` (default 8) answering `priceUsd`, and configures it as
 * the single source of `symbol` with `heartbeat` (default 3600 s) and bounds [price/1000, price*1000]
 * in WAD (or the given ones). The router's runner must be allowed to call `configureAsset`.
 */
export async function addPriceFeed(
  router: OracleRouter,
  symbol: string,
  priceUsd: number | string,
  opts: { decimals?: number; heartbeat?: number; minPrice?: bigint; maxPrice?: bigint } = {},
): Promise<MockV3Aggregator> {
  const decimals = opts.decimals ?? ORACLE_DECIMALS;
  const answer = ethers.parseUnits(toDecimalString(priceUsd), decimals);
  const feed = await deployMockFeed(decimals, answer);
  // The router's scaling: to 18 decimals, rounding down.
  const priceWad =
    decimals <= WAD_DECIMALS
      ? answer * 10n ** BigInt(WAD_DECIMALS - decimals)
      : answer / 10n ** BigInt(decimals - WAD_DECIMALS);
  const minPrice = opts.minPrice ?? (priceWad / 1000n > 0n ? priceWad / 1000n : 1n);
  const maxPrice = opts.maxPrice ?? priceWad * 1000n;
  await (
    await router.configureAsset(assetId(symbol), {
      primary: await feed.getAddress(),
      primaryHeartbeat: opts.heartbeat ?? DEFAULT_HEARTBEAT,
      secondaries: [],
      secondaryHeartbeats: [],
      minPrice,
      maxPrice,
      maxDeviation: 0n,
    })
  ).wait();
  return feed;
}

/**
 * Deploys an 8-decimal MockV3Aggregator answering the annualised volatility `vol` (a fraction: 0.8 =
 * 80%) and configures it as the volatility feed of `underlying` with bounds [0.01, 5] (WAD).
 */
export async function addVolatilityFeed(
  router: OracleRouter,
  underlying: string,
  vol: number | string,
  opts: { heartbeat?: number } = {},
): Promise<MockV3Aggregator> {
  const feed = await deployMockFeed(
    ORACLE_DECIMALS,
    ethers.parseUnits(toDecimalString(vol), ORACLE_DECIMALS),
  );
  await (
    await router.configureVolatilityFeed(
      assetId(underlying),
      await feed.getAddress(),
      opts.heartbeat ?? DEFAULT_HEARTBEAT,
      ethers.parseEther("0.01"),
      ethers.parseEther("5"),
    )
  ).wait();
  return feed;
}

/** Posts a new round answering `priceUsd`, scaled exactly to the feed's decimals. */
export async function setFeedPrice(feed: MockV3Aggregator, priceUsd: number | string): Promise<void> {
  const decimals = Number(await feed.decimals());
  await (await feed.updateAnswer(ethers.parseUnits(toDecimalString(priceUsd), decimals))).wait();
}

/** Deploys a MockV3Aggregator with `decimals` whose first round answers `answer` (raw units). */
export async function deployMockFeed(decimals: number, answer: bigint): Promise<MockV3Aggregator> {
  const feed = await ethers.deployContract("MockV3Aggregator", [decimals, answer]);
  await feed.waitForDeployment();
  return feed;
}

/**
 * A number's shortest round-trip decimal form is the literal the caller wrote (e.g. 0.1 -> "0.1"),
 * so it converts exactly; exponent forms (1e21, 1e-7) are refused rather than guessed.
 */
function toDecimalString(value: number | string): string {
  if (typeof value === "string") return value;
  const text = String(value);
  if (!Number.isFinite(value) || /e/i.test(text)) {
    throw new Error(`oracles: pass ${text} as a decimal string`);
  }
  return text;
}

/** A sequencer-uptime feed (Chainlink's: a round per status change, answer 0 up, 1 down). */
export interface Sequencer {
  feed: MockV3Aggregator;
}

/** The grace period `configureSequencer` gives the router, in seconds. */
export const SEQUENCER_GRACE = 3_600n;

/**
 * Configures a fresh L2 sequencer-uptime feed on `router` (grace period one hour) answering `status`
 * (0 up, 1 down) since `sinceSeconds` ago: down, up but still in its grace period, or up long since.
 * Its first round (the mock's constructor) is rewritten to the other status a day before, as the
 * previous status change a real feed would show.
 */
export async function configureSequencer(
  router: OracleRouter,
  status: 0 | 1,
  sinceSeconds: bigint,
): Promise<Sequencer> {
  const now = BigInt(await time.latest());
  const since = now - sinceSeconds;
  const feed = await deployMockFeed(0, 0n);
  await (await feed.updateRoundData(1, 1 - status, since - 86_400n, since - 86_400n)).wait();
  await (await feed.updateRoundData(2, status, since, since)).wait();
  await (await router.configureSequencerFeed(feed, SEQUENCER_GRACE)).wait();
  return { feed };
}

/**
 * Posts the sequencer's new `status` (0 up, 1 down) as the feed's next round, in a block at `at`: its
 * `startedAt`. The round id comes from the chain, so a fixture's snapshot cannot skip one.
 */
export async function setSequencerStatus(seq: Sequencer, status: 0 | 1, at: bigint): Promise<void> {
  await postSequencerRound(seq.feed, (await seq.feed.latestRound()) + 1n, status, at);
}

/**
 * Posts uptime-feed round `round` answering `status`, dated `startedAt`, in a block at `at` (the date by
 * default; a status message can be dated before or after the L2 block that records it).
 */
export async function postSequencerRound(
  feed: MockV3Aggregator,
  round: bigint,
  status: 0 | 1,
  startedAt: bigint,
  at = startedAt,
): Promise<void> {
  await time.setNextBlockTimestamp(at);
  await (await feed.updateRoundData(round, status, startedAt, startedAt)).wait();
}
