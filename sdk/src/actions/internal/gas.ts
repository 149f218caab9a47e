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
import type { XMarginClient } from "../../client";

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
 * The gas limit of a transaction the engine margin-checks on an account that will hold `options` option
 * positions: `paddedGasLimit(estimate)` plus `REPRICING_GAS_PER_OPTION` for each, capped at `TX_GAS_CAP`
 * when the estimate fits under it. The estimate is made on the latest block, and a volatility round (or
 * the clock) in between can take the options from their Greeks to repricing (`needsRepricing`: a model
 * volatility below twice the volatility shock, 50% at initial margin, or σ√τ below the spot shock): a buy
 * estimated at 518,802 gas at ETH 60% and mined after a round at 49% ran out of its padded 632,562.
 */
export function repricingGasLimit(estimate: bigint, options: number): bigint {
  const limit = paddedGasLimit(estimate) + REPRICING_GAS_PER_OPTION * BigInt(options);
  return limit > TX_GAS_CAP && estimate <= TX_GAS_CAP ? TX_GAS_CAP : limit;
}

/**
 * The option positions `accountId` holds (`engine.accountMarkets`, at the latest block), plus `seriesId`
 * when a trade in it opens one: the positions a margin check may reprice.
 */
async function optionsAfter(client: XMarginClient, accountId: bigint, seriesId?: bigint): Promise<number> {
  const optionMarket = client.deployment.contracts.optionMarket?.toLowerCase();
  if (optionMarket === undefined) return 0;
  const held = (await client.contracts.engine.accountMarkets(accountId)).filter(
    (key) => key.market.toLowerCase() === optionMarket,
  );
  const opens = seriesId !== undefined && !held.some((key) => key.marketId === seriesId);
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
