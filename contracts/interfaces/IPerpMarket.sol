// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IMarket} from "./IMarket.sol";
import {IUpdateThrottle} from "./IUpdateThrottle.sol";

/// @title IPerpMarket
/// @notice Many perpetual futures markets in one contract, keyed by `marketId` (sequential from 1).
/// Every trade fills against the LiquidityPool's margin account (`engine.poolAccountId()`), which
/// therefore holds the opposite of the traders' book in every market: its size is −skew, where
/// skew = Σ trader sizes. Realised PnL (which carries the skew premium paid or earned at entry and
/// exit), funding and fees settle in the quote token through the margin engine, so value only moves
/// between the trader, the pool and (for the fee share) the insurance fund.
/// @dev Units: sizes are signed, 18 decimals of the underlying (long > 0); prices and USD amounts are
/// WAD. The funding rate is a fraction of the price per day (WAD, 0.001e18 = 0.1%/day); the funding
/// index is the cumulative funding per unit of size in USD (WAD). Amounts in events are USD WAD; the
/// quote token moves in its own units, `1 quote unit = 10^(18 − quoteDecimals)` WAD, every conversion
/// rounded against the trader.
interface IPerpMarket is IMarket, IUpdateThrottle {
    /// @notice Risk and fee parameters of one market. Fractions are WAD (0.001e18 = 0.1%). Field
    /// order packs the struct into three storage slots (funding reads only the first).
    /// @param skewScale Skew (underlying units, WAD) at which the fill premium reaches 100%: fill =
    /// oracle·(1 + (skew + sizeDelta/2)/skewScale). Also normalises the funding velocity.
    /// @param maxFundingVelocity Change of the daily funding rate per day at full skew (|skew| ≥
    /// skewScale): rate' = rate + maxFundingVelocity·clamp(s/skewScale, −1, 1)·dt/1 day, where s is
    /// the skew without the backstop account's position (the LPs' own book: s is minus their delta).
    /// @param maxFundingRate Clamp on |funding rate| per day.
    /// @param makerFee Fee on the notional of the part of a trade that moves the skew toward zero.
    /// @param takerFee Fee on the notional of the rest of the trade.
    /// @param insuranceFeeShare Share of every fee paid to the insurance fund; the rest goes to the pool
    /// account (its LPs).
    /// @param maxPoolDeltaRatio Cap on the LPs' delta in this market relative to `poolDeltaBase` (the
    /// pool account's quote balance less the option premiums it holds), in the worst state the traders
    /// can reach by closing alone: each side of the traders' open interest (without the backstop
    /// account's position, which is the LPs' own) is bounded by maxPoolDeltaRatio·base/oracle where a
    /// trade grows it. Closes are never refused, so one side's traders can always leave the pool
    /// holding the whole other side; a bound on the net would be broken by closes alone. The base is a
    /// cheap proxy for the pool's equity (it leaves out the pool's unrealised PnL and funding, which
    /// would cost a full portfolio valuation per trade); it checks one market at a time, so the pool's
    /// total exposure is bounded by Σ over markets (the option market's delta limit included).
    /// @param maxOpenInterest Cap on the open interest of each side (Σ long sizes, Σ |short sizes|),
    /// underlying units (WAD); at most skewScale.
    struct MarketParams {
        uint128 skewScale;
        uint64 maxFundingVelocity;
        uint64 maxFundingRate;
        uint64 makerFee;
        uint64 takerFee;
        uint64 insuranceFeeShare;
        uint64 maxPoolDeltaRatio;
        uint128 maxOpenInterest;
    }

    /// @notice One trader's position, two storage slots.
    /// @param size Signed size, underlying units (WAD); long > 0.
    /// @param entryPrice Size-weighted average fill price of the open size (WAD).
    /// @param fundingIndex The market's funding index when the position was last touched (its funding
    /// is settled up to that point).
    struct Position {
        int128 size;
        uint128 entryPrice;
        int128 fundingIndex;
    }

