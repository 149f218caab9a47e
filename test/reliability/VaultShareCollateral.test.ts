import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { MarginMode, WAD, deploySystem, openAccount, wad, type System } from "../shared/system";
import { refreshFeeds, trade } from "../shared/perps";
import { assetId, setFeedPrice } from "../shared/oracles";
import { mintAndApprove } from "../shared/tokens";
import { sdkClient } from "../shared/sdk";
import { accountHealth, getAccountState } from "../../sdk/src";

/**
 * ERC-4626 shares as collateral after a donation (review round 36, docs/reliability.md §4 row 107): the
 * listing bound holds a share's unit to ten cents only when it is listed, so every valuation counts a
 * share's unit at most MAX_SHARE_UNIT_VALUE (ten dollars: a hundredfold room for the underlying's price
 * and the share's rate). The attacks must now fail or gain nothing; an honest share keeps its value.
 */
const USDC = 10n ** 6n;

/**
 * Mallory (Carol's key) is the first depositor of the fixture's empty sWETH vault (OpenZeppelin's
 * ERC4626, no decimals offset): 1 wei of WETH mints her one unit of the share, and `donation` of WETH
 * sent straight to the vault makes that unit worth about half of it (the other half sits with the
 * vault's virtual share). She puts the unit into a new account of hers. A partner of hers (the LP's key)
 * is short 60 ETH, so the skew is flat and her long below fills at the oracle.
 */
async function inflatedUnit(sys: System, donation: bigint): Promise<{ mallory: bigint; partner: bigint }> {
  const sweth = await sys.sweth.getAddress();
  await mintAndApprove(sys.weth, sys.carol, sweth, 1n);
  await sys.sweth.connect(sys.carol).deposit(1n, sys.carol.address);
  await sys.weth.mint(sys.carol.address, donation);
  await sys.weth.connect(sys.carol).transfer(sweth, donation);
  expect(await sys.sweth.totalSupply()).to.equal(1n);
  // convertToAssets(1) = 1 · (donation + 1 + 1) / (1 + 1)
  expect(await sys.sweth.convertToAssets(1n)).to.equal((donation + 2n) / 2n);
  const mallory = await openAccount(sys, sys.carol, MarginMode.CROSS);
  await sys.sweth.connect(sys.carol).approve(await sys.vault.getAddress(), 1n);
  await sys.vault.connect(sys.carol).deposit(mallory, sys.sweth, 1n);
  const partner = await openAccount(sys, sys.lp, MarginMode.CROSS, [[sys.usdc, 100_000n * USDC]]);
  await trade(sys.perps, sys.lp, partner, sys.markets.ETH, -wad("60"));
  return { mallory, partner };
}

