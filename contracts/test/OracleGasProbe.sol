// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IOracleRouter} from "../interfaces/IOracleRouter.sol";

/// @notice Test-only: measures the gas of the oracle reads a health check makes (prices, then
/// volatilities), in one call so every router and feed access is cold exactly as in a fresh transaction.
contract OracleGasProbe {
    function measure(
        IOracleRouter router,
        bytes32[] calldata priced,
        bytes32[] calldata withVolatility
    ) external view returns (uint256 used) {
        uint256 start = gasleft();
        for (uint256 i; i < priced.length; ++i) router.getPrice(priced[i]);
        for (uint256 i; i < withVolatility.length; ++i) router.getVolatility(withVolatility[i]);
        used = start - gasleft();
    }
}
