// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SignedWadMath} from "./SignedWadMath.sol";

/// @title PortfolioMath
/// @notice Scenario-based requirement of one underlying's aggregated Greeks. Pure; WAD throughout.
/// @dev A scenario moves spot by dS and volatility by dσ; the second-order Taylor estimate of the
/// portfolio's PnL is Δ·dS + ½·Γ·dS² + vega·dσ. The requirement is the worst loss over the grid
/// dS ∈ {−s, −s/2, 0, +s/2, +s}·spot × dσ ∈ {−v, 0, +v}, plus a floor for net short options (the
/// expansion underestimates deep moves against short gamma) and a contingency on gross notional.
library PortfolioMath {
    using SignedWadMath for int256;

    uint256 internal constant WAD = 1e18;
    uint256 internal constant YEAR = 365 days;

    /// @notice Aggregated risk of the positions on one underlying.
    struct Greeks {
        int256 delta;
        int256 gamma;
        int256 vega;
        int256 optionSize;
        uint256 notional;
    }

    /// @notice Shock sizes and add-ons for one requirement level (IM or MM).
    struct Shocks {
        uint256 spotShock;
        uint256 volShock;
        uint256 shortOptionFloor;
        uint256 contingency;
    }

    /// @notice σ·√(horizon/year): the one-standard-deviation move over the liquidation horizon (WAD),
    /// rounded up. Computed once per underlying and shared by the IM and MM shocks.
    function horizonVolatility(uint256 volatility, uint256 horizon) internal pure returns (uint256) {
        uint256 sqrtTime = Math.sqrt(Math.mulDiv(horizon, WAD * WAD, YEAR), Math.Rounding.Ceil);
        return Math.mulDiv(volatility, sqrtTime, WAD, Math.Rounding.Ceil);
    }

    /// @notice Spot shock s = min(maxShock, max(floor, z·σ√h) · (1 + notional/sizeScale)), rounded up:
    /// larger books are margined as if they took longer to unwind.
    function spotShock(
        uint256 floor,
        uint256 z,
        uint256 sigmaSqrtHorizon,
        uint256 maxShock,
        uint256 sizeScale,
        uint256 grossNotional
    ) internal pure returns (uint256 shock) {
        uint256 volShock = Math.mulDiv(z, sigmaSqrtHorizon, WAD, Math.Rounding.Ceil);
        shock = Math.max(floor, volShock);
        if (sizeScale != 0) {
            shock = Math.mulDiv(
                shock,
                WAD + Math.mulDiv(grossNotional, WAD, sizeScale, Math.Rounding.Ceil),
                WAD,
                Math.Rounding.Ceil
            );
        }
        if (shock > maxShock) shock = maxShock;
    }

    /// @notice Requirement of `g` at `spot` under `k` (USD WAD, rounded up).
    function requirement(Greeks memory g, uint256 spot, Shocks memory k) internal pure returns (uint256) {
        uint256 worst = worstScenarioLoss(g, spot, k.spotShock, k.volShock);
        uint256 netShortOptions = g.optionSize < 0 ? uint256(-g.optionSize) : 0;
        uint256 floor = Math.mulDiv(
            Math.mulDiv(netShortOptions, spot, WAD, Math.Rounding.Ceil),
            k.shortOptionFloor,
            WAD,
            Math.Rounding.Ceil
        );
        uint256 contingency = Math.mulDiv(g.notional, k.contingency, WAD, Math.Rounding.Ceil);
        return worst + floor + contingency;
    }

    /// @notice The largest loss (≥ 0) over the 5 × 3 scenario grid.
    /// @dev The Taylor PnL is a sum of a spot term and a volatility term, so the grid is separable: its
    /// worst cell pairs the worst of the five spot moves with the worse of the two volatility moves,
    /// |vega|·v. Evaluating it that way gives exactly the same number as the 15 cells, in a third of
    /// the gas; the zero moves are dominated (PnL 0) and skipped.
    function worstScenarioLoss(
        Greeks memory g,
        uint256 spot,
        uint256 shock,
        uint256 volShock
    ) internal pure returns (uint256) {
        int256 fullMove = int256(Math.mulDiv(spot, shock, WAD, Math.Rounding.Ceil));
        int256 worstSpotPnl = 0;
        for (int256 i = -2; i <= 2; ++i) {
            if (i == 0) continue;
            int256 dS = (fullMove * i) / 2;
            // PnL rounded down (against the account) so the loss rounds up. |Γ|·dS² stays far below
            // 2^255 for any book the engine accepts (dS < 1e30, Γ < 1e16 per unit notional).
            int256 pnl = g.delta.mulWadDown(dS);
            if (g.gamma != 0) pnl += SignedWadMath.divDown(g.gamma * dS * dS, 2 * WAD * WAD);
            if (pnl < worstSpotPnl) worstSpotPnl = pnl;
        }
        // The worse volatility move loses |vega|·v: its PnL −|vega|·v rounded down, so the loss rounds up.
        uint256 volLoss;
        if (g.vega != 0) {
            int256 negAbsVega = g.vega < 0 ? g.vega : -g.vega;
            volLoss = uint256(-negAbsVega.mulWadDown(int256(volShock)));
        }
        return uint256(-worstSpotPnl) + volLoss;
    }
}
