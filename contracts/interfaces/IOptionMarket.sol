// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IMarket} from "./IMarket.sol";
import {IUpdateThrottle} from "./IUpdateThrottle.sol";

/// @title IOptionMarket
/// @notice European, cash-settled calls and puts on listed series (underlying, strike, expiry, type),
/// many series per contract, keyed by `seriesId` (the IMarket `marketId`, sequential from 1). Every
/// trade fills against the LiquidityPool's margin account (`engine.poolAccountId()`) at the
/// Black-Scholes price (volatility feed + the series' skew) plus or minus a spread proportional to
/// vega. The premium is paid up front, so a position is just a signed number of contracts; all
/// contracts of a series are identical and the pool holds −Σ trader positions of each series.
/// After expiry anyone settles the series at the first oracle round at or after expiry, then each
/// position at its intrinsic value.
/// @dev Units: sizes are signed contracts on one unit of the underlying, WAD (long > 0); strike,
/// prices and USD amounts are WAD; volatilities are annualised WAD fractions (0.6e18 = 60%); vega is
/// USD per 1.0 (100 points) of volatility. The quote token moves in its own units,
/// `1 quote unit = 10^(18 − quoteDecimals)` WAD, every conversion rounded against the trader.
interface IOptionMarket is IMarket, IUpdateThrottle {
    /// @notice Trading parameters of one series. Fractions are WAD.
    /// @param spreadFactor k: buys fill at model price + k·vega, sells at model price − k·vega (floored
    /// at 0), i.e. k is a volatility spread (0.01e18 = one vol point each side).
    /// @param fee Fee on the traded notional |sizeDelta|·spot, charged on every trade.
    /// @param insuranceFeeShare Share of every fee paid to the insurance fund; the rest goes to the pool
    /// account (its LPs).
    /// @param maxOpenInterest Cap on each side's open interest in the series (Σ long sizes, Σ |short
    /// sizes|), contracts (WAD).
    struct SeriesParams {
        uint64 spreadFactor;
        uint64 fee;
        uint64 insuranceFeeShare;
        uint128 maxOpenInterest;
    }

    /// @notice A series' terms and state.
    /// @param underlying The engine/oracle underlying (asset id).
    /// @param strike Strike (USD WAD).
    /// @param expiry Expiry timestamp (seconds).
    /// @param isCall True for a call, false for a put.
    /// @param settled Whether the settlement price is recorded.
    /// @param skew Volatility add-on of this series (signed WAD, 0.05e18 = +5 vol points).
    /// @param settlementPrice The settlement price (USD WAD; 0 until settled).
    /// @param longOpenInterest Σ long trader sizes.
    /// @param shortOpenInterest Σ |short trader sizes|; the pool holds shortOpenInterest − longOpenInterest.
    /// @param params The series' trading parameters.
    /// @param vegaPerContract The vega per contract at the series' last trade (USD WAD per 1.0 of
    /// volatility): the rate at which its traders' open interest counts in the underlying's vega sides.
    /// @param deltaPerContract |delta| per contract at the series' last trade, at least 0.2 (WAD): the rate
    /// at which its traders' open interest counts in the underlying's delta sides.
    struct SeriesInfo {
        bytes32 underlying;
        uint256 strike;
        uint256 expiry;
        bool isCall;
        bool settled;
        int256 skew;
        uint256 settlementPrice;
        uint256 longOpenInterest;
        uint256 shortOpenInterest;
        SeriesParams params;
        uint256 vegaPerContract;
        uint256 deltaPerContract;
    }

