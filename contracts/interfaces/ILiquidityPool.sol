// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title ILiquidityPool
/// @notice An ERC-4626 vault on the quote token whose margin account is the counterparty to every
/// trade. LPs own shares of that account's mark-to-market equity.
/// The pool is also a standard ERC-4626 vault (deposit, mint, withdraw, redeem, previews).
interface ILiquidityPool {
    /// @notice The pool's margin account id.
    function accountId() external view returns (uint256);

    /// @notice The pool account's unrealised PnL and funding across all markets, USD WAD (negative
    /// when traders are winning).
    function positionValue() external view returns (int256);
}
