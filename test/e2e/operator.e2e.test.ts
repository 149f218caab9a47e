/**
 * An operator deploys xmargin and runs its keeper from the documentation alone (README.md,
 * deploy/README.md, scripts/keeper/README.md), and makes the mistakes an operator makes (review round 74,
 * docs/reliability.md §4 rows 175–180): what the operator does, and what the tools must answer. The node-backed tests share one `hardhat node` and one deployment and run in order;
 * every process they start is killed in `after`.
 */
import { expect } from "chai";
import fs from "node:fs";
import path from "node:path";
import { Wallet, parseUnits } from "ethers";
import { readDeployment, type Deployment } from "../../deploy/deployment";
import { MockV3Aggregator__factory } from "../../typechain-types/factories/@chainlink/contracts/src/v0.8/tests/MockV3Aggregator__factory";
import {
  REPO_ROOT,
  Processes,
  hardhatWallet,
  nodeForSuite,
  sleep,
  startKeeper,
  tempDir,
  waitFor,
  waitForLog,
  HARDHAT_RUN_MS,
  KEEPER_START_MS,
  type Proc,
} from "../shared/e2e";

const KEEPER = hardhatWallet(4);
const HARDHAT_CLI = require.resolve("hardhat/internal/cli/cli.js", { paths: [REPO_ROOT] });
const readJson = (file: string) => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, file), "utf8"));

/** Runs `hardhat run <script>` to its end; its exit code and what it printed. */
async function hardhatRun(
  procs: Processes,
  script: string,
  network: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string }> {
  const proc = procs.spawn(
    `hardhat run ${script}`,
    [HARDHAT_CLI, "run", "--no-compile", "--network", network, script],
    {
      XMARGIN_QUIET: "1",
      ...env,
    },
  );
  const code = await Promise.race([proc.exited, sleep(HARDHAT_RUN_MS).then(() => "timeout" as const)]);
  if (code === "timeout") {
    proc.kill();
    throw new Error(`${script} did not finish:\n${proc.output()}`);
  }
  return { code, output: proc.output() };
}

/** Waits for the keeper to exit; its code (or "running" after `timeoutMs`). */
async function exitOf(keeper: Proc, timeoutMs: number): Promise<number | null | "running"> {
  return Promise.race([keeper.exited, sleep(timeoutMs).then(() => "running" as const)]);
}

