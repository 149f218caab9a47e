/**
 * Typed errors decoded from revert data with the contracts' ABIs. A revert whose selector belongs to
 * none of them (another contract's error, `Error(string)`, a panic, a network failure) is not
 * decoded: actions rethrow it unchanged.
 * @packageDocumentation
 */
import { ErrorFragment, Interface, type Result, decodeBytes32String } from "ethers";
import { IAccounts__factory } from "../../typechain-types/factories/contracts/interfaces/IAccounts__factory";
import { ICollateralVault__factory } from "../../typechain-types/factories/contracts/interfaces/ICollateralVault__factory";
import { IInsuranceFund__factory } from "../../typechain-types/factories/contracts/interfaces/IInsuranceFund__factory";
import { ILiquidityPool__factory } from "../../typechain-types/factories/contracts/interfaces/ILiquidityPool__factory";
import { ILiquidationAuction__factory } from "../../typechain-types/factories/contracts/interfaces/ILiquidationAuction__factory";
import { IMarginEngine__factory } from "../../typechain-types/factories/contracts/interfaces/IMarginEngine__factory";
import { IOracleRouter__factory } from "../../typechain-types/factories/contracts/interfaces/IOracleRouter__factory";
import { IPerpMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IPerpMarket__factory";
import { IOptionMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IOptionMarket__factory";
import { IAccessManaged__factory } from "../../typechain-types/factories/@openzeppelin/contracts/access/manager/IAccessManaged__factory";
import { IERC721Errors__factory } from "../../typechain-types/factories/@openzeppelin/contracts/interfaces/draft-IERC6093.sol/IERC721Errors__factory";
import { ERC20Permit__factory } from "../../typechain-types/factories/@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit__factory";
import { ERC4626__factory } from "../../typechain-types/factories/@openzeppelin/contracts/token/ERC20/extensions/ERC4626__factory";
import { Pausable__factory } from "../../typechain-types/factories/@openzeppelin/contracts/utils/Pausable__factory";
import { ReentrancyGuardTransient__factory } from "../../typechain-types/factories/@openzeppelin/contracts/utils/ReentrancyGuardTransient__factory";
import { SafeCast__factory } from "../../typechain-types/factories/@openzeppelin/contracts/utils/math/SafeCast__factory";
import { formatFixed, formatUsd } from "./format";

/** The ABIs whose custom errors the SDK decodes: the protocol's interfaces and the OpenZeppelin parts. */
type ErrorAbi =
  | typeof IAccounts__factory.abi
  | typeof ICollateralVault__factory.abi
  | typeof IMarginEngine__factory.abi
  | typeof IPerpMarket__factory.abi
  | typeof IOptionMarket__factory.abi
  | typeof ILiquidationAuction__factory.abi
  | typeof IOracleRouter__factory.abi
  | typeof IInsuranceFund__factory.abi
  | typeof ILiquidityPool__factory.abi
  | typeof IAccessManaged__factory.abi
  | typeof IERC721Errors__factory.abi
  | typeof ERC20Permit__factory.abi
  | typeof ERC4626__factory.abi
  | typeof Pausable__factory.abi
  | typeof ReentrancyGuardTransient__factory.abi
  | typeof SafeCast__factory.abi;

const ERROR_ABIS: readonly ErrorAbi[] = [
  IAccounts__factory.abi,
  ICollateralVault__factory.abi,
  IMarginEngine__factory.abi,
  IPerpMarket__factory.abi,
  IOptionMarket__factory.abi,
  ILiquidationAuction__factory.abi,
  IOracleRouter__factory.abi,
  IInsuranceFund__factory.abi,
  ILiquidityPool__factory.abi,
  IAccessManaged__factory.abi,
  IERC721Errors__factory.abi,
  ERC20Permit__factory.abi,
  ERC4626__factory.abi,
  Pausable__factory.abi,
  ReentrancyGuardTransient__factory.abi,
  SafeCast__factory.abi,
];

type ErrorItem = Extract<ErrorAbi[number], { type: "error" }>;

/** Every custom error the SDK decodes, by name. */
export type XMarginErrorName = ErrorItem["name"];

type SolidityValue<T extends string> = T extends `int${string}` | `uint${string}`
  ? bigint
  : T extends "bool"
    ? boolean
    : string;

// One table built once: a distributive conditional over every ABI item per use made each typed error cost
// the type checker most of a second (74 s of `tsc`, most of it in the previews and their tests).
type ErrorArgsByName = {
  [E in ErrorItem as E["name"]]: {
    readonly [P in E["inputs"][number] as P["name"]]: SolidityValue<P["type"]>;
  };
};

/** The decoded arguments of error `N`, by parameter name (integers as bigint, addresses and bytes as hex). */
export type XMarginErrorArgs<N extends XMarginErrorName = XMarginErrorName> = ErrorArgsByName[N];

/** What makes messages readable: token symbols and decimals, the quote token's decimals. */
export interface ErrorContext {
  /** Token metadata by lower-case address. */
  tokens?: ReadonlyMap<string, { symbol: string; decimals: number }>;
  /** Decimals of the quote token (payments, flag rewards). */
  quoteDecimals?: number;
}

/**
 * A decoded custom error of the protocol: `name`, `args`, a readable `message`. Narrow it with
 * `isXMarginError(e, "Name")` to get typed `args`.
 * @example
 * const e = decodeRevertData(data);
 * if (e) console.log(e.name, e.message); // "InsufficientMargin", "equity 834.93 USD is below …"
 */
export class XMarginError extends Error {
  /** The Solidity error's name, e.g. "InsufficientMargin". */
  override readonly name: XMarginErrorName;
  /** Its arguments by parameter name. */
  readonly args: XMarginErrorArgs;
  /** The error's signature, e.g. "InsufficientMargin(uint256,int256,uint256)". */
  readonly signature: string;
  /** The raw revert data. */
  readonly data: string;

  constructor(
    name: XMarginErrorName,
    args: XMarginErrorArgs,
    signature: string,
    data: string,
    message: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = name;
    this.args = args;
    this.signature = signature;
    this.data = data;
  }
}

/** An XMarginError known to be error `N`, with its typed arguments. */
export type XMarginErrorOf<N extends XMarginErrorName> = XMarginError & {
  readonly name: N;
  readonly args: XMarginErrorArgs<N>;
};

/** A contract the action needs and the deployment does not have (`Deployment.contracts`). */
export type MissingContractName = "optionMarket";

/**
 * An action needs a contract the client's deployment does not list, e.g. an option action on a
 * deployment without `contracts.optionMarket`. Thrown before anything is sent or read.
 * @example
 * try { await listOptionSeries(client); }
 * catch (e) { if (e instanceof MissingContractError) showOptionsUnavailable(); }
 */
export class MissingContractError extends Error {
  override readonly name = "MissingContractError";
  /** The missing `Deployment.contracts` key. */
  readonly contract: MissingContractName;

  constructor(contract: MissingContractName) {
    super(`the deployment has no ${contract}: set deployment.contracts.${contract} to use this action`);
    this.contract = contract;
  }
}

/**
 * An expired series no round proves a settlement price for yet: its feed (`OracleRouter.settlementFeed`)
 * has posted no round at or after the time sought, or the first one opens a feed phase that only
 * governance's `settleSeriesAtPhaseStart` can settle on. `settleOptionSeries` and `settleOptionPositions`
 * throw it before anything is sent (the chain would revert `WrongRoundHint` for any round); a later block
 * may settle. `getOptionSettlement` reports the state as "pending".
 * @example
 * try { await settleOptionSeries(client, { seriesId }); }
 * catch (e) { if (e instanceof SettlementPendingError) showAwaitingPrice(e.expiry); }
 */
export class SettlementPendingError extends Error {
  override readonly name = "SettlementPendingError";
  /** The series. */
  readonly seriesId: bigint;
  /** Its expiry, seconds. */
  readonly expiry: bigint;

  constructor(seriesId: bigint, expiry: bigint) {
    super(
      `option series ${seriesId} expired at ${new Date(Number(expiry) * 1000).toISOString()}, but no price feed round at or after it proves a settlement price yet`,
    );
    this.seriesId = seriesId;
    this.expiry = expiry;
  }
}

/**
 * Whether `error` is a decoded XMarginError (optionally: with this name), narrowing its `args`.
 * @example
 * try { await withdraw(client, params); }
 * catch (e) { if (isXMarginError(e, "InsufficientMargin")) console.log(e.args.initialRequirement); }
 */
export function isXMarginError<N extends XMarginErrorName = XMarginErrorName>(
  error: unknown,
  name?: N,
): error is XMarginErrorOf<N> {
  return error instanceof XMarginError && (name === undefined || error.name === name);
}

const iface = buildInterface();

function buildInterface(): Interface {
  const seen = new Set<string>();
  const fragments: ErrorFragment[] = [];
  for (const abi of ERROR_ABIS) {
    for (const item of abi) {
      if (item.type !== "error") continue;
      const fragment = ErrorFragment.from(item);
      // The same error can be declared by several interfaces (UnknownUnderlying, InvalidFraction, ...).
      if (seen.has(fragment.selector)) continue;
      seen.add(fragment.selector);
      fragments.push(fragment);
    }
  }
  return new Interface(fragments);
}

/**
 * The selectors of every error the SDK decodes (4-byte hex), e.g. to recognise protocol reverts.
 * @example
 * knownErrorSelectors().has("0x…"); // true for the protocol's errors
 */
export function knownErrorSelectors(): ReadonlySet<string> {
  const set = new Set<string>();
  iface.forEachError((f) => set.add(f.selector));
  return set;
}

const HEX = /^0x[0-9a-fA-F]*$/;
const BUILT_IN_ERRORS = new Set(["Error", "Panic"]);
const SKIP = new Set(["transaction", "tx", "request", "payload", "params", "calldata"]);

/**
 * Finds revert data in an error thrown by ethers, a wallet or a JSON-RPC node: the first `data` hex
 * string (at least a selector) anywhere in the error's nested `error`, `info`, `cause`, ... objects,
 * preferring one whose selector the SDK knows.
 * @example
 * const data = findRevertData(e); // "0x…" or undefined
 */
export function findRevertData(error: unknown): string | undefined {
  const found: string[] = [];
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): void => {
    if (depth > 8 || value === null || typeof value !== "object" || seen.has(value)) return;
    seen.add(value);
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
      // A transaction's `data` is its calldata, not revert data.
      if (SKIP.has(key)) continue;
      if (key === "data" && typeof inner === "string" && HEX.test(inner) && inner.length >= 10) {
        found.push(inner);
      } else if (typeof inner === "object") {
        visit(inner, depth + 1);
      }
    }
    // Error properties like `cause` and `data` are own properties, but some libraries use getters.
    if (value instanceof Error && value.cause !== undefined) visit(value.cause, depth + 1);
  };
  if (typeof error === "string") return HEX.test(error) && error.length >= 10 ? error : undefined;
  visit(error, 0);
  const known = knownErrorSelectors();
  return found.find((d) => known.has(d.slice(0, 10).toLowerCase())) ?? found[0];
}

