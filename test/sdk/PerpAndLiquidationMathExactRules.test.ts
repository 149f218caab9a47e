import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { InterestMathHarness, PerpMathHarness } from "../../typechain-types";
import {
  type AccountState,
  type Health,
  type QuoteInterestState,
  WAD,
  accountHealth,
  accrueFunding,
  accruedFunding,
  accruedInterestAt,
  applyFill,
  averageEntry,
  borrowRate,
  compound,
  discount,
  expWad,
  feeSplit,
  fillPrice,
  getAccountState,
  heldBack,
  increasesRisk,
  insolvencyDeficit,
  insolvencyPayout,
  interestIndexAt,
  isLiquidatable,
  liquidationPrice,
  payment,
  penaltyPayment,
  perpFee,
  perpValue,
  premiumPaid,
  quoteBidFromHealth,
  rateIntegral,
  restoringFraction,
  settlementQuoteDelta,
  skewPremium,
  soldMark,
  withPrice,
} from "../../sdk/src";
import { MarginMode, openAccount, wad } from "../shared/system";
import { YEAR } from "../shared/interest";
import { trade } from "../shared/perps";
import { assetId } from "../shared/oracles";
import { calendarAtIM } from "../shared/sdk";
import { DAY } from "../shared/options";

const USDC = 10n ** 6n;
const ETH = assetId("ETH").toLowerCase();
/** One USDC unit in USD WAD. */
const USDC_UNIT = 10n ** 12n;

/**
 * The SDK's copies of the perp, interest and liquidation rules (`sdk/src/math/perp.ts`, `interest.ts`,
 * `liquidation.ts`, `liquidationPrice.ts`), pinned to the integer steps and roundings of the contracts
 * they copy (review round 107: mutation testing of these files; every expected number is worked out in
 * the test).
 */
