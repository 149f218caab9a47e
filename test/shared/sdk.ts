import { type BaseContract, BrowserProvider, type Eip1193Provider, type Signer } from "ethers";
import { ethers, network } from "hardhat";
import { expect } from "chai";
import {
  type Deployment,
  type Exposure,
  type XMarginClient,
  type XMarginError,
  createAccount,
  createClient,
  deposit,
  isXMarginError,
} from "../../sdk/src";
import { MarginMode, deploySystem, openAccount, wad, withdrawToInitialMargin, type System } from "./system";
import { blocklistingUsdc } from "./tokens";
import {
  DAY,
  deployOptionsSystem,
  deployOptionsSystemWithoutFunding,
  fromNow,
  listSeries,
  tradeOption,
} from "./options";

/**
 * A market's `exposure` answer (a typechain struct, an array with named fields) as the SDK's `Exposure`:
 * the named fields alone, so `deep.equal` compares the SDK's model with the chain's field by field.
 */
export function sdkExposureOf(e: Exposure): Exposure {
  return {
    delta: e.delta,
    gamma: e.gamma,
    vega: e.vega,
    value: e.value,
    notional: e.notional,
    optionSize: e.optionSize,
    vanna: e.vanna,
    volga: e.volga,
    totalVolatility: e.totalVolatility,
    modelVolatility: e.modelVolatility,
    exitDiscount: e.exitDiscount,
    timeValue: e.timeValue,
  };
}

/** What `deploymentOf` reads: a system, with its OptionMarket when it has one (`deployOptionsSystem`). */
export type SdkSystem = System & { options?: BaseContract };

/** The SDK deployment (addresses JSON) of a system deployed by `deploySystem` (or `deployOptionsSystem`). */
export async function deploymentOf(sys: SdkSystem): Promise<Deployment> {
  const address = (c: { getAddress(): Promise<string> }): Promise<string> => c.getAddress();
  return {
    chainId: Number((await ethers.provider.getNetwork()).chainId),
    contracts: {
      accounts: await address(sys.accounts),
      vault: await address(sys.vault),
      engine: await address(sys.engine),
      perpMarket: await address(sys.perps),
      liquidityPool: await address(sys.pool),
      liquidationAuction: await address(sys.auction),
      oracleRouter: await address(sys.router),
      insuranceFund: await address(sys.insuranceFund),
      ...(sys.options ? { optionMarket: await address(sys.options) } : {}),
    },
    tokens: {
      USDC: await address(sys.usdc),
      WETH: await address(sys.weth),
      WBTC: await address(sys.wbtc),
      sWETH: await address(sys.sweth),
    },
  };
}

/** An SDK client for `sys` acting as `signer`. */
export async function sdkClient(sys: SdkSystem, signer: Signer): Promise<XMarginClient> {
  return createClient({ runner: signer, deployment: await deploymentOf(sys) });
}

/**
 * A client over ethers' BrowserProvider on Hardhat's EIP-1193 provider, signing as `who` (Alice): what
 * sdk/README's browser client is (`new BrowserProvider(window.ethereum)`), and what a JsonRpcProvider does
 * too. Both answer `getBlockNumber` and `getBlock("latest")` from a cache for 250 ms (`cacheTimeout`); a
 * node that mines at once returns a receipt inside it. The window is widened to 10 s so that no spec
 * depends on the machine's speed (review round 158).
 */
export async function browserClient(sys: SdkSystem, who = sys.alice.address): Promise<XMarginClient> {
  const provider = new BrowserProvider(network.provider, undefined, { cacheTimeout: 10_000 });
  return createClient({ runner: await provider.getSigner(who), deployment: await deploymentOf(sys) });
}

/** What `walletClient`'s wallet does besides passing requests on. */
export interface WalletOptions {
  /** Seconds the clock moves, with a block mined, before each `eth_sendTransaction` (a user reading the wallet's confirmation; a block's time on chain). */
  delaySeconds?: number;
  /** Collects each `eth_estimateGas` answer. */
  estimates?: bigint[];
  /** Collects each sent transaction's gas limit (−1 for none). */
  sentGas?: bigint[];
  /**
   * Runs before each `eth_sendTransaction`, after the delay: what happens on chain between the wallet's
   * estimate and the block that mines it (a volatility round, another trader's trade).
   */
  beforeSend?: () => Promise<void>;
}

/**
 * A `WalletOptions.beforeSend` that runs the action last given to `arm`, once: one event (a volatility
 * round, say) between one send's estimate and its block, none before the sends after it.
 */
export function onceBeforeSend(): {
  arm(action: () => Promise<void>): void;
  beforeSend: () => Promise<void>;
} {
  let armed: (() => Promise<void>) | undefined;
  return {
    arm(action) {
      armed = action;
    },
    async beforeSend() {
      const run = armed;
      armed = undefined;
      await run?.();
    },
  };
}

/** The gas limit a mined transaction was sent with and the gas it used. */
export async function gasLimitAndUse(hash: string): Promise<{ limit: bigint; used: bigint }> {
  const [tx, receipt] = await Promise.all([
    ethers.provider.getTransaction(hash),
    ethers.provider.getTransactionReceipt(hash),
  ]);
  return { limit: tx!.gasLimit, used: receipt!.gasUsed };
}

