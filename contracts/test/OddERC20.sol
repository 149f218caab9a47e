// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @title OddERC20
/// @notice Test token with the two oddities the vault's balance-delta accounting must survive: its
/// `transfer` and `transferFrom` return nothing (USDT-style), and a pull can credit the receiver with
/// more than was sent (`bonus`, a rebase landing inside the transfer).
contract OddERC20 {
    /// @notice The token's name.
    string public name;
    /// @notice The token's symbol.
    string public symbol;
    /// @notice The token's decimals.
    uint8 public immutable decimals;
    /// @notice Sum of all balances.
    uint256 public totalSupply;
    /// @notice Units minted to the receiver of every `transferFrom` on top of the amount sent.
    uint256 public bonus;
    /// @notice Balances.
    mapping(address account => uint256) public balanceOf;
    /// @notice Allowances.
    mapping(address owner => mapping(address spender => uint256)) public allowance;

    /// @notice A balance or an allowance is short of the amount.
    error Insufficient();

    /// @param name_ The name.
    /// @param symbol_ The symbol.
    /// @param decimals_ The decimals.
    constructor(string memory name_, string memory symbol_, uint8 decimals_) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
    }

    /// @notice Mints `amount` to `to`.
    function mint(address to, uint256 amount) external {
        balanceOf[to] += amount;
        totalSupply += amount;
    }

    /// @notice Sets the units credited on top of every later `transferFrom`.
    function setBonus(uint256 bonus_) external {
        bonus = bonus_;
    }

    /// @notice ERC-20 approve (returns true, as USDT's does not matter here).
    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        return true;
    }

    /// @notice ERC-20 transfer without a return value.
    function transfer(address to, uint256 amount) external {
        _move(msg.sender, to, amount);
    }

    /// @notice ERC-20 transferFrom without a return value; the receiver also gets `bonus`.
    function transferFrom(address from, address to, uint256 amount) external {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed < amount) revert Insufficient();
        allowance[from][msg.sender] = allowed - amount;
        _move(from, to, amount);
        balanceOf[to] += bonus;
        totalSupply += bonus;
    }

    function _move(address from, address to, uint256 amount) private {
        if (balanceOf[from] < amount) revert Insufficient();
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
    }
}
