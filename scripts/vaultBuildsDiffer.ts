/**
 * Differential run of the vault's two builds (review round 159): the build hardhat.config.ts configures
 * (the IR pipeline at 1,500 runs since session 46) against the same source compiled with the project's
 * default settings (the legacy pipeline at 200 runs), after any change of either.
 *
 *   npx hardhat run scripts/vaultBuildsDiffer.ts
 *   VAULT_DIFF_SEEDS=1,2,3 VAULT_DIFF_STEPS=300 npx hardhat run scripts/vaultBuildsDiffer.ts
 *   VAULT_DIFF_MUTANT="text=>replacement" …   (the default build from a mutated source: must differ)
 *
 * Deploys the whole system twice on the in-process chain (`deploySystem`), the second time with the vault
 * created from the other build's creation code (the vault has immutables, so its runtime code cannot be
 * swapped in), and drives both with the same seeded random steps: deposits and withdrawals (odd amounts,
 * zero, beyond the balance, unlisted tokens, paused), perp trades and closes (quote debts), prices, time
 * with interest, `settleInterest`, the engine's fee charges and transfers, auctions and bids, the rate
 * model, weights, shocked weights, caps, listings, LP deposits. Every transaction of a step is mined at the
 * same timestamp in both systems. After each step it compares, with the second system's addresses mapped
 * to the first's: each transaction's status, revert data and logs byte for byte; every vault view of the
 * ABI for every account, token and amount it takes; and the vault's raw storage (every declared slot, and
 * the mapping entries of the accounts and tokens used, from the compiler's storage layout). Exits 1 on any
 * difference. Also prints the execution gas (gas used less the calldata's intrinsic cost) of each step's
 * transactions, configured − default build, by function.
 */
import hre, { ethers, network } from "hardhat";
import {
  AbiCoder,
  ContractFactory,
  FunctionFragment,
  Interface,
  getCreateAddress,
  keccak256,
  toBeHex,
  zeroPadValue,
} from "ethers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { MockERC20 } from "../typechain-types";
import { MarginMode, deploySystem, wad, type System } from "../test/shared/system";
import { assetId } from "../test/shared/oracles";
import { INTEREST_MODEL } from "../test/shared/interest";
import { mulberry32 } from "./lib/random";
import {
  codeSize,
  configuredVaultBuild,
  sameSources,
  vaultBuildWith,
  type StorageLayout,
  type VaultBuild,
} from "./lib/vaultBuilds";

const SEEDS = (process.env.VAULT_DIFF_SEEDS ?? process.env.VAULT_DIFF_SEED ?? "1").split(",").map(Number);
const STEPS = Number(process.env.VAULT_DIFF_STEPS ?? 200);
const MAX_REPORTED = Number(process.env.VAULT_DIFF_MAX_REPORTED ?? 10);
const GAS_LIMIT = 15_000_000n;
const USDC = 10n ** 6n;
const NO_DEADLINE = 2n ** 64n;
const coder = AbiCoder.defaultAbiCoder();

/** One deployment of the system, with the extra tokens and the accounts the steps use. */
interface World {
  label: string;
  sys: System;
  /** Tokens deployed at setup and never listed unless a step lists them (the first is never listed). */
  extras: MockERC20[];
  /** Every token a step may name: the four listed at deployment, then the extras. */
  tokens: string[];
  /** The engine, impersonated: the steps' direct fee charges and transfers. */
  engine: HardhatEthersSigner;
  /** Account ids by owner index (alice, bob, carol, keeper), in creation order. */
  accountsOf: bigint[][];
  /** Accounts whose auction a step started (the bids' and absorbs' usual targets). */
  auctioned: bigint[];
}

/** What one transaction did, comparable across the two systems once addresses are mapped. */
interface Outcome {
  label: string;
  status: number;
  returnOrRevert: string;
  logs: string[];
  executionGas: bigint;
}

let timestamp = 0;
/** The update throttle's parameter sets (`_throttle("…"` in the vault's source). */
let throttleSets: string[] = [];

/**
 * Mines every transaction, the deployments' included, at `timestamp`, whatever the wall clock says: the
 * two systems are deployed one after the other, and a feed's round or a market's funding clock written a
 * second apart would make them differ before the vault did anything.
 */
function pinEveryTransaction(): void {
  const provider = network.provider;
  const request = provider.request.bind(provider);
  const intercept = async (method: string, params?: unknown[]): Promise<unknown> => {
    if (["eth_sendTransaction", "eth_sendRawTransaction", "evm_mine"].includes(method)) {
      await request({ method: "evm_setNextBlockTimestamp", params: [timestamp] });
    }
    return request({ method, params });
  };
  provider.request = ({ method, params }) => intercept(method, params as unknown[] | undefined);
  provider.send = (method, params) => intercept(method, params);
}

/** The calldata's intrinsic gas (EIP-2028), so that the two systems' different addresses cost nothing. */
function intrinsicGas(data: string): bigint {
  let gas = 21_000n;
  for (let i = 2; i < data.length; i += 2) gas += data.slice(i, i + 2) === "00" ? 4n : 16n;
  return gas;
}

