import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Log } from "ethers";
import {
  MarginMode,
  WAD,
  atLatestTimestamp,
  fundInsurance,
  openAccount,
  wad,
  withdrawToInitialMargin,
  type System,
} from "../shared/system";
import { DAY, deployOptionsSystemWithoutFunding, fromNow, listSeries, tradeOption } from "../shared/options";
import { marketParams, mineAt, trade } from "../shared/perps";
import { assetId, setFeedPrice } from "../shared/oracles";
import { mintAndApprove } from "../shared/tokens";
import { startInProcessKeeper, type InProcessKeeper } from "../shared/keeper";
import { hardhatWallet } from "../shared/e2e";
import type { OptionMarket } from "../../typechain-types";

/**
 * Review round 137: a market-wide crash across many accounts at once. Earlier rounds liquidated one to a
 * few accounts; here 30 accounts (long and short perps on ETH and BTC, ETH put writers, CROSS and
 * ISOLATED, leverage from the initial requirement to 20% of notional above it) go through one −25% ETH
 * round and a second −10% leg, and the real keeper (`startInProcessKeeper`) steps pass by pass.
 * Runtime: ~40 s for the file, of which the population takes 2–7 s (~6 transactions an account, linear
 * in it) and the keeper run ~30 s: 7 passes of ~4 s, each simulating a bid (`eth_estimateGas` of
 * `bidAndClose`) per running auction, so linear in the auctions times the passes (48 accounts at
 * 2-minute passes took 64 s).
 */
const USDC = 10n ** 6n;
const QUOTE_WAD = 10n ** 12n;
type Sys = System & { options: OptionMarket };

/** Accounts of the population, by kind (index i of ACCOUNTS picks kind i % 6). */
const KINDS = [
  "ethLong",
  "ethLongIsolated",
  "ethShort",
  "btcAndEthLong",
  "putWriter",
  "btcShortIsolated",
] as const;
const ACCOUNTS = 30;
/** Margin above the initial requirement, in % of the account's perp notional, by i % 5. */
const BUFFERS = [0n, 3n, 6n, 10n, 20n];
const INSURANCE = 5_000n * USDC;

interface Book {
  sys: Sys;
  ids: bigint[];
  put: bigint;
}

const liquidatable = (h: { equityMaintenance: bigint; maintenanceRequirement: bigint }) =>
  h.equityMaintenance < BigInt(h.maintenanceRequirement);

/** Opens account `i` of the population and leaves it at its initial requirement plus its buffer. */
async function openOne(sys: Sys, put: bigint, i: number): Promise<bigint> {
  const owner = [sys.alice, sys.bob, sys.carol][i % 3];
  const kind = KINDS[i % KINDS.length];
  const isolated = kind === "ethLongIsolated" || kind === "btcShortIsolated";
  const id = await openAccount(sys, owner, isolated ? MarginMode.ISOLATED : MarginMode.CROSS, [
    [sys.usdc, 60_000n * USDC],
  ]);
  const eth = wad(String(2 + (i % 4))); // 2–5 ETH
  const btc = wad("0.1") * BigInt(1 + (i % 3)); // 0.1–0.3 BTC
  let notional = 0n; // USD, whole
  if (kind === "ethLong" || kind === "ethLongIsolated") {
    await trade(sys.perps, owner, id, sys.markets.ETH, eth);
    notional = (3000n * eth) / WAD;
  } else if (kind === "ethShort") {
    await trade(sys.perps, owner, id, sys.markets.ETH, -eth);
    notional = (3000n * eth) / WAD;
  } else if (kind === "btcAndEthLong") {
    await trade(sys.perps, owner, id, sys.markets.BTC, btc);
    await trade(sys.perps, owner, id, sys.markets.ETH, wad("2"));
    notional = (60_000n * btc) / WAD + 6_000n;
  } else if (kind === "putWriter") {
    await tradeOption(sys.options, owner, id, put, -eth);
    await trade(sys.perps, owner, id, sys.markets.ETH, wad("1"));
    notional = (2800n * eth) / WAD + 3_000n;
  } else {
    await trade(sys.perps, owner, id, sys.markets.BTC, -btc);
    notional = (60_000n * btc) / WAD;
  }
  await withdrawToInitialMargin(sys, owner, id);
  const buffer = (notional * BUFFERS[i % BUFFERS.length] * USDC) / 100n;
  if (buffer > 0n) {
    await mintAndApprove(sys.usdc, owner, await sys.vault.getAddress(), buffer);
    await sys.vault.connect(owner).deposit(id, sys.usdc, buffer);
  }
  return id;
}

