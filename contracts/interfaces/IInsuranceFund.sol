// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title IInsuranceFund
/// @notice Holds quote tokens from fee shares and liquidation penalties; pays insolvent auctions;
/// anything else leaves only through governance.
interface IInsuranceFund {
    /// @notice The amount is zero or the recipient is the zero address.
    error InvalidWithdrawal();

    /// @notice Emitted when governance moves money out of the fund.
    event FundsWithdrawn(address indexed to, uint256 amount);

    /// @notice The fund's quote-token balance.
    function balance() external view returns (uint256);

    /// @notice Sends `amount` of quote token to `to`. Treasury role (the timelock).
    function withdraw(address to, uint256 amount) external;
}
