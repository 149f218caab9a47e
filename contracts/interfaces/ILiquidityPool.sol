// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title ILiquidityPool
/// @notice An ERC-4626 vault on the quote token whose margin account is the counterparty to every
/// trade. LPs own shares of that account's mark-to-market equity, less the deficits of insolvent
/// accounts in auction that the insurance fund cannot cover (`uncoveredDeficit`).
/// The pool is also a standard ERC-4626 vault (deposit, mint, withdraw, redeem, previews), with
/// `...WithLimit` variants (ERC-5143's bounds, named so as not to overload ERC-4626's functions) that
/// bound what an action may cost: the share price moves with every
/// trader's PnL, so an LP action waiting in the mempool can land at another price.
interface ILiquidityPool {
    /// @notice The holding period of newly minted shares changed (seconds). Shares already locked
    /// keep the time they were given.
    event HoldingPeriodSet(uint256 holdingPeriod);

    /// @notice `owner` tried to move `amount` shares while only `unlocked` of its balance are free;
    /// the rest unlock at `unlocksAt`.
    error SharesLocked(address owner, uint256 amount, uint256 unlocked, uint256 unlocksAt);

    /// @notice A holding period above `MAX_HOLDING_PERIOD`.
    error HoldingPeriodTooLong(uint256 holdingPeriod);

    /// @notice The share price moved past the caller's limit before the transaction landed: `amount`
    /// (shares minted or burned, assets paid or received) is worse than `limit`.
    error SlippageExceeded(uint256 amount, uint256 limit);

    /// @notice ERC-4626 `deposit` that reverts with SlippageExceeded if it mints fewer than `minShares`.
    function depositWithLimit(
        uint256 assets,
        address receiver,
        uint256 minShares
    ) external returns (uint256 shares);

    /// @notice ERC-4626 `mint` that reverts with SlippageExceeded if it costs more than `maxAssets`.
    function mintWithLimit(
        uint256 shares,
        address receiver,
        uint256 maxAssets
    ) external returns (uint256 assets);

    /// @notice ERC-4626 `withdraw` that reverts with SlippageExceeded if it burns more than `maxShares`.
    function withdrawWithLimit(
        uint256 assets,
        address receiver,
        address owner,
        uint256 maxShares
    ) external returns (uint256 shares);

    /// @notice ERC-4626 `redeem` that reverts with SlippageExceeded if it pays less than `minAssets`.
    function redeemWithLimit(
        uint256 shares,
        address receiver,
        address owner,
        uint256 minAssets
    ) external returns (uint256 assets);

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

    /// @notice Seconds newly minted shares stay locked: an LP cannot redeem (or transfer) shares in the
    /// block it got them, so the share price's foreseeable jumps — an oracle round in the mempool, the
    /// backstop's unwind releasing the pool's close-out deduction — cannot be bought just before and
    /// sold just after.
    function holdingPeriod() external view returns (uint256);

    /// @notice The longest holding period governance can set (7 days).
    function MAX_HOLDING_PERIOD() external view returns (uint256);

    /// @notice Sets the holding period of shares minted from now on; locks already running keep
    /// their time. Governance (`Roles.RISK_MANAGER`) only.
    /// @dev Reverts with HoldingPeriodTooLong above `MAX_HOLDING_PERIOD`.
    function setHoldingPeriod(uint256 holdingPeriod) external;

    /// @notice The lock on `owner`'s recently minted shares: how many, and when they all become free
    /// (seconds; a lock with unlocksAt ≤ now is over). Shares minted while a lock runs join it, at the
    /// share-weighted average of the two ends.
    function sharesLock(address owner) external view returns (uint256 shares, uint256 unlocksAt);

    /// @notice `owner`'s shares free to leave its address now: its balance less a running lock.
    function unlockedShares(address owner) external view returns (uint256);

    /// @notice Whether deposits and withdrawals are paused because the pool's account or the backstop
    /// holds an option series in its last hour or expired and not yet settled
    /// (`IMarket.nearSettlement`): across those moments the
    /// share price jumps by amounts anyone can see coming — the shorts' last hour of time value at
    /// expiry, and the difference between today's spot and the posted settlement round at settlement.
    /// Keepers settle expired series within minutes.
    function settlementPending() external view returns (bool);
}
