import { expect } from "chai";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { MarginMode, WAD, deploySystem, openAccount, wad, type System } from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { signerFor } from "../shared/impersonate";
import { settleAllAsEngine } from "../shared/interest";
import { borrowRate, interestIndexAt } from "../../sdk/src";

/**
 * The vault's quote-debt bookkeeping over random sequences of engine transfers (into, out of and
 * between debts, the pool's included), repayments, payouts, model changes, settlements and time:
 *   - invariant 1 on the recorded balances: the vault holds Σ balances (interest only moves quote
 *     between accounts);
 *   - `quoteDebt` = Σ of the negative balances;
 *   - the pool's receivable never exceeds what the debtors owe: interestReceivable (scaled debts,
 *     each rounded down) ≤ Σ accruedInterest (each rounded up) ≤ interestReceivable + #debtors ·
 *     (2 + index), and the lender owes itself nothing;
 *   - the rate in force is the model's at the utilisation the last record left, counting what the
 *     debts owe at the index recorded (Σ ⌊debt / paid⌋ · index − the debts of all but the lender, on
 *     top of `quoteDebt`: review round 170, §4 row 326), and a step that records nothing (a
 *     settlement, time passing) leaves the index, the rate and its clock as they were;
 *   - once every debtor has paid, nothing is owed or receivable, and the pool's balance grew by
 *     exactly the interest the debtors were charged.
 */
const USDC = 10n ** 6n;
const MODEL = {
  baseRate: wad("0.02"),
  kinkRate: wad("0.10"),
  maxRate: wad("1.5"),
  kinkUtilization: wad("0.8"),
};
const RUNS = Number(process.env.INVARIANT_RUNS ?? 12);
const RATE_STEP = wad("0.25");

type Model = { baseRate: bigint; kinkRate: bigint; maxRate: bigint; kinkUtilization: bigint };
/** CollateralVault's step rule: the two curves differ by ≤ RATE_STEP at 0, both kinks and 1. */
function withinRateStep(from: Model, to: Model): boolean {
  const rateAt = (m: Model, u: bigint) => borrowRate(m, u, WAD - u);
  return [0n, from.kinkUtilization, to.kinkUtilization, WAD].every((u) => {
    const gap = rateAt(to, u) - rateAt(from, u);
    return (gap < 0n ? -gap : gap) <= RATE_STEP;
  });
}
const STEPS = Number(process.env.INVARIANT_STEPS ?? 14);

type Action =
  | { kind: "transfer"; from: number; to: number; amount: number }
  | { kind: "deposit"; account: number; amount: number }
  | { kind: "payOut"; account: number; amount: number }
  | { kind: "model"; base: number; kink: number; max: number; kinkUtilization: number }
  | { kind: "settle"; account: number }
  | { kind: "time"; seconds: number };

const ACCOUNTS = 4; // alice, bob, carol, and the pool (the lender)
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({
    kind: fc.constant("transfer" as const),
    from: fc.nat(ACCOUNTS - 1),
    to: fc.nat(ACCOUNTS - 1),
    amount: fc.integer({ min: 1, max: 2_000_000 }),
  }),
  fc.record({
    kind: fc.constant("deposit" as const),
    account: fc.nat(ACCOUNTS - 1),
    amount: fc.integer({ min: 1, max: 50_000 }),
  }),
  fc.record({
    kind: fc.constant("payOut" as const),
    account: fc.nat(ACCOUNTS - 1),
    amount: fc.integer({ min: 1, max: 20_000 }),
  }),
  fc.record({
    kind: fc.constant("model" as const),
    base: fc.integer({ min: 0, max: 20 }),
    kink: fc.integer({ min: 20, max: 60 }),
    max: fc.integer({ min: 60, max: 300 }),
    kinkUtilization: fc.integer({ min: 50, max: 99 }),
  }),
  fc.record({ kind: fc.constant("settle" as const), account: fc.nat(ACCOUNTS - 1) }),
  fc.record({ kind: fc.constant("time" as const), seconds: fc.integer({ min: 1, max: 30 * 86_400 }) }),
);

async function world() {
  const sys = await deploySystem();
  const ids = [
    await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]),
    await openAccount(sys, sys.bob, MarginMode.CROSS),
    await openAccount(sys, sys.carol, MarginMode.CROSS),
    sys.poolAccountId,
  ];
  await sys.vault.setInterestRateModel(MODEL);
  const engine = await signerFor(sys.engine);
  await mintAndApprove(sys.usdc, sys.keeper, await sys.vault.getAddress(), 10n ** 15n);
  return { sys, ids, engine };
}

