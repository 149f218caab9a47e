// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {FixedPointMathLib} from "solady/src/utils/FixedPointMathLib.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";

/// @title InterestMath
/// @notice Interest on quote debt: a utilisation-based annual rate, compounded continuously into an
/// index, so that a debt grows by the same factor however often it is settled.
library InterestMath {
    uint256 internal constant WAD = 1e18;
    uint256 internal constant YEAR = 365 days;
    /// @dev e^100 ≈ 2.7e43: an exponent above it would take the index past what `mulDiv` can carry
    /// within a few more updates; it needs decades at the highest rate without a single quote movement.
    int256 internal constant MAX_EXPONENT = 100e18;

    /// @notice The index after `elapsed` seconds at the annual `rate`: index · e^(rate · elapsed / year),
    /// rounded down (both the exponent and the product).
    function compound(uint256 index, uint256 rate, uint256 elapsed) internal pure returns (uint256) {
        uint256 exponent = (rate * elapsed) / YEAR;
        int256 x = exponent > uint256(MAX_EXPONENT) ? MAX_EXPONENT : int256(exponent);
        return Math.mulDiv(index, uint256(FixedPointMathLib.expWad(x)), WAD);
    }

    /// @notice The annual rate at utilisation debt / (debt + cash): linear from `baseRate` at 0 to
    /// `kinkRate` at `kinkUtilization`, then linear to `maxRate` at full utilisation. Rounded down.
    /// @param debt Σ of quote debts (what is lent out).
    /// @param cash Quote the vault holds (what is left to lend).
    function borrowRate(
        ICollateralVault.InterestRateModel memory model,
        uint256 debt,
        uint256 cash
    ) internal pure returns (uint256) {
        return rateAt(model, debt == 0 ? 0 : Math.mulDiv(debt, WAD, debt + cash));
    }

    /// @notice The model's annual rate at `utilisation` (WAD, at most 1e18), rounded down.
    function rateAt(
        ICollateralVault.InterestRateModel memory model,
        uint256 utilisation
    ) internal pure returns (uint256) {
        uint256 kink = model.kinkUtilization;
        if (utilisation <= kink) {
            // A zero kink is the model before governance sets one: every rate is zero then.
            if (kink == 0) return model.baseRate;
            return model.baseRate + Math.mulDiv(model.kinkRate - model.baseRate, utilisation, kink);
        }
        return model.kinkRate + Math.mulDiv(model.maxRate - model.kinkRate, utilisation - kink, WAD - kink);
    }

    /// @notice Interest a debt paid up to `paidIndex` owes at `index`: debt · index / paidIndex − debt,
    /// rounded up against the debtor.
    function owed(uint256 debt, uint256 index, uint256 paidIndex) internal pure returns (uint256) {
        return Math.mulDiv(debt, index, paidIndex, Math.Rounding.Ceil) - debt;
    }

    /// @notice A debt in index units, debt · 1e18 / paidIndex, rounded down: summed over debtors and
    /// multiplied by the index it gives what they owe in one read (never more than they owe).
    function scaled(uint256 debt, uint256 paidIndex) internal pure returns (uint256) {
        return debt == 0 ? 0 : Math.mulDiv(debt, WAD, paidIndex);
    }
}
