// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {FixedPointMathLib} from "solady/src/utils/FixedPointMathLib.sol";

/// @title BlackScholes
/// @notice Black-Scholes price, delta, gamma, vega, vanna and volga of a European call or put, in WAD
/// (1e18) fixed point. Pure; the OptionMarket prices series and reports Greeks to the MarginEngine with it.
/// @dev Model. Zero interest rate and no dividends: the protocol margins perps and cash-settled options
/// in USD, so the forward is the spot. (A rate r could be added later by pricing on the forward
/// S·e^{rτ} and discounting by e^{−rτ}.) With τ = timeToExpiry / 365 days, x = ln(S/K) and
/// w = σ√τ (the total volatility):
///     d1 = (x + w²/2) / w,  d2 = d1 − w,
///     call = S·N(d1) − K·N(d2),  put = K·N(−d2) − S·N(−d1),
///     delta = N(d1) (call) or N(d1) − 1 (put),  gamma = φ(d1) / (S·w),  vega = S·φ(d1)·√τ,
///     vanna = ∂delta/∂σ = −φ(d1)·d2/σ,  volga = ∂vega/∂σ = vega·d1·d2/σ (the same for calls and puts).
/// Units. Spot, strike and price in USD per unit of underlying; delta in underlying units per option;
/// gamma in underlying units per USD; vega in USD per 1.0 (100 points) of annualised volatility; vanna
/// in underlying units per 1.0 of volatility; volga in USD per 1.0 of volatility, squared. The margin
/// engine's scenario grid uses vanna and volga for the spot-and-volatility corners.
///
/// Normal CDF. N(d) = erfc(−d/√2)/2 with W. J. Cody's rational Chebyshev approximations of erf and
/// erfc ("Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969), 631–638),
/// with the coefficients of Cody's SPECFUN routine CALERF (netlib.org/specfun/erf, 1990), which
/// approximate erf and erfc to at least 18 significant digits on three intervals of y = |d|/√2:
/// [0, 0.46875] (erf), (0.46875, 4] and (4, ∞) (erfc). Evaluated here in WAD: the smaller tail
/// N(−|d|) is computed directly (not as 1 − N(|d|)), so it keeps its relative accuracy, and
/// N(−d) = 1e18 − N(d) holds exactly. Measured against 50-digit values over d ∈ [−10, 10], the
/// absolute error of N is ≤ 1.5 wei (1.5e-18).
///
/// Accuracy and rounding. Every intermediate is rounded once, to at least WAD precision (ln S − ln K
/// to ~1e-18, σ√τ and σ²τ/2 to 1e-27). The error is therefore a few wei of N and φ times the spot:
/// price within ~2e-18·(S + K), delta within 2 wei, gamma and vega within a few wei of φ(d1) scaled
/// by 1/(S·σ√τ) and S·√τ. (Against 60-digit values over the accuracy grid of
/// test/unit/BlackScholes.test.ts at S = 3000: price ≤ 6e3 wei, delta ≤ 2 wei, gamma ≤ 1 wei,
/// vega ≤ 4e3 wei.) The final
/// divisions round down and the approximation errs either way by those few wei: callers that must
/// round against an account (OptionMarket) add their own margin, e.g. 1e-17·(S + K) and 10 wei.
/// Put-call parity C − P = S − K holds exactly in wei unless one of the two prices was clamped to 0.
///
/// Domain (anything outside reverts with the matching custom error): 0 < S, K ≤ 1e36 (1e18 USD);
/// K/S ∈ [0.01, 100]; timeToExpiry ∈ [1 hour, 2 years] (expired options are not priced: settlement
/// uses intrinsic value); σ ∈ [0.01, 5] (1%–500%). Within it |d1|, |d2| < 4.4e4, which bounds every
/// intermediate far below 2^255 (the `unchecked` blocks below state their bounds).
library BlackScholes {
    /// @notice Price and Greeks of one option on one unit of underlying, WAD.
    /// @param price Model value in USD (≥ 0), rounded down.
    /// @param delta ∂price/∂S: in [0, 1e18] for a call, [−1e18, 0] for a put.
    /// @param gamma ∂²price/∂S² in underlying units per USD (≥ 0).
    /// @param vega ∂price/∂σ in USD per 1.0 of volatility (≥ 0).
    /// @param vanna ∂delta/∂σ in underlying units per 1.0 of volatility (truncated toward zero).
    /// @param volga ∂vega/∂σ in USD per 1.0 of volatility squared (truncated toward zero).
    /// @param totalVolatility w = σ√τ (WAD, rounded down): the option's own one-standard-deviation move
    /// in log spot until expiry.
    struct Valuation {
        uint256 price;
        int256 delta;
        uint256 gamma;
        uint256 vega;
        int256 vanna;
        int256 volga;
        uint256 totalVolatility;
    }

    /// @notice The spot price is 0 or above `MAX_PRICE`.
    /// @param spot The spot price given (WAD).
    error SpotOutOfRange(uint256 spot);

    /// @notice The strike is 0 or above `MAX_PRICE`.
    /// @param strike The strike given (WAD).
    error StrikeOutOfRange(uint256 strike);

    /// @notice strike / spot is outside [1 / `MAX_MONEYNESS`, `MAX_MONEYNESS`].
    /// @param spot The spot price given (WAD).
    /// @param strike The strike given (WAD).
    error MoneynessOutOfRange(uint256 spot, uint256 strike);

    /// @notice The time to expiry is outside [`MIN_TIME_TO_EXPIRY`, `MAX_TIME_TO_EXPIRY`].
    /// @param timeToExpiry The time to expiry given, in seconds.
    error TimeToExpiryOutOfRange(uint256 timeToExpiry);

    /// @notice The volatility is outside [`MIN_VOLATILITY`, `MAX_VOLATILITY`].
    /// @param volatility The annualised volatility given (WAD).
    error VolatilityOutOfRange(uint256 volatility);

    uint256 internal constant WAD = 1e18;
    /// @notice The year used to annualise time: 365 days, as the volatility feed.
    uint256 internal constant YEAR = 365 days;

    /// @notice Largest spot and strike (1e18 USD), so S·N(d) and S·φ·1e18 fit in 256 bits.
    uint256 internal constant MAX_PRICE = 1e36;
    /// @notice Largest K/S and S/K: |ln(K/S)| ≤ ln 100.
    uint256 internal constant MAX_MONEYNESS = 100;
    uint256 internal constant MIN_TIME_TO_EXPIRY = 1 hours;
    uint256 internal constant MAX_TIME_TO_EXPIRY = 2 * YEAR;
    uint256 internal constant MIN_VOLATILITY = 0.01e18;
    uint256 internal constant MAX_VOLATILITY = 5e18;

    // 1/√(2π), 1/√2, 1/√π, rounded to WAD.
    uint256 private constant INV_SQRT_2PI = 0.398942280401432678e18;
    uint256 private constant INV_SQRT_2 = 0.707106781186547524e18;
    uint256 private constant INV_SQRT_PI = 0.564189583547756287e18;

    // Beyond |d| = 9.2, N(−|d|) < 1.8e-20 and φ(d) < 1.7e-19: both round to 0 wei.
    uint256 private constant D_NEGLIGIBLE = 9.2e18;
    // Interval bounds of Cody's approximations, in y = |d|/√2.
    uint256 private constant Y_ERF = 0.46875e18;
    uint256 private constant Y_ERFC = 4e18;

    // Cody, erf(y) = y·A(y²)/B(y²) for y ≤ 0.46875 (CALERF's A and B), WAD.
    uint256 private constant A0 = 3.16112374387056560e18;
    uint256 private constant A1 = 113.864154151050156e18;
    uint256 private constant A2 = 377.485237685302021e18;
    uint256 private constant A3 = 3209.37758913846947e18;
    uint256 private constant A4 = 0.185777706184603153e18;
    uint256 private constant B0 = 23.6012909523441209e18;
    uint256 private constant B1 = 244.024637934444173e18;
    uint256 private constant B2 = 1282.61652607737228e18;
    uint256 private constant B3 = 2844.23683343917062e18;

    // Cody, erfc(y) = e^{−y²}·C(y)/D(y) for 0.46875 < y ≤ 4 (CALERF's C and D), WAD.
    uint256 private constant C0 = 0.564188496988670089e18;
    uint256 private constant C1 = 8.88314979438837594e18;
    uint256 private constant C2 = 66.1191906371416295e18;
    uint256 private constant C3 = 298.635138197400131e18;
    uint256 private constant C4 = 881.952221241769090e18;
    uint256 private constant C5 = 1712.04761263407058e18;
    uint256 private constant C6 = 2051.07837782607147e18;
    uint256 private constant C7 = 1230.33935479799725e18;
    uint256 private constant C8 = 21531153547; // 2.15311535474403846e-8
    uint256 private constant D0 = 15.7449261107098347e18;
    uint256 private constant D1 = 117.693950891312499e18;
    uint256 private constant D2 = 537.181101862009858e18;
    uint256 private constant D3 = 1621.38957456669019e18;
    uint256 private constant D4 = 3290.79923573345963e18;
    uint256 private constant D5 = 4362.61909014324716e18;
    uint256 private constant D6 = 3439.36767414372164e18;
    uint256 private constant D7 = 1230.33935480374942e18;

    // Cody, erfc(y) = e^{−y²}/y·(1/√π − z·P(z)/Q(z)), z = 1/y², for y > 4 (CALERF's P and Q), WAD.
    uint256 private constant P0 = 0.305326634961232344e18;
    uint256 private constant P1 = 0.360344899949804439e18;
    uint256 private constant P2 = 0.125781726111229246e18;
    uint256 private constant P3 = 16083785148742277; // 1.60837851487422766e-2
    uint256 private constant P4 = 658749161529838; // 6.58749161529837803e-4
    uint256 private constant P5 = 16315387137302098; // 1.63153871373020978e-2
    uint256 private constant Q0 = 2.56852019228982242e18;
    uint256 private constant Q1 = 1.87295284992346047e18;
    uint256 private constant Q2 = 0.527905102951428412e18;
    uint256 private constant Q3 = 60518341312441319; // 6.05183413124413191e-2
    uint256 private constant Q4 = 2335204976268692; // 2.33520497626869185e-3

    /// @notice Price, delta, gamma and vega of one option on one unit of underlying.
    /// @dev The main entry point: the four share d1, d2, N(d1) and φ(d1). Reverts outside the domain.
    /// @param spot Spot price S (WAD, USD).
    /// @param strike Strike K (WAD, USD).
    /// @param timeToExpiry Seconds to expiry.
    /// @param volatility Annualised volatility σ (WAD; 1e18 = 100%).
    /// @param isCall True for a call, false for a put.
    function valuation(
        uint256 spot,
        uint256 strike,
        uint256 timeToExpiry,
        uint256 volatility,
        bool isCall
    ) internal pure returns (Valuation memory v) {
        checkDomain(spot, strike, timeToExpiry, volatility);
        (int256 d1, int256 d2, uint256 totalVol27) = _d1d2(spot, strike, timeToExpiry, volatility);
        uint256 gauss1 = _gauss(_abs(d1));
        uint256 nd1 = _cdf(d1, gauss1);
        uint256 nd2 = _cdf(d2, _gauss(_abs(d2)));
        v.price = _price(spot, strike, nd1, nd2, isCall);
        // nd1 ≤ WAD, so both casts and the subtraction are exact.
        v.delta = isCall ? int256(nd1) : int256(nd1) - int256(WAD);
        unchecked {
            // φ(d1) = e^{−d1²/2}/√(2π) ≤ 0.4e18. Domain: S ≤ 1e36 and w ≤ √(25·2)·1e27 < 7.1e27, so
            // φ·1e45 < 4e62 and S·w27 < 7.1e63 fit, and S·w27 ≥ 1·1e23 > 0 (σ ≥ 0.01, τ ≥ 1 hour).
            uint256 pdf = (gauss1 * INV_SQRT_2PI) / WAD;
            // gamma = φ/(S·w): (φ·1e18)·1e45 / ((S·1e18)·(w·1e27)) = gamma·1e18.
            v.gamma = (pdf * 1e45) / (spot * totalVol27);
            // vega = S·φ·√τ = S·φ·w/σ: S·φ·w27 reaches 2.8e81, hence the 512-bit mulDiv.
            v.vega = FixedPointMathLib.fullMulDiv(spot * pdf, totalVol27, volatility * 1e27);
            // |φ·d2| < 0.4e18·4.4e22; vega·|d1| < 5.7e35·4.4e22 and, after /1e18, ·|d2| < 1.1e63: no
            // overflow. σ ≥ 1e16 > 0.
            v.vanna = -(int256(pdf) * d2) / int256(volatility);
            v.volga = (((int256(v.vega) * d1) / 1e18) * d2) / int256(volatility);
            v.totalVolatility = totalVol27 / 1e9;
        }
    }

    /// @notice Price only (WAD, USD, rounded down); same value as `valuation(...).price`.
    /// @param spot Spot price S (WAD, USD).
    /// @param strike Strike K (WAD, USD).
    /// @param timeToExpiry Seconds to expiry.
    /// @param volatility Annualised volatility σ (WAD).
    /// @param isCall True for a call, false for a put.
    function price(
        uint256 spot,
        uint256 strike,
        uint256 timeToExpiry,
        uint256 volatility,
        bool isCall
    ) internal pure returns (uint256) {
        checkDomain(spot, strike, timeToExpiry, volatility);
        (int256 d1, int256 d2, ) = _d1d2(spot, strike, timeToExpiry, volatility);
        uint256 nd1 = _cdf(d1, _gauss(_abs(d1)));
        uint256 nd2 = _cdf(d2, _gauss(_abs(d2)));
        return _price(spot, strike, nd1, nd2, isCall);
    }

    /// @notice Standard normal CDF N(d) for a WAD `d`, WAD (absolute error ≤ 1e-17).
    /// @param d The argument (WAD); any value (|d| ≥ 9.2 returns 0 or 1e18).
    function normCdf(int256 d) internal pure returns (uint256) {
        return _cdf(d, _gauss(_abs(d)));
    }

    /// @notice Reverts with the matching custom error unless the inputs are inside the domain.
    /// @param spot Spot price S (WAD).
    /// @param strike Strike K (WAD).
    /// @param timeToExpiry Seconds to expiry.
    /// @param volatility Annualised volatility σ (WAD).
    function checkDomain(
        uint256 spot,
        uint256 strike,
        uint256 timeToExpiry,
        uint256 volatility
    ) internal pure {
        if (spot == 0 || spot > MAX_PRICE) revert SpotOutOfRange(spot);
        if (strike == 0 || strike > MAX_PRICE) revert StrikeOutOfRange(strike);
        // Both products ≤ 1e38: exact.
        if (strike * MAX_MONEYNESS < spot || strike > spot * MAX_MONEYNESS) {
            revert MoneynessOutOfRange(spot, strike);
        }
        if (timeToExpiry < MIN_TIME_TO_EXPIRY || timeToExpiry > MAX_TIME_TO_EXPIRY) {
            revert TimeToExpiryOutOfRange(timeToExpiry);
        }
        if (volatility < MIN_VOLATILITY || volatility > MAX_VOLATILITY)
            revert VolatilityOutOfRange(volatility);
    }

    /// @dev d1, d2 (WAD) and the total volatility w = σ√τ scaled by 1e27. Inputs inside the domain.
    function _d1d2(
        uint256 spot,
        uint256 strike,
        uint256 timeToExpiry,
        uint256 volatility
    ) private pure returns (int256 d1, int256 d2, uint256 totalVol27) {
        // ln S − ln K rather than ln(S/K): each log is exact to ~1 wei whatever the ratio, where the
        // WAD ratio would carry a relative rounding of up to 1e-16.
        int256 logMoneyness = FixedPointMathLib.lnWad(int256(spot)) - FixedPointMathLib.lnWad(int256(strike));
        unchecked {
            // σ²τ·1e36 ≤ 25e36·2 = 5e37 (σ ≤ 5, τ ≤ 2); σ²·t ≤ 25e36·6.31e7 < 1.6e45. All positive.
            uint256 variance36 = (volatility * volatility * timeToExpiry) / YEAR;
            // w·1e27 = √(σ²τ·1e54) ≥ √(1e-4·1.14e-4)·1e27 ≈ 1.07e23 > 0; ≤ 7.1e27.
            totalVol27 = FixedPointMathLib.sqrt(variance36 * 1e18);
            int256 halfVariance27 = int256(variance36 / 2e9);
            // |ln(S/K)| ≤ ln 100 < 4.7e18, so |x27 ± σ²τ/2| < 3e28 and ·1e18 < 3e46.
            int256 x27 = logMoneyness * 1e9;
            d1 = ((x27 + halfVariance27) * 1e18) / int256(totalVol27);
            d2 = ((x27 - halfVariance27) * 1e18) / int256(totalVol27);
        }
    }

    /// @dev S·N(d1) − K·N(d2) for a call, K·N(−d2) − S·N(−d1) for a put, rounded down, clamped at 0
    /// (the approximation can leave a deep out-of-the-money price a few wei below 0). The two share the
    /// unrounded numerator up to (S − K)·WAD, so put-call parity is exact unless a price was clamped.
    function _price(
        uint256 spot,
        uint256 strike,
        uint256 nd1,
        uint256 nd2,
        bool isCall
    ) private pure returns (uint256) {
        unchecked {
            // S, K ≤ 1e36 and N ≤ 1e18: products ≤ 1e54; the subtraction only runs when positive.
            (uint256 plus, uint256 minus) = isCall
                ? (spot * nd1, strike * nd2)
                : (strike * (WAD - nd2), spot * (WAD - nd1));
            return plus > minus ? (plus - minus) / WAD : 0;
        }
    }

    /// @dev N(d) (WAD) from the tail N(−|d|); `gauss` = e^{−d²/2} (WAD).
    function _cdf(int256 d, uint256 gauss) private pure returns (uint256) {
        uint256 tail = _tail(_abs(d), gauss);
        // tail ≤ 0.5e18.
        unchecked {
            return d < 0 ? tail : WAD - tail;
        }
    }

    /// @dev e^{−d²/2} (WAD) for |d| = `absD` (WAD); 0 from |d| ≥ 9.2, where it is < 4.3e-19.
    function _gauss(uint256 absD) private pure returns (uint256) {
        if (absD >= D_NEGLIGIBLE) return 0;
        // absD < 9.2e18: d²/2 < 4.3e37, and e^{−d²/2} ∈ (0, 1e18].
        unchecked {
            return uint256(FixedPointMathLib.expWad(-int256((absD * absD) / 2e18)));
        }
    }

    /// @dev The normal tail N(−|d|) = erfc(y)/2, y = |d|/√2, with Cody's approximations; WAD.
    /// `absD` = |d| (WAD), `gauss` = e^{−d²/2} = e^{−y²} (WAD).
    function _tail(uint256 absD, uint256 gauss) private pure returns (uint256) {
        // e^{−d²/2} rounds to 0 only beyond |d| ≈ 9.1, where the tail is below 1e-19.
        if (gauss == 0) return 0;
        // gauss > 0 implies |d| < 9.2e18, so y < 6.51e18.
        uint256 y;
        unchecked {
            y = (absD * INV_SQRT_2) / WAD;
        }
        if (y <= Y_ERF) return _tailNear(y);
        if (y <= Y_ERFC) return _tailMid(y, gauss);
        return _tailFar(y, gauss);
    }

    /// @dev erfc(y)/2 for y ≤ 0.46875: erfc = 1 − y·A(z)/B(z), z = y², so tail = (B − y·A)/(2B)
    /// with one rounding.
    function _tailNear(uint256 y) private pure returns (uint256) {
        // z ≤ 0.22e18; the Horner sums stay below 3.3e21, their products with z below 1e39.
        unchecked {
            uint256 z = (y * y) / WAD;
            uint256 num = (A4 * z) / WAD;
            uint256 den = z;
            num = ((num + A0) * z) / WAD;
            den = ((den + B0) * z) / WAD;
            num = ((num + A1) * z) / WAD;
            den = ((den + B1) * z) / WAD;
            num = ((num + A2) * z) / WAD;
            den = ((den + B2) * z) / WAD;
            num += A3;
            den += B3;
            // y·A < B since erf(0.46875) < 0.5: the subtraction is positive.
            return (WAD * den - y * num) / (2 * den);
        }
    }

    /// @dev erfc(y)/2 for 0.46875 < y ≤ 4: erfc = e^{−y²}·C(y)/D(y).
    function _tailMid(uint256 y, uint256 gauss) private pure returns (uint256) {
        // y ≤ 4e18; the Horner sums stay below D(4) ≈ 2.1e6·1e18, their products with y below 1e44.
        unchecked {
            uint256 num = (C8 * y) / WAD;
            uint256 den = y;
            num = ((num + C0) * y) / WAD;
            den = ((den + D0) * y) / WAD;
            num = ((num + C1) * y) / WAD;
            den = ((den + D1) * y) / WAD;
            num = ((num + C2) * y) / WAD;
            den = ((den + D2) * y) / WAD;
            num = ((num + C3) * y) / WAD;
            den = ((den + D3) * y) / WAD;
            num = ((num + C4) * y) / WAD;
            den = ((den + D4) * y) / WAD;
            num = ((num + C5) * y) / WAD;
            den = ((den + D5) * y) / WAD;
            num = ((num + C6) * y) / WAD;
            den = ((den + D6) * y) / WAD;
            return (gauss * (num + C7)) / (2 * (den + D7));
        }
    }

    /// @dev erfc(y)/2 for y > 4: erfc = e^{−y²}/y·(1/√π − z·P(z)/Q(z)), z = 1/y².
    function _tailFar(uint256 y, uint256 gauss) private pure returns (uint256) {
        // 4e18 < y < 6.51e18: z ∈ (0.0236, 0.0625)·1e18, every sum below 3e18.
        unchecked {
            uint256 z = (WAD * WAD * WAD) / (y * y);
            uint256 num = (P5 * z) / WAD;
            uint256 den = z;
            num = ((num + P0) * z) / WAD;
            den = ((den + Q0) * z) / WAD;
            num = ((num + P1) * z) / WAD;
            den = ((den + Q1) * z) / WAD;
            num = ((num + P2) * z) / WAD;
            den = ((den + Q2) * z) / WAD;
            num = ((num + P3) * z) / WAD;
            den = ((den + Q3) * z) / WAD;
            // z·P/Q < 0.02e18 < 1/√π: positive.
            uint256 correction = (z * (num + P4)) / (den + Q4);
            return (gauss * (INV_SQRT_PI - correction)) / (2 * y);
        }
    }

    /// @dev |d| as uint256 (|d| < 4.4e22 here, never type(int256).min).
    function _abs(int256 d) private pure returns (uint256) {
        return uint256(d < 0 ? -d : d);
    }
}
