import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { DEFAULT_RISK_PARAMS, MarginMode, WAD, openAccount, wad } from "../shared/system";
import { addPriceFeed, addVolatilityFeed, assetId, deployMockFeed } from "../shared/oracles";
import { DAY, DEFAULT_SERIES_PARAMS, deployOptionsSystem, listSeries, tradeOption } from "../shared/options";
import { DEFAULT_MARKET_PARAMS, DEFAULT_MIN_ROUND_TRIP_FEE, refreshFeeds, trade } from "../shared/perps";

/**
 * Round 156: the campaign's model (test/reliability/model.ts) swaps price and volatility feeds mid-run
 * (`feed`, `volFeed`), lists option series and perp markets mid-run, SOL with its engine listing
 * (`newSeries`, `newMarket`), and moves the option market's pool limits and floors (`poolLimits`):
 * 10,000 fresh steps met no violation. These specs pin, on hand-picked states, the rules the model
 * predicts, and one limit of a feed swap the model does not reach (a series expired before the swap).
 */
const USDC = 10n ** 6n;
const ETH = assetId("ETH");

/** Alice: 5,000 USDC and 1 WETH, long 2 ETH perps and 3 ETH calls (a day to expiry). */
async function aliceHedged() {
  const sys = await deployOptionsSystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [
    [sys.usdc, 5_000n * USDC],
    [sys.weth, wad("1")],
  ]);
  const expiry = BigInt(await time.latest()) + DAY;
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2"));
  await tradeOption(sys.options, sys.alice, alice, call, wad("3"));
  return { sys, alice, call, expiry };
}

/** The next transaction in the latest block's second (no funding or interest accrues across it). */
const sameSecond = async () => time.setNextBlockTimestamp(await time.latest());

