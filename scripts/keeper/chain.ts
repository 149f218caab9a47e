/**
 * The keeper's view of the protocol: typed contract handles (typechain interface factories, no
 * bytecode) for the addresses of a deployment file, and the JSON-RPC provider.
 */
import {
  FetchRequest,
  JsonRpcProvider,
  Network,
  makeError,
  type JsonRpcPayload,
  type JsonRpcResult,
  type Signer,
} from "ethers";
import type { Deployment } from "../../deploy/deployment";
import {
  isProviderErrorAnswer,
  isRateLimitAnswer,
  isTransientError,
  withRetry,
  type RetryOptions,
} from "./retry";
import { IAccounts__factory } from "../../typechain-types/factories/contracts/interfaces/IAccounts__factory";
import { ICollateralVault__factory } from "../../typechain-types/factories/contracts/interfaces/ICollateralVault__factory";
import { ILiquidationAuction__factory } from "../../typechain-types/factories/contracts/interfaces/ILiquidationAuction__factory";
import { IMarginEngine__factory } from "../../typechain-types/factories/contracts/interfaces/IMarginEngine__factory";
import { IOracleRouter__factory } from "../../typechain-types/factories/contracts/interfaces/IOracleRouter__factory";
import { IPerpMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IPerpMarket__factory";
import { IOptionMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IOptionMarket__factory";
import { IERC20Metadata__factory } from "../../typechain-types/factories/@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata__factory";
import { AggregatorV3Interface__factory } from "../../typechain-types/factories/@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface__factory";

export type Contracts = ReturnType<typeof connectContracts>;

/**
 * A JSON-RPC provider that retries transport failures (connection refused or reset, HTTP 5xx,
 * timeouts) with exponential backoff, below every call the keeper makes: contract reads, logs, code,
 * receipts, and error answers that say nothing about the call (`isProviderErrorAnswer`: a rate limit, "header
 * not found"). Other JSON-RPC error answers (reverts, "nonce too low") are answers and pass through. Raw
 * transaction sends are not retried here: TxSender re-sends them itself, knowing the hash.
 */
export class RetryingProvider extends JsonRpcProvider {
  constructor(
    request: FetchRequest,
    chainId: number,
    private readonly retry: Pick<RetryOptions, "attempts" | "baseMs" | "maxMs" | "signal" | "onRetry">,
  ) {
    super(request, chainId, {
      // The network is fixed: no detection loop that would spin and log while the node is down.
      staticNetwork: Network.from(chainId),
      // One HTTP request per call, so one failure fails (and retries) one call.
      batchMaxCount: 1,
      cacheTimeout: -1,
    });
  }

  override _send(payload: JsonRpcPayload | JsonRpcPayload[]): Promise<JsonRpcResult[]> {
    const single = Array.isArray(payload) ? payload[0] : payload;
    if (single?.method === "eth_sendRawTransaction") return super._send(payload);
    return withRetry(
      async () => {
        const results = await super._send(payload);
        // An error answer that says nothing about the call (a rate limit in an HTTP 200, a node behind the
        // others): retried like a transport failure, and thrown as one once the attempts are spent (a
        // SERVER_ERROR, or a TIMEOUT for the node's own timeout, which a lighter call may pass, unless it
        // is a rate limit that mentions one; the answer in `info.rpcError`), never left to ethers, which
        // makes every error answer to eth_call a revert (review round 52, N2).
        for (const r of results as { error?: { code?: unknown; message?: unknown } }[]) {
          if (r.error && isProviderErrorAnswer(single?.method ?? "", r.error)) {
            const message = `${single?.method}: ${String(r.error.message)}`;
            throw /timeout|timed out/i.test(message) && !isRateLimitAnswer(r.error)
              ? makeError(message, "TIMEOUT", {
                  operation: single?.method ?? "",
                  reason: "timeout",
                  info: { rpcError: r.error },
                })
              : makeError(message, "SERVER_ERROR", {
                  request: single?.method ?? "",
                  info: { rpcError: r.error },
                });
          }
        }
        return results;
      },
      {
        ...this.retry,
        isRetryable: isTransientError,
        onRetry: (error, attempt, delayMs) => this.retry.onRetry?.(error, attempt, delayMs, single?.method),
      },
    );
  }
}

/** A retrying provider for `url` on `chainId`; each HTTP request times out after `timeoutMs`. */
export function createProvider(
  url: string,
  chainId: number,
  retry: ConstructorParameters<typeof RetryingProvider>[2] = {},
  timeoutMs = 10_000,
): RetryingProvider {
  const request = new FetchRequest(url);
  request.timeout = timeoutMs;
  return new RetryingProvider(request, chainId, retry);
}

export function connectContracts(deployment: Deployment, runner: Signer) {
  const c = deployment.contracts;
  return {
    accounts: IAccounts__factory.connect(c.accounts, runner),
    vault: ICollateralVault__factory.connect(c.vault, runner),
    engine: IMarginEngine__factory.connect(c.engine, runner),
    auction: ILiquidationAuction__factory.connect(c.liquidationAuction, runner),
    perps: IPerpMarket__factory.connect(c.perpMarket, runner),
    options: IOptionMarket__factory.connect(c.optionMarket, runner),
    router: IOracleRouter__factory.connect(c.oracleRouter, runner),
    erc20: (address: string) => IERC20Metadata__factory.connect(address, runner),
    aggregator: (address: string) => AggregatorV3Interface__factory.connect(address, runner),
  };
}

/** The part of an EIP-1193 provider the keeper needs (Hardhat's `hre.network.provider`, a wallet's). */
export interface Eip1193Like {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

/**
 * A JsonRpcProvider over an EIP-1193 provider instead of HTTP, so the keeper's code runs unchanged
 * against Hardhat's in-process chain (the demo). Errors become JSON-RPC error answers, which ethers
 * turns into its usual errors (a revert is a CALL_EXCEPTION, not a transport failure).
 */
export class Eip1193JsonRpcProvider extends JsonRpcProvider {
  constructor(
    private readonly eip1193: Eip1193Like,
    chainId: number,
  ) {
    super(undefined, chainId, { staticNetwork: Network.from(chainId), batchMaxCount: 1, cacheTimeout: -1 });
  }

  override async _send(payload: JsonRpcPayload | JsonRpcPayload[]): Promise<JsonRpcResult[]> {
    const payloads = Array.isArray(payload) ? payload : [payload];
    return Promise.all(
      payloads.map(async ({ id, method, params }) => {
        try {
          return { id, result: await this.eip1193.request({ method, params: params as unknown[] }) };
        } catch (e) {
          const error = e as { code?: number; message?: string; data?: unknown };
          // JsonRpcProvider's own _send returns error answers in the same array (typed as results).
          return {
            id,
            error: { code: error.code ?? -32603, message: error.message ?? String(e), data: error.data },
          } as unknown as JsonRpcResult;
        }
      }),
    );
  }
}
