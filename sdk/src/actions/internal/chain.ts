/**
 * Shared plumbing of the actions: signer and chain checks, sending with decoded errors, token
 * metadata, event parsing. Internal: not exported from the package.
 */
import type {
  BlockTag,
  ContractTransactionReceipt,
  ContractTransactionResponse,
  Interface,
  Log,
  LogDescription,
  Signer,
} from "ethers";
import type { XMarginClient, TokenInfo } from "../../client";
import { type IOptionMarket, erc20 } from "../../contracts";
import { type ErrorContext, MissingContractError, decodeError } from "../../errors";

/** The client's signer; throws for a read-only client. */
export function requireSigner(client: XMarginClient): Signer {
  if (!client.signer) throw new TypeError("this action sends a transaction: create the client with a Signer");
  return client.signer;
}

/** Throws unless the provider is on the deployment's chain (checked once per client). */
export function ensureChain(client: XMarginClient): Promise<void> {
  return client.memo("chain", async () => {
    const { chainId } = await client.provider.getNetwork();
    if (chainId !== BigInt(client.deployment.chainId)) {
      throw new Error(
        `wrong network: connected to chain ${chainId}, the deployment is on ${client.deployment.chainId}`,
      );
    }
  });
}

/** What error messages need from the client's token cache. */
export function errorContext(client: XMarginClient): ErrorContext {
  return { tokens: client.tokens, quoteDecimals: quoteDecimalsOf.get(client) };
}

const quoteDecimalsOf = new WeakMap<XMarginClient, number>();

/** Rethrows `error` as an XMarginError when it is a protocol revert, unchanged otherwise. */
export function rethrow(client: XMarginClient, error: unknown): never {
  throw decodeError(error, errorContext(client)) ?? error;
}

/**
 * Runs a read, decoding protocol reverts, after the chain check: a wallet on another chain than the
 * deployment's has no code at its addresses, where a read failed with ethers' "could not decode result
 * data" (BAD_DATA) rather than naming the network (review round 158).
 */
export async function read<T>(client: XMarginClient, call: () => Promise<T>): Promise<T> {
  await ensureChain(client);
  try {
    return await call();
  } catch (error) {
    rethrow(client, error);
  }
}

/**
 * The block of the client's last transaction mined, which reads "at the latest block" never go below:
 * ethers' providers (JsonRpcProvider, BrowserProvider) answer `getBlockNumber` and `getBlock("latest")`
 * from a cache for 250 ms (`cacheTimeout`), so where the receipt comes sooner (a node mining at once, a
 * fast L2 sequencer) the read after a write saw the block before it: the account just created missing
 * from `listAccounts`, the maximum withdrawal before the trade (review round 158).
 */
const minedBlockOf = new WeakMap<XMarginClient, number>();

/**
 * The latest block number, and at least the block of the client's last transaction mined, unless that
 * block is gone (a chain rewound: a restarted node, a test's snapshot, a reorganisation).
 */
export async function latestBlockNumber(client: XMarginClient): Promise<number> {
  return (await blockAt(client)).number;
}

/**
 * Sends a transaction (after the chain check), waits for it and decodes reverts (the quote token's
 * decimals are read once per client first, so that amounts in error messages read as USD). Later reads
 * of the client at the latest block read this transaction's block or a later one.
 */
export async function send(
  client: XMarginClient,
  submit: () => Promise<ContractTransactionResponse>,
  confirmations = 1,
): Promise<ContractTransactionReceipt> {
  await Promise.all([ensureChain(client), quoteUnit(client)]);
  try {
    const tx = await submit();
    const receipt = await tx.wait(confirmations);
    if (!receipt) throw new Error(`transaction ${tx.hash} was dropped`);
    minedBlockOf.set(client, Math.max(receipt.blockNumber, minedBlockOf.get(client) ?? 0));
    return receipt;
  } catch (error) {
    rethrow(client, error);
  }
}

/** Every log of `receipt` that `iface` parses as event `name` (emitted by `address`, when given). */
export function eventsOf(
  receipt: { readonly logs: readonly Log[] },
  iface: Interface,
  name: string,
  address?: string,
): LogDescription[] {
  const out: LogDescription[] = [];
  for (const log of receipt.logs) {
    if (address !== undefined && log.address.toLowerCase() !== address.toLowerCase()) continue;
    try {
      const parsed = iface.parseLog(log);
      if (parsed?.name === name) out.push(parsed);
    } catch {
      // another contract's event
    }
  }
  return out;
}

/** Decimals and symbol of `token` (memoised; also fills `client.tokens` for error messages). */
export function tokenInfo(client: XMarginClient, token: string): Promise<TokenInfo> {
  const address = token.toLowerCase();
  return client.memo(`token:${address}`, async () => {
    const contract = erc20(token, client.provider);
    const [decimals, symbol] = await Promise.all([contract.decimals(), contract.symbol().catch(() => "?")]);
    const info: TokenInfo = { address, symbol, decimals: Number(decimals) };
    client.tokens.set(address, info);
    return info;
  });
}

/** The quote token (lower case), memoised. */
export function quoteToken(client: XMarginClient): Promise<string> {
  return client.memo("quoteToken", async () => (await client.contracts.vault.quoteToken()).toLowerCase());
}

/** The protocol's accounts, which `MarginEngine.initialize` sets once: memoised. */
export function protocolAccounts(
  client: XMarginClient,
): Promise<{ pool: bigint; backstop: bigint; insurance: bigint }> {
  return client.memo("protocolAccounts", async () => {
    const { engine } = client.contracts;
    const [pool, backstop, insurance] = await Promise.all([
      engine.poolAccountId(),
      engine.backstopAccountId(),
      engine.insuranceAccountId(),
    ]);
    return { pool, backstop, insurance };
  });
}

/** One quote unit in USD WAD, 10^(18 − quote decimals), memoised. */
export async function quoteUnit(client: XMarginClient): Promise<bigint> {
  const info = await tokenInfo(client, await quoteToken(client));
  quoteDecimalsOf.set(client, info.decimals);
  return 10n ** BigInt(18 - info.decimals);
}

/** A token address from a symbol of the deployment or an address. */
export function resolveToken(client: XMarginClient, token: string): string {
  if (/^0x[0-9a-fA-F]{40}$/.test(token)) return token;
  const address = client.deployment.tokens[token];
  if (!address) throw new TypeError(`unknown token ${token}: not an address nor a symbol of the deployment`);
  return address;
}

/**
 * The latest block's number and timestamp (or those of `blockTag`); the latest is at least the block of
 * the client's last transaction mined (`latestBlockNumber`).
 */
export async function blockAt(
  client: XMarginClient,
  blockTag: BlockTag = "latest",
): Promise<{ number: number; timestamp: bigint }> {
  let block = await client.provider.getBlock(blockTag);
  const mined = minedBlockOf.get(client);
  if (blockTag === "latest" && block && mined !== undefined && block.number < mined) {
    const own = await client.provider.getBlock(mined);
    if (own) block = own;
    else minedBlockOf.delete(client);
  }
  if (!block) throw new Error(`block ${blockTag} not found`);
  return { number: block.number, timestamp: BigInt(block.timestamp) };
}

/** The deployment's OptionMarket; throws MissingContractError when the deployment has none. */
export function optionMarketOf(client: XMarginClient): IOptionMarket {
  const market = client.contracts.optionMarket;
  if (!market) throw new MissingContractError("optionMarket");
  return market;
}
