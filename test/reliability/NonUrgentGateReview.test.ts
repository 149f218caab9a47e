/**
 * Review round 131: the keeper's non-urgent gate (`NonUrgentSends`, commit 1989ff5, rows 328–329).
 * A pass sends its option payouts, the backstop's unwinds and sweep and its funding accruals after its
 * health checks, starts and bids, one more only while no block newer than its head exists; payouts read
 * holders from a per-series cursor (`paidUpTo`). These specifications check what an operator would
 * suffer: a send counted that was not the stage's, a kind starved by another, a holder the cursor skips
 * for good. Hardhat automines, so each send is mined in a block of its own, as on a chain whose blocks
 * come faster than the keeper's receipts.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad, type System } from "../shared/system";
import { refreshFeeds, trade } from "../shared/perps";
import {
  callDataOf,
  expiredCallWritten,
  minedKeeperCalls,
  onRequests,
  startInProcessKeeper,
  stillOpen,
  QUIET_KEEPER,
} from "../shared/keeper";
import type { OptionMarket } from "../../typechain-types";

type Sys = System & { options: OptionMarket };

const USDC = 10n ** 6n;

/** Funding an hour old in both perp markets (Alice long ETH, Bob long BTC: each market's rate moves). */
async function staleFundingInBoth(sys: Sys): Promise<void> {
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
  await trade(sys.perps, sys.bob, bob, sys.markets.BTC, wad("0.5"));
  await time.increase(3_600);
  await refreshFeeds(sys);
}

/** Three writers of an expired ETH-3000 call (one payout batch); Alice long 10 ETH on 5,000 USDC. */
async function expiredSeriesAndAlice() {
  const { sys, call, writers } = await expiredCallWritten(3);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
  return { sys, call, writers, alice };
}

/** Lowers ETH 5 USD at a time from where it is until `account` is under maintenance. */
async function sinkUntilUnder(sys: Sys, account: bigint): Promise<void> {
  for (;;) {
    const h = await sys.engine.health(account);
    if (h.equityMaintenance < h.maintenanceRequirement) return;
    const answer = await sys.feeds.ETH.latestAnswer();
    await sys.feeds.ETH.updateAnswer(answer - 5n * 10n ** 8n);
  }
}

describe("The keeper's non-urgent gate, review round 131", function () {
  describe("what the gate counts", function () {
    it("sends a payout batch in a pass that already settled a series and started an auction, a block newer than its head out", async function () {
      const { sys, call, writers, alice } = await loadFixture(expiredSeriesAndAlice);
      await staleFundingInBoth(sys);
      // ETH falls to 2,650: Alice crosses maintenance (the series settles at the round after expiry, 3,100).
      await sys.feeds.ETH.updateAnswer(2_650n * 10n ** 8n);
      const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--funding-interval", "3600"]);
      const head = await ethers.provider.getBlockNumber();
      const report = await keeper.step();
      // settleSeries and startAuction (2 broadcasts, blocks head+1 and head+2) went out before the stage:
      // counted against it, the payout would have been refused; the stage's own first send goes.
      expect(
        (await minedKeeperCalls(sys, head, await ethers.provider.getBlockNumber())).map((t) => t.fn),
      ).to.deep.equal(["settleSeries", "startAuction", "settleAccounts"]);
      expect((await sys.auction.auctions(alice)).active).to.equal(true);
      expect(report.options?.positionsSettled).to.equal(3);
      expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
      // The gate is on: both stale accruals wait for the next passes.
      expect(report.fundingAccrued).to.deep.equal([]);
      expect(report.deferred).to.equal(true);
    });

    it("sends one non-urgent transaction a pass on a chain where every pass starts an auction, none left behind", async function () {
      const { sys, call, writers, alice } = await loadFixture(expiredSeriesAndAlice);
      // Two more books like Alice's, 500 and 1,000 USDC deeper: each crosses maintenance ~50 USD lower.
      const books = [alice];
      for (const extra of [500n, 1_000n]) {
        const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, (5_000n + extra) * USDC]]);
        await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("10"));
        books.push(id);
      }
      await sys.options.settleSeries(call, await sys.feeds.ETH.latestRound());
      await staleFundingInBoth(sys);
      const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--funding-interval", "3600"]);
      const perPass: string[][] = [];
      for (const book of books) {
        await sinkUntilUnder(sys, book);
        const head = await ethers.provider.getBlockNumber();
        await keeper.step();
        perPass.push(
          (await minedKeeperCalls(sys, head, await ethers.provider.getBlockNumber())).map((t) => t.fn),
        );
      }
      // Every pass started an auction (urgent, counted by the sender) and still sent one non-urgent
      // transaction: the payout batch, then each market's accrual.
      expect(perPass).to.deep.equal([
        ["startAuction", "settleAccounts"],
        ["startAuction", "accrueFunding"],
        ["startAuction", "accrueFunding"],
      ]);
      for (const book of books) expect((await sys.auction.auctions(book)).active).to.equal(true);
      expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
    });
  });

  describe("what stays urgent, and what the gate does on a chain", function () {
    it("defers the second non-urgent send of a pass whose first was mined, though no other block came (its own receipt is the newer block)", async function () {
      const { sys, call } = await loadFixture(expiredSeriesAndAlice);
      await staleFundingInBoth(sys);
      const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--funding-interval", "3600"]);
      const head = await ethers.provider.getBlockNumber();
      const report = await keeper.step();
      // The settlement is urgent (before the stage); the batch is the stage's first send and goes; the
      // only block newer than the head is the batch's own, so the gate answers "newer" to the accrual.
      expect(
        (await minedKeeperCalls(sys, head, await ethers.provider.getBlockNumber())).map((t) => t.fn),
      ).to.deep.equal(["settleSeries", "settleAccounts"]);
      // No block but the keeper's own two: none came while the pass ran, yet the accrual waits.
      expect(await ethers.provider.getBlockNumber()).to.equal(head + 2);
      expect(report.fundingAccrued).to.deep.equal([]);
      expect(report.deferred).to.equal(true);
      expect((await sys.options.series(call)).settled).to.equal(true);
    });
  });

  describe("the payout cursor", function () {
    it("pays holders whose mined batch a one-block reorg dropped, instead of marking their series done", async function () {
      const { sys, call, writers } = await loadFixture(expiredSeriesAndAlice);
      await sys.options.settleSeries(call, await sys.feeds.ETH.latestRound());
      const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--funding-interval", "0"]);
      const request = network.provider.request.bind(network.provider);
      // The block the pass reads is kept (the loop's anchor would not change); the batch's block is not.
      const snapshot = await request({ method: "evm_snapshot", params: [] });
      expect((await keeper.step()).options?.positionsSettled).to.equal(3);
      expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
      await request({ method: "evm_revert", params: [snapshot] });
      await request({ method: "evm_mine", params: [] });
      await request({ method: "evm_mine", params: [] });
      expect(await stillOpen(sys, call, writers)).to.deep.equal(writers);
      const positionSize = sys.options.interface.getFunction("positionSize").selector;
      let reads = 0;
      await onRequests(
        (method, params) => {
          if (method === "eth_call" && callDataOf(params).startsWith(positionSize)) reads += 1;
        },
        async () => {
          for (let i = 0; i < 3; i++) await keeper.step();
        },
      );
      // Before: the cursor stood past all 3 and the series was marked done in the batch's pass; no holder
      // was read again and 3 positions (0.03 short calls, 3 USDC owed the pool) stayed open for good.
      expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
      expect(reads).to.equal(3);
    });
  });
});
