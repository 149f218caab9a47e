/**
 * The hostile-input catalogue (issue 8): one row per hostile input, the call it is sent to and the
 * custom error it must get. test/reliability/HostileInputs.test.ts runs every row (and asserts the
 * state is unchanged after the rejected call); the same rows generate the catalogue in
 * docs/reliability.md, so document and test cannot drift.
 *
 * Unauthorised callers are not listed here by hand: `privilegedFunctions` enumerates every state-
 * changing function of every protocol contract from its ABI and the suite calls each one as an outsider.
 */
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { BaseContract, ContractTransactionResponse, ParamType } from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { OptionMarket } from "../../typechain-types";
import { MarginMode, deploySystem, fundInsurance, openAccount, wad, type System } from "../shared/system";
import { deployOptions, listSeries } from "../shared/options";
import { assetId, configureSequencer } from "../shared/oracles";
import { listPerpMarket, marketParams, refreshFeeds } from "../shared/perps";
import { mintAndApprove } from "../shared/tokens";

const USDC = 10n ** 6n;
const NO_DEADLINE = 2n ** 64n;
const MAX = ethers.MaxUint256;

export type Kind =
  | "zero / max amounts"
  | "unlisted tokens and markets"
  | "expired series"
  | "bad prices"
  | "sequencer"
  | "odd tokens"
  | "paused protocol"
  | "frozen accounts"
  | "account and counterparty misuse"
  | "limits and deadlines";

export interface HostileWorld extends System {
  options: OptionMarket;
  /** Alice's CROSS account: 20,000 USDC, 1 WETH, 0.5 WBTC, long 2 ETH-PERP and 1 ETH call. */
  aliceId: bigint;
  /** Bob's ISOLATED account: 5,000 USDC, long 1 ETH-PERP. */
  bobId: bigint;
  /** The keeper's bidder account: 1,000,000 USDC, no positions. */
  keeperId: bigint;
  /** Carol's CROSS account: 5,000 USDC behind a 10 ETH long, liquidatable (and solvent) at ETH 2,600. */
  carolId: bigint;
  outsider: HardhatEthersSigner;
  /** A live ETH call series (2 days) and a series expiring in two hours. */
  callId: bigint;
  shortDatedId: bigint;
}

export async function hostileWorld(): Promise<HostileWorld> {
  const sys = await deploySystem();
  const options = await deployOptions(sys);
  const outsider = (await ethers.getSigners())[15];
  await fundInsurance(sys, 10_000n * USDC);
  const aliceId = await openAccount(sys, sys.alice, MarginMode.CROSS, [
    [sys.usdc, 20_000n * USDC],
    [sys.weth, wad("1")],
    [sys.wbtc, 50_000_000n],
  ]);
  const bobId = await openAccount(sys, sys.bob, MarginMode.ISOLATED, [[sys.usdc, 5_000n * USDC]]);
  const keeperId = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  const carolId = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  const now = BigInt(await time.latest());
  const callId = await listSeries(options, "ETH", "3000", now + 2n * 86_400n, true);
  const shortDatedId = await listSeries(options, "ETH", "3000", now + 7_200n, false);
  await sys.perps.connect(sys.alice).trade(aliceId, sys.markets.ETH, wad("2"), MAX, NO_DEADLINE);
  await options.connect(sys.alice).trade(aliceId, callId, wad("1"), MAX, NO_DEADLINE);
  await options.connect(sys.alice).trade(aliceId, shortDatedId, wad("1"), MAX, NO_DEADLINE);
  await sys.perps.connect(sys.bob).trade(bobId, sys.markets.ETH, wad("1"), MAX, NO_DEADLINE);
  await sys.perps.connect(sys.carol).trade(carolId, sys.markets.ETH, wad("10"), MAX, NO_DEADLINE);
  return { ...sys, options, aliceId, bobId, keeperId, carolId, outsider, callId, shortDatedId };
}

export interface Row {
  kind: Kind;
  /** The hostile input, as the catalogue states it. */
  input: string;
  /** The call it is sent to, as the catalogue states it. */
  call: string;
  /** The custom error expected (its name). */
  error: string;
  /** Puts the world in the row's situation (a broken feed, a pause, a running auction...). */
  arrange?: (w: HostileWorld) => Promise<void>;
  /** Sends the hostile call. Returns the revert error of an inner call for reentrancy rows. */
  act: (w: HostileWorld) => Promise<ContractTransactionResponse | { innerRevert: string }>;
}

/** An hour on, every feed but ETH's price has reported again. */
async function staleEthFeed(w: HostileWorld): Promise<void> {
  await time.increase(3_700);
  for (const feed of [w.feeds.USDC, w.feeds.BTC, w.volFeeds.ETH, w.volFeeds.BTC]) {
    await (await feed.updateAnswer(await feed.latestAnswer())).wait();
  }
}

/** Market parameters with `skewScale` and an open-interest cap at it. */
const skewScaleOf = (skewScale: bigint) => marketParams({ skewScale, maxOpenInterest: skewScale });

const trade = (w: HostileWorld, signer: HardhatEthersSigner, id: bigint, market: bigint, size: bigint) =>
  w.perps.connect(signer).trade(id, market, size, size > 0n ? MAX : 0n, NO_DEADLINE);

async function setEth(w: HostileWorld, answer: bigint): Promise<void> {
  await (await w.feeds.ETH.updateAnswer(answer)).wait();
}

/**
 * ETH falls to 2,600 and Carol's auction starts: her 10 ETH long bought at ~3,024 has lost ~4,240 of
 * her 5,000 USDC, below her maintenance requirement (~1,900) but solvent.
 */
