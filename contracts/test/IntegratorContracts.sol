// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";
import {IPerpMarket} from "../interfaces/IPerpMarket.sol";
import {IOptionMarket} from "../interfaces/IOptionMarket.sol";
import {ILiquidationAuction} from "../interfaces/ILiquidationAuction.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";

/// @notice An integrator's structured-product vault, written from the interfaces' NatSpec only: it owns
/// xmargin accounts, deposits, trades perps and options after previewing them in the same transaction,
/// withdraws for its users, and buys accounts (ERC-721 receiver that re-enters on receipt).
contract IntegratorVault is IERC721Receiver {
    IAccounts public immutable accounts;
    ICollateralVault public immutable vault;

    event Previewed(uint256 quotedPrice, uint256 quotedFee);
    event Received(uint256 accountId, address from, address owner, uint256 withdrawn);
    event BidPreviewed(uint256 filled, uint256 payment, uint256 insurancePayout);
    event BidDone(uint256 filled, uint256 payment);

    /// @dev What `onERC721Received` does with a bought account: withdraw `reenterWithdraw` of `reenterToken`
    /// to this contract and grant `reenterTrader` an allowance.
    address public reenterToken;
    uint256 public reenterWithdraw;
    address public reenterTrader;

    constructor(IAccounts accounts_, ICollateralVault vault_) {
        accounts = accounts_;
        vault = vault_;
    }

    function createAccount(IAccounts.MarginMode mode) external returns (uint256) {
        return accounts.createAccount(mode);
    }

    function deposit(uint256 accountId, IERC20 token, uint256 amount) external {
        token.transferFrom(msg.sender, address(this), amount);
        token.approve(address(vault), amount);
        vault.deposit(accountId, address(token), amount);
    }

    function withdraw(uint256 accountId, address token, uint256 amount, address to) external {
        vault.withdraw(accountId, token, amount, to);
    }

    function setTrader(uint256 accountId, address trader, uint256 allowance) external {
        accounts.setTrader(accountId, trader, allowance);
    }

    function approve(address to, uint256 accountId) external {
        accounts.approve(to, accountId);
    }

    function transfer(address to, uint256 accountId) external {
        accounts.safeTransferFrom(address(this), to, accountId);
    }

    function setReentry(address token, uint256 amount, address trader) external {
        (reenterToken, reenterWithdraw, reenterTrader) = (token, amount, trader);
    }

    function onERC721Received(
        address,
        address from,
        uint256 accountId,
        bytes calldata
    ) external returns (bytes4) {
        uint256 withdrawn;
        if (reenterWithdraw != 0) {
            vault.withdraw(accountId, reenterToken, reenterWithdraw, address(this));
            withdrawn = reenterWithdraw;
        }
        if (reenterTrader != address(0)) accounts.setTrader(accountId, reenterTrader, 1e6);
        emit Received(accountId, from, accounts.ownerOf(accountId), withdrawn);
        return IERC721Receiver.onERC721Received.selector;
    }

    /// @notice Previews a perp trade with `quoteTrade`, then trades: the event carries the quote, the
    /// market's PositionModified what the trade did.
    function tradePerpPreviewed(
        IPerpMarket perps,
        uint256 accountId,
        uint256 marketId,
        int256 sizeDelta
    ) external {
        (uint256 fill, uint256 fee) = perps.quoteTrade(marketId, sizeDelta);
        emit Previewed(fill, fee);
        perps.trade(accountId, marketId, sizeDelta, sizeDelta > 0 ? type(uint256).max : 0, block.timestamp);
    }

    function tradeOptionPreviewed(
        IOptionMarket options,
        uint256 accountId,
        uint256 seriesId,
        int256 sizeDelta
    ) external {
        (uint256 premium, uint256 fee) = options.quoteTrade(seriesId, sizeDelta);
        emit Previewed(premium, fee);
        options.trade(accountId, seriesId, sizeDelta, sizeDelta > 0 ? type(uint256).max : 0, block.timestamp);
    }

    function bidPreviewed(
        ILiquidationAuction auction,
        uint256 accountId,
        uint256 bidder,
        uint256 fraction,
        bool close
    ) external {
        (uint256 f, uint256 p, uint256 ins) = auction.quoteBid(accountId, fraction);
        emit BidPreviewed(f, p, ins);
        (uint256 filled, uint256 payment) = close
            ? auction.bidAndClose(accountId, bidder, fraction, type(uint256).max)
            : auction.bid(accountId, bidder, fraction, type(uint256).max);
        emit BidDone(filled, payment);
    }

    /// @notice What an on-chain vault would compute as its account's free quote: quoteForMargin of
    /// equity_IM − IM from `health`.
    function maxQuoteWithdraw(IMarginEngine engine, uint256 accountId) public view returns (uint256) {
        IMarginEngine.Health memory h = engine.health(accountId);
        if (h.equityInitial <= 0 || uint256(h.equityInitial) <= h.initialRequirement) return 0;
        return vault.quoteForMargin(uint256(h.equityInitial) - h.initialRequirement);
    }
}