    /// @notice `seriesId` was never listed.
    error UnknownSeries(uint256 seriesId);
    /// @notice The underlying has no pool vega and delta limits yet (`configureUnderlying`).
    error UnderlyingNotConfigured(bytes32 underlying);
    /// @notice A series with these terms is already listed.
    error SeriesAlreadyListed(uint256 seriesId);
    /// @notice `maxLiveSeries` series are listed and not settled: settle an expired one first.
    error TooManyLiveSeries(uint256 maxLiveSeries);
    /// @notice The expiry is less than one hour or more than two years away (the model's domain), or off
    /// the deployment's expiry grid (e.g. 08:00 UTC daily).
    error InvalidExpiry(uint256 expiry);
    /// @notice The expiry grid's period is 0 or above `MAX_EXPIRY_PERIOD` (a week), or its offset not
    /// below the period.
    error InvalidExpiryGrid(uint256 period, uint256 offset);
    /// @notice A series parameter is outside its hard bounds, below its underlying's listing floor or
    /// moved more than its max step (also a floor above its bound in `configureUnderlying`).
    error SeriesParamOutOfBounds(bytes32 parameter);
    /// @notice The skew is outside ±MAX_SKEW or moved more than MAX_SKEW_STEP or twice the series' spread
    /// factor.
    error SkewOutOfBounds(int256 skew);
    /// @notice A pool limit ratio (`parameter`: "poolVegaRatio" or "poolDeltaRatio") is 0, above its
    /// maximum (MAX_POOL_VEGA_RATIO; 10 for delta, PerpMarket's), or more than doubled; or
    /// ("totalPoolDeltaRatio", the sum it would make) a delta ratio raise would take the sum of every
    /// underlying's delta ratio above 1.
    error PoolRatioOutOfBounds(bytes32 parameter, uint256 ratio);
    /// @notice The series is at or past its expiry: it can no longer be traded, only settled.
    error SeriesExpired(uint256 seriesId, uint256 expiry);
    /// @notice The series is already settled.
    error SeriesAlreadySettled(uint256 seriesId);
    /// @notice The series has not reached its expiry yet.
    error SeriesNotExpired(uint256 seriesId, uint256 expiry);
    /// @notice The series has no settlement price yet (`settleSeries` first).
    error SeriesNotSettled(uint256 seriesId);
    /// @notice `roundId` is not the settlement round (`OracleRouter.getSettlementPrice` answered 0): on
    /// the feed that settles the expiry, its own round is before the time sought (too early), after the
    /// feed's last round as primary, outside the feed's last phase, or the previous round of its phase
    /// is missing or not before the time sought (too late, or unprovable).
    error WrongRoundHint(uint80 roundId);
    /// @notice The trade would take a side of the traders' vega on the underlying (`traderVega`, USD per
    /// 1.0 of volatility: the pool's net vega once the other side has closed) above its limit
    /// (maxPoolVegaRatio · max(0, pool quote balance − max(0, poolPremiumHeld)), USD WAD).
    error PoolVegaLimitExceeded(bytes32 underlying, uint256 poolVega, uint256 limit);
    /// @notice The trade would take a side of the traders' delta on the underlying (see `setPoolDeltaRatio`)
    /// times the oracle price, USD (the pool's delta in notional once the other side has closed), above
    /// its limit: maxPoolDeltaRatio · the pool vega limit's base, USD WAD.
    error PoolOptionDeltaLimitExceeded(bytes32 underlying, uint256 poolDelta, uint256 limit);
    /// @notice The account holds no position in the series.
    error NoPosition(uint256 accountId, uint256 seriesId);

    /// @notice Emitted when a series is listed.
    event SeriesListed(
        uint256 indexed seriesId,
        bytes32 indexed underlying,
        uint256 strike,
        uint256 expiry,
        bool isCall,
        SeriesParams params
    );
    /// @notice Emitted when a series' trading parameters change.
    event SeriesParamsUpdated(uint256 indexed seriesId, SeriesParams params);
    /// @notice Emitted when a series' skew changes.
    event SkewUpdated(uint256 indexed seriesId, int256 skew);
    /// @notice Emitted when an underlying's pool vega limit changes.
    event PoolVegaRatioUpdated(bytes32 indexed underlying, uint256 ratio);
    /// @notice Emitted when an underlying's pool delta limit changes.
    event PoolDeltaRatioUpdated(bytes32 indexed underlying, uint256 ratio);

