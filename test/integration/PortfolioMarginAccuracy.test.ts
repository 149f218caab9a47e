import { expect } from "chai";
import { ethers } from "hardhat";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import type { BlackScholesHarness, PortfolioMathHarness } from "../../typechain-types";
import { DEFAULT_RISK_PARAMS, WAD } from "../shared/system";
import { underCoverage } from "../shared/coverage";
import {
  distribution,
  fullRevaluationRequirement,
  greekRequirement,
  grossNotional,
  type Requirement,
  worstScenario,
  type GridParams,
  type OptionLeg,
  type Portfolio,
} from "../shared/fullRevaluation";

const SEED = 20_240_611;
const RUNS = 1_000;
/** The on-chain requirement may fall below full revaluation by at most this fraction of gross notional. */
const TOLERANCE = 0.01;
const HOUR = 3_600;
const DAY = 86_400;
const EXPIRIES = [HOUR, 6 * HOUR, DAY, 3 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 90 * DAY, 180 * DAY, 365 * DAY];

/**
 * Random books on one underlying. Every number is a short decimal (integer USD, sizes in tenths,
 * volatility in basis points), so the float64 and WAD inputs are the same numbers.
 */
const legArb = fc.record({
  moneynessPct: fc.integer({ min: 60, max: 150 }),
  timeToExpiry: fc.constantFrom(...EXPIRIES),
  isCall: fc.boolean(),
  sizeTenths: fc.integer({ min: -200, max: 200 }).filter((x) => x !== 0),
});
const portfolioArb = fc.record({
  spot: fc.integer({ min: 500, max: 5_000 }),
  volBps: fc.integer({ min: 2_000, max: 15_000 }),
  legs: fc.array(legArb, { minLength: 1, maxLength: 6 }),
  perpTenths: fc.integer({ min: -200, max: 200 }),
});
type Sample = typeof portfolioArb extends fc.Arbitrary<infer T> ? T : never;

const wadOf = (x: number): bigint => BigInt(x) * WAD;
const tenths = (x: number): bigint => (BigInt(x) * WAD) / 10n;
const toNumber = (x: bigint): number => Number(x) / 1e18;
/** a·b / 1e18 rounded toward −∞ (SignedWadMath.mulWadDown, as OptionMarket.exposure). */
const mulWadDown = (a: bigint, b: bigint): bigint => {
  const p = a * b;
  return p >= 0n || p % WAD === 0n ? p / WAD : p / WAD - 1n;
};
const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

interface Level {
  /** On-chain requirement (USD). */
  chain: number;
  /** Full revaluation with the engine's floor and contingency. */
  full: Requirement;
  /** The engine's Taylor requirement recomputed in float64 from the reference's Greeks. */
  taylor: number;
}

interface Outcome {
  imGrid: GridParams;
  im: Level;
  mm: Level;
  notional: number;
  /** Net short option contracts · spot (what the short-option floor multiplies). */
  netShortSpot: number;
  portfolio: Portfolio;
}

