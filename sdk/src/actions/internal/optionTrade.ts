/** The send path shared by the option trade actions. */
import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../../client";
import { eventsOf, optionMarketOf, read, requireSigner, send } from "./chain";
import { type TradeOptions, tradeBounds } from "./trade";

/** A sent option trade, from its OptionTraded event. */
export interface OptionTradeReturnType {
  receipt: ContractTransactionReceipt;
  seriesId: bigint;
  /** Contracts traded (> 0 bought, < 0 sold). */
  sizeDelta: bigint;
  /** Premium per contract, spread included (USD WAD). */
  premiumPerContract: bigint;
  /** Premium paid (buy) or received (sell), USD WAD (exactly the quote units moved). */
  premium: bigint;
  /** Fee, USD WAD. */
  fee: bigint;
  newSize: bigint;
  limitPrice: bigint;
  deadline: bigint;
}

/** Quotes (for the limit), then sends `OptionMarket.trade` and parses the OptionTraded event. */
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
  const { limitPrice, deadline } = await tradeBounds(
    client,
    delta,
    opts,
    async () => (await read(client, () => market.quoteTrade(seriesId, delta)))[0],
  );
  const receipt = await send(client, () => market.trade(accountId, seriesId, delta, limitPrice, deadline));
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
