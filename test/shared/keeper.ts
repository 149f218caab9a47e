/**
 * The keeper's own code (session, step, sender, logs) against the in-process Hardhat chain of a system
 * deployed by `deployOptionsSystem`: an ethers provider over Hardhat's EIP-1193 provider, Hardhat's
 * account #4 as the keeper key, the command line's defaults (or the given arguments).
 */
import { ethers, network } from "hardhat";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { Transaction, Wallet, type Interface } from "ethers";
import { expect } from "chai";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { Deployment } from "../../deploy/deployment";
import {
  Eip1193JsonRpcProvider,
  connectContracts,
  type Contracts,
  type Eip1193Like,
} from "../../scripts/keeper/chain";
import { parseKeeperArgs } from "../../scripts/keeper/config";
import { assessBid, type BidPlan } from "../../scripts/keeper/liquidation";
import { createLogger, type Fields } from "../../scripts/keeper/log";
import { keeperStep, openSession, runKeeper, type Session, type StepReport } from "../../scripts/keeper/loop";
import { TxSender } from "../../scripts/keeper/sender";
import type { OptionMarket } from "../../typechain-types";
import { hardhatWallet, listenOnLoopback, tempDir, waitFor } from "./e2e";
import { deploymentOf } from "./sdk";
import {
  DAY,
  deployOptionsSystem,
  deployOptionsSystemWithoutFunding,
  fromNow,
  listSeries,
  tradeOption,
} from "./options";
import { assetId, setFeedPrice } from "./oracles";
import { mineAt, refreshFeeds, trade } from "./perps";
import { MarginMode, WAD, openAccount, wad, type System } from "./system";

export interface LogLine {
  /** When the line was written (ISO 8601). */
  ts: string;
  level: string;
  msg: string;
  fields: Fields;
}

export interface InProcessKeeper {
  session: Session;
  /** Every line the keeper logged, parsed. */
  lines: LogLine[];
  /** One keeper step at the latest block (stopping between actions once `signal` aborts). */
  step(signal?: AbortSignal): Promise<StepReport>;
}

/** The deployment file the keeper would read for `sys` (governance: its AccessManager and a timelock). */
export async function keeperDeploymentOf(sys: System & { options: OptionMarket }): Promise<Deployment> {
  const address = (c: { getAddress(): Promise<string> }): Promise<string> => c.getAddress();
  const timelock = await ethers.deployContract("TimelockController", [0, [], [], sys.deployer.address]);
  return {
    chainId: Number((await ethers.provider.getNetwork()).chainId),
    network: "hardhat",
    deploymentId: "in-process",
    startBlock: 0,
    nativeAsset: "ETH",
    quoteToken: "USDC",
    contracts: {
      ...(await deploymentOf(sys)).contracts,
      optionMarket: await address(sys.options),
      accessManager: await address(sys.manager),
      timelock: await address(timelock),
    },
    tokens: { USDC: await address(sys.usdc), WETH: await address(sys.weth), WBTC: await address(sys.wbtc) },
    feeds: {
      USDC: await address(sys.feeds.USDC),
      ETH: await address(sys.feeds.ETH),
      BTC: await address(sys.feeds.BTC),
    },
    volatilityFeeds: { ETH: await address(sys.volFeeds.ETH), BTC: await address(sys.volFeeds.BTC) },
    sequencerUptimeFeed: null,
    markets: { ETH: Number(sys.markets.ETH), BTC: Number(sys.markets.BTC) },
  };
}

/**
 * The keeper (Hardhat's account #4) ready to bid without a session: its own CROSS account with 50,000
 * USDC approved for the auction, and the sender and contracts `assessBid` needs. Sends only those two
 * transactions (no timelock deployed, unlike `keeperDeploymentOf`), so a fixture's blocks and timestamps
 * stay as it left them.
 */