/**
 * The population, ETH at 3,000 and BTC at 60,000, the insurance fund at 20,000 USDC, a 30-day ETH put
 * struck at 2,800; a day later (so that the risk role may update the markets again) with fresh feeds.
 */
async function population(): Promise<Book> {
  const sys = await deployOptionsSystemWithoutFunding();
  await fundInsurance(sys, INSURANCE);
  const put = await listSeries(sys.options, "ETH", "2800", await fromNow(30n * DAY), false);
  const ids: bigint[] = [];
  for (let i = 0; i < ACCOUNTS; i++) ids.push(await openOne(sys, put, i));
  await mineAt(sys, (await fromNow(DAY)) + 60n);
  return { sys, ids, put };
}

/** ETH −25% in one round (3,000 → 2,250) and BTC −8%: the first leg. */
async function firstLeg(sys: Sys): Promise<void> {
  await setFeedPrice(sys.feeds.ETH, "2250");
  await setFeedPrice(sys.feeds.BTC, "55200");
}

/** The accounts of `ids` below maintenance now. */
async function underwater(sys: Sys, ids: bigint[]): Promise<bigint[]> {
  const out: bigint[] = [];
  for (const id of ids) if (liquidatable(await sys.engine.health(id))) out.push(id);
  return out;
}

/** The book's mark in quote units (the auction's valuation): negative for an insolvent account. */
async function markQuote(sys: Sys, id: bigint): Promise<bigint> {
  const h = await sys.engine.health(id);
  const [inQuote, usdMark] = await sys.vault.markInQuote(id);
  return h.equityMark - usdMark + inQuote;
}

/** The deficit `LiquidationAuction._deficitOf` takes for a mark (quote WAD): −mark rounded up to a unit. */
const deficitOf = (mark: bigint) => (mark < 0n ? (-mark + QUOTE_WAD - 1n) / QUOTE_WAD : 0n);

/** Every log of the auction from block `from` on, decoded. */
async function auctionEvents(sys: Sys, from: number) {
  const logs: Log[] = await ethers.provider.getLogs({
    address: await sys.auction.getAddress(),
    fromBlock: from,
  });
  return logs.map((l) => sys.auction.interface.parseLog(l)!).filter(Boolean);
}

/** Gas and calls of the keeper's transactions (Hardhat's account #4) in blocks (from, to]. */
async function keeperSpend(from: number, to: number, keeper = hardhatWallet(4).address) {
  let gas = 0n;
  let reverted = 0;
  let txs = 0;
  for (let n = from + 1; n <= to; n++) {
    const block = (await ethers.provider.getBlock(n, true))!;
    for (const t of block.prefetchedTransactions) {
      if (t.from !== keeper) continue;
      const r = (await ethers.provider.getTransactionReceipt(t.hash))!;
      gas += r.gasUsed;
      txs++;
      if (r.status !== 1) reverted++;
    }
  }
  return { gas, reverted, txs };
}

/** Liquidatable or in a running auction: the accounts of `ids` a keeper still has work on. */
async function stillOpen(sys: Sys, ids: bigint[]): Promise<bigint[]> {
  const healths = await sys.engine.healthMany(ids);
  const out: bigint[] = [];
  for (let i = 0; i < ids.length; i++) {
    if (liquidatable(healths[i]) || (await sys.auction.auctions(ids[i])).active) out.push(ids[i]);
  }
  return out;
}

/**
 * Steps `keepers` in turn, a pass each per `gap` seconds of chain time (feeds refreshed), until no auction
 * of `ids` runs and every account below maintenance is one the last pass chose not to start
 * (`StepReport.notStarted`), at most `maxPasses`; `between(pass)` runs after each pass (a second leg).
 * Returns the passes taken (Infinity if work is left) and those parked accounts: below maintenance, no
 * auction, and the last pass chose not to start them.
 */
