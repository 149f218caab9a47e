/**
 * xmargin SDK: pure math mirroring the contracts (`math/`, `markets/`), chain actions (`actions/`),
 * previews and typed errors. Browser-safe: ethers v6 only, no Node built-ins.
 * @packageDocumentation
 */
export * from "./math";
export {
  ZERO_EXPOSURE,
  exposureOf,
  scenarioPnlsOf,
  movedSpot,
  poolLimit,
  perpExposure,
  perpFundingAt,
  perpQuote,
  perpScenarioPnls,
  applyPerpTrade,
  applyOptionTrade,
  MIN_COUNTED_DELTA,
  countedDelta,
  intrinsicValue,
  modelVolatility,
  optionExposure,
  optionIncreasesRisk,
  optionPoolLimits,
  optionPositionValue,
  optionQuote,
  optionScenarioPnls,
  optionValuation,
  premiumAndFee,
  recountOptionPool,
  seriesStatus,
  settlementPayout,
  settlementPayoutAt,
  optionMark,
} from "./markets";
export type {
  Exposure,
  PerpTradeResult,
  OptionTradeResult,
  OptionValuation,
  PoolLimitUse,
  SeriesStatus,
  OptionMark,
  OptionGreeks,
} from "./markets";
export * from "./state";
export * from "./deployment";
export * from "./client";
export * from "./errors";
export * from "./format";
export * from "./preview";
export * from "./actions";
export { connectContracts, type XMarginContracts } from "./contracts";
