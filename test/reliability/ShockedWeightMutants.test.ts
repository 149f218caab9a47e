import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { accountHealth, getAccountState } from "../../sdk/src";
import { parseNetworkConfig } from "../../deploy/networkConfig";
import { buildXMarginModule } from "../../deploy/modules/XMargin";
import {
  DEFAULT_RISK_PARAMS,
  MarginMode,
  WAD,
  atLatestTimestamp,
  deploySystem,
  openAccount,
  wad,
  type System,
} from "../shared/system";
import { trade } from "../shared/perps";
import { assetId, setFeedPrice } from "../shared/oracles";
import { sdkClient } from "../shared/sdk";
import { rawConfig } from "../shared/configs";

/**
 * What review round 149's mutants of row 420's fix (commit 8946050) showed the suite left open: the
 * setter's bound at 1 and its step when a shocked weight falls back to the weights, the throttle's exact
 * interval and the key it shares with the weights (row 452), the credit and its cap at the MM floor to the
 * wei (rounding down, at both levels since row 451, engine and SDK alike), and the parser's default for a
 * token without a shocked weight. Each spec fails on a mutant that the rest of the suite let through (docs/reliability.md §4
 * rows 460–).
 */
const ETH = assetId("ETH");
const DAY = 86_400;

/** The throttle's id of `token`: its address as a bytes32 (CollateralVault._tokenId). */
async function tokenId(token: { getAddress(): Promise<string> }): Promise<string> {
  return ethers.zeroPadValue(await token.getAddress(), 32);
}

/**
 * ETH at 3,001.23456789 (so no product below is a whole number of wei), ETH's shock floors cut to 0.07 (IM)
 * and 0.03 (MM), WETH's shocked weight at 1: its credit over the 0.95 maintenance weight, 0.05 of its mark,
 * is above the MM floor, so the cap binds at both levels. An account of 100 WETH + 1 wei, long 1 ETH perp.
 */
async function cappedCredits() {
  const sys = await deploySystem();
  await setFeedPrice(sys.feeds.ETH, "3001.23456789");
  await sys.engine.setRiskParams(ETH, {
    ...DEFAULT_RISK_PARAMS,
    imShockFloor: wad("0.07"),
    mmShockFloor: wad("0.03"),
  });
  await sys.vault.setShockedWeight(sys.weth, wad("1"));
  const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100") + 1n]]);
  await atLatestTimestamp();
  await trade(sys.perps, sys.alice, id, sys.markets.ETH, WAD);
  await atLatestTimestamp();
  return { sys, id };
}

/** What the engine's health adds to each level's equity beyond the vault's weighted sums and the positions. */
async function engineCredits(sys: System, id: bigint) {
  const c = await sys.vault.collateralValue(id);
  const h = await sys.engine.health(id);
  const [spot, volatility] = [await sys.router.getPrice(ETH), await sys.router.getVolatility(ETH)];
  const { exitDiscount } = await sys.perps.exposure(id, sys.markets.ETH, spot, volatility);
  const positionValue = h.equityMark - c.mark;
  return {
    c,
    h,
    initial: h.equityInitial - c.initial - positionValue + exitDiscount,
    maintenance: h.equityMaintenance - c.maintenance - positionValue,
  };
}

