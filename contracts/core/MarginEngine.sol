// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";
import {RiskMath} from "../libraries/RiskMath.sol";

/// @title MarginEngine
/// @notice The clearinghouse: computes every account's equity and requirements and enforces
/// equity_IM ≥ IM after each risk-increasing action.
/// @dev Markets join in later versions; with no positions an account's requirement is zero, so the
/// rule reduces to "collateral at initial weights, debts counted at full value, stays ≥ 0".
contract MarginEngine is IMarginEngine, AccessManaged {
    ICollateralVault public immutable vault;

    constructor(address authority, ICollateralVault vault_) AccessManaged(authority) {
        vault = vault_;
    }

    /// @inheritdoc IMarginEngine
    function requireInitialMargin(uint256 accountId) external view {
        Health memory h = health(accountId);
        if (h.equityInitial < 0 || uint256(h.equityInitial) < h.initialRequirement) {
            revert InsufficientMargin(accountId, h.equityInitial, h.initialRequirement);
        }
    }

    /// @inheritdoc IMarginEngine
    function health(uint256 accountId) public view returns (Health memory h) {
        ICollateralVault.CollateralValue memory c = vault.collateralValue(accountId);
        h.equityInitial = c.initial;
        h.equityMaintenance = c.maintenance;
        h.healthRatio = RiskMath.healthRatio(h.equityMaintenance, h.maintenanceRequirement);
    }
}
