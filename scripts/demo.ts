/**
 * `npm run demo`: the protocol's main job on Hardhat's in-process chain. Deploys the whole system,
 * opens sub-accounts, deposits several kinds of collateral and prints what each account is worth.
 */
import { ethers } from "hardhat";
import type { Signer } from "ethers";
import { MarginMode, deploySystem, openAccount, type System } from "../test/shared/system";
import { mintAndApprove } from "../test/shared/tokens";

const fmt = (value: bigint, decimals = 18, digits = 2): string =>
  Number(ethers.formatUnits(value, decimals)).toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });

async function collateralTable(sys: System, label: string, accountId: bigint): Promise<void> {
  const rows = [];
  for (const token of await sys.vault.collateralTokens(accountId)) {
    const erc20 = await ethers.getContractAt("MockERC20", token);
    const config = await sys.vault.collateralConfig(token);
    const balance = await sys.vault.balanceOf(accountId, token);
    const value = await sys.vault.tokenValue(token, balance);
    rows.push({
      token: await erc20.symbol(),
      balance: fmt(balance, Number(config.decimals), 4),
      "value (USD)": fmt(value),
      "initial weight": fmt(config.initialWeight, 18),
      "maint. weight": fmt(config.maintenanceWeight, 18),
    });
  }
  const total = await sys.vault.collateralValue(accountId);
  const mode = (await sys.accounts.marginMode(accountId)) === 0n ? "CROSS" : "ISOLATED";
  console.log(`\n${label}: account #${accountId} (${mode})`);
  console.table(rows);
  console.log(
    `  mark ${fmt(total.mark)} USD | at initial weights ${fmt(total.initial)} | at maintenance weights ${fmt(total.maintenance)}`,
  );
}

async function stakedEth(sys: System, owner: Signer, assets: bigint): Promise<bigint> {
  await mintAndApprove(sys.weth, owner, await sys.sweth.getAddress(), assets);
  await sys.sweth.connect(owner).deposit(assets, await owner.getAddress());
  return sys.sweth.balanceOf(await owner.getAddress());
}

async function main(): Promise<void> {
  const sys = await deploySystem();
  console.log("xmargin deployed on the in-process chain");
  console.log(`  vault ${await sys.vault.getAddress()}  engine ${await sys.engine.getAddress()}`);
  console.log("  prices: ETH 3,000 USD, BTC 60,000 USD, USDC 1 USD (Chainlink MockV3Aggregator feeds)");

  const aliceMain = await openAccount(sys, sys.alice, MarginMode.CROSS, [
    [sys.usdc, 10_000n * 10n ** 6n],
    [sys.weth, ethers.parseEther("5")],
    [sys.wbtc, 20_000_000n],
  ]);
  const aliceHedge = await openAccount(sys, sys.alice, MarginMode.ISOLATED, [[sys.usdc, 2_500n * 10n ** 6n]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, ethers.parseEther("2")]]);
  const bobShares = await stakedEth(sys, sys.bob, ethers.parseEther("3"));
  await sys.sweth.simulateYield(ethers.parseEther("0.3")); // 10% yield accrues to the vault's shares
  await sys.sweth.connect(sys.bob).approve(sys.vault, bobShares);
  await sys.vault.connect(sys.bob).deposit(bob, sys.sweth, bobShares);

  await collateralTable(sys, "Alice, main", aliceMain);
  await collateralTable(sys, "Alice, isolated", aliceHedge);
  await collateralTable(sys, "Bob (sWETH shares priced via convertToAssets after 10% yield)", bob);

  const h = await sys.engine.health(aliceMain);
  console.log(
    `\nAlice can withdraw while equity_IM ≥ IM: equity_IM ${fmt(h.equityInitial)} USD, IM ${fmt(h.initialRequirement)} USD`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