/** Sends `contract.method(args)` from `signer` at the pinned time, with a fixed gas limit (no estimate). */
async function send(
  outcomes: Outcome[],
  label: string,
  signer: HardhatEthersSigner,
  contract: { getAddress(): Promise<string>; interface: Interface },
  method: string,
  args: unknown[],
): Promise<Outcome> {
  const data = contract.interface.encodeFunctionData(method, args);
  const to = await contract.getAddress();
  let revertData = "0x";
  try {
    const tx = await signer.sendTransaction({ to, data, gasLimit: GAS_LIMIT });
    await tx.wait().catch(() => undefined);
  } catch (e) {
    revertData = revertDataOf(e);
  }
  const block = await ethers.provider.getBlock("latest");
  const receipt = (await ethers.provider.getTransactionReceipt(block!.transactions[0]))!;
  const outcome: Outcome = {
    label,
    status: receipt.status ?? -1,
    returnOrRevert: receipt.status === 1 ? "0x" : revertData,
    logs: receipt.logs.map((l) => [l.address, ...l.topics, l.data].join(":").toLowerCase()),
    executionGas: receipt.gasUsed - intrinsicGas(data),
  };
  if (outcome.status === 0 && revertData === "0x") {
    // The provider's error carried no data: replay the call on the state before the block.
    outcome.returnOrRevert = await ethers.provider
      .call({ from: signer.address, to, data, blockTag: receipt.blockNumber - 1 })
      .then(() => "0x(no revert on replay)")
      .catch(revertDataOf);
  }
  outcomes.push(outcome);
  return outcome;
}

/** The revert data of a provider or ethers error, "0x" if it carries none. */
function revertDataOf(e: unknown): string {
  const err = e as { data?: unknown; error?: { data?: unknown }; info?: { error?: { data?: unknown } } };
  for (const d of [err.data, err.error?.data, err.info?.error?.data]) {
    if (typeof d === "string" && d.startsWith("0x")) return d.toLowerCase();
    if (d && typeof d === "object" && typeof (d as { data?: unknown }).data === "string") {
      return ((d as { data: string }).data as string).toLowerCase();
    }
  }
  return "0x";
}

// ------------------------------------------------------------------------------------------------
// Deployment
// ------------------------------------------------------------------------------------------------

/** `deploySystem` with the vault created from `build`'s creation code (every other contract as built). */
async function deployWith(build: VaultBuild, label: string): Promise<World> {
  const eth = hre.ethers as unknown as { deployContract: (...a: unknown[]) => Promise<unknown> };
  const original = eth.deployContract;
  eth.deployContract = async (name: unknown, args?: unknown, ...rest: unknown[]) => {
    if (name !== "CollateralVault") return original.call(hre.ethers, name, args, ...rest);
    const [deployer] = await ethers.getSigners();
    const factory = new ContractFactory(build.abi as never, build.bytecode, deployer);
    const vault = await factory.deploy(...(args as unknown[]));
    await vault.waitForDeployment();
    return vault;
  };
  let sys: System;
  try {
    sys = await deploySystem();
  } finally {
    eth.deployContract = original;
  }
  const runtime = await ethers.provider.getCode(sys.vault);
  if (runtime.length !== build.deployedBytecode.length)
    throw new Error(`${label}: the vault is not ${build.label}`);

  const extras: MockERC20[] = [];
  for (let i = 0; i < 5; i++) {
    extras.push(await ethers.deployContract("MockERC20", [`Extra ${i}`, `X${i}`, i === 2 ? 6 : 18]));
  }
  const engineAddress = await sys.engine.getAddress();
  await network.provider.send("hardhat_impersonateAccount", [engineAddress]);
  await network.provider.send("hardhat_setBalance", [engineAddress, toBeHex(10n ** 20n)]);
  const engine = await ethers.getSigner(engineAddress);

  const owners = [sys.alice, sys.bob, sys.carol, sys.keeper];
  const accountsOf: bigint[][] = owners.map(() => []);
  const world: World = {
    label,
    sys,
    extras,
    tokens: [
      ...(await Promise.all([sys.usdc, sys.weth, sys.wbtc, sys.sweth].map((t) => t.getAddress()))),
      ...(await Promise.all(extras.map((t) => t.getAddress()))),
    ],
    engine,
    accountsOf,
    auctioned: [],
  };
  return world;
}

/**
 * Maps the second system's addresses to the first's: both were deployed by the same sequence of
 * transactions from the deployer, so the contract created at the first's i-th nonce corresponds to the
 * second's i-th.
 */
function addressMap(deployer: string, nonceA: number, nonceB: number, nonceEnd: number): Map<string, string> {
  const map = new Map<string, string>();
  if (nonceEnd - nonceB !== nonceB - nonceA)
    throw new Error("the two deployments took different transactions");
  for (let i = 0; i < nonceB - nonceA; i++) {
    const a = getCreateAddress({ from: deployer, nonce: nonceA + i })
      .slice(2)
      .toLowerCase();
    const b = getCreateAddress({ from: deployer, nonce: nonceB + i })
      .slice(2)
      .toLowerCase();
    map.set(b, a);
  }
  return map;
}

let mapBtoA = new Map<string, string>();
/** `s` with each of the second system's addresses (lower-case hex, anywhere in a word) written as the first's. */
function toA(s: string): string {
  let out = s;
  for (const [b, a] of mapBtoA) if (out.includes(b)) out = out.split(b).join(a);
  return out;
}

// ------------------------------------------------------------------------------------------------
// Steps
// ------------------------------------------------------------------------------------------------

