// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title SignedWadMath
/// @notice Signed WAD multiplication with explicit rounding direction.
library SignedWadMath {
    int256 internal constant WAD = 1e18;

    /// @notice a·b / 1e18 rounded toward negative infinity.
    function mulWadDown(int256 a, int256 b) internal pure returns (int256 c) {
        int256 p = a * b;
        c = p / WAD;
        if (p % WAD != 0 && p < 0) c -= 1;
    }

    /// @notice a / b rounded toward negative infinity (b > 0).
    function divDown(int256 a, uint256 b) internal pure returns (int256 c) {
        int256 d = int256(b);
        c = a / d;
        if (a % d != 0 && a < 0) c -= 1;
    }
}
