/**
 * How scripts/deploy.ts and scripts/seed.ts report a failure (review round 74, row 178). Apart from
 * scripts/lib/deploy.ts, whose import builds the Ignition module (deploy/modules/XMargin.ts parses the
 * network's config as it loads), so that a config mistake is reported like any other.
 */
import { DeploymentFileError } from "../../deploy/deployment";
import { ConfigError } from "../../deploy/networkConfig";

/** A mistake in the operator's setup (config, chain, variables): its message says what to fix. */
export class OperatorError extends Error {}

/**
 * What scripts/deploy.ts and scripts/seed.ts print when they fail (review round 74, row 178): the
 * message of a setup mistake alone — the config parser's, the deployment file's, a chain mismatch,
 * Hardhat's own (HH101: another chain id) — and the stack only of anything else, or with XMARGIN_DEBUG=1.
 */
export function operatorMessage(script: string, error: unknown): string {
  const e = error as { message?: unknown; stack?: unknown; _isHardhatError?: unknown };
  const message = typeof e?.message === "string" ? e.message : String(error);
  const isSetup =
    error instanceof OperatorError ||
    error instanceof ConfigError ||
    error instanceof DeploymentFileError ||
    e?._isHardhatError === true;
  if (process.env.XMARGIN_DEBUG === "1" || !isSetup) return String(e?.stack ?? message);
  return `${script} failed: ${message}`;
}
