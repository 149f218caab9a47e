import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import fc from "fast-check";
import { wad } from "../shared/system";

async function harnesses() {
  return {
    risk: await ethers.deployContract("RiskMathHarness"),
    portfolio: await ethers.deployContract("PortfolioMathHarness"),
  };
}

describe("RiskMath", function () {
  describe("linearRequirement", function () {
    it("charges |Δ|·spot·s rounded up plus the contingency rounded up", async function () {
      const { risk } = await loadFixture(harnesses);
      // Δ = −1.5 at spot 3,000.000000000000000001, s = 10%: the move 300.0000000000000000001 rounds up
      // to 300.000000000000000001; the loss 1.5 · that = 450.0000000000000000015 rounds up to
      // 450.000000000000000002; contingency 4,500.000000000000000002 · 0.2% = 9.000000000000000000004
      // rounds up to 9.000000000000000001. Total 459.000000000000000003.
      const spot = wad("3000") + 1n;
      expect(
        await risk.linearRequirement(-wad("1.5"), wad("4500") + 2n, spot, wad("0.1"), wad("0.002")),
      ).to.equal(wad("459") + 3n);
      expect(await risk.linearRequirement(0n, 0n, spot, wad("0.1"), wad("0.002"))).to.equal(0n);
    });

    it("equals PortfolioMath.requirement for every book without gamma, vega or options", async function () {
      const { risk, portfolio } = await loadFixture(harnesses);
      // Sizes up to the largest open-interest cap (1e30), prices within the router's uint120 bounds;
      // small values too, where the grid's roundings matter most.
      const size = fc.oneof(fc.bigInt(-(10n ** 30n), 10n ** 30n), fc.bigInt(-1000n, 1000n));
      const spot = fc.oneof(fc.bigInt(1n, 2n ** 120n - 1n), fc.bigInt(1n, 10n ** 6n));
      const shock = fc.bigInt(0n, wad("1"));
      const contingency = fc.bigInt(0n, wad("0.1"));
      const notional = fc.bigInt(0n, 2n ** 180n);
      const volShock = fc.bigInt(0n, wad("2"));
      const floor = fc.bigInt(0n, wad("0.5"));
      await fc.assert(
        fc.asyncProperty(
          size,
          spot,
          shock,
          contingency,
          notional,
          volShock,
          floor,
          async (delta, s, k, c, n, v, f) => {
            const greeks = { delta, gamma: 0n, vega: 0n, optionSize: 0n, notional: n, vanna: 0n, volga: 0n };
            const shocks = { spotShock: k, volShock: v, shortOptionFloor: f, contingency: c };
            expect(await risk.linearRequirement(delta, n, s, k, c)).to.equal(
              await portfolio.requirement(greeks, s, shocks, []),
            );
          },
        ),
        { numRuns: 300 },
      );
    });
  });
});
