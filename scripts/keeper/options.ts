/**
 * Strategy: settle expired option series (OptionMarket, named by the deployment file's
 * `contracts.optionMarket`).
 *
 * Per expired, unsettled series: find the settlement round on the feed the router names
 * (`settlementFeed`: the primary at expiry, even if replaced since, or its successor when it posted
 * nothing after expiry before the swap), the first round at or after expiry, or the swap
 * (logic.findSettlementRound: one read in the common case, a binary search otherwise) and send
 * `settleSeries(id, roundHint)`. Per settled series (in a step with `payouts`, once the settlement is
 * mined): settle the positions still open with `settleAccounts(holders, id)`, holders being the accounts
 * that traded or received the series (OptionTraded / PositionTransferred events) and still hold it.
 * The keeper runs a step without payouts before its health check (a settled series is marked at its
 * settlement price, an unsettled one at today's spot) and one with them after its liquidations, so the
 * payouts never hold up an auction.
 *
 * No wasted transactions: the series' state is read first (settled by someone else: nothing to send),
 * and every transaction is simulated right before it is signed (TxSender.send), so a keeper that lost
 * the race to another one between the read and the send costs an eth_call, not gas; checked at the
 * pending state after the race jitter, so does a rival's settlement or payout still waiting in the pool
 * (review round 124). Everything is re-derived from chain state, so a repeated step sends nothing new;
 * a series that is settled and has no open position left is remembered and no longer read. A series whose reads revert (its underlying's
 * feed reverts, say) is logged and skipped for the step; the other series are settled as usual.
 */
