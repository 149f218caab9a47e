import { type BlockTag, encodeBytes32String, isHexString } from "ethers";
import type { XMarginClient } from "../client";
import { type LiquidationPrices, liquidationPrice as pureLiquidationPrice } from "../math/liquidationPrice";
import { getAccountState } from "./getAccountState";

/** Parameters of `getLiquidationPrice`. */
export interface GetLiquidationPriceParameters {
  accountId: bigint;
  /** The underlying: its oracle asset id (bytes32, `encodeBytes32String("ETH")`) or its symbol ("ETH"). */
  asset: string;
  blockTag?: BlockTag;
  minPrice?: bigint;
  maxPrice?: bigint;
}

/**
 * The prices of `asset` at which `accountId` becomes liquidatable with everything else held (see the
 * pure `liquidationPrice`).
 * @example
 * const { down, up } = await getLiquidationPrice(client, { accountId, asset: encodeBytes32String("ETH") });
 */
export async function getLiquidationPrice(
  client: XMarginClient,
  params: GetLiquidationPriceParameters,
): Promise<LiquidationPrices> {
  const state = await getAccountState(client, { accountId: params.accountId, blockTag: params.blockTag });
  // A symbol, as `listPerpMarkets` names underlyings, is its asset id.
  const asset = isHexString(params.asset, 32) ? params.asset : encodeBytes32String(params.asset);
  return pureLiquidationPrice(state, asset, params);
}
