import { expect } from "chai";
import { ethers, network } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Signer } from "ethers";
import {
  type XMarginClient,
  type XMarginError,
  accountHealth,
  decodeError,
  getAccountState,
  getHealth,
  isXMarginError,
  maxWithdrawable,
  preview,
  toHealth,
} from "../../sdk/src";
import { MarginMode, type System, atLatestTimestamp, deploySystem, openAccount, wad } from "../shared/system";
import { trade } from "../shared/perps";
import { configureSequencer, setFeedPrice } from "../shared/oracles";
import { sdkClient } from "../shared/sdk";

/**
 * The SDK against the chain during price-feed outages (review round 42): random accounts (flat, with
 * quote debt, positions, an auction, an ERC-4626 share), random failures (stale or out-of-bounds price
 * feeds, the quote's included, the L2 sequencer down or in its grace period) and random withdrawals and
 * deposits by random senders. Every preview, `maxWithdrawable` and health must be what the chain does:
 * success, or the revert's name and arguments. PRICE_OUTAGE_CASES (default 40; 60 until session 48, cut for `npm test`'s 10 minutes) and PRICE_OUTAGE_SEED
 * make the campaign longer or replay one.
 */
const USDC = 10n ** 6n;
const BTC = 10n ** 8n;

type Outcome = { ok: true } | { ok: false; name: string; args: unknown };

/** What the chain does with `send` at the latest block's timestamp; the state is then rolled back. */
async function onChain(send: () => Promise<{ wait(): Promise<unknown> }>): Promise<Outcome> {
  const snapshot = await network.provider.send("evm_snapshot", []);
  await atLatestTimestamp();
  try {
    await (await send()).wait();
    return { ok: true };
  } catch (e) {
    const d = decodeError(e);
    if (!d) throw e;
    return { ok: false, name: d.name, args: d.args };
  } finally {
    await network.provider.send("evm_revert", [snapshot]);
  }
}

/** The SDK's answer: the predicted revert (or success), or the error it throws. */
async function sdkOutcome<T>(
  run: () => Promise<T>,
  pick: (r: T) => XMarginError | undefined,
): Promise<
  { threw: false; outcome: Outcome; result: T } | { threw: true; outcome: Outcome; error: unknown }
> {
  try {
    const result = await run();
    const r = pick(result);
    return { threw: false, outcome: r ? { ok: false, name: r.name, args: r.args } : { ok: true }, result };
  } catch (error) {
    if (!isXMarginError(error)) throw error;
    return { threw: true, outcome: { ok: false, name: error.name, args: error.args }, error };
  }
}

const PRICE_SYMBOLS = ["USDC", "ETH", "BTC"] as const;
type PriceSymbol = (typeof PRICE_SYMBOLS)[number];
type FeedFault = "ok" | "stale" | "high" | "low";
type SequencerFault = "none" | "down" | "grace";

/** The feeds' faults: stale ones left an hour behind (every other feed posted again), bounds broken. */
async function breakFeeds(sys: System, faults: Record<PriceSymbol, FeedFault>, seq: SequencerFault) {
  const anyStale = PRICE_SYMBOLS.some((s) => faults[s] === "stale");
  if (anyStale) {
    await time.increase(3_601);
    for (const feed of [
      ...PRICE_SYMBOLS.filter((s) => faults[s] !== "stale").map((s) => sys.feeds[s]),
      sys.volFeeds.ETH,
      sys.volFeeds.BTC,
    ])
      await (await feed.updateAnswer(await feed.latestAnswer())).wait();
  }
  const base: Record<PriceSymbol, number> = { USDC: 1, ETH: 3000, BTC: 60000 };
  for (const s of PRICE_SYMBOLS) {
    // addPriceFeed's bounds: [price/1000, price·1000].
    if (faults[s] === "high") await setFeedPrice(sys.feeds[s], String(base[s] * 2000));
    if (faults[s] === "low") await setFeedPrice(sys.feeds[s], String(base[s] / 4000));
  }
  if (seq === "down") await configureSequencer(sys.router, 1, 0n);
  if (seq === "grace") await configureSequencer(sys.router, 0, 600n);
}

/**
 * Accounts: flat ones (USDC, WETH, WBTC and sWETH; no quote; nothing; quote only; flat with quote debt),
 * at-risk ones (a perp; a perp on WETH collateral with quote debt; one in auction). Keeper is every
 * owner's operator, lp a stranger. Everyone holds and has approved plenty of every token.
 */
