import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Signer } from "ethers";
import type { MockERC20, OptionMarket } from "../../typechain-types";
import { MarginMode, WAD, eventOf, wad, deploySystem, whatIf, type System } from "../shared/system";
import { deployOptionsSystem, listSeries, tradeOption } from "../shared/options";
import { marketParams, trade, closePosition, unwindPremium } from "../shared/perps";
import { assetId } from "../shared/oracles";
import {
  checkSdkHealth,
  checkTokenConservation,
  checkValueConservation,
  readLedger,
} from "../shared/invariants";
import { INTEREST_MODEL } from "../shared/interest";
import { sdkClient } from "../shared/sdk";
import { formatFixed } from "../../sdk/src/format";
import { preview, toHealth } from "../../sdk/src";
import { parseNetworkConfig } from "../../deploy/networkConfig";
import { readFileSync } from "node:fs";

/**
 * The whole protocol on a quote token that is not 6-decimal USDC (review round 126): the same flows,
 * in the same USD numbers, with an 18-decimal quote (DAI, USDS, BNB Chain's USDC) and a 2-decimal one
 * (GUSD). Every amount below is given in USD and converted to the quote's units; every result is read
 * back in USD (quote units · 10^(18 − decimals)) and compared with the 6-decimal run, which must agree
 * to a few quote units of the coarser token (the roundings "against the trader, in whole quote units").
 */

const DECIMALS = [6, 18, 2] as const;
type Decimals = (typeof DECIMALS)[number];
type QuoteSystem = System & { options: OptionMarket };

/** The options system on a quote token with `d` decimals (a named fixture per decimals, for loadFixture). */
const fixtures = new Map<Decimals, () => Promise<QuoteSystem>>(
  DECIMALS.map((d) => [
    d,
    async function quoteSystem() {
      return deployOptionsSystem({ quoteDecimals: d });
    },
  ]),
);

/** One run of a flow on `d` decimals: the system, the quote's units, and a pinned clock. */
class Run {
  /** One quote unit in USD WAD. */
  readonly unit: bigint;
  private t = 0n;
  /** Quote deposited minus withdrawn (and paid out of the vault) per account, quote units. */
  readonly netQuote = new Map<bigint, bigint>();

  constructor(
    readonly sys: QuoteSystem,
    readonly d: Decimals,
  ) {
    this.unit = 10n ** BigInt(18 - d);
  }

  /** The last pinned block's timestamp. */
  now(): bigint {
    return this.t;
  }

  static async start(d: Decimals): Promise<Run> {
    const run = new Run(await loadFixture(fixtures.get(d)!), d);
    run.t = BigInt(await time.latest()) + 10n;
    for (const id of [await run.sys.insuranceFund.accountId(), run.sys.poolAccountId])
      run.netQuote.set(id, await run.sys.vault.balanceOf(id, run.sys.usdc));
    return run;
  }

  /** `usd` (a decimal string) in quote units. */
  q(usd: string): bigint {
    return ethers.parseUnits(usd, this.d);
  }

  /** Quote units as USD WAD. */
  usd(amount: bigint): bigint {
    return amount * this.unit;
  }

  /**
   * Sends `send` in the next block, one second after the last one: every run of a flow mines the same
   * blocks at the same offsets from its start, so funding, decay and interest are the same USD.
   */
  async tx<T>(send: () => Promise<T>, gap = 1n): Promise<T> {
    this.t += gap;
    await time.setNextBlockTimestamp(this.t);
    return send();
  }

  /** `seconds` later, every feed posted again (one block each). */
  async jump(seconds: bigint): Promise<void> {
    const feeds = [...Object.values(this.sys.feeds), ...Object.values(this.sys.volFeeds)];
    this.t += seconds - BigInt(feeds.length);
    for (const feed of feeds) await this.tx(async () => feed.updateAnswer(await feed.latestAnswer()));
  }

  async setPrice(symbol: "ETH" | "BTC", usd: string, gap = 1n): Promise<void> {
    await this.tx(() => this.sys.feeds[symbol].updateAnswer(ethers.parseUnits(usd, 8)), gap);
  }

