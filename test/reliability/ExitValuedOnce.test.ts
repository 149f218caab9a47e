import { expect } from "chai";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import type { BaseContract, ContractTransactionReceipt } from "ethers";
import {
  EXIT_DELAY,
  MarginMode,
  deploySystem,
  deploySystemWithoutHoldingPeriod,
  gasOfRevert,
  openAccount,
  type System,
} from "../shared/system";
import {
  absorbLong100,
  deployPerps,
  listPerpMarket,
  lockedLpWithStaleFeed,
  marketParams,
  trade,
} from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import type { LpComposer } from "../../typechain-types";
import { LP_OP, type LpOp, composerLogs, deployLpComposer, lpOp } from "../shared/lpComposer";

/**
 * An LP exit (`withdraw`, `redeem`, `claimRedeem`) takes its share price and the pool's free margin from
 * one initial-margin evaluation of each book (`LiquidityPool._valueExit`, §4 row 210). These pin that
 * every exit uses what a fresh computation at that point gives (composed in one transaction with oracle
 * rounds, trades and other exits), that `initialMargin`'s positions value is `positionsValue` on every
 * kind of book, and which error each exit gives where a feed fails.
 */
const USDC = 10n ** 6n;
const WAD = 10n ** 18n;

/**
 * The composer alone in the pool (the seed LP redeemed everything) with 2,000,000 USDC, Alice long 2 BTC
 * against the pool, funding off: the pool's free margin, not the composer's shares, bounds its exits.
 */
async function composerWorld() {
  const sys = await deploySystemWithoutHoldingPeriod();
  const noFunding = marketParams({ maxFundingVelocity: 0n });
  await sys.perps.setMarketParams(sys.markets.ETH, noFunding);
  await sys.perps.setMarketParams(sys.markets.BTC, noFunding);
  await sys.pool.connect(sys.lp).redeem(await sys.pool.balanceOf(sys.lp), sys.lp, sys.lp);
  const composer = await deployLpComposer(sys);
  await composer.run([lpOp(LP_OP.deposit, { amount: 2_000_000n * USDC })]);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 300_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.BTC, 2n * WAD);
  return { sys, composer };
}

/** The composer's maxWithdraw and maxRedeem after `prefix` ran in one transaction (then undone). */
async function maxAfter(sys: System, composer: LpComposer, prefix: LpOp[]) {
  const snapshot = await takeSnapshot();
  if (prefix.length !== 0) await composer.run(prefix);
  const who = await composer.getAddress();
  const result = {
    withdraw: await sys.pool.maxWithdraw(who),
    redeem: await sys.pool.maxRedeem(who),
    worth: await sys.pool.convertToAssets(await sys.pool.balanceOf(who)),
  };
  await snapshot.restore();
  return result;
}

/** Runs `ops` in one transaction on a copy of the state: its receipt, or the revert's error. */
async function runOnCopy(composer: LpComposer, ops: LpOp[]) {
  const snapshot = await takeSnapshot();
  try {
    return await (await composer.run(ops)).wait();
  } finally {
    await snapshot.restore();
  }
}

/** Each exit of the composer returned the preview read just before it, in the same transaction. */
function expectFreshSteps(composer: LpComposer, receipt: ContractTransactionReceipt | null, count: number) {
  const steps = composerLogs(composer, receipt, "Step");
  expect(steps).to.have.length(count);
  for (const s of steps) expect(s.args.actual, `step ${s.args.index}`).to.equal(s.args.expected);
}

function caughtSelectors(composer: LpComposer, receipt: ContractTransactionReceipt | null): string[] {
  return composerLogs(composer, receipt, "Caught").map((p) => (p.args.reason as string).slice(0, 10));
}

