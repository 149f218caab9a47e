import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  accountHealth,
  closePosition,
  deposit,
  getAccountState,
  maxWithdrawable,
  modifyPosition,
  preview,
  toHealth,
  tradeOption,
  withdraw,
} from "../../sdk/src";
import { MarginMode, openAccount, wad } from "../shared/system";
import { refreshPrices, trade } from "../shared/perps";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption as tradeSeries } from "../shared/options";
import { assetId, setFeedPrice } from "../shared/oracles";
import { expectPredictedRevert, expectXMarginError, sdkClient } from "../shared/sdk";

const USDC = 10n ** 6n;
const ETH = assetId("ETH").toLowerCase();

/**
 * Alice: 10,000 USDC, long 2 ETH and short 0.1 BTC perps. Bob: 10,000 USDC and a long ETH call. An hour
 * later every price and the BTC volatility are posted again; the ETH volatility feed is stale.
 */
async function ethVolatilityStale() {
  const sys = await deployOptionsSystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2"));
  await trade(sys.perps, sys.alice, alice, sys.markets.BTC, -wad("0.1"));
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  const call = await listSeries(sys.options, "ETH", "3000", await fromNow(7n * DAY), true);
  await tradeSeries(sys.options, sys.bob, bob, call, wad("1"));
  await time.increase(3_601);
  await refreshPrices(sys);
  await setFeedPrice(sys.volFeeds.BTC, "0.5");
  return {
    sys,
    alice,
    bob,
    call,
    aliceClient: await sdkClient(sys, sys.alice),
    bobClient: await sdkClient(sys, sys.bob),
  };
}

/**
 * Alice: 10,000 USDC, long 2 ETH then short 0.1 BTC perps (the engine holds [ETH, BTC] in that order).
 * An hour later every price is posted again, but neither volatility feed: both are stale.
 */
async function bothVolatilitiesStale() {
  const sys = await deployOptionsSystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2"));
  await trade(sys.perps, sys.alice, alice, sys.markets.BTC, -wad("0.1"));
  await time.increase(3_601);
  await refreshPrices(sys);
  return { sys, alice, aliceClient: await sdkClient(sys, sys.alice) };
}

