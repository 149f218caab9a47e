import { expect } from "chai";
import { ethers, network } from "hardhat";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractTransactionResponse } from "ethers";
import { MarginMode, WAD, deploySystem, openAccount, wad, type System } from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { signerFor } from "../shared/impersonate";
import { INTEREST_MODEL, YEAR } from "../shared/interest";
import { advanceTo, closePosition, refreshFeeds, trade } from "../shared/perps";
import { deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { setFeedPrice } from "../shared/oracles";
import { interestIndexAt } from "../../sdk/src";

/**
 * Review round 157: round 153 (§4 rows 490–493) packed Σ quote debts and Σ scaled debts into one slot
 * (`CollateralVault._debts`, 128 + 128 bits, checked) and made a trade's fee one vault call
 * (`chargeFees`) instead of the engine's two `transferBalance` calls. These specs hold:
 *   - the packed totals: the stored word (slot `DEBTS_SLOT`) is Σ debts and Σ ⌊debt·1e18/paid⌋ over the
 *     debtors other than the lender, to the unit, after every operation of random sequences and every
 *     path of the real system that moves a debt (realised PnL, funding, fees, option premium, repaying
 *     deposits, a bid's slice, an absorb; the fund and the backstop as payers, payees and debtors in the
 *     random sequences): no drift, in either direction; the receivable read from it is below Σ accrued
 *     interest by at most ⌈index/1e18⌉ + 1 units a debtor, never above; past 2^128 the settlement
 *     reverts. Found: the revert named `debt | scaled`, neither total (469,120,674,558,425,475,735,… for
 *     Σ debts 469,120,674,558,092,803,083,…); it names Σ debts now (−1 byte);
 *   - `chargeFees` against the two `transferBalance` calls it replaced, in one block at one time, the
 *     old engine's zero parts skipped: the same balances, paid indexes, debt word, index, clock and vault
 *     events, for a payer in credit, in debt after 400 days and a model change, going into debt on either
 *     part, a zero part, the pool (the lender), the fund or the backstop paying, a fund in debt paid, and
 *     utilisation at the kink and at 100%;
 *   - conservation over random sequences (fast-check): quote in − quote out = Δ vault holdings =
 *     Δ Σ balances; Σ credits = holdings + Σ debts; each step's interest is exactly what the lender
 *     gained beyond its own legs and what the debtors lost beyond theirs.
 */

/** `_debts`' storage slot in CollateralVault's layout (checked against `quoteDebt()` by the specs). */
const DEBTS_SLOT = 8;
const LOW_128 = (1n << 128n) - 1n;
const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;
/** A second model within one day's rate step of INTEREST_MODEL. */
const STEPPED_MODEL = {
  baseRate: wad("0.05"),
  kinkRate: wad("0.20"),
  maxRate: wad("1.6"),
  kinkUtilization: wad("0.8"),
};

/** The stored debt word: [Σ debts, Σ scaled debts]. */
async function debtWord(sys: System, blockTag?: number): Promise<[bigint, bigint]> {
  const word = BigInt(await ethers.provider.getStorage(await sys.vault.getAddress(), DEBTS_SLOT, blockTag));
  return [word >> 128n, word & LOW_128];
}

interface Ledger {
  balances: bigint[];
  paid: bigint[];
  accrued: bigint[];
  held: bigint;
  total: bigint;
  quoteDebt: bigint;
  word: [bigint, bigint];
  receivable: bigint;
  index: bigint;
  lender: bigint;
}

/** Every account's quote ledger and the vault's totals, at one block. */
async function readLedger(sys: System, blockTag?: number): Promise<Ledger> {
  const tag = blockTag ?? (await ethers.provider.getBlockNumber());
  const count = Number(await sys.accounts.accountCount({ blockTag: tag }));
  const ids = Array.from({ length: count }, (_, i) => BigInt(i + 1));
  const [balances, paid, accrued] = await Promise.all([
    Promise.all(ids.map((id) => sys.vault.balanceOf(id, sys.usdc, { blockTag: tag }))),
    Promise.all(ids.map((id) => sys.vault.paidInterestIndex(id, { blockTag: tag }))),
    Promise.all(ids.map((id) => sys.vault.accruedInterest(id, { blockTag: tag }))),
  ]);
  const q = await sys.vault.quoteInterest({ blockTag: tag });
  const timestamp = BigInt((await ethers.provider.getBlock(tag))!.timestamp);
  const elapsed = timestamp - q.updatedAt;
  return {
    balances,
    paid,
    accrued,
    held: await sys.usdc.balanceOf(sys.vault, { blockTag: tag }),
    total: await sys.vault.totalDeposits(sys.usdc, { blockTag: tag }),
    quoteDebt: await sys.vault.quoteDebt({ blockTag: tag }),
    word: await debtWord(sys, tag),
    receivable: await sys.vault.interestReceivable({ blockTag: tag }),
    // The index now, as `_indexNow` computes it (the SDK's formula; the chain's, by InterestRounding).
    index:
      elapsed === 0n
        ? q.index
        : interestIndexAt(
            { index: q.index, rate: q.rate, updatedAt: q.updatedAt, lenderAccountId: q.lenderAccountId },
            timestamp,
          ),
    lender: q.lenderAccountId,
  };
}

interface Rounding {
  /** Largest Σ accrued − receivable seen, and the debtors then. */
  gap: bigint;
  debtors: number;
  /** Largest gap a debtor, in units. */
  perDebtor: bigint;
  checks: number;
}

/**
 * The debt word is Σ debts and Σ ⌊debt·1e18/paid⌋ over debtors other than the lender, to the unit; the
 * vault holds Σ balances; the receivable is at most Σ accrued interest, and below it by at most
 * ⌈index/1e18⌉ + 1 units per debtor (each scaled debt rounded down, each accrued interest up).
 */
function expectTotalsExact(l: Ledger, what: string, rounding?: Rounding): void {
  let debts = 0n;
  let scaled = 0n;
  let accrued = 0n;
  let debtors = 0;
  l.balances.forEach((b, i) => {
    if (b >= 0n) return;
    debts += -b;
    if (BigInt(i + 1) === l.lender) return;
    scaled += (-b * WAD) / l.paid[i];
    accrued += l.accrued[i];
    debtors++;
  });
  expect(l.quoteDebt, `${what}: quoteDebt() is the word's high half`).to.equal(l.word[0]);
  expect(l.word[0], `${what}: Σ debts`).to.equal(debts);
  expect(l.word[1], `${what}: Σ scaled debts`).to.equal(scaled);
  expect(l.word[1], `${what}: a scaled debt is at most its debt`).to.be.lte(l.word[0]);
  expect(
    l.balances.reduce((a, b) => a + b, 0n),
    `${what}: Σ balances = totalDeposits`,
  ).to.equal(l.total);
  expect(l.total, `${what}: the vault holds totalDeposits`).to.equal(l.held);
  expect(l.receivable, `${what}: receivable ≤ Σ accrued`).to.be.lte(accrued);
  const bound = BigInt(debtors) * (ceilDiv(l.index, WAD) + 1n);
  expect(accrued - l.receivable, `${what}: receivable short by ≤ (⌈index⌉ + 1) a debtor`).to.be.lte(bound);
  if (rounding) {
    rounding.checks++;
    if (accrued - l.receivable > rounding.gap) {
      rounding.gap = accrued - l.receivable;
      rounding.debtors = debtors;
    }
    if (debtors > 0) {
      const per = ceilDiv(accrued - l.receivable, BigInt(debtors));
      if (per > rounding.perDebtor) rounding.perDebtor = per;
    }
  }
}

/** Sends `txs` in one block (automining off meanwhile) at `at`; returns their receipts. */
async function inOneBlock(at: number, txs: (() => Promise<ContractTransactionResponse>)[]) {
  await time.setNextBlockTimestamp(at);
  await network.provider.send("evm_setAutomine", [false]);
  try {
    const sent = [];
    for (const tx of txs) sent.push(await tx());
    await network.provider.send("evm_mine", []);
    return await Promise.all(sent.map(async (tx) => (await tx.wait())!));
  } finally {
    await network.provider.send("evm_setAutomine", [true]);
  }
}

// ---------------------------------------------------------------------------------------------------
// chargeFees against the two transfers
// ---------------------------------------------------------------------------------------------------

interface FeeWorld {
  sys: System;
  engine: HardhatEthersSigner;
  /** Alice 10,000 USDC, Bob and Carol empty. */
  alice: bigint;
  bob: bigint;
  carol: bigint;
  fund: bigint;
  backstop: bigint;
  pool: bigint;
}

const USDC = 10n ** 6n;

async function feeWorld(): Promise<FeeWorld> {
  const sys = await deploySystem();
  await sys.vault.setInterestRateModel(INTEREST_MODEL);
  const engine = await signerFor(sys.engine);
  await mintAndApprove(sys.usdc, sys.keeper, await sys.vault.getAddress(), 10n ** 15n);
  return {
    sys,
    engine,
    alice: await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]),
    bob: await openAccount(sys, sys.bob, MarginMode.CROSS),
    carol: await openAccount(sys, sys.carol, MarginMode.CROSS),
    fund: await sys.engine.insuranceAccountId(),
    backstop: await sys.auction.backstopAccountId(),
    pool: sys.poolAccountId,
  };
}

