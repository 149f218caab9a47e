/**
 * Options beyond the model's moneyness range (docs/reliability.md §4, rows 112 and 117; review round 46):
 * priced from the nearest strike inside the range, widened by the strike gap, and repriced in every
 * margin scenario. Bounds against the true value, the SDK against the chain, and the gas it costs.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, openAccount, wad } from "../shared/system";
import { advanceTo } from "../shared/perps";
import {
  DAY,
  FULL_SKEW_STEP_PARAMS,
  HOUR,
  deployOptionsSystem,
  fromNow,
  listSeries,
  tradeOption,
  unsettledSeries,
} from "../shared/options";
import { setFeedPrice } from "../shared/oracles";
import { accountHealth, getAccountState, toHealth } from "../../sdk/src";
import { sdkClient } from "../shared/sdk";
import { optionExposure, optionScenarioPnls, optionValuation } from "../../sdk/src/markets/option";
import { price as referencePrice } from "../shared/blackScholesReference";
import { mulberry32 } from "../../scripts/lib/random";

const USDC = 10n ** 6n;

async function optionsFixture() {
  const sys = await deployOptionsSystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 400_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 400_000n * USDC]]);
  return { ...sys, aliceAccount: alice, bobAccount: bob };
}

describe("Options beyond the model's moneyness range", function () {
  describe("prices and exposure: chain = SDK to the wei", function () {
    it("the bounds beyond the edge bracket the true value (zero-rate Black-Scholes at the option's own strike): bid ≤ value ≤ ask, calls and puts, both edges, every τ regime", function () {
      const rand = mulberry32(4646);
      const now = 10_000_000n;
      let cases = 0;
      let worstLowSlack = 0;
      for (let c = 0; c < 10_000; c++) {
        const isCall = rand() < 0.5;
        const S = 10 ** (rand() * 8 - 2); // 0.01 .. 1e6 USD
        const ratio =
          rand() < 0.5 ? 100 * (1 + rand() * rand() * 50) : 1 / (100 * (1 + rand() * rand() * 50));
        const K = S * ratio;
        const tauS = [600, 3599, 3600, 86_400, 30 * 86_400, 700 * 86_400][Math.floor(rand() * 6)];
        const sigma = [0.01, 0.2, 0.8, 2, 5][Math.floor(rand() * 5)];
        const spot = BigInt(Math.round(S * 1e6)) * 10n ** 12n;
        const strike = BigInt(Math.round(K * 1e6)) * 10n ** 12n;
        if (spot === 0n || strike === 0n) continue;
        const m = unsettledSeries(strike, now + BigInt(tauS), isCall);
        const v = optionValuation(m, spot, BigInt(Math.round(sigma * 1e6)) * 10n ** 12n, now);
        const s = Number(spot) / 1e18;
        const k = Number(strike) / 1e18;
        const value = referencePrice({ spot: s, strike: k, timeToExpiry: tauS, volatility: sigma, isCall });
        const upper = referencePrice({
          spot: s,
          strike: k,
          timeToExpiry: Math.max(tauS, 3600),
          volatility: sigma,
          isCall,
        });
        const tol = 1e-12 * (s + k) + 1e-15;
        const low = Number(v.low) / 1e18;
        const high = Number(v.high) / 1e18;
        expect(low, `low S ${s} K ${k} τ ${tauS} σ ${sigma} call ${isCall}`).to.be.lte(value + tol);
        expect(high, `high S ${s} K ${k} τ ${tauS} σ ${sigma} call ${isCall}`).to.be.gte(upper - tol);
        expect(v.totalVolatility).to.equal(1n);
        worstLowSlack = Math.max(worstLowSlack, (value - low) / s);
        cases++;
      }
      console.log(
        `      ${cases} cases beyond the edge; widest bid below value ${worstLowSlack.toFixed(4)}·S`,
      );
      expect(cases).to.be.gte(9_700);
    });

    it("exposure and scenario PnLs of longs and shorts, calls and puts, strikes far above and below spot, skews ±, volatility moves that cross the clamp, the last hour and expired-unsettled", async function () {
      this.timeout(120_000);
      const sys = await loadFixture(optionsFixture);
      const { options, alice, bob } = sys;
      const near = await fromNow(2n * HOUR + 30n * 60n);
      const mid = await fromNow(30n * DAY);
      const far = await fromNow(700n * DAY);
      const ids: bigint[] = [];
      for (const expiry of [near, mid, far]) {
        for (const [strike, isCall] of [
          ["300000", true],
          ["90000", true],
          ["3000", true],
          ["30", true],
          ["3000", false],
          ["100", false],
          ["30", false],
        ] as const) {
          const id = await listSeries(options, "ETH", strike, expiry, isCall, FULL_SKEW_STEP_PARAMS);
          ids.push(id);
        }
      }
      // Skews of both signs (the volatility moves are added to them before the clamp).
      for (let i = 0; i < ids.length; i++) {
        const skew = [wad("0.05"), -wad("0.05"), 0n][i % 3];
        if (skew !== 0n) await options.setSkew(ids[i], skew);
      }
      // One long and one short account per series (an account holds at most five markets).
      const holders = new Map<bigint, [bigint, bigint]>();
      for (const id of ids) {
        const long = await openAccount(sys, bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
        const short = await openAccount(sys, alice, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
        await tradeOption(options, bob, long, id, wad("2")); // long 2
        await tradeOption(options, alice, short, id, -wad("1")); // short 1
        holders.set(id, [long, short]);
      }
      const rand = mulberry32(46);
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];
      let cases = 0;
      let beyond = 0;
      const check = async (label: string, n: number) => {
        const block = await ethers.provider.getBlock("latest");
        const blockTag = block!.number;
        const timestamp = BigInt(block!.timestamp);
        for (let c = 0; c < n; c++) {
          const id = pick(ids);
          const info = await options.series(id, { blockTag });
          const m = {
            kind: "option",
            market: (await options.getAddress()).toLowerCase(),
            marketId: id,
            underlying: info.underlying.toLowerCase(),
            strike: info.strike,
            expiry: info.expiry,
            isCall: info.isCall,
            settled: info.settled,
            skew: info.skew,
            settlementPrice: info.settlementPrice,
          } as never as Parameters<typeof optionExposure>[1];
          // Spot: strike/spot anywhere in [1/1000, 1000], edges included.
          const ratio = pick([
            0.001, 0.009, 0.00999, 0.01, 0.0101, 0.05, 1, 20, 99, 99.99, 100, 100.01, 101, 150, 1000,
          ]);
          const jitter = 1 + (rand() - 0.5) * 1e-6;
          let spot = BigInt(Math.floor((Number(info.strike) / 1e18 / (ratio * jitter)) * 1e6)) * 10n ** 12n;
          if (rand() < 0.2) spot = info.strike * 100n + BigInt(Math.floor(rand() * 3)) - 1n; // ±1 wei at the edge
          if (rand() < 0.1) spot = info.strike / 100n + BigInt(Math.floor(rand() * 3)) - 1n;
          if (spot <= 0n) spot = 1n;
          const volatility = pick([
            wad("0.01"),
            wad("0.05"),
            wad("0.3"),
            wad("0.8"),
            wad("2"),
            wad("5"),
            wad("8"),
          ]);
          const shock = pick([wad("0.01"), wad("0.1"), wad("0.3"), wad("0.9")]);
          const full = (spot * shock) / WAD;
          const spotMoves = [-full, -full / 2n, 0n, full / 2n, full];
          const dv = pick([wad("0.001"), wad("0.05"), wad("0.3"), wad("2.5"), wad("4.9"), wad("9")]);
          const volMoves = [-dv, 0n, dv];
          const k = info.strike;
          if (k * 100n < spot || k > spot * 100n) beyond++;
          const [longAccount, shortAccount] = holders.get(id)!;
          for (const [owner, account] of [
            ["long", longAccount],
            ["short", shortAccount],
          ] as const) {
            const pos = {
              kind: "option",
              market: m.market,
              marketId: id,
              size: await options.positionSize(account, id, { blockTag }),
            } as never as Parameters<typeof optionExposure>[0];
            const e = await options.exposure(account, id, spot, volatility, { blockTag });
            const s = optionExposure(pos, m, spot, volatility, timestamp);
            const where = `${label} ${owner} series ${id} (K ${k}, call ${info.isCall}) spot ${spot} vol ${volatility}`;
            expect(
              [
                e.delta,
                e.gamma,
                e.vega,
                e.vanna,
                e.volga,
                e.totalVolatility,
                e.modelVolatility,
                e.value,
                e.notional,
                e.optionSize,
                e.timeValue,
              ],
              `exposure, ${where}`,
            ).to.deep.equal([
              s.delta,
              s.gamma,
              s.vega,
              s.vanna,
              s.volga,
              s.totalVolatility,
              s.modelVolatility,
              s.value,
              s.notional,
              s.optionSize,
              s.timeValue,
            ]);
            const chain = await options.scenarioPnls(account, id, spot, volatility, spotMoves, volMoves, {
              blockTag,
            });
            const sdk = optionScenarioPnls(pos as never, m, spot, volatility, timestamp, spotMoves, volMoves);
            expect([...chain], `scenarios, ${where} moves ±${full} ±${dv}`).to.deep.equal(sdk);
            cases++;
          }
        }
      };
      await check("30 days+", 60);
      // accountHealth (SDK) = engine.health (chain) for every holder and the pool, the feed across both edges.
      let healths = 0;
      // One client a holder: a client reads its deployment's constants once (quote token, decimals).
      const clients = new Map([bob, alice].map((o) => [o, sdkClient(sys, o)] as const));
      for (const price of ["2999.7", "3000.3", "10000.1", "3.5", "2999999"]) {
        await setFeedPrice(sys.feeds.ETH, price);
        for (const [long, short] of holders.values()) {
          for (const [owner, id] of [
            [bob, long],
            [alice, short],
          ] as const) {
            const state = await getAccountState(await clients.get(owner)!, { accountId: id });
            expect(toHealth(accountHealth(state)), `account ${id} at ${price}`).to.deep.equal(
              toHealth(await sys.engine.health(id, { blockTag: state.blockNumber })),
            );
            healths++;
          }
        }
      }
      await setFeedPrice(sys.feeds.ETH, "3000");
      console.log(`      ${healths} account healths SDK = chain across the edges`);
      await time.increaseTo(near - HOUR + 600n); // the near series' last hour
      await check("last hour", 40);
      await time.increaseTo(near + 60n); // expired, unsettled
      await check("expired", 20);
      console.log(
        `      ${cases} position cases, ${beyond} of ${cases / 2} valuations beyond the model's range`,
      );
      expect(cases).to.equal(240);
    });
  });

  describe("gas", function () {
    it("costs the pool's health at most 300,000 gas per series beyond the range (every cell of both grids repriced, with Greeks): the MAX_LIVE_SERIES worst case (row 117)", async function () {
      const sys = await deployOptionsSystem();
      const { options, engine } = sys;
      const pool = sys.poolAccountId;
      const base = await engine.health.estimateGas(pool);
      const mid = await fromNow(30n * DAY);
      const near = await fromNow(2n * HOUR);
      const ids: bigint[] = [];
      for (let i = 0; i < 4; i++)
        ids.push(await listSeries(options, "ETH", String(290000 + 2500 * i), mid, true));
      for (const id of ids) {
        const acct = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
        await tradeOption(options, sys.bob, acct, id, wad("1"));
      }
      const inModel = (await engine.health.estimateGas(pool)) - base;
      await setFeedPrice(sys.feeds.ETH, "2890"); // K/S > 100 for all four
      const beyond = (await engine.health.estimateGas(pool)) - base;
      await setFeedPrice(sys.feeds.ETH, "3000");
      const nearIds: bigint[] = [];
      for (let i = 0; i < 4; i++)
        nearIds.push(await listSeries(options, "ETH", String(2800 + 100 * i), near, true));
      for (const id of nearIds) {
        const acct = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
        await tradeOption(options, sys.bob, acct, id, wad("1"));
      }
      await advanceTo(sys, near - HOUR + 60n);
      const lastHour = (await engine.health.estimateGas(pool)) - base - inModel; // the four near ones, in their last hour
      const perBeyond = beyond / 4n;
      console.log(
        `      pool health: base ${base}; per series in the model ${inModel / 4n}, beyond it ${perBeyond}, in its last hour ~${lastHour / 4n}; worst case 32 × (${perBeyond} + 75,000) ≈ ${(32n * (perBeyond + 75_000n)) / 1000n}k gas`,
      );
      expect(perBeyond).to.be.lt(300_000n);
    });
  });
});