describe("Row 420's fix under mutation (review round 149)", function () {
  describe("the risk role's shocked-weight setter", function () {
    it("refuses a shocked weight one wei above 1 even when it moves the weight counted by one wei (WETH at 1, a day later)", async function () {
      const sys = await loadFixture(deploySystem);
      await sys.vault.setShockedWeight(sys.weth, wad("1"));
      await time.increase(DAY);
      // _shockedStep(1, 1 + 1 wei, 0.90) = 1 wei: within the step, so only the bound at MAX_WEIGHT refuses it.
      await expect(sys.vault.setShockedWeight(sys.weth, WAD + 1n))
        .to.be.revertedWithCustomError(sys.vault, "ShockedWeightOutOfBounds")
        .withArgs(await sys.weth.getAddress(), WAD + 1n);
      await sys.vault.setShockedWeight(sys.weth, WAD);
    });

    it("takes a shocked weight back to 0 (the weights) when the weight counted moves by a step at most: WETH 0.99 → 0, sWETH 1 → 0.90 (a full step at both levels) but not 1 → 0", async function () {
      const sys = await loadFixture(deploySystem);
      // sWETH's MM weight 0.92 → 0.90, so that a shocked weight can move the MM weight counted a full step.
      await sys.vault.setCollateralWeights(sys.sweth, wad("0.85"), wad("0.9"));
      await time.increase(DAY); // the weights and the shocked weight share one clock (row 452)
      await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
      await sys.vault.setShockedWeight(sys.sweth, wad("0.95"));
      await time.increase(DAY);
      // WETH 0.90 / 0.95: IM counts max(0.99, 0.90) → max(0, 0.90), 0.09; MM 0.99 → 0.95, 0.04. The raw
      // move 0.99 → 0 is 0.99: the step is between the weights counted, clamped at the token's own.
      await expect(sys.vault.setShockedWeight(sys.weth, 0n))
        .to.emit(sys.vault, "ShockedWeightUpdated")
        .withArgs(await sys.weth.getAddress(), 0n);
      expect((await sys.vault.collateralConfig(sys.weth)).shockedWeight).to.equal(0n);
      // sWETH 0.85 / 0.90 at 0.95 → 1 (IM +0.05), then down: to 0 IM counts 1 → 0.85 (0.15, refused); to
      // 0.90 IM counts 1 → 0.90 and MM 1 → 0.90, exactly 0.10 each: a full step passes at both levels.
      await sys.vault.setShockedWeight(sys.sweth, WAD);
      await time.increase(DAY);
      await expect(sys.vault.setShockedWeight(sys.sweth, 0n))
        .to.be.revertedWithCustomError(sys.vault, "ShockedWeightOutOfBounds")
        .withArgs(await sys.sweth.getAddress(), 0n);
      await expect(sys.vault.setShockedWeight(sys.sweth, wad("0.9"))).to.emit(
        sys.vault,
        "ShockedWeightUpdated",
      );
    });

    it("refuses a second update until exactly MIN_UPDATE_INTERVAL (1 day) later: at +86,399 s UpdateTooSoon(next = +86,400), at +86,400 it passes", async function () {
      const sys = await loadFixture(deploySystem);
      await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
      const t0 = BigInt(await time.latest());
      await time.setNextBlockTimestamp(t0 + BigInt(DAY) - 1n);
      await expect(sys.vault.setShockedWeight(sys.weth, wad("0.98")))
        .to.be.revertedWithCustomError(sys.vault, "UpdateTooSoon")
        .withArgs(ethers.encodeBytes32String("collateralWeights"), await tokenId(sys.weth), t0 + BigInt(DAY));
      await time.setNextBlockTimestamp(t0 + BigInt(DAY));
      await sys.vault.setShockedWeight(sys.weth, wad("0.98"));
      expect((await sys.vault.collateralConfig(sys.weth)).shockedWeight).to.equal(wad("0.98"));
    });
  });

  describe("100 WETH + 1 wei at 3,001.23456789, shocked weight 1, floors 0.07 / 0.03, long 1 ETH: credits to the wei", function () {
    it("values the token's credit in the vault rounded down: mark 300,123.456789000000003001, 0.05·mark at both levels", async function () {
      const { sys, id } = await loadFixture(cappedCredits);
      const c = await sys.vault.collateralValue(id);
      expect(c.tokenMarks.length).to.equal(1);
      const t = c.tokenMarks[0];
      expect(t.oracleAsset).to.equal(ETH);
      // mark = (100e18 + 1)·3,001.23456789e18 / 1e18 = 300,123.456789e18 + 3,001.23456789 wei, rounded down.
      expect(t.mark).to.equal(300_123_456789_000000_003001n);
      // The sums hold the weights alone, less the USDC debt the perp's fee left (t.mark − c.mark, ≈ 1.50):
      // 0.90·mark = …2,700.9 → …2,700; 0.95·mark = …2,850.95 → …2,850.
      const debt = t.mark - c.mark;
      expect(debt).to.be.gt(0n);
      expect(c.initial).to.equal(270_111_111110_100000_002700n - debt);
      expect(c.maintenance).to.equal(285_117_283949_550000_002850n - debt);
      // One credit over the maintenance weight at both levels (row 451): (1 − 0.95)·mark = 15,006.17283945e18
      // + 150.05 wei → …150 (over the initial weight it would be 30,012.3456789e18 + 300.1 wei).
      expect(t.credit).to.equal(15_006_172839_450000_000150n);
    });

    it("caps the credit at mark · the MM floor, rounded down, at both levels: 0.03·mark = 9,003.703703670000000090", async function () {
      const { sys, id } = await loadFixture(cappedCredits);
      const { initial, maintenance } = await engineCredits(sys, id);
      // 0.03·mark = 9,003.70370367e18 + 90.03 wei → …090 (uncapped: 15,006.17…; at the IM floor: 15,006.17…,
      // 0.07·mark = 21,008.64… being above the credit).
      expect(initial).to.equal(9_003_703703_670000_000090n);
      expect(maintenance).to.equal(9_003_703703_670000_000090n);
    });

    it("gives the SDK's health the same equity at both levels, to the wei", async function () {
      const { sys, id } = await loadFixture(cappedCredits);
      const { h } = await engineCredits(sys, id);
      const state = await getAccountState(await sdkClient(sys, sys.alice), { accountId: id });
      const sdk = accountHealth(state);
      expect(sdk.equityInitial).to.equal(h.equityInitial);
      expect(sdk.equityMaintenance).to.equal(h.equityMaintenance);
      expect(sdk.groups[ETH.toLowerCase()].credit).to.equal(9_003_703703_670000_000090n);
    });
  });

  describe("the token's delta in its group, rounded down", function () {
    /** ETH at 3,001.23456789; 100 WETH + 1 wei short 100 ETH perps (cash and carry). */
    async function inexactCarry() {
      const sys = await deploySystem();
      await setFeedPrice(sys.feeds.ETH, "3001.23456789");
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100") + 1n]]);
      await atLatestTimestamp();
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, -wad("100"));
      await atLatestTimestamp();
      return { sys, id };
    }

    it("nets 100 WETH + 1 wei against a 100 ETH short to a delta of 0: IM = MM = the contingency alone, 0.002 · 300,123.456789 = 600.246913578", async function () {
      const { sys, id } = await loadFixture(inexactCarry);
      const h = await sys.engine.health(id);
      // delta = mark·1e18 / spot = (300,123.456789e18 + 3,001)·1e18 / 3,001.23456789e18 = 100e18 + 0.99992…
      // → 100e18: against −100e18 no scenario moves the book, and the grid charges only 0.002 of the
      // perp's notional. Rounded up, the 1 wei of delta left would add its shock (≈ 300 wei) at each level.
      expect(h.initialRequirement).to.equal(600_246913_578000_000000n);
      expect(h.maintenanceRequirement).to.equal(600_246913_578000_000000n);
    });
  });

  describe("the deploy config's shocked weight", function () {
    it("parses an absent shocked weight as 0 and sets none for it; a given one as WAD, set right after its listing", function () {
      const raw = rawConfig("sepolia");
      delete raw.tokens.WBTC.shockedWeight;
      const config = parseNetworkConfig(raw);
      expect(config.tokens.WBTC.shockedWeight).to.equal(0n);
      expect(config.tokens.USDC.shockedWeight).to.equal(0n);
      expect(config.tokens.WETH.shockedWeight).to.equal(wad("0.99"));
      const ids = [...buildXMarginModule(config).futures].map((f) => f.id.replace(/^XMargin#/, ""));
      expect(ids.filter((x) => x.startsWith("setShockedWeight"))).to.deep.equal(["setShockedWeight_WETH"]);
    });

    it("refuses a shocked weight on the quote token before anything is deployed", function () {
      const raw = rawConfig("sepolia");
      raw.tokens.USDC.shockedWeight = "0.99";
      expect(() => parseNetworkConfig(raw)).to.throw(
        "tokens.USDC.shockedWeight: the quote token prices no underlying and is never shocked",
      );
    });
  });
});
