import { expect } from "chai";
import fs from "node:fs";
import path from "node:path";
import {
  MIN_LIVE_SEQUENCER_GRACE,
  QUOTE_DECIMALS_RANGE,
  parseNetworkConfig,
} from "../../deploy/networkConfig";
import { USAGE, parseKeeperArgs, type KeeperConfig } from "../../scripts/keeper/config";
import { rawConfig } from "../shared/configs";

/**
 * Review round 140: the documents against what sessions 40–42 changed (`git diff dc85aed`): the keeper's
 * outage handling and payouts, the deploy parser's quote decimals and uptime grace, the bench's gas. Each
 * spec reads the claim where the document makes it and the fact where the code or the bench fixes it, so
 * a change to either side that leaves them apart fails here. No chain.
 */
const ROOT = path.join(__dirname, "../..");
const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), "utf8");
/** A file with its line breaks (and NatSpec's `///` markers) collapsed, so a claim reads across lines. */
const text = (file: string): string =>
  read(file)
    .replace(/\n\s*\/\/\/ ?/g, " ")
    .replace(/\s+/g, " ");
const KEEPER_README = "scripts/keeper/README.md";
const DEPLOY_README = "deploy/README.md";
const bench = (): Record<string, number> =>
  (JSON.parse(read("bench/results.json")) as { gas: Record<string, number> }).gas;
const thousands = (n: number): string => n.toLocaleString("en-US");

