/**
 * `npm run demo`: the protocol's main job on Hardhat's in-process chain. Deploys the whole system,
 * opens sub-accounts, deposits several kinds of collateral and prints what each account is worth.
 */
import { ethers } from "hardhat";
import type { Signer } from "ethers";
import { MarginMode, deploySystem, openAccount, type System } from "../test/shared/system";
import { mintAndApprove } from "../test/shared/tokens";
import { trade } from "../test/shared/perps";
import { setFeedPrice } from "../test/shared/oracles";
import { marginTableMarkdown, referenceMarginTable } from "../test/shared/referenceBooks";

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

  await crossVersusIsolated(sys);

  console.log(
    "\nOptions next to perps: initial margin of reference books (ETH 3,000, 30-day options, USD) when each leg\n" +
      "sits in its own isolated account, when legs are margined one by one (standard), and on the portfolio grid",
  );
  console.log(marginTableMarkdown(await referenceMarginTable()));
}

const ratio = (r: bigint): string => (r === ethers.MaxUint256 ? "∞" : fmt(r, 18, 3));

async function healthRows(sys: System, accounts: [string, bigint][]): Promise<Record<string, string>[]> {
  const rows = [];
  for (const [label, id] of accounts) {
    const h = await sys.engine.health(id);
    rows.push({
      account: label,
      equity_IM: fmt(h.equityInitial),
      IM: fmt(h.initialRequirement),
      equity_MM: fmt(h.equityMaintenance),
      MM: fmt(h.maintenanceRequirement),
      "health (eq_MM/MM)": ratio(h.healthRatio),
      status: h.equityMaintenance < h.maintenanceRequirement ? "LIQUIDATABLE" : "healthy",
    });
  }
  return rows;
}

/**
 * The same two positions — long 5 ETH, short 0.25 BTC — held once in a CROSS account and once split
 * over two ISOLATED accounts with the same total collateral. Both prices rise 8%: the ETH gain carries
 * the BTC loss in the cross account, while the isolated short BTC account falls below maintenance.
 */
async function crossVersusIsolated(sys: System): Promise<void> {
  const usdc = (x: bigint): bigint => x * 10n ** 6n;
  const cross = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, usdc(3_400n)]]);
  const isoLong = await openAccount(sys, sys.carol, MarginMode.ISOLATED, [[sys.usdc, usdc(1_700n)]]);
  const isoShort = await openAccount(sys, sys.carol, MarginMode.ISOLATED, [[sys.usdc, usdc(1_700n)]]);
  const eth = ethers.parseEther("5");
  const btc = ethers.parseEther("0.25");
  await trade(sys.perps, sys.carol, cross, sys.markets.ETH, eth);
  await trade(sys.perps, sys.carol, cross, sys.markets.BTC, -btc);
  await trade(sys.perps, sys.carol, isoLong, sys.markets.ETH, eth);
  await trade(sys.perps, sys.carol, isoShort, sys.markets.BTC, -btc);
  const accounts: [string, bigint][] = [
    ["cross: +5 ETH, −0.25 BTC (3,400 USDC)", cross],
    ["isolated: +5 ETH (1,700 USDC)", isoLong],
    ["isolated: −0.25 BTC (1,700 USDC)", isoShort],
  ];

  console.log("\nPerpetuals against the liquidity pool: ETH 3,000, BTC 60,000");
  console.table(await healthRows(sys, accounts));

  await setFeedPrice(sys.feeds.ETH, "3240");
  await setFeedPrice(sys.feeds.BTC, "64800");
  console.log("\nBoth prices +8%: the ETH gain carries the BTC loss only where they share collateral");
  console.table(await healthRows(sys, accounts));

  // The isolated short is liquidated by a Dutch auction: a keeper starts it, Bob buys a slice.
  await sys.auction.connect(sys.keeper).startAuction(isoShort);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, usdc(50_000n)]]);
  const tx = await sys.auction.connect(sys.bob).bid(isoShort, bob, ethers.parseEther("1"), ethers.MaxUint256);
  const receipt = await tx.wait();
  const bid = receipt!.logs
    .map((log) => sys.auction.interface.parseLog(log))
    .find((event) => event?.name === "AuctionBid");
  const [, , fraction, payment, penalty, discount] = bid!.args as unknown as bigint[];
  console.log(
    `\nLiquidation auction of the isolated short: Bob bought ${fmt(fraction * 100n, 18, 2)}% of the portfolio ` +
      `(capped at the fraction that restores it) for ${fmt(payment, 6)} USDC at a ${fmt(discount * 100n, 18, 2)}% ` +
      `discount; penalty to the insurance fund ${fmt(penalty, 6)} USDC.`,
  );
  console.table(await healthRows(sys, [...accounts.slice(2), ["Bob (bidder)", bob]]));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
