/**
 * Retries with exponential backoff for RPC calls. A revert is an answer, not a failure: only transport
 * and server errors are retried.
 */
import { isError } from "ethers";

/** Delay before retry number `attempt` (1-based): base·2^(attempt−1), capped, with ±25% jitter. */
export function backoffMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp * (0.75 + 0.5 * random()));
}

/** Errors that say nothing about the call itself: the node was unreachable, overloaded or confused. */
export function isTransientError(error: unknown): boolean {
  if (
    isError(error, "CALL_EXCEPTION") ||
    isError(error, "INVALID_ARGUMENT") ||
    isError(error, "INSUFFICIENT_FUNDS")
  ) {
    return false;
  }
  if (isError(error, "NETWORK_ERROR") || isError(error, "SERVER_ERROR") || isError(error, "TIMEOUT"))
    return true;
  if (isError(error, "BAD_DATA") || isError(error, "UNKNOWN_ERROR")) return true;
  const text =
    error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? "")}` : "";
  return /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|socket hang up|fetch failed|other side closed/i.test(text);
}

/**
 * An eth_call the node stopped for gas: its gas cap (geth: 50M by default; Hardhat: the block gas limit)
 * or the caller's limit. Such a call succeeds with less work, so the caller may split it. Nodes word it
 * differently ("out of gas", "gas required exceeds allowance", Hardhat's "run out of gas"); a revert
 * with data (a stale price, a custom error) never mentions gas.
 */
export function isOutOfGasError(error: unknown): boolean {
  if (isTransientError(error)) return false;
  const text =
    error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? "")}` : "";
  return /out of gas|gas required exceeds|gas cap|gas limit reached/i.test(text);
}

export interface RetryOptions {
  attempts?: number;
  baseMs?: number;
  maxMs?: number;
  signal?: AbortSignal;
  isRetryable?: (error: unknown) => boolean;
  onRetry?: (error: unknown, attempt: number, delayMs: number, call?: string) => void;
}

/** Resolves after `ms`, or at once when `signal` aborts (shutdown must not wait out a backoff). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 4;
  const isRetryable = opts.isRetryable ?? isTransientError;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || !isRetryable(error) || opts.signal?.aborted) throw error;
      const delay = backoffMs(attempt, opts.baseMs ?? 100, opts.maxMs ?? 2_000);
      opts.onRetry?.(error, attempt, delay);
      await sleep(delay, opts.signal);
    }
  }
}
