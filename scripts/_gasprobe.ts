import { ethers } from "hardhat";
import { MarginMode, deploySystem, openAccount, wad } from "../test/shared/system";
import { trade } from "../test/shared/perps";
import { assetId } from "../test/shared/oracles";

async function main() {
  const sys = await deploySystem();
  const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * 10n ** 6n]]);
  const g = async (label: string, p: Promise<bigint>) => console.log(label.padEnd(28), Number(await p) - 21000);
  await g("health (no positions)", sys.engine.health.estimateGas(id));
  await g("collateralValue", sys.vault.collateralValue.estimateGas(id));
  const tx = await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("1"));
  console.log("first trade gasUsed", (await tx.wait())!.gasUsed);
  const tx2 = await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("1"));
  console.log("second trade gasUsed", (await tx2.wait())!.gasUsed);
  await g("health (1 perp)", sys.engine.health.estimateGas(id));
  await g("getPrice ETH", sys.router.getPrice.estimateGas(assetId("ETH")));
  await g("getVolatility ETH", sys.router.getVolatility.estimateGas(assetId("ETH")));
  await g("exposure", sys.perps.exposure.estimateGas(id, sys.markets.ETH, wad("3000"), wad("0.6")));
  await g("isFrozen", sys.auction.isFrozen.estimateGas(id));
  await g("requireInitialMargin", sys.engine.requireInitialMargin.estimateGas(id));
  const h = await ethers.deployContract("PortfolioMathHarness");
  const greeks = { delta: wad("1"), gamma: 0n, vega: 0n, optionSize: 0n, notional: wad("3000") };
  const shocks = { spotShock: wad("0.1"), volShock: wad("0.25"), shortOptionFloor: wad("0.05"), contingency: wad("0.002") };
  await g("PortfolioMath.requirement", h.requirement.estimateGas(greeks, wad("3000"), shocks));
  await g("PortfolioMath.spotShock", h.spotShock.estimateGas(wad("0.1"), wad("3"), wad("0.6"), 86400n, wad("0.5"), wad("50000000"), wad("3000")));
}
main();