function plainArgs(fragment: ErrorFragment, result: Result): Record<string, bigint | boolean | string> {
  const args: Record<string, bigint | boolean | string> = {};
  fragment.inputs.forEach((input, i) => {
    const value: unknown = result[i];
    args[input.name || String(i)] =
      typeof value === "bigint" || typeof value === "boolean" ? value : String(value);
  });
  return args;
}

/**
 * Decodes revert `data` (a hex string) into an XMarginError, or returns undefined when the selector is
 * not one of the protocol's errors.
 * @example
 * const e = decodeRevertData("0x…"); // XMarginError<"InsufficientMargin"> | undefined
 */
export function decodeRevertData(
  data: string,
  context: ErrorContext = {},
  cause?: unknown,
): XMarginError | undefined {
  if (!HEX.test(data) || data.length < 10) return undefined;
  const fragment = iface.getError(data.slice(0, 10).toLowerCase());
  // ethers also knows Solidity's built-in Error(string) and Panic(uint256): a token's `require` string is
  // no protocol error, so it is left to the caller as the node gave it (review round 154, §4 row 497).
  if (!fragment || BUILT_IN_ERRORS.has(fragment.name)) return undefined;
  let result: Result;
  try {
    result = iface.decodeErrorResult(fragment, data);
  } catch {
    return undefined; // right selector, malformed arguments: not ours to interpret
  }
  const args = plainArgs(fragment, result);
  const name = fragment.name as XMarginErrorName;
  return new XMarginError(
    name,
    args as XMarginErrorArgs,
    fragment.format("sighash"),
    data,
    describe(name, args, context),
    cause,
  );
}

