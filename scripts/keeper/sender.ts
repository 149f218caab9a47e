/**
 * Sends the keeper's transactions, one at a time.
 *
 * - One in flight: `send` resolves only once the receipt is in (or the wait timed out), and the
 *   keeper never calls it concurrently, so the nonce is simply the account's pending count.
 * - Simulated first: `estimateGas` runs the call against the latest state; a revert (lost race,
 *   unprofitable) is reported to the caller and nothing is sent.
 * - Idempotent broadcast: the transaction is signed once and its hash known before it leaves. If the
 *   node (or a proxy in front of it) fails the eth_sendRawTransaction answer, the keeper re-sends the
 *   same bytes and looks the hash up: a transaction that did get through is never sent a second time
 *   under a new nonce.
 * - Gas cap: fees come from `chooseFees`; above the cap nothing is sent.
 * - No queue behind a stuck transaction: one that got no receipt before the timeout (its max fee below
 *   a base fee that rose since) still holds its nonce, so the next transaction takes that nonce with
 *   fees raised enough to replace it (`replacementFees`) instead of waiting behind it (review round 48).
 *   After a restart the keeper no longer knows that transaction's fees: one the node counts as pending
 *   (which this run did not send) is waited behind for the receipt timeout, then assumed to have today's,
 *   and a replacement the node refuses as underpriced is remembered, so the next transaction offers 9/8
 *   of it again, or the cap, until an offer at the cap is refused (review round 67).
 * - Dry run: everything up to the signature, then a log line instead of the broadcast.
 */
import {
  Interface,
  Transaction,
  isError,
  keccak256,
  type JsonRpcProvider,
  type TransactionReceipt,
  type Wallet,
} from "ethers";
import { chooseFees, replacementFees, replacementFeesForUnknown, type TxFees } from "./logic";
import { describeError, nodeMessage, type Fields, type Logger } from "./log";
import { isRateLimitAnswer, isTransientError, sleep } from "./retry";
import { findRevertData } from "../../sdk/src/errors";
import { TX_GAS_CAP, repricingGasLimit } from "../../sdk/src/actions/internal/gas";

export interface TxRequest {
  to: string;
  data: string;
}

export type SendResult =
  | { status: "mined"; receipt: TransactionReceipt }
  | { status: "reverted"; receipt: TransactionReceipt }
  | { status: "simulation-failed"; error: unknown }
  | { status: "gas-above-cap"; baseFeePerGas: bigint | null }
  | { status: "dry-run"; gasLimit: bigint; fees: TxFees }
  | { status: "dropped"; hash: string }
  /** A waiting transaction of ours (an earlier run's) holds the nonce at higher fees; the next send offers more. */
  | { status: "replacement-underpriced"; nonce: number }
  /**
   * A transaction this run did not send holds the nonce, seen for less than the receipt timeout: it may
   * be mined in the next block, or be the operator's (same key). Nothing sent; replaced once it has waited
   * the timeout (review round 67, row 159).
   */
  | { status: "waiting-behind"; nonce: number }
  /**
   * The simulation passed but its return data says the transaction would do nothing (`unless`): a
   * `startAuctions` a rival's starts emptied skips rather than reverts (review round 70, row 170).
   */
  | { status: "nothing-to-do" }
  /**
   * The node refused the nonce as used and it is mined without this transaction: another process on the
   * key took it (review round 117). Nothing of this send was mined; the pass re-derives what is due.
   */
  | { status: "nonce-taken"; nonce: number };

/**
 * Whether a send went through: mined, or in a dry run simulated without a revert. A pass reports these
 * as done, so a dry run's report is what the keeper would have done (review round 110: it listed the
 * auctions it would end but none of the funding accruals or unwinds it would send).
 */
export function succeeded(result: SendResult): boolean {
  return result.status === "mined" || result.status === "dry-run";
}

/** EIP-7825 (Osaka): the most gas one transaction may carry (the SDK's constant). */
export { TX_GAS_CAP };

