import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad } from "../shared/system";
import { trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";

const USDC = 10n ** 6n;

/**
 * Alice's account (20,000 USDC) grants Carol's bot key a trading right (`setTrader`); Bob runs a
 * keeper account. One ETH call series is listed.
 */
async function grantedBot() {
  const sys = await deployOptionsSystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const call = await listSeries(sys.options, "ETH", "3000", await fromNow(30n * DAY), true);
  await sys.accounts.connect(sys.alice).setTrader(alice, sys.carol, true);
  return { sys, alice, bob, call, bot: sys.carol };
}

describe("Trading grants (Accounts.setTrader) across the protocol", function () {
  it("lets a trader open and close perps and options for the account", async function () {
    const { sys, alice, call, bot } = await loadFixture(grantedBot);
    await trade(sys.perps, bot, alice, sys.markets.ETH, wad("1"));
    await tradeOption(sys.options, bot, alice, call, wad("2"));
    expect(await sys.perps.positionSize(alice, sys.markets.ETH)).to.equal(wad("1"));
    expect(await sys.options.positionSize(alice, call)).to.equal(wad("2"));
    await trade(sys.perps, bot, alice, sys.markets.ETH, -wad("1"));
    expect(await sys.perps.positionSize(alice, sys.markets.ETH)).to.equal(0n);
  });

  it("refuses a trader's withdrawal, even to the owner, and its bids with the account", async function () {
    const { sys, alice, bob, bot } = await loadFixture(grantedBot);
    await expect(sys.vault.connect(bot).withdraw(alice, sys.usdc, 1n * USDC, sys.alice.address))
      .to.be.revertedWithCustomError(sys.accounts, "NotAuthorized")
      .withArgs(alice, bot.address);
    // Bob's account is made liquidatable and auctioned; the bot may not bid with Alice's account.
    await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("45"));
    await setFeedPrice(sys.feeds.ETH, "2650");
    await sys.auction.startAuction(bob);
    await expect(sys.auction.connect(bot).bid(bob, alice, wad("0.01"), ethers.MaxUint256))
      .to.be.revertedWithCustomError(sys.accounts, "NotAuthorized")
      .withArgs(alice, bot.address);
  });

  it("stops the trader once the account is transferred", async function () {
    const { sys, alice, bot } = await loadFixture(grantedBot);
    await sys.accounts.connect(sys.alice).transferFrom(sys.alice, sys.bob, alice);
    await expect(trade(sys.perps, bot, alice, sys.markets.ETH, wad("1")))
      .to.be.revertedWithCustomError(sys.accounts, "NotAuthorized")
      .withArgs(alice, bot.address);
  });

  it("is enough for bidAndClose: the keeper grants the auction trading, not custody", async function () {
    const { sys, bob } = await loadFixture(grantedBot);
    await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("45"));
    await setFeedPrice(sys.feeds.ETH, "2650");
    await sys.auction.startAuction(bob);
    const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS);
    await sys.accounts.connect(sys.keeper).setTrader(keeper, sys.auction, true);
    expect(await sys.accounts.isAuthorized(keeper, sys.auction)).to.equal(false);
    await sys.auction.connect(sys.keeper).bidAndClose(bob, keeper, wad("0.05"), ethers.MaxUint256);
    expect(await sys.engine.accountMarkets(keeper)).to.deep.equal([]);
    expect(await sys.vault.balanceOf(keeper, sys.usdc)).to.be.greaterThan(0n);
  });
});
