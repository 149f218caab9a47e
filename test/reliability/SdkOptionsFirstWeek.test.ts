import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { encodeBytes32String } from "ethers";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  type XMarginClient,
  accountHealth,
  buyOption,
  closeOption,
  createAccount,
  deposit,
  getAccountState,
  getHealth,
  getLiquidationPrice,
  getOptionSeries,
  getPoolState,
  listOptionSeries,
  makeXMarginError,
  openPosition,
  preview,
  quoteOption,
  sellOption,
  startAuction,
  withdraw,
} from "../../sdk/src";
import { paddedGasLimit } from "../../sdk/src/actions/internal/gas";
import { type System, wad } from "../shared/system";
import { DAY, HOUR, deployOptionsSystem, fromNow, listSeries } from "../shared/options";
import { setFeedPrice } from "../shared/oracles";
import { mineAt } from "../shared/perps";
import { expectXMarginError, gasLimitAndUse, onceBeforeSend, sdkClient, walletClient } from "../shared/sdk";

/**
 * Review round 161: a developer building an options UI on the SDK, from sdk/README.md and then the code:
 * series, quotes, buys and sales mined a block after their quote and estimate, refusals, a mixed book's
 * Greeks and liquidation price, expiry and settlement, and the units a UI shows.
 */

const USDC = 10n ** 6n;
const ROOT = path.resolve(__dirname, "../..");

type OptionsSystem = System & { options: Awaited<ReturnType<typeof deployOptionsSystem>>["options"] };

/** An options system at ETH volatility 51% (the model's IM repricing line is 50%), series listed. */
async function optionsAt51() {
  const sys = await deployOptionsSystem();
  await setFeedPrice(sys.volFeeds.ETH, "0.51");
  const call = await listSeries(sys.options, "ETH", "3000", await fromNow(30n * DAY), true);
  const put = await listSeries(sys.options, "ETH", "2800", await fromNow(30n * DAY), false);
  const far = await listSeries(sys.options, "ETH", "3300", await fromNow(60n * DAY), true);
  const shortPut = await listSeries(sys.options, "ETH", "2950", await fromNow(90n * 60n), false);
  const shortCall = await listSeries(sys.options, "ETH", "3100", await fromNow(3n * HOUR), true);
  return { sys, call, put, far, shortPut, shortCall };
}

/** Alice's cross account holding `usdc` USDC, made and funded through `client`. */
async function fundedAccount(sys: OptionsSystem, client: XMarginClient, usdc = 100_000n * USDC) {
  await sys.usdc.mint(sys.alice.address, usdc);
  const { accountId } = await createAccount(client);
  await deposit(client, { accountId, token: "USDC", amount: usdc });
  return accountId;
}

/**
 * Alice's mixed book at 51%: 100,000 USDC, long 1 ETH perp, long 5 of the 30-day calls, short 5 of the
 * 30-day puts; her client through a wallet that runs `beforeSend` (once) between estimate and mining.
 */
async function mixedBookAt51() {
  const f = await optionsAt51();
  const estimates: bigint[] = [];
  const sentGas: bigint[] = [];
  const hook = onceBeforeSend();
  const client = await walletClient(f.sys, { estimates, sentGas, beforeSend: hook.beforeSend });
  const accountId = await fundedAccount(f.sys, client);
  await openPosition(client, { accountId, marketId: f.sys.markets.ETH, size: wad("1") });
  await buyOption(client, { accountId, seriesId: f.call, size: wad("5") });
  await sellOption(client, { accountId, seriesId: f.put, size: wad("5") });
  return { ...f, client, accountId, estimates, sentGas, hook };
}