describe("LP exits valued once", function () {
  describe("an exit composed in one transaction is bounded by the free margin at that point", function () {
    /**
     * `prefix` in the same transaction as the exit moves the pool's free margin; the exit of the fresh
     * maximum goes through at the fresh price, one unit more is refused (ERC4626ExceededMax*).
     */
    async function exitsAtFreshMax(prefix: LpOp[], kind: "withdraw" | "redeem") {
      const { sys, composer } = await loadFixture(composerWorld);
      const before = await maxAfter(sys, composer, []);
      const after = await maxAfter(sys, composer, prefix);
      // The free margin binds (not the composer's shares), and the prefix moved it.
      expect(after.withdraw).to.be.lt(after.worth);
      expect(after.withdraw).to.not.equal(before.withdraw);
      const max = kind === "withdraw" ? after.withdraw : after.redeem;
      const [exit, tryExit] =
        kind === "withdraw" ? [LP_OP.withdraw, LP_OP.tryWithdraw] : [LP_OP.redeem, LP_OP.tryRedeem];
      const ok = await runOnCopy(composer, [...prefix, lpOp(exit, { amount: max })]);
      expectFreshSteps(composer, ok, prefix.filter((o) => o.kind <= LP_OP.redeem).length + 1);
      const refused = await runOnCopy(composer, [...prefix, lpOp(tryExit, { amount: max + 1n })]);
      const error = kind === "withdraw" ? "ERC4626ExceededMaxWithdraw" : "ERC4626ExceededMaxRedeem";
      expect(caughtSelectors(composer, refused)).to.deep.equal([
        sys.pool.interface.getError(error)!.selector,
      ]);
      return { sys, before, after };
    }

    it("withdraws at the fresh share price and margin after a same-transaction oracle round", async function () {
      const { sys } = await loadFixture(composerWorld);
      const btc = await sys.feeds.BTC.getAddress();
      const { before, after } = await exitsAtFreshMax(
        [lpOp(LP_OP.feed, { feed: btc, size: 66_000n * 10n ** 8n })],
        "withdraw",
      );
      // The pool short 2 BTC lost 12,000 and its requirement grew.
      expect(before.withdraw - after.withdraw).to.be.gt(12_000n * USDC);
    });

    it("redeems at the fresh share price and margin after a same-transaction oracle round", async function () {
      const { sys } = await loadFixture(composerWorld);
      const btc = await sys.feeds.BTC.getAddress();
      await exitsAtFreshMax([lpOp(LP_OP.feed, { feed: btc, size: 54_000n * 10n ** 8n })], "redeem");
    });

    it("withdraws at the fresh margin after a trade against the pool in the same transaction", async function () {
      const { sys } = await loadFixture(composerWorld);
      await exitsAtFreshMax([lpOp(LP_OP.trade, { marketId: sys.markets.BTC, size: 5n * WAD })], "withdraw");
    });

    it("bounds a second withdrawal in the same transaction by the margin the first left (the spare counts the quote that left)", async function () {
      const { sys } = await loadFixture(composerWorld);
      const btc = await sys.feeds.BTC.getAddress();
      await exitsAtFreshMax(
        [
          lpOp(LP_OP.withdraw, { amount: 500_000n * USDC }),
          lpOp(LP_OP.feed, { feed: btc, size: 63_000n * 10n ** 8n }),
          lpOp(LP_OP.redeem, { amount: 10n ** 6n * 100_000n * USDC }),
        ],
        "withdraw",
      );
    });
  });

  describe("initialMargin's positions value is positionsValue", function () {
    async function expectSame(
      engine: System["engine"],
      ids: bigint[],
    ): Promise<{ id: bigint; value: bigint }[]> {
      const rows = [];
      for (const id of ids) {
        const [, , positions] = await engine.initialMargin(id);
        expect(positions, `account ${id}`).to.equal(await engine.positionsValue(id));
        rows.push({ id, value: positions });
      }
      return rows;
    }

    it("on perp books: the pool's, an absorbed backstop's, a CROSS and an ISOLATED trader's", async function () {
      const sys = await loadFixture(deploySystemWithoutHoldingPeriod);
      const backstop = await absorbLong100(sys);
      const isolated = await openAccount(sys, sys.bob, MarginMode.ISOLATED, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.bob, isolated, sys.markets.BTC, -WAD);
      const cross = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.carol, cross, sys.markets.ETH, 7n * WAD);
      await trade(sys.perps, sys.carol, cross, sys.markets.BTC, WAD / 3n);
      const rows = await expectSame(sys.engine, [await sys.pool.accountId(), backstop, isolated, cross]);
      expect(rows.every((r) => r.value !== 0n)).to.equal(true);
      // The exit's book value: both books' positions and the backstop's collateral in quote.
      const [, , pool] = await sys.engine.initialMargin(await sys.pool.accountId());
      const [, , held] = await sys.engine.initialMargin(backstop);
      const [collateral] = await sys.vault.markInQuote(backstop);
      expect(pool + held + collateral).to.equal(
        (await sys.pool.positionValue()) + (await sys.pool.backstopValue()),
      );
    });

    it("on option books: beyond the model range, an exit discount, an ISOLATED series and an expired unsettled series", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const far = await listSeries(sys.options, "ETH", "290000", await fromNow(30n * DAY), true);
      const near = await listSeries(sys.options, "ETH", "3000", await fromNow(DAY), false);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 400_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, far, 50n * WAD);
      await tradeOption(sys.options, sys.alice, alice, near, -20n * WAD);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, 3n * WAD);
      const isolated = await openAccount(sys, sys.bob, MarginMode.ISOLATED, [[sys.usdc, 100_000n * USDC]]);
      await tradeOption(sys.options, sys.bob, isolated, near, 10n * WAD);
      const ids = [await sys.pool.accountId(), alice, isolated];
      await expectSame(sys.engine, ids);
      // The exit discounts (the perp's skew, the series' vega step) come off equity_IM, not the positions.
      const [equityInitial, , positions] = await sys.engine.initialMargin(alice);
      expect(equityInitial).to.be.lt((await sys.vault.collateralValue(alice)).initial + positions);
      // Past the near series' expiry, not settled; every feed reported again, ETH lower.
      await time.increase(DAY + 60n);
      await setFeedPrice(sys.feeds.USDC, "1");
      await setFeedPrice(sys.feeds.BTC, "60000");
      await setFeedPrice(sys.feeds.ETH, "2900");
      await setFeedPrice(sys.volFeeds.ETH, "0.6");
      await setFeedPrice(sys.volFeeds.BTC, "0.5");
      const [, , , , settled] = await sys.options.series(near);
      expect(settled).to.equal(false);
      await expectSame(sys.engine, ids);
    });

    it("a failed volatility feed: initialMargin and positionsValue both revert with the feed's error", async function () {
      const sys = await loadFixture(deployOptionsSystem);
      const call = await listSeries(sys.options, "ETH", "3200", await fromNow(7n * DAY), true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 400_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, 10n * WAD);
      await time.increase(3_700);
      await setFeedPrice(sys.feeds.USDC, "1");
      await setFeedPrice(sys.feeds.ETH, "3000");
      await setFeedPrice(sys.feeds.BTC, "60000");
      await setFeedPrice(sys.volFeeds.BTC, "0.5");
      for (const id of [await sys.pool.accountId(), alice]) {
        await expect(sys.engine.initialMargin(id)).to.be.revertedWithCustomError(sys.router, "StalePrice");
        await expect(sys.engine.positionsValue(id)).to.be.revertedWithCustomError(sys.router, "StalePrice");
      }
    });
  });

  describe("an exit with the backstop holding an absorbed book", function () {
    it("withdraws and redeems at the share price and margin the views give (backstop below its IM)", async function () {
      const sys = await loadFixture(deploySystemWithoutHoldingPeriod);
      const backstop = await absorbLong100(sys);
      const [equity, requirement] = await sys.engine.initialMargin(backstop);
      expect(equity - BigInt(requirement)).to.be.lt(0n);
      const pool = sys.pool.connect(sys.lp);
      const max = await pool.maxWithdraw(sys.lp);
      const shares = await pool.previewWithdraw(max);
      expect(await pool.withdraw.staticCall(max, sys.lp, sys.lp)).to.equal(shares);
      expect(await pool.withdrawWithLimit.staticCall(max, sys.lp, sys.lp, shares)).to.equal(shares);
      await expect(pool.withdrawWithLimit.staticCall(max, sys.lp, sys.lp, shares - 1n))
        .to.be.revertedWithCustomError(pool, "SlippageExceeded")
        .withArgs(shares, shares - 1n);
      await expect(pool.withdraw.staticCall(max + 1n, sys.lp, sys.lp)).to.be.revertedWithCustomError(
        pool,
        "ERC4626ExceededMaxWithdraw",
      );
      const redeemable = await pool.maxRedeem(sys.lp);
      const assets = await pool.previewRedeem(redeemable);
      expect(await pool.redeem.staticCall(redeemable, sys.lp, sys.lp)).to.equal(assets);
      expect(await pool.redeemWithLimit.staticCall(redeemable, sys.lp, sys.lp, assets)).to.equal(assets);
      await expect(pool.redeem.staticCall(redeemable + 1n, sys.lp, sys.lp)).to.be.revertedWithCustomError(
        pool,
        "ERC4626ExceededMaxRedeem",
      );
    });
  });
});

