import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  SettlementPendingError,
  getOptionSettlement,
  getOptionSeries,
  optionMark,
  optionValuation,
  quoteSettleOptionPositions,
  settleOptionPositions,
  settleOptionSeries,
} from "../../sdk/src";
import { paddedGasLimit } from "../../sdk/src/actions/internal/gas";
import { AggregatorV3Interface__factory } from "../../typechain-types/factories/@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface__factory";
import { settlementRoundHint } from "../../scripts/keeper/options";
import { wad } from "../shared/system";
import { deployMockFeed, primarySwapInput } from "../shared/oracles";
import { expectXMarginError, sdkClient } from "../shared/sdk";
import {
  type Book,
  ETH,
  SETTLEMENT_ANSWER,
  SETTLEMENT_PRICE,
  SIZE,
  book,
  expiredBook,
  provable,
  provableBook,
  recordingClient,
  refusedUnsent,
  usd8,
} from "../shared/settlementBook";

/**
 * Review round 167 (§4 row 565): between an option's expiry and `settleSeries` the SDK could neither say
 * what a position will be paid nor settle it, and an expired series showed its last trade's Greeks. Now
 * `getOptionSettlement` finds the settling round as the keeper does (one shared search), reports the
 * price it proves and each position's payout, `settleOptionSeries` / `settleOptionPositions` send the
 * settlement and the payouts (previews, padded gas, typed refusals before any send), and `optionMark`
 * gives an expired series no Greeks.
 */
