import { expect } from "chai";
import type { System } from "./system";

const USDC = 10n ** 6n;

/** What a trader's actions moved, in quote units (review rounds 65 and 113, attacks on the LPs). */
export interface Take {
  /** The trader's quote balance change. */
  trader: bigint;
  /** The LPs' (the pool's totalAssets) change. */
  lps: bigint;
  /** The insurance fund's quote balance change (its share of the fees). */
  fund: bigint;
}

/**
 * Who gained and lost what over `actions`: what `account` takes, the LPs and the fund pay. Nothing is
 * made or lost on the way, so the three sum to zero within `slack` (quote units below and above: the
 * pool's time value over the actions' seconds, roundings).
 */
export async function measureTake(
  sys: System,
  account: bigint,
  actions: () => Promise<void>,
  slack: { below: bigint; above: bigint } = { below: 2n * USDC, above: USDC },
): Promise<Take> {
  const fundAccount = await sys.insuranceFund.accountId();
  const balances = async () =>
    Promise.all([
      sys.vault.balanceOf(account, sys.usdc),
      sys.pool.totalAssets(),
      sys.vault.balanceOf(fundAccount, sys.usdc),
    ]);
  const [trader, lps, fund] = await balances();
  await actions();
  const after = await balances();
  const take = { trader: after[0] - trader, lps: after[1] - lps, fund: after[2] - fund };
  expect(take.trader + take.lps + take.fund).to.be.within(-slack.below, slack.above);
  return take;
}
