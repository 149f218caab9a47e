/**
 * Review round 164: the repricing line (`needsRepricing`: an option's model volatility below twice the
 * volatility shock, 50% at IM and 30% at MM with the test parameters) crossed by a volatility round mined
 * between a send's estimate and its block, for the sends round 161 left: the keeper's (start, bid,
 * absorb), the SDK's auction actions and the LP exits, whose margin check covers every series the pool
 * holds. And whether the heaviest of them, every option repriced, fits EIP-7825's 2^24.
 * Run: npx hardhat test test/reliability/RepricingLineSends.test.ts
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { ContractTransactionResponse } from "ethers";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { depositLiquidity, startAuction, withdrawLiquidity } from "../../sdk/src";
import { TX_GAS_CAP, paddedGasLimit } from "../../sdk/src/actions/internal/gas";
import {
  QUIET_KEEPER,
  keeperBidder,
  keeperBidPlan,
  keeperSendRecorder,
  startInProcessKeeper,
} from "../shared/keeper";
import {
  DAY,
  deployOptionsSystem,
  fromNow,
  listSeries,
  optionPositionCount,
  tradeOption,
} from "../shared/options";
import { setFeedPrice } from "../shared/oracles";
import { mineAt, refreshFeeds } from "../shared/perps";
import { gasLimitAndUse, onceBeforeSend, walletClient } from "../shared/sdk";
import {
  HOLDING_PERIOD,
  MarginMode,
  openAccount,
  wad,
  whatIf,
  withdrawToInitialMargin,
} from "../shared/system";
import { mintAndApprove } from "../shared/tokens";

const USDC = 10n ** 6n;

/**
 * ETH at volatility 51%, just above the IM repricing line. The pool holds MAX_LIVE_SERIES (32) ETH
 * series: Carol wrote 2 of each of 16 30-day puts (2600…3350) on her IM, Bob bought 1 of each of 16
 * 31-day calls. Alice holds 10,000 USDC of LP shares out of their holding period.
 */
async function poolOfThirtyTwoSeries() {
  const sys = await deployOptionsSystem();
  await setFeedPrice(sys.volFeeds.ETH, "0.51");
  await mintAndApprove(sys.usdc, sys.alice, await sys.pool.getAddress(), 10_000n * USDC);
  await sys.pool.connect(sys.alice).deposit(10_000n * USDC, sys.alice.address);
  const expiry = await fromNow(30n * DAY + HOLDING_PERIOD);
  const puts: bigint[] = [];
  const calls: bigint[] = [];
  for (let i = 0; i < 16; i++)
    puts.push(await listSeries(sys.options, "ETH", String(2600 + 50 * i), expiry, false));
  for (let i = 0; i < 16; i++)
    calls.push(await listSeries(sys.options, "ETH", String(2600 + 50 * i), expiry + DAY, true));
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  for (const s of puts) await tradeOption(sys.options, sys.carol, carol, s, -wad("2"));
  await withdrawToInitialMargin(sys, sys.carol, carol);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  for (const s of calls) await tradeOption(sys.options, sys.bob, bob, s, wad("1"));
  await mineAt(sys, BigInt(await time.latest()) + HOLDING_PERIOD + 1n);
  return { ...sys, book: carol };
}

/**
 * The same, ETH at 2,650: Carol's 16-put book below its maintenance requirement. From the pool's snapshot
 * (and `carolAbsorbable` from this one's), so the 32 series are listed and traded once a file.
 */
async function carolBelowMaintenance() {
  const sys = await loadFixture(poolOfThirtyTwoSeries);
  await setFeedPrice(sys.feeds.ETH, "2650");
  return sys;
}

/** Carol's auction started, and run its duration: absorbable. */
async function carolAbsorbable() {
  const sys = await loadFixture(carolBelowMaintenance);
  await sys.auction.startAuction(sys.book);
  await mineAt(sys, BigInt(await time.latest()) + BigInt((await sys.auction.params()).duration) + 1n);
  return sys;
}

type Sys = Awaited<ReturnType<typeof poolOfThirtyTwoSeries>>;

/**
 * The chain as the in-process keeper sees it, with ETH volatility moved to 49% in a block of its own just
 * before the keeper's first `fn` transaction reaches the node: after the keeper's estimate, before its
 * block. Records that call's last estimate and the gas limit it was sent with.
 */
