import { expect } from "chai";
import fc from "fast-check";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { ethers } from "hardhat";
import {
  accountHealth,
  getAccountState,
  shockedCredit,
  tokenValue,
  type AccountState,
  type CollateralState,
} from "../../sdk/src";
import {
  DEFAULT_RISK_PARAMS,
  MarginMode,
  WAD,
  atLatestTimestamp,
  deploySystem,
  openAccount,
  wad,
  whatIf,
  type System,
} from "../shared/system";
import { trade } from "../shared/perps";
import { assetId, setFeedPrice } from "../shared/oracles";
import { sdkClient } from "../shared/sdk";

/**
 * A collateral token's shocked weight (review round 147, on round 146's prototype of row 420's fix): a
 * token priced by an underlying the account holds positions on is shocked with them by the grid, so its
 * mark counts at max(maintenanceWeight, shockedWeight) at MM and that less the weights' gap at IM (review
 * round 148: the levels stay apart), a haircut for basis and liquidity only. The engine caps each token's credit, mark·(shockedWeight − weight), at mark · the group's
 * shock floor (the least the grid charges the token alone), so opening the first position on an
 * underlying never frees margin, whatever the weights, the shocked weight, the floors.
 */
const USDC = 10n ** 6n;
const ETH = assetId("ETH");

/** Requirement minus equity at both levels (positive: short of the requirement). */
async function shortfall(sys: System, id: bigint): Promise<[bigint, bigint]> {
  const h = await sys.engine.health(id);
  return [
    BigInt(h.initialRequirement) - h.equityInitial,
    BigInt(h.maintenanceRequirement) - h.equityMaintenance,
  ];
}

/** ETH 3,000 at 60% volatility; WETH's shocked weight at 0.99 (its deploy configuration). */
async function shockedWeth() {
  const sys = await deploySystem();
  await setFeedPrice(sys.volFeeds.ETH, "0.6");
  await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
  return { sys };
}

async function r1Weth() {
  const sys = await deploySystem();
  await setFeedPrice(sys.volFeeds.ETH, "0.6");
  return { sys };
}

async function fullWeth() {
  const sys = await deploySystem();
  await setFeedPrice(sys.volFeeds.ETH, "0.6");
  await sys.vault.setShockedWeight(sys.weth, wad("1"));
  return { sys };
}

function whatIfShort(sys: System, size: bigint) {
  return whatIf(() => wethShort(sys, size));
}

/** 100 WETH short `size` ETH in a CROSS account, IM and MM. */
async function wethShort(sys: System, size: bigint) {
  const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100")]]);
  await atLatestTimestamp();
  await trade(sys.perps, sys.alice, id, sys.markets.ETH, -size);
  await atLatestTimestamp();
  const h = await sys.engine.health(id);
  return { id, h };
}