export interface SenderOptions {
  maxGasPriceWei: bigint;
  dryRun: boolean;
  txTimeoutMs: number;
  pollMs: number;
  signal?: AbortSignal;
  /** The most a raced send's last check waits, at random (RACE_JITTER_MS). */
  raceJitterMs?: number;
  /** The jitter's random source in [0, 1) (`Math.random` unless given). */
  random?: () => number;
}

/**
 * The most the last check of a raced send waits, at random: competing keepers that saw the same block
 * at the same moment check one after the other, so that the later ones see the earlier one's
 * transaction in the pending state instead of sending into a revert (review round 117: bids, start
 * batches, absorbs; round 124: every other transaction a rival can do first). Small beside a block; an
 * auction's discount only grows meanwhile.
 */
export const RACE_JITTER_MS = 250;

/**
 * How long the last checks go straight to latest after the node refused one at pending, before asking
 * it for pending again (an endpoint can move to a node that serves it). Asked every time, a refusing
 * node cost every bid's, start batch's and absorb's check a refused call first, and reth's "unknown
 * block" four of them with 0.7 s of back-off (read as a node behind and retried).
 */
export const PENDING_REPROBE_MS = 600_000;

/**
 * The GasPriceOracle predeploy of OP-stack chains (OP Mainnet, Base and their testnets): a transaction
 * there pays an L1 data fee on top of its gas, which `eth_gasPrice` and `eth_estimateGas` leave out.
 */
export const OP_GAS_PRICE_ORACLE = "0x420000000000000000000000000000000000000F";
const GAS_PRICE_ORACLE = new Interface(["function getL1Fee(bytes) view returns (uint256)"]);

/** Nonce errors that mean "this nonce is used": ours already got in, or someone else's did. */
const NONCE_USED = /nonce too low|already known|known transaction|nonce has already been used|NONCE_EXPIRED/i;
/** The node refuses a replacement whose fees are not enough above those of the transaction it replaces. */
const UNDERPRICED =
  // geth, reth, Anvil, Besu, Hardhat ("Replacement transaction underpriced. …"), ethers' REPLACEMENT_UNDERPRICED;
  // Erigon ("could not replace existing tx") and Nethermind ("ReplacementNotAllowed"), which ethers leaves
  // an UNKNOWN_ERROR, read as transient (review round 67, row 161).
  /replacement transaction underpriced|replacement fee too low|REPLACEMENT_UNDERPRICED|could not replace existing tx|ReplacementNotAllowed/i;

/** The node refuses a transaction its sender cannot pay for (geth, Erigon, Nethermind; Hardhat). */
const NO_FUNDS = /insufficient funds|doesn't have enough funds/i;

export class TxSender {
  /**
   * Our last transaction that had no receipt before the timeout (`refused` false: `fees` are its fees), or
   * whose replacement the node refused as underpriced (`refused` true: the waiting one's are above
   * `fees`), while not mined.
   */
  private unconfirmed: { nonce: number; fees: TxFees; refused: boolean } | null = null;
  /** A transaction this run did not send, waiting at `nonce` since `since` (ms): replaced after the timeout. */
  private unknownWaiting: { nonce: number; since: number } | null = null;
  /** Whether the chain has the OP-stack GasPriceOracle, read once (`l1DataFee`). */
  private opStack: Promise<boolean> | null = null;
  private readonly raceJitterMs: number;
  /** When (ms) the node last refused an eth_call at pending; null while it serves them. */
  private pendingRefusedAt: number | null = null;
  private readonly random: () => number;
  /** Transactions handed to the node so far (each then waited for its receipt): `broadcasts`. */
  private broadcastCount = 0;

  constructor(
    private readonly wallet: Wallet,
    private readonly provider: JsonRpcProvider,
    private readonly chainId: number,
    private readonly log: Logger,
    private readonly opts: SenderOptions,
  ) {
    this.raceJitterMs = opts.raceJitterMs ?? RACE_JITTER_MS;
    this.random = opts.random ?? Math.random;
  }

