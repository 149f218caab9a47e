import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  type AccountState,
  type HealthBreakdown,
  type XMarginClient,
  WAD,
  accountHealth,
  createAccount,
  deposit,
  exposureOf,
  getAccountState,
  marketKey,
  needsRepricing,
  preview,
  requirement,
  scenarioMoves,
  scenarioPnlsOf,
  seriesStatus,
  shocksFor,
  toHealth,
  tradeOption,
} from "../../sdk/src";
import { wad } from "../shared/system";
import { assetId } from "../shared/oracles";
import { mineAt, trade } from "../shared/perps";
import {
  DAY,
  HOUR,
  deployOptionsSystem,
  fromNow,
  listSeries,
  tradeOption as sendOption,
} from "../shared/options";
import { sdkClient, sdkExposureOf } from "../shared/sdk";

/**
 * The engine reprices a position over the scenario grid (`IMarket.scenarioPnls`) instead of using its
 * Greeks when a shock exceeds the option's own σ√τ or volatility (`PortfolioMath.needsRepricing`). These
 * tests hold the SDK's side of it against the chain, exactly:
 *   - `scenarioPnlsOf` (optionScenarioPnls, perpScenarioPnls) against OptionMarket.scenarioPnls and
 *     PerpMarket.scenarioPnls, on the engine's grids and on random moves and market data, in every regime
 *     of a series (the model, its last hour, expired, settled);
 *   - `exposureOf` against each market's `exposure` (vanna, volga, σ√τ and model volatility included);
 *   - `accountHealth` against engine.health and engine.standardRequirements for an account whose options
 *     expire in hours or days (σ√τ below the spot shocks) and, at a 20% feed, whose 180-day call's
 *     volatility is below the IM volatility shock; and a previewed option trade against the health after
 *     sending it.
 */

const SEED = 20_250_605;
const USDC = 10n ** 6n;

async function fixture() {
  const sys = await deployOptionsSystem();
  const soon = await fromNow(5n * HOUR);
  const series = {
    // σ√τ = 0.6·√(5 h / 1 year) ≈ 0.014: below both the IM (10%) and MM (5%) spot shocks.
    shortCall: await listSeries(sys.options, "ETH", "3000", soon, true),
    longPut: await listSeries(sys.options, "ETH", "2900", soon, false),
    // σ√τ = 0.6·√(180/365) ≈ 0.42: Greeks at 60%; at a 20% feed σ√τ ≈ 0.14 is still above the spot
    // shocks, but its volatility is below the IM volatility shock (25%).
    longCall: await listSeries(sys.options, "ETH", "3000", await fromNow(180n * DAY), true),
    btcPut: await listSeries(sys.options, "BTC", "58000", await fromNow(3n * DAY), false),
  };
  const client = await sdkClient(sys, sys.alice);
  await sys.usdc.mint(sys.alice.address, 500_000n * USDC);
  const accountId = (await createAccount(client, {})).accountId;
  await deposit(client, { accountId, token: "USDC", amount: 500_000n * USDC, approval: "approve" });
  const a = sys.alice;
  await (await sendOption(sys.options, a, accountId, series.shortCall, -wad("10"))).wait();
  await (await sendOption(sys.options, a, accountId, series.longPut, wad("5"))).wait();
  await (await sendOption(sys.options, a, accountId, series.longCall, wad("3"))).wait();
  await (await sendOption(sys.options, a, accountId, series.btcPut, -wad("0.5"))).wait();
  await (await trade(sys.perps, a, accountId, sys.markets.ETH, wad("2"))).wait();
  await (await trade(sys.perps, a, accountId, sys.markets.BTC, -wad("0.1"))).wait();
  return { sys, client, accountId, series, soon };
}

type Fixture = Awaited<ReturnType<typeof fixture>>;

/** The market contract of a position: the chain's `exposure` and `scenarioPnls`. */
function chainMarket(f: Fixture, kind: "perp" | "option") {
  return kind === "perp" ? f.sys.perps : f.sys.options;
}

/**
 * Every position's scenario PnLs from the SDK equal its market's at the snapshot's block: on the IM and MM
 * grids of its group, and on random spots, volatilities and moves.
 */
