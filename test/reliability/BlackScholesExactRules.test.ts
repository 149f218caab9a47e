/**
 * Black-Scholes exact rules (review round 102: mutation testing of contracts/libraries/BlackScholes.sol and
 * sdk/src/math/blackScholes.ts). Each specification below failed on at least one mutant that the
 * accuracy tests let through: the domain bounds of the SDK at their exact edges and with their arguments,
 * the clamp of a price the approximation leaves a few wei below 0, the first of Cody's intervals at exactly
 * y = 0.46875, and values to the wei in the tails and at the corners of the domain, where a change made to
 * the contract and the SDK alike keeps them equal to each other (the SDK's differential test cannot see it).
 * The exact values are the library's; beside each, its distance to a 60-digit value (mpmath) is stated.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { BlackScholesHarness } from "../../typechain-types";
import { blackScholes, blackScholesPrice, checkDomain, normCdf } from "../../sdk/src/math/blackScholes";

const WAD = 10n ** 18n;
const YEAR = 365n * 86_400n;
const MAX_PRICE = 10n ** 36n;
const S = 3000n * WAD;
const T = 30n * 86_400n;
const V = (6n * WAD) / 10n;
const GAS_BUDGET = 30_000n;

async function harness(): Promise<BlackScholesHarness> {
  return ethers.deployContract("BlackScholesHarness");
}

/** The message of the RangeError `f` throws, or "" when it returns. */
function sdkError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(RangeError);
    return (e as RangeError).message;
  }
  return "";
}

type Input = [spot: bigint, strike: bigint, timeToExpiry: bigint, volatility: bigint];

/** The contract's valuation of `input` in the shape of the SDK's `blackScholes`. */
async function chainValuation(bs: BlackScholesHarness, input: Input, isCall: boolean) {
  const v = await bs.valuation(...input, isCall);
  return {
    price: v.price,
    delta: v.delta,
    gamma: v.gamma,
    vega: v.vega,
    vanna: v.vanna,
    volga: v.volga,
    totalVolatility: v.totalVolatility,
  };
}

