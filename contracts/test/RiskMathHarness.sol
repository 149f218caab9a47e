// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {RiskMath} from "../libraries/RiskMath.sol";

/// @notice Exposes RiskMath to tests (the linear fast path is held against PortfolioMath's grid).
contract RiskMathHarness {
    function linearRequirement(
        int256 delta,
        uint256 notional,
        uint256 spot,
        uint256 spotShock,
        uint256 contingency
    ) external pure returns (uint256) {
        return RiskMath.linearRequirement(delta, notional, spot, spotShock, contingency);
    }
}
