// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {ICollateralVault} from "./ICollateralVault.sol";
import {IOracleRouter} from "./IOracleRouter.sol";
import {IUpdateThrottle} from "./IUpdateThrottle.sol";

/// @title IMarginEngine
/// @notice The clearinghouse: the one contract that sees every position of an account, computes
/// its health and enforces it. Markets report positions to it; all value movement between accounts
/// goes through it.
interface IMarginEngine is IUpdateThrottle {
    /// @notice An account's health, all USD WAD.
    /// @param equityInitial Collateral at initial weights (plus the credit of each token shocked with the
    /// account's positions on its oracle asset: `ICollateralVault.TokenMark.credit`, at most mark · the MM
    /// shock floor) + Σ position values (PnL incl. funding) − Σ
    /// exit discounts (the skew premium closing each perp would pay: IMarket.Exposure) − Σ |vega|·0.05
    /// over option positions (one skew step of each series, which the risk role may move alone).
    /// @param equityMaintenance Collateral at maintenance weights (plus the same credits) + Σ position
    /// values.
    /// @param equityMark Collateral without haircuts + Σ position values (mark-to-market).
    /// @param initialRequirement IM.
    /// @param maintenanceRequirement MM.
    /// @param healthRatio equityMaintenance / MM (WAD); 0 when equityMaintenance < 0, else
    /// type(uint256).max when MM is 0.
    /// @param grossNotional Σ |position notional| (USD WAD): the size of the book.
    /// @param volatilityUnavailable The volatility feed of a held underlying failed its checks: that
    /// underlying's shocks are at their floors, so both requirements are lower bounds (`health`,
    /// `healthMany`: enough to liquidate on; every check on new risk reverts with the feed's error).
    struct Health {
        int256 equityInitial;
        int256 equityMaintenance;
        int256 equityMark;
        uint256 initialRequirement;
        uint256 maintenanceRequirement;
        uint256 healthRatio;
        uint256 grossNotional;
        bool volatilityUnavailable;
    }

    /// @notice Portfolio-margin parameters of one underlying. Fractions are WAD (0.1e18 = 10%).
    /// @param mmShockFloor Smallest spot shock for MM.
    /// @param imShockFloor Smallest spot shock for IM (≥ mmShockFloor).
    /// @param mmZ z-score scaling σ·√horizon into the MM shock (WAD, 3e18 = 3σ).
    /// @param imZ z-score for IM (≥ mmZ).
    /// @param horizon Liquidation horizon in seconds used in σ·√(horizon / 365 days).
    /// @param maxShock Cap on any spot shock after size scaling (≤ 1e18).
    /// @param mmVolShock Absolute volatility shock for MM (0.2e18 = ±20 vol points).
    /// @param imVolShock Volatility shock for IM (≥ mmVolShock).
    /// @param shortOptionFloor Requirement per unit of net short options, as a fraction of spot.
    /// @param contingency Requirement as a fraction of gross notional.
    /// @param sizeScale Gross notional (USD WAD) at which the shock doubles: shocks grow with size. At
    /// least 10,000 USD, or 0 for no size term (the shock then stays at max(floor, z·σ√horizon)).
    struct RiskParams {
        uint64 mmShockFloor;
        uint64 imShockFloor;
        uint64 mmZ;
        uint64 imZ;
        uint64 horizon;
        uint64 maxShock;
        uint64 mmVolShock;
        uint64 imVolShock;
        uint64 shortOptionFloor;
        uint64 contingency;
        uint128 sizeScale;
    }

    /// @notice After the action the account's equity_IM would be below its IM.
    error InsufficientMargin(uint256 accountId, int256 equityInitial, uint256 initialRequirement);
    /// @notice The caller is not a registered market.
    error NotMarket(address caller);
    /// @notice The market contract is already registered.
    error MarketAlreadyRegistered(address market);
    /// @notice The underlying has no risk parameters.
    error UnknownUnderlying(bytes32 underlying);
    /// @notice The underlying already has risk parameters.
    error UnderlyingAlreadyListed(bytes32 underlying);
    /// @notice `MAX_UNDERLYINGS` underlyings are listed already; underlyings are never delisted.
    error UnderlyingLimitReached(uint256 maxUnderlyings);
    /// @notice The account already holds MAX_MARKETS_PER_ACCOUNT markets.
    error TooManyMarkets(uint256 accountId);
    /// @notice An ISOLATED account may hold one market only.
    error IsolatedAccountMarketTaken(uint256 accountId);
    /// @notice A risk parameter is outside its hard bounds or moved more than its max step.
    error RiskParamOutOfBounds(bytes32 parameter);
    /// @notice The pool account, insurance fund or liquidator was already set, or is invalid.
    error AlreadySet();
    /// @notice The account is frozen by a liquidation auction: deposits and risk-reducing actions only.
    error AccountFrozen(uint256 accountId);
    /// @notice A risk-reducing trade raised the account's maintenance requirement (it unwound one leg of
    /// a hedge) and the account does not meet its initial requirement afterwards.
    error RiskIncreased(uint256 accountId, uint256 maintenanceBefore, uint256 maintenanceAfter);
    /// @notice A reducing trade filled worse than the oracle price (it paid a skew premium) and left the
    /// account's equity at mark below zero: its deficit would fall on the insurance fund and the pool.
    error InsolventAfterTrade(uint256 accountId, int256 equityMark);
    /// @notice A reducing trade filled worse than the oracle price and left the account further below its
    /// maintenance requirement than before (margin = equity_MM − MM, USD WAD).
    error MaintenanceShortfallIncreased(uint256 accountId, int256 marginBefore, int256 marginAfter);
    /// @notice The caller is not the liquidation auction.
    error NotLiquidator(address caller);