    /// @notice A market's parameters and state, as stored (funding accrued up to `lastFundingTime`).
    /// @param underlying The engine/oracle underlying (asset id).
    /// @param params The market's parameters.
    /// @param skew Σ trader sizes = longOpenInterest − shortOpenInterest; the pool holds −skew.
    /// @param longOpenInterest Σ long sizes.
    /// @param shortOpenInterest Σ |short sizes|.
    /// @param fundingRate Funding rate per day at `lastFundingTime` (WAD; > 0: longs pay shorts).
    /// @param fundingIndex Cumulative funding per unit of size (USD WAD) at `lastFundingTime`.
    /// @param lastFundingTime Timestamp of the last accrual.
    /// @param backstopSize The liquidation backstop account's position (part of `skew`; the LPs' own
    /// book, so the pool delta limit leaves it out).
    struct MarketInfo {
        bytes32 underlying;
        MarketParams params;
        int256 skew;
        uint256 longOpenInterest;
        uint256 shortOpenInterest;
        int256 fundingRate;
        int256 fundingIndex;
        uint256 lastFundingTime;
        int256 backstopSize;
        uint256 minRoundTripFee;
    }

    /// @notice `marketId` was never listed.
    error UnknownMarket(uint256 marketId);
    /// @notice `maxMarkets` markets are listed already.
    error MarketLimitReached(uint256 maxMarkets);
    /// @notice A market parameter is outside its hard bounds or moved more than its max step, or the fees
    /// fall below the market's `minRoundTripFee` ("minRoundTripFee", also a floor above its bound).
    error MarketParamOutOfBounds(bytes32 parameter);
    /// @notice The trade would take one side of the traders' open interest (without the backstop's
    /// position; USD WAD at the oracle price: the LPs' delta if the other side closed) above its limit
    /// (maxPoolDeltaRatio · `poolDeltaBase`, USD WAD).
    error PoolDeltaLimitExceeded(uint256 marketId, uint256 poolDelta, uint256 limit);
    /// @notice `optionMarket` is neither zero nor a market registered in the engine that reports
    /// `poolPremiumHeld`.
    error InvalidOptionMarket(address optionMarket);
    /// @notice The skew premium would make the fill price zero or negative (a trade larger than the
    /// skew scale allows; `setMarketParams` keeps skewScale at or above the open |skew|).
    error InvalidFillPrice(int256 fillPrice);
    /// @notice A liquidation slice fraction above 1 (WAD).
    error InvalidFraction(uint256 fraction);

    /// @notice Emitted when a market is listed.
    event MarketListed(uint256 indexed marketId, bytes32 indexed underlying, MarketParams params);
    /// @notice Emitted when a market's parameters change.
    event MarketParamsUpdated(uint256 indexed marketId, MarketParams params);
    /// @notice Emitted when the timelock sets the floor of a market's round-trip fee (at listing too).
    event MinRoundTripFeeSet(uint256 indexed marketId, uint256 minRoundTripFee);
    /// @notice Emitted when the option market whose premiums the delta limit leaves out changes.
    event OptionMarketSet(address optionMarket);
    /// @notice Emitted when funding accrues (at most once per market per block).
    /// @param rate The funding rate per day after the accrual (WAD).
    /// @param index The funding index after the accrual (USD WAD per unit of size).
    event FundingAccrued(uint256 indexed marketId, int256 rate, int256 index);
    /// @notice Emitted on every trade.
    /// @param sizeDelta The traded size (> 0 buy, < 0 sell).
    /// @param fillPrice The fill price, premium included (WAD).
    /// @param newSize The position's size after the trade.
    /// @param entryPrice The position's entry price after the trade (0 when closed).
    /// @param realizedPnl PnL realised on the reduced part, USD WAD (> 0: gain), rounded down.
    /// @param fundingPaid Funding settled, USD WAD (> 0: paid by the account), rounded up. The quote
    /// transfer settles realizedPnl − fundingPaid, computed exactly and rounded once against the trader.
    /// @param fee The fee charged, USD WAD (exactly the quote units charged).
    event PositionModified(
        uint256 indexed accountId,
        uint256 indexed marketId,
        int256 sizeDelta,
        uint256 fillPrice,
        int256 newSize,
        uint256 entryPrice,
        int256 realizedPnl,
        int256 fundingPaid,
        uint256 fee
    );

