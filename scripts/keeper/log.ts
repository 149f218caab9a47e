/**
 * Structured logs: one JSON object per line, `{ ts, level, msg, fields }`. Bigints are written as
 * decimal strings, errors as their code and short message.
 */
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

/** A short, serialisable description of an error (ethers errors carry `code` and `shortMessage`). */
export function describeError(error: unknown): Fields {
  if (!(error instanceof Error)) return { message: String(error) };
  const e = error as Error & { code?: unknown; shortMessage?: string; reason?: string | null };
  return {
    ...(e.code !== undefined ? { code: e.code } : {}),
    message: e.shortMessage ?? e.message.split("\n")[0].slice(0, 300),
    ...(e.reason ? { reason: e.reason } : {}),
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
