import { expect } from "chai";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  MarginMode,
  WAD,
  atLatestTimestamp,
  deploySystem,
  openAccount,
  wad,
  type System,
} from "../shared/system";
import { marketParams, mineAt, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { quoteBidFromHealth } from "../../sdk/src";
import { bidEconomics, maxPaymentFor } from "../../scripts/keeper/logic";

/**
 * What an insolvent take costs a bidder, and what the backstop keeps after selling absorbed collateral
 * (review round 56; docs/reliability.md §4, rows 142–143). Before: a bid sent with the quote for 1% of a
 * solvent book took the whole book of an account that had turned insolvent before it was mined, deficit
 * and all; and a collateral sale paid the pool though the sweep had counted that collateral as the
 * margin of the backstop's book, so the book's later loss became a quote debt nothing repays.
 */
const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;
const DURATION = 1800n;
const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;

/** Alice (1,000 USDC, long 2 ETH at ~3,006) auctioned at ETH 2,650; Bob and Carol hold 20,000 USDC. */
async function auctionedAt2650() {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2"));
  await setFeedPrice(sys.feeds.ETH, "2650");
  await sys.auction.connect(sys.keeper).startAuction(alice);
  const { startTime } = await sys.auction.auctions(alice);
  return { sys, alice, bob, carol, start: startTime };
}

/** What an insolvent take costs the bidder at `t` (quote units): deficit − payout, and both. */
async function insolventCost(sys: System, alice: bigint, start: bigint, t: bigint) {
  const h = await sys.engine.health(alice);
  expect(h.equityMark).to.be.lt(0n);
  const deficit = ceilDiv(-h.equityMark, QUOTE_UNIT);
  const elapsed = t - start;
  const ramp = elapsed >= DURATION ? WAD : (elapsed * WAD) / DURATION;
  const payout =
    ((-h.equityMark + (h.maintenanceRequirement * wad("0.10")) / WAD) * ramp) / (WAD * QUOTE_UNIT);
  return { deficit, payout, cost: deficit > payout ? deficit - payout : 0n, h };
}

describe("Insolvent takes and backstop collateral sales", function () {
  describe("a bid's maxPayment bounds what an insolvent take costs the bidder (row 142)", function () {
    it("refuses to hand Bob Alice's whole insolvent book for a bid sent with the quote for 1% of her solvent one", async function () {
      const { sys, alice, bob, start } = await loadFixture(auctionedAt2650);
      // Bob's quote and limit, read while Alice is solvent at 2,650.
      const [filled, quoted] = await sys.auction.quoteBid(alice, wad("0.01"));
      expect(filled).to.equal(wad("0.01"));
      const limit = quoted;
      // ETH falls to 2,300 before the bid is mined: Alice is insolvent.
      await setFeedPrice(sys.feeds.ETH, "2300");
      const T = BigInt(await time.latest()) + 1n;
      const { deficit, payout, cost } = await insolventCost(sys, alice, start, T);
      const bobBefore = (await sys.engine.health(bob)).equityMark;
      await time.setNextBlockTimestamp(T);
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, wad("0.01"), limit))
        .to.be.revertedWithCustomError(sys.auction, "PaymentAboveLimit")
        .withArgs(cost, limit);
      expect(cost).to.equal(deficit - payout);
      expect((await sys.engine.health(bob)).equityMark).to.equal(bobBefore);
    });

    it("refuses the same through bidAndClose (Carol, flat, lets the auction trade her account)", async function () {
      const { sys, alice, carol, start } = await loadFixture(auctionedAt2650);
      await sys.accounts.connect(sys.carol).approve(sys.auction, carol);
      const [, limit] = await sys.auction.quoteBid(alice, wad("0.01"));
      await setFeedPrice(sys.feeds.ETH, "2300");
      const T = BigInt(await time.latest()) + 1n;
      const { cost } = await insolventCost(sys, alice, start, T);
      await time.setNextBlockTimestamp(T);
      await expect(sys.auction.connect(sys.carol).bidAndClose(alice, carol, wad("0.01"), limit))
        .to.be.revertedWithCustomError(sys.auction, "PaymentAboveLimit")
        .withArgs(cost, limit);
    });

    it("quoteBid previews the bound (deficit − payout, 0 once the payout covers it), the SDK and the keeper agree, and a bid at the quoted limit goes through", async function () {
      const { sys, alice, bob, start } = await loadFixture(auctionedAt2650);
      await setFeedPrice(sys.feeds.ETH, "2300");
      const p = await sys.auction.params();
      const params = {
        startDiscount: p.startDiscount,
        maxDiscount: p.maxDiscount,
        penalty: p.penalty,
        duration: p.duration,
        flagReward: p.flagReward,
      };
      // A quarter into the auction the payout is below the deficit; at its end above it.
      for (const [elapsed, label] of [
        [DURATION / 4n, "quarter"],
        [DURATION, "end"],
      ] as const) {
        const snap = await takeSnapshot();
        const T = start + elapsed;
        await mineAt(sys, T);
        const { deficit, payout, cost, h } = await insolventCost(sys, alice, start, T);
        const q = await sys.auction.quoteBid(alice, WAD);
        expect([q.filled, q.payment, q.insurancePayout], label).to.deep.equal([WAD, cost, payout]);
        const sdk = quoteBidFromHealth(h, WAD, elapsed, params, QUOTE_UNIT);
        expect([sdk.filled, sdk.payment, sdk.insurancePayout]).to.deep.equal([WAD, cost, payout]);
        // The keeper's economics count the book's mark and the payout once, whatever the quote's payment.
        const e = bidEconomics({
          quote: q,
          mark: h.equityMark,
          quotePrice: WAD,
          quoteUnit: QUOTE_UNIT,
          closeCost: 0n,
          gasUnits: 0n,
          gasPriceWei: 0n,
          nativeUsd: 0n,
        });
        expect(e.discountUsd).to.equal(h.equityMark + payout * QUOTE_UNIT);
        // One unit under the quoted cost is refused; the quote (the keeper's limit too) goes through.
        if (cost > 0n) {
          await time.setNextBlockTimestamp(T);
          await expect(sys.auction.connect(sys.bob).bid(alice, bob, WAD, cost - 1n))
            .to.be.revertedWithCustomError(sys.auction, "PaymentAboveLimit")
            .withArgs(cost, cost - 1n);
        }
        await time.setNextBlockTimestamp(T);
        await expect(sys.auction.connect(sys.bob).bid(alice, bob, WAD, maxPaymentFor(q.payment, 0n)))
          .to.emit(sys.auction, "InsolvencyCovered")
          .withArgs(alice, bob, deficit, (x: bigint) => x <= payout, anyUint);
        await snap.restore();
      }
    });
  });

  describe("a backstop collateral sale keeps the cash its book needs (row 143)", function () {
    /**
     * Alice: 10,000 USDC and 5 WETH (ETH 3,000), long 2 BTC at 60,000. BTC falls to 50,000, nobody bids,
     * the backstop absorbs the restoring slice (USDC, WETH and BTC long). BTC recovers to 60,000.
     */
    async function absorbedWethBook() {
      const sys = await deploySystem();
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [
        [sys.usdc, 10_000n * USDC],
        [sys.weth, wad("5")],
      ]);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      await sys.perps.setMarketParams(sys.markets.BTC, marketParams({ maxFundingVelocity: 0n }));
      await trade(sys.perps, sys.alice, alice, sys.markets.BTC, wad("2"));
      await setFeedPrice(sys.feeds.BTC, "50000");
      await sys.auction.startAuction(alice);
      const { startTime } = await sys.auction.auctions(alice);
      await mineAt(sys, startTime + DURATION);
      await sys.auction.absorb(alice);
      // At the absorb's second: the collateral's sale discount starts from 0 there.
      await atLatestTimestamp();
      await setFeedPrice(sys.feeds.BTC, "60000");
      return { sys, carol, backstop: await sys.auction.backstopAccountId() };
    }

    it("pays the backstop and sweeps after: swept, sold its WETH, BTC −8%, the unwound book leaves no quote debt nothing repays", async function () {
      const { sys, carol, backstop } = await loadFixture(absorbedWethBook);
      const weth = await sys.vault.balanceOf(backstop, sys.weth);
      const btc = await sys.perps.positionSize(backstop, sys.markets.BTC);
      expect(weth).to.be.gt(0n);
      // The sweep counts the WETH at its initial weight and moves the cash above the book's IM. The sweep
      // and the sale are pinned to the absorb's second: the WETH sells at a 0 discount, so the LPs' value
      // holds (each second later, the discount took 0.16–0.51 USDC off it under a skewed clock).
      await atLatestTimestamp();
      await sys.auction.sweepBackstopQuote();
      // Carol buys all the WETH: the LPs' value does not move, and the backstop keeps its book's IM.
      const assets = await sys.pool.totalAssets();
      const [payment] = await sys.auction.backstopCollateralQuote(sys.weth, weth);
      await time.setNextBlockTimestamp(await time.latest());
      await sys.auction.connect(sys.carol).buyBackstopCollateral(carol, sys.weth, weth, payment);
      expect(await sys.pool.totalAssets()).to.be.closeTo(assets, 1n);
      const h = await sys.engine.health(backstop);
      expect(h.equityInitial).to.be.gte(h.initialRequirement); // before the fix −74.10 against 7,568.83
      // BTC falls 8% (less than the book's IM shock) and the book is unwound: its cash paid the loss.
      await setFeedPrice(sys.feeds.BTC, "55200");
      await sys.auction.unwindBackstop(sys.perps, sys.markets.BTC, -btc, 0n, 2n ** 64n);
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.be.gte(0n);
      expect(await sys.vault.quoteDebt()).to.equal(0n); // before the fix 5,921.23 USDC nothing repays
    });

    /** Carol buys `amount` WETH at the quote: the sale goes through, nothing is swept, the backstop keeps the cash. */
    async function expectSaleKeptInBackstop(sys: System, carol: bigint, backstop: bigint, amount: bigint) {
      const cashBefore = await sys.vault.balanceOf(backstop, sys.usdc);
      const [payment] = await sys.auction.backstopCollateralQuote(sys.weth, amount);
      await time.setNextBlockTimestamp(await time.latest());
      const tx = sys.auction.connect(sys.carol).buyBackstopCollateral(carol, sys.weth, amount, payment);
      await expect(tx).to.emit(sys.auction, "BackstopCollateralSold");
      await expect(tx).to.not.emit(sys.auction, "BackstopQuoteSwept");
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(cashBefore + payment);
    }

    it("still sells while the backstop's BTC price feed is stale: the sweep cannot read its health, so the cash stays in the backstop", async function () {
      const { sys, carol, backstop } = await loadFixture(absorbedWethBook);
      const weth = await sys.vault.balanceOf(backstop, sys.weth);
      expect(await sys.perps.positionSize(backstop, sys.markets.BTC)).to.not.equal(0n);
      // Past the BTC heartbeat; ETH and USDC fresh again (the sale prices WETH in USDC).
      await time.increase(3_700);
      await setFeedPrice(sys.feeds.ETH, "3000");
      await setFeedPrice(sys.feeds.USDC, "1");
      await expect(sys.engine.health(backstop)).to.be.reverted;
      await expectSaleKeptInBackstop(sys, carol, backstop, weth);
    });

    it("still sells while the BTC volatility feed is stale (health at the floor shocks): nothing swept", async function () {
      const { sys, carol, backstop } = await loadFixture(absorbedWethBook);
      const weth = await sys.vault.balanceOf(backstop, sys.weth);
      await time.increase(3_700);
      for (const feed of Object.values(sys.feeds)) await feed.updateAnswer(await feed.latestAnswer());
      await sys.volFeeds.ETH.updateAnswer(await sys.volFeeds.ETH.latestAnswer());
      expect((await sys.engine.health(backstop)).volatilityUnavailable).to.equal(true);
      await expectSaleKeptInBackstop(sys, carol, backstop, weth);
    });

    it("still sells while the backstop is below its IM: the cash stays, nothing swept", async function () {
      const { sys, carol, backstop } = await loadFixture(absorbedWethBook);
      // BTC at 40,000: the absorbed long is far below its IM.
      await setFeedPrice(sys.feeds.BTC, "40000");
      const h = await sys.engine.health(backstop);
      expect(h.equityInitial).to.be.lt(h.initialRequirement);
      const weth = (await sys.vault.balanceOf(backstop, sys.weth)) / 2n;
      await expectSaleKeptInBackstop(sys, carol, backstop, weth);
    });
  });
});

const anyUint = (x: bigint): boolean => x >= 0n;
