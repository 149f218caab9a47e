/**
 * Review round 173: the testnet configs against the live Chainlink feeds they name, and the deploy parser
 * against OracleRouter's own bounds on a source.
 *
 * Row 680: the USDC / USD feeds of Sepolia, Arbitrum Sepolia and Base Sepolia have a 24-hour heartbeat, and
 * the configs gave them a staleness limit of exactly 24 hours. Chainlink starts the heartbeat round when the
 * heartbeat is reached and the round lands after it, so every read of USDC's price (the quote token's, in
 * every health check) reverted `StalePrice` from then until it landed, once a day.
 *
 * Row 681: the parser took feed settings the router refuses (`InvalidConfig`), so the deployment stopped at
 * the first `configure…` call after AccessManager, OracleRouter and the mock feeds were already deployed.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { parseEther } from "ethers";
import {
  HEARTBEAT_SLACK_DIVISOR,
  ROUTER_MAX_GRACE_PERIOD,
  ROUTER_MAX_HEARTBEAT,
  loadNetworkConfig,
  parseNetworkConfig,
} from "../../deploy/networkConfig";
import { ORACLE_DECIMALS, assetId, deployMockFeed, deployOracleRouter } from "../shared/oracles";
import { rawConfig } from "../shared/configs";

const TESTNETS = ["sepolia", "arbitrumSepolia", "baseSepolia"];
const DAY = 86_400;
/** Seconds the heartbeat round of the example takes to land after the heartbeat is reached. */
const LANDING = 30;
const ONE_USD = 10n ** BigInt(ORACLE_DECIMALS);

async function routerFixture() {
  const [admin] = await ethers.getSigners();
  const manager = await ethers.deployContract("AccessManager", [admin.address]);
  const router = await deployOracleRouter(await manager.getAddress());
  return { router };
}

/** Mines a block at `timestamp` and returns its number, for views read exactly then. */
async function blockAt(timestamp: number): Promise<number> {
  await time.increaseTo(timestamp);
  return ethers.provider.getBlockNumber();
}

/** The parser's message for `raw`, or "accepted". */
function refusal(raw: unknown): string {
  try {
    parseNetworkConfig(raw, "x.json");
  } catch (error) {
    return (error as Error).message;
  }
  return "accepted";
}

