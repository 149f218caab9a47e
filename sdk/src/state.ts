/**
 * Plain snapshots of what the contracts hold, read once (at one block) and then evaluated with the
 * pure math: an account's collateral, positions, the markets they are in, prices, volatilities and
 * risk parameters. Keys are lower-case hex: token and market addresses, oracle asset ids (bytes32).
 * @packageDocumentation
 */
import type { RiskParams } from "./math/portfolio";
import type { PerpMarketParams } from "./math/perp";
import type { QuoteInterestState } from "./math/interest";
import type { XMarginError } from "./errors";

/** An account's health, all USD WAD (IMarginEngine.Health). */
export interface Health {
  /**
   * Collateral at initial weights (plus each shocked token's credit: `HealthGroup.credit`) + Σ position
   * values.
   */
  equityInitial: bigint;
  /** Collateral at maintenance weights (plus the same credits) + Σ position values. */
  equityMaintenance: bigint;
  /** Collateral without haircuts + Σ position values. */
  equityMark: bigint;
  /** IM. */
  initialRequirement: bigint;
  /** MM. */
  maintenanceRequirement: bigint;
  /**
   * equityMaintenance / MM (WAD); 2^256 − 1 when MM is 0 (`formatHealthRatio` shows it as "∞"); 0 when
   * equityMaintenance ≤ 0.
   */
  healthRatio: bigint;
  /** Σ |position notional|. */
  grossNotional: bigint;
  /**
   * A held underlying's volatility feed failed its checks: its group is margined at the floor shocks,
   * so both requirements are lower bounds. Liquidations act on them; every check on new risk reverts.
   */
  volatilityUnavailable: boolean;
}

/** One collateral balance of an account with the token's configuration. */
export interface CollateralState {
  /** Token address, lower case. */
  token: string;
  /**
   * Token units at the snapshot's timestamp; negative only for the quote token (a debt), which then
   * includes the interest accrued since it last paid: what the engine values and a repayment must cover.
   */
  balance: bigint;
  decimals: number;
  /** The oracle asset pricing one whole token (for an ERC-4626 share: its underlying). */
  oracleAsset: string;
  initialWeight: bigint;
  maintenanceWeight: bigint;
  /**
   * The weight the mark counts at in maintenance while a group of the account's positions shocks the
   * token, and at initial that less the weights' gap (CollateralVault.setShockedWeight); absent or 0: its
   * weights.
   */
  shockedWeight?: bigint;
  /** Whether deposits are accepted (a delisted token still counts as collateral). */
  listed: boolean;
  /** ERC-4626 shares only: `convertToAssets(10^decimals)` and the asset's decimals. */
  erc4626?: { assetsPerShare: bigint; assetDecimals: number };
  /**
   * The quote token in debt only: the balance as the vault records it and the interest index it has
   * paid up to, from which `balance` follows at any timestamp (`accruedInterestAt`).
   */
  debt?: { recordedBalance: bigint; paidIndex: bigint };
}

/** The traders' two sides of one Greek on an underlying, backstop left out (OptionMarket.Sides). */
export interface OptionSides {
  long: bigint;
  short: bigint;
}

/**
 * The option market's pool limits on one underlying: the traders' vega sides (USD per 1.0 of volatility,
 * `traderVega`) and delta sides (units of the underlying, `traderDelta`), each side no more than a ratio
 * (WAD) of the pool's quote balance less the premiums it holds, the delta side at the oracle price.
 */
export interface OptionPoolState {
  vega: OptionSides;
  delta: OptionSides;
  maxPoolVegaRatio: bigint;
  maxPoolDeltaRatio: bigint;
}

