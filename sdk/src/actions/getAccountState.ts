import type { BlockTag } from "ethers";
import type { XMarginClient } from "../client";
import { erc4626 } from "../contracts";
import type { RiskParams } from "../math/portfolio";
import { type QuoteInterestState, accruedInterestAt } from "../math/interest";
import {
  type AccountState,
  type CollateralState,
  type MarketState,
  type OptionPoolState,
  type PositionState,
  type UnderlyingState,
  marketKey,
} from "../state";
import { type XMarginError, decodeError } from "../errors";
import {
  blockAt,
  errorContext,
  optionMarketOf,
  protocolAccounts,
  quoteToken,
  quoteUnit,
  read,
  resolveToken,
  tokenInfo,
} from "./internal/chain";
import { readerFor } from "./internal/readers";

/** Parameters of `getAccountState`. */
export interface GetAccountStateParameters {
  accountId: bigint;
  /** Block to read at (default: the latest). Every read uses this one block. */
  blockTag?: BlockTag;
  /** Tokens to include even without a balance (symbols or addresses), e.g. for a deposit preview. */
  tokens?: readonly string[];
  /** Markets to include even without a position, e.g. for a trade preview. Default: the perp market. */
  markets?: readonly { market?: string; marketId: bigint }[];
}

/** The snapshot (see `AccountState`). */
export type GetAccountStateReturnType = AccountState;

/**
 * Reads everything the pure math needs to evaluate `accountId`, all at one block: collateral balances
 * and configurations, ERC-4626 conversion rates, oracle prices and volatilities, risk parameters, the
 * markets the engine says the account holds and its positions in them, plus the engine's pause, the
 * auction freeze and the base of the perps' pool delta limit (for revert predictions).
 * @example
 * const state = await getAccountState(client, { accountId: 1n });
 * const health = accountHealth(state); // equals getHealth(client, { accountId: 1n, blockTag: state.blockNumber })
 */
export async function getAccountState(
  client: XMarginClient,
  params: GetAccountStateParameters,
): Promise<GetAccountStateReturnType> {
  const { accountId } = params;
  const { vault, engine, liquidationAuction, oracleRouter } = client.contracts;
  return read(client, async () => {
    const block = await blockAt(client, params.blockTag);
    const blockTag = block.number;
    const [quote, unit, interest, protocol] = await Promise.all([
      quoteToken(client),
      quoteUnit(client),
      vault.quoteInterest({ blockTag }),
      protocolAccounts(client),
    ]);
    const quoteInterest: QuoteInterestState = {
      index: interest.index,
      rate: interest.rate,
      updatedAt: interest.updatedAt,
      lenderAccountId: interest.lenderAccountId,
    };
    const timestamp = BigInt(block.timestamp);
    const poolAccountId = protocol.pool;
    const [mode, heldTokens, keys, frozen, paused, poolDeltaBase] = await Promise.all([
      client.contracts.accounts.marginMode(accountId, { blockTag }),
      vault.collateralTokens(accountId, { blockTag }),
      engine.accountMarkets(accountId, { blockTag }),
      liquidationAuction.isFrozen(accountId, { blockTag }),
      engine.paused({ blockTag }),
      client.contracts.perpMarket.poolDeltaBase({ blockTag }),
    ]);

    const tokenSet = new Set<string>([quote, ...heldTokens.map((t) => t.toLowerCase())]);
    for (const t of params.tokens ?? []) tokenSet.add(resolveToken(client, t).toLowerCase());
    const collateral = await Promise.all(
      [...tokenSet].map((token) => readCollateral(client, accountId, token, blockTag)),
    );
    // A quote debt owes the interest accrued since it last paid; the engine values it so already.
    const quoteCollateral = collateral.find((c) => c.token === quote)!;
    if (quoteCollateral.balance < 0n) {
      const recordedBalance = quoteCollateral.balance;
      const paidIndex = await vault.paidInterestIndex(accountId, { blockTag });
      quoteCollateral.debt = { recordedBalance, paidIndex };
      quoteCollateral.balance =
        recordedBalance - accruedInterestAt(recordedBalance, paidIndex, quoteInterest, timestamp, accountId);
    }

    const perpAddress = client.deployment.contracts.perpMarket.toLowerCase();
    const marketRefs = new Map<string, { market: string; marketId: bigint }>();
    for (const k of keys)
      marketRefs.set(marketKey(k.market, k.marketId), {
        market: k.market.toLowerCase(),
        marketId: k.marketId,
      });
    for (const m of params.markets ?? []) {
      const market = (m.market ?? perpAddress).toLowerCase();
      marketRefs.set(marketKey(market, m.marketId), { market, marketId: m.marketId });
    }
    const markets: Record<string, MarketState> = {};
    await Promise.all(
      [...marketRefs].map(async ([key, ref]) => {
        markets[key] = await readerFor(client, ref.market).readMarket(client, ref.marketId, blockTag);
      }),
    );
    const positions: PositionState[] = await Promise.all(
      keys.map((k) => readerFor(client, k.market).readPosition(client, accountId, k.marketId, blockTag)),
    );

    const underlyingIds = new Set(Object.values(markets).map((m) => m.underlying));
    const optionUnderlyings = new Set(
      Object.values(markets).flatMap((m) => (m.kind === "option" ? [m.underlying] : [])),
    );
    const assets = new Set<string>([...underlyingIds, ...collateral.map((c) => c.oracleAsset)]);
    const prices: Record<string, bigint> = {};
    const priceErrors: Record<string, XMarginError> = {};
    // A failed feed's error stays in the snapshot (`priceErrors`), as it stays out of the vault's checks
    // that read no price: deposits, and withdrawals by an account with nothing at risk. `accountHealth`
    // throws the one the engine meets first (`priceFailure`). Read before the volatilities: an
    // underlying's volatility read reverts with its price feed's error.
    await Promise.all(
      [...assets].map(async (asset) => {
        try {
          prices[asset] = await oracleRouter.getPrice(asset, { blockTag });
        } catch (error) {
          const decoded = decodeError(error, errorContext(client));
          if (!decoded) throw error;
          priceErrors[asset] = decoded;
        }
      }),
    );

    const underlyings: Record<string, UnderlyingState> = {};
    await Promise.all(
      [...underlyingIds].map(async (u) => {
        // Without a price the engine's volatility read reverts with the price's error, the strict checks'
        // error for the underlying.
        const unpriced = priceErrors[u];
        const [volatility, risk, optionPool] = await Promise.all([
          unpriced ? { volatility: 0n, volatilityError: unpriced } : readVolatility(client, u, blockTag),
          engine.riskParams(u, { blockTag }),
          optionUnderlyings.has(u) ? readOptionPool(client, u, blockTag) : undefined,
        ]);
        underlyings[u] = { ...volatility, risk: riskParams(risk), optionPool };
      }),
    );
    return {
      accountId,
      blockNumber: block.number,
      timestamp,
      quoteToken: quote,
      collateral,
      prices,
      ...(Object.keys(priceErrors).length !== 0 ? { priceErrors } : {}),
      underlyings,
      positions,
      markets,
      frozen,
      marginMode: mode === 1n ? "isolated" : "cross",
      protocol: {
        poolAccountId,
        backstopAccountId: protocol.backstop,
        quoteOnlyAccountIds: [protocol.pool, protocol.backstop, protocol.insurance],
        paused,
        poolDeltaBase,
        quoteUnit: unit,
        quoteInterest,
      },
    };
  });
}

