// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

// Test-only. What one `latestRoundData` costs on a production Chainlink feed, for the bench: the
// `EACAggregatorProxy` consumers call (solc 0.6, which cannot be fetched on these machines) in front of
// an OCR `AccessControlledOffchainAggregator`. The replicas make the same calls and read the same
// slots in the same order — the gas of a read is its cold accounts and slots — not the same values:
// proxy: `accessController` (zero on public feeds), `currentPhase` (id and aggregator in one slot),
// then the call; aggregator: the caller's access-list entry (`hasAccess` short-circuits on it, the
// proxy being listed), `s_hotVars` (holding the latest round id) and that round's transmission
// (answer and timestamp in one slot).

/// @notice The read path of an OCR `AccessControlledOffchainAggregator`.
contract OffchainAggregatorReadReplica is AggregatorV3Interface {
    struct HotVars {
        bytes16 latestConfigDigest;
        uint40 latestEpochAndRound;
        uint8 threshold;
        uint32 latestAggregatorRoundId;
    }

    struct Transmission {
        int192 answer;
        uint64 timestamp;
    }

    error NoAccess();

    address internal _owner;
    address internal _pendingOwner;
    bool internal _checkEnabled = true;
    mapping(address reader => bool) internal _accessList;
    HotVars internal _hotVars;
    mapping(uint32 roundId => Transmission) internal _transmissions;

    /// @inheritdoc AggregatorV3Interface
    function decimals() external pure returns (uint8) {
        return 8;
    }

    /// @inheritdoc AggregatorV3Interface
    function description() external pure returns (string memory) {
        return "replica";
    }

    /// @inheritdoc AggregatorV3Interface
    function version() external pure returns (uint256) {
        return 4;
    }

    constructor() {
        _owner = msg.sender;
    }

    /// @notice Lets `reader` read (the proxy, as on a production feed).
    function addAccess(address reader) external {
        _accessList[reader] = true;
    }

    /// @notice Records a new round answering `answer` now.
    function transmit(int192 answer) external {
        uint32 roundId = _hotVars.latestAggregatorRoundId + 1;
        _hotVars.latestAggregatorRoundId = roundId;
        _transmissions[roundId] = Transmission(answer, uint64(block.timestamp));
    }

    /// @inheritdoc AggregatorV3Interface
    function getRoundData(uint80 roundId) external view returns (uint80, int256, uint256, uint256, uint80) {
        Transmission memory t = _transmissions[uint32(roundId)];
        return (roundId, t.answer, t.timestamp, t.timestamp, roundId);
    }

    /// @inheritdoc AggregatorV3Interface
    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        // Chainlink's SimpleReadAccessController: listed readers, or anyone off-chain (tx.origin).
        // solhint-disable-next-line avoid-tx-origin
        if (!(_accessList[msg.sender] || !_checkEnabled || msg.sender == tx.origin)) revert NoAccess();
        uint80 roundId = _hotVars.latestAggregatorRoundId;
        Transmission memory t = _transmissions[uint32(roundId)];
        return (roundId, t.answer, t.timestamp, t.timestamp, roundId);
    }
}

/// @notice The read path of an `EACAggregatorProxy`.
contract EACAggregatorProxyReadReplica is AggregatorV3Interface {
    struct Phase {
        uint16 id;
        AggregatorV3Interface aggregator;
    }

    error NoAccess();

    uint256 private constant PHASE_OFFSET = 64;

    address internal _owner;
    address internal _pendingOwner;
    Phase internal _currentPhase;
    address internal _accessController; // zero: public

    /// @inheritdoc AggregatorV3Interface
    function decimals() external pure returns (uint8) {
        return 8;
    }

    /// @inheritdoc AggregatorV3Interface
    function description() external pure returns (string memory) {
        return "replica";
    }

    /// @inheritdoc AggregatorV3Interface
    function version() external pure returns (uint256) {
        return 4;
    }

    constructor(AggregatorV3Interface aggregator) {
        _owner = msg.sender;
        _currentPhase = Phase(1, aggregator);
    }

    /// @inheritdoc AggregatorV3Interface
    function getRoundData(uint80 roundId) external view returns (uint80, int256, uint256, uint256, uint80) {
        return _currentPhase.aggregator.getRoundData(uint64(roundId));
    }

    /// @inheritdoc AggregatorV3Interface
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        if (_accessController != address(0)) revert NoAccess();
        Phase memory current = _currentPhase;
        (roundId, answer, startedAt, updatedAt, answeredInRound) = current.aggregator.latestRoundData();
        uint256 phase = uint256(current.id) << PHASE_OFFSET;
        return (uint80(phase | roundId), answer, startedAt, updatedAt, uint80(phase | answeredInRound));
    }
}

/// @notice Gas of one cold `latestRoundData` (call it with eth_call: every account and slot is cold).
contract FeedReadProbe {
    function coldRead(AggregatorV3Interface feed) external view returns (uint256 used) {
        uint256 start = gasleft();
        feed.latestRoundData();
        used = start - gasleft();
    }
}
