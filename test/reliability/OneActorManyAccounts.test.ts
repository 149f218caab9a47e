import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse } from "ethers";
import type { PortfolioMathHarness } from "../../typechain-types";
import {
  MarginMode,
  WAD,
  atLatestTimestamp,
  deploySystem,
  eventOf,
  fundInsurance,
  openAccount,
  spotShocks,
  wad,
  whatIf,
  withdrawCollateralToInitialMargin,
  withdrawToInitialMargin,
  type System,
} from "../shared/system";
import { advanceTo, closePosition, marketParams, trade, unwindPremium } from "../shared/perps";
import { assetId, setFeedPrice } from "../shared/oracles";
import { deployOptions, fromNow, listSeries, tradeOption } from "../shared/options";
import { mintAndApprove } from "../shared/tokens";

/**
 * One actor holding several accounts (ERC-721 sub-accounts of one wallet, a second wallet that flags,
 * a third account that bids) acting as owner, keeper and bidder at once (review round 144). Alice's
 * wallet owns every account; Bob's wallet is hers too (it starts the auctions and keeps the flag reward).
 * What the actor holds is Σ her accounts' mark-to-market equity + both wallets' USDC (WETH counted at
 * 3,000 wherever it is: its own price move is the market's), measured against the LPs
 * (`pool.totalAssets`) and the insurance fund; the three sum to what the close-out premium released.
 *
 * Held: liquidating oneself costs exactly the penalty more than closing; one's own bidder is paid what a
 * stranger's is; a pair of opposite USDC-margined legs (perps, CROSS or ISOLATED) or a put writer needs a
 * fall beyond the IM shock (plus the contingency) before the fund pays; velocity funding pays back
 * exactly what pushing it cost. Found (docs/reliability.md §4 rows 420–421 in this round's report):
 * WETH margin on a long ETH perp was not shocked with it, so above ~70% volatility a WETH-margined long
 * at its IM was under water at a fall smaller than its IM shock (prototype of review round 146: a token
 * priced by an underlying the account holds positions on enters that group as a long delta, and the
 * long needs a fall beyond its shock; WETH-margined shorts and covered calls net as hedges); and the
 * pair's other leg keeps strangers off the insolvent book, so the insolvency premium dmax·MM goes to the
 * actor's own bidder.
 */
const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;
const DURATION = 1_800n;
const MAX_DISCOUNT = wad("0.10");
const FUND = 500_000n * USDC;
const ETH0 = wad("3000");

interface Take {
  actor: bigint;
  lps: bigint;
  fund: bigint;
}

/**
 * What the actor holds, quote units: her accounts' mark-to-market equity (positions at the oracle, as the
 * LP share price marks the pool's side) and both of her wallets' USDC.
 */
async function actorWorth(sys: System, ids: bigint[]): Promise<bigint> {
  const eth = await sys.router.getPrice(assetId("ETH"));
  // WETH at ETH0 wherever she holds it: its own price move is the market's, not the protocol's.
  let weth = await sys.weth.balanceOf(sys.alice);
  let total = ((await sys.usdc.balanceOf(sys.alice)) + (await sys.usdc.balanceOf(sys.bob))) * QUOTE_UNIT;
  for (const id of ids) {
    const held = await sys.vault.balanceOf(id, sys.weth);
    total += (await sys.engine.health(id)).equityMark - (held * eth) / WAD;
    weth += held;
  }
  return (total + (weth * ETH0) / WAD) / QUOTE_UNIT;
}

/**
 * What `actions` moved to the actor, the LPs and the fund (quote units). They sum to what the ETH
 * market's close-out premium released (the share price leaves it out: `unwindPremiumOf`), within 2 units.
 */
async function measure(sys: System, ids: bigint[], actions: () => Promise<void>): Promise<Take> {
  const fundId = await sys.insuranceFund.accountId();
  const closeOut = async () =>
    (await unwindPremium(sys.perps, sys.markets.ETH, await sys.router.getPrice(assetId("ETH")))) / QUOTE_UNIT;
  const read = async () =>
    Promise.all([
      actorWorth(sys, ids),
      sys.pool.totalAssets(),
      sys.vault.balanceOf(fundId, sys.usdc),
      closeOut(),
    ]);
  const [a0, l0, f0, c0] = await read();
  await actions();
  const [a1, l1, f1, c1] = await read();
  const take = { actor: a1 - a0, lps: l1 - l0, fund: f1 - f0 };
  expect(take.actor + take.lps + take.fund, "value is conserved").to.be.within(c0 - c1 - 2n, c0 - c1 + 2n);
  return take;
}

/** ETH's feed at `priceWad` (8 decimals, rounded down). */
async function setEthPrice(sys: System, priceWad: bigint): Promise<void> {
  await (await sys.feeds.ETH.updateAnswer(priceWad / 10n ** 10n)).wait();
}

/** Sends `tx` at the latest block's timestamp, so nothing that moves with time moves. */
async function now(tx: () => Promise<ContractTransactionResponse>) {
  await atLatestTimestamp();
  return (await tx()).wait();
}

