/**
 * What the SDK's actions send, read from the transaction itself (review round 72, docs/reliability.md §4).
 * A trade or a bid must go out with the limit its quote and `slippageBps` give, and the default deadline,
 * never a looser one.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  WAD,
  bid,
  createAccount,
  deposit,
  heldBack,
  modifyPosition,
  openPosition,
  quoteBid,
  quoteTrade,
  soldMark,
  startAuction,
} from "../../sdk/src";
import { wad } from "../shared/system";
import { marketParams, mineAt } from "../shared/perps";
import { systemWithClients } from "../shared/sdk";

const USDC = 10n ** 6n;

/** The calldata of the transaction behind `receipt`, as it went out. */
async function sentData(receipt: { hash: string }): Promise<string> {
  const sent = await ethers.provider.getTransaction(receipt.hash);
  if (!sent) throw new Error(`transaction ${receipt.hash} not found`);
  return sent.data;
}

describe("What the SDK's actions send", function () {
  it("sells with a limit slippageBps below the quoted fill (rounded down), and a deadline 600 s after the latest block", async function () {
    const { sys, alice } = await loadFixture(systemWithClients);
    const { accountId } = await createAccount(alice);
    await sys.usdc.mint(sys.alice.address, 50_000n * USDC);
    await deposit(alice, { accountId, token: "USDC", amount: 50_000n * USDC });
    await openPosition(alice, { accountId, marketId: sys.markets.ETH, size: wad("2") });

    const q = await quoteTrade(alice, { marketId: sys.markets.ETH, sizeDelta: -wad("0.5"), slippageBps: 30 });
    const latest = BigInt(await time.latest());
    const sold = await modifyPosition(alice, {
      accountId,
      marketId: sys.markets.ETH,
      sizeDelta: -wad("0.5"),
      slippageBps: 30,
    });
    const data = await sentData(sold.receipt);
    const [, , sizeDelta, limitPrice, deadline] = sys.perps.interface.decodeFunctionData("trade", data);
    expect(sizeDelta).to.equal(-wad("0.5"));
    // A sell from skew 2 fills at 3,005.25; 30 bps below, rounded down: 2,996.23425.
    expect(q.fillPrice).to.equal(wad("3005.25"));
    expect(limitPrice).to.equal((q.fillPrice * 9_970n) / 10_000n);
    expect(limitPrice).to.equal(wad("2996.23425"));
    expect(deadline).to.equal(latest + 600n);
  });

  it("bids with a limit from the quote of the fraction it bids for, plus slippageBps, or the caller's maxPayment as given", async function () {
    const { sys, bob, keeper } = await loadFixture(systemWithClients);
    await sys.perps.setMarketParams(sys.markets.ETH, marketParams({ maxFundingVelocity: 0n }));
    const { accountId: victim } = await createAccount(bob);
    await sys.usdc.mint(sys.bob.address, 1_000n * USDC);
    await deposit(bob, { accountId: victim, token: "USDC", amount: 1_000n * USDC });
    await openPosition(bob, { accountId: victim, marketId: sys.markets.ETH, size: wad("2") });
    await sys.feeds.ETH.updateAnswer(2_650n * 10n ** 8n);
    await startAuction(keeper, { accountId: victim });
    const start = BigInt(await time.latest());
    const { accountId: bidder } = await createAccount(keeper);
    await sys.usdc.mint(sys.keeper.address, 20_000n * USDC);
    await deposit(keeper, { accountId: bidder, token: "USDC", amount: 20_000n * USDC });
    await mineAt(sys, start + 900n);

    // A tenth of the book: below the restoring fraction, so the whole book's quote would pay more.
    const fraction = WAD / 10n;
    const [whole, tenth] = [
      await quoteBid(keeper, { accountId: victim, fraction: WAD }),
      await quoteBid(keeper, { accountId: victim, fraction }),
    ];
    expect(tenth.filled).to.equal(fraction);
    expect(whole.payment).to.be.greaterThan(tenth.payment);
    // The bid is mined a second later (a larger discount): its quote is read at the same block, so the
    // limit is that quote's payment plus 1%, rounded up.
    const data = await sentData(
      (await bid(keeper, { accountId: victim, bidderAccountId: bidder, fraction, slippageBps: 100 })).receipt,
    );
    const [, , sentFraction, maxPayment] = sys.auction.interface.decodeFunctionData("bid", data);
    expect(sentFraction).to.equal(fraction);
    expect(maxPayment).to.equal((tenth.payment * 10_100n + 9_999n) / 10_000n);

    // The caller's own maxPayment goes out as given: the next tenth at no more than this one's quote.
    const next = await quoteBid(keeper, { accountId: victim, fraction });
    const given = await sentData(
      (await bid(keeper, { accountId: victim, bidderAccountId: bidder, fraction, maxPayment: next.payment }))
        .receipt,
    );
    expect(sys.auction.interface.decodeFunctionData("bid", given)[3]).to.equal(next.payment);
  });

  it("refuses a slippage above 100% before sending anything, on a buy as on a sell", async function () {
    const { sys, alice } = await loadFixture(systemWithClients);
    const { accountId } = await createAccount(alice);
    await sys.usdc.mint(sys.alice.address, 50_000n * USDC);
    await deposit(alice, { accountId, token: "USDC", amount: 50_000n * USDC });
    for (const sizeDelta of [wad("1"), -wad("1")]) {
      await expect(
        quoteTrade(alice, { marketId: sys.markets.ETH, sizeDelta, slippageBps: 10_001 }),
      ).to.be.rejectedWith(RangeError, "slippageBps");
      const block = await ethers.provider.getBlockNumber();
      await expect(
        modifyPosition(alice, { accountId, marketId: sys.markets.ETH, sizeDelta, slippageBps: 10_001 }),
      ).to.be.rejectedWith(RangeError, "slippageBps");
      expect(await ethers.provider.getBlockNumber(), "nothing sent").to.equal(block);
    }
    // 100% is the most: a buy's limit at twice the fill, a sell's at 0.
    const q = await quoteTrade(alice, {
      marketId: sys.markets.ETH,
      sizeDelta: -wad("1"),
      slippageBps: 10_000,
    });
    expect(q.limitPrice).to.equal(0n);
  });

  it("holds back nothing from a book worth exactly what earlier bids paid in, as LiquidationAuction._heldBack (strictly more)", function () {
    const unit = 10n ** 12n;
    expect(heldBack(200n * WAD, 200n * USDC, unit)).to.equal(0n);
    expect(soldMark(200n * WAD, 200n * USDC, unit)).to.equal(200n * WAD);
    expect(heldBack(200n * WAD + 1n, 200n * USDC, unit)).to.equal(200n * USDC);
    expect(soldMark(200n * WAD + 1n, 200n * USDC, unit)).to.equal(1n);
  });
});