export async function keeperBidder(sys: System & { options: OptionMarket }): Promise<{
  keeperSigner: HardhatEthersSigner;
  bidder: bigint;
  contracts: Contracts;
  sender: TxSender;
}> {
  const key = hardhatWallet(4);
  const keeperSigner = await ethers.getSigner(key.address);
  const bidder = await openAccount(sys, keeperSigner, MarginMode.CROSS, [[sys.usdc, 50_000n * 10n ** 6n]]);
  await sys.accounts.connect(keeperSigner).approve(sys.auction, bidder);
  const chainId = Number((await ethers.provider.getNetwork()).chainId);
  const provider = new Eip1193JsonRpcProvider(network.provider, chainId);
  const wallet = new Wallet(key.privateKey, provider);
  const sender = new TxSender(wallet, provider, chainId, createLogger({ level: "error", write: () => {} }), {
    maxGasPriceWei: 10n ** 12n,
    dryRun: false,
    txTimeoutMs: 10_000,
    pollMs: 10,
  });
  const contracts = connectContracts((await deploymentOf(sys)) as Deployment, wallet);
  return { keeperSigner, bidder, contracts, sender };
}

/** The keeper ready to bid, as `keeperBidder` sets it up. */
export type KeeperBidder = Awaited<ReturnType<typeof keeperBidder>>;

/** `assessBid`'s plan for the keeper's bid on `victim` in the test system (USDC quote, ETH native); it must not skip. */
export async function keeperBidPlan(sys: System, keeper: KeeperBidder, victim: bigint): Promise<BidPlan> {
  const assessment = await assessBid(keeper.contracts, keeper.sender, {
    accountId: victim,
    keeperAccountId: keeper.bidder,
    quoteToken: await sys.usdc.getAddress(),
    quoteUnit: 10n ** 12n,
    nativeAssetId: assetId("ETH"),
  });
  if (!("plan" in assessment)) expect.fail(`skipped: ${assessment.skip}`);
  return assessment.plan;
}

/**
 * The keeper's whole bid on `victim`, predicted and then taken: `keeperBidPlan`, then `bidAndClose` for
 * the whole slice in a block at the second the plan was read, so the discount, funding and theta it
 * priced are the ones the bid executes at. `realisedUsd` is the change in the bidder's equity at mark.
 */
export async function predictedAndRealisedBid(
  sys: System,
  keeper: KeeperBidder,
  victim: bigint,
): Promise<{ plan: BidPlan; realisedUsd: bigint }> {
  const now = await time.latest();
  const plan = await keeperBidPlan(sys, keeper, victim);
  const before = (await sys.engine.health(keeper.bidder)).equityMark;
  await time.setNextBlockTimestamp(now);
  await sys.auction.connect(keeper.keeperSigner).bidAndClose(victim, keeper.bidder, WAD, plan.quote.payment);
  const after = (await sys.engine.health(keeper.bidder)).equityMark;
  return { plan, realisedUsd: after - before };
}

/** Alice, Bob and Carol long 10 ETH each on 5,000 USDC (later fills pay more skew); ETH then at 2,600. */
export async function threeLongsUnderWater() {
  const sys = await deployOptionsSystemWithoutFunding();
  const ids: bigint[] = [];
  for (const signer of [sys.alice, sys.bob, sys.carol]) {
    const id = await openAccount(sys, signer, MarginMode.CROSS, [[sys.usdc, 5_000n * 10n ** 6n]]);
    await trade(sys.perps, signer, id, sys.markets.ETH, wad("10"));
    ids.push(id);
  }
  await setFeedPrice(sys.feeds.ETH, "2600");
  return { sys, ids };
}

/** Alice long 10 ETH on 5,000 USDC, ETH then at 2,600 (below maintenance, solvent), her auction started. */
export async function aliceLongInAuction(sys: System): Promise<bigint> {
  const victim = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * 10n ** 6n]]);
  await trade(sys.perps, sys.alice, victim, sys.markets.ETH, wad("10"));
  await setFeedPrice(sys.feeds.ETH, "2600");
  await sys.auction.startAuction(victim);
  return victim;
}

/** Alice's long 10 ETH absorbed by the backstop at 2,600 (the auction ran its duration). */
export async function absorbedLong() {
  const sys = await deployOptionsSystem();
  const victim = await aliceLongInAuction(sys);
  await time.increase((await sys.auction.params()).duration);
  await refreshFeeds(sys);
  await sys.auction.absorb(victim);
  return { sys, backstop: await sys.auction.backstopAccountId() };
}

