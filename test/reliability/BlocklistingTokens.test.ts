import { expect } from "chai";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { AddressLike } from "ethers";
import {
  expectQuoteLedgerBalanced,
  fundInsurance,
  MarginMode,
  openAccount,
  WAD,
  wad,
} from "../shared/system";
import { advanceTo, refreshFeeds, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { blocklistingUsdc, mintAndApprove } from "../shared/tokens";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { deploymentOf, sdkClient } from "../shared/sdk";
import { createClient, preview } from "../../sdk/src";
import type { BlocklistERC20Mock } from "../../typechain-types";

/**
 * Review round 142: a quote token that refuses transfers to or from particular addresses (USDC's and
 * USDT's blocklists) or pauses every transfer. The contracts make three external ERC-20 transfers, all
 * in `CollateralVault`: `deposit` pulls from the sender, `withdraw` pays the recipient (the LP exits and
 * the insurance fund's withdrawal go through it), and `payOutQuote` pays the flag reward to the starter
 * (inside a try in `LiquidationAuction._startAuction`). Every other money flow — bids, penalties,
 * `bidAndClose`, absorbs, insolvency payouts, option settlement, fees, the backstop's sales — is a move
 * of balances inside the vault. So a blocklisted address can only stop a transfer that serves itself.
 */

const USDC = 10n ** 6n;
const BLOCKED = "Blacklistable: account is blacklisted";
const PAUSED = "Pausable: paused";

/**
 * The fund holds 100,000 USDC; Alice is long 20 ETH from 3,000 on 10,000 USDC (liquidatable and
 * solvent at 2,600, insolvent at 2,300: §4 row 77); Bob a bidder with 100,000 USDC; Carol holds 2 ETH
 * calls (strike 3,000, two days out) bought from the pool; Dave is a second LP with 50,000 USDC in the
 * pool (his shares locked for the holding period). USDC then gets a blocklist and a pause, both off.
 */
async function world() {
  const sys = await deployOptionsSystem();
  const dave = (await ethers.getSigners())[6];
  await fundInsurance(sys, 100_000n * USDC);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
  const expiry = await fromNow(2n * DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  await tradeOption(sys.options, sys.carol, carol, call, wad("2"));
  await mintAndApprove(sys.usdc, dave, await sys.pool.getAddress(), 50_000n * USDC);
  await sys.pool.connect(dave).deposit(50_000n * USDC, dave.address);
  const usdc = await blocklistingUsdc(sys.usdc);
  return { sys, usdc, dave, alice, bob, carol, call, expiry };
}

async function block(usdc: BlocklistERC20Mock, ...who: AddressLike[]): Promise<void> {
  for (const a of who) await usdc.setBlocklisted(await ethers.resolveAddress(a), true);
}

describe("Blocklisting and pausable quote tokens (review round 142)", function () {
  describe("the token mock", function () {
    it("refuses a transfer from or to a blocklisted address and every transfer while paused, balances kept", async function () {
      const { sys, usdc } = await loadFixture(world);
      const held = await usdc.balanceOf(sys.vault);
      expect(held).to.be.greaterThan(1_000_000n * USDC); // the swap kept the vault's balance
      await mintAndApprove(sys.usdc, sys.deployer, sys.deployer.address, 2n);
      await block(usdc, sys.bob);
      await expect(usdc.transfer(sys.bob, 1n)).to.be.revertedWith(BLOCKED);
      await expect(usdc.connect(sys.bob).transfer(sys.deployer, 0n)).to.be.revertedWith(BLOCKED);
      await usdc.transfer(sys.carol, 1n);
      await usdc.setPaused(true);
      await expect(usdc.transfer(sys.carol, 1n)).to.be.revertedWith(PAUSED);
    });
  });

  describe("a liquidation is never stopped by a blocklisted party", function () {
    it("starts Alice's auction, pays the keeper's 10 USDC reward and lets Bob buy the whole book while Alice is blocklisted", async function () {
      const { sys, usdc, alice, bob } = await loadFixture(world);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await block(usdc, sys.alice);
      const keeperHeld = await usdc.balanceOf(sys.keeper);
      await expect(sys.auction.connect(sys.keeper).startAuction(alice))
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(alice, sys.keeper.address, anyValue, anyValue, 10n * USDC);
      expect((await usdc.balanceOf(sys.keeper)) - keeperHeld).to.equal(10n * USDC);
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256)).to.emit(
        sys.auction,
        "AuctionEnded",
      );
      // The bid buys what restores her (an ended auction, AuctionEnded's reason 1): Bob holds the rest.
      expect(await sys.perps.positionSize(bob, sys.markets.ETH)).to.equal(
        wad("20") - (await sys.perps.positionSize(alice, sys.markets.ETH)),
      );
      await expectQuoteLedgerBalanced(sys);
    });

    it("starts the auction without the reward, debiting nothing, when the starter is blocklisted", async function () {
      const { sys, usdc, alice } = await loadFixture(world);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await block(usdc, sys.keeper);
      const balance = await sys.vault.balanceOf(alice, sys.usdc);
      const vaultHeld = await usdc.balanceOf(sys.vault);
      await expect(sys.auction.connect(sys.keeper).startAuction(alice))
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(alice, sys.keeper.address, anyValue, anyValue, 0n);
      expect(await sys.vault.balanceOf(alice, sys.usdc)).to.equal(balance);
      expect(await usdc.balanceOf(sys.vault)).to.equal(vaultHeld);
      await expectQuoteLedgerBalanced(sys);
    });

    it("starts a batch of auctions for a blocklisted keeper, each without its reward", async function () {
      const { sys, usdc, alice } = await loadFixture(world);
      const erin = (await ethers.getSigners())[7];
      const second = await openAccount(sys, erin, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, erin, second, sys.markets.ETH, wad("20"));
      await setFeedPrice(sys.feeds.ETH, "2600");
      await block(usdc, sys.keeper, sys.alice, erin);
      const tx = sys.auction.connect(sys.keeper).startAuctions([alice, second]);
      await expect(tx)
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(alice, sys.keeper.address, anyValue, anyValue, 0n);
      await expect(tx)
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(second, sys.keeper.address, anyValue, anyValue, 0n);
    });

    it("lets a blocklisted bidder take the whole book with bidAndClose from a flat account", async function () {
      const { sys, usdc, alice, bob } = await loadFixture(world);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.connect(sys.keeper).startAuction(alice);
      await time.increase(600);
      await refreshFeeds(sys);
      await sys.accounts.connect(sys.bob).approve(sys.auction, bob); // bidAndClose trades for Bob
      await block(usdc, sys.bob, sys.alice);
      await expect(sys.auction.connect(sys.bob).bidAndClose(alice, bob, WAD, ethers.MaxUint256)).to.emit(
        sys.auction,
        "AuctionEnded",
      );
      expect(await sys.perps.positionSize(bob, sys.markets.ETH)).to.equal(0n);
      await expectQuoteLedgerBalanced(sys);
    });

    it("raises the deficit and absorbs an insolvent book into the backstop, the fund paying, while Alice, the keeper, the fund, the pool and the vault are all blocklisted", async function () {
      const { sys, usdc, alice } = await loadFixture(world);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.connect(sys.keeper).startAuction(alice);
      await block(usdc, sys.alice, sys.keeper, sys.insuranceFund, sys.pool, sys.vault);
      await setFeedPrice(sys.feeds.ETH, "2300");
      expect((await sys.engine.health(alice)).equityMark).to.be.lessThan(0n);
      await expect(sys.auction.connect(sys.keeper).updateDeficit(alice)).to.emit(
        sys.auction,
        "PendingDeficitUpdated",
      );
      const fundBefore = await sys.insuranceFund.balance();
      await advanceTo(sys, BigInt(await time.latest()) + BigInt((await sys.auction.params()).duration));
      await expect(sys.auction.connect(sys.keeper).absorb(alice)).to.emit(sys.auction, "InsolvencyCovered");
      const backstop = await sys.auction.backstopAccountId();
      expect(await sys.perps.positionSize(backstop, sys.markets.ETH)).to.equal(wad("20"));
      expect(await sys.insuranceFund.balance()).to.be.lessThan(fundBefore);
      await expectQuoteLedgerBalanced(sys);
    });
  });

  describe("LP exits and the insurance fund pay whoever is named, from the vault", function () {
    it("refuses only the blocklisted LP's exit to itself: its exit to another address and another LP's exit go through, the pool contract blocklisted too", async function () {
      const { sys, usdc, dave } = await loadFixture(world);
      await time.increase(DAY + 1n); // Dave's shares unlock
      await refreshFeeds(sys);
      await block(usdc, sys.lp, sys.pool);
      const shares = 1_000n * 10n ** 12n; // 1,000 shares of 10^-12 USDC each at the seed price (offset 6)
      await expect(sys.pool.connect(sys.lp).redeem(shares, sys.lp, sys.lp)).to.be.revertedWith(BLOCKED);
      const erin = (await ethers.getSigners())[7];
      await expect(sys.pool.connect(sys.lp).redeem(shares, erin, sys.lp)).to.emit(sys.pool, "Withdraw");
      expect(await usdc.balanceOf(erin)).to.be.greaterThan(0n);
      const daveShares = await sys.pool.balanceOf(dave);
      await expect(sys.pool.connect(dave).redeem(daveShares, dave, dave)).to.emit(sys.pool, "Withdraw");
      expect(await usdc.balanceOf(dave)).to.be.closeTo(50_000n * USDC, 100n * USDC);
      // The pool's own address only ever receives an LP's deposit on its way into the vault.
      await mintAndApprove(sys.usdc, erin, await sys.pool.getAddress(), 1_000n * USDC);
      await expect(sys.pool.connect(erin).deposit(1_000n * USDC, erin)).to.be.revertedWith(BLOCKED);
      await expectQuoteLedgerBalanced(sys);
    });

    it("pays the fund's withdrawal to a clean recipient while the fund's contract is blocklisted, and refuses one to a blocklisted recipient, changing nothing", async function () {
      const { sys, usdc } = await loadFixture(world);
      const [treasury, listed] = (await ethers.getSigners()).slice(8, 10);
      await block(usdc, sys.insuranceFund, listed);
      const fund = await sys.insuranceFund.balance();
      await expect(sys.insuranceFund.withdraw(listed, 1_000n * USDC)).to.be.revertedWith(BLOCKED);
      expect(await sys.insuranceFund.balance()).to.equal(fund);
      await sys.insuranceFund.withdraw(treasury, 1_000n * USDC);
      expect(await usdc.balanceOf(treasury)).to.equal(1_000n * USDC);
      expect(await sys.insuranceFund.balance()).to.equal(fund - 1_000n * USDC);
    });
  });

  describe("option settlement moves balances only", function () {
    it("settles and pays Carol's in-the-money calls while Carol and the pool are blocklisted", async function () {
      const { sys, usdc, carol, call, expiry } = await loadFixture(world);
      await advanceTo(sys, expiry + 5n);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "3300");
      await block(usdc, sys.carol, sys.pool, sys.keeper);
      await sys.options.connect(sys.keeper).settleSeries(call, round);
      const before = await sys.vault.balanceOf(carol, sys.usdc);
      await sys.options.connect(sys.keeper).settleAccounts([carol], call);
      expect((await sys.vault.balanceOf(carol, sys.usdc)) - before).to.equal(600n * USDC); // 2 × (3,300 − 3,000)
      await expectQuoteLedgerBalanced(sys);
    });
  });

  describe("a token-wide pause", function () {
    it("stops every deposit, withdrawal and LP entry and exit, each changing nothing", async function () {
      const { sys, usdc, alice, dave } = await loadFixture(world);
      await time.increase(DAY + 1n);
      await refreshFeeds(sys);
      await mintAndApprove(sys.usdc, sys.alice, await sys.vault.getAddress(), 100n * USDC);
      await mintAndApprove(sys.usdc, dave, await sys.pool.getAddress(), 100n * USDC);
      await usdc.setPaused(true);
      const held = await usdc.balanceOf(sys.vault);
      await expect(sys.vault.connect(sys.alice).deposit(alice, sys.usdc, 100n * USDC)).to.be.revertedWith(
        PAUSED,
      );
      await expect(
        sys.vault.connect(sys.alice).withdraw(alice, sys.usdc, 100n * USDC, sys.alice),
      ).to.be.revertedWith(PAUSED);
      await expect(sys.pool.connect(dave).deposit(100n * USDC, dave)).to.be.revertedWith(PAUSED);
      await expect(sys.pool.connect(dave).redeem(10n ** 12n, dave, dave)).to.be.revertedWith(PAUSED);
      await expect(sys.insuranceFund.withdraw(sys.deployer, 1n)).to.be.revertedWith(PAUSED);
      expect(await usdc.balanceOf(sys.vault)).to.equal(held);
      await expectQuoteLedgerBalanced(sys);
    });

    it("lets trades, a liquidation (its reward lost for the episode), settlement and absorbs run, and leaves the ledger balanced and every owner able to withdraw after the unpause", async function () {
      const { sys, usdc, alice, bob, carol, call, expiry } = await loadFixture(world);
      await usdc.setPaused(true);
      // A new risk-increasing trade and an option trade: fees move inside the vault.
      await trade(sys.perps, sys.bob, bob, sys.markets.ETH, -wad("5"));
      await tradeOption(sys.options, sys.carol, carol, call, wad("1"));
      await setFeedPrice(sys.feeds.ETH, "2600");
      await expect(sys.auction.connect(sys.keeper).startAuction(alice))
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(alice, sys.keeper.address, anyValue, anyValue, 0n);
      await time.increase(300);
      await refreshFeeds(sys);
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256)).to.emit(
        sys.auction,
        "AuctionEnded",
      );
      await advanceTo(sys, expiry + 5n);
      const round = (await sys.feeds.ETH.latestRound()) + 1n;
      await setFeedPrice(sys.feeds.ETH, "2500");
      await sys.options.settleSeries(call, round);
      await sys.options.settleAccounts([carol], call);
      await expectQuoteLedgerBalanced(sys);

      await usdc.setPaused(false);
      await expectQuoteLedgerBalanced(sys);
      // The reward the pause refused is not owed later: a start within the flag-reward cooldown pays
      // none (docs/decisions.md: the auction starts without it).
      await setFeedPrice(sys.feeds.ETH, "2000");
      const h = await sys.engine.health(alice);
      expect(h.equityMaintenance).to.be.lessThan(h.maintenanceRequirement);
      await expect(sys.auction.connect(sys.keeper).startAuction(alice))
        .to.emit(sys.auction, "AuctionStarted")
        .withArgs(alice, sys.keeper.address, anyValue, anyValue, 0n);
      for (const [signer, id] of [
        [sys.carol, carol],
        [sys.bob, bob],
      ] as const) {
        const cash = await sys.vault.balanceOf(id, sys.usdc);
        await sys.vault.connect(signer).withdraw(id, sys.usdc, 1_000n * USDC, signer);
        expect(await sys.vault.balanceOf(id, sys.usdc)).to.equal(cash - 1_000n * USDC);
      }
      await expectQuoteLedgerBalanced(sys);
    });
    // A pause longer than the exit delay's claim window (2 hours) costs a queued LP its place, not value:
    // the expired request is cancelled for the shares it is worth and asked again.
    it("lets an LP whose claim window passed while USDC was paused cancel for its shares and claim after asking again", async function () {
      const { sys, usdc, dave } = await loadFixture(world);
      await time.increase(DAY + 1n);
      await refreshFeeds(sys);
      await sys.pool.setExitDelay(3_600n);
      const shares = await sys.pool.balanceOf(dave);
      await sys.pool.connect(dave).requestRedeem(shares);
      await time.increase(1_800n);
      await usdc.setPaused(true);
      await time.increase(1_800n + 3_600n); // the window opens while paused
      await refreshFeeds(sys);
      await expect(sys.pool.connect(dave).claimRedeem(shares, dave, 0n)).to.be.revertedWith(PAUSED);
      await time.increase(2n * 3_600n); // and closes
      await refreshFeeds(sys);
      await usdc.setPaused(false);
      await expect(sys.pool.connect(dave).claimRedeem(shares, dave, 0n)).to.be.revertedWithCustomError(
        sys.pool,
        "NotClaimable",
      );
      await sys.pool.connect(dave).cancelRedeemRequest();
      const back = await sys.pool.balanceOf(dave);
      expect(back).to.be.at.most(shares);
      expect(back).to.be.greaterThan((shares * 999n) / 1_000n);
      await sys.pool.connect(dave).requestRedeem(back);
      await time.increase(3_600n);
      await refreshFeeds(sys);
      await sys.pool.connect(dave).claimRedeem(back, dave, 0n);
      expect(await usdc.balanceOf(dave)).to.be.closeTo(50_000n * USDC, 100n * USDC);
    });
  });

  describe("what the token's refusals do not stop", function () {
    // The protocol does not enforce the issuer's list: the vault's transfer names the recipient only, so
    // a blocklisted owner takes its money out to any address it picks (as from Aave or any pool).
    it("pays a blocklisted owner's withdrawal to a clean address it names", async function () {
      const { sys, usdc, carol } = await loadFixture(world);
      const erin = (await ethers.getSigners())[7];
      await block(usdc, sys.carol);
      await expect(
        sys.vault.connect(sys.carol).withdraw(carol, sys.usdc, 1_000n * USDC, sys.carol),
      ).to.be.revertedWith(BLOCKED);
      await sys.vault.connect(sys.carol).withdraw(carol, sys.usdc, 1_000n * USDC, erin);
      expect(await usdc.balanceOf(erin)).to.equal(1_000n * USDC);
    });
  });

  // Carried since round 125 (row 319): the SDK read no token's own refusals, so a withdrawal it previewed
  // as going through reverted with the token's error. `preview` now asks the token (`tokenError`).
  describe("the SDK's preview of a withdrawal asks the token", function () {
    it("gives the token's refusal as tokenError while USDC is paused or the recipient blocklisted, and none once it would send", async function () {
      const { sys, usdc, carol } = await loadFixture(world);
      const client = await sdkClient(sys, sys.carol);
      const action = { type: "withdraw", token: "USDC", amount: 1_000n * USDC } as const;
      const erin = (await ethers.getSigners())[7];
      expect((await preview(client, carol, action)).tokenError).to.equal(undefined);

      await block(usdc, sys.carol);
      let r = await preview(client, carol, action);
      expect(r.revert).to.equal(undefined);
      expect(r.tokenError?.message).to.contain(BLOCKED);
      await expect(
        sys.vault.connect(sys.carol).withdraw(carol, sys.usdc, 1_000n * USDC, sys.carol),
      ).to.be.revertedWith(BLOCKED);
      // To a clean recipient the token sends, and so does the chain.
      expect((await preview(client, carol, { ...action, to: erin.address })).tokenError).to.equal(undefined);

      await usdc.setBlocklisted(sys.carol, false);
      await usdc.setPaused(true);
      r = await preview(client, carol, action);
      expect(r.revert).to.equal(undefined);
      expect(r.tokenError?.message).to.contain(PAUSED);
      await expect(
        sys.vault.connect(sys.carol).withdraw(carol, sys.usdc, 1_000n * USDC, sys.carol),
      ).to.be.revertedWith(PAUSED);
      // A protocol refusal comes first and is still the revert.
      const tooMuch = await preview(client, carol, { ...action, amount: 10n ** 12n * USDC });
      expect(tooMuch.revert?.name).to.equal("InsufficientBalance");
      expect(tooMuch.tokenError).to.equal(undefined);
    });

    it("reads a read-only client's preview the same way, the recipient defaulting to the owner", async function () {
      const { sys, usdc, carol } = await loadFixture(world);
      const client = createClient({ runner: ethers.provider, deployment: await deploymentOf(sys) });
      await block(usdc, sys.carol);
      const r = await preview(client, carol, { type: "withdraw", token: "USDC", amount: 1n });
      expect(r.tokenError?.message).to.contain(BLOCKED);
    });
  });
});
