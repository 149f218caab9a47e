// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IUpdateThrottle} from "../interfaces/IUpdateThrottle.sol";

/// @title UpdateThrottle
/// @notice The bookkeeping behind IUpdateThrottle, shared by every contract with risk setters: one
/// timestamp per (parameter set, id), written only by governance calls, so trades and health checks
/// never read it.
abstract contract UpdateThrottle is IUpdateThrottle {
    /// @notice Minimum time between two changes of one parameter set. A day: each max step is sized
    /// so that one step cannot liquidate accounts with a normal buffer, and a day is long enough for
    /// owners to top up (and for the timelock's admin to revoke a rogue role) before the next one.
    uint256 public constant MIN_UPDATE_INTERVAL = 1 days;

    mapping(bytes32 parameterSet => mapping(bytes32 id => uint256)) private _nextUpdateAt;

    /// @inheritdoc IUpdateThrottle
    function nextUpdateAt(bytes32 parameterSet, bytes32 id) external view returns (uint256) {
        return _nextUpdateAt[parameterSet][id];
    }

    /// @dev Reverts with UpdateTooSoon inside the interval of the last change, else starts a new one.
    /// Setters call it after their bound and step checks (a wrong value is reported as such, not as
    /// "too soon"), and listings never call it: the first change after listing is always allowed.
    function _throttle(bytes32 parameterSet, bytes32 id, uint256 interval) internal {
        uint256 next = _nextUpdateAt[parameterSet][id];
        if (block.timestamp < next) revert UpdateTooSoon(parameterSet, id, next);
        _nextUpdateAt[parameterSet][id] = block.timestamp + interval;
    }
}
