/**
 * The keeper's gas estimates past EIP-7825's cap, its setup notices across a chain reset, and which flat
 * accounts withdraw during a price outage (review round 81 of session 28's own changes; docs/reliability.md
 * §4 rows 200–203).
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { Wallet, isError } from "ethers";
import { MarginMode, deploySystem, openAccount, wad, type System } from "../shared/system";
import { wethDebtorSystem } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { deployOptionsSystem } from "../shared/options";
import { hardhatWallet, waitFor } from "../shared/e2e";
import { runKeeperOverBridge, startRpcBridge, type Misbehaviour, waitForPassOn } from "../shared/keeper";
import { createProvider } from "../../scripts/keeper/chain";
import { createLogger } from "../../scripts/keeper/log";
import { TX_GAS_CAP, TxSender } from "../../scripts/keeper/sender";

/**
 * Runs `body` with a TxSender over HTTP through a bridge whose eth_estimateGas answers `estimateAnswer`
 * (every other request reaches the chain; `ethCalls` counts the eth_calls that did), then closes both.
 */
async function withEstimateAnswer(
  estimateAnswer: Extract<Misbehaviour, { error: unknown }>["error"],
  body: (s: { sender: TxSender; ethCalls: () => number }) => Promise<void>,
): Promise<void> {
  const bridge = await startRpcBridge((call) =>
    call.method === "eth_estimateGas" ? { error: estimateAnswer } : undefined,
  );
  const chainId = Number((await ethers.provider.getNetwork()).chainId);
  const provider = createProvider(bridge.url, chainId, { attempts: 1, baseMs: 5, maxMs: 10 }, 5_000);
  const sender = new TxSender(
    new Wallet(hardhatWallet(4).privateKey, provider),
    provider,
    chainId,
    createLogger({ level: "error", write: () => {} }),
    { maxGasPriceWei: 10n ** 12n, dryRun: true, txTimeoutMs: 1_000, pollMs: 10 },
  );
  try {
    await body({ sender, ethCalls: () => bridge.calls.filter((c) => c.method === "eth_call").length });
  } finally {
    provider.destroy();
    await bridge.close();
  }
}

