/**
 * The keeper loop. Every new block:
 *
 *   discover  new accounts from AccountCreated events (catch-up from the start block, then incremental)
 *   check     their health with engine.healthMany, in batches; an account whose health reverts on its
 *             own (a stale feed of an asset it holds) is bisected out, reported and skipped
 *   act       closest to insolvency first (equity_MM ÷ MM ascending);
 *             liquidatable accounts without a running auction -> startAuctions, in batches, before
 *             any bid;
 *             running auction -> bidAndClose from the keeper's account when the discount beats closing
 *             costs and gas (simulated first: a lost race costs a call, not a transaction);
 *             expired option series -> settle (only when the deployment has an OptionMarket)
 *   funding   perp markets with open interest whose funding is --funding-interval old -> accrueFunding
 *
 * Every decision is re-derived from chain state, so a step that failed halfway is simply run again.
 * The loop survives the RPC going away (backoff and retry) and notices a chain that was replaced (a
 * restarted dev node, a deep reorg) by the hash of the newest block it saw: it then drops every
 * cached fact, re-reads the deployment file and starts over. It stops between steps on `signal`.
 */
import { Contract, Wallet, ZeroAddress, type JsonRpcProvider } from "ethers";
import { readDeployment, type Deployment } from "../../deploy/deployment";
import { connectContracts, createProvider, type Contracts } from "./chain";
import type { KeeperConfig } from "./config";
import { AccountDiscovery, AuctionTracker } from "./discovery";
import { ensureKeeperAccount, optionsHeld, tx } from "./liquidation";
import {
  backstopUnwindSize,
  inBatchesIsolatingFailures,
  isLiquidatable,
  isSameChain,
  isUnwindWorthSending,
  nextHealthBatch,
  staleFundingMarkets,
  WAD,
  type BlockRef,
  type HealthLike,
  type ItemOutcome,
} from "./logic";
import { describeError, withoutRepeats, type Logger } from "./log";
import { createOptionSettlement, type OptionSettlement, type OptionStepReport } from "./options";
import { liquidateAll } from "./liquidator";
import { backoffMs, isTimeoutError, isTransientError, skippingReverts, sleep } from "./retry";
import { failureKey, groupByReason, revertReason, type RevertReason, type Skipped } from "./reverts";
import { TxSender, succeeded } from "./sender";

/**
 * A mistake in the keeper's setup that no retry mends (the deployment file is for another chain than
 * the RPC's): the loop stops on it and the process exits 1 with the message.
 */
export class KeeperSetupError extends Error {}

/** About the gas of one `bidAndClose` (bench/results.md): a wallet below its cost is reported at start. */
const BID_GAS = 700_000n;

/** A setup notice repeated by the retry loop (a deployment not on chain, an empty wallet) is written once in this long. */
const SETUP_NOTICE_MS = 60_000;

/**
 * How often accounts that reverted on an earlier pass are bisected again (one call per batch between),
 * and after how many passes without a timeout the health batch grows back.
 */
export const FAILING_RECHECK_PASSES = 10;

/** The router's reverts of every price while the L2 sequencer is down or in its grace period. */
const SEQUENCER_REFUSALS = new Set(["SequencerDown", "GracePeriodNotOver"]);

/** The smallest backstop sweep the keeper sends, in whole quote tokens: it pays the gas, the LPs gain. */
export const SWEEP_MIN_TOKENS = 100n;

const AUTHORITY_ABI = ["function authority() view returns (address)"];
const CAN_CALL_ABI = [
  "function canCall(address caller, address target, bytes4 selector) view returns (bool immediate, uint32 delay)",
];

/** What the keeper knows about one chain; rebuilt from scratch after a reset. */
export interface Session {
  deployment: Deployment;
  /** The chain's provider: the non-urgent stage asks it for the newest block (`NonUrgentSends`). */
  provider: JsonRpcProvider;
  contracts: Contracts;
  discovery: AccountDiscovery;
  /** The auctions running, so that those whose account recovered are ended. */
  auctions: AuctionTracker;
  keeperAccountId: bigint | null;
  poolAccountId: bigint;
  /** The auction's backstop account: it holds absorbed books and is never auctioned. */
  backstopAccountId: bigint;
  /** LiquidationAuction.FLAG_REWARD_COOLDOWN: a start this soon after the account's last auction ended pays nothing. */
  flagRewardCooldown: bigint;
  /** `--unwind-backstop` was given and this wallet holds the BACKSTOP role. */
  canUnwind: boolean;
  /** The quote token's address, and one of its units in WAD. */
  quoteToken: string;
  quoteUnit: bigint;
  options: OptionSettlement | null;
  /** Accounts whose health reverted on the last pass that read them, with the reason (`failureKey`). */
  failing: Map<bigint, string>;
  /** Passes run in this session. */
  pass: number;
  /** Accounts per healthMany call: `--health-batch`, lowered after a timeout (`logic.nextHealthBatch`). */
  healthBatch: number;
  /** Passes since a health batch last timed out. */
  passesWithoutTimeout: number;
  /** The router has an L2 sequencer-uptime feed (`sequencerConfig`): each pass asks it first. */
  sequencerFeed: boolean;
  /** Why the router refused every price at the last pass (`StepReport.pricesRefused`), or null. */
  pricesRefused: RevertReason | null;
}