async function evaluate(
  math: PortfolioMathHarness,
  bs: BlackScholesHarness,
  sample: Sample,
): Promise<Outcome> {
  const spot = wadOf(sample.spot);
  const volatility = BigInt(sample.volBps) * 10n ** 14n;
  const legs = sample.legs.map((l) => {
    const strikeUsd = Math.round((sample.spot * l.moneynessPct) / 100);
    return { ...l, strikeUsd, strike: wadOf(strikeUsd), size: tenths(l.sizeTenths) };
  });
  // Greeks and notional as the engine aggregates them from OptionMarket.exposure.
  const valuations = await Promise.all(
    legs.map((l) => bs.valuation(spot, l.strike, l.timeToExpiry, volatility, l.isCall)),
  );
  const perp = tenths(sample.perpTenths);
  const greeks = {
    delta: perp,
    gamma: 0n,
    vega: 0n,
    optionSize: 0n,
    notional: ceilDiv(abs(perp) * spot, WAD),
  };
  legs.forEach((l, i) => {
    greeks.delta += mulWadDown(l.size, valuations[i].delta);
    greeks.gamma += mulWadDown(l.size, valuations[i].gamma);
    greeks.vega += mulWadDown(l.size, valuations[i].vega);
    greeks.optionSize += l.size;
    greeks.notional += ceilDiv(abs(l.size) * spot, WAD);
  });
  const p = DEFAULT_RISK_PARAMS;
  const shock = (floor: bigint, z: bigint) =>
    math.spotShock(floor, z, volatility, p.horizon, p.maxShock, p.sizeScale, greeks.notional);
  const [imShock, mmShock] = await Promise.all([
    shock(BigInt(p.imShockFloor), BigInt(p.imZ)),
    shock(BigInt(p.mmShockFloor), BigInt(p.mmZ)),
  ]);
  const shocks = (spotShock: bigint, volShock: bigint) => ({
    spotShock,
    volShock,
    shortOptionFloor: BigInt(p.shortOptionFloor),
    contingency: BigInt(p.contingency),
  });
  const [imChain, mmChain] = await Promise.all([
    math.requirement(greeks, spot, shocks(imShock, BigInt(p.imVolShock))),
    math.requirement(greeks, spot, shocks(mmShock, BigInt(p.mmVolShock))),
  ]);

  const portfolio: Portfolio = {
    spot: sample.spot,
    volatility: sample.volBps / 10_000,
    options: legs.map(
      (l): OptionLeg => ({
        strike: l.strikeUsd,
        timeToExpiry: l.timeToExpiry,
        isCall: l.isCall,
        size: l.sizeTenths / 10,
      }),
    ),
    perp: sample.perpTenths / 10,
  };
  const grid = (spotShock: bigint, volShock: bigint): GridParams => ({
    spotShock: toNumber(spotShock),
    volShock: toNumber(volShock),
    shortOptionFloor: toNumber(BigInt(p.shortOptionFloor)),
    contingency: toNumber(BigInt(p.contingency)),
  });
  const level = (chain: bigint, g: GridParams): Level => ({
    chain: toNumber(chain),
    full: fullRevaluationRequirement(portfolio, g),
    taylor: greekRequirement(portfolio, g).total,
  });
  const netOptions = portfolio.options.reduce((sum, o) => sum + o.size, 0);
  const imGrid = grid(imShock, BigInt(p.imVolShock));
  return {
    imGrid,
    im: level(imChain, imGrid),
    mm: level(mmChain, grid(mmShock, BigInt(p.mmVolShock))),
    notional: grossNotional(portfolio),
    netShortSpot: Math.max(-netOptions, 0) * portfolio.spot,
    portfolio,
  };
}

function abs(x: bigint): bigint {
  return x < 0n ? -x : x;
}

const pct = (x: number): string => `${(100 * x).toFixed(3)}%`;
const LEVELS = ["im", "mm"] as const;
/** Short-option floors tried in the floor view (the engine's hard bound is 50%). */
const FLOORS = [0.05, 0.1, 0.2, 0.5];

/** (greek − full) / notional, like for like: both sides carry the engine's floor and contingency. */
const shortfall = (o: Outcome, level: "im" | "mm"): number =>
  (o[level].chain - o[level].full.total) / o.notional;

/**
 * The floor's view: the Greek requirement with short-option floor `floor` against full revaluation
 * without any floor (a repriced grid needs no correction for the Taylor expansion), both with the
 * contingency.
 */
const floorShortfall = (o: Outcome, level: "im" | "mm", floor: number): number => {
  const { full } = o[level];
  const greekWorst = o[level].chain - full.floor - full.contingency;
  return (greekWorst + floor * o.netShortSpot - full.worstLoss) / o.notional;
};

