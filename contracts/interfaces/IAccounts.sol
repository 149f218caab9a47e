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
/// nothing else. A trader cannot transfer the account, withdraw, or bid with it, and the grant lapses
/// when the account changes hands. It does control the account's free margin: trading against its own
/// account through the skew premium, a malicious trader can move most of it out (docs/decisions.md).
/// Grant it only to keys you control.
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
    /// is all that is asked) a trader it granted.
    error NotAuthorized(uint256 accountId, address caller);

    /// @notice Emitted when an account is created.
    event AccountCreated(uint256 indexed accountId, address indexed owner, MarginMode mode);
    /// @notice Emitted when the owner grants or revokes `trader`'s right to trade for the account.
    event TraderSet(uint256 indexed accountId, address indexed trader, bool allowed);

    /// @notice Creates an account owned by the caller.
    /// @param mode CROSS or ISOLATED; fixed for the account's life.
    /// @return accountId The new account's id (ids start at 1).
    function createAccount(MarginMode mode) external returns (uint256 accountId);

    /// @notice Creates an account owned by `owner` (e.g. a dApp creating one for its user).
    function createAccountFor(address owner, MarginMode mode) external returns (uint256 accountId);

    /// @notice The margin mode of `accountId`; reverts with UnknownAccount if it does not exist.
    function marginMode(uint256 accountId) external view returns (MarginMode);

    /// @notice Whether `caller` may act for `accountId`: its owner, the token's approved address, or
    /// an operator approved for all the owner's tokens.
    function isAuthorized(uint256 accountId, address caller) external view returns (bool);

    /// @notice Reverts with NotAuthorized unless `isAuthorized(accountId, caller)`.
    function requireAuthorized(uint256 accountId, address caller) external view;

    /// @notice Lets `trader` trade perps and options for `accountId` (or stops it); owner only. The
    /// grant holds until revoked or until the account is transferred.
    /// @dev Reverts with NotAuthorized unless the caller owns the account (approved operators could
    /// take the account anyway, but the grant is the owner's statement).
    /// @param accountId The account.
    /// @param trader The address, e.g. a trading bot's hot key.
    /// @param allowed Grant (true) or revoke (false).
    function setTrader(uint256 accountId, address trader, bool allowed) external;

    /// @notice Whether `trader` holds a trading grant from the account's current owner.
    function isTrader(uint256 accountId, address trader) external view returns (bool);

    /// @notice Reverts with NotAuthorized unless `caller` may trade for `accountId`: it is authorised
    /// (`isAuthorized`) or a trader (`isTrader`). What the markets check; withdrawals and bids check
    /// `requireAuthorized`.
    function requireCanTrade(uint256 accountId, address caller) external view;

    /// @notice Every account id owned by `owner`.
    function accountsOf(address owner) external view returns (uint256[] memory);

    /// @notice The number of accounts ever created, which is also the highest id (accounts are never
    /// burned, so ids 1..accountCount() all exist).
    function accountCount() external view returns (uint256);
}