    /// @notice Emitted when the engine moves a slice of a position between accounts (liquidations).
    /// @param size The size moved (the sender's sign), rounded toward zero.
    /// @param price The sender's entry price, at which the receiver takes the slice.
    /// @param fromFundingPaid Funding the sender settled first, USD WAD (> 0: paid), rounded up.
    /// @param toFundingPaid Funding the receiver settled first, USD WAD (> 0: paid), rounded up.
    /// @param toRealizedPnl PnL the receiver realised where the slice offset its own position, USD WAD.
    event PositionTransferred(
        uint256 indexed fromAccountId,
        uint256 indexed toAccountId,
        uint256 indexed marketId,
        int256 size,
        uint256 price,
        int256 fromFundingPaid,
        int256 toFundingPaid,
        int256 toRealizedPnl
    );

    /// @notice Lists a perpetual market on `underlying` (which the engine must know and the oracle
    /// must price); at most `MAX_MARKETS` in all. Governance only (the timelock): a listing sets the
    /// LPs' exposure (open-interest cap, skew scale, delta limit) in one call, where `setMarketParams`
    /// moves it a step a day. Each market has its own delta limit, so a second market on an underlying
    /// adds to what the LPs may hold of it.
    /// @param minRoundTripFee The floor of makerFee + takerFee (WAD; at most the listed round trip), which
    /// the risk role cannot lower the market's fees below (`setMarketParams`): a round trip cheaper than
    /// the price feed's deviation threshold is riskless against the pool when a round is seen coming.
    /// @return marketId The new market's id (sequential from 1).
    function listMarket(
        bytes32 underlying,
        MarketParams calldata params,
        uint256 minRoundTripFee
    ) external returns (uint256 marketId);

    /// @notice Sets the floor of `marketId`'s makerFee + takerFee (WAD, at most 2·MAX_FEE), without
    /// steps: governance only (the timelock), each change public ahead. A market whose fees are below
    /// a raised floor keeps them, and the risk role may only raise them toward it.
    function setMinRoundTripFee(uint256 marketId, uint256 minRoundTripFee) external;

    /// @notice Sets the option market whose premiums the pool delta limit leaves out of its base
    /// (`poolDeltaBase`); zero for none. It must be registered in the engine and report
    /// `poolPremiumHeld` (InvalidOptionMarket).
    /// Governance only (the timelock): it sets the base of every market's delta limit.
    function setOptionMarket(address optionMarket) external;

    /// @notice The base of the pool delta limit, quote units: the pool account's quote balance less the
    /// premiums it holds for open options (max(0, `IOptionMarket.poolPremiumHeld`) of `optionMarket`),
    /// which pay for the options it wrote and must not back more delta (review round 27: 1,000 deep
    /// calls took ETH's limit from 333 to 834 ETH). The limit is 0 where this is ≤ 0.
    function poolDeltaBase() external view returns (int256);

    /// @notice Updates a market's parameters within hard bounds and max steps. Accrues funding with the
    /// old parameters first (so it needs a valid oracle price) and clamps the current rate to the new
    /// maxFundingRate. At most once per market per MIN_UPDATE_INTERVAL (UpdateTooSoon("marketParams",
    /// marketId, next) otherwise; the first update after listing is free). Refuses a skewScale below
    /// the open |skew| (MarketParamOutOfBounds("skewScale")): fills would turn negative. Refuses a
    /// makerFee + takerFee below the market's `minRoundTripFee` unless the fees were below it already
    /// and do not fall (MarketParamOutOfBounds("minRoundTripFee")). Risk-manager role.
    function setMarketParams(uint256 marketId, MarketParams calldata params) external;