export async function runKeeper(cfg: KeeperConfig, log: Logger, signal: AbortSignal): Promise<void> {
  const first = readDeployment(cfg.deploymentFile);
  const provider = createProvider(cfg.rpcUrl, first.chainId, {
    attempts: 5,
    baseMs: 100,
    maxMs: 2_000,
    signal,
    onRetry: (error, attempt, delayMs, call) =>
      log.warn("rpc retry", { call, attempt, delayMs, error: describeError(error) }),
  });
  const wallet = new Wallet(cfg.privateKey, provider);
  const sender = new TxSender(wallet, provider, first.chainId, log, {
    maxGasPriceWei: cfg.maxGasPriceWei,
    dryRun: cfg.dryRun,
    txTimeoutMs: cfg.txTimeoutMs,
    raceJitterMs: cfg.raceJitterMs,
    pollMs: cfg.pollMs,
    signal,
  });

  log.info("keeper started", {
    address: wallet.address,
    chainId: first.chainId,
    rpc: cfg.rpcUrl,
    dryRun: cfg.dryRun,
    maxGasPriceWei: cfg.maxGasPriceWei,
    pollMs: cfg.pollMs,
  });

  let session: Session | null = null;
  let setupNotices = withoutRepeats(log, SETUP_NOTICE_MS);
  /** The newest block seen on the session's chain: if its hash changes, the chain was replaced. */
  let anchor: BlockRef | null = null;
  /** The newest block a step completed on. */
  let processed = -1;
  let lastStepAt = 0;
  let failures = 0;

  while (!signal.aborted) {
    try {
      // Where is the chain, and is it still the one we know?
      const head = Number(await provider.send("eth_blockNumber", []));
      if (anchor && !isSameChain(anchor, (await provider.getBlock(anchor.number))?.hash ?? null)) {
        log.warn("chain reset detected; rebuilding state", { anchorBlock: anchor.number, head });
        session = null;
        anchor = null;
        processed = -1;
      }
      // Nothing new on chain: sleep, except for a periodic re-check (an auction's discount grows with
      // time even when no block comes, as on an automining dev node).
      if (session && head <= processed && Date.now() - lastStepAt < cfg.recheckMs) {
        failures = 0;
        await sleep(cfg.pollMs, signal);
        continue;
      }
      const block = await provider.getBlock(head);
      if (!block?.hash) throw new Error(`block ${head} not available`);
      anchor = { number: head, hash: block.hash };

      if (!session) {
        session = await openSession(cfg, provider, wallet, sender, log, undefined, setupNotices);
        if (!session) {
          failures++;
          await sleep(backoffMs(failures, cfg.pollMs, 2_000), signal);
          continue;
        }
        // A repeat is one of the retries before a session: the next session's notices are new (an empty
        // wallet after a chain reset would otherwise go unsaid; review round 81, row 201).
        setupNotices = withoutRepeats(log, SETUP_NOTICE_MS);
      }
      const s: Session = session;

      await keeperStep(s, head, BigInt(block.timestamp), { cfg, sender, log, signal });

      processed = head;
      lastStepAt = Date.now();
      failures = 0;
      await sleep(cfg.pollMs, signal);
    } catch (error) {
      if (error instanceof KeeperSetupError) {
        provider.destroy();
        throw error;
      }
      failures++;
      const retryInMs = backoffMs(failures, cfg.pollMs, 5_000);
      log.warn("step failed; retrying", { failures, retryInMs, error: describeError(error) });
      await sleep(retryInMs, signal);
    }
  }
  provider.destroy();
  log.info("keeper stopped", {});
}

export interface StepContext {
  cfg: KeeperConfig;
  sender: TxSender;
  log: Logger;
  signal?: AbortSignal;
}

