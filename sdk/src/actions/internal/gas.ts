/** The gas limit the SDK's transactions to the protocol are sent with. Internal: not exported. */
import {
  AbstractSigner,
  type Provider,
  type Signer,
  type TransactionRequest,
  type TransactionResponse,
  type TypedDataDomain,
  type TypedDataField,
} from "ethers";
import type { IMarginEngine } from "../../../../typechain-types/contracts/interfaces/IMarginEngine";
import type { XMarginClient } from "../../client";
import { protocolAccounts } from "./chain";

/** EIP-7825 (Osaka): the most gas one transaction may carry; a node refuses a larger gas limit. */
export const TX_GAS_CAP = 16_777_216n;

/**
 * `estimate` plus 20% and 10,000 gas, but never above `TX_GAS_CAP` when the estimate fits under it (padded,
 * a bid on a 16-series book, 14.6M gas, asked for 17.6M and was refused by the node: review round 80). The
 * keeper's margin too (scripts/keeper/sender.ts).
 */
export function paddedGasLimit(estimate: bigint): bigint {
  const padded = (estimate * 12n) / 10n + 10_000n;
  return padded > TX_GAS_CAP && estimate <= TX_GAS_CAP ? TX_GAS_CAP : padded;
}

/**
 * Gas the engine may spend repricing one option position that the estimate valued on its Greeks: the 15
 * cells of `scenarioPnls` at one level cost ~135,000 (a buy's initial-margin check at ETH 49% against
 * 51%, 1 to 9 options held: review round 161); a reduction next to a hedge evaluates the book before and
 * after, so two grids, with 10% to spare.
 */
export const REPRICING_GAS_PER_OPTION = 300_000n;

/**
 * The same for a check of the initial level alone (an LP's exit bounds the pool's and the backstop's
 * books by `initialMargin`): one grid, ~133,000 gas a series (an exit from a pool holding 32 ETH series,
 * 1,103,262 on their Greeks, 5,373,178 repriced: review round 164), with 10% to spare. Half the gas
 * limit, and the balance a wallet needs to send it, of `REPRICING_GAS_PER_OPTION`.
 */
export const INITIAL_LEVEL_REPRICING_GAS = 150_000n;

/**
 * The gas limit of a transaction the engine margin-checks on an account that will hold `options` option
 * positions: `paddedGasLimit(estimate)` plus `perOption` (`REPRICING_GAS_PER_OPTION`) for each, capped
 * at `TX_GAS_CAP` when the estimate fits under it. The estimate is made on the latest block, and a
 * volatility round (or the clock) in between can take the options from their Greeks to repricing
 * (`needsRepricing`: a model volatility below twice the volatility shock, 50% at initial margin, or σ√τ
 * below the spot shock): a buy estimated at 518,802 gas at ETH 60% and mined after a round at 49% ran
 * out of its padded 632,562.
 */
export function repricingGasLimit(
  estimate: bigint,
  options: number,
  perOption: bigint = REPRICING_GAS_PER_OPTION,
): bigint {
  const limit = paddedGasLimit(estimate) + perOption * BigInt(options);
  return limit > TX_GAS_CAP && estimate <= TX_GAS_CAP ? TX_GAS_CAP : limit;
}

/**
 * The option series `accountIds` hold positions in, one entry a position: their markets in
 * `engine.accountMarkets` (at the latest block) that are `optionMarket` (none without one). Shared with
 * the keeper, whose sends pad for the same positions.
 */
export async function optionPositionsOf(
  engine: Pick<IMarginEngine, "accountMarkets">,
  optionMarket: string | null | undefined,
  accountIds: readonly bigint[],
): Promise<bigint[]> {
  if (!optionMarket) return [];
  const market = optionMarket.toLowerCase();
  const books = await Promise.all(accountIds.map((id) => engine.accountMarkets(id)));
  return books
    .flat()
    .filter((key) => key.market.toLowerCase() === market)
    .map((key) => key.marketId);
}

/** `optionPositionsOf` on the client's deployment. */
function optionPositions(client: XMarginClient, accountIds: readonly bigint[]): Promise<bigint[]> {
  return optionPositionsOf(client.contracts.engine, client.deployment.contracts.optionMarket, accountIds);
}

/**
 * The option positions `accountId` holds (`engine.accountMarkets`, at the latest block), plus `seriesId`
 * when a trade in it opens one: the positions a margin check may reprice.
 */
