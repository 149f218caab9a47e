// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {BlackScholes} from "../libraries/BlackScholes.sol";

/// @notice Exposes BlackScholes to tests (accuracy against the float64 reference, domain, gas).
contract BlackScholesHarness {
    /// @notice Sum of the prices of the last `evaluateMany` call, stored so the loop has an effect.
    uint256 public lastPriceSum;

    /// @notice `BlackScholes.valuation`.
    function valuation(
        uint256 spot,
        uint256 strike,
        uint256 timeToExpiry,
        uint256 volatility,
        bool isCall
    ) external pure returns (BlackScholes.Valuation memory) {
        return BlackScholes.valuation(spot, strike, timeToExpiry, volatility, isCall);
    }

    /// @notice `BlackScholes.price`.
    function price(
        uint256 spot,
        uint256 strike,
        uint256 timeToExpiry,
        uint256 volatility,
        bool isCall
    ) external pure returns (uint256) {
        return BlackScholes.price(spot, strike, timeToExpiry, volatility, isCall);
    }

    /// @notice `BlackScholes.normCdf`.
    function normCdf(int256 d) external pure returns (uint256) {
        return BlackScholes.normCdf(d);
    }

    /// @notice `valuation` and the gas of the library call alone, bracketed by `gasleft()`.
    function valuationGas(
        uint256 spot,
        uint256 strike,
        uint256 timeToExpiry,
        uint256 volatility,
        bool isCall
    ) external view returns (BlackScholes.Valuation memory v, uint256 gasUsed) {
        uint256 before = gasleft();
        v = BlackScholes.valuation(spot, strike, timeToExpiry, volatility, isCall);
        gasUsed = before - gasleft();
    }

    /// @notice `price` and the gas of the library call alone, bracketed by `gasleft()`.
    function priceGas(
        uint256 spot,
        uint256 strike,
        uint256 timeToExpiry,
        uint256 volatility,
        bool isCall
    ) external view returns (uint256 value, uint256 gasUsed) {
        uint256 before = gasleft();
        value = BlackScholes.price(spot, strike, timeToExpiry, volatility, isCall);
        gasUsed = before - gasleft();
    }

    /// @notice Evaluates `valuation` `n` times in a transaction (the difference of two receipts with
    /// different `n` gives the marginal gas of one evaluation, loop overhead included).
    function evaluateMany(
        uint256 spot,
        uint256 strike,
        uint256 timeToExpiry,
        uint256 volatility,
        bool isCall,
        uint256 n
    ) external {
        uint256 sum;
        for (uint256 i; i < n; ++i) {
            // Vary the spot by i wei so no evaluation can be hoisted out of the loop.
            sum += BlackScholes.valuation(spot + i, strike, timeToExpiry, volatility, isCall).price;
        }
        lastPriceSum = sum;
    }
}
