// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IERC721Enumerable} from "@openzeppelin/contracts/token/ERC721/extensions/IERC721Enumerable.sol";

/// @title IAccounts
/// @notice Margin sub-accounts as ERC-721 tokens. An address may own many accounts; each account is
/// one margin unit with its own collateral and positions. Whoever holds the token owns the account;
/// ERC-721 approvals (per token or for all) make an address an operator that may trade for it.
/// An operator holds custody: the same approval lets it transfer the account to itself, and trades or
/// bids made with the account can move its value elsewhere. The vault's rule that an operator
/// withdraws only to the owner does not change that. Approve only contracts and agents you would hand
/// the account to (the liquidation auction for a keeper's `bidAndClose`).
///
/// A trading bot needs less: `setTrader` lets an address trade perps and options for the account and
/// nothing else, up to an allowance of trading costs. A trader cannot transfer the account, withdraw,
/// or bid with it, and the grant lapses when the account changes hands. Its trades spend the allowance
/// by what they can cost the account at a constant price (fees, the perp skew premium, the option
/// spread, and an option long's time value), because a trader that makes the account pay those costs
/// can collect them with its own account (docs/decisions.md). Not bounded: the market risk of the
/// positions it opens and the funding they pay while held (which can lead to a liquidation a trader
/// could bid on), so grant it to keys you trust.
interface IAccounts is IERC721Enumerable {
    /// @notice How an account's risk is pooled.
    /// @dev CROSS: one collateral pool backs any number of markets (up to the engine's cap).
    /// ISOLATED: the account may hold one market only, so its risk cannot spread.
    enum MarginMode {
        CROSS,
        ISOLATED
    }

    /// @notice The account id does not exist.
    error UnknownAccount(uint256 accountId);
    /// @notice `caller` is not the owner of `accountId`, an approved operator of it, or (where trading
    /// is all that is asked) a trader with allowance left: a grant spent to 0 ends like a revoked one.
    error NotAuthorized(uint256 accountId, address caller);

    /// @notice Emitted when an account is created.
    event AccountCreated(uint256 indexed accountId, address indexed owner, MarginMode mode);
    /// @notice A trader's trade would cost the account more than the trader's remaining allowance.
    error TraderAllowanceExceeded(uint256 accountId, address trader, uint256 cost, uint256 allowance);
    /// @notice `caller` is not a market registered in the margin engine (only markets spend allowances).
    error NotMarket(address caller);
    /// @notice Only the deployer binds the margin engine, and only once: after that, nobody.
    error NotDeployer(address caller);
    /// @notice The margin engine to bind is the zero address.
    error ZeroMarginEngine();

    /// @notice Emitted when the owner sets `trader`'s trading allowance (0 revokes the grant).
    event TraderSet(uint256 indexed accountId, address indexed trader, uint256 allowance);
    /// @notice Emitted once, when the deployer binds the margin engine whose markets spend allowances.
    event MarginEngineBound(address indexed marginEngine);
    /// @notice Emitted when a trader's trade spends `cost` of a limited allowance, leaving `remaining`
    /// (quote-token units). A transfer of the account ends every grant without a TraderSet event: the
    /// ERC-721 Transfer is the signal.
    event TraderAllowanceSpent(
        uint256 indexed accountId,
        address indexed trader,
        uint256 cost,
        uint256 remaining
    );

    /// @notice Creates an account owned by the caller.
    /// @param mode CROSS or ISOLATED; fixed for the account's life.
    /// @return accountId The new account's id (ids start at 1).
    function createAccount(MarginMode mode) external returns (uint256 accountId);

    /// @notice Creates an account owned by `owner` (e.g. a dApp creating one for its user). The creator
    /// may then fund it with the quote token only; other collateral needs the owner or an operator
    /// (`CollateralVault.deposit`).
    function createAccountFor(address owner, MarginMode mode) external returns (uint256 accountId);

    /// @notice The margin mode of `accountId`; reverts with UnknownAccount if it does not exist.
    function marginMode(uint256 accountId) external view returns (MarginMode);

    /// @notice Whether `caller` may act for `accountId`: its owner, the token's approved address, or
    /// an operator approved for all the owner's tokens.
    function isAuthorized(uint256 accountId, address caller) external view returns (bool);

    /// @notice Reverts with NotAuthorized unless `isAuthorized(accountId, caller)`.
    function requireAuthorized(uint256 accountId, address caller) external view;

    /// @notice Lets `trader` trade perps and options for `accountId` until its trades have cost the
    /// account `allowance` quote-token units, or stops it (`allowance` 0); owner only. Sets the remaining
    /// allowance (like an ERC-20 approval, it replaces what was left). `type(uint256).max` is unlimited
    /// and never spent: what a keeper grants the liquidation auction for `bidAndClose`. The grant holds
    /// until revoked, spent, or the account is transferred. As with ERC-20 `approve`, a trader that sees
    /// the change in the mempool can spend what is left first (a revocation too): grant only what you
    /// accept being spent.
    /// @dev Reverts with NotAuthorized unless the caller owns the account (approved operators could
    /// take the account anyway, but the grant is the owner's statement).
    /// @param accountId The account.
    /// @param trader The address, e.g. a trading bot's hot key.
    /// @param allowance The trading costs, in quote-token units, the trader's trades may charge.
    function setTrader(uint256 accountId, address trader, uint256 allowance) external;

    /// @notice What `trader` may still charge `accountId` in trading costs (quote-token units): 0 when
    /// it holds no grant from the account's current owner, `type(uint256).max` when unlimited.
    function traderAllowance(uint256 accountId, address trader) external view returns (uint256);

    /// @notice Called by a market before it trades for `accountId` on `caller`'s instruction. An owner
    /// or operator (`isAuthorized`) may trade at any cost; a trader's trade spends `cost` of its
    /// allowance. Withdrawals and bids check `requireAuthorized` instead.
    /// @dev Reverts with NotAuthorized for anyone else, TraderAllowanceExceeded when `cost` is above the
    /// allowance, and NotMarket when a limited trader's trade does not come from a registered market
    /// (anyone else could spend a bot's allowance to stop it; an unlimited one is never written).
    /// @param accountId The account traded.
    /// @param caller Who asked the market to trade.
    /// @param cost What the trade can cost the account at a constant price, in quote-token units: fees,
    /// the price paid beyond the mark, and for an option long its time value.
    function authorizeTrade(uint256 accountId, address caller, uint256 cost) external;

    /// @notice Binds the margin engine whose registered markets may spend trading allowances. Once, by
    /// the deployer (the engine is deployed after this contract, which it references).
    /// @dev Reverts with NotDeployer for any other caller or a second call, ZeroMarginEngine for zero.
    function bindMarginEngine(address engine) external;

    /// @notice The margin engine bound by `bindMarginEngine` (zero before).
    function marginEngine() external view returns (address);

    /// @notice Every account id owned by `owner`.
    function accountsOf(address owner) external view returns (uint256[] memory);

    /// @notice The number of accounts ever created, which is also the highest id (accounts are never
    /// burned, so ids 1..accountCount() all exist).
    function accountCount() external view returns (uint256);
}