async function runUntilQuiet(
  sys: Sys,
  keepers: InProcessKeeper[],
  ids: bigint[],
  maxPasses: number,
  gap = 300n,
  between: (pass: number) => Promise<void> = async () => {},
): Promise<{ passes: number; parked: bigint[] }> {
  for (let pass = 1; pass <= maxPasses; pass++) {
    let notStarted: bigint[] = [];
    for (const k of keepers) notStarted = (await k.step()).notStarted;
    await between(pass);
    const open = await stillOpen(sys, ids);
    if (open.every((id) => notStarted.includes(id))) return { passes: pass, parked: open };
    await mineAt(sys, BigInt(await time.latest()) + gap);
  }
  return { passes: Infinity, parked: [] };
}

/** Pool-limit refusals: a liquidation step refused by one of these is a limit meant for new risk. */
const POOL_LIMIT_ERRORS = [
  "OpenInterestCapExceeded",
  "PoolDeltaLimitExceeded",
  "PoolVegaLimitExceeded",
  "PoolOptionDeltaLimitExceeded",
  "RiskIncreasePaused",
];

/** The second leg (ETH 2,250 → 2,025, BTC 55,200 → 52,000), after the second pass, auctions running. */
async function secondLeg(sys: Sys): Promise<void> {
  await setFeedPrice(sys.feeds.ETH, "2025");
  await setFeedPrice(sys.feeds.BTC, "52000");
}

/**
 * The keeper (Hardhat's account #4) through both legs, a pass every 5 minutes of chain time; the pool's
 * assets and the fund's balance before the crash.
 */
async function crashedAndLiquidated() {
  const book = await population();
  const { sys, ids } = book;
  const assets0 = await sys.pool.totalAssets();
  const fund0 = await sys.insuranceFund.balance();
  await firstLeg(sys);
  const under = await underwater(sys, ids);
  const from = await ethers.provider.getBlockNumber();
  const keepers = [await startInProcessKeeper(sys, ["--race-jitter-ms", "0"])];
  const { passes, parked } = await runUntilQuiet(sys, keepers, ids, 20, 300n, async (pass) => {
    if (pass === 2) await secondLeg(sys);
  });
  const to = await ethers.provider.getBlockNumber();
  return { ...book, under, keepers, from, to, passes, assets0, fund0, parked };
}

/**
 * The crash with every auction started at once and run to its duration, no bid: what the absorbs of
 * the insolvent and the solvent books then cost, by order. ETH −25% in one round.
 */
async function allAbsorbable() {
  const book = await population();
  const { sys, ids } = book;
  await firstLeg(sys);
  const under = await underwater(sys, ids);
  await sys.auction.startAuctions(under);
  await mineAt(sys, BigInt(await time.latest()) + BigInt((await sys.auction.params()).duration));
  return { ...book, under };
}

/** JSON with bigints as decimal strings, for a spec's failure message. */
const show = (x: unknown) => JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? v.toString() : v));

/** The keeper's `--min-stake-usd` default: an account with MM at least this is always auctioned. */
const MIN_STAKE_USD = wad("100");

