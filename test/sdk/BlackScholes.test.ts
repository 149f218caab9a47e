import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { BlackScholesHarness } from "../../typechain-types";
import {
  BS_MAX_TIME_TO_EXPIRY,
  BS_MIN_TIME_TO_EXPIRY,
  WAD,
  blackScholes,
  blackScholesPrice,
  checkDomain,
  expWad,
  lnWad,
  normCdf,
} from "../../sdk/src";

const SEED = 20_250_603;

async function harness(): Promise<BlackScholesHarness> {
  return ethers.deployContract("BlackScholesHarness");
}

describe("SDK Black-Scholes (sdk/src/math/blackScholes.ts) against BlackScholesHarness", function () {
  it("expWad and lnWad return solady's values at reference points", function () {
    // e = 2.718281828459045235…, 1/e = 0.367879441171442321…, ln 2 = 0.693147180559945309…
    expect(expWad(WAD)).to.equal(2718281828459045235n);
    expect(expWad(-WAD)).to.equal(367879441171442321n);
    expect(expWad(0n)).to.equal(WAD);
    expect(expWad(-41446531673892822313n)).to.equal(0n);
    expect(lnWad(2n * WAD)).to.equal(693147180559945309n);
    expect(lnWad(WAD)).to.equal(0n);
    expect(() => lnWad(0n)).to.throw(RangeError, "LnWadUndefined");
  });

  it("normCdf equals the library's for random d in [−12, 12], including every Cody interval", async function () {
    const h = await loadFixture(harness);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.bigInt({ min: -12n * WAD, max: 12n * WAD }),
          fc.bigInt({ min: -WAD, max: WAD }), // |y| ≤ 0.46875 lives in |d| ≤ 0.663
          fc.constantFrom(0n, 1n, -1n, 662912607362388846n, 5656854249492380195n, 9_200000000000000000n),
        ),
        async (d) => {
          expect(normCdf(d), `d = ${d}`).to.equal(await h.normCdf(d));
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it("valuation (price, delta, gamma, vega, vanna, volga, σ√τ) and price equal the library's to the wei over its whole domain", async function () {
    const h = await loadFixture(harness);
    const inputs = fc
      .record({
        spot: fc.oneof(
          fc.bigInt({ min: 100n * WAD, max: 100_000n * WAD }),
          fc.bigInt({ min: 1n, max: 10n ** 36n }),
        ),
        // Strike as spot·m, m ∈ [0.01, 100] in permille-ish steps (the domain's moneyness bounds).
        moneyness: fc.bigInt({ min: 10n ** 16n, max: 100n * WAD }),
        timeToExpiry: fc.oneof(
          fc.bigInt({ min: BS_MIN_TIME_TO_EXPIRY, max: 90n * 86_400n }),
          fc.bigInt({ min: BS_MIN_TIME_TO_EXPIRY, max: BS_MAX_TIME_TO_EXPIRY }),
        ),
        volatility: fc.bigInt({ min: 10n ** 16n, max: 5n * WAD }),
        isCall: fc.boolean(),
      })
      .map((x) => ({ ...x, strike: (x.spot * x.moneyness) / WAD }))
      .filter((x) => {
        try {
          checkDomain(x.spot, x.strike, x.timeToExpiry, x.volatility);
          return true;
        } catch {
          return false;
        }
      });
    await fc.assert(
      fc.asyncProperty(inputs, async ({ spot, strike, timeToExpiry, volatility, isCall }) => {
        const chain = await h.valuation(spot, strike, timeToExpiry, volatility, isCall);
        expect(blackScholes(spot, strike, timeToExpiry, volatility, isCall)).to.deep.equal({
          price: chain.price,
          delta: chain.delta,
          gamma: chain.gamma,
          vega: chain.vega,
          vanna: chain.vanna,
          volga: chain.volga,
          totalVolatility: chain.totalVolatility,
        });
        expect(blackScholesPrice(spot, strike, timeToExpiry, volatility, isCall)).to.equal(chain.price);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it("prices a 30-day at-the-money ETH call at 60% like the library: 205.62 USD, delta 0.534, vega 341.85 USD, vanna 0.057, volga −4.21 USD", async function () {
    const h = await loadFixture(harness);
    const S = 3000n * WAD;
    // ≈ S·σ√τ/√(2π) = 3000·0.6·0.2867·0.3989 ≈ 205.9 USD; the library's value to the wei:
    const v = blackScholes(S, S, 30n * 86_400n, 6n * 10n ** 17n, true);
    expect({ price: v.price, delta: v.delta, gamma: v.gamma, vega: v.vega }).to.deep.equal({
      price: 205618221547606416000n,
      delta: 534269703591267736n,
      gamma: 770224042412950n,
      vega: 341852862659994535750n,
    });
    // σ√τ = 0.6·√(30/365) ≈ 0.1720; d1 = w/2, d2 = −w/2 at the money: vanna = φ·w/(2σ) ≈ 0.0568,
    // volga = −vega·w²/(4σ) ≈ −4.22 USD.
    expect([v.totalVolatility, v.vanna, v.volga]).to.deep.equal([
      172014653724298764n,
      56975477109999088n,
      -4214624334164316148n,
    ]);
    const chain = await h.valuation(S, S, 30n * 86_400n, 6n * 10n ** 17n, true);
    expect([chain.price, chain.vanna, chain.volga, chain.totalVolatility]).to.deep.equal([
      v.price,
      v.vanna,
      v.volga,
      v.totalVolatility,
    ]);
  });

  it("throws a RangeError named after the library's error outside the domain", function () {
    const S = 3000n * WAD;
    expect(() => blackScholes(S, S, 1_800n, WAD / 2n, true)).to.throw(
      RangeError,
      "TimeToExpiryOutOfRange(1800)",
    );
    expect(() => blackScholes(S, S / 101n, 86_400n, WAD / 2n, true)).to.throw(
      RangeError,
      "MoneynessOutOfRange",
    );
    expect(() => blackScholes(S, S, 86_400n, 6n * WAD, true)).to.throw(RangeError, "VolatilityOutOfRange");
  });
});
