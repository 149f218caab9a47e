/**
 * What the keeper learns from events, in bounded, resumable `eth_getLogs` scans (a catch-up from the
 * start block, then one incremental scan per new block): the accounts (`Accounts.AccountCreated`) and
 * the auctions running (`LiquidationAuction.AuctionStarted`, `AuctionEnded`).
 */
import type { JsonRpcProvider, Log } from "ethers";
import { IAccounts__factory } from "../../typechain-types/factories/contracts/interfaces/IAccounts__factory";
import { ILiquidationAuction__factory } from "../../typechain-types/factories/contracts/interfaces/ILiquidationAuction__factory";
import { blockRanges } from "./logic";

const ACCOUNT_CREATED = IAccounts__factory.createInterface().getEvent("AccountCreated").topicHash;
const AUCTION = ILiquidationAuction__factory.createInterface();
const AUCTION_STARTED = AUCTION.getEvent("AuctionStarted").topicHash;
const AUCTION_ENDED = AUCTION.getEvent("AuctionEnded").topicHash;

const ascending = (ids: Iterable<bigint>): bigint[] => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

/** Scans one contract's events of some topics, in order, each block once. */
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
      const logs = await this.provider.getLogs({
        address: this.address,
        topics: [this.topics],
        fromBlock,
        toBlock,
      });
      for (const log of logs) apply(log);
      this.next = toBlock + 1;
    }
  }
}

/** Every account created, from `Accounts.AccountCreated`. */
export class AccountDiscovery extends EventScan {
  private readonly ids = new Set<bigint>();

  constructor(provider: JsonRpcProvider, accountsAddress: string, startBlock: number, logRange: number) {
    super(provider, accountsAddress, [ACCOUNT_CREATED], startBlock, logRange);
  }

  /** Every account id seen so far, ascending. */
  get accountIds(): bigint[] {
    return ascending(this.ids);
  }

  /** Scans up to `head` (inclusive). Returns the ids found in this call. */
  async scanTo(head: number): Promise<bigint[]> {
    const found: bigint[] = [];
    await this.scan(head, (log) => {
      const id = BigInt(log.topics[1]);
      if (!this.ids.has(id)) {
        this.ids.add(id);
        found.push(id);
      }
    });
    return found;
  }
}

/**
 * The accounts whose auction runs, from `AuctionStarted` and `AuctionEnded`: nothing ends an auction
 * on its own when its account recovers, so the keeper ends those (`endAuction`).
 */
export class AuctionTracker extends EventScan {
  private readonly running = new Set<bigint>();

  constructor(provider: JsonRpcProvider, auctionAddress: string, startBlock: number, logRange: number) {
    super(provider, auctionAddress, [AUCTION_STARTED, AUCTION_ENDED], startBlock, logRange);
  }

  /** The accounts in auction as of the last scan, ascending. */
  get accountIds(): bigint[] {
    return ascending(this.running);
  }

  /** Scans up to `head` (inclusive). */
  async scanTo(head: number): Promise<void> {
    await this.scan(head, (log) => {
      const id = BigInt(log.topics[1]);
      if (log.topics[0] === AUCTION_STARTED) this.running.add(id);
      else this.running.delete(id);
    });
  }
}