/**
 * An ETH-3000 call, a day long, that Carol wrote 0.01 of in each of `holders` accounts, expired; ETH's
 * first round after expiry at 3,100 (the keeper's settlement round). `tradeBlocks[i]` is the block of
 * writer i's trade: a keeper started at `--start-block` `tradeBlocks[i] + 1` knows only the writers after i.
 */
export async function expiredCallWritten(holders: number) {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const writers: bigint[] = [];
  const tradeBlocks: number[] = [];
  for (let i = 0; i < holders; i++) {
    const account = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 1_000n * 10n ** 6n]]);
    await tradeOption(sys.options, sys.carol, account, call, -wad("0.01"));
    writers.push(account);
    tradeBlocks.push(await ethers.provider.getBlockNumber());
  }
  await mineAt(sys, expiry);
  await setFeedPrice(sys.feeds.ETH, "3100");
  return { sys, call, writers, tradeBlocks };
}

/** The accounts among `accounts` whose position in option series `series` is still open. */
export async function stillOpen(
  sys: System & { options: OptionMarket },
  series: bigint,
  accounts: readonly bigint[],
): Promise<bigint[]> {
  const open: bigint[] = [];
  for (const a of accounts) if ((await sys.options.positionSize(a, series)) !== 0n) open.push(a);
  return open;
}

/** `expiredCallWritten` with one holder, as one fixture (one snapshot) for every file that loads it. */
export const oneExpiredCall = () => expiredCallWritten(1);

/** Keeper flags under which no bid pays (a pass starts auctions and sends nothing else for them) and no race jitter is waited. */
export const QUIET_KEEPER = ["--min-profit-usd", "1000000", "--race-jitter-ms", "0"];

/**
 * Waits for the keeper's pass on `block` ("health checked" at that block, logged once the block is its
 * anchor): a pass still running on an older block when `block` was mined is no proof (review round 133).
 */
export async function waitForPassOn(lines: LogLine[], block: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    "the keeper's pass on the new block",
    () => lines.some((l) => l.msg === "health checked" && l.fields.block === block),
    timeoutMs,
  );
}

/**
 * Opens the keeper's session on `sys` (creating and approving its bidder account) with `args`, signing
 * with `key` (Hardhat's account #4 unless given: another account is a competing keeper). `random` is
 * its race jitter's random source (`Math.random` unless given). `chain` is what it sends its JSON-RPC
 * requests to (Hardhat's in-process provider unless given: a wrapper can hold or inspect them).
 */
export async function startInProcessKeeper(
  sys: System & { options: OptionMarket },
  args: string[] = [],
  key: string = hardhatWallet(4).privateKey,
  random?: () => number,
  chain: Eip1193Like = network.provider,
): Promise<InProcessKeeper> {
  const cfg = parseKeeperArgs(["--rpc", "http://in-process", "--deployment", "(in memory)", ...args], {
    KEEPER_PRIVATE_KEY: key,
  });
  if (cfg === "help") throw new Error("unreachable");
  const deployment = await keeperDeploymentOf(sys);
  const provider = new Eip1193JsonRpcProvider(chain, deployment.chainId);
  const wallet = new Wallet(key, provider);
  const lines: LogLine[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line) as LogLine) });
  const sender = new TxSender(wallet, provider, deployment.chainId, log, {
    maxGasPriceWei: cfg.maxGasPriceWei,
    dryRun: cfg.dryRun,
    txTimeoutMs: cfg.txTimeoutMs,
    raceJitterMs: cfg.raceJitterMs,
    random,
    pollMs: 10,
  });
  const session = await openSession(cfg, provider, wallet, sender, log, deployment);
  if (!session) throw new Error("the deployment is not on the chain");
  return {
    session,
    lines,
    async step(signal) {
      const head = await provider.getBlockNumber();
      const block = await provider.getBlock(head);
      return keeperStep(session, head, BigInt(block!.timestamp), { cfg, sender, log, signal });
    },
  };
}

/**
 * The functions of the in-process keeper's transactions (Hardhat's account #4, `startInProcessKeeper`'s
 * default key) mined in blocks (from, to], in order, each with its block.
 */
