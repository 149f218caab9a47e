import { ethers } from "hardhat";
import type { BaseContract, Interface } from "ethers";
import { accountHealth, getAccountState, toHealth, type Health, type XMarginClient } from "../../sdk/src";
import type { MarginEngine } from "../../typechain-types";
import type { System } from "./system";

/**
 * The six invariants of ARCHITECTURE.md as reusable checks. Each throws an `InvariantViolation` naming
 * the invariant, so a property test fails with a readable message and a campaign script can count
 * violations by number.
 *   1. every token: vault balance = Σ account balances (the pool and the insurance fund hold theirs in
 *      their own margin accounts); and the vault's `quoteDebt` = Σ of the negative quote balances;
 *   2. Σ PnL over all accounts, the pool included, = −fees paid to the insurance fund, up to rounding
 *      dust the protocol keeps (never in the accounts' favour); the pool's perp value leaves out the
 *      skew premium a close-out would pay back, which enters the identity explicitly;
 *   3. a healthy account (equity_MM ≥ MM) can never be liquidated;
 *   4. every successful risk-increasing action leaves equity_IM ≥ IM;
 *   5. a bid never lowers the liquidated account's health ratio and never leaves the bidder below IM;
 *   6. the SDK's health numbers equal the engine's.
 */
export class InvariantViolation extends Error {
  constructor(
    readonly invariant: 1 | 2 | 3 | 4 | 5 | 6,
    message: string,
  ) {
    super(`invariant ${invariant}: ${message}`);
    this.name = "InvariantViolation";
  }
}

export type HealthLike = Pick<
  Health,
  "equityInitial" | "equityMaintenance" | "equityMark" | "initialRequirement" | "maintenanceRequirement"
> & { healthRatio: bigint };

/** LiquidationAuction._liquidatable: equity_MM < MM. */
export const isLiquidatable = (h: Pick<Health, "equityMaintenance" | "maintenanceRequirement">): boolean =>
  h.equityMaintenance < 0n || h.equityMaintenance < h.maintenanceRequirement;

/** equity_IM ≥ IM. */
export const meetsInitial = (h: Pick<Health, "equityInitial" | "initialRequirement">): boolean =>
  h.equityInitial >= 0n && h.equityInitial >= h.initialRequirement;

/** Invariant 4 for one account after a successful risk-increasing action. */
export async function checkInitialMargin(
  engine: MarginEngine,
  accountId: bigint,
  action: string,
): Promise<void> {
  const h = await engine.health(accountId);
  if (!meetsInitial(h)) {
    throw new InvariantViolation(
      4,
      `${action} left account ${accountId} with equity_IM ${h.equityInitial} < IM ${h.initialRequirement}`,
    );
  }
}

/** Invariant 5: `before` and `after` are the liquidated account's health around a successful bid. */
export async function checkBid(
  engine: MarginEngine,
  accountId: bigint,
  bidderAccountId: bigint,
  before: HealthLike,
): Promise<void> {
  const [after, bidder] = await Promise.all([engine.health(accountId), engine.health(bidderAccountId)]);
  if (after.healthRatio < before.healthRatio) {
    throw new InvariantViolation(
      5,
      `bid on ${accountId} lowered its health ratio from ${before.healthRatio} to ${after.healthRatio}`,
    );
  }
  if (!meetsInitial(bidder)) {
    throw new InvariantViolation(
      5,
      `bid left bidder ${bidderAccountId} with equity_IM ${bidder.equityInitial} < IM ${bidder.initialRequirement}`,
    );
  }
}

/** Invariant 3: an auction action that succeeded on an account the engine called healthy just before. */
export function checkLiquidatedWasUnhealthy(accountId: bigint, before: HealthLike, action: string): void {
  if (!isLiquidatable(before)) {
    throw new InvariantViolation(
      3,
      `${action} succeeded on healthy account ${accountId} (equity_MM ${before.equityMaintenance} ≥ MM ${before.maintenanceRequirement})`,
    );
  }
}

