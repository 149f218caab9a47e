// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IInsuranceFund} from "../interfaces/IInsuranceFund.sol";

/// @title InsuranceFund
/// @notice Receives the insurance share of trading fees (paid out of accounts by the engine) and, in a
/// later version, liquidation penalties. Only governance can move money out.
contract InsuranceFund is IInsuranceFund, AccessManaged {
    using SafeERC20 for IERC20;

    IERC20 public immutable quoteToken;

    constructor(address authority, IERC20 quoteToken_) AccessManaged(authority) {
        quoteToken = quoteToken_;
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
