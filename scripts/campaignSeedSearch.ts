/**
 * Seed search for the short campaign's second property (test/reliability/Campaign.test.ts, round 163):
 * `hardhat run scripts/campaignSeedSearch.ts` with SEARCH_FROM (first seed), SEARCH_COUNT, SEARCH_RUNS and
 * SEARCH_STEPS (the spec's runs and run length). Each seed runs exactly as the spec runs it, on one
 * world, with the chain in the loop (refusals decide which kinds succeed); one JSON line per seed: the
 * new kinds it missed, any error, and the counters the spec asserts.
 */
import {
  NEW_KINDS,
  createWorld,
  newKindsArb,
  newKindsMissing,
  newStats,
  runCampaignProperty,
} from "../test/reliability/model";

async function main(): Promise<void> {
  const from = Number(process.env.SEARCH_FROM ?? 20263000);
  const count = Number(process.env.SEARCH_COUNT ?? 20);
  const runs = Number(process.env.SEARCH_RUNS ?? 2);
  const steps = Number(process.env.SEARCH_STEPS ?? 30);
  const world = await createWorld(newStats(), { verifyEvery: 1, sdkEvery: 1 });
  for (let seed = from; seed < from + count; seed++) {
    world.stats = newStats();
    const t0 = Date.now();
    let error = "";
    try {
      await runCampaignProperty(world, newKindsArb, { runs, steps, seed });
    } catch (e) {
      error = (e as Error).message.split("\n").slice(0, 12).join(" | ");
    }
    const s = world.stats;
    const missing = newKindsMissing(s);
    const extra = {
      seriesTrades: s.listed.seriesTrades,
      marketTrades: s.listed.marketTrades,
      vaultRecovered: s.recovery.vaultRecovered,
      poolRecovered: s.recovery.poolRecovered,
      drain: s.recovery.drainWithdrawals,
      floorsAbove: s.recovery.floorsAboveFees,
      seqSet: s.recovery.sequencerSet,
      clocksMoved: s.recovery.auctionClocksMoved,
    };
    console.log(
      JSON.stringify({
        seed,
        secs: (Date.now() - t0) / 1000,
        steps: s.steps,
        missing,
        error,
        attempted: Object.fromEntries(NEW_KINDS.map((k) => [k, s.attempted[k] ?? 0])),
        succeeded: s.succeeded,
        extra,
      }),
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