describe("SDK perp, interest and liquidation math: exact rules", function () {
  describe("perp fills and fees", function () {
    it("rounds the skew premium of a fill against the trader, whichever side of the skew the trade is on", function () {
      // price 3 wei, skewScale 1 wei: premium = 3·|2·skew + size| / 2 = 1.5 wei before rounding.
      expect(fillPrice(3n, 0n, 1n, 1n), "a buy pays the premium rounded up: 3 + 2").to.equal(5n);
      expect(fillPrice(3n, 0n, -1n, 1n), "a sell takes the discount rounded up: 3 − 2").to.equal(1n);
      expect(
        fillPrice(3n, -1n, 1n, 1n),
        "a buy into a short skew gets the discount rounded down: 3 − 1",
      ).to.equal(2n);
      expect(
        fillPrice(3n, 1n, -1n, 1n),
        "a sell into a long skew gets the premium rounded down: 3 + 1",
      ).to.equal(4n);
    });

    it("costs a close the signed premium times the signed size, USD rounded up", function () {
      // Selling 10 on a flat skew, scale 1,000: fill 3,000·(1 − 10/2,000) = 2,985, cost −10·(2,985 − 3,000) = 150.
      expect(skewPremium(wad("3000"), 0n, -wad("10"), wad("1000"))).to.equal(wad("150"));
      // Selling 10 into a long skew of 100: fill 3,000·(1 + 190/2,000) = 3,285, a rebate of 10·285.
      expect(skewPremium(wad("3000"), wad("100"), -wad("10"), wad("1000"))).to.equal(-wad("2850"));
      // 1 wei bought at a fill 2 wei above spot: 2/10^18 USD, rounded up to 1 wei.
      expect(skewPremium(3n, 0n, 1n, 1n)).to.equal(1n);
    });

    it("charges the premium paid only on the worse side of the price, in quote units rounded up", function () {
      // Selling 10 at 2,985 against 3,000 pays 15·10 = 150 USD = 150,000,000 USDC units.
      expect(premiumPaid(wad("3000"), wad("2985"), -wad("10"), USDC_UNIT)).to.equal(150_000_000n);
      // Buying at 2,985 (a fill better than the price) pays nothing.
      expect(premiumPaid(wad("3000"), wad("2985"), wad("10"), USDC_UNIT)).to.equal(0n);
      // One ETH bought 1 wei above the price: 10^-18 USD, one USDC unit rounded up.
      expect(premiumPaid(wad("3000"), wad("3000") + 1n, WAD, USDC_UNIT)).to.equal(1n);
    });

    it("splits the fee into the maker part (toward zero skew, at most |skew|) and the taker rest", function () {
      expect(feeSplit(wad("5"), -wad("8"))).to.deep.equal({ maker: wad("5"), taker: wad("3") });
      expect(feeSplit(-wad("5"), wad("8"))).to.deep.equal({ maker: wad("5"), taker: wad("3") });
      expect(feeSplit(-wad("5"), wad("2"))).to.deep.equal({ maker: wad("2"), taker: 0n });
      expect(feeSplit(wad("5"), wad("3"))).to.deep.equal({ maker: 0n, taker: wad("3") });
      expect(feeSplit(0n, -wad("8"))).to.deep.equal({ maker: 0n, taker: wad("8") });
      // The fee on 8 sold into a long skew of 5 at 3,000, maker 0.02%, taker 0.05%:
      // (5·0.0002 + 3·0.0005)·3,000 = 7.5 USD.
      expect(perpFee(wad("5"), -wad("8"), wad("3000"), wad("0.0002"), wad("0.0005"), USDC_UNIT)).to.equal(
        7_500_000n,
      );
      // 1 wei at a fill of 1 wei, taker 0.05%: 5·10^-40 USD, one USDC unit rounded up.
      expect(perpFee(0n, 1n, 1n, 0n, wad("0.0005"), USDC_UNIT)).to.equal(1n);
    });
  });

  describe("funding", function () {
    let harness: PerpMathHarness;
    before(async function () {
      harness = await ethers.deployContract("PerpMathHarness");
    });
    const both = async (rate: bigint, ratePerDay: bigint, maxRate: bigint, dt: bigint) => {
      const [newRate, integral] = await harness.rateIntegral(rate, ratePerDay, maxRate, dt);
      const sdk = rateIntegral(rate, ratePerDay, maxRate, dt);
      expect([sdk.newRate, sdk.integral], "the SDK equals PerpMath.rateIntegral").to.deep.equal([
        newRate,
        integral,
      ]);
      return sdk;
    };

    it("integrates a rate that ends exactly on the cap as a ramp, not as a ramp and a plateau", async function () {
      // Drift 0.24/day + 1 wei for one hour: the rate moves (0.24e18 + 1)·3,600/86,400 = 0.01e18 (truncated),
      // exactly the cap, so it is not past it: integral = 0.01·3,600/2.
      const r = await both(0n, wad("0.24") + 1n, wad("0.01"), 3_600n);
      expect(r).to.deep.equal({ newRate: wad("0.01"), integral: (wad("0.01") * 3_600n) / 2n });
    });

    it("reaches the cap after (cap − rate)/drift days from a negative rate and stays there", async function () {
      // From −0.005 at +0.03/day, cap 0.01: the cap is hit after 0.015/0.03 day = 43,200 s;
      // integral = (−0.005 + 0.01)·43,200/2 + 0.01·43,200.
      const r = await both(-wad("0.005"), wad("0.03"), wad("0.01"), DAY);
      expect(r).to.deep.equal({
        newRate: wad("0.01"),
        integral: (wad("0.005") * 43_200n) / 2n + wad("0.01") * 43_200n,
      });
    });

    it("starts from the stored rate clamped to a lowered cap", async function () {
      // Stored 0.02, cap lowered to 0.01, drift −0.001/day for a day: from 0.01 to 0.009, never past a bound.
      const r = await both(wad("0.02"), -wad("0.001"), wad("0.01"), DAY);
      expect(r).to.deep.equal({ newRate: wad("0.009"), integral: ((wad("0.01") + wad("0.009")) * DAY) / 2n });
    });

    it("halves the trapezoid's sum, not its time, and moves the rate by the drift of part of a day", async function () {
      // Rate 1 wei, no drift, 3 s: (1 + 1)·3/2 = 3 (halving 3 s first would give 2).
      expect(await both(1n, 0n, 10n, 3n)).to.deep.equal({ newRate: 1n, integral: 3n });
      // Drift 1 wei per second (86,400 per day), cap 3, 10 s: the cap is hit after 3 s;
      // (0 + 3)·3/2 = 4 (truncated) + 3·7 = 25.
      expect(await both(0n, DAY, 3n, 10n)).to.deep.equal({ newRate: 3n, integral: 25n });
      // Half a day at 0.001/day moves the rate by 0.0005.
      expect((await both(0n, wad("0.001"), wad("0.01"), DAY / 2n)).newRate).to.equal(wad("0.0005"));
    });

    it("moves the index by ∫rate·price / (1e18 · 1 day), truncated toward zero as the contract does", function () {
      const base = {
        skew: 0n,
        skewScale: wad("1000"),
        maxFundingVelocity: wad("0.1"),
        maxFundingRate: wad("0.01"),
      };
      // A rate of −1 wei for 1 s at a price of 1 wei: −1/(1e18·86,400) truncates to 0, not −1.
      expect(accrueFunding({ ...base, rate: -1n, index: 7n, price: 1n, dt: 1n })).to.deep.equal({
        newRate: -1n,
        newIndex: 7n,
      });
      // Skew 10 of 1,000 at 0.1/day: the rate reaches 0.001 in a day; ∫ = 0.001·86,400/2 and the index
      // moves by that times 3,000 over a day: +1.5 USD per unit.
      expect(
        accrueFunding({ ...base, skew: wad("10"), rate: 0n, index: wad("2"), price: wad("3000"), dt: DAY }),
      ).to.deep.equal({ newRate: wad("0.001"), newIndex: wad("3.5") });
    });
  });

  describe("positions", function () {
    it("averages the entry rounded up for a long and down for a short", function () {
      // (1·100 + 2·101)/3 = 100.67 wei.
      expect(averageEntry(1n, 100n, 2n, 101n)).to.equal(101n);
      expect(averageEntry(-1n, 100n, -2n, 101n)).to.equal(100n);
    });

    it("counts opening, growing and flipping as added risk, reducing and closing exactly as not", function () {
      expect(increasesRisk(0n, -2n)).to.equal(true);
      expect(increasesRisk(5n, 2n)).to.equal(true);
      expect(increasesRisk(5n, -7n)).to.equal(true);
      expect(increasesRisk(5n, -2n)).to.equal(false);
      expect(increasesRisk(5n, -5n)).to.equal(false);
      expect(increasesRisk(-5n, 5n)).to.equal(false);
    });

    it("applies a fill: opens a short at the fill, realises the closed part, keeps or resets the entry", function () {
      expect(applyFill(0n, 0n, -wad("4"), wad("3000"))).to.deep.equal({
        newSize: -wad("4"),
        newEntry: wad("3000"),
        realizedRaw: 0n,
        increasesRisk: true,
      });
      expect(applyFill(0n, 0n, wad("4"), wad("3000"))).to.deep.equal({
        newSize: wad("4"),
        newEntry: wad("3000"),
        realizedRaw: 0n,
        increasesRisk: true,
      });
      // Short 10 at 3,000 bought back 4 at 2,900: the closed part −4 realises −4·(2,900 − 3,000) = +400.
      expect(applyFill(-wad("10"), wad("3000"), wad("4"), wad("2900"))).to.deep.equal({
        newSize: -wad("6"),
        newEntry: wad("3000"),
        realizedRaw: wad("400") * WAD,
        increasesRisk: false,
      });
      // Long 10 at 3,000 closed at 3,100: +1,000, nothing left.
      expect(applyFill(wad("10"), wad("3000"), -wad("10"), wad("3100"))).to.deep.equal({
        newSize: 0n,
        newEntry: 0n,
        realizedRaw: wad("1000") * WAD,
        increasesRisk: false,
      });
      // Long 10 at 3,000 sold 15 at 2,900: the 10 realise −1,000 and a short of 5 opens at the fill.
      expect(applyFill(wad("10"), wad("3000"), -wad("15"), wad("2900"))).to.deep.equal({
        newSize: -wad("5"),
        newEntry: wad("2900"),
        realizedRaw: -wad("1000") * WAD,
        increasesRisk: true,
      });
    });

    it("settles a gain rounded down and a debt rounded up, in quote units", function () {
      const raw = 10n ** 30n; // one USDC unit in 36-decimal USD
      expect(settlementQuoteDelta(2n * raw - 1n, raw)).to.equal(1n);
      expect(settlementQuoteDelta(-raw - 1n, raw)).to.equal(-2n);
      expect(settlementQuoteDelta(-raw, raw)).to.equal(-1n);
      expect(settlementQuoteDelta(0n, raw)).to.equal(0n);
    });

    it("values a position rounded down and its unsettled funding rounded up", function () {
      // Long 10 at 3,015, spot 3,000, index up 1.5 since its last touch: 10·(−15) − 10·1.5 = −165.
      expect(perpValue(wad("10"), wad("3015"), wad("0.5"), wad("3000"), wad("2"))).to.equal(-wad("165"));
      // A short of 1 wei, 1 wei of price move against it: −10^-18 USD rounds down to −1 wei, not 0.
      expect(perpValue(-1n, 0n, 0n, 1n, 0n)).to.equal(-1n);
      expect(perpValue(1n, 0n, 0n, 1n, 0n)).to.equal(0n);
      expect(accruedFunding(wad("10"), wad("0.5"), wad("2"))).to.equal(wad("15"));
      expect(accruedFunding(1n, 0n, 1n)).to.equal(1n);
      expect(accruedFunding(-1n, 0n, 1n)).to.equal(0n);
    });
  });

  describe("quote-debt interest", function () {
    let harness: InterestMathHarness;
    before(async function () {
      harness = await ethers.deployContract("InterestMathHarness");
    });
    const kinked = { baseRate: 0n, kinkRate: wad("0.1"), maxRate: wad("1"), kinkUtilization: wad("0.5") };
    const state = (over: Partial<QuoteInterestState> = {}): QuoteInterestState => ({
      index: WAD,
      rate: wad("0.1"),
      updatedAt: 1_000n,
      lenderAccountId: 7n,
      ...over,
    });

    it("compounds e^(rate·elapsed/year) with the exponent truncated, capped at 100, rounded down", async function () {
      const cases: [bigint, bigint, bigint][] = [
        [WAD, wad("0.1"), YEAR], // e^0.1
        [WAD, 1n, 1n], // exponent 1/31,536,000 wei: truncated to 0
        [1n, wad("0.1"), YEAR], // 1.105 wei: 1
        [WAD, wad("3"), 40n * YEAR], // exponent 120: capped at 100
      ];
      for (const [index, rate, elapsed] of cases)
        expect(compound(index, rate, elapsed), `${index}, ${rate}, ${elapsed}`).to.equal(
          await harness.compound(index, rate, elapsed),
        );
      expect(compound(WAD, wad("0.1"), YEAR)).to.equal(expWad(wad("0.1")));
      expect(compound(WAD, 1n, 1n)).to.equal(WAD);
      expect(compound(1n, wad("0.1"), YEAR)).to.equal(1n);
      expect(compound(WAD, wad("3"), 40n * YEAR)).to.equal(expWad(wad("100")));
    });

    it("reads the kinked rate at utilisation debt/(debt + cash), each step rounded down", async function () {
      const cases: [typeof kinked, bigint, bigint][] = [
        [kinked, 1n, 2n],
        [kinked, 2n, 1n],
        [{ ...kinked, kinkRate: wad("0.5"), maxRate: wad("2") }, 1n, 2n],
        [kinked, 0n, 0n],
      ];
      for (const [model, debt, cash] of cases)
        expect(borrowRate(model, debt, cash), `${debt}/${debt + cash}`).to.equal(
          await harness.borrowRate(model, debt, cash),
        );
      // u = 1/3 → 333,333,333,333,333,333; rate = 0.1·u/0.5 = 66,666,666,666,666,666.6 → …666.
      expect(borrowRate(kinked, 1n, 2n)).to.equal(66_666_666_666_666_666n);
      // Slope 1 below the kink: the rate is u itself, 1/3 rounded down.
      expect(borrowRate({ ...kinked, kinkRate: wad("0.5"), maxRate: wad("2") }, 1n, 2n)).to.equal(
        333_333_333_333_333_333n,
      );
      // u = 2/3 → 666,666,666,666,666,666; rate = 0.1 + 0.9·(u − 0.5)/0.5 = 0.1 + 0.2999…998(.8).
      expect(borrowRate(kinked, 2n, 1n)).to.equal(399_999_999_999_999_998n);
    });

    it("owes debt·index/paidIndex − debt rounded up, nothing on no debt and nothing by the lender", async function () {
      const s = state();
      const at = 1_000n + YEAR;
      const index = await harness.compound(WAD, wad("0.1"), YEAR);
      expect(interestIndexAt(s, at)).to.equal(index);
      // 1,000 USDC borrowed at index 1: owes ⌈1e9·e^0.1⌉ − 1e9 units.
      expect(accruedInterestAt(-1_000_000_000n, WAD, s, at, 1n)).to.equal(
        await harness.owed(1_000_000_000n, index, WAD),
      );
      expect(accruedInterestAt(-1_000_000_000n, WAD, s, at, 1n)).to.equal(105_170_919n);
      // One unit at an index 1 wei above the paid one: 1·(1e18 + 1)/1e18 rounds up to 2: owes 1.
      expect(accruedInterestAt(-1n, WAD, state({ index: WAD + 1n, rate: 0n }), at, 1n)).to.equal(1n);
      // The lender (the pool's account) pays none; an account that never borrowed has no paid index.
      expect(accruedInterestAt(-1_000_000_000n, WAD, s, at, 7n)).to.equal(0n);
      expect(accruedInterestAt(0n, 0n, s, at, 1n)).to.equal(0n);
    });
  });

  describe("liquidation auction math", function () {
    /** IM 1,000, equity at initial weights 600, marked at 10,000, MM 500. */
    const h: Health = {
      equityInitial: wad("600"),
      equityMaintenance: wad("400"),
      equityMark: wad("10000"),
      initialRequirement: wad("1000"),
      maintenanceRequirement: wad("500"),
      healthRatio: wad("0.8"),
      grossNotional: wad("20000"),
      volatilityUnavailable: false,
    };
    const params = {
      startDiscount: wad("0.02"),
      maxDiscount: wad("0.1"),
      penalty: wad("0.01"),
      duration: 1_800n,
      flagReward: 0n,
    };

    it("ramps the discount from d0 to dmax, rounded down", function () {
      expect(discount(wad("0.02"), wad("0.1"), 900n, 1_800n)).to.equal(wad("0.06"));
      // 1 s of 1,800: 0.02 + 0.08/1,800 = 0.020044444444444444(.4).
      expect(discount(wad("0.02"), wad("0.1"), 1n, 1_800n)).to.equal(20_044_444_444_444_444n);
      expect(discount(wad("0.02"), wad("0.1"), 1_800n, 1_800n)).to.equal(wad("0.1"));
    });

    it("restores with f = shortfall / (shortfall + held + M·(1 − d − p)), rounded up", function () {
      // Shortfall 400, M 10,000 at d 6% and p 1%: proceeds 9,300, f = 400/9,700 = 0.041237113402061855(.6).
      expect(restoringFraction(h, wad("0.06"), wad("0.01"))).to.equal(41_237_113_402_061_856n);
      // 200 USD held back: f = 400/9,900 = 0.040404040404040404(.04).
      expect(restoringFraction(h, wad("0.06"), wad("0.01"), wad("10000"), wad("200"))).to.equal(
        40_404_040_404_040_405n,
      );
      // No shortfall: nothing to sell, whatever the book is worth.
      expect(restoringFraction({ ...h, initialRequirement: wad("600"), equityMark: 0n }, 0n, 0n)).to.equal(
        0n,
      );
    });

    it("charges the bidder f·M·(1 − d) and the account f·M·p, each step rounded up", function () {
      expect(payment(wad("10000"), WAD / 2n, wad("0.1"), USDC_UNIT)).to.equal(4_500_000_000n);
      // Slice 10·(1/3 − 10^-18) = 3.33 wei rounded up to 4, then 4·(1 − 0) = 4.
      expect(payment(10n, WAD / 3n, 0n, 1n)).to.equal(4n);
      expect(payment(1n, WAD, 0n, USDC_UNIT)).to.equal(1n);
      expect(penaltyPayment(wad("10000"), WAD / 2n, wad("0.01"), USDC_UNIT)).to.equal(50_000_000n);
      expect(penaltyPayment(10n, WAD / 3n, WAD, 1n)).to.equal(4n);
      expect(penaltyPayment(1n, WAD, wad("0.01"), USDC_UNIT)).to.equal(1n);
    });

    it("pays the bidder of an insolvent book ramp·(deficit + dmax·MM), each step rounded down", function () {
      expect(insolvencyPayout(wad("1000"), 0n, wad("0.1"), 900n, 1_800n, USDC_UNIT)).to.equal(500_000_000n);
      // dmax·MM = 0.5·3 wei = 1.5 → 1.
      expect(insolvencyPayout(0n, 3n, wad("0.5"), 1_800n, 1_800n, 1n)).to.equal(1n);
      // ramp 1/3 → 333,333,333,333,333,333; 3e18 · that / 1e18.
      expect(insolvencyPayout(wad("3"), 0n, 0n, 1n, 3n, 1n)).to.equal(999_999_999_999_999_999n);
      expect(insolvencyPayout(1n, 0n, 0n, 1n, 1n, USDC_UNIT)).to.equal(0n);
      expect(insolvencyDeficit(-1n, USDC_UNIT)).to.equal(1n);
      expect(insolvencyDeficit(-USDC_UNIT - 1n, USDC_UNIT)).to.equal(2n);
    });

    it("holds back what earlier bids paid in only while the book is worth more", function () {
      expect(heldBack(wad("1000"), 200_000_000n, USDC_UNIT)).to.equal(200_000_000n);
      expect(soldMark(wad("1000"), 200_000_000n, USDC_UNIT)).to.equal(wad("800"));
      // Worth exactly what was paid in: nothing would be left to sell, so nothing is held back.
      expect(heldBack(wad("200"), 200_000_000n, USDC_UNIT)).to.equal(0n);
      expect(heldBack(wad("100"), 200_000_000n, USDC_UNIT)).to.equal(0n);
      expect(soldMark(wad("200"), 200_000_000n, USDC_UNIT)).to.equal(wad("200"));
    });

    it("quotes a solvent bid on the book less what is held back, valued at the quote's price", function () {
      // Quote at 0.5 USD, mark 10,000 quote of which 2,000 USDC paid in by earlier bids, 900 s in (d 6%):
      // sold 8,000 quote worth 4,000 USD, held 1,000 USD; f = 400/(400 + 1,000 + 4,000·0.93) = 400/5,120.
      const q = quoteBidFromHealth(h, WAD, 900n, params, USDC_UNIT, {
        mark: wad("10000"),
        quotePrice: wad("0.5"),
        paidIn: 2_000_000_000n,
      });
      const f = 78_125_000_000_000_000n; // 400/5,120 = 0.078125 exactly
      expect(q).to.deep.equal({
        filled: f,
        payment: 587_500_000n, // 8,000·0.078125·0.94 = 587.5
        insurancePayout: 0n,
        discount: wad("0.06"),
        penalty: 6_250_000n, // 8,000·0.078125·0.01 = 6.25
      });
      // A smaller fraction than the restoring one is filled as asked.
      expect(quoteBidFromHealth(h, f / 2n, 900n, params, USDC_UNIT).filled).to.equal(f / 2n);
    });

    it("quotes an insolvent take whole, paid ramp·(deficit + dmax·MM in quote) and costing what the payout leaves", function () {
      // Mark −100 quote at 0.5 USD: MM 500 USD is 1,000 quote; halfway: payout 0.5·(100 + 0.1·1,000) = 100.
      const q = quoteBidFromHealth(h, WAD / 100n, 900n, params, USDC_UNIT, {
        mark: -wad("100"),
        quotePrice: wad("0.5"),
      });
      expect(q).to.deep.equal({
        filled: WAD,
        payment: 0n,
        insurancePayout: 100_000_000n,
        discount: wad("0.06"),
        penalty: 0n,
      });
      // At the end of the ramp the payout, 100 + 0.1·1,000 = 200, exceeds the 100 deficit: the take costs 0.
      const late = quoteBidFromHealth(h, WAD, 1_800n, params, USDC_UNIT, {
        mark: -wad("100"),
        quotePrice: wad("0.5"),
      });
      expect([late.payment, late.insurancePayout]).to.deep.equal([0n, 200_000_000n]);
      // At 1 USD, 90 s in: payout 0.05·(100 + 0.1·500) = 7.5, cost 100 − 7.5 = 92.5.
      expect(
        quoteBidFromHealth({ ...h, equityMark: -wad("100") }, WAD, 90n, params, USDC_UNIT),
      ).to.deep.equal({
        filled: WAD,
        payment: 92_500_000n,
        insurancePayout: 7_500_000n,
        discount: wad("0.024"),
        penalty: 0n,
      });
      // A mark of exactly 0 is not insolvent (row 211): the fund pays nothing for a book worth nothing.
      const zero = quoteBidFromHealth({ ...h, equityMark: 0n }, WAD, 900n, params, USDC_UNIT);
      expect([zero.insurancePayout, zero.payment]).to.deep.equal([0n, 0n]);
    });
  });

  describe("liquidation price scan", function () {
    /**
     * At ETH 3,000: Alice's calendar (short 10 calls at 3,000 expiring in 7 days, long 10 in 90 days)
     * withdrawn to her IM; Bob short 1 ETH perp on 50,000 USDC; Carol long 1 ETH perp on 2,000 USDC.
     */
    async function books() {
      const { sys, alice, client } = await calendarAtIM();
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      await trade(sys.perps, sys.bob, bob, sys.markets.ETH, -WAD);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 2_000n * USDC]]);
      await trade(sys.perps, sys.carol, carol, sys.markets.ETH, WAD);
      const [calendar, short, long] = await Promise.all(
        [alice, bob, carol].map((accountId) => getAccountState(client, { accountId })),
      );
      return { calendar, short, long };
    }
    const liquidatable = (state: AccountState, price: bigint) =>
      isLiquidatable(accountHealth(withPrice(state, ETH, price)));
    /** The state with `units` more of the quote token. */
    const withQuote = (state: AccountState, units: bigint): AccountState => ({
      ...state,
      collateral: state.collateral.map((c) =>
        c.token === state.quoteToken ? { ...c, balance: c.balance + units } : c,
      ),
    });

    it("scans below spot down to minPrice itself and above it up to 100× spot by default", async function () {
      const { short, long } = await loadFixture(books);
      // Carol: 2,000 − fee + (P − entry) meets MM ≈ 0.075·P near 1,080, below half of spot (the
      // midpoint of the path's one step).
      const { down } = liquidationPrice(long, ETH);
      expect(down).to.be.within(wad("1000"), wad("1200"));
      expect([liquidatable(long, down!), liquidatable(long, down! + 1n)]).to.deep.equal([true, false]);
      // Bob: 50,000 − (P − entry) meets MM ≈ 0.075·P near 49,000, beyond 10× spot.
      const { up } = liquidationPrice(short, ETH);
      expect(up).to.be.within(wad("40000"), wad("60000"));
      expect([liquidatable(short, up!), liquidatable(short, up! - 1n)]).to.deep.equal([true, false]);
      expect(liquidationPrice(short, ETH, { maxPrice: up! - 1n }).up).to.equal(null);
    });

    it("ends the scan above at maxPrice itself, whatever maxPrice's float rounding", async function () {
      const { short } = await loadFixture(books);
      // Liquidatable at maxPrice and safe 1 wei below it: up = maxPrice. Eight crossings a few USDC units
      // apart, so some round down to a float below them (a float path end would stop short of them).
      for (let units = 0n; units < 8n; units++) {
        const state = withQuote(short, units);
        const { up } = liquidationPrice(state, ETH);
        expect(liquidationPrice(state, ETH, { maxPrice: up! }).up, `${units} units more`).to.equal(up);
      }
    });

    it("finds an option book's liquidation band narrower than a sixteenth of the way down", async function () {
      const { calendar } = await loadFixture(books);
      // With 832 USDC more the calendar is liquidatable only from ~1,700 to ~1,785 below spot (its
      // equity less MM bottoms out near 1,740), safe at 1 wei and at the 16-step points 1,687.5 and 1,875:
      // a scan of 256 steps of 11.7 finds the band, one of 16 steps of 187.5 would not.
      const state = withQuote(calendar, 832n * USDC);
      expect([1n, wad("1687.5"), wad("1740"), wad("1875")].map((p) => liquidatable(state, p))).to.deep.equal([
        false,
        false,
        true,
        false,
      ]);
      const { down } = liquidationPrice(state, ETH);
      expect(down).to.be.within(wad("1760"), wad("1810"));
      expect([liquidatable(state, down!), liquidatable(state, down! + 1n)]).to.deep.equal([true, false]);
    });

    it("scans above spot in 256 steps growing geometrically to maxPrice, the last ones included", async function () {
      const { calendar } = await loadFixture(books);
      // With 832.5 USDC more and ETH at 2.5 the calendar is liquidatable only from ~1,705 to ~1,775. Up to
      // maxPrice 1,785.2 the path grows by r = (1,785.2/2.5)^(1/256) ≈ 1.026 a step: its last step
      // before maxPrice, 1,785.2/r ≈ 1,740, is in the band; the one before, 1,785.2/r² ≈ 1,696, and maxPrice
      // are not. A path one step behind, or of 257 steps' ratio, ends 1,696 → 1,785.2 and misses it.
      const state = withPrice(withQuote(calendar, 832_500_000n), ETH, wad("2.5"));
      const maxPrice = wad("1785.2");
      expect([wad("1696"), wad("1740"), maxPrice].map((p) => liquidatable(state, p))).to.deep.equal([
        false,
        true,
        false,
      ]);
      const { up } = liquidationPrice(state, ETH, { maxPrice });
      expect(up).to.be.within(wad("1696"), wad("1740"));
      expect([liquidatable(state, up!), liquidatable(state, up! - 1n)]).to.deep.equal([true, false]);
    });

    it("gives an account liquidatable now its spot on both sides", async function () {
      const { calendar } = await loadFixture(books);
      const state = withPrice(calendar, ETH, wad("2000"));
      expect(liquidationPrice(state, ETH)).to.deep.equal({
        spot: wad("2000"),
        down: wad("2000"),
        up: wad("2000"),
      });
    });
  });
});
