import { expect } from "chai";
import fc from "fast-check";
import { makeError, parseEther, parseUnits, type CallExceptionError } from "ethers";
import {
  WAD,
  auctionStatus,
  bidEconomics,
  bidderAccountUnfit,
  blockRanges,
  bookInQuote,
  byUrgency,
  chooseAction,
  chooseFees,
  chunk,
  closeCost,
  deficitOf,
  gasCostUsd,
  isBidProfitable,
  isDeficitStale,
  isLiquidatable,
  isSameChain,
  maxPaymentFor,
  nextHealthBatch,
  optionMarkPerContract,
  findSettlementRound,
  inBatchesIsolatingFailures,
  sliceSize,
  staleFundingMarkets,
  type ItemOutcome,
  backstopUnwindSize,
  isUnwindWorthSending,
} from "../../scripts/keeper/logic";
import { UsageError, parseKeeperArgs } from "../../scripts/keeper/config";
import { createLogger, withoutRepeats } from "../../scripts/keeper/log";
import { groupByReason, revertReason } from "../../scripts/keeper/reverts";
import { IOracleRouter__factory } from "../../typechain-types/factories/contracts/interfaces/IOracleRouter__factory";
import {
  backoffMs,
  isOutOfGasError,
  isProviderErrorAnswer,
  isThrottledOrUnreachable,
  isTimeoutError,
  isTransientError,
  withRetry,
} from "../../scripts/keeper/retry";

const usd = (x: string) => parseEther(x);
const GWEI = 10n ** 9n;
const KEY = `0x${"11".repeat(32)}`;

