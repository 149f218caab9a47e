// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";
import {IMarket} from "../interfaces/IMarket.sol";

/// @notice Benchmark helper: opens many funded accounts, each with one perp position, in a single
/// transaction, so a keeper scan over 10,000 accounts can be set up in seconds. The accounts belong to
/// this contract; it goes through the same public entry points (and checks) as any owner.
contract AccountPopulator {
    /// @notice Opens `count` CROSS accounts, deposits `collateral` of `token` into each and trades
    /// `size` in `marketId`, alternating long and short so the pool's skew stays near zero.
    function populate(
        IAccounts accounts,
        ICollateralVault vault,
        IERC20 token,
        uint256 collateral,
        IMarket market,
        uint256 marketId,
        int256 size,
        uint256 count
    ) external {
        token.approve(address(vault), collateral * count);
        for (uint256 i; i < count; ++i) {
            uint256 accountId = accounts.createAccount(IAccounts.MarginMode.CROSS);
            vault.deposit(accountId, address(token), collateral);
            bool long = i % 2 == 0;
            market.trade(
                accountId,
                marketId,
                long ? size : -size,
                long ? type(uint256).max : 0,
                block.timestamp
            );
        }
    }
}
