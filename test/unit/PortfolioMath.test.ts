import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { wad } from "../shared/system";

const DAY = 86_400n;
const noGreeks = { delta: 0n, gamma: 0n, vega: 0n, optionSize: 0n, notional: 0n, vanna: 0n, volga: 0n };
/** 10% spot shock, ±25 vol points, no add-ons. */
const gridOnly = { spotShock: wad("0.1"), volShock: wad("0.25"), shortOptionFloor: 0n, contingency: 0n };

async function harness() {
  return ethers.deployContract("PortfolioMathHarness");
}

describe("PortfolioMath", function () {
  describe("spotShock", function () {
    it("uses the floor when z·σ·√horizon is smaller", async function () {
      const math = await loadFixture(harness);
      // σ = 20%, 1 day: 3 · 0.2 · √(1/365) = 0.0314 < floor 0.10
      expect(await math.spotShock(wad("0.1"), wad("3"), wad("0.2"), DAY, wad("0.5"), 0n, 0n)).to.equal(
        wad("0.1"),
      );
    });

    it("scales with volatility above the floor", async function () {
      const math = await loadFixture(harness);
      // σ = 200%, 1 day: 3 · 2 · √(1/365) = 6 · 0.052342392... = 0.31405...
      const shock = await math.spotShock(wad("0.1"), wad("3"), wad("2"), DAY, wad("0.5"), 0n, 0n);
      expect(shock).to.be.closeTo(wad("0.314054"), wad("0.000001"));
    });

    it("grows with the size of the book and is capped", async function () {
      const math = await loadFixture(harness);
      // floor 0.10 · (1 + 25M / 50M) = 0.15
      expect(
        await math.spotShock(
          wad("0.1"),
          wad("3"),
          wad("0.2"),
          DAY,
          wad("0.5"),
          wad("50000000"),
          wad("25000000"),
        ),
      ).to.equal(wad("0.15"));
      // 0.10 · (1 + 500M / 50M) = 1.1, capped at 0.5
      expect(
        await math.spotShock(
          wad("0.1"),
          wad("3"),
          wad("0.2"),
          DAY,
          wad("0.5"),
          wad("50000000"),
          wad("500000000"),
        ),
      ).to.equal(wad("0.5"));
    });
  });

  describe("requirement", function () {
    it("charges a single perp |size|·spot·s plus the contingency", async function () {
      const math = await loadFixture(harness);
      // 2 ETH long at 3,000: worst scenario −10% → 2·3000·0.10 = 600; contingency 0.2% · 6,000 = 12
      const greeks = { ...noGreeks, delta: wad("2"), notional: wad("6000") };
      const shocks = {
        spotShock: wad("0.1"),
        volShock: wad("0.25"),
        shortOptionFloor: wad("0.05"),
        contingency: wad("0.002"),
      };
      expect(await math.requirement(greeks, wad("3000"), shocks, [])).to.equal(wad("612"));
    });

    it("nets offsetting deltas on one underlying to the contingency alone", async function () {
      const math = await loadFixture(harness);
      // +2 and −2 ETH: Δ = 0, gross notional 12,000 → 0.2% · 12,000 = 24
      const greeks = { ...noGreeks, notional: wad("12000") };
      const shocks = { spotShock: wad("0.1"), volShock: 0n, shortOptionFloor: 0n, contingency: wad("0.002") };
      expect(await math.requirement(greeks, wad("3000"), shocks, [])).to.equal(wad("24"));
    });

    it("adds the short-option floor and the vega and gamma terms", async function () {
      const math = await loadFixture(harness);
      // Short 1 ATM call: Δ = −0.5, Γ = −0.0005 /USD, vega = −300 USD per 1.0 (100 points) of vol, 1 contract short.
      // Scenarios at spot 3,000, s = 10% (dS = ±300, ±150), vol shock ±0.25:
      //   dS = +300, dσ = +0.25: PnL = −0.5·300 − ½·0.0005·300² − 300·0.25 = −150 − 22.5 − 75 = −247.5
      //   floor: 1 · 3,000 · 5% = 150; contingency 0
      const greeks = {
        delta: -wad("0.5"),
        gamma: -wad("0.0005"),
        vega: -wad("300"),
        optionSize: -wad("1"),
        notional: wad("3000"),
        vanna: 0n,
        volga: 0n,
      };
      const shocks = {
        spotShock: wad("0.1"),
        volShock: wad("0.25"),
        shortOptionFloor: wad("0.05"),
        contingency: 0n,
      };
      expect(await math.worstScenarioLoss(greeks, wad("3000"), shocks, [])).to.equal(wad("247.5"));
      expect(await math.requirement(greeks, wad("3000"), shocks, [])).to.equal(wad("397.5"));
    });

    it("rounds a fractional loss up against the account", async function () {
      const math = await loadFixture(harness);
      // Δ = 1e-18 ETH (1 wei of size) at a 3,000 spot and 10%: loss 300e-18 → exactly 300 wei;
      // Δ = 1 wei, spot 1 wei, s = 0.5: dS = 1 wei (ceil), ½-move rounds to 0; PnL 1e-18 wei → loss 1 wei
      const spotOnly = (spotShock: bigint) => ({ ...gridOnly, spotShock, volShock: 0n });
      expect(
        await math.worstScenarioLoss({ ...noGreeks, delta: 1n }, wad("3000"), spotOnly(wad("0.1")), []),
      ).to.equal(300n);
      expect(await math.worstScenarioLoss({ ...noGreeks, delta: 1n }, 1n, spotOnly(wad("0.5")), [])).to.equal(
        1n,
      );
    });

    it("charges vanna and volga in the corners of the grid", async function () {
      const math = await loadFixture(harness);
      // vanna = −2 ETH per 1.0 of vol, volga = −400 USD per 1.0² (a short out-of-the-money option's
      // signs), everything else 0. At spot 3,000, s = 10%, v = 0.25:
      //   dS = +300, dσ = +0.25: vanna·dS·dσ = −2·300·0.25 = −150; ½·volga·dσ² = −200·0.0625 = −12.5
      //   dS = −300, dσ = −0.25: +(−2)·(−300)·(−0.25) = −150; −12.5 → the same −162.5
      //   dS = −300, dσ = +0.25: +150 − 12.5; dS = 0: −12.5 — so the worst loss is 162.5
      const greeks = { ...noGreeks, vanna: -wad("2"), volga: -wad("400") };
      expect(await math.worstScenarioLoss(greeks, wad("3000"), gridOnly, [])).to.equal(wad("162.5"));
    });

    it("adds the repriced positions' PnL cell by cell", async function () {
      const math = await loadFixture(harness);
      // A long perp of 1 ETH (Taylor) and a repriced position losing 500 only when spot falls 10% and
      // vol rises 25 points (cell i = 0, j = 2): −300 − 500 = −800 there, at most −300 elsewhere.
      const repriced = Array.from({ length: 15 }, (_, c) => (c === 2 ? -wad("500") : 0n));
      const greeks = { ...noGreeks, delta: wad("1") };
      expect(await math.worstScenarioLoss(greeks, wad("3000"), gridOnly, repriced)).to.equal(wad("800"));
      // The same repriced loss in the centre cell (no move) counts too: a repriced PnL is taken as given.
      const centre = Array.from({ length: 15 }, (_, c) => (c === 7 ? -wad("50") : 0n));
      expect(await math.worstScenarioLoss(noGreeks, wad("3000"), gridOnly, centre)).to.equal(wad("50"));
    });
  });

  describe("scenarioMoves", function () {
    it("lays out spot moves ⌈spot·s⌉·{−1, −½, 0, ½, 1} and volatility moves {−v, 0, +v}", async function () {
      const math = await loadFixture(harness);
      const [spotMoves, volMoves] = await math.scenarioMoves(wad("3000"), gridOnly);
      expect(spotMoves).to.deep.equal([-wad("300"), -wad("150"), 0n, wad("150"), wad("300")]);
      expect(volMoves).to.deep.equal([-wad("0.25"), 0n, wad("0.25")]);
      // spot 1 wei, s = 0.5: the full move rounds up to 1 wei, the half moves truncate to 0
      const [tiny] = await math.scenarioMoves(1n, { ...gridOnly, spotShock: wad("0.5") });
      expect(tiny).to.deep.equal([-1n, 0n, 0n, 0n, 1n]);
    });
  });

  describe("needsRepricing", function () {
    it("reprices an option when a shock exceeds its σ√τ or half its volatility, never a linear position", async function () {
      const math = await loadFixture(harness);
      // s = 10%, v = 25 points
      expect(await math.needsRepricing(wad("0.0999"), wad("0.6"), gridOnly)).to.equal(true); // near expiry
      expect(await math.needsRepricing(wad("0.17"), wad("0.2"), gridOnly)).to.equal(true); // low volatility
      // Review round 26: a 25-point fall from 30% took the expansion where it says nothing.
      expect(await math.needsRepricing(wad("0.17"), wad("0.3"), gridOnly)).to.equal(true); // 2·25 > 30 points
      expect(await math.needsRepricing(wad("0.1"), wad("0.5"), gridOnly)).to.equal(false); // at both bounds
      expect(await math.needsRepricing(0n, 0n, gridOnly)).to.equal(false); // perps, expired, settled
    });
  });
});
