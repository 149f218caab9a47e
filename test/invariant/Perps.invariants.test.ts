import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, deploySystem, openAccount, type System } from "../shared/system";
import { refreshFeeds, trade, unwindPremium } from "../shared/perps";
import { assetId } from "../shared/oracles";
import { mintAndApprove } from "../shared/tokens";

/**
 * ARCHITECTURE.md invariants 1, 2 and 4 over random sequences of deposits, withdrawals, trades,
 * price moves and time, checked after every step:
 *   1. every token: vault balance = Σ account balances (the fund and the pool hold theirs outside or in
 *      their own accounts);
 *   2. Σ PnL over all accounts, the pool included, = −fees paid to the insurance fund − the skew
 *      premium a close-out would pay back, which the pool's value leaves out (up to the rounding dust
 *      the protocol keeps: never in the accounts' favour);
 *   4. every successful risk-increasing action leaves equity_IM ≥ IM; an LP's withdrawal, the pool's
 *      account's (the vault leaves that check to the pool's own bound, §4 row 198).
 */
const USDC = 10n ** 6n;
const QUOTE_TO_WAD = 10n ** 12n;
const RUNS = Number(process.env.INVARIANT_RUNS ?? 12);
const STEPS = Number(process.env.INVARIANT_STEPS ?? 14);

type Action =
  | { kind: "deposit"; trader: number; token: "usdc" | "weth"; amount: number }
  | { kind: "withdraw"; trader: number; token: "usdc" | "weth"; amount: number }
  | { kind: "trade"; trader: number; market: "ETH" | "BTC"; size: number }
  | { kind: "price"; asset: "ETH" | "BTC"; movePct: number }
  | { kind: "time"; seconds: number }
  | { kind: "lpWithdraw"; percentOfMax: number };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({
    kind: fc.constant("deposit" as const),
    trader: fc.nat(2),
    token: fc.constantFrom("usdc" as const, "weth" as const),
    amount: fc.integer({ min: 1, max: 5_000 }),
  }),
  fc.record({
    kind: fc.constant("withdraw" as const),
    trader: fc.nat(2),
    token: fc.constantFrom("usdc" as const, "weth" as const),
    amount: fc.integer({ min: 1, max: 5_000 }),
  }),
  fc.record({
    kind: fc.constant("trade" as const),
    trader: fc.nat(2),
    market: fc.constantFrom("ETH" as const, "BTC" as const),
    size: fc.integer({ min: -40, max: 40 }).filter((x) => x !== 0),
  }),
  fc.record({
    kind: fc.constant("price" as const),
    asset: fc.constantFrom("ETH" as const, "BTC" as const),
    movePct: fc.integer({ min: -15, max: 15 }),
  }),
  fc.record({ kind: fc.constant("time" as const), seconds: fc.integer({ min: 60, max: 3 * 86_400 }) }),
  // The pool's requirement is small beside its capital: only withdrawals at the bound can cross it.
  fc.record({
    kind: fc.constant("lpWithdraw" as const),
    percentOfMax: fc.oneof(fc.integer({ min: 1, max: 95 }), fc.constantFrom(100, 110)),
  }),
);

/** Successful actions across the campaign, so a run where everything reverted cannot pass silently. */
const succeeded = { trades: 0, withdrawals: 0, lpWithdrawals: 0 };

interface World {
  sys: System;
  traders: { signer: System["alice"]; accountId: bigint }[];
  /** Net quote deposited minus withdrawn per account id (quote units). */
  netQuote: Map<bigint, bigint>;
}

async function world(): Promise<World> {
  const sys = await deploySystem();
  const traders = [];
  const netQuote = new Map<bigint, bigint>();
  for (const signer of [sys.alice, sys.bob, sys.carol]) {
    const accountId = await openAccount(sys, signer, MarginMode.CROSS, [
      [sys.usdc, 20_000n * USDC],
      [sys.weth, ethers.parseEther("5")],
    ]);
    traders.push({ signer, accountId });
    netQuote.set(accountId, 20_000n * USDC);
  }
  netQuote.set(sys.poolAccountId, await sys.vault.balanceOf(sys.poolAccountId, sys.usdc));
  return { sys, traders, netQuote };
}

async function allAccountIds(sys: System): Promise<bigint[]> {
  const count = await sys.accounts.accountCount();
  return Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1));
}

