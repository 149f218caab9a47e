import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Signer } from "ethers";
import {
  EXIT_DELAY,
  MarginMode,
  WAD,
  atLatestTimestamp,
  deploySystem,
  eventOf,
  fundInsurance,
  openAccount,
  wad,
  whatIf,
  withdrawToInitialMargin,
  type System,
} from "../shared/system";
import { closePosition, marketParams, mineAt, trade, wethDebtorSystem } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import {
  DAY,
  DEFAULT_LISTING_FLOORS,
  HOUR,
  deployOptionsSystem,
  fromNow,
  listSeries,
  seriesParams,
  tradeOption,
} from "../shared/options";

/**
 * An attacker with capital and several accounts trying to take value that is not a fair trading profit
 * from the LPs, the insurance fund or other traders: self-liquidation, the skew premium and funding, the
 * LP share price around foreseeable events, options near expiry, collateral haircuts and rounding, with
 * the deployments' parameters (skew scale 1,000, fees 2 / 5 bp, auction 2% → 10% over 30 minutes with a
 * 1% penalty, 1-day holding period and exit delay, option floors of 2.5 bp and 0.005). Each test states
 * what the attack costs the attacker and which rule stops it. One worked (docs/reliability.md §4, row
 * 211): a flag reward that took a mark of whole quote units to exactly 0 made the auction treat the book
 * as insolvent, and the fund paid its taker maxDiscount·MM for a book worth nothing.
 */
const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;
const MAX = ethers.MaxUint256;

/** Floor division for signed bigints (equity marks can be negative). */
const floorDiv = (a: bigint, b: bigint): bigint => (a >= 0n ? a / b : -((-a + b - 1n) / b));

/**
 * What an attacker holds, in quote units: the mark equity of its accounts (collateral at the oracle,
 * positions at the oracle with funding) plus the USDC in its wallets.
 */
async function wealth(sys: System, ids: bigint[], wallets: Signer[]): Promise<bigint> {
  let total = 0n;
  for (const id of ids) total += floorDiv((await sys.engine.health(id)).equityMark, QUOTE_UNIT);
  for (const w of wallets) total += await sys.usdc.balanceOf(await w.getAddress());
  return total;
}

/** What `act` costs the accounts `ids` (`wealth`, no wallets) and what it gains the pool (totalAssets). */
async function pairAndPool(sys: System, ids: bigint[], act: () => Promise<void>) {
  const before = await wealth(sys, ids, []);
  const poolBefore = await sys.pool.totalAssets();
  await act();
  return {
    loss: before - (await wealth(sys, ids, [])),
    poolGain: BigInt(await sys.pool.totalAssets()) - BigInt(poolBefore),
  };
}

/** Alice long 20 ETH on 10,000 USDC (funding off), Bob's second account with 20,000 USDC; ETH at 2,600. */
async function liquidatableLong() {
  const sys = await deploySystem();
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
  await setFeedPrice(sys.feeds.ETH, "2600");
  return { sys, alice, bob };
}

/**
 * Alice long 20 ETH on `aliceUsdc`, Bob short 20 ETH on `bobUsdc` (the pool flat), Carol's account
 * (20,000 USDC) to take Alice's book; the fund holds 50,000 USDC. Funding off.
 */
async function pair(aliceUsdc: bigint, bobUsdc: bigint) {
  const sys = await deploySystem();
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  await fundInsurance(sys, 50_000n * USDC);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, aliceUsdc]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, bobUsdc]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
  await trade(sys.perps, sys.bob, bob, sys.markets.ETH, -wad("20"));
  return { sys, alice, bob, carol };
}

/** A hedged pair (`pair`): Alice at her initial requirement, Bob on 30,000 USDC. */
async function hedgedPair() {
  const world = await pair(20_000n * USDC, 30_000n * USDC);
  await withdrawToInitialMargin(world.sys, world.sys.alice, world.alice);
  return world;
}

