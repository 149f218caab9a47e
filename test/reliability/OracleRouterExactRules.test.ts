/**
 * Rules of the oracle router no other test held (review round 94: small bugs put one at a time into
 * `OracleRouter`; the comment above each test names the mutant it catches, REPORT.md of the round).
 * Each test passes on the router as written and fails with its mutant in.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type {
  AggregatorProxyMock,
  IOracleRouter,
  MockV3Aggregator,
  OracleRouter,
} from "../../typechain-types";
import {
  ORACLE_DECIMALS,
  assetId,
  deployMockFeed,
  deployOracleRouter,
  sourcesInput,
} from "../shared/oracles";
import { wad } from "../shared/units";

type AssetInput = IOracleRouter.AssetInputStruct;

const HOUR = 3600;
const ETH = assetId("ETH");
const LUNA = assetId("LUNA");
const e8 = (value: string): bigint => ethers.parseUnits(value, ORACLE_DECIMALS);

async function routerFixture() {
  const [admin] = await ethers.getSigners();
  const manager = await ethers.deployContract("AccessManager", [admin.address]);
  const router = await deployOracleRouter(await manager.getAddress());
  return { router };
}

/**
 * ETH on a Chainlink-style proxy (`AggregatorProxyMock`) whose phase 1 is an 8-decimal aggregator at
 * 3,000; the router records decimals 8 with phase 1.
 */
async function proxyFixture() {
  const { router } = await routerFixture();
  const first = await deployMockFeed(8, e8("3000"));
  const proxy = await ethers.deployContract("AggregatorProxyMock", [await first.getAddress()]);
  await router.configureAsset(ETH, await sourcesInput([proxy]));
  return { router, proxy, first };
}

/** Confirms a new aggregator with `decimals` answering `priceUsd` behind `proxy` (the next phase). */
async function upgrade(
  proxy: AggregatorProxyMock,
  decimals: number,
  priceUsd: string,
): Promise<MockV3Aggregator> {
  const next = await deployMockFeed(decimals, ethers.parseUnits(priceUsd, decimals));
  await (await proxy.confirmAggregator(await next.getAddress())).wait();
  return next;
}

/**
 * Hand-assembled runtime code of a feed that is not a Chainlink proxy but answers like one, badly:
 * `aggregator()` and `phaseAggregators(uint16)` name 0x…dead (an address without code), `decimals()`
 * is 8, `latestRoundData()` is (1, 3000e8, block.timestamp, block.timestamp, 1) and `getRoundData(id)`
 * is (id, 3000e8, block.timestamp, block.timestamp, id); any other call reverts.
 */
const ODD_PROXY_CODE =
  "0x60003560e01c8063245a7bfc14603c578063c159730414603c578063313ce567146048578063feaf968c146053578063" +
  "9a6fc8f514607457600080fd5b61dead60005260206000f35b600860005260206000f35b60016000526445d964b8006020" +
  "524260405242606052600160805260a06000f35b6004356000526445d964b800602052426040524260605260043560805260" +
  "a06000f3";

/** ETH on the feed of `ODD_PROXY_CODE`, installed at 0x…f00d. */
async function oddProxy(router: OracleRouter) {
  const feed = ethers.getAddress("0x" + "f00d".padStart(40, "0"));
  await network.provider.send("hardhat_setCode", [feed, ODD_PROXY_CODE]);
  expect(await ethers.provider.getCode(ethers.getAddress("0x" + "dead".padStart(40, "0")))).to.equal("0x");
  return { feed, input: await sourcesInput([{ getAddress: async () => feed }]) };
}

/** The first round of `phase` behind a proxy: `(phase << 64) | 1`. */
const phaseStart = (phase: bigint): bigint => (phase << 64n) | 1n;

async function lunaBand(router: OracleRouter, minAnswer: bigint) {
  // 8 decimals, LUNA at 80; the aggregator accepts [minAnswer, 1,000,000].
  const feed = await ethers.deployContract("CircuitBreakerAggregatorMock", [
    8,
    e8("80"),
    minAnswer,
    e8("1000000"),
  ]);
  const input = (minPrice: bigint, maxPrice: bigint): AssetInput => ({
    primary: feed,
    primaryHeartbeat: HOUR,
    secondaries: [],
    secondaryHeartbeats: [],
    minPrice,
    maxPrice,
    maxDeviation: 0n,
  });
  return { router, feed, input };
}

