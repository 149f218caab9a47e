/**
 * The act stage of a keeper pass over the accounts found liquidatable: starts their auctions, in
 * batches, then records the deficits of, bids on or absorbs the auctions running. Decisions are in
 * logic.ts, reads behind a bid in liquidation.ts; this module sequences them and sends.
 */
import { encodeBytes32String } from "ethers";
import type { Contracts } from "./chain";
import type { KeeperConfig } from "./config";
import {
  assessBid,
  auctionOf,
  ensureKeeperAccount,
  optionsHeld,
  readBidderAccount,
  startedIn,
  tx,
} from "./liquidation";
import {
  bookInQuote,
  byStakeThenUrgency,
  chooseAction,
  deficitOf,
  expectedFlagReward,
  gasCostUsd,
  isBidProfitable,
  isDeficitStale,
  isDeficitWorthRecording,
  isFarBelowMaintenance,
  isMaterial,
  isStartWorthSending,
  WAD,
  type AuctionStatus,
  type HealthLike,
} from "./logic";
import type { Logger } from "./log";
import type { Session, StepContext } from "./loop";
import { isTimeoutError, isTransientError, skippingReverts } from "./retry";
import type { SendResult, TxSender } from "./sender";

/**
 * Liquidates the accounts of `unhealthy` (the pass at block `head`, timestamp `now`); returns those left
 * without an auction because a start would not pay (`StepReport.notStarted`). The material accounts go
 * first, each group closest to insolvency first (logic.byStakeThenUrgency), since transactions go out
 * one at a time. Every start goes out before any bid, in batches: a discount grows from its auction's
 * start, and one start per transaction left the last of 200 books in a crash 200 blocks behind the
 * first (40 minutes at 12 s). A batch goes out once full, and the material accounts' before the dust
 * is assessed (reads and a simulation per dust account: review round 69). One account's revert (a stale
 * feed of its book, ...) does not hold up the others.
 */
export async function liquidateAll(
  s: Session,
  unhealthy: readonly (readonly [bigint, HealthLike])[],
  head: number,
  now: bigint,
  { cfg, sender, log, signal }: StepContext,
): Promise<bigint[]> {
  const notStarted: bigint[] = [];
  const gas = gasPricing(s, sender);
  if (unhealthy.length && !signal?.aborted) await checkKeeperAccount(s, cfg, sender, log);
  const due: (DueStart & { status: AuctionStatus })[] = [];
  const starts = new StartBatches(s, now, cfg.startBatch, sender, log, signal);
  let materialGroup = true;
  for (const [accountId, h] of byStakeThenUrgency(unhealthy, cfg.minStakeUsd)) {
    if (signal?.aborted) break;
    if (materialGroup && !isMaterial(h, cfg.minStakeUsd)) {
      materialGroup = false;
      await starts.flush();
    }
    await skippingReverts(log, "liquidation failed; next account", { accountId }, async () => {
      const status = await auctionOf(s.contracts, accountId, now);
      const needsStart = chooseAction(h, status) === "start";
      if (needsStart && !(await startWorthSending(s, accountId, h, now, cfg.minStakeUsd, gas, log))) {
        notStarted.push(accountId);
        return;
      }
      due.push({ accountId, h, status });
      if (needsStart) await starts.add({ accountId, h });
    });
  }
  await starts.flush();
  const running = starts.running;
  for (const { accountId, h, status } of due) {
    if (signal?.aborted) break;
    // Not started (a dry run, a lost race that left no auction, a revert): nothing to bid on.
    if (chooseAction(h, status) === "start" && !running.has(accountId)) continue;
    await skippingReverts(log, "liquidation failed; next account", { accountId }, () =>
      liquidate(s, accountId, h, status, cfg, sender, log, gas),
    );
  }
  if (notStarted.length) {
    log.info("auctions not started: flag reward below twice the start's gas", {
      block: head,
      count: notStarted.length,
      minStakeUsd: cfg.minStakeUsd,
      accountIds: notStarted,
    });
  }
  return notStarted;
}

