/**
 * What the keeper spends its gas and capital on (review round 60, docs/reliability.md rows 145–148).
 * Dust pushed under water was flagged at a loss, one transaction per account, ahead of the book that
 * mattered; a small account hovering at its maintenance line was restarted for no reward; deficits of
 * cents were recorded with a transaction per price tick; a bidder account left with WETH against a
 * quote debt bid on nothing after a fall. Gas in these tests is Hardhat's (about 1 gwei), ETH at
 * 2,500–2,600 USD.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad } from "../shared/system";
import { deployOptionsSystem } from "../shared/options";
import { bobLongsUnderWater, trade } from "../shared/perps";
import { mintAndApprove } from "../shared/tokens";
import { setFeedPrice } from "../shared/oracles";
import { hardhatWallet } from "../shared/e2e";
import { startInProcessKeeper, type InProcessKeeper } from "../shared/keeper";
import {
  byStakeThenUrgency,
  expectedFlagReward,
  isDeficitWorthRecording,
  isFarBelowMaintenance,
  isStartWorthSending,
} from "../../scripts/keeper/logic";
import { OP_GAS_PRICE_ORACLE, TxSender } from "../../scripts/keeper/sender";
import { createLogger } from "../../scripts/keeper/log";
import { Wallet, type JsonRpcProvider } from "ethers";

const USDC = 10n ** 6n;
const DUST = 10;
const KEEPER = hardhatWallet(4).address;

/**
 * Alice long 10 ETH on 5,000 USDC (the book that matters: MM 1,955.53 at ETH 2,600, equity_MM 834.93,
 * ratio 0.43), and a griefer's 10 dust accounts, each long 0.0004 ETH on 0.184 USDC (Bob's proportion in
 * KeeperStep's ordering test: MM 0.078, equity 0.0114, ratio 0.146, so each is "closer to insolvency").
 */
async function dustBesideAlice() {
  const sys = await deployOptionsSystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
  const dust: bigint[] = [];
  for (let i = 0; i < DUST; i++) {
    const id = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 184_000n]]);
    await trade(sys.perps, sys.bob, id, sys.markets.ETH, wad("0.0004"));
    dust.push(id);
  }
  await setFeedPrice(sys.feeds.ETH, "2600");
  return { sys, alice, dust };
}

/** The keeper's transactions logged from line `from` on: action and account. */
function keeperTxs(keeper: InProcessKeeper, from: number) {
  return keeper.lines
    .slice(from)
    .filter((l) => l.msg === "transaction mined" || l.msg === "transaction reverted")
    .map((l) => ({ action: l.fields.action as string, accountId: l.fields.accountId as string | undefined }));
}

