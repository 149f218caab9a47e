/**
 * What the keeper sends, exactly: its limits, its batch split, its sweep and unwind thresholds, its
 * replacement of a stuck transaction, its command line. Review round 72 (docs/reliability.md §4) put small
 * bugs into the keeper one at a time; these are the rules no test pinned (each comment names the bug).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { Transaction, Wallet, type JsonRpcProvider } from "ethers";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad } from "../shared/system";
import {
  DAY,
  deployOptionsSystem,
  deployOptionsSystemWithoutFunding,
  fromNow,
  listSeries,
  tradeOption,
} from "../shared/options";
import { mineAt, trade } from "../shared/perps";
import { mintAccountsTo } from "../shared/accounts";
import { mintAndApprove } from "../shared/tokens";
import { setFeedPrice } from "../shared/oracles";
import { hardhatWallet } from "../shared/e2e";
import {
  absorbedLong,
  keeperBidder,
  onRequest,
  predictedAndRealisedBid,
  startInProcessKeeper,
  startTransactions,
  threeLongsUnderWater,
  withStartBatchEstimate,
} from "../shared/keeper";
import { UsageError, parseKeeperArgs } from "../../scripts/keeper/config";
import { WAD, isStartWorthSending, maxPaymentFor } from "../../scripts/keeper/logic";
import { createLogger } from "../../scripts/keeper/log";
import { TxSender } from "../../scripts/keeper/sender";
import { Role } from "../../deploy/roles";

const USDC = 10n ** 6n;

describe("The keeper's spending rules", function () {
  it("starts a dust account only when its flag reward pays twice the start's gas (the start, and the absorb after it)", function () {
    const gasUsd = wad("0.5");
    // 1.5× the gas: the start is paid, the unrewarded absorb that follows when nobody bids is not.
    expect(isStartWorthSending({ material: false, rewardUsd: wad("0.75"), gasUsd })).to.equal(false);
    expect(isStartWorthSending({ material: false, rewardUsd: wad("1") - 1n, gasUsd })).to.equal(false);
    expect(isStartWorthSending({ material: false, rewardUsd: wad("1"), gasUsd })).to.equal(true);
  });

  it("halves a start batch whose gas estimate is above 10M, instead of sending a transaction that fills a block", async function () {
    const { sys, ids } = await loadFixture(threeLongsUnderWater);
    const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
    // Heavy books (option books repriced in every scenario cost up to ~3M gas of health each): the batch
    // of three is estimated at 10,000,001 gas, its halves as the chain estimates them.
    await withStartBatchEstimate(
      sys,
      3,
      async () => 10_000_001n,
      () => keeper.step(),
    );
    expect(await startTransactions(sys)).to.deep.equal([[ids[2], ids[1]], [ids[0]]]);
  });
});

/** Alice long 10 ETH on 5,000 USDC, then ETH at 2,600: below maintenance, solvent. */
async function longBelowMaintenance() {
  const sys = await deployOptionsSystemWithoutFunding();
  const victim = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  await trade(sys.perps, sys.alice, victim, sys.markets.ETH, wad("10"));
  await setFeedPrice(sys.feeds.ETH, "2600");
  return { sys, victim };
}