/** What the ledger checks (1, 2) read: every account's balances and health, in one round of calls. */
export interface LedgerSnapshot {
  ids: bigint[];
  healths: HealthLike[];
  /** Balance per token address (lower case) per account, in the order of `ids`. */
  balances: Map<string, bigint[]>;
  /** Token balance the vault contract holds, per token address (lower case). */
  vaultHoldings: Map<string, bigint>;
  /** The quote token's address (lower case) and the vault's running total of quote debt. */
  quoteToken: string;
  quoteDebt: bigint;
}

type TokenLike = BaseContract & { balanceOf(owner: string): Promise<bigint> };

/**
 * Reads every account's health and balances. `cachedBalances` (per token address, lower case, per
 * account in `ids` order) replaces the per-account balance reads when the caller tracks balances from
 * the vault's events (see `BalanceTracker`), which turns ~2·accounts calls into none.
 */
export async function readLedger(
  sys: Pick<System, "engine" | "vault">,
  ids: bigint[],
  tokens: TokenLike[],
  cachedBalances?: Map<string, bigint[]>,
): Promise<LedgerSnapshot> {
  const vaultAddress = await sys.vault.getAddress();
  const addresses = await Promise.all(tokens.map(async (t) => (await t.getAddress()).toLowerCase()));
  const [quoteToken, quoteDebt, healths, holdings, ...perToken] = await Promise.all([
    sys.vault.quoteToken(),
    sys.vault.quoteDebt(),
    sys.engine.healthMany(ids),
    Promise.all(tokens.map((t) => t.balanceOf(vaultAddress))),
    ...addresses.map((token) =>
      cachedBalances
        ? Promise.resolve(cachedBalances.get(token)!)
        : Promise.all(ids.map((id) => sys.vault.balanceOf(id, token))),
    ),
  ]);
  return {
    ids,
    healths: healths.map((h) => toHealth(h)),
    balances: new Map(addresses.map((a, i) => [a, perToken[i]])),
    vaultHoldings: new Map(addresses.map((a, i) => [a, holdings[i]])),
    quoteToken: quoteToken.toLowerCase(),
    quoteDebt,
  };
}

/** Invariant 1 (and the vault's quote-debt total) on a snapshot that covers every account (ids 1..accountCount). */
export function checkTokenConservation(ledger: LedgerSnapshot): void {
  for (const [token, balances] of ledger.balances) {
    const sum = balances.reduce((a, b) => a + b, 0n);
    const held = ledger.vaultHoldings.get(token)!;
    if (sum !== held) {
      throw new InvariantViolation(1, `token ${token}: vault holds ${held}, accounts sum to ${sum}`);
    }
  }
  // The pool's withdrawals keep back the vault's running total of quote debt, so it must be exact.
  const quoteBalances = ledger.balances.get(ledger.quoteToken);
  if (quoteBalances) {
    const debt = quoteBalances.reduce((a, b) => (b < 0n ? a - b : a), 0n);
    if (debt !== ledger.quoteDebt) {
      throw new InvariantViolation(1, `quote debt recorded ${ledger.quoteDebt}, accounts owe ${debt}`);
    }
  }
}

export interface ValueConservationInput {
  ledger: LedgerSnapshot;
  /** The quote token (its balances are PnL) and its WAD scale (10^(18 − decimals)). */
  quote: string;
  quoteToWad: bigint;
  /** Non-quote collateral tokens and their oracle prices (WAD per whole token) with decimals. */
  collateral: { token: string; price: bigint; decimals: number }[];
  /** Quote deposited minus withdrawn (and paid out, e.g. flag rewards) per account, quote units. */
  netQuote: Map<bigint, bigint>;
  insuranceAccountId: bigint;
  /** Largest rounding dust tolerated (USD WAD); the protocol keeps it, so the sum is ≤ 0. */
  dust: bigint;
  /**
   * Σ over every account, the pool included, of its option positions' values (already inside the
   * ledger's equityMark). Option sizes net to zero across accounts, so at one common price this would be
   * 0; OptionMarket marks each side at its own bound instead (a long at the lower one, a short at the
   * upper one: intrinsic vs the one-hour price in the last hour, intrinsic vs intrinsic + min(S, K)
   * outside the model's domain), so the sum is the valuation band the protocol keeps. It must be ≤ 0
   * (never in the accounts' favour) and is taken out of the conservation identity, which then holds
   * to the dust on quote flows and perps.
   */
  optionMarks?: bigint;
  /**
   * Σ over perp markets of the skew premium a full close-out would pay traders back,
   * spot·skew²/(2·skewScale) rounded down (`unwindPremiumOf` in test/shared/perps.ts). The pool's value
   * leaves it out (PerpMarket._poolExposure rounds it up), so the pool holds exactly minus the traders'
   * value less this: it is added back here, which keeps the identity to the dust.
   */
  closeOutPremiums?: bigint;
}

