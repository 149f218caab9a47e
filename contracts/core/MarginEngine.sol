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
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {RiskMath} from "../libraries/RiskMath.sol";
import {PortfolioMath} from "../libraries/PortfolioMath.sol";
import {RiskParamsLib} from "../libraries/RiskParamsLib.sol";
import {UpdateThrottle} from "../governance/UpdateThrottle.sol";

/// @title MarginEngine
/// @notice The clearinghouse. For every account it knows which markets it holds, asks each market
/// for the position's Greeks and value, groups them by underlying, and margins each group on a
/// scenario grid (see PortfolioMath). It enforces equity_IM ≥ IM after every risk-increasing action
/// and is the only contract that moves quote balances between accounts.
contract MarginEngine is IMarginEngine, AccessManaged, Pausable, UpdateThrottle {
    /// @notice Every health check loops over the markets an account holds; the cap bounds its gas.
    uint256 public constant MAX_MARKETS_PER_ACCOUNT = 16;
    /// @notice The pool, counterparty of every market, and the backstop are exempt from that cap: what
    /// bounds their books, which every LP exit prices, is the listing caps of the market contracts
    /// registered (one PerpMarket and one OptionMarket: each further `registerMarket` of a market
    /// contract adds its own caps to the pool's book) and this. Each underlying a book spans costs its
    /// group's price reads and grid in every evaluation; the heaviest books the caps allow (32 perps and
    /// 32 live series on 32 underlyings, held by the pool and the backstop) cost an LP's withdrawal
    /// 14.05M gas, 84% of EIP-7825's 2^24 (§4 row 210). A constant: raising it is a gas decision, not a
    /// risk one.
    uint256 public constant MAX_UNDERLYINGS = 32;
    uint256 internal constant WAD = 1e18;

    // Layout of an account's market list (see `_held`).
    uint256 private constant KEYS_PER_WORD = 3;
    uint256 private constant KEY_BITS = 80;
    uint256 private constant COUNT_BITS = 16;
    uint256 private constant KEY_MASK = (1 << KEY_BITS) - 1;
    uint256 private constant COUNT_MASK = (1 << COUNT_BITS) - 1;

    /// @notice The vault holding every account's collateral and quote balance.
    ICollateralVault public immutable vault;
    /// @notice The account registry (existence, ownership, margin mode).
    IAccounts public immutable accounts;
    /// @notice The price and volatility source of every underlying.
    IOracleRouter public immutable oracle;
    address internal immutable quote;

    /// @dev What trades, fees and margin checks read, in one slot (a trade that pays a fee reads one
    /// cold slot instead of three: 4,200 gas less). Account ids are sequential, so 48 bits suffice.
    struct Wiring {
        address liquidator;
        uint48 poolAccountId;
        uint48 insuranceAccountId;
    }

    Wiring internal _wiring;
    /// @inheritdoc IMarginEngine
    address public insuranceFund;
    /// @inheritdoc IMarginEngine
    uint256 public backstopAccountId;

    /// @dev A registered market contract's reference, 1-based (0 = not a market), and back: an
    /// account's market list stores the 2-byte reference instead of the 20-byte address.
    mapping(address market => uint16) internal _marketRef;
    /// (A mapping, not an array: no length read for a bounds check.)
    mapping(uint256 ref => address) internal _marketByRef;
    uint256 internal _marketCount;
    /// @dev Each account's markets, packed three keys to a word so that holding a new market usually
    /// rewrites a word instead of filling a new one (saves ~20,000 gas for two of every three markets,
    /// and the account's first market writes one new slot instead of two) and a health check reads a
    /// third of the slots. Key i sits in word i / 3 at bit 16 + 80·(i % 3) as
    /// marketRef << 64 | marketId << 16 | underlyingIndex (16, 48 and 16 bits; ids beyond these
    /// widths revert with SafeCast's error); the low 16 bits of word 0 hold the count. Removal is
    /// swap-and-pop, as with an array.
    mapping(uint256 accountId => mapping(uint256 word => uint256)) internal _held;

    /// @notice Listed underlyings, by index; index + 1 in `_underlyingSlot` (0 = unknown).
    bytes32[] public underlyings;
    mapping(bytes32 underlying => uint32) internal _underlyingSlot;
    mapping(bytes32 underlying => RiskParams) internal _riskParams;

    modifier onlyMarket() {
        if (_marketRef[msg.sender] == 0) revert NotMarket(msg.sender);
        _;
    }

    modifier onlyLiquidator() {
        if (msg.sender != _wiring.liquidator) revert NotLiquidator(msg.sender);
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

    /// @notice Lets `market` report positions and move quote through the engine. Governance only (the
    /// timelock): a registered market can move any account's quote, and each market contract adds its
    /// own listing caps to the pool's book (see `MAX_UNDERLYINGS`).
    function registerMarket(address market) external restricted {
        if (_marketRef[market] != 0) revert MarketAlreadyRegistered(market);
        uint256 ref = ++_marketCount;
        _marketByRef[ref] = market;
        _marketRef[market] = SafeCast.toUint16(ref);
        emit MarketRegistered(market);
    }

    /// @inheritdoc IMarginEngine
    function isMarket(address market) external view returns (bool) {
        return _marketRef[market] != 0;
    }

    /// @notice Lists `underlying` with its first risk parameters (hard bounds only), at most
    /// `MAX_UNDERLYINGS` of them (UnderlyingLimitReached). Governance only (the timelock): first
    /// parameters have no step to respect, so they may be as loose as the bounds allow.
    function listUnderlying(bytes32 underlying, RiskParams calldata params) external restricted {
        if (_underlyingSlot[underlying] != 0) revert UnderlyingAlreadyListed(underlying);
        if (underlyings.length == MAX_UNDERLYINGS) revert UnderlyingLimitReached(MAX_UNDERLYINGS);
        RiskParamsLib.checkBounds(params);
        underlyings.push(underlying);
        _underlyingSlot[underlying] = uint32(underlyings.length);
        _riskParams[underlying] = params;
        emit RiskParamsUpdated(underlying, params);
    }

    /// @notice Updates `underlying`'s risk parameters within hard bounds and max steps, at most once
    /// per MIN_UPDATE_INTERVAL (UpdateTooSoon("riskParams", underlying, next) otherwise). Risk role.
    function setRiskParams(bytes32 underlying, RiskParams calldata params) external restricted {
        if (_underlyingSlot[underlying] == 0) revert UnknownUnderlying(underlying);
        RiskParamsLib.checkBounds(params);
        RiskParamsLib.checkSteps(_riskParams[underlying], params);
        // The steps are measured from the current value: without the interval they chain.
        _throttle("riskParams", underlying, MIN_UPDATE_INTERVAL);
        _riskParams[underlying] = params;
        emit RiskParamsUpdated(underlying, params);
    }

    /// @notice Wires the pool's margin account, the insurance fund and the liquidation auction (and with
    /// it the auction's backstop account), once. Admin.
    function initialize(
        uint256 poolAccountId_,
        address insuranceFund_,
        address liquidator_
    ) external restricted {
        if (
            _wiring.poolAccountId != 0 ||
            poolAccountId_ == 0 ||
            insuranceFund_ == address(0) ||
            liquidator_ == address(0)
        ) {
            revert AlreadySet();
        }
        insuranceFund = insuranceFund_;
        backstopAccountId = ILiquidationAuction(liquidator_).backstopAccountId();
        uint256 fundAccountId = IInsuranceFund(insuranceFund_).accountId();
        vault.setProtocolAccounts(poolAccountId_, backstopAccountId, fundAccountId);
        _wiring = Wiring({
            liquidator: liquidator_,
            poolAccountId: SafeCast.toUint48(poolAccountId_),
            insuranceAccountId: SafeCast.toUint48(fundAccountId)
        });
    }

    /// @notice Pauses new risk: risk-increasing trades. Never deposits, reductions or liquidations.
    /// GUARDIAN role.
    function pause() external restricted {
        _pause();
    }

    /// @notice Lifts the pause. GUARDIAN role.
    function unpause() external restricted {
        _unpause();
    }

    /// @inheritdoc IMarginEngine
    function paused() public view override(IMarginEngine, Pausable) returns (bool) {
        return Pausable.paused();
    }

    /// @inheritdoc IMarginEngine
    function poolAccountId() external view returns (uint256) {
        return _wiring.poolAccountId;
    }

    /// @inheritdoc IMarginEngine
    function insuranceAccountId() external view returns (uint256) {
        return _wiring.insuranceAccountId;
    }

    /// @inheritdoc IMarginEngine
    function liquidator() external view returns (address) {
        return _wiring.liquidator;
    }

    // ---------------------------------------------------------------- markets

    /// @inheritdoc IMarginEngine
    function notePositionOpened(uint256 accountId, uint256 marketId, bytes32 underlying) external onlyMarket {
        mapping(uint256 => uint256) storage words = _held[accountId];
        uint256 id = _marketKeyId(msg.sender, marketId);
        uint256 word0 = words[0];
        uint256 n = word0 & COUNT_MASK;
        if (_find(words, n, id) != n) return;
        if (n != 0 && accounts.marginMode(accountId) == IAccounts.MarginMode.ISOLATED) {
            revert IsolatedAccountMarketTaken(accountId);
        }
        // The pool is the counterparty of every market and the backstop takes whatever nobody bid on, so
        // they are exempt from the cap (up to what the count's 16 bits hold).
        if (
            (n == MAX_MARKETS_PER_ACCOUNT &&
                accountId != _wiring.poolAccountId &&
                accountId != backstopAccountId) || n == COUNT_MASK
        ) revert TooManyMarkets(accountId);
        uint32 slot = _underlyingSlot[underlying];
        if (slot == 0) revert UnknownUnderlying(underlying);
        uint256 key = (id << COUNT_BITS) | SafeCast.toUint16(slot - 1);
        if (n < KEYS_PER_WORD) {
            // Count and key in one write: an account's first market fills a single new slot.
            words[0] = word0 + 1 + (key << _shift(n));
        } else {
            words[n / KEYS_PER_WORD] |= key << _shift(n);
            words[0] = word0 + 1;
        }
        emit PositionOpened(accountId, msg.sender, marketId);
    }

    /// @inheritdoc IMarginEngine
    function notePositionClosed(uint256 accountId, uint256 marketId) external onlyMarket {
        mapping(uint256 => uint256) storage words = _held[accountId];
        uint256 n = words[0] & COUNT_MASK;
        uint256 i = _find(words, n, _marketKeyId(msg.sender, marketId));
        if (i == n) return;
        uint256 last = n - 1;
        if (i != last) _setKey(words, i, _keyAt(words, last));
        _setKey(words, last, 0);
        words[0] -= 1;
        emit PositionClosed(accountId, msg.sender, marketId);
    }

    /// @inheritdoc IMarginEngine
    function transferQuote(uint256 fromAccountId, uint256 toAccountId, uint256 amount) external {
        if (_marketRef[msg.sender] == 0 && msg.sender != _wiring.liquidator) revert NotMarket(msg.sender);
        vault.transferBalance(fromAccountId, toAccountId, quote, amount);
    }

    // ---------------------------------------------------------------- liquidations

    /// @inheritdoc IMarginEngine
    function transferSlice(
        uint256 fromAccountId,
        uint256 toAccountId,
        uint256 fraction,
        uint256 quoteHeldBack
    ) external onlyLiquidator {
        // Positions first: moving one settles the sender's accrued funding on its whole position into
        // its quote balance, and that balance must be sliced after it, or the bidder would take f of a
        // balance that still owes the funding while the account paid all of it.
        // Iterate over a copy: transferPosition may close positions and reorder the stored list.
        MarketKey[] memory held = _heldMarkets(fromAccountId);
        for (uint256 i; i < held.length; ++i) {
            IMarket(held[i].market).transferPosition(fromAccountId, toAccountId, held[i].marketId, fraction);
        }
        // A debt is sliced with the interest it owes up to now, as its valuation counted it.
        vault.settleInterest(fromAccountId);
        address[] memory tokens = vault.collateralTokens(fromAccountId);
        int256 heldBack = SafeCast.toInt256(quoteHeldBack);
        // The quote is listed first while its balance is nonzero. At zero, what is held back is still
        // the sold book's (it spent the quote the auction paid in: a debt of the book).
        if (heldBack != 0 && (tokens.length == 0 || tokens[0] != quote)) {
            _sliceBalance(fromAccountId, toAccountId, quote, -heldBack, fraction);
        }
        for (uint256 i; i < tokens.length; ++i) {
            int256 balance = vault.balanceOf(fromAccountId, tokens[i]);
            _sliceBalance(
                fromAccountId,
                toAccountId,
                tokens[i],
                tokens[i] == quote ? balance - heldBack : balance,
                fraction
            );
        }
    }

    /// @dev Moves `fraction` of a balance of `balance` (rounded down), or has the receiver take over
    /// that share of a debt (rounded up: it pays the account).
    function _sliceBalance(
        uint256 fromAccountId,
        uint256 toAccountId,
        address token,
        int256 balance,
        uint256 fraction
    ) internal {
        if (balance > 0) {
            uint256 amount = Math.mulDiv(uint256(balance), fraction, WAD);
            vault.transferBalance(fromAccountId, toAccountId, token, amount);
        } else if (balance < 0) {
            uint256 debt = Math.mulDiv(uint256(-balance), fraction, WAD, Math.Rounding.Ceil);
            vault.transferBalance(toAccountId, fromAccountId, token, debt);
        }
    }

    /// @inheritdoc IMarginEngine
    function transferCollateral(
        uint256 fromAccountId,
        uint256 toAccountId,
        address token,
        uint256 amount
    ) external onlyLiquidator {
        vault.transferBalance(fromAccountId, toAccountId, token, amount);
    }

    /// @inheritdoc IMarginEngine
    function payOut(uint256 accountId, address to, uint256 amount) external onlyLiquidator {
        vault.payOutQuote(accountId, to, amount);
    }

    /// @inheritdoc IMarginEngine
    function chargeFee(uint256 accountId, uint256 toPool, uint256 toInsurance) external onlyMarket {
        vault.chargeFees(accountId, toPool, toInsurance);
        emit FeeCharged(accountId, toPool, toInsurance);
    }

    // ---------------------------------------------------------------- health

    /// @inheritdoc IMarginEngine
    function requireInitialMargin(uint256 accountId) external view {
        // Before `initialize` no auction can exist, so nothing can be frozen.
        address liquidator_ = _wiring.liquidator;
        if (liquidator_ != address(0) && ILiquidationAuction(liquidator_).isFrozen(accountId)) {
            revert AccountFrozen(accountId);
        }
        (int256 equityInitial, uint256 initialRequirement, ) = _initialMargin(accountId);
        if (equityInitial < 0 || uint256(equityInitial) < initialRequirement) {
            revert InsufficientMargin(accountId, equityInitial, initialRequirement);
        }
    }

    /// @inheritdoc IMarginEngine
    function initialMargin(uint256 accountId) external view returns (int256, uint256, int256) {
        return _initialMargin(accountId);
    }

    /// @dev Only the initial level decides: skip the maintenance grid. The positions' value is equity at
    /// mark less the collateral's mark.
    function _initialMargin(uint256 accountId) internal view returns (int256, uint256, int256) {
        ICollateralVault.CollateralValue memory c = vault.collateralValue(accountId);
        (Health memory h, , ) = _evaluate(accountId, c, Scope.InitialOnly, _marketDataCache(0, false));
        return (h.equityInitial, h.initialRequirement, h.equityMark - c.mark);
    }

    /// @inheritdoc IMarginEngine
    function requireRiskReduced(uint256 accountId, uint256 maintenanceBefore) external view {
        Health memory h = _health(accountId, false);
        if (h.maintenanceRequirement <= maintenanceBefore) return;
        address liquidator_ = _wiring.liquidator;
        bool frozen = liquidator_ != address(0) && ILiquidationAuction(liquidator_).isFrozen(accountId);
        if (!frozen && h.equityInitial >= 0 && uint256(h.equityInitial) >= h.initialRequirement) return;
        // The backstop has no margin to protect: it trades only through `unwindBackstop`, whose
        // reductions a role holder prices with a limit. Checked last, so other accounts pay nothing.
        if (accountId == backstopAccountId) return;
        revert RiskIncreased(accountId, maintenanceBefore, h.maintenanceRequirement);
    }

    /// @inheritdoc IMarginEngine
    function requirePremiumAffordable(uint256 accountId, int256 marginBefore) external view {
        Health memory h = _health(accountId, false);
        // A healthy account may spend on the premium while it stays healthy; one below maintenance only
        // if the trade frees more requirement than it costs.
        int256 marginAfter = h.equityMaintenance - SafeCast.toInt256(h.maintenanceRequirement);
        bool shortfallGrew = marginAfter < 0 && marginAfter < marginBefore;
        // The backstop (see `requireRiskReduced`) may pay a premium to unwind even under water: its
        // book is the LPs', and the premium goes to the pool, which is theirs too.
        if ((h.equityMark < 0 || shortfallGrew) && accountId == backstopAccountId) return;
        if (h.equityMark < 0) revert InsolventAfterTrade(accountId, h.equityMark);
        if (shortfallGrew) revert MaintenanceShortfallIncreased(accountId, marginBefore, marginAfter);
    }

    /// @inheritdoc IMarginEngine
    function hasOtherOnUnderlying(
        uint256 accountId,
        address market,
        uint256 marketId
    ) external view returns (bool) {
        mapping(uint256 => uint256) storage words = _held[accountId];
        uint256 n = words[0] & COUNT_MASK;
        if (_marketRef[market] == 0 || marketId > type(uint48).max) return false;
        uint256 self = _find(words, n, _marketKeyId(market, marketId));
        if (self == n) return false;
        uint256 underlyingIndex = _keyAt(words, self) & COUNT_MASK;
        for (uint256 i; i < n; ++i) {
            if (i != self && _keyAt(words, i) & COUNT_MASK == underlyingIndex) return true;
        }
        return false;
    }

    /// @inheritdoc IMarginEngine
    /// @dev A volatility feed that fails leaves its group at the floor shocks (`volatilityUnavailable`):
    /// a lower bound of the requirements at any volatility, so an account this view calls liquidatable
    /// is liquidatable whatever the feed would read; the checks on new risk keep failing closed.
    function health(uint256 accountId) external view returns (Health memory) {
        return _health(accountId, true);
    }

    /// @inheritdoc IMarginEngine
    function maintenanceRequirement(uint256 accountId) external view returns (uint256) {
        return _health(accountId, false).maintenanceRequirement;
    }

    function _health(uint256 accountId, bool volatilityFallback) internal view returns (Health memory h) {
        (h, , ) = _evaluate(
            accountId,
            vault.collateralValue(accountId),
            Scope.Health,
            _marketDataCache(0, volatilityFallback)
        );
    }

    /// @inheritdoc IMarginEngine
    /// @dev Reads every price and volatility once for the whole batch (the vault does the same for
    /// collateral prices): a warm oracle read still costs ~4,500 gas, a third of a perp account's health.
    function healthMany(uint256[] calldata accountIds) external view returns (Health[] memory result) {
        result = new Health[](accountIds.length);
        ICollateralVault.CollateralValue[] memory collateral = vault.collateralValues(accountIds);
        MarketDataCache memory cache = _marketDataCache(underlyings.length, true);
        for (uint256 i; i < accountIds.length; ++i) {
            // Each evaluation allocates its groups and exposures; copy the result into the slot
            // allocated above and give the scratch memory back, so memory (and its quadratic cost)
            // does not grow with the number of accounts.
            uint256 freeMemory;
            assembly ("memory-safe") {
                freeMemory := mload(0x40)
            }
            (Health memory h, , ) = _evaluate(accountIds[i], collateral[i], Scope.Health, cache);
            Health memory slot = result[i];
            slot.equityInitial = h.equityInitial;
            slot.equityMaintenance = h.equityMaintenance;
            slot.equityMark = h.equityMark;
            slot.initialRequirement = h.initialRequirement;
            slot.maintenanceRequirement = h.maintenanceRequirement;
            slot.healthRatio = h.healthRatio;
            slot.grossNotional = h.grossNotional;
            slot.volatilityUnavailable = h.volatilityUnavailable;
            assembly ("memory-safe") {
                mstore(0x40, freeMemory)
            }
        }
    }

    /// @inheritdoc IMarginEngine
    function positionsValue(uint256 accountId) external view returns (int256 value) {
        MarketKey[] memory held = _heldMarkets(accountId);
        MarketDataCache memory cache = _marketDataCache(underlyings.length, false);
        for (uint256 i; i < held.length; ++i) {
            uint32 index = held[i].underlyingIndex;
            (uint256 spot, uint256 volatility) = _marketData(index, _underlyingAt(index), cache);
            value += IMarket(held[i].market).exposure(accountId, held[i].marketId, spot, volatility).value;
        }
    }

    /// @inheritdoc IMarginEngine
    function standardRequirements(
        uint256 accountId
    ) external view returns (uint256 initial, uint256 maintenance) {
        (, initial, maintenance) = _evaluate(
            accountId,
            vault.collateralValue(accountId),
            Scope.HealthAndStandard,
            _marketDataCache(0, false)
        );
    }

    /// @inheritdoc IMarginEngine
    function accountMarkets(uint256 accountId) external view returns (MarketKey[] memory) {
        return _heldMarkets(accountId);
    }

    /// @inheritdoc IMarginEngine
    function riskParams(bytes32 underlying) external view returns (RiskParams memory) {
        if (_underlyingSlot[underlying] == 0) revert UnknownUnderlying(underlying);
        return _riskParams[underlying];
    }

    /// @dev One underlying's positions, priced once.
    struct Group {
        uint32 underlyingIndex;
        // Whether any position is priced by a model (an option before expiry): only those can need
        // repricing, so perps-only groups skip the search.
        bool modelled;
        bytes32 underlying;
        uint256 spot;
        uint256 volatility;
        // ⌈spot·COVERING_TIME_VALUE⌉, computed when the group's first long option needs it (0 until then).
        uint256 floorPerContract;
        // The spot shock before the size factor, which decides which positions leave their Greeks
        // outright (`_levelRequirement`).
        uint256 decideSpotShock;
        PortfolioMath.Greeks greeks;
    }

    /// @dev The positions of one evaluation: each one's key, exposure and group index.
    struct Book {
        uint256 accountId;
        MarketKey[] held;
        IMarket.Exposure[] exposures;
        uint256[] groupOf;
        // A margin check after a trade: the maintenance level is not computed.
        bool initialOnly;
        // Σ of the positions' exit discounts (IMarket.Exposure), deducted from equity_IM only.
        uint256 exitDiscount;
    }

    /// @dev `_requirements` over every position of a group (rather than one position alone).
    uint256 private constant WHOLE_GROUP = type(uint256).max;

    /// @dev Spot and volatility per underlying index, read once per call (`healthMany`); empty arrays
    /// for a single account, whose groups already read each underlying once. With `volatilityFallback`
    /// a failed volatility feed reads as 0 (the floor shocks) instead of reverting (see `health`).
    struct MarketDataCache {
        uint256[] spots;
        uint256[] volatilities;
        bool volatilityFallback;
    }

    function _marketDataCache(
        uint256 underlyingCount,
        bool volatilityFallback
    ) internal pure returns (MarketDataCache memory) {
        return
            MarketDataCache(
                new uint256[](underlyingCount),
                new uint256[](underlyingCount),
                volatilityFallback
            );
    }

    /// @dev What an evaluation computes: the initial level alone (a margin check after a trade), both
    /// levels, or both plus the per-position requirements.
    enum Scope {
        InitialOnly,
        Health,
        HealthAndStandard
    }

    /// @dev Computes health from collateral value `c` to `scope`; with `InitialOnly` the maintenance
    /// requirement and the health ratio are left 0.
    function _evaluate(
        uint256 accountId,
        ICollateralVault.CollateralValue memory c,
        Scope scope,
        MarketDataCache memory cache
    ) internal view returns (Health memory h, uint256 standardIM, uint256 standardMM) {
        Book memory book = _book(accountId);
        book.initialOnly = scope == Scope.InitialOnly;
        Group[] memory groups = new Group[](book.held.length);
        uint256 groupCount;
        int256 positionValue;

        for (uint256 i; i < book.held.length; ++i) {
            uint256 g;
            (g, groupCount) = _groupOf(groups, groupCount, book.held[i].underlyingIndex, cache);
            book.groupOf[i] = g;
            positionValue += _addExposure(book, i, groups[g]);
        }
        for (uint256 t; t < c.tokenMarks.length; ++t)
            _addCollateralDelta(groups, groupCount, c.tokenMarks[t], h);
        for (uint256 g; g < groupCount; ++g) {
            (uint256 im, uint256 mm) = _requirements(book, groups[g], groups[g].greeks, g, WHOLE_GROUP);
            h.initialRequirement += im;
            h.maintenanceRequirement += mm;
            h.grossNotional += groups[g].greeks.notional;
            if (groups[g].volatility == 0) h.volatilityUnavailable = true;
        }
        if (scope == Scope.HealthAndStandard) (standardIM, standardMM) = _standardRequirements(book, groups);
        // What closing the perps would pay the skew is not margin for new risk (IMarket.Exposure).
        h.equityInitial += c.initial + positionValue - SafeCast.toInt256(book.exitDiscount);
        h.equityMaintenance += c.maintenance + positionValue;
        h.equityMark = c.mark + positionValue;
        if (!book.initialOnly) {
            h.healthRatio = RiskMath.healthRatio(h.equityMaintenance, h.maintenanceRequirement);
        }
    }

    function _book(uint256 accountId) internal view returns (Book memory book) {
        book.accountId = accountId;
        book.held = _heldMarkets(accountId);
        book.exposures = new IMarket.Exposure[](book.held.length);
        book.groupOf = new uint256[](book.held.length);
    }

    /// @dev Asks position `i`'s market for its exposure, keeps it in `book`, adds its Greeks to its
    /// group and returns its value.
    function _addExposure(Book memory book, uint256 i, Group memory group) internal view returns (int256) {
        IMarket.Exposure memory e = IMarket(book.held[i].market).exposure(
            book.accountId,
            book.held[i].marketId,
            group.spot,
            group.volatility
        );
        book.exposures[i] = e;
        // One volatility step of the series alone (the option market's skew step; each series has its own
        // clock) marks the position by vega·SERIES_VOLATILITY_STEP, which the grid, moving the feed under
        // every series at once, does not see on a calendar's net vega: held back from margin for new
        // risk, so an account meeting its IM survives a step of every series it holds (§4 row 131). A plain
        // product: |vega| < 1e48 (per contract < 1e36 in the model's domain, sizes under the caps).
        uint256 vega = uint256(e.vega < 0 ? -e.vega : e.vega);
        book.exitDiscount += e.exitDiscount + Math.ceilDiv(vega * SERIES_VOLATILITY_STEP, WAD);
        if (e.totalVolatility != 0) {
            group.modelled = true;
            // An option's value and Greeks need its volatility, which no floor bounds: a failed feed
            // reverts here with its own error.
            if (group.volatility == 0) _requireVolatility(group.underlying);
        }
        PortfolioMath.Greeks memory sum = group.greeks;
        sum.delta += e.delta;
        sum.gamma += e.gamma;
        sum.vega += e.vega;
        sum.vanna += e.vanna;
        sum.volga += e.volga;
        sum.optionSize += e.optionSize > 0
            ? _coveringContracts(e.optionSize, e.timeValue, group)
            : e.optionSize;
        sum.notional += e.notional;
        return e.value;
    }

    /// @dev Enters a collateral token priced by an underlying the account holds positions on as a long
    /// delta of that underlying, mark / spot, so that the grid shocks it with the positions: WETH under a
    /// long ETH perp falls with it (§4 row 420), under a short one it hedges. Its mark then counts at its
    /// shocked weight (a haircut for basis and liquidity only): `h`'s equity takes the token's credit at
    /// both levels, at most mark · the group's MM shock floor, which is the least the grid charges the
    /// token alone, so that opening the first position on an underlying never frees margin (docs/decisions.md,
    /// Margin). Tokens of other assets are left to their weights. Plain products: marks are far below
    /// 2^196, credits below 2^255.
    function _addCollateralDelta(
        Group[] memory groups,
        uint256 count,
        ICollateralVault.TokenMark memory token,
        Health memory h
    ) internal view {
        for (uint256 g; g < count; ++g) {
            if (groups[g].underlying == token.oracleAsset) {
                groups[g].greeks.delta += int256((token.mark * WAD) / groups[g].spot);
                // One credit at both levels, capped at the MM floor (≤ the IM floor): equity_MM − equity_IM
                // stays the weights' gap, so an account at its IM is not at its MM (review round 148).
                int256 credit = int256(
                    Math.min(token.credit, (token.mark * _riskParams[token.oracleAsset].mmShockFloor) / WAD)
                );
                h.equityInitial += credit;
                h.equityMaintenance += credit;
                return;
            }
        }
    }

    /// @dev The option market's skew step (`OptionMarket.MAX_SKEW_STEP`): how far one series' volatility
    /// may move alone in one governance update.
    uint256 private constant SERIES_VOLATILITY_STEP = 0.05e18;

    /// @dev A long contract covers a short one in full when its time value is at least this fraction of
    /// spot (the default short-option floor).
    uint256 private constant COVERING_TIME_VALUE = 0.05e18;

    /// @dev How many of a long option position's `size` contracts offset short ones in the short-option
    /// floor: all of them when the position's time value is at least COVERING_TIME_VALUE · spot per
    /// contract, proportionally fewer when it is less (rounded down). Netting contracts keeps the floor
    /// parity-consistent (a conversion pays none), but what hedges a short's gap risk is a long's time
    /// value: a long worth next to nothing (far out of the money, §4 row 14) or worth little beyond its
    /// intrinsic value (deep in the money: a forward, row 58) must not cancel its floor. The measure is a
    /// constant, not `shortOptionFloor`: measured by the floor, a raise of it also uncovered contracts, so
    /// a doubling (one step) multiplied a covered book's floor by up to 6 (review round 50); this way the
    /// floor is shortOptionFloor · spot · uncovered contracts, linear in the parameter.
    function _coveringContracts(
        int256 size,
        uint256 timeValue,
        Group memory group
    ) internal pure returns (int256) {
        uint256 floorPerContract = group.floorPerContract;
        if (floorPerContract == 0) {
            // Plain products (as in PortfolioMath): spot < 2^120 (the router's bound); ≥ 1 as spot > 0.
            floorPerContract = Math.ceilDiv(group.spot * COVERING_TIME_VALUE, WAD);
            group.floorPerContract = floorPerContract;
        }
        uint256 covering = (timeValue * WAD) / floorPerContract; // < 2^256: |size| < 2^128, prices < 2^120
        return covering < uint256(size) ? int256(covering) : size;
    }

    /// @dev Σ over positions of each one's requirements margined alone.
    function _standardRequirements(
        Book memory book,
        Group[] memory groups
    ) internal view returns (uint256 standardIM, uint256 standardMM) {
        for (uint256 i; i < book.held.length; ++i) {
            IMarket.Exposure memory e = book.exposures[i];
            (uint256 im, uint256 mm) = _requirements(
                book,
                groups[book.groupOf[i]],
                PortfolioMath.Greeks(e.delta, e.gamma, e.vega, e.optionSize, e.notional, e.vanna, e.volga),
                book.groupOf[i],
                i
            );
            standardIM += im;
            standardMM += mm;
        }
    }

    /// @dev The index of `underlyingIndex`'s group among the first `count`, appending it (priced) when
    /// the account's markets have not reached that underlying yet.
    function _groupOf(
        Group[] memory groups,
        uint256 count,
        uint32 underlyingIndex,
        MarketDataCache memory cache
    ) internal view returns (uint256 g, uint256 newCount) {
        while (g < count && groups[g].underlyingIndex != underlyingIndex) ++g;
        if (g < count) return (g, count);
        bytes32 underlying = _underlyingAt(underlyingIndex);
        groups[g].underlyingIndex = underlyingIndex;
        groups[g].underlying = underlying;
        (groups[g].spot, groups[g].volatility) = _marketData(underlyingIndex, underlying, cache);
        return (g, count + 1);
    }

    /// @dev The oracle's spot and volatility of `underlying`, from `cache` when this call read them.
    /// Prices are never zero (the router rejects them), so zero marks an empty entry.
    function _marketData(
        uint256 index,
        bytes32 underlying,
        MarketDataCache memory cache
    ) internal view returns (uint256 spot, uint256 volatility) {
        bool cached = index < cache.spots.length;
        if (cached && cache.spots[index] != 0) return (cache.spots[index], cache.volatilities[index]);
        (spot, volatility) = oracle.getPriceAndVolatilityOrZero(underlying);
        // Outside the health views a failed volatility feed reverts with its own error.
        if (volatility == 0 && !cache.volatilityFallback) _requireVolatility(underlying);
        if (cached) (cache.spots[index], cache.volatilities[index]) = (spot, volatility);
    }

    /// @dev Reverts with the error of `underlying`'s failed volatility feed (called when it read 0).
    function _requireVolatility(bytes32 underlying) internal view {
        oracle.getVolatility(underlying);
    }

    /// @dev IM and (unless `book.initialOnly`) MM of the positions of group `g` with Greeks `greeks`
    /// (all of them, or position `only` alone). MM is capped at IM: the IM grid's shocks contain the MM
    /// grid's, so the true IM loss is the larger, and where the estimates cross (an option the IM grid
    /// reprices, the MM grid takes on its Greeks) the repriced one is the finer; uncapped, an account
    /// at its IM was auctionable at an unchanged price (review round 26: IM 2,692.88, MM 2,720.14).
    function _requirements(
        Book memory book,
        Group memory group,
        PortfolioMath.Greeks memory greeks,
        uint256 g,
        uint256 only
    ) internal view returns (uint256 im, uint256 mm) {
        PortfolioMath.Shocks memory imShocks;
        PortfolioMath.Shocks memory mmShocks;
        // The spot shocks before the size factor (a book of no notional); only options can need them.
        uint256 imBase;
        uint256 mmBase;
        {
            RiskParams memory p = _riskParams[group.underlying];
            uint256 sigma = PortfolioMath.horizonVolatility(group.volatility, p.horizon);
            (imShocks, mmShocks) = _shocks(p, sigma, greeks.notional);
            if (group.modelled) {
                imBase = PortfolioMath.spotShock(p.imShockFloor, p.imZ, sigma, p.maxShock, 0, 0);
                mmBase = PortfolioMath.spotShock(p.mmShockFloor, p.mmZ, sigma, p.maxShock, 0, 0);
            }
        }
        group.decideSpotShock = imBase;
        im = _levelRequirement(book, group, greeks, imShocks, g, only);
        if (!book.initialOnly) {
            group.decideSpotShock = mmBase;
            mm = Math.min(_levelRequirement(book, group, greeks, mmShocks, g, only), im);
        }
    }

    /// @dev A level's grid while it is built: the group's Greeks less those of the repriced positions, and
    /// the repriced positions' PnLs in every cell (empty until the first).
    struct Grid {
        PortfolioMath.Greeks taylor;
        int256[] repriced;
        int256[] spotMoves;
        int256[] volMoves;
    }

    /// @dev One level's requirement: positions whose Greeks cannot be trusted over the shocks
    /// (`PortfolioMath.needsRepricing`) leave the Taylor estimate and are repriced by their market in
    /// every cell of the grid. Those that need it only because the size factor took the spot shock past
    /// their σ√τ (the shock before it, `group.decideSpotShock`, keeps them on their Greeks) leave one σ√τ
    /// at a time, least first, and the level is the largest of those grids: where the Taylor estimate was
    /// the larger, the switch alone lowered the requirement and a larger position needed less (review
    /// round 59: 84 long calls' IM 10,560.83 under 82 calls' 12,323.71; round 61: a calendar whose legs
    /// cross at different sizes, 7,427.20 → 5,283.35). Positions enter that band in σ√τ order as the book
    /// grows, so every grid a smaller book had is still among those compared. Each position is repriced
    /// once; only books with such positions pay the extra grids.
    function _levelRequirement(
        Book memory book,
        Group memory group,
        PortfolioMath.Greeks memory greeks,
        PortfolioMath.Shocks memory k,
        uint256 g,
        uint256 only
    ) internal view returns (uint256 requirement) {
        if (!group.modelled) {
            int256[] memory nothingRepriced;
            return _gridRequirement(greeks, nothingRepriced, group.spot, k);
        }
        Grid memory grid;
        grid.taylor = greeks;
        uint256 end = book.held.length;
        // The positions only the size factor reprices, in σ√τ order (an insertion sort of a few).
        uint256[] memory band = new uint256[](end);
        uint256 inBand;
        for (uint256 i; i < end; ++i) {
            if (only == WHOLE_GROUP ? book.groupOf[i] != g : i != only) continue;
            IMarket.Exposure memory e = book.exposures[i];
            if (!PortfolioMath.needsRepricing(e.totalVolatility, e.modelVolatility, k)) continue;
            if (e.totalVolatility >= group.decideSpotShock && 2 * k.volShock <= e.modelVolatility) {
                uint256 j = inBand++;
                for (; j > 0 && book.exposures[band[j - 1]].totalVolatility > e.totalVolatility; --j) {
                    band[j] = band[j - 1];
                }
                band[j] = i;
            } else {
                _reprice(book, i, group, k, grid);
            }
        }
        requirement = _gridRequirement(grid.taylor, grid.repriced, group.spot, k);
        for (uint256 b; b < inBand; ++b) {
            _reprice(book, band[b], group, k, grid);
            // Positions of one σ√τ cross together: only the grid with all of them is one a book can have.
            if (
                b + 1 == inBand ||
                book.exposures[band[b + 1]].totalVolatility != book.exposures[band[b]].totalVolatility
            )
                requirement = Math.max(
                    requirement,
                    _gridRequirement(grid.taylor, grid.repriced, group.spot, k)
                );
        }
    }

    /// @dev Moves position `i` from the grid's Taylor estimate to repricing.
    function _reprice(
        Book memory book,
        uint256 i,
        Group memory group,
        PortfolioMath.Shocks memory k,
        Grid memory grid
    ) internal view {
        if (grid.repriced.length == 0) {
            grid.repriced = new int256[](PortfolioMath.CELLS);
            (grid.spotMoves, grid.volMoves) = PortfolioMath.scenarioMoves(group.spot, k);
            // The first repriced position: work on a copy, the Greeks are the group's.
            PortfolioMath.Greeks memory greeks = grid.taylor;
            grid.taylor = PortfolioMath.Greeks(
                greeks.delta,
                greeks.gamma,
                greeks.vega,
                greeks.optionSize,
                greeks.notional,
                greeks.vanna,
                greeks.volga
            );
        }
        IMarket.Exposure memory e = book.exposures[i];
        PortfolioMath.Greeks memory taylor = grid.taylor;
        taylor.delta -= e.delta;
        taylor.gamma -= e.gamma;
        taylor.vega -= e.vega;
        taylor.vanna -= e.vanna;
        taylor.volga -= e.volga;
        _addRepricedPnls(book, i, group, grid.spotMoves, grid.volMoves, grid.repriced);
    }

    /// @dev The requirement of a grid: the linear fast path for a group left linear with nothing
    /// repriced (perps only: the same numbers as the scenario grid for a fraction of the gas).
    function _gridRequirement(
        PortfolioMath.Greeks memory taylor,
        int256[] memory repriced,
        uint256 spot,
        PortfolioMath.Shocks memory k
    ) internal pure returns (uint256) {
        if (
            repriced.length == 0 &&
            taylor.gamma == 0 &&
            taylor.vega == 0 &&
            taylor.vanna == 0 &&
            taylor.volga == 0 &&
            taylor.optionSize == 0
        ) return RiskMath.linearRequirement(taylor.delta, taylor.notional, spot, k.spotShock, k.contingency);
        return PortfolioMath.requirement(taylor, spot, k, repriced);
    }

    /// @dev Adds position `i`'s PnL in every cell of the grid `spotMoves` × `volMoves` to `repriced`.
    function _addRepricedPnls(
        Book memory book,
        uint256 i,
        Group memory group,
        int256[] memory spotMoves,
        int256[] memory volMoves,
        int256[] memory repriced
    ) internal view {
        int256[] memory pnls = IMarket(book.held[i].market).scenarioPnls(
            book.accountId,
            book.held[i].marketId,
            group.spot,
            group.volatility,
            spotMoves,
            volMoves
        );
        for (uint256 c; c < PortfolioMath.CELLS; ++c) repriced[c] += pnls[c];
    }

    /// @dev The shocks of both levels for a group of `grossNotional` at σ√horizon `sigma`.
    function _shocks(
        RiskParams memory p,
        uint256 sigma,
        uint256 grossNotional
    ) internal pure returns (PortfolioMath.Shocks memory im, PortfolioMath.Shocks memory mm) {
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

    /// @dev `underlyings[index]` without the bounds check, for indexes taken from stored market keys
    /// (always in range): a health check skips the cold read of the array's length (2,100 gas).
    function _underlyingAt(uint256 index) internal view returns (bytes32 underlying) {
        assembly ("memory-safe") {
            mstore(0, underlyings.slot)
            underlying := sload(add(keccak256(0, 0x20), index))
        }
    }

    // ---------------------------------------------------------------- market lists

    /// @dev The stored list of `accountId`'s markets, unpacked.
    function _heldMarkets(uint256 accountId) internal view returns (MarketKey[] memory held) {
        mapping(uint256 => uint256) storage words = _held[accountId];
        uint256 word = words[0];
        uint256 n = word & COUNT_MASK;
        held = new MarketKey[](n);
        uint256 lastRef;
        address market;
        for (uint256 i; i < n; ++i) {
            if (i != 0 && i % KEYS_PER_WORD == 0) word = words[i / KEYS_PER_WORD];
            uint256 key = (word >> _shift(i)) & KEY_MASK;
            uint256 ref = key >> 64;
            // Most lists name one or two market contracts: look each address up once.
            if (ref != lastRef) (lastRef, market) = (ref, _marketByRef[ref]);
            held[i] = MarketKey({
                market: market,
                marketId: uint64((key >> COUNT_BITS) & type(uint48).max),
                underlyingIndex: uint32(key & COUNT_MASK)
            });
        }
    }

    /// @dev marketRef << 48 | marketId: what identifies a key (its bits above the underlying index).
    function _marketKeyId(address market, uint256 marketId) internal view returns (uint256) {
        return (uint256(_marketRef[market]) << 48) | SafeCast.toUint48(marketId);
    }

    /// @dev The position of the key identified by `id` among the first `n`, or `n`.
    function _find(
        mapping(uint256 => uint256) storage words,
        uint256 n,
        uint256 id
    ) internal view returns (uint256) {
        uint256 word;
        for (uint256 i; i < n; ++i) {
            if (i % KEYS_PER_WORD == 0) word = words[i / KEYS_PER_WORD];
            if ((word >> (_shift(i) + COUNT_BITS)) & (KEY_MASK >> COUNT_BITS) == id) return i;
        }
        return n;
    }

    function _keyAt(mapping(uint256 => uint256) storage words, uint256 i) internal view returns (uint256) {
        return (words[i / KEYS_PER_WORD] >> _shift(i)) & KEY_MASK;
    }

    function _setKey(mapping(uint256 => uint256) storage words, uint256 i, uint256 key) internal {
        uint256 shift = _shift(i);
        uint256 w = i / KEYS_PER_WORD;
        words[w] = (words[w] & ~(KEY_MASK << shift)) | (key << shift);
    }

    /// @dev Bit offset of key `i` in its word.
    function _shift(uint256 i) internal pure returns (uint256) {
        return COUNT_BITS + KEY_BITS * (i % KEYS_PER_WORD);
    }
}