describe("OracleRouter's exact rules", function () {
  describe("configureAsset", function () {
    // M15: AssetConfigured emitted maxDeviation 0 whatever was configured (every test emitted it for a
    // single source, where it is 0).
    it("emits AssetConfigured with the configured maxDeviation of a two-source asset", async function () {
      const { router } = await loadFixture(routerFixture);
      const primary = await deployMockFeed(8, e8("2000"));
      const secondary = await deployMockFeed(8, e8("2000"));
      await expect(
        router.configureAsset(ETH, {
          ...(await sourcesInput([primary])),
          secondaries: [await secondary.getAddress()],
          secondaryHeartbeats: [HOUR],
          maxDeviation: wad("0.03"),
        }),
      )
        .to.emit(router, "AssetConfigured")
        .withArgs(ETH, await primary.getAddress(), 2n, wad("1"), wad("1000000"), wad("0.03"));
    });
  });

  describe("the aggregator's circuit breaker at configuration", function () {
    // M77: `maxPrice + maxPrice / 10 >= ceiling` as `>`: a ceiling of exactly 1.1 × maxPrice accepted.
    it("refuses a maxPrice whose tenth reaches the ceiling exactly, and accepts one a wei below", async function () {
      const { router } = await loadFixture(routerFixture);
      const { input } = await lunaBand(router, e8("0.1"));
      // 909,090.909090909090909091 + its tenth (rounded down) = 1,000,000 exactly: the ceiling.
      const atCeiling = 909_090_909090909090909091n;
      expect(atCeiling + atCeiling / 10n).to.equal(wad("1000000"));
      await expect(router.configureAsset(LUNA, input(wad("0.2"), atCeiling))).to.be.revertedWithCustomError(
        router,
        "InvalidConfig",
      );
      await expect(router.configureAsset(LUNA, input(wad("0.2"), atCeiling - 1n))).to.emit(
        router,
        "AssetConfigured",
      );
    });

    it("refuses a minPrice of exactly 1.1 × the floor, and accepts one a wei above", async function () {
      const { router } = await loadFixture(routerFixture);
      const { input } = await lunaBand(router, e8("0.1"));
      await expect(
        router.configureAsset(LUNA, input(wad("0.11"), wad("80000"))),
      ).to.be.revertedWithCustomError(router, "InvalidConfig");
      await expect(router.configureAsset(LUNA, input(wad("0.11") + 1n, wad("80000")))).to.emit(
        router,
        "AssetConfigured",
      );
    });

    // M78: the floor scaled even when minAnswer is negative (uint256 of a negative int: every bound
    // refused). An aggregator with a negative floor has no floor to keep clear of.
    it("accepts any positive minPrice under an aggregator whose floor is negative", async function () {
      const { router } = await loadFixture(routerFixture);
      const { input, feed } = await lunaBand(router, -1n);
      await expect(router.configureAsset(LUNA, input(1n, wad("80000")))).to.emit(router, "AssetConfigured");
      expect(await router.getPrice(LUNA)).to.equal(wad("80"));
      await (await feed.updateAnswer(-1n)).wait();
      await expect(router.getPrice(LUNA))
        .to.be.revertedWithCustomError(router, "InvalidPrice")
        .withArgs(await feed.getAddress(), -1n);
    });

    // M96: `maxAnswer <= 0` dropped: a negative ceiling, read as a uint256, saturates the scaled band
    // and lets any maxPrice through under an aggregator that can never post a positive answer.
    it("refuses any bounds under an aggregator whose ceiling is not positive", async function () {
      const { router } = await loadFixture(routerFixture);
      for (const maxAnswer of [-1n, 0n]) {
        const feed = await ethers.deployContract("CircuitBreakerAggregatorMock", [
          8,
          e8("80"),
          -e8("2"),
          maxAnswer,
        ]);
        await expect(
          router.configureAsset(LUNA, {
            ...(await sourcesInput([feed])),
            minPrice: 1n,
            maxPrice: wad("80000"),
          }),
        ).to.be.revertedWithCustomError(router, "InvalidConfig");
      }
    });

    // M80: the code check on the proxy's aggregator dropped: `minAnswer()` on an address without code
    // returns nothing, its decoding reverts outside the try, and configuration fails.
    it("configures a feed whose aggregator() names an address without code as a feed without a band", async function () {
      const { router } = await loadFixture(routerFixture);
      const { input } = await oddProxy(router);
      await expect(router.configureAsset(ETH, input)).to.emit(router, "AssetConfigured");
      expect(await router.getPrice(ETH)).to.equal(wad("3000"));
    });
  });

  describe("decimals by phase", function () {
    // M79 (the phase recorded as 0), M104 (recorded as `roundId >> 65`), M99 (compared as `roundId >> 63`):
    // every round of a proxy read the feed's decimals() again. A round of the recorded phase is scaled
    // with the recorded decimals, whatever decimals() says now.
    it("scales a round of the recorded phase with the recorded decimals, without reading decimals() again", async function () {
      const { router, first } = await loadFixture(proxyFixture);
      const [sources] = await router.assetConfig(ETH);
      expect([sources[0].decimals, sources[0].phaseId]).to.deep.equal([8n, 1n]);
      // The aggregator now claims 10 decimals (slot 0 of MockV3Aggregator), its answer unchanged.
      await network.provider.send("hardhat_setStorageAt", [
        await first.getAddress(),
        "0x0",
        ethers.toBeHex(10, 32),
      ]);
      expect(await router.getPrice(ETH)).to.equal(wad("3000"));
    });

    // M66 (`live < MAX_DECIMALS`), M67 (no bound on the live decimals), M92 (an unreadable live
    // decimals read with the recorded ones).
    it("reads a later phase in up to 36 decimals, and refuses 37 as SourceUnavailable", async function () {
      const { router, proxy } = await loadFixture(proxyFixture);
      await upgrade(proxy, 36, "3100");
      expect(await router.getPrice(ETH)).to.equal(wad("3100"));
      await upgrade(proxy, 37, "3200");
      await expect(router.getPrice(ETH))
        .to.be.revertedWithCustomError(router, "SourceUnavailable")
        .withArgs(await proxy.getAddress());
    });

    // M70 (`phaseDecimals < MAX_DECIMALS`) and M71 (a phase aggregator with unreadable decimals read
    // with the current aggregator's instead).
    it("scales an older phase's round in that phase's decimals up to 36, and refuses one of 37 though the current phase reads", async function () {
      const { router, proxy } = await loadFixture(proxyFixture);
      await upgrade(proxy, 36, "3300"); // phase 2
      await upgrade(proxy, 37, "3400"); // phase 3
      await upgrade(proxy, 8, "3500"); // phase 4, current
      expect(await router.getPrice(ETH)).to.equal(wad("3500"));
      const [price] = await router.getPriceAtRound(ETH, phaseStart(2n));
      expect(price).to.equal(wad("3300"));
      await expect(router.getPriceAtRound(ETH, phaseStart(3n)))
        .to.be.revertedWithCustomError(router, "SourceUnavailable")
        .withArgs(await proxy.getAddress());
    });

    // M69: the code check on an older phase's aggregator dropped: decimals() of an address without code
    // returns nothing, and its decoding reverts without a reason instead of SourceUnavailable.
    it("refuses a past round whose phase aggregator has no code as SourceUnavailable", async function () {
      const { router } = await loadFixture(routerFixture);
      const { feed, input } = await oddProxy(router);
      await router.configureAsset(ETH, input);
      const [price] = await router.getPriceAtRound(ETH, 1n); // the recorded phase (0): recorded decimals
      expect(price).to.equal(wad("3000"));
      await expect(router.getPriceAtRound(ETH, phaseStart(2n)))
        .to.be.revertedWithCustomError(router, "SourceUnavailable")
        .withArgs(feed);
    });
  });

  describe("getPriceAndVolatilityOrZero", function () {
    // M95 (and M102 in getPriceAndVolatility): the volatility feed looked up before the price. An
    // underlying with a failed price and no volatility feed answered UnknownAsset, where
    // getPriceAndVolatility (its documented equal) answers the price's error.
    it("reverts with the price's error before looking up the volatility feed, as getPriceAndVolatility does", async function () {
      const { router } = await loadFixture(routerFixture);
      const feed = await deployMockFeed(8, e8("2000"));
      await router.configureAsset(ETH, await sourcesInput([feed]));
      await expect(router.getPriceAndVolatilityOrZero(ETH))
        .to.be.revertedWithCustomError(router, "UnknownAsset")
        .withArgs(ETH);
      await (await feed.updateAnswer(0n)).wait();
      for (const read of [router.getPriceAndVolatility, router.getPriceAndVolatilityOrZero]) {
        await expect(read(ETH))
          .to.be.revertedWithCustomError(router, "InvalidPrice")
          .withArgs(await feed.getAddress(), 0n);
      }
    });
  });

  describe("sequencer", function () {
    /** ETH at 2000 behind a sequencer feed with a grace period of two hours, up for a day. */
    async function sequencerFixture() {
      const { router } = await routerFixture();
      const feed = await deployMockFeed(8, e8("2000"));
      await router.configureAsset(ETH, await sourcesInput([feed]));
      const sequencer = await deployMockFeed(0, 0n);
      await router.configureSequencerFeed(await sequencer.getAddress(), 2 * HOUR);
      const startedAt = (await time.latest()) - 86_400;
      await sequencer.updateRoundData(2, 0, startedAt, startedAt);
      return { router, sequencer, feed };
    }

    // M23: only an answer of 1 read as down.
    it("reads any nonzero uptime answer as down, not only 1", async function () {
      const { router, sequencer } = await loadFixture(sequencerFixture);
      expect(await router.getPrice(ETH)).to.equal(wad("2000"));
      const startedAt = (await time.latest()) - 86_400;
      await sequencer.updateRoundData(3, 2, startedAt, startedAt);
      await expect(router.getPrice(ETH)).to.be.revertedWithCustomError(router, "SequencerDown");
    });

    // M33: GracePeriodNotOver named one hour whatever the grace period (every test configured one hour).
    it("names the configured grace period in GracePeriodNotOver, and lets prices through one second after it", async function () {
      const { router, sequencer, feed } = await loadFixture(sequencerFixture);
      await sequencer.updateAnswer(0); // back up now
      const [, , startedAt] = await sequencer.latestRoundData();
      await time.increaseTo(startedAt + BigInt(2 * HOUR));
      await expect(router.checkSequencer())
        .to.be.revertedWithCustomError(router, "GracePeriodNotOver")
        .withArgs(startedAt, 2 * HOUR);
      await time.increaseTo(startedAt + BigInt(2 * HOUR) + 1n);
      await (await feed.updateAnswer(e8("2001"))).wait();
      expect(await router.getPrice(ETH)).to.equal(wad("2001"));
    });
  });
});
