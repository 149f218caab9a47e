import { expect } from "chai";
import { ethers } from "hardhat";
import fc from "fast-check";
import { loadFixture, takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  EXIT_DELAY,
  MarginMode,
  System,
  atLatestTimestamp,
  deploySystem,
  openAccount,
  wad,
} from "../shared/system";
import { setFeedPrice } from "../shared/oracles";
import {
  absorbLong100,
  advanceTo,
  frozenLongAndPartner,
  marketParams,
  mineAt,
  refreshFeeds,
  refreshPrices,
  trade,
} from "../shared/perps";
import {
  DAY,
  HOUR,
  deployOptionsSystem,
  deployOptionsSystemWithoutFunding,
  listSeries,
  tradeOption,
} from "../shared/options";
import { OptionMarket } from "../../typechain-types";

/**
 * Review round 82: the vault no longer runs `requireInitialMargin` on the pool's account (§4 row 198's
 * fix); the pool's `_freeQuote`, now read from `MarginEngine.initialMargin`, is the only bound on an LP
 * exit. These tests try every exit path against a heavy world and pin what held.
 */
const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;

type World = System & { options: OptionMarket; backstop: bigint; debtor: bigint; T: bigint };

/**
 * The pool's book, everything at once: a trader's quote debt (WETH collateral, realised loss) accruing
 * interest; the backstop holding an absorbed 100 ETH long at a shortfall; a perp skew (exit discount);
 * the pool long puts near expiry (repriced), short a call beyond the model's range and a 30-day call.
 * `T`: 2h50m before the puts expire, a day and ten minutes after the fixture (a claim window).
 */
async function heavyWorld(): Promise<World> {
  const sys = await deployOptionsSystem();
  await sys.perps.setMarketParams(
    sys.markets.ETH,
    marketParams({ maxFundingVelocity: 0n, maxPoolDeltaRatio: wad("2") }),
  );
  // Quote debt: the keeper's account, WETH only, long 20 ETH, closes 10% lower.
  const debtor = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.weth, wad("10")]]);
  await trade(sys.perps, sys.keeper, debtor, sys.markets.ETH, wad("20"));
  await setFeedPrice(sys.feeds.ETH, "2700");
  await trade(sys.perps, sys.keeper, debtor, sys.markets.ETH, -wad("20"));
  await setFeedPrice(sys.feeds.ETH, "3000");
  // The backstop absorbs Alice's 100 ETH long at 2,600.
  const backstop = await absorbLong100(sys);
  // Options and a skew: Bob sells puts near expiry and buys calls, Carol is long perps.
  const T = BigInt(await time.latest()) + DAY + 10n * 60n;
  const expiry = T + 2n * HOUR + 50n * 60n;
  const put = await listSeries(sys.options, "ETH", "2600", expiry, false);
  const far = await listSeries(sys.options, "ETH", "257400", expiry, true); // 99× spot: beyond the range
  const month = await listSeries(sys.options, "ETH", "2800", expiry + 30n * DAY, true);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 400_000n * USDC]]);
  await tradeOption(sys.options, sys.bob, bob, put, -wad("40"));
  await tradeOption(sys.options, sys.bob, bob, far, wad("5"));
  await tradeOption(sys.options, sys.bob, bob, month, wad("30"));
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
  await trade(sys.perps, sys.carol, carol, sys.markets.ETH, wad("150"));
  return { ...sys, backstop, debtor, T };
}

/** equity_IM − IM of `id` (USD WAD). */
async function spare(sys: System, id: bigint): Promise<bigint> {
  const [equity, requirement] = await sys.engine.initialMargin(id);
  return equity - requirement;
}

/** The pool's own rule after an exit: its IM met, and met net of the backstop's shortfall. */
async function expectPoolBound(w: World, label: string): Promise<void> {
  const pool = await spare(w, w.poolAccountId);
  const backstop = await spare(w, w.backstop);
  expect(pool, `${label}: the pool's equity_IM − IM`).to.be.gte(0n);
  expect(pool + (backstop < 0n ? backstop : 0n), `${label}: net of the backstop's shortfall`).to.be.gte(0n);
  const balance = await w.vault.balanceOf(w.poolAccountId, w.usdc);
  expect(balance, `${label}: the quote traders owe kept back`).to.be.gte(
    (await w.vault.quoteDebt()) + (await w.pool.uncoveredDeficit()),
  );
}

