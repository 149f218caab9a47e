import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import { DEFAULT_RISK_PARAMS, MarginMode, WAD, deploySystem, openAccount, wad } from "../shared/system";
import { setFeedPrice } from "../shared/oracles";
import { deployPerps, listPerpMarket, marketParams, trade } from "../shared/perps";

const usdc = (x: string): bigint => ethers.parseUnits(x, 6);
const YEAR = 31_536_000n;
const STATIC = marketParams({ maxFundingVelocity: 0n });

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b;
function sqrtCeil(x: bigint): bigint {
  if (x < 2n) return x;
  let r = x;
  let next = (x >> 1n) + 1n;
  while (next < r) {
    r = next;
    next = (r + x / r) >> 1n;
  }
  return r * r === x ? r : r + 1n;
}

/**
 * The engine's spot shock for a group of `notional` USD: max(floor, z·(σ·√(horizon/year))) scaled by
 * (1 + notional/sizeScale), each step rounded up as in PortfolioMath.horizonVolatility and spotShock.
 */
function spotShock(floor: bigint, z: bigint, vol: bigint, notional: bigint): bigint {
  const p = DEFAULT_RISK_PARAMS;
  const sqrtTime = sqrtCeil((BigInt(p.horizon) * WAD * WAD) / YEAR);
  const sigmaSqrtHorizon = ceilDiv(vol * sqrtTime, WAD);
  const volShock = ceilDiv(z * sigmaSqrtHorizon, WAD);
  const base = volShock > floor ? volShock : floor;
  return ceilDiv(base * (WAD + ceilDiv(notional * WAD, BigInt(p.sizeScale))), WAD);
}

/** Requirement of a perp-only group: |Δ|·spot·shock + contingency·notional (rounded up). */
function perpRequirement(absDelta: bigint, spot: bigint, shock: bigint, notional: bigint): bigint {
  const move = ceilDiv(spot * shock, WAD);
  return ceilDiv(absDelta * move, WAD) + ceilDiv(notional * BigInt(DEFAULT_RISK_PARAMS.contingency), WAD);
}

async function fixture() {
  const sys = await deploySystem();
  const perps = await deployPerps(sys);
  const eth = await listPerpMarket(perps, "ETH", STATIC); // 1
  const btc = await listPerpMarket(perps, "BTC", STATIC); // 2
  const ethB = await listPerpMarket(perps, "ETH", STATIC); // 3: a second market on ETH
  return { sys, perps, eth, btc, ethB };
}