async function apply(w: World, action: Action): Promise<void> {
  const { sys } = w;
  const priceFeeds = sys.feeds;
  switch (action.kind) {
    case "deposit": {
      const t = w.traders[action.trader];
      const token = sys[action.token];
      const amount =
        action.token === "usdc"
          ? BigInt(action.amount) * USDC
          : ethers.parseEther(String(action.amount / 1000));
      await mintAndApprove(token, t.signer, await sys.vault.getAddress(), amount);
      await sys.vault.connect(t.signer).deposit(t.accountId, token, amount);
      if (action.token === "usdc") w.netQuote.set(t.accountId, w.netQuote.get(t.accountId)! + amount);
      return;
    }
    case "withdraw": {
      const t = w.traders[action.trader];
      const token = sys[action.token];
      const amount =
        action.token === "usdc"
          ? BigInt(action.amount) * USDC
          : ethers.parseEther(String(action.amount / 1000));
      const ok = await succeeds(
        sys.vault.connect(t.signer).withdraw(t.accountId, token, amount, t.signer.address),
      );
      if (ok) {
        succeeded.withdrawals++;
        if (action.token === "usdc") w.netQuote.set(t.accountId, w.netQuote.get(t.accountId)! - amount);
        await expectInitialMarginMet(sys, t.accountId);
      }
      return;
    }
    case "trade": {
      const t = w.traders[action.trader];
      const marketId = sys.markets[action.market];
      const before = await sys.perps.positionSize(t.accountId, marketId);
      const delta = ethers.parseEther(String(action.size / 10));
      const ok = await succeeds(trade(sys.perps, t.signer, t.accountId, marketId, delta));
      const after = before + delta;
      const increasesRisk =
        abs(after) > abs(before) || (before !== 0n && after !== 0n && before > 0n !== after > 0n);
      if (ok) succeeded.trades++;
      if (ok && increasesRisk) await expectInitialMarginMet(sys, t.accountId);
      return;
    }
    case "price": {
      const feed = priceFeeds[action.asset];
      const answer = await feed.latestAnswer();
      await feed.updateAnswer((answer * BigInt(100 + action.movePct)) / 100n);
      return;
    }
    case "time": {
      await time.increase(action.seconds);
      await refreshFeeds(sys);
      return;
    }
    case "lpWithdraw": {
      const max = await sys.pool.maxWithdraw(sys.lp.address);
      const amount = (max * BigInt(action.percentOfMax)) / 100n;
      if (amount === 0n) return;
      const ok = await succeeds(sys.pool.connect(sys.lp).withdraw(amount, sys.lp.address, sys.lp.address));
      // One second of funding passes before the withdrawal: only amounts near the bound may go either way.
      if (action.percentOfMax <= 95) expect(ok, "an LP withdrawal within maxWithdraw").to.equal(true);
      if (action.percentOfMax > 105) expect(ok, "an LP withdrawal beyond maxWithdraw").to.equal(false);
      if (ok) {
        succeeded.lpWithdrawals++;
        w.netQuote.set(sys.poolAccountId, w.netQuote.get(sys.poolAccountId)! - amount);
        await expectInitialMarginMet(sys, sys.poolAccountId);
      }
      return;
    }
  }
}

async function expectInitialMarginMet(sys: System, accountId: bigint): Promise<void> {
  const h = await sys.engine.health(accountId);
  expect(
    h.equityInitial >= 0n && h.equityInitial >= BigInt(h.initialRequirement),
    "invariant 4: equity_IM ≥ IM",
  ).to.be.true;
}

async function checkInvariants(w: World): Promise<void> {
  const { sys } = w;
  const ids = await allAccountIds(sys);

  // 1. Token conservation.
  for (const token of [sys.usdc, sys.weth]) {
    let sum = 0n;
    for (const id of ids) sum += await sys.vault.balanceOf(id, token);
    expect(await token.balanceOf(sys.vault), "invariant 1: vault balance = Σ account balances").to.equal(sum);
  }

  // 2. Value conservation: Σ (quote balance − net quote deposits) + Σ position values = −insurance fees
  // − Σ close-out premiums, summed over every account but the insurance fund's (whose balance is the
  // fees). The pool's value leaves out the skew premium that closing every position would pay back.
  const fundAccount = await sys.insuranceFund.accountId();
  let pnl = 0n;
  for (const id of ids) {
    if (id === fundAccount) continue;
    const quote = await sys.vault.balanceOf(id, sys.usdc);
    pnl += (quote - (w.netQuote.get(id) ?? 0n)) * QUOTE_TO_WAD;
    const h = await sys.engine.health(id);
    const collateral = await sys.vault.collateralValue(id);
    pnl += h.equityMark - collateral.mark;
  }
  const insuranceFees = (await sys.insuranceFund.balance()) * QUOTE_TO_WAD;
  let unwind = 0n;
  for (const u of ["ETH", "BTC"] as const) {
    unwind += await unwindPremium(sys.perps, sys.markets[u], await sys.router.getPrice(assetId(u)));
  }
  // Each position value is rounded down by < 1 wei per rounding, each close-out premium by < 1 wei.
  const dust = BigInt(ids.length) * 4n + 2n;
  expect(pnl + insuranceFees + unwind, "invariant 2: Σ PnL = −fees − close-out premiums").to.be.lte(0n);
  expect(pnl + insuranceFees + unwind, "invariant 2: Σ PnL = −fees − close-out premiums (dust)").to.be.gte(
    -dust,
  );
}

async function succeeds(tx: Promise<unknown>): Promise<boolean> {
  try {
    await tx;
    return true;
  } catch {
    return false;
  }
}

const abs = (x: bigint): bigint => (x < 0n ? -x : x);

describe("Invariants: perps, collateral and funding", function () {
  it("hold after every step of random action sequences (1, 2, 4)", async function () {
    await fc.assert(
      fc.asyncProperty(fc.array(actionArb, { minLength: 1, maxLength: STEPS }), async (actions) => {
        const base = await loadFixture(world);
        const w = { ...base, netQuote: new Map(base.netQuote) };
        for (const action of actions) {
          await apply(w, action);
          await checkInvariants(w);
        }
      }),
      { numRuns: RUNS, seed: Number(process.env.INVARIANT_SEED ?? 20261121), verbose: 1 },
    );
    expect(succeeded.trades, "successful trades").to.be.gt(0);
    expect(succeeded.withdrawals, "successful withdrawals").to.be.gt(0);
    expect(succeeded.lpWithdrawals, "successful LP withdrawals").to.be.gt(0);
  });
});
