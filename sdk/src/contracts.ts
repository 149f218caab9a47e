/**
 * Typed contract bindings (typechain factories over the protocol's interfaces: ABI only, no bytecode).
 * @packageDocumentation
 */
import type { ContractRunner } from "ethers";
import { IAccounts__factory } from "../../typechain-types/factories/contracts/interfaces/IAccounts__factory";
import { ICollateralVault__factory } from "../../typechain-types/factories/contracts/interfaces/ICollateralVault__factory";
import { IInsuranceFund__factory } from "../../typechain-types/factories/contracts/interfaces/IInsuranceFund__factory";
import { ILiquidationAuction__factory } from "../../typechain-types/factories/contracts/interfaces/ILiquidationAuction__factory";
import { ILiquidityPool__factory } from "../../typechain-types/factories/contracts/interfaces/ILiquidityPool__factory";
import { IMarginEngine__factory } from "../../typechain-types/factories/contracts/interfaces/IMarginEngine__factory";
import { IOracleRouter__factory } from "../../typechain-types/factories/contracts/interfaces/IOracleRouter__factory";
import { IPerpMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IPerpMarket__factory";
import { IOptionMarket__factory } from "../../typechain-types/factories/contracts/interfaces/IOptionMarket__factory";
import { IERC20Metadata__factory } from "../../typechain-types/factories/@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata__factory";
import { IERC20Permit__factory } from "../../typechain-types/factories/@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit__factory";
import { IERC4626__factory } from "../../typechain-types/factories/@openzeppelin/contracts/interfaces/IERC4626__factory";
import { IERC5267__factory } from "../../typechain-types/factories/@openzeppelin/contracts/interfaces/IERC5267__factory";
import { Pausable__factory } from "../../typechain-types/factories/@openzeppelin/contracts/utils/Pausable__factory";
import { AggregatorV3Interface__factory } from "../../typechain-types/factories/@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface__factory";
import type { IAccounts } from "../../typechain-types/contracts/interfaces/IAccounts";
import type { ICollateralVault } from "../../typechain-types/contracts/interfaces/ICollateralVault";
import type { IInsuranceFund } from "../../typechain-types/contracts/interfaces/IInsuranceFund";
import type { ILiquidationAuction } from "../../typechain-types/contracts/interfaces/ILiquidationAuction";
import type { ILiquidityPool } from "../../typechain-types/contracts/interfaces/ILiquidityPool";
import type { IMarginEngine } from "../../typechain-types/contracts/interfaces/IMarginEngine";
import type { IOracleRouter } from "../../typechain-types/contracts/interfaces/IOracleRouter";
import type { IPerpMarket } from "../../typechain-types/contracts/interfaces/IPerpMarket";
import type { IOptionMarket } from "../../typechain-types/contracts/interfaces/IOptionMarket";
import type { IERC20Metadata } from "../../typechain-types/@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata";
import type { IERC20Permit } from "../../typechain-types/@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit";
import type { IERC4626 } from "../../typechain-types/@openzeppelin/contracts/interfaces/IERC4626";
import type { IERC5267 } from "../../typechain-types/@openzeppelin/contracts/interfaces/IERC5267";
import type { Pausable } from "../../typechain-types/@openzeppelin/contracts/utils/Pausable";
import type { AggregatorV3Interface } from "../../typechain-types/@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface";
import type { Deployment } from "./deployment";

export type {
  IAccounts,
  ICollateralVault,
  IInsuranceFund,
  ILiquidationAuction,
  ILiquidityPool,
  IMarginEngine,
  IOracleRouter,
  IPerpMarket,
  IOptionMarket,
  IERC20Metadata,
  IERC20Permit,
  IERC4626,
  IERC5267,
  Pausable,
  AggregatorV3Interface,
};

/** The protocol's contracts, bound to the client's runner. */
export interface XMarginContracts {
  accounts: IAccounts;
  vault: ICollateralVault;
  engine: IMarginEngine;
  perpMarket: IPerpMarket;
  liquidityPool: ILiquidityPool;
  liquidationAuction: ILiquidationAuction;
  oracleRouter: IOracleRouter;
  insuranceFund: IInsuranceFund;
  /** The OptionMarket, when the deployment has one (option actions go through `optionMarketOf`). */
  optionMarket?: IOptionMarket;
}

/**
 * Binds every contract of `deployment` to `runner`.
 * @example
 * const { engine } = connectContracts(deployment, provider);
 * const h = await engine.health(1n);
 */
export function connectContracts(deployment: Deployment, runner: ContractRunner): XMarginContracts {
  const c = deployment.contracts;
  return {
    accounts: IAccounts__factory.connect(c.accounts, runner),
    vault: ICollateralVault__factory.connect(c.vault, runner),
    engine: IMarginEngine__factory.connect(c.engine, runner),
    perpMarket: IPerpMarket__factory.connect(c.perpMarket, runner),
    liquidityPool: ILiquidityPool__factory.connect(c.liquidityPool, runner),
    liquidationAuction: ILiquidationAuction__factory.connect(c.liquidationAuction, runner),
    oracleRouter: IOracleRouter__factory.connect(c.oracleRouter, runner),
    insuranceFund: IInsuranceFund__factory.connect(c.insuranceFund, runner),
    optionMarket:
      c.optionMarket === undefined ? undefined : IOptionMarket__factory.connect(c.optionMarket, runner),
  };
}

/**
 * An ERC-20 (with metadata) at `address`.
 * @example
 * const decimals = await erc20(client.deployment.tokens.USDC, client.runner).decimals();
 */
export function erc20(address: string, runner: ContractRunner): IERC20Metadata {
  return IERC20Metadata__factory.connect(address, runner);
}

/**
 * The EIP-2612 view of a token at `address` (whether the token implements it is checked by callers).
 * @example
 * const nonce = await erc20Permit(token, provider).nonces(owner);
 */
export function erc20Permit(address: string, runner: ContractRunner): IERC20Permit {
  return IERC20Permit__factory.connect(address, runner);
}

/**
 * The EIP-5267 domain view of a contract at `address`.
 * @example
 * const domain = await eip5267(token, provider).eip712Domain();
 */
export function eip5267(address: string, runner: ContractRunner): IERC5267 {
  return IERC5267__factory.connect(address, runner);
}

/**
 * The ERC-4626 view of a vault share at `address`.
 * @example
 * const assets = await erc4626(sWETH, provider).convertToAssets(10n ** 18n);
 */
export function erc4626(address: string, runner: ContractRunner): IERC4626 {
  return IERC4626__factory.connect(address, runner);
}

/**
 * The OpenZeppelin `Pausable` view of a contract at `address` (the vault's guardian pause of
 * withdrawals, which `ICollateralVault` does not declare).
 * @example
 * const paused = await pausable(client.deployment.contracts.vault, provider).paused();
 */
export function pausable(address: string, runner: ContractRunner): Pausable {
  return Pausable__factory.connect(address, runner);
}

/**
 * A Chainlink price feed at `address` (`AggregatorV3Interface`): the feeds `OracleRouter.settlementFeed`
 * names, whose rounds settle option series.
 * @example
 * const { updatedAt } = await aggregatorV3(feed, provider).getRoundData(roundId);
 */
export function aggregatorV3(address: string, runner: ContractRunner): AggregatorV3Interface {
  return AggregatorV3Interface__factory.connect(address, runner);
}
