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
