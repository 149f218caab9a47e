import { expect } from "chai";
import fs from "node:fs";
import path from "node:path";
import { parseEther } from "ethers";
import { ethers } from "hardhat";
import { USAGE, parseKeeperArgs } from "../../scripts/keeper/config";
import { isDeficitStale } from "../../scripts/keeper/logic";
import { SWEEP_MIN_TOKENS } from "../../scripts/keeper/loop";
import { RACE_JITTER_MS } from "../../scripts/keeper/sender";
import { MAX_FAR_OPTION_PIN, MIN_TIMELOCK_DELAY } from "../../deploy/networkConfig";
import { DEFAULT_RISK_PARAMS } from "../shared/system";
import { claimRedeem, requestRedeem, withdrawLiquidity } from "../../sdk/src";
import { wad } from "../shared/units";

/**
 * Review round 120: what README.md, docs/*.md and the interfaces' NatSpec say against the code as it is.
 * Each spec reads the claim where the docs make it and the fact where the code fixes it, so a change to
 * either side that leaves them apart fails here. No chain: every spec reads files or calls pure code.
 */
const ROOT = path.join(__dirname, "../..");
const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), "utf8");
/** The prose documents this round holds (docs/reliability.md is the findings log, checked elsewhere). */
const DOCS = [
  "README.md",
  "docs/decisions.md",
  "docs/margin-comparison.md",
  "docs/portfolio-margin-accuracy.md",
];
/** A file with its line breaks (and NatSpec's `///` markers) collapsed, so a claim reads across lines. */
const text = (file: string): string =>
  read(file)
    .replace(/\n\s*\/\/\/ ?/g, " ")
    .replace(/\s+/g, " ");
const NETWORKS = ["localhost", "sepolia", "arbitrumSepolia", "baseSepolia"];
const TESTNETS = NETWORKS.filter((n) => n !== "localhost");
const DAY = 86_400n;
const HOUR = 3_600n;

interface RawConfig {
  feeds: Record<string, { heartbeat: number }>;
  volatilityFeeds: Record<string, { maxVol: string; mock?: { answer: string } }>;
  perpMarkets: Record<string, { makerFee: string; takerFee: string; minRoundTripFee: string }>;
  optionMarket: {
    poolDeltaRatio: Record<string, string>;
    minFee: Record<string, string>;
    minSpreadFactor: Record<string, string>;
    expiryPeriod: number;
    expiryOffset: number;
  };
  auction: {
    startDiscount: string;
    maxDiscount: string;
    penalty: string;
    duration: number;
    flagReward: string;
  };
  liquidityPool: {
    holdingPeriod: number;
    exitDelay: number;
    interestRateModel: { baseRate: string; kinkRate: string; maxRate: string; kinkUtilization: string };
  };
  governance: { timelockMinDelay: number };
}
const config = (network: string): RawConfig => JSON.parse(read(`deploy/config/${network}.json`)) as RawConfig;

/** A Solidity constant's value, from its declaration: `1e18`-style WADs, `N days|hours|minutes`, `2 ** n`. */
function solConstant(file: string, name: string): bigint {
  const match = read(file).match(new RegExp(`\\b${name}\\s*=\\s*([^;]+);`));
  if (!match) throw new Error(`${name} not declared in ${file}`);
  const expr = match[1].replace(/_/g, "").trim();
  let m: RegExpMatchArray | null;
  if ((m = expr.match(/^(\d+(?:\.\d+)?)e(\d+)$/))) {
    const [whole, frac = ""] = m[1].split(".");
    return BigInt(whole + frac) * 10n ** BigInt(Number(m[2]) - frac.length);
  }
  if ((m = expr.match(/^(\d+)\s*(days|hours|minutes)$/))) {
    return BigInt(m[1]) * { days: DAY, hours: HOUR, minutes: 60n }[m[2] as "days" | "hours" | "minutes"];
  }
  if ((m = expr.match(/^(\d+)\s*\*\*\s*(\d+)$/))) return BigInt(m[1]) ** BigInt(m[2]);
  if (/^\d+$/.test(expr)) return BigInt(expr);
  throw new Error(`${name} = ${expr}: not a literal this reader knows`);
}

