// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SignedMath} from "@openzeppelin/contracts/utils/math/SignedMath.sol";

/// @title PerpMath
/// @notice Pure math of perpetual markets: fill price with skew premium, maker/taker fees, the funding
/// velocity model and entry-price averaging. WAD throughout; sizes signed (long > 0). The rounding
/// direction of each result is in its NatSpec and always goes against the trader.
library PerpMath {
    uint256 internal constant WAD = 1e18;
    int256 internal constant SWAD = 1e18;
    int256 internal constant DAY = 1 days;

    /// @notice fill = price·(1 + (skew + sizeDelta/2)/skewScale): the average of the premiums before
    /// and after the trade, so splitting a trade in two does not change its total cost. Rounded up for
    /// a buy and down for a sell. Returns a signed value; the caller rejects fills ≤ 0.
    function fillPrice(
        uint256 price,
        int256 skew,
        int256 sizeDelta,
        uint256 skewScale
    ) internal pure returns (int256) {
        // (skew + sizeDelta/2)/skewScale = (2·skew + sizeDelta)/(2·skewScale), without halving sizeDelta.
        int256 num = 2 * skew + sizeDelta;
        bool buy = sizeDelta > 0;
        // Buy: a positive premium rounds up, a negative one (a discount) rounds down; sell: the reverse.
        uint256 premium = Math.mulDiv(
            price,
            SignedMath.abs(num),
            2 * skewScale,
            (num > 0) == buy ? Math.Rounding.Ceil : Math.Rounding.Floor
        );
        return num >= 0 ? int256(price + premium) : int256(price) - int256(premium);
    }

    /// @notice Fee in quote units (rounded up) on the notional |sizeDelta|·fill: the part of the trade
    /// that moves the skew toward zero (at most |skew|) pays `makerFee`, the rest `takerFee`.
    /// @param quoteUnit One quote unit in USD WAD (10^(18 − decimals)).
    function fee(
        int256 skew,
        int256 sizeDelta,
        uint256 fill,
        uint256 makerFee,
        uint256 takerFee,
        uint256 quoteUnit
    ) internal pure returns (uint256) {
        uint256 size = SignedMath.abs(sizeDelta);
        uint256 maker = (skew > 0) != (sizeDelta > 0) ? Math.min(size, SignedMath.abs(skew)) : 0;
        uint256 weighted = maker * makerFee + (size - maker) * takerFee;
        return Math.mulDiv(weighted, fill, WAD * WAD * quoteUnit, Math.Rounding.Ceil);
    }

    /// @notice What a trade pays beyond the oracle price through the skew premium, in quote units
    /// (rounded up): |fill − price|·|size| when the fill is worse than the price for the trader, else 0.
    function premiumPaid(
        uint256 price,
        uint256 fill,
        int256 sizeDelta,
        uint256 quoteUnit
    ) internal pure returns (uint256) {
        uint256 worse = sizeDelta > 0 ? (fill > price ? fill - price : 0) : (price > fill ? price - fill : 0);
        return Math.mulDiv(worse, SignedMath.abs(sizeDelta), WAD * quoteUnit, Math.Rounding.Ceil);
    }

    /// @notice Advances the funding rate and index by `dt` seconds (velocity model).
    /// @dev The rate drifts linearly at maxFundingVelocity·clamp(skew/skewScale, −1, 1) per day until it
    /// hits ±maxFundingRate, then stays there. The index grows by the exact integral of that piecewise
    /// linear rate over the interval times `price`: ∫rate dt / 1 day · price. Only differences of the
    /// index matter for value (every unit of funding a trader pays the pool receives), so truncation here
    /// moves no value; rounding against the trader happens when funding is settled.
    /// @return newRate The rate per day at the end of the interval (WAD).
    /// @return newIndex The index at the end of the interval (USD WAD per unit of size).
    function accrueFunding(
        int256 rate,
        int256 index,
        int256 skew,
        uint256 skewScale,
        uint256 maxFundingVelocity,
        uint256 maxFundingRate,
        uint256 price,
        uint256 dt
    ) internal pure returns (int256 newRate, int256 newIndex) {
        int256 integral;
        (newRate, integral) = rateIntegral(
            rate,
            drift(skew, skewScale, maxFundingVelocity),
            maxFundingRate,
            dt
        );
        newIndex = index + (integral * int256(price)) / (SWAD * DAY);
    }

    /// @notice Change of the funding rate per day: maxFundingVelocity·clamp(skew/skewScale, −1, 1).
    function drift(
        int256 skew,
        uint256 skewScale,
        uint256 maxFundingVelocity
    ) internal pure returns (int256) {
        return (int256(maxFundingVelocity) * _clamp((skew * SWAD) / int256(skewScale), SWAD)) / SWAD;
    }

    /// @notice The rate after `dt` seconds of linear drift clamped to ±maxFundingRate, and its integral
    /// over the interval (WAD·seconds).
    function rateIntegral(
        int256 rate,
        int256 ratePerDay,
        uint256 maxFundingRate,
        uint256 dt
    ) internal pure returns (int256 newRate, int256 integral) {
        int256 maxRate = int256(maxFundingRate);
        // A lowered maxFundingRate applies from now on (setMarketParams also clamps the stored rate).
        rate = _clamp(rate, maxRate);
        int256 elapsed = int256(dt);
        int256 unclamped = rate + (ratePerDay * elapsed) / DAY;
        if (unclamped > maxRate || unclamped < -maxRate) {
            newRate = unclamped > maxRate ? maxRate : -maxRate;
            // The rate reaches the bound after (bound − rate)/drift days; the drift is nonzero here
            // because the starting rate is inside the bounds, and 0 ≤ hit ≤ elapsed.
            int256 hit = ((newRate - rate) * DAY) / ratePerDay;
            integral = ((rate + newRate) * hit) / 2 + newRate * (elapsed - hit);
        } else {
            newRate = unclamped;
            integral = ((rate + unclamped) * elapsed) / 2;
        }
    }

    /// @notice Entry price after adding `sizeDelta` (same sign) to a position of `size` at `entry`,
    /// filled at `fill`: the size-weighted average, rounded up for longs and down for shorts.
    function averageEntry(
        int256 size,
        uint256 entry,
        int256 sizeDelta,
        uint256 fill
    ) internal pure returns (uint256) {
        uint256 oldAbs = SignedMath.abs(size);
        uint256 addAbs = SignedMath.abs(sizeDelta);
        uint256 cost = oldAbs * entry + addAbs * fill;
        uint256 total = oldAbs + addAbs;
        return sizeDelta > 0 ? Math.ceilDiv(cost, total) : cost / total;
    }

    /// @notice `a` rounded toward negative infinity after division by a positive `b`.
    function divFloor(int256 a, int256 b) internal pure returns (int256 c) {
        c = a / b;
        if (a % b != 0 && a < 0) c -= 1;
    }

    /// @notice `a` rounded toward positive infinity after division by a positive `b`.
    function divCeil(int256 a, int256 b) internal pure returns (int256 c) {
        c = a / b;
        if (a % b != 0 && a > 0) c += 1;
    }

    function _clamp(int256 x, int256 bound) private pure returns (int256) {
        return x > bound ? bound : (x < -bound ? -bound : x);
    }
}
