import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionResponse, Signer } from "ethers";
import { MarginMode, WAD, deploySystem, openAccount, wad, whatIf, type System } from "../shared/system";
import { marketParams, trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";

/**
 * Review round 89: can a griefer with some capital, several accounts and the power to order a block's
 * transactions (Hardhat with automine off) stop the protocol from doing what must happen, or make it
 * unprofitable, at a cost below the harm? Deployment parameters as the shipped configs (skew scale 1,000
 * ETH, fees 2 / 5 bp, auction 2% → 10% over 30 minutes, 1% penalty).
 */
const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;
const GAS = 8_000_000n;
const NO_DEADLINE = 2n ** 64n;

/** Floor division for signed bigints (equity marks can be negative). */
const floorDiv = (a: bigint, b: bigint): bigint => (a >= 0n ? a / b : -((-a + b - 1n) / b));

/** An account's mark equity in quote units (rounded down). */
async function markOf(sys: System, id: bigint): Promise<bigint> {
  return floorDiv((await sys.engine.health(id)).equityMark, QUOTE_UNIT);
}

/**
 * Mines `sends` in one block, in the order given (a griefer's front-run and back-run around a victim's
 * transaction, as a block builder orders them), and returns each one's receipt status (1 mined, 0
 * reverted). The block comes a second after the latest (what a view read then is what the block
 * executes at, to the second). Gas limits are given, so nothing is estimated against the pending block.
 */
async function inOneBlock(sends: (() => Promise<ContractTransactionResponse>)[]): Promise<number[]> {
  const at = (await time.latest()) + 1;
  await ethers.provider.send("evm_setAutomine", [false]);
  const hashes: string[] = [];
  try {
    for (const send of sends) hashes.push((await send()).hash);
    await time.setNextBlockTimestamp(at);
    await ethers.provider.send("evm_mine", []);
  } finally {
    await ethers.provider.send("evm_setAutomine", [true]);
  }
  const statuses: number[] = [];
  for (const hash of hashes) statuses.push((await ethers.provider.getTransactionReceipt(hash))!.status!);
  return statuses;
}

/**
 * Alice long 20 ETH on 10,000 USDC (funding off), auctioned at ETH 2,600. The keeper (`sys.keeper`) bids
 * from its own flat account holding a float of 2,000 USDC (the keeper README's float for WETH slices),
 * with the auction approved to trade it. Mallory (`sys.bob`) has an account with 200,000 USDC.
 */
async function auctionedLong() {
  const sys = await deploySystem();
  await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 2_000n * USDC]]);
  await sys.accounts.connect(sys.keeper).approve(sys.auction, keeper);
  const mallory = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
  await setFeedPrice(sys.feeds.ETH, "2600");
  await sys.auction.connect(sys.carol).startAuction(alice);
  return { sys, alice, keeper, mallory };
}

/**
 * `auctionedLong` after ETH fell to 2,500 (Alice insolvent: mark −615.68 USDC) and 20 of the auction's 30
 * minutes: the fund's payout (2/3 of deficit + maxDiscount·MM) has made taking the book worth it.
 */
async function insolventLong() {
  const w = await auctionedLong();
  await setFeedPrice(w.sys.feeds.ETH, "2500");
  const { startTime } = await w.sys.auction.auctions(w.alice);
  await time.setNextBlockTimestamp(startTime + 1200n);
  await w.sys.feeds.ETH.updateAnswer(2500n * 10n ** 8n);
  return w;
}

/**
 * The keeper's `bidAndClose` of the whole restoring slice, as the keeper sends it: `maxPayment` is the
 * quoted payment (for an insolvent book, its deficit less the fund's payout) plus 0.5%.
 */
async function keeperBid(sys: System, alice: bigint, keeper: bigint, keeperSigner: Signer) {
  const quote = await sys.auction.quoteBid(alice, WAD);
  const maxPayment = quote.payment + (quote.payment * 50n) / 10_000n;
  return {
    maxPayment,
    send: () =>
      sys.auction.connect(keeperSigner).bidAndClose(alice, keeper, WAD, maxPayment, { gasLimit: GAS }),
  };
}