    /// @notice Emitted when the timelock sets `underlying`'s floors of its series fee and spread factor
    /// (`configureUnderlying`), with the pool limit ratios in force after it (set by the first call only).
    event UnderlyingConfigured(
        bytes32 indexed underlying,
        uint256 vegaRatio,
        uint256 deltaRatio,
        uint256 minFee,
        uint256 minSpreadFactor
    );
    /// @notice Emitted on every trade.
    /// @param sizeDelta Contracts traded (> 0 buy, < 0 sell).
    /// @param premiumPerContract Premium per contract, spread included (USD WAD).
    /// @param newSize The position after the trade.
    /// @param premium Quote units paid (buy) or received (sell), in USD WAD.
    /// @param fee The fee charged, USD WAD (exactly the quote units charged).
    event OptionTraded(
        uint256 indexed accountId,
        uint256 indexed seriesId,
        int256 sizeDelta,
        uint256 premiumPerContract,
        int256 newSize,
        uint256 premium,
        uint256 fee
    );
    /// @notice Emitted when the engine moves `size` contracts (signed, as held by the sender) of a series
    /// from one account to another (liquidations).
    event PositionTransferred(
        uint256 indexed fromAccountId,
        uint256 indexed toAccountId,
        uint256 indexed seriesId,
        int256 size
    );
    /// @notice Emitted when a series' settlement price is recorded.
    /// @param roundId The primary feed's round used (the first at or after expiry).
    /// @param settlementPrice Its answer (USD WAD).
    /// @param updatedAt Its timestamp.
    event SeriesSettled(uint256 indexed seriesId, uint80 roundId, uint256 settlementPrice, uint256 updatedAt);
    /// @notice Emitted when a position is settled and removed.
    /// @param size The position settled.
    /// @param payout Quote paid to the account (> 0) or by it (< 0), in USD WAD.
    event PositionSettled(uint256 indexed accountId, uint256 indexed seriesId, int256 size, int256 payout);

    /// @notice Lists a series on `underlying` (an engine underlying with price and volatility feeds and a
    /// pool vega limit). The expiry must be on the deployment's grid (e.g. 08:00 UTC daily), between one
    /// hour and two years away, and the strike within
    /// the model's domain at the current spot, the fee and spread factor at least the underlying's floors
    /// (`configureUnderlying`), and fewer than `MAX_LIVE_SERIES` series may be live (listed, not settled).
    /// Listing role.
    /// @return seriesId The new series' id (sequential from 1).
    function listSeries(
        bytes32 underlying,
        uint256 strike,
        uint256 expiry,
        bool isCall,
        SeriesParams calldata params
    ) external returns (uint256 seriesId);

    /// @notice Updates a series' trading parameters within hard bounds, its underlying's floors (a series
    /// below a raised floor may only rise toward it) and max steps, at most once per
    /// series per MIN_UPDATE_INTERVAL (UpdateTooSoon("seriesParams", seriesId, next)). Risk-manager role.
    function setSeriesParams(uint256 seriesId, SeriesParams calldata params) external;

    /// @notice Sets a series' volatility add-on: |skew| ≤ MAX_SKEW, moved at most MAX_SKEW_STEP and at
    /// most twice the series' spread factor per update (the step a round trip's spread covers: a step
    /// seen coming is a volatility round on the series), and at most once per series per
    /// MIN_SKEW_UPDATE_INTERVAL (UpdateTooSoon("skew", seriesId, next)). Risk-manager role.
    function setSkew(uint256 seriesId, int256 skew) external;

    /// @notice Sets `underlying`'s first pool vega and delta limits (`setPoolVegaRatio`, `setPoolDeltaRatio`)
    /// within their hard bounds, without steps or throttle: an underlying the engine lists is configured
    /// by it before series can be listed on it. The timelock's (like a perp market's listing): from
    /// nothing no step bounds the values, so each call is made in public, ahead. Once configured, the
    /// limits are the risk role's (stepped, cuts free): a later call checks the two ratios against their
    /// bounds but keeps the limits in force, and `UnderlyingConfigured` reports those. A floors change
    /// scheduled two days ahead restates the day's limits, and executed after the risk role's cut it undid
    /// the cut (review round 76: 0.25 back to 1, then 2 at once).
    /// The same call sets the floors of every series' fee and spread factor on the underlying (at most
    /// their hard bounds, 0.005 and 0.1): the listing role, acting without delay, lists below neither, and the
    /// risk role lowers no series below them (a series already below a raised floor may only rise).
    /// Why: a deep in-the-money series moves like a perp, and one held to settlement pays a single fee
    /// (settlement charges none), so a fee below the price feed's deviation threshold is riskless against
    /// the pool when a round is seen coming (minFee ≥ the threshold, review round 113; a round trip's
    /// 2·minFee until then); the spread does the same for the volatility feed's steps (2·minSpreadFactor
    /// ≥ the largest step a round makes). `docs/decisions.md`, "Oracle lag".
    function configureUnderlying(
        bytes32 underlying,
        uint256 vegaRatio,
        uint256 deltaRatio,
        uint256 minFee,
        uint256 minSpreadFactor
    ) external;

