/**
 * Review round 145: mutation test of session 42's changes (`git diff 69491db 5871790`): the keeper's rule
 * for small books far below maintenance (`logic.isFarBelowMaintenance`, `startWorthSending`'s value of
 * such a start: rows 360, 385), the SDK's `tokenError` of a previewed withdrawal (row 405) and
 * `LiquidityPool._requireUnlocked`'s ERC20InsufficientBalance (row 400). Each spec here fails on a
 * hand-written mutant the existing specs let through (named in the spec) and passes on the code.
 */
import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import type { JsonRpcProvider } from "ethers";
import { MarginMode, deploySystem, openAccount, wad } from "../shared/system";
import { deployOptionsSystem } from "../shared/options";
import { trade } from "../shared/perps";
import { setFeedPrice } from "../shared/oracles";
import { blocklistingUsdc, mintAndApprove } from "../shared/tokens";
import { mineAtBaseFee, startInProcessKeeper } from "../shared/keeper";
import { deploymentOf } from "../shared/sdk";
import { createClient, preview } from "../../sdk/src";

const USDC = 10n ** 6n;
const BLOCKED = "Blacklistable: account is blacklisted";
const PAUSED = "Pausable: paused";

/**
 * A never-auctioned small long (0.2 ETH on 150 USDC: MM ≈ 35 USD, below `--min-stake-usd` 100, flag
 * reward its mark capped at 10 USDC) at ETH `price`, the keeper's next pass priced at a base fee of `gwei`.
 */
async function freshSmallLongAt(price: string, gwei: bigint) {
  const sys = await deployOptionsSystem();
  const id = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 150n * USDC]]);
  await trade(sys.perps, sys.alice, id, sys.markets.ETH, wad("0.2"));
  const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
  await setFeedPrice(sys.feeds.ETH, price);
  await mineAtBaseFee(gwei);
  return { sys, id, keeper };
}

/** Hovering: equity_MM ≈ 20 against MM ≈ 35; a start's gas ≈ 11.6 USD (twice: above the 10 USDC reward). */
const hoveringAt20Gwei = () => freshSmallLongAt("2355", 20n);
/** Far below: equity_MM ≈ 7.6 (its reward) against MM ≈ 34.4; twice a start's gas ≈ 37.5 USD at 33 gwei. */
const farBelowAt33Gwei = () => freshSmallLongAt("2290", 33n);

/** The keeper's pass; whether it started `id`'s auction. */
async function keeperStarts({ sys, id, keeper }: Awaited<ReturnType<typeof freshSmallLongAt>>) {
  const report = await keeper.step();
  const started = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted());
  return { notStarted: report.notStarted, started: started.map((e) => e.args.accountId).includes(id) };
}

