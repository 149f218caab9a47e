// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IInsuranceFund} from "../interfaces/IInsuranceFund.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";

/// @title InsuranceFund
/// @notice Holds the insurance money as the quote balance of its own margin account, so fee shares and
/// penalties are internal balance moves (no token transfer on every trade) and the vault's token
/// balance always equals the sum of account balances.
contract InsuranceFund is IInsuranceFund, AccessManaged {
    using SafeERC20 for IERC20;

    /// @notice The vault holding the fund's quote balance.
    ICollateralVault public immutable vault;
    /// @inheritdoc IInsuranceFund
    uint256 public immutable accountId;
    address internal immutable quote;

    constructor(address authority, ICollateralVault vault_, IAccounts accounts) AccessManaged(authority) {
        vault = vault_;
        quote = address(vault_.quoteToken());
        accountId = accounts.createAccount(IAccounts.MarginMode.CROSS);
    }

    /// @inheritdoc IInsuranceFund
    function balance() external view returns (uint256) {
        int256 amount = vault.balanceOf(accountId, quote);
        return amount > 0 ? uint256(amount) : 0;
    }

    /// @inheritdoc IInsuranceFund
    function depositHeld() external returns (uint256 amount) {
        // Quote sent to this contract rather than into its account (a donation to the wrong address, a
        // treasury withdrawal to the fund itself) covers nothing until it is in the vault. Moving it there
        // only adds to the fund, so anyone may.
        amount = IERC20(quote).balanceOf(address(this));
        if (amount == 0) revert NothingHeld();
        IERC20(quote).forceApprove(address(vault), amount);
        vault.deposit(accountId, quote, amount);
        emit HeldDeposited(msg.sender, amount);
    }

    /// @inheritdoc IInsuranceFund
    function withdraw(address to, uint256 amount) external restricted {
        if (amount == 0 || to == address(0)) revert InvalidWithdrawal();
        vault.withdraw(accountId, quote, amount, to);
        emit FundsWithdrawn(to, amount);
    }
}