    /// @notice Sets `underlying`'s pool vega limit: |pool net vega| ≤ ratio · max(0, pool quote balance −
    /// max(0, `poolPremiumHeld`)), the balance less the premiums it holds for open options. Reverts with
    /// UnderlyingNotConfigured before `configureUnderlying`; a value may fall freely and at most double,
    /// and rise at most once per underlying per MIN_UPDATE_INTERVAL (UpdateTooSoon("poolVegaRatio",
    /// underlying, next)). Risk-manager role.
    function setPoolVegaRatio(bytes32 underlying, uint256 ratio) external;

    /// @notice Sets `underlying`'s pool delta limit (review round 27): each side of the traders' delta —
    /// Σ over live series of the open interest long (long calls, short puts) or short (short calls,
    /// long puts) the underlying, without the backstop's position, · |delta| per contract at the series'
    /// last trade — times the oracle price must stay within ratio · the vega limit's base where a
    /// risk-increasing trade grows it. Like a second perp market's, this limit adds to the perp markets'.
    /// Bounds (at most 10, PerpMarket's) and steps as `setPoolVegaRatio` (UpdateTooSoon("poolDeltaRatio",
    /// underlying, next)), and a raise may not take the sum of every underlying's delta ratio above 1
    /// (`totalPoolDeltaRatio`; PoolRatioOutOfBounds("totalPoolDeltaRatio", sum)): far out-of-the-money
    /// contracts, counted at 0.2 delta each, pin their short-option floor of the pool on each side.
    /// Series are listed only on configured underlyings. Risk-manager role.
    function setPoolDeltaRatio(bytes32 underlying, uint256 ratio) external;

    /// @notice Buys (`sizeDelta` > 0) or sells (< 0) `|sizeDelta|` contracts of `seriesId` for
    /// `accountId` against the pool. The caller must be the account's owner, an approved operator, or a
    /// trader with a grant (`IAccounts.setTrader`), whose allowance the trade spends by its trading cost
    /// (`IAccounts.authorizeTrade`: NotAuthorized, TraderAllowanceExceeded).
    /// @dev The premium moves between the account and the pool through the engine, the fee is charged
    /// through the engine. Risk-increasing trades (|new size| > |old size|, or a sign flip) revert while
    /// the engine is paused, must respect the open-interest caps and the pool vega and delta limits where
    /// they increase them, and must leave the account at or above its initial requirement; reductions skip
    /// all of these, except that in an account holding other positions on the same underlying a reduction
    /// may not raise the maintenance requirement unless the account meets its initial requirement
    /// afterwards (the engine's `requireRiskReduced`: unwinding one leg of a hedge). No trading at or
    /// after expiry.
    /// @param limitPrice Worst acceptable premium per contract (USD WAD): the maximum for a buy, the
    /// minimum for a sell.
    /// @param deadline Last timestamp at which the trade may execute.
    function trade(
        uint256 accountId,
        uint256 seriesId,
        int256 sizeDelta,
        uint256 limitPrice,
        uint256 deadline
    ) external;

    /// @notice Records the settlement price of an expired series: the answer of the first round at or
    /// after expiry posted by a primary price feed while it was primary (`OracleRouter.
    /// getSettlementPrice`): the feed primary at expiry, even if `configureAsset` replaced it since, up
    /// to its latest round when it was replaced; if it posted nothing from expiry until then, its
    /// successor's first round at or after the swap. `roundIdHint` must be that round in that feed's last
    /// phase (its `updatedAt` ≥ the time sought and the previous round of the same phase has `updatedAt`
    /// below it; `OracleRouter.settlementFeed` names the feed and the time). Anyone may call it.
    function settleSeries(uint256 seriesId, uint80 roundIdHint) external;