/** An account due an auction start, with the health the pass read. */
type DueStart = { accountId: bigint; h: HealthLike };

/**
 * Starts the auctions added (most urgent first) in `startAuctions` batches of up to `batchSize`
 * (`startAuction` for one), each sent once it is full or flushed; `running` holds the accounts whose
 * auction runs now, whoever started it. A batch whose simulation reverts (a stale feed of one book's
 * underlying), times out, or whose gas is above START_BATCH_GAS is halved until its parts go through, so
 * one book cannot hold up the others. A batch that would start nothing (a rival started all of it, or
 * prices cured it) is not sent: a lost race costs calls, not a transaction. A batch that fails otherwise
 * is logged and skipped: the bids of the pass still go out (review round 69).
 */
class StartBatches {
  readonly running = new Set<bigint>();
  private pending: DueStart[] = [];

  constructor(
    private readonly s: Session,
    private readonly now: bigint,
    private readonly batchSize: number,
    private readonly sender: TxSender,
    private readonly log: Logger,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async add(due: DueStart): Promise<void> {
    this.pending.push(due);
    if (this.pending.length >= this.batchSize) await this.flush();
  }

  async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (!batch.length || this.signal?.aborted) return;
    await skippingReverts(
      this.log,
      "start batch failed; next batch",
      { accountIds: batch.map((d) => d.accountId) },
      () => this.send(batch),
    );
  }

  private async send(batch: readonly DueStart[]): Promise<void> {
    if (this.signal?.aborted) return;
    const c = this.s.contracts;
    const ids = batch.map((d) => d.accountId);
    let sent: SendResult;
    // A start values each book (its health): options a volatility round repriced since the estimate cost
    // their grid (review round 164).
    const repricedOptions = await optionsHeld(c, this.s.deployment.contracts.optionMarket, ids);
    if (batch.length === 1) {
      const [{ accountId, h }] = batch;
      // Raced as a batch is: one account becoming liquidatable, the usual case, is a batch of one, and
      // every keeper's start but the first reverted `AuctionAlreadyActive` (39,752 gas: review round 124).
      sent = await this.sender.send(
        "startAuction",
        tx(c.auction, "startAuction", [accountId]),
        {
          accountId,
          equityMaintenance: h.equityMaintenance,
          maintenanceRequirement: h.maintenanceRequirement,
        },
        { raced: true, repricedOptions },
      );
    } else {
      const request = tx(c.auction, "startAuctions", [ids]);
      const gasUnits = await estimateStartBatch(this.sender, request);
      if (gasUnits === "split" || gasUnits > START_BATCH_GAS) {
        this.log.debug("start batch halved", {
          accountIds: ids,
          gasUnits: gasUnits === "split" ? null : gasUnits,
        });
        const half = Math.ceil(batch.length / 2);
        await this.send(batch.slice(0, half));
        await this.send(batch.slice(half));
        return;
      }
      // The number it would start is read at the send's own simulation, the last read before the fees:
      // read before the estimate, a rival's batch mined in between went out anyway (review round 70).
      sent = await this.sender.send(
        "startAuctions",
        request,
        { accountIds: ids },
        {
          gasEstimate: gasUnits,
          repricedOptions,
          unless: (answer) => {
            const [started] = c.auction.interface.decodeFunctionResult("startAuctions", answer);
            return started === 0n ? "start batch would start nothing; not sending" : null;
          },
        },
      );
    }
    if (sent.status === "dry-run") return; // no auction to bid on
    const ours = sent.status === "mined" ? startedIn(c, sent.receipt) : new Set<bigint>();
    for (const id of ids) {
      // Not ours (a rival started it, or it failed): bid anyway if someone else's auction runs.
      if (ours.has(id) || (await auctionOf(c, id, this.now)) === "running") this.running.add(id);
    }
  }
}

/** Gas above this splits a start batch: under any chain's block limit, with room for other transactions. */
const START_BATCH_GAS = 10_000_000n;

/**
 * A start batch's gas, or "split" when its estimate reverts or times out (a heavy batch on a slow
 * endpoint: halving helps, as it does a health batch). Other transport errors are rethrown.
 */
