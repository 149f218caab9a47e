import { expect } from "chai";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  MarginMode,
  WAD,
  deploySystem,
  expectQuoteLedgerBalanced,
  openAccount,
  whatIf,
  type System,
} from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { signerFor } from "../shared/impersonate";
import { INTEREST_MODEL, compoundIndex, interestRateAt } from "../shared/interest";

/**
 * Review round 170 (§4 row 326): the vault read utilisation from `quoteDebt`, which holds only the
 * interest settled so far, and re-recorded the rate after every settlement. A 900,000 USDC debt against
 * 110,000 of cash (u = 89.1%) settled by anyone once a day for 30 days paid 1,568.00 (2.79%) more than
 * settled once. Now `_recordRate` reads utilisation from what the debts owe at the index it records
 * (`quoteDebt` + the pool's receivable: Σ scaled debts · index − the debts of all but the lender), and
 * `settleInterest` records nothing: a settlement moves interest from owed to settled, which that
 * utilisation counts the same, so the index and the rate stay as they were.
 *
 * The bound: with the index path unchanged, settling in n calls differs from settling once only by
 * rounding. Anyone's call charges ⌊debt · index / paid⌋ − debt and marks the debt paid up to
 * ⌊paid · debt' / debt⌋ (at most a wei of index behind what it paid for: debt'/10^18 of a unit more
 * later, < 10^-6 units for any debt below 10^12 units); the engine's call charges ⌈…⌉, under a unit
 * more, which then accrues with the debt (at most ×(index at the end / index then)). So settled in n
 * calls (k of them the engine's) a debt pays once's interest plus 0 to 1 + k · (growth of the index)
 * units: exactly once's, to the unit, when only anyone settles it.
 *
 * What it does not remove (held, pinned below): any record still re-reads utilisation from the debt
 * grown since the last one, the way Compound and Aave accrue, so a third party's 1-unit quote deposit
 * once a day (a record while debts exist) raises the same debt's interest 2.79%: the dependence row
 * 326 names moves from settlements (free, no account) to records (an account and a quote transfer).
 */

const ONE = 10n ** 6n;
const DAY = 86_400n;
const RUNS = Number(process.env.INVARIANT_RUNS ?? 8);

interface World {
  sys: System;
  alice: bigint;
  bob: bigint;
  carol: bigint;
  engine: HardhatEthersSigner;
}

/** Alice holds 10,000 USDC beside the pool's 1,000,000; Bob and Carol hold nothing; the model is set. */
async function world(): Promise<World> {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * ONE]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS);
  await mintAndApprove(sys.usdc, sys.keeper, await sys.vault.getAddress(), 10n ** 12n * ONE);
  await sys.vault.setInterestRateModel(INTEREST_MODEL);
  return { sys, alice, bob, carol, engine: await signerFor(sys.engine) };
}

/**
 * Bob owes `debt` (moved to Carol by the engine) and `paidOut` of Carol's leaves the vault in the same
 * second (less cash: utilisation up); returns when the debt started.
 */
async function bobOwes(w: World, debt: bigint, paidOut: bigint): Promise<bigint> {
  const { sys, engine } = w;
  await sys.vault.connect(engine).transferBalance(w.bob, w.carol, sys.usdc, debt);
  const t0 = BigInt(await time.latest());
  if (paidOut > 0n) {
    // In the debt's own second, whatever the wall clock does (the chain allows equal timestamps).
    await time.setNextBlockTimestamp(t0);
    await sys.vault.connect(engine).payOutQuote(w.carol, sys.keeper.address, paidOut);
  }
  return t0;
}

/** Bob's debt at `t`, settled to then by the engine (as a quote movement would). */
async function owedAt(w: World, t: bigint): Promise<bigint> {
  await time.setNextBlockTimestamp(t);
  await w.sys.vault.connect(w.engine).settleInterest(w.bob);
  return -(await w.sys.vault.balanceOf(w.bob, w.sys.usdc));
}

/** `caller` settles Bob at each of `times`. */
async function settleAt(w: World, caller: HardhatEthersSigner, times: readonly bigint[]): Promise<void> {
  for (const t of times) {
    await time.setNextBlockTimestamp(t);
    await w.sys.vault.connect(caller).settleInterest(w.bob);
  }
}