describe("Keeper logic", function () {
  describe("funding accrual", function () {
    it("accrues markets with open interest and moving funding whose funding is at least the interval old", function () {
      const now = 10_000n;
      const moving = { fundingRate: 0n, rateMoving: true };
      const markets = [
        { marketId: 1n, lastFundingTime: now - 3_600n, openInterest: 1n, ...moving }, // exactly the interval
        { marketId: 2n, lastFundingTime: now - 3_599n, openInterest: 5n, ...moving }, // a second short of it
        { marketId: 3n, lastFundingTime: 0n, openInterest: 0n, ...moving }, // nobody to pay or receive
        {
          marketId: 4n,
          lastFundingTime: now - 86_400n,
          openInterest: 2n,
          fundingRate: 1n,
          rateMoving: false,
        },
        // Review round 16: a rate of 0 that does not move (a flat skew) accrues nothing: no transaction.
        {
          marketId: 5n,
          lastFundingTime: now - 86_400n,
          openInterest: 2n,
          fundingRate: 0n,
          rateMoving: false,
        },
      ];
      expect(staleFundingMarkets(markets, now, 3_600n)).to.deep.equal([1n, 4n]);
    });
  });

  describe("auction deficits", function () {
    it("values the book in quote: the collateral's USD mark replaced by its worth in quote", function () {
      // Equity 1,000 USD of which collateral 950 USD (1,000 USDC at 0.95): 1,050 in quote WAD.
      expect(bookInQuote(usd("1000"), usd("1000"), usd("950"))).to.equal(usd("1050"));
    });
    it("records −equity at mark in quote units rounded up, 0 while solvent", function () {
      const quoteUnit = 10n ** 12n; // USDC
      expect(deficitOf(-usd("1.0000001"), quoteUnit)).to.equal(1_000_001n);
      expect(deficitOf(-1n, quoteUnit)).to.equal(1n);
      expect(deficitOf(0n, quoteUnit)).to.equal(0n);
      expect(deficitOf(usd("5"), quoteUnit)).to.equal(0n);
    });
    it("raises a record the deficit now exceeds by more than 1%, and never lowers one", function () {
      expect(isDeficitStale(0n, 1n)).to.equal(true);
      expect(isDeficitStale(1_000n, 1_010n)).to.equal(false); // 10 of 1,010: under 1%
      expect(isDeficitStale(1_000n, 1_011n)).to.equal(true);
      expect(isDeficitStale(100n, 0n)).to.equal(false);
      expect(isDeficitStale(1_011n, 1_000n)).to.equal(false);
      expect(isDeficitStale(0n, 0n)).to.equal(false);
    });
  });

  describe("isLiquidatable", function () {
    it("is true when equity_MM is below MM, as LiquidationAuction._liquidatable", function () {
      expect(isLiquidatable({ equityMaintenance: usd("99"), maintenanceRequirement: usd("100") })).to.equal(
        true,
      );
    });
    it("is false at equity_MM = MM exactly", function () {
      expect(isLiquidatable({ equityMaintenance: usd("100"), maintenanceRequirement: usd("100") })).to.equal(
        false,
      );
    });
    it("is true for a negative equity even with no requirement", function () {
      expect(isLiquidatable({ equityMaintenance: -1n, maintenanceRequirement: 0n })).to.equal(true);
    });
    it("is false for an account without positions (MM 0, equity 0)", function () {
      expect(isLiquidatable({ equityMaintenance: 0n, maintenanceRequirement: 0n })).to.equal(false);
    });
  });

  describe("byUrgency", function () {
    const h = (equity: string, requirement: string) => ({
      equityMaintenance: usd(equity),
      maintenanceRequirement: usd(requirement),
    });

    it("puts the account closest to insolvency first: MM 100 with equity 10 before MM 1,000,000 with equity 950,000", function () {
      const ordered = byUrgency([
        ["whale", h("950000", "1000000")],
        ["small", h("10", "100")],
      ]);
      expect(ordered.map(([id]) => id)).to.deep.equal(["small", "whale"]);
    });

    it("puts a debt without a requirement first, then negative equity by its ratio", function () {
      const ordered = byUrgency([
        ["under", h("50", "100")],
        ["insolvent", h("-20", "100")],
        ["deeper", h("-40", "100")],
        ["debt", h("-1", "0")],
      ]);
      expect(ordered.map(([id]) => id)).to.deep.equal(["debt", "deeper", "insolvent", "under"]);
    });

    it("breaks a tie of ratios by the larger requirement, and keeps the order of equal accounts", function () {
      const ordered = byUrgency([
        ["a", h("50", "100")],
        ["b", h("500", "1000")],
        ["c", h("50", "100")],
      ]);
      expect(ordered.map(([id]) => id)).to.deep.equal(["b", "a", "c"]);
    });

    it("orders any book by equity_MM ÷ MM ascending (fast-check against the float ratio)", function () {
      const account = fc.record({
        equityMaintenance: fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }),
        maintenanceRequirement: fc.bigInt({ min: 1n, max: 10n ** 30n }),
      });
      fc.assert(
        fc.property(fc.array(account, { maxLength: 20 }), (book) => {
          const ordered = byUrgency(book.map((a, i) => [i, a] as const));
          expect(ordered.map(([i]) => i).sort((x, y) => x - y)).to.deep.equal(book.map((_, i) => i));
          const ratio = ([, a]: (typeof ordered)[number]) =>
            Number(a.equityMaintenance) / Number(a.maintenanceRequirement);
          for (let i = 1; i < ordered.length; i++) {
            const [before, after] = [ratio(ordered[i - 1]), ratio(ordered[i])];
            expect(before - after).to.be.at.most(1e-12 * Math.abs(after));
          }
        }),
      );
    });
  });

  describe("nextHealthBatch", function () {
    const at = (current: number, timedOut: number | null, cleanPasses: number) =>
      nextHealthBatch({ current, configured: 100, timedOut, cleanPasses, growAfter: 10 });

    it("halves below the smallest batch that timed out, as the split that answered, down to 1", function () {
      expect(at(100, 100, 0)).to.equal(50);
      expect(at(100, 7, 0)).to.equal(4);
      expect(at(4, 100, 0)).to.equal(4); // never grows on a timeout
      expect(at(1, 1, 0)).to.equal(1);
    });

    it("doubles back towards --health-batch every 10 passes without a timeout, and never past it", function () {
      expect(at(4, null, 9)).to.equal(4);
      expect(at(4, null, 10)).to.equal(8);
      expect(at(8, null, 15)).to.equal(8);
      expect(at(64, null, 20)).to.equal(100);
      expect(at(100, null, 30)).to.equal(100);
    });
  });

  describe("bidderAccountUnfit", function () {
    // A fresh account: CROSS, flat, not frozen, nothing deposited.
    const fresh = { isolated: false, markets: 0, frozen: false, quoteBalance: 0n, equityMark: 0n };

    it("takes a flat, unfrozen CROSS account with no quote debt, even if its health cannot be read", function () {
      expect(bidderAccountUnfit(fresh)).to.equal(null);
      expect(bidderAccountUnfit({ ...fresh, quoteBalance: 500n, equityMark: null })).to.equal(null);
    });
    it("takes one whose quote debt its other collateral covers (a bid's WETH left against its quote payment)", function () {
      expect(bidderAccountUnfit({ ...fresh, quoteBalance: -1_000n, equityMark: usd("1") })).to.equal(null);
      expect(bidderAccountUnfit({ ...fresh, quoteBalance: -1_000n, equityMark: 0n })).to.equal(null);
    });
    it("refuses an isolated account, one holding positions, and one frozen by an auction", function () {
      expect(bidderAccountUnfit({ ...fresh, isolated: true })).to.equal("isolated");
      expect(bidderAccountUnfit({ ...fresh, markets: 1 })).to.equal("holds positions");
      expect(bidderAccountUnfit({ ...fresh, frozen: true })).to.equal("frozen by an auction");
    });
    it("refuses an insolvent one (equity at mark below 0), and one with a quote debt whose health reverts", function () {
      expect(bidderAccountUnfit({ ...fresh, quoteBalance: -1_000n, equityMark: -1n })).to.equal(
        "negative equity",
      );
      expect(bidderAccountUnfit({ ...fresh, quoteBalance: -1_000n, equityMark: null })).to.equal(
        "equity unreadable",
      );
    });
  });

  describe("auctionStatus and chooseAction", function () {
    it("reports no auction, a running one, and one the pool may absorb from the chain's absorbableAt on", function () {
      const running = { active: true, absorbableAt: 2800n };
      expect(auctionStatus({ active: false, absorbableAt: 0n }, 5000n)).to.equal("none");
      expect(auctionStatus(running, 2799n)).to.equal("running");
      expect(auctionStatus(running, 2800n)).to.equal("absorbable");
      expect(auctionStatus(running, 4600n)).to.equal("absorbable");
    });
    it("starts an auction for a liquidatable account without one, bids on a running or absorbable one, leaves healthy ones", function () {
      const sick = { equityMaintenance: usd("1"), maintenanceRequirement: usd("2") };
      const fine = { equityMaintenance: usd("2"), maintenanceRequirement: usd("2") };
      expect(chooseAction(sick, "none")).to.equal("start");
      expect(chooseAction(sick, "absorbable")).to.equal("bid");
      expect(chooseAction(sick, "running")).to.equal("bid");
      expect(chooseAction(fine, "running")).to.equal("none");
      expect(chooseAction(fine, "none")).to.equal("none");
    });
  });

  describe("sliceSize and closeCost", function () {
    it("rounds a slice toward zero for longs and shorts, as PerpMarket.transferPosition", function () {
      // 3 wei · 0.5 = 1.5 -> 1; -3 wei · 0.5 = -1.5 -> -1
      expect(sliceSize(3n, WAD / 2n)).to.equal(1n);
      expect(sliceSize(-3n, WAD / 2n)).to.equal(-1n);
      expect(sliceSize(parseEther("20"), parseEther("0.25"))).to.equal(parseEther("5"));
    });
    it("charges the fee plus the fill's distance below the oracle when a long is sold", function () {
      // 2 ETH sold at 2,990 against an oracle at 3,000: 2·10 = 20 USD, plus a 3 USD fee
      expect(closeCost(parseEther("2"), usd("3000"), usd("2990"), usd("3"))).to.equal(usd("23"));
    });
    it("turns negative (a gain) when closing reduces the skew and fills above the oracle", function () {
      // 2 ETH sold at 3,012: 2·(3,000 − 3,012) = −24, plus 3 fee = −21
      expect(closeCost(parseEther("2"), usd("3000"), usd("3012"), usd("3"))).to.equal(usd("-21"));
    });
    it("prices a short slice bought back above the oracle as a cost", function () {
      // closing −1 BTC (buying 1) at 60,060 vs 60,000: −1·(60,000 − 60,060) = 60, plus 30 fee
      expect(closeCost(parseEther("-1"), usd("60000"), usd("60060"), usd("30"))).to.equal(usd("90"));
    });
    it("rounds a cost that is not a whole wei up, against the keeper, and a gain toward zero", function () {
      // 3 wei of ETH sold 1 wei of USD below the oracle: 3e-18 wei of USD -> 1 wei (not 0)
      expect(closeCost(3n, 1n, 0n, 0n)).to.equal(1n);
      // a short of 3 wei bought back 1 wei above: -3·(0 − 1) = 3e-18 -> 1 wei
      expect(closeCost(-3n, 0n, 1n, 0n)).to.equal(1n);
      // the same long sold 1 wei above the oracle: a gain of 3e-18 -> 0, never counted as a whole wei
      expect(closeCost(3n, 0n, 1n, 0n)).to.equal(0n);
    });
    it("marks one option contract against the keeper: up for a long position, down for a short one", function () {
      // 10 USD (1e19 wei) over 3 contracts (3e18): 3.333… USD -> up for a long, 3.333…3 for a short
      const value = usd("10");
      const held = parseEther("3");
      expect(optionMarkPerContract(value, held)).to.equal(3333333333333333334n);
      expect(optionMarkPerContract(-value, -held)).to.equal(3333333333333333333n);
      // a whole division is exact either way
      expect(optionMarkPerContract(usd("9"), held)).to.equal(usd("3"));
      expect(optionMarkPerContract(usd("-9"), -held)).to.equal(usd("3"));
    });
  });

  describe("backstopUnwindSize and isUnwindWorthSending", function () {
    it("reduces the backstop's position as far as the skew leans its way, never past a flat skew", function () {
      const eth = (x: string) => parseEther(x);
      expect(backstopUnwindSize(eth("10"), eth("4"))).to.equal(eth("-4")); // the skew is the bound
      expect(backstopUnwindSize(eth("3"), eth("40"))).to.equal(eth("-3")); // the position is
      expect(backstopUnwindSize(eth("-5"), eth("-2"))).to.equal(eth("2")); // a short is bought back
    });
    it("leaves the position alone where the skew leans the other way or is flat (selling would pay)", function () {
      expect(backstopUnwindSize(parseEther("10"), parseEther("-4"))).to.equal(0n);
      expect(backstopUnwindSize(parseEther("-10"), parseEther("4"))).to.equal(0n);
      expect(backstopUnwindSize(parseEther("10"), 0n)).to.equal(0n);
      expect(backstopUnwindSize(0n, parseEther("4"))).to.equal(0n);
    });
    it("sends nothing for a lean below MIN_UNWIND_NOTIONAL (1,000 USD)", function () {
      expect(isUnwindWorthSending(-parseEther("0.3"), usd("3000"))).to.equal(false); // 900 USD
      expect(isUnwindWorthSending(-parseEther("0.4"), usd("3000"))).to.equal(true); // 1,200 USD
      expect(isUnwindWorthSending(parseEther("1"), usd("1000"))).to.equal(true);
    });
  });

  describe("bidEconomics", function () {
    const QUOTE_UNIT = 10n ** 12n; // USDC
    /** Half of a 2,000 book for 980 USDC, 5 of closing costs, 400,000 gas at 2 gwei, ETH at 2,500. */
    const halfOfBook = {
      quote: { filled: parseEther("0.5"), payment: 980n * 10n ** 6n, insurancePayout: 0n },
      mark: usd("2000"),
      quotePrice: WAD,
      quoteUnit: QUOTE_UNIT,
      closeCost: usd("5"),
      gasUnits: 400_000n,
      gasPriceWei: 2n * GWEI,
      nativeUsd: usd("2500"),
    };
    it("nets the slice's mark value minus payment, closing costs and gas", function () {
      // Slice 0.5 of a 2,000 USD book = 1,000 USD; payment 980 USDC (2% discount) -> 20 USD.
      // Close costs 5 USD. Gas 400,000 · 2 gwei = 0.0008 ETH at 2,500 USD = 2 USD. Net 13 USD.
      const e = bidEconomics(halfOfBook);
      expect(e).to.deep.equal({
        discountUsd: usd("20"),
        closeCostUsd: usd("5"),
        gasUsd: usd("2"),
        netUsd: usd("13"),
      });
      expect(isBidProfitable(e, usd("13"))).to.equal(true);
      expect(isBidProfitable(e, usd("13.000000000000000001"))).to.equal(false);
    });
    it("adds an OP-stack chain's L1 data fee to the gas", function () {
      // 400,000 · 2 gwei + 0.0004 ETH of L1 data fee = 0.0012 ETH at 2,500 USD = 3 USD. Net 12 USD.
      const e = bidEconomics({ ...halfOfBook, l1FeeWei: 4n * 10n ** 14n });
      expect(e.gasUsd).to.equal(usd("3"));
      expect(e.netUsd).to.equal(usd("12"));
    });
    it("values the slice in the quote token and converts it at the quote's price off peg", function () {
      // At USDC 0.95 a book worth 2,000 USDC; half of it for 980 USDC: 20 USDC = 19 USD of discount.
      // Close costs 5 USDC = 4.75 USD; gas 2 USD; net 12.25 USD.
      const e = bidEconomics({ ...halfOfBook, quotePrice: usd("0.95") });
      expect(e).to.deep.equal({
        discountUsd: usd("19"),
        closeCostUsd: usd("4.75"),
        gasUsd: usd("2"),
        netUsd: usd("12.25"),
      });
    });
    it("counts the insurance payout of an insolvent account against its negative equity", function () {
      // Whole book (filled 1) at −300 USD, payment 0, insurance pays 450 USDC: 150 USD before costs.
      const e = bidEconomics({
        quote: { filled: WAD, payment: 0n, insurancePayout: 450n * 10n ** 6n },
        mark: usd("-300"),
        quotePrice: WAD,
        quoteUnit: QUOTE_UNIT,
        closeCost: usd("-10"),
        gasUnits: 0n,
        gasPriceWei: 0n,
        nativeUsd: usd("2500"),
      });
      expect(e.discountUsd).to.equal(usd("150"));
      expect(e.netUsd).to.equal(usd("160"));
    });
    it("never calls a bid that loses money profitable, whatever the minimum", function () {
      const losing = { discountUsd: 0n, closeCostUsd: 1n, gasUsd: 0n, netUsd: -1n };
      expect(isBidProfitable(losing, -10n)).to.equal(false);
      expect(isBidProfitable({ ...losing, netUsd: 0n }, 0n)).to.equal(false);
    });
    it("rounds the gas cost up", function () {
      // 1 gas · 1 wei at 1.5 USD per ETH = 1.5e-18 USD -> 2 wei of USD
      expect(gasCostUsd(1n, 1n, usd("1.5"))).to.equal(2n);
      expect(gasCostUsd(21_000n, 10n * GWEI, usd("3000"))).to.equal(usd("0.63"));
    });
    it("allows the payment to rise by the slippage, rounded up", function () {
      expect(maxPaymentFor(1_000_000n, 50n)).to.equal(1_005_000n); // +0.5%
      expect(maxPaymentFor(1n, 50n)).to.equal(2n);
      expect(maxPaymentFor(0n, 50n)).to.equal(0n);
    });
  });

  describe("chooseFees", function () {
    const cap = 100n * GWEI;
    it("offers 2·base + tip under the cap and expects base + tip", function () {
      expect(
        chooseFees({ baseFeePerGas: 10n * GWEI, maxPriorityFeePerGas: GWEI, gasPrice: null }, cap),
      ).to.deep.equal({
        type: 2,
        maxFeePerGas: 21n * GWEI,
        maxPriorityFeePerGas: GWEI,
        expectedPrice: 11n * GWEI,
      });
    });
    it("caps the max fee and trims the tip near the cap", function () {
      expect(
        chooseFees({ baseFeePerGas: 99n * GWEI, maxPriorityFeePerGas: 2n * GWEI, gasPrice: null }, cap),
      ).to.deep.equal({
        type: 2,
        maxFeePerGas: cap,
        maxPriorityFeePerGas: GWEI,
        expectedPrice: cap,
      });
    });
    it("sends nothing while the base fee is above the cap", function () {
      expect(chooseFees({ baseFeePerGas: cap + 1n, maxPriorityFeePerGas: 0n, gasPrice: null }, cap)).to.equal(
        null,
      );
    });
    it("uses the gas price on legacy chains, under the cap only", function () {
      expect(
        chooseFees({ baseFeePerGas: null, maxPriorityFeePerGas: null, gasPrice: 5n * GWEI }, cap),
      ).to.deep.equal({
        type: 0,
        gasPrice: 5n * GWEI,
        expectedPrice: 5n * GWEI,
      });
      expect(
        chooseFees({ baseFeePerGas: null, maxPriorityFeePerGas: null, gasPrice: cap + 1n }, cap),
      ).to.equal(null);
    });
  });

  describe("isSameChain", function () {
    const anchor = { number: 10, hash: "0xaa" };
    it("recognises the chain by the hash at the anchor's height", function () {
      expect(isSameChain(anchor, "0xaa")).to.equal(true);
    });
    it("reports a replaced chain when the hash differs or the node is below the anchor", function () {
      expect(isSameChain(anchor, "0xbb")).to.equal(false);
      expect(isSameChain(anchor, null)).to.equal(false);
    });
  });

  describe("chunk and blockRanges", function () {
    it("splits ids into batches of at most n", function () {
      expect(chunk([1, 2, 3, 4, 5], 2)).to.deep.equal([[1, 2], [3, 4], [5]]);
      expect(chunk([], 3)).to.deep.equal([]);
      expect(() => chunk([1], 0)).to.throw("chunk size must be positive");
    });
    it("covers from..to in inclusive ranges of at most span blocks", function () {
      expect(blockRanges(0, 9, 5)).to.deep.equal([
        [0, 4],
        [5, 9],
      ]);
      expect(blockRanges(3, 3, 5)).to.deep.equal([[3, 3]]);
      expect(blockRanges(4, 3, 5)).to.deep.equal([]);
    });
  });

  describe("inBatchesIsolatingFailures", function () {
    // A node whose gas cap fits three accounts' health, worded as Hardhat words it.
    const outOfGas = new Error(
      "Transaction reverted: contract call run out of gas and made the transaction revert",
    );
    const revert = makeError("execution reverted (unknown custom error)", "CALL_EXCEPTION");
    const outage = makeError("server response 503", "SERVER_ERROR");
    /** A healthMany stand-in: reverts if any id in the batch is bad, runs out of gas above `cap` ids. */
    const node =
      (calls: number[][], opts: { bad?: number[]; cap?: number } = {}) =>
      async (batch: number[]) => {
        calls.push(batch);
        if (batch.length > (opts.cap ?? Infinity)) throw outOfGas;
        if (batch.some((x) => opts.bad?.includes(x))) throw revert;
        return batch.map((x) => x * 10);
      };
    const ok = (item: number): ItemOutcome<number, number> => ({ ok: true, item, result: item * 10 });

    it("reads each batch with one call when nothing fails", async function () {
      const calls: number[][] = [];
      const ids = [1, 2, 3, 4, 5];
      expect(await inBatchesIsolatingFailures(ids, 2, node(calls), isTransientError)).to.deep.equal(
        ids.map(ok),
      );
      expect(calls).to.deep.equal([[1, 2], [3, 4], [5]]);
    });

    it("halves a batch the node refuses for gas until it fits, keeping the order", async function () {
      const calls: number[][] = [];
      const ids = [1, 2, 3, 4, 5, 6, 7, 8, 9];
      expect(
        await inBatchesIsolatingFailures(ids, 8, node(calls, { cap: 3 }), isTransientError),
      ).to.deep.equal(ids.map(ok));
      // 8 → 4 + 4 → 2 + 2 + 2 + 2, then the last batch of 1
      expect(calls.map((c) => c.length)).to.deep.equal([8, 4, 2, 2, 4, 2, 2, 1]);
    });

    it("bisects a reverting batch down to the item that reverts alone, returns it with its error and every other item's result", async function () {
      const calls: number[][] = [];
      const ids = [1, 2, 3, 4, 5, 6, 7, 8];
      const outcomes = await inBatchesIsolatingFailures(ids, 8, node(calls, { bad: [6] }), isTransientError);
      expect(outcomes).to.deep.equal(
        [1, 2, 3, 4, 5].map(ok).concat([{ ok: false, item: 6, error: revert }, ok(7), ok(8)]),
      );
      // 8 reverts → [1..4] fine, [5..8] reverts → [5,6] reverts → 5 fine, 6 reverts alone; [7,8] fine
      expect(calls).to.deep.equal([ids, [1, 2, 3, 4], [5, 6, 7, 8], [5, 6], [5], [6], [7, 8]]);
    });

    it("isolates every failing item, in order, and costs 2n − 1 calls for a batch of n that fails throughout", async function () {
      const calls: number[][] = [];
      const outcomes = await inBatchesIsolatingFailures(
        [1, 2, 3, 4],
        4,
        node(calls, { bad: [1, 2, 3, 4] }),
        isTransientError,
      );
      expect(outcomes.map((o) => [o.item, o.ok])).to.deep.equal([
        [1, false],
        [2, false],
        [3, false],
        [4, false],
      ]);
      expect(calls).to.have.length(7);
    });

    it("returns a single item that still runs out of gas as failed instead of throwing", async function () {
      expect(
        await inBatchesIsolatingFailures([1, 2], 5, node([], { cap: 0 }), isTransientError),
      ).to.deep.equal([
        { ok: false, item: 1, error: outOfGas },
        { ok: false, item: 2, error: outOfGas },
      ]);
    });

    it("fails a whole failing batch in one call when told not to bisect (items already known to fail)", async function () {
      const calls: number[][] = [];
      const out = await inBatchesIsolatingFailures(
        [1, 2, 3, 4, 5],
        2,
        async (batch) => {
          calls.push(batch);
          if (batch.includes(3)) throw new Error("revert");
          return batch.map((x) => x * 10);
        },
        () => false,
        { bisect: false },
      );
      expect(calls).to.deep.equal([[1, 2], [3, 4], [5]]);
      expect(out.map((o) => [o.item, o.ok])).to.deep.equal([
        [1, true],
        [2, true],
        [3, false],
        [4, false],
        [5, true],
      ]);
    });

    it("halves a failing batch only when it fails with another error than the one its items are known for", async function () {
      // Items 1–4 were stopped by feed A, which is back; item 3 now fails on feed B.
      const calls: number[][] = [];
      const out = await inBatchesIsolatingFailures(
        [1, 2, 3, 4],
        4,
        async (batch) => {
          calls.push(batch);
          if (batch.includes(3)) throw new Error("feed B");
          return batch.map((x) => x * 10);
        },
        () => false,
        { bisect: (error) => (error as Error).message !== "feed A" },
      );
      expect(calls).to.deep.equal([[1, 2, 3, 4], [1, 2], [3, 4], [3], [4]]);
      expect(out.filter((o) => !o.ok).map((o) => o.item)).to.deep.equal([3]);
      // Still stopped by feed A: one call, nothing halved (dust on many accounts costs no bisection).
      const still: number[][] = [];
      await inBatchesIsolatingFailures(
        [1, 2, 3, 4],
        4,
        async (batch) => {
          still.push(batch);
          throw new Error("feed A");
        },
        () => false,
        { bisect: (error) => (error as Error).message !== "feed A" },
      );
      expect(still).to.deep.equal([[1, 2, 3, 4]]);
    });

    it("rethrows a transport failure at once, without splitting the batch", async function () {
      const calls: number[][] = [];
      await expect(
        inBatchesIsolatingFailures(
          [1, 2, 3, 4],
          4,
          async (batch) => {
            calls.push(batch);
            throw outage;
          },
          isTransientError,
        ),
      ).to.be.rejectedWith("503");
      expect(calls).to.have.length(1);
    });

    it("recognises out-of-gas wordings of Hardhat and geth, not reverts or outages", function () {
      expect(isOutOfGasError(outOfGas)).to.equal(true);
      expect(isOutOfGasError(new Error("gas required exceeds allowance (50000000)"))).to.equal(true);
      expect(isOutOfGasError(makeError("execution reverted", "CALL_EXCEPTION"))).to.equal(false);
      expect(isOutOfGasError(makeError("out of gas?", "NETWORK_ERROR"))).to.equal(false);
    });
  });

  describe("revertReason and groupByReason", function () {
    const router = IOracleRouter__factory.createInterface();
    const FEED = "0x00000000000000000000000000000000000000fe";
    const stale = router.encodeErrorResult("StalePrice", [FEED, 1_000n, 3_600n]);
    /** A revert as ethers reports an eth_call whose ABI does not know the error (healthMany's). */
    const reverted = (data: string): CallExceptionError =>
      makeError("execution reverted (unknown custom error)", "CALL_EXCEPTION", {
        action: "call",
        data,
        reason: null,
        transaction: { to: null, data: "0x" },
        invocation: null,
        revert: null,
      });

    it("names a protocol error the call's ABI does not know, with its selector and readable message", function () {
      const reason = revertReason(reverted(stale));
      expect(reason.error).to.equal("StalePrice");
      expect(reason.selector).to.equal(stale.slice(0, 10));
      expect(reason.message).to.contain("is stale").and.contain(FEED);
    });

    it("falls back to the selector of an unknown error, and to out of gas or the error's code without revert data", function () {
      expect(revertReason(reverted("0xdeadbeef"))).to.deep.equal({
        error: "unknown revert",
        selector: "0xdeadbeef",
        message: "execution reverted (unknown custom error)",
      });
      expect(revertReason(new Error("contract call run out of gas")).error).to.equal("OutOfGas");
      expect(revertReason(makeError("bad", "INVALID_ARGUMENT")).error).to.equal("INVALID_ARGUMENT");
    });

    it("groups skipped reads by reason, keys in order, so one log line names them all", function () {
      const a = revertReason(reverted(stale));
      const b = revertReason(reverted("0xdeadbeef"));
      expect(
        groupByReason([
          { key: 3n, reason: a },
          { key: 5n, reason: b },
          { key: 7n, reason: a },
        ]),
      ).to.deep.equal([
        { ...a, keys: [3n, 7n] },
        { ...b, keys: [5n] },
      ]);
    });
  });

  describe("findSettlementRound", function () {
    /** Rounds 1..20 of phase 1, round n updated at 1000 + 100·n. */
    const PHASE = 1n << 64n;
    const rounds = new Map<bigint, bigint>();
    for (let n = 1n; n <= 20n; n++) rounds.set(PHASE + n, 1000n + 100n * n);
    const latest = { roundId: PHASE + 20n, updatedAt: 3000n };
    const reads: bigint[] = [];
    const read = async (id: bigint) => {
      reads.push(id);
      return rounds.get(id) ?? null;
    };
    beforeEach(() => reads.splice(0));

    it("takes the latest round with one read when the round before it precedes expiry", async function () {
      // Round 20 at 3,000 is the first at or after 2,950; round 19 (2,900) proves it.
      expect(await findSettlementRound(latest, 2950n, read)).to.equal(PHASE + 20n);
      expect(reads).to.deep.equal([PHASE + 19n, PHASE + 19n]);
    });

    it("finds an older first round by binary search, at or after expiry exactly", async function () {
      // Expiry 1,500: round 5 (1,500) is the first at or after it, round 4 (1,400) before it.
      expect(await findSettlementRound(latest, 1500n, read)).to.equal(PHASE + 5n);
      expect(await findSettlementRound(latest, 1501n, read)).to.equal(PHASE + 6n);
      expect(reads.length).to.be.lessThan(14); // ~log2(20) per search, not a walk over 15 rounds
    });

    it("waits while the latest round is before expiry", async function () {
      expect(await findSettlementRound(latest, 3001n, read)).to.equal(null);
      expect(reads).to.deep.equal([]);
    });

    it("gives up, rather than return an unprovable hint, when the round before is missing or the first round opens its phase", async function () {
      // Expiry 1,750: round 8 (1,800) is first, but round 7 is missing: settleSeries would revert.
      const gap = new Map(rounds).set(PHASE + 7n, 0n);
      expect(await findSettlementRound(latest, 1750n, async (id) => gap.get(id) ?? null)).to.equal(null);
      // Expiry before round 1: round 1 opens the phase and cannot be proven first.
      expect(await findSettlementRound(latest, 500n, read)).to.equal(null);
    });
  });
});