/** The vault's whole quote-debt state and the vault events of `receipts`. */
async function feeState(w: FeeWorld, receipts: { logs: readonly unknown[] }[]) {
  const { sys } = w;
  const vault = await sys.vault.getAddress();
  const slots = await Promise.all(
    // `_debts`, `_interestIndex`, `_clock` and the model's two slots.
    [8, 9, 10, 11, 12].map((s) => ethers.provider.getStorage(vault, s)),
  );
  const l = await readLedger(sys);
  return {
    balances: l.balances,
    paid: l.paid,
    slots,
    receivable: l.receivable,
    events: receipts.flatMap((r) =>
      (r.logs as Parameters<typeof sys.vault.interface.parseLog>[0][])
        .map((log) => sys.vault.interface.parseLog(log))
        .filter((p) => p !== null)
        .map((p) => `${p!.name}(${p!.args.join(",")})`),
    ),
  };
}

/**
 * `chargeFees(payer, toPool, toFund)` and, from the same state at the same time, what the engine did
 * before round 153: a `transferBalance` to the pool and one to the fund, each only when non-zero, in one
 * block. Returns both end states (which must be equal) and the one call's.
 */
async function bothWays(w: FeeWorld, payer: bigint, toPool: bigint, toFund: bigint, dt = 10) {
  const { sys, engine } = w;
  const at = (await time.latest()) + dt;
  const snapshot = await network.provider.send("evm_snapshot", []);
  const oneCall = await feeState(
    w,
    await inOneBlock(at, [() => sys.vault.connect(engine).chargeFees(payer, toPool, toFund)]),
  );
  await network.provider.send("evm_revert", [snapshot]);
  const legs: (() => Promise<ContractTransactionResponse>)[] = [];
  if (toPool !== 0n)
    legs.push(() => sys.vault.connect(engine).transferBalance(payer, w.pool, sys.usdc, toPool));
  if (toFund !== 0n)
    legs.push(() => sys.vault.connect(engine).transferBalance(payer, w.fund, sys.usdc, toFund));
  // The chain stays on the two calls' state, which the caller compares with the one call's.
  const twoCalls = await feeState(w, await inOneBlock(at, legs));
  return { oneCall, twoCalls };
}