describe("Testnet feeds against Chainlink's heartbeats and the router's bounds (review round 173)", function () {
  it("row 680: reads USDC between its 24-hour feed's heartbeat and the round landing 30 s later, on every testnet config; stale after 25 h", async function () {
    const { router } = await loadFixture(routerFixture);
    for (const network of TESTNETS) {
      const usdc = loadNetworkConfig(network).feeds.USDC;
      expect([usdc.publishedHeartbeat, usdc.heartbeat], network).to.deep.equal([DAY, 90_000]);
      const feed = await deployMockFeed(ORACLE_DECIMALS, ONE_USD);
      const asset = assetId(`USDC_${network}`);
      await router.configureAsset(asset, {
        primary: feed,
        primaryHeartbeat: usdc.heartbeat,
        secondaries: [],
        secondaryHeartbeats: [],
        minPrice: usdc.minPrice,
        maxPrice: usdc.maxPrice,
        maxDeviation: 0n,
      });
      // A round at t; the heartbeat is reached at t + 86,400 and its round lands at t + 86,430.
      const t = (await time.latest()) + 10;
      await time.setNextBlockTimestamp(t);
      await feed.updateRoundData(2, ONE_USD, t, t);
      // With the 86,400 s limit these two reverted StalePrice(feed, t, 86400).
      for (const at of [t + DAY + 1, t + DAY + LANDING - 1]) {
        expect(
          await router.getPrice(asset, { blockTag: await blockAt(at) }),
          `${network} ${at - t}`,
        ).to.equal(parseEther("1"));
      }
      // The limit still ends: a round 25 h old is stale.
      const blockTag = await blockAt(t + usdc.heartbeat + 1);
      await expect(router.getPrice(asset, { blockTag }))
        .to.be.revertedWithCustomError(router, "StalePrice")
        .withArgs(await feed.getAddress(), t, usdc.heartbeat);
    }
  });

  it("row 680: refuses a staleness limit less than a 24th above the published heartbeat, naming it", function () {
    expect(HEARTBEAT_SLACK_DIVISOR).to.equal(24);
    const withUsdcHeartbeat = (heartbeat: number) => {
      const raw = rawConfig("sepolia");
      raw.feeds.USDC.heartbeat = heartbeat;
      return raw;
    };
    const message =
      "x.json: feeds.USDC.heartbeat: at least 90000 s, a 24th above the feed's publishedHeartbeat of 86400 s: the heartbeat round lands after the heartbeat is reached, and every read of USDC reverts StalePrice until it does";
    expect(refusal(withUsdcHeartbeat(86_400))).to.contain(message);
    expect(refusal(withUsdcHeartbeat(89_999))).to.contain(message);
    expect(refusal(withUsdcHeartbeat(90_000))).to.equal("accepted");
    // A one-hour feed needs 150 s of slack.
    const ethHourly = (heartbeat: number) => {
      const raw = rawConfig("arbitrumSepolia");
      Object.assign(raw.feeds.ETH, { publishedHeartbeat: 3_600, heartbeat });
      return raw;
    };
    expect(refusal(ethHourly(3_600))).to.contain("feeds.ETH.heartbeat: at least 3750 s");
    expect(refusal(ethHourly(3_750))).to.equal("accepted");
    // A mock has no published heartbeat.
    const mock = rawConfig("localhost");
    mock.feeds.USDC.publishedHeartbeat = 3_600;
    expect(refusal(mock)).to.contain("feeds.USDC.publishedHeartbeat: only for a feed given by address");
  });

  it("row 681: refuses the feed settings OracleRouter refuses, before anything is deployed", async function () {
    expect([ROUTER_MAX_HEARTBEAT, ROUTER_MAX_GRACE_PERIOD]).to.deep.equal([2 * DAY, DAY]);
    const cases: [string, (c: Record<string, any>) => void, string][] = [
      [
        "sepolia",
        (c) => (c.feeds.ETH.heartbeat = 2 * DAY + 1),
        "feeds.ETH.heartbeat: between 1 and 172800 s",
      ],
      ["sepolia", (c) => (c.feeds.ETH.heartbeat = 0), "feeds.ETH.heartbeat: between 1 and 172800 s"],
      [
        "sepolia",
        (c) => (c.volatilityFeeds.BTC.heartbeat = 2 * DAY + 1),
        "volatilityFeeds.BTC.heartbeat: between 1 and 172800 s (OracleRouter.MAX_HEARTBEAT)",
      ],
      ["sepolia", (c) => (c.feeds.BTC.minPrice = "0"), "feeds.BTC.minPrice: must be above 0"],
      [
        "sepolia",
        (c) => (c.feeds.BTC.minPrice = c.feeds.BTC.maxPrice),
        "feeds.BTC.minPrice: must be below maxPrice",
      ],
      [
        "sepolia",
        (c) => (c.feeds.BTC.maxPrice = "2000000000000000000"),
        "feeds.BTC.maxPrice: at most 1329227995784915872.903807060280344575",
      ],
      ["sepolia", (c) => (c.volatilityFeeds.ETH.minVol = "0"), "volatilityFeeds.ETH.minVol: must be above 0"],
      [
        "sepolia",
        (c) => (c.volatilityFeeds.ETH.minVol = "5"),
        "volatilityFeeds.ETH.minVol: must be below maxVol",
      ],
      [
        "sepolia",
        (c) => (c.volatilityFeeds.ETH.maxVol = "10.01"),
        "volatilityFeeds.ETH.maxVol: at most 10.0",
      ],
      [
        "arbitrumSepolia",
        (c) => (c.sequencerUptimeFeed.gracePeriod = 0),
        "sequencerUptimeFeed.gracePeriod: between 1 and 86400 s (OracleRouter.MAX_GRACE_PERIOD)",
      ],
      [
        "baseSepolia",
        (c) =>
          (c.sequencerUptimeFeed = { address: c.sequencerUptimeFeed.mainnetAddress, gracePeriod: DAY + 1 }),
        "sequencerUptimeFeed.gracePeriod: between 1 and 86400 s",
      ],
      [
        "localhost",
        (c) => (c.feeds.ETH.mock = { decimals: 37, answer: "3000" }),
        "feeds.ETH.mock.decimals: at most 36 (OracleRouter.MAX_DECIMALS)",
      ],
      // A mock outside its bounds: listing WETH prices ETH, PriceOutOfBounds midway through the deployment.
      [
        "localhost",
        (c) => (c.feeds.ETH.mock.answer = "2"),
        "feeds.ETH.mock.answer: 2.0 is outside [3.0, 3000000.0]",
      ],
      [
        "localhost",
        (c) => (c.volatilityFeeds.BTC.mock.answer = "6"),
        "volatilityFeeds.BTC.mock.answer: 6.0 is outside [0.01, 5.0]",
      ],
    ];
    for (const [network, mutate, message] of cases) {
      const raw = rawConfig(network);
      mutate(raw);
      expect(refusal(raw), message).to.contain(message);
    }
    // The edges the router takes are accepted.
    const edges = rawConfig("sepolia");
    edges.feeds.ETH.heartbeat = 2 * DAY;
    edges.volatilityFeeds.ETH.maxVol = "10";
    expect(refusal(edges)).to.equal("accepted");

    // What the deployment met instead: InvalidConfig from the router, after it and the mocks were deployed.
    const { router } = await loadFixture(routerFixture);
    const feed = await deployMockFeed(ORACLE_DECIMALS, 3_000n * ONE_USD);
    const input = {
      primary: feed,
      primaryHeartbeat: 2 * DAY + 1,
      secondaries: [],
      secondaryHeartbeats: [],
      minPrice: parseEther("3"),
      maxPrice: parseEther("3000000"),
      maxDeviation: 0n,
    };
    await expect(router.configureAsset(assetId("ETH"), input)).to.be.revertedWithCustomError(
      router,
      "InvalidConfig",
    );
    await expect(
      router.configureVolatilityFeed(assetId("ETH"), feed, DAY, parseEther("0.01"), parseEther("10.01")),
    ).to.be.revertedWithCustomError(router, "InvalidConfig");
    await expect(router.configureSequencerFeed(feed, DAY + 1)).to.be.revertedWithCustomError(
      router,
      "InvalidConfig",
    );
    const deep = await deployMockFeed(37, 3_000n * 10n ** 37n);
    await expect(
      router.configureAsset(assetId("ETH"), { ...input, primary: deep, primaryHeartbeat: DAY }),
    ).to.be.revertedWithCustomError(router, "InvalidConfig");
  });
});