describe("Keeper retries", function () {
  it("backs off exponentially with jitter and a cap", function () {
    const mid = () => 0.5; // no jitter
    expect([1, 2, 3, 4, 5].map((n) => backoffMs(n, 100, 1000, mid))).to.deep.equal([
      100, 200, 400, 800, 1000,
    ]);
    expect(backoffMs(1, 100, 1000, () => 0)).to.equal(75);
    expect(backoffMs(1, 100, 1000, () => 1)).to.equal(125);
  });

  it("retries transport and server errors but not reverts", function () {
    expect(isTransientError(makeError("server response 503", "SERVER_ERROR"))).to.equal(true);
    expect(isTransientError(makeError("timeout", "TIMEOUT"))).to.equal(true);
    expect(
      isTransientError(
        Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }),
      ),
    ).to.equal(true);
    expect(isTransientError(makeError("execution reverted", "CALL_EXCEPTION"))).to.equal(false);
    expect(isTransientError(makeError("bad", "INVALID_ARGUMENT"))).to.equal(false);
  });

  it("tells an error answer that says nothing about the call from a revert or an eth_getLogs refusal (review round 52)", function () {
    const answer = (method: string, code: number, message: string, data?: unknown) =>
      isProviderErrorAnswer(method, { code, message, data });
    expect(answer("eth_call", -32005, "limit exceeded")).to.equal(true);
    expect(answer("eth_call", -32000, "header not found")).to.equal(true);
    expect(answer("eth_estimateGas", -32000, "execution aborted (timeout = 5s)")).to.equal(true);
    expect(answer("eth_getBalance", 429, "Too Many Requests")).to.equal(true);
    // Reverts, with data or without, and the node's out-of-gas stay answers.
    expect(answer("eth_call", 3, "execution reverted", "0x91b46fd2")).to.equal(false);
    expect(answer("eth_call", -32000, "execution reverted")).to.equal(false);
    expect(
      answer("eth_call", -32603, "Error: VM Exception while processing transaction", { data: "0x" }),
    ).to.equal(false);
    expect(answer("eth_call", -32000, "gas required exceeds allowance (50000000)")).to.equal(false);
    expect(answer("eth_estimateGas", -32000, "nonce too low")).to.equal(false);
    // eth_getLogs: Infura's -32005 also refuses a large answer; those are split, not retried.
    expect(answer("eth_getLogs", -32005, "query returned more than 10000 results")).to.equal(false);
    expect(answer("eth_getLogs", -32005, "limit exceeded")).to.equal(false);
    expect(answer("eth_getLogs", -32005, "daily request count exceeded, request rate limited")).to.equal(
      true,
    );
    // A timeout of the HTTP client or the node is worth splitting a batch for; ethers' 429 throttling is not.
    expect(isTimeoutError(makeError("request timeout", "TIMEOUT"))).to.equal(true);
    const throttled = makeError("timeout", "TIMEOUT", { operation: "request.send", reason: "timeout" });
    expect([isTimeoutError(throttled), isThrottledOrUnreachable(throttled)]).to.deep.equal([false, true]);
    expect(isThrottledOrUnreachable(makeError("request timeout", "TIMEOUT"))).to.equal(false);
    expect(
      isThrottledOrUnreachable(makeError("query returned more than 10000 results", "UNKNOWN_ERROR")),
    ).to.equal(false);
  });

  it("returns the first success after transient failures and rethrows a revert at once", async function () {
    let calls = 0;
    const value = await withRetry(
      async () => {
        if (++calls < 3) throw makeError("503", "SERVER_ERROR");
        return "ok";
      },
      { baseMs: 1, maxMs: 1 },
    );
    expect([value, calls]).to.deep.equal(["ok", 3]);
    calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw makeError("execution reverted", "CALL_EXCEPTION");
        },
        { baseMs: 1 },
      ),
    ).to.be.rejectedWith("execution reverted");
    expect(calls).to.equal(1);
  });

  it("gives up after the last attempt", async function () {
    let calls = 0;
    await expect(
      withRetry(
        async () => {
          calls++;
          throw makeError("503", "SERVER_ERROR");
        },
        { attempts: 3, baseMs: 1, maxMs: 1 },
      ),
    ).to.be.rejectedWith("503");
    expect(calls).to.equal(3);
  });
});

