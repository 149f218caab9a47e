// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {MockERC20} from "./MockERC20.sol";

/// @title ReentrantToken
/// @notice Test token that, once armed, calls `callTarget` with `callData` from inside its next transfer
/// (after the balances moved), e.g. to attempt a second withdrawal from the vault. The hook fires
/// once per arming. The call's outcome is recorded instead of bubbled up, so a test can check both
/// that the re-entrant call failed and that the outer operation completed consistently.
contract ReentrantToken is MockERC20 {
    address public callTarget;
    bytes public callData;
    bool public armed;
    /// @notice Whether the last re-entrant call succeeded, and what it returned (or its revert data).
    bool public lastCallSucceeded;
    bytes public lastReturnData;
    /// @notice How many times the hook has fired.
    uint256 public reentryCount;

    constructor(
        string memory name_,
        string memory symbol_,
        uint8 decimals_
    ) MockERC20(name_, symbol_, decimals_) {}

    /// @notice Arms the hook: the next transfer (not mint or burn) calls `target_` with `callData_`.
    function arm(address target_, bytes calldata callData_) external {
        callTarget = target_;
        callData = callData_;
        armed = true;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (armed && from != address(0) && to != address(0)) {
            armed = false;
            ++reentryCount;
            // solhint-disable-next-line avoid-low-level-calls
            (lastCallSucceeded, lastReturnData) = callTarget.call(callData);
        }
    }
}
