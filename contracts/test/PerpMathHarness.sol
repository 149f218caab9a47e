// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {PerpMath} from "../libraries/PerpMath.sol";

/// @notice Exposes PerpMath's funding to tests: a skew beyond skewScale (the traders' net skew once
/// governance halves skewScale while the backstop holds the other side) is reachable only through
/// several daily updates, so its clamp is held here against the SDK.
contract PerpMathHarness {
    function drift(
        int256 skew,
        uint256 skewScale,
        uint256 maxFundingVelocity
    ) external pure returns (int256) {
        return PerpMath.drift(skew, skewScale, maxFundingVelocity);
    }

    function rateIntegral(
        int256 rate,
        int256 ratePerDay,
        uint256 maxFundingRate,
        uint256 dt
    ) external pure returns (int256 newRate, int256 integral) {
        return PerpMath.rateIntegral(rate, ratePerDay, maxFundingRate, dt);
    }
}
