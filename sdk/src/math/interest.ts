/**
 * Interest on quote debt (CollateralVault): an account whose quote balance is negative owes the pool
 * interest at a governance-set annual rate, simple between payments, charged on its next quote
 * movement and counted by every valuation before that.
 * @packageDocumentation
 */
import { WAD, mulDivUp } from "./fixedPoint";

const YEAR = 365n * 86_400n;

/** The vault's stored interest model (`CollateralVault.quoteInterest`). */
export interface QuoteInterestModel {
  /** Index (WAD) when the rate last changed: interest per unit of debt since the rate was first set. */
  index: bigint;
  /** Annual rate (WAD). */
  rate: bigint;
  /** When `index` was written (seconds). */
  updatedAt: bigint;
  /** The account interest is paid to (the pool's), which pays none on its own debt; 0 before any rate. */
  lenderAccountId: bigint;
}

/**
 * The interest index at `timestamp`, as `CollateralVault` computes it (rounded down).
 * @example
 * interestIndexAt({ index: 0n, rate: 10n ** 17n, updatedAt: 0n, lenderAccountId: 1n }, 365n * 86_400n); // 10n ** 17n
 */
export function interestIndexAt(model: QuoteInterestModel, timestamp: bigint): bigint {
  return model.index + (model.rate * (timestamp - model.updatedAt)) / YEAR;
}

/**
 * Interest a quote debt recorded at `recordedBalance` (< 0) and paid up to `paidIndex` owes at
 * `timestamp`, rounded up against the debtor; zero for a balance ≥ 0 and for the lender.
 * @example
 * const owed = accruedInterestAt(-1_000_000_000n, 0n, model, now, accountId); // quote units
 */
export function accruedInterestAt(
  recordedBalance: bigint,
  paidIndex: bigint,
  model: QuoteInterestModel,
  timestamp: bigint,
  accountId: bigint,
): bigint {
  if (recordedBalance >= 0n || accountId === model.lenderAccountId) return 0n;
  return mulDivUp(-recordedBalance, interestIndexAt(model, timestamp) - paidIndex, WAD);
}
