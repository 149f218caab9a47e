import { expect } from "chai";
import { ethers } from "hardhat";
import type { ContractTransactionResponse } from "ethers";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  MarginMode,
  WAD,
  fundInsurance,
  openAccount,
  wad,
  withdrawCollateralToInitialMargin,
  withdrawToInitialMargin,
  findEvent,
  whatIf,
} from "../shared/system";
import {
  DAY,
  HOUR,
  deployOptionsSystem,
  fromNow,
  listSeries,
  tradeOption,
  deployOptionsSystemWithoutFunding,
} from "../shared/options";
import { mineAt, trade } from "../shared/perps";
import { assetId, setFeedPrice } from "../shared/oracles";
import { TX_GAS_CAP } from "../../scripts/keeper/sender";

/**
 * Review round 28: liquidation of option-heavy portfolios (LiquidationAuction, LiquidationMath,
 * MarginEngine.transferSlice, OptionMarket.transferPosition, absorb, bidAndClose). Every number the
 * report quotes is printed here. Run: npx hardhat test test/reliability/OptionBookLiquidation.test.ts
 */
const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;
const usd = (x: bigint) => (Number(x) / 1e18).toFixed(2);
const pct = (x: bigint) => ((Number(x) / 1e18) * 100).toFixed(4) + "%";

type Sys = Awaited<ReturnType<typeof deployOptionsSystem>>;

const liquidatable = (h: { equityMaintenance: bigint; maintenanceRequirement: bigint }) =>
  h.equityMaintenance < h.maintenanceRequirement;

/** The first `name` event of the auction in a transaction. */
async function auctionEvent(sys: Sys, tx: ContractTransactionResponse, name: string) {
  return findEvent((await tx.wait())!.logs, sys.auction, name);
}