export async function minedKeeperCalls(
  sys: System & { options: OptionMarket },
  from: number,
  to: number,
): Promise<{ fn: string; block: number }[]> {
  const keeper = hardhatWallet(4).address;
  const interfaces = [sys.auction.interface, sys.options.interface, sys.perps.interface];
  const out: { fn: string; block: number }[] = [];
  for (let n = from + 1; n <= to; n++) {
    for (const t of (await ethers.provider.getBlock(n, true))!.prefetchedTransactions) {
      if (t.from !== keeper) continue;
      const fn = interfaces.map((i) => i.parseTransaction({ data: t.data })?.name).find(Boolean) ?? t.data;
      out.push({ fn, block: n });
    }
  }
  return out;
}

/** One JSON-RPC request the bridge received; for an eth_call or eth_estimateGas, its calldata too. */
export interface BridgedCall {
  method: string;
  params: unknown[];
  /** The call's 4-byte selector and calldata (eth_call, eth_estimateGas). */
  selector?: string;
  data?: string;
}

/** What a bridge answers instead of the chain (undefined: the chain's answer). */
export type Misbehaviour =
  | { error: { code: number; message: string; data?: unknown } }
  | { status: number; html: string }
  | { delayMs: number };

/**
 * A JSON-RPC server over HTTP on 127.0.0.1 answering from the in-process chain, so that the keeper's
 * own code, which reads a URL (`runKeeper`, `createProvider`), runs against it; `hook` may answer a
 * request otherwise (an error answer, an HTML page, a delay), and `calls` records every request.
 */
export async function startRpcBridge(
  hook: (call: BridgedCall, calls: BridgedCall[]) => Misbehaviour | undefined = () => undefined,
): Promise<{ url: string; calls: BridgedCall[]; close(): Promise<void> }> {
  const calls: BridgedCall[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const request = JSON.parse(Buffer.concat(chunks).toString()) as {
        id: number;
        method: string;
        params?: unknown[];
      };
      const { id, method, params = [] } = request;
      const call: BridgedCall = { method, params };
      if (method === "eth_call" || method === "eth_estimateGas") {
        call.data = callDataOf(params);
        call.selector = call.data.slice(0, 10);
      }
      calls.push(call);
      const bad = hook(call, calls);
      if (bad && "html" in bad) {
        res.writeHead(bad.status, { "content-type": "text/html" }).end(bad.html);
        return;
      }
      if (bad && "delayMs" in bad) {
        let abandoned = false;
        res.on("close", () => (abandoned = true));
        await new Promise((resolve) => setTimeout(resolve, bad.delayMs));
        // A client that timed out has gone: answering would run its call on the chain during a later
        // test (a counted healthMany in another file's pass).
        if (abandoned) return;
      }
      let body: unknown;
      if (bad && "error" in bad) body = { jsonrpc: "2.0", id, error: bad.error };
      else {
        try {
          body = { jsonrpc: "2.0", id, result: await network.provider.request({ method, params }) };
        } catch (e) {
          const error = e as { code?: number; message?: string; data?: unknown };
          body = {
            jsonrpc: "2.0",
            id,
            error: { code: error.code ?? -32603, message: error.message, data: error.data },
          };
        }
      }
      if (!res.destroyed)
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
  });
  return { ...(await listenOnLoopback(server)), calls };
}

/**
 * Runs `run` with `hook` called, and awaited, before every request the in-process chain answers (with
 * the request's method and params); a hook that throws answers the request with its error.
 */
export async function onRequests<T>(
  hook: (method: string, params: unknown[]) => unknown,
  run: () => Promise<T>,
): Promise<T> {
  const original = network.provider.request.bind(network.provider);
  network.provider.request = (async (args: { method: string; params?: unknown[] }) => {
    await hook(args.method, args.params ?? []);
    return original(args);
  }) as typeof network.provider.request;
  try {
    return await run();
  } finally {
    network.provider.request = original;
  }
}

/** `onRequests` for the requests of one `method`. */
export function onRequest<T>(
  method: string,
  hook: (params: unknown[]) => unknown,
  run: () => Promise<T>,
): Promise<T> {
  return onRequests((m, params) => (m === method ? hook(params) : undefined), run);
}

/**
 * Runs `passes` keeper steps and returns how many `healthMany` calls each made (eth_calls to the engine
 * whose calldata starts with its selector); `check` sees each step's report.
 */
