// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";
import {IMarket} from "../interfaces/IMarket.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";
import {IOracleRouter} from "../interfaces/IOracleRouter.sol";
import {ILiquidationAuction} from "../interfaces/ILiquidationAuction.sol";
import {IInsuranceFund} from "../interfaces/IInsuranceFund.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {RiskMath} from "../libraries/RiskMath.sol";
import {PortfolioMath} from "../libraries/PortfolioMath.sol";
import {RiskParamsLib} from "../libraries/RiskParamsLib.sol";

/// @title MarginEngine
/// @notice The clearinghouse. For every account it knows which markets it holds, asks each market
/// for the position's Greeks and value, groups them by underlying, and margins each group on a
/// scenario grid (see PortfolioMath). It enforces equity_IM ≥ IM after every risk-increasing action
/// and is the only contract that moves quote balances between accounts.
contract MarginEngine is IMarginEngine, AccessManaged, Pausable {
    /// @notice Every health check loops over the markets an account holds; the cap bounds its gas.
    uint256 public constant MAX_MARKETS_PER_ACCOUNT = 16;
    uint256 internal constant WAD = 1e18;

    ICollateralVault public immutable vault;
    IAccounts public immutable accounts;
    IOracleRouter public immutable oracle;
    address internal immutable quote;

    /// @inheritdoc IMarginEngine
    uint256 public poolAccountId;
    /// @inheritdoc IMarginEngine
    address public insuranceFund;
    /// @inheritdoc IMarginEngine
    uint256 public insuranceAccountId;
    /// @inheritdoc IMarginEngine
    address public liquidator;

    mapping(address market => bool) public isMarket;
    mapping(uint256 accountId => MarketKey[]) internal _accountMarkets;

    /// @notice Listed underlyings, by index; index + 1 in `_underlyingSlot` (0 = unknown).
    bytes32[] public underlyings;
    mapping(bytes32 underlying => uint32) internal _underlyingSlot;
    mapping(bytes32 underlying => RiskParams) internal _riskParams;

    modifier onlyMarket() {
        if (!isMarket[msg.sender]) revert NotMarket(msg.sender);
        _;
    }

    modifier onlyLiquidator() {
        if (msg.sender != liquidator) revert NotLiquidator(msg.sender);
        _;
    }

    constructor(
        address authority,
        ICollateralVault vault_,
        IAccounts accounts_,
        IOracleRouter oracle_
    ) AccessManaged(authority) {
        vault = vault_;
        accounts = accounts_;
        oracle = oracle_;
        quote = address(vault_.quoteToken());
    }

    // ---------------------------------------------------------------- governance

    /// @notice Lets `market` report positions and move quote through the engine. Listing role.
    function registerMarket(address market) external restricted {
        if (isMarket[market]) revert MarketAlreadyRegistered(market);
        isMarket[market] = true;
        emit MarketRegistered(market);
    }

    /// @notice Lists `underlying` with its first risk parameters (hard bounds only). Listing role.
    function listUnderlying(bytes32 underlying, RiskParams calldata params) external restricted {
        if (_underlyingSlot[underlying] != 0) revert UnderlyingAlreadyListed(underlying);
        RiskParamsLib.checkBounds(params);
        underlyings.push(underlying);
        _underlyingSlot[underlying] = uint32(underlyings.length);
        _riskParams[underlying] = params;
        emit RiskParamsUpdated(underlying, params);
    }

    /// @notice Updates `underlying`'s risk parameters within hard bounds and max steps. Risk role.
    function setRiskParams(bytes32 underlying, RiskParams calldata params) external restricted {
        if (_underlyingSlot[underlying] == 0) revert UnknownUnderlying(underlying);
        RiskParamsLib.checkBounds(params);
        RiskParamsLib.checkSteps(_riskParams[underlying], params);
        _riskParams[underlying] = params;
        emit RiskParamsUpdated(underlying, params);
    }

    /// @notice Wires the pool's margin account, the insurance fund and the liquidation auction, once.
    /// Admin.
    function initialize(
        uint256 poolAccountId_,
        address insuranceFund_,
        address liquidator_
    ) external restricted {
        if (
            poolAccountId != 0 ||
            poolAccountId_ == 0 ||
            insuranceFund_ == address(0) ||
            liquidator_ == address(0)
        ) {
            revert AlreadySet();
        }
        poolAccountId = poolAccountId_;
        insuranceFund = insuranceFund_;
        insuranceAccountId = IInsuranceFund(insuranceFund_).accountId();
        liquidator = liquidator_;
    }

    /// @notice Pauses new risk: risk-increasing trades. Never deposits, reductions or liquidations.
    function pause() external restricted {
        _pause();
    }

    /// @notice Lifts the pause.
    function unpause() external restricted {
        _unpause();
    }

    /// @inheritdoc IMarginEngine
    function paused() public view override(IMarginEngine, Pausable) returns (bool) {
        return Pausable.paused();
    }

    // ---------------------------------------------------------------- markets

    /// @inheritdoc IMarginEngine
    function notePositionOpened(uint256 accountId, uint256 marketId, bytes32 underlying) external onlyMarket {
        MarketKey[] storage held = _accountMarkets[accountId];
        uint256 n = held.length;
        for (uint256 i; i < n; ++i) {
            if (held[i].market == msg.sender && held[i].marketId == marketId) return;
        }
        if (n != 0 && accounts.marginMode(accountId) == IAccounts.MarginMode.ISOLATED) {
            revert IsolatedAccountMarketTaken(accountId);
        }
        // The pool is the counterparty of every market, so it alone is exempt from the cap.
        if (n == MAX_MARKETS_PER_ACCOUNT && accountId != poolAccountId) revert TooManyMarkets(accountId);
        uint32 slot = _underlyingSlot[underlying];
        if (slot == 0) revert UnknownUnderlying(underlying);
        held.push(MarketKey({market: msg.sender, marketId: uint64(marketId), underlyingIndex: slot - 1}));
        emit PositionOpened(accountId, msg.sender, marketId);
    }

    /// @inheritdoc IMarginEngine
    function notePositionClosed(uint256 accountId, uint256 marketId) external onlyMarket {
        MarketKey[] storage held = _accountMarkets[accountId];
        uint256 n = held.length;
        for (uint256 i; i < n; ++i) {
            if (held[i].market == msg.sender && held[i].marketId == marketId) {
                held[i] = held[n - 1];
                held.pop();
                emit PositionClosed(accountId, msg.sender, marketId);
                return;
            }
        }
    }

    /// @inheritdoc IMarginEngine
    function transferQuote(uint256 fromAccountId, uint256 toAccountId, uint256 amount) external {
        if (!isMarket[msg.sender] && msg.sender != liquidator) revert NotMarket(msg.sender);
        vault.transferBalance(fromAccountId, toAccountId, quote, amount);
    }

    // ---------------------------------------------------------------- liquidations

    /// @inheritdoc IMarginEngine
    function transferSlice(
        uint256 fromAccountId,
        uint256 toAccountId,
        uint256 fraction
    ) external onlyLiquidator {
        address[] memory tokens = vault.collateralTokens(fromAccountId);
        for (uint256 i; i < tokens.length; ++i) {
            int256 balance = vault.balanceOf(fromAccountId, tokens[i]);
            if (balance > 0) {
                uint256 amount = Math.mulDiv(uint256(balance), fraction, WAD);
                vault.transferBalance(fromAccountId, toAccountId, tokens[i], amount);
            } else if (balance < 0) {
                // The bidder takes over its share of the debt, rounded up: it pays the account.
                uint256 debt = Math.mulDiv(uint256(-balance), fraction, WAD, Math.Rounding.Ceil);
                vault.transferBalance(toAccountId, fromAccountId, tokens[i], debt);
            }
        }
        // Iterate over a copy: transferPosition may close positions and reorder the stored list.
        MarketKey[] memory held = _accountMarkets[fromAccountId];
        for (uint256 i; i < held.length; ++i) {
            IMarket(held[i].market).transferPosition(fromAccountId, toAccountId, held[i].marketId, fraction);
        }
    }

    /// @inheritdoc IMarginEngine
    function payOut(uint256 accountId, address to, uint256 amount) external onlyLiquidator {
        vault.payOutQuote(accountId, to, amount);
    }

    /// @inheritdoc IMarginEngine
    function chargeFee(uint256 accountId, uint256 toPool, uint256 toInsurance) external onlyMarket {
        if (toPool != 0) vault.transferBalance(accountId, poolAccountId, quote, toPool);
        if (toInsurance != 0) vault.transferBalance(accountId, insuranceAccountId, quote, toInsurance);
        emit FeeCharged(accountId, toPool, toInsurance);
    }

    // ---------------------------------------------------------------- health

    /// @inheritdoc IMarginEngine
    function requireInitialMargin(uint256 accountId) external view {
        // Before `initialize` no auction can exist, so nothing can be frozen.
        if (liquidator != address(0) && ILiquidationAuction(liquidator).isFrozen(accountId)) {
            revert AccountFrozen(accountId);
        }
        Health memory h = health(accountId);
        if (h.equityInitial < 0 || uint256(h.equityInitial) < h.initialRequirement) {
            revert InsufficientMargin(accountId, h.equityInitial, h.initialRequirement);
        }
    }

    /// @inheritdoc IMarginEngine
    function requireRiskReduced(uint256 accountId, uint256 maintenanceBefore) external view {
        Health memory h = health(accountId);
        if (h.maintenanceRequirement <= maintenanceBefore) return;
        bool frozen = liquidator != address(0) && ILiquidationAuction(liquidator).isFrozen(accountId);
        if (!frozen && h.equityInitial >= 0 && uint256(h.equityInitial) >= h.initialRequirement) return;
        revert RiskIncreased(accountId, maintenanceBefore, h.maintenanceRequirement);
    }

    /// @inheritdoc IMarginEngine
    function hasOtherOnUnderlying(
        uint256 accountId,
        address market,
        uint256 marketId
    ) external view returns (bool) {
        MarketKey[] memory held = _accountMarkets[accountId];
        uint256 n = held.length;
        uint256 self = n;
        for (uint256 i; i < n; ++i) {
            if (held[i].market == market && held[i].marketId == marketId) self = i;
        }
        if (self == n) return false;
        for (uint256 i; i < n; ++i) {
            if (i != self && held[i].underlyingIndex == held[self].underlyingIndex) return true;
        }
        return false;
    }

    /// @inheritdoc IMarginEngine
    function health(uint256 accountId) public view returns (Health memory h) {
        (h, , ) = _evaluate(accountId, false);
    }

    /// @inheritdoc IMarginEngine
    function healthMany(uint256[] calldata accountIds) external view returns (Health[] memory result) {
        result = new Health[](accountIds.length);
        for (uint256 i; i < accountIds.length; ++i) {
            // Each evaluation allocates its groups and exposures; copy the result into the slot
            // allocated above and give the scratch memory back, so memory (and its quadratic cost)
            // does not grow with the number of accounts.
            uint256 freeMemory;
            assembly ("memory-safe") {
                freeMemory := mload(0x40)
            }
            (Health memory h, , ) = _evaluate(accountIds[i], false);
            Health memory slot = result[i];
            slot.equityInitial = h.equityInitial;
            slot.equityMaintenance = h.equityMaintenance;
            slot.equityMark = h.equityMark;
            slot.initialRequirement = h.initialRequirement;
            slot.maintenanceRequirement = h.maintenanceRequirement;
            slot.healthRatio = h.healthRatio;
            slot.grossNotional = h.grossNotional;
            assembly ("memory-safe") {
                mstore(0x40, freeMemory)
            }
        }
    }

    /// @inheritdoc IMarginEngine
    function standardRequirements(
        uint256 accountId
    ) external view returns (uint256 initial, uint256 maintenance) {
        (, initial, maintenance) = _evaluate(accountId, true);
    }

    /// @inheritdoc IMarginEngine
    function accountMarkets(uint256 accountId) external view returns (MarketKey[] memory) {
        return _accountMarkets[accountId];
    }

    /// @inheritdoc IMarginEngine
    function riskParams(bytes32 underlying) external view returns (RiskParams memory) {
        if (_underlyingSlot[underlying] == 0) revert UnknownUnderlying(underlying);
        return _riskParams[underlying];
    }

    /// @inheritdoc IMarginEngine
    function spotShocks(
        bytes32 underlying,
        uint256 grossNotional
    ) external view returns (uint256 imShock, uint256 mmShock) {
        if (_underlyingSlot[underlying] == 0) revert UnknownUnderlying(underlying);
        (PortfolioMath.Shocks memory im, PortfolioMath.Shocks memory mm) = _shocks(
            _riskParams[underlying],
            oracle.getVolatility(underlying),
            grossNotional
        );
        return (im.spotShock, mm.spotShock);
    }

    /// @dev One underlying's positions, priced once.
    struct Group {
        uint32 underlyingIndex;
        uint256 spot;
        uint256 volatility;
        PortfolioMath.Greeks greeks;
    }

    /// @dev Computes health; with `standard`, also the per-position (no netting) requirements.
    function _evaluate(
        uint256 accountId,
        bool standard
    ) internal view returns (Health memory h, uint256 standardIM, uint256 standardMM) {
        ICollateralVault.CollateralValue memory c = vault.collateralValue(accountId);
        MarketKey[] memory held = _accountMarkets[accountId];
        Group[] memory groups = new Group[](held.length);
        uint256 groupCount;
        int256 positionValue;

        for (uint256 i; i < held.length; ++i) {
            MarketKey memory key = held[i];
            uint256 g;
            while (g < groupCount && groups[g].underlyingIndex != key.underlyingIndex) ++g;
            if (g == groupCount) {
                bytes32 underlying = underlyings[key.underlyingIndex];
                groups[g].underlyingIndex = key.underlyingIndex;
                groups[g].spot = oracle.getPrice(underlying);
                groups[g].volatility = oracle.getVolatility(underlying);
                ++groupCount;
            }
            IMarket.Exposure memory e = IMarket(key.market).exposure(
                accountId,
                key.marketId,
                groups[g].spot,
                groups[g].volatility
            );
            positionValue += e.value;
            PortfolioMath.Greeks memory sum = groups[g].greeks;
            sum.delta += e.delta;
            sum.gamma += e.gamma;
            sum.vega += e.vega;
            sum.optionSize += e.optionSize;
            sum.notional += e.notional;
            if (standard) {
                (uint256 im, uint256 mm) = _requirements(
                    groups[g],
                    PortfolioMath.Greeks(e.delta, e.gamma, e.vega, e.optionSize, e.notional)
                );
                standardIM += im;
                standardMM += mm;
            }
        }
        for (uint256 g; g < groupCount; ++g) {
            (uint256 im, uint256 mm) = _requirements(groups[g], groups[g].greeks);
            h.initialRequirement += im;
            h.maintenanceRequirement += mm;
            h.grossNotional += groups[g].greeks.notional;
        }
        h.equityInitial = c.initial + positionValue;
        h.equityMaintenance = c.maintenance + positionValue;
        h.equityMark = c.mark + positionValue;
        h.healthRatio = RiskMath.healthRatio(h.equityMaintenance, h.maintenanceRequirement);
    }

    function _requirements(
        Group memory group,
        PortfolioMath.Greeks memory greeks
    ) internal view returns (uint256 im, uint256 mm) {
        RiskParams memory p = _riskParams[underlyings[group.underlyingIndex]];
        (PortfolioMath.Shocks memory imShocks, PortfolioMath.Shocks memory mmShocks) = _shocks(
            p,
            group.volatility,
            greeks.notional
        );
        im = PortfolioMath.requirement(greeks, group.spot, imShocks);
        mm = PortfolioMath.requirement(greeks, group.spot, mmShocks);
    }

    function _shocks(
        RiskParams memory p,
        uint256 volatility,
        uint256 grossNotional
    ) internal pure returns (PortfolioMath.Shocks memory im, PortfolioMath.Shocks memory mm) {
        uint256 sigma = PortfolioMath.horizonVolatility(volatility, p.horizon);
        im.spotShock = PortfolioMath.spotShock(
            p.imShockFloor,
            p.imZ,
            sigma,
            p.maxShock,
            p.sizeScale,
            grossNotional
        );
        mm.spotShock = PortfolioMath.spotShock(
            p.mmShockFloor,
            p.mmZ,
            sigma,
            p.maxShock,
            p.sizeScale,
            grossNotional
        );
        im.volShock = p.imVolShock;
        mm.volShock = p.mmVolShock;
        // IM carries the full add-ons; MM keeps the same floor and contingency so IM ≥ MM holds
        // whenever the IM shocks are at least the MM shocks (enforced by RiskParamsLib).
        im.shortOptionFloor = p.shortOptionFloor;
        mm.shortOptionFloor = p.shortOptionFloor;
        im.contingency = p.contingency;
        mm.contingency = p.contingency;
    }
}
