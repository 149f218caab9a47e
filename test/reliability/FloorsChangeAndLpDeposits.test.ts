/**
 * What a governance operator's floors change and an LP's deposit must leave alone (review round 76: a
 * liquidity provider and a governance operator from the documentation alone; docs/reliability.md §4,
 * rows 182–183).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { depositLiquidity, getPoolState } from "../../sdk/src";
import { EXIT_DELAY, wad, openAccount, MarginMode } from "../shared/system";
import {
  DAY,
  HOUR,
  DEFAULT_POOL_DELTA_RATIO,
  DEFAULT_POOL_VEGA_RATIO,
  deployOptionsSystem,
  fromNow,
  listSeries,
  tradeOption,
} from "../shared/options";
import { assetId } from "../shared/oracles";
import { advanceTo } from "../shared/perps";
import { expectXMarginError, sdkClient } from "../shared/sdk";

const USDC = 10n ** 6n;
const ETH = assetId("ETH");
const TIMELOCK_DELAY = 2n * DAY; // MIN_TIMELOCK_DELAY, every shipped config's

/** The option system with a two-day TimelockController holding ADMIN, Carol its proposer and executor. */
async function governed() {
  const sys = await deployOptionsSystem();
  const timelock = await ethers.deployContract("TimelockController", [
    TIMELOCK_DELAY,
    [sys.carol.address],
    [sys.carol.address],
    ethers.ZeroAddress,
  ]);
  await sys.manager.grantRole(0n, await timelock.getAddress(), 0); // ADMIN, as deploy/modules/XMargin.ts
  return { ...sys, timelock };
}

/** An LP (Bob, 10,000 USDC in his wallet) of a pool with the deployments' one-day exit delay. */
async function lpFixture() {
  const sys = await deployOptionsSystem();
  await sys.pool.setExitDelay(EXIT_DELAY);
  await sys.usdc.mint(sys.bob.address, 10_000n * USDC);
  return { sys, bob: await sdkClient(sys, sys.bob) };
}

describe("A floors change and an LP deposit", function () {
  describe("OptionMarket.configureUnderlying on a configured underlying (row 182)", function () {
    it("keeps the pool limits the risk role set: a floors change executed after its cut does not undo it", async function () {
      const { options, timelock, carol } = await loadFixture(governed);
      const target = await options.getAddress();
      // The operator schedules ETH's new floors (5 bp, one point), restating the day's limits (1, 1):
      // configureUnderlying takes the four values at once.
      const newFloors = [wad("0.0005"), wad("0.01")] as const;
      const data = options.interface.encodeFunctionData("configureUnderlying", [
        ETH,
        DEFAULT_POOL_VEGA_RATIO,
        DEFAULT_POOL_DELTA_RATIO,
        ...newFloors,
      ]);
      const op = [target, 0n, data, ethers.ZeroHash, ethers.ZeroHash] as const;
      await timelock.connect(carol).schedule(...op, TIMELOCK_DELAY);
      // During the delay the risk role cuts both limits to a quarter (free and at once: an emergency cut).
      await options.setPoolVegaRatio(ETH, wad("0.25"));
      await options.setPoolDeltaRatio(ETH, wad("0.25"));
      await time.increase(TIMELOCK_DELAY);
      await expect(timelock.connect(carol).execute(...op))
        .to.emit(options, "UnderlyingConfigured")
        .withArgs(ETH, wad("0.25"), wad("0.25"), ...newFloors);
      // The floors moved; the limits stayed at the cut (before: back at 1, 4× the risk role's 0.25).
      expect(await options.underlyingLimits(ETH)).to.deep.equal([wad("0.25"), wad("0.25"), ...newFloors]);
      // From there the risk role's own step: at most a doubling (before: 2 at once, 8× its cut).
      await expect(options.setPoolVegaRatio(ETH, wad("0.5") + 1n))
        .to.be.revertedWithCustomError(options, "PoolRatioOutOfBounds")
        .withArgs(ethers.encodeBytes32String("poolVegaRatio"), wad("0.5") + 1n);
      // Once configured, a call changes the floors alone: the limits are the risk role's to step (cuts
      // free), whatever values the call restates (still checked against their bounds).
      await expect(options.configureUnderlying(ETH, wad("5"), wad("0.1"), wad("0.001"), wad("0.02")))
        .to.emit(options, "UnderlyingConfigured")
        .withArgs(ETH, wad("0.25"), wad("0.25"), wad("0.001"), wad("0.02"));
      await expect(options.configureUnderlying(ETH, wad("5") + 1n, wad("1"), ...newFloors))
        .to.be.revertedWithCustomError(options, "PoolRatioOutOfBounds")
        .withArgs(ethers.encodeBytes32String("poolVegaRatio"), wad("5") + 1n);
    });
  });

  describe("depositLiquidity when the pool refuses the deposit (row 183)", function () {
    it("throws the pool's refusal before any approval while a held series is in its last hour", async function () {
      const { sys, bob } = await loadFixture(lpFixture);
      // Alice buys a call expiring in two hours: the pool holds the series.
      const expiry = await fromNow(2n * HOUR);
      const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
      await tradeOption(sys.options, sys.alice, alice, call, wad("1"));
      await advanceTo(sys, expiry - HOUR + 1n);
      await ethers.provider.send("evm_mine", []);
      const pool = await getPoolState(bob, { owner: sys.bob.address });
      expect([pool.settlementPending, pool.maxDeposit]).to.deep.equal([true, 0n]);

      const nonce = await ethers.provider.getTransactionCount(sys.bob.address);
      const refused = await expectXMarginError(
        depositLiquidity(bob, { amount: 1_000n * USDC }),
        "ERC4626ExceededMaxDeposit",
      );
      expect(refused.args).to.deep.equal({ receiver: sys.bob.address, assets: 1_000n * USDC, max: 0n });
      // Nothing was sent (before: an approve was mined), and the pool holds no allowance of Bob's.
      expect(await ethers.provider.getTransactionCount(sys.bob.address)).to.equal(nonce);
      expect(await sys.usdc.allowance(sys.bob.address, await sys.pool.getAddress())).to.equal(0n);
    });

    it("throws ERC20InsufficientBalance before any approval for more than the wallet holds", async function () {
      const { sys, bob } = await loadFixture(lpFixture);
      const nonce = await ethers.provider.getTransactionCount(sys.bob.address);
      const short = await expectXMarginError(
        depositLiquidity(bob, { amount: 10_001n * USDC }),
        "ERC20InsufficientBalance",
      );
      expect(short.args).to.deep.equal({
        sender: sys.bob.address,
        balance: 10_000n * USDC,
        needed: 10_001n * USDC,
      });
      expect(await ethers.provider.getTransactionCount(sys.bob.address)).to.equal(nonce);
      expect(await sys.usdc.allowance(sys.bob.address, await sys.pool.getAddress())).to.equal(0n);
      // A deposit the pool takes still goes through with its own approval.
      const added = await depositLiquidity(bob, { amount: 10_000n * USDC });
      expect(added).to.deep.include({ assets: 10_000n * USDC, approval: "approve" });
    });
  });
});
