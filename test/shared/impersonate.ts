import { ethers } from "hardhat";
import { impersonateAccount, setBalance } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";

/**
 * A signer for a contract's address, funded for gas, so a unit test can call another contract's
 * caller-restricted functions directly: the vault's engine-only transfers as the MarginEngine, a
 * market's engine-only `transferPosition`, the engine's market-only hooks as a registered market.
 */
export async function signerFor(
  contract: string | { getAddress(): Promise<string> },
): Promise<HardhatEthersSigner> {
  const address = typeof contract === "string" ? contract : await contract.getAddress();
  await impersonateAccount(address);
  await setBalance(address, 10n ** 18n);
  return ethers.getSigner(address);
}
