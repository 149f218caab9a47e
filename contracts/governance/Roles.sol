// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title Roles
/// @notice Role ids used with the protocol's OpenZeppelin `AccessManager`.
/// @dev `ADMIN_ROLE` (0) is held by the `TimelockController`; it grants the roles below and sets
/// their execution delays. It alone (no role below) configures price, volatility and sequencer feeds,
/// lists collateral tokens, registers market contracts, lists underlyings and perp markets, sets an
/// option underlying's first limits and floors and a perp market's round-trip fee floor, and settles a
/// series at a feed phase start: each of those decides what a price is or what may move balances, or
/// sets parameters no step bounds, so each waits for the timelock. The other `restricted` functions
/// are mapped to the roles below in `deploy/roles.ts`, which uses the same ids.
library Roles {
    /// @notice Changes risk parameters (weights, caps, shocks, fees), each within hard bounds and a
    /// maximum step per update. Meant to be granted with an execution delay.
    uint64 internal constant RISK_MANAGER = 1;
    /// @notice Lists option series on underlyings the timelock has configured, and stops deposits of
    /// a collateral token (delisting).
    uint64 internal constant LISTING = 2;
    /// @notice Pauses and unpauses new risk (withdrawals, opening trades). Never deposits,
    /// risk-reducing trades or liquidations.
    uint64 internal constant GUARDIAN = 3;
    /// @notice Moves insurance-fund money out; held by the timelock.
    uint64 internal constant TREASURY = 4;
    /// @notice Unwinds the liquidation backstop's absorbed book (`LiquidationAuction.unwindBackstop`)
    /// at a limit price of the caller's choosing; granted to no one at deployment.
    uint64 internal constant BACKSTOP = 5;
}