describe("Keeper estimates and setup notices, and withdrawals in a price outage", function () {
  this.timeout(120_000);

  describe("TxSender.estimateGas's fallback to one eth_call at 2^24 (row 200)", function () {
    let sys: System;
    before(async function () {
      sys = await deploySystem();
    });

    it("throws a node's 'execution reverted' without revert data as it is, without a second eth_call (before the fix: every such revert was run again at the cap)", async function () {
      // A call that reverts (startAuction of an account that does not exist), and a node that leaves the
      // revert data out of its estimate answer (geth for an empty revert; providers that strip `data`).
      await withEstimateAnswer({ code: -32000, message: "execution reverted" }, async (s) => {
        const to = await sys.auction.getAddress();
        const data = sys.auction.interface.encodeFunctionData("startAuction", [999n]);
        await expect(s.sender.estimateGas({ to, data })).to.be.rejected;
        expect(s.ethCalls()).to.equal(0);
      });
    });

    it("throws an estimate refused for want of funds, rather than answering the cap (before the fix: 16,777,216 gas for a call the node refused to price)", async function () {
      await withEstimateAnswer(
        {
          code: -32000,
          message: "insufficient funds for gas * price + value: have 0 want 1000000000000",
        },
        async (s) => {
          const to = await sys.accounts.getAddress();
          const data = sys.accounts.interface.encodeFunctionData("createAccount", [0]);
          const answer = await s.sender.estimateGas({ to, data }).then(
            (gas) => gas,
            (error: unknown) => error,
          );
          expect(typeof answer === "bigint" ? `an estimate of ${answer}` : "thrown").to.equal("thrown");
          expect(isError(answer, "INSUFFICIENT_FUNDS")).to.equal(true);
        },
      );
    });

    it("still checks an estimate refused for the estimator's own gas cap by one eth_call, and answers the cap (round 80's case, kept)", async function () {
      await withEstimateAnswer(
        {
          code: -32000,
          message: "transaction gas limit (37,314,702) is greater than the cap (16,777,216)",
        },
        async (s) => {
          const to = await sys.accounts.getAddress();
          const data = sys.accounts.interface.encodeFunctionData("createAccount", [0]);
          expect(await s.sender.estimateGas({ to, data })).to.equal(TX_GAS_CAP);
          expect(s.ethCalls()).to.equal(1);
        },
      );
    });
  });

  describe("runKeeper's setup notices (row 201)", function () {
    it("writes the empty-wallet error again when a new session opens after a chain reset within the minute (before the fix: dropped as a repeat, and never written for that session)", async function () {
      const sys = await deployOptionsSystem();
      // A wallet without a wei; a dry run, so that the session opens without its own transactions.
      const { lines, stop } = await runKeeperOverBridge(sys, {
        privateKey: Wallet.createRandom().privateKey,
        args: ["--dry-run"],
      });
      const count = (msg: string) => lines.filter((l) => l.msg === msg).length;
      try {
        await waitFor("the first session", () => count("session ready") === 1, 30_000);
        expect(count("keeper wallet cannot pay for gas; fund it")).to.equal(1);
        // A one-block reorg (as in KeeperDegradedChain.test.ts): the keeper rebuilds its session.
        const fork = (await network.provider.request({ method: "evm_snapshot", params: [] })) as string;
        await network.provider.request({ method: "evm_mine", params: [] });
        // The keeper must have taken the new block as its anchor before it is replaced: its pass on that
        // block says so. (Five requests and 300 ms were not proof: a 500 ms stall of its read of the block
        // left the old anchor, the reorg went unseen and the rebuilt session never came; review round 133.)
        const mined = await ethers.provider.getBlockNumber();
        await waitForPassOn(lines, mined);
        await network.provider.request({ method: "evm_revert", params: [fork] });
        const latest = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
        for (const dt of [7n, 8n])
          await network.provider.request({ method: "evm_mine", params: [Number(latest + dt)] });
        await waitFor("the rebuilt session", () => count("session ready") === 2, 30_000);
        expect(count("chain reset detected; rebuilding state")).to.equal(1);
        // The new session's wallet is as empty: the operator is told again.
        expect(count("keeper wallet cannot pay for gas; fund it")).to.equal(2);
      } finally {
        await stop();
      }
    });
  });

  describe("IMarginEngine.health's NatSpec: a flat account can still withdraw in a price outage (row 202)", function () {
    it("holds for a flat account without quote debt, not for a flat one that owes quote: its withdrawal reads the failed feed (the NatSpec said any flat account)", async function () {
      const sys = await loadFixture(wethDebtorSystem);
      const lender = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.weth, wad("1")]]);
      expect(await sys.engine.accountMarkets(sys.debtorId)).to.deep.equal([]); // flat
      expect(await sys.vault.balanceOf(sys.debtorId, sys.usdc)).to.be.lt(0n); // owes quote
      // The ETH feed stops for more than its hour; the others keep posting.
      await time.increase(3_601);
      await setFeedPrice(sys.feeds.USDC, "1");
      await setFeedPrice(sys.feeds.BTC, "34000");
      await expect(sys.engine.health(sys.debtorId)).to.be.revertedWithCustomError(sys.router, "StalePrice");
      // Flat, no debt: withdraws (what the NatSpec says).
      await sys.vault.connect(sys.alice).withdraw(lender, sys.weth, wad("0.5"), sys.alice);
      // Flat, in debt: the vault asks the engine for its initial margin, which reads the failed feed.
      await expect(
        sys.vault.connect(sys.bob).withdraw(sys.debtorId, sys.weth, wad("0.01"), sys.bob),
      ).to.be.revertedWithCustomError(sys.router, "StalePrice");
    });
  });
});