// ------------------------------------------------------------------------------ 1. self-liquidation

/**
 * Alice's CROSS account long 20 ETH (bought at 3,030 with the skew premium) withdrawn to its IM, and a
 * flat account of hers the auction may trade (for `bidAndClose`). Funding off: numbers exact between
 * blocks. The fund holds 500,000 USDC.
 */
async function ownLongAtIm() {
  const sys = await deploySystem();
  await fundInsurance(sys, FUND);
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  const owner = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const bidder = await openAccount(sys, sys.alice, MarginMode.CROSS);
  await sys.accounts.connect(sys.alice).approve(sys.auction, bidder);
  const stranger = await openAccount(sys, sys.carol, MarginMode.CROSS);
  await sys.accounts.connect(sys.carol).approve(sys.auction, stranger);
  await trade(sys.perps, sys.alice, owner, sys.markets.ETH, wad("20"));
  await withdrawToInitialMargin(sys, sys.alice, owner);
  return { sys, owner, bidder, stranger };
}

describe("One actor with many accounts", function () {
  describe("self-liquidation: flagging and bidding on one's own account", function () {
    it("costs the actor exactly the penalty more than closing at the same price, which the fund keeps (ETH 2,800)", async function () {
      const { sys, owner, bidder } = await loadFixture(ownLongAtIm);
      await setFeedPrice(sys.feeds.ETH, "2800");
      const h = await sys.engine.health(owner);
      expect(h.equityMaintenance).to.be.gt(0n);
      expect(h.equityMaintenance).to.be.lt(h.maintenanceRequirement);
      const ids = [owner, bidder];

      const closed = await whatIf(() =>
        measure(sys, ids, async () => {
          await now(() => closePosition(sys.perps, sys.alice, owner, sys.markets.ETH));
        }),
      );
      let reward = 0n;
      let penalty = 0n;
      let fraction = 0n;
      const selfLiquidated = await whatIf(() =>
        measure(sys, ids, async () => {
          const started = await now(() => sys.auction.connect(sys.bob).startAuction(owner));
          reward = eventOf(started, sys.auction, "AuctionStarted").args.flagReward;
          const bid = await now(() =>
            sys.auction.connect(sys.alice).bidAndClose(owner, bidder, WAD, ethers.MaxUint256),
          );
          const bidEvent = eventOf(bid, sys.auction, "AuctionBid");
          [penalty, fraction] = [bidEvent.args.penalty, bidEvent.args.fraction];
          await now(() => closePosition(sys.perps, sys.alice, owner, sys.markets.ETH));
        }),
      );
      // The flag reward went from her account to her second wallet; the discount from her account to her
      // bidder: both stay with her. The closes pay the same fees and skew premium split or not.
      expect(reward).to.equal(10n * USDC);
      expect(fraction).to.be.gt(0n).and.lt(WAD);
      expect(penalty).to.be.gt(0n);
      expect(selfLiquidated.actor - closed.actor).to.be.within(-penalty - 2n, -penalty + 2n);
      expect(selfLiquidated.fund - closed.fund).to.be.within(penalty - 1n, penalty + 1n);
      expect(selfLiquidated.lps - closed.lps).to.be.within(-3n, 3n);
      // The close itself earns the skew rebate (20 ETH sold into her own skew of 20: 560) less the maker fee
      // (2 bp of 20 × 2,828 = 11.312).
      expect(closed.actor).to.equal(548_688_000n);
      // 1% of the 63.68% of her 2,117.20 mark (after the reward) her bidder took: 13.482792 USDC on 56,000 of
      // notional, 240.76 per 1,000,000.
      expect(penalty).to.equal(13_482_792n);
    });

    it("costs the same penalty when her bidder keeps the slice and closes it later", async function () {
      const { sys, owner, bidder } = await loadFixture(ownLongAtIm);
      await setFeedPrice(sys.feeds.ETH, "2800");
      // A bidder that keeps the slice needs margin of its own.
      await mintAndApprove(sys.usdc, sys.alice, await sys.vault.getAddress(), 5_000n * USDC);
      await sys.vault.connect(sys.alice).deposit(bidder, sys.usdc, 5_000n * USDC);
      const ids = [owner, bidder];
      const closed = await whatIf(() =>
        measure(sys, ids, async () => {
          await now(() => closePosition(sys.perps, sys.alice, owner, sys.markets.ETH));
        }),
      );
      let penalty = 0n;
      const viaBid = await whatIf(() =>
        measure(sys, ids, async () => {
          await now(() => sys.auction.connect(sys.bob).startAuction(owner));
          const bid = await now(() =>
            sys.auction.connect(sys.alice).bid(owner, bidder, WAD, ethers.MaxUint256),
          );
          penalty = eventOf(bid, sys.auction, "AuctionBid").args.penalty;
          await now(() => closePosition(sys.perps, sys.alice, bidder, sys.markets.ETH));
          await now(() => closePosition(sys.perps, sys.alice, owner, sys.markets.ETH));
        }),
      );
      expect(viaBid.actor - closed.actor).to.be.within(-penalty - 2n, -penalty + 2n);
      expect(viaBid.fund - closed.fund).to.be.within(penalty - 1n, penalty + 1n);
    });

    it("pays her own bidder of her insolvent book what it pays a stranger's at the same second: deficit + dmax·MM (ETH 2,650)", async function () {
      const { sys, owner, bidder, stranger } = await loadFixture(ownLongAtIm);
      await setFeedPrice(sys.feeds.ETH, "2650");
      const h = await sys.engine.health(owner);
      expect(h.equityMark).to.be.lt(0n);
      const started = await now(() => sys.auction.connect(sys.bob).startAuction(owner));
      expect(eventOf(started, sys.auction, "AuctionStarted").args.flagReward).to.equal(0n);
      const { startTime } = await sys.auction.auctions(owner);
      await advanceTo(sys, startTime + DURATION);
      const deficit = (-h.equityMark + QUOTE_UNIT - 1n) / QUOTE_UNIT;
      const full = (-h.equityMark + (h.maintenanceRequirement * MAX_DISCOUNT) / WAD) / QUOTE_UNIT;

      const takeBy = (signer: typeof sys.alice, account: bigint) =>
        whatIf(async () => {
          const fundId = await sys.insuranceFund.accountId();
          const fund0 = await sys.vault.balanceOf(fundId, sys.usdc);
          const mine0 = await sys.vault.balanceOf(account, sys.usdc);
          const rc = await (await sys.auction.connect(signer).bidAndClose(owner, account, WAD, 0n)).wait();
          const covered = eventOf(rc, sys.auction, "InsolvencyCovered").args;
          return {
            fund: (await sys.vault.balanceOf(fundId, sys.usdc)) - fund0,
            gain: (await sys.vault.balanceOf(account, sys.usdc)) - mine0,
            paid: covered.paidByInsurance as bigint,
          };
        });
      const own = await takeBy(sys.alice, bidder);
      const strangers = await takeBy(sys.carol, stranger);
      expect(own).to.deep.equal(strangers);
      expect(own.paid).to.be.within(full - 1n, full);
      expect(own.paid - deficit).to.be.gt(0n);
      // Deficit 872.80, paid 1,271.64: the premium 398.84 = 10% of MM (3,988.37) on 53,000 of notional.
      expect(deficit).to.equal(872_799_999n);
      expect(own.paid).to.equal(1_271_636_815n);
    });
  });

  describe("bad-debt farming: opposite positions in two accounts, then one oracle round", function () {
    it("needs a jump beyond the weak leg's IM shock plus contingency before the fund pays (USDC margin, 60% vol, CROSS)", async function () {
      const pair = await loadFixture(usdcPairAt60);
      expect(pair.insolventAt).to.be.gt(pair.imShock);
      const table = [];
      for (const drop of [wad("0.05"), wad("0.09"), pair.insolventAt - wad("0.002")]) {
        const r = await playDrop(pair, drop);
        expect(r.insolvent).to.equal(false);
        expect(r.profit, `drop ${drop}`).to.be.lt(0n);
        expect(r.fund).to.be.gte(0n);
        table.push(r);
      }
      for (const drop of [pair.insolventAt + wad("0.002"), wad("0.12"), wad("0.15"), wad("0.20")]) {
        const r = await playDrop(pair, drop);
        expect(r.insolvent).to.equal(true);
        // The fund pays the deficit and dmax·MM to her own bidder; she keeps it less her fees.
        expect(r.profit, `drop ${drop}`).to.be.gt(0n);
        // (less its 20% share of the closes' fees)
        expect(-r.fund).to.be.within(r.paid - r.paid / 50n, r.paid);
        expect(r.profit).to.be.lt(r.paid);
        table.push(r);
      }
      // IM shock 10.06% (10% floor × (1 + 300,000 / 50,000,000)); under water from 10.26% (+ 0.2% contingency).
      expect(pair.imShock).to.equal(wad("0.1006"));
      expect(pair.insolventAt).to.be.closeTo(wad("0.1026"), wad("0.000001"));
      if (process.env.ONE_ACTOR_TABLE) console.table(table.map(formatRow));
    });

    it("has the same threshold in ISOLATED accounts", async function () {
      const cross = await loadFixture(usdcPairAt60);
      const isolated = await loadFixture(usdcIsolatedPairAt60);
      expect(isolated.insolventAt).to.equal(cross.insolventAt);
    });

    it("needs a jump beyond the IM shock at 100% vol with USDC margin", async function () {
      const pair = await loadFixture(usdcPairAt100);
      expect(pair.insolventAt).to.be.gt(pair.imShock);
    });

    it("needs a jump beyond the IM shock with a WETH-margined long at 60% vol (shock 10% = 1 − WETH's weight)", async function () {
      const pair = await loadFixture(wethPairAt60);
      // 11.84% against 10.06% (10.22% while WETH sat at its weight alone): its haircut is on top of the shock.
      expect(pair.insolventAt).to.be.gt(pair.imShock);
    });

    it("needs a fall beyond the IM shock with a WETH-margined long at 100% vol: its WETH is shocked with it (row 420)", async function () {
      const pair = await loadFixture(wethPairAt100);
      expect(pair.insolventAt).to.be.gt(pair.imShock);
      // The 15.50% fall that paid the pair 5,108.20 from the fund while WETH sat at its weight alone.
      const r = await playDrop(pair, pair.imShock - wad("0.003"));
      expect(r.insolvent).to.equal(false);
      expect(r.profit).to.be.lt(0n);
      expect(r.fund).to.be.gte(0n);
      // Shock 15.80%, under water from 18.16% (was 14.86%).
      expect(pair.insolventAt).to.be.closeTo(wad("0.1816"), wad("0.0001"));
      if (process.env.ONE_ACTOR_TABLE) console.table([formatRow(r)]);
    });
  });

  describe("the insolvency premium: her short keeps strangers off the long's book until she takes it", function () {
    it("refuses a stranger's bidAndClose (its close would leave it under water) and leaves the backstop paid the deficit alone, where her own take collects deficit + dmax·MM (12% fall)", async function () {
      const pair = await loadFixture(usdcPairAt60);
      const { sys, long, short } = pair;
      await setEthPrice(sys, (ETH0 * wad("0.88")) / WAD);
      await now(() => sys.auction.connect(sys.bob).startAuction(long));
      const { startTime } = await sys.auction.auctions(long);
      const stranger = await openAccount(sys, sys.carol, MarginMode.CROSS);
      await sys.accounts.connect(sys.carol).approve(sys.auction, stranger);
      await advanceTo(sys, startTime + DURATION);
      // With her short in, the skew is 0: closing the long's 100 ETH pays 100 × 2,640 × 5% = 13,200 of
      // premium, against a payout premium of 10% of MM (1,994.81).
      // The stranger's flat account would end 11,330.59 under water: its close is refused.
      await expect(sys.auction.connect(sys.carol).bidAndClose(long, stranger, WAD, 0n))
        .to.be.revertedWithCustomError(sys.engine, "InsufficientMargin")
        .withArgs(stranger, -wad("11330.588898"), 0n);
      const covered = async (tx: () => Promise<ContractTransactionResponse>) =>
        whatIf(async () => {
          const rc = await (await tx()).wait();
          const e = eventOf(rc, sys.auction, "InsolvencyCovered").args;
          return { deficit: e.deficit as bigint, paid: (e.paidByInsurance + e.socialisedLoss) as bigint };
        });
      const absorbed = await covered(() => sys.auction.absorb(long));
      const own = await covered(async () => {
        await closePosition(sys.perps, sys.alice, short, sys.markets.ETH);
        return sys.auction.connect(sys.alice).bidAndClose(long, pair.taker, WAD, 0n);
      });
      expect(absorbed.paid).to.equal(absorbed.deficit);
      expect(own.deficit).to.equal(absorbed.deficit);
      // 5,220 of deficit; her take is paid 1,994.81 more (0.66% of the 300,000 notional).
      expect(own.paid - own.deficit).to.equal(1_994_811_102n);
    });
  });

  /** Each pair's insolvency point minus its IM shock, by ETH volatility (fixtures at 60, 80, 100, 150%). */
  async function insolvencyGaps(fixtures: readonly (() => Promise<Pair>)[]): Promise<Record<string, bigint>> {
    const gaps: Record<string, bigint> = {};
    for (const [vol, fixture] of ["0.6", "0.8", "1", "1.5"].map((v, i) => [v, fixtures[i]] as const)) {
      const pair = await loadFixture(fixture);
      gaps[vol] = pair.insolventAt - pair.imShock;
      expect(gaps[vol], vol).to.be.gt(0n);
    }
    return gaps;
  }

  describe("the wrong-way gap: a WETH-margined long's insolvency point against its IM shock, by volatility", function () {
    it("is closed at every volatility: the long is under water only beyond its IM shock (0.6 → +1.78, 0.8 → +2.04, 1.0 → +2.37, 1.5 → +3.18 points; was +0.16, −0.27, −0.94, −3.18)", async function () {
      const gaps = await insolvencyGaps([wethPairAt60, wethPairAt80, wethPairAt100, wethPairAt150]);
      // At its IM the long holds 0.9·WETH·S + value = s·(size + WETH)·S + c·size·S, so it is under water
      // at s + (0.1·WETH + c·size)/(size + WETH): beyond s by WETH's haircut and the contingency.
      expect(gaps["0.6"]).to.be.closeTo(wad("0.0178"), wad("0.0001"));
      expect(gaps["0.8"]).to.be.closeTo(wad("0.0204"), wad("0.0001"));
      expect(gaps["1"]).to.be.closeTo(wad("0.0237"), wad("0.0001"));
      expect(gaps["1.5"]).to.be.closeTo(wad("0.0318"), wad("0.0001"));
      if (process.env.ONE_ACTOR_TABLE) console.table(gaps);
    });
  });

  describe("the wrong-way gap with WETH's shocked weight at 0.99 (review round 147)", function () {
    it("stays closed at every volatility, narrower than on WETH's weights (+1.09 / +1.25 / +1.43 / +1.89 points at 60 / 80 / 100 / 150%)", async function () {
      const gaps = await insolvencyGaps([
        shockedPairAt60,
        shockedPairAt80,
        shockedPairAt100,
        shockedPairAt150,
      ]);
      // The long's mark is its IM plus 6% of its WETH (its haircut at IM: 0.90 + the 0.04 credit over the
      // maintenance weight, review round 148; round 147's 0.99 left 1%: +0.32 / +0.34 / +0.36 / +0.42) and
      // the skew premium it paid: under water at s + (0.06·WETH + c·size + premium)/(size + WETH)·S.
      expect(gaps["0.6"]).to.be.closeTo(wad("0.0109"), wad("0.0001"));
      expect(gaps["0.8"]).to.be.closeTo(wad("0.0125"), wad("0.0001"));
      expect(gaps["1"]).to.be.closeTo(wad("0.0143"), wad("0.0001"));
      expect(gaps["1.5"]).to.be.closeTo(wad("0.0189"), wad("0.0001"));
      if (process.env.ONE_ACTOR_TABLE) console.table(gaps);
    });

    it("leaves the pair its fees down at a 15.50% fall at 100% volatility: the long is solvent, the fund pays nothing", async function () {
      const pair = await loadFixture(shockedPairAt100);
      const r = await playDrop(pair, pair.imShock - wad("0.003"));
      // Under water from 17.23% against a 15.80% shock (round 147's IM credit: 16.16%); at 15.50% she
      // closes both legs 406.83 down (fees), the LPs and the fund keep them.
      expect(pair.insolventAt).to.be.closeTo(wad("0.1723"), wad("0.0001"));
      expect(r.insolvent).to.equal(false);
      expect(r.profit).to.be.closeTo(-406_830_000n, 10_000n);
      expect(r.fund).to.be.gte(0n);
    });
  });

  describe("hedges that net once collateral is shocked with the underlying it tracks (row 420)", function () {
    it("margins a WETH-margined short ETH perp (cash and carry) at its contingency alone: IM 600 on 100 WETH and short 100 ETH, where USDC margin needs 30,780", async function () {
      const { sys, wethShort, usdcShort } = await loadFixture(carryAccounts);
      const weth = await sys.engine.health(wethShort);
      const usdc = await sys.engine.health(usdcShort);
      // 100 WETH is a delta of +100 against the short's −100: the grid sees nothing but the contingency
      // (0.2% of 300,000), at both levels. On USDC: 10.06% of 300,000 + 600 (IM), 22,684.11 (MM).
      expect(weth.initialRequirement).to.equal(wad("600"));
      expect(weth.maintenanceRequirement).to.equal(wad("600"));
      expect(usdc.initialRequirement).to.equal(wad("30780"));
      expect(usdc.maintenanceRequirement).to.be.closeTo(wad("22684.11"), wad("0.01"));
      // A 50% move either way leaves it far above its MM: the WETH pays what the short loses.
      for (const move of [wad("0.5"), wad("1.5")]) {
        const h = await whatIf(async () => {
          await setEthPrice(sys, (ETH0 * move) / WAD);
          return sys.engine.health(wethShort);
        });
        expect(h.equityMaintenance).to.be.gt(BigInt(h.maintenanceRequirement) * 100n);
      }
    });

    it("leaves WETH at its weight alone in an account without ETH positions: a BTC long's requirements are the same on WETH as on USDC", async function () {
      const { sys, wethBtc, usdcBtc } = await loadFixture(carryAccounts);
      const [weth, usdc] = [await sys.engine.health(wethBtc), await sys.engine.health(usdcBtc)];
      expect(weth.initialRequirement).to.equal(usdc.initialRequirement);
      expect(weth.maintenanceRequirement).to.equal(usdc.maintenanceRequirement);
      expect(weth.initialRequirement).to.be.gt(0n);
    });

    it("margins a WETH-covered call below the same calls written on USDC, as the call covered by a long perp", async function () {
      const c = await loadFixture(coveredCalls);
      // Naked on USDC 44,195.02; on 100 WETH 41,266.74; covered by a long perp 41,989.97 (the perp adds
      // its 600 of contingency and 300,000 to the size factor). The short-option floor stays: by parity a
      // covered call is a short put.
      expect(c.weth.im).to.be.lt(c.usdc.im);
      expect(c.weth.mm).to.be.lt(c.usdc.mm);
      expect(c.weth.im).to.be.lt(c.perp.im);
      expect(c.perp.im - c.weth.im).to.be.closeTo(wad("723.23"), wad("1"));
      expect(c.usdc.im - c.weth.im).to.be.closeTo(wad("2928.28"), wad("1"));
    });
  });

  describe("bad-debt farming with written options: a writer at its IM and a buyer of the same series", function () {
    it("needs a fall beyond the IM shock before a USDC-margined put writer is under water (60% vol)", async function () {
      const w = await loadFixture(usdcPutWriterAt60);
      const fall = await fallToInsolvency(w);
      expect(fall).to.be.gt(w.imShock);
      // 20.54% against 10.06%: the IM grid's volatility shock and the short-option floor.
    });

    it("needs a fall beyond the IM shock before a WETH-margined put writer is under water (100% vol)", async function () {
      const w = await loadFixture(wethPutWriterAt100);
      const fall = await fallToInsolvency(w);
      expect(fall).to.be.gt(w.imShock);
      // 26.56% against 15.80% (23.55% while WETH sat at its weight alone): the WETH is shocked with the puts.
    });
  });

  describe("funding games: one account pushes the skew, another collects the rate it left", function () {
    it("pays at least what the collector earns, plus fees: long 300 ETH for 8 h, then short 30 ETH until the rate is back at 0", async function () {
      const { sys, pusher, collector } = await loadFixture(fundingAccounts);
      const ids = [pusher, collector];
      const t0 = BigInt(await time.latest()) + 60n;
      let paidByPusher = 0n;
      let receivedByCollector = 0n;
      let fees = 0n;
      const record = (rc: Awaited<ReturnType<typeof now>>, sign: bigint) => {
        const e = eventOf(rc, sys.perps, "PositionModified").args;
        fees += e.fee as bigint;
        return sign * (e.fundingPaid as bigint);
      };
      const take = await measure(sys, ids, async () => {
        await advanceTo(sys, t0);
        record(await (await trade(sys.perps, sys.alice, pusher, sys.markets.ETH, wad("300"))).wait(), 1n);
        await advanceTo(sys, t0 + 8n * HOUR);
        paidByPusher += record(
          await (await closePosition(sys.perps, sys.alice, pusher, sys.markets.ETH)).wait(),
          1n,
        );
        const rateLeft = (await sys.perps.market(sys.markets.ETH)).fundingRate;
        expect(rateLeft).to.equal(wad("0.01")); // the clamp, reached at 8 h
        await atLatestTimestamp();
        record(await (await trade(sys.perps, sys.alice, collector, sys.markets.ETH, -wad("30"))).wait(), -1n);
        // Drift −0.1 · 30/1,000 = −0.003 a day: 0.01 is gone after 3⅓ days.
        await advanceTo(sys, t0 + 8n * HOUR + 80n * HOUR);
        receivedByCollector += record(
          await (await closePosition(sys.perps, sys.alice, collector, sys.markets.ETH)).wait(),
          -1n,
        );
      });
      expect(receivedByCollector).to.be.gt(0n);
      expect(paidByPusher).to.be.gte(receivedByCollector);
      expect(take.actor).to.be.lt(0n);
      expect(take.lps + take.fund).to.be.gt(0n);
      // Velocity funding is symmetric: 1,500 paid, 1,500 received; she is left 786.555 of fees down.
      expect(paidByPusher).to.equal(wad("1500"));
      expect(take.actor).to.equal(-(fees / QUOTE_UNIT));
    });
  });
});

