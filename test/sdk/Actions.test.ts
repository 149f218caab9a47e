import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  WAD,
  accountHealth,
  approveOperator,
  setTrader,
  getTraderAllowance,
  bid,
  closePosition,
  createAccount,
  deposit,
  getAccountState,
  getHealth,
  getPoolState,
  getHealthMany,
  getLiquidationPrice,
  isLiquidatable,
  isXMarginError,
  listAccounts,
  listAuctions,
  absorb,
  buyBackstopCollateral,
  listBackstopCollateral,
  quoteBackstopCollateral,
  maxWithdrawable,
  modifyPosition,
  openPosition,
  quoteBid,
  quoteBidFromHealth,
  quoteTrade,
  startAuction,
  startAuctions,
  endAuction,
  toHealth,
  withPrice,
  withdraw,
  preview,
  UNLIMITED_TRADING_ALLOWANCE,
  type PreviewAction,
  type XMarginClient,
} from "../../sdk/src";
import { MarginMode, openAccount, wad, atLatestTimestamp } from "../shared/system";
import { callsTo, mintAccountsTo, recordCalls } from "../shared/accounts";
import { assetId } from "../shared/oracles";
import { marketParams, mineAt, trade } from "../shared/perps";
import { expectXMarginError, sdkClient, systemWithClients } from "../shared/sdk";

const USDC = 10n ** 6n;
const QUOTE_UNIT = 10n ** 12n;
const ETH = assetId("ETH");

