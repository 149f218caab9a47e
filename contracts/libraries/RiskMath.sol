// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title RiskMath
/// @notice Small pure helpers for account health. WAD = 1e18.
library RiskMath {
    uint256 internal constant WAD = 1e18;

    /// @notice equity / requirement as WAD, rounded down; `type(uint256).max` with no requirement,
    /// 0 when equity is not positive.
    function healthRatio(int256 equity, uint256 requirement) internal pure returns (uint256) {
        if (requirement == 0) return type(uint256).max;
        if (equity <= 0) return 0;
        return Math.mulDiv(uint256(equity), WAD, requirement);
    }
}
