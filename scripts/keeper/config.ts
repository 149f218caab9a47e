/**
 * Command line of the keeper (node:util parseArgs). Every option is listed in USAGE and in
 * scripts/keeper/README.md.
 */
import { parseArgs } from "node:util";
import { parseEther, parseUnits } from "ethers";
import { LEVELS, type Level } from "./log";
import { RACE_JITTER_MS } from "./sender";

export const USAGE = `Usage: npm run keeper -- --rpc <url> --deployment <file> [options]

  --rpc <url>                 JSON-RPC endpoint (http or https)
  --deployment <file>         deployment file written by scripts/deploy.ts (deploy/deployments/<chainId>.json)
  --private-key <hex>         keeper key (or env KEEPER_PRIVATE_KEY)
  --account-id <n>            the keeper's bidder account, checked first (default: the first usable
                              account of the keeper, found by reading its accounts one at a time)
  --dry-run                   simulate and log every action, never send a transaction
  --unwind-backstop           unwind the backstop's perps where the skew leans their way (needs the
                              BACKSTOP role; see README: the unwind moves the LP share price)
  --max-gas-price-gwei <n>    never pay more per gas; wait while the chain is above it (default 100)
  --start-block <n>           scan AccountCreated events from here (default: the deployment's startBlock)
  --poll-ms <n>               how often to poll eth_blockNumber (default 1000)
  --recheck-ms <n>            re-run a pass after this long without a new block (default 15000): an
                              auction's discount and flag reward grow with time, not blocks
  --health-batch <n>          accounts per engine.healthMany call (default 100; halved for the session
                              below a batch the RPC timed out on where a smaller one answered, regrown
                              after 10 passes without a timeout)
  --log-range <n>             blocks per eth_getLogs request (default 5000)
  --min-profit-usd <x>        bid only when the bid nets at least this after fees and gas (default 1)
  --min-stake-usd <x>         always auction an account whose maintenance requirement is at least this
                              (USD, default 100), those first; a smaller one only when its flag reward
                              pays twice the start's gas (dust under water is not flagged at a loss)
  --start-batch <n>           auctions started per startAuctions transaction, most urgent first
                              (default 20; a batch above 10M gas or one a stale feed reverts is halved)
  --funding-interval <s>      accrue a perp market's funding once it is this many seconds old (default
                              3600; 0 = never), so nobody prices days of it at a well-chosen spot
  --tx-timeout-ms <n>         give up waiting for a receipt after this long (default 60000)
  --race-jitter-ms <n>        wait a random 0–n ms before the last check of a transaction a rival may
                              send first (a bid, start, absorb, end, settlement, sweep, accrual...), so
                              that competing keepers see each other's pending transaction instead of
                              sending into a revert or a no-op (default 250; 0 = no wait)
  --log-level <level>         debug | info | warn | error (default info)
  --help                      print this text`;

export interface KeeperConfig {
  rpcUrl: string;
  deploymentFile: string;
  privateKey: string;
  /** `--account-id`: the bidder account to try before scanning the keeper's accounts. */
  accountId: bigint | null;
  dryRun: boolean;
  unwindBackstop: boolean;
  maxGasPriceWei: bigint;
  startBlock: number | null;
  pollMs: number;
  /** `--recheck-ms`: a pass runs at least this often, new block or not. */
  recheckMs: number;
  healthBatch: number;
  logRange: number;
  minProfitUsd: bigint;
  /** `--min-stake-usd`: accounts with MM at least this are always auctioned, first (review round 60). */
  minStakeUsd: bigint;
  /** `--start-batch`: auctions started per `startAuctions` transaction. */
  startBatch: number;
  fundingInterval: number;
  txTimeoutMs: number;
  /** `--race-jitter-ms`: the most the last check of a raced send waits (review rounds 117, 124). */
  raceJitterMs: number;
  logLevel: Level;
}

export class UsageError extends Error {}