interface Ledger {
  balances: bigint[];
  accrued: bigint[];
  held: bigint;
  quoteDebt: bigint;
  receivable: bigint;
  /** The index now (sdk/src/math/interest.ts on the vault's state), the rate in force and the model's. */
  index: bigint;
  rate: bigint;
  modelRate: bigint;
  /** The index and rate the vault recorded last, and whether the last block recorded them. */
  recorded: { index: bigint; rate: bigint; updatedAt: bigint };
  recordedNow: boolean;
}

async function readLedger(sys: System, count: bigint): Promise<Ledger> {
  const all = Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1));
  const [balances, paid, accrued, held, quoteDebt, receivable, interest, model, now] = await Promise.all([
    Promise.all(all.map((id) => sys.vault.balanceOf(id, sys.usdc))),
    Promise.all(all.map((id) => sys.vault.paidInterestIndex(id))),
    Promise.all(all.map((id) => sys.vault.accruedInterest(id))),
    sys.usdc.balanceOf(sys.vault),
    sys.vault.quoteDebt(),
    sys.vault.interestReceivable(),
    sys.vault.quoteInterest(),
    sys.vault.interestRateModel(),
    time.latest(),
  ]);
  const state = {
    index: interest.index,
    rate: interest.rate,
    updatedAt: interest.updatedAt,
    lenderAccountId: interest.lenderAccountId,
  };
  const modelRate = borrowRate(
    {
      baseRate: model.baseRate,
      kinkRate: model.kinkRate,
      maxRate: model.maxRate,
      kinkUtilization: model.kinkUtilization,
    },
    quoteDebt + receivableAt(balances, paid, interest.lenderAccountId, interest.index),
    held,
  );
  return {
    balances,
    accrued,
    held,
    quoteDebt,
    receivable,
    index: interestIndexAt(state, BigInt(now)),
    rate: interest.rate,
    modelRate,
    recorded: { index: interest.index, rate: interest.rate, updatedAt: interest.updatedAt },
    recordedNow: interest.updatedAt === BigInt(now),
  };
}

/** Σ ⌊debt · 1e18 / paid⌋ · index / 1e18 − Σ debts over the debtors but the lender, at least 0. */
function receivableAt(balances: bigint[], paid: bigint[], lender: bigint, index: bigint): bigint {
  let scaled = 0n;
  let debts = 0n;
  balances.forEach((b, i) => {
    if (b >= 0n || BigInt(i + 1) === lender) return;
    scaled += (-b * WAD) / paid[i];
    debts -= b;
  });
  const withInterest = (scaled * index) / WAD;
  return withInterest > debts ? withInterest - debts : 0n;
}

/**
 * `before` is the ledger before the step and `settledOnly` whether the step only settled (which records
 * nothing, though its block may share the last record's timestamp).
 */
function checkLedger(l: Ledger, lender: bigint, before?: Ledger, settledOnly = false): void {
  expect(
    l.balances.reduce((a, b) => a + b, 0n),
    "vault holds Σ balances",
  ).to.equal(l.held);
  expect(l.quoteDebt, "quoteDebt = Σ debts").to.equal(l.balances.reduce((a, b) => (b < 0n ? a - b : a), 0n));
  expect(l.accrued[Number(lender) - 1], "the lender owes itself nothing").to.equal(0n);
  const owed = l.accrued.reduce((a, b) => a + b, 0n);
  const debtors = BigInt(l.balances.filter((b) => b < 0n).length);
  expect(l.receivable, "receivable ≤ Σ owed").to.be.lte(owed);
  expect(l.receivable, "receivable ≥ Σ owed − rounding").to.be.gte(owed - debtors * (2n + l.index / WAD));
  // The vault's quote is all that moves utilisation besides what the debts owe (the ledger holds
  // exactly it). Read from the state now only when the last block recorded: a settlement since would
  // move Σ scaled debts by rounding that the record did not see.
  if (l.recordedNow && !settledOnly)
    expect(l.rate, "rate = model at what the debts owe at the recorded index, 0 with no debt").to.equal(
      l.quoteDebt > 0n ? l.modelRate : 0n,
    );
  else if (before)
    expect(l.recorded, "a step that records nothing keeps the clock").to.deep.equal(before.recorded);
}

