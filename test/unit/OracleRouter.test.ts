import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { IOracleRouter, MockV3Aggregator } from "../../typechain-types";
import {
  ORACLE_DECIMALS,
  addPriceFeed,
  addVolatilityFeed,
  assetId,
  deployMockFeed,
  deployOracleRouter,
  setFeedPrice,
  sourcesInput,
} from "../shared/oracles";

type AssetInput = IOracleRouter.AssetInputStruct;

const WAD = 10n ** 18n;
const HOUR = 3600;
const DAY = 86400;
const MAX_UINT120 = 2n ** 120n - 1n;
const ETH = assetId("ETH");

/** `value` (a decimal string) in 8-decimal feed units. */
function e8(value: string): bigint {
  return ethers.parseUnits(value, ORACLE_DECIMALS);
}

/** `value` (a decimal string) in WAD. */
function wad(value: string): bigint {
  return ethers.parseUnits(value, 18);
}

async function deployRouterFixture() {
  const [admin, stranger] = await ethers.getSigners();
  const manager = await ethers.deployContract("AccessManager", [admin.address]);
  const router = await deployOracleRouter(await manager.getAddress());
  return { admin, stranger, router };
}

/** ETH on three 8-decimal feeds at 2000, heartbeat 1 h, bounds [1, 1e6] USD, max deviation 5%. */
async function threeSourcesFixture() {
  const { router, stranger } = await deployRouterFixture();
  const feeds = [
    await deployMockFeed(ORACLE_DECIMALS, e8("2000")),
    await deployMockFeed(ORACLE_DECIMALS, e8("2000")),
    await deployMockFeed(ORACLE_DECIMALS, e8("2000")),
  ];
  await router.configureAsset(ETH, await sourcesInput(feeds, wad("0.05")));
  return { router, stranger, feeds };
}

/**
 * Posts a round on `feed` whose answer was last updated `age` seconds before the latest block, in a
 * block at that same time: views right after read it exactly `age` seconds old.
 */
async function setRoundWithAge(feed: MockV3Aggregator, roundId: number, answer: bigint, age: number) {
  const now = await time.latest();
  const updatedAt = now - age;
  await time.setNextBlockTimestamp(now);
  await feed.updateRoundData(roundId, answer, updatedAt, updatedAt);
  return updatedAt;
}

