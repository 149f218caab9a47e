import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Signer } from "ethers";
import {
  MarginMode,
  atLatestTimestamp,
  deploySystem,
  fundInsurance,
  openAccount,
  wad,
  type System,
} from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { setFeedPrice } from "../shared/oracles";
import { advanceTo, trade } from "../shared/perps";

/**
 * The LP share price against the first-depositor (donation, "inflation") attack and against rounding,
 * at 2, 6 and 18 quote decimals (review round 134). The pool is OpenZeppelin's ERC-4626 with
 * `_decimalsOffset` 6: every conversion counts 10^6 virtual shares and one virtual quote unit, so at
 * any decimals a quote unit is first worth 10^6 shares, and a donation D to an empty pool is shared
 * with the virtual shares: the attacker's 1-unit deposit owns about half of it, the rest is lost to
 * whoever holds shares later. All amounts are quote units; `usd(x, d)` is x USD in units of a
 * d-decimal quote.
 */

const DECIMALS = [2, 6, 18] as const;
type Decimals = (typeof DECIMALS)[number];
/** ERC-4626 virtual shares of the pool (`_decimalsOffset` 6). */
const VIRTUAL_SHARES = 10n ** 6n;

/** `x` USD (a whole number) in units of a `d`-decimal quote. */
function usd(x: bigint, d: Decimals): bigint {
  return x * 10n ** BigInt(d);
}

/** OpenZeppelin's conversions with the pool's virtual shares and asset (`_convertToShares/Assets`). */
function toShares(assets: bigint, supply: bigint, total: bigint, up = false): bigint {
  return mulDiv(assets, supply + VIRTUAL_SHARES, total + 1n, up);
}
function toAssets(shares: bigint, supply: bigint, total: bigint, up = false): bigint {
  return mulDiv(shares, total + 1n, supply + VIRTUAL_SHARES, up);
}
function mulDiv(a: bigint, b: bigint, c: bigint, up: boolean): bigint {
  const q = (a * b) / c;
  return up && q * c !== a * b ? q + 1n : q;
}

/** One fixture function per decimals and variant (loadFixture keys on the function). */
function perDecimals<T>(build: (d: Decimals) => Promise<T>): (d: Decimals) => () => Promise<T> {
  const cache = new Map<Decimals, () => Promise<T>>();
  return (d) => {
    if (!cache.has(d))
      cache.set(d, async function fixture() {
        return build(d);
      });
    return cache.get(d)!;
  };
}

/** The system on a `d`-decimal quote without a holding period; its seed LP redeemed every share. */
const emptyPool = perDecimals(async (d) => {
  const sys = await deploySystem({ quoteDecimals: d, holdingPeriod: 0n });
  await sys.pool.connect(sys.lp).redeem(await sys.pool.balanceOf(sys.lp), sys.lp, sys.lp);
  return sys;
});

/**
 * The system on a `d`-decimal quote without a holding period, its seed LP's 1,000,000 USD in, and
 * 1,234,567 units given to the pool's account: a share is then no whole number of units at any
 * decimals, so every conversion rounds.
 */
const oddPrice = perDecimals(async (d) => {
  const sys = await deploySystem({ quoteDecimals: d, holdingPeriod: 0n });
  await donateToPoolAccount(sys, sys.deployer, 1_234_567n);
  return sys;
});

/**
 * Alice (long 10 ETH on 3,500 USD) and Carol (short 10 ETH on 10,000 USD) leave the pool's account
 * flat; the seed LP redeems all but `kept` USD of shares; ETH falls to 2,500 and Alice's auction
 * starts ~1,500 USD short with an empty insurance fund: a shortfall the pool will pay.
 */
function shortfallPending(kept: bigint) {
  return perDecimals(async (d) => {
    const sys = await deploySystem({ quoteDecimals: d, holdingPeriod: 0n });
    const { pool, lp } = sys;
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, usd(3_500n, d)]]);
    const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, usd(10_000n, d)]]);
    await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
    // In Alice's second: a second of her skew alone would leave a funding rate that moves the deficit
    // between the auction's start and the take (a second under load cost the victim 6 units).
    await atLatestTimestamp();
    await trade(sys.perps, sys.carol, carol, sys.markets.ETH, -wad("10"));
    const keep = kept === 0n ? 0n : await pool.convertToShares(usd(kept, d));
    await pool.connect(lp).redeem((await pool.balanceOf(lp)) - keep, lp, lp);
    await setFeedPrice(sys.feeds.ETH, "2500");
    await sys.auction.startAuction(alice);
    return { ...sys, aliceAccount: alice };
  });
}
const shortfallWithLp = shortfallPending(100n);
const shortfallNoLp = shortfallPending(0n);

