// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

/// @notice The part of the OP-stack GasPriceOracle predeploy (0x42…0F) the keeper reads: the L1 data fee
/// of a serialised transaction, here a flat fee per byte the test sets. Placed with `hardhat_setCode`.
contract GasPriceOracleMock {
    uint256 public feePerByte;

    function setFeePerByte(uint256 fee) external {
        feePerByte = fee;
    }

    function getL1Fee(bytes calldata unsignedTx) external view returns (uint256) {
        return unsignedTx.length * feePerByte;
    }
}