async function freezeCarol(w: HostileWorld): Promise<void> {
  await setEth(w, 2_600n * 10n ** 8n);
  await (await w.auction.connect(w.keeper).startAuction(w.carolId)).wait();
}

/** Alice holds 1 WETH more, approved to the vault. */
async function mintWethToAlice(w: HostileWorld): Promise<void> {
  await (await w.weth.mint(w.alice.address, wad("1"))).wait();
  await (await w.weth.connect(w.alice).approve(w.vault, MAX)).wait();
}

/** Replaces ETH's primary feed by a ConfigurableAggregatorMock answering the given round. */
async function configurableEth(
  w: HostileWorld,
  round: (now: bigint) => [bigint, bigint, bigint, bigint, bigint],
): Promise<void> {
  const mock = await ethers.deployContract("ConfigurableAggregatorMock", [8]);
  await (await mock.setRound(...round(BigInt(await time.latest())))).wait();
  await (
    await w.router.configureAsset(assetId("ETH"), {
      primary: await mock.getAddress(),
      primaryHeartbeat: 3600,
      secondaries: [],
      secondaryHeartbeats: [],
      minPrice: wad("3"),
      maxPrice: wad("3000000"),
      maxDeviation: 0n,
    })
  ).wait();
}

async function listOdd(w: HostileWorld, contract: string, decimals: number) {
  const token = await ethers.deployContract(contract, ["Odd", "ODD", decimals]);
  await (
    await w.vault.listCollateral(token, assetId("USDC"), wad("0.9"), wad("0.95"), 10n ** 30n, false)
  ).wait();
  await (await token.getFunction("mint")(w.alice.address, 10n ** 24n)).wait();
  await (await token.connect(w.alice).getFunction("approve")(await w.vault.getAddress(), MAX)).wait();
  return token;
}

