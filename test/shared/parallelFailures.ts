/**
 * Loaded by mocha in each parallel worker (hardhat.config.ts `mocha.require`).
 *
 * A worker sends its test results to the main process as JSON, and JSON has no bigint: a failed
 * `expect(4n).to.equal(5n)` reached the reporter as "Uncaught error outside test suite: Do not know how
 * to serialize a BigInt", naming neither the test nor the numbers, and taking every other result of the
 * file with it. Failures now leave the worker with their bigint values written as strings ("4n"). Only
 * the failure objects change: the code under test still meets JSON's real rules.
 */
import Mocha from "mocha";

type Fail = (this: Mocha.Runner, test: Mocha.Runnable, err: unknown, ...rest: unknown[]) => void;

const runner = Mocha.Runner.prototype as unknown as { fail: Fail };
const fail = runner.fail;

runner.fail = function (test, err, ...rest) {
  fail.call(this, test, withoutBigInts(err, new Set()), ...rest);
};

/**
 * `value` with every bigint inside it written as a string. Objects are changed in place (an error keeps
 * its class, message and stack); one that refuses a write, such as an ethers `Result` (read-only), is
 * replaced by a plain copy. Unchanged values come back as they are.
 */
function withoutBigInts(value: unknown, seen: Set<object>): unknown {
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value !== "object" || value === null || seen.has(value)) return value;
  seen.add(value);
  const record = value as Record<string, unknown>;
  const changed = Object.keys(record)
    .map((key) => [key, withoutBigInts(record[key], seen)] as const)
    .filter(([key, field]) => field !== record[key]);
  if (changed.length === 0) return value;
  try {
    for (const [key, field] of changed) record[key] = field;
    return value;
  } catch {
    const copy = (Array.isArray(value) ? [] : {}) as Record<string, unknown>;
    for (const key of Object.keys(record)) copy[key] = record[key];
    for (const [key, field] of changed) copy[key] = field;
    return copy;
  }
}