/** `from` deposits `amount` of the quote into the pool's margin account (anyone may). */
async function donateToPoolAccount(sys: System, from: Signer, amount: bigint): Promise<void> {
  await mintAndApprove(sys.usdc, from, await sys.vault.getAddress(), amount);
  await sys.vault.connect(from).deposit(sys.poolAccountId, sys.usdc, amount);
}

/** `who` deposits `amount` into the pool for itself; returns the shares minted. */
async function depositIntoPool(sys: System, who: Signer, amount: bigint): Promise<bigint> {
  const before = await sys.pool.balanceOf(who);
  await mintAndApprove(sys.usdc, who, await sys.pool.getAddress(), amount);
  await sys.pool.connect(who).deposit(amount, who);
  return (await sys.pool.balanceOf(who)) - before;
}

/** `who` redeems every share it holds; returns the quote paid. */
async function redeemAll(sys: System, who: Signer): Promise<bigint> {
  const before = await sys.usdc.balanceOf(who);
  await sys.pool.connect(who).redeem(await sys.pool.balanceOf(who), who, who);
  return (await sys.usdc.balanceOf(who)) - before;
}

/** The pool's share price as the pair (totalAssets + 1, supply + virtual shares). */
async function price(sys: System): Promise<[bigint, bigint]> {
  return [(await sys.pool.totalAssets()) + 1n, (await sys.pool.totalSupply()) + VIRTUAL_SHARES];
}

/** True when price `after` is at least price `before` (cross-multiplied: no rounding). */
function notLower(after: [bigint, bigint], before: [bigint, bigint]): boolean {
  return after[0] * before[1] >= before[0] * after[1];
}

