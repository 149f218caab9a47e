/**
 * xmargin SDK: pure math mirroring the contracts (`math/`, `markets/`), chain actions (`actions/`),
 * previews and typed errors. Browser-safe: ethers v6 only, no Node built-ins.
 * @packageDocumentation
 */
export * from "./math";
export { exposureOf, perpExposure, perpFundingAt, perpQuote, applyPerpTrade } from "./markets";
export type { Exposure, PerpTradeResult } from "./markets";
export * from "./state";
export * from "./deployment";
export * from "./client";
export * from "./errors";
export * from "./format";
export * from "./preview";
export * from "./actions";
export { connectContracts, type XMarginContracts } from "./contracts";
