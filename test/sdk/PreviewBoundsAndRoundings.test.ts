import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  type AccountState,
  type CollateralState,
  type Health,
  WAD,
  accountHealth,
  mulDiv,
  collateralValue,
  getAccountState,
  hasNothingAtRisk,
  isLiquidatable,
  meetsInitialMargin,
  marketKey,
  simulate,
  type PerpMarketState,
  makeXMarginError,
  modifyPosition,
  preview,
  setTrader,
  drift,
  premiumPaid,
  needsRepricing,
  toHealth,
  tokenValue,
} from "../../sdk/src";
import { MarginMode, deploySystem, openAccount } from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { setFeedPrice } from "../shared/oracles";
import { expectPredictedRevert, sdkClient } from "../shared/sdk";
import { advanceTo, listPerpMarket, marketParams, trade } from "../shared/perps";

/**
 * The SDK's pure math and previews at exact bounds and roundings (review round 79: 50 small bugs put one
 * at a time into sdk/src/math, sdk/src/markets and sdk/src/preview.ts; 30 caught by the suite before
 * these tests, 48 after, with the band-order test in MonotoneRequirements.test.ts; one equivalent). Each
 * test fails on a plausible one-token bug: a rounding direction, an inclusive bound, a dropped term, a
 * predicted revert's arguments. Pure where the rule needs no chain; against the contracts where the
 * number is theirs.
 */

/** A Health with the given equity and requirement at both levels (the other fields do not matter). */
function healthAt(equity: bigint, req: bigint): Health {
  return {
    equityInitial: equity,
    equityMaintenance: equity,
    equityMark: equity,
    initialRequirement: req,
    maintenanceRequirement: req,
    healthRatio: 0n,
    grossNotional: 0n,
    volatilityUnavailable: false,
  };
}

describe("SDK health", function () {
  it("rounds a 4626 share's value down, as the vault does", async function () {
    const sys = await loadFixture(deploySystem);
    const client = await sdkClient(sys, sys.bob);
    const sweth = await sys.sweth.getAddress();
    // 3 WETH in, then 1 WETH and 7 wei donated: a share converts to 4/3 WETH and some wei, and at an
    // ETH price with eight odd decimals, price × rate is no whole number of wei.
    await mintAndApprove(sys.weth, sys.bob, sweth, 3n * WAD);
    await (await sys.sweth.connect(sys.bob).deposit(3n * WAD, sys.bob.address)).wait();
    await (await sys.weth.mint(sweth, WAD + 7n)).wait();
    await setFeedPrice(sys.feeds.ETH, "3000.12345679");
    const id = await openAccount(sys, sys.bob, MarginMode.CROSS);
    await (await sys.sweth.connect(sys.bob).approve(await sys.vault.getAddress(), 2n * WAD)).wait();
    await (await sys.vault.connect(sys.bob).deposit(id, sweth, 2n * WAD)).wait();

    const state = await getAccountState(client, { accountId: id });
    const c = state.collateral.find((x) => x.token === sweth.toLowerCase())!;
    const price = state.prices[c.oracleAsset];
    expect((price * c.erc4626!.assetsPerShare) % WAD, "an inexact share price").to.not.equal(0n);
    const at = { blockTag: state.blockNumber };
    for (const amount of [WAD, 2n * WAD, 1n, 12_345_678_901n]) {
      expect(tokenValue(c, state.prices, amount), `${amount} share units`).to.equal(
        await sys.vault.tokenValue(sweth, amount, at),
      );
    }
    const chain = await sys.engine.health(id, at);
    expect(toHealth(accountHealth(state))).to.deep.equal(toHealth(chain));
  });

  it("values a quote debt rounded up to the wei, against the borrower, as the vault does", function () {
    // An 18-decimal quote token at 0.5 USD and 1 wei: 3 wei owed are worth 1.5 wei, counted as 2.
    const quote: CollateralState = {
      token: "0x00000000000000000000000000000000000000aa",
      balance: -3n,
      decimals: 18,
      oracleAsset: "usd",
      initialWeight: WAD,
      maintenanceWeight: WAD,
      listed: true,
    };
    const v = collateralValue([quote], quote.token, { usd: WAD / 2n + 1n });
    expect(v).to.deep.equal({ initial: -2n, maintenance: -2n, mark: -2n });
  });

  it("meets the initial requirement with equity exactly at it (requireInitialMargin reverts only below)", function () {
    expect(meetsInitialMargin(healthAt(5n * WAD, 5n * WAD))).to.equal(true);
    expect(meetsInitialMargin(healthAt(5n * WAD - 1n, 5n * WAD))).to.equal(false);
    expect(meetsInitialMargin(healthAt(0n, 0n))).to.equal(true);
  });

  it("is not liquidatable with equity exactly at maintenance (the auction needs equity below it)", function () {
    expect(isLiquidatable(healthAt(5n * WAD, 5n * WAD))).to.equal(false);
    expect(isLiquidatable(healthAt(5n * WAD - 1n, 5n * WAD))).to.equal(true);
  });

  it("never counts a frozen account as having nothing at risk, positions or not (CollateralVault.hasNothingAtRisk)", function () {
    const quoteToken = "0x00000000000000000000000000000000000000aa";
    const idle = { positions: [], collateral: [], quoteToken, frozen: false } as unknown as AccountState;
    expect(hasNothingAtRisk(idle)).to.equal(true);
    expect(hasNothingAtRisk({ ...idle, frozen: true })).to.equal(false);
  });
});

