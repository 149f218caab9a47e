/**
 * Demo accounts on a deployment with mock tokens (localhost): an LP deposit, an insurance top-up, and
 * traders in cross and isolated accounts with perp positions. Plain ethers (any Signer), so the seeding
 * script, the demo and end-to-end tests share it.
 *
 * At the seeded prices (ETH 3,000, BTC 60,000) every account is healthy. Bob's isolated account is the
 * fragile one: 10,000 USDC behind a 20 ETH long (bought at ~3,033 with the skew premium). If ETH falls
 * to 2,650 his equity (~2,300 USD) drops below his maintenance requirement (~4,000 USD) while staying
 * positive: liquidatable and solvent. Everybody else stays healthy at 2,650.
 */
import { MaxUint256, parseUnits, type Signer } from "ethers";
import type { Deployment } from "../../deploy/deployment";
import { IAccounts__factory } from "../../typechain-types/factories/contracts/interfaces/IAccounts__factory";
import { ICollateralVault__factory } from "../../typechain-types/factories/contracts/interfaces/ICollateralVault__factory";
import { IInsuranceFund__factory } from "../../typechain-types/factories/contracts/interfaces/IInsuranceFund__factory";
import { IPerpMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IPerpMarket__factory";
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
  accounts: { aliceCross: bigint; aliceIsolated: bigint; bob: bigint; carol: bigint };
  lpShares: bigint;
}

const NO_DEADLINE = 2n ** 64n;
/**
 * Every seeding transaction carries this limit instead of an estimate: a trade's gas depends on the
 * block it lands in (funding accrual), so an exact estimate made one block earlier can fall short.
 */
const GAS = { gasLimit: 3_000_000n };

export async function seedDemo(deployment: Deployment, signers: SeedSigners): Promise<SeedResult> {
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

  // The pool is every trade's counterparty: it needs capital before anyone trades.
  const pool = IERC4626__factory.connect(d.contracts.liquidityPool, signers.lp);
  const poolCapital = await units(usdc, "1000000");
  await mintTo(usdc, signers.lp, d.contracts.liquidityPool, poolCapital);
  await wait(pool.deposit(poolCapital, await signers.lp.getAddress(), GAS));
  const lpShares = await pool.balanceOf(await signers.lp.getAddress());

  // Anyone may deposit into any account: top up the insurance fund's.
  const fund = IInsuranceFund__factory.connect(d.contracts.insuranceFund, signers.deployer);
  const topUp = await units(usdc, "10000");
  await mintTo(usdc, signers.deployer, d.contracts.vault, topUp);
  await wait(vault.deposit(await fund.accountId(), usdc, topUp, GAS));

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

  return { accounts: { aliceCross, aliceIsolated, bob, carol }, lpShares };
}