async function world() {
  const sys = await deploySystem();
  const vault = await sys.vault.getAddress();
  const people = [sys.alice, sys.bob, sys.carol, sys.keeper, sys.lp];
  for (const p of people) {
    for (const t of [sys.usdc, sys.weth, sys.wbtc]) {
      await (
        await t.mint(p.address, t === sys.usdc ? 10n ** 15n : t === sys.weth ? wad("1000000") : 10n ** 14n)
      ).wait();
      await (await t.connect(p).approve(vault, ethers.MaxUint256)).wait();
    }
    await (await sys.weth.connect(p).approve(sys.sweth, ethers.MaxUint256)).wait();
    await (await sys.sweth.connect(p).deposit(wad("100"), p.address)).wait();
    await (await sys.sweth.connect(p).approve(vault, ethers.MaxUint256)).wait();
  }
  const open = async (owner: Signer, deposits: [string, bigint][]) => {
    const id = await openAccount(sys, owner, MarginMode.CROSS);
    for (const [t, amount] of deposits) await (await sys.vault.connect(owner).deposit(id, t, amount)).wait();
    return id;
  };
  const [usdc, weth, wbtc, sweth] = await Promise.all(
    [sys.usdc, sys.weth, sys.wbtc, sys.sweth].map((t) => t.getAddress()),
  );
  const ids = {
    flatMixed: await open(sys.alice, [
      [usdc, 10_000n * USDC],
      [weth, wad("2")],
      [wbtc, BTC / 10n],
      [sweth, wad("1")],
    ]),
    flatNoQuote: await open(sys.alice, [
      [wbtc, BTC / 20n],
      [sweth, wad("3")],
      [weth, wad("1")],
    ]),
    flatEmpty: await open(sys.carol, []),
    flatQuote: await open(sys.bob, [[usdc, 5_000n * USDC]]),
    flatDebt: await open(sys.carol, [[weth, wad("5")]]),
    perp: await open(sys.bob, [
      [usdc, 10_000n * USDC],
      [wbtc, BTC / 100n],
    ]),
    perpDebt: await open(sys.bob, [[weth, wad("10")]]),
    auctioned: await open(sys.carol, [[usdc, 10_000n * USDC]]),
  };
  await (await trade(sys.perps, sys.carol, ids.flatDebt, sys.markets.ETH, wad("1"))).wait();
  await (await trade(sys.perps, sys.carol, ids.flatDebt, sys.markets.ETH, -wad("1"))).wait();
  await (await trade(sys.perps, sys.bob, ids.perp, sys.markets.ETH, wad("1"))).wait();
  await (await trade(sys.perps, sys.bob, ids.perpDebt, sys.markets.BTC, -wad("0.2"))).wait();
  await (await trade(sys.perps, sys.carol, ids.auctioned, sys.markets.ETH, wad("20"))).wait();
  await setFeedPrice(sys.feeds.ETH, "2720");
  await (await sys.auction.connect(sys.keeper).startAuction(ids.auctioned)).wait();
  for (const owner of [sys.alice, sys.bob, sys.carol])
    await (await sys.accounts.connect(owner).setApprovalForAll(sys.keeper.address, true)).wait();
  return { sys, ids, tokens: { USDC: usdc, WETH: weth, WBTC: wbtc, sWETH: sweth } };
}