/** Moves `amount` of quote from `from` to `to` as the engine (PnL), one block. */
async function move(w: FeeWorld, from: bigint, to: bigint, amount: bigint) {
  await (await w.sys.vault.connect(w.engine).transferBalance(from, to, w.sys.usdc, amount)).wait();
}

describe("Quote debt totals and chargeFees after round 153 (review round 157)", function () {
  describe("chargeFees leaves what the engine's two transferBalance calls left", function () {
    const cases: {
      name: string;
      setup: (w: FeeWorld) => Promise<bigint>;
      toPool: bigint;
      toFund: bigint;
      debtMoves: boolean;
    }[] = [
      {
        name: "a payer in credit paying both parts",
        setup: async (w) => w.alice,
        toPool: 7n * USDC,
        toFund: 3n * USDC,
        debtMoves: false,
      },
      {
        name: "a payer whose credit covers the pool's part and goes into debt on the fund's",
        setup: async (w) => {
          await move(w, w.alice, w.carol, 8n * USDC);
          return w.carol;
        },
        toPool: 7n * USDC,
        toFund: 3n * USDC,
        debtMoves: true,
      },
      {
        name: "a payer whose credit does not cover the pool's part",
        setup: async (w) => {
          await move(w, w.alice, w.carol, 5n * USDC);
          return w.carol;
        },
        toPool: 7n * USDC,
        toFund: 3n * USDC,
        debtMoves: true,
      },
      {
        name: "a payer in debt for 400 days, the model changed after 200 (interest settled first)",
        setup: async (w) => {
          await move(w, w.bob, w.alice, 900_000n * USDC);
          await time.increase(200n * 86_400n);
          await w.sys.vault.setInterestRateModel(STEPPED_MODEL);
          await time.increase(200n * 86_400n);
          return w.bob;
        },
        toPool: 7n * USDC,
        toFund: 3n * USDC,
        debtMoves: true,
      },
      {
        name: "a debtor's fee with a zero fund part",
        setup: async (w) => {
          await move(w, w.bob, w.alice, 1_000n * USDC);
          await time.increase(30n * 86_400n);
          return w.bob;
        },
        toPool: 10n * USDC,
        toFund: 0n,
        debtMoves: true,
      },
      {
        name: "a debtor's fee with a zero pool part",
        setup: async (w) => {
          await move(w, w.bob, w.alice, 1_000n * USDC);
          await time.increase(30n * 86_400n);
          return w.bob;
        },
        toPool: 0n,
        toFund: 10n * USDC,
        debtMoves: true,
      },
      {
        name: "the pool (the lender) paying, going into debt, while another debtor owes interest",
        setup: async (w) => {
          await move(w, w.bob, w.alice, 1_000n * USDC);
          await w.sys.vault.connect(w.engine).payOutQuote(w.pool, w.sys.keeper.address, 1_000_000n * USDC);
          await time.increase(30n * 86_400n);
          return w.pool;
        },
        toPool: 7n * USDC,
        toFund: 3n * USDC,
        debtMoves: true,
      },
      {
        name: "the fund paying, in debt for 30 days",
        setup: async (w) => {
          await move(w, w.fund, w.alice, 500n * USDC);
          await time.increase(30n * 86_400n);
          return w.fund;
        },
        toPool: 7n * USDC,
        toFund: 3n * USDC,
        debtMoves: true,
      },
      {
        name: "the backstop paying (its unwinds pay fees), in debt for 30 days",
        setup: async (w) => {
          await move(w, w.backstop, w.alice, 500n * USDC);
          await time.increase(30n * 86_400n);
          return w.backstop;
        },
        toPool: 7n * USDC,
        toFund: 3n * USDC,
        debtMoves: true,
      },
      {
        name: "a payer in credit whose fee repays the fund's debt",
        setup: async (w) => {
          await move(w, w.fund, w.bob, 2n * USDC);
          await time.increase(30n * 86_400n);
          return w.alice;
        },
        toPool: 7n * USDC,
        toFund: 3n * USDC,
        debtMoves: true,
      },
    ];

    for (const c of cases)
      it(`equals them for ${c.name}`, async function () {
        const w = await loadFixture(feeWorld);
        const payer = await c.setup(w);
        const { oneCall, twoCalls } = await bothWays(w, payer, c.toPool, c.toFund);
        expect(oneCall).to.deep.equal(twoCalls);
        const nonZero = [c.toPool, c.toFund].filter((x) => x !== 0n).length;
        expect(
          oneCall.events.filter((e) => e.startsWith(`BalanceTransferred(${payer},`)).length,
          "one BalanceTransferred a non-zero part (and one for interest, to the lender)",
        ).to.be.gte(nonZero);
        expectTotalsExact(await readLedger(w.sys), c.name);
      });

    it("records the kink rate when the fee takes utilisation to the kink exactly, as the two calls did", async function () {
      const w = await loadFixture(feeWorld);
      const cash = await w.sys.vault.totalDeposits(w.sys.usdc);
      // After the fee Σ debts = 4 · cash: utilisation 80%, INTEREST_MODEL's kink.
      const fee = 10n * USDC;
      await move(w, w.bob, w.alice, 4n * cash - fee);
      // In the same second: no interest between the two.
      const { oneCall, twoCalls } = await bothWays(w, w.bob, 7n * USDC, 3n * USDC, 0);
      expect(oneCall).to.deep.equal(twoCalls);
      expect(await w.sys.vault.quoteDebt()).to.equal(4n * cash);
      expect((await w.sys.vault.quoteInterest()).rate, "kinkRate").to.equal(INTEREST_MODEL.kinkRate);
    });

    it("records the full-utilisation rate when no quote is left in the vault, as the two calls did", async function () {
      const w = await loadFixture(feeWorld);
      await move(w, w.bob, w.alice, 50_000n * USDC);
      const cash = await w.sys.vault.totalDeposits(w.sys.usdc);
      await w.sys.vault.connect(w.engine).payOutQuote(w.alice, w.sys.keeper.address, cash);
      expect(await w.sys.vault.totalDeposits(w.sys.usdc)).to.equal(0n);
      await time.increase(30n * 86_400n);
      const { oneCall, twoCalls } = await bothWays(w, w.bob, 7n * USDC, 3n * USDC);
      expect(oneCall).to.deep.equal(twoCalls);
      expect((await w.sys.vault.quoteInterest()).rate, "maxRate").to.equal(INTEREST_MODEL.maxRate);
    });

    it("emits the payer's interest (to the lender), then a BalanceTransferred per non-zero part, pool first", async function () {
      const w = await loadFixture(feeWorld);
      const { sys } = w;
      await move(w, w.bob, w.alice, 1_000n * USDC);
      await time.increase(30n * 86_400n);
      const receipt = (await (await sys.vault.connect(w.engine).chargeFees(w.bob, 7n, 3n)).wait())!;
      const events = receipt.logs.map((log) => {
        const p = sys.vault.interface.parseLog(log)!;
        return [p.name, ...p.args.map(String)];
      });
      const interest = events[1][3];
      expect(events).to.deep.equal([
        ["BalanceTransferred", String(w.bob), String(w.pool), await sys.usdc.getAddress(), interest],
        ["QuoteInterestCharged", String(w.bob), String(w.pool), interest],
        ["BalanceTransferred", String(w.bob), String(w.pool), await sys.usdc.getAddress(), "7"],
        ["BalanceTransferred", String(w.bob), String(w.fund), await sys.usdc.getAddress(), "3"],
      ]);
    });

    it("ends a debtor's trade with the fee's two legs and the engine's FeeCharged, with the same parts", async function () {
      const w = await loadFixture(feeWorld);
      const { sys } = w;
      const wethId = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad(10)]]);
      await trade(sys.perps, sys.bob, wethId, sys.markets.ETH, wad("0.3"));
      await time.increase(30n * 86_400n);
      await refreshFeeds(sys);
      const receipt = (await (await trade(sys.perps, sys.bob, wethId, sys.markets.ETH, wad("0.3"))).wait())!;
      const vault = (await sys.vault.getAddress()).toLowerCase();
      const engine = (await sys.engine.getAddress()).toLowerCase();
      const events = receipt.logs
        .filter((log) => [vault, engine].includes(log.address.toLowerCase()))
        .map((log) => (log.address.toLowerCase() === vault ? sys.vault : sys.engine).interface.parseLog(log)!)
        .filter((p) => ["BalanceTransferred", "QuoteInterestCharged", "FeeCharged"].includes(p.name));
      expect(
        events.filter((p) => p.name === "QuoteInterestCharged").length,
        "30 days of interest, once",
      ).to.equal(1);
      const [toPool, toFund, charged] = events.slice(-3);
      expect(charged.name).to.equal("FeeCharged");
      expect([toPool.name, toPool.args[0], toPool.args[1], toPool.args[3]]).to.deep.equal([
        "BalanceTransferred",
        wethId,
        w.pool,
        charged.args.toPool,
      ]);
      expect([toFund.name, toFund.args[0], toFund.args[1], toFund.args[3]]).to.deep.equal([
        "BalanceTransferred",
        wethId,
        w.fund,
        charged.args.toInsurance,
      ]);
      expect(await sys.vault.balanceOf(wethId, sys.usdc), "the fee into debt").to.be.lt(0n);
    });

    it("is reached by no trade of the pool's or the fund's account: their owners never trade", async function () {
      const w = await loadFixture(feeWorld);
      const { sys } = w;
      expect(await sys.accounts.ownerOf(w.pool)).to.equal(await sys.pool.getAddress());
      expect(await sys.accounts.ownerOf(w.fund)).to.equal(await sys.insuranceFund.getAddress());
      for (const id of [w.pool, w.fund])
        await expect(trade(sys.perps, sys.deployer, id, sys.markets.ETH, wad("0.1"))).to.be.reverted;
    });
  });

  describe("the packed debt totals", function () {
    it("finds Σ debts and Σ scaled debts in slot 8, the high half `quoteDebt()`", async function () {
      const w = await loadFixture(feeWorld);
      await move(w, w.bob, w.alice, 12_345n);
      await time.increase(30n * 86_400n);
      await move(w, w.bob, w.alice, 22n);
      const [debt, scaled] = await debtWord(w.sys);
      expect(debt).to.equal(await w.sys.vault.quoteDebt());
      const owed = -(await w.sys.vault.balanceOf(w.bob, w.sys.usdc));
      expect(owed, "30 days of interest settled").to.be.gt(12_345n + 22n);
      expect(debt).to.equal(owed);
      expect(scaled, "Bob's debt · 1e18 / paid, rounded down").to.equal(
        (owed * WAD) / (await w.sys.vault.paidInterestIndex(w.bob)),
      );
    });

    it("keeps both halves exact after 120 fees and settlements on 5 debtors over 3 years at full utilisation, the receivable short by under ⌈index⌉ + 1 units a debtor", async function () {
      const w = await loadFixture(feeWorld);
      const { sys } = w;
      const debtors = [w.bob, w.carol, w.fund, w.backstop, w.alice];
      for (const [i, id] of debtors.entries())
        await move(w, id, w.pool, BigInt(i + 1) * 100_000n * USDC + 7n);
      // Every USDC in the vault paid out: full utilisation, the 150% maximum.
      await w.sys.vault
        .connect(w.engine)
        .payOutQuote(w.pool, sys.keeper.address, await sys.vault.totalDeposits(sys.usdc));
      const rounding: Rounding = { gap: 0n, debtors: 0, perDebtor: 0n, checks: 0 };
      for (let k = 0; k < 120; k++) {
        await time.increase(9n * 86_400n + BigInt(k));
        const id = debtors[k % debtors.length];
        if (k % 3 === 0) await sys.vault.connect(sys.carol).settleInterest(id);
        else await sys.vault.connect(w.engine).chargeFees(id, BigInt(k) * 1_001n, BigInt(k % 2) * 333n);
        expectTotalsExact(await readLedger(sys), `operation ${k}`, rounding);
      }
      const l = await readLedger(sys);
      console.log(
        `      index ${l.index}; receivable short of Σ accrued by at most ${rounding.gap} units (${rounding.debtors} debtors), ${rounding.perDebtor} a debtor`,
      );
      expect(l.index, "the index grew past 50").to.be.gt(50n * WAD);
      expect(rounding.perDebtor).to.be.lte(ceilDiv(l.index, WAD) + 1n);
    });

    it("keeps both halves exact through every system path that moves a debt: PnL, funding, fees, premium, repayment, a bid's slice, an absorb", async function () {
      const sys = await deployOptionsSystem();
      await sys.vault.setInterestRateModel(INTEREST_MODEL);
      const check = async (what: string) => expectTotalsExact(await readLedger(sys), what);
      const usdcFor = (n: bigint) => n * USDC;
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, usdcFor(200_000n)]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad(10)]]);
      const other = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad(10)]]);
      // Realised PnL into debt: review round 49's debtor (1 BTC long, 60,000 → 34,000, closed).
      await trade(sys.perps, sys.bob, bob, sys.markets.BTC, wad("1"));
      await check("a fee into debt");
      await setFeedPrice(sys.feeds.BTC, "34000");
      await closePosition(sys.perps, sys.bob, bob, sys.markets.BTC);
      await check("a realised loss into debt");
      // A second debtor, and funding over 30 days on a skewed ETH book.
      await trade(sys.perps, sys.alice, other, sys.markets.ETH, wad("2"));
      await advanceTo(sys, BigInt(await time.latest()) + 30n * 86_400n);
      await trade(sys.perps, sys.alice, other, sys.markets.ETH, wad("0.1"));
      await check("interest settled, a fee on a debt");
      await advanceTo(sys, BigInt(await time.latest()) + 7n * 86_400n);
      await closePosition(sys.perps, sys.alice, other, sys.markets.ETH);
      await check("funding and PnL settled on debts");
      // An option's premium into debt.
      const series = await listSeries(sys.options, "ETH", "3000", await fromNow(7n * 86_400n), true);
      await tradeOption(sys.options, sys.alice, other, series, wad("1"));
      await check("an option premium into debt");
      // Anyone repays part of Bob's debt.
      await mintAndApprove(sys.usdc, sys.keeper, await sys.vault.getAddress(), usdcFor(1_000n));
      await sys.vault.connect(sys.keeper).deposit(bob, sys.usdc, usdcFor(1_000n));
      await check("a repaying deposit");
      // Bob's WETH falls below his debt: a slice of it to Carol, then the backstop absorbs the rest.
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.connect(sys.keeper).startAuction(bob);
      await check("an auction started");
      await advanceTo(sys, BigInt(await time.latest()) + 60n);
      await sys.auction.connect(sys.carol).bid(bob, carol, wad("0.3"), 2n ** 255n);
      await check("a bid's slice of a debt");
      await advanceTo(sys, BigInt(await time.latest()) + BigInt((await sys.auction.params()).duration));
      await sys.auction.absorb(bob);
      await check("an absorb");
      expect(await sys.vault.balanceOf(await sys.auction.backstopAccountId(), sys.usdc)).to.be.lt(0n);
      await advanceTo(sys, BigInt(await time.latest()) + 30n * 86_400n);
      await sys.vault.connect(sys.keeper).settleInterest(await sys.auction.backstopAccountId());
      await check("the backstop's interest, anyone's call");
    });

    it("refuses with SafeCastOverflowedUintDowncast(128, Σ debts) a settlement that takes Σ debts past 2^128 (18 decimals, a 1e9 debt left 18 years near full utilisation), and nothing moves", async function () {
      const sys = await deploySystem({ quoteDecimals: 18 });
      await sys.vault.setInterestRateModel(INTEREST_MODEL);
      const engine = await signerFor(sys.engine);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS);
      // What the deployments' caps allow as collateral (100,000 WETH, 10,000 WBTC): about 1e9 USD of debt.
      const debt = 10n ** 27n;
      await sys.vault.connect(engine).transferBalance(bob, alice, sys.usdc, debt);
      const rate = (await sys.vault.quoteInterest()).rate;
      expect(rate, "near the 150% maximum").to.be.gt(wad("1.49"));
      // 2^128 / 1e27 = 3.4e11 = e^26.55: 17.7 years at 1.4985.
      // A block at the settlement's time, to read what it charges.
      const at = (await time.latest()) + Number(18n * YEAR);
      await time.increaseTo(at);
      const owed = debt + (await sys.vault.accruedInterest(bob));
      expect(owed, "what Bob owes passed 2^128").to.be.gt(1n << 128n);
      const before = await debtWord(sys);
      await time.setNextBlockTimestamp(at);
      // The error names Σ debts after the charge (HEAD named Σ debts | Σ scaled debts: neither).
      await expect(sys.vault.connect(engine).settleInterest(bob, { gasLimit: 1_000_000 }))
        .to.be.revertedWithCustomError(sys.vault, "SafeCastOverflowedUintDowncast")
        .withArgs(128, owed);
      // Nor can anyone repay him: a deposit settles first.
      await mintAndApprove(sys.usdc, sys.keeper, await sys.vault.getAddress(), wad(1));
      await expect(
        sys.vault.connect(sys.keeper).deposit(bob, sys.usdc, wad(1)),
      ).to.be.revertedWithCustomError(sys.vault, "SafeCastOverflowedUintDowncast");
      expect(await debtWord(sys)).to.deep.equal(before);
    });

    it("settles the same debt 17 years on: the bound is past 17.7 years at the deployed 150% maximum", async function () {
      const sys = await deploySystem({ quoteDecimals: 18 });
      await sys.vault.setInterestRateModel(INTEREST_MODEL);
      const engine = await signerFor(sys.engine);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS);
      await sys.vault.connect(engine).transferBalance(bob, alice, sys.usdc, 10n ** 27n);
      await time.increase(17n * YEAR);
      await sys.vault.connect(engine).settleInterest(bob);
      const [debt, scaled] = await debtWord(sys);
      expect(debt).to.be.lt(1n << 128n);
      expect(debt, "Bob's debt, the interest settled").to.equal(-(await sys.vault.balanceOf(bob, sys.usdc)));
      expect(scaled, "scaled at the index now: the original debt, rounded down").to.be.lte(10n ** 27n);
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// Conservation over random sequences
// ---------------------------------------------------------------------------------------------------

const RUNS = Number(process.env.INVARIANT_RUNS ?? 8);
const STEPS = Number(process.env.INVARIANT_STEPS ?? 14);

/** Alice, Bob, Carol, the pool (the lender), the fund, the backstop. */
const ACTORS = 6;
const actor = fc.nat(ACTORS - 1);
const owner = fc.nat(2);
const units = (max: number) => fc.integer({ min: 1, max });

type Step =
  | { kind: "transfer"; from: number; to: number; amount: number }
  | { kind: "fee"; payer: number; toPool: number; toFund: number }
  | { kind: "deposit"; account: number; amount: number }
  | { kind: "withdraw"; account: number; amount: number }
  | { kind: "payOut"; account: number; amount: number }
  | { kind: "settle"; account: number; engine: boolean }
  | { kind: "model" }
  | { kind: "time"; seconds: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("transfer" as const),
      from: actor,
      to: actor,
      amount: units(400_000),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("fee" as const),
      payer: actor,
      toPool: fc.oneof(fc.constant(0), units(5_000)),
      toFund: fc.oneof(fc.constant(0), units(2_000)),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("deposit" as const), account: actor, amount: units(50_000) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("withdraw" as const), account: owner, amount: units(50_000) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("payOut" as const), account: actor, amount: units(50_000) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("settle" as const), account: actor, engine: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("model" as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("time" as const),
      seconds: fc.oneof(units(120), units(90 * 86_400)),
    }),
  },
);

