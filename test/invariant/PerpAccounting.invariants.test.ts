import { expect } from "chai";
import fc from "fast-check";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  accrueFunding as sdkAccrueFunding,
  getAccountState,
  marketKey,
  perpFee,
  fillPrice as sdkFillPrice,
  simulate,
} from "../../sdk/src";
import {
  MarginMode,
  WAD,
  atLatestTimestamp,
  deploySystem,
  openAccount,
  wad,
  type System,
  eventOf,
} from "../shared/system";
import {
  hotMarketParams,
  listPerpMarket,
  mineAt,
  refreshFeeds,
  trade,
  unwindPremiumOf,
} from "../shared/perps";
import { assetId } from "../shared/oracles";
import { sdkClient } from "../shared/sdk";

/**
 * Perp accounting: funding, fees and interest, and where every dollar goes (review round 43).
 *
 * A third perp market on ETH ("hot") is listed with a small skew scale, high funding velocity and
 * fees, so that random sequences hit the funding-rate bounds within hours, cross skew zero, flip
 * positions and run traders into quote debt (which pays interest to the pool). Every step is checked:
 *   - SDK vs chain, to the wei: simulate(getAccountState) at the trade's block against the
 *     PositionModified event (fill, realised PnL, funding, fee, new size and entry) and against the
 *     trader's quote balance after the trade; `accruedFunding` read at the same block equals the
 *     funding the trade settles;
 *   - conservation, to the wei: every account's quote balance sums to the USDC the vault holds, and
 *     the pool account received exactly what traders paid (Σ of quote moved by trades and interest);
 *   - value: Σ trader values + pool value + close-out premiums ≤ 0 and within dust of it.
 */
const USDC = 10n ** 6n;
const QUOTE_TO_WAD = 10n ** 12n;
const RUNS = Number(process.env.INVARIANT_RUNS ?? 10);
const STEPS = Number(process.env.INVARIANT_STEPS ?? 14);

const HOT = hotMarketParams(wad("100"), wad("60"));

interface World {
  sys: System;
  hot: bigint;
  traders: { signer: HardhatEthersSigner; id: bigint }[];
  netQuote: Map<bigint, bigint>;
}

async function fixture(): Promise<World> {
  const sys = await deploySystem();
  const hot = await listPerpMarket(sys.perps, "ETH", HOT);
  const traders = [];
  const netQuote = new Map<bigint, bigint>();
  for (const signer of [sys.alice, sys.bob, sys.carol]) {
    const id = await openAccount(sys, signer, MarginMode.CROSS, [
      [sys.usdc, 2_000n * USDC],
      [sys.weth, ethers.parseEther("20")],
    ]);
    traders.push({ signer, id });
    netQuote.set(id, 2_000n * USDC);
  }
  netQuote.set(sys.poolAccountId, await sys.vault.balanceOf(sys.poolAccountId, sys.usdc));
  return { sys, hot, traders, netQuote };
}

async function allIds(sys: System): Promise<bigint[]> {
  const n = await sys.accounts.accountCount();
  return Array.from({ length: Number(n) }, (_, i) => BigInt(i + 1));
}

/** Quote conservation (to the wei) and value conservation (to the dust, never in the accounts' favour). */
async function checkLedger(w: World, label: string): Promise<void> {
  const { sys } = w;
  const ids = await allIds(sys);
  let sum = 0n;
  let debt = 0n;
  for (const id of ids) {
    const b = await sys.vault.balanceOf(id, sys.usdc);
    sum += b;
    if (b < 0n) debt -= b;
  }
  expect(sum, `${label}: Σ quote balances = USDC in the vault`).to.equal(await sys.usdc.balanceOf(sys.vault));
  expect(await sys.vault.quoteDebt(), `${label}: quoteDebt`).to.equal(debt);

  const fund = await sys.insuranceFund.accountId();
  let pnl = 0n;
  for (const id of ids) {
    if (id === fund) continue;
    const q = await sys.vault.balanceOf(id, sys.usdc);
    pnl += (q - (w.netQuote.get(id) ?? 0n)) * QUOTE_TO_WAD;
    const h = await sys.engine.health(id);
    const c = await sys.vault.collateralValue(id);
    // equityMark counts a debt with its unsettled interest; the pool's value does not count it as a
    // receivable, so add it back (it is a transfer between the two once settled).
    pnl += h.equityMark - c.mark + (await sys.vault.accruedInterest(id)) * QUOTE_TO_WAD;
  }
  const fees = (await sys.vault.balanceOf(fund, sys.usdc)) * QUOTE_TO_WAD;
  const spot = await sys.router.getPrice(assetId("ETH"));
  let unwind = 0n;
  for (const m of [sys.markets.ETH, w.hot]) {
    const info = await sys.perps.market(m);
    unwind += unwindPremiumOf(spot, info.skew, info.params.skewScale);
  }
  const btc = await sys.perps.market(sys.markets.BTC);
  unwind += unwindPremiumOf(await sys.router.getPrice(assetId("BTC")), btc.skew, btc.params.skewScale);
  const total = pnl + fees + unwind;
  const dust = BigInt(ids.length) * 4n + 4n + QUOTE_TO_WAD * 4n; // interest rounding: ≤ 1 unit per debtor
  expect(total, `${label}: Σ PnL + fees + close-out premiums ≤ dust`).to.be.lte(dust);
  expect(total, `${label}: Σ PnL + fees + close-out premiums ≥ −dust`).to.be.gte(-dust);
}

