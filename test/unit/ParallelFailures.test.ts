/**
 * The worker-side rewrite of failures (`test/shared/parallelFailures.ts`): bigints leave a parallel
 * worker as strings, in a copy, so the test's own objects keep theirs (review round 67, row 164).
 * Imported here too, so that it is tested in a serial run (`npm run gas`) as well.
 */
import "../shared/parallelFailures";
import { expect, AssertionError } from "chai";
import Mocha from "mocha";

describe("Failures sent from a parallel worker", function () {
  it("leaves the test's own objects alone (a fixture shared with later tests kept its bigints)", function () {
    const fail = (Mocha.Runner.prototype as unknown as { fail: (t: unknown, e: unknown) => void }).fail;
    let reported: { actual?: unknown; expected?: unknown; message?: string } = {};
    const runner = {
      state: "running",
      failures: 0,
      fullStackTrace: true,
      emit: (_event: string, _test: unknown, e: typeof reported) => ((reported = e), true),
    };
    const test = { isPending: () => false, state: undefined as unknown };
    const shared = { limit: 5n, nested: { size: [1n, 2n] } };
    fail.call(runner, test, new AssertionError("expected", { actual: shared, expected: { limit: 4n } }));
    expect(shared.limit, "the fixture's bigint").to.equal(5n);
    expect(shared.nested.size).to.deep.equal([1n, 2n]);
    // The failure still leaves the worker as JSON, with its numbers and message.
    expect(JSON.stringify(reported.actual)).to.equal('{"limit":"5n","nested":{"size":["1n","2n"]}}');
    expect(reported.message).to.equal("expected");
    expect(reported).to.be.instanceOf(AssertionError);
    expect(test.state).to.equal("failed");
    // A frozen value (an ethers Result is read-only) is written as strings too.
    const frozen = Object.freeze({ amount: 7n });
    fail.call(runner, test, new AssertionError("expected", { actual: frozen, expected: 8n }));
    expect(JSON.stringify(reported.actual)).to.equal('{"amount":"7n"}');
    expect(reported.expected).to.equal("8n");
    expect(frozen.amount).to.equal(7n);
  });
});