function roundBeforeKeeperSends(sys: Sys, fn: "startAuction" | "absorb" | "bidAndClose") {
  return keeperSendRecorder(sys.auction.interface, fn, () => setFeedPrice(sys.volFeeds.ETH, "0.49"));
}

/** The receipt of the keeper's send `seen` recorded. */
async function receiptOf(seen: { hash?: string }) {
  expect(seen.hash, "the keeper sent the call").to.not.equal(undefined);
  const receipt = await ethers.provider.getTransactionReceipt(seen.hash!);
  expect(receipt, "mined").to.not.equal(null);
  return receipt!;
}

/** Gas used by a transaction sent with the 2^24 cap as its limit. */
async function gasOf(p: Promise<ContractTransactionResponse>): Promise<bigint> {
  return (await (await p).wait())!.gasUsed;
}

describe("Sends across the repricing line beyond the SDK's trades (review round 164)", function () {
  describe("the keeper, ETH volatility 51% → 49% between its estimate and its block", function () {
    it("starts the auction of a 16-option book with gas for each option's repricing", async function () {
      const sys = await loadFixture(carolBelowMaintenance);
      const { chain, seen } = roundBeforeKeeperSends(sys, "startAuction");
      const keeper = await startInProcessKeeper(sys, QUIET_KEEPER, undefined, undefined, chain);
      await keeper.step();
      const receipt = await receiptOf(seen);
      // Was sent with the padded estimate alone (623,212 → 757,854) and ran out of gas: 2,839,121 needed
      // at 49%, the gas paid and no auction; the next pass started it at the new estimate.
      expect(receipt.status, "mined without a revert").to.equal(1);
      expect(receipt.gasUsed).to.be.greaterThan(paddedGasLimit(seen.estimate!));
      expect((await sys.auction.auctions(sys.book)).active).to.equal(true);
      expect(seen.limit).to.equal(paddedGasLimit(seen.estimate!) + 16n * 300_000n);
    });

    it("absorbs that book once its auction ran, with gas for its repricing", async function () {
      const sys = await loadFixture(carolAbsorbable);
      const { chain, seen } = roundBeforeKeeperSends(sys, "absorb");
      // The backstop takes the slice and is valued with it: its options are padded for too.
      const options = await optionPositionCount(sys, [sys.book, await sys.auction.backstopAccountId()]);
      const keeper = await startInProcessKeeper(sys, QUIET_KEEPER, undefined, undefined, chain);
      await keeper.step();
      const receipt = await receiptOf(seen);
      // Was 2,102,286 estimated, 2,532,743 padded, 6,525,801 needed at 49%: out of gas.
      expect(receipt.status, "mined without a revert").to.equal(1);
      expect(receipt.gasUsed).to.be.greaterThan(paddedGasLimit(seen.estimate!));
      expect((await sys.auction.auctions(sys.book)).active).to.equal(false);
      expect(seen.limit).to.equal(paddedGasLimit(seen.estimate!) + options * 300_000n);
    });

    it("bids on that book with gas for its repricing", async function () {
      const sys = await loadFixture(carolBelowMaintenance);
      await sys.auction.startAuction(sys.book);
      await mineAt(sys, BigInt(await time.latest()) + 600n);
      const { chain, seen } = roundBeforeKeeperSends(sys, "bidAndClose");
      const keeper = await startInProcessKeeper(
        sys,
        ["--min-profit-usd", "0", "--race-jitter-ms", "0"],
        undefined,
        undefined,
        chain,
      );
      await keeper.step();
      const receipt = await receiptOf(seen);
      // Was 3,350,479 estimated, 4,030,574 padded, 7,339,632 needed at 49%: out of gas, the bid lost.
      expect(receipt.status, "mined without a revert").to.equal(1);
      expect(receipt.gasUsed).to.be.greaterThan(paddedGasLimit(seen.estimate!));
      expect(seen.limit).to.equal(paddedGasLimit(seen.estimate!) + 16n * 300_000n);
    });
  });

  describe("the SDK's LP exit and auction start, the same round between estimate and block", function () {
    it("withdraws an LP's 1,000 USDC from a pool holding 32 series, with gas for each series' repricing", async function () {
      const sys = await loadFixture(poolOfThirtyTwoSeries);
      const estimates: bigint[] = [];
      const hook = onceBeforeSend();
      hook.arm(() => setFeedPrice(sys.volFeeds.ETH, "0.49"));
      const client = await walletClient(sys, { estimates, beforeSend: hook.beforeSend });
      const { receipt } = await withdrawLiquidity(client, { assets: 1_000n * USDC });
      const { limit, used } = await gasLimitAndUse(receipt.hash);
      // Was sent with ethers' padded estimate (1.10M → 1.33M) and ran out of gas: the pool's initial-margin
      // check repriced its 32 series, 5.37M.
      expect(used).to.be.greaterThan(paddedGasLimit(estimates.at(-1)!) * 3n);
      expect(used).to.be.lessThan(limit);
      // The initial level alone: 150,000 a series, half the trades' 300,000 (and half the balance a wallet
      // needs to send it).
      expect(limit).to.equal(paddedGasLimit(estimates.at(-1)!) + 32n * 150_000n);
    });

    it("starts an auction on that 16-option book", async function () {
      const sys = await loadFixture(carolBelowMaintenance);
      const estimates: bigint[] = [];
      const hook = onceBeforeSend();
      hook.arm(() => setFeedPrice(sys.volFeeds.ETH, "0.49"));
      const client = await walletClient(sys, { estimates, beforeSend: hook.beforeSend });
      const receipt = await startAuction(client, { accountId: sys.book });
      const { limit, used } = await gasLimitAndUse(receipt.hash);
      expect(used).to.be.greaterThan(paddedGasLimit(estimates.at(-1)!));
      expect(used).to.be.lessThan(limit);
      expect(limit).to.equal(paddedGasLimit(estimates.at(-1)!) + 16n * 300_000n);
      expect((await sys.auction.auctions(sys.book)).active).to.equal(true);
    });

    it("deposits liquidity at the same gas either side of the line (a deposit values the book at its marks)", async function () {
      const sys = await loadFixture(poolOfThirtyTwoSeries);
      await mintAndApprove(sys.usdc, sys.alice, await sys.pool.getAddress(), 2_000n * USDC);
      const client = await walletClient(sys);
      const at51 = await whatIf(
        async () => (await depositLiquidity(client, { amount: 1_000n * USDC })).receipt,
      );
      await setFeedPrice(sys.volFeeds.ETH, "0.49");
      const at49 = (await depositLiquidity(client, { amount: 1_000n * USDC })).receipt;
      // 931,747 and 932,218 gas: ethers' padding is enough.
      expect(at49.gasUsed).to.be.lessThan((at51.gasUsed * 101n) / 100n);
    });
  });

  describe("every option repriced at both levels (ETH volatility 10%), against EIP-7825's 2^24", function () {
    it("keeps an LP's exit from a pool holding 32 series under 6M gas", async function () {
      const sys = await loadFixture(poolOfThirtyTwoSeries);
      const lp = sys.pool.connect(sys.lp);
      const at51 = await whatIf(() => gasOf(lp.withdraw(1_000n * USDC, sys.lp.address, sys.lp.address)));
      await setFeedPrice(sys.volFeeds.ETH, "0.10");
      const at10 = await gasOf(
        lp.withdraw(1_000n * USDC, sys.lp.address, sys.lp.address, { gasLimit: TX_GAS_CAP }),
      );
      console.log(`      LP withdraw, 32 series: ${at51} on their Greeks, ${at10} repriced`);
      // 1,103,262 → 5,186,361: ~127,000 per series, the pool's exit checks the initial level alone.
      expect(at10).to.be.greaterThan(at51 * 4n);
      expect(at10).to.be.lessThan(6_000_000n);
    });

    it("keeps the keeper's bid on a 16-option book under 13M gas", async function () {
      const sys = await loadFixture(carolBelowMaintenance);
      await sys.auction.startAuction(sys.book);
      const keeper = await keeperBidder(sys);
      await mineAt(sys, BigInt(await time.latest()) + 600n);
      const plan = await keeperBidPlan(sys, keeper, sys.book);
      await setFeedPrice(sys.volFeeds.ETH, "0.29");
      await refreshFeeds(sys);
      const used = await gasOf(
        keeper.keeperSigner.sendTransaction({ ...plan.request, gasLimit: TX_GAS_CAP }) as never,
      );
      console.log(`      bidAndClose, 16 options: ${plan.gasUnits} on their Greeks, ${used} repriced`);
      // 3,350,479 → 11,652,484 (69% of 2^24): both levels' grids, before and after the close.
      expect(used).to.be.greaterThan(plan.gasUnits * 3n);
      expect(used).to.be.lessThan(13_000_000n);
    });
  });
});