/**
 * What one pass did: each action counts once its transaction is mined, or, in a dry run, once its
 * simulation passes (what the keeper would have sent; `sender.succeeded`).
 */
export interface StepReport {
  accounts: number;
  liquidatable: bigint[];
  /** Perp markets whose backstop position an unwind was mined for (with the BACKSTOP role). */
  unwound: bigint[];
  /**
   * Quote units moved from the backstop to the pool's account (`sweepBackstopQuote`, open to anyone): an
   * absorbed book's cash is in the share price but out of every LP's exit until it is swept (§4, row 115;
   * review round 47, F1). 0 when there was none.
   */
  swept: bigint;
  /** Accounts whose health reverts on its own (a feed of an asset they hold fails): skipped this pass. */
  unchecked: Skipped<bigint>[];
  /** Perp markets whose funding was accrued: older than `--funding-interval`, an `accrueFunding` mined. */
  fundingAccrued: bigint[];
  /** Accounts whose auction an `endAuction` was mined for: in auction, no longer liquidatable. */
  ended: bigint[];
  /**
   * Liquidatable accounts without an auction that the keeper did not start: not material (maintenance
   * requirement below `--min-stake-usd`) and a flag reward below twice the start's gas (review round 60).
   */
  notStarted: bigint[];
  options: OptionStepReport | null;
  /**
   * Why the router refuses every price this block (`checkSequencer`: `SequencerDown`, `GracePeriodNotOver`),
   * or null. Then no health, start, bid, absorb, end, unwind, sweep or funding accrual can go through,
   * and the pass skips them (option settlement still runs): one call a pass instead of every account's
   * health bisected (2n − 1 calls every 10th pass) and a warning naming every account each pass, and the
   * outage leaves no account marked failing, which held the whole book unread for up to 9 passes after
   * it when one account failed on its own (review round 122).
   */
  pricesRefused: RevertReason | null;
  /**
   * The non-urgent stage stopped with sends left (`NonUrgentSends`): a block newer than the pass's head
   * came while it sent. The next pass sends them after its health checks, starts and bids.
   */
  deferred: boolean;
}

/**
 * The non-urgent sends of one pass: the backstop's unwinds and sweep, option payouts, funding accruals.
 * Each waits for its receipt, and the next pass (health checks, starts, bids) waits for the step: 50
 * payout batches held an account that crossed maintenance during them 50 blocks without an auction
 * (10 minutes at 12 s; review round 129). So the stage sends while it has sent nothing yet (each pass
 * makes progress, however fast blocks come) or while no block newer than the pass's `head` exists (one
 * `eth_blockNumber` before each send after the first); the rest is re-derived by the next pass. A dry
 * run sends nothing, so it is never held. Urgent and left out: starts, bids, absorbs, the ends of
 * recovered auctions, deficit updates (the LP share price's deduction for a running auction, read by
 * every deposit and exit; at most one per auction a pass) and series settlements (an unsettled series is
 * marked at spot: row 87).
 */
export class NonUrgentSends {
  /** Whether a send was refused this pass: what is left waits for the next. */
  deferred = false;
  private readonly broadcastsBefore: number;

  constructor(
    private readonly provider: JsonRpcProvider,
    private readonly sender: TxSender,
    private readonly head: number,
  ) {
    this.broadcastsBefore = sender.broadcasts;
  }

  /** Whether the next non-urgent send may go out now (false from the first refusal on). */
  async allow(): Promise<boolean> {
    if (this.deferred) return false;
    if (this.sender.broadcasts === this.broadcastsBefore) return true;
    if (Number(await this.provider.send("eth_blockNumber", [])) <= this.head) return true;
    this.deferred = true;
    return false;
  }
}

/**
 * One pass of the keeper over the chain at block `head` (timestamp `now`): discover, check, end the
 * auctions of recovered accounts, act (liquidator.ts), settle options, accrue stale funding. The loop
 * runs it every block; the demo runs it in-process. An account whose health reverts (a stale feed of an
 * asset it holds) is reported in `unchecked` and skipped; every other account is checked and acted on.
 * The stages are isolated (option settlement, the liquidation check, the backstop's unwind and sweep,
 * funding): anything else that reverts in one is logged and does not hold up the others; transport
 * errors fail the whole step, which the loop retries.
 */
