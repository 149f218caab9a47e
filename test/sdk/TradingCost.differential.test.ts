import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { createAccount, deposit, modifyPosition, preview, setTrader, tradeOption } from "../../sdk/src";
import { wad } from "../shared/system";
import { DAY, HOUR, deployOptionsSystem, fromNow, listSeries } from "../shared/options";
import { advanceTo } from "../shared/perps";
import { sdkClient } from "../shared/sdk";

const USDC = 10n ** 6n;
const ALLOWANCE = 1_000_000n * USDC;

/**
 * Alice's account (500,000 USDC) grants Bob's bot a 1,000,000 USDC trading allowance. Series: an
 * in-the-money call, an out-of-the-money put and an at-the-money call two hours from expiry (its last
 * hour starts during the run).
 */
async function fixture() {
  const sys = await deployOptionsSystem();
  const series = [
    await listSeries(sys.options, "ETH", "2600", await fromNow(7n * DAY), true),
    await listSeries(sys.options, "ETH", "2800", await fromNow(7n * DAY), false),
    await listSeries(sys.options, "ETH", "3000", await fromNow(2n * HOUR), true),
  ];
  const alice = await sdkClient(sys, sys.alice);
  const bot = await sdkClient(sys, sys.bob);
  await sys.usdc.mint(sys.alice.address, 500_000n * USDC);
  const { accountId } = await createAccount(alice, {});
  await deposit(alice, { accountId, token: "USDC", amount: 500_000n * USDC });
  await setTrader(alice, { accountId, trader: sys.bob.address, allowance: ALLOWANCE });
  return { sys, bot, accountId, series };
}

describe("SDK trading cost: previews against the allowance the chain charges", function () {
  it("previews exactly what 60 trades of a trader spend: perps, option opens, closes and flips", async function () {
    const { sys, bot, accountId, series } = await loadFixture(fixture);
    // A fixed pseudo-random walk (LCG) over markets, signs and sizes, 90 s apart.
    let seed = 20261202n;
    const next = (n: bigint): bigint => {
      seed = (seed * 6364136223846793005n + 1442695040888963407n) % 2n ** 64n;
      return (seed >> 33n) % n;
    };
    let left = ALLOWANCE;
    let charged = 0;
    for (let i = 0; i < 60; i++) {
      const pick = next(4n);
      const sizeDelta = (next(7n) - 3n || 1n) * wad("0.5");
      const T = BigInt(await time.latest()) + 90n;
      const action =
        pick === 3n
          ? { type: "trade" as const, marketId: sys.markets.ETH, sizeDelta: sizeDelta * 4n }
          : { type: "optionTrade" as const, seriesId: series[Number(pick)], sizeDelta };
      await advanceTo(sys, T); // refreshes the feeds, and the next block is at T
      const p = await preview(bot, accountId, action, { timestamp: T });
      if (p.revert) {
        await ethers.provider.send("evm_mine", []);
        continue;
      }
      // The previewed price is the limit: the chain fills at exactly it.
      if (action.type === "trade") {
        await modifyPosition(bot, { accountId, ...action, limitPrice: p.trade?.fillPrice, deadline: T });
      } else {
        await tradeOption(bot, { accountId, ...action, limitPrice: p.option?.premium, deadline: T });
      }
      const now = await sys.accounts.traderAllowance(accountId, sys.bob.address);
      const previewed = action.type === "trade" ? p.trade?.tradingCost : p.option?.tradingCost;
      expect(left - now, `trade ${i}`).to.equal(previewed);
      left = now;
      charged += 1;
    }
    expect(charged).to.be.greaterThan(40);
  });

  // Review round 103, M116: in a series' last hour its value band is [intrinsic value, Black-Scholes at
  // one hour], and buying back a short costs the premium above the band's low, not above its high.
  it("previews a short's buy-back in the series' last hour from the band's low, as the chain charges", async function () {
    const { sys, bot, accountId, series } = await loadFixture(fixture);
    const atTheMoney = series[2];
    const expiry = (await sys.options.series(atTheMoney)).expiry;
    const trade = async (sizeDelta: bigint, T: bigint) => {
      await advanceTo(sys, T);
      const action = { type: "optionTrade" as const, seriesId: atTheMoney, sizeDelta };
      const p = await preview(bot, accountId, action, { timestamp: T });
      expect(p.revert).to.equal(undefined);
      const before = await sys.accounts.traderAllowance(accountId, sys.bob.address);
      await tradeOption(bot, { accountId, ...action, limitPrice: p.option?.premium, deadline: T });
      const after = await sys.accounts.traderAllowance(accountId, sys.bob.address);
      return { charged: before - after, previewed: p.option?.tradingCost };
    };
    await trade(-wad("1"), BigInt(await time.latest()) + 60n);
    const buyBack = await trade(wad("1"), expiry - HOUR / 2n);
    expect(buyBack.charged).to.equal(buyBack.previewed);
    // ETH at the strike: the low is 0, so the whole premium (Black-Scholes at one hour, 7.80 USD) is the
    // cost, with the 0.90 fee; counted from the high, only the spread and the fee would be.
    expect(buyBack.charged).to.equal(8_700_247n);
  });
});
