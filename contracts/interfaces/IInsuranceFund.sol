// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title IInsuranceFund
/// @notice Owns a margin account whose quote balance is the insurance fund: the insurance share of
/// trading fees and the liquidation penalties are booked into it by the engine, insolvent auctions are
/// paid out of it by the engine, and otherwise only governance moves money out.
interface IInsuranceFund {
    /// @notice The amount is zero or the recipient is the zero address.
    error InvalidWithdrawal();

    /// @notice The fund's contract holds no quote token outside its account.
    error NothingHeld();

    /// @notice Emitted when quote the contract held is deposited into the fund's account.
    event HeldDeposited(address indexed caller, uint256 amount);

    /// @notice Emitted when governance moves money out of the fund.
    event FundsWithdrawn(address indexed to, uint256 amount);

    /// @notice The fund's margin account.
    function accountId() external view returns (uint256);

    /// @notice The fund's quote balance (quote units); never negative.
    function balance() external view returns (uint256);

    /// @notice Deposits all quote token held by this contract (sent to it directly, outside the fund's
    /// account) into the fund's account. Anyone may call it: it only adds to the fund.
    /// @return amount The quote units deposited.
    function depositHeld() external returns (uint256 amount);

    /// @notice Sends `amount` of quote token to `to`. Treasury role (the timelock).
    function withdraw(address to, uint256 amount) external;
}