describe("SDK portfolio grid", function () {
  it("keeps a position on its Greeks when a shock only reaches its bound (σ√τ, half the model volatility)", async function () {
    const h = await ethers.deployContract("PortfolioMathHarness");
    const totalVolatility = WAD / 10n;
    const modelVolatility = WAD / 2n;
    const k = {
      spotShock: totalVolatility,
      volShock: modelVolatility / 2n,
      shortOptionFloor: 0n,
      contingency: 0n,
    };
    const cases: [typeof k, boolean][] = [
      [k, false],
      [{ ...k, spotShock: totalVolatility + 1n }, true],
      [{ ...k, volShock: modelVolatility / 2n + 1n }, true],
    ];
    for (const [shocks, expected] of cases) {
      expect(needsRepricing(totalVolatility, modelVolatility, shocks)).to.equal(expected);
      expect(await h.needsRepricing(totalVolatility, modelVolatility, shocks)).to.equal(expected);
    }
  });
});

describe("SDK perp math", function () {
  it("charges a trader the skew premium rounded up to the quote unit (PerpMath.premiumPaid)", function () {
    const quoteUnit = 10n ** 12n; // USDC
    const price = 3000n * WAD;
    // A 1-wei-worse fill on one contract is 10^-30 USD·contracts: still one USDC unit of allowance.
    expect(premiumPaid(price, price + 1n, WAD, quoteUnit)).to.equal(1n);
    expect(premiumPaid(price, price - 1n, -WAD, quoteUnit)).to.equal(1n);
    // 0.75 USD worse on 2 contracts is exactly 1.5 USD: no rounding.
    expect(premiumPaid(price, price + (3n * WAD) / 4n, 2n * WAD, quoteUnit)).to.equal(1_500_000n);
    expect(premiumPaid(price, price - (3n * WAD) / 4n, 2n * WAD, quoteUnit)).to.equal(0n);
  });

  it("drifts the funding rate at most maxFundingVelocity a day, however far the skew runs past skewScale", function () {
    const skewScale = 1000n * WAD;
    const velocity = WAD / 10n;
    expect(drift(skewScale / 2n, skewScale, velocity)).to.equal(velocity / 2n);
    expect(drift(skewScale, skewScale, velocity)).to.equal(velocity);
    expect(drift(3n * skewScale, skewScale, velocity)).to.equal(velocity);
    expect(drift(-3n * skewScale, skewScale, velocity)).to.equal(-velocity);
  });
});

