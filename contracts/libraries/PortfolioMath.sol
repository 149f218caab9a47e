// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SignedWadMath} from "./SignedWadMath.sol";

/// @title PortfolioMath
/// @notice Scenario-based requirement of one underlying's positions. Pure; WAD throughout.
/// @dev A scenario moves spot by dS and volatility by dσ over the grid dS ∈ {−s, −s/2, 0, +s/2, +s}·spot
/// × dσ ∈ {−v, 0, +v}. Positions whose Greeks describe them well over that range enter through their
/// aggregated Greeks, as the second-order Taylor estimate
///     Δ·dS + ½·Γ·dS² + vega·dσ + vanna·dS·dσ + ½·volga·dσ²;
/// the others (an option whose own σ√τ is smaller than the spot shock, or whose volatility is smaller
/// than twice the volatility shock: near expiry, or at low volatility) are repriced in every scenario by their
/// market and enter as exact PnLs. The requirement is the worst loss over the grid, plus a floor for
/// net short options and a contingency on gross notional.
library PortfolioMath {
    using SignedWadMath for int256;

    uint256 internal constant WAD = 1e18;
    uint256 internal constant YEAR = 365 days;
    /// @notice Spot moves in the grid (−s, −s/2, 0, +s/2, +s).
    uint256 internal constant SPOT_MOVES = 5;
    /// @notice Volatility moves in the grid (−v, 0, +v).
    uint256 internal constant VOL_MOVES = 3;
    /// @notice Cells of the grid; cell i·VOL_MOVES + j moves spot by `spotMoves[i]` and volatility by
    /// `volMoves[j]`.
    uint256 internal constant CELLS = SPOT_MOVES * VOL_MOVES;

    /// @notice Aggregated risk of the positions on one underlying.
    struct Greeks {
        int256 delta;
        int256 gamma;
        int256 vega;
        int256 optionSize;
        uint256 notional;
        int256 vanna;
        int256 volga;
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
    /// @dev Here and in `spotShock`, plain products and ceiling divisions give `Math.mulDiv`'s results
    /// for ~600 gas less each, and every health check evaluates them per underlying. The products stay
    /// far below 2^256 under the engine's bounds (horizon ≤ 30 days, volatility ≤ 10, z ≤ 10, shocks ≤ 1
    /// after the cap, sizeScale ≥ 10,000 USD, gross notional < 2^170 under the open-interest caps and the
    /// oracle's price bounds); an impossible overflow would revert, never wrap.
    function horizonVolatility(uint256 volatility, uint256 horizon) internal pure returns (uint256) {
        uint256 sqrtTime = Math.sqrt((horizon * WAD * WAD) / YEAR, Math.Rounding.Ceil);
        return Math.ceilDiv(volatility * sqrtTime, WAD);
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
        shock = Math.max(floor, Math.ceilDiv(z * sigmaSqrtHorizon, WAD));
        if (sizeScale != 0) {
            shock = Math.ceilDiv(shock * (WAD + Math.ceilDiv(grossNotional * WAD, sizeScale)), WAD);
        }
        if (shock > maxShock) shock = maxShock;
    }

    /// @notice Whether a position with σ√τ `totalVolatility` and model volatility `modelVolatility` must
    /// be repriced under `k` rather than enter through its Greeks: its Greeks are local, and a spot shock
    /// larger than the option's own one-standard-deviation move in log spot until expiry, or a
    /// volatility shock larger than half its volatility, takes it where they say little: a 25-point
    /// fall from 30% put an adversarial book's loss at 4.4× its IM, and a long's IM below its MM
    /// (review round 26; docs/portfolio-margin-accuracy.md measures it). Linear positions
    /// (`totalVolatility` 0) never need it.
    function needsRepricing(
        uint256 totalVolatility,
        uint256 modelVolatility,
        Shocks memory k
    ) internal pure returns (bool) {
        return totalVolatility != 0 && (k.spotShock > totalVolatility || 2 * k.volShock > modelVolatility);
    }

    /// @notice The grid's moves at `spot` under `k`: spot moves (USD WAD) fullMove·{−1, −½, 0, ½, 1},
    /// fullMove = ⌈spot·s⌉ (each half truncated toward zero), and volatility moves {−v, 0, +v}.
    function scenarioMoves(
        uint256 spot,
        Shocks memory k
    ) internal pure returns (int256[] memory spotMoves, int256[] memory volMoves) {
        int256 fullMove = int256(Math.mulDiv(spot, k.spotShock, WAD, Math.Rounding.Ceil));
        spotMoves = new int256[](SPOT_MOVES);
        for (uint256 i; i < SPOT_MOVES; ++i) spotMoves[i] = (fullMove * (int256(i) - 2)) / 2;
        volMoves = new int256[](VOL_MOVES);
        volMoves[0] = -int256(k.volShock);
        volMoves[2] = int256(k.volShock);
    }

    /// @notice Requirement (USD WAD, rounded up) of the positions with aggregated Greeks `g` plus the
    /// repriced ones, whose PnL per cell is `repricedPnls` (CELLS entries, or empty when none are).
    /// `g.optionSize` and `g.notional` cover all positions (the floor and the contingency apply to all).
    function requirement(
        Greeks memory g,
        uint256 spot,
        Shocks memory k,
        int256[] memory repricedPnls
    ) internal pure returns (uint256) {
        uint256 worst = worstScenarioLoss(g, spot, k, repricedPnls);
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

    /// @notice The largest loss (≥ 0) over the grid's cells: the Taylor PnL of `g` plus the repriced PnL.
    /// @dev Each Taylor term is rounded down (against the account), so the loss rounds up. The products
    /// stay far below 2^255 for any book the engine accepts (dS < 1e30, Γ < 1e16 per unit notional);
    /// the cross terms are multiplied one factor at a time. The terms in dσ alone (vega, volga) are the
    /// same for every spot move and are computed once per volatility move.
    function worstScenarioLoss(
        Greeks memory g,
        uint256 spot,
        Shocks memory k,
        int256[] memory repricedPnls
    ) internal pure returns (uint256) {
        int256 fullMove = int256(Math.mulDiv(spot, k.spotShock, WAD, Math.Rounding.Ceil));
        int256 v = int256(k.volShock);
        int256[2] memory volPnls = [_volatilityPnl(g, -v), _volatilityPnl(g, v)];
        int256 worstPnl = 0;
        for (uint256 i; i < SPOT_MOVES; ++i) {
            int256 dS = (fullMove * (int256(i) - 2)) / 2; // as `scenarioMoves`
            int256 pnl = _worstAtSpotMove(g, dS, v, volPnls, repricedPnls, i * VOL_MOVES);
            if (pnl < worstPnl) worstPnl = pnl;
        }
        return uint256(-worstPnl);
    }

    /// @dev vega·dσ + ½·volga·dσ², each rounded down.
    function _volatilityPnl(Greeks memory g, int256 dv) private pure returns (int256) {
        return g.vega.mulWadDown(dv) + SignedWadMath.divDown(g.volga.mulWadDown(dv).mulWadDown(dv), 2);
    }

    /// @dev The worst of the three cells with spot move dS (volatility −v, 0, +v), starting at cell `c`.
    function _worstAtSpotMove(
        Greeks memory g,
        int256 dS,
        int256 v,
        int256[2] memory volPnls,
        int256[] memory repricedPnls,
        uint256 c
    ) private pure returns (int256 worst) {
        int256 spotPnl = g.delta.mulWadDown(dS);
        if (g.gamma != 0) spotPnl += SignedWadMath.divDown(g.gamma * dS * dS, 2 * WAD * WAD);
        int256 vannaDS = g.vanna.mulWadDown(dS);
        int256 down = spotPnl + volPnls[0] + vannaDS.mulWadDown(-v);
        int256 up = spotPnl + volPnls[1] + vannaDS.mulWadDown(v);
        if (repricedPnls.length != 0) {
            down += repricedPnls[c];
            spotPnl += repricedPnls[c + 1];
            up += repricedPnls[c + 2];
        }
        worst = spotPnl < down ? spotPnl : down;
        if (up < worst) worst = up;
    }
}