  get address(): string {
    return this.wallet.address;
  }

  /** Current fees under the cap, or null above it. */
  async fees(): Promise<TxFees | null> {
    const [block, tip, gasPrice] = await Promise.all([
      this.provider.getBlock("latest"),
      // Not every node has it (legacy chains): then the fee is the gas price.
      this.provider.send("eth_maxPriorityFeePerGas", []).then(BigInt, (error: unknown) => {
        if (isTransientError(error)) throw error;
        return null;
      }),
      this.provider.send("eth_gasPrice", []).then(BigInt),
    ]);
    return chooseFees(
      { baseFeePerGas: block?.baseFeePerGas ?? null, maxPriorityFeePerGas: tip, gasPrice },
      this.opts.maxGasPriceWei,
    );
  }

  /**
   * Simulates the call from the keeper's address; returns the gas it needs or throws the revert. An
   * estimator that searches above EIP-7825's cap fails, without revert data, calls that run under it
   * (Hardhat's EDR asked 37.3M for a 12.2M absorb of a 16-series book: review round 80). Such a failure
   * is checked with one eth_call at the cap: a call that succeeds there is sent with the cap; otherwise,
   * for every revert with data, a node's "reverted" without data and a refusal for funds or nonce,
   * the estimate's error is thrown.
   */
  async estimateGas(tx: TxRequest): Promise<bigint> {
    const request = { from: this.wallet.address, to: tx.to, data: tx.data };
    try {
      return await this.provider.estimateGas(request);
    } catch (error) {
      const data = (error as { data?: unknown }).data;
      if (isTransientError(error) || (typeof data === "string" && data !== "0x")) throw error;
      // Only a refusal that may be about the estimator's gas search is checked at the cap: a node that
      // says "reverted" without data (an empty revert; revert data it leaves out) answered the call, and
      // one refused for funds or a nonce was never run (review round 81, row 200).
      if (isError(error, "INSUFFICIENT_FUNDS") || isError(error, "NONCE_EXPIRED")) throw error;
      const said = (error as { info?: { error?: { message?: unknown } } }).info?.error?.message;
      if (typeof said === "string" && /revert/i.test(said)) throw error;
      try {
        await this.provider.call({ ...request, gasLimit: TX_GAS_CAP });
      } catch {
        throw error;
      }
      return TX_GAS_CAP;
    }
  }

  /**
   * The L1 data fee (wei) sending `tx` would pay on top of its gas: the OP-stack GasPriceOracle's
   * `getL1Fee` of the unsigned transaction, 0 on chains without the predeploy (Arbitrum counts its L1
   * component in `eth_estimateGas` already). The placeholder nonce, gas and fees change the serialised
   * size by a few bytes of the ~200 the calldata takes. An oracle that reverts or answers something other
   * than a uint256 is priced at 0 (with a warning): a liquidation is better sent on the gas alone than
   * never.
   */
  async l1DataFee(tx: TxRequest): Promise<bigint> {
    // A failed read is asked again next time: kept, one transport failure would fail every later bid.
    this.opStack ??= this.provider.getCode(OP_GAS_PRICE_ORACLE).then(
      (code) => code !== "0x",
      (error: unknown) => {
        this.opStack = null;
        throw error;
      },
    );
    if (!(await this.opStack)) return 0n;
    const unsigned = Transaction.from({
      type: 2,
      chainId: this.chainId,
      to: tx.to,
      data: tx.data,
      nonce: 1_000,
      gasLimit: 3_000_000n,
      maxFeePerGas: 10n ** 9n,
      maxPriorityFeePerGas: 10n ** 6n,
    }).unsignedSerialized;
    let answer: string;
    try {
      answer = await this.provider.call({
        to: OP_GAS_PRICE_ORACLE,
        data: GAS_PRICE_ORACLE.encodeFunctionData("getL1Fee", [unsigned]),
      });
    } catch (error) {
      if (isTransientError(error)) throw error;
      return this.unreadableL1Fee(error);
    }
    // Decoded apart from the call: an answer that is not a uint256 (another contract at the predeploy's
    // address) is ethers' BAD_DATA, which `isTransientError` takes for a broken connection, and every
    // bid's step would fail on it.
    try {
      return GAS_PRICE_ORACLE.decodeFunctionResult("getL1Fee", answer)[0] as bigint;
    } catch (error) {
      return this.unreadableL1Fee(error);
    }
  }

