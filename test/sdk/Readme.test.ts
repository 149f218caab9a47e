import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { getHealth } from "../../sdk/src";
import { main } from "../../sdk/examples/quickstart";
import { main as optionsExample } from "../../sdk/examples/options";
import { MarginMode, deploySystem, openAccount, wad } from "../shared/system";
import { DAY, deployOptionsSystem, fromNow, listSeries } from "../shared/options";
import { sdkClient } from "../shared/sdk";

const SDK = path.resolve(__dirname, "../../sdk");

describe("SDK README", function () {
  for (const name of ["quickstart", "options"]) {
    it(`shows sdk/examples/${name}.ts verbatim`, function () {
      const readme = readFileSync(path.join(SDK, "README.md"), "utf8");
      const example = readFileSync(path.join(SDK, `examples/${name}.ts`), "utf8");
      // The block after the marker (prettier may put a blank line between them).
      const match = new RegExp(`<!-- examples/${name}\\.ts -->\\s*\`\`\`ts\\n([\\s\\S]*?)\`\`\`\\n`).exec(
        readme,
      );
      expect(match, "README marker and block").to.not.equal(null);
      expect(match?.[1]).to.equal(example);
    });
  }

  it("runs the quickstart against a deployment: account, deposit, preview, open, health, close", async function () {
    const sys = await loadFixture(deploySystem);
    await sys.usdc.mint(sys.alice.address, 10_000n * 10n ** 6n);
    const client = await sdkClient(sys, sys.alice);
    const log = console.log;
    const lines: string[] = [];
    console.log = (...args: unknown[]) => lines.push(args.join(" "));
    let r;
    try {
      r = await main(client, sys.alice);
    } finally {
      console.log = log;
    }
    expect(lines).to.have.length(5);
    expect(lines[0]).to.equal(`account #${r.accountId} owned by ${sys.alice.address}`);
    // 2 ETH on a flat book: 3000·(1 + 1/1000) = 3,003; the preview's fill is what the trade got.
    expect(r.planned.trade?.fillPrice).to.equal(wad("3003"));
    expect(r.opened.fillPrice).to.equal(r.planned.trade?.fillPrice);
    expect(r.opened.newSize).to.equal(wad("2"));
    expect(r.liquidationPrice).to.equal(null); // 10,000 USDC behind 2 ETH: no liquidation price above 0
    expect(r.closed.newSize).to.equal(0n);
    const after = await getHealth(client, { accountId: r.accountId });
    expect(after.initialRequirement).to.equal(0n);
    // The round trip cost the fees: 2·3003·0.0005 taker to open, 2·3003·0.0002 maker to close (it took the
    // skew back to zero at 3000·(1 + 2/2000) = 3,003, so no PnL), and at most one unit of funding.
    expect(r.closed.fillPrice).to.equal(wad("3003"));
    expect(await sys.vault.balanceOf(r.accountId, sys.usdc)).to.be.closeTo(
      10_000_000_000n - 3_003_000n - 1_201_200n,
      1n,
    );
  });

  it("runs the options example: quote with the health after it, buy a call, write a put, series state, close", async function () {
    const sys = await loadFixture(deployOptionsSystem);
    const expiry = await fromNow(30n * DAY);
    await listSeries(sys.options, "ETH", "3300", expiry, true);
    await listSeries(sys.options, "ETH", "2700", expiry, false);
    const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 20_000n * 10n ** 6n]]);
    const client = await sdkClient(sys, sys.alice);
    const log = console.log;
    const lines: string[] = [];
    console.log = (...args: unknown[]) => lines.push(args.join(" "));
    let r;
    try {
      r = await optionsExample(client, accountId);
    } finally {
      console.log = log;
    }
    expect(lines).to.have.length(3);
    expect([r.call.strike, r.put.strike]).to.deep.equal([wad("3300"), wad("2700")]);
    // Fee: 2·3000·0.0003 = 1.8 USD per leg; the quote's premium is what the next block filled at or better.
    expect(r.quote.fee).to.equal(wad("1.8"));
    expect(r.bought.premiumPerContract).to.be.at.most(r.quote.premium);
    expect([r.bought.newSize, r.sold.newSize]).to.deep.equal([wad("2"), -wad("2")]);
    expect(r.state.status).to.equal("active");
    expect(await sys.options.positionSize(accountId, r.call.marketId)).to.equal(0n);
    expect(await sys.options.positionSize(accountId, r.put.marketId)).to.equal(0n);
  });
});