describe("ERC-4626 collateral", function () {
  describe("a donation grows a share's unit past the listing bound, and slices miss it (row 107)", function () {
    it("counts a unit at most MAX_SHARE_UNIT_VALUE, so an inflated one backs no position", async function () {
      const sys = await loadFixture(deploySystem);
      // 20 WETH sent to a vault holding 1 wei: Mallory's one unit converts to 10 WETH (30,000 USD).
      const { mallory } = await inflatedUnit(sys, wad("20"));
      const cap = await sys.vault.MAX_SHARE_UNIT_VALUE();
      expect(cap).to.equal(wad("10"));
      // Before the fix the unit counted 30,000 USD (25,500 of initial margin), and a 60 ETH long went
      // through on it (IM 18,424.80).
      expect(await sys.vault.tokenValue(sys.sweth, 1n)).to.equal(cap);
      const h = await sys.engine.health(mallory);
      expect(h.equityMark).to.equal(cap);
      // The SDK counts it as the chain does.
      const state = await getAccountState(await sdkClient(sys, sys.carol), { accountId: mallory });
      expect(accountHealth(state).equityMark).to.equal(cap);
      await expect(
        trade(sys.perps, sys.carol, mallory, sys.markets.ETH, wad("60")),
      ).to.be.revertedWithCustomError(sys.engine, "InsufficientMargin");
    });

    it("never has the backstop pay for a unit its slice does not move", async function () {
      const sys = await loadFixture(deploySystem);
      // 2 WETH donated: the unit converts to 1 WETH (3,000 USD). Mallory backs a 60 ETH long with
      // 25,500 USDC, which meets its IM with or without the unit.
      const { mallory } = await inflatedUnit(sys, wad("2"));
      await mintAndApprove(sys.usdc, sys.carol, await sys.vault.getAddress(), 25_500n * USDC);
      await sys.vault.connect(sys.carol).deposit(mallory, sys.usdc, 25_500n * USDC);
      await trade(sys.perps, sys.carol, mallory, sys.markets.ETH, wad("60"));
      // ETH 3,000 → 2,600: below maintenance either way (the unit's 2,600 USD at 0.92 does not save her).
      await setFeedPrice(sys.feeds.ETH, "2600");
      await sys.auction.connect(sys.carol).startAuction(mallory);
      await time.increase(1800);
      await refreshFeeds(sys);

      // Nobody bids; the backstop takes the restoring slice at the 10% maximum discount.
      const backstop = await sys.auction.backstopAccountId();
      const before = (await sys.engine.health(backstop)).equityMark;
      await (await sys.auction.absorb(mallory)).wait();
      const [bid] = await sys.auction.queryFilter(sys.auction.filters.AuctionBid());
      const { fraction, payment, discount } = bid.args;
      expect(discount).to.equal(wad("0.1"));
      expect(fraction).to.be.lessThan(WAD);
      // The slice rounds the one unit down to none: Mallory keeps it.
      expect(await sys.vault.balanceOf(backstop, sys.sweth)).to.equal(0n);
      expect(await sys.vault.balanceOf(mallory, sys.sweth)).to.equal(1n);
      // What the backstop received, at mark: its gain plus what it paid.
      const paidUsd = payment * 10n ** 12n;
      const received = (await sys.engine.health(backstop)).equityMark - before + paidUsd;
      // A fair slice costs at most 90% of what it brings. Before the fix the payment also covered 90% of
      // the slice's share of the unit it did not get: 4,927.48 USDC for 3,969.44 USD, 1,354.98 over 90%
      // (f = 57.91% of a 2,600 USD unit); now at most 90% of the ten dollars it counts for (≤ 9).
      expect(paidUsd).to.be.at.most((received * 9n) / 10n + wad("10"));
    });
  });

  // Review round 37: at the listing bound itself (ten cents) the cap cut an honest 6-decimal BTC share by
  // a sixth when BTC doubled (1,000,000 USD for 10 BTC against 1,200,000 unwrapped).
  it("values an honest share in full after its underlying doubles (a 6-decimal BTC share, BTC 60,000 → 120,000)", async function () {
    const sys = await loadFixture(deploySystem);
    const btc6 = await ethers.deployContract("MockERC20", ["BTC (6 decimals)", "BTC6", 6]);
    const share = await ethers.deployContract("MockERC4626", [btc6, "BTC6 vault", "sBTC6", 0]);
    // Real supply: 100 BTC6 deposited, 1:1.
    await btc6.mint(sys.deployer.address, 100n * 10n ** 6n);
    await btc6.approve(await share.getAddress(), 100n * 10n ** 6n);
    await share.deposit(100n * 10n ** 6n, sys.deployer.address);
    // At BTC 60,000 one unit of either is 0.06 USD: both list under the ten-cent bound.
    await sys.vault.listCollateral(btc6, assetId("BTC"), wad("0.9"), wad("0.95"), 10n ** 12n, false);
    await sys.vault.listCollateral(share, assetId("BTC"), wad("0.9"), wad("0.95"), 10n ** 12n, true);
    const tenBtc = 10n * 10n ** 6n;
    expect(await sys.vault.tokenValue(share, tenBtc)).to.equal(wad("600000"));
    await setFeedPrice(sys.feeds.BTC, "120000");
    expect(await sys.vault.tokenValue(btc6, tenBtc)).to.equal(wad("1200000"));
    expect(await sys.vault.tokenValue(share, tenBtc)).to.equal(wad("1200000"));
  });
});
