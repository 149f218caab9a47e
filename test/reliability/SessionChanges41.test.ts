/**
 * Review round 135: the session's keeper and pool changes (rounds 132 and 134). A settled series is done
 * only when its open interest reads 0; `updateDeficit` rereads the account before it is sent; the pool
 * burns shares worth less than a quote unit for 0. What each can cost, and what they must not open.
 */
import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { EXIT_DELAY, MarginMode, deploySystem, openAccount, wad } from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "../shared/options";
import { setFeedPrice } from "../shared/oracles";
import { mineAt, refreshFeeds } from "../shared/perps";
import {
  callDataOf,
  expiredCallWritten,
  onRequest,
  startInProcessKeeper,
  stillOpen,
  QUIET_KEEPER,
} from "../shared/keeper";

const USDC = 10n ** 6n;

/**
 * Three writers of an expired ETH-3000 call, ETH at 3,100; the keeper scans from the block after the
 * first writer's trade (`--start-block`), so it knows the second and third writers only.
 */
async function expiredCallWithAnUnknownHolder() {
  const { tradeBlocks, ...written } = await expiredCallWritten(3);
  return { ...written, startBlock: tradeBlocks[0] + 1 };
}

describe("Keeper: a settled series whose open interest no known holder accounts for", function () {
  it("reads only the series each pass (not every known holder again) once every known holder read closed", async function () {
    // Open interest the scan never saw (a holder before `--start-block`, or in a block a reorg replaced
    // below the scan's cursor) never reads 0, so the series is never done. The cost before the fix:
    // every pass read the series twice and every known holder's position again (2 + N calls, forever).
    const { sys, call, writers, startBlock } = await expiredCallWithAnUnknownHolder();
    const keeper = await startInProcessKeeper(sys, [...QUIET_KEEPER, "--start-block", String(startBlock)]);
    for (let pass = 0; pass < 4; pass++) {
      await refreshFeeds(sys);
      await keeper.step();
    }
    expect(await stillOpen(sys, call, writers)).to.deep.equal([writers[0]]);

    const series = sys.options.interface.getFunction("series").selector;
    const positionSize = sys.options.interface.getFunction("positionSize").selector;
    const perPass: { series: number; positionSize: number }[] = [];
    await onRequest(
      "eth_call",
      (params) => {
        const data = callDataOf(params);
        const counts = perPass[perPass.length - 1];
        if (data.startsWith(series)) counts.series += 1;
        else if (data.startsWith(positionSize)) counts.positionSize += 1;
      },
      async () => {
        for (let pass = 0; pass < 3; pass++) {
          perPass.push({ series: 0, positionSize: 0 });
          await refreshFeeds(sys);
          await keeper.step();
        }
      },
    );

    // One read per step that reads series (the step before the health check, and the payouts step).
    expect(perPass).to.deep.equal(Array(3).fill({ series: 2, positionSize: 0 }));
    const warned = keeper.lines.filter((l) => l.msg.startsWith("open interest no known holder accounts for"));
    expect(warned.map((l) => l.fields.seriesId)).to.deep.equal([call.toString()]);
  });
});

describe("Keeper: the payout race check's baseline read before the holders", function () {
  it("skips a batch for one pass when a larger holder outside it settles itself during the holder reads, and pays it the next", async function () {
    // Writers A and B (0.01 each) and C (0.1). C settles its own position while the keeper reads C's:
    // C reads closed, the batch is A and B (short 0.02), and open interest fell by 0.1 since the
    // baseline, read before the holders: row 128's check reads it as a rival's payout. Read after the
    // holders (before round 132), C's settlement was in the baseline and the batch went out.
    const sys = await deployOptionsSystem();
    const expiry = await fromNow(DAY);
    const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
    const writers: bigint[] = [];
    for (const [size, usdc] of [
      ["0.01", 1_000n],
      ["0.01", 1_000n],
      ["0.1", 5_000n],
    ] as const) {
      const account = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, usdc * USDC]]);
      await tradeOption(sys.options, sys.carol, account, call, -wad(size));
      writers.push(account);
    }
    await mineAt(sys, expiry);
    await setFeedPrice(sys.feeds.ETH, "3100");
    const keeper = await startInProcessKeeper(sys, QUIET_KEEPER);
    const positionSize = sys.options.interface.getFunction("positionSize").selector;
    let reads = 0;
    await onRequest(
      "eth_call",
      async (params) => {
        if (!callDataOf(params).startsWith(positionSize) || ++reads !== 3) return;
        await sys.options.connect(sys.bob).settleAccount(writers[2], call);
      },
      () => keeper.step(),
    );
    expect(reads).to.be.at.least(3);
    expect(await stillOpen(sys, call, writers)).to.deep.equal(writers.slice(0, 2));
    const skipped = keeper.lines.filter((l) => l.msg === "series being paid out by another; not sending");
    expect(skipped).to.have.length(1);

    await refreshFeeds(sys);
    await keeper.step();

    expect(await stillOpen(sys, call, writers)).to.deep.equal([]);
  });
});

