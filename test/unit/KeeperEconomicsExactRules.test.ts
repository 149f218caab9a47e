/**
 * Review round 104: small bugs put one at a time into the keeper's economics (scripts/keeper/logic.ts,
 * liquidation.ts, options.ts: what a slice costs to close, whether a bid pays, the flag reward, which
 * accounts start first, which settlement round to send). These are the rules no other keeper test
 * pinned; each comment names the bug that passed the suite before. Mostly pure functions with
 * hand-computed numbers; five specifications use the shared chain setups.
 */
import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import {
  keeperBidPlan,
  keeperBidder,
  predictedAndRealisedBid,
  startInProcessKeeper,
  threeLongsUnderWater,
} from "../shared/keeper";
import { setFeedPrice } from "../shared/oracles";
import { MarginMode, openAccount, wad } from "../shared/system";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { mineAt, trade } from "../shared/perps";
import {
  WAD,
  bidEconomics,
  byStakeThenUrgency,
  byUrgency,
  expectedFlagReward,
  findSettlementRound,
  isBidProfitable,
  isDeficitStale,
  isDeficitWorthRecording,
  isMaterial,
  isStartWorthSending,
  maxPaymentFor,
} from "../../scripts/keeper/logic";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n; // quote WAD per USDC unit

describe("Keeper economics: a bid's worth", function () {
  it("does not charge the quoted payment of an insolvent book twice: it is the deficit less the payout, already in the mark", function () {
    // Whole book at −300 USD, the fund pays 250 USDC, so bidAndClose charges the deficit less the
    // payout, 50 USDC (LiquidationAuction._insolventCost). The bidder ends 300 − 250 = 50 USD down
    // before costs, not 100 (the bug: paying `payment` on top of the negative slice).
    const e = bidEconomics({
      quote: { filled: WAD, payment: 50n * USDC, insurancePayout: 250n * USDC },
      mark: wad("-300"),
      quotePrice: WAD,
      quoteUnit: QUOTE_UNIT,
      closeCost: 0n,
      gasUnits: 0n,
      gasPriceWei: 0n,
      nativeUsd: wad("2500"),
    });
    expect(e.discountUsd).to.equal(wad("-50"));
    expect(e.netUsd).to.equal(wad("-50"));
    // Once the payout covers the deficit and more, the same book pays: 350 USDC for 300 of deficit.
    const covered = bidEconomics({
      quote: { filled: WAD, payment: 0n, insurancePayout: 350n * USDC },
      mark: wad("-300"),
      quotePrice: WAD,
      quoteUnit: QUOTE_UNIT,
      closeCost: wad("20"),
      gasUnits: 0n,
      gasPriceWei: 0n,
      nativeUsd: wad("2500"),
    });
    expect(covered.netUsd).to.equal(wad("30"));
    expect(isBidProfitable(covered, wad("30"))).to.equal(true);
  });
});

