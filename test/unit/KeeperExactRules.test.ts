/**
 * Review round 91: small bugs put into the keeper one at a time (scripts/keeper/*.ts, since round 72: the
 * gas cap per transaction, the estimate's fallback, the L1 data fee, setup notices, retries, batch
 * starts). These are the rules no other keeper test pinned; each comment names the bug that passed the
 * suite before. Most run against a scripted node (no chain), so the file stays fast.
 */
import { expect } from "chai";
import { Wallet, makeError, toBeHex } from "ethers";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  absorbedLong,
  expiredCallWritten,
  oneExpiredCall,
  callDataOf,
  keeperBidPlan,
  keeperBidder,
  keeperDeploymentOf,
  startRpcBridge,
  type BridgedCall,
  type Misbehaviour,
  onRequest,
  onRequests,
  healthManyCallsPerPass,
  startInProcessKeeper,
  startTransactions,
  threeLongsUnderWater,
  withRivalStartAtEstimate,
  withStartBatchEstimate,
  withStartBatchesUnfunded,
} from "../shared/keeper";
import { MarginMode, openAccount, wad } from "../shared/system";
import { deployOptionsSystem } from "../shared/options";
import { bobLongsUnderWater, refreshFeeds, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { Eip1193JsonRpcProvider } from "../../scripts/keeper/chain";
import { openSession, runKeeper } from "../../scripts/keeper/loop";
import { readBidderAccount } from "../../scripts/keeper/liquidation";
import { AccountDiscovery, AuctionTracker, getLogsSplitting } from "../../scripts/keeper/discovery";
import { IAccounts__factory } from "../../typechain-types/factories/contracts/interfaces/IAccounts__factory";
import { ILiquidationAuction__factory } from "../../typechain-types/factories/contracts/interfaces/ILiquidationAuction__factory";
import type { Contracts } from "../../scripts/keeper/chain";
import { mintAccountsTo } from "../shared/accounts";
import { hardhatWallet, tempDir, waitFor } from "../shared/e2e";
import fs from "node:fs";
import path from "node:path";
import { Role } from "../../deploy/roles";
import { TX_GAS_CAP, TxSender, type SendResult } from "../../scripts/keeper/sender";
import {
  GWEI,
  KEY,
  ScriptedNode,
  TARGET,
  logNode,
  scriptedSender,
  tooManyLogs,
} from "../shared/scriptedNode";
import { createLogger, type Fields } from "../../scripts/keeper/log";
import {
  WAD,
  bidderAccountUnfit,
  chooseFees,
  expectedFlagReward,
  isDeficitStale,
  isMaterial,
  isUnwindWorthSending,
  replacementFees,
  replacementFeesForUnknown,
} from "../../scripts/keeper/logic";
import { UsageError, parseKeeperArgs } from "../../scripts/keeper/config";
import { isTransientError, withRetry } from "../../scripts/keeper/retry";
import { groupByReason, revertReason } from "../../scripts/keeper/reverts";

/** What ethers throws for a connection the node refused: a transport failure (`isTransientError`). */
const outage = (): Error =>
  makeError("connect ECONNREFUSED 127.0.0.1:8545", "NETWORK_ERROR", { event: "request" });

/** A scripted node at nonce 3 whose counts answer at once. */
const newNode = () => new ScriptedNode(3, 0);

function senderOn(node: ScriptedNode, opts: { dryRun?: boolean; txTimeoutMs?: number } = {}) {
  return { ...scriptedSender(node, opts), request: { to: TARGET, data: "0x12345678" } };
}

/** The gas limit a dry run of a call estimated at `gas` would send. */
async function gasLimitFor(gas: bigint): Promise<bigint> {
  const node = newNode();
  node.estimate = async () => gas;
  const { sender, request } = senderOn(node, { dryRun: true });
  const result: SendResult = await sender.send("bidAndClose", request);
  if (result.status !== "dry-run") throw new Error(`not a dry run: ${result.status}`);
  return result.gasLimit;
}

/**
 * `openSession` of a dry-run keeper with `privateKey` on `sys` (in process): its wallet, its log lines, and
 * `open`, which opens a session each time it is called.
 */
async function sessionOpener(sys: Awaited<ReturnType<typeof deployOptionsSystem>>, privateKey: string) {
  const deployment = await keeperDeploymentOf(sys);
  const provider = new Eip1193JsonRpcProvider(network.provider, deployment.chainId);
  const wallet = new Wallet(privateKey, provider);
  const lines: { msg: string; fields: Fields }[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) });
  const cfg = parseKeeperArgs(["--rpc", "http://in-process", "--deployment", "(in memory)", "--dry-run"], {
    KEEPER_PRIVATE_KEY: privateKey,
  });
  if (cfg === "help") throw new Error("unreachable");
  const sender = new TxSender(wallet, provider, deployment.chainId, log, {
    maxGasPriceWei: cfg.maxGasPriceWei,
    dryRun: true,
    txTimeoutMs: cfg.txTimeoutMs,
    pollMs: 10,
  });
  return { wallet, lines, open: () => openSession(cfg, provider, wallet, sender, log, deployment) };
}

/**
 * `runKeeper` (the CLI's loop) in process over an RPC bridge whose `hook` may answer a request instead of
 * the chain, with `args` (keeper key: Hardhat's #4): its log lines and calls, and `stop` (in a `finally`).
 */
async function runKeeperWithHook(
  sys: Awaited<ReturnType<typeof deployOptionsSystem>>,
  args: string[],
  hook: (call: BridgedCall, calls: BridgedCall[]) => Misbehaviour | undefined = () => undefined,
) {
  const scratch = tempDir("xmargin-keeper-");
  const deploymentFile = path.join(scratch.dir, "deployment.json");
  fs.writeFileSync(deploymentFile, JSON.stringify(await keeperDeploymentOf(sys)));
  const bridge = await startRpcBridge(hook);
  const lines: { msg: string; fields: Fields }[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) });
  const cfg = parseKeeperArgs(["--rpc", bridge.url, "--deployment", deploymentFile, ...args], {
    KEEPER_PRIVATE_KEY: hardhatWallet(4).privateKey,
  });
  if (cfg === "help") throw new Error("unreachable");
  const controller = new AbortController();
  const running = runKeeper(cfg, log, controller.signal);
  return {
    lines,
    calls: bridge.calls,
    async stop() {
      controller.abort();
      await running;
      await bridge.close();
      scratch.remove();
    },
  };
}