    /// @notice Settles an expired series at `roundId`, the first round of a feed phase (after the
    /// proxy moved to a new aggregator), which `settleSeries` cannot prove first on-chain: the round
    /// before it belongs to another aggregator. Governance only (the timelock), after checking off-chain
    /// that the previous phase's last round is before expiry; without it a phase change across an
    /// expiry would leave the series unsettleable for good. Reverts with WrongRoundHint unless `roundId`
    /// opens a phase after the first, no later than the last phase of the feed `settleSeries` reads
    /// (`OracleRouter.settlementFeed`), and is at or after the time sought on it.
    function settleSeriesAtPhaseStart(uint256 seriesId, uint80 roundId) external;

    /// @notice Settles `accountId`'s position in a settled series: pays size·intrinsic value between
    /// the account and the pool (rounded against the account) and removes the position. Anyone.
    /// Reverts with NoPosition for an account without one, the pool's included (its position, the
    /// traders' net, is settled with theirs).
    function settleAccount(uint256 accountId, uint256 seriesId) external;

    /// @notice `settleAccount` for many accounts; accounts without a position are skipped.
    function settleAccounts(uint256[] calldata accountIds, uint256 seriesId) external;

    /// @notice What trading `sizeDelta` now would cost per contract (spread included, USD WAD) and the
    /// fee (USD WAD, exactly the quote units that would be charged). Ignores limits, caps and margin.
    function quoteTrade(
        uint256 seriesId,
        int256 sizeDelta
    ) external view returns (uint256 premiumPerContract, uint256 fee);

    /// @notice A series' terms, state and parameters.
    function series(uint256 seriesId) external view returns (SeriesInfo memory);

    /// @notice Number of series listed (ids run from 1 to seriesCount).
    function seriesCount() external view returns (uint256);

    /// @notice Number of series listed and not yet settled (at most `MAX_LIVE_SERIES`).
    function liveSeriesCount() external view returns (uint256);

    /// @notice The traders' vega on `underlying` per side as tracked for the pool vega limit (USD per 1.0
    /// of volatility): Σ over live series of long (short) open interest, without the backstop account's
    /// position (the LPs' own), · vega per contract at the series' last trade. Each side is the LPs' net
    /// vega once the other side has closed, so each is bounded where a trade grows it.
    function traderVega(bytes32 underlying) external view returns (uint256 longVega, uint256 shortVega);

    /// @notice The traders' delta on `underlying` per side as tracked for the pool delta limit (units of
    /// the underlying, WAD): Σ over live series of the open interest long the underlying (long calls,
    /// short puts) or short it (short calls, long puts), without the backstop account's position, ·
    /// |delta| per contract at the series' last trade, counted at least 0.2: a contract far from the money
    /// still pins the pool's short-option floor. Each side is the LPs' delta once the other side has
    /// closed, or more.
    function traderDelta(bytes32 underlying) external view returns (uint256 longDelta, uint256 shortDelta);

    /// @notice `underlying`'s pool vega and delta limit ratios (0 = not configured) and the floors of its
    /// series fee and spread factor, all WAD (`configureUnderlying`).
    function underlyingLimits(
        bytes32 underlying
    )
        external
        view
        returns (uint256 poolVegaRatio, uint256 poolDeltaRatio, uint256 minFee, uint256 minSpreadFactor);

    /// @notice Quote the pool account holds against options, over all underlyings (quote units, signed):
    /// for each live series the net premium the pool received (buys in, sales out); for each settled
    /// series the net payout it still owes (longs' gains rounded up, shorts' debts down), reduced as
    /// accounts settle. The pool vega limit's base is the pool's quote balance less max(0, this).
    function poolPremiumHeld() external view returns (int256);

    /// @notice The sum of every configured underlying's pool delta ratio (WAD). The risk role's raises
    /// keep it at most 1 (at the default short-option floor, far options then pin at most half of the
    /// pool); the timelock's first values (`configureUnderlying`) add to it unchecked: the deploy scripts
    /// bound them with the floors.
    function totalPoolDeltaRatio() external view returns (uint256);
}
