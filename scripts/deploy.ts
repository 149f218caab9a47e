/**
 * Deploys the whole protocol with the Ignition module (deploy/modules/XMargin.ts) and writes the
 * addresses to deploy/deployments/<chainId>.json.
 *
 *   npx hardhat run scripts/deploy.ts --network localhost      (npm run deploy:local)
 *   npx hardhat run scripts/deploy.ts --network sepolia        (vars SEPOLIA_RPC_URL, DEPLOYER_PRIVATE_KEY)
 *
 * Environment: XMARGIN_DEPLOYMENT_ID (Ignition deployment id, default chain-<chainId>),
 * XMARGIN_DEPLOYMENT_FILE (output path), XMARGIN_DEPLOY_CONFIG (config file instead of
 * deploy/config/<network>.json).
 *
 * Running it again is safe. Ignition's journal (deploy/deployments/<deploymentId>/) records every
 * finished step, so a second run against the same chain sends nothing and writes the same addresses;
 * an interrupted run resumes where it stopped. A local node that restarted has lost its state but not
 * our journal: on a development chain (31337, 1337) a journal whose contracts have no code is stale and
 * is wiped for a clean redeploy; on any other chain that mismatch is an error for a human to look at.
 */
import fs from "node:fs";
import path from "node:path";
import hre from "hardhat";
import XMarginModule, { assetId } from "../deploy/modules/XMargin";
import { deployModule } from "../deploy/ignition";
import { loadNetworkConfig } from "../deploy/networkConfig";
import {
  defaultDeploymentFile,
  readDeployment,
  writeDeployment,
  type Deployment,
} from "../deploy/deployment";

const DEV_CHAINS = new Set([31337, 1337]);

/** Resolves the journal of `deploymentId` against the chain: keep it, or wipe it on a reset dev chain. */
async function checkJournal(deploymentId: string, chainId: number): Promise<"none" | "kept" | "wiped"> {
  const dir = path.join(hre.config.paths.ignition, "deployments", deploymentId);
  if (!fs.existsSync(dir)) return "none";
  const addressesFile = path.join(dir, "deployed_addresses.json");
  const addresses: string[] = fs.existsSync(addressesFile)
    ? Object.values(JSON.parse(fs.readFileSync(addressesFile, "utf8")) as Record<string, string>)
    : [];
  const onChain = addresses.length > 0 && (await hre.ethers.provider.getCode(addresses[0])) !== "0x";
  if (onChain) return "kept";
  if (!DEV_CHAINS.has(chainId)) {
    throw new Error(
      `Ignition journal ${dir} does not match chain ${chainId} (its first contract has no code). ` +
        `Check the RPC URL, or move the journal away to redeploy.`,
    );
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return "wiped";
}

async function main(): Promise<void> {
  const network = hre.network.name;
  const config = loadNetworkConfig(network);
  const chainId = Number(await hre.network.provider.request({ method: "eth_chainId" }));
  if (chainId !== config.chainId) {
    throw new Error(`network ${network} answers chain ${chainId}, its config says ${config.chainId}`);
  }
  const deploymentId = process.env.XMARGIN_DEPLOYMENT_ID ?? `chain-${chainId}`;
  const outFile = path.resolve(process.env.XMARGIN_DEPLOYMENT_FILE ?? defaultDeploymentFile(chainId));

  const journal = network === "hardhat" ? "none" : await checkJournal(deploymentId, chainId);
  if (journal === "wiped")
    console.log(`fresh chain ${chainId}: wiped the stale Ignition journal ${deploymentId}`);
  const blockBefore = await hre.ethers.provider.getBlockNumber();

  const deployed = await deployModule(hre, XMarginModule, {
    deploymentId,
    // Ignition polls for receipts once a second; an automining dev node mines at once.
    config: DEV_CHAINS.has(chainId) ? { blockPollingInterval: 50 } : {},
    displayUi: process.env.XMARGIN_QUIET !== "1",
  });
  const address = async (name: string): Promise<string> => {
    if (!deployed[name]) throw new Error(`module result ${name} missing`);
    return deployed[name];
  };

  const tokens: Record<string, string> = {};
  for (const [symbol, token] of Object.entries(config.tokens)) {
    tokens[symbol] = "address" in token.source ? token.source.address : await address(`token_${symbol}`);
  }
  const feedAddresses = async (
    prefix: string,
    feeds: Record<string, { source: { address: string } | { mock: unknown } }>,
  ): Promise<Record<string, string>> => {
    const out: Record<string, string> = {};
    for (const [symbol, feed] of Object.entries(feeds)) {
      out[symbol] = "address" in feed.source ? feed.source.address : await address(`${prefix}_${symbol}`);
    }
    return out;
  };

  const perpMarket = await hre.ethers.getContractAt("PerpMarket", await address("perpMarket"));
  const markets: Record<string, number> = {};
  let id = 1;
  for (const [symbol, market] of Object.entries(config.perpMarkets)) {
    const info = await perpMarket.market(id);
    if (info.underlying !== assetId(market.underlying)) throw new Error(`market ${id} is not ${symbol}`);
    markets[symbol] = id++;
  }

  const contracts = {
    accounts: await address("accounts"),
    vault: await address("vault"),
    engine: await address("engine"),
    perpMarket: await address("perpMarket"),
    liquidityPool: await address("liquidityPool"),
    liquidationAuction: await address("liquidationAuction"),
    oracleRouter: await address("oracleRouter"),
    insuranceFund: await address("insuranceFund"),
    accessManager: await address("accessManager"),
    timelock: await address("timelock"),
  };
  // A run that sent nothing keeps the start block of the run that deployed.
  const previous = fs.existsSync(outFile) ? readDeployment(outFile) : undefined;
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
    feeds: await feedAddresses("priceFeed", config.feeds),
    volatilityFeeds: await feedAddresses("volatilityFeed", config.volatilityFeeds),
    sequencerUptimeFeed: config.sequencerUptimeFeed
      ? "address" in config.sequencerUptimeFeed.source
        ? config.sequencerUptimeFeed.source.address
        : await address("sequencerUptimeFeed")
      : null,
    markets,
  };
  if (network !== "hardhat") writeDeployment(outFile, deployment);
  const sent = (await hre.ethers.provider.getBlockNumber()) - blockBefore;
  console.log(
    JSON.stringify({
      msg: "deployed",
      chainId,
      deploymentId,
      journal,
      blocks: sent,
      file: network === "hardhat" ? null : outFile,
      engine: contracts.engine,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