async function optionsAfter(client: XMarginClient, accountId: bigint, seriesId?: bigint): Promise<number> {
  const held = await optionPositions(client, [accountId]);
  const opens = seriesId !== undefined && !held.includes(seriesId);
  return held.length + (opens ? 1 : 0);
}

/**
 * The overrides of a transaction the engine margin-checks on `accountId` (a trade, a withdrawal): its
 * `estimate` (which throws the revert of a transaction that would fail) made into `repricingGasLimit`
 * for the options the account holds after it (`seriesId`: the series an option trade opens).
 */
export async function marginCheckedGas(
  client: XMarginClient,
  accountId: bigint,
  estimate: () => Promise<bigint>,
  seriesId?: bigint,
): Promise<{ gasLimit: bigint }> {
  const [gas, options] = await Promise.all([estimate(), optionsAfter(client, accountId, seriesId)]);
  return { gasLimit: repricingGasLimit(gas, options) };
}

/**
 * The overrides of a transaction that values or margin-checks the books of `accountIds` (an auction's
 * start, bid, absorb or end; an LP exit, which checks the pool's and the backstop's books): its
 * `estimate` made into `repricingGasLimit` for the options they hold together. A volatility round
 * between estimate and block took an LP's exit from a pool holding 32 ETH series from 1,103,262 gas to
 * 5,373,178, and a start on a 16-series book from 623,089 to 2,839,121 (review round 164).
 */
export async function booksCheckedGas(
  client: XMarginClient,
  accountIds: readonly bigint[],
  estimate: () => Promise<bigint>,
  perOption: bigint = REPRICING_GAS_PER_OPTION,
): Promise<{ gasLimit: bigint }> {
  const [gas, positions] = await Promise.all([estimate(), optionPositions(client, accountIds)]);
  return { gasLimit: repricingGasLimit(gas, positions.length, perOption) };
}

/**
 * `booksCheckedGas` of an LP exit: the pool's account and the backstop's, whose books the exit bounds by
 * their initial level alone (`INITIAL_LEVEL_REPRICING_GAS` a series).
 */
export async function poolExitGas(
  client: XMarginClient,
  estimate: () => Promise<bigint>,
): Promise<{ gasLimit: bigint }> {
  const { pool, backstop } = await protocolAccounts(client);
  return booksCheckedGas(client, [pool, backstop], estimate, INITIAL_LEVEL_REPRICING_GAS);
}

/**
 * A signer sending each transaction with a padded gas limit (`paddedGasLimit` of its estimate), the
 * runner of the client's contracts. ethers' signers (a wallet's JsonRpcSigner, a Wallet) send the bare
 * estimate, made on the latest block, and a trade mined a second or a block later runs more code (funding
 * and interest accrue since the estimate's timestamp): 2 of 3 first trades ran out of gas at 1 s or 12 s
 * (review round 158). An estimate that fails (a revert) is left to the signer, which reports it as
 * before. Hardhat's signers (the tests') send a fixed gas limit of the block's, which hid it.
 */
export class PaddedGasSigner extends AbstractSigner {
  constructor(private readonly inner: Signer) {
    super(inner.provider);
  }

  override getAddress(): Promise<string> {
    return this.inner.getAddress();
  }

  override connect(provider: Provider | null): Signer {
    return new PaddedGasSigner(this.inner.connect(provider));
  }

  override signTransaction(tx: TransactionRequest): Promise<string> {
    return this.inner.signTransaction(tx);
  }

  override signMessage(message: string | Uint8Array): Promise<string> {
    return this.inner.signMessage(message);
  }

  override signTypedData(
    domain: TypedDataDomain,
    types: Record<string, TypedDataField[]>,
    value: Record<string, unknown>,
  ): Promise<string> {
    return this.inner.signTypedData(domain, types, value);
  }

  override async sendTransaction(tx: TransactionRequest): Promise<TransactionResponse> {
    if (tx.gasLimit === undefined || tx.gasLimit === null) {
      const estimate = await this.inner.estimateGas(tx).catch(() => undefined);
      if (estimate !== undefined)
        return this.inner.sendTransaction({ ...tx, gasLimit: paddedGasLimit(estimate) });
    }
    return this.inner.sendTransaction(tx);
  }
}

/**
 * The overrides of a transaction nothing margin-checks (an option series' settlement, its positions'
 * payouts): `paddedGasLimit` of its `estimate`, which throws the revert of a transaction that would fail.
 */
export async function paddedGas(estimate: () => Promise<bigint>): Promise<{ gasLimit: bigint }> {
  return { gasLimit: paddedGasLimit(await estimate()) };
}