describe("SDK during a volatility outage", function () {
  it("reads the failed volatility as 0 with the feed's error, and the engine's floor-shock health exactly", async function () {
    const { sys, alice, aliceClient } = await loadFixture(ethVolatilityStale);
    const state = await getAccountState(aliceClient, { accountId: alice });
    expect(state.underlyings[ETH].volatility).to.equal(0n);
    expect(state.underlyings[ETH].volatilityError?.name).to.equal("StalePrice");
    expect(state.underlyings[ETH].volatilityError?.args).to.deep.include({
      aggregator: await sys.volFeeds.ETH.getAddress(),
    });
    const chain = await sys.engine.health(alice, { blockTag: state.blockNumber });
    expect(chain.volatilityUnavailable).to.equal(true);
    expect(toHealth(accountHealth(state))).to.deep.equal(toHealth(chain));
  });

  it("predicts the feed's error for every check on new risk, exactly as the chain reverts", async function () {
    const { sys, alice, aliceClient } = await loadFixture(ethVolatilityStale);
    const cases = [
      {
        action: { type: "withdraw" as const, token: "USDC", amount: USDC },
        send: () => withdraw(aliceClient, { accountId: alice, token: "USDC", amount: USDC }),
      },
      {
        // The BTC leg grows: the check reads every underlying the account holds.
        action: { type: "trade" as const, marketId: sys.markets.BTC, sizeDelta: -wad("0.1") },
        send: () =>
          modifyPosition(aliceClient, {
            accountId: alice,
            marketId: sys.markets.BTC,
            sizeDelta: -wad("0.1"),
          }),
      },
    ];
    for (const { action, send } of cases) {
      const p = await preview(aliceClient, alice, action);
      expect(p.revert?.name, action.type).to.equal("StalePrice");
      await expectPredictedRevert(send(), p.revert!);
    }
    expect(await maxWithdrawable(aliceClient, { accountId: alice, token: "USDC" })).to.equal(0n);
  });

  it("lets through what needs no margin check: closing the ETH perp alone", async function () {
    const { sys, alice, aliceClient } = await loadFixture(ethVolatilityStale);
    const p = await preview(aliceClient, alice, { type: "close", marketId: sys.markets.ETH });
    expect(p.revert).to.equal(undefined);
    await closePosition(aliceClient, { accountId: alice, marketId: sys.markets.ETH });
    expect(await sys.perps.positionSize(alice, sys.markets.ETH)).to.equal(0n);
    // With ETH gone the account no longer reads its volatility: withdrawals are margin-checked again.
    expect(await maxWithdrawable(aliceClient, { accountId: alice, token: "USDC" })).to.be.greaterThan(0n);
  });

  it("refuses an option trade on the underlying, and throws the feed's error for a book holding a live option", async function () {
    const { sys, alice, bob, call, aliceClient, bobClient } = await loadFixture(ethVolatilityStale);
    const p = await preview(aliceClient, alice, { type: "optionTrade", seriesId: call, sizeDelta: wad("1") });
    expect(p.revert?.name).to.equal("StalePrice");
    await expectPredictedRevert(
      tradeOption(aliceClient, { accountId: alice, seriesId: call, sizeDelta: wad("1") }),
      p.revert!,
    );
    // The engine cannot value Bob's call: its health reverts, and so does the SDK's.
    await expect(sys.engine.health(bob)).to.be.revertedWithCustomError(sys.router, "StalePrice");
    const state = await getAccountState(bobClient, { accountId: bob });
    await expectXMarginError(
      Promise.resolve().then(() => accountHealth(state)),
      "StalePrice",
    );
  });

  it("names, with two failed feeds, the one the chain reverts with: the first the account holds", async function () {
    const { sys, alice, aliceClient } = await loadFixture(bothVolatilitiesStale);
    const ethVolFeed = await sys.volFeeds.ETH.getAddress();
    // The engine evaluates its held list in order ([ETH, BTC]): the strict check reverts with ETH's feed.
    const state = await getAccountState(aliceClient, { accountId: alice });
    expect(state.positions.map((p) => p.marketId)).to.deep.equal([sys.markets.ETH, sys.markets.BTC]);

    // Growing the ETH long (requireInitialMargin after the trade): the engine's list stays [ETH, BTC].
    const grow = { type: "trade" as const, marketId: sys.markets.ETH, sizeDelta: wad("0.1") };
    const p = await preview(aliceClient, alice, grow);
    expect(p.revert?.name).to.equal("StalePrice");
    expect(p.revert?.args).to.deep.include({ aggregator: ethVolFeed });
    await expectPredictedRevert(
      modifyPosition(aliceClient, { accountId: alice, marketId: sys.markets.ETH, sizeDelta: wad("0.1") }),
      p.revert!,
    );
  });

  it("predicts NotAuthorized before the feed's error for a withdrawal by someone not authorised", async function () {
    const { alice, bobClient } = await loadFixture(ethVolatilityStale);
    // Bob's client previews a withdrawal from Alice's account (Bob is neither her owner nor her operator).
    const p = await preview(bobClient, alice, { type: "withdraw", token: "USDC", amount: USDC });
    expect(p.revert?.name).to.equal("NotAuthorized");
    await expectPredictedRevert(
      withdraw(bobClient, { accountId: alice, token: "USDC", amount: USDC }),
      p.revert!,
    );
  });

  it("predicts NotAuthorized before the feed's error for a perp trade by someone without a grant", async function () {
    const { sys, alice, bobClient } = await loadFixture(ethVolatilityStale);
    for (const sizeDelta of [-wad("0.1"), wad("0.1")]) {
      // BTC grows (requireInitialMargin), then ETH grows: both strict checks run after authorizeTrade.
      const marketId = sizeDelta < 0n ? sys.markets.BTC : sys.markets.ETH;
      const p = await preview(bobClient, alice, { type: "trade", marketId, sizeDelta });
      expect(p.revert?.name).to.equal("NotAuthorized");
      await expectPredictedRevert(
        modifyPosition(bobClient, { accountId: alice, marketId, sizeDelta }),
        p.revert!,
      );
    }
  });

  it("previews a deposit into a book holding a live option on the failed underlying, as the chain takes it", async function () {
    const { sys, bob, bobClient } = await loadFixture(ethVolatilityStale);
    await (await sys.usdc.mint(sys.bob.address, 1_000n * USDC)).wait();
    // Under the cap the vault reads no health: the top-up goes through.
    const p = await preview(bobClient, bob, { type: "deposit", token: "USDC", amount: 1_000n * USDC });
    expect(p.revert).to.equal(undefined);
    expect(p.healthError?.name).to.equal("StalePrice");
    const usdc = await sys.usdc.getAddress();
    const balance = await sys.vault.balanceOf(bob, usdc);
    await deposit(bobClient, { accountId: bob, token: "USDC", amount: 1_000n * USDC });
    expect(await sys.vault.balanceOf(bob, usdc)).to.equal(balance + 1_000n * USDC);
  });
});