/** Backticked spans of a document, with the line each starts on. */
function codeSpans(file: string): { span: string; line: number }[] {
  const out: { span: string; line: number }[] = [];
  read(file)
    .split("\n")
    .forEach((l, i) => {
      for (const m of l.matchAll(/`([^`]+)`/g)) out.push({ span: m[1], line: i + 1 });
    });
  return out;
}

describe("README.md and docs/decisions.md: commands and environment", function () {
  it("name only npm scripts package.json defines", function () {
    const scripts = Object.keys((JSON.parse(read("package.json")) as { scripts: object }).scripts);
    const named = DOCS.flatMap((f) => [...read(f).matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]));
    expect(named.length).to.be.greaterThan(10);
    expect(named.filter((n) => !scripts.includes(n))).to.deep.equal([]);
  });

  it("name only environment variables something reads (process.env, a package.json script)", function () {
    const readers = ["scripts", "test", "sdk", "deploy"]
      .flatMap((dir) => walk(path.join(ROOT, dir)))
      .concat([path.join(ROOT, "hardhat.config.ts"), path.join(ROOT, "package.json")])
      .map((f) => fs.readFileSync(f, "utf8"))
      .join("\n");
    const named = new Set(
      codeSpans("README.md")
        .flatMap(({ span }) => span.match(/\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b/g) ?? [])
        .filter((name) => !/^(MAX|MIN)_/.test(name)),
    );
    expect(named.size).to.be.greaterThan(8);
    const unread = [...named].filter(
      (name) => !new RegExp(`(process\\.env\\.${name}\\b|env\\.${name}\\b|\\b${name}=)`).test(readers),
    );
    expect(unread).to.deep.equal([]);
  });

  it("give the defaults and values the scripts use (STRESS_JITTER 1, 200 accounts, BENCH_ONLY gas or keeper)", function () {
    const readme = text("README.md");
    expect(readme).to.include("`STRESS_JITTER` (default 1)");
    expect(
      (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts["test:jitter"],
    ).to.include("STRESS_JITTER=${STRESS_JITTER:-1}");
    expect(readme).to.include("a population of 200 leveraged accounts");
    expect(read("scripts/stress.ts")).to.include("process.env.STRESS_ACCOUNTS ?? 200");
    expect(readme).to.include("`BENCH_ONLY=gas` prints the gas alone, `BENCH_ONLY=keeper` the scan alone");
    expect(read("scripts/bench.ts")).to.include('process.env.BENCH_ONLY === "gas"');
    expect(read("scripts/bench.ts")).to.include('process.env.BENCH_ONLY === "keeper"');
    // "in four parallel workers (mocha's `parallel`)", serial for coverage and the gas reporter
    expect(readme).to.include("in four parallel workers");
    expect(read("hardhat.config.ts")).to.match(/parallel: !SERIAL_TESTS,\s*jobs: 4,/);
  });

  it("describe the invariant campaigns' knobs as each file reads them (round 120: the quote-interest seed is fixed)", function () {
    const dir = "test/invariant";
    const files = fs.readdirSync(path.join(ROOT, dir)).filter((f) => f.endsWith(".test.ts"));
    expect(files.length).to.equal(6);
    const reads = (f: string, v: string) => read(`${dir}/${f}`).includes(`process.env.${v}`);
    const fixedSeed = (f: string) =>
      /seed: (Number\(process\.env\.INVARIANT_SEED \?\? \d+\)|\d+)/.test(read(`${dir}/${f}`));
    expect(files.filter((f) => !reads(f, "INVARIANT_RUNS"))).to.deep.equal([]);
    expect(files.filter((f) => !reads(f, "INVARIANT_STEPS"))).to.deep.equal([
      "Liquidation.invariants.test.ts",
    ]);
    expect(files.filter((f) => !reads(f, "INVARIANT_SEED"))).to.deep.equal([
      "TradingAllowance.invariants.test.ts",
    ]);
    expect(files.filter((f) => !fixedSeed(f))).to.deep.equal([]);
    const readme = text("README.md");
    // The README said "the quote-interest one a fresh seed each run" after the seed was fixed (8101fe0).
    expect(readme).to.not.include("fresh seed");
    expect(readme).to.include(
      "`INVARIANT_STEPS` in all but `Liquidation.invariants.test.ts` make them longer; every file runs a fixed seed, which `INVARIANT_SEED` replaces in all but the trading-allowance one",
    );
  });

  it("point at files that exist", function () {
    const missing: string[] = [];
    const tracked = walk(path.join(ROOT, "test")).map((f) => path.basename(f));
    for (const file of DOCS) {
      const body = read(file);
      const candidates = [
        ...codeSpans(file).map(({ span, line }) => ({ p: span, line })),
        ...[...body.matchAll(/\]\(([^)#]+)\)/g)].map((m) => ({ p: m[1], line: 0 })),
      ];
      for (const { p, line } of candidates) {
        const ref = p.trim();
        if (!/^[\w./-]+\.(ts|sol|md|json)$/.test(ref)) continue;
        if (ref.includes("/")) {
          const inDir = path.join(ROOT, path.dirname(file), ref);
          const fromRoot = path.join(ROOT, ref);
          if (!fs.existsSync(inDir) && !fs.existsSync(fromRoot) && !ref.includes("ARCHITECTURE.md"))
            missing.push(`${file}:${line} ${ref}`);
        } else if (ref.endsWith(".test.ts") && !tracked.includes(ref)) missing.push(`${file}:${line} ${ref}`);
      }
    }
    expect(missing).to.deep.equal([]);
  });
});

describe("README.md and docs/decisions.md: names in the code", function () {
  const SOURCES = new Map(
    walk(path.join(ROOT, "contracts"))
      .filter((f) => f.endsWith(".sol") && !f.includes(`${path.sep}test${path.sep}`))
      .map((f) => [path.basename(f, ".sol"), fs.readFileSync(f, "utf8")]),
  );

  it("every Contract.member they name is declared in that contract, its interface or library", function () {
    const absent: string[] = [];
    let checked = 0;
    for (const file of DOCS) {
      read(file)
        .split("\n")
        .forEach((l, i) => {
          for (const m of l.matchAll(/\b([A-Z][A-Za-z0-9]+)\.([A-Za-z_][A-Za-z0-9_]*)\b/g)) {
            const [, contract, member] = m;
            const source = SOURCES.get(contract);
            if (source === undefined || member === "test" || member === "sol") continue;
            checked += 1;
            const declared = new RegExp(`\\b${member}\\b`);
            if (!declared.test(source) && !declared.test(SOURCES.get(`I${contract}`) ?? ""))
              absent.push(`${file}:${i + 1} ${contract}.${member}`);
          }
        });
    }
    expect(checked).to.be.greaterThan(60);
    expect(absent).to.deep.equal([]);
  });

  it("every error or event they write with arguments has that many in its declaration", function () {
    const declared = new Map<string, number[]>();
    for (const source of SOURCES.values())
      for (const m of source.matchAll(/\b(?:error|event|function)\s+(\w+)\s*\(([^)]*)\)/g))
        declared.set(m[1], [...(declared.get(m[1]) ?? []), m[2].split(",").filter((p) => p.trim()).length]);
    const interfaces = fs
      .readdirSync(path.join(ROOT, "contracts/interfaces"))
      .map((f) => `contracts/interfaces/${f}`);
    const wrong: string[] = [];
    let checked = 0;
    for (const file of [...DOCS, ...interfaces]) {
      for (const m of text(file).matchAll(/\b([A-Z]\w+)\(([^()]*)\)/g)) {
        const arities = declared.get(m[1]);
        const args = m[2].split(",").filter((a) => a.trim());
        if (arities === undefined || args.length === 0 || /^\s*(…|\.\.\.)\s*$/.test(m[2])) continue;
        checked += 1;
        if (!arities.includes(args.length))
          wrong.push(`${file}: ${m[0]} (declared with ${arities.join(" or ")})`);
      }
    }
    expect(checked).to.be.greaterThan(10);
    // decisions.md gave ParameterOutOfBounds("maintenanceWeightStep") one argument of two.
    expect(wrong).to.deep.equal([]);
  });

  it("every keeper flag they name is one the keeper's parser accepts, with the default they give", function () {
    const flags = [
      ...new Set(
        DOCS.flatMap((f) =>
          [...read(f).matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)(?![A-Za-z])/g)].map((m) => m[1]),
        ),
      ),
    ];
    expect(flags).to.include.members(["rpc", "deployment", "unwind-backstop", "race-jitter-ms"]);
    const base = ["--rpc", "http://127.0.0.1:8545", "--deployment", "deploy/deployments/31337.json"];
    const key = { KEEPER_PRIVATE_KEY: `0x${"11".repeat(32)}` };
    for (const flag of flags) {
      const takesValue = new RegExp(`--${flag} <`).test(USAGE);
      const argv = ["rpc", "deployment"].includes(flag)
        ? base
        : [...base, `--${flag}`, ...(takesValue ? ["1"] : [])];
      expect(() => parseKeeperArgs(argv, key), `--${flag}`).to.not.throw();
    }
    const defaults = parseKeeperArgs(base, key);
    expect(
      defaults === "help" ? null : { unwind: defaults.unwindBackstop, jitter: defaults.raceJitterMs },
    ).to.deep.equal({ unwind: false, jitter: 250 });
    expect(text("docs/decisions.md")).to.include("`--unwind-backstop` (off by default)");
    expect(text("README.md")).to.include("`--race-jitter-ms` 250 by default");
    expect(RACE_JITTER_MS).to.equal(250);
  });

  it("the keeper numbers decisions.md gives: a 1% stale deficit, sweeps from 100 USDC, payouts per 50 holders", function () {
    const decisions = text("docs/decisions.md");
    expect(decisions).to.include(
      "the keeper raises records that fall more than 1% behind (`isDeficitStale`)",
    );
    expect([isDeficitStale(9_900n, 10_000n), isDeficitStale(9_899n, 10_000n)]).to.deep.equal([false, true]);
    expect(decisions).to.include("the keeper does it each pass from 100 USDC up");
    expect(SWEEP_MIN_TOKENS).to.equal(100n);
    expect(decisions).to.include("one `settleAccounts` per 50 holders");
    expect(read("scripts/keeper/options.ts")).to.include("const SETTLE_BATCH = 50;");
  });
});

describe("docs/decisions.md: the numbers the code fixes", function () {
  const CONSTANTS: [file: string, name: string, value: bigint, claim: string][] = [
    ["contracts/core/CollateralVault.sol", "MAX_UNIT_VALUE", wad("0.1"), "is worth at most ten cents"],
    [
      "contracts/core/CollateralVault.sol",
      "MAX_SHARE_UNIT_VALUE",
      wad("10"),
      "(ten dollars, a hundred times",
    ],
    [
      "contracts/core/CollateralVault.sol",
      "MAX_WEIGHT_STEP",
      wad("0.1"),
      "A collateral weight falls at most 0.1 a day",
    ],
    [
      "contracts/core/CollateralVault.sol",
      "MIN_MAX_RATE",
      wad("0.5"),
      "the full-utilisation rate never below 50%",
    ],
    [
      "contracts/core/CollateralVault.sol",
      "MAX_RATE_STEP",
      wad("0.25"),
      "moving at most 25 points per change",
    ],
    [
      "contracts/markets/OptionMarket.sol",
      "MAX_LIVE_SERIES",
      32n,
      "**At most 32 option series live at once**",
    ],
    ["contracts/markets/OptionMarket.sol", "MIN_COUNTED_DELTA", wad("0.2"), "`MIN_COUNTED_DELTA` = 0.2"],
    [
      "contracts/markets/OptionMarket.sol",
      "MAX_SKEW_STEP",
      wad("0.05"),
      "MAX_SKEW_STEP still caps any step at 5 points",
    ],
    ["contracts/markets/OptionMarket.sol", "MIN_SKEW_UPDATE_INTERVAL", 12n * HOUR, "**The skew: 12 hours**"],
    ["contracts/markets/OptionMarket.sol", "MAX_SKEW", wad("0.5"), "(the whole ±50 range)"],
    ["contracts/markets/OptionMarket.sol", "MAX_EXPIRY_PERIOD", 7n * DAY, "period at most a week"],
    [
      "contracts/markets/OptionMarket.sol",
      "MAX_POOL_VEGA_RATIO",
      wad("5"),
      "at the hard bounds (vega 5, delta 10)",
    ],
    [
      "contracts/markets/OptionMarket.sol",
      "MAX_POOL_DELTA_RATIO",
      wad("10"),
      "at the hard bounds (vega 5, delta 10)",
    ],
    [
      "contracts/markets/OptionMarket.sol",
      "MAX_TOTAL_POOL_DELTA_RATIO",
      wad("1"),
      "take the sum over underlyings above 1",
    ],
    ["contracts/markets/PerpMarket.sol", "MAX_MARKETS", 32n, "lists at most 32 markets (`MAX_MARKETS`"],
    ["contracts/markets/PerpMarket.sol", "MAX_SKEW_SCALE", wad("1000000000000"), "Its bound (1e12 units)"],
    ["contracts/markets/PerpMarket.sol", "MAX_FEE_STEP", wad("0.0025"), "25 bp an update"],
    [
      "contracts/core/MarginEngine.sol",
      "MAX_MARKETS_PER_ACCOUNT",
      16n,
      "exempt from the engine's 16-market cap",
    ],
    ["contracts/core/MarginEngine.sol", "MAX_UNDERLYINGS", 32n, "the engine lists at most 32 underlyings"],
    [
      "contracts/core/MarginEngine.sol",
      "SERIES_VOLATILITY_STEP",
      wad("0.05"),
      "⌈|vega|·0.05⌉ per option position",
    ],
    ["contracts/core/MarginEngine.sol", "COVERING_TIME_VALUE", wad("0.05"), "time value is worth 5% of spot"],
    ["contracts/core/LiquidationAuction.sol", "FLAG_REWARD_COOLDOWN", DAY, "**Nor does a start within a day"],
    ["contracts/core/LiquidationAuction.sol", "MAX_FLAG_REWARD_TOKENS", 100n, "= 100 quote tokens"],
    [
      "contracts/core/LiquidationAuction.sol",
      "MAX_FLAG_REWARD_STEP_TOKENS",
      25n,
      "moving at most 25 per update",
    ],
    [
      "contracts/core/LiquidationAuction.sol",
      "MAX_PENALTY_STEP",
      wad("0.01"),
      "the penalty at most one point per update",
    ],
    ["contracts/core/LiquidationAuction.sol", "MIN_DURATION", 60n, "(1,800 s → 60 s: five days)"],
    ["contracts/core/LiquidationAuction.sol", "MAX_DURATION_FACTOR", 2n, "the duration at most ×2 or ÷2"],
    ["contracts/markets/LiquidityPool.sol", "CLAIM_WINDOW", 2n * HOUR, "`CLAIM_WINDOW` (2 hours)"],
    [
      "contracts/markets/LiquidityPool.sol",
      "MAX_CUT_TO_ZERO",
      HOUR,
      "from an hour or less (`MAX_CUT_TO_ZERO`)",
    ],
    [
      "contracts/markets/LiquidityPool.sol",
      "MAX_HOLDING_PERIOD",
      7n * DAY,
      "at most 7 days, set by the risk manager)",
    ],
    [
      "contracts/markets/LiquidityPool.sol",
      "MAX_EXIT_DELAY",
      7n * DAY,
      "1 day on every deployment, at most 7 days",
    ],
    ["contracts/markets/LiquidityPool.sol", "LOCK_TIME_SCALE", 2n ** 32n, "kept in 2^-32 seconds"],
    [
      "contracts/governance/UpdateThrottle.sol",
      "MIN_UPDATE_INTERVAL",
      DAY,
      "**One day** (`MIN_UPDATE_INTERVAL`)",
    ],
    [
      "contracts/libraries/RiskParamsLib.sol",
      "MIN_VOL_SHOCK",
      wad("0.05"),
      "a floor of 5 volatility points (`MIN_VOL_SHOCK`",
    ],
    [
      "contracts/libraries/RiskParamsLib.sol",
      "MAX_VOL_SHOCK_STEP",
      wad("0.1"),
      "(vega·ΔmmVolShock, 10 points a day)",
    ],
    ["contracts/libraries/RiskParamsLib.sol", "MAX_SHOCK_STEP", wad("0.05"), "a 5-point shock-floor step"],
    [
      "contracts/libraries/SeriesParamsLib.sol",
      "MAX_FEE",
      wad("0.005"),
      "a 0.5% feed 50 bp, the contract's bound",
    ],
    [
      "contracts/libraries/SeriesParamsLib.sol",
      "MAX_SPREAD_FACTOR_STEP",
      wad("0.01"),
      "(`setSeriesParams`, +0.01 a day)",
    ],
    [
      "contracts/libraries/BlackScholes.sol",
      "MAX_VOLATILITY",
      wad("5"),
      "clamp feed + skew to the model's 500%",
    ],
  ];

  it("equal the Solidity constants they describe", function () {
    const decisions = text("docs/decisions.md");
    const wrong: string[] = [];
    for (const [file, name, value, claim] of CONSTANTS) {
      if (!decisions.includes(claim)) wrong.push(`claim gone: ${claim}`);
      const actual = solConstant(file, name);
      if (actual !== value) wrong.push(`${name} = ${actual}, the docs say ${value}`);
    }
    expect(wrong).to.deep.equal([]);
  });

  it("equal the deploy scripts' bounds: a two-day timelock, far options pinning at most half the pool", function () {
    const decisions = text("docs/decisions.md");
    expect(decisions).to.include("**The timelock waits at least two days");
    expect(BigInt(MIN_TIMELOCK_DELAY)).to.equal(2n * DAY);
    expect(decisions).to.include("The deploy scripts enforce it at 50% (`MAX_FAR_OPTION_PIN`");
    expect(MAX_FAR_OPTION_PIN).to.equal(parseEther("0.5"));
  });

  it("equal every network's deploy config (holding period, exit delay, rates, fees, floors, grid, heartbeats)", function () {
    const decisions = text("docs/decisions.md");
    for (const claim of [
      "(1 day in every deploy config; at most 7 days",
      "(2% → 10% at 80% → 150% in the deploy configs",
      "today's 7 bp pass",
      "(`perpMarkets.X.minRoundTripFee`, 5 bp today)",
      "the shipped configs set ETH and BTC to 0.5 each",
      "(the testnets' 2.5 bp floor is accepted for their open-mint mock tokens, not their live feeds' thresholds)",
      "Today's 0.005 covers one point a round",
      "The deployment configs cap every volatility feed at 500% (`maxVol`)",
      "the deployments' ETH (60%) and BTC (50%) stay on their Greeks",
      "**Series expire on a grid: 08:00 UTC daily on the testnets**",
      "the localhost config and the test fixtures use a one-second grid",
      "up to the 25 the testnet configs accept",
      "On the testnet deployments a price feed goes stale only after 25 hours without a round (on localhost after one hour)",
    ])
      expect(decisions, claim).to.include(claim);
    for (const network of NETWORKS) {
      const c = config(network);
      const pool = c.liquidityPool;
      const perps = Object.values(c.perpMarkets);
      const o = c.optionMarket;
      expect(
        {
          holdingPeriod: pool.holdingPeriod,
          exitDelay: pool.exitDelay,
          rates: pool.interestRateModel,
          roundTrips: perps.map((p) => wad(p.makerFee) + wad(p.takerFee)),
          minRoundTripFees: perps.map((p) => p.minRoundTripFee),
          deltaRatios: o.poolDeltaRatio,
          minFees: Object.values(o.minFee),
          minSpreadFactors: Object.values(o.minSpreadFactor),
          maxVols: Object.values(c.volatilityFeeds).map((v) => v.maxVol),
          vols: Object.fromEntries(Object.entries(c.volatilityFeeds).map(([k, v]) => [k, v.mock?.answer])),
          timelock: c.governance.timelockMinDelay,
        },
        network,
      ).to.deep.equal({
        holdingPeriod: 86_400,
        exitDelay: 86_400,
        rates: { baseRate: "0.02", kinkRate: "0.10", maxRate: "1.5", kinkUtilization: "0.8" },
        roundTrips: [wad("0.0007"), wad("0.0007")],
        minRoundTripFees: ["0.0005", "0.0005"],
        deltaRatios: { ETH: "0.5", BTC: "0.5" },
        minFees: ["0.00025", "0.00025"],
        minSpreadFactors: ["0.005", "0.005"],
        maxVols: ["5", "5"],
        vols: { ETH: "0.6", BTC: "0.5" },
        timelock: 172_800,
      });
      const testnet = TESTNETS.includes(network);
      expect(
        {
          grid: [o.expiryPeriod, o.expiryOffset],
          heartbeats: Object.values(c.feeds).map((f) => f.heartbeat),
        },
        network,
      ).to.deep.equal(
        testnet
          ? { grid: [86_400, 28_800], heartbeats: [90_000, 90_000, 90_000] }
          : { grid: [1, 0], heartbeats: [3_600, 3_600, 3_600] },
      );
    }
  });

  it("say who proposes to each shipped config's timelock: another account locally, nobody on the testnets", function () {
    expect(text("docs/decisions.md")).to.include(
      "so the local timelock's proposer is another account and the testnets' have none until a governance multisig is listed",
    );
    const governance = (network: string) =>
      (JSON.parse(read(`deploy/config/${network}.json`)) as { governance: { proposers: string[] } })
        .governance;
    for (const network of TESTNETS) expect(governance(network).proposers, network).to.deep.equal([]);
    const local = governance("localhost").proposers;
    expect(local).to.have.length(1);
    expect(local[0]).to.match(/^0x[0-9a-fA-F]{40}$/); // an address, not "deployer"
  });

  it("equal the auction parameters the configs ship (2% → 10% over 1,800 s, 1% penalty, 10 USDC reward)", function () {
    expect(text("docs/decisions.md")).to.include("(1,800 s → 60 s: five days)");
    expect(text("docs/decisions.md")).to.include("(10 → 100 takes four days)");
    for (const network of NETWORKS)
      expect(config(network).auction, network).to.deep.equal({
        startDiscount: "0.02",
        maxDiscount: "0.10",
        penalty: "0.01",
        duration: 1800,
        flagReward: "10",
      });
  });

  it("state the contract sizes of session 38 (OptionMarket 24,115, 461 left; MarginEngine 23,635, 941)", function () {
    const decisions = text("docs/decisions.md");
    // "today" went stale: MarginEngine was said to have 1,136 bytes to spare, OptionMarket 32.
    expect(decisions).to.not.match(/23,440 and 1,136 today|32 today\)/);
    expect(decisions).to.include("23,635 and 941 at session 38");
    expect(decisions).to.include("21 bytes left; 461 at session 38");
    expect(read("README.md")).to.not.include("today's bench");
    expect(decisions).to.not.include("in today's bench");
  });

  it("margin-comparison.md and portfolio-margin-accuracy.md give the fixture's risk parameters", function () {
    const p = DEFAULT_RISK_PARAMS;
    expect([p.imShockFloor, p.imZ, p.horizon, p.imVolShock, p.shortOptionFloor, p.contingency]).to.deep.equal(
      [wad("0.10"), wad("3"), DAY, wad("0.25"), wad("0.05"), wad("0.002")],
    );
    expect([p.mmShockFloor, p.mmZ, p.mmVolShock]).to.deep.equal([wad("0.05"), wad("2.33"), wad("0.15")]);
    expect(text("docs/margin-comparison.md")).to.include(
      "spot shock max(10%, 3σ·√1 day) ≈ 10%, volatility shock ±25 points, short-option floor 5% of spot per net short contract, contingency 0.2% of gross notional",
    );
    expect(text("docs/portfolio-margin-accuracy.md")).to.include(
      "IM 10% floor, 3σ·√1 day, vol ±25 points; MM 5% floor, 2.33σ·√1 day, vol ±15 points; short-option floor 5% of spot; contingency 0.2% of gross notional",
    );
  });
});

describe("README.md: the LP share price", function () {
  it("names every term LiquidityPool.totalAssets adds: the backstop, the interest receivable, the uncovered deficit", function () {
    const pool = read("contracts/markets/LiquidityPool.sol");
    expect(pool).to.include("return _bookValued ? _bookValue : positionValue() + backstopValue();");
    expect(pool).to.include(
      "return balance + valueInQuote + int256(vault.interestReceivable()) - int256(uncoveredDeficit());",
    );
    // It said "that account's mark-to-market equity plus the interest its debtors owe" only.
    expect(text("README.md")).to.include(
      "share price = that account's mark-to-market equity plus the backstop's (below) and the interest its debtors owe, less the deficits of insolvent auctions the insurance fund cannot cover (`totalAssets`)",
    );
  });
});

describe("README.md: the SDK's LP exit", function () {
  it("names the request and claim the deployments' exit delay leaves as the only exit", function () {
    expect([typeof requestRedeem, typeof claimRedeem, typeof withdrawLiquidity]).to.deep.equal([
      "function",
      "function",
      "function",
    ]);
    // Every deployment's exit delay is a day (above), so ERC-4626's withdraw reverts RedeemRequestRequired.
    for (const network of NETWORKS)
      expect(config(network).liquidityPool.exitDelay, network).to.be.greaterThan(0);
    expect(text("README.md")).to.include(
      "exit by a redeem request claimed after the exit delay, `requestRedeem` / `claimRedeem`, the only exit where the delay is above 0 as on every deployment",
    );
  });
});

describe("docs/margin-comparison.md: the covered call's narrative", function () {
  it("gives the delta the 3,300 call removes as the model computes it: 0.32, not 0.37", async function () {
    const bs = await ethers.deployContract("BlackScholesHarness");
    // The reference books' call: ETH 3,000, strike 3,300, 30 days, the fixture's 60% volatility.
    const v = await bs.valuation(wad("3000"), wad("3300"), 30n * DAY, wad("0.6"), true);
    expect(v.delta).to.be.within(wad("0.319"), wad("0.321"));
    const doc = text("docs/margin-comparison.md");
    expect(doc).to.include("selling the 3,300 call removes only about 0.32 of the perp's delta");
    // The doc is written by scripts/margin-table.ts (WRITE_DOCS=1): the generator says the same.
    expect(read("scripts/margin-table.ts")).to.include("removes only about 0.32 of the perp's delta");
  });
});

describe("docs/decisions.md: references to docs/reliability.md §4", function () {
  const rows = new Map(
    [...read("docs/reliability.md").matchAll(/^\| (\d+) \| [^|]*\| (.*)$/gm)].map((m) => [
      Number(m[1]),
      m[2],
    ]),
  );
  /** The review rounds a §4 row says it comes from, e.g. "(round 56)". */
  const roundsOf = (row: number): string[] =>
    [...(rows.get(row) ?? "").slice(0, 80).matchAll(/round (\d+)/g)].map((m) => m[1]);

  it("each 'review round N, §4 row M' names a row that round found (rows 142 and 143, not 140 and 141)", function () {
    const decisions = text("docs/decisions.md");
    const refs = [...decisions.matchAll(/review rounds? (\d+)(?: and (\d+))?,? (?:§4,? )?rows? (\d+)/g)];
    expect(refs.length).to.be.greaterThan(15);
    const wrong = refs
      .filter(([, r1, r2, row]) => !roundsOf(Number(row)).some((r) => r === r1 || r === r2))
      .map(([ref, , , row]) => `${ref} -> ${rows.get(Number(row))?.slice(0, 60)}`);
    expect(wrong).to.deep.equal([]);
    // The open part of the insolvent take (a 1% bid still takes the whole book) is row 142's.
    expect(decisions).to.include("into the next move (open, row 142)");
    expect(rows.get(142)).to.include("Open (low): `fraction` < 1 is not refused");
  });

  it("each row it leaves open is still open in §4 (rows 54, 284), and the one it says was fixed is (296)", function () {
    const decisions = text("docs/decisions.md");
    const line = (row: number): string =>
      read("docs/reliability.md")
        .split("\n")
        .find((l) => l.startsWith(`| ${row} | `)) ?? "";
    for (const [claim, row, status] of [
      ["**Left open** (§4, row 54): requested shares stay in the supply", 54, /\| documented: [^|]*\|$/],
      ["**Left open: a stale price feed.**", 284, /^\| 284 \| low \(open\) \|/],
      [
        "90 minutes (row 296); it now pauses",
        296,
        /^\| 296 \| low \| .* \| Fixed \(session 39\): the clock pauses\./,
      ],
    ] as const) {
      expect(decisions, claim).to.include(claim);
      expect(line(row), `row ${row}`).to.match(status);
    }
  });
});

describe("Interface NatSpec against the code", function () {
  it("IOptionMarket.configureUnderlying gives the deploy parser's fee floor: one fee covers the threshold", function () {
    const natspec = text("contracts/interfaces/IOptionMarket.sol");
    // Review round 113 moved the rule from a round trip's 2·minFee to minFee; the NatSpec kept the old one.
    expect(natspec).to.not.include(
      "riskless against the pool when a round is seen coming (2·minFee ≥ the threshold)",
    );
    expect(natspec).to.include("(minFee ≥ the threshold, review round 113;");
    expect(read("deploy/networkConfig.ts")).to.include("if (threshold !== undefined && fee < threshold)");
  });

  it("IMarginEngine.RiskParams.sizeScale says what 0 means: RiskParamsLib accepts it, PortfolioMath drops the term", function () {
    expect(read("contracts/libraries/RiskParamsLib.sol")).to.include(
      'p.sizeScale == 0 || p.sizeScale >= MIN_SIZE_SCALE, "sizeScale"',
    );
    expect(solConstant("contracts/libraries/RiskParamsLib.sol", "MIN_SIZE_SCALE")).to.equal(wad("10000"));
    expect(read("contracts/libraries/PortfolioMath.sol")).to.match(/if \(sizeScale != 0\) \{\s*shock = /);
    expect(text("contracts/interfaces/IMarginEngine.sol")).to.include(
      "At least 10,000 USD, or 0 for no size term (the shock then stays at max(floor, z·σ√horizon))",
    );
    expect(text("docs/decisions.md")).to.include("a `sizeScale` of 0 leaves the size term out");
  });

  it("IUpdateThrottle lists every setter that lets a change through unthrottled", function () {
    // Each of these throttles only one direction in the code ("if (x > old) _throttle" or a cut rule).
    expect(read("contracts/core/CollateralVault.sol")).to.include(
      'if (depositCap > current) _throttle("depositCap"',
    );
    expect(read("contracts/markets/OptionMarket.sol")).to.include(
      "if (ratio > old) _throttle(parameter, underlying, MIN_UPDATE_INTERVAL);",
    );
    expect(read("contracts/markets/LiquidityPool.sol")).to.match(
      /if \(next >= current\) return;[\s\S]{0,200}_throttle\(/,
    );
    expect(text("contracts/interfaces/IUpdateThrottle.sol")).to.include(
      "(deposit caps and the option pool's vega and delta ratios falling, the LP holding period and exit delay rising)",
    );
  });
});

/** Every file below `dir`, skipping node_modules and build output. */
function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory())
      return ["node_modules", "artifacts", "cache", "typechain-types", "dist"].includes(e.name)
        ? []
        : walk(p);
    return [p];
  });
}
