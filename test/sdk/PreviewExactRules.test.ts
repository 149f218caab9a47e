import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  WAD,
  accountHealth,
  getAccountState,
  makeXMarginError,
  marketKey,
  maxWithdrawable,
  maxWithdrawableFromState,
  modifyPosition,
  mulDiv,
  preview,
  setTrader,
  simulate,
  toHealth,
  tradeOption as tradeOptionAction,
  withdraw,
  type AccountState,
  type PerpMarketState,
  type PreviewAction,
  type SimulationResult,
  type XMarginClient,
  type XMarginError,
} from "../../sdk/src";
import { MarginMode, deploySystem, openAccount, whatIf } from "../shared/system";
import { assetId, setFeedPrice } from "../shared/oracles";
import {
  advanceTo,
  closePosition,
  listPerpMarket,
  marketParams,
  mineAt,
  refreshFeeds,
  refreshPrices,
  trade,
  wethDebtorSystem,
} from "../shared/perps";
import { mintAndApprove } from "../shared/tokens";
import { INTEREST_MODEL } from "../shared/interest";
import { expectPredictedRevert, optionTrader, sdkClient } from "../shared/sdk";
import { listSeries, seriesParams, tradeOption as tradeSeries } from "../shared/options";

/**
 * The previews' refusals and fills at the exact rules the chain applies (review round 106: hand-written
 * mutants of `simulate`, `preview` and `maxWithdrawableFromState`, one change each; these specifications
 * hold the ones no other test caught). Each previews an action, then sends it to the chain at the
 * previewed timestamp: the preview passes where the chain does, and predicts the chain's error with its
 * arguments where it reverts.
 */
const USDC = 10n ** 6n;

/** `p.revert` as `{ name, args }`, or undefined (chai compares these, not the Error objects). */
const refusal = (p: SimulationResult) => p.revert && { name: p.revert.name, args: p.revert.args };
const named = (e: XMarginError) => ({ name: e.name, args: e.args });

/** The next block's timestamp: a minute from the latest, with fresh feeds. */
async function nextBlock(sys: Parameters<typeof advanceTo>[0]): Promise<bigint> {
  const T = BigInt(await time.latest()) + 60n;
  await advanceTo(sys, T);
  return T;
}