describe("Keeper economics: starting an auction", function () {
  const base = {
    flagReward: 10n * USDC,
    quoteUnit: QUOTE_UNIT,
    now: 100_000n,
    cooldown: 86_400n,
    endedAt: 0n,
  };

  it("prices the flag reward of a book worth less than the reward at its mark in quote rounded down", function () {
    // 8.3500009 quote WAD is 8,350,000.9 USDC units: the auction pays 8,350,000 (the bug rounded up).
    expect(expectedFlagReward({ ...base, markQuote: wad("8.3500009") })).to.equal(8_350_000n);
    expect(expectedFlagReward({ ...base, markQuote: QUOTE_UNIT - 1n })).to.equal(0n);
  });

  it("pays the reward to an account whose auction never ended, even within `cooldown` of the chain's start", function () {
    // endedAt 0 means no earlier auction: no cooldown applies (the bug: now < 0 + cooldown read as one).
    expect(expectedFlagReward({ ...base, now: 50_000n, markQuote: wad("500") })).to.equal(10n * USDC);
    // Within the cooldown of a real end, nothing.
    expect(expectedFlagReward({ ...base, now: 50_000n, endedAt: 1n, markQuote: wad("500") })).to.equal(0n);
    // From the second the cooldown has run on, the full reward (the bug: `now <= endedAt + cooldown`).
    expect(expectedFlagReward({ ...base, now: 86_401n, endedAt: 1n, markQuote: wad("500") })).to.equal(
      10n * USDC,
    );
    expect(expectedFlagReward({ ...base, now: 86_400n, endedAt: 1n, markQuote: wad("500") })).to.equal(0n);
  });

  it("starts dust only when the reward is at least twice the start's gas, not once", function () {
    // Reward 1.5 USD against a start of 1 USD: the start pays, the absorb after it does not.
    expect(isStartWorthSending({ material: false, rewardUsd: wad("1.5"), gasUsd: wad("1") })).to.equal(false);
    expect(isStartWorthSending({ material: false, rewardUsd: wad("2"), gasUsd: wad("1") })).to.equal(true);
  });

  it("counts an account whose requirement is exactly the stake as material, and starts it before dust", function () {
    expect(isMaterial({ maintenanceRequirement: wad("100") }, wad("100"))).to.equal(true);
    expect(isMaterial({ maintenanceRequirement: wad("100") - 1n }, wad("100"))).to.equal(false);
    const h = (e: string, m: string) => ({ equityMaintenance: wad(e), maintenanceRequirement: wad(m) });
    const order = byStakeThenUrgency(
      [
        ["dust", h("-1", "99.99")],
        ["stake", h("90", "100")],
      ],
      wad("100"),
    ).map(([id]) => id);
    expect(order).to.deep.equal(["stake", "dust"]);
  });
});

describe("Keeper economics: who goes first", function () {
  it("puts the larger of two debts without a requirement first (both are −∞ in shocks)", function () {
    // The bug: the two compared the other way round, so a 1,000 USD debt waited behind a 10 USD one.
    const h = (e: string) => ({ equityMaintenance: wad(e), maintenanceRequirement: 0n });
    const order = byUrgency([
      ["small", h("-10")],
      ["large", h("-1000")],
      ["mid", h("-200")],
    ]).map(([id]) => id);
    expect(order).to.deep.equal(["large", "mid", "small"]);
  });
});

describe("Keeper economics: the deficit record", function () {
  it("raises a record only for a rise of more than 1% of the deficit, not of exactly 1%", function () {
    // 990 → 1,000 is a rise of exactly 1% of the deficit: 10 · 100 = 1,000, not above 1,000.
    expect(isDeficitStale(990n, 1_000n)).to.equal(false);
    expect(isDeficitStale(990n, 1_001n)).to.equal(true);
    expect(
      isDeficitWorthRecording({ recorded: 990n, current: 1_000n, riseUsd: wad("1"), gasUsd: 0n }),
    ).to.equal(false);
  });

  it("records a rise of more than 1% that pays its gas exactly, and no rise of 1% or less whatever it is worth", function () {
    // 1,000 → 1,020 USDC units: 2% up, worth 0.02 USD, against 0.02 USD of gas: sent (the bug: `>`).
    expect(
      isDeficitWorthRecording({
        recorded: 1_000n,
        current: 1_020n,
        riseUsd: wad("0.02"),
        gasUsd: wad("0.02"),
      }),
    ).to.equal(true);
    // 1,000,000 → 1,005,000 USDC units (0.5%): worth 0.005 USD of LP share price a tick, well above a gas of
    // 0.001, still not recorded (the bug dropped the 1% rule: a transaction per tick).
    expect(
      isDeficitWorthRecording({
        recorded: 1_000_000n,
        current: 1_005_000n,
        riseUsd: wad("0.005"),
        gasUsd: wad("0.001"),
      }),
    ).to.equal(false);
  });
});

