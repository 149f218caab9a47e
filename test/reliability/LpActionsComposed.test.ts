import { expect } from "chai";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { ContractTransactionReceipt } from "ethers";
import {
  EXIT_DELAY,
  MarginMode,
  deploySystem,
  deploySystemWithoutHoldingPeriod,
  gasOfRevert,
  fundInsurance,
  openAccount,
  type System,
} from "../shared/system";
import { mintAndApprove } from "../shared/tokens";
import { lockedLpWithStaleFeed, trade } from "../shared/perps";
import { expectXMarginError, sdkClient } from "../shared/sdk";
import { withdrawLiquidity } from "../../sdk/src";
import type { LpComposer } from "../../typechain-types";
import { LP_OP, composerLogs, deployLpComposer, lpOp } from "../shared/lpComposer";

/**
 * LP actions value the pool's and the backstop's positions once (`LiquidityPool._valueBook`, transient
 * storage; review round 84). In one transaction, LP actions composed with trades, same-block oracle
 * rounds and caught reverts each use the share price read freshly at that point: nothing cached
 * survives an action. And the refusals that need no price come before the valuation.
 */
const USDC = 10n ** 6n;
const WAD = 10n ** 18n;

async function world(sys: System) {
  await fundInsurance(sys, 20_000n * USDC);
  await mintAndApprove(sys.usdc, sys.lp, await sys.pool.getAddress(), 10n ** 15n);
  await sys.pool.connect(sys.lp).deposit(2_000_000n * USDC, sys.lp.address);
  const composer = await deployLpComposer(sys);
  // A trader on the other side too, so the backstop and the pool both carry something.
  const aliceId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 300_000n * USDC]]);
  await trade(sys.perps, sys.alice, aliceId, sys.markets.BTC, 2n * WAD);
  return { sys, composer };
}

const noHold = async () => world(await deploySystemWithoutHoldingPeriod());
const withHold = async () => world(await deploySystem());

function steps(composer: LpComposer, receipt: ContractTransactionReceipt | null) {
  return composerLogs(composer, receipt, "Step").map((p) => ({
    index: p.args.index as bigint,
    kind: Number(p.args.kind),
    expected: p.args.expected as bigint,
    actual: p.args.actual as bigint,
    poolView: p.args.poolView as bigint,
    fresh: p.args.fresh as bigint,
  }));
}

function caught(composer: LpComposer, receipt: ContractTransactionReceipt | null): string[] {
  return composerLogs(composer, receipt, "Caught").map((p) => p.args.reason as string);
}

/** Every LP action returned its fresh preview, and every totalAssets read between actions was fresh. */
function expectFresh(s: ReturnType<typeof steps>) {
  for (const step of s) {
    expect(step.poolView, `step ${step.index}: totalAssets read between actions`).to.equal(step.fresh);
    expect(step.actual, `step ${step.index} (kind ${step.kind}): the action's result`).to.equal(
      step.expected,
    );
  }
}

