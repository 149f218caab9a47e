// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title IUpdateThrottle
/// @notice Governance parameters change at most once per interval. Every risk setter bounds how far
/// one update may move a parameter from its current value; the interval bounds how often, so the
/// steps cannot be chained in one block (seven `setRiskParams` calls took an underlying's MM shock
/// floor from 5% to 40% at once). A "parameter set" is what one setter writes for one id: the risk
/// parameters of an underlying, the weights (or deposit cap) of a token, the parameters (or skew) of
/// a market or series. Listing (the first configuration) is not throttled and does not start the
/// interval; risk-reducing changes that the setter lets move freely (deposit caps and the option pool's
/// vega and delta ratios falling, the LP holding period and exit delay rising) are not throttled either.
/// A token's shocked weight is in its weights' set: `setShockedWeight` and `setCollateralWeights` share
/// one clock per token.
interface IUpdateThrottle {
    /// @notice `parameterSet` of `id` changed less than its minimum interval ago; it may change again
    /// from `nextAllowedAt` (a timestamp, seconds).
    /// @param parameterSet The set's name as a bytes32 string, e.g. "riskParams", "collateralWeights".
    /// @param id What the set belongs to: the underlying, the token address or the market/series id
    /// (left-padded), 0 for a contract-wide set.
    /// @param nextAllowedAt The first timestamp at which the update succeeds.
    error UpdateTooSoon(bytes32 parameterSet, bytes32 id, uint256 nextAllowedAt);

    /// @notice The first timestamp at which `parameterSet` of `id` may change again; 0 (or a past
    /// timestamp) when it may change now.
    /// @param parameterSet The set's name as a bytes32 string (see `UpdateTooSoon`).
    /// @param id The underlying, token address or market/series id, left-padded to 32 bytes.
    /// @return The timestamp, in seconds.
    function nextUpdateAt(bytes32 parameterSet, bytes32 id) external view returns (uint256);
}