// ---------------------------------------------------------------------- 2b. bad-debt farming, options

const PUTS = wad("100");

interface Writer {
  sys: System;
  writer: bigint;
  imShock: bigint;
}

/**
 * Alice writes 100 at-the-money 30-day ETH puts (ETH 3,000, volatility `vol`) in a CROSS account on
 * 100,000 USDC or 100 WETH, withdrawn to its IM; a second account of hers buys the same 100 puts.
 */
async function putWriter(wethBacked: boolean, vol: string): Promise<Writer> {
  const sys = await deploySystem();
  const options = await deployOptions(sys);
  await setFeedPrice(sys.volFeeds.ETH, vol);
  const math = await ethers.deployContract("PortfolioMathHarness");
  const put = await listSeries(options, "ETH", "3000", await fromNow(30n * 86_400n), false);
  const writer = wethBacked
    ? await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100")]])
    : await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  const buyer = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await tradeOption(options, sys.alice, writer, put, -PUTS);
  if (wethBacked) await withdrawWethToIm(sys, writer);
  else await withdrawToInitialMargin(sys, sys.alice, writer);
  await tradeOption(options, sys.alice, buyer, put, PUTS);
  const [imShock] = await spotShocks(sys, math as PortfolioMathHarness, assetId("ETH"), (PUTS * ETH0) / WAD);
  return { sys, writer, imShock };
}