  /** An account of `owner` with `usd` of the quote (and `weth` WETH) deposited. */
  async account(owner: Signer, usd = "0", weth = 0n): Promise<bigint> {
    const created = await this.tx(() => this.sys.accounts.connect(owner).createAccount(MarginMode.CROSS));
    const id = eventOf(await created.wait(), this.sys.accounts, "AccountCreated").args.accountId as bigint;
    if (usd !== "0") await this.deposit(owner, id, this.sys.usdc, this.q(usd));
    if (weth !== 0n) await this.deposit(owner, id, this.sys.weth, weth);
    this.netQuote.set(id, this.netQuote.get(id) ?? 0n);
    return id;
  }

  async deposit(owner: Signer, id: bigint, token: MockERC20, amount: bigint): Promise<void> {
    await this.tx(() => token.mint(owner, amount));
    await this.tx(() => token.connect(owner).approve(this.sys.vault, amount));
    await this.tx(() => this.sys.vault.connect(owner).deposit(id, token, amount));
    if (token === this.sys.usdc) this.netQuote.set(id, (this.netQuote.get(id) ?? 0n) + amount);
  }

  async withdrawAll(owner: Signer, id: bigint): Promise<bigint> {
    const balance = await this.sys.vault.balanceOf(id, this.sys.usdc);
    await this.tx(() => this.sys.vault.connect(owner).withdraw(id, this.sys.usdc, balance, owner));
    this.netQuote.set(id, this.netQuote.get(id)! - balance);
    return balance;
  }

  /** Quote paid out of the vault from `id` (a flag reward) leaves its net deposits. */
  paidOut(id: bigint, amount: bigint): void {
    this.netQuote.set(id, (this.netQuote.get(id) ?? 0n) - amount);
  }

  balance(id: bigint): Promise<bigint> {
    return this.sys.vault.balanceOf(id, this.sys.usdc);
  }

  /**
   * Invariants 1 and 2 (test/shared/invariants.ts) over every account: the vault's tokens are the
   * accounts' balances and quote debt its running total; Σ PnL + the fund's takings = 0 in the
   * protocol's favour, within `dustUnits` quote units. Interest accrued and not yet charged is added
   * back to each debtor's mark (the pool's balance holds none of it yet). No option may be open.
   * Returns the discrepancy in USD WAD.
   */
  async checkInvariants(dustUnits = 4n): Promise<bigint> {
    const { sys } = this;
    const count = await sys.accounts.accountCount();
    const ids = Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1));
    const ledger = await readLedger(sys, ids, [sys.usdc, sys.weth, sys.wbtc, sys.sweth]);
    checkTokenConservation(ledger);
    const accrued = await Promise.all(ids.map((id) => sys.vault.accruedInterest(id)));
    ledger.healths = ledger.healths.map((h, i) => ({
      ...h,
      equityMark: h.equityMark + accrued[i] * this.unit,
    }));
    const [eth, btc] = await Promise.all([
      sys.router.getPrice(assetId("ETH")),
      sys.router.getPrice(assetId("BTC")),
    ]);
    const premiums =
      (await unwindPremium(sys.perps, sys.markets.ETH, eth)) +
      (await unwindPremium(sys.perps, sys.markets.BTC, btc));
    return checkValueConservation({
      ledger,
      quote: await sys.usdc.getAddress(),
      quoteToWad: this.unit,
      collateral: [
        { token: await sys.weth.getAddress(), price: eth, decimals: 18 },
        { token: await sys.wbtc.getAddress(), price: btc, decimals: 8 },
      ],
      netQuote: this.netQuote,
      insuranceAccountId: await sys.insuranceFund.accountId(),
      dust: dustUnits * this.unit,
      closeOutPremiums: premiums,
    });
  }
}

/** USD results of one flow, by name (USD WAD). */
type Results = Record<string, bigint>;

/**
 * Runs `flow` on every decimals and expects each result within `units` quote units (of the coarser
 * of the two tokens) of the 6-decimal run's. Returns the results by decimals.
 */
