import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { PortfolioMathHarness, RiskMathHarness } from "../../typechain-types";
import {
  type PerpMarketState,
  WAD,
  ceilDiv,
  divCeil,
  divFloor,
  drift,
  formatUsd,
  CELLS,
  getAccountState,
  linearRequirement,
  marketKey,
  mulDiv,
  needsRepricing,
  perpFundingAt,
  rateIntegral,
  requirement,
  scenarioMoves,
  spotShock,
  horizonVolatility,
  sqrt,
  worstScenarioLoss,
} from "../../sdk/src";
import { MarginMode, deploySystem, openAccount, wad } from "../shared/system";
import { mineAt, trade } from "../shared/perps";
import { sdkClient } from "../shared/sdk";

const SEED = 20_250_602;

describe("SDK math", function () {
  describe("fixed point", function () {
    it("sqrt rounds like OpenZeppelin Math.sqrt (floor root, +1 when rounding up an inexact root)", function () {
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }), (a) => {
          const r = sqrt(a);
          expect(r * r <= a && (r + 1n) * (r + 1n) > a).to.equal(true);
          expect(sqrt(a, "ceil")).to.equal(r * r === a ? r : r + 1n);
        }),
        { seed: SEED, numRuns: 2000 },
      );
    });

    it("mulDiv, ceilDiv, divFloor and divCeil round in the direction their names say", function () {
      fc.assert(
        fc.property(
          fc.bigInt({ min: 0n, max: 2n ** 128n }),
          fc.bigInt({ min: 0n, max: 2n ** 128n }),
          fc.bigInt({ min: 1n, max: 2n ** 128n }),
          fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
          (x, y, d, s) => {
            const down = mulDiv(x, y, d);
            expect(down * d <= x * y && (down + 1n) * d > x * y).to.equal(true);
            expect(mulDiv(x, y, d, "ceil")).to.equal((x * y) % d === 0n ? down : down + 1n);
            expect(ceilDiv(x, d)).to.equal(mulDiv(x, 1n, d, "ceil"));
            const f = divFloor(s, d);
            expect(f * d <= s && (f + 1n) * d > s).to.equal(true);
            const c = divCeil(s, d);
            expect(c * d >= s && (c - 1n) * d < s).to.equal(true);
          },
        ),
        { seed: SEED, numRuns: 2000 },
      );
    });

    it("formats USD with two rounded decimals and thousands separators", function () {
      expect(formatUsd(wad("1234.564999"))).to.equal("1,234.56");
      expect(formatUsd(wad("1234.565"))).to.equal("1,234.57");
      expect(formatUsd(-wad("2000"))).to.equal("-2,000.00");
      expect(formatUsd(-1n)).to.equal("0.00");
    });
  });

  describe("PortfolioMath against the contract library (PortfolioMathHarness)", function () {
    async function harness(): Promise<PortfolioMathHarness> {
      return ethers.deployContract("PortfolioMathHarness");
    }

    const greeks = fc.record({
      delta: fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n }),
      gamma: fc.oneof(fc.constant(0n), fc.bigInt({ min: -(10n ** 18n), max: 10n ** 18n })),
      vega: fc.oneof(fc.constant(0n), fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n })),
      optionSize: fc.oneof(fc.constant(0n), fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n })),
      notional: fc.bigInt({ min: 0n, max: 10n ** 30n }),
      vanna: fc.oneof(fc.constant(0n), fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n })),
      volga: fc.oneof(fc.constant(0n), fc.bigInt({ min: -(10n ** 26n), max: 10n ** 26n })),
    });
    const fraction = fc.bigInt({ min: 0n, max: WAD });
    const shocks = fc.record({
      spotShock: fraction,
      volShock: fc.bigInt({ min: 0n, max: 2n * WAD }),
      shortOptionFloor: fraction,
      contingency: fraction,
    });
    // The repriced positions' PnL per cell: none, or CELLS of them (USD WAD, either sign).
    const repricedPnls = fc.oneof(
      fc.constant([] as bigint[]),
      fc.array(fc.bigInt({ min: -(10n ** 27n), max: 10n ** 27n }), { minLength: CELLS, maxLength: CELLS }),
    );

    it("spotShock (with horizonVolatility) equals the library for random parameters", async function () {
      const h = await loadFixture(harness);
      await fc.assert(
        fc.asyncProperty(
          fc.record({
            floor: fraction,
            z: fc.bigInt({ min: 0n, max: 10n * WAD }),
            vol: fc.bigInt({ min: 0n, max: 10n * WAD }),
            horizon: fc.bigInt({ min: 3600n, max: 30n * 86_400n }),
            maxShock: fraction,
            sizeScale: fc.oneof(fc.constant(0n), fc.bigInt({ min: 10_000n * WAD, max: 10n ** 30n })),
            notional: fc.bigInt({ min: 0n, max: 10n ** 30n }),
          }),
          async (p) => {
            const sdk = spotShock(
              p.floor,
              p.z,
              horizonVolatility(p.vol, p.horizon),
              p.maxShock,
              p.sizeScale,
              p.notional,
            );
            expect(sdk).to.equal(
              await h.spotShock(p.floor, p.z, p.vol, p.horizon, p.maxShock, p.sizeScale, p.notional),
            );
          },
        ),
        { seed: SEED, numRuns: 300 },
      );
    });

    it("worstScenarioLoss and requirement equal the library over the 15 cells, with Γ, vega, vanna, volga, net short and repriced PnLs", async function () {
      const h = await loadFixture(harness);
      await fc.assert(
        fc.asyncProperty(
          greeks,
          fc.bigInt({ min: 1n, max: 10n ** 24n }),
          shocks,
          repricedPnls,
          async (g, spot, k, pnls) => {
            expect(worstScenarioLoss(g, spot, k, pnls)).to.equal(await h.worstScenarioLoss(g, spot, k, pnls));
            expect(requirement(g, spot, k, pnls)).to.equal(await h.requirement(g, spot, k, pnls));
            if (pnls.length === 0) expect(requirement(g, spot, k)).to.equal(requirement(g, spot, k, pnls));
          },
        ),
        { seed: SEED, numRuns: 400 },
      );
    });

    it("scenarioMoves and needsRepricing equal the library", async function () {
      const h = await loadFixture(harness);
      await fc.assert(
        fc.asyncProperty(
          fc.bigInt({ min: 1n, max: 10n ** 24n }),
          shocks,
          fc.oneof(fc.constant(0n), fraction),
          fc.bigInt({ min: 10n ** 16n, max: 5n * WAD }),
          async (spot, k, totalVolatility, modelVolatility) => {
            const [spotMoves, volMoves] = await h.scenarioMoves(spot, k);
            expect(scenarioMoves(spot, k)).to.deep.equal({
              spotMoves: [...spotMoves],
              volMoves: [...volMoves],
            });
            expect(needsRepricing(totalVolatility, modelVolatility, k)).to.equal(
              await h.needsRepricing(totalVolatility, modelVolatility, k),
            );
          },
        ),
        { seed: SEED, numRuns: 200 },
      );
    });

    it("linearRequirement equals RiskMath's and the grid's requirement on linear Greeks", async function () {
      const h: RiskMathHarness = await ethers.deployContract("RiskMathHarness");
      await fc.assert(
        fc.asyncProperty(
          fc.bigInt({ min: -(10n ** 24n), max: 10n ** 24n }),
          fc.bigInt({ min: 0n, max: 10n ** 30n }),
          fc.bigInt({ min: 1n, max: 10n ** 24n }),
          shocks,
          async (delta, notional, spot, k) => {
            const sdk = linearRequirement(delta, notional, spot, k.spotShock, k.contingency);
            expect(sdk).to.equal(
              await h.linearRequirement(delta, notional, spot, k.spotShock, k.contingency),
            );
            const g = { delta, gamma: 0n, vega: 0n, optionSize: 0n, notional, vanna: 0n, volga: 0n };
            expect(sdk).to.equal(requirement(g, spot, k));
          },
        ),
        { seed: SEED, numRuns: 200 },
      );
    });
  });

  describe("funding", function () {
    it("drifts at most at maxFundingVelocity: a skew beyond ±skewScale counts as ±skewScale, in the library and the SDK (PerpMathHarness)", async function () {
      const h = await ethers.deployContract("PerpMathHarness");
      // Reachable once governance halves skewScale below the traders' net skew while the backstop
      // holds the other side (setMarketParams bounds the skew with the backstop in it).
      const velocity = wad("0.1");
      for (const skew of [wad("3000"), -wad("3000"), wad("1000"), wad("999")]) {
        const expected =
          skew >= wad("1000") ? velocity : skew <= -wad("1000") ? -velocity : (velocity * skew) / wad("1000");
        expect(await h.drift(skew, wad("1000"), velocity), `skew ${skew}`).to.equal(expected);
        expect(drift(skew, wad("1000"), velocity), `SDK, skew ${skew}`).to.equal(expected);
      }
      await fc.assert(
        fc.asyncProperty(
          fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
          fc.bigInt({ min: 1n, max: 10n ** 27n }),
          fc.bigInt({ min: 0n, max: 10n * WAD }),
          fc.bigInt({ min: -WAD, max: WAD }),
          fc.bigInt({ min: 0n, max: 30n * 86_400n }),
          async (skew, skewScale, maxFundingVelocity, rate, dt) => {
            const ratePerDay = drift(skew, skewScale, maxFundingVelocity);
            expect(ratePerDay).to.equal(await h.drift(skew, skewScale, maxFundingVelocity));
            const abs = ratePerDay < 0n ? -ratePerDay : ratePerDay;
            expect(abs <= maxFundingVelocity).to.equal(true);
            const sdk = rateIntegral(rate, ratePerDay, WAD / 10n, dt);
            const [newRate, integral] = await h.rateIntegral(rate, ratePerDay, WAD / 10n, dt);
            expect([sdk.newRate, sdk.integral]).to.deep.equal([newRate, integral]);
          },
        ),
        { seed: SEED, numRuns: 100 },
      );
    });

    it("accrues rate and index like currentFundingRate/Index, through both clamps", async function () {
      this.timeout(120_000);
      const sys = await loadFixture(deploySystem);
      const client = await sdkClient(sys, sys.alice);
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000_000n * 10n ** 6n]]);
      const market = sys.markets.ETH;
      const compare = async (): Promise<void> => {
        const state = await getAccountState(client, { accountId: id });
        const m = state.markets[marketKey(await sys.perps.getAddress(), market)] as PerpMarketState;
        const { rate, index } = perpFundingAt(m, state.prices[m.underlying], state.timestamp);
        const blockTag = state.blockNumber;
        expect(rate).to.equal(await sys.perps.currentFundingRate(market, { blockTag }));
        expect(index).to.equal(await sys.perps.currentFundingIndex(market, { blockTag }));
      };
      // Long skew of 300 (30% of skewScale): the rate drifts up 0.03/day and hits the 0.01 cap after 8 h.
      await trade(sys.perps, sys.alice, id, market, wad("300"));
      for (const dt of [3_600n, 7n * 3_600n, 5n * 86_400n]) {
        await mineAt(sys, BigInt(await sys.perps.market(market).then((x) => x.lastFundingTime)) + dt);
        await compare();
      }
      // Flip the skew to −200: from +0.01 the rate drifts down through zero to the −0.01 clamp.
      await trade(sys.perps, sys.alice, id, market, -wad("500"));
      for (const dt of [600n, 12n * 3_600n, 3n * 86_400n]) {
        await mineAt(sys, BigInt(await sys.perps.market(market).then((x) => x.lastFundingTime)) + dt);
        await compare();
      }
      expect(await sys.perps.currentFundingRate(market)).to.equal(-wad("0.01"));
    });
  });
});
