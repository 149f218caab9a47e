import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { BlackScholesHarness } from "../../typechain-types";
import { WAD, wad } from "../shared/system";
import {
  SECONDS_PER_YEAR,
  blackScholes,
  erfc,
  normCdf,
  price as referencePrice,
  type BlackScholesInput,
  type BlackScholesValuation,
} from "../shared/blackScholesReference";

const HOUR = 3_600;
const DAY = 86_400;
const YEAR = BigInt(SECONDS_PER_YEAR);
const MAX_PRICE = 10n ** 36n;

/** Acceptance criteria. Each metric passes when |onchain − reference| ≤ max(rel·|reference|, floor). */
const PRICE_REL = 1e-6;
const GREEK_REL = 1e-5;
/** Absolute floors for tiny values, scaled to the spot S: price 1e-9·S, delta 1e-9, gamma 1e-9/S,
 * vega 1e-9·S (each floor is 1e-9 of the quantity made dimensionless by S), and never below 2 wei
 * (2e-18), the resolution of a WAD result (a gamma of 1e-20 per USD at S = 1e16 USD is 0 wei). */
const FLOOR = 1e-9;
const WAD_RESOLUTION = 2e-18;
const GAS_BUDGET = 30_000n;

/** The accuracy grid: K/S as exact fractions, σ, τ; calls and puts. */
const STRIKE_RATIOS: [bigint, bigint][] = [
  [1n, 2n],
  [4n, 5n],
  [9n, 10n],
  [1n, 1n],
  [11n, 10n],
  [5n, 4n],
  [2n, 1n],
];
const VOLS = ["0.1", "0.3", "0.6", "1", "2", "3"];
const EXPIRIES = [HOUR, DAY, 7 * DAY, 30 * DAY, 90 * DAY, 365 * DAY];
const SPOT = wad("3000");

interface WadInput {
  spot: bigint;
  strike: bigint;
  timeToExpiry: bigint;
  volatility: bigint;
  isCall: boolean;
}

const toNumber = (x: bigint): number => Number(x) / 1e18;

/** The reference sees exactly the WAD inputs the contract sees (to float64 precision). */
function toReferenceInput(i: WadInput): BlackScholesInput {
  return {
    spot: toNumber(i.spot),
    strike: toNumber(i.strike),
    timeToExpiry: Number(i.timeToExpiry),
    volatility: toNumber(i.volatility),
    isCall: i.isCall,
  };
}

function grid(spot: bigint): WadInput[] {
  const inputs: WadInput[] = [];
  for (const [num, den] of STRIKE_RATIOS) {
    for (const vol of VOLS) {
      for (const t of EXPIRIES) {
        for (const isCall of [true, false]) {
          inputs.push({
            spot,
            strike: (spot * num) / den,
            timeToExpiry: BigInt(t),
            volatility: wad(vol),
            isCall,
          });
        }
      }
    }
  }
  return inputs;
}

/** Corners of the domain (K/S ∈ {0.01, 100}, τ ∈ {1 hour, 2 years}, σ ∈ {1%, 500%}) and ATM, at
 * a tiny, an ordinary and the largest spot. */
function domainCorners(): WadInput[] {
  const inputs: WadInput[] = [];
  for (const spot of [wad("0.000001"), wad("3000"), MAX_PRICE / 100n]) {
    for (const strike of [spot / 100n, spot, spot * 100n]) {
      for (const t of [BigInt(HOUR), 2n * YEAR]) {
        for (const volatility of [wad("0.01"), wad("5")]) {
          for (const isCall of [true, false])
            inputs.push({ spot, strike, timeToExpiry: t, volatility, isCall });
        }
      }
    }
  }
  return inputs;
}

type Metric = "price" | "delta" | "gamma" | "vega" | "vanna" | "volga";
const METRICS: Metric[] = ["price", "delta", "gamma", "vega", "vanna", "volga"];
const zeros = (): Record<Metric, number> => ({ price: 0, delta: 0, gamma: 0, vega: 0, vanna: 0, volga: 0 });

/** Per metric: the largest relative error where the reference is above its floor, the largest absolute error in units of S (price, vega), 1 (delta) or 1/S (gamma), and
 * the largest error as a fraction of its tolerance (≤ 1 passes). */