/**
 * Decodes the revert inside any thrown error into an XMarginError, or returns undefined (the error is
 * then not a protocol revert and should be handled, or rethrown, as it is).
 * @example
 * try { await client.contracts.vault.withdraw(id, token, amount, to); }
 * catch (e) { throw decodeError(e) ?? e; }
 */
export function decodeError(error: unknown, context: ErrorContext = {}): XMarginError | undefined {
  if (error instanceof XMarginError) return error;
  const data = findRevertData(error);
  return data === undefined ? undefined : decodeRevertData(data, context, error);
}

// ------------------------------------------------------------------------------------------ messages

type Args = Record<string, bigint | boolean | string>;

function big(args: Args, key: string): bigint {
  const v = args[key];
  return typeof v === "bigint" ? v : 0n;
}

function str(args: Args, key: string): string {
  return String(args[key]);
}

function bytes32(value: bigint | boolean | string): string {
  try {
    return decodeBytes32String(String(value));
  } catch {
    return String(value);
  }
}

function tokenLabel(address: string, ctx: ErrorContext): string {
  return ctx.tokens?.get(address.toLowerCase())?.symbol ?? address;
}

function tokenAmount(amount: bigint, address: string, ctx: ErrorContext, other?: bigint): string {
  const info = ctx.tokens?.get(address.toLowerCase());
  if (!info) return `${amount} units of ${address}`;
  // Six decimals, or as many as tell `amount` from the `other` it is compared with: a withdrawal of one
  // wei of WETH beyond the balance read "holds 5.000000 WETH, less than the 5.000000 WETH" (round 158).
  let digits = Math.min(info.decimals, 6);
  while (
    other !== undefined &&
    other !== amount &&
    digits < info.decimals &&
    formatFixed(amount, info.decimals, digits) === formatFixed(other, info.decimals, digits)
  ) {
    digits++;
  }
  return `${formatFixed(amount, info.decimals, digits)} ${info.symbol}`;
}

