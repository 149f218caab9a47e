import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  accountHealth,
  getAccountState,
  getLiquidationPrice,
  isLiquidatable,
  maxWithdrawable,
  toHealth,
  withPrice,
} from "../../sdk/src";
import { MarginMode, atLatestTimestamp, openAccount, wad } from "../shared/system";
import { DAY, deployOptionsSystemWithoutFunding, fromNow, listSeries, tradeOption } from "../shared/options";
import { assetId } from "../shared/oracles";
import { calendarAtIM, sdkClient } from "../shared/sdk";

const USDC = 10n ** 6n;
const ETH = assetId("ETH").toLowerCase();
/** The ETH feed's unit (8 decimals) in WAD. */
const FEED_UNIT = 10n ** 10n;

/**
 * The SDK's liquidation price and maximum withdrawal of option books against the chain (review round
 * 55; docs/reliability.md §4, rows 138–139).
 */
describe("SDK previews of option books against the chain", function () {
  it("finds the liquidation price of a calendar that is safe again below its liquidation band (at 1 wei)", async function () {
    // The bisection assumed the account liquidatable at minPrice (1 wei) whenever a price below spot
    // was: a calendar's options are worth nothing there and its requirement is ~0, so `down` was null
    // while the chain auctions Alice from ETH 2,420.47 (−19%) down to at least 50.
    const { sys, alice, client } = await loadFixture(calendarAtIM);
    const state = await getAccountState(client, { accountId: alice });
    expect(isLiquidatable(accountHealth(withPrice(state, ETH, 1n)))).to.equal(false);
    expect(isLiquidatable(accountHealth(withPrice(state, ETH, wad("2000"))))).to.equal(true);

    const { spot, down, up } = await getLiquidationPrice(client, {
      accountId: alice,
      asset: assetId("ETH"),
      blockTag: state.blockNumber,
    });
    expect(spot).to.equal(wad("3000"));
    expect(down === null, "no liquidation price below spot").to.equal(false);
    expect(down!).to.be.within(wad("2400"), wad("2450"));
    expect(up!).to.be.within(wad("3600"), wad("3630"));

    // The chain at the feed's nearest prices around each (the block pinned to the snapshot's time):
    // liquidatable at and beyond them, not inside, each health equal to the SDK's.
    const at = async (price: bigint) => {
      await atLatestTimestamp();
      const tx = await sys.feeds.ETH.updateAnswer(price / FEED_UNIT);
      const block = (await tx.wait())!.blockNumber;
      const chain = await sys.engine.health(alice, { blockTag: block });
      expect(toHealth(chain)).to.deep.equal(toHealth(accountHealth(withPrice(state, ETH, price))));
      return isLiquidatable(chain);
    };
    const feedFloor = (p: bigint) => (p / FEED_UNIT) * FEED_UNIT;
    expect(await at(feedFloor(down!))).to.equal(true);
    expect(await at(feedFloor(down!) + FEED_UNIT)).to.equal(false);
    expect(await at(feedFloor(up!) - FEED_UNIT)).to.equal(false);
    expect(await at(feedFloor(up!) + FEED_UNIT)).to.equal(true);
    expect(await at(wad("2000"))).to.equal(true);
  });

  /**
   * Bob: 20 WETH and no USDC, long 10 ETH calls (30 days) bought on quote debt (−2,099.37 USDC); ETH
   * funding off, so only the debt's interest and the calls' decay move with time.
   */
  async function debtorWithOptions() {
    const sys = await deployOptionsSystemWithoutFunding();
    const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.weth, wad("20")]]);
    const call = await listSeries(sys.options, "ETH", "3000", await fromNow(30n * DAY), true);
    await tradeOption(sys.options, sys.bob, bob, call, wad("10"));
    await time.increase(600);
    return { sys, bob, client: await sdkClient(sys, sys.bob) };
  }

  it("gives a debtor holding options the maximum withdrawal at the time the withdrawal is mined, not the snapshot's", async function () {
    // maxWithdrawable was exact at the snapshot's block only, and a withdrawal lands at least a block
    // later: the debt's interest and the calls' decay over those seconds make the "max" revert.
    const { sys, bob, client } = await loadFixture(debtorWithOptions);
    const quote = await sys.vault.balanceOf(bob, sys.usdc);
    expect(quote < -2_000n * USDC).to.equal(true);
    const now = BigInt(await time.latest());
    const minedAt = now + 12n;

    const atSnapshot = await maxWithdrawable(client, { accountId: bob, token: "WETH" });
    const atMined = await maxWithdrawable(client, { accountId: bob, token: "WETH", timestamp: minedAt });
    expect(atMined < atSnapshot, "the maximum falls over 12 s").to.equal(true);

    // The maximum at the snapshot, sent 12 s later (one L1 block): refused.
    const send = async (amount: bigint) => {
      await time.setNextBlockTimestamp(minedAt);
      return sys.vault.connect(sys.bob).withdraw(bob, sys.weth, amount, sys.bob);
    };
    await expect(send(atSnapshot)).to.be.revertedWithCustomError(sys.engine, "InsufficientMargin");
    await expect(send(atMined + 1n)).to.be.revertedWithCustomError(sys.engine, "InsufficientMargin");
    await send(atMined);
    const h = await sys.engine.health(bob);
    expect(h.equityInitial >= BigInt(h.initialRequirement)).to.equal(true);
  });
});
