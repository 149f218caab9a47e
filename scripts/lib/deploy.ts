/**
 * The deployment behind scripts/deploy.ts, as a function: runs the Ignition module
 * (deploy/modules/XMargin.ts) on the network `hre` is connected to and returns the deployment file's
 * content. The demo calls it on Hardhat's in-process network, so it exercises the real deployment path.
 *
 * Journal handling (not on the in-process network, which keeps none): Ignition's journal
 * (deploy/deployments/<deploymentId>/) records every finished step, so a second run against the same
 * chain sends nothing and returns the same addresses; an interrupted run resumes. A local node that
 * restarted has lost its state but not the journal: on a development chain (31337, 1337) a journal whose
 * contracts have no code is stale and is wiped for a clean redeploy; on any other chain that mismatch is
 * an error for a human to look at.
 */
import fs from "node:fs";
import path from "node:path";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import { buildXMarginModule, assetId } from "../../deploy/modules/XMargin";
import { deployModule } from "../../deploy/ignition";
import { configPath, loadNetworkConfig, proposingExitCloser } from "../../deploy/networkConfig";
import type { Deployment } from "../../deploy/deployment";
import { OperatorError } from "./operatorErrors";
import { IPerpMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IPerpMarket__factory";

export const DEV_CHAINS = new Set([31337, 1337]);

export type JournalState = "none" | "kept" | "wiped";

/** Resolves the journal of `deploymentId` against the chain: keep it, or wipe it on a reset dev chain. */
async function checkJournal(
  hre: HardhatRuntimeEnvironment,
  deploymentId: string,
  chainId: number,
): Promise<JournalState> {
  const dir = path.join(hre.config.paths.ignition, "deployments", deploymentId);
  if (!fs.existsSync(dir)) return "none";
  const addressesFile = path.join(dir, "deployed_addresses.json");
  const addresses: string[] = fs.existsSync(addressesFile)
    ? Object.values(JSON.parse(fs.readFileSync(addressesFile, "utf8")) as Record<string, string>)
    : [];
  const onChain = addresses.length > 0 && (await hre.ethers.provider.getCode(addresses[0])) !== "0x";
  if (onChain) return "kept";
  if (!DEV_CHAINS.has(chainId)) {
    throw new OperatorError(
      `Ignition journal ${dir} does not match chain ${chainId} (its first contract has no code). ` +
        `Check the RPC URL, or move the journal away to redeploy.`,
    );
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return "wiped";
}

export interface DeployResult {
  deployment: Deployment;
  journal: JournalState;
  /** Blocks the run mined (0 when the journal was complete). */
  blocks: number;
}

/**
 * Deploys (or resumes) the module for `hre.network` and returns the deployment. `previous`, the file a
 * former run wrote, keeps its start block when this run sent nothing.
 */
export async function deployXMargin(
  hre: HardhatRuntimeEnvironment,
  opts: { deploymentId?: string; displayUi?: boolean; previous?: Deployment } = {},
): Promise<DeployResult> {
  const network = hre.network.name;
  const config = loadNetworkConfig(network);
  // The parser compares account references as written; "deployer" is known here (review round 34).
  const [deployer] = await hre.ethers.getSigners();
  const conflict = proposingExitCloser(config.governance, deployer?.address);
  if (conflict) throw new OperatorError(`${configPath(network)}: ${conflict.at}: ${conflict.message}`);
  const chainId = Number(await hre.network.provider.request({ method: "eth_chainId" }));
  if (chainId !== config.chainId) {
    throw new OperatorError(
      `network ${network} answers chain ${chainId}, its config (${configPath(network)}) says ${config.chainId}`,
    );
  }
  const deploymentId = opts.deploymentId ?? `chain-${chainId}`;
  const journal = network === "hardhat" ? "none" : await checkJournal(hre, deploymentId, chainId);
  if (journal === "wiped")
    console.log(`fresh chain ${chainId}: wiped the stale Ignition journal ${deploymentId}`);
  const blockBefore = await hre.ethers.provider.getBlockNumber();

  const deployed = await deployModule(hre, buildXMarginModule(config), {
    deploymentId,
    // Ignition polls for receipts once a second; an automining dev node mines at once.
    config: DEV_CHAINS.has(chainId) ? { blockPollingInterval: 50 } : {},
    displayUi: opts.displayUi ?? false,
  });
  const address = (name: string): string => {
    if (!deployed[name]) throw new Error(`module result ${name} missing`);
    return deployed[name];
  };

  const tokens: Record<string, string> = {};
  for (const [symbol, token] of Object.entries(config.tokens)) {
    tokens[symbol] = "address" in token.source ? token.source.address : address(`token_${symbol}`);
  }
  const feedAddresses = (
    prefix: string,
    feeds: Record<string, { source: { address: string } | { mock: unknown } }>,
  ): Record<string, string> =>
    Object.fromEntries(
      Object.entries(feeds).map(([symbol, feed]) => [
        symbol,
        "address" in feed.source ? feed.source.address : address(`${prefix}_${symbol}`),
      ]),
    );

  const perpMarket = IPerpMarket__factory.connect(address("perpMarket"), hre.ethers.provider);
  const markets: Record<string, number> = {};
  let id = 1;
  for (const [symbol, market] of Object.entries(config.perpMarkets)) {
    const info = await perpMarket.market(id);
    if (info.underlying !== assetId(market.underlying)) throw new Error(`market ${id} is not ${symbol}`);
    markets[symbol] = id++;
  }

  const contracts = {
    accounts: address("accounts"),
    vault: address("vault"),
    engine: address("engine"),
    perpMarket: address("perpMarket"),
    optionMarket: address("optionMarket"),
    liquidityPool: address("liquidityPool"),
    liquidationAuction: address("liquidationAuction"),
    oracleRouter: address("oracleRouter"),
    insuranceFund: address("insuranceFund"),
    accessManager: address("accessManager"),
    timelock: address("timelock"),
  };
  // A run that sent nothing keeps the start block of the run that deployed.
  const previous = opts.previous;
  const startBlock =
    previous && previous.chainId === chainId && previous.contracts.accounts === contracts.accounts
      ? previous.startBlock
      : blockBefore + 1;

  const deployment: Deployment = {
    chainId,
    network,
    deploymentId,
    startBlock,
    nativeAsset: config.nativeAsset,
    quoteToken: config.quoteToken,
    contracts,
    tokens,
    feeds: feedAddresses("priceFeed", config.feeds),
    volatilityFeeds: feedAddresses("volatilityFeed", config.volatilityFeeds),
    sequencerUptimeFeed: config.sequencerUptimeFeed
      ? "address" in config.sequencerUptimeFeed.source
        ? config.sequencerUptimeFeed.source.address
        : address("sequencerUptimeFeed")
      : null,
    markets,
  };
  const blocks = (await hre.ethers.provider.getBlockNumber()) - blockBefore;
  return { deployment, journal, blocks };
}
