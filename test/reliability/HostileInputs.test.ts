import { expect } from "chai";
import { artifacts, ethers } from "hardhat";
import { Interface, type ContractTransactionResponse } from "ethers";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import { FUNCTION_ROLES, Role, type ContractName } from "../../deploy/roles";
import { revertName } from "../shared/invariants";
import { mintAndApprove } from "../shared/tokens";
import { trade } from "../shared/perps";
import { MarginMode, openAccount, wad } from "../shared/system";
import { readSection, writeSection } from "../../scripts/lib/docSections";
import {
  AUTH_ERRORS,
  ROWS,
  defaultArgs,
  hostileWorld,
  protocolContracts,
  type ContractKey,
  type HostileWorld,
} from "./hostile";

/**
 * The hostile-input catalogue, table-driven (rows in ./hostile.ts): every row's input is sent to its
 * call and must revert with the row's custom error, leaving every balance and position as it was.
 * Unauthorised callers are enumerated from the contracts' ABIs: every state-changing function of every
 * protocol contract is called by an outsider, and whatever answers with an authorisation error is a
 * privileged function; the role map (deploy/roles.ts) must be a subset of those. The rows generate
 * the catalogue in docs/reliability.md: `WRITE_DOCS=1 npx hardhat test
 * test/reliability/HostileInputs.test.ts` rewrites it, and without WRITE_DOCS the suite fails when the
 * document no longer matches the code.
 */
const DOC = "docs/reliability.md";
const ROLE_NAMES = Object.fromEntries(Object.entries(Role).map(([name, id]) => [id.toString(), name]));
const CONTRACTS: ContractKey[] = [
  "OracleRouter",
  "CollateralVault",
  "MarginEngine",
  "PerpMarket",
  "OptionMarket",
  "InsuranceFund",
  "LiquidationAuction",
  "LiquidityPool",
  "Accounts",
];

function interfacesOf(w: HostileWorld): Interface[] {
  return [
    ...Object.values(protocolContracts(w)).map((c) => c.interface as Interface),
    w.manager.interface as Interface,
    new Interface(artifacts.readArtifactSync("MockERC20").abi),
  ];
}

/** Every balance, position and supply the hostile calls could touch. */
async function fingerprint(w: HostileWorld): Promise<string> {
  const count = await w.accounts.accountCount();
  const ids = Array.from({ length: Number(count) }, (_, i) => BigInt(i + 1));
  const tokens = [w.usdc, w.weth, w.wbtc];
  const values = await Promise.all([
    ...ids.flatMap((id) => tokens.map((t) => w.vault.balanceOf(id, t))),
    ...ids.flatMap((id) => [
      w.perps.positionSize(id, w.markets.ETH),
      w.perps.positionSize(id, w.markets.BTC),
    ]),
    ...[w.aliceId, w.bobId, w.keeperId, w.carolId].flatMap((id) => [
      w.options.positionSize(id, w.callId),
      w.options.positionSize(id, w.shortDatedId),
    ]),
    ...tokens.map((t) => t.balanceOf(w.vault)),
    ...[w.alice, w.bob, w.keeper, w.lp, w.outsider].flatMap((s) => tokens.map((t) => t.balanceOf(s.address))),
    w.pool.totalSupply(),
    w.insuranceFund.balance(),
  ]);
  return values.map(String).join(",");
}

type Outcome = { reverted: true; error: string } | { reverted: false };

async function outcome(
  w: HostileWorld,
  sent: Promise<Pick<ContractTransactionResponse, "wait"> | { innerRevert: string }>,
): Promise<Outcome> {
  try {
    const result = await sent;
    if ("innerRevert" in result) {
      const name = revertName({ data: result.innerRevert }, interfacesOf(w));
      return { reverted: true, error: name.startsWith("unknown") ? result.innerRevert : name };
    }
    await result.wait();
    return { reverted: false };
  } catch (error) {
    return { reverted: true, error: revertName(error, interfacesOf(w)) };
  }
}

interface Privileged {
  contract: ContractKey;
  fn: string;
  error: string;
}
const privileged: Privileged[] = [];
/** Functions defined and functions scanned: the document is only compared after a complete scan. */
let scanDefined = 0;
let scanDone = 0;

