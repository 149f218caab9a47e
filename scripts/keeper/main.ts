/**
 * Keeper CLI: `npm run keeper -- --rpc <url> --deployment <file> [options]` (options: config.ts USAGE,
 * scripts/keeper/README.md). SIGINT/SIGTERM finish the current step and exit 0; a second signal exits
 * at once with 130.
 */
import { parseKeeperArgs, UsageError, USAGE } from "./config";
import { createLogger, describeError } from "./log";
import { runKeeper } from "./loop";

async function main(): Promise<number> {
  let cfg;
  try {
    cfg = parseKeeperArgs(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (cfg === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = createLogger({ level: cfg.logLevel });
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      log.warn("second signal; exiting now", { signal });
      process.exit(130);
    }
    log.info("shutting down after the current step", { signal });
    controller.abort();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  try {
    await runKeeper(cfg, log, controller.signal);
    return 0;
  } catch (error) {
    log.error("keeper failed", { error: describeError(error) });
    return 1;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`);
    process.exit(1);
  },
);
