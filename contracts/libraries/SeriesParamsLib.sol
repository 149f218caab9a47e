// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IOptionMarket} from "../interfaces/IOptionMarket.sol";

/// @title SeriesParamsLib
/// @notice Hard bounds, listing floors and per-update steps of an option series' trading parameters.
/// The checks are external (a linked library OptionMarket delegatecalls, as the engine does
/// `RiskParamsLib`): they run only on the listing role's listings and the risk role's updates, and kept
/// inline they left OptionMarket 61 bytes under the EIP-170 limit. Refusals are OptionMarket's own
/// `SeriesParamOutOfBounds`, so callers decode them with its ABI.
library SeriesParamsLib {
    // Hard bounds (WAD unless stated).
    /// @dev Largest spread factor: 10 volatility points each side of the model price.
    uint256 internal constant MAX_SPREAD_FACTOR = 0.1e18;
    /// @dev Largest fee: half a percent of the underlying notional.
    uint256 internal constant MAX_FEE = 0.005e18;
    /// @dev Largest share of a fee paid to the insurance fund: the pool keeps at least half.
    uint256 internal constant MAX_INSURANCE_FEE_SHARE = 0.5e18;
    /// @dev Largest open-interest cap of a series: 10^12 contracts.
    uint256 internal constant MAX_OPEN_INTEREST = 1e30;

    // Max steps per update after listing. Open-interest caps may fall freely (that only reduces risk)
    // and at most double per update.
    uint256 internal constant MAX_SPREAD_FACTOR_STEP = 0.01e18;
    uint256 internal constant MAX_FEE_STEP = 0.001e18;
    uint256 internal constant MAX_INSURANCE_FEE_SHARE_STEP = 0.1e18;

    /// @notice Reverts with SeriesParamOutOfBounds unless a new series' parameters are inside their hard
    /// bounds and at least the underlying's listing floors (a new series has no values to step up from).
    /// @param p The parameters to list with.
    /// @param minFee The underlying's fee floor.
    /// @param minSpreadFactor The underlying's spread-factor floor.
    function checkListing(
        IOptionMarket.SeriesParams calldata p,
        uint256 minFee,
        uint256 minSpreadFactor
    ) external pure {
        _checkBounds(p);
        _checkFloors(p, minFee, minSpreadFactor);
    }

    /// @notice Reverts with SeriesParamOutOfBounds unless the new parameters are inside their hard bounds,
    /// move each value by at most its step from `old`, and keep the listing floors. A series already below
    /// a floor (raised after its listing) may stay there or step toward it, but not fall further.
    /// @param old The series' current parameters (OptionMarket's storage, read through the delegatecall).
    /// @param p The parameters to set.
    /// @param minFee The underlying's fee floor.
    /// @param minSpreadFactor The underlying's spread-factor floor.
    function checkUpdate(
        IOptionMarket.SeriesParams storage old,
        IOptionMarket.SeriesParams calldata p,
        uint256 minFee,
        uint256 minSpreadFactor
    ) external view {
        _checkBounds(p);
        _require(_within(old.spreadFactor, p.spreadFactor, MAX_SPREAD_FACTOR_STEP), "spreadFactor");
        _require(_within(old.fee, p.fee, MAX_FEE_STEP), "fee");
        _require(
            _within(old.insuranceFeeShare, p.insuranceFeeShare, MAX_INSURANCE_FEE_SHARE_STEP),
            "insuranceFeeShare"
        );
        _require(p.maxOpenInterest <= 2 * uint256(old.maxOpenInterest), "maxOpenInterest");
        _checkFloors(p, Math.min(minFee, old.fee), Math.min(minSpreadFactor, old.spreadFactor));
    }

    function _checkBounds(IOptionMarket.SeriesParams calldata p) private pure {
        _require(p.spreadFactor <= MAX_SPREAD_FACTOR, "spreadFactor");
        _require(p.fee <= MAX_FEE, "fee");
        _require(p.insuranceFeeShare <= MAX_INSURANCE_FEE_SHARE, "insuranceFeeShare");
        _require(p.maxOpenInterest != 0 && p.maxOpenInterest <= MAX_OPEN_INTEREST, "maxOpenInterest");
    }

    function _checkFloors(
        IOptionMarket.SeriesParams calldata p,
        uint256 minFee,
        uint256 minSpreadFactor
    ) private pure {
        _require(p.fee >= minFee, "fee");
        _require(p.spreadFactor >= minSpreadFactor, "spreadFactor");
    }

    function _within(uint256 a, uint256 b, uint256 step) private pure returns (bool) {
        return a > b ? a - b <= step : b - a <= step;
    }

    function _require(bool ok, bytes32 parameter) private pure {
        if (!ok) revert IOptionMarket.SeriesParamOutOfBounds(parameter);
    }
}
