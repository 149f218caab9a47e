import { expect } from "chai";
import { parseEther } from "ethers";
import { ethers, network } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import {
  createAccount,
  deposit,
  getHealthMany,
  listAccounts,
  listAuctions,
  quoteBid,
  startAuction,
  makeXMarginError,
  openPosition,
} from "../../sdk/src";
import { PaddedGasSigner, paddedGasLimit } from "../../sdk/src/actions/internal/gas";
import { blockAt } from "../../sdk/src/actions/internal/chain";
import { aliceLongTwoEth } from "../shared/perps";
import { assetId } from "../shared/oracles";
import { deploySystem, wad } from "../shared/system";
import { alicesUsdcAccount, browserClient, walletClient } from "../shared/sdk";

/**
 * Review round 160: hand-made mutants of session 46's changes (the vault's and the pool's
 * `recoverSurplus`, `_recordRate`, `_moveDebts`; the SDK's gas padding, the floor of its reads at its
 * last mined block, its error wording). These specs kill the mutants the existing specs let live.
 */

const USDC = 10n ** 6n;

/** Alice long 2 ETH on 1,000 USDC, ETH at 2,650: below maintenance, solvent. */
async function aliceUnderMaintenance() {
  return aliceLongTwoEth("2650");
}

describe("Session 46's changes under mutation (review round 160)", function () {
  describe("LiquidityPool.recoverSurplus", function () {
    it("sends the stray tokens to the recipient it names, not to the caller", async function () {
      const sys = await loadFixture(deploySystem);
      await sys.usdc.mint(await sys.pool.getAddress(), 40n * USDC);
      const before = await sys.usdc.balanceOf(sys.carol.address);
      await sys.pool.recoverSurplus(sys.usdc, sys.carol.address);
      expect((await sys.usdc.balanceOf(sys.carol.address)) - before).to.equal(40n * USDC);
    });
  });

  describe("error wording", function () {
    it("puts the deposit total and the cap each in its place", function () {
      const token = "0x00000000000000000000000000000000000000AA";
      const ctx = {
        tokens: new Map([[token.toLowerCase(), { address: token, symbol: "TKN", decimals: 6 }]]),
      };
      const error = makeXMarginError("DepositCapExceeded", [token, 3_000_000n, 2_000_000n], ctx);
      expect(error.message).to.equal(
        "the deposit would take total TKN deposits to 3.000000 TKN, above the cap of 2.000000 TKN",
      );
    });
  });

  describe("the SDK's gas padding", function () {
    it("pads the approval a deposit sends, not only the protocol's transactions", async function () {
      const { sys, accountId } = await loadFixture(alicesUsdcAccount);
      await sys.usdc.mint(sys.alice.address, 100n * USDC);
      const estimates: bigint[] = [];
      const sent: bigint[] = [];
      const client = await walletClient(sys, { estimates, sentGas: sent });
      await deposit(client, { accountId, token: "USDC", amount: 100n * USDC, approval: "approve" });
      // Two transactions, the approval and the deposit, each with its estimate padded.
      expect(sent).to.have.length(2);
      const padded = estimates.slice(-2).map(paddedGasLimit);
      expect(sent).to.deep.equal(padded);
    });

    it("pads the permit a deposit sends", async function () {
      const { sys, accountId } = await loadFixture(alicesUsdcAccount);
      const token = await ethers.deployContract("MockERC20Permit", ["Permit Dollar", "pUSD", 6]);
      await sys.vault.listCollateral(token, assetId("USDC"), wad("1"), wad("1"), 10n ** 15n, false);
      await token.mint(sys.alice.address, 100n * USDC);
      const estimates: bigint[] = [];
      const sent: bigint[] = [];
      const client = await walletClient(sys, { estimates, sentGas: sent });
      const r = await deposit(client, { accountId, token: await token.getAddress(), amount: 100n * USDC });
      expect(r.approval).to.equal("permit");
      // The permit and the deposit, each with its estimate padded.
      expect(sent).to.have.length(2);
      expect(sent).to.deep.equal(estimates.slice(-2).map(paddedGasLimit));
    });

    it("stays a padding signer when connected to another provider", async function () {
      const sys = await loadFixture(deploySystem);
      const padded = new PaddedGasSigner(sys.alice);
      expect(padded.connect(sys.alice.provider)).to.be.instanceOf(PaddedGasSigner);
    });
  });

  describe("reads at the latest block after the client's own transaction", function () {
    it("gives getHealthMany the requirement of the trade just sent", async function () {
      const { sys, accountId } = await loadFixture(alicesUsdcAccount);
      const client = await browserClient(sys);
      expect((await getHealthMany(client, { accountIds: [accountId] }))[0].maintenanceRequirement).to.equal(
        0n,
      );
      await openPosition(client, { accountId, marketId: 1n, size: parseEther("2") });
      expect(
        (await getHealthMany(client, { accountIds: [accountId] }))[0].maintenanceRequirement,
      ).to.be.greaterThan(0n);
    });

    it("reads a past block it is given at that block, not at the client's last mined one", async function () {
      const sys = await loadFixture(deploySystem);
      const client = await browserClient(sys);
      const before = Number(await network.provider.request({ method: "eth_blockNumber", params: [] }));
      await createAccount(client);
      expect((await blockAt(client, before)).number).to.equal(before);
    });

    it("lists the auction and quotes the bid on the auction the client has just started", async function () {
      const { sys, alice } = await loadFixture(aliceUnderMaintenance);
      const client = await browserClient(sys, sys.keeper.address);
      expect(await listAuctions(client)).to.deep.equal([]);
      await startAuction(client, { accountId: alice });
      expect((await listAuctions(client)).map((a) => a.accountId)).to.deep.equal([alice]);
      expect(
        (await quoteBid(client, { accountId: alice, fraction: parseEther("1") })).filled,
      ).to.be.greaterThan(0n);
    });

    it("forgets a mined block the chain rewound past, and floors at the next transaction's block", async function () {
      const sys = await loadFixture(deploySystem);
      const client = await browserClient(sys);
      const snapshot = await network.provider.request({ method: "evm_snapshot", params: [] });
      await createAccount(client);
      await createAccount(client);
      await network.provider.request({ method: "evm_revert", params: [snapshot] });
      // Reads at the rewound chain: the two accounts are gone, and so is the block they were mined in.
      expect(await listAccounts(client)).to.deep.equal([]);
      const { accountId } = await createAccount(client);
      // Kept, the higher gone block would floor no read, and the cached block before the mint was read.
      expect(await listAccounts(client)).to.deep.equal([accountId]);
    });
  });
});
