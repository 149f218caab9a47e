// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

/// @notice The phase logic of Chainlink's `AggregatorProxy` (the proxy behind every price feed), for tests
/// of aggregator upgrades: each `confirmAggregator` starts a phase, the proxy's round ids are
/// `(phaseId << 64) | aggregatorRoundId`, a round is read from the aggregator of its phase
/// (`phaseAggregators`), and `decimals()` and `latestRoundData()` answer with the current one. The
/// proposal step and the owner are left out: tests confirm directly.
contract AggregatorProxyMock is AggregatorV3Interface {
    uint8 private constant PHASE_OFFSET = 64;

    uint16 public phaseId;
    mapping(uint16 => AggregatorV3Interface) public phaseAggregators;

    constructor(AggregatorV3Interface aggregator_) {
        confirmAggregator(aggregator_);
    }

    function confirmAggregator(AggregatorV3Interface aggregator_) public {
        phaseAggregators[++phaseId] = aggregator_;
    }

    function aggregator() external view returns (address) {
        return address(phaseAggregators[phaseId]);
    }

    function decimals() external view returns (uint8) {
        return phaseAggregators[phaseId].decimals();
    }

    function description() external view returns (string memory) {
        return phaseAggregators[phaseId].description();
    }

    function version() external view returns (uint256) {
        return phaseAggregators[phaseId].version();
    }

    function getRoundData(uint80 roundId) external view returns (uint80, int256, uint256, uint256, uint80) {
        uint16 phase = uint16(roundId >> PHASE_OFFSET);
        (
            uint80 id,
            int256 answer,
            uint256 startedAt,
            uint256 updatedAt,
            uint80 answeredInRound
        ) = phaseAggregators[phase].getRoundData(uint64(roundId));
        return _withPhase(phase, id, answer, startedAt, updatedAt, answeredInRound);
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        (
            uint80 id,
            int256 answer,
            uint256 startedAt,
            uint256 updatedAt,
            uint80 answeredInRound
        ) = phaseAggregators[phaseId].latestRoundData();
        return _withPhase(phaseId, id, answer, startedAt, updatedAt, answeredInRound);
    }

    function _withPhase(
        uint16 phase,
        uint80 roundId,
        int256 answer,
        uint256 startedAt,
        uint256 updatedAt,
        uint80 answeredInRound
    ) private pure returns (uint80, int256, uint256, uint256, uint80) {
        uint80 prefix = uint80(phase) << PHASE_OFFSET;
        return (prefix | roundId, answer, startedAt, updatedAt, prefix | answeredInRound);
    }
}
