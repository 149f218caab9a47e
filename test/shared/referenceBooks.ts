import { ethers } from "hardhat";
import { MarginMode, openAccount, type System } from "./system";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "./options";
import { trade as tradePerp } from "./perps";
import type { OptionMarket } from "../../typechain-types";

/** One leg of a reference book: a perp or an ETH option (30 days), with a signed size in ETH. */
export type Leg =
  | { kind: "perp"; size: number }
  | { kind: "option"; strike: number; isCall: boolean; size: number };

export interface ReferenceBook {
  name: string;
  legs: Leg[];
  /** Hedged books: the issue expects their portfolio requirement at most 1/3 of the standard one. */
  hedged: boolean;
}

/** The reference books of the margin comparison, on ETH at 3,000 with 60% volatility. */
export const REFERENCE_BOOKS: ReferenceBook[] = [
  { name: "long perp", hedged: false, legs: [{ kind: "perp", size: 1 }] },
  {
    name: "conversion",
    hedged: true,
    legs: [
      { kind: "option", strike: 3000, isCall: true, size: 1 },
      { kind: "option", strike: 3000, isCall: false, size: -1 },
      { kind: "perp", size: -1 },
    ],
  },
  {
    name: "covered call",
    hedged: true,
    legs: [
      { kind: "perp", size: 1 },
      { kind: "option", strike: 3300, isCall: true, size: -1 },
    ],
  },
  {
    name: "covered call, at the money",
    hedged: true,
    legs: [
      { kind: "perp", size: 1 },
      { kind: "option", strike: 3000, isCall: true, size: -1 },
    ],
  },
  {
    // Put–call parity: long perp + short K call = short K put (+ cash), the covered call's twin.
    name: "short put",
    hedged: false,
    legs: [{ kind: "option", strike: 3300, isCall: false, size: -1 }],
  },
  {
    name: "bull call spread",
    hedged: true,
    legs: [
      { kind: "option", strike: 3000, isCall: true, size: 1 },
      { kind: "option", strike: 3300, isCall: true, size: -1 },
    ],
  },
  {
    name: "short strangle",
    hedged: false,
    legs: [
      { kind: "option", strike: 2700, isCall: false, size: -1 },
      { kind: "option", strike: 3300, isCall: true, size: -1 },
    ],
  },
  {
    name: "long straddle",
    hedged: false,
    legs: [
      { kind: "option", strike: 3000, isCall: true, size: 1 },
      { kind: "option", strike: 3000, isCall: false, size: 1 },
    ],
  },
];

export interface MarginRow {
  book: ReferenceBook;
  /** IM of each leg in its own ISOLATED account, in leg order (USD WAD). */
  isolated: bigint[];
  /** `engine.standardRequirements(account).initial` of the whole book in one CROSS account. */
  standard: bigint;
  /** `engine.health(account).initialRequirement` of the same account. */
  portfolio: bigint;
}

const USDC = 10n ** 6n;
const COLLATERAL = 100_000n * USDC;

/** The system with options, and the id of every ETH series a reference book uses. */
export async function referenceMarkets(): Promise<
  System & { options: OptionMarket; series: Map<string, bigint> }
> {
  const sys = await deployOptionsSystem();
  const { options } = sys;
  const expiry = await fromNow(30n * DAY);
  const series = new Map<string, bigint>();
  for (const book of REFERENCE_BOOKS) {
    for (const leg of book.legs) {
      if (leg.kind !== "option" || series.has(seriesKey(leg))) continue;
      series.set(seriesKey(leg), await listSeries(options, "ETH", String(leg.strike), expiry, leg.isCall));
    }
  }
  return { ...sys, series };
}

function seriesKey(leg: { strike: number; isCall: boolean }): string {
  return `${leg.strike}${leg.isCall ? "C" : "P"}`;
}

/** Deploys the system and measures every reference book's isolated, standard and portfolio IM. */
export async function referenceMarginTable(): Promise<MarginRow[]> {
  const sys = await referenceMarkets();
  const open = async (accountId: bigint, leg: Leg) => {
    const size = ethers.parseEther(String(leg.size));
    if (leg.kind === "perp") await tradePerp(sys.perps, sys.alice, accountId, sys.markets.ETH, size);
    else await tradeOption(sys.options, sys.alice, accountId, sys.series.get(seriesKey(leg))!, size);
  };
  // Open every account first, then read every requirement at the same block (an option's Greeks move
  // with time to expiry, so reads a few blocks apart would differ in the last digits).
  const built: { book: ReferenceBook; isolated: bigint[]; cross: bigint }[] = [];
  for (const book of REFERENCE_BOOKS) {
    const isolated: bigint[] = [];
    for (const leg of book.legs) {
      const accountId = await openAccount(sys, sys.alice, MarginMode.ISOLATED, [[sys.usdc, COLLATERAL]]);
      await open(accountId, leg);
      isolated.push(accountId);
    }
    const cross = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, COLLATERAL]]);
    for (const leg of book.legs) await open(cross, leg);
    built.push({ book, isolated, cross });
  }
  const rows: MarginRow[] = [];
  for (const { book, isolated, cross } of built) {
    const [standard] = await sys.engine.standardRequirements(cross);
    rows.push({
      book,
      isolated: await Promise.all(
        isolated.map(async (id) => (await sys.engine.health(id)).initialRequirement),
      ),
      standard,
      portfolio: (await sys.engine.health(cross)).initialRequirement,
    });
  }
  return rows;
}

const usd = (x: bigint): string =>
  Number(ethers.formatEther(x)).toLocaleString("en-US", { maximumFractionDigits: 0 });

function describeLeg(leg: Leg): string {
  const side = leg.size > 0 ? "long" : "short";
  const size = Math.abs(leg.size);
  if (leg.kind === "perp") return `${side} ${size} perp`;
  return `${side} ${size} ${leg.strike} ${leg.isCall ? "call" : "put"}`;
}

/** The comparison as a markdown table (USD, rounded to the dollar). */
export function marginTableMarkdown(rows: MarginRow[]): string {
  const lines = [
    "| book | positions (ETH, 30-day options) | isolated IM (one account per position) | standard IM | portfolio IM | portfolio / standard |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const { book, isolated, standard, portfolio } of rows) {
    const total = isolated.reduce((a, b) => a + b, 0n);
    const perAccount = isolated.length > 1 ? `${isolated.map(usd).join(" + ")} = ${usd(total)}` : usd(total);
    const ratio = standard === 0n ? "–" : `${((Number(portfolio) / Number(standard)) * 100).toFixed(1)}%`;
    lines.push(
      `| ${book.name} | ${book.legs.map(describeLeg).join(", ")} | ${perAccount} | ${usd(standard)} | ${usd(portfolio)} | ${ratio} |`,
    );
  }
  return lines.join("\n");
}
