// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {MockERC20} from "./MockERC20.sol";

/// @title BlocklistERC20Mock
/// @notice A MockERC20 with USDC's two refusals: a blocklist (every transfer from or to a listed address
/// reverts, as Circle's `blacklist`) and a token-wide pause (every transfer reverts, as `pause()`). Its
/// storage extends MockERC20's: a test swaps this contract's code into a deployed MockERC20
/// (`hardhat_setCode`), balances and allowances untouched, the list empty and the token unpaused.
contract BlocklistERC20Mock is MockERC20 {
    /// @notice Whether transfers from or to an address revert.
    mapping(address account => bool) public blocklisted;
    /// @notice Whether every transfer reverts.
    bool public paused;

    constructor(uint8 decimals_) MockERC20("Blocklist", "BLOCK", decimals_) {}

    /// @notice Adds `account` to the blocklist or removes it; anyone may call (tests only).
    function setBlocklisted(address account, bool listed) external {
        blocklisted[account] = listed;
    }

    /// @notice Pauses or unpauses every transfer; anyone may call (tests only).
    function setPaused(bool paused_) external {
        paused = paused_;
    }

    /// @dev USDC's own revert strings (FiatTokenV2_2), so a decoder meets what it would meet on chain.
    function _update(address from, address to, uint256 value) internal override {
        // solhint-disable-next-line gas-custom-errors
        require(!paused, "Pausable: paused");
        // USDC also refuses a blocklisted sender of the call (the vault pulling a deposit, say).
        bool refused = blocklisted[from] || blocklisted[to] || blocklisted[_msgSender()];
        // solhint-disable-next-line gas-custom-errors
        require(!refused, "Blacklistable: account is blacklisted");
        super._update(from, to, value);
    }
}