async function compareScenarioPnls(f: Fixture, state: AccountState, numRuns: number): Promise<number> {
  const blockTag = state.blockNumber;
  const health = accountHealth(state);
  let cells = 0;
  const compare = async (
    index: number,
    spot: bigint,
    volatility: bigint,
    spotMoves: bigint[],
    volMoves: bigint[],
  ): Promise<void> => {
    const position = state.positions[index];
    const market = state.markets[marketKey(position.market, position.marketId)];
    const sdk = scenarioPnlsOf(position, market, spot, volatility, state.timestamp, spotMoves, volMoves);
    const chain = await chainMarket(f, position.kind).scenarioPnls(
      f.accountId,
      position.marketId,
      spot,
      volatility,
      spotMoves,
      volMoves,
      { blockTag },
    );
    expect(sdk, `${position.kind} ${position.marketId} at ${spot}, ${volatility}`).to.deep.equal([...chain]);
    cells += sdk.length;
  };
  for (let i = 0; i < state.positions.length; i++) {
    const p = state.positions[i];
    const underlying = state.markets[marketKey(p.market, p.marketId)].underlying;
    const { spot, greeks } = health.groups[underlying];
    const u = state.underlyings[underlying];
    const { im, mm } = shocksFor(u.risk, u.volatility, greeks.notional);
    for (const k of [im, mm]) {
      const { spotMoves, volMoves } = scenarioMoves(spot, k);
      await compare(i, spot, u.volatility, spotMoves, volMoves);
    }
  }
  await fc.assert(
    fc.asyncProperty(
      fc.nat(state.positions.length - 1),
      fc.integer({ min: 300, max: 3000 }), // spot, permille of the oracle's
      fc.bigInt({ min: 10n ** 15n, max: 3n * WAD }), // feed volatility (clamped with the skew)
      fc.array(fc.integer({ min: -1000, max: 1000 }), { minLength: 1, maxLength: 5 }), // permille of spot
      fc.array(fc.bigInt({ min: -2n * WAD, max: 2n * WAD }), { minLength: 1, maxLength: 3 }),
      async (index, permille, volatility, moves, volMoves) => {
        const p = state.positions[index];
        const oracle = state.prices[state.markets[marketKey(p.market, p.marketId)].underlying];
        const spot = (oracle * BigInt(permille)) / 1000n;
        const spotMoves = moves.map((m) => (spot * BigInt(m)) / 1000n);
        await compare(index, spot, volatility, [0n, ...spotMoves], [0n, ...volMoves]);
      },
    ),
    { seed: SEED, numRuns },
  );
  return cells;
}

/** The SDK's exposure of every position equals its market's `exposure` at the snapshot's block. */
async function compareExposures(f: Fixture, state: AccountState): Promise<void> {
  for (const p of state.positions) {
    const market = state.markets[marketKey(p.market, p.marketId)];
    const spot = state.prices[market.underlying];
    const volatility = state.underlyings[market.underlying].volatility;
    const e = await chainMarket(f, p.kind).exposure(f.accountId, p.marketId, spot, volatility, {
      blockTag: state.blockNumber,
    });
    expect(exposureOf(p, market, spot, volatility, state.timestamp)).to.deep.equal(sdkExposureOf(e));
  }
}

/** accountHealth equals engine.health and standardRequirements at the latest block; returns the SDK's. */
async function checkHealth(f: Fixture, client: XMarginClient = f.client): Promise<HealthBreakdown> {
  const state = await getAccountState(client, { accountId: f.accountId });
  const blockTag = state.blockNumber;
  const sdk = accountHealth(state);
  expect(toHealth(sdk)).to.deep.equal(toHealth(await f.sys.engine.health(f.accountId, { blockTag })));
  const [standardIM, standardMM] = await f.sys.engine.standardRequirements(f.accountId, { blockTag });
  expect([sdk.standardInitial, sdk.standardMaintenance]).to.deep.equal([standardIM, standardMM]);
  await compareExposures(f, state);
  return sdk;
}

const ETH = assetId("ETH").toLowerCase();
const BTC = assetId("BTC").toLowerCase();