describe("Reliability: hostile inputs", function () {
  describe("catalogue", function () {
    for (const row of ROWS) {
      it(`${row.kind}: ${row.input} → ${row.call} reverts with ${row.error}, state unchanged`, async function () {
        const w = await loadFixture(hostileWorld);
        if (row.arrange) await row.arrange(w);
        const before = await fingerprint(w);
        const aliceQuote = await w.vault.balanceOf(w.aliceId, w.usdc);
        const out = await outcome(w, row.act(w));
        expect(out.reverted ? out.error : "accepted", row.input).to.equal(row.error);
        // The reentrancy row's outer deposit succeeds by design: there only the re-entered withdrawal
        // must have had no effect, which the balances after the deposit show (checked below).
        if (row.call.includes("→")) {
          const after = await w.vault.balanceOf(w.aliceId, w.usdc);
          expect(after, "the re-entered withdrawal took nothing").to.equal(aliceQuote);
        } else {
          expect(await fingerprint(w), "state after the rejected call").to.equal(before);
        }
      });
    }
  });

  describe("unauthorised callers on every privileged function (from the ABIs)", function () {
    for (const contract of CONTRACTS) {
      const iface = new Interface(artifacts.readArtifactSync(contract).abi);
      iface.forEachFunction((fn) => {
        if (fn.constant) return;
        scanDefined++;
        it(`${contract}.${fn.name} called by an outsider`, async function () {
          const w = await loadFixture(hostileWorld);
          const target = protocolContracts(w)[contract];
          const before = await fingerprint(w);
          const data = target.interface.encodeFunctionData(
            fn.format(),
            defaultArgs(fn.inputs, w.outsider.address),
          );
          const out = await outcome(
            w,
            w.outsider.sendTransaction({
              to: await target.getAddress(),
              data,
              gasLimit: 5_000_000n,
            }) as Promise<Pick<ContractTransactionResponse, "wait">>,
          );
          if (out.reverted && AUTH_ERRORS.has(out.error)) {
            privileged.push({ contract, fn: fn.name, error: out.error });
            expect(await fingerprint(w), "state after the rejected call").to.equal(before);
          }
          scanDone++;
          const role = FUNCTION_ROLES[contract as ContractName]?.[fn.name];
          if (role !== undefined) {
            // A function the role map guards must refuse an outsider with AccessManagedUnauthorized.
            expect(out.reverted ? out.error : "accepted").to.equal("AccessManagedUnauthorized");
          }
        });
      });
    }

    it("finds every function of the role map, and the engine-only and market-only entry points", function () {
      const found = new Set(privileged.map((p) => `${p.contract}.${p.fn}`));
      for (const [contract, fns] of Object.entries(FUNCTION_ROLES)) {
        for (const fn of Object.keys(fns)) expect(found, `${contract}.${fn}`).to.include(`${contract}.${fn}`);
      }
      for (const fn of [
        "MarginEngine.transferSlice",
        "MarginEngine.transferQuote",
        "CollateralVault.transferBalance",
      ]) {
        expect(found, fn).to.include(fn);
      }
    });
  });

  describe("rounding attacks", function () {
    it("200 dust trades (100 open/close round trips of 1 wei to 1e9 wei) do not increase the attacker's equity", async function () {
      const w = await loadFixture(hostileWorld);
      const attacker = (await ethers.getSigners())[16];
      const id = await openAccount(w, attacker, MarginMode.CROSS, [[w.usdc, 1_000n * 10n ** 6n]]);
      const start = await w.engine.health(id);
      const poolBefore = await w.pool.totalAssets();
      const sizes = [1n, 7n, 999n, 10n ** 6n + 1n, 10n ** 9n - 1n];
      for (let i = 0; i < 100; i++) {
        const size = sizes[i % sizes.length] * (i % 2 === 0 ? 1n : -1n);
        await trade(w.perps, attacker, id, i % 3 === 0 ? w.markets.BTC : w.markets.ETH, size);
        await trade(w.perps, attacker, id, i % 3 === 0 ? w.markets.BTC : w.markets.ETH, -size);
      }
      const end = await w.engine.health(id);
      // Each trade charges a fee rounded up to at least one quote unit when nonzero, and realised PnL
      // rounds against the trader: the attacker can only lose.
      expect(end.equityMark, "attacker's equity").to.be.lte(start.equityMark);
      expect(await w.vault.balanceOf(id, w.usdc), "attacker's quote").to.be.lte(1_000n * 10n ** 6n);
      expect(await w.pool.totalAssets(), "pool assets").to.be.gte(poolBefore);
    });

    it("dust deposits and withdrawals of 1 unit in 6-, 8- and 18-decimal tokens do not create value", async function () {
      const w = await loadFixture(hostileWorld);
      const attacker = (await ethers.getSigners())[16];
      const id = await openAccount(w, attacker, MarginMode.CROSS, [[w.usdc, 100n * 10n ** 6n]]);
      const start = await w.engine.health(id);
      for (const token of [w.usdc, w.wbtc, w.weth]) {
        await mintAndApprove(token, attacker, await w.vault.getAddress(), 50n);
        for (let i = 0; i < 50; i++) await w.vault.connect(attacker).deposit(id, token, 1n);
        for (let i = 0; i < 50; i++)
          await w.vault.connect(attacker).withdraw(id, token, 1n, attacker.address);
        expect(await token.balanceOf(attacker.address)).to.equal(50n);
      }
      const end = await w.engine.health(id);
      expect(end.equityMark).to.equal(start.equityMark);
      // A single wei of WETH is worth 3000e-18 USD: valued at 3000 wei of USD WAD, rounded down.
      expect(await w.vault.tokenValue(w.weth, 1n)).to.equal(3_000n);
      expect(await w.vault.tokenValue(w.wbtc, 1n)).to.equal(wad("0.0006"));
    });
  });

  after(function () {
    const catalogue = renderCatalogue(privileged);
    if (process.env.WRITE_DOCS === "1") {
      writeSection(DOC, "hostile-catalogue", catalogue);
      return;
    }
    if (scanDone !== scanDefined) return; // a partial run (--grep) cannot judge the document
    const onDisk = readSection(DOC, "hostile-catalogue");
    if (onDisk === null || normalise(onDisk) !== normalise(catalogue)) {
      throw new Error(
        `${DOC} is out of date: run WRITE_DOCS=1 npx hardhat test test/reliability/HostileInputs.test.ts`,
      );
    }
  });
});

