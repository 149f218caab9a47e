import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  createAccount,
  deposit,
  depositLiquidity,
  getPoolState,
  isXMarginError,
  modifyPosition,
  withdrawLiquidity,
  requestRedeem,
  claimRedeem,
  cancelRedeemRequest,
} from "../../sdk/src";
import { EXIT_DELAY, HOLDING_PERIOD, deploySystem, wad } from "../shared/system";
import { advanceTo, refreshFeeds } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { sdkClient } from "../shared/sdk";

const USDC = 10n ** 6n;
const POOL_CAPITAL = 1_000_000n * USDC; // the fixture LP's deposit

/** Bob holds 10,000 USDC in his wallet and no shares; the fixture's LP holds all 1,000,000 USDC of them. */
async function fixture() {
  const sys = await deploySystem();
  await sys.usdc.mint(sys.bob.address, 10_000n * USDC);
  return { sys, bob: await sdkClient(sys, sys.bob), lp: await sdkClient(sys, sys.lp) };
}

/** Alice opens an ETH long from a new account with 50,000 USDC: the pool becomes short. */
async function aliceBuysEth(sys: Awaited<ReturnType<typeof fixture>>["sys"], size: bigint): Promise<void> {
  const trader = await sdkClient(sys, sys.alice);
  await sys.usdc.mint(sys.alice.address, 50_000n * USDC);
  const { accountId } = await createAccount(trader, {});
  await deposit(trader, { accountId, token: "USDC", amount: 50_000n * USDC });
  await modifyPosition(trader, { accountId, marketId: sys.markets.ETH, sizeDelta: size });
}

