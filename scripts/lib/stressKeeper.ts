/**
 * The keeper, in-process, for the crash scenarios (scripts/stress.ts): one `pass` is what the keeper
 * loop (scripts/keeper/loop.ts) does on a new block — health of every account through `healthMany` in
 * batches, `chooseAction` per liquidatable account, `startAuctions` in batches, then the keeper's own bid
 * assessment (`assessBid`: quote, closing costs, simulated gas) and `isBidProfitable` before a
 * `bidAndClose` from its flat account (options priced at the engine's mark). Where no bid pays (closing
 * costs above the discount) or the keeper skips an account (a series expired and awaiting settlement,
 * a simulation that reverts), it has the backstop `absorb` the slice once the discount has reached its
 * maximum, as the keeper loop does.
 *
 * No process is spawned: the strategies run against the Hardhat network through a sender that
 * simulates with `eth_estimateGas` and sends with the keeper's Hardhat signer.
 */
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { TransactionReceipt } from "ethers";
import { connectContracts, type Contracts } from "../keeper/chain";
import { assessBid, auctionOf, startedIn, type BidPricing } from "../keeper/liquidation";
import { chooseAction, chunk, isBidProfitable, isLiquidatable } from "../keeper/logic";
import type { TxRequest } from "../keeper/sender";
import type { Deployment } from "../../deploy/deployment";
import type { LiquidationAuction, MarginEngine } from "../../typechain-types";

export interface KeeperStats {
  passes: number;
  auctionsStarted: number;
  bids: number;
  /** `LiquidationAuction.absorb` calls that went through (the backstop took the slice). */
  absorbs: number;
  insolvencies: number;
  /** Quote units: deficits of insolvent accounts, what the fund paid, what the pool absorbed. */
  deficit: bigint;
  paidByInsurance: bigint;
  socialised: bigint;
  /** Auctions started or bids placed on an account the engine called healthy just before. */
  healthyLiquidated: number;
  /** Accounts that were ever auctioned. */
  auctioned: Set<bigint>;
  skipped: Record<string, number>;
}

export function newKeeperStats(): KeeperStats {
  return {
    passes: 0,
    auctionsStarted: 0,
    bids: 0,
    absorbs: 0,
    insolvencies: 0,
    deficit: 0n,
    paidByInsurance: 0n,
    socialised: 0n,
    healthyLiquidated: 0,
    auctioned: new Set(),
    skipped: {},
  };
}

export interface StressKeeper {
  pass(accountIds: bigint[]): Promise<void>;
  stats: KeeperStats;
}

export async function createStressKeeper(opts: {
  addresses: Deployment["contracts"];
  keeper: HardhatEthersSigner;
  keeperAccountId: bigint;
  engine: MarginEngine;
  auction: LiquidationAuction;
  /** Called before every transaction (the scenario pins block timestamps). */
  beforeSend: () => Promise<void>;
}): Promise<StressKeeper> {
  const c: Contracts = connectContracts({ contracts: opts.addresses } as Deployment, opts.keeper);
  const quoteUnit = 10n ** 12n;
  const quoteToken = await c.vault.quoteToken();
  const stats = newKeeperStats();
  const sender: BidPricing = {
    estimateGas: (tx: TxRequest) => ethers.provider.estimateGas({ from: opts.keeper.address, ...tx }),
    // A quiet L2: 0.01 gwei. The keeper's profit check prices gas with it.
    fees: async () => ({
      type: 2 as const,
      maxFeePerGas: 10n ** 7n,
      maxPriorityFeePerGas: 0n,
      expectedPrice: 10n ** 7n,
    }),
    // Hardhat's chain has no OP-stack GasPriceOracle, where `TxSender.l1DataFee` reads 0 too.
    l1DataFee: async () => 0n,
  };

  const auctionIface = opts.auction.interface;
  function record(receipt: TransactionReceipt | null): void {
    for (const log of receipt?.logs ?? []) {
      let parsed;
      try {
        parsed = auctionIface.parseLog(log);
      } catch {
        continue;
      }
      if (parsed?.name === "InsolvencyCovered") {
        stats.insolvencies++;
        stats.deficit += parsed.args.deficit as bigint;
        stats.paidByInsurance += parsed.args.paidByInsurance as bigint;
        stats.socialised += parsed.args.socialisedLoss as bigint;
      }
    }
  }

  async function send(signer: HardhatEthersSigner, request: TxRequest): Promise<TransactionReceipt | null> {
    await opts.beforeSend();
    try {
      const receipt = await (await signer.sendTransaction({ ...request, gasLimit: 15_000_000n })).wait();
      record(receipt);
      return receipt;
    } catch {
      return null;
    }
  }

  async function pass(accountIds: bigint[]): Promise<void> {
    stats.passes++;
    const now = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    const due: [bigint, Awaited<ReturnType<MarginEngine["health"]>>][] = [];
    for (const batch of chunk(accountIds, 40)) {
      const healths = await opts.engine.healthMany(batch);
      healths.forEach((h, i) => {
        if (isLiquidatable(h)) due.push([batch[i], h]);
      });
    }
    // Every start before the first bid, in the keeper's default batches of 20 (`--start-batch`).
    const toStart: bigint[] = [];
    for (const [accountId, h] of due) {
      if (chooseAction(h, await auctionOf(c, accountId, now)) === "start") toStart.push(accountId);
    }
    const notStarted = new Set(toStart);
    for (const batch of chunk(toStart, 20)) {
      const fresh = await opts.engine.healthMany(batch);
      const receipt = await send(opts.keeper, {
        to: await opts.auction.getAddress(),
        data: auctionIface.encodeFunctionData("startAuctions", [batch]),
      });
      const started = startedIn(c, receipt);
      for (const [i, accountId] of batch.entries()) {
        if (!started.has(accountId)) continue;
        notStarted.delete(accountId);
        if (!isLiquidatable(fresh[i])) stats.healthyLiquidated++;
        stats.auctionsStarted++;
        stats.auctioned.add(accountId);
      }
    }
    for (const [accountId] of due) if (!notStarted.has(accountId)) await bid(accountId, now);
  }

  async function bid(accountId: bigint, now: bigint): Promise<void> {
    const assessment = await assessBid(c, sender, {
      accountId,
      keeperAccountId: opts.keeperAccountId,
      quoteToken,
      quoteUnit,
      nativeAssetId: ethers.encodeBytes32String("ETH"),
    });
    const before = await opts.engine.health(accountId);
    if ("plan" in assessment && isBidProfitable(assessment.plan.economics, 0n)) {
      if (await send(opts.keeper, assessment.plan.request)) {
        stats.bids++;
        if (!isLiquidatable(before)) stats.healthyLiquidated++;
      }
      return;
    }
    const reason = "plan" in assessment ? "not profitable" : assessment.skip;
    stats.skipped[reason] = (stats.skipped[reason] ?? 0) + 1;
    if ((await auctionOf(c, accountId, now)) !== "absorbable") return;
    const receipt = await send(opts.keeper, {
      to: await opts.auction.getAddress(),
      data: auctionIface.encodeFunctionData("absorb", [accountId]),
    });
    if (receipt) {
      stats.absorbs++;
      if (!isLiquidatable(before)) stats.healthyLiquidated++;
    }
  }

  return { pass, stats };
}
