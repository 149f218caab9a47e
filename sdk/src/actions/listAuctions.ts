import type { XMarginClient } from "../client";
import { latestBlockNumber, read } from "./internal/chain";

/** Parameters of `listAuctions`. */
export interface ListAuctionsParameters {
  /** First block to scan (default the deployment's `startBlock`, else 0). */
  fromBlock?: number;
  /** Last block to scan (default the latest). */
  toBlock?: number;
}

/** A running liquidation auction. */
export interface AuctionInfo {
  accountId: bigint;
  /** When the auction (re)started. */
  startTime: bigint;
  /** Who started it (and earned the flag reward). */
  starter: string;
  /** Block of the AuctionStarted event. */
  startBlock: number;
  /** The account's maintenance equity and requirement when the auction started (USD WAD). */
  equityMaintenance: bigint;
  maintenanceRequirement: bigint;
  /** The discount now (WAD). */
  discount: bigint;
  /**
   * When the discount reaches its maximum and anyone may have the backstop absorb the auction (`absorb`):
   * the duration after its start, plus the sequencer's last outage and grace period if they interrupted it.
   */
  absorbableAt: bigint;
}

/**
 * The auctions running now: replays AuctionStarted and AuctionEnded events over the range, then
 * confirms each candidate with `auctions(accountId)` and reads its current discount.
 * @example
 * for (const a of await listAuctions(client)) console.log(a.accountId, formatPercent(a.discount));
 */
export async function listAuctions(
  client: XMarginClient,
  params: ListAuctionsParameters = {},
): Promise<AuctionInfo[]> {
  const auction = client.contracts.liquidationAuction;
  return read(client, async () => {
    const toBlock = params.toBlock ?? (await latestBlockNumber(client));
    const fromBlock = params.fromBlock ?? client.deployment.startBlock ?? 0;
    const [started, ended] = await Promise.all([
      auction.queryFilter(auction.filters.AuctionStarted(), fromBlock, toBlock),
      auction.queryFilter(auction.filters.AuctionEnded(), fromBlock, toBlock),
    ]);
    type Started = (typeof started)[number];
    type Entry = { block: number; index: number } & ({ started: Started } | { ended: bigint });
    const events: Entry[] = [
      ...started.map((e): Entry => ({ block: e.blockNumber, index: e.index, started: e })),
      ...ended.map((e): Entry => ({ block: e.blockNumber, index: e.index, ended: e.args.accountId })),
    ].sort((a, b) => a.block - b.block || a.index - b.index);
    const running = new Map<bigint, Started>();
    for (const e of events) {
      if ("started" in e) running.set(e.started.args.accountId, e.started);
      else running.delete(e.ended);
    }
    const out = await Promise.all(
      [...running.values()].map(async (e): Promise<AuctionInfo | null> => {
        const accountId = e.args.accountId;
        const [startTime, active] = await auction.auctions(accountId, { blockTag: toBlock });
        if (!active) return null;
        return {
          accountId,
          startTime,
          starter: e.args.starter,
          startBlock: e.blockNumber,
          equityMaintenance: e.args.equityMaintenance,
          maintenanceRequirement: e.args.maintenanceRequirement,
          discount: await auction.currentDiscount(accountId, { blockTag: toBlock }),
          absorbableAt: await auction.absorbableAt(accountId, { blockTag: toBlock }),
        };
      }),
    );
    return out
      .filter((a): a is AuctionInfo => a !== null)
      .sort((a, b) => (a.accountId < b.accountId ? -1 : 1));
  });
}