    /// @notice Emitted when a market contract is registered.
    event MarketRegistered(address indexed market);
    /// @notice Emitted when an underlying's risk parameters are set.
    event RiskParamsUpdated(bytes32 indexed underlying, RiskParams params);
    /// @notice Emitted when an account starts holding a market.
    event PositionOpened(uint256 indexed accountId, address indexed market, uint256 indexed marketId);
    /// @notice Emitted when an account stops holding a market.
    event PositionClosed(uint256 indexed accountId, address indexed market, uint256 indexed marketId);
    /// @notice Emitted when a fee is charged; `toPool` goes to the pool account, `toInsurance` to the fund,
    /// both in quote-token units (the markets' `PositionModified.fee` / `OptionTraded.fee` state the same
    /// fee in USD WAD: 10^12 times larger for a 6-decimal quote).
    event FeeCharged(uint256 indexed accountId, uint256 toPool, uint256 toInsurance);

    /// @notice Reverts with AccountFrozen while the account is in a liquidation auction, else with
    /// InsufficientMargin unless equity_IM ≥ IM (the initial level only; a failed feed reverts with its
    /// error).
    function requireInitialMargin(uint256 accountId) external view;

    /// @notice The account's equity_IM and IM (`health`'s), from the initial level alone: no maintenance
    /// grid, so ~60% of a `health`'s gas for options repriced in every scenario. Strict about feeds like
    /// `requireInitialMargin` (a failed price or volatility feed reverts with its error, no floor-shock
    /// fallback), but it answers for a frozen account too. What the pool bounds LP exits by (its
    /// account's and the backstop's; §4 row 198), with `positionsValue`, the Σ of position values the
    /// evaluation counted (`positionsValue`'s number; equity_IM is collateral at initial weight, with
    /// its shocked tokens' credits, plus these less the exit discounts), so that an exit prices each book
    /// once.
    function initialMargin(
        uint256 accountId
    ) external view returns (int256 equityInitial, uint256 initialRequirement, int256 positionsValue);

    /// @notice The account's health breakdown: what liquidation acts on. A failed volatility feed of a
    /// group without options margins it at its floor shocks (`Health.volatilityUnavailable`) rather
    /// than reverting, so a volatility outage does not stop liquidations; a group with options, and
    /// every check on new risk (`requireInitialMargin`, `requireRiskReduced`, ...), revert with the
    /// feed's error. A failed price feed (of an underlying the account holds, of a collateral token it
    /// holds, or of the quote token) has no fallback: `health` reverts with the router's error
    /// (`StalePrice`, ...), also for a flat account. A flat account that owes no quote and is not in an
    /// auction can still withdraw (`ICollateralVault.withdraw` reads no price for it); one that owes quote
    /// cannot (its withdrawal checks its initial margin, with the feed's error). A contract that needs a
    /// number (a vault's NAV) must `try` it.
    function health(uint256 accountId) external view returns (Health memory);

    /// @notice Check for a trade that reduces one position of an account holding several: passes if the
    /// maintenance requirement did not grow (the trade really reduced risk), or if the account meets its
    /// initial requirement anyway and is not frozen by an auction; reverts with RiskIncreased otherwise.
    /// Without it, an account margined for a hedge could close one leg and be left naked with the
    /// hedge's margin. The backstop account
    /// always passes (it has no margin; `ILiquidationAuction.unwindBackstop` allows only reductions).
    function requireRiskReduced(uint256 accountId, uint256 maintenanceBefore) external view;

    /// @notice Check for a risk-reducing trade that filled worse than the oracle price, given the
    /// account's margin (equity_MM − MM) before it: reverts with InsolventAfterTrade if its equity at
    /// mark is below zero, and with MaintenanceShortfallIncreased if it ends below maintenance with less
    /// margin than before. Reducing trades skip the margin check, and a close into an opposite skew can
    /// cost more than it frees; a partner who made that skew takes the premium back when it closes,
    /// and the account's deficit, or its remaining position, is left to the insurance fund and the pool.
    /// The backstop account always passes (see `requireRiskReduced`).
    function requirePremiumAffordable(uint256 accountId, int256 marginBefore) external view;

    /// @notice Whether `accountId` holds, besides `marketId` of `market`, another position on the same
    /// underlying: only then can reducing that position raise the requirement (a hedge unwinding).
    function hasOtherOnUnderlying(
        uint256 accountId,
        address market,
        uint256 marketId
    ) external view returns (bool);