describe("Reliability: the campaign's gaps (round 156)", function () {
  describe("feed: configureAsset swaps a price feed while accounts hold what it prices", function () {
    it("refuses with InvalidConfig a zero floor, a floor at the ceiling, a deviation bound without a second source, the primary as its own secondary, a zero or over-two-day heartbeat, and keeps the old feed", async function () {
      const { sys } = await loadFixture(aliceHedged);
      const spare = await deployMockFeed(18, wad("3100"));
      const primary = await spare.getAddress();
      const ok = {
        primary,
        primaryHeartbeat: 3_600,
        secondaries: [] as string[],
        secondaryHeartbeats: [] as number[],
        minPrice: wad("3"),
        maxPrice: wad("3000000"),
        maxDeviation: 0n,
      };
      const faults = [
        { ...ok, minPrice: 0n },
        { ...ok, minPrice: ok.maxPrice },
        { ...ok, maxDeviation: wad("0.1") },
        { ...ok, secondaries: [primary], secondaryHeartbeats: [3_600], maxDeviation: wad("0.1") },
        { ...ok, primaryHeartbeat: 0 },
        { ...ok, primaryHeartbeat: 2 * 86_400 + 1 },
      ];
      for (const input of faults)
        await expect(sys.router.configureAsset(ETH, input)).to.be.revertedWithCustomError(
          sys.router,
          "InvalidConfig",
        );
      expect(await sys.router.primaryFeed(ETH)).to.equal(await sys.feeds.ETH.getAddress());
      await sys.router.configureAsset(ETH, { ...ok, primaryHeartbeat: 2 * 86_400 });
      expect(await sys.router.primaryFeed(ETH)).to.equal(primary);
    });

    it("moves an account's equity by exactly its WETH's and its positions' repricing at a 6-decimal feed's answer (the router's price: the answer scaled by 10^12)", async function () {
      const { sys, alice, call } = await loadFixture(aliceHedged);
      const spare = await deployMockFeed(6, 3_123_456_789n); // 3,123.456789 USD
      const [oldSpot, vol] = await Promise.all([sys.router.getPrice(ETH), sys.router.getVolatility(ETH)]);
      const before = await ethers.provider.getBlockNumber();
      const h0 = await sys.engine.health(alice, { blockTag: before });
      await sameSecond();
      await sys.router.configureAsset(ETH, {
        primary: await spare.getAddress(),
        primaryHeartbeat: 7_200,
        secondaries: [],
        secondaryHeartbeats: [],
        minPrice: wad("3"),
        maxPrice: wad("3000000"),
        maxDeviation: 0n,
      });
      const spot = await sys.router.getPrice(ETH);
      expect(spot).to.equal(3_123_456_789n * 10n ** 12n);
      const h1 = await sys.engine.health(alice);
      const value = async (s: bigint) =>
        (await sys.perps.exposure(alice, sys.markets.ETH, s, vol)).value +
        (await sys.options.exposure(alice, call, s, vol)).value;
      const wethMove = (wad("1") * spot) / WAD - (wad("1") * oldSpot) / WAD;
      expect(h1.equityMark - h0.equityMark).to.equal(wethMove + (await value(spot)) - (await value(oldSpot)));
      expect(h1.equityMark).to.not.equal(h0.equityMark);
    });

    it("moves an option holder's equity by exactly its options' revaluation when the volatility feed is swapped (an 18-decimal one), and refuses a ceiling above 1000%", async function () {
      const { sys, alice, call } = await loadFixture(aliceHedged);
      const spare = await deployMockFeed(18, wad("1.2"));
      const [spot, oldVol] = await Promise.all([sys.router.getPrice(ETH), sys.router.getVolatility(ETH)]);
      await expect(
        sys.router.configureVolatilityFeed(ETH, spare, 3_600, wad("0.01"), wad("10") + 1n),
      ).to.be.revertedWithCustomError(sys.router, "InvalidConfig");
      const h0 = await sys.engine.health(alice);
      await sameSecond();
      await sys.router.configureVolatilityFeed(ETH, spare, 3_600, wad("0.01"), wad("5"));
      expect(await sys.router.getVolatility(ETH)).to.equal(wad("1.2"));
      const h1 = await sys.engine.health(alice);
      const option = async (v: bigint) => (await sys.options.exposure(alice, call, spot, v)).value;
      expect(h1.equityMark - h0.equityMark).to.equal((await option(wad("1.2"))) - (await option(oldVol)));
      expect(h1.equityMark).to.be.gt(h0.equityMark);
    });

    it("settles a series that expired before its feed was swapped for an aggregator without a round before expiry at the old feed's first round after expiry, refusing the new feed's rounds, and reopens the pool's exits (round 162: it stranded them until the old feed was configured again)", async function () {
      const { sys, call, expiry } = await loadFixture(aliceHedged);
      await time.increaseTo(expiry + 60n);
      await refreshFeeds(sys); // the old feed's first round after expiry
      const old = sys.feeds.ETH;
      const first = await old.latestRoundData();
      // Governance swaps ETH's feed before anyone settled: the new aggregator's rounds all start after expiry.
      const fresh = await deployMockFeed(8, 3_050n * 10n ** 8n);
      await fresh.updateAnswer(3_060n * 10n ** 8n);
      await fresh.updateAnswer(3_070n * 10n ** 8n);
      await sys.router.configureAsset(ETH, {
        primary: await fresh.getAddress(),
        primaryHeartbeat: 3_600,
        secondaries: [],
        secondaryHeartbeats: [],
        minPrice: wad("3"),
        maxPrice: wad("3000000"),
        maxDeviation: 0n,
      });
      // The old feed was primary at expiry and posted a round after it before the swap: settlement reads it
      // there, so the new feed's rounds 1 and 3 (2 is also the old feed's `first`) and a phase start are refused.
      expect(first.roundId).to.equal(2n);
      for (const round of [1n, 3n])
        await expect(sys.options.settleSeries(call, round)).to.be.revertedWithCustomError(
          sys.options,
          "WrongRoundHint",
        );
      await expect(sys.options.settleSeriesAtPhaseStart(call, 1n)).to.be.revertedWithCustomError(
        sys.options,
        "WrongRoundHint",
      );
      expect(await sys.pool.settlementPending()).to.equal(true);
      await expect(sys.options.settleSeries(call, first.roundId))
        .to.emit(sys.options, "SeriesSettled")
        .withArgs(call, first.roundId, first.answer * 10n ** 10n, first.updatedAt);
      expect(await sys.pool.settlementPending()).to.equal(false);
    });
  });

  describe("newSeries and newMarket: listings while accounts are open", function () {
    it("refuses listSeries in the market's order: an expiry within the hour before a fee under the floor, the fee before a strike 101× the spot, the strike before terms already listed", async function () {
      const { sys, call, expiry } = await loadFixture(aliceHedged);
      const now = BigInt(await time.latest());
      const cheap = { ...DEFAULT_SERIES_PARAMS, fee: wad("0.00025") - 1n };
      const list = (strike: bigint, at: bigint, params = DEFAULT_SERIES_PARAMS) =>
        sys.options.listSeries(ETH, strike, at, true, params);
      await expect(list(wad("3000"), now + 3_000n, cheap)).to.be.revertedWithCustomError(
        sys.options,
        "InvalidExpiry",
      );
      await expect(list(wad("303000"), expiry, cheap))
        .to.be.revertedWithCustomError(sys.options, "SeriesParamOutOfBounds")
        .withArgs(ethers.encodeBytes32String("fee"));
      await expect(list(wad("303000"), expiry)).to.be.revertedWithCustomError(
        sys.options,
        "MoneynessOutOfRange",
      );
      await expect(list(wad("3000"), expiry))
        .to.be.revertedWithCustomError(sys.options, "SeriesAlreadyListed")
        .withArgs(call);
    });

    it("lists SOL mid-run: listMarket refuses it as unknown until the engine lists it (before its parameters are read), then a fault names the skew scale before the fee floor, and the first trade books the pool's opposite position", async function () {
      const { sys, alice } = await loadFixture(aliceHedged);
      const sol = assetId("SOL");
      await addPriceFeed(sys.router, "SOL", "150");
      await addVolatilityFeed(sys.router, "SOL", "0.9");
      const bad = { ...DEFAULT_MARKET_PARAMS, skewScale: 0n };
      await expect(sys.perps.listMarket(sol, bad, wad("1"))).to.be.revertedWithCustomError(
        sys.engine,
        "UnknownUnderlying",
      );
      await sys.engine.listUnderlying(sol, DEFAULT_RISK_PARAMS);
      await expect(sys.engine.listUnderlying(ETH, DEFAULT_RISK_PARAMS)).to.be.revertedWithCustomError(
        sys.engine,
        "UnderlyingAlreadyListed",
      );
      await expect(sys.perps.listMarket(sol, bad, wad("1")))
        .to.be.revertedWithCustomError(sys.perps, "MarketParamOutOfBounds")
        .withArgs(ethers.encodeBytes32String("skewScale"));
      await expect(sys.perps.listMarket(sol, DEFAULT_MARKET_PARAMS, wad("1")))
        .to.be.revertedWithCustomError(sys.perps, "MarketParamOutOfBounds")
        .withArgs(ethers.encodeBytes32String("minRoundTripFee"));
      await sys.perps.listMarket(sol, DEFAULT_MARKET_PARAMS, DEFAULT_MIN_ROUND_TRIP_FEE);
      const market = await sys.perps.marketCount();
      await trade(sys.perps, sys.alice, alice, market, -wad("7"));
      expect(await sys.perps.positionSize(sys.poolAccountId, market)).to.equal(wad("7"));
      const keys = (await sys.engine.accountMarkets(alice)).map((k) => k.marketId);
      expect(keys).to.include(market);
    });
  });

  describe("poolLimits: the option market's pool ratios and floors", function () {
    it("refuses a ratio on an unconfigured underlying as UnderlyingNotConfigured (not the engine's UnknownUnderlying), a delta raise over the total of 1 (the deployment's two ratios already sum to 2), and re-configuring keeps the risk role's cut", async function () {
      const { sys } = await loadFixture(aliceHedged);
      const nopx = assetId("NOPX");
      await expect(sys.options.setPoolVegaRatio(nopx, wad("1"))).to.be.revertedWithCustomError(
        sys.options,
        "UnderlyingNotConfigured",
      );
      await expect(
        sys.options.configureUnderlying(nopx, wad("1"), wad("1"), 0n, 0n),
      ).to.be.revertedWithCustomError(sys.options, "UnknownUnderlying");
      expect(await sys.options.totalPoolDeltaRatio()).to.equal(wad("2"));
      await sys.options.setPoolDeltaRatio(ETH, wad("0.5"));
      await expect(sys.options.setPoolDeltaRatio(ETH, wad("0.6")))
        .to.be.revertedWithCustomError(sys.options, "PoolRatioOutOfBounds")
        .withArgs(ethers.encodeBytes32String("totalPoolDeltaRatio"), wad("1.6"));
      await sys.options.setPoolVegaRatio(ETH, wad("0.5"));
      await sys.options.configureUnderlying(ETH, wad("1"), wad("1"), wad("0.0003"), wad("0.006"));
      expect(await sys.options.underlyingLimits(ETH)).to.deep.equal([
        wad("0.5"),
        wad("0.5"),
        wad("0.0003"),
        wad("0.006"),
      ]);
      expect(await sys.options.totalPoolDeltaRatio()).to.equal(wad("1.5"));
    });
  });
});
