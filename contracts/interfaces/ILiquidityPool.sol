// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IUpdateThrottle} from "./IUpdateThrottle.sol";

/// @title ILiquidityPool
/// @notice An ERC-4626 vault on the quote token whose margin account is the counterparty to every
/// trade. LPs own shares of that account's mark-to-market equity, less the deficits of insolvent
/// accounts in auction that the insurance fund cannot cover (`uncoveredDeficit`).
/// The pool is also a standard ERC-4626 vault (deposit, mint, withdraw, redeem, previews), with
/// `...WithLimit` variants (ERC-5143's bounds, named so as not to overload ERC-4626's functions) that
/// bound what an action may cost: the share price moves with every
/// trader's PnL, so an LP action waiting in the mempool can land at another price.
interface ILiquidityPool is IUpdateThrottle {
    /// @notice The holding period of newly minted shares changed (seconds). Shares already locked
    /// keep the time they were given.
    event HoldingPeriodSet(uint256 holdingPeriod);

    /// @notice `owner` tried to move `amount` shares while only `unlocked` of its balance are free;
    /// the rest unlock at `unlocksAt`.
    error SharesLocked(address owner, uint256 amount, uint256 unlocked, uint256 unlocksAt);

    /// @notice A holding period above `MAX_HOLDING_PERIOD`.
    error HoldingPeriodTooLong(uint256 holdingPeriod);

    /// @notice Governance sent `amount` of `token` that was transferred to the pool's address (the pool
    /// keeps its assets in its margin account, never here) to `to`.
    event SurplusRecovered(address indexed token, address indexed to, uint256 amount);

    /// @notice The delay between an LP's redeem request and its claim changed (seconds). Requests
    /// already made keep the time they were given.
    event ExitDelaySet(uint256 exitDelay);

    /// @notice `owner` moved `shares` out of its balance to redeem them, worth `assets` (quote units)
    /// at this share price; it can claim them from `claimableAt` for `CLAIM_WINDOW`.
    event RedeemRequested(address indexed owner, uint256 shares, uint256 assets, uint256 claimableAt);

    /// @notice `owner` cancelled its request: `shares` came back, `burned` (what the shares gained since
    /// the request) stayed with the LPs.
    event RedeemRequestCancelled(address indexed owner, uint256 shares, uint256 burned);

    /// @notice An exit delay above `MAX_EXIT_DELAY`.
    error ExitDelayTooLong(uint256 exitDelay);

    /// @notice A cut of `parameter` ("holdingPeriod" or "exitDelay", a bytes32 string) from `current`
    /// to `requested` seconds beyond one step: a cut may at most halve the value, or take it to 0 from
    /// `MAX_CUT_TO_ZERO` or less (and is throttled to one a day: `IUpdateThrottle.UpdateTooSoon`).
    error ProtectionCutTooLarge(bytes32 parameter, uint256 current, uint256 requested);

    /// @notice `withdraw` or `redeem` while LPs exit through a request (`exitDelay` > 0): call
    /// `requestRedeem`, then `claimRedeem` once the delay has passed.
    error RedeemRequestRequired(uint256 exitDelay);

    /// @notice `owner` already has a request; claim or cancel it first.
    error RedeemRequestPending(address owner, uint256 claimableAt);

    /// @notice `owner` has no redeem request.
    error NoRedeemRequest(address owner);

    /// @notice A request of shares worth nothing now (0 shares, dust, or a pool under water: the claim
    /// would pay nothing at any later price), a claim of 0 shares, or of more than the `requested` ones.
    error InvalidRedeemShares(uint256 shares, uint256 requested);

    /// @notice A claim outside the request's window [claimableAt, claimableUntil].
    error NotClaimable(address owner, uint256 claimableAt, uint256 claimableUntil);

    /// @notice A claim of `assets` while the pool can pay out only `available` now (its free margin,
    /// 0 while the vault is paused or `settlementPending`).
    error ClaimUnavailable(uint256 assets, uint256 available);

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

    /// @notice Moves `shares` of the caller's unlocked balance into the pool to redeem them after
    /// `exitDelay`; returns their worth now (quote units, rounded down), the most the claim will pay.
    /// @dev Reverts with InvalidRedeemShares for shares worth nothing, RedeemRequestPending while the caller has a
    /// request, SharesLocked beyond its unlocked shares (ERC20InsufficientBalance beyond its balance), and
    /// with the feed's error while the share price cannot be read.
    function requestRedeem(uint256 shares) external returns (uint256 assets);

    /// @notice Redeems `shares` of the caller's matured request (all of it or a part) to `receiver`
    /// at the lower of the share price at the request and now: an exit cannot dodge a loss that lands
    /// between the two. Reverts with NotClaimable outside [claimableAt, claimableAt + CLAIM_WINDOW],
    /// ClaimUnavailable beyond the pool's free margin, SlippageExceeded below `minAssets`.
    function claimRedeem(
        uint256 shares,
        address receiver,
        uint256 minAssets
    ) external returns (uint256 assets);

    /// @notice Gives the caller's request back, at any time the share price can be read, as shares worth
    /// at most what the request was (rounded down): if the share price rose since, fewer shares than were
    /// requested, the rest burned. A request is a decision to leave at the request's price; only a later
    /// loss lowers it. Reverts with NoRedeemRequest without one, and with the feed's error while a feed
    /// under the pool's book fails (no price to measure the request against; the shares stay requested).
    function cancelRedeemRequest() external returns (uint256 shares);