describe("SDK: an option series between expiry and settlement (round 167, §4 row 565)", function () {
  describe("getOptionSettlement", function () {
    it("reports an unexpired series as active, with no price, and refuses to settle it with SeriesNotExpired, nothing sent", async function () {
      const f = await loadFixture(book);
      const { client } = await recordingClient(f);
      const s = await getOptionSettlement(client, { seriesId: f.series[0].id, accountId: f.alice });
      expect(s.status).to.equal("active");
      expect(s.position).to.deep.equal({ accountId: f.alice, size: SIZE });
      expect("price" in s).to.equal(false);
      await refusedUnsent(
        f.sys.alice.address,
        () => settleOptionSeries(client, { seriesId: f.series[0].id }),
        (e) => {
          expect(e).to.have.property("name", "SeriesNotExpired");
          expect((e as { args: unknown }).args).to.deep.include({
            seriesId: f.series[0].id,
            expiry: f.expiry,
          });
        },
      );
    });

    it("reports an expired series without a round after expiry as pending, and refuses both settle actions with SettlementPendingError, nothing sent", async function () {
      const f = await loadFixture(expiredBook);
      const { client, sentGas } = await recordingClient(f);
      const s = await getOptionSettlement(client, { seriesId: f.series[0].id, accountId: f.alice });
      expect(s.status).to.equal("pending");
      expect(s.position).to.deep.equal({ accountId: f.alice, size: SIZE });
      expect("payout" in s.position!).to.equal(false);
      const pending = (e: unknown) => {
        expect(e).to.be.instanceOf(SettlementPendingError);
        expect((e as SettlementPendingError).seriesId).to.equal(f.series[0].id);
        expect((e as SettlementPendingError).expiry).to.equal(f.expiry);
      };
      await refusedUnsent(
        f.sys.alice.address,
        () => settleOptionSeries(client, { seriesId: f.series[0].id }),
        pending,
      );
      await refusedUnsent(
        f.sys.alice.address,
        () => settleOptionPositions(client, { seriesId: f.series[0].id, accountIds: [f.alice] }),
        pending,
      );
      expect(sentGas).to.deep.equal([]);
    });

    it("names the round after expiry, the price it proves and each position's payout, before settleSeries, as the keeper's search does", async function () {
      const f = await loadFixture(provableBook);
      const client = await sdkClient(f.sys, f.sys.carol);
      const s = provable(await getOptionSettlement(client, { seriesId: f.series[0].id, accountId: f.alice }));
      expect([s.roundId, s.price, s.feed]).to.deep.equal([
        f.round,
        SETTLEMENT_PRICE,
        await f.sys.feeds.ETH.getAddress(),
      ]);
      expect(s.value).to.equal(SETTLEMENT_PRICE - wad("2900"));
      // ⌊1.234567890123456789 × 100.12345678 USD⌋ in USDC units.
      expect(s.position).to.deep.equal({ accountId: f.alice, size: SIZE, payout: 123_609_204n });
      const keeperHint = await settlementRoundHint(
        f.sys.router,
        (a) => AggregatorV3Interface__factory.connect(a, ethers.provider),
        ETH,
        f.expiry,
      );
      expect(keeperHint).to.equal(s.roundId);
      expect((await getOptionSeries(client, { seriesId: f.series[0].id })).settled).to.equal(false);
      // Every read at the block asked for: the block before the round was posted knew no price.
      const before = (await ethers.provider.getBlockNumber()) - 1;
      const earlier = await getOptionSettlement(client, { seriesId: f.series[0].id, blockTag: before });
      expect(earlier.status).to.equal("pending");
    });

    it("refuses a series never listed with UnknownSeries, from the read and both actions, nothing sent", async function () {
      const f = await loadFixture(provableBook);
      const { client } = await recordingClient(f);
      await expectXMarginError(getOptionSettlement(client, { seriesId: 99n }), "UnknownSeries");
      const unknown = (e: unknown) => {
        expect(e).to.have.property("name", "UnknownSeries");
        expect((e as { args: { seriesId: bigint } }).args.seriesId).to.equal(99n);
      };
      await refusedUnsent(f.sys.alice.address, () => settleOptionSeries(client, { seriesId: 99n }), unknown);
      await refusedUnsent(
        f.sys.alice.address,
        () => settleOptionPositions(client, { seriesId: 99n, accountIds: [f.alice] }),
        unknown,
      );
    });
  });

  describe("payouts", function () {
    it("pays every position exactly the previewed quote units: ITM call and put, OTM, at strike, long and short", async function () {
      const f = await loadFixture(provableBook);
      const { client, estimates, sentGas } = await recordingClient(f);
      const balance = (id: bigint) => f.sys.vault.balanceOf(id, f.sys.usdc);
      const seen: Record<string, bigint[]> = {};
      for (const { name, id } of f.series) {
        const q = await quoteSettleOptionPositions(client, { seriesId: id, accountIds: [f.alice, f.bob] });
        expect(q.settlement.status).to.equal("provable");
        expect(q.empty).to.deep.equal([]);
        const predicted = q.positions.map((p) => p.payout);
        const before = [await balance(f.alice), await balance(f.bob)];
        const r = await settleOptionPositions(client, { seriesId: id, accountIds: [f.alice, f.bob] });
        const after = [await balance(f.alice), await balance(f.bob)];
        expect(r.series?.price, name).to.equal(SETTLEMENT_PRICE);
        expect(r.series?.roundId, name).to.equal(f.round);
        expect(
          r.settled.map((p) => p.payout),
          name,
        ).to.deep.equal(predicted);
        expect([after[0] - before[0], after[1] - before[1]], name).to.deep.equal(predicted);
        seen[name] = predicted;
      }
      // 1.234567890123456789 contracts × 100.12345678 USD: the long rounded down, the short up.
      expect(seen).to.deep.equal({
        "ITM call": [123_609_204n, -123_609_205n],
        "ITM put": [123_304_373n, -123_304_374n],
        "OTM call": [0n, 0n],
        "OTM put": [0n, 0n],
        "call at strike": [0n, 0n],
        "put at strike": [0n, 0n],
      });
      // Two sends a series (settleSeries, then settleAccounts), each at its estimate + 20% + 10,000.
      expect(sentGas).to.have.length(12);
      expect(sentGas).to.deep.equal(estimates.map(paddedGasLimit));
    });

    it("reads a settled series' recorded price and pays the same after settleOptionSeries alone", async function () {
      const f = await loadFixture(provableBook);
      const { client } = await recordingClient(f);
      const put = f.series[1].id;
      const preview = provable(await getOptionSettlement(client, { seriesId: put, accountId: f.bob }));
      const sent = await settleOptionSeries(client, { seriesId: put });
      expect([sent.roundId, sent.price]).to.deep.equal([preview.roundId, preview.price]);
      const s = await getOptionSettlement(client, { seriesId: put, accountId: f.bob });
      expect(s.status).to.equal("settled");
      if (s.status !== "settled") return;
      expect([s.price, s.value, s.position]).to.deep.equal([preview.price, preview.value, preview.position]);
      const before = await f.sys.vault.balanceOf(f.bob, f.sys.usdc);
      const r = await settleOptionPositions(client, { seriesId: put, accountIds: [f.bob] });
      expect(r.series).to.equal(undefined); // already settled: one transaction
      expect((await f.sys.vault.balanceOf(f.bob, f.sys.usdc)) - before).to.equal(preview.position!.payout);
    });

    it("refuses to settle again after settlement: SeriesAlreadySettled and NoPosition, nothing sent", async function () {
      const f = await loadFixture(provableBook);
      const { client, sentGas } = await recordingClient(f);
      const call = f.series[0].id;
      await settleOptionPositions(client, { seriesId: call, accountIds: [f.alice, f.bob] });
      const sends = sentGas.length;
      await refusedUnsent(
        f.sys.alice.address,
        () => settleOptionSeries(client, { seriesId: call }),
        (e) => expect(e).to.have.property("name", "SeriesAlreadySettled"),
      );
      await refusedUnsent(
        f.sys.alice.address,
        () => settleOptionPositions(client, { seriesId: call, accountIds: [f.alice, f.bob] }),
        (e) => {
          expect(e).to.have.property("name", "NoPosition");
          expect((e as { args: unknown }).args).to.deep.include({ accountId: f.alice, seriesId: call });
        },
      );
      expect(sentGas).to.have.length(sends);
      const s = await getOptionSettlement(client, { seriesId: call, accountId: f.alice });
      expect([s.status, s.position]).to.deep.equal(["settled", { accountId: f.alice, size: 0n, payout: 0n }]);
    });
  });

  describe("across a primary-feed swap (rows 570–575)", function () {
    /** Sends the timelock's `configureAsset` of ETH to `feed` alone, with the fixture's bounds. */
    async function swapTo(f: Book, feed: { getAddress(): Promise<string> }) {
      const input = await primarySwapInput(f.sys.router, ETH, feed);
      await time.increase(30);
      await (await f.sys.router.configureAsset(ETH, input)).wait();
    }

    it("is pending until the successor's first round after the swap, then settles and pays at it when the old feed posted nothing after expiry", async function () {
      const f = await loadFixture(expiredBook);
      const { client } = await recordingClient(f);
      const fresh = await deployMockFeed(8, usd8(3_050n)); // round 1, before the swap
      await swapTo(f, fresh);
      const call = f.series[0].id;
      expect((await getOptionSettlement(client, { seriesId: call })).status).to.equal("pending");
      await time.increase(30);
      await (await fresh.updateAnswer(usd8(3_120n))).wait();
      const s = provable(await getOptionSettlement(client, { seriesId: call, accountId: f.alice }));
      expect([s.feed, s.roundId, s.price]).to.deep.equal([await fresh.getAddress(), 2n, wad("3120")]);
      const before = await f.sys.vault.balanceOf(f.alice, f.sys.usdc);
      const r = await settleOptionPositions(client, { seriesId: call, accountIds: [f.alice] });
      expect([r.series?.roundId, r.series?.price]).to.deep.equal([2n, wad("3120")]);
      // ⌊1.234567890123456789 × 220 USD⌋
      expect(s.position!.payout).to.equal(271_604_935n);
      expect((await f.sys.vault.balanceOf(f.alice, f.sys.usdc)) - before).to.equal(s.position!.payout);
    });

    it("settles on the replaced feed's round after expiry, not the new feed's, when the old feed posted one before the swap", async function () {
      const f = await loadFixture(expiredBook);
      const { client } = await recordingClient(f);
      await time.increase(30);
      await (await f.sys.feeds.ETH.updateAnswer(usd8(3_300n))).wait();
      const oldRound = await f.sys.feeds.ETH.latestRound();
      const fresh = await deployMockFeed(8, usd8(3_050n));
      await fresh.updateAnswer(usd8(3_060n));
      await swapTo(f, fresh);
      await time.increase(30);
      await (await fresh.updateAnswer(usd8(3_070n))).wait();
      const call = f.series[0].id;
      const s = provable(await getOptionSettlement(client, { seriesId: call, accountId: f.alice }));
      expect([s.feed, s.roundId, s.price]).to.deep.equal([
        await f.sys.feeds.ETH.getAddress(),
        oldRound,
        wad("3300"),
      ]);
      const sent = await settleOptionSeries(client, { seriesId: call });
      expect([sent.roundId, sent.price]).to.deep.equal([oldRound, wad("3300")]);
    });
  });

  describe("an expired series shows no live Greeks nor model price", function () {
    it("marks an active series with the model and its Greeks, an expired one at intrinsic value of the proven price with greeks null, and a pending one with no value", async function () {
      const f = await loadFixture(book);
      const client = await sdkClient(f.sys, f.sys.carol);
      const [spot, vol] = await f.sys.router.getPriceAndVolatility(ETH);
      const now = BigInt(await time.latest());
      const live = await getOptionSeries(client, { seriesId: f.series[0].id });
      const v = optionValuation(live, spot, vol, now);
      const active = optionMark(live, spot, vol, now);
      expect(active).to.deep.equal({
        status: "active",
        low: v.low,
        high: v.high,
        greeks: { delta: v.delta, gamma: v.gamma, vega: v.vega, vanna: v.vanna, volga: v.volga },
        modelVolatility: v.modelVolatility,
      });
      expect(live.vegaPerContract).to.be.greaterThan(0n); // the pool limits' rate, not a Greek to show

      await time.increaseTo(f.expiry + 60n);
      const expired = await getOptionSeries(client, { seriesId: f.series[0].id });
      const later = BigInt(await time.latest());
      expect(optionMark(expired, spot, vol, later)).to.deep.equal({
        status: "expired",
        price: undefined,
        value: undefined,
        greeks: null,
      });
      await (await f.sys.feeds.ETH.updateAnswer(SETTLEMENT_ANSWER)).wait();
      const s = provable(await getOptionSettlement(client, { seriesId: f.series[0].id }));
      expect(optionMark(s.series, spot, vol, later, s.price)).to.deep.equal({
        status: "expired",
        price: SETTLEMENT_PRICE,
        value: s.value,
        greeks: null,
      });
      // The engine's own valuation still marks the expired series at today's spot, delta 1 (margin's view).
      expect(optionValuation(expired, spot, vol, later).delta).to.equal(wad("1"));
    });
  });
});
