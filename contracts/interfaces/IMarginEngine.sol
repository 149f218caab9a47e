// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title IMarginEngine
/// @notice The clearinghouse: the one contract that sees every position of an account, computes
/// its health and enforces it.
interface IMarginEngine {
    /// @notice An account's health, all USD WAD.
    /// @param equityInitial Collateral at initial weights + unrealised PnL (incl. funding).
    /// @param equityMaintenance Collateral at maintenance weights + unrealised PnL.
    /// @param initialRequirement IM.
    /// @param maintenanceRequirement MM.
    /// @param healthRatio equityMaintenance / MM (WAD); type(uint256).max when MM is 0; 0 when
    /// equityMaintenance ≤ 0.
    struct Health {
        int256 equityInitial;
        int256 equityMaintenance;
        uint256 initialRequirement;
        uint256 maintenanceRequirement;
        uint256 healthRatio;
    }

    /// @notice After the action the account's equity_IM would be below its IM.
    error InsufficientMargin(uint256 accountId, int256 equityInitial, uint256 initialRequirement);

    /// @notice Reverts with InsufficientMargin unless equity_IM ≥ IM. The vault calls this after
    /// debiting a withdrawal, before sending tokens.
    function requireInitialMargin(uint256 accountId) external view;

    /// @notice The account's health breakdown.
    function health(uint256 accountId) external view returns (Health memory);
}
