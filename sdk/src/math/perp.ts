/**
 * PerpMath: fill price with skew premium, maker/taker fees, the funding velocity model, entry
 * averaging and realised PnL. Same integer steps and rounding as `contracts/libraries/PerpMath.sol`
 * and the pricing part of `PerpMarket._price` / `_applyFill`.
 * @packageDocumentation
 */
import { WAD, abs, ceilDiv, divCeil, divFloor, min, mulDiv } from "./fixedPoint";

/** One day in seconds: the funding rate is per day. */
export const DAY = 86_400n;

/** A perp market's risk and fee parameters (IPerpMarket.MarketParams), WAD (fractions: 10^15 is 0.1%). */
export interface PerpMarketParams {
  /** Skew (underlying units) at which the fill premium reaches 100%. */
  skewScale: bigint;
  /** Change of the daily funding rate per day at full skew. */
  maxFundingVelocity: bigint;
  /** Clamp on |funding rate| per day. */
  maxFundingRate: bigint;
  /** Fee on the notional of the part of a trade that moves the skew toward zero (fraction). */
  makerFee: bigint;
  /** Fee on the notional of the rest of the trade (fraction). */
  takerFee: bigint;
  /** Share of every fee paid to the insurance fund (fraction). */
  insuranceFeeShare: bigint;
  /** Cap on each side's open interest, as a fraction of the pool's `poolDeltaBase` at the oracle price. */
  maxPoolDeltaRatio: bigint;
  /** Cap on each side's open interest, underlying units. */
  maxOpenInterest: bigint;
}

/**
 * fill = price·(1 + (skew + sizeDelta/2)/skewScale), rounded up for a buy and down for a sell. Signed:
 * the market rejects fills ≤ 0 (InvalidFillPrice).
 * @example
 * // A 10 ETH buy on a flat book at 3,000 with skewScale 1,000: 3000·(1 + 5/1000) = 3,015.
 * fillPrice(3000n * WAD, 0n, 10n * WAD, 1000n * WAD); // 3015n * WAD
 */
export function fillPrice(price: bigint, skew: bigint, sizeDelta: bigint, skewScale: bigint): bigint {
  const num = 2n * skew + sizeDelta;
  const buy = sizeDelta > 0n;
  const premium = mulDiv(price, abs(num), 2n * skewScale, num > 0n === buy ? "ceil" : "floor");
  return num >= 0n ? price + premium : price - premium;
}

/**
 * What trading `sizeDelta` at the fill for `skew` costs beyond `spot` (PerpMarket._closeCost): the skew
 * premium, USD WAD rounded up, negative for a rebate. A perp's exit discount is this for closing it
 * whole, when positive.
 * @example
 * // Buying back a short of 10 with the skew flat, skew scale 1,000: fills at 3,015, 150 USD.
 * skewPremium(3000n * WAD, 0n, 10n * WAD, 1000n * WAD); // 150n * WAD
 */
export function skewPremium(spot: bigint, skew: bigint, sizeDelta: bigint, skewScale: bigint): bigint {
  return divCeil(sizeDelta * (fillPrice(spot, skew, sizeDelta, skewScale) - spot), WAD);
}

/**
 * What a trade pays beyond the oracle price through the skew premium, quote units rounded up:
 * |fill − price|·|sizeDelta| when the fill is worse than `price` for the trader, else 0
 * (PerpMath.premiumPaid). With the fee, what the trade charges a trader's allowance.
 * @param quoteUnit One quote unit in USD WAD, 10^(18 − quote decimals).
 * @example
 * // Buying 10 ETH at 3,015 against an oracle price of 3,000, USDC: 150 USD.
 * premiumPaid(3000n * WAD, 3015n * WAD, 10n * WAD, 10n ** 12n); // 150000000n
 */
export function premiumPaid(price: bigint, fill: bigint, sizeDelta: bigint, quoteUnit: bigint): bigint {
  const worse = sizeDelta > 0n ? fill - price : price - fill;
  return worse > 0n ? mulDiv(worse, abs(sizeDelta), WAD * quoteUnit, "ceil") : 0n;
}

/**
 * Fee in quote units, rounded up, on |sizeDelta|·fill: the part moving the skew toward zero (at most
 * |skew|) pays `makerFee`, the rest `takerFee`.
 * @param quoteUnit One quote unit in USD WAD, 10^(18 − quote decimals).
 * @example
 * // 10 ETH taker at 3,015, 0.05%, USDC: 15.075 USD = 15_075_000 units.
 * perpFee(0n, 10n * WAD, 3015n * WAD, 2n * 10n ** 14n, 5n * 10n ** 14n, 10n ** 12n); // 15075000n
 */
