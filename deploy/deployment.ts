/**
 * The addresses file written after a deployment (`deploy/deployments/<chainId>.json`) and read by
 * keepers, seeding scripts and frontends. Plain Node + ethers: no Hardhat import, so keepers load it.
 */
import fs from "node:fs";
import path from "node:path";
import { getAddress } from "ethers";
import type { DeploymentContracts as SdkDeploymentContracts } from "../sdk/src/deployment";

/**
 * What the SDK needs, plus the governance contracts (the file is a superset of the SDK's type). The
 * module deploys OptionMarket, so the file always names it (the SDK type keeps it optional for older
 * files).
 */
export interface DeploymentContracts extends SdkDeploymentContracts {
  optionMarket: string;
  accessManager: string;
  timelock: string;
}

export interface Deployment {
  chainId: number;
  /** Hardhat network name the module was built for. */
  network: string;
  /** Ignition deployment id (its journal lives in deploy/deployments/<id>/). */
  deploymentId: string;
  /** First block of the deployment: keepers scan events from here. */
  startBlock: number;
  /** Oracle asset of the gas token, e.g. "ETH" (keepers price gas with it). */
  nativeAsset: string;
  /** Symbol (in `tokens`) of the settlement token. */
  quoteToken: string;
  contracts: DeploymentContracts;
  tokens: Record<string, string>;
  /** Price feeds by oracle asset. */
  feeds: Record<string, string>;
  volatilityFeeds: Record<string, string>;
  sequencerUptimeFeed: string | null;
  /** Perp market ids by market symbol. */
  markets: Record<string, number>;
}

const CONTRACT_KEYS = [
  "accounts",
  "vault",
  "engine",
  "perpMarket",
  "optionMarket",
  "liquidityPool",
  "liquidationAuction",
  "oracleRouter",
  "insuranceFund",
  "accessManager",
  "timelock",
] as const;

/** deploy/deployments/<chainId>.json */
export function defaultDeploymentFile(chainId: number | bigint): string {
  return path.join(__dirname, "deployments", `${chainId}.json`);
}

export function writeDeployment(file: string, deployment: Deployment): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // Write-then-rename, so a reader polling the file never sees half of it.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(deployment, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

/** A deployment file that is missing or malformed: the message names the file and the field. */
export class DeploymentFileError extends Error {}

/** Reads and checks a deployment file; addresses come back checksummed. */
export function readDeployment(file: string): Deployment {
  const fail = (what: string): never => {
    throw new DeploymentFileError(`${file}: ${what}`);
  };
  // Each failure names the file and the field (review round 74, row 179): "invalid address" or
  // "Unexpected token" alone did not say which.
  let raw: Partial<Deployment> = {};
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<Deployment>;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    fail(
      e.code === "ENOENT"
        ? "no such file (scripts/deploy.ts writes deploy/deployments/<chainId>.json)"
        : `not a deployment file (${e.message.split("\n")[0]})`,
    );
  }
  if (typeof raw !== "object" || raw === null) fail("not a deployment file (expected a JSON object)");
  const checked = (value: string, at: string): string => {
    try {
      return getAddress(value);
    } catch {
      return fail(`${at}: not an address (${JSON.stringify(value)})`);
    }
  };
  if (typeof raw.chainId !== "number") fail("chainId missing");
  if (typeof raw.contracts !== "object" || raw.contracts === null) fail("contracts missing");
  const contracts = {} as DeploymentContracts;
  for (const key of CONTRACT_KEYS) {
    const value = raw.contracts![key];
    if (typeof value !== "string") fail(`contracts.${key} missing`);
    contracts[key] = checked(value!, `contracts.${key}`);
  }
  const addresses = (record: Record<string, string> | undefined, at: string) =>
    Object.fromEntries(Object.entries(record ?? {}).map(([k, v]) => [k, checked(v, `${at}.${k}`)]));
  return {
    chainId: raw.chainId!,
    network: raw.network ?? "unknown",
    deploymentId: raw.deploymentId ?? `chain-${raw.chainId}`,
    startBlock: raw.startBlock ?? 0,
    nativeAsset: raw.nativeAsset ?? "ETH",
    quoteToken: raw.quoteToken ?? "USDC",
    contracts,
    tokens: addresses(raw.tokens, "tokens"),
    feeds: addresses(raw.feeds, "feeds"),
    volatilityFeeds: addresses(raw.volatilityFeeds, "volatilityFeeds"),
    sequencerUptimeFeed: raw.sequencerUptimeFeed
      ? checked(raw.sequencerUptimeFeed, "sequencerUptimeFeed")
      : null,
    markets: raw.markets ?? {},
  };
}