const ACCOUNT_CREATED = IAccounts__factory.createInterface().getEvent("AccountCreated").topicHash;
const AUCTION = ILiquidationAuction__factory.createInterface();
const idTopic = (id: bigint) => toBeHex(id, 32);

describe("The keeper at its exact rules (review round 91)", function () {
  describe("TxSender's gas limit", function () {
    it("pads the estimate by 20% plus 10,000 gas below the cap (10M goes out with 12,010,000)", async function () {
      expect(await gasLimitFor(10_000_000n)).to.equal(12_010_000n);
      expect(await gasLimitFor(21_000n)).to.equal(35_200n);
    });

    it("sends the cap itself for an estimate that fits under it but whose padding does not (14.6M, and the fallback's 2^24)", async function () {
      // Mutant `gas < TX_GAS_CAP`: the fallback's answer of exactly 2^24 went out padded to 20,142,659,
      // which every EIP-7825 node refuses: the case the fallback exists for was never sent.
      expect(await gasLimitFor(14_600_000n)).to.equal(TX_GAS_CAP);
      expect(await gasLimitFor(TX_GAS_CAP)).to.equal(TX_GAS_CAP);
    });

    it("never clamps an estimate above the cap to the cap: the node refuses it whole rather than run it out of gas", async function () {
      // Mutant dropping `gas <= TX_GAS_CAP`: a 17M estimate was sent with 16,777,216 gas, certain to run
      // out of gas after paying for it.
      expect(await gasLimitFor(17_000_000n)).to.equal(20_410_000n);
    });
  });

  describe("TxSender.estimateGas's fallback", function () {
    const capRefusal = (data?: string): Error =>
      makeError("missing revert data", "CALL_EXCEPTION", {
        action: "estimateGas",
        data: data ?? null,
        reason: null,
        transaction: { to: TARGET, data: "0x12345678" },
        invocation: null,
        revert: null,
        info: { error: { code: -32000, message: "gas required exceeds allowance (16777216)" } },
      } as never);

    it("checks an estimate refused with empty revert data ('0x') at the cap, and answers the cap when that call runs", async function () {
      // Mutant `typeof data === "string"` (without `!== "0x"`): an empty data field was read as a revert
      // and thrown, so the estimator's own cap failure was never checked.
      const node = newNode();
      node.estimate = async () => {
        throw capRefusal("0x");
      };
      const { sender, request } = senderOn(node);
      expect(await sender.estimateGas(request)).to.equal(TX_GAS_CAP);
      expect(node.calls.map((c) => c.gasLimit)).to.deep.equal([TX_GAS_CAP]);
    });

    it("throws the estimate's error when the call at the cap reverts too, instead of answering the cap", async function () {
      // Mutant: the catch around the eth_call at the cap swallowed its revert and answered 2^24: a call
      // that reverts at any gas was sent (and paid for) at 16,777,216 gas.
      const refusal = capRefusal();
      const node = newNode();
      node.estimate = async () => {
        throw refusal;
      };
      node.call = async () => {
        throw makeError("execution reverted", "CALL_EXCEPTION", { data: "0xdeadbeef" } as never);
      };
      const { sender, request } = senderOn(node);
      const answer = await sender.estimateGas(request).then(
        (gas) => `an estimate of ${gas}`,
        (error: unknown) => error,
      );
      expect(answer).to.equal(refusal);
    });
  });

  describe("TxSender's fees and L1 data fee", function () {
    it("fails on a transport failure of eth_maxPriorityFeePerGas instead of pricing at the 1 gwei default tip", async function () {
      // Mutant: every error of the tip read taken for "method not supported" (legacy chains), so an
      // outage priced the transaction with a made-up tip.
      const node = newNode();
      node.tipAnswer = async () => {
        throw outage();
      };
      const { sender } = senderOn(node);
      await expect(sender.fees()).to.be.rejectedWith(/ECONNREFUSED/);
    });

    it("reads the OP-stack check once and asks no GasPriceOracle where there is none", async function () {
      // Mutant `if (!this.opStack)` (the await dropped): the pending promise is truthy, so every bid on
      // Ethereum or Arbitrum asked getL1Fee of an empty address and logged "L1 data fee unreadable".
      const node = newNode();
      const { sender, request, lines } = senderOn(node);
      expect(await sender.l1DataFee(request)).to.equal(0n);
      expect(await sender.l1DataFee(request)).to.equal(0n);
      expect(node.calls).to.deep.equal([]);
      expect(lines.map((l) => l.msg)).to.deep.equal([]);
    });

    it("rethrows a transport failure of getL1Fee rather than pricing the L1 fee at 0", async function () {
      // Mutant: the transient-error rethrow dropped: an outage of one call priced a Base bid without
      // its L1 fee (most of its cost there), and the bid went out at a loss.
      const node = newNode();
      node.code = "0x6080";
      node.call = async () => {
        throw outage();
      };
      const { sender, request } = senderOn(node);
      await expect(sender.l1DataFee(request)).to.be.rejectedWith(/ECONNREFUSED/);
    });

    it("prices at 0, with a warning, an answer of getL1Fee that is not a uint256 (another contract at the predeploy's address)", async function () {
      // Before: ethers' decode error (BAD_DATA) was taken for a broken connection and rethrown, and every
      // bid's step failed on it.
      const node = newNode();
      node.code = "0x6080";
      node.call = async () => "0x1234";
      const { sender, request, lines } = senderOn(node);
      expect(await sender.l1DataFee(request)).to.equal(0n);
      expect(lines.map((l) => l.msg)).to.deep.equal(["L1 data fee unreadable; priced at 0"]);
    });
  });

  describe("TxSender.send", function () {
    it("runs a call it was handed an estimate for once more (eth_call) right before signing, and sends nothing when that reverts", async function () {
      // Mutant `if (opts.unless)`: a bidAndClose priced by assessBid went out on the estimate alone, so a
      // rival's bid mined in between cost a reverted transaction instead of an eth_call.
      const node = newNode();
      node.call = async () => {
        throw makeError("execution reverted", "CALL_EXCEPTION", { data: "0x4e487b71" } as never);
      };
      const { sender, request } = senderOn(node);
      const result = await sender.send("bidAndClose", request, {}, { gasEstimate: 500_000n });
      expect(result.status).to.equal("simulation-failed");
      expect(node.calls.length).to.equal(1);
      expect(node.sent).to.deep.equal([]);
    });

    it("fails the step on a transport failure of the simulation instead of reporting a revert", async function () {
      // Mutant: the transient-error rethrow dropped: an outage (after the provider's own retries) read as
      // "simulation reverted; not sending", and the start or bid was silently skipped for the pass.
      const node = newNode();
      node.estimate = async () => {
        throw outage();
      };
      const { sender, request } = senderOn(node);
      await expect(sender.send("startAuction", request)).to.be.rejectedWith(/ECONNREFUSED/);
    });

    it("re-sends the same bytes 6 times in all after transport failures, 200, 400, 800, 1,600 and 2,000 ms apart", async function () {
      // Mutants: `attempt >= 2` (one re-send), and a linear back-off `100 * 2 * attempt` (200 … 1,000 ms).
      const node = newNode();
      node.onSend = () => {
        throw outage();
      };
      const { sender, request, lines } = senderOn(node);
      await expect(sender.send("startAuction", request)).to.be.rejectedWith(/ECONNREFUSED/);
      expect(new Set(node.sent.map((t) => t.hash)).size, "the same transaction each time").to.equal(1);
      expect(node.sent.length).to.equal(6);
      expect(
        lines
          .filter((l) => l.msg === "send failed; re-sending the same transaction")
          .map((l) => l.fields.delayMs),
      ).to.deep.equal([200, 400, 800, 1_600, 2_000]);
    });

    it("takes a node's 'already known' for the transaction it has, and waits for its receipt (one broadcast)", async function () {
      // Mutant: "already known" dropped from NONCE_USED (geth's answer to bytes it holds): the send failed
      // the step, and the next pass signed a second transaction for the same action.
      const node = newNode();
      node.onSend = () => {
        throw new Error("already known");
      };
      node.receipt = async () => ({ status: 1, blockNumber: 9, gasUsed: 21_000n });
      const { sender, request } = senderOn(node);
      expect((await sender.send("startAuction", request)).status).to.equal("mined");
      expect(node.sent.length).to.equal(1);
    });

    it("does not re-send a transaction the node refused for funds (Hardhat's UNKNOWN_ERROR), once", async function () {
      // Mutant: the NO_FUNDS check dropped: the refusal reads as transient, re-sent 6 times with 5 s of
      // back-off on every send of every pass from an empty wallet (row 176).
      const node = newNode();
      node.onSend = () => {
        throw makeError("could not coalesce error", "UNKNOWN_ERROR", {
          error: { code: -32003, message: "Sender doesn't have enough funds to send tx." },
        });
      };
      const { sender, request } = senderOn(node);
      await expect(sender.send("startAuction", request)).to.be.rejectedWith(/coalesce/);
      expect(node.sent.length).to.equal(1);
    });

    it("fails on a receipt read that errs for another reason than transport, instead of waiting out the timeout", async function () {
      // Mutant: every error of getTransactionReceipt swallowed: the send reported "dropped" after
      // --tx-timeout-ms and the next one replaced a transaction that may well be mined.
      const node = newNode();
      node.receipt = async () => {
        throw makeError("invalid hash", "INVALID_ARGUMENT", { argument: "hash", value: "0x" });
      };
      const { sender, request } = senderOn(node, { txTimeoutMs: 5_000 });
      await expect(sender.send("startAuction", request)).to.be.rejectedWith(/invalid hash/);
    });

    it("names the nonce it would have replaced when 9/8 of its stuck transaction's fees is above the cap", async function () {
      // Mutant: `waitingNonce` dropped from the warning: the operator reads "gas price above cap" while
      // the chain's fees are under it, without the transaction that holds the keeper back.
      const node = newNode();
      node.baseFee = 45n * GWEI; // max fee 91 gwei, 9/8 of it 102.4 > the cap of 100
      node.onSend = () => {
        node.pending = 4;
      };
      const { sender, request, lines } = senderOn(node);
      expect((await sender.send("startAuction", request)).status).to.equal("dropped");
      expect((await sender.send("startAuction", request)).status).to.equal("gas-above-cap");
      const warning = lines.find((l) => l.msg === "gas price above cap; not sending");
      expect(warning?.fields.waitingNonce).to.equal(3);
      expect(node.sent.length).to.equal(1);
    });
  });
  describe("the keeper's rules at their boundaries (logic.ts)", function () {
    const cap = 100n * GWEI;

    it("sends at a base fee equal to the cap, with no tip (waits only while it is above)", function () {
      // Mutant `base >= capWei`: README says the keeper waits "while the base fee is above" the cap.
      expect(
        chooseFees({ baseFeePerGas: cap, maxPriorityFeePerGas: GWEI, gasPrice: null }, cap),
      ).to.deep.equal({
        type: 2,
        maxFeePerGas: cap,
        maxPriorityFeePerGas: 0n,
        expectedPrice: cap,
      });
    });

    it("tips 1 gwei on an EIP-1559 chain whose node has no eth_maxPriorityFeePerGas", function () {
      // Mutant: a default of 0.1 gwei, below what most L1 blocks include.
      expect(
        chooseFees({ baseFeePerGas: 10n * GWEI, maxPriorityFeePerGas: null, gasPrice: null }, cap),
      ).to.deep.equal({
        type: 2,
        maxFeePerGas: 21n * GWEI,
        maxPriorityFeePerGas: GWEI,
        expectedPrice: 11n * GWEI,
      });
    });

    it("replaces a stuck transaction at a max fee of the cap exactly", function () {
      // Mutant `maxFeePerGas >= capWei`: today's fees at the cap (base 99 gwei) made every replacement
      // of an 80 gwei transaction null: the keeper sent nothing until the base fee fell.
      const now = chooseFees(
        { baseFeePerGas: 99n * GWEI, maxPriorityFeePerGas: 2n * GWEI, gasPrice: null },
        cap,
      )!;
      const waiting = {
        type: 2 as const,
        maxFeePerGas: 80n * GWEI,
        maxPriorityFeePerGas: GWEI,
        expectedPrice: 0n,
      };
      expect(replacementFees(now, waiting, cap)).to.deep.equal({
        type: 2,
        maxFeePerGas: cap,
        maxPriorityFeePerGas: 1_125_000_000n,
        expectedPrice: cap,
      });
    });

    it("expects to pay no more than the replacement's max fee, though base + a bumped tip is above it", function () {
      // Mutant: the expected price uncapped (base + tip = 110.25 gwei over a max fee of 100): every
      // profit check after a replacement priced gas 10% above what the transaction can pay.
      const now = chooseFees({ baseFeePerGas: 99n * GWEI, maxPriorityFeePerGas: GWEI, gasPrice: null }, cap)!;
      const waiting = {
        type: 2 as const,
        maxFeePerGas: 80n * GWEI,
        maxPriorityFeePerGas: 10n * GWEI,
        expectedPrice: 0n,
      };
      expect(replacementFees(now, waiting, cap)).to.deep.equal({
        type: 2,
        maxFeePerGas: cap,
        maxPriorityFeePerGas: 11_250_000_000n,
        expectedPrice: cap,
      });
    });

    it("offers the cap after a refusal below it, and nothing after a refusal at it (legacy fees too)", function () {
      const legacy = (gasPrice: bigint) => ({ type: 0 as const, gasPrice, expectedPrice: gasPrice });
      expect(replacementFeesForUnknown(legacy(10n * GWEI), legacy(95n * GWEI), cap)).to.deep.equal(
        legacy(cap),
      );
      expect(replacementFeesForUnknown(legacy(10n * GWEI), legacy(cap), cap)).to.equal(null);
    });

    it("records a deficit that rose by exactly 1% of it no sooner than by more (99 → 100 is not stale)", function () {
      // Mutant `>= current`: README and the NatSpec say "more than 1%".
      expect(isDeficitStale(99n, 100n)).to.equal(false);
      expect(isDeficitStale(98n, 100n)).to.equal(true);
    });

    it("sends an unwind of exactly 1,000 USD of notional, and treats an MM of exactly --min-stake-usd as material", function () {
      // Mutants `> MIN_UNWIND_NOTIONAL` and `> minStakeUsd`: both documented as "at least".
      expect(isUnwindWorthSending(-WAD, 1_000n * WAD)).to.equal(true);
      expect(isUnwindWorthSending(-WAD, 1_000n * WAD - 1n)).to.equal(false);
      expect(isMaterial({ maintenanceRequirement: 100n * WAD }, 100n * WAD)).to.equal(true);
      expect(isMaterial({ maintenanceRequirement: 100n * WAD - 1n }, 100n * WAD)).to.equal(false);
    });

    it("prices the flag reward as the auction does: paid again from the cooldown's end on, and the book's mark rounded down", function () {
      // LiquidationAuction: no reward while `block.timestamp < endedAt + FLAG_REWARD_COOLDOWN`, and
      // min(flagReward, mark / quoteUnit). Mutants: `now <= endedAt + cooldown`, and the mark rounded up.
      const base = { flagReward: 10n ** 7n, quoteUnit: 10n ** 12n, endedAt: 1_000n, cooldown: 86_400n };
      expect(expectedFlagReward({ ...base, markQuote: WAD, now: 87_400n })).to.equal(10n ** 6n);
      expect(expectedFlagReward({ ...base, markQuote: WAD, now: 87_399n })).to.equal(0n);
      expect(expectedFlagReward({ ...base, markQuote: 10n ** 12n + 1n, now: 87_400n })).to.equal(1n);
    });
  });

  describe("the keeper's bidder account (liquidation.ts)", function () {
    it("takes a flat account with a quote balance of exactly 0 even when its health cannot be read", function () {
      // Mutant `quoteBalance > 0n`: a fresh account (no deposit) whose health read reverted was refused
      // as "equity unreadable", and the keeper created another one for nothing.
      expect(
        bidderAccountUnfit({
          isolated: false,
          markets: 0,
          frozen: false,
          quoteBalance: 0n,
          equityMark: null,
        }),
      ).to.equal(null);
    });

    it("fails on a transport failure of its account's health instead of reading the account as unfit", async function () {
      // Mutant: every error of the health read taken for a revert: with a quote debt (a WETH slice's
      // float) one outage made the account "equity unreadable", and the keeper abandoned it for a new one
      // (a createAccount and a setTrader), leaving the old one's debt unwatched.
      const c = {
        accounts: { marginMode: async () => 0n },
        engine: {
          accountMarkets: async () => [],
          health: async () => {
            throw outage();
          },
        },
        auction: { isFrozen: async () => false },
        vault: { balanceOf: async () => -3_942n * 10n ** 6n },
      } as unknown as Contracts;
      await expect(readBidderAccount(c, 7n, TARGET)).to.be.rejectedWith(/ECONNREFUSED/);
    });

    it("adopts an account sent to it in a dry run, logging the trading grant it would send instead of failing the session", async function () {
      // Mutant: grantAuction accepting "mined" only: a dry run of a keeper whose account had no grant yet
      // failed at start with "could not let the auction trade account …: dry-run".
      const { sys } = await loadFixture(threeLongsUnderWater);
      const key = hardhatWallet(4);
      await mintAccountsTo(sys.accounts, sys.deployer, key.address, 1, MarginMode.CROSS);
      const [own] = await sys.accounts.accountsOf(key.address);
      const { lines, open } = await sessionOpener(sys, key.privateKey);
      const session = await open();
      expect(session?.keeperAccountId).to.equal(own);
      expect(lines.filter((l) => l.msg === "dry run: would send").map((l) => l.fields.action)).to.deep.equal([
        "grantAuctionTrading",
      ]);
    });

    it("grants the auction unlimited trading of an adopted account that has only a small allowance", async function () {
      // Mutant `traderAllowance(...) > 0n`: an account sent to the keeper with an allowance of 1 was taken
      // as granted, and every bidAndClose from it was refused by the allowance.
      const { sys } = await loadFixture(threeLongsUnderWater);
      const key = hardhatWallet(4);
      await mintAccountsTo(sys.accounts, sys.deployer, key.address, 1, MarginMode.CROSS);
      const [own] = await sys.accounts.accountsOf(key.address);
      const keeperSigner = await ethers.getSigner(key.address);
      await sys.accounts.connect(keeperSigner).setTrader(own, await sys.auction.getAddress(), 1n);
      const { lines, open } = await sessionOpener(sys, key.privateKey);
      expect((await open())?.keeperAccountId).to.equal(own);
      expect(lines.filter((l) => l.msg === "dry run: would send").map((l) => l.fields.action)).to.deep.equal([
        "grantAuctionTrading",
      ]);
    });

    it("suggests --account-id once it has read 17 accounts to find a usable one", async function () {
      // Mutant `index > SCAN_HINT_AFTER`: the hint came only from the 18th account read.
      const { sys } = await loadFixture(threeLongsUnderWater);
      const keeperAddress = hardhatWallet(4).address;
      await mintAccountsTo(sys.accounts, sys.deployer, keeperAddress, 16, MarginMode.ISOLATED);
      await mintAccountsTo(sys.accounts, sys.deployer, keeperAddress, 1, MarginMode.CROSS);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      const hint = keeper.lines.filter((l) => l.msg === "pass --account-id to skip this scan");
      expect(hint.map((l) => [l.fields.accountId, l.fields.read])).to.deep.equal([
        [`${keeper.session.keeperAccountId}`, "17"],
      ]);
    });
  });

  describe("retries (retry.ts)", function () {
    it("stops retrying at shutdown: one call, not every attempt", async function () {
      // Mutant: the abort check dropped: a stopping keeper went through every attempt of each call in
      // flight (sleep returns at once once aborted), so Ctrl-C waited on a dead node's retries.
      const shutdown = new AbortController();
      shutdown.abort();
      let calls = 0;
      const failing = async (): Promise<never> => {
        calls++;
        throw outage();
      };
      await expect(
        withRetry(failing, { attempts: 5, baseMs: 1, signal: shutdown.signal }),
      ).to.be.rejectedWith(/ECONNREFUSED/);
      expect(calls).to.equal(1);
    });
  });

  describe("revert reasons (reverts.ts)", function () {
    it("keeps two feeds' StalePrice apart: same error and selector, different messages, two groups", function () {
      // Mutant: grouped by error and selector only: the second stale feed's address vanished from the
      // pass's "health reverted" line, its accounts listed under the first feed's message.
      const stale = (feed: string) => ({
        error: "StalePrice",
        selector: "0x91b46fd2",
        message: `the price feed ${feed} is stale`,
      });
      const groups = groupByReason([
        { key: 1n, reason: stale("0xaa") },
        { key: 2n, reason: stale("0xbb") },
      ]);
      expect(groups.map((g) => [g.message, g.keys])).to.deep.equal([
        ["the price feed 0xaa is stale", [1n]],
        ["the price feed 0xbb is stale", [2n]],
      ]);
    });

    it("reports the first line of a multi-line error message only", function () {
      // Mutant: the message cut at 300 characters but not at its first line: a node's stack trace went
      // into every skipped account's reason, and identical failures no longer grouped.
      expect(revertReason(new Error("node said no\n    at Foo.bar (x.js:1:1)")).message).to.equal(
        "node said no",
      );
    });

    it("takes an answer ethers cannot decode (BAD_DATA: a garbled or truncated body) for transport, to be retried", function () {
      // Mutant: BAD_DATA left out: a proxy's truncated answer to a health batch was a "revert", and its
      // accounts were bisected and skipped as failing.
      expect(
        isTransientError(makeError("could not decode result data", "BAD_DATA", { value: "0x12" })),
      ).to.equal(true);
    });
  });

  describe("event scans (discovery.ts)", function () {
    it("splits a refused range into halves that do not overlap: each block's events once, and it ends", async function () {
      // Mutant: the second half started at `mid` instead of `mid + 1`: the middle block's events came
      // twice, and a refused two-block range split into itself, for ever.
      const node = logNode((from, to) => {
        if (to > from) throw tooManyLogs();
      });
      for (let b = 10; b <= 17; b++)
        node.logs.push({ blockNumber: b, topics: [ACCOUNT_CREATED, idTopic(BigInt(b))] });
      const logs = await getLogsSplitting(node.provider, { address: TARGET, topics: [] }, 10, 17);
      expect(logs.map((l) => l.blockNumber)).to.deep.equal([10, 11, 12, 13, 14, 15, 16, 17]);
    });

    it("finds an account a reorg added to a block it had already read, within the last 64 blocks", async function () {
      // Mutant: the discovery applied every block up to the head once: an account created in a block a
      // reorg replaced (its AccountCreated in the new block 90) was never seen, never liquidated.
      const node = logNode();
      node.logs.push({ blockNumber: 20, topics: [ACCOUNT_CREATED, idTopic(1n)] });
      const discovery = new AccountDiscovery(node.provider, TARGET, 0, 5_000);
      expect(await discovery.scanTo(100)).to.deep.equal([1n]);
      node.logs.push({ blockNumber: 90, topics: [ACCOUNT_CREATED, idTopic(2n)] });
      expect(await discovery.scanTo(101)).to.deep.equal([2n]);
      expect(discovery.accountIds).to.deep.equal([1n, 2n]);
    });

    it("sees an auction running again when a reorg drops its recent AuctionEnded (started long before)", async function () {
      // Mutant: the recent events applied to the settled set itself: the dropped end stayed applied, so the
      // auction was never ended again (review §4 row 65's case, with its start older than 64 blocks).
      const node = logNode();
      const started = AUCTION.getEvent("AuctionStarted").topicHash;
      const ended = AUCTION.getEvent("AuctionEnded").topicHash;
      node.logs.push({ blockNumber: 10, topics: [started, idTopic(7n)] });
      node.logs.push({ blockNumber: 95, topics: [ended, idTopic(7n)] });
      const tracker = new AuctionTracker(node.provider, TARGET, 0, 5_000);
      await tracker.scanTo(100);
      expect(tracker.accountIds).to.deep.equal([]);
      node.logs.pop(); // the reorg drops the endAuction
      await tracker.scanTo(101);
      expect(tracker.accountIds).to.deep.equal([7n]);
    });
  });

  describe("the command line's lower bounds (config.ts)", function () {
    const parse = (...args: string[]) =>
      parseKeeperArgs(["--rpc", "https://rpc.example", "--deployment", "d.json", ...args], {
        KEEPER_PRIVATE_KEY: KEY,
      });

    it("refuses a receipt timeout under 1 s and a poll or recheck under 10 ms, takes --funding-interval 0 (never)", function () {
      expect(() => parse("--recheck-ms", "9")).to.throw(UsageError, "--recheck-ms must be an integer ≥ 10");
      expect(() => parse("--tx-timeout-ms", "999")).to.throw(
        UsageError,
        "--tx-timeout-ms must be an integer ≥ 1000",
      );
      expect(() => parse("--poll-ms", "9")).to.throw(UsageError, "--poll-ms must be an integer ≥ 10");
      const cfg = parse("--funding-interval", "0", "--tx-timeout-ms", "1000", "--poll-ms", "10");
      expect(cfg === "help" ? null : [cfg.fundingInterval, cfg.txTimeoutMs, cfg.pollMs]).to.deep.equal([
        0, 1_000, 10,
      ]);
    });

    it("takes an https endpoint, as USAGE and README promise", function () {
      // Mutant: the URL check written /^http:\/\// (a hosted RPC refused as "--rpc must be an http(s) URL").
      const cfg = parse();
      expect(cfg === "help" ? null : cfg.rpcUrl).to.equal("https://rpc.example");
    });
  });
  describe("the act stage (liquidator.ts) on three longs under water", function () {
    it("sends a start batch estimated at exactly 10,000,000 gas whole (halved only above it)", async function () {
      // Mutant `gasUnits >= START_BATCH_GAS`: README says a batch "that needs more than 10M gas" is halved.
      const { sys, ids } = await loadFixture(threeLongsUnderWater);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      await withStartBatchEstimate(
        sys,
        1,
        async () => 10_000_000n,
        () => keeper.step(),
      );
      expect(await startTransactions(sys)).to.deep.equal([[ids[2], ids[1], ids[0]]]);
    });

    it("halves a start batch whose estimate times out, as one refused for gas, instead of failing the pass", async function () {
      // Mutant: a timeout rethrown like any transport failure: the heavy batch failed every pass (the loop
      // retried the step, and met the same timeout), so none of its books was ever auctioned.
      const { sys, ids } = await loadFixture(threeLongsUnderWater);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      const timeout = async (): Promise<bigint> => {
        throw makeError("request timeout", "TIMEOUT", { operation: "request", reason: "timeout" });
      };
      await withStartBatchEstimate(sys, 3, timeout, () => keeper.step());
      expect(await startTransactions(sys)).to.deep.equal([[ids[2], ids[1]], [ids[0]]]);
    });

    it("does not try to absorb an auction before its duration has run (no absorb simulated while it is running)", async function () {
      // Mutant `status !== "none"`: every pass of a running auction no bid paid for simulated an absorb
      // (reverting until the duration) and logged "simulation reverted; not sending" per book.
      const { sys } = await loadFixture(threeLongsUnderWater);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      await keeper.step(); // the three starts
      await keeper.step(); // the auctions run: no bid pays
      expect(keeper.lines.filter((l) => l.fields.action === "absorb")).to.deep.equal([]);
    });

    it("simulates a priced bid once more with one eth_call before sending it, not a second estimate", async function () {
      // Mutant: bidAndClose sent without its estimate: the sender estimated it again (a second
      // eth_estimateGas of a call the keeper had just priced) and sent with a limit from that one.
      const { sys } = await loadFixture(threeLongsUnderWater);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      const selector = sys.auction.interface.getFunction("bidAndClose").selector;
      const reads: string[] = [];
      await onRequests(
        (method, params) => {
          if (["eth_call", "eth_estimateGas"].includes(method) && callDataOf(params).startsWith(selector))
            reads.push(method);
        },
        () => keeper.step(),
      );
      expect((await sys.auction.queryFilter(sys.auction.filters.AuctionBid())).length).to.equal(3);
      expect(reads).to.deep.equal(Array(3).fill(["eth_estimateGas", "eth_call"]).flat());
    });

    it("prices a bid's gas at the fee it expects to pay (base + tip), not at its max fee", async function () {
      // Mutant: assessBid priced gas at maxFeePerGas (2·base + tip): every bid looked about twice as dear.
      const { sys, ids } = await loadFixture(threeLongsUnderWater);
      await sys.auction.connect(sys.deployer).startAuction(ids[0]);
      const keeper = await keeperBidder(sys);
      const plan = await keeperBidPlan(sys, keeper, ids[0]);
      const base = (await ethers.provider.getBlock("latest"))!.baseFeePerGas!;
      const tip = BigInt(await ethers.provider.send("eth_maxPriorityFeePerGas", []));
      const { gasUnits, economics } = plan;
      expect(economics.gasUsd).to.equal((gasUnits * (base + tip) * 2_600n * WAD + WAD - 1n) / WAD);
    });

    it("leaves a stale deficit it cannot price (gas above the cap) to the sender's warning, not to 'below its gas'", async function () {
      // Mutant `gasUsd !== null && …`: with the base fee above --max-gas-price-gwei the update was skipped
      // as "deficit rise below its gas" (debug), and the cap's warning never said why it was not recorded.
      const sys = await loadFixture(deployOptionsSystem);
      const victim = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * 10n ** 6n]]);
      await trade(sys.perps, sys.alice, victim, sys.markets.ETH, wad("10"));
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.startAuction(victim);
      await setFeedPrice(sys.feeds.ETH, "2400"); // −1,000 USDC since its start: a stale deficit
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      await network.provider.send("hardhat_setNextBlockBaseFeePerGas", [`0x${(200n * GWEI).toString(16)}`]);
      await network.provider.send("evm_mine", []);
      await keeper.step();
      expect(keeper.lines.filter((l) => l.msg === "deficit rise below its gas; not recorded")).to.deep.equal(
        [],
      );
      expect(
        keeper.lines.filter((l) => l.msg === "gas price above cap; not sending").map((l) => l.fields.action),
      ).to.include("updateDeficit");
    });

    it("bids in the same pass on the auctions a rival started between its health check and its own start", async function () {
      // Mutant: only the auctions in the keeper's own receipt counted as running: a rival's starts (its
      // batch simulated as "would start nothing") left the keeper without a bid until the next pass.
      const { sys, ids } = await loadFixture(threeLongsUnderWater);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      expect(await withRivalStartAtEstimate(sys, ids, () => keeper.step())).to.equal(true);
      const bids = await sys.auction.queryFilter(sys.auction.filters.AuctionBid());
      expect(bids.map((e) => e.args.accountId)).to.have.members(ids);
    });

    it("assesses no bid for an account whose start could not be sent (nothing to bid on)", async function () {
      // Mutant: the `running` check dropped: every account of a failed start batch was read and quoted
      // ("no bid", "bid quote reverted") as if in auction: three reads and a reverted quote per book.
      const { sys } = await loadFixture(threeLongsUnderWater);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      await withStartBatchesUnfunded(sys, () => keeper.step());
      expect(keeper.lines.filter((l) => l.msg === "start batch failed; next batch")).to.have.length(1);
      expect(keeper.lines.filter((l) => l.msg === "no bid")).to.deep.equal([]);
    });
  });
  describe("the act stage on dust under water (two books of 0.184 USDC, long 0.0004 ETH, ETH at 2,600)", function () {
    async function twoDustBooks() {
      const sys = await deployOptionsSystem();
      const dust = await bobLongsUnderWater(sys, 2, 184_000n, wad("0.0004"), "2600");
      return { sys, dust };
    }

    it("names the accounts it did not start in the pass's notice", async function () {
      // Mutant: `accountIds` dropped from "auctions not started": the operator saw a count, not which.
      const { sys, dust } = await loadFixture(twoDustBooks);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      expect((await keeper.step()).notStarted).to.have.members(dust);
      const notice = keeper.lines.filter(
        (l) => l.msg === "auctions not started: flag reward below twice the start's gas",
      );
      expect(notice.map((l) => l.fields.count)).to.deep.equal([2]);
      expect(notice[0].fields.accountIds).to.have.members(dust.map(String));
    });

    it("prices a start's gas at the fee it expects to pay (base + tip), not at its max fee (2·base + tip)", async function () {
      // Mutant: the pass's gas priced at maxFeePerGas: every start and deficit update looked about twice
      // as dear as it is, and dust worth starting was left unflagged.
      const { sys, dust } = await loadFixture(twoDustBooks);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      // What the keeper's own reads answered during the pass: the start's estimate, and today's fees.
      const [estimate, fees] = [TxSender.prototype.estimateGas, TxSender.prototype.fees];
      let units = 0n;
      const expected: bigint[] = [];
      TxSender.prototype.estimateGas = async function (this: TxSender, request) {
        const gas = await estimate.call(this, request);
        const parsed = sys.auction.interface.parseTransaction({ data: request.data });
        if (parsed?.name === "startAuction" && parsed.args[0] === dust[0]) units = gas;
        return gas;
      };
      TxSender.prototype.fees = async function (this: TxSender) {
        const f = await fees.call(this);
        if (f?.type === 2) {
          expect(f.maxFeePerGas).to.be.greaterThan(f.expectedPrice);
          expected.push(f.expectedPrice);
        }
        return f;
      };
      try {
        await keeper.step();
      } finally {
        [TxSender.prototype.estimateGas, TxSender.prototype.fees] = [estimate, fees];
      }
      expect(expected).to.have.length(1); // read once per pass
      const line = keeper.lines.find(
        (l) => l.msg === "start not worth its gas" && l.fields.accountId === `${dust[0]}`,
      );
      // ETH at 2,600 USD, rounded up.
      expect(line?.fields.gasUsd).to.equal(`${(units * expected[0] * 2_600n * WAD + WAD - 1n) / WAD}`);
    });

    it("leaves a start it cannot price (gas above --max-gas-price-gwei) to the sender, not to the not-started report", async function () {
      // Mutant `if (gasUsd === null) return false`: with the gas price above the cap the dust was reported
      // as "flag reward below twice the start's gas", and the cap's own warning never said why.
      const { sys } = await loadFixture(twoDustBooks);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      // A base fee of 200 gwei, above the default cap of 100.
      await network.provider.send("hardhat_setNextBlockBaseFeePerGas", [`0x${(200n * GWEI).toString(16)}`]);
      await network.provider.send("evm_mine", []);
      expect((await keeper.step()).notStarted).to.deep.equal([]);
      expect(
        keeper.lines.filter((l) => l.msg === "gas price above cap; not sending").map((l) => l.fields.action),
      ).to.deep.equal(["startAuctions"]);
    });
  });

  describe("option settlement (options.ts)", function () {
    const fiftyOneHolders = () => expiredCallWritten(51);

    it("pays holders out 50 to a transaction: 51 holders, two settleAccounts of 50 and 1", async function () {
      // Mutant: SETTLE_BATCH 60: one transaction for all 51 (each holder's payout is a position close:
      // the batch bounds a payout transaction's gas).
      const { sys } = await loadFixture(fiftyOneHolders);
      const keeper = await startInProcessKeeper(sys);
      // One batch a pass once a newer block is out (each send here mines one: review round 129).
      const passes = [await keeper.step(), await keeper.step()];
      expect(passes.map((r) => r.options?.positionsSettled)).to.deep.equal([50, 1]);
      const mined = keeper.lines.filter(
        (l) => l.msg === "transaction mined" && l.fields.action === "settleAccounts",
      );
      expect(mined.map((l) => l.fields.accounts)).to.deep.equal([50, 1]);
    });

    it("does not report a series a rival settled between its read and its send as settled by the keeper", async function () {
      // Mutant: the return on a send that did not succeed dropped: the rival's settlement (the keeper's
      // own simulation reverted) was counted in the step's `seriesSettled`.
      const { sys, call } = await loadFixture(oneExpiredCall);
      const keeper = await startInProcessKeeper(sys);
      const settle = sys.options.interface.getFunction("settleSeries");
      let raced = false;
      const report = await onRequest(
        "eth_estimateGas",
        async (params) => {
          if (raced || !callDataOf(params).startsWith(settle.selector)) return;
          raced = true;
          const [id, hint] = sys.options.interface.decodeFunctionData(settle, callDataOf(params));
          await sys.options.connect(sys.deployer).settleSeries(id, hint);
        },
        () => keeper.step(),
      );
      expect(raced).to.equal(true);
      expect((await sys.options.series(call)).settled).to.equal(true);
      expect(report.options?.seriesSettled).to.deep.equal([]);
    });
  });

  describe("the pass and the session (loop.ts)", function () {
    const USDC = 10n ** 6n;

    /** Alice long 1 ETH: ETH's funding moves, and nobody accrued it for an hour. */
    async function fundingAnHourOld() {
      const sys = await deployOptionsSystem();
      const trader = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.alice, trader, sys.markets.ETH, wad("1"));
      return sys;
    }

    it("never accrues funding with --funding-interval 0 (documented: 0 = never)", async function () {
      // Mutant `cfg.fundingInterval >= 0`: interval 0 made every market with open interest stale on every
      // pass: an accrueFunding per market per block.
      const sys = await loadFixture(fundingAnHourOld);
      const keeper = await startInProcessKeeper(sys, ["--funding-interval", "0"]);
      await time.increase(3_600);
      await refreshFeeds(sys);
      const before = (await sys.perps.market(sys.markets.ETH)).lastFundingTime;
      expect((await keeper.step()).fundingAccrued).to.deep.equal([]);
      expect((await sys.perps.market(sys.markets.ETH)).lastFundingTime).to.equal(before);
    });

    it("bisects the accounts that failed before on every 10th pass, so one whose feed recovered is checked again", async function () {
      // Mutant `s.pass % FAILING_RECHECK_PASSES === 1`: the 10th pass read the two failing accounts in one
      // call (failing both), the bisection came a pass late. With one failing account, as KeeperStep
      // tests, both cost one call: two are needed to see it.
      const sys = await loadFixture(deployOptionsSystem);
      for (const signer of [sys.bob, sys.carol]) {
        const id = await openAccount(sys, signer, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
        await trade(sys.perps, signer, id, sys.markets.BTC, wad("0.01"));
      }
      const keeper = await startInProcessKeeper(sys);
      await time.increase(3_700); // BTC's feeds miss their heartbeat
      await setFeedPrice(sys.feeds.USDC, "1");
      await setFeedPrice(sys.volFeeds.ETH, "0.6");
      await setFeedPrice(sys.feeds.ETH, "3000");
      const perPass = await healthManyCallsPerPass(sys, keeper, 10, (report) =>
        expect(report.unchecked).to.have.length(2),
      );
      // Passes 2–9: one call for the others, one for the two failing; pass 10: the pair, then each alone.
      expect(perPass.slice(1)).to.deep.equal([2, 2, 2, 2, 2, 2, 2, 2, 4]);
    });

    it("unwinds the backstop with a deadline that a block 12 s after the pass still meets", async function () {
      // Mutant: the deadline sent as the pass's own block time: in-process Hardhat mines the next block in
      // the same second, so the KeeperStep unwind passed; on a chain whose next block is later, every
      // unwind reverted (DeadlineExpired) and its gas was lost.
      const { sys } = await loadFixture(absorbedLong);
      await sys.manager.grantRole(Role.BACKSTOP, sys.keeper.address, 0);
      const keeper = await startInProcessKeeper(sys, ["--unwind-backstop", "--min-profit-usd", "1000000"]);
      const passAt = await time.latest();
      const report = await onRequest(
        "eth_sendRawTransaction",
        () => time.setNextBlockTimestamp(passAt + 12),
        () => keeper.step(),
      );
      expect(report.unwound).to.deep.equal([sys.markets.ETH]);
    });

    it("backs a failed step off by at most 5 s, whatever --poll-ms", async function () {
      // Mutant: the step's back-off capped at 50 s: with --poll-ms 10000 the first retry after a failed
      // step came 7.5–12.5 s later instead of 3.75–6.25 s (±25% jitter around the 5 s cap).
      const sys = await loadFixture(deployOptionsSystem);
      const k = await runKeeperWithHook(sys, ["--poll-ms", "10000"], (call) =>
        call.method === "eth_blockNumber" ? { status: 502, html: "<html>502 Bad Gateway</html>" } : undefined,
      );
      try {
        const failed = await waitFor(
          "a failed step",
          () => k.lines.find((l) => l.msg === "step failed; retrying"),
          30_000,
          20,
        );
        expect(failed.fields.retryInMs).to.be.within(3_750, 6_250);
      } finally {
        await k.stop();
      }
    });

    it("does not run its step again on the same block before the 15 s re-check, however often it polls", async function () {
      // Mutant `head < processed`: a step (a healthMany per batch, every auction's reads) on every 20 ms
      // poll of an unchanged head.
      const sys = await loadFixture(deployOptionsSystem);
      const healthMany = sys.engine.interface.getFunction("healthMany").selector;
      const k = await runKeeperWithHook(sys, ["--poll-ms", "20"]);
      try {
        await waitFor("the first step", () => k.calls.some((c) => c.selector === healthMany), 30_000, 20);
        const polls = () => k.calls.filter((c) => c.method === "eth_blockNumber").length;
        const checks = () => k.calls.filter((c) => c.selector === healthMany).length;
        // The session's own transactions (its bidder account) mine two blocks: one more step, then none.
        let seen = polls();
        await waitFor("ten more polls", () => polls() >= seen + 10, 30_000, 20);
        const settled = checks();
        seen = polls();
        await waitFor("ten more polls of the same head", () => polls() >= seen + 10, 30_000, 20);
        expect(settled).to.be.at.most(2);
        expect(checks()).to.equal(settled);
      } finally {
        await k.stop();
      }
    });

    it("says the wallet cannot pay for gas below one bid's 700,000 gas at today's price, and not from exactly that on", async function () {
      // Mutants: BID_GAS 70,000 (a wallet for a tenth of a bid passed), and `balance <= oneBidWei`.
      const sys = await loadFixture(fundingAnHourOld);
      const { wallet, lines, open } = await sessionOpener(sys, Wallet.createRandom().privateKey);
      const gasPrice = BigInt(await ethers.provider.send("eth_gasPrice", []));
      const notices = async (balance: bigint) => {
        await ethers.provider.send("hardhat_setBalance", [wallet.address, `0x${balance.toString(16)}`]);
        lines.length = 0;
        expect(await open()).to.not.equal(null);
        return lines
          .filter((l) => l.msg === "keeper wallet cannot pay for gas; fund it")
          .map((l) => l.fields);
      };
      expect(await notices(gasPrice * 700_000n)).to.deep.equal([]);
      expect(await notices(gasPrice * 700_000n - 1n)).to.deep.equal([
        {
          address: wallet.address,
          balanceWei: `${gasPrice * 700_000n - 1n}`,
          oneBidWei: `${gasPrice * 700_000n}`,
        },
      ]);
      expect(await notices(gasPrice * 70_000n)).to.have.length(1);
    });
  });
});
