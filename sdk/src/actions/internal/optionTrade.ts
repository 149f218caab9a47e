/** The send path shared by the option trade actions. */
import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../../client";
import { blockAt, eventsOf, optionMarketOf, read, requireSigner, send } from "./chain";
import { optionLimitBase } from "./optionLimit";
import { marginCheckedGas } from "./gas";
import { type TradeOptions, tradeBounds } from "./trade";

/** A sent option trade, from its OptionTraded event. */
export interface OptionTradeReturnType {
  receipt: ContractTransactionReceipt;
  /** The series id. */
  seriesId: bigint;
  /** Contracts traded (> 0 bought, < 0 sold). */
  sizeDelta: bigint;
  /** Premium per contract, spread included (USD WAD). */
  premiumPerContract: bigint;
  /** Premium paid (buy) or received (sell), USD WAD (exactly the quote units moved). */
  premium: bigint;
  /** Fee, USD WAD. */
  fee: bigint;
  /** The account's position after the trade, contracts (WAD; > 0 long). */
  newSize: bigint;
  /** The premium per contract the trade was sent with as its limit (USD WAD): most paid, least received. */
  limitPrice: bigint;
  /** Last timestamp the trade could execute at, seconds. */
  deadline: bigint;
}

/**
 * Quotes (for the limit: `optionLimitBase`, a sale's allowing for a block of time decay), then sends
 * `OptionMarket.trade` with gas for repricing the account's options (`marginCheckedGas`) and parses the
 * OptionTraded event.
 */
export async function sendOptionTrade(
  client: XMarginClient,
  accountId: bigint,
  seriesId: bigint,
  sizeDelta: bigint | "close",
  opts: TradeOptions,
): Promise<OptionTradeReturnType> {
  const market = optionMarketOf(client);
  requireSigner(client);
  const delta =
    sizeDelta === "close" ? -(await read(client, () => market.positionSize(accountId, seriesId))) : sizeDelta;
  if (delta === 0n)
    throw new RangeError(sizeDelta === "close" ? "closeOption: no position" : "sizeDelta is zero");
  const { limitPrice, deadline } = await tradeBounds(client, delta, opts, async () => {
    const block = await blockAt(client);
    const [premium] = await read(client, () =>
      market.quoteTrade(seriesId, delta, { blockTag: block.number }),
    );
    return read(client, () => optionLimitBase(client, seriesId, delta, premium, block));
  });
  const args = [accountId, seriesId, delta, limitPrice, deadline] as const;
  const receipt = await send(client, async () =>
    market.trade(
      ...args,
      await marginCheckedGas(client, accountId, () => market.trade.estimateGas(...args), seriesId),
    ),
  );
  const [event] = eventsOf(receipt, market.interface, "OptionTraded");
  if (!event) throw new Error("option trade: no OptionTraded event in the receipt");
  const a = event.args;
  return {
    receipt,
    seriesId,
    sizeDelta: a.sizeDelta as bigint,
    premiumPerContract: a.premiumPerContract as bigint,
    premium: a.premium as bigint,
    fee: a.fee as bigint,
    newSize: a.newSize as bigint,
    limitPrice,
    deadline,
  };
}
