// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {IMarket} from "../interfaces/IMarket.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";
import {IOracleRouter} from "../interfaces/IOracleRouter.sol";

/// @title MarketBase
/// @notice What the perp and option markets share: their wiring to the engine, the vault and the oracle,
/// read from the engine once at deployment, and the rule that only the engine moves positions between
/// accounts.
abstract contract MarketBase {
    uint256 internal constant WAD = 1e18;

    /// @notice The margin engine: account lists, margin checks and every quote movement.
    IMarginEngine public immutable engine;
    /// @notice The account registry: who may trade an account, and the traders' allowances.
    IAccounts public immutable accounts;
    /// @notice The oracle router: spot prices, volatilities and settlement rounds.
    IOracleRouter public immutable oracle;
    /// @notice The collateral vault, read from the engine.
    ICollateralVault public immutable vault;
    /// @notice The token every premium, fee, PnL and payout settles in, read from the vault.
    address public immutable quoteToken;
    /// @notice The LiquidityPool's margin account, read from the engine at deployment.
    uint256 public immutable poolAccountId;
    /// @notice The liquidation auction's backstop account, read from the engine at deployment: its
    /// positions are the LPs' own, so the pool's limits leave them out of the traders' sides.
    uint256 public immutable backstopAccountId;
    /// @dev The liquidation auction, read from the engine at deployment. Its `bidAndClose` closes every
    /// position of a bidder account that holds nothing else and then requires the flat account to meet
    /// its initial requirement, so the per-trade reduction checks are skipped for its trades: run leg by
    /// leg they refused a capital-light keeper the first leg of any hedge (a covered call, a spread) and
    /// priced the bidder's whole remaining book twice per leg (review round 28). `unwindBackstop`, its
    /// other caller, trades the backstop, which those checks already let through.
    address internal immutable liquidator;
    /// @notice One quote unit in USD WAD: 10^(18 − quoteDecimals).
    uint256 public immutable quoteUnit;
    /// @dev WAD·quoteUnit: divides a 36-decimal USD amount into quote units.
    uint256 internal immutable rawPerQuoteUnit;

    modifier onlyEngine() {
        if (msg.sender != address(engine)) revert IMarket.NotMarginEngine(msg.sender);
        _;
    }

    /// @param engine_ The margin engine (already initialised with its pool account).
    /// @param accounts_ The account registry (trade authorisation).
    /// @param oracle_ The oracle router.
    /// @param quoteDecimals The quote token's decimals (≤ 18), checked against the token: a wrong value
    /// would mis-scale every premium, fee and settlement by powers of ten.
    constructor(IMarginEngine engine_, IAccounts accounts_, IOracleRouter oracle_, uint8 quoteDecimals) {
        uint256 pool = engine_.poolAccountId();
        if (pool == 0) revert IMarket.PoolAccountNotSet();
        engine = engine_;
        accounts = accounts_;
        oracle = oracle_;
        vault = engine_.vault();
        quoteToken = address(vault.quoteToken());
        if (quoteDecimals > 18 || quoteDecimals != IERC20Metadata(quoteToken).decimals()) {
            revert IMarket.InvalidQuoteDecimals(quoteDecimals);
        }
        poolAccountId = pool;
        backstopAccountId = engine_.backstopAccountId();
        liquidator = engine_.liquidator();
        quoteUnit = 10 ** (18 - quoteDecimals);
        rawPerQuoteUnit = WAD * 10 ** (18 - quoteDecimals);
    }

    function _positive(int256 x) internal pure returns (uint256) {
        return x > 0 ? uint256(x) : 0;
    }
}
