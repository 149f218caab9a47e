import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, deploySystem, openAccount, wad, type System } from "../shared/system";
import { assetId, setFeedPrice } from "../shared/oracles";
import {
  backstopLong100,
  frozenLongAndPartner,
  marketParams,
  refreshFeeds,
  refreshPrices,
  trade,
  wethDebtorSystem,
} from "../shared/perps";
import { signerFor } from "../shared/impersonate";
import { mintAndApprove } from "../shared/tokens";
import { HOUR, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";

/**
 * The margin engine's and the liquidation auction's rules that no other test held (review round 83:
 * 55 small bugs planted in MarginEngine, LiquidationAuction and LiquidationMath one at a time, 29
 * caught by the suite; each test here fails on one the rest of the suite let through, named in its
 * comment).
 */

const USDC = 10n ** 6n;
const WAD = 10n ** 18n;
const QUOTE_UNIT = 10n ** 12n;
const D0 = wad("0.02");
const DMAX = wad("0.10");
const DURATION = 1800n;

/** LiquidationAuction.test's book: Alice long 2 ETH on 1,000 USDC, funding off; ETH at `price`, auction started. */
async function aliceStartedAt(price: string, wethWei = 0n) {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2"));
  if (wethWei !== 0n) {
    await mintAndApprove(sys.weth, sys.alice, await sys.vault.getAddress(), wethWei);
    await sys.vault.connect(sys.alice).deposit(alice, sys.weth, wethWei);
  }
  await setFeedPrice(sys.feeds.ETH, price);
  await sys.auction.connect(sys.keeper).startAuction(alice);
  return { sys, alice, bob, start: BigInt(await time.latest()) };
}
const crashedStarted = () => aliceStartedAt("2650");
const insolventStarted = () => aliceStartedAt("2300");
const insolventWithWeiStarted = () => aliceStartedAt("2300", 1n);

/** The engine as the perp market contract: its market-only hooks, called directly. */
async function asMarket(sys: System) {
  return sys.engine.connect(await signerFor(await sys.perps.getAddress()));
}

async function heldIds(sys: System, accountId: bigint): Promise<[bigint, bigint][]> {
  const held = await sys.engine.accountMarkets(accountId);
  return held.map((k) => [k.marketId, k.underlyingIndex]);
}

describe("MarginEngine and LiquidationAuction at their edges", function () {
  describe("MarginEngine: an account's market list", function () {
    // E03 (the last key not moved into the removed one's place) and E04 (the vacated place not
    // cleared: the next key opened there was OR-ed into the stale one).
    it("removes by swap-and-pop and clears the vacated place, across the word boundary", async function () {
      const sys = await loadFixture(deploySystem);
      const engine = await asMarket(sys);
      const holder = await openAccount(sys, sys.alice, MarginMode.CROSS);
      const [ETH, BTC] = [0n, 1n]; // underlying indexes, in listing order
      expect(await sys.engine.underlyings(ETH)).to.equal(assetId("ETH"));
      expect(await sys.engine.underlyings(BTC)).to.equal(assetId("BTC"));
      // Keys 0-2 share word 0 with the count, keys 3-5 fill word 1.
      for (const [id, u] of [
        [101n, "ETH"],
        [102n, "BTC"],
        [103n, "ETH"],
        [104n, "BTC"],
        [105n, "ETH"],
      ] as const)
        await engine.notePositionOpened(holder, id, assetId(u));
      await engine.notePositionClosed(holder, 102n); // 105 (last, word 1) moves to place 1
      expect(await heldIds(sys, holder)).to.deep.equal([
        [101n, ETH],
        [105n, ETH],
        [103n, ETH],
        [104n, BTC],
      ]);
      await engine.notePositionOpened(holder, 106n, assetId("BTC")); // into place 4, vacated above
      expect(await heldIds(sys, holder)).to.deep.equal([
        [101n, ETH],
        [105n, ETH],
        [103n, ETH],
        [104n, BTC],
        [106n, BTC],
      ]);
      await engine.notePositionClosed(holder, 101n); // 106 moves to place 0
      await engine.notePositionClosed(holder, 104n); // the last: nothing moves
      expect(await heldIds(sys, holder)).to.deep.equal([
        [106n, BTC],
        [105n, ETH],
        [103n, ETH],
      ]);
      await engine.notePositionOpened(holder, 107n, assetId("ETH")); // place 3, vacated by 104
      await engine.notePositionOpened(holder, 108n, assetId("BTC")); // place 4, vacated by 101's move
      expect(await heldIds(sys, holder)).to.deep.equal([
        [106n, BTC],
        [105n, ETH],
        [103n, ETH],
        [107n, ETH],
        [108n, BTC],
      ]);
    });

    // E02: the backstop lost its exemption from MAX_MARKETS_PER_ACCOUNT (the pool's was kept).
    it("exempts the pool's account and the backstop, and only them, from the market cap", async function () {
      const sys = await loadFixture(deploySystem);
      const engine = await asMarket(sys);
      const max = await sys.engine.MAX_MARKETS_PER_ACCOUNT();
      const backstop = await sys.auction.backstopAccountId();
      const trader = await openAccount(sys, sys.alice, MarginMode.CROSS);
      for (const account of [sys.poolAccountId, backstop, trader]) {
        for (let i = 1n; i <= max; i++) await engine.notePositionOpened(account, 1_000n + i, assetId("ETH"));
      }
      for (const account of [sys.poolAccountId, backstop]) {
        await engine.notePositionOpened(account, 2_000n, assetId("BTC"));
        expect(await sys.engine.accountMarkets(account)).to.have.length(Number(max) + 1);
      }
      await expect(engine.notePositionOpened(trader, 2_000n, assetId("BTC")))
        .to.be.revertedWithCustomError(sys.engine, "TooManyMarkets")
        .withArgs(trader);
    });
  });

  describe("MarginEngine.hasOtherOnUnderlying", function () {
    // E16 (`i != self` dropped), E17 (the loop stopped one key short), E18 (compared the position's
    // own underlying with itself): a position on another underlying, or none after the first word, read
    // as a hedge, or a hedge in the last place was missed.
    it("is true only for another position on the same underlying, wherever it sits in the list", async function () {
      const sys = await loadFixture(deploySystem);
      const engine = await asMarket(sys);
      const perps = await sys.perps.getAddress();
      const lone = await openAccount(sys, sys.alice, MarginMode.CROSS);
      await engine.notePositionOpened(lone, 1n, assetId("ETH"));
      await engine.notePositionOpened(lone, 2n, assetId("BTC"));
      expect(await sys.engine.hasOtherOnUnderlying(lone, perps, 1n)).to.equal(false);
      expect(await sys.engine.hasOtherOnUnderlying(lone, perps, 2n)).to.equal(false);
      expect(await sys.engine.hasOtherOnUnderlying(lone, perps, 3n)).to.equal(false); // not held
      expect(await sys.engine.hasOtherOnUnderlying(lone, sys.alice.address, 1n)).to.equal(false); // no market

      // ETH first and last (place 3, word 1), BTC in between.
      const hedged = await openAccount(sys, sys.bob, MarginMode.CROSS);
      for (const [id, u] of [
        [1n, "ETH"],
        [2n, "BTC"],
        [3n, "BTC"],
        [4n, "ETH"],
      ] as const)
        await engine.notePositionOpened(hedged, id, assetId(u));
      for (const id of [1n, 2n, 3n, 4n]) {
        expect(await sys.engine.hasOtherOnUnderlying(hedged, perps, id)).to.equal(true);
      }
      // Without its partner the first ETH key stands alone again.
      await engine.notePositionClosed(hedged, 4n);
      expect(await sys.engine.hasOtherOnUnderlying(hedged, perps, 1n)).to.equal(false);
      expect(await sys.engine.hasOtherOnUnderlying(hedged, perps, 3n)).to.equal(true);
    });
  });
  describe("MarginEngine.requireRiskReduced and requirePremiumAffordable", function () {
    // E10: `<=` became `<`: an unchanged maintenance requirement read as risk added.
    it("lets an account below its IM keep its maintenance requirement, and refuses one unit more", async function () {
      const sys = await loadFixture(deploySystem);
      const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
      await trade(sys.perps, sys.alice, a, sys.markets.ETH, wad("2"));
      await setFeedPrice(sys.feeds.ETH, "2700");
      const h = await sys.engine.health(a);
      expect(h.equityInitial).to.be.lt(h.initialRequirement); // below IM, not frozen
      expect(await sys.auction.isFrozen(a)).to.equal(false);
      await sys.engine.requireRiskReduced(a, h.maintenanceRequirement);
      await expect(sys.engine.requireRiskReduced(a, h.maintenanceRequirement - 1n))
        .to.be.revertedWithCustomError(sys.engine, "RiskIncreased")
        .withArgs(a, h.maintenanceRequirement - 1n, h.maintenanceRequirement);
    });

    // E11: the frozen branch dropped: an account in auction that meets its IM again (the price came
    // back, nobody ended the auction) could add maintenance requirement through a "reduction".
    it("refuses a frozen account more maintenance requirement even while it meets its IM", async function () {
      const { sys, a } = await loadFixture(frozenLongAndPartner);
      await setFeedPrice(sys.feeds.ETH, "3100");
      const h = await sys.engine.health(a);
      expect(h.equityInitial).to.be.gte(h.initialRequirement);
      expect(await sys.auction.isFrozen(a)).to.equal(true);
      await sys.engine.requireRiskReduced(a, h.maintenanceRequirement); // no increase: fine frozen or not
      await expect(sys.engine.requireRiskReduced(a, h.maintenanceRequirement - 1n))
        .to.be.revertedWithCustomError(sys.engine, "RiskIncreased")
        .withArgs(a, h.maintenanceRequirement - 1n, h.maintenanceRequirement);
      // Ended, the same account may.
      await sys.auction.endAuction(a);
      await sys.engine.requireRiskReduced(a, h.maintenanceRequirement - 1n);
    });

    // E12 (the backstop's exemption from requireRiskReduced) and E14 (from requirePremiumAffordable):
    // the backstop's unwinds under water are priced by the role holder's limit, not its margin.
    it("exempts the backstop, under water, from both checks, and nobody else", async function () {
      const { sys, backstop } = await backstopLong100();
      await setFeedPrice(sys.feeds.ETH, "1000");
      const h = await sys.engine.health(backstop);
      expect(h.equityMark).to.be.lt(0n);
      expect(h.equityInitial).to.be.lt(h.initialRequirement);
      await sys.engine.requireRiskReduced(backstop, 0n);
      await sys.engine.requirePremiumAffordable(backstop, 0n);
      // The same position in a trader's account: refused by both.
      const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await trade(sys.perps, sys.alice, a, sys.markets.ETH, wad("100"));
      await setFeedPrice(sys.feeds.ETH, "1000");
      const t = await sys.engine.health(a);
      expect(t.equityMark).to.be.lt(0n);
      await expect(sys.engine.requireRiskReduced(a, 0n)).to.be.revertedWithCustomError(
        sys.engine,
        "RiskIncreased",
      );
      // E15: an insolvent trader is refused as such, before the shortfall comparison.
      await expect(sys.engine.requirePremiumAffordable(a, 0n))
        .to.be.revertedWithCustomError(sys.engine, "InsolventAfterTrade")
        .withArgs(a, t.equityMark);
    });

    // E13: `marginAfter < 0` dropped: a healthy account could not spend margin on a premium at all.
    it("lets a healthy account spend on a premium while it stays above maintenance; below it, only if its shortfall does not grow", async function () {
      const sys = await loadFixture(deploySystem);
      const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
      await trade(sys.perps, sys.alice, a, sys.markets.ETH, wad("2"));
      let h = await sys.engine.health(a);
      let margin = h.equityMaintenance - h.maintenanceRequirement;
      expect(margin).to.be.gt(0n);
      await sys.engine.requirePremiumAffordable(a, margin + 10n ** 24n); // spent a lot, still healthy
      await setFeedPrice(sys.feeds.ETH, "2650");
      h = await sys.engine.health(a);
      margin = h.equityMaintenance - h.maintenanceRequirement;
      expect(margin).to.be.lt(0n);
      expect(h.equityMark).to.be.gt(0n);
      await sys.engine.requirePremiumAffordable(a, margin); // unchanged shortfall
      await expect(sys.engine.requirePremiumAffordable(a, margin + 1n))
        .to.be.revertedWithCustomError(sys.engine, "MaintenanceShortfallIncreased")
        .withArgs(a, margin + 1n, margin);
    });
  });
  describe("MarginEngine: equity_IM's exit discounts", function () {
    // E23 (the positions' exit discounts not deducted from equity_IM) and E24 (a series' volatility
    // step, vega·0.05, rounded down instead of up): equity_IM is collateral at its initial weights plus
    // the positions' values, less each one's exit discount and ⌈|vega|·0.05⌉.
    it("deducts every position's exit discount and its volatility step, rounded up, from equity_IM only", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      // Alice short against Bob's larger long: closing her short would buy into the skew (a premium).
      const b = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.bob, b, sys.markets.ETH, wad("10"));
      await trade(sys.perps, sys.alice, a, sys.markets.ETH, -wad("3"));
      const call = await listSeries(sys.options, "ETH", "3200", await fromNow(24n * HOUR), true);
      await tradeOption(sys.options, sys.alice, a, call, wad("7"));
      const [spot, volatility] = await sys.router.getPriceAndVolatility(assetId("ETH"));
      const perp = await sys.perps.exposure(a, sys.markets.ETH, spot, volatility);
      const option = await sys.options.exposure(a, call, spot, volatility);
      expect(perp.exitDiscount).to.be.gt(0n);
      const vega = option.vega < 0n ? -option.vega : option.vega;
      expect(vega % 20n).to.not.equal(0n); // a step that does not divide: the rounding shows
      const step = (vega * wad("0.05") + wad("1") - 1n) / wad("1");
      const c = await sys.vault.collateralValue(a);
      const h = await sys.engine.health(a);
      const value = perp.value + option.value;
      expect(h.equityMaintenance).to.equal(c.maintenance + value);
      expect(h.equityInitial).to.equal(
        c.initial + value - perp.exitDiscount - option.exitDiscount - perp.vega /* 0 */ - step,
      );
    });
  });
  describe("LiquidationAuction: discount, insolvent payout, end", function () {
    // L02: the discount rounded up (the bidder's gain must round down).
    it("rounds the discount down between the schedule's exact points", async function () {
      const { sys, alice, start } = await loadFixture(crashedStarted);
      for (const elapsed of [1n, 7n, 1_001n, 1_799n]) {
        await time.increaseTo(start + elapsed);
        // d = 0.02 + ⌊0.08·elapsed/1800⌋: 0.08e18/1800 is not a whole number of wei
        expect(await sys.auction.currentDiscount(alice)).to.equal(D0 + ((DMAX - D0) * elapsed) / DURATION);
      }
      expect(await sys.auction.currentDiscount(alice)).to.equal(wad("0.02") + 79_955_555_555_555_555n);
    });

    // L09: the payout's ramp not capped at the duration: the fund paid more the longer bidders waited.
    it("stops the insolvent payout's growth at the duration: deficit + dmax·MM, however late the take", async function () {
      const { sys, alice, start } = await loadFixture(insolventStarted);
      await time.increaseTo(start + 3n * DURATION);
      await refreshFeeds(sys, { atLatest: true });
      const h = await sys.engine.health(alice);
      expect(h.equityMark).to.be.lt(0n);
      const full = (-h.equityMark + (h.maintenanceRequirement * DMAX) / WAD) / QUOTE_UNIT;
      const [filled, , payout] = await sys.auction.quoteBid(alice, wad("0.5"));
      expect(filled).to.equal(WAD);
      expect(payout).to.equal(full);
    });

    // A13: endAuction trusted a health at the floor shocks (a volatility feed down), which can only
    // show an account liquidatable, never recovered.
    it("does not end an auction on a health at the floor shocks, and ends it once the feed is back", async function () {
      const { sys, alice } = await loadFixture(crashedStarted);
      await setFeedPrice(sys.feeds.ETH, "3000");
      await time.increase(3_601);
      await refreshPrices(sys, { atLatest: true });
      const h = await sys.engine.health(alice);
      expect(h.volatilityUnavailable).to.equal(true);
      expect(h.equityMaintenance).to.be.gte(h.maintenanceRequirement); // recovered, at the floor shocks
      await expect(sys.auction.endAuction(alice)).to.be.revertedWithCustomError(sys.router, "StalePrice");
      expect(await sys.auction.isFrozen(alice)).to.equal(true);
      await refreshFeeds(sys, { atLatest: true });
      await expect(sys.auction.endAuction(alice)).to.emit(sys.auction, "AuctionEnded").withArgs(alice, 0);
    });
  });
  describe("MarginEngine.transferSlice: roundings", function () {
    // E07 (a positive balance's share rounded up) and E08 (a debt's share rounded down): the bidder
    // takes ⌊f·balance⌋ of what the account holds and ⌈f·debt⌉ of what it owes, never the reverse.
    it("moves ⌊f·balance⌋ of a holding and has the receiver take over ⌈f·debt⌉ of a debt", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      const debtor = sys.debtorId;
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      const f = WAD / 3n; // 0.333…
      const asAuction = sys.engine.connect(await signerFor(sys.auction));
      // One wei more than its 10 WETH, so that a third of it is not a whole number of wei.
      await mintAndApprove(sys.weth, sys.bob, await sys.vault.getAddress(), 1n);
      await sys.vault.connect(sys.bob).deposit(debtor, sys.weth, 1n);
      const weth = await sys.vault.balanceOf(debtor, sys.weth);
      expect(weth).to.equal(wad("10") + 1n);
      const bobUsdc = await sys.vault.balanceOf(bob, sys.usdc);
      await asAuction.transferSlice(debtor, bob, f, 0n);
      // (10 WETH + 1 wei) · 0.333…3 = 3,333,333,333,333,333,330.33… wei, rounded down.
      expect(await sys.vault.balanceOf(bob, sys.weth)).to.equal(3_333_333_333_333_333_330n);
      // The debt as the slice found it (interest settled first) is what the debtor owes now plus
      // the share Bob paid for it.
      const share = bobUsdc - (await sys.vault.balanceOf(bob, sys.usdc));
      const debt = share - (await sys.vault.balanceOf(debtor, sys.usdc));
      expect((debt * f) % WAD).to.not.equal(0n);
      expect(share).to.equal((debt * f + WAD - 1n) / WAD);
    });
  });
  describe("MarginEngine.healthMany: its price cache", function () {
    /** How many calls `healthMany(ids)` makes to the oracle router (debug_traceCall's STATICCALLs). */
    async function routerReads(sys: System, ids: bigint[]): Promise<number> {
      const router = (await sys.router.getAddress()).toLowerCase().slice(2);
      const trace = (await ethers.provider.send("debug_traceCall", [
        {
          to: await sys.engine.getAddress(),
          data: sys.engine.interface.encodeFunctionData("healthMany", [ids]),
        },
        "latest",
        { disableMemory: true, disableStorage: true },
      ])) as { structLogs: { op: string; stack: string[] }[] };
      let reads = 0;
      for (const log of trace.structLogs) {
        // STATICCALL's stack: gas, address, … (the top is the last element).
        if (log.op === "STATICCALL" && log.stack[log.stack.length - 2].toLowerCase().endsWith(router))
          reads++;
      }
      return reads;
    }

    // E21: the cache never filled: every account of a batch read every price and volatility again
    // (same results, ~4,500 gas per warm read: the batch's reason to exist).
    it("reads each underlying's price and volatility once for the whole batch", async function () {
      const sys = await loadFixture(deploySystem);
      const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      const b = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.alice, a, sys.markets.ETH, wad("1"));
      await trade(sys.perps, sys.alice, a, sys.markets.BTC, wad("0.01"));
      await trade(sys.perps, sys.bob, b, sys.markets.ETH, -wad("1"));
      await trade(sys.perps, sys.bob, b, sys.markets.BTC, -wad("0.01"));
      const one = await routerReads(sys, [a]);
      expect(one).to.be.gt(0);
      expect(await routerReads(sys, [a, b, a, b])).to.equal(one);
    });
  });
  describe("LiquidationAuction: what a partial bid leaves held back", function () {
    // A18: the penalty not deducted: the account's paid-in quote was overstated by it, and later bids
    // held back (and did not sell) quote the account had already paid to the fund.
    it("holds back the payment less the penalty after a first partial bid", async function () {
      const { sys, alice, bob } = await loadFixture(crashedStarted);
      const tx = await sys.auction.connect(sys.bob).bid(alice, bob, wad("0.01"), ethers.MaxUint256);
      const receipt = (await tx.wait())!;
      const bidEvent = receipt.logs
        .map((l) => sys.auction.interface.parseLog(l))
        .find((e) => e?.name === "AuctionBid")!;
      const [, , filled, payment, penalty] = bidEvent.args as unknown as bigint[];
      expect(filled).to.equal(wad("0.01"));
      expect(penalty).to.be.gt(0n);
      expect(await sys.auction.isFrozen(alice)).to.equal(true); // not restored by 1%
      expect((await sys.auction.auctions(alice)).paidIn).to.equal(payment - penalty);
    });
    // A23: the quote held back not counted in the restoring fraction (heldValue = 0): the next bid
    // sold more of the book than restoring the account needs.
    it("counts the held-back quote toward restoring the account: the next bid's fraction to the formula", async function () {
      const { sys, alice, bob } = await loadFixture(crashedStarted);
      await sys.auction.connect(sys.bob).bid(alice, bob, wad("0.01"), ethers.MaxUint256);
      const paidIn = (await sys.auction.auctions(alice)).paidIn;
      const h = await sys.engine.health(alice);
      const [inQuote, usdMark] = await sys.vault.markInQuote(alice);
      const mark = h.equityMark - usdMark + inQuote;
      expect(mark).to.be.gt(paidIn * QUOTE_UNIT); // held back
      const quotePrice = await sys.vault.tokenValue(sys.usdc, USDC);
      const markValue = ((mark - paidIn * QUOTE_UNIT) * quotePrice) / WAD;
      const heldValue = (paidIn * QUOTE_UNIT * quotePrice) / WAD;
      const d = await sys.auction.currentDiscount(alice);
      const shortfall = h.initialRequirement - h.equityInitial;
      // f = ⌈shortfall / (shortfall + H + M·(1 − d − p))⌉
      const proceeds = heldValue + (markValue * (WAD - d - wad("0.01"))) / WAD;
      const f = (shortfall * WAD + shortfall + proceeds - 1n) / (shortfall + proceeds);
      const [filled] = await sys.auction.quoteBid(alice, WAD);
      expect(filled).to.equal(f);
    });
  });
  describe("LiquidationAuction: an insolvent account's deficit", function () {
    // A21: the deficit in quote units rounded down: the fund's reserve (pendingDeficit) and the
    // InsolvencyCovered report fell a unit short of the mark-to-market hole.
    it("records the deficit rounded up to a whole quote unit", async function () {
      const { sys, alice } = await loadFixture(insolventWithWeiStarted);
      const h = await sys.engine.health(alice);
      const [inQuote, usdMark] = await sys.vault.markInQuote(alice);
      const mark = h.equityMark - usdMark + inQuote;
      expect(mark).to.be.lt(0n);
      expect(-mark % QUOTE_UNIT).to.not.equal(0n); // 1 wei of WETH makes the hole a fraction of a unit
      const deficit = (-mark + QUOTE_UNIT - 1n) / QUOTE_UNIT;
      expect(await sys.auction.pendingDeficit()).to.equal(deficit);
      expect((await sys.auction.auctions(alice)).deficit).to.equal(deficit);
    });
    // A27: `_restored` trusted a health at the floor shocks: a bid during a volatility outage that met
    // the floor's IM ended the auction, and the account, unfrozen, could add risk the real volatility
    // would not allow.
    it("leaves the auction open after a bid that meets only the floor shocks' IM (volatility feed down)", async function () {
      const { sys, alice, bob } = await loadFixture(crashedStarted);
      await time.increase(3_601);
      await refreshPrices(sys, { atLatest: true });
      await setFeedPrice(sys.feeds.ETH, "2600"); // below MM even at the floor shocks
      expect((await sys.engine.health(alice)).volatilityUnavailable).to.equal(true);
      // bidAndClose leaves the bidder flat, so no strict read of the stale feed stops it.
      await sys.accounts.connect(sys.bob).approve(sys.auction, bob);
      const tx = sys.auction.connect(sys.bob).bidAndClose(alice, bob, WAD, ethers.MaxUint256);
      await expect(tx).to.emit(sys.auction, "AuctionBid");
      await expect(tx).to.not.emit(sys.auction, "AuctionEnded");
      const after = await sys.engine.health(alice);
      expect(after.equityInitial).to.be.gte(after.initialRequirement); // restored at the floor shocks
      expect(await sys.auction.isFrozen(alice)).to.equal(true);
    });
  });
});