export function perpFee(
  skew: bigint,
  sizeDelta: bigint,
  fill: bigint,
  makerFee: bigint,
  takerFee: bigint,
  quoteUnit: bigint,
): bigint {
  const size = abs(sizeDelta);
  const maker = skew > 0n !== sizeDelta > 0n ? min(size, abs(skew)) : 0n;
  const weighted = maker * makerFee + (size - maker) * takerFee;
  return mulDiv(weighted, fill, WAD * WAD * quoteUnit, "ceil");
}

/**
 * The maker and taker parts of a trade's size (underlying units): the part that moves the skew toward
 * zero is maker.
 * @example
 * feeSplit(5n * WAD, -8n * WAD); // { maker: 5n * WAD, taker: 3n * WAD }
 */
export function feeSplit(skew: bigint, sizeDelta: bigint): { maker: bigint; taker: bigint } {
  const size = abs(sizeDelta);
  const maker = skew > 0n !== sizeDelta > 0n ? min(size, abs(skew)) : 0n;
  return { maker, taker: size - maker };
}

function clamp(x: bigint, bound: bigint): bigint {
  return x > bound ? bound : x < -bound ? -bound : x;
}

/**
 * Change of the daily funding rate per day: maxFundingVelocity·clamp(skew/skewScale, −1, 1).
 * @example
 * drift(10n * WAD, 1000n * WAD, WAD / 10n); // 10n ** 15n (0.1 per day at 1% skew)
 */
export function drift(skew: bigint, skewScale: bigint, maxFundingVelocity: bigint): bigint {
  return (maxFundingVelocity * clamp((skew * WAD) / skewScale, WAD)) / WAD;
}

/**
 * The rate after `dt` seconds of linear drift clamped to ±maxFundingRate, and its integral over the
 * interval (WAD·seconds).
 * @example
 * rateIntegral(0n, 10n ** 15n, 10n ** 16n, 86_400n); // { newRate: 10n ** 15n, integral: 43200n * 10n ** 15n }
 */
export function rateIntegral(
  rate: bigint,
  ratePerDay: bigint,
  maxFundingRate: bigint,
  dt: bigint,
): { newRate: bigint; integral: bigint } {
  const maxRate = maxFundingRate;
  const start = clamp(rate, maxRate);
  const unclamped = start + (ratePerDay * dt) / DAY;
  if (unclamped > maxRate || unclamped < -maxRate) {
    const newRate = unclamped > maxRate ? maxRate : -maxRate;
    const hit = ((newRate - start) * DAY) / ratePerDay;
    return { newRate, integral: ((start + newRate) * hit) / 2n + newRate * (dt - hit) };
  }
  return { newRate: unclamped, integral: ((start + unclamped) * dt) / 2n };
}

/**
 * Advances the funding rate and index by `dt` seconds at `price` (velocity model).
 * @example
 * accrueFunding({ rate: 0n, index: 0n, skew: 10n * WAD, skewScale: 1000n * WAD,
 *   maxFundingVelocity: WAD / 10n, maxFundingRate: WAD / 100n, price: 3000n * WAD, dt: 86_400n });
 * // { newRate: 10n ** 15n, newIndex: 1_500_000_000_000_000_000n } (1.5 USD per unit)
 */
export function accrueFunding(args: {
  rate: bigint;
  index: bigint;
  skew: bigint;
  skewScale: bigint;
  maxFundingVelocity: bigint;
  maxFundingRate: bigint;
  price: bigint;
  dt: bigint;
}): { newRate: bigint; newIndex: bigint } {
  const { newRate, integral } = rateIntegral(
    args.rate,
    drift(args.skew, args.skewScale, args.maxFundingVelocity),
    args.maxFundingRate,
    args.dt,
  );
  return { newRate, newIndex: args.index + (integral * args.price) / (WAD * DAY) };
}

/**
 * Entry price after adding `sizeDelta` (same sign) to `size` at `entry`, filled at `fill`: the
 * size-weighted average, rounded up for longs and down for shorts.
 * @example
 * averageEntry(WAD, 100n * WAD, WAD, 101n * WAD); // 100_500_000_000_000_000_000n
 */