describe("Collateral shocked with its underlying, at a weight of its own", function () {
  describe("the risk role's setter", function () {
    it("starts every token at 0 (its weights: round 146's rule) and takes a shocked weight within one step of the weight it counts at", async function () {
      const sys = await loadFixture(deploySystem);
      expect((await sys.vault.collateralConfig(sys.weth)).shockedWeight).to.equal(0n);
      // WETH 0.90 / 0.95: to 1.00 moves IM's weight by 0.10, a full step.
      await expect(sys.vault.setShockedWeight(sys.weth, wad("1")))
        .to.emit(sys.vault, "ShockedWeightUpdated")
        .withArgs(await sys.weth.getAddress(), wad("1"));
      expect((await sys.vault.collateralConfig(sys.weth)).shockedWeight).to.equal(wad("1"));
    });

    it("refuses a shocked weight above 1, or one moving a level's weight by more than 0.1 (sWETH 0.85 → 0.96)", async function () {
      const sys = await loadFixture(deploySystem);
      await expect(sys.vault.setShockedWeight(sys.weth, wad("1") + 1n))
        .to.be.revertedWithCustomError(sys.vault, "ShockedWeightOutOfBounds")
        .withArgs(await sys.weth.getAddress(), wad("1") + 1n);
      await expect(sys.vault.setShockedWeight(sys.sweth, wad("0.96")))
        .to.be.revertedWithCustomError(sys.vault, "ShockedWeightOutOfBounds")
        .withArgs(await sys.sweth.getAddress(), wad("0.96"));
      await sys.vault.setShockedWeight(sys.sweth, wad("0.95"));
    });

    it("refuses a second update within the interval, and a caller without the risk role", async function () {
      const sys = await loadFixture(deploySystem);
      await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
      await expect(sys.vault.setShockedWeight(sys.weth, wad("0.95"))).to.be.revertedWithCustomError(
        sys.vault,
        "UpdateTooSoon",
      );
      await expect(
        sys.vault.connect(sys.alice).setShockedWeight(sys.wbtc, wad("0.98")),
      ).to.be.revertedWithCustomError(sys.vault, "AccessManagedUnauthorized");
    });

    it("refuses a token that was never listed (TokenNotListed), storing nothing", async function () {
      const sys = await loadFixture(deploySystem);
      const stranger = ethers.Wallet.createRandom().address;
      await expect(sys.vault.setShockedWeight(stranger, wad("0.99")))
        .to.be.revertedWithCustomError(sys.vault, "TokenNotListed")
        .withArgs(stranger);
      expect((await sys.vault.collateralConfig(stranger)).shockedWeight).to.equal(0n);
    });

    it("refuses the quote token, which prices no underlying (QuoteTokenNeverShocked), storing nothing", async function () {
      const sys = await loadFixture(deploySystem);
      const usdc = await sys.usdc.getAddress();
      await expect(sys.vault.setShockedWeight(usdc, wad("0.99"))).to.be.revertedWithCustomError(
        sys.vault,
        "QuoteTokenNeverShocked",
      );
      expect((await sys.vault.collateralConfig(usdc)).shockedWeight).to.equal(0n);
    });
  });

  describe("100 WETH at 3,000 and 60% volatility, short ETH perps: free margin (equity − requirement) at IM", function () {
    /** Free IM and MM of 100 WETH short `size` ETH (what-if), and of 100 WETH alone: 270,000 and 285,000. */
    async function free(sys: System, size: bigint): Promise<[bigint, bigint]> {
      const { h } = await whatIfShort(sys, size);
      return [
        h.equityInitial - BigInt(h.initialRequirement),
        h.equityMaintenance - BigInt(h.maintenanceRequirement),
      ];
    }

    it("frees more margin with a partial hedge (short 30 ETH) than its weights do: 259,387.88 at WETH's shocked weight 0.99, against 247,387.88 on its weights (round 146)", async function () {
      const r1 = (await free((await loadFixture(r1Weth)).sys, wad("30")))[0];
      const shocked = (await free((await loadFixture(shockedWeth)).sys, wad("30")))[0];
      // The requirement is the grid's either way (21,217.80: 70 WETH unhedged at 10.06%); equity_IM counts
      // the 100 WETH at 0.90 + 0.04 (the credit over the maintenance weight, review round 148) instead of
      // 0.90 (+12,000). Round 147 counted it at 0.99 (274,387.88, above the 270,000 of no position), which
      // left a hedged book no distance between its IM and MM lines (§4 row 451).
      expect(r1).to.equal(wad("247387.875"));
      expect(shocked).to.equal(wad("259387.875"));
    });

    it("margins cash and carry (short 100 ETH) at its contingency on 0.99 of the WETH at MM and 0.94 at IM: free IM 266,257.50 (round 146: 254,257.50), its MM line 15,000 below its IM line", async function () {
      const { sys } = await loadFixture(shockedWeth);
      const { h } = await whatIfShort(sys, wad("100"));
      expect(h.initialRequirement).to.equal(wad("600"));
      expect(h.maintenanceRequirement).to.equal(wad("600"));
      // 282,000 (0.94·300,000) less the short's exit discount and fees: 266,857.50.
      expect(h.equityInitial).to.equal(wad("266857.5"));
      // The weights' gap (0.05·300,000) between the levels, as on the weights alone (review round 148).
      expect(h.equityMaintenance - h.equityInitial).to.equal(wad("15000"));
    });

    it("shrinks the step of the first position (short 1 ETH) from −29,710.78 to −17,710.78 at IM and from −21,743.18 to −9,743.18 at MM; at shocked weight 1, −14,710.78 at IM", async function () {
      const steps = async (fixture: typeof r1Weth) => {
        const [im, mm] = await free((await loadFixture(fixture)).sys, WAD);
        return [im - wad("270000"), mm - wad("285000")];
      };
      expect(await steps(r1Weth)).to.deep.equal([-wad("29710.78125"), -wad("21743.178542818445805")]);
      // At IM the credit is the maintenance one (0.04, at 1: 0.05): the IM step keeps the weights' gap
      // (review round 148; round 147's 0.09 gave −2,710.78, and +289.22 at 1).
      expect(await steps(shockedWeth)).to.deep.equal([-wad("17710.78125"), -wad("9743.178542818445805")]);
      expect((await steps(fullWeth))[0]).to.equal(-wad("14710.78125"));
    });
  });

  describe("the cap at the shock floor under governance (row 450)", function () {
    it("takes 0.03·mark from a WETH long's maintenance equity when ETH's MM floor is cut from 0.05 to 0.01, its MM unchanged (60% volatility)", async function () {
      const { sys } = await loadFixture(shockedWeth);
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100")]]);
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("10"));
      await atLatestTimestamp();
      const before = await sys.engine.health(id);
      await sys.engine.setRiskParams(ETH, { ...DEFAULT_RISK_PARAMS, mmShockFloor: wad("0.01") });
      await atLatestTimestamp();
      const after = await sys.engine.health(id);
      // The grid's MM shock at 60% is 2.33·0.6/√365 ≈ 7.3%, above either floor: the requirement stays.
      expect(after.maintenanceRequirement).to.equal(before.maintenanceRequirement);
      // The credit falls from 0.04·300,000 to 0.01·300,000: a floor cut is a maintenance rise here, and
      // the step budget counts it (next spec).
      expect(before.equityMaintenance - after.equityMaintenance).to.equal(wad("9000"));
    });

    it("counts a cut of the MM floor against the one-step maintenance budget: 0.05 → 0.01 (0.8 step) takes mmZ +0.2 with it, not +0.21", async function () {
      // (0.05 − 0.01) / MAX_SHOCK_STEP 0.05 = 0.8 step, absolute like the credit it caps (mark·floor).
      const cut = { ...DEFAULT_RISK_PARAMS, mmShockFloor: wad("0.01") };
      const { sys } = await loadFixture(shockedWeth);
      await expect(
        sys.engine.setRiskParams(ETH, { ...cut, mmZ: BigInt(DEFAULT_RISK_PARAMS.mmZ) + wad("0.21") }),
      )
        .to.be.revertedWithCustomError(sys.engine, "RiskParamOutOfBounds")
        .withArgs(ethers.encodeBytes32String("maintenanceStep"));
      await expect(
        sys.engine.setRiskParams(ETH, { ...cut, mmZ: BigInt(DEFAULT_RISK_PARAMS.mmZ) + wad("0.2") }),
      ).to.emit(sys.engine, "RiskParamsUpdated");
    });
  });

  describe("no downward discontinuity: the first position on an underlying never frees margin", function () {
    /**
     * ETH's IM floor at 0.05, its MM floor at 0.02 and its volatility at 10% (the IM shock is the IM floor:
     * 5%, the MM shock 2.33·0.1/√365 ≈ 1.2%, raised to the MM floor 2%), WETH's shocked weight at 1: the
     * uncapped credit of 100 WETH in an ETH group, 0.05·300,000 = 15,000 at both levels (over its 0.95
     * maintenance weight), is 2.5 times what the grid charges it at MM (6,000 and a little for the size
     * factor). An account of 100 WETH and 10,000 USDC long 0.1 BTC.
     */
    async function creditAboveShock() {
      const sys = await deploySystem();
      await setFeedPrice(sys.volFeeds.ETH, "0.1");
      await sys.engine.setRiskParams(ETH, {
        ...DEFAULT_RISK_PARAMS,
        imShockFloor: wad("0.05"),
        mmShockFloor: wad("0.02"),
      });
      await sys.vault.setShockedWeight(sys.weth, wad("1"));
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [
        [sys.weth, wad("100")],
        [sys.usdc, 10_000n * USDC],
      ]);
      await trade(sys.perps, sys.alice, id, sys.markets.BTC, wad("0.1"));
      return { sys, id };
    }

    it("counts 100 WETH's credit at the MM shock floor (6,000, not 15,000) at both levels when a dust ETH perp opens, so requirement − equity does not fall", async function () {
      const { sys, id } = await loadFixture(creditAboveShock);
      const before = await shortfall(sys, id);
      const equityBefore = (await sys.engine.health(id)).equityInitial;
      const dust = 10n ** 12n; // 10^-6 ETH
      await atLatestTimestamp();
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, dust);
      const after = await shortfall(sys, id);
      expect(after[0], "IM").to.be.gte(before[0]);
      expect(after[1], "MM").to.be.gte(before[1]);
      // Uncapped, the 0.05 credit would have freed 9,000 at MM with a 0.003 USD position.
      const credit = (await sys.engine.health(id)).equityInitial - equityBefore;
      expect(credit).to.be.closeTo(wad("6000"), wad("0.01"));
      // A dust short is a hedge by its size only: ≤ 0.05·10^-6·3,000 USD.
      await atLatestTimestamp();
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, -2n * dust);
      const short = await shortfall(sys, id);
      expect(short[0], "IM").to.be.gte(before[0] - wad("0.001"));
      expect(short[1], "MM").to.be.gte(before[1] - wad("0.001"));
    });

    it("holds over random books, weights, shocked weights, floors and volatilities (SDK mirror, invariant 6)", async function () {
      const { sys, id } = await loadFixture(creditAboveShock);
      await atLatestTimestamp();
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, WAD);
      const client = await sdkClient(sys, sys.alice);
      const base = await getAccountState(client, { accountId: id });
      const wethAddress = (await sys.weth.getAddress()).toLowerCase();
      const weth = base.collateral.find((c) => c.token === wethAddress);
      const ethPosition = base.positions.findIndex(
        (p) => p.kind === "perp" && p.marketId === sys.markets.ETH,
      );
      expect(weth).to.not.equal(undefined);
      expect(ethPosition).to.be.gte(0);
      const w = (lo: number, hi: number) =>
        fc.bigInt(BigInt(lo * 1e4), BigInt(hi * 1e4)).map((x) => x * 10n ** 14n);
      const token = fc.record({
        balance: fc.bigInt(0n, 10n ** 24n),
        initial: w(0.1, 1),
        extra: w(0, 0.9),
        shocked: w(0, 1),
      });
      let bound = 0;
      await fc.assert(
        fc.property(
          fc.record({
            tokens: fc.array(token, { minLength: 1, maxLength: 2 }),
            usdc: fc.bigInt(0n, 10n ** 12n),
            mmFloor: w(0.01, 0.5),
            imExtra: w(0, 0.5),
            capExtra: w(0, 0.5),
            vol: w(0, 3),
            contingency: w(0, 0.1),
            dust: fc.bigInt(-(10n ** 9n), 10n ** 9n).filter((x) => x !== 0n),
          }),
          (r) => {
            const collateral: CollateralState[] = base.collateral.filter((c) => c !== weth);
            r.tokens.forEach((t, i) => {
              const initialWeight = t.initial;
              const maintenanceWeight = t.initial + t.extra > WAD ? WAD : t.initial + t.extra;
              collateral.push({
                ...weth!,
                token: i === 0 ? weth!.token : "0x00000000000000000000000000000000000000e7",
                balance: t.balance,
                initialWeight,
                maintenanceWeight,
                shockedWeight: t.shocked,
              });
            });
            const mmShockFloor = r.mmFloor;
            const imShockFloor = mmShockFloor + r.imExtra;
            const maxShock = imShockFloor + r.capExtra > WAD ? WAD : imShockFloor + r.capExtra;
            if (imShockFloor > maxShock) return;
            const underlyings = {
              ...base.underlyings,
              [ETH.toLowerCase()]: {
                ...base.underlyings[ETH.toLowerCase()],
                volatility: r.vol,
                risk: {
                  ...base.underlyings[ETH.toLowerCase()].risk,
                  mmShockFloor,
                  imShockFloor,
                  maxShock,
                  contingency: r.contingency,
                },
              },
            };
            const position = base.positions[ethPosition];
            const dust = {
              ...position,
              size: r.dust,
              entryPrice: base.prices[ETH.toLowerCase()],
            } as typeof position;
            const state = (positions: AccountState["positions"]): AccountState => ({
              ...base,
              collateral,
              underlyings,
              positions,
            });
            const without = accountHealth(state(base.positions.filter((_, i) => i !== ethPosition)));
            const withDust = accountHealth(
              state(base.positions.map((p, i) => (i === ethPosition ? dust : p))),
            );
            // A dust short hedges its own size: at most |dust|·spot (shock ≤ 1); its value is a few wei.
            const slack = (r.dust < 0n ? -r.dust : r.dust) * 3_100n + 10n;
            const im = (h: typeof without) => BigInt(h.initialRequirement) - h.equityInitial;
            const mm = (h: typeof without) => BigInt(h.maintenanceRequirement) - h.equityMaintenance;
            expect(im(withDust) + slack, "IM").to.be.gte(im(without));
            expect(mm(withDust) + slack, "MM").to.be.gte(mm(without));
            // What the uncapped credit would have freed: the cases the floor's cap holds.
            const uncapped = collateral
              .filter((c) => c.oracleAsset === ETH.toLowerCase() && c.balance > 0n)
              .reduce((sum, c) => sum + shockedCredit(c, tokenValue(c, base.prices, c.balance)), 0n);
            const g = withDust.groups[ETH.toLowerCase()];
            if (im(withDust) - (uncapped - g.credit) + slack < im(without)) bound++;
          },
        ),
        { numRuns: 400, seed: 147 },
      );
      // Without the cap at the shock floor, these books would have freed margin with a dust position (15
      // of the 400 runs since the IM credit is the maintenance one, review round 148; 20+ before).
      expect(bound).to.be.gt(10);
    });
  });
});
