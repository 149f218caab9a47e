// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {SignedMath} from "@openzeppelin/contracts/utils/math/SignedMath.sol";
import {ILiquidationAuction} from "../interfaces/ILiquidationAuction.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";
import {IMarket} from "../interfaces/IMarket.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";
import {IInsuranceFund} from "../interfaces/IInsuranceFund.sol";
import {IOracleRouter} from "../interfaces/IOracleRouter.sol";
import {LiquidationMath} from "../libraries/LiquidationMath.sol";
import {UpdateThrottle} from "../governance/UpdateThrottle.sol";

/// @title LiquidationAuction
/// @notice Dutch auctions of portfolio slices of accounts below their maintenance requirement.
/// @dev The rules are in ILiquidationAuction; the arithmetic is in LiquidationMath. Every price the
/// auction uses comes from `engine.health`, which reverts on a stale or broken price and while the L2
/// sequencer is down or in its grace period: no liquidation runs on a bad price. A failed volatility
/// feed does not stop it: the health then margins a group of perps at its floor shocks, a lower bound
/// at any volatility (`IMarginEngine.Health.volatilityUnavailable`).
contract LiquidationAuction is ILiquidationAuction, AccessManaged, ReentrancyGuardTransient, UpdateThrottle {
    uint256 internal constant WAD = 1e18;
    /// @notice Largest discount an auction may reach (its `maxDiscount`), as a fraction of the slice's
    /// mark.
    uint256 public constant MAX_DISCOUNT = 0.5e18;
    /// @notice Largest liquidation penalty: the account pays this fraction of each slice's mark to the
    /// insurance fund.
    uint256 public constant MAX_PENALTY = 0.05e18;
    /// @notice Shortest auction: the discount must have time to grow before the backstop may absorb.
    uint256 public constant MIN_DURATION = 1 minutes;
    /// @notice Longest auction: an unhealthy account must not stay frozen for days.
    uint256 public constant MAX_DURATION = 1 days;
    /// @notice Largest change of the start or maximum discount per update (five points).
    uint256 public constant MAX_DISCOUNT_STEP = 0.05e18;
    /// @notice Largest change of the penalty per update: one point of every slice's MtM.
    uint256 public constant MAX_PENALTY_STEP = 0.01e18;
    /// @notice The duration may at most double or halve per update (30 minutes to one minute takes
    /// five updates, five days).
    uint256 public constant MAX_DURATION_FACTOR = 2;
    /// @notice Largest flag reward in whole quote tokens (100 USDC). The account pays it (up to its
    /// equity), so the bound is what a barely-unhealthy account can lose to whoever flags it; 100 USDC
    /// still pays for a start on L1 at high gas prices.
    uint256 public constant MAX_FLAG_REWARD_TOKENS = 100;
    /// @notice Largest change of the flag reward per update, whole quote tokens (10 → 100 USDC takes
    /// four updates).
    uint256 public constant MAX_FLAG_REWARD_STEP_TOKENS = 25;

    /// @notice The margin engine whose health decides when an auction starts and ends.
    IMarginEngine public immutable engine;
    /// @notice The account registry (a bidder's ownership and trading grants).
    IAccounts public immutable accounts;
    /// @notice The fund that pays the bidders of insolvent auctions and receives the penalties.
    IInsuranceFund public immutable insuranceFund;
    /// @dev The engine's vault and its quote token, read once: the backstop's collateral sales price
    /// and move balances there.
    ICollateralVault internal immutable vault;
    /// @dev The engine's router: it says when an auction's clock counts from through sequencer outages (`_elapsed`).
    IOracleRouter internal immutable oracle;
    address internal immutable quote;
    /// @dev One quote unit in USD WAD.
    uint256 internal immutable quoteUnit;
    /// @notice MAX_FLAG_REWARD_TOKENS in quote units.
    uint256 public immutable maxFlagReward;
    /// @notice MAX_FLAG_REWARD_STEP_TOKENS in quote units.
    uint256 public immutable maxFlagRewardStep;
    /// @inheritdoc ILiquidationAuction
    uint256 public immutable backstopAccountId;

    /// @notice A start within this long of the account's last auction ending pays no flag reward: the
    /// reward pays for finding an account, not for each crossing of its maintenance line.
    uint256 public constant FLAG_REWARD_COOLDOWN = 1 days;

    AuctionParams public params;
    /// @inheritdoc ILiquidationAuction
    mapping(uint256 accountId => Auction) public auctions;
    /// @inheritdoc ILiquidationAuction
    uint256 public pendingDeficit;
    /// @inheritdoc ILiquidationAuction
    uint64 public lastAbsorbAt;

    constructor(
        address authority,
        IMarginEngine engine_,
        IAccounts accounts_,
        IInsuranceFund insuranceFund_,
        AuctionParams memory params_
    ) AccessManaged(authority) {
        engine = engine_;
        accounts = accounts_;
        insuranceFund = insuranceFund_;
        vault = engine_.vault();
        oracle = engine_.oracle();
        quote = address(vault.quoteToken());
        uint8 quoteDecimals = IERC20Metadata(quote).decimals();
        quoteUnit = 10 ** (18 - quoteDecimals);
        maxFlagReward = MAX_FLAG_REWARD_TOKENS * 10 ** quoteDecimals;
        maxFlagRewardStep = MAX_FLAG_REWARD_STEP_TOKENS * 10 ** quoteDecimals;
        // This contract owns the backstop, so only `unwindBackstop` can trade it and nothing withdraws
        // from it.
        backstopAccountId = accounts_.createAccount(IAccounts.MarginMode.CROSS);
        _checkBounds(params_);
        params = params_;
        emit AuctionParamsUpdated(params_);
    }

    /// @notice Updates the auction parameters within hard bounds and max steps, at most once per
    /// MIN_UPDATE_INTERVAL (UpdateTooSoon("auctionParams", 0, next) otherwise). Risk role.
    /// @dev Per update: discounts move at most MAX_DISCOUNT_STEP, the penalty MAX_PENALTY_STEP, the
    /// flag reward maxFlagRewardStep, and the duration at most doubles or halves. Every one of them
    /// moves value from liquidated accounts to bidders, flaggers or the fund.
    /// @param next The new parameters.
    function setAuctionParams(AuctionParams calldata next) external restricted {
        _checkBounds(next);
        AuctionParams memory old = params;
        if (
            _absDiff(old.startDiscount, next.startDiscount) > MAX_DISCOUNT_STEP ||
            _absDiff(old.maxDiscount, next.maxDiscount) > MAX_DISCOUNT_STEP ||
            _absDiff(old.penalty, next.penalty) > MAX_PENALTY_STEP ||
            _absDiff(old.flagReward, next.flagReward) > maxFlagRewardStep ||
            next.duration > MAX_DURATION_FACTOR * old.duration ||
            MAX_DURATION_FACTOR * next.duration < old.duration
        ) revert AuctionParamsOutOfBounds();
        // The steps are measured from the current values: without the interval they chain.
        _throttle("auctionParams", bytes32(0), MIN_UPDATE_INTERVAL);
        params = next;
        emit AuctionParamsUpdated(next);
    }

    /// @inheritdoc ILiquidationAuction
    function startAuction(uint256 accountId) external nonReentrant {
        _startAuction(accountId, true);
    }

    /// @inheritdoc ILiquidationAuction
    function startAuctions(uint256[] calldata accountIds) external nonReentrant returns (uint256 started) {
        for (uint256 i; i < accountIds.length; ++i) {
            if (_startAuction(accountIds[i], false)) ++started;
        }
    }

    /// @dev Starts `accountId`'s auction. What `startAuction` refuses (`strict`) reverts in place, with
    /// the errors and in the order it always had; a batch (not `strict`) skips it instead (false): the
    /// accounts another keeper started or a price move cured since the caller's scan, where one of them
    /// would otherwise revert the whole batch. What a valuation refuses (a stale feed) reverts either
    /// way. Reverting in place keeps a single start at its gas before batches (review round 69: a refusal
    /// returned to the caller with the account's health cost 391 gas a start).
    function _startAuction(uint256 accountId, bool strict) private returns (bool) {
        if (accountId == engine.poolAccountId() || accountId == backstopAccountId) {
            if (strict) revert PoolNotLiquidatable();
            return false;
        }
        Auction storage auction = auctions[accountId];
        AuctionParams memory p = params;
        bool restart = auction.active;
        // Stale 2·duration into its clock, which an outage pauses (review round 118: counted from the start,
        // its owner's restart sent it from 9.5% back to 2% 1,700 s after the outage).
        if (restart && block.timestamp < _clockStart(auction.startTime) + 2 * uint256(p.duration)) {
            if (strict) revert AuctionAlreadyActive(accountId);
            return false;
        }
        Valuation memory v = _valuation(accountId);
        IMarginEngine.Health memory h = v.health;
        if (!_liquidatable(h)) {
            if (strict) revert AccountHealthy(accountId, h.equityMaintenance, h.maintenanceRequirement);
            return false;
        }
        auction.startTime = uint64(block.timestamp);
        auction.active = true;
        // An insolvent account pays no flag reward (below), so its deficit after the start is v's.
        _setDeficit(accountId, auction, _deficitOf(v.mark));
        // The reward pays for finding the account once: restarting a stale auction every 2·duration
        // must not drain an account nobody bids on (the 24-hour crash restarted 16 auctions 243 times),
        // nor ending and starting again an account hovering at maintenance (5 crossings took 50 USDC
        // of flag rewards where one auction took 10: review round 17). Ending at the maintenance line
        // stays right: left running, the auction's discount would greet the next dip at its maximum.
        bool sameEpisode = restart || block.timestamp < uint256(auction.endedAt) + FLAG_REWARD_COOLDOWN;
        uint256 reward = sameEpisode ? 0 : _flagReward(v.mark, p.flagReward);
        // The reward leaves the vault in tokens: capped at the quote the vault holds, so that a vault
        // whose USDC is lent out still starts auctions (InsufficientLiquidity refused them: review
        // round 19, F3).
        reward = Math.min(reward, vault.totalDeposits(quote));
        // A quote token that refuses the transfer (USDC paused, the starter blacklisted) must not stop
        // the liquidation: the start goes on without the reward, nothing debited (review round 24: a
        // pause kept every solvent account from auction until it was 4,630 USDC insolvent).
        if (reward != 0) {
            try engine.payOut(accountId, msg.sender, reward) {} catch {
                reward = 0;
            }
        }
        emit AuctionStarted(accountId, msg.sender, h.equityMaintenance, h.maintenanceRequirement, reward);
        return true;
    }

    /// @inheritdoc ILiquidationAuction
    function bid(
        uint256 accountId,
        uint256 bidderAccountId,
        uint256 fraction,
        uint256 maxPayment
    ) external nonReentrant returns (uint256 filled, uint256 payment) {
        (filled, payment) = _bid(accountId, bidderAccountId, fraction, maxPayment);
        engine.requireInitialMargin(bidderAccountId);
    }

    /// @inheritdoc ILiquidationAuction
    function bidAndClose(
        uint256 accountId,
        uint256 bidderAccountId,
        uint256 fraction,
        uint256 maxPayment
    ) external nonReentrant returns (uint256 filled, uint256 payment) {
        if (engine.accountMarkets(bidderAccountId).length != 0) revert BidderHasPositions(bidderAccountId);
        // What the bidder holds of the tokens a slice can bring (the account's, read before a whole sale
        // empties its list): the bid's gain is priced on their feeds alone, which the valuation reads
        // anyway, so another token in the bidder account still ties no bid to its feed (review round 39).
        address[] memory tokens = vault.collateralTokens(accountId);
        int256[] memory held0 = _holdings(bidderAccountId, tokens);
        (filled, payment) = _bid(accountId, bidderAccountId, fraction, maxPayment);
        IMarginEngine.MarketKey[] memory held = engine.accountMarkets(bidderAccountId);
        for (uint256 i; i < held.length; ++i) {
            IMarket market = IMarket(held[i].market);
            int256 size = market.positionSize(bidderAccountId, held[i].marketId);
            // Closing is risk-reducing: it fills at the market's price with its skew premium and fees,
            // which is what a keeper's simulation prices in before sending.
            market.trade(
                bidderAccountId,
                held[i].marketId,
                -size,
                size > 0 ? 0 : type(uint256).max,
                block.timestamp
            );
        }
        // A bidder left with nothing at risk meets its IM (0) at any price, as a withdrawal from such an
        // account does: pricing its collateral anyway tied every keeper bid to the feed of each token its
        // account holds, such as the collateral of the slices it took (1 satoshi of WBTC stopped
        // bidAndClose on ETH books while the BTC feed was stale; review round 39).
        if (!vault.hasNothingAtRisk(bidderAccountId)) engine.requireInitialMargin(bidderAccountId);
        // The closes have no price limit and `maxPayment` bounds only the auction's part: a short sold just
        // before a long slice's close and bought back after took the bidder's free quote (review round 89:
        // 1,986.04 USDC of a keeper's 2,000 on an insolvent take, where the honest take earned 527.86).
        _requireNoLoss(bidderAccountId, tokens, held0);
    }

    /// @dev `accountId`'s quote (net of the interest its debt owes) and its balances of `tokens`.
    function _holdings(
        uint256 accountId,
        address[] memory tokens
    ) internal view returns (int256[] memory held) {
        held = new int256[](tokens.length + 1);
        held[0] = vault.balanceOf(accountId, quote) - SafeCast.toInt256(vault.accruedInterest(accountId));
        for (uint256 i; i < tokens.length; ++i) {
            if (tokens[i] != quote) held[i + 1] = vault.balanceOf(accountId, tokens[i]);
        }
    }

    /// @dev Reverts with BidAndCloseLoss when `accountId`'s holdings moved from `held0` to less value at the
    /// oracle. Only the quote can fall; the other tokens only come in with the slice.
    function _requireNoLoss(uint256 accountId, address[] memory tokens, int256[] memory held0) internal view {
        int256[] memory held1 = _holdings(accountId, tokens);
        int256 gain;
        for (uint256 i; i < held1.length; ++i) {
            int256 delta = held1[i] - held0[i];
            if (delta == 0) continue;
            uint256 value = vault.tokenValue(i == 0 ? quote : tokens[i - 1], SignedMath.abs(delta));
            gain += delta > 0 ? SafeCast.toInt256(value) : -SafeCast.toInt256(value);
        }
        if (gain < 0) revert BidAndCloseLoss(accountId, uint256(-gain));
    }

    /// @inheritdoc ILiquidationAuction
    function absorb(uint256 accountId) external nonReentrant returns (uint256 filled, uint256 payment) {
        uint256 availableAt = absorbableAt(accountId);
        if (block.timestamp < availableAt) revert AbsorbTooEarly(accountId, availableAt);
        AuctionParams memory p = params;
        Valuation memory v = _valuation(accountId);
        if (!_liquidatable(v.health))
            revert AccountHealthy(accountId, v.health.equityMaintenance, v.health.maintenanceRequirement);
        // The collateral the book brings starts its Dutch auction now (all of the backstop's with it).
        lastAbsorbAt = uint64(block.timestamp);
        if (v.mark < 0) {
            // The whole deficit, as a bid at the auction's end would be paid: the backstop is the LPs',
            // and what the fund does not pay comes out of the same LPs.
            _takeInsolvent(accountId, backstopAccountId, v, _deficitOf(v.mark), p.maxDiscount);
            return (WAD, 0);
        }
        return _sell(accountId, backstopAccountId, v, WAD, type(uint256).max, p.maxDiscount, p.penalty);
    }

    /// @inheritdoc ILiquidationAuction
    function unwindBackstop(
        address market,
        uint256 marketId,
        int256 sizeDelta,
        uint256 limitPrice,
        uint256 deadline
    ) external restricted nonReentrant {
        int256 size = IMarket(market).positionSize(backstopAccountId, marketId);
        // Only a reduction: a trade that adds to the book, or flips it, would be new risk nobody margins.
        if (
            sizeDelta == 0 ||
            (size > 0) == (sizeDelta > 0) ||
            SignedMath.abs(sizeDelta) > SignedMath.abs(size)
        ) {
            revert UnwindNotReducing(market, marketId, size, sizeDelta);
        }
        IMarket(market).trade(backstopAccountId, marketId, sizeDelta, limitPrice, deadline);
        _sweepBackstopQuote();
    }

    /// @inheritdoc ILiquidationAuction
    function sweepBackstopQuote() external nonReentrant returns (uint256 amount) {
        return _sweepBackstopQuote();
    }

    /// @dev The backstop's positive quote balance to the pool's account, where LPs withdraw: all of it
    /// once it holds no position, else what it holds above its book's initial requirement. Every unwind
    /// and collateral sale ends with it; an absorb does not (the backstop keeps the slice as a bidder
    /// would, cash included).
    /// The cash the requirement needs stays to pay the book's losses: swept, a loss became a backstop
    /// quote debt that nothing repays, in every borrower's utilisation for good (review round 46: 9,198.82
    /// USDC of debt instead of 2,511.66); and the pool's free margin deducts the backstop's shortfall
    /// against that requirement, so sweeping it freed nothing for the LPs. A health that does not read
    /// (a failed feed) or rests on the floor shocks (volatility unavailable) sweeps nothing.
    function _sweepBackstopQuote() internal returns (uint256 amount) {
        uint256 backstop = backstopAccountId;
        int256 balance = vault.balanceOf(backstop, quote);
        if (balance <= 0) return 0;
        amount = uint256(balance);
        if (engine.accountMarkets(backstop).length != 0) {
            try engine.health(backstop) returns (IMarginEngine.Health memory h) {
                int256 surplus = h.equityInitial - SafeCast.toInt256(h.initialRequirement);
                if (surplus <= 0 || h.volatilityUnavailable) return 0;
                amount = Math.min(amount, vault.quoteForMargin(uint256(surplus)));
            } catch {
                return 0;
            }
            if (amount == 0) return 0;
        }
        engine.transferQuote(backstop, engine.poolAccountId(), amount);
        emit BackstopQuoteSwept(amount);
    }

    /// @inheritdoc ILiquidationAuction
    function buyBackstopCollateral(
        uint256 buyerAccountId,
        address token,
        uint256 amount,
        uint256 maxPayment
    ) external nonReentrant returns (uint256 payment) {
        accounts.requireAuthorized(buyerAccountId, msg.sender);
        // The oracle price the sale uses is the one the guardian may have paused over.
        if (engine.paused() || Pausable(address(vault)).paused()) revert BackstopSalePaused();
        uint256 discount;
        (payment, discount) = backstopCollateralQuote(token, amount);
        if (payment > maxPayment) revert PaymentAboveLimit(payment, maxPayment);
        // Cash, not debt: bought on quote debt at the maximum discount, the tokens' initial weight
        // (0.9) left the buyer's margin as it was, and a fall the buyer risked nothing on became the
        // LPs' bad debt (docs/reliability.md §4, row 47).
        int256 cash = vault.balanceOf(buyerAccountId, quote);
        if (cash < SafeCast.toInt256(payment)) revert PaymentAboveQuoteBalance(buyerAccountId, cash, payment);
        // Into the backstop, which the collateral leaves: a sweep counted that collateral (at its initial
        // weight) as the margin of the backstop's book, so the cash replaces it there; the sweep below
        // then moves what the book does not need to the pool's account, where LPs withdraw. Paid to the
        // pool, the sale left the book without margin and its loss became a backstop quote debt nothing
        // repays (review round 56: 5,921.23 USDC after BTC fell 8%, none now). It repays a backstop
        // debt first.
        engine.transferQuote(buyerAccountId, backstopAccountId, payment);
        engine.transferCollateral(backstopAccountId, buyerAccountId, token, amount);
        engine.requireInitialMargin(buyerAccountId);
        emit BackstopCollateralSold(buyerAccountId, token, amount, payment, discount);
        _sweepBackstopQuote();
    }

    /// @inheritdoc ILiquidationAuction
    function backstopCollateralQuote(
        address token,
        uint256 amount
    ) public view returns (uint256 payment, uint256 discount) {
        int256 held = token == quote ? int256(0) : vault.balanceOf(backstopAccountId, token);
        uint256 available = held > 0 ? uint256(held) : 0;
        if (amount == 0 || amount > available) revert InvalidCollateralPurchase(token, amount, available);
        AuctionParams memory p = params;
        discount = LiquidationMath.discount(0, p.maxDiscount, _elapsed(lastAbsorbAt), p.duration);
        // USD to quote at the quote's own price (a depegged quote must not buy the collateral below its
        // value), rounded up twice: the buyer pays the last unit.
        uint256 usd = Math.mulDiv(vault.tokenValue(token, amount), WAD - discount, WAD, Math.Rounding.Ceil);
        payment = Math.mulDiv(usd, WAD / quoteUnit, _quotePrice(), Math.Rounding.Ceil);
    }

    /// @inheritdoc ILiquidationAuction
    /// @dev A health at the floor shocks (a volatility feed down: `volatilityUnavailable`) bounds the
    /// requirement from below: it can show an account liquidatable, never recovered. The engine's strict
    /// read then reverts with the feed's error, and the auction keeps its discount until the feed returns.
    function endAuction(uint256 accountId) external nonReentrant {
        if (!auctions[accountId].active) revert AuctionNotActive(accountId);
        IMarginEngine.Health memory h = engine.health(accountId);
        if (h.volatilityUnavailable) engine.maintenanceRequirement(accountId);
        if (_liquidatable(h)) revert AccountNotHealthy(accountId);
        _end(accountId, 0);
    }

    /// @inheritdoc ILiquidationAuction
    function updateDeficit(uint256 accountId) external nonReentrant {
        Auction storage auction = auctions[accountId];
        if (!auction.active) revert AuctionNotActive(accountId);
        uint256 deficit = _deficitOf(_valuation(accountId).mark);
        // Only up: the way down is a bid, which pays at least a quote unit (the LP holding period, not
        // that cost, stops a deposit, lowering and redeem in one transaction).
        if (deficit > auction.deficit) _setDeficit(accountId, auction, deficit);
    }

    /// @inheritdoc ILiquidationAuction
    function isFrozen(uint256 accountId) external view returns (bool) {
        return auctions[accountId].active;
    }

    /// @inheritdoc ILiquidationAuction
    function currentDiscount(uint256 accountId) public view returns (uint256) {
        Auction memory auction = auctions[accountId];
        if (!auction.active) revert AuctionNotActive(accountId);
        return _discount(auction.startTime, params);
    }

    /// @inheritdoc ILiquidationAuction
    function absorbableAt(uint256 accountId) public view returns (uint256) {
        Auction memory auction = auctions[accountId];
        if (!auction.active) revert AuctionNotActive(accountId);
        return _clockStart(auction.startTime) + params.duration;
    }

    /// @inheritdoc ILiquidationAuction
    function quoteBid(
        uint256 accountId,
        uint256 fraction
    ) external view returns (uint256 filled, uint256 payment, uint256 insurancePayout) {
        Auction memory auction = auctions[accountId];
        if (!auction.active) revert AuctionNotActive(accountId);
        // The refusals `bid` makes before it prices anything, in its order: a preview of a bid that
        // reverts quoted a fill and a payment (review round 45: 0.1465 of a book back above its
        // maintenance line, for 69.04 USDC).
        if (fraction == 0 || fraction > WAD) revert InvalidFraction(fraction);
        AuctionParams memory p = params;
        Valuation memory v = _valuation(accountId);
        if (!_liquidatable(v.health))
            revert AccountHealthy(accountId, v.health.equityMaintenance, v.health.maintenanceRequirement);
        uint256 discount = _discount(auction.startTime, p);
        if (v.mark < 0) {
            insurancePayout = _insolvencyPayout(v, auction.startTime, p);
            return (WAD, _insolventCost(v, insurancePayout), insurancePayout);
        }
        uint256 held = _heldBack(v, auction.paidIn);
        filled = Math.min(fraction, _restoringFraction(v, held, discount, p.penalty));
        payment = _payment(v, held, filled, discount);
    }

    // ---------------------------------------------------------------- internals

    function _bid(
        uint256 accountId,
        uint256 bidderAccountId,
        uint256 fraction,
        uint256 maxPayment
    ) internal returns (uint256 filled, uint256 payment) {
        Auction memory auction = auctions[accountId];
        if (!auction.active) revert AuctionNotActive(accountId);
        if (fraction == 0 || fraction > WAD) revert InvalidFraction(fraction);
        if (bidderAccountId == accountId) revert SelfBid(accountId);
        accounts.requireAuthorized(bidderAccountId, msg.sender);
        AuctionParams memory p = params;
        Valuation memory v = _valuation(accountId);
        if (!_liquidatable(v.health))
            revert AccountHealthy(accountId, v.health.equityMaintenance, v.health.maintenanceRequirement);
        uint256 discount = _discount(auction.startTime, p);

        if (v.mark < 0) {
            uint256 payout = _insolvencyPayout(v, auction.startTime, p);
            // The bidder takes on the whole deficit for the payout: what that costs it at mark is what
            // `maxPayment` bounds (review round 56: a bid sent with the 2.75 USDC quote for 1% of a
            // solvent book, mined after the account turned insolvent, took its 419 USDC deficit).
            uint256 cost = _insolventCost(v, payout);
            if (cost > maxPayment) revert PaymentAboveLimit(cost, maxPayment);
            _takeInsolvent(accountId, bidderAccountId, v, payout, discount);
            return (WAD, 0);
        }
        return _sell(accountId, bidderAccountId, v, fraction, maxPayment, discount, p.penalty);
    }

    /// @dev Sells up to `fraction` of a solvent account's portfolio (without what earlier bids paid in) at
    /// `discount`, capped at the restoring fraction, and ends the auction if that restored the account.
    function _sell(
        uint256 accountId,
        uint256 bidderAccountId,
        Valuation memory v,
        uint256 fraction,
        uint256 maxPayment,
        uint256 discount,
        uint256 penaltyRate
    ) internal returns (uint256 filled, uint256 payment) {
        Auction storage auction = auctions[accountId];
        uint256 held = _heldBack(v, auction.paidIn);
        filled = Math.min(fraction, _restoringFraction(v, held, discount, penaltyRate));
        payment = _payment(v, held, filled, discount);
        if (payment > maxPayment) revert PaymentAboveLimit(payment, maxPayment);
        // The account pays the penalty on the slice's MtM, rounded up (against the account).
        uint256 penalty = Math.mulDiv(
            Math.mulDiv(_soldMark(v, held), filled, WAD, Math.Rounding.Ceil),
            penaltyRate,
            WAD * quoteUnit,
            Math.Rounding.Ceil
        );
        engine.transferSlice(accountId, bidderAccountId, filled, held);
        engine.transferQuote(bidderAccountId, accountId, payment);
        engine.transferQuote(accountId, engine.insuranceAccountId(), penalty);
        emit AuctionBid(accountId, bidderAccountId, filled, payment, penalty, discount);

        if (filled == WAD) {
            _end(accountId, 1);
            return (filled, payment);
        }
        Valuation memory afterBid = _valuation(accountId);
        if (_restored(afterBid.health)) {
            _end(accountId, 0);
            return (filled, payment);
        }
        _setDeficit(accountId, auction, _deficitOf(afterBid.mark));
        // What was paid in stays held back: all of it, or, where this bid sold it with the book (held
        // = 0), the part the slice did not take (review round 20: forgetting it sold it again later).
        uint256 kept = held != 0 ? held : Math.mulDiv(auction.paidIn, WAD - filled, WAD);
        // payment ≥ penalty: both are rounded up from f·M, at rates 1 − d > p.
        uint256 paidIn = kept + payment - Math.min(penalty, payment);
        auction.paidIn = SafeCast.toUint128(paidIn);
        emit PaidInUpdated(accountId, paidIn);
    }

    /// @dev The bidder takes the whole book and `payout`: the fund pays what it can, and the rest is
    /// charged to the pool's account (its LPs' share price).
    function _takeInsolvent(
        uint256 accountId,
        uint256 bidderAccountId,
        Valuation memory v,
        uint256 payout,
        uint256 discount
    ) internal {
        // The whole account, what earlier bids paid in included: it stands against the deficit.
        engine.transferSlice(accountId, bidderAccountId, WAD, 0);
        uint256 fromFund = Math.min(payout, insuranceFund.balance());
        engine.transferQuote(engine.insuranceAccountId(), bidderAccountId, fromFund);
        uint256 socialised = payout - fromFund;
        if (socialised != 0) {
            engine.transferQuote(engine.poolAccountId(), bidderAccountId, socialised);
            emit SocialisedLoss(accountId, socialised);
        }
        emit AuctionBid(accountId, bidderAccountId, WAD, 0, 0, discount);
        emit InsolvencyCovered(accountId, bidderAccountId, _deficitOf(v.mark), fromFund, socialised);
        _end(accountId, 2);
    }

    function _end(uint256 accountId, uint8 reason) internal {
        Auction storage auction = auctions[accountId];
        _setDeficit(accountId, auction, 0);
        (auction.startTime, auction.active, auction.endedAt) = (0, false, uint40(block.timestamp));
        auction.paidIn = 0;
        emit AuctionEnded(accountId, reason);
    }

    /// @dev −`mark` (quote WAD) in quote units, rounded up (as InsolvencyCovered reports it); 0 when
    /// solvent.
    function _deficitOf(int256 mark) internal view returns (uint256) {
        return mark < 0 ? Math.ceilDiv(uint256(-mark), quoteUnit) : 0;
    }

    /// @dev What taking an insolvent book for `payout` costs the bidder at mark (quote units): its deficit
    /// less the payout, 0 once the payout covers it. A bid's `maxPayment` bounds it.
    function _insolventCost(Valuation memory v, uint256 payout) internal view returns (uint256) {
        uint256 deficit = _deficitOf(v.mark);
        return deficit > payout ? deficit - payout : 0;
    }

    /// @dev An account's health, and its book's worth in the quote token every payment settles in.
    struct Valuation {
        IMarginEngine.Health health;
        /// Mark-to-market equity in quote WAD: positions at their value (they settle in quote 1:1) and
        /// collateral counted in quote (`ICollateralVault.markInQuote`). The engine's equityMark counts
        /// the quote itself at its oracle price: in a depeg to 0.95 a payment of f·equityMark bought the
        /// account's USDC at 0.95 USDC each, and an account whose book was worth more USDC than it
        /// owed read as insolvent and was paid for by the fund (review round 11, F2).
        int256 mark;
    }

    function _valuation(uint256 accountId) internal view returns (Valuation memory v) {
        v.health = engine.health(accountId);
        (int256 inQuote, int256 usdMark) = vault.markInQuote(accountId);
        v.mark = v.health.equityMark - usdMark + inQuote;
    }

    /// @dev What a bid holds back from the solvent book it slices (quote units): what earlier bids paid
    /// in, while the rest of the book is worth more than 0. A book under water without it is sold with
    /// it, as before any bid: its slices would otherwise cost the bidder nothing or less.
    function _heldBack(Valuation memory v, uint256 paidIn) internal view returns (uint256) {
        return uint256(v.mark) > paidIn * quoteUnit ? paidIn : 0;
    }

    /// @dev The mark of the book a bid slices (quote WAD, > 0): the account's less what is held back.
    function _soldMark(Valuation memory v, uint256 held) internal view returns (uint256) {
        return uint256(v.mark) - held * quoteUnit;
    }

    /// @dev The restoring fraction of a solvent book: the payment's worth to the account's margin is
    /// its quote at the quote's price, and so is the quote held back.
    function _restoringFraction(
        Valuation memory v,
        uint256 held,
        uint256 discount,
        uint256 penaltyRate
    ) internal view returns (uint256) {
        uint256 quotePrice = _quotePrice();
        uint256 markValue = Math.mulDiv(_soldMark(v, held), quotePrice, WAD);
        uint256 heldValue = Math.mulDiv(held * quoteUnit, quotePrice, WAD);
        return LiquidationMath.restoringFraction(v.health, markValue, heldValue, discount, penaltyRate);
    }

    /// @dev USD WAD per whole quote token.
    function _quotePrice() internal view returns (uint256) {
        return vault.tokenValue(quote, WAD / quoteUnit);
    }

    /// @dev Records the open auction's deficit as of this touch and keeps `pendingDeficit` their sum.
    /// Writes (and emits) only when the deficit changes, so a solvent auction costs nothing beyond its
    /// slot.
    function _setDeficit(uint256 accountId, Auction storage auction, uint256 deficit) internal {
        uint256 old = auction.deficit;
        if (deficit == old) return;
        auction.deficit = SafeCast.toUint128(deficit);
        uint256 total = pendingDeficit + deficit - old;
        pendingDeficit = total;
        emit PendingDeficitUpdated(accountId, deficit, total);
    }

    function _payment(
        Valuation memory v,
        uint256 held,
        uint256 filled,
        uint256 discount
    ) internal view returns (uint256) {
        return LiquidationMath.payment(_soldMark(v, held), filled, discount, quoteUnit);
    }

    function _insolvencyPayout(
        Valuation memory v,
        uint64 startTime,
        AuctionParams memory p
    ) internal view returns (uint256) {
        return
            LiquidationMath.insolvencyPayout(
                uint256(-v.mark),
                // The premium dmax·MM is USD; paid in quote at the quote's price (review round 13).
                Math.mulDiv(v.health.maintenanceRequirement, WAD, _quotePrice()),
                p.maxDiscount,
                _elapsed(startTime),
                p.duration,
                quoteUnit
            );
    }

    /// @dev The flag reward, capped at the account's mark-to-market equity (rounded down): what the
    /// account pays beyond its equity would deepen its deficit, which the insurance fund (or the pool)
    /// pays, and the owner of an insolvent account could flag it to collect that from them.
    function _flagReward(int256 mark, uint256 flagReward) internal view returns (uint256) {
        if (mark <= 0) return 0;
        return Math.min(flagReward, uint256(mark) / quoteUnit);
    }

    function _discount(uint64 startTime, AuctionParams memory p) internal view returns (uint256) {
        return LiquidationMath.discount(p.startDiscount, p.maxDiscount, _elapsed(startTime), p.duration);
    }

    /// @dev Seconds a schedule that started at `start` has run while somebody could act on it: the
    /// sequencer's last outage and the grace period after it do not count. While the sequencer is down or
    /// in its grace period every health read reverts, so nobody can bid, end, absorb or buy: counted
    /// through it, an auction begun a minute before two hours down met its first bid at the 10% maximum
    /// instead of 2.0044% (Alice 47.50 USDC poorer), and an insolvent one paid the whole deficit + dmax·MM
    /// (review round 115). The clock pauses rather than restarts: restarted, a one-minute blip sent an
    /// auction already at its maximum back to d0 and held the backstop's absorb off for 90 minutes
    /// (round 118, row 296). The restart rule (2·duration) counts on the same clock.
    function _elapsed(uint256 start) internal view returns (uint256) {
        uint256 from = _clockStart(start);
        return block.timestamp > from ? block.timestamp - from : 0;
    }

    /// @dev `start` moved later by the blocked windows after it, as the router has kept them
    /// (`IOracleRouter.sequencerClockStart`): the router sees every change of the uptime feed or its grace,
    /// and keeps the window the replaced one showed, so a change after an outage re-dates no auction
    /// (review round 166, §4 row 580). Read at each call, nothing is stored with the auction.
    function _clockStart(uint256 start) internal view returns (uint256) {
        return oracle.sequencerClockStart(start);
    }

    function _liquidatable(IMarginEngine.Health memory h) internal pure returns (bool) {
        return h.equityMaintenance < 0 || uint256(h.equityMaintenance) < h.maintenanceRequirement;
    }

    /// @dev Never on a health at the floor shocks (see `endAuction`): a bid that meets the floor's initial
    /// requirement leaves the auction open, and its next bid waits for the feed.
    function _restored(IMarginEngine.Health memory h) internal pure returns (bool) {
        return
            !h.volatilityUnavailable &&
            h.equityInitial >= 0 &&
            uint256(h.equityInitial) >= h.initialRequirement;
    }

    function _checkBounds(AuctionParams memory p) internal view {
        if (
            p.startDiscount > p.maxDiscount ||
            p.maxDiscount > MAX_DISCOUNT ||
            p.penalty > MAX_PENALTY ||
            p.maxDiscount + p.penalty >= WAD ||
            p.duration < MIN_DURATION ||
            p.duration > MAX_DURATION ||
            p.flagReward > maxFlagReward
        ) revert AuctionParamsOutOfBounds();
    }

    function _absDiff(uint256 a, uint256 b) internal pure returns (uint256) {
        return a > b ? a - b : b - a;
    }
}
