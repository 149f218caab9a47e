import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  MissingContractError,
  buyOption,
  closeOption,
  getAccountState,
  getOptionSeries,
  isXMarginError,
  listOptionSeries,
  preview,
  quoteOption,
  sellOption,
  settlementPayout,
  type OptionMarketState,
} from "../../sdk/src";
import { deploySystem, wad } from "../shared/system";
import { assetId } from "../shared/oracles";
import { mineAt } from "../shared/perps";
import { expectXMarginError, optionTrader, sdkClient } from "../shared/sdk";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;

describe("SDK option actions", function () {
  it("throws MissingContractError from every option action when the deployment has no OptionMarket", async function () {
    const sys = await loadFixture(deploySystem);
    const client = await sdkClient(sys, sys.alice);
    expect(client.deployment.contracts.optionMarket).to.equal(undefined);
    const calls: (() => Promise<unknown>)[] = [
      () => listOptionSeries(client),
      () => getOptionSeries(client, { seriesId: 1n }),
      () => quoteOption(client, { seriesId: 1n, sizeDelta: wad("1") }),
      () => buyOption(client, { accountId: 1n, seriesId: 1n, size: wad("1") }),
      () => sellOption(client, { accountId: 1n, seriesId: 1n, size: wad("1") }),
      () => closeOption(client, { accountId: 1n, seriesId: 1n }),
      () => preview(client, 1n, { type: "optionTrade", seriesId: 1n, sizeDelta: wad("1") }),
    ];
    for (const call of calls) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).to.be.instanceOf(MissingContractError);
      expect((error as MissingContractError).contract).to.equal("optionMarket");
    }
  });

  it("lists series with their terms and status, and quotes premium, fee, limit and the health after the trade", async function () {
    const { sys, alice, accountId, call, put, expiry } = await loadFixture(optionTrader);
    const series = await listOptionSeries(alice);
    expect(series.map((s) => [s.marketId, s.symbol, s.strike, s.expiry, s.isCall, s.status])).to.deep.equal([
      [call, "ETH", wad("3200"), expiry, true, "active"],
      [put, "ETH", wad("2800"), expiry, false, "active"],
    ]);
    const blockTag = await ethers.provider.getBlockNumber();
    const q = await quoteOption(alice, { seriesId: call, sizeDelta: wad("2"), accountId, blockTag });
    const [premium, fee] = await sys.options.quoteTrade(call, wad("2"), { blockTag });
    expect([q.premium, q.fee]).to.deep.equal([premium, fee]);
    // Fee: ⌈2·3000·0.0003⌉ = 1.8 USD. Limit: the premium 0.5% worse, rounded up.
    expect(q.fee).to.equal(wad("1.8"));
    expect(q.limitPrice).to.equal((premium * 10_050n + 9_999n) / 10_000n);
    // The preview pays ⌈2·premium⌉ + fee in USDC units and leaves the account above its requirement.
    const cost = (2n * premium + QUOTE_UNIT - 1n) / QUOTE_UNIT + 1_800_000n;
    expect(q.preview?.option?.premiumQuote).to.equal(cost - 1_800_000n);
    expect(q.preview?.health.equityMark).to.be.lessThan(q.preview?.before.equityMark ?? 0n);
    expect(q.preview?.health.initialRequirement).to.be.greaterThan(0n);
    expect(q.preview?.revert).to.equal(undefined);
  });

  it("buys with a slippage limit, sells and closes, paying exactly the premium and fee of the OptionTraded event", async function () {
    const { sys, alice, accountId, put } = await loadFixture(optionTrader);
    const before = await sys.vault.balanceOf(accountId, sys.usdc);
    const bought = await buyOption(alice, { accountId, seriesId: put, size: wad("3"), slippageBps: 100 });
    expect(bought.newSize).to.equal(wad("3"));
    expect(bought.premiumPerContract).to.be.at.most(bought.limitPrice);
    const afterBuy = await sys.vault.balanceOf(accountId, sys.usdc);
    expect(before - afterBuy).to.equal((bought.premium + bought.fee) / QUOTE_UNIT);
    // 3·3000·0.0003 = 2.7 USD fee.
    expect(bought.fee).to.equal(wad("2.7"));

    const sold = await sellOption(alice, { accountId, seriesId: put, size: wad("1") });
    expect(sold.newSize).to.equal(wad("2"));
    expect(sold.premiumPerContract).to.be.at.least(sold.limitPrice);
    expect((await sys.vault.balanceOf(accountId, sys.usdc)) - afterBuy).to.equal(
      (sold.premium - sold.fee) / QUOTE_UNIT,
    );
    const closed = await closeOption(alice, { accountId, seriesId: put });
    expect([closed.sizeDelta, closed.newSize]).to.deep.equal([-wad("2"), 0n]);
    expect(await sys.options.positionSize(accountId, put)).to.equal(0n);
  });

  it("passes the limit and the deadline to the contract: PriceLimitExceeded one wei below the premium, DeadlineExpired", async function () {
    const { alice, accountId, call } = await loadFixture(optionTrader);
    const T = BigInt(await time.latest()) + 1n;
    const p = await preview(
      alice,
      accountId,
      { type: "optionTrade", seriesId: call, sizeDelta: wad("1") },
      { timestamp: T },
    );
    const premium = p.option?.premium ?? 0n;
    await time.setNextBlockTimestamp(T);
    const e = await expectXMarginError(
      buyOption(alice, { accountId, seriesId: call, size: wad("1"), limitPrice: premium - 1n, deadline: T }),
      "PriceLimitExceeded",
    );
    // One error for both markets (IMarket): an option's fill price is its premium per contract.
    expect(isXMarginError(e, "PriceLimitExceeded") && e.args.fillPrice).to.equal(premium);
    expect(e.message).to.match(/^the fill price [1-9][\d,]*\.\d{4,18} USD is beyond the limit/);
    await expectXMarginError(
      buyOption(alice, {
        accountId,
        seriesId: call,
        size: wad("1"),
        deadline: BigInt(await time.latest()) - 1n,
      }),
      "DeadlineExpired",
    );
  });

  it("reports an expired series, refuses to quote it, and after settlement pays what settlementPayout says", async function () {
    const { sys, alice, accountId, call, expiry } = await loadFixture(optionTrader);
    await buyOption(alice, { accountId, seriesId: call, size: wad("2") });
    await (await sys.feeds.ETH.updateAnswer(3_500n * 10n ** 8n)).wait();
    // advanceTo refreshes the feeds 30 s before its target: that round is the first at or after expiry.
    await mineAt(sys, expiry + 60n);
    expect((await getOptionSeries(alice, { seriesId: call })).status).to.equal("expired");
    await expectXMarginError(quoteOption(alice, { seriesId: call, sizeDelta: wad("1") }), "SeriesExpired");
    const p = await preview(alice, accountId, { type: "optionClose", seriesId: call });
    expect(p.revert?.name).to.equal("SeriesExpired");

    const feed = await ethers.getContractAt("MockV3Aggregator", await sys.router.primaryFeed(assetId("ETH")));
    await (await sys.options.settleSeries(call, (await feed.latestRoundData()).roundId)).wait();
    const settled = await getOptionSeries(alice, { seriesId: call });
    expect([settled.status, settled.settlementPrice]).to.deep.equal(["settled", wad("3500")]);
    // 2 calls struck at 3,200, settled at 3,500: 2·300 = 600 USDC.
    const state = await getAccountState(alice, { accountId });
    const series = Object.values(state.markets).find((m) => m.kind === "option") as OptionMarketState;
    expect(settlementPayout(series, wad("2"), QUOTE_UNIT)).to.equal(600n * USDC);
    const before = await sys.vault.balanceOf(accountId, sys.usdc);
    await (await sys.options.settleAccount(accountId, call)).wait();
    expect((await sys.vault.balanceOf(accountId, sys.usdc)) - before).to.equal(600n * USDC);
  });
});