describe("Liquidation of option books (review round 28)", function () {
  // ------------------------------------------------------------------------------------------ F1
  describe("F1: bidAndClose ran the markets' reduction checks on every leg of the slice", function () {
    /**
     * A deep-in-the-money covered call: Alice long 10 ETH perps and short 10 ETH-2500 calls (30 days),
     * at her IM on USDC; ETH 3,000 → 2,750 makes her liquidatable. `perpFirst` decides the order of her
     * market list, which the slice keeps and bidAndClose closes in. The keeper's bidder account holds no
     * USDC; the auction is two minutes old.
     */
    async function deepCoveredCall(perpFirst: boolean) {
      const sys = await deployOptionsSystemWithoutFunding();
      const call = await listSeries(sys.options, "ETH", "2500", await fromNow(30n * DAY), true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      if (perpFirst) await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
      await tradeOption(sys.options, sys.alice, alice, call, -wad("10"));
      if (!perpFirst) await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
      await withdrawToInitialMargin(sys, sys.alice, alice);
      await setFeedPrice(sys.feeds.ETH, "2750");
      await sys.auction.startAuction(alice);
      await mineAt(sys, BigInt(await time.latest()) + 120n);
      const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS);
      await sys.accounts.connect(sys.keeper).approve(sys.auction, keeper);
      return { sys, alice, call, keeper };
    }
    const perpFirst = () => deepCoveredCall(true);
    const callFirst = () => deepCoveredCall(false);

    it("a capital-less keeper closes a hedged slice whatever the order of its legs (before the fix: RiskIncreased when the perp came first)", async function () {
      for (const [order, fixture] of [
        ["perp first", perpFirst],
        ["call first", callFirst],
      ] as const) {
        const { sys, alice, keeper } = await loadFixture(fixture);
        const before = (await sys.engine.health(alice)).equityMark;
        let outcome = "ok";
        try {
          await sys.auction.connect(sys.keeper).bidAndClose(alice, keeper, WAD, ethers.MaxUint256);
        } catch (error) {
          outcome = (error as Error).message.replace(/^.*reverted with custom error /s, "").slice(0, 120);
        }
        const keeperGain = (await sys.engine.health(keeper)).equityMark;
        const viaKeeper = before - (await sys.engine.health(alice)).equityMark;
        // Nobody bids: the backstop absorbs at the end of the auction, at the maximum discount.
        const again = await loadFixture(fixture);
        await mineAt(again.sys, BigInt(await time.latest()) + 1800n);
        await again.sys.auction.absorb(again.alice);
        const viaAbsorb = before - (await again.sys.engine.health(again.alice)).equityMark;
        console.log(
          `      ${order}: bidAndClose at t = 121 s ${outcome}; keeper keeps ${usd(keeperGain)} USD; Alice loses ` +
            `${usd(viaKeeper)} to it, ${usd(viaAbsorb)} to the absorb`,
        );
        expect(outcome).to.equal("ok");
        expect(keeperGain).to.be.gt(0n);
        expect(viaAbsorb).to.be.gt(viaKeeper);
      }
    });

    it("what the per-leg check asked of a keeper: a float of the naked leg's IM", async function () {
      // The keeper bids with `bid` (a float for its own check) and closes the perp leg itself: its own
      // trade runs the reduction check as bidAndClose's did before the fix.
      const { sys, alice, keeper } = await loadFixture(perpFirst);
      const float = 100_000n * USDC;
      await sys.usdc.mint(sys.keeper, float);
      await sys.usdc.connect(sys.keeper).approve(sys.vault, float);
      await sys.vault.connect(sys.keeper).deposit(keeper, sys.usdc, float);
      const bid = await sys.auction.connect(sys.keeper).bid(alice, keeper, WAD, ethers.MaxUint256);
      const ev = (await auctionEvent(sys, bid, "AuctionBid"))!;
      const withSlice = await sys.engine.health(keeper);
      const perp = await sys.perps.positionSize(keeper, sys.markets.ETH);
      await trade(sys.perps, sys.keeper, keeper, sys.markets.ETH, -perp);
      const naked = await sys.engine.health(keeper);
      const needed = naked.initialRequirement - (naked.equityInitial - float * QUOTE_UNIT);
      console.log(
        `      slice ${pct(ev.args.fraction)} for ${Number(ev.args.payment) / 1e6} USDC; MM ${usd(withSlice.maintenanceRequirement)} → ` +
          `${usd(naked.maintenanceRequirement)} once the perp leg is closed; the check then needs equity_IM ≥ IM ` +
          `${usd(naked.initialRequirement)}: a float of ${usd(needed)} USD for a bid that earns the keeper 66.90`,
      );
      expect(naked.maintenanceRequirement).to.be.gt(withSlice.maintenanceRequirement);
      expect(needed).to.be.gt(wad("500"));
    });

    /** Alice short 2 contracts of `k` series (calls and puts, 2,600–3,400) five days from expiry. */
    async function nearExpiryBook(k: number) {
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(120n * HOUR + 600n);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
      for (let i = 0; i < k; i++) {
        const strike = String(2600 + 100 * Math.floor(i / 2));
        const series = await listSeries(sys.options, "ETH", strike, expiry, i % 2 === 0);
        await tradeOption(sys.options, sys.alice, alice, series, -wad("2"));
      }
      await withdrawToInitialMargin(sys, sys.alice, alice);
      // Volatility 60% → 85%: σ√τ of every series (9.95%) is now below the IM shock (10%), so each is
      // repriced in every scenario (~150,000 gas per series and health check), and Alice is liquidatable
      // (she kept one skew step, 5 points of vega, above her IM).
      await sys.volFeeds.ETH.updateAnswer(85n * 10n ** 6n);
      const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
      await sys.accounts.connect(sys.keeper).approve(sys.auction, keeper);
      await sys.auction.startAuction(alice);
      await mineAt(sys, BigInt(await time.latest()) + 60n);
      return { sys, alice, keeper };
    }

    const eightSeries = () => nearExpiryBook(8);
    const tenSeries = () => nearExpiryBook(10);
    const sixteenSeries = () => nearExpiryBook(16);
    for (const [k, fixture] of [
      [8, eightSeries],
      [10, tenSeries],
      [16, sixteenSeries],
    ] as const) {
      it(`closes a ${k}-series near-expiry book within the 2^24 gas cap (before the fix: 14.7M gas at 8 series, out of gas from 10)`, async function () {
        const { sys, alice, keeper } = await loadFixture(fixture);
        const healthGas = await sys.engine.health.estimateGas(alice);
        const absorbGas = await whatIf(async () => {
          await mineAt(sys, BigInt(await time.latest()) + 1800n);
          const r = await (await sys.auction.absorb(alice, { gasLimit: TX_GAS_CAP })).wait();
          return r!.gasUsed;
        });
        const bidGas = await whatIf(async () => {
          const r = await (
            await sys.auction
              .connect(sys.keeper)
              .bid(alice, keeper, WAD, ethers.MaxUint256, { gasLimit: TX_GAS_CAP })
          ).wait();
          return r!.gasUsed;
        });
        // No eth_estimateGas of the bidAndClose here: it was only printed, and EDR's search runs the
        // 3.8M-7.3M-gas close several times (at 16 series it gave up on the 2^24 cap), a quarter of this
        // file's CPU; the gas of the close itself is printed below from its receipt.
        console.log(`      ${k} series: bid ${bidGas} gas, absorb ${absorbGas}`);
        let outcome: string;
        try {
          const receipt = await (
            await sys.auction
              .connect(sys.keeper)
              .bidAndClose(alice, keeper, WAD, ethers.MaxUint256, { gasLimit: TX_GAS_CAP })
          ).wait();
          outcome = `gas used ${receipt!.gasUsed}`;
        } catch (error) {
          outcome = `failed (${(error as Error).message.slice(0, 60)})`;
        }
        console.log(`      ${k} series: health ${healthGas} gas; bidAndClose with 2^24 gas: ${outcome}`);
        expect(outcome).to.match(/^gas used/);
        expect(await sys.engine.accountMarkets(keeper)).to.deep.equal([]);
      });
    }

    it("keeps the reduction checks for everyone else: the frozen owner cannot close the perp leg of the same book", async function () {
      const { sys, alice } = await loadFixture(perpFirst);
      // Alice's own close of the perp leg (her account is frozen: any increase is refused).
      await expect(
        trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("10")),
      ).to.be.revertedWithCustomError(sys.engine, "RiskIncreased");
    });
  });

  // ------------------------------------------------------------------------------------------ F2
  describe("F2: an expired, unsettled series is marked at today's spot, not at its settlement round", function () {
    /**
     * Alice writes 10 ETH-3000 calls expiring in a day, withdrawn to her IM. After expiry the feed
     * posts 2,950 (the settlement round: the calls expire worthless), then 3,150 (today's spot).
     */
    async function expiredWriter() {
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, -wad("10"));
      await withdrawToInitialMargin(sys, sys.alice, alice);
      await mineAt(sys, expiry);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "2950");
      await setFeedPrice(sys.feeds.ETH, "3150");
      return { sys, alice, bob, call, round };
    }

    it("a bidder who bids before settling buys the slice at the spot mark and settles it at the round", async function () {
      const fair = await loadFixture(expiredWriter);
      const atSpot = await fair.sys.engine.health(fair.alice);
      await fair.sys.options.settleSeries(fair.call, fair.round);
      const settled = await fair.sys.engine.health(fair.alice);
      console.log(
        `      at spot: mark ${usd(atSpot.equityMark)}, MM ${usd(atSpot.maintenanceRequirement)} (liquidatable ${liquidatable(atSpot)}); ` +
          `settled first: mark ${usd(settled.equityMark)}, MM ${usd(settled.maintenanceRequirement)}`,
      );
      expect(liquidatable(atSpot)).to.equal(true);
      await expect(fair.sys.auction.startAuction(fair.alice)).to.be.revertedWithCustomError(
        fair.sys.auction,
        "AccountHealthy",
      );

      const { sys, alice, bob, call, round } = await loadFixture(expiredWriter);
      const bobBefore = (await sys.engine.health(bob)).equityMark;
      const bobWallet = await sys.usdc.balanceOf(sys.bob);
      await sys.auction.connect(sys.bob).startAuction(alice);
      const bid = await sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256);
      const filled = (await auctionEvent(sys, bid, "AuctionBid"))!.args.fraction as bigint;
      await sys.options.settleSeries(call, round);
      await sys.options.settleAccounts([alice, bob], call);
      const aliceAfter = (await sys.engine.health(alice)).equityMark;
      const bobGain =
        (await sys.engine.health(bob)).equityMark -
        bobBefore +
        ((await sys.usdc.balanceOf(sys.bob)) - bobWallet) * QUOTE_UNIT;
      console.log(
        `      bid first (${pct(filled)} filled at the 2% start discount), then settle: Alice ends at ${usd(aliceAfter)} ` +
          `(−${usd(settled.equityMark - aliceAfter)} against settling first), the bidder +${usd(bobGain)} (flag reward included)`,
      );
      expect(settled.equityMark - aliceAfter).to.be.gt(wad("100"));
    });
  });

  // ------------------------------------------------------------------------------------------ Q1
  describe("Q1: the restoring fraction on option books (sound)", function () {
    const books: {
      label: string;
      prices: string[];
      build: (sys: Sys, a: bigint) => Promise<void>;
    }[] = [
      {
        label: "short straddle, 30 days (Greeks)",
        prices: ["3100", "3200", "3300", "3400"],
        build: async (sys, a) => {
          const e = await fromNow(30n * DAY);
          const c = await listSeries(sys.options, "ETH", "3000", e, true);
          const p = await listSeries(sys.options, "ETH", "3000", e, false);
          await tradeOption(sys.options, sys.alice, a, c, -wad("5"));
          await tradeOption(sys.options, sys.alice, a, p, -wad("5"));
        },
      },
      {
        label: "short puts, 7 days (repriced at IM)",
        prices: ["2900", "2800", "2700", "2600"],
        build: async (sys, a) => {
          const p = await listSeries(sys.options, "ETH", "2900", await fromNow(7n * DAY), false);
          await tradeOption(sys.options, sys.alice, a, p, -wad("10"));
        },
      },
      {
        label: "covered call (perp + short call)",
        prices: ["2800", "2700", "2600", "2500"],
        build: async (sys, a) => {
          const c = await listSeries(sys.options, "ETH", "3300", await fromNow(30n * DAY), true);
          await trade(sys.perps, sys.alice, a, sys.markets.ETH, wad("10"));
          await tradeOption(sys.options, sys.alice, a, c, -wad("4"));
        },
      },
      {
        label: "condor wings, 10 days (floor covered by time value)",
        prices: ["3100", "3200", "3300", "3400"],
        build: async (sys, a) => {
          const e = await fromNow(10n * DAY);
          const c1 = await listSeries(sys.options, "ETH", "3300", e, true);
          const c2 = await listSeries(sys.options, "ETH", "3600", e, true);
          const p1 = await listSeries(sys.options, "ETH", "2700", e, false);
          const p2 = await listSeries(sys.options, "ETH", "2400", e, false);
          await tradeOption(sys.options, sys.alice, a, c2, wad("10"));
          await tradeOption(sys.options, sys.alice, a, p2, wad("10"));
          await tradeOption(sys.options, sys.alice, a, c1, -wad("10"));
          await tradeOption(sys.options, sys.alice, a, p1, -wad("10"));
        },
      },
    ];
    for (const book of books) {
      it(`caps a bid at a fraction that restores the account, within 0.1%: ${book.label}`, async function () {
        const sys = await loadFixture(deployOptionsSystemWithoutFunding);
        const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 500_000n * USDC]]);
        const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
        await book.build(sys, a);
        await withdrawToInitialMargin(sys, sys.alice, a);
        for (const px of book.prices) {
          await setFeedPrice(sys.feeds.ETH, px);
          if (liquidatable(await sys.engine.health(a))) break;
        }
        expect(liquidatable(await sys.engine.health(a))).to.equal(true);
        await sys.auction.startAuction(a);
        const at = BigInt(await time.latest()) + 1n;
        // What a bid of `fraction` fills, and how far above its IM it leaves the account.
        const after = (fraction: bigint) =>
          whatIf(async () => {
            await time.setNextBlockTimestamp(at);
            const tx = await sys.auction.connect(sys.bob).bid(a, bob, fraction, ethers.MaxUint256);
            const filled = (await auctionEvent(sys, tx, "AuctionBid"))!.args.fraction as bigint;
            const h = await sys.engine.health(a);
            return { filled, margin: h.equityInitial - h.initialRequirement };
          });
        const capped = await after(WAD);
        let lo = 0n;
        let hi = capped.filled;
        while (hi - lo > 10n ** 11n) {
          const mid = (lo + hi) / 2n;
          if ((await after(mid)).margin >= 0n) hi = mid;
          else lo = mid;
        }
        console.log(
          `      capped ${pct(capped.filled)}, smallest restoring ${pct(hi)} (+${((Number(capped.filled - hi) / Number(hi)) * 100).toFixed(3)}%), ` +
            `left ${usd(capped.margin)} USD above IM`,
        );
        expect(capped.margin).to.be.gte(0n);
        expect((capped.filled - hi) * 1000n).to.be.lt(hi);
      });
    }
  });

  // ------------------------------------------------------------------------------------------ Q2
  describe("Q2: rounding of option slices (sound: wei of contracts, units of USDC, against the bidder)", function () {
    /**
     * Alice: 5 WETH, long 6.666… ETH-3000 calls and short 3.333… ETH-2900 puts (30 days), bought on
     * quote debt, withdrawn to her IM; ETH falls to 2,750: liquidatable, solvent.
     */
    async function oddBook() {
      const sys = await deployOptionsSystemWithoutFunding();
      const e = await fromNow(30n * DAY);
      const call = await listSeries(sys.options, "ETH", "3000", e, true);
      const put = await listSeries(sys.options, "ETH", "2900", e, false);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("5")]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 500_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, 6_666_666_666_666_666_666n);
      await tradeOption(sys.options, sys.alice, alice, put, -3_333_333_333_333_333_333n);
      // Withdraw WETH down to the IM (to 0.001 WETH), leaving the quote debt. The WETH is a long delta in
      // the options' group: each unit withdrawn lowers the requirement too.
      await withdrawCollateralToInitialMargin(sys, sys.alice, alice, sys.weth, wad("0.001"));
      await setFeedPrice(sys.feeds.ETH, "2750");
      await sys.auction.startAuction(alice);
      return { sys, alice, bob, call, put, at: BigInt(await time.latest()) + 10n };
    }

    const stateOf = async (sys: Sys, id: bigint, call: bigint, put: bigint) => ({
      call: await sys.options.positionSize(id, call),
      put: await sys.options.positionSize(id, put),
      weth: await sys.vault.balanceOf(id, sys.weth),
      usdc: await sys.vault.balanceOf(id, sys.usdc),
      mark: (await sys.engine.health(id)).equityMark,
    });

    it("forty 0.5% bids and a restoring one leave the account and the bidder where one restoring bid does", async function () {
      const one = await loadFixture(oddBook);
      const before = await stateOf(one.sys, one.alice, one.call, one.put);
      console.log(
        `      book: calls ${before.call}, puts ${before.put}, WETH ${before.weth}, USDC ${before.usdc} units`,
      );
      await time.setNextBlockTimestamp(one.at);
      const oneBid = await one.sys.auction
        .connect(one.sys.bob)
        .bid(one.alice, one.bob, WAD, ethers.MaxUint256);
      const oneFilled = (await auctionEvent(one.sys, oneBid, "AuctionBid"))!.args.fraction as bigint;
      const single = {
        alice: await stateOf(one.sys, one.alice, one.call, one.put),
        bob: await stateOf(one.sys, one.bob, one.call, one.put),
      };

      const many = await loadFixture(oddBook);
      let kept = WAD * WAD; // Π(1 − f_i), WAD²
      let bids = 0;
      while ((await many.sys.auction.auctions(many.alice)).active) {
        await time.setNextBlockTimestamp(many.at); // same second: same discount and theta as the single bid
        const f = bids < 40 ? wad("0.005") : WAD;
        const tx = await many.sys.auction
          .connect(many.sys.bob)
          .bid(many.alice, many.bob, f, ethers.MaxUint256);
        const filled = (await auctionEvent(many.sys, tx, "AuctionBid"))!.args.fraction as bigint;
        kept = (kept * (WAD - filled)) / WAD;
        bids += 1;
      }
      const split = {
        alice: await stateOf(many.sys, many.alice, many.call, many.put),
        bob: await stateOf(many.sys, many.bob, many.call, many.put),
      };
      const proRata = (x: bigint) => (x * kept) / (WAD * WAD);
      console.log(
        `      ${bids} bids: Alice keeps calls ${split.alice.call} (pro rata ${proRata(before.call)}), puts ${split.alice.put} ` +
          `(${proRata(before.put)}), WETH ${split.alice.weth} (${proRata(before.weth)})`,
      );
      console.log(
        `      sold ${pct(WAD - kept / WAD)} in ${bids} bids, ${pct(oneFilled)} in one; against one restoring bid Alice's ` +
          `mark differs by ${Number((split.alice.mark - single.alice.mark) / 10n ** 12n)} µUSD, the bidder's by ` +
          `${Number((split.bob.mark - single.bob.mark) / 10n ** 12n)} µUSD`,
      );
      // Each bid rounds contracts and collateral down for the bidder and debt and payment up: the
      // account keeps at most a wei per position per bid beyond pro rata, and the bidder gains nothing.
      expect(split.alice.call - proRata(before.call)).to.be.within(-2n, BigInt(bids) + 2n);
      expect(-(split.alice.put - proRata(before.put))).to.be.within(-2n, BigInt(bids) + 2n);
      expect(split.bob.mark - single.bob.mark).to.be.lte(wad("0.01"));
      expect(single.alice.mark - split.alice.mark).to.be.lte(wad("0.01"));
    });

    it("a 1-wei bid moves no contract and costs the bidder a unit", async function () {
      const { sys, alice, bob, call, put, at } = await loadFixture(oddBook);
      const before = await stateOf(sys, alice, call, put);
      const bobBefore = await stateOf(sys, bob, call, put);
      await time.setNextBlockTimestamp(at);
      const tx = await sys.auction.connect(sys.bob).bid(alice, bob, 1n, ethers.MaxUint256);
      const ev = (await auctionEvent(sys, tx, "AuctionBid"))!;
      const after = await stateOf(sys, alice, call, put);
      const bobAfter = await stateOf(sys, bob, call, put);
      console.log(
        `      payment ${ev.args.payment} unit(s), penalty ${ev.args.penalty}; Alice's calls ${after.call - before.call}, ` +
          `puts ${after.put - before.put}; the bidder's mark ${usd(bobAfter.mark - bobBefore.mark)}`,
      );
      // floor(|size|·1 wei / WAD): 6 wei of 6.67 calls, 3 of 3.33 puts, and a unit of USDC for them.
      expect(before.call - after.call).to.equal(before.call / WAD);
      expect(bobAfter.mark).to.be.lt(bobBefore.mark);
    });
  });

  // ------------------------------------------------------------------------------------------ Q3
  describe("Q3: bidAndClose near expiry and on expired series", function () {
    it("closes a short-call slice in the last hour at the one-hour value plus the spread, past a pool vega limit cut to nothing", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const expiry = await fromNow(2n * HOUR);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, -wad("10"));
      await withdrawToInitialMargin(sys, sys.alice, alice);
      await mineAt(sys, expiry - 30n * 60n);
      for (const px of ["3050", "3100", "3150", "3200", "3300"]) {
        await setFeedPrice(sys.feeds.ETH, px);
        if (liquidatable(await sys.engine.health(alice))) break;
      }
      expect(liquidatable(await sys.engine.health(alice))).to.equal(true);
      await sys.auction.startAuction(alice);
      await mineAt(sys, BigInt(await time.latest()) + 300n);
      const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS);
      await sys.accounts.connect(sys.keeper).approve(sys.auction, keeper);
      // The pool's vega limit cut to nothing (cuts are free): closes are reductions and never refused.
      await sys.options.setPoolVegaRatio(assetId("ETH"), 1n);
      const tx = await sys.auction.connect(sys.keeper).bidAndClose(alice, keeper, WAD, ethers.MaxUint256);
      const ev = (await auctionEvent(sys, tx, "AuctionBid"))!;
      const h = await sys.engine.health(alice);
      console.log(
        `      25 min before expiry: ${pct(ev.args.fraction)} filled at ${pct(ev.args.discount)}; the keeper keeps ` +
          `${usd((await sys.engine.health(keeper)).equityMark)} USD; Alice left liquidatable: ${liquidatable(h)}`,
      );
      expect(await sys.engine.accountMarkets(keeper)).to.deep.equal([]);
    });

    it("an expired, unsettled series refuses bidAndClose (SeriesExpired), not bid or absorb; settled, it closes", async function () {
      const sys = await loadFixture(deployOptionsSystemWithoutFunding);
      const expiry = await fromNow(DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, -wad("10"));
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
      await withdrawToInitialMargin(sys, sys.alice, alice);
      await mineAt(sys, expiry);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "2700");
      expect(liquidatable(await sys.engine.health(alice))).to.equal(true);
      await sys.auction.startAuction(alice);
      const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS);
      await sys.accounts.connect(sys.keeper).approve(sys.auction, keeper);
      await expect(
        sys.auction.connect(sys.keeper).bidAndClose(alice, keeper, WAD, ethers.MaxUint256),
      ).to.be.revertedWithCustomError(sys.options, "SeriesExpired");
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      const quote = await sys.auction.quoteBid(alice, WAD);
      await whatIf(() => sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256));
      await whatIf(async () => {
        await mineAt(sys, BigInt(await time.latest()) + 1800n);
        await sys.auction.absorb(alice);
      });
      await sys.options.settleSeries(call, round);
      const tx = await sys.auction.connect(sys.keeper).bidAndClose(alice, keeper, WAD, ethers.MaxUint256);
      const ev = (await auctionEvent(sys, tx, "AuctionBid"))!;
      console.log(
        `      unsettled: bidAndClose reverts, bid and absorb go through (quote ${pct(quote.filled)}); ` +
          `settled: bidAndClose fills ${pct(ev.args.fraction)}, keeper keeps ${usd((await sys.engine.health(keeper)).equityMark)} USD`,
      );
    });
  });

  // ------------------------------------------------------------------------------------------ Q4
  describe("Q4: insolvent option books (sound: the LPs end with what the accounting recorded)", function () {
    /** Alice writes 20 ETH-3000 calls (3 days) at her IM; the fund holds ~1,000 USDC; ETH jumps to 3,600. */
    async function insolventWriter() {
      const sys = await deployOptionsSystem();
      await fundInsurance(sys, 1_000n * USDC);
      const expiry = await fromNow(3n * DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, -wad("20"));
      await withdrawToInitialMargin(sys, sys.alice, alice);
      await setFeedPrice(sys.feeds.ETH, "3600");
      await sys.auction.startAuction(alice);
      return { sys, alice, bob, call, expiry, start: BigInt(await time.latest()) };
    }

    async function settleAt3600(sys: Sys, call: bigint, expiry: bigint, holders: bigint[]) {
      await mineAt(sys, expiry);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "3600");
      await sys.options.settleSeries(call, round);
      await sys.options.settleAccounts(holders, call);
    }

    it("absorb: the pool pays what the fund cannot, the share price does not move, and settlement moves nothing", async function () {
      const { sys, alice, call, expiry, start } = await loadFixture(insolventWriter);
      const h = await sys.engine.health(alice);
      const pending = await sys.auction.pendingDeficit();
      await mineAt(sys, start + 1800n);
      const lpBefore = await sys.pool.totalAssets();
      const tx = await sys.auction.absorb(alice);
      const covered = (await auctionEvent(sys, tx, "InsolvencyCovered"))!.args;
      const lpAfter = await sys.pool.totalAssets();
      await settleAt3600(sys, call, expiry, [await sys.auction.backstopAccountId()]);
      const lpSettled = await sys.pool.totalAssets();
      console.log(
        `      mark ${usd(h.equityMark)}, MM ${usd(h.maintenanceRequirement)}; recorded deficit ${Number(pending) / 1e6}, ` +
          `fund ${Number(covered.paidByInsurance) / 1e6}, socialised ${Number(covered.socialisedLoss) / 1e6}; LP assets ` +
          `${Number(lpBefore) / 1e6} → ${Number(lpAfter) / 1e6} → ${Number(lpSettled) / 1e6} after settlement`,
      );
      // The record is the start's; 30 minutes of theta later the deficit is 0.018 USDC smaller.
      expect(covered.deficit).to.be.closeTo(pending, 100_000n);
      expect(lpAfter - lpBefore).to.be.within(0n, 100_000n);
      expect(lpSettled - lpAfter).to.be.within(-2n, 2n);
    });

    it("a bidder's payout ramps to deficit + dmax·MM; with the fund exhausted the premium is the LPs'", async function () {
      const base = await loadFixture(insolventWriter);
      await mineAt(base.sys, base.start + 1800n);
      await base.sys.auction.absorb(base.alice);
      await settleAt3600(base.sys, base.call, base.expiry, [await base.sys.auction.backstopAccountId()]);
      const lpAbsorb = await base.sys.pool.totalAssets();
      for (const t of [900n, 1400n, 1800n]) {
        const { sys, alice, bob, call, expiry, start } = await loadFixture(insolventWriter);
        await mineAt(sys, start + t);
        const bobBefore = (await sys.engine.health(bob)).equityMark;
        // No limit: before the payout covers the deficit the take costs Bob the difference (round 56).
        const tx = await sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256);
        const covered = (await auctionEvent(sys, tx, "InsolvencyCovered"))!.args;
        const payout = (covered.paidByInsurance as bigint) + (covered.socialisedLoss as bigint);
        await settleAt3600(sys, call, expiry, [bob]);
        const bobGain = (await sys.engine.health(bob)).equityMark - bobBefore;
        const lp = await sys.pool.totalAssets();
        console.log(
          `      t = ${t} s: deficit ${Number(covered.deficit) / 1e6}, payout ${Number(payout) / 1e6}, bidder ` +
            `${usd(bobGain)} at settlement, LPs ${(Number(lp - lpAbsorb) / 1e6).toFixed(2)} against the absorb`,
        );
      }
    });
  });
});