/** Alice's client through a wallet over Hardhat's provider, without a block cache (`WalletOptions`). */
export async function walletClient(sys: SdkSystem, opts: WalletOptions = {}): Promise<XMarginClient> {
  const wallet: Eip1193Provider = {
    async request(req: { method: string; params?: unknown[] | Record<string, unknown> }) {
      if (req.method === "eth_sendTransaction") {
        const [tx] = req.params as { gas?: string }[];
        opts.sentGas?.push(BigInt(tx.gas ?? -1));
        if (opts.delaySeconds !== undefined) {
          await network.provider.request({ method: "evm_increaseTime", params: [opts.delaySeconds] });
          await network.provider.request({ method: "evm_mine", params: [] });
        }
        await opts.beforeSend?.();
      }
      const answer = await network.provider.request(req as { method: string; params?: unknown[] });
      if (req.method === "eth_estimateGas") opts.estimates?.push(BigInt(answer as string));
      return answer;
    },
  };
  const provider = new BrowserProvider(wallet, undefined, { cacheTimeout: -1 });
  return createClient({
    runner: await provider.getSigner(sys.alice.address),
    deployment: await deploymentOf(sys),
  });
}

/** Alice's cross account holding 10,000 USDC (each spec makes its client: none outlives a snapshot). */
export async function alicesUsdcAccount() {
  const sys = await deploySystem();
  const accountId = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 10_000n * 10n ** 6n]]);
  return { sys, accountId };
}

/** `deploySystem` with SDK clients for Alice, Bob and the keeper account. */
export async function systemWithClients() {
  const sys = await deploySystem();
  const alice = await sdkClient(sys, sys.alice);
  const bob = await sdkClient(sys, sys.bob);
  const keeper = await sdkClient(sys, sys.keeper);
  return { sys, alice, bob, keeper };
}

/**
 * An options system and Alice's SDK client: her account holds 100,000 USDC; a 7-day ETH 3200 call and
 * 2800 put are listed.
 */
export async function optionTrader() {
  const sys = await deployOptionsSystem();
  const expiry = await fromNow(7n * DAY);
  const call = await listSeries(sys.options, "ETH", "3200", expiry, true);
  const put = await listSeries(sys.options, "ETH", "2800", expiry, false);
  const alice = await sdkClient(sys, sys.alice);
  const usdc = 100_000n * 10n ** 6n;
  await sys.usdc.mint(sys.alice.address, usdc);
  const { accountId } = await createAccount(alice);
  await deposit(alice, { accountId, token: "USDC", amount: usdc });
  return { sys, alice, accountId, call, put, expiry };
}

/**
 * Alice's calendar at ETH 3,000 and 60% (perp funding off): short 10 calls struck at 3,000 expiring in 7
 * days, long 10 expiring in 90, on 100,000 USDC withdrawn to her initial requirement; her SDK client.
 */
export async function calendarAtIM() {
  const sys = await deployOptionsSystemWithoutFunding();
  const alice = await openAccount(sys, sys.alice, MarginMode.CROSS, [[sys.usdc, 100_000n * 10n ** 6n]]);
  const near = await listSeries(sys.options, "ETH", "3000", await fromNow(7n * DAY), true);
  const far = await listSeries(sys.options, "ETH", "3000", await fromNow(90n * DAY), true);
  await tradeOption(sys.options, sys.alice, alice, near, -wad("10"));
  await tradeOption(sys.options, sys.alice, alice, far, wad("10"));
  await withdrawToInitialMargin(sys, sys.alice, alice);
  return { sys, alice, client: await sdkClient(sys, sys.alice) };
}

/** Expects `promise` to reject with the protocol error `name` (an `XMarginError`); returns it. */
export async function expectXMarginError(promise: Promise<unknown>, name: string) {
  try {
    await promise;
  } catch (e) {
    if (isXMarginError(e)) {
      expect(e.name).to.equal(name);
      return e;
    }
    throw e;
  }
  expect.fail(`expected ${name}`);
}

/**
 * Expects `sent` (an action a preview said would revert) to revert with exactly the predicted error, its
 * arguments included, then mines the block the failed transaction left pinned.
 */
export async function expectPredictedRevert(sent: Promise<unknown>, predicted: XMarginError): Promise<void> {
  await sent.then(
    () => expect.fail(`should revert with ${predicted.name}`),
    (e: unknown) => {
      if (!isXMarginError(e)) throw e;
      expect({ name: e.name, args: e.args }).to.deep.equal({ name: predicted.name, args: predicted.args });
    },
  );
  await ethers.provider.send("evm_mine", []);
}

/**
 * Carol owns an account holding 1,000 USDC and a wallet of 10,000 USDC and 10 WETH, with no allowance to
 * the vault or the pool; USDC gets BlocklistERC20Mock's code (USDC's pause and blocklist, both off).
 * Her SDK client and the vault's address (review rounds 152 and 155).
 */
export async function carolsBlocklistingWallet() {
  const sys = await deploySystem();
  const carol = await openAccount(sys, sys.carol, MarginMode.CROSS, [[sys.usdc, 1_000n * 10n ** 6n]]);
  await sys.usdc.mint(sys.carol.address, 10_000n * 10n ** 6n);
  await sys.weth.mint(sys.carol.address, wad("10"));
  const usdc = await blocklistingUsdc(sys.usdc);
  const client = await sdkClient(sys, sys.carol);
  const vault = await sys.vault.getAddress();
  return { sys, usdc, carol, client, vault };
}