class ErrorTracker {
  readonly maxRel = zeros();
  readonly maxScaledAbs = zeros();
  readonly maxOfTolerance = zeros();
  readonly failures: string[] = [];

  record(input: BlackScholesInput, onchain: BlackScholesValuation, reference: BlackScholesValuation): void {
    const floors: Record<Metric, number> = {
      price: Math.max(FLOOR * input.spot, WAD_RESOLUTION),
      delta: Math.max(FLOOR, WAD_RESOLUTION),
      gamma: Math.max(FLOOR / input.spot, WAD_RESOLUTION),
      vega: Math.max(FLOOR * input.spot, WAD_RESOLUTION),
      vanna: Math.max(FLOOR, WAD_RESOLUTION),
      volga: Math.max(FLOOR * input.spot, WAD_RESOLUTION),
    };
    for (const m of METRICS) {
      const err = Math.abs(onchain[m] - reference[m]);
      const rel = m === "price" ? PRICE_REL : GREEK_REL;
      const scale = m === "delta" || m === "vanna" ? 1 : m === "gamma" ? 1 / input.spot : input.spot;
      const tolerance = Math.max(rel * Math.abs(reference[m]), floors[m]);
      this.maxScaledAbs[m] = Math.max(this.maxScaledAbs[m], err / scale);
      this.maxOfTolerance[m] = Math.max(this.maxOfTolerance[m], err / tolerance);
      if (Math.abs(reference[m]) > floors[m]) {
        this.maxRel[m] = Math.max(this.maxRel[m], err / Math.abs(reference[m]));
      }
      if (err > tolerance) {
        this.failures.push(`${m} ${JSON.stringify(input)}: onchain ${onchain[m]} reference ${reference[m]}`);
      }
    }
  }

  print(title: string): void {
    console.log(`      ${title}`);
    for (const m of METRICS) {
      const unit = m === "delta" || m === "vanna" ? "" : m === "gamma" ? "/S" : "·S";
      console.log(
        `        ${m.padEnd(6)} max relative error ${this.maxRel[m].toExponential(2)}, ` +
          `max absolute error ${this.maxScaledAbs[m].toExponential(2)}${unit}, ` +
          `worst ${this.maxOfTolerance[m].toExponential(2)} of tolerance`,
      );
    }
  }
}

async function harness(): Promise<BlackScholesHarness> {
  return ethers.deployContract("BlackScholesHarness");
}

async function onchainValuation(bs: BlackScholesHarness, i: WadInput): Promise<BlackScholesValuation> {
  const v = await bs.valuation(i.spot, i.strike, i.timeToExpiry, i.volatility, i.isCall);
  return {
    price: toNumber(v.price),
    delta: toNumber(v.delta),
    gamma: toNumber(v.gamma),
    vega: toNumber(v.vega),
    vanna: toNumber(v.vanna),
    volga: toNumber(v.volga),
    totalVolatility: toNumber(v.totalVolatility),
  };
}

