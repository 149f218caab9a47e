import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad, WAD, withdrawToInitialMargin } from "../shared/system";
import { assetId, setFeedPrice } from "../shared/oracles";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { advanceTo, refreshFeeds } from "../shared/perps";

/**
 * Review round 168 (§4 row 630): the long campaign's option valuation band of −66.85 USD (round 163,
 * batch 47300–47319) traced to seed 47301, steps 126–135. The book, rebuilt here: an ETH call struck at
 * 3,000 (listed at step 16, one day to expiry), 13 s before expiry from step 25 on (the campaign's clock
 * moves only on `time` steps, so 111 steps sat in that second); ETH at 3,015; traders long 3.7, 2.2 and
 * 3.6 contracts (accounts 6, 9 and 10, all bought inside the last hour), the pool short 9.5; step 126
 * moved ETH's volatility feed from 17% to 103% (skew 0).
 *
 * `OptionMarket._value` in the last hour: a long at its low bound, intrinsic value, 3,015 − 3,000 = 15 a
 * contract; the short at its high bound, the model's price with one hour left (τ clamped to
 * `MIN_TIME_TO_EXPIRY`), at σ = 1.03: 22.037069… a contract (hand arithmetic below). Sizes net to zero,
 * so Σ values = −OI · (high − low) = −9.5 · 7.037069… = −66.852156… USD: the designed band, nothing
 * wrong. What each side is worth: with 13 s left, σ√τ = 1.03 · √(13 / 31,536,000) = 6.6e-4 and the call
 * is 7.5 standard deviations in the money, so it is worth 15.000000 (Black-Scholes at the true τ): the
 * longs are marked at their worth, and the whole band is the short's, here the pool's (the LPs'), until
 * expiry, when both sides are marked at intrinsic value and the pool's value rises by exactly the band.
 * The band a contract grows with σ and peaks at the strike (below); this book was 0.5% in the money
 * at 103%. Round 156's −2.9e-3 was not replayed; reliability.md §1 already cites the same mark at up to
 * 94 USD in an earlier campaign.
 */
const USDC = 10n ** 6n;
const ETH = assetId("ETH");
const YEAR = 31_536_000; // BlackScholes' year: 365 days
const ONE_HOUR = 3_600;
const LONGS = { alice: wad("3.7"), bob: wad("2.2"), carol: wad("3.6") };
const OPEN_INTEREST = 9.5;

/** erf by its Taylor series: to double precision for |x| < 3 (every d here is below 1). */
function erf(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 60; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}
const normCdf = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2));

/** Black-Scholes call with zero rates: S·N(d1) − K·N(d2), d1 = (ln(S/K) + σ²τ/2)/(σ√τ), d2 = d1 − σ√τ. */
function callPrice(spot: number, strike: number, sigma: number, seconds: number): number {
  const sd = sigma * Math.sqrt(seconds / YEAR);
  const d1 = (Math.log(spot / strike) + (sd * sd) / 2) / sd;
  return spot * normCdf(d1) - strike * normCdf(d1 - sd);
}

/**
 * The band by hand: −OI · (one-hour price − intrinsic value), S = 3,015, K = 3,000.
 * σ = 1.03: σ√τ = 1.03 · √(3,600 / 31,536,000) = 0.0110049; d1 = (0.0049875 + 0.0000606) / 0.0110049
 * = 0.458714, d2 = 0.447710; C = 3,015 · 0.676780 − 3,000 · 0.672819 = 22.037069; band = −9.5 · 7.037069
 * = −66.852156. σ = 0.60: C = 17.408730, band −22.882939. σ = 0.17: C = 15.004979, band −0.047298.
 */
const handBand = (sigma: number) => -OPEN_INTEREST * (callPrice(3015, 3000, sigma, ONE_HOUR) - 15);

/** USD WAD as a number (the chain's values carry ≤ 1e-13 of the library's error margin). */
const usd = (x: bigint) => Number(x) / 1e18;

/** Three traders long the ETH-3000 call (3.7, 2.2, 3.6), the pool short 9.5; a minute before expiry, ETH at 3,015. */
async function campaignBook() {
  const sys = await deployOptionsSystem();
  const ids = {
    alice: await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]),
    bob: await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]),
    carol: await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]),
  };
  const expiry = await fromNow(DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  await tradeOption(sys.options, sys.alice, ids.alice, call, LONGS.alice);
  await tradeOption(sys.options, sys.bob, ids.bob, call, LONGS.bob);
  await tradeOption(sys.options, sys.carol, ids.carol, call, LONGS.carol);
  // The campaign's 13 s; any second of the last hour gives the same marks (intrinsic, one-hour price).
  await advanceTo(sys, expiry - 60n);
  await setFeedPrice(sys.feeds.ETH, "3015");
  await setFeedPrice(sys.volFeeds.ETH, "1.03");
  return { ...sys, ids, call, expiry };
}