/** A step's parameters, drawn once from the seeded generator and the first system's state. */
type Step = { kind: string; [k: string]: unknown };

/** Random choices of one run (mulberry32 from the seed). */
class Draw {
  constructor(private readonly next: () => number) {}
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** A random amount of up to `digits` digits with an odd last digit. */
  odd(digits: number): bigint {
    let v = 0n;
    const n = 1 + this.int(digits);
    for (let i = 0; i < n; i++) v = v * 10n + BigInt(this.int(10));
    return v * 10n + BigInt(1 + 2 * this.int(5));
  }
}

const STEP_WEIGHTS: [string, number][] = [
  ["deposit", 14],
  ["withdraw", 12],
  ["trade", 12],
  ["close", 5],
  ["price", 7],
  ["time", 7],
  ["settleInterest", 5],
  ["chargeFees", 5],
  ["transferBalance", 4],
  ["payOutQuote", 2],
  ["rateModel", 3],
  ["weights", 3],
  ["shockedWeight", 3],
  ["depositCap", 3],
  ["list", 2],
  ["delistOrRelist", 1],
  ["pause", 2],
  ["underwater", 3],
  ["startAuction", 3],
  ["bid", 5],
  ["absorb", 1],
  ["lpDeposit", 2],
  ["newAccount", 2],
];

const ownersOf = (w: World) => [w.sys.alice, w.sys.bob, w.sys.carol, w.sys.keeper];
const allAccountIds = async (w: World): Promise<bigint[]> => {
  const n = await w.sys.accounts.accountCount();
  return Array.from({ length: Number(n) + 2 }, (_, i) => BigInt(i));
};

/** Draws a step's parameters (reading the first system's state where an amount depends on it). */
async function drawStep(d: Draw, a: World): Promise<Step> {
  const total = STEP_WEIGHTS.reduce((s, [, w]) => s + w, 0);
  let r = d.int(total);
  let kind = STEP_WEIGHTS[0][0];
  for (const [k, w] of STEP_WEIGHTS) {
    if (r < w) {
      kind = k;
      break;
    }
    r -= w;
  }
  const ids = await allAccountIds(a);
  const owner = d.int(4);
  const ownAccounts = a.accountsOf[owner];
  const account = ownAccounts.length > 0 && d.chance(0.9) ? d.pick(ownAccounts) : d.pick(ids);
  const token = d.chance(0.7) ? d.int(2) : d.int(a.tokens.length);
  const decimals = Number(await (await ethers.getContractAt("MockERC20", a.tokens[token])).decimals());
  const unit = 10n ** BigInt(decimals);
  const amountLike = (): bigint =>
    d.pick([
      0n,
      1n,
      d.odd(4) * unit,
      d.odd(decimals + 4),
      d.odd(3) * unit + d.odd(decimals - 1 > 0 ? decimals - 1 : 1),
    ]);
  switch (kind) {
    case "deposit":
      return { kind, owner, account, token, amount: amountLike(), approveShort: d.chance(0.05) };
    case "withdraw": {
      const balance = await a.sys.vault.balanceOf(account, a.tokens[token]);
      const part = balance > 0n ? balance : 1_000n;
      const amount = d.pick([
        0n,
        1n,
        balance,
        balance + 1n,
        part / 3n,
        part / 7n + d.odd(2),
        part / 2n,
        amountLike(),
      ]);
      return { kind, owner, account, token, amount: amount < 0n ? -amount : amount, to: d.int(4) };
    }
    case "trade": {
      const market = d.pick(["ETH", "BTC"] as const);
      const size =
        (market === "ETH" ? d.odd(3) * 10n ** 14n : d.odd(2) * 10n ** 13n) * (d.chance(0.5) ? 1n : -1n);
      return { kind, owner, account, market, size };
    }
    case "close":
      return { kind, owner, account, market: d.pick(["ETH", "BTC"]) };
    case "price": {
      const feed = d.pick(["ETH", "ETH", "BTC", "USDC"] as const);
      const bps = feed === "USDC" ? 9_990n + BigInt(d.int(21)) : 8_800n + BigInt(d.int(2_401));
      return { kind, feed, bps };
    }
    case "time":
      return {
        kind,
        seconds: d.pick([
          1,
          59,
          1_800 + d.int(1_800),
          3_600 * (1 + d.int(24)),
          86_400 * (1 + d.int(20)) + d.int(1000),
        ]),
      };
    case "settleInterest":
      return { kind, owner, account: d.pick(ids) };
    case "chargeFees":
      return {
        kind,
        account: d.pick(ids),
        toPool: d.pick([0n, 1n, d.odd(9)]),
        toInsurance: d.pick([0n, 3n, d.odd(8)]),
      };
    case "transferBalance":
      return { kind, from: d.pick(ids), to: d.pick(ids), token, amount: amountLike() };
    case "payOutQuote":
      return { kind, account: d.pick(ids), to: d.int(4), amount: d.pick([0n, 1n, d.odd(9)]) };
    case "rateModel": {
      const base = BigInt(d.int(60)) * 10n ** 15n + d.odd(3);
      const kink = base + BigInt(d.int(300)) * 10n ** 15n;
      const max = d.pick([kink + BigInt(d.int(3000)) * 10n ** 15n, wad("1.5"), wad("3.1"), wad("0.4")]);
      const kinkUtilization = BigInt(450 + d.int(560)) * 10n ** 15n;
      return { kind, model: { baseRate: base, kinkRate: kink, maxRate: max, kinkUtilization } };
    }
    case "weights": {
      const initial = BigInt(d.int(1100)) * 10n ** 15n + d.odd(2);
      const maintenance = initial + BigInt(d.int(100)) * 10n ** 15n;
      return { kind, token, initial, maintenance };
    }
    case "shockedWeight":
      return { kind, token, weight: d.pick([0n, BigInt(d.int(1000)) * 10n ** 15n + d.odd(2), wad("1.2")]) };
    case "depositCap": {
      const config = await a.sys.vault.collateralConfig(a.tokens[token]).catch(() => undefined);
      const cap = config ? BigInt(config.depositCap) : 0n;
      return {
        kind,
        token,
        cap: d.pick([0n, cap / 2n + 1n, cap * 2n, cap * 2n + 1n, d.odd(6) * unit, 2n ** 248n]),
      };
    }
    case "list":
      return {
        kind,
        extra: d.int(5) === 0 ? 0 : 1 + d.int(4),
        weight: wad("0.8") + d.odd(3),
        cap: d.odd(5) * 10n ** 18n,
      };
    case "delistOrRelist":
      return { kind, token, delist: d.chance(0.5) };
    case "pause":
      return { kind, owner, account, token, amount: d.pick([1n, 1_000n, amountLike()]) };
    case "underwater": {
      // Five times leveraged at ETH's price now, then a fall of 12–15%: under maintenance.
      const collateral = 1_000n * USDC + d.odd(5);
      const ethUsd = (await a.sys.feeds.ETH.latestAnswer()) * 10n ** 10n;
      const size = (collateral * 10n ** 12n * 5n * 10n ** 18n) / ethUsd + d.odd(12);
      return { kind, owner: 2, collateral, size, drop: 8_500n + BigInt(d.int(300)) };
    }
    case "startAuction":
      return { kind, account: d.pick(ids) };
    case "bid":
    case "absorb": {
      const target = a.auctioned.length > 0 && d.chance(0.8) ? d.pick(a.auctioned) : d.pick(ids);
      const fraction = d.pick([wad("1"), wad("0.5"), BigInt(d.int(1000)) * 10n ** 15n + d.odd(4), 0n]);
      return { kind, account: target, bidder: d.pick(a.accountsOf[1]), fraction };
    }
    case "lpDeposit":
      return { kind, amount: d.pick([0n, 1n, d.odd(4) * USDC + d.odd(5)]) };
    case "newAccount":
      return { kind, owner, deposit: d.odd(5) * USDC };
  }
  throw new Error(kind);
}