const usdcPutWriterAt60 = () => putWriter(false, "0.6");
const wethPutWriterAt100 = () => putWriter(true, "1");

/** The smallest fall of ETH (WAD, to 0.01%) in one round that takes the writer's mark below 0. */
async function fallToInsolvency({ sys, writer }: Writer): Promise<bigint> {
  let [low, high] = [0n, wad("0.6")];
  while (high - low > wad("0.0001")) {
    const mid = (low + high) / 2n;
    const mark = await whatIf(async () => {
      await setEthPrice(sys, (ETH0 * (WAD - mid)) / WAD);
      return (await sys.engine.health(writer)).equityMark;
    });
    if (mark < 0n) high = mid;
    else low = mid;
  }
  return high;
}

// ------------------------------------------------------------------------------ 2c. hedges that net

/**
 * Short 100 ETH perps in a CROSS account on 100 WETH, and the same short on 100,000 USDC (ETH 3,000, 60%);
 * long 1 BTC in two more, on 100 WETH and on 100,000 USDC.
 */
async function carryAccounts() {
  const sys = await deploySystem();
  const wethShort = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100")]]);
  const usdcShort = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await now(() => trade(sys.perps, sys.alice, wethShort, sys.markets.ETH, -PAIR_SIZE));
  await now(() => trade(sys.perps, sys.alice, usdcShort, sys.markets.ETH, -PAIR_SIZE));
  // And a 1 BTC long on each: WETH's asset is not BTC.
  const wethBtc = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100")]]);
  const usdcBtc = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await now(() => trade(sys.perps, sys.alice, wethBtc, sys.markets.BTC, WAD));
  await now(() => trade(sys.perps, sys.alice, usdcBtc, sys.markets.BTC, WAD));
  return { sys, wethShort, usdcShort, wethBtc, usdcBtc };
}