describe("Session changes 43: mutants of session 42's changes the earlier specs let through", function () {
  describe("the keeper's value of a small account's start (liquidator.startWorthSending)", function () {
    it("leaves a never-auctioned small account hovering at its line whose flag reward is below twice the start's gas", async function () {
      // Mutant Q14 (`protects &&` dropped: every small book valued at max(MM, reward)) started it.
      const world = await loadFixture(hoveringAt20Gwei);
      const { sys, id } = world;
      const h = await sys.engine.health(id);
      expect(h.equityMaintenance).to.be.lessThan(h.maintenanceRequirement); // liquidatable
      expect(h.equityMaintenance * 2n).to.be.greaterThan(h.maintenanceRequirement); // not far below
      expect(h.equityMark).to.be.greaterThan(wad("10")); // its flag reward: the 10 USDC cap
      expect(h.maintenanceRequirement).to.be.greaterThan(wad("30")); // MM > 2 × gas ≈ 23 USD
      expect(await keeperStarts(world)).to.deep.equal({ notStarted: [id], started: false });
    });

    it("values a far-below small account at the larger of its MM and its flag reward, not their sum", async function () {
      // Mutant Q17 (MM + reward: 42 USD against twice the gas, 37.5) started it. At 20 gwei it is
      // started (SessionChanges42.test.ts); here twice the gas is above its MM, so it waits.
      const world = await loadFixture(farBelowAt33Gwei);
      const { sys, id } = world;
      const h = await sys.engine.health(id);
      expect(h.equityMaintenance * 2n).to.be.lessThan(h.maintenanceRequirement); // far below
      expect(h.equityMark).to.be.closeTo(wad("7.6"), wad("0.2")); // solvent: its flag reward
      expect(h.maintenanceRequirement).to.be.closeTo(wad("34.4"), wad("0.2"));
      expect(await keeperStarts(world)).to.deep.equal({ notStarted: [id], started: false });
    });
  });

  describe("the SDK's tokenError of a previewed withdrawal (preview.withdrawalRefusedByToken)", function () {
    /** Carol's account holds 10,000 USDC; USDC gets BlocklistERC20Mock's code (nobody listed, unpaused). */
    async function carolWithBlocklistingUsdc() {
      const sys = await deploySystem();
      const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 10_000n * USDC]]);
      const usdc = await blocklistingUsdc(sys.usdc);
      const client = createClient({ runner: ethers.provider, deployment: await deploymentOf(sys) });
      return { sys, carol, usdc, client };
    }

    it("asks the token at the snapshot's block: a pause or an owner change after it is not read", async function () {
      // Mutants S4 (the static call without the snapshot's blockTag) and S8 (`ownerOf` without it).
      const { sys, carol, usdc, client } = await loadFixture(carolWithBlocklistingUsdc);
      const action = { type: "withdraw", token: "USDC", amount: 1_000n * USDC } as const;
      const erin = (await ethers.getSigners())[7];
      await usdc.setBlocklisted(erin.address, true);
      const before = await ethers.provider.getBlockNumber();
      await usdc.setPaused(true);
      expect((await preview(client, carol, action, { blockTag: before })).tokenError).to.equal(undefined);
      expect((await preview(client, carol, action)).tokenError?.message).to.contain(PAUSED);

      await usdc.setPaused(false);
      await sys.accounts.connect(sys.carol).transferFrom(sys.carol.address, erin.address, carol);
      // At `before` the recipient is the owner then, Carol, to whom the token sends; now it is Erin.
      expect((await preview(client, carol, action, { blockTag: before })).tokenError).to.equal(undefined);
      expect((await preview(client, carol, action)).tokenError?.message).to.contain(BLOCKED);
    });

    it("gives a read-only client's preview the protocol's refusal first, and no tokenError with it", async function () {
      // Mutant S17 (without a signer, the simulation's revert dropped: an over-withdrawal previewed as
      // going through, or as the token's refusal while USDC is paused).
      const { carol, usdc, client } = await loadFixture(carolWithBlocklistingUsdc);
      await usdc.setPaused(true);
      const r = await preview(client, carol, { type: "withdraw", token: "USDC", amount: 10_001n * USDC });
      expect(r.revert?.name).to.equal("InsufficientBalance");
      expect(r.tokenError).to.equal(undefined);
    });

    it("throws a failure of the node, not a token's refusal, out of preview", async function () {
      // Mutant S10 (every error of the static call returned as tokenError).
      const { sys, carol } = await loadFixture(carolWithBlocklistingUsdc);
      const usdcAddress = (await sys.usdc.getAddress()).toLowerCase();
      const TRANSFER = "0xa9059cbb"; // transfer(address,uint256): the preview's static call only
      const down = new Error("connect ECONNREFUSED 127.0.0.1:8545");
      const provider = new Proxy(ethers.provider, {
        get(target, key, proxy) {
          if (key === "provider") return proxy; // a Provider is its own runner's provider
          if (key === "call") {
            return async (tx: { to?: string; data?: string }) => {
              if (tx.to?.toLowerCase() === usdcAddress && tx.data?.startsWith(TRANSFER)) throw down;
              return target.call(tx);
            };
          }
          const value = Reflect.get(target, key, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      }) as unknown as JsonRpcProvider;
      const client = createClient({ runner: provider, deployment: await deploymentOf(sys) });
      const action = { type: "withdraw", token: "USDC", amount: 1_000n * USDC } as const;
      await expect(preview(client, carol, action)).to.be.rejectedWith("ECONNREFUSED");
    });

    it("reads a token whose transfer returns nothing (USDT's) as sending", async function () {
      // Mutant S14 (`returned === "0x"` dropped: BigInt("0x") threw out of preview).
      const { sys, carol, client } = await loadFixture(carolWithBlocklistingUsdc);
      const odd = await ethers.deployContract("OddERC20", ["Odd", "ODD", 6]);
      const usdc = await sys.usdc.getAddress();
      await network.provider.send("hardhat_setCode", [usdc, await ethers.provider.getCode(odd)]);
      const asOdd = await ethers.getContractAt("OddERC20", usdc);
      await asOdd.mint(await sys.vault.getAddress(), 1_000n * USDC); // OddERC20's own balance slots
      const r = await preview(client, carol, { type: "withdraw", token: "USDC", amount: 1_000n * USDC });
      expect(r.revert).to.equal(undefined);
      expect(r.tokenError).to.equal(undefined);
    });

    it("reads a token whose transfer returns false as refusing", async function () {
      // Mutant S13 (a call that did not revert read as sending: SafeERC20 reverts on the false).
      const { sys, carol, client } = await loadFixture(carolWithBlocklistingUsdc);
      // Runtime code answering every call with 32 zero bytes: `transfer` returns false.
      await network.provider.send("hardhat_setCode", [await sys.usdc.getAddress(), "0x600060005260206000f3"]);
      const r = await preview(client, carol, { type: "withdraw", token: "USDC", amount: 1_000n * USDC });
      expect(r.revert).to.equal(undefined);
      expect(r.tokenError?.message).to.contain("returned false for the vault's transfer of 1000000000");
    });
  });

  describe("LiquidityPool._requireUnlocked's refusals (row 400)", function () {
    /** The fixture's LP with a fresh 1,000 USDC deposit still in its holding period beside older shares. */
    async function lpWithLockedDeposit() {
      const sys = await deploySystem();
      const lp = sys.lp.address;
      await mintAndApprove(sys.usdc, sys.lp, await sys.pool.getAddress(), 1_000n * USDC);
      await (await sys.pool.connect(sys.lp).deposit(1_000n * USDC, lp)).wait();
      return { sys, lp, balance: await sys.pool.balanceOf(lp) };
    }

    it("names the whole balance, locked shares included, in a transfer beyond it", async function () {
      // Mutant C3 (the unlocked shares named as the balance).
      const { sys, lp, balance } = await loadFixture(lpWithLockedDeposit);
      expect(await sys.pool.unlockedShares(lp)).to.be.lessThan(balance);
      await expect(sys.pool.connect(sys.lp).transfer(sys.bob.address, balance + 1n))
        .to.be.revertedWithCustomError(sys.pool, "ERC20InsufficientBalance")
        .withArgs(lp, balance, balance + 1n);
    });

    it("names the owner, not the spender, in a transferFrom beyond the owner's balance", async function () {
      // Mutant C6 (`msg.sender` in the error: the spender's address with the owner's balance).
      const { sys, lp, balance } = await loadFixture(lpWithLockedDeposit);
      await (await sys.pool.connect(sys.lp).approve(sys.bob.address, balance + 1n)).wait();
      await expect(sys.pool.connect(sys.bob).transferFrom(lp, sys.bob.address, balance + 1n))
        .to.be.revertedWithCustomError(sys.pool, "ERC20InsufficientBalance")
        .withArgs(lp, balance, balance + 1n);
    });
  });
});
