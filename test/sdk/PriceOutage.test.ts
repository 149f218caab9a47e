import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { accountHealth, getAccountState, maxWithdrawable, preview, withdraw } from "../../sdk/src";
import { MarginMode, deploySystem, openAccount, wad } from "../shared/system";
import { trade } from "../shared/perps";
import { assetId } from "../shared/oracles";
import { sdkClient } from "../shared/sdk";
import { mintAndApprove } from "../shared/tokens";

const USDC = 10n ** 6n;
const ETH = assetId("ETH").toLowerCase();

/**
 * Alice: 10,000 USDC and 2 WETH, no position. Bob: 10,000 USDC, long 1 ETH. An hour later every feed
 * but ETH's price is posted again: the ETH price feed is stale.
 */
async function ethPriceStale() {
  const sys = await deploySystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [
    [sys.usdc, 10_000n * USDC],
    [sys.weth, wad("2")],
  ]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("1"));
  await time.increase(3_601);
  for (const feed of [sys.feeds.USDC, sys.feeds.BTC, sys.volFeeds.ETH, sys.volFeeds.BTC])
    await (await feed.updateAnswer(await feed.latestAnswer())).wait();
  return {
    sys,
    alice,
    bob,
    aliceClient: await sdkClient(sys, sys.alice),
    bobClient: await sdkClient(sys, sys.bob),
  };
}

/** The ETH price feed's staleness error, as the router raises it: `StalePrice(feed, updatedAt, 3600)`. */
async function ethFeedStale(sys: Awaited<ReturnType<typeof ethPriceStale>>["sys"]) {
  const [, , , updatedAt] = await sys.feeds.ETH.latestRoundData();
  return { aggregator: await sys.feeds.ETH.getAddress(), updatedAt, heartbeat: 3_600n };
}

// Review rounds 34 and 42 (row 105): the vault lets an account with nothing at risk withdraw while a feed
// of a token it holds fails (row 100), and takes anyone's deposits without a price, but the SDK's
// snapshot read every price and threw, so a frontend that previews before sending showed no way out.
describe("SDK during a price outage", function () {
  it("previews a flat account's withdrawals while its WETH price is stale, as the vault sends them", async function () {
    const { sys, alice, aliceClient } = await loadFixture(ethPriceStale);
    const state = await getAccountState(aliceClient, { accountId: alice });
    // The engine cannot value the account, and the SDK says so with the same error.
    const stale = await ethFeedStale(sys);
    await expect(sys.engine.health(alice))
      .to.be.revertedWithCustomError(sys.router, "StalePrice")
      .withArgs(stale.aggregator, stale.updatedAt, stale.heartbeat);
    expect(() => accountHealth(state))
      .to.throw()
      .that.deep.includes({ name: "StalePrice", args: stale });
    expect(state.priceErrors?.[ETH]?.args).to.deep.include(stale);

    expect(await maxWithdrawable(aliceClient, { accountId: alice, token: "WETH" })).to.equal(wad("2"));
    expect(await maxWithdrawable(aliceClient, { accountId: alice, token: "USDC" })).to.equal(10_000n * USDC);
    const weth = await preview(aliceClient, alice, { type: "withdraw", token: "WETH", amount: wad("2") });
    expect(weth.revert).to.equal(undefined);
    expect(weth.healthError?.name).to.equal("StalePrice");
    const tooMuch = await preview(aliceClient, alice, { type: "withdraw", token: "WETH", amount: wad("3") });
    expect(tooMuch.revert?.name).to.equal("InsufficientBalance");

    await withdraw(aliceClient, { accountId: alice, token: "WETH", amount: wad("2") });
    await withdraw(aliceClient, { accountId: alice, token: "USDC", amount: 10_000n * USDC });
    expect(await sys.vault.collateralTokens(alice)).to.deep.equal([]);
  });

  it("values an account with a position only as the engine does, and previews its cure and withdrawal as the vault decides them", async function () {
    const { sys, bob, bobClient } = await loadFixture(ethPriceStale);
    const stale = await ethFeedStale(sys);
    await expect(sys.engine.health(bob))
      .to.be.revertedWithCustomError(sys.router, "StalePrice")
      .withArgs(stale.aggregator, stale.updatedAt, stale.heartbeat);
    const state = await getAccountState(bobClient, { accountId: bob });
    expect(() => accountHealth(state))
      .to.throw()
      .that.deep.includes({ name: "StalePrice", args: stale });
    // A withdrawal is margin-checked: it meets the feed; a USDC top-up reads no price and goes through.
    const out = await preview(bobClient, bob, { type: "withdraw", token: "USDC", amount: USDC });
    expect({ name: out.revert?.name, args: out.revert?.args }).to.deep.equal({
      name: "StalePrice",
      args: stale,
    });
    await expect(sys.vault.connect(sys.bob).withdraw(bob, sys.usdc, USDC, sys.bob))
      .to.be.revertedWithCustomError(sys.router, "StalePrice")
      .withArgs(stale.aggregator, stale.updatedAt, stale.heartbeat);
    const cure = await preview(bobClient, bob, { type: "deposit", token: "USDC", amount: USDC });
    expect(cure.revert).to.equal(undefined);
    await mintAndApprove(sys.usdc, sys.bob, await sys.vault.getAddress(), USDC);
    await sys.vault.connect(sys.bob).deposit(bob, sys.usdc, USDC);
  });
});
