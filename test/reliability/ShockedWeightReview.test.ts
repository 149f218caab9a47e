import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { ethers } from "hardhat";
import {
  getAccountState,
  maxWithdrawableFromState,
  preview,
  toHealth,
  type PreviewAction,
} from "../../sdk/src";
import {
  DEFAULT_RISK_PARAMS,
  MarginMode,
  atLatestTimestamp,
  deploySystem,
  eventOf,
  openAccount,
  wad,
  whatIf,
  withdrawCollateralToInitialMargin,
  type System,
} from "../shared/system";
import { advanceTo, closePosition, trade } from "../shared/perps";
import { assetId, setFeedPrice } from "../shared/oracles";
import { sdkClient } from "../shared/sdk";
import { mintAndApprove } from "../shared/tokens";

/**
 * Review round 148 of row 420's fix (commit 8946050): a collateral token priced by an underlying the
 * account trades is shocked with its positions and counted at a shocked weight of its own (WETH 0.99).
 * Measured as an attacker and an auditor: the distance between a hedged book's IM and MM lines under the
 * risk role's one-step updates (row 451), the SDK's withdrawal bisection against the chain, and the
 * auction's restoring fraction on a book whose collateral is shocked.
 */
const USDC = 10n ** 6n;
const DAY = 86_400n;
const ETH = assetId("ETH");

/** E_MM ≥ MM: what `LiquidationAuction.startAuction` calls healthy. */
async function healthy(sys: System, id: bigint): Promise<boolean> {
  const h = await sys.engine.health(id);
  return h.equityMaintenance >= BigInt(h.maintenanceRequirement);
}

/**
 * ETH 3,000 at 60% volatility, WETH's shocked weight 0.99 (its deploy configuration). Bob's 10 WETH
 * (30,000 USD) were long 1 BTC from 60,000 and closed it at `btc`: he owes the loss in USDC.
 */
async function wethDebtor(btc: string) {
  const sys = await deploySystem();
  await setFeedPrice(sys.volFeeds.ETH, "0.6");
  await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
  const id = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad("10")]]);
  // Open, reprice and close in one second: a second of BTC funding between them moved the debt by a unit
  // on a loaded machine (-29,050.718101 for -29,050.718100, session 46's CI).
  await atLatestTimestamp();
  await trade(sys.perps, sys.bob, id, sys.markets.BTC, wad("1"));
  await atLatestTimestamp();
  await setFeedPrice(sys.feeds.BTC, btc);
  await atLatestTimestamp();
  await closePosition(sys.perps, sys.bob, id, sys.markets.BTC);
  return { sys, id };
}

const DEBTOR_PRICES = ["30580", "31000", "31400", "31800", "32100", "32400"] as const;
/** One named fixture per price (loadFixture refuses anonymous functions). */
const debtors: Record<string, () => ReturnType<typeof wethDebtor>> = Object.fromEntries(
  DEBTOR_PRICES.map((p) => [p, { [`debtorAt${p}`]: () => wethDebtor(p) }[`debtorAt${p}`]]),
);

/** Bob hedges his 10 WETH with a short 10 ETH perp; false when the engine refuses it. */
async function hedge(sys: System, id: bigint): Promise<boolean> {
  await atLatestTimestamp();
  try {
    await trade(sys.perps, sys.bob, id, sys.markets.ETH, -wad("10"));
    return true;
  } catch (e) {
    expect(String(e)).to.contain("InsufficientMargin");
    return false;
  }
}

/** The risk role's one-step updates that lower a shocked WETH's maintenance value, each on its own. */
const ONE_STEP_CUTS: [string, (sys: System) => Promise<unknown>][] = [
  ["shocked weight 0.99 → 0.95", (sys) => sys.vault.setShockedWeight(sys.weth, wad("0.95"))],
  // The largest cut the vault allows an account meeting its IM (round 49): MM to the old IM weight.
  [
    "weights 0.90 / 0.95 → 0.80 / 0.90",
    (sys) => sys.vault.setCollateralWeights(sys.weth, wad("0.8"), wad("0.9")),
  ],
  // 0.8 of the engine's one-step maintenance budget (row 450).
  [
    "ETH's MM shock floor 0.05 → 0.01",
    (sys) => sys.engine.setRiskParams(ETH, { ...DEFAULT_RISK_PARAMS, mmShockFloor: wad("0.01") }),
  ],
];

