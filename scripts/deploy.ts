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
import { deployXMargin } from "./lib/deploy";

async function main(): Promise<void> {
  const network = hre.network.name;
  const chainId = Number(await hre.network.provider.request({ method: "eth_chainId" }));
  const outFile = path.resolve(process.env.XMARGIN_DEPLOYMENT_FILE ?? defaultDeploymentFile(chainId));
  // An unreadable former file (another format, another deployment) just loses its start block.
  let previous;
  try {
    previous = fs.existsSync(outFile) ? readDeployment(outFile) : undefined;
  } catch {
    previous = undefined;
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
  console.error(error);
  process.exitCode = 1;
});