/** Two amounts of one token compared in a message, with the decimals that tell them apart. */
function tokenAmounts(x: bigint, y: bigint, address: string, ctx: ErrorContext): [string, string] {
  return [tokenAmount(x, address, ctx, y), tokenAmount(y, address, ctx, x)];
}

function quoteAmount(amount: bigint, ctx: ErrorContext): string {
  return ctx.quoteDecimals === undefined
    ? `${amount} quote units`
    : `${formatFixed(amount, ctx.quoteDecimals, 2)} USD`;
}

const usd = (x: bigint): string => `${formatUsd(x)} USD`;
/**
 * What a pool limit of 0 means: the limits are shares of the pool's quote balance, empty on a deployment
 * no LP has deposited into yet, where every new trade meets it (review round 158).
 */
const emptyPool = (limit: bigint): string =>
  limit === 0n ? " (the pool holds no liquidity yet: the limits are shares of its LPs' deposits)" : "";
const price = (x: bigint): string => formatUsd(x, 4);

/**
 * Two prices compared in a message: 4 decimals, or as many as tell them apart. A sale of a 3-hour call
 * quoted at 0.0124 USD read "the fill price 0.0123 is beyond the limit 0.0123" (review round 161).
 */
function prices(x: bigint, y: bigint): [string, string] {
  let digits = 4;
  while (x !== y && digits < 18 && formatUsd(x, digits) === formatUsd(y, digits)) digits++;
  return [formatUsd(x, digits), formatUsd(y, digits)];
}

