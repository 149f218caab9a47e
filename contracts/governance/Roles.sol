// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title Roles
/// @notice Role ids used with the protocol's OpenZeppelin `AccessManager`.
/// @dev `ADMIN_ROLE` (0) is held by the `TimelockController`; it grants the roles below and sets
/// their execution delays. It alone (no role below) configures price, volatility and sequencer feeds,
/// lists collateral tokens, registers market contracts and settles a series at a feed phase start:
/// each of those decides what a price is or what may move balances, so each waits for the timelock.
/// The other `restricted` functions are mapped to the roles below in `deploy/roles.ts`.
library Roles {
    /// @notice Changes risk parameters (weights, caps, shocks, fees), each within hard bounds and a
    /// maximum step per update. Meant to be granted with an execution delay.
    uint64 internal constant RISK_MANAGER = 1;
    /// @notice Lists underlyings, perpetual markets and option series on assets the timelock has
    /// configured, and stops deposits of a collateral token (delisting).
    uint64 internal constant LISTING = 2;
    /// @notice Pauses and unpauses new risk (withdrawals, opening trades). Never deposits,
    /// risk-reducing trades or liquidations.
    uint64 internal constant GUARDIAN = 3;
    /// @notice Moves insurance-fund money out; held by the timelock.
    uint64 internal constant TREASURY = 4;
}