describe("Keeper spending: gas and capital go where the money is", function () {
  describe("ten dust accounts pushed under water beside a 10 ETH book", function () {
    it("are not flagged at a loss, and the 10 ETH book is the pass's first transaction", async function () {
      const { sys, alice, dust } = await loadFixture(dustBesideAlice);
      const d = await sys.engine.health(dust[0]);
      // (Funding accrues by the second: the fixture's timestamps move these in the last digits.)
      expect(d.maintenanceRequirement).to.be.closeTo(78181652536150694n, 10n ** 12n); // 0.078 USD
      expect(d.equityMark).to.be.closeTo(11392760000000000n, 10n ** 12n); // 0.0114 USD: the reward's cap
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      const eth0 = await ethers.provider.getBalance(KEEPER);
      const usdc0 = await sys.usdc.balanceOf(KEEPER);
      const from = keeper.lines.length;

      const report = await keeper.step();

      const started = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted());
      const spentWei = eth0 - (await ethers.provider.getBalance(KEEPER));
      const txs = keeperTxs(keeper, from);
      // Before the fix: 10 startAuction on dust first (235,903 gas each, 2.36M in all, about 0.61 USD of
      // gas each at ~0.95 gwei and ETH 2,600, for a reward of 0.011 USDC each), then Alice's start as the
      // pass's 11th transaction.
      expect(started.map((e) => e.args.accountId)).to.deep.equal([alice]);
      expect(txs.slice(0, 2).map((t) => [t.action, t.accountId])).to.deep.equal([
        ["startAuction", alice.toString()],
        ["bidAndClose", alice.toString()],
      ]);
      expect(report.notStarted).to.have.members(dust);
      // Alice's start and bid only (before the fix: 0.0031 ETH for the twelve transactions).
      expect(spentWei).to.be.lessThan(ethers.parseEther("0.001"));
      expect(await sys.usdc.balanceOf(KEEPER)).to.be.gte(usdc0);
      // The dust stays liquidatable for anyone who will flag it; the keeper asks again every pass.
      expect((await keeper.step()).notStarted).to.have.members(dust);
      expect((await sys.auction.queryFilter(sys.auction.filters.AuctionStarted())).length).to.equal(1);
    });
  });

  describe("a small account hovering at its maintenance line", function () {
    /**
     * Long 0.1 ETH on 50 USDC (Alice's book at 1/100: MM 19.56 USD, below --min-stake-usd 100): at ETH
     * 2,600 its flag reward (its mark, 9.83 USDC) pays for the start. The owner tops it up, the keeper
     * ends the auction; ETH falls to 2,450 and it is under water again, within the reward's 1-day
     * cooldown.
     */
    async function hovering() {
      const sys = await deployOptionsSystem();
      const small = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 50n * USDC]]);
      await trade(sys.perps, sys.alice, small, sys.markets.ETH, wad("0.1"));
      const traded = BigInt(await time.latest());
      await setFeedPrice(sys.feeds.ETH, "2600");
      return { sys, small, traded };
    }

    it("is restarted only when the restart pays: within the cooldown it pays nothing, so it is not", async function () {
      const { sys, small, traded } = await loadFixture(hovering);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      // The reward is the book's mark, which funding moves by the second since the trade: the start, the
      // step's first transaction, is mined a minute after it.
      await time.setNextBlockTimestamp(traded + 60n);
      await keeper.step();
      let started = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted());
      expect(started.map((e) => [e.args.accountId, e.args.flagReward])).to.deep.equal([[small, 9_834_991n]]);

      await mintAndApprove(sys.usdc, sys.alice, await sys.vault.getAddress(), 30n * USDC);
      await sys.vault.connect(sys.alice).deposit(small, sys.usdc, 30n * USDC);
      expect((await keeper.step()).ended).to.deep.equal([small]);
      await setFeedPrice(sys.feeds.ETH, "2450");
      const eth0 = await ethers.provider.getBalance(KEEPER);

      const report = await keeper.step();

      started = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted());
      const spentWei = eth0 - (await ethers.provider.getBalance(KEEPER));
      // Before the fix: restarted (235,903 gas) for a flag reward of 0, and ended again at the next
      // top-up: two transactions per crossing, nothing earned.
      expect(started).to.have.length(1);
      expect(report.notStarted).to.deep.equal([small]);
      expect(spentWei).to.equal(0n);
    });
  });

  describe("a dust auction a few cents under water, its price ticking", function () {
    /** A dust account (0.184 USDC, long 0.0004 ETH) flagged by the griefer at 2,600, then ETH at 2,100. */
    async function insolventDust() {
      const sys = await deployOptionsSystem();
      const id = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 184_000n]]);
      await trade(sys.perps, sys.bob, id, sys.markets.ETH, wad("0.0004"));
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.connect(sys.bob).startAuction(id);
      await setFeedPrice(sys.feeds.ETH, "2100");
      return { sys, id };
    }

    it("does not get an updateDeficit per pass for cents of deficit", async function () {
      const { sys, id } = await loadFixture(insolventDust);
      expect((await sys.engine.health(id)).equityMark).to.be.lessThan(0n);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
      const eth0 = await ethers.provider.getBalance(KEEPER);
      const updates = () => sys.auction.queryFilter(sys.auction.filters.PendingDeficitUpdated(id));
      const before = (await updates()).length;

      for (let price = 2100; price > 2050; price -= 10) {
        await setFeedPrice(sys.feeds.ETH, String(price));
        await keeper.step();
      }

      const sent = (await updates()).length - before;
      const spentWei = eth0 - (await ethers.provider.getBalance(KEEPER));
      // Before the fix: 5 updateDeficit transactions, one per 10-USD tick (each raises the deficit by 0.004 USDC, about 2%).
      expect(sent).to.equal(0);
      expect(spentWei).to.equal(0n);
    });
  });

  describe("on an OP-stack chain (an L1 data fee on top of the gas)", function () {
    it("counts the fee in a bid's cost: a bid the fee eats is not sent, and is once the fee falls", async function () {
      const { sys, alice } = await loadFixture(dustBesideAlice);
      // The GasPriceOracle predeploy, charging 0.001 ETH a byte: ~0.2 ETH (~500 USD) for a bid's bytes.
      const mock = await ethers.deployContract("GasPriceOracleMock");
      await ethers.provider.send("hardhat_setCode", [
        OP_GAS_PRICE_ORACLE,
        await ethers.provider.getCode(mock),
      ]);
      const oracle = await ethers.getContractAt("GasPriceOracleMock", OP_GAS_PRICE_ORACLE);
      await oracle.setFeePerByte(10n ** 15n);
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);

      let from = keeper.lines.length;
      await keeper.step();
      // Alice's book matters, so it is started whatever it costs; the bid would lose the fee.
      expect(keeperTxs(keeper, from).map((t) => t.action)).to.deep.equal(["startAuction"]);
      const refused = keeper.lines.slice(from).find((l) => l.msg === "bid not profitable");
      expect(refused?.fields.accountId).to.equal(alice.toString());
      expect(BigInt(refused?.fields.gasUsd as string)).to.be.greaterThan(wad("400"));

      await oracle.setFeePerByte(0n);
      from = keeper.lines.length;
      await keeper.step();
      expect(keeperTxs(keeper, from).map((t) => [t.action, t.accountId])).to.deep.equal([
        ["bidAndClose", alice.toString()],
      ]);
    });
  });

  describe("on a chain whose answer to the OP-stack check is lost", function () {
    it("asks again on the next bid instead of failing every later one with the same error", async function () {
      let reads = 0;
      const provider = {
        getCode: async () => {
          if (reads++ === 0) throw new Error("connect ECONNREFUSED 127.0.0.1:8545");
          return "0x";
        },
      } as unknown as JsonRpcProvider;
      const log = createLogger({ level: "error", write: () => {} });
      const sender = new TxSender(Wallet.createRandom() as unknown as Wallet, provider, 31_337, log, {
        maxGasPriceWei: 1n,
        dryRun: true,
        txTimeoutMs: 1_000,
        pollMs: 10,
      });
      const request = { to: OP_GAS_PRICE_ORACLE, data: "0x" };
      const first = await sender.l1DataFee(request).then(
        () => "answered",
        (error: Error) => error.message,
      );
      expect(first).to.match(/ECONNREFUSED/);
      // Before the fix: the rejected check was kept, and this threw ECONNREFUSED again, for good.
      expect(await sender.l1DataFee(request)).to.equal(0n);
      expect(reads).to.equal(2);
    });
  });

  describe("the keeper's bidder account after a WETH slice, ETH falling", function () {
    /**
     * Carol: 4 WETH, long 1.5 BTC; BTC 60,000 → 55,800 puts her under water. The keeper's account has
     * the float the README asks for (1,200 USDC: (1 − 0.9) × her 12,000 USD of WETH) and takes 43.55%
     * of her book: 1.742 WETH stay in it against a quote debt of 3,942 USDC. Alice: long 10 ETH on 7,000
     * USDC, under water once ETH is below about 2,504.
     */
    async function wethSliceThenCrash() {
      const sys = await deployOptionsSystem();
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.weth, wad("4")]]);
      await trade(sys.perps, sys.carol, carol, sys.markets.BTC, wad("1.5"));
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 7_000n * USDC]]);
      await trade(sys.perps, sys.alice, alice, sys.markets.ETH, wad("10"));
      const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
      const own = keeper.session.keeperAccountId!;
      await mintAndApprove(sys.usdc, sys.bob, await sys.vault.getAddress(), 1_200n * USDC);
      await sys.vault.connect(sys.bob).deposit(own, sys.usdc, 1_200n * USDC);
      await setFeedPrice(sys.feeds.BTC, "55800");
      await keeper.step();
      await setFeedPrice(sys.feeds.BTC, "60000");
      return { sys, carol, alice, keeper, own };
    }

    it("is replaced once it is below its initial requirement, so the next book is still bid on", async function () {
      const { sys, carol, alice, keeper, own } = await loadFixture(wethSliceThenCrash);
      const bids = await sys.auction.queryFilter(sys.auction.filters.AuctionBid());
      expect(bids.map((e) => [e.args.accountId, e.args.bidderAccountId])).to.deep.equal([[carol, own]]);
      expect(await sys.vault.balanceOf(own, sys.weth)).to.be.closeTo(wad("1.742"), wad("0.001"));
      expect(await sys.vault.balanceOf(own, sys.usdc)).to.be.closeTo(-3_942n * USDC, 1n * USDC);

      await setFeedPrice(sys.feeds.ETH, "2450"); // −18.3%
      const k = await sys.engine.health(own);
      expect(k.equityInitial).to.be.lessThan(0n); // about −101 USD: every bid from it reverts
      expect(k.equityMaintenance).to.be.greaterThan(0n);
      const from = keeper.lines.length;

      await keeper.step();

      const aliceBids = (await sys.auction.queryFilter(sys.auction.filters.AuctionBid(alice))).map(
        (e) => e.args.bidderAccountId,
      );
      // Before the fix: Alice's auction started, her bid's simulation reverted (the keeper account's
      // InsufficientMargin), and every later bid too until someone repaid the keeper's debt: her book
      // would go to the backstop at the maximum discount after 30 minutes.
      expect(aliceBids).to.have.length(1);
      expect(aliceBids[0]).to.not.equal(own);
      expect(keeper.session.keeperAccountId).to.equal(aliceBids[0]);
      const said = keeper.lines.slice(from).map((l) => l.msg);
      expect(said).to.include(
        "keeper account cannot bid; bidding from another (repay its debt or top it up)",
      );
      // The switch looks for any usable account: the operator gave no --account-id, so none is blamed.
      expect(said).to.not.include("--account-id not usable; looking for another");
    });
  });

  describe("the rules, as pure functions", function () {
    it("price the flag reward as the auction does, and always start a material account first", function () {
      const base = { flagReward: 10n * USDC, quoteUnit: 10n ** 12n, now: 100_000n, cooldown: 86_400n };
      expect(expectedFlagReward({ ...base, markQuote: wad("8.35"), endedAt: 0n })).to.equal(8_350_000n);
      expect(expectedFlagReward({ ...base, markQuote: wad("500"), endedAt: 0n })).to.equal(10n * USDC);
      expect(expectedFlagReward({ ...base, markQuote: -1n, endedAt: 0n })).to.equal(0n);
      expect(expectedFlagReward({ ...base, markQuote: wad("500"), endedAt: 20_000n })).to.equal(0n);
      expect(expectedFlagReward({ ...base, markQuote: wad("500"), endedAt: 13_600n })).to.equal(10n * USDC);
      // A material account is started at any gas; dust only when its reward covers twice the gas.
      expect(isStartWorthSending({ material: true, rewardUsd: 0n, gasUsd: wad("50") })).to.equal(true);
      expect(isStartWorthSending({ material: false, rewardUsd: wad("1"), gasUsd: wad("0.5") })).to.equal(
        true,
      );
      expect(isStartWorthSending({ material: false, rewardUsd: wad("0.011"), gasUsd: wad("0.58") })).to.equal(
        false,
      );
      const h = (e: string, m: string) => ({ equityMaintenance: wad(e), maintenanceRequirement: wad(m) });
      // Row 360: below half its MM an account is falling, not hovering; exactly half is still hovering.
      expect(isFarBelowMaintenance(h("45.08", "92.24"))).to.equal(true);
      expect(isFarBelowMaintenance(h("46.12", "92.24"))).to.equal(false);
      expect(isFarBelowMaintenance({ equityMaintenance: 49n, maintenanceRequirement: 99n })).to.equal(false);
      expect(isFarBelowMaintenance({ equityMaintenance: 48n, maintenanceRequirement: 99n })).to.equal(true);
      const order = byStakeThenUrgency(
        [
          [1, h("834.93", "1955.53")],
          [2, h("0.0114", "0.078")],
          [3, h("134.78", "1955.53")],
          [4, h("-0.01", "0.078")],
        ],
        wad("100"),
      ).map(([id]) => id);
      expect(order).to.deep.equal([3, 1, 4, 2]);
      expect(
        isDeficitWorthRecording({ recorded: 0n, current: 10n, riseUsd: wad("0.00001"), gasUsd: wad("0.1") }),
      ).to.be.false;
      expect(
        isDeficitWorthRecording({
          recorded: 0n,
          current: 10n ** 9n,
          riseUsd: wad("1000"),
          gasUsd: wad("0.1"),
        }),
      ).to.be.true;
    });
  });
});

