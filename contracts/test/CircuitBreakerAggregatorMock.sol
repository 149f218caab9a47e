// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/tests/MockV3Aggregator.sol";

/// @title CircuitBreakerAggregatorMock
/// @notice Test-only Chainlink feed with an OCR aggregator's circuit breaker: `minAnswer`/`maxAnswer`,
/// and `aggregator()` as a proxy exposes it (the mock is its own aggregator). `report` posts what an
/// OCR round would: the market price when inside the band, otherwise the band's edge (an OCR
/// aggregator refuses a median outside the band, so the feed stays at or near the edge).
contract CircuitBreakerAggregatorMock is MockV3Aggregator {
    /// @notice The lowest answer the aggregator accepts.
    int192 public immutable minAnswer;
    /// @notice The highest answer the aggregator accepts.
    int192 public immutable maxAnswer;

    /// @param decimals_ The feed's decimals.
    /// @param initialAnswer The first round's answer.
    /// @param minAnswer_ The aggregator's floor.
    /// @param maxAnswer_ The aggregator's ceiling.
    constructor(
        uint8 decimals_,
        int256 initialAnswer,
        int192 minAnswer_,
        int192 maxAnswer_
    ) MockV3Aggregator(decimals_, initialAnswer) {
        minAnswer = minAnswer_;
        maxAnswer = maxAnswer_;
    }

    /// @notice A Chainlink proxy's current aggregator (here the mock itself).
    function aggregator() external view returns (address) {
        return address(this);
    }

    /// @notice Posts a round for a market price of `marketAnswer`, held inside the band.
    function report(int256 marketAnswer) external {
        int256 answer = marketAnswer < minAnswer ? int256(minAnswer) : marketAnswer;
        updateAnswer(answer > maxAnswer ? int256(maxAnswer) : answer);
    }
}
