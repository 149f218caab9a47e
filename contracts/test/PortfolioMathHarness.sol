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

    /// @notice `PortfolioMath.requirement`; `repricedPnls` empty or `PortfolioMath.CELLS` long.
    function requirement(
        PortfolioMath.Greeks calldata g,
        uint256 spot,
        PortfolioMath.Shocks calldata k,
        int256[] calldata repricedPnls
    ) external pure returns (uint256) {
        return PortfolioMath.requirement(g, spot, k, repricedPnls);
    }

    function worstScenarioLoss(
        PortfolioMath.Greeks calldata g,
        uint256 spot,
        PortfolioMath.Shocks calldata k,
        int256[] calldata repricedPnls
    ) external pure returns (uint256) {
        return PortfolioMath.worstScenarioLoss(g, spot, k, repricedPnls);
    }

    function scenarioMoves(
        uint256 spot,
        PortfolioMath.Shocks calldata k
    ) external pure returns (int256[] memory spotMoves, int256[] memory volMoves) {
        return PortfolioMath.scenarioMoves(spot, k);
    }

    function needsRepricing(
        uint256 totalVolatility,
        uint256 modelVolatility,
        PortfolioMath.Shocks calldata k
    ) external pure returns (bool) {
        return PortfolioMath.needsRepricing(totalVolatility, modelVolatility, k);
    }
}
