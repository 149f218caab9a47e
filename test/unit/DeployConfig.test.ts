import { expect } from "chai";
import fs from "node:fs";
import path from "node:path";
import { parseEther, parseUnits } from "ethers";
import {
  MAX_PERP_MARKETS,
  MAX_UNDERLYINGS,
  loadNetworkConfig,
  parseNetworkConfig,
} from "../../deploy/networkConfig";
import { buildXMarginModule } from "../../deploy/modules/XMargin";
import { DEFAULT_AUCTION_PARAMS, DEFAULT_RISK_PARAMS, EXIT_DELAY, HOLDING_PERIOD } from "../shared/system";
import { DEFAULT_MARKET_PARAMS, DEFAULT_MIN_ROUND_TRIP_FEE } from "../shared/perps";
import { DEFAULT_LISTING_FLOORS, DEFAULT_POOL_DELTA_RATIO, DEFAULT_POOL_VEGA_RATIO } from "../shared/options";
import { FUNCTION_ROLES, type ContractName } from "../../deploy/roles";
import { rawConfig, sepoliaOn } from "../shared/configs";

const raw = rawConfig;

const CONTRACTS_DIR = path.join(__dirname, "../../contracts");

/** Functions of a Solidity source declared with the `restricted` modifier (AccessManaged). */
function restrictedFunctions(file: string): string[] {
  const source = fs.readFileSync(file, "utf8");
  const names: string[] = [];
  for (const match of source.matchAll(/function\s+(\w+)\s*\(([^)]*)\)([^{;]*)\{/g)) {
    if (/\brestricted\b/.test(match[3])) names.push(match[1]);
  }
  return names;
}

/** One-shot wiring the module does as the initial admin; left to ADMIN (the timelock) afterwards. */
const ADMIN_ONLY: Partial<Record<ContractName, string[]>> = {
  OracleRouter: ["configureAsset", "configureVolatilityFeed", "configureSequencerFeed"],
  CollateralVault: ["setMarginEngine", "listCollateral", "relistCollateral"],
  MarginEngine: ["initialize", "registerMarket", "listUnderlying"],
  PerpMarket: ["listMarket", "setOptionMarket", "setMinRoundTripFee"],
  OptionMarket: ["settleSeriesAtPhaseStart", "configureUnderlying"],
};

describe("Deployment configs and the Ignition module", function () {
  it("has a config for localhost and each public testnet, each building the module", function () {
    const chains: Record<string, number> = {
      localhost: 31337,
      sepolia: 11_155_111,
      arbitrumSepolia: 421_614,
      baseSepolia: 84_532,
    };
    for (const [network, chainId] of Object.entries(chains)) {
      const config = loadNetworkConfig(network);
      expect(config.chainId, network).to.equal(chainId);
      const module = buildXMarginModule(config);
      expect(Object.keys(module.results), network).to.include.members([
        "accessManager",
        "timelock",
        "oracleRouter",
        "accounts",
        "vault",
        "engine",
        "insuranceFund",
        "liquidityPool",
        "liquidationAuction",
        "perpMarket",
        "optionMarket",
      ]);
    }
  });

  it("maps every restricted function of the protocol to a role, except the admin-only wiring", function () {
    const sources: Record<ContractName, string> = {
      OracleRouter: "oracles/OracleRouter.sol",
      CollateralVault: "core/CollateralVault.sol",
      MarginEngine: "core/MarginEngine.sol",
      PerpMarket: "markets/PerpMarket.sol",
      OptionMarket: "markets/OptionMarket.sol",
      InsuranceFund: "core/InsuranceFund.sol",
      LiquidityPool: "markets/LiquidityPool.sol",
      LiquidationAuction: "core/LiquidationAuction.sol",
    };
    for (const [name, file] of Object.entries(sources) as [ContractName, string][]) {
      const restricted = restrictedFunctions(path.join(CONTRACTS_DIR, file));
      const mapped = Object.keys(FUNCTION_ROLES[name]);
      expect([...mapped, ...(ADMIN_ONLY[name] ?? [])].sort(), name).to.deep.equal([...restricted].sort());
    }
    // Every contract that inherits AccessManaged is in the map.
    const managed = fs
      .readdirSync(CONTRACTS_DIR, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".sol") && !f.startsWith("test"))
      .filter((f) => restrictedFunctions(path.join(CONTRACTS_DIR, f)).length > 0)
      .sort();
    expect(managed).to.deep.equal(Object.values(sources).sort());
  });

  it("wires OptionMarket in the module: engine registration, pool vega and delta limits, the perp delta limit's base, its roles", function () {
    const module = buildXMarginModule(loadNetworkConfig("localhost"));
    const ids = [...module.futures].map((f) => f.id.replace(/^XMargin#/, ""));
    expect(ids).to.include.members([
      "OptionMarket",
      "registerOptionMarket",
      "configureOptionUnderlying_ETH",
      "configureOptionUnderlying_BTC",
      "PerpMarket.setOptionMarket",
      "setTargetFunctionRole_OptionMarket_1", // RISK_MANAGER: setSeriesParams, setSkew, the pool ratios
      "setTargetFunctionRole_OptionMarket_2", // LISTING: listSeries
    ]);
  });

  it("uses Hardhat's in-process network with the localhost parameters", function () {
    expect(loadNetworkConfig("hardhat")).to.deep.equal(loadNetworkConfig("localhost"));
  });

  it("deploys locally what the test fixture deploys: mock feeds and tokens, the fixture's parameters", function () {
    const config = loadNetworkConfig("localhost");
    expect(config.sequencerUptimeFeed).to.equal(null);
    expect(config.feeds.ETH.source).to.deep.equal({ mock: { decimals: 8, answer: parseUnits("3000", 8) } });
    expect(Object.keys(config.tokens)).to.deep.equal(["USDC", "WETH", "WBTC", "sWETH"]);
    expect(config.tokens.sWETH).to.include({ isErc4626: true, decimals: 18, oracleAsset: "ETH" });
    expect(config.tokens.USDC.depositCap).to.equal(10n ** 15n); // 1e9 USDC, as the fixture
    for (const underlying of ["ETH", "BTC"]) {
      expect(config.underlyings[underlying]).to.deep.equal({ ...DEFAULT_RISK_PARAMS, horizon: 86_400n });
      expect(config.perpMarkets[underlying].params).to.deep.equal(DEFAULT_MARKET_PARAMS);
      expect(config.perpMarkets[underlying].minRoundTripFee).to.equal(DEFAULT_MIN_ROUND_TRIP_FEE);
    }
    expect(config.auction).to.deep.equal({ ...DEFAULT_AUCTION_PARAMS, duration: 1800n });
    expect(BigInt(config.liquidityPool.holdingPeriod)).to.equal(HOLDING_PERIOD);
    expect(BigInt(config.liquidityPool.exitDelay)).to.equal(EXIT_DELAY);
    expect(config.optionMarket.poolVegaRatio).to.deep.equal({
      ETH: DEFAULT_POOL_VEGA_RATIO,
      BTC: DEFAULT_POOL_VEGA_RATIO,
    });
    // Half the fixture's delta ratio: the fixture's tests measure one underlying's limit at 1, and two at 1
    // break the deployments' bound on what far options pin (the spec above).
    expect(config.optionMarket.poolDeltaRatio).to.deep.equal({
      ETH: DEFAULT_POOL_DELTA_RATIO / 2n,
      BTC: DEFAULT_POOL_DELTA_RATIO / 2n,
    });
    for (const underlying of ["ETH", "BTC"]) {
      const { minFee, minSpreadFactor } = config.optionMarket;
      expect({ minFee: minFee[underlying], minSpreadFactor: minSpreadFactor[underlying] }).to.deep.equal(
        DEFAULT_LISTING_FLOORS,
      );
    }
    const module = buildXMarginModule(config);
    expect(Object.keys(module.results)).to.include.members([
      "token_USDC",
      "priceFeed_ETH",
      "volatilityFeed_ETH",
      "volatilityFeed_BTC",
    ]);
  });

  it("uses real Chainlink price feeds on testnets, a mock volatility feed, and a mock uptime feed on the L2s only", function () {
    for (const network of ["sepolia", "arbitrumSepolia", "baseSepolia"]) {
      const config = loadNetworkConfig(network);
      for (const symbol of ["USDC", "ETH", "BTC"])
        expect(config.feeds[symbol].source, network).to.have.property("address");
      for (const symbol of ["ETH", "BTC"])
        expect(config.volatilityFeeds[symbol].source, network).to.have.property("mock");
      const module = buildXMarginModule(config);
      expect(
        Object.keys(module.results).filter((k) => k.startsWith("priceFeed_")),
        network,
      ).to.deep.equal([]);
      expect("sequencerUptimeFeed" in module.results, network).to.equal(network !== "sepolia");
    }
    expect(loadNetworkConfig("sepolia").feeds.ETH.source).to.deep.equal({
      address: "0x694AA1769357215DE4FAC081bf1f309aDC325306",
    });
    expect(loadNetworkConfig("arbitrumSepolia").sequencerUptimeFeed).to.deep.equal({
      source: { mock: true },
      gracePeriod: 600,
    });
  });

  it("reports the JSON path of a bad value", function () {
    const broken = raw("localhost");
    broken.tokens.WETH.initialWeight = 0.9;
    expect(() => parseNetworkConfig(broken, "x.json")).to.throw(
      "x.json: tokens.WETH.initialWeight: expected a decimal string",
    );
    const unpriced = raw("localhost");
    unpriced.tokens.WETH.oracleAsset = "SOL";
    expect(() => parseNetworkConfig(unpriced)).to.throw("tokens.WETH.oracleAsset: no price feed for SOL");
    // A name every object inherits is not a key of the config (`in` took it for one).
    const inherited = raw("localhost");
    inherited.tokens.WETH.oracleAsset = "constructor";
    expect(() => parseNetworkConfig(inherited)).to.throw(
      "tokens.WETH.oracleAsset: no price feed for constructor",
    );
    const inheritedQuote = raw("localhost");
    inheritedQuote.quoteToken = "toString";
    expect(() => parseNetworkConfig(inheritedQuote)).to.throw("quoteToken: not in tokens: toString");
    const tooPrecise = raw("localhost");
    tooPrecise.auction.flagReward = "0.0000001";
    expect(() => parseNetworkConfig(tooPrecise)).to.throw("auction.flagReward: more than 6 decimals");
    const noUnderlying = raw("localhost");
    noUnderlying.optionMarket.poolVegaRatio.SOL = "1";
    expect(() => parseNetworkConfig(noUnderlying)).to.throw(
      "optionMarket.poolVegaRatio.SOL: not an underlying: SOL",
    );
    const halfConfigured = raw("localhost");
    delete halfConfigured.optionMarket.poolDeltaRatio.BTC;
    expect(() => parseNetworkConfig(halfConfigured)).to.throw("optionMarket.poolDeltaRatio.BTC: missing");
    const noFloor = raw("localhost");
    delete noFloor.optionMarket.minSpreadFactor.ETH;
    expect(() => parseNetworkConfig(noFloor)).to.throw("optionMarket.minSpreadFactor.ETH: missing");
    // The floors are OptionMarket's hard bounds at most (configureUnderlying would revert mid-deployment).
    const feeFloor = raw("localhost");
    feeFloor.optionMarket.minFee.BTC = "0.0051";
    expect(() => parseNetworkConfig(feeFloor)).to.throw("optionMarket.minFee.BTC: at most 0.005");
    const spreadFloor = raw("localhost");
    spreadFloor.optionMarket.minSpreadFactor.BTC = "0.11";
    expect(() => parseNetworkConfig(spreadFloor)).to.throw("optionMarket.minSpreadFactor.BTC: at most 0.1");
  });

  it("refuses more underlyings or perp markets than the contracts list, instead of stopping halfway through a deployment", function () {
    const OPTION_KEYS = ["poolVegaRatio", "poolDeltaRatio", "minFee", "minSpreadFactor"];
    const config = raw("localhost");
    for (let i = 0; Object.keys(config.underlyings).length < MAX_UNDERLYINGS; i++) {
      const sym = `U${i}`;
      config.feeds[sym] = config.feeds.ETH;
      config.volatilityFeeds[sym] = config.volatilityFeeds.ETH;
      config.underlyings[sym] = config.underlyings.ETH;
      for (const key of OPTION_KEYS) config.optionMarket[key][sym] = config.optionMarket[key].ETH;
    }
    // Small option delta limits, within the bound on what far options pin over all 32 underlyings.
    for (const sym of Object.keys(config.optionMarket.poolDeltaRatio))
      config.optionMarket.poolDeltaRatio[sym] = "0.01";
    expect(Object.keys(parseNetworkConfig(config).underlyings)).to.have.length(MAX_UNDERLYINGS);
    config.underlyings.SOL = config.underlyings.ETH;
    config.feeds.SOL = config.feeds.ETH;
    config.volatilityFeeds.SOL = config.volatilityFeeds.ETH;
    for (const key of OPTION_KEYS) config.optionMarket[key].SOL = config.optionMarket[key].ETH;
    expect(() => parseNetworkConfig(config)).to.throw(
      "underlyings: at most 32 (MarginEngine.MAX_UNDERLYINGS)",
    );

    const markets = raw("localhost");
    for (let i = 0; Object.keys(markets.perpMarkets).length < MAX_PERP_MARKETS; i++)
      markets.perpMarkets[`ETH${i}`] = markets.perpMarkets.ETH;
    expect(Object.keys(parseNetworkConfig(markets).perpMarkets)).to.have.length(MAX_PERP_MARKETS);
    markets.perpMarkets.ONE_MORE = markets.perpMarkets.ETH;
    expect(() => parseNetworkConfig(markets)).to.throw("perpMarkets: at most 32 (PerpMarket.MAX_MARKETS)");
  });

  it("refuses a misspelt or contradictory key, naming it, instead of deploying without it (row 177)", function () {
    const sepolia = () => raw("sepolia");
    const refused = (mutate: (c: Record<string, any>) => void): string => {
      const c = sepolia();
      mutate(c);
      try {
        parseNetworkConfig(c, "sepolia.json");
      } catch (error) {
        return (error as Error).message;
      }
      return "accepted";
    };
    // The shipped configs still parse, their $comments included.
    for (const network of ["localhost", "sepolia", "arbitrumSepolia", "baseSepolia"]) {
      expect(() => parseNetworkConfig(raw(network), network)).to.not.throw();
    }
    // A role spelt otherwise granted nothing: the keeper never got BACKSTOP.
    expect(
      refused((c) => (c.governance.roles.BACKSTOPS = [{ account: "deployer", executionDelay: 0 }])),
    ).to.contain("governance.roles.BACKSTOPS: unknown key");
    expect(
      refused((c) => (c.governance.roles.backstop = [{ account: "deployer", executionDelay: 0 }])),
    ).to.contain("governance.roles.backstop: unknown key");
    // A misspelt threshold skipped the fee check it exists for.
    expect(
      refused((c) => {
        c.feeds.ETH.deviationTreshold = "0.005";
      }),
    ).to.contain("feeds.ETH.deviationTreshold: unknown key");
    // Spelt right, the same threshold is refused against 2 + 5 bp of fees (held before the round).
    expect(refused((c) => (c.feeds.ETH.deviationThreshold = "0.005"))).to.contain(
      "perpMarkets.ETH.takerFee: makerFee + takerFee below the ETH feed's deviation threshold",
    );
    // Chainlink's address and a mock: the mock won, a price feed anyone may post to.
    expect(refused((c) => (c.feeds.ETH.mock = { decimals: 8, answer: "3000" }))).to.contain(
      'feeds.ETH: give "address" or "mock", not both',
    );
    expect(refused((c) => (c.tokens.WETH.address = "0x7b79995e5f793a07bc00c21412e50ecae098e7f9"))).to.contain(
      'tokens.WETH: give one of "address", "mock" and "mockVault"',
    );
    // A market parameter under another name.
    expect(
      refused((c) => {
        c.perpMarkets.ETH.takerFees = c.perpMarkets.ETH.takerFee;
      }),
    ).to.contain("perpMarkets.ETH.takerFees: unknown key");
    // A role for the zero address is held by nobody.
    expect(
      refused(
        (c) =>
          (c.governance.roles.BACKSTOP = [
            { account: "0x0000000000000000000000000000000000000000", executionDelay: 0 },
          ]),
      ),
    ).to.contain("governance.roles.BACKSTOP[0].account: the zero address");
  });

  // Review round 121: a live feed's up round is dated with L1's time; relayed late, it arrives with a
  // short grace already run, and accounts are liquidatable the moment the sequencer is back.
  it("refuses a live sequencer-uptime feed with a grace period under an hour; a testnet's mock keeps 600 s", function () {
    const withFeed = (feed: Record<string, unknown>) => ({
      ...raw("arbitrumSepolia"),
      sequencerUptimeFeed: feed,
    });
    const live = "0xFdB631F5EE196F0ed6FAa767959853A9F217697D";
    expect(() => parseNetworkConfig(withFeed({ address: live, gracePeriod: 600 }))).to.throw(
      "sequencerUptimeFeed.gracePeriod: at least 3600 s with a live uptime feed (its up round can arrive late)",
    );
    expect(
      parseNetworkConfig(withFeed({ address: live, gracePeriod: 3_600 })).sequencerUptimeFeed,
    ).to.deep.equal({ source: { address: live }, gracePeriod: 3_600 });
    expect(
      parseNetworkConfig(withFeed({ mock: true, gracePeriod: 600 })).sequencerUptimeFeed?.gracePeriod,
    ).to.equal(600);
  });

  // Row 96: a held series closes LP exits for its last hour until settled, so a grid finer than a day
  // let LISTING keep exits closed around the clock; only the local chain's demo lists on a finer one.
  it("refuses an option expiry grid finer than a day except on the local chain", function () {
    const withGrid = (network: string, expiryPeriod: number, expiryOffset = 0) => {
      const config = raw(network);
      return { ...config, optionMarket: { ...config.optionMarket, expiryPeriod, expiryOffset } };
    };
    expect(() => parseNetworkConfig(withGrid("sepolia", 3_600))).to.throw(
      "optionMarket.expiryPeriod: at least 86400 s (a day) off the local chain",
    );
    expect(parseNetworkConfig(withGrid("sepolia", 86_400, 28_800)).optionMarket.expiryPeriod).to.equal(
      86_400,
    );
    expect(parseNetworkConfig(withGrid("localhost", 1)).optionMarket.expiryPeriod).to.equal(1);
    expect(() => parseNetworkConfig(withGrid("localhost", 8 * 86_400))).to.throw(
      "optionMarket.expiryPeriod: must be between 1 second and 7 days",
    );
    expect(() => parseNetworkConfig(withGrid("sepolia", 86_400, 86_400))).to.throw(
      "optionMarket.expiryOffset: must be below expiryPeriod",
    );
  });

  // Rows 220 and 225: each contract counts at least 0.2 delta in the option delta limit, so each side of
  // an underlying's far contracts pins at most ratio × floor / 0.2 of the pool; ETH and BTC at ratio 1
  // let far calls and puts on both pin all of it (CountedDelta.test.ts).
  it("refuses option delta ratios whose far out-of-the-money contracts could pin more than half the pool", function () {
    const withDeltaRatios = (network: string, ETH: string, BTC: string) => {
      const config = raw(network);
      return { ...config, optionMarket: { ...config.optionMarket, poolDeltaRatio: { ETH, BTC } } };
    };
    for (const network of ["localhost", "sepolia"]) {
      expect(() => parseNetworkConfig(withDeltaRatios(network, "1", "1"))).to.throw(
        "optionMarket.poolDeltaRatio: far out-of-the-money options could pin 1.0 of the pool (Σ 2 × ratio × shortOptionFloor / 0.2), at most 0.5: LP exits must keep the rest",
      );
      expect(() => parseNetworkConfig(withDeltaRatios(network, "0.5", "0.51"))).to.throw("could pin 0.505");
      const limits = parseNetworkConfig(withDeltaRatios(network, "0.75", "0.25")).optionMarket;
      expect(limits.poolDeltaRatio).to.deep.equal({ ETH: parseEther("0.75"), BTC: parseEther("0.25") });
    }
  });

  // Review round 32 (row 93): every config had a 60 s or one-hour timelock whose only proposer was the
  // deployer, who also held GUARDIAN: it could register itself as a market and take the pool's USDC a
  // minute after scheduling it, or pause withdrawals for the whole delay of its proposal.
  it("refuses a timelock under two days, and a proposer holding GUARDIAN, RISK_MANAGER or LISTING without that delay", function () {
    const withGovernance = (governance: object) => {
      const config = raw("sepolia");
      return { ...config, governance: { ...config.governance, ...governance } };
    };
    expect(() => parseNetworkConfig(withGovernance({ timelockMinDelay: 172_799 }))).to.throw(
      "governance.timelockMinDelay: at least 172800 s (two days)",
    );
    // The deployer may propose once each of those roles it holds waits as long as the timelock.
    const EXIT_CLOSING = ["GUARDIAN", "RISK_MANAGER", "LISTING"];
    const proposing = (delays: Record<string, number>) =>
      parseNetworkConfig(
        withGovernance({
          proposers: ["deployer"],
          roles: {
            ...raw("sepolia").governance.roles,
            ...Object.fromEntries(
              EXIT_CLOSING.map((role) => [
                role,
                [{ account: "deployer", executionDelay: delays[role] ?? 172_800 }],
              ]),
            ),
          },
        }),
      );
    expect(() => proposing({})).not.to.throw();
    for (const role of EXIT_CLOSING) {
      expect(() => proposing({ [role]: 172_799 }), role).to.throw(`governance.roles.${role}[0]`);
    }
    for (const network of ["localhost", "sepolia", "arbitrumSepolia", "baseSepolia"]) {
      expect(loadNetworkConfig(network).governance.timelockMinDelay, network).to.equal(172_800);
    }
  });

  it("scales fractions to WAD and token amounts to the token's decimals exactly", function () {
    const config = loadNetworkConfig("localhost");
    expect(config.tokens.WETH.initialWeight).to.equal(parseEther("0.9"));
    expect(config.tokens.WBTC.depositCap).to.equal(10_000n * 10n ** 8n);
    expect(config.auction.flagReward).to.equal(10n * 10n ** 6n);
  });

  describe("ties the perp fees and the option fee floors to the feeds' deviation thresholds (review round 65, OracleLag.test.ts)", function () {
    /** Sepolia's config as if for Ethereum (chain id 1), with the feeds' published thresholds. */
    const onMainnet = (
      thresholds: Record<string, string>,
      fees?: [string, string],
      optionMinFee = "0.0005",
    ) => sepoliaOn(1, thresholds, fees, optionMinFee);
    const ETHEREUM_THRESHOLDS = { USDC: "0.0025", ETH: "0.005", BTC: "0.005" };

    it("refuses 2 / 5 bp of fees on a 0.5% feed: a round seen coming takes 5,014.93 USDC at the delta limit", function () {
      expect(() => parseNetworkConfig(onMainnet(ETHEREUM_THRESHOLDS))).to.throw(
        "perpMarkets.ETH.takerFee: makerFee + takerFee below the ETH feed's deviation threshold",
      );
    });

    it("refuses an option fee floor below the threshold: a deep in-the-money series held to settlement pays one fee", function () {
      // The testnets' 2.5 bp floor covers no 0.05% feed (one fee, review round 113); 5 bp does.
      expect(() =>
        parseNetworkConfig(onMainnet({ USDC: "0.001", ETH: "0.0005", BTC: "0.0005" }, undefined, "0.00025")),
      ).to.throw("optionMarket.minFee.ETH: minFee below the ETH feed's deviation threshold");
      expect(() =>
        parseNetworkConfig(onMainnet(ETHEREUM_THRESHOLDS, ["0.0025", "0.0025"], "0.0025")),
      ).to.throw("optionMarket.minFee.ETH: minFee below the ETH feed's deviation threshold");
      const arbitrum = parseNetworkConfig(onMainnet({ USDC: "0.001", ETH: "0.0005", BTC: "0.0005" }));
      expect(arbitrum.optionMarket.minFee.ETH).to.equal(parseEther("0.0005"));
    });

    it("refuses a perp fee floor below the threshold (the risk role could step the fees down to it) or above the round trip", function () {
      const arbitrum = onMainnet(
        { USDC: "0.001", ETH: "0.0015", BTC: "0.0005" },
        ["0.0005", "0.001"],
        "0.0015",
      );
      arbitrum.perpMarkets.ETH.minRoundTripFee = "0.0014";
      expect(() => parseNetworkConfig(arbitrum)).to.throw(
        "perpMarkets.ETH.minRoundTripFee: below the ETH feed's deviation threshold",
      );
      arbitrum.perpMarkets.ETH.minRoundTripFee = "0.0016";
      expect(() => parseNetworkConfig(arbitrum)).to.throw(
        "perpMarkets.ETH.minRoundTripFee: above makerFee + takerFee",
      );
      arbitrum.perpMarkets.ETH.minRoundTripFee = "0.0015";
      expect(parseNetworkConfig(arbitrum).perpMarkets.ETH.minRoundTripFee).to.equal(parseEther("0.0015"));
    });

    it("refuses a live feed that does not state its threshold, off the local chain and the testnets", function () {
      expect(() => parseNetworkConfig(onMainnet({}))).to.throw("feeds.USDC.deviationThreshold: missing");
    });

    it("accepts fees that cover the threshold: 25 bp a side and 50 bp of option fee on 0.5% feeds, today's perp fees and 5 bp on 0.05% ones", function () {
      const l1 = parseNetworkConfig(onMainnet(ETHEREUM_THRESHOLDS, ["0.0025", "0.0025"], "0.005"));
      expect(l1.feeds.ETH.deviationThreshold).to.equal(parseEther("0.005"));
      const arbitrum = parseNetworkConfig(onMainnet({ USDC: "0.001", ETH: "0.0005", BTC: "0.0005" }));
      expect(arbitrum.perpMarkets.ETH.params.takerFee).to.equal(parseEther("0.0005"));
    });

    it("asks a threshold of a mock feed too, off the local chain and the testnets (its poster is seen)", function () {
      // A mock feed is posted by whoever holds it: its rounds are as visible in the mempool as a live
      // feed's. Given as a mock on chain id 1, the ETH feed skipped the rule and 2 / 5 bp fees passed.
      const config = onMainnet({ USDC: "0.001", BTC: "0.0005" });
      config.feeds.ETH = {
        mock: { decimals: 8, answer: "3000" },
        heartbeat: 3600,
        minPrice: "1",
        maxPrice: "1000000",
      };
      expect(() => parseNetworkConfig(config)).to.throw("feeds.ETH.deviationThreshold: missing");
    });

    it("refuses a threshold of 0, or of 1 and above: neither is a threshold", function () {
      expect(() => parseNetworkConfig(onMainnet({ ...ETHEREUM_THRESHOLDS, ETH: "0", BTC: "0.0" }))).to.throw(
        "feeds.ETH.deviationThreshold: a fraction above 0 and below 1",
      );
      expect(() => parseNetworkConfig(onMainnet({ ...ETHEREUM_THRESHOLDS, ETH: "1" }))).to.throw(
        "feeds.ETH.deviationThreshold: a fraction above 0 and below 1",
      );
      // What the rule is for still holds.
      const ok = onMainnet({ USDC: "0.001", ETH: "0.0005", BTC: "0.0005" });
      expect(parseNetworkConfig(ok).feeds.ETH.deviationThreshold).to.equal(parseEther("0.0005"));
    });
  });
});
