/**
 * The client: a runner (a Provider for reads, a Signer to also send transactions) bound to one
 * deployment. Every action takes it as its first argument.
 * @packageDocumentation
 */
import type { Provider, Signer } from "ethers";
import { type XMarginContracts, connectContracts } from "./contracts";
import { type Deployment, parseDeployment } from "./deployment";
import { PaddedGasSigner } from "./actions/internal/gas";

/** Token metadata the SDK reads once per client. */
export interface TokenInfo {
  address: string;
  symbol: string;
  decimals: number;
}

/** An xmargin client (see `createClient`). */
export interface XMarginClient {
  readonly deployment: Deployment;
  /** What was passed in: a Provider (read-only) or a Signer. */
  readonly runner: Provider | Signer;
  readonly provider: Provider;
  /** The signer, or null for a read-only client. */
  readonly signer: Signer | null;
  /**
   * The protocol's contracts bound to `runner` (a Signer sends each transaction with its gas estimate
   * plus 20% and 10,000: a trade mined a block after its estimate runs more code).
   */
  readonly contracts: XMarginContracts;
  /** Metadata of the tokens this client has seen, by lower-case address (filled as actions read it). */
  readonly tokens: Map<string, TokenInfo>;
  /**
   * Memoises a read that never changes for a deployment (decimals, the quote token): the first call
   * runs `load`, later calls share its promise (a failed load is forgotten and retried).
   */
  memo<T>(key: string, load: () => Promise<T>): Promise<T>;
}

/** Parameters of `createClient`. */
export interface CreateClientParameters {
  runner: Provider | Signer;
  /** The deployment's addresses (typed, or the parsed JSON, checked with `parseDeployment`). */
  deployment: Deployment | unknown;
}

function isSigner(runner: Provider | Signer): runner is Signer {
  return typeof (runner as Signer).getAddress === "function";
}

/**
 * Creates a client for `deployment`. With a Signer, write actions send from its address; with a
 * Provider, the client can only read (and preview).
 * @example
 * import { BrowserProvider } from "ethers";
 * const signer = await new BrowserProvider(window.ethereum).getSigner();
 * const client = createClient({ runner: signer, deployment });
 */
export function createClient(params: CreateClientParameters): XMarginClient {
  const deployment = parseDeployment(params.deployment);
  const runner = params.runner;
  const signer = isSigner(runner) ? runner : null;
  const provider = signer ? signer.provider : (runner as Provider);
  if (!provider) throw new TypeError("createClient: the signer has no provider");
  const cache = new Map<string, Promise<unknown>>();
  return {
    deployment,
    runner,
    provider,
    signer,
    contracts: connectContracts(deployment, signer ? new PaddedGasSigner(signer) : runner),
    tokens: new Map(),
    memo<T>(key: string, load: () => Promise<T>): Promise<T> {
      let hit = cache.get(key) as Promise<T> | undefined;
      if (!hit) {
        hit = load();
        cache.set(key, hit);
        hit.catch(() => cache.delete(key));
      }
      return hit;
    },
  };
}
