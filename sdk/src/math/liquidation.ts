/**
 * LiquidationMath: the Dutch auction's discount, restoring fraction, payment and insolvency payout.
 * Same integer steps and rounding as `contracts/libraries/LiquidationMath.sol`; payments in quote
 * units (one unit = `quoteUnit` USD WAD).
 * @packageDocumentation
 */
import type { Health } from "../state";
import { WAD, ceilDiv, min, mulDiv } from "./fixedPoint";

/** Auction parameters (ILiquidationAuction.AuctionParams). */
export interface AuctionParams {
  startDiscount: bigint;
  maxDiscount: bigint;
  penalty: bigint;
  /** Seconds from startDiscount to maxDiscount. */
  duration: bigint;
  /** Quote units paid to whoever starts an auction. */
  flagReward: bigint;
}

/**
 * d(t) = d0 + (dmax − d0)·min(1, elapsed/duration), rounded down.
 * @example
 * discount(2n * 10n ** 16n, 10n ** 17n, 900n, 1800n); // 6n * 10n ** 16n (halfway: 6%)
 */
export function discount(
  startDiscount: bigint,
  maxDiscount: bigint,
  elapsed: bigint,
  duration: bigint,
): bigint {
  if (elapsed >= duration) return maxDiscount;
  return startDiscount + mulDiv(maxDiscount - startDiscount, elapsed, duration);
}

/**
 * The smallest fraction f (WAD, rounded up, at most 1) after which the account meets its initial
 * requirement: f = (IM − E)/(IM − E + H + M·(1 − d − p)), M = `markValue`: the sold book's worth in
 * quote times the quote's price, USD WAD (`h.equityMark` when the quote is at 1 USD and nothing is held
 * back); H = `heldValue`: the quote held back from the slice (what earlier bids paid in), USD WAD.
 * @example
 * restoringFraction(health, 6n * 10n ** 16n, 10n ** 16n);
 */
export function restoringFraction(
  h: Health,
  discount_: bigint,
  penalty: bigint,
  markValue: bigint = h.equityMark,
  heldValue = 0n,
): bigint {
  const shortfall = h.initialRequirement - h.equityInitial;
  if (shortfall <= 0n) return 0n;
  const proceeds = heldValue + mulDiv(markValue, WAD - discount_ - penalty, WAD);
  const f = mulDiv(shortfall, WAD, shortfall + proceeds, "ceil");
  return f > WAD ? WAD : f;
}

/**
 * f·M·(1 − d) in quote units, rounded up (the bidder pays).
 * @example
 * payment(10_000n * WAD, WAD / 2n, 10n ** 17n, 10n ** 12n); // 4_500_000_000n (4,500 USDC)
 */
export function payment(markEquity: bigint, fraction: bigint, discount_: bigint, quoteUnit: bigint): bigint {
  const slice = mulDiv(markEquity, fraction, WAD, "ceil");
  return mulDiv(slice, WAD - discount_, WAD * quoteUnit, "ceil");
}

/**
 * The penalty the liquidated account pays the insurance fund on a slice, quote units rounded up
 * (LiquidationAuction._bid).
 * @example
 * penaltyPayment(10_000n * WAD, WAD / 2n, 10n ** 16n, 10n ** 12n); // 50_000_000n (50 USDC)
 */
export function penaltyPayment(
  markEquity: bigint,
  fraction: bigint,
  penalty: bigint,
  quoteUnit: bigint,
): bigint {
  return mulDiv(mulDiv(markEquity, fraction, WAD, "ceil"), penalty, WAD * quoteUnit, "ceil");
}

/**
 * What the insurance fund pays the bidder of an insolvent account: min(1, elapsed/duration)·(deficit +
 * dmax·MM), quote units rounded down (MM: the account's maintenance requirement).
 * @example
 * insolvencyPayout(1000n * WAD, 0n, 10n ** 17n, 900n, 1800n, 10n ** 12n); // 500_000_000n
 */
export function insolvencyPayout(
  deficit: bigint,
  maintenanceRequirement: bigint,
  maxDiscount: bigint,
  elapsed: bigint,
  duration: bigint,
  quoteUnit: bigint,
): bigint {
  const full = deficit + mulDiv(maintenanceRequirement, maxDiscount, WAD);
  const ramp = elapsed >= duration ? WAD : mulDiv(elapsed, WAD, duration);
  return mulDiv(full, ramp, WAD * quoteUnit);
}

