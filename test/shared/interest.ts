/**
 * The quote-debt interest model the interest tests set, and its math written out (InterestMath) for
 * expected values.
 */
import { ethers } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { expWad } from "../../sdk/src";
import type { CollateralVault } from "../../typechain-types";
import { WAD, wad, type System } from "./system";

export const YEAR = 365n * 86_400n;

/** 2% at no utilisation, 10% at 80%, 150% when every USDC in the vault is lent out. */
export const INTEREST_MODEL = {
  baseRate: wad("0.02"),
  kinkRate: wad("0.10"),
  maxRate: wad("1.5"),
  kinkUtilization: wad("0.8"),
};

/** INTEREST_MODEL's rate at utilisation debt / (debt + cash), written out (InterestMath.borrowRate). */
export function interestRateAt(debt: bigint, cash: bigint): bigint {
  const m = INTEREST_MODEL;
  const u = (debt * WAD) / (debt + cash);
  if (u <= m.kinkUtilization) return m.baseRate + ((m.kinkRate - m.baseRate) * u) / m.kinkUtilization;
  return m.kinkRate + ((m.maxRate - m.kinkRate) * (u - m.kinkUtilization)) / (WAD - m.kinkUtilization);
}

/**
 * What the debts owe at the index the vault recorded last, as `_recordRate` reads utilisation (review
 * round 170): `quoteDebt` plus Σ ⌊debt · 1e18 / paid⌋ · index / 1e18 less the debts of all but the lender
 * (the receivable, at least 0), from the stored balances and paid indexes. Exactly what the last record
 * read when nothing has settled since.
 */
export async function owedAtRecordedIndex(sys: System): Promise<bigint> {
  const [index, , , lender] = await sys.vault.quoteInterest();
  const count = await sys.accounts.accountCount();
  let scaled = 0n;
  let debts = 0n;
  for (let id = 1n; id <= count; id++) {
    const balance = await sys.vault.balanceOf(id, sys.usdc);
    if (balance >= 0n || id === lender) continue;
    scaled += (-balance * WAD) / (await sys.vault.paidInterestIndex(id));
    debts -= balance;
  }
  const withInterest = (scaled * index) / WAD;
  return (await sys.vault.quoteDebt()) + (withInterest > debts ? withInterest - debts : 0n);
}

/** index · e^(rate · elapsed / year), rounded down (InterestMath.compound). */
export const compoundIndex = (index: bigint, rate: bigint, elapsed: bigint): bigint =>
  (index * expWad((rate * elapsed) / YEAR)) / WAD;

/**
 * Settles every debt of `ids` in one block as the engine does before slicing a debt (to the index now,
 * rounded up: anyone else's call charges only whole units since review round 126); returns the interest
 * charged, from the `QuoteInterestCharged` events.
 */
export async function settleAllAsEngine(
  vault: CollateralVault,
  engine: HardhatEthersSigner,
  ids: readonly bigint[],
): Promise<bigint> {
  await ethers.provider.send("evm_setAutomine", [false]);
  const txs = [];
  for (const id of ids) txs.push(await vault.connect(engine).settleInterest(id));
  await ethers.provider.send("evm_mine", []);
  await ethers.provider.send("evm_setAutomine", [true]);
  let charged = 0n;
  for (const tx of txs) {
    for (const log of (await tx.wait())!.logs) {
      const parsed = vault.interface.parseLog(log);
      if (parsed?.name === "QuoteInterestCharged") charged += parsed.args.amount as bigint;
    }
  }
  return charged;
}
