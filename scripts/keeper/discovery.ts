/**
 * Account discovery from `Accounts.AccountCreated` events: a catch-up scan from the start block in
 * bounded ranges, then one incremental scan per new block.
 */
import type { JsonRpcProvider } from "ethers";
import { IAccounts__factory } from "../../typechain-types/factories/contracts/interfaces/IAccounts__factory";
import { blockRanges } from "./logic";

const ACCOUNT_CREATED = IAccounts__factory.createInterface().getEvent("AccountCreated").topicHash;

export class AccountDiscovery {
  private readonly ids = new Set<bigint>();
  private next: number;

  constructor(
    private readonly provider: JsonRpcProvider,
    private readonly accountsAddress: string,
    startBlock: number,
    private readonly logRange: number,
  ) {
    this.next = startBlock;
  }

  /** Every account id seen so far, ascending. */
  get accountIds(): bigint[] {
    return [...this.ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** The first block not scanned yet. */
  get nextBlock(): number {
    return this.next;
  }

  /** Scans up to `head` (inclusive). Returns the ids found in this call. A failed range is retried next time. */
  async scanTo(head: number): Promise<bigint[]> {
    const found: bigint[] = [];
    for (const [fromBlock, toBlock] of blockRanges(this.next, head, this.logRange)) {
      const logs = await this.provider.getLogs({
        address: this.accountsAddress,
        topics: [ACCOUNT_CREATED],
        fromBlock,
        toBlock,
      });
      for (const log of logs) {
        const id = BigInt(log.topics[1]);
        if (!this.ids.has(id)) {
          this.ids.add(id);
          found.push(id);
        }
      }
      this.next = toBlock + 1;
    }
    return found;
  }
}
