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
  return swapTokenCode<BlocklistERC20Mock>(usdc, "BlocklistERC20Mock", [await usdc.decimals()]);
}

/**
 * Swaps contract `name`'s code (deployed with `args`) into the deployed `token` (`hardhat_setCode`:
 * storage kept, so balances and allowances stay) and returns it typed as `name`.
 */
export async function swapTokenCode<T>(token: MockERC20, name: string, args: unknown[]): Promise<T> {
  const mock = await ethers.deployContract(name, args);
  const address = await token.getAddress();
  await network.provider.send("hardhat_setCode", [address, await ethers.provider.getCode(mock)]);
  return (await ethers.getContractAt(name, address)) as T;
}