describe("SDK scenario repricing against the engine", function () {
  it("scenarioPnlsOf equals OptionMarket.scenarioPnls and PerpMarket.scenarioPnls in every regime of a series", async function () {
    this.timeout(300_000);
    const f = await loadFixture(fixture);
    const regimes: Record<string, number> = {};
    const run = async (regime: string, numRuns: number): Promise<void> => {
      const state = await getAccountState(f.client, { accountId: f.accountId });
      await compareExposures(f, state);
      regimes[regime] = await compareScenarioPnls(f, state, numRuns);
    };
    await run("model", 80);
    await mineAt(f.sys, f.soon - HOUR / 2n);
    await run("lastHour", 40);
    // advanceTo refreshes the feeds 30 s before its target: that round is the first at or after expiry.
    await mineAt(f.sys, f.soon + 60n);
    await run("expired", 40);
    const feed = await ethers.getContractAt("MockV3Aggregator", await f.sys.router.primaryFeed(ETH));
    const round = (await feed.latestRoundData()).roundId;
    await (await f.sys.options.settleSeries(f.series.shortCall, round)).wait();
    await (await f.sys.options.settleSeries(f.series.longPut, round)).wait();
    const state = await getAccountState(f.client, { accountId: f.accountId });
    const settled = Object.values(state.markets).filter(
      (m) => m.kind === "option" && seriesStatus(m, state.timestamp) === "settled",
    );
    expect(settled).to.have.length(2);
    await run("settled", 40);
    console.log("      scenario cells compared:", JSON.stringify(regimes));
  });

  it("accountHealth equals engine.health and standardRequirements with options repriced: hours to expiry, low volatility, last hour, expiry", async function () {
    this.timeout(300_000);
    const f = await loadFixture(fixture);

    // 5 hours left at 60%: the two short-dated series are repriced at both levels (shocks ≈ 10% and
    // 7.3%), the 180-day call not.
    let h = await checkHealth(f);
    expect([h.groups[ETH].repricedInitial, h.groups[ETH].repricedMaintenance]).to.deep.equal([2, 2]);
    // The BTC put (3 days at 50%: σ√τ ≈ 0.045) too: shocks ≈ 10% and 6.1%.
    expect([h.groups[BTC].repricedInitial, h.groups[BTC].repricedMaintenance]).to.deep.equal([1, 1]);
    let state = await getAccountState(f.client, { accountId: f.accountId });
    const { im } = shocksFor(
      state.underlyings[ETH].risk,
      state.underlyings[ETH].volatility,
      h.groups[ETH].greeks.notional,
    );
    // Repricing matters: the Taylor estimate over all positions gives another requirement.
    expect(requirement(h.groups[ETH].greeks, h.groups[ETH].spot, im)).to.not.equal(h.groups[ETH].initial);

    // A 40% feed: the 180-day call (σ√τ ≈ 0.28, above both spot shocks) is repriced at IM for its
    // volatility (40% < 2 × 25 points), not at MM (40% > 2 × 15 points).
    await (await f.sys.volFeeds.ETH.updateAnswer(40n * 10n ** 6n)).wait();
    h = await checkHealth(f);
    expect([h.groups[ETH].repricedInitial, h.groups[ETH].repricedMaintenance]).to.deep.equal([3, 2]);
    state = await getAccountState(f.client, { accountId: f.accountId });
    const long = state.positions.find((p) => p.kind === "option" && p.marketId === f.series.longCall);
    if (!long) throw new Error("no 180-day call");
    const u = state.underlyings[ETH];
    const market = state.markets[marketKey(long.market, long.marketId)];
    const e = exposureOf(long, market, state.prices[ETH], u.volatility, state.timestamp);
    const shocks = shocksFor(u.risk, u.volatility, h.groups[ETH].greeks.notional);
    expect(e.modelVolatility).to.equal(wad("0.4"));
    expect(e.totalVolatility > shocks.im.spotShock && e.modelVolatility < 2n * shocks.im.volShock).to.equal(
      true,
    );
    expect(needsRepricing(e.totalVolatility, e.modelVolatility, shocks.im)).to.equal(true);
    expect(needsRepricing(e.totalVolatility, e.modelVolatility, shocks.mm)).to.equal(false);

    // A previewed trade in a repriced series equals the chain's health after it.
    const T = BigInt(await time.latest()) + 30n;
    const p = await preview(
      f.client,
      f.accountId,
      {
        type: "optionTrade",
        seriesId: f.series.shortCall,
        sizeDelta: -wad("2"),
      },
      { timestamp: T },
    );
    expect(p.revert).to.equal(undefined);
    await time.setNextBlockTimestamp(T);
    await tradeOption(f.client, {
      accountId: f.accountId,
      seriesId: f.series.shortCall,
      sizeDelta: -wad("2"),
      limitPrice: p.option?.premium ?? 0n,
      deadline: T,
    });
    expect(toHealth(await f.sys.engine.health(f.accountId))).to.deep.equal(p.health);
    await checkHealth(f);

    // Price moves with the feed back at 60%, then the last hour (Black-Scholes at one hour, low bound
    // at intrinsic value), then past expiry and unsettled (intrinsic value, still repriced: the settlement
    // round, not today's spot, decides which side of the strike the payoff ends on).
    await (await f.sys.volFeeds.ETH.updateAnswer(60n * 10n ** 6n)).wait();
    for (const price of [2900n, 3050n]) {
      await (await f.sys.feeds.ETH.updateAnswer(price * 10n ** 8n)).wait();
      h = await checkHealth(f);
      expect(h.groups[ETH].repricedInitial).to.equal(2);
    }
    await mineAt(f.sys, f.soon - HOUR / 2n);
    h = await checkHealth(f);
    expect(h.groups[ETH].repricedMaintenance).to.equal(2);
    await mineAt(f.sys, f.soon + 60n);
    h = await checkHealth(f);
    expect([h.groups[ETH].repricedInitial, h.groups[ETH].repricedMaintenance]).to.deep.equal([2, 2]);
  });
});