const staleUsdc = () => lockedLpWithStaleFeed("USDC");

/** A request of the seed LP's 1,000 USDC of shares, claimable now, and BTC's feed stale. */
async function claimableWithStaleBtc() {
  const sys = await deploySystem();
  await sys.pool.setExitDelay(EXIT_DELAY);
  const account = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
  await trade(sys.perps, sys.alice, account, sys.markets.BTC, WAD / 10n);
  const shares = await sys.pool.convertToShares(1_000n * USDC);
  await sys.pool.connect(sys.lp).requestRedeem(shares);
  await time.increase(EXIT_DELAY + 60n);
  await setFeedPrice(sys.feeds.USDC, "1");
  await setFeedPrice(sys.feeds.ETH, "3000");
  await setFeedPrice(sys.volFeeds.ETH, "0.6");
  await setFeedPrice(sys.volFeeds.BTC, "0.5");
  return { sys, shares };
}

/** The pool short 10 ETH calls half an hour before their expiry (`settlementPending`), the quote's feed stale. */
async function settlingWithStaleUsdc() {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(DAY);
  const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await tradeOption(sys.options, sys.alice, alice, call, 10n * WAD);
  await time.increaseTo(expiry - 1_800n);
  await setFeedPrice(sys.feeds.ETH, "3000");
  await setFeedPrice(sys.feeds.BTC, "60000");
  await setFeedPrice(sys.volFeeds.ETH, "0.6");
  await setFeedPrice(sys.volFeeds.BTC, "0.5");
  return sys;
}