export async function keeperStep(
  s: Session,
  head: number,
  now: bigint,
  { cfg, sender, log, signal }: StepContext,
): Promise<StepReport> {
  const report: StepReport = {
    accounts: 0,
    liquidatable: [],
    unwound: [],
    swept: 0n,
    unchecked: [],
    fundingAccrued: [],
    ended: [],
    notStarted: [],
    options: null,
    pricesRefused: null,
    deferred: false,
  };
  const isolated = (stage: string, run: () => Promise<void>): Promise<void> =>
    skippingReverts(log, `${stage} failed; other strategies go on`, { block: head }, run);

  // Series settlement first: until a series is settled the engine marks it at today's spot, so an
  // account whose expired options settle worthless could read as liquidatable and be flagged (the
  // reward taken from it) and sold at that mark (docs/reliability.md §4, row 87). The payouts, one
  // transaction per 50 holders, wait until after the liquidations.
  const options = s.options;
  if (options && !signal?.aborted) {
    await isolated("option series settlement", async () => {
      report.options = await options.step(head, now, { payouts: false });
    });
  }

  // The non-urgent stage (after the liquidations) stops once a newer block is out (`NonUrgentSends`).
  let gate: NonUrgentSends | null = null;
  const nonUrgent = (): NonUrgentSends => (gate ??= new NonUrgentSends(s.provider, sender, head));
  const deferred = (): boolean => gate?.deferred ?? false;

  // The payouts (and series that could not settle first), after the liquidations.
  const settleOptions = async (): Promise<void> => {
    if (!options || signal?.aborted) return;
    await isolated("option settlement", async () => {
      const late = await options.step(head, now, { gate: () => nonUrgent().allow() });
      report.options = {
        ...late,
        // A dry run reports an unsettled series at both steps; a real one settles it at the first.
        seriesSettled: [...new Set([...(report.options?.seriesSettled ?? []), ...late.seriesSettled])],
      };
    });
  };

  report.pricesRefused = await pricesRefused(s, head, log);
  if (report.pricesRefused) {
    await settleOptions();
    report.deferred = deferred();
    return report;
  }

  await isolated("liquidation check", async () => {
    // discover
    const found = await s.discovery.scanTo(head);
    if (found.length)
      log.info("accounts discovered", { count: found.length, total: s.discovery.accountIds.length });

    // check
    const ids = s.discovery.accountIds.filter(
      (id) => id !== s.poolAccountId && id !== s.backstopAccountId && id !== s.keeperAccountId,
    );
    const byId = await readHealth(s, ids, cfg, log);
    const outcomes = ids.map((id) => byId.get(id)!);
    const unhealthy: [bigint, HealthLike][] = [];
    for (const o of outcomes) {
      if (!o.ok) {
        const reason = revertReason(o.error);
        // The router refusing every price (the sequencer went down after `pricesRefused` asked) says
        // nothing about the account: marked failing, the whole book was read unbisected after the outage.
        // It also says the router has an uptime feed, though it had none when the session opened (one
        // governance added since): without the check every pass bisected the whole book (review round 123).
        if (SEQUENCER_REFUSALS.has(reason.error)) s.sequencerFeed = true;
        else s.failing.set(o.item, failureKey(o.error));
        report.unchecked.push({ key: o.item, reason });
      } else {
        s.failing.delete(o.item);
        if (isLiquidatable(o.result)) unhealthy.push([o.item, o.result]);
      }
    }
    report.accounts = ids.length;
    report.liquidatable = unhealthy.map(([id]) => id);
    if (report.unchecked.length) {
      log.warn("health reverted; accounts skipped this pass", {
        block: head,
        count: report.unchecked.length,
        reasons: groupByReason(report.unchecked).map(({ keys, ...reason }) => ({
          ...reason,
          accountIds: keys,
        })),
      });
    }
    log.debug("health checked", {
      block: head,
      accounts: ids.length,
      liquidatable: unhealthy.length,
      unchecked: report.unchecked.length,
    });

    report.ended = await endRecoveredAuctions(s, byId, head, { cfg, sender, log, signal });

    report.notStarted = await liquidateAll(s, unhealthy, head, now, { cfg, sender, log, signal });
  });

  if (s.canUnwind && !signal?.aborted) {
    await isolated("backstop unwind", async () => {
      report.unwound = await unwindBackstop(s, now, sender, log, nonUrgent());
    });
  }

  // After the absorbs and unwinds (an unwind sweeps on its own).
  if (!signal?.aborted) {
    await isolated("backstop sweep", async () => {
      report.swept = await sweepBackstop(s, sender, nonUrgent());
    });
  }

  await settleOptions();

  // After settlement, which is due at the first round after expiry; funding can wait for it.
  if (cfg.fundingInterval > 0 && !signal?.aborted) {
    await isolated("funding accrual", async () => {
      report.fundingAccrued = await accrueStaleFunding(
        s,
        now,
        BigInt(cfg.fundingInterval),
        sender,
        log,
        nonUrgent(),
      );
    });
  }
  report.deferred = deferred();
  return report;
}

