/**
 * Review round 139 of the session's keeper change (264d50d, docs/reliability.md row 360): within the flag
 * reward's cooldown a solvent account below `--min-stake-usd` is started once equity_MM < MM/2
 * (`logic.isFarBelowMaintenance`), valued at its MM against twice the start's gas. Two accounts of the
 * same shape (long 0.2 ETH, 150 USDC of collateral, MM ≈ 34 USD at ETH 2,290: below the stake), one
 * auctioned, topped up and ended within the cooldown, one never auctioned; the chain's base fee at 20
 * gwei (an L1 busy hour), where a start costs ≈ 11 USD of gas and the flag reward is capped at 10 USDC.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, openAccount, wad } from "../shared/system";
import { deployOptionsSystem } from "../shared/options";
import { trade } from "../shared/perps";
import { mintAndApprove } from "../shared/tokens";
import { setFeedPrice } from "../shared/oracles";
import { hardhatWallet } from "../shared/e2e";
import { mineAtBaseFee, startInProcessKeeper } from "../shared/keeper";

const USDC = 10n ** 6n;
const KEEPER = hardhatWallet(4).address;

/**
 * `restarted`: long 0.2 ETH on 100 USDC, started by the keeper at ETH 2,600 (flag reward 10 USDC), topped
 * up by 60 and ended: 150 USDC, within the 1-day cooldown. `fresh`: the same long on 150 USDC, never
 * auctioned. Then ETH 2,290: both far below their line (equity_MM ≈ 7 against MM ≈ 34), solvent.
 */
async function smallLongsFallen(withFresh: boolean) {
  const sys = await deployOptionsSystem();
  const restarted = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100n * USDC]]);
  await trade(sys.perps, sys.alice, restarted, sys.markets.ETH, wad("0.2"));
  const fresh = withFresh ? await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 150n * USDC]]) : 0n;
  if (withFresh) await trade(sys.perps, sys.bob, fresh, sys.markets.ETH, wad("0.2"));
  await setFeedPrice(sys.feeds.ETH, "2600");
  const keeper = await startInProcessKeeper(sys, ["--min-profit-usd", "1000000"]);
  await keeper.step();
  const first = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted());
  expect(first.map((e) => [e.args.accountId, e.args.flagReward])).to.deep.equal([[restarted, 10n * USDC]]);
  await mintAndApprove(sys.usdc, sys.alice, await sys.vault.getAddress(), 60n * USDC);
  const topUp = await (await sys.vault.connect(sys.alice).deposit(restarted, sys.usdc, 60n * USDC)).wait();
  expect((await keeper.step()).ended).to.deep.equal([restarted]);
  await setFeedPrice(sys.feeds.ETH, "2290");
  await mineAtBaseFee(20n);
  return { sys, keeper, restarted, fresh, topUpGas: topUp!.gasUsed };
}

const twoSmallLongsFallen = () => smallLongsFallen(true);
const restartedLongFallen = () => smallLongsFallen(false);

describe("Session changes 42: the keeper's start of a small account far below its line (row 360)", function () {
  it("starts a small solvent account far below its line whether or not it was auctioned within the cooldown", async function () {
    const { sys, keeper, restarted, fresh } = await loadFixture(twoSmallLongsFallen);
    for (const id of [restarted, fresh]) {
      const h = await sys.engine.health(id);
      expect(h.maintenanceRequirement).to.be.lessThan(wad("100")); // below the stake
      expect(h.equityMark).to.be.greaterThan(wad("1")); // solvent: a flag reward of whole USDC
      expect(h.equityMaintenance * 2n).to.be.lessThan(h.maintenanceRequirement); // far below
      expect(h.maintenanceRequirement).to.be.greaterThan(wad("30"));
    }

    const report = await keeper.step();

    const started = await sys.auction.queryFilter(sys.auction.filters.AuctionStarted());
    const now = started.slice(1).map((e) => e.args.accountId);
    // Before the fix: the restarted account was started (valued at its MM, 34 USD, against 2 × 11 USD of
    // gas) and the fresh one was not: its flag reward (its equity, 7 USDC) was the value, below 2 × gas,
    // though its start protects the same MM. It stayed in notStarted until insolvent, then was started.
    expect(now).to.have.members([restarted, fresh]);
    expect(report.notStarted).to.deep.equal([]);
  });

  it("leaves a restarted account parked above half its MM, and starts it once it falls below", async function () {
    const { sys, keeper, restarted } = await loadFixture(restartedLongFallen);
    await setFeedPrice(sys.feeds.ETH, "2355");
    await mineAtBaseFee(20n);
    let h = await sys.engine.health(restarted);
    // equity_MM ≈ 20 against MM ≈ 35: below its line, above half of it (row 146's hovering account).
    expect(h.equityMaintenance * 2n).to.be.greaterThan(h.maintenanceRequirement);
    expect(h.equityMaintenance).to.be.lessThan(h.maintenanceRequirement);
    expect((await keeper.step()).notStarted).to.deep.equal([restarted]);
    expect(await sys.auction.queryFilter(sys.auction.filters.AuctionStarted())).to.have.length(1);

    await setFeedPrice(sys.feeds.ETH, "2290");
    await mineAtBaseFee(20n);
    h = await sys.engine.health(restarted);
    expect(h.equityMaintenance * 2n).to.be.lessThan(h.maintenanceRequirement);
    expect((await keeper.step()).notStarted).to.deep.equal([]);
    const restart = (await sys.auction.queryFilter(sys.auction.filters.AuctionStarted())).at(-1)!;
    expect([restart.args.accountId, restart.args.flagReward]).to.deep.equal([restarted, 0n]);
  });

  it("pays a start and an end per crossing of a restarted account, against its owner's one deposit", async function () {
    const { sys, keeper, restarted, topUpGas } = await loadFixture(restartedLongFallen);
    const eth0 = await ethers.provider.getBalance(KEEPER);
    await keeper.step();
    const restart = (await sys.auction.queryFilter(sys.auction.filters.AuctionStarted())).at(-1)!;
    expect([restart.args.accountId, restart.args.flagReward]).to.deep.equal([restarted, 0n]);
    const startGas = (await restart.getTransactionReceipt()).gasUsed;

    await mintAndApprove(sys.usdc, sys.alice, await sys.vault.getAddress(), 60n * USDC);
    await sys.vault.connect(sys.alice).deposit(restarted, sys.usdc, 60n * USDC);
    expect((await keeper.step()).ended).to.deep.equal([restarted]);
    const end = (await sys.auction.queryFilter(sys.auction.filters.AuctionEnded())).at(-1)!;
    const endGas = (await end.getTransactionReceipt()).gasUsed;
    const spentWei = eth0 - (await ethers.provider.getBalance(KEEPER));
    // Per crossing the keeper pays a restart (no reward) and an end: 353,018 gas, 0.00533 ETH at 20 gwei
    // (12.2 USD at ETH 2,290); the owner a deposit (60,667 gas), or nothing when the price comes back.
    expect(startGas).to.be.closeTo(186_943n, 5_000n);
    expect(endGas).to.be.closeTo(166_075n, 5_000n);
    expect(topUpGas).to.be.closeTo(60_667n, 3_000n);
    expect(startGas + endGas).to.be.greaterThan(5n * topUpGas);
    expect(spentWei).to.be.closeTo(5_330_949_586_023_025n, 10n ** 14n);
  });
});