/** The LP's withdraw of 1,000 USDC and redeem of 1,000 shares revert with `from`'s errors. */
async function expectExitsRefused(
  sys: System,
  from: BaseContract,
  withdrawError: string,
  redeemError = withdrawError,
) {
  await expect(
    sys.pool.connect(sys.lp).withdraw(1_000n * USDC, sys.lp, sys.lp),
  ).to.be.revertedWithCustomError(from, withdrawError);
  await expect(sys.pool.connect(sys.lp).redeem(1_000n, sys.lp, sys.lp)).to.be.revertedWithCustomError(
    from,
    redeemError,
  );
}

/** The LP's withdraw and redeem are refused by ERC-4626's max checks (their max* read 0). */
const expectExitsAtMaxZero = (sys: System) =>
  expectExitsRefused(sys, sys.pool, "ERC4626ExceededMaxWithdraw", "ERC4626ExceededMaxRedeem");

describe("LP exits' errors where a feed fails", function () {
  it("with the quote's feed stale an unlocked withdrawal names the feed (the free margin needs it)", async function () {
    const sys = await loadFixture(staleUsdc);
    await expectExitsRefused(sys, sys.router, "StalePrice");
    expect(await sys.pool.maxWithdraw(sys.lp)).to.equal(0n);
  });

  it("with the quote's feed stale and the exit delay on, withdraw and redeem name RedeemRequestRequired", async function () {
    const sys = await loadFixture(staleUsdc);
    await sys.pool.setExitDelay(EXIT_DELAY);
    await expect(sys.pool.connect(sys.lp).withdraw(1_000n * USDC, sys.lp, sys.lp))
      .to.be.revertedWithCustomError(sys.pool, "RedeemRequestRequired")
      .withArgs(EXIT_DELAY);
    await expect(sys.pool.connect(sys.lp).redeem(1_000n, sys.lp, sys.lp))
      .to.be.revertedWithCustomError(sys.pool, "RedeemRequestRequired")
      .withArgs(EXIT_DELAY);
  });

  it("with the quote's feed stale and the vault paused, withdraw and redeem name ERC4626ExceededMax*", async function () {
    const sys = await loadFixture(staleUsdc);
    await sys.vault.pause();
    await expectExitsAtMaxZero(sys);
  });

  it("with the quote's feed stale a redeem of locked shares names SharesLocked; one beyond the balance names the feed (its max reads the margin)", async function () {
    const sys = await loadFixture(staleUsdc);
    const [locked] = await sys.pool.sharesLock(sys.bob);
    await expect(sys.pool.connect(sys.bob).redeem(locked, sys.bob, sys.bob)).to.be.revertedWithCustomError(
      sys.pool,
      "SharesLocked",
    );
    await expect(
      sys.pool.connect(sys.bob).redeem(locked + 1n, sys.bob, sys.bob),
    ).to.be.revertedWithCustomError(sys.router, "StalePrice");
  });

  it("with the quote's feed stale a withdrawal of shares still in their holding period names SharesLocked (the share price needs no quote price)", async function () {
    const sys = await loadFixture(staleUsdc);
    expect(await sys.pool.unlockedShares(sys.bob)).to.equal(0n);
    // The share price is known: only the pool's margin reads the quote's feed.
    expect(await sys.pool.totalAssets()).to.be.gt(0n);
    await expect(
      sys.pool.connect(sys.bob).withdraw(1_000n * USDC, sys.bob, sys.bob),
    ).to.be.revertedWithCustomError(sys.pool, "SharesLocked");
  });

  it("with a settlement pending and the quote's feed stale, withdraw and redeem name ERC4626ExceededMax* (the share price needs no quote price)", async function () {
    const sys = await loadFixture(settlingWithStaleUsdc);
    expect(await sys.pool.settlementPending()).to.equal(true);
    expect(await sys.pool.totalAssets()).to.be.gt(0n);
    await expectExitsAtMaxZero(sys);
  });

  it("claimRedeem of no shares or more than requested names InvalidRedeemShares with a feed under the book stale, before valuing the book", async function () {
    const { sys, shares } = await loadFixture(claimableWithStaleBtc);
    await expect(sys.pool.connect(sys.lp).claimRedeem(0n, sys.lp, 0n))
      .to.be.revertedWithCustomError(sys.pool, "InvalidRedeemShares")
      .withArgs(0n, shares);
    await expect(sys.pool.connect(sys.lp).claimRedeem(shares + 1n, sys.lp, 0n))
      .to.be.revertedWithCustomError(sys.pool, "InvalidRedeemShares")
      .withArgs(shares + 1n, shares);
    // Within the request the claim needs the price: the feed's error.
    await expect(sys.pool.connect(sys.lp).claimRedeem(shares, sys.lp, 0n)).to.be.revertedWithCustomError(
      sys.router,
      "StalePrice",
    );
  });
});