/** Volatility and risk parameters of one underlying. */
export interface UnderlyingState {
  /** Annualised volatility (WAD) from the oracle's volatility feed; 0 while the feed fails its checks. */
  volatility: bigint;
  /**
   * The volatility feed's error (e.g. `StalePrice`) while it fails its checks. The engine's health then
   * margins a group of perps at its floor shocks (`Health.volatilityUnavailable`); every check on new
   * risk, and any valuation of a live option on the underlying, reverts with this error.
   */
  volatilityError?: XMarginError;
  risk: RiskParams;
  /**
   * The option market's pool limits on the underlying: read for the underlyings of option series in the
   * snapshot; without them a preview does not predict `PoolVegaLimitExceeded` or
   * `PoolOptionDeltaLimitExceeded`.
   */
  optionPool?: OptionPoolState;
}

/** A perp position (IPerpMarket.Position). */
export interface PerpPositionState {
  kind: "perp";
  /** The PerpMarket contract, lower case. */
  market: string;
  marketId: bigint;
  /** Signed size, underlying units (WAD); long > 0. */
  size: bigint;
  /** Size-weighted average fill price of the open size (USD WAD). */
  entryPrice: bigint;
  /** The market's funding index when the position was last touched (USD WAD per unit of size). */
  fundingIndex: bigint;
}

/** A perp market's parameters and stored state (IPerpMarket.MarketInfo). */
export interface PerpMarketState {
  kind: "perp";
  market: string;
  marketId: bigint;
  /** Oracle asset id of the underlying, lower case. */
  underlying: string;
  /** Fees, skew scale, funding and pool-limit parameters (WAD). */
  params: PerpMarketParams;
  /** Σ long sizes, underlying units (WAD). */
  longOpenInterest: bigint;
  /** Σ |short sizes|, underlying units (WAD). */
  shortOpenInterest: bigint;
  /** Funding rate per day at `lastFundingTime` (WAD: 10^16 is 1% a day; > 0: longs pay shorts). */
  fundingRate: bigint;
  /** Cumulative funding per unit of size (USD WAD) at `lastFundingTime`. */
  fundingIndex: bigint;
  /** Timestamp of the last funding accrual, seconds. */
  lastFundingTime: bigint;
  /** The liquidation backstop account's position: the LPs' own, so the pool delta limit leaves it out. */
  backstopSize: bigint;
}

/** Trading parameters of one option series (IOptionMarket.SeriesParams), WAD. */
export interface OptionSeriesParams {
  /** k: buys fill at model price + k·vega, sells at model price − k·vega (a volatility spread). */
  spreadFactor: bigint;
  /** Fee on the traded notional |sizeDelta|·spot. */
  fee: bigint;
  /** Share of every fee paid to the insurance fund. */
  insuranceFeeShare: bigint;
  /** Cap on each side's open interest, contracts. */
  maxOpenInterest: bigint;
}

/** A position in one option series: signed contracts (long > 0). The premium is paid up front. */
export interface OptionPositionState {
  kind: "option";
  /** The OptionMarket contract, lower case. */
  market: string;
  /** The series id. */
  marketId: bigint;
  size: bigint;
}

/** One option series' terms and state (IOptionMarket.SeriesInfo). */
export interface OptionMarketState {
  kind: "option";
  market: string;
  /** The series id. */
  marketId: bigint;
  /** Oracle asset id of the underlying, lower case. */
  underlying: string;
  /** Strike price (USD WAD). */
  strike: bigint;
  /** Expiry timestamp, seconds. */
  expiry: bigint;
  /** A call (true) or a put. */
  isCall: boolean;
  /** Whether the settlement price is recorded. */
  settled: boolean;
  /** Volatility add-on of the series (signed WAD). */
  skew: bigint;
  /** The settlement price (USD WAD; 0 until settled). */
  settlementPrice: bigint;
  /** Σ long positions, contracts (WAD). */
  longOpenInterest: bigint;
  /** Σ |short positions|, contracts (WAD). */
  shortOpenInterest: bigint;
  /** Spread factor, fee, insurance share and open-interest cap (WAD). */
  params: OptionSeriesParams;
  /** The liquidation backstop account's position: the LPs' own, so the pool limits leave it out. */
  backstopSize: bigint;
  /**
   * Vega per contract at the series' last trade (USD WAD per 1.0 of volatility): the rate at which its
   * traders' open interest counts in the underlying's `OptionPoolState` vega sides. Not a Greek to show:
   * it stays the last trade's after expiry, until settlement sets it to 0 (a UI shows `optionMark`).
   */
  vegaPerContract: bigint;
  /** |delta| per contract at the series' last trade (WAD, at least `MIN_COUNTED_DELTA`), likewise. */
  deltaPerContract: bigint;
}