export function averageEntry(size: bigint, entry: bigint, sizeDelta: bigint, fill: bigint): bigint {
  const oldAbs = abs(size);
  const addAbs = abs(sizeDelta);
  const cost = oldAbs * entry + addAbs * fill;
  const total = oldAbs + addAbs;
  return sizeDelta > 0n ? ceilDiv(cost, total) : cost / total;
}

/**
 * Whether trading `sizeDelta` on a position of `size` adds risk: it opens, grows |size| or flips.
 * @example
 * increasesRisk(5n, -2n); // false
 * increasesRisk(5n, -7n); // true (flip)
 */
export function increasesRisk(size: bigint, sizeDelta: bigint): boolean {
  const next = size + sizeDelta;
  if (size === 0n) return true;
  if (next > 0n !== size > 0n && next !== 0n) return true;
  return abs(next) > abs(size);
}

/** The result of applying a fill to a position (PerpMarket._applyFill). */
export interface AppliedFill {
  newSize: bigint;
  newEntry: bigint;
  /** PnL realised on the reduced part, 36 decimals (> 0: gain), exact. */
  realizedRaw: bigint;
  increasesRisk: boolean;
}

/**
 * Realised PnL, new entry price and whether the fill increases risk, for `sizeDelta` filled at `fill`
 * on a position of `oldSize` at `oldEntry`.
 * @example
 * applyFill(10n * WAD, 3000n * WAD, -4n * WAD, 3100n * WAD);
 * // { newSize: 6n * WAD, newEntry: 3000n * WAD, realizedRaw: 400n * WAD * WAD, increasesRisk: false }
 */
export function applyFill(oldSize: bigint, oldEntry: bigint, sizeDelta: bigint, fill: bigint): AppliedFill {
  const newSize = oldSize + sizeDelta;
  const opposite = oldSize !== 0n && oldSize > 0n !== sizeDelta > 0n;
  let realizedRaw = 0n;
  if (opposite) {
    const closedAbs = min(abs(sizeDelta), abs(oldSize));
    const closed = oldSize > 0n ? closedAbs : -closedAbs;
    realizedRaw = closed * (fill - oldEntry);
  }
  if (newSize === 0n) return { newSize, newEntry: 0n, realizedRaw, increasesRisk: false };
  if (!opposite) {
    return {
      newSize,
      newEntry: averageEntry(oldSize, oldEntry, sizeDelta, fill),
      realizedRaw,
      increasesRisk: true,
    };
  }
  if (newSize > 0n === oldSize > 0n)
    return { newSize, newEntry: oldEntry, realizedRaw, increasesRisk: false };
  return { newSize, newEntry: fill, realizedRaw, increasesRisk: true };
}

/**
 * Quote units moved by settling `netRaw` (36 decimals, > 0: owed to the trader), rounded against the
 * trader: a gain rounds down, a debt up. Returns the signed change of the trader's quote balance.
 * @example
 * settlementQuoteDelta(-1n, 10n ** 30n); // -1n (a 1e-36 USD debt costs one quote unit)
 */
export function settlementQuoteDelta(netRaw: bigint, rawPerQuoteUnit: bigint): bigint {
  if (netRaw > 0n) return netRaw / rawPerQuoteUnit;
  if (netRaw < 0n) return -ceilDiv(-netRaw, rawPerQuoteUnit);
  return 0n;
}

/**
 * A perp position's mark-to-market value, USD WAD rounded down: size·(spot − entry) − size·(index −
 * index at last touch).
 * @example
 * perpValue(10n * WAD, 3015n * WAD, 0n, 3000n * WAD, 0n); // -150n * WAD
 */
export function perpValue(
  size: bigint,
  entryPrice: bigint,
  positionFundingIndex: bigint,
  spot: bigint,
  currentFundingIndex: bigint,
): bigint {
  return divFloor(size * (spot - entryPrice) - size * (currentFundingIndex - positionFundingIndex), WAD);
}

/**
 * A perp position's unsettled funding, USD WAD rounded up (> 0: owed by the account), as
 * `PerpMarket.accruedFunding`.
 * @example
 * accruedFunding(10n * WAD, 0n, 15n * 10n ** 17n); // 15n * WAD
 */
export function accruedFunding(
  size: bigint,
  positionFundingIndex: bigint,
  currentFundingIndex: bigint,
): bigint {
  return divCeil(size * (currentFundingIndex - positionFundingIndex), WAD);
}