type Action =
  | { kind: "trade"; trader: number; tenths: number }
  | { kind: "close"; trader: number }
  | { kind: "gap"; seconds: number }
  | { kind: "price"; pct: number }
  | { kind: "accrue" }
  | { kind: "params"; velocity: number; rate: number };

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("trade" as const),
      trader: fc.nat(2),
      tenths: fc.integer({ min: -120, max: 120 }).filter((x) => x !== 0),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("close" as const), trader: fc.nat(2) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("gap" as const),
      seconds: fc.oneof(fc.integer({ min: 20, max: 3_600 }), fc.integer({ min: 3_600, max: 6 * 86_400 })),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("price" as const), pct: fc.integer({ min: -8, max: 8 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("accrue" as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("params" as const),
      velocity: fc.integer({ min: -1, max: 1 }),
      rate: fc.integer({ min: -1, max: 1 }),
    }),
  },
);

const stats = { trades: 0, reverted: 0, flips: 0, debtors: 0, atBound: 0, paramChanges: 0, cases: 0 };

async function tradeStep(
  w: World,
  trader: number,
  sizeDelta: bigint | "close",
  label: string,
): Promise<void> {
  const { sys, hot } = w;
  const t = w.traders[trader];
  const client = await sdkClient(sys, t.signer);
  // A block at T, read at it, and the trade mined at the same second (funding and interest identical).
  await mineAt(sys, BigInt(await time.latest()) + 13n);
  const state = await getAccountState(client, { accountId: t.id, markets: [{ marketId: hot }] });
  const key = marketKey(await sys.perps.getAddress(), hot);
  const held = state.positions.find((p) => p.kind === "perp" && marketKey(p.market, p.marketId) === key);
  const size = held && held.kind === "perp" ? held.size : 0n;
  const delta = sizeDelta === "close" ? -size : sizeDelta;
  if (delta === 0n) return;
  const accrued = await sys.perps.accruedFunding(t.id, hot, { blockTag: state.blockNumber });
  const r = simulate(state, { type: "trade", marketId: hot, sizeDelta: delta });
  await atLatestTimestamp();
  const limit = r.trade ? r.trade.fillPrice : delta > 0n ? ethers.MaxUint256 : 0n;
  let receipt;
  try {
    receipt = await (await trade(sys.perps, t.signer, t.id, hot, delta, { limitPrice: limit })).wait();
  } catch (e) {
    expect(
      r.revert,
      `${label}: chain reverted (${(e as Error).message.slice(0, 120)}) but the SDK predicted success`,
    ).to.not.equal(undefined);
    stats.reverted++;
    return;
  }
  expect(r.revert?.name, `${label}: SDK predicted a revert the chain did not raise`).to.equal(undefined);
  const ev = eventOf(receipt, sys.perps, "PositionModified");
  expect(ev.args.fillPrice, `${label}: fill`).to.equal(r.trade!.fillPrice);
  expect(ev.args.realizedPnl, `${label}: realised`).to.equal(r.trade!.realizedPnl);
  expect(ev.args.fundingPaid, `${label}: funding`).to.equal(r.trade!.fundingPaid);
  expect(ev.args.fundingPaid, `${label}: accruedFunding view = funding settled`).to.equal(accrued);
  expect(ev.args.fee, `${label}: fee`).to.equal(r.trade!.fee * QUOTE_TO_WAD);
  expect(ev.args.newSize, `${label}: size`).to.equal(r.trade!.newSize);
  expect(ev.args.entryPrice, `${label}: entry`).to.equal(r.trade!.newEntryPrice);
  const quoteAfter = r.state.collateral.find((c) => c.token === state.quoteToken)!.balance;
  expect(await sys.vault.balanceOf(t.id, sys.usdc), `${label}: quote balance after`).to.equal(quoteAfter);
  stats.trades++;
  if (size !== 0n && size + delta !== 0n && size > 0n !== size + delta > 0n) stats.flips++;
  if (quoteAfter < 0n) stats.debtors++;
  const m = await sys.perps.market(hot);
  if (m.fundingRate === m.params.maxFundingRate || m.fundingRate === -m.params.maxFundingRate)
    stats.atBound++;
}