describe("LP actions composed with trades in one transaction", function () {
  it("deposit → trade → same-block oracle round → withdraw → redeem: each at the fresh share price", async function () {
    const { sys, composer } = await loadFixture(noHold);
    const eth = await sys.feeds.ETH.getAddress();
    const ops = [
      lpOp(LP_OP.deposit, { amount: 500_000n * USDC }),
      lpOp(LP_OP.read),
      lpOp(LP_OP.trade, { marketId: sys.markets.ETH, size: 100n * WAD }),
      lpOp(LP_OP.read),
      lpOp(LP_OP.feed, { feed: eth, size: 3_300n * 10n ** 8n }),
      lpOp(LP_OP.read),
      lpOp(LP_OP.withdraw, { amount: 100_000n * USDC }),
      lpOp(LP_OP.trade, { marketId: sys.markets.ETH, size: -100n * WAD }),
      lpOp(LP_OP.feed, { feed: eth, size: 2_900n * 10n ** 8n }),
      lpOp(LP_OP.redeem, { amount: 10n ** 9n * 10_000n }),
      lpOp(LP_OP.read),
    ];
    const receipt = await (await composer.run(ops)).wait();
    const s = steps(composer, receipt);
    expect(s.map((x) => x.kind)).to.deep.equal([0, 4, 4, 4, 2, 3, 4]);
    expectFresh(s);
    // The book did move between the actions: the share price each one used differs.
    expect(new Set(s.map((x) => x.fresh)).size).to.be.greaterThan(3);
  });

  it("trade → deposit → trade back → withdraw (and mint) in one transaction", async function () {
    const { sys, composer } = await loadFixture(noHold);
    const ops = [
      lpOp(LP_OP.trade, { marketId: sys.markets.BTC, size: -3n * WAD }),
      lpOp(LP_OP.deposit, { amount: 250_000n * USDC }),
      lpOp(LP_OP.read),
      lpOp(LP_OP.trade, { marketId: sys.markets.BTC, size: 3n * WAD }),
      lpOp(LP_OP.feed, { feed: await sys.feeds.BTC.getAddress(), size: 61_000n * 10n ** 8n }),
      lpOp(LP_OP.read),
      lpOp(LP_OP.mint, { amount: 10n ** 6n * 1_000n * USDC }),
      lpOp(LP_OP.trade, { marketId: sys.markets.ETH, size: 50n * WAD }),
      lpOp(LP_OP.withdraw, { amount: 200_000n * USDC }),
      lpOp(LP_OP.read),
    ];
    const s = steps(composer, await (await composer.run(ops)).wait());
    expect(s.map((x) => x.kind)).to.deep.equal([0, 4, 4, 1, 2, 4]);
    expectFresh(s);
  });

  it("a withdraw/redeem reverting inside the caller's try/catch leaves nothing cached: the next trade and LP action are priced fresh", async function () {
    const { sys, composer } = await loadFixture(noHold);
    const eth = await sys.feeds.ETH.getAddress();
    const ops = [
      lpOp(LP_OP.deposit, { amount: 300_000n * USDC }),
      // Beyond the composer's balance: the book is valued (cached), then ERC-4626 reverts.
      lpOp(LP_OP.tryWithdraw, { amount: 10n ** 12n * USDC }),
      lpOp(LP_OP.trade, { marketId: sys.markets.ETH, size: 80n * WAD }),
      lpOp(LP_OP.read),
      lpOp(LP_OP.tryRedeem, { amount: 10n ** 30n }),
      lpOp(LP_OP.feed, { feed: eth, size: 3_150n * 10n ** 8n }),
      lpOp(LP_OP.read),
      lpOp(LP_OP.withdraw, { amount: 50_000n * USDC }),
      lpOp(LP_OP.trade, { marketId: sys.markets.ETH, size: -80n * WAD }),
      lpOp(LP_OP.read),
      lpOp(LP_OP.redeem, { amount: 10n ** 6n * 20_000n * USDC }),
    ];
    const receipt = await (await composer.run(ops)).wait();
    const reasons = caught(composer, receipt);
    expect(reasons).to.have.length(2);
    const selectors = reasons.map((r) => r.slice(0, 10));
    expect(selectors[0]).to.equal(sys.pool.interface.getError("ERC4626ExceededMaxWithdraw")!.selector);
    // Beyond the owner's balance ERC-4626's own error, not a lock with no unlock time (row 209).
    expect(selectors[1]).to.equal(sys.pool.interface.getError("ERC4626ExceededMaxRedeem")!.selector);
    const s = steps(composer, receipt);
    expect(s.map((x) => x.kind)).to.deep.equal([0, 4, 4, 2, 4, 3]);
    expectFresh(s);
    // The trade after the caught revert moved the book: a stale cache would have shown.
    expect(s[1].fresh).to.not.equal(s[0].fresh);
  });

  it("with the holding period on: a locked deposit then a trade then a caught SharesLocked withdraw, the price stays fresh", async function () {
    const { sys, composer } = await loadFixture(withHold);
    const ops = [
      lpOp(LP_OP.deposit, { amount: 100_000n * USDC }),
      lpOp(LP_OP.tryWithdraw, { amount: 10_000n * USDC }),
      lpOp(LP_OP.trade, { marketId: sys.markets.ETH, size: 60n * WAD }),
      lpOp(LP_OP.read),
      lpOp(LP_OP.deposit, { amount: 100_000n * USDC }),
      lpOp(LP_OP.read),
    ];
    const receipt = await (await composer.run(ops)).wait();
    const reasons = caught(composer, receipt);
    expect(reasons[0].slice(0, 10)).to.equal(sys.pool.interface.getError("SharesLocked")!.selector);
    const s = steps(composer, receipt);
    expectFresh(s);
  });
});

