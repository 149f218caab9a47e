/**
 * PerpMarket, MarketBase and PerpMath behaviours at their edges that the suite did not hold (review
 * round 90 mutated contracts/markets/PerpMarket.sol, contracts/markets/MarketBase.sol and
 * contracts/libraries/PerpMath.sol one small change at a time). Each test names the line it holds.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, deploySystem, openAccount, wad } from "../shared/system";
import { assetId, setFeedPrice } from "../shared/oracles";
import {
  advanceTo,
  backstopLong100,
  closePosition,
  marketParams,
  refreshFeeds,
  trade,
} from "../shared/perps";
import { signerFor } from "../shared/impersonate";
import { deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";

const USDC = 10n ** 6n;

/** The full system (ETH market 1, BTC market 2, DEFAULT_MARKET_PARAMS); Alice and Bob with 1M USDC each. */
async function book() {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  return { sys, perps: sys.perps, eth: sys.markets.ETH, alice, bob };
}

describe("PerpMarket at its exact edges (review round 90)", function () {
  describe("listing and parameters at their inclusive bounds", function () {
    // Line 178: the timelock may set the round-trip floor to exactly 2·MAX_FEE (0.02).
    it("sets a round-trip fee floor of exactly 2·MAX_FEE", async function () {
      const { perps, eth } = await loadFixture(book);
      const max = 2n * (await perps.MAX_FEE());
      await expect(perps.setMinRoundTripFee(eth, max))
        .to.emit(perps, "MinRoundTripFeeSet")
        .withArgs(eth, max);
      expect((await perps.market(eth)).minRoundTripFee).to.equal(wad("0.02"));
    });

    // Line 797: an open-interest cap equal to the skew scale is allowed (fills stay ≥ 0 up to there).
    it("lists a market whose open-interest cap equals its skew scale", async function () {
      const { perps } = await loadFixture(book);
      const params = marketParams({ skewScale: wad("1000"), maxOpenInterest: wad("1000") });
      await expect(perps.listMarket(assetId("ETH"), params, 0n)).to.emit(perps, "MarketListed");
      expect((await perps.market(3n)).params.maxOpenInterest).to.equal(wad("1000"));
    });

    // Line 802: the skew scale may halve in one update, exactly (1,000 → 500, the OI cap 500).
    it("halves the skew scale in one update", async function () {
      const { perps, eth } = await loadFixture(book);
      await expect(perps.setMarketParams(eth, marketParams({ skewScale: wad("500") }))).to.emit(
        perps,
        "MarketParamsUpdated",
      );
      expect((await perps.market(eth)).params.skewScale).to.equal(wad("500"));
    });
  });

  describe("transferPosition", function () {
    // Line 245: a short's slice rounds toward zero, not down: half of a short of 10 ETH and 1 wei is
    // 5 ETH and half a wei, so 5 ETH moves and the sender keeps 5 ETH and 1 wei.
    it("rounds a short's slice toward zero, leaving the odd wei with the sender", async function () {
      const { sys, perps, eth, alice, bob } = await loadFixture(book);
      await trade(perps, sys.bob, bob, eth, -wad("10") - 1n);
      const engine = await signerFor(sys.engine);
      await perps.connect(engine).transferPosition(bob, alice, eth, wad("0.5"));
      expect(await perps.positionSize(alice, eth)).to.equal(-wad("5"));
      expect(await perps.positionSize(bob, eth)).to.equal(-wad("5") - 1n);
    });
  });

  describe("reductions that pay a skew premium", function () {
    // Line 355: a premium of a single quote unit is still checked. Bob short 20 ETH, Alice long 10
    // ETH (fill 2,955) on 4,000 USDC, ETH at 2,700: Alice is below maintenance and solvent. Selling
    // 10⁻⁹ ETH into the short skew fills ~30 USD under spot, a premium of 3·10⁻⁸ USD that rounds up to
    // one quote unit: the shortfall grows by it (and the fee's unit) and the sale is refused.
    it("refuses a reduction under maintenance that pays a premium of one quote unit", async function () {
      const { sys, perps, eth, bob } = await loadFixture(book);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 4_000n * USDC]]);
      await trade(perps, sys.bob, bob, eth, -wad("20"));
      await trade(perps, sys.alice, alice, eth, wad("10"));
      await setFeedPrice(sys.feeds.ETH, "2700");
      const h = await sys.engine.health(alice);
      expect(h.equityMaintenance < BigInt(h.maintenanceRequirement)).to.equal(true);
      expect(h.equityMark > 0n).to.equal(true);
      const [fill] = await perps.quoteTrade(eth, -(10n ** 9n));
      expect(((wad("2700") - fill) * 10n ** 9n) / wad("1")).to.be.within(1n, 10n ** 12n - 1n); // < 1 unit
      await expect(trade(perps, sys.alice, alice, eth, -(10n ** 9n))).to.be.revertedWithCustomError(
        sys.engine,
        "MaintenanceShortfallIncreased",
      );
    });
  });

  describe("fill price", function () {
    // Lines 427 and 753: a fill of exactly 0 is refused, by the trade and by quoteTrade. A market of
    // skew scale 10 (OI cap 10): Bob short 10, Alice long 6 (skew −4); the scale then halves to 5
    // (|skew| 4 ≤ 5). Alice selling 2 would fill at 3000·(1 + (2·(−4) − 2)/(2·5)) = 0.
    it("refuses a sale that would fill at exactly zero", async function () {
      const { sys, perps, alice, bob } = await loadFixture(book);
      await perps.listMarket(
        assetId("ETH"),
        marketParams({ skewScale: wad("10"), maxOpenInterest: wad("10") }),
        0n,
      );
      const market = await perps.marketCount();
      await trade(perps, sys.bob, bob, market, -wad("10"));
      await trade(perps, sys.alice, alice, market, wad("6"));
      await perps.setMarketParams(market, marketParams({ skewScale: wad("5"), maxOpenInterest: wad("5") }));
      await expect(perps.quoteTrade(market, -wad("2")))
        .to.be.revertedWithCustomError(perps, "InvalidFillPrice")
        .withArgs(0n);
      await expect(trade(perps, sys.alice, alice, market, -wad("2")))
        .to.be.revertedWithCustomError(perps, "InvalidFillPrice")
        .withArgs(0n);
      // One wei less fills at 3000·(1 − (10 − 10⁻¹⁸)/10) = 300 wei, above zero.
      expect((await perps.quoteTrade(market, -wad("2") + 1n))[0]).to.equal(300n);
    });
  });

  describe("exposure", function () {
    // Lines 658 and 684: notionals round up. A third of an ETH (333333333333333333 wei) valued at
    // 3,000 USD and 1 wei is 999.999999999999999000 USD and a third of a wei: 1 wei more.
    it("rounds a trader's and the pool's notional up", async function () {
      const { sys, perps, eth, alice } = await loadFixture(book);
      const size = 333333333333333333n;
      await trade(perps, sys.alice, alice, eth, size);
      const spot = wad("3000") + 1n;
      expect((size * spot) % WAD).to.not.equal(0n);
      const ceil = (size * spot) / WAD + 1n;
      expect(ceil).to.equal(999999999999999999001n);
      expect((await perps.exposure(alice, eth, spot, 0n)).notional).to.equal(ceil);
      expect((await perps.exposure(sys.poolAccountId, eth, spot, 0n)).notional).to.equal(ceil);
    });

    // Line 681: the close-out premium the pool's value leaves out rounds up. Skew scale 1,000 ETH and
    // 1 wei, funding off, Alice long exactly 1 ETH: at spot 999.999999999999998001 USD the premium
    // spot·1²/(2·scale) is a whole number of USD wei plus a fraction, so rounding it up takes one more
    // wei off the pool's value than rounding it down would.
    it("rounds the close-out premium left out of the pool's value up, against the pool", async function () {
      const { sys, perps, alice } = await loadFixture(book);
      const skewScale = wad("1000") + 1n;
      await perps.listMarket(assetId("ETH"), marketParams({ skewScale, maxFundingVelocity: 0n }), 0n);
      const market = await perps.marketCount();
      await trade(perps, sys.alice, alice, market, WAD);
      const entry = (await perps.position(alice, market)).entryPrice;
      const spot = 999999999999999998001n;
      const premium36 = spot * WAD * WAD; // spot·skew², 54 decimals over 2·skewScale (18) = 36
      expect(premium36 % (2n * skewScale)).to.not.equal(0n);
      const floor36 = premium36 / (2n * skewScale);
      expect(floor36 % WAD).to.equal(0n); // rounding it up crosses a whole USD wei
      // value = floor((entryBasis − skew·(spot − index) − ⌈premium⌉)/10¹⁸), index 0, basis 1·entry.
      const expected = entry - spot - floor36 / WAD - 1n;
      expect((await perps.exposure(sys.poolAccountId, market, spot, 0n)).value).to.equal(expected);
    });

    // Line 327: the exit discount rounds up. Alice long 10 ETH, Bob short 4 ETH and 1 wei: closing
    // Bob's short buys 4 ETH and 1 wei into a long skew, above spot by a premium whose product with
    // the size is a whole number of USD wei plus a fraction: the discount is one wei more.
    it("rounds a position's exit discount up", async function () {
      const { sys, perps, eth, alice, bob } = await loadFixture(book);
      await trade(perps, sys.alice, alice, eth, wad("10"));
      const size = wad("4") + 1n;
      await trade(perps, sys.bob, bob, eth, -size);
      const spot = wad("3000"); // the oracle's price, which quoteTrade fills at
      const [fill] = await perps.quoteTrade(eth, size);
      const cost = size * (fill - spot);
      expect(cost % WAD).to.not.equal(0n);
      expect((await perps.exposure(bob, eth, spot, 0n)).exitDiscount).to.equal(cost / WAD + 1n);
    });
  });

  describe("funding views", function () {
    // Line 770: the funding a position owes, as accruedFunding reports it, rounds up. Alice long 10
    // ETH and 1 wei; the rate drifts up for a day, so the index grows and she owes a fraction more
    // than a whole number of USD wei.
    it("reports accrued funding rounded up", async function () {
      const { sys, perps, eth, alice } = await loadFixture(book);
      const size = wad("10") + 1n;
      await trade(perps, sys.alice, alice, eth, size);
      await time.increase(86_400);
      await setFeedPrice(sys.feeds.ETH, "3000");
      const opened = (await perps.position(alice, eth)).fundingIndex;
      const owed = size * ((await perps.currentFundingIndex(eth)) - opened);
      expect(owed > 0n && owed % WAD !== 0n).to.equal(true);
      expect(await perps.accruedFunding(alice, eth)).to.equal(owed / WAD + 1n);
    });
  });

  describe("pool delta limit base", function () {
    // Line 764: premiums the pool paid out (traders selling options to it) do not raise the base: it
    // subtracts max(0, poolPremiumHeld), so a negative held premium leaves the quote balance as is.
    it("leaves the base at the pool's quote balance while the pool holds a negative option premium", async function () {
      const sys = await deployOptionsSystem();
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      const call = await listSeries(sys.options, "ETH", "3000", await fromNow(86_400n), true);
      await tradeOption(sys.options, sys.bob, bob, call, -wad("1"));
      expect(await sys.options.poolPremiumHeld()).to.be.lessThan(0n);
      const balance = await sys.vault.balanceOf(sys.poolAccountId, sys.usdc);
      expect(await sys.perps.poolDeltaBase()).to.equal(balance);
    });
  });

  describe("open-interest caps", function () {
    // Lines 504 and 507: a cap binds only the side a trade grows. After the cap is cut to 80 below a
    // side already open (100), a risk-increasing trade on the other side, staying under 80, goes through.
    it("lets a trade grow the side under a cut cap while the other side stays above it", async function () {
      const { sys, perps, eth, alice, bob } = await loadFixture(book);
      await trade(perps, sys.bob, bob, eth, -wad("100"));
      await trade(perps, sys.alice, alice, eth, wad("60"));
      await perps.setMarketParams(eth, marketParams({ maxOpenInterest: wad("80") }));
      await trade(perps, sys.alice, alice, eth, wad("10")); // long 70 ≤ 80; short 100 > 80 unchanged
      // The mirror image in the BTC market (cap cut from 500 to 8): long 10 above it, short grows to 7.
      const btc = sys.markets.BTC;
      await trade(perps, sys.alice, alice, btc, wad("10"));
      await trade(perps, sys.bob, bob, btc, -wad("6"));
      await perps.setMarketParams(btc, marketParams({ maxOpenInterest: wad("8") }));
      await trade(perps, sys.bob, bob, btc, -wad("1"));
      const [e, b] = [await perps.market(eth), await perps.market(btc)];
      expect([e.longOpenInterest, e.shortOpenInterest]).to.deep.equal([wad("70"), wad("100")]);
      expect([b.longOpenInterest, b.shortOpenInterest]).to.deep.equal([wad("10"), wad("7")]);
    });
  });

  describe("closing", function () {
    // Line 482: a close deletes the whole position, the funding index at its last touch included.
    it("leaves a closed position all zeros, funding index included", async function () {
      const { sys, perps, eth, alice } = await loadFixture(book);
      await trade(perps, sys.alice, alice, eth, wad("10"));
      await time.increase(3_600);
      await refreshFeeds(sys);
      await trade(perps, sys.alice, alice, eth, wad("1")); // touched at a nonzero index
      expect((await perps.position(alice, eth)).fundingIndex).to.not.equal(0n);
      await closePosition(perps, sys.alice, alice, eth);
      expect(await perps.position(alice, eth)).to.deep.equal([0n, 0n, 0n]);
    });
  });

  describe("pool delta limit", function () {
    // Line 515: the grown side's notional rounds up before it meets the limit. ETH at 3,000.12345679,
    // the pool's base exactly 1,000,000 USDC and a ratio of 0.100000000000001510: the limit is
    // 100,000.000000001510 USD, and 33.331961647670695155 ETH is worth 0.90485245 USD wei more. That
    // size is refused (its notional rounds up to the limit and 1 wei); one wei less goes through.
    it("refuses a side whose notional exceeds the limit by a fraction of a USD wei", async function () {
      const { sys, perps, alice } = await loadFixture(book);
      await setFeedPrice(sys.feeds.ETH, "3000.12345679");
      const price = wad("3000.12345679");
      expect(await perps.poolDeltaBase()).to.equal(1_000_000n * USDC);
      const ratio = 100000000000001510n;
      const limit = 10n ** 6n * ratio; // 1,000,000 USD · ratio, rounded down: exact
      const size = 33331961647670695155n;
      expect(size * price - limit * WAD).to.equal(904852450000000000n); // under one USD wei
      await perps.listMarket(assetId("ETH"), marketParams({ maxPoolDeltaRatio: ratio }), 0n);
      const market = await perps.marketCount();
      await expect(trade(perps, sys.alice, alice, market, size))
        .to.be.revertedWithCustomError(perps, "PoolDeltaLimitExceeded")
        .withArgs(market, limit + 1n, limit);
      await trade(perps, sys.alice, alice, market, size - 1n);
      expect(await perps.positionSize(alice, market)).to.equal(size - 1n);
    });
  });

  describe("funding drift", function () {
    // PerpMath line 101: the drift is clamped at full skew. Funding is driven by the traders' net
    // position without the backstop's, which the skew-scale check does not bound: the backstop long
    // 100 ETH (absorbed, funding off), Bob short 350 (skew −250), the scale cut 1,000 → 500 → 250 a
    // day apart with funding switched on (velocity 0.1) at the last cut. The traders' net −350 is 1.4
    // scales, clamped to 1: after an hour the rate is −0.1/24, not −0.14/24.
    it("clamps the funding drift at one skew scale when the traders' net exceeds it", async function () {
      const { sys, backstop } = await backstopLong100({ maxPoolDeltaRatio: wad("2") });
      const { perps } = sys;
      const eth = sys.markets.ETH;
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
      await trade(perps, sys.bob, bob, eth, -wad("350"));
      expect((await perps.market(eth)).skew).to.equal(-wad("250"));
      const base = { maxFundingVelocity: 0n, maxPoolDeltaRatio: wad("2") };
      for (const [skewScale, maxFundingVelocity] of [
        [wad("500"), 0n],
        [wad("250"), wad("0.1")],
      ]) {
        await time.increase(await perps.MIN_UPDATE_INTERVAL());
        await refreshFeeds(sys);
        await perps.setMarketParams(
          eth,
          marketParams({ ...base, skewScale, maxOpenInterest: skewScale, maxFundingVelocity }),
        );
      }
      expect(await perps.positionSize(backstop, eth)).to.equal(wad("100"));
      const t0 = (await perps.market(eth)).lastFundingTime;
      expect((await perps.market(eth)).fundingRate).to.equal(0n);
      await advanceTo(sys, t0 + 3_600n);
      await perps.accrueFunding(eth);
      expect((await perps.market(eth)).fundingRate).to.equal(-(wad("0.1") * 3_600n) / 86_400n);
    });
  });
});
