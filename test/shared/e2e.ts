/**
 * End-to-end helpers: real processes on 127.0.0.1 (a `hardhat node`, the deploy script, the keeper), a
 * flaky JSON-RPC proxy, and the bookkeeping to stop every process the tests started, also when a test
 * fails or the test process dies (each child leads its own process group, killed as a group).
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { HDNodeWallet, JsonRpcProvider, type Wallet } from "ethers";
import type { Deployment } from "../../deploy/deployment";
import { seedDemo, type SeedResult } from "../../scripts/lib/seed";

export const REPO_ROOT = path.resolve(__dirname, "../..");
const HARDHAT_CLI = require.resolve("hardhat/internal/cli/cli.js", { paths: [REPO_ROOT] });

/** Hardhat's default accounts (the node's unlocked ones): #0 deployer, #1 alice, #2 bob, #3 carol, #4 keeper, #5 lp. */
export function hardhatWallet(index: number): HDNodeWallet {
  return HDNodeWallet.fromPhrase(
    "test test test test test test test test test test test junk",
    undefined,
    `m/44'/60'/0'/0/${index}`,
  );
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Bounds of the waits on a process's start, safety nets only (each wait ends on its condition). Review
 * round 133 measured, on 2 cores running three mocha workers and more: a keeper's start to its session
 * (ts-node transpiles it first) 21 s, a `hardhat run` deploy 43 s: 1.4× and 2.1× under the 30 s and 90 s
 * bounds they had. A failure still names what it waited for.
 */
export const KEEPER_START_MS = 60_000;
export const HARDHAT_RUN_MS = 180_000;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `fn` until it returns a value other than undefined/false, or throws after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      lastError = error;
    }
    await sleep(everyMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ""}`,
  );
}

/** A child process with its output kept (the tail for failure reports, JSON lines for assertions). */
export class Proc {
  readonly lines: string[] = [];
  private tail = "";
  readonly exited: Promise<number | null>;
  exitCode: number | null | undefined = undefined;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    const collect = (chunk: Buffer) => {
      const text = chunk.toString();
      this.tail = (this.tail + text).slice(-20_000);
      for (const line of text.split("\n")) if (line.trim()) this.lines.push(line);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    this.exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        this.exitCode = code ?? (signal ? null : code);
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  output(): string {
    return this.tail;
  }

  /** JSON lines printed so far (other lines skipped). */
  json<T = { ts: string; level: string; msg: string; fields: Record<string, unknown> }>(): T[] {
    return this.lines.flatMap((line) => {
      try {
        return [JSON.parse(line) as T];
      } catch {
        return [];
      }
    });
  }

  /** Sends `signal` to the process itself (graceful shutdown). */
  signal(signal: NodeJS.Signals): void {
    if (this.running && this.child.pid) process.kill(this.child.pid, signal);
  }

  /** Kills the whole process group at once. */
  kill(): void {
    if (!this.running || !this.child.pid) return;
    try {
      process.kill(-this.child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** Every process started through it; `stopAll` in an `after` hook. */
export class Processes {
  private readonly procs: Proc[] = [];
  private readonly onExit = () => this.procs.forEach((p) => p.kill());

  constructor() {
    // If the test process itself dies, take the children with it.
    process.once("exit", this.onExit);
  }

  spawn(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      detached: true, // own process group: kill(-pid) reaches anything it spawns
      stdio: ["ignore", "pipe", "pipe"],
    });
    const proc = new Proc(name, child);
    this.procs.push(proc);
    return proc;
  }

  /** Kills the running processes called `name` (e.g. a test's keeper after it failed). */
  kill(name: string): void {
    this.procs.filter((p) => p.name === name).forEach((p) => p.kill());
  }

  async stopAll(): Promise<void> {
    for (const p of this.procs) p.kill();
    await Promise.all(this.procs.map((p) => Promise.race([p.exited, sleep(5_000)])));
    process.removeListener("exit", this.onExit);
  }

  /** The output tails of every process, for a failed test's report (nodes are chatty: less of theirs). */
  report(): string {
    return this.procs
      .map((p) => {
        const tail = p.name.startsWith("hardhat node") ? p.output().slice(-2_000) : p.output();
        return `----- ${p.name} (exit ${String(p.exitCode)}) -----\n${tail}`;
      })
      .join("\n");
  }
}

/** Starts `hardhat node` on 127.0.0.1:`port` and waits until it answers JSON-RPC. */
export async function startNode(procs: Processes, port: number, timeoutMs = 60_000): Promise<Proc> {
  const node = procs.spawn(`hardhat node :${port}`, [
    HARDHAT_CLI,
    "node",
    "--hostname",
    "127.0.0.1",
    "--port",
    String(port),
  ]);
  await waitFor(
    `hardhat node on port ${port}`,
    async () => {
      if (!node.running) throw new Error(`hardhat node exited: ${node.output()}`);
      return (await rpc(port, "eth_blockNumber")) !== undefined;
    },
    timeoutMs,
    200,
  );
  return node;
}

/** One raw JSON-RPC call (no provider state), or undefined when the node does not answer. */
export async function rpc(port: number, method: string, params: unknown[] = []): Promise<unknown> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    return ((await res.json()) as { result: unknown }).result;
  } catch {
    return undefined;
  }
}

export interface DeployRun {
  msg: string;
  chainId: number;
  deploymentId: string;
  journal: "none" | "kept" | "wiped";
  blocks: number;
  file: string;
}

/** Runs `hardhat run scripts/deploy.ts --network localhost` against the node on `port`. */
export async function runDeploy(
  procs: Processes,
  opts: { port: number; deploymentId: string; deploymentFile: string },
  timeoutMs = HARDHAT_RUN_MS,
): Promise<DeployRun> {
  const deploy = procs.spawn(
    `deploy ${opts.deploymentId}`,
    [HARDHAT_CLI, "run", "--no-compile", "--network", "localhost", "scripts/deploy.ts"],
    {
      HARDHAT_VAR_LOCALHOST_RPC_URL: `http://127.0.0.1:${opts.port}`,
      XMARGIN_DEPLOYMENT_ID: opts.deploymentId,
      XMARGIN_DEPLOYMENT_FILE: opts.deploymentFile,
      XMARGIN_QUIET: "1",
    },
  );
  const code = await Promise.race([deploy.exited, sleep(timeoutMs).then(() => "timeout" as const)]);
  if (code !== 0) {
    deploy.kill();
    throw new Error(`deploy failed (${String(code)}):\n${deploy.output()}`);
  }
  const line = deploy.json<DeployRun>().find((l) => l.msg === "deployed");
  if (!line) throw new Error(`deploy printed no result:\n${deploy.output()}`);
  return line;
}

