import hre from "hardhat";

/** Whether solidity-coverage instruments this run: gas numbers and long campaigns are meaningless then. */
export function underCoverage(): boolean {
  return Boolean((hre as { __SOLIDITY_COVERAGE_RUNNING?: boolean }).__SOLIDITY_COVERAGE_RUNNING);
}
