// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title ConfigurableAggregatorMock
/// @notice Test-only Chainlink-style feed whose `latestRoundData()` returns exactly what the test sets,
/// including `answeredInRound < roundId` (which Chainlink's `MockV3Aggregator` cannot produce), or
/// reverts.
contract ConfigurableAggregatorMock {
    /// @notice Raised by the read functions while `broken` is set.
    error FeedBroken();

    /// @notice The feed's decimals.
    uint8 public immutable decimals;
    /// @notice Whether reads revert.
    bool public broken;

    uint80 private _roundId;
    int256 private _answer;
    uint256 private _startedAt;
    uint256 private _updatedAt;
    uint80 private _answeredInRound;

    /// @param decimals_ The decimals the feed reports.
    constructor(uint8 decimals_) {
        decimals = decimals_;
    }

    /// @notice Sets the round returned by `latestRoundData()`.
    function setRound(
        uint80 roundId,
        int256 answer,
        uint256 startedAt,
        uint256 updatedAt,
        uint80 answeredInRound
    ) external {
        (_roundId, _answer, _startedAt, _updatedAt, _answeredInRound) = (
            roundId,
            answer,
            startedAt,
            updatedAt,
            answeredInRound
        );
    }

    /// @notice Makes reads revert (or not).
    function setBroken(bool broken_) external {
        broken = broken_;
    }

    /// @notice Chainlink's `latestRoundData()`.
    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        if (broken) revert FeedBroken();
        return (_roundId, _answer, _startedAt, _updatedAt, _answeredInRound);
    }
}
