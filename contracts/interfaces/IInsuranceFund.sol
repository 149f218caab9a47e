// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title IInsuranceFund
/// @notice Holds quote tokens from fee shares and liquidation penalties; pays insolvent auctions;
/// anything else leaves only through governance.
interface IInsuranceFund {
    /// @notice The amount is zero or the recipient is the zero address.
    error InvalidWithdrawal();

    /// @notice Emitted when the fund pays for an insolvent account's liquidation.
    event LossCovered(uint256 indexed accountId, uint256 amount);

    /// @notice Emitted when governance moves money out of the fund.
    event FundsWithdrawn(address indexed to, uint256 amount);

    /// @notice The fund's quote-token balance.
    function balance() external view returns (uint256);

    /// @notice Deposits `amount` quote tokens into margin account `accountId` (the bidder of an
    /// insolvent auction). Liquidator role (the LiquidationAuction contract).
    function coverLoss(uint256 accountId, uint256 amount) external;

    /// @notice Sends `amount` of quote token to `to`. Treasury role (the timelock).
    function withdraw(address to, uint256 amount) external;
}
