/**
 * The keeper's sender against a scripted node (`ScriptedNode`): what it answers is what geth, Nethermind
 * or Erigon answer, and the errors are those ethers' JsonRpcProvider makes of their error answers. After a
 * restart, a transaction the run did not send is waited behind before it is replaced, then offered 9/8 of
 * what was refused or the cap (review round 67; docs/reliability.md §4, rows 159–162).
 */
import { expect } from "chai";
import { JsonRpcProvider } from "ethers";
import { PENDING_REPROBE_MS, type SendResult } from "../../scripts/keeper/sender";
import { GWEI, ScriptedNode, TARGET, scriptedSender } from "../shared/scriptedNode";

/** What ethers' JsonRpcProvider throws for a node's error answer to eth_sendRawTransaction (or `method`). */
function ethersErrorFor(message: string, code = -32000, method = "eth_sendRawTransaction"): Error {
  const rpc = new JsonRpcProvider("http://127.0.0.1:1", 1, { staticNetwork: true });
  const params = method === "eth_call" ? [{ to: TARGET, data: "0x" }, "pending"] : ["0x02"];
  const payload = { method, params, id: 1, jsonrpc: "2.0" as const };
  const error = rpc.getRpcError(payload, { id: 1, error: { code, message } });
  rpc.destroy();
  return error;
}

