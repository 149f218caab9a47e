import { expect } from "chai";
import fs from "node:fs";
import path from "node:path";
import {
  MIN_LIVE_SEQUENCER_GRACE,
  QUOTE_DECIMALS_RANGE,
  parseNetworkConfig,
} from "../../deploy/networkConfig";
import { buildXMarginModule } from "../../deploy/modules/XMargin";
import { USAGE, parseKeeperArgs, type KeeperConfig } from "../../scripts/keeper/config";
import { rawConfig } from "../shared/configs";

/**
 * Review round 140: the documents against what sessions 40–42 changed (`git diff dc85aed`): the keeper's
 * outage handling and payouts, the deploy parser's quote decimals and uptime grace, the bench's gas. Each
 * spec reads the claim where the document makes it and the fact where the code or the bench fixes it, so
 * a change to either side that leaves them apart fails here. No chain.
 *
 * Review round 154 extends it to what sessions 43–45 changed (`git diff 622a4bd`): shocked collateral and
 * `setShockedWeight`, the MM-floor cut in the maintenance budget, LP share transfers beyond the balance,
 * the SDK's token refusals in deposits and previews.
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
    // logic.ts re-exports the search, which lives in the SDK since round 167 (shared with getOptionSettlement).
    expect(read("scripts/keeper/logic.ts")).to.include(
      'export { findSettlementRound } from "../../sdk/src/actions/internal/settlementRound"',
    );
    expect(read("sdk/src/actions/internal/settlementRound.ts")).to.include("a binary search over the phase");
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

/** `file`'s NatSpec or TSDoc block (collapsed, as `text`) that ends right above `declaration`. */
function docAbove(file: string, declaration: string): string {
  const source = read(file);
  const at = source.indexOf(declaration);
  expect(at, `${declaration} in ${file}`).to.be.greaterThan(0);
  const lines = source.slice(0, at).split("\n");
  const block: string[] = [];
  for (let i = lines.length - 2; i >= 0 && /^\s*(\/\/\/|\/\*\*|\*)/.test(lines[i]); i--)
    block.unshift(lines[i]);
  return block
    .join(" ")
    .replace(/\/\/\/ ?|\/\*\*|\*\/|^\s*\* ?|\s\* /g, " ")
    .replace(/\s+/g, " ");
}

/** `name`'s body in a Solidity or TypeScript source: from its declaration to the next one at its indent. */
function bodyOf(file: string, name: string): string {
  const source = read(file);
  const at = source.search(new RegExp(`function ${name}\\b`));
  expect(at, `${name} in ${file}`).to.be.greaterThan(0);
  const next = source.slice(at + 1).search(/\n {0,4}(\/\/\/|\/\*\*|function |export )/);
  return source.slice(at, next < 0 ? undefined : at + 1 + next);
}

