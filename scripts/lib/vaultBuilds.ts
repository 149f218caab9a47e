/**
 * The vault's two builds from one source: the artifact Hardhat compiled (its override in
 * hardhat.config.ts: the IR pipeline since session 46) and the same compiler input compiled again with the
 * project's default settings (the legacy pipeline), for `scripts/vaultBuildsDiffer.ts`. The second build
 * reuses the Hardhat build-info's sources byte for byte, so no copy of the contract exists anywhere.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { HardhatRuntimeEnvironment } from "hardhat/types";

export const VAULT_SOURCE = "contracts/core/CollateralVault.sol";
const VAULT_NAME = "CollateralVault";

/** One build of the vault: what deploying and comparing it needs. */
export interface VaultBuild {
  label: string;
  settings: Record<string, unknown>;
  abi: unknown[];
  /** Creation code (hex, 0x-prefixed). */
  bytecode: string;
  /** Runtime code with zeroed immutables (hex, 0x-prefixed). */
  deployedBytecode: string;
  metadata: { sources: Record<string, { keccak256: string }>; settings: Record<string, unknown> };
}

/** A slot of the compiler's storage layout, and the layout's type table. */
export interface StorageLayout {
  storage: { label: string; slot: string; offset: number; type: string }[];
  types: Record<
    string,
    { encoding: string; numberOfBytes: string; label: string; value?: string; key?: string }
  >;
}

/** The vault as Hardhat built it (hardhat.config.ts: the override if any, else the default settings). */
export async function configuredVaultBuild(hre: HardhatRuntimeEnvironment): Promise<VaultBuild> {
  const fqn = `${VAULT_SOURCE}:${VAULT_NAME}`;
  const artifact = await hre.artifacts.readArtifact(fqn);
  const buildInfo = await hre.artifacts.getBuildInfo(fqn);
  if (!buildInfo) throw new Error(`no build-info for ${fqn}: run npx hardhat compile`);
  const output = buildInfo.output.contracts[VAULT_SOURCE][VAULT_NAME] as unknown as { metadata: string };
  const { outputSelection: _selection, ...settings } = buildInfo.input.settings as Record<string, unknown>;
  return {
    label: "configured",
    settings,
    abi: artifact.abi,
    bytecode: artifact.bytecode,
    deployedBytecode: artifact.deployedBytecode,
    metadata: JSON.parse(output.metadata),
  };
}

/**
 * The vault compiled from the configured build's own input with `settings` (default: the config's first
 * compiler, which every contract without an override uses), through the `solc` package Hardhat compiles
 * with. The output is cached under `cache/` by a hash of the input (~10 s to compile). `mutant` replaces
 * one text of the vault's source in memory (the one occurrence there must be), to check that the
 * differential run catches a change of behaviour.
 */
export async function vaultBuildWith(
  hre: HardhatRuntimeEnvironment,
  label: string,
  settings: Record<string, unknown> = defaultSettings(hre),
  mutant?: { from: string; to: string },
): Promise<VaultBuild & { storageLayout: StorageLayout }> {
  const buildInfo = await hre.artifacts.getBuildInfo(`${VAULT_SOURCE}:${VAULT_NAME}`);
  if (!buildInfo) throw new Error("no build-info for the vault: run npx hardhat compile");
  const sources = { ...buildInfo.input.sources };
  if (mutant) {
    const content = sources[VAULT_SOURCE].content;
    if (content.split(mutant.from).length !== 2)
      throw new Error(`the mutant's text is not once in the vault: ${mutant.from}`);
    sources[VAULT_SOURCE] = { content: content.replace(mutant.from, mutant.to) };
  }
  const input = {
    language: buildInfo.input.language,
    sources,
    settings: {
      ...settings,
      outputSelection: {
        [VAULT_SOURCE]: {
          [VAULT_NAME]: [
            "abi",
            "evm.bytecode.object",
            "evm.deployedBytecode.object",
            "metadata",
            "storageLayout",
          ],
        },
      },
    },
  };
  const json = JSON.stringify(input);
  const cacheDir = path.join(hre.config.paths.cache, "vault-builds");
  const cacheFile = path.join(
    cacheDir,
    `${createHash("sha256").update(json).digest("hex").slice(0, 16)}.json`,
  );
  let compiled: {
    abi: unknown[];
    evm: { bytecode: { object: string }; deployedBytecode: { object: string } };
    metadata: string;
    storageLayout: StorageLayout;
  };
  if (existsSync(cacheFile)) {
    compiled = JSON.parse(readFileSync(cacheFile, "utf8"));
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const solc = require("solc");
    if (!solc.version().startsWith(buildInfo.solcLongVersion.split("+")[0])) {
      throw new Error(`solc ${solc.version()} is not the build's ${buildInfo.solcLongVersion}`);
    }
    const output = JSON.parse(solc.compile(json));
    const errors = (output.errors ?? []).filter((e: { severity: string }) => e.severity === "error");
    if (errors.length > 0)
      throw new Error(errors.map((e: { formattedMessage: string }) => e.formattedMessage).join("\n"));
    compiled = output.contracts[VAULT_SOURCE][VAULT_NAME];
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(cacheFile, JSON.stringify(compiled));
  }
  return {
    label,
    settings,
    abi: compiled.abi,
    bytecode: `0x${compiled.evm.bytecode.object}`,
    deployedBytecode: `0x${compiled.evm.deployedBytecode.object}`,
    metadata: JSON.parse(compiled.metadata),
    storageLayout: compiled.storageLayout,
  };
}

/** The settings of the config's first compiler (the legacy pipeline at 200 runs at session 46). */
export function defaultSettings(hre: HardhatRuntimeEnvironment): Record<string, unknown> {
  const { outputSelection: _selection, ...settings } = hre.config.solidity.compilers[0].settings as Record<
    string,
    unknown
  >;
  return settings;
}

/** Bytes of runtime code (EIP-170 counts these). */
export const codeSize = (build: VaultBuild): number => (build.deployedBytecode.length - 2) / 2;

/** Whether two builds were compiled from the same sources: the metadata's keccak256 of every source file. */
export function sameSources(a: VaultBuild, b: VaultBuild): boolean {
  const hashes = (m: VaultBuild["metadata"]) =>
    JSON.stringify(Object.entries(m.sources).map(([file, s]) => [file, s.keccak256]));
  return hashes(a.metadata) === hashes(b.metadata);
}