async function estimateStartBatch(sender: TxSender, request: TxRequestLike): Promise<bigint | "split"> {
  try {
    return await sender.estimateGas(request);
  } catch (error) {
    if (isTransientError(error) && !isTimeoutError(error)) throw error;
    return "split";
  }
}

/**
 * An account in auction: records its deficit when stale, then bids when it pays; when no bid pays and
 * the auction has run its duration, has the backstop absorb the slice.
 */
async function liquidate(
  s: Session,
  accountId: bigint,
  h: HealthLike,
  status: AuctionStatus,
  cfg: KeeperConfig,
  sender: TxSender,
  log: Logger,
  gas: GasPricing,
): Promise<void> {
  const c = s.contracts;
  const fields = {
    accountId,
    equityMaintenance: h.equityMaintenance,
    maintenanceRequirement: h.maintenanceRequirement,
  };
  // The book's options, which its update, bid and absorb value (review round 164).
  const repricedOptions = await optionsHeld(c, s.deployment.contracts.optionMarket, [accountId]);
  // An auction records its deficit only when touched; keep the LP share price's deduction current.
  // The auction values the book in quote: its collateral by the vault's markInQuote, positions 1:1.
  const deficitNow = async (equityMark: bigint): Promise<bigint> => {
    const [inQuote, usdMark] = await c.vault.markInQuote(accountId);
    return deficitOf(bookInQuote(equityMark, inQuote, usdMark), s.quoteUnit);
  };
  const deficit = await deficitNow(h.equityMark);
  const recorded = (await c.auction.auctions(accountId)).deficit;
  if (isDeficitStale(recorded, deficit)) {
    // Worth its gas (review round 60): a dust book cents under water moves by 1% every tick.
    const request = tx(c.auction, "updateDeficit", [accountId]);
    const gasUsd = await gas.costUsd(request);
    const riseUsd = await gas.quoteToUsd((deficit - recorded) * s.quoteUnit);
    if (gasUsd === null || isDeficitWorthRecording({ recorded, current: deficit, riseUsd, gasUsd })) {
      // The health is the pass's read, blocks ago (each send before this account's waited for its
      // receipt), and the last check at pending reads only the record: prices back up since were mined as
      // an update recording nothing (165,304 gas in review round 132). Read again, with the collateral,
      // only here: a book whose rise is below its gas costs no reread each pass (review round 135).
      const current = await deficitNow((await c.engine.health(accountId)).equityMark);
      if (isDeficitStale(recorded, current)) {
        // A rival's update makes this one a no-op, not a revert, that still values the whole book (170,622
        // gas in review round 124): the last check reads the auction at pending.
        await sender.send(
          "updateDeficit",
          request,
          { ...fields, deficit: current },
          {
            check: tx(c.auction, "auctions", [accountId]),
            unless: (answer) => deficitRecordedBy(c, answer, current),
            repricedOptions,
          },
        );
      } else {
        log.debug("deficit no longer stale when read again; not recorded", {
          ...fields,
          deficit: current,
          recorded,
        });
      }
    } else {
      log.debug("deficit rise below its gas; not recorded", {
        ...fields,
        deficit,
        recorded,
        riseUsd,
        gasUsd,
      });
    }
  }
  if (
    s.keeperAccountId !== null &&
    (await bidIfProfitable(s, s.keeperAccountId, accountId, cfg, sender, log, repricedOptions))
  ) {
    return;
  }
  // No bid pays for closing the slice (a shallow market's skew premium can exceed any discount): once
  // the discount is at its maximum, the backstop takes the slice instead of leaving the account to
  // sink towards insolvency.
  if (status === "absorbable") {
    // Every keeper without a paying bid absorbs at the same second: checked as a bid is (review round 117).
    // The backstop's book takes the slice and is valued with it.
    const backstopOptions = await optionsHeld(c, s.deployment.contracts.optionMarket, [s.backstopAccountId]);
    await sender.send("absorb", tx(c.auction, "absorb", [accountId]), fields, {
      raced: true,
      repricedOptions: repricedOptions + backstopOptions,
    });
  }
}

