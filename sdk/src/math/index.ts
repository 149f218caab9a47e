/**
 * Pure bigint math mirroring the contracts, with their rounding. No network access.
 * @packageDocumentation
 */
export * from "./fixedPoint";
export * from "./expLn";
export * from "./blackScholes";
export * from "./portfolio";
export * from "./perp";
export * from "./health";
export * from "./interest";
export * from "./liquidation";
export * from "./liquidationPrice";