/**
 * 100 at-the-money 30-day ETH calls written (ETH 3,000, 60%) in three CROSS accounts: on 100 WETH, on
 * 400,000 USDC, and on 400,000 USDC with a long 100 ETH perp. Each account's IM and MM.
 */
async function coveredCalls() {
  const sys = await deploySystem();
  const options = await deployOptions(sys);
  const call = await listSeries(options, "ETH", "3000", await fromNow(30n * 86_400n), true);
  const onWeth = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("100")]]);
  const onUsdc = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 400_000n * USDC]]);
  const onPerp = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 400_000n * USDC]]);
  await trade(sys.perps, sys.alice, onPerp, sys.markets.ETH, PAIR_SIZE);
  for (const id of [onWeth, onUsdc, onPerp]) await tradeOption(options, sys.alice, id, call, -PUTS);
  await atLatestTimestamp();
  const req = async (id: bigint) => {
    const h = await sys.engine.health(id);
    return { im: h.initialRequirement as bigint, mm: h.maintenanceRequirement as bigint };
  };
  return { weth: await req(onWeth), usdc: await req(onUsdc), perp: await req(onPerp) };
}

// ------------------------------------------------------------------------------ 3. funding games

const HOUR = 3_600n;

/**
 * Two flat CROSS accounts of Alice's (500,000 and 100,000 USDC), on the deployed configs' ETH market (skew scale
 * 1,000, funding velocity 0.1 a day, rate clamp 1% a day, fees 2 / 5 bp): the fixture's defaults.
 */
