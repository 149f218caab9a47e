// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {InterestMath} from "../libraries/InterestMath.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";

/// @notice Exposes InterestMath to tests (the vault calls it only with the inputs its own state gives).
contract InterestMathHarness {
    /// @notice `InterestMath.compound`.
    function compound(uint256 index, uint256 rate, uint256 elapsed) external pure returns (uint256) {
        return InterestMath.compound(index, rate, elapsed);
    }

    /// @notice `InterestMath.borrowRate`.
    function borrowRate(
        ICollateralVault.InterestRateModel calldata model,
        uint256 debt,
        uint256 cash
    ) external pure returns (uint256) {
        return InterestMath.borrowRate(model, debt, cash);
    }

    /// @notice `InterestMath.rateAt`.
    function rateAt(
        ICollateralVault.InterestRateModel calldata model,
        uint256 utilisation
    ) external pure returns (uint256) {
        return InterestMath.rateAt(model, utilisation);
    }

    /// @notice `InterestMath.owed`.
    function owed(uint256 debt, uint256 index, uint256 paidIndex) external pure returns (uint256) {
        return InterestMath.owed(debt, index, paidIndex);
    }

    /// @notice `InterestMath.scaled`.
    function scaled(uint256 debt, uint256 paidIndex) external pure returns (uint256) {
        return InterestMath.scaled(debt, paidIndex);
    }
}
