import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import type { ContractTransactionResponse } from "ethers";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  MarginMode,
  WAD,
  deploySystem,
  fundInsurance,
  openAccount,
  wad,
  type System,
} from "../shared/system";
import { closePosition, marketParams, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { mintAndApprove } from "../shared/tokens";

/**
 * Bugs found by the security review of the liquidity pool and liquidations, kept as regression tests
 * now that they are fixed. Each states the attack and the numbers it made before the fix.
 */
const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;

/** Refreshes the feeds at the crash price after the auction's time has passed. */
async function refreshAt(sys: System, eth: string): Promise<void> {
  await setFeedPrice(sys.feeds.ETH, eth);
  await setFeedPrice(sys.feeds.USDC, "1");
  await sys.volFeeds.ETH.updateAnswer(await sys.volFeeds.ETH.latestAnswer());
}

/** The auction event `name` of a transaction's receipt. */
async function auctionEvent(sys: System, tx: ContractTransactionResponse, name: string) {
  const receipt = await tx.wait();
  return receipt!.logs
    .map((l) => {
      try {
        return sys.auction.interface.parseLog(l);
      } catch {
        return null;
      }
    })
    .find((e) => e?.name === name)!;
}

/**
 * Two LPs with 1M USDC each; Alice is long 20 ETH from 3,000 on 10,000 USDC, and ETH falls to 2,300:
 * she is ~4,000 USDC insolvent and the fund holds only a few USDC of fees. Her auction is started.
 */
async function insolventAuction() {
  const sys = await deploySystem();
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  await mintAndApprove(sys.usdc, sys.carol, await sys.pool.getAddress(), 1_000_000n * USDC);
  await sys.pool.connect(sys.carol).deposit(1_000_000n * USDC, sys.carol.address);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
  await setFeedPrice(sys.feeds.ETH, "2300");
  await sys.auction.connect(sys.keeper).startAuction(alice);
  return { sys, alice, bob };
}

/** Alice: 1,000 USDC, long 2 ETH from 3,000; ETH at 2,300, so her equity is about −409 USDC. */
async function insolventAccount() {
  const sys = await deploySystem();
  await fundInsurance(sys, 50_000n * USDC);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2"));
  await setFeedPrice(sys.feeds.ETH, "2300");
  return { sys, alice, bob };
}

describe("Security review findings", function () {
  describe("the LP share price values the pool's perps at what a close-out would pay", function () {
    // Before the fix the pool counted the skew premium traders had paid as its own, but the fill
    // premium is path-independent: whoever closes the skew gets it back. With 1M USDC of LP capital and
    // a 500 ETH long (fill 3,750 at spot 3,000), the attacker redeemed at a share price 18.8% up and
    // took 186,562.5 USDC from the honest LP (1,000,000 → 813,175). Fixed: PerpMarket._poolExposure
    // subtracts spot·skew²/(2·skewScale), rounded against the pool.
    it("an LP cannot profit by depositing, skewing the market and redeeming", async function () {
      const sys = await loadFixture(deploySystem);
      const { pool, usdc, carol, lp } = sys;
      const lpAssetsBefore = await pool.convertToAssets(await pool.balanceOf(lp));

      // Attacker capital (flash-loanable: it all comes back within the sequence).
      const LP_CAPITAL = 1_000_000n * USDC;
      const MARGIN = 600_000n * USDC;
      await mintAndApprove(usdc, carol, await pool.getAddress(), LP_CAPITAL);
      const trader = await openAccount(sys, carol, MarginMode.CROSS, [[usdc, MARGIN]]);
      const startBalance = (await usdc.balanceOf(carol)) + MARGIN;

      await pool.connect(carol).deposit(LP_CAPITAL, carol.address);
      const priceBefore = await pool.convertToAssets(10n ** 12n);
      // To the OI cap: fill 3000·(1 + 250/1000) = 3,750, a premium of 375,000 USDC over spot.
      await trade(sys.perps, carol, trader, sys.markets.ETH, wad("500"));
      const priceSkewed = await pool.convertToAssets(10n ** 12n);
      const shares = await pool.balanceOf(carol);
      await pool.connect(carol).redeem(shares, carol.address, carol.address);
      await closePosition(sys.perps, carol, trader, sys.markets.ETH);
      const left = await sys.vault.balanceOf(trader, usdc);
      await sys.vault.connect(carol).withdraw(trader, usdc, left, carol.address);

      const profit = (await usdc.balanceOf(carol)) - startBalance;
      const lpAssetsAfter = await pool.convertToAssets(await pool.balanceOf(lp));
      // The skewing trade lifts the share price by its fee share only (937.5 USDC of taker fee, 80% to
      // the pool, over 2M of assets: 0.0375%), not by the premium (+18.8% before the fix).
      expect(priceSkewed).to.be.gte(priceBefore);
      expect(priceSkewed - priceBefore).to.be.lte(priceBefore / 2_000n);
      // The attacker pays both trades' fees less its share of the pool's cut of the first one
      // (937.5 + 375 − 375 = 937.5 USDC); the honest LP keeps its share of the fees.
      expect(profit).to.be.lt(0n);
      expect(profit).to.be.gte(-1_000n * USDC);
      expect(lpAssetsAfter).to.be.gte(lpAssetsBefore);
    });

    it("any sequence of trades at one price leaves the share price unchanged, up to rounding in the pool's favour", async function () {
      // Without fees, the pool's value is what traders' trades cannot move at a fixed spot: every
      // premium a trade pays is exactly the change of the close-out premium (∫ spot·x/skewScale dx).
      const fixture = async () => {
        const sys = await deploySystem();
        await sys.perps.setMarketParams(
          sys.markets.ETH,
          marketParams({ makerFee: 0n, takerFee: 0n, maxFundingVelocity: 0n }),
        );
        const traders = [];
        for (const signer of [sys.alice, sys.bob, sys.carol]) {
          const id = await openAccount(sys, signer, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
          traders.push({ signer, id });
        }
        return { sys, traders };
      };
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              trader: fc.nat(2),
              size: fc.integer({ min: -200_000, max: 200_000 }).filter((x) => x !== 0),
            }),
            { minLength: 1, maxLength: 8 },
          ),
          async (steps) => {
            const { sys, traders } = await loadFixture(fixture);
            const start = await sys.pool.totalAssets();
            let ok = 0;
            for (const step of steps) {
              const t = traders[step.trader];
              // size in thousandths of an ETH; a trade past the OI cap reverts and changes nothing.
              const delta = BigInt(step.size) * 10n ** 15n;
              try {
                await trade(sys.perps, t.signer, t.id, sys.markets.ETH, delta);
                ok++;
              } catch {
                continue;
              }
              const assets = await sys.pool.totalAssets();
              expect(assets, "share price never drops").to.be.gte(start);
              // Each trade rounds its settlement by < 1 quote unit and its fill by a wei of price.
              expect(assets - start, "share price rises by rounding dust only").to.be.lte(BigInt(ok) + 1n);
            }
            for (const t of traders) {
              const size = await sys.perps.positionSize(t.id, sys.markets.ETH);
              if (size !== 0n) {
                await trade(sys.perps, t.signer, t.id, sys.markets.ETH, -size);
                ok++;
              }
            }
            const end = await sys.pool.totalAssets();
            expect(end).to.be.gte(start);
            expect(end - start).to.be.lte(BigInt(ok) + 1n);
          },
        ),
        { numRuns: 15, seed: 20261211 },
      );
    });
  });

  describe("insolvent accounts in auction", function () {
    // Before the fix the share price counted an insolvent trader's whole loss as the pool's gain until
    // the book was taken, so an LP who saw the auction redeemed at full price: Carol took out
    // 1,007,312.12 USDC and the other LP bore all 4,980.35 USDC of socialised loss (1,007,312.12 →
    // 1,002,331.77). Fixed: LiquidationAuction keeps the open auctions' deficits (pendingDeficit) and
    // LiquidityPool.totalAssets deducts what the insurance fund cannot cover.
    it("an LP redeeming during an insolvent auction bears its share of the loss the fund cannot cover", async function () {
      const { sys, alice, bob } = await loadFixture(insolventAuction);
      const h = await sys.engine.health(alice);
      expect(h.equityMark).to.be.lt(0n);
      const uncovered = await sys.pool.uncoveredDeficit();
      expect(uncovered).to.equal((await sys.auction.pendingDeficit()) - (await sys.insuranceFund.balance()));
      expect(uncovered).to.be.gt(3_000n * USDC);

      const lpShares = await sys.pool.balanceOf(sys.lp);
      const carolShares = await sys.pool.balanceOf(sys.carol);
      const carolGot = await sys.pool.connect(sys.carol).redeem.staticCall(carolShares, sys.carol, sys.carol);
      await sys.pool.connect(sys.carol).redeem(carolShares, sys.carol, sys.carol);
      // What the remaining LP holds still deducts the whole uncovered deficit, now all its own.
      expect(await sys.pool.uncoveredDeficit()).to.equal(uncovered);

      await time.increase(1800);
      await refreshAt(sys, "2300");
      const tx = await sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256);
      const socialised = (await auctionEvent(sys, tx, "SocialisedLoss")).args[1] as bigint;
      const lpAfter = await sys.pool.convertToAssets(lpShares);
      // The socialised loss is the uncovered deficit plus the bidder's reward at the end of the
      // auction (dmax·MM), which no share price anticipated: only that is left to the remaining LP.
      const reward = socialised - uncovered;
      expect(reward).to.be.gt(0n);
      expect(reward).to.be.lt(socialised / 10n);
      expect(carolGot - lpAfter).to.be.closeTo(reward, 2n);
      expect(carolGot).to.be.lt(1_007_312n * USDC - uncovered / 3n);
    });
  });

  describe("the flag reward", function () {
    // Before the fix startAuction paid the 10 USDC reward out of any account, insolvent or not: the
    // owner flagged its own insolvent account, received 10 USDC, and the deficit the insurance fund
    // paid grew by the same 10 USDC (409.003 → 419.003). Fixed: the reward is capped at the account's
    // mark-to-market equity.
    it("the owner of an insolvent account cannot collect a flag reward the insurance fund pays", async function () {
      const { sys, alice, bob } = await loadFixture(insolventAccount);
      const before = await sys.engine.health(alice);
      expect(before.equityMark).to.be.lt(0n);
      const deficit = (-before.equityMark + QUOTE_UNIT - 1n) / QUOTE_UNIT;

      const start = sys.auction.connect(sys.alice).startAuction(alice);
      await expect(start).to.changeTokenBalance(sys.usdc, sys.alice, 0n);
      expect((await sys.engine.health(alice)).equityMark).to.equal(before.equityMark);

      await time.increase(1800);
      await refreshAt(sys, "2300");
      const tx = await sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256);
      const covered = await auctionEvent(sys, tx, "InsolvencyCovered");
      expect(covered.args.deficit).to.equal(deficit);
    });
  });
});