type Book = Awaited<ReturnType<typeof campaignBook>>;

/** Each holder's option value at the router's price and volatility now (what the engine marks). */
async function marks(f: Book): Promise<{ alice: bigint; bob: bigint; carol: bigint; pool: bigint }> {
  const [spot, vol] = [await f.router.getPrice(ETH), await f.router.getVolatility(ETH)];
  const value = async (id: bigint) => (await f.options.exposure(id, f.call, spot, vol)).value;
  return {
    alice: await value(f.ids.alice),
    bob: await value(f.ids.bob),
    carol: await value(f.ids.carol),
    pool: await value(f.poolAccountId),
  };
}

const bandOf = (m: Awaited<ReturnType<typeof marks>>) => m.alice + m.bob + m.carol + m.pool;

/**
 * The same 9.5 calls written by a trader instead of the pool, withdrawn to its initial requirement a
 * minute before expiry at 17% volatility (where the call is worth its intrinsic value, 15.004979 at one
 * hour): what a move to 103% does to a short whose side of the band it is.
 */
async function traderShortAtIm() {
  const sys = await deployOptionsSystem();
  const writer = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const expiry = await fromNow(DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  await tradeOption(sys.options, sys.carol, writer, call, -wad("9.5"));
  await advanceTo(sys, expiry - 60n);
  await setFeedPrice(sys.feeds.ETH, "3015");
  await setFeedPrice(sys.volFeeds.ETH, "0.17");
  await withdrawToInitialMargin(sys, sys.carol, writer);
  return { ...sys, writer };
}

describe("The campaign's −66.85 USD option valuation band (review round 168, row 630)", function () {
  it("marks the longs at intrinsic value (15 a contract) and the pool's short at the one-hour price (22.037069): −66.852156 USD", async function () {
    const f = await loadFixture(campaignBook);
    const m = await marks(f);
    expect(await f.options.nearSettlement(f.call)).to.equal(true);
    // Intrinsic value, exactly: 3,015 − 3,000 = 15 a contract.
    expect([m.alice, m.bob, m.carol]).to.deep.equal([wad("55.5"), wad("33"), wad("54")]);
    // The short at the model's one-hour price, σ√τ = 1.03·√(1/8,760) reported as the position's.
    const { totalVolatility } = await f.options.exposure(f.poolAccountId, f.call, wad("3015"), wad("1.03"));
    expect(usd(totalVolatility)).to.be.closeTo(1.03 * Math.sqrt(ONE_HOUR / YEAR), 1e-12);
    expect(usd(m.pool)).to.be.closeTo(-OPEN_INTEREST * callPrice(3015, 3000, 1.03, ONE_HOUR), 1e-9);
    expect(usd(bandOf(m))).to.be.closeTo(handBand(1.03), 1e-9);
    expect(usd(bandOf(m))).to.be.closeTo(-66.852156124, 1e-9);
  });

  it("moves with the volatility feed alone, the longs' marks unchanged: 17% −0.047298, 60% −22.882939, 103% −66.852156", async function () {
    const f = await loadFixture(campaignBook);
    for (const [sigma, expected] of [
      ["0.17", -0.047297687],
      ["0.6", -22.882938989],
      ["1.03", -66.852156124],
    ] as const) {
      await setFeedPrice(f.volFeeds.ETH, sigma);
      const m = await marks(f);
      expect(m.alice + m.bob + m.carol).to.equal(wad("142.5"));
      expect(usd(bandOf(m))).to.be.closeTo(handBand(Number(sigma)), 1e-9);
      expect(usd(bandOf(m))).to.be.closeTo(expected, 1e-9);
    }
  });

  it("is widest at the strike: S·(2N(σ√τ/2) − 1) a contract, 63.93 USD at the model's 500% cap (−607.33 for 9.5 contracts)", async function () {
    const f = await loadFixture(campaignBook);
    await setFeedPrice(f.feeds.ETH, "3000");
    await setFeedPrice(f.volFeeds.ETH, "5");
    // At S = K the time value C − (S − K)⁺ is largest (its slope in K is 1 − N(d2) > 0 below S,
    // −N(d2) < 0 above), and C = S·(2N(σ√τ/2) − 1): σ√τ = 5 · 0.0106843 = 0.0534217, N(0.0267108) =
    // 0.510655, so 3,000 · 0.021310 = 63.929 a contract.
    const perContract = 3000 * (2 * normCdf((5 * Math.sqrt(ONE_HOUR / YEAR)) / 2) - 1);
    expect(perContract).to.be.closeTo(63.93, 0.005);
    const m = await marks(f);
    expect(m.alice + m.bob + m.carol).to.equal(0n); // at the money: intrinsic value 0
    expect(usd(bandOf(m))).to.be.closeTo(-OPEN_INTEREST * perContract, 1e-9);
    expect(usd(bandOf(m))).to.be.closeTo(-607.325109, 1e-6);
    for (const spot of ["2985", "3015"]) {
      await setFeedPrice(f.feeds.ETH, spot); // 15 either side of the strike: narrower
      const off = bandOf(await marks(f));
      expect(off).to.be.greaterThan(bandOf(m));
      expect(usd(off)).to.be.closeTo(
        -OPEN_INTEREST * (callPrice(Number(spot), 3000, 5, ONE_HOUR) - Math.max(0, Number(spot) - 3000)),
        1e-9,
      );
    }
  });

  it("keeps the pool's deposits and exits closed while the band is open, and releases it whole to the pool at expiry", async function () {
    const f = await loadFixture(campaignBook);
    const before = await marks(f);
    expect(await f.pool.settlementPending()).to.equal(true);
    expect([await f.pool.maxDeposit(f.bob.address), await f.pool.maxRedeem(f.lp.address)]).to.deep.equal([
      0n,
      0n,
    ]);

    // At expiry both sides are at intrinsic value (at today's spot until settled): the band is 0 and the
    // pool's short rises by exactly what it was, 66.852156 USD, while its exits still wait.
    await time.increaseTo(f.expiry);
    const round = (await f.feeds.ETH.latestRound()) + 1n; // the first round at or after expiry: 3,015
    await refreshFeeds(f);
    const after = await marks(f);
    expect(bandOf(after)).to.equal(0n);
    expect(after.pool).to.equal(-wad("142.5"));
    expect(after.pool - before.pool).to.equal(-bandOf(before));
    expect(await f.pool.settlementPending()).to.equal(true);

    await f.options.settleSeries(f.call, round);
    expect(await f.pool.settlementPending()).to.equal(false);
    expect(await f.pool.maxDeposit(f.bob.address)).to.be.greaterThan(0n);
  });

  it("costs a short in its last hour 66.804858 of mark on 17% → 103%, against 2,100 of maintenance requirement the same move adds", async function () {
    const f = await loadFixture(traderShortAtIm);
    const before = await f.engine.health(f.writer);
    expect(before.equityMaintenance).to.be.greaterThan(before.maintenanceRequirement);
    await setFeedPrice(f.volFeeds.ETH, "1.03");
    const after = await f.engine.health(f.writer);
    // The band's part, by hand: 9.5 · (22.037069 − 15.004979) = 66.804858, though 60 s before expiry
    // the call is worth 15.000000 at either volatility.
    const markLoss = usd(before.equityMark - after.equityMark);
    const hand =
      OPEN_INTEREST * (callPrice(3015, 3000, 1.03, ONE_HOUR) - callPrice(3015, 3000, 0.17, ONE_HOUR));
    expect(markLoss).to.be.closeTo(hand, 1e-6);
    expect(markLoss).to.be.closeTo(66.804858, 1e-6);
    // Liquidatable, but from the requirement: the spot shock grows with σ (a 9.5 ETH perp's would too).
    expect(after.equityMaintenance).to.be.lessThan(after.maintenanceRequirement);
    const requirementRise = usd(after.maintenanceRequirement - before.maintenanceRequirement);
    expect(requirementRise).to.be.greaterThan(30 * markLoss);
    expect(usd(after.maintenanceRequirement - after.equityMaintenance)).to.be.greaterThan(10 * markLoss);
  });

  it("charges a buyer in the last hour the one-hour price plus spread and fee, and marks its contract at intrinsic value", async function () {
    const f = await loadFixture(campaignBook);
    const balance = () => f.vault.balanceOf(f.ids.alice, f.usdc);
    const [held, paidFrom] = [(await marks(f)).alice, await balance()];
    await time.setNextBlockTimestamp(BigInt(await time.latest()) + 1n);
    await tradeOption(f.options, f.alice, f.ids.alice, f.call, WAD);
    const paid = Number(paidFrom - (await balance())) / 1e6;
    // Premium: the one-hour price 22.037069 + 0.01 · vega (S·φ(d1)·√τ = 3,015 · 0.359102 · 0.0106843 =
    // 11.567871 a unit of volatility: 0.115679) + the 3 bp fee on 3,015 (0.9045) = 23.057248 USD.
    const d1 =
      (Math.log(3015 / 3000) + (1.03 ** 2 * ONE_HOUR) / YEAR / 2) / (1.03 * Math.sqrt(ONE_HOUR / YEAR));
    const vega = (3015 * Math.exp((-d1 * d1) / 2) * Math.sqrt(ONE_HOUR / YEAR)) / Math.sqrt(2 * Math.PI);
    expect(paid).to.be.closeTo(callPrice(3015, 3000, 1.03, ONE_HOUR) + 0.01 * vega + 0.9045, 2e-6);
    expect(paid).to.be.closeTo(23.057248, 2e-6);
    expect((await marks(f)).alice - held).to.equal(wad("15"));
  });
});