  private unreadableL1Fee(error: unknown): bigint {
    this.log.warn("L1 data fee unreadable; priced at 0", { error: describeError(error) });
    return 0n;
  }

  /**
   * Runs the call (eth_call) from the keeper's address against the pending state (the latest block and
   * the transactions waiting to be mined, where the node shows them) and returns its return data; throws
   * the revert. A rival's bid, start or absorb broadcast before this check makes it revert or do nothing
   * here, not in a mined transaction (review round 117).
   */
  async call(tx: TxRequest): Promise<string> {
    const request = { from: this.wallet.address, to: tx.to, data: tx.data };
    const refusedAt = this.pendingRefusedAt;
    if (refusedAt === null || Date.now() - refusedAt >= PENDING_REPROBE_MS) {
      try {
        const answer = await this.provider.call({ ...request, blockTag: "pending" });
        this.pendingRefusedAt = null;
        return answer;
      } catch (error) {
        if (!isPendingRefused(error)) throw error;
        // A node that serves no pending state answers an error: made a CALL_EXCEPTION by ethers, it read as
        // a revert and every bid, start batch and absorb was skipped, pass after pass (review round 118);
        // thrown as a node error by the keeper's provider (reth's "unknown block"), it failed every pass.
        // Checked against the latest block then, as before round 117.
        if (refusedAt === null) {
          this.log.warn("the node refuses eth_call at pending; last checks run at latest", {
            error: describeError(error),
          });
        }
        this.pendingRefusedAt = Date.now();
      }
    }
    return this.provider.call({ ...request, blockTag: "latest" });
  }

  /**
   * How many transactions this sender has handed to the node, each then waited for: a pass's non-urgent
   * stage counts its own by the difference (`NonUrgentSends`). Dry runs, skips and refusals hand none.
   */
  get broadcasts(): number {
    return this.broadcastCount;
  }

