/**
 * What the SDK's actions sign, to the wei (review round 103, mutation testing of `sdk/src/actions`,
 * `errors.ts`, `format.ts`, `client.ts`): the limit price and deadline in a trade's calldata for a
 * long and a short, the spender, amount and deadline of a deposit's approval or permit, the limits and
 * recipients of LP deposits and exits, the refusals before anything is sent, and the typed errors with
 * their arguments and messages. Each specification failed on a hand-made mutant that the SDK's other
 * tests let through.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { Provider } from "ethers";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  type XMarginClient,
  UNLIMITED_TRADING_ALLOWANCE,
  WAD,
  approveOperator,
  buyOption,
  cancelRedeemRequest,
  claimRedeem,
  closeOption,
  closePosition,
  createAccount,
  createClient,
  decodeError,
  deposit,
  depositLiquidity,
  findRevertData,
  formatFixed,
  formatPercent,
  formatUsd,
  getOptionSeries,
  isXMarginError,
  makeXMarginError,
  openPosition,
  optionIncreasesRisk,
  optionQuote,
  perpQuote,
  permitDomain,
  quoteOption,
  quoteTrade,
  requestRedeem,
  seriesStatus,
  sellOption,
  settlementPayout,
  setTrader,
  withdraw,
  withdrawLiquidity,
} from "../../sdk/src";
import { EXIT_DELAY, HOLDING_PERIOD, wad } from "../shared/system";
import { assetId } from "../shared/oracles";
import { mineAt, perpMarketState, refreshFeeds } from "../shared/perps";
import { DAY, unsettledSeries } from "../shared/options";
import { deploymentOf, optionTrader, systemWithClients } from "../shared/sdk";

const USDC = 10n ** 6n;
const BPS = 10_000n;

/** ⌈x·(1 + bps)⌉ and ⌊x·(1 − bps)⌋: the limits `slippageBps` away from a quote, against the trader. */
const up = (x: bigint, bps: bigint): bigint => (x * (BPS + bps) + BPS - 1n) / BPS;
const down = (x: bigint, bps: bigint): bigint => (x * (BPS - bps)) / BPS;

/**
 * The premium a sale's limit starts from at the latest block: the quote, or the model's quote 12 s (a
 * block) later at the same spot and volatility when time decay alone lowers it (review round 161).
 */
async function saleLimitBase(
  client: XMarginClient,
  oracle: { getPriceAndVolatility(asset: string): Promise<[bigint, bigint]> },
  seriesId: bigint,
  sizeDelta: bigint,
  premium: bigint,
): Promise<bigint> {
  const series = await getOptionSeries(client, { seriesId });
  const [spot, volatility] = await oracle.getPriceAndVolatility(series.underlying);
  const later = BigInt(await time.latest()) + 12n;
  const decayed = optionQuote(series, spot, volatility, later, sizeDelta, 10n ** 12n).premium;
  return decayed < premium ? decayed : premium;
}

/** The calldata of the transaction behind `receipt`. */
async function sentData(receipt: { hash: string }): Promise<string> {
  const tx = await ethers.provider.getTransaction(receipt.hash);
  if (!tx) throw new Error(`transaction ${receipt.hash} not found`);
  return tx.data;
}

/** Every transaction mined after block `from`, in order: where it went and its calldata. */
async function sentSince(from: number): Promise<{ to: string; data: string }[]> {
  const out: { to: string; data: string }[] = [];
  const latest = await ethers.provider.getBlockNumber();
  for (let n = from + 1; n <= latest; n++) {
    const block = await ethers.provider.getBlock(n, true);
    for (const tx of block?.prefetchedTransactions ?? []) out.push({ to: tx.to ?? "", data: tx.data });
  }
  return out;
}

/** Alice with 100,000 USDC in an account, the chain a day ahead of the wall clock (fresh feeds). */
async function perpTrader() {
  const { sys, alice, bob } = await systemWithClients();
  const { accountId } = await createAccount(alice);
  await sys.usdc.mint(sys.alice.address, 100_000n * USDC);
  await deposit(alice, { accountId, token: "USDC", amount: 100_000n * USDC });
  await mineAt(sys, BigInt(await time.latest()) + DAY);
  return { sys, alice, bob, accountId };
}

/** `optionTrader` with the chain a day ahead of the wall clock (fresh feeds). */
async function optionTraderADayAhead() {
  const trader = await optionTrader();
  await mineAt(trader.sys, BigInt(await time.latest()) + DAY);
  return trader;
}