describe("Portfolio margin accuracy", function () {
  let outcomes: Outcome[];

  before(async function () {
    if (underCoverage()) this.skip(); // thousands of pure calls: minutes under instrumentation
    const math = await ethers.deployContract("PortfolioMathHarness");
    const bs = await ethers.deployContract("BlackScholesHarness");
    outcomes = [];
    for (const sample of fc.sample(portfolioArb, { seed: SEED, numRuns: RUNS })) {
      outcomes.push(await evaluate(math, bs, sample));
    }
  });

  it("computes on-chain the requirement the float64 Taylor model gives, to 1e-9 of gross notional", function () {
    for (const o of outcomes) {
      for (const level of LEVELS) {
        expect(Math.abs(o[level].chain - o[level].taylor) / o.notional).to.be.lessThan(1e-9);
      }
    }
  });

  it(`measures the Greek requirement against full revaluation over ${RUNS} random books`, function () {
    const rows: string[] = [];
    const counts: Record<string, number> = {};
    const minima: Record<string, number> = {};
    for (const level of LEVELS) {
      const diffs = outcomes.map((o) => shortfall(o, level));
      const d = distribution(diffs);
      counts[level] = diffs.filter((x) => x < -TOLERANCE).length;
      minima[level] = d.min;
      rows.push(
        `| ${level.toUpperCase()} | ${pct(d.min)} | ${pct(d.median)} | ${pct(d.p95)} | ${pct(d.max)} | ${diffs.filter((x) => x < 0).length} | ${counts[level]} |`,
      );
    }
    const table = [
      `| level | min | median | p95 | max | books below full reval | below by > ${100 * TOLERANCE}% of notional |`,
      "| --- | --- | --- | --- | --- | --- | --- |",
      ...rows,
    ].join("\n");
    const floorRows = FLOORS.map((floor) => {
      const cells = LEVELS.map((level) => {
        const diffs = outcomes.map((o) => floorShortfall(o, level, floor));
        return `${diffs.filter((x) => x < -TOLERANCE).length} (min ${pct(distribution(diffs).min)})`;
      });
      return `| ${100 * floor}% | ${cells.join(" | ")} |`;
    });
    const floorTable = [
      `| short-option floor | IM books below by > ${100 * TOLERANCE}% | MM books below by > ${100 * TOLERANCE}% |`,
      "| --- | --- | --- |",
      ...floorRows,
    ].join("\n");
    const worst = outcomes.reduce((a, b) => (shortfall(a, "im") < shortfall(b, "im") ? a : b));
    console.log(`\n(greek − full) / gross notional, ${RUNS} books, seed ${SEED}:\n${table}\n\n${floorTable}`);
    const causes = failureCauses(outcomes.filter((o) => shortfall(o, "im") < -TOLERANCE));
    console.log(causes);
    if (process.env.WRITE_DOCS === "1") writeReport(table, floorTable, worst, causes);

    // The bound (never below by more than 1% of notional) does NOT hold for every book; see
    // docs/portfolio-margin-accuracy.md. These are the measured values for this seed, kept as a
    // regression bound so the shortfall cannot grow unnoticed.
    expect(counts.im).to.be.at.most(58);
    expect(counts.mm).to.be.at.most(16);
    expect(minima.im).to.be.at.least(-0.056);
    expect(minima.mm).to.be.at.least(-0.036);
  });
});

/** Why the IM books beyond the tolerance fall short, one line per cause (first matching cause). */
function failureCauses(failing: Outcome[]): string {
  let noShorts = 0;
  let nearExpiryShort = 0;
  let corner = 0;
  let other = 0;
  for (const o of failing) {
    const shorts = o.portfolio.options.filter((leg) => leg.size < 0);
    const { scenario } = worstScenario(o.portfolio, o.imGrid);
    if (shorts.length === 0) noShorts++;
    else if (shorts.some((leg) => leg.timeToExpiry <= DAY)) nearExpiryShort++;
    else if (scenario.spotMove !== 0 && scenario.volMove !== 0) corner++;
    else other++;
  }
  return [
    `- ${noShorts} hold no short options: long options hedged with perps, where ½·Γ·dS² overstates the`,
    `  gain of short-dated long options on the full shock;`,
    `- ${nearExpiryShort} are short an option with a day or less to expiry: its gamma is concentrated near`,
    `  the strike, so out of the money its Greeks are nearly zero while the shocked spot crosses the strike;`,
    `- ${corner} lose most in a corner of the grid (spot and volatility shocked together): the expansion has`,
    `  no cross term (vanna, ∂Δ/∂σ) and no volga, which matter for out-of-the-money options with weeks to`,
    `  months left;`,
    `- ${other} other.`,
  ].join("\n");
}