/**
 * Invariant 2. An account's PnL = (quote balance − net quote deposits) + Σ position values, where the
 * position values are equityMark − collateral.mark and collateral.mark is recomputed here exactly as
 * CollateralVault does it (quote at full value: the quote feed is pinned at 1; other tokens
 * balance·price, rounded down). Σ PnL over every account but the fund's = −(fund balance − fund net
 * deposits), up to `dust` in the protocol's favour. Returns the discrepancy (≤ 0).
 */
export function checkValueConservation(input: ValueConservationInput): bigint {
  const { ledger, quoteToWad } = input;
  const quoteBalances = ledger.balances.get(input.quote.toLowerCase())!;
  let pnl = 0n;
  let fees = 0n;
  ledger.ids.forEach((id, i) => {
    const quotePnl = (quoteBalances[i] - (input.netQuote.get(id) ?? 0n)) * quoteToWad;
    if (id === input.insuranceAccountId) {
      fees = quotePnl;
      return;
    }
    let collateralMark = quoteBalances[i] * quoteToWad;
    for (const c of input.collateral) {
      const balance = ledger.balances.get(c.token.toLowerCase())![i];
      collateralMark += (balance * c.price) / 10n ** BigInt(c.decimals);
    }
    pnl += quotePnl + (ledger.healths[i].equityMark - collateralMark);
  });
  const marks = input.optionMarks ?? 0n;
  if (marks > 0n) {
    throw new InvariantViolation(2, `option marks sum to ${marks} > 0: valued in the accounts' favour`);
  }
  const premiums = input.closeOutPremiums ?? 0n;
  if (premiums < 0n) {
    throw new InvariantViolation(2, `close-out premiums sum to ${premiums} < 0`);
  }
  const discrepancy = pnl + fees - marks + premiums;
  if (discrepancy > 0n || discrepancy < -input.dust) {
    throw new InvariantViolation(
      2,
      `Σ PnL (${pnl}) + insurance fees (${fees}) − option marks (${marks}) + close-out premiums (${premiums}) = ${discrepancy}, outside [−${input.dust}, 0]`,
    );
  }
  return discrepancy;
}

/**
 * Invariant 6 for one account: the SDK's pure model over `getAccountState` equals `engine.health` at
 * the same block, every field, whatever the account holds (perps, options, expired series).
 */
export async function checkSdkHealth(
  client: XMarginClient,
  engine: MarginEngine,
  accountId: bigint,
): Promise<void> {
  const blockTag = await ethers.provider.getBlockNumber();
  const [state, chain] = await Promise.all([
    getAccountState(client, { accountId, blockTag }),
    engine.health(accountId, { blockTag }),
  ]);
  const sdk = toHealth(accountHealth(state));
  const onChain = toHealth(chain);
  for (const key of Object.keys(onChain) as (keyof Health)[]) {
    if (sdk[key] !== onChain[key]) {
      throw new InvariantViolation(
        6,
        `account ${accountId} at block ${blockTag}: SDK ${key} ${sdk[key]} ≠ engine ${onChain[key]}`,
      );
    }
  }
}

/**
 * The name of the custom error a call reverted with, decoded against `interfaces` (every protocol
 * contract declares its errors in its interface), or "revert" / the message when none matches.
 */
export function revertName(error: unknown, interfaces: Interface[]): string {
  const data = findData(error) ?? returnDataInMessage(error);
  if (data && data.length >= 10) {
    for (const iface of interfaces) {
      try {
        const parsed = iface.parseError(data);
        if (parsed) return parsed.name;
      } catch {
        // not this interface's error
      }
    }
    return `unknown(${data.slice(0, 10)})`;
  }
  const message = error instanceof Error ? error.message : String(error);
  const panic = /reverted with panic code (0x[0-9a-f]+)/i.exec(message);
  if (panic) return `Panic(${panic[1]})`;
  return message.split("\n")[0].slice(0, 120);
}

