// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title SignedWadMath
/// @notice Signed WAD multiplication with explicit rounding direction.
library SignedWadMath {
    int256 internal constant WAD = 1e18;

    /// @notice a·b / 1e18 rounded toward negative infinity; reverts with Panic(0x11) when a·b overflows,
    /// as checked arithmetic would.
    /// @dev In assembly because the margin grid evaluates it dozens of times per health check: the
    /// compiler's checked signed multiplication, division and modulo cost ~3× as much.
    function mulWadDown(int256 a, int256 b) internal pure returns (int256 c) {
        assembly ("memory-safe") {
            let p := mul(a, b)
            // No overflow iff a = 0 or p / a = b, except a = −1, b = −2^255 (whose p / a is b again).
            if iszero(or(iszero(a), and(eq(sdiv(p, a), b), iszero(and(eq(a, not(0)), eq(b, shl(255, 1))))))) {
                mstore(0x00, 0x4e487b71) // Panic(uint256)
                mstore(0x20, 0x11) // arithmetic overflow
                revert(0x1c, 0x24)
            }
            // sdiv truncates toward zero: one less when p is negative and not a multiple of WAD.
            c := sub(sdiv(p, WAD), and(slt(p, 0), iszero(iszero(smod(p, WAD)))))
        }
    }

    /// @notice a / b rounded toward negative infinity (b > 0).
    function divDown(int256 a, uint256 b) internal pure returns (int256 c) {
        int256 d = int256(b);
        c = a / d;
        if (a % d != 0 && a < 0) c -= 1;
    }
}
