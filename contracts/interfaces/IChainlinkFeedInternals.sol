// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title IChainlinkProxy
/// @notice The parts of a Chainlink proxy that `AggregatorV3Interface` does not expose, which the oracle
/// router reads to find the aggregator behind a feed (`EACAggregatorProxy` has both).
interface IChainlinkProxy {
    /// @notice The aggregator the proxy currently reads its rounds from.
    /// @return The current aggregator's address.
    function aggregator() external view returns (address);

    /// @notice The aggregator that served a phase of the proxy (the high 16 bits of a proxy round id).
    /// @dev The router reads it to take a round's decimals from the aggregator that answered it, not from
    /// today's, across an aggregator upgrade.
    /// @param phaseId The phase.
    /// @return The phase's aggregator, or the zero address for a phase that never existed.
    function phaseAggregators(uint16 phaseId) external view returns (address);
}

/// @title IChainlinkCircuitBreaker
/// @notice The bounds an OCR aggregator accepts reports within. Outside [minAnswer, maxAnswer] it refuses
/// reports, so the feed stays at or near a bound while the market is beyond it: the router requires a
/// configured source's price bounds to lie a tenth inside this band, so such an answer fails closed.
interface IChainlinkCircuitBreaker {
    /// @notice The lowest answer the aggregator accepts, in the feed's decimals.
    /// @return The lower bound.
    function minAnswer() external view returns (int192);

    /// @notice The highest answer the aggregator accepts, in the feed's decimals.
    /// @return The upper bound.
    function maxAnswer() external view returns (int192);
}