/** Mints `amount` of `token` (for sWETH: WETH wrapped into shares) to `owner`, approving the vault. */
async function fund(
  out: Outcome[],
  w: World,
  owner: HardhatEthersSigner,
  token: number,
  amount: bigint,
  short: boolean,
) {
  const { sys } = w;
  const vault = await sys.vault.getAddress();
  const approval = short && amount > 0n ? amount - 1n : amount;
  if (token === 3) {
    await send(out, "weth.mint", owner, sys.weth, "mint", [owner.address, amount]);
    await send(out, "weth.approve", owner, sys.weth, "approve", [await sys.sweth.getAddress(), amount]);
    await send(out, "sweth.deposit", owner, sys.sweth, "deposit", [amount, owner.address]);
    await send(out, "sweth.approve", owner, sys.sweth, "approve", [vault, approval]);
    return;
  }
  const t = await ethers.getContractAt("MockERC20", w.tokens[token]);
  await send(out, "token.mint", owner, t, "mint", [owner.address, amount]);
  await send(out, "token.approve", owner, t, "approve", [vault, approval]);
}

/** Runs `step` on `w`; returns every transaction's outcome. */
async function runStep(step: Step, w: World): Promise<Outcome[]> {
  const out: Outcome[] = [];
  const { sys } = w;
  const s = step as unknown as Record<string, never>;
  const owner = ownersOf(w)[s.owner ?? 0];
  const token = w.tokens[s.token ?? 0];
  switch (step.kind) {
    case "deposit":
      await fund(out, w, owner, s.token, s.amount, s.approveShort);
      await send(out, "vault.deposit", owner, sys.vault, "deposit", [s.account, token, s.amount]);
      break;
    case "withdraw":
      await send(out, "vault.withdraw", owner, sys.vault, "withdraw", [
        s.account,
        token,
        s.amount,
        ownersOf(w)[s.to].address,
      ]);
      break;
    case "trade": {
      const limit = (s.size as bigint) > 0n ? ethers.MaxUint256 : 0n;
      await send(out, "perps.trade", owner, sys.perps, "trade", [
        s.account,
        sys.markets[s.market as "ETH"],
        s.size,
        limit,
        ethers.MaxUint256,
      ]);
      break;
    }
    case "close": {
      const market = sys.markets[s.market as "ETH"];
      const size = await sys.perps.positionSize(s.account, market);
      const limit = size > 0n ? 0n : ethers.MaxUint256;
      await send(out, "perps.closePosition", owner, sys.perps, "closePosition", [
        s.account,
        market,
        limit,
        ethers.MaxUint256,
      ]);
      break;
    }
    case "price": {
      const feed = sys.feeds[s.feed as "ETH"];
      const answer = ((await feed.latestAnswer()) * (s.bps as bigint)) / 10_000n;
      await send(out, "feed.updateAnswer", sys.deployer, feed, "updateAnswer", [answer]);
      break;
    }
    case "time":
      // The caller moved `timestamp`; every feed reports again at the new time (heartbeat 1 hour).
      for (const feed of [...Object.values(sys.feeds), ...Object.values(sys.volFeeds)]) {
        await send(out, "feed.refresh", sys.deployer, feed, "updateAnswer", [await feed.latestAnswer()]);
      }
      break;
    case "settleInterest":
      await send(out, "vault.settleInterest", owner, sys.vault, "settleInterest", [s.account]);
      break;
    case "chargeFees":
      await send(out, "vault.chargeFees", w.engine, sys.vault, "chargeFees", [
        s.account,
        s.toPool,
        s.toInsurance,
      ]);
      break;
    case "transferBalance":
      await send(out, "vault.transferBalance", w.engine, sys.vault, "transferBalance", [
        s.from,
        s.to,
        token,
        s.amount,
      ]);
      break;
    case "payOutQuote":
      await send(out, "vault.payOutQuote", w.engine, sys.vault, "payOutQuote", [
        s.account,
        ownersOf(w)[s.to].address,
        s.amount,
      ]);
      break;
    case "rateModel":
      await send(out, "vault.setInterestRateModel", sys.deployer, sys.vault, "setInterestRateModel", [
        s.model,
      ]);
      break;
    case "weights":
      await send(out, "vault.setCollateralWeights", sys.deployer, sys.vault, "setCollateralWeights", [
        token,
        s.initial,
        s.maintenance,
      ]);
      break;
    case "shockedWeight":
      await send(out, "vault.setShockedWeight", sys.deployer, sys.vault, "setShockedWeight", [
        token,
        s.weight,
      ]);
      break;
    case "depositCap":
      await send(out, "vault.setDepositCap", sys.deployer, sys.vault, "setDepositCap", [token, s.cap]);
      break;
    case "list": {
      const extra = w.tokens[4 + (s.extra as number)];
      await send(out, "vault.listCollateral", sys.deployer, sys.vault, "listCollateral", [
        extra,
        assetId("ETH"),
        s.weight,
        s.weight,
        s.cap,
        false,
      ]);
      break;
    }
    case "delistOrRelist":
      if (s.delist)
        await send(out, "vault.delistCollateral", sys.deployer, sys.vault, "delistCollateral", [token]);
      else await send(out, "vault.relistCollateral", sys.deployer, sys.vault, "relistCollateral", [token]);
      break;
    case "pause":
      // Paused for this step only (a vault left paused refused every later withdrawal of the run).
      await send(out, "vault.pause", sys.deployer, sys.vault, "pause", []);
      await send(out, "vault.withdraw", owner, sys.vault, "withdraw", [
        s.account,
        token,
        s.amount,
        owner.address,
      ]);
      await fund(out, w, owner, s.token, s.amount, false);
      await send(out, "vault.deposit", owner, sys.vault, "deposit", [s.account, token, s.amount]);
      await send(out, "vault.unpause", sys.deployer, sys.vault, "unpause", []);
      break;
    case "underwater": {
      // Carol opens a fresh account near her initial margin, ETH falls (s.drop / 10,000): an auction's book.
      const created = await send(out, "accounts.createAccount", sys.carol, sys.accounts, "createAccount", [
        MarginMode.CROSS,
      ]);
      if (created.status === 1) w.accountsOf[2].push(await sys.accounts.accountCount());
      const id = await sys.accounts.accountCount();
      await fund(out, w, sys.carol, 0, s.collateral, false);
      await send(out, "vault.deposit", sys.carol, sys.vault, "deposit", [id, token, s.collateral]);
      await send(out, "perps.trade", sys.carol, sys.perps, "trade", [
        id,
        sys.markets.ETH,
        s.size,
        ethers.MaxUint256,
        NO_DEADLINE,
      ]);
      const answer = ((await sys.feeds.ETH.latestAnswer()) * (s.drop as bigint)) / 10_000n;
      await send(out, "feed.updateAnswer", sys.deployer, sys.feeds.ETH, "updateAnswer", [answer]);
      const started = await send(out, "auction.startAuction", sys.keeper, sys.auction, "startAuction", [id]);
      if (started.status === 1) w.auctioned.push(id);
      break;
    }
    case "startAuction": {
      const started = await send(out, "auction.startAuction", sys.keeper, sys.auction, "startAuction", [
        s.account,
      ]);
      if (started.status === 1) w.auctioned.push(s.account);
      break;
    }
    case "bid":
      await send(out, "auction.bid", sys.bob, sys.auction, "bid", [
        s.account,
        s.bidder,
        s.fraction,
        ethers.MaxUint256,
      ]);
      break;
    case "absorb":
      await send(out, "auction.absorb", sys.deployer, sys.auction, "absorb", [s.account]);
      break;
    case "lpDeposit":
      await fund(out, w, sys.lp, 0, s.amount, false);
      await send(out, "token.approve", sys.lp, sys.usdc, "approve", [await sys.pool.getAddress(), s.amount]);
      await send(out, "pool.deposit", sys.lp, sys.pool, "deposit", [s.amount, sys.lp.address]);
      break;
    case "newAccount": {
      const created = await send(out, "accounts.createAccount", owner, sys.accounts, "createAccount", [
        MarginMode.CROSS,
      ]);
      if (created.status === 1) w.accountsOf[s.owner].push(await sys.accounts.accountCount());
      const id = await sys.accounts.accountCount();
      await fund(out, w, owner, 0, s.deposit, false);
      await send(out, "vault.deposit", owner, sys.vault, "deposit", [id, token, s.deposit]);
      break;
    }
    default:
      throw new Error(step.kind);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Observations: views and storage
// ------------------------------------------------------------------------------------------------

/** Arguments for a view's parameter, by its name and type (throws on one it does not know). */
async function argumentsFor(w: World, name: string, type: string): Promise<unknown[]> {
  const ids = await allAccountIds(w);
  if (type === "uint256" && name === "accountId") return ids;
  if (type === "uint256[]" && name === "accountIds") return [ids, [], [ids[1], ids[1]]];
  if (type === "address" && name === "token") return [...w.tokens, ethers.ZeroAddress];
  if (type === "uint256" && name === "amount") return [0n, 1n, 123_456_789n, 10n ** 18n + 7n, 2n ** 200n];
  if (type === "uint256" && name === "marginUsd")
    return [0n, 1n, 10n ** 18n, 12_345n * 10n ** 18n + 7n, 2n ** 200n];
  if (type === "bytes32" && name === "parameterSet")
    return throttleSets.map((x) => ethers.encodeBytes32String(x));
  if (type === "bytes32" && name === "id")
    return [ethers.ZeroHash, ...w.tokens.map((t) => zeroPadValue(t, 32))];
  throw new Error(`no arguments for a view parameter ${type} ${name}: extend argumentsFor`);
}

function product(lists: unknown[][]): unknown[][] {
  return lists.reduce<unknown[][]>(
    (acc, list) => acc.flatMap((prefix) => list.map((x) => [...prefix, x])),
    [[]],
  );
}

/** The view and pure functions of an ABI. */
const viewsOf = (iface: Interface): FunctionFragment[] =>
  iface.fragments.filter(
    (f): f is FunctionFragment =>
      f instanceof FunctionFragment && (f.stateMutability === "view" || f.stateMutability === "pure"),
  );

/** Every view of the vault's ABI, called with every argument combination: "name(args) → data". */
async function views(w: World): Promise<string[]> {
  const vault = w.sys.vault;
  const to = await vault.getAddress();
  const calls: { key: string; data: string }[] = [];
  for (const fn of viewsOf(vault.interface as unknown as Interface)) {
    const lists = await Promise.all(fn.inputs.map((p) => argumentsFor(w, p.name, p.type)));
    for (const args of product(lists)) {
      calls.push({
        key: `${fn.name}(${args.map((a) => String(a)).join(",")})`,
        data: (vault.interface as unknown as Interface).encodeFunctionData(fn, args),
      });
    }
  }
  const results = await Promise.all(
    calls.map(({ data }) =>
      ethers.provider.call({ to, data }).then(
        (r) => `ok ${r}`,
        (e) => `revert ${revertDataOf(e)}`,
      ),
    ),
  );
  return calls.map((c, i) => `${toKey(w, c.key)} → ${results[i]}`);
}

/** A view's key with addresses replaced by the token's index, so that both systems' keys match. */
function toKey(w: World, key: string): string {
  return w.tokens.reduce((k, t, i) => k.split(t).join(`token${i}`), key);
}

const slotOf = (key: string, slot: bigint): bigint =>
  BigInt(keccak256(coder.encode(["bytes32", "uint256"], [key, slot])));

/**
 * The vault's raw storage the layout lets us enumerate: every declared variable's slots, the dynamic
 * array's elements, and each mapping at the keys the run uses (account ids, tokens, the throttle's
 * parameter sets and ids).
 */
async function storage(w: World, layout: StorageLayout, throttleSets: string[]): Promise<string[]> {
  const vault = await w.sys.vault.getAddress();
  const ids = await allAccountIds(w);
  const tokenKeys = w.tokens.map((t, i) => ({ key: zeroPadValue(t, 32), label: `token${i}` }));
  const keysOf = (type: string): { key: string; label: string }[] => {
    if (type === "t_address") return tokenKeys;
    if (type === "t_uint256") return ids.map((id) => ({ key: toBeHex(id, 32), label: `#${id}` }));
    if (type === "t_bytes32") {
      return [
        ...throttleSets.map((s) => ({ key: ethers.encodeBytes32String(s), label: s })),
        { key: ethers.ZeroHash, label: "0" },
        ...tokenKeys,
      ];
    }
    throw new Error(`no keys for ${type}`);
  };
  const reads: { label: string; slot: bigint }[] = [];
  const walk = (type: string, slot: bigint, label: string) => {
    const t = layout.types[type];
    if (t.encoding === "mapping") {
      for (const k of keysOf(t.key!)) walk(t.value!, slotOf(k.key, slot), `${label}[${k.label}]`);
    } else if (t.encoding === "dynamic_array") {
      reads.push({ label: `${label}.length`, slot });
      reads.push({ label: `${label}.elements`, slot: -slot - 1n });
    } else {
      const n = Math.ceil(Number(t.numberOfBytes) / 32);
      for (let i = 0; i < n; i++) reads.push({ label: `${label}+${i}`, slot: slot + BigInt(i) });
    }
  };
  for (const v of layout.storage) if (v.offset === 0) walk(v.type, BigInt(v.slot), v.label);
  const lines: string[] = [];
  for (const r of reads) {
    if (r.slot < 0n) {
      const base = -r.slot - 1n;
      const length = BigInt(await ethers.provider.getStorage(vault, base));
      const first = BigInt(keccak256(toBeHex(base, 32)));
      for (let i = 0n; i < length; i++)
        lines.push(`${r.label}[${i}] = ${await ethers.provider.getStorage(vault, first + i)}`);
    } else {
      lines.push(`${r.label} = ${await ethers.provider.getStorage(vault, r.slot)}`);
    }
  }
  return lines;
}

// ------------------------------------------------------------------------------------------------
// The run
// ------------------------------------------------------------------------------------------------

interface Difference {
  seed: number;
  step: number;
  what: string;
  a: string;
  b: string;
}

/** A difference, long values cut to 120 characters around the first that differs. */
function printDifference(diff: Difference): void {
  let at = 0;
  while (at < diff.a.length && diff.a[at] === diff.b[at]) at++;
  const cut = (v: string) => (v.length <= 240 ? v : `…${v.slice(Math.max(0, at - 60), at + 60)}… (at ${at})`);
  console.log(
    `DIFF seed ${diff.seed} step ${diff.step} ${diff.what}\n  A ${cut(diff.a)}\n  B ${cut(diff.b)}`,
  );
}

function compareLists(
  seed: number,
  step: number,
  what: string,
  a: string[],
  b: string[],
  diffs: Difference[],
) {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const bi = b[i] === undefined ? "(none)" : toA(b[i]);
    if (a[i] !== bi) diffs.push({ seed, step, what: `${what} #${i}`, a: a[i] ?? "(none)", b: bi });
  }
}

async function runSeed(
  seed: number,
  builds: [VaultBuild, VaultBuild],
  layout: StorageLayout,
  throttleSets: string[],
  gas: Map<string, bigint[]>,
  counts: Map<string, [number, number]>,
  reverts: Map<string, number>,
): Promise<Difference[]> {
  await network.provider.send("hardhat_reset", []);
  timestamp = Number((await ethers.provider.getBlock("latest"))!.timestamp) + 10;
  const [deployer] = await ethers.getSigners();
  const nonceA = await deployer.getNonce();
  const a = await deployWith(builds[0], "A");
  const nonceB = await deployer.getNonce();
  const b = await deployWith(builds[1], "B");
  mapBtoA = addressMap(deployer.address, nonceA, nonceB, await deployer.getNonce());
  // Setup: the interest model (INTEREST_MODEL), each owner's first account with USDC, Bob's with WETH too
  // (a WETH-margined debtor).
  timestamp += 10;
  const setup: Step[] = [
    { kind: "rateModel", model: INTEREST_MODEL },
    { kind: "newAccount", owner: 0, deposit: 20_000n * USDC },
    { kind: "newAccount", owner: 1, deposit: 200_000n * USDC },
    { kind: "newAccount", owner: 2, deposit: 5_000n * USDC },
    { kind: "newAccount", owner: 3, deposit: 1n },
    { kind: "deposit", owner: 1, account: 0n, token: 1, amount: wad("10"), approveShort: false },
  ];
  const diffs: Difference[] = [];
  const d = new Draw(mulberry32(seed));
  for (let i = 0; i < setup.length + STEPS; i++) {
    let step = i < setup.length ? setup[i] : await drawStep(d, a);
    if (i < setup.length && step.kind === "deposit" && step.account === 0n)
      step = { ...step, account: a.accountsOf[1][0] };
    if (step.kind === "time") timestamp += step.seconds as number;
    const outA = await runStep(step, a);
    const outB = await runStep(step, b);
    const c = counts.get(step.kind) ?? [0, 0];
    const last = outA[outA.length - 1];
    counts.set(step.kind, [c[0] + 1, c[1] + (last?.status === 1 ? 1 : 0)]);
    const describe = (o: Outcome) =>
      `${o.label} status ${o.status} ${o.returnOrRevert} logs ${o.logs.join(" | ")}`;
    compareLists(seed, i, `${step.kind}: transactions`, outA.map(describe), outB.map(describe), diffs);
    for (let j = 0; j < Math.min(outA.length, outB.length); j++) {
      const key = `${outA[j].label}${outA[j].status === 1 ? "" : " (reverts)"}`;
      gas.set(key, [...(gas.get(key) ?? []), outA[j].executionGas - outB[j].executionGas]);
      if (outA[j].status !== 1) {
        const reason = `${outA[j].label} ${outA[j].returnOrRevert.slice(0, 10)}`;
        reverts.set(reason, (reverts.get(reason) ?? 0) + 1);
      }
    }
    compareLists(seed, i, `${step.kind}: views`, await views(a), await views(b), diffs);
    compareLists(
      seed,
      i,
      `${step.kind}: storage`,
      await storage(a, layout, throttleSets),
      await storage(b, layout, throttleSets),
      diffs,
    );
    for (const diff of diffs.slice(-MAX_REPORTED)) if (diff.step === i) printDifference(diff);
    if (diffs.length >= MAX_REPORTED) break;
  }
  await viewGas(a, b, gas, diffs, seed);
  return diffs;
}

/**
 * Each vault view sent as a transaction from Alice (first arguments of `argumentsFor`: account 0, the quote
 * token…) in both systems, so that the selector's dispatch shows: execution gas, configured − default.
 */
async function viewGas(a: World, b: World, gas: Map<string, bigint[]>, diffs: Difference[], seed: number) {
  for (const fn of viewsOf(a.sys.vault.interface as unknown as Interface)) {
    const outcomes: Outcome[][] = [[], []];
    for (const [i, w] of [a, b].entries()) {
      const args = await Promise.all(fn.inputs.map(async (p) => (await argumentsFor(w, p.name, p.type))[1]));
      await send(outcomes[i], `view ${fn.name}`, w.sys.alice, w.sys.vault, fn.name, args);
    }
    const [oa, ob] = [outcomes[0][0], outcomes[1][0]];
    if (oa.status !== ob.status || oa.returnOrRevert !== toA(ob.returnOrRevert)) {
      diffs.push({
        seed,
        step: -1,
        what: `view transaction ${fn.name}`,
        a: oa.returnOrRevert,
        b: ob.returnOrRevert,
      });
    }
    const key = `view ${fn.name}${oa.status === 1 ? "" : " (reverts)"}`;
    gas.set(key, [...(gas.get(key) ?? []), oa.executionGas - ob.executionGas]);
  }
}

function quantile(sorted: bigint[], q: number): bigint {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function main() {
  pinEveryTransaction();
  const configured = await configuredVaultBuild(hre);
  // VAULT_DIFF_MUTANT="text=>replacement" builds the default build from a mutated source (in memory): a run
  // that must report differences, proving the comparison can fail.
  const [from, to] = (process.env.VAULT_DIFF_MUTANT ?? "").split("=>");
  const mutant = to === undefined ? undefined : { from, to };
  const baseline = await vaultBuildWith(hre, "default settings", undefined, mutant);
  console.log(
    `configured build: ${JSON.stringify(configured.settings)}: ${codeSize(configured)} bytes of runtime code`,
  );
  console.log(
    `default build:    ${JSON.stringify(baseline.settings)}: ${codeSize(baseline)} bytes of runtime code`,
  );
  if (mutant) console.log(`MUTANT default build: "${from}" → "${to}"`);
  else if (!sameSources(configured, baseline))
    throw new Error("the two builds' metadata name different sources");
  console.log(
    `same sources: ${Object.keys(configured.metadata.sources).length} files, equal keccak256 in both metadata`,
  );
  if (configured.deployedBytecode === baseline.deployedBytecode)
    console.log("the two builds are the same bytecode");
  const source = (await hre.artifacts.getBuildInfo("contracts/core/CollateralVault.sol:CollateralVault"))!
    .input.sources["contracts/core/CollateralVault.sol"].content;
  throttleSets = [...new Set([...source.matchAll(/_throttle\("(\w+)"/g)].map((m) => m[1]))];

  const gas = new Map<string, bigint[]>();
  const counts = new Map<string, [number, number]>();
  const reverts = new Map<string, number>();
  const diffs: Difference[] = [];
  const started = Date.now();
  for (const seed of SEEDS) {
    diffs.push(
      ...(await runSeed(
        seed,
        [configured, baseline],
        baseline.storageLayout,
        throttleSets,
        gas,
        counts,
        reverts,
      )),
    );
    console.log(
      `seed ${seed}: ${STEPS} steps, ${diffs.length} differences so far (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  }
  console.log("\nsteps by kind (run, last transaction succeeded):");
  for (const [kind, [n, ok]] of [...counts].sort()) console.log(`  ${kind.padEnd(16)} ${n} ${ok}`);
  console.log("\nreverts by transaction and selector (equal in both systems unless reported above):");
  const abis = await Promise.all(
    ["MarginEngine", "LiquidationAuction", "PerpMarket", "LiquidityPool", "Accounts"].map(
      async (name) => (await hre.artifacts.readArtifact(name)).abi as never[],
    ),
  );
  const errorNames = new Map<string, string>();
  for (const abi of [configured.abi as never[], ...abis, ["error Error(string)", "error Panic(uint256)"]]) {
    new Interface(abi).forEachError((e) => errorNames.set(e.selector, e.name));
  }
  const nameOf = (selector: string) =>
    selector === "0x" ? "(no data)" : (errorNames.get(selector) ?? selector);
  for (const [reason, n] of [...reverts].sort()) {
    const [label, selector] = reason.split(" ");
    console.log(`  ${label.padEnd(32)} ${nameOf(selector).padEnd(36)} ${n}`);
  }
  console.log("\nexecution gas, configured − default build, by transaction (n, min, median, max):");
  for (const [key, deltas] of [...gas].sort()) {
    const sorted = [...deltas].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
    console.log(
      `  ${key.padEnd(40)} ${String(sorted.length).padStart(5)} ${[sorted[0], quantile(sorted, 0.5), sorted[sorted.length - 1]].map((g) => String(g).padStart(7)).join(" ")}`,
    );
  }
  console.log(`\n${diffs.length} differences over seeds ${SEEDS.join(",")} × ${STEPS} steps`);
  if (diffs.length > 0) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
