/**
 * Which role may call which privileged function. The single source for the deploy modules and the
 * test fixture: every `restricted` function of the protocol appears here, and a function left out
 * stays callable by ADMIN (the timelock) only.
 */
export const Role = {
  ADMIN: 0n,
  RISK_MANAGER: 1n,
  LISTING: 2n,
  GUARDIAN: 3n,
  TREASURY: 4n,
  /**
   * `LiquidationAuction.unwindBackstop`: trades the backstop account's absorbed book back out of the
   * skew. Granted to no one at deployment: the caller chooses the moment and the limit price, so
   * governance gives it to a keeper it trusts (`absorb` itself is open to anyone).
   */
  BACKSTOP: 5n,
} as const;

export type ContractName =
  | "OracleRouter"
  | "CollateralVault"
  | "MarginEngine"
  | "PerpMarket"
  | "OptionMarket"
  | "InsuranceFund"
  | "LiquidityPool"
  | "LiquidationAuction";

/**
 * Left out on purpose, so only the timelock can call them: whatever decides what a price is or what may
 * move balances. `MarginEngine.registerMarket` (a registered market can move any account's quote),
 * `OracleRouter.configureAsset`, `configureVolatilityFeed` and `configureSequencerFeed` (they replace
 * live feeds and bounds), `CollateralVault.listCollateral` and `relistCollateral` (a token valued at any
 * configured asset's price), `OptionMarket.settleSeriesAtPhaseStart` (picks a settlement round),
 * `PerpMarket.setOptionMarket` (the base of every perp market's delta limit), and
 * `MarginEngine.listUnderlying` and `PerpMarket.listMarket`: first risk parameters and a new market's
 * parameters have no step to respect, so a listing could set the LPs' exposure at the hard bounds in one
 * call (review round 22: a second ETH market at 10× the delta limit cost the LPs 991,633 of 1,000,000 on
 * a 10% move). For the same reason `OptionMarket.configureUnderlying`, an underlying's first pool vega
 * and delta limits (review round 49), with the floors of its series' fee and spread factor, and
 * `PerpMarket.setMinRoundTripFee`: the floors below which the risk role cannot take the fees (session 27,
 * review round 65's oracle-lag take). Option series stay with LISTING: their risk is bounded per
 * underlying by those limits, which the risk manager then moves a step at a time.
 */
export const FUNCTION_ROLES: Record<ContractName, Record<string, bigint>> = {
  OracleRouter: {},
  CollateralVault: {
    delistCollateral: Role.LISTING,
    setCollateralWeights: Role.RISK_MANAGER,
    setShockedWeight: Role.RISK_MANAGER,
    setDepositCap: Role.RISK_MANAGER,
    setInterestRateModel: Role.RISK_MANAGER,
    recoverSurplus: Role.TREASURY,
    pause: Role.GUARDIAN,
    unpause: Role.GUARDIAN,
  },
  MarginEngine: {
    setRiskParams: Role.RISK_MANAGER,
    pause: Role.GUARDIAN,
    unpause: Role.GUARDIAN,
  },
  PerpMarket: {
    setMarketParams: Role.RISK_MANAGER,
  },
  OptionMarket: {
    listSeries: Role.LISTING,
    setSeriesParams: Role.RISK_MANAGER,
    setSkew: Role.RISK_MANAGER,
    setPoolVegaRatio: Role.RISK_MANAGER,
    setPoolDeltaRatio: Role.RISK_MANAGER,
  },
  InsuranceFund: {
    withdraw: Role.TREASURY,
  },
  LiquidityPool: {
    setHoldingPeriod: Role.RISK_MANAGER,
    setExitDelay: Role.RISK_MANAGER,
    recoverSurplus: Role.TREASURY,
  },
  LiquidationAuction: {
    setAuctionParams: Role.RISK_MANAGER,
    unwindBackstop: Role.BACKSTOP,
  },
};
