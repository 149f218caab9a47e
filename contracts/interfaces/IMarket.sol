// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title IMarket
/// @notice What every market contract (perps, options) reports to the margin engine about one
/// position. A market contract hosts many markets, keyed by `marketId`.
interface IMarket {
    /// @notice Risk of one position, all 18-decimal fixed point.
    /// @param delta ∂value/∂spot in underlying units (a perp: its signed size).
    /// @param gamma ∂²value/∂spot² in underlying units per USD (0 for perps).
    /// @param vega ∂value/∂σ in USD per 1.0 (100 points) of annualised volatility (0 for perps).
    /// @param value Mark-to-market value in USD, rounded against the account: a perp's unrealised
    /// PnL plus accrued, unsettled funding; an option's model value (negative when short).
    /// @param notional |size| · spot in USD.
    /// @param optionSize Signed option contracts in underlying units (0 for perps, and for options once
    /// settled); feeds the engine's floor for net short options.
    /// @param vanna ∂delta/∂σ in underlying units per 1.0 of volatility (0 for perps).
    /// @param volga ∂vega/∂σ in USD per 1.0 of volatility squared (0 for perps).
    /// @param totalVolatility σ√τ of the option's model (WAD), the move in log spot over which its Greeks
    /// stay meaningful; 0 when the value is linear in spot (perps; settled options); 1 wei for an
    /// expired, unsettled option, whose kink must be repriced in every scenario, and for one too far
    /// from the money for the model (priced from the nearest strike inside it, whose Greeks are not its).
    /// The engine reprices a position (`scenarioPnls`) instead of using its Greeks when a spot shock
    /// exceeds it.
    /// @param modelVolatility The volatility the option is priced at (feed plus skew, WAD; 0 for perps).
    /// The engine reprices a position when a volatility shock exceeds it.
    /// @param exitDiscount USD (≥ 0, rounded up) by which closing the whole position now would fall
    /// short of `value`: a perp's skew premium on the close (its own price impact included). The engine
    /// deducts it from equity for the initial requirement only, so a premium received on entry (shorting
    /// into a long skew fills above spot) is not margin for new risk or withdrawals, while others moving
    /// the skew can never make an account liquidatable. 0 for options and the pool.
    /// @param timeValue A long option's value beyond its intrinsic value at spot (USD, ≥ 0, rounded
    /// down): what the engine lets it offset of short options' floor. Intrinsic value is a forward's
    /// worth (by parity an in-the-money call is a perp, an out-of-the-money put and cash) and protects
    /// nothing against a gap. 0 for perps, short options and settled series.
    struct Exposure {
        int256 delta;
        int256 gamma;
        int256 vega;
        int256 value;
        uint256 notional;
        int256 optionSize;
        int256 vanna;
        int256 volga;
        uint256 totalVolatility;
        uint256 modelVolatility;
        uint256 exitDiscount;
        uint256 timeValue;
    }

    /// @notice The trade's size delta is zero (also: closing a position that does not exist).
    error ZeroSizeDelta();
    /// @notice `block.timestamp` is past the trade's deadline.
    error DeadlineExpired(uint256 deadline);
    /// @notice The fill (a perp's fill price, an option's premium per contract) is worse than the
    /// trader's limit: above it for a buy, below it for a sell.
    error PriceLimitExceeded(uint256 fillPrice, uint256 limitPrice);
    /// @notice The pool account is the counterparty of every trade; it cannot trade, be settled or
    /// receive transferred positions itself (its position is derived from the traders').
    error PoolAccountCannotTrade();
    /// @notice The trade would take one side's open interest above the market's (or series') cap.
    error OpenInterestCapExceeded(uint256 marketId, bool isLong, uint256 openInterest, uint256 cap);
    /// @notice The engine's guardian paused new risk; only risk-reducing trades are accepted.
    error RiskIncreasePaused();
    /// @notice The underlying has no risk parameters in the engine, or no price (or, for options, no
    /// volatility feed) in the oracle.
    error UnknownUnderlying(bytes32 underlying);
    /// @notice Only the margin engine may move positions between accounts.
    error NotMarginEngine(address caller);
    /// @notice The engine has no pool account yet; deploy the market after `engine.initialize`.
    error PoolAccountNotSet();
    /// @notice `quoteDecimals` is not the quote token's `decimals()` (or exceeds 18).
    error InvalidQuoteDecimals(uint8 decimals);

    /// @notice The exposure of `accountId` in `marketId`, valued at `spotPrice` and `volatility` (both
    /// WAD, read once per underlying by the engine and passed in so every market of one underlying
    /// uses the same prices within a health check).
    function exposure(
        uint256 accountId,
        uint256 marketId,
        uint256 spotPrice,
        uint256 volatility
    ) external view returns (Exposure memory);

    /// @notice The change of the position's value (as `exposure` values it: against the account) in
    /// each scenario of a grid: spot moved by `spotMoves[i]` and the volatility by `volMoves[j]` (USD
    /// and volatility, signed WAD), at index i·volMoves.length + j. The engine asks for it where a
    /// Taylor expansion in the position's Greeks around today's spot would be unreliable (see
    /// `Exposure.totalVolatility`). Every spot move is repriced; a market may apply volatility moves no
    /// larger than half the position's model volatility to second order at the moved spot (OptionMarket).
    /// @dev The moves keep spot ≥ 0 (the engine's shocks are at most 100%).
    function scenarioPnls(
        uint256 accountId,
        uint256 marketId,
        uint256 spotPrice,
        uint256 volatility,
        int256[] calldata spotMoves,
        int256[] calldata volMoves
    ) external view returns (int256[] memory pnls);

    /// @notice The signed size of `accountId` in `marketId` (underlying units, WAD).
    function positionSize(uint256 accountId, uint256 marketId) external view returns (int256);

    /// @notice Whether positions in `marketId` are valued at a price about to jump without a trade: an
    /// option series in its last hour (marked at its bounds) or expired and not yet settled (its payoff
    /// is fixed by a round its value does not read yet). The liquidity pool takes no deposits and pays
    /// no withdrawals while it holds such a market: its share price would move by an amount anyone can
    /// see coming.
    function nearSettlement(uint256 marketId) external view returns (bool);

    /// @notice Trades `sizeDelta` for `accountId` against the pool; buys fill at most `limitPrice`,
    /// sells at least. The caller must be authorised on the account (`IAccounts.isAuthorized`) or hold a
    /// trading grant on it (`IAccounts.setTrader`), whose allowance the trade spends
    /// (`IAccounts.authorizeTrade`: NotAuthorized, TraderAllowanceExceeded).
    function trade(
        uint256 accountId,
        uint256 marketId,
        int256 sizeDelta,
        uint256 limitPrice,
        uint256 deadline
    ) external;

    /// @notice Moves `fraction` (WAD) of `fromAccountId`'s position to `toAccountId` at the position's
    /// entry price: the receiver takes over the slice's unrealised PnL, the sender realises nothing,
    /// no fee is charged and the market's skew is unchanged. Funding is settled for both first.
    /// Engine only (liquidations).
    function transferPosition(
        uint256 fromAccountId,
        uint256 toAccountId,
        uint256 marketId,
        uint256 fraction
    ) external;
}