const staleBtc = () => lockedLpWithStaleFeed("BTC");

describe("LP exits' refusals that need no price come before the book's valuation (row 207)", function () {
  it("a deposit and an unlocked withdrawal need the price: they name the feed (StalePrice)", async function () {
    const sys = await loadFixture(staleBtc);
    expect(await sys.pool.unlockedShares(sys.lp)).to.be.greaterThan(0n);
    await expect(sys.pool.connect(sys.bob).deposit(1_000n * USDC, sys.bob)).to.be.revertedWithCustomError(
      sys.router,
      "StalePrice",
    );
    await expect(
      sys.pool.connect(sys.lp).withdraw(1_000n * USDC, sys.lp, sys.lp),
    ).to.be.revertedWithCustomError(sys.router, "StalePrice");
  });

  it("with the deployments' exit delay, withdraw and redeem name RedeemRequestRequired (the way out), not the feed's error", async function () {
    const sys = await loadFixture(staleBtc);
    await sys.pool.setExitDelay(EXIT_DELAY);
    await expect(sys.pool.connect(sys.lp).withdraw(1_000n * USDC, sys.lp, sys.lp))
      .to.be.revertedWithCustomError(sys.pool, "RedeemRequestRequired")
      .withArgs(EXIT_DELAY);
    await expect(sys.pool.connect(sys.lp).redeem(1_000n, sys.lp, sys.lp))
      .to.be.revertedWithCustomError(sys.pool, "RedeemRequestRequired")
      .withArgs(EXIT_DELAY);
  });

  it("redeem of shares still in their holding period names SharesLocked (the lock needs no price)", async function () {
    const sys = await loadFixture(staleBtc);
    const [locked] = await sys.pool.sharesLock(sys.bob);
    expect(locked).to.be.greaterThan(0n);
    await expect(sys.pool.connect(sys.bob).redeem(locked, sys.bob, sys.bob)).to.be.revertedWithCustomError(
      sys.pool,
      "SharesLocked",
    );
  });

  it("while the vault is paused, withdraw and redeem name ERC4626ExceededMax* (max* read 0 without a price)", async function () {
    const sys = await loadFixture(staleBtc);
    await sys.vault.pause();
    await expect(
      sys.pool.connect(sys.lp).withdraw(1_000n * USDC, sys.lp, sys.lp),
    ).to.be.revertedWithCustomError(sys.pool, "ERC4626ExceededMaxWithdraw");
    await expect(sys.pool.connect(sys.lp).redeem(1_000n, sys.lp, sys.lp)).to.be.revertedWithCustomError(
      sys.pool,
      "ERC4626ExceededMaxRedeem",
    );
  });
});

describe("the refusal gas of withdraw and redeem under the deployments' exit delay (row 207)", function () {
  it("RedeemRequestRequired comes before any valuation of the book (before the fix the whole book was valued first)", async function () {
    const { sys } = await loadFixture(noHold);
    await sys.pool.setExitDelay(EXIT_DELAY);
    const withdrawGas = await gasOfRevert(() =>
      sys.pool.connect(sys.lp).withdraw(1_000n * USDC, sys.lp, sys.lp, { gasLimit: 3_000_000 }),
    );
    const redeemGas = await gasOfRevert(() =>
      sys.pool.connect(sys.lp).redeem(1_000n, sys.lp, sys.lp, { gasLimit: 3_000_000 }),
    );
    console.log(`      refusal gas: withdraw ${withdrawGas}, redeem ${redeemGas}`);
    expect(withdrawGas).to.be.lt(40_000n);
    expect(redeemGas).to.be.lt(40_000n);
  });
});

describe("the SDK's LP exit with a feed stale under the deployments' exit delay (row 208)", function () {
  it("withdrawLiquidity names RedeemRequestRequired, the chain's refusal, with or without a limit (its preview read the feed first and threw StalePrice)", async function () {
    const sys = await loadFixture(staleBtc);
    await sys.pool.setExitDelay(EXIT_DELAY);
    const lp = await sdkClient(sys, sys.lp);
    for (const exit of [
      { assets: 1_000n * USDC },
      { shares: 1_000n },
      { assets: 1_000n * USDC, limit: 2n ** 200n },
    ])
      await expectXMarginError(withdrawLiquidity(lp, exit), "RedeemRequestRequired");
  });
});