describe("MarginEngine with perps", function () {
  it("requires |size|·price·s of a single perp, with s from the IM floor (0.10 > 3·0.6·√(1/365))", async function () {
    const { sys, perps, eth } = await loadFixture(fixture);
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, usdc("100000")]]);
    await trade(perps, sys.alice, alice, eth, wad("10")); // fill 3015, fee 15.075
    const h = await sys.engine.health(alice);
    // IM: s = max(0.10, 3·0.6·0.0523424 = 0.0942) = 0.10, ·(1 + 30,000/50,000,000) = 0.10006;
    // 10·3000·0.10006 = 3001.8, + contingency 0.002·30,000 = 60 → 3061.8.
    expect(h.initialRequirement).to.equal(wad("3061.8"));
    // MM: s = max(0.05, 2.33·0.6·0.0523424 = 0.0731747) ·1.0006 ≈ 0.0732186 → 10·3000·s + 60 ≈ 2256.557.
    const mmShock = spotShock(
      BigInt(DEFAULT_RISK_PARAMS.mmShockFloor),
      wad("2.33"),
      wad("0.6"),
      wad("30000"),
    );
    expect(mmShock).to.be.closeTo(wad("0.0732186"), wad("0.0000001"));
    expect(h.maintenanceRequirement).to.equal(perpRequirement(wad("10"), wad("3000"), mmShock, wad("30000")));
    expect(h.maintenanceRequirement).to.be.closeTo(wad("2256.557"), wad("0.001"));
    // equity = 100,000 − 15.075 + 10·(3000 − 3015) = 99,834.925 (USDC counts 1:1 at both weights).
    expect([h.equityInitial, h.equityMaintenance, h.equityMark]).to.deep.equal([
      wad("99834.925"),
      wad("99834.925"),
      wad("99834.925"),
    ]);
    expect(h.healthRatio).to.equal((wad("99834.925") * WAD) / h.maintenanceRequirement);
    // One position: the standard (per-position) requirement is the portfolio one.
    expect(await sys.engine.standardRequirements(alice)).to.deep.equal([
      h.initialRequirement,
      h.maintenanceRequirement,
    ]);
  });

  it("takes s from z·σ·√horizon when it exceeds the floor", async function () {
    const { sys, perps, eth } = await loadFixture(fixture);
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, usdc("100000")]]);
    await trade(perps, sys.alice, alice, eth, wad("10"));
    await setFeedPrice(sys.volFeeds.ETH, "1");
    // σ = 100%: s = 3·1.0·√(1/365) = 0.157027 > 0.10, ·1.0006 ≈ 0.157121 → 10·3000·s + 60 ≈ 4773.6.
    const imShock = spotShock(BigInt(DEFAULT_RISK_PARAMS.imShockFloor), wad("3"), wad("1"), wad("30000"));
    expect(imShock).to.be.closeTo(wad("0.157121"), wad("0.000001"));
    const im = perpRequirement(wad("10"), wad("3000"), imShock, wad("30000"));
    expect(im).to.be.closeTo(wad("4773.6"), wad("0.1"));
    expect((await sys.engine.health(alice)).initialRequirement).to.equal(im);
  });

  it("margins the pool account's mirror position like any other", async function () {
    const { sys, perps, eth } = await loadFixture(fixture);
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, usdc("100000")]]);
    await trade(perps, sys.alice, alice, eth, wad("10"));
    const h = await sys.engine.health(sys.poolAccountId);
    // Pool: short 10, same requirement as alice's long; equity = 1,000,000 + fee share 12.06: the
    // premium earned, 10·(3015 − 3000) = 150, is what closing the skew pays back (3000·10²/(2·1000)).
    expect(h.initialRequirement).to.equal(wad("3061.8"));
    expect(h.equityMark).to.equal(wad("1000012.06"));
    expect(await sys.pool.positionValue()).to.equal(0n);
  });

  it("offsets gains in one market against losses in another", async function () {
    const { sys, perps, eth, btc } = await loadFixture(fixture);
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, usdc("10000")]]);
    await trade(perps, sys.alice, alice, eth, wad("10")); // long at 3015, fee 15.075
    await trade(perps, sys.alice, alice, btc, -wad("0.5")); // short at 60000·(1 − 0.25/1000) = 59985, fee 14.99625
    await setFeedPrice(sys.feeds.ETH, "3600");
    await setFeedPrice(sys.feeds.BTC, "72000");
    // ETH +5,850 (10·(3600 − 3015)), BTC −6,007.5 (−0.5·(72000 − 59985)).
    // equity = 10,000 − 15.075 − 14.99625 + 5,850 − 6,007.5 = 9,812.42875.
    // IM per underlying (notional 36,000 each, s = 0.10·(1 + 36,000/50M) = 0.100072):
    // 10·3600·0.100072 + 72 = 3,674.592 and 0.5·72000·0.100072 + 72 = 3,674.592 → 7,349.184.
    const h = await sys.engine.health(alice);
    expect([h.equityInitial, h.initialRequirement]).to.deep.equal([wad("9812.42875"), wad("7349.184")]);
    // The ETH gain carries the BTC loss: without it equity would be 3,962.43 < IM. With it alice can
    // take 2,000 USDC out (7,812.43 ≥ 7,349.18) but not 500 more.
    await sys.vault.connect(sys.alice).withdraw(alice, sys.usdc, usdc("2000"), sys.alice);
    await expect(sys.vault.connect(sys.alice).withdraw(alice, sys.usdc, usdc("500"), sys.alice))
      .to.be.revertedWithCustomError(sys.engine, "InsufficientMargin")
      .withArgs(alice, wad("7312.42875"), wad("7349.184"));
  });

  it("keeps a hedged cross account alive where the same legs in isolated accounts get liquidated", async function () {
    const { sys, perps, eth, ethB } = await loadFixture(fixture);
    const deposit: [typeof sys.usdc, bigint][] = [[sys.usdc, usdc("4000")]];
    const cross = await openAccount(sys, sys.alice, MarginMode.CROSS, deposit);
    const isoLong = await openAccount(sys, sys.bob, MarginMode.ISOLATED, deposit);
    const isoShort = await openAccount(sys, sys.carol, MarginMode.ISOLATED, deposit);
    // Cross: long 10 on one ETH market at 3015 (fee 15.075), short 10 on the other at 2985 (14.925).
    await trade(perps, sys.alice, cross, eth, wad("10"));
    await trade(perps, sys.alice, cross, ethB, -wad("10"));
    // Net delta 0: IM is the contingency on gross notional, 0.002·60,000 = 120; standard margining
    // would ask 3,061.8 per leg.
    expect((await sys.engine.health(cross)).initialRequirement).to.equal(wad("120"));
    expect((await sys.engine.standardRequirements(cross)).initial).to.equal(wad("6123.6"));
    // Isolated, same legs: long at 3000·(1 + 15/1000) = 3045 (fee 15.225), short at 2955 (14.775).
    await trade(perps, sys.bob, isoLong, eth, wad("10"));
    await trade(perps, sys.carol, isoShort, ethB, -wad("10"));

    await setFeedPrice(sys.feeds.ETH, "3900"); // +30%
    // Cross: 4,000 − 30 + 10·(3900 − 3015) − 10·(3900 − 2985) = 3,670; MM = 0.002·78,000 = 156.
    const c = await sys.engine.health(cross);
    expect([c.equityMaintenance, c.maintenanceRequirement]).to.deep.equal([wad("3670"), wad("156")]);
    expect(c.healthRatio).to.equal((wad("3670") * WAD) / wad("156"));
    // Isolated short: 4,000 − 14.775 − 10·(3900 − 2955) = −5,464.775 → liquidatable (ratio 0).
    const s = await sys.engine.health(isoShort);
    expect(s.equityMaintenance).to.equal(-wad("5464.775"));
    expect(s.healthRatio).to.equal(0n);
    // Isolated long: 4,000 − 15.225 + 10·(3900 − 3045) = 12,534.775.
    expect((await sys.engine.health(isoLong)).equityMaintenance).to.equal(wad("12534.775"));
  });

  it("refuses to unwind one leg of a hedge into a naked position below the initial requirement", async function () {
    const { sys, perps, eth, ethB } = await loadFixture(fixture);
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, usdc("600")]]);
    // Built one unit at a time, each step passes the IM check (net delta never above 1 ETH).
    for (let i = 0; i < 5; i++) {
      await trade(perps, sys.alice, alice, eth, wad("1"));
      await trade(perps, sys.alice, alice, ethB, -wad("1"));
    }
    const before = await sys.engine.health(alice);
    // Closing the short leg would leave 5 ETH naked: equity
    // 600 − 7.51875 − 7.48125 − 2.9925 + 5·(3000 − 3007.5) = 544.5075 against IM 1,530.45, and the
    // maintenance requirement would grow from the hedge's to a naked 5 ETH's: refused.
    await expect(trade(perps, sys.alice, alice, ethB, wad("5")))
      .to.be.revertedWithCustomError(sys.engine, "RiskIncreased")
      .withArgs(
        alice,
        before.maintenanceRequirement,
        (after: bigint) => after > before.maintenanceRequirement,
      );
    // Reducing both legs together keeps the requirement falling: allowed.
    await trade(perps, sys.alice, alice, ethB, wad("1"));
    await trade(perps, sys.alice, alice, eth, -wad("1"));
    expect(await perps.positionSize(alice, ethB)).to.equal(-wad("4"));
  });

  it("lets a reduction that raises the requirement through when the account meets its initial margin", async function () {
    const { sys, perps, eth, ethB } = await loadFixture(fixture);
    const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, usdc("100000")]]);
    await trade(perps, sys.alice, alice, eth, wad("5"));
    await trade(perps, sys.alice, alice, ethB, -wad("5"));
    await trade(perps, sys.alice, alice, ethB, wad("5"));
    expect(await perps.positionSize(alice, ethB)).to.equal(0n);
  });

  describe("liquidation through the auction", function () {
    async function underwater() {
      const f = await fixture();
      const { sys, perps, eth } = f;
      const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, usdc("4000")]]);
      await trade(perps, sys.alice, alice, eth, wad("10")); // long at 3015
      // At 2700: equity 4,000 − 15.075 + 10·(2700 − 3015) = 834.925, below MM (≈ 10·2700·0.0732 + 54).
      await setFeedPrice(sys.feeds.ETH, "2700");
      await sys.auction.connect(sys.keeper).startAuction(alice);
      return { ...f, alice };
    }

    it("hands the bidder a slice of the position at its entry price; the skew does not move", async function () {
      const { sys, perps, eth, alice } = await loadFixture(underwater);
      const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, usdc("100000")]]);
      await expect(sys.auction.connect(sys.bob).bid(alice, bob, wad("1"), ethers.MaxUint256))
        .to.emit(perps, "PositionTransferred")
        .withArgs(alice, bob, eth, anyValue, wad("3015"), 0n, 0n, 0n);
      const [a, b] = [await perps.position(alice, eth), await perps.position(bob, eth)];
      expect(b.size).to.be.gt(0n);
      expect(a.size + b.size).to.equal(wad("10"));
      expect(b.entryPrice).to.equal(wad("3015"));
      expect((await perps.market(eth)).skew).to.equal(wad("10"));
      expect((await sys.engine.accountMarkets(bob)).length).to.equal(1);
    });

    it("lets a keeper close the slice against the pool in the same transaction (bidAndClose)", async function () {
      const { sys, perps, eth, alice } = await loadFixture(underwater);
      const keeper = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, usdc("10000")]]);
      await sys.accounts.connect(sys.keeper).approve(await sys.auction.getAddress(), keeper);
      await expect(sys.auction.connect(sys.keeper).bidAndClose(alice, keeper, wad("1"), ethers.MaxUint256))
        .to.emit(perps, "PositionTransferred")
        .and.to.emit(perps, "PositionModified");
      expect(await perps.positionSize(keeper, eth)).to.equal(0n);
      expect(await sys.engine.accountMarkets(keeper)).to.deep.equal([]);
      expect((await perps.market(eth)).skew).to.equal(await perps.positionSize(alice, eth));
    });
  });
});
