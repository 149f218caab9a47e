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
    /// @param optionSize Signed option contracts in underlying units (0 for perps); feeds the engine's
    /// floor for net short options.
    struct Exposure {
        int256 delta;
        int256 gamma;
        int256 vega;
        int256 value;
        uint256 notional;
        int256 optionSize;
    }

    /// @notice The exposure of `accountId` in `marketId`, valued at `spotPrice` and `volatility` (both
    /// WAD, read once per underlying by the engine and passed in so every market of one underlying
    /// uses the same prices within a health check).
    function exposure(
        uint256 accountId,
        uint256 marketId,
        uint256 spotPrice,
        uint256 volatility
    ) external view returns (Exposure memory);
}
