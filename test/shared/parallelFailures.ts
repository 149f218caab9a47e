/**
 * Loaded by mocha in each parallel worker (hardhat.config.ts `mocha.require`).
 *
 * A worker sends its test results to the main process as JSON, and JSON has no bigint: a failed
 * `expect(4n).to.equal(5n)` reached the reporter as "Uncaught error outside test suite: Do not know how
 * to serialize a BigInt", naming neither the test nor the numbers. Failures now leave the worker with
 * their bigint values written as strings ("4n"), in a copy of the failure: the objects it pointed at (the
 * test's own) are left as they were. The code under test still meets JSON's real rules.
 */
import Mocha from "mocha";

type Fail = (this: Mocha.Runner, test: Mocha.Runnable, err: unknown, ...rest: unknown[]) => void;

const runner = Mocha.Runner.prototype as unknown as { fail: Fail };
const fail = runner.fail;

runner.fail = function (test, err, ...rest) {
  // A copy of the failure: `actual` and `expected` are often the test's own objects (a fixture later
  // tests share), which a rewrite in place turned into strings for every later test (review round 67,
  // row 164); a copy also takes read-only and frozen values (an ethers `Result`).
  fail.call(this, test, holdsBigInt(err, new Set()) ? withBigIntsAsStrings(err, new Map()) : err, ...rest);
};

function holdsBigInt(value: unknown, seen: Set<object>): boolean {
  if (typeof value === "bigint") return true;
  if (typeof value !== "object" || value === null || seen.has(value)) return false;
  seen.add(value);
  return Object.keys(value).some((key) => holdsBigInt((value as Record<string, unknown>)[key], seen));
}

/** A copy of plain data with its bigints written as strings ("4n"); a cycle points into the copy. */
function withBigIntsAsStrings(value: unknown, copies: Map<object, unknown>): unknown {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value !== "object" || value === null) return value;
  if (copies.has(value)) return copies.get(value);
  // Same prototype and own fields, enumerable or not (an Error's message and stack are not).
  const copy: Record<string, unknown> = Array.isArray(value)
    ? []
    : Object.create(Object.getPrototypeOf(value));
  copies.set(value, copy);
  for (const key of Object.getOwnPropertyNames(value)) {
    if (Array.isArray(value) && key === "length") continue;
    const enumerable = Object.getOwnPropertyDescriptor(value, key)?.enumerable ?? true;
    const field = withBigIntsAsStrings((value as Record<string, unknown>)[key], copies);
    Object.defineProperty(copy, key, { value: field, enumerable, writable: true, configurable: true });
  }
  return copy;
}
