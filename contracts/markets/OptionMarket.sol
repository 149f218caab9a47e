// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SignedMath} from "@openzeppelin/contracts/utils/math/SignedMath.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IOptionMarket} from "../interfaces/IOptionMarket.sol";
import {IMarket} from "../interfaces/IMarket.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {IOracleRouter} from "../interfaces/IOracleRouter.sol";
import {BlackScholes} from "../libraries/BlackScholes.sol";
import {SeriesParamsLib} from "../libraries/SeriesParamsLib.sol";
import {SignedWadMath} from "../libraries/SignedWadMath.sol";
import {UpdateThrottle} from "../governance/UpdateThrottle.sol";
import {MarketBase} from "./MarketBase.sol";

/// @title OptionMarket
/// @notice European, cash-settled options against the LiquidityPool's margin account. See IOptionMarket.
///
/// The pool's position. A trade exchanges contracts for a premium paid up front, so a position carries
/// no entry price: its value is size · option value. All contracts of a series are identical, so the
/// pool's position in a series is exactly −Σ trader sizes = shortOpenInterest − longOpenInterest and is
/// valued like any other position. The pool holds a series in the engine while that is nonzero.
///
/// Valuation bounds. Every value the market uses is a pair (low, high) bracketing the option's true
/// value per contract; longs are marked and sellers paid at `low`, shorts marked and buyers charged at
/// `high`, so the model's error is always borne by the account (and the pool never pays for it):
/// - before the last hour: Black-Scholes at (spot, strike, expiry − now, feed volatility + skew),
///   ± 1e-17·(S + K) + 10 wei (the library's documented error margin);
/// - in the last hour (BlackScholes' domain ends at one hour): low = intrinsic value, high = the price
///   with one hour left. With zero rates an option's value only grows with time to expiry, so
///   intrinsic ≤ value(τ) ≤ value(1 hour) for τ < 1 hour. Greeks are those at one hour (the largest
///   gamma the model gives, which keeps the scenario grid conservative for short gamma). Longs are
///   thus marked at intrinsic value during the last hour; they lose at most their small time value;
/// - strike/spot outside BlackScholes' [1/100, 100]: the bounds above for the nearest strike K' inside
///   it (a price is monotone in the strike and moves by at most |K − K'| with it): in the money beyond
///   K', high + |K − K'|; out of the money, low − |K − K'|; low at least intrinsic value. K''s
///   Greeks, but σ√τ reported as 1 wei so that the engine reprices the position in every scenario.
///   Continuous at the edge (review round 44: intrinsic value + min(S, K) there jumped by up to S, so a
///   0.01% move took a writer of calls struck at 100× spot from its IM to insolvency);
/// - at or after expiry, not yet settled: low = high = intrinsic value at the current spot, delta ±1 in
///   the money, no gamma, vega or option size (the payoff is linear now): an expired series never blocks
///   a health check or a liquidation;
/// - settled: intrinsic value at the settlement price, no Greeks, no notional.
/// The traded premium adds a spread of k·vega per contract (k = `spreadFactor`, a volatility spread).
///
/// Pool vega limit. It bounds each side of the traders' book, not the pool's net vega: closes are never
/// refused, so the buyers (writers) can always leave the pool holding every option the writers (buyers)
/// hold, and a net bound would be broken by closes alone (a partner's buy-back took the pool to 3.41×
/// it). The traders' long and short vega on an underlying are tracked incrementally: each series keeps
/// its vega per contract as of its last trade, and the underlying keeps Σ open interest · that vega per
/// side (updated whenever open interest or the backstop's position moves), the backstop account's
/// positions left out: they are the LPs' own, as in PerpMarket's delta limit. Revaluing every series of
/// the underlying on each trade would cost a Black-Scholes evaluation per series; the tracked sums are a
/// cheap proxy whose untouched terms drift with spot and time (vega shrinks as √τ, so the drift mostly
/// overstates). A risk-increasing trade must keep each side it grows within
/// maxPoolVegaRatio · max(0, B − max(0, H)): B is the pool's quote balance, H (`poolPremiumHeld`) the
/// quote it holds against options — per live series the net premium received (the exact amounts moved:
/// in on buys, out on sales), per settled series the net payout still due (rounded against the pool),
/// paid down as accounts settle. Premiums pay for the options the pool
/// wrote: counted in the base, each option written raised the cap on writing more (docs/decisions.md).
/// B − H is the pool's equity if its options are worth what was paid for them, a snapshot proxy like the
/// vega terms (no health check per trade); H is floored at 0 so options the pool bought never lift the
/// base above its balance. An expired series keeps its last terms until it is settled, so keepers
/// should settle promptly.
///
/// Pool delta limit (review round 27). Deep in-the-money options carry delta ±1 and almost no vega, so
/// the vega limit alone let a buyer of 2,000 such calls leave the LPs short 1,993 ETH, six times what
/// the perp market's delta limit allows. The traders' delta is tracked per side like their vega (each
/// series' |delta| per contract as of its last trade, the backstop's positions left out): the long side
/// holds long calls and short puts, the short side short calls and long puts. A risk-increasing trade
/// must keep each side it grows, times the oracle price, within maxPoolDeltaRatio · max(0, B − max(0,
/// H)), the vega limit's base. Like a second perp market's, this limit adds to the perp markets' on
/// the underlying (docs/decisions.md). Each contract counts at least MIN_COUNTED_DELTA: a contract the
/// pool writes pins the short-option floor of its capital (5% of spot by default) however far from the
/// money it is, and LP exits may not cross that floor; counted at its delta, 6,000 puts at half of spot
/// pinned 98% of a pool for 0.8% of the pool (review round 89, §4 row 220).
///
/// Why reducing trades skip the pause, the caps and the initial-margin check: see PerpMarket. As there,
/// a reduction in an account holding other positions on the same underlying must not raise the
/// maintenance requirement unless the account meets its initial requirement afterwards
/// (`engine.requireRiskReduced`): closing the long call of a conversion or the long leg of a spread
/// unwinds a hedge (the auction's `bidAndClose` closes skip it, as in PerpMarket). An expired series
/// cannot be traded at all (no model price exists for it): positions run to cash settlement, and
/// liquidations move them with `transferPosition`, which works at any time.
/// (`bidAndClose` closes a slice by trading it, so it cannot close an expired series: liquidators bid,
/// or settle the series first.)
contract OptionMarket is IOptionMarket, MarketBase, AccessManaged, ReentrancyGuardTransient, UpdateThrottle {
    using SignedWadMath for int256;

    // A series' SeriesParams bounds, floors and steps are SeriesParamsLib's (WAD unless stated).
    /// @dev Largest |skew|: 50 vol points.
    uint256 internal constant MAX_SKEW = 0.5e18;
    /// @dev Largest pool vega ratio: a 20-point volatility move costs at most the pool's balance.
    uint256 internal constant MAX_POOL_VEGA_RATIO = 5e18;
    /// @dev Largest pool delta ratio, PerpMarket's MAX_POOL_DELTA_RATIO.
    uint256 internal constant MAX_POOL_DELTA_RATIO = 10e18;
    /// @dev Smallest |delta| per contract the pool delta limit counts. The floor of the traders' long
    /// contracts on each side of each underlying then pins at most floor / 0.2 · maxPoolDeltaRatio of the
    /// limit's base at the fill's spot: 25% at the default floor (5% of spot) and ratio 1. Per side and
    /// per underlying, and the floor only (a contract near the money near expiry also pins its scenario
    /// loss; the backstop's are left out): the pool-wide budget is MAX_TOTAL_POOL_DELTA_RATIO's (below).
    uint256 internal constant MIN_COUNTED_DELTA = 0.2e18;
    /// @dev Largest sum over underlyings of the delta ratios the risk role's raises may reach: at the
    /// default short-option floor (5% of spot) far options then pin at most half of the limits' base
    /// (2 sides · ratio · 0.05 / MIN_COUNTED_DELTA, summed). The timelock's first values may sum to more
    /// (the deploy scripts refuse that for a config, with its floors: MAX_FAR_OPTION_PIN); without this a
    /// risk role doubling a ratio a day reopened what the scripts refused (review round 93, §4 row 225).
    uint256 internal constant MAX_TOTAL_POOL_DELTA_RATIO = 1e18;
    /// @notice Most series listed and not yet settled, over all underlyings. The pool holds every traded
    /// series and, unlike an account, has no market cap in the engine: this bounds the gas of its health
    /// (a series near expiry or beyond the model's moneyness range is repriced in every scenario: up to
    /// ~275,000 gas each, the most beyond the range, where every cell of both grids is repriced with its
    /// Greeks), which every LP withdrawal pays.
    uint256 public constant MAX_LIVE_SERIES = 32;
    /// @dev Longest expiry grid period: weekly expiries.
    uint256 internal constant MAX_EXPIRY_PERIOD = 7 days;
    /// @dev Series expire on a grid, `expiry % expiryPeriod == expiryOffset`, set at deployment (the
    /// testnet configs: 08:00 UTC daily, as option venues list). The pool closes LP exits from a held
    /// series' last hour until it is settled, so with expiries at any second the listing role could list
    /// a series every hour and keep exits closed for good (review round 32); on a daily grid they close
    /// about an hour a day.
    uint256 internal immutable expiryPeriod;
    /// @dev Seconds after each multiple of `expiryPeriod` at which series expire (< expiryPeriod). No
    /// getters: the grid is in the deployment's config.
    uint256 internal immutable expiryOffset;

    /// @dev Largest skew step per update (the pool ratios may fall freely and at most double); a step is
    /// also at most twice the series' spread factor (`setSkew`).
    uint256 internal constant MAX_SKEW_STEP = 0.05e18;
    /// @notice Minimum time between two skew changes of one series. The skew marks every position of
    /// the series (value moves by vega·Δskew), as mmVolShock moves its requirement by vega·ΔmmVolShock;
    /// one 5-point step per 12 hours gives it the same 10 points a day that mmVolShock may move, where
    /// a day would leave the desk one adjustment a day and an hour would allow 100 points in 20 hours.
    uint256 internal constant MIN_SKEW_UPDATE_INTERVAL = 12 hours;

    /// @dev Eight slots; `exposure` reads slot 1 (and slot 2 once settled).
    struct Series {
        bytes32 underlying;
        uint128 strike;
        uint40 expiry;
        bool isCall;
        bool settled;
        int64 skew; // |skew| ≤ MAX_SKEW
        uint256 settlementPrice;
        uint128 longOpenInterest;
        uint128 shortOpenInterest;
        // The vega per contract at the series' last trade (USD per 1.0 of volatility, < S·0.4·√2), the
        // rate at which its open interest counts in the underlying's vega sides, and the net premium the
        // pool received for the series (quote units). One slot: both are written on every trade.
        uint128 vegaPerContract;
        int128 poolPremium;
        // |delta| per contract at the series' last trade, at least MIN_COUNTED_DELTA (WAD, ≤ 1e18): the
        // rate at which its open interest counts in the underlying's side deltas.
        uint256 deltaPerContract;
        SeriesParams params;
    }

    /// @dev The traders' two sides of one Greek on an underlying. Vega: Σ over live series of long
    /// (short) open interest · the series' vegaPerContract, USD per 1.0 of volatility. Delta: Σ over
    /// live series of the open interest long (short) the underlying — long calls and short puts (short
    /// calls and long puts) — · the series' deltaPerContract, units of the underlying. Each term is
    /// rounded down, so the sums subtract exactly; beyond 2^128 a trade reverts (SafeCast).
    struct Sides {
        uint128 long;
        uint128 short;
    }

    /// @dev Three slots: the ratios share one, read together by every risk-increasing trade, with the
    /// listing floors (WAD, ≤ SeriesParamsLib's MAX_FEE and MAX_SPREAD_FACTOR: all four fit 64 bits).
    struct Underlying {
        Sides vega;
        Sides delta;
        uint64 maxPoolVegaRatio;
        uint64 maxPoolDeltaRatio;
        uint64 minFee;
        uint64 minSpreadFactor;
    }

    /// @dev What the market knows of one contract's value: bounds and Greeks (see the contract NatSpec).
    struct Valuation {
        uint256 low;
        uint256 high;
        int256 delta;
        uint256 gamma;
        uint256 vega;
        int256 vanna;
        int256 volga;
        uint256 totalVolatility; // 0 settled or expired; 1 wei beyond the moneyness range (repriced)
        uint256 modelVolatility;
    }

    /// @dev Intermediate values of one trade (a memory struct keeps the stack shallow).
    struct Trade {
        uint256 spot;
        uint256 premium; // per contract
        uint256 premiumQuote;
        uint256 feeQuote;
        uint256 costQuote; // fee + _tradingCost: what a trader's allowance is charged
        int256 oldSize;
        int256 newSize;
        uint256 oldLong;
        uint256 oldShort;
        uint256 newLong;
        uint256 newShort;
        bool increasesRisk;
    }

    /// @inheritdoc IOptionMarket
    uint256 public seriesCount;
    /// @inheritdoc IOptionMarket
    uint256 public liveSeriesCount;
    mapping(uint256 seriesId => Series) internal _series;
    mapping(uint256 seriesId => mapping(uint256 accountId => int256)) internal _positions;
    mapping(bytes32 underlying => Underlying) internal _underlyings;
    mapping(bytes32 terms => uint256 seriesId) internal _seriesByTerms;
    /// @inheritdoc IOptionMarket
    int256 public poolPremiumHeld;
    /// @inheritdoc IOptionMarket
    uint256 public totalPoolDeltaRatio;

    /// @param authority The protocol's AccessManager.
    /// @param engine_ The margin engine (already initialised with its pool account).
    /// @param accounts_ The account registry (trade authorisation).
    /// @param oracle_ The oracle router (prices, volatilities, settlement rounds).
    /// @param quoteDecimals The quote token's decimals (checked against the token).
    constructor(
        address authority,
        IMarginEngine engine_,
        IAccounts accounts_,
        IOracleRouter oracle_,
        uint8 quoteDecimals,
        uint256 expiryPeriod_,
        uint256 expiryOffset_
    ) MarketBase(engine_, accounts_, oracle_, quoteDecimals) AccessManaged(authority) {
        if (expiryPeriod_ == 0 || expiryPeriod_ > MAX_EXPIRY_PERIOD || expiryOffset_ >= expiryPeriod_) {
            revert InvalidExpiryGrid(expiryPeriod_, expiryOffset_);
        }
        expiryPeriod = expiryPeriod_;
        expiryOffset = expiryOffset_;
    }

    // ---------------------------------------------------------------- governance

    /// @inheritdoc IOptionMarket
    function listSeries(
        bytes32 underlying,
        uint256 strike,
        uint256 expiry,
        bool isCall,
        SeriesParams calldata params
    ) external restricted returns (uint256 seriesId) {
        _requireListed(underlying);
        if (!oracle.hasPrice(underlying)) revert UnknownUnderlying(underlying);
        Underlying storage u = _underlyings[underlying];
        // `configureUnderlying` sets both limits, and no setter takes one back to 0.
        if (u.maxPoolVegaRatio == 0) revert UnderlyingNotConfigured(underlying);
        if (
            expiry < block.timestamp + BlackScholes.MIN_TIME_TO_EXPIRY ||
            expiry > block.timestamp + BlackScholes.MAX_TIME_TO_EXPIRY ||
            expiry % expiryPeriod != expiryOffset
        ) revert InvalidExpiry(expiry);
        SeriesParamsLib.checkListing(params, u.minFee, u.minSpreadFactor);
        // The strike must be priceable now (BlackScholes' own errors otherwise); this also proves the
        // volatility feed exists.
        BlackScholes.checkDomain(
            oracle.getPrice(underlying),
            strike,
            expiry - block.timestamp,
            _modelVolatility(oracle.getVolatility(underlying), 0)
        );
        bytes32 terms = keccak256(abi.encode(underlying, strike, expiry, isCall));
        if (_seriesByTerms[terms] != 0) revert SeriesAlreadyListed(_seriesByTerms[terms]);
        if (liveSeriesCount == MAX_LIVE_SERIES) revert TooManyLiveSeries(MAX_LIVE_SERIES);

        ++liveSeriesCount;
        seriesId = ++seriesCount;
        _seriesByTerms[terms] = seriesId;
        Series storage s = _series[seriesId];
        s.underlying = underlying;
        s.strike = uint128(strike); // ≤ BlackScholes.MAX_PRICE = 1e36
        s.expiry = uint40(expiry); // ≤ now + 2 years
        s.isCall = isCall;
        s.params = params;
        emit SeriesListed(seriesId, underlying, strike, expiry, isCall, params);
    }

    /// @inheritdoc IOptionMarket
    function setSeriesParams(uint256 seriesId, SeriesParams calldata params) external restricted {
        Series storage s = _existing(seriesId);
        Underlying storage u = _underlyings[s.underlying];
        SeriesParamsLib.checkUpdate(s.params, params, u.minFee, u.minSpreadFactor);
        // The steps are measured from the current values: without the interval they chain.
        _throttle("seriesParams", bytes32(seriesId), MIN_UPDATE_INTERVAL);
        s.params = params;
        emit SeriesParamsUpdated(seriesId, params);
    }

    /// @inheritdoc IOptionMarket
    /// @dev A step moves the series' marks by vega per point, like a volatility round, and is seen coming
    /// (the risk role's execution delay schedules it in public): a round trip across it costs
    /// 2·spreadFactor·vega, so a larger step pays whoever bought (or wrote) before it (review round 113).
    function setSkew(uint256 seriesId, int256 skew) external restricted {
        Series storage s = _existing(seriesId);
        uint256 step = Math.min(MAX_SKEW_STEP, 2 * uint256(s.params.spreadFactor));
        if (SignedMath.abs(skew) > MAX_SKEW || SignedMath.abs(skew - s.skew) > step) {
            revert SkewOutOfBounds(skew);
        }
        _throttle("skew", bytes32(seriesId), MIN_SKEW_UPDATE_INTERVAL);
        s.skew = int64(skew); // |skew| ≤ 0.5e18
        emit SkewUpdated(seriesId, skew);
    }

    /// @inheritdoc IOptionMarket
    function configureUnderlying(
        bytes32 underlying,
        uint256 vegaRatio,
        uint256 deltaRatio,
        uint256 minFee,
        uint256 minSpreadFactor
    ) external restricted {
        _requireListed(underlying);
        _checkRatioBounds("poolVegaRatio", vegaRatio, MAX_POOL_VEGA_RATIO);
        _checkRatioBounds("poolDeltaRatio", deltaRatio, MAX_POOL_DELTA_RATIO);
        _require(minFee <= SeriesParamsLib.MAX_FEE, "fee");
        _require(minSpreadFactor <= SeriesParamsLib.MAX_SPREAD_FACTOR, "spreadFactor");
        Underlying storage u = _underlyings[underlying];
        // Once configured, the limits are the risk role's: a later call (a floors change) keeps them.
        // Scheduled two days ahead, it restated the day's limits and, executed after the risk role's
        // cut, undid it (review round 76).
        if (u.maxPoolVegaRatio == 0) {
            (u.maxPoolVegaRatio, u.maxPoolDeltaRatio) = (uint64(vegaRatio), uint64(deltaRatio));
            totalPoolDeltaRatio += deltaRatio;
        }
        (u.minFee, u.minSpreadFactor) = (uint64(minFee), uint64(minSpreadFactor));
        emit UnderlyingConfigured(
            underlying,
            u.maxPoolVegaRatio,
            u.maxPoolDeltaRatio,
            minFee,
            minSpreadFactor
        );
    }

    /// @inheritdoc IOptionMarket
    function setPoolVegaRatio(bytes32 underlying, uint256 ratio) external restricted {
        Underlying storage u = _underlyings[underlying];
        _checkPoolRatio(underlying, "poolVegaRatio", u.maxPoolVegaRatio, ratio, MAX_POOL_VEGA_RATIO);
        u.maxPoolVegaRatio = uint64(ratio); // ≤ MAX_POOL_VEGA_RATIO
        emit PoolVegaRatioUpdated(underlying, ratio);
    }

    /// @inheritdoc IOptionMarket
    function setPoolDeltaRatio(bytes32 underlying, uint256 ratio) external restricted {
        Underlying storage u = _underlyings[underlying];
        uint256 old = u.maxPoolDeltaRatio;
        _checkPoolRatio(underlying, "poolDeltaRatio", old, ratio, MAX_POOL_DELTA_RATIO);
        uint256 total = totalPoolDeltaRatio - old + ratio;
        if (ratio > old && total > MAX_TOTAL_POOL_DELTA_RATIO) {
            revert PoolRatioOutOfBounds("totalPoolDeltaRatio", total);
        }
        totalPoolDeltaRatio = total;
        u.maxPoolDeltaRatio = uint64(ratio); // ≤ MAX_POOL_DELTA_RATIO
        emit PoolDeltaRatioUpdated(underlying, ratio);
    }

    /// @dev Reverts with the engine's UnknownUnderlying unless the engine lists `underlying` (the risk
    /// parameters themselves are not needed, so the call's return data is left undecoded).
    function _requireListed(bytes32 underlying) internal view {
        (bool listed, ) = address(engine).staticcall(abi.encodeCall(IMarginEngine.riskParams, (underlying)));
        if (!listed) revert UnknownUnderlying(underlying);
    }

    /// @dev Checks a pool limit ratio against its bounds and its doubling step, and throttles raises.
    /// The first values are the timelock's (`configureUnderlying`): from 0 no step bounds a value, and
    /// the risk role, without a delay, could open an underlying's limits at the hard bounds in one call
    /// (review round 49). Cuts only reduce the pool's risk, so they are not throttled; doublings chain
    /// like any step.
    function _checkPoolRatio(
        bytes32 underlying,
        bytes32 parameter,
        uint256 old,
        uint256 ratio,
        uint256 maxRatio
    ) internal {
        if (old == 0) revert UnderlyingNotConfigured(underlying); // configured: listed by the engine
        _checkRatioBounds(parameter, ratio, maxRatio);
        if (ratio > 2 * old) revert PoolRatioOutOfBounds(parameter, ratio);
        if (ratio > old) _throttle(parameter, underlying, MIN_UPDATE_INTERVAL);
    }

    /// @dev Reverts with PoolRatioOutOfBounds unless 0 < `ratio` ≤ `maxRatio`.
    function _checkRatioBounds(bytes32 parameter, uint256 ratio, uint256 maxRatio) private pure {
        if (ratio == 0 || ratio > maxRatio) revert PoolRatioOutOfBounds(parameter, ratio);
    }

    // ---------------------------------------------------------------- trading

    /// @inheritdoc IOptionMarket
    function trade(
        uint256 accountId,
        uint256 seriesId,
        int256 sizeDelta,
        uint256 limitPrice,
        uint256 deadline
    ) external nonReentrant {
        if (block.timestamp > deadline) revert DeadlineExpired(deadline);
        if (sizeDelta == 0) revert ZeroSizeDelta();
        if (accountId == poolAccountId) revert PoolAccountCannotTrade();
        Series storage s = _tradable(seriesId);
        bytes32 underlying = s.underlying;
        // A reduction in an account holding other positions on the same underlying may unwind a hedge
        // (a spread's long leg, a conversion's call): remember the maintenance requirement so the engine
        // can tell. (Requirements add up across underlyings, and a lone position's shrinks with its size.)
        uint256 maintenanceBefore = type(uint256).max;
        int256 oldSize = _positions[seriesId][accountId];
        if (
            !_increasesRisk(oldSize, oldSize + sizeDelta) &&
            msg.sender != liquidator &&
            engine.hasOtherOnUnderlying(accountId, address(this), seriesId)
        ) {
            maintenanceBefore = engine.maintenanceRequirement(accountId);
        }
        Trade memory t = _price(seriesId, s, accountId, sizeDelta, limitPrice);
        // After pricing: a trader's trade spends its allowance by what it can cost the account at a
        // constant spot (`_tradingCost`; PerpMarket does the same).
        accounts.authorizeTrade(accountId, msg.sender, t.costQuote);

        // Effects.
        s.longOpenInterest = uint128(t.newLong); // ≤ maxOpenInterest, or ≤ its old value
        s.shortOpenInterest = uint128(t.newShort);
        _positions[seriesId][accountId] = t.newSize;

        // Interactions: engine bookkeeping, premium, fee, margin.
        _noteHoldings(accountId, seriesId, underlying, t);
        if (sizeDelta > 0) engine.transferQuote(accountId, poolAccountId, t.premiumQuote);
        else engine.transferQuote(poolAccountId, accountId, t.premiumQuote);
        if (t.feeQuote != 0) {
            uint256 toInsurance = Math.mulDiv(t.feeQuote, s.params.insuranceFeeShare, WAD);
            engine.chargeFee(accountId, t.feeQuote - toInsurance, toInsurance);
        }
        emit OptionTraded(
            accountId,
            seriesId,
            sizeDelta,
            t.premium,
            t.newSize,
            t.premiumQuote * quoteUnit,
            t.feeQuote * quoteUnit
        );
        if (t.increasesRisk) engine.requireInitialMargin(accountId);
        else if (maintenanceBefore != type(uint256).max)
            engine.requireRiskReduced(accountId, maintenanceBefore);
    }

    /// @dev Prices the trade (premium, fee, limit), computes the new position and open interest, applies
    /// the checks on new risk and updates the pool's tracked vega. Writes only the vega state.
    function _price(
        uint256 seriesId,
        Series storage s,
        uint256 accountId,
        int256 sizeDelta,
        uint256 limitPrice
    ) internal returns (Trade memory t) {
        bytes32 underlying = s.underlying;
        uint256 volatility;
        (t.spot, volatility) = oracle.getPriceAndVolatility(underlying);
        Valuation memory v = _valuation(s, t.spot, volatility);
        SeriesParams memory p = s.params;
        uint256 absDelta = SignedMath.abs(sizeDelta);
        (t.premium, t.feeQuote) = _premiumAndFee(v, p, t.spot, sizeDelta);
        if (sizeDelta > 0 ? t.premium > limitPrice : t.premium < limitPrice) {
            revert PriceLimitExceeded(t.premium, limitPrice);
        }
        // A buy pays, rounded up; a sell receives, rounded down.
        t.premiumQuote = Math.mulDiv(
            absDelta,
            t.premium,
            rawPerQuoteUnit,
            sizeDelta > 0 ? Math.Rounding.Ceil : Math.Rounding.Floor
        );
        t.oldSize = _positions[seriesId][accountId];
        t.costQuote =
            t.feeQuote +
            Math.ceilDiv(_tradingCost(v, s, t.spot, t.oldSize, sizeDelta, t.premium), rawPerQuoteUnit);
        t.newSize = t.oldSize + sizeDelta;
        t.increasesRisk = _increasesRisk(t.oldSize, t.newSize);
        t.oldLong = s.longOpenInterest;
        t.oldShort = s.shortOpenInterest;
        t.newLong = t.oldLong - _positive(t.oldSize) + _positive(t.newSize);
        t.newShort = t.oldShort - _positive(-t.oldSize) + _positive(-t.newSize);
        if (t.increasesRisk) {
            if (engine.paused()) revert RiskIncreasePaused();
            if (t.newLong > t.oldLong && t.newLong > p.maxOpenInterest) {
                revert OpenInterestCapExceeded(seriesId, true, t.newLong, p.maxOpenInterest);
            }
            if (t.newShort > t.oldShort && t.newShort > p.maxOpenInterest) {
                revert OpenInterestCapExceeded(seriesId, false, t.newShort, p.maxOpenInterest);
            }
        }
        // The backstop only unwinds (a reduction: no limit to check), but its position leaves the sides.
        int256 backstop = accountId == backstopAccountId
            ? t.oldSize
            : _positions[seriesId][backstopAccountId];
        _updatePoolLimits(s, t, v, backstop, accountId == backstopAccountId ? t.newSize : backstop);
    }

    /// @dev What a trade costs the account at a constant spot, before fees (USD WAD·contracts): what a
    /// trader's allowance is charged. A contract bought opens a long at the premium above intrinsic value
    /// (what the long loses by expiry if spot stays where it is: its time value, and the step of its mark
    /// to intrinsic in the last hour), or buys back a short at the premium above `low` (the short is
    /// marked at `high`, but in the last hour that is the one-hour value, above what it is worth). A
    /// contract sold opens a short at `high` less the premium, or sells a long at `low` less it.
    function _tradingCost(
        Valuation memory v,
        Series storage s,
        uint256 spot,
        int256 oldSize,
        int256 sizeDelta,
        uint256 premium
    ) internal view returns (uint256) {
        uint256 size = SignedMath.abs(sizeDelta);
        bool buy = sizeDelta > 0;
        uint256 closing = (oldSize > 0) != buy ? Math.min(size, SignedMath.abs(oldSize)) : 0;
        uint256 closeCost;
        uint256 openCost;
        if (buy) {
            closeCost = _saturatingSub(premium, v.low);
            openCost = _saturatingSub(premium, _intrinsic(s.isCall, s.strike, spot));
        } else {
            closeCost = _saturatingSub(v.low, premium);
            openCost = v.high - premium; // a sell's premium is at most `low`
        }
        return closing * closeCost + (size - closing) * openCost;
    }

    function _saturatingSub(uint256 a, uint256 b) internal pure returns (uint256) {
        return a > b ? a - b : 0;
    }

    /// @dev Premium per contract (spread included, bounds against the trader) and fee in quote units.
    function _premiumAndFee(
        Valuation memory v,
        SeriesParams memory p,
        uint256 spot,
        int256 sizeDelta
    ) internal view returns (uint256 premium, uint256 feeQuote) {
        uint256 spread = Math.mulDiv(p.spreadFactor, v.vega, WAD, Math.Rounding.Ceil);
        if (sizeDelta > 0) {
            premium = v.high + spread;
        } else {
            premium = v.low > spread ? v.low - spread : 0;
        }
        uint256 notional = Math.mulDiv(SignedMath.abs(sizeDelta), spot, WAD, Math.Rounding.Ceil);
        feeQuote = Math.mulDiv(notional, p.fee, rawPerQuoteUnit, Math.Rounding.Ceil);
    }

    /// @dev Refreshes the series' terms in the underlying's vega and delta sides at the current Greeks
    /// and, for risk-increasing trades, enforces the pool vega and delta limits on each side the trade
    /// grows (a stale term of another series counts as it stands: the limits are snapshot proxies).
    function _updatePoolLimits(
        Series storage s,
        Trade memory t,
        Valuation memory v,
        int256 backstopBefore,
        int256 backstopAfter
    ) internal {
        (uint256 oldLong, uint256 oldShort) = _traderSides(t.oldLong, t.oldShort, backstopBefore);
        (uint256 newLong, uint256 newShort) = _traderSides(t.newLong, t.newShort, backstopAfter);
        _recountSides(
            s,
            oldLong,
            oldShort,
            newLong,
            newShort,
            v.vega,
            Math.max(SignedMath.abs(v.delta), MIN_COUNTED_DELTA)
        );
        int256 held = poolPremiumHeld;
        if (t.increasesRisk) {
            Underlying storage u = _underlyings[s.underlying];
            bool longGrows = t.newLong > t.oldLong;
            bool shortGrows = t.newShort > t.oldShort;
            // Premiums pay for the options the pool wrote: they do not back more (see the contract NatSpec).
            int256 base = vault.balanceOf(poolAccountId, quoteToken) - SignedMath.max(held, 0);
            uint256 equity = base > 0 ? uint256(base) * quoteUnit : 0;
            uint256 limit = Math.mulDiv(equity, u.maxPoolVegaRatio, WAD);
            uint256 grown = _grownSide(u.vega, longGrows, shortGrows, WAD);
            if (grown > limit) revert PoolVegaLimitExceeded(s.underlying, grown, limit);
            // Delta, in notional at the oracle price: a long call or a short put grows the traders' long
            // side (the pool's short delta once the other side has closed), as a perp long does.
            if (!s.isCall) (longGrows, shortGrows) = (shortGrows, longGrows);
            grown = _grownSide(u.delta, longGrows, shortGrows, t.spot);
            limit = Math.mulDiv(equity, u.maxPoolDeltaRatio, WAD);
            if (grown > limit) revert PoolOptionDeltaLimitExceeded(s.underlying, grown, limit);
        }
        // The premium this trade moves (the exact amount transferred): in on a buy, out on a sale.
        int256 premium = t.newSize > t.oldSize ? int256(t.premiumQuote) : -int256(t.premiumQuote);
        s.poolPremium = SafeCast.toInt128(s.poolPremium + premium);
        poolPremiumHeld = held + premium;
    }

    /// @dev Replaces the series' terms in its underlying's vega and delta sides, the traders' sides
    /// `oldLong` and `oldShort` at its last vega and delta per contract, by `newLong`/`newShort` at
    /// `vegaPerContract` and `deltaPerContract`, and remembers those rates. Every change of open
    /// interest or of the backstop's position goes through here, so each term subtracts exactly what
    /// was added.
    function _recountSides(
        Series storage s,
        uint256 oldLong,
        uint256 oldShort,
        uint256 newLong,
        uint256 newShort,
        uint256 vegaPerContract,
        uint256 deltaPerContract
    ) internal {
        Underlying storage u = _underlyings[s.underlying];
        _recount(u.vega, oldLong, oldShort, newLong, newShort, s.vegaPerContract, vegaPerContract);
        s.vegaPerContract = uint128(vegaPerContract); // < S·0.4·√2 < 1e36 in the model's domain, else 0
        // A put's long side is short the underlying.
        if (!s.isCall) (oldLong, oldShort, newLong, newShort) = (oldShort, oldLong, newShort, newLong);
        _recount(u.delta, oldLong, oldShort, newLong, newShort, s.deltaPerContract, deltaPerContract);
        s.deltaPerContract = deltaPerContract;
    }

    /// @dev Replaces a series' terms in one Greek's sides: `oldLong`/`oldShort` at `oldRate` by
    /// `newLong`/`newShort` at `newRate`.
    function _recount(
        Sides storage sides,
        uint256 oldLong,
        uint256 oldShort,
        uint256 newLong,
        uint256 newShort,
        uint256 oldRate,
        uint256 newRate
    ) internal {
        sides.long = SafeCast.toUint128(
            sides.long - _sideTerm(oldLong, oldRate) + _sideTerm(newLong, newRate)
        );
        sides.short = SafeCast.toUint128(
            sides.short - _sideTerm(oldShort, oldRate) + _sideTerm(newShort, newRate)
        );
    }

    /// @dev The larger of the sides a trade grows, times `price` (1 for vega, the oracle price for delta).
    function _grownSide(
        Sides storage sides,
        bool longGrows,
        bool shortGrows,
        uint256 price
    ) internal view returns (uint256) {
        return
            Math.mulDiv(
                Math.max(longGrows ? sides.long : 0, shortGrows ? sides.short : 0),
                price,
                WAD,
                Math.Rounding.Ceil
            );
    }

    /// @dev The traders' open interest on each side: the series' without the backstop's position.
    function _traderSides(
        uint256 longOpenInterest,
        uint256 shortOpenInterest,
        int256 backstopSize
    ) internal pure returns (uint256, uint256) {
        return (longOpenInterest - _positive(backstopSize), shortOpenInterest - _positive(-backstopSize));
    }

    /// @dev A side's open interest at a Greek per contract, as the sides count it (rounded down).
    function _sideTerm(uint256 openInterest, uint256 perContract) internal pure returns (uint256) {
        return Math.mulDiv(openInterest, perContract, WAD);
    }

    /// @dev Tells the engine which series the trader and the pool hold (the pool: while its size, the
    /// traders' net, is nonzero).
    function _noteHoldings(uint256 accountId, uint256 seriesId, bytes32 underlying, Trade memory t) internal {
        if (t.oldSize == 0) engine.notePositionOpened(accountId, seriesId, underlying);
        else if (t.newSize == 0) engine.notePositionClosed(accountId, seriesId);
        _notePoolHolding(seriesId, underlying, t.oldLong != t.oldShort, t.newLong != t.newShort);
    }

    /// @dev Keeps the engine's list of the pool's markets in step with its implied position (−net open
    /// interest): a series the engine does not list is left out of the pool's equity and share price.
    function _notePoolHolding(uint256 seriesId, bytes32 underlying, bool poolHeld, bool poolHolds) internal {
        if (!poolHeld && poolHolds) engine.notePositionOpened(poolAccountId, seriesId, underlying);
        else if (poolHeld && !poolHolds) engine.notePositionClosed(poolAccountId, seriesId);
    }

    // ---------------------------------------------------------------- settlement

    /// @inheritdoc IOptionMarket
    function settleSeries(uint256 seriesId, uint80 roundIdHint) external nonReentrant {
        _settleAtRound(seriesId, roundIdHint, false);
    }

    /// @inheritdoc IOptionMarket
    function settleSeriesAtPhaseStart(uint256 seriesId, uint80 roundId) external restricted nonReentrant {
        _settleAtRound(seriesId, roundId, true);
    }

    /// @dev Settles the unsettled, expired series `seriesId` at `roundId` if the router proves it the
    /// settlement round of its expiry (`getSettlementPrice`: on the feed that was primary then, or on
    /// its successors when it posted nothing after expiry before it was replaced).
    function _settleAtRound(uint256 seriesId, uint80 roundId, bool phaseStart) internal {
        Series storage s = _existing(seriesId);
        if (s.settled) revert SeriesAlreadySettled(seriesId);
        uint256 expiry = s.expiry;
        if (block.timestamp < expiry) revert SeriesNotExpired(seriesId, expiry);
        (uint256 price, uint256 updatedAt) = oracle.getSettlementPrice(
            s.underlying,
            expiry,
            roundId,
            phaseStart
        );
        if (price == 0) revert WrongRoundHint(roundId);
        _settle(s, seriesId, roundId, price, updatedAt);
    }

    function _settle(
        Series storage s,
        uint256 seriesId,
        uint80 roundId,
        uint256 price,
        uint256 updatedAt
    ) internal {
        s.settled = true;
        s.settlementPrice = price;
        --liveSeriesCount;
        // The series' vega and delta are gone: take them out of the underlying's sides. Its premiums no longer
        // stand for what the pool holds against it: the payouts now do, owed to the longs (rounded up) net
        // of the shorts' debts (rounded down), released as accounts settle. Removing the premiums alone
        // would free, until the accounts are settled, cash the pool still owes.
        (uint256 long, uint256 short) = _traderSides(
            s.longOpenInterest,
            s.shortOpenInterest,
            _positions[seriesId][backstopAccountId]
        );
        _recountSides(s, long, short, 0, 0, 0, 0);
        uint256 value = _intrinsic(s.isCall, s.strike, price);
        poolPremiumHeld +=
            int256(Math.mulDiv(s.longOpenInterest, value, rawPerQuoteUnit, Math.Rounding.Ceil)) -
            int256(Math.mulDiv(s.shortOpenInterest, value, rawPerQuoteUnit)) -
            s.poolPremium;
        s.poolPremium = 0;
        emit SeriesSettled(seriesId, roundId, price, updatedAt);
    }

    /// @inheritdoc IOptionMarket
    function settleAccount(uint256 accountId, uint256 seriesId) external nonReentrant {
        // The pool's own slot is always 0 (NoPosition): its payouts are settled with each account's.
        Series storage s = _settled(seriesId);
        if (!_settlePosition(s, accountId, seriesId)) revert NoPosition(accountId, seriesId);
    }

    /// @inheritdoc IOptionMarket
    function settleAccounts(uint256[] calldata accountIds, uint256 seriesId) external nonReentrant {
        Series storage s = _settled(seriesId);
        // The pool's own slot is always 0: its payouts are settled with each account's.
        for (uint256 i; i < accountIds.length; ++i) {
            _settlePosition(s, accountIds[i], seriesId);
        }
    }

    /// @dev Pays out and removes `accountId`'s position; false if it has none.
    function _settlePosition(Series storage s, uint256 accountId, uint256 seriesId) internal returns (bool) {
        int256 size = _positions[seriesId][accountId];
        if (size == 0) return false;
        uint256 value = _intrinsic(s.isCall, s.strike, s.settlementPrice);
        uint256 oldLong = s.longOpenInterest;
        uint256 oldShort = s.shortOpenInterest;
        uint256 newLong = oldLong - _positive(size);
        uint256 newShort = oldShort - _positive(-size);
        uint256 amount = size > 0
            ? Math.mulDiv(uint256(size), value, rawPerQuoteUnit) // gain: down
            : Math.mulDiv(uint256(-size), value, rawPerQuoteUnit, Math.Rounding.Ceil); // debt: up

        // Effects. The payout leaves (or enters) the pool's balance: it is no longer held for the series.
        delete _positions[seriesId][accountId];
        s.longOpenInterest = uint128(newLong);
        s.shortOpenInterest = uint128(newShort);
        poolPremiumHeld += size > 0 ? -int256(amount) : int256(amount);

        // Interactions.
        engine.notePositionClosed(accountId, seriesId);
        // Settling one side can also give the pool a position it did not have (it was flat).
        _notePoolHolding(seriesId, s.underlying, oldLong != oldShort, newLong != newShort);
        int256 payout;
        if (size > 0) {
            engine.transferQuote(poolAccountId, accountId, amount);
            payout = int256(amount * quoteUnit);
        } else {
            engine.transferQuote(accountId, poolAccountId, amount);
            payout = -int256(amount * quoteUnit);
        }
        emit PositionSettled(accountId, seriesId, size, payout);
        return true;
    }

    // ---------------------------------------------------------------- engine

    /// @inheritdoc IMarket
    function exposure(
        uint256 accountId,
        uint256 seriesId,
        uint256 spotPrice,
        uint256 volatility
    ) external view returns (Exposure memory e) {
        Series storage s = _series[seriesId];
        int256 size = _sizeOf(s, seriesId, accountId);
        if (size == 0) return e;
        Valuation memory v = _valuation(s, spotPrice, volatility);
        e.delta = size.mulWadDown(v.delta);
        e.gamma = size.mulWadDown(int256(v.gamma)); // gamma, vega < 1e36 within the model's domain
        e.vega = size.mulWadDown(int256(v.vega));
        e.vanna = size.mulWadDown(v.vanna);
        e.volga = size.mulWadDown(v.volga);
        e.totalVolatility = v.totalVolatility;
        e.modelVolatility = v.modelVolatility;
        e.value = _positionValue(size, v);
        if (s.settled) return e; // a fixed amount owed: no risk, no notional
        e.notional = Math.mulDiv(SignedMath.abs(size), spotPrice, WAD, Math.Rounding.Ceil);
        e.optionSize = size;
        if (size > 0) {
            // Rounded as the value is (down), so an option at intrinsic value has no time value.
            uint256 intrinsic = Math.mulDiv(uint256(size), _intrinsic(s.isCall, s.strike, spotPrice), WAD);
            if (e.value > int256(intrinsic)) e.timeValue = uint256(e.value) - intrinsic;
        }
        // Expired but unsettled, the position still pays max(0, ±(S − K)) at a price the settlement
        // round fixes, not today's spot: its delta of 0 or ±1 would let a writer near the strike
        // withdraw everything before that round is posted. A nonzero σ√τ has the engine reprice it
        // (intrinsic value at every moved spot), and the short keeps its floor until settled.
        if (block.timestamp >= s.expiry) e.totalVolatility = 1;
    }

    /// @inheritdoc IMarket
    /// @dev Every spot move reprices the series with `_valuation` (every regime: the model, the last
    /// hour, far from the money, expired, settled). Volatility moves no larger than half the series'
    /// model volatility (feed plus skew) are applied to that repricing to second order — the position's
    /// vega·dσ + ½·volga·dσ² at the moved spot, each term rounded down — one valuation per spot move
    /// instead of one per scenario; larger moves, where the expansion in σ fails, and series outside
    /// the model reprice every scenario at the moved feed volatility plus skew, clamped into the model's
    /// domain. The unmoved scenario is 0.
    function scenarioPnls(
        uint256 accountId,
        uint256 seriesId,
        uint256 spotPrice,
        uint256 volatility,
        int256[] calldata spotMoves,
        int256[] calldata volMoves
    ) external view returns (int256[] memory pnls) {
        pnls = new int256[](spotMoves.length * volMoves.length);
        Holding memory h = _holding(seriesId, accountId, spotPrice, volatility);
        if (h.size == 0) return pnls;
        bool exactVolatility = 2 * _largestMove(volMoves) > h.scratch.modelVolatility;
        for (uint256 i; i < spotMoves.length; ++i) {
            uint256 spot = uint256(int256(spotPrice) + spotMoves[i]);
            uint256 offset = i * volMoves.length;
            if (exactVolatility) _repriceRow(h, spot, spotMoves[i] == 0, volatility, volMoves, pnls, offset);
            else _expandRow(h, spot, spotMoves[i] == 0, volatility, volMoves, pnls, offset);
        }
    }

    /// @dev One spot move, every volatility move repriced.
    function _repriceRow(
        Holding memory h,
        uint256 spot,
        bool unmoved,
        uint256 volatility,
        int256[] calldata volMoves,
        int256[] memory pnls,
        uint256 offset
    ) internal view {
        for (uint256 j; j < volMoves.length; ++j) {
            if (unmoved && volMoves[j] == 0) continue;
            h.terms.skew += volMoves[j]; // `_modelVolatility` adds the move to the skew
            _value(h.scratch, h.terms, spot, volatility);
            h.terms.skew -= volMoves[j];
            pnls[offset + j] = _positionValue(h.size, h.scratch) - h.base;
        }
    }

    /// @dev One spot move repriced once (the unmoved spot is the valuation now), the volatility moves
    /// applied to second order at that spot.
    function _expandRow(
        Holding memory h,
        uint256 spot,
        bool unmoved,
        uint256 volatility,
        int256[] calldata volMoves,
        int256[] memory pnls,
        uint256 offset
    ) internal view {
        (int256 spotPnl, int256 vega, int256 volga) = (0, h.vega, h.volga);
        if (!unmoved) {
            _value(h.scratch, h.terms, spot, volatility);
            spotPnl = _positionValue(h.size, h.scratch) - h.base;
            vega = h.size.mulWadDown(int256(h.scratch.vega));
            volga = h.size.mulWadDown(h.scratch.volga);
        }
        for (uint256 j; j < volMoves.length; ++j) {
            int256 dv = volMoves[j];
            int256 volPnl = dv == 0
                ? int256(0)
                : vega.mulWadDown(dv) + SignedWadMath.divDown(volga.mulWadDown(dv).mulWadDown(dv), 2);
            pnls[offset + j] = spotPnl + volPnl;
        }
    }

    /// @dev max |move|.
    function _largestMove(int256[] calldata moves) internal pure returns (uint256 largest) {
        for (uint256 j; j < moves.length; ++j) largest = Math.max(largest, SignedMath.abs(moves[j]));
    }

    /// @dev A position repriced in scenarios: its series' terms, its size, its value now, and one
    /// valuation that every scenario overwrites (first: the valuation now, Greeks included).
    struct Holding {
        Terms terms;
        int256 size;
        int256 base;
        int256 vega; // size · vega now
        int256 volga; // size · volga now
        Valuation scratch;
    }

    function _holding(
        uint256 seriesId,
        uint256 accountId,
        uint256 spotPrice,
        uint256 volatility
    ) internal view returns (Holding memory h) {
        Series storage s = _series[seriesId];
        h.size = _sizeOf(s, seriesId, accountId);
        if (h.size == 0) return h;
        h.terms = _terms(s);
        _value(h.scratch, h.terms, spotPrice, volatility);
        h.base = _positionValue(h.size, h.scratch);
        h.vega = h.size.mulWadDown(int256(h.scratch.vega));
        h.volga = h.size.mulWadDown(h.scratch.volga);
    }

    /// @dev The account's signed position; the pool's is the traders' net, opposite.
    function _sizeOf(Series storage s, uint256 seriesId, uint256 accountId) internal view returns (int256) {
        if (accountId == poolAccountId) {
            return int256(uint256(s.shortOpenInterest)) - int256(uint256(s.longOpenInterest));
        }
        return _positions[seriesId][accountId];
    }

    /// @dev Against the account: a long is worth its lower bound (down), a short owes its upper bound (up).
    function _positionValue(int256 size, Valuation memory v) internal pure returns (int256) {
        return
            size > 0
                ? int256(Math.mulDiv(uint256(size), v.low, WAD))
                : -int256(Math.mulDiv(uint256(-size), v.high, WAD, Math.Rounding.Ceil));
    }

    /// @inheritdoc IMarket
    function positionSize(uint256 accountId, uint256 seriesId) external view returns (int256) {
        return _sizeOf(_series[seriesId], seriesId, accountId);
    }

    /// @inheritdoc IMarket
    function nearSettlement(uint256 seriesId) external view returns (bool) {
        Series storage s = _series[seriesId];
        return !s.settled && block.timestamp + BlackScholes.MIN_TIME_TO_EXPIRY > s.expiry;
    }

    /// @inheritdoc IMarket
    /// @dev Moves floor(|size|·fraction) contracts with the position's sign. No premium, no fee; the
    /// pool's position (the traders' net) is unchanged. Works on expired series too; a settled one is
    /// paid out instead.
    function transferPosition(
        uint256 fromAccountId,
        uint256 toAccountId,
        uint256 seriesId,
        uint256 fraction
    ) external onlyEngine nonReentrant {
        if (fromAccountId == poolAccountId || toAccountId == poolAccountId) revert PoolAccountCannotTrade();
        Series storage s = _existing(seriesId);
        // A settled position is paid out first, into the quote balance the slice then shares: the same
        // value for a bidder, and no settled position is left to be settled twice.
        if (s.settled) {
            _settlePosition(s, fromAccountId, seriesId);
            return;
        }
        int256 fromSize = _positions[seriesId][fromAccountId];
        uint256 movedAbs = Math.mulDiv(SignedMath.abs(fromSize), Math.min(fraction, WAD), WAD);
        // A self-transfer would write newTo over newFrom and create contracts (the auction refuses self
        // bids; this keeps the market sound on its own, as PerpMarket does).
        if (movedAbs == 0 || fromAccountId == toAccountId) return;
        int256 moved = fromSize > 0 ? int256(movedAbs) : -int256(movedAbs);
        int256 toSize = _positions[seriesId][toAccountId];
        int256 newFrom = fromSize - moved;
        int256 newTo = toSize + moved;

        // Effects.
        _moveOpenInterest(s, seriesId, fromAccountId, toAccountId, fromSize, toSize, moved);
        _positions[seriesId][fromAccountId] = newFrom;
        _positions[seriesId][toAccountId] = newTo;

        // Interactions.
        if (newFrom == 0) engine.notePositionClosed(fromAccountId, seriesId);
        if (toSize == 0) engine.notePositionOpened(toAccountId, seriesId, s.underlying);
        else if (newTo == 0) engine.notePositionClosed(toAccountId, seriesId);
        emit PositionTransferred(fromAccountId, toAccountId, seriesId, moved);
    }

    /// @dev Open interest after a transfer of `moved` contracts, and the vega and delta sides with it at
    /// the series' last Greeks per contract. Each side counts once, so both fall by what the receiver's
    /// opposite position nets away; the sides also move when the backstop takes a slice.
    function _moveOpenInterest(
        Series storage s,
        uint256 seriesId,
        uint256 fromAccountId,
        uint256 toAccountId,
        int256 fromSize,
        int256 toSize,
        int256 moved
    ) internal {
        uint256 netted = toSize != 0 && (toSize > 0) != (fromSize > 0)
            ? Math.min(SignedMath.abs(moved), SignedMath.abs(toSize))
            : 0;
        uint256 backstop = backstopAccountId;
        bool backstopMoves = fromAccountId == backstop || toAccountId == backstop;
        if (netted == 0 && !backstopMoves) return;
        int256 backstopBefore = fromAccountId == backstop
            ? fromSize
            : (toAccountId == backstop ? toSize : _positions[seriesId][backstop]);
        int256 backstopAfter = fromAccountId == backstop
            ? fromSize - moved
            : (toAccountId == backstop ? toSize + moved : backstopBefore);
        (uint256 oldLong, uint256 oldShort) = (s.longOpenInterest, s.shortOpenInterest);
        (uint256 newLong, uint256 newShort) = (oldLong - netted, oldShort - netted);
        (uint256 tradersLong, uint256 tradersShort) = _traderSides(oldLong, oldShort, backstopBefore);
        (uint256 tradersLongAfter, uint256 tradersShortAfter) = _traderSides(
            newLong,
            newShort,
            backstopAfter
        );
        _recountSides(
            s,
            tradersLong,
            tradersShort,
            tradersLongAfter,
            tradersShortAfter,
            s.vegaPerContract,
            s.deltaPerContract
        );
        (s.longOpenInterest, s.shortOpenInterest) = (uint128(newLong), uint128(newShort));
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IOptionMarket
    function quoteTrade(
        uint256 seriesId,
        int256 sizeDelta
    ) external view returns (uint256 premiumPerContract, uint256 fee) {
        if (sizeDelta == 0) revert ZeroSizeDelta();
        Series storage s = _tradable(seriesId);
        (uint256 spot, uint256 volatility) = oracle.getPriceAndVolatility(s.underlying);
        Valuation memory v = _valuation(s, spot, volatility);
        (premiumPerContract, fee) = _premiumAndFee(v, s.params, spot, sizeDelta);
        fee *= quoteUnit;
    }

    /// @inheritdoc IOptionMarket
    function series(uint256 seriesId) external view returns (SeriesInfo memory info) {
        Series storage s = _existing(seriesId);
        info.underlying = s.underlying;
        info.strike = s.strike;
        info.expiry = s.expiry;
        info.isCall = s.isCall;
        info.settled = s.settled;
        info.skew = s.skew;
        info.settlementPrice = s.settlementPrice;
        info.longOpenInterest = s.longOpenInterest;
        info.shortOpenInterest = s.shortOpenInterest;
        info.params = s.params;
        info.vegaPerContract = s.vegaPerContract;
        info.deltaPerContract = s.deltaPerContract;
    }

    /// @inheritdoc IOptionMarket
    function traderVega(bytes32 underlying) external view returns (uint256 longVega, uint256 shortVega) {
        Sides storage sides = _underlyings[underlying].vega;
        return (sides.long, sides.short);
    }

    /// @inheritdoc IOptionMarket
    function traderDelta(bytes32 underlying) external view returns (uint256 longDelta, uint256 shortDelta) {
        Sides storage sides = _underlyings[underlying].delta;
        return (sides.long, sides.short);
    }

    /// @inheritdoc IOptionMarket
    function underlyingLimits(
        bytes32 underlying
    )
        external
        view
        returns (uint256 poolVegaRatio, uint256 poolDeltaRatio, uint256 minFee, uint256 minSpreadFactor)
    {
        Underlying storage u = _underlyings[underlying];
        return (u.maxPoolVegaRatio, u.maxPoolDeltaRatio, u.minFee, u.minSpreadFactor);
    }

    // ---------------------------------------------------------------- valuation

    /// @dev A series' terms, read once: slot 1 (and slot 2 once settled).
    struct Terms {
        uint256 strike;
        uint256 expiry;
        int256 skew;
        bool isCall;
        bool settled;
        uint256 settlementPrice;
    }

    function _terms(Series storage s) internal view returns (Terms memory t) {
        (t.strike, t.expiry, t.skew, t.isCall, t.settled) = (s.strike, s.expiry, s.skew, s.isCall, s.settled);
        if (t.settled) t.settlementPrice = s.settlementPrice;
    }

    /// @dev Bounds and Greeks of one long contract (see the contract's NatSpec for each regime). A margin
    /// scenario's volatility move is added to the series' skew (`_repriceRow`).
    function _valuation(
        Series storage s,
        uint256 spot,
        uint256 volatility
    ) internal view returns (Valuation memory v) {
        _value(v, _terms(s), spot, volatility);
    }

    /// @dev Writes `_valuation` of terms `t` into `v` (writing into the caller's struct lets the scenarios
    /// of a position reuse one instead of growing memory by two structs per scenario). Always with the
    /// Greeks: a price-only variant for the margin scenarios saved ~600 gas per scenario but took ~700
    /// bytes, the optimizer specialising `_value` on its literal arguments (review round 44).
    function _value(Valuation memory v, Terms memory t, uint256 spot, uint256 volatility) internal view {
        v.delta = 0;
        v.gamma = 0;
        v.vega = 0;
        v.vanna = 0;
        v.volga = 0;
        v.totalVolatility = 0;
        v.modelVolatility = 0;
        if (t.settled) {
            v.low = v.high = _intrinsic(t.isCall, t.strike, t.settlementPrice);
            return;
        }
        uint256 intrinsic = _intrinsic(t.isCall, t.strike, spot);
        if (block.timestamp >= t.expiry || spot == 0 || spot > BlackScholes.MAX_PRICE) {
            // Expired (or a spot beyond the model): intrinsic value and its delta; before expiry the time
            // value is below min(S, K).
            v.low = intrinsic;
            v.high = block.timestamp >= t.expiry ? intrinsic : intrinsic + Math.min(spot, t.strike);
            if (intrinsic != 0) v.delta = t.isCall ? int256(WAD) : -int256(WAD);
            return;
        }
        uint256 timeToExpiry = t.expiry - block.timestamp;
        // Too far from the money for the model: priced at the nearest strike inside it, then widened.
        (uint256 modelStrike, uint256 gap) = _modelStrike(t.strike, spot);
        _modelValue(v, spot, modelStrike, t.isCall, timeToExpiry, _modelVolatility(volatility, t.skew));
        if (gap != 0) _beyondModel(v, t.isCall == (t.strike < modelStrike), gap, intrinsic);
        // In the last hour the price with one hour left is the upper bound; intrinsic value the lower.
        if (timeToExpiry < BlackScholes.MIN_TIME_TO_EXPIRY) v.low = intrinsic;
    }

    /// @dev The strike the model prices for `strike` at `spot` (review round 44): itself inside the
    /// model's moneyness range, else the nearest strike K' inside it; and the gap |K − K'|.
    function _modelStrike(
        uint256 strike,
        uint256 spot
    ) internal pure returns (uint256 modelStrike, uint256 gap) {
        modelStrike = strike;
        unchecked {
            // spot ≤ MAX_PRICE and strike ≤ MAX_PRICE: the products fit.
            if (strike * BlackScholes.MAX_MONEYNESS < spot) {
                modelStrike = (spot - 1) / BlackScholes.MAX_MONEYNESS + 1;
                gap = modelStrike - strike;
            } else if (strike > spot * BlackScholes.MAX_MONEYNESS) {
                modelStrike = spot * BlackScholes.MAX_MONEYNESS;
                gap = strike - modelStrike;
            }
        }
    }

    /// @dev Bounds of an option too far from the money for the model, from the model's at K' (`v`): a
    /// price is monotone in the strike and moves by at most |K − K'| with it, so in the money beyond K'
    /// the value is at least K''s and exceeds it by at most the gap, out of the money it is at most K''s
    /// and below it by at most the gap; and never below intrinsic value.
    /// Continuous at the edge, where intrinsic value + min(S, K) jumped by up to S. K''s Greeks are not
    /// this option's: the engine reprices it in every scenario.
    function _beyondModel(Valuation memory v, bool inTheMoney, uint256 gap, uint256 intrinsic) internal pure {
        if (inTheMoney) v.high += gap;
        else v.low = _saturatingSub(v.low, gap);
        if (v.low < intrinsic) v.low = intrinsic;
        (v.totalVolatility, v.modelVolatility) = (1, 0);
    }

    /// @dev Black-Scholes bounds (and Greeks) at `strike` into `v`, with the time to expiry clamped to one
    /// hour.
    function _modelValue(
        Valuation memory v,
        uint256 spot,
        uint256 strike,
        bool isCall,
        uint256 timeToExpiry,
        uint256 volatility
    ) internal pure {
        timeToExpiry = Math.max(timeToExpiry, BlackScholes.MIN_TIME_TO_EXPIRY);
        BlackScholes.Valuation memory bs = BlackScholes.valuation(
            spot,
            strike,
            timeToExpiry,
            volatility,
            isCall
        );
        uint256 price = bs.price;
        v.delta = bs.delta;
        v.gamma = bs.gamma;
        v.vega = bs.vega;
        v.vanna = bs.vanna;
        v.volga = bs.volga;
        v.totalVolatility = bs.totalVolatility;
        v.modelVolatility = volatility;
        // The library's error margin (see BlackScholes' NatSpec): 1e-17·(S + K) + 10 wei.
        uint256 margin = (spot + strike) / 1e17 + 10;
        v.high = price + margin;
        v.low = price > margin ? price - margin : 0;
    }

    /// @dev Feed volatility plus skew, clamped into the model's domain [1%, 500%].
    function _modelVolatility(uint256 volatility, int256 skew) internal pure returns (uint256) {
        int256 vol = int256(volatility) + skew; // the router bounds volatility to ≤ 10e18
        if (vol < int256(BlackScholes.MIN_VOLATILITY)) return BlackScholes.MIN_VOLATILITY;
        if (vol > int256(BlackScholes.MAX_VOLATILITY)) return BlackScholes.MAX_VOLATILITY;
        return uint256(vol);
    }

    function _intrinsic(bool isCall, uint256 strike, uint256 price) internal pure returns (uint256) {
        if (isCall) return price > strike ? price - strike : 0;
        return strike > price ? strike - price : 0;
    }

    // ---------------------------------------------------------------- internal

    function _existing(uint256 seriesId) internal view returns (Series storage s) {
        s = _series[seriesId];
        if (s.underlying == bytes32(0)) revert UnknownSeries(seriesId);
    }

    /// @dev A listed series that is neither settled nor expired.
    function _tradable(uint256 seriesId) internal view returns (Series storage s) {
        s = _existing(seriesId);
        if (s.settled) revert SeriesAlreadySettled(seriesId);
        if (block.timestamp >= s.expiry) revert SeriesExpired(seriesId, s.expiry);
    }

    function _settled(uint256 seriesId) internal view returns (Series storage s) {
        s = _existing(seriesId);
        if (!s.settled) revert SeriesNotSettled(seriesId);
    }

    /// @dev Risk grows when |size| grows or the sign flips.
    function _increasesRisk(int256 oldSize, int256 newSize) internal pure returns (bool) {
        return
            newSize != 0 &&
            ((oldSize >= 0) != (newSize >= 0) || SignedMath.abs(newSize) > SignedMath.abs(oldSize));
    }

    function _require(bool ok, bytes32 parameter) private pure {
        if (!ok) revert SeriesParamOutOfBounds(parameter);
    }
}