  /**
   * Simulates, prices and sends `tx`, then waits for its receipt. With `gasEstimate` (the caller just
   * estimated the same call) the simulation is a single eth_call instead of another estimation. With
   * `unless`, that eth_call's return data is handed to it (after the estimate, when no `gasEstimate`):
   * a message back means the call would do nothing, and it is logged instead of sending. It is the last
   * read before the fees, as a revert is for a call that reverts when it has nothing to do. With `check`,
   * that read is `check` (a view) instead of the call itself.
   */
  async send(
    label: string,
    tx: TxRequest,
    fields: Fields = {},
    opts: {
      gasEstimate?: bigint;
      unless?: (returnData: string) => string | null;
      /**
       * A call rivals race for (an absorb, an auction's end, a settlement): checked like a bid, after
       * the jitter, at the pending state.
       */
      raced?: boolean;
      /**
       * The view the last check reads (its answer handed to `unless`) in place of the call itself: for a
       * call that a rival's makes a no-op rather than a revert (an accrual at the same second, a deficit
       * already recorded, a payout batch already paid), the read that shows the rival's done (round 124).
       */
      check?: TxRequest;
      /**
       * The option positions the call's margin checks may reprice (`optionsHeld`: the auctioned book's,
       * the backstop's): each gets `REPRICING_GAS_PER_OPTION` on top of the padding, as the SDK's trades do.
       * A volatility round mined between the estimate and the block that takes them from their Greeks to
       * repricing ran a start on a 16-series book out of its padded 757,854 gas (2,839,121 needed) and a
       * bid out of 4,030,574 (7,339,632): review round 164.
       */
      repricedOptions?: number;
    } = {},
  ): Promise<SendResult> {
    let gas: bigint;
    let skip: string | null = null;
    try {
      gas = opts.gasEstimate ?? (await this.estimateGas(tx));
      if (opts.gasEstimate !== undefined || opts.unless || opts.raced || opts.check) {
        // Keepers that saw the same block at once would all pass this check and all send: the one mined
        // first wins, the others pay for a revert (bidAndClose: 47,350 gas; absorb: 26,394; endAuction:
        // 24,079) or a no-op (an empty batch: 80,437 for 12 books; updateDeficit: 170,622).
        // Checked at a random moment within the jitter, against the pending state, a later one sees the
        // earlier one's transaction and moves on to its next account (review rounds 117 and 124).
        if (this.raceJitterMs > 0)
          await sleep(Math.floor(this.random() * this.raceJitterMs), this.opts.signal);
        const answer = await this.call(opts.check ?? tx);
        skip = opts.unless?.(answer) ?? null;
      }
    } catch (error) {
      if (isTransientError(error)) throw error;
      this.log.info("simulation reverted; not sending", {
        action: label,
        ...fields,
        error: describeError(error),
      });
      return { status: "simulation-failed", error };
    }
    if (skip !== null) {
      this.log.info(skip, { action: label, ...fields });
      return { status: "nothing-to-do" };
    }
    const fees = await this.fees();
    if (fees === null) {
      this.log.warn("gas price above cap; not sending", {
        action: label,
        ...fields,
        capWei: this.opts.maxGasPriceWei,
      });
      return { status: "gas-above-cap", baseFeePerGas: null };
    }
    // 20% and 10,000 gas above the estimate, never above EIP-7825's cap when the estimate fits (many L2s
    // and nodes cap the same; review round 80): the SDK's padding, which its users' trades need too; plus
    // the repricing of the options the call margin-checks (round 164).
    const gasLimit = repricingGasLimit(gas, opts.repricedOptions ?? 0);
    if (this.opts.dryRun) {
      this.log.info("dry run: would send", { action: label, ...fields, gasLimit, ...fees });
      return { status: "dry-run", gasLimit, fees };
    }

    // Both counts at once: one round trip per send, as before the restart logic (review round 67, row 162).
    const [pending, mined] = await Promise.all([
      this.provider.getTransactionCount(this.wallet.address, "pending"),
      this.provider.getTransactionCount(this.wallet.address, "latest"),
    ]);
    let nonce = pending;
    let txFees = fees;
    // A transaction of ours still waiting: the one this run saw time out or refused (unless not on this
    // chain — a restarted dev node — where its nonce would be a gap), or one the node counts as pending
    // that this run did not send (an earlier run's, or the operator's from the same key), fees unknown.
    const known = this.unconfirmed;
    let stuck: { nonce: number; fees: TxFees | null; exact: boolean } | null = null;
    if (known && known.nonce <= nonce && mined <= known.nonce) {
      stuck = { nonce: known.nonce, fees: known.fees, exact: !known.refused };
    } else if (mined < nonce) {
      // Replaced only once it has waited as long as one of ours may: before that it may be mined in the
      // next block (the replacement then waits the whole timeout for a receipt that never comes) or be
      // the operator's deposit, dropped (review round 67, row 159).
      const now = Date.now();
      if (this.unknownWaiting?.nonce !== mined) this.unknownWaiting = { nonce: mined, since: now };
      if (now - this.unknownWaiting.since < this.opts.txTimeoutMs) {
        this.log.info("a transaction this run did not send holds the nonce; waiting behind it", {
          action: label,
          ...fields,
          waitingNonce: mined,
          waitedMs: now - this.unknownWaiting.since,
        });
        return { status: "waiting-behind", nonce: mined };
      }
      stuck = { nonce: mined, fees: null, exact: false };
    }
    if (stuck) {
      // Still waiting (its max fee below today's base fee, say): every later nonce would wait behind it,
      // or be refused as an underpriced replacement where the pending count leaves it out. Replace it:
      // everything is re-derived from chain state, so what it was meant to do is done again if still due.
      // Fees known: 9/8 of them. Unknown (an earlier run's: assume today's) or refused: 9/8, or the cap.
      const bumped =
        stuck.exact && stuck.fees
          ? replacementFees(fees, stuck.fees, this.opts.maxGasPriceWei)
          : replacementFeesForUnknown(fees, stuck.fees, this.opts.maxGasPriceWei);
      if (bumped === null) {
        this.log.warn("gas price above cap; not sending", {
          action: label,
          ...fields,
          capWei: this.opts.maxGasPriceWei,
          waitingNonce: stuck.nonce,
        });
        return { status: "gas-above-cap", baseFeePerGas: null };
      }
      nonce = stuck.nonce;
      txFees = bumped;
    }
    const signed = await this.wallet.signTransaction({
      ...tx,
      chainId: this.chainId,
      nonce,
      gasLimit,
      ...(txFees.type === 2
        ? { type: 2, maxFeePerGas: txFees.maxFeePerGas, maxPriorityFeePerGas: txFees.maxPriorityFeePerGas }
        : { type: 0, gasPrice: txFees.gasPrice }),
    });
    const hash = keccak256(signed);
    this.log.info("sending", { action: label, ...fields, hash, nonce, gasLimit });
    let broadcast: "sent" | "nonce-used";
    try {
      broadcast = await this.broadcast(label, signed, hash);
      this.broadcastCount += 1;
    } catch (error) {
      if (!UNDERPRICED.test(error instanceof Error ? error.message : String(error))) throw error;
      // Counted as pending now, though not when this send took the nonce: a transaction sent in between
      // by another process on this key (a blue/green deploy, a supervisor's restart) that may be mined in
      // the next block. Replaced at once (below), it was dropped and its process waited --tx-timeout-ms
      // for a receipt that never came (review round 117): waited behind instead, like any transaction
      // this run did not send (row 159).
      if (!stuck && (await this.provider.getTransactionCount(this.wallet.address, "pending")) > nonce) {
        this.unknownWaiting = { nonce, since: Date.now() };
        this.log.info("another transaction took the nonce; waiting behind it", {
          action: label,
          ...fields,
          waitingNonce: nonce,
        });
        return { status: "waiting-behind", nonce };
      }
      // A transaction this run does not know (an earlier run's, whose fees it could only guess) holds
      // the nonce at higher fees: remember what was refused, so that the next send offers 9/8 of it.
      this.unconfirmed = { nonce, fees: txFees, refused: true };
      this.log.warn("an earlier transaction holds the nonce at higher fees", {
        action: label,
        ...fields,
        nonce,
        error: describeError(error),
      });
      return { status: "replacement-underpriced", nonce };
    }
    // "Nonce too low" with no receipt of ours and the nonce mined: another transaction took it (another
    // process on this key); waiting --tx-timeout-ms for a receipt that cannot come stalled the keeper
    // (review round 117). The action is re-derived from chain state on the next pass.
    if (broadcast === "nonce-used" && (await this.nonceTakenByAnother(nonce, hash))) {
      this.log.warn("another transaction took the nonce; not sent", {
        action: label,
        ...fields,
        hash,
        nonce,
      });
      return { status: "nonce-taken", nonce };
    }
    const receipt = await this.waitForReceipt(hash);
    this.unconfirmed = receipt === null ? { nonce, fees: txFees, refused: false } : null;
    if (receipt === null) {
      this.log.error("no receipt before timeout", {
        action: label,
        ...fields,
        hash,
        timeoutMs: this.opts.txTimeoutMs,
      });
      return { status: "dropped", hash };
    }
    const status = receipt.status === 1 ? "mined" : "reverted";
    this.log[status === "mined" ? "info" : "warn"](`transaction ${status}`, {
      action: label,
      ...fields,
      hash,
      block: receipt.blockNumber,
      gasUsed: receipt.gasUsed,
    });
    return { status, receipt };
  }

