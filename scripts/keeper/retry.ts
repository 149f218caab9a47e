/**
 * Retries with exponential backoff for RPC calls. A revert is an answer, not a failure: only transport
 * and server errors are retried.
 */
import { isError } from "ethers";
import { describeError, type Logger } from "./log";

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
  // A body that is not JSON (a load balancer's HTML page in an HTTP 200): ethers' bodyJson refuses it.
  if (isError(error, "UNSUPPORTED_OPERATION") && error.operation === "bodyJson") return true;
  return /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|socket hang up|fetch failed|other side closed/i.test(
    messageAndCause(error),
  );
}

/**
 * A failure that is not about the request's size: a rate limit or a node behind the others (an error
 * answer `isProviderErrorAnswer` recognises, which RetryingProvider retries and then throws marked
 * `rpcError`: a SERVER_ERROR, a rate limit always, or a TIMEOUT where a lagging node's message mentions
 * one), an HTTP 429 ethers gave up retrying, or its throttling ran past the request's timeout, or a node
 * that cannot be reached. Halving the request cannot help.
 */
export function isThrottledOrUnreachable(error: unknown): boolean {
  if (isError(error, "SERVER_ERROR") || isError(error, "TIMEOUT")) {
    const info = (error.info ?? {}) as { rpcError?: unknown; responseStatus?: unknown };
    // Marked answers to eth_getLogs are never about the range: a node's own timeout there is left
    // unmarked, to be split (`isProviderErrorAnswer`; review round 111 counted marked TIMEOUTs too).
    if (info.rpcError !== undefined) return true;
    if (/(^|\D)429(\D|$)/.test(String(info.responseStatus ?? ""))) return true;
    if (isError(error, "TIMEOUT") && error.operation === "request.send") return true; // ethers' throttle
  }
  return /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|fetch failed/i.test(messageAndCause(error));
}

/**
 * A request the node, or the HTTP client waiting for its answer, gave up on for time: a lighter one may
 * pass. Not ethers' own throttling (HTTP 429s) running out of time.
 */
export function isTimeoutError(error: unknown): boolean {
  return isError(error, "TIMEOUT") && error.operation !== "request.send";
}

/**
 * A JSON-RPC error answer (in an HTTP 200) that says nothing about the call: a rate limit (Infura's
 * -32005 "limit exceeded", a 429 in the body), a load-balanced node behind the others ("header not
 * found", "unknown block", "missing trie node"), the node's own timeout ("execution aborted (timeout =
 * 5s)"). ethers makes every error answer to eth_call and eth_estimateGas a CALL_EXCEPTION, the keeper's
 * "revert" (review round 52, N2). Never a revert (revert data, or "revert" in the message). For
 * eth_getLogs only an unambiguous rate limit or lagging node: Infura's -32005 also refuses an answer of
 * more than 10,000 logs, and a node's timeout there is about the range too; getLogsSplitting splits those.
 */
export function isProviderErrorAnswer(
  method: string,
  error: { code?: unknown; message?: unknown; data?: unknown },
): boolean {
  const message = typeof error.message === "string" ? error.message : "";
  const data = error.data as { data?: unknown } | string | undefined;
  const revertData = typeof data === "string" ? data : data?.data;
  if ((typeof revertData === "string" && /^0x/i.test(revertData)) || /revert/i.test(message)) return false;
  if (isRateLimitAnswer(error) || NODE_BEHIND.test(message)) return true;
  if (method === "eth_getLogs") return false;
  return error.code === -32005 || NODE_ERROR.test(message);
}

/**
 * A JSON-RPC error answer that is a rate limit (code 429 in the body, or a rate limit's words), whatever
 * else it says: "rate limited, request timed out" is a throttle, not the node's own timeout that a
 * lighter call may pass (session 37).
 */
export function isRateLimitAnswer(error: { code?: unknown; message?: unknown }): boolean {
  return error.code === 429 || RATE_LIMITED.test(typeof error.message === "string" ? error.message : "");
}

const RATE_LIMITED = /rate.?limit|too many requests|request rate|per second|compute units|capacity/i;
const NODE_BEHIND = /header not found|unknown block|missing trie node/i;
const NODE_ERROR =
  /limit exceeded|request limit|execution aborted|timeout|timed out|temporarily unavailable|service unavailable|bad gateway|upstream|try again|overloaded|busy/i;

/**
 * An eth_call the node stopped for gas: its gas cap (geth: 50M by default; Hardhat: the block gas limit)
 * or the caller's limit. Such a call succeeds with less work, so the caller may split it. Nodes word it
 * differently ("out of gas", "gas required exceeds allowance", Hardhat's "run out of gas"); a revert
 * with data (a stale price, a custom error) never mentions gas.
 */
export function isOutOfGasError(error: unknown): boolean {
  if (isTransientError(error)) return false;
  return /out of gas|gas required exceeds|gas cap|gas limit reached/i.test(messageAndCause(error));
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

/** An error's message and its cause's (transport errors say what failed in the cause), for matching. */
function messageAndCause(error: unknown): string {
  return error instanceof Error
    ? `${error.message} ${String((error as { cause?: unknown }).cause ?? "")}`
    : "";
}

/**
 * Runs `act` for one item (an account, a market, a strategy): a revert is logged as `message` with
 * `fields` and the caller goes on to the next, so one item cannot hold up the others; a transport
 * error fails the step, which the loop retries.
 */
export async function skippingReverts(
  log: Logger,
  message: string,
  fields: Record<string, unknown>,
  act: () => Promise<unknown>,
): Promise<void> {
  try {
    await act();
  } catch (error) {
    if (isTransientError(error)) throw error;
    log.warn(message, { ...fields, error: describeError(error) });
  }
}