const MESSAGES: Partial<Record<XMarginErrorName, (a: Args, ctx: ErrorContext) => string>> = {
  // MarginEngine
  InsufficientMargin: (a) =>
    `equity ${usd(big(a, "equityInitial"))} is below the initial requirement ${usd(big(a, "initialRequirement"))}`,
  AccountFrozen: (a) =>
    `account ${str(a, "accountId")} is frozen by a liquidation auction (deposits and risk-reducing trades only)`,
  RiskIncreased: (a) =>
    `the trade unwinds a hedge: the maintenance requirement would rise from ${usd(big(a, "maintenanceBefore"))} to ${usd(big(a, "maintenanceAfter"))} and the account would not meet its initial requirement`,
  InsolventAfterTrade: (a) =>
    `the trade fills worse than the oracle price and would leave account ${str(a, "accountId")} with equity ${usd(big(a, "equityMark"))} at mark: close in smaller steps or wait for the skew to ease`,
  MaintenanceShortfallIncreased: (a) =>
    `the trade fills worse than the oracle price and would leave the account further below maintenance (margin ${usd(big(a, "marginBefore"))} → ${usd(big(a, "marginAfter"))})`,
  TooManyMarkets: (a) => `account ${str(a, "accountId")} already holds the maximum number of markets`,
  IsolatedAccountMarketTaken: (a) => `account ${str(a, "accountId")} is ISOLATED and already holds a market`,
  UnknownUnderlying: (a) => `underlying ${bytes32(a.underlying)} is not listed`,
  // CollateralVault
  ZeroAmount: () => "the amount is zero",
  TokenNotListed: (a, ctx) => `${tokenLabel(str(a, "token"), ctx)} is not listed as collateral`,
  DepositCapExceeded: (a, ctx) => {
    const [total, cap] = tokenAmounts(big(a, "totalAfter"), big(a, "cap"), str(a, "token"), ctx);
    return `the deposit would take total ${tokenLabel(str(a, "token"), ctx)} deposits to ${total}, above the cap of ${cap}`;
  },
  ProtocolAccountCollateral: (a, ctx) =>
    `account ${str(a, "accountId")} is the liquidity pool's or the backstop's: it takes no ${tokenLabel(str(a, "token"), ctx)}, only the quote token`,
  InsufficientBalance: (a, ctx) => {
    const [balance, amount] = tokenAmounts(big(a, "balance"), big(a, "amount"), str(a, "token"), ctx);
    return `account ${str(a, "accountId")} holds ${balance}, less than the ${amount} requested`;
  },
  TransferAmountMismatch: (a, ctx) => {
    const [received, expected] = tokenAmounts(big(a, "received"), big(a, "expected"), str(a, "token"), ctx);
    return `the vault received ${received} instead of ${expected} (fee-on-transfer or rebasing tokens are refused)`;
  },
  InvalidRecipient: (a) => `an operator may withdraw only to the account's owner, not to ${str(a, "to")}`,
  TooManyCollaterals: (a) =>
    `account ${str(a, "accountId")} already holds the maximum number of collateral tokens`,
  InsufficientLiquidity: (a, ctx) => {
    const [available, amount] = tokenAmounts(big(a, "available"), big(a, "amount"), str(a, "token"), ctx);
    return `the vault holds only ${available} for accounts; ${amount} cannot leave until quote debts are repaid`;
  },
  // Accounts
  UnknownAccount: (a) => `account ${str(a, "accountId")} does not exist`,
  NotAuthorized: (a) =>
    `${str(a, "caller")} is not the owner of account ${str(a, "accountId")}, an approved operator of it, or (for trades) a trader with allowance left (a grant spent to 0 ends like a revoked one)`,
  TraderAllowanceExceeded: (a, ctx) =>
    `the trade costs account ${str(a, "accountId")} ${quoteAmount(big(a, "cost"), ctx)} (fees, premium beyond the mark, an option long's time value), more than the ${quoteAmount(big(a, "allowance"), ctx)} left of ${str(a, "trader")}'s trading allowance: the owner can raise it with setTrader, or trade itself`,
  // Both markets (IMarket)
  ZeroSizeDelta: () => "the trade's size is zero (or there is no position to close)",
  DeadlineExpired: (a) =>
    `the trade's deadline ${new Date(Number(big(a, "deadline")) * 1000).toISOString()} has passed`,
  PriceLimitExceeded: (a) => {
    const [fill, limit] = prices(big(a, "fillPrice"), big(a, "limitPrice"));
    return `the fill price ${fill} USD is beyond the limit ${limit} USD (slippage; an option's is its premium per contract)`;
  },
  PoolAccountCannotTrade: () => "the pool account cannot trade",
  RiskIncreasePaused: () => "new risk is paused by the guardian; only risk-reducing trades are accepted",
  OpenInterestCapExceeded: (a) =>
    `the trade would take ${a.isLong ? "long" : "short"} open interest of market (or option series) ${str(a, "marketId")} to ${formatFixed(big(a, "openInterest"), 18, 4)}, above the cap of ${formatFixed(big(a, "cap"), 18, 4)}`,
  // PerpMarket
  UnknownMarket: (a) => `perp market ${str(a, "marketId")} does not exist`,
  PoolDeltaLimitExceeded: (a) =>
    `the trade would take the pool's delta in market ${str(a, "marketId")} to ${usd(big(a, "poolDelta"))}, above its limit of ${usd(big(a, "limit"))}${emptyPool(big(a, "limit"))}`,
  InvalidFillPrice: (a) => `the skew premium would make the fill price ${price(big(a, "fillPrice"))}`,
  // OptionMarket
  UnknownSeries: (a) => `option series ${str(a, "seriesId")} does not exist`,
  SeriesExpired: (a) =>
    `option series ${str(a, "seriesId")} expired at ${new Date(Number(big(a, "expiry")) * 1000).toISOString()}: it can only be settled`,
  SeriesAlreadySettled: (a) => `option series ${str(a, "seriesId")} is already settled`,
  SeriesNotExpired: (a) =>
    `option series ${str(a, "seriesId")} expires at ${new Date(Number(big(a, "expiry")) * 1000).toISOString()}`,
  SeriesNotSettled: (a) => `option series ${str(a, "seriesId")} has no settlement price yet`,
  PoolVegaLimitExceeded: (a) =>
    `the trade would take the pool's net vega on ${bytes32(a.underlying)} to ${usd(big(a, "poolVega"))} per 1.0 of volatility, above its limit of ${usd(big(a, "limit"))}${emptyPool(big(a, "limit"))}`,
  PoolOptionDeltaLimitExceeded: (a) =>
    `the trade would take a side of the traders' option delta on ${bytes32(a.underlying)} to ${usd(big(a, "poolDelta"))} of notional, above the pool's limit of ${usd(big(a, "limit"))}${emptyPool(big(a, "limit"))}`,
  NoPosition: (a) =>
    `account ${str(a, "accountId")} holds no position in option series ${str(a, "seriesId")}`,
  // LiquidationAuction
  AccountHealthy: (a) =>
    `account ${str(a, "accountId")} is not liquidatable: maintenance equity ${usd(big(a, "equityMaintenance"))} covers the requirement ${usd(big(a, "maintenanceRequirement"))}`,
  AuctionAlreadyActive: (a) => `an auction of account ${str(a, "accountId")} is already running`,
  AuctionNotActive: (a) => `no auction of account ${str(a, "accountId")} is running`,
  InvalidFraction: (a) => `fraction ${formatFixed(big(a, "fraction"), 18, 4)} is not in (0, 1]`,
  SelfBid: (a) => `account ${str(a, "accountId")} cannot bid on itself`,
  PaymentAboveLimit: (a, ctx) =>
    `the payment ${quoteAmount(big(a, "payment"), ctx)} is above the limit ${quoteAmount(big(a, "maxPayment"), ctx)}`,
  PoolNotLiquidatable: () => "the pool account is never auctioned",
  AccountNotHealthy: (a) => `account ${str(a, "accountId")} is still liquidatable`,
  AbsorbTooEarly: (a) =>
    `the auction of account ${str(a, "accountId")} is open to bidders until ${new Date(Number(big(a, "availableAt")) * 1000).toISOString()}; the backstop may absorb it from then`,
  BidderHasPositions: (a) =>
    `bidAndClose needs a bidder account without positions; account ${str(a, "bidderAccountId")} has some`,
  BidAndCloseLoss: (a) =>
    `bidAndClose would leave account ${str(a, "bidderAccountId")} ${usd(big(a, "loss"))} worse off at the oracle: closing the slice costs more than it gave (a trade just before may have moved the skew against the closes)`,
  // OracleRouter
  StalePrice: (a) =>
    `the price feed ${str(a, "aggregator")} is stale (updated ${new Date(Number(big(a, "updatedAt")) * 1000).toISOString()}, heartbeat ${str(a, "heartbeat")} s)`,
  InvalidPrice: (a) => `the price feed ${str(a, "aggregator")} answered ${str(a, "answer")}`,
  PriceOutOfBounds: (a) =>
    `the price of ${bytes32(a.asset)} (${price(big(a, "price"))}) is outside its bounds [${price(big(a, "minPrice"))}, ${price(big(a, "maxPrice"))}]`,
  PriceDeviation: (a) =>
    `the price sources of ${bytes32(a.asset)} disagree: ${price(big(a, "priceA"))} vs ${price(big(a, "priceB"))}`,
  SequencerDown: () => "the L2 sequencer is down",
  GracePeriodNotOver: (a) =>
    `the L2 sequencer is back up since ${new Date(Number(big(a, "upSince")) * 1000).toISOString()}; its grace period has not elapsed`,
  UnknownAsset: (a) => `the oracle has no feed for ${bytes32(a.asset)}`,
  // OpenZeppelin
  AccessManagedUnauthorized: (a) => `${str(a, "caller")} may not call this function`,
  EnforcedPause: () => "the contract is paused",
  ERC20InsufficientAllowance: (a) =>
    `allowance ${str(a, "allowance")} of ${str(a, "spender")} is below the ${str(a, "needed")} needed`,
  ERC20InsufficientBalance: (a) =>
    `${str(a, "sender")} holds ${str(a, "balance")} token units, less than the ${str(a, "needed")} needed`,
  ERC2612ExpiredSignature: (a) =>
    `the permit expired at ${new Date(Number(big(a, "deadline")) * 1000).toISOString()}`,
  ERC2612InvalidSigner: (a) =>
    `the permit was signed by ${str(a, "signer")}, not by the owner ${str(a, "owner")}`,
  ERC721NonexistentToken: (a) => `account ${str(a, "tokenId")} does not exist`,
  ERC4626ExceededMaxDeposit: (a, ctx) =>
    `the pool accepts at most ${quoteAmount(big(a, "max"), ctx)} now (none while it is under water or an option series it holds is about to settle)`,
  ERC4626ExceededMaxMint: (a) =>
    `the pool mints at most ${str(a, "max")} shares now (none while it is under water or an option series it holds is about to settle)`,
  ERC4626ExceededMaxWithdraw: (a, ctx) =>
    `${str(a, "owner")} may withdraw at most ${quoteAmount(big(a, "max"), ctx)} now: its shares' value, capped by the pool's free margin and the quote traders owe it (none while a series it holds is about to settle)`,
  ERC4626ExceededMaxRedeem: (a) =>
    `${str(a, "owner")} may redeem at most ${str(a, "max")} shares now: capped by the pool's free margin and the quote traders owe it (none while a series it holds is about to settle)`,
  InvalidCollateralPurchase: (a, ctx) =>
    `the backstop sells none of ${tokenLabel(str(a, "token"), ctx)} in that amount: it holds ${tokenAmount(big(a, "available"), str(a, "token"), ctx)} (never the quote token), and the amount must be above 0`,
  PaymentAboveQuoteBalance: (a, ctx) =>
    `account ${str(a, "buyerAccountId")} holds ${quoteAmount(big(a, "quoteBalance") > 0n ? big(a, "quoteBalance") : 0n, ctx)} of quote, less than the ${quoteAmount(big(a, "payment"), ctx)} the purchase costs: the backstop sells for cash, not on credit`,
  BackstopSalePaused: () => "the backstop sells no collateral while the protocol is paused",
  RedeemRequestRequired: (a) =>
    `the pool pays LPs out through a request claimed ${str(a, "exitDelay")} s later (requestRedeem, then claimRedeem), not at once`,
  RedeemRequestPending: (a) =>
    `${str(a, "owner")} already has a redeem request (claimable from ${new Date(Number(big(a, "claimableAt")) * 1000).toISOString()}): claim or cancel it first`,
  NotClaimable: (a) =>
    `the redeem request of ${str(a, "owner")} can be claimed only from ${new Date(Number(big(a, "claimableAt")) * 1000).toISOString()} to ${new Date(Number(big(a, "claimableUntil")) * 1000).toISOString()}`,
  ClaimUnavailable: (a, ctx) =>
    `the pool can pay out ${quoteAmount(big(a, "available"), ctx)} now, less than the ${quoteAmount(big(a, "assets"), ctx)} claimed: its free margin (none while the vault is paused or a series it holds is about to settle)`,
  SharesLocked: (a) =>
    `${str(a, "owner")} may move ${str(a, "unlocked")} of its pool shares now, not ${str(a, "amount")}: the rest are within the pool's holding period until ${new Date(Number(big(a, "unlocksAt")) * 1000).toISOString()}`,
};

function describe(name: XMarginErrorName, args: Args, ctx: ErrorContext): string {
  const format = MESSAGES[name];
  if (format) return format(args, ctx);
  const list = Object.entries(args)
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join(", ");
  return `${name}(${list})`;
}

/**
 * Builds the XMarginError the contracts would raise, from its name and argument values in ABI order
 * (used by `simulate` to predict reverts).
 * @example
 * makeXMarginError("ZeroAmount", []).message; // "the amount is zero"
 */
export function makeXMarginError<N extends XMarginErrorName>(
  name: N,
  values: readonly (bigint | boolean | string)[],
  context: ErrorContext = {},
): XMarginErrorOf<N> {
  const data = iface.encodeErrorResult(name, values);
  return decodeRevertData(data, context) as XMarginErrorOf<N>;
}
