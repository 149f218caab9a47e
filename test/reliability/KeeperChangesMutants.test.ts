/**
 * Review round 136: mutation testing of the keeper code written in rounds 117–135 (`git diff bee1b77 HEAD --
 * scripts/keeper`). Each specification here kills a hand-written mutant of those lines that every other
 * keeper spec let through; the mutant it kills is named in a comment (ids as in the round's REPORT.md).
 */
import { expect } from "chai";
import { JsonRpcProvider, makeError } from "ethers";
import { loadFixture, mine, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad } from "../shared/system";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { configureSequencer, setFeedPrice, setSequencerStatus } from "../shared/oracles";
import { mineAt, refreshFeeds, trade } from "../shared/perps";
import { Role } from "../../deploy/roles";
import { hardhatWallet, waitFor } from "../shared/e2e";
import {
  aliceLongInAuction,
  callDataOf,
  expiredCallWritten,
  healthManyCallsPerPass,
  onRequests,
  runKeeperOverBridge,
  startInProcessKeeper,
  stillOpen,
  threeLongsUnderWater,
  QUIET_KEEPER,
} from "../shared/keeper";
import { FAILING_RECHECK_PASSES, NonUrgentSends, type StepReport } from "../../scripts/keeper/loop";
import type { TxSender } from "../../scripts/keeper/sender";
import { inBatchesIsolatingFailures } from "../../scripts/keeper/logic";
import { isProviderErrorAnswer, isRateLimitAnswer } from "../../scripts/keeper/retry";
import { PENDING_REPROBE_MS } from "../../scripts/keeper/sender";
import { ScriptedNode, TARGET, scriptedSender } from "../shared/scriptedNode";

/** What ethers' JsonRpcProvider throws for a node's error answer `error` to `method`. */
function ethersErrorFor(
  error: { code: number; message: string; data?: string },
  method = "eth_sendRawTransaction",
): Error {
  const rpc = new JsonRpcProvider("http://127.0.0.1:1", 1, { staticNetwork: true });
  const params = method === "eth_call" ? [{ to: TARGET, data: "0x" }, "pending"] : ["0x02"];
  const made = rpc.getRpcError({ method, params, id: 1, jsonrpc: "2.0" }, { id: 1, error });
  rpc.destroy();
  return made;
}

/** A scripted node whose eth_call at pending answers `atPending`; at latest it answers 0x01. */
function nodeAnsweringPending(atPending: () => Promise<string>) {
  const node = new ScriptedNode();
  node.call = async (request) =>
    (request as { blockTag?: string }).blockTag === "pending" ? atPending() : "0x01";
  const { sender, lines } = scriptedSender(node);
  const tags = () => node.calls.map((c) => (c as { blockTag?: string }).blockTag);
  return { node, sender, lines, tags };
}

/** A custom error with one uint256 argument (1), as a node returns it in the error answer's data. */
const REVERT_DATA = "0x8c5a2b1e" + "1".padStart(64, "0");

const USDC = 10n ** 6n;