export async function healthManyCallsPerPass(
  sys: System,
  keeper: InProcessKeeper,
  passes: number,
  check: (report: StepReport) => void = () => {},
): Promise<number[]> {
  const healthMany = sys.engine.interface.getFunction("healthMany").selector;
  let calls = 0;
  const perPass: number[] = [];
  await onRequest(
    "eth_call",
    (params) => {
      if (callDataOf(params).startsWith(healthMany)) calls += 1;
    },
    async () => {
      for (let pass = 1; pass <= passes; pass++) {
        calls = 0;
        check(await keeper.step());
        perPass.push(calls);
      }
    },
  );
  return perPass;
}

/** The calldata of an eth_call or eth_estimateGas request's params. */
export function callDataOf(params: unknown[]): string {
  const request = (params[0] ?? {}) as { data?: string; input?: string };
  return request.data ?? request.input ?? "";
}

/**
 * The keeper CLI's own loop (`runKeeper`) in process, polling every 20 ms through an RPC bridge to the
 * in-process chain, with `sys` written as its deployment file: its log lines, the bridge's calls, and
 * `stop`, which ends the loop and cleans up (call it in a `finally`).
 */
export async function runKeeperOverBridge(
  sys: System & { options: OptionMarket },
  opts: { privateKey: string; args?: string[] },
): Promise<{ lines: LogLine[]; bridge: Awaited<ReturnType<typeof startRpcBridge>>; stop(): Promise<void> }> {
  const scratch = tempDir("xmargin-keeper-");
  const deploymentFile = path.join(scratch.dir, "deployment.json");
  fs.writeFileSync(deploymentFile, JSON.stringify(await keeperDeploymentOf(sys)));
  const bridge = await startRpcBridge();
  const lines: LogLine[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line) as LogLine) });
  const cfg = parseKeeperArgs(
    ["--rpc", bridge.url, "--deployment", deploymentFile, "--poll-ms", "20", ...(opts.args ?? [])],
    { KEEPER_PRIVATE_KEY: opts.privateKey },
  );
  if (cfg === "help") throw new Error("unreachable");
  const controller = new AbortController();
  const running = runKeeper(cfg, log, controller.signal);
  return {
    lines,
    bridge,
    async stop() {
      controller.abort();
      await running;
      await bridge.close();
      scratch.remove();
    },
  };
}

/**
 * Runs `step` with the keeper's gas estimate of every `startAuctions` batch of at least `minSize`
 * accounts answered by `answer` (return a number, or throw as the node would); other estimates as the
 * chain gives them.
 */
export async function withStartBatchEstimate<T>(
  sys: System,
  minSize: number,
  answer: () => Promise<bigint>,
  step: () => Promise<T>,
): Promise<T> {
  const estimate = TxSender.prototype.estimateGas;
  TxSender.prototype.estimateGas = async function (this: TxSender, request) {
    const parsed = sys.auction.interface.parseTransaction({ data: request.data });
    if (parsed?.name === "startAuctions" && (parsed.args[0] as bigint[]).length >= minSize) return answer();
    return estimate.call(this, request);
  };
  try {
    return await step();
  } finally {
    TxSender.prototype.estimateGas = estimate;
  }
}

/**
 * Runs `step` with a rival starting the auctions of `rivalIds` at the keeper's first gas estimate of a
 * start batch: between its health read and its send. Returns whether the race ran.
 */
export async function withRivalStartAtEstimate(
  sys: System,
  rivalIds: bigint[],
  step: () => Promise<unknown>,
): Promise<boolean> {
  const selector = sys.auction.interface.getFunction("startAuctions").selector;
  let raced = false;
  await onRequests(async (method, params) => {
    if (raced || method !== "eth_estimateGas" || !callDataOf(params).startsWith(selector)) return;
    raced = true;
    await sys.auction.connect(sys.deployer).startAuctions(rivalIds);
  }, step);
  return raced;
}