async function sameUsdOnEveryQuote(
  flow: (run: Run) => Promise<Results>,
  units = 4n,
): Promise<Map<Decimals, Results>> {
  const all = new Map<Decimals, Results>();
  for (const d of DECIMALS) all.set(d, await flow(await Run.start(d)));
  if (process.env.QUOTE_DECIMALS_LOG)
    for (const [d, r] of all)
      console.log(d, Object.fromEntries(Object.entries(r).map(([k, v]) => [k, formatFixed(v, 18, 18)])));
  const base = all.get(6)!;
  for (const d of DECIMALS) {
    const unit = 10n ** BigInt(18 - Math.min(d, 6));
    for (const [name, value] of Object.entries(all.get(d)!)) {
      const diff = value > base[name] ? value - base[name] : base[name] - value;
      expect(diff, `${name} at ${d} decimals: ${value} against ${base[name]} at 6`).to.be.lte(units * unit);
    }
  }
  return all;
}

describe("Quote tokens of 18 and 2 decimals (review round 126)", function () {
  describe("deposits, withdrawals and perps", function () {
    it("opens, adds to and closes perps with fees and a day of funding for the same USD as on USDC", async function () {
      const all = await sameUsdOnEveryQuote(async (run) => {
        const { sys } = run;
        const alice = await run.account(sys.alice, "10000");
        const bob = await run.account(sys.bob, "20000");
        await run.tx(() => trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2")));
        await run.tx(() => trade(sys.perps, sys.bob, bob, sys.markets.ETH, -wad("0.5")));
        await run.jump(86_400n);
        await run.setPrice("ETH", "3100");
        await run.tx(() => trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("1")));
        await run.checkInvariants();
        await run.jump(3_600n);
        await run.tx(() => closePosition(sys.perps, sys.alice, alice, sys.markets.ETH));
        await run.tx(() => closePosition(sys.perps, sys.bob, bob, sys.markets.ETH));
        const dust = await run.checkInvariants();
        const aliceOut = await run.withdrawAll(sys.alice, alice);
        const bobOut = await run.withdrawAll(sys.bob, bob);
        await run.checkInvariants();
        return {
          alice: run.usd(aliceOut),
          bob: run.usd(bobOut),
          fund: run.usd(await run.balance(await sys.insuranceFund.accountId())),
          dust,
        };
      });
      // Alice gained on 2 ETH up 100 USD and paid fees and funding; at 6 decimals, for reference.
      expect(all.get(6)!.alice).to.be.gt(wad("10150"));
    });
  });

  describe("options", function () {
    it("buys, sells and settles a call in the money and a put out of it for the same USD as on USDC", async function () {
      await sameUsdOnEveryQuote(async (run) => {
        const { sys } = run;
        const alice = await run.account(sys.alice, "20000");
        const bob = await run.account(sys.bob, "20000");
        const expiry = run.now() + 7n * 86_400n;
        const call = await run.tx(() => listSeries(sys.options, "ETH", "3000", expiry, true));
        const put = await run.tx(() => listSeries(sys.options, "ETH", "2900", expiry, false));
        await run.tx(() => tradeOption(sys.options, sys.alice, alice, call, wad("3")));
        await run.tx(() => tradeOption(sys.options, sys.alice, alice, put, -wad("2")));
        await run.tx(() => tradeOption(sys.options, sys.bob, bob, call, -wad("1")));
        await run.jump(86_400n);
        await run.tx(() => tradeOption(sys.options, sys.alice, alice, call, -wad("1")));
        const [aliceMid, bobMid] = [await run.balance(alice), await run.balance(bob)];
        await run.jump(expiry - 60n - run.now());
        await run.setPrice("ETH", "3250.5", 60n);
        const round = await sys.feeds.ETH.latestRound();
        await run.tx(() => sys.options.settleSeries(call, round));
        await run.tx(() => sys.options.settleSeries(put, round));
        for (const series of [call, put])
          for (const id of [alice, bob])
            if ((await sys.options.positionSize(id, series)) !== 0n)
              await run.tx(() => sys.options.settleAccount(id, series));
        const dust = await run.checkInvariants();
        return {
          aliceTrades: run.usd(aliceMid),
          bobTrades: run.usd(bobMid),
          alice: run.usd(await run.balance(alice)),
          bob: run.usd(await run.balance(bob)),
          pool: run.usd(await run.balance(sys.poolAccountId)),
          fund: run.usd(await run.balance(await sys.insuranceFund.accountId())),
          dust,
        };
      });
    });
  });

  describe("quote debt and interest", function () {
    it("lends a WETH holder's loss, charges a month of interest and takes the repayment as on USDC", async function () {
      await sameUsdOnEveryQuote(async (run) => {
        const { sys } = run;
        await run.tx(() => sys.vault.setInterestRateModel(INTEREST_MODEL));
        const bob = await run.account(sys.bob, "0", wad("10"));
        await run.tx(() => trade(sys.perps, sys.bob, bob, sys.markets.BTC, wad("1")));
        await run.setPrice("BTC", "34000");
        await run.tx(() => closePosition(sys.perps, sys.bob, bob, sys.markets.BTC));
        const debt = -(await run.balance(bob));
        await run.jump(30n * 86_400n);
        await run.checkInvariants();
        const receivable = await sys.vault.interestReceivable();
        await run.tx(() => sys.vault.settleInterest(bob));
        const charged = -(await run.balance(bob)) - debt;
        await run.checkInvariants();
        // The repayment's own block accrues a few seconds more: one quote token more than the debt covers it.
        await run.deposit(sys.bob, bob, sys.usdc, debt + charged + run.q("1"));
        expect(await sys.vault.quoteDebt()).to.equal(0n);
        await run.checkInvariants();
        return { debt: run.usd(debt), charged: run.usd(charged), receivable: run.usd(receivable) };
      });
    });
  });

  describe("interest settled by anyone", function () {
    /** Bob owes ~26,050 of the quote (a closed BTC long on 10 WETH), at INTEREST_MODEL's ~2.25% a year. */
    async function bobInDebt(run: Run): Promise<bigint> {
      const { sys } = run;
      await run.tx(() => sys.vault.setInterestRateModel(INTEREST_MODEL));
      const bob = await run.account(sys.bob, "0", wad("10"));
      await run.tx(() => trade(sys.perps, sys.bob, bob, sys.markets.BTC, wad("1")));
      await run.setPrice("BTC", "34000");
      await run.tx(() => closePosition(sys.perps, sys.bob, bob, sys.markets.BTC));
      return bob;
    }

    for (const d of DECIMALS)
      it(`charges a debtor what a minute accrued however often anyone settles it, at ${d} decimals`, async function () {
        const run = await Run.start(d);
        const { sys } = run;
        const bob = await bobInDebt(run);
        const debt = -(await run.balance(bob));
        const start = run.now();
        // The interest of the minute, settled once (a what-if on the same blocks' timestamps).
        const once = await whatIf(async () => {
          await time.setNextBlockTimestamp(start + 60n);
          await sys.vault.connect(sys.carol).settleInterest(bob);
          return -(await run.balance(bob)) - debt;
        });
        for (let i = 0; i < 60; i++) await run.tx(() => sys.vault.connect(sys.carol).settleInterest(bob));
        const charged = -(await run.balance(bob)) - debt;
        // Before the fix every call rounded up a unit: 60 calls charged 0.60 USD at 2 decimals where the
        // minute accrued 0.0011 (1 unit once), 60·10^-6 at 6 decimals.
        // Each settlement re-records the index (rounded down) and the rate (the debt grew): within a
        // millionth of the single settlement's, and never more than a unit below it.
        expect(charged, `charged ${charged} over 60 calls, ${once} once`).to.be.lte(once + once / 1_000_000n);
        expect(charged + 1n).to.be.gte(once);
        // What stays owed is still counted (rounded up, and the paid index rounded down: a unit more per
        // 10^18 units of debt): the next movement settles it up to the index now.
        const rest = once > charged ? once - charged : 0n;
        expect(await sys.vault.accruedInterest(bob)).to.be.lte(rest + 1n + debt / WAD);
        await run.checkInvariants();
      });

    it("charges nothing and keeps accruing while less than a unit accrued (2 decimals)", async function () {
      const run = await Run.start(2);
      const { sys } = run;
      const bob = await bobInDebt(run);
      const debt = await run.balance(bob);
      const paid = await sys.vault.paidInterestIndex(bob);
      await run.tx(() => sys.vault.connect(sys.carol).settleInterest(bob));
      expect(await run.balance(bob)).to.equal(debt);
      expect(await sys.vault.paidInterestIndex(bob)).to.equal(paid);
      await run.jump(86_400n);
      // A day of ~2.25% on 26,049.85 accrued 1.60x USD: 1.60 is charged, the rest (rounded up, a cent) stays owed.
      const accrued = await sys.vault.accruedInterest(bob);
      await run.tx(() => sys.vault.connect(sys.carol).settleInterest(bob), 0n);
      expect(debt - (await run.balance(bob))).to.equal(accrued - 1n);
      expect(accrued - 1n).to.equal(160n);
      expect(await sys.vault.accruedInterest(bob)).to.equal(1n);
    });
  });

  describe("liquidation", function () {
    /** Alice long 2 ETH on 1,000 of the quote (funding off), ETH then at `price`; the keeper starts her auction. */
    async function aliceFlagged(run: Run, price: string, fund = "0") {
      const { sys } = run;
      await run.tx(() =>
        sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n })),
      );
      if (fund !== "0")
        await run.deposit(sys.deployer, await sys.insuranceFund.accountId(), sys.usdc, run.q(fund));
      const alice = await run.account(sys.alice, "1000");
      const bob = await run.account(sys.bob, "20000");
      const carol = await run.account(sys.carol, "5000");
      await run.tx(() => sys.accounts.connect(sys.carol).approve(sys.auction, carol));
      await run.tx(() => trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2")));
      await run.setPrice("ETH", price);
      const started = eventOf(
        await (await run.tx(() => sys.auction.connect(sys.keeper).startAuction(alice))).wait(),
        sys.auction,
        "AuctionStarted",
      );
      run.paidOut(alice, started.args.flagReward as bigint);
      return { alice, bob, carol, flagReward: started.args.flagReward as bigint };
    }

    it("pays the flag reward, a bid and a bidAndClose on a solvent book for the same USD as on USDC", async function () {
      await sameUsdOnEveryQuote(async (run) => {
        const { sys } = run;
        const { alice, bob, carol, flagReward } = await aliceFlagged(run, "2650");
        expect(await sys.usdc.balanceOf(sys.keeper)).to.equal(run.q("10"));
        await run.jump(600n);
        const bid = eventOf(
          await (
            await run.tx(() => sys.auction.connect(sys.bob).bid(alice, bob, wad("0.3"), ethers.MaxUint256))
          ).wait(),
          sys.auction,
          "AuctionBid",
        );
        await run.checkInvariants();
        await run.jump(600n);
        const close = eventOf(
          await (
            await run.tx(() =>
              sys.auction.connect(sys.carol).bidAndClose(alice, carol, WAD, ethers.MaxUint256),
            )
          ).wait(),
          sys.auction,
          "AuctionBid",
        );
        const dust = await run.checkInvariants();
        return {
          flagReward: run.usd(flagReward),
          bidPayment: run.usd(bid.args.payment as bigint),
          bidPenalty: run.usd(bid.args.penalty as bigint),
          closePayment: run.usd(close.args.payment as bigint),
          carol: run.usd(await run.balance(carol)),
          alice: run.usd(await run.balance(alice)),
          fund: run.usd(await run.balance(await sys.insuranceFund.accountId())),
          dust,
        };
      });
    });

    it("pays an insolvent book's deficit out of the insurance fund as on USDC", async function () {
      await sameUsdOnEveryQuote(async (run) => {
        const { sys } = run;
        const { alice, bob, flagReward } = await aliceFlagged(run, "2300", "5000");
        expect(flagReward).to.equal(0n);
        await run.jump(1_800n);
        const receipt = await (
          await run.tx(() => sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256))
        ).wait();
        const covered = eventOf(receipt, sys.auction, "InsolvencyCovered");
        expect(covered.args.socialisedLoss).to.equal(0n);
        const dust = await run.checkInvariants();
        return {
          deficit: run.usd(covered.args.deficit as bigint),
          paidByInsurance: run.usd(covered.args.paidByInsurance as bigint),
          bob: run.usd(await run.balance(bob)),
          fund: run.usd(await run.balance(await sys.insuranceFund.accountId())),
          dust,
        };
      });
    });

    it("socialises the shortfall beyond an empty fund to the pool as on USDC", async function () {
      await sameUsdOnEveryQuote(async (run) => {
        const { sys } = run;
        const { alice, bob } = await aliceFlagged(run, "2300");
        const assetsBefore = await sys.pool.totalAssets();
        await run.jump(1_800n);
        const receipt = await (
          await run.tx(() => sys.auction.connect(sys.bob).bid(alice, bob, WAD, ethers.MaxUint256))
        ).wait();
        const covered = eventOf(receipt, sys.auction, "InsolvencyCovered");
        // The fund holds only its share of Alice's opening fee (0.60 USD).
        expect(covered.args.socialisedLoss).to.be.gt(0n);
        const dust = await run.checkInvariants();
        return {
          socialised: run.usd(covered.args.socialisedLoss as bigint),
          bob: run.usd(await run.balance(bob)),
          poolAssetsChange: run.usd(assetsBefore - (await sys.pool.totalAssets())),
          dust,
        };
      });
    });

    it("absorbs a book into the backstop and sweeps its quote to the pool as on USDC", async function () {
      await sameUsdOnEveryQuote(async (run) => {
        const { sys } = run;
        await run.tx(() =>
          sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n })),
        );
        await run.deposit(sys.deployer, await sys.insuranceFund.accountId(), sys.usdc, run.q("50000"));
        const alice = await run.account(sys.alice, "50000");
        await run.tx(() => trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("100")));
        await run.setPrice("ETH", "2600");
        await run.tx(() => sys.auction.connect(sys.keeper).startAuction(alice));
        await run.jump(1_800n);
        const absorbed = eventOf(
          await (await run.tx(() => sys.auction.absorb(alice))).wait(),
          sys.auction,
          "InsolvencyCovered",
        );
        const backstop = await sys.auction.backstopAccountId();
        run.netQuote.set(backstop, 0n);
        const held = await run.balance(backstop);
        await run.checkInvariants();
        await run.setPrice("ETH", "3000");
        const swept = eventOf(
          await (await run.tx(() => sys.auction.sweepBackstopQuote())).wait(),
          sys.auction,
          "BackstopQuoteSwept",
        );
        const dust = await run.checkInvariants();
        return {
          deficit: run.usd(absorbed.args.deficit as bigint),
          paidByInsurance: run.usd(absorbed.args.paidByInsurance as bigint),
          backstopQuote: run.usd(held),
          swept: run.usd(swept.args.amount as bigint),
          dust,
        };
      });
    });
  });

  describe("the deploy parser", function () {
    /** The local deploy config with its quote token (a mock) at `decimals`. */
    function localConfigWithQuote(decimals: number): unknown {
      const raw = JSON.parse(readFileSync("deploy/config/localhost.json", "utf8"));
      raw.tokens[raw.quoteToken].mock.decimals = decimals;
      return raw;
    }

    for (const d of [18, 2]) {
      it(`scales the quote's deposit cap and the flag reward to ${d} decimals`, function () {
        const config = parseNetworkConfig(localConfigWithQuote(d));
        expect(config.tokens.USDC.decimals).to.equal(d);
        expect(config.tokens.USDC.depositCap).to.equal(1_000_000_000n * 10n ** BigInt(d));
        expect(config.auction.flagReward).to.equal(10n * 10n ** BigInt(d));
      });
    }

    for (const d of [19, 1, 0])
      it(`refuses a quote token of ${d} decimals, which a constructor or the quote's listing would refuse midway`, function () {
        expect(() => parseNetworkConfig(localConfigWithQuote(d))).to.throw(
          `quoteToken: USDC has ${d} decimals; a quote token needs 2 to 18`,
        );
      });
  });

  describe("quote tokens the contracts refuse", function () {
    it("refuses to list a 0-decimal quote token: its unit, a dollar, is above MAX_UNIT_VALUE", async function () {
      await expect(deploySystem({ quoteDecimals: 0 }))
        .to.be.revertedWithCustomError(
          await ethers.getContractFactory("CollateralVault"),
          "ParameterOutOfBounds",
        )
        .withArgs(ethers.encodeBytes32String("unitValue"), wad("1"));
    });
  });

  describe("LP deposits and exits", function () {
    it("deposits, withdraws, requests and claims a redemption for the same USD as on USDC", async function () {
      await sameUsdOnEveryQuote(async (run) => {
        const { sys } = run;
        const alice = await run.account(sys.alice, "10000");
        await run.tx(() => trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("2")));
        const assets = run.q("5000");
        await run.tx(() => sys.usdc.mint(sys.bob, assets));
        await run.tx(() => sys.usdc.connect(sys.bob).approve(sys.pool, assets));
        await run.tx(() => sys.pool.connect(sys.bob).deposit(assets, sys.bob));
        await run.jump(86_400n);
        await run.setPrice("ETH", "3300");
        const withdrawn = await sys.pool.previewRedeem((await sys.pool.balanceOf(sys.bob)) / 4n);
        await run.tx(() => sys.pool.connect(sys.bob).withdraw(withdrawn, sys.bob, sys.bob));
        await run.tx(() => sys.pool.setExitDelay(86_400n));
        const shares = await sys.pool.balanceOf(sys.bob);
        await run.tx(() => sys.pool.connect(sys.bob).requestRedeem(shares));
        await run.jump(86_400n);
        const before = await sys.usdc.balanceOf(sys.bob);
        await run.tx(() => sys.pool.connect(sys.bob).claimRedeem(shares, sys.bob, 0n));
        const claimed = (await sys.usdc.balanceOf(sys.bob)) - before;
        expect(await sys.pool.balanceOf(sys.bob)).to.equal(0n);
        // The pool's quote came in and went out through its shares, not the vault's deposit and withdraw.
        run.paidOut(sys.poolAccountId, withdrawn + claimed - assets);
        const dust = await run.checkInvariants();
        return {
          withdrawn: run.usd(withdrawn),
          claimed: run.usd(claimed),
          poolAssets: run.usd(await sys.pool.totalAssets()),
          dust,
        };
      });
    });
  });

  describe("the SDK", function () {
    for (const d of DECIMALS)
      it(`previews a perp and an option trade to the chain's health and fee at ${d} decimals`, async function () {
        const run = await Run.start(d);
        const { sys } = run;
        const alice = await run.account(sys.alice, "20000");
        const call = await run.tx(() =>
          listSeries(sys.options, "ETH", "3100", run.now() + 7n * 86_400n, true),
        );
        const client = await sdkClient(sys, sys.alice);
        for (const action of [
          { type: "trade", marketId: sys.markets.ETH, sizeDelta: wad("1.37") } as const,
          { type: "optionTrade", seriesId: call, sizeDelta: -wad("2.5") } as const,
        ]) {
          const predicted = await preview(client, alice, action);
          expect(predicted.revert).to.equal(undefined);
          const receipt = await (
            await run.tx(
              () =>
                action.type === "trade"
                  ? trade(sys.perps, sys.alice, alice, action.marketId, action.sizeDelta)
                  : tradeOption(sys.options, sys.alice, alice, action.seriesId, action.sizeDelta),
              0n,
            )
          ).wait();
          const fee = action.type === "trade" ? predicted.trade!.fee : predicted.option!.fee;
          const market = action.type === "trade" ? sys.perps : sys.options;
          const traded = eventOf(
            receipt,
            market,
            action.type === "trade" ? "PositionModified" : "OptionTraded",
          );
          expect(traded.args.fee, `${action.type} fee`).to.equal(fee * run.unit);
          expect(toHealth(await sys.engine.health(alice))).to.deep.equal(toHealth(predicted.health));
          await checkSdkHealth(client, sys.engine, alice);
        }
        expect(formatFixed(await run.balance(alice), d, 2)).to.match(/^20,1\d{2}\.\d{2}$/);
      });
  });
});