describe("BlackScholes", function () {
  describe("float64 reference (test/shared/blackScholesReference.ts)", function () {
    it("matches tabulated values of erfc and the normal CDF to 1e-14 relative", function () {
      // 20-digit values of erfc(x) and Φ(d) (A&S Table 7.1 and 26.1 give the first 10-15 of them;
      // these were computed with mpmath at 50 digits).
      const erfcTable: [number, number][] = [
        [0.3, 0.67137324054087257236],
        [1, 0.15729920705028513066],
        [3, 2.2090496998585441373e-5],
        [5, 1.5374597944280348502e-12],
      ];
      for (const [x, expected] of erfcTable) expect(erfc(x)).to.be.closeTo(expected, 1e-14 * expected);
      const cdfTable: [number, number][] = [
        [0, 0.5],
        [1, 0.84134474606854294859],
        [-1, 0.15865525393145705141],
        [1.96, 0.97500210485177956586],
        [-3, 0.0013498980316300945267],
        [-5, 2.8665157187919391167e-7],
        [-8, 6.2209605742717841235e-16],
        [-10, 7.619853024160526066e-24],
      ];
      for (const [d, expected] of cdfTable) expect(normCdf(d)).to.be.closeTo(expected, 1e-14 * expected);
    });

    it("matches high-precision Black-Scholes values to 1e-12 relative", function () {
      // S = K = 100, σ = 20%, τ = 1 year, r = 0: d1 = 0.1, d2 = −0.1, so
      // C = P = 100·(N(0.1) − N(−0.1)) = 7.96556745540579629..., delta_C = N(0.1) = 0.539827837277...,
      // gamma = φ(0.1)/(100·0.2) = 0.0198476273738505..., vega = 100·φ(0.1)·1 = 39.6952547477011...
      // (the other rows were computed with mpmath at 50 digits).
      const cases: [BlackScholesInput, Pick<BlackScholesValuation, "price" | "delta" | "gamma" | "vega">][] =
        [
          [
            { spot: 100, strike: 100, timeToExpiry: SECONDS_PER_YEAR, volatility: 0.2, isCall: true },
            {
              price: 7.9655674554057962931,
              delta: 0.53982783727702898147,
              gamma: 0.019847627373850588276,
              vega: 39.695254747701176551,
            },
          ],
          [
            { spot: 100, strike: 100, timeToExpiry: SECONDS_PER_YEAR, volatility: 0.2, isCall: false },
            {
              price: 7.9655674554057962931,
              delta: -0.46017216272297101853,
              gamma: 0.019847627373850588276,
              vega: 39.695254747701176551,
            },
          ],
          [
            { spot: 3000, strike: 3300, timeToExpiry: 30 * DAY, volatility: 0.6, isCall: true },
            {
              price: 98.107815141282258644,
              delta: 0.3198656856955551424,
              gamma: 0.00069286365621377210586,
              vega: 307.51756796337282507,
            },
          ],
          [
            { spot: 3000, strike: 2400, timeToExpiry: 7 * DAY, volatility: 0.8, isCall: false },
            {
              price: 2.4270369021969093412,
              delta: -0.019247544066973817236,
              gamma: 0.00014101071726930278602,
              vega: 19.471068905131124426,
            },
          ],
        ];
      for (const [input, expected] of cases) {
        const got = blackScholes(input);
        for (const m of ["price", "delta", "gamma", "vega"] as const) {
          expect(got[m]).to.be.closeTo(expected[m], 1e-12 * Math.abs(expected[m]));
        }
      }
    });

    it("has Greeks equal to finite differences of its price (1e-6 relative)", function () {
      const base: BlackScholesInput = {
        spot: 3000,
        strike: 3300,
        timeToExpiry: 30 * DAY,
        volatility: 0.6,
        isCall: false,
      };
      const at = (spot: number, volatility: number) => referencePrice({ ...base, spot, volatility });
      const h = 0.01; // USD; central differences have O(h²) error
      const g = blackScholes(base);
      expect((at(3000 + h, 0.6) - at(3000 - h, 0.6)) / (2 * h)).to.be.closeTo(
        g.delta,
        1e-6 * Math.abs(g.delta),
      );
      const dh = 1; // the second difference needs a larger step against cancellation
      const fd2 = (at(3000 + dh, 0.6) - 2 * at(3000, 0.6) + at(3000 - dh, 0.6)) / (dh * dh);
      expect(fd2).to.be.closeTo(g.gamma, 1e-6 * g.gamma);
      const dv = 1e-5;
      expect((at(3000, 0.6 + dv) - at(3000, 0.6 - dv)) / (2 * dv)).to.be.closeTo(g.vega, 1e-6 * g.vega);
      // vanna = ∂delta/∂σ and volga = ∂vega/∂σ, from the analytic delta and vega at σ ± dσ
      const greeksAt = (volatility: number) => blackScholes({ ...base, volatility });
      const ds = 1e-4;
      const [up, down] = [greeksAt(0.6 + ds), greeksAt(0.6 - ds)];
      expect((up.delta - down.delta) / (2 * ds)).to.be.closeTo(g.vanna, 1e-6 * Math.abs(g.vanna));
      expect((up.vega - down.vega) / (2 * ds)).to.be.closeTo(g.volga, 1e-6 * Math.abs(g.volga));
      expect(g.totalVolatility).to.be.closeTo(0.6 * Math.sqrt(30 / 365), 1e-15);
    });
  });

  describe("valuation", function () {
    it("matches the float64 reference over the grid: price 1e-6, Greeks (vanna, volga too) 1e-5 relative", async function () {
      const bs = await loadFixture(harness);
      const tracker = new ErrorTracker();
      const inputs = grid(SPOT);
      for (const i of inputs) {
        const ref = toReferenceInput(i);
        tracker.record(ref, await onchainValuation(bs, i), blackScholes(ref));
      }
      tracker.print(`${inputs.length} grid points (S = 3000; 7 strikes × 6 vols × 6 expiries × call/put):`);
      expect(tracker.failures).to.deep.equal([]);
    });

    it("matches the float64 reference at the corners of its domain and at extreme spots", async function () {
      const bs = await loadFixture(harness);
      const tracker = new ErrorTracker();
      const inputs = domainCorners();
      for (const i of inputs) {
        const ref = toReferenceInput(i);
        tracker.record(ref, await onchainValuation(bs, i), blackScholes(ref));
      }
      // At S = 1e16 USD a gamma is a few hundred wei, so its relative error there is WAD resolution.
      tracker.print(`${inputs.length} domain corners (S ∈ {1e-6, 3000, 1e16}, K/S ∈ {0.01, 1, 100}):`);
      expect(tracker.failures).to.deep.equal([]);
    });

    it("matches 20-digit values to a few wei", async function () {
      const bs = await loadFixture(harness);
      // Exact values in wei (mpmath, 50 digits, rounded): the reference cases above.
      const cases: [WadInput, [bigint, bigint, bigint, bigint]][] = [
        [
          { spot: wad("100"), strike: wad("100"), timeToExpiry: YEAR, volatility: wad("0.2"), isCall: true },
          [7965567455405796293n, 539827837277028981n, 19847627373850588n, 39695254747701176551n],
        ],
        [
          {
            spot: wad("3000"),
            strike: wad("3300"),
            timeToExpiry: BigInt(30 * DAY),
            volatility: wad("0.6"),
            isCall: true,
          },
          [98107815141282258644n, 319865685695555142n, 692863656213772n, 307517567963372825070n],
        ],
        [
          {
            spot: wad("3000"),
            strike: wad("2400"),
            timeToExpiry: BigInt(7 * DAY),
            volatility: wad("0.8"),
            isCall: false,
          },
          [2427036902196909341n, -19247544066973817n, 141010717269303n, 19471068905131124426n],
        ],
      ];
      for (const [i, [p, d, g, v]] of cases) {
        const got = await bs.valuation(i.spot, i.strike, i.timeToExpiry, i.volatility, i.isCall);
        // price within 1e-17·(S + K), vega within 1e-17·S, delta and gamma within 2 wei.
        const priceTolerance = (i.spot + i.strike) / 10n ** 17n;
        expect(got.price).to.be.within(p - priceTolerance, p + priceTolerance);
        expect(got.delta).to.be.within(d - 2n, d + 2n);
        expect(got.gamma).to.be.within(g - 2n, g + 2n);
        expect(got.vega).to.be.within(v - i.spot / 10n ** 17n, v + i.spot / 10n ** 17n);
        console.log(
          `      S ${toNumber(i.spot)} K ${toNumber(i.strike)}: errors in wei price ${got.price - p}, ` +
            `delta ${got.delta - d}, gamma ${got.gamma - g}, vega ${got.vega - v}`,
        );
      }
    });

    it("satisfies put-call parity C − P = S − K to the wei over the grid", async function () {
      const bs = await loadFixture(harness);
      for (const i of grid(SPOT).filter((x) => x.isCall)) {
        const call = await bs.valuation(i.spot, i.strike, i.timeToExpiry, i.volatility, true);
        const put = await bs.valuation(i.spot, i.strike, i.timeToExpiry, i.volatility, false);
        // Exact: both prices come from the same numerators, which differ by exactly (S − K)·1e18
        // (N(d) + N(−d) = 1e18 in WAD), unless one was clamped at 0 (then within 1 wei at S = 3000).
        const gap = call.price - put.price - (i.spot - i.strike);
        if (call.price > 0n && put.price > 0n) expect(gap).to.equal(0n);
        else expect(gap).to.be.within(-1n, 1n);
        // delta_C − delta_P = N(d1) − (N(d1) − 1) = 1 exactly; gamma and vega do not depend on the type.
        expect(call.delta - put.delta).to.equal(WAD);
        expect(call.gamma).to.equal(put.gamma);
        expect(call.vega).to.equal(put.vega);
        expect(call.delta).to.be.within(0n, WAD);
        expect(put.delta).to.be.within(-WAD, 0n);
      }
    });

    it("prices with price() exactly as valuation().price", async function () {
      const bs = await loadFixture(harness);
      for (const i of grid(SPOT).filter((_, k) => k % 7 === 0)) {
        const v = await bs.valuation(i.spot, i.strike, i.timeToExpiry, i.volatility, i.isCall);
        expect(await bs.price(i.spot, i.strike, i.timeToExpiry, i.volatility, i.isCall)).to.equal(v.price);
      }
    });
  });

  describe("normCdf", function () {
    it("is within 2e-16 of the reference N(d) for d from −10 to 10", async function () {
      const bs = await loadFixture(harness);
      let maxErr = 0;
      for (let k = -1000; k <= 1000; k += 3) {
        const d = k / 100;
        // k/100 as WAD, exactly: k·1e16.
        const got = toNumber(await bs.normCdf(BigInt(k) * 10n ** 16n));
        maxErr = Math.max(maxErr, Math.abs(got - normCdf(d)));
      }
      console.log(`      max |N_onchain − N_reference| over d ∈ [−10, 10]: ${maxErr.toExponential(2)}`);
      // The reference itself carries float64 rounding (ulp(0.9) = 1.1e-16).
      expect(maxErr).to.be.lessThan(1e-16 * 2);
    });

    it("returns tabulated tails to within 2 wei", async function () {
      const bs = await loadFixture(harness);
      // Φ(d) in wei (50-digit values, rounded): Φ(−1), Φ(−3), Φ(−5), Φ(−8), Φ(1.96), Φ(−10) = 7.6e-24 → 0.
      const table: [bigint, bigint][] = [
        [-wad("1"), 158655253931457051n],
        [-wad("3"), 1349898031630095n],
        [-wad("5"), 286651571879n],
        [-wad("8"), 622n],
        [wad("1.96"), 975002104851779566n],
        [-wad("10"), 0n],
      ];
      for (const [d, expected] of table)
        expect(await bs.normCdf(d)).to.be.within(expected - 2n, expected + 2n);
    });
  });

  describe("domain", function () {
    const S = wad("3000");
    const T = BigInt(30 * DAY);
    const V = wad("0.6");

    it("reverts with SpotOutOfRange for a zero spot or one above 1e36", async function () {
      const bs = await loadFixture(harness);
      await expect(bs.valuation(0n, S, T, V, true))
        .to.be.revertedWithCustomError(bs, "SpotOutOfRange")
        .withArgs(0n);
      await expect(bs.valuation(MAX_PRICE + 1n, MAX_PRICE, T, V, true))
        .to.be.revertedWithCustomError(bs, "SpotOutOfRange")
        .withArgs(MAX_PRICE + 1n);
      await bs.valuation(MAX_PRICE, MAX_PRICE, T, V, true);
    });

    it("reverts with StrikeOutOfRange for a zero strike or one above 1e36", async function () {
      const bs = await loadFixture(harness);
      await expect(bs.valuation(S, 0n, T, V, true))
        .to.be.revertedWithCustomError(bs, "StrikeOutOfRange")
        .withArgs(0n);
      await expect(bs.valuation(MAX_PRICE, MAX_PRICE + 1n, T, V, false))
        .to.be.revertedWithCustomError(bs, "StrikeOutOfRange")
        .withArgs(MAX_PRICE + 1n);
    });

    it("reverts with MoneynessOutOfRange when K/S leaves [0.01, 100]", async function () {
      const bs = await loadFixture(harness);
      // K = S/100 − 1 wei and K = 100·S + 1 wei are just outside; the bounds themselves are accepted.
      await expect(bs.valuation(S, S / 100n - 1n, T, V, true))
        .to.be.revertedWithCustomError(bs, "MoneynessOutOfRange")
        .withArgs(S, S / 100n - 1n);
      await expect(bs.valuation(S, S * 100n + 1n, T, V, false))
        .to.be.revertedWithCustomError(bs, "MoneynessOutOfRange")
        .withArgs(S, S * 100n + 1n);
      await bs.valuation(S, S / 100n, T, V, true);
      await bs.valuation(S, S * 100n, T, V, true);
    });

    it("reverts with TimeToExpiryOutOfRange outside [1 hour, 2 years], expired options included", async function () {
      const bs = await loadFixture(harness);
      for (const t of [0n, BigInt(HOUR) - 1n, 2n * YEAR + 1n]) {
        await expect(bs.valuation(S, S, t, V, true))
          .to.be.revertedWithCustomError(bs, "TimeToExpiryOutOfRange")
          .withArgs(t);
      }
      await bs.valuation(S, S, BigInt(HOUR), V, true);
      await bs.valuation(S, S, 2n * YEAR, V, true);
    });

    it("reverts with VolatilityOutOfRange outside [1%, 500%]", async function () {
      const bs = await loadFixture(harness);
      for (const v of [0n, wad("0.01") - 1n, wad("5") + 1n]) {
        await expect(bs.valuation(S, S, T, v, true))
          .to.be.revertedWithCustomError(bs, "VolatilityOutOfRange")
          .withArgs(v);
      }
      await bs.valuation(S, S, T, wad("0.01"), true);
      await bs.valuation(S, S, T, wad("5"), true);
    });

    it("applies the same checks to price()", async function () {
      const bs = await loadFixture(harness);
      await expect(bs.price(S, S, 0n, V, true))
        .to.be.revertedWithCustomError(bs, "TimeToExpiryOutOfRange")
        .withArgs(0n);
      await expect(bs.price(S, S, T, wad("6"), false))
        .to.be.revertedWithCustomError(bs, "VolatilityOutOfRange")
        .withArgs(wad("6"));
    });
  });

  describe("gas", function () {
    it(`spends at most ${GAS_BUDGET} gas per price+Greeks evaluation over the grid (gasleft() around the call)`, async function () {
      const bs = await loadFixture(harness);
      let max = 0n;
      let total = 0n;
      let maxPrice = 0n;
      const inputs = [...grid(SPOT), ...domainCorners()];
      for (const i of inputs) {
        const [, gasUsed] = await bs.valuationGas(i.spot, i.strike, i.timeToExpiry, i.volatility, i.isCall);
        const [, priceGas] = await bs.priceGas(i.spot, i.strike, i.timeToExpiry, i.volatility, i.isCall);
        if (gasUsed > max) max = gasUsed;
        if (priceGas > maxPrice) maxPrice = priceGas;
        total += gasUsed;
      }
      console.log(
        `      valuation: max ${max} gas, mean ${total / BigInt(inputs.length)} gas over ${inputs.length} inputs; ` +
          `price only: max ${maxPrice} gas`,
      );
      expect(max).to.be.lessThanOrEqual(GAS_BUDGET);
    });

    it(`spends at most ${GAS_BUDGET} gas per evaluation in a transaction ((gas(11 evaluations) − gas(1)) / 10)`, async function () {
      const bs = await loadFixture(harness);
      const run = async (n: bigint) => {
        const tx = await bs.evaluateMany(SPOT, wad("3300"), BigInt(30 * DAY), wad("0.6"), true, n);
        const receipt = await tx.wait();
        if (receipt === null) throw new Error("no receipt");
        return receipt.gasUsed;
      };
      await run(1n); // first write of lastPriceSum, so both measured transactions pay the same SSTORE
      const one = await run(1n);
      const eleven = await run(11n);
      const perEvaluation = (eleven - one) / 10n;
      console.log(`      in a transaction: ${perEvaluation} gas per evaluation (loop overhead included)`);
      expect(perEvaluation).to.be.lessThanOrEqual(GAS_BUDGET);
    });
  });
});