function writeReport(table: string, floorTable: string, worst: Outcome, causes: string): void {
  const text = `# Portfolio margin accuracy: Greeks vs full revaluation

Generated by \`test/integration/PortfolioMarginAccuracy.test.ts\` (\`WRITE_DOCS=1 npx hardhat test
test/integration/PortfolioMarginAccuracy.test.ts\`), fast-check seed ${SEED}, ${RUNS} random books.

**Books.** One underlying, spot 500–5,000 USD, volatility 20%–150%, 1–6 European options (strike
60%–150% of spot, expiry 1 hour to 1 year, calls and puts, −20 to +20 contracts each) and a perp of
−20 to +20.

**On-chain requirement.** \`PortfolioMath.requirement\` (through \`PortfolioMathHarness\`) on the Greeks
the engine would aggregate: on-chain \`BlackScholes.valuation\` per option times size, rounded as
\`OptionMarket.exposure\` rounds; spot shocks from \`PortfolioMath.spotShock\` with the default risk
parameters (\`DEFAULT_RISK_PARAMS\` in \`test/shared/system.ts\`: IM ${pctParam(DEFAULT_RISK_PARAMS.imShockFloor)} floor, 3σ·√1 day,
vol ±${points(DEFAULT_RISK_PARAMS.imVolShock)} points; MM ${pctParam(DEFAULT_RISK_PARAMS.mmShockFloor)} floor, 2.33σ·√1 day, vol ±${points(DEFAULT_RISK_PARAMS.mmVolShock)} points; short-option floor ${pctParam(DEFAULT_RISK_PARAMS.shortOptionFloor)}
of spot; contingency ${pctParam(DEFAULT_RISK_PARAMS.contingency)} of gross notional).

**Full revaluation.** \`test/shared/fullRevaluation.ts\`: every option repriced with the float64
Black-Scholes reference in each of the same 15 scenarios (spot −s, −s/2, 0, +s/2, +s × vol −v, 0, +v;
vol floored at 1%), worst loss, plus the same floor and contingency.

**Result.** (greek − full) / gross notional; negative means the on-chain requirement is below full
revaluation.

${table}

Worst IM book: \`${JSON.stringify(worst.portfolio)}\` — on-chain ${worst.im.chain.toFixed(2)} USD, full
revaluation ${worst.im.full.total.toFixed(2)} USD, gross notional ${worst.notional.toFixed(0)} USD.

**The floor's view.** Like for like, the floor and contingency cancel, so no value of them can move the
table above. The short-option floor exists to cover what the Taylor expansion misses, so the fair
question for it is: Greek requirement with floor f versus full revaluation without a floor (both with
the contingency):

${floorTable}

Raising the floor (up to its 50% hard bound) leaves most of these books short: the floor is charged on
*net* short contracts, so short calls offset by long puts, or short options at one expiry offset by long
options at another, get little or none of it, and hedged long-gamma books get none at all.

**Why the IM books beyond 1% fall short** (of ${RUNS} books):

${causes}

**Conclusion.** The issue's bound (never below full revaluation by more than 1% of gross notional) does
not hold for every random book with the default parameters, and no existing parameter closes it: the
floor and contingency cancel like for like, and the floor's netting leaves offset books uncovered.
Typical books are margined close to full revaluation (median ≈ 0) and usually above it (p95 positive).
The test keeps the measured counts and minima as regression bounds. Closing the gap needs an engine
change, e.g. a floor on *gross* short options or short gamma near expiry, a cross term in the grid,
or full revaluation of small books; left for the lead to decide.
`;
  writeFileSync(join(__dirname, "../../docs/portfolio-margin-accuracy.md"), text);
}

function points(x: bigint | number | string): string {
  return (Number(x) / 1e16).toString();
}

function pctParam(x: bigint | number | string): string {
  return `${(Number(x) / 1e16).toString()}%`;
}
