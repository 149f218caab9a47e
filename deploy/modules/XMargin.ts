/**
 * The whole protocol in one Ignition module, shaped by the network's config file
 * (deploy/config/<network>.json, see deploy/networkConfig.ts):
 *
 *   governance   AccessManager (deployer as initial admin) ... TimelockController (admin at the end)
 *   oracles      OracleRouter; price, volatility and (L2) sequencer-uptime feeds, mocks where configured
 *   core         Accounts, CollateralVault (+ collateral), MarginEngine (+ underlyings), InsuranceFund,
 *                LiquidityPool, LiquidationAuction, engine.initialize
 *   markets      PerpMarket (+ markets, listed in config order so ids are 1, 2, ...), OptionMarket (+ pool
 *                vega limit per underlying; series are listed later by the listing role, see scripts/seed.ts)
 *   roles        every restricted selector mapped to its role (deploy/roles.ts), grants from the config
 *   handover     ADMIN granted to the timelock, then renounced by the deployer
 *
 * While the module configures the contracts their selectors have no role yet, so the deployer (initial
 * admin) may call them; role mapping waits for every configuration call (`after`), and the deployer's
 * renunciation waits for everything else.
 */
import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import type {
  ContractCallFuture,
  NamedArtifactContractDeploymentFuture,
} from "@nomicfoundation/ignition-core";
import { encodeBytes32String, Interface, type InterfaceAbi } from "ethers";
import { FUNCTION_ROLES, Role, type ContractName } from "../roles";
import {
  loadNetworkConfig,
  type AccountRef,
  type FeedSource,
  type NetworkDeployConfig,
  type RoleName,
} from "../networkConfig";

type Future = ContractCallFuture<string, string>;
type ContractFuture = NamedArtifactContractDeploymentFuture<string>;

/**
 * The Hardhat runtime (artifacts, network name). Required at call time rather than imported: a module is
 * only ever built inside Hardhat (hardhat run, hardhat ignition, hardhat test), which loads it first.
 */
function hardhat(): {
  network: { name: string };
  artifacts: { readArtifactSync(name: string): { abi: unknown[] } };
} {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("hardhat");
}

/** The ABI of a compiled contract (for selectors), from Hardhat's artifacts. */
const interfaceOf = (name: ContractName): Interface =>
  new Interface(hardhat().artifacts.readArtifactSync(name).abi as InterfaceAbi);

/** Ignition future ids allow letters, digits and underscores only. */
const idOf = (...parts: string[]): string => parts.join("_").replace(/[^A-Za-z0-9_]/g, "_");

export const assetId = (symbol: string): string => encodeBytes32String(symbol);