describe("Keeper economics: the settlement round", function () {
  /** Rounds 1..20 of phase 1, round n updated at 1000 + 100·n; `missing` rounds read as null. */
  const PHASE = 1n << 64n;
  const roundsWith = (answers: Map<bigint, bigint | null> = new Map()) => {
    const rounds = new Map<bigint, bigint | null>();
    for (let n = 1n; n <= 20n; n++) rounds.set(PHASE + n, 1000n + 100n * n);
    for (const [id, at] of answers) rounds.set(id, at);
    return async (id: bigint): Promise<bigint | null> => rounds.get(id) ?? null;
  };
  const latest = { roundId: PHASE + 20n, updatedAt: 3000n };

  it("takes a latest round updated exactly at expiry (settleSeries checks updatedAt ≥ expiry)", async function () {
    // The bug: `updatedAt <= expiry` waited for the next round, one heartbeat of unsettled series.
    expect(await findSettlementRound(latest, 3000n, roundsWith())).to.equal(PHASE + 20n);
  });

  it("never returns a missing round: round 6 missing, expiry 1,650, the search gives up", async function () {
    // Round 7 (1,700) is the first at or after 1,650 but round 6 cannot prove it. The bug: reading a
    // missing round as after expiry returned round 6 itself, which settleSeries reverts on.
    const read = roundsWith(new Map([[PHASE + 6n, null]]));
    expect(await findSettlementRound(latest, 1650n, read)).to.equal(null);
    // Without the gap the same search finds round 7.
    expect(await findSettlementRound(latest, 1650n, roundsWith())).to.equal(PHASE + 7n);
  });

  it("never returns a phase's opening round, even from a node that answers round 0 of the phase", async function () {
    // settleSeries refuses uint64(hint) ≤ 1 (WrongRoundHint). The bugs: dropping the `found === first`
    // check, or taking the phase's first round as its round 0, returned round 1 here.
    const read = roundsWith(new Map([[PHASE, 900n]]));
    expect(await findSettlementRound(latest, 1050n, read)).to.equal(null);
  });
});

describe("Keeper economics: the bid it sends", function () {
  it("sends bidAndClose for the whole book with its quote plus 0.5% (rounded up) as the payment limit", async function () {
    // The bug: the limit without slippage (the quote itself). Nothing failed: between the keeper's quote
    // and its block the discount grows and the payment only falls, so a same-block bid still landed;
    // but a book whose mark rose a little in between reverted PaymentAboveLimit.
    const { sys, ids } = await loadFixture(threeLongsUnderWater);
    await sys.auction.connect(sys.deployer).startAuction(ids[0]);
    const keeper = await keeperBidder(sys);
    const plan = await keeperBidPlan(sys, keeper, ids[0]);
    const { request, quote } = plan;
    const [accountId, bidder, fraction, maxPayment] = sys.auction.interface.decodeFunctionData(
      "bidAndClose",
      request.data,
    );
    expect([accountId, bidder, fraction]).to.deep.equal([ids[0], keeper.bidder, WAD]);
    expect(quote.payment).to.be.greaterThan(0n);
    expect(maxPayment).to.equal(quote.payment + (quote.payment * 50n + 9_999n) / 10_000n);
    expect(maxPayment).to.equal(maxPaymentFor(quote.payment, 50n));
  });
});

describe("Keeper economics: a slice that rounds to nothing", function () {
  it("prices a book whose slice of one market rounds to 0 without quoting a trade of 0 there", async function () {
    // Alice long 10 ETH and 1 wei of BTC on 5,000 USDC; ETH at 2,600. A partial fill's BTC slice is
    // 0 (rounded toward zero, as transferPosition): nothing to close. The bug quoted it anyway and
    // PerpMarket.quoteTrade(…, 0) reverts ZeroSizeDelta, so the whole bid assessment threw.
    const sys = await deployOptionsSystem();
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
    await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
    await trade(sys.perps, sys.alice, alice, sys.markets.BTC, 1n);
    await setFeedPrice(sys.feeds.ETH, "2600");
    await sys.auction.startAuction(alice);
    const keeper = await keeperBidder(sys);
    const plan = await keeperBidPlan(sys, keeper, alice);
    expect(plan.quote.filled).to.be.lessThan(WAD);
    expect(plan.economics.netUsd).to.be.greaterThan(0n);
  });
});