    /// @notice One market held by an account.
    struct MarketKey {
        address market;
        uint64 marketId;
        uint32 underlyingIndex;
    }

    /// @notice Whether new risk (risk-increasing trades) is paused by the guardian.
    function paused() external view returns (bool);

    /// @notice The LiquidityPool's margin account: the counterparty to every trade.
    function poolAccountId() external view returns (uint256);

    /// @notice The insurance fund contract.
    function insuranceFund() external view returns (address);

    /// @notice The insurance fund's margin account: fee shares and liquidation penalties are booked
    /// into it, insolvent auctions are paid out of it.
    function insuranceAccountId() external view returns (uint256);

    /// @notice The liquidation auction's backstop account (ILiquidationAuction.absorb), exempt like the
    /// pool's account from MAX_MARKETS_PER_ACCOUNT: it takes whatever books nobody bid on.
    function backstopAccountId() external view returns (uint256);

    /// @notice The liquidation auction: the only contract that may move portfolio slices.
    function liquidator() external view returns (address);

    /// @notice Whether `market` is a registered market contract (one that may report positions and move
    /// quote through the engine).
    function isMarket(address market) external view returns (bool);

    /// @notice Moves `fraction` (WAD) of every collateral balance and every position of `fromAccountId`
    /// to `toAccountId`: positive balances and positions are moved rounded down, a debt is taken over
    /// rounded up. The quote balance is sliced less `quoteHeldBack` quote units (what the auction paid
    /// the account for earlier slices: not part of the portfolio sold). Liquidator only.
    function transferSlice(
        uint256 fromAccountId,
        uint256 toAccountId,
        uint256 fraction,
        uint256 quoteHeldBack
    ) external;

    /// @notice Moves `amount` of collateral `token` (not below zero) between accounts: the backstop's
    /// collateral sales. Liquidator only.
    function transferCollateral(
        uint256 fromAccountId,
        uint256 toAccountId,
        address token,
        uint256 amount
    ) external;

    /// @notice Pays `amount` quote units out of `accountId` to `to` (flag rewards). Liquidator only.
    function payOut(uint256 accountId, address to, uint256 amount) external;

    /// @notice The collateral vault whose balances the engine moves.
    function vault() external view returns (ICollateralVault);

    /// @notice The oracle router every price of the engine's health comes from.
    function oracle() external view returns (IOracleRouter);

    /// @notice Records that `accountId` now holds `marketId` of the calling market; enforces
    /// MAX_MARKETS_PER_ACCOUNT and the single-market rule of ISOLATED accounts. Idempotent. Market only.
    function notePositionOpened(uint256 accountId, uint256 marketId, bytes32 underlying) external;

    /// @notice Records that `accountId` no longer holds `marketId` of the calling market. Market only.
    function notePositionClosed(uint256 accountId, uint256 marketId) external;

    /// @notice Moves `amount` of quote, in quote-token units, from one account to another: realised PnL,
    /// funding, premiums, liquidation payments. The caller converts from USD WAD, rounding against its
    /// trader. Markets and the liquidator only.
    function transferQuote(uint256 fromAccountId, uint256 toAccountId, uint256 amount) external;

    /// @notice Charges a fee, in quote-token units, to `accountId`: `toPool` to the pool account,
    /// `toInsurance` to the insurance fund's account. Market only.
    function chargeFee(uint256 accountId, uint256 toPool, uint256 toInsurance) external;

    /// @notice The account's maintenance requirement (`health`'s), reverting with the feed's error
    /// where a volatility feed it needs fails, where `health` falls back to the floor shocks: what a
    /// market records before a reduction that may unwind a hedge (for `requireRiskReduced`), and the
    /// strict read through which the auction and the pool surface a failed feed's error.
    function maintenanceRequirement(uint256 accountId) external view returns (uint256);

    /// @notice Health of many accounts in one call (keepers, frontends), each as `health` computes it:
    /// one account's failed price feed reverts the whole batch.
    function healthMany(uint256[] calldata accountIds) external view returns (Health[] memory);

    /// @notice Σ of the account's position values, as `health` counts them in its equity (marked to
    /// market, against the account), without the requirements: what a share price needs, at a fraction
    /// of a health check's gas (no scenario grid, no repricing).
    function positionsValue(uint256 accountId) external view returns (int256 value);

    /// @notice For comparison: the requirements if every position were margined on its own and summed
    /// (no netting between positions). This is also the isolated requirement of ARCHITECTURE.md: what the
    /// same positions need in ISOLATED accounts, one each (`MarginComparison.test.ts`). Isolation differs
    /// from it in equity, not in requirement: one position's gains no longer cover another's losses.
    function standardRequirements(
        uint256 accountId
    ) external view returns (uint256 initial, uint256 maintenance);

    /// @notice The markets `accountId` holds.
    function accountMarkets(uint256 accountId) external view returns (MarketKey[] memory);

    /// @notice The risk parameters of `underlying`.
    function riskParams(bytes32 underlying) external view returns (RiskParams memory);
}
