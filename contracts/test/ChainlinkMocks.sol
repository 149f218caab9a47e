// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

// Chainlink's own mock feed, compiled so tests and the local deployment can use it through the real
// `AggregatorV3Interface`. It also serves as the L2 sequencer-uptime feed (answer 0 = up, 1 = down,
// `startedAt` = when the status last changed).
// solhint-disable-next-line no-unused-import
import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/tests/MockV3Aggregator.sol";