describe("The keeper's bids", function () {
  it("bids with a payment limit of its quote plus 0.5%, so a later block cannot charge it more", async function () {
    const { sys, victim } = await loadFixture(longBelowMaintenance);
    const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
    const selector = sys.auction.interface.getFunction("bidAndClose").selector;
    const bids: { maxPayment: bigint; quoted: bigint }[] = [];

    await onRequest(
      "eth_sendRawTransaction",
      async (params) => {
        const sent = Transaction.from(params[0] as string);
        if (!sent.data.startsWith(selector)) return;
        const [accountId, , fraction, maxPayment] = sys.auction.interface.decodeFunctionData(
          "bidAndClose",
          sent.data,
        );
        // The auction's quote as the bid is broadcast: the keeper quoted it a moment before.
        const [, quoted] = await sys.auction.quoteBid(accountId, fraction);
        bids.push({ maxPayment, quoted });
      },
      () => keeper.step(),
    );

    expect(
      (await sys.auction.queryFilter(sys.auction.filters.AuctionBid())).map((e) => e.args.accountId),
    ).to.deep.equal([victim]);
    expect(bids).to.have.length(1);
    const [{ maxPayment, quoted }] = bids;
    expect(maxPayment).to.be.at.least(quoted);
    // 0.5% over the quote; the discount's growth between the keeper's quote and this one (well under
    // 0.01% a second) is the only slack.
    expect(maxPayment).to.be.at.most(maxPaymentFor(quoted, 60n));
  });

  it("finishes a step only once its bid is mined: one transaction in flight, even on a node slow to take it", async function () {
    const { sys, victim } = await loadFixture(longBelowMaintenance);
    const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
    const selector = sys.auction.interface.getFunction("bidAndClose").selector;
    const slow: { broadcast: Promise<void> | null } = { broadcast: null };

    await onRequest(
      "eth_sendRawTransaction",
      (params) => {
        if (!Transaction.from(params[0] as string).data.startsWith(selector)) return;
        slow.broadcast = new Promise((resolve) => setTimeout(resolve, 1_500));
        return slow.broadcast;
      },
      () => keeper.step(),
    );

    const bidsWhenStepReturned = await sys.auction.queryFilter(sys.auction.filters.AuctionBid());
    await slow.broadcast; // nothing of this test left running into the next
    expect(slow.broadcast).to.not.equal(null);
    expect(bidsWhenStepReturned.map((e) => e.args.accountId)).to.deep.equal([victim]);
  });

  /**
   * Alice's auction (long 10 ETH on 5,000 USDC, ETH 2,600) two minutes in, after Bob's bid for a twentieth
   * of her book paid quote into it (`paidIn`, held back from later slices); the keeper (Hardhat account #4)
   * has a funded bidder account approved for the auction.
   */
  async function afterARivalsPartialBid() {
    const { sys, victim } = await longBelowMaintenance();
    await sys.auction.startAuction(victim);
    await time.increase(120);
    const rival = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 50_000n * USDC]]);
    await sys.auction.connect(sys.bob).bid(victim, rival, WAD / 20n, ethers.MaxUint256);
    return { sys, victim, keeper: await keeperBidder(sys) };
  }

  it("values the slice without the quote earlier bids paid in, and predicts what bidAndClose leaves it", async function () {
    const { sys, victim, keeper } = await loadFixture(afterARivalsPartialBid);
    expect((await sys.auction.auctions(victim)).paidIn).to.be.greaterThan(0n);

    const { plan, realisedUsd } = await predictedAndRealisedBid(sys, keeper, victim);
    expect(plan.quote.filled).to.be.greaterThan(0n);
    // The slice's discount less its closing cost, each cash flow rounded to whole USDC units against the
    // bidder: within 100 units (1e-4 USDC) of the prediction.
    const predicted = plan.economics.discountUsd - plan.economics.closeCostUsd;
    expect(realisedUsd - predicted).to.be.within(-100n * 10n ** 12n, 100n * 10n ** 12n);
  });

  it("bids on a book whose expired series the same pass settled, before that pass's payouts close it", async function () {
    // Bob wrote 1 ETH-3000 call (one day) and went long 10 ETH perps on 5,000 USDC. After expiry the feed
    // posts 2,950 (the settlement round: worthless) and ETH crashes to 2,600 (Bob below maintenance).
    const sys = await deployOptionsSystem();
    const expiry = await fromNow(DAY);
    const call = await listSeries(sys.options, "ETH", "3000", expiry, true);
    const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
    await tradeOption(sys.options, sys.bob, bob, call, -wad("1"));
    await trade(sys.perps, sys.bob, bob, sys.markets.ETH, wad("10"));
    const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "0"]);
    await mineAt(sys, expiry);
    await setFeedPrice(sys.feeds.ETH, "2950");
    await setFeedPrice(sys.feeds.ETH, "2600");

    const report = await keeper.step();

    expect(report.options?.seriesSettled).to.deep.equal([call]);
    expect(report.liquidatable).to.deep.equal([bob]);
    // The settled series is in the auction's mark at its payout: nothing to close, no reason to wait.
    const bids = await sys.auction.queryFilter(sys.auction.filters.AuctionBid());
    expect(bids.map((e) => e.args.accountId)).to.deep.equal([bob]);
  });
});

describe("The keeper's bidder account", function () {
  it("adopts an account sent to the keeper before its first start and lets the auction trade it", async function () {
    const sys = await loadFixture(deployOptionsSystemWithoutFunding);
    const keeperAddress = hardhatWallet(4).address;
    await mintAccountsTo(sys.accounts, sys.carol, keeperAddress, 1); // CROSS, empty: usable
    const [sent] = await sys.accounts.accountsOf(keeperAddress);

    const keeper = await startInProcessKeeper(sys);

    expect(keeper.session.keeperAccountId).to.equal(sent);
    // Without the grant every bidAndClose from it reverts, and the keeper could only absorb.
    expect(await sys.accounts.traderAllowance(sent, sys.auction)).to.equal(ethers.MaxUint256);
  });
});

describe("The keeper's backstop sweep", function () {
  it("leaves less than 100 USDC of spare cash in the backstop (not worth a transaction) and sweeps it from 100 USDC on", async function () {
    const sys = await loadFixture(deployOptionsSystemWithoutFunding);
    const keeper = await startInProcessKeeper(sys);
    const backstop = await sys.auction.backstopAccountId();
    await mintAndApprove(sys.usdc, sys.bob, await sys.vault.getAddress(), 100n * USDC);
    // Anyone may pay the quote into any account: 99.999999 USDC, its book empty, so all of it is spare.
    await sys.vault.connect(sys.bob).deposit(backstop, sys.usdc, 100n * USDC - 1n);

    expect((await keeper.step()).swept).to.equal(0n);
    expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(100n * USDC - 1n);

    await sys.vault.connect(sys.bob).deposit(backstop, sys.usdc, 1n);
    expect((await keeper.step()).swept).to.equal(100n * USDC);
    expect(await sys.vault.balanceOf(backstop, sys.usdc)).to.equal(0n);
  });
});