async function fundingAccounts() {
  const sys = await deploySystem();
  const pusher = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 500_000n * USDC]]);
  const collector = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  return { sys, pusher, collector };
}

// ------------------------------------------------------------------------------ 2. bad-debt farming

const PAIR_SIZE = wad("100");

interface Pair {
  sys: System;
  long: bigint;
  short: bigint;
  taker: bigint;
  /** What opening the pair cost the actor (fees), quote units (> 0). */
  openCost: bigint;
  /** ETH's IM spot shock for the long's group (PortfolioMath.spotShock), WAD. */
  imShock: bigint;
  /** The smallest fall of ETH that leaves the long's mark below 0, WAD. */
  insolventAt: bigint;
}

interface DropResult {
  drop: bigint;
  insolvent: boolean;
  /** The actor's result from before the pair opened to after both legs are closed, quote units. */
  profit: bigint;
  lps: bigint;
  fund: bigint;
  /** What the fund paid her bidder (quote units; 0 when solvent). */
  paid: bigint;
  deficit: bigint;
}

function formatRow(r: DropResult) {
  const usd = (x: bigint) => Number(x) / 1e6;
  return {
    drop: Number(r.drop) / 1e16,
    insolvent: r.insolvent,
    profit: usd(r.profit),
    lps: usd(r.lps),
    fund: usd(r.fund),
    deficit: usd(r.deficit),
    paid: usd(r.paid),
  };
}

