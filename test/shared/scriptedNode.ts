import { Transaction, Wallet, makeError, type JsonRpcProvider, type Log } from "ethers";
import { TxSender } from "../../scripts/keeper/sender";
import { createLogger, type Fields } from "../../scripts/keeper/log";

export const GWEI = 10n ** 9n;
export const KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";
export const TARGET = "0x000000000000000000000000000000000000dEaD";

type CallRequest = { to?: string; data?: string; gasLimit?: bigint };

/**
 * One keeper sender's node, scripted: what it answers is what geth, Nethermind or Erigon answer, and every
 * answer can be replaced. It counts the calls tests are about (eth_call, eth_sendRawTransaction,
 * eth_getTransactionCount and how many of those overlap) and mines nothing unless `receipt` is set.
 */
export class ScriptedNode {
  mined: number;
  pending: number;
  baseFee = GWEI;
  tip = GWEI;
  code = "0x";
  estimate: () => Promise<bigint> = async () => 100_000n;
  call: (request: CallRequest) => Promise<string> = async () => "0x";
  tipAnswer: () => Promise<string> = async () => `0x${this.tip.toString(16)}`;
  /** Answer to a raw transaction: throw to refuse it. */
  onSend: (tx: Transaction) => void = () => {};
  /** The node's answer to a transaction lookup by hash (`getTransaction`): none unless set. */
  lookup: (hash: string) => Promise<unknown> = async () => null;
  /** Receipts: none (the wait times out) unless set. */
  receipt: (hash: string) => unknown = () => null;
  calls: CallRequest[] = [];
  /** Each eth_sendRawTransaction: the decoded transaction. */
  sent: Transaction[] = [];
  countCalls = 0;
  countsInFlight = 0;
  maxCountsInFlight = 0;

  /** `nonce`: the mined and pending counts; each count answers after `countDelayMs`, so overlaps show. */
  constructor(
    nonce = 7,
    private readonly countDelayMs = 5,
  ) {
    this.mined = nonce;
    this.pending = nonce;
  }

  provider(): JsonRpcProvider {
    const node = this;
    return {
      estimateGas: () => node.estimate(),
      async call(request: CallRequest) {
        node.calls.push(request);
        return node.call(request);
      },
      getCode: async () => node.code,
      getBlock: async () => ({ baseFeePerGas: node.baseFee }),
      getTransaction: (hash: string) => node.lookup(hash),
      getTransactionReceipt: async (hash: string) => node.receipt(hash),
      async getTransactionCount(_address: string, tag: string) {
        node.countCalls++;
        node.countsInFlight++;
        node.maxCountsInFlight = Math.max(node.maxCountsInFlight, node.countsInFlight);
        if (node.countDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, node.countDelayMs));
        node.countsInFlight--;
        return tag === "pending" ? node.pending : node.mined;
      },
      async send(method: string, params: unknown[]) {
        if (method === "eth_maxPriorityFeePerGas") return node.tipAnswer();
        if (method === "eth_gasPrice") return `0x${(node.baseFee + node.tip).toString(16)}`;
        if (method === "eth_sendRawTransaction") {
          const tx = Transaction.from(params[0] as string);
          node.sent.push(tx);
          node.onSend(tx);
          return tx.hash;
        }
        throw new Error(`unexpected ${method}`);
      },
    } as unknown as JsonRpcProvider;
  }
}

/** A `TxSender` (chain id 1, a 10 ms poll; stopping on `signal`) on `node`, and the log lines it writes. */
export function scriptedSender(
  node: ScriptedNode,
  opts: { dryRun?: boolean; txTimeoutMs?: number; capGwei?: bigint; signal?: AbortSignal } = {},
) {
  const lines: { level: string; msg: string; fields: Fields }[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) });
  const sender = new TxSender(new Wallet(KEY), node.provider(), 1, log, {
    maxGasPriceWei: (opts.capGwei ?? 100n) * GWEI,
    dryRun: opts.dryRun ?? false,
    txTimeoutMs: opts.txTimeoutMs ?? 50,
    pollMs: 10,
    signal: opts.signal,
  });
  return { sender, lines };
}

/**
 * A node's event log for the scans: `logs` by block, the ranges asked; `refuse` answers a range instead
 * (throw to refuse it, as a hosted RPC refuses a range of too many logs).
 */
export function logNode(refuse: (from: number, to: number) => void = () => {}) {
  const node = {
    logs: [] as { blockNumber: number; topics: string[] }[],
    asked: [] as [number, number][],
    provider: {
      async getLogs(filter: { fromBlock: number; toBlock: number }) {
        node.asked.push([filter.fromBlock, filter.toBlock]);
        // A split that never ends: fail it as an outage (not split further) rather than hang.
        if (node.asked.length > 100) throw new Error("fetch failed: 100 eth_getLogs for one scan");
        refuse(filter.fromBlock, filter.toBlock);
        return node.logs.filter(
          (l) => l.blockNumber >= filter.fromBlock && l.blockNumber <= filter.toBlock,
        ) as unknown as Log[];
      },
    } as unknown as JsonRpcProvider,
  };
  return node;
}

/** What ethers makes of Infura's refusal of an answer of more than 10,000 logs. */
export const tooManyLogs = () => makeError("query returned more than 10000 results", "UNKNOWN_ERROR", {});
