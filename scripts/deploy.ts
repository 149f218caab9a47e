/**
 * Deploys the whole protocol with the Ignition module (deploy/modules/XMargin.ts) and writes the
 * addresses to deploy/deployments/<chainId>.json.
 *
 *   npx hardhat run scripts/deploy.ts --network localhost      (npm run deploy:local)
 *   npx hardhat run scripts/deploy.ts --network sepolia        (vars SEPOLIA_RPC_URL, DEPLOYER_PRIVATE_KEY)
 *
 * Environment: XMARGIN_DEPLOYMENT_ID (Ignition deployment id, default chain-<chainId>),
 * XMARGIN_DEPLOYMENT_FILE (output path), XMARGIN_DEPLOY_CONFIG (config file instead of
 * deploy/config/<network>.json), XMARGIN_QUIET=1 (no progress UI).
 *
 * Running it again is safe: see scripts/lib/deploy.ts (journal kept, resumed, or wiped on a restarted
 * dev chain).
 */
import fs from "node:fs";
import path from "node:path";
import hre from "hardhat";
import { defaultDeploymentFile, readDeployment, writeDeployment } from "../deploy/deployment";
import { OperatorError, operatorMessage } from "./lib/operatorErrors";

async function main(): Promise<void> {
  // Imported here, first: loading the module parses the network's config, whose mistakes main's caller
  // reports in a line, before any RPC is asked.
  const { deployXMargin } = await import("./lib/deploy");
  const network = hre.network.name;
  // Before Hardhat's own "HH117: Empty string `` for network or forking URL", which names no variable.
  const url = (hre.network.config as { url?: string }).url;
  const rpcVar = `${network.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()}_RPC_URL`;
  if (url === "")
    throw new OperatorError(`no RPC URL for --network ${network}: npx hardhat vars set ${rpcVar}`);
  const chainId = Number(await hre.network.provider.request({ method: "eth_chainId" }));
  const outFile = path.resolve(process.env.XMARGIN_DEPLOYMENT_FILE ?? defaultDeploymentFile(chainId));
  // An unreadable former file (another format, another deployment) just loses its start block.
  let previous;
  try {
    previous = fs.existsSync(outFile) ? readDeployment(outFile) : undefined;
  } catch {
    previous = undefined;
  }

  if (network !== "hardhat" && (await hre.ethers.getSigners()).length === 0) {
    throw new OperatorError(
      `no deployer key for --network ${network}: npx hardhat vars set DEPLOYER_PRIVATE_KEY`,
    );
  }

  const { deployment, journal, blocks } = await deployXMargin(hre, {
    deploymentId: process.env.XMARGIN_DEPLOYMENT_ID,
    displayUi: process.env.XMARGIN_QUIET !== "1",
    previous,
  });
  if (network !== "hardhat") writeDeployment(outFile, deployment);
  console.log(
    JSON.stringify({
      msg: "deployed",
      chainId,
      deploymentId: deployment.deploymentId,
      journal,
      blocks,
      file: network === "hardhat" ? null : outFile,
      engine: deployment.contracts.engine,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(operatorMessage("deploy", error));
  process.exitCode = 1;
});