describe("Shocked collateral under review (round 148)", function () {
  describe("a hedged book on shocked WETH keeps its IM and MM lines apart (row 451)", function () {
    it("counts the WETH's shocked credit at both levels over its maintenance weight: 10 WETH short 10 ETH, equity_MM − equity_IM = 1,500.00 (0.05 · 30,000), IM = MM = 60 (before: 0, the lines met)", async function () {
      const { sys, id } = await loadFixture(debtors["32400"]);
      expect(await hedge(sys, id)).to.equal(true);
      const h = await sys.engine.health(id);
      // Delta-neutral: the grid charges the contingency alone (0.002 · 30,000) at both levels.
      expect(h.initialRequirement).to.equal(wad("60"));
      expect(h.maintenanceRequirement).to.equal(wad("60"));
      // The WETH counts at 0.95 + 0.04 = 0.99 at MM and 0.90 + 0.04 = 0.94 at IM (the short's exit discount
      // is 0: closing it takes the skew back to 0).
      expect(h.equityMaintenance - h.equityInitial).to.equal(wad("1500"));
    });

    it("refuses the hedge of a WETH debtor whose maintenance equity one allowed cut would take below MM (10 WETH owing 29,050.72 USDC; before: accepted at equity 484.36, 8× its MM of 60, and each cut below made it liquidatable)", async function () {
      const { sys, id } = await loadFixture(debtors["31000"]);
      // Before the hedge: liquidatable on its weights alone (0.95 · 30,000 < 29,050.72 owed, no MM).
      expect(await sys.vault.balanceOf(id, sys.usdc)).to.equal(-29_050_718_100n);
      expect(await hedge(sys, id)).to.equal(false);
    });

    it("leaves every WETH debtor the engine lets hedge out of liquidation after a day of funding and one allowed cut of the shocked weight, the weights or ETH's MM floor (6 debts from 27,650.30 to 29,470 USDC)", async function () {
      let hedged = 0;
      for (const price of DEBTOR_PRICES) {
        const { sys, id } = await loadFixture(debtors[price]);
        if (!(await hedge(sys, id))) continue;
        hedged++;
        const h0 = await sys.engine.health(id);
        expect(h0.equityInitial, price).to.be.gte(h0.initialRequirement);
        // A day on: the throttles that the fixture's shocked weight started have run out; the short paid
        // 15.00 of funding. Before: the debtor hedged at 30,580 (equity 64.23, IM = MM = 60) was
        // liquidatable by that day's funding alone (49.23).
        await advanceTo(sys, BigInt(await time.latest()) + DAY);
        await ethers.provider.send("evm_mine", []);
        expect(await healthy(sys, id), `${price}: a day of interest`).to.equal(true);
        for (const [label, cut] of ONE_STEP_CUTS) {
          const ok = await whatIf(async () => {
            await atLatestTimestamp();
            await cut(sys);
            return healthy(sys, id);
          });
          expect(ok, `${price}: ${label}`).to.equal(true);
        }
      }
      // The lower debts hedge under either rule; the spec is about those the engine admits.
      expect(hedged).to.be.gte(2);
    });
  });

  describe("the vault's one clock per token for the weights and the shocked weight (row 452)", function () {
    it("refuses a weight update on the day of a shocked-weight update and the reverse: together they took a hedged WETH debtor meeting its IM (10 WETH owing 27,950.39 USDC, short 10 ETH: equity_IM 84.69, IM = MM = 60) from equity_MM 1,569.69 to −1,130.31", async function () {
      const { sys, id } = await loadFixture(debtors["32100"]);
      expect(await hedge(sys, id)).to.equal(true);
      const h0 = await sys.engine.health(id);
      expect(h0.equityInitial).to.be.gte(h0.initialRequirement);
      await advanceTo(sys, BigInt(await time.latest()) + DAY);
      await ethers.provider.send("evm_mine", []);
      const weights = (s: System) => s.vault.setCollateralWeights(s.weth, wad("0.8"), wad("0.9"));
      // The lowest shocked weight one step allows: 0 before the weights' cut (WETH counted at 0.95 / 0.90
      // instead of 0.99 / 0.94), 0.89 after it (the IM level's max(0.80, ·) moves at most 0.1 from 0.99).
      for (const [first, second] of [
        [(s: System) => s.vault.setShockedWeight(s.weth, 0n), weights],
        [weights, (s: System) => s.vault.setShockedWeight(s.weth, wad("0.89"))],
      ]) {
        await whatIf(async () => {
          await atLatestTimestamp();
          await first(sys);
          // Each is one step; on two clocks the shocked weight's 0.04 and the weights' 0.05 added up to
          // 0.09 of the WETH's mark in one day, more than the 0.05 between its IM and MM lines.
          await expect(second(sys)).to.be.revertedWithCustomError(sys.vault, "UpdateTooSoon");
          expect(await healthy(sys, id)).to.equal(true);
        });
      }
    });
  });

  describe("left: the vault's and the engine's budgets are separate (as for a weight cut and an MM rise)", function () {
    it("takes a hedged WETH debtor meeting its IM below its MM with a weight cut and a cut of ETH's MM floor on the same day: equity_MM 1,569.69 → 369.69 → −830.31 against an MM of 60", async function () {
      const { sys, id } = await loadFixture(debtors["32100"]);
      expect(await hedge(sys, id)).to.equal(true);
      await advanceTo(sys, BigInt(await time.latest()) + DAY);
      await ethers.provider.send("evm_mine", []);
      // Each read at the last mined block, and each cut in its second: the debt's interest moves no read.
      const healthNow = async () =>
        sys.engine.health(id, { blockTag: await ethers.provider.getBlockNumber() });
      const h0 = await healthNow();
      expect(h0.equityInitial).to.be.gte(h0.initialRequirement);
      await whatIf(async () => {
        await atLatestTimestamp();
        await ONE_STEP_CUTS[1][1](sys);
        const h1 = await healthNow();
        // 0.99 → 0.95 of the 30,000 of WETH: 0.90 + the credit capped at the 0.05 floor.
        expect(h0.equityMaintenance - h1.equityMaintenance).to.equal(wad("1200"));
        expect(await healthy(sys, id)).to.equal(true);
        await atLatestTimestamp();
        await ONE_STEP_CUTS[2][1](sys);
        const h2 = await healthNow();
        // The floor's cut takes the credit from 0.05 to 0.01 of the mark (row 450).
        expect(h1.equityMaintenance - h2.equityMaintenance).to.equal(wad("1200"));
        expect(await healthy(sys, id)).to.equal(false);
      });
    });
  });

  describe("held: the SDK's withdrawal bisection on shocked WETH is the chain's bound (invariant 6)", function () {
    async function books() {
      const sys = await deploySystem();
      await setFeedPrice(sys.volFeeds.ETH, "0.6");
      await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
      const partial = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100")]]);
      await trade(sys.perps, sys.alice, partial, sys.markets.ETH, -wad("30"));
      const long = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100")]]);
      await trade(sys.perps, sys.alice, long, sys.markets.ETH, wad("200"));
      return { sys, partial, long };
    }

    it("previews a WETH deposit and withdrawal, a further hedge, a flip to long and the close on a partial hedge as the chain then reads its health, to the wei", async function () {
      const { sys, partial: id } = await loadFixture(books);
      const client = await sdkClient(sys, sys.alice);
      await mintAndApprove(sys.weth, sys.alice, await sys.vault.getAddress(), wad("10"));
      const ethMarket = sys.markets.ETH;
      const cases: [PreviewAction, () => Promise<{ wait: () => Promise<unknown> }>][] = [
        [
          { type: "deposit", token: "WETH", amount: wad("10") },
          () => sys.vault.connect(sys.alice).deposit(id, sys.weth, wad("10")),
        ],
        [
          { type: "withdraw", token: "WETH", amount: wad("10") },
          () => sys.vault.connect(sys.alice).withdraw(id, sys.weth, wad("10"), sys.alice),
        ],
        [
          { type: "trade", marketId: ethMarket, sizeDelta: -wad("20") },
          () => trade(sys.perps, sys.alice, id, ethMarket, -wad("20")),
        ],
        [
          { type: "trade", marketId: ethMarket, sizeDelta: wad("80") },
          () => trade(sys.perps, sys.alice, id, ethMarket, wad("80")),
        ],
        [{ type: "close", marketId: ethMarket }, () => closePosition(sys.perps, sys.alice, id, ethMarket)],
      ];
      for (const [action, send] of cases) {
        await whatIf(async () => {
          const at = BigInt(await time.latest()) + 10n;
          const p = await preview(client, id, action, { timestamp: at });
          expect(p.revert, action.type).to.equal(undefined);
          await time.setNextBlockTimestamp(at);
          const receipt = (await (await send()).wait()) as { blockNumber: number };
          const chain = toHealth(await sys.engine.health(id, { blockTag: receipt.blockNumber }));
          expect(
            p.health,
            JSON.stringify(action, (_, v) => (typeof v === "bigint" ? v.toString() : v)),
          ).to.deep.equal(chain);
        });
      }
    });

    it("withdraws exactly maxWithdrawable WETH from a partial hedge (short 30) and a 3× long (200 ETH on 100 WETH), and refuses one wei more", async function () {
      const { sys, partial, long } = await loadFixture(books);
      const client = await sdkClient(sys, sys.alice);
      const weth = (await sys.weth.getAddress()).toLowerCase();
      for (const id of [partial, long]) {
        const state = await getAccountState(client, { accountId: id });
        const max = maxWithdrawableFromState(state, weth);
        expect(max, `${id}`).to.be.gt(0n);
        expect(max, `${id}`).to.be.lt(wad("100"));
        await whatIf(async () => {
          await atLatestTimestamp();
          await expect(
            sys.vault.connect(sys.alice).withdraw(id, sys.weth, max + 1n, sys.alice),
          ).to.be.revertedWithCustomError(sys.engine, "InsufficientMargin");
        });
        await whatIf(async () => {
          await atLatestTimestamp();
          await sys.vault.connect(sys.alice).withdraw(id, sys.weth, max, sys.alice);
        });
      }
    });
  });

  describe("held: the auction's restoring fraction on a book whose WETH is shocked with it", function () {
    /** Alice's 100 WETH long 100 ETH withdrawn to its IM (row 420's long), ETH down 6%; Carol's 200,000 USDC. */
    async function fallenLong() {
      const sys = await deploySystem();
      await setFeedPrice(sys.volFeeds.ETH, "0.6");
      await sys.vault.setShockedWeight(sys.weth, wad("0.99"));
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100")]]);
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("100"));
      await withdrawCollateralToInitialMargin(sys, sys.alice, id, sys.weth);
      const bidder = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
      await setFeedPrice(sys.feeds.ETH, "2820");
      return { sys, id, bidder };
    }

    it("sells less than the whole book to a stranger's full bid and leaves it at its IM, the auction ended as restored", async function () {
      const { sys, id, bidder } = await loadFixture(fallenLong);
      expect(await healthy(sys, id)).to.equal(false);
      await sys.auction.connect(sys.keeper).startAuction(id);
      const receipt = await (
        await sys.auction.connect(sys.carol).bid(id, bidder, wad("1"), 200_000n * USDC)
      ).wait();
      const filled = eventOf(receipt, sys.auction, "AuctionBid").args[2] as bigint;
      expect(filled).to.be.gt(0n);
      expect(filled).to.be.lt(wad("1"));
      expect(eventOf(receipt, sys.auction, "AuctionEnded").args[1]).to.equal(0n);
      const h = await sys.engine.health(id);
      expect(h.equityInitial).to.be.gte(h.initialRequirement);
      // The fraction is the smallest that restores: the book's IM shortfall is closed to a few USD of its
      // 100-ETH, ~290,000 USD position (the credit, capped at mark · floor, scales with the slice).
      expect(h.equityInitial - BigInt(h.initialRequirement)).to.be.lt(wad("100"));
    });
  });
});