/**
 * Hardhat names a custom error from its own trace of the contract, which it cannot build for a contract
 * compiled with the IR pipeline (OptionMarket): it then quotes the raw return data in the message.
 */
function returnDataInMessage(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  return /unrecognized custom error \(return data: (0x[0-9a-f]+)\)/i.exec(message)?.[1];
}

function findData(error: unknown): string | undefined {
  let e = error as { data?: unknown; error?: unknown; info?: { error?: { data?: unknown } } } | undefined;
  for (let depth = 0; e && depth < 5; depth++) {
    if (typeof e.data === "string" && e.data.startsWith("0x")) return e.data;
    if (typeof e.info?.error?.data === "string") return e.info.error.data as string;
    e = e.error as typeof e;
  }
  return undefined;
}

/**
 * Account balances kept from the vault's events (Deposited, Withdrawn, BalanceTransferred,
 * QuotePaidOut): every balance change emits one, so the tracker equals the chain as long as no change
 * goes unannounced, which `verify` checks against a full read.
 */
export class BalanceTracker {
  private readonly balances = new Map<string, Map<bigint, bigint>>();

  constructor(
    private readonly vault: Pick<System["vault"], "interface" | "balanceOf">,
    private readonly vaultAddress: string,
    readonly tokens: string[],
  ) {
    for (const t of tokens) this.balances.set(t.toLowerCase(), new Map());
  }

  /** Re-reads every balance of `ids` from the chain. */
  async load(ids: bigint[]): Promise<void> {
    for (const token of this.balances.keys()) {
      const values = await Promise.all(ids.map((id) => this.vault.balanceOf(id, token)));
      const map = new Map<bigint, bigint>();
      ids.forEach((id, i) => map.set(id, values[i]));
      this.balances.set(token, map);
    }
  }

  /**
   * Follows `token` from now on, every balance 0: a token listed after the tracker was made (the
   * campaign's listings mid-run), which no account can hold before its listing.
   */
  track(token: string): void {
    if (!this.balances.has(token.toLowerCase())) this.balances.set(token.toLowerCase(), new Map());
  }

  /** Applies the vault events of a receipt. */
  apply(logs: readonly { address: string; topics: readonly string[]; data: string }[]): void {
    for (const log of logs) {
      if (log.address.toLowerCase() !== this.vaultAddress) continue;
      const parsed = this.vault.interface.parseLog(log);
      if (!parsed) continue;
      const a = parsed.args as unknown as {
        token: string;
        accountId: bigint;
        fromAccountId: bigint;
        toAccountId: bigint;
        amount: bigint;
      };
      switch (parsed.name) {
        case "Deposited":
          this.add(a.token, a.accountId, a.amount);
          break;
        case "Withdrawn":
          this.add(a.token, a.accountId, -a.amount);
          break;
        case "BalanceTransferred":
          this.add(a.token, a.fromAccountId, -a.amount);
          this.add(a.token, a.toAccountId, a.amount);
          break;
        case "QuotePaidOut":
          this.add(this.tokens[0], a.accountId, -a.amount);
          break;
      }
    }
  }

  /** Balances per token (lower case) in `ids` order. */
  snapshot(ids: bigint[]): Map<string, bigint[]> {
    const out = new Map<string, bigint[]>();
    for (const [token, map] of this.balances)
      out.set(
        token,
        ids.map((id) => map.get(id) ?? 0n),
      );
    return out;
  }

  /** Invariant 1's bookkeeping half: the event-derived balances equal the chain's, account by account. */
  async verify(ids: bigint[]): Promise<void> {
    for (const [token, map] of this.balances) {
      const values = await Promise.all(ids.map((id) => this.vault.balanceOf(id, token)));
      ids.forEach((id, i) => {
        if ((map.get(id) ?? 0n) !== values[i]) {
          throw new InvariantViolation(
            1,
            `account ${id} token ${token}: balance ${values[i]} but its events add up to ${map.get(id) ?? 0n}`,
          );
        }
      });
    }
  }

  private add(token: string, id: bigint, delta: bigint): void {
    const map = this.balances.get(token.toLowerCase());
    if (!map) return;
    map.set(id, (map.get(id) ?? 0n) + delta);
  }
}