const every = (from: bigint, n: bigint, gap: bigint): bigint[] =>
  Array.from({ length: Number(n) }, (_, i) => from + BigInt(i + 1) * gap);

describe("Quote-debt interest however often anyone settles it (review round 170, §4 row 326)", function () {
  describe("a 900,000 USDC debt against 110,000 of cash (u = 89.1%) for 30 days", function () {
    /** Bob's debt, its start, and the month's end. */
    async function month(): Promise<{ w: World; debt: bigint; t0: bigint; end: bigint }> {
      const w = await loadFixture(world);
      const debt = 900_000n * ONE;
      const t0 = await bobOwes(w, debt, 900_000n * ONE);
      return { w, debt, t0, end: t0 + 30n * DAY + 2n };
    }

    it("charges what the index grew by at the rate recorded when the cash left, settled once", async function () {
      const { w, debt, end } = await month();
      const cash = await w.sys.vault.totalDeposits(w.sys.usdc);
      expect(cash).to.equal(110_000n * ONE);
      // The payout records in the debt's own second: nothing accrued yet, so 900,000 / 1,010,000, 73.76%
      // a year (the rule before this round read the same), and nothing records again.
      const q = await w.sys.vault.quoteInterest();
      expect(q.index).to.equal(WAD);
      expect(q.rate).to.equal(interestRateAt(debt, cash));
      expect(q.rate).to.equal(737_623_762_376_237_623n);
      const once = (await whatIf(() => owedAt(w, end))) - debt;
      // ⌈debt · index / paid⌉ − debt, paid from 1e18.
      const iEnd = compoundIndex(q.index, q.rate, end - q.updatedAt);
      expect(once).to.equal((debt * iEnd + WAD - 1n) / WAD - debt);
      expect(once).to.equal(56_251_946_516n); // 56,251.95, as row 326 measured
    });

    it("records the rate at what the debts owe with their unpaid interest: the cash leaving a day after the debt", async function () {
      const w = await loadFixture(world);
      const debt = 900_000n * ONE;
      const t0 = await bobOwes(w, debt, 0n);
      const r0 = (await w.sys.vault.quoteInterest()).rate;
      expect(r0).to.equal(interestRateAt(debt, 1_010_000n * ONE)); // 900,000 / 1,910,000: 6.71% a year
      await time.setNextBlockTimestamp(t0 + DAY);
      await w.sys.vault.connect(w.engine).payOutQuote(w.carol, w.sys.keeper.address, 900_000n * ONE);
      // Bob's debt, paid from 1e18, owes debt · (index − 1e18) / 1e18 (rounded down, the receivable's
      // rounding): 165.52 USDC after a day at 6.71%. Utilisation (900,000 + 165.52) / (… + 110,000).
      const index = compoundIndex(WAD, r0, DAY);
      const unpaid = (debt * index) / WAD - debt;
      expect(unpaid).to.equal(165_517_620n);
      expect(await w.sys.vault.accruedInterest(w.bob)).to.equal(unpaid + 1n); // the debtor's, rounded up
      const q = await w.sys.vault.quoteInterest();
      expect(q.index).to.equal(index);
      expect(q.rate).to.equal(interestRateAt(debt + unpaid, 110_000n * ONE));
      // From `quoteDebt` alone it would be 73.762376…%; the day's 165.52 adds 0.0125 points: 165.52 · 110,000 / 1,010,000² of utilisation (1.785e-5), 7 points a point above the kink.
      expect(q.rate - interestRateAt(debt, 110_000n * ONE)).to.equal(124_916_855_896_385n);
    });

    it("charges the same settled by anyone daily or hourly as settled once, to the unit", async function () {
      const { w, debt, t0, end } = await month();
      const once = (await whatIf(() => owedAt(w, end))) - debt;
      for (const [name, gap] of [
        ["daily", DAY],
        ["hourly", 3_600n],
      ] as const) {
        const many =
          (await whatIf(async () => {
            await settleAt(w, w.sys.carol, every(t0 + 1n, (30n * DAY) / gap, gap));
            return owedAt(w, end);
          })) - debt;
        // Before this round: daily 57,819.95 (+1,568.00, +2.79%); each call re-read the rate on a debt
        // grown by what it charged.
        expect(many, `${name}: ${many} against ${once}`).to.equal(once);
      }
    });

    it("charges the same settled by the engine daily as settled once, within a unit per call", async function () {
      const { w, debt, t0, end } = await month();
      const once = (await whatIf(() => owedAt(w, end))) - debt;
      const daily =
        (await whatIf(async () => {
          await settleAt(w, w.engine, every(t0 + 1n, 30n, DAY));
          return owedAt(w, end);
        })) - debt;
      if (process.env.INTEREST_LOG) console.log("engine daily", daily - once);
      expect(daily).to.be.gte(once);
      // 14 units measured: under a unit a call, each grown at most e^(0.7376 · 30 / 365) = 1.0625×: ≤ 1 + 30 · 1.0625.
      expect(daily - once).to.be.lte(32n);
    });

    it("records nothing when anyone or the engine settles: the index, the rate and its clock stay", async function () {
      const { w, t0 } = await month();
      const before = await w.sys.vault.quoteInterest();
      await settleAt(w, w.sys.carol, [t0 + DAY]);
      await settleAt(w, w.engine, [t0 + 2n * DAY]);
      expect(await w.sys.vault.accruedInterest(w.bob)).to.equal(0n);
      expect(await w.sys.vault.quoteInterest()).to.deep.equal(before);
    });

    it("still raises the debt's interest 2.79% when a third party deposits 1 unit into its own account daily: every record re-reads what the debts owe (held, the Compound and Aave rule)", async function () {
      const { w, debt, t0, end } = await month();
      const once = (await whatIf(() => owedAt(w, end))) - debt;
      const touched =
        (await whatIf(async () => {
          for (const t of every(t0 + 1n, 30n, DAY)) {
            await time.setNextBlockTimestamp(t);
            await w.sys.vault.connect(w.sys.keeper).deposit(w.carol, w.sys.usdc, 1n);
          }
          return owedAt(w, end);
        })) - debt;
      // 57,819.95 against 56,251.95, +1,568.00: what daily settlements did before this round (6 units more,
      // 1,568,001,476: each call also charged a day's rounding), now any record's.
      expect(touched - once).to.equal(1_568_001_470n);
    });
  });

  describe("random debts, cash and settlement schedules", function () {
    it("charges the interest of one settlement to the unit for anyone's calls, within 1 + the engine's calls × the index's growth, and keeps the vault's books (invariant 1)", async function () {
      this.timeout(240_000);
      const w = await loadFixture(world);
      await fc.assert(
        fc.asyncProperty(
          fc.bigInt({ min: 1_000n, max: 1_000_000n }),
          fc.integer({ min: 0, max: 100 }),
          fc.array(fc.record({ gap: fc.integer({ min: 1, max: 5 * 86_400 }), byEngine: fc.boolean() }), {
            minLength: 1,
            maxLength: 10,
          }),
          async (usd, paidOutPercent, schedule) => {
            await whatIf(async () => {
              const debt = usd * ONE;
              const t0 = await bobOwes(w, debt, (debt * BigInt(paidOutPercent)) / 100n);
              const ledger = await w.sys.vault.quoteInterest();
              let t = t0 + 1n;
              const calls = schedule.map((s) => {
                t += BigInt(s.gap);
                return { t, byEngine: s.byEngine };
              });
              const end = t + 1n;
              const once = (await whatIf(() => owedAt(w, end))) - debt;
              const many =
                (await whatIf(async () => {
                  for (const c of calls) {
                    await settleAt(w, c.byEngine ? w.engine : w.sys.carol, [c.t]);
                    // A settlement records nothing: the ledger's index and rate are the first record's.
                    expect(await w.sys.vault.quoteInterest()).to.deep.equal(ledger);
                    await expectQuoteLedgerBalanced(w.sys);
                  }
                  return owedAt(w, end);
                })) - debt;
              const engineCalls = BigInt(calls.filter((c) => c.byEngine).length);
              // A unit the engine's call rounds up grows with the debt: at most ×(index at the end / 1e18).
              const growth =
                (compoundIndex(ledger.index, ledger.rate, end - ledger.updatedAt) + WAD - 1n) / WAD;
              expect(many, `${many} against ${once} once`).to.be.gte(once);
              expect(many - once, `${many} against ${once} once`).to.be.lte(
                engineCalls === 0n ? 0n : 1n + engineCalls * growth,
              );
              await expectQuoteLedgerBalanced(w.sys);
            });
          },
        ),
        { numRuns: RUNS },
      );
    });
  });
});
