import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  DEFAULT_RISK_PARAMS,
  MarginMode,
  deploySystem,
  openAccount,
  spotShocks,
  wad,
} from "../shared/system";
import { assetId, setFeedPrice } from "../shared/oracles";
import { refreshPrices, trade, wethDebtorSystem } from "../shared/perps";
import { HOUR, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { mintAndApprove } from "../shared/tokens";
import { signerFor } from "../shared/impersonate";

const USDC = 10n ** 6n;

describe("MarginEngine", function () {
  describe("access", function () {
    it("lets only registered markets report positions and move quote", async function () {
      const sys = await loadFixture(deploySystem);
      const { engine, alice } = sys;
      await expect(engine.connect(alice).notePositionOpened(1n, 1n, assetId("ETH")))
        .to.be.revertedWithCustomError(engine, "NotMarket")
        .withArgs(alice.address);
      await expect(engine.connect(alice).notePositionClosed(1n, 1n)).to.be.revertedWithCustomError(
        engine,
        "NotMarket",
      );
      await expect(engine.connect(alice).transferQuote(1n, 2n, 1n)).to.be.revertedWithCustomError(
        engine,
        "NotMarket",
      );
      await expect(engine.connect(alice).chargeFee(1n, 1n, 1n)).to.be.revertedWithCustomError(
        engine,
        "NotMarket",
      );
    });

    it("lets only the liquidation auction move slices and pay rewards", async function () {
      const { engine, alice } = await loadFixture(deploySystem);
      await expect(engine.connect(alice).transferSlice(1n, 2n, wad("0.5"), 0n))
        .to.be.revertedWithCustomError(engine, "NotLiquidator")
        .withArgs(alice.address);
      await expect(engine.connect(alice).payOut(1n, alice.address, 1n)).to.be.revertedWithCustomError(
        engine,
        "NotLiquidator",
      );
    });

    it("slices the quote balance less what the auction holds back, a zero balance included", async function () {
      const sys = await loadFixture(deploySystem);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("2")]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
      const asAuction = sys.engine.connect(await signerFor(sys.auction));
      // No quote at all, 100 USDC held back: the sold book owes 100, so the bidder pays half of it.
      await asAuction.transferSlice(alice, bob, wad("0.5"), 100n * USDC);
      expect(await sys.vault.balanceOf(alice, sys.usdc)).to.equal(50n * USDC);
      expect(await sys.vault.balanceOf(bob, sys.usdc)).to.equal(950n * USDC);
      expect(await sys.vault.balanceOf(bob, sys.weth)).to.equal(wad("1"));
      // 50 USDC, 20 held back: half of the other 30 moves.
      await asAuction.transferSlice(alice, bob, wad("0.5"), 20n * USDC);
      expect(await sys.vault.balanceOf(alice, sys.usdc)).to.equal(35n * USDC);
      expect(await sys.vault.balanceOf(bob, sys.usdc)).to.equal(965n * USDC);
    });

    it("registers a market once and is initialised once, telling the vault the protocol accounts", async function () {
      const { engine, perps, alice, vault, auction, insuranceFund, poolAccountId } =
        await loadFixture(deploySystem);
      const recorded = await vault.queryFilter(vault.filters.ProtocolAccountsSet());
      expect(recorded.map((e) => [...e.args])).to.deep.equal([
        [poolAccountId, await auction.backstopAccountId(), await insuranceFund.accountId()],
      ]);
      await expect(engine.registerMarket(perps)).to.be.revertedWithCustomError(
        engine,
        "MarketAlreadyRegistered",
      );
      await expect(engine.initialize(5n, alice.address, alice.address)).to.be.revertedWithCustomError(
        engine,
        "AlreadySet",
      );
    });

    it("pauses and unpauses new risk", async function () {
      const { engine } = await loadFixture(deploySystem);
      await engine.pause();
      expect(await engine.paused()).to.equal(true);
      await engine.unpause();
      expect(await engine.paused()).to.equal(false);
    });
  });

  describe("position bookkeeping", function () {
    it("keeps an ISOLATED account to one market", async function () {
      const sys = await loadFixture(deploySystem);
      const id = await openAccount(sys, sys.alice, MarginMode.ISOLATED, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("1"));
      await expect(trade(sys.perps, sys.alice, id, sys.markets.BTC, wad("0.01")))
        .to.be.revertedWithCustomError(sys.engine, "IsolatedAccountMarketTaken")
        .withArgs(id);
    });

    it("caps an account at MAX_MARKETS_PER_ACCOUNT markets and refuses unknown underlyings", async function () {
      const sys = await loadFixture(deploySystem);
      const market = await signerFor(await sys.perps.getAddress());
      const engine = sys.engine.connect(market);
      const holder = await openAccount(sys, sys.alice, MarginMode.CROSS);
      const max = await sys.engine.MAX_MARKETS_PER_ACCOUNT();
      for (let i = 1n; i <= max; i++) await engine.notePositionOpened(holder, 100n + i, assetId("ETH"));
      await engine.notePositionOpened(holder, 101n, assetId("ETH")); // idempotent
      expect(await sys.engine.accountMarkets(holder)).to.have.length(Number(max));
      await expect(engine.notePositionOpened(holder, 999n, assetId("ETH")))
        .to.be.revertedWithCustomError(sys.engine, "TooManyMarkets")
        .withArgs(holder);
      await expect(engine.notePositionOpened(holder + 1n, 1n, assetId("SOL")))
        .to.be.revertedWithCustomError(sys.engine, "UnknownUnderlying")
        .withArgs(assetId("SOL"));
      await engine.notePositionClosed(holder, 999n); // not held: no-op
      await engine.notePositionClosed(holder, 101n);
      expect(await sys.engine.accountMarkets(holder)).to.have.length(Number(max) - 1);
    });
  });

  describe("views", function () {
    it("returns many accounts' health in one call, equal to one call each", async function () {
      const sys = await loadFixture(deploySystem);
      const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      const b = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.alice, a, sys.markets.ETH, wad("1"));
      const many = await sys.engine.healthMany([a, b]);
      expect(many[0]).to.deep.equal(await sys.engine.health(a));
      expect(many[1]).to.deep.equal(await sys.engine.health(b));
      expect(many[1].healthRatio).to.equal(ethers.MaxUint256); // no requirement
    });

    it("reads a debtor whose collateral no longer covers its debt at health 0, although it holds no position", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      // 10 WETH at 2,500 × 0.95 = 23,750 USD against ~26,050 of USDC debt; no requirement at all.
      await setFeedPrice(sys.feeds.ETH, "2500");
      const h = await sys.engine.health(sys.debtorId);
      expect(h.maintenanceRequirement).to.equal(0n);
      expect(h.equityMaintenance).to.be.lt(0n);
      expect(h.healthRatio).to.equal(0n); // not "no requirement": it is liquidatable
      await expect(sys.auction.connect(sys.keeper).startAuction(sys.debtorId)).to.emit(
        sys.auction,
        "AuctionStarted",
      );
    });

    it("reads each price once for a batch and still returns each account's own health", async function () {
      const sys = await loadFixture(deploySystem);
      // sWETH (ERC-4626, priced through convertToAssets) for the third account.
      await mintAndApprove(sys.weth, sys.carol, await sys.sweth.getAddress(), wad("2"));
      await sys.sweth.connect(sys.carol).deposit(wad("2"), sys.carol.address);
      const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      const b = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
      const c = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.weth, wad("3")]]);
      const shares = await sys.sweth.balanceOf(sys.carol.address);
      await sys.sweth.connect(sys.carol).approve(await sys.vault.getAddress(), shares);
      await sys.vault.connect(sys.carol).deposit(c, sys.sweth, shares);
      const d = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("5")]]);
      await trade(sys.perps, sys.alice, a, sys.markets.ETH, wad("1"));
      await trade(sys.perps, sys.carol, c, sys.markets.BTC, -wad("0.05")); // fees: a quote debt
      await trade(sys.perps, sys.alice, d, sys.markets.ETH, -wad("2"));
      await trade(sys.perps, sys.alice, d, sys.markets.BTC, wad("0.1"));
      await sys.feeds.ETH.updateAnswer(3_150n * 10n ** 8n);
      expect(await sys.vault.balanceOf(c, sys.usdc)).to.be.lt(0n);

      const ids = [a, b, c, d, a];
      const [many, values] = await Promise.all([sys.engine.healthMany(ids), sys.vault.collateralValues(ids)]);
      for (const [i, id] of ids.entries()) {
        expect(many[i]).to.deep.equal(await sys.engine.health(id));
        expect(values[i]).to.deep.equal(await sys.vault.collateralValue(id));
      }
      // The batch is cheaper than its parts: prices and volatilities are read once, not per account.
      const batchGas = await sys.engine.healthMany.estimateGas(ids);
      let separateGas = 0n;
      for (const id of ids) separateGas += (await sys.engine.healthMany.estimateGas([id])) - 21_000n;
      expect(batchGas - 21_000n).to.be.lt((separateGas * 7n) / 10n);
    });

    it("gives an account's initial level alone: health's equity_IM and IM, for less gas, and strict where health falls back to the floor shocks", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("2"));
      // Two hours to expiry: repriced in every cell of both grids (σ√τ below the shocks).
      const put = await listSeries(sys.options, "ETH", "3000", await fromNow(2n * HOUR), false);
      await tradeOption(sys.options, sys.alice, id, put, -wad("3"));
      const perpsOnly = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.bob, perpsOnly, sys.markets.BTC, wad("0.1"));

      for (const account of [id, perpsOnly]) {
        const h = await sys.engine.health(account);
        expect(h.initialRequirement).to.be.gt(0n);
        expect(await sys.engine.initialMargin(account)).to.deep.equal([
          h.equityInitial,
          h.initialRequirement,
          await sys.engine.positionsValue(account),
        ]);
      }
      const [initialGas, healthGas] = [
        await sys.engine.initialMargin.estimateGas(id),
        await sys.engine.health.estimateGas(id),
      ];
      expect(initialGas).to.be.lt(healthGas - (healthGas - 21_000n) / 4n);

      // The volatility feeds past their heartbeat: health margins the perps at the floor shocks, the
      // initial level (what new risk and LP exits rest on) reverts with the feed's error.
      await time.increase(3_601);
      await refreshPrices(sys, { atLatest: true });
      expect((await sys.engine.health(perpsOnly)).volatilityUnavailable).to.equal(true);
      await expect(sys.engine.initialMargin(perpsOnly)).to.be.revertedWithCustomError(
        sys.router,
        "StalePrice",
      );
    });

    it("compares standard (per-position) requirements with the portfolio's", async function () {
      const sys = await loadFixture(deploySystem);
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("1"));
      await trade(sys.perps, sys.alice, id, sys.markets.BTC, -wad("0.05"));
      const [im, mm] = await sys.engine.standardRequirements(id);
      const h = await sys.engine.health(id);
      // Different underlyings do not net: the portfolio requirement equals the sum.
      expect(im).to.equal(h.initialRequirement);
      expect(mm).to.equal(h.maintenanceRequirement);
    });

    it("reports risk parameters, and refuses unknown underlyings", async function () {
      const sys = await loadFixture(deploySystem);
      const { engine } = sys;
      expect((await engine.riskParams(assetId("ETH"))).imShockFloor).to.equal(
        DEFAULT_RISK_PARAMS.imShockFloor,
      );
      const math = await ethers.deployContract("PortfolioMathHarness");
      const [im, mm] = await spotShocks(sys, math, assetId("ETH"), 0n);
      // σ = 0.6: IM max(0.10, 3·0.6·√(1/365) = 0.0942) = 0.10; MM 2.33·0.6·0.05234 ≈ 0.0732 > 0.05.
      expect(im).to.equal(wad("0.1"));
      expect(mm).to.be.closeTo(wad("0.0731747"), wad("0.0000001"));
      await expect(engine.riskParams(assetId("SOL"))).to.be.revertedWithCustomError(
        engine,
        "UnknownUnderlying",
      );
    });
  });
});
