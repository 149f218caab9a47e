import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { MarginEngine, OptionMarket, PortfolioMathHarness } from "../../typechain-types";
import { seriesVolatilityHoldback } from "../../sdk/src/math";
import { MarginMode, WAD, openAccount, spotShocks, wad, withdrawToInitialMargin } from "../shared/system";
import { assetId } from "../shared/oracles";
import { exposureGreeks } from "../../sdk/src/math/health";
import { DAY, HOUR, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";

const USDC = 10n ** 6n;
const ETH = assetId("ETH");
const BTC = assetId("BTC");

async function fixture() {
  const sys = await deployOptionsSystem();
  const math = await ethers.deployContract("PortfolioMathHarness");
  const expiry = await fromNow(30n * DAY);
  const ethCall3000 = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const ethCall3300 = await listSeries(sys.options, "ETH", "3300", expiry, true);
  const ethPut2700 = await listSeries(sys.options, "ETH", "2700", expiry, false);
  const ethPut3000 = await listSeries(sys.options, "ETH", "3000", expiry, false);
  const btcCall = await listSeries(sys.options, "BTC", "60000", expiry, true);
  const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
  return { ...sys, math, ethCall3000, ethCall3300, ethPut2700, ethPut3000, btcCall, accountId };
}

/**
 * The engine's requirement of `accountId`'s positions on `underlying`, recomputed from the markets'
 * exposures with PortfolioMath: Σ Greeks, the engine's shocks for the group's gross notional, and the
 * underlying's risk parameters; per level, the positions PortfolioMath.needsRepricing selects leave the
 * Greeks and enter through the market's repriced PnLs (OptionMarket.scenarioPnls).
 */
async function groupRequirement(
  engine: MarginEngine,
  options: OptionMarket,
  math: PortfolioMathHarness,
  accountId: bigint,
  seriesIds: bigint[],
  underlying: string,
  spot: bigint,
  volatility: bigint,
): Promise<{ im: bigint; mm: bigint; repriced: { im: number; mm: number } }> {
  const exposures = await Promise.all(
    seriesIds.map((id) => options.exposure(accountId, id, spot, volatility)),
  );
  const sum = (pick: (e: (typeof exposures)[number]) => bigint, of = exposures) =>
    of.reduce((total, e) => total + pick(e), 0n);
  const notional = sum((e) => e.notional);
  const p = await engine.riskParams(underlying);
  const shock = (floor: bigint, z: bigint) =>
    math.spotShock(floor, z, volatility, p.horizon, p.maxShock, p.sizeScale, notional);
  const [imShock, mmShock] = [await shock(p.imShockFloor, p.imZ), await shock(p.mmShockFloor, p.mmZ)];
  const level = async (spotShock: bigint, volShock: bigint) => {
    const k = { spotShock, volShock, shortOptionFloor: p.shortOptionFloor, contingency: p.contingency };
    const reprice = await Promise.all(
      exposures.map((e) => math.needsRepricing(e.totalVolatility, e.modelVolatility, k)),
    );
    const kept = exposures.filter((_, i) => !reprice[i]);
    const greeks = {
      delta: sum((e) => e.delta, kept),
      gamma: sum((e) => e.gamma, kept),
      vega: sum((e) => e.vega, kept),
      optionSize: sum((e) => e.optionSize),
      notional,
      vanna: sum((e) => e.vanna, kept),
      volga: sum((e) => e.volga, kept),
    };
    let repricedPnls: bigint[] = [];
    const [spotMoves, volMoves] = await math.scenarioMoves(spot, k);
    for (const [i, id] of seriesIds.entries()) {
      if (!reprice[i]) continue;
      const pnls = await options.scenarioPnls(accountId, id, spot, volatility, [...spotMoves], [...volMoves]);
      repricedPnls = pnls.map((pnl, c) => pnl + (repricedPnls[c] ?? 0n));
    }
    return {
      requirement: await math.requirement(greeks, spot, k, repricedPnls),
      repriced: reprice.filter(Boolean).length,
    };
  };
  const im = await level(imShock, p.imVolShock);
  const mm = await level(mmShock, p.mmVolShock);
  return { im: im.requirement, mm: mm.requirement, repriced: { im: im.repriced, mm: mm.repriced } };
}

describe("MarginEngine with options", function () {
  it("margins an option book on the scenario grid of its aggregated Greeks", async function () {
    const { engine, options, math, alice, accountId, ethCall3000, ethCall3300, ethPut2700 } =
      await loadFixture(fixture);
    await tradeOption(options, alice, accountId, ethCall3000, wad("4"));
    await tradeOption(options, alice, accountId, ethCall3300, -wad("6"));
    await tradeOption(options, alice, accountId, ethPut2700, -wad("3"));
    const ids = [ethCall3000, ethCall3300, ethPut2700];
    const expected = await groupRequirement(
      engine,
      options,
      math,
      accountId,
      ids,
      ETH,
      wad("3000"),
      wad("0.6"),
    );
    const h = await engine.health(accountId);
    expect(h.initialRequirement).to.equal(expected.im);
    expect(h.maintenanceRequirement).to.equal(expected.mm);
    expect(h.initialRequirement).to.be.greaterThan(h.maintenanceRequirement);
    // Net short 5 contracts: the floor alone is 5 · 3,000 · 5% = 750.
    expect(h.maintenanceRequirement).to.be.greaterThan(wad("750"));
  });

  it("reprices a short-dated option whose Greeks cannot see the shocked strike", async function () {
    const { engine, router, options, math, alice, accountId } = await loadFixture(fixture);
    // Short 10 puts 5% out of the money with 6 hours left at 60% volatility: σ√τ = 0.6·√(6/8760) ≈ 1.6%,
    // far below the 10% IM and 5% MM spot shocks, so both levels reprice it. Its Greeks at 3,000 are
    // nearly zero, yet a 10% fall puts it 150 in the money: ≈ 10 · 150 = 1,500 of loss that a Taylor
    // estimate would not see.
    const put = await listSeries(options, "ETH", "2850", await fromNow(6n * HOUR), false);
    await tradeOption(options, alice, accountId, put, -wad("10"));
    const expected = await groupRequirement(
      engine,
      options,
      math,
      accountId,
      [put],
      ETH,
      wad("3000"),
      wad("0.6"),
    );
    expect(expected.repriced).to.deep.equal({ im: 1, mm: 1 });
    const h = await engine.health(accountId);
    expect(h.initialRequirement).to.equal(expected.im);
    expect(h.maintenanceRequirement).to.equal(expected.mm);
    // Net short 10: floor 10 · 3,000 · 5% = 1,500; the repriced loss comes on top.
    expect(h.initialRequirement).to.be.greaterThan(wad("1500") + wad("1400"));
    // The Greeks-only grid of the same position: the floor and little more.
    const e = await options.exposure(accountId, put, wad("3000"), wad("0.6"));
    const [imShock] = await spotShocks({ engine, router }, math, ETH, e.notional);
    const greeksOnly = await math.requirement(
      exposureGreeks(e),
      wad("3000"),
      { spotShock: imShock, volShock: wad("0.25"), shortOptionFloor: wad("0.05"), contingency: wad("0.002") },
      [],
    );
    expect(h.initialRequirement - greeksOnly).to.be.greaterThan(wad("1000"));
    // Margined alone it is the same position: the standard requirement reprices it too.
    const [standardIm, standardMm] = await engine.standardRequirements(accountId);
    expect([standardIm, standardMm]).to.deep.equal([h.initialRequirement, h.maintenanceRequirement]);
  });

  it("values positions without requirements for the pool's share price (positionsValue)", async function () {
    const { engine, vault, options, alice, accountId, ethCall3000, btcCall, poolAccountId } =
      await loadFixture(fixture);
    const put = await listSeries(options, "ETH", "2850", await fromNow(6n * HOUR), false); // repriced
    await tradeOption(options, alice, accountId, ethCall3000, wad("2"));
    await tradeOption(options, alice, accountId, btcCall, -wad("0.1"));
    await tradeOption(options, alice, accountId, put, -wad("3"));
    for (const id of [accountId, poolAccountId]) {
      const h = await engine.health(id);
      const c = await vault.collateralValue(id);
      expect(await engine.positionsValue(id)).to.equal(h.equityMark - c.mark);
      // A fraction of the health check's gas: no grid, no repricing.
      expect(await engine.positionsValue.estimateGas(id)).to.be.lessThan(
        ((await engine.health.estimateGas(id)) * 2n) / 3n,
      );
    }
  });

  it("adds the requirements of different underlyings without netting them", async function () {
    const { engine, options, math, alice, accountId, ethPut3000, btcCall } = await loadFixture(fixture);
    await tradeOption(options, alice, accountId, ethPut3000, -wad("2"));
    await tradeOption(options, alice, accountId, btcCall, -wad("0.1"));
    const eth = await groupRequirement(
      engine,
      options,
      math,
      accountId,
      [ethPut3000],
      ETH,
      wad("3000"),
      wad("0.6"),
    );
    const btc = await groupRequirement(
      engine,
      options,
      math,
      accountId,
      [btcCall],
      BTC,
      wad("60000"),
      wad("0.5"),
    );
    const h = await engine.health(accountId);
    expect(h.initialRequirement).to.equal(eth.im + btc.im);
    expect(h.maintenanceRequirement).to.equal(eth.mm + btc.mm);
  });

  it("nets a bull call spread below the sum of its legs' standard requirements", async function () {
    const { engine, options, vault, alice, accountId, ethCall3000, ethCall3300 } = await loadFixture(fixture);
    await tradeOption(options, alice, accountId, ethCall3000, wad("10"));
    await tradeOption(options, alice, accountId, ethCall3300, -wad("10"));
    const h = await engine.health(accountId);
    const [standardIm, standardMm] = await engine.standardRequirements(accountId);
    expect(h.initialRequirement).to.be.lessThan(standardIm);
    expect(h.maintenanceRequirement).to.be.lessThan(standardMm);
    // Equity counts the long leg at its lower bound and the short at its upper bound; for new risk it
    // holds back one skew step of each series, ⌈|vega|·0.05⌉ per leg.
    const exposures = await Promise.all(
      [ethCall3000, ethCall3300].map((id) => options.exposure(accountId, id, wad("3000"), wad("0.6"))),
    );
    const c = await vault.collateralValue(accountId);
    expect(h.equityInitial).to.equal(
      c.initial +
        exposures[0].value +
        exposures[1].value -
        seriesVolatilityHoldback(exposures[0].vega) -
        seriesVolatilityHoldback(exposures[1].vega),
    );
    expect(h.equityMaintenance).to.equal(c.maintenance + exposures[0].value + exposures[1].value);
  });

  it("keeps IM above MM for long, short and mixed option books", async function () {
    const { engine, options, alice, accountId, ethCall3000, ethPut2700, ethPut3000 } =
      await loadFixture(fixture);
    const books: [bigint, bigint][] = [
      [ethCall3000, wad("5")],
      [ethPut2700, -wad("5")],
      [ethPut3000, wad("2")],
    ];
    for (const [id, size] of books) {
      await tradeOption(options, alice, accountId, id, size);
      const h = await engine.health(accountId);
      expect(h.initialRequirement).to.be.greaterThan(h.maintenanceRequirement);
    }
  });

  it("charges the short-option floor on net short contracts only", async function () {
    const { engine, router, options, math, alice, accountId, ethCall3000, ethPut3000 } =
      await loadFixture(fixture);
    // Short 3 calls, long 3 puts: net option size 0, so no floor.
    await tradeOption(options, alice, accountId, ethCall3000, -wad("3"));
    await tradeOption(options, alice, accountId, ethPut3000, wad("3"));
    const ids = [ethCall3000, ethPut3000];
    const g = { delta: 0n, gamma: 0n, vega: 0n, optionSize: 0n, notional: 0n, vanna: 0n, volga: 0n };
    for (const id of ids) {
      const e = await options.exposure(accountId, id, wad("3000"), wad("0.6"));
      g.delta += e.delta;
      g.gamma += e.gamma;
      g.vega += e.vega;
      g.vanna += e.vanna;
      g.volga += e.volga;
      g.vanna += e.vanna;
      g.volga += e.volga;
      g.optionSize += e.optionSize;
      g.notional += e.notional;
    }
    // A synthetic short forward: −3·N(d1) + 3·(N(d1) − 1) = −3 exactly; gamma and vega cancel exactly.
    expect([g.delta, g.gamma, g.vega, g.optionSize]).to.deep.equal([-wad("3"), 0n, 0n, 0n]);
    const [imShock] = await spotShocks({ engine, router }, math, ETH, g.notional);
    const withoutFloor = await math.requirement(
      g,
      wad("3000"),
      {
        spotShock: imShock,
        volShock: wad("0.25"),
        shortOptionFloor: 0n,
        contingency: wad("0.002"),
      },
      [],
    );
    expect((await engine.health(accountId)).initialRequirement).to.equal(withoutFloor);
  });
  describe("at low volatility (review round 26)", function () {
    const YEAR = 365n * DAY;

    /** ETH at 3,000 and 30% volatility: a 25-point IM volatility shock takes most of it away. */
    async function lowVolatility() {
      const sys = await deployOptionsSystem();
      await sys.volFeeds.ETH.updateAnswer(30_000_000n); // 8 decimals
      return { ...sys, math: await ethers.deployContract("PortfolioMathHarness") };
    }

    // The volatility expansion of a long far out of the money has its vertex inside the IM shock: it
    // read a 25-point fall as a gain (+1,780.8) where the 15-point one lost 1,509.9, so IM (1,964.68)
    // fell below MM (2,720.14) and an account withdrawn to its IM was auctionable at once.
    it("keeps MM at or below IM for a long far out of the money: an account at its IM is not liquidatable", async function () {
      const sys = await loadFixture(lowVolatility);
      const call = await listSeries(sys.options, "ETH", "5000", await fromNow(YEAR), true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, wad("100"));
      await withdrawToInitialMargin(sys, sys.alice, alice);
      const h = await sys.engine.health(alice);
      expect(h.maintenanceRequirement).to.be.at.most(h.initialRequirement);
      expect(h.equityMaintenance).to.be.at.least(h.maintenanceRequirement);
      await expect(sys.auction.startAuction(alice)).to.be.revertedWithCustomError(
        sys.auction,
        "AccountHealthy",
      );
    });

    // A book chosen by a linear program against the expansion: on Greeks, its IM (1,417.42) covered under
    // a quarter of its own IM grid's corner, and the corner left it 4,756.99 insolvent.
    it("reprices options whose volatility the shock would halve: an adversarial book's IM covers its own grid's corner", async function () {
      const sys = await loadFixture(lowVolatility);
      const legs: [string, bigint, boolean, bigint][] = [
        ["4200", 180n * DAY, true, wad("14.8")],
        ["2700", YEAR, false, wad("41.7")],
        ["3300", YEAR, true, -wad("10.2")],
        ["3300", YEAR, false, -wad("33.3")],
      ];
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      for (const [strike, life, isCall, size] of legs) {
        const series = await listSeries(sys.options, "ETH", strike, await fromNow(life), isCall);
        await tradeOption(sys.options, sys.alice, alice, series, size);
      }
      await withdrawToInitialMargin(sys, sys.alice, alice);
      const h = await sys.engine.health(alice);
      const [imShock] = await spotShocks(sys, sys.math, ETH, h.grossNotional);
      // The IM grid's corner: spot −s, volatility −25 points (30% → 5%).
      await sys.feeds.ETH.updateAnswer(3_000n * 10n ** 8n - (3_000n * 10n ** 8n * imShock) / WAD);
      await sys.volFeeds.ETH.updateAnswer(5_000_000n);
      const loss = h.equityMark - (await sys.engine.health(alice)).equityMark;
      expect(loss).to.be.at.most(h.initialRequirement);
    });
  });
});
