import { expect } from "chai";
import fs from "node:fs";
import path from "node:path";
import { parseEther, parseUnits } from "ethers";
import { loadNetworkConfig, parseNetworkConfig } from "../../deploy/networkConfig";
import { buildXMarginModule } from "../../deploy/modules/XMargin";
import { DEFAULT_AUCTION_PARAMS, DEFAULT_RISK_PARAMS } from "../shared/system";
import { DEFAULT_MARKET_PARAMS } from "../shared/perps";

const CONFIG_DIR = path.join(__dirname, "../../deploy/config");
const raw = (network: string) =>
  JSON.parse(fs.readFileSync(path.join(CONFIG_DIR, `${network}.json`), "utf8"));

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
      ]);
    }
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
    }
    expect(config.auction).to.deep.equal({ ...DEFAULT_AUCTION_PARAMS, duration: 1800n });
    const module = buildXMarginModule(config);
    expect(Object.keys(module.results)).to.include.members([
      "token_USDC",
      "priceFeed_ETH",
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
    const tooPrecise = raw("localhost");
    tooPrecise.auction.flagReward = "0.0000001";
    expect(() => parseNetworkConfig(tooPrecise)).to.throw("auction.flagReward: more than 6 decimals");
  });

  it("scales fractions to WAD and token amounts to the token's decimals exactly", function () {
    const config = loadNetworkConfig("localhost");
    expect(config.tokens.WETH.initialWeight).to.equal(parseEther("0.9"));
    expect(config.tokens.WBTC.depositCap).to.equal(10_000n * 10n ** 8n);
    expect(config.auction.flagReward).to.equal(10n * 10n ** 6n);
  });
});
