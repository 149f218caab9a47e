// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IMarginEngine} from "../interfaces/IMarginEngine.sol";

/// @title RiskParamsLib
/// @notice Hard bounds and per-update steps for the engine's risk parameters. Governance can tune
/// margins, but never to values that disable them, and never by a jump that would liquidate
/// accounts overnight. The checks are external (a linked library the engine delegatecalls): they run only
/// on governance's listings and updates, and kept inline they took ~2,000 of the engine's bytes under the
/// EIP-170 limit.
library RiskParamsLib {
    uint256 internal constant MIN_SHOCK = 0.01e18;
    uint256 internal constant MAX_Z = 10e18;
    uint256 internal constant MIN_HORIZON = 1 hours;
    uint256 internal constant MAX_HORIZON = 30 days;
    /// @dev Five volatility points: at 0 the maintenance grid would cover no volatility move of an
    /// option book, and a vol drop alone could take a long-option book from its requirement to insolvency.
    uint256 internal constant MIN_VOL_SHOCK = 0.05e18;
    uint256 internal constant MAX_VOL_SHOCK = 2e18;
    uint256 internal constant MAX_SHORT_OPTION_FLOOR = 0.5e18;
    uint256 internal constant MAX_CONTINGENCY = 0.1e18;
    uint256 internal constant MIN_SIZE_SCALE = 10_000e18;

    uint256 internal constant MAX_SHOCK_STEP = 0.05e18;
    uint256 internal constant MAX_Z_STEP = 1e18;
    uint256 internal constant MAX_VOL_SHOCK_STEP = 0.1e18;
    uint256 internal constant MAX_CONTINGENCY_STEP = 0.01e18;

    uint256 private constant WAD = 1e18;

    /// @notice Reverts with RiskParamOutOfBounds unless every parameter is inside its hard bounds and
    /// every IM parameter is at least its MM counterpart (so IM ≥ MM).
    function checkBounds(IMarginEngine.RiskParams calldata p) external pure {
        _require(p.mmShockFloor >= MIN_SHOCK, "mmShockFloor");
        _require(p.imShockFloor >= p.mmShockFloor, "imShockFloor");
        _require(p.maxShock >= p.imShockFloor && p.maxShock <= 1e18, "maxShock");
        _require(p.imZ >= p.mmZ && p.imZ <= MAX_Z, "imZ");
        _require(p.horizon >= MIN_HORIZON && p.horizon <= MAX_HORIZON, "horizon");
        _require(p.mmVolShock >= MIN_VOL_SHOCK, "mmVolShock");
        _require(p.imVolShock >= p.mmVolShock && p.imVolShock <= MAX_VOL_SHOCK, "imVolShock");
        _require(p.shortOptionFloor <= MAX_SHORT_OPTION_FLOOR, "shortOptionFloor");
        _require(p.contingency <= MAX_CONTINGENCY, "contingency");
        _require(p.sizeScale == 0 || p.sizeScale >= MIN_SIZE_SCALE, "sizeScale");
    }

    /// @notice Reverts with RiskParamOutOfBounds if any parameter moves more than its max step, or if the
    /// moves that raise the maintenance requirement add up to more than one step (`maintenanceRise`).
    function checkSteps(
        IMarginEngine.RiskParams calldata old,
        IMarginEngine.RiskParams calldata p
    ) external pure {
        _require(_within(old.mmShockFloor, p.mmShockFloor, MAX_SHOCK_STEP), "mmShockFloor");
        _require(_within(old.imShockFloor, p.imShockFloor, MAX_SHOCK_STEP), "imShockFloor");
        _require(_within(old.maxShock, p.maxShock, MAX_SHOCK_STEP), "maxShock");
        _require(_within(old.mmZ, p.mmZ, MAX_Z_STEP), "mmZ");
        _require(_within(old.imZ, p.imZ, MAX_Z_STEP), "imZ");
        _require(p.horizon <= 2 * old.horizon && 2 * p.horizon >= old.horizon, "horizon");
        _require(_within(old.mmVolShock, p.mmVolShock, MAX_VOL_SHOCK_STEP), "mmVolShock");
        _require(_within(old.imVolShock, p.imVolShock, MAX_VOL_SHOCK_STEP), "imVolShock");
        _require(_within(old.shortOptionFloor, p.shortOptionFloor, MAX_SHOCK_STEP), "shortOptionFloor");
        _require(_within(old.contingency, p.contingency, MAX_CONTINGENCY_STEP), "contingency");
        // Size scaling can be turned on or off only through a listing-level redeploy of the params.
        _require(
            (old.sizeScale == 0) == (p.sizeScale == 0) &&
                uint256(p.sizeScale) <= 2 * uint256(old.sizeScale) &&
                2 * uint256(p.sizeScale) >= old.sizeScale,
            "sizeScale"
        );
        _require(maintenanceRise(old, p) <= WAD, "maintenanceStep");
    }

    /// @notice How far an update raises the maintenance requirement, in max steps (WAD): each move that
    /// raises it (a maintenance shock or its cap, z, the horizon, the volatility shock, the short-option
    /// floor, the contingency), summed, then compounded with a smaller size scale's (the size factor
    /// multiplies the shock: (1 + sum)·(1 + size) − 1). A raise counts as its fraction of the
    /// field's max step or of the field's current value (at least a fifth of the max step), whichever
    /// is more: a doubling is one step (the horizon and the size scale count only that way).
    /// @dev `checkSteps` allows at most one (WAD). Bounded one field at a time, a single call could take
    /// all eight their full step at once and made an account at twice its maintenance requirement
    /// liquidatable at an unchanged price (review round 22); and a full absolute step of a small value
    /// multiplies it: the contingency's 0.002 → 0.012 took a hedged book, whose MM is nearly all
    /// contingency, from 4× its MM to 0.67× (round 25). With a doubling at most, an account at twice
    /// the requirement a field drives stays at or above it. IM-only fields are left out: raising IM
    /// blocks new risk, it liquidates nobody. A cut of the maintenance shock floor counts too, as its
    /// fraction of the max step: it lowers the cap on a shocked collateral token's maintenance credit
    /// (`MarginEngine._addCollateralDelta`), so it takes up to mark·cut from equity_MM (review round 147,
    /// §4 row 450).
    function maintenanceRise(
        IMarginEngine.RiskParams memory old,
        IMarginEngine.RiskParams memory p
    ) internal pure returns (uint256) {
        uint256 rise = _rise(old.mmShockFloor, p.mmShockFloor, MAX_SHOCK_STEP) +
            _cut(old.mmShockFloor, p.mmShockFloor, MAX_SHOCK_STEP) +
            _rise(old.maxShock, p.maxShock, MAX_SHOCK_STEP) +
            _rise(old.mmZ, p.mmZ, MAX_Z_STEP) +
            _rise(old.horizon, p.horizon, old.horizon) +
            _rise(old.mmVolShock, p.mmVolShock, MAX_VOL_SHOCK_STEP) +
            _rise(old.shortOptionFloor, p.shortOptionFloor, MAX_SHOCK_STEP) +
            _rise(old.contingency, p.contingency, MAX_CONTINGENCY_STEP);
        // The size scale multiplies the shock the others set ((1 + N/sizeScale)), so its raise compounds
        // with theirs: (1 + rise)·(1 + sized) − 1. Added, a floor ×1.65 and a size scale ÷1.35 counted as
        // one step and multiplied a large book's MM by 2.1 (review round 49).
        uint256 sized = _rise(p.sizeScale, old.sizeScale, p.sizeScale);
        return rise + sized + (rise * sized) / WAD;
    }

    /// @dev A move from `a` up to `b` in steps (WAD): (b − a) over the smaller of `step` and
    /// max(a, step / 5); 0 when b ≤ a.
    function _rise(uint256 a, uint256 b, uint256 step) private pure returns (uint256) {
        if (b <= a) return 0;
        uint256 base = a > step / 5 ? a : step / 5;
        return ((b - a) * WAD) / (base < step ? base : step);
    }

    /// @dev A move from `a` down to `b` in steps (WAD): (a − b) / `step`, absolute because the credit it
    /// caps is mark·floor; 0 when b ≥ a.
    function _cut(uint256 a, uint256 b, uint256 step) private pure returns (uint256) {
        return a > b ? ((a - b) * WAD) / step : 0;
    }

    function _within(uint256 a, uint256 b, uint256 step) private pure returns (bool) {
        return a > b ? a - b <= step : b - a <= step;
    }

    function _require(bool ok, bytes32 parameter) private pure {
        if (!ok) revert IMarginEngine.RiskParamOutOfBounds(parameter);
    }
}