interface RandomWorld extends FeeWorld {
  one: bigint;
  ids: bigint[];
  owners: HardhatEthersSigner[];
}

const randomWorlds = new Map<number, () => Promise<RandomWorld>>(
  [6, 18].map((d) => [
    d,
    async function randomWorld(): Promise<RandomWorld> {
      const sys = await deploySystem({ quoteDecimals: d });
      await sys.vault.setInterestRateModel(INTEREST_MODEL);
      const one = 10n ** BigInt(d);
      const engine = await signerFor(sys.engine);
      await mintAndApprove(sys.usdc, sys.keeper, await sys.vault.getAddress(), 10n ** 9n * one);
      const w = {
        sys,
        engine,
        one,
        alice: await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * one]]),
        bob: await openAccount(sys, sys.bob, MarginMode.CROSS),
        carol: await openAccount(sys, sys.carol, MarginMode.CROSS),
        fund: await sys.engine.insuranceAccountId(),
        backstop: await sys.auction.backstopAccountId(),
        pool: sys.poolAccountId,
      };
      return {
        ...w,
        ids: [w.alice, w.bob, w.carol, w.pool, w.fund, w.backstop],
        owners: [sys.alice, sys.bob, sys.carol],
      };
    },
  ]),
);

/**
 * Sends `s`; returns each account's own legs (quote moved in or out by the step itself, not interest),
 * the quote that entered and left the vault, and the receipt (undefined: nothing sent).
 */
