/**
 * Account-registry helpers for tests: flooding an owner with accounts minted by someone else (anyone can,
 * with `createAccountFor`), and recording which contract reads a piece of code makes.
 */
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { Interface } from "ethers";
import type { Accounts } from "../../typechain-types";

/**
 * Has `from` mint `count` accounts of `mode` to `owner` (`Accounts.createAccountFor`), one automined
 * transaction each (~2 ms apiece in-process: a few hundred in under a second).
 */
export async function mintAccountsTo(
  accounts: Accounts,
  from: HardhatEthersSigner,
  owner: string,
  count: number,
  mode: 0 | 1 = 0,
): Promise<void> {
  const registry = accounts.connect(from);
  for (let i = 0; i < count; i++) await registry.createAccountFor(owner, mode);
}

/** One eth_call: its target (lower case) and calldata. */
export interface RecordedCall {
  to: string;
  data: string;
}

/**
 * Runs `body` and returns its result with every eth_call sent through Hardhat's provider meanwhile, by
 * ethers' Hardhat provider (the SDK's clients) and by EIP-1193 requests (the in-process keeper) alike.
 */
export async function recordCalls<T>(body: () => Promise<T>): Promise<{ result: T; calls: RecordedCall[] }> {
  const provider = network.provider as unknown as {
    request(args: { method: string; params?: unknown[] }): Promise<unknown>;
    send(method: string, params?: unknown[]): Promise<unknown>;
  };
  const calls: RecordedCall[] = [];
  const note = (method: string, params: unknown[] | undefined) => {
    if (method !== "eth_call") return;
    const tx = (params?.[0] ?? {}) as { to?: string; data?: string; input?: string };
    calls.push({ to: (tx.to ?? "").toLowerCase(), data: tx.data ?? tx.input ?? "0x" });
  };
  const request = provider.request.bind(provider);
  const send = provider.send.bind(provider);
  provider.request = (args) => {
    note(args.method, args.params);
    return request(args);
  };
  provider.send = (method, params) => {
    note(method, params);
    return send(method, params);
  };
  try {
    return { result: await body(), calls };
  } finally {
    // The own properties shadowed the adapter's methods: removing them restores the originals.
    delete (provider as Partial<typeof provider>).request;
    delete (provider as Partial<typeof provider>).send;
  }
}

/** How many of `calls` call function `name` of `iface`. */
export function callsTo(calls: readonly RecordedCall[], iface: Interface, name: string): number {
  const selector = iface.getFunction(name)!.selector;
  return calls.filter((c) => c.data.startsWith(selector)).length;
}
