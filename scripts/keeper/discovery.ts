/**
 * What the keeper learns from events, in bounded, resumable `eth_getLogs` scans (a catch-up from the
 * start block, then one incremental scan per pass, the last `REORG_DEPTH` blocks read again each time):
 * the accounts (`Accounts.AccountCreated`) and the auctions running (`LiquidationAuction.AuctionStarted`,
 * `AuctionEnded`).
 */
import type { JsonRpcProvider, Log } from "ethers";
import { IAccounts__factory } from "../../typechain-types/factories/contracts/interfaces/IAccounts__factory";
import { ILiquidationAuction__factory } from "../../typechain-types/factories/contracts/interfaces/ILiquidationAuction__factory";
import { blockRanges } from "./logic";
import { isThrottledOrUnreachable } from "./retry";

const ACCOUNT_CREATED = IAccounts__factory.createInterface().getEvent("AccountCreated").topicHash;
const AUCTION = ILiquidationAuction__factory.createInterface();
const AUCTION_STARTED = AUCTION.getEvent("AuctionStarted").topicHash;
const AUCTION_ENDED = AUCTION.getEvent("AuctionEnded").topicHash;

const ascending = (ids: Iterable<bigint>): bigint[] => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * Scans one contract's events of some topics, in order: `scan` applies each block once, up to the
 * height its caller trusts not to be reorganised; `read` reads the blocks above it again each time.
 */
abstract class EventScan {
  private next: number;

  constructor(
    private readonly provider: JsonRpcProvider,
    private readonly address: string,
    private readonly topics: string[],
    startBlock: number,
    private readonly logRange: number,
  ) {
    this.next = startBlock;
  }

  /** The first block not scanned yet. */
  get nextBlock(): number {
    return this.next;
  }

  /**
   * Scans up to `head` (inclusive), handing each event to `apply` in block and log order. A failed
   * range is retried next time.
   */
  protected async scan(head: number, apply: (log: Log) => void): Promise<void> {
    for (const [fromBlock, toBlock] of blockRanges(this.next, head, this.logRange)) {
      await this.read(fromBlock, toBlock, apply);
      this.next = toBlock + 1;
    }
  }

  /** Hands the events of blocks `fromBlock`..`toBlock` to `apply`, without moving the scan. */
  protected async read(fromBlock: number, toBlock: number, apply: (log: Log) => void): Promise<void> {
    for (const [from, to] of blockRanges(fromBlock, toBlock, this.logRange)) {
      const filter = { address: this.address, topics: [this.topics] };
      for (const log of await getLogsSplitting(this.provider, filter, from, to)) apply(log);
    }
  }
}

/**
 * `eth_getLogs` over blocks `from`..`to`, halving a range the node refuses until it answers. Hosted RPCs
 * refuse an answer of more than 10,000 logs (Infura's -32005; Alchemy's past 2,000 blocks) and some a
 * range of more than a few thousand blocks; ethers reports those as UNKNOWN_ERROR, which the keeper
 * takes for a transport failure, so the same range failed every step for good: 10,001 accounts minted in
 * one `--log-range` (a few dollars of L2 gas) stopped every liquidation (review round 48). A single
 * block that still fails throws, as before.
 */
export async function getLogsSplitting(
  provider: JsonRpcProvider,
  filter: { address: string; topics: (string | string[])[] },
  from: number,
  to: number,
): Promise<Log[]> {
  try {
    return await provider.getLogs({ ...filter, fromBlock: from, toBlock: to });
  } catch (error) {
    // A rate limit or a node that is down is not about the range: halving would ask again log2(range)
    // times, each retried by the provider (review round 52).
    if (from >= to || isThrottledOrUnreachable(error)) throw error;
    const mid = Math.floor((from + to) / 2);
    return [
      ...(await getLogsSplitting(provider, filter, from, mid)),
      ...(await getLogsSplitting(provider, filter, mid + 1, to)),
    ];
  }
}

/**
 * Blocks the event scans read again on every pass: a reorg up to this deep that drops or adds an event
 * is seen on the next pass (§4 row 65: an `endAuction` dropped by a reorg left the auction running,
 * unseen, until a restart).
 */
export const REORG_DEPTH = 64;

/**
 * Every account created, from `Accounts.AccountCreated`. Accounts are only ever added: one a reorg
 * dropped stays listed (its health reads as empty), one it added in a block already scanned is found
 * by reading the last `reorgDepth` blocks again.
 */
export class AccountDiscovery extends EventScan {
  private readonly ids = new Set<bigint>();

  constructor(
    provider: JsonRpcProvider,
    accountsAddress: string,
    startBlock: number,
    logRange: number,
    private readonly reorgDepth = REORG_DEPTH,
  ) {
    super(provider, accountsAddress, [ACCOUNT_CREATED], startBlock, logRange);
  }

  /** Every account id seen so far, ascending. */
  get accountIds(): bigint[] {
    return ascending(this.ids);
  }

  /** Scans up to `head` (inclusive). Returns the ids found in this call. */
  async scanTo(head: number): Promise<bigint[]> {
    const found: bigint[] = [];
    const add = (log: Log): void => {
      const id = BigInt(log.topics[1]);
      if (!this.ids.has(id)) {
        this.ids.add(id);
        found.push(id);
      }
    };
    await this.scan(head - this.reorgDepth, add);
    await this.read(this.nextBlock, head, add);
    return found;
  }
}

/**
 * The accounts whose auction runs, from `AuctionStarted` and `AuctionEnded`: nothing ends an auction
 * on its own when its account recovers, so the keeper ends those (`endAuction`). Events older than
 * `reorgDepth` blocks are applied once; the newer ones are read again on every scan, on top of those.
 */
export class AuctionTracker extends EventScan {
  private readonly settled = new Set<bigint>();
  private running = new Set<bigint>();

  constructor(
    provider: JsonRpcProvider,
    auctionAddress: string,
    startBlock: number,
    logRange: number,
    private readonly reorgDepth = REORG_DEPTH,
  ) {
    super(provider, auctionAddress, [AUCTION_STARTED, AUCTION_ENDED], startBlock, logRange);
  }

  /** The accounts in auction as of the last scan, ascending. */
  get accountIds(): bigint[] {
    return ascending(this.running);
  }

  /** Scans up to `head` (inclusive). */
  async scanTo(head: number): Promise<void> {
    await this.scan(head - this.reorgDepth, (log) => track(this.settled, log));
    const running = new Set(this.settled);
    await this.read(this.nextBlock, head, (log) => track(running, log));
    this.running = running;
  }
}

function track(running: Set<bigint>, log: Log): void {
  const id = BigInt(log.topics[1]);
  if (log.topics[0] === AUCTION_STARTED) running.add(id);
  else running.delete(id);
}
