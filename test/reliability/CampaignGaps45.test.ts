import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, deploySystem, openAccount, wad } from "../shared/system";
import { assetId } from "../shared/oracles";
import { trade } from "../shared/perps";
import { deployToken } from "../shared/tokens";

/**
 * Round 151: the campaign's model (test/reliability/model.ts) lists collateral mid-run (`listToken`) and
 * uses it (`token`): 10,000 fresh steps met no violation. These specs pin, on hand-picked states, the two
 * rules the model predicts for it: the order of listCollateral's refusals, and a token priced by ETH
 * taking its own capped credit beside WETH's while the account holds ETH positions.
 */
const USDC = 10n ** 6n;

async function unlistedTokens() {
  const sys = await deploySystem();
  const tokens = [];
  for (const symbol of ["A", "B", "C", "D", "E"]) tokens.push(await deployToken(symbol, symbol, 18));
  const whole = await deployToken("WHOLE", "WHOLE", 0);
  return { sys, tokens, whole };
}

async function hedgedWithTwoEthTokens() {
  const sys = await deploySystem();
  const xeth = await deployToken("xETH", "xETH", 18);
  await sys.vault.listCollateral(xeth, assetId("ETH"), wad("0.8"), wad("0.85"), wad("1000"), false);
  await sys.vault.setShockedWeight(xeth, wad("0.9"));
  await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [
    [sys.usdc, 5_000n * USDC],
    [sys.weth, wad("1")],
    [xeth, wad("2")],
  ]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("2"));
  return { sys, xeth, alice };
}

describe("Reliability: the campaign's gaps (round 151)", function () {
  describe("listToken: collateral listed while accounts are open", function () {
    it("refuses listCollateral in the vault's order: a token listed before (delisted too), an eighth non-quote token before its price, an unpriced asset, a unit worth more than ten cents", async function () {
      const { sys, tokens, whole } = await loadFixture(unlistedTokens);
      const { vault } = sys;
      const list = (token: (typeof tokens)[number], asset: string) =>
        vault.listCollateral(token, assetId(asset), wad("0.8"), wad("0.85"), wad("1000"), false);
      await list(tokens[0], "ETH");
      await vault.delistCollateral(tokens[0]);
      await expect(list(tokens[0], "ETH")).to.be.revertedWithCustomError(vault, "TokenAlreadyListed");
      await expect(list(tokens[1], "NOPX")).to.be.revertedWithCustomError(vault, "UnpricedAsset");
      await expect(
        vault.listCollateral(whole, assetId("ETH"), wad("0.8"), wad("0.85"), 1_000n, false),
      ).to.be.revertedWithCustomError(vault, "ParameterOutOfBounds");
      // WETH, WBTC and sWETH at setup, the delisted A: three more fill the seven places.
      for (const token of tokens.slice(1, 4)) await list(token, "ETH");
      await expect(list(tokens[4], "NOPX"))
        .to.be.revertedWithCustomError(vault, "CollateralListFull")
        .withArgs(7);
    });

    it("counts an ETH-backed token held with an ETH position at its own credit, capped at mark · the MM floor, beside WETH's", async function () {
      const { sys, xeth, alice } = await loadFixture(hedgedWithTwoEthTokens);
      const eth = assetId("ETH");
      const [h, [c], risk, spot, vol, x, weth] = await Promise.all([
        sys.engine.health(alice),
        sys.vault.collateralValues([alice]),
        sys.engine.riskParams(eth),
        sys.router.getPrice(eth),
        sys.router.getVolatility(eth),
        sys.vault.collateralConfig(xeth),
        sys.vault.collateralConfig(sys.weth),
      ]);
      const value = (await sys.perps.exposure(alice, sys.markets.ETH, spot, vol)).value;
      const credit = (mark: bigint, config: typeof x) => {
        const raw = (mark * (config.shockedWeight - config.maintenanceWeight)) / WAD;
        const cap = (mark * risk.mmShockFloor) / WAD;
        return raw < cap ? raw : cap;
      };
      const credits = credit(spot, weth) + credit(2n * spot, x);
      expect(credits).to.be.gt(0n);
      expect(h.equityMaintenance - c.maintenance - value).to.equal(credits);
      expect(h.equityInitial - c.initial - value).to.equal(credits);
      // Withdrawn, the token takes its credit (and its delta) with it.
      await sys.vault.connect(sys.alice).withdraw(alice, xeth, wad("2"), sys.alice.address);
      const after = await sys.engine.health(alice);
      const [c2] = await sys.vault.collateralValues([alice]);
      const value2 = (await sys.perps.exposure(alice, sys.markets.ETH, spot, vol)).value;
      expect(after.equityMaintenance - c2.maintenance - value2).to.equal(credit(spot, weth));
    });
  });
});
