import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { read, requireSigner, send } from "./internal/chain";

/** An allowance that is never spent (`type(uint256).max`): for contracts you trust with every trade. */
export const UNLIMITED_TRADING_ALLOWANCE = 2n ** 256n - 1n;

/** Parameters of `setTrader`. */
export interface SetTraderParameters {
  accountId: bigint;
  /** The address that may trade, e.g. a trading bot's hot key or the liquidation auction. */
  trader: string;
  /**
   * The trading costs, in quote-token units, the trader's trades may charge the account (fees, the perp
   * skew premium, the option spread, an option long's time value: `tradingCost` in a preview). Replaces
   * what was left; 0 revokes; `UNLIMITED_TRADING_ALLOWANCE` is never spent.
   */
  allowance: bigint;
}

/**
 * Lets `trader` open, modify and close perp and option positions for an account the signer owns, and
 * nothing else: it cannot withdraw, bid with the account or transfer it, and the grant ends when the
 * account changes hands (`Accounts.setTrader`). The narrow alternative to `approveOperator` for your
 * own bots, and what a keeper grants the liquidation auction so that `bidAndClose` can close its
 * slice. Each trade spends the allowance by what it can cost the account at a constant price, which
 * bounds what a compromised key can move out through premiums it collects with its own account; the
 * positions it opens still carry market risk and pay funding while held (not charged to the allowance),
 * so grant it to keys you control. `getTraderAllowance` reads what is left.
 * @example
 * await setTrader(client, { accountId, trader: botAddress, allowance: 500n * 10n ** 6n }); // 500 USDC
 * await setTrader(client, { accountId, trader: botAddress, allowance: 0n }); // revoke
 */
export async function setTrader(
  client: XMarginClient,
  params: SetTraderParameters,
): Promise<ContractTransactionReceipt> {
  requireSigner(client);
  if (params.allowance < 0n || params.allowance > UNLIMITED_TRADING_ALLOWANCE) {
    throw new RangeError(`allowance out of uint256 range: ${params.allowance}`);
  }
  return send(client, () =>
    client.contracts.accounts.setTrader(params.accountId, params.trader, params.allowance),
  );
}

/**
 * What `trader` may still charge `accountId` in trading costs, quote-token units: 0 without a grant
 * from the account's current owner (or once it is spent), `UNLIMITED_TRADING_ALLOWANCE` when
 * unlimited. A preview by the trader's client compares it with the trade's `tradingCost`; closing a
 * position spends it too.
 * @example
 * const left = await getTraderAllowance(client, { accountId, trader: botAddress });
 */
export async function getTraderAllowance(
  client: XMarginClient,
  params: { accountId: bigint; trader: string },
): Promise<bigint> {
  return read(client, () => client.contracts.accounts.traderAllowance(params.accountId, params.trader));
}
