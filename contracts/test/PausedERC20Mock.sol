// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {MockERC20} from "./MockERC20.sol";

/// @title PausedERC20Mock
/// @notice A MockERC20 whose transfers revert, as USDC's do while Circle has paused it. Same storage
/// layout as MockERC20: a test pauses a deployed MockERC20 by swapping this contract's code in
/// (`hardhat_setCode`), balances and allowances untouched, and unpauses it by swapping the original back.
contract PausedERC20Mock is MockERC20 {
    /// @notice Transfers are paused.
    error TransfersPaused();

    constructor(uint8 decimals_) MockERC20("Paused", "PAUSED", decimals_) {}

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) revert TransfersPaused();
        super._update(from, to, value);
    }
}