describe("The SDK on an options trader's first week (review round 161)", function () {
  describe("sends mined after a volatility round that takes the book from its Greeks to repricing", function () {
    it("buys a third option mined after ETH volatility moves 51% → 49%, with gas to spare", async function () {
      const { sys, client, accountId, far, estimates, hook } = await loadFixture(mixedBookAt51);
      // At 51% the options' initial requirement is their Taylor sum; at 49% (below twice the 25-point IM
      // volatility shock) the engine reprices each of them over the 15 cells of the grid.
      hook.arm(() => setFeedPrice(sys.volFeeds.ETH, "0.49"));
      const bought = await buyOption(client, { accountId, seriesId: far, size: wad("5") });
      const { limit, used } = await gasLimitAndUse(bought.receipt.hash);
      // Was sent with the padded estimate alone (518,802 → 632,562) and ran out of gas at 627,980, shown as
      // ethers' "could not coalesce error" (no XMarginError) with the gas paid.
      expect(used).to.be.greaterThan(paddedGasLimit(estimates.at(-1)!));
      expect(used).to.be.lessThan(limit);
      expect(bought.newSize).to.equal(wad("5"));
    });

    it("trades the perp and withdraws from that book after the same round", async function () {
      const { sys, client, accountId, estimates, hook } = await loadFixture(mixedBookAt51);
      hook.arm(() => setFeedPrice(sys.volFeeds.ETH, "0.49"));
      const traded = await openPosition(client, { accountId, marketId: sys.markets.ETH, size: wad("1") });
      const perp = await gasLimitAndUse(traded.receipt.hash);
      expect(perp.used).to.be.greaterThan(paddedGasLimit(estimates.at(-1)!));
      expect(perp.used).to.be.lessThan(perp.limit);

      await setFeedPrice(sys.volFeeds.ETH, "0.51");
      hook.arm(() => setFeedPrice(sys.volFeeds.ETH, "0.49"));
      const withdrawn = await withdraw(client, { accountId, token: "USDC", amount: 1_000n * USDC });
      const w = await gasLimitAndUse(withdrawn.hash);
      expect(w.used).to.be.greaterThan(paddedGasLimit(estimates.at(-1)!));
      expect(w.used).to.be.lessThan(w.limit);
    });

    it("sends an account's first option trade, mined 12 s after its estimate, with the padding and one option's repricing", async function () {
      const { sys, call } = await loadFixture(optionsAt51);
      const estimates: bigint[] = [];
      const client = await walletClient(sys, { delaySeconds: 12, estimates });
      const accountId = await fundedAccount(sys, client);
      const bought = await buyOption(client, { accountId, seriesId: call, size: wad("2") });
      const { limit, used } = await gasLimitAndUse(bought.receipt.hash);
      expect(limit).to.equal(paddedGasLimit(estimates.at(-1)!) + 300_000n);
      expect(used).to.be.lessThan(paddedGasLimit(estimates.at(-1)!));
    });
  });

  describe("limits of option trades mined a block (12 s) after their quote", function () {
    it("sells a 90-minute put within the default 50 bp, time decay alone lowering its premium", async function () {
      const { sys, shortPut } = await loadFixture(optionsAt51);
      const client = await walletClient(sys, { delaySeconds: 12 });
      const accountId = await fundedAccount(sys, client);
      const q = await quoteOption(client, { seriesId: shortPut, sizeDelta: -wad("1") });
      const sold = await sellOption(client, { accountId, seriesId: shortPut, size: wad("1") });
      // Was PriceLimitExceeded: limit 50 bp under the quote, 0.1192 → 0.1181 USD (−0.92%) in 12 s with
      // spot and volatility unchanged. The limit now starts from the premium a block later.
      expect(sold.limitPrice).to.equal(q.limitPrice);
      expect(sold.limitPrice).to.be.lessThan((q.premium * 9_950n) / 10_000n);
      expect(sold.premiumPerContract).to.be.lessThan(q.premium);
      expect(sold.premiumPerContract).to.be.at.least(sold.limitPrice);
    });

    it("still refuses a sale whose premium a spot move takes beyond the slippage, in USD per contract", async function () {
      const { sys, shortCall } = await loadFixture(optionsAt51);
      const armed = { move: false };
      const client = await walletClient(sys, {
        beforeSend: async () => {
          if (armed.move) await setFeedPrice(sys.feeds.ETH, "2990");
        },
      });
      const accountId = await fundedAccount(sys, client);
      // ETH 3,000 → 2,990 between the quote and the block: the 3-hour 3,100 call loses far more than 50 bp.
      armed.move = true;
      const e = await expectXMarginError(
        sellOption(client, { accountId, seriesId: shortCall, size: wad("1") }),
        "PriceLimitExceeded",
      );
      expect(e.message).to.match(
        /^the fill price 0\.\d{4,} USD is beyond the limit 0\.\d{4,} USD \(slippage/,
      );
      await ethers.provider.send("evm_mine", []);
    });

    it("buys at no more than the quote's limit, the premium at the mining block", async function () {
      const { sys, far } = await loadFixture(optionsAt51);
      const client = await walletClient(sys, { delaySeconds: 12 });
      const accountId = await fundedAccount(sys, client);
      const q = await quoteOption(client, { seriesId: far, sizeDelta: wad("2"), accountId });
      const bought = await buyOption(client, { accountId, seriesId: far, size: wad("2") });
      expect(bought.limitPrice).to.equal(q.limitPrice);
      expect(bought.limitPrice).to.equal((q.premium * 10_050n + 9_999n) / 10_000n);
      // 12 s of decay: a buy fills at or below its quote.
      expect(bought.premiumPerContract).to.be.at.most(q.premium);
      expect(bought.premium).to.equal(
        (((bought.premiumPerContract * wad("2")) / 10n ** 18n + 10n ** 12n - 1n) / 10n ** 12n) * 10n ** 12n,
      );
    });
  });

  describe("refusals, as an options UI shows them", function () {
    it("tells a fill from a limit that agree to four decimals", function () {
      // A 3-hour call sold 12 s after its quote: premium 0.0124 USD, limit 50 bp under it.
      const e = makeXMarginError("PriceLimitExceeded", [12_310_000_000_000_000n, 12_338_000_000_000_000n]);
      // Was "the fill price 0.0123 is beyond the limit 0.0123 (slippage)".
      expect(e.message).to.equal(
        "the fill price 0.01231 USD is beyond the limit 0.01234 USD (slippage; an option's is its premium per contract)",
      );
    });

    it("words an unknown series, the open-interest cap and the pool's delta limit in contracts and USD", async function () {
      const { sys, call } = await loadFixture(optionsAt51);
      const client = await sdkClient(sys, sys.alice);
      const accountId = await fundedAccount(sys, client);
      const unknown = await expectXMarginError(
        quoteOption(client, { seriesId: 99n, sizeDelta: wad("1") }),
        "UnknownSeries",
      );
      expect(unknown.message).to.equal("option series 99 does not exist");
      const cap = await expectXMarginError(
        buyOption(client, { accountId, seriesId: call, size: wad("1001") }),
        "OpenInterestCapExceeded",
      );
      expect(cap.message).to.match(
        /long open interest of market \(or option series\) 1 to 1,001\.0000, above the cap of 1,000\.0000$/,
      );
      // The delta side moves with the clock: preview at the second the sale is mined.
      const T = BigInt(await time.latest()) + 5n;
      const sale = { type: "optionTrade", seriesId: call, sizeDelta: -wad("900") } as const;
      const p = await preview(client, accountId, sale, { timestamp: T });
      expect(p.revert?.name).to.equal("PoolOptionDeltaLimitExceeded");
      await time.setNextBlockTimestamp(T);
      const sent = await expectXMarginError(
        sellOption(client, { accountId, seriesId: call, size: wad("900") }),
        "PoolOptionDeltaLimitExceeded",
      );
      expect(sent.message).to.equal(p.revert?.message);
      expect(sent.message).to.match(
        /^the trade would take a side of the traders' option delta on ETH to [\d,]+\.\d\d USD of notional, above the pool's limit of 1,000,000\.00 USD$/,
      );
    });
  });

  describe("a mixed book's Greeks and liquidation", function () {
    it("gives the book's Greeks per underlying and a liquidation price at which the engine liquidates, then refuses a frozen account's option trade", async function () {
      const { sys, call, put } = await loadFixture(optionsAt51);
      const client = await sdkClient(sys, sys.alice);
      const accountId = await fundedAccount(sys, client, 10_000n * USDC);
      await openPosition(client, { accountId, marketId: sys.markets.ETH, size: wad("2") });
      await sellOption(client, { accountId, seriesId: put, size: wad("20") });
      await buyOption(client, { accountId, seriesId: call, size: wad("1") });
      const state = await getAccountState(client, { accountId });
      const eth = accountHealth(state).groups[encodeBytes32String("ETH").toLowerCase()];
      // Long 2 perps, short 20 puts (delta > 0 each), long a call: a long delta, short gamma and vega.
      expect(eth.greeks.delta).to.be.greaterThan(wad("2"));
      expect(eth.greeks.optionSize).to.equal(-wad("19"));
      expect(eth.greeks.vega).to.be.lessThan(0n);
      expect(eth.greeks.gamma).to.be.lessThan(0n);

      const { down } = await getLiquidationPrice(client, { accountId, asset: encodeBytes32String("ETH") });
      expect(down === null).to.equal(false);
      // The feed has 8 decimals: one cent above the liquidation price the engine still holds the account,
      // at it rounded down to the feed it does not.
      const cents = (down! / 10n ** 16n) * 10n ** 16n;
      await setFeedPrice(sys.feeds.ETH, ethers.formatEther(cents + 10n ** 16n));
      const above = await getHealth(client, { accountId });
      expect(above.equityMaintenance).to.be.at.least(above.maintenanceRequirement);
      await setFeedPrice(sys.feeds.ETH, ethers.formatEther(cents));
      const at = await getHealth(client, { accountId });
      expect(at.equityMaintenance).to.be.lessThan(at.maintenanceRequirement);

      const keeper = await sdkClient(sys, sys.keeper);
      await startAuction(keeper, { accountId });
      const frozen = await expectXMarginError(
        buyOption(client, { accountId, seriesId: call, size: wad("1") }),
        "AccountFrozen",
      );
      expect(frozen.message).to.equal(
        `account ${accountId} is frozen by a liquidation auction (deposits and risk-reducing trades only)`,
      );
    });
  });

  describe("between expiry and settlement", function () {
    it("shows the series expired and unsettled, the pool's exits waiting on it, and refuses its close by date", async function () {
      const { sys, shortCall } = await loadFixture(optionsAt51);
      const client = await sdkClient(sys, sys.alice);
      const accountId = await fundedAccount(sys, client);
      await buyOption(client, { accountId, seriesId: shortCall, size: wad("2") });
      const { expiry } = await getOptionSeries(client, { seriesId: shortCall });
      await setFeedPrice(sys.feeds.ETH, "3150");
      await mineAt(sys, expiry + 60n);
      const expired = (await listOptionSeries(client, { status: "expired" })).map((s) => s.marketId);
      expect(expired).to.include(shortCall);
      expect((await getPoolState(client, {})).settlementPending).to.equal(true);
      const e = await expectXMarginError(
        closeOption(client, { accountId, seriesId: shortCall }),
        "SeriesExpired",
      );
      expect(e.message).to.equal(
        `option series ${shortCall} expired at ${new Date(Number(expiry) * 1000).toISOString()}: it can only be settled`,
      );
      // Until settled the position is worth its intrinsic value at the current spot: 2 × (3,150 − 3,100).
      const state = await getAccountState(client, { accountId });
      const h = accountHealth(state);
      const cash = state.collateral.find((c) => c.token === state.quoteToken)!.balance * 10n ** 12n;
      expect(h.equityMark - cash).to.equal(wad("100"));
    });
  });

  describe("units", function () {
    it("documents the unit of every option result, valuation and Greek a UI displays", function () {
      const read = (f: string) => readFileSync(path.join(ROOT, f), "utf8");
      const undocumented: string[] = [];
      for (const [name, file] of [
        ["OptionTradeReturnType", "sdk/src/actions/internal/optionTrade.ts"],
        ["QuoteOptionReturnType", "sdk/src/actions/quoteOption.ts"],
        ["OptionValuation", "sdk/src/markets/option.ts"],
        ["OptionTradeResult", "sdk/src/markets/option.ts"],
        ["Exposure", "sdk/src/markets/types.ts"],
        ["Greeks", "sdk/src/math/portfolio.ts"],
        ["HealthGroup", "sdk/src/math/health.ts"],
      ] as const) {
        const body =
          new RegExp(`export interface ${name} [^{]*\\{([\\s\\S]*?)\\n\\}`).exec(read(file))?.[1] ?? "";
        const lines = body.split("\n");
        lines.forEach((line, i) => {
          const field = /^ {2}(\w+)\??: /.exec(line)?.[1];
          if (
            field &&
            !["receipt", "market", "position", "valuation", "preview", "greeks"].includes(field) &&
            !/boolean;$/.test(line) &&
            !lines[i - 1]?.trim().endsWith("*/")
          ) {
            undocumented.push(`${name}.${field}`);
          }
        });
      }
      // Were 25, among them OptionValuation.low/high/delta/gamma/vega ("all WAD"), Greeks.delta/gamma/vega,
      // HealthGroup.volatility and OptionTradeReturnType.newSize/limitPrice/deadline.
      expect(undocumented).to.deep.equal([]);
    });

    it("prints a premium below a cent in the README's options example", function () {
      const example = read("sdk/examples/options.ts");
      // formatUsd's two decimals showed a 0.0071 USD premium (a 1-day put 10% out of the money) as "0.01".
      expect(example).to.include("formatUsd(q.premium, 4)");
      function read(f: string) {
        return readFileSync(path.join(ROOT, f), "utf8");
      }
    });
  });
});
