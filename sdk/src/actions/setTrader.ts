import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { requireSigner, send } from "./internal/chain";

/** Parameters of `setTrader`. */
export interface SetTraderParameters {
  accountId: bigint;
  /** The address that may trade, e.g. a trading bot's hot key or the liquidation auction. */
  trader: string;
  /** Grant (default) or revoke. */
  allowed?: boolean;
}

/**
 * Lets `trader` open, modify and close perp and option positions for an account the signer owns, and
 * nothing else: it cannot withdraw, bid with the account or transfer it, and the grant ends when the
 * account changes hands (`Accounts.setTrader`). The narrow alternative to `approveOperator` for your
 * own bots, and what a keeper grants the liquidation auction so that `bidAndClose` can close its
 * slice. A trader still controls the account's free margin (trades against its own account can move
 * it out through the skew premium): grant it only to keys you control.
 * @example
 * await setTrader(client, { accountId, trader: botAddress });
 * await setTrader(client, { accountId, trader: botAddress, allowed: false }); // revoke
 */
export async function setTrader(
  client: XMarginClient,
  params: SetTraderParameters,
): Promise<ContractTransactionReceipt> {
  requireSigner(client);
  return send(client, () =>
    client.contracts.accounts.setTrader(params.accountId, params.trader, params.allowed ?? true),
  );
}