/**
 * Why the router refuses every price at `head` (its sequencer-uptime feed says down, or up within the grace
 * period: `IOracleRouter.checkSequencer` reverts), or null; null at once without such a feed (L1). Logged
 * when it starts, changes and ends, not every pass.
 */
async function pricesRefused(s: Session, head: number, log: Logger): Promise<RevertReason | null> {
  let refused: RevertReason | null = null;
  if (s.sequencerFeed) {
    try {
      await s.contracts.router.checkSequencer();
    } catch (error) {
      if (isTransientError(error)) throw error;
      refused = revertReason(error);
    }
  }
  const before = s.pricesRefused;
  s.pricesRefused = refused;
  if (refused && refused.error !== before?.error) {
    log.warn("the oracle router refuses every price; liquidations wait", { block: head, ...refused });
  } else if (!refused && before) {
    log.info("the oracle router prices again; liquidations resume", { block: head });
  }
  return refused;
}

/**
 * Applies `logic.nextHealthBatch` to the session: after a health batch of `timedOut` accounts timed out,
 * or after a pass without a timeout (null).
 */
function resizeHealthBatch(s: Session, cfg: KeeperConfig, log: Logger, timedOut: number | null): void {
  s.passesWithoutTimeout = timedOut === null ? s.passesWithoutTimeout + 1 : 0;
  const size = nextHealthBatch({
    current: s.healthBatch,
    configured: cfg.healthBatch,
    timedOut,
    cleanPasses: s.passesWithoutTimeout,
    growAfter: FAILING_RECHECK_PASSES,
  });
  if (size !== s.healthBatch) log.info("health batch resized", { from: s.healthBatch, to: size, timedOut });
  s.healthBatch = size;
}

/**
 * The health of `ids`, by account: `engine.healthMany` in batches of the session's health batch.
 * An account whose health reverts (a stale feed of an asset it holds) is skipped, not the pass: the
 * failing batch is bisected down to it and every other account is checked (logic.ts). Accounts
 * that reverted on an earlier pass are read apart, so dust deposits of a stale-feed token into many
 * accounts cannot make every pass bisect the whole book: one call per batch of them, bisected again
 * every FAILING_RECHECK_PASSES passes. They are read in groups by the reason they failed with, and a
 * group that fails with another reason is halved at once: the accounts one stale feed stopped come back
 * when it returns, whatever still fails on another (one account on a feed still stale hid every account a
 * stale feed had marked, until the next bisecting pass).
 * A timeout lowers the batch once a smaller batch answers: then it was the endpoint's capacity
 * (lowered at once, so the rest of the pass and a pass that then fails use it); a node answering
 * nothing (an outage) would otherwise leave the session at 1 account a call.
 */
async function readHealth(
  s: Session,
  ids: readonly bigint[],
  cfg: KeeperConfig,
  log: Logger,
): Promise<Map<bigint, ItemOutcome<bigint, HealthLike>>> {
  let timedOut = false;
  let smallestTimedOut: number | null = null;
  const read = async (batch: bigint[]) => {
    try {
      const result = [...(await s.contracts.engine.healthMany(batch))];
      if (smallestTimedOut !== null && batch.length < smallestTimedOut) {
        resizeHealthBatch(s, cfg, log, smallestTimedOut);
        smallestTimedOut = null;
      }
      return result;
    } catch (error) {
      if (isTimeoutError(error)) {
        timedOut = true;
        smallestTimedOut = Math.min(smallestTimedOut ?? batch.length, batch.length);
      }
      throw error;
    }
  };
  s.pass += 1;
  const byReason = new Map<string, bigint[]>();
  for (const id of ids) {
    const reason = s.failing.get(id);
    if (reason === undefined) continue;
    const group = byReason.get(reason);
    if (group) group.push(id);
    else byReason.set(reason, [id]);
  }
  const outcomes = await inBatchesIsolatingFailures(
    ids.filter((id) => !s.failing.has(id)),
    () => s.healthBatch,
    read,
    isTransientError,
    { split: isTimeoutError },
  );
  const recheck = s.pass % FAILING_RECHECK_PASSES === 0;
  for (const [reason, known] of byReason) {
    outcomes.push(
      ...(await inBatchesIsolatingFailures(known, () => s.healthBatch, read, isTransientError, {
        // A new reason means what stopped them is gone for some: halve to find them.
        bisect: (error) => recheck || failureKey(error) !== reason,
        split: isTimeoutError,
      })),
    );
  }
  const byId = new Map(outcomes.map((o) => [o.item, o]));
  if (!timedOut) resizeHealthBatch(s, cfg, log, null);
  return byId;
}