describe("A market-wide crash across many accounts (review round 137)", function () {
  describe("the keeper through a −25% then −10% ETH crash", function () {
    it("auctions every account below maintenance and ends every auction restored or taken insolvent within 7 passes (35 minutes), no transaction reverted, no refusal naming a pool limit", async function () {
      const { sys, under, keepers, from, to, passes } = await loadFixture(crashedAndLiquidated);
      const events = await auctionEvents(sys, from);
      const started = new Set(events.filter((e) => e.name === "AuctionStarted").map((e) => e.args.accountId));
      const ended = events.filter((e) => e.name === "AuctionEnded");
      const covered = events.filter((e) => e.name === "InsolvencyCovered");
      const spend = await keeperSpend(from, to);
      const summary = show({
        under: under.length,
        started: started.size,
        ended: ended.length,
        passes,
        spend,
      });
      for (const id of under) expect(started.has(id), `account ${id} auctioned; ${summary}`).to.equal(true);
      expect(passes, summary).to.be.at.most(7);
      expect(spend.reverted, `keeper transactions mined reverted; ${summary}`).to.equal(0);
      // Measured: 18 accounts under water at −25%, 19 auctioned (4 restored ones again after the second
      // leg), 10 ended restored and 13 taken insolvent, all by the keeper's bidAndClose: the solvent ones
      // in the pass that started them, the insolvent ones at the duration's end (30 minutes), once the
      // insolvency payout covered the close (72 simulations refused before, InsufficientMargin and
      // BidAndCloseLoss). 39 transactions, ~18.4M gas, 84 blocks; since row 360's fix 41 transactions
      // and ~19.3M gas, 24 auctions ended: the put writer the second leg sank is restarted and ended.
      expect(covered.length, summary).to.be.at.least(10);
      expect(spend.gas, summary).to.be.lessThan(25_000_000n);
      // Not one refusal, by the contracts or in the keeper's simulation, names a pool limit.
      const refusals = show(
        keepers.flatMap((k) => k.lines).filter((l) => l.msg === "no bid" || l.level !== "info"),
      );
      for (const name of POOL_LIMIT_ERRORS) expect(refusals, name).not.to.contain(name);
    });

    it("charges the fund and the LPs the insolvent books' deficits plus the bidder's premium: never less than the deficits", async function () {
      const { sys, from, fund0 } = await loadFixture(crashedAndLiquidated);
      const covered = (await auctionEvents(sys, from)).filter((e) => e.name === "InsolvencyCovered");
      const sum = (k: string) => covered.reduce((t, e) => t + (e.args[k] as bigint), 0n);
      const [deficits, fund, lps] = [sum("deficit"), sum("paidByInsurance"), sum("socialisedLoss")];
      // Measured: deficits 18,855.45 USDC, the fund paid 5,050.79 (its 5,000 and the crash's fees and
      // penalties), the LPs 14,479.22: 674.56 (3.6%) above the deficits, the premiums of the takes.
      expect(fund + lps, show({ deficits, fund, lps })).to.be.greaterThan(deficits);
      expect(fund + lps - deficits, show({ deficits, fund, lps })).to.be.lessThan(deficits / 10n);
      expect(fund, "the fund is emptied before the LPs pay").to.be.greaterThan(fund0);
      expect(await sys.insuranceFund.balance()).to.be.lessThan(USDC);
    });

    it("restarts within the flag reward's cooldown a small account that a partial bid restored and the second leg sank far below maintenance, solvent", async function () {
      const { sys, parked, keepers, from } = await loadFixture(crashedAndLiquidated);
      const events = await auctionEvents(sys, from);
      const starts = events.filter((e) => e.name === "AuctionStarted");
      // One account (a put writer, MM 92.24 USD, below the keeper's 100 USD stake) was restored by a
      // partial bid; the second leg took it to equity_MM 45.08 USD, under half its MM. Before the fix
      // (row 360) it was parked, "start not worth its gas: no flag reward", until a third leg made it
      // insolvent (−22.79 USD) and its deficit the fund's; now it is restarted, for no reward (the
      // cooldown), below half its MM and above 0.
      const restarts = starts.filter((e, i) =>
        starts.slice(0, i).some((earlier) => earlier.args.accountId === e.args.accountId),
      );
      const farBelow = restarts.filter(
        (e) =>
          e.args.flagReward === 0n &&
          e.args.equityMaintenance > 0n &&
          e.args.equityMaintenance * 2n < e.args.maintenanceRequirement &&
          e.args.maintenanceRequirement < MIN_STAKE_USD,
      );
      expect(farBelow, show(restarts.map((e) => e.args.toObject()))).to.have.length.at.least(1);
      expect(parked).to.deep.equal([]);
      // A third leg, ETH 2,025 → 1,850: accounts that sink below maintenance but not under half of it
      // within their cooldown are still left (row 146's hovering account); each of them is solvent and
      // below the stake.
      await setFeedPrice(sys.feeds.ETH, "1850");
      const report = await keepers[0].step();
      // Measured: 3 such accounts (before the fix, 4 parked at this leg, the put writer among them).
      expect(report.notStarted).to.have.length(3);
      for (const id of report.notStarted) {
        const h = await sys.engine.health(id);
        expect(h.equityMaintenance * 2n).to.be.at.least(h.maintenanceRequirement);
        expect(BigInt(h.maintenanceRequirement)).to.be.lessThan(MIN_STAKE_USD);
        expect(await markQuote(sys, id)).to.be.greaterThan(0n);
      }
    });
  });

  describe("insolvent books absorbed in one block, in different orders", function () {
    it("charges the fund and the LPs together exactly the sum of the deficits; only a solvent book's penalty landing first moves the split, by that penalty", async function () {
      const { sys, under } = await loadFixture(allAbsorbable);
      // Marks read in a block at the absorbs' second: what decays or accrues with time is the same.
      const at = BigInt(await time.latest()) + 1n;
      await time.setNextBlockTimestamp(at);
      await ethers.provider.send("evm_mine", []);
      const marks = new Map<bigint, bigint>();
      for (const id of under) marks.set(id, await markQuote(sys, id));
      const insolvent = under.filter((id) => marks.get(id)! < 0n);
      const solvent = under.filter((id) => marks.get(id)! >= 0n);
      const deficits = insolvent.reduce((t, id) => t + deficitOf(marks.get(id)!), 0n);
      let recorded = 0n;
      for (const id of insolvent) recorded += (await sys.auction.auctions(id)).deficit;
      const fund0 = await sys.insuranceFund.balance();
      const absorbAll = async (order: bigint[]) => {
        const snap = await takeSnapshot();
        const from = await ethers.provider.getBlockNumber();
        let insolventAssetsDelta = 0n;
        for (const id of order) {
          const before = await sys.pool.totalAssets();
          await time.setNextBlockTimestamp(at);
          await sys.auction.absorb(id);
          if (marks.get(id)! < 0n) insolventAssetsDelta += (await sys.pool.totalAssets()) - before;
        }
        const ev = await auctionEvents(sys, from + 1);
        const covered = ev.filter((e) => e.name === "InsolvencyCovered");
        const sum = (k: string) => covered.reduce((t, e) => t + (e.args[k] as bigint), 0n);
        const bids = ev.filter((e) => e.name === "AuctionBid");
        const result = {
          deficit: sum("deficit"),
          fund: sum("paidByInsurance"),
          lps: sum("socialisedLoss"),
          penalties: bids.reduce((t, e) => t + (e.args.penalty as bigint), 0n),
          insolventAssetsDelta,
        };
        await snap.restore();
        return result;
      };
      // The keeper's order (most urgent first: the insolvent books), its reverse, and the solvent first.
      const insolventFirst = await absorbAll([...insolvent, ...solvent]);
      const reversed = await absorbAll([...insolvent].reverse().concat([...solvent].reverse()));
      const solventFirst = await absorbAll([...solvent, ...insolvent]);
      // Measured: 13 insolvent books, 9,757.17 USDC of deficits against a fund of 5,029.31; 5 solvent
      // books whose penalties are 9.71 USDC: the LPs pay 4,727.87 insolvent first, 4,718.16 solvent first.
      const summary = show({ deficits, recorded, fund0, insolventFirst, reversed, solventFirst });
      expect(insolvent.length, summary).to.be.at.least(10);
      expect(solvent.length, summary).to.be.at.least(3);
      for (const r of [insolventFirst, reversed, solventFirst]) {
        expect(r.deficit, `InsolvencyCovered's deficits = the hand-computed ones; ${summary}`).to.equal(
          deficits,
        );
        expect(r.fund + r.lps, `fund + LPs = Σ deficits; ${summary}`).to.equal(deficits);
      }
      expect(deficits).to.be.greaterThan(fund0);
      // The insolvent books among themselves: no order moves a unit.
      expect(reversed).to.deep.equal(insolventFirst);
      expect(insolventFirst.fund).to.equal(fund0);
      // Solvent books first: their penalties reach the fund before the insolvent books drain it.
      expect(solventFirst.penalties).to.be.greaterThan(0n);
      expect(solventFirst.fund - insolventFirst.fund, summary).to.equal(solventFirst.penalties);
      expect(insolventFirst.lps - solventFirst.lps, summary).to.equal(solventFirst.penalties);
      // The LPs' share price had the uncovered deficit deducted when each auction recorded it: the absorbs
      // move it only by what the deficits changed since (recorded − now: 0.19 USDC), to a unit per book.
      expect(recorded).to.be.greaterThan(deficits);
      expect(insolventFirst.insolventAssetsDelta, summary).to.be.closeTo(
        recorded - deficits,
        BigInt(insolvent.length),
      );
    });
  });

  describe("pool limits while the liquidations' closes land on the pool", function () {
    /** Every pool limit shut at `at`: perp open-interest caps and delta ratios, option vega and delta ratios, all at 1 wei. */
    async function shutEveryLimit(sys: Sys, at: bigint): Promise<void> {
      const eth = assetId("ETH");
      const shut = { maxOpenInterest: 1n, maxPoolDeltaRatio: 1n };
      const sends = [
        () => sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n, ...shut })),
        () => sys.perps.setMarketParams(sys.markets.BTC, marketParams(shut)),
        () => sys.options.setPoolVegaRatio(eth, 1n),
        () => sys.options.setPoolDeltaRatio(eth, 1n),
      ];
      for (const send of sends) {
        await time.setNextBlockTimestamp(at);
        await send();
      }
    }

    it("closes every slice the same with every pool limit shut and the engine paused as with the limits open", async function () {
      const { sys, under } = await loadFixture(allAbsorbable);
      const bidder = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
      await sys.accounts.connect(sys.bob).approve(sys.auction, bidder);
      const at = BigInt(await time.latest()) + 1n;
      const closeAll = async (shut: boolean) => {
        const snap = await takeSnapshot();
        if (shut) {
          await shutEveryLimit(sys, at);
          // Shut: a new 0.01 ETH long is over the cap, and with the engine paused refused outright.
          await time.setNextBlockTimestamp(at);
          await expect(
            trade(sys.perps, sys.bob, bidder, sys.markets.ETH, wad("0.01")),
          ).to.be.revertedWithCustomError(sys.perps, "OpenInterestCapExceeded");
          await time.setNextBlockTimestamp(at);
          await sys.engine.pause();
          await time.setNextBlockTimestamp(at);
          await expect(
            trade(sys.perps, sys.bob, bidder, sys.markets.ETH, wad("0.01")),
          ).to.be.revertedWithCustomError(sys.perps, "RiskIncreasePaused");
        }
        const outcomes: string[] = [];
        for (const id of under) {
          await time.setNextBlockTimestamp(at);
          try {
            await sys.auction.connect(sys.bob).bidAndClose(id, bidder, WAD, 2n ** 255n);
            outcomes.push(`${id}: taken`);
          } catch (error) {
            outcomes.push(`${id}: ${(error as Error).message}`);
          }
        }
        const result = {
          outcomes,
          bidderQuote: await sys.vault.balanceOf(bidder, sys.usdc),
          left: await stillOpen(sys, under),
        };
        await snap.restore();
        return result;
      };
      const open = await closeAll(false);
      const shut = await closeAll(true);
      // Measured: all 18 books (13 insolvent) taken and closed against the pool either way; the bidder
      // ends 1,958.35 USDC up, to the unit the same.
      expect(
        open.outcomes.every((o) => o.endsWith("taken")),
        show(open),
      ).to.equal(true);
      expect(open.left).to.deep.equal([]);
      expect(shut).to.deep.equal(open);
    });
  });

  describe("the pool after the crash", function () {
    it("is above its maintenance requirement and lets the LP take what its initial requirement leaves, not 1 USDC more", async function () {
      const { sys, assets0 } = await loadFixture(crashedAndLiquidated);
      const pool = await sys.engine.health(sys.poolAccountId);
      // Measured: equity_MM 1,015,498 USD against MM 6,291; the LPs' assets 1,000,119.90 → 1,015,498.37
      // (+1.54%: the counterparty of the losing longs, net of 14,479 socialised).
      expect(pool.equityMaintenance).to.be.greaterThan(BigInt(pool.maintenanceRequirement) * 100n);
      expect(await sys.pool.totalAssets()).to.be.greaterThan(assets0);
      // Measured: the seed LP may redeem 99.04% of the pool (1,005,769.21 USDC); it leaves equity_IM
      // within 10 USD of IM (9,725.65 USD).
      const maxRedeem = await sys.pool.maxRedeem(sys.lp);
      expect(maxRedeem).to.be.greaterThan((await sys.pool.totalSupply()) / 2n);
      // At the second the views read (what the pool holds decays and accrues with time).
      await atLatestTimestamp();
      await sys.pool.connect(sys.lp).redeem(maxRedeem, sys.lp, sys.lp);
      const [equity, requirement] = await sys.engine.initialMargin(sys.poolAccountId);
      expect(equity).to.be.at.least(requirement);
      // Within 10 USD (measured 0.0002–1.31 USD, 1.3 ppm of the exit: the share conversions' roundings).
      expect(equity - BigInt(requirement)).to.be.lessThan(10n * QUOTE_WAD * USDC);
      await expect(sys.pool.connect(sys.lp).withdraw(USDC, sys.lp, sys.lp)).to.be.reverted;
    });
  });
});
