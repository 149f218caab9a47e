import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad } from "../shared/system";
import { deployOptionsSystem } from "../shared/options";
import { assetId, configureSequencer, setFeedPrice, setSequencerStatus } from "../shared/oracles";
import { trade } from "../shared/perps";
import { healthManyCallsPerPass, startInProcessKeeper, threeLongsUnderWater } from "../shared/keeper";
import type { StepReport } from "../../scripts/keeper/loop";
import { inBatchesIsolatingFailures } from "../../scripts/keeper/logic";
import { isTimeoutError } from "../../scripts/keeper/retry";
import { failureKey, reasonKey, revertReason } from "../../scripts/keeper/reverts";
import { makeError } from "ethers";

/**
 * Review round 123: the keeper changes of session 39 (rows 301–306). Each pass asks the router's
 * `checkSequencer` first when it has an uptime feed; an account whose health reverts with the router's
 * refusal of every price is not marked failing; marked accounts are read in groups by the reason they
 * failed with, and a group failing with another reason is halved at once; the last checks go to latest
 * for PENDING_REPROBE_MS after the node refused pending (pinned in unit/KeeperSender.test.ts).
 */
const USDC = 10n ** 6n;
/** Accounts holding a BTC position (each fails while BTC's price does). */
const BTC_ACCOUNTS = 12;

/**
 * Alice's account with 5,000 USDC, and BTC_ACCOUNTS accounts long 0.01 BTC each on 1,000 USDC, the first
 * of them also long 0.1 ETH (ETH at 3,000, BTC at 60,000; the router's bounds are price/1,000 to ·1,000).
 */
