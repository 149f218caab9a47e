/**
 * What a failed read says, for the keeper's logs and step reports: the protocol's custom error by name
 * with its readable message (decoded with the SDK's ABIs: `StalePrice`, `PriceOutOfBounds`,
 * `IncompleteRound`, ...), else what ethers decoded (`Error(string)`, a panic) or the revert's selector,
 * else "out of gas" or the node's short message. Pure: no I/O.
 */
import { decodeRevertData, findRevertData } from "../../sdk/src/errors";
import { isOutOfGasError } from "./retry";

export interface RevertReason {
  /** The custom error's name ("StalePrice"), "Error" or "Panic", "OutOfGas", or the error's code. */
  error: string;
  /** The revert data's 4-byte selector, when the node returned revert data. */
  selector?: string;
  message: string;
}

/** A read the keeper skipped this pass because it reverts on its own (an account's health, a series). */
export interface Skipped<K> {
  key: K;
  reason: RevertReason;
}

export function revertReason(error: unknown): RevertReason {
  const data = findRevertData(error);
  const e = (typeof error === "object" && error !== null ? error : { message: String(error) }) as {
    code?: unknown;
    shortMessage?: string;
    message?: string;
    reason?: string | null;
    revert?: { name?: string } | null;
  };
  if (data !== undefined) {
    const selector = data.slice(0, 10).toLowerCase();
    const decoded = decodeRevertData(data);
    if (decoded) return { error: decoded.name, selector, message: decoded.message };
    return {
      error: e.revert?.name ?? "unknown revert",
      selector,
      message: e.reason ?? shortMessage(e),
    };
  }
  if (isOutOfGasError(error)) return { error: "OutOfGas", message: shortMessage(e) };
  return { error: typeof e.code === "string" ? e.code : "error", message: shortMessage(e) };
}

/**
 * Skipped reads grouped by reason (same error, selector and message: the same stale feed, say), keys in
 * the order they came, so that one log line per pass names every skipped read however many there are.
 */
export function groupByReason<K>(skipped: readonly Skipped<K>[]): (RevertReason & { keys: K[] })[] {
  const groups = new Map<string, RevertReason & { keys: K[] }>();
  for (const { key, reason } of skipped) {
    const id = reasonKey(reason);
    const group = groups.get(id) ?? { ...reason, keys: [] };
    group.keys.push(key);
    groups.set(id, group);
  }
  return [...groups.values()];
}

/** One string per distinct reason: the same error, selector and message (the same stale feed, say). */
export function reasonKey(reason: RevertReason): string {
  return JSON.stringify([reason.error, reason.selector ?? null, reason.message]);
}

/**
 * What an account whose health reverted is marked with, to tell at a later pass whether it fails for
 * another reason (`loop.readHealth`): the revert's selector and first argument, which for the oracle's
 * errors is the feed or asset that failed, else `reasonKey`. Not the rest: a price out of its bounds, two
 * sources' prices or a round id change with every round of the feed, and a key that changed with them
 * bisected every marked account's group at every pass the feed moved (2k − 1 calls for k accounts
 * instead of 1; review round 123).
 */
export function failureKey(error: unknown): string {
  const data = findRevertData(error);
  return data !== undefined ? data.slice(0, 74).toLowerCase() : reasonKey(revertReason(error));
}

function shortMessage(e: { shortMessage?: string; message?: string }): string {
  return e.shortMessage ?? (e.message ?? "").split("\n")[0].slice(0, 300);
}