/**
 * Why an `updateDeficit` to `deficit` need not go out, by the auction as `auctions(accountId)` answers
 * (`answer`) at the pending state: ended (a rival's bid or end), or its record no longer stale (a
 * rival's update); null when it is still due.
 */
function deficitRecordedBy(c: Contracts, answer: string, deficit: bigint): string | null {
  const auction = c.auction.interface.decodeFunctionResult("auctions", answer);
  if (!auction.active) return "auction no longer running; deficit not recorded";
  return isDeficitStale(auction.deficit as bigint, deficit) ? null : "deficit already recorded; not sending";
}

/**
 * Before a pass's bids: can the keeper still bid from its account? A bid that leaves a slice's WETH in
 * it against a quote debt (README: the float) needs ETH not to fall: below its initial requirement every
 * later `bidAndClose` from it reverts, the quote-collateral books included, and the keeper would only
 * absorb, at the maximum discount (review round 60). Then it takes another account (a new one: no
 * capital needed for a quote book) and says which account to repay; the old account is scanned like
 * any other from then on (only the current bidder account is left out of the scan).
 */
async function checkKeeperAccount(
  s: Session,
  cfg: KeeperConfig,
  sender: TxSender,
  log: Logger,
): Promise<void> {
  const id = s.keeperAccountId;
  if (id === null) return;
  const { unfit, quoteBalance, health: h } = await readBidderAccount(s.contracts, id, s.quoteToken);
  if (unfit === null) return;
  log.error("keeper account cannot bid; bidding from another (repay its debt or top it up)", {
    accountId: id,
    reason: unfit,
    quoteBalance,
    equityInitial: h?.equityInitial,
    initialRequirement: h?.initialRequirement,
    equityMaintenance: h?.equityMaintenance,
  });
  s.keeperAccountId = await ensureKeeperAccount(s.contracts, sender, log, cfg.dryRun, null);
}

/** Gas and quote prices read at most once per pass (`gasPricing`). */
interface GasPricing {
  /**
   * The USD cost of sending `request` now (USD WAD), or null when it cannot be priced (its simulation
   * reverts, or the gas price is above the cap): the sender then reports why it is not sent.
   */
  costUsd(request: TxRequestLike): Promise<bigint | null>;
  /** Quote WAD to USD WAD at the quote token's price. */
  quoteToUsd(quoteWad: bigint): Promise<bigint>;
}

type TxRequestLike = Parameters<TxSender["estimateGas"]>[0];

/** The pass's gas pricing: fees, the gas token's and the quote's price, each read once when first needed. */
function gasPricing(s: Session, sender: TxSender): GasPricing {
  let prices: Promise<{ fee: bigint | null; nativeUsd: bigint; quotePrice: bigint }> | null = null;
  const read = () =>
    (prices ??= Promise.all([
      sender.fees(),
      s.contracts.router.getPrice(encodeBytes32String(s.deployment.nativeAsset)),
      s.contracts.vault.tokenValue(s.quoteToken, WAD / s.quoteUnit),
    ]).then(([fees, nativeUsd, quotePrice]) => ({
      fee: fees?.expectedPrice ?? null,
      nativeUsd,
      quotePrice,
    })));
  return {
    async costUsd(request) {
      let units: bigint;
      try {
        units = await sender.estimateGas(request);
      } catch (error) {
        if (isTransientError(error)) throw error;
        return null;
      }
      const [{ fee, nativeUsd }, l1FeeWei] = await Promise.all([read(), sender.l1DataFee(request)]);
      return fee === null ? null : gasCostUsd(units, fee, nativeUsd, l1FeeWei);
    },
    async quoteToUsd(quoteWad) {
      return (quoteWad * (await read()).quotePrice) / WAD;
    },
  };
}

