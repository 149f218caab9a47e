import { expect } from "chai";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  type AccountState,
  type PerpMarketState,
  type XMarginClient,
  accountHealth,
  deposit,
  getAccountState,
  marketKey,
  modifyPosition,
  perpQuote,
  preview,
  toHealth,
  withdraw,
} from "../../sdk/src";
import { MarginMode, WAD, deploySystem, openAccount, type System } from "../shared/system";
import { advanceTo, applyMarketMove, type MarketMove } from "../shared/perps";
import { expectPredictedRevert, sdkClient } from "../shared/sdk";

/**
 * Differential test of the SDK's pure model against the chain. Random scripts (fast-check, fixed seed)
 * open CROSS and ISOLATED accounts with several collaterals (USDC 6 decimals, WETH 18, WBTC 8, an
 * ERC-4626 over WETH whose rate moves with simulated yield), trade ETH and BTC perps, move prices
 * (USDC too) and volatilities, and let time pass so funding accrues. After every step the touched
 * accounts (all of them after a price, volatility or time step) are compared:
 *   - accountHealth(getAccountState(...)) equals engine.health at the same block, every field, exactly;
 *   - perpQuote on the snapshot equals perps.quoteTrade (fill price and fee), exactly;
 *   - preview of a trade or withdrawal at the next block's timestamp equals engine.health after it is
 *     sent, exactly, and the fill, fee, realised PnL and funding equal the PositionModified event; when
 *     the preview predicts a revert, the chain reverts with that error and nothing else.
 * The model is integer math with the contracts' rounding, so no tolerance is needed: every comparison
 * is exact (0 wei difference).
 */

const TOKENS = ["USDC", "WETH", "WBTC", "sWETH"] as const;
type TokenSymbol = (typeof TOKENS)[number];
const UNITS: Record<TokenSymbol, bigint> = { USDC: 10n ** 6n, WETH: WAD, WBTC: 10n ** 8n, sWETH: WAD };

type Step =
  | { kind: "open"; owner: number; isolated: boolean; deposits: [TokenSymbol, number][] }
  | { kind: "deposit"; account: number; token: TokenSymbol; amount: number }
  | { kind: "withdraw"; account: number; token: TokenSymbol; bps: number }
  | { kind: "trade"; account: number; market: "ETH" | "BTC"; size: bigint; dt: number }
  | MarketMove
  | { kind: "yield"; weth: number };