describe("Keeper changes since round 111, mutation-tested (review round 136)", function () {
  describe("TxSender's last check at pending (sender.ts, rounds 117-118)", function () {
    it("throws a revert whose answer carries revert data but no 'revert' word, and makes no call at latest (kills S19)", async function () {
      // Nethermind's and OpenEthereum's "VM execution error." with the error's data: a rival's start in the
      // pool makes ours revert here. Read as a refusal of pending, the check went on to latest, where the
      // rival's start is not yet, and the start was sent into a revert.
      const { sender, tags } = nodeAnsweringPending(async () => {
        throw ethersErrorFor({ code: -32015, message: "VM execution error.", data: REVERT_DATA }, "eth_call");
      });
      await expect(sender.call({ to: TARGET, data: "0x" })).to.be.rejected;
      expect(tags()).to.deep.equal(["pending"]);
    });

    it("throws an 'execution reverted' without data as a revert, not a refusal of pending (kills S21)", async function () {
      const { sender, tags, lines } = nodeAnsweringPending(async () => {
        throw ethersErrorFor({ code: 3, message: "execution reverted" }, "eth_call");
      });
      await expect(sender.call({ to: TARGET, data: "0x" })).to.be.rejected;
      expect(tags()).to.deep.equal(["pending"]);
      expect(lines.filter((l) => l.level === "warn")).to.deep.equal([]);
    });

    it("warns again when a node that served pending after a refusal refuses it once more (kills S3)", async function () {
      // The warning is what tells an operator the checks went back to latest, where a rival's pending
      // transaction is invisible: a second refusal after a recovery (the endpoint moved back) says so too.
      let serves = false;
      const { sender, lines, tags } = nodeAnsweringPending(async () => {
        if (serves) return "0x02";
        throw ethersErrorFor({ code: -32000, message: "pending block is not available" }, "eth_call");
      });
      const realNow = Date.now;
      let offset = 0;
      Date.now = () => realNow() + offset;
      try {
        await sender.call({ to: TARGET, data: "0x" }); // refused: latest
        offset = PENDING_REPROBE_MS + 1_000;
        serves = true;
        expect(await sender.call({ to: TARGET, data: "0x" })).to.equal("0x02"); // served
        serves = false;
        expect(await sender.call({ to: TARGET, data: "0x" })).to.equal("0x01"); // refused again: latest
      } finally {
        Date.now = realNow;
      }
      expect(tags()).to.deep.equal(["pending", "latest", "pending", "pending", "latest"]);
      const warned = lines.filter((l) => l.level === "warn").map((l) => l.msg);
      expect(warned).to.deep.equal(
        Array(2).fill("the node refuses eth_call at pending; last checks run at latest"),
      );
    });

    it("throws a rate limit the keeper's provider gave up retrying, and keeps asking for pending (kills S20)", async function () {
      // A throttled endpoint serves pending: read as a refusal, every last check went to latest for
      // PENDING_REPROBE_MS (10 minutes), blind to rivals' pending transactions.
      const { sender, tags, lines } = nodeAnsweringPending(async () => {
        throw makeError("eth_call: Too Many Requests", "SERVER_ERROR", {
          request: "eth_call",
          info: { rpcError: { code: 429, message: "Too Many Requests" } },
        });
      });
      await expect(sender.call({ to: TARGET, data: "0x" })).to.be.rejected;
      await expect(sender.call({ to: TARGET, data: "0x" })).to.be.rejected;
      expect(tags()).to.deep.equal(["pending", "pending"]);
      expect(lines.filter((l) => l.level === "warn")).to.deep.equal([]);
    });
  });

  describe("TxSender when the node says the nonce is used (sender.ts, round 117)", function () {
    it("waits for its receipt while the mined count has not passed the nonce (a node behind the one that took it) (kills S17)", async function () {
      // "nonce too low" from a node ahead of the one answering the counts: the nonce is not mined by the
      // counts' node yet, and the transaction is ours. Read as taken by another, the send was reported
      // not sent and its mined receipt was never read.
      const node = new ScriptedNode(7);
      node.onSend = () => {
        throw ethersErrorFor({ code: -32000, message: "nonce too low" });
      };
      let receiptReads = 0;
      node.receipt = () => (++receiptReads === 1 ? null : { status: 1, blockNumber: 1, gasUsed: 1n });
      const { sender } = scriptedSender(node, { txTimeoutMs: 1_000 });
      expect((await sender.send("startAuction", { to: TARGET, data: "0x" })).status).to.equal("mined");
    });

    it("waits for the receipt of its own transaction mined before the node answered (kills S18)", async function () {
      // The nonce is mined and the transaction has a receipt: ours (an earlier attempt's bytes got through).
      // Read as another's, a mined start, bid or absorb was reported not sent.
      const node = new ScriptedNode(7);
      node.onSend = () => {
        node.mined = 8;
        throw ethersErrorFor({ code: -32000, message: "nonce too low" });
      };
      node.receipt = () => ({ status: 1, blockNumber: 1, gasUsed: 1n });
      const { sender } = scriptedSender(node);
      expect((await sender.send("startAuction", { to: TARGET, data: "0x" })).status).to.equal("mined");
    });
  });

  describe("TxSender replacing its own stuck transaction at fees refused as underpriced (sender.ts, round 117)", function () {
    it("remembers the refusal and offers more next time, not waiting behind its own transaction (kills S15)", async function () {
      // Its own transaction holds the nonce (the pending count is past it): not another process's. Waited
      // behind as one, the refusal was forgotten and every later send offered the same refused fees.
      const node = new ScriptedNode(7);
      const { sender } = scriptedSender(node, { txTimeoutMs: 50 });
      const send = () => sender.send("startAuction", { to: TARGET, data: "0x" });
      expect((await send()).status).to.equal("dropped"); // no receipt: stuck at nonce 7
      node.pending = 8;
      node.onSend = () => {
        throw ethersErrorFor({ code: -32000, message: "replacement transaction underpriced" });
      };
      expect((await send()).status).to.equal("replacement-underpriced");
      node.onSend = () => {};
      await send();
      const [, refused, next] = node.sent;
      expect([refused.nonce, next.nonce]).to.deep.equal([7, 7]);
      expect(next.maxFeePerGas! > refused.maxFeePerGas!).to.equal(true);
    });
  });

  describe("a rate limit's answer (retry.ts, session 37)", function () {
    it("is a code 429 whatever its words, and eth_getLogs' 429 is not a range to split (kills R3)", function () {
      const answer = { code: 429, message: "request timed out" };
      expect(isRateLimitAnswer(answer)).to.equal(true);
      expect(isProviderErrorAnswer("eth_getLogs", answer)).to.equal(true);
    });
  });

  describe("inBatchesIsolatingFailures with bisect a function (logic.ts, round 123)", function () {
    it("fails a batch at once on a fatal error the function says not to halve for, though split would halve it (kills L5)", async function () {
      // The function decides for fatal errors too: a group known to time out is not halved call by call.
      let calls = 0;
      const failing = async (): Promise<number[]> => {
        calls += 1;
        throw new Error("timeout");
      };
      await expect(
        inBatchesIsolatingFailures([1, 2, 3, 4], 4, failing, () => true, {
          bisect: () => false,
          split: () => true,
        }),
      ).to.be.rejectedWith("timeout");
      expect(calls).to.equal(1);
    });
  });

  describe("the router's refusal of every price (loop.ts, rounds 122-123)", function () {
    it("learns the uptime feed from a health read reverting GracePeriodNotOver, as from SequencerDown (kills P1)", async function () {
      // Governance adds the uptime feed while the sequencer is back up within its grace period: every
      // price reverts GracePeriodNotOver. Not read as the router's refusal, the accounts were marked
      // failing and the router never asked: every pass read the book, bisected at every 10th.
      const { sys } = await loadFixture(threeLongsUnderWater);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      const seq = await configureSequencer(sys.router, 0, 2n * 86_400n);
      await setSequencerStatus(seq, 0, BigInt(await time.latest()) + 10n);
      const reports: StepReport[] = [];
      const perPass = await healthManyCallsPerPass(sys, keeper, 3, (r) => reports.push(r));
      expect(perPass.slice(1)).to.deep.equal([0, 0]);
      expect(reports.slice(1).map((r) => r.pricesRefused?.error)).to.deep.equal(
        Array(2).fill("GracePeriodNotOver"),
      );
      expect(keeper.session.failing.size).to.equal(0);
    });

    it("fails the pass on a transport failure of the router's check instead of reading it as an outage (kills P5)", async function () {
      // A dropped connection says nothing about the sequencer: read as the router's refusal, the pass
      // skipped every health check, start and bid, and warned of an outage that was not.
      const { sys } = await loadFixture(threeLongsUnderWater);
      const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
      keeper.session.sequencerFeed = true;
      const router = {
        checkSequencer: async () => {
          throw new Error("fetch failed");
        },
      };
      keeper.session.contracts = {
        ...keeper.session.contracts,
        router,
      } as unknown as typeof keeper.session.contracts;
      await expect(keeper.step()).to.be.rejectedWith("fetch failed");
      expect(keeper.lines.filter((l) => l.level === "warn")).to.deep.equal([]);
    });

    it("says nothing of the router pricing again on passes that followed no refusal (kills P7)", async function () {
      const { sys } = await loadFixture(threeLongsUnderWater);
      const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
      await configureSequencer(sys.router, 0, 2n * 86_400n); // up, past its grace period
      keeper.session.sequencerFeed = true;
      for (let pass = 0; pass < 2; pass++) expect((await keeper.step()).pricesRefused).to.equal(null);
      expect(keeper.lines.map((l) => l.msg)).to.not.include(
        "the oracle router prices again; liquidations resume",
      );
    });

    it("reports the payouts it left for the next pass while the router refuses every price (kills P12)", async function () {
      // Two settled ETH calls, one writer each, and the sequencer down: the outage pass pays the first
      // series, its own receipt is a block newer than its head, and the second series' batch waits.
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(DAY);
      const calls = [
        await listSeries(sys.options, "ETH", "3000", expiry, true),
        await listSeries(sys.options, "ETH", "3050", expiry, true),
      ];
      for (const call of calls) {
        const writer = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
        await tradeOption(sys.options, sys.carol, writer, call, -wad("0.01"));
      }
      await mineAt(sys, expiry);
      await setFeedPrice(sys.feeds.ETH, "3100");
      for (const call of calls) await sys.options.settleSeries(call, await sys.feeds.ETH.latestRound());
      await configureSequencer(sys.router, 1, 60n);
      const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
      const report = await keeper.step();
      expect(report.pricesRefused?.error).to.equal("SequencerDown");
      expect(report.options?.positionsSettled).to.equal(1);
      expect(report.deferred).to.equal(true);
    });
  });

  describe("updateDeficit's reread (liquidator.ts, rounds 132 and 135)", function () {
    it("estimates no update when the reread shows the deficit gone, and says why (kills D3)", async function () {
      // ETH back at 2,600 between the pass's health read and its collateral read. Sent on to the last
      // check regardless, the update cost a second estimate (the whole book valued), a jitter and a check.
      const sys = await deployOptionsSystem();
      await aliceLongInAuction(sys);
      await setFeedPrice(sys.feeds.ETH, "2400");
      const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
      const markInQuote = sys.vault.interface.getFunction("markInQuote").selector;
      const updateDeficit = sys.auction.interface.getFunction("updateDeficit").selector;
      let raced = false;
      let estimates = 0;
      await onRequests(
        async (method, params) => {
          const data = method === "eth_call" || method === "eth_estimateGas" ? callDataOf(params) : "";
          if (method === "eth_estimateGas" && data.startsWith(updateDeficit)) estimates += 1;
          if (raced || method !== "eth_call" || !data.startsWith(markInQuote)) return;
          raced = true;
          await setFeedPrice(sys.feeds.ETH, "2600");
        },
        () => keeper.step(),
      );
      expect(raced).to.equal(true);
      expect(estimates).to.equal(1); // the gas-worth check's, before the reread
      expect(keeper.lines.map((l) => l.msg)).to.include(
        "deficit no longer stale when read again; not recorded",
      );
    });

    it("skips an update whose auction a rival's bid ended before the last check, though the ended record reads stale (kills D6)", async function () {
      // Bob takes Alice's insolvent book whole at 2,400, mined after the keeper estimated its update and
      // before its check at pending: the auction is over there, and its cleared record (0) reads stale
      // against her deficit. Sent on that, the update was mined behind the bid into a revert.
      const sys = await deployOptionsSystem();
      const alice = await aliceLongInAuction(sys);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
      await keeper.step();
      await setFeedPrice(sys.feeds.ETH, "2400");
      const auctions = sys.auction.interface.getFunction("auctions").selector;
      let bid = false;
      await onRequests(
        async (method, params) => {
          if (
            bid ||
            method !== "eth_call" ||
            params[1] !== "pending" ||
            !callDataOf(params).startsWith(auctions)
          )
            return;
          bid = true;
          const [, payment] = await sys.auction.quoteBid(alice, wad("1"));
          await sys.auction.connect(sys.bob).bid(alice, bob, wad("1"), payment + 1n);
        },
        () => keeper.step(),
      );
      expect(bid).to.equal(true);
      expect((await sys.auction.auctions(alice)).active).to.equal(false);
      const msgs = keeper.lines.map((l) => l.msg);
      expect(msgs).to.include("auction no longer running; deficit not recorded");
      expect(msgs.filter((m) => m === "sending")).to.have.length(2); // the session's account setup only
    });
  });

  describe("runKeeper's sender (loop.ts, round 124)", function () {
    it("takes --race-jitter-ms 0 from the command line: its sender draws no jitter before a raced send (kills C3)", async function () {
      // Dropped between the parsed flag and the sender, every raced send of the CLI waited up to the default
      // 250 ms whatever the operator set: only the in-process harness, which builds its own sender, took it.
      const { sys } = await loadFixture(threeLongsUnderWater);
      const realRandom = Math.random;
      let senderDraws = 0;
      Math.random = () => {
        if (new Error().stack?.includes("keeper/sender")) senderDraws += 1;
        return realRandom();
      };
      const { lines, stop } = await runKeeperOverBridge(sys, {
        privateKey: hardhatWallet(4).privateKey,
        args: QUIET_KEEPER,
      });
      try {
        await waitFor(
          "the keeper's starts",
          () =>
            lines.some(
              (l) => l.msg === "transaction mined" && String(l.fields.action).startsWith("startAuction"),
            ),
          30_000,
        );
      } finally {
        await stop();
        Math.random = realRandom;
      }
      expect(senderDraws).to.equal(0);
    });
  });

  describe("NonUrgentSends, the pass's gate (loop.ts, rounds 129 and 131)", function () {
    /** A gate at head 10 over a sender that has broadcast `sender.broadcasts` and a node at `node.block`. */
    function gateAt10() {
      const node = { block: 10, asked: 0 };
      const provider = {
        send: async (method: string) => {
          expect(method).to.equal("eth_blockNumber");
          node.asked += 1;
          return `0x${node.block.toString(16)}`;
        },
      } as unknown as JsonRpcProvider;
      const sender = { broadcasts: 3 };
      const gate = new NonUrgentSends(provider, sender as unknown as TxSender, 10);
      return { gate, node, sender };
    }

    it("lets a second send out while the node's newest block is still the pass's head (kills G3)", async function () {
      // A first send that went out and was not mined (dropped at its timeout) made no block: nothing
      // newer is waiting for the next pass's health checks.
      const { gate, sender } = gateAt10();
      expect(await gate.allow()).to.equal(true); // the first: nothing sent yet, no question asked
      sender.broadcasts += 1;
      expect(await gate.allow()).to.equal(true);
      expect(gate.deferred).to.equal(false);
    });

    it("stays closed once a newer block was seen, without asking the node again (kills G1)", async function () {
      const { gate, node, sender } = gateAt10();
      sender.broadcasts += 1;
      node.block = 11;
      expect(await gate.allow()).to.equal(false);
      node.block = 10; // a reorg back to the head's height: the pass has still run late
      expect(await gate.allow()).to.equal(false);
      expect([gate.deferred, node.asked]).to.deep.equal([true, 1]);
    });
  });

  describe("the backstop's unwinds behind the gate (loop.ts, round 129)", function () {
    it("unwinds one market a pass once its first unwind made a newer block, and leaves the second to the next pass (kills G15)", async function () {
      // The backstop absorbed Alice's ETH and BTC longs: both markets lean its way. Two unwinds in a pass
      // held the next pass's health checks and starts behind two receipts.
      const sys = await deployOptionsSystem();
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
      await trade(sys.perps, sys.alice, alice, sys.markets.BTC, wad("0.05"));
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.startAuction(alice);
      await time.increase((await sys.auction.params()).duration);
      await refreshFeeds(sys);
      await sys.auction.absorb(alice);
      await sys.manager.grantRole(Role.BACKSTOP, sys.keeper.address, 0);
      const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--unwind-backstop"]);
      const first = await keeper.step();
      expect([first.unwound, first.deferred]).to.deep.equal([[sys.markets.ETH], true]);
      expect((await keeper.step()).unwound).to.deep.equal([sys.markets.BTC]);
    });
  });

  describe("accounts marked failing, rechecked every FAILING_RECHECK_PASSES passes (loop.ts, round 123)", function () {
    it("bisects the marked group at the session's 10th pass, not the 11th (kills H4)", async function () {
      // Four accounts long 0.01 BTC, BTC through its lower bound: the first pass marks them, the next ones
      // read them in one call, and the 10th halves the group down to each (2·4 − 1 calls), as documented.
      const sys = await deployOptionsSystem();
      await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
      for (let i = 0; i < 4; i++) {
        const id = await openAccount(sys, sys.lp, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
        await trade(sys.perps, sys.lp, id, sys.markets.BTC, wad("0.01"));
      }
      const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
      await setFeedPrice(sys.feeds.BTC, "59");
      const perPass = await healthManyCallsPerPass(sys, keeper, FAILING_RECHECK_PASSES + 1);
      // Pass 1 bisects the whole book (5 accounts: 2·5 − 1), passes 2-9 read each group in one call.
      expect(perPass).to.deep.equal([9, ...Array(8).fill(2), 1 + (2 * 4 - 1), 2]);
    });
  });

  describe("a settled series whose open interest no known holder accounts for (options.ts, round 135)", function () {
    it("is not taken for one when a known holder's batch failed to go out: the next pass pays it (kills O17)", async function () {
      // One writer of an expired call; the pass settles the series and its payout's estimate reverts once.
      // Taken for open interest no known holder accounts for, the series was read once and never again
      // until its interest moved: the known, open holder left unpaid, with a false warning.
      const { sys, call, writers } = await expiredCallWritten(1);
      const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
      const settleAccounts = sys.options.interface.getFunction("settleAccounts").selector;
      let refused = 0;
      await onRequests(
        (method, params) => {
          if (method !== "eth_estimateGas" || !callDataOf(params).startsWith(settleAccounts) || refused > 0)
            return;
          refused += 1;
          throw Object.assign(new Error("execution reverted"), { code: 3, data: "0x" });
        },
        () => keeper.step(),
      );
      expect(refused).to.equal(1);
      expect(await stillOpen(sys, call, writers)).to.deep.equal(writers);
      await refreshFeeds(sys);
      await keeper.step();
      expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
      expect(keeper.lines.map((l) => l.msg)).to.not.include(
        "open interest no known holder accounts for; not paid by this keeper",
      );
    });

    it("warns once, not again when the unknown holders' interest moves and every known holder still reads closed (kills O21)", async function () {
      // Three writers, the keeper knowing only the third. Someone pays the first: open interest moves, the
      // known holder is read again (closed), and the series stays unaccounted, which the operator was told.
      const { sys, call, writers, tradeBlocks } = await expiredCallWritten(3);
      const startBlock = tradeBlocks[1] + 1;
      const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--start-block", String(startBlock)]);
      for (let pass = 0; pass < 3; pass++) await keeper.step();
      await sys.options.connect(sys.carol).settleAccounts([writers[0]], call);
      await keeper.step();
      expect(await stillOpen(sys, call, writers)).to.deep.equal([writers[1]]);
      const warned = keeper.lines.filter((l) =>
        l.msg.startsWith("open interest no known holder accounts for"),
      );
      expect(warned).to.have.length(1);
    });

    it("reads its known holders again when a reorg reopens one of them, and pays it (kills O5, O6)", async function () {
      // Two writers of a settled call; the keeper knows only the second (it scans from after the first's
      // trade). It pays the second, then reads every known holder closed with the first's interest left:
      // unaccounted. A reorg below its newest block drops its payout: the second's position is open again
      // and open interest moves. Skipped for its unchanged holder count, it was never paid again.
      // The writer's reopened short moves the short side only: a comparison of the long sides misses it.
      const { sys, call, writers, tradeBlocks } = await expiredCallWritten(2);
      const startBlock = tradeBlocks[0] + 1;
      await sys.options.settleSeries(call, await sys.feeds.ETH.latestRound());
      const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--start-block", String(startBlock)]);
      const beforePayout = await takeSnapshot();
      await keeper.step(); // pays the second writer
      await keeper.step(); // reads it closed, the first's interest left: unaccounted
      expect(await stillOpen(sys, call, writers)).to.deep.equal([writers[0]]);
      await beforePayout.restore(); // the payout dropped
      await mine(3);
      expect(await stillOpen(sys, call, writers)).to.deep.equal(writers);
      await keeper.step();
      expect(await stillOpen(sys, call, writers)).to.deep.equal([writers[0]]);
      // Read closed again with the first's interest as before: told once, not at each such read (kills O21).
      await keeper.step();
      const warned = keeper.lines.filter((l) =>
        l.msg.startsWith("open interest no known holder accounts for"),
      );
      expect(warned).to.have.length(1);
    });
  });
});