describe("Keeper economics: a bid off peg", function () {
  it("values the slice as the auction does, with the collateral counted in quote, at USDC 0.95", async function () {
    // The bug: the slice's mark taken as the engine's USD equity (collateral at 0.95) instead of the book
    // in quote (bookInQuote: the 5,000 USDC counted as 5,000): 5% of the collateral missing from the
    // slice's worth, so a bid's discount looked about 250 USD·filled smaller than it was.
    const { sys, ids } = await loadFixture(threeLongsUnderWater);
    await setFeedPrice(sys.feeds.USDC, "0.95");
    await sys.auction.connect(sys.deployer).startAuction(ids[0]);
    const keeper = await keeperBidder(sys);
    const { plan, realisedUsd } = await predictedAndRealisedBid(sys, keeper, ids[0]);
    expect(plan.quote.filled).to.be.greaterThan(0n);
    // bidAndClose at the block of the quote: what the keeper predicted before gas is what its account
    // gained in USD, to a hundredth of a cent.
    const predicted = plan.economics.discountUsd - plan.economics.closeCostUsd;
    expect(realisedUsd - predicted).to.be.within(-wad("0.01"), wad("0.01"));
  });
});

describe("Keeper economics: option payouts", function () {
  it("pays out an option position an account received in a liquidation (PositionTransferred's toAccountId)", async function () {
    // Alice writes 4 ETH-3300 calls on 1,500 USDC; ETH at 3,600 puts her under water and Bob's account
    // bids (a plain bid: the slice's short calls move to Bob). The bug: the keeper listed the transfer's
    // sender as the holder, so after expiry Bob's calls were never settled (the series left unpaid).
    const sys = await deployOptionsSystem();
    const expiry = await fromNow(DAY);
    const call = await listSeries(sys.options, "ETH", "3300", expiry, true);
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 1_500n * USDC]]);
    await tradeOption(sys.options, sys.alice, alice, call, -wad("4"));
    const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
    await setFeedPrice(sys.feeds.ETH, "3600");
    await sys.auction.startAuction(alice);
    const [, payment] = await sys.auction.quoteBid(alice, WAD);
    await sys.auction.connect(sys.bob).bid(alice, bob, WAD, payment * 2n + 1n);
    const received = await sys.options.positionSize(bob, call);
    expect(received).to.be.lessThan(0n);

    const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
    await mineAt(sys, expiry);
    await setFeedPrice(sys.feeds.ETH, "3400");
    await setFeedPrice(sys.feeds.ETH, "3400");
    await keeper.step();

    expect(await sys.options.positionSize(bob, call)).to.equal(0n);
    const settledFor = (await sys.options.queryFilter(sys.options.filters.PositionSettled())).map(
      (e) => e.args.accountId,
    );
    expect(settledFor).to.include(bob);
  });

  it("sends payouts only to holders still open at expiry, and counts only those", async function () {
    // Alice and Carol write ETH-3000 calls; Carol buys hers back before expiry. The bug put every account
    // that ever traded the series in settleAccounts (the contract skips the closed one) and reported 2.
    const sys = await deployOptionsSystem();
    const expiry = await fromNow(DAY);
    const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
    await tradeOption(sys.options, sys.alice, alice, call, -wad("10"));
    const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 20_000n * USDC]]);
    await tradeOption(sys.options, sys.carol, carol, call, -wad("5"));
    await tradeOption(sys.options, sys.carol, carol, call, wad("5"));
    const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
    await mineAt(sys, expiry);
    await setFeedPrice(sys.feeds.ETH, "2950");
    await setFeedPrice(sys.feeds.ETH, "2950");

    const report = await keeper.step();

    expect(report.options?.seriesSettled).to.deep.equal([call]);
    expect(report.options?.positionsSettled).to.equal(1);
    expect(await sys.options.positionSize(alice, call)).to.equal(0n);
  });
});
