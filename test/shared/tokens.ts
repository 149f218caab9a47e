import { ethers, network } from "hardhat";
import type { ContractTransactionResponse, Signer } from "ethers";
import type { BlocklistERC20Mock, MockERC20 } from "../../typechain-types";

/** What `mintAndApprove` needs: MockERC20 and the test tokens derived from it all fit. */
export interface MintableToken {
  mint(to: string, amount: bigint): Promise<ContractTransactionResponse>;
  connect(runner: Signer): {
    approve(spender: string, amount: bigint): Promise<ContractTransactionResponse>;
  };
}

/** Deploys a MockERC20 (open mint) with the given decimals. */
export async function deployToken(name: string, symbol: string, decimals: number): Promise<MockERC20> {
  const token = await ethers.deployContract("MockERC20", [name, symbol, decimals]);
  await token.waitForDeployment();
  return token;
}

/** Mints `amount` to `owner` and approves `spender` for exactly `amount`. */
export async function mintAndApprove(
  token: MintableToken,
  owner: Signer,
  spender: string,
  amount: bigint,
): Promise<void> {
  await (await token.mint(await owner.getAddress(), amount)).wait();
  await (await token.connect(owner).approve(spender, amount)).wait();
}

/**
 * Swaps BlocklistERC20Mock's code into a deployed MockERC20 (`hardhat_setCode`: balances and allowances
 * kept, nobody listed, unpaused): USDC's blocklist and pause (review round 142).
 */
export async function blocklistingUsdc(usdc: MockERC20): Promise<BlocklistERC20Mock> {
  const mock = await ethers.deployContract("BlocklistERC20Mock", [await usdc.decimals()]);
  const address = await usdc.getAddress();
  await network.provider.send("hardhat_setCode", [address, await ethers.provider.getCode(mock)]);
  return ethers.getContractAt("BlocklistERC20Mock", address);
}