describe("SDK previews: exact rules against the chain", function () {
  /**
   * Alice and Bob with 3,000,000 USDC each; the ETH market's funding off (so a fill and a close cost the
   * same at any second), its pool delta ratio 2 and open-interest cap 1,000 (a 400 ETH short fits).
   */
  async function twoTraders() {
    const sys = await deploySystem();
    await sys.perps.setMarketParams(
      sys.markets.ETH,
      marketParams({ maxFundingVelocity: 0n, maxPoolDeltaRatio: 2n * WAD, maxOpenInterest: 1000n * WAD }),
    );
    const alice = await sdkClient(sys, sys.alice);
    const bob = await sdkClient(sys, sys.bob);
    const aliceId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 3_000_000n * USDC]]);
    const bobId = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 3_000_000n * USDC]]);
    return { sys, alice, bob, aliceId, bobId };
  }

  /**
   * Previews a perp trade for `client` a minute after the latest block with fresh feeds (or at `at`, less
   * than a minute after it, with the feeds as they are), then sends it there.
   */
  async function previewAndTrade(
    sys: Parameters<typeof advanceTo>[0],
    client: XMarginClient,
    accountId: bigint,
    marketId: bigint,
    sizeDelta: bigint,
    at?: bigint,
  ) {
    const T = at ?? (await nextBlock(sys));
    const action: PreviewAction = { type: "trade", marketId, sizeDelta };
    const p = await preview(client, accountId, action, { timestamp: T });
    await time.setNextBlockTimestamp(T);
    const limitPrice = sizeDelta > 0n ? ethers.MaxUint256 : 0n;
    const sent = modifyPosition(client, { accountId, marketId, sizeDelta, limitPrice, deadline: T });
    return { p, sent, T };
  }

  /** `optionTrader` (Alice: 100,000 USDC) with Bob's account of 100,000 USDC beside it. */
  async function optionTraders() {
    const base = await optionTrader();
    const { sys } = base;
    const bobId = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
    return { ...base, bob: await sdkClient(sys, sys.bob), bobId };
  }

  /** Previews an option trade for `client` at the next block (or at `at`), then sends it there. */
  async function previewAndTradeOption(
    sys: Parameters<typeof advanceTo>[0],
    client: XMarginClient,
    accountId: bigint,
    seriesId: bigint,
    sizeDelta: bigint,
    at?: bigint,
  ) {
    const T = at ?? BigInt(await time.latest()) + 60n;
    await advanceTo(sys, T);
    const p = await preview(
      client,
      accountId,
      { type: "optionTrade", seriesId, sizeDelta },
      { timestamp: T },
    );
    await time.setNextBlockTimestamp(T);
    const limitPrice = sizeDelta > 0n ? ethers.MaxUint256 : 0n;
    const sent = tradeOptionAction(client, { accountId, seriesId, sizeDelta, limitPrice, deadline: T });
    return { p, sent };
  }

  describe("perp trades", function () {
    // Mutant M01: the LPs' new delta rounded down.
    it("reports PoolDeltaLimitExceeded with the LPs' new delta rounded up to the wei, as the market does", async function () {
      const { sys, alice, aliceId } = await loadFixture(twoTraders);
      await setFeedPrice(sys.feeds.ETH, "3000.12345679");
      // 700 ETH and 1 wei at an odd price: no whole number of wei, and over twice the pool's 1,000,000.
      const sizeDelta = 700n * WAD + 1n;
      const price = 300_012_345_679n * 10n ** 10n;
      expect((sizeDelta * price) % WAD).to.not.equal(0n);
      const { p, sent } = await previewAndTrade(sys, alice, aliceId, sys.markets.ETH, sizeDelta);
      expect(p.revert?.name).to.equal("PoolDeltaLimitExceeded");
      expect(p.revert?.args).to.have.property("poolDelta", (sizeDelta * price) / WAD + 1n);
      await expectPredictedRevert(sent, p.revert!);
    });

    // Mutants M03, M04, M07: a side that does not grow checked against a cap cut below it.
    it("checks the open-interest cap only on the side a trade grows: a cap cut below the other side stands", async function () {
      const { sys, bob, aliceId, bobId } = await loadFixture(twoTraders);
      const { ETH, BTC } = sys.markets;
      await trade(sys.perps, sys.alice, aliceId, ETH, 10n * WAD);
      await trade(sys.perps, sys.alice, aliceId, BTC, -WAD / 2n);
      await time.increase(86_400); // one update of the market's parameters a day
      await refreshFeeds(sys);
      await sys.perps.setMarketParams(
        ETH,
        marketParams({ maxFundingVelocity: 0n, maxOpenInterest: 5n * WAD }),
      );
      await sys.perps.setMarketParams(BTC, marketParams({ maxOpenInterest: WAD / 4n }));
      // ETH: 10 long over a cap of 5; Bob's short of 1 grows the short side only. BTC: 0.5 short over
      // 0.25; Bob's long of 0.1 grows the long side only. Both pass.
      for (const [marketId, sizeDelta] of [
        [ETH, -WAD],
        [BTC, WAD / 10n],
      ] as const) {
        const { p, sent } = await previewAndTrade(sys, bob, bobId, marketId, sizeDelta);
        expect(refusal(p), `market ${marketId}`).to.equal(undefined);
        await sent;
      }
      // Growing the side over the cap is refused, with that side's new open interest.
      const { p, sent } = await previewAndTrade(sys, bob, bobId, ETH, 2n * WAD);
      expect(refusal(p)).to.deep.equal({
        name: "OpenInterestCapExceeded",
        args: makeXMarginError("OpenInterestCapExceeded", [ETH, true, 11n * WAD, 5n * WAD]).args,
      });
      await expectPredictedRevert(sent, p.revert!);
    });

    // Mutant M06: the backstop's short counted in the LPs' new delta.
    it("counts only the traders' growth against the pool delta limit, not the backstop's short (PerpMarket._checkNewRisk)", async function () {
      const { sys, alice, aliceId } = await loadFixture(twoTraders);
      const marketId = sys.markets.ETH;
      const state = await getAccountState(alice, { accountId: aliceId, markets: [{ marketId }] });
      const key = marketKey(await sys.perps.getAddress(), marketId);
      const market = state.markets[key] as PerpMarketState;
      const sizeDelta = -10n * WAD;
      const poolDelta = mulDiv(-sizeDelta, state.prices[market.underlying], WAD, "ceil");
      // The backstop holds the book's only short, 100; Alice's 10 are the LPs' only new delta, and the
      // limit (a ratio of WAD / quoteUnit: the base itself) is exactly it.
      const at: AccountState = {
        ...state,
        protocol: { ...state.protocol, poolDeltaBase: poolDelta },
        markets: {
          ...state.markets,
          [key]: {
            ...market,
            shortOpenInterest: 100n * WAD,
            backstopSize: -100n * WAD,
            params: { ...market.params, maxPoolDeltaRatio: WAD / state.protocol.quoteUnit },
          },
        },
      };
      expect(simulate(at, { type: "trade", marketId, sizeDelta }).revert).to.equal(undefined);
      const over = simulate(at, { type: "trade", marketId, sizeDelta: sizeDelta - 1n });
      expect(over.revert?.name).to.equal("PoolDeltaLimitExceeded");
    });

    // Mutant M08: a fill of exactly zero let through to the caps.
    it("refuses a fill of exactly zero with InvalidFillPrice(0) before the caps (a 2,000 ETH sale on a flat book)", async function () {
      const { sys, alice, aliceId } = await loadFixture(twoTraders);
      const { p, sent } = await previewAndTrade(sys, alice, aliceId, sys.markets.ETH, -2000n * WAD);
      expect(refusal(p)).to.deep.equal(named(makeXMarginError("InvalidFillPrice", [0n])));
      await expectPredictedRevert(sent, p.revert!);
    });

    // Mutant M02: the guardian's pause not predicted.
    it("predicts RiskIncreasePaused for new risk while paused, before the open-interest cap, and lets a reduction through", async function () {
      const { sys, alice, aliceId } = await loadFixture(twoTraders);
      const marketId = sys.markets.ETH;
      await trade(sys.perps, sys.alice, aliceId, marketId, 10n * WAD);
      await sys.engine.pause();
      for (const sizeDelta of [WAD, 2000n * WAD - 1n]) {
        const { p, sent } = await previewAndTrade(sys, alice, aliceId, marketId, sizeDelta);
        expect(refusal(p), `${sizeDelta}`).to.deep.equal(named(makeXMarginError("RiskIncreasePaused", [])));
        await expectPredictedRevert(sent, p.revert!);
      }
      const { p, sent } = await previewAndTrade(sys, alice, aliceId, marketId, -4n * WAD);
      expect(p.revert).to.equal(undefined);
      await sent;
      expect(await sys.perps.positionSize(aliceId, marketId)).to.equal(6n * WAD);
    });

    // Mutant M11: a fill at exactly the oracle price taken for a premium.
    it("lets an account under water close at exactly the oracle price: no premium paid, so no solvency check", async function () {
      const { sys, alice, bobId } = await loadFixture(twoTraders);
      const marketId = sys.markets.ETH;
      const aliceId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 4_000n * USDC]]);
      await trade(sys.perps, sys.alice, aliceId, marketId, 10n * WAD);
      await trade(sys.perps, sys.bob, bobId, marketId, -5n * WAD);
      await setFeedPrice(sys.feeds.ETH, "2500");
      // Skew 5, a sale of 10: fill = oracle · (1 + (5 − 10/2)/1000), the oracle to the wei.
      const { p, sent } = await previewAndTrade(sys, alice, aliceId, marketId, -10n * WAD);
      expect(p.trade!.fillPrice).to.equal(2500n * WAD);
      expect(p.health.equityMark < 0n, "under water after the close").to.equal(true);
      expect(p.revert).to.equal(undefined);
      await sent;
      expect(await sys.vault.balanceOf(aliceId, sys.usdc)).to.equal(p.health.equityMark / 10n ** 12n);
    });

    // Mutants M12 and M13: equity at mark of exactly zero after a premium taken for insolvency, a
    // margin of exactly zero for a shortfall.
    it("lets a healthy account pay a skew premium that leaves exactly zero equity: neither insolvent nor short", async function () {
      const { sys, alice, bobId } = await loadFixture(twoTraders);
      const marketId = sys.markets.ETH;
      // Alice's new account, long 10; Bob's short of 400 makes her sale fill about 40% under the oracle.
      const book = async (quote: bigint) => {
        const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, quote]]);
        await trade(sys.perps, sys.alice, id, marketId, 10n * WAD);
        await trade(sys.perps, sys.bob, bobId, marketId, -400n * WAD);
        return id;
      };
      // What the round trip costs (funding is off: the same at any second), found on a copy of the chain.
      const cost = await whatIf(async () => {
        const id = await book(20_000n * USDC);
        const state = await getAccountState(alice, { accountId: id, markets: [{ marketId }] });
        const after = simulate(state, { type: "close", marketId }).state;
        return 20_000n * USDC - after.collateral.find((c) => c.token === state.quoteToken)!.balance;
      });
      const id = await book(cost);
      const { p, sent } = await previewAndTrade(sys, alice, id, marketId, -10n * WAD);
      expect(p.trade!.fillPrice < 1900n * WAD, "a premium of over 35%").to.equal(true);
      expect(p.before.equityMaintenance > p.before.maintenanceRequirement, "healthy before").to.equal(true);
      expect(p.health.equityMark).to.equal(0n);
      expect(p.health.equityMaintenance - p.health.maintenanceRequirement).to.equal(0n);
      expect(p.revert).to.equal(undefined);
      await sent;
      expect(await sys.vault.balanceOf(id, sys.usdc)).to.equal(0n);
    });
    // Mutant M09: a stale underlying price not predicted (the preview threw on the missing price).
    it("predicts the market's StalePrice for a trade on an underlying whose price feed is stale", async function () {
      const { sys, alice, aliceId } = await loadFixture(twoTraders);
      await time.increase(3_601);
      await setFeedPrice(sys.feeds.USDC, "1");
      await setFeedPrice(sys.feeds.BTC, "60000");
      const T = BigInt(await time.latest()) + 60n;
      await time.setNextBlockTimestamp(T);
      const p = await preview(
        alice,
        aliceId,
        { type: "trade", marketId: sys.markets.ETH, sizeDelta: WAD },
        { timestamp: T },
      );
      expect(p.revert?.name).to.equal("StalePrice");
      await time.setNextBlockTimestamp(T);
      await expectPredictedRevert(
        modifyPosition(alice, {
          accountId: aliceId,
          marketId: sys.markets.ETH,
          sizeDelta: WAD,
          limitPrice: ethers.MaxUint256,
          deadline: T,
        }),
        p.revert!,
      );
    });

    // Mutant M10: the pool account's refusal before the zero size.
    it("predicts ZeroSizeDelta before PoolAccountCannotTrade for the pool's own account, in the market's order", async function () {
      const { sys, alice } = await loadFixture(twoTraders);
      const poolId = sys.poolAccountId;
      const marketId = sys.markets.ETH;
      const zero = await preview(alice, poolId, { type: "trade", marketId, sizeDelta: 0n });
      expect(refusal(zero)).to.deep.equal(named(makeXMarginError("ZeroSizeDelta", [])));
      await expect(
        sys.perps.trade(poolId, marketId, 0n, 0n, ethers.MaxUint256),
      ).to.be.revertedWithCustomError(sys.perps, "ZeroSizeDelta");
      const one = await preview(alice, poolId, { type: "trade", marketId, sizeDelta: WAD });
      expect(refusal(one)).to.deep.equal(named(makeXMarginError("PoolAccountCannotTrade", [])));
      await expect(
        sys.perps.trade(poolId, marketId, WAD, ethers.MaxUint256, ethers.MaxUint256),
      ).to.be.revertedWithCustomError(sys.perps, "PoolAccountCannotTrade");
    });
    /**
     * Alice, 4,000 USDC, long 10 ETH; Bob short 110 behind her (skew −100): a sale of 1 ETH fills about
     * 10% under the oracle, more than the maintenance requirement it frees.
     */
    async function longBehindSkew() {
      const base = await twoTraders();
      const { sys, bobId } = base;
      const aliceId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 4_000n * USDC]]);
      await trade(sys.perps, sys.alice, aliceId, sys.markets.ETH, 10n * WAD);
      await trade(sys.perps, sys.bob, bobId, sys.markets.ETH, -110n * WAD);
      return { ...base, aliceId };
    }

    // Mutants M15, M17: MaintenanceShortfallIncreased's arguments, and the order of the two refusals.
    it("predicts MaintenanceShortfallIncreased(account, margin before, margin after) for a premium that grows a shortfall", async function () {
      const { sys, alice, bob, aliceId } = await loadFixture(longBehindSkew);
      await setFeedPrice(sys.feeds.ETH, "2750");
      const { p, sent } = await previewAndTrade(sys, alice, aliceId, sys.markets.ETH, -WAD);
      const margin = (h: typeof p.health) => h.equityMaintenance - h.maintenanceRequirement;
      expect(margin(p.health) < margin(p.before) && margin(p.before) < 0n).to.equal(true);
      expect(p.health.equityMark > 0n).to.equal(true);
      expect(refusal(p)).to.deep.equal(
        named(
          makeXMarginError("MaintenanceShortfallIncreased", [aliceId, margin(p.before), margin(p.health)]),
        ),
      );
      await expectPredictedRevert(sent, p.revert!);
      // Mutant M62: a stranger's preview of the same sale names the market's first check, the sender.
      const stranger = await previewAndTrade(sys, bob, aliceId, sys.markets.ETH, -WAD);
      expect(refusal(stranger.p)).to.deep.equal(
        named(makeXMarginError("NotAuthorized", [aliceId, sys.bob.address])),
      );
      await expectPredictedRevert(stranger.sent, stranger.p.revert!);
      // Mutant M18: frozen by an auction, the same sale is still refused (the freeze exempts no check).
      await sys.auction.connect(sys.keeper).startAuction(aliceId);
      const frozen = await previewAndTrade(sys, alice, aliceId, sys.markets.ETH, -WAD);
      expect(frozen.p.revert?.name).to.equal("MaintenanceShortfallIncreased");
      await expectPredictedRevert(frozen.sent, frozen.p.revert!);
    });

    // Mutant M16: requirePremiumAffordable values the account strictly.
    it("predicts the stale volatility for a sale that pays a skew premium, where the engine values the account strictly", async function () {
      const { sys, alice, aliceId } = await loadFixture(longBehindSkew);
      await time.increase(3_601);
      await refreshPrices(sys); // the volatility feeds go stale
      const at = BigInt(await time.latest()) + 1n;
      const { p, sent } = await previewAndTrade(sys, alice, aliceId, sys.markets.ETH, -WAD, at);
      expect(p.trade!.fillPrice < 2800n * WAD, "a premium of about 10%").to.equal(true);
      expect(p.health.equityMaintenance > p.health.maintenanceRequirement, "healthy after").to.equal(true);
      expect(p.revert?.name).to.equal("StalePrice");
      await expectPredictedRevert(sent, p.revert!);
    });

    // Mutant M29: InsufficientMargin's arguments.
    it("predicts InsufficientMargin(account, equity_IM, IM) of the book after the trade, as the engine reports it", async function () {
      const { sys, alice } = await loadFixture(twoTraders);
      // WETH counts 0.90 for IM and 0.95 for MM: the two equities differ.
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [
        [sys.usdc, 500n * USDC],
        [sys.weth, WAD / 10n],
      ]);
      const { p, sent } = await previewAndTrade(sys, alice, id, sys.markets.ETH, 10n * WAD);
      expect(p.health.equityInitial).to.not.equal(p.health.equityMaintenance);
      expect(refusal(p)).to.deep.equal(
        named(
          makeXMarginError("InsufficientMargin", [id, p.health.equityInitial, p.health.initialRequirement]),
        ),
      );
      await expectPredictedRevert(sent, p.revert!);
    });

    it("predicts InsolventAfterTrade first when the premium also takes equity at mark below zero", async function () {
      const { sys, alice, aliceId } = await loadFixture(longBehindSkew);
      await setFeedPrice(sys.feeds.ETH, "2550");
      const { p, sent } = await previewAndTrade(sys, alice, aliceId, sys.markets.ETH, -WAD);
      const margin = (h: typeof p.health) => h.equityMaintenance - h.maintenanceRequirement;
      expect(margin(p.health) < margin(p.before)).to.equal(true);
      expect(refusal(p)).to.deep.equal(
        named(makeXMarginError("InsolventAfterTrade", [aliceId, p.health.equityMark])),
      );
      await expectPredictedRevert(sent, p.revert!);
    });
    // Mutant M66: TraderAllowanceExceeded's arguments.
    it("predicts TraderAllowanceExceeded(account, trader, cost, allowance) for a bot whose grant is short of the cost", async function () {
      const { sys, alice, bob, aliceId } = await loadFixture(twoTraders);
      await setTrader(alice, { accountId: aliceId, trader: sys.bob.address, allowance: 5n * USDC });
      const { p, sent } = await previewAndTrade(sys, bob, aliceId, sys.markets.ETH, 10n * WAD);
      const cost = p.trade!.tradingCost;
      expect(cost > 5n * USDC).to.equal(true);
      expect(refusal(p)).to.deep.equal(
        named(makeXMarginError("TraderAllowanceExceeded", [aliceId, sys.bob.address, cost, 5n * USDC])),
      );
      await expectPredictedRevert(sent, p.revert!);
    });
  });

  describe("the engine's account rules", function () {
    // Mutants M19, M61: a second market in an isolated account; a stranger's preview of it.
    it("predicts IsolatedAccountMarketTaken for an isolated account's second market, and NotAuthorized first for a stranger", async function () {
      const { sys, alice, bob } = await loadFixture(twoTraders);
      const id = await openAccount(sys, sys.alice, MarginMode.ISOLATED, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, WAD);
      const own = await previewAndTrade(sys, alice, id, sys.markets.BTC, WAD / 10n);
      expect(refusal(own.p)).to.deep.equal(named(makeXMarginError("IsolatedAccountMarketTaken", [id])));
      await expectPredictedRevert(own.sent, own.p.revert!);
      const stranger = await previewAndTrade(sys, bob, id, sys.markets.BTC, WAD / 10n);
      expect(refusal(stranger.p)).to.deep.equal(
        named(makeXMarginError("NotAuthorized", [id, sys.bob.address])),
      );
      await expectPredictedRevert(stranger.sent, stranger.p.revert!);
      // Its own market still grows.
      const grows = await previewAndTrade(sys, alice, id, sys.markets.ETH, WAD);
      expect(grows.p.revert).to.equal(undefined);
      await grows.sent;
    });

    // Mutants M20, M21, M60: the 16-market cap moved by one; a stranger's preview of a 17th market.
    it("lets a cross account hold exactly 16 markets and predicts TooManyMarkets for a 17th (NotAuthorized first for a stranger)", async function () {
      const { sys, alice, bob, aliceId } = await loadFixture(twoTraders);
      const markets = [sys.markets.ETH, sys.markets.BTC];
      while (markets.length < 17) markets.push(await listPerpMarket(sys.perps, "ETH"));
      for (const marketId of markets.slice(0, 15))
        await trade(sys.perps, sys.alice, aliceId, marketId, WAD / 100n);
      const sixteenth = await previewAndTrade(sys, alice, aliceId, markets[15], WAD / 100n);
      expect(sixteenth.p.revert).to.equal(undefined);
      await sixteenth.sent;
      const seventeenth = await previewAndTrade(sys, alice, aliceId, markets[16], WAD / 100n);
      expect(refusal(seventeenth.p)).to.deep.equal(named(makeXMarginError("TooManyMarkets", [aliceId])));
      await expectPredictedRevert(seventeenth.sent, seventeenth.p.revert!);
      const stranger = await previewAndTrade(sys, bob, aliceId, markets[16], WAD / 100n);
      expect(stranger.p.revert?.name).to.equal("NotAuthorized");
      await expectPredictedRevert(stranger.sent, stranger.p.revert!);
    });
  });

  describe("an account frozen by an auction", function () {
    /**
     * Alice, 4,000 USDC, long 10 ETH in one ETH market and short 5 in a second (net 5 long), frozen in an
     * auction at 2,300 and back above her initial requirement at 3,300 with the auction still open.
     */
    async function frozenHedge() {
      const sys = await deploySystem();
      const ethB = await listPerpMarket(sys.perps, "ETH");
      const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 4_000n * USDC]]);
      await trade(sys.perps, sys.alice, accountId, sys.markets.ETH, 10n * WAD);
      await trade(sys.perps, sys.alice, accountId, ethB, -5n * WAD);
      await setFeedPrice(sys.feeds.ETH, "2300");
      await sys.auction.connect(sys.keeper).startAuction(accountId);
      await setFeedPrice(sys.feeds.ETH, "3300");
      expect(await sys.auction.isFrozen(accountId)).to.equal(true);
      const alice = await sdkClient(sys, sys.alice);
      const bob = await sdkClient(sys, sys.bob);
      return { sys, ethB, accountId, alice, bob };
    }

    // Mutants M63, M64: a stranger's preview of a frozen account's trade names the account's refusal
    // where the market checks the sender first.
    it("predicts AccountFrozen for the owner's new risk, and NotAuthorized first for a stranger's trade of any kind", async function () {
      const { sys, ethB, accountId, alice, bob } = await loadFixture(frozenHedge);
      const own = await previewAndTrade(sys, alice, accountId, sys.markets.ETH, WAD);
      expect(refusal(own.p)).to.deep.equal(named(makeXMarginError("AccountFrozen", [accountId])));
      await expectPredictedRevert(own.sent, own.p.revert!);
      const notAuthorized = named(makeXMarginError("NotAuthorized", [accountId, sys.bob.address]));
      // New risk (the owner's AccountFrozen), and the hedge leg's close (the owner's RiskIncreased).
      for (const [marketId, sizeDelta] of [
        [sys.markets.ETH, WAD],
        [ethB, 5n * WAD],
      ] as const) {
        const { p, sent } = await previewAndTrade(sys, bob, accountId, marketId, sizeDelta);
        expect(refusal(p), `market ${marketId}`).to.deep.equal(notAuthorized);
        await expectPredictedRevert(sent, p.revert!);
      }
      const unwind = await preview(alice, accountId, { type: "close", marketId: ethB });
      expect(unwind.revert?.name).to.equal("RiskIncreased");
    });

    // Mutant M27: the engine checks the freeze before it values the account.
    it("predicts AccountFrozen, not the stale volatility, for the owner's new risk (the freeze is checked before any valuation)", async function () {
      const { sys, accountId, alice } = await loadFixture(frozenHedge);
      await time.increase(3_601);
      await refreshPrices(sys); // the volatility feeds go stale
      const at = BigInt(await time.latest()) + 1n;
      const { p, sent } = await previewAndTrade(sys, alice, accountId, sys.markets.ETH, WAD, at);
      expect(p.health.volatilityUnavailable).to.equal(true);
      expect(refusal(p)).to.deep.equal(named(makeXMarginError("AccountFrozen", [accountId])));
      await expectPredictedRevert(sent, p.revert!);
    });

    // Mutants M47, M70: a stranger's withdrawal from a frozen account; the maximum of a frozen account.
    it("gives a frozen account a maximum withdrawal of 0, predicts AccountFrozen for its owner and NotAuthorized for a stranger", async function () {
      const { sys, accountId, alice, bob } = await loadFixture(frozenHedge);
      expect(await maxWithdrawable(alice, { accountId, token: "USDC" })).to.equal(0n);
      const action = { type: "withdraw", token: "USDC", amount: USDC } as const;
      const own = await preview(alice, accountId, action);
      expect(refusal(own)).to.deep.equal(named(makeXMarginError("AccountFrozen", [accountId])));
      await expectPredictedRevert(withdraw(alice, { accountId, token: "USDC", amount: USDC }), own.revert!);
      const stranger = await preview(bob, accountId, action);
      expect(refusal(stranger)).to.deep.equal(
        named(makeXMarginError("NotAuthorized", [accountId, sys.bob.address])),
      );
      await expectPredictedRevert(
        withdraw(bob, { accountId, token: "USDC", amount: USDC }),
        stranger.revert!,
      );
      // Mutant M49: to itself, the stranger is still refused as a sender first, not as a recipient.
      const toSelf = await preview(bob, accountId, { ...action, to: sys.bob.address });
      expect(refusal(toSelf)).to.deep.equal(refusal(stranger));
      await expectPredictedRevert(
        withdraw(bob, { accountId, token: "USDC", amount: USDC, to: sys.bob.address }),
        toSelf.revert!,
      );
    });

    // Mutants M55, M56: a quote top-up of an account in auction is never capped, whatever its shortfall
    // (here none) and even while a price its health needs is stale.
    it("takes a quote top-up of a frozen account past the cap, above its initial requirement and with the ETH price stale", async function () {
      const { sys, accountId, alice } = await loadFixture(frozenHedge);
      await sys.vault.setDepositCap(sys.usdc, 1n);
      const quote = await sys.vault.balanceOf(accountId, sys.usdc);
      await sys.usdc.mint(sys.alice.address, 20_000n * USDC);
      await sys.usdc.connect(sys.alice).approve(await sys.vault.getAddress(), 20_000n * USDC);
      const top = async (amount: bigint) => {
        const p = await preview(alice, accountId, { type: "deposit", token: "USDC", amount });
        expect(p.revert).to.equal(undefined);
        await sys.vault.connect(sys.alice).deposit(accountId, sys.usdc, amount);
        return p;
      };
      const healthy = await top(10_000n * USDC);
      expect(healthy.before.equityInitial > healthy.before.initialRequirement).to.equal(true);
      await time.increase(3_601);
      await setFeedPrice(sys.feeds.USDC, "1");
      const unpriced = await top(10_000n * USDC);
      expect(unpriced.healthError?.name).to.equal("StalePrice");
      expect(await sys.vault.balanceOf(accountId, sys.usdc)).to.equal(quote + 20_000n * USDC);
    });
  });

  describe("deposits and withdrawals", function () {
    /**
     * Alice, 4,000 USDC, long 10 ETH, at ETH 2,900: short of her initial requirement by 100–200 USD,
     * above maintenance. The USDC and WETH deposit caps are then cut to one unit, far below what the
     * vault holds.
     */
    async function belowInitialUnderCutCaps() {
      const sys = await deploySystem();
      const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 4_000n * USDC]]);
      await trade(sys.perps, sys.alice, accountId, sys.markets.ETH, 10n * WAD);
      await setFeedPrice(sys.feeds.ETH, "2900");
      const h = await sys.engine.health(accountId);
      const shortfall = BigInt(h.initialRequirement) - h.equityInitial;
      expect(shortfall > 100n * WAD && shortfall < 200n * WAD, `shortfall ${shortfall}`).to.equal(true);
      expect(h.equityMaintenance > BigInt(h.maintenanceRequirement)).to.equal(true);
      await sys.vault.setDepositCap(sys.usdc, 1n);
      await sys.vault.setDepositCap(sys.weth, 1n);
      const vault = await sys.vault.getAddress();
      await mintAndApprove(sys.usdc, sys.alice, vault, 1_000n * USDC);
      await mintAndApprove(sys.weth, sys.alice, vault, WAD);
      return { sys, accountId, alice: await sdkClient(sys, sys.alice) };
    }

    // Mutant M53: the part past the cap not bounded by the deposit (the vault's total already over it).
    it("cures past a cut cap with a USDC deposit up to the shortfall, though the vault's total is far over the cap", async function () {
      const { sys, accountId, alice } = await loadFixture(belowInitialUnderCutCaps);
      expect(await sys.vault.totalDeposits(sys.usdc)).to.be.greaterThan(1_000_000n * USDC);
      const p = await preview(alice, accountId, { type: "deposit", token: "USDC", amount: 100n * USDC });
      expect(p.revert).to.equal(undefined);
      await sys.vault.connect(sys.alice).deposit(accountId, sys.usdc, 100n * USDC);
    });

    // Mutant M54: a deposit of another token taken for a cure.
    it("caps a WETH deposit into an account short of its initial requirement: only the quote cures", async function () {
      const { sys, accountId, alice } = await loadFixture(belowInitialUnderCutCaps);
      const amount = WAD / 100n; // 29 USD: well within the shortfall
      const p = await preview(alice, accountId, { type: "deposit", token: "WETH", amount });
      const weth = await sys.weth.getAddress();
      expect(refusal(p)).to.deep.equal(named(makeXMarginError("DepositCapExceeded", [weth, amount, 1n])));
      await expect(sys.vault.connect(sys.alice).deposit(accountId, weth, amount))
        .to.be.revertedWithCustomError(sys.vault, "DepositCapExceeded")
        .withArgs(weth, amount, 1n);
    });

    // Mutant M57: TokenNotListed before ZeroAmount.
    it("predicts ZeroAmount before TokenNotListed for a zero deposit of a token the vault does not list", async function () {
      const { sys, accountId, alice } = await loadFixture(belowInitialUnderCutCaps);
      const unlisted = await ethers.deployContract("MockERC20", ["Unlisted", "UNL", 18]);
      const token = await unlisted.getAddress();
      const p = await preview(alice, accountId, { type: "deposit", token, amount: 0n });
      expect(refusal(p)).to.deep.equal(named(makeXMarginError("ZeroAmount", [])));
      await expect(sys.vault.connect(sys.alice).deposit(accountId, token, 0n)).to.be.revertedWithCustomError(
        sys.vault,
        "ZeroAmount",
      );
    });

    // Mutants M44, M77: the zero recipient before the zero amount; a zero amount thrown as a RangeError.
    it("predicts ZeroAmount for a withdrawal of nothing to the zero address, the vault's first check", async function () {
      const { sys, accountId, alice } = await loadFixture(belowInitialUnderCutCaps);
      const action = { type: "withdraw", token: "USDC", amount: 0n, to: ethers.ZeroAddress } as const;
      const p = await preview(alice, accountId, action);
      expect(refusal(p)).to.deep.equal(named(makeXMarginError("ZeroAmount", [])));
      await expect(
        sys.vault.connect(sys.alice).withdraw(accountId, sys.usdc, 0n, ethers.ZeroAddress),
      ).to.be.revertedWithCustomError(sys.vault, "ZeroAmount");
    });

    // Mutant M52: a repayment that brings the debt to exactly zero capped.
    it("never caps a repayment that brings a quote debt to exactly zero, interest included", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      const bob = await sdkClient(sys, sys.bob);
      await sys.vault.setDepositCap(sys.usdc, 1n);
      const T = BigInt(await time.latest()) + 10n;
      const state = await getAccountState(bob, { accountId: sys.debtorId });
      const owed = -simulate(state, { type: "none" }, { timestamp: T }).state.collateral.find(
        (c) => c.token === state.quoteToken,
      )!.balance;
      expect(owed > 26_000n * USDC).to.equal(true);
      await mintAndApprove(sys.usdc, sys.bob, await sys.vault.getAddress(), owed);
      const repay = { type: "deposit", token: "USDC", amount: owed } as const;
      expect((await preview(bob, sys.debtorId, repay, { timestamp: T })).revert).to.equal(undefined);
      const more = await preview(bob, sys.debtorId, { ...repay, amount: owed + 1n }, { timestamp: T });
      expect(more.revert?.name).to.equal("DepositCapExceeded");
      await time.setNextBlockTimestamp(T);
      await sys.vault.connect(sys.bob).deposit(sys.debtorId, sys.usdc, owed);
      expect(await sys.vault.balanceOf(sys.debtorId, sys.usdc)).to.equal(0n);
    });

    // Mutant M28: the engine values the collateral (and its prices) before any volatility.
    it("predicts the stale WBTC price, not the stale ETH volatility, for a withdrawal: the collateral is valued first", async function () {
      const sys = await deploySystem();
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [
        [sys.usdc, 10_000n * USDC],
        [sys.wbtc, 10n ** 7n],
      ]);
      await trade(sys.perps, sys.alice, id, sys.markets.ETH, WAD);
      const alice = await sdkClient(sys, sys.alice);
      await time.increase(3_601);
      await setFeedPrice(sys.feeds.USDC, "1");
      await setFeedPrice(sys.feeds.ETH, "3000"); // the BTC price and both volatilities are stale
      const p = await preview(alice, id, { type: "withdraw", token: "USDC", amount: 100n * USDC });
      const btc = await sys.router.primaryFeed(assetId("BTC"));
      expect(p.revert?.name).to.equal("StalePrice");
      expect(p.revert?.args).to.have.property("aggregator", btc);
      await expectPredictedRevert(
        withdraw(alice, { accountId: id, token: "USDC", amount: 100n * USDC }),
        p.revert!,
      );
    });
  });

  describe("the evaluation time and the snapshot after an action", function () {
    // Mutant M78: a closed position removed in place rather than swapped with the last.
    it("lists the positions after a close in the engine's order: the last one takes the closed one's slot", async function () {
      const { sys, alice, aliceId } = await loadFixture(twoTraders);
      const ethB = await listPerpMarket(sys.perps, "ETH");
      for (const marketId of [sys.markets.ETH, sys.markets.BTC, ethB]) {
        await trade(sys.perps, sys.alice, aliceId, marketId, WAD / 10n);
      }
      const { p, sent } = await previewAndTrade(sys, alice, aliceId, sys.markets.ETH, -WAD / 10n);
      await sent;
      const held = (await sys.engine.accountMarkets(aliceId)).map((k) => k.marketId);
      expect(held).to.deep.equal([ethB, sys.markets.BTC]);
      expect(p.state.positions.map((x) => x.marketId)).to.deep.equal(held);
    });

    // Mutant M75: a timestamp before the snapshot's accepted.
    it("refuses to evaluate a snapshot at a time before it was read", async function () {
      const { alice, aliceId } = await loadFixture(twoTraders);
      const state = await getAccountState(alice, { accountId: aliceId });
      expect(() => simulate(state, { type: "none" }, { timestamp: state.timestamp - 1n })).to.throw(
        RangeError,
        /before the snapshot/,
      );
      expect(() =>
        maxWithdrawableFromState(state, state.quoteToken, undefined, state.timestamp - 1n),
      ).to.throw(RangeError);
    });
    // Mutant M74: a quote debt's interest not accrued to the evaluation time.
    it("accrues a debt's interest to the time it evaluates: the health 30 days on equals the engine's then", async function () {
      const sys = await deploySystem();
      await sys.vault.setInterestRateModel(INTEREST_MODEL);
      const debtorId = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, 10n * WAD]]);
      await trade(sys.perps, sys.bob, debtorId, sys.markets.BTC, WAD);
      await setFeedPrice(sys.feeds.BTC, "34000");
      await closePosition(sys.perps, sys.bob, debtorId, sys.markets.BTC);
      const bob = await sdkClient(sys, sys.bob);
      const state = await getAccountState(bob, { accountId: debtorId });
      expect(state.protocol.quoteInterest.rate > 0n).to.equal(true);
      const T = state.timestamp + 30n * 86_400n;
      const later = simulate(state, { type: "none" }, { timestamp: T });
      await mineAt(sys, T);
      const chain = toHealth(await sys.engine.health(debtorId));
      expect(later.health).to.deep.equal(chain);
      expect(chain.equityInitial < toHealth(accountHealth(state)).equityInitial - 10n * WAD).to.equal(true);
    });
  });

  describe("maxWithdrawableFromState", function () {
    // Mutants M68, M69: the vault's total deposits not bounding the maximum.
    it("caps the maximum at what the vault holds for accounts, with and without positions", async function () {
      const { sys, alice, aliceId } = await loadFixture(twoTraders);
      const usdc = (await sys.usdc.getAddress()).toLowerCase();
      const flat = await getAccountState(alice, { accountId: aliceId });
      expect(maxWithdrawableFromState(flat, usdc)).to.equal(3_000_000n * USDC);
      expect(maxWithdrawableFromState(flat, usdc, 1_234n * USDC)).to.equal(1_234n * USDC);
      await trade(sys.perps, sys.alice, aliceId, sys.markets.ETH, 10n * WAD);
      const long = await getAccountState(alice, { accountId: aliceId });
      const margined = maxWithdrawableFromState(long, usdc);
      expect(margined < 3_000_000n * USDC && margined > 2_990_000n * USDC).to.equal(true);
      expect(maxWithdrawableFromState(long, usdc, 1_234n * USDC)).to.equal(1_234n * USDC);
      expect(maxWithdrawableFromState(long, usdc, margined + 1n)).to.equal(margined);
    });
    // Mutant M71: equity exactly at the initial requirement refused.
    it("lets a debtor withdraw WETH down to exactly its initial requirement, to the wei (equity_IM = IM = 0)", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      const bob = await sdkClient(sys, sys.bob);
      const weth = (await sys.weth.getAddress()).toLowerCase();
      const read = () => getAccountState(bob, { accountId: sys.debtorId, tokens: [weth] });
      const owed = (state: AccountState) =>
        -state.collateral.find((c) => c.token === state.quoteToken)!.balance;
      // WETH counts 3,000 · 0.9 = 2,700 USD a token: a debt (quote units) that is a multiple of 27 leaves
      // a WETH balance whose initial value is the debt to the wei. No interest model: the debt stands.
      const before = await read();
      expect(before.protocol.quoteInterest.rate).to.equal(0n);
      const repay = owed(before) % 27n;
      await mintAndApprove(sys.usdc, sys.bob, await sys.vault.getAddress(), repay + 27n);
      await sys.vault.connect(sys.bob).deposit(sys.debtorId, sys.usdc, repay + 27n);
      const state = await read();
      expect(owed(state) % 27n).to.equal(0n);
      const max = maxWithdrawableFromState(state, weth);
      expect((10n * WAD - max) * 2_700n).to.equal(owed(state) * 10n ** 12n);
      await sys.vault.connect(sys.bob).withdraw(sys.debtorId, sys.weth, max, sys.bob.address);
      const h = await sys.engine.health(sys.debtorId);
      expect([h.equityInitial, h.initialRequirement]).to.deep.equal([0n, 0n]);
    });
  });

  describe("fills and the book after them", function () {
    const QUOTE_UNIT = 10n ** 12n;

    // Mutants M80–M85: funding accrued and settled before the fill, its and the PnL's roundings, the
    // market's and the position's funding state after it.
    it("previews a perp reduction a day after the open to the wei: fill, fee, PnL, funding settled and the health after", async function () {
      const { sys, alice, accountId } = await loadFixture(optionTrader);
      const marketId = sys.markets.ETH;
      const opened = await previewAndTrade(sys, alice, accountId, marketId, 5n * WAD + 7n);
      await opened.sent;
      await time.increase(86_400);
      const { p, sent, T } = await previewAndTrade(sys, alice, accountId, marketId, -(2n * WAD + 1n));
      const r = await sent;
      expect(p.trade!.fundingPaid > 0n && p.trade!.realizedPnl !== 0n).to.equal(true);
      expect({
        fillPrice: p.trade!.fillPrice,
        fee: p.trade!.fee * QUOTE_UNIT,
        realizedPnl: p.trade!.realizedPnl,
        fundingPaid: p.trade!.fundingPaid,
        newSize: p.trade!.newSize,
        entryPrice: p.trade!.newEntryPrice,
      }).to.deep.equal({
        fillPrice: r.fillPrice,
        fee: r.fee,
        realizedPnl: r.realizedPnl,
        fundingPaid: r.fundingPaid,
        newSize: r.newSize,
        entryPrice: r.entryPrice,
      });
      const at = { blockTag: r.receipt.blockNumber };
      expect(BigInt((await ethers.provider.getBlock(r.receipt.blockNumber))!.timestamp)).to.equal(T);
      expect(p.health).to.deep.equal(toHealth(await sys.engine.health(accountId, at)));
      const quote = p.state.collateral.find((c) => c.token === p.state.quoteToken)!.balance;
      expect(quote).to.equal(await sys.vault.balanceOf(accountId, sys.usdc, at));
    });

    // Mutants M86, M87: the premium's rounding, the fee's debit.
    it("previews an option purchase to the wei: premium and fee in quote units, and the health after", async function () {
      const { sys, alice, accountId, call } = await loadFixture(optionTraders);
      const { p, sent } = await previewAndTradeOption(sys, alice, accountId, call, 3n * WAD + 1n);
      const r = await sent;
      expect((p.option!.premium * (3n * WAD + 1n)) % (WAD * QUOTE_UNIT)).to.not.equal(0n);
      expect({ premium: p.option!.premiumQuote * QUOTE_UNIT, fee: p.option!.fee * QUOTE_UNIT }).to.deep.equal(
        {
          premium: r.premium,
          fee: r.fee,
        },
      );
      const at = { blockTag: r.receipt.blockNumber };
      expect(p.health).to.deep.equal(toHealth(await sys.engine.health(accountId, at)));
      const quote = p.state.collateral.find((c) => c.token === p.state.quoteToken)!.balance;
      expect(quote).to.equal(await sys.vault.balanceOf(accountId, sys.usdc, at));
    });
  });

  describe("a volatility feed failing on another underlying", function () {
    /**
     * Alice long 2 ETH calls and Bob long 2 ETH perps, each also short 0.1 BTC perp; an hour later every
     * feed is posted again but the BTC volatility's.
     */
    async function btcVolatilityStale() {
      const base = await optionTraders();
      const { sys, accountId, bobId, call } = base;
      await tradeSeries(sys.options, sys.alice, accountId, call, 2n * WAD);
      await trade(sys.perps, sys.bob, bobId, sys.markets.ETH, 2n * WAD);
      for (const id of [accountId, bobId])
        await trade(sys.perps, id === bobId ? sys.bob : sys.alice, id, sys.markets.BTC, -WAD / 10n);
      await time.increase(3_601);
      await refreshPrices(sys);
      await setFeedPrice(sys.volFeeds.ETH, "0.6");
      return base;
    }

    // Mutants M26, M40: a lone reduction checked against every volatility feed of the book.
    it("lets a lone ETH reduction through while the BTC volatility is stale: no margin check, as the markets decide", async function () {
      const { sys, alice, bob, accountId, bobId, call } = await loadFixture(btcVolatilityStale);
      const at = BigInt(await time.latest()) + 1n;
      const option = await previewAndTradeOption(sys, alice, accountId, call, -WAD, at);
      expect(option.p.health.volatilityUnavailable).to.equal(true);
      expect(option.p.revert).to.equal(undefined);
      await option.sent;
      // Bob's sale of 1 of the market's only 2 longs fills above the oracle: no premium, no check either.
      const perp = await previewAndTrade(sys, bob, bobId, sys.markets.ETH, -WAD, at + 1n);
      expect(perp.p.trade!.fillPrice > 3000n * WAD).to.equal(true);
      expect(perp.p.revert).to.equal(undefined);
      await perp.sent;
      // Mutant M67: a withdrawal is checked strictly, whatever the underlying: the maximum is 0.
      expect(await maxWithdrawable(alice, { accountId, token: "USDC" })).to.equal(0n);
      const w = await preview(alice, accountId, { type: "withdraw", token: "USDC", amount: 1n });
      expect(w.revert?.name).to.equal("StalePrice");
      await expectPredictedRevert(withdraw(alice, { accountId, token: "USDC", amount: 1n }), w.revert!);
    });
  });

  describe("option trades", function () {
    // Mutant M31: a trade at exactly the expiry second let through.
    it("predicts SeriesExpired for a trade in the expiry's own second, as the market refuses it", async function () {
      const { sys, alice, accountId, call, expiry } = await loadFixture(optionTraders);
      const { p, sent } = await previewAndTradeOption(sys, alice, accountId, call, WAD, expiry);
      expect(refusal(p)).to.deep.equal(named(makeXMarginError("SeriesExpired", [call, expiry])));
      await expectPredictedRevert(sent, p.revert!);
    });

    // Mutant M33: the guardian's pause not predicted for options.
    it("predicts RiskIncreasePaused for a new option position while paused, and lets a close through", async function () {
      const { sys, alice, accountId, call } = await loadFixture(optionTraders);
      await tradeSeries(sys.options, sys.alice, accountId, call, WAD);
      await sys.engine.pause();
      const opened = await previewAndTradeOption(sys, alice, accountId, call, WAD);
      expect(refusal(opened.p)).to.deep.equal(named(makeXMarginError("RiskIncreasePaused", [])));
      await expectPredictedRevert(opened.sent, opened.p.revert!);
      const closed = await previewAndTradeOption(sys, alice, accountId, call, -WAD);
      expect(closed.p.revert).to.equal(undefined);
      await closed.sent;
    });

    // Mutants M34, M35, M36, M39: the option open-interest cap inclusive, checked on a side that does
    // not grow, or reported on the wrong side.
    it("fills a series to its cap exactly, checks a cut cap only on the side that grows, and names that side", async function () {
      const { sys, alice, bob, accountId, bobId, expiry } = await loadFixture(optionTraders);
      const capped = seriesParams({ maxOpenInterest: 10n * WAD });
      const calls = await listSeries(sys.options, "ETH", "3300", expiry, true, capped);
      const puts = await listSeries(sys.options, "ETH", "2700", expiry, false, capped);
      // Alice buys the calls' cap and sells the puts' cap, each exactly: both pass.
      for (const [seriesId, sizeDelta] of [
        [calls, 10n * WAD],
        [puts, -10n * WAD],
      ] as const) {
        const { p, sent } = await previewAndTradeOption(sys, alice, accountId, seriesId, sizeDelta);
        expect(refusal(p), `series ${seriesId}`).to.equal(undefined);
        await sent;
      }
      // Both caps cut to 5, under what Alice holds: Bob opens the other side of each, which stands.
      await sys.options.setSeriesParams(calls, seriesParams({ maxOpenInterest: 5n * WAD }));
      await sys.options.setSeriesParams(puts, seriesParams({ maxOpenInterest: 5n * WAD }));
      for (const [seriesId, sizeDelta] of [
        [calls, -WAD],
        [puts, WAD],
      ] as const) {
        const { p, sent } = await previewAndTradeOption(sys, bob, bobId, seriesId, sizeDelta);
        expect(refusal(p), `series ${seriesId}`).to.equal(undefined);
        await sent;
      }
      // Bob's short calls past the cut cap: refused on the short side, with its new open interest.
      const { p, sent } = await previewAndTradeOption(sys, bob, bobId, calls, -5n * WAD);
      expect(refusal(p)).to.deep.equal(
        named(makeXMarginError("OpenInterestCapExceeded", [calls, false, 6n * WAD, 5n * WAD])),
      );
      await expectPredictedRevert(sent, p.revert!);
    });
    // Mutant M42: a new series in an isolated account treated as already held.
    it("predicts IsolatedAccountMarketTaken for a second series in an isolated account, and lets its own series grow", async function () {
      const { sys, alice, call, put } = await loadFixture(optionTraders);
      const id = await openAccount(sys, sys.alice, MarginMode.ISOLATED, [[sys.usdc, 10_000n * USDC]]);
      await tradeSeries(sys.options, sys.alice, id, call, WAD);
      const second = await previewAndTradeOption(sys, alice, id, put, WAD);
      expect(refusal(second.p)).to.deep.equal(named(makeXMarginError("IsolatedAccountMarketTaken", [id])));
      await expectPredictedRevert(second.sent, second.p.revert!);
      const grows = await previewAndTradeOption(sys, alice, id, call, WAD);
      expect(grows.p.revert).to.equal(undefined);
      await grows.sent;
    });
    // Mutant M32: a settled series reported as expired.
    it("predicts SeriesAlreadySettled for a settled series, the market's check before the expiry's", async function () {
      const { sys, alice, accountId, call, expiry } = await loadFixture(optionTraders);
      await tradeSeries(sys.options, sys.alice, accountId, call, WAD);
      await mineAt(sys, expiry + 60n);
      const feed = await ethers.getContractAt(
        "MockV3Aggregator",
        await sys.router.primaryFeed(assetId("ETH")),
      );
      await sys.options.settleSeries(call, (await feed.latestRoundData()).roundId);
      const T = BigInt(await time.latest()) + 1n;
      const { p, sent } = await previewAndTradeOption(sys, alice, accountId, call, -WAD, T);
      expect(refusal(p)).to.deep.equal(named(makeXMarginError("SeriesAlreadySettled", [call])));
      await expectPredictedRevert(sent, p.revert!);
    });
    // Mutants M37, M38: the option pool's vega and delta limits refusing a trade that fills them exactly.
    it("lets an option purchase fill the pool's vega or delta limit exactly, and refuses it one unit of base below", async function () {
      const { sys, alice, accountId, call } = await loadFixture(optionTraders);
      const market = await sys.options.getAddress();
      const state = await getAccountState(alice, { accountId, markets: [{ market, marketId: call }] });
      const underlying = assetId("ETH").toLowerCase();
      const pool = state.underlyings[underlying].optionPool!;
      const buy = { type: "optionTrade", seriesId: call, sizeDelta: 10n * WAD } as const;
      // A ratio of WAD / quoteUnit makes a limit the pool's base itself, to the unit; the other limit
      // is left far out of reach.
      const exact = WAD / state.protocol.quoteUnit;
      for (const [error, vegaRatio, deltaRatio] of [
        ["PoolVegaLimitExceeded", exact, 10n ** 30n],
        ["PoolOptionDeltaLimitExceeded", 10n ** 30n, exact],
      ] as const) {
        const at = (base: bigint): SimulationResult =>
          simulate(
            {
              ...state,
              protocol: { ...state.protocol, poolDeltaBase: base },
              underlyings: {
                ...state.underlyings,
                [underlying]: {
                  ...state.underlyings[underlying],
                  optionPool: { ...pool, maxPoolVegaRatio: vegaRatio, maxPoolDeltaRatio: deltaRatio },
                },
              },
            },
            buy,
          );
        // The least base that takes the purchase, by bisection.
        let lo = 1n; // the other limit: base · 10^12 · 10^30 / 10^18, far above its side
        let hi = 10n ** 30n;
        expect(at(lo).revert?.name).to.equal(error);
        expect(at(hi).revert).to.equal(undefined);
        while (hi - lo > 1n) {
          const mid = (lo + hi) / 2n;
          if (at(mid).revert === undefined) hi = mid;
          else lo = mid;
        }
        // One below, the trade grows its side by exactly that least base: it fills the limit to the unit.
        expect(refusal(at(hi - 1n)), error).to.deep.equal(
          named(makeXMarginError(error, [underlying, hi, hi - 1n])),
        );
      }
    });
  });
});
