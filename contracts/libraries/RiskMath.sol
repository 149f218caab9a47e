// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SignedWadMath} from "./SignedWadMath.sol";

/// @title RiskMath
/// @notice Small pure helpers for account health. WAD = 1e18.
library RiskMath {
    uint256 internal constant WAD = 1e18;

    /// @notice equity / requirement as WAD, rounded down; 0 when equity is negative (whatever the
    /// requirement: such an account is liquidatable), else `type(uint256).max` with no requirement.
    /// @dev Negative equity first: a debtor with nothing but collateral has no requirement, and read
    /// as infinitely healthy while its auction ran (review round 49).
    function healthRatio(int256 equity, uint256 requirement) internal pure returns (uint256) {
        if (equity < 0) return 0;
        if (requirement == 0) return type(uint256).max;
        return Math.mulDiv(uint256(equity), WAD, requirement);
    }

    /// @notice `PortfolioMath.requirement` of a linear book (Γ = vega = net option size = 0, e.g. perps
    /// only), to the wei, at a fraction of the gas (~500 instead of ~6,700).
    /// @dev With Γ = vega = 0 every scenario PnL is Δ·dS rounded down (monotone in dS), so the worst of
    /// the grid's spot moves {±s, ±s/2} is the full move against the position, −|Δ|·spot·s, and the
    /// volatility moves and the short-option floor contribute nothing. Evaluated with the same
    /// rounding as the grid: the move rounds up, the PnL down; the contingency rounds up. The products
    /// stay far below 2^256 (spot < 2^120 by the oracle's bounds, shocks ≤ 1, contingency ≤ 0.1,
    /// notional < 2^180 under the markets' open-interest caps), so plain ceiling divisions give
    /// `mulDiv`'s results for ~600 gas less each (an impossible overflow would revert, not wrap).
    function linearRequirement(
        int256 delta,
        uint256 notional,
        uint256 spot,
        uint256 spotShock,
        uint256 contingency
    ) internal pure returns (uint256) {
        int256 fullMove = int256(Math.ceilDiv(spot * spotShock, WAD));
        int256 worstPnl = SignedWadMath.mulWadDown(delta > 0 ? -delta : delta, fullMove);
        return uint256(-worstPnl) + Math.ceilDiv(notional * contingency, WAD);
    }
}
