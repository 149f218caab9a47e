/**
 * The keeper's own code (session, step, sender, logs) against the in-process Hardhat chain of a system
 * deployed by `deployOptionsSystem`: an ethers provider over Hardhat's EIP-1193 provider, Hardhat's
 * account #4 as the keeper key, the command line's defaults (or the given arguments).
 */
import { ethers, network } from "hardhat";
import { Wallet } from "ethers";
import type { Deployment } from "../../deploy/deployment";
import { Eip1193JsonRpcProvider } from "../../scripts/keeper/chain";
import { parseKeeperArgs } from "../../scripts/keeper/config";
import { createLogger, type Fields } from "../../scripts/keeper/log";
import { keeperStep, openSession, type Session, type StepReport } from "../../scripts/keeper/loop";
import { TxSender } from "../../scripts/keeper/sender";
import type { OptionMarket } from "../../typechain-types";
import { hardhatWallet } from "./e2e";
import type { System } from "./system";

export interface LogLine {
  level: string;
  msg: string;
  fields: Fields;
}

export interface InProcessKeeper {
  session: Session;
  /** Every line the keeper logged, parsed. */
  lines: LogLine[];
  /** One keeper step at the latest block. */
  step(): Promise<StepReport>;
}

/** The deployment file the keeper would read for `sys` (governance: its AccessManager and a timelock). */
export async function keeperDeploymentOf(sys: System & { options: OptionMarket }): Promise<Deployment> {
  const address = (c: { getAddress(): Promise<string> }): Promise<string> => c.getAddress();
  const timelock = await ethers.deployContract("TimelockController", [0, [], [], sys.deployer.address]);
  return {
    chainId: Number((await ethers.provider.getNetwork()).chainId),
    network: "hardhat",
    deploymentId: "in-process",
    startBlock: 0,
    nativeAsset: "ETH",
    quoteToken: "USDC",
    contracts: {
      accounts: await address(sys.accounts),
      vault: await address(sys.vault),
      engine: await address(sys.engine),
      perpMarket: await address(sys.perps),
      optionMarket: await address(sys.options),
      liquidityPool: await address(sys.pool),
      liquidationAuction: await address(sys.auction),
      oracleRouter: await address(sys.router),
      insuranceFund: await address(sys.insuranceFund),
      accessManager: await address(sys.manager),
      timelock: await address(timelock),
    },
    tokens: { USDC: await address(sys.usdc), WETH: await address(sys.weth), WBTC: await address(sys.wbtc) },
    feeds: {
      USDC: await address(sys.feeds.USDC),
      ETH: await address(sys.feeds.ETH),
      BTC: await address(sys.feeds.BTC),
    },
    volatilityFeeds: { ETH: await address(sys.volFeeds.ETH), BTC: await address(sys.volFeeds.BTC) },
    sequencerUptimeFeed: null,
    markets: { ETH: Number(sys.markets.ETH), BTC: Number(sys.markets.BTC) },
  };
}

/** Opens the keeper's session on `sys` (creating and approving its bidder account) with `args`. */
export async function startInProcessKeeper(
  sys: System & { options: OptionMarket },
  args: string[] = [],
): Promise<InProcessKeeper> {
  const key = hardhatWallet(4).privateKey;
  const cfg = parseKeeperArgs(["--rpc", "http://in-process", "--deployment", "(in memory)", ...args], {
    KEEPER_PRIVATE_KEY: key,
  });
  if (cfg === "help") throw new Error("unreachable");
  const deployment = await keeperDeploymentOf(sys);
  const provider = new Eip1193JsonRpcProvider(network.provider, deployment.chainId);
  const wallet = new Wallet(key, provider);
  const lines: LogLine[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line) as LogLine) });
  const sender = new TxSender(wallet, provider, deployment.chainId, log, {
    maxGasPriceWei: cfg.maxGasPriceWei,
    dryRun: false,
    txTimeoutMs: cfg.txTimeoutMs,
    pollMs: 10,
  });
  const session = await openSession(cfg, provider, wallet, sender, log, deployment);
  if (!session) throw new Error("the deployment is not on the chain");
  return {
    session,
    lines,
    async step() {
      const head = await provider.getBlockNumber();
      const block = await provider.getBlock(head);
      return keeperStep(session, head, BigInt(block!.timestamp), { cfg, sender, log });
    },
  };
}