async function apply(w: World, a: Action, label: string): Promise<void> {
  const { sys, hot } = w;
  switch (a.kind) {
    case "trade":
      return tradeStep(w, a.trader, (BigInt(a.tenths) * WAD) / 10n, label);
    case "close":
      return tradeStep(w, a.trader, "close", label);
    case "gap":
      await mineAt(sys, BigInt(await time.latest()) + BigInt(a.seconds));
      return;
    case "price": {
      const feed = sys.feeds.ETH;
      await feed.updateAnswer(((await feed.latestAnswer()) * BigInt(100 + a.pct)) / 100n);
      return;
    }
    case "accrue":
      await refreshFeeds(sys);
      await sys.perps.accrueFunding(hot);
      return;
    case "params": {
      // Governance moves the funding parameters mid-accrual: the interval before must be accrued at
      // the old parameters (checked against the SDK's accrual of the stored state).
      const before = await sys.perps.market(hot);
      const p = before.params;
      const next = {
        skewScale: p.skewScale,
        makerFee: p.makerFee,
        takerFee: p.takerFee,
        insuranceFeeShare: p.insuranceFeeShare,
        maxPoolDeltaRatio: p.maxPoolDeltaRatio,
        maxOpenInterest: p.maxOpenInterest,
        maxFundingVelocity:
          p.maxFundingVelocity + BigInt(a.velocity) * wad("1") > 0n
            ? p.maxFundingVelocity + BigInt(a.velocity) * wad("1")
            : p.maxFundingVelocity,
        maxFundingRate:
          p.maxFundingRate + BigInt(a.rate) * wad("0.01") > 0n
            ? p.maxFundingRate + BigInt(a.rate) * wad("0.01")
            : p.maxFundingRate,
      };
      await refreshFeeds(sys);
      const T = BigInt(await time.latest()) + 1n;
      const spot = await sys.router.getPrice(assetId("ETH"));
      const expected = sdkAccrueFunding({
        rate: before.fundingRate,
        index: before.fundingIndex,
        skew: before.skew - before.backstopSize,
        skewScale: p.skewScale,
        maxFundingVelocity: p.maxFundingVelocity,
        maxFundingRate: p.maxFundingRate,
        price: spot,
        dt: T - before.lastFundingTime,
      });
      await time.setNextBlockTimestamp(T);
      try {
        await (await sys.perps.setMarketParams(hot, next)).wait();
      } catch (e) {
        // One change a day: the only refusal a step within the bounds meets.
        expect((e as Error).message, `${label}: parameter change`).to.include("UpdateTooSoon");
        return;
      }
      stats.paramChanges++;
      const after = await sys.perps.market(hot);
      expect(after.fundingIndex, `${label}: index accrued at the old parameters`).to.equal(expected.newIndex);
      const clamp =
        expected.newRate > next.maxFundingRate
          ? next.maxFundingRate
          : expected.newRate < -next.maxFundingRate
            ? -next.maxFundingRate
            : expected.newRate;
      expect(after.fundingRate, `${label}: rate clamped to the new bound`).to.equal(clamp);
      return;
    }
  }
}