describe("The keeper's backstop unwind", function () {
  it("sends the unwind with the quoted fill as its limit, so a trade that moves the skew first makes it revert", async function () {
    const { sys, backstop } = await loadFixture(absorbedLong);
    await sys.manager.grantRole(Role.BACKSTOP, sys.keeper.address, 0);
    const held = await sys.perps.positionSize(backstop, sys.markets.ETH);
    // Carol short until the skew leans long by 2: the keeper sells 2 of the backstop's long.
    const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
    await trade(
      sys.perps,
      sys.carol,
      carol,
      sys.markets.ETH,
      -(await sys.perps.market(sys.markets.ETH)).skew + wad("2"),
    );
    const keeper = await startInProcessKeeper(sys, ["--unwind-backstop"]);
    const selector = sys.auction.interface.getFunction("unwindBackstop").selector;
    const sent: { limitPrice: bigint; quoted: bigint }[] = [];

    const report = await onRequest(
      "eth_sendRawTransaction",
      async (params) => {
        const data = Transaction.from(params[0] as string).data;
        if (!data.startsWith(selector)) return;
        const [, marketId, sizeDelta, limitPrice] = sys.auction.interface.decodeFunctionData(
          "unwindBackstop",
          data,
        );
        const [quoted] = await sys.perps.quoteTrade(marketId, sizeDelta);
        sent.push({ limitPrice, quoted });
      },
      () => keeper.step(),
    );

    expect(report.unwound).to.deep.equal([sys.markets.ETH]);
    expect(await sys.perps.positionSize(backstop, sys.markets.ETH)).to.equal(held - wad("2"));
    expect(sent).to.have.length(1);
    expect(sent[0].limitPrice).to.equal(sent[0].quoted);
  });
});

describe("The keeper's sender behind its own stuck transaction", function () {
  const GWEI = 10n ** 9n;
  /** A scripted node (as in KeeperSender.test.ts): nonce 7 next, base fee and tip 1 gwei, no receipts. */
  function scriptedNode() {
    const node = { mined: 7, pending: 7, sent: [] as Transaction[] };
    const provider = {
      estimateGas: async () => 100_000n,
      call: async () => "0x",
      getCode: async () => "0x",
      getBlock: async () => ({ baseFeePerGas: GWEI }),
      getTransaction: async () => null,
      getTransactionReceipt: async () => null,
      getTransactionCount: async (_address: string, tag: string) =>
        tag === "pending" ? node.pending : node.mined,
      async send(method: string, params: unknown[]) {
        if (method === "eth_maxPriorityFeePerGas" || method === "eth_gasPrice")
          return `0x${GWEI.toString(16)}`;
        if (method !== "eth_sendRawTransaction") throw new Error(`unexpected ${method}`);
        const tx = Transaction.from(params[0] as string);
        node.sent.push(tx);
        node.pending = Math.max(node.pending, tx.nonce! + 1); // waits in the mempool
        return tx.hash;
      },
    } as unknown as JsonRpcProvider;
    return { node, provider };
  }

  it("replaces its own transaction that got no receipt on its next send, at 9/8 of its fees, without waiting behind it again", async function () {
    const { node, provider } = scriptedNode();
    const key = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";
    const sender = new TxSender(
      new Wallet(key),
      provider,
      1,
      createLogger({ level: "error", write: () => {} }),
      {
        maxGasPriceWei: 100n * GWEI,
        dryRun: false,
        txTimeoutMs: 50,
        pollMs: 10,
      },
    );
    const send = () =>
      sender.send("startAuction", { to: "0x000000000000000000000000000000000000dEaD", data: "0x" });

    expect((await send()).status).to.equal("dropped"); // waited its receipt timeout already
    expect((await send()).status).to.equal("dropped");

    // 2·base + tip = 3 gwei, then 9/8 of it and of the tip, rounded up, at the same nonce.
    expect(node.sent.map((t) => [t.nonce, t.maxFeePerGas, t.maxPriorityFeePerGas])).to.deep.equal([
      [7, 3n * GWEI, GWEI],
      [7, 3_375_000_000n, 1_125_000_000n],
    ]);
  });
});

describe("The keeper's command line", function () {
  it("refuses a batch or a log range of 0, with which no pass could check an account", function () {
    const base = ["--rpc", "http://127.0.0.1:8545", "--deployment", "d.json"];
    const env = { KEEPER_PRIVATE_KEY: hardhatWallet(4).privateKey };
    // --health-batch 0: every pass's healthMany batching throws "chunk size must be positive", which the
    // step logs as a failed liquidation check and goes on: a keeper that runs and liquidates nothing.
    for (const flag of ["--health-batch", "--start-batch", "--log-range"]) {
      expect(() => parseKeeperArgs([...base, flag, "0"], env)).to.throw(UsageError, flag);
      expect(parseKeeperArgs([...base, flag, "1"], env)).to.not.equal("help");
    }
  });
});