  /** Whether `nonce` is mined and `hash` has no receipt: another transaction took the nonce. */
  private async nonceTakenByAnother(nonce: number, hash: string): Promise<boolean> {
    const [mined, receipt] = await Promise.all([
      this.provider.getTransactionCount(this.wallet.address, "latest"),
      this.provider.getTransactionReceipt(hash),
    ]);
    return mined > nonce && receipt === null;
  }

  /**
   * Sends the signed bytes until the node has them; re-sending identical bytes cannot double-spend.
   * "nonce-used": the node refused the nonce as used (ours mined already, or another transaction's).
   */
  private async broadcast(label: string, signed: string, hash: string): Promise<"sent" | "nonce-used"> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.provider.send("eth_sendRawTransaction", [signed]);
        return "sent";
      } catch (error) {
        // Did it get through anyway (answer lost on the way back)? Then we are done.
        const known = await this.provider.getTransaction(hash).catch(() => null);
        if (known) {
          this.log.warn("send failed but the node has the transaction", {
            action: label,
            hash,
            error: describeError(error),
          });
          return "sent";
        }
        const text = error instanceof Error ? error.message : String(error);
        if (NONCE_USED.test(text)) {
          // Mined already (getTransaction may lag behind on some nodes), or the nonce was taken.
          this.log.warn("nonce already used", { action: label, hash, error: describeError(error) });
          return "nonce-used";
        }
        // The same bytes would be refused again: the caller offers more next time.
        if (UNDERPRICED.test(text)) throw error;
        // Nor would re-sending them pay for them: Hardhat's refusal reaches ethers as an UNKNOWN_ERROR,
        // which reads as transient (review round 74, row 176: six sends a pass from an empty wallet).
        if (NO_FUNDS.test(`${text} ${nodeMessage(error)}`)) throw error;
        if (!isTransientError(error) || attempt >= 6 || this.opts.signal?.aborted) throw error;
        const delayMs = Math.min(2_000, 100 * 2 ** attempt);
        this.log.warn("send failed; re-sending the same transaction", {
          action: label,
          hash,
          attempt,
          delayMs,
          error: describeError(error),
        });
        await sleep(delayMs);
      }
    }
  }

  private async waitForReceipt(hash: string): Promise<TransactionReceipt | null> {
    const deadline = Date.now() + this.opts.txTimeoutMs;
    while (Date.now() < deadline) {
      try {
        const receipt = await this.provider.getTransactionReceipt(hash);
        if (receipt) return receipt;
      } catch (error) {
        if (!isTransientError(error)) throw error;
      }
      // Shutdown does not cut this wait short: the step finishes with its transaction's outcome.
      await sleep(Math.min(this.opts.pollMs, 1_000));
    }
    return null;
  }
}

/**
 * An eth_call at pending that the node refused rather than ran: an error answer with no revert data and
 * no revert in it, whether ethers made it a CALL_EXCEPTION ("pending block is not available", "pending
 * block number is not supported") or the keeper's provider retried it as a node error and threw it
 * marked with the answer (`rpcError`: reth's "unknown block"). A revert (the contract's error, or
 * "execution reverted" without data), a rate limit and a transport failure are not.
 */
function isPendingRefused(error: unknown): boolean {
  if (findRevertData(error) !== undefined) return false;
  const info = (
    isError(error, "CALL_EXCEPTION") || isError(error, "SERVER_ERROR") ? error.info : undefined
  ) as { error?: { message?: unknown }; rpcError?: { code?: unknown; message?: unknown } } | undefined;
  if (info?.rpcError && isRateLimitAnswer(info.rpcError)) return false;
  const answer = isError(error, "CALL_EXCEPTION") ? info?.error?.message : info?.rpcError?.message;
  return typeof answer === "string" && !/revert/i.test(answer);
}
