import { MaxUint256, type ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import { erc4626 } from "../contracts";
import {
  type ApprovalMode,
  type ApprovalUsed,
  ensureAllowance,
  requireAcceptedDeposit,
} from "./internal/allowance";
import { blockAt, eventsOf, quoteToken, read, requireSigner, send } from "./internal/chain";
import { poolExitGas } from "./internal/gas";
import { lessSlippage, plusSlippage } from "./internal/slippage";

/** The liquidity pool as an LP sees it (quote-token units; shares in the pool's 12 decimals for USDC). */
export interface PoolState {
  /**
   * The pool's equity: quote balance, positions at their marks, interest owed to it and the backstop
   * account's equity, less uncovered deficits.
   */
  totalAssets: bigint;
  /**
   * The backstop account's mark-to-market equity in the quote token, 18 decimals (part of `totalAssets`;
   * its collateral converted at the quote's oracle price, positions 1:1): the books it absorbed
   * from liquidations nobody bid on. Below zero it also lowers what LPs may withdraw.
   */
  backstopValue: bigint;
  totalSupply: bigint;
  /** Quote units one whole share (10^decimals) redeems for at the current share price, rounded down. */
  assetsPerShare: bigint;
  /** What may be deposited now: 0 while the pool is under water or near an option settlement. */
  maxDeposit: bigint;
  /** Whether the pool holds a series about to settle (deposits and withdrawals wait for settlement). */
  settlementPending: boolean;
  /** Seconds newly deposited shares stay locked before they can be redeemed or transferred. */
  holdingPeriod: bigint;
  /**
   * Seconds between a redeem request and its claim (`requestRedeem`, `claimRedeem`); 0 lets LPs exit at
   * once with `withdrawLiquidity`.
   */
  exitDelay: bigint;
  /** The LP's position, when an owner was given. */
  owner?: {
    address: string;
    shares: bigint;
    /** What the shares are worth at the share price, rounded down. */
    assets: bigint;
    /**
     * Shares minted within the pool's holding period (`holdingPeriod`), which may not be redeemed,
     * withdrawn or transferred before `unlocksAt`; 0 once the lock is over.
     */
    lockedShares: bigint;
    /** When the locked shares become free (seconds since the epoch); 0 when none are locked. */
    unlocksAt: bigint;
    /**
     * What the LP may withdraw now: its unlocked shares' worth, capped by the pool's free margin and the
     * quote lent out. 0 while the pool has an exit delay (every deployment: LPs leave through
     * `requestRedeem`, and `redeemRequest.claimableShares` is what a claim takes), is paused or
     * `settlementPending`.
     */
    maxWithdraw: bigint;
    maxRedeem: bigint;
    /** The LP's pending redeem request, if any. */
    redeemRequest?: RedeemRequestState;
  };
}

/** A pending redeem request (`requestRedeem`). */
export interface RedeemRequestState {
  /** Shares moved into the pool to be redeemed. */
  shares: bigint;
  /** What they were worth at the request (quote units): the most the claim pays. */
  requestedAssets: bigint;
  /** What a claim of all of them pays at this block: the lower of `requestedAssets` and their worth now. */
  claimableAssets: bigint;
  /**
   * The most of them `claimRedeem` takes at this block (`LiquidityPool.maxClaim`): all, or the part the
   * pool's free margin pays; 0 outside the window, while exits are closed or the pool cannot be priced.
   */
  claimableShares: bigint;
  /** The window in which it can be claimed (seconds since the epoch); after it, only cancelled. */
  claimableAt: bigint;
  claimableUntil: bigint;
}

/**
 * Reads the pool's share price and limits, and `owner`'s position in it, all at one block. Throws the oracle's error
 * (e.g. XMarginError "StalePrice") while a feed under the pool's book fails: there is no share price
 * then (the contract's `max*` read 0, its `totalAssets` reverts).
 * @example
 * const pool = await getPoolState(client, { owner: lpAddress });
 * console.log(pool.assetsPerShare, pool.owner?.maxWithdraw);
 */
export async function getPoolState(
  client: XMarginClient,
  params: { owner?: string } = {},
): Promise<PoolState> {
  const { owner } = params;
  const pool = erc4626(client.deployment.contracts.liquidityPool, client.provider);
  const lp = client.contracts.liquidityPool;
  return read(client, async () => {
    const at = { blockTag: (await blockAt(client)).number };
    const decimals = await pool.decimals();
    const [
      totalAssets,
      backstopValue,
      totalSupply,
      assetsPerShare,
      maxDeposit,
      settlementPending,
      holdingPeriod,
      exitDelay,
    ] = await Promise.all([
      pool.totalAssets(at),
      lp.backstopValue(at),
      pool.totalSupply(at),
      pool.convertToAssets(10n ** decimals, at),
      pool.maxDeposit(owner ?? client.deployment.contracts.liquidityPool, at),
      lp.settlementPending(at),
      lp.holdingPeriod(at),
      lp.exitDelay(at),
    ]);
    const state: PoolState = {
      totalAssets,
      backstopValue,
      totalSupply,
      assetsPerShare,
      maxDeposit,
      settlementPending,
      holdingPeriod,
      exitDelay,
    };
    if (owner !== undefined) {
      const shares = await pool.balanceOf(owner, at);
      const [assets, unlocked, lock, maxWithdraw, maxRedeem, request] = await Promise.all([
        pool.convertToAssets(shares, at),
        lp.unlockedShares(owner, at),
        lp.sharesLock(owner, at),
        pool.maxWithdraw(owner, at),
        pool.maxRedeem(owner, at),
        lp.redeemRequest(owner, at),
      ]);
      const lockedShares = shares - unlocked;
      const unlocksAt = lockedShares === 0n ? 0n : lock.unlocksAt;
      state.owner = { address: owner, shares, assets, lockedShares, unlocksAt, maxWithdraw, maxRedeem };
      if (request.shares !== 0n) {
        state.owner.redeemRequest = {
          shares: request.shares,
          requestedAssets: request.assets,
          claimableAssets: await lp.previewClaim(owner, request.shares, at),
          claimableShares: await lp.maxClaim(owner, at),
          claimableAt: request.claimableAt,
          claimableUntil: request.claimableUntil,
        };
      }
    }
    return state;
  });
}

/** Parameters of `depositLiquidity`. */
export interface DepositLiquidityParameters {
  /** Quote-token units. */
  amount: bigint;
  /** Who receives the shares; default the signer. */
  receiver?: string;
  /** How to grant the pool the allowance when it is short (see `deposit`); default "auto". */
  approval?: ApprovalMode;
  /** Seconds a permit stays valid (default 3,600). */
  permitValidity?: number;
  /** Fewest shares to accept; default the previewed shares less `slippageBps`. */
  minShares?: bigint;
  /** How far the share price may move against the deposit before it lands (default 50 = 0.5%). */
  slippageBps?: number;
}

/** A pool deposit or withdrawal: the receipt and what moved, from the ERC-4626 event. */
export interface LiquidityReturnType {
  receipt: ContractTransactionReceipt;
  assets: bigint;
  shares: bigint;
}

/**
 * Deposits `amount` of the quote token into the liquidity pool (ERC-4626 `deposit`), granting the pool
 * the allowance first if needed. The pool becomes the counterparty of every trade with it: its shares
 * carry the traders' losses and gains, so the share price moves while a deposit waits to land: it
 * reverts with XMarginError "SlippageExceeded" below `minShares` (by default the previewed shares less
 * `slippageBps`). The new shares are locked for the pool's holding period (`getPoolState`'s
 * `holdingPeriod`; shared with a lock still running, by weighted average). Throws XMarginError
 * "ERC4626ExceededMaxDeposit" above `maxDeposit` (see `getPoolState`: 0 while the pool holds a series
 * in its last hour or awaiting settlement, or is under water), with the feed's error while the share
 * price cannot be read, "ERC20InsufficientBalance" beyond the signer's balance, and the quote token's own
 * refusal of the pull (a pause, a blocklisted signer or pool): all of them before any approval or permit
 * is sent. A negative `amount` is a RangeError.
 * @example
 * const { shares } = await depositLiquidity(client, { amount: 10_000n * 10n ** 6n });
 */
export async function depositLiquidity(
  client: XMarginClient,
  params: DepositLiquidityParameters,
): Promise<LiquidityReturnType & { approval: ApprovalUsed }> {
  const signer = requireSigner(client);
  if (params.amount < 0n) throw new RangeError("depositLiquidity: amount must not be negative (quote units)");
  const poolAddress = client.deployment.contracts.liquidityPool;
  const owner = await signer.getAddress();
  const receiver = params.receiver ?? owner;
  const quote = await quoteToken(client);
  // The pool's refusal (ERC4626ExceededMaxDeposit, the feed's error, ZeroAmount) before any approval:
  // every day in the hour before an option expiry (review round 76).
  await requireAcceptedDeposit(client, {
    simulate: () =>
      erc4626(poolAddress, client.provider).deposit.staticCall(params.amount, receiver, { from: owner }),
    isRefusal: (name) => !AT_THE_PULL.has(name),
    token: quote,
    owner,
    spender: poolAddress,
    amount: params.amount,
  });
  const approval = await ensureAllowance(
    client,
    quote,
    poolAddress,
    params.amount,
    params.approval,
    params.permitValidity,
  );
  const pool = erc4626(poolAddress, signer);
  const minShares =
    params.minShares ??
    lessSlippage(await read(client, () => pool.previewDeposit(params.amount)), params.slippageBps);
  const receipt = await send(client, () =>
    client.contracts.liquidityPool.depositWithLimit(params.amount, receiver, minShares),
  );
  return { ...movedBy(receipt, pool, "Deposit"), receipt, approval };
}

/** The quote token's errors at the pool's pull, which the allowance (or the balance check) settles. */
const AT_THE_PULL = new Set(["ERC20InsufficientAllowance", "ERC20InsufficientBalance"]);

/** Parameters of `withdrawLiquidity`: an amount of quote to receive, or a number of shares to burn. */
export type WithdrawLiquidityParameters = ({ assets: bigint } | { shares: bigint }) & {
  /** Who receives the quote; default the signer. */
  receiver?: string;
  /**
   * The worst the share price may reach: most shares to burn for `assets`, fewest assets to receive for
   * `shares`. Default the preview moved by `slippageBps`.
   */
  limit?: bigint;
  /** How far the share price may move against the withdrawal before it lands (default 50 = 0.5%). */
  slippageBps?: number;
};

/**
 * Takes quote out of the liquidity pool at once, where the pool has no exit delay (`getPoolState`'s
 * `exitDelay` is 0; otherwise XMarginError "RedeemRequestRequired": use `requestRedeem` and
 * `claimRedeem`): `assets` exactly (ERC-4626 `withdraw`, burning the shares
 * that cost) or all of `shares` (`redeem`). Shares deposited within the pool's holding period cannot
 * leave yet: XMarginError "SharesLocked" (see `getPoolState`'s `owner.unlocksAt`). Withdrawals never
 * take the pool below its initial requirement nor take quote traders owe it: beyond `maxWithdraw` /
 * `maxRedeem` it throws XMarginError "ERC4626ExceededMaxWithdraw" / "ERC4626ExceededMaxRedeem". Past
 * `limit` (by default the preview moved `slippageBps` against the LP) it reverts with "SlippageExceeded".
 * @example
 * await withdrawLiquidity(client, { assets: 1_000n * 10n ** 6n });
 * await withdrawLiquidity(client, { shares: (await getPoolState(client, { owner: me })).owner!.maxRedeem });
 */
export async function withdrawLiquidity(
  client: XMarginClient,
  params: WithdrawLiquidityParameters,
): Promise<LiquidityReturnType> {
  const signer = requireSigner(client);
  const owner = await signer.getAddress();
  const receiver = params.receiver ?? owner;
  const pool = erc4626(client.deployment.contracts.liquidityPool, signer);
  const lp = client.contracts.liquidityPool;
  const bps = params.slippageBps;
  let receipt: ContractTransactionReceipt;
  // The exit margin-checks the pool's and the backstop's books, every series held (`poolExitGas`).
  // The preview is the action itself, simulated without a limit: the same number as previewWithdraw
  // (previewRedeem), and where it cannot go through, the chain's own refusal in the chain's order
  // (RedeemRequestRequired before a failed feed's error: review round 84, §4 row 208).
  if ("assets" in params) {
    const maxShares =
      params.limit ??
      plusSlippage(
        await read(client, () => lp.withdrawWithLimit.staticCall(params.assets, receiver, owner, MaxUint256)),
        bps,
      );
    const args = [params.assets, receiver, owner, maxShares] as const;
    receipt = await send(client, async () =>
      lp.withdrawWithLimit(
        ...args,
        await poolExitGas(client, () => lp.withdrawWithLimit.estimateGas(...args)),
      ),
    );
  } else {
    const minAssets =
      params.limit ??
      lessSlippage(
        await read(client, () => lp.redeemWithLimit.staticCall(params.shares, receiver, owner, 0n)),
        bps,
      );
    const args = [params.shares, receiver, owner, minAssets] as const;
    receipt = await send(client, async () =>
      lp.redeemWithLimit(...args, await poolExitGas(client, () => lp.redeemWithLimit.estimateGas(...args))),
    );
  }
  return { ...movedBy(receipt, pool, "Withdraw"), receipt };
}

function movedBy(
  receipt: ContractTransactionReceipt,
  pool: ReturnType<typeof erc4626>,
  event: "Deposit" | "Withdraw",
): { assets: bigint; shares: bigint } {
  const [log] = eventsOf(receipt, pool.interface, event, String(pool.target));
  if (!log) throw new Error(`no ${event} event of the pool in ${receipt.hash}`);
  return { assets: log.args.assets as bigint, shares: log.args.shares as bigint };
}

/** What `requestRedeem` moved into the pool, and when it can be claimed. */
export interface RedeemRequestReturnType {
  receipt: ContractTransactionReceipt;
  shares: bigint;
  /** Their worth at the request (quote units): the most the claim pays. */
  assets: bigint;
  claimableAt: bigint;
}

/**
 * Asks to redeem `shares` of the signer's unlocked pool shares (all of them by default): they move into
 * the pool now and can be claimed with `claimRedeem` after the pool's `exitDelay`, for two hours, at the
 * lower of the share price now and at the claim. Throws XMarginError "RedeemRequestPending" while a
 * request is pending (claim or cancel it first) and "SharesLocked" for shares within their holding
 * period.
 * @example
 * const { claimableAt } = await requestRedeem(client, {});
 */
export async function requestRedeem(
  client: XMarginClient,
  params: { shares?: bigint },
): Promise<RedeemRequestReturnType> {
  const signer = requireSigner(client);
  const lp = client.contracts.liquidityPool;
  const shares =
    params.shares ?? (await read(client, async () => lp.unlockedShares(await signer.getAddress())));
  const receipt = await send(client, () => lp.requestRedeem(shares));
  const [log] = eventsOf(receipt, lp.interface, "RedeemRequested", String(lp.target));
  if (!log) throw new Error(`no RedeemRequested event of the pool in ${receipt.hash}`);
  return {
    receipt,
    shares: log.args.shares as bigint,
    assets: log.args.assets as bigint,
    claimableAt: log.args.claimableAt as bigint,
  };
}

/** Parameters of `claimRedeem`. */
export interface ClaimRedeemParameters {
  /**
   * Shares of the request to claim; default all of them, or the part the pool's free margin pays now
   * when that is less (`maxClaim`; the rest stays claimable at the request's price until the window ends).
   */
  shares?: bigint;
  /** Who receives the quote; default the signer. */
  receiver?: string;
  /** Fewest assets to accept; default what the claim pays at sending less `slippageBps`. */
  minAssets?: bigint;
  /** How far the share price may fall before the claim lands (default 50 = 0.5%). */
  slippageBps?: number;
}

/**
 * Claims the signer's matured redeem request (or `shares` of it; by default as much of it as the pool's
 * free margin pays now, `getPoolState`'s `redeemRequest.claimableShares`): pays the lower of the share
 * price at the request and now. Throws XMarginError "NotClaimable" outside its window, "ClaimUnavailable" beyond
 * the pool's free margin (or while the vault is paused or a series the pool holds is about to settle),
 * "SlippageExceeded" below `minAssets`.
 * @example
 * const { assets } = await claimRedeem(client, {});
 */
export async function claimRedeem(
  client: XMarginClient,
  params: ClaimRedeemParameters = {},
): Promise<LiquidityReturnType> {
  const signer = requireSigner(client);
  const owner = await signer.getAddress();
  const lp = client.contracts.liquidityPool;
  const shares =
    params.shares ??
    (await read(client, async () => {
      const [request, claimable] = await Promise.all([lp.redeemRequest(owner), lp.maxClaim(owner)]);
      // Nothing claimable now: ask for all, so the chain says why (NotClaimable, ClaimUnavailable).
      return claimable === 0n || claimable > request.shares ? request.shares : claimable;
    }));
  const minAssets =
    params.minAssets ??
    lessSlippage(await read(client, () => lp.previewClaim(owner, shares)), params.slippageBps);
  const args = [shares, params.receiver ?? owner, minAssets] as const;
  // The claim margin-checks the pool's and the backstop's books, every series held (`poolExitGas`).
  const receipt = await send(client, async () =>
    lp.claimRedeem(...args, await poolExitGas(client, () => lp.claimRedeem.estimateGas(...args))),
  );
  return { ...movedBy(receipt, erc4626(String(lp.target), client.provider), "Withdraw"), receipt };
}

/**
 * Takes the signer's redeem request back, at any time the share price can be read (the feed's error,
 * e.g. XMarginError "StalePrice", while a feed under the pool's book fails): its shares return to the
 * signer's balance, at most as many as are worth what the request was (if the share price rose since,
 * the rest are burned: `burned`). A request missed in its claim window is cancelled and asked again.
 */
export async function cancelRedeemRequest(
  client: XMarginClient,
): Promise<{ receipt: ContractTransactionReceipt; shares: bigint; burned: bigint }> {
  requireSigner(client);
  const lp = client.contracts.liquidityPool;
  const receipt = await send(client, () => lp.cancelRedeemRequest());
  const [log] = eventsOf(receipt, lp.interface, "RedeemRequestCancelled", String(lp.target));
  if (!log) throw new Error(`no RedeemRequestCancelled event of the pool in ${receipt.hash}`);
  return { receipt, shares: log.args.shares as bigint, burned: log.args.burned as bigint };
}
