/**
 * Fixtures of the SDK's option-settlement specs (review round 167: test/sdk/SdkSettlement.test.ts, and
 * its mutation test, round 171: test/sdk/SdkSettlementMutants.test.ts): a book of six ETH series held
 * long by Alice and short by Bob, taken past expiry and given its settlement round, and a wallet client
 * that records what it estimates and sends.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { OptionSettlement } from "../../sdk/src";
import { MarginMode, openAccount } from "./system";
import { assetId } from "./oracles";
import { DAY, deployOptionsSystem, fromNow, listSeries, tradeOption } from "./options";
import { type WalletOptions, walletClient } from "./sdk";

export const USDC = 10n ** 6n;
export const ETH = assetId("ETH");
export const usd8 = (dollars: bigint) => dollars * 10n ** 8n; // a mock feed's 8-decimal answer
/** The settlement round's answer: 3,000.12345678 USD, not a whole number of cents. */
export const SETTLEMENT_ANSWER = 300_012_345_678n;
export const SETTLEMENT_PRICE = SETTLEMENT_ANSWER * 10n ** 10n;
/** Contracts per position: not a whole number, so that each side's rounding shows. */
export const SIZE = 1_234_567_890_123_456_789n;

/**
 * Alice long and Bob short `SIZE` contracts of six ETH series expiring in a day: in the money at the
 * settlement price (call 2,900, put 3,100), out of it (call 3,100, put 2,900), and struck at it exactly
 * (a call and a put at 3,000.12345678). Alice's client is a wallet that records its estimates and sends.
 */
export async function book() {
  const sys = await deployOptionsSystem();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
  const bob = await openAccount(sys, sys.bob, MarginMode.CROSS, [[sys.usdc, 200_000n * USDC]]);
  const expiry = await fromNow(DAY);
  const terms: [string, string | bigint, boolean][] = [
    ["ITM call", "2900", true],
    ["ITM put", "3100", false],
    ["OTM call", "3100", true],
    ["OTM put", "2900", false],
    ["call at strike", SETTLEMENT_PRICE, true],
    ["put at strike", SETTLEMENT_PRICE, false],
  ];
  const series: { name: string; id: bigint }[] = [];
  for (const [name, strike, isCall] of terms) {
    const id = await listSeries(sys.options, "ETH", strike, expiry, isCall);
    await tradeOption(sys.options, sys.alice, alice, id, SIZE);
    await tradeOption(sys.options, sys.bob, bob, id, -SIZE);
    series.push({ name, id });
  }
  return { sys, alice, bob, expiry, series };
}

export type Book = Awaited<ReturnType<typeof book>>;

/** `book` a minute after expiry, with no ETH round since expiry. */
export async function expiredBook() {
  const f = await book();
  await time.increaseTo(f.expiry + 60n);
  return f;
}

/** `expiredBook`, then ETH's first round after expiry at 3,000.12345678. */
export async function provableBook() {
  const f = await expiredBook();
  await time.increase(30);
  await (await f.sys.feeds.ETH.updateAnswer(SETTLEMENT_ANSWER)).wait();
  return { ...f, round: await f.sys.feeds.ETH.latestRound() };
}

/**
 * A wallet client for Alice recording what it estimates and sends (`beforeSend`: what happens on chain
 * between an estimate and its send).
 */
export async function recordingClient(f: Pick<Book, "sys">, opts: Pick<WalletOptions, "beforeSend"> = {}) {
  const estimates: bigint[] = [];
  const sentGas: bigint[] = [];
  const client = await walletClient(f.sys, { ...opts, estimates, sentGas });
  return { client, estimates, sentGas };
}

/** Expects `action` to throw the SDK error `check` accepts, with no transaction sent by `who`. */
export async function refusedUnsent(
  who: string,
  action: () => Promise<unknown>,
  check: (e: unknown) => void,
) {
  const nonce = await ethers.provider.getTransactionCount(who);
  const block = await ethers.provider.getBlockNumber();
  await action().then(
    () => expect.fail("should be refused"),
    (e: unknown) => check(e),
  );
  expect(await ethers.provider.getTransactionCount(who)).to.equal(nonce);
  expect(await ethers.provider.getBlockNumber()).to.equal(block);
}

/** The price, round and position of a settlement known to be provable. */
export function provable(s: OptionSettlement) {
  if (s.status !== "provable") throw new Error(`expected provable, got ${s.status}`);
  return s;
}