describe("Operator runs: deploying and keeping from the documentation", function () {
  // A net under the tests' own bounded waits (`hardhat run`, a node, a keeper's start; review round 133).
  this.timeout(240_000);

  describe("without a node", function () {
    const procs = new Processes();
    const scratch = tempDir("xmargin-r74-");
    after(async function () {
      await procs.stopAll();
      scratch.remove();
    });
    afterEach(function () {
      if (this.currentTest?.state === "failed") console.log(procs.report());
    });

    it("stops the keeper on a deployment file with a bad address, naming the file and the field", async function () {
      const file = path.join(scratch.dir, "bad-address.json");
      fs.writeFileSync(
        file,
        JSON.stringify({
          chainId: 31337,
          contracts: {
            accounts: "0x" + "11".repeat(20),
            vault: "0x" + "22".repeat(20),
            engine: "0x1234", // a truncated paste
            perpMarket: "0x" + "33".repeat(20),
            optionMarket: "0x" + "44".repeat(20),
            liquidityPool: "0x" + "55".repeat(20),
            liquidationAuction: "0x" + "66".repeat(20),
            oracleRouter: "0x" + "77".repeat(20),
            insuranceFund: "0x" + "88".repeat(20),
            accessManager: "0x" + "99".repeat(20),
            timelock: "0x" + "aa".repeat(20),
          },
        }),
      );
      const notJson = path.join(scratch.dir, "not-json.json");
      fs.writeFileSync(notJson, "<html>502 Bad Gateway</html>\n");
      for (const [deploymentFile, says] of [
        [file, [file, "contracts.engine", "0x1234"]],
        [notJson, [notJson, "not a deployment file"]],
        [path.join(scratch.dir, "missing.json"), ["missing.json", "no such file"]],
      ] as const) {
        const keeper = startKeeper(procs, { rpcUrl: "http://127.0.0.1:9", deploymentFile, key: KEEPER });
        expect(await exitOf(keeper, KEEPER_START_MS), "the keeper exits 1").to.equal(1);
        const failed = keeper.json().find((l) => l.msg === "keeper failed");
        const message = String((failed?.fields.error as { message?: string } | undefined)?.message);
        for (const part of says) expect(message, "the keeper's last words").to.contain(part);
      }
    });

    it("answers a config mistake or a missing RPC URL in the deploy script with one line saying what to fix, not a stack trace", async function () {
      const typo = path.join(scratch.dir, "localhost-typo.json");
      const config = readJson("deploy/config/localhost.json");
      config.governance.roles.BACKSTOPS = [{ account: "deployer", executionDelay: 0 }];
      fs.writeFileSync(typo, JSON.stringify(config));
      const runs = [
        {
          run: await hardhatRun(procs, "scripts/deploy.ts", "localhost", {
            XMARGIN_DEPLOY_CONFIG: typo,
            HARDHAT_VAR_LOCALHOST_RPC_URL: "http://127.0.0.1:9",
          }),
          says: `deploy failed: ${typo}: governance.roles.BACKSTOPS: unknown key`,
        },
        {
          run: await hardhatRun(procs, "scripts/deploy.ts", "baseSepolia", {
            HARDHAT_VAR_BASE_SEPOLIA_RPC_URL: undefined, // not set: hardhat.config.ts reads ""
          }),
          says: "deploy failed: no RPC URL for --network baseSepolia: npx hardhat vars set BASE_SEPOLIA_RPC_URL",
        },
      ];
      for (const { run, says } of runs) {
        expect(run.code).to.equal(1);
        expect(run.output).to.contain(says);
        expect(run.output, "no stack trace").to.not.match(/^\s+at /m);
      }
    });
  });

  describe("on a hardhat node", function () {
    const e2e = nodeForSuite("r74");
    const { procs, deploymentFile } = e2e;
    let deployment: Deployment;

    before(async function () {
      await e2e.deploy();
      deployment = readDeployment(deploymentFile);
    });

    it("refuses a deployment file for another chain than the RPC's at start (exit 1, both chain ids named), having sent nothing", async function () {
      // Sepolia's file, say, against this node: same deployer and nonces, so the same addresses exist here.
      const other = path.join(e2e.dir, "other-chain.json");
      fs.writeFileSync(
        other,
        JSON.stringify({ ...JSON.parse(fs.readFileSync(deploymentFile, "utf8")), chainId: 11155111 }),
      );
      const nonceBefore = await e2e.provider.getTransactionCount(KEEPER.address);
      const keeper = startKeeper(procs, {
        rpcUrl: e2e.rpcUrl,
        deploymentFile: other,
        key: KEEPER,
      });
      expect(await exitOf(keeper, KEEPER_START_MS), "the keeper exits 1").to.equal(1);
      const failed = keeper.json().find((l) => l.msg === "keeper failed");
      const message = String((failed?.fields.error as { message?: string } | undefined)?.message);
      expect(message).to.contain("is for chain 11155111").and.contain("serves chain 31337");
      expect(
        keeper.json().some((l) => l.msg === "session ready"),
        "no session on the wrong chain",
      ).to.equal(false);
      expect(await e2e.provider.getTransactionCount(KEEPER.address)).to.equal(nonceBefore);
    });

    it("reports a keeper key without funds at start, and logs the node's refusal in its own words, once a pass", async function () {
      const empty = Wallet.createRandom();
      const keeper = startKeeper(procs, {
        rpcUrl: e2e.rpcUrl,
        deploymentFile,
        key: empty,
        args: ["--poll-ms", "100"],
      });
      const warning = await waitForLog(keeper, "keeper wallet cannot pay for gas; fund it", KEEPER_START_MS);
      expect(warning.level).to.equal("error");
      expect(warning.fields).to.include({ address: empty.address, balanceWei: "0" });
      const failed = await waitForLog(keeper, "step failed; retrying", 20_000);
      expect((failed.fields.error as { rpcMessage?: string }).rpcMessage).to.match(/enough funds/);
      // The refused bytes are not re-sent: a refusal for funds is an answer, not a transport failure.
      expect(
        keeper.json().filter((l) => l.msg === "send failed; re-sending the same transaction"),
      ).to.have.length(0);
    });

    it("logs a bid the keeper's account cannot pay for with the contract's error by name, not 'unknown custom error'", async function () {
      const seeded = await e2e.seed(deployment);
      const keeper = startKeeper(procs, {
        rpcUrl: e2e.rpcUrl,
        deploymentFile,
        key: KEEPER,
        args: ["--poll-ms", "100"],
      });
      await waitForLog(keeper, "session ready", KEEPER_START_MS);
      // ETH 3,000 → 2,300: Bob's book is insolvent, its deficit (~4,190 USDC at the auction's start, before
      // the insurance fund pays) more than the keeper's new, empty account can pay.
      const feed = MockV3Aggregator__factory.connect(deployment.feeds.ETH, await e2e.provider.getSigner(0));
      await (await feed.updateAnswer(parseUnits("2300", 8), { gasLimit: 200_000n })).wait();
      const noBid = await waitFor(
        "the keeper's 'no bid' on Bob",
        () =>
          keeper.json().find((l) => l.msg === "no bid" && l.fields.accountId === String(seeded.accounts.bob)),
        30_000,
      );
      const error = noBid.fields.error as { revert?: string; message?: string };
      // The line names the keeper's own account, the one short of margin.
      const ready = keeper.json().find((l) => l.msg === "session ready");
      expect(noBid.fields.bidderAccountId).to.equal(ready?.fields.keeperAccountId);
      expect(error.revert).to.equal("InsufficientMargin");
      expect(error.message).to.match(/below the initial requirement/);
    });

    it("gives supervisors a command in the keeper README whose process stops on SIGTERM and exits 0 (npm run keeper exits at once, leaving the keeper running)", async function () {
      const readme = fs.readFileSync(path.join(REPO_ROOT, "scripts/keeper/README.md"), "utf8");
      const line = readme
        .split("\n")
        .find((l) => l.includes("exec node -r ts-node/register/transpile-only scripts/keeper/main.ts"));
      expect(line, "a documented supervisor command").to.not.equal(undefined);
      // That command, as a supervisor runs it: its process is the keeper, so the signal reaches it.
      const keeper = procs.spawn(
        "keeper",
        [
          "-r",
          "ts-node/register/transpile-only",
          "scripts/keeper/main.ts",
          "--rpc",
          e2e.rpcUrl,
          "--deployment",
          deploymentFile,
        ],
        {
          KEEPER_PRIVATE_KEY: KEEPER.privateKey,
        },
      );
      await waitForLog(keeper, "session ready", KEEPER_START_MS);
      keeper.signal("SIGTERM");
      expect(await exitOf(keeper, 15_000)).to.equal(0);
      expect(keeper.json().some((l) => l.msg === "keeper stopped")).to.equal(true);
    });
  });
});