describe("Perp accounting", function () {
  this.timeout(600_000);

  it(`keeps the SDK equal to the chain and quote to the wei, and value to the dust, over random trades, gaps, prices and funding changes (${RUNS} runs × ${STEPS} steps)`, async function () {
    await fc.assert(
      fc.asyncProperty(fc.array(actionArb, { minLength: STEPS, maxLength: STEPS }), async (actions) => {
        const w = await loadFixture(fixture);
        stats.cases++;
        for (let i = 0; i < actions.length; i++) {
          const label = `step ${i} ${JSON.stringify(actions[i])}`;
          await apply(w, actions[i], label);
          await refreshFeeds(w.sys);
          await checkLedger(w, label);
        }
      }),
      { numRuns: RUNS, seed: Number(process.env.INVARIANT_SEED ?? 43), endOnFailure: true, verbose: 1 },
    );
    console.log(`      perp accounting: ${JSON.stringify(stats)}`);
    expect(stats.trades).to.be.greaterThan(RUNS * 3);
  });
});

async function funded(sys: System, signer: HardhatEthersSigner, usdc: bigint): Promise<bigint> {
  return openAccount(sys, signer, MarginMode.CROSS, [[sys.usdc, usdc * USDC]]);
}

describe("Perp accounting: hand-computed edges", function () {
  it("charges maker on the part of a trade that reduces the skew and taker past zero, split pool / fund to the wei", async function () {
    const { sys, hot } = await loadFixture(fixture);
    const alice = await funded(sys, sys.alice, 50_000n);
    const bob = await funded(sys, sys.bob, 50_000n);
    await trade(sys.perps, sys.alice, alice, hot, wad("5"));
    const fund = await sys.insuranceFund.accountId();
    const [poolBefore, fundBefore, bobBefore] = await Promise.all([
      sys.vault.balanceOf(sys.poolAccountId, sys.usdc),
      sys.vault.balanceOf(fund, sys.usdc),
      sys.vault.balanceOf(bob, sys.usdc),
    ]);
    await atLatestTimestamp(); // no funding between the reads and the trade (Bob is flat anyway)
    const spot = await sys.router.getPrice(assetId("ETH"));
    const fill = sdkFillPrice(spot, wad("5"), -wad("8"), HOT.skewScale as bigint);
    // 3000·(1 + (10 − 8)/200) = 3,030; maker 5 at 0.1%, taker 3 at 0.3%: (0.005 + 0.009)·3,030 = 42.42.
    expect(fill).to.equal(wad("3030"));
    const fee = perpFee(
      wad("5"),
      -wad("8"),
      fill,
      HOT.makerFee as bigint,
      HOT.takerFee as bigint,
      QUOTE_TO_WAD,
    );
    expect(fee).to.equal(42_420_000n);
    await trade(sys.perps, sys.bob, bob, hot, -wad("8"));
    const toFund = (fee * 3n) / 10n; // 30%, rounded down: the pool keeps the odd unit
    expect((await sys.vault.balanceOf(fund, sys.usdc)) - fundBefore).to.equal(toFund);
    expect((await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)) - poolBefore).to.equal(fee - toFund);
    expect(bobBefore - (await sys.vault.balanceOf(bob, sys.usdc))).to.equal(fee);
  });

  it("settles no funding on a position opened and closed in one block, and none to a flat market", async function () {
    const { sys, hot } = await loadFixture(fixture);
    const alice = await funded(sys, sys.alice, 50_000n);
    await trade(sys.perps, sys.alice, alice, hot, wad("10"));
    await mineAt(sys, BigInt(await time.latest()) + 6n * 3600n); // rate climbs to its bound
    const rateBefore = await sys.perps.currentFundingRate(hot);
    expect(rateBefore).to.equal(HOT.maxFundingRate);
    const bob = await funded(sys, sys.bob, 50_000n);
    await ethers.provider.send("evm_setAutomine", [false]);
    const open = await trade(sys.perps, sys.bob, bob, hot, -wad("3"));
    const close = await trade(sys.perps, sys.bob, bob, hot, wad("3"));
    await ethers.provider.send("evm_mine", []);
    await ethers.provider.send("evm_setAutomine", [true]);
    const r = await (await close).wait();
    await (await open).wait();
    const ev = eventOf(r, sys.perps, "PositionModified");
    expect(ev.args.fundingPaid).to.equal(0n);
    // Alice closes; with no open interest the index moves but nobody holds a position, and the pool
    // keeps no basis: its exposure is empty.
    await trade(sys.perps, sys.alice, alice, hot, -wad("10"));
    await mineAt(sys, BigInt(await time.latest()) + 86_400n);
    const e = await sys.perps.exposure(sys.poolAccountId, hot, await sys.router.getPrice(assetId("ETH")), 0n);
    expect(e.value).to.equal(0n);
  });
});