async function applyStep(w: RandomWorld, s: Step, modelState: { next: boolean }) {
  const { sys, engine, ids, one } = w;
  const legs = new Map<bigint, bigint>();
  const leg = (id: bigint, amount: bigint) => legs.set(id, (legs.get(id) ?? 0n) + amount);
  let quoteIn = 0n;
  let quoteOut = 0n;
  let tx: ContractTransactionResponse | undefined;
  switch (s.kind) {
    case "transfer": {
      const amount = BigInt(s.amount) * one;
      tx = await sys.vault.connect(engine).transferBalance(ids[s.from], ids[s.to], sys.usdc, amount);
      leg(ids[s.from], -amount);
      leg(ids[s.to], amount);
      break;
    }
    case "fee": {
      const [toPool, toFund] = [BigInt(s.toPool) * one, BigInt(s.toFund) * one];
      tx = await sys.vault.connect(engine).chargeFees(ids[s.payer], toPool, toFund);
      leg(ids[s.payer], -(toPool + toFund));
      leg(w.pool, toPool);
      leg(w.fund, toFund);
      break;
    }
    case "deposit": {
      const amount = BigInt(s.amount) * one;
      tx = await sys.vault.connect(sys.keeper).deposit(ids[s.account], sys.usdc, amount);
      leg(ids[s.account], amount);
      quoteIn = amount;
      break;
    }
    case "withdraw": {
      const amount = BigInt(s.amount) * one;
      if ((await sys.vault.balanceOf(ids[s.account], sys.usdc)) < amount) return undefined;
      if ((await sys.vault.totalDeposits(sys.usdc)) < amount) return undefined;
      tx = await sys.vault
        .connect(w.owners[s.account])
        .withdraw(ids[s.account], sys.usdc, amount, w.owners[s.account].address);
      leg(ids[s.account], -amount);
      quoteOut = amount;
      break;
    }
    case "payOut": {
      const amount = BigInt(s.amount) * one;
      if ((await sys.vault.totalDeposits(sys.usdc)) < amount) return undefined;
      tx = await sys.vault.connect(engine).payOutQuote(ids[s.account], sys.keeper.address, amount);
      leg(ids[s.account], -amount);
      quoteOut = amount;
      break;
    }
    case "settle":
      tx = await sys.vault.connect(s.engine ? engine : sys.carol).settleInterest(ids[s.account]);
      break;
    case "model":
      // One change a day, between two models within a day's step.
      await time.increase(86_400);
      tx = await sys.vault.setInterestRateModel(modelState.next ? STEPPED_MODEL : INTEREST_MODEL);
      modelState.next = !modelState.next;
      break;
    case "time":
      await time.increase(s.seconds);
      return undefined;
  }
  const receipt = (await tx.wait())!;
  return { legs, quoteIn, quoteOut, receipt };
}

