/**
 * Long horizons and extreme magnitudes (review round 54, which found nothing to fix): the accounting
 * after a year without a touch at full funding, listings at the price and size bounds with 8- and
 * 18-decimal feeds, collateral of 0 to 24 decimals, and quote debt left for three years at the interest
 * model's highest rate. Each test holds the chain to the formula, so a regression in any of them fails.
 */
import { expect } from "chai";
import type { ContractTransactionResponse } from "ethers";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { MockV3Aggregator } from "../../typechain-types";
import {
  DEFAULT_RISK_PARAMS,
  MarginMode,
  WAD,
  atLatestTimestamp,
  deploySystem,
  openAccount,
  wad,
  type System,
} from "../shared/system";
import { closePosition, listPerpMarket, marketParams, refreshFeeds, trade } from "../shared/perps";
import { addPriceFeed, addVolatilityFeed, assetId, setFeedPrice } from "../shared/oracles";
import { deployToken, mintAndApprove } from "../shared/tokens";
import { expWad } from "../../sdk/src";

const USDC = (x: bigint): bigint => x * 10n ** 6n;
const DAY = 86_400n;
const YEAR = 365n * DAY;

/** Lists `symbol` at `price` (feed of `decimals`) with a perp market at the funding bounds. */
async function listAtBounds(
  sys: System,
  symbol: string,
  price: string,
  decimals: number,
  skewScale: bigint,
): Promise<{ marketId: bigint; feeds: MockV3Aggregator[] }> {
  const feed = await addPriceFeed(sys.router, symbol, price, { decimals });
  const vol = await addVolatilityFeed(sys.router, symbol, "0.6");
  await sys.engine.listUnderlying(assetId(symbol), DEFAULT_RISK_PARAMS);
  const marketId = await listPerpMarket(
    sys.perps,
    symbol,
    marketParams({
      skewScale,
      maxOpenInterest: skewScale,
      maxFundingVelocity: wad("10"), // MAX_FUNDING_VELOCITY
      maxFundingRate: wad("0.1"), // MAX_FUNDING_RATE
      maxPoolDeltaRatio: wad("10"),
    }),
  );
  return { marketId, feeds: [feed, vol] };
}

/** Moves time by `dt` and posts every feed's answer again (heartbeat 1 h). */
async function gap(sys: System, feeds: MockV3Aggregator[], dt: bigint): Promise<void> {
  await time.increase(dt);
  await refreshFeeds(sys);
  for (const feed of feeds) await (await feed.updateAnswer(await feed.latestAnswer())).wait();
}

/** The index the velocity model gives after `dt` from rate 0 at drift `d` per day up to `max` (WAD). */
function indexAfter(price: bigint, d: bigint, max: bigint, dt: bigint): bigint {
  const hit = (max * DAY) / d; // seconds to reach the clamp
  const integral = (max * hit) / 2n + max * (dt - hit);
  return (integral * price) / (WAD * DAY);
}

