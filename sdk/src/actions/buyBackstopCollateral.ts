import type { ContractTransactionReceipt } from "ethers";
import type { XMarginClient } from "../client";
import {
  blockAt,
  eventsOf,
  protocolAccounts,
  quoteToken,
  read,
  requireSigner,
  resolveToken,
  send,
  tokenInfo,
} from "./internal/chain";
import { booksCheckedGas } from "./internal/gas";
import { plusSlippage } from "./internal/slippage";

/** Parameters of `quoteBackstopCollateral`. */
export interface QuoteBackstopCollateralParameters {
  /** A symbol of the deployment or a token address (any collateral but the quote token). */
  token: string;
  /** Token units; at most what the backstop holds. */
  amount: bigint;
}

/** What buying collateral from the backstop costs now. */
export interface BackstopCollateralQuote {
  /** Quote units the buyer's account pays: the oracle value less the discount, rounded up. */
  payment: bigint;
  /** The discount on the oracle value (WAD), growing from 0 at the backstop's last absorb. */
  discount: bigint;
}

/**
 * Prices `amount` of `token` from the backstop account (the collateral of books it absorbed): its
 * oracle value less a discount that grows from 0 at the last absorb to the auction's `maxDiscount`
 * over its `duration`, in quote at the quote token's oracle price. Throws XMarginError
 * "InvalidCollateralPurchase" for the quote token, 0, or more than the backstop holds, and the
 * oracle's errors.
 * @example
 * const { payment, discount } = await quoteBackstopCollateral(client, { token: "WETH", amount: parseEther("1") });
 */
export async function quoteBackstopCollateral(
  client: XMarginClient,
  params: QuoteBackstopCollateralParameters,
): Promise<BackstopCollateralQuote> {
  const token = resolveToken(client, params.token);
  await tokenInfo(client, token); // for readable error messages
  const [payment, discount] = await read(client, () =>
    client.contracts.liquidationAuction.backstopCollateralQuote(token, params.amount),
  );
  return { payment, discount };
}

/** Collateral the backstop holds for sale, priced now. */
export interface BackstopCollateralLot extends BackstopCollateralQuote {
  /** The token's address (lower case). */
  token: string;
  symbol: string;
  /** Token units the backstop holds (all of them are for sale). */
  amount: bigint;
}

/**
 * What the backstop has for sale: every collateral token it holds but the quote token, with the price
 * of all of it now (`quoteBackstopCollateral`), all read at one block. Empty when it holds none.
 * @example
 * for (const lot of await listBackstopCollateral(client)) console.log(lot.symbol, lot.amount, lot.discount);
 */
export async function listBackstopCollateral(client: XMarginClient): Promise<BackstopCollateralLot[]> {
  const { vault, liquidationAuction: auction } = client.contracts;
  return read(client, async () => {
    const at = { blockTag: (await blockAt(client)).number };
    const [backstop, quote] = await Promise.all([auction.backstopAccountId(at), quoteToken(client)]);
    const lots: BackstopCollateralLot[] = [];
    for (const token of await vault.collateralTokens(backstop, at)) {
      if (token.toLowerCase() === quote) continue;
      const [amount, info] = await Promise.all([
        vault.balanceOf(backstop, token, at),
        tokenInfo(client, token),
      ]);
      if (amount <= 0n) continue;
      const [payment, discount] = await auction.backstopCollateralQuote(token, amount, at);
      lots.push({ token: info.address, symbol: info.symbol, amount, payment, discount });
    }
    return lots;
  });
}

/** Parameters of `buyBackstopCollateral`. */
export interface BuyBackstopCollateralParameters extends QuoteBackstopCollateralParameters {
  /** The account that pays (out of its positive quote balance, never on credit) and receives the tokens. */
  accountId: bigint;
  /** Most quote units to pay; default the quote's payment plus `slippageBps`. */
  maxPayment?: bigint;
  /** Default 50 (0.5%): room for the oracle moving before the transaction lands. */
  slippageBps?: number;
}

/** A purchase from the backstop, from its BackstopCollateralSold event. */
export interface BuyBackstopCollateralReturnType extends BackstopCollateralQuote {
  receipt: ContractTransactionReceipt;
}

/**
 * Buys `amount` of `token` from the backstop into `accountId` at `quoteBackstopCollateral`'s price
 * (the tokens count as the account's collateral at once), paid out of the account's quote balance
 * into the backstop, which then sweeps what its book does not need to the pool's account: never on
 * credit ("PaymentAboveQuoteBalance"). The account must meet its
 * initial requirement afterwards ("InsufficientMargin"); above `maxPayment` the call reverts with
 * "PaymentAboveLimit", and while the protocol is paused with "BackstopSalePaused".
 * @example
 * const { payment } = await buyBackstopCollateral(client, { accountId, token: "WETH", amount: parseEther("1") });
 */
export async function buyBackstopCollateral(
  client: XMarginClient,
  params: BuyBackstopCollateralParameters,
): Promise<BuyBackstopCollateralReturnType> {
  requireSigner(client);
  const auction = client.contracts.liquidationAuction;
  const token = resolveToken(client, params.token);
  const limit =
    params.maxPayment ??
    plusSlippage((await quoteBackstopCollateral(client, params)).payment, params.slippageBps);
  const args = [params.accountId, token, params.amount, limit] as const;
  const { backstop } = await protocolAccounts(client);
  // The buyer is margin-checked and the backstop's book valued for the sweep: options may need repricing.
  const receipt = await send(client, async () =>
    auction.buyBackstopCollateral(
      ...args,
      await booksCheckedGas(client, [params.accountId, backstop], () =>
        auction.buyBackstopCollateral.estimateGas(...args),
      ),
    ),
  );
  const [sold] = eventsOf(receipt, auction.interface, "BackstopCollateralSold", String(auction.target));
  if (!sold) throw new Error(`no BackstopCollateralSold event in ${receipt.hash}`);
  return { receipt, payment: sold.args.payment as bigint, discount: sold.args.discount as bigint };
}