/** Mallory's `size` ETH trade (no limit) as a send for `inOneBlock`. */
function malloryTrade(sys: System, mallory: bigint, size: bigint) {
  return () =>
    sys.perps
      .connect(sys.bob)
      .trade(mallory, sys.markets.ETH, size, size > 0n ? ethers.MaxUint256 : 0n, NO_DEADLINE, {
        gasLimit: GAS,
      });
}

/** The keeper's bid mined alone, its gain at mark (quote units) read and rolled back. */
async function honestGain(sys: System, alice: bigint, keeper: bigint): Promise<bigint> {
  return whatIf(async () => {
    const before = await markOf(sys, keeper);
    const { send } = await keeperBid(sys, alice, keeper, sys.keeper);
    expect(await inOneBlock([send])).to.deep.equal([1]);
    return (await markOf(sys, keeper)) - before;
  });
}

describe("Liveness against griefers", function () {
  describe("bidAndClose sandwiched through the skew (row 219)", function () {
    it("a short sold before a keeper's insolvent take and bought back after cannot take the keeper's float", async function () {
      const { sys, alice, keeper, mallory } = await loadFixture(insolventLong);
      const quote = await sys.auction.quoteBid(alice, WAD);
      expect(quote.filled).to.equal(WAD); // insolvent: the whole book, for the fund's payout
      expect(quote.payment).to.equal(0n); // the payout (677.69) covers the deficit (640.30): maxPayment 0
      // Alone, the keeper's take earns 527.29 USDC: the payout less the deficit, and the rebate of selling
      // 20 ETH into the long skew Alice left.
      expect(await honestGain(sys, alice, keeper)).to.equal(527_857_540n);
      const keeperBefore = await markOf(sys, keeper);
      const malloryBefore = await markOf(sys, mallory);
      const bid = await keeperBid(sys, alice, keeper, sys.keeper);
      // Mallory sells 50 ETH just before the keeper's closes and buys them back just after. `maxPayment`
      // bounds only the take (deficit − payout), not the close's fill. Before the fix the keeper's bid went
      // through and lost 1,986.61 USDC of its 2,000 float (−2,513.90 from the honest outcome) and Mallory
      // made +2,428.36, every one of them the keeper's.
      const s = wad("50");
      const statuses = await inOneBlock([
        malloryTrade(sys, mallory, -s),
        bid.send,
        malloryTrade(sys, mallory, s),
      ]);
      expect(statuses).to.deep.equal([1, 0, 1]);
      expect((await markOf(sys, keeper)) - keeperBefore).to.equal(0n);
      // Her round trip now costs her the fees: 87.06 USDC.
      expect((await markOf(sys, mallory)) - malloryBefore).to.equal(-87_062_500n);
      // The refusal names the loss the closes would have made.
      await whatIf(async () => {
        await malloryTrade(sys, mallory, -s)();
        await expect(bid.send()).to.be.revertedWithCustomError(sys.auction, "BidAndCloseLoss");
      });
    });

    it("within the keeper's profit a front-run only shares it, and past the account's own exit discount the payment limit refuses", async function () {
      const { sys, alice, keeper, mallory } = await loadFixture(auctionedLong);
      // A solvent partial slice (75% of Alice's 20 ETH at 2,600): alone the keeper earns 499.91 USDC.
      expect((await sys.auction.quoteBid(alice, WAD)).filled).to.equal(749_666_942_956_756_963n);
      expect(await honestGain(sys, alice, keeper)).to.equal(499_953_457n);
      // Mallory's 10 ETH sold before and bought back after take 375.44 of the keeper's rebate; it still
      // gains 106.25: the ordinary MEV of a public mempool, not a loss.
      const shared = await whatIf(async () => {
        const [k0, m0] = [await markOf(sys, keeper), await markOf(sys, mallory)];
        const bid = await keeperBid(sys, alice, keeper, sys.keeper);
        const s = wad("10");
        expect(
          await inOneBlock([malloryTrade(sys, mallory, -s), bid.send, malloryTrade(sys, mallory, s)]),
        ).to.deep.equal([1, 1, 1]);
        return [(await markOf(sys, keeper)) - k0, (await markOf(sys, mallory)) - m0];
      });
      expect(shared).to.deep.equal([106_295_453n, 375_448_160n]);
      // 20 ETH takes the skew below Alice's half size: her own close would now pay a premium, her equity
      // for the restoring fraction falls, the slice and its payment grow past the keeper's 0.5% limit.
      const bid = await keeperBid(sys, alice, keeper, sys.keeper);
      await malloryTrade(sys, mallory, -wad("20"))();
      await expect(bid.send()).to.be.revertedWithCustomError(sys.auction, "PaymentAboveLimit");
    });
  });

  describe("Dust bids in front of the keeper", function () {
    it("a bid for 1 wei of the book costs its bidder a quote unit and leaves the keeper's bid whole", async function () {
      const { sys, alice, keeper, mallory } = await loadFixture(auctionedLong);
      const honest = await honestGain(sys, alice, keeper);
      const bid = await keeperBid(sys, alice, keeper, sys.keeper);
      const [k0, m0] = [await markOf(sys, keeper), await markOf(sys, mallory)];
      const dust = () => sys.auction.connect(sys.bob).bid(alice, mallory, 1n, 1n, { gasLimit: GAS });
      expect(await inOneBlock([dust, dust, dust, bid.send])).to.deep.equal([1, 1, 1, 1]);
      // The keeper's gain is the honest one to the unit: each dust bid bought 20 wei of ETH and no quote,
      // paid 1 quote unit and cost Alice a 1-unit penalty (`paidIn` held back from the keeper's slice).
      expect((await markOf(sys, keeper)) - k0).to.equal(honest);
      expect((await markOf(sys, mallory)) - m0).to.equal(-4n);
      expect((await sys.auction.auctions(alice)).active).to.equal(false); // the keeper's bid restored her
    });
  });

  describe("The keeper's health scan over heavy accounts", function () {
    /**
     * 14 series (7 ETH, 7 BTC, 30 days) and `n` griefer accounts, each at the cap: 1 wei of both perps
     * and of every series (16 markets) on 1 USDC. Returns the gas each account cost to build.
     */
    async function griefers(n: number) {
      const sys = await deployOptionsSystem();
      const expiry = await fromNow(30n * DAY);
      const series: bigint[] = [];
      for (const [sym, spot] of [
        ["ETH", 3_000],
        ["BTC", 60_000],
      ] as const) {
        for (let k = 0; k < 7; ++k) {
          series.push(
            await listSeries(sys.options, sym, String((spot * (80 + 7 * k)) / 100), expiry, k % 2 === 0),
          );
        }
      }
      const ids: bigint[] = [];
      const buildGas: bigint[] = [];
      for (let i = 0; i < n; ++i) {
        let gas = 0n;
        const add = async (tx: Promise<ContractTransactionResponse>) => {
          gas += (await (await tx).wait())!.gasUsed;
        };
        const id = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, USDC]]);
        await add(trade(sys.perps, sys.bob, id, sys.markets.ETH, 1n));
        await add(trade(sys.perps, sys.bob, id, sys.markets.BTC, 1n));
        for (const s of series) await add(tradeOption(sys.options, sys.bob, id, s, 1n));
        ids.push(id);
        buildGas.push(gas);
      }
      const plain: bigint[] = [];
      for (let i = 0; i < n; ++i) {
        const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
        await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("1"));
        plain.push(id);
      }
      return { sys, ids, plain, buildGas };
    }
    const threeGriefers = () => griefers(3);

    it("an account at the 16-market cap adds 0.42M gas to every healthMany batch and costs ~8.9M gas and 30 quote units to build", async function () {
      const { sys, ids, plain, buildGas } = await loadFixture(threeGriefers);
      expect((await sys.engine.accountMarkets(ids[0])).length).to.equal(16);
      const cost = (batch: bigint[]) => sys.engine.healthMany.estimateGas(batch);
      // The third account of a batch (prices already read for the batch): 418,130 gas for the griefer's
      // 2 perps and 14 series of 1 wei each, 38,281 for an ordinary 1 ETH long (11x).
      const griefer = (await cost(ids)) - (await cost(ids.slice(0, 2)));
      const ordinary = (await cost(plain)) - (await cost(plain.slice(0, 2)));
      expect(griefer).to.be.within(380_000n, 460_000n);
      expect(ordinary).to.be.within(30_000n, 45_000n);
      // Built once with 16 trades (~8.9M gas warm, 10.1M for the first) and 1 USDC, of which the fees
      // took 30 quote units (each trade's fee rounds up to one unit): 1,000 such accounts cost ~8.9G gas
      // and 1,000 USDC, and add ~418M gas to every pass of the keeper's scan (9 calls at geth's 50M
      // eth_call cap, which the keeper's bisection of a batch refused for gas already handles).
      for (const gas of buildGas) expect(gas).to.be.within(8_500_000n, 10_500_000n);
      expect(await sys.vault.balanceOf(ids[0], sys.usdc)).to.equal(USDC - 30n);
    });
  });

  describe("The pool's per-side delta limit filled by a hedged pair", function () {
    it("shuts new ETH risk for 134 USDC and ~515,000 USDC of margin held, and leaves closes and liquidations open", async function () {
      const sys = await deploySystem();
      await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("20"));
      const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 2_000n * USDC]]);
      await sys.accounts.connect(sys.keeper).approve(sys.auction, keeper);
      // Mallory's two accounts fill both sides of the traders' delta to the pool's per-side limit (1 ×
      // the pool's ~1,000,000 USDC: 333 ETH at 3,000, below the 500 ETH open-interest cap), alternating so
      // that each trade passes; the skew ends where it began.
      const a = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
      const b = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
      const before = (await markOf(sys, a)) + (await markOf(sys, b));
      await trade(sys.perps, sys.bob, a, sys.markets.ETH, wad("150"));
      await trade(sys.perps, sys.bob, b, sys.markets.ETH, -wad("150"));
      await trade(sys.perps, sys.bob, a, sys.markets.ETH, wad("163"));
      await trade(sys.perps, sys.bob, b, sys.markets.ETH, -wad("183"));
      const info = await sys.perps.market(sys.markets.ETH);
      expect([info.longOpenInterest, info.shortOpenInterest]).to.deep.equal([wad("333"), wad("333")]);
      // It cost the pair 134.09 USDC of mark (fees, less the rebate of closing Alice's 20 ETH of skew), but
      // it holds margin: each account's IM plus the premium its own close would pay into the flat skew
      // (deducted from equity_IM), 244,494 for the long and 270,228 for the short: ~514,700 USDC, about
      // half the pool, for as long as the market stays shut.
      expect(before - ((await markOf(sys, a)) + (await markOf(sys, b)))).to.equal(134_088_452n);
      let locked = 0n;
      for (const id of [a, b]) {
        const h = await sys.engine.health(id);
        locked += BigInt(h.initialRequirement) + h.equityMark - h.equityInitial;
      }
      expect(locked / WAD).to.equal(514_722n);
      // Nobody opens new ETH risk on either side.
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      for (const size of [wad("1"), -wad("1")]) {
        await expect(trade(sys.perps, sys.carol, carol, sys.markets.ETH, size)).to.be.revertedWithCustomError(
          sys.perps,
          "PoolDeltaLimitExceeded",
        );
      }
      // Alice, liquidatable at 2,600, is still taken. The pair's books left the skew flat, so the keeper's
      // close of her long would pay a premium beyond the 2% discount: its bidAndClose is refused as a loss
      // (it would have lost 308.92 USD of its float before row 219's fix), and after the auction's 30
      // minutes the backstop absorbs, which trades nothing.
      await setFeedPrice(sys.feeds.ETH, "2600");
      const started = (await time.latest()) + 1;
      await time.setNextBlockTimestamp(started);
      await sys.auction.connect(sys.carol).startAuction(alice);
      const quote = await sys.auction.quoteBid(alice, WAD);
      // A second later, whatever the wall clock does: the discount grows with time.
      await time.setNextBlockTimestamp(started + 1);
      await expect(sys.auction.connect(sys.keeper).bidAndClose(alice, keeper, WAD, quote.payment + 1_000n))
        .to.be.revertedWithCustomError(sys.auction, "BidAndCloseLoss")
        .withArgs(keeper, 308_918_752_000_000_000_000n);
      await time.increase(1_800);
      await setFeedPrice(sys.feeds.ETH, "2600");
      await expect(sys.auction.absorb(alice)).to.emit(sys.auction, "AuctionBid");
      // Closes stay open: reductions never meet the pool's limits.
      await expect(trade(sys.perps, sys.bob, a, sys.markets.ETH, -wad("10"))).to.emit(
        sys.perps,
        "PositionModified",
      );
    });
  });

  describe("LP exits and far out-of-the-money options (row 220)", function () {
    it("counts each contract at 0.2 delta, so puts at 50-67% of spot leave the LP 743,283 of 1,000,000 (24,089 before)", async function () {
      const sys = await deployOptionsSystem();
      const pool = await sys.pool.accountId();
      expect(await sys.pool.maxWithdraw(sys.lp.address)).to.equal(1_000_000n * USDC);
      const mallory = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      // One block a second from here, whatever the wall clock does: the puts' values decay with time.
      let at = await time.latest();
      const expiry = BigInt(at) + 30n * DAY;
      const bought: bigint[] = [];
      for (const strike of ["1500", "1600", "1700", "1800", "1900", "2000"]) {
        await time.setNextBlockTimestamp((at += 1));
        const series = await listSeries(sys.options, "ETH", strike, expiry, false);
        // As many of the series' 1,000 contracts (its open-interest cap) as the delta limit lets in, by 50.
        let size = 1_000n;
        for (; size > 0n; size -= 50n) {
          await time.setNextBlockTimestamp((at += 1));
          const sent = tradeOption(sys.options, sys.bob, mallory, series, wad(size.toString()));
          try {
            await sent;
            break;
          } catch {
            await expect(sent).to.be.revertedWithCustomError(sys.options, "PoolOptionDeltaLimitExceeded");
          }
        }
        bought.push(size);
      }
      // Each put counts 0.2 · 3,000 = 600 USD against the limit, 1 × the pool's balance less the premium it
      // holds (~1,000,000): 1,650 contracts, where 6,000 went in when they counted at their delta (~0.001).
      expect(bought).to.deep.equal([1_000n, 650n, 0n, 0n, 0n, 0n]);
      const [longDelta, shortDelta] = await sys.options.traderDelta(ethers.encodeBytes32String("ETH"));
      expect([longDelta, shortDelta]).to.deep.equal([0n, wad("330")]);
      // The short-option floor (5% of spot: 150 USD) of each contract the pool is short is what pins LP
      // exits: 1,650 contracts pin 247,500 USD of the pool's 257,893 of IM, and the only LP can still take
      // 743,283 of its 1,000,000 (24,089 before the fix, when 6,000 contracts pinned 979,027).
      const [, im] = await sys.engine.initialMargin(pool);
      expect(im / WAD).to.equal(257_893n);
      expect((await sys.pool.maxWithdraw(sys.lp.address)) / USDC).to.equal(743_283n);
    });
  });
});