import type { JsonRpcProvider } from "ethers";
import { IOptionMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IOptionMarket__factory";
import type { Contracts } from "./chain";
import { getLogsSplitting } from "./discovery";
import { blockRanges, paidOutBy, sidesOf, type Sides } from "./logic";
import { settlementRoundHint } from "../../sdk/src/actions/internal/settlementRound";
import type { Logger } from "./log";
import { isTransientError } from "./retry";
import { groupByReason, revertReason, type Skipped } from "./reverts";
import { succeeded, type TxSender } from "./sender";

const SETTLE_BATCH = 50;

export interface OptionStepReport {
  /** Series whose settlement price this step recorded (in a dry run: would record; no payouts follow). */
  seriesSettled: bigint[];
  /** Positions this step's settleAccounts transactions closed. */
  positionsSettled: number;
  /** Expired series whose reads revert (the underlying's feed fails, say): skipped this step. */
  skipped: Skipped<bigint>[];
}

export interface OptionSettlement {
  /**
   * Settles the expired series that can be; with `payouts`, also the positions still open in them, a
   * batch at a time while `gate` answers true (asked before each batch: the pass's non-urgent sends,
   * `NonUrgentSends.allow`). A batch it refuses is left to a later step.
   */
  step(
    head: number,
    now: bigint,
    opts?: { payouts?: boolean; gate?: () => Promise<boolean> },
  ): Promise<OptionStepReport>;
}

/** A gate that lets every payout batch out. */
const always = async (): Promise<boolean> => true;

/** Whether a series' open interest is 0 on both sides: no open position left. */
function isPaidOut(openInterest: Sides): boolean {
  return openInterest.long === 0n && openInterest.short === 0n;
}

/** Whether two reads of a series' open interest agree on both sides. */
function sameSides(a: Sides, b: Sides): boolean {
  return a.long === b.long && a.short === b.short;
}

/** A series' open interest by side. */
function interestOf(series: { longOpenInterest: bigint; shortOpenInterest: bigint }): Sides {
  return { long: series.longOpenInterest, short: series.shortOpenInterest };
}

/**
 * The round that settles a series of `underlying` expiring at `expiry` (`settleSeries`' hint), or null
 * while none can: the SDK's search (`settlementRoundHint` in sdk/src/actions/internal/settlementRound.ts,
 * on the feed `OracleRouter.settlementFeed` names, proving a phase's first round through the router),
 * shared so that the SDK's `settleOptionSeries` sends the round the keeper does.
 */
export { settlementRoundHint };

export function createOptionSettlement(
  address: string | undefined,
  deps: {
    contracts: Contracts;
    provider: JsonRpcProvider;
    sender: TxSender;
    log: Logger;
    startBlock: number;
    logRange: number;
  },
): OptionSettlement | null {
  if (!address) return null;
  const to: string = address;
  const market = IOptionMarket__factory.connect(address, deps.provider);
  const { contracts: c, sender, log } = deps;
  const holders = new Map<bigint, Set<bigint>>();
  /** Settled series without open positions: nothing can happen to them any more. */
  const done = new Set<bigint>();
  /**
   * Settled series whose every known holder a step read closed while their open interest was not 0: a
   * holder the scan never saw (before `--start-block`, or in a block a reorg replaced below the scan's
   * cursor) holds it. Their open interest and known holders then: nothing to read again until either moves.
   */
  const unaccounted = new Map<bigint, { openInterest: Sides; holders: number }>();
  /** Per series being paid out: how many of its holders (in scan order) are known closed. */
  const paidUpTo = new Map<bigint, number>();
  /** Expiries read so far (a series' terms never change): a live series costs no read per step. */
  const expiries = new Map<bigint, bigint>();
  let scanned = deps.startBlock;

  async function scanHolders(head: number): Promise<void> {
    const topics = [
      [
        market.interface.getEvent("OptionTraded").topicHash,
        market.interface.getEvent("PositionTransferred").topicHash,
      ],
    ];
    for (const [fromBlock, toBlock] of blockRanges(scanned, head, deps.logRange)) {
      const logs = await getLogsSplitting(deps.provider, { address: to, topics }, fromBlock, toBlock);
      for (const entry of logs) {
        const parsed = market.interface.parseLog(entry);
        if (!parsed) continue;
        const seriesId = parsed.args.seriesId as bigint;
        const set = holders.get(seriesId) ?? new Set<bigint>();
        set.add((parsed.name === "OptionTraded" ? parsed.args.accountId : parsed.args.toAccountId) as bigint);
        holders.set(seriesId, set);
      }
      scanned = toBlock + 1;
    }
  }

  /** Settles series `id` (price, then open positions) when it has expired; adds what it did to `report`. */
  async function settle(
    id: bigint,
    now: bigint,
    report: OptionStepReport,
    payouts: boolean,
    gate: () => Promise<boolean>,
  ): Promise<void> {
    const knownExpiry = expiries.get(id);
    if (knownExpiry !== undefined && knownExpiry > now) return;
    const s = await market.series(id);
    expiries.set(id, s.expiry);
    if (s.expiry > now) return;
    // Settled and paid out (no open interest left on either side): nothing to read holder by holder. A
    // keeper restart, and a session rebuilt after a reorg at its newest block, read every holder of every
    // series ever settled here, one call each, before the next pass (review round 48).
    if (s.settled && isPaidOut(interestOf(s))) {
      done.add(id);
      return;
    }
    if (!s.settled) {
      // Positions move while a series is unsettled (a reorg dropped its settlement): read its holders again.
      unaccounted.delete(id);
      const hint = await settlementRoundHint(c.router, c.aggregator, s.underlying, s.expiry);
      if (hint === null) {
        log.debug("settlement round not available yet", { seriesId: id, expiry: s.expiry });
        return;
      }
      // Every keeper sees the expiry's round at once: the later settlements reverted
      // `SeriesAlreadySettled` (26,433 gas: review round 124).
      const sent = await sender.send(
        "settleSeries",
        { to, data: market.interface.encodeFunctionData("settleSeries", [id, hint]) },
        { seriesId: id, roundId: hint, expiry: s.expiry },
        { raced: true },
      );
      // Not settled by us (lost the race, reverted): the next step reads the series again.
      if (!succeeded(sent)) return;
      report.seriesSettled.push(id);
      // A dry run's payouts would be simulated against a series still unsettled, and revert.
      if (sent.status === "dry-run") return;
    }
    if (!payouts) return;
    await payOut(id, interestOf(s), report, gate);
  }

  /**
   * Pays out the positions still open in settled series `id`, one batch of SETTLE_BATCH holders per
   * transaction, while `gate` lets non-urgent sends go out. Holders are read in order from the series'
   * cursor, one batch at a time: a pass that sends one batch reads about one batch (re-reading every
   * holder each pass was 2,500 × 50 / 2 calls for 2,500 holders paid over 50 passes). A position of an
   * expired series never reopens, so the holders before the cursor (read closed, or paid by a mined
   * batch of ours) are not read again.
   */
  async function payOut(
    id: bigint,
    seriesInterest: Sides,
    report: OptionStepReport,
    gate: () => Promise<boolean>,
  ): Promise<void> {
    const accounts = [...(holders.get(id) ?? [])];
    // Every known holder read closed and nothing moved since: reading them again finds them closed (3 + N
    // calls a pass, forever: review round 135). A new holder, or open interest that moved (a payout a
    // reorg dropped reopens its positions), reads them all again.
    const missing = unaccounted.get(id);
    if (missing && missing.holders === accounts.length && sameSides(missing.openInterest, seriesInterest))
      return;
    // The caller read open interest left: with the cursor past every holder, a batch counted as mined
    // did not stay mined (a reorg dropped it). Every holder is read again rather than left unpaid.
    let next = paidUpTo.get(id) ?? 0;
    if (next >= accounts.length) next = 0;
    const readFromFirst = next === 0;
    let mined = false;
    /** Every holder before it is closed: read closed, or paid by a mined batch (a dry run's pays nobody). */
    let closedUpTo = next;
    /** The series' open interest, read before the last batch's holders: its last check's baseline. */
    let openInterest: Sides | null = null;
    while (next < accounts.length) {
      if (!(await gate())) return;
      // Read before the holders, not after: a rival's payout mined while they are read then shows at
      // pending as a fall. Read after, it was in the baseline, and the batch of those read open before
      // it was mined paying nobody (32,579 gas for 2 holders: review round 132).
      const baseline = interestOf(await market.series(id));
      openInterest = baseline;
      const positions: { account: bigint; size: bigint }[] = [];
      const batchStart = next;
      while (next < accounts.length && positions.length < SETTLE_BATCH) {
        const account = accounts[next++];
        const size = await market.positionSize(account, id);
        if (size !== 0n) positions.push({ account, size });
        else if (positions.length === 0 && closedUpTo === next - 1) closedUpTo = next;
      }
      paidUpTo.set(id, closedUpTo);
      if (positions.length === 0) break;
      const batch = positions.map((p) => p.account);
      // A batch a rival paid out is mined paying nobody, not reverted (35,136 gas for 3 holders: review
      // round 124). The last check reads the series at pending: open interest fallen since the baseline
      // by at least the batch's positions is a rival's payout, and the next pass pays whoever it left.
      const ours = sidesOf(positions.map((p) => p.size));
      const sent = await sender.send(
        "settleAccounts",
        { to, data: market.interface.encodeFunctionData("settleAccounts", [batch, id]) },
        { seriesId: id, accounts: batch.length },
        {
          check: { to, data: market.interface.encodeFunctionData("series", [id]) },
          unless: (answer) => {
            const [pending] = market.interface.decodeFunctionResult("series", answer);
            return paidOutBy(baseline, interestOf(pending), ours)
              ? "series being paid out by another; not sending"
              : null;
          },
        },
      );
      if (succeeded(sent)) report.positionsSettled += batch.length;
      if (sent.status === "mined") {
        mined = true;
        // Only when every holder before this batch is closed: one that failed before it is read again.
        if (closedUpTo >= batchStart) closedUpTo = next;
        paidUpTo.set(id, closedUpTo);
      }
      // A rival is paying this series out: its next batches follow, and each of ours would wait its
      // jitter to skip them too (up to 250 ms a batch, 50 holders each, before the next pass's
      // liquidations). The next pass pays whoever the rival leaves (review round 128).
      else if (sent.status === "nothing-to-do") return;
    }
    // Done only when this step read every holder closed: after a mined batch the next step's read of the
    // series' open interest says so (one call), and a batch a reorg dropped is then paid (review round 131).
    // And only when the series agrees: the holders are scanned to the pass's head, the positions read at
    // latest, so one who received a position in a later block (the pass's own absorb) was unknown, every
    // known holder read closed, and the series was never read again (review round 132).
    if (!readFromFirst || mined || closedUpTo !== accounts.length) return;
    const left = openInterest ?? seriesInterest;
    if (isPaidOut(left)) {
      done.add(id);
      unaccounted.delete(id);
      return;
    }
    if (!unaccounted.has(id)) {
      log.warn("open interest no known holder accounts for; not paid by this keeper", {
        seriesId: id,
        longOpenInterest: left.long,
        shortOpenInterest: left.short,
        knownHolders: accounts.length,
      });
    }
    unaccounted.set(id, { openInterest: left, holders: accounts.length });
  }

  return {
    async step(head: number, now: bigint, { payouts = true, gate = always } = {}): Promise<OptionStepReport> {
      const report: OptionStepReport = { seriesSettled: [], positionsSettled: 0, skipped: [] };
      if (payouts) await scanHolders(head);
      const count = await market.seriesCount();
      for (let id = 1n; id <= count; id++) {
        if (done.has(id)) continue;
        try {
          await settle(id, now, report, payouts, gate);
        } catch (error) {
          // A read of this series reverts (its underlying's feed fails, say): skip it, not the others.
          if (isTransientError(error)) throw error;
          report.skipped.push({ key: id, reason: revertReason(error) });
        }
      }
      // Logged once per pass, by its payouts step (the series step before it skips the same series).
      if (report.skipped.length && payouts) {
        log.warn("option series reverted; skipped this step", {
          count: report.skipped.length,
          reasons: groupByReason(report.skipped).map(({ keys, ...reason }) => ({
            ...reason,
            seriesIds: keys,
          })),
        });
      }
      return report;
    },
  };
}