/** The accounts each `AuctionStarted` transaction on `sys` started, transaction by transaction. */
export async function startTransactions(sys: System): Promise<bigint[][]> {
  const byTx = new Map<string, bigint[]>();
  for (const e of await sys.auction.queryFilter(sys.auction.filters.AuctionStarted()))
    byTx.set(e.transactionHash, [...(byTx.get(e.transactionHash) ?? []), e.args.accountId]);
  return [...byTx.values()];
}

/** Runs `step` with every raw `startAuctions` transaction refused by the node for want of funds. */
export function withStartBatchesUnfunded<T>(sys: System, step: () => Promise<T>): Promise<T> {
  const selector = sys.auction.interface.getFunction("startAuctions").selector;
  return onRequest(
    "eth_sendRawTransaction",
    (params) => {
      if (!Transaction.from(params[0] as string).data.startsWith(selector)) return;
      throw Object.assign(new Error("insufficient funds for gas * price + value"), { code: -32000 });
    },
    step,
  );
}

/**
 * Has the keeper session's `healthMany` answer through `endpoint` (throw to fail the call; `real` asks
 * the chain), as an endpoint with limits would without an HTTP bridge; returns each call's size.
 */
export function stubHealthMany(
  keeper: InProcessKeeper,
  endpoint: (ids: bigint[], real: (ids: bigint[]) => Promise<unknown>) => Promise<unknown>,
): number[] {
  const engine = keeper.session.contracts.engine;
  const sizes: number[] = [];
  const healthMany = async (ids: bigint[]) => {
    sizes.push(ids.length);
    return endpoint(ids, (batch) => engine.healthMany(batch));
  };
  keeper.session.contracts.engine = new Proxy(engine, {
    get: (target, key) => (key === "healthMany" ? healthMany : Reflect.get(target, key)),
  });
  return sizes;
}

/** Mines a block whose base fee is `gwei`: an in-process keeper prices its next pass's gas at it. */
export async function mineAtBaseFee(gwei: bigint): Promise<void> {
  await network.provider.request({
    method: "hardhat_setNextBlockBaseFeePerGas",
    params: ["0x" + (gwei * 10n ** 9n).toString(16)],
  });
  await network.provider.request({ method: "evm_mine", params: [] });
}

/** What `keeperSendRecorder` saw of the keeper's send: its estimate, the gas limit, calldata and hash. */
export interface RecordedSend {
  /** Every estimate of the function, sent or not, in order, with the calldata estimated. */
  estimates: { data: string; gas: bigint }[];
  estimate?: bigint;
  limit?: bigint;
  data?: string;
  hash?: string;
}

/**
 * A JSON-RPC chain for `startInProcessKeeper` (its `chain`) that records the keeper's first transaction
 * calling `fn` of `iface`: the gas limit it was sent with, its calldata and hash, and the last
 * `eth_estimateGas` of that function before it (the estimate the limit was padded from), and every
 * estimate of the function (`estimates`: those of a call priced and not sent too). `before`, when
 * given, runs once just before that transaction reaches the node: after the keeper's estimate, before
 * its block (a volatility round crossing the repricing line, say).
 */
export function keeperSendRecorder(
  iface: Interface,
  fn: string,
  before?: () => Promise<unknown>,
): { chain: Eip1193Like; seen: RecordedSend } {
  const selector = iface.getFunction(fn)!.selector;
  const seen: RecordedSend = { estimates: [] };
  let lastEstimate: bigint | undefined;
  let armed = true;
  const chain = {
    async request(req: { method: string; params?: unknown[] }): Promise<unknown> {
      const first = req.params?.[0] as { data?: string; input?: string } | string | undefined;
      if (req.method === "eth_sendRawTransaction" && typeof first === "string") {
        const sent = Transaction.from(first);
        if (armed && sent.data.startsWith(selector)) {
          armed = false;
          Object.assign(seen, {
            estimate: lastEstimate,
            limit: sent.gasLimit,
            data: sent.data,
            hash: sent.hash!,
          });
          await before?.();
        }
      }
      const answer = await network.provider.request(req);
      const data = typeof first === "object" ? (first.data ?? first.input) : undefined;
      if (req.method === "eth_estimateGas" && data?.startsWith(selector)) {
        lastEstimate = BigInt(answer as string);
        seen.estimates.push({ data, gas: lastEstimate });
      }
      return answer;
    },
  };
  return { chain, seen };
}
