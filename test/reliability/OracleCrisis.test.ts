import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { MockV3Aggregator } from "../../typechain-types";
import {
  HOLDING_PERIOD,
  MarginMode,
  atLatestTimestamp,
  deploySystem,
  openAccount,
  wad,
  type System,
} from "../shared/system";
import { closePosition, refreshFeeds, refreshPrices, trade } from "../shared/perps";
import { assetId, configureSequencer, setFeedPrice } from "../shared/oracles";
import { deployToken, mintAndApprove } from "../shared/tokens";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";

/**
 * The oracle router in a crisis, and Chainlink's behaviour behind a proxy (review round 33,
 * docs/reliability.md §4 rows 98–101, 103 and 106): an aggregator upgrade that changes the feed's decimals, an
 * aggregator's circuit breaker holding a crashed price at its floor, users with nothing at risk
 * locked out while a feed or the sequencer fails, and liquidations stopped by a stale volatility feed, and auctions ended on the floor-shock health that
 * replaced it (round 35).
 * Each test failed before the fix, with the numbers in its title.
 */
const USDC = 10n ** 6n;
const ETH = assetId("ETH");

/**
 * Swaps the aggregator behind a proxy for one with `decimals`, as Chainlink's `confirmAggregator` does:
 * the proxy then answers with the new aggregator's `decimals()`, and its rounds carry the next phase id
 * in their high 16 bits (`(phaseId << 64) | aggregatorRoundId`). The mock is its own proxy: its
 * `decimals` slot (slot 0 of MockV3Aggregator) is rewritten, then the new phase's first round is posted
 * in the new decimals.
 */
async function upgradeDecimals(feed: MockV3Aggregator, decimals: number, priceUsd: string): Promise<void> {
  await network.provider.send("hardhat_setStorageAt", [
    await feed.getAddress(),
    "0x0",
    ethers.toBeHex(decimals, 32),
  ]);
  const phase = ((await feed.latestRound()) >> 64n) + 1n;
  const now = BigInt(await time.latest()) + 1n;
  await time.setNextBlockTimestamp(now);
  await (
    await feed.updateRoundData((phase << 64n) | 1n, ethers.parseUnits(priceUsd, decimals), now, now)
  ).wait();
}

/** An account with 10,000 USDC long `size` ETH, then the ETH feed upgraded to `decimals` at 3,000. */
async function longThroughUpgrade(size: string, decimals: number) {
  const sys = await loadFixture(deploySystem);
  const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.alice, account, sys.markets.ETH, wad(size));
  await upgradeDecimals(sys.feeds.ETH, decimals, "3000");
  return { sys, account };
}

/**
 * One hour on: the volatility feeds are past their heartbeat, every price feed is posted again (at that
 * second: Bob's funding runs by the second, and the tests read his equity to the cent).
 */
async function volatilityStale(sys: Pick<System, "feeds">): Promise<void> {
  await time.increase(3_601);
  await refreshPrices(sys, { atLatest: true });
}

/**
 * Bob: 10,000 USDC, long 20 ETH bought at 3,000; a day later ETH volatility `sigma` and ETH at
 * `priceUsd`. Carol: a flat keeper account with 50,000 USDC that the auction may trade (bidAndClose).
 * Every block after Bob's trade is pinned (exactly a day later, and no time between the updates): his
 * funding accrues by the second, so the wall clock's seconds would otherwise move his equity.
 */
async function bobLong(priceUsd: string, sigma = "0.6") {
  const sys = await deploySystem();
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
  await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("20"));
  await atLatestTimestamp();
  await sys.accounts.connect(sys.carol).approve(sys.auction, carol);
  await time.increase(HOLDING_PERIOD); // the LP's shares unlock
  await refreshFeeds(sys, { atLatest: true });
  await atLatestTimestamp();
  await setFeedPrice(sys.volFeeds.ETH, sigma);
  await atLatestTimestamp();
  await setFeedPrice(sys.feeds.ETH, priceUsd);
  return { sys, bob, carol };
}

/** `bobLong` at σ 60%, then the ETH volatility feed stale; with Bob's health before it went stale. */
async function longWithStaleVolatility(priceUsd: string) {
  const { sys, bob, carol } = await bobLong(priceUsd);
  const healthWithVolatility = await sys.engine.health(bob);
  await volatilityStale(sys);
  return { sys, bob, carol, healthWithVolatility };
}

