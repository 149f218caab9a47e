// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {MockERC20} from "./MockERC20.sol";

/// @title MockERC4626
/// @notice OpenZeppelin ERC-4626 vault over a MockERC20, with an optional decimals offset (share
/// decimals = asset decimals + offset) and a way to simulate yield.
contract MockERC4626 is ERC4626 {
    uint8 private immutable _offset;

    constructor(
        MockERC20 asset_,
        string memory name_,
        string memory symbol_,
        uint8 decimalsOffset_
    ) ERC20(name_, symbol_) ERC4626(asset_) {
        _offset = decimalsOffset_;
    }

    /// @notice Simulates yield: mints `amount` of the underlying to the vault, raising the assets
    /// every share converts to.
    function simulateYield(uint256 amount) external {
        MockERC20(asset()).mint(address(this), amount);
    }

    function _decimalsOffset() internal view override returns (uint8) {
        return _offset;
    }
}