export const ROWS: Row[] = [
  // ---------------------------------------------------------------- zero / max amounts
  {
    kind: "zero / max amounts",
    input: "amount 0",
    call: "CollateralVault.deposit",
    error: "ZeroAmount",
    act: (w) => w.vault.connect(w.alice).deposit(w.aliceId, w.usdc, 0),
  },
  {
    kind: "zero / max amounts",
    input: "amount 0",
    call: "CollateralVault.withdraw",
    error: "ZeroAmount",
    act: (w) => w.vault.connect(w.alice).withdraw(w.aliceId, w.usdc, 0, w.alice.address),
  },
  {
    kind: "zero / max amounts",
    input: "amount type(uint256).max",
    call: "CollateralVault.withdraw",
    error: "InsufficientBalance",
    act: (w) => w.vault.connect(w.alice).withdraw(w.aliceId, w.usdc, MAX, w.alice.address),
  },
  {
    kind: "zero / max amounts",
    input: "balance + 1 unit (6-decimal USDC)",
    call: "CollateralVault.withdraw",
    error: "InsufficientBalance",
    act: (w) => w.vault.connect(w.alice).withdraw(w.aliceId, w.usdc, 20_000n * USDC + 1n, w.alice.address),
  },
  {
    kind: "zero / max amounts",
    input: "balance + 1 unit (8-decimal WBTC)",
    call: "CollateralVault.withdraw",
    error: "InsufficientBalance",
    act: (w) => w.vault.connect(w.alice).withdraw(w.aliceId, w.wbtc, 50_000_001n, w.alice.address),
  },
  {
    kind: "zero / max amounts",
    input: "balance + 1 wei (18-decimal WETH)",
    call: "CollateralVault.withdraw",
    error: "InsufficientBalance",
    act: (w) => w.vault.connect(w.alice).withdraw(w.aliceId, w.weth, wad("1") + 1n, w.alice.address),
  },
  {
    kind: "zero / max amounts",
    input: "deposit above the token's deposit cap",
    call: "CollateralVault.deposit",
    error: "DepositCapExceeded",
    arrange: async (w) => {
      await (await w.wbtc.mint(w.alice.address, 10_001n * 10n ** 8n)).wait();
      await (await w.wbtc.connect(w.alice).approve(w.vault, MAX)).wait();
    },
    act: (w) => w.vault.connect(w.alice).deposit(w.aliceId, w.wbtc, 10_001n * 10n ** 8n),
  },
  {
    kind: "zero / max amounts",
    input: "size 0",
    call: "PerpMarket.trade",
    error: "ZeroSizeDelta",
    act: (w) => trade(w, w.alice, w.aliceId, w.markets.ETH, 0n),
  },
  {
    kind: "zero / max amounts",
    input: "size type(int128).max",
    call: "PerpMarket.trade",
    error: "OpenInterestCapExceeded",
    act: (w) => trade(w, w.alice, w.aliceId, w.markets.ETH, 2n ** 127n - 1n),
  },
  {
    kind: "zero / max amounts",
    input: "size 0",
    call: "OptionMarket.trade",
    error: "ZeroSizeDelta",
    act: (w) => w.options.connect(w.alice).trade(w.aliceId, w.callId, 0, MAX, NO_DEADLINE),
  },
  {
    kind: "zero / max amounts",
    input: "size 10,000 contracts (above open-interest cap)",
    call: "OptionMarket.trade",
    error: "OpenInterestCapExceeded",
    act: (w) => w.options.connect(w.alice).trade(w.aliceId, w.callId, wad("10000"), MAX, NO_DEADLINE),
  },
  {
    kind: "zero / max amounts",
    input: "fraction 0",
    call: "LiquidationAuction.bid",
    error: "InvalidFraction",
    arrange: freezeCarol,
    act: (w) => w.auction.connect(w.keeper).bid(w.carolId, w.keeperId, 0, MAX),
  },
  {
    kind: "zero / max amounts",
    input: "fraction 1e18 + 1",
    call: "LiquidationAuction.bid",
    error: "InvalidFraction",
    arrange: freezeCarol,
    act: (w) => w.auction.connect(w.keeper).bid(w.carolId, w.keeperId, wad("1") + 1n, MAX),
  },
  {
    kind: "zero / max amounts",
    input: "amount 0",
    call: "InsuranceFund.withdraw",
    error: "InvalidWithdrawal",
    act: (w) => w.insuranceFund.withdraw(w.deployer.address, 0),
  },
  {
    kind: "zero / max amounts",
    input: "no quote token held outside the fund's account",
    call: "InsuranceFund.depositHeld",
    error: "NothingHeld",
    act: (w) => w.insuranceFund.connect(w.outsider).depositHeld(),
  },
  {
    kind: "zero / max amounts",
    input: "withdraw more than the pool's free margin",
    call: "LiquidityPool.withdraw",
    error: "ERC4626ExceededMaxWithdraw",
    act: (w) => w.pool.connect(w.lp).withdraw(1_000_000n * USDC, w.lp.address, w.lp.address),
  },
  {
    kind: "zero / max amounts",
    input: "redeem shares minted a block ago (holding period 1 day)",
    call: "LiquidityPool.redeem",
    error: "SharesLocked",
    arrange: async (w) => {
      await mintAndApprove(w.usdc, w.alice, await w.pool.getAddress(), 1_000n * USDC);
      await w.pool.connect(w.alice).deposit(1_000n * USDC, w.alice.address);
    },
    act: async (w) =>
      w.pool.connect(w.alice).redeem(await w.pool.balanceOf(w.alice), w.alice.address, w.alice.address),
  },
  {
    kind: "zero / max amounts",
    input: "holding period 7 days + 1 second",
    call: "LiquidityPool.setHoldingPeriod",
    error: "HoldingPeriodTooLong",
    act: (w) => w.pool.setHoldingPeriod(7n * 86_400n + 1n),
  },
  {
    kind: "unlisted tokens and markets",
    input: "the quote token (the backstop never sells it)",
    call: "LiquidationAuction.buyBackstopCollateral",
    error: "InvalidCollateralPurchase",
    act: (w) => w.auction.connect(w.alice).buyBackstopCollateral(w.aliceId, w.usdc, USDC, MAX),
  },
  {
    kind: "zero / max amounts",
    input: "minShares one above what the deposit mints",
    call: "LiquidityPool.deposit",
    error: "SlippageExceeded",
    arrange: async (w) => mintAndApprove(w.usdc, w.lp, await w.pool.getAddress(), USDC),
    act: async (w) => {
      const shares = await w.pool.previewDeposit(USDC);
      return w.pool.connect(w.lp).depositWithLimit(USDC, w.lp.address, shares + 1n);
    },
  },
  {
    kind: "zero / max amounts",
    input: "exit delay 7 days + 1 second",
    call: "LiquidityPool.setExitDelay",
    error: "ExitDelayTooLong",
    act: (w) => w.pool.setExitDelay(7n * 86_400n + 1n),
  },
  {
    kind: "zero / max amounts",
    input: "surplus recovery of USDC the vault holds for its accounts, nothing more",
    call: "CollateralVault.recoverSurplus",
    error: "NoSurplus",
    act: (w) => w.vault.recoverSurplus(w.usdc, w.deployer.address),
  },
  {
    kind: "account and counterparty misuse",
    input: "surplus recovery of the pool's own shares (held for redeem requests)",
    call: "LiquidityPool.recoverSurplus",
    error: "NoSurplus",
    act: (w) => w.pool.recoverSurplus(w.pool, w.deployer.address),
  },
  {
    kind: "limits and deadlines",
    input: "holding period cut from 1 day to 0 in one change",
    call: "LiquidityPool.setHoldingPeriod",
    error: "ProtectionCutTooLarge",
    act: (w) => w.pool.setHoldingPeriod(0n),
  },
  {
    kind: "limits and deadlines",
    input: "quote interest model: base rate up 26 points in one change",
    call: "CollateralVault.setInterestRateModel",
    error: "ParameterOutOfBounds",
    arrange: async (w) => {
      const model = {
        baseRate: wad("0.02"),
        kinkRate: wad("0.1"),
        maxRate: wad("1.5"),
        kinkUtilization: wad("0.8"),
      };
      await (await w.vault.setInterestRateModel(model)).wait();
    },
    act: (w) =>
      w.vault.setInterestRateModel({
        baseRate: wad("0.28"),
        kinkRate: wad("0.3"),
        maxRate: wad("1.5"),
        kinkUtilization: wad("0.8"),
      }),
  },
  {
    kind: "zero / max amounts",
    input: "redeem request of 0 shares",
    call: "LiquidityPool.requestRedeem",
    error: "InvalidRedeemShares",
    act: (w) => w.pool.connect(w.lp).requestRedeem(0n),
  },
  {
    kind: "limits and deadlines",
    input: "immediate withdrawal while the pool has an exit delay (1 hour)",
    call: "LiquidityPool.withdraw",
    error: "RedeemRequestRequired",
    arrange: async (w) => {
      await w.pool.setExitDelay(3_600n);
    },
    act: (w) => w.pool.connect(w.lp).withdraw(USDC, w.lp.address, w.lp.address),
  },
  {
    kind: "limits and deadlines",
    input: "claim before the exit delay (1 hour) has passed",
    call: "LiquidityPool.claimRedeem",
    error: "NotClaimable",
    arrange: async (w) => {
      await w.pool.setExitDelay(3_600n);
      await w.pool.connect(w.lp).requestRedeem(10n ** 12n);
    },
    act: (w) => w.pool.connect(w.lp).claimRedeem(10n ** 12n, w.lp.address, 0n),
  },
  {
    kind: "limits and deadlines",
    input: "a second redeem request while one is pending",
    call: "LiquidityPool.requestRedeem",
    error: "RedeemRequestPending",
    arrange: async (w) => {
      await w.pool.connect(w.lp).requestRedeem(10n ** 12n);
    },
    act: (w) => w.pool.connect(w.lp).requestRedeem(10n ** 12n),
  },
  {
    kind: "limits and deadlines",
    input: "claim without a redeem request",
    call: "LiquidityPool.claimRedeem",
    error: "NoRedeemRequest",
    act: (w) => w.pool.connect(w.alice).claimRedeem(1n, w.alice.address, 0n),
  },
  {
    kind: "paused protocol",
    input: "vault paused by the guardian",
    call: "LiquidityPool.claimRedeem",
    error: "ClaimUnavailable",
    arrange: async (w) => {
      await w.pool.connect(w.lp).requestRedeem(10n ** 12n);
      await w.vault.pause();
    },
    act: (w) => w.pool.connect(w.lp).claimRedeem(10n ** 12n, w.lp.address, 0n),
  },
  // ---------------------------------------------------------------- unlisted tokens and markets
  {
    kind: "unlisted tokens and markets",
    input: "token never listed",
    call: "CollateralVault.deposit",
    error: "TokenNotListed",
    arrange: async (w) => {
      const token = await ethers.deployContract("MockERC20", ["X", "X", 18]);
      (w as HostileWorld & { stray?: string }).stray = await token.getAddress();
    },
    act: (w) =>
      w.vault.connect(w.alice).deposit(w.aliceId, (w as HostileWorld & { stray?: string }).stray!, 1),
  },
  {
    kind: "unlisted tokens and markets",
    input: "delisted token",
    call: "CollateralVault.deposit",
    error: "TokenNotListed",
    arrange: async (w) => {
      await (await w.vault.delistCollateral(w.wbtc)).wait();
    },
    act: (w) => w.vault.connect(w.alice).deposit(w.aliceId, w.wbtc, 1),
  },
  {
    kind: "unlisted tokens and markets",
    input: "marketId 99 (never listed)",
    call: "PerpMarket.trade",
    error: "UnknownMarket",
    act: (w) => trade(w, w.alice, w.aliceId, 99n, wad("1")),
  },
  {
    kind: "unlisted tokens and markets",
    input: "seriesId 99 (never listed)",
    call: "OptionMarket.trade",
    error: "UnknownSeries",
    act: (w) => w.options.connect(w.alice).trade(w.aliceId, 99, wad("1"), MAX, NO_DEADLINE),
  },
  {
    kind: "unlisted tokens and markets",
    input: "accountId 999 (never created)",
    call: "CollateralVault.withdraw",
    error: "ERC721NonexistentToken",
    act: (w) => w.vault.connect(w.alice).withdraw(999, w.usdc, 1, w.alice.address),
  },
  {
    kind: "unlisted tokens and markets",
    input: "collateral priced by an unknown oracle asset",
    call: "CollateralVault.listCollateral",
    error: "UnpricedAsset",
    act: async (w) => {
      const token = await ethers.deployContract("MockERC20", ["X", "X", 18]);
      return w.vault.listCollateral(token, assetId("DOGE"), wad("0.9"), wad("0.95"), 1000, false);
    },
  },
  {
    kind: "unlisted tokens and markets",
    input: "collateral token with 37 decimals",
    call: "CollateralVault.listCollateral",
    error: "ParameterOutOfBounds",
    act: async (w) => {
      const token = await ethers.deployContract("MockERC20", ["X", "X", 37]);
      return w.vault.listCollateral(token, assetId("ETH"), wad("0.9"), wad("0.95"), 1000, false);
    },
  },
  // ---------------------------------------------------------------- expired series
  {
    kind: "expired series",
    input: "series past expiry",
    call: "OptionMarket.trade",
    error: "SeriesExpired",
    arrange: async (w) => {
      await time.increase(7_300);
      await refreshFeeds(w);
    },
    act: (w) => w.options.connect(w.alice).trade(w.aliceId, w.shortDatedId, -wad("1"), 0, NO_DEADLINE),
  },
  {
    kind: "expired series",
    input: "series not yet expired",
    call: "OptionMarket.settleSeries",
    error: "SeriesNotExpired",
    act: (w) => w.options.settleSeries(w.callId, 1),
  },
  {
    kind: "expired series",
    input: "round hint before expiry",
    call: "OptionMarket.settleSeries",
    error: "WrongRoundHint",
    arrange: async (w) => {
      await time.increase(7_300);
      await refreshFeeds(w);
    },
    act: async (w) => w.options.settleSeries(w.shortDatedId, (await w.feeds.ETH.latestRound()) - 1n),
  },
  {
    kind: "expired series",
    input: "expired series not settled yet",
    call: "OptionMarket.settleAccount",
    error: "SeriesNotSettled",
    arrange: async (w) => {
      await time.increase(7_300);
      await refreshFeeds(w);
    },
    act: (w) => w.options.settleAccount(w.aliceId, w.shortDatedId),
  },
  {
    kind: "expired series",
    input: "series settled twice",
    call: "OptionMarket.settleSeries",
    error: "SeriesAlreadySettled",
    arrange: async (w) => {
      await time.increase(7_300);
      await refreshFeeds(w);
      await (await w.options.settleSeries(w.shortDatedId, await w.feeds.ETH.latestRound())).wait();
    },
    act: async (w) => w.options.settleSeries(w.shortDatedId, await w.feeds.ETH.latestRound()),
  },
  {
    kind: "expired series",
    input: "expiry 30 minutes away",
    call: "OptionMarket.listSeries",
    error: "InvalidExpiry",
    act: async (w) =>
      w.options.listSeries(assetId("ETH"), wad("3100"), BigInt(await time.latest()) + 1_800n, true, {
        spreadFactor: wad("0.01"),
        fee: wad("0.0003"),
        insuranceFeeShare: wad("0.2"),
        maxOpenInterest: wad("1000"),
      }),
  },
  // ---------------------------------------------------------------- bad prices
  {
    kind: "bad prices",
    input: "ETH feed answers 0",
    call: "PerpMarket.trade",
    error: "InvalidPrice",
    arrange: (w) => setEth(w, 0n),
    act: (w) => trade(w, w.alice, w.aliceId, w.markets.ETH, wad("0.1")),
  },
  {
    kind: "bad prices",
    input: "ETH feed answers −3000",
    call: "CollateralVault.withdraw",
    error: "InvalidPrice",
    arrange: (w) => setEth(w, -3_000n * 10n ** 8n),
    act: (w) => w.vault.connect(w.alice).withdraw(w.aliceId, w.usdc, USDC, w.alice.address),
  },
  {
    kind: "bad prices",
    input: "ETH feed older than its heartbeat",
    call: "PerpMarket.trade",
    error: "StalePrice",
    arrange: staleEthFeed,
    act: (w) => trade(w, w.alice, w.aliceId, w.markets.ETH, wad("0.1")),
  },
  {
    kind: "bad prices",
    input: "ETH feed older than its heartbeat (the pool's book holds ETH)",
    call: "LiquidityPool.deposit",
    error: "StalePrice",
    arrange: staleEthFeed,
    act: (w) => w.pool.connect(w.lp).deposit(USDC, w.lp.address),
  },
  {
    kind: "bad prices",
    input: "ETH above its max bound (×2000)",
    call: "PerpMarket.trade",
    error: "PriceOutOfBounds",
    arrange: (w) => setEth(w, 6_000_000n * 10n ** 8n),
    act: (w) => trade(w, w.alice, w.aliceId, w.markets.ETH, -wad("0.1")),
  },
  {
    kind: "bad prices",
    input: "ETH below its min bound (÷2000)",
    call: "LiquidationAuction.startAuction",
    error: "PriceOutOfBounds",
    arrange: (w) => setEth(w, 150_000_000n),
    act: (w) => w.auction.startAuction(w.aliceId),
  },
  {
    kind: "bad prices",
    input: "ETH volatility 600% (above its bound)",
    call: "OptionMarket.trade",
    error: "PriceOutOfBounds",
    arrange: async (w) => {
      await (await w.volFeeds.ETH.updateAnswer(6n * 10n ** 8n)).wait();
    },
    act: (w) => w.options.connect(w.alice).trade(w.aliceId, w.callId, wad("0.1"), MAX, NO_DEADLINE),
  },
  {
    kind: "bad prices",
    input: "incomplete round (answeredInRound < roundId)",
    call: "PerpMarket.trade",
    error: "IncompleteRound",
    arrange: (w) => configurableEth(w, (now) => [5n, 3_000n * 10n ** 8n, now, now, 4n]),
    act: (w) => trade(w, w.alice, w.aliceId, w.markets.ETH, wad("0.1")),
  },
  {
    kind: "bad prices",
    input: "round updated in the future",
    call: "PerpMarket.trade",
    error: "IncompleteRound",
    arrange: (w) => configurableEth(w, (now) => [5n, 3_000n * 10n ** 8n, now, now + 600n, 5n]),
    act: (w) => trade(w, w.alice, w.aliceId, w.markets.ETH, wad("0.1")),
  },
  {
    kind: "bad prices",
    input: "feed reverts",
    call: "PerpMarket.trade",
    error: "SourceUnavailable",
    arrange: async (w) => {
      await configurableEth(w, (now) => [5n, 3_000n * 10n ** 8n, now, now, 5n]);
      const mock = await ethers.getContractAt(
        "ConfigurableAggregatorMock",
        await w.router.primaryFeed(assetId("ETH")),
      );
      await (await mock.setBroken(true)).wait();
    },
    act: (w) => trade(w, w.alice, w.aliceId, w.markets.ETH, wad("0.1")),
  },
  // ---------------------------------------------------------------- sequencer
  {
    kind: "sequencer",
    input: "L2 sequencer down",
    call: "PerpMarket.trade",
    error: "SequencerDown",
    arrange: async (w) => {
      await configureSequencer(w.router, 1, 10n);
    },
    act: (w) => trade(w, w.alice, w.aliceId, w.markets.ETH, wad("0.1")),
  },
  {
    kind: "sequencer",
    input: "L2 sequencer down",
    call: "LiquidationAuction.startAuction",
    error: "SequencerDown",
    arrange: async (w) => {
      await configureSequencer(w.router, 1, 10n);
    },
    act: (w) => w.auction.startAuction(w.aliceId),
  },
  {
    kind: "sequencer",
    input: "sequencer up 10 minutes (grace 1 hour)",
    call: "CollateralVault.withdraw",
    error: "GracePeriodNotOver",
    arrange: async (w) => {
      await configureSequencer(w.router, 0, 600n);
    },
    act: (w) => w.vault.connect(w.alice).withdraw(w.aliceId, w.usdc, USDC, w.alice.address),
  },
  {
    kind: "sequencer",
    input: "sequencer up 10 minutes (grace 1 hour)",
    call: "OptionMarket.trade",
    error: "GracePeriodNotOver",
    arrange: async (w) => {
      await configureSequencer(w.router, 0, 600n);
    },
    act: (w) => w.options.connect(w.alice).trade(w.aliceId, w.callId, wad("0.1"), MAX, NO_DEADLINE),
  },
  // ---------------------------------------------------------------- odd tokens
  {
    kind: "odd tokens",
    input: "fee-on-transfer token (1% fee)",
    call: "CollateralVault.deposit",
    error: "TransferAmountMismatch",
    arrange: async (w) => {
      (w as HostileWorld & { odd?: string }).odd = await (
        await listOdd(w, "FeeOnTransferToken", 18)
      ).getAddress();
    },
    act: (w) =>
      w.vault.connect(w.alice).deposit(w.aliceId, (w as HostileWorld & { odd?: string }).odd!, wad("1")),
  },
  {
    kind: "odd tokens",
    input: "token re-entering withdraw during deposit",
    call: "CollateralVault.deposit → withdraw",
    error: "ReentrancyGuardReentrantCall",
    act: async (w) => {
      const token = await listOdd(w, "ReentrantToken", 18);
      await (await w.accounts.connect(w.alice).setApprovalForAll(token, true)).wait();
      const data = w.vault.interface.encodeFunctionData("withdraw", [
        w.aliceId,
        w.usdc.target as string,
        USDC,
        w.alice.address,
      ]);
      await (await token.getFunction("arm")(await w.vault.getAddress(), data)).wait();
      await (await w.vault.connect(w.alice).deposit(w.aliceId, token, wad("1"))).wait();
      // The deposit itself succeeds; the re-entered withdrawal must have failed.
      const ok = (await token.getFunction("lastCallSucceeded")()) as boolean;
      const revert = (await token.getFunction("lastReturnData")()) as string;
      return { innerRevert: ok ? "none (re-entry succeeded)" : revert };
    },
  },
  // ---------------------------------------------------------------- paused protocol
  {
    kind: "paused protocol",
    input: "engine paused by the guardian",
    call: "PerpMarket.trade (risk-increasing)",
    error: "RiskIncreasePaused",
    arrange: async (w) => {
      await (await w.engine.pause()).wait();
    },
    act: (w) => trade(w, w.alice, w.aliceId, w.markets.ETH, wad("0.1")),
  },
  {
    kind: "paused protocol",
    input: "engine paused by the guardian",
    call: "OptionMarket.trade (risk-increasing)",
    error: "RiskIncreasePaused",
    arrange: async (w) => {
      await (await w.engine.pause()).wait();
    },
    act: (w) => w.options.connect(w.alice).trade(w.aliceId, w.callId, wad("0.1"), MAX, NO_DEADLINE),
  },
  {
    kind: "paused protocol",
    input: "vault paused by the guardian",
    call: "CollateralVault.withdraw",
    error: "EnforcedPause",
    arrange: async (w) => {
      await (await w.vault.pause()).wait();
    },
    act: (w) => w.vault.connect(w.alice).withdraw(w.aliceId, w.usdc, USDC, w.alice.address),
  },
  {
    kind: "paused protocol",
    input: "engine paused by the guardian",
    call: "LiquidationAuction.buyBackstopCollateral",
    error: "BackstopSalePaused",
    arrange: async (w) => {
      await (await w.engine.pause()).wait();
    },
    act: (w) => w.auction.connect(w.alice).buyBackstopCollateral(w.aliceId, w.weth, 1n, MAX),
  },
  // ---------------------------------------------------------------- frozen accounts
  {
    kind: "frozen accounts",
    input: "account in a running auction",
    call: "PerpMarket.trade (risk-increasing)",
    error: "AccountFrozen",
    arrange: freezeCarol,
    act: (w) => trade(w, w.carol, w.carolId, w.markets.ETH, wad("0.1")),
  },
  {
    kind: "frozen accounts",
    input: "WBTC above its cap into an account in auction (only quote cures are uncapped)",
    call: "CollateralVault.deposit",
    error: "DepositCapExceeded",
    arrange: async (w) => {
      await freezeCarol(w);
      await (await w.wbtc.mint(w.carol.address, 10_001n * 10n ** 8n)).wait();
      await (await w.wbtc.connect(w.carol).approve(w.vault, MAX)).wait();
    },
    act: (w) => w.vault.connect(w.carol).deposit(w.carolId, w.wbtc, 10_001n * 10n ** 8n),
  },
  {
    kind: "frozen accounts",
    input: "account in a running auction",
    call: "CollateralVault.withdraw",
    error: "AccountFrozen",
    arrange: freezeCarol,
    act: (w) => w.vault.connect(w.carol).withdraw(w.carolId, w.usdc, 1n, w.carol.address),
  },
  {
    kind: "frozen accounts",
    input: "account in a running auction",
    call: "OptionMarket.trade (risk-increasing)",
    error: "AccountFrozen",
    arrange: freezeCarol,
    act: (w) => w.options.connect(w.carol).trade(w.carolId, w.callId, wad("0.1"), MAX, NO_DEADLINE),
  },
  {
    kind: "frozen accounts",
    input: "auction already running",
    call: "LiquidationAuction.startAuction",
    error: "AuctionAlreadyActive",
    arrange: freezeCarol,
    act: (w) => w.auction.startAuction(w.carolId),
  },
  {
    kind: "frozen accounts",
    input: "healthy account",
    call: "LiquidationAuction.startAuction",
    error: "AccountHealthy",
    act: (w) => w.auction.startAuction(w.aliceId),
  },
  {
    kind: "frozen accounts",
    input: "no auction running",
    call: "LiquidationAuction.bid",
    error: "AuctionNotActive",
    act: (w) => w.auction.connect(w.keeper).bid(w.aliceId, w.keeperId, wad("0.1"), MAX),
  },
  {
    kind: "frozen accounts",
    input: "auction still open to bidders (before its duration)",
    call: "LiquidationAuction.absorb",
    error: "AbsorbTooEarly",
    arrange: freezeCarol,
    act: (w) => w.auction.absorb(w.carolId),
  },
  {
    kind: "frozen accounts",
    input: "no auction running",
    call: "LiquidationAuction.absorb",
    error: "AuctionNotActive",
    act: (w) => w.auction.absorb(w.aliceId),
  },
  {
    kind: "frozen accounts",
    input: "auction of a still-liquidatable account",
    call: "LiquidationAuction.endAuction",
    error: "AccountNotHealthy",
    arrange: freezeCarol,
    act: (w) => w.auction.endAuction(w.carolId),
  },
  // ---------------------------------------------------------------- account and counterparty misuse
  {
    kind: "account and counterparty misuse",
    input: "someone else's account",
    call: "PerpMarket.trade",
    error: "NotAuthorized",
    act: (w) => trade(w, w.bob, w.aliceId, w.markets.ETH, wad("0.1")),
  },
  {
    kind: "account and counterparty misuse",
    input: "someone else's account",
    call: "CollateralVault.withdraw",
    error: "NotAuthorized",
    act: (w) => w.vault.connect(w.bob).withdraw(w.aliceId, w.usdc, USDC, w.bob.address),
  },
  {
    kind: "account and counterparty misuse",
    input: "operator withdrawing to itself",
    call: "CollateralVault.withdraw",
    error: "InvalidRecipient",
    arrange: async (w) => {
      await (await w.accounts.connect(w.alice).approve(w.bob.address, w.aliceId)).wait();
    },
    act: (w) => w.vault.connect(w.bob).withdraw(w.aliceId, w.usdc, USDC, w.bob.address),
  },
  {
    kind: "account and counterparty misuse",
    input: "a trader's trade costing more than its allowance",
    call: "OptionMarket.trade",
    error: "TraderAllowanceExceeded",
    arrange: async (w) => {
      await (await w.accounts.connect(w.alice).setTrader(w.aliceId, w.bob.address, 1n)).wait();
    },
    act: (w) => w.options.connect(w.bob).trade(w.aliceId, w.callId, wad("0.1"), MAX, NO_DEADLINE),
  },
  {
    kind: "account and counterparty misuse",
    input: "spending a trader's allowance from outside the markets",
    call: "Accounts.authorizeTrade",
    error: "NotMarket",
    arrange: async (w) => {
      await (await w.accounts.connect(w.alice).setTrader(w.aliceId, w.bob.address, USDC)).wait();
    },
    act: (w) => w.accounts.connect(w.outsider).authorizeTrade(w.aliceId, w.bob.address, USDC),
  },
  {
    kind: "account and counterparty misuse",
    input: "second market in an ISOLATED account",
    call: "PerpMarket.trade",
    error: "IsolatedAccountMarketTaken",
    act: (w) => trade(w, w.bob, w.bobId, w.markets.BTC, wad("0.01")),
  },
  {
    kind: "account and counterparty misuse",
    input: "the pool's account as trader",
    call: "OptionMarket.trade",
    error: "PoolAccountCannotTrade",
    act: (w) => w.options.connect(w.alice).trade(w.poolAccountId, w.callId, wad("0.1"), MAX, NO_DEADLINE),
  },
  {
    kind: "account and counterparty misuse",
    input: "the pool's account",
    call: "LiquidationAuction.startAuction",
    error: "PoolNotLiquidatable",
    act: (w) => w.auction.startAuction(w.poolAccountId),
  },
  {
    kind: "account and counterparty misuse",
    input: "the backstop account",
    call: "LiquidationAuction.startAuction",
    error: "PoolNotLiquidatable",
    act: async (w) => w.auction.startAuction(await w.auction.backstopAccountId()),
  },
  {
    kind: "account and counterparty misuse",
    input: "1 wei of WETH donated to the pool's account",
    call: "CollateralVault.deposit",
    error: "ProtocolAccountCollateral",
    arrange: mintWethToAlice,
    act: (w) => w.vault.connect(w.alice).deposit(w.poolAccountId, w.weth, 1n),
  },
  {
    kind: "account and counterparty misuse",
    input: "1 wei of WETH donated to the backstop account",
    call: "CollateralVault.deposit",
    error: "ProtocolAccountCollateral",
    arrange: mintWethToAlice,
    act: async (w) => w.vault.connect(w.alice).deposit(await w.auction.backstopAccountId(), w.weth, 1n),
  },
  {
    kind: "account and counterparty misuse",
    input: "1 wei of WETH donated to the insurance fund's account",
    call: "CollateralVault.deposit",
    error: "ProtocolAccountCollateral",
    arrange: mintWethToAlice,
    act: async (w) => w.vault.connect(w.alice).deposit(await w.engine.insuranceAccountId(), w.weth, 1n),
  },
  {
    kind: "account and counterparty misuse",
    input: "1 wei of WETH put into another owner's account by a stranger",
    call: "CollateralVault.deposit",
    error: "NotAuthorized",
    arrange: mintWethToAlice,
    act: (w) => w.vault.connect(w.alice).deposit(w.bobId, w.weth, 1n),
  },
  {
    kind: "account and counterparty misuse",
    input: "the backstop account, by a trader",
    call: "PerpMarket.trade",
    error: "NotAuthorized",
    act: async (w) => trade(w, w.alice, await w.auction.backstopAccountId(), w.markets.ETH, wad("0.1")),
  },
  {
    kind: "account and counterparty misuse",
    input: "unwinding a position the backstop does not hold",
    call: "LiquidationAuction.unwindBackstop",
    error: "UnwindNotReducing",
    act: (w) => w.auction.unwindBackstop(w.perps, w.markets.ETH, -wad("0.1"), 0n, NO_DEADLINE),
  },
  {
    kind: "account and counterparty misuse",
    input: "bidding with the liquidated account itself",
    call: "LiquidationAuction.bid",
    error: "SelfBid",
    arrange: freezeCarol,
    act: (w) => w.auction.connect(w.carol).bid(w.carolId, w.carolId, wad("0.1"), MAX),
  },
  {
    kind: "account and counterparty misuse",
    input: "bidAndClose from an account holding positions",
    call: "LiquidationAuction.bidAndClose",
    error: "BidderHasPositions",
    arrange: freezeCarol,
    act: (w) => w.auction.connect(w.bob).bidAndClose(w.carolId, w.bobId, wad("0.1"), MAX),
  },
  {
    kind: "account and counterparty misuse",
    input: "over-leveraged trade (20 ETH on Bob's 5,000 USDC)",
    call: "PerpMarket.trade",
    error: "InsufficientMargin",
    act: (w) => trade(w, w.bob, w.bobId, w.markets.ETH, wad("20")),
  },
  {
    kind: "account and counterparty misuse",
    input: "withdrawal below the initial requirement",
    call: "CollateralVault.withdraw",
    error: "InsufficientMargin",
    act: (w) => w.vault.connect(w.bob).withdraw(w.bobId, w.usdc, 4_900n * USDC, w.bob.address),
  },
  // ---------------------------------------------------------------- limits and deadlines
  {
    kind: "limits and deadlines",
    input: "deadline in the past",
    call: "PerpMarket.trade",
    error: "DeadlineExpired",
    act: (w) => w.perps.connect(w.alice).trade(w.aliceId, w.markets.ETH, wad("0.1"), MAX, 1),
  },
  {
    kind: "limits and deadlines",
    input: "buy limit below the fill",
    call: "PerpMarket.trade",
    error: "PriceLimitExceeded",
    act: (w) =>
      w.perps.connect(w.alice).trade(w.aliceId, w.markets.ETH, wad("0.1"), wad("2000"), NO_DEADLINE),
  },
  {
    kind: "limits and deadlines",
    input: "premium limit below the quote",
    call: "OptionMarket.trade",
    error: "PriceLimitExceeded",
    act: (w) => w.options.connect(w.alice).trade(w.aliceId, w.callId, wad("0.1"), 1, NO_DEADLINE),
  },
  {
    kind: "limits and deadlines",
    input: "payment limit below the auction's price",
    call: "LiquidationAuction.bid",
    error: "PaymentAboveLimit",
    arrange: freezeCarol,
    act: (w) => w.auction.connect(w.keeper).bid(w.carolId, w.keeperId, wad("0.01"), 0),
  },
  {
    kind: "limits and deadlines",
    input: "skew scale cut below the open skew (13 ETH long, 20 → 12)",
    call: "PerpMarket.setMarketParams",
    error: "MarketParamOutOfBounds",
    arrange: async (w) => {
      const market = await listPerpMarket(w.perps, "ETH", skewScaleOf(wad("20")));
      await (await trade(w, w.keeper, w.keeperId, market, wad("13"))).wait();
    },
    act: async (w) => w.perps.setMarketParams(await w.perps.marketCount(), skewScaleOf(wad("12"))),
  },
];