/** Withdraws `accountId`'s WETH down to its initial requirement (to 1 gwei of WETH). */
function withdrawWethToIm(sys: System, accountId: bigint): Promise<void> {
  return withdrawCollateralToInitialMargin(sys, sys.alice, accountId, sys.weth);
}

/**
 * Alice's long 100 ETH (opened first, on 100 WETH or 100,000 USDC) and short 100 ETH (on 100,000 USDC),
 * each withdrawn to its IM right after its trade, in `mode` accounts; a flat CROSS account of hers the
 * auction may trade; ETH's volatility at `vol`. Funding off (the skew is 0 once both are open). The long
 * paid the short's skew premium (15,000): it is the weak leg, its equity_MM = its IM once the short is in.
 */
async function opposedPair(mode: number, wethBacked: boolean, vol: string, shocked?: string): Promise<Pair> {
  const sys = await deploySystem();
  if (shocked) await sys.vault.setShockedWeight(sys.weth, wad(shocked));
  await fundInsurance(sys, FUND);
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  await setFeedPrice(sys.volFeeds.ETH, vol);
  const math = await ethers.deployContract("PortfolioMathHarness");
  const long = wethBacked
    ? await openAccount(sys, sys.alice, mode, [[sys.weth, wad("100")]])
    : await openAccount(sys, sys.alice, mode, [[sys.usdc, 100_000n * USDC]]);
  const short = await openAccount(sys, sys.alice, mode, [[sys.usdc, 100_000n * USDC]]);
  const taker = await openAccount(sys, sys.alice, MarginMode.CROSS);
  await sys.accounts.connect(sys.alice).approve(sys.auction, taker);
  const ids = [long, short, taker];
  const before = await actorWorth(sys, ids);
  await now(() => trade(sys.perps, sys.alice, long, sys.markets.ETH, PAIR_SIZE));
  if (wethBacked) await withdrawWethToIm(sys, long);
  else await withdrawToInitialMargin(sys, sys.alice, long);
  await now(() => trade(sys.perps, sys.alice, short, sys.markets.ETH, -PAIR_SIZE));
  await withdrawToInitialMargin(sys, sys.alice, short);
  const openCost = before - (await actorWorth(sys, ids));
  const [imShock] = await spotShocks(
    sys,
    math as PortfolioMathHarness,
    assetId("ETH"),
    (PAIR_SIZE * ETH0) / WAD,
  );
  const h = await sys.engine.health(long);
  const held = await sys.vault.balanceOf(long, sys.weth);
  // The long's mark moves by (size + WETH held)·dP: it reaches 0 at a fall of mark / ((size + WETH)·ETH0).
  const insolventAt = (h.equityMark * WAD) / (((PAIR_SIZE + held) * ETH0) / WAD) + 1n;
  return { sys, long, short, taker, openCost, imShock, insolventAt };
}

