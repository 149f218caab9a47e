// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";

/// @title LiquidationMath
/// @notice Pure arithmetic of the Dutch auction. WAD fractions; USD amounts in WAD; books' worth in
/// quote WAD (quote tokens, 18 decimals) and payments in quote units (one unit = `quoteUnit` quote WAD).
library LiquidationMath {
    uint256 internal constant WAD = 1e18;

    /// @notice d(t) = d0 + (dmax − d0)·min(1, elapsed/duration), rounded down (the bidder's gain).
    function discount(
        uint256 startDiscount,
        uint256 maxDiscount,
        uint256 elapsed,
        uint256 duration
    ) internal pure returns (uint256) {
        if (elapsed >= duration) return maxDiscount;
        return startDiscount + Math.mulDiv(maxDiscount - startDiscount, elapsed, duration);
    }

    /// @notice The smallest fraction f after which the account meets its initial requirement.
    /// @dev A bid sells f of the book without the quote H held back (what earlier bids paid in). Selling
    /// f of it scales its equity_IM, E − H, and IM by (1 − f) (the requirement is homogeneous in position
    /// size at fixed shocks, and shocks only shrink with size), and the account receives f·M·(1 − d)
    /// while paying the penalty f·M·p, M = the sold book's mark-to-market equity as its margin counts the
    /// payments: `markValue`, USD WAD (the book's worth in quote times the quote's price); H is
    /// `heldValue`, USD WAD likewise. Solving
    ///   H + (1 − f)·(E − H) + f·M·(1 − d − p) ≥ (1 − f)·IM   for f gives
    ///   f ≥ (IM − E) / (IM − E + H + M·(1 − d − p)),
    /// rounded up so the cap never stops short of the target.
    function restoringFraction(
        IMarginEngine.Health memory h,
        uint256 markValue,
        uint256 heldValue,
        uint256 discount_,
        uint256 penalty
    ) internal pure returns (uint256) {
        int256 shortfall = int256(h.initialRequirement) - h.equityInitial;
        if (shortfall <= 0) return 0;
        uint256 proceeds = heldValue + Math.mulDiv(markValue, WAD - discount_ - penalty, WAD);
        uint256 f = Math.mulDiv(uint256(shortfall), WAD, uint256(shortfall) + proceeds, Math.Rounding.Ceil);
        return f > WAD ? WAD : f;
    }

    /// @notice f·M·(1 − d) in quote units, rounded up (the bidder pays).
    function payment(
        uint256 markEquity,
        uint256 fraction,
        uint256 discount_,
        uint256 quoteUnit
    ) internal pure returns (uint256) {
        uint256 slice = Math.mulDiv(markEquity, fraction, WAD, Math.Rounding.Ceil);
        return Math.mulDiv(slice, WAD - discount_, WAD * quoteUnit, Math.Rounding.Ceil);
    }

    /// @notice What the insurance fund pays the bidder of an insolvent account:
    /// min(1, elapsed/duration)·(deficit + dmax·MM), in quote units rounded down (deficit and MM in
    /// quote WAD).
    /// @dev It starts at zero, so the first bidder who can absorb the book takes it at the lowest cost
    /// to the fund. Paying only the deficit would leave the bidder a book worth zero at mark that still
    /// costs fees and price impact to unwind, so nobody would take it; the premium on top is the largest
    /// reward a solvent auction offers at the liquidation threshold (equity = MM, discount dmax). It is
    /// bounded by the book's risk (MM), not its size: a gross-notional term paid LPs' money for nothing
    /// when bidders waited (crash scenarios, docs/reliability.md).
    function insolvencyPayout(
        uint256 deficit,
        uint256 maintenanceRequirement,
        uint256 maxDiscount,
        uint256 elapsed,
        uint256 duration,
        uint256 quoteUnit
    ) internal pure returns (uint256) {
        uint256 full = deficit + Math.mulDiv(maintenanceRequirement, maxDiscount, WAD);
        uint256 ramp = elapsed >= duration ? WAD : Math.mulDiv(elapsed, WAD, duration);
        return Math.mulDiv(full, ramp, WAD * quoteUnit);
    }
}
