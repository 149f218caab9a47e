// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title Roles
/// @notice Role ids used with the protocol's OpenZeppelin `AccessManager`.
/// @dev `ADMIN_ROLE` (0) is held by the `TimelockController`; it grants the roles below and sets
/// their execution delays. Every function guarded by `restricted` is mapped to one of these roles
/// in the deployment (see `deploy/` and `test/shared/fixture.ts`).
library Roles {
    /// @notice Changes risk parameters (weights, caps, shocks, fees), each within hard bounds and a
    /// maximum step per update. Meant to be granted with an execution delay.
    uint64 internal constant RISK_MANAGER = 1;
    /// @notice Lists collateral tokens, oracle assets, markets and option series.
    uint64 internal constant LISTING = 2;
    /// @notice Pauses and unpauses new risk (withdrawals, opening trades). Never deposits,
    /// risk-reducing trades or liquidations.
    uint64 internal constant GUARDIAN = 3;
    /// @notice Moves insurance-fund money out; held by the timelock.
    uint64 internal constant TREASURY = 4;
}