/** Builds the module for `config`. The default export is built for the network Hardhat runs on. */
export function buildXMarginModule(config: NetworkDeployConfig) {
  return buildModule("XMargin", (m) => {
    const deployer = m.getAccount(0);
    const configured: Future[] = [];

    // ------------------------------------------------------------------ governance (initial)
    const accessManager = m.contract("AccessManager", [deployer]);

    // ------------------------------------------------------------------ oracles
    const oracleRouter = m.contract("OracleRouter", [accessManager]);
    const feedOf = (kind: string, symbol: string, source: FeedSource): ContractFuture | string =>
      "mock" in source
        ? m.contract("MockV3Aggregator", [source.mock.decimals, source.mock.answer], {
            id: idOf(kind, symbol),
          })
        : source.address;

    const priceFeeds: Record<string, ContractFuture> = {};
    const assetConfigured: Record<string, Future> = {};
    for (const [symbol, feed] of Object.entries(config.feeds)) {
      const aggregator = feedOf("PriceFeed", symbol, feed.source);
      if (typeof aggregator !== "string") priceFeeds[symbol] = aggregator;
      assetConfigured[symbol] = m.call(
        oracleRouter,
        "configureAsset",
        [
          assetId(symbol),
          {
            primary: aggregator,
            primaryHeartbeat: feed.heartbeat,
            secondaries: [],
            secondaryHeartbeats: [],
            minPrice: feed.minPrice,
            maxPrice: feed.maxPrice,
            maxDeviation: 0n,
          },
        ],
        { id: idOf("configureAsset", symbol) },
      );
      configured.push(assetConfigured[symbol]);
    }
    const volatilityFeeds: Record<string, ContractFuture> = {};
    const volConfigured: Record<string, Future> = {};
    for (const [symbol, feed] of Object.entries(config.volatilityFeeds)) {
      const aggregator = feedOf("VolatilityFeed", symbol, feed.source);
      if (typeof aggregator !== "string") volatilityFeeds[symbol] = aggregator;
      volConfigured[symbol] = m.call(
        oracleRouter,
        "configureVolatilityFeed",
        [assetId(symbol), aggregator, feed.heartbeat, feed.minVol, feed.maxVol],
        { id: idOf("configureVolatilityFeed", symbol) },
      );
      configured.push(volConfigured[symbol]);
    }

    // ------------------------------------------------------------------ tokens
    const tokenAddress: Record<string, ContractFuture | string> = {};
    const tokens: Record<string, ContractFuture> = {};
    // Vault shares need their asset first: plain tokens, then ERC-4626 mocks.
    const ordered = Object.entries(config.tokens).sort(
      ([, a], [, b]) => Number("mockVault" in a.source) - Number("mockVault" in b.source),
    );
    for (const [symbol, token] of ordered) {
      const { source } = token;
      if ("mock" in source) {
        tokens[symbol] = m.contract("MockERC20", [source.mock.name, symbol, source.mock.decimals], {
          id: idOf("Token", symbol),
        });
      } else if ("mockVault" in source) {
        tokens[symbol] = m.contract(
          "MockERC4626",
          [tokenAddress[source.mockVault.asset], source.mockVault.name, symbol, 0],
          { id: idOf("Token", symbol) },
        );
      }
      tokenAddress[symbol] = tokens[symbol] ?? (source as { address: string }).address;
    }
    const quote = tokenAddress[config.quoteToken];

    // ------------------------------------------------------------------ core
    const accounts = m.contract("Accounts", []);
    const vault = m.contract("CollateralVault", [accessManager, accounts, oracleRouter, quote]);
    // The engine's risk-parameter checks are a linked library (they do not fit in its 24,576 bytes).
    const riskParamsLib = m.library("RiskParamsLib");
    const engine = m.contract("MarginEngine", [accessManager, vault, accounts, oracleRouter], {
      libraries: { RiskParamsLib: riskParamsLib },
    });
    const marginEngineSet = m.call(vault, "setMarginEngine", [engine]);
    configured.push(marginEngineSet, m.call(accounts, "bindMarginEngine", [engine]));

    const underlyingListed: Record<string, Future> = {};
    for (const [symbol, params] of Object.entries(config.underlyings)) {
      underlyingListed[symbol] = m.call(engine, "listUnderlying", [assetId(symbol), { ...params }], {
        id: idOf("listUnderlying", symbol),
        after: [assetConfigured[symbol], volConfigured[symbol]],
      });
      configured.push(underlyingListed[symbol]);
    }

    const insuranceFund = m.contract("InsuranceFund", [accessManager, vault, accounts]);
    const liquidityPool = m.contract("LiquidityPool", [
      accessManager,
      vault,
      accounts,
      engine,
      config.liquidityPool.name,
      config.liquidityPool.symbol,
    ]);
    const liquidationAuction = m.contract("LiquidationAuction", [
      accessManager,
      engine,
      accounts,
      insuranceFund,
      { ...config.auction },
    ]);
    configured.push(m.call(liquidityPool, "setHoldingPeriod", [config.liquidityPool.holdingPeriod]));
    configured.push(m.call(liquidityPool, "setExitDelay", [config.liquidityPool.exitDelay]));
    const poolAccountId = m.staticCall(liquidityPool, "accountId", []);
    // initialize tells the vault the pool's and the backstop's accounts: the vault must know the engine.
    const initialized = m.call(engine, "initialize", [poolAccountId, insuranceFund, liquidationAuction], {
      after: [marginEngineSet],
    });
    configured.push(initialized);
    // Collateral is listed once the vault knows the pool's and the backstop's accounts: listed before,
    // a token donated to the pool's account would stay there for good (review round 20).
    for (const [symbol, token] of Object.entries(config.tokens)) {
      configured.push(
        m.call(
          vault,
          "listCollateral",
          [
            tokenAddress[symbol],
            assetId(token.oracleAsset),
            token.initialWeight,
            token.maintenanceWeight,
            token.depositCap,
            token.isErc4626,
          ],
          { id: idOf("listCollateral", symbol), after: [assetConfigured[token.oracleAsset], initialized] },
        ),
      );
      if (token.shockedWeight !== 0n) {
        configured.push(
          m.call(vault, "setShockedWeight", [tokenAddress[symbol], token.shockedWeight], {
            id: idOf("setShockedWeight", symbol),
            after: [configured[configured.length - 1]],
          }),
        );
      }
    }
    // The vault reads the lender (the pool's account) from the engine when the model is first set.
    configured.push(
      m.call(vault, "setInterestRateModel", [{ ...config.liquidityPool.interestRateModel }], {
        after: [initialized, marginEngineSet],
      }),
    );

    // ------------------------------------------------------------------ markets
    // PerpMarket reads the pool account from the engine in its constructor: deploy after initialize.
    const perpMarket = m.contract(
      "PerpMarket",
      [accessManager, engine, accounts, oracleRouter, config.tokens[config.quoteToken].decimals],
      { after: [initialized] },
    );
    let previous: Future = m.call(engine, "registerMarket", [perpMarket], { id: "registerPerpMarket" });
    configured.push(previous);
    for (const [symbol, market] of Object.entries(config.perpMarkets)) {
      // One after the other, so market ids follow the config's order.
      const listing = [assetId(market.underlying), { ...market.params }, market.minRoundTripFee];
      previous = m.call(perpMarket, "listMarket", listing, {
        id: idOf("listPerpMarket", symbol),
        after: [previous, underlyingListed[market.underlying]],
      });
      configured.push(previous);
    }

    // OptionMarket also reads the pool account in its constructor. It prices on the oracle's volatility
    // feeds (configured above); series are listed afterwards by the listing role, since their expiries
    // are dates, not deployment parameters: the deployment fixes only their grid (08:00 UTC daily).
    // Its series-parameter checks are a linked library too (they left it 61 bytes under the limit).
    const seriesParamsLib = m.library("SeriesParamsLib");
    const optionMarket = m.contract(
      "OptionMarket",
      [
        accessManager,
        engine,
        accounts,
        oracleRouter,
        config.tokens[config.quoteToken].decimals,
        config.optionMarket.expiryPeriod,
        config.optionMarket.expiryOffset,
      ],
      { after: [initialized], libraries: { SeriesParamsLib: seriesParamsLib } },
    );
    const optionMarketRegistered = m.call(engine, "registerMarket", [optionMarket], {
      id: "registerOptionMarket",
    });
    configured.push(optionMarketRegistered);
    // The perp markets' delta limits leave out the premiums the pool holds for open options.
    configured.push(
      m.call(perpMarket, "setOptionMarket", [optionMarket], { after: [optionMarketRegistered] }),
    );
    // An underlying's first option limits and its series' fee and spread floors are the timelock's
    // (`configureUnderlying`); the risk role steps the limits afterwards.
    for (const [symbol, vegaRatio] of Object.entries(config.optionMarket.poolVegaRatio)) {
      const { poolDeltaRatio, minFee, minSpreadFactor } = config.optionMarket;
      configured.push(
        m.call(
          optionMarket,
          "configureUnderlying",
          [assetId(symbol), vegaRatio, poolDeltaRatio[symbol], minFee[symbol], minSpreadFactor[symbol]],
          { id: idOf("configureOptionUnderlying", symbol), after: [underlyingListed[symbol]] },
        ),
      );
    }

    // The sequencer-uptime feed is the last of the configuration: once configured, every price read
    // (listCollateral values a token's smallest unit) waits out the grace period, which a mock uptime
    // feed starts at its own deployment (review round 32: the L2 configs could not deploy in one run).
    let sequencerFeed: ContractFuture | undefined;
    if (config.sequencerUptimeFeed) {
      const { source, gracePeriod } = config.sequencerUptimeFeed;
      // A mock uptime feed answers 0 (up) with startedAt = its deployment, as Chainlink's do after a
      // status change: the grace period runs from there.
      if ("mock" in source)
        sequencerFeed = m.contract("MockV3Aggregator", [0, 0n], { id: "SequencerUptimeFeed" });
      const feed = "mock" in source ? sequencerFeed! : source.address;
      configured.push(
        m.call(oracleRouter, "configureSequencerFeed", [feed, gracePeriod], { after: [...configured] }),
      );
    }

    // ------------------------------------------------------------------ governance (final)
    const resolve = (ref: AccountRef) => (ref === "deployer" ? deployer : ref);
    const timelock = m.contract("TimelockController", [
      config.governance.timelockMinDelay,
      config.governance.proposers.map((ref) => {
        if (ref === "timelock") throw new Error("the timelock cannot propose to itself");
        return resolve(ref);
      }),
      config.governance.executors.map((ref) => {
        if (ref === "timelock") throw new Error("the timelock cannot execute for itself");
        return resolve(ref);
      }),
      "0x0000000000000000000000000000000000000000",
    ]);

    const targets: Record<ContractName, ContractFuture> = {
      OracleRouter: oracleRouter,
      CollateralVault: vault,
      MarginEngine: engine,
      PerpMarket: perpMarket,
      OptionMarket: optionMarket,
      InsuranceFund: insuranceFund,
      LiquidityPool: liquidityPool,
      LiquidationAuction: liquidationAuction,
    };
    const wired: Future[] = [];
    for (const [name, target] of Object.entries(targets) as [ContractName, ContractFuture][]) {
      const byRole = new Map<bigint, string[]>();
      for (const [fn, role] of Object.entries(FUNCTION_ROLES[name])) {
        const selector = interfaceOf(name).getFunction(fn)?.selector;
        if (!selector) throw new Error(`${name}.${fn} does not exist`);
        byRole.set(role, [...(byRole.get(role) ?? []), selector]);
      }
      for (const [role, selectors] of byRole) {
        wired.push(
          m.call(accessManager, "setTargetFunctionRole", [target, selectors, role], {
            id: idOf("setTargetFunctionRole", name, String(role)),
            after: configured,
          }),
        );
      }
    }
    const granted: Future[] = [];
    for (const [roleName, grants] of Object.entries(config.governance.roles)) {
      grants.forEach((grant, i) => {
        const account = grant.account === "timelock" ? timelock : resolve(grant.account);
        granted.push(
          m.call(accessManager, "grantRole", [Role[roleName as RoleName], account, grant.executionDelay], {
            id: idOf("grantRole", roleName, String(i)),
            after: configured,
          }),
        );
      });
    }
    const adminToTimelock = m.call(accessManager, "grantRole", [Role.ADMIN, timelock, 0], {
      id: "grantRole_ADMIN_timelock",
      after: [...wired, ...granted],
    });
    m.call(accessManager, "renounceRole", [Role.ADMIN, deployer], {
      id: "renounceRole_ADMIN_deployer",
      after: [adminToTimelock],
    });

    const prefixed = (prefix: string, record: Record<string, ContractFuture>) =>
      Object.fromEntries(Object.entries(record).map(([symbol, future]) => [idOf(prefix, symbol), future]));
    return {
      accessManager,
      timelock,
      oracleRouter,
      accounts,
      vault,
      engine,
      insuranceFund,
      liquidityPool,
      liquidationAuction,
      perpMarket,
      optionMarket,
      ...prefixed("token", tokens),
      ...prefixed("priceFeed", priceFeeds),
      ...prefixed("volatilityFeed", volatilityFeeds),
      ...(sequencerFeed ? { sequencerUptimeFeed: sequencerFeed } : {}),
    };
  });
}

export default buildXMarginModule(loadNetworkConfig(hardhat().network.name));
