/**
 * Loaded by mocha in each parallel worker (hardhat.config.ts `mocha.require`).
 *
 * A worker sends its test results to the main process as JSON, and JSON has no bigint: a failed
 * `expect(4n).to.equal(5n)` reached the reporter as "Uncaught error outside test suite: Do not know how
 * to serialize a BigInt", naming neither the test nor the numbers. Failures now leave the worker with
 * their bigint values written as strings ("4n"). Only the failure objects change: the code under test
 * still meets JSON's real rules.
 */
import Mocha from "mocha";

type Fail = (this: Mocha.Runner, test: Mocha.Runnable, err: unknown, ...rest: unknown[]) => void;

const runner = Mocha.Runner.prototype as unknown as { fail: Fail };
const fail = runner.fail;

runner.fail = function (test, err, ...rest) {
  writeBigIntsAsStrings(err, new Set());
  fail.call(this, test, err, ...rest);
};

function writeBigIntsAsStrings(value: unknown, seen: Set<object>): void {
  if (typeof value !== "object" || value === null || seen.has(value)) return;
  seen.add(value);
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const field = record[key];
    if (typeof field === "bigint") {
      try {
        record[key] = `${field}n`;
      } catch {
        // A frozen or read-only field stays as it is; the report may then fail as before.
      }
    } else {
      writeBigIntsAsStrings(field, seen);
    }
  }
}
