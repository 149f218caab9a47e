/**
 * Structured logs: one JSON object per line, `{ ts, level, msg, fields }`. Bigints are written as
 * decimal strings, errors as their code and short message.
 */
import { decodeRevertData, findRevertData } from "../../sdk/src/errors";

export type Level = "debug" | "info" | "warn" | "error";

export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const LEVELS = Object.keys(RANK) as Level[];

/** The node's own answer behind an ethers error (an UNKNOWN_ERROR keeps it in `error`), or "". */
export function nodeMessage(error: unknown): string {
  const message = (error as { error?: { message?: unknown } } | null)?.error?.message;
  return typeof message === "string" ? message : "";
}

/**
 * A short, serialisable description of an error (ethers errors carry `code` and `shortMessage`). What
 * ethers leaves out is added (review round 74, row 176): the node's own answer behind an `UNKNOWN_ERROR`
 * ("could not coalesce error": Hardhat's "Sender doesn't have enough funds", "invalid chainId") as
 * `rpcMessage`, and a protocol custom error by name with its readable message (`InsufficientMargin`,
 * where ethers says "unknown custom error") as `revert`.
 */
export function describeError(error: unknown): Fields {
  if (!(error instanceof Error)) return { message: String(error) };
  const e = error as Error & { code?: unknown; shortMessage?: string; reason?: string | null };
  const data = findRevertData(error);
  const decoded = data === undefined ? undefined : decodeRevertData(data);
  const rpcMessage = nodeMessage(error).slice(0, 300);
  return {
    ...(e.code !== undefined ? { code: e.code } : {}),
    message: decoded?.message ?? e.shortMessage ?? e.message.split("\n")[0].slice(0, 300),
    ...(decoded ? { revert: decoded.name } : {}),
    ...(e.reason ? { reason: e.reason } : {}),
    ...(rpcMessage && rpcMessage !== e.shortMessage ? { rpcMessage } : {}),
  };
}

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return describeError(value);
  return value;
}

export function createLogger(
  opts: { level?: Level; write?: (line: string) => void; now?: () => Date } = {},
): Logger {
  const min = RANK[opts.level ?? "info"];
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const now = opts.now ?? (() => new Date());
  const log =
    (level: Level) =>
    (msg: string, fields: Fields = {}): void => {
      if (RANK[level] < min) return;
      write(JSON.stringify({ ts: now().toISOString(), level, msg, fields }, replacer));
    };
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

/**
 * `log` without the repeats of a message (at one level) already written in the last `intervalMs`, whatever
 * their fields (a gas price moves between retries); the first line after the interval says how many were
 * dropped (`repeated`). For notices a retry loop would otherwise write every few seconds (a deployment
 * not yet on chain, an empty wallet).
 */
export function withoutRepeats(log: Logger, intervalMs: number, now: () => number = Date.now): Logger {
  const seen = new Map<string, { writtenAt: number; dropped: number }>();
  const filter =
    (level: Level) =>
    (msg: string, fields: Fields = {}): void => {
      const key = `${level} ${msg}`;
      const last = seen.get(key);
      const t = now();
      if (last && t - last.writtenAt < intervalMs) {
        last.dropped++;
        return;
      }
      seen.set(key, { writtenAt: t, dropped: 0 });
      log[level](msg, last?.dropped ? { ...fields, repeated: last.dropped } : fields);
    };
  return { debug: filter("debug"), info: filter("info"), warn: filter("warn"), error: filter("error") };
}