describe("SDK during a price outage, against the chain (property)", function () {
  it("sanity: the world's accounts are what they claim", async function () {
    const { sys, ids, tokens } = await loadFixture(world);
    expect(await sys.vault.balanceOf(ids.flatDebt, tokens.USDC)).to.be.lessThan(0n);
    expect(await sys.vault.balanceOf(ids.perpDebt, tokens.USDC)).to.be.lessThan(0n);
    expect(await sys.engine.accountMarkets(ids.flatDebt)).to.deep.equal([]);
    expect(await sys.auction.isFrozen(ids.auctioned)).to.equal(true);
    expect(await sys.vault.balanceOf(ids.flatNoQuote, tokens.USDC)).to.equal(0n);
  });

  // The property's cases (PRICE_OUTAGE_CASES, 40) run in specs of CASES_PER_SPEC, in order, drawn from one
  // seeded sequence: the same cases as one spec of 60, each spec with its own two minutes. As one spec, 60
  // cases took more than its 120 s on a loaded 2-core machine (review round 133: 3 of 3 runs under load);
  // the abandoned spec ran on and broke the fixture snapshots of the two specs after it.
  const CASES = Number(process.env.PRICE_OUTAGE_CASES ?? 40);
  const CASES_PER_SPEC = 10;
  let seed = Number(process.env.PRICE_OUTAGE_SEED ?? 42);
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const stats: Record<string, number> = {};
  const count = (k: string) => (stats[k] = (stats[k] ?? 0) + 1);
  const show = (x: unknown) => JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  for (let first = 0; first < CASES; first += CASES_PER_SPEC) {
    const end = Math.min(first + CASES_PER_SPEC, CASES);
    it(`property: previews, maxWithdrawable and health during random outages match the chain (cases ${first}–${end - 1} of ${CASES})`, async function () {
      this.timeout(120_000);
      const mismatches: string[] = [];
      for (let n = first; n < end; n++) {
        const { sys, ids, tokens } = await loadFixture(world);
        const faults = {
          USDC: pick(["ok", "ok", "stale", "high", "low"] as const),
          ETH: pick(["ok", "ok", "stale", "high", "low"] as const),
          BTC: pick(["ok", "ok", "stale", "high", "low"] as const),
        };
        const seq = pick(["none", "none", "none", "down", "grace"] as const);
        await breakFeeds(sys, faults, seq);
        // Sometimes a token's cap is cut to what the vault holds: every deposit of it is past the cap.
        const capped = pick([undefined, undefined, "USDC", "WETH", "WBTC", "sWETH"] as const);
        if (capped) {
          const total = await sys.vault.totalDeposits(tokens[capped]);
          await (await sys.vault.setDepositCap(tokens[capped], total)).wait();
        }
        const label = `case ${n} ${show({ faults, seq, capped })}`;
        const names = Object.keys(ids) as (keyof typeof ids)[];
        const owners: Record<string, Signer> = {};
        for (const name of names)
          owners[name] = await ethers.getSigner(await sys.accounts.ownerOf(ids[name]));
        const clients = new Map<Signer, XMarginClient>();
        const clientOf = async (s: Signer) => {
          if (!clients.has(s)) clients.set(s, await sdkClient(sys, s));
          return clients.get(s)!;
        };
        // Nothing at risk (no position, no quote debt, no auction): the vault lets these withdraw unpriced.
        const flat = (name: string) => name.startsWith("flat") && name !== "flatDebt";

        // Health: getHealth (the engine) against the snapshot's accountHealth.
        for (const name of names) {
          const client = await clientOf(sys.keeper);
          const chain = await sdkOutcome(
            () => getHealth(client, { accountId: ids[name] }),
            () => undefined,
          );
          const sdk = await sdkOutcome(
            async () => toHealth(accountHealth(await getAccountState(client, { accountId: ids[name] }))),
            () => undefined,
          );
          count(`health ${chain.outcome.ok ? "ok" : "revert"}`);
          if (show(chain.outcome) !== show(sdk.outcome)) {
            mismatches.push(`${label} health ${name}: chain ${show(chain.outcome)} sdk ${show(sdk.outcome)}`);
          } else if (!chain.threw && !sdk.threw && show(chain.result) !== show(sdk.result))
            mismatches.push(`${label} health ${name}: chain ${show(chain.result)} sdk ${show(sdk.result)}`);
        }

        // maxWithdrawable: m goes through, m + 1 does not (unless m is the balance or the vault's total).
        for (let k = 0; k < 2; k++) {
          const name = pick(names);
          const token = pick(["USDC", "WETH", "WBTC", "sWETH"] as const);
          const owner = owners[name];
          const ownerClient = await clientOf(owner);
          const sdk = await sdkOutcome(
            () => maxWithdrawable(ownerClient, { accountId: ids[name], token }),
            () => undefined,
          );
          if (sdk.threw) {
            // An at-risk account's margin check meets the failed feed: the chain refuses even one unit.
            count("maxWithdrawable threw");
            const held = await sys.vault.balanceOf(ids[name], tokens[token]);
            const one =
              held > 0n
                ? await onChain(() => sys.vault.connect(owner).withdraw(ids[name], tokens[token], 1n, owner))
                : undefined;
            if (flat(name) || (one !== undefined && show(one) !== show(sdk.outcome)))
              mismatches.push(
                `${label} maxWithdrawable ${name} ${token} threw ${show(sdk.outcome)}, chain ${show(one)}`,
              );
            continue;
          }
          const m = sdk.result as bigint;
          const balance = await sys.vault.balanceOf(ids[name], tokens[token]);
          const total = await sys.vault.totalDeposits(tokens[token]);
          const send = (amount: bigint) =>
            onChain(() => sys.vault.connect(owner).withdraw(ids[name], tokens[token], amount, owner));
          count(`maxWithdrawable ${m === 0n ? "zero" : m === balance ? "balance" : "partial"}`);
          if (m > 0n) {
            const r = await send(m);
            if (!r.ok) mismatches.push(`${label} maxWithdrawable ${name} ${token} = ${m} reverts ${show(r)}`);
          }
          if (balance > 0n && m < balance && m < total) {
            const r = await send(m + 1n);
            if (r.ok)
              mismatches.push(`${label} maxWithdrawable ${name} ${token} = ${m} but ${m + 1n} goes through`);
          }
        }

        // Random withdrawals and deposits, previewed by a random sender, then sent by it.
        for (let k = 0; k < 6; k++) {
          const name = pick(names);
          const id = ids[name];
          const owner = owners[name];
          const sender = pick([owner, owner, sys.keeper, sys.lp]);
          const token = pick(["USDC", "USDC", "WETH", "WBTC", "sWETH"] as const);
          const balance = await sys.vault.balanceOf(id, tokens[token]);
          const pos = balance > 0n ? balance : 0n;
          const unit = token === "USDC" ? USDC : token === "WBTC" ? BTC / 1000n : wad("0.01");
          const amount = pick([0n, unit, pos / 2n, pos, pos + 1n, 1n, 1_000n * unit]);
          const client = await clientOf(sender);
          let sdk, chain: Outcome, what: string;
          if (rand() < 0.5) {
            const to = pick([
              undefined,
              undefined,
              ethers.ZeroAddress,
              sys.lp.address,
              await owner.getAddress(),
            ]);
            what = `withdraw ${name} ${token} ${amount} to ${to} by ${await sender.getAddress()}`;
            sdk = await sdkOutcome(
              () => preview(client, id, { type: "withdraw", token, amount, to }),
              (r) => r.revert,
            );
            chain = await onChain(() =>
              sys.vault.connect(sender).withdraw(id, tokens[token], amount, to ?? owner),
            );
          } else {
            what = `deposit ${name} ${token} ${amount} by ${await sender.getAddress()}`;
            sdk = await sdkOutcome(
              () => preview(client, id, { type: "deposit", token, amount }),
              (r) => r.revert,
            );
            chain = await onChain(() => sys.vault.connect(sender).deposit(id, tokens[token], amount));
          }
          count(`${what.split(" ")[0]} ${chain.ok ? "ok" : chain.name}`);
          if (show(sdk.outcome) === show(chain)) continue;
          mismatches.push(
            `${label} ${what}: sdk ${sdk.threw ? "threw " : ""}${show(sdk.outcome)} chain ${show(chain)}`,
          );
        }
      }
      if (end === CASES) console.log(`    ${CASES} cases:`, show(stats));
      expect(mismatches, mismatches.slice(0, 8).join("\n")).to.deep.equal([]);
    });
  }

  // Review round 42, finding 1: a flat account's deposit of a token whose price feed fails and that it does not hold yet
  // (the quote at a zero balance included) threw the feed's error from `preview`, though the vault takes
  // it without a price (and refuses it past the cap with DepositCapExceeded, NotAuthorized from a stranger).
  it("previews a flat account's deposit of a token whose feed fails, as the vault takes it", async function () {
    const { sys, ids, tokens } = await loadFixture(world);
    await breakFeeds(sys, { USDC: "high", ETH: "stale", BTC: "ok" }, "none");
    const carol = await sdkClient(sys, sys.carol);
    const bob = await sdkClient(sys, sys.bob);
    const cases = [
      // Carol's empty account: USDC (its feed 2,000 USD, past its 1,000 bound) and WETH (stale).
      { client: carol, signer: sys.carol, id: ids.flatEmpty, token: "USDC", amount: 100n * USDC },
      { client: carol, signer: sys.carol, id: ids.flatEmpty, token: "WETH", amount: wad("1") },
      // A stranger's WETH into it: NotAuthorized, as the vault says.
      { client: bob, signer: sys.bob, id: ids.flatEmpty, token: "WETH", amount: wad("1") },
    ] as const;
    for (const c of cases) {
      const r = await preview(c.client, c.id, { type: "deposit", token: c.token, amount: c.amount });
      const chain = await onChain(() => sys.vault.connect(c.signer).deposit(c.id, tokens[c.token], c.amount));
      expect(r.revert ? { ok: false, name: r.revert.name, args: r.revert.args } : { ok: true }).to.deep.equal(
        chain,
      );
      // The vault values nothing before it; after it, engine.health reverts with the feed's error.
      expect(r.before.equityInitial).to.equal(0n);
      expect(r.healthError?.name).to.equal(c.token === "USDC" ? "PriceOutOfBounds" : "StalePrice");
    }
    // Past the cap: a quote deposit reads the health before it (which prices nothing here), so the
    // vault refuses it with DepositCapExceeded, not the feed's error.
    await (await sys.vault.setDepositCap(tokens.USDC, await sys.vault.totalDeposits(tokens.USDC))).wait();
    const total = await sys.vault.totalDeposits(tokens.USDC);
    const past = await preview(carol, ids.flatEmpty, { type: "deposit", token: "USDC", amount: 100n * USDC });
    expect(past.revert?.name).to.equal("DepositCapExceeded");
    expect(past.revert?.args).to.deep.include({ totalAfter: total + 100n * USDC, cap: total });
    expect(
      await onChain(() => sys.vault.connect(sys.carol).deposit(ids.flatEmpty, tokens.USDC, 100n * USDC)),
    ).to.deep.equal({ ok: false, name: past.revert!.name, args: past.revert!.args });
  });

  // Review round 42, finding 2: an account with something at risk threw the error of its market's underlying (read first,
  // with the volatility), while the engine meets the collateral's first: the quote's feed out of bounds
  // and the ETH feed stale, Bob's snapshot threw StalePrice(ETH), his health and withdrawals revert with
  // PriceOutOfBounds(USDC).
  it("throws, for an account at risk, the error the engine meets first", async function () {
    const { sys, ids, tokens } = await loadFixture(world);
    await breakFeeds(sys, { USDC: "high", ETH: "stale", BTC: "high" }, "none");
    const client = await sdkClient(sys, sys.bob);
    for (const id of [ids.perp, ids.perpDebt]) {
      const chain = await onChain(() => sys.vault.connect(sys.bob).withdraw(id, tokens.WETH, 1n, sys.bob));
      const engine = await sdkOutcome(
        () => getHealth(client, { accountId: id }),
        () => undefined,
      );
      const sdk = await sdkOutcome(
        async () => accountHealth(await getAccountState(client, { accountId: id })),
        () => undefined,
      );
      expect(engine.outcome).to.deep.equal({
        ok: false,
        name: "PriceOutOfBounds",
        args: {
          asset: ethers.encodeBytes32String("USDC"),
          price: wad("2000"),
          minPrice: wad("0.001"),
          maxPrice: wad("1000"),
        },
      });
      expect(sdk.outcome).to.deep.equal(engine.outcome);
      // perp holds no WETH (InsufficientBalance); perpDebt holds 10: the margin check meets the feed first.
      if (id === ids.perpDebt) expect(chain).to.deep.equal(engine.outcome);
    }
  });

  // Review round 42, finding 3: an at-risk account's snapshot threw the feed's error, also for actions the chain decides
  // without a price: a quote cure into an account in auction, a withdrawal from it (AccountFrozen).
  it("previews an at-risk account's cure and frozen withdrawal while a feed fails, as the chain decides them", async function () {
    const { sys, ids, tokens } = await loadFixture(world);
    await breakFeeds(sys, { USDC: "ok", ETH: "stale", BTC: "ok" }, "none");
    const carol = await sdkClient(sys, sys.carol);
    const cure = await preview(carol, ids.auctioned, {
      type: "deposit",
      token: "USDC",
      amount: 1_000n * USDC,
    });
    expect(cure.revert).to.equal(undefined);
    expect(cure.healthError?.name).to.equal("StalePrice");
    expect(
      await onChain(() => sys.vault.connect(sys.carol).deposit(ids.auctioned, tokens.USDC, 1_000n * USDC)),
    ).to.deep.equal({ ok: true });
    const out = await preview(carol, ids.auctioned, { type: "withdraw", token: "USDC", amount: USDC });
    expect({ name: out.revert?.name, args: out.revert?.args }).to.deep.equal({
      name: "AccountFrozen",
      args: { accountId: ids.auctioned },
    });
    expect(
      await onChain(() => sys.vault.connect(sys.carol).withdraw(ids.auctioned, tokens.USDC, USDC, sys.carol)),
    ).to.deep.equal({ ok: false, name: "AccountFrozen", args: { accountId: ids.auctioned } });
  });
});
