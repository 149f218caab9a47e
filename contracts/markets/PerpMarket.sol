// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {SignedMath} from "@openzeppelin/contracts/utils/math/SignedMath.sol";
import {IPerpMarket} from "../interfaces/IPerpMarket.sol";
import {IOptionMarket} from "../interfaces/IOptionMarket.sol";
import {IMarket} from "../interfaces/IMarket.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {IOracleRouter} from "../interfaces/IOracleRouter.sol";
import {PerpMath} from "../libraries/PerpMath.sol";
import {UpdateThrottle} from "../governance/UpdateThrottle.sol";
import {MarketBase} from "./MarketBase.sol";

/// @title PerpMarket
/// @notice Perpetual futures against the LiquidityPool's margin account, many markets per contract.
///
/// The pool's position. Every trade is a trade between the trader and the pool at the fill price, so
/// the pool holds −skew in each market. Its value is not tracked with an entry price of its own: a
/// pool position that averaged its own fills would realise PnL that no trader pays (a trader who
/// bought at 100 and sells at 120 receives 20 from the pool, while a pool short opened at an average
/// of 105 would only "realise" 15), so the pool's cash and its valuation would drift apart. Instead
/// the market keeps `entryBasis` = Σ over traders of size·(entryPrice − fundingIndexAtTouch) (exact,
/// 36 decimals) and values the pool as exactly minus the traders' unsettled value:
///     pool value = −(skew·(spot − fundingIndex) − entryBasis).
/// Every quote transfer is between a trader and the pool, so PnL and funding are zero-sum by
/// construction, and the rounding of each transfer (against the trader) stays with the pool.
/// Because the pool's value can be nonzero with zero skew (longs and shorts entered at different
/// prices), the pool holds a market in the engine while its open interest is nonzero, not while its
/// size is.
///
/// Why reducing trades skip the pause, the caps and the margin check: a reduction lowers the
/// position's |size| and the account's gross notional, realises nothing it did not already count
/// (unrealised PnL is already in equity; only the fee and the premium are new costs), and is how
/// accounts get out of trouble: blocking it during a pause or when the account is under its initial
/// requirement would trap owners in risk they want to shed and make liquidations harder.
/// A reduction in an account that holds other positions may unwind one leg of a hedge (two perps, or
/// perps and options, on one underlying) and leave the account naked on the hedge's margin: such a
/// trade must not raise the maintenance requirement unless the account meets its initial requirement
/// afterwards (`engine.requireRiskReduced`). The auction's closes (`bidAndClose`) skip this check and
/// the premium check: they empty a bidder account that held nothing before the bid, which must then meet
/// its initial requirement flat (`MarketBase.liquidator`).
contract PerpMarket is IPerpMarket, MarketBase, AccessManaged, ReentrancyGuardTransient, UpdateThrottle {
    using SafeCast for uint256;
    using SafeCast for int256;

    int256 internal constant SWAD = 1e18;

    // Hard bounds of MarketParams (WAD unless stated).
    /// @notice Largest skew scale: 10^12 units of the underlying.
    uint256 public constant MAX_SKEW_SCALE = 1e30;
    /// @notice Largest maker or taker fee: 1% of the notional.
    uint256 public constant MAX_FEE = 0.01e18;
    /// @notice Largest share of a fee paid to the insurance fund: the pool keeps at least half.
    uint256 public constant MAX_INSURANCE_FEE_SHARE = 0.5e18;
    /// @notice Largest funding velocity: the rate's change per day, per day, at full skew.
    uint256 public constant MAX_FUNDING_VELOCITY = 10e18;
    /// @notice Largest |funding rate|: 10% of the notional per day.
    uint256 public constant MAX_FUNDING_RATE = 0.1e18;
    /// @notice Largest `maxPoolDeltaRatio`: the LPs' delta in a market at most ten times the pool's
    /// base.
    uint256 public constant MAX_POOL_DELTA_RATIO = 10e18;
    /// @notice Most markets this contract lists. The pool holds every market with open interest and,
    /// unlike an account, has no market cap in the engine: this bounds its health check (~75,000 gas
    /// per market), which every LP withdrawal pays. Markets are never delisted.
    uint256 public constant MAX_MARKETS = 32;

    // Max steps per update after listing. skewScale moves by at most ×2 or ÷2; open-interest caps and
    // the pool delta ratio may fall freely (that only reduces risk) and at most double per update.
    /// @notice Largest change of a maker or taker fee per update (a quarter point).
    uint256 public constant MAX_FEE_STEP = 0.0025e18;
    /// @notice Largest change of the insurance fee share per update (ten points).
    uint256 public constant MAX_INSURANCE_FEE_SHARE_STEP = 0.1e18;
    /// @notice Largest change of the funding velocity per update.
    uint256 public constant MAX_FUNDING_VELOCITY_STEP = 1e18;
    /// @notice Largest change of the funding rate clamp per update (one point a day).
    uint256 public constant MAX_FUNDING_RATE_STEP = 0.01e18;

    /// @dev Eight slots: funding (0), open interest (1), entry basis (2), params (3-5), underlying (6),
    /// the fee floor (7: read by governance only, never by a trade).
    struct Market {
        int128 fundingIndex;
        int64 fundingRate;
        uint40 lastFundingTime;
        uint128 longOpenInterest;
        uint128 shortOpenInterest;
        // Σ over traders of size·(entryPrice − fundingIndex), 36 decimals, exact.
        int256 entryBasis;
        MarketParams params;
        bytes32 underlying;
        uint64 minRoundTripFee; // ≤ 2·MAX_FEE
    }

    /// @inheritdoc IPerpMarket
    uint256 public marketCount;
    mapping(uint256 marketId => Market) internal _markets;
    mapping(uint256 marketId => mapping(uint256 accountId => Position)) internal _positions;
    /// @notice The option market whose premiums the delta limit's base leaves out (zero: none).
    IOptionMarket public optionMarket;

    /// @dev Intermediate values of one trade (a memory struct keeps the stack shallow).
    struct Trade {
        uint256 price;
        int256 oldSize;
        int256 newSize;
        uint256 oldEntry;
        uint256 newEntry;
        int256 index;
        int256 skew;
        uint256 fill;
        int256 realizedRaw; // 36 decimals, > 0: gain
        int256 fundingRaw; // 36 decimals, > 0: paid by the account
        uint256 feeQuote;
        uint256 insuranceFeeShare;
        uint256 oldOpenInterest;
        uint256 newLong;
        uint256 newShort;
        bool increasesRisk;
    }

    /// @param authority The protocol's AccessManager.
    /// @param engine_ The margin engine (already initialised with its pool account).
    /// @param accounts_ The account registry (trade authorisation).
    /// @param oracle_ The oracle router.
    /// @param quoteDecimals The quote token's decimals (checked against the token).
    constructor(
        address authority,
        IMarginEngine engine_,
        IAccounts accounts_,
        IOracleRouter oracle_,
        uint8 quoteDecimals
    ) MarketBase(engine_, accounts_, oracle_, quoteDecimals) AccessManaged(authority) {}

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IPerpMarket
    function setOptionMarket(address optionMarket_) external restricted {
        if (optionMarket_ != address(0)) {
            if (!engine.isMarket(optionMarket_)) revert InvalidOptionMarket(optionMarket_);
            // Read once here: a market without it (this one, say) would revert every new perp risk.
            try IOptionMarket(optionMarket_).poolPremiumHeld() returns (int256) {} catch {
                revert InvalidOptionMarket(optionMarket_);
            }
        }
        optionMarket = IOptionMarket(optionMarket_);
        emit OptionMarketSet(optionMarket_);
    }

    /// @inheritdoc IPerpMarket
    function listMarket(
        bytes32 underlying,
        MarketParams calldata params,
        uint256 minRoundTripFee
    ) external restricted returns (uint256 marketId) {
        // Reverts with the engine's UnknownUnderlying if the engine has no risk parameters for it.
        engine.riskParams(underlying);
        if (underlying == bytes32(0) || !oracle.hasPrice(underlying)) revert UnknownUnderlying(underlying);
        _checkBounds(params);
        _require(minRoundTripFee <= uint256(params.makerFee) + params.takerFee, "minRoundTripFee");
        if (marketCount == MAX_MARKETS) revert MarketLimitReached(MAX_MARKETS);
        marketId = ++marketCount;
        Market storage m = _markets[marketId];
        m.underlying = underlying;
        m.params = params;
        m.lastFundingTime = uint40(block.timestamp);
        m.minRoundTripFee = uint64(minRoundTripFee); // ≤ 2·MAX_FEE
        emit MarketListed(marketId, underlying, params);
        emit MinRoundTripFeeSet(marketId, minRoundTripFee);
    }

    /// @inheritdoc IPerpMarket
    function setMinRoundTripFee(uint256 marketId, uint256 minRoundTripFee) external restricted {
        Market storage m = _market(marketId);
        _require(minRoundTripFee <= 2 * MAX_FEE, "minRoundTripFee");
        m.minRoundTripFee = uint64(minRoundTripFee);
        emit MinRoundTripFeeSet(marketId, minRoundTripFee);
    }

    /// @inheritdoc IPerpMarket
    function setMarketParams(uint256 marketId, MarketParams calldata params) external restricted {
        Market storage m = _market(marketId);
        _checkBounds(params);
        _checkSteps(m.params, params);
        // A round trip below the floor is the oracle-lag take of review round 65; fees already below a
        // floor the timelock raised may only rise toward it.
        uint256 oldRoundTrip = uint256(m.params.makerFee) + m.params.takerFee;
        _require(
            uint256(params.makerFee) + params.takerFee >= Math.min(m.minRoundTripFee, oldRoundTrip),
            "minRoundTripFee"
        );
        // The steps are measured from the current values: without the interval they chain.
        _throttle("marketParams", bytes32(marketId), MIN_UPDATE_INTERVAL);
        _accrue(marketId, m, oracle.getPrice(m.underlying));
        // Fills stay positive only while |skew| ≤ skewScale (see _checkBounds): a cut below the skew
        // open now would make every small reduction of the crowded side revert InvalidFillPrice
        // (closes and auction slices alike) and sell the rest at a premium above 100% (review round 43).
        _require(SignedMath.abs(_skew(m)) <= params.skewScale, "skewScale");
        m.params = params;
        int256 maxRate = int256(uint256(params.maxFundingRate));
        int256 rate = m.fundingRate;
        if (rate > maxRate) m.fundingRate = int64(maxRate);
        else if (rate < -maxRate) m.fundingRate = int64(-maxRate);
        emit MarketParamsUpdated(marketId, params);
    }

    // ---------------------------------------------------------------- trading

    /// @inheritdoc IPerpMarket
    function trade(
        uint256 accountId,
        uint256 marketId,
        int256 sizeDelta,
        uint256 limitPrice,
        uint256 deadline
    ) external nonReentrant {
        _trade(accountId, marketId, sizeDelta, limitPrice, deadline);
    }

    /// @inheritdoc IPerpMarket
    function closePosition(
        uint256 accountId,
        uint256 marketId,
        uint256 limitPrice,
        uint256 deadline
    ) external nonReentrant {
        _trade(accountId, marketId, -int256(_positions[marketId][accountId].size), limitPrice, deadline);
    }

    /// @inheritdoc IPerpMarket
    function transferPosition(
        uint256 fromAccountId,
        uint256 toAccountId,
        uint256 marketId,
        uint256 fraction
    ) external onlyEngine nonReentrant {
        if (fromAccountId == poolAccountId || toAccountId == poolAccountId) revert PoolAccountCannotTrade();
        if (fraction > WAD) revert InvalidFraction(fraction);
        Market storage m = _market(marketId);
        Position storage from = _positions[marketId][fromAccountId];
        // Rounded toward zero: the liquidated account keeps the dust.
        int256 moved = (int256(from.size) * int256(fraction)) / SWAD;
        if (moved == 0 || fromAccountId == toAccountId) return;
        int256 index = _accrue(marketId, m, oracle.getPrice(m.underlying));

        // The sender settles its funding and keeps its entry price for the rest.
        Trade memory f;
        f.index = index;
        f.oldSize = from.size;
        f.oldEntry = from.entryPrice;
        f.newSize = f.oldSize - moved;
        f.newEntry = f.newSize == 0 ? 0 : f.oldEntry;
        f.fundingRaw = f.oldSize * (index - from.fundingIndex);
        // The receiver takes the slice as if it traded `moved` at the sender's entry price.
        Position storage to = _positions[marketId][toAccountId];
        Trade memory t;
        t.index = index;
        t.fill = f.oldEntry;
        t.oldSize = to.size;
        t.oldEntry = to.entryPrice;
        t.newSize = t.oldSize + moved;
        t.fundingRaw = t.oldSize * (index - to.fundingIndex);
        _applyFill(t, moved);

        // Open interest moves between the accounts and shrinks where the slice offsets the receiver's
        // position; the skew is unchanged.
        _transferOpenInterest(f, t, m.longOpenInterest, m.shortOpenInterest);
        m.longOpenInterest = uint128(f.newLong);
        m.shortOpenInterest = uint128(f.newShort);
        m.entryBasis += _basisChange(f, from.fundingIndex) + _basisChange(t, to.fundingIndex);
        _store(from, f);
        _store(to, t);

        if (f.newSize == 0) engine.notePositionClosed(fromAccountId, marketId);
        if (t.oldSize == 0) engine.notePositionOpened(toAccountId, marketId, m.underlying);
        else if (t.newSize == 0) engine.notePositionClosed(toAccountId, marketId);
        if (f.newLong + f.newShort == 0) engine.notePositionClosed(poolAccountId, marketId);
        _settle(fromAccountId, -f.fundingRaw);
        _settle(toAccountId, t.realizedRaw - t.fundingRaw);
        emit PositionTransferred(
            fromAccountId,
            toAccountId,
            marketId,
            moved,
            f.oldEntry,
            PerpMath.divCeil(f.fundingRaw, SWAD),
            PerpMath.divCeil(t.fundingRaw, SWAD),
            PerpMath.divFloor(t.realizedRaw, SWAD)
        );
    }

    /// @dev Open interest after a transfer from `f` to `t` (into f.newLong and f.newShort): each side
    /// counts the two positions' new sizes instead of their old ones.
    function _transferOpenInterest(
        Trade memory f,
        Trade memory t,
        uint256 longOi,
        uint256 shortOi
    ) internal pure {
        f.newLong =
            longOi +
            _positive(f.newSize) +
            _positive(t.newSize) -
            _positive(f.oldSize) -
            _positive(t.oldSize);
        f.newShort =
            shortOi +
            _positive(-f.newSize) +
            _positive(-t.newSize) -
            _positive(-f.oldSize) -
            _positive(-t.oldSize);
    }

    /// @dev What trading `sizeDelta` at the market's fill costs the trader beyond `price`, USD WAD
    /// rounded up (against the trader): the skew premium, negative for a rebate (a trade that reduces
    /// the skew fills better than the oracle). No fee. Prices the exit discount (`_exposure`).
    function _closeCost(
        Market storage m,
        uint256 price,
        int256 skew,
        int256 sizeDelta
    ) internal view returns (int256) {
        int256 fill = PerpMath.fillPrice(price, skew, sizeDelta, m.params.skewScale);
        return PerpMath.divCeil(sizeDelta * (fill - int256(price)), SWAD);
    }

    /// @inheritdoc IPerpMarket
    function accrueFunding(uint256 marketId) external nonReentrant {
        Market storage m = _market(marketId);
        _accrue(marketId, m, oracle.getPrice(m.underlying));
    }

    function _trade(
        uint256 accountId,
        uint256 marketId,
        int256 sizeDelta,
        uint256 limitPrice,
        uint256 deadline
    ) internal {
        if (block.timestamp > deadline) revert DeadlineExpired(deadline);
        if (sizeDelta == 0) revert ZeroSizeDelta();
        if (accountId == poolAccountId) revert PoolAccountCannotTrade();
        Market storage m = _market(marketId);
        Position storage pos = _positions[marketId][accountId];
        Trade memory t = _price(marketId, m, pos, sizeDelta, limitPrice);
        // Authorisation needs the price: a trader's trade spends its allowance by what the trade costs
        // the account at the oracle price (fee and skew premium), which is what a trader could collect
        // with its own account on the other side.
        uint256 premiumQuote = PerpMath.premiumPaid(t.price, t.fill, sizeDelta, quoteUnit);
        // The auction's closes (`bidAndClose`) are checked once, flat, after the last one (MarketBase).
        bool checked = !t.increasesRisk && msg.sender != liquidator;
        bool paysPremium = checked && premiumQuote != 0;
        accounts.authorizeTrade(accountId, msg.sender, t.feeQuote + premiumQuote);
        // Reductions skip the initial-margin check, with two exceptions that need the account's health
        // before the trade. One in an account holding other positions on the same underlying may unwind
        // a hedge (requirements add up across underlyings, and a lone position's requirement shrinks
        // with its size). One that fills worse than the oracle pays a skew premium that the
        // path-independent fill hands back to whoever closes the opposite skew: a partner could drain
        // the account through it and leave its remaining position, or its deficit, to the pool.
        bool hedged;
        IMarginEngine.Health memory before;
        if (checked) {
            hedged = engine.hasOtherOnUnderlying(accountId, address(this), marketId);
            if (hedged || paysPremium) before = engine.health(accountId);
        }

        // Effects.
        m.longOpenInterest = uint128(t.newLong); // ≤ maxOpenInterest, or ≤ its old value
        m.shortOpenInterest = uint128(t.newShort);
        m.entryBasis += _basisChange(t, pos.fundingIndex);
        _store(pos, t);

        // Interactions: engine bookkeeping, settlement, fee, margin.
        _noteHoldings(accountId, marketId, m.underlying, t);
        _settle(accountId, t.realizedRaw - t.fundingRaw);
        if (t.feeQuote != 0) {
            uint256 toInsurance = Math.mulDiv(t.feeQuote, t.insuranceFeeShare, WAD);
            engine.chargeFee(accountId, t.feeQuote - toInsurance, toInsurance);
        }
        emit PositionModified(
            accountId,
            marketId,
            sizeDelta,
            t.fill,
            t.newSize,
            t.newEntry,
            PerpMath.divFloor(t.realizedRaw, SWAD),
            PerpMath.divCeil(t.fundingRaw, SWAD),
            t.feeQuote * quoteUnit
        );
        if (t.increasesRisk) {
            engine.requireInitialMargin(accountId);
        } else {
            if (hedged) engine.requireRiskReduced(accountId, before.maintenanceRequirement);
            if (paysPremium) {
                engine.requirePremiumAffordable(
                    accountId,
                    before.equityMaintenance - before.maintenanceRequirement.toInt256()
                );
            }
        }
    }

    /// @dev Accrues funding, then prices the trade: fill, limit, realised PnL, funding, new entry, open
    /// interest, fee, and the checks that apply to new risk. Writes only the funding state.
    function _price(
        uint256 marketId,
        Market storage m,
        Position storage pos,
        int256 sizeDelta,
        uint256 limitPrice
    ) internal returns (Trade memory t) {
        // Funding first, at the same oracle price as the fill.
        t.price = oracle.getPrice(m.underlying);
        t.index = _accrue(marketId, m, t.price);
        MarketParams memory p = m.params;
        t.insuranceFeeShare = p.insuranceFeeShare;

        uint256 longOi = m.longOpenInterest;
        uint256 shortOi = m.shortOpenInterest;
        t.oldOpenInterest = longOi + shortOi;
        t.skew = int256(longOi) - int256(shortOi);
        int256 fill = PerpMath.fillPrice(t.price, t.skew, sizeDelta, p.skewScale);
        if (fill <= 0) revert InvalidFillPrice(fill);
        t.fill = uint256(fill);
        if (sizeDelta > 0 ? t.fill > limitPrice : t.fill < limitPrice) {
            revert PriceLimitExceeded(t.fill, limitPrice);
        }

        t.oldSize = pos.size;
        t.oldEntry = pos.entryPrice;
        t.newSize = t.oldSize + sizeDelta;
        t.fundingRaw = t.oldSize * (t.index - pos.fundingIndex);
        _applyFill(t, sizeDelta);

        // Open interest: remove the old position's side, add the new one's.
        t.newLong = longOi - _positive(t.oldSize) + _positive(t.newSize);
        t.newShort = shortOi - _positive(-t.oldSize) + _positive(-t.newSize);
        if (t.increasesRisk) _checkNewRisk(marketId, t, p, longOi, shortOi);

        t.feeQuote = PerpMath.fee(t.skew, sizeDelta, t.fill, p.makerFee, p.takerFee, quoteUnit);
    }

    /// @dev Realised PnL, new entry price and whether the trade increases risk.
    function _applyFill(Trade memory t, int256 sizeDelta) internal pure {
        bool opposite = t.oldSize != 0 && (t.oldSize > 0) != (sizeDelta > 0);
        if (opposite) {
            // Realise PnL on the reduced part: min(|delta|, |old|), with the old position's sign.
            uint256 closedAbs = Math.min(SignedMath.abs(sizeDelta), SignedMath.abs(t.oldSize));
            int256 closed = t.oldSize > 0 ? int256(closedAbs) : -int256(closedAbs);
            t.realizedRaw = closed * (int256(t.fill) - int256(t.oldEntry));
        }
        if (t.newSize == 0) {
            t.newEntry = 0;
        } else if (!opposite) {
            // Open or increase (same sign): weighted average, rounded against the trader.
            t.newEntry = PerpMath.averageEntry(t.oldSize, t.oldEntry, sizeDelta, t.fill);
            t.increasesRisk = true;
        } else if ((t.newSize > 0) == (t.oldSize > 0)) {
            // Reduce: the remaining size keeps its entry.
            t.newEntry = t.oldEntry;
        } else {
            // Flip: the new side opens at the fill.
            t.newEntry = t.fill;
            t.increasesRisk = true;
        }
    }

    /// @dev Change of one position's term size·(entryPrice − fundingIndex) in the entry basis.
    function _basisChange(Trade memory t, int256 oldIndex) internal pure returns (int256) {
        return t.newSize * (int256(t.newEntry) - t.index) - t.oldSize * (int256(t.oldEntry) - oldIndex);
    }

    /// @dev Writes the position after `t` (settled up to the current index), or deletes it.
    function _store(Position storage pos, Trade memory t) internal {
        if (t.newSize == 0) {
            delete pos.size;
            delete pos.entryPrice;
            delete pos.fundingIndex;
        } else {
            pos.size = t.newSize.toInt128();
            pos.entryPrice = t.newEntry.toUint128();
            pos.fundingIndex = int128(t.index); // the index is stored as int128
        }
    }

    /// @dev Pause, open-interest caps and the pool delta limit, each on a side of the book where it grows.
    /// The delta limit bounds each side of the traders' book (without the backstop's position, which is
    /// the LPs' own) rather than the LPs' net delta: closes are never refused, so the traders on one side
    /// can always leave the LPs holding the whole other side. A net limit would be exceeded by closes
    /// alone (one partner's close took the pool to 2.95× it). A risk-increasing trade is never the
    /// backstop's (it only unwinds), so its position is the same before and after.
    function _checkNewRisk(
        uint256 marketId,
        Trade memory t,
        MarketParams memory p,
        uint256 longOi,
        uint256 shortOi
    ) internal view {
        if (engine.paused()) revert RiskIncreasePaused();
        if (t.newLong > longOi && t.newLong > p.maxOpenInterest) {
            revert OpenInterestCapExceeded(marketId, true, t.newLong, p.maxOpenInterest);
        }
        if (t.newShort > shortOi && t.newShort > p.maxOpenInterest) {
            revert OpenInterestCapExceeded(marketId, false, t.newShort, p.maxOpenInterest);
        }
        int256 backstopSize = _positions[marketId][backstopAccountId].size;
        uint256 grownSide;
        if (t.newLong > longOi) grownSide = t.newLong - _positive(backstopSize);
        if (t.newShort > shortOi) grownSide = Math.max(grownSide, t.newShort - _positive(-backstopSize));
        if (grownSide == 0) return;
        uint256 poolDelta = Math.mulDiv(grownSide, t.price, WAD, Math.Rounding.Ceil);
        int256 base = poolDeltaBase();
        uint256 limit = base > 0 ? Math.mulDiv(uint256(base) * quoteUnit, p.maxPoolDeltaRatio, WAD) : 0;
        if (poolDelta > limit) revert PoolDeltaLimitExceeded(marketId, poolDelta, limit);
    }

    /// @dev Tells the engine which markets the trader and the pool hold. The pool holds the market
    /// while any trader does (see the contract's NatSpec).
    function _noteHoldings(uint256 accountId, uint256 marketId, bytes32 underlying, Trade memory t) internal {
        if (t.oldSize == 0) engine.notePositionOpened(accountId, marketId, underlying);
        else if (t.newSize == 0) engine.notePositionClosed(accountId, marketId);
        uint256 newOpenInterest = t.newLong + t.newShort;
        if (t.oldOpenInterest == 0) engine.notePositionOpened(poolAccountId, marketId, underlying);
        else if (newOpenInterest == 0) engine.notePositionClosed(poolAccountId, marketId);
    }

    /// @dev Moves `netRaw` (36 decimals, > 0: owed to the trader) between the trader and the pool,
    /// rounded against the trader: a gain rounds down, a debt rounds up.
    function _settle(uint256 accountId, int256 netRaw) internal {
        if (netRaw > 0) {
            engine.transferQuote(poolAccountId, accountId, uint256(netRaw) / rawPerQuoteUnit);
        } else if (netRaw < 0) {
            engine.transferQuote(accountId, poolAccountId, Math.ceilDiv(uint256(-netRaw), rawPerQuoteUnit));
        }
    }

    /// @dev Accrues funding of `m` to now at `price`; returns the (new) index.
    function _accrue(uint256 marketId, Market storage m, uint256 price) internal returns (int256 index) {
        index = m.fundingIndex;
        uint256 last = m.lastFundingTime;
        if (last == block.timestamp) return index;
        int256 rate;
        (rate, index) = _fundingAt(marketId, m, price, block.timestamp - last);
        m.fundingIndex = index.toInt128();
        m.fundingRate = int64(rate); // |rate| ≤ maxFundingRate ≤ MAX_FUNDING_RATE
        m.lastFundingTime = uint40(block.timestamp);
        emit FundingAccrued(marketId, rate, index);
    }

    /// @dev Funding is driven by the traders' net position without the backstop's: the LPs hold minus
    /// that (the pool −skew, the backstop its own), and funding pays whoever takes their other side.
    /// Counting the backstop's book as a trader's would have a hedged trader collect funding from the
    /// LPs while their real exposure is the trader's own side (docs/reliability.md §4, row 38).
    function _fundingAt(
        uint256 marketId,
        Market storage m,
        uint256 price,
        uint256 dt
    ) internal view returns (int256 rate, int256 index) {
        int256 skew = _skew(m);
        return
            PerpMath.accrueFunding(
                m.fundingRate,
                m.fundingIndex,
                skew - _positions[marketId][backstopAccountId].size,
                m.params.skewScale,
                m.params.maxFundingVelocity,
                m.params.maxFundingRate,
                price,
                dt
            );
    }

    /// @dev The funding index as of now, valued at `price`, without writing it.
    function _currentIndex(
        uint256 marketId,
        Market storage m,
        uint256 price
    ) internal view returns (int256 index) {
        uint256 last = m.lastFundingTime;
        if (last == block.timestamp) return m.fundingIndex;
        (, index) = _fundingAt(marketId, m, price, block.timestamp - last);
    }

    // ---------------------------------------------------------------- engine

    /// @inheritdoc IMarket
    function exposure(
        uint256 accountId,
        uint256 marketId,
        uint256 spotPrice,
        uint256
    ) external view returns (Exposure memory) {
        return _exposure(_markets[marketId], accountId, marketId, spotPrice);
    }

    /// @inheritdoc IMarket
    /// @dev A perp's value is linear in spot, but its pending funding is priced at spot too: each
    /// scenario is valued exactly as `exposure` would value it. Volatility moves change nothing.
    function scenarioPnls(
        uint256 accountId,
        uint256 marketId,
        uint256 spotPrice,
        uint256,
        int256[] calldata spotMoves,
        int256[] calldata volMoves
    ) external view returns (int256[] memory pnls) {
        int256[] memory spotPnls = _spotPnls(accountId, marketId, spotPrice, spotMoves);
        uint256 n = volMoves.length;
        pnls = new int256[](spotPnls.length * n);
        for (uint256 i; i < spotPnls.length; ++i) {
            for (uint256 j; j < n; ++j) pnls[i * n + j] = spotPnls[i];
        }
    }

    /// @dev value(spot + spotMoves[i]) − value(spot), valued as `exposure` values the position.
    function _spotPnls(
        uint256 accountId,
        uint256 marketId,
        uint256 spotPrice,
        int256[] calldata spotMoves
    ) internal view returns (int256[] memory pnls) {
        Market storage m = _markets[marketId];
        int256 base = _exposure(m, accountId, marketId, spotPrice).value;
        pnls = new int256[](spotMoves.length);
        for (uint256 i; i < spotMoves.length; ++i) {
            uint256 spot = uint256(int256(spotPrice) + spotMoves[i]);
            pnls[i] = _exposure(m, accountId, marketId, spot).value - base;
        }
    }

    function _exposure(
        Market storage m,
        uint256 accountId,
        uint256 marketId,
        uint256 spotPrice
    ) internal view returns (Exposure memory e) {
        if (accountId == poolAccountId) return _poolExposure(m, marketId, spotPrice);
        Position memory pos = _positions[marketId][accountId];
        if (pos.size == 0) return e;
        int256 index = _currentIndex(marketId, m, spotPrice);
        int256 size = pos.size;
        e.delta = size;
        // size·(spot − entry) − size·(index − index at last touch), rounded down.
        e.value = PerpMath.divFloor(
            size * (int256(spotPrice) - int256(uint256(pos.entryPrice))) - size * (index - pos.fundingIndex),
            SWAD
        );
        // The skew premium closing the whole position now would pay (IMarket.Exposure.exitDiscount): a
        // premium received on entry, shorting into a long skew, is not margin until that skew is gone.
        int256 skew = _skew(m);
        int256 cost = _closeCost(m, spotPrice, skew, -size);
        if (cost > 0) e.exitDiscount = uint256(cost);
        e.notional = Math.mulDiv(SignedMath.abs(size), spotPrice, WAD, Math.Rounding.Ceil);
    }

    /// @dev The pool's exposure: size −skew, value minus the traders' unsettled value (Σ size·(spot −
    /// index) − entryBasis) less the skew premium a full close-out would pay back, rounded down.
    /// Traders' entry prices include the skew premium they paid, so minus their value counts it as the
    /// pool's; but the fill premium is path-independent (its integral from skew a to b is
    /// spot·(b² − a²)/(2·skewScale)), so whoever closes the skew gets spot·skew²/(2·skewScale) back.
    /// Counting it would let a trader lift the LP share price with a skewing trade, redeem LP shares at
    /// that price and close for the premium back. The delta stays −skew: it is the pool's position.
    function _poolExposure(
        Market storage m,
        uint256 marketId,
        uint256 spotPrice
    ) internal view returns (Exposure memory e) {
        int256 skew = _skew(m);
        int256 basis = m.entryBasis;
        if (skew == 0 && basis == 0) return e;
        int256 index = _currentIndex(marketId, m, spotPrice);
        uint256 absSkew = SignedMath.abs(skew);
        // 36 decimals like the basis, rounded up (against the pool); 0 when skew is 0 (no param read).
        uint256 unwind = skew == 0
            ? 0
            : Math.mulDiv(spotPrice * absSkew, absSkew, 2 * uint256(m.params.skewScale), Math.Rounding.Ceil);
        e.delta = -skew;
        e.value = PerpMath.divFloor(basis - skew * (int256(spotPrice) - index) - unwind.toInt256(), SWAD);
        e.notional = Math.mulDiv(absSkew, spotPrice, WAD, Math.Rounding.Ceil);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IMarket
    /// @dev Perpetuals never settle: marked at the oracle, always.
    function nearSettlement(uint256) external pure returns (bool) {
        return false;
    }

    /// @inheritdoc IPerpMarket
    function positionSize(uint256 accountId, uint256 marketId) external view returns (int256) {
        if (accountId == poolAccountId) {
            Market storage m = _markets[marketId];
            return int256(uint256(m.shortOpenInterest)) - int256(uint256(m.longOpenInterest));
        }
        return _positions[marketId][accountId].size;
    }

    /// @inheritdoc IPerpMarket
    function position(uint256 accountId, uint256 marketId) external view returns (Position memory pos) {
        if (accountId == poolAccountId) {
            Market storage m = _markets[marketId];
            pos.size = int128(int256(uint256(m.shortOpenInterest)) - int256(uint256(m.longOpenInterest)));
            return pos;
        }
        return _positions[marketId][accountId];
    }

    /// @inheritdoc IPerpMarket
    function market(uint256 marketId) external view returns (MarketInfo memory info) {
        Market storage m = _market(marketId);
        info.underlying = m.underlying;
        info.params = m.params;
        info.longOpenInterest = m.longOpenInterest;
        info.shortOpenInterest = m.shortOpenInterest;
        info.skew = int256(info.longOpenInterest) - int256(info.shortOpenInterest);
        info.fundingRate = m.fundingRate;
        info.fundingIndex = m.fundingIndex;
        info.lastFundingTime = m.lastFundingTime;
        info.backstopSize = _positions[marketId][backstopAccountId].size;
        info.minRoundTripFee = m.minRoundTripFee;
    }

    /// @inheritdoc IPerpMarket
    function currentFundingRate(uint256 marketId) external view returns (int256 rate) {
        Market storage m = _market(marketId);
        uint256 last = m.lastFundingTime;
        if (last == block.timestamp) return m.fundingRate;
        // The rate does not depend on the price.
        (rate, ) = _fundingAt(marketId, m, 0, block.timestamp - last);
    }

    /// @inheritdoc IPerpMarket
    function currentFundingIndex(uint256 marketId) public view returns (int256) {
        Market storage m = _market(marketId);
        return _currentIndex(marketId, m, oracle.getPrice(m.underlying));
    }

    /// @inheritdoc IPerpMarket
    function quoteTrade(
        uint256 marketId,
        int256 sizeDelta
    ) external view returns (uint256 fillPrice, uint256 fee) {
        Market storage m = _market(marketId);
        if (sizeDelta == 0) revert ZeroSizeDelta();
        int256 skew = _skew(m);
        int256 fill = PerpMath.fillPrice(oracle.getPrice(m.underlying), skew, sizeDelta, m.params.skewScale);
        if (fill <= 0) revert InvalidFillPrice(fill);
        fillPrice = uint256(fill);
        fee =
            PerpMath.fee(skew, sizeDelta, fillPrice, m.params.makerFee, m.params.takerFee, quoteUnit) *
            quoteUnit;
    }

    /// @inheritdoc IPerpMarket
    function poolDeltaBase() public view returns (int256 base) {
        base = vault.balanceOf(poolAccountId, quoteToken);
        IOptionMarket options = optionMarket;
        if (address(options) != address(0)) base -= SignedMath.max(options.poolPremiumHeld(), 0);
    }

    /// @inheritdoc IPerpMarket
    function accruedFunding(uint256 accountId, uint256 marketId) external view returns (int256) {
        Position memory pos = _positions[marketId][accountId];
        return PerpMath.divCeil(pos.size * (currentFundingIndex(marketId) - pos.fundingIndex), SWAD);
    }

    // ---------------------------------------------------------------- internal

    function _market(uint256 marketId) internal view returns (Market storage m) {
        m = _markets[marketId];
        if (m.underlying == bytes32(0)) revert UnknownMarket(marketId);
    }

    /// @dev Traders' net open interest: what the fill premium and funding price.
    function _skew(Market storage m) internal view returns (int256) {
        return int256(uint256(m.longOpenInterest)) - int256(uint256(m.shortOpenInterest));
    }

    function _checkBounds(MarketParams calldata p) internal pure {
        _require(p.skewScale != 0 && p.skewScale <= MAX_SKEW_SCALE, "skewScale");
        _require(p.maxFundingVelocity <= MAX_FUNDING_VELOCITY, "maxFundingVelocity");
        _require(p.maxFundingRate <= MAX_FUNDING_RATE, "maxFundingRate");
        _require(p.makerFee <= MAX_FEE, "makerFee");
        _require(p.takerFee <= MAX_FEE, "takerFee");
        _require(p.insuranceFeeShare <= MAX_INSURANCE_FEE_SHARE, "insuranceFeeShare");
        _require(
            p.maxPoolDeltaRatio != 0 && p.maxPoolDeltaRatio <= MAX_POOL_DELTA_RATIO,
            "maxPoolDeltaRatio"
        );
        // Open interest within skewScale keeps |premium| ≤ 100%, so fills stay positive.
        _require(p.maxOpenInterest != 0 && p.maxOpenInterest <= p.skewScale, "maxOpenInterest");
    }

    function _checkSteps(MarketParams storage old, MarketParams calldata p) internal view {
        _require(
            p.skewScale <= 2 * uint256(old.skewScale) && 2 * uint256(p.skewScale) >= old.skewScale,
            "skewScale"
        );
        _require(
            _within(old.maxFundingVelocity, p.maxFundingVelocity, MAX_FUNDING_VELOCITY_STEP),
            "maxFundingVelocity"
        );
        _require(_within(old.maxFundingRate, p.maxFundingRate, MAX_FUNDING_RATE_STEP), "maxFundingRate");
        _require(_within(old.makerFee, p.makerFee, MAX_FEE_STEP), "makerFee");
        _require(_within(old.takerFee, p.takerFee, MAX_FEE_STEP), "takerFee");
        _require(
            _within(old.insuranceFeeShare, p.insuranceFeeShare, MAX_INSURANCE_FEE_SHARE_STEP),
            "insuranceFeeShare"
        );
        _require(p.maxPoolDeltaRatio <= 2 * uint256(old.maxPoolDeltaRatio), "maxPoolDeltaRatio");
        _require(p.maxOpenInterest <= 2 * uint256(old.maxOpenInterest), "maxOpenInterest");
    }

    function _within(uint256 a, uint256 b, uint256 step) private pure returns (bool) {
        return a > b ? a - b <= step : b - a <= step;
    }

    function _require(bool ok, bytes32 parameter) private pure {
        if (!ok) revert MarketParamOutOfBounds(parameter);
    }
}
