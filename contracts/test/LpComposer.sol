// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC4626} from "@openzeppelin/contracts/interfaces/IERC4626.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";
import {IPerpMarket} from "../interfaces/IPerpMarket.sol";

interface IFeed {
    function updateAnswer(int256 answer) external;
}

interface IPoolViews {
    function positionValue() external view returns (int256);
    function backstopValue() external view returns (int256);
    function uncoveredDeficit() external view returns (uint256);
    function accountId() external view returns (uint256);
}

/// @notice Review round 84: composes LP actions with trades (and oracle rounds) in one transaction and
/// records, for every LP action, the share price it used against the one read freshly at that point.
contract LpComposer {
    IERC4626 public immutable pool;
    ICollateralVault public immutable vault;
    IPerpMarket public immutable perps;
    IERC20 public immutable quote;
    uint256 public accountId;

    /// @dev kind: 0 deposit, 1 mint, 2 withdraw, 3 redeem, 4 a bare totalAssets read.
    /// `expected` is what the action should return at the fresh price (preview read outside the action),
    /// `actual` what it returned; `poolView` is pool.totalAssets(), `fresh` the pool's formula on
    /// uncached reads (positionValue + backstopValue, re-read).
    event Step(
        uint256 indexed index,
        uint8 kind,
        uint256 expected,
        uint256 actual,
        uint256 poolView,
        uint256 fresh
    );
    event Caught(bytes reason);

    /// @notice A caught LP call (kind 7 or 8) that went through.
    error ExpectedRevert(uint8 kind);

    struct Op {
        uint256 amount; // assets or shares
        uint256 marketId;
        int256 size; // trade size, or the feed answer
        address feed;
        // 0 deposit, 1 mint, 2 withdraw, 3 redeem, 4 read, 5 trade, 6 feed answer, 7 try-withdraw
        // (caught), 8 try-redeem (caught)
        uint8 kind;
    }

    constructor(IERC4626 pool_, ICollateralVault vault_, IPerpMarket perps_, IAccounts accounts) {
        pool = pool_;
        vault = vault_;
        perps = perps_;
        quote = IERC20(pool_.asset());
        accountId = accounts.createAccount(IAccounts.MarginMode.CROSS);
        quote.approve(address(pool_), type(uint256).max);
        quote.approve(address(vault_), type(uint256).max);
    }

    function fund(uint256 margin) external {
        vault.deposit(accountId, address(quote), margin);
    }

    /// @notice The pool's `totalAssets` formula on fresh reads (none of them cached).
    function freshTotalAssets() public view returns (uint256) {
        IPoolViews p = IPoolViews(address(pool));
        int256 value = p.positionValue() + p.backstopValue();
        int256 scale = 1e12;
        int256 inQuote = value / scale;
        if (value < 0 && value % scale != 0) inQuote -= 1;
        int256 total = vault.balanceOf(p.accountId(), address(quote)) +
            inQuote +
            int256(vault.interestReceivable()) -
            int256(p.uncoveredDeficit());
        return total > 0 ? uint256(total) : 0;
    }

    function run(Op[] calldata ops) external {
        for (uint256 i; i < ops.length; ++i) {
            Op calldata op = ops[i];
            uint256 fresh = freshTotalAssets();
            uint256 poolView = pool.totalAssets();
            if (op.kind == 0) {
                uint256 expected = pool.previewDeposit(op.amount);
                uint256 got = pool.deposit(op.amount, address(this));
                emit Step(i, 0, expected, got, poolView, fresh);
            } else if (op.kind == 1) {
                uint256 expected = pool.previewMint(op.amount);
                uint256 got = pool.mint(op.amount, address(this));
                emit Step(i, 1, expected, got, poolView, fresh);
            } else if (op.kind == 2) {
                uint256 expected = pool.previewWithdraw(op.amount);
                uint256 got = pool.withdraw(op.amount, address(this), address(this));
                emit Step(i, 2, expected, got, poolView, fresh);
            } else if (op.kind == 3) {
                uint256 expected = pool.previewRedeem(op.amount);
                uint256 got = pool.redeem(op.amount, address(this), address(this));
                emit Step(i, 3, expected, got, poolView, fresh);
            } else if (op.kind == 4) {
                emit Step(i, 4, fresh, poolView, poolView, fresh);
            } else if (op.kind == 5) {
                perps.trade(
                    accountId,
                    op.marketId,
                    op.size,
                    op.size > 0 ? type(uint256).max : 0,
                    type(uint256).max
                );
            } else if (op.kind == 6) {
                IFeed(op.feed).updateAnswer(op.size);
            } else if (op.kind == 7) {
                try pool.withdraw(op.amount, address(this), address(this)) returns (uint256) {
                    revert ExpectedRevert(op.kind);
                } catch (bytes memory reason) {
                    emit Caught(reason);
                }
            } else if (op.kind == 8) {
                try pool.redeem(op.amount, address(this), address(this)) returns (uint256) {
                    revert ExpectedRevert(op.kind);
                } catch (bytes memory reason) {
                    emit Caught(reason);
                }
            }
        }
    }
}
