import { HardhatUserConfig, subtask } from "hardhat/config";
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from "hardhat/builtin-tasks/task-names";
import "@nomicfoundation/hardhat-toolbox";

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

const config: HardhatUserConfig = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      // OpenZeppelin 5 uses `mcopy`; Hardhat's in-process chain runs Cancun.
      evmVersion: "cancun",
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
  },
};

export default config;
