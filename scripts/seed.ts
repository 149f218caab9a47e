/**
 * Seeds demo accounts on a local deployment (mock tokens with open mint): an LP deposit, an insurance
 * top-up, traders in cross and isolated accounts with positions (scripts/lib/seed.ts).
 *
 *   npx hardhat run scripts/seed.ts --network localhost      (npm run seed:local)
 *
 * Reads deploy/deployments/<chainId>.json (or XMARGIN_DEPLOYMENT_FILE). Signers: the node's accounts
 * #0 deployer, #1 alice, #2 bob, #3 carol, #5 lp (#4 is left for a keeper).
 */
import hre from "hardhat";
import { defaultDeploymentFile, readDeployment } from "../deploy/deployment";
import { OperatorError, operatorMessage } from "./lib/operatorErrors";
import { seedDemo } from "./lib/seed";

async function main(): Promise<void> {
  const chainId = Number(await hre.network.provider.request({ method: "eth_chainId" }));
  const file = process.env.XMARGIN_DEPLOYMENT_FILE ?? defaultDeploymentFile(chainId);
  const deployment = readDeployment(file);
  if (deployment.chainId !== chainId)
    throw new OperatorError(`${file} is for chain ${deployment.chainId}, not ${chainId}`);
  const [deployer, alice, bob, carol, , lp] = await hre.ethers.getSigners();
  const result = await seedDemo(deployment, { deployer, alice, bob, carol, lp });
  // Raw integers for scripts, and the same in readable units: `lpShares` is in the pool's share units
  // (the quote's decimals plus its offset, 12 for USDC), the expiries are Unix seconds.
  const pool = await hre.ethers.getContractAt("IERC20Metadata", deployment.contracts.liquidityPool);
  const readable = {
    lpSharesWhole: hre.ethers.formatUnits(result.lpShares, await pool.decimals()),
    expiriesUtc: {
      soon: new Date(Number(result.expiries.soon) * 1000).toISOString(),
      month: new Date(Number(result.expiries.month) * 1000).toISOString(),
    },
  };
  console.log(
    JSON.stringify({ msg: "seeded", chainId, ...result, ...readable }, (_k, v) =>
      typeof v === "bigint" ? v.toString() : v,
    ),
  );
}

main().catch((error: unknown) => {
  console.error(operatorMessage("seed", error));
  process.exitCode = 1;
});