/** A size whose fill price is no round number, so that the limit's rounding shows in the last wei. */
const ODD_SIZE = 1_234_567_891_234_567_891n;

describe("SDK actions: what they sign, exactly", function () {
  describe("perp trades", function () {
    it("opens a long with the limit slippageBps above the quoted fill, rounded up, and the deadline validity seconds after the latest block", async function () {
      const { sys, alice, accountId } = await loadFixture(perpTrader);
      const q = await quoteTrade(alice, { marketId: sys.markets.ETH, sizeDelta: ODD_SIZE, slippageBps: 37 });
      expect((q.fillPrice * (BPS + 37n)) % BPS, "the rounding shows").to.not.equal(0n);
      const latest = BigInt(await time.latest());
      const r = await openPosition(alice, {
        accountId,
        marketId: sys.markets.ETH,
        size: ODD_SIZE,
        slippageBps: 37,
        validity: 90,
      });
      const [, , size, limitPrice, deadline] = sys.perps.interface.decodeFunctionData(
        "trade",
        await sentData(r.receipt),
      );
      expect(size).to.equal(ODD_SIZE);
      expect(limitPrice).to.equal(up(q.fillPrice, 37n));
      expect(limitPrice).to.equal(q.limitPrice);
      // The chain's clock, a day ahead of the wall clock here: never Date.now().
      expect(deadline).to.equal(latest + 90n);
      expect([r.limitPrice, r.deadline]).to.deep.equal([limitPrice, deadline]);
      expect(r.fillPrice).to.equal(q.fillPrice);
    });

    it("opens a short with the limit 50 bps below the quoted fill by default, rounded down, and a deadline 600 s after the latest block", async function () {
      const { sys, alice, accountId } = await loadFixture(perpTrader);
      const q = await quoteTrade(alice, { marketId: sys.markets.ETH, sizeDelta: -ODD_SIZE });
      expect((q.fillPrice * (BPS - 50n)) % BPS, "the rounding shows").to.not.equal(0n);
      const latest = BigInt(await time.latest());
      const r = await openPosition(alice, { accountId, marketId: sys.markets.ETH, size: -ODD_SIZE });
      const [, , size, limitPrice, deadline] = sys.perps.interface.decodeFunctionData(
        "trade",
        await sentData(r.receipt),
      );
      expect([size, limitPrice, deadline]).to.deep.equal([-ODD_SIZE, down(q.fillPrice, 50n), latest + 600n]);
      expect([r.limitPrice, r.deadline, r.fillPrice]).to.deep.equal([limitPrice, deadline, q.fillPrice]);
    });

    it("closes a short with closePosition, its limit above the quote of buying it back, and returns the event's PnL, funding and fee", async function () {
      const { sys, alice, accountId } = await loadFixture(perpTrader);
      await openPosition(alice, { accountId, marketId: sys.markets.ETH, size: -ODD_SIZE });
      await mineAt(sys, BigInt(await time.latest()) + 3_000n); // funding accrues
      const q = await quoteTrade(alice, { marketId: sys.markets.ETH, sizeDelta: ODD_SIZE, slippageBps: 20 });
      const latest = BigInt(await time.latest());
      const r = await closePosition(alice, { accountId, marketId: sys.markets.ETH, slippageBps: 20 });
      const sent = sys.perps.interface.parseTransaction({ data: await sentData(r.receipt) });
      expect(sent?.name).to.equal("closePosition");
      expect([...(sent?.args ?? [])]).to.deep.equal([
        accountId,
        sys.markets.ETH,
        up(q.fillPrice, 20n),
        latest + 600n,
      ]);
      const [event] = (
        await sys.perps.queryFilter(sys.perps.filters.PositionModified(), r.receipt.blockNumber)
      )
        .filter((e) => e.transactionHash === r.receipt.hash)
        .map((e) => e.args);
      expect(event.fundingPaid).to.not.equal(0n);
      expect([r.sizeDelta, r.newSize, r.fee, r.realizedPnl, r.fundingPaid]).to.deep.equal([
        ODD_SIZE,
        0n,
        event.fee,
        event.realizedPnl,
        event.fundingPaid,
      ]);
      expect(r.fee).to.be.greaterThan(0n);
    });

    it("refuses deadlines of 0 and of 10^11 s before sending; 10^11 − 1 is a timestamp in seconds and goes out as given", async function () {
      const { sys, alice, accountId } = await loadFixture(perpTrader);
      const block = await ethers.provider.getBlockNumber();
      for (const deadline of [0n, 10n ** 11n]) {
        await expect(
          openPosition(alice, { accountId, marketId: sys.markets.ETH, size: WAD, deadline }),
        ).to.be.rejectedWith(RangeError, "is not a timestamp in seconds");
      }
      expect(await ethers.provider.getBlockNumber(), "nothing sent").to.equal(block);
      const r = await openPosition(alice, {
        accountId,
        marketId: sys.markets.ETH,
        size: WAD,
        deadline: 10n ** 11n - 1n,
      });
      expect(sys.perps.interface.decodeFunctionData("trade", await sentData(r.receipt))[4]).to.equal(
        10n ** 11n - 1n,
      );
    });

    it("refuses a slippage of −1 bps or of half a basis point before sending, and takes 0 bps as the quote itself", async function () {
      const { sys, alice, accountId } = await loadFixture(perpTrader);
      const block = await ethers.provider.getBlockNumber();
      for (const slippageBps of [-1, 0.5]) {
        await expect(
          openPosition(alice, { accountId, marketId: sys.markets.ETH, size: WAD, slippageBps }),
        ).to.be.rejectedWith(RangeError, "slippageBps must be an integer in [0, 10000]");
      }
      expect(await ethers.provider.getBlockNumber(), "nothing sent").to.equal(block);
      const q = await quoteTrade(alice, { marketId: sys.markets.ETH, sizeDelta: WAD, slippageBps: 0 });
      expect(q.limitPrice).to.equal(q.fillPrice);
    });
    it("refuses a zero size, or a close without a position, with a RangeError before any quote or transaction", async function () {
      const { sys, alice, accountId } = await loadFixture(perpTrader);
      const block = await ethers.provider.getBlockNumber();
      await expect(
        openPosition(alice, { accountId, marketId: sys.markets.ETH, size: 0n }),
      ).to.be.rejectedWith(RangeError, "sizeDelta is zero");
      await expect(closePosition(alice, { accountId, marketId: sys.markets.ETH })).to.be.rejectedWith(
        RangeError,
        "closePosition: no position",
      );
      expect(await ethers.provider.getBlockNumber(), "nothing sent").to.equal(block);
    });
  });

  describe("option trades", function () {
    it("buys with the limit 50 bps above the quoted premium (rounded up) and sells with it below the premium a block (12 s) later (rounded down), deadline 600 s after the latest block", async function () {
      const { sys, alice, accountId, call } = await loadFixture(optionTraderADayAhead);
      const buyQuote = await quoteOption(alice, { seriesId: call, sizeDelta: 2n * WAD });
      expect((buyQuote.premium * (BPS + 50n)) % BPS, "the rounding shows").to.not.equal(0n);
      let latest = BigInt(await time.latest());
      const bought = await buyOption(alice, { accountId, seriesId: call, size: 2n * WAD });
      const [, , size, limit, deadline] = sys.options.interface.decodeFunctionData(
        "trade",
        await sentData(bought.receipt),
      );
      expect([size, limit, deadline]).to.deep.equal([2n * WAD, up(buyQuote.premium, 50n), latest + 600n]);
      expect([bought.limitPrice, bought.deadline]).to.deep.equal([limit, deadline]);

      const sellQuote = await quoteOption(alice, { seriesId: call, sizeDelta: -WAD, slippageBps: 120 });
      const base = await saleLimitBase(alice, sys.router, call, -WAD, sellQuote.premium);
      expect(base, "a day to expiry: 12 s of decay").to.be.lessThan(sellQuote.premium);
      expect((base * (BPS - 120n)) % BPS, "the rounding shows").to.not.equal(0n);
      expect(sellQuote.limitPrice).to.equal(down(base, 120n));
      latest = BigInt(await time.latest());
      const sold = await sellOption(alice, { accountId, seriesId: call, size: WAD, slippageBps: 120 });
      const sent = sys.options.interface.decodeFunctionData("trade", await sentData(sold.receipt));
      expect([sent[2], sent[3], sent[4]]).to.deep.equal([-WAD, down(base, 120n), latest + 600n]);
    });

    it("closes a long by selling it whole and a short by buying it back, each with its own side's limit", async function () {
      const { sys, alice, accountId, call, put } = await loadFixture(optionTraderADayAhead);
      await buyOption(alice, { accountId, seriesId: call, size: 3n * WAD });
      await sellOption(alice, { accountId, seriesId: put, size: 2n * WAD });
      const sellBack = await quoteOption(alice, { seriesId: call, sizeDelta: -3n * WAD });
      const base = await saleLimitBase(alice, sys.router, call, -3n * WAD, sellBack.premium);
      const closedLong = await closeOption(alice, { accountId, seriesId: call });
      const long = sys.options.interface.decodeFunctionData("trade", await sentData(closedLong.receipt));
      expect([long[2], long[3]]).to.deep.equal([-3n * WAD, down(base, 50n)]);
      const buyBack = await quoteOption(alice, { seriesId: put, sizeDelta: 2n * WAD });
      const closedShort = await closeOption(alice, { accountId, seriesId: put });
      const short = sys.options.interface.decodeFunctionData("trade", await sentData(closedShort.receipt));
      expect([short[2], short[3]]).to.deep.equal([2n * WAD, up(buyBack.premium, 50n)]);
      expect([closedLong.newSize, closedShort.newSize]).to.deep.equal([0n, 0n]);
    });

    it("returns the OptionTraded event's premium (the total, not per contract) and fee", async function () {
      const { sys, alice, accountId, put } = await loadFixture(optionTraderADayAhead);
      const r = await buyOption(alice, { accountId, seriesId: put, size: 3n * WAD });
      const [event] = (
        await sys.options.queryFilter(sys.options.filters.OptionTraded(), r.receipt.blockNumber)
      )
        .filter((e) => e.transactionHash === r.receipt.hash)
        .map((e) => e.args);
      expect([r.premium, r.fee, r.premiumPerContract]).to.deep.equal([
        event.premium,
        event.fee,
        event.premiumPerContract,
      ]);
      expect(r.premium).to.not.equal(r.premiumPerContract);
      expect(r.fee).to.not.equal(r.premium);
    });

    it("refuses a buyOption or sellOption of a negative or zero size with a rejected promise (row 253), its own RangeError, sending nothing", async function () {
      const { sys, alice, accountId, call } = await loadFixture(optionTraderADayAhead);
      const block = await ethers.provider.getBlockNumber();
      for (const size of [-WAD, 0n]) {
        // A frontend handles every action's refusal on its promise (`.catch`, `await` in a try around
        // the promise it stored): a synchronous throw escapes that handler.
        let bought: Promise<unknown> = Promise.resolve();
        let sold: Promise<unknown> = Promise.resolve();
        expect(() => {
          bought = buyOption(alice, { accountId, seriesId: call, size });
        }).to.not.throw();
        expect(() => {
          sold = sellOption(alice, { accountId, seriesId: call, size });
        }).to.not.throw();
        await expect(bought).to.be.rejectedWith(RangeError, "buyOption: size must be positive");
        await expect(sold).to.be.rejectedWith(RangeError, "sellOption: size must be positive");
      }
      expect(await ethers.provider.getBlockNumber(), "nothing sent").to.equal(block);
      expect(await sys.options.positionSize(accountId, call)).to.equal(0n);
      await expect(closeOption(alice, { accountId, seriesId: call })).to.be.rejectedWith(
        RangeError,
        "closeOption: no position",
      );
    });
  });

  describe("deposits and their allowance", function () {
    async function permitToken() {
      const { sys, alice } = await systemWithClients();
      const token = await ethers.deployContract("MockERC20Permit", ["Permit Dollar", "pUSD", 6]);
      await sys.vault.listCollateral(token, assetId("USDC"), wad("1"), wad("1"), 10n ** 15n, false);
      const { accountId } = await createAccount(alice);
      await token.mint(sys.alice.address, 1_000n * USDC);
      await mineAt(sys, BigInt(await time.latest()) + DAY);
      return { sys, alice, accountId, token };
    }

    it("approves the vault for exactly the amount, in one approve before the deposit", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      await sys.usdc.mint(sys.alice.address, 1_000n * USDC);
      const block = await ethers.provider.getBlockNumber();
      const r = await deposit(alice, { accountId, token: "USDC", amount: 700n * USDC });
      expect(r.approval).to.equal("approve");
      const sent = await sentSince(block);
      expect(sent.map((t) => t.to)).to.deep.equal([
        await sys.usdc.getAddress(),
        await sys.vault.getAddress(),
      ]);
      expect([...sys.usdc.interface.decodeFunctionData("approve", sent[0].data)]).to.deep.equal([
        await sys.vault.getAddress(),
        700n * USDC,
      ]);
    });

    it("uses an allowance of exactly the amount as it is, and deposits the signer's whole balance", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      await sys.usdc.mint(sys.alice.address, 700n * USDC);
      await sys.usdc.connect(sys.alice).approve(sys.vault, 700n * USDC);
      const block = await ethers.provider.getBlockNumber();
      const r = await deposit(alice, { accountId, token: "USDC", amount: 700n * USDC });
      expect(r.approval).to.equal("existing");
      expect((await sentSince(block)).map((t) => t.to)).to.deep.equal([await sys.vault.getAddress()]);
      expect(await sys.usdc.balanceOf(sys.alice.address)).to.equal(0n);
    });

    it("refuses one unit beyond the balance with ERC20InsufficientBalance(owner, balance, needed)", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      await sys.usdc.mint(sys.alice.address, 700n * USDC);
      const e = await deposit(alice, { accountId, token: "USDC", amount: 700n * USDC + 1n }).then(
        () => expect.fail("should be refused"),
        (error: unknown) => error,
      );
      expect(isXMarginError(e, "ERC20InsufficientBalance")).to.equal(true);
      expect(isXMarginError(e) && e.args).to.deep.equal({
        sender: sys.alice.address,
        balance: 700n * USDC,
        needed: 700n * USDC + 1n,
      });
    });

    it("signs a permit for the vault and the amount, valid permitValidity seconds from the latest block (3,600 by default)", async function () {
      const { sys, alice, accountId, token } = await loadFixture(permitToken);
      for (const [permitValidity, seconds] of [
        [undefined, 3_600n],
        [120, 120n],
      ] as const) {
        const block = await ethers.provider.getBlockNumber();
        const latest = BigInt(await time.latest());
        const r = await deposit(alice, {
          accountId,
          token: await token.getAddress(),
          amount: 100n * USDC,
          permitValidity,
        });
        expect(r.approval).to.equal("permit");
        const [permit] = await sentSince(block);
        const [owner, spender, value, deadline] = token.interface.decodeFunctionData("permit", permit.data);
        expect([owner, spender, value, deadline]).to.deep.equal([
          sys.alice.address,
          await sys.vault.getAddress(),
          100n * USDC,
          latest + seconds,
        ]);
      }
    });

    it('never signs a permit with approval "approve": an exact approve, the nonce unused', async function () {
      const { sys, alice, accountId, token } = await loadFixture(permitToken);
      const block = await ethers.provider.getBlockNumber();
      const r = await deposit(alice, {
        accountId,
        token: await token.getAddress(),
        amount: 100n * USDC,
        approval: "approve",
      });
      expect(r.approval).to.equal("approve");
      const [approve] = await sentSince(block);
      expect([...token.interface.decodeFunctionData("approve", approve.data)]).to.deep.equal([
        await sys.vault.getAddress(),
        100n * USDC,
      ]);
      expect(await token.nonces(sys.alice.address)).to.equal(0n);
    });
  });

  describe("a permit token's domain", function () {
    /**
     * A provider answering an EIP-2612 token's views without EIP-5267's `eip712Domain()` (USDC's FiatToken
     * has none): the SDK falls back to {name, version "1"} and may sign only if that hashes to the
     * token's DOMAIN_SEPARATOR.
     */
    function tokenWithoutEip5267(token: string, name: string, version: string, chainId: bigint): Provider {
      const iface = new ethers.Interface([
        "function DOMAIN_SEPARATOR() view returns (bytes32)",
        "function nonces(address) view returns (uint256)",
        "function name() view returns (string)",
      ]);
      const separator = ethers.TypedDataEncoder.hashDomain({
        name,
        version,
        chainId,
        verifyingContract: token,
      });
      const fake = {
        getNetwork: async () => ({ chainId }),
        call: async (tx: { data: string }) => {
          const fn = iface.getFunction(tx.data.slice(0, 10));
          if (!fn) throw new Error("execution reverted"); // eip712Domain()
          const result = fn.name === "DOMAIN_SEPARATOR" ? [separator] : fn.name === "nonces" ? [0n] : [name];
          return iface.encodeFunctionResult(fn, result);
        },
      };
      return fake as unknown as Provider;
    }

    it('uses the fallback domain {name, version "1"} only when it hashes to the token\'s DOMAIN_SEPARATOR', async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const token = "0x00000000000000000000000000000000000000a1";
      const chainId = (await ethers.provider.getNetwork()).chainId;
      const v1 = { ...alice, provider: tokenWithoutEip5267(token, "USD Coin", "1", chainId) };
      expect(await permitDomain(v1, token, sys.alice.address)).to.deep.equal({
        name: "USD Coin",
        version: "1",
        chainId,
        verifyingContract: token,
      });
      // Version "2" (as USDC's): no permit is signed with a domain the token would not recover.
      const v2 = { ...alice, provider: tokenWithoutEip5267(token, "USD Coin", "2", chainId) };
      expect(await permitDomain(v2, token, sys.alice.address)).to.equal(null);
    });
  });

  describe("withdrawals, operators and traders", function () {
    it("withdraws to the recipient given, and to the account's owner when an operator gives none", async function () {
      const { sys, alice, bob } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      await sys.usdc.mint(sys.alice.address, 1_000n * USDC);
      await deposit(alice, { accountId, token: "USDC", amount: 1_000n * USDC });
      await withdraw(alice, { accountId, token: "USDC", amount: 100n * USDC, to: sys.carol.address });
      expect(await sys.usdc.balanceOf(sys.carol.address)).to.equal(100n * USDC);
      await approveOperator(alice, { accountId, operator: sys.bob.address });
      await withdraw(bob, { accountId, token: "USDC", amount: 50n * USDC });
      expect(await sys.usdc.balanceOf(sys.alice.address)).to.equal(50n * USDC);
    });

    it("revokes an operator on every account with all: true, approved: false", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      await approveOperator(alice, { all: true, operator: sys.bob.address });
      expect(await sys.accounts.isApprovedForAll(sys.alice.address, sys.bob.address)).to.equal(true);
      await approveOperator(alice, { all: true, operator: sys.bob.address, approved: false });
      expect(await sys.accounts.isApprovedForAll(sys.alice.address, sys.bob.address)).to.equal(false);
    });

    it("grants an unlimited trading allowance as type(uint256).max, and refuses −1 before sending", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      expect(UNLIMITED_TRADING_ALLOWANCE).to.equal(ethers.MaxUint256);
      await setTrader(alice, { accountId, trader: sys.bob.address, allowance: UNLIMITED_TRADING_ALLOWANCE });
      expect(await sys.accounts.traderAllowance(accountId, sys.bob.address)).to.equal(ethers.MaxUint256);
      const block = await ethers.provider.getBlockNumber();
      await expect(
        setTrader(alice, { accountId, trader: sys.bob.address, allowance: -1n }),
      ).to.be.rejectedWith(RangeError, "allowance out of uint256 range: -1");
      expect(await ethers.provider.getBlockNumber(), "nothing sent").to.equal(block);
    });
  });

  describe("liquidity", function () {
    async function lpSystem() {
      const { sys, bob } = await systemWithClients();
      await sys.usdc.mint(sys.bob.address, 10_000n * USDC);
      return { sys, bob };
    }

    it("refuses a negative amount, and deposits with minShares the previewed shares less slippageBps, for the receiver given", async function () {
      const { sys, bob } = await loadFixture(lpSystem);
      const block = await ethers.provider.getBlockNumber();
      await expect(depositLiquidity(bob, { amount: -1n })).to.be.rejectedWith(
        RangeError,
        "depositLiquidity: amount must not be negative (quote units)",
      );
      expect(await ethers.provider.getBlockNumber(), "nothing sent").to.equal(block);
      const shares = await sys.pool.previewDeposit(1_000n * USDC);
      const r = await depositLiquidity(bob, {
        amount: 1_000n * USDC,
        receiver: sys.carol.address,
        slippageBps: 170,
      });
      const [assets, receiver, minShares] = sys.pool.interface.decodeFunctionData(
        "depositWithLimit",
        await sentData(r.receipt),
      );
      expect([assets, receiver, minShares]).to.deep.equal([
        1_000n * USDC,
        sys.carol.address,
        down(shares, 170n),
      ]);
      expect(await sys.pool.balanceOf(sys.carol.address)).to.equal(shares);
    });

    it("withdraws assets with maxShares the preview plus slippageBps, redeems shares with minAssets the preview less it, to the receiver given", async function () {
      const { sys, bob } = await loadFixture(lpSystem);
      const { shares } = await depositLiquidity(bob, { amount: 10_000n * USDC });
      await time.increase(HOLDING_PERIOD);
      await refreshFeeds(sys);
      const burn = await sys.pool.previewWithdraw(4_000n * USDC);
      const out = await withdrawLiquidity(bob, {
        assets: 4_000n * USDC,
        receiver: sys.carol.address,
        slippageBps: 130,
      });
      const w = sys.pool.interface.decodeFunctionData("withdrawWithLimit", await sentData(out.receipt));
      expect([w[0], w[1], w[2], w[3]]).to.deep.equal([
        4_000n * USDC,
        sys.carol.address,
        sys.bob.address,
        up(burn, 130n),
      ]);
      expect(await sys.usdc.balanceOf(sys.carol.address)).to.equal(4_000n * USDC);

      const rest = shares - out.shares;
      const paid = await sys.pool.previewRedeem(rest);
      const redeemed = await withdrawLiquidity(bob, {
        shares: rest,
        receiver: sys.carol.address,
        slippageBps: 130,
      });
      const d = sys.pool.interface.decodeFunctionData("redeemWithLimit", await sentData(redeemed.receipt));
      expect([d[0], d[1], d[2], d[3]]).to.deep.equal([
        rest,
        sys.carol.address,
        sys.bob.address,
        down(paid, 130n),
      ]);
    });

    it("requests only the unlocked shares by default, claims with minAssets the claim less slippageBps to the receiver given, and reports a cancel's burned shares", async function () {
      const { sys, bob } = await loadFixture(lpSystem);
      await sys.pool.setExitDelay(EXIT_DELAY);
      const first = await depositLiquidity(bob, { amount: 6_000n * USDC });
      await time.increase(HOLDING_PERIOD);
      await refreshFeeds(sys);
      await depositLiquidity(bob, { amount: 4_000n * USDC }); // locked for the holding period
      const req = await requestRedeem(bob, {});
      expect(req.shares).to.be.within(1n, first.shares);
      expect(await sys.pool.unlockedShares(sys.bob.address)).to.equal(0n);
      await time.increase(EXIT_DELAY);
      await refreshFeeds(sys);
      const half = req.shares / 2n;
      const pays = await sys.pool.previewClaim(sys.bob.address, half);
      const claimed = await claimRedeem(bob, { shares: half, receiver: sys.carol.address, slippageBps: 250 });
      const c = sys.pool.interface.decodeFunctionData("claimRedeem", await sentData(claimed.receipt));
      expect([c[0], c[1], c[2]]).to.deep.equal([half, sys.carol.address, down(pays, 250n)]);
      expect(await sys.usdc.balanceOf(sys.carol.address)).to.equal(pays);
      // A gift to the pool's account raises the share price: the cancel returns the shares worth what
      // was requested and burns the rest.
      await sys.usdc.mint(sys.carol.address, 100_000n * USDC);
      await sys.usdc.connect(sys.carol).approve(sys.vault, 100_000n * USDC);
      await sys.vault.connect(sys.carol).deposit(sys.poolAccountId, sys.usdc, 100_000n * USDC);
      const cancelled = await cancelRedeemRequest(bob);
      expect(cancelled.burned).to.be.greaterThan(0n);
      const [event] = (
        await sys.pool.queryFilter(sys.pool.filters.RedeemRequestCancelled(), cancelled.receipt.blockNumber)
      )
        .filter((e) => e.transactionHash === cancelled.receipt.hash)
        .map((e) => e.args);
      expect([cancelled.shares, cancelled.burned]).to.deep.equal([event.shares, event.burned]);
    });
  });

  describe("errors", function () {
    it("decodes a bool argument as a boolean: OpenInterestCapExceeded on the short side says short", function () {
      const e = makeXMarginError("OpenInterestCapExceeded", [7n, false, 5n * WAD, 4n * WAD]);
      expect(e.args).to.deep.equal({ marketId: 7n, isLong: false, openInterest: 5n * WAD, cap: 4n * WAD });
      expect(e.message).to.equal(
        "the trade would take short open interest of market (or option series) 7 to 5.0000, above the cap of 4.0000",
      );
    });

    it("dates a DeadlineExpired in seconds, and names the payment and the limit of PaymentAboveLimit in USD at the quote's decimals", function () {
      expect(makeXMarginError("DeadlineExpired", [1_800_000_000n]).message).to.equal(
        "the trade's deadline 2027-01-15T08:00:00.000Z has passed",
      );
      expect(
        makeXMarginError("PaymentAboveLimit", [1_234_560_000n, 1_000_000_000n], { quoteDecimals: 6 }).message,
      ).to.equal("the payment 1,234.56 USD is above the limit 1,000.00 USD");
      expect(makeXMarginError("PriceLimitExceeded", [wad("3006"), wad("3000")]).message).to.equal(
        "the fill price 3,006.0000 USD is beyond the limit 3,000.0000 USD (slippage; an option's is its premium per contract)",
      );
    });

    it("writes token amounts with the context's symbol and up to 6 decimals, from makeXMarginError too", function () {
      const weth = "0x00000000000000000000000000000000000000e1";
      const e = makeXMarginError("InsufficientBalance", [3n, weth, wad("1.2345675"), wad("2")], {
        tokens: new Map([[weth, { symbol: "WETH", decimals: 18 }]]),
      });
      expect(e.message).to.equal("account 3 holds 1.234568 WETH, less than the 2.000000 WETH requested");
    });

    it("finds the revert data in a cause, nested deep, preferring a known selector, never a transaction's calldata", function () {
      const known = makeXMarginError("ZeroAmount", []).data;
      const unknown = "0xdeadbeef00";
      const wrapped = new Error("wallet failure", { cause: { info: { error: { data: known } } } });
      expect(decodeError(wrapped)?.name).to.equal("ZeroAmount");
      expect(decodeError(wrapped)?.cause).to.equal(wrapped);
      expect(findRevertData({ error: { error: { error: { error: { data: known } } } } })).to.equal(known);
      expect(findRevertData({ error: { data: unknown }, info: { data: known } })).to.equal(known);
      expect(findRevertData({ transaction: { data: "0xa9059cbb0000" }, error: { data: unknown } })).to.equal(
        unknown,
      );
    });

    it("passes an XMarginError through decodeError as it is, and isXMarginError checks the name", function () {
      const e = makeXMarginError("ZeroAmount", []);
      expect(decodeError(e)).to.equal(e);
      expect(isXMarginError(e, "ZeroAmount")).to.equal(true);
      expect(isXMarginError(e, "NotAuthorized")).to.equal(false);
    });
  });

  describe("market models", function () {
    const series = unsettledSeries(wad("3000"), 1_800_000_000n, true);

    it("calls a series expired from exactly its expiry, and charges a short's settlement rounded up", function () {
      expect(seriesStatus(series, series.expiry - 1n)).to.equal("active");
      expect(seriesStatus(series, series.expiry)).to.equal("expired");
      const settled = { ...series, settled: true, settlementPrice: wad("3200") };
      // 10^-18 contracts of a 200 USD payoff: less than a USDC unit, paid to a long rounded down,
      // charged to a short rounded up.
      expect(settlementPayout(settled, 1n, 10n ** 12n)).to.equal(0n);
      expect(settlementPayout(settled, -1n, 10n ** 12n)).to.equal(-1n);
    });

    it("counts a flip of an option position as new risk, and refuses a perp fill of exactly 0", function () {
      expect(optionIncreasesRisk(WAD, -WAD)).to.equal(true);
      expect(optionIncreasesRisk(-WAD, WAD / 2n)).to.equal(true);
      expect(optionIncreasesRisk(-WAD, -WAD / 2n)).to.equal(false);
      const perp = perpMarketState(wad("1000"), {
        market: "0x00000000000000000000000000000000000000b2",
        underlying: "0x00",
      });
      // Selling twice the skew scale from no skew: 3000·(1 − 2000/2000) = 0.
      expect(() => perpQuote(perp, wad("3000"), -wad("2000"), 10n ** 12n)).to.throw(
        RangeError,
        "InvalidFillPrice(0)",
      );
      expect(perpQuote(perp, wad("3000"), -wad("1999"), 10n ** 12n).fillPrice).to.equal(wad("1.5"));
    });
  });

  describe("formatting", function () {
    it("rounds half away from zero, never writes −0, and gives the digits asked for", function () {
      expect(formatFixed(1_234_567n, 3, 2)).to.equal("1,234.57");
      expect(formatFixed(-1_234_565n, 3, 2)).to.equal("-1,234.57");
      expect(formatFixed(-4n, 3, 2)).to.equal("0.00");
      expect(formatUsd(wad("1234.5678"))).to.equal("1,234.57");
      expect(formatPercent(wad("0.123456"), 3)).to.equal("12.346%");
    });
  });

  describe("client", function () {
    it("forgets a memoised read that failed, so that the next call loads it again", async function () {
      const { alice } = await loadFixture(systemWithClients);
      await expect(alice.memo("round103", () => Promise.reject(new Error("flaky")))).to.be.rejectedWith(
        "flaky",
      );
      expect(await alice.memo("round103", () => Promise.resolve(7))).to.equal(7);
    });

    it("refuses to send on another chain than the deployment's, before any transaction", async function () {
      const { sys } = await loadFixture(systemWithClients);
      const wrong = createClient({
        runner: sys.alice,
        deployment: { ...(await deploymentOf(sys)), chainId: 1 },
      });
      const block = await ethers.provider.getBlockNumber();
      await expect(
        setTrader(wrong, { accountId: 1n, trader: sys.bob.address, allowance: 1n }),
      ).to.be.rejectedWith("wrong network: connected to chain 31337, the deployment is on 1");
      expect(await ethers.provider.getBlockNumber(), "nothing sent").to.equal(block);
    });
  });
});
