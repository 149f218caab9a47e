// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {LiquidationMath} from "../libraries/LiquidationMath.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";

/// @notice Exposes LiquidationMath to tests: its roundings part from the other direction only at inputs
/// a live account reaches by chance (a quote-WAD sum one wei below a whole quote unit), so they are
/// held here at those inputs (review round 119).
contract LiquidationMathHarness {
    /// @notice LiquidationMath.discount.
    function discount(
        uint256 startDiscount,
        uint256 maxDiscount,
        uint256 elapsed,
        uint256 duration
    ) external pure returns (uint256) {
        return LiquidationMath.discount(startDiscount, maxDiscount, elapsed, duration);
    }

    /// @notice LiquidationMath.restoringFraction.
    function restoringFraction(
        IMarginEngine.Health calldata h,
        uint256 markValue,
        uint256 heldValue,
        uint256 discount_,
        uint256 penalty
    ) external pure returns (uint256) {
        return LiquidationMath.restoringFraction(h, markValue, heldValue, discount_, penalty);
    }

    /// @notice LiquidationMath.payment.
    function payment(
        uint256 markEquity,
        uint256 fraction,
        uint256 discount_,
        uint256 quoteUnit
    ) external pure returns (uint256) {
        return LiquidationMath.payment(markEquity, fraction, discount_, quoteUnit);
    }

    /// @notice LiquidationMath.insolvencyPayout.
    function insolvencyPayout(
        uint256 deficit,
        uint256 maintenanceRequirement,
        uint256 maxDiscount,
        uint256 elapsed,
        uint256 duration,
        uint256 quoteUnit
    ) external pure returns (uint256) {
        return
            LiquidationMath.insolvencyPayout(
                deficit,
                maintenanceRequirement,
                maxDiscount,
                elapsed,
                duration,
                quoteUnit
            );
    }
}
