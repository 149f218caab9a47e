// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

// The protocol's governance is OpenZeppelin's, unmodified: an `AccessManager` holds every role and is
// administered by a `TimelockController`. Importing them here makes their artifacts available to the
// deploy modules and tests.
// solhint-disable-next-line no-unused-import
import {AccessManager} from "@openzeppelin/contracts/access/manager/AccessManager.sol";
// solhint-disable-next-line no-unused-import
import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