/** The system without a holding period; Bob deposits 1 unit at an odd price: shares worth 0 units. */
async function dustHolder() {
  const sys = await deploySystem({ holdingPeriod: 0n });
  await mintAndApprove(sys.usdc, sys.deployer, await sys.vault.getAddress(), 1_234_567n);
  await sys.vault.connect(sys.deployer).deposit(sys.poolAccountId, sys.usdc, 1_234_567n);
  await mintAndApprove(sys.usdc, sys.bob, await sys.pool.getAddress(), 1n);
  await sys.pool.connect(sys.bob).deposit(1n, sys.bob);
  return { ...sys, dust: await sys.pool.balanceOf(sys.bob) };
}

describe("LiquidityPool: shares worth less than a unit, burned for 0", function () {
  it("refuses an exit that burns no shares, for any owner, with the vault's ZeroAmount: no Withdraw in another's name", async function () {
    // OZ's `_spendAllowance` of 0 shares passes with an allowance of 0: with dust burned for 0 (round 134),
    // withdraw(0) and redeem(0) went through for anyone, emitting Withdraw(carol, carol, bob, 0, 0).
    const { pool, vault, usdc, bob, carol, dust } = await loadFixture(dustHolder);
    expect(await pool.allowance(bob, carol)).to.equal(0n);
    const [shares, held] = [await pool.totalSupply(), await usdc.balanceOf(carol)];
    for (const exit of [
      () => pool.connect(carol).withdraw(0n, carol, bob),
      () => pool.connect(carol).redeem(0n, carol, bob),
    ])
      await expect(exit()).to.be.revertedWithCustomError(vault, "ZeroAmount");
    await expect(pool.connect(bob).redeem(0n, bob, bob)).to.be.revertedWithCustomError(vault, "ZeroAmount");
    expect([await pool.totalSupply(), await usdc.balanceOf(carol), await pool.balanceOf(bob)]).to.deep.equal([
      shares,
      held,
      dust,
    ]);
  });

  it("refuses another's dust to an operator without allowance, and burns it for 0 with one", async function () {
    const { pool, bob, carol, dust } = await loadFixture(dustHolder);
    expect(dust).to.be.within(1n, 10n ** 6n - 1n);
    expect(await pool.previewRedeem(dust)).to.equal(0n);
    await expect(pool.connect(carol).redeem(dust, carol, bob))
      .to.be.revertedWithCustomError(pool, "ERC20InsufficientAllowance")
      .withArgs(carol.address, 0n, dust);
    await pool.connect(bob).approve(carol, dust);
    await expect(pool.connect(carol).redeem(dust, carol, bob))
      .to.emit(pool, "Withdraw")
      .withArgs(carol.address, carol.address, bob.address, 0n, dust);
    expect([await pool.balanceOf(bob), await pool.allowance(bob, carol)]).to.deep.equal([0n, 0n]);
  });

  it("still lists no dust exit while the vault is paused (max* 0, redeem refused)", async function () {
    const sys = await loadFixture(dustHolder);
    const { pool, bob, dust } = sys;
    await sys.vault.pause();
    expect([await pool.maxRedeem(bob), await pool.maxWithdraw(bob)]).to.deep.equal([0n, 0n]);
    await expect(pool.connect(bob).redeem(dust, bob, bob)).to.be.revertedWithCustomError(
      pool,
      "ERC4626ExceededMaxRedeem",
    );
    expect(await pool.balanceOf(bob)).to.equal(dust);
  });

  it("keeps the request path refusing dust: requestRedeem of 0-worth shares reverts, and withdraw(0) needs a request", async function () {
    const sys = await loadFixture(dustHolder);
    const { pool, bob, dust } = sys;
    await pool.setExitDelay(EXIT_DELAY);
    await expect(pool.connect(bob).requestRedeem(dust))
      .to.be.revertedWithCustomError(pool, "InvalidRedeemShares")
      .withArgs(dust, 0n);
    await expect(pool.connect(bob).withdraw(0n, bob, bob)).to.be.revertedWithCustomError(
      pool,
      "RedeemRequestRequired",
    );
    await expect(pool.connect(bob).redeem(dust, bob, bob)).to.be.revertedWithCustomError(
      pool,
      "RedeemRequestRequired",
    );
  });
});