/**
 * Whether to start `accountId`'s auction (logic.isStartWorthSending): always when it is material
 * (`--min-stake-usd`); else only when the flag reward the start would pay covers twice its gas (the
 * start, and the absorb that follows when nobody bids). An insolvent book, or one whose last auction
 * ended less than FLAG_REWARD_COOLDOWN ago, pays no reward. An insolvent account, or one far below its
 * line (`isFarBelowMaintenance`), is valued at what the start protects, about its MM, or at its reward
 * when that is more.
 */
async function startWorthSending(
  s: Session,
  accountId: bigint,
  h: HealthLike,
  now: bigint,
  minStakeUsd: bigint,
  gas: GasPricing,
  log: Logger,
): Promise<boolean> {
  if (isMaterial(h, minStakeUsd)) return true;
  const c = s.contracts;
  const [[inQuote, usdMark], auction, params] = await Promise.all([
    c.vault.markInQuote(accountId),
    c.auction.auctions(accountId),
    c.auction.params(),
  ]);
  const markQuote = bookInQuote(h.equityMark, inQuote, usdMark);
  const reward = expectedFlagReward({
    flagReward: params.flagReward,
    markQuote,
    quoteUnit: s.quoteUnit,
    now,
    endedAt: BigInt(auction.endedAt),
    cooldown: s.flagRewardCooldown,
  });
  const fields = { accountId, maintenanceRequirement: h.maintenanceRequirement, reward };
  // An insolvent book pays no reward, but its deficit is the insurance fund's and grows with every
  // tick until it is auctioned: what the start saves is then about its MM (one shock's loss), not the
  // reward. Without this, a book split into accounts below the stake was never started once under
  // water (review round 61).
  // The same holds for a solvent book far below its line, falling rather than hovering: parked until
  // insolvent, its deficit would fall on the fund (review round 137). Whatever its flag reward: a reward
  // capped at a few USD of equity left a never-auctioned book parked where one within the cooldown (no
  // reward) was started (review round 139).
  const protects = markQuote <= 0n || isFarBelowMaintenance(h);
  if (reward === 0n && !protects) {
    log.debug("start not worth its gas: no flag reward", fields);
    return false;
  }
  const gasUsd = await gas.costUsd(tx(c.auction, "startAuction", [accountId]));
  if (gasUsd === null) return true; // the sender reports the revert or the cap
  const paidUsd = reward === 0n ? 0n : await gas.quoteToUsd(reward * s.quoteUnit);
  const rewardUsd = protects && h.maintenanceRequirement > paidUsd ? h.maintenanceRequirement : paidUsd;
  const worth = isStartWorthSending({ material: false, rewardUsd, gasUsd });
  if (!worth) log.debug("start not worth its gas", { ...fields, rewardUsd, gasUsd });
  return worth;
}

/** Sends `bidAndClose` when the simulated bid clears the keeper's minimum profit; false if it does not. */
async function bidIfProfitable(
  s: Session,
  keeperAccountId: bigint,
  accountId: bigint,
  cfg: KeeperConfig,
  sender: TxSender,
  log: Logger,
  repricedOptions: number,
): Promise<boolean> {
  const assessment = await assessBid(s.contracts, sender, {
    accountId,
    keeperAccountId,
    quoteToken: s.quoteToken,
    quoteUnit: s.quoteUnit,
    nativeAssetId: encodeBytes32String(s.deployment.nativeAsset),
  });
  if ("skip" in assessment) {
    // The bidder is named: a revert like InsufficientMargin is usually the keeper's own account's.
    log.info("no bid", {
      accountId,
      bidderAccountId: keeperAccountId,
      reason: assessment.skip,
      ...assessment.detail,
    });
    return false;
  }
  const { economics, quote, request, gasUnits } = assessment.plan;
  const bidFields = { accountId, ...quote, ...economics };
  if (!isBidProfitable(economics, cfg.minProfitUsd)) {
    log.info("bid not profitable", { ...bidFields, minProfitUsd: cfg.minProfitUsd });
    return false;
  }
  // Simulated again (one eth_call) right before sending: another keeper may have bid in between.
  await sender.send("bidAndClose", request, bidFields, { gasEstimate: gasUnits, repricedOptions });
  return true;
}