/** Starts the keeper CLI as its own Node process (TypeScript through ts-node, types not checked). */
export function startKeeper(
  procs: Processes,
  opts: { rpcUrl: string; deploymentFile: string; key: Wallet | HDNodeWallet; args?: string[] },
): Proc {
  return procs.spawn(
    "keeper",
    [
      "-r",
      "ts-node/register/transpile-only",
      "scripts/keeper/main.ts",
      "--rpc",
      opts.rpcUrl,
      "--deployment",
      opts.deploymentFile,
      ...(opts.args ?? []),
    ],
    { KEEPER_PRIVATE_KEY: opts.key.privateKey },
  );
}

/** Resolves once the keeper logged `msg` (after `from` lines), returning that log entry. */
export function waitForLog(keeper: Proc, msg: string, timeoutMs: number, from = 0) {
  return waitFor(
    `keeper log "${msg}"`,
    () => {
      if (!keeper.running) throw new Error(`keeper exited (${String(keeper.exitCode)}):\n${keeper.output()}`);
      return keeper
        .json()
        .slice(from)
        .find((l) => l.msg === msg);
    },
    timeoutMs,
  );
}

export interface FlakyProxy {
  url: string;
  stats: { requests: number; failedBeforeForwarding: number; failedAfterForwarding: number };
  close(): Promise<void>;
}

/**
 * A JSON-RPC proxy on 127.0.0.1 that fails every `failEvery`-th request with HTTP 503 (not forwarded),
 * and answers the first eth_sendRawTransaction with HTTP 502 *after* forwarding it: the transaction
 * is in the node, the client only sees an error (a lost response, the case that causes double sends).
 */