describe("LP exits: the pool's account bounded by the pool alone (the vault does not check it again)", function () {
  describe("every LP exit path leaves the pool's account at its IM", function () {
    it("the world: a backstop shortfall, quote debt, a skew, repriced and beyond-range options; free margin binds", async function () {
      const w = await loadFixture(heavyWorld);
      await advanceTo(w, w.T);
      await ethers.provider.send("evm_mine", []);
      const b = await spare(w, w.backstop);
      expect(b, "the backstop below its IM").to.be.lt(0n);
      expect(await w.vault.quoteDebt()).to.be.gt(0n);
      const [e, r] = await w.engine.initialMargin(w.poolAccountId);
      const free = await w.pool.maxWithdraw(w.lp);
      const worth = await w.pool.convertToAssets(await w.pool.balanceOf(w.lp));
      console.log(
        `      pool equity_IM ${e / QUOTE_UNIT} IM ${r / QUOTE_UNIT}; backstop ${b / QUOTE_UNIT}; debt ${await w.vault.quoteDebt()}; maxWithdraw ${free} of ${worth}`,
      );
      expect(free).to.be.gt(0n);
      expect(free, "free margin, not the LP's shares, binds").to.be.lt(worth);
      expect(free).to.equal((e - r + b) / QUOTE_UNIT);
    });

    for (const path of ["withdraw", "redeem", "withdrawWithLimit", "redeemWithLimit"] as const) {
      it(`${path} at the bound leaves the pool at its IM and one unit more is refused`, async function () {
        const w = await loadFixture(heavyWorld);
        await advanceTo(w, w.T);
        await ethers.provider.send("evm_mine", []);
        const { pool, lp } = w;
        const maxAssets = await pool.maxWithdraw(lp);
        const maxShares = await pool.maxRedeem(lp);
        const beyond = await takeSnapshot();
        await atLatestTimestamp();
        if (path === "withdraw" || path === "withdrawWithLimit") {
          const call =
            path === "withdraw"
              ? pool.connect(lp).withdraw(maxAssets + 1n, lp, lp)
              : pool.connect(lp).withdrawWithLimit(maxAssets + 1n, lp, lp, ethers.MaxUint256);
          await expect(call).to.be.revertedWithCustomError(pool, "ERC4626ExceededMaxWithdraw");
        } else {
          const call =
            path === "redeem"
              ? pool.connect(lp).redeem(maxShares + 1n, lp, lp)
              : pool.connect(lp).redeemWithLimit(maxShares + 1n, lp, lp, 0n);
          await expect(call).to.be.revertedWithCustomError(pool, "ERC4626ExceededMaxRedeem");
        }
        await beyond.restore();
        await atLatestTimestamp();
        if (path === "withdraw") await pool.connect(lp).withdraw(maxAssets, lp, lp);
        if (path === "withdrawWithLimit")
          await pool.connect(lp).withdrawWithLimit(maxAssets, lp, lp, ethers.MaxUint256);
        if (path === "redeem") await pool.connect(lp).redeem(maxShares, lp, lp);
        if (path === "redeemWithLimit") await pool.connect(lp).redeemWithLimit(maxShares, lp, lp, 0n);
        await expectPoolBound(w, path);
        // Tight: less than a unit's margin (and the rounding of the shares) is left over.
        expect((await spare(w, w.poolAccountId)) + (await spare(w, w.backstop))).to.be.lt(
          path.startsWith("redeem") ? 2n * QUOTE_UNIT : QUOTE_UNIT,
        );
      });
    }

    it("requestRedeem + claimRedeem (exitDelay > 0): maxClaim leaves the pool at its IM; one share more is ClaimUnavailable", async function () {
      const w = await loadFixture(heavyWorld);
      const { pool, lp } = w;
      await pool.setExitDelay(EXIT_DELAY);
      await atLatestTimestamp();
      await pool.connect(lp).requestRedeem(await pool.balanceOf(lp));
      await advanceTo(w, w.T);
      await ethers.provider.send("evm_mine", []);
      const shares = await pool.maxClaim(lp);
      const [requested] = await pool.redeemRequest(lp);
      expect(shares, "free margin binds the claim").to.be.lt(requested);
      const beyond = await takeSnapshot();
      await atLatestTimestamp();
      await expect(pool.connect(lp).claimRedeem(shares + 1n, lp, 0n)).to.be.revertedWithCustomError(
        pool,
        "ClaimUnavailable",
      );
      await beyond.restore();
      await atLatestTimestamp();
      await pool.connect(lp).claimRedeem(shares, lp, 0n);
      await expectPoolBound(w, "claimRedeem");
    });

    it("an uncovered deficit: the LP's whole exit leaves the pool at its IM, and the take after it too", async function () {
      const sys = await deploySystem();
      const long = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 3_500n * USDC]]);
      const short = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await trade(sys.perps, sys.alice, long, sys.markets.ETH, wad("10"));
      // In Alice's second, whatever the wall clock does: a skew held for a second leaves a funding rate,
      // and her funding over the auction would grow the deficit the pool's exit was measured against.
      await atLatestTimestamp();
      await trade(sys.perps, sys.carol, short, sys.markets.ETH, -wad("10"));
      await setFeedPrice(sys.feeds.ETH, "2500");
      await sys.auction.startAuction(long);
      expect(await sys.pool.uncoveredDeficit()).to.be.gt(0n);
      const max = await sys.pool.maxWithdraw(sys.lp);
      await atLatestTimestamp();
      await sys.pool.connect(sys.lp).withdraw(max, sys.lp, sys.lp);
      const w = { ...sys, backstop: await sys.engine.backstopAccountId() } as unknown as World;
      await expectPoolBound(w, "after the exit");
      // The take at the duration's end exactly, whatever the wall clock does: the pool sits at its IM, so
      // whatever a later second moves would be counted against the take.
      await advanceTo(sys, BigInt(await time.latest()) + BigInt((await sys.auction.params()).duration));
      await sys.auction.absorb(long);
      expect(await spare(sys, sys.poolAccountId), "after the take").to.be.gte(0n);
    });
  });

  describe("a volatility feed failed under a perps-only pool: the same error as before", function () {
    async function stalePerpsPool() {
      const sys = await deploySystem();
      const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, a, sys.markets.ETH, wad("20"));
      await time.increase(3_601);
      await refreshPrices(sys, { atLatest: true });
      return sys;
    }

    it("max* read 0; withdraw and redeem revert with the feed's StalePrice, which maintenanceRequirement (the old path) also raised", async function () {
      const sys = await loadFixture(stalePerpsPool);
      const { pool, lp, engine, router } = sys;
      expect((await engine.health(sys.poolAccountId)).volatilityUnavailable).to.equal(true);
      // Before the fix an exit reverted through maintenanceRequirement; now through initialMargin.
      await expect(engine.maintenanceRequirement(sys.poolAccountId)).to.be.revertedWithCustomError(
        router,
        "StalePrice",
      );
      await expect(engine.initialMargin(sys.poolAccountId)).to.be.revertedWithCustomError(
        router,
        "StalePrice",
      );
      expect([await pool.maxWithdraw(lp), await pool.maxRedeem(lp)]).to.deep.equal([0n, 0n]);
      await expect(pool.connect(lp).withdraw(USDC, lp, lp)).to.be.revertedWithCustomError(
        router,
        "StalePrice",
      );
      await expect(pool.connect(lp).redeem(10n ** 12n, lp, lp)).to.be.revertedWithCustomError(
        router,
        "StalePrice",
      );
    });

    it("a claim: maxClaim 0, claimRedeem reverts with StalePrice", async function () {
      const sys = await deploySystem();
      await sys.pool.setExitDelay(EXIT_DELAY);
      const a = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await trade(sys.perps, sys.alice, a, sys.markets.ETH, wad("20"));
      await sys.pool.connect(sys.lp).requestRedeem(10n ** 17n);
      const [, , claimableAt] = await sys.pool.redeemRequest(sys.lp);
      await time.increaseTo(claimableAt + 60n);
      await refreshPrices(sys, { atLatest: true });
      expect(await sys.pool.maxClaim(sys.lp)).to.equal(0n);
      await expect(
        sys.pool.connect(sys.lp).claimRedeem(10n ** 17n, sys.lp, 0n),
      ).to.be.revertedWithCustomError(sys.router, "StalePrice");
    });
  });

  describe("no other way out of the pool's account", function () {
    it("only the pool withdraws from it; the vault's balance moves are the engine's", async function () {
      const sys = await loadFixture(deploySystem);
      const { vault, usdc, poolAccountId, lp, deployer, accounts } = sys;
      expect(await accounts.ownerOf(poolAccountId)).to.equal(await sys.pool.getAddress());
      for (const who of [lp, deployer]) {
        await expect(vault.connect(who).withdraw(poolAccountId, usdc, USDC, who))
          .to.be.revertedWithCustomError(accounts, "NotAuthorized")
          .withArgs(poolAccountId, who.address);
        await expect(vault.connect(who).payOutQuote(poolAccountId, who, USDC)).to.be.revertedWithCustomError(
          vault,
          "NotMarginEngine",
        );
        await expect(
          vault.connect(who).transferBalance(poolAccountId, 1n, usdc, USDC),
        ).to.be.revertedWithCustomError(vault, "NotMarginEngine");
      }
    });
  });

  describe("initialMargin equals health's (equityInitial, initialRequirement) and positionsValue", function () {
    type Book = {
      mode: 0 | 1;
      collateral: "usdc" | "weth" | "wbtc";
      ethPerp: number;
      btcPerp: number;
      options: number[]; // size per series (tenths of a contract)
      pastExpiry: boolean;
    };
    async function seriesWorld() {
      const sys = await deployOptionsSystemWithoutFunding();
      const now = BigInt(await time.latest());
      const near = now + 2n * HOUR; // repriced (σ√τ below the shocks); expires unsettled in some runs
      const series = [
        await listSeries(sys.options, "ETH", "3000", near, false),
        await listSeries(sys.options, "ETH", "3300", now + 3n * DAY, true), // the σ√τ band
        await listSeries(sys.options, "ETH", "297000", now + 10n * DAY, true), // beyond the range
        await listSeries(sys.options, "ETH", "2700", now + 30n * DAY, false),
        await listSeries(sys.options, "BTC", "60000", now + 7n * DAY, true),
      ];
      return { ...sys, series, near };
    }
    const bookArb: fc.Arbitrary<Book> = fc.record({
      mode: fc.constantFrom(0 as const, 1 as const),
      collateral: fc.constantFrom("usdc" as const, "weth" as const, "wbtc" as const),
      ethPerp: fc.integer({ min: -30, max: 30 }),
      btcPerp: fc.integer({ min: -10, max: 10 }),
      options: fc.array(fc.integer({ min: -60, max: 60 }), { minLength: 5, maxLength: 5 }),
      pastExpiry: fc.boolean(),
    });

    it("over random books (CROSS and ISOLATED, haircut collateral, repriced, band, beyond-range and expired unsettled series)", async function () {
      this.timeout(120_000);
      const w = await loadFixture(seriesWorld);
      let compared = 0;
      let positions = 0;
      let options = 0;
      let expired = 0;
      const started = Date.now();
      await fc.assert(
        fc.asyncProperty(bookArb, async (book) => {
          const snap = await takeSnapshot();
          try {
            const deposit: Record<Book["collateral"], [typeof w.usdc, bigint]> = {
              usdc: [w.usdc, 300_000n * USDC],
              weth: [w.weth, wad("100")],
              wbtc: [w.wbtc, 5n * 10n ** 8n],
            };
            const id = await openAccount(w, w.alice, book.mode, [deposit[book.collateral]]);
            const tryIt = async (p: Promise<unknown>) => {
              try {
                await (await (p as Promise<{ wait: () => Promise<unknown> }>)).wait();
              } catch {
                /* refused trades (margin, ISOLATED's one market) leave the book as it is */
              }
            };
            if (book.ethPerp !== 0)
              await tryIt(
                trade(w.perps, w.alice, id, w.markets.ETH, (wad("1") * BigInt(book.ethPerp)) / 10n),
              );
            if (book.btcPerp !== 0)
              await tryIt(
                trade(w.perps, w.alice, id, w.markets.BTC, (wad("1") * BigInt(book.btcPerp)) / 100n),
              );
            for (let i = 0; i < w.series.length; i++)
              if (book.options[i] !== 0)
                await tryIt(
                  tradeOption(
                    w.options,
                    w.alice,
                    id,
                    w.series[i],
                    (wad("1") * BigInt(book.options[i])) / 10n,
                  ),
                );
            if (book.pastExpiry) await mineAt(w, w.near + 60n);
            const held = await w.engine.accountMarkets(id);
            positions += held.length;
            options += held.filter((k) => k.market === w.options.target).length;
            if (book.pastExpiry && (await w.options.positionSize(id, w.series[0])) !== 0n) expired++;
            const h = await w.engine.health(id);
            expect(await w.engine.initialMargin(id), JSON.stringify(book)).to.deep.equal([
              h.equityInitial,
              h.initialRequirement,
              await w.engine.positionsValue(id),
            ]);
            for (const sys of [w.poolAccountId, await w.engine.backstopAccountId()]) {
              const hp = await w.engine.health(sys);
              expect(await w.engine.initialMargin(sys)).to.deep.equal([
                hp.equityInitial,
                hp.initialRequirement,
                await w.engine.positionsValue(sys),
              ]);
            }
            compared++;
          } finally {
            await snap.restore();
          }
        }),
        { numRuns: 20, seed: 82 },
      );
      console.log(
        `      ${compared} books compared (${positions} positions, ${options} options, ${expired} with an expired unsettled series) in ${Date.now() - started} ms`,
      );
      expect(options).to.be.gt(compared);
      expect(expired).to.be.gt(0);
    });

    it("a frozen account (in auction): the same numbers; requireInitialMargin says AccountFrozen", async function () {
      const { sys, a } = await frozenLongAndPartner();
      expect(await sys.auction.isFrozen(a)).to.equal(true);
      const h = await sys.engine.health(a);
      expect(await sys.engine.initialMargin(a)).to.deep.equal([
        h.equityInitial,
        h.initialRequirement,
        await sys.engine.positionsValue(a),
      ]);
      await expect(sys.engine.requireInitialMargin(a)).to.be.revertedWithCustomError(
        sys.engine,
        "AccountFrozen",
      );
      await refreshFeeds(sys);
    });
  });
});