describe("docs/decisions.md and the NatSpec against the shocked collateral of sessions 44–45 (review round 154)", function () {
  it("counts a cut of the MM shock floor in the one-step maintenance budget, as maintenanceRise does (before: 'moves that lower MM are free')", function () {
    const rise = bodyOf("contracts/libraries/RiskParamsLib.sol", "maintenanceRise");
    expect(rise).to.include("_cut(old.mmShockFloor, p.mmShockFloor, MAX_SHOCK_STEP)");
    // No other field's cut counts: every other term is a rise.
    expect(rise.match(/_cut\(/g)).to.have.length(1);
    const decisions = text("docs/decisions.md");
    expect(decisions).to.not.include("Moves that lower MM are free within their own steps, and the IM-only");
    expect(decisions).to.include(
      "Moves that lower MM are free within their own steps, but for a cut of the MM shock floor, which " +
        "counts as its fraction of the max step (it lowers the cap on a shocked collateral token's credit",
    );
  });

  it("puts a token's shocked weight in its weights' throttle set, as setShockedWeight does (before: one set per setter)", function () {
    const throttle = '_throttle("collateralWeights", _tokenId(token), MIN_UPDATE_INTERVAL);';
    expect(bodyOf("contracts/core/CollateralVault.sol", "setShockedWeight")).to.include(throttle);
    expect(bodyOf("contracts/core/CollateralVault.sol", "setCollateralWeights")).to.include(throttle);
    expect(text("docs/decisions.md")).to.include(
      "weights per token (its shocked weight too: `setShockedWeight` shares the weights' set, §4 row 452)",
    );
    expect(text("contracts/interfaces/IUpdateThrottle.sol")).to.include(
      "A token's shocked weight is in its weights' set: `setShockedWeight` and `setCollateralWeights` share one clock per token.",
    );
  });

  it("gives session 45's health gas the bench measures and its bytes as the sum of the fix's and its own (before: no health.k1.wethMargined after 172,248, no bytes)", function () {
    const gas = bench();
    const decisions = text("docs/decisions.md");
    const before = { k1: 148_767, weth: 172_248 };
    expect(decisions).to.include(`\`health.k1\` 147,238 → ${thousands(before.k1)}`);
    expect(decisions).to.include(`\`health.k1.wethMargined\` ${thousands(before.weth)};`);
    // What session 45 measured, as it says; the vault's IR build took both lower since (session 46).
    const session45 = { k1: 148_482, weth: 172_209 };
    expect(decisions).to.include(
      `(\`health.k1\` ${thousands(session45.k1)}, −${thousands(before.k1 - session45.k1)}; ` +
        `\`health.k1.wethMargined\` ${thousands(session45.weth)}, ` +
        `−${thousands(before.weth - session45.weth)};`,
    );
    expect(gas["health.k1"]).to.be.at.most(session45.k1);
    expect(gas["health.k1.wethMargined"]).to.be.at.most(session45.weth);
    // Session 38's 23,635 + session 44's 649 + session 45's 25 = 24,309 of EIP-170's 24,576.
    expect(decisions).to.include("23,635 and 941 at session 38");
    expect(decisions).to.include("Cost: MarginEngine +649 bytes, CollateralVault +1,077;");
    expect(23_635 + 649 + 25).to.equal(24_309);
    expect(decisions).to.include(
      "MarginEngine +25 bytes (24,309, 267 left), CollateralVault +108 (24,199, 377 left)",
    );
    expect(24_576 - 24_309).to.equal(267);
    expect(24_576 - 24_199).to.equal(377);
  });

  it("says IMarginEngine.Health's and initialMargin's equity take the shocked credit, as the engine and the SDK add it (before: collateral at weights + positions)", function () {
    expect(bodyOf("contracts/core/MarginEngine.sol", "_addCollateralDelta")).to.match(
      /h\.equityInitial \+= credit;\s*h\.equityMaintenance \+= credit;/,
    );
    const evaluate = bodyOf("contracts/core/MarginEngine.sol", "_evaluate");
    expect(evaluate).to.include("h.equityInitial += c.initial + positionValue");
    expect(evaluate).to.include("h.equityMaintenance += c.maintenance + positionValue;");
    const engine = text("contracts/interfaces/IMarginEngine.sol");
    expect(engine).to.not.include(
      "@param equityMaintenance Collateral at maintenance weights + Σ position values.",
    );
    expect(engine).to.include(
      "@param equityInitial Collateral at initial weights (plus the credit of each token shocked with the " +
        "account's positions on its oracle asset: `ICollateralVault.TokenMark.credit`, at most mark · the MM shock floor)",
    );
    expect(engine).to.include(
      "@param equityMaintenance Collateral at maintenance weights (plus the same credits)",
    );
    expect(docAbove("contracts/interfaces/IMarginEngine.sol", "function initialMargin(")).to.include(
      "equity_IM is collateral at initial weight, with its shocked tokens' credits, plus these less the exit discounts",
    );
    const health = read("sdk/src/math/health.ts");
    expect(health).to.include("equityInitial: c.initial + credit + positionValue - exitDiscount,");
    expect(health).to.include("const equityMaintenance = c.maintenance + credit + positionValue;");
    expect(docAbove("sdk/src/state.ts", "equityInitial: bigint;")).to.include(
      "Collateral at initial weights (plus each shocked token's credit: `HealthGroup.credit`) + Σ position values.",
    );
    expect(docAbove("sdk/src/state.ts", "equityMaintenance: bigint;")).to.include(
      "Collateral at maintenance weights (plus the same credits) + Σ position values.",
    );
  });

  it("says README's 0.99 / 0.94 and deploy/README's 0.99 / 0.98 / 0.95 every config gives (held)", function () {
    const counted: Record<string, [string, string]> = {};
    for (const network of ["localhost", "sepolia", "arbitrumSepolia", "baseSepolia"]) {
      const config = parseNetworkConfig(rawConfig(network));
      const weth = config.tokens.WETH;
      const credit = (t: typeof weth) => {
        const over = t.shockedWeight > t.maintenanceWeight ? t.shockedWeight - t.maintenanceWeight : 0n;
        const floor = config.underlyings[t.oracleAsset].mmShockFloor;
        return over < floor ? over : floor;
      };
      const f = (x: bigint) => String(Number(x) / 1e18);
      counted[network] = [f(weth.maintenanceWeight + credit(weth)), f(weth.initialWeight + credit(weth))];
      expect(f(weth.shockedWeight), network).to.equal("0.99");
      expect(f(config.tokens.WBTC.shockedWeight), network).to.equal("0.98");
      if (config.tokens.sWETH) expect(f(config.tokens.sWETH.shockedWeight), network).to.equal("0.95");
    }
    expect(Object.values(counted)).to.deep.equal(Array(4).fill(["0.99", "0.94"]));
    expect(text("README.md")).to.include("counted at 0.99 in maintenance and 0.94 in initial");
    expect(text(DEPLOY_README)).to.include("The configs set WETH 0.99, WBTC 0.98 and sWETH 0.95");
  });
});

describe("deploy/README.md, the pool's NatSpec and the SDK's TSDoc against sessions 43–45 (review round 154)", function () {
  it("says the parser refuses a shocked weight on the quote token, with the message it throws (before: 'a collateral token may state' it, unqualified)", function () {
    const raw = rawConfig("localhost");
    const message = "tokens.USDC.shockedWeight: the quote token prices no underlying and is never shocked";
    raw.tokens[raw.quoteToken].shockedWeight = "0.99";
    expect(raw.quoteToken).to.equal("USDC");
    expect(() => parseNetworkConfig(raw)).to.throw(message);
    expect(bodyOf("contracts/core/CollateralVault.sol", "setShockedWeight")).to.include(
      "if (token == address(quoteToken)) revert QuoteTokenNeverShocked();",
    );
    expect(text(DEPLOY_README)).to.include(
      `The quote token takes none (the vault refuses it, \`QuoteTokenNeverShocked\`, and the parser first: \`${message}\`).`,
    );
  });

  it("lists the collateral after engine.initialize, each token's shocked weight right after its listing, as the module orders them (before: 'CollateralVault (+ collateral)' before the engine)", function () {
    const futures = [...buildXMarginModule(parseNetworkConfig(rawConfig("localhost"))).futures];
    const id = (f: { id: string }) => f.id.replace(/^XMargin#/, "");
    /** Every future `f` waits for, directly or not. */
    const after = (f: (typeof futures)[number], seen = new Set<string>()): Set<string> => {
      for (const d of f.dependencies) {
        if (seen.has(id(d))) continue;
        seen.add(id(d));
        after(d as (typeof futures)[number], seen);
      }
      return seen;
    };
    const initialize = futures.find((f) => id(f) === "MarginEngine.initialize");
    expect(initialize, "MarginEngine.initialize").to.not.equal(undefined);
    const listings = futures.filter((f) => id(f).startsWith("listCollateral_"));
    expect(listings.map(id)).to.deep.equal([
      "listCollateral_USDC",
      "listCollateral_WETH",
      "listCollateral_WBTC",
      "listCollateral_sWETH",
    ]);
    for (const listing of listings)
      expect(after(listing).has("MarginEngine.initialize"), id(listing)).to.equal(true);
    for (const f of futures.filter((x) => id(x).startsWith("setShockedWeight_")))
      expect(after(f).has(id(f).replace("setShockedWeight_", "listCollateral_")), id(f)).to.equal(true);
    const readme = text(DEPLOY_README);
    expect(readme).to.not.include("CollateralVault (+ collateral)");
    expect(readme).to.include(
      "`engine.initialize` (then the collateral: each token listed, then its `shockedWeight` set; listed only once " +
        "the vault knows the pool's and the backstop's accounts, review round 20) → PerpMarket",
    );
  });

  it("names ERC-20's error for a redeem request beyond the balance, as _requireUnlocked reverts (before: SharesLocked beyond the unlocked shares alone)", function () {
    const unlocked = bodyOf("contracts/markets/LiquidityPool.sol", "_requireUnlocked");
    const beyondBalance = unlocked.indexOf(
      "if (shares > balance) revert ERC20InsufficientBalance(owner, balance, shares);",
    );
    expect(beyondBalance).to.be.greaterThan(0);
    expect(unlocked.indexOf("revert SharesLocked(")).to.be.greaterThan(beyondBalance);
    // The request moves the shares with `_transfer`, so `_update` checks them there.
    expect(bodyOf("contracts/markets/LiquidityPool.sol", "requestRedeem")).to.include(
      "_transfer(msg.sender, address(this), shares);",
    );
    expect(bodyOf("contracts/markets/LiquidityPool.sol", "_update")).to.include(
      "_requireUnlocked(from, value);",
    );
    expect(docAbove("contracts/interfaces/ILiquidityPool.sol", "function requestRedeem(")).to.include(
      "SharesLocked beyond its unlocked shares (ERC20InsufficientBalance beyond its balance)",
    );
  });

  it("says maxWithdrawableFromState bisects the whole health for a shocked token, as it does (before: 'on the pure collateral valuation' alone)", function () {
    const body = bodyOf("sdk/src/preview.ts", "maxWithdrawableFromState");
    expect(body).to.include(
      "const shocked = c.token !== state.quoteToken && h.groups[c.oracleAsset] !== undefined;",
    );
    expect(body).to.include("return meetsInitialMargin(accountHealth({ ...state, collateral }));");
    expect(docAbove("sdk/src/preview.ts", "export function maxWithdrawableFromState(")).to.include(
      "found by bisection on the pure collateral valuation, or on `accountHealth` for a token shocked with " +
        "the account's positions: its delta moves the requirement; exact to the unit",
    );
  });
});