/**
 * The volatility of `underlying` as the engine's health reads it (`getPriceAndVolatilityOrZero`): 0 while
 * its feed fails its checks, with the error the strict read (`getVolatility`) reverts with.
 */
async function readVolatility(
  client: XMarginClient,
  underlying: string,
  blockTag: number,
): Promise<Pick<UnderlyingState, "volatility" | "volatilityError">> {
  const { oracleRouter } = client.contracts;
  const [, volatility] = await oracleRouter.getPriceAndVolatilityOrZero(underlying, { blockTag });
  if (volatility !== 0n) return { volatility };
  try {
    await oracleRouter.getVolatility(underlying, { blockTag });
  } catch (error) {
    const volatilityError = decodeError(error, errorContext(client));
    if (volatilityError) return { volatility, volatilityError };
    throw error;
  }
  throw new Error(`the volatility of ${underlying} read 0 and then passed its checks at one block`);
}

/** The option market's pool limits on `underlying` (only series trade against them). */
async function readOptionPool(
  client: XMarginClient,
  underlying: string,
  blockTag: number,
): Promise<OptionPoolState> {
  const market = optionMarketOf(client);
  const [vega, delta, limits] = await Promise.all([
    market.traderVega(underlying, { blockTag }),
    market.traderDelta(underlying, { blockTag }),
    market.underlyingLimits(underlying, { blockTag }),
  ]);
  return {
    vega: { long: vega.longVega, short: vega.shortVega },
    delta: { long: delta.longDelta, short: delta.shortDelta },
    maxPoolVegaRatio: limits.poolVegaRatio,
    maxPoolDeltaRatio: limits.poolDeltaRatio,
  };
}

function riskParams(r: RiskParams): RiskParams {
  return {
    mmShockFloor: r.mmShockFloor,
    imShockFloor: r.imShockFloor,
    mmZ: r.mmZ,
    imZ: r.imZ,
    horizon: r.horizon,
    maxShock: r.maxShock,
    mmVolShock: r.mmVolShock,
    imVolShock: r.imVolShock,
    shortOptionFloor: r.shortOptionFloor,
    contingency: r.contingency,
    sizeScale: r.sizeScale,
  };
}

async function readCollateral(
  client: XMarginClient,
  accountId: bigint,
  token: string,
  blockTag: number,
): Promise<CollateralState> {
  const { vault } = client.contracts;
  const [balance, config] = await Promise.all([
    vault.balanceOf(accountId, token, { blockTag }),
    vault.collateralConfig(token, { blockTag }),
  ]);
  // The symbol is for error messages; a token the vault never listed may not be an ERC-20 at all (an
  // address without code answers no `decimals`), and its preview is the vault's TokenNotListed.
  if (config.listed || balance !== 0n) await tokenInfo(client, token);
  const state: CollateralState = {
    token,
    balance,
    decimals: Number(config.decimals),
    oracleAsset: config.oracleAsset.toLowerCase(),
    initialWeight: config.initialWeight,
    maintenanceWeight: config.maintenanceWeight,
    shockedWeight: config.shockedWeight,
    listed: config.listed,
  };
  if (config.isErc4626) {
    const share = erc4626(token, client.provider);
    const [assetsPerShare, assetDecimals] = await Promise.all([
      share.convertToAssets(10n ** config.decimals, { blockTag }),
      client.memo(`assetDecimals:${token}`, async () =>
        Number((await tokenInfo(client, await share.asset())).decimals),
      ),
    ]);
    state.erc4626 = { assetsPerShare, assetDecimals };
  }
  return state;
}