describe("Quote conservation over random sequences (review round 157)", function () {
  for (const d of [6, 18])
    it(`moves quote in = quote out + Δ holdings, Σ credits = holdings + Σ debts, and every account's change = its legs ± the interest charged, at ${d} decimals`, async function () {
      const rounding: Rounding = { gap: 0n, debtors: 0, perDebtor: 0n, checks: 0 };
      let interestSeen = 0n;
      let debtorsSeen = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(stepArb, { minLength: STEPS, maxLength: 2 * STEPS }), async (steps) => {
          const w = await loadFixture(randomWorlds.get(d)!);
          const modelState = { next: true };
          let before = await readLedger(w.sys);
          for (const s of steps) {
            const sent = await applyStep(w, s, modelState);
            const after = await readLedger(w.sys);
            const what = `${JSON.stringify(s)}`;
            expectTotalsExact(after, what, rounding);
            const credits = after.balances.reduce((a, b) => (b > 0n ? a + b : a), 0n);
            expect(credits, `${what}: Σ credits = holdings + Σ debts`).to.equal(after.held + after.quoteDebt);
            if (sent) {
              expect(after.held - before.held, `${what}: Δ holdings = in − out`).to.equal(
                sent.quoteIn - sent.quoteOut,
              );
              // Interest from the step's own events: each debtor pays it, the lender gets all of it.
              const charged = new Map<bigint, bigint>();
              let toLender = 0n;
              for (const log of sent.receipt.logs) {
                const p = w.sys.vault.interface.parseLog(log);
                if (p?.name !== "QuoteInterestCharged") continue;
                expect(p.args[1], "to the lender").to.equal(after.lender);
                charged.set(p.args[0], (charged.get(p.args[0]) ?? 0n) + p.args[2]);
                toLender += p.args[2];
              }
              interestSeen += toLender;
              after.balances.forEach((b, i) => {
                const id = BigInt(i + 1);
                const expected =
                  (sent.legs.get(id) ?? 0n) - (charged.get(id) ?? 0n) + (id === after.lender ? toLender : 0n);
                expect(b - before.balances[i], `${what}: account ${id}'s change`).to.equal(expected);
              });
            }
            debtorsSeen = Math.max(debtorsSeen, after.balances.filter((b) => b < 0n).length);
            before = after;
          }
        }),
        { numRuns: RUNS, seed: Number(process.env.INVARIANT_SEED ?? 20261207) },
      );
      console.log(
        `      ${d} decimals: ${rounding.checks} states, up to ${debtorsSeen} debtors, ${interestSeen} units of interest charged; receivable short of Σ accrued by at most ${rounding.gap} (${rounding.debtors} debtors), ${rounding.perDebtor} a debtor`,
      );
      expect(interestSeen, "interest was charged").to.be.gt(0n);
    });
});