    /// @notice `owner`'s request: shares in the pool, their worth when requested (quote units), and
    /// the window in which it can be claimed (all zero without a request).
    function redeemRequest(
        address owner
    ) external view returns (uint256 shares, uint256 assets, uint256 claimableAt, uint256 claimableUntil);

    /// @notice What claiming `shares` of `owner`'s request would pay now, before the free-margin cap.
    function previewClaim(address owner, uint256 shares) external view returns (uint256 assets);

    /// @notice The most shares of `owner`'s request `claimRedeem` takes now: all of them, or the part
    /// the pool's free margin pays; 0 outside the claim window, while LP exits are closed (a paused vault,
    /// `settlementPending`) or the pool cannot be priced. Never reverts. With an exit delay, ERC-4626's
    /// `maxRedeem` reads 0 (its `redeem` refuses), and this is the limit a frontend sizes a claim with.
    function maxClaim(address owner) external view returns (uint256 shares);

    /// @notice Seconds between an LP's redeem request and its claim; 0 lets LPs exit at once through
    /// ERC-4626's `withdraw` and `redeem` (which revert with RedeemRequestRequired otherwise). An exit
    /// paid at the lower of two share prices that far apart cannot step out before a loss the LP
    /// sees coming (an oracle round in the mempool) and step back in after it.
    function exitDelay() external view returns (uint256);

    /// @notice The longest exit delay governance can set (7 days).
    function MAX_EXIT_DELAY() external view returns (uint256);

    /// @notice How long a matured request can be claimed (2 hours); after that it can only be cancelled.
    /// Short next to the exit delay: a matured request is an exit its owner may time, so an LP asking
    /// again and again would hold one for window / (delay + window) of the time. Longer than the hour
    /// before an option expiry in which LP exits wait for settlement (`settlementPending`), so an expiry
    /// settled within an hour cannot close a whole window. Settlement needs the price feed's first round
    /// at or after expiry, up to a heartbeat later (1 hour on Chainlink's L1 ETH/USD; the testnet configs
    /// accept 24), and across a feed phase change the timelock's `settleSeriesAtPhaseStart` (days):
    /// settled later than an hour after expiry, the windows of requests made in between pass closed
    /// whole, and those requests are cancelled and asked again.
    function CLAIM_WINDOW() external view returns (uint256);

    /// @notice Sets the exit delay of requests made from now on. Governance (`Roles.RISK_MANAGER`) only.
    /// @dev Reverts with ExitDelayTooLong above `MAX_EXIT_DELAY`. A raise is free; a cut may at most
    /// halve the delay (or take it to 0 from `MAX_CUT_TO_ZERO` or less) and only once a day
    /// (`ProtectionCutTooLarge`, `UpdateTooSoon("exitDelay", 0, …)`): cut to 0 for one block, it let an
    /// LP step out before a loss it saw coming.
    function setExitDelay(uint256 exitDelay) external;

    /// @notice The largest holding period or exit delay a single cut may take to 0 (1 hour): from 1 day,
    /// six daily cuts (12 h, 6 h, 3 h, 1.5 h, 45 min, 0).
    function MAX_CUT_TO_ZERO() external view returns (uint256);

    /// @notice The pool's margin account id.
    function accountId() external view returns (uint256);

    /// @notice The pool account's unrealised PnL and funding across all markets, USD WAD (negative
    /// when traders are winning).
    function positionValue() external view returns (int256);

    /// @notice The backstop account's mark-to-market equity counted in the quote token, 18 decimals
    /// (`ICollateralVault.markInQuote`: its quote balance at face less a debt with interest, other
    /// collateral at its oracle value in quote, plus its positions' value, which settles in quote 1:1): the books it absorbed from liquidations
    /// nobody bid on (`ILiquidationAuction.absorb`), which belong to the LPs. Part of `totalAssets`;
    /// below zero it also lowers what LPs can withdraw (`maxWithdraw`).
    function backstopValue() external view returns (int256);

    /// @notice Quote units of the open insolvent auctions' deficits (`ILiquidationAuction.pendingDeficit`)
    /// beyond the insurance fund's balance: the loss the pool will be charged when the books are taken,
    /// already deducted from `totalAssets`, and from the free margin LPs can withdraw (`maxWithdraw`,
    /// `maxClaim`): the pool's equity counts those traders' losses in full.
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
    /// @dev Reverts with HoldingPeriodTooLong above `MAX_HOLDING_PERIOD`; cuts are stepped and throttled
    /// as the exit delay's (`setExitDelay`, `UpdateTooSoon("holdingPeriod", 0, …)`).
    function setHoldingPeriod(uint256 holdingPeriod) external;

    /// @notice Sends the pool contract's whole balance of `token` to `to`; TREASURY role, for governance
    /// to return tokens sent to the pool's address to their sender. The pool holds no assets of its own
    /// here: deposits go straight into its margin account and exits come out of it.
    /// @dev Reverts with the vault's InvalidRecipient for the zero address and its NoSurplus for a zero
    /// balance and for the pool's own shares, which its address holds for pending redeem requests.
    /// @param token Any ERC-20 but the pool's shares.
    /// @param to The recipient.
    /// @return amount What was sent, in token units.
    function recoverSurplus(address token, address to) external returns (uint256 amount);

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