describe("Long horizons and extreme magnitudes", function () {
  it("charges a market untouched for a year at the funding clamp what the formula says, and still liquidates it", async function () {
    const sys = await loadFixture(deploySystem);
    const { marketId, feeds } = await listAtBounds(sys, "HOT", "3000", 8, wad("1000"));
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, USDC(2_000_000n)]]);
    const opened = await tradeTime(trade(sys.perps, sys.alice, alice, marketId, wad("300")));
    await gap(sys, feeds, YEAR);

    await sys.perps.accrueFunding(marketId);
    const m = await sys.perps.market(marketId);
    // Skew 300 of 1,000: drift 3 a day, the 0.1 clamp after 48 min, then 0.1 a day for the rest.
    const dt = BigInt(m.lastFundingTime) - opened;
    expect(m.fundingRate).to.equal(wad("0.1"));
    expect(m.fundingIndex).to.be.closeTo(indexAfter(wad("3000"), wad("3"), wad("0.1"), dt), wad("0.001"));
    expect(m.fundingIndex).to.be.closeTo(wad("109495"), wad("1")); // far below int128's 1.7e20
    // 300 × 109,495 owed against 2,000,000 of collateral: deeply insolvent, and still liquidatable.
    expect(await sys.perps.accruedFunding(alice, marketId)).to.be.closeTo(wad("32848500"), wad("300"));
    await sys.auction.connect(sys.keeper).startAuction(alice);
    await gap(sys, feeds, 1801n);
    await sys.auction.connect(sys.keeper).absorb(alice);
    expect(await sys.perps.positionSize(alice, marketId)).to.equal(0n);
    // The LPs end with the account's collateral, not with the funding it could never pay.
    expect(await sys.vault.quoteDebt()).to.equal(0n);
    expect(await sys.pool.totalAssets()).to.be.lessThan(USDC(3_000_000n));
  });

  for (const [symbol, price, decimals, size] of [
    ["MEME", "0.000001", 18, wad("500000000000")], // 5e11 tokens, 500,000 USD
    ["BIG", "1000000", 18, wad("5")],
    ["BIG8", "1000000", 8, wad("5")],
  ] as const) {
    it(`trades, accrues 200 days of funding to the formula and closes at ${price} USD on a ${decimals}-decimal feed`, async function () {
      const sys = await loadFixture(deploySystem);
      const skewScale = wad("1000000000000"); // MAX_SKEW_SCALE
      const { marketId, feeds } = await listAtBounds(sys, symbol, price, decimals, skewScale);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, USDC(100_000_000n)]]);
      const opened = await tradeTime(trade(sys.perps, sys.alice, alice, marketId, size));
      await gap(sys, feeds, 200n * DAY);
      const spot = await sys.router.getPrice(assetId(symbol));
      const owed = await sys.perps.accruedFunding(alice, marketId);
      // drift = 10 · size / skewScale a day: the clamp is reached within the gap for MEME only.
      const drift = (wad("10") * size) / skewScale;
      const dt = BigInt(await time.latest()) - opened;
      const expected =
        (size *
          (drift * dt > wad("0.1") * DAY
            ? indexAfter(spot, drift, wad("0.1"), dt)
            : (((drift * dt) / DAY) * dt * spot) / (2n * WAD * DAY))) /
        WAD;
      expect(owed).to.be.closeTo(expected, expected / 10_000n + 1n);
      const health = await sys.engine.health(alice);
      expect(health.equityMaintenance).to.be.greaterThan(0n);
      await closePosition(sys.perps, sys.alice, alice, marketId);
      expect(await sys.perps.positionSize(alice, marketId)).to.equal(0n);
    });
  }

  it("keeps a rate left at its clamp after the skew closed: the next opposite trader collects it from the LPs (the velocity model, docs/decisions.md)", async function () {
    const sys = await loadFixture(deploySystem);
    const eth = sys.markets.ETH; // skew scale 1,000, velocity 0.1 a day per unit of skew ratio, clamp 0.01
    const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, USDC(100_000n)]]);
    const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, USDC(100_000n)]]);
    await trade(sys.perps, sys.bob, bob, eth, wad("100"));
    await gap(sys, [], 2n * DAY);
    await closePosition(sys.perps, sys.bob, bob, eth);
    // No skew, and the rate stays at the clamp for as long as nobody trades (months here).
    await gap(sys, [], 90n * DAY);
    expect(await sys.perps.currentFundingRate(eth)).to.equal(wad("0.01"));
    const before = await sys.vault.balanceOf(carol, sys.usdc);
    await trade(sys.perps, sys.carol, carol, eth, -wad("100"));
    await gap(sys, [], DAY);
    await closePosition(sys.perps, sys.carol, carol, eth);
    // Drift −0.01 a day takes the rate from 0.01 to 0 in a day: Carol collects ~½·0.01·300,000 = 1,500
    // from the pool for 199.50 of fees (fills at 2,850), whatever her size (a smaller short decays the rate slower).
    const gain = (await sys.vault.balanceOf(carol, sys.usdc)) - before;
    expect(gain).to.be.closeTo(1_300_500_000n, USDC(1n));
  });

  it("values collateral of 0, 2 and 24 decimals exactly", async function () {
    const sys = await loadFixture(deploySystem);
    for (const [decimals, price] of [
      [0, "0.1"],
      [2, "1.08"],
      [24, "3000"],
      [24, "0.000001"],
    ] as const) {
      const symbol = `T${decimals}_${price}`;
      await addPriceFeed(sys.router, symbol, price, { decimals: 18 });
      const token = await deployToken(symbol, symbol, decimals);
      await sys.vault.listCollateral(token, assetId(symbol), wad("0.5"), wad("0.6"), 2n ** 200n, false);
      const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [
        [token, 1000n * 10n ** BigInt(decimals)],
      ]);
      const value = await sys.vault.collateralValue(id);
      expect(value.mark).to.equal(wad(price) * 1000n);
      expect(value.initial).to.equal((wad(price) * 1000n) / 2n);
    }
  });

  it("charges quote debt left three years at 300% a year the formula's interest, and a full repayment leaves nothing on either side", async function () {
    const sys = await loadFixture(deploySystem);
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("10")]]);
    await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
    await setFeedPrice(sys.feeds.ETH, "2700");
    await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("20"));
    const rate = wad("3"); // MAX_QUOTE_BORROW_RATE at every utilisation
    await sys.vault.setInterestRateModel({
      baseRate: rate,
      kinkRate: rate,
      maxRate: rate,
      kinkUtilization: wad("0.8"),
    });
    const debt = -(await sys.vault.balanceOf(alice, sys.usdc));
    const [index0] = await sys.vault.quoteInterest();
    await time.increase(3n * YEAR);
    const [, , updatedAt] = await sys.vault.quoteInterest();
    const elapsed = BigInt(await time.latest()) - updatedAt;
    const index = (index0 * expWad((rate * elapsed) / YEAR)) / WAD;
    const interest = await sys.vault.accruedInterest(alice);
    expect(interest).to.equal((debt * index + (WAD - 1n)) / WAD - debt); // e^9: ×8,103
    // The pool's receivable is the same interest less the scaled debt's rounding (one unit at most).
    expect(await sys.vault.interestReceivable()).to.be.closeTo(interest, 2n);

    // Repaid in full (with a second later's interest), nothing is left on either side.
    const owedNext = (debt * ((index0 * expWad((rate * (elapsed + 1n)) / YEAR)) / WAD) + (WAD - 1n)) / WAD;
    // The mint and the approval are pinned to the jump's second: at 300% on e^9, a second a loaded
    // machine crossed between them added 23.52 USDC to what the repayment owes.
    await atLatestTimestamp();
    await (await sys.usdc.mint(sys.alice.address, owedNext)).wait();
    await atLatestTimestamp();
    await (await sys.usdc.connect(sys.alice).approve(await sys.vault.getAddress(), owedNext)).wait();
    await time.setNextBlockTimestamp(BigInt(await time.latest()) + 1n);
    await sys.vault.connect(sys.alice).deposit(alice, sys.usdc, owedNext);
    expect(await sys.vault.balanceOf(alice, sys.usdc)).to.equal(0n);
    expect(await sys.vault.quoteDebt()).to.equal(0n);
    expect(await sys.vault.interestReceivable()).to.equal(0n);
  });

  it("keeps the pool's receivable at or under two debtors' interest a year apart, and the last repayer leaves nothing behind", async function () {
    const sys = await loadFixture(deploySystem);
    const rate = wad("3");
    const debtorOf = async (signer: typeof sys.alice, from: string, to: string): Promise<bigint> => {
      const id = await openAccount(sys, signer, MarginMode.CROSS, [[sys.weth, wad("10")]]);
      await setFeedPrice(sys.feeds.ETH, from);
      await trade(sys.perps, signer, id, sys.markets.ETH, wad("20"));
      await setFeedPrice(sys.feeds.ETH, to);
      await trade(sys.perps, signer, id, sys.markets.ETH, -wad("20"));
      return id;
    };
    const alice = await debtorOf(sys.alice, "3000", "2700");
    await sys.vault.setInterestRateModel({
      baseRate: rate,
      kinkRate: rate,
      maxRate: rate,
      kinkUtilization: wad("0.8"),
    });
    await time.increase(YEAR);
    await refreshFeeds(sys);
    // Bob's debt starts at an index of ~e^3 = 20.1: each unit of his scaled debt stands for 20 units.
    const bob = await debtorOf(sys.bob, "2700", "2699.99");
    for (const [id, wait] of [
      [alice, 1_234_567n],
      [bob, 7_654_321n],
      [alice, 3n],
      [bob, 86_399n],
    ] as const) {
      await time.increase(wait);
      await sys.vault.settleInterest(id);
    }
    const receivable = await sys.vault.interestReceivable();
    const owed = (await sys.vault.accruedInterest(alice)) + (await sys.vault.accruedInterest(bob));
    const [index] = await sys.vault.quoteInterest();
    // Never more than the debtors owe, short by at most a unit per debtor per unit of index.
    expect(receivable).to.be.at.most(owed);
    expect(owed - receivable).to.be.at.most((2n * index) / WAD + 2n);
    for (const [id, signer] of [
      [bob, sys.bob],
      [alice, sys.alice],
    ] as const) {
      const amount =
        -(await sys.vault.balanceOf(id, sys.usdc)) + (await sys.vault.accruedInterest(id)) + USDC(1n);
      await mintAndApprove(sys.usdc, signer, await sys.vault.getAddress(), amount);
      await sys.vault.connect(signer).deposit(id, sys.usdc, amount);
      expect(await sys.vault.balanceOf(id, sys.usdc)).to.be.greaterThanOrEqual(0n);
    }
    expect(await sys.vault.quoteDebt()).to.equal(0n);
    expect(await sys.vault.interestReceivable()).to.equal(0n);
  });
});

/** The timestamp of the block that mined `tx`: where the funding clock starts from rate 0 at the new skew. */
async function tradeTime(tx: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await tx).wait();
  const block = await receipt!.getBlock();
  return BigInt(block.timestamp);
}