describe("Value extraction by a trader with capital", function () {
  describe("Self-liquidation", function () {
    it("costs the owner more than the bidder earns", async function () {
      const { sys, alice, bob } = await loadFixture(liquidatableLong);
      const pair = () => wealth(sys, [alice, bob], [sys.alice, sys.bob]);
      const before = await pair();
      const fundBefore = await sys.insuranceFund.balance();
      // The honest way out: Alice closes her own long at the oracle (her skew premium comes back).
      const selfClose = await whatIf(async () => {
        await closePosition(sys.perps, sys.alice, alice, sys.markets.ETH);
        return (await pair()) - before;
      });
      // The attack: Bob flags her (the reward leaves her account for his wallet), waits for the maximum
      // discount, buys the restoring slice and closes it.
      await sys.auction.connect(sys.bob).startAuction(alice);
      const { startTime } = await sys.auction.auctions(alice);
      await mineAt(sys, startTime + 1800n);
      const receipt = await (await sys.auction.connect(sys.bob).bid(alice, bob, WAD, MAX)).wait();
      const { fraction: filled, penalty } = eventOf(receipt, sys.auction, "AuctionBid").args;
      await closePosition(sys.perps, sys.bob, bob, sys.markets.ETH);
      // The bid restored her: she closes the rest herself.
      expect((await sys.auction.auctions(alice)).active).to.equal(false);
      await closePosition(sys.perps, sys.alice, alice, sys.markets.ETH);
      const attack = (await pair()) - before;
      // Alice ↔ Bob: the 10% discount and the flag reward only move money between the pair's accounts;
      // the penalty leaves it for the fund; the two closes pay what Alice's one close would, to a unit
      // of rounding, and the skew premium comes back to whoever closes (path-independent fills). Both
      // ways are measured flat, so the premium her close collects above the oracle is in both.
      expect(filled).to.be.gt(0n);
      expect(penalty).to.be.gt(0n);
      expect(await sys.insuranceFund.balance()).to.be.gte(fundBefore + penalty);
      expect(attack).to.be.lte(selfClose - BigInt(penalty) + 2n);
      console.log(
        `      self-close ${selfClose} units; self-liquidation (fraction ${ethers.formatEther(filled)}) ${attack} units, penalty ${penalty}`,
      );
    });

    it("through bidAndClose pays the penalty and the close's fee", async function () {
      const { sys, alice, bob } = await loadFixture(liquidatableLong);
      const pair = () => wealth(sys, [alice, bob], [sys.alice, sys.bob]);
      // bidAndClose trades for Bob's account: the documented unlimited grant to the auction.
      await sys.accounts.connect(sys.bob).setTrader(bob, sys.auction, MAX);
      const before = await pair();
      await sys.auction.connect(sys.bob).startAuction(alice);
      const { startTime } = await sys.auction.auctions(alice);
      await mineAt(sys, startTime + 1800n);
      const attack = await whatIf(async () => {
        await sys.auction.connect(sys.bob).bidAndClose(alice, bob, WAD, MAX);
        await closePosition(sys.perps, sys.alice, alice, sys.markets.ETH);
        return (await pair()) - before;
      });
      const honest = await whatIf(async () => {
        await closePosition(sys.perps, sys.alice, alice, sys.markets.ETH);
        return (await pair()) - before;
      });
      const receipt = await (await sys.auction.connect(sys.bob).bidAndClose(alice, bob, WAD, MAX)).wait();
      const { penalty } = eventOf(receipt, sys.auction, "AuctionBid").args;
      expect(attack).to.be.lte(honest - BigInt(penalty) + 2n);
      console.log(
        `      bidAndClose then Alice's close: pair ${attack} units; Alice's own close ${honest}; penalty ${penalty}`,
      );
    });

    it("pays a dust account's flag reward out of the account itself, once a day", async function () {
      const sys = await loadFixture(deploySystem);
      const dust = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 400n * USDC]]);
      await trade(sys.perps, sys.alice, dust, sys.markets.ETH, wad("1"));
      await setFeedPrice(sys.feeds.ETH, "2650");
      const pair = () => wealth(sys, [dust], [sys.alice, sys.bob]);
      const before = await pair();
      const [fund, pool] = [await sys.insuranceFund.balance(), await sys.pool.totalAssets()];
      const started = await (await sys.auction.connect(sys.bob).startAuction(dust)).wait();
      expect(eventOf(started, sys.auction, "AuctionStarted").args.flagReward).to.equal(10n * USDC);
      // The reward moved from Alice's account to Bob's wallet: nothing came from the fund or the LPs
      // (the pool only gains the second's funding).
      expect(await pair()).to.be.within(before - 1n, before);
      expect(await sys.insuranceFund.balance()).to.equal(fund);
      expect(await sys.pool.totalAssets()).to.be.gte(pool);
      // Cured and flagged again within the day: no reward (FLAG_REWARD_COOLDOWN).
      await setFeedPrice(sys.feeds.ETH, "3000");
      await sys.auction.endAuction(dust);
      await setFeedPrice(sys.feeds.ETH, "2650");
      const again = await (await sys.auction.connect(sys.bob).startAuction(dust)).wait();
      expect(eventOf(again, sys.auction, "AuctionStarted").args.flagReward).to.equal(0n);
    });

    it("gains a hedged pair what the fund pays only on a gap beyond the initial shock", async function () {
      const { sys, alice, bob, carol } = await loadFixture(hedgedPair);
      const attacker = () => wealth(sys, [alice, bob, carol], [sys.alice, sys.bob, sys.carol]);
      const start = await attacker();
      const fundStart = await sys.insuranceFund.balance();
      const poolStart = await sys.pool.totalAssets();
      // One oracle round moves ETH from 3,000 to `price`; Carol flags Alice, waits for dmax, takes the
      // restoring slice (or, insolvent, the whole book with the fund's payout); everyone closes.
      const gap = (price: string) =>
        whatIf(async () => {
          await setFeedPrice(sys.feeds.ETH, price);
          const solvent = (await sys.engine.health(alice)).equityMark > 0n;
          await sys.auction.connect(sys.carol).startAuction(alice);
          const { startTime } = await sys.auction.auctions(alice);
          await mineAt(sys, startTime + 1800n);
          await sys.auction.connect(sys.carol).bid(alice, carol, WAD, MAX);
          for (const [s, id] of [
            [sys.alice, alice],
            [sys.bob, bob],
            [sys.carol, carol],
          ] as const) {
            if ((await sys.perps.positionSize(id, sys.markets.ETH)) !== 0n)
              await closePosition(sys.perps, s, id, sys.markets.ETH);
          }
          return {
            solvent,
            pair: (await attacker()) - start,
            fund: (await sys.insuranceFund.balance()) - fundStart,
            pool: BigInt(await sys.pool.totalAssets()) - BigInt(poolStart),
          };
        });
      const small = await gap("2760"); // −8%: inside the 10% initial shock
      const large = await gap("2580"); // −14%: beyond it
      console.log(
        `      gap −8%: ${JSON.stringify(small, (_, v) => (typeof v === "bigint" ? String(v) : v))}`,
      );
      console.log(
        `      gap −14%: ${JSON.stringify(large, (_, v) => (typeof v === "bigint" ? String(v) : v))}`,
      );
      expect(small.solvent).to.equal(true);
      expect(small.pair).to.be.lt(0n);
      expect(large.solvent).to.equal(false);
      // Beyond the shock the pair keeps what the fund pays, no more: value is conserved to the fees.
      expect(large.pair).to.be.gt(0n);
      expect(large.pair).to.be.lte(-large.fund - large.pool);
    });
  });

  describe("Self-flag to a zero mark", function () {
    /**
     * Alice long 20 ETH (fill 3,030, fee 30.30) on 7,320 USDC, Bob short 20 (the pool flat), Carol's
     * account with 20,000 USDC to take the book; the fund holds 50,000. At ETH 2,666.015 Alice's mark is
     * exactly 10 USDC (7,320 − 30.30 − 20 · 363.985), far below her maintenance requirement (~2,800).
     */
    async function markOfTenUsdc() {
      const world = await pair(7_320n * USDC, 20_000n * USDC);
      await setFeedPrice(world.sys.feeds.ETH, "2666.015");
      return world;
    }

    /** Bob flags Alice, Carol takes the whole book at the auction's end; the pair's and the fund's change. */
    async function flagAndTake(sys: System, alice: bigint, bob: bigint, carol: bigint) {
      const attacker = () => wealth(sys, [alice, bob, carol], [sys.alice, sys.bob, sys.carol]);
      const before = await attacker();
      const fundBefore = await sys.insuranceFund.balance();
      const started = await (await sys.auction.connect(sys.bob).startAuction(alice)).wait();
      const reward = eventOf(started, sys.auction, "AuctionStarted").args.flagReward as bigint;
      const markAfterFlag = (await sys.engine.health(alice)).equityMark;
      const { startTime } = await sys.auction.auctions(alice);
      await mineAt(sys, startTime + 1800n);
      await sys.auction.connect(sys.carol).bid(alice, carol, WAD, MAX);
      return {
        reward,
        markAfterFlag,
        pair: (await attacker()) - before,
        fund: BigInt(await sys.insuranceFund.balance()) - BigInt(fundBefore),
      };
    }

    it("pays no insurance bonus for a book its owner's flag reward took to zero", async function () {
      const { sys, alice, bob, carol } = await loadFixture(markOfTenUsdc);
      expect((await sys.engine.health(alice)).equityMark).to.equal(10n * USDC * QUOTE_UNIT);
      // One quote unit more and the reward leaves her a unit: the book is sold solvent, for ~nothing.
      const solvent = await whatIf(async () => {
        await sys.usdc.mint(sys.alice.address, 1n);
        await sys.usdc.connect(sys.alice).approve(await sys.vault.getAddress(), 1n);
        await sys.vault.connect(sys.alice).deposit(alice, sys.usdc, 1n);
        return flagAndTake(sys, alice, bob, carol);
      });
      const zero = await flagAndTake(sys, alice, bob, carol);
      console.log(
        `      mark 10.000001: reward ${solvent.reward}, pair ${solvent.pair}, fund ${solvent.fund}; mark 10: reward ${zero.reward}, mark after ${zero.markAfterFlag}, pair ${zero.pair}, fund ${zero.fund}`,
      );
      expect(solvent.markAfterFlag).to.equal(QUOTE_UNIT);
      expect(solvent.fund).to.be.gte(0n);
      expect(zero.markAfterFlag).to.equal(0n);
      // The book is worth the same ~nothing either way; the fund must not pay for the one at zero.
      expect(zero.fund).to.be.gte(0n);
      expect(zero.pair).to.be.lte(solvent.pair + 2n);
    });

    it("is absorbed by the backstop whole for nothing, the fund untouched", async function () {
      const { sys, alice } = await loadFixture(markOfTenUsdc);
      await sys.auction.connect(sys.bob).startAuction(alice);
      expect((await sys.engine.health(alice)).equityMark).to.equal(0n);
      const fundBefore = await sys.insuranceFund.balance();
      const { startTime } = await sys.auction.auctions(alice);
      await mineAt(sys, startTime + BigInt((await sys.auction.params()).duration));
      const backstop = await sys.engine.backstopAccountId();
      await expect(sys.auction.absorb(alice))
        .to.emit(sys.auction, "AuctionBid")
        .withArgs(alice, backstop, WAD, 0n, 0n, (await sys.auction.params()).maxDiscount)
        .and.not.to.emit(sys.auction, "InsolvencyCovered");
      expect(await sys.insuranceFund.balance()).to.equal(fundBefore);
      expect(await sys.auction.pendingDeficit()).to.equal(0n);
      expect(await sys.perps.positionSize(backstop, sys.markets.ETH)).to.equal(wad("20"));
      expect(await sys.engine.accountMarkets(alice)).to.deep.equal([]);
    });

    it("is reached from a liquidatable mark by a reduction that pays a partner's skew", async function () {
      const { sys, alice, bob, carol } = await loadFixture(markOfTenUsdc);
      // ETH at 2,680 instead: Alice's mark 289.70 against a maintenance requirement of ~4,030, not yet
      // flagged. Bob shorts 50 more (skew −50); a sale of Alice's into it pays Bob's side a premium of
      // ~5% of its notional, no more than the requirement it frees, so the engine lets her pay it.
      await setFeedPrice(sys.feeds.ETH, "2680");
      await trade(sys.perps, sys.bob, bob, sys.markets.ETH, -wad("50"));
      const markAfterSale = (x: bigint) =>
        whatIf(async () => {
          try {
            await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -x);
          } catch {
            return -1n; // refused: the sale would leave her insolvent
          }
          return (await sys.engine.health(alice)).equityMark;
        });
      // The sale (in millionths of an ETH) that leaves her mark in (0, 10] USDC.
      let [lo, hi] = [0n, 3_000_000n];
      while (hi - lo > 1n) {
        const mid = (lo + hi) / 2n;
        if ((await markAfterSale(mid * 10n ** 12n)) > 10n * USDC * QUOTE_UNIT) lo = mid;
        else hi = mid;
      }
      const sale = hi * 10n ** 12n;
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -sale);
      const mark = (await sys.engine.health(alice)).equityMark;
      expect(mark).to.be.gt(0n);
      expect(mark).to.be.lte(10n * USDC * QUOTE_UNIT);
      expect(mark % QUOTE_UNIT).to.equal(0n);
      const zero = await flagAndTake(sys, alice, bob, carol);
      console.log(
        `      sold ${ethers.formatEther(sale)} ETH into Bob's skew, mark ${ethers.formatEther(mark)}; flag ${zero.reward}, mark after ${zero.markAfterFlag}, fund ${zero.fund}, pair ${zero.pair}`,
      );
      expect(zero.markAfterFlag).to.equal(0n);
      expect(zero.fund).to.be.gte(0n);
    });
  });

  describe("Skew premium and funding", function () {
    async function flatMarket() {
      const sys = await deploySystem();
      await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 500_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 500_000n * USDC]]);
      return { sys, alice, bob };
    }

    /** Fees of a transaction's trades, quote units. */
    async function feesOf(sys: System, tx: Promise<{ wait(): Promise<unknown> }>): Promise<bigint> {
      const receipt = (await (await tx).wait()) as Parameters<typeof eventOf>[0];
      return BigInt(eventOf(receipt, sys.perps, "PositionModified").args.fee) / QUOTE_UNIT;
    }

    it("charges a round trip its fees whatever skew it moves", async function () {
      const { sys, alice } = await loadFixture(flatMarket);
      const before = await wealth(sys, [alice], []);
      const poolBefore = await sys.pool.totalAssets();
      let fees = await feesOf(sys, trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("200")));
      fees += await feesOf(sys, trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("200")));
      const loss = before - (await wealth(sys, [alice], []));
      // 200 ETH moved the skew 20% of its scale (premium 3000·200·0.1 = 60,000 paid and paid back).
      expect(loss).to.be.gte(fees);
      expect(loss).to.be.lte(fees + 2n);
      expect(await sys.pool.totalAssets()).to.be.gt(poolBefore);
      console.log(`      200 ETH round trip: −${loss} units, fees ${fees}`);
    });

    it("charges a trade split in many pieces no less than in one", async function () {
      const { sys, alice } = await loadFixture(flatMarket);
      const before = await wealth(sys, [alice], []);
      const whole = await whatIf(async () => {
        await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("200"));
        await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("200"));
        return before - (await wealth(sys, [alice], []));
      });
      for (let i = 0; i < 20; i++) await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
      for (let i = 0; i < 20; i++) await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("10"));
      const split = before - (await wealth(sys, [alice], []));
      expect(split).to.be.gte(whole);
      console.log(`      one 200 ETH round trip −${whole}; forty 10 ETH trades −${split}`);
    });

    it("gains a pair trading through the pool nothing but the fees it pays", async function () {
      const { sys, alice, bob } = await loadFixture(flatMarket);
      const { loss, poolGain } = await pairAndPool(sys, [alice, bob], async () => {
        // Alice buys the skew up (premium paid), Bob sells into it (premium received), both close.
        await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("300"));
        await trade(sys.perps, sys.bob, bob, sys.markets.ETH, -wad("300"));
        await closePosition(sys.perps, sys.alice, alice, sys.markets.ETH);
        await closePosition(sys.perps, sys.bob, bob, sys.markets.ETH);
      });
      expect(loss).to.be.gt(0n);
      expect(poolGain).to.be.gt(0n);
      console.log(`      pair −${loss} units, pool +${poolGain}`);
    });

    it("collects back through funding no more than it paid to build the rate", async function () {
      const sys = await loadFixture(deploySystem); // funding on: velocity 0.1 a day at a full skew scale
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
      let rate = 0n;
      const { loss, poolGain } = await pairAndPool(sys, [alice, bob], async () => {
        // Alice long 100 for a day: the rate climbs to the 1% cap, the longs paying the pool. Then Bob
        // short 200 for a day: the rate still positive, the pool (now long) pays the pair's net short back.
        await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("100"));
        const t0 = BigInt(await time.latest());
        await mineAt(sys, t0 + DAY);
        await trade(sys.perps, sys.bob, bob, sys.markets.ETH, -wad("200"));
        await mineAt(sys, t0 + 2n * DAY);
        rate = await sys.perps.currentFundingRate(sys.markets.ETH);
        await closePosition(sys.perps, sys.alice, alice, sys.markets.ETH);
        await closePosition(sys.perps, sys.bob, bob, sys.markets.ETH);
      });
      expect(loss).to.be.gt(0n);
      expect(poolGain).to.be.gt(0n);
      console.log(`      funding cycle: pair −${loss} units, pool +${poolGain}, rate at the end ${rate}`);
    });
  });

  describe("LP share price", function () {
    it("cannot be bought before a fee and sold after with the deployments' holding period and exit delay", async function () {
      const sys = await loadFixture(deploySystem);
      await sys.pool.setExitDelay(EXIT_DELAY);
      const capital = 10_000_000n * USDC;
      await sys.usdc.mint(sys.carol.address, capital);
      await sys.usdc.connect(sys.carol).approve(await sys.pool.getAddress(), capital);
      await sys.pool.connect(sys.carol).deposit(capital, sys.carol.address);
      const shares = await sys.pool.balanceOf(sys.carol.address);
      // A whale's round trip pays ~210 USDC of fees, 80% of them to the pool.
      const whale = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, whale, sys.markets.ETH, wad("100"));
      await closePosition(sys.perps, sys.alice, whale, sys.markets.ETH);
      await expect(sys.pool.connect(sys.carol).redeem(shares, sys.carol.address, sys.carol.address))
        .to.be.revertedWithCustomError(sys.pool, "RedeemRequestRequired")
        .withArgs(EXIT_DELAY);
      await expect(sys.pool.connect(sys.carol).requestRedeem(shares)).to.be.revertedWithCustomError(
        sys.pool,
        "SharesLocked",
      );
      // Transferring the locked shares to a fresh address is refused too.
      await expect(
        sys.pool.connect(sys.carol).transfer(sys.bob.address, shares),
      ).to.be.revertedWithCustomError(sys.pool, "SharesLocked");
    });
  });

  describe("Options", function () {
    /** A 2-hour and a 30-day ATM call at the deployments' fee and spread floors; Alice's account. */
    async function optionBook() {
      const sys = await deployOptionsSystem();
      const buyer = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
      const floors = seriesParams({
        fee: DEFAULT_LISTING_FLOORS.minFee,
        spreadFactor: DEFAULT_LISTING_FLOORS.minSpreadFactor,
      });
      const expiry = await fromNow(2n * HOUR);
      const lastHours = await listSeries(sys.options, "ETH", "3000", expiry, true, floors);
      const month = await listSeries(sys.options, "ETH", "3000", await fromNow(30n * DAY), true, floors);
      return { sys, buyer, expiry, lastHours, month };
    }

    it("loses the spread and the fees on a buy-and-sell round trip at the listing floors", async function () {
      const { sys, buyer, month } = await loadFixture(optionBook);
      const before = await wealth(sys, [buyer], []);
      await tradeOption(sys.options, sys.alice, buyer, month, wad("100"));
      await atLatestTimestamp();
      await tradeOption(sys.options, sys.alice, buyer, month, -wad("100"));
      const loss = before - (await wealth(sys, [buyer], []));
      expect(loss).to.be.gt(0n);
      console.log(`      100 30-day ATM calls bought and sold in one second: −${loss} units`);
    });

    it("sells a call in its last hour at its one-hour value, above what a threshold-sized lag pays", async function () {
      const { sys, buyer, expiry, lastHours } = await loadFixture(optionBook);
      // Ten minutes before expiry Alice knows the settlement round will be 0.05% up (the deployments'
      // deviation threshold, which the fee floor covers) and buys 100 calls.
      await mineAt(sys, expiry - 600n);
      const before = await wealth(sys, [buyer], []);
      const [premium, fee] = await sys.options.quoteTrade(lastHours, wad("100"));
      await tradeOption(sys.options, sys.alice, buyer, lastHours, wad("100"));
      await mineAt(sys, expiry);
      await setFeedPrice(sys.feeds.ETH, "3001.5");
      await sys.options.settleSeries(lastHours, await sys.feeds.ETH.latestRound());
      await sys.options.settleAccount(buyer, lastHours);
      const pnl = (await wealth(sys, [buyer], [])) - before;
      // Payout 1.5 a contract against a premium floored at the one-hour value (~7.8) plus the fee.
      expect(premium).to.be.gt(wad("7"));
      expect(pnl).to.be.lt(0n);
      console.log(
        `      premium ${ethers.formatEther(premium)} a contract, fee ${ethers.formatEther(fee)}; 100 calls settled at +0.05%: ${pnl} units`,
      );
    });
  });

  describe("Collateral haircuts", function () {
    it("leaves the LPs whole when a WETH-backed debtor walks away and ETH falls", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      const poolBefore = await sys.pool.totalAssets();
      // Bob owes ~26,050 USDC against 10 WETH and walks away; ETH −10% puts him below maintenance
      // (10 WETH · 2,700 · 0.95 < the debt) while his mark stays positive, so a bid takes his WETH with
      // his debt: the debt changes hands, the LPs lose nothing.
      await setFeedPrice(sys.feeds.ETH, "2700");
      const h = await sys.engine.health(sys.debtorId);
      expect(h.equityMaintenance).to.be.lt(0n);
      expect(h.equityMark).to.be.gt(0n);
      await sys.auction.connect(sys.carol).startAuction(sys.debtorId);
      await sys.auction.connect(sys.carol).bid(sys.debtorId, carol, WAD, MAX);
      expect(await sys.pool.totalAssets()).to.be.gte(poolBefore);
      expect(await sys.auction.pendingDeficit()).to.equal(0n);
    });
  });

  describe("Rounding", function () {
    it("charges every tiny trade at least a quote unit and pays no gain below one", async function () {
      const sys = await loadFixture(deploySystem);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
      const before = await sys.vault.balanceOf(alice, sys.usdc);
      // 1e-10 ETH at 3,000 is 3e-7 USD of notional: its fee and PnL are below a quote unit (1e-6).
      for (let i = 0; i < 10; i++) {
        await trade(sys.perps, sys.alice, alice, sys.markets.ETH, 10n ** 8n);
        await setFeedPrice(sys.feeds.ETH, i % 2 === 0 ? "3030" : "3000");
        await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -(10n ** 8n));
      }
      const after = await sys.vault.balanceOf(alice, sys.usdc);
      expect(after).to.be.lte(before - 20n);
      console.log(`      20 tiny trades: ${after - before} units`);
    });
  });
});