/** Bob at ETH 2,720 (σ 60%) is auctioned while the feed is fresh; then the volatility feed goes stale. */
async function auctionedThenStale() {
  const { sys, bob, carol } = await bobLong("2720");
  await atLatestTimestamp();
  await sys.auction.connect(sys.keeper).startAuction(bob);
  await volatilityStale(sys);
  return { sys, bob, carol };
}

/** ⌈20 · spot · s⌉ + ⌈0.2% of 20 · spot⌉, with s = ⌈floor · (1 + notional / 50,000,000)⌉ (RiskMath). */
function floorRequirement(spot: bigint, floor: bigint): bigint {
  const notional = 20n * spot;
  const shock =
    (floor * (wad("1") + (notional * wad("1") + wad("50000000") - 1n) / wad("50000000")) + wad("1") - 1n) /
    wad("1");
  return 20n * ((spot * shock + wad("1") - 1n) / wad("1")) + (notional * 2n + 999n) / 1000n;
}

describe("Oracle failures and feed upgrades", function () {
  describe("F1: decimals changed by an aggregator upgrade behind the proxy", function () {
    it("prices ETH at 3,000 after an 8 → 10 decimals upgrade, and a 1 ETH long closes for ~0, not 297,087 USDC", async function () {
      const { sys, account: alice } = await longThroughUpgrade("1", 10);
      // Before the fix: the recorded 8 decimals scaled 3000e10 to 300,000 (inside [3, 3,000,000]).
      expect(await sys.router.getPrice(ETH)).to.equal(wad("3000"));
      const round = await sys.feeds.ETH.latestRound();
      expect((await sys.router.getPriceAtRound(ETH, round)).price).to.equal(wad("3000"));

      await closePosition(sys.perps, sys.alice, alice, sys.markets.ETH);
      const balance = await sys.vault.balanceOf(alice, sys.usdc);
      // Before the fix: 307,086.97 USDC (297,087 of the pool's money for a 1 ETH long).
      expect(balance).to.be.lessThan(10_000n * USDC);
      expect(balance).to.be.greaterThan(9_950n * USDC);
    });

    it("prices ETH at 3,000 after an 8 → 6 decimals upgrade, so a healthy long is not liquidated at 30", async function () {
      const { sys, account } = await longThroughUpgrade("10", 6);
      // Before the fix: 3000e6 scaled ×1e10 read 30 USD, and the account (equity 9,850 on 10 ETH) was auctionable.
      expect(await sys.router.getPrice(ETH)).to.equal(wad("3000"));
      await expect(sys.auction.connect(sys.keeper).startAuction(account)).to.be.revertedWithCustomError(
        sys.auction,
        "AccountHealthy",
      );
    });
  });

  describe("F2: router bounds outside the aggregator's circuit breaker (minAnswer / maxAnswer)", function () {
    /**
     * "LUNA" at 80 USD on a feed whose OCR aggregator accepts [0.10, 1,000,000]; the deployments'
     * bounds convention is [price / 1000, price · 1000] = [0.08, 80,000], below the aggregator's floor.
     */
    async function lunaFeed() {
      const sys = await loadFixture(deploySystem);
      const feed = await ethers.deployContract("CircuitBreakerAggregatorMock", [
        8,
        80n * 10n ** 8n,
        10n ** 7n, // minAnswer 0.10
        10n ** 14n, // maxAnswer 1,000,000
      ]);
      const input = (minPrice: bigint, maxPrice: bigint) => ({
        primary: feed,
        primaryHeartbeat: 86_400,
        secondaries: [],
        secondaryHeartbeats: [],
        minPrice,
        maxPrice,
        maxDeviation: 0n,
      });
      return { sys, feed, input };
    }

    it("refuses a floor at or below the aggregator's, so the crash cannot read as a price of 0.10", async function () {
      const { sys, feed, input } = await lunaFeed();
      const LUNA = assetId("LUNA");
      // Before the fix: accepted; after the crash the feed sits at 0.10 and the router returns 0.10,
      // so 1,000,000 LUNA bought at 0.005 (5,000 USD) counted 80,000 USD of initial margin (weight 0.8).
      await expect(
        sys.router.configureAsset(LUNA, input(wad("0.08"), wad("80000"))),
      ).to.be.revertedWithCustomError(sys.router, "InvalidConfig");
      await expect(
        sys.router.configureAsset(LUNA, input(wad("0.1"), wad("80000"))),
      ).to.be.revertedWithCustomError(sys.router, "InvalidConfig");
      // A ceiling at or above the aggregator's is refused for the same reason.
      await expect(
        sys.router.configureAsset(LUNA, input(wad("0.2"), wad("1000000"))),
      ).to.be.revertedWithCustomError(sys.router, "InvalidConfig");

      // Inside the band: accepted, and the crash fails closed instead of pricing at the floor.
      await sys.router.configureAsset(LUNA, input(wad("0.2"), wad("80000")));
      expect(await sys.router.getPrice(LUNA)).to.equal(wad("80"));
      await (await feed.report(5n * 10n ** 5n)).wait(); // market 0.005: the feed reports its floor, 0.10
      expect(await feed.latestAnswer()).to.equal(10n ** 7n);
      await expect(sys.router.getPrice(LUNA)).to.be.revertedWithCustomError(sys.router, "PriceOutOfBounds");
    });

    it("applies the same rule to a volatility feed's bounds", async function () {
      const { sys } = await lunaFeed();
      const vol = await ethers.deployContract("CircuitBreakerAggregatorMock", [
        8,
        6n * 10n ** 7n, // 60%
        10n ** 6n, // minAnswer 1%
        5n * 10n ** 8n, // maxAnswer 500%
      ]);
      await expect(
        sys.router.configureVolatilityFeed(assetId("LUNA"), vol, 3_600, wad("0.01"), wad("5")),
      ).to.be.revertedWithCustomError(sys.router, "InvalidConfig");
      await sys.router.configureVolatilityFeed(assetId("LUNA"), vol, 3_600, wad("0.02"), wad("4"));
    });

    // Review round 34 (row 103): an OCR aggregator refuses a median outside its band and keeps the last
    // one inside it — LUNA/USD stopped at 0.107 on a 0.10 floor — so a router floor just above the
    // aggregator's read 0.107 as a price: 1,000,000 LUNA worth 5,000 USD counted 85,600 of initial margin.
    it("refuses bounds within a tenth of the band, so a feed stopped at 0.107 on a 0.10 floor reads PriceOutOfBounds", async function () {
      const { sys, feed, input } = await lunaFeed();
      const LUNA = assetId("LUNA");
      for (const [minPrice, maxPrice] of [
        [wad("0.1000001"), wad("80000")],
        [wad("0.11"), wad("80000")],
        [wad("0.2"), wad("950000")],
      ]) {
        await expect(
          sys.router.configureAsset(LUNA, input(minPrice, maxPrice)),
        ).to.be.revertedWithCustomError(sys.router, "InvalidConfig");
      }
      await sys.router.configureAsset(LUNA, input(wad("0.12"), wad("80000")));
      await (await feed.updateAnswer(10_700_000n)).wait(); // 0.107: the last median OCR accepted
      await expect(sys.router.getPrice(LUNA)).to.be.revertedWithCustomError(sys.router, "PriceOutOfBounds");
    });
  });

  describe("F3: an account with nothing at risk cannot withdraw while a feed or the sequencer fails", function () {
    it("lets a flat, debt-free account with two tokens withdraw while the sequencer is down and in its grace period", async function () {
      const sys = await loadFixture(deploySystem);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [
        [sys.usdc, 10_000n * USDC],
        [sys.weth, wad("2")],
      ]);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("1"));

      await configureSequencer(sys.router, 1, 0n); // down
      // Control: an account with a position still fails closed.
      await expect(
        sys.vault.connect(sys.alice).withdraw(alice, sys.usdc, 1_000n * USDC, sys.alice.address),
      ).to.be.revertedWithCustomError(sys.router, "SequencerDown");
      // Before the fix: SequencerDown for Carol too, though no price can change what she may take; each
      // whole-balance withdrawal still valued the other token, so she could take nothing out at all.
      await sys.vault.connect(sys.carol).withdraw(carol, sys.weth, wad("2"), sys.carol.address);
      await sys.vault.connect(sys.carol).withdraw(carol, sys.usdc, 4_000n * USDC, sys.carol.address);

      await configureSequencer(sys.router, 0, 600n); // up 10 minutes, grace 1 hour
      await sys.vault.connect(sys.carol).withdraw(carol, sys.usdc, 3_000n * USDC, sys.carol.address);
      expect(await sys.usdc.balanceOf(sys.carol.address)).to.equal(7_000n * USDC);
      expect(await sys.weth.balanceOf(sys.carol.address)).to.equal(wad("2"));
    });

    it("lets a flat account withdraw part of its USDC while the USDC feed is stale, and part of its WETH while ETH is out of bounds", async function () {
      const sys = await loadFixture(deploySystem);
      const dave = await openAccount(sys, sys.bob, MarginMode.CROSS, [
        [sys.weth, wad("10")],
        [sys.usdc, 5_000n * USDC],
      ]);
      // ETH crashes through the router's floor (3 USD): the feed fails closed with PriceOutOfBounds.
      await setFeedPrice(sys.feeds.ETH, "2");
      await expect(sys.router.getPrice(ETH)).to.be.revertedWithCustomError(sys.router, "PriceOutOfBounds");
      // Before the fix: PriceOutOfBounds until the timelock reconfigured the bounds (2 days).
      await sys.vault.connect(sys.bob).withdraw(dave, sys.weth, wad("4"), sys.bob.address);
      await sys.vault.connect(sys.bob).withdraw(dave, sys.usdc, 1_000n * USDC, sys.bob.address);

      // A USDC feed past its heartbeat (1 h in the fixture; 24 h on the deployments).
      await time.increase(3_601);
      await expect(sys.router.getPrice(assetId("USDC"))).to.be.revertedWithCustomError(
        sys.router,
        "StalePrice",
      );
      await sys.vault.connect(sys.bob).withdraw(dave, sys.usdc, 1_000n * USDC, sys.bob.address);
      expect(await sys.usdc.balanceOf(sys.bob.address)).to.equal(2_000n * USDC);
      expect(await sys.weth.balanceOf(sys.bob.address)).to.equal(wad("4"));
    });

    it("still margin-checks an account with quote debt", async function () {
      const sys = await loadFixture(deploySystem);
      // Erin: WETH collateral, a perp loss realised into quote debt, then flat.
      const erin = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("2")]]);
      await trade(sys.perps, sys.alice, erin, sys.markets.ETH, wad("1"));
      await setFeedPrice(sys.feeds.ETH, "2900");
      await closePosition(sys.perps, sys.alice, erin, sys.markets.ETH);
      expect(await sys.vault.balanceOf(erin, sys.usdc)).to.be.lessThan(0n);
      await configureSequencer(sys.router, 1, 0n);
      await expect(
        sys.vault.connect(sys.alice).withdraw(erin, sys.weth, wad("1"), sys.alice.address),
      ).to.be.revertedWithCustomError(sys.router, "SequencerDown");
    });
  });

  describe("F4: a stale volatility feed stops the liquidation of a perp book", function () {
    const fixture2600 = () => longWithStaleVolatility("2600");

    it("auctions Bob (long 20 ETH, equity_MM 1,313.28 at 2,600) below even the floor shocks' MM of 2,706.70, where startAuction reverted StalePrice", async function () {
      const { sys, bob, carol } = await loadFixture(fixture2600);
      await expect(sys.router.getVolatility(ETH)).to.be.revertedWithCustomError(sys.router, "StalePrice");
      const h = await sys.engine.health(bob);
      expect(h.volatilityUnavailable).to.equal(true);
      // MM at the 5% floor: 20 · ⌈2,600 · 0.050052⌉ + 0.2% of 52,000 = 2,602.704 + 104 = 2,706.704.
      expect(h.maintenanceRequirement).to.equal(floorRequirement(wad("2600"), wad("0.05")));
      expect(h.maintenanceRequirement).to.equal(wad("2706.704"));
      expect(h.equityMaintenance).to.be.closeTo(wad("1313.28"), wad("0.01"));
      expect((await sys.engine.healthMany([bob]))[0].volatilityUnavailable).to.equal(true);

      await expect(sys.auction.connect(sys.keeper).startAuction(bob)).to.emit(sys.auction, "AuctionStarted");
      // A keeper with a flat account takes a slice and closes it in the same transaction.
      await sys.accounts.connect(sys.carol).approve(sys.auction, carol);
      await time.increase(600);
      for (const feed of Object.values(sys.feeds))
        await (await feed.updateAnswer(await feed.latestAnswer())).wait();
      await expect(sys.auction.connect(sys.carol).bidAndClose(bob, carol, wad("1"), 2n ** 255n)).to.emit(
        sys.auction,
        "AuctionBid",
      );
      expect(await sys.perps.positionSize(bob, sys.markets.ETH)).to.be.lessThan(wad("20"));
      expect(await sys.engine.accountMarkets(carol)).to.deep.equal([]);
    });

    it("keeps every check on new risk failing closed: Bob's increase and withdrawal, a plain bid, the LPs' exits", async function () {
      const { sys, bob, carol } = await loadFixture(fixture2600);
      await expect(trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("1"))).to.be.revertedWithCustomError(
        sys.router,
        "StalePrice",
      );
      await expect(
        sys.vault.connect(sys.bob).withdraw(bob, sys.usdc, 1n, sys.bob),
      ).to.be.revertedWithCustomError(sys.router, "StalePrice");
      await sys.auction.connect(sys.keeper).startAuction(bob);
      // A bid leaves Carol holding ETH: her initial requirement needs the volatility.
      await expect(
        sys.auction.connect(sys.carol).bid(bob, carol, wad("0.1"), 2n ** 255n),
      ).to.be.revertedWithCustomError(sys.router, "StalePrice");
      // The pool holds Bob's other side: its requirement is only a lower bound, so nothing is free.
      expect((await sys.engine.health(sys.poolAccountId)).volatilityUnavailable).to.equal(true);
      expect(await sys.pool.maxWithdraw(sys.lp)).to.equal(0n);
      await expect(sys.pool.connect(sys.lp).withdraw(1n, sys.lp, sys.lp)).to.be.revertedWithCustomError(
        sys.router,
        "StalePrice",
      );
    });

    it("does not auction an account the floor shocks call healthy, though the feed's volatility would (ETH 2,720)", async function () {
      const { sys, bob, healthWithVolatility } = await longWithStaleVolatility("2720");
      // With σ = 60%, MM takes s = 2.33 · 0.6 · √(1/365) = 7.32%: Bob is below it.
      expect(healthWithVolatility.equityMaintenance).to.be.lessThan(
        healthWithVolatility.maintenanceRequirement,
      );
      const h = await sys.engine.health(bob);
      // At the 5% floor, the lower bound of any volatility's requirement, he is not.
      expect(h.maintenanceRequirement).to.equal(floorRequirement(wad("2720"), wad("0.05")));
      expect(h.equityMaintenance).to.be.greaterThanOrEqual(h.maintenanceRequirement);
      await expect(sys.auction.connect(sys.keeper).startAuction(bob)).to.be.revertedWithCustomError(
        sys.auction,
        "AccountHealthy",
      );
    });

    it("keeps a book with options failing closed: an option's value needs its volatility", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      const call = await listSeries(sys.options, "ETH", wad("3000"), await fromNow(7n * DAY), true);
      await tradeOption(sys.options, sys.alice, alice, call, wad("1"));
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("1"));
      await time.increase(3_601);
      for (const feed of Object.values(sys.feeds))
        await (await feed.updateAnswer(await feed.latestAnswer())).wait();
      await expect(sys.engine.health(alice)).to.be.revertedWithCustomError(sys.router, "StalePrice");
      await expect(sys.engine.healthMany([alice])).to.be.revertedWithCustomError(sys.router, "StalePrice");
    });
  });

  describe("F5 (round 35): an auction ended on a health at the floor shocks", function () {
    it("keeps Bob's auction (equity_MM 3,700.67: below the feed's MM 4,093.83, above the floor's 2,831.76) open through the outage, where anyone's endAuction ended it", async function () {
      const { sys, bob, carol } = await loadFixture(auctionedThenStale);
      const h = await sys.engine.health(bob);
      expect(h.volatilityUnavailable).to.equal(true);
      expect(h.maintenanceRequirement).to.equal(wad("2831.75936"));
      expect(h.equityMaintenance).to.be.closeTo(wad("3700.67"), wad("0.01"));
      expect(await sys.auction.currentDiscount(bob)).to.equal(wad("0.1")); // 30 minutes: at its maximum

      await expect(sys.auction.connect(sys.alice).endAuction(bob)).to.be.revertedWithCustomError(
        sys.router,
        "StalePrice",
      );
      expect(await sys.auction.isFrozen(bob)).to.equal(true);

      // The feed returns (σ 60%): Bob is below his MM, and the auction goes on at its 10% discount.
      await setFeedPrice(sys.volFeeds.ETH, "0.6");
      const back = await sys.engine.health(bob);
      expect(back.maintenanceRequirement).to.be.closeTo(wad("4093.83"), wad("0.01"));
      expect(back.equityMaintenance).to.be.lessThan(back.maintenanceRequirement);
      await expect(sys.auction.connect(sys.carol).bidAndClose(bob, carol, wad("1"), 2n ** 255n))
        .to.emit(sys.auction, "AuctionBid")
        .withArgs(
          bob,
          carol,
          (f: bigint) => f > 0n,
          (p: bigint) => p > 0n,
          (x: bigint) => x > 0n,
          wad("0.1"),
        );
    });

    it("leaves the auction open after a bidAndClose that meets only the floor's IM (σ 100%: 76.01% sold, equity_MM 1,273.56 still under the feed's MM 1,546.52)", async function () {
      const { sys, bob, carol } = await bobLong("2600", "1");
      await volatilityStale(sys);
      // Start and bid in the second the prices were posted: the exact fill below is the auction's first
      // second (a 2% discount, growing by the second) on Bob's equity then.
      await atLatestTimestamp();
      await sys.auction.connect(sys.keeper).startAuction(bob);
      await atLatestTimestamp();
      await expect(sys.auction.connect(sys.carol).bidAndClose(bob, carol, wad("1"), 2n ** 255n))
        .to.emit(sys.auction, "AuctionBid")
        .withArgs(bob, carol, 760132337203744545n, 970848343n, 9906616n, wad("0.02"));
      // At the floor shocks the rest meets its initial requirement (1,272.57 ≤ 1,273.56)...
      const floor = await sys.engine.health(bob);
      expect(floor.equityInitial).to.be.closeTo(wad("1273.56"), wad("0.01"));
      expect(floor.initialRequirement).to.be.closeTo(wad("1272.57"), wad("0.01"));
      // ...but no auction ends on a lower bound: Bob stays frozen, and no further bid fills meanwhile.
      expect(await sys.auction.isFrozen(bob)).to.equal(true);
      await expect(
        sys.auction.connect(sys.carol).bidAndClose(bob, carol, wad("1"), 2n ** 255n),
      ).to.be.revertedWithCustomError(sys.auction, "AccountHealthy");

      // The feed returns at σ 100%: Bob is liquidatable, and his auction is there to bid on.
      await setFeedPrice(sys.volFeeds.ETH, "1");
      const back = await sys.engine.health(bob);
      expect(back.maintenanceRequirement).to.be.closeTo(wad("1546.52"), wad("0.01"));
      expect(back.equityMaintenance).to.be.lessThan(back.maintenanceRequirement);
      expect(await sys.auction.isFrozen(bob)).to.equal(true);
      await expect(sys.auction.connect(sys.carol).bidAndClose(bob, carol, wad("1"), 2n ** 255n)).to.emit(
        sys.auction,
        "AuctionEnded",
      );
    });
  });

  describe("F2 in numbers: what the floor price buys on the code before the fix", function () {
    it("counts 1,000,000 LUNA bought at 0.005 as no more than their floor-free value", async function () {
      const sys = await loadFixture(deploySystem);
      const feed = await ethers.deployContract("CircuitBreakerAggregatorMock", [
        8,
        80n * 10n ** 8n,
        10n ** 7n,
        10n ** 14n,
      ]);
      const LUNA = assetId("LUNA");
      const luna = await deployToken("Terra", "LUNA", 18);
      // The deployments' convention, price / 1000: before the fix accepted; after it refused, so the
      // listing uses a floor above the aggregator's.
      const configure = (minPrice: bigint) =>
        sys.router.configureAsset(LUNA, {
          primary: feed,
          primaryHeartbeat: 86_400,
          secondaries: [],
          secondaryHeartbeats: [],
          minPrice,
          maxPrice: wad("80000"),
          maxDeviation: 0n,
        });
      await configure(wad("0.08")).catch(() => configure(wad("0.2")));
      await sys.vault.listCollateral(luna, LUNA, wad("0.8"), wad("0.85"), wad("10000000"), false);
      await (await feed.report(5n * 10n ** 5n)).wait(); // the market at 0.005; the feed at its floor

      const mallory = await openAccount(sys, sys.carol, MarginMode.CROSS, []);
      await mintAndApprove(luna, sys.carol, await sys.vault.getAddress(), wad("1000000"));
      await sys.vault.connect(sys.carol).deposit(mallory, luna, wad("1000000"));
      // Before the fix: equity_IM 80,000 USD (1,000,000 × 0.10 × 0.8) backing new risk against the pool,
      // for 5,000 USD of tokens. After it: the price fails closed, and so does any use of it.
      await expect(sys.engine.health(mallory)).to.be.revertedWithCustomError(sys.router, "PriceOutOfBounds");
      await expect(
        trade(sys.perps, sys.carol, mallory, sys.markets.ETH, wad("100")),
      ).to.be.revertedWithCustomError(sys.router, "PriceOutOfBounds");
    });
  });
});
