// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

/// @title BreakableFeedMock
/// @notice Test-only feed that answers with `inner`'s rounds, or reverts every read while `broken` is set
/// (a retired feed whose contract stopped answering, or its proxy's access control shut).
contract BreakableFeedMock is AggregatorV3Interface {
    /// @notice Raised by the read functions while `broken` is set.
    error FeedBroken();

    /// @notice The feed whose answers this one gives.
    AggregatorV3Interface public immutable inner;
    /// @notice Whether reads revert.
    bool public broken;

    /// @param inner_ The feed to answer with.
    constructor(AggregatorV3Interface inner_) {
        inner = inner_;
    }

    /// @notice Makes reads revert (or not).
    function setBroken(bool broken_) external {
        broken = broken_;
    }

    function decimals() external view returns (uint8) {
        return inner.decimals();
    }

    function description() external view returns (string memory) {
        return inner.description();
    }

    function version() external view returns (uint256) {
        return inner.version();
    }

    function getRoundData(uint80 roundId) external view returns (uint80, int256, uint256, uint256, uint80) {
        if (broken) revert FeedBroken();
        return inner.getRoundData(roundId);
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        if (broken) revert FeedBroken();
        return inner.latestRoundData();
    }
}