describe("Keeper command line", function () {
  const base = ["--rpc", "http://127.0.0.1:8545", "--deployment", "d.json"];

  it("applies the documented defaults and takes the key from KEEPER_PRIVATE_KEY", function () {
    const cfg = parseKeeperArgs(base, { KEEPER_PRIVATE_KEY: KEY });
    expect(cfg).to.deep.equal({
      rpcUrl: "http://127.0.0.1:8545",
      deploymentFile: "d.json",
      privateKey: KEY,
      accountId: null,
      dryRun: false,
      unwindBackstop: false,
      maxGasPriceWei: 100n * GWEI,
      startBlock: null,
      pollMs: 1000,
      recheckMs: 15_000,
      healthBatch: 100,
      logRange: 5000,
      minProfitUsd: usd("1"),
      minStakeUsd: usd("100"),
      startBatch: 20,
      fundingInterval: 3600,
      txTimeoutMs: 60_000,
      raceJitterMs: 250,
      logLevel: "info",
    });
  });

  it("parses every option, the flag's key winning over the environment", function () {
    const cfg = parseKeeperArgs(
      [
        ...base,
        "--private-key",
        "22".repeat(32),
        "--dry-run",
        "--max-gas-price-gwei",
        "1.5",
        "--start-block",
        "42",
        "--poll-ms",
        "250",
        "--recheck-ms",
        "5000",
        "--health-batch",
        "7",
        "--min-profit-usd",
        "0.25",
        "--start-batch",
        "5",
        "--funding-interval",
        "0",
        "--race-jitter-ms",
        "0",
      ],
      { KEEPER_PRIVATE_KEY: KEY },
    );
    expect(cfg).to.include({
      privateKey: `0x${"22".repeat(32)}`,
      dryRun: true,
      startBlock: 42,
      pollMs: 250,
      recheckMs: 5_000,
      healthBatch: 7,
      startBatch: 5,
      fundingInterval: 0,
      raceJitterMs: 0,
    });
    expect(cfg === "help" ? 0n : cfg.maxGasPriceWei).to.equal(parseUnits("1.5", "gwei"));
    expect(cfg === "help" ? 0n : cfg.minProfitUsd).to.equal(usd("0.25"));
  });

  it("refuses missing or malformed input with a usage error", function () {
    expect(() => parseKeeperArgs(base, {})).to.throw(UsageError, "KEEPER_PRIVATE_KEY");
    expect(() => parseKeeperArgs(["--deployment", "d.json"], { KEEPER_PRIVATE_KEY: KEY })).to.throw(
      UsageError,
      "--rpc",
    );
    expect(() => parseKeeperArgs([...base, "--poll-ms", "fast"], { KEEPER_PRIVATE_KEY: KEY })).to.throw(
      UsageError,
    );
    expect(() =>
      parseKeeperArgs([...base, "--max-gas-price-gwei", "-1"], { KEEPER_PRIVATE_KEY: KEY }),
    ).to.throw(UsageError);
    expect(() => parseKeeperArgs([...base, "--bogus"], { KEEPER_PRIVATE_KEY: KEY })).to.throw(UsageError);
    expect(() => parseKeeperArgs([...base, "--start-batch", "0"], { KEEPER_PRIVATE_KEY: KEY })).to.throw(
      UsageError,
      "--start-batch",
    );
    expect(() => parseKeeperArgs(base, { KEEPER_PRIVATE_KEY: "0x1234" })).to.throw(UsageError, "32 bytes");
    expect(() => parseKeeperArgs([...base, "--race-jitter-ms", "-1"], { KEEPER_PRIVATE_KEY: KEY })).to.throw(
      UsageError,
      "--race-jitter-ms",
    );
    for (const id of ["0", "abc", "-1"]) {
      expect(() => parseKeeperArgs([...base, "--account-id", id], { KEEPER_PRIVATE_KEY: KEY })).to.throw(
        UsageError,
        "--account-id",
      );
    }
  });

  it("takes the bidder account to check first from --account-id", function () {
    const cfg = parseKeeperArgs([...base, "--account-id", "7"], { KEEPER_PRIVATE_KEY: KEY });
    expect(cfg === "help" ? null : cfg.accountId).to.equal(7n);
  });

  it("answers --help without other arguments", function () {
    expect(parseKeeperArgs(["--help"], {})).to.equal("help");
  });
});

