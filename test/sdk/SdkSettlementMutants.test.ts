import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  SettlementPendingError,
  createClient,
  getOptionSeries,
  getOptionSettlement,
  optionMark,
  quoteSettleOptionPositions,
  settleOptionPositions,
  settleOptionSeries,
} from "../../sdk/src";
import { findSettlementRound } from "../../sdk/src/actions/internal/settlementRound";
import { wad } from "../shared/system";
import { deploymentOf, onceBeforeSend } from "../shared/sdk";
import {
  type Book,
  ETH,
  SETTLEMENT_ANSWER,
  SETTLEMENT_PRICE,
  SIZE,
  expiredBook,
  provable,
  provableBook,
  recordingClient,
  refusedUnsent,
} from "../shared/settlementBook";

/**
 * Review round 171: the mutation test of round 167's settlement reads and actions (§4 rows 620–623).
 * Each spec pins a behaviour that a plausible slip in sdk/src/actions/getOptionSettlement.ts,
 * settleOptionSeries.ts, settleOptionPositions.ts, internal/settlement.ts or markets/option.ts left
 * unnoticed by test/sdk/SdkSettlement.test.ts (REPORT.md of round 171 names the mutants).
 */

/** The ITM call's payouts at the settlement price: Alice's long rounded down, Bob's short up (USDC units). */
const ITM_CALL_PAYOUTS = [123_609_204n, -123_609_205n];

/** Reconfigures ETH on its own primary feed with a price ceiling of 2,000 USD: every 3,000 round now reads out of bounds. */
async function capPriceAt2000(f: Book): Promise<void> {
  const current = await f.sys.router.assetConfig(ETH);
  await (
    await f.sys.router.configureAsset(ETH, {
      primary: await f.sys.feeds.ETH.getAddress(),
      primaryHeartbeat: 3_600,
      secondaries: [],
      secondaryHeartbeats: [],
      minPrice: current.minPrice,
      maxPrice: wad("2000"),
      maxDeviation: 0n,
    })
  ).wait();
}