    /// @notice Buys (`sizeDelta` > 0) or sells (< 0) `|sizeDelta|` for `accountId` against the pool:
    /// opens, increases, reduces, flips or closes its position. The caller must be the account's owner
    /// or an approved operator, or a trader with a grant (`IAccounts.setTrader`; e.g. the liquidation
    /// auction, for a bidder that granted it `bidAndClose`), whose allowance the trade spends by its fee
    /// and skew premium (`IAccounts.authorizeTrade`: NotAuthorized, TraderAllowanceExceeded).
    /// @dev Risk-increasing trades (|new size| > |old size|, or a sign flip) revert while the engine is
    /// paused, must respect the open-interest caps and the pool delta limit where they increase them,
    /// and must leave the account at or above its initial requirement. Reducing trades skip all of
    /// these, so they go on while the engine is paused or the account frozen (see the contract's
    /// NatSpec), but for two checks on the account's whole health: next to another position on the
    /// same underlying a reduction may not raise the maintenance requirement unless the account meets
    /// its initial requirement afterwards (`requireRiskReduced`), and one filling worse than the oracle
    /// may not leave the account insolvent nor further below maintenance (`requirePremiumAffordable`).
    /// Those two value the whole account (every price and volatility it needs), so they revert while
    /// any of its feeds fails; any other reduction reads only its own market's price.
    /// @param limitPrice Worst acceptable fill: the maximum for a buy, the minimum for a sell (WAD).
    /// @param deadline Last timestamp at which the trade may execute.
    function trade(
        uint256 accountId,
        uint256 marketId,
        int256 sizeDelta,
        uint256 limitPrice,
        uint256 deadline
    ) external override;

    /// @notice Moves `fraction` (WAD) of `fromAccountId`'s position to `toAccountId` at the sender's
    /// entry price (see IMarket). Funding of both is settled first; the slice is rounded toward zero
    /// (the sender keeps the dust); where it offsets the receiver's own position, the receiver realises
    /// PnL at that price exactly as in a trade. Open-interest caps, the pause and margin checks do not
    /// apply: the engine and the auction check the accounts. Neither account may be the pool's. Engine
    /// only.
    function transferPosition(
        uint256 fromAccountId,
        uint256 toAccountId,
        uint256 marketId,
        uint256 fraction
    ) external override;

    /// @notice The signed size of `accountId` in `marketId`; −skew for the pool account.
    function positionSize(uint256 accountId, uint256 marketId) external view override returns (int256);

    /// @notice Closes the whole position of `accountId` in `marketId`: `trade(−size)`.
    function closePosition(
        uint256 accountId,
        uint256 marketId,
        uint256 limitPrice,
        uint256 deadline
    ) external;

    /// @notice Accrues funding of `marketId` up to now at the current oracle price. Anyone may call it
    /// (keepers keep the index fresh in quiet markets).
    function accrueFunding(uint256 marketId) external;

    /// @notice The position of `accountId` in `marketId`. For the pool account: size −skew, with
    /// entryPrice and fundingIndex 0 (its value is the mirror of the traders' book, see `exposure`).
    function position(uint256 accountId, uint256 marketId) external view returns (Position memory);

    /// @notice A market's parameters and stored state.
    function market(uint256 marketId) external view returns (MarketInfo memory);

    /// @notice Number of markets listed (ids run from 1 to marketCount).
    function marketCount() external view returns (uint256);

    /// @notice The funding rate per day if funding were accrued now.
    function currentFundingRate(uint256 marketId) external view returns (int256);

    /// @notice The funding index if funding were accrued now, at the current oracle price.
    function currentFundingIndex(uint256 marketId) external view returns (int256);

    /// @notice What trading `sizeDelta` now would cost: the fill price (premium included) and the fee
    /// (USD WAD, exactly the quote units that would be charged). Ignores limits, caps and margin.
    function quoteTrade(
        uint256 marketId,
        int256 sizeDelta
    ) external view returns (uint256 fillPrice, uint256 fee);

    /// @notice The unsettled funding of `accountId` in `marketId` at the current oracle price, USD WAD
    /// (> 0: owed by the account), rounded up as a trade's `fundingPaid` is. For keepers and frontends.
    function accruedFunding(uint256 accountId, uint256 marketId) external view returns (int256);
}