describe("Keeper logs", function () {
  it("writes one JSON object per line with ts, level, msg and fields, bigints as strings", function () {
    const lines: string[] = [];
    const log = createLogger({ level: "info", write: (l) => lines.push(l), now: () => new Date(0) });
    log.debug("hidden");
    log.info("bid", { accountId: 5n, error: makeError("execution reverted", "CALL_EXCEPTION") });
    expect(lines).to.have.length(1);
    expect(JSON.parse(lines[0])).to.deep.equal({
      ts: "1970-01-01T00:00:00.000Z",
      level: "info",
      msg: "bid",
      fields: { accountId: "5", error: { code: "CALL_EXCEPTION", message: "execution reverted" } },
    });
  });

  it("writes a setup notice once a minute while a retry repeats it, then says how many it dropped", function () {
    const lines: string[] = [];
    let clock = 0;
    const log = withoutRepeats(createLogger({ write: (l) => lines.push(l) }), 60_000, () => clock);
    // A retry every 2 s for 2 minutes (the keeper's backoff while a dev node waits for its redeploy).
    for (; clock <= 120_000; clock += 2_000) {
      log.warn("deployment not on chain; waiting", { contract: "engine" });
      log.error("keeper wallet cannot pay for gas; fund it", { oneBidWei: BigInt(clock) });
    }
    log.info("session ready");
    const written = lines.map((l) => JSON.parse(l) as { msg: string; fields: Record<string, unknown> });
    expect(written.map((l) => [l.msg, l.fields.repeated])).to.deep.equal([
      ["deployment not on chain; waiting", undefined],
      ["keeper wallet cannot pay for gas; fund it", undefined],
      ["deployment not on chain; waiting", 29],
      ["keeper wallet cannot pay for gas; fund it", 29],
      ["deployment not on chain; waiting", 29],
      ["keeper wallet cannot pay for gas; fund it", 29],
      ["session ready", undefined],
    ]);
    // The line written carries the fields of its own moment, not the first one's.
    expect(written[3].fields.oneBidWei).to.equal("60000");
  });
});