describe("LP share price against donations and rounding at 2, 6 and 18 quote decimals", function () {
  for (const d of DECIMALS) {
    describe(`${d}-decimal quote`, function () {
      describe("the first-depositor donation attack on an empty pool", function () {
        it("leaves the attacker's 1,000,000 USD donation about half lost and the 10,000 USD victim one share (0.50 USD) short", async function () {
          const sys = await loadFixture(emptyPool(d));
          const { pool, carol: attacker, bob: victim } = sys;
          expect([await pool.totalSupply(), await pool.totalAssets()]).to.deep.equal([0n, 0n]);
          // One unit mints 10^6 shares; the rest of the budget goes to the pool's margin account.
          expect(await depositIntoPool(sys, attacker, 1n)).to.equal(VIRTUAL_SHARES);
          const donation = usd(1_000_000n, d) - 1n;
          await donateToPoolAccount(sys, attacker, donation);
          const total = 1n + donation;
          expect(await pool.totalAssets()).to.equal(total);
          // 10,000 USD buy floor(V·2·10^6 / (T + 1)) = 19,999 shares: just under 20,000, a share ≈ 0.50 USD.
          const victimDeposit = usd(10_000n, d);
          const victimShares = await depositIntoPool(sys, victim, victimDeposit);
          expect(victimShares)
            .to.equal(toShares(victimDeposit, VIRTUAL_SHARES, total))
            .and.to.equal(19_999n);
          const attackerPaid = await redeemAll(sys, attacker);
          const victimPaid = await redeemAll(sys, victim);
          const attackerLoss = 1n + donation - attackerPaid;
          const victimLoss = victimDeposit - victimPaid;
          // The attacker loses the virtual shares' half of the donation, less its part of the victim's
          // share: 499,999.75 USD; the victim loses one share's worth, 0.50 USD.
          const unit = 10n ** BigInt(d);
          expect(attackerLoss).to.be.within((499_999_74n * unit) / 100n, (499_999_76n * unit) / 100n);
          expect(victimLoss).to.be.within((49n * unit) / 100n, (51n * unit) / 100n);
          // What the virtual shares hold (500,000.25 USD) stays in the pool's account with no shares out,
          // and the next LP's deposit is priced over it: she too loses less than a share (0.50 USD).
          expect(await pool.totalSupply()).to.equal(0n);
          const left = 1n + donation + victimDeposit - attackerPaid - victimPaid;
          expect(await pool.totalAssets()).to.equal(left);
          expect(left).to.be.within((500_000_24n * unit) / 100n, (500_000_26n * unit) / 100n);
          const next = await depositIntoPool(sys, sys.alice, victimDeposit);
          expect(await pool.previewRedeem(next)).to.be.within(victimDeposit - unit / 2n, victimDeposit);
        });

        it("counts nothing sent to the pool's own address: the victim's shares are worth its deposit", async function () {
          const sys = await loadFixture(emptyPool(d));
          const { pool, usdc, carol: attacker, bob: victim } = sys;
          await depositIntoPool(sys, attacker, 1n);
          await usdc.mint(attacker, usd(1_000_000n, d));
          await usdc.connect(attacker).transfer(await pool.getAddress(), usd(1_000_000n, d));
          expect(await pool.totalAssets()).to.equal(1n);
          const victimDeposit = usd(10_000n, d);
          expect(await depositIntoPool(sys, victim, victimDeposit)).to.equal(victimDeposit * VIRTUAL_SHARES);
          expect(await pool.convertToAssets(await pool.balanceOf(victim))).to.equal(victimDeposit);
        });
      });

      describe("rounding of every ERC-4626 function", function () {
        const amounts = (d: Decimals) => [1n, 2n, 3n, 7n, 99n, usd(1n, d) + 1n, usd(12_345n, d) + 3n];

        it("rounds previews and conversions in the pool's favour, the max* views down", async function () {
          const sys = await loadFixture(oddPrice(d));
          const { pool, lp } = sys;
          const [supply, total] = [await pool.totalSupply(), await pool.totalAssets()];
          for (const a of amounts(d)) {
            // Each amount rounds (no exact conversion hides the direction).
            expect((a * (supply + VIRTUAL_SHARES)) % (total + 1n)).to.not.equal(0n);
            expect(await pool.previewDeposit(a)).to.equal(toShares(a, supply, total));
            expect(await pool.convertToShares(a)).to.equal(toShares(a, supply, total));
            expect(await pool.previewWithdraw(a)).to.equal(toShares(a, supply, total, true));
            const s = a * 1_000_003n;
            expect(await pool.previewMint(s)).to.equal(toAssets(s, supply, total, true));
            expect(await pool.previewRedeem(s)).to.equal(toAssets(s, supply, total));
            expect(await pool.convertToAssets(s)).to.equal(toAssets(s, supply, total));
          }
          const shares = await pool.balanceOf(lp);
          expect(await pool.maxWithdraw(lp)).to.equal(toAssets(shares, supply, total));
          expect(await pool.maxRedeem(lp)).to.equal(shares);
        });

        it("gains no unit in any round trip: deposit→redeem, mint→redeem, deposit→withdraw, and never lowers the share price", async function () {
          const sys = await loadFixture(oddPrice(d));
          const { pool, usdc, bob } = sys;
          const start = await usdc.balanceOf(bob);
          await usdc.mint(bob, usd(100_000n, d));
          await usdc.connect(bob).approve(await pool.getAddress(), usd(100_000n, d));
          const budget = start + usd(100_000n, d);
          let last = await price(sys);
          const step = async (action: () => Promise<unknown>) => {
            await action();
            const now = await price(sys);
            expect(notLower(now, last), "the share price fell").to.equal(true);
            last = now;
          };
          /** Redeems all of Bob's shares (`maxRedeem`: no exit delay, no lock, a flat pool). */
          const redeemAll = async () => {
            const shares = await pool.balanceOf(bob);
            expect(await pool.maxRedeem(bob)).to.equal(shares);
            await step(() => pool.connect(bob).redeem(shares, bob, bob));
          };
          for (const a of amounts(d)) {
            await step(() => pool.connect(bob).deposit(a, bob));
            await redeemAll();
            expect(await usdc.balanceOf(bob)).to.be.at.most(budget);
            const s = a * 1_000_003n;
            await step(() => pool.connect(bob).mint(s, bob));
            await redeemAll();
            expect(await usdc.balanceOf(bob)).to.be.at.most(budget);
            await step(() => pool.connect(bob).deposit(a, bob));
            const worth = await pool.maxWithdraw(bob);
            expect(worth).to.be.below(a);
            if (worth > 0n) await step(() => pool.connect(bob).withdraw(worth, bob, bob));
            // What is left is dust worth less than a unit.
            expect(await pool.previewRedeem(await pool.balanceOf(bob))).to.equal(0n);
            expect(await usdc.balanceOf(bob)).to.be.at.most(budget);
            await redeemAll();
          }
          // The trips lost Bob a few units, all of them to the pool.
          expect(await usdc.balanceOf(bob)).to.be.below(budget);
        });

        it("redeems shares worth less than a unit for 0 (burned), as maxRedeem and previewRedeem say, instead of the vault's ZeroAmount", async function () {
          const sys = await loadFixture(oddPrice(d));
          const { pool, usdc, bob } = sys;
          // One unit buys just under 10^6 shares, worth 0 units at the pool's price (rounded down).
          const shares = await depositIntoPool(sys, bob, 1n);
          const held = await usdc.balanceOf(bob);
          expect(shares).to.be.within(1n, VIRTUAL_SHARES - 1n);
          expect(await pool.previewRedeem(shares)).to.equal(0n);
          expect(await pool.maxRedeem(bob)).to.equal(shares);
          const before = await price(sys);
          await expect(pool.connect(bob).redeem(shares, bob, bob))
            .to.emit(pool, "Withdraw")
            .withArgs(bob.address, bob.address, bob.address, 0n, shares);
          expect(await usdc.balanceOf(bob)).to.equal(held);
          expect(await pool.balanceOf(bob)).to.equal(0n);
          // The unit stays with the LPs.
          expect(notLower(await price(sys), before)).to.equal(true);
          // withdraw(0) would burn nothing: refused, as the vault refused it before (row 346).
          await expect(pool.connect(bob).withdraw(0n, bob, bob)).to.be.revertedWithCustomError(
            sys.vault,
            "ZeroAmount",
          );
        });
      });

      describe("a shortfall socialised to the pool", function () {
        it("takes no deposit while the pool's equity is below zero, with shares outstanding or none", async function () {
          for (const fixture of [shortfallWithLp(d), shortfallNoLp(d)]) {
            const sys = await loadFixture(fixture);
            const { pool, bob } = sys;
            expect(await pool.uncoveredDeficit()).to.be.greaterThan(usd(1_000n, d));
            expect(await pool.totalAssets()).to.equal(0n);
            expect([await pool.maxDeposit(bob), await pool.maxMint(bob)]).to.deep.equal([0n, 0n]);
            await mintAndApprove(sys.usdc, bob, await pool.getAddress(), usd(10_000n, d));
            await expect(pool.connect(bob).deposit(usd(10_000n, d), bob))
              .to.be.revertedWithCustomError(pool, "ERC4626ExceededMaxDeposit")
              .withArgs(bob.address, usd(10_000n, d), 0n);
          }
        });

        it("prices a deposit one unit above water at the loss: the victim keeps its 10,000 USD through the take", async function () {
          const sys = await loadFixture(shortfallWithLp(d));
          const { pool, vault, usdc, lp, bob: victim } = sys;
          const held = (await vault.balanceOf(sys.poolAccountId, usdc)) + (await vault.interestReceivable());
          // The fund covers all but held − 1 of the deficit: the pool's equity is exactly one unit.
          await fundInsurance(sys, (await pool.uncoveredDeficit()) - held + 1n);
          expect(await pool.totalAssets()).to.equal(1n);
          const lpShares = await pool.balanceOf(lp);
          const victimDeposit = usd(10_000n, d);
          const shares = await depositIntoPool(sys, victim, victimDeposit);
          expect(shares).to.equal(toShares(victimDeposit, lpShares, 1n));
          // The old shares are worth at most their unit; the victim's its deposit, to the unit.
          expect(await pool.convertToAssets(lpShares)).to.be.at.most(1n);
          expect(await pool.convertToAssets(shares)).to.be.within(victimDeposit - 1n, victimDeposit);
          // The take realises the loss the price already counted.
          const duration = BigInt((await sys.auction.params()).duration);
          await advanceTo(sys, BigInt(await time.latest()) + duration);
          await sys.auction.absorb(sys.aliceAccount);
          expect(await pool.uncoveredDeficit()).to.equal(0n);
          expect(await pool.convertToAssets(shares)).to.equal(victimDeposit);
          expect(await pool.totalAssets()).to.equal(victimDeposit + 1n);
        });
      });
    });
  }
});
