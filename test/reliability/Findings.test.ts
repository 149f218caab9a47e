import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  MarginMode,
  WAD,
  deploySystem,
  fundInsurance,
  openAccount,
  wad,
  atLatestTimestamp,
  eventOf,
} from "../shared/system";
import { refreshFeeds, trade } from "../shared/perps";

/**
 * Contract bugs found by the reliability campaign, kept as regression tests now that they are fixed.
 * Each names the long-campaign run that found it.
 */
const USDC = 10n ** 6n;

async function fundedLong() {
  const sys = await deploySystem();
  await fundInsurance(sys, 50_000n * USDC);
  const bidder = await openAccount(sys, sys.keeper, MarginMode.CROSS, [[sys.usdc, 2_000_000n * USDC]]);
  const whale = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 1_000_000n * USDC]]);
  const victim = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 5_000n * USDC]]);
  // A long-skewed book: longs pay funding, which accrues unsettled on the victim's position.
  await trade(sys.perps, sys.alice, victim, sys.markets.ETH, wad("10"));
  await trade(sys.perps, sys.carol, whale, sys.markets.ETH, wad("200"));
  for (let day = 0; day < 6; day++) {
    await time.increase(86_400);
    await refreshFeeds(sys);
  }
  return { sys, bidder, victim };
}

describe("Reliability findings", function () {
  // Found by scripts/campaign.ts (CAMPAIGN_SEED=20261356, step 60: invariant 5, a 19% bid lowered the
  // account's health ratio from 0.0292 to 0.0043). MarginEngine.transferSlice moves f of every
  // collateral balance first and only then calls PerpMarket.transferPosition, which settles the
  // sender's accrued funding on its whole position into its quote balance. The bidder therefore takes
  // f of a quote balance that still includes the funding the account owes, and the account then pays
  // all of that funding: it loses f·(accrued funding) beyond the auction's price (and gains it when
  // funding is owed to it). Fixed: transferSlice moves the positions (settling funding) first.
  it("a bid leaves the liquidated account with (1 − f)·MtM + payment − penalty (funding accrued)", async function () {
    const { sys, bidder, victim } = await loadFixture(fundedLong);
    const accrued = await sys.perps.accruedFunding(victim, sys.markets.ETH);
    expect(accrued, "funding owed by the victim (USD WAD)").to.be.gt(wad("100"));
    // Price down until the victim is liquidatable (but solvent).
    let h = await sys.engine.health(victim);
    while (h.equityMaintenance >= BigInt(h.maintenanceRequirement)) {
      await sys.feeds.ETH.updateAnswer(((await sys.feeds.ETH.latestAnswer()) * 98n) / 100n);
      h = await sys.engine.health(victim);
    }
    expect(h.equityMark).to.be.gt(0n);
    await sys.auction.startAuction(victim);
    const before = await sys.engine.health(victim);
    const fraction = wad("0.1");
    // Views run at the latest block's time; the victim's long pays funding every second after it.
    await atLatestTimestamp();
    const tx = await sys.auction.connect(sys.keeper).bid(victim, bidder, fraction, ethers.MaxUint256);
    const receipt = await tx.wait();
    const bid = eventOf(receipt, sys.auction, "AuctionBid");
    const after = await sys.engine.health(victim);
    // The account keeps (1 − f) of its mark-to-market equity, receives the payment and pays the
    // penalty (both quote units, 1e12 WAD each); a few wei of rounding at most.
    const expected =
      (before.equityMark * (WAD - (bid.args.fraction as bigint))) / WAD +
      ((bid.args.payment as bigint) - (bid.args.penalty as bigint)) * 10n ** 12n;
    expect(after.equityMark).to.be.closeTo(expected, 10n ** 12n);
    expect(after.healthRatio, "invariant 5").to.be.gte(before.healthRatio);
  });
});
