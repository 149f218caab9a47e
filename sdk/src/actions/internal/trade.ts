/** The send path shared by the perp trade actions. */
import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../../client";
import { blockAt, eventsOf, read, requireSigner, send } from "./chain";
import { DEFAULT_SLIPPAGE_BPS, lessSlippage, plusSlippage } from "./slippage";
import { marginCheckedGas } from "./gas";

/** Slippage and deadline of a trade. */
export interface TradeOptions {
  /** Worst acceptable fill relative to the quote, in basis points (default 50 = 0.5%). */
  slippageBps?: number;
  /** An explicit limit price (WAD) instead of one from the quote and `slippageBps`. */
  limitPrice?: bigint;
  /**
   * Last timestamp the trade may execute at, in seconds (a block timestamp, not `Date.now()`'s
   * milliseconds: a value from 10^11 on is a RangeError); default the latest block's timestamp +
   * `validity`.
   */
  deadline?: bigint;
  /** Seconds from the latest block to the default deadline (default 600). */
  validity?: number;
}

/**
 * 10^11 seconds is the year 5138; a millisecond timestamp of today is ~1.8·10^12: a deadline from here
 * on is milliseconds passed for seconds, which the contract would take as no deadline at all.
 */
const MAX_DEADLINE_SECONDS = 10n ** 11n;

/** A sent trade, from its PositionModified event. */
export interface TradeReturnType {
  receipt: ContractTransactionReceipt;
  sizeDelta: bigint;
  fillPrice: bigint;
  /** Fee, USD WAD. */
  fee: bigint;
  newSize: bigint;
  entryPrice: bigint;
  /** USD WAD, > 0: gain. */
  realizedPnl: bigint;
  /** USD WAD, > 0: paid. */
  fundingPaid: bigint;
  limitPrice: bigint;
  deadline: bigint;
}

/**
 * The limit price `slippageBps` worse than `fillPrice`: above it for a buy (rounded up), below for a
 * sell (rounded down).
 */
export function limitPriceFor(
  fillPrice: bigint,
  sizeDelta: bigint,
  slippageBps: number = DEFAULT_SLIPPAGE_BPS,
): bigint {
  return sizeDelta > 0n ? plusSlippage(fillPrice, slippageBps) : lessSlippage(fillPrice, slippageBps);
}

/**
 * The price limit and deadline a trade of `delta` is sent with: the caller's, or else `quotePrice()`
 * moved `slippageBps` against the trader, and the latest block's timestamp + `validity`.
 */
export async function tradeBounds(
  client: XMarginClient,
  delta: bigint,
  opts: TradeOptions,
  quotePrice: () => Promise<bigint>,
): Promise<{ limitPrice: bigint; deadline: bigint }> {
  if (opts.deadline !== undefined && (opts.deadline <= 0n || opts.deadline >= MAX_DEADLINE_SECONDS)) {
    throw new RangeError(
      `deadline ${opts.deadline} is not a timestamp in seconds (Date.now() is milliseconds: divide by 1000)`,
    );
  }
  const limitPrice = opts.limitPrice ?? limitPriceFor(await quotePrice(), delta, opts.slippageBps);
  const deadline = opts.deadline ?? (await blockAt(client)).timestamp + BigInt(opts.validity ?? 600);
  return { limitPrice, deadline };
}

/** Quotes (for the limit), then sends `trade` or `closePosition` and parses the event. */
export async function sendTrade(
  client: XMarginClient,
  accountId: bigint,
  marketId: bigint,
  sizeDelta: bigint | "close",
  opts: TradeOptions,
): Promise<TradeReturnType> {
  requireSigner(client);
  const perps = client.contracts.perpMarket;
  const delta =
    sizeDelta === "close" ? -(await read(client, () => perps.position(accountId, marketId))).size : sizeDelta;
  if (delta === 0n)
    throw new RangeError(sizeDelta === "close" ? "closePosition: no position" : "sizeDelta is zero");
  const { limitPrice, deadline } = await tradeBounds(
    client,
    delta,
    opts,
    async () => (await read(client, () => perps.quoteTrade(marketId, delta)))[0],
  );
  const closeArgs = [accountId, marketId, limitPrice, deadline] as const;
  const tradeArgs = [accountId, marketId, delta, limitPrice, deadline] as const;
  // Options the account holds may be repriced by the margin check when mined (`marginCheckedGas`).
  const receipt = await send(client, async () =>
    sizeDelta === "close"
      ? perps.closePosition(
          ...closeArgs,
          await marginCheckedGas(client, accountId, () => perps.closePosition.estimateGas(...closeArgs)),
        )
      : perps.trade(
          ...tradeArgs,
          await marginCheckedGas(client, accountId, () => perps.trade.estimateGas(...tradeArgs)),
        ),
  );
  const [event] = eventsOf(receipt, perps.interface, "PositionModified");
  if (!event) throw new Error("trade: no PositionModified event in the receipt");
  const a = event.args;
  return {
    receipt,
    sizeDelta: a.sizeDelta as bigint,
    fillPrice: a.fillPrice as bigint,
    fee: a.fee as bigint,
    newSize: a.newSize as bigint,
    entryPrice: a.entryPrice as bigint,
    realizedPnl: a.realizedPnl as bigint,
    fundingPaid: a.fundingPaid as bigint,
    limitPrice,
    deadline,
  };
}
