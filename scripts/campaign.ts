/**
 * The long invariant campaign (issue 8): `npm run campaign`, i.e. `hardhat run scripts/campaign.ts`.
 * `hardhat run` takes no arguments, so the campaign reads environment variables:
 *   CAMPAIGN_SEED   base seed (default 8); run r uses seed CAMPAIGN_SEED + r
 *   CAMPAIGN_STEPS  total steps to run (default 100000)
 *   CAMPAIGN_RUN_LENGTH  steps per run, each run starting from the same deployed world (default 100)
 * It prints runs, steps, violations and the action statistics; every violation prints the line that
 * replays its run alone (the same seed reproduces the same actions and the same chain state).
 */
import fc from "fast-check";
import {
  prof,
  createWorld,
  describeAction,
  newStats,
  resetWorld,
  step,
  longActionArb,
  type Action,
} from "../test/reliability/model";
import { InvariantViolation } from "../test/shared/invariants";

async function main(): Promise<void> {
  const seed = Number(process.env.CAMPAIGN_SEED ?? 8);
  const totalSteps = Number(process.env.CAMPAIGN_STEPS ?? 100_000);
  const runLength = Number(process.env.CAMPAIGN_RUN_LENGTH ?? 100);
  const started = Date.now();
  const stats = newStats();
  const world = await createWorld(stats, {
    verifyEvery: Number(process.env.CAMPAIGN_VERIFY_EVERY ?? 1),
    sdkEvery: Number(process.env.CAMPAIGN_SDK_EVERY ?? 1),
  });
  let runs = 0;
  const violations: string[] = [];
  const errors: string[] = [];

  for (let r = 0; stats.steps < totalSteps; r++) {
    const runSeed = seed + r;
    const length = Math.min(runLength, totalSteps - stats.steps);
    const [actions] = fc.sample(fc.array(longActionArb, { minLength: length, maxLength: length }), {
      seed: runSeed,
      numRuns: 1,
    }) as Action[][];
    await resetWorld(world);
    runs++;
    for (let i = 0; i < actions.length; i++) {
      try {
        await step(world, actions[i], i);
      } catch (error) {
        const replay = `CAMPAIGN_SEED=${runSeed} CAMPAIGN_STEPS=${length} CAMPAIGN_RUN_LENGTH=${length} npx hardhat run scripts/campaign.ts`;
        const line = `run ${r} step ${i} ${describeAction(actions[i])}: ${(error as Error).message}\n  replay: ${replay}`;
        (error instanceof InvariantViolation ? violations : errors).push(line);
        console.log(error instanceof InvariantViolation ? "VIOLATION" : "ERROR", line);
        stats.steps += actions.length - i - 1; // the rest of the run is skipped but counted as planned
        break;
      }
    }
    if (runs % 50 === 0) {
      const secs = (Date.now() - started) / 1000;
      console.log(
        `progress: runs ${runs} steps ${stats.steps} violations ${violations.length} errors ${errors.length} ${secs.toFixed(0)} s`,
      );
    }
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(prof);
  console.log(
    JSON.stringify(
      {
        seed,
        runs,
        steps: stats.steps,
        runLength,
        violations: violations.length,
        errors: errors.length,
        wallSeconds: Math.round(seconds),
        attempted: stats.attempted,
        succeeded: stats.succeeded,
        liquidatableObservations: stats.liquidatableSeen,
        interestAccruingObservations: stats.interestAccruingSeen,
        healthyRefused: stats.healthyRefused,
        sdkComparisons: stats.sdkCompared,
        worstDustWad: stats.worstDust.toString(),
        worstOptionBandWad: stats.worstOptionBand.toString(),
        absorbs: stats.absorbs,
        riskUpdates: stats.riskUpdates,
        backstopQuoteSwept: stats.swept.toString(),
        deficitsRaised: stats.deficitsRaised,
        backstopUnwinds: stats.unwinds,
        governance: stats.governance,
        poolShares: stats.shares,
        gaps: { ...stats.gaps, sweptPositive: stats.gaps.sweptPositive.toString() },
        shocked: stats.shocked,
        fresh: stats.fresh,
        listed: stats.listed,
        recovery: stats.recovery,
        unchangedSteps: stats.unchanged,
        reverts: stats.reverts,
      },
      null,
      2,
    ),
  );
  if (violations.length + errors.length > 0) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