describe("OracleRouter", function () {
  describe("configureAsset", function () {
    it("stores a single source with its decimals and emits AssetConfigured", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await deployMockFeed(6, 1_000_000n);
      const input: AssetInput = {
        primary: await feed.getAddress(),
        primaryHeartbeat: 86400,
        secondaries: [],
        secondaryHeartbeats: [],
        minPrice: wad("0.9"),
        maxPrice: wad("1.1"),
        maxDeviation: 0n,
      };
      await expect(router.configureAsset(assetId("USDC"), input))
        .to.emit(router, "AssetConfigured")
        .withArgs(assetId("USDC"), await feed.getAddress(), 1n, wad("0.9"), wad("1.1"), 0n);

      const [sources, minPrice, maxPrice, maxDeviation] = await router.assetConfig(assetId("USDC"));
      expect(sources.map((s) => [s.aggregator, s.heartbeat, s.decimals])).to.deep.equal([
        [await feed.getAddress(), 86400n, 6n],
      ]);
      expect([minPrice, maxPrice, maxDeviation]).to.deep.equal([wad("0.9"), wad("1.1"), 0n]);
      expect(await router.hasPrice(assetId("USDC"))).to.equal(true);
      expect(await router.primaryFeed(assetId("USDC"))).to.equal(await feed.getAddress());
    });

    it("reports nothing for an unknown asset", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      expect(await router.hasPrice(ETH)).to.equal(false);
      expect(await router.primaryFeed(ETH)).to.equal(ethers.ZeroAddress);
      const [sources, minPrice, maxPrice, maxDeviation] = await router.assetConfig(ETH);
      expect(sources).to.deep.equal([]);
      expect([minPrice, maxPrice, maxDeviation]).to.deep.equal([0n, 0n, 0n]);
    });

    it("stores three sources, and replacing them with one clears the secondaries", async function () {
      const { router, feeds } = await loadFixture(threeSourcesFixture);
      const [sources, , , maxDeviation] = await router.assetConfig(ETH);
      expect(sources.map((s) => s.aggregator)).to.deep.equal(
        await Promise.all(feeds.map((feed) => feed.getAddress())),
      );
      expect(maxDeviation).to.equal(wad("0.05"));

      const single = await sourcesInput([feeds[2]], 0n);
      await expect(router.configureAsset(ETH, single))
        .to.emit(router, "AssetConfigured")
        .withArgs(ETH, await feeds[2].getAddress(), 1n, wad("1"), wad("1000000"), 0n);
      const [after] = await router.assetConfig(ETH);
      expect(after.map((s) => s.aggregator)).to.deep.equal([await feeds[2].getAddress()]);

      // A single source now: a broken former primary no longer matters.
      await feeds[0].updateAnswer(0);
      await setFeedPrice(feeds[2], "2100");
      expect(await router.getPrice(ETH)).to.equal(wad("2100"));
    });

    it("accepts the limits: heartbeat 2 days, 36 decimals, maxPrice 2^120-1, maxDeviation 50%", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const primary = await deployMockFeed(36, 10n ** 36n);
      const secondary = await deployMockFeed(8, e8("1"));
      await router.configureAsset(ETH, {
        primary: await primary.getAddress(),
        primaryHeartbeat: 2 * DAY,
        secondaries: [await secondary.getAddress()],
        secondaryHeartbeats: [2 * DAY],
        minPrice: 1n,
        maxPrice: MAX_UINT120,
        maxDeviation: wad("0.5"),
      });
      expect(await router.getPrice(ETH)).to.equal(wad("1"));
    });

    describe("reverts with InvalidConfig when", function () {
      async function invalidConfigFixture() {
        const { router } = await deployRouterFixture();
        const feeds = [
          await deployMockFeed(8, e8("2000")),
          await deployMockFeed(8, e8("2000")),
          await deployMockFeed(8, e8("2000")),
          await deployMockFeed(8, e8("2000")),
        ];
        const tooManyDecimals = await deployMockFeed(37, 1n);
        const valid = await sourcesInput(feeds.slice(0, 3), wad("0.05"));
        return { router, feeds, tooManyDecimals, valid };
      }

      type Fixture = Awaited<ReturnType<typeof invalidConfigFixture>>;
      const cases: [string, (f: Fixture) => Promise<AssetInput>][] = [
        ["the primary is the zero address", async ({ valid }) => ({ ...valid, primary: ethers.ZeroAddress })],
        ["the primary heartbeat is 0", async ({ valid }) => ({ ...valid, primaryHeartbeat: 0 })],
        [
          "a heartbeat exceeds 2 days",
          async ({ valid }) => ({ ...valid, secondaryHeartbeats: [HOUR, 2 * DAY + 1] }),
        ],
        ["a secondary heartbeat is 0", async ({ valid }) => ({ ...valid, secondaryHeartbeats: [0, HOUR] })],
        [
          "there are fewer secondary heartbeats than secondaries",
          async ({ valid }) => ({ ...valid, secondaryHeartbeats: [HOUR] }),
        ],
        [
          "there are three secondaries",
          async ({ valid, feeds }) => ({
            ...valid,
            secondaries: await Promise.all(feeds.slice(1).map((f) => f.getAddress())),
            secondaryHeartbeats: [HOUR, HOUR, HOUR],
          }),
        ],
        [
          "a secondary is the zero address",
          async ({ valid, feeds }) => ({
            ...valid,
            secondaries: [ethers.ZeroAddress, await feeds[2].getAddress()],
          }),
        ],
        [
          "the first secondary repeats the primary",
          async ({ valid, feeds }) => ({
            ...valid,
            secondaries: [await feeds[0].getAddress(), await feeds[2].getAddress()],
          }),
        ],
        [
          "the second secondary repeats the primary",
          async ({ valid, feeds }) => ({
            ...valid,
            secondaries: [await feeds[1].getAddress(), await feeds[0].getAddress()],
          }),
        ],
        [
          "the second secondary repeats the first",
          async ({ valid, feeds }) => ({
            ...valid,
            secondaries: [await feeds[1].getAddress(), await feeds[1].getAddress()],
          }),
        ],
        [
          "a feed reports more than 36 decimals",
          async ({ valid, tooManyDecimals }) => ({ ...valid, primary: await tooManyDecimals.getAddress() }),
        ],
        ["minPrice is 0", async ({ valid }) => ({ ...valid, minPrice: 0n })],
        ["minPrice equals maxPrice", async ({ valid }) => ({ ...valid, minPrice: wad("1000000") })],
        ["minPrice exceeds maxPrice", async ({ valid }) => ({ ...valid, minPrice: wad("1000001") })],
        ["maxPrice exceeds 2^120 - 1", async ({ valid }) => ({ ...valid, maxPrice: MAX_UINT120 + 1n })],
        ["maxDeviation is 0 with secondaries", async ({ valid }) => ({ ...valid, maxDeviation: 0n })],
        ["maxDeviation exceeds 50%", async ({ valid }) => ({ ...valid, maxDeviation: wad("0.5") + 1n })],
        [
          "maxDeviation is set without secondaries",
          async ({ valid }) => ({
            ...valid,
            secondaries: [],
            secondaryHeartbeats: [],
            maxDeviation: wad("0.05"),
          }),
        ],
      ];

      for (const [condition, makeInput] of cases) {
        it(condition, async function () {
          const fixture = await loadFixture(invalidConfigFixture);
          await expect(
            fixture.router.configureAsset(ETH, await makeInput(fixture)),
          ).to.be.revertedWithCustomError(fixture.router, "InvalidConfig");
        });
      }

      it("(control) the unmodified input is accepted", async function () {
        const { router, valid } = await loadFixture(invalidConfigFixture);
        await expect(router.configureAsset(ETH, valid)).to.emit(router, "AssetConfigured");
      });
    });
  });

  describe("access control", function () {
    it("reverts with AccessManagedUnauthorized when a stranger configures an asset", async function () {
      const { router, stranger } = await loadFixture(deployRouterFixture);
      const feed = await deployMockFeed(8, e8("1"));
      await expect(router.connect(stranger).configureAsset(ETH, await sourcesInput([feed], 0n)))
        .to.be.revertedWithCustomError(router, "AccessManagedUnauthorized")
        .withArgs(stranger.address);
    });

    it("reverts with AccessManagedUnauthorized when a stranger configures a volatility feed", async function () {
      const { router, stranger } = await loadFixture(deployRouterFixture);
      const feed = await deployMockFeed(8, e8("0.8"));
      await expect(
        router
          .connect(stranger)
          .configureVolatilityFeed(ETH, await feed.getAddress(), HOUR, wad("0.01"), wad("5")),
      )
        .to.be.revertedWithCustomError(router, "AccessManagedUnauthorized")
        .withArgs(stranger.address);
    });

    it("reverts with AccessManagedUnauthorized when a stranger configures the sequencer feed", async function () {
      const { router, stranger } = await loadFixture(deployRouterFixture);
      const feed = await deployMockFeed(0, 0n);
      await expect(router.connect(stranger).configureSequencerFeed(await feed.getAddress(), HOUR))
        .to.be.revertedWithCustomError(router, "AccessManagedUnauthorized")
        .withArgs(stranger.address);
    });
  });

  describe("getPrice with one source", function () {
    it("scales 8-, 18-, 6- and 0-decimal feeds to WAD exactly", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      await addPriceFeed(router, "ETH", "3000.12345678");
      await addPriceFeed(router, "WSTETH", "3500.000000000000000001", { decimals: 18 });
      await addPriceFeed(router, "USDC", "0.999871", { decimals: 6 });
      await addPriceFeed(router, "IDX", 42, { decimals: 0 });
      expect(await router.getPrice(ETH)).to.equal(3000_12345678n * 10n ** 10n); // 300012345678e-8 · 1e18
      expect(await router.getPrice(assetId("WSTETH"))).to.equal(3500n * WAD + 1n);
      expect(await router.getPrice(assetId("USDC"))).to.equal(999871n * 10n ** 12n); // 999871e-6 · 1e18
      expect(await router.getPrice(assetId("IDX"))).to.equal(42n * WAD);
    });

    it("scales a 36-decimal feed to WAD rounding down", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      // 1.234567890123456789999999999999999999 USD: 36 decimals, the last 18 are dropped.
      await addPriceFeed(router, "ETH", "1.234567890123456789999999999999999999", { decimals: 36 });
      expect(await router.getPrice(ETH)).to.equal(1_234567890123456789n);
    });

    it("follows new answers", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addPriceFeed(router, "ETH", 2000);
      await setFeedPrice(feed, "1999.99999999");
      expect(await router.getPrice(ETH)).to.equal(wad("1999.99999999"));
    });

    it("reverts with UnknownAsset for an asset without sources", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      await expect(router.getPrice(ETH)).to.be.revertedWithCustomError(router, "UnknownAsset").withArgs(ETH);
    });

    it("reverts with InvalidPrice when the answer is zero", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addPriceFeed(router, "ETH", 2000);
      await feed.updateAnswer(0);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "InvalidPrice")
        .withArgs(await feed.getAddress(), 0n);
    });

    it("reverts with InvalidPrice when the answer is negative", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addPriceFeed(router, "ETH", 2000);
      await feed.updateAnswer(-1);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "InvalidPrice")
        .withArgs(await feed.getAddress(), -1n);
    });

    it("reverts with IncompleteRound when updatedAt is 0", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addPriceFeed(router, "ETH", 2000);
      await feed.updateRoundData(5, e8("2000"), 0, 0);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "IncompleteRound")
        .withArgs(await feed.getAddress(), 5n);
    });

    it("reverts with IncompleteRound when updatedAt is in the future", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addPriceFeed(router, "ETH", 2000);
      await setRoundWithAge(feed, 6, e8("2000"), -1);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "IncompleteRound")
        .withArgs(await feed.getAddress(), 6n);
    });

    it("reverts with IncompleteRound when answeredInRound < roundId", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await ethers.deployContract("ConfigurableAggregatorMock", [8]);
      const now = await time.latest();
      await feed.setRound(7, e8("2000"), now, now, 6);
      await router.configureAsset(ETH, await sourcesInput([feed]));
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "IncompleteRound")
        .withArgs(await feed.getAddress(), 7n);
      await feed.setRound(7, e8("2000"), now, now, 7);
      expect(await router.getPrice(ETH)).to.equal(wad("2000"));
    });

    it("reverts with StalePrice when the answer is older than the heartbeat, and accepts it at exactly the heartbeat", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addPriceFeed(router, "ETH", 2000, { heartbeat: HOUR });
      await setRoundWithAge(feed, 2, e8("2001"), HOUR);
      expect(await router.getPrice(ETH)).to.equal(wad("2001"));
      const updatedAt = await setRoundWithAge(feed, 3, e8("2002"), HOUR + 1);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "StalePrice")
        .withArgs(await feed.getAddress(), updatedAt, HOUR);
    });

    it("reverts with StalePrice once time passes the heartbeat without an update", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addPriceFeed(router, "ETH", 2000, { heartbeat: 600 });
      const [, , , updatedAt] = await feed.latestRoundData();
      await time.increaseTo(updatedAt + 601n);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "StalePrice")
        .withArgs(await feed.getAddress(), updatedAt, 600n);
    });

    it("reverts with PriceOutOfBounds below minPrice and above maxPrice, and accepts the bounds themselves", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addPriceFeed(router, "ETH", 2000, { minPrice: wad("100"), maxPrice: wad("10000") });
      await setFeedPrice(feed, "100");
      expect(await router.getPrice(ETH)).to.equal(wad("100"));
      await setFeedPrice(feed, "10000");
      expect(await router.getPrice(ETH)).to.equal(wad("10000"));
      await setFeedPrice(feed, "99.99999999");
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "PriceOutOfBounds")
        .withArgs(ETH, wad("99.99999999"), wad("100"), wad("10000"));
      await setFeedPrice(feed, "10000.00000001");
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "PriceOutOfBounds")
        .withArgs(ETH, wad("10000.00000001"), wad("100"), wad("10000"));
    });

    it("reverts with PriceOutOfBounds (saturated price) when scaling an absurd answer would overflow", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addPriceFeed(router, "ETH", 2000, { minPrice: wad("100"), maxPrice: wad("10000") });
      await feed.updateAnswer(ethers.MaxInt256); // · 1e10 overflows uint256
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "PriceOutOfBounds")
        .withArgs(ETH, ethers.MaxUint256, wad("100"), wad("10000"));
    });

    it("reverts with SourceUnavailable when the feed reverts", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await ethers.deployContract("ConfigurableAggregatorMock", [8]);
      const now = await time.latest();
      await feed.setRound(1, e8("2000"), now, now, 1);
      await router.configureAsset(ETH, await sourcesInput([feed], 0n));
      await feed.setBroken(true);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "SourceUnavailable")
        .withArgs(await feed.getAddress());
    });
  });

  describe("getPrice with two sources", function () {
    async function twoSourcesFixture() {
      const { router } = await deployRouterFixture();
      const primary = await deployMockFeed(8, e8("2000"));
      const secondary = await deployMockFeed(18, wad("2000"));
      await router.configureAsset(ETH, await sourcesInput([primary, secondary], wad("0.02")));
      return { router, primary, secondary };
    }

    it("returns the primary's price when the sources are within maxDeviation", async function () {
      const { router, secondary } = await loadFixture(twoSourcesFixture);
      // |2000 − 2040| / min(2000, 2040) = 40 / 2000 = 2% = maxDeviation: accepted.
      await setFeedPrice(secondary, "2040");
      expect(await router.getPrice(ETH)).to.equal(wad("2000"));
    });

    it("measures the deviation against the lower price", async function () {
      const { router, primary } = await loadFixture(twoSourcesFixture);
      // Primary 2040, secondary 2000: 40 / 2000 = 2%: accepted, and the primary's price is returned.
      await setFeedPrice(primary, "2040");
      expect(await router.getPrice(ETH)).to.equal(wad("2040"));
      // 2040.00000001: 40.00000001 / 2000 > 2% (it would pass against the higher price: 40/2040 ≈ 1.96%).
      await setFeedPrice(primary, "2040.00000001");
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "PriceDeviation")
        .withArgs(ETH, wad("2040.00000001"), wad("2000"));
    });

    it("reverts with PriceDeviation when the sources differ by more than maxDeviation", async function () {
      const { router, secondary } = await loadFixture(twoSourcesFixture);
      // |2000 − 2040.000000000000000001| / 2000 = 2% + 5e-22: rejected.
      await setFeedPrice(secondary, "2040.000000000000000001");
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "PriceDeviation")
        .withArgs(ETH, wad("2000"), wad("2040") + 1n);
    });

    it("fails closed with the secondary's error when only the secondary fails", async function () {
      const { router, secondary } = await loadFixture(twoSourcesFixture);
      const updatedAt = await setRoundWithAge(secondary, 9, wad("2000"), HOUR + 1);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "StalePrice")
        .withArgs(await secondary.getAddress(), updatedAt, HOUR);
    });

    it("fails closed with the primary's error when the primary fails", async function () {
      const { router, primary } = await loadFixture(twoSourcesFixture);
      await primary.updateAnswer(0);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "InvalidPrice")
        .withArgs(await primary.getAddress(), 0n);
    });
  });

  describe("getPrice with three sources", function () {
    const orderings: [string, string, string][] = [
      ["100", "101", "150"],
      ["100", "150", "101"],
      ["101", "100", "150"],
      ["101", "150", "100"],
      ["150", "100", "101"],
      ["150", "101", "100"],
    ];
    for (const prices of orderings) {
      it(`returns the median 101 of (${prices.join(", ")})`, async function () {
        const { router, feeds } = await loadFixture(threeSourcesFixture);
        for (let i = 0; i < 3; i++) await setFeedPrice(feeds[i], prices[i]);
        expect(await router.getPrice(ETH)).to.equal(wad("101"));
      });
    }

    it("returns the common price when two or three sources agree", async function () {
      const { router, feeds } = await loadFixture(threeSourcesFixture);
      expect(await router.getPrice(ETH)).to.equal(wad("2000"));
      await setFeedPrice(feeds[1], "2100");
      expect(await router.getPrice(ETH)).to.equal(wad("2000"));
    });

    it("drops a stale source and averages the other two", async function () {
      const { router, feeds } = await loadFixture(threeSourcesFixture);
      await setFeedPrice(feeds[0], "2010");
      await setRoundWithAge(feeds[1], 5, e8("5000"), HOUR + 1);
      // (2010 + 2000) / 2 = 2005
      expect(await router.getPrice(ETH)).to.equal(wad("2005"));
    });

    it("drops a reverting source and averages the other two", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const broken = await ethers.deployContract("ConfigurableAggregatorMock", [8]);
      const now = await time.latest();
      await broken.setRound(1, e8("2000"), now, now, 1);
      const a = await deployMockFeed(8, e8("2000"));
      const b = await deployMockFeed(8, e8("2001"));
      await router.configureAsset(ETH, await sourcesInput([broken, a, b], wad("0.05")));
      await broken.setBroken(true);
      // (2000 + 2001) / 2 = 2000.5
      expect(await router.getPrice(ETH)).to.equal(wad("2000.5"));
    });

    it("drops a source with a non-positive answer, an incomplete round or an out-of-bounds price", async function () {
      const { router, feeds } = await loadFixture(threeSourcesFixture);
      await setFeedPrice(feeds[2], "2002");
      await feeds[0].updateAnswer(-5);
      expect(await router.getPrice(ETH)).to.equal(wad("2001")); // (2000 + 2002) / 2
      await feeds[0].updateRoundData(9, e8("2000"), 0, 0);
      expect(await router.getPrice(ETH)).to.equal(wad("2001"));
      await setFeedPrice(feeds[0], "1000001"); // above maxPrice 1e6
      expect(await router.getPrice(ETH)).to.equal(wad("2001"));
    });

    it("rounds the average of two remaining sources down", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feeds = [
        await deployMockFeed(18, wad("100") + 1n),
        await deployMockFeed(18, wad("100") + 2n),
        await deployMockFeed(18, wad("100")),
      ];
      await router.configureAsset(ETH, await sourcesInput(feeds, wad("0.05")));
      await feeds[2].updateAnswer(0);
      // (100e18 + 1 + 100e18 + 2) / 2 = 100e18 + 1.5 → 100e18 + 1
      expect(await router.getPrice(ETH)).to.equal(wad("100") + 1n);
    });

    it("reverts with PriceDeviation when the two remaining sources differ by more than maxDeviation", async function () {
      const { router, feeds } = await loadFixture(threeSourcesFixture);
      await feeds[1].updateAnswer(0);
      // |2000 − 2100| / 2000 = 5% = maxDeviation: accepted, average 2050.
      await setFeedPrice(feeds[2], "2100");
      expect(await router.getPrice(ETH)).to.equal(wad("2050"));
      // |2000 − 2100.00000001| / 2000 > 5%: rejected.
      await setFeedPrice(feeds[2], "2100.00000001");
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "PriceDeviation")
        .withArgs(ETH, wad("2000"), wad("2100.00000001"));
    });

    it("reverts with NotEnoughValidSources when two sources fail", async function () {
      const { router, feeds } = await loadFixture(threeSourcesFixture);
      await feeds[0].updateAnswer(0);
      await setRoundWithAge(feeds[2], 4, e8("2000"), HOUR + 1);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "NotEnoughValidSources")
        .withArgs(ETH, 1n);
    });

    it("reverts with NotEnoughValidSources when all three sources fail", async function () {
      const { router, feeds } = await loadFixture(threeSourcesFixture);
      for (const feed of feeds) await feed.updateAnswer(0);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "NotEnoughValidSources")
        .withArgs(ETH, 0n);
    });
  });

  describe("sequencer check", function () {
    const GRACE = HOUR;

    async function sequencerFixture() {
      const { router, stranger } = await deployRouterFixture();
      const ethFeed = await addPriceFeed(router, "ETH", 2000);
      await addVolatilityFeed(router, "ETH", 0.8);
      const sequencer = await deployMockFeed(0, 0n);
      await router.configureSequencerFeed(await sequencer.getAddress(), GRACE);
      // Up for longer than the grace period.
      const startedAt = (await time.latest()) - GRACE - 1;
      await sequencer.updateRoundData(2, 0, startedAt, startedAt);
      return { router, stranger, sequencer, ethFeed };
    }

    it("is a no-op without a sequencer feed (L1)", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      await router.checkSequencer();
      expect(await router.sequencerConfig()).to.deep.equal([ethers.ZeroAddress, 0n]);
    });

    it("stores the feed and grace period and emits SequencerFeedConfigured", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const sequencer = await deployMockFeed(0, 0n);
      await expect(router.configureSequencerFeed(await sequencer.getAddress(), DAY))
        .to.emit(router, "SequencerFeedConfigured")
        .withArgs(await sequencer.getAddress(), DAY);
      expect(await router.sequencerConfig()).to.deep.equal([await sequencer.getAddress(), BigInt(DAY)]);
      // Back to L1.
      await router.configureSequencerFeed(ethers.ZeroAddress, 0);
      expect(await router.sequencerConfig()).to.deep.equal([ethers.ZeroAddress, 0n]);
    });

    it("passes when the sequencer has been up for longer than the grace period", async function () {
      const { router } = await loadFixture(sequencerFixture);
      await router.checkSequencer();
      expect(await router.getPrice(ETH)).to.equal(wad("2000"));
      expect(await router.getVolatility(ETH)).to.equal(wad("0.8"));
    });

    it("reverts with SequencerDown when the uptime feed answers 1", async function () {
      const { router, sequencer } = await loadFixture(sequencerFixture);
      const startedAt = (await time.latest()) - DAY;
      await sequencer.updateRoundData(3, 1, startedAt, startedAt);
      await expect(router.checkSequencer()).to.be.revertedWithCustomError(router, "SequencerDown");
      await expect(router.getPrice(ETH)).to.be.revertedWithCustomError(router, "SequencerDown");
      await expect(router.getVolatility(ETH)).to.be.revertedWithCustomError(router, "SequencerDown");
      await expect(router.getPriceAndVolatility(ETH)).to.be.revertedWithCustomError(router, "SequencerDown");
    });

    it("checks the sequencer before looking up the asset", async function () {
      const { router, sequencer } = await loadFixture(sequencerFixture);
      await sequencer.updateAnswer(1);
      await expect(router.getPrice(assetId("NOPE"))).to.be.revertedWithCustomError(router, "SequencerDown");
    });

    it("reverts with GracePeriodNotOver right after the sequencer comes back up, up to and including the grace period", async function () {
      const { router, sequencer, ethFeed } = await loadFixture(sequencerFixture);
      await sequencer.updateAnswer(0); // status round at the current block: startedAt = now
      const [, , startedAt] = await sequencer.latestRoundData();
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "GracePeriodNotOver")
        .withArgs(startedAt, GRACE);
      await time.increaseTo(startedAt + BigInt(GRACE)); // elapsed = grace: still not over
      await expect(router.checkSequencer())
        .to.be.revertedWithCustomError(router, "GracePeriodNotOver")
        .withArgs(startedAt, GRACE);
      await time.increaseTo(startedAt + BigInt(GRACE) + 1n); // elapsed = grace + 1: over
      await router.checkSequencer();
      await setFeedPrice(ethFeed, "2000"); // the grace period equals the price heartbeat
      expect(await router.getPrice(ETH)).to.equal(wad("2000"));
    });

    it("reverts with IncompleteRound when the uptime round has startedAt 0 (Arbitrum before the first status)", async function () {
      const { router, sequencer } = await loadFixture(sequencerFixture);
      await sequencer.updateRoundData(0, 0, 0, 0);
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "IncompleteRound")
        .withArgs(await sequencer.getAddress(), 0n);
    });

    it("reverts with IncompleteRound when the uptime round's startedAt is in the future", async function () {
      const { router, sequencer } = await loadFixture(sequencerFixture);
      const future = (await time.latest()) + 10;
      await sequencer.updateRoundData(4, 0, future, future);
      await expect(router.checkSequencer())
        .to.be.revertedWithCustomError(router, "IncompleteRound")
        .withArgs(await sequencer.getAddress(), 4n);
    });

    it("reverts with InvalidConfig for a feed without grace period, a grace period over 1 day, or a grace period without feed", async function () {
      const { router, sequencer } = await loadFixture(sequencerFixture);
      const feed = await sequencer.getAddress();
      await expect(router.configureSequencerFeed(feed, 0)).to.be.revertedWithCustomError(
        router,
        "InvalidConfig",
      );
      await expect(router.configureSequencerFeed(feed, DAY + 1)).to.be.revertedWithCustomError(
        router,
        "InvalidConfig",
      );
      await expect(router.configureSequencerFeed(ethers.ZeroAddress, 1)).to.be.revertedWithCustomError(
        router,
        "InvalidConfig",
      );
    });
  });

  describe("getPriceAndVolatilityOrZero", function () {
    it("reads a failed volatility feed as 0 beside a valid price, and a valid one as getVolatility does", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      await addPriceFeed(router, "ETH", "3000");
      const feed = await addVolatilityFeed(router, "ETH", "0.65", { heartbeat: 600 });
      expect(await router.getPriceAndVolatilityOrZero(ETH)).to.deep.equal([wad("3000"), wad("0.65")]);
      await setRoundWithAge(feed, 2, e8("0.65"), 601);
      await expect(router.getVolatility(ETH)).to.be.revertedWithCustomError(router, "StalePrice");
      expect(await router.getPriceAndVolatilityOrZero(ETH)).to.deep.equal([wad("3000"), 0n]);
      await setFeedPrice(feed, "5.00000001");
      expect(await router.getPriceAndVolatilityOrZero(ETH)).to.deep.equal([wad("3000"), 0n]);
    });

    it("reverts with UnknownAsset for an underlying without a volatility feed, and on a failed price", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const price = await addPriceFeed(router, "ETH", "3000");
      await expect(router.getPriceAndVolatilityOrZero(ETH))
        .to.be.revertedWithCustomError(router, "UnknownAsset")
        .withArgs(ETH);
      await addVolatilityFeed(router, "ETH", "0.65");
      await setRoundWithAge(price, 2, e8("3000"), 3 * HOUR);
      await expect(router.getPriceAndVolatilityOrZero(ETH)).to.be.revertedWithCustomError(
        router,
        "StalePrice",
      );
    });
  });

  describe("getVolatility", function () {
    it("returns the feed's annualised volatility in WAD and emits VolatilityFeedConfigured", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await deployMockFeed(8, e8("0.8"));
      await expect(router.configureVolatilityFeed(ETH, await feed.getAddress(), HOUR, wad("0.01"), wad("5")))
        .to.emit(router, "VolatilityFeedConfigured")
        .withArgs(ETH, await feed.getAddress(), HOUR, wad("0.01"), wad("5"));
      expect(await router.getVolatility(ETH)).to.equal(wad("0.8"));
      const [source, minVol, maxVol] = await router.volatilityConfig(ETH);
      expect([source.aggregator, source.heartbeat, source.decimals, minVol, maxVol]).to.deep.equal([
        await feed.getAddress(),
        BigInt(HOUR),
        8n,
        wad("0.01"),
        wad("5"),
      ]);
    });

    it("reverts with StalePrice when the volatility is older than its heartbeat", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addVolatilityFeed(router, "ETH", "0.65", { heartbeat: 600 });
      const updatedAt = await setRoundWithAge(feed, 2, e8("0.65"), 601);
      await expect(router.getVolatility(ETH))
        .to.be.revertedWithCustomError(router, "StalePrice")
        .withArgs(await feed.getAddress(), updatedAt, 600n);
    });

    it("reverts with PriceOutOfBounds (with the underlying) above maxVol and below minVol", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addVolatilityFeed(router, "ETH", 0.8);
      await setFeedPrice(feed, "5.00000001");
      await expect(router.getVolatility(ETH))
        .to.be.revertedWithCustomError(router, "PriceOutOfBounds")
        .withArgs(ETH, wad("5.00000001"), wad("0.01"), wad("5"));
      await setFeedPrice(feed, "0.00999999");
      await expect(router.getVolatility(ETH))
        .to.be.revertedWithCustomError(router, "PriceOutOfBounds")
        .withArgs(ETH, wad("0.00999999"), wad("0.01"), wad("5"));
    });

    it("reverts with InvalidPrice when the volatility is zero", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addVolatilityFeed(router, "ETH", 0.8);
      await feed.updateAnswer(0);
      await expect(router.getVolatility(ETH))
        .to.be.revertedWithCustomError(router, "InvalidPrice")
        .withArgs(await feed.getAddress(), 0n);
    });

    it("reverts with UnknownAsset for an underlying without a volatility feed", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      await addPriceFeed(router, "ETH", 2000); // a price is not a volatility
      await expect(router.getVolatility(ETH))
        .to.be.revertedWithCustomError(router, "UnknownAsset")
        .withArgs(ETH);
    });

    it("reverts with InvalidConfig for a missing feed, a bad heartbeat, bad bounds or too many decimals", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await (await deployMockFeed(8, e8("0.8"))).getAddress();
      const wide = await (await deployMockFeed(37, 1n)).getAddress();
      const invalid: [string, number, bigint, bigint][] = [
        [ethers.ZeroAddress, HOUR, wad("0.01"), wad("5")],
        [feed, 0, wad("0.01"), wad("5")],
        [feed, 2 * DAY + 1, wad("0.01"), wad("5")],
        [feed, HOUR, 0n, wad("5")],
        [feed, HOUR, wad("5"), wad("5")],
        [feed, HOUR, wad("0.01"), wad("10") + 1n],
        [wide, HOUR, wad("0.01"), wad("5")],
      ];
      for (const [aggregator, heartbeat, minVol, maxVol] of invalid) {
        await expect(
          router.configureVolatilityFeed(ETH, aggregator, heartbeat, minVol, maxVol),
        ).to.be.revertedWithCustomError(router, "InvalidConfig");
      }
      await router.configureVolatilityFeed(ETH, feed, 2 * DAY, 1n, wad("10")); // the limits are accepted
    });
  });

  describe("getPriceAndVolatility", function () {
    it("returns getPrice and getVolatility of the underlying", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      await addPriceFeed(router, "ETH", 2000);
      await addVolatilityFeed(router, "ETH", 0.8);
      expect(await router.getPriceAndVolatility(ETH)).to.deep.equal([wad("2000"), wad("0.8")]);
    });

    it("reverts with the price's error first, then the volatility's", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      await expect(router.getPriceAndVolatility(ETH))
        .to.be.revertedWithCustomError(router, "UnknownAsset")
        .withArgs(ETH);
      await addPriceFeed(router, "ETH", 2000);
      await expect(router.getPriceAndVolatility(ETH))
        .to.be.revertedWithCustomError(router, "UnknownAsset")
        .withArgs(ETH);
      const feed = await addVolatilityFeed(router, "ETH", 0.8, { heartbeat: 600 });
      const updatedAt = await setRoundWithAge(feed, 2, e8("0.8"), 601);
      await expect(router.getPriceAndVolatility(ETH))
        .to.be.revertedWithCustomError(router, "StalePrice")
        .withArgs(await feed.getAddress(), updatedAt, 600n);
    });
  });
  describe("getPriceAtRound", function () {
    async function roundsFixture() {
      const { router } = await deployRouterFixture();
      const feed = await addPriceFeed(router, "ETH", 2000, { minPrice: wad("100"), maxPrice: wad("10000") });
      await setFeedPrice(feed, "2100"); // round 2
      await time.increase(30 * DAY); // long past the heartbeat
      return { router, feed };
    }

    it("returns the primary's price and updatedAt at a past round, however old", async function () {
      const { router, feed } = await loadFixture(roundsFixture);
      const t1 = await feed.getTimestamp(1);
      const t2 = await feed.getTimestamp(2);
      expect(await router.getPriceAtRound(ETH, 1)).to.deep.equal([wad("2000"), t1]);
      expect(await router.getPriceAtRound(ETH, 2)).to.deep.equal([wad("2100"), t2]);
    });

    it("reads the primary only when secondaries are configured", async function () {
      const { router, feeds } = await loadFixture(threeSourcesFixture);
      await setFeedPrice(feeds[1], "3000");
      await setFeedPrice(feeds[0], "2001"); // primary round 2
      const t2 = await feeds[0].getTimestamp(2);
      expect(await router.getPriceAtRound(ETH, 2)).to.deep.equal([wad("2001"), t2]);
    });

    it("does not check the sequencer: a past round's value does not depend on when it is read", async function () {
      const { router, feed } = await loadFixture(roundsFixture);
      const sequencer = await deployMockFeed(0, 1n); // down
      await router.configureSequencerFeed(await sequencer.getAddress(), HOUR);
      expect(await router.getPriceAtRound(ETH, 1)).to.deep.equal([wad("2000"), await feed.getTimestamp(1)]);
    });

    it("reverts with IncompleteRound for a round that has not happened", async function () {
      const { router, feed } = await loadFixture(roundsFixture);
      await expect(router.getPriceAtRound(ETH, 3))
        .to.be.revertedWithCustomError(router, "IncompleteRound")
        .withArgs(await feed.getAddress(), 3n);
    });

    it("reverts with InvalidPrice for a round with a non-positive answer", async function () {
      const { router, feed } = await loadFixture(roundsFixture);
      const now = await time.latest();
      await feed.updateRoundData(3, -7, now, now);
      await expect(router.getPriceAtRound(ETH, 3))
        .to.be.revertedWithCustomError(router, "InvalidPrice")
        .withArgs(await feed.getAddress(), -7n);
    });

    it("reverts with PriceOutOfBounds for a round outside the bounds", async function () {
      const { router, feed } = await loadFixture(roundsFixture);
      const now = await time.latest();
      await feed.updateRoundData(3, e8("10001"), now, now);
      await expect(router.getPriceAtRound(ETH, 3))
        .to.be.revertedWithCustomError(router, "PriceOutOfBounds")
        .withArgs(ETH, wad("10001"), wad("100"), wad("10000"));
    });

    it("reverts with UnknownAsset for an asset without sources", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      await expect(router.getPriceAtRound(ETH, 1))
        .to.be.revertedWithCustomError(router, "UnknownAsset")
        .withArgs(ETH);
    });
  });

  describe("shared helpers (test/shared/oracles.ts)", function () {
    it("configure bounds of [price / 1000, price · 1000] and convert decimal numbers exactly", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      const feed = await addPriceFeed(router, "ETH", 0.1);
      expect(await feed.latestAnswer()).to.equal(10_000_000n); // 0.1 · 1e8
      const [sources, minPrice, maxPrice] = await router.assetConfig(ETH);
      expect([sources[0].heartbeat, minPrice, maxPrice]).to.deep.equal([3600n, wad("0.0001"), wad("100")]);
      expect(await router.getPrice(ETH)).to.equal(wad("0.1"));
    });

    it("refuse numbers in exponent form", async function () {
      const { router } = await loadFixture(deployRouterFixture);
      let message = "";
      await addPriceFeed(router, "ETH", 1e21).catch((e: Error) => (message = e.message));
      expect(message).to.equal("oracles: pass 1e+21 as a decimal string");
    });
  });
});
