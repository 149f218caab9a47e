/**
 * Chain readers per market type: they turn a market contract's views into the plain states of
 * `state.ts`. A new market type adds its reader here, keyed by the deployment address it lives at.
 */
import type { BlockTag } from "ethers";
import type { XMarginClient } from "../../client";
import type {
  MarketState,
  OptionMarketState,
  OptionPositionState,
  PerpMarketState,
  PerpPositionState,
  PositionState,
} from "../../state";
import { optionMarketOf, protocolAccounts } from "./chain";

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
      backstopSize: info.backstopSize,
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

const optionReader: MarketReader = {
  kind: "option",
  async readMarket(client, seriesId, blockTag): Promise<OptionMarketState> {
    const market = optionMarketOf(client);
    const { backstop } = await protocolAccounts(client);
    const [s, backstopSize] = await Promise.all([
      market.series(seriesId, { blockTag }),
      market.positionSize(backstop, seriesId, { blockTag }),
    ]);
    const p = s.params;
    return {
      kind: "option",
      market: (client.deployment.contracts.optionMarket ?? "").toLowerCase(),
      marketId: seriesId,
      underlying: s.underlying.toLowerCase(),
      strike: s.strike,
      expiry: s.expiry,
      isCall: s.isCall,
      settled: s.settled,
      skew: s.skew,
      settlementPrice: s.settlementPrice,
      longOpenInterest: s.longOpenInterest,
      shortOpenInterest: s.shortOpenInterest,
      params: {
        spreadFactor: p.spreadFactor,
        fee: p.fee,
        insuranceFeeShare: p.insuranceFeeShare,
        maxOpenInterest: p.maxOpenInterest,
      },
      backstopSize,
      vegaPerContract: s.vegaPerContract,
      deltaPerContract: s.deltaPerContract,
    };
  },
  async readPosition(client, accountId, seriesId, blockTag): Promise<OptionPositionState> {
    const size = await optionMarketOf(client).positionSize(accountId, seriesId, { blockTag });
    return {
      kind: "option",
      market: (client.deployment.contracts.optionMarket ?? "").toLowerCase(),
      marketId: seriesId,
      size,
    };
  },
};

/**
 * The reader of the market contract at `market` (the deployment's PerpMarket or OptionMarket); throws
 * for a contract the SDK has no model of.
 */
export function readerFor(client: XMarginClient, market: string): MarketReader {
  const address = market.toLowerCase();
  const c = client.deployment.contracts;
  if (address === c.perpMarket.toLowerCase()) return perpReader;
  if (c.optionMarket !== undefined && address === c.optionMarket.toLowerCase()) return optionReader;
  throw new Error(
    `no market model for ${market}: the SDK knows the deployment's PerpMarket and OptionMarket`,
  );
}