async function apply(
  w: Awaited<ReturnType<typeof world>>,
  a: Action,
  keeper: HardhatEthersSigner,
): Promise<void> {
  const { sys, ids, engine } = w;
  const quote = await sys.usdc.getAddress();
  const send = async (tx: Promise<{ wait(): Promise<unknown> }>) => (await tx).wait();
  switch (a.kind) {
    case "transfer":
      if (a.from !== a.to)
        await send(
          sys.vault.connect(engine).transferBalance(ids[a.from], ids[a.to], quote, BigInt(a.amount) * USDC),
        );
      break;
    case "deposit":
      await send(sys.vault.connect(keeper).deposit(ids[a.account], quote, BigInt(a.amount) * USDC));
      break;
    case "payOut": {
      // Only the quote the vault holds can leave it (InsufficientLiquidity otherwise).
      const amount = BigInt(a.amount) * USDC;
      if (amount <= (await sys.usdc.balanceOf(sys.vault)))
        await send(sys.vault.connect(engine).payOutQuote(ids[a.account], keeper.address, amount));
      break;
    }
    case "model":
      {
        await time.increase(86_400); // one change a day
        const pct = (n: number) => (BigInt(n) * WAD) / 100n;
        // Governance moves toward the drawn model within one day's step (CollateralVault.MAX_RATE_STEP:
        // the rate at every utilisation moves ≤ 25 points): halfway, and halfway again, until it fits.
        // Midpoints keep baseRate ≤ kinkRate ≤ maxRate and every bound.
        const [baseRate, kinkRate, maxRate, kinkUtilization] = await sys.vault.interestRateModel();
        const current = { baseRate, kinkRate, maxRate, kinkUtilization };
        let model = {
          baseRate: pct(a.base),
          kinkRate: pct(a.kink),
          maxRate: pct(a.max),
          kinkUtilization: pct(a.kinkUtilization),
        };
        while (!withinRateStep(current, model)) {
          model = {
            baseRate: (model.baseRate + current.baseRate) / 2n,
            kinkRate: (model.kinkRate + current.kinkRate) / 2n,
            maxRate: (model.maxRate + current.maxRate) / 2n,
            kinkUtilization: (model.kinkUtilization + current.kinkUtilization) / 2n,
          };
        }
        await send(sys.vault.setInterestRateModel(model));
        break;
      }
      break;
    case "settle":
      await send(sys.vault.settleInterest(ids[a.account]));
      break;
    case "time":
      await time.increase(a.seconds);
      break;
  }
}

/** What the sequences exercised, so a campaign where nothing accrued cannot pass silently. */
const seen = { interestCharged: 0n, lenderInDebt: 0 };

describe("Invariants: quote-debt interest (CollateralVault)", function () {
  it("keeps the ledger, the debt total and the pool's receivable consistent over random sequences", async function () {
    await fc.assert(
      fc.asyncProperty(fc.array(actionArb, { minLength: 1, maxLength: STEPS }), async (actions) => {
        const w = await loadFixture(world);
        const { sys, ids } = w;
        const count = await sys.accounts.accountCount();
        const lender = sys.poolAccountId;
        let previous: Ledger | undefined;
        for (const a of actions) {
          await apply(w, a, sys.keeper);
          const ledger = await readLedger(sys, count);
          checkLedger(ledger, lender, previous, a.kind === "settle");
          previous = ledger;
          if (ledger.balances[Number(lender) - 1] < 0n) seen.lenderInDebt++;
        }
        // Everyone pays up in one block, settled as the engine settles a debt before slicing it (to the
        // index now; anyone else's call charges only whole units accrued since review round 126):
        // nothing is owed or receivable any more, and the lender's balance grew by exactly the interest
        // charged.
        const before = await sys.vault.balanceOf(lender, sys.usdc);
        const charged = await settleAllAsEngine(sys.vault, w.engine, ids);
        const end = await readLedger(sys, count);
        checkLedger(end, lender, previous, true);
        expect(end.receivable).to.equal(0n);
        expect(end.accrued.every((x) => x === 0n)).to.equal(true);
        expect((await sys.vault.balanceOf(lender, sys.usdc)) - before).to.equal(charged);
        seen.interestCharged += charged;
      }),
      {
        numRuns: RUNS,
        // A fixed seed, as the other invariant files (INVARIANT_SEED for others): with a random one four
        // interest mutants of review round 95 were caught by some runs only.
        seed: Number(process.env.INVARIANT_SEED ?? 20261206),
        // One sequence known to reach both a charged debtor and a lender in debt, then random ones. It
        // ends a day after the debtor's last repayment (which pays the interest due then), so the final
        // settlement charges interest whatever the random sequences do: without that last day the
        // check below depended on the random runs and failed about one run in a few.
        examples: [
          [
            [
              { kind: "transfer", from: 0, to: 1, amount: 20_000 },
              { kind: "time", seconds: 30 * 86_400 },
              { kind: "transfer", from: 3, to: 2, amount: 1_500_000 },
              { kind: "time", seconds: 10 * 86_400 },
              { kind: "deposit", account: 0, amount: 5_000 },
              { kind: "time", seconds: 86_400 },
            ],
          ],
        ],
      },
    );
    expect(seen.interestCharged, "interest charged across the runs").to.be.greaterThan(0n);
    expect(seen.lenderInDebt, "steps with the lender in debt").to.be.greaterThan(0);
  });
});