function senderOn(node: ScriptedNode, opts: { txTimeoutMs?: number; capGwei?: bigint } = {}) {
  const { sender, lines } = scriptedSender(node, opts);
  const send = (): Promise<SendResult> => sender.send("startAuction", { to: TARGET, data: "0x" });
  return { sender, send, lines };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("TxSender after a restart", function () {
  it("does not replace a waiting transaction it does not know the moment it sees one (about to be mined, or the operator's)", async function () {
    // Nonce 7 waits (the operator's deposit from the keeper's key, say: deploy/README asks for one), at
    // fees that will get it into the next block. The keeper's next send used to take nonce 7 at 9/8 of
    // today's fees at once: the deposit was dropped, or, mined first, the replacement got "nonce too low"
    // and the keeper waited its whole --tx-timeout-ms (60 s) for a receipt that never came.
    const node = new ScriptedNode();
    node.pending = 8;
    const { send } = senderOn(node, { txTimeoutMs: 200 });
    const first = await send();
    expect(
      node.sent.map((t) => t.nonce),
      "nothing replaces nonce 7 at first sight",
    ).to.deep.equal([]);
    expect(first.status).to.equal("waiting-behind");
    // Mined meanwhile: the next send takes the next nonce, at today's fees.
    node.mined = 8;
    node.receipt = () => ({ status: 1, blockNumber: 1, gasUsed: 1n });
    const second = await send();
    expect(second.status).to.equal("mined");
    expect(node.sent.map((t) => [t.nonce, t.maxFeePerGas])).to.deep.equal([[8, 3n * GWEI]]);
  });

  it("replaces it once it has waited the receipt timeout (a restart's stuck transaction)", async function () {
    const node = new ScriptedNode();
    node.pending = 8;
    const { send } = senderOn(node, { txTimeoutMs: 50 });
    expect((await send()).status).to.equal("waiting-behind");
    await sleep(80);
    expect((await send()).status).to.equal("dropped"); // no receipt in the scripted node
    // 9/8 of today's 3 gwei max fee and 1 gwei tip, rounded up.
    expect(node.sent.map((t) => [t.nonce, t.maxFeePerGas, t.maxPriorityFeePerGas])).to.deep.equal([
      [7, 3_375_000_000n, 1_125_000_000n],
    ]);
  });

  it("offers the cap for a waiting transaction whose fees it only guessed, where 9/8 of today's is above it", async function () {
    // Base fee 60 gwei under a 100 gwei cap: today's max fee is the cap (2·60 + 1 clamped), so 9/8 of
    // the guess is above it and the keeper sent nothing ("gas price above cap") until the base fee fell
    // below the waiting one's max fee, although an offer at the cap would replace it.
    const node = new ScriptedNode();
    node.baseFee = 60n * GWEI;
    node.pending = 8;
    const { send } = senderOn(node, { txTimeoutMs: 20 });
    await send();
    await sleep(40);
    const result = await send();
    expect(result.status).to.not.equal("gas-above-cap");
    expect(node.sent.map((t) => [t.nonce, t.maxFeePerGas])).to.deep.equal([[7, 100n * GWEI]]);
  });

  it("offers the cap once more after a refusal below it, then stops at the cap", async function () {
    const node = new ScriptedNode();
    node.baseFee = 40n * GWEI; // today's max fee 81 gwei; 9/8 of it is 91.125
    node.onSend = () => {
      throw ethersErrorFor("replacement transaction underpriced");
    };
    const { send } = senderOn(node);
    expect((await send()).status).to.equal("replacement-underpriced"); // 81 gwei refused
    expect((await send()).status).to.equal("replacement-underpriced"); // 91.125 refused
    expect((await send()).status).to.equal("replacement-underpriced"); // 102.5 > cap: the cap
    expect((await send()).status).to.equal("gas-above-cap"); // the cap was refused: nothing more
    expect(node.sent.map((t) => t.maxFeePerGas)).to.deep.equal([81n * GWEI, 91_125_000_000n, 100n * GWEI]);
  });

  for (const [client, message, code] of [
    ["Nethermind", "ReplacementNotAllowed", -32010],
    ["Erigon", "INTERNAL_ERROR: could not replace existing tx", -32000],
  ] as const) {
    it(`reads ${client}'s refusal ("${message}") as an underpriced replacement, sent once`, async function () {
      this.timeout(20_000);
      const node = new ScriptedNode();
      node.onSend = () => {
        throw ethersErrorFor(message, code);
      };
      const { send } = senderOn(node);
      // Before: ethers makes it an UNKNOWN_ERROR, which the keeper takes for transient: the same bytes
      // went out 6 times over ~3 s, then the step failed, on every pass, with no bump remembered.
      const first = await send().catch((error: unknown) => ({ status: `threw: ${String(error)}` }));
      expect(first.status).to.equal("replacement-underpriced");
      expect(node.sent).to.have.length(1);
      node.onSend = () => {};
      await send();
      expect(node.sent.map((t) => [t.nonce, t.maxFeePerGas])).to.deep.equal([
        [7, 3n * GWEI],
        [7, 3_375_000_000n],
      ]);
    });
  }

  it("reads the pending and the mined count together (no extra round trip per send)", async function () {
    const node = new ScriptedNode();
    node.receipt = () => ({ status: 1, blockNumber: 1, gasUsed: 1n });
    const { send } = senderOn(node);
    expect((await send()).status).to.equal("mined");
    expect(node.countCalls).to.equal(2);
    expect(node.maxCountsInFlight, "the two counts one after the other: a round trip more per send").to.equal(
      2,
    );
  });
});

describe("TxSender on a node without a pending state", function () {
  /** A node answering eth_call at pending as IoTeX or OpenEthereum do; at latest it answers 0x01. */
  function refusingPending() {
    const node = new ScriptedNode();
    let serves = false;
    node.call = async (request) => {
      const tag = (request as { blockTag?: string }).blockTag;
      if (tag === "pending" && !serves) {
        throw ethersErrorFor("pending block is not available", -32000, "eth_call");
      }
      return "0x01";
    };
    const { sender, lines } = senderOn(node);
    const tags = () => node.calls.map((c) => (c as { blockTag?: string }).blockTag);
    const check = () => sender.call({ to: TARGET, data: "0x" });
    return { node, lines, tags, check, servePending: () => (serves = true) };
  }

  /** Runs `body` with Date.now moved by what it sets `clock.offset` to. */
  async function withClock(body: (clock: { offset: number }) => Promise<void>) {
    const realNow = Date.now;
    const clock = { offset: 0 };
    Date.now = () => realNow() + clock.offset;
    try {
      await body(clock);
    } finally {
      Date.now = realNow;
    }
  }

  it("asks it for pending once, then makes the last checks at latest, warning once", async function () {
    const { lines, tags, check } = refusingPending();
    for (let i = 0; i < 3; i++) expect(await check()).to.equal("0x01");
    // Before: a refused call at pending before every check (reth's "unknown block": four, with back-off).
    expect(tags()).to.deep.equal(["pending", "latest", "latest", "latest"]);
    expect(lines.filter((l) => l.level === "warn").map((l) => l.msg)).to.deep.equal([
      "the node refuses eth_call at pending; last checks run at latest",
    ]);
  });

  it("asks for pending again PENDING_REPROBE_MS after the refusal, and keeps to it once served", async function () {
    await withClock(async (clock) => {
      const { tags, check, servePending } = refusingPending();
      await check();
      clock.offset = PENDING_REPROBE_MS - 1_000;
      await check();
      clock.offset = PENDING_REPROBE_MS + 1_000;
      await check(); // refused again: latest for another PENDING_REPROBE_MS
      await check();
      clock.offset = 2 * PENDING_REPROBE_MS + 2_000;
      servePending(); // the endpoint moved to a node that serves it
      await check();
      await check();
      expect(tags()).to.deep.equal([
        ...["pending", "latest"],
        "latest",
        ...["pending", "latest"],
        "latest",
        "pending",
        "pending",
      ]);
    });
  });
});