/** Markdown up to formatting (a formatter may pad table cells and rewrap lines). */
function normalise(markdown: string): string {
  return markdown
    .replace(/ *\| */g, "|")
    .replace(/\|-+(?=\|)/g, "|-")
    .replace(/\s+/g, " ")
    .trim();
}

function renderCatalogue(found: Privileged[]): string {
  const lines = [
    `${ROWS.length} hostile inputs; each is sent in a fresh fixture and must revert with the error shown,`,
    "leaving every account balance, position, token balance and supply unchanged.",
    "",
    "| # | Input kind | Input | Call | Error |",
    "| - | - | - | - | - |",
    ...ROWS.map((r, i) => `| ${i + 1} | ${r.kind} | ${r.input} | \`${r.call}\` | \`${r.error}\` |`),
    "",
    `Unauthorised callers: ${found.length} privileged functions, found by calling every state-changing`,
    "function of every protocol contract (from the ABIs) as an outsider; the role is deploy/roles.ts's.",
    "",
    "| Contract | Function | Role | Error |",
    "| - | - | - | - |",
    ...[...found]
      .sort((a, b) => (a.contract + a.fn).localeCompare(b.contract + b.fn))
      .map((p) => {
        const role = FUNCTION_ROLES[p.contract as ContractName]?.[p.fn];
        const who =
          role !== undefined
            ? ROLE_NAMES[role.toString()]
            : p.error === "AccessManagedUnauthorized"
              ? "ADMIN / authority"
              : p.error === "NotDeployer"
                ? "the deployer, once"
                : "protocol contracts only";
        return `| ${p.contract} | \`${p.fn}\` | ${who} | \`${p.error}\` |`;
      }),
  ];
  return lines.join("\n");
}