describe("LP exits' refusals that need no price cost no valuation", function () {
  it("claimRedeem of more shares than requested is refused before the book is valued", async function () {
    const { sys, shares } = await loadFixture(claimableWithStaleBtc);
    await setFeedPrice(sys.feeds.BTC, "60000");
    const tooMany = await gasOfRevert(() =>
      sys.pool.connect(sys.lp).claimRedeem(shares + 1n, sys.lp, 0n, { gasLimit: 3_000_000 }),
    );
    const claim = await (await sys.pool.connect(sys.lp).claimRedeem(shares, sys.lp, 0n)).wait();
    console.log(`      claimRedeem refused: ${tooMany} gas; a claim: ${claim!.gasUsed}`);
    expect(tooMany).to.be.lt(60_000n);
  });
});

describe("what bounds the pool's book", function () {
  it("a second PerpMarket registered with the engine trades against the same pool account: MAX_MARKETS bounds one market contract, not the pool's book", async function () {
    const sys = await loadFixture(deploySystemWithoutHoldingPeriod);
    const second = await deployPerps(sys);
    const eth = await listPerpMarket(second, "ETH");
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
    await trade(sys.perps, sys.alice, alice, sys.markets.ETH, WAD);
    await trade(second, sys.alice, alice, eth, WAD);
    const held = await sys.engine.accountMarkets(await sys.pool.accountId());
    expect(held.map((k) => k.market)).to.deep.equal([
      await sys.perps.getAddress(),
      await second.getAddress(),
    ]);
    expect(await second.MAX_MARKETS()).to.equal(await sys.perps.MAX_MARKETS());
  });
});