describe("BlackScholes exact rules (contract and SDK)", function () {
  describe("domain at its exact bounds", function () {
    // [inputs, the error's name, its arguments]: one wei (or one second) outside each bound.
    const refused: [Input, string, bigint[]][] = [
      [[0n, S, T, V], "SpotOutOfRange", [0n]],
      [[MAX_PRICE + 1n, MAX_PRICE, T, V], "SpotOutOfRange", [MAX_PRICE + 1n]],
      [[S, 0n, T, V], "StrikeOutOfRange", [0n]],
      [[MAX_PRICE, MAX_PRICE + 1n, T, V], "StrikeOutOfRange", [MAX_PRICE + 1n]],
      [[S, S / 100n - 1n, T, V], "MoneynessOutOfRange", [S, S / 100n - 1n]],
      [[S, 100n * S + 1n, T, V], "MoneynessOutOfRange", [S, 100n * S + 1n]],
      // K·100 < S compared exactly: K = 1 wei is too far below S = 101 wei.
      [[101n, 1n, T, V], "MoneynessOutOfRange", [101n, 1n]],
      [[S, S, 3_599n, V], "TimeToExpiryOutOfRange", [3_599n]],
      [[S, S, 2n * YEAR + 1n, V], "TimeToExpiryOutOfRange", [2n * YEAR + 1n]],
      [[S, S, T, WAD / 100n - 1n], "VolatilityOutOfRange", [WAD / 100n - 1n]],
      [[S, S, T, 5n * WAD + 1n], "VolatilityOutOfRange", [5n * WAD + 1n]],
    ];
    // Each bound itself, and both moneyness bounds at the largest prices.
    const accepted: Input[] = [
      [MAX_PRICE, MAX_PRICE, T, V],
      [MAX_PRICE, MAX_PRICE / 100n, T, V],
      [MAX_PRICE / 100n, MAX_PRICE, T, V],
      [S, S / 100n, T, V],
      [S, 100n * S, T, V],
      [100n, 1n, T, V],
      [1n, 100n, T, V],
      [S, S, 3_600n, V],
      [S, S, 2n * YEAR, V],
      [S, S, T, WAD / 100n],
      [S, S, T, 5n * WAD],
    ];

    it("refuses one unit outside each bound with the same error and arguments in the contract and the SDK", async function () {
      const bs = await loadFixture(harness);
      for (const [input, name, args] of refused) {
        for (const isCall of [true, false]) {
          await expect(bs.valuation(...input, isCall))
            .to.be.revertedWithCustomError(bs, name)
            .withArgs(...args);
          await expect(bs.price(...input, isCall))
            .to.be.revertedWithCustomError(bs, name)
            .withArgs(...args);
          const message = `${name}(${args.join(", ")})`;
          expect(sdkError(() => blackScholes(...input, isCall))).to.equal(message);
          expect(sdkError(() => blackScholesPrice(...input, isCall))).to.equal(message);
        }
        expect(sdkError(() => checkDomain(...input))).to.equal(`${name}(${args.join(", ")})`);
      }
    });

    it("names a negative spot or strike in the SDK (the contract's inputs are unsigned) for what it is", function () {
      // Before: a spot of −1 passed the `=== 0n` check and was refused as MoneynessOutOfRange(-1, S).
      const negative: [Input, string][] = [
        [[-1n, S, T, V], "SpotOutOfRange(-1)"],
        [[-S, S, T, V], `SpotOutOfRange(${-S})`],
        [[S, -1n, T, V], "StrikeOutOfRange(-1)"],
        [[S, -S, T, V], `StrikeOutOfRange(${-S})`],
      ];
      for (const [input, message] of negative) {
        expect(sdkError(() => checkDomain(...input))).to.equal(message);
        for (const isCall of [true, false]) {
          expect(sdkError(() => blackScholes(...input, isCall))).to.equal(message);
          expect(sdkError(() => blackScholesPrice(...input, isCall))).to.equal(message);
        }
      }
    });

    it("prices every bound itself, the SDK equal to the contract to the wei", async function () {
      const bs = await loadFixture(harness);
      for (const input of accepted) {
        expect(sdkError(() => checkDomain(...input))).to.equal("");
        for (const isCall of [true, false]) {
          const chain = await chainValuation(bs, input, isCall);
          expect(blackScholes(...input, isCall)).to.deep.equal(chain);
          expect(await bs.price(...input, isCall)).to.equal(chain.price);
          expect(blackScholesPrice(...input, isCall)).to.equal(chain.price);
        }
      }
    });
  });

  describe("the smallest price: a numerator below 0 clamped", function () {
    // S = 3,000, K = 3,030, one hour, 11%: d1 = −8.4658, d2 = −8.4670, N(d1) = N(d2) = 12 wei (the true
    // values are 1.2e-17 and 1.2e-17), so S·N(d1) − K·N(d2) = −360 wei·1e18: the call is clamped to 0.
    const input: Input = [S, 3030n * WAD, 3_600n, (11n * WAD) / 100n];

    it("prices the call at exactly 0 with delta N(d1) = 12 wei, in the contract and the SDK", async function () {
      const bs = await loadFixture(harness);
      const chain = await bs.valuation(...input, true);
      expect(chain.price).to.equal(0n);
      expect(chain.delta).to.equal(12n);
      expect(await bs.price(...input, true)).to.equal(0n);
      expect(blackScholes(...input, true).price).to.equal(0n);
      expect(blackScholesPrice(...input, true)).to.equal(0n);
    });

    it("prices the put at K − S − 360 wei, so parity misses by exactly the clamped 360 wei", async function () {
      const bs = await loadFixture(harness);
      const put = await bs.price(...input, false);
      expect(put).to.equal(30n * WAD - 360n);
      expect(blackScholesPrice(...input, false)).to.equal(put);
      // C − P = S − K + 360 wei: the one case where parity is not exact.
      expect(0n - put).to.equal(S - 3030n * WAD + 360n);
    });
  });

  describe("the normal CDF at Cody's interval edges and in the tails, to the wei", function () {
    // d, N(d) in wei; the 60-digit value in the comment. 662912607362388305 is the one d with
    // y = ⌊d/√2⌋ = 0.46875 exactly (the erf branch: the erfc branch gives one wei less, ...003).
    const table: [bigint, bigint][] = [
      [-662912607362388305n, 253693263391031004n], // 253693263391031003.93
      [662912607362388305n, 746306736608968996n], // 746306736608968996.07
      [-662912607362388304n, 253693263391031004n],
      [0n, 500000000000000000n], // exactly WAD / 2
      [-500000000000000000n, 308537538725986896n], // ...896.36
      [-2n * WAD, 22750131948179207n], // ...207.20
      // y = ⌊d · 0.707106781186547524⌋ (1/√2 one wei higher: ...137).
      [-1000000329999999989n, 158655174081131138n], // ...138.07
      // Cody's C8 = 2.15311535474e-8 rounded to 21531153547 wei tells here (C8 + 1 wei: ...768).
      [-1640751350599766397n, 50424520355272767n], // ...768.12: 1.12 wei low, within the 1.5-wei bound
      // e^{−d²/2} with d²/2 rounded down (up: ...751).
      [700000000003000009n, 758036347777863750n], // ...749.86
      [-5656854249492380199n, 7708628950n], // y = 4 exactly: 7708628950.14
      [-5700000000000000000n, 5990371401n], // 5990371401.06
      [-6n * WAD, 986587644n], // 986587645.04
      [-8500000000000000000n, 9n], // 9.48
      [-8600000000000000000n, 3n], // 3.99
      [-9n * WAD, 0n], // 0.11
      [-9100000000000000000n, 0n], // 0.05
    ];

    it("returns N(d) exactly, and N(−d) = 1e18 − N(d), in the contract and the SDK", async function () {
      const bs = await loadFixture(harness);
      for (const [d, n] of table) {
        expect(await bs.normCdf(d), `d = ${d}`).to.equal(n);
        expect(normCdf(d), `SDK d = ${d}`).to.equal(n);
        expect(await bs.normCdf(-d), `−d = ${d}`).to.equal(WAD - n);
        expect(normCdf(-d), `SDK −d = ${d}`).to.equal(WAD - n);
      }
    });
  });

  describe("price and Greeks to the wei at the corners of the domain", function () {
    // [name, inputs, isCall, price, delta, gamma, vega, vanna, volga, σ√τ]; the library's values, each within
    // the documented error of the 60-digit value (the price error in wei is in the name).
    const corners: [string, Input, boolean, bigint[]][] = [
      [
        "1-hour at-the-money call at 1% (price +1,488 wei)",
        [S, S, 3_600n, WAD / 100n],
        true,
        [
          127873121623008000n,
          500021312186937168n,
          1244631715946586330n,
          12787312150136160925n,
          2131218691689359n,
          -3649347074810n,
          106843460792672n,
        ],
      ],
      [
        "1-hour put 1% in the money at 1% (d1 = −93: K − S and delta −1)",
        [S, 3030n * WAD, 3_600n, WAD / 100n],
        false,
        [30n * WAD, -WAD, 0n, 0n, 0n, 0n, 106843460792672n],
      ],
      [
        "2-year call at K = 100·S and 500% (price +153,700 wei of 2,989.87 USD)",
        [S, 100n * S, 2n * YEAR, 5n * WAD],
        true,
        [
          2989871402053883916000n,
          998038354567391572n,
          293670209683n,
          26430318871528487640n,
          5216493921743557n,
          -63833703455872444148n,
          7071067811865475244n,
        ],
      ],
      [
        "2-year put at K = S/100 and 500% (price +1,537 wei)",
        [S, S / 100n, 2n * YEAR, 5n * WAD],
        false,
        [
          29898714020538839160n,
          -14145538827636n,
          2936702096n,
          264303188715279615n,
          35936123687658n,
          -638337034558711734n,
          7071067811865475244n,
        ],
      ],
      [
        "1-year call at K = 2·S and 10%: d1 = −6.88, in Cody's far tail (price 122,490,000 wei, +1,001)",
        [S, 2n * S, YEAR, WAD / 10n],
        true,
        [122490000n, 2961864n, 69319n, 62387676000n, 1451859336n, 29972787273591n, WAD / 10n],
      ],
      [
        "7-day put at K = S/2 and 300% (price +1,182 wei)",
        [S, S / 2n, 7n * 86_400n, 3n * WAD],
        false,
        [
          17122313953038150000n,
          -30318512998167675n,
          55072381387610n,
          28516931732214849413n,
          -33420443930175215n,
          26049516575866850662n,
          415454858830688604n,
        ],
      ],
      [
        "30-day call at S = 3,000.001, K = 3,000 (vega −154 wei; with d1²/2 rounded up, −1,014)",
        [3000n * WAD + 10n ** 15n, S, T, V],
        true,
        [
          205618755817695121117n,
          534270473815117593n,
          770223657299643n,
          341852919634825045260n,
          56974183907672184n,
          -4214625034454222516n,
          172014653724298764n,
        ],
      ],
      [
        "30-day at-the-money call at S = K = 1e36 (the largest price)",
        [MAX_PRICE, MAX_PRICE, T, V],
        true,
        [
          68539407182535472000000000000000000n,
          534269703591267736n,
          2n,
          113950954219998178583613390642330417n,
          56975477109999088n,
          -1404874778054772049596906151962145n,
          172014653724298764n,
        ],
      ],
      [
        "30-day at-the-money call at S = K = 1 wei (the smallest)",
        [1n, 1n, T, V],
        true,
        [
          0n,
          534269703591267736n,
          2310672127238851954612160423281759723n,
          0n,
          56975477109999088n,
          0n,
          172014653724298764n,
        ],
      ],
    ];

    for (const [name, input, isCall, [price, delta, gamma, vega, vanna, volga, w]] of corners) {
      it(`values the ${name} exactly, in the contract and the SDK`, async function () {
        const bs = await loadFixture(harness);
        const expected = { price, delta, gamma, vega, vanna, volga, totalVolatility: w };
        expect(await chainValuation(bs, input, isCall)).to.deep.equal(expected);
        expect(blackScholes(...input, isCall)).to.deep.equal(expected);
        expect(await bs.price(...input, isCall)).to.equal(price);
      });
    }

    it("keeps the put's Greeks in the far tail: gamma and vega as the call's, delta −1 + N(d1)", async function () {
      const bs = await loadFixture(harness);
      const input: Input = [S, 2n * S, YEAR, WAD / 10n];
      const [call, put] = [await bs.valuation(...input, true), await bs.valuation(...input, false)];
      expect(put.price).to.equal(3000n * WAD + 122490000n);
      expect(put.delta).to.equal(-WAD + 2961864n);
      expect([put.gamma, put.vega, put.vanna, put.volga]).to.deep.equal([
        call.gamma,
        call.vega,
        call.vanna,
        call.volga,
      ]);
    });
  });

  describe("gas", function () {
    it(`spends at most ${GAS_BUDGET} gas per price+Greeks evaluation at its worst input found`, async function () {
      const bs = await loadFixture(harness);
      // Both d1 and d2 in Cody's middle interval (the longest polynomials) and S·φ·w above 2^256 (the
      // 512-bit mulDiv), at the largest and an ordinary spot, calls and puts.
      let worst = 0n;
      let at = "";
      for (const spot of [MAX_PRICE / 2n, 10n ** 30n, S, 100n]) {
        for (const [num, den] of [
          [1n, 2n],
          [2n, 3n],
          [9n, 10n],
          [1n, 1n],
          [11n, 10n],
          [3n, 2n],
          [2n, 1n],
        ]) {
          for (const t of [3_600n, 86_400n, 7n * 86_400n, 90n * 86_400n, YEAR, 2n * YEAR]) {
            for (const v of [WAD / 100n, WAD / 10n, (3n * WAD) / 10n, WAD, 3n * WAD, 5n * WAD]) {
              for (const isCall of [true, false]) {
                const [, gas] = await bs.valuationGas(spot, (spot * num) / den, t, v, isCall);
                if (gas > worst) {
                  worst = gas;
                  at = `S ${spot}, K/S ${num}/${den}, τ ${t} s, σ ${v}, ${isCall ? "call" : "put"}`;
                }
              }
            }
          }
        }
      }
      console.log(`      worst valuation: ${worst} gas at ${at}`);
      expect(worst).to.be.lessThanOrEqual(GAS_BUDGET);
    });
  });
});
