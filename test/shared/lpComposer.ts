import { ethers } from "hardhat";
import type { ContractTransactionReceipt } from "ethers";
import type { LpComposer } from "../../typechain-types";
import type { System } from "./system";

const USDC = 10n ** 6n;

/** The kinds of `LpComposer.Op` (contracts/test/LpComposer.sol). */
export const LP_OP = {
  deposit: 0,
  mint: 1,
  withdraw: 2,
  redeem: 3,
  read: 4,
  trade: 5,
  feed: 6,
  tryWithdraw: 7,
  tryRedeem: 8,
} as const;

/** One step of an `LpComposer.run` transaction. */
export type LpOp = { kind: number; amount: bigint; marketId: bigint; size: bigint; feed: string };

/** A step of `kind`, its other fields 0 unless given. */
export function lpOp(kind: number, o: Partial<LpOp> = {}): LpOp {
  return {
    kind,
    amount: o.amount ?? 0n,
    marketId: o.marketId ?? 0n,
    size: o.size ?? 0n,
    feed: o.feed ?? ethers.ZeroAddress,
  };
}

/**
 * An `LpComposer` on `sys` holding 10,000,000 USDC, 1,000,000 of them in its own CROSS account (to trade
 * from), the rest to deposit into the pool.
 */
export async function deployLpComposer(sys: System): Promise<LpComposer> {
  const composer = (await ethers.deployContract("LpComposer", [
    await sys.pool.getAddress(),
    await sys.vault.getAddress(),
    await sys.perps.getAddress(),
    await sys.accounts.getAddress(),
  ])) as unknown as LpComposer;
  await sys.usdc.mint(await composer.getAddress(), 10_000_000n * USDC);
  await composer.fund(1_000_000n * USDC);
  return composer;
}

/** The composer's `name` events in `receipt`, parsed. */
export function composerLogs(composer: LpComposer, receipt: ContractTransactionReceipt | null, name: string) {
  return receipt!.logs.flatMap((l) => {
    const parsed = composer.interface.parseLog(l);
    return parsed?.name === name ? [parsed] : [];
  });
}