describe("SDK actions", function () {
  describe("accounts", function () {
    it("creates CROSS and ISOLATED accounts, for the signer or another owner, and lists them", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      // Accounts 1 to 3 are the insurance fund's, the pool's and the auction's backstop.
      const { accountId: cross } = await createAccount(alice);
      const { accountId: isolated } = await createAccount(alice, { mode: "isolated" });
      const { accountId: forBob } = await createAccount(alice, { owner: sys.bob.address });
      expect([cross, isolated, forBob]).to.deep.equal([4n, 5n, 6n]);
      expect(await sys.accounts.marginMode(isolated)).to.equal(MarginMode.ISOLATED);
      expect(await listAccounts(alice)).to.deep.equal([4n, 5n]);
      expect(await listAccounts(alice, { owner: sys.bob.address })).to.deep.equal([6n]);
    });

    it("approves an operator on one account (it may trade) and clears it (NotAuthorized again)", async function () {
      const { sys, alice, bob } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      await sys.usdc.mint(sys.alice.address, 10_000n * USDC);
      await deposit(alice, { accountId, token: "USDC", amount: 10_000n * USDC });
      await approveOperator(alice, { accountId, operator: sys.bob.address });
      const r = await modifyPosition(bob, { accountId, marketId: sys.markets.ETH, sizeDelta: wad("1") });
      expect(r.newSize).to.equal(wad("1"));
      await approveOperator(alice, { accountId, operator: sys.bob.address, approved: false });
      const e = await expectXMarginError(
        modifyPosition(bob, { accountId, marketId: sys.markets.ETH, sizeDelta: wad("1") }),
        "NotAuthorized",
      );
      expect(e.message).to.equal(
        `${sys.bob.address} is not the owner of account ${accountId}, an approved operator of it, or (for trades) a trader with allowance left (a grant spent to 0 ends like a revoked one)`,
      );
      await approveOperator(alice, { all: true, operator: sys.bob.address });
      expect(await sys.accounts.isApprovedForAll(sys.alice.address, sys.bob.address)).to.equal(true);
    });
  });

  describe("listAccounts", function () {
    // Review round 23: anyone can mint accounts to anyone (`createAccountFor`), and past ~10,800 of them
    // the one-call `accountsOf` runs out of a 30M-gas eth_call: listAccounts reads one id per call.
    it("lists an owner's accounts with balanceOf and one tokenOfOwnerByIndex per id, never accountsOf", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      await mintAccountsTo(sys.accounts, sys.carol, sys.bob.address, 250); // accounts 4 to 253
      const ids = Array.from({ length: 250 }, (_, i) => 4n + BigInt(i));
      const iface = sys.accounts.interface;
      const { result, calls } = await recordCalls(() => listAccounts(alice, { owner: sys.bob.address }));
      expect(result).to.deep.equal(ids);
      expect(callsTo(calls, iface, "accountsOf")).to.equal(0);
      expect(callsTo(calls, iface, "balanceOf")).to.equal(1);
      expect(callsTo(calls, iface, "tokenOfOwnerByIndex")).to.equal(250);
    });

    it("returns a page of at most count ids from start, reading only those", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      await mintAccountsTo(sys.accounts, sys.carol, sys.bob.address, 250);
      const owner = sys.bob.address;
      const iface = sys.accounts.interface;
      const page = await recordCalls(() => listAccounts(alice, { owner, start: 100, count: 20 }));
      expect(page.result).to.deep.equal(Array.from({ length: 20 }, (_, i) => 104n + BigInt(i)));
      expect(callsTo(page.calls, iface, "tokenOfOwnerByIndex")).to.equal(20);
      expect(await listAccounts(alice, { owner, start: 240, count: 20 })).to.have.length(10); // the last 10
      expect(await listAccounts(alice, { owner, start: 250 })).to.deep.equal([]);
      expect(await listAccounts(alice, { owner, count: 0 })).to.deep.equal([]);
      await expect(listAccounts(alice, { owner, start: -1 })).to.be.rejectedWith(RangeError);
    });
  });

  describe("deposit", function () {
    it("approves the exact amount for a token without permits, then uses an allowance that covers it", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      await sys.usdc.mint(sys.alice.address, 3_000n * USDC);
      const first = await deposit(alice, { accountId, token: "USDC", amount: 1_000n * USDC });
      expect(first.approval).to.equal("approve");
      expect(await sys.usdc.allowance(sys.alice.address, await sys.vault.getAddress())).to.equal(0n);
      await sys.usdc.connect(sys.alice).approve(await sys.vault.getAddress(), 2_000n * USDC);
      const second = await deposit(alice, { accountId, token: "USDC", amount: 2_000n * USDC });
      expect(second.approval).to.equal("existing");
      expect(await sys.vault.balanceOf(accountId, sys.usdc)).to.equal(3_000n * USDC);
      await sys.usdc.mint(sys.alice.address, USDC);
      await expect(
        deposit(alice, { accountId, token: "USDC", amount: USDC, approval: "permit" }),
      ).to.be.rejectedWith("does not support EIP-2612 permits");
    });

    it("signs an EIP-2612 permit when the token supports one (no approve transaction)", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const token = await ethers.deployContract("MockERC20Permit", ["Permit Dollar", "pUSD", 6]);
      await sys.vault.listCollateral(token, assetId("USDC"), wad("1"), wad("1"), 10n ** 15n, false);
      const { accountId } = await createAccount(alice);
      await token.mint(sys.alice.address, 500n * USDC);
      const r = await deposit(alice, { accountId, token: await token.getAddress(), amount: 500n * USDC });
      expect(r.approval).to.equal("permit");
      expect(await token.nonces(sys.alice.address)).to.equal(1n);
      expect(await token.allowance(sys.alice.address, await sys.vault.getAddress())).to.equal(0n);
      expect(await sys.vault.balanceOf(accountId, token)).to.equal(500n * USDC);
      // 500 pUSD at 1 USD, weight 1.
      expect((await getHealth(alice, { accountId })).equityInitial).to.equal(wad("500"));
    });

    it("previews ProtocolAccountCollateral for any token but the quote into the pool's, the backstop's and the fund's accounts, as the vault refuses it", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const protocolAccounts = [
        sys.poolAccountId,
        await sys.auction.backstopAccountId(),
        await sys.insuranceFund.accountId(),
      ];
      await sys.weth.mint(sys.alice.address, 1n);
      await sys.weth.connect(sys.alice).approve(sys.vault, 1n);
      for (const accountId of protocolAccounts) {
        const weth = await preview(alice, accountId, { type: "deposit", token: "WETH", amount: 1n });
        expect(weth.revert?.name).to.equal("ProtocolAccountCollateral");
        await expect(sys.vault.connect(sys.alice).deposit(accountId, sys.weth, 1n))
          .to.be.revertedWithCustomError(sys.vault, "ProtocolAccountCollateral")
          .withArgs(accountId, sys.weth);
        const usdc = await preview(alice, accountId, { type: "deposit", token: "USDC", amount: USDC });
        expect(usdc.revert).to.equal(undefined);
      }
    });

    it("previews TokenNotListed for an address without code, as the vault refuses it (no BAD_DATA from its decimals)", async function () {
      const { alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      const noCode = "0x000000000000000000000000000000000000dEaD";
      const r = await preview(alice, accountId, { type: "deposit", token: noCode, amount: 1n });
      expect(r.revert?.name).to.equal("TokenNotListed");
    });
  });

  describe("withdraw and maxWithdrawable", function () {
    it("withdraws exactly the maximum; one unit more reverts with InsufficientMargin", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      await sys.weth.mint(sys.alice.address, wad("10"));
      await deposit(alice, { accountId, token: "WETH", amount: wad("10") });
      await openPosition(alice, { accountId, marketId: sys.markets.ETH, size: wad("10") });
      const max = await maxWithdrawable(alice, { accountId, token: "WETH" });
      // equity_IM = 10·3000·0.9 − 15.075 fee − 150 premium = 26,834.925; IM = 3,061.8 for the perp (see
      // the engine tests) + 300.18 per WETH held (the 10.006% shock: WETH is a long delta in the perp's
      // group): the free 20,771.325 USD at 2,700 − 300.18 per WETH is ≈ 8.6554 WETH.
      expect(max).to.be.closeTo(wad("8.6554"), wad("0.0001"));
      await atLatestTimestamp();
      const e = await expectXMarginError(
        withdraw(alice, { accountId, token: "WETH", amount: max + 1n }),
        "InsufficientMargin",
      );
      // 3,061.8 + 300.18 per WETH left (1.3446…).
      expect(e.args).to.have.property("initialRequirement", 3_465_431_662_999_724_979_099n);
      await atLatestTimestamp();
      await withdraw(alice, { accountId, token: "WETH", amount: max });
      const h = await getHealth(alice, { accountId });
      expect(h.equityInitial >= BigInt(h.initialRequirement)).to.equal(true);
      // Less than one more wei of WETH (2.7e-15 USD at the initial weight) is left over.
      expect(h.equityInitial - h.initialRequirement < 3000n).to.equal(true);
      expect(await maxWithdrawable(alice, { accountId, token: "WETH" })).to.equal(0n);
    });
  });

  describe("withdrawal previews: who sends it and where to", function () {
    // Review round 23: the preview checked the amount, balance and margin only, while the vault also
    // refuses anyone but the owner and its operators, and an operator's withdrawal anywhere but to the
    // owner. Alice's account holds 10,000 USDC; Bob trades it with a 1,000 USDC grant, Carol is an
    // ERC-721 operator of it, the LP a stranger to it.
    async function withdrawalSenders() {
      const base = await systemWithClients();
      const { sys, alice } = base;
      const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      await setTrader(alice, { accountId, trader: sys.bob.address, allowance: 1_000n * USDC });
      await approveOperator(alice, { accountId, operator: sys.carol.address });
      const carol = await sdkClient(sys, sys.carol);
      const stranger = await sdkClient(sys, sys.lp);
      return { ...base, carol, stranger, accountId };
    }
    const amount = 1_000n * USDC;
    const action = { type: "withdraw", token: "USDC", amount } as const;

    it("predicts NotAuthorized for a trader's and a stranger's withdrawal, as the vault reverts", async function () {
      const { bob, stranger, accountId } = await loadFixture(withdrawalSenders);
      for (const client of [bob, stranger]) {
        const predicted = (await preview(client, accountId, action)).revert;
        expect(predicted?.name).to.equal("NotAuthorized");
        expect(predicted?.args).to.have.property("caller", await client.signer!.getAddress());
        await expectXMarginError(withdraw(client, { accountId, token: "USDC", amount }), "NotAuthorized");
      }
    });

    it("predicts InvalidRecipient for an operator's withdrawal anywhere but to the owner, as the vault reverts", async function () {
      const { sys, carol, accountId } = await loadFixture(withdrawalSenders);
      const toCarol = { ...action, to: sys.carol.address };
      expect((await preview(carol, accountId, toCarol)).revert?.name).to.equal("InvalidRecipient");
      await expectXMarginError(withdraw(carol, { accountId, ...toCarol }), "InvalidRecipient");
    });

    it("sends an operator's withdrawal to the owner by default, which the preview passes", async function () {
      const { sys, carol, accountId } = await loadFixture(withdrawalSenders);
      expect((await preview(carol, accountId, action)).revert).to.equal(undefined);
      expect((await preview(carol, accountId, { ...action, to: sys.alice.address })).revert).to.equal(
        undefined,
      );
      const before = await sys.usdc.balanceOf(sys.alice.address);
      await withdraw(carol, { accountId, token: "USDC", amount });
      expect(await sys.vault.balanceOf(accountId, sys.usdc)).to.equal(9_000n * USDC);
      expect(await sys.usdc.balanceOf(sys.alice.address)).to.equal(before + amount);
    });

    it("passes the owner's withdrawal to any address but the zero address", async function () {
      const { sys, alice, accountId } = await loadFixture(withdrawalSenders);
      expect((await preview(alice, accountId, { ...action, to: sys.carol.address })).revert).to.equal(
        undefined,
      );
      const toZero = { ...action, to: ethers.ZeroAddress };
      expect((await preview(alice, accountId, toZero)).revert?.name).to.equal("InvalidRecipient");
      await expectXMarginError(withdraw(alice, { accountId, ...toZero }), "InvalidRecipient");
      const before = await sys.usdc.balanceOf(sys.carol.address);
      await withdraw(alice, { accountId, token: "USDC", amount, to: sys.carol.address });
      expect(await sys.usdc.balanceOf(sys.carol.address)).to.equal(before + amount);
    });

    it("predicts the vault's order: a zero amount first, then the sender, then the balance and margin", async function () {
      const { carol, stranger, accountId } = await loadFixture(withdrawalSenders);
      const predicted = async (client: XMarginClient, a: PreviewAction) =>
        (await preview(client, accountId, a)).revert?.name;
      expect(await predicted(stranger, { ...action, amount: 0n })).to.equal("ZeroAmount");
      // 20,000 USDC is more than the balance: the sender's check comes first.
      const tooMuch = { ...action, amount: 20_000n * USDC };
      expect(await predicted(stranger, tooMuch)).to.equal("NotAuthorized");
      await expectXMarginError(withdraw(stranger, { accountId, ...tooMuch }), "NotAuthorized");
      expect(await predicted(carol, tooMuch)).to.equal("InsufficientBalance");
      await expectXMarginError(withdraw(carol, { accountId, ...tooMuch }), "InsufficientBalance");
    });
  });

  describe("trading grants", function () {
    /** A new account of Alice's holding 10,000 USDC. */
    async function aliceWith10kUsdc(
      sys: Awaited<ReturnType<typeof systemWithClients>>["sys"],
      alice: XMarginClient,
    ) {
      const { accountId } = await createAccount(alice);
      await sys.usdc.mint(sys.alice.address, 10_000n * USDC);
      await deposit(alice, { accountId, token: "USDC", amount: 10_000n * USDC });
      return accountId;
    }

    it("lets a trader trade (not withdraw), spending the previewed trading cost, until revoked", async function () {
      const { sys, alice, bob } = await loadFixture(systemWithClients);
      const accountId = await aliceWith10kUsdc(sys, alice);
      await setTrader(alice, { accountId, trader: sys.bob.address, allowance: 100n * USDC });
      const T = BigInt(await time.latest()) + 1n;
      const action = { type: "trade", marketId: sys.markets.ETH, sizeDelta: wad("1") } as const;
      const p = await preview(bob, accountId, action, { timestamp: T });
      const cost = p.trade?.tradingCost ?? 0n;
      // 1 ETH into an empty book at 3,000 fills at 3,000·(1 + 0.5/1,000) = 3,001.5: skew premium
      // 1.5 USD, taker fee 0.05% · 3,001.5 = 1.50075 USD; 3.00075 USDC in all.
      expect(cost).to.equal(3_000_750n);
      await time.setNextBlockTimestamp(T);
      const r = await modifyPosition(bob, { accountId, ...action });
      expect(r.newSize).to.equal(wad("1"));
      expect(await sys.accounts.traderAllowance(accountId, sys.bob.address)).to.equal(100n * USDC - cost);
      await expectXMarginError(
        withdraw(bob, { accountId, token: "USDC", amount: 1n * USDC }),
        "NotAuthorized",
      );
      await setTrader(alice, { accountId, trader: sys.bob.address, allowance: 0n });
      await expectXMarginError(
        modifyPosition(bob, { accountId, marketId: sys.markets.ETH, sizeDelta: -wad("1") }),
        "NotAuthorized",
      );
    });

    it("reads what is left with getTraderAllowance, and says in USD when a trade costs more", async function () {
      const { sys, alice, bob } = await loadFixture(systemWithClients);
      const accountId = await aliceWith10kUsdc(sys, alice);
      await setTrader(alice, { accountId, trader: sys.bob.address, allowance: 2n * USDC });
      expect(await getTraderAllowance(bob, { accountId, trader: sys.bob.address })).to.equal(2n * USDC);
      // 1 ETH costs 3.00075 USDC (see above), more than the 2 left.
      const error = await modifyPosition(bob, {
        accountId,
        marketId: sys.markets.ETH,
        sizeDelta: wad("1"),
      }).then(
        () => expect.fail("expected TraderAllowanceExceeded"),
        (e: unknown) => e,
      );
      expect(isXMarginError(error) && error.name).to.equal("TraderAllowanceExceeded");
      expect((error as Error).message)
        .to.contain("3.00 USD")
        .and.to.contain("2.00 USD left");
    });

    it("predicts a trade's authorisation for the client's signer: owner, trader within or beyond its allowance, stranger", async function () {
      const { sys, alice, bob } = await loadFixture(systemWithClients);
      const accountId = await aliceWith10kUsdc(sys, alice);
      const stranger = await sdkClient(sys, sys.carol);
      const action = { type: "trade", marketId: sys.markets.ETH, sizeDelta: wad("1") } as const;
      const predicted = async (client: XMarginClient) =>
        (await preview(client, accountId, action)).revert?.name;
      expect(await predicted(alice)).to.equal(undefined);
      expect(await predicted(stranger)).to.equal("NotAuthorized");
      await setTrader(alice, { accountId, trader: sys.bob.address, allowance: 2n * USDC });
      expect(await predicted(bob)).to.equal("TraderAllowanceExceeded"); // costs 3.00075 USDC
      await setTrader(alice, { accountId, trader: sys.bob.address, allowance: 4n * USDC });
      expect(await predicted(bob)).to.equal(undefined);
      // Margin comes after authorisation on chain, and in the prediction.
      const big = { ...action, sizeDelta: wad("100") };
      expect((await preview(stranger, accountId, big)).revert?.name).to.equal("NotAuthorized");
      expect((await preview(alice, accountId, big)).revert?.name).to.equal("InsufficientMargin");
    });

    it("refuses an allowance outside uint256 before sending", async function () {
      const { alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      for (const allowance of [-1n, UNLIMITED_TRADING_ALLOWANCE + 1n]) {
        await expect(
          setTrader(alice, { accountId, trader: ethers.ZeroAddress, allowance }),
        ).to.be.rejectedWith(RangeError);
      }
    });
  });

  describe("trades", function () {
    it("quotes, opens with a limit from slippage, modifies and closes a position", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      await sys.usdc.mint(sys.alice.address, 50_000n * USDC);
      await deposit(alice, { accountId, token: "USDC", amount: 50_000n * USDC });
      const q = await quoteTrade(alice, { marketId: sys.markets.ETH, sizeDelta: wad("2"), slippageBps: 30 });
      // 3000·(1 + 1/1000) = 3,003; fee 2·3003·0.0005 = 3.003 USD; limit ⌈3003·1.003⌉ = 3,012.009.
      expect(q).to.deep.equal({ fillPrice: wad("3003"), fee: wad("3.003"), limitPrice: wad("3012.009") });
      const opened = await openPosition(alice, {
        accountId,
        marketId: sys.markets.ETH,
        size: wad("2"),
        slippageBps: 30,
      });
      expect([opened.fillPrice, opened.fee, opened.limitPrice, opened.newSize]).to.deep.equal([
        wad("3003"),
        wad("3.003"),
        wad("3012.009"),
        wad("2"),
      ]);
      const sold = await modifyPosition(alice, {
        accountId,
        marketId: sys.markets.ETH,
        sizeDelta: -wad("0.5"),
      });
      // A sell from skew 2: 3000·(1 + (4 − 0.5)/2000) = 3,005.25 (above the entry: a gain of 0.5·2.25).
      expect([sold.fillPrice, sold.newSize, sold.realizedPnl]).to.deep.equal([
        wad("3005.25"),
        wad("1.5"),
        wad("1.125"),
      ]);
      const e = await expectXMarginError(
        modifyPosition(alice, {
          accountId,
          marketId: sys.markets.ETH,
          sizeDelta: wad("1"),
          limitPrice: wad("3000"),
        }),
        "PriceLimitExceeded",
      );
      // From skew 1.5: 3000·(1 + (3 + 1)/2000) = 3,006.
      expect(e.message).to.equal(
        "the fill price 3,006.0000 USD is beyond the limit 3,000.0000 USD (slippage; an option's is its premium per contract)",
      );
      const past = BigInt(await time.latest()) - 1n; // blocks may share a timestamp here
      await expectXMarginError(
        modifyPosition(alice, { accountId, marketId: sys.markets.ETH, sizeDelta: wad("1"), deadline: past }),
        "DeadlineExpired",
      );
      const closed = await closePosition(alice, { accountId, marketId: sys.markets.ETH });
      expect(closed.newSize).to.equal(0n);
      await expect(closePosition(alice, { accountId, marketId: sys.markets.ETH })).to.be.rejectedWith(
        "no position",
      );
    });
  });

  describe("getHealthMany", function () {
    it("returns the health of 100 accounts in one healthMany call, equal to engine.health of each (halving calls that run out of gas)", async function () {
      this.timeout(300_000);
      const { sys, alice } = await loadFixture(systemWithClients);
      const ids: bigint[] = [];
      for (let i = 0; i < 100; i++) {
        const deposits: [typeof sys.usdc, bigint][] = [[sys.usdc, BigInt(1_000 + i * 37) * USDC]];
        if (i % 4 === 1) deposits.push([sys.weth, wad("0.5")]);
        if (i % 4 === 2) deposits.push([sys.wbtc, 2n * 10n ** 6n]);
        const id = await openAccount(sys, sys.alice, MarginMode.CROSS, deposits);
        if (i % 3 === 0)
          await trade(sys.perps, sys.alice, id, sys.markets.ETH, (i % 2 === 0 ? 1n : -1n) * wad("0.1"));
        if (i % 5 === 0) await trade(sys.perps, sys.alice, id, sys.markets.BTC, -wad("0.01"));
        ids.push(id);
      }
      // Count the eth_calls the action makes through the client's provider.
      const provider = ethers.provider;
      const original = provider.call.bind(provider);
      let calls = 0;
      provider.call = (tx) => {
        calls += 1;
        return original(tx);
      };
      let many;
      try {
        many = await getHealthMany(alice, {
          accountIds: ids,
          blockTag: await ethers.provider.getBlockNumber(),
        });
      } finally {
        provider.call = original;
      }
      // One healthMany call, and one accountCount read that refuses ids no account has.
      expect(calls).to.equal(2);
      expect(many).to.have.length(100);
      // A call that runs out of gas is retried in halves: 100 accounts need ~6M gas, so with 2M per
      // call they go in four calls of 25, with the same result.
      expect(await getHealthMany(alice, { accountIds: ids, gasLimit: 2_000_000n })).to.deep.equal(many);
      for (let i = 0; i < ids.length; i++) {
        const h = await sys.engine.health(ids[i]);
        expect(many[i]).to.deep.equal(toHealth(h));
      }
    });
  });

  describe("health of an id that does not exist", function () {
    it("throws UnknownAccount from getHealth and getHealthMany, where the engine's view reads an empty, healthy account", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      const next = accountId + 1n;
      // The view: zeros and an unbounded ratio, which a dashboard would show as "healthy".
      expect((await sys.engine.health(next)).healthRatio).to.equal(ethers.MaxUint256);
      const single = await expectXMarginError(getHealth(alice, { accountId: next }), "UnknownAccount");
      const many = await expectXMarginError(
        getHealthMany(alice, { accountIds: [accountId, next] }),
        "UnknownAccount",
      );
      const zero = await expectXMarginError(getHealthMany(alice, { accountIds: [0n] }), "UnknownAccount");
      expect([single.args, many.args, zero.args]).to.deep.equal([
        { accountId: next },
        { accountId: next },
        { accountId: 0n },
      ]);
      // At an earlier block the account did not exist yet.
      const before = (await ethers.provider.getBlockNumber()) - 1;
      await expectXMarginError(
        getHealthMany(alice, { accountIds: [accountId], blockTag: before }),
        "UnknownAccount",
      );
      expect(await getHealthMany(alice, { accountIds: [accountId] })).to.have.length(1);
    });
  });

  describe("liquidations", function () {
    /** Bob's account, long 2 ETH on 1,000 USDC, below maintenance once ETH is at 2,650. */
    async function liquidatableVictim({
      sys,
      bob,
    }: Awaited<ReturnType<typeof systemWithClients>>): Promise<bigint> {
      await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
      const { accountId: victim } = await createAccount(bob);
      await sys.usdc.mint(sys.bob.address, 1_000n * USDC);
      await deposit(bob, { accountId: victim, token: "USDC", amount: 1_000n * USDC });
      await openPosition(bob, { accountId: victim, marketId: sys.markets.ETH, size: wad("2") });
      return victim;
    }

    it("starts several auctions in one transaction, skipping an account that is not liquidatable", async function () {
      const f = await loadFixture(systemWithClients);
      const { sys, keeper } = f;
      const victim = await liquidatableVictim(f);
      const healthy = (await createAccount(f.bob)).accountId;
      await sys.feeds.ETH.updateAnswer(2_650n * 10n ** 8n);
      const { started } = await startAuctions(keeper, { accountIds: [healthy, victim] });
      expect(started).to.deep.equal([victim]);
      expect((await listAuctions(keeper)).map((a) => a.accountId)).to.deep.equal([victim]);
    });

    it("starts an auction, lists it from events, quotes a bid like the pure math and bids", async function () {
      const f = await loadFixture(systemWithClients);
      const { sys, keeper } = f;
      const victim = await liquidatableVictim(f);
      await expectXMarginError(startAuction(keeper, { accountId: victim }), "AccountHealthy");
      await sys.feeds.ETH.updateAnswer(2_650n * 10n ** 8n);
      await startAuction(keeper, { accountId: victim });
      const start = BigInt(await time.latest());

      const [listed] = await listAuctions(keeper);
      expect(listed).to.include({
        accountId: victim,
        startTime: start,
        starter: sys.keeper.address,
        discount: wad("0.02"),
        absorbableAt: start + 1800n,
      });
      expect(
        await listAuctions(keeper, { fromBlock: (await ethers.provider.getBlockNumber()) + 1 }),
      ).to.deep.equal([]);

      // The bidder's account is set up first, so the quote and the bid share the halfway second.
      const { accountId: bidder } = await createAccount(keeper);
      await sys.usdc.mint(sys.keeper.address, 20_000n * USDC);
      await deposit(keeper, { accountId: bidder, token: "USDC", amount: 20_000n * USDC });
      await mineAt(sys, start + 900n);
      const q = await quoteBid(keeper, { accountId: victim, fraction: WAD });
      const [startDiscount, maxDiscount, penalty, duration, flagReward] = await sys.auction.params();
      const pure = quoteBidFromHealth(
        await getHealth(keeper, { accountId: victim }),
        WAD,
        900n,
        { startDiscount, maxDiscount, penalty, duration, flagReward },
        QUOTE_UNIT,
      );
      // Halfway through the auction: d = 0.02 + 0.08·0.5 = 0.06.
      expect(q).to.deep.equal({
        filled: pure.filled,
        payment: pure.payment,
        insurancePayout: 0n,
        discount: wad("0.06"),
      });
      expect(q.filled > 0n && q.filled < WAD).to.equal(true); // partial: capped at the restoring fraction

      await atLatestTimestamp();
      const r = await bid(keeper, { accountId: victim, bidderAccountId: bidder, fraction: WAD });
      expect([r.filled, r.payment, r.penalty, r.discount]).to.deep.equal([
        q.filled,
        q.payment,
        pure.penalty,
        wad("0.06"),
      ]);
      // The bid restored the account, which ended the auction.
      expect(await listAuctions(keeper)).to.deep.equal([]);
    });

    it("has the backstop absorb an auction nobody bid on, once its discount is at its maximum", async function () {
      const f = await loadFixture(systemWithClients);
      const { sys, keeper } = f;
      const victim = await liquidatableVictim(f);
      await sys.feeds.ETH.updateAnswer(2_650n * 10n ** 8n);
      await startAuction(keeper, { accountId: victim });
      const [{ absorbableAt }] = await listAuctions(keeper);
      await expectXMarginError(absorb(keeper, { accountId: victim }), "AbsorbTooEarly");

      await mineAt(sys, absorbableAt);
      const q = await quoteBid(keeper, { accountId: victim, fraction: WAD });
      await atLatestTimestamp();
      const r = await absorb(keeper, { accountId: victim });
      // The backstop's bid is the one a bidder would place at dmax.
      expect([r.filled, r.payment, r.discount]).to.deep.equal([q.filled, q.payment, wad("0.10")]);
      expect(await listAuctions(keeper)).to.deep.equal([]);
      // The backstop holds the slice for the LPs, worth what it paid plus the discount.
      expect((await getPoolState(keeper)).backstopValue).to.equal(await sys.pool.backstopValue());
      expect(await sys.pool.backstopValue()).to.be.greaterThan(0n);
    });

    // Review round 16: nothing ended an auction whose account recovered, so it stayed frozen and its
    // recorded deficit stayed in the LP share price.
    it("ends the auction of an account its owner cured: unfrozen, listed no more", async function () {
      const f = await loadFixture(systemWithClients);
      const { sys, bob, keeper } = f;
      const victim = await liquidatableVictim(f);
      await sys.feeds.ETH.updateAnswer(2_650n * 10n ** 8n);
      await startAuction(keeper, { accountId: victim });
      await expectXMarginError(endAuction(keeper, { accountId: victim }), "AccountNotHealthy");
      await sys.usdc.mint(sys.bob.address, 1_000n * USDC);
      await deposit(bob, { accountId: victim, token: "USDC", amount: 1_000n * USDC });
      expect(await sys.auction.isFrozen(victim)).to.equal(true);
      await endAuction(keeper, { accountId: victim });
      expect(await sys.auction.isFrozen(victim)).to.equal(false);
      expect(await listAuctions(keeper)).to.deep.equal([]);
      await expectXMarginError(endAuction(keeper, { accountId: victim }), "AuctionNotActive");
    });

    it("buys the backstop's absorbed collateral at the quoted Dutch discount", async function () {
      const { sys, bob, keeper } = await loadFixture(systemWithClients);
      // Bob's 0.5 WETH backs a short 0.1 BTC; BTC at 75,000 makes it liquidatable and nobody bids.
      const { accountId: victim } = await createAccount(bob);
      await sys.weth.mint(sys.bob.address, wad("0.5"));
      await deposit(bob, { accountId: victim, token: "WETH", amount: wad("0.5") });
      await openPosition(bob, { accountId: victim, marketId: sys.markets.BTC, size: -wad("0.1") });
      await sys.feeds.BTC.updateAnswer(75_000n * 10n ** 8n);
      await startAuction(keeper, { accountId: victim });
      const [{ absorbableAt }] = await listAuctions(keeper);
      await mineAt(sys, absorbableAt);
      await absorb(keeper, { accountId: victim });
      const absorbedAt = BigInt(await time.latest());
      const held = await sys.vault.balanceOf(await sys.auction.backstopAccountId(), sys.weth);
      expect(held).to.be.greaterThan(0n);

      expect(await listBackstopCollateral(keeper)).to.deep.equal([
        {
          token: (await sys.weth.getAddress()).toLowerCase(),
          symbol: "WETH",
          amount: held,
          ...(await quoteBackstopCollateral(keeper, { token: "WETH", amount: held })),
        },
      ]);
      const { accountId: buyer } = await createAccount(keeper);
      await sys.usdc.mint(sys.keeper.address, 5_000n * USDC);
      await deposit(keeper, { accountId: buyer, token: "USDC", amount: 5_000n * USDC });
      await mineAt(sys, absorbedAt + 900n);
      const q = await quoteBackstopCollateral(keeper, { token: "WETH", amount: held });
      expect(q.discount).to.equal(wad("0.05")); // half the auction's duration: half of dmax
      await atLatestTimestamp();
      const r = await buyBackstopCollateral(keeper, { accountId: buyer, token: "WETH", amount: held });
      expect([r.payment, r.discount]).to.deep.equal([q.payment, q.discount]);
      expect(await sys.vault.balanceOf(buyer, sys.weth)).to.equal(held);
      expect(await sys.vault.balanceOf(buyer, sys.usdc)).to.equal(5_000n * USDC - q.payment);
      await expectXMarginError(
        quoteBackstopCollateral(keeper, { token: "WETH", amount: 1n }),
        "InvalidCollateralPurchase",
      );
      expect(await listBackstopCollateral(keeper)).to.deep.equal([]);
    });

    it("finds the ETH price at which an account becomes liquidatable, to the feed's precision on chain", async function () {
      const { sys, alice } = await loadFixture(systemWithClients);
      const { accountId } = await createAccount(alice);
      await sys.weth.mint(sys.alice.address, wad("2"));
      await sys.usdc.mint(sys.alice.address, 1_000n * USDC);
      await deposit(alice, { accountId, token: "WETH", amount: wad("2") });
      await deposit(alice, { accountId, token: "USDC", amount: 1_000n * USDC });
      await openPosition(alice, { accountId, marketId: sys.markets.ETH, size: wad("5") });
      const { spot, down, up } = await getLiquidationPrice(alice, { accountId, asset: ETH });
      // The symbol, as listPerpMarkets names the underlying, is the same asset.
      expect(await getLiquidationPrice(alice, { accountId, asset: "ETH" })).to.deep.equal({ spot, down, up });
      expect(spot).to.equal(wad("3000"));
      expect(up).to.equal(null); // a net long gains as ETH rises
      if (down === null) expect.fail("a leveraged long has a liquidation price");
      // equity_MM = 2·P·0.95 + 1,000 − 7.52 fee + 5·(P − 3,007.5) = 6.9·P − 14,045; MM ≈ 0.0732·(5 + 2)·P
      // + 0.002·5·P = 0.5224·P (the 2 WETH are a long delta in the group); they meet at P ≈ 14,045 / 6.3776
      // ≈ 2,202.2.
      expect(down).to.be.closeTo(wad("2202.2"), wad("0.5"));
      const state = await getAccountState(alice, { accountId });
      expect(isLiquidatable(accountHealth(withPrice(state, ETH, down)))).to.equal(true);
      expect(isLiquidatable(accountHealth(withPrice(state, ETH, down + 1n)))).to.equal(false);
      // On chain, at the 8-decimal feed prices just below and just above it (same second: no funding).
      const feedUnit = 10n ** 10n;
      await atLatestTimestamp();
      await sys.feeds.ETH.updateAnswer(down / feedUnit);
      expect(isLiquidatable(await getHealth(alice, { accountId }))).to.equal(true);
      await atLatestTimestamp();
      await sys.feeds.ETH.updateAnswer(down / feedUnit + 1n);
      expect(isLiquidatable(await getHealth(alice, { accountId }))).to.equal(false);
    });
  });
});

export type { XMarginClient };
