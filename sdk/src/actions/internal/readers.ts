/**
 * Chain readers per market type: they turn a market contract's views into the plain states of
 * `state.ts`. A new market type adds its reader here, keyed by the deployment address it lives at.
 */
import type { BlockTag } from "ethers";
import type { XMarginClient } from "../../client";
import type { MarketState, PerpMarketState, PerpPositionState, PositionState } from "../../state";

/** Reads one market type's state and positions. */
export interface MarketReader {
  kind: MarketState["kind"];
  readMarket(client: XMarginClient, marketId: bigint, blockTag: BlockTag): Promise<MarketState>;
  readPosition(
    client: XMarginClient,
    accountId: bigint,
    marketId: bigint,
    blockTag: BlockTag,
  ): Promise<PositionState>;
}

const perpReader: MarketReader = {
  kind: "perp",
  async readMarket(client, marketId, blockTag): Promise<PerpMarketState> {
    const info = await client.contracts.perpMarket.market(marketId, { blockTag });
    const p = info.params;
    return {
      kind: "perp",
      market: client.deployment.contracts.perpMarket.toLowerCase(),
      marketId,
      underlying: info.underlying.toLowerCase(),
      params: {
        skewScale: p.skewScale,
        maxFundingVelocity: p.maxFundingVelocity,
        maxFundingRate: p.maxFundingRate,
        makerFee: p.makerFee,
        takerFee: p.takerFee,
        insuranceFeeShare: p.insuranceFeeShare,
        maxPoolDeltaRatio: p.maxPoolDeltaRatio,
        maxOpenInterest: p.maxOpenInterest,
      },
      longOpenInterest: info.longOpenInterest,
      shortOpenInterest: info.shortOpenInterest,
      fundingRate: info.fundingRate,
      fundingIndex: info.fundingIndex,
      lastFundingTime: info.lastFundingTime,
    };
  },
  async readPosition(client, accountId, marketId, blockTag): Promise<PerpPositionState> {
    const pos = await client.contracts.perpMarket.position(accountId, marketId, { blockTag });
    return {
      kind: "perp",
      market: client.deployment.contracts.perpMarket.toLowerCase(),
      marketId,
      size: pos.size,
      entryPrice: pos.entryPrice,
      fundingIndex: pos.fundingIndex,
    };
  },
};

/**
 * The reader of the market contract at `market`; throws for a contract the SDK has no model of.
 */
export function readerFor(client: XMarginClient, market: string): MarketReader {
  if (market.toLowerCase() === client.deployment.contracts.perpMarket.toLowerCase()) return perpReader;
  throw new Error(`no market model for ${market}: the SDK knows the deployment's PerpMarket only`);
}