/**
 * Ends the auctions whose account recovered (a top-up, prices moving back), by the health `byId` read
 * this pass; returns their accounts. Nothing else ends them: the account would stay frozen, its recorded
 * deficit still deducted from the LP share price. A health at the floor shocks (a volatility feed down)
 * cannot show a recovery, and the auction refuses it: left for the feed.
 */
async function endRecoveredAuctions(
  s: Session,
  byId: ReadonlyMap<bigint, ItemOutcome<bigint, HealthLike>>,
  head: number,
  { sender, log, signal }: StepContext,
): Promise<bigint[]> {
  const ended: bigint[] = [];
  await s.auctions.scanTo(head);
  for (const accountId of s.auctions.accountIds) {
    const o = byId.get(accountId);
    if (signal?.aborted || !o?.ok || isLiquidatable(o.result) || o.result.volatilityUnavailable) continue;
    await skippingReverts(log, "ending an auction failed; next account", { accountId }, async () => {
      // Every keeper sees the recovery at once: the later ones' ends reverted `AuctionNotActive` (review
      // round 124: 6 of 9 for three keepers on three auctions, 24,079 gas each).
      const sent = await sender.send(
        "endAuction",
        tx(s.contracts.auction, "endAuction", [accountId]),
        { accountId },
        // The end reads the account's health: its options may need repricing by the block (round 164).
        {
          raced: true,
          repricedOptions: await optionsHeld(s.contracts, s.deployment.contracts.optionMarket, [accountId]),
        },
      );
      if (succeeded(sent)) ended.push(accountId);
    });
  }
  return ended;
}

/**
 * Moves the backstop's spare quote to the pool's account (`sweepBackstopQuote`, open to anyone); returns
 * the amount (quote units), 0 when nothing was sent. The cash an absorb left in the backstop counts in
 * the LP share price, but LPs withdraw from the pool's account only. Moving it changes no value and can
 * only raise the pool's free margin. The contract keeps what the backstop's book requires, so the keeper
 * asks it what would move and sends only from SWEEP_MIN_TOKENS up (a book's funding would otherwise cost
 * a transaction every pass for cents).
 */
async function sweepBackstop(s: Session, sender: TxSender, gate: NonUrgentSends): Promise<bigint> {
  if (gate.deferred) return 0n;
  const cash = await s.contracts.vault.balanceOf(s.backstopAccountId, s.quoteToken);
  if (cash <= 0n) return 0n;
  const auction = s.contracts.auction;
  const worthSweeping = (amount: bigint): boolean => amount * s.quoteUnit >= SWEEP_MIN_TOKENS * WAD;
  const amount = await auction.sweepBackstopQuote.staticCall();
  if (!worthSweeping(amount) || !(await gate.allow())) return 0n;
  // A rival's sweep leaves nothing to move, and the later one is mined moving nothing after a full
  // health read of the backstop: checked at pending by what it would move (review round 124).
  const sent = await sender.send(
    "sweepBackstopQuote",
    tx(auction, "sweepBackstopQuote", []),
    { amount },
    {
      unless: (answer) => {
        const [left] = auction.interface.decodeFunctionResult("sweepBackstopQuote", answer);
        return worthSweeping(left as bigint) ? null : "backstop already swept; not sending";
      },
      // The sweep reads the backstop's health in a try: out of gas there, it is mined moving nothing. A
      // volatility round before the block that reprices the backstop's options did that to a sweep of
      // 8,768 USDC (304,793 estimated, 375,751 sent, 713,645 needed: review round 169).
      repricedOptions: await optionsHeld(s.contracts, s.deployment.contracts.optionMarket, [
        s.backstopAccountId,
      ]),
    },
  );
  return succeeded(sent) ? amount : 0n;
}

/**
 * Accrues the funding of every perp market with open interest whose funding is `interval` seconds old
 * or more (logic's `staleFundingMarkets`). A market whose accrual reverts (a stale feed) is skipped
 * for the step.
 */