describe("SDK previews", function () {
  /**
   * Alice, 4,000 USDC, long 10 ETH in one ETH market and short 5 in a second (net 5 long), frozen in an
   * auction at 2,300 and back above her initial requirement at 3,300 with the auction still open.
   */
  async function frozenHedgeAboveInitial() {
    const sys = await deploySystem();
    const ethB = await listPerpMarket(sys.perps, "ETH");
    const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 4_000n * 10n ** 6n]]);
    await trade(sys.perps, sys.alice, accountId, sys.markets.ETH, 10n * WAD);
    await trade(sys.perps, sys.alice, accountId, ethB, -5n * WAD);
    await setFeedPrice(sys.feeds.ETH, "2300");
    await sys.auction.connect(sys.keeper).startAuction(accountId);
    await setFeedPrice(sys.feeds.ETH, "3300");
    const h = await sys.engine.health(accountId);
    expect(h.equityInitial).to.be.greaterThan(h.initialRequirement);
    expect(await sys.auction.isFrozen(accountId)).to.equal(true);
    return { sys, ethB, accountId, alice: await sdkClient(sys, sys.alice) };
  }

  // Mutant V8 (round 79): only `!meetsInitialMargin` refused a reduction that raises MM.
  it("predicts RiskIncreased for a frozen account unwinding a hedge leg, though it meets its initial requirement", async function () {
    const { sys, ethB, accountId, alice } = await loadFixture(frozenHedgeAboveInitial);
    const T = BigInt(await time.latest()) + 60n;
    await advanceTo(sys, T);
    const p = await preview(alice, accountId, { type: "close", marketId: ethB }, { timestamp: T });
    expect(p.revert?.name).to.equal("RiskIncreased");
    expect(meetsInitialMargin(p.health)).to.equal(true);
    await time.setNextBlockTimestamp(T);
    await expectPredictedRevert(
      modifyPosition(alice, {
        accountId,
        marketId: ethB,
        sizeDelta: 5n * WAD,
        slippageBps: 100,
        deadline: T,
      }),
      p.revert!,
    );
  });

  /** Alice with 3,000,000 USDC; the ETH pool delta ratio is 2, so 500 ETH (the OI cap) fits under it. */
  async function openInterestCap() {
    const sys = await deploySystem();
    await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxPoolDeltaRatio: 2n * WAD }));
    const alice = await sdkClient(sys, sys.alice);
    const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [
      [sys.usdc, 3_000_000n * 10n ** 6n],
    ]);
    return { sys, alice, accountId };
  }

  it("predicts OpenInterestCapExceeded past the cap with (market, side, new open interest, cap), and none at it", async function () {
    const { sys, alice, accountId } = await loadFixture(openInterestCap);
    const cap = (await sys.perps.market(sys.markets.ETH)).params.maxOpenInterest;
    const marketId = sys.markets.ETH;
    const attempt = async (sizeDelta: bigint) => {
      const T = BigInt(await time.latest()) + 60n;
      await advanceTo(sys, T);
      const p = await preview(alice, accountId, { type: "trade", marketId, sizeDelta }, { timestamp: T });
      await time.setNextBlockTimestamp(T);
      const sent = modifyPosition(alice, { accountId, marketId, sizeDelta, slippageBps: 0, deadline: T });
      return { p, sent };
    };
    for (const [sizeDelta, isLong] of [
      [cap + 1n, true],
      [-(cap + 1n), false],
    ] as const) {
      const { p, sent } = await attempt(sizeDelta);
      const expected = makeXMarginError("OpenInterestCapExceeded", [marketId, isLong, cap + 1n, cap]);
      expect({ name: p.revert?.name, args: p.revert?.args }).to.deep.equal({
        name: expected.name,
        args: expected.args,
      });
      await expectPredictedRevert(sent, p.revert!);
    }
    const { p, sent } = await attempt(cap);
    expect(p.revert).to.equal(undefined);
    await sent;
    expect((await sys.perps.market(marketId)).longOpenInterest).to.equal(cap);
  });

  /**
   * Alice's snapshot beside a 10 ETH buy: `poolDelta` is the LPs' new delta (its notional at the oracle,
   * on a flat book), and `at(base, fields)` the snapshot with the pool delta base `base`, the ETH market's
   * `fields`, and a ratio of WAD / quoteUnit, which makes the limit the base itself, to the wei.
   */
  async function poolDeltaLimit() {
    const { sys, alice, accountId } = await loadFixture(openInterestCap);
    const marketId = sys.markets.ETH;
    const state = await getAccountState(alice, { accountId, markets: [{ marketId }] });
    const key = marketKey(await sys.perps.getAddress(), marketId);
    const market = state.markets[key] as PerpMarketState;
    const sizeDelta = 10n * WAD;
    const poolDelta = mulDiv(sizeDelta, state.prices[market.underlying], WAD, "ceil");
    const at = (base: bigint, fields: Partial<PerpMarketState> = {}): AccountState => ({
      ...state,
      protocol: { ...state.protocol, poolDeltaBase: base },
      markets: {
        ...state.markets,
        [key]: {
          ...market,
          ...fields,
          params: { ...market.params, maxPoolDeltaRatio: WAD / state.protocol.quoteUnit },
        },
      },
    });
    return { marketId, sizeDelta, poolDelta, at };
  }

  it("lets a trade fill the pool delta limit exactly, and refuses one wei of limit less (PerpMarket._checkNewRisk)", async function () {
    const { marketId, sizeDelta, poolDelta, at } = await poolDeltaLimit();
    const trade10 = { type: "trade", marketId, sizeDelta } as const;
    expect(simulate(at(poolDelta), trade10).revert).to.equal(undefined);
    const refused = simulate(at(poolDelta - 1n), trade10).revert;
    const expected = makeXMarginError("PoolDeltaLimitExceeded", [marketId, poolDelta, poolDelta - 1n]);
    expect({ name: refused?.name, args: refused?.args }).to.deep.equal({
      name: expected.name,
      args: expected.args,
    });
  });

  it("lets a healthy account pay a skew premium to reduce: only a shortfall that grows below zero is refused", async function () {
    const { sys, alice, accountId } = await loadFixture(openInterestCap);
    const marketId = sys.markets.ETH;
    await (await trade(sys.perps, sys.alice, accountId, marketId, 10n * WAD)).wait();
    // Bob's short of 400 drives the skew to −390: Alice's sell of 10 fills ~40% under the oracle.
    const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 3_000_000n * 10n ** 6n]]);
    await (await trade(sys.perps, sys.bob, bob, marketId, -400n * WAD)).wait();
    const T = BigInt(await time.latest()) + 60n;
    await advanceTo(sys, T);
    const p = await preview(alice, accountId, { type: "close", marketId }, { timestamp: T });
    const margin = (h: Health) => h.equityMaintenance - h.maintenanceRequirement;
    expect(p.trade!.fillPrice < (3000n * WAD * 7n) / 10n, "a premium of over 30%").to.equal(true);
    expect(
      margin(p.health) < margin(p.before) && margin(p.health) > 0n,
      "less margin, still above MM",
    ).to.equal(true);
    expect(p.revert).to.equal(undefined);
    await time.setNextBlockTimestamp(T);
    await modifyPosition(alice, { accountId, marketId, sizeDelta: -10n * WAD, slippageBps: 0, deadline: T });
    expect(await sys.perps.positionSize(accountId, marketId)).to.equal(0n);
  });

  it("takes a deposit that fills the cap exactly, and refuses one that passes it by a unit (CollateralVault.deposit)", async function () {
    const { sys, alice, accountId } = await loadFixture(openInterestCap);
    const state = await getAccountState(alice, { accountId, tokens: ["WETH"] });
    const weth = await sys.weth.getAddress();
    const amount = 2n * WAD;
    const deposit = (cap: bigint) =>
      simulate(
        state,
        { type: "deposit", token: weth, amount },
        { depositLimit: { cap, totalDeposits: 5n * WAD } },
      ).revert;
    expect(deposit(7n * WAD)).to.equal(undefined);
    const refused = deposit(7n * WAD - 1n);
    const expected = makeXMarginError("DepositCapExceeded", [weth, 7n * WAD, 7n * WAD - 1n]);
    expect({ name: refused?.name, args: refused?.args }).to.deep.equal({
      name: expected.name,
      args: expected.args,
    });
  });

  it("lets a quote deposit past the cap cure a shortfall exactly its size (CollateralVault._quoteCure: cure ≤ shortfall)", async function () {
    const { sys, alice, accountId } = await loadFixture(openInterestCap);
    const snapshot = await getAccountState(alice, { accountId });
    const usdc = await sys.usdc.getAddress();
    // 100 USDC owed and nothing else: equity_IM is −100 USD, IM 0, a shortfall of exactly 100 USD.
    const state: AccountState = {
      ...snapshot,
      collateral: snapshot.collateral.map((c) =>
        c.token === snapshot.quoteToken ? { ...c, balance: -100n * 10n ** 6n } : c,
      ),
    };
    const h = accountHealth(state);
    expect(h.initialRequirement - h.equityInitial).to.equal(100n * WAD);
    // 150 USDC in, 100 of them past the cap: their initial value is the shortfall to the wei.
    const deposit = (excess: bigint) =>
      simulate(
        state,
        { type: "deposit", token: usdc, amount: 150n * 10n ** 6n },
        {
          depositLimit: {
            cap: 1_000_000n * 10n ** 6n,
            totalDeposits: 1_000_000n * 10n ** 6n - 150n * 10n ** 6n + excess,
          },
        },
      ).revert;
    expect(deposit(100n * 10n ** 6n)).to.equal(undefined);
    expect(deposit(100n * 10n ** 6n + 1n)?.name).to.equal("DepositCapExceeded");
  });

  it("counts only the traders' growth against the pool delta limit, not the backstop's long (PerpMarket._checkNewRisk)", async function () {
    const { marketId, sizeDelta, poolDelta, at } = await poolDeltaLimit();
    // The backstop holds the book's only long, 100; Alice's 10 are the LPs' only new delta.
    const withBackstop = at(poolDelta, { longOpenInterest: 100n * WAD, backstopSize: 100n * WAD });
    expect(simulate(withBackstop, { type: "trade", marketId, sizeDelta }).revert).to.equal(undefined);
    expect(
      simulate(withBackstop, { type: "trade", marketId, sizeDelta: sizeDelta + 1n }).revert?.name,
    ).to.equal("PoolDeltaLimitExceeded");
  });

  it("reports InsufficientBalance with the balance the vault records, without the interest accrued since", async function () {
    const { sys, alice, accountId } = await loadFixture(openInterestCap);
    const snapshot = await getAccountState(alice, { accountId });
    const usdc = await sys.usdc.getAddress();
    const recorded = -100n * 10n ** 6n;
    const state: AccountState = {
      ...snapshot,
      collateral: snapshot.collateral.map((c) =>
        c.token === snapshot.quoteToken
          ? { ...c, balance: recorded - 7n, debt: { recordedBalance: recorded, paidIndex: WAD } }
          : c,
      ),
    };
    const refused = simulate(state, { type: "withdraw", token: usdc, amount: 1n }).revert;
    const expected = makeXMarginError("InsufficientBalance", [accountId, usdc, recorded, 1n]);
    expect({ name: refused?.name, args: refused?.args }).to.deep.equal({
      name: expected.name,
      args: expected.args,
    });
  });

  it("lets a trader spend its allowance to the last unit: only a cost above it is TraderAllowanceExceeded", async function () {
    const { sys, alice, accountId } = await loadFixture(openInterestCap);
    const bot = await sdkClient(sys, sys.bob);
    const marketId = sys.markets.ETH;
    const sizeDelta = 3n * WAD;
    const T = BigInt(await time.latest()) + 60n;
    const cost = (await preview(alice, accountId, { type: "trade", marketId, sizeDelta }, { timestamp: T }))
      .trade!.tradingCost;
    await setTrader(alice, { accountId, trader: sys.bob.address, allowance: cost - 1n });
    const short = await preview(bot, accountId, { type: "trade", marketId, sizeDelta }, { timestamp: T });
    expect(short.revert?.name).to.equal("TraderAllowanceExceeded");
    await setTrader(alice, { accountId, trader: sys.bob.address, allowance: cost });
    const exact = await preview(bot, accountId, { type: "trade", marketId, sizeDelta }, { timestamp: T });
    expect(exact.trade!.tradingCost).to.equal(cost);
    expect(exact.revert).to.equal(undefined);
    await advanceTo(sys, T);
    await time.setNextBlockTimestamp(T);
    await modifyPosition(bot, { accountId, marketId, sizeDelta, slippageBps: 0, deadline: T });
    expect(await sys.accounts.traderAllowance(accountId, sys.bob.address)).to.equal(0n);
  });
});
