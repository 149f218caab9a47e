import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad, eventOf } from "../shared/system";
import { advanceTo, mineAt, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { DAY, HOUR, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;
const ALLOWANCE = 1_000n * USDC;

/**
 * Alice's account (20,000 USDC) grants Carol's bot key a trading allowance of 1,000 USDC
 * (`setTrader`); Carol also has an account of her own, and Bob one. One ETH call series is listed.
 */
async function grantedBot() {
  const sys = await deployOptionsSystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
  const call = await listSeries(sys.options, "ETH", "3000", await fromNow(30n * DAY), true);
  await sys.accounts.connect(sys.alice).setTrader(alice, sys.carol, ALLOWANCE);
  return { sys, alice, bob, carol, call, bot: sys.carol };
}

type System = Awaited<ReturnType<typeof grantedBot>>["sys"];

/** What the bot's trades have spent of the allowance Alice's account granted it. */
async function spentOf(sys: System, alice: bigint, bot: { address: string }): Promise<bigint> {
  return ALLOWANCE - (await sys.accounts.traderAllowance(alice, bot.address));
}

/** The account's equity at the engine's marks (USDC collateral only: weight 1 at both levels). */
async function equityAtMarks(sys: System, accountId: bigint): Promise<bigint> {
  return (await sys.engine.health(accountId)).equityMaintenance;
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

  it("charges a perp trade what it costs the account at the oracle price: fee and skew premium", async function () {
    const { sys, alice, bot } = await loadFixture(grantedBot);
    const before = await equityAtMarks(sys, alice);
    const sent = await trade(sys.perps, bot, alice, sys.markets.ETH, wad("2"));
    const spent = await spentOf(sys, alice, bot);
    await expect(sent)
      .to.emit(sys.accounts, "TraderAllowanceSpent")
      .withArgs(alice, bot.address, spent, ALLOWANCE - spent);
    const drop = before - (await equityAtMarks(sys, alice));
    // The same to a quote unit either way: the allowance rounds fee and premium up to quote units, the
    // balance and the engine's marks round each on their own.
    expect(spent * QUOTE_UNIT).to.be.within(drop - QUOTE_UNIT, drop + 2n * QUOTE_UNIT);
    // Selling 1 back into the account's own skew fills above the oracle: only the fee is charged, and
    // the premium it earns is not credited back.
    const receipt = await (await trade(sys.perps, bot, alice, sys.markets.ETH, -wad("1"))).wait();
    const modified = eventOf(receipt, sys.perps, "PositionModified");
    const fee = modified.args.fee as bigint;
    expect(await sys.accounts.traderAllowance(alice, bot.address)).to.equal(
      ALLOWANCE - spent - fee / QUOTE_UNIT,
    );
  });

  it("charges an option long its premium above intrinsic value: what it loses by expiry at a constant spot", async function () {
    const { sys, alice, call, bot } = await loadFixture(grantedBot);
    const receipt = await (await tradeOption(sys.options, bot, alice, call, wad("3"))).wait();
    const traded = eventOf(receipt, sys.options, "OptionTraded");
    const [premiumQuote, fee] = [traded.args.premium / QUOTE_UNIT, traded.args.fee / QUOTE_UNIT];
    // At the money (strike = spot = 3,000) the whole premium is time value.
    expect(await spentOf(sys, alice, bot)).to.equal(premiumQuote + fee);
  });

  it("charges option sells and buy-backs what they cost at the marks they add or remove", async function () {
    const { sys, alice, call, bot } = await loadFixture(grantedBot);
    await tradeOption(sys.options, sys.alice, alice, call, wad("3")); // Alice's own long: not charged
    for (const size of [-wad("5"), wad("2")]) {
      // −5: closes the long (marked at its low bound), opens 2 short (at the high); +2 buys them back.
      const [left, before] = [
        await sys.accounts.traderAllowance(alice, bot.address),
        await equityAtMarks(sys, alice),
      ];
      await time.setNextBlockTimestamp((await time.latest()) + 1);
      await tradeOption(sys.options, bot, alice, call, size);
      const spent = left - (await sys.accounts.traderAllowance(alice, bot.address));
      const drop = before - (await equityAtMarks(sys, alice));
      // The marks are read one second apart: the drop also holds that second of the positions' time
      // decay (under 0.001 USD here).
      expect(spent).to.be.greaterThan(0n);
      expect(spent * QUOTE_UNIT).to.be.within(drop - 1_000n * QUOTE_UNIT, drop + 1_000n * QUOTE_UNIT);
    }
  });

  it("bounds what a long loses to time at a constant spot by what it spent (review round 3)", async function () {
    // A day-long at-the-money call held to expiry at ETH 3,000: the review measured a loss of 25.6× the
    // allowance spent when buys were charged only the spread beyond the mark.
    const { sys, alice, bot } = await loadFixture(grantedBot);
    const dayCall = await listSeries(sys.options, "ETH", "3000", await fromNow(DAY), true);
    const before = await equityAtMarks(sys, alice);
    await tradeOption(sys.options, bot, alice, dayCall, wad("10"));
    const spent = await spentOf(sys, alice, bot);
    await mineAt(sys, (await sys.options.series(dayCall)).expiry + 1n);
    const lost = before - (await equityAtMarks(sys, alice));
    expect(lost).to.be.greaterThan(0n);
    expect(lost).to.be.at.most(spent * QUOTE_UNIT);
  });

  it("charges a long bought just before the last hour what its mark loses when the hour starts", async function () {
    // Inside an option's last hour its long is marked at intrinsic value: a long bought 2 s before lost
    // 8.5× the allowance it spent 4 s later when buys were charged only the spread (review round 3).
    const { sys, alice, bot } = await loadFixture(grantedBot);
    const expiry = await fromNow(2n * HOUR);
    const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
    await advanceTo(sys, expiry - HOUR - 2n);
    const before = await equityAtMarks(sys, alice);
    await tradeOption(sys.options, bot, alice, call, wad("50"));
    const spent = await spentOf(sys, alice, bot);
    await mineAt(sys, expiry - HOUR + 2n);
    const lost = before - (await equityAtMarks(sys, alice));
    expect(lost).to.be.greaterThan(0n);
    expect(lost).to.be.at.most(spent * QUOTE_UNIT);
  });

  it("charges a buy-back in the last hour what it pays above the short's value (review round 4)", async function () {
    // Alice wrote 30 at-the-money calls; ten minutes before expiry her bot buys them back. A short is
    // marked at the model's one-hour value in its last hour, above what it is worth: charged only the
    // spread beyond that mark, the buy-back left her 8.5× the charge below holding to expiry.
    const { sys, alice, bot } = await loadFixture(grantedBot);
    const expiry = await fromNow(2n * HOUR);
    const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
    await tradeOption(sys.options, sys.alice, alice, call, -wad("30"));
    await mineAt(sys, expiry - 600n);
    const held = await ethers.provider.send("evm_snapshot", []);
    await mineAt(sys, expiry + 1n);
    const holding = await equityAtMarks(sys, alice); // the calls expire worthless at 3,000
    await ethers.provider.send("evm_revert", [held]);
    await tradeOption(sys.options, bot, alice, call, wad("30"));
    const spent = await spentOf(sys, alice, bot);
    await mineAt(sys, expiry + 1n);
    const lost = holding - (await equityAtMarks(sys, alice));
    expect(lost).to.be.greaterThan(0n);
    expect(lost).to.be.at.most(spent * QUOTE_UNIT);
  });

  it("charges every trade at least one quote unit, however small", async function () {
    const { sys, alice, carol, call, bot } = await loadFixture(grantedBot);
    await trade(sys.perps, bot, carol, sys.markets.ETH, wad("5")); // a skew for Alice's trades to cross
    const before = await equityAtMarks(sys, alice);
    for (let i = 0; i < 10; i++) {
      const size = i % 2 === 0 ? 10n ** 6n : -(10n ** 6n); // 1e-12 ETH, 1e-12 contracts
      await trade(sys.perps, bot, alice, sys.markets.ETH, size);
      await tradeOption(sys.options, bot, alice, call, size);
    }
    const spent = await spentOf(sys, alice, bot);
    expect(spent).to.be.at.least(20n);
    expect(spent * QUOTE_UNIT).to.be.at.least(before - (await equityAtMarks(sys, alice)));
  });

  it("stops a trade that costs more than the allowance left, changing nothing", async function () {
    const { sys, alice, bot } = await loadFixture(grantedBot);
    // 100 ETH into an empty book: skew premium 3,000·100²/(2·1,000) = 15,000 USD, beyond 1,000.
    const attempt = trade(sys.perps, bot, alice, sys.markets.ETH, wad("100"));
    await expect(attempt).to.be.revertedWithCustomError(sys.accounts, "TraderAllowanceExceeded");
    expect(await sys.perps.positionSize(alice, sys.markets.ETH)).to.equal(0n);
    expect(await sys.accounts.traderAllowance(alice, bot.address)).to.equal(ALLOWANCE);
    // The owner's own trade is not limited.
    await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("30"));
    expect(await sys.accounts.traderAllowance(alice, bot.address)).to.equal(ALLOWANCE);
  });

  it("bounds the skew-premium drain of the security review by the allowance", async function () {
    // The trader makes Alice's account buy into the skew, sells from its own account, makes Alice sell
    // from flat and buys back: Alice pays the premium four times over what the bot's own account
    // collects, all at one oracle price. Unbounded, 77,280 of 100,000 USD moved this way.
    const { sys, alice, carol, bot } = await loadFixture(grantedBot);
    const [aliceBefore, carolBefore] = [await equityAtMarks(sys, alice), await equityAtMarks(sys, carol)];
    const size = wad("10");
    let refused = false;
    for (let round = 0; round < 10 && !refused; round++) {
      for (const [account, delta] of [
        [alice, size],
        [carol, -size],
        [alice, -size],
        [carol, size],
      ] as const) {
        const sent = trade(sys.perps, bot, account, sys.markets.ETH, delta);
        if (account !== alice) {
          await sent;
          continue;
        }
        try {
          await (await sent).wait();
        } catch (error) {
          expect(sys.accounts.interface.parseError((error as { data: string }).data)?.name).to.equal(
            "TraderAllowanceExceeded",
          );
          refused = true;
          break;
        }
      }
    }
    expect(refused).to.equal(true);
    const aliceLoss = aliceBefore - (await equityAtMarks(sys, alice));
    const carolGain = (await equityAtMarks(sys, carol)) - carolBefore;
    expect(aliceLoss).to.be.at.most(ALLOWANCE * QUOTE_UNIT + 10n ** 15n);
    expect(carolGain).to.be.lessThan(aliceLoss);
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
    await sys.accounts.connect(sys.keeper).setTrader(keeper, sys.auction, ethers.MaxUint256);
    expect(await sys.accounts.isAuthorized(keeper, sys.auction)).to.equal(false);
    await sys.auction.connect(sys.keeper).bidAndClose(bob, keeper, wad("0.05"), ethers.MaxUint256);
    expect(await sys.engine.accountMarkets(keeper)).to.deep.equal([]);
    expect(await sys.vault.balanceOf(keeper, sys.usdc)).to.be.greaterThan(0n);
    expect(await sys.accounts.traderAllowance(keeper, sys.auction)).to.equal(ethers.MaxUint256);
  });

  it("lets only registered markets spend an allowance", async function () {
    const { sys, alice, bot } = await loadFixture(grantedBot);
    await expect(sys.accounts.connect(sys.bob).authorizeTrade(alice, bot.address, ALLOWANCE))
      .to.be.revertedWithCustomError(sys.accounts, "NotMarket")
      .withArgs(sys.bob.address);
    expect(await sys.accounts.traderAllowance(alice, bot.address)).to.equal(ALLOWANCE);
  });
});