/** A bid's outcome (ILiquidationAuction.quoteBid). */
export interface BidQuote {
  /** Fraction bought, after the restoring-fraction cap (WAD). */
  filled: bigint;
  /**
   * Quote units the bidder pays; for an insolvent account the deficit less `insurancePayout` (0 once the
   * payout covers it): paid to no one, but what the take costs the bidder at mark, which `maxPayment`
   * bounds.
   */
  payment: bigint;
  /** Quote units the bidder receives for taking an insolvent account. */
  insurancePayout: bigint;
  /** d(t) at the quote (WAD). */
  discount: bigint;
  /** Quote units the liquidated account pays the fund. */
  penalty: bigint;
}

/**
 * The book's worth in the quote token (`ICollateralVault.markInQuote` with the positions' value):
 * what liquidation payments are computed on. Equal to the health's `equityMark` while the quote is at 1 USD.
 */
export interface QuoteValuation {
  /** Mark-to-market equity in quote WAD (quote tokens, 18 decimals). */
  mark: bigint;
  /** USD WAD price of one quote token. */
  quotePrice: bigint;
  /**
   * Quote units the auction's earlier bids paid into the account (`auctions(id).paidIn`): held back
   * from the book a bid buys while the rest is worth more than 0. Default 0 (no bid yet).
   */
  paidIn?: bigint;
}

/**
 * What a bid holds back from a solvent book (quote units): `paidIn` while the account's `mark` (quote
 * WAD) exceeds it, else 0 (LiquidationAuction._heldBack).
 * @example
 * heldBack(1_000n * 10n ** 18n, 200_000_000n, 10n ** 12n); // 200_000_000n
 */
export function heldBack(mark: bigint, paidIn: bigint, quoteUnit: bigint): bigint {
  return mark > paidIn * quoteUnit ? paidIn : 0n;
}

/**
 * The mark (quote WAD) of the book a bid slices: the account's `mark` less what is held back
 * (LiquidationAuction._soldMark).
 * @example
 * soldMark(1_000n * 10n ** 18n, 200_000_000n, 10n ** 12n); // 800n * 10n ** 18n
 */
export function soldMark(mark: bigint, paidIn: bigint, quoteUnit: bigint): bigint {
  return mark - heldBack(mark, paidIn, quoteUnit) * quoteUnit;
}

/**
 * The pure `quoteBid`: what a bid of `fraction` fills and pays for an account of health `h` whose
 * auction has run `elapsed` seconds; `valuation` is the book's worth in quote (default: the quote at 1
 * USD, so `h.equityMark`).
 * @example
 * quoteBidFromHealth(h, WAD, 600n, params, 10n ** 12n);
 */
export function quoteBidFromHealth(
  h: Health,
  fraction: bigint,
  elapsed: bigint,
  p: AuctionParams,
  quoteUnit: bigint,
  valuation: QuoteValuation = { mark: h.equityMark, quotePrice: WAD },
): BidQuote {
  const d = discount(p.startDiscount, p.maxDiscount, elapsed, p.duration);
  const mark = valuation.mark;
  if (mark < 0n) {
    const payout = insolvencyPayout(
      -mark,
      mulDiv(h.maintenanceRequirement, WAD, valuation.quotePrice),
      p.maxDiscount,
      elapsed,
      p.duration,
      quoteUnit,
    );
    const deficit = insolvencyDeficit(mark, quoteUnit);
    const cost = deficit > payout ? deficit - payout : 0n;
    return { filled: WAD, payment: cost, insurancePayout: payout, discount: d, penalty: 0n };
  }
  const sold = soldMark(mark, valuation.paidIn ?? 0n, quoteUnit);
  const markValue = mulDiv(sold, valuation.quotePrice, WAD);
  const heldValue = mulDiv(mark - sold, valuation.quotePrice, WAD);
  const filled = min(fraction, restoringFraction(h, d, p.penalty, markValue, heldValue));
  return {
    filled,
    payment: payment(sold, filled, d, quoteUnit),
    insurancePayout: 0n,
    discount: d,
    penalty: penaltyPayment(sold, filled, p.penalty, quoteUnit),
  };
}

/**
 * The deficit of an insolvent account in quote units, rounded up (the InsolvencyCovered event).
 * @example
 * insolvencyDeficit(-1n, 10n ** 12n); // 1n
 */
export function insolvencyDeficit(equityMark: bigint, quoteUnit: bigint): bigint {
  return equityMark >= 0n ? 0n : ceilDiv(-equityMark, quoteUnit);
}
