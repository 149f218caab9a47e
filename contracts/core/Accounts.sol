// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721Enumerable} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721Enumerable.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";

/// @title Accounts
/// @notice Margin sub-accounts as ERC-721 tokens ("xmargin Account", XMA). Ids start at 1 and are
/// never reused; accounts are never burned, so an id that exists once exists forever.
/// @dev No admin: creating accounts is permissionless and nothing about an account can be changed
/// except by its owner (ownership, approvals, trading grants). The deployer's one power is binding
/// the margin engine once, whose registered markets spend trading allowances. Accounts are minted
/// with `_mint`, not `_safeMint`: an owner contract does not need `onERC721Received` to operate its
/// account, and creation makes no external call (no reentrancy).
contract Accounts is ERC721Enumerable, IAccounts {
    /// @dev The last id minted; the next account gets `_lastId + 1`.
    uint256 private _lastId;

    /// @dev Margin mode + 1, so that 0 means "no such account". Lets `marginMode`, which the vault
    /// calls on every deposit, check existence and read the mode with one storage read.
    mapping(uint256 accountId => uint8 modePlusOne) private _modeTag;

    /// @dev Trading allowances per account and ownership epoch. A transfer starts a new epoch, which
    /// clears every grant at once without iterating over them.
    mapping(uint256 accountId => uint256) private _ownershipEpoch;
    mapping(uint256 accountId => mapping(uint256 epoch => mapping(address trader => uint256 allowance)))
        private _allowances;

    /// @dev Who may bind the margin engine; cleared by the binding.
    address private _deployer;

    /// @inheritdoc IAccounts
    address public marginEngine;

    constructor() ERC721("xmargin Account", "XMA") {
        _deployer = msg.sender;
    }

    /// @inheritdoc IAccounts
    function bindMarginEngine(address engine) external {
        if (msg.sender != _deployer) revert NotDeployer(msg.sender);
        if (engine == address(0)) revert ZeroMarginEngine();
        marginEngine = engine;
        delete _deployer;
        emit MarginEngineBound(engine);
    }

    /// @inheritdoc IAccounts
    function createAccount(MarginMode mode) external returns (uint256 accountId) {
        return _create(msg.sender, mode);
    }

    /// @inheritdoc IAccounts
    function createAccountFor(address owner, MarginMode mode) external returns (uint256 accountId) {
        return _create(owner, mode);
    }

    /// @inheritdoc IAccounts
    function marginMode(uint256 accountId) external view returns (MarginMode) {
        uint8 tag = _modeTag[accountId];
        if (tag == 0) revert UnknownAccount(accountId);
        return MarginMode(tag - 1);
    }

    /// @inheritdoc IAccounts
    /// @dev False for an account that does not exist.
    function isAuthorized(uint256 accountId, address caller) public view returns (bool) {
        // `_isAuthorized` is false for a zero `caller`; with no owner (unknown id) only a zero
        // `caller` could match the owner, so unknown accounts authorise nobody.
        return _isAuthorized(_ownerOf(accountId), caller, accountId);
    }

    /// @inheritdoc IAccounts
    /// @dev Also reverts with NotAuthorized for an account that does not exist: nobody may act for it.
    function requireAuthorized(uint256 accountId, address caller) external view {
        if (!isAuthorized(accountId, caller)) revert NotAuthorized(accountId, caller);
    }

    /// @inheritdoc IAccounts
    function setTrader(uint256 accountId, address trader, uint256 allowance) external {
        // `_ownerOf` is zero for an unknown id, which no caller is.
        if (_ownerOf(accountId) != msg.sender) revert NotAuthorized(accountId, msg.sender);
        _allowances[accountId][_ownershipEpoch[accountId]][trader] = allowance;
        emit TraderSet(accountId, trader, allowance);
    }

    /// @inheritdoc IAccounts
    function traderAllowance(uint256 accountId, address trader) external view returns (uint256) {
        return _allowances[accountId][_ownershipEpoch[accountId]][trader];
    }

    /// @inheritdoc IAccounts
    function authorizeTrade(uint256 accountId, address caller, uint256 cost) external {
        // Owners and operators first: the common case reads nothing more and writes nothing.
        if (isAuthorized(accountId, caller)) return;
        mapping(address => uint256) storage grants = _allowances[accountId][_ownershipEpoch[accountId]];
        uint256 allowance = grants[caller];
        if (allowance == 0) revert NotAuthorized(accountId, caller);
        // An unlimited grant is never written, so only a limited one needs to know who spends it.
        if (allowance == type(uint256).max) return;
        if (marginEngine == address(0) || !IMarginEngine(marginEngine).isMarket(msg.sender)) {
            revert NotMarket(msg.sender);
        }
        if (cost > allowance) revert TraderAllowanceExceeded(accountId, caller, cost, allowance);
        grants[caller] = allowance - cost;
        emit TraderAllowanceSpent(accountId, caller, cost, allowance - cost);
    }

    /// @inheritdoc IAccounts
    /// @dev Unbounded in the number of accounts the owner holds: meant for off-chain reads.
    function accountsOf(address owner) external view returns (uint256[] memory ids) {
        uint256 count = balanceOf(owner);
        ids = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            ids[i] = tokenOfOwnerByIndex(owner, i);
        }
    }

    /// @inheritdoc IAccounts
    function accountCount() external view returns (uint256) {
        return _lastId;
    }

    /// @dev A transfer (not the mint) ends the previous owner's trading grants.
    function _update(address to, uint256 tokenId, address auth) internal override returns (address from) {
        from = super._update(to, tokenId, auth);
        if (from != address(0)) ++_ownershipEpoch[tokenId];
    }

    function _create(address owner, MarginMode mode) private returns (uint256 accountId) {
        accountId = ++_lastId;
        _modeTag[accountId] = uint8(mode) + 1;
        // Reverts with ERC721InvalidReceiver for the zero address.
        _mint(owner, accountId);
        emit AccountCreated(accountId, owner, mode);
    }
}