/** Parses argv (without node and script) and the environment; throws UsageError on bad input. */
export function parseKeeperArgs(argv: string[], env: NodeJS.ProcessEnv): KeeperConfig | "help" {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        rpc: { type: "string" },
        deployment: { type: "string" },
        "private-key": { type: "string" },
        "account-id": { type: "string" },
        "dry-run": { type: "boolean", default: false },
        "unwind-backstop": { type: "boolean", default: false },
        "max-gas-price-gwei": { type: "string", default: "100" },
        "start-block": { type: "string" },
        "poll-ms": { type: "string", default: "1000" },
        "recheck-ms": { type: "string", default: "15000" },
        "health-batch": { type: "string", default: "100" },
        "log-range": { type: "string", default: "5000" },
        "min-profit-usd": { type: "string", default: "1" },
        "min-stake-usd": { type: "string", default: "100" },
        "start-batch": { type: "string", default: "20" },
        "funding-interval": { type: "string", default: "3600" },
        "tx-timeout-ms": { type: "string", default: "60000" },
        "race-jitter-ms": { type: "string", default: String(RACE_JITTER_MS) },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return "help";
  if (!values.rpc) throw new UsageError("--rpc is required");
  if (!/^https?:\/\//.test(values.rpc)) throw new UsageError("--rpc must be an http(s) URL");
  if (!values.deployment) throw new UsageError("--deployment is required");
  const privateKey = values["private-key"] ?? env.KEEPER_PRIVATE_KEY;
  if (!privateKey) throw new UsageError("a key is required: --private-key or env KEEPER_PRIVATE_KEY");
  if (!/^(0x)?[0-9a-fA-F]{64}$/.test(privateKey))
    throw new UsageError("the private key must be 32 bytes of hex");
  const level = values["log-level"] as Level;
  if (!LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LEVELS.join(", ")}`);

  return {
    rpcUrl: values.rpc,
    deploymentFile: values.deployment,
    privateKey: privateKey.startsWith("0x") ? privateKey : `0x${privateKey}`,
    accountId:
      values["account-id"] === undefined ? null : BigInt(integer(values["account-id"], "--account-id", 1)),
    dryRun: values["dry-run"] ?? false,
    unwindBackstop: values["unwind-backstop"] ?? false,
    maxGasPriceWei: decimal(values["max-gas-price-gwei"]!, "--max-gas-price-gwei", (s) =>
      parseUnits(s, "gwei"),
    ),
    startBlock:
      values["start-block"] === undefined ? null : integer(values["start-block"], "--start-block", 0),
    pollMs: integer(values["poll-ms"]!, "--poll-ms", 10),
    recheckMs: integer(values["recheck-ms"]!, "--recheck-ms", 10),
    healthBatch: integer(values["health-batch"]!, "--health-batch", 1),
    logRange: integer(values["log-range"]!, "--log-range", 1),
    minProfitUsd: decimal(values["min-profit-usd"]!, "--min-profit-usd", parseEther),
    minStakeUsd: decimal(values["min-stake-usd"]!, "--min-stake-usd", parseEther),
    startBatch: integer(values["start-batch"]!, "--start-batch", 1),
    fundingInterval: integer(values["funding-interval"]!, "--funding-interval", 0),
    txTimeoutMs: integer(values["tx-timeout-ms"]!, "--tx-timeout-ms", 1_000),
    raceJitterMs: integer(values["race-jitter-ms"]!, "--race-jitter-ms", 0),
    logLevel: level,
  };
}

function integer(text: string, flag: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(`${flag} must be an integer ≥ ${min}`);
  }
  return value;
}

function decimal(text: string, flag: string, parse: (s: string) => bigint): bigint {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new UsageError(`${flag} must be a non-negative decimal`);
  try {
    return parse(text);
  } catch {
    throw new UsageError(`${flag}: too many decimals`);
  }
}