/**
 * A position in any market type. A market type adds its variant here together with a model in
 * `markets/` and a reader in `actions/internal/readers.ts`.
 */
export type PositionState = PerpPositionState | OptionPositionState;

/** A market's state, one variant per market type (see PositionState). */
export type MarketState = PerpMarketState | OptionMarketState;

/** Protocol-wide state a preview needs to predict reverts. */
export interface ProtocolState {
  /** The LiquidityPool's margin account: the counterparty of every trade. */
  poolAccountId: bigint;
  /** The liquidation auction's backstop account (its positions are the LPs' own). */
  backstopAccountId: bigint;
  /**
   * The protocol's accounts (the pool's, the liquidation backstop's, the insurance fund's), which take
   * no deposit but the quote token (`ProtocolAccountCollateral`).
   */
  quoteOnlyAccountIds: bigint[];
  /** The engine's guardian pause on new risk. */
  paused: boolean;
  /**
   * The base of the pool's delta and vega limits (quote units, `PerpMarket.poolDeltaBase`): the pool
   * account's quote balance less the premiums it holds for open options.
   */
  poolDeltaBase: bigint;
  /** One quote unit in USD WAD: 10^(18 − quote decimals). */
  quoteUnit: bigint;
  /** How quote debts accrue interest (`CollateralVault.quoteInterest`). */
  quoteInterest: QuoteInterestState;
}

/** Everything the pure math needs to evaluate one account. */
export interface AccountState {
  accountId: bigint;
  /** The block the state was read at, and its timestamp (funding accrues to it). */
  blockNumber: number;
  timestamp: bigint;
  /** The quote (settlement) token, lower case; always present in `collateral`. */
  quoteToken: string;
  /** Every token with a nonzero balance, plus the quote token and any token an action needs. */
  collateral: CollateralState[];
  /** Oracle prices (WAD) by asset id: every underlying and every collateral's oracle asset. */
  prices: Record<string, bigint>;
  /**
   * The errors of the price feeds that failed at the snapshot's block (e.g. `StalePrice`,
   * `SequencerDown`), by asset id; those assets are missing from `prices`. `accountHealth` then throws
   * the one `engine.health` reverts with (`priceFailure`), and so does every preview that needs a
   * price; deposits preview (the vault reads no price for them but a quote cure past the cap), and so
   * do withdrawals of an account with nothing at risk (no position, no quote debt, no auction), which
   * the vault does not margin-check.
   */
  priceErrors?: Record<string, XMarginError>;
  /** Every underlying of a held (or previewed) market. */
  underlyings: Record<string, UnderlyingState>;
  /** One entry per market the engine says the account holds. */
  positions: PositionState[];
  /** Markets by `marketKey(market, marketId)`: every held market and any an action trades. */
  markets: Record<string, MarketState>;
  /** Whether a liquidation auction freezes the account. */
  frozen: boolean;
  /** CROSS accounts may hold up to 16 markets, ISOLATED accounts one. */
  marginMode: "cross" | "isolated";
  protocol: ProtocolState;
}

/**
 * The key of a market in `AccountState.markets`.
 * @example
 * marketKey("0xAbC…", 1n); // "0xabc…:1"
 */
export function marketKey(market: string, marketId: bigint): string {
  return `${market.toLowerCase()}:${marketId}`;
}