export async function startFlakyProxy(targetPort: number, failEvery: number): Promise<FlakyProxy> {
  const stats = { requests: 0, failedBeforeForwarding: 0, failedAfterForwarding: 0 };
  let sendFailed = false;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString();
      const n = ++stats.requests;
      let method = "";
      try {
        method = (JSON.parse(body) as { method?: string }).method ?? "";
      } catch {
        // batch or garbage: forwarded as is
      }
      const loseAnswer = method === "eth_sendRawTransaction" && !sendFailed;
      if (!loseAnswer && n % failEvery === 0) {
        stats.failedBeforeForwarding++;
        res.writeHead(503, { "content-type": "text/plain" }).end("flaky proxy: unavailable");
        return;
      }
      try {
        const upstream = await fetch(`http://127.0.0.1:${targetPort}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        const text = await upstream.text();
        if (loseAnswer) {
          sendFailed = true;
          stats.failedAfterForwarding++;
          res.writeHead(502, { "content-type": "text/plain" }).end("flaky proxy: bad gateway");
          return;
        }
        res.writeHead(upstream.status, { "content-type": "application/json" }).end(text);
      } catch {
        res.writeHead(502, { "content-type": "text/plain" }).end("flaky proxy: upstream down");
      }
    });
  });
  return { ...(await listenOnLoopback(server)), stats };
}

/** Starts `server` on a free port of 127.0.0.1: its URL, and a close that drops open connections. */
export async function listenOnLoopback(
  server: http.Server,
): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A scratch directory removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A provider for the node whose accounts are unlocked (eth_sendTransaction signers). */
export function nodeProvider(port: number): JsonRpcProvider {
  return new JsonRpcProvider(`http://127.0.0.1:${port}`, 31337, { staticNetwork: true, cacheTimeout: -1 });
}

/** One `hardhat node` shared by the tests of a describe block (`nodeForSuite`). */
export class SuiteNode {
  /** Every process the block starts; all stopped in its `after`, a keeper after each test. */
  readonly procs = new Processes();
  private readonly scratch: { dir: string; remove(): void };
  /** Where the deploy script writes the deployment (in the scratch directory). */
  readonly deploymentFile: string;
  /** Set in `before`: the node's port, its Ignition deployment id, the node and a provider for it. */
  port = 0;
  deploymentId = "";
  node!: Proc;
  provider!: JsonRpcProvider;

  constructor(readonly name: string) {
    this.scratch = tempDir(`xmargin-${name}-`);
    this.deploymentFile = path.join(this.scratch.dir, "deployment.json");
  }

  /** A scratch directory, removed in `after`. */
  get dir(): string {
    return this.scratch.dir;
  }

  /** `http://127.0.0.1:<port>`. */
  get rpcUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Runs the deploy script against the node (`runDeploy`). */
  deploy(): Promise<DeployRun> {
    return runDeploy(this.procs, this);
  }

  /** Seeds the demo accounts (`seedDemo`) with the node's unlocked accounts 0, 1, 2, 3 and 5. */
  async seed(deployment: Deployment): Promise<SeedResult> {
    const [deployer, alice, bob, carol, lp] = await Promise.all(
      [0, 1, 2, 3, 5].map((i) => this.provider.getSigner(i)),
    );
    return seedDemo(deployment, { deployer, alice, bob, carol, lp });
  }

  async start(): Promise<void> {
    this.port = await freePort();
    this.deploymentId = `${this.name}-${process.pid}-${this.port}`;
    this.node = await startNode(this.procs, this.port);
    this.provider = nodeProvider(this.port);
  }

  async stop(): Promise<void> {
    this.provider?.destroy();
    await this.procs.stopAll();
    this.scratch.remove();
    if (this.deploymentId) {
      const journal = path.join(REPO_ROOT, "deploy", "deployments", this.deploymentId);
      fs.rmSync(journal, { recursive: true, force: true });
    }
  }
}

/**
 * Registers the hooks of a describe block whose tests share one `hardhat node`: started in `before`; a
 * failed test prints every process's output, and a keeper left running is killed (never two keepers on
 * one key); `after` stops everything and removes the scratch directory and the Ignition journal.
 */
export function nodeForSuite(name: string): SuiteNode {
  const suite = new SuiteNode(name);
  before(() => suite.start());
  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(suite.procs.report());
    suite.procs.kill("keeper");
  });
  after(() => suite.stop());
  return suite;
}