const token = fc.constantFrom(...TOKENS);
// Amounts in whole-ish units, scaled per token below (kept small enough for the pool and OI caps).
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("open" as const),
      owner: fc.nat(2),
      isolated: fc.boolean(),
      deposits: fc.array(fc.tuple(token, fc.integer({ min: 1, max: 1000 })), { minLength: 1, maxLength: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("deposit" as const),
      account: fc.nat(),
      token,
      amount: fc.integer({ min: 1, max: 1000 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("withdraw" as const),
      account: fc.nat(),
      token,
      bps: fc.integer({ min: 1, max: 12_000 }),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.oneof(
      fc.record({
        kind: fc.constant("trade" as const),
        account: fc.nat(),
        market: fc.constant("ETH" as const),
        size: fc.bigInt({ min: -25n * WAD, max: 25n * WAD }),
        dt: fc.integer({ min: 0, max: 1800 }),
      }),
      fc.record({
        kind: fc.constant("trade" as const),
        account: fc.nat(),
        market: fc.constant("BTC" as const),
        size: fc.bigInt({ min: -WAD, max: WAD }),
        dt: fc.integer({ min: 0, max: 1800 }),
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("price" as const),
      asset: fc.constantFrom("ETH" as const, "BTC" as const, "USDC" as const),
      permille: fc.integer({ min: 700, max: 1300 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("vol" as const),
      asset: fc.constantFrom("ETH" as const, "BTC" as const),
      percent: fc.integer({ min: 10, max: 150 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("time" as const),
      dt: fc.integer({ min: 60, max: 3 * 86_400 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("yield" as const), weth: fc.integer({ min: 1, max: 100 }) }),
  },
);

/** Two accounts to start with, then the random steps. */
/** Scripts drawn from the fixed seed: 8 in `npm test` (its 10 minutes); DIFFERENTIAL_RUNS draws more. */
const RUNS = Number(process.env.DIFFERENTIAL_RUNS ?? 8);

const scriptArb = fc.tuple(
  fc.array(
    stepArb.filter((s) => s.kind === "open"),
    { minLength: 2, maxLength: 2 },
  ),
  fc.array(stepArb, { minLength: 18, maxLength: 26 }),
);

interface Account {
  id: bigint;
  owner: HardhatEthersSigner;
  client: XMarginClient;
}

/** Token amount for a step's "amount" (1..1000): up to 100k USDC, 30 WETH, 1.5 WBTC, 30 sWETH. */
function scaled(t: TokenSymbol, amount: number): bigint {
  const perStep = { USDC: 100n, WETH: 3n, WBTC: 15n, sWETH: 3n }[t]; // per 1/1000 of the max, in tenths
  return (BigInt(amount) * perStep * UNITS[t]) / 10n;
}

async function fund(
  sys: System,
  owner: HardhatEthersSigner,
  t: TokenSymbol,
  amount: bigint,
): Promise<string> {
  if (t === "sWETH") {
    // Shares of the ERC-4626: deposit WETH into it first.
    await (await sys.weth.mint(owner.address, amount * 2n)).wait();
    await (await sys.weth.connect(owner).approve(await sys.sweth.getAddress(), amount * 2n)).wait();
    await (await sys.sweth.connect(owner).deposit(amount * 2n, owner.address)).wait();
    return sys.sweth.getAddress();
  }
  const contract = { USDC: sys.usdc, WETH: sys.weth, WBTC: sys.wbtc }[t];
  await (await contract.mint(owner.address, amount)).wait();
  return contract.getAddress();
}

/** Asserts the pure health of `id` equals the engine's at the same block; returns the snapshot. */
async function expectSameHealth(account: Account, sys: System): Promise<AccountState> {
  const state = await getAccountState(account.client, { accountId: account.id });
  const chain = await sys.engine.health(account.id, { blockTag: state.blockNumber });
  expect(toHealth(accountHealth(state)), `account ${account.id} at block ${state.blockNumber}`).to.deep.equal(
    toHealth(chain),
  );
  return state;
}

async function chainHealth(sys: System, id: bigint) {
  return toHealth(await sys.engine.health(id));
}

/** The system with high interest rates (30% at no utilisation), so quote debts accrue between steps. */
async function deployWithInterest(): Promise<System> {
  const sys = await deploySystem();
  const pct = (n: bigint) => n * 10n ** 16n;
  await sys.vault.setInterestRateModel({
    baseRate: pct(30n),
    kinkRate: pct(50n),
    maxRate: pct(200n),
    kinkUtilization: pct(80n),
  });
  // Shocked weights as deployed (review round 147): WETH, sWETH and WBTC under ETH or BTC positions count
  // at them, and the SDK mirrors the credits and their cap at the shock floors.
  await sys.vault.setShockedWeight(sys.weth, pct(99n));
  await sys.vault.setShockedWeight(sys.sweth, pct(95n));
  await sys.vault.setShockedWeight(sys.wbtc, pct(98n));
  return sys;
}

describe("SDK differential: pure health and previews against the engine", function () {
  it("matches engine.health, quoteTrade and post-trade health exactly over ≥ 200 random account states", async function () {
    this.timeout(900_000);
    const stats = { states: 0, quotes: 0, trades: 0, predictedReverts: 0, withdrawals: 0, debtStates: 0 };
    const seen = { isolated: 0, erc4626: 0, eth: 0, btc: 0, both: 0, funding: 0, interest: 0 };

    await fc.assert(
      fc.asyncProperty(scriptArb, async ([opening, steps]) => {
        const sys = await loadFixture(deployWithInterest);
        const owners = [sys.alice, sys.bob, sys.carol];
        const clients = await Promise.all(owners.map((o) => sdkClient(sys, o)));
        const accounts: Account[] = [];
        const check = async (list: Account[]): Promise<void> => {
          for (const a of list) {
            const state = await expectSameHealth(a, sys);
            stats.states += 1;
            const kinds = new Set(
              state.positions.map((p) => state.markets[marketKey(p.market, p.marketId)].underlying),
            );
            if (kinds.size === 2) seen.both += 1;
            if (state.collateral.some((c) => c.balance < 0n)) stats.debtStates += 1;
            if (state.collateral.some((c) => c.debt && c.balance < c.debt.recordedBalance))
              seen.interest += 1;
            if (state.collateral.some((c) => c.erc4626 && c.balance > 0n)) seen.erc4626 += 1;
            if (state.marginMode === "isolated") seen.isolated += 1;
            if (
              state.positions.some(
                (p) =>
                  p.kind === "perp" &&
                  p.fundingIndex !==
                    (state.markets[marketKey(p.market, p.marketId)] as PerpMarketState).fundingIndex,
              )
            ) {
              seen.funding += 1;
            }
          }
        };
        const pick = (i: number): Account => accounts[i % accounts.length];

        for (const step of [...opening, ...steps]) {
          switch (step.kind) {
            case "open": {
              if (step.kind !== "open" || accounts.length >= 6) break;
              const owner = owners[step.owner];
              const id = await openAccount(
                sys,
                owner,
                step.isolated ? MarginMode.ISOLATED : MarginMode.CROSS,
              );
              const account = { id, owner, client: clients[step.owner] };
              accounts.push(account);
              for (const [t, amount] of step.deposits) {
                const address = await fund(sys, owner, t, scaled(t, amount));
                await deposit(account.client, {
                  accountId: id,
                  token: address,
                  amount: scaled(t, amount),
                  approval: "approve",
                });
              }
              await check([account]);
              break;
            }
            case "deposit": {
              const account = pick(step.account);
              const amount = scaled(step.token, step.amount);
              const address = await fund(sys, account.owner, step.token, amount);
              await deposit(account.client, { accountId: account.id, token: address, amount });
              await check([account]);
              break;
            }
            case "withdraw": {
              const account = pick(step.account);
              const address = account.client.deployment.tokens[step.token];
              const balance = await sys.vault.balanceOf(account.id, address);
              const amount = balance > 0n ? (balance * BigInt(step.bps)) / 10_000n : 0n;
              if (amount === 0n) break;
              const T = BigInt(await time.latest()) + 1n;
              const p = await preview(
                account.client,
                account.id,
                { type: "withdraw", token: address, amount },
                { timestamp: T },
              );
              await time.setNextBlockTimestamp(T);
              const sent = withdraw(account.client, { accountId: account.id, token: address, amount });
              if (p.revert) {
                stats.predictedReverts += 1;
                await expectPredictedRevert(sent, p.revert);
              } else {
                await sent;
                expect(await chainHealth(sys, account.id)).to.deep.equal(p.health);
                stats.withdrawals += 1;
              }
              await check([account]);
              break;
            }
            case "trade": {
              if (step.size === 0n) break;
              const account = pick(step.account);
              const marketId = sys.markets[step.market];
              const T = BigInt(await time.latest()) + BigInt(step.dt);
              if (step.dt > 0) await advanceTo(sys, T);
              // The quote on the snapshot equals the market's.
              const state = await getAccountState(account.client, {
                accountId: account.id,
                markets: [{ marketId }],
              });
              const market = state.markets[
                marketKey(account.client.deployment.contracts.perpMarket, marketId)
              ] as PerpMarketState;
              const q = perpQuote(
                market,
                state.prices[market.underlying],
                step.size,
                state.protocol.quoteUnit,
              );
              const [fill, fee] = await sys.perps.quoteTrade(marketId, step.size, {
                blockTag: state.blockNumber,
              });
              expect(q).to.deep.equal({ fillPrice: fill, fee });
              stats.quotes += 1;

              const p = await preview(
                account.client,
                account.id,
                { type: "trade", marketId, sizeDelta: step.size },
                { timestamp: T },
              );
              await time.setNextBlockTimestamp(T);
              const sent = modifyPosition(account.client, {
                accountId: account.id,
                marketId,
                sizeDelta: step.size,
                slippageBps: 0, // the fill is deterministic at T: a zero-slippage limit must pass
                deadline: T,
              });
              if (p.revert) {
                stats.predictedReverts += 1;
                await expectPredictedRevert(sent, p.revert);
              } else {
                const r = await sent;
                expect(await chainHealth(sys, account.id)).to.deep.equal(p.health);
                expect({
                  fillPrice: r.fillPrice,
                  fee: r.fee,
                  newSize: r.newSize,
                  entryPrice: r.entryPrice,
                  realizedPnl: r.realizedPnl,
                  fundingPaid: r.fundingPaid,
                }).to.deep.equal({
                  fillPrice: p.trade?.fillPrice,
                  fee: (p.trade?.fee ?? 0n) * state.protocol.quoteUnit,
                  newSize: p.trade?.newSize,
                  entryPrice: p.trade?.newEntryPrice,
                  realizedPnl: p.trade?.realizedPnl,
                  fundingPaid: p.trade?.fundingPaid,
                });
                stats.trades += 1;
                if (step.market === "ETH") seen.eth += 1;
                else seen.btc += 1;
              }
              await check([account]);
              break;
            }
            case "price":
            case "vol":
            case "time":
              await applyMarketMove(sys, step);
              await check(accounts);
              break;
            case "yield": {
              await (await sys.sweth.simulateYield(BigInt(step.weth) * 10n ** 16n + 12_345n)).wait();
              await check(accounts);
              break;
            }
          }
        }
      }),
      { seed: 20_250_601, numRuns: RUNS, endOnFailure: true },
    );

    console.log("      differential:", JSON.stringify(stats), JSON.stringify(seen));
    // The coverage the issue asks for: ≥ 200 states with both underlyings, debts, funding and yield.
    expect(stats.states).to.be.at.least(200);
    expect(stats.trades).to.be.at.least(50);
    expect(seen.both).to.be.greaterThan(0);
    expect(seen.funding).to.be.greaterThan(0);
    expect(seen.interest, "states whose quote debt had accrued interest").to.be.greaterThan(0);
    expect(seen.erc4626).to.be.greaterThan(0);
    expect(stats.predictedReverts).to.be.greaterThan(0);
  });
});
