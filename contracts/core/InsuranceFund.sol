// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IInsuranceFund} from "../interfaces/IInsuranceFund.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";

/// @title InsuranceFund
/// @notice Receives the insurance share of trading fees and the liquidation penalties; pays the bidders
/// of insolvent auctions (into their margin accounts). Otherwise only governance moves money out.
contract InsuranceFund is IInsuranceFund, AccessManaged {
    using SafeERC20 for IERC20;

    IERC20 public immutable quoteToken;
    ICollateralVault public immutable vault;

    constructor(address authority, ICollateralVault vault_) AccessManaged(authority) {
        vault = vault_;
        quoteToken = vault_.quoteToken();
    }

    /// @inheritdoc IInsuranceFund
    function coverLoss(uint256 accountId, uint256 amount) external restricted {
        if (amount == 0) return;
        quoteToken.forceApprove(address(vault), amount);
        vault.deposit(accountId, address(quoteToken), amount);
        emit LossCovered(accountId, amount);
    }

    /// @inheritdoc IInsuranceFund
    function balance() external view returns (uint256) {
        return quoteToken.balanceOf(address(this));
    }

    /// @inheritdoc IInsuranceFund
    function withdraw(address to, uint256 amount) external restricted {
        if (amount == 0 || to == address(0)) revert InvalidWithdrawal();
        quoteToken.safeTransfer(to, amount);
        emit FundsWithdrawn(to, amount);
    }
}