describe("SDK: option settlement, as its mutation test pins it (round 171)", function () {
  describe("findSettlementRound's bounds", function () {
    /** Rounds 1..20 of phase 1, round n updated at 1000 + 100·n; `missing` rounds revert (read as null). */
    const PHASE = 1n << 64n;
    const latest = { roundId: PHASE + 20n, updatedAt: 3000n };
    function feed(...missing: bigint[]) {
      const reads: bigint[] = [];
      const read = async (id: bigint) => {
        reads.push(id);
        const n = id - PHASE;
        return n >= 1n && n <= 20n && !missing.includes(n) ? 1000n + 100n * n : null;
      };
      return { read, reads };
    }

    it("takes a latest round updated exactly at expiry: settleSeries accepts updatedAt = expiry", async function () {
      expect(await findSettlementRound(latest, 3000n, feed().read)).to.equal(PHASE + 20n);
    });

    it("gives up when the round before the first one after expiry cannot be read (its getRoundData reverts), rather than name that missing round", async function () {
      // Expiry 2,950: round 20 (3,000) is first, but round 19 reverts: no hint proves it.
      expect(await findSettlementRound(latest, 2950n, feed(19n).read)).to.equal(null);
    });
  });

  describe("reads at one block", function () {
    it("reads the settlement at the block asked for: before settleSeries and the payouts were sent, and before the price ceiling fell, it is provable with each position and payout", async function () {
      const f = await loadFixture(provableBook);
      const { client } = await recordingClient(f);
      const call = f.series[0].id;
      const block = await ethers.provider.getBlockNumber();
      const [, , , roundUpdatedAt] = await f.sys.feeds.ETH.getRoundData(f.round);
      await settleOptionPositions(client, { seriesId: call, accountIds: [f.alice, f.bob] });
      await capPriceAt2000(f);

      const s = provable(
        await getOptionSettlement(client, { seriesId: call, accountId: f.alice, blockTag: block }),
      );
      expect([s.roundId, s.price, s.updatedAt]).to.deep.equal([f.round, SETTLEMENT_PRICE, roundUpdatedAt]);
      expect(s.position).to.deep.equal({ accountId: f.alice, size: SIZE, payout: ITM_CALL_PAYOUTS[0] });

      const q = await quoteSettleOptionPositions(client, {
        seriesId: call,
        accountIds: [f.alice, f.bob],
        blockTag: block,
      });
      expect(q.settlement.status).to.equal("provable");
      expect(q.positions.map((p) => [p.accountId, p.size, p.payout])).to.deep.equal([
        [f.alice, SIZE, ITM_CALL_PAYOUTS[0]],
        [f.bob, -SIZE, ITM_CALL_PAYOUTS[1]],
      ]);
      expect(q.empty).to.deep.equal([]);

      // At the latest block the series is settled and both positions paid out.
      const now = await getOptionSettlement(client, { seriesId: call, accountId: f.alice });
      expect([now.status, now.position]).to.deep.equal([
        "settled",
        { accountId: f.alice, size: 0n, payout: 0n },
      ]);
    });

    it("reports the settling round's updatedAt, and settleOptionSeries returns the round, price and time it recorded", async function () {
      const f = await loadFixture(provableBook);
      const { client } = await recordingClient(f);
      const [, , , roundUpdatedAt] = await f.sys.feeds.ETH.getRoundData(f.round);
      const put = f.series[1].id;
      const preview = provable(await getOptionSettlement(client, { seriesId: put }));
      expect(preview.updatedAt).to.equal(roundUpdatedAt);
      const sent = await settleOptionSeries(client, { seriesId: put });
      expect([sent.roundId, sent.price, sent.updatedAt]).to.deep.equal([
        f.round,
        SETTLEMENT_PRICE,
        roundUpdatedAt,
      ]);
    });
  });

  describe("a round only governance can settle on", function () {
    it("reports a series whose first round after expiry opens a new feed phase as pending, and refuses to settle it with SettlementPendingError, nothing sent", async function () {
      const f = await loadFixture(expiredBook);
      const { client, sentGas } = await recordingClient(f);
      const now = BigInt(await time.latest());
      const phaseStart = (2n << 64n) | 1n;
      await (await f.sys.feeds.ETH.updateRoundData(phaseStart, SETTLEMENT_ANSWER, now, now)).wait();
      const call = f.series[0].id;
      const s = await getOptionSettlement(client, { seriesId: call, accountId: f.alice });
      expect([s.status, "price" in s]).to.deep.equal(["pending", false]);
      await refusedUnsent(
        f.sys.alice.address,
        () => settleOptionSeries(client, { seriesId: call }),
        (e) => expect(e).to.be.instanceOf(SettlementPendingError),
      );
      expect(sentGas).to.deep.equal([]);
    });

    it("says in SettlementPendingError's message when the series expired, as a UTC time", async function () {
      const f = await loadFixture(expiredBook);
      const { client } = await recordingClient(f);
      const error = await settleOptionSeries(client, { seriesId: f.series[0].id }).then(
        () => expect.fail("should be refused"),
        (e: unknown) => e as SettlementPendingError,
      );
      expect(error.message).to.contain(new Date(Number(f.expiry) * 1000).toISOString());
    });
  });

  describe("settleOptionPositions' two sends", function () {
    it("pays the positions when someone else (the keeper) settled the series between the preview and the send: one transaction of its own, the same payouts", async function () {
      const f = await loadFixture(provableBook);
      const once = onceBeforeSend();
      const { client, sentGas } = await recordingClient(f, { beforeSend: once.beforeSend });
      const call = f.series[0].id;
      once.arm(async () => {
        await (await f.sys.options.connect(f.sys.carol).settleSeries(call, f.round)).wait();
      });
      const balance = (id: bigint) => f.sys.vault.balanceOf(id, f.sys.usdc);
      const before = [await balance(f.alice), await balance(f.bob)];
      const r = await settleOptionPositions(client, { seriesId: call, accountIds: [f.alice, f.bob] });
      expect(r.series).to.equal(undefined);
      expect(r.settled.map((p) => p.payout)).to.deep.equal(ITM_CALL_PAYOUTS);
      expect([(await balance(f.alice)) - before[0], (await balance(f.bob)) - before[1]]).to.deep.equal(
        ITM_CALL_PAYOUTS,
      );
      expect(sentGas).to.have.length(2); // its settleSeries (reverted: already settled), then settleAccounts
    });

    it("throws settleSeries' own revert when it fails for another reason than an earlier settlement, and sends no payouts", async function () {
      const f = await loadFixture(provableBook);
      const once = onceBeforeSend();
      const { client, sentGas } = await recordingClient(f, { beforeSend: once.beforeSend });
      const call = f.series[0].id;
      once.arm(() => capPriceAt2000(f));
      await settleOptionPositions(client, { seriesId: call, accountIds: [f.alice, f.bob] }).then(
        () => expect.fail("should be refused"),
        (e: unknown) => expect(e).to.have.property("name", "PriceOutOfBounds"),
      );
      expect(sentGas).to.have.length(1); // settleSeries only: no settleAccounts
      expect((await getOptionSeries(client, { seriesId: call })).settled).to.equal(false);
    });

    it("refuses both actions on a client without a signer before reading anything", async function () {
      const f = await loadFixture(provableBook);
      const client = createClient({ runner: ethers.provider, deployment: await deploymentOf(f.sys) });
      const noSigner = /create the client with a Signer/;
      await expect(settleOptionSeries(client, { seriesId: 99n })).to.be.rejectedWith(TypeError, noSigner);
      await expect(
        settleOptionPositions(client, { seriesId: 99n, accountIds: [f.alice] }),
      ).to.be.rejectedWith(TypeError, noSigner);
    });
  });

  describe("optionMark of a settled series", function () {
    it("marks a settled series at its recorded price with no Greeks, whatever settlement price the caller passes", async function () {
      const f = await loadFixture(provableBook);
      const { client } = await recordingClient(f);
      const put = f.series[1].id;
      await settleOptionSeries(client, { seriesId: put });
      const settled = await getOptionSeries(client, { seriesId: put });
      const [spot, vol] = [wad("2000"), wad("0.8")];
      const now = BigInt(await time.latest());
      const mark = {
        status: "settled",
        price: SETTLEMENT_PRICE,
        value: wad("3100") - SETTLEMENT_PRICE,
        greeks: null,
      };
      expect(optionMark(settled, spot, vol, now)).to.deep.equal(mark);
      expect(optionMark(settled, spot, vol, now, wad("2500"))).to.deep.equal(mark);
    });
  });
});