describe("Keeper spending: an insolvent book split below the stake (row 152)", function () {
  /**
   * Four accounts of one owner, each long 0.4 ETH on 150 USDC (a 1.6 ETH book split below the
   * --min-stake-usd 100: each MM ≈ 75 USD at ETH 2,500), all insolvent once ETH is at 2,500.
   */
  async function splitBook() {
    const sys = await deployOptionsSystem();
    const ids = await bobLongsUnderWater(sys, 4, 150n * USDC, wad("0.4"), "2500");
    return { sys, ids };
  }

  it("is started: its deficit is the fund's and grows with every tick, not left unflagged", async function () {
    const { sys, ids } = await loadFixture(splitBook);
    const h = await sys.engine.health(ids[0]);
    expect(h.equityMark).to.be.lessThan(0n);
    expect(h.maintenanceRequirement).to.be.lessThan(wad("100"));
    expect(h.maintenanceRequirement).to.be.greaterThan(wad("50"));
    const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
    const report = await keeper.step();
    const started = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted());
    // Before the fix: none started (flag reward 0 for an insolvent book, and below the stake), all four
    // in `notStarted`; at ETH 2,000 their deficit would be 4 × 0.4 × 500 more (800 USD) for the fund.
    expect(started.map((e) => e.args.accountId)).to.have.members(ids);
    expect(report.notStarted).to.deep.equal([]);
  });
});