// ------------------------------------------------------------------------ unauthorised callers

/** The errors that mean "you may not call this". */
export const AUTH_ERRORS = new Set([
  "AccessManagedUnauthorized",
  "NotMarket",
  "NotLiquidator",
  "NotMarginEngine",
  "NotDeployer",
]);

export type ContractKey =
  | "OracleRouter"
  | "CollateralVault"
  | "MarginEngine"
  | "PerpMarket"
  | "OptionMarket"
  | "InsuranceFund"
  | "LiquidationAuction"
  | "LiquidityPool"
  | "Accounts";

export function protocolContracts(w: HostileWorld): Record<ContractKey, BaseContract> {
  return {
    OracleRouter: w.router,
    CollateralVault: w.vault,
    MarginEngine: w.engine,
    PerpMarket: w.perps,
    OptionMarket: w.options,
    InsuranceFund: w.insuranceFund,
    LiquidationAuction: w.auction,
    LiquidityPool: w.pool,
    Accounts: w.accounts,
  };
}

/** Arguments of the right types for any function: small nonzero numbers, the caller's address. */
export function defaultArgs(inputs: readonly ParamType[], caller: string): unknown[] {
  return inputs.map((p) => defaultValue(p, caller));
}

function defaultValue(p: ParamType, caller: string): unknown {
  if (p.isArray()) return [];
  if (p.isTuple()) return p.components!.map((c) => defaultValue(c, caller));
  if (p.baseType.startsWith("uint") || p.baseType.startsWith("int")) return 1n;
  if (p.baseType === "address") return caller;
  if (p.baseType === "bool") return false;
  if (p.baseType === "string") return "x";
  if (p.baseType === "bytes") return "0x";
  if (p.baseType.startsWith("bytes")) return ethers.zeroPadValue("0x01", Number(p.baseType.slice(5)));
  throw new Error(`no default for ${p.type}`);
}
