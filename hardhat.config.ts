import { HardhatUserConfig, subtask, vars } from "hardhat/config";
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from "hardhat/builtin-tasks/task-names";
import "@nomicfoundation/hardhat-toolbox";
import "./scripts/lib/timeJitter"; // inert unless STRESS_JITTER is set (npm run test:jitter)

const SOLC_VERSION = "0.8.28";

// Hardhat's compiler download cannot reach its host from these machines, so compile with
// the WebAssembly build shipped in the pinned `solc` npm package (Hardhat's documented
// "custom compiler" recipe; coverage and the gas reporter go through the same subtask).
subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args: { solcVersion: string }, _hre, runSuper) => {
  if (args.solcVersion !== SOLC_VERSION) return runSuper();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const solc = require("solc");
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: args.solcVersion,
    longVersion: solc.version(),
  };
});

// Public networks read their RPC URL and deployer key from Hardhat configuration variables
// (`npx hardhat vars set SEPOLIA_RPC_URL`, or the env var HARDHAT_VAR_SEPOLIA_RPC_URL); none is needed
// for local runs. LOCALHOST_RPC_URL lets scripts and end-to-end tests target a node on another port.
const deployerAccounts = (): string[] =>
  vars.has("DEPLOYER_PRIVATE_KEY") ? [vars.get("DEPLOYER_PRIVATE_KEY")] : [];

// EDR (Hardhat's Rust chain) records a trace of every EVM step and allocates through mimalloc, which
// hands freed pages back to the kernel after 10 ms: the next transaction's trace faulted them in again,
// zeroed (a multi-million-gas liquidation test took 505,000 page faults). Keeping freed pages for 2 s
// cut a crash scenario's faults from 550,000 to 95,000, and the whole suite from 10m19s to 9m38s on a
// 2-core machine (system time 4m42s → 3m42s); memory still goes back between files. Mocha's parallel
// workers and the end-to-end tests' `hardhat node` processes inherit it.
process.env.MIMALLOC_PURGE_DELAY ??= "2000";

const SERIAL_TESTS = process.env.REPORT_GAS === "true" || process.argv.includes("coverage");

const config: HardhatUserConfig = {
  solidity: {
    compilers: [
      {
        version: SOLC_VERSION,
        settings: {
          optimizer: { enabled: true, runs: 200 },
          // OpenZeppelin 5 uses `mcopy`; Hardhat's in-process chain runs Cancun.
          evmVersion: "cancun",
        },
      },
    ],
    overrides: {
      // CollateralVault had 45 bytes left after review round 153. Through the IR pipeline at 1,500 runs it
      // built in 23,591 (985 to spare; 23,965 and 611 since `recoverSurplus`), a trade −369 gas, a health
      // view −374, a bid −44, a quote transfer without debt +346, an LP deposit +2,653 (each function
      // found by a linear selector search: docs/decisions.md, Gas). 1,000 runs left 1,320 bytes but cost
      // a bid +712; 2,000 left 235.
      "contracts/core/CollateralVault.sol": {
        version: SOLC_VERSION,
        settings: { optimizer: { enabled: true, runs: 1500 }, evmVersion: "cancun", viaIR: true },
      },
      // The legacy pipeline builds OptionMarket past the 24,576-byte limit of EIP-170; the IR pipeline
      // builds it in 24,115 (461 bytes to spare at session 38, with the series-parameter checks in SeriesParamsLib; ~15 s). Review round 44 found that the IR
      // optimizer specialised `_value` on its literal arguments: one call shape saved ~700 bytes.
      "contracts/markets/OptionMarket.sol": {
        version: SOLC_VERSION,
        settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "cancun", viaIR: true },
      },
    },
  },
  paths: {
    ignition: "deploy",
  },
  networks: {
    hardhat: {
      // Tests set prices and timestamps explicitly; keep blocks deterministic.
      allowBlocksWithSameTimestamp: true,
    },
    localhost: {
      url: vars.get("LOCALHOST_RPC_URL", "http://127.0.0.1:8545"),
    },
    sepolia: {
      url: vars.get("SEPOLIA_RPC_URL", ""),
      chainId: 11_155_111,
      accounts: deployerAccounts(),
    },
    arbitrumSepolia: {
      url: vars.get("ARBITRUM_SEPOLIA_RPC_URL", ""),
      chainId: 421_614,
      accounts: deployerAccounts(),
    },
    baseSepolia: {
      url: vars.get("BASE_SEPOLIA_RPC_URL", ""),
      chainId: 84_532,
      accounts: deployerAccounts(),
    },
  },
  typechain: {
    outDir: "typechain-types",
    target: "ethers-v6",
  },
  gasReporter: {
    enabled: process.env.REPORT_GAS === "true",
    currency: "USD",
    offline: true,
    excludeContracts: ["contracts/test/"],
  },
  mocha: {
    timeout: 120_000,
    // Four workers on the 2-core machines `npm test` must finish on in 10 minutes: each test file runs
    // on its own in-process chain, so files share nothing, and fewer workers left the cores idle while
    // the end-to-end and keeper files wait on a real node and real polls (9m28s with two, 8m08s with
    // three; session 48's suite 10m05s with three, 9m22s with four). Coverage and the gas reporter collect
    // from one chain and run serially.
    parallel: !SERIAL_TESTS,
    jobs: 4,
    // hardhat/register first, so that the TypeScript helper loads after ts-node.
    require: ["hardhat/register", "./test/shared/parallelFailures.ts", "./test/shared/eagerEthers.ts"],
  },
};

export default config;
