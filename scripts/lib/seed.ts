/**
 * Demo accounts on a deployment with mock tokens (localhost): an LP deposit, an insurance top-up,
 * option series (two of them expiring in two hours, so a keeper can settle them after a time jump),
 * and traders in cross and isolated accounts with perp and option positions. Plain ethers (any
 * Signer), so the seeding script, the demo and end-to-end tests share it.
 *
 * At the seeded prices (ETH 3,000, BTC 60,000) every account is healthy. Bob's isolated account is the
 * fragile one: 10,000 USDC behind a 20 ETH long (bought at ~3,033 with the skew premium). If ETH falls
 * to 2,650 his equity (~2,300 USD) drops below his maintenance requirement (~4,000 USD) while staying
 * positive: liquidatable and solvent. Everybody else stays healthy at 2,650.
 *
 * Options (ETH 3,000, 60% vol): Alice's cross account is long 2 ETH-3000 calls (2 h) and 1 ETH-3300
 * call (30 days) and 0.1 BTC-60000 put (30 days); Carol's cross account is short 1 ETH-3000 put (2 h);
 * Carol's isolated options account is long 2 ETH-3000 puts (2 h). Bob's isolated account holds one
 * market only (his perp).
 */
import { MaxUint256, encodeBytes32String, parseUnits, type Signer } from "ethers";
import type { Deployment } from "../../deploy/deployment";
import { IAccounts__factory } from "../../typechain-types/factories/contracts/interfaces/IAccounts__factory";
import { ICollateralVault__factory } from "../../typechain-types/factories/contracts/interfaces/ICollateralVault__factory";
import { IInsuranceFund__factory } from "../../typechain-types/factories/contracts/interfaces/IInsuranceFund__factory";
import { IPerpMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IPerpMarket__factory";
import { IOptionMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IOptionMarket__factory";
import { IERC4626__factory } from "../../typechain-types/factories/@openzeppelin/contracts/interfaces/IERC4626__factory";
import { MockERC20__factory } from "../../typechain-types/factories/contracts/test/MockERC20__factory";

export const MarginMode = { CROSS: 0n, ISOLATED: 1n } as const;

export interface SeedSigners {
  /** Funds the insurance fund. */
  deployer: Signer;
  lp: Signer;
  alice: Signer;
  bob: Signer;
  carol: Signer;
}

export interface SeedResult {
  accounts: {
    aliceCross: bigint;
    aliceIsolated: bigint;
    bob: bigint;
    carol: bigint;
    /** Carol's ISOLATED account holding one option series. */
    carolOptions: bigint;
  };
  /** Option series ids. */
  series: { ethCallSoon: bigint; ethPutSoon: bigint; ethCall30d: bigint; btcPut30d: bigint };
  /** Expiry timestamps of the short (2 h) and long (30 days) series. */
  expiries: { soon: bigint; month: bigint };
  lpShares: bigint;
}

/**
 * Trading parameters of the seeded series (test/shared/options.ts DEFAULT_SERIES_PARAMS): one vol point
 * of spread each side, a 3 bp fee with a 20% insurance share, 1,000 contracts of open interest per side.
 */
export const SEED_SERIES_PARAMS = {
  spreadFactor: 10n ** 16n,
  fee: 3n * 10n ** 14n,
  insuranceFeeShare: 2n * 10n ** 17n,
  maxOpenInterest: 1_000n * 10n ** 18n,
};

export const SOON = 2n * 3_600n;
export const MONTH = 30n * 86_400n;

const NO_DEADLINE = 2n ** 64n;
/**
 * Every seeding transaction carries this limit instead of an estimate: a trade's gas depends on the
 * block it lands in (funding accrual), so an exact estimate made one block earlier can fall short.
 */
const GAS = { gasLimit: 3_000_000n };

/** Typed handles and the small transaction helpers every seeding step uses. */
function seeding(deployment: Deployment, signers: SeedSigners) {
  const d = deployment;
  const token = (symbol: string) => {
    const address = d.tokens[symbol];
    if (!address) throw new Error(`deployment has no token ${symbol}`);
    return MockERC20__factory.connect(address, signers.deployer);
  };
  const usdc = token("USDC");
  const weth = token("WETH");
  const wbtc = token("WBTC");
  const units = async (t: typeof usdc, amount: string) => parseUnits(amount, await t.decimals());
  const wait = async (tx: Promise<{ wait(): Promise<unknown> }>) => {
    await (await tx).wait();
  };
  const mintTo = async (t: typeof usdc, owner: Signer, spender: string, amount: bigint) => {
    await wait(t.mint(await owner.getAddress(), amount, GAS));
    await wait(t.connect(owner).approve(spender, amount, GAS));
  };

  const accounts = IAccounts__factory.connect(d.contracts.accounts, signers.deployer);
  const vault = ICollateralVault__factory.connect(d.contracts.vault, signers.deployer);
  const perps = IPerpMarket__factory.connect(d.contracts.perpMarket, signers.deployer);

  const open = async (owner: Signer, mode: bigint, deposits: [typeof usdc, string][]): Promise<bigint> => {
    const receipt = await (await accounts.connect(owner).createAccount(mode, GAS)).wait();
    const created = receipt!.logs
      .map((log) => {
        try {
          return accounts.interface.parseLog(log);
        } catch {
          return null;
        }
      })
      .find((e) => e?.name === "AccountCreated");
    const id = created!.args.accountId as bigint;
    for (const [t, amount] of deposits) {
      const value = await units(t, amount);
      await mintTo(t, owner, d.contracts.vault, value);
      await wait(vault.connect(owner).deposit(id, t, value, GAS));
    }
    return id;
  };
  const trade = (owner: Signer, id: bigint, market: string, size: string) => {
    const delta = parseUnits(size, 18);
    const marketId = d.markets[market];
    if (!marketId) throw new Error(`deployment has no market ${market}`);
    return wait(
      perps.connect(owner).trade(id, marketId, delta, delta > 0n ? MaxUint256 : 0n, NO_DEADLINE, GAS),
    );
  };

  const options = IOptionMarket__factory.connect(d.contracts.optionMarket, signers.deployer);
  /** Lists a series, or returns the id of the one already listed with these terms (seeding twice). */
  const list = async (
    underlying: string,
    strike: string,
    expiry: bigint,
    isCall: boolean,
  ): Promise<bigint> => {
    const args = [
      encodeBytes32String(underlying),
      parseUnits(strike, 18),
      expiry,
      isCall,
      SEED_SERIES_PARAMS,
    ] as const;
    try {
      await options.listSeries.staticCall(...args);
    } catch (error) {
      const listed = options.interface.parseError((error as { data?: string }).data ?? "0x");
      if (listed?.name === "SeriesAlreadyListed") return listed.args.seriesId as bigint;
      throw error;
    }
    await wait(options.listSeries(...args, GAS));
    return options.seriesCount();
  };
  const tradeOption = (owner: Signer, id: bigint, seriesId: bigint, size: string) => {
    const delta = parseUnits(size, 18);
    return wait(
      options.connect(owner).trade(id, seriesId, delta, delta > 0n ? MaxUint256 : 0n, NO_DEADLINE, GAS),
    );
  };

  return { d, usdc, weth, wbtc, units, wait, mintTo, vault, open, trade, list, tradeOption };
}

/** The pool's capital (1,000,000 USDC from the LP) and a 10,000 USDC insurance top-up. Returns the LP's shares. */
export async function seedLiquidity(deployment: Deployment, signers: SeedSigners): Promise<bigint> {
  const { d, usdc, units, wait, mintTo, vault } = seeding(deployment, signers);
  // The pool is every trade's counterparty: it needs capital before anyone trades.
  const pool = IERC4626__factory.connect(d.contracts.liquidityPool, signers.lp);
  const poolCapital = await units(usdc, "1000000");
  await mintTo(usdc, signers.lp, d.contracts.liquidityPool, poolCapital);
  await wait(pool.deposit(poolCapital, await signers.lp.getAddress(), GAS));
  const lpShares = await pool.balanceOf(await signers.lp.getAddress());

  // Anyone may deposit the quote token into any account: top up the insurance fund's.
  const fund = IInsuranceFund__factory.connect(d.contracts.insuranceFund, signers.deployer);
  const topUp = await units(usdc, "10000");
  await mintTo(usdc, signers.deployer, d.contracts.vault, topUp);
  await wait(vault.deposit(await fund.accountId(), usdc, topUp, GAS));

  return lpShares;
}

/** Option series and the traders' accounts and positions (the pool must hold capital already). */
export async function seedTraders(
  deployment: Deployment,
  signers: SeedSigners,
): Promise<Omit<SeedResult, "lpShares">> {
  const { usdc, weth, wbtc, open, trade, list, tradeOption } = seeding(deployment, signers);
  const aliceCross = await open(signers.alice, MarginMode.CROSS, [
    [usdc, "10000"],
    [weth, "5"],
  ]);
  await trade(signers.alice, aliceCross, "ETH", "1");
  await trade(signers.alice, aliceCross, "BTC", "-0.2");

  const aliceIsolated = await open(signers.alice, MarginMode.ISOLATED, [[wbtc, "0.5"]]);
  await trade(signers.alice, aliceIsolated, "BTC", "0.5");

  const bob = await open(signers.bob, MarginMode.ISOLATED, [[usdc, "10000"]]);
  await trade(signers.bob, bob, "ETH", "20");

  const carol = await open(signers.carol, MarginMode.CROSS, [[usdc, "20000"]]);
  await trade(signers.carol, carol, "BTC", "-0.3");

  // Option series: expiries counted from the chain's clock (it may run ahead of the wall clock).
  const now = BigInt((await signers.deployer.provider!.getBlock("latest"))!.timestamp);
  const expiries = { soon: now + SOON, month: now + MONTH };
  const series = {
    ethCallSoon: await list("ETH", "3000", expiries.soon, true),
    ethPutSoon: await list("ETH", "3000", expiries.soon, false),
    ethCall30d: await list("ETH", "3300", expiries.month, true),
    btcPut30d: await list("BTC", "60000", expiries.month, false),
  };
  await tradeOption(signers.alice, aliceCross, series.ethCallSoon, "2");
  await tradeOption(signers.alice, aliceCross, series.ethCall30d, "1");
  await tradeOption(signers.alice, aliceCross, series.btcPut30d, "0.1");
  await tradeOption(signers.carol, carol, series.ethPutSoon, "-1");
  const carolOptions = await open(signers.carol, MarginMode.ISOLATED, [[usdc, "2000"]]);
  await tradeOption(signers.carol, carolOptions, series.ethPutSoon, "2");

  return { accounts: { aliceCross, aliceIsolated, bob, carol, carolOptions }, series, expiries };
}

/** seedLiquidity, then seedTraders. */
export async function seedDemo(deployment: Deployment, signers: SeedSigners): Promise<SeedResult> {
  const lpShares = await seedLiquidity(deployment, signers);
  return { ...(await seedTraders(deployment, signers)), lpShares };
}
