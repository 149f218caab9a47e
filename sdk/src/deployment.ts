/**
 * The addresses of one xmargin deployment, as the deploy scripts write them and frontends load them.
 * @packageDocumentation
 */

/** Addresses of the protocol's contracts. */
export interface DeploymentContracts {
  accounts: string;
  vault: string;
  engine: string;
  perpMarket: string;
  liquidityPool: string;
  liquidationAuction: string;
  oracleRouter: string;
  insuranceFund: string;
  /** The OptionMarket; absent on deployments without options (option actions then throw). */
  optionMarket?: string;
}

/**
 * A deployment: the chain, the contracts and the listed tokens by symbol.
 * @example
 * const deployment: Deployment = {
 *   chainId: 31337,
 *   contracts: { accounts: "0x…", vault: "0x…", engine: "0x…", perpMarket: "0x…", liquidityPool: "0x…",
 *     liquidationAuction: "0x…", oracleRouter: "0x…", insuranceFund: "0x…" },
 *   tokens: { USDC: "0x…", WETH: "0x…" },
 * };
 */
export interface Deployment {
  chainId: number;
  contracts: DeploymentContracts;
  /** Token addresses by symbol (collateral and the quote token). */
  tokens: Record<string, string>;
  /** Block of the first deployment transaction: event scans (listAuctions) start there. Default 0. */
  startBlock?: number;
}

const CONTRACT_KEYS: readonly (keyof DeploymentContracts)[] = [
  "accounts",
  "vault",
  "engine",
  "perpMarket",
  "liquidityPool",
  "liquidationAuction",
  "oracleRouter",
  "insuranceFund",
];

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/**
 * Checks a parsed deployment JSON and returns it typed; throws a TypeError naming the first bad field.
 * @example
 * const deployment = parseDeployment(JSON.parse(await (await fetch("/deployment.json")).text()));
 */
export function parseDeployment(value: unknown): Deployment {
  if (typeof value !== "object" || value === null) throw new TypeError("deployment: not an object");
  const d = value as Record<string, unknown>;
  if (typeof d.chainId !== "number" || !Number.isInteger(d.chainId)) {
    throw new TypeError("deployment.chainId: not an integer");
  }
  const contracts = d.contracts as Record<string, unknown> | undefined;
  if (typeof contracts !== "object" || contracts === null)
    throw new TypeError("deployment.contracts: missing");
  for (const key of CONTRACT_KEYS) {
    if (typeof contracts[key] !== "string" || !ADDRESS.test(contracts[key] as string)) {
      throw new TypeError(`deployment.contracts.${key}: not an address`);
    }
  }
  if (contracts.optionMarket !== undefined) {
    if (typeof contracts.optionMarket !== "string" || !ADDRESS.test(contracts.optionMarket)) {
      throw new TypeError("deployment.contracts.optionMarket: not an address");
    }
  }
  const tokens = d.tokens as Record<string, unknown> | undefined;
  if (typeof tokens !== "object" || tokens === null) throw new TypeError("deployment.tokens: missing");
  for (const [symbol, address] of Object.entries(tokens)) {
    if (typeof address !== "string" || !ADDRESS.test(address)) {
      throw new TypeError(`deployment.tokens.${symbol}: not an address`);
    }
  }
  if (d.startBlock !== undefined && (typeof d.startBlock !== "number" || !Number.isInteger(d.startBlock))) {
    throw new TypeError("deployment.startBlock: not an integer");
  }
  return value as Deployment;
}
