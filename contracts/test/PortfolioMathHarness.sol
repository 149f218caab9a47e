// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {PortfolioMath} from "../libraries/PortfolioMath.sol";

/// @notice Exposes PortfolioMath to tests (and to the SDK's differential tests).
contract PortfolioMathHarness {
    function spotShock(
        uint256 floor,
        uint256 z,
        uint256 volatility,
        uint256 horizon,
        uint256 maxShock,
        uint256 sizeScale,
        uint256 grossNotional
    ) external pure returns (uint256) {
        uint256 sigmaSqrtHorizon = PortfolioMath.horizonVolatility(volatility, horizon);
        return PortfolioMath.spotShock(floor, z, sigmaSqrtHorizon, maxShock, sizeScale, grossNotional);
    }

    function requirement(
        PortfolioMath.Greeks calldata g,
        uint256 spot,
        PortfolioMath.Shocks calldata k
    ) external pure returns (uint256) {
        return PortfolioMath.requirement(g, spot, k);
    }

    function worstScenarioLoss(
        PortfolioMath.Greeks calldata g,
        uint256 spot,
        uint256 shock,
        uint256 volShock
    ) external pure returns (uint256) {
        return PortfolioMath.worstScenarioLoss(g, spot, shock, volShock);
    }
}