async function accrueStaleFunding(
  s: Session,
  now: bigint,
  interval: bigint,
  sender: TxSender,
  log: Logger,
  gate: NonUrgentSends,
): Promise<bigint[]> {
  const perps = s.contracts.perps;
  const ids = Array.from({ length: Number(await perps.marketCount()) }, (_, i) => BigInt(i + 1));
  const markets = await Promise.all(
    ids.map(async (marketId) => {
      const info = await perps.market(marketId);
      return {
        marketId,
        lastFundingTime: info.lastFundingTime,
        openInterest: info.longOpenInterest + info.shortOpenInterest,
        fundingRate: info.fundingRate,
        rateMoving: info.params.maxFundingVelocity !== 0n && info.skew !== info.backstopSize,
      };
    }),
  );
  const accrued: bigint[] = [];
  for (const marketId of staleFundingMarkets(markets, now, interval)) {
    if (!(await gate.allow())) break;
    const readAt = markets.find((m) => m.marketId === marketId)!.lastFundingTime;
    await skippingReverts(log, "funding accrual skipped for a market", { marketId }, async () => {
      // A second accrual in the block of a rival's does not revert, it accrues nothing (50,254 gas in
      // review round 124): the last check reads the market at pending, and a funding time moved since
      // the pass read it says a rival's accrual is in.
      const sent = await sender.send(
        "accrueFunding",
        tx(perps, "accrueFunding", [marketId]),
        { marketId },
        {
          check: tx(perps, "market", [marketId]),
          unless: (answer) => {
            const [info] = perps.interface.decodeFunctionResult("market", answer);
            return info.lastFundingTime === readAt ? null : "funding already accrued; not sending";
          },
        },
      );
      if (succeeded(sent)) accrued.push(marketId);
    });
  }
  return accrued;
}

/**
 * Takes the backstop's perp positions out of the skew where the skew leans their way (logic's
 * `backstopUnwindSize`): those unwinds fill better than the oracle, so they cost the LPs nothing, and
 * until they happen fill premiums read the backstop's book as a trader's (funding and the pool delta
 * limit net it already: docs/reliability.md §4, row 38). The limit
 * is the quoted fill itself: a trade that moves the skew first makes the unwind revert instead of
 * pushing it past a flat skew. Leans below MIN_UNWIND_NOTIONAL are left alone; a market whose quote
 * reverts (a stale feed) is skipped for the step. Options are left to expire and settle.
 */
async function unwindBackstop(
  s: Session,
  now: bigint,
  sender: TxSender,
  log: Logger,
  gate: NonUrgentSends,
): Promise<bigint[]> {
  const c = s.contracts;
  const perpMarket = (await c.perps.getAddress()).toLowerCase();
  const unwound: bigint[] = [];
  for (const key of await c.engine.accountMarkets(s.backstopAccountId)) {
    if (key.market.toLowerCase() !== perpMarket) continue;
    if (gate.deferred) break;
    await skippingReverts(
      log,
      "backstop unwind skipped for a market",
      { marketId: key.marketId },
      async () => {
        const [position, info] = await Promise.all([
          c.perps.positionSize(s.backstopAccountId, key.marketId),
          c.perps.market(key.marketId),
        ]);
        const sizeDelta = backstopUnwindSize(position, info.skew);
        if (sizeDelta === 0n) return;
        const [fill] = await c.perps.quoteTrade(key.marketId, sizeDelta);
        if (!isUnwindWorthSending(sizeDelta, fill) || !(await gate.allow())) return;
        // Keepers holding the role all see the lean: the later unwinds reverted (`UnwindNotReducing`,
        // 42,802 gas in review round 124).
        const sent = await sender.send(
          "unwindBackstop",
          tx(c.auction, "unwindBackstop", [perpMarket, key.marketId, sizeDelta, fill, now + 600n]),
          { marketId: key.marketId, position, skew: info.skew, sizeDelta },
          {
            raced: true,
            // The unwind margin-checks the backstop's book, options included (round 164).
            repricedOptions: await optionsHeld(c, s.deployment.contracts.optionMarket, [s.backstopAccountId]),
          },
        );
        if (succeeded(sent)) unwound.push(key.marketId);
      },
    );
  }
  return unwound;
}

/**
 * Reads the deployment and everything the loop needs that only changes with the chain: pool account,
 * quote unit, auction duration, the keeper's bidder account. Null while the contracts are not on the
 * chain (a restarted dev node before its redeploy). The deployment is read from `cfg.deploymentFile`
 * unless given. `setupNotices` takes what a retry would repeat, the waiting deployment and an empty
 * wallet: `runKeeper` passes one that writes each once a minute (about 30 lines a minute before).
 */
