import { expect } from "chai";
import {
  actionArb,
  createWorld,
  NEW_KINDS,
  newKindsArb,
  newKindsMissing,
  newStats,
  runCampaignProperty,
  type World,
} from "./model";

/**
 * The short model-based campaign (`npm test`): fast-check command sequences over six traders, the
 * pool, the insurance fund and two keeper accounts, every action kind of the long campaign
 * (scripts/campaign.ts; rounds up to 151's in the first property, rounds 156's and 163's in the second),
 * and every invariant of ARCHITECTURE.md checked after every step: 1 and 2
 * on every account (the full read, not the event-tracked shortcut), 3, 4 and 5 on the actions they
 * govern, 6 on the touched account. A failure prints fast-check's seed and shrunk path; replay with
 * CAMPAIGN_SEED=<seed> (and fast-check's `path`) or run the same seed long with scripts/campaign.ts.
 */
const RUNS = Number(process.env.CAMPAIGN_RUNS ?? 4);
const STEPS = Number(process.env.CAMPAIGN_RUN_LENGTH ?? 40);
// Round 141 added five action kinds, which changed the sequences: 20261121 no longer met an outage.
// Round 143 added five more: 20261209 met no outage; 20261215 meets an outage and every new kind.
// Round 150 added `shockedWeight` and the floors alone: 20261216-20 miss an outage or a series update;
// 20261221 meets every kind.
// Round 151 added `listToken`, `token`, `rateModel` and `fund`: 20261221 meets no shocked-weight update
// after the setup's day; 20264838 meets every kind and an ETH-backed token listed, deposited and held
// with ETH positions.
// Round 156's kinds (`feed`, `volFeed`, `newSeries`, `newMarket`, `poolLimits`) run in the long campaign
// only (`longActionArb`): with them no seed among ~60,000 pre-filtered met every older kind here.
const SEED = Number(process.env.CAMPAIGN_SEED ?? 20264838);
// Round 163: a second property meets round 156's kinds and round 163's (`newKindsArb`: those kinds at
// high weight with the trades, prices, time and auctions they act on), 3 runs of up to 50 steps. Its seed
// was searched with the chain in the loop (scripts/campaignSeedSearch.ts: each candidate run exactly as
// this spec runs it, on the same world, and kept if `newKindsMissing` is empty): of seeds
// 20263126–20263150, 2 met all twelve requirements, 20263143 (98 steps) and 20263149 (125). Requiring only
// that each kind's step succeeded, 8 of 20263100–20263125 passed, but a "succeeded" volFeed or feed step
// can be a refused swap that moved the feed in use (20263110 swapped no volatility feed).
const NEW_KINDS_RUNS = Number(process.env.CAMPAIGN_NEW_RUNS ?? 3);
const NEW_KINDS_STEPS = Number(process.env.CAMPAIGN_NEW_RUN_LENGTH ?? 50);
const NEW_KINDS_SEED = Number(process.env.CAMPAIGN_NEW_SEED ?? 20263143);

describe("Reliability: model-based campaign", function () {
  this.timeout(600_000);
  const stats = newStats();
  let world: World;

  before(async function () {
    world = await createWorld(stats, { verifyEvery: 1, sdkEvery: 1 });
  });

  it("keeps invariants 1–6 after every step of random action sequences", async function () {
    await runCampaignProperty(world, actionArb, {
      runs: RUNS,
      steps: STEPS,
      seed: SEED,
      shrink: process.env.CAMPAIGN_SHRINK === "1",
    });
    // The campaign must have exercised the paths the invariants are about, or it proves nothing.
    expect(stats.succeeded.perp ?? 0, "perp trades").to.be.gt(0);
    expect(stats.succeeded.option ?? 0, "option trades").to.be.gt(0);
    expect(stats.succeeded.withdraw ?? 0, "withdrawals").to.be.gt(0);
    expect(stats.succeeded.outage ?? 0, "oracle outages survived").to.be.gt(0);
    expect(stats.healthyRefused, "healthy accounts refused liquidation").to.be.gt(0);
    expect(stats.sdkCompared, "SDK comparisons").to.be.gt(0);
    // Round 143's moves: series parameters, WETH's cap or listing, the pool's exit protections, a held
    // pause, a positive backstop quote swept.
    for (const kind of ["seriesParams", "collateral", "lpProtection", "hold", "backstopTopUp"])
      expect(stats.succeeded[kind] ?? 0, kind).to.be.gt(0);
    // Round 150: WETH's shocked weight (0.99 at setup, as deployed) moved mid-run, and the SDK's ETH
    // group (delta and capped credits) checked on accounts holding WETH and ETH positions.
    expect(stats.succeeded.shockedWeight ?? 0, "shockedWeight").to.be.gt(0);
    expect(stats.shocked.sdkWethEth, "SDK checks of WETH holders with ETH positions").to.be.gt(0);
    expect(stats.shocked.ledgerWethEth, "full checks of WETH holders with ETH positions").to.be.gt(0);
    // Round 151: a fresh token listed mid-run and deposited, an ETH-backed one checked with ETH positions,
    // the treasury's withdrawal from the insurance fund.
    for (const kind of ["listToken", "token", "fund"]) expect(stats.succeeded[kind] ?? 0, kind).to.be.gt(0);
    expect(stats.fresh.deposits, "deposits of a fresh token").to.be.gt(0);
    expect(
      stats.fresh.ledgerEthBacked,
      "full checks of fresh ETH-backed holders with ETH positions",
    ).to.be.gt(0);
    console.log(`      quote debts accruing interest seen in ${stats.interestAccruingSeen} account checks`);
    console.log(
      `      absorbs: ${stats.succeeded.absorb ?? 0} of ${stats.attempted.absorb ?? 0} attempted ${JSON.stringify(stats.absorbs)}`,
    );
    console.log(
      `      round 143: ${JSON.stringify(stats.gaps, (_, v) => (typeof v === "bigint" ? `${v}` : v))}`,
    );
    console.log(`      round 150: ${JSON.stringify(stats.shocked)}`);
    console.log(`      round 151: ${JSON.stringify(stats.fresh)}`);
  });

  it("keeps them through feed swaps, listings, pool limits, surplus recoveries, fee floors and sequencer changes mid-run", async function () {
    // Its own counters: the first property's assertions above are about its own runs.
    world.stats = newStats();
    const own = world.stats;
    await runCampaignProperty(world, newKindsArb, {
      runs: NEW_KINDS_RUNS,
      steps: NEW_KINDS_STEPS,
      seed: NEW_KINDS_SEED,
      shrink: process.env.CAMPAIGN_SHRINK === "1",
    });
    // Round 156: a price and a volatility feed swapped, a series and a perp market listed and traded mid-run,
    // a pool limit moved. Round 163: a vault surplus recovered and every depositor's withdrawal after it, a
    // pool surplus recovered, a round-trip fee floor set, the sequencer feed reconfigured.
    for (const kind of NEW_KINDS) expect(own.succeeded[kind] ?? 0, kind).to.be.gt(0);
    expect(newKindsMissing(own), "met by none of the runs").to.deep.equal([]);
    console.log(`      round 156: ${JSON.stringify(own.listed)}`);
    console.log(`      round 163: ${JSON.stringify(own.recovery)}`);
  });
});