const usdcPairAt60 = () => opposedPair(MarginMode.CROSS, false, "0.6");
const usdcIsolatedPairAt60 = () => opposedPair(MarginMode.ISOLATED, false, "0.6");
const usdcPairAt100 = () => opposedPair(MarginMode.CROSS, false, "1");
const wethPairAt60 = () => opposedPair(MarginMode.CROSS, true, "0.6");
const wethPairAt80 = () => opposedPair(MarginMode.CROSS, true, "0.8");
const wethPairAt100 = () => opposedPair(MarginMode.CROSS, true, "1");
const wethPairAt150 = () => opposedPair(MarginMode.CROSS, true, "1.5");
// WETH's shocked weight at 0.99 (its deploy configuration, review round 147).
const shockedPairAt60 = () => opposedPair(MarginMode.CROSS, true, "0.6", "0.99");
const shockedPairAt80 = () => opposedPair(MarginMode.CROSS, true, "0.8", "0.99");
const shockedPairAt100 = () => opposedPair(MarginMode.CROSS, true, "1", "0.99");
const shockedPairAt150 = () => opposedPair(MarginMode.CROSS, true, "1.5", "0.99");

/**
 * ETH falls by `drop` in one round. Her best play: solvent, she closes both legs herself (the short
 * first, so the long sells into the skew it leaves); insolvent, her second wallet starts the long's
 * auction, and at the end of the payout ramp she closes the short and her flat account takes the long's
 * book with `bidAndClose`.
 */
async function playDrop(pair: Pair, drop: bigint): Promise<DropResult> {
  const { sys, long, short, taker } = pair;
  let insolvent = false;
  let paid = 0n;
  let deficit = 0n;
  const take = await whatIf(() =>
    measure(sys, [long, short, taker], async () => {
      await setEthPrice(sys, (ETH0 * (WAD - drop)) / WAD);
      const h = await sys.engine.health(long);
      insolvent = h.equityMark < 0n;
      if (!insolvent) {
        await now(() => closePosition(sys.perps, sys.alice, short, sys.markets.ETH));
        await now(() => closePosition(sys.perps, sys.alice, long, sys.markets.ETH));
        return;
      }
      await now(() => sys.auction.connect(sys.bob).startAuction(long));
      const { startTime } = await sys.auction.auctions(long);
      await advanceTo(sys, startTime + DURATION);
      await closePosition(sys.perps, sys.alice, short, sys.markets.ETH);
      const rc = await (await sys.auction.connect(sys.alice).bidAndClose(long, taker, WAD, 0n)).wait();
      const covered = eventOf(rc, sys.auction, "InsolvencyCovered").args;
      [paid, deficit] = [covered.paidByInsurance + covered.socialisedLoss, covered.deficit];
    }),
  );
  return {
    drop,
    insolvent,
    profit: take.actor - pair.openCost,
    lps: take.lps,
    fund: take.fund,
    paid,
    deficit,
  };
}
