import type { XMarginClient } from "../client";
import type { OptionOrderParameters } from "./buyOption";
import { type OptionTradeReturnType, sendOptionTrade } from "./internal/optionTrade";

/**
 * Sells `size` contracts (`tradeOption` with −size; writes options beyond a long position): receives at
 * least the quoted premium minus `slippageBps`, the premium taken a block (12 s) later where time decay
 * alone lowers it (a short-dated option loses more than 50 bp in a block). A `size` ≤ 0 rejects the returned promise with a
 * RangeError, before anything is read or sent.
 * @example
 * const r = await sellOption(client, { accountId, seriesId: 1n, size: parseEther("1") });
 */
export async function sellOption(
  client: XMarginClient,
  params: OptionOrderParameters,
): Promise<OptionTradeReturnType> {
  if (params.size <= 0n) throw new RangeError("sellOption: size must be positive");
  return sendOptionTrade(client, params.accountId, params.seriesId, -params.size, params);
}