describe("scripts/keeper/README.md against the keeper (review round 140)", function () {
  const base = ["--rpc", "http://127.0.0.1:8545", "--deployment", "deploy/deployments/31337.json"];
  const key = { KEEPER_PRIVATE_KEY: `0x${"11".repeat(32)}` };
  /** Each documented option's default, as the parser gives it with no flag. */
  const PARSED: Record<string, (c: KeeperConfig) => string> = {
    "--dry-run": (c) => (c.dryRun ? "on" : "off"),
    "--unwind-backstop": (c) => (c.unwindBackstop ? "on" : "off"),
    "--max-gas-price-gwei": (c) => String(c.maxGasPriceWei / 10n ** 9n),
    "--poll-ms": (c) => String(c.pollMs),
    "--recheck-ms": (c) => String(c.recheckMs),
    "--health-batch": (c) => String(c.healthBatch),
    "--log-range": (c) => String(c.logRange),
    "--min-profit-usd": (c) => String(c.minProfitUsd / 10n ** 18n),
    "--min-stake-usd": (c) => String(c.minStakeUsd / 10n ** 18n),
    "--start-batch": (c) => String(c.startBatch),
    "--funding-interval": (c) => String(c.fundingInterval),
    "--tx-timeout-ms": (c) => String(c.txTimeoutMs),
    "--race-jitter-ms": (c) => String(c.raceJitterMs),
    "--log-level": (c) => c.logLevel,
  };

  it("lists every option the parser's USAGE lists, each with the default the parser gives", function () {
    const rows = [...read(KEEPER_README).matchAll(/^\| `(--[a-z-]+)[^`]*`\s*\|\s*([^|]+?)\s*\|/gm)].map(
      (m) => [m[1], m[2]] as const,
    );
    const usage = [...USAGE.matchAll(/^\s+(--[a-z-]+)/gm)].map((m) => m[1]).filter((f) => f !== "--help");
    expect(rows.map(([flag]) => flag)).to.deep.equal(usage);
    const parsed = parseKeeperArgs(base, key);
    if (parsed === "help") return expect.fail("parsed as --help");
    const wrong = rows
      .filter(([flag]) => PARSED[flag] !== undefined)
      .filter(([flag, documented]) => PARSED[flag](parsed) !== documented)
      .map(([flag, documented]) => `${flag}: README ${documented}, parser ${PARSED[flag](parsed)}`);
    expect(Object.keys(PARSED).length).to.equal(14);
    expect(wrong).to.deep.equal([]);
  });

  it("gives the start batch's gas the bench measures now (before: 2,330,902, 116,545 and 253,301, from an older bench)", function () {
    const gas = bench();
    const readme = text(KEEPER_README);
    expect(readme).to.include(
      `Twenty one-market books cost ${thousands(gas["auction.startAuctions.n20"])} gas to start in one ` +
        `transaction (${thousands(gas["auction.startAuctions.perAccount"])} each`,
    );
    expect(readme).to.include(`against ${thousands(gas["auction.start.single"])} each alone`);
  });

  it("says the pass asks the router after the series settlement, as keeperStep does (before: 'each pass first asks')", function () {
    const loop = read("scripts/keeper/loop.ts");
    const settled = loop.indexOf("report.options = await options.step(head, now, { payouts: false });");
    const asked = loop.indexOf("report.pricesRefused = await pricesRefused(s, head, log);");
    expect(settled).to.be.greaterThan(0);
    expect(asked).to.be.greaterThan(settled);
    // Settlement prices a past round without the sequencer check, so it runs before the router is asked.
    expect(text("contracts/interfaces/IOracleRouter.sol")).to.include(
      "except for age, and without a sequencer check: a past round's value does not depend on when it is read",
    );
    const readme = text(KEEPER_README);
    expect(readme).to.not.include("each pass first asks `router.checkSequencer()`");
    expect(readme).to.include(
      "each pass asks `router.checkSequencer()` once it has settled the expired series (step 6: a past round's price needs no sequencer check) and before anything else",
    );
  });

  it("names the warning a series with open interest no known holder holds logs, as options.ts logs it", function () {
    const message = "open interest no known holder accounts for; not paid by this keeper";
    expect(read("scripts/keeper/options.ts")).to.include(`log.warn("${message}"`);
    expect(read("scripts/keeper/options.ts")).to.include("knownHolders: accounts.length");
    expect(text(KEEPER_README)).to.include(
      `is logged once at warn level (\`${message}\`, with \`knownHolders\`)`,
    );
  });
});

describe("deploy/README.md against the deploy parser (review round 140)", function () {
  it("states the quote token's 2–18 decimals, and the parser refuses 1 and 19 with the message it quotes", function () {
    expect(QUOTE_DECIMALS_RANGE).to.deep.equal([2, 18]);
    const readme = text(DEPLOY_README);
    expect(readme).to.include(
      "The quote token (`quoteToken`) must have 2 to 18 decimals (`QUOTE_DECIMALS_RANGE`)",
    );
    const withQuoteDecimals = (decimals: number) => {
      const r = rawConfig("localhost");
      r.tokens.USDC.mock.decimals = decimals;
      return r;
    };
    expect(() => parseNetworkConfig(withQuoteDecimals(19))).to.throw(
      "quoteToken: USDC has 19 decimals; a quote token needs 2 to 18",
    );
    expect(readme).to.include("(`quoteToken: USDC has 19 decimals; a quote token needs 2 to 18`;");
    expect(() => parseNetworkConfig(withQuoteDecimals(1))).to.throw("a quote token needs 2 to 18");
    expect(parseNetworkConfig(withQuoteDecimals(2)).tokens.USDC.decimals).to.equal(2);
    expect(parseNetworkConfig(withQuoteDecimals(18)).tokens.USDC.decimals).to.equal(18);
  });

  it("states a live uptime feed's grace of at least 3,600 s, and the parser holds it (a mock keeps 600 s)", function () {
    expect(MIN_LIVE_SEQUENCER_GRACE).to.equal(3_600);
    expect(text(DEPLOY_README)).to.include(
      'A live sequencer-uptime feed (`"address"`) needs a `gracePeriod` of at least 3,600 s (`MIN_LIVE_SEQUENCER_GRACE`',
    );
    const withGrace = (gracePeriod: number) => ({
      ...rawConfig("arbitrumSepolia"),
      sequencerUptimeFeed: { address: "0xFdB631F5EE196F0ed6FAa767959853A9F217697D", gracePeriod },
    });
    expect(() => parseNetworkConfig(withGrace(3_599))).to.throw(
      "sequencerUptimeFeed.gracePeriod: at least 3600 s",
    );
    expect(parseNetworkConfig(withGrace(3_600)).sequencerUptimeFeed?.gracePeriod).to.equal(3_600);
    expect(rawConfig("arbitrumSepolia").sequencerUptimeFeed.gracePeriod).to.equal(600);
  });

  it("says the keeper finds the settlement round as findSettlementRound does, not by walking back", function () {
    const readme = text(DEPLOY_README);
    expect(readme).to.not.include("walking back from the latest round");
    expect(readme).to.include("else a binary search over the feed's phase: `logic.findSettlementRound`");
    expect(read("scripts/keeper/logic.ts")).to.include("a binary search over the phase");
  });
});

describe("docs/decisions.md and docs/reliability.md against the bench and the model (review round 140)", function () {
  it("gives the LP exits' gas the bench measures now (before: lp.withdraw 208,241, session 38)", function () {
    const gas = bench();
    expect(text("docs/decisions.md")).to.include(
      `lp.requestRedeem ${thousands(gas["lp.requestRedeem"])} gas and lp.claimRedeem ` +
        `${thousands(gas["lp.claimRedeem"])}, against lp.withdraw ${thousands(gas["lp.withdraw"])} for the immediate exit`,
    );
  });

  it("lists the campaign's LP exit requests and claims among the actions before round 138, not since", function () {
    const model = read("test/reliability/model.ts");
    for (const kind of ["lpRequest", "lpClaim", "lpRedeem"]) expect(model).to.include(`kind: "${kind}"`);
    expect(model).to.include("cancelRedeemRequest");
    const section1 = text("docs/reliability.md").split("## 2. Hostile inputs")[0];
    const since138 = section1.split("Since round 138 also:")[1]?.split("**Clock.**")[0] ?? "";
    expect(since138).to.include("synchronous `redeem`");
    expect(since138).to.not.include("exit requests");
    expect(section1).to.include(
      "LP deposits and withdrawals, and exit requests and claims (cancelled once missed",
    );
  });
});