export async function openSession(
  cfg: KeeperConfig,
  provider: JsonRpcProvider,
  wallet: Wallet,
  sender: TxSender,
  log: Logger,
  deployment: Deployment = readDeployment(cfg.deploymentFile),
  setupNotices: Logger = log,
): Promise<Session | null> {
  // Asked of the node: the provider's network is the deployment's chain id, fixed (`staticNetwork`), so
  // `getNetwork()` would compare the file with itself (review round 74, row 175).
  const served = Number(await provider.send("eth_chainId", []));
  if (served !== deployment.chainId) {
    throw new KeeperSetupError(
      `${cfg.deploymentFile} is for chain ${deployment.chainId}, but ${cfg.rpcUrl} serves chain ${served}: ` +
        `point --rpc at a node of chain ${deployment.chainId}, or --deployment at chain ${served}'s file ` +
        `(deploy/deployments/${served}.json)`,
    );
  }
  // Every transaction needs gas: say so once, rather than a refused send on every pass (row 176).
  const [balance, gasPrice] = await Promise.all([
    provider.getBalance(wallet.address),
    provider.send("eth_gasPrice", []).then(BigInt),
  ]);
  const oneBidWei = gasPrice * BID_GAS;
  if (balance < oneBidWei) {
    setupNotices.error("keeper wallet cannot pay for gas; fund it", {
      address: wallet.address,
      balanceWei: balance,
      oneBidWei,
    });
  }
  // A dev node that restarted is empty until someone redeploys: wait until every contract is there.
  for (const [name, address] of Object.entries(deployment.contracts)) {
    if ((await provider.getCode(address)) === "0x") {
      setupNotices.warn("deployment not on chain; waiting", { contract: name, address });
      return null;
    }
  }
  const contracts = connectContracts(deployment, wallet);
  const quoteToken = await contracts.vault.quoteToken();
  const quoteUnit = 10n ** (18n - (await contracts.erc20(quoteToken).decimals()));
  const poolAccountId = await contracts.engine.poolAccountId();
  const backstopAccountId = await contracts.auction.backstopAccountId();
  const flagRewardCooldown: bigint = await new Contract(
    deployment.contracts.liquidationAuction,
    ["function FLAG_REWARD_COOLDOWN() view returns (uint256)"],
    provider,
  ).FLAG_REWARD_COOLDOWN();
  // Unwinding needs the BACKSTOP role (granted to no one at deployment): ask the auction's
  // AccessManager once, rather than simulate an unwind that reverts on every pass.
  const manager = new Contract(
    await new Contract(deployment.contracts.liquidationAuction, AUTHORITY_ABI, provider).authority(),
    CAN_CALL_ABI,
    provider,
  );
  const [hasRole] = await manager.canCall(
    wallet.address,
    deployment.contracts.liquidationAuction,
    contracts.auction.interface.getFunction("unwindBackstop")!.selector,
  );
  const canUnwind = cfg.unwindBackstop && hasRole;
  const [sequencerFeed] = await contracts.router.sequencerConfig();
  if (cfg.unwindBackstop && !hasRole) log.warn("--unwind-backstop without the BACKSTOP role; not unwinding");
  const keeperAccountId = await ensureKeeperAccount(contracts, sender, log, cfg.dryRun, cfg.accountId);
  const startBlock = cfg.startBlock ?? deployment.startBlock;
  const discovery = new AccountDiscovery(provider, deployment.contracts.accounts, startBlock, cfg.logRange);
  const auctions = new AuctionTracker(
    provider,
    deployment.contracts.liquidationAuction,
    startBlock,
    cfg.logRange,
  );
  const options = createOptionSettlement(deployment.contracts.optionMarket, {
    contracts,
    provider,
    sender,
    log,
    startBlock,
    logRange: cfg.logRange,
  });
  log.info("session ready", {
    chainId: deployment.chainId,
    engine: deployment.contracts.engine,
    keeperAccountId,
    startBlock,
    optionSettlement: options !== null,
    canUnwind,
  });
  return {
    deployment,
    provider,
    contracts,
    discovery,
    auctions,
    keeperAccountId,
    poolAccountId,
    backstopAccountId,
    flagRewardCooldown,
    canUnwind,
    quoteToken,
    quoteUnit,
    options,
    failing: new Map(),
    pass: 0,
    healthBatch: cfg.healthBatch,
    passesWithoutTimeout: 0,
    sequencerFeed: sequencerFeed !== ZeroAddress,
    pricesRefused: null,
  };
}
