/**
 * The quote-debt interest model the interest tests set, and its math written out (InterestMath) for
 * expected values.
 */
import { expWad } from "../../sdk/src";
import { WAD, wad } from "./system";

export const YEAR = 365n * 86_400n;

/** 2% at no utilisation, 10% at 80%, 150% when every USDC in the vault is lent out. */
export const INTEREST_MODEL = {
  baseRate: wad("0.02"),
  kinkRate: wad("0.10"),
  maxRate: wad("1.5"),
  kinkUtilization: wad("0.8"),
};

/** INTEREST_MODEL's rate at utilisation debt / (debt + cash), written out (InterestMath.borrowRate). */
export function interestRateAt(debt: bigint, cash: bigint): bigint {
  const m = INTEREST_MODEL;
  const u = (debt * WAD) / (debt + cash);
  if (u <= m.kinkUtilization) return m.baseRate + ((m.kinkRate - m.baseRate) * u) / m.kinkUtilization;
  return m.kinkRate + ((m.maxRate - m.kinkRate) * (u - m.kinkUtilization)) / (WAD - m.kinkUtilization);
}

/** index · e^(rate · elapsed / year), rounded down (InterestMath.compound). */
export const compoundIndex = (index: bigint, rate: bigint, elapsed: bigint): bigint =>
  (index * expWad((rate * elapsed) / YEAR)) / WAD;
