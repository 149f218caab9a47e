// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title ILiquidityPool
/// @notice An ERC-4626 vault on the quote token whose margin account is the counterparty to every
/// trade. LPs own shares of that account's mark-to-market equity, less the deficits of insolvent
/// accounts in auction that the insurance fund cannot cover (`uncoveredDeficit`).
/// The pool is also a standard ERC-4626 vault (deposit, mint, withdraw, redeem, previews).
interface ILiquidityPool {
    /// @notice The pool's margin account id.
    function accountId() external view returns (uint256);

    /// @notice The pool account's unrealised PnL and funding across all markets, USD WAD (negative
    /// when traders are winning).
    function positionValue() external view returns (int256);

    /// @notice The backstop account's mark-to-market equity (USD WAD: collateral unhaircut, less its
    /// quote debt with interest, plus its positions' value): the books it absorbed from liquidations
    /// nobody bid on (`ILiquidationAuction.absorb`), which belong to the LPs. Part of `totalAssets`;
    /// below zero it also lowers what LPs can withdraw (`maxWithdraw`).
    function backstopValue() external view returns (int256);

    /// @notice Quote units of the open insolvent auctions' deficits (`ILiquidationAuction.pendingDeficit`)
    /// beyond the insurance fund's balance: the loss the pool will be charged when the books are taken,
    /// already deducted from `totalAssets`.
    function uncoveredDeficit() external view returns (uint256);

    /// @notice Whether deposits and withdrawals are paused because the pool's account or the backstop
    /// holds an option series in its last hour or expired and not yet settled
    /// (`IMarket.nearSettlement`): across those moments the
    /// share price jumps by amounts anyone can see coming — the shorts' last hour of time value at
    /// expiry, and the difference between today's spot and the posted settlement round at settlement.
    /// Keepers settle expired series within minutes.
    function settlementPending() external view returns (bool);
}
