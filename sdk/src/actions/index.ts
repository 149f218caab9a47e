/**
 * Actions: the only code that talks to the chain. Each takes the client first.
 * @packageDocumentation
 */
export * from "./createAccount";
export * from "./listAccounts";
export * from "./approveOperator";
export * from "./setTrader";
export * from "./deposit";
export * from "./withdraw";
export * from "./maxWithdrawable";
export * from "./listPerpMarkets";
export * from "./quoteTrade";
export * from "./openPosition";
export * from "./modifyPosition";
export * from "./closePosition";
export * from "./getHealth";
export * from "./getHealthMany";
export * from "./getAccountState";
export * from "./getLiquidationPrice";
export * from "./startAuction";
export * from "./endAuction";
export * from "./listAuctions";
export * from "./quoteBid";
export * from "./bid";
export * from "./absorb";
export * from "./buyBackstopCollateral";
export * from "./listOptionSeries";
export * from "./getOptionSeries";
export * from "./quoteOption";
export * from "./tradeOption";
export * from "./buyOption";
export * from "./sellOption";
export * from "./closeOption";
export * from "./getOptionSettlement";
export * from "./settleOptionSeries";
export * from "./settleOptionPositions";
export * from "./liquidity";
