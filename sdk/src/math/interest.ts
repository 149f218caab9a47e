/**
 * Interest on quote debt (CollateralVault, InterestMath.sol): an account whose quote balance is
 * negative owes the pool interest at an annual rate set by utilisation and compounded continuously
 * into an index, charged on its next quote movement and counted by every valuation before that.
 * @packageDocumentation
 */
import { WAD, mulDiv, mulDivUp } from "./fixedPoint";
import { expWad } from "./expLn";

const YEAR = 365n * 86_400n;
/** InterestMath.MAX_EXPONENT: the exponent is capped at 100 (e^100 ≈ 2.7e43). */
const MAX_EXPONENT = 100n * WAD;

/** The vault's interest state (`CollateralVault.quoteInterest`). */
export interface QuoteInterestState {
  /** Index (WAD, 1e18 at deployment) as of `updatedAt`. */
  index: bigint;
  /** Annual rate (WAD) in force since `updatedAt`, set from utilisation (zero while nothing is owed). */
  rate: bigint;
  /** When the index and the rate were written (seconds). */
  updatedAt: bigint;
  /** The account interest is paid to (the pool's), which pays none on its own debt; 0 before a model. */
  lenderAccountId: bigint;
}

/** ICollateralVault.InterestRateModel (WAD). */
export interface InterestRateModel {
  baseRate: bigint;
  kinkRate: bigint;
  maxRate: bigint;
  kinkUtilization: bigint;
}

/**
 * `index · e^(rate · elapsed / year)`, rounded down as InterestMath.compound does.
 * @example
 * compound(10n ** 18n, 10n ** 17n, 365n * 86_400n); // ≈ 1.10517e18 (e^0.1)
 */
export function compound(index: bigint, rate: bigint, elapsed: bigint): bigint {
  const exponent = (rate * elapsed) / YEAR;
  return mulDiv(index, expWad(exponent > MAX_EXPONENT ? MAX_EXPONENT : exponent), WAD);
}

/**
 * The annual rate at utilisation debt / (debt + cash), as InterestMath.borrowRate computes it. The vault
 * passes what the debts owe at the index it records, settled or not (`quoteDebt` + `interestReceivable`).
 * @example
 * borrowRate({ baseRate: 0n, kinkRate: 10n ** 17n, maxRate: 10n ** 18n, kinkUtilization: 8n * 10n ** 17n }, 1n, 0n); // 1e18
 */
export function borrowRate(model: InterestRateModel, debt: bigint, cash: bigint): bigint {
  const utilisation = debt === 0n ? 0n : mulDiv(debt, WAD, debt + cash);
  const kink = model.kinkUtilization;
  if (utilisation <= kink) {
    if (kink === 0n) return model.baseRate;
    return model.baseRate + mulDiv(model.kinkRate - model.baseRate, utilisation, kink);
  }
  return model.kinkRate + mulDiv(model.maxRate - model.kinkRate, utilisation - kink, WAD - kink);
}

/**
 * The interest index at `timestamp` (no later checkpoint assumed), as the vault computes it.
 */
export function interestIndexAt(state: QuoteInterestState, timestamp: bigint): bigint {
  if (state.rate === 0n || timestamp <= state.updatedAt) return state.index;
  return compound(state.index, state.rate, timestamp - state.updatedAt);
}

/**
 * Interest a quote debt recorded at `recordedBalance` (< 0) and paid up to `paidIndex` owes at
 * `timestamp`: debt · index / paidIndex − debt, rounded up against the debtor; zero for a balance ≥ 0
 * and for the lender.
 * @example
 * const owed = accruedInterestAt(-1_000_000_000n, paidIndex, state, now, accountId); // quote units
 */
export function accruedInterestAt(
  recordedBalance: bigint,
  paidIndex: bigint,
  state: QuoteInterestState,
  timestamp: bigint,
  accountId: bigint,
): bigint {
  if (recordedBalance >= 0n || accountId === state.lenderAccountId) return 0n;
  const debt = -recordedBalance;
  return mulDivUp(debt, interestIndexAt(state, timestamp), paidIndex) - debt;
}
