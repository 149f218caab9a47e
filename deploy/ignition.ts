/**
 * Runs an Ignition module the way `hre.ignition.deploy` does (same journal in
 * deploy/deployments/<deploymentId>/, same reconciliation and resumption), with one difference: the
 * artifact resolver reads each build-info file once and hands Ignition the build info without the
 * compiler output.
 *
 * Why: Ignition stores the build info of every contract future in its journal. This project compiles
 * with solcjs into a 21 MB build-info file (52 MB once Ignition pretty-prints it; a second, 5 MB one
 * holds the viaIR profile), and the stock resolver re-reads, re-parses and re-writes it for each of the
 * module's ~20 contract futures: a local deployment took 35 s, of which 30 s was that copying, when the
 * file was 15 MB (15 s against this resolver's 5 s on 2026-12-04). `hardhat ignition verify` only reads the build
 * info's `input` and `solcLongVersion` (ignition-core's verify.js), which are kept, so verification of
 * testnet deployments is unaffected.
 */
import fs from "node:fs";
import path from "node:path";
import {
  deploy,
  DeploymentResultType,
  type Artifact,
  type ArtifactResolver,
  type BuildInfo,
  type DeployConfig,
  type EIP1193Provider,
  type IgnitionModule,
  type IgnitionModuleResult,
} from "@nomicfoundation/ignition-core";
import {
  HardhatArtifactResolver,
  PrettyEventHandler,
  errorDeploymentResultToExceptionMessage,
} from "@nomicfoundation/hardhat-ignition/helpers";
import type { HardhatRuntimeEnvironment } from "hardhat/types";

/** Memoises artifacts and build infos, and strips the compiler output from build infos. */
export class LeanArtifactResolver implements ArtifactResolver {
  private readonly artifacts = new Map<string, Promise<Artifact>>();
  private readonly buildInfos = new Map<string, Promise<BuildInfo | undefined>>();

  constructor(
    private readonly hre: HardhatRuntimeEnvironment,
    private readonly inner: ArtifactResolver = new HardhatArtifactResolver(hre),
  ) {}

  loadArtifact(contractName: string): Promise<Artifact> {
    if (!this.artifacts.has(contractName))
      this.artifacts.set(contractName, this.inner.loadArtifact(contractName));
    return this.artifacts.get(contractName)!;
  }

  async getBuildInfo(contractName: string): Promise<BuildInfo | undefined> {
    const artifact = await this.hre.artifacts.readArtifact(contractName);
    const fqn = `${artifact.sourceName}:${artifact.contractName}`;
    const dbgFile = path.join(
      this.hre.config.paths.artifacts,
      artifact.sourceName,
      `${artifact.contractName}.dbg.json`,
    );
    const dbg = JSON.parse(fs.readFileSync(dbgFile, "utf8")) as { buildInfo: string };
    const file = path.resolve(path.dirname(dbgFile), dbg.buildInfo);
    if (!this.buildInfos.has(file)) {
      this.buildInfos.set(
        file,
        this.hre.artifacts
          .getBuildInfo(fqn)
          .then((info) =>
            info === undefined
              ? undefined
              : ({ ...info, output: { sources: {}, contracts: {} } } as unknown as BuildInfo),
          ),
      );
    }
    return this.buildInfos.get(file)!;
  }
}

export interface DeployOptions {
  deploymentId: string;
  config?: Partial<DeployConfig>;
  displayUi?: boolean;
}

/**
 * Deploys `ignitionModule` on the network `hre` is connected to and returns the address of each module
 * result. On Hardhat's in-process network the deployment is ephemeral (no journal), as with
 * `hre.ignition.deploy`.
 */
export async function deployModule<ModuleIdT extends string, ContractNameT extends string>(
  hre: HardhatRuntimeEnvironment,
  ignitionModule: IgnitionModule<ModuleIdT, ContractNameT, IgnitionModuleResult<ContractNameT>>,
  options: DeployOptions,
): Promise<Record<string, string>> {
  const provider = hre.network.provider as unknown as EIP1193Provider;
  const accounts = (await hre.network.provider.request({ method: "eth_accounts" })) as string[];
  const deploymentDir =
    hre.network.name === "hardhat"
      ? undefined
      : path.join(hre.config.paths.ignition, "deployments", options.deploymentId);
  const networkIgnition = hre.config.networks[hre.network.name]?.ignition;
  const result = await deploy({
    config: options.config ?? {},
    artifactResolver: new LeanArtifactResolver(hre),
    provider,
    deploymentDir,
    executionEventListener: options.displayUi ? new PrettyEventHandler() : undefined,
    ignitionModule,
    deploymentParameters: {},
    accounts,
    maxFeePerGasLimit: networkIgnition?.maxFeePerGasLimit,
    maxPriorityFeePerGas: networkIgnition?.maxPriorityFeePerGas,
    maxRetries: hre.config.ignition.maxRetries,
    retryInterval: hre.config.ignition.retryInterval,
  });
  if (result.type !== DeploymentResultType.SUCCESSFUL_DEPLOYMENT) {
    throw new Error(errorDeploymentResultToExceptionMessage(result));
  }
  return Object.fromEntries(
    Object.entries(ignitionModule.results).map(([name, future]) => [
      name,
      result.contracts[future.id].address,
    ]),
  );
}