describe("SDK liquidity actions", function () {
  it("reads the pool's share price, limits and an LP's position", async function () {
    const { sys, lp } = await loadFixture(fixture);
    const pool = await getPoolState(lp, { owner: sys.lp.address });
    expect(pool).to.deep.include({
      totalAssets: POOL_CAPITAL,
      backstopValue: 0n, // nothing absorbed yet
      totalSupply: POOL_CAPITAL * 10n ** 6n,
      assetsPerShare: 1n * USDC, // a whole share (12 decimals) is worth 1 USDC at the start
      settlementPending: false,
      holdingPeriod: HOLDING_PERIOD,
      exitDelay: 0n, // the fixture's pool pays LPs out at once
    });
    expect(pool.owner).to.deep.equal({
      address: sys.lp.address,
      shares: POOL_CAPITAL * 10n ** 6n,
      assets: POOL_CAPITAL,
      lockedShares: 0n, // the seed capital is past its holding period
      unlocksAt: 0n,
      maxWithdraw: POOL_CAPITAL,
      maxRedeem: POOL_CAPITAL * 10n ** 6n,
    });
    expect(pool.maxDeposit).to.equal(await sys.pool.maxDeposit(sys.lp.address));
    expect(await sys.pool.decimals()).to.equal(12n);
  });

  it("deposits with an approval it grants itself, and withdraws by assets or by shares after the holding period", async function () {
    const { sys, bob } = await loadFixture(fixture);
    const added = await depositLiquidity(bob, { amount: 10_000n * USDC });
    expect(added).to.deep.include({
      assets: 10_000n * USDC,
      shares: 10_000n * USDC * 10n ** 6n,
      approval: "approve",
    });
    expect(await sys.pool.balanceOf(sys.bob.address)).to.equal(added.shares);
    const unlocksAt = BigInt(await time.latest()) + HOLDING_PERIOD;
    expect((await getPoolState(bob, { owner: sys.bob.address })).owner).to.deep.include({
      lockedShares: added.shares,
      unlocksAt,
      maxWithdraw: 0n,
      maxRedeem: 0n,
    });
    await withdrawLiquidity(bob, { assets: 4_000n * USDC }).then(
      () => expect.fail("expected SharesLocked"),
      (e: unknown) => {
        expect(isXMarginError(e, "SharesLocked") && e.args.unlocksAt).to.equal(unlocksAt);
        expect((e as Error).message).to.include(new Date(Number(unlocksAt) * 1000).toISOString());
      },
    );
    await time.increaseTo(unlocksAt);
    await refreshFeeds(sys);

    const out = await withdrawLiquidity(bob, { assets: 4_000n * USDC });
    expect(out).to.deep.include({ assets: 4_000n * USDC, shares: 4_000n * USDC * 10n ** 6n });
    const rest = (await getPoolState(bob, { owner: sys.bob.address })).owner!.maxRedeem;
    const redeemed = await withdrawLiquidity(bob, { shares: rest });
    expect(redeemed.assets).to.equal(6_000n * USDC);
    expect(await sys.usdc.balanceOf(sys.bob.address)).to.equal(10_000n * USDC);
  });

  it("exits through a redeem request where the pool has an exit delay: request, claim at the lower share price, cancel", async function () {
    const { sys, lp } = await loadFixture(fixture);
    await sys.pool.setExitDelay(EXIT_DELAY);
    await aliceBuysEth(sys, wad("10"));
    await withdrawLiquidity(lp, { assets: 1_000n * USDC }).then(
      () => expect.fail("expected RedeemRequestRequired"),
      (e: unknown) => {
        expect(isXMarginError(e, "RedeemRequestRequired") && e.args.exitDelay).to.equal(EXIT_DELAY);
        expect((e as Error).message).to.include("requestRedeem, then claimRedeem");
      },
    );
    const shares = await sys.pool.convertToShares(100_000n * USDC);
    const requested = await requestRedeem(lp, { shares });
    expect(requested.shares).to.equal(shares);
    expect(requested.claimableAt).to.equal(BigInt(await time.latest()) + EXIT_DELAY);
    await requestRedeem(lp, { shares: 1n }).then(
      () => expect.fail("expected RedeemRequestPending"),
      (e: unknown) => expect(isXMarginError(e) && e.name).to.equal("RedeemRequestPending"),
    );
    await claimRedeem(lp, {}).then(
      () => expect.fail("expected NotClaimable"),
      (e: unknown) =>
        expect(isXMarginError(e, "NotClaimable") && e.args.claimableAt).to.equal(requested.claimableAt),
    );
    // Alice's long gains 1,000 USD, so the pool's share price falls below the request's.
    await setFeedPrice(sys.feeds.ETH, "3100");
    await advanceTo(sys, requested.claimableAt);
    await ethers.provider.send("evm_mine", []);
    const { redeemRequest } = (await getPoolState(lp, { owner: sys.lp.address })).owner!;
    expect(redeemRequest).to.deep.include({
      shares,
      requestedAssets: requested.assets,
      claimableAt: requested.claimableAt,
      claimableUntil: requested.claimableAt + 7_200n,
    });
    expect(redeemRequest!.claimableAssets).to.equal(await sys.pool.convertToAssets(shares));
    expect(redeemRequest!.claimableAssets).to.be.lessThan(requested.assets);
    // Half now, at today's price; the rest taken back once the window has passed.
    const half = await claimRedeem(lp, { shares: shares / 2n });
    expect(half.shares).to.equal(shares / 2n);
    expect(half.assets).to.be.lessThan(requested.assets / 2n);
    await advanceTo(sys, requested.claimableAt + 7_201n);
    const cancelled = await cancelRedeemRequest(lp);
    // Below the request's price: every share comes back, none burned.
    expect(cancelled).to.deep.include({ shares: shares - shares / 2n, burned: 0n });
    expect((await getPoolState(lp, { owner: sys.lp.address })).owner!.redeemRequest).to.equal(undefined);
  });

  it("bounds a deposit by the previewed shares: past an explicit minShares it throws SlippageExceeded", async function () {
    const { sys, bob } = await loadFixture(fixture);
    await aliceBuysEth(sys, wad("10"));
    const amount = 1_000n * USDC;
    const quoted = await sys.pool.previewDeposit(amount);
    await setFeedPrice(sys.feeds.ETH, "2900"); // the pool gains 1,000: a share costs ~0.1% more
    await depositLiquidity(bob, { amount, minShares: quoted }).then(
      () => expect.fail("expected SlippageExceeded"),
      (e: unknown) => expect(isXMarginError(e, "SlippageExceeded") && e.args.limit).to.equal(quoted),
    );
    await depositLiquidity(bob, { amount, slippageBps: 10_001 }).then(
      () => expect.fail("expected a RangeError"),
      (e: unknown) => expect(e).to.be.instanceOf(RangeError),
    );
    // By default the limit is the preview at sending less 0.5%.
    const added = await depositLiquidity(bob, { amount });
    expect(added.shares).to.be.lessThan(quoted);
    expect(added.assets).to.equal(amount);
  });

  it("prices the shares at the pool's equity: a trader's loss raises them", async function () {
    const { sys, bob } = await loadFixture(fixture);
    await aliceBuysEth(sys, wad("10"));
    await setFeedPrice(sys.feeds.ETH, "2900"); // the pool is short the 10 ETH: +1,000 USD
    const pool = await getPoolState(bob);
    expect(pool.totalAssets).to.be.greaterThan(POOL_CAPITAL + 1_000n * USDC);
    expect(pool.owner).to.equal(undefined);
  });

  it("throws the oracle's error while a feed under the pool's book is stale", async function () {
    const { sys, bob } = await loadFixture(fixture);
    await aliceBuysEth(sys, wad("1"));
    await time.increase(3_700);
    await getPoolState(bob).then(
      () => expect.fail("expected StalePrice"),
      (e: unknown) => expect(isXMarginError(e) && e.name).to.equal("StalePrice"),
    );
    await depositLiquidity(bob, { amount: 1_000n * USDC }).then(
      () => expect.fail("expected StalePrice"),
      (e: unknown) => expect(isXMarginError(e) && e.name).to.equal("StalePrice"),
    );
    await refreshFeeds(sys);
    expect((await getPoolState(bob)).maxDeposit).to.be.greaterThan(0n);
  });
});