async function btcBook() {
  const sys = await deployOptionsSystem();
  await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  for (let i = 0; i < BTC_ACCOUNTS; i++) {
    const id = await openAccount(sys, sys.lp, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
    await trade(sys.perps, sys.lp, id, sys.markets.BTC, wad("0.01"));
    if (i === 0) await trade(sys.perps, sys.lp, id, sys.markets.ETH, wad("0.1"));
  }
  return { sys };
}

describe("Keeper changes of session 39 (review round 123)", function () {
  describe("accounts marked failing, read by the reason they failed with", function () {
    it("reads BTC's 12 accounts in one call a pass while BTC's price stays out of its bounds and moves every round, not 2·12 − 1", async function () {
      const { sys } = await loadFixture(btcBook);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      // A crash through BTC's lower bound (60 USD, the router's circuit breaker); the feed goes on posting
      // rounds, each at another price, and every health read names the round's price.
      await setFeedPrice(sys.feeds.BTC, "59");
      const reports: StepReport[] = [];
      const settled = await healthManyCallsPerPass(sys, keeper, 2, (r) => reports.push(r));
      const moving: number[] = [];
      for (const price of ["58", "57", "56", "55"]) {
        await setFeedPrice(sys.feeds.BTC, price);
        moving.push(...(await healthManyCallsPerPass(sys, keeper, 1, (r) => reports.push(r))));
      }
      // The first pass finds the 12 in the book; the second reads the healthy accounts and the marked
      // group in one call each.
      expect(settled[1]).to.equal(2);
      // Before the fix the group's key held the price ("the price of BTC (58 USD) is outside its
      // bounds"): each new round was "another reason" and the group was bisected, 2·12 − 1 = 23 calls
      // and the healthy batch's 1: [24, 24, 24, 24].
      expect(moving).to.deep.equal([2, 2, 2, 2]);
      for (const report of reports) {
        expect(report.unchecked.map((u) => u.reason.error)).to.deep.equal(
          Array(BTC_ACCOUNTS).fill("PriceOutOfBounds"),
        );
      }
      expect(reports[5].unchecked[0].reason.message).to.contain("55");
    });

    it("still halves the group at once when it fails for another feed (BTC back in bounds, ETH stale), so the BTC accounts are read", async function () {
      const { sys } = await loadFixture(btcBook);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      await setFeedPrice(sys.feeds.BTC, "59");
      await healthManyCallsPerPass(sys, keeper, 1);
      expect(keeper.session.failing.size).to.equal(BTC_ACCOUNTS);
      // BTC comes back and ETH's feed goes out of its bounds: the group fails for another feed (the first
      // BTC account's ETH position) and is halved at once; the 11 others are read.
      await setFeedPrice(sys.feeds.BTC, "60000");
      await setFeedPrice(sys.feeds.ETH, "2");
      const reports: StepReport[] = [];
      await healthManyCallsPerPass(sys, keeper, 1, (r) => reports.push(r));
      expect(reports[0].unchecked.map((u) => u.reason.error)).to.deep.equal(["PriceOutOfBounds"]);
      expect(reports[0].unchecked[0].reason.message).to.contain("ETH");
      expect(keeper.session.failing.size).to.equal(1);
    });
  });

  describe("the router's refusal of every price", function () {
    it("asks the router from the pass after a health read reverted SequencerDown, on an uptime feed governance added after the session opened", async function () {
      const { sys } = await loadFixture(threeLongsUnderWater);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      expect(keeper.session.sequencerFeed).to.equal(false);
      // Governance adds the uptime feed; the sequencer goes down.
      const seq = await configureSequencer(sys.router, 0, 2n * 86_400n);
      await setSequencerStatus(seq, 1, BigInt(await time.latest()) + 10n);
      const reports: StepReport[] = [];
      const perPass = await healthManyCallsPerPass(sys, keeper, 4, (r) => reports.push(r));
      const accounts = reports[0].accounts;
      // The first pass meets the refusal in the health reads (2n − 1 calls for n accounts), and learns
      // the router has a feed. Before the fix the session never asked it, and no account was marked
      // failing (row 303): every pass bisected the whole book, [7, 7, 7, 7] for 4 accounts (row 301
      // before session 39 gave [7, 1, 1, 1]).
      expect(perPass).to.deep.equal([2 * accounts - 1, 0, 0, 0]);
      expect(reports.slice(1).map((r) => r.pricesRefused?.error)).to.deep.equal(
        Array(3).fill("SequencerDown"),
      );
      expect(keeper.session.failing.size).to.equal(0);
    });

    it("skips the pass for a broken uptime feed's IncompleteRound, as every price read reverts with it too", async function () {
      const { sys } = await loadFixture(threeLongsUnderWater);
      const seq = await configureSequencer(sys.router, 0, 2n * 86_400n);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      // An up round dated in the future: the router refuses it, in checkSequencer and in getPrice alike.
      const now = BigInt(await time.latest());
      await (await seq.feed.updateRoundData(9, 0, now + 1_000n, now + 1_000n)).wait();
      await expect(sys.router.getPrice(assetId("ETH"))).to.be.revertedWithCustomError(
        sys.router,
        "IncompleteRound",
      );
      const reports: StepReport[] = [];
      expect(await healthManyCallsPerPass(sys, keeper, 2, (r) => reports.push(r))).to.deep.equal([0, 0]);
      expect(reports.map((r) => r.pricesRefused?.error)).to.deep.equal([
        "IncompleteRound",
        "IncompleteRound",
      ]);
    });
  });

  describe("the key a failing account is marked with", function () {
    /** A revert of the router's `error` with `args`, as ethers gives it. */
    async function routerRevert(name: string, args: unknown[]): Promise<Error> {
      const { sys } = await loadFixture(btcBook);
      return Object.assign(new Error("execution reverted"), {
        data: sys.router.interface.encodeErrorResult(name, args),
      });
    }

    it("is the same for one asset out of its bounds at any price, and differs between assets and errors", async function () {
      const btc = assetId("BTC");
      const at59 = await routerRevert("PriceOutOfBounds", [btc, wad("59"), wad("60"), wad("60000000")]);
      const at58 = await routerRevert("PriceOutOfBounds", [btc, wad("58"), wad("60"), wad("60000000")]);
      const eth = await routerRevert("PriceOutOfBounds", [
        assetId("ETH"),
        wad("2"),
        wad("3"),
        wad("3000000"),
      ]);
      const deviation = await routerRevert("PriceDeviation", [btc, wad("59"), wad("60000")]);
      // The logged reasons differ by price (reasonKey, one log line per message), the marks do not.
      expect(reasonKey(revertReason(at59))).to.not.equal(reasonKey(revertReason(at58)));
      expect(failureKey(at59)).to.equal(failureKey(at58));
      expect(failureKey(at59)).to.not.equal(failureKey(eth));
      expect(failureKey(at59)).to.not.equal(failureKey(deviation));
    });
  });

  describe("a group of accounts known to fail that times out", function () {
    const timeout = () => makeError("request timeout", "TIMEOUT", { operation: "fetch", reason: "timeout" });
    it("is halved like any batch (split), and a single account's timeout still fails the pass", async function () {
      const calls: number[][] = [];
      const known = failureKey(new Error("feed A"));
      const out = await inBatchesIsolatingFailures(
        [1, 2, 3, 4],
        4,
        async (batch) => {
          calls.push(batch);
          if (batch.length > 2) throw timeout();
          return batch.map((x) => x * 10);
        },
        isTimeoutError,
        { bisect: (error) => failureKey(error) !== known, split: isTimeoutError },
      );
      expect(calls).to.deep.equal([
        [1, 2, 3, 4],
        [1, 2],
        [3, 4],
      ]);
      expect(out.every((o) => o.ok)).to.equal(true);
      await expect(
        inBatchesIsolatingFailures([1], 4, () => Promise.reject(timeout()), isTimeoutError, {
          bisect: (error) => failureKey(error) !== known,
          split: isTimeoutError,
        }),
      ).to.be.rejectedWith("request timeout");
    });
  });
});
