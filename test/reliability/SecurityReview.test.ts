import { expect } from "chai";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import { ethers, network } from "hardhat";
import fc from "fast-check";
import type { ContractTransactionResponse } from "ethers";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  EXIT_DELAY,
  HOLDING_PERIOD,
  MarginMode,
  WAD,
  deploySystem,
  deploySystemWithoutHoldingPeriod,
  fundInsurance,
  openAccount,
  wad,
  type System,
  atLatestTimestamp,
  eventOf,
} from "../shared/system";
import {
  absorbAfterAuction,
  advanceTo,
  frozenLongAndPartner,
  closePosition,
  listPerpMarket,
  marketParams,
  mineAt,
  refreshFeeds,
  trade,
  unwindPremium,
  backstopLong100,
} from "../shared/perps";
import { assetId, setFeedPrice } from "../shared/oracles";
import { mintAndApprove } from "../shared/tokens";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { sdkClient } from "../shared/sdk";
import { accountHealth, getAccountState, preview, quoteBidFromHealth } from "../../sdk/src";

/**
 * Bugs found by the security review of 2026-12-02, each kept as a regression test of the attack that
 * exploited it. The attacks run end to end and must now fail (or gain nothing).
 */
const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;

/** The auction event `name` of a transaction's receipt. */
async function auctionEvent(sys: System, tx: ContractTransactionResponse, name: string) {
  return eventOf(await tx.wait(), sys.auction, name);
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
  // Carol's shares are past their holding period before anything happens.
  await time.increase(HOLDING_PERIOD);
  await refreshFeeds(sys);
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

/** Largest USDC amount `account` can withdraw now (binary search over eth_call), then withdraws it. */
async function withdrawAll(
  sys: Awaited<ReturnType<typeof deployOptionsSystem>>,
  account: bigint,
): Promise<bigint> {
  let lo = 0n;
  let hi = BigInt(await sys.vault.balanceOf(account, sys.usdc));
  while (hi - lo > USDC) {
    const mid = (lo + hi) / 2n;
    try {
      await sys.vault.connect(sys.alice).withdraw.staticCall(account, sys.usdc, mid, sys.alice.address);
      lo = mid;
    } catch {
      hi = mid;
    }
  }
  if (lo > 0n) await sys.vault.connect(sys.alice).withdraw(account, sys.usdc, lo, sys.alice.address);
  return lo;
}

describe("Security review findings", function () {
  describe("CollateralVault.deposit with a token that calls back", function () {
    /** Alice: 10 hETH (a listed token with an ERC-777-style hook), long 50 ETH, under maintenance. */
    async function hookedCollateralInAuction() {
      const sys = await deploySystem();
      const hooked = await ethers.deployContract("ReentrantToken", ["Hooked ETH", "hETH", 18]);
      await sys.vault.listCollateral(hooked, assetId("ETH"), wad("0.9"), wad("0.95"), wad("100000"), false);
      await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[hooked, wad("10")]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("50"));
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await setFeedPrice(sys.feeds.ETH, "2650");
      await sys.auction.connect(sys.keeper).startAuction(alice);
      return { sys, hooked, alice, bob };
    }

    // The deposit read the account's balance before the token's transferFrom and wrote balance + amount
    // after it; a hook bidding on the account in between had its debit overwritten, and the bidder
    // withdrew collateral that then existed twice (≈ 18,200 USD in the review's run).
    it("a hook cannot bid on the depositing account mid-deposit: no collateral is created", async function () {
      const { sys, hooked, alice, bob } = await loadFixture(hookedCollateralInAuction);
      await sys.accounts.connect(sys.bob).approve(await hooked.getAddress(), bob);
      await hooked.arm(
        await sys.auction.getAddress(),
        sys.auction.interface.encodeFunctionData("bid", [alice, bob, WAD, ethers.MaxUint256]),
      );
      await mintAndApprove(hooked, sys.alice, await sys.vault.getAddress(), wad("1"));
      await sys.vault.connect(sys.alice).deposit(alice, hooked, wad("1"));

      expect(await hooked.reentryCount()).to.equal(1n);
      expect(await hooked.lastCallSucceeded(), "the nested bid").to.equal(false);
      expect(await hooked.lastReturnData()).to.equal(
        sys.vault.interface.encodeErrorResult("ReentrancyGuardReentrantCall", []),
      );
      expect(await sys.vault.balanceOf(alice, hooked)).to.equal(wad("11"));
      expect(await sys.vault.balanceOf(bob, hooked)).to.equal(0n);
      expect(await hooked.balanceOf(sys.vault)).to.equal(await sys.vault.totalDeposits(hooked));
    });
  });

  describe("CollateralVault deposit caps", function () {
    // Found by the last review round: a cap cut is immediate and raising it back is ×2 a day, so one
    // cut to 1 wei refused an owner's 10,000 USDC cure of an account in auction for the 40 days it took
    // to undo. ARCHITECTURE.md counts owner top-ups: deposits into an account in auction are not capped.
    // Review round 32 (row 95): nor into an account below its initial requirement. The cut still refused
    // the top-up of an account the next price step would make liquidatable: the day between risk steps
    // is the owners' time to top up, and an unthrottled cut took it away.
    it("never refuses an owner's USDC top-up of an account below its initial requirement or in auction, whatever the cap", async function () {
      const sys = await deploySystem();
      const { vault, usdc, alice } = sys;
      const account = await openAccount(sys, alice, MarginMode.CROSS, [[usdc, 5_000n * USDC]]);
      await trade(sys.perps, alice, account, sys.markets.ETH, wad("10"));
      await vault.setDepositCap(usdc, 1n);
      await mintAndApprove(usdc, alice, await vault.getAddress(), 30_000n * USDC);
      // The SDK's preview checks the cap as the vault does.
      const client = await sdkClient(sys, alice);
      const topUp = { type: "deposit", token: await usdc.getAddress(), amount: 10_000n * USDC } as const;
      const topUpRefused = async (refused: boolean) => {
        expect((await preview(client, account, topUp)).revert?.name).to.equal(
          refused ? "DepositCapExceeded" : undefined,
        );
        if (refused) {
          await expect(
            vault.connect(alice).deposit(account, usdc, topUp.amount),
          ).to.be.revertedWithCustomError(vault, "DepositCapExceeded");
        } else await vault.connect(alice).deposit(account, usdc, topUp.amount);
      };
      // Above its initial requirement, more USDC is idle and the cap binds.
      await topUpRefused(true);
      // ETH falls until the account is below its initial requirement, though not yet liquidatable.
      let price = 3_000;
      let h = await sys.engine.health(account);
      while (h.equityInitial >= h.initialRequirement) {
        price -= 10;
        await setFeedPrice(sys.feeds.ETH, String(price));
        h = await sys.engine.health(account);
      }
      expect(h.equityMaintenance).to.be.at.least(h.maintenanceRequirement);
      // Review round 34: up to its shortfall. 10,000 USDC is far past it (more would be idle, and any
      // account a tick under its requirement took any amount past the cap), the shortfall itself passes.
      await topUpRefused(true);
      const shortfall = (BigInt(h.initialRequirement) - h.equityInitial) / 10n ** 12n;
      const cure = { ...topUp, amount: shortfall };
      expect((await preview(client, account, cure)).revert).to.equal(undefined);
      await vault.connect(alice).deposit(account, usdc, shortfall);
      // In auction, uncapped (two top-ups: 25,000 USDC facing a 10 ETH long: ETH 1,600 takes 14,000).
      await setFeedPrice(sys.feeds.ETH, "1600");
      await sys.auction.connect(sys.keeper).startAuction(account);
      await topUpRefused(false);
      await topUpRefused(false);
      await sys.auction.endAuction(account); // cured
      expect(await sys.auction.isFrozen(account)).to.equal(false);
    });

    // Review round 14 (row 55): with every deposit into an account in auction uncapped, an owner put a
    // small account of its own in auction (the flag reward came back to it), deposited 1,000 WBTC
    // against a 10 WBTC cap and ended the auction, all in one transaction. Only quote cures are uncapped.
    it("keeps capping other tokens in auction: a self-flagged account cannot take WETH past its cap", async function () {
      const sys = await deploySystem();
      const { vault, weth, alice } = sys;
      const account = await openAccount(sys, alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
      await trade(sys.perps, alice, account, sys.markets.ETH, wad("10"));
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.connect(alice).startAuction(account);
      await vault.setDepositCap(weth, wad("10"));
      await mintAndApprove(weth, alice, await vault.getAddress(), wad("1000"));
      const client = await sdkClient(sys, alice);
      const weths = { type: "deposit", token: await weth.getAddress(), amount: wad("1000") } as const;
      expect((await preview(client, account, weths)).revert?.name).to.equal("DepositCapExceeded");
      await expect(vault.connect(alice).deposit(account, weth, wad("1000"))).to.be.revertedWithCustomError(
        vault,
        "DepositCapExceeded",
      );
      expect(await vault.balanceOf(account, weth)).to.equal(0n);
    });
  });

  describe("PerpMarket closing trades", function () {
    // Reducing trades ran no check, so once Bob swung the skew from +300 to −200 the frozen account
    // closed at ~1,820 (oracle 2,800): equity at mark +39,482 → −254,800. Bob bought his short back at
    // the premium's other end and withdrew 184,320 USDC more than the pair put in; the pool paid it.
    it("a close that pays a skew premium may not make the account insolvent", async function () {
      const { sys, a, b } = await loadFixture(frozenLongAndPartner);
      const poolAssets = await sys.pool.totalAssets();
      await trade(sys.perps, sys.bob, b, sys.markets.ETH, -wad("500"));
      // The SDK's preview predicts the revert the chain raises.
      const client = await sdkClient(sys, sys.alice);
      const p = await preview(client, a, {
        type: "trade",
        marketId: sys.markets.ETH,
        sizeDelta: -wad("300"),
      });
      expect(p.revert?.name).to.equal("InsolventAfterTrade");
      await expect(
        trade(sys.perps, sys.alice, a, sys.markets.ETH, -wad("300")),
      ).to.be.revertedWithCustomError(sys.engine, "InsolventAfterTrade");
      // Bob's round trip alone earns nothing back from the pool but his fees.
      await trade(sys.perps, sys.bob, b, sys.markets.ETH, wad("500"));
      expect(await sys.vault.balanceOf(b, sys.usdc)).to.be.lessThan(400_000n * USDC);
      expect(await sys.pool.totalAssets()).to.be.at.least(poolAssets);
    });

    // Found by the review of the fix: with only equity ≥ 0 required, Alice closed 61 ETH into the
    // swung skew, spent 39,436 of her 39,473 equity on the premium and kept 239 ETH open; a 0.5% drop
    // then left 4,633 USDC to the pool and the fund while Bob kept 84,454.
    it("a close that pays a skew premium may not leave an unhealthy account further below maintenance", async function () {
      const { sys, a, b } = await loadFixture(frozenLongAndPartner);
      await trade(sys.perps, sys.bob, b, sys.markets.ETH, -wad("500"));
      for (const size of ["61", "10"]) {
        await expect(
          trade(sys.perps, sys.alice, a, sys.markets.ETH, -wad(size)),
        ).to.be.revertedWithCustomError(sys.engine, "MaintenanceShortfallIncreased");
      }
    });

    it("an unhealthy account can still close without a premium, or when its own side holds the skew", async function () {
      const { sys, a } = await loadFixture(frozenLongAndPartner);
      const before = await sys.engine.health(a);
      // The skew is Alice's own +300: selling into it is paid a premium.
      await trade(sys.perps, sys.alice, a, sys.markets.ETH, -wad("100"));
      const after = await sys.engine.health(a);
      expect((await sys.perps.position(a, sys.markets.ETH)).size).to.equal(wad("200"));
      expect(after.equityMaintenance - after.maintenanceRequirement).to.be.greaterThan(
        before.equityMaintenance - before.maintenanceRequirement,
      );
    });
  });

  describe("OptionMarket settlement", function () {
    /** Carol holds 100 calls long in one account and 100 short in another: the pool is flat. */
    async function bothSidesSettled() {
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const longAccount = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      const shortAccount = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
      await tradeOption(sys.options, sys.carol, longAccount, call, wad("100"));
      await tradeOption(sys.options, sys.carol, shortAccount, call, -wad("100"));
      await advanceTo(sys, expiry);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "3600"); // each call pays 600
      await sys.options.settleSeries(call, round);
      return { ...sys, call, longAccount, shortAccount };
    }

    // Settling one side of a series the pool was flat in gave the pool a position the engine did not
    // list: its 60,000 USD claim on the short side was missing from the share price until the short
    // settled, and an LP depositing in between took 30,618 USD from the others.
    it("settling one side registers the pool's new position: the share price does not move", async function () {
      const sys = await loadFixture(bothSidesSettled);
      const before = await sys.pool.totalAssets();
      await sys.options.settleAccount(sys.longAccount, sys.call);
      expect(await sys.options.positionSize(sys.poolAccountId, sys.call)).to.equal(wad("100"));
      expect((await sys.engine.accountMarkets(sys.poolAccountId)).map((k) => k.marketId)).to.include(
        sys.call,
      );
      // The pool paid 60,000 and is owed 60,000 by the short side: its assets are unchanged (±1 unit).
      const between = await sys.pool.totalAssets();
      expect(between).to.be.closeTo(before, 1n);

      await mintAndApprove(sys.usdc, sys.carol, await sys.pool.getAddress(), 1_000_000n * USDC);
      await sys.pool.connect(sys.carol).deposit(1_000_000n * USDC, sys.carol.address);
      await sys.options.settleAccount(sys.shortAccount, sys.call);
      expect((await sys.engine.accountMarkets(sys.poolAccountId)).map((k) => k.marketId)).to.not.include(
        sys.call,
      );
      const redeemable = await sys.pool.previewRedeem(await sys.pool.balanceOf(sys.carol.address));
      expect(redeemable).to.be.at.most(1_000_000n * USDC);
    });
  });

  describe("MarginEngine's short-option floor", function () {
    /** Alice writes 10 ATM 30-day calls and can buy 10 puts struck at a tenth of spot. */
    async function shortCalls() {
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(30n * DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const farPut = await listSeries(sys.options, "ETH", "300", expiry, false);
      const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, account, call, -wad("10"));
      return { ...sys, farPut, account };
    }

    // Netting contracts let 10 puts struck at 300, bought for 9 USDC, cancel the whole floor of 10 short
    // ATM calls (10 · 5% · 3,000 = 1,500 USD): IM fell from 4,407 to 2,968.
    it("is not cancelled by nearly worthless far-out-of-the-money longs", async function () {
      const sys = await loadFixture(shortCalls);
      const before = await sys.engine.health(sys.account);
      const cash = await sys.vault.balanceOf(sys.account, sys.usdc);
      await tradeOption(sys.options, sys.alice, sys.account, sys.farPut, wad("10"));
      const after = await sys.engine.health(sys.account);
      const spent = (cash - (await sys.vault.balanceOf(sys.account, sys.usdc))) * 10n ** 12n;
      // The puts offset the floor only as far as they are worth it: at most what they cost.
      expect(before.initialRequirement - after.initialRequirement).to.be.at.most(spent);
    });

    // Review round 15 (row 58), the parity twin of row 14. Alice: short 10 ATM puts, long 10 calls
    // struck at 1,500 and short 10 perps; Bob: short 10 ATM puts, long 10 puts struck at 1,500. The books
    // pay the same at every spot (C(1,500) = S − 1,500 + P(1,500)), but the calls were covering by their
    // whole value (~14,850, mostly intrinsic): IM 2,736.73 against Bob's 4,175.48, the puts' whole floor
    // (1,500 USD) gone for ~174 of fees, and at its IM Alice's book left bad debt after a −16% gap
    // where Bob's stayed solvent. A long now covers by its time value only.
    it("is not cancelled by deep in-the-money longs: parity twins need the same floor", async function () {
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(30n * DAY);
      const put3000 = await listSeries(sys.options, "ETH", "3000", expiry, false);
      const call1500 = await listSeries(sys.options, "ETH", "1500", expiry, true);
      const put1500 = await listSeries(sys.options, "ETH", "1500", expiry, false);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, put3000, -wad("10"));
      await tradeOption(sys.options, sys.bob, bob, put3000, -wad("10"));
      await tradeOption(sys.options, sys.alice, alice, call1500, wad("10"));
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("10"));
      await tradeOption(sys.options, sys.bob, bob, put1500, wad("10"));
      const [a, b] = [await sys.engine.health(alice), await sys.engine.health(bob)];
      // The same floor (1,500 USD) in both; what is left apart is the Taylor grid on different Greeks.
      const floor = wad("1500");
      for (const [x, y] of [
        [a.initialRequirement, b.initialRequirement],
        [a.maintenanceRequirement, b.maintenanceRequirement],
      ]) {
        expect(x > y ? x - y : y - x).to.be.lessThan(floor / 10n);
      }
      // And the calls' own exposure says why: worth ~14,850, of which ~13 USD is time value.
      const e = await sys.options.exposure(
        alice,
        call1500,
        wad("3000"),
        await sys.router.getVolatility(assetId("ETH")),
      );
      expect(e.value).to.be.greaterThan(wad("14800"));
      expect(e.timeValue).to.be.lessThan(e.value - wad("14800"));
    });
  });

  describe("LiquidityPool around an option expiry", function () {
    /**
     * Alice buys 1,000 one-day ATM calls from the pool (pool short 1,000); Bob has 1M USDC for LP. The
     * pool delta ratio is 2: ~506 ETH of delta is beyond the default 1 (review round 27).
     */
    async function poolShortCalls() {
      const sys = await deployOptionsSystem({ poolDeltaRatio: wad("2") });
      const expiry = await fromNow(DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 500_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, wad("1000"));
      await mintAndApprove(sys.usdc, sys.bob, await sys.pool.getAddress(), 1_000_000n * USDC);
      return { ...sys, expiry, call, alice };
    }

    // Expired and unsettled, the pool's short was marked at today's spot while the posted settlement
    // round fixed its payoff: with the round at 3,000 and spot at 3,300, an outsider deposited 1M,
    // called settleSeries and redeemed 1,172,520; with the round at 3,300 and spot back at 3,000, an LP
    // redeemed 299,597 above what its shares were worth after settlement. And at expiry the shorts'
    // last-hour time value dropped out of the marks at once: a deposit two minutes before redeemed
    // 1,003,777 an instant after, spot unchanged.
    it("takes no deposits and pays no withdrawals from an hour before expiry until the series settles", async function () {
      const sys = await loadFixture(poolShortCalls);
      const { pool, bob, lp } = sys;
      const lpShares = await pool.balanceOf(lp.address);
      expect(await pool.settlementPending()).to.equal(false);
      expect(await pool.maxRedeem(lp.address)).to.be.greaterThan(0n);

      await advanceTo(sys, sys.expiry - 120n); // the last hour
      expect(await pool.settlementPending()).to.equal(true);
      expect([await pool.maxDeposit(bob.address), await pool.maxWithdraw(lp.address)]).to.deep.equal([
        0n,
        0n,
      ]);
      await expect(pool.connect(bob).deposit(1_000_000n * USDC, bob.address)).to.be.revertedWithCustomError(
        pool,
        "ERC4626ExceededMaxDeposit",
      );

      await advanceTo(sys, sys.expiry);
      const settlementRound = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "3300");
      await time.increase(300);
      await setFeedPrice(sys.feeds.ETH, "3000"); // the posted round says 300 a call; spot says 0
      expect(await pool.settlementPending()).to.equal(true);
      await expect(pool.connect(lp).redeem(lpShares, lp.address, lp.address)).to.be.revertedWithCustomError(
        pool,
        "ERC4626ExceededMaxRedeem",
      );

      await sys.options.settleSeries(sys.call, settlementRound);
      await sys.options.settleAccount(sys.alice, sys.call);
      expect(await pool.settlementPending()).to.equal(false);
      await pool.connect(bob).deposit(1_000_000n * USDC, bob.address);
      expect(await pool.maxRedeem(lp.address)).to.be.greaterThan(0n);
    });
  });

  describe("an expired option nobody has settled yet", function () {
    /** Alice writes 10 one-day 3,000 calls with 20,000 USDC. */
    async function writer() {
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, account, call, -wad("10"));
      return { ...sys, expiry, call, account };
    }

    // Expired, the short was valued at today's spot with delta 0 or ±1 and no floor: its IM fell from
    // 4,191 to 60 USD, the writer withdrew 20,300 USDC, and the settlement at 3,300 left −2,940 of bad debt.
    it("keeps the writer's requirement until settlement: the settlement cannot leave bad debt", async function () {
      const sys = await loadFixture(writer);
      const before = await sys.engine.health(sys.account);
      await advanceTo(sys, sys.expiry);
      const settlementRound = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "3300");
      await time.increase(120);
      await setFeedPrice(sys.feeds.ETH, "2990"); // back out of the money before anyone settles
      const expired = await sys.engine.health(sys.account);
      expect(expired.initialRequirement).to.be.gt((before.initialRequirement * 9n) / 10n);

      await withdrawAll(sys, sys.account);
      await sys.options.settleSeries(sys.call, settlementRound);
      await sys.options.settleAccount(sys.account, sys.call);
      expect((await sys.engine.health(sys.account)).equityMark).to.be.gt(0n);
    });
  });

  describe("the LP share price values the pool's perps at what a close-out would pay", function () {
    // Before the fix the pool counted the skew premium traders had paid as its own, but the fill
    // premium is path-independent: whoever closes the skew gets it back. With 1M USDC of LP capital and
    // a 500 ETH long (fill 3,750 at spot 3,000), the attacker redeemed at a share price 18.8% up and
    // took 186,562.5 USDC from the honest LP (1,000,000 → 813,175). Fixed: PerpMarket._poolExposure
    // subtracts spot·skew²/(2·skewScale), rounded against the pool.
    it("an LP cannot profit by depositing, skewing the market and redeeming", async function () {
      // The share price alone, without the holding period (which refuses the redeem in any case).
      const sys = await loadFixture(deploySystemWithoutHoldingPeriod);
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
        await sys.perps.setMinRoundTripFee(sys.markets.ETH, 0n); // the timelock's: fees may go to 0
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
      await refreshFeeds(sys);
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

    // Found by the review of the fixes: with updateDeficit free in both directions, once ETH recovered
    // from 2,300 to 2,550 (Alice solvent again, still under maintenance) anyone could deposit 2M at the
    // share price the stale deficit depressed, lower the record and redeem: +2,309.53 USDC in one block.
    // updateDeficit now only raises; a bid lowers the record to the truth, and a bid of one wei of the
    // book costs one quote unit (review round 53), so what stops the round trip is the holding period.
    it("cannot lower a stale deficit record and redeem in the block of the deposit: updateDeficit only raises, and a 1-wei bid's lowering meets the holding period", async function () {
      const { sys, alice, bob } = await loadFixture(insolventAuction);
      const recorded = await sys.auction.pendingDeficit();
      await setFeedPrice(sys.feeds.ETH, "2550");
      expect((await sys.engine.health(alice)).equityMark).to.be.gt(0n);
      const capital = 2_000_000n * USDC;
      await mintAndApprove(sys.usdc, sys.bob, await sys.pool.getAddress(), capital);
      await sys.pool.connect(sys.bob).deposit(capital, sys.bob.address);
      await sys.auction.connect(sys.bob).updateDeficit(alice);
      expect(await sys.auction.pendingDeficit()).to.equal(recorded);
      const shares = await sys.pool.balanceOf(sys.bob.address);
      expect(await sys.pool.previewRedeem(shares)).to.be.at.most(capital);

      const paid = await sys.vault.balanceOf(bob, sys.usdc);
      await sys.auction.connect(sys.bob).bid(alice, bob, 1n, 10n);
      expect(paid - (await sys.vault.balanceOf(bob, sys.usdc))).to.equal(1n);
      expect(await sys.auction.pendingDeficit()).to.equal(0n);
      expect(await sys.pool.previewRedeem(shares)).to.be.closeTo(capital + 2_309_530_000n, 10_000n); // +2,309.53
      await expect(
        sys.pool.connect(sys.bob).redeem(shares, sys.bob.address, sys.bob.address),
      ).to.be.revertedWithCustomError(sys.pool, "SharesLocked");
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
      await refreshFeeds(sys);
      const tx = await sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256);
      const covered = await auctionEvent(sys, tx, "InsolvencyCovered");
      expect(covered.args.deficit).to.equal(deficit);
    });
  });

  // Review round 5 (session 9): the pool's absorb (LiquidationAuction.absorb).
  describe("the backstop's absorb", function () {
    /** Funding off, so that equity does not drift between blocks. */
    async function noFunding(sys: System): Promise<void> {
      await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
    }

    /** Starts `accountId`'s auction and mines a block at the end of its duration (absorbable). */
    async function absorbable(sys: System, accountId: bigint): Promise<void> {
      await sys.auction.connect(sys.keeper).startAuction(accountId);
      await mineAt(sys, BigInt(await time.latest()) + BigInt((await sys.auction.params()).duration));
    }

    /** Alice long 100 ETH on 55,000 USDC at 2,790, her auction absorbable; Carol has 500,000 USDC. */
    async function sandwichable() {
      const sys = await deploySystem();
      await noFunding(sys);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 55_000n * USDC]]);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 500_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("100"));
      await setFeedPrice(sys.feeds.ETH, "2790");
      await absorbable(sys, alice);
      return { sys, alice, carol };
    }

    // Row 28. The premium a short received on entry counted as margin; absorbed at spot, the pool then
    // owed the partner's close the premium back: +61,122 for the pair, −61,274 for the LPs.
    it("a short into a partner's skew carries no margin from the premium it received", async function () {
      const sys = await loadFixture(deploySystem);
      await noFunding(sys);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 150_000n * USDC]]);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 12_000n * USDC]]);
      await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("200")); // fills at 3,300 (skew scale 1,000)
      // Alice's short would fill at 3,300 too, 60,000 above spot: it is worth 0 at its exit (closing it
      // buys 200 into a flat skew at 3,300), so her 12,000 USDC cannot margin 600,000 of notional.
      await expect(
        trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("200")),
      ).to.be.revertedWithCustomError(sys.engine, "InsufficientMargin");
    });

    // Rows 33 and 35. When the absorb netted slices into the pool's account, the short's close premium
    // outgrew its margin: the absorbs charged it until Alice was insolvent and Bob closed into the skew
    // they had left (+32,509 for the pair, −32,552 for the LPs), and refusing such slices left Alice
    // unliquidatable while her deficit grew. The backstop keeps the slice: no premium is charged or
    // refused, the skew stays, and Bob's close pays into it.
    it("the backstop takes a short whose close premium the account cannot pay, and the pair's round trip loses", async function () {
      const sys = await loadFixture(deploySystem);
      await noFunding(sys);
      const deposits = { bob: 150_000n * USDC, alice: 110_000n * USDC };
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, deposits.bob]]);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, deposits.alice]]);
      const lpBefore = await sys.pool.totalAssets();
      await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("200"));
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -wad("200"));
      await setFeedPrice(sys.feeds.ETH, "3650");
      await absorbable(sys, alice);
      const skew = (await sys.perps.market(sys.markets.ETH)).skew;
      await sys.auction.connect(sys.carol).absorb(alice);
      // One absorb restores the account (or takes all of it); the skew did not move.
      expect(await sys.auction.isFrozen(alice)).to.equal(false);
      const h = await sys.engine.health(alice);
      expect(h.equityMaintenance).to.be.gte(h.maintenanceRequirement);
      expect((await sys.perps.market(sys.markets.ETH)).skew).to.equal(skew);
      // Bob closes into the skew; Alice closes what is left of her short.
      await closePosition(sys.perps, sys.bob, bob, sys.markets.ETH);
      const rest = await sys.perps.positionSize(alice, sys.markets.ETH);
      if (rest !== 0n) await trade(sys.perps, sys.alice, alice, sys.markets.ETH, -rest);
      const equity = async (id: bigint) => (await sys.engine.health(id)).equityMark / QUOTE_UNIT;
      const pair = (await equity(alice)) + (await equity(bob)) - deposits.alice - deposits.bob;
      const lp = (await sys.pool.totalAssets()) - lpBefore;
      console.log(
        `      pair ${Number(pair) / 1e6} USDC, LPs ${Number(lp) / 1e6} USDC (were +32,509 and −32,552)`,
      );
      expect(pair).to.be.lt(0n);
      expect(lp).to.be.gt(0n);
    });

    // Row 34. The absorb charged the account its slice's close cost at the skew in its own transaction:
    // an open caller shorted into the skew, absorbed and bought back, and Alice paid the difference
    // (Alice −29,617 against the baseline, the caller +28,732). The backstop's absorb prices nothing off
    // the skew; the caller's short still raises Alice's exit discount and with it the restoring fraction
    // (row 36), but what she loses to that goes to the LPs, and the caller pays for the round trip.
    it("a caller who trades around an absorb gains nothing: what the account loses goes to the LPs", async function () {
      const base = await loadFixture(sandwichable);
      await base.sys.auction.absorb(base.alice);
      const baseline = {
        alice: (await base.sys.engine.health(base.alice)).equityMark,
        lp: await base.sys.pool.totalAssets(),
      };

      const { sys, alice, carol } = await loadFixture(sandwichable);
      const carolBefore = (await sys.engine.health(carol)).equityMark;
      await trade(sys.perps, sys.carol, carol, sys.markets.ETH, -wad("100"));
      await sys.auction.absorb(alice);
      await closePosition(sys.perps, sys.carol, carol, sys.markets.ETH);
      const aliceLoss = (baseline.alice - (await sys.engine.health(alice)).equityMark) / QUOTE_UNIT;
      const lpGain = (await sys.pool.totalAssets()) - baseline.lp;
      const carolProfit = ((await sys.engine.health(carol)).equityMark - carolBefore) / QUOTE_UNIT;
      console.log(
        `      sandwich: account ${-Number(aliceLoss) / 1e6}, LPs +${Number(lpGain) / 1e6}, caller ${Number(carolProfit) / 1e6} USDC (were −29,617, −, +28,732)`,
      );
      expect(carolProfit).to.be.lt(0n);
      expect(lpGain).to.be.gte(aliceLoss);
    });

    // Row 31. Absorbing a settled short option moved it out of the open interest without its payout:
    // poolPremiumHeld stayed at −8,000 for good once every account had settled (loosening the vega limit).
    it("a settled option position is paid out when its slice moves, keeping the pool's payout bookkeeping exact", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const expiry = await fromNow(2n * DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 6_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, -wad("10"));
      await tradeOption(sys.options, sys.bob, bob, call, wad("4"));
      await mineAt(sys, expiry);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "3800"); // each call pays 800
      await sys.options.settleSeries(call, round);
      await absorbable(sys, alice);
      await expect(sys.auction.absorb(alice))
        .to.emit(sys.options, "PositionSettled")
        .withArgs(alice, call, -wad("10"), -wad("8000"));
      await sys.options.settleAccounts([bob], call);
      const info = await sys.options.series(call);
      expect(info.longOpenInterest + info.shortOpenInterest).to.equal(0n);
      expect(await sys.options.poolPremiumHeld()).to.equal(0n);
    });

    // Found with the backstop account (session 10): the pool closed deposits and withdrawals around a
    // settlement only for series its own account held. Where other traders offset the backstop's
    // absorbed series, the pool's account holds none of it, yet the backstop's value still jumps at
    // expiry and settlement.
    it("closes the pool around the expiry of a series only the backstop and traders hold", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const expiry = await fromNow(DAY);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 6_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, -wad("10"));
      await tradeOption(sys.options, sys.bob, bob, call, wad("10"));
      await setFeedPrice(sys.feeds.ETH, "3500");
      await absorbable(sys, alice);
      await sys.auction.absorb(alice);
      const backstop = await sys.auction.backstopAccountId();
      expect(await sys.options.positionSize(backstop, call)).to.be.lessThan(0n);
      expect(await sys.engine.accountMarkets(sys.poolAccountId)).to.deep.equal([]);
      expect(await sys.pool.settlementPending()).to.equal(false);
      await mineAt(sys, expiry - 120n); // the last hour
      expect(await sys.pool.settlementPending()).to.equal(true);
      expect(await sys.pool.maxWithdraw(sys.lp.address)).to.equal(0n);
    });

    // Row 29. An absorb into the pool's account released the close-out premium of a slice that reduces
    // the skew into the share price: deposit, absorb, redeem in one block made 4,491 USDC on 1,000,000.
    // The backstop keeps the slice, so the share price moves by the discount alone.
    it("an LP sandwiching the absorb gets only its share of the discount", async function () {
      // The share price alone, without the holding period (which refuses the redeem in any case).
      const sys = await loadFixture(deploySystemWithoutHoldingPeriod);
      await noFunding(sys);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 55_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("100"));
      await setFeedPrice(sys.feeds.ETH, "2790");
      await absorbable(sys, alice);
      const h = await sys.engine.health(alice);
      const amount = 1_000_000n * USDC;
      await mintAndApprove(sys.usdc, sys.carol, await sys.pool.getAddress(), amount);
      await sys.pool.connect(sys.carol).deposit(amount, sys.carol.address);
      const before = await sys.pool.totalAssets();
      const bid = await auctionEvent(sys, await sys.auction.absorb(alice), "AuctionBid");
      const [, , filled] = bid.args as unknown as bigint[];
      // The share price moves by the discount on the slice alone (up to rounding): M·f·dmax.
      const slice = (h.equityMark * filled) / WAD / QUOTE_UNIT;
      const gain = (await sys.pool.totalAssets()) - before;
      expect(gain).to.be.lte((slice * 10n) / 100n + 2n);
      const shares = await sys.pool.balanceOf(sys.carol.address);
      await sys.pool.connect(sys.carol).redeem(shares, sys.carol.address, sys.carol.address);
      const profit = (await sys.usdc.balanceOf(sys.carol.address)) - amount;
      console.log(`      sandwich profit ${Number(profit) / 1e6} USDC on 1,000,000 (was 4,490.77)`);
      expect(profit).to.be.lte((gain * amount) / before + 2n);
    });
  });

  describe("the backstop account (review round 7)", function () {
    const withFunding = () => backstopLong100({ funding: true });
    // ~0.35 of the pool's ~1,000,000 USDC: ~134 ETH at 2,600.
    const tightDeltaLimit = () => backstopLong100({ maxPoolDeltaRatio: wad("0.35") });
    const withoutHoldingPeriod = () => backstopLong100({ holdingPeriod: 0n });

    // Row 38. Funding read the skew, which counts the backstop's long as a trader's: with Carol short 50
    // against the backstop's long 100, the LPs were really long 50, yet the skew read +50 and longs paid:
    // Carol collected 11,754 from the LPs in 10 days. Funding now reads the skew without the backstop
    // (−50): Carol, short on the side the LPs need taken, pays.
    it("a short against the backstop's long pays funding to the LPs, whose real exposure is long", async function () {
      const { sys } = await loadFixture(withFunding);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.carol, carol, sys.markets.ETH, -wad("50"));
      const carolStart = (await sys.engine.health(carol)).equityMark;
      const lpStart = await sys.pool.totalAssets();
      for (let day = 0; day < 10; day++) {
        await time.increase(DAY);
        await refreshFeeds(sys);
        await sys.perps.accrueFunding(sys.markets.ETH);
      }
      expect((await sys.perps.market(sys.markets.ETH)).fundingRate).to.be.lessThan(0n); // shorts pay
      const carolGain = ((await sys.engine.health(carol)).equityMark - carolStart) / QUOTE_UNIT;
      const lpChange = (await sys.pool.totalAssets()) - lpStart;
      console.log(
        `      10 days at 2,600: Carol (short 50) ${Number(carolGain) / 1e6}, LPs +${Number(lpChange) / 1e6} USDC (were +11,754 and −11,754)`,
      );
      expect(carolGain).to.be.lessThan(-5_000n * USDC);
      expect(lpChange).to.be.within(-carolGain - 2n, -carolGain + 2n);
      // The SDK accrues funding the same way: an hour after the last accrual, its health of Carol is
      // the engine's at the same block.
      await time.increase(3600);
      await refreshFeeds(sys);
      const state = await getAccountState(await sdkClient(sys, sys.carol), { accountId: carol });
      const chain = await sys.engine.health(carol, { blockTag: state.blockNumber });
      expect(accountHealth(state).equityMark).to.equal(chain.equityMark);
    });

    // Row 38, the limit half. The pool delta limit read |skew|, which counts the backstop's long as a
    // trader's: shorts that offset it looked like they shrank the LPs' delta, and the LPs ended long
    // 230 ETH against a limit of ~134. It now reads the LPs' delta, backstop − skew.
    it("the pool delta limit counts the backstop's book as the LPs'", async function () {
      const { sys } = await loadFixture(tightDeltaLimit);
      expect((await sys.perps.market(sys.markets.ETH)).backstopSize).to.equal(wad("100"));
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 400_000n * USDC]]);
      await trade(sys.perps, sys.carol, carol, sys.markets.ETH, -wad("100")); // the LPs: long 0 → 100
      const client = await sdkClient(sys, sys.carol);
      const p = await preview(client, carol, {
        type: "trade",
        marketId: sys.markets.ETH,
        sizeDelta: -wad("130"),
      });
      expect(p.revert?.name).to.equal("PoolDeltaLimitExceeded");
      await expect(
        trade(sys.perps, sys.carol, carol, sys.markets.ETH, -wad("130")),
      ).to.be.revertedWithCustomError(sys.perps, "PoolDeltaLimitExceeded");
      // What fits under the limit still trades: 30 more takes the LPs to 130 ETH.
      await trade(sys.perps, sys.carol, carol, sys.markets.ETH, -wad("30"));
    });

    // Row 39. Unwinding a backstop under water paid a skew premium the engine's reduction checks refused
    // (MaintenanceShortfallIncreased at 2,650, InsolventAfterTrade at 2,590 for any size).
    it("unwinds a backstop under water even when the reduction pays a premium", async function () {
      const { sys, backstop } = await loadFixture(backstopLong100);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 150_000n * USDC]]);
      await trade(sys.perps, sys.bob, bob, sys.markets.ETH, -wad("200")); // skew −100: selling pays
      await setFeedPrice(sys.feeds.ETH, "2590");
      expect(await sys.pool.backstopValue()).to.be.lessThan(0n);
      const deadline = BigInt(await time.latest()) + 3600n;
      await sys.auction.unwindBackstop(sys.perps, sys.markets.ETH, -wad("10"), 0n, deadline);
      await sys.auction.unwindBackstop(sys.perps, sys.markets.ETH, -wad("90"), 0n, deadline);
      expect(await sys.perps.positionSize(backstop, sys.markets.ETH)).to.equal(0n);
    });

    // Row 40. The pool's valuation deducts what closing out the whole skew would pay back, the
    // backstop's share included; an unwind of the backstop releases that share into the share price at
    // once, so an LP who sees it coming deposits before and redeems after.
    it("without the holding period, an LP sandwiching an unwind keeps its share of the released close-out deduction", async function () {
      const { sys } = await loadFixture(withoutHoldingPeriod);
      const amount = 1_000_000n * USDC;
      await mintAndApprove(sys.usdc, sys.carol, await sys.pool.getAddress(), amount);
      await sys.pool.connect(sys.carol).deposit(amount, sys.carol.address);
      const released = (await unwindPremium(sys.perps, sys.markets.ETH, wad("2600"))) / QUOTE_UNIT;
      const deadline = BigInt(await time.latest()) + 3600n;
      await sys.auction.unwindBackstop(sys.perps, sys.markets.ETH, -wad("100"), 0n, deadline);
      const shares = await sys.pool.balanceOf(sys.carol.address);
      await sys.pool.connect(sys.carol).redeem(shares, sys.carol.address, sys.carol.address);
      const profit = (await sys.usdc.balanceOf(sys.carol.address)) - amount;
      console.log(
        `      released ${Number(released) / 1e6}; sandwich profit ${Number(profit) / 1e6} on 1,000,000`,
      );
      // Half the pool after the deposit: about half the release, less the fee's insurance share.
      expect(profit).to.be.gt(released / 3n);
      expect(profit).to.be.lt(released / 2n);
    });

    it("with the holding period, the sandwich cannot redeem after the unwind: it holds the pool's book for a day", async function () {
      const { sys } = await loadFixture(backstopLong100);
      const amount = 1_000_000n * USDC;
      await mintAndApprove(sys.usdc, sys.carol, await sys.pool.getAddress(), amount);
      await sys.pool.connect(sys.carol).deposit(amount, sys.carol.address);
      const unlocksAt = BigInt(await time.latest()) + HOLDING_PERIOD;
      const deadline = BigInt(await time.latest()) + 3600n;
      await sys.auction.unwindBackstop(sys.perps, sys.markets.ETH, -wad("100"), 0n, deadline);
      const shares = await sys.pool.balanceOf(sys.carol.address);
      await expect(sys.pool.connect(sys.carol).redeem(shares, sys.carol.address, sys.carol.address))
        .to.be.revertedWithCustomError(sys.pool, "SharesLocked")
        .withArgs(sys.carol.address, shares, 0n, unlocksAt);
      // Nor can the shares leave for an address that could redeem them.
      await expect(
        sys.pool.connect(sys.carol).transfer(sys.bob.address, shares),
      ).to.be.revertedWithCustomError(sys.pool, "SharesLocked");
    });
  });

  describe("the holding period (review round 9)", function () {
    /**
     * Two LPs: the seed LP (1,000,000) and Carol (500,000, past her holding period). Alice is long
     * 100 ETH from 3,000 against the pool; an oracle round to 3,150 (the pool loses ~15,000) is coming.
     */
    async function poolShortBeforeRound() {
      const sys = await deploySystem();
      await mintAndApprove(sys.usdc, sys.carol, await sys.pool.getAddress(), 500_000n * USDC);
      await sys.pool.connect(sys.carol).deposit(500_000n * USDC, sys.carol);
      const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, account, sys.markets.ETH, wad("100"));
      await time.increase(HOLDING_PERIOD);
      await refreshFeeds(sys);
      return sys;
    }

    // Row 46. The lock binds shares after they are minted, so without an exit delay the downward side
    // of a foreseeable jump is still there for an LP whose shares are free: out before, back in after.
    it("without an exit delay, an LP with free shares who redeems before a losing round and deposits after skips its share of the loss", async function () {
      const sys = await loadFixture(poolShortBeforeRound);
      const { pool, usdc, feeds, carol } = sys;
      const shares = await pool.balanceOf(carol);
      const round = BigInt(await time.latest()) + 10n;
      const passive = await (async () => {
        const snapshot = await takeSnapshot();
        await time.setNextBlockTimestamp(round);
        await setFeedPrice(feeds.ETH, "3150");
        const value = await pool.convertToAssets(shares);
        await snapshot.restore();
        return value;
      })();
      await time.setNextBlockTimestamp(round - 1n);
      await pool.connect(carol).redeem(await pool.maxRedeem(carol), carol, carol);
      await time.setNextBlockTimestamp(round);
      await setFeedPrice(feeds.ETH, "3150");
      const cash = await usdc.balanceOf(carol);
      // The approval's block is pinned too: unpinned, it takes the wall clock's next second whenever one
      // ticks over, and the deposit's pin to `round` is then refused as going back in time.
      await time.setNextBlockTimestamp(round);
      await usdc.connect(carol).approve(await pool.getAddress(), cash);
      await time.setNextBlockTimestamp(round);
      await pool.connect(carol).deposit(cash, carol);
      const sandwiched = await pool.convertToAssets(await pool.balanceOf(carol));
      console.log(
        `      holding through: ${Number(passive) / 1e6}; out and back in: ${Number(sandwiched) / 1e6} USDC`,
      );
      // About a third of the ~15,000 loss (her share of the pool) moves to the other LP.
      expect(sandwiched - passive).to.be.greaterThan(5_000n * USDC);
      expect(await pool.unlockedShares(carol)).to.equal(0n); // locked again, which costs a stayer nothing
    });

    it("with the deployments' exit delay, an LP who asks to leave before a losing round is paid the share price after it", async function () {
      const sys = await loadFixture(poolShortBeforeRound);
      const { pool, usdc, feeds, carol } = sys;
      await pool.setExitDelay(EXIT_DELAY);
      const shares = await pool.balanceOf(carol);
      const round = BigInt(await time.latest()) + 10n;
      await time.setNextBlockTimestamp(round - 1n);
      await pool.connect(carol).requestRedeem(shares);
      const [, requested, claimableAt] = await pool.redeemRequest(carol);
      await time.setNextBlockTimestamp(round);
      await setFeedPrice(feeds.ETH, "3150");
      await mineAt(sys, claimableAt);
      // What her shares are worth at the claim's second had she held them (the pool's short has
      // earned an hour of funding since the round).
      const held = await pool.convertToAssets(shares);
      await time.setNextBlockTimestamp(claimableAt);
      await pool.connect(carol).claimRedeem(shares, carol, 0n);
      const paid = await usdc.balanceOf(carol);
      console.log(
        `      asked for at the old price: ${Number(requested) / 1e6}; paid: ${Number(paid) / 1e6}; held: ${Number(held) / 1e6} USDC`,
      );
      expect(paid).to.equal(held); // not a unit more than staying in
      // Her third of the ~15,000 loss, less the day's funding her shares earned.
      expect(requested - paid).to.be.greaterThan(4_000n * USDC);
    });

    // Review round 12, F1: a request cancelled after its window gave every share back, gains included,
    // so an unused request cost nothing and an LP could hold one at all times, an exit at the request's
    // price ready for a loss it saw coming (4,656.25 moved onto the other LP in the review's test).
    it("an unused redeem request is no free option: cancelled, it comes back worth what it asked, the rise staying with the LPs", async function () {
      const sys = await loadFixture(poolShortBeforeRound);
      const { pool, feeds, lp, carol } = sys;
      await pool.setExitDelay(EXIT_DELAY);
      const shares = await pool.balanceOf(carol);
      await pool.connect(carol).requestRedeem(shares);
      const [, requested, claimableAt, claimableUntil] = await pool.redeemRequest(carol);
      // Alice's long loses 15,000 to the pool (ETH 3,000 → 2,850); Carol lets the window pass.
      await setFeedPrice(feeds.ETH, "2850");
      await mineAt(sys, claimableUntil + 1n);
      const lpBefore = await pool.convertToAssets(await pool.balanceOf(lp));
      await time.setNextBlockTimestamp(claimableUntil + 1n);
      await pool.connect(carol).cancelRedeemRequest();
      const carolAfter = await pool.convertToAssets(await pool.balanceOf(carol));
      const lpAfter = await pool.convertToAssets(await pool.balanceOf(lp));
      console.log(
        `      requested ${Number(requested) / 1e6}, back after the window ${Number(carolAfter) / 1e6}; the other LP +${Number(lpAfter - lpBefore) / 1e6} USDC`,
      );
      expect(carolAfter).to.be.lte(requested);
      expect(lpAfter - lpBefore).to.be.greaterThan(4_000n * USDC); // her part of the 15,000 gain
      expect(claimableUntil - claimableAt).to.equal(7_200n);
    });
  });

  describe("a quote depeg (review round 11)", function () {
    const QUOTE_UNIT = 10n ** 12n;

    /** Funding off, so that values do not drift between blocks. */
    async function withoutFunding() {
      const sys = await deploySystem();
      await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
      return sys;
    }

    // Finding F1: the backstop's collateral was valued in USD (its USDC at the oracle's 0.95) and added
    // to the pool's own USDC at 1:1. Alice (60,000 USDC, long 100 ETH) is absorbed insolvent at 2,400:
    // the backstop holds 75,000 USDC. Carol deposited 1,000,000 at USDC 0.95 and redeemed at 1.00 for
    // +1,820.94, taken from the seed LP.
    it("the LP share price counts the backstop's USDC at face: a depeg moves nothing, and a deposit during it gains nothing", async function () {
      const sys = await loadFixture(withoutFunding);
      await fundInsurance(sys, 50_000n * USDC);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 60_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("100"));
      await setFeedPrice(sys.feeds.ETH, "2400");
      const backstop = await absorbAfterAuction(sys, alice);
      expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.be.greaterThan(70_000n * USDC);

      const atPeg = await sys.pool.totalAssets();
      await setFeedPrice(sys.feeds.USDC, "0.95");
      expect(await sys.pool.totalAssets()).to.equal(atPeg);
      const amount = 1_000_000n * USDC;
      await mintAndApprove(sys.usdc, sys.carol, await sys.pool.getAddress(), amount);
      await sys.pool.connect(sys.carol).deposit(amount, sys.carol.address);
      await time.increase(HOLDING_PERIOD);
      await refreshFeeds(sys);
      await setFeedPrice(sys.feeds.USDC, "1");
      const shares = await sys.pool.balanceOf(sys.carol.address);
      await sys.pool.connect(sys.carol).redeem(shares, sys.carol.address, sys.carol.address);
      // Rounding only (virtual shares): not a unit of profit.
      expect(await sys.usdc.balanceOf(sys.carol.address)).to.be.within(amount - 1n, amount);
    });

    // Finding F2: payments were f·equityMark with the account's USDC at 0.95 in it, converted to USDC
    // at 1:1. A depeg alone made Alice liquidatable, and a 2% discount gave the bidder 1,052.35
    // instead of ~123.
    it("a bid during a depeg pays the slice's worth in USDC: the bidder gains the discount, not the depeg", async function () {
      const sys = await loadFixture(withoutFunding);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 60_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("100"));
      await setFeedPrice(sys.feeds.ETH, "2780");
      await setFeedPrice(sys.feeds.USDC, "0.95");
      await sys.auction.startAuction(alice);
      await setFeedPrice(sys.feeds.USDC, "1");
      const bobBefore = (await sys.engine.health(bob)).equityMark / QUOTE_UNIT;
      await setFeedPrice(sys.feeds.USDC, "0.95");
      await atLatestTimestamp();
      const [filled, payment] = await sys.auction.quoteBid(alice, WAD);
      const discount = await sys.auction.currentDiscount(alice);
      await atLatestTimestamp();
      await sys.auction.connect(sys.bob).bid(alice, bob, WAD, payment);
      await setFeedPrice(sys.feeds.USDC, "1");
      const bobGain = (await sys.engine.health(bob)).equityMark / QUOTE_UNIT - bobBefore;
      // The slice is worth payment / (1 − d) in USDC; the bidder keeps d of it.
      const intended = (payment * discount) / (WAD - discount);
      expect(filled).to.be.greaterThan(0n);
      expect(bobGain).to.be.closeTo(intended, 2n);
    });

    // Review round 13, F5: the insolvency premium dmax·MM is USD and was paid as USDC 1:1. The SDK's
    // pure quote, given the book's worth in quote and the quote's price, must match the chain to the
    // unit both off peg and on it, for a solvent and an insolvent book.
    for (const usdcPrice of ["1.05", "0.95"]) {
      it(`quotes bids in USDC at USDC ${usdcPrice}: the SDK's pure quote matches the chain to the unit`, async function () {
        const sys = await loadFixture(withoutFunding);
        // Insolvent at 2,400 (about −1,000 USDC on 60,000); solvent below maintenance at 2,560.
        for (const eth of ["2400", "2560"]) {
          const snapshot = await takeSnapshot();
          const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 60_000n * USDC]]);
          await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("100"));
          await setFeedPrice(sys.feeds.ETH, eth);
          await setFeedPrice(sys.feeds.USDC, usdcPrice);
          await sys.auction.startAuction(id);
          await mineAt(sys, BigInt(await time.latest()) + 600n);
          const [inQuote, usdMark] = await sys.vault.markInQuote(id);
          const h = await sys.engine.health(id);
          const { startTime } = await sys.auction.auctions(id);
          const [startDiscount, maxDiscount, penalty, duration, flagReward] = await sys.auction.params();
          const pure = quoteBidFromHealth(
            h,
            WAD,
            BigInt(await time.latest()) - startTime,
            { startDiscount, maxDiscount, penalty, duration, flagReward },
            QUOTE_UNIT,
            { mark: h.equityMark - usdMark + inQuote, quotePrice: wad(usdcPrice) },
          );
          const [filled, payment, insurancePayout] = await sys.auction.quoteBid(id, WAD);
          expect([filled, payment, insurancePayout]).to.deep.equal([
            pure.filled,
            pure.payment,
            pure.insurancePayout,
          ]);
          expect(payment + insurancePayout).to.be.greaterThan(0n);
          await snapshot.restore();
        }
      });
    }

    // Finding F2, insolvency: at USDC 0.95 an account whose book was worth +842.50 USDC read as
    // insolvent, and the fund paid the bidder 4,083.69.
    it("a book worth more USDC than it owes is sold, not paid for by the fund, during a depeg", async function () {
      const sys = await loadFixture(withoutFunding);
      await fundInsurance(sys, 50_000n * USDC);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 60_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("100"));
      await setFeedPrice(sys.feeds.ETH, "2560");
      await setFeedPrice(sys.feeds.USDC, "0.95");
      expect((await sys.engine.health(alice)).equityMark).to.be.lessThan(0n); // in USD, at 0.95
      await sys.auction.startAuction(alice);
      await mineAt(sys, BigInt(await time.latest()) + BigInt((await sys.auction.params()).duration));
      const fundBefore = await sys.insuranceFund.balance();
      const [, payment, payout] = await sys.auction.quoteBid(alice, WAD);
      expect(payout).to.equal(0n);
      expect(payment).to.be.greaterThan(0n);
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256)).not.to.emit(
        sys.auction,
        "InsolvencyCovered",
      );
      // The fund only receives the penalty.
      expect(await sys.insuranceFund.balance()).to.be.greaterThan(fundBefore);
    });
  });

  describe("the pool's limits when a partner closes (review rounds 15 and 17)", function () {
    // Row 63. The delta limit bounded the LPs' net, and closes are never refused: Alice long 330, Bob
    // shorted the skew flat, Alice bought 330 more and Bob bought back, twice: the LPs were short 990
    // ETH against a 334.6 ETH limit (2.95×). Each side of the traders' book is now bounded on its own.
    it("a perp trader cannot use a partner's short to take the LPs past their delta limit", async function () {
      const sys = await loadFixture(deploySystem);
      const { perps } = sys;
      // A deep market, so the premium does not stand in the way: only the limit (~333 ETH at 3,000).
      const eth = await listPerpMarket(
        perps,
        "ETH",
        marketParams({ skewScale: wad("1000000"), maxOpenInterest: wad("5000") }),
      );
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
      await trade(perps, sys.alice, alice, eth, wad("330"));
      await trade(perps, sys.bob, bob, eth, -wad("330")); // the book is flat
      await expect(trade(perps, sys.alice, alice, eth, wad("330"))).to.be.revertedWithCustomError(
        perps,
        "PoolDeltaLimitExceeded",
      );
      await trade(perps, sys.bob, bob, eth, wad("330")); // Bob's close is never refused
      const lpDelta = -(await perps.market(eth)).skew;
      const limit =
        ((await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)) * QUOTE_UNIT * WAD) / wad("3000");
      expect(-lpDelta).to.equal(wad("330"));
      expect(-lpDelta).to.be.at.most(limit);
    });

    // Row 59. The same with options: Bob wrote calls, Alice bought against them and Bob bought his back,
    // twice: the pool was short 1,000 calls against a ~290-call vega limit (3.41×).
    it("an option buyer cannot use a partner's writing to take the pool past its vega limit", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const { options } = sys;
      const call = await listSeries(options, "ETH", "3000", await fromNow(365n * DAY), true);
      await options.setPoolVegaRatio(assetId("ETH"), wad("0.35")); // ~300 one-year ATM calls
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 5_000_000n * USDC]]);
      await tradeOption(options, sys.alice, alice, call, wad("250"));
      await tradeOption(options, sys.bob, bob, call, -wad("250")); // the pool is flat
      await expect(tradeOption(options, sys.alice, alice, call, wad("270"))).to.be.revertedWithCustomError(
        options,
        "PoolVegaLimitExceeded",
      );
      await tradeOption(options, sys.bob, bob, call, wad("250")); // Bob's buy-back is never refused
      const [longVega, shortVega] = await options.traderVega(assetId("ETH"));
      expect(shortVega).to.equal(0n);
      const base =
        (await sys.vault.balanceOf(sys.poolAccountId, sys.usdc)) - (await options.poolPremiumHeld());
      expect(longVega).to.be.at.most((base * QUOTE_UNIT * wad("0.35")) / WAD);
    });

    // Row 71. The traders' vega sides counted the backstop's absorbed options as a trader's: after the
    // backstop took 118 of Alice's 250 written calls, Carol's write of 100 was refused (417,132 against
    // a 289,161 limit) although the traders' short side without the backstop, the LPs' whole net vega
    // then, was 276,419. The backstop's positions are the LPs' own, as in the perps' delta limit.
    it("leaves the backstop's absorbed options out of the traders' vega sides", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const { options } = sys;
      const eth = assetId("ETH");
      const call = await listSeries(options, "ETH", "3000", await fromNow(365n * DAY), true);
      await options.setPoolVegaRatio(eth, wad("0.35"));
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 180_000n * USDC]]);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 5_000_000n * USDC]]);
      await tradeOption(options, sys.alice, alice, call, -wad("250"));
      await setFeedPrice(sys.feeds.ETH, "3400");
      await sys.auction.connect(sys.keeper).startAuction(alice);
      await mineAt(sys, BigInt(await time.latest()) + 1800n);
      await sys.auction.absorb(alice);
      const backstopSize = await options.positionSize(await sys.auction.backstopAccountId(), call);
      expect(backstopSize).to.be.lessThan(0n);
      const aliceSize = await options.positionSize(alice, call);
      expect((await options.series(call)).shortOpenInterest).to.equal(-aliceSize - backstopSize);
      await tradeOption(options, sys.carol, carol, call, -wad("100"));
      // The writers' side counts Alice's rest and Carol's 100 at today's vega, not the backstop's calls.
      const [spot, vol] = await sys.router.getPriceAndVolatility(eth);
      const carolVega = -(await options.exposure(carol, call, spot, vol)).vega; // 100 contracts
      const [, shortVega] = await options.traderVega(eth);
      const expected = (carolVega * (-aliceSize + wad("100"))) / wad("100");
      expect(shortVega).to.be.closeTo(expected, expected / 10n ** 12n);
    });

    // Review round 21: every path that moves open interest or the backstop's position (an absorb that
    // nets into the backstop's opposite position, its unwind, trades beside it) subtracts what it added.
    it("returns the traders' vega sides to exactly 0 after absorbs into the backstop, its unwind and every close", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const { options } = sys;
      const call = await listSeries(options, "ETH", "3000", await fromNow(365n * DAY), true);
      const backstop = await sys.auction.backstopAccountId();
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 180_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 88_000n * USDC]]);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 5_000_000n * USDC]]);
      await tradeOption(options, sys.alice, alice, call, -wad("250"));
      await tradeOption(options, sys.bob, bob, call, wad("150"));
      await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("20"));
      await tradeOption(options, sys.carol, carol, call, -wad("40"));
      const absorbAt = async (eth: string, id: bigint) => {
        await setFeedPrice(sys.feeds.ETH, eth);
        await sys.auction.connect(sys.keeper).startAuction(id);
        await mineAt(sys, BigInt(await time.latest()) + 1800n);
        await sys.auction.absorb(id);
      };
      await absorbAt("3400", alice); // the backstop goes short Alice's calls
      const short = await options.positionSize(backstop, call);
      expect(short).to.be.lessThan(0n);
      await absorbAt("2500", bob); // Bob's long calls net into the backstop's short
      const netted = await options.positionSize(backstop, call);
      expect(netted).to.be.greaterThan(short);
      await tradeOption(options, sys.carol, carol, call, wad("15"));
      const deadline = BigInt(await time.latest()) + 3600n;
      for (const part of [netted / 2n, netted - netted / 2n]) {
        await sys.auction.unwindBackstop(options, call, -part, part > 0n ? 0n : ethers.MaxUint256, deadline);
      }
      expect(await options.positionSize(backstop, call)).to.equal(0n);
      for (const [signer, id] of [
        [sys.alice, alice],
        [sys.bob, bob],
        [sys.carol, carol],
      ] as const) {
        const size = await options.positionSize(id, call);
        if (size !== 0n) await tradeOption(options, signer, id, call, -size);
      }
      const info = await options.series(call);
      expect([info.longOpenInterest, info.shortOpenInterest]).to.deep.equal([0n, 0n]);
      expect(await options.traderVega(assetId("ETH"))).to.deep.equal([0n, 0n]);
    });

    // The same at settlement: a series whose writers' side is partly the backstop's leaves both sums.
    it("takes a settled series out of the traders' vega sides with the backstop still holding it", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const { options } = sys;
      const eth = assetId("ETH");
      const expiry = await fromNow(30n * DAY);
      const call = await listSeries(options, "ETH", "3000", expiry, true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 23_200n * USDC]]);
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 5_000_000n * USDC]]);
      await tradeOption(options, sys.alice, alice, call, -wad("50"));
      await tradeOption(options, sys.carol, carol, call, wad("15"));
      await setFeedPrice(sys.feeds.ETH, "3400");
      await sys.auction.connect(sys.keeper).startAuction(alice);
      await mineAt(sys, BigInt(await time.latest()) + 1800n);
      await sys.auction.absorb(alice);
      const backstop = await sys.auction.backstopAccountId();
      expect(await options.positionSize(backstop, call)).to.be.lessThan(0n);

      await advanceTo(sys, expiry);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "3300");
      await options.settleSeries(call, round);
      expect(await options.traderVega(eth)).to.deep.equal([0n, 0n]);
      await options.settleAccounts([alice, carol, backstop], call);
      // A new series on the underlying counts alone.
      const next = await listSeries(options, "ETH", "3300", await fromNow(30n * DAY), true);
      await tradeOption(options, sys.carol, carol, next, -wad("10"));
      const [spot, vol] = await sys.router.getPriceAndVolatility(eth);
      const carolVega = -(await options.exposure(carol, next, spot, vol)).vega;
      const [longVega, shortVega] = await options.traderVega(eth);
      expect(longVega).to.equal(0n);
      expect(shortVega).to.be.closeTo(carolVega, 10n);
    });
  });

  describe("liquidations (review rounds 19 and 20)", function () {
    /** Alice: 10,000 USDC, long 20 ETH (fill 3,030), no funding; at 2,600 her auction is started. */
    async function liquidatableLong() {
      const sys = await deploySystem();
      await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.connect(sys.keeper).startAuction(alice);
      return { sys, alice, bob, startedAt: BigInt(await time.latest()) };
    }

    // Row 66. Each bid bought f of the whole account, the USDC earlier bids had just paid into it
    // included: sold again at the discount and charged the penalty again. At the 10% maximum discount,
    // eleven 10% bids and a last restoring one took 195.61 USD from Alice where one restoring bid took
    // 114.49 (+71%). What the auction paid in is now held back from later slices.
    it("a liquidation split into many bids takes no more from the account than one restoring bid", async function () {
      const { sys, alice, bob, startedAt } = await loadFixture(liquidatableLong);
      const at = startedAt + 1800n; // the maximum discount, the same for every bid
      const before = (await sys.engine.health(alice)).equityMark;
      const bidAt = async (fraction: bigint) => {
        await time.setNextBlockTimestamp(at);
        await sys.auction.connect(sys.bob).bid(alice, bob, fraction, ethers.MaxUint256);
      };

      const snapshot = await takeSnapshot();
      await bidAt(WAD);
      const singleLoss = before - (await sys.engine.health(alice)).equityMark;
      await snapshot.restore();

      // Pieces of 10% while a piece leaves her liquidatable (bids need equity_MM < MM), then the rest.
      let bids = 0;
      for (;;) {
        const piece = await takeSnapshot();
        await bidAt(wad("0.1"));
        const h = await sys.engine.health(alice);
        if (h.equityMaintenance >= h.maintenanceRequirement) {
          await piece.restore();
          break;
        }
        bids++;
      }
      // The SDK's pure quote holds back what the bids paid in, as the chain does.
      const [inQuote, usdMark] = await sys.vault.markInQuote(alice);
      const h = await sys.engine.health(alice);
      const { startTime, paidIn } = await sys.auction.auctions(alice);
      expect(paidIn).to.be.greaterThan(0n);
      const [startDiscount, maxDiscount, penalty, duration, flagReward] = await sys.auction.params();
      const pure = quoteBidFromHealth(
        h,
        WAD,
        at - startTime,
        { startDiscount, maxDiscount, penalty, duration, flagReward },
        QUOTE_UNIT,
        { mark: h.equityMark - usdMark + inQuote, quotePrice: WAD, paidIn },
      );
      const [filled, payment] = await sys.auction.quoteBid(alice, WAD);
      expect([filled, payment]).to.deep.equal([pure.filled, pure.payment]);
      await bidAt(WAD);
      const after = await sys.engine.health(alice);
      expect((await sys.auction.auctions(alice)).active).to.equal(false);
      expect(after.equityInitial).to.be.at.least(after.initialRequirement);
      const splitLoss = before - after.equityMark;
      console.log(
        `      Alice loses ${Number(singleLoss / 10n ** 14n) / 1e4} USD to one bid, ${Number(splitLoss / 10n ** 14n) / 1e4} to ${bids + 1} (was 114.49 and 195.61)`,
      );
      expect(bids).to.be.at.least(5);
      expect(splitLoss).to.be.at.most(singleLoss + wad("0.01"));
    });

    // Row 69. Where the book without what was paid in is under water, a bid sells it with the book; the
    // auction then forgot the part the slice left: after three 10% bids, a dip to 2,530 and a 10% bid,
    // paidIn fell from 327.95 to 26.57 while 321.72 was still in the account, and the restoring bid took
    // 88.39 USD from Alice, not 65.78.
    it("keeps holding back what a bid sold with an under-water book did not take", async function () {
      const { sys, alice, bob, startedAt } = await loadFixture(liquidatableLong);
      await mineAt(sys, startedAt + 1800n); // the 10% maximum discount
      const bid = (fraction: bigint) =>
        sys.auction.connect(sys.bob).bid(alice, bob, fraction, ethers.MaxUint256);
      for (let i = 0; i < 3; i++) await bid(wad("0.1"));
      const paidBefore = (await sys.auction.auctions(alice)).paidIn;
      await setFeedPrice(sys.feeds.ETH, "2530");
      const [inQuote, usdMark] = await sys.vault.markInQuote(alice);
      const mark = (await sys.engine.health(alice)).equityMark - usdMark + inQuote;
      expect(mark).to.be.at.most(paidBefore * QUOTE_UNIT); // the fallback: nothing held back
      const sold = (await auctionEvent(sys, await bid(wad("0.1")), "AuctionBid"))!.args;
      expect((await sys.auction.auctions(alice)).paidIn).to.equal(
        (paidBefore * 9n) / 10n + sold.payment - sold.penalty,
      );
    });

    // Row 68. The flag reward is paid in tokens out of the vault, whose USDC quote debt lends out: once
    // the LPs had withdrawn the rest, startAuction reverted (InsufficientLiquidity(6.06, 10)) for a
    // solvent, liquidatable account. The reward is now capped at the quote the vault holds.
    it("starts an auction when the vault's USDC is lent out, paying the flag reward it can", async function () {
      const sys = await loadFixture(deploySystem);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("10")]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20")); // the fee is quote debt
      await setFeedPrice(sys.feeds.ETH, "2150");
      const h = await sys.engine.health(alice);
      expect(h.equityMaintenance).to.be.lessThan(h.maintenanceRequirement);
      expect(h.equityMark).to.be.greaterThan(0n);
      await sys.pool.connect(sys.lp).withdraw(await sys.pool.maxWithdraw(sys.lp), sys.lp, sys.lp);
      const held = await sys.usdc.balanceOf(sys.vault);
      expect(held).to.be.lessThan(10n * USDC); // less than the 10 USDC flag reward
      await expect(sys.auction.connect(sys.keeper).startAuction(alice))
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(alice, sys.keeper.address, anyValue, anyValue, held);
    });
  });

  describe("a quote token that refuses transfers (review round 24)", function () {
    // The flag reward was the liquidation path's one token transfer: while USDC was paused every start
    // of a solvent account reverted, so no auction ran and traders kept adding risk; Alice's book was
    // first auctionable at 2,300, 4,630.30 USDC insolvent, the fund and the LPs paying.
    it("starts the auction of a solvent account while USDC is paused, without the flag reward", async function () {
      const sys = await loadFixture(deploySystem);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
      await setFeedPrice(sys.feeds.ETH, "2600");
      const h = await sys.engine.health(alice);
      expect(h.equityMaintenance).to.be.lessThan(h.maintenanceRequirement);
      expect(h.equityMark).to.be.greaterThan(0n);

      const usdc = await sys.usdc.getAddress();
      const live = await ethers.provider.getCode(usdc);
      const paused = await ethers.deployContract("PausedERC20Mock", [6]);
      await network.provider.send("hardhat_setCode", [usdc, await ethers.provider.getCode(paused)]);
      await expect(sys.usdc.transfer(sys.bob, 1n)).to.be.revertedWithCustomError(paused, "TransfersPaused");

      const balance = await sys.vault.balanceOf(alice, sys.usdc);
      await expect(sys.auction.connect(sys.keeper).startAuction(alice))
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(alice, sys.keeper.address, anyValue, anyValue, 0n);
      expect(await sys.vault.balanceOf(alice, sys.usdc)).to.equal(balance); // nothing debited
      expect(await sys.auction.pendingDeficit()).to.equal(0n);
      // Bids move balances inside the vault: the liquidation runs its course while the token is paused.
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256)).to.emit(
        sys.auction,
        "AuctionEnded",
      );
      await network.provider.send("hardhat_setCode", [usdc, live]);
    });
  });
});
