// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {MockERC20} from "./MockERC20.sol";

/// @title FeeOnTransferToken
/// @notice Test token that burns 1% of every transfer (mints and burns are not charged), so the
/// receiver gets less than was sent.
contract FeeOnTransferToken is MockERC20 {
    /// @notice The fee, in basis points of the amount sent.
    uint256 public constant FEE_BPS = 100;

    constructor(
        string memory name_,
        string memory symbol_,
        uint8 decimals_
    ) MockERC20(name_, symbol_, decimals_) {}

    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = (value * FEE_BPS) / 10_000;
        super._update(from, to, value - fee);
        super._update(from, address(0), fee);
    }
}
