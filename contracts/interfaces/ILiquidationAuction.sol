// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IUpdateThrottle} from "./IUpdateThrottle.sol";

/// @title ILiquidationAuction
/// @notice Dutch auction of portfolio slices. When an account's equity_MM falls below its MM anyone may
/// start an auction (and earn a flag reward); bidders then buy a fraction f of the whole portfolio —
/// every position and every collateral balance, pro rata — for f·MtM·(1 − d(t)), where the discount
/// d(t) grows linearly from `startDiscount` to `maxDiscount` over `duration`. The fraction is capped
/// at the smallest one that brings the account back to equity_IM ≥ IM, so liquidations are partial.
/// What earlier bids of the same auction paid into the account (`Auction.paidIn`) is not part of the
/// portfolio later bids buy: sold again at a discount and charged the penalty again, it made eleven
/// 10% bids take 71% more from an account than one restoring bid (review round 19). With it held back,
/// the account loses the same however a liquidation is split.
/// MtM here, and in every payment, penalty and deficit, is the book counted in the quote token the
/// payments move (`ICollateralVault.markInQuote` plus the positions' value, which settles in quote
/// 1:1); the engine's equityMark counts the quote at its oracle price, which only a depeg tells apart.
/// An account whose mark-to-market equity is < 0 is insolvent: the bidder takes everything and the
/// insurance fund pays it an amount growing over the auction; what the fund cannot pay is charged to
/// the liquidity pool as socialised loss. A book worth exactly 0 is sold whole for nothing, as any
/// solvent one at its restoring fraction: an owner's own flag reward takes a mark of at most
/// `flagReward` in whole quote units to exactly 0, and the fund paid a book there maxDiscount·MM
/// (docs/reliability.md §4, row 211). An auction nobody bid on by the end of its duration is
/// absorbed at the maximum discount by the backstop account, a protocol-owned account whose value
/// belongs to the LPs: liquidations complete even where no bidder can unwind the book at a profit.
interface ILiquidationAuction is IUpdateThrottle {
    /// @notice Auction parameters. Fractions are WAD.
    /// @param startDiscount d0, the discount at the start.
    /// @param maxDiscount dmax, reached after `duration`.
    /// @param duration Seconds from d0 to dmax; an auction older than 2·duration is stale and can be
    /// restarted. The discount, the insolvency payout, the absorb's wait, the backstop's sale discount
    /// and the staleness pause through the sequencer's last outage and its grace period: nobody can act
    /// while it is down or in grace (review rounds 115, 118).
    /// @param penalty Share of the bought slice's MtM the liquidated account pays the insurance fund.
    /// @param flagReward Quote units paid from the liquidated account to whoever starts the auction, at
    /// most the account's mark-to-market equity (nothing from an insolvent account: its deficit is the
    /// insurance fund's); at most 100 whole quote tokens (`maxFlagReward`).
    struct AuctionParams {
        uint64 startDiscount;
        uint64 maxDiscount;
        uint64 penalty;
        uint32 duration;
        uint128 flagReward;
    }

    /// @notice State of one account's auction.
    /// @param deficit Quote units by which the account's mark-to-market equity was negative at the
    /// auction's last touch (start, restart, or a bid that left it open); 0 while solvent. Part of
    /// `pendingDeficit`.
    /// @param endedAt When the account's last auction ended (0 if none has): a start within
    /// `FLAG_REWARD_COOLDOWN` (1 day) of it pays no flag reward.
    /// @param paidIn Quote units this auction's bids paid into the account, net of penalties: held
    /// back from the portfolio later bids buy, while the rest of the book is worth more than 0 (a book
    /// under water without it is sold with it, as before any bid).
    struct Auction {
        uint64 startTime;
        bool active;
        uint128 deficit;
        uint40 endedAt;
        uint128 paidIn;
    }

    /// @notice The account is not liquidatable (equity_MM ≥ MM).
    error AccountHealthy(uint256 accountId, int256 equityMaintenance, uint256 maintenanceRequirement);
    /// @notice An auction for the account is already running and not stale.
    error AuctionAlreadyActive(uint256 accountId);
    /// @notice No auction is running for the account.
    error AuctionNotActive(uint256 accountId);
    /// @notice The fraction is zero or above 1.
    error InvalidFraction(uint256 fraction);
    /// @notice The bidder's account is the liquidated account.
    error SelfBid(uint256 accountId);
    /// @notice The payment would exceed the bidder's limit.
    error PaymentAboveLimit(uint256 payment, uint256 maxPayment);
    /// @notice The auction parameters are outside their hard bounds or moved more than a max step.
    error AuctionParamsOutOfBounds();
    /// @notice The pool's account (the counterparty of every trade) and the backstop account (which
    /// holds absorbed books for the LPs) are never auctioned: their value is the LPs' share price.
    error PoolNotLiquidatable();
    /// @notice `endAuction` on an account that is still liquidatable.
    error AccountNotHealthy(uint256 accountId);
    /// @notice `bidAndClose` needs a bidder account without positions, so only the slice is closed.
    error BidderHasPositions(uint256 bidderAccountId);
    /// @notice `bidAndClose` would leave `bidderAccountId` worth `loss` (USD WAD, at the oracle) less than
    /// before the bid: its closes cost more than the slice gave it. The closes fill at the market's price
    /// with no limit, so a trade just before them that moves the skew against them (and its reversal
    /// just after) took this from the bidder's account, up to the whole of its free quote (review round
    /// 89).
    error BidAndCloseLoss(uint256 bidderAccountId, uint256 loss);
    /// @notice `absorb` before the auction's discount has reached its maximum: bidders come first.
    error AbsorbTooEarly(uint256 accountId, uint256 availableAt);
    /// @notice `unwindBackstop` of a trade that would not only shrink the backstop's position (it is
    /// zero, has the position's sign, or would flip it): the backstop reduces its book, never adds.
    error UnwindNotReducing(address market, uint256 marketId, int256 size, int256 sizeDelta);
    /// @notice `buyBackstopCollateral` of nothing, of the quote token, or of more of `token` than the
    /// backstop holds (`available`).
    error InvalidCollateralPurchase(address token, uint256 amount, uint256 available);
    /// @notice `buyBackstopCollateral` for more than the buyer's positive quote balance: the backstop
    /// sells for cash, never on credit.
    error PaymentAboveQuoteBalance(uint256 buyerAccountId, int256 quoteBalance, uint256 payment);
    /// @notice `buyBackstopCollateral` while the engine or the vault is paused.
    error BackstopSalePaused();

    /// @notice `buyerAccountId` bought `amount` of `token` from the backstop for `payment` quote units,
    /// at the oracle's value less `discount` (WAD).
    event BackstopCollateralSold(
        uint256 indexed buyerAccountId,
        address indexed token,
        uint256 amount,
        uint256 payment,
        uint256 discount
    );

    /// @notice The backstop's positive quote balance (`amount` quote units) moved to the pool's account.
    event BackstopQuoteSwept(uint256 amount);

    /// @notice Emitted when an auction starts (or a stale one restarts). `equityMaintenance` and
    /// `maintenanceRequirement` are USD WAD, `flagReward` (what the starter was paid, quote units: the
    /// parameter capped at the account's mark-to-market equity and at the vault's quote; 0 for an
    /// insolvent account, on a restart, within the cooldown, or when the transfer failed).
    event AuctionStarted(
        uint256 indexed accountId,
        address indexed starter,
        int256 equityMaintenance,
        uint256 maintenanceRequirement,
        uint256 flagReward
    );
    /// @notice Emitted for every bid.
    /// @param fraction The share of the portfolio bought (WAD).
    /// @param payment Quote units paid by the bidder to the liquidated account (0 when insolvent).
    /// @param penalty Quote units the liquidated account paid the insurance fund.
    /// @param discount d(t) at the bid (WAD).
    event AuctionBid(
        uint256 indexed accountId,
        uint256 indexed bidderAccountId,
        uint256 fraction,
        uint256 payment,
        uint256 penalty,
        uint256 discount
    );
    /// @notice Emitted when the insurance fund (and, beyond it, the pool) pays for an insolvent account.
    event InsolvencyCovered(
        uint256 indexed accountId,
        uint256 indexed bidderAccountId,
        uint256 deficit,
        uint256 paidByInsurance,
        uint256 socialisedLoss
    );
    /// @notice Emitted when the pool absorbs a loss the insurance fund could not cover.
    event SocialisedLoss(uint256 indexed accountId, uint256 amount);
    /// @notice Emitted when a bid leaves the auction open: `paidIn` (quote units) is what the account's
    /// bids paid in, net of their penalties, that the next bid holds back (`auctions(accountId).paidIn`).
    /// The AuctionBid events alone do not give it: a bid on a book worth no more than it sells it with
    /// the book and keeps only the unsold part. An auction's end sets it to 0 (AuctionEnded).
    event PaidInUpdated(uint256 indexed accountId, uint256 paidIn);
    /// @notice Emitted when an auction ends. `reason`: 0 = account healthy/restored, 1 = fully
    /// liquidated, 2 = insolvency resolved.
    event AuctionEnded(uint256 indexed accountId, uint8 reason);
    /// @notice Emitted when the auction parameters change.
    event AuctionParamsUpdated(AuctionParams params);
    /// @notice Emitted when the recorded deficit of `accountId`'s auction changes (0 when it ends).
    /// @param deficit The account's deficit now recorded, quote units.
    /// @param pendingDeficit The sum over open auctions after the change (see `pendingDeficit`).
    event PendingDeficitUpdated(uint256 indexed accountId, uint256 deficit, uint256 pendingDeficit);

    /// @notice Starts (or restarts a stale) auction of `accountId`; reverts with AccountHealthy unless
    /// equity_MM < MM. A start pays the caller the flag reward from the account, capped at its
    /// mark-to-market equity (zero when insolvent) and at the quote tokens the vault holds (lent out,
    /// they must not stop a liquidation); a restart pays nothing (a stale auction stays open to
    /// bids at the maximum discount, so restarting is rarely useful), and neither does a start within a
    /// day (`FLAG_REWARD_COOLDOWN`) of the account's last auction ending: an account hovering at its
    /// maintenance line would otherwise pay the reward on every crossing (`endAuction` is open to anyone).
    /// The reward leaves the vault in tokens; if the quote token refuses the transfer (paused, or the
    /// caller blacklisted) the auction starts without it.
    function startAuction(uint256 accountId) external;

    /// @notice Starts the auction of each of `accountIds` as `startAuction` would, paying the caller each
    /// start's flag reward, and skips an account `startAuction` would refuse (the pool or backstop, an
    /// auction running and not stale, an account not liquidatable) instead of reverting: in a crash a
    /// keeper opens many auctions in one transaction, and a rival's start or a price move since its scan
    /// does not cost it the rest. A valuation that reverts (a stale or broken feed) reverts the batch.
    /// @return started How many auctions started (or stale ones restarted); AuctionStarted says which.
    function startAuctions(uint256[] calldata accountIds) external returns (uint256 started);

    /// @notice Buys up to `fraction` (WAD) of `accountId`'s portfolio into `bidderAccountId`, paying at
    /// most `maxPayment` quote units. The caller must be authorised on `bidderAccountId`, which must
    /// satisfy its initial requirement afterwards. An insolvent account's book is taken whole, whatever
    /// `fraction`, with its deficit and the fund's payout: `maxPayment` then bounds the deficit less the
    /// payout (what the take costs the bidder at mark; `quoteBid`'s payment), PaymentAboveLimit above it.
    /// The bidder account takes every market of the slice: an ISOLATED bidder refuses a book of two
    /// markets or more, or of another market than its own (the engine's IsolatedAccountMarketTaken), and
    /// a CROSS one beyond MAX_MARKETS_PER_ACCOUNT (TooManyMarkets).
    /// @return filled The fraction actually bought (capped at the restoring fraction).
    /// @return payment Quote units paid (0 when insolvent).
    function bid(
        uint256 accountId,
        uint256 bidderAccountId,
        uint256 fraction,
        uint256 maxPayment
    ) external returns (uint256 filled, uint256 payment);

    /// @notice Like `bid`, then closes every position of the slice against the pool in the same
    /// transaction, so a keeper needs capital only for the moment of the trade and keeps the discount
    /// (less trading fees). The caller must be authorised on `bidderAccountId` (as for `bid`), and this
    /// contract must be allowed to trade it: a trading grant (`IAccounts.setTrader`, unlimited, what the
    /// keeper gives) or an ERC-721 approval. The account must hold no positions before the bid
    /// (BidderHasPositions). The closes skip the markets' per-trade reduction checks (closing one leg of
    /// a hedged slice raises the requirement of the rest); the account, flat after the last close, must
    /// meet its initial requirement. A flat account without quote debt and not in auction meets it at
    /// any price, so it is not priced then: another token in the bidder account (the collateral of
    /// earlier slices) cannot tie the bid to that token's feed. A book holding an option series past its
    /// expiry and not yet settled cannot be closed (the option market's SeriesExpired): `bidAndClose`
    /// reverts until `settleSeries` (anyone) records its price, while `bid` takes the slice (a settled,
    /// unpaid position is paid out as its slice moves). The bidder-account limits of `bid` apply. The
    /// whole call may not leave the bidder worth less at the oracle than before it (BidAndCloseLoss):
    /// `maxPayment` bounds only the auction's part, and the closes, which take the market's fill with no
    /// limit, could otherwise be sandwiched for the bidder's quote (a bid at a loss goes through `bid`).
    function bidAndClose(
        uint256 accountId,
        uint256 bidderAccountId,
        uint256 fraction,
        uint256 maxPayment
    ) external returns (uint256 filled, uint256 payment);

    /// @notice The bidder of last resort: once `accountId`'s auction has run its duration (the discount
    /// is at `maxDiscount`) and the account is still below maintenance, the backstop account
    /// (`backstopAccountId`) buys the slice a bid would fill at that discount, with the same payment and
    /// penalty, and keeps it: no trade, so the skew, open interest and every price stay as they were.
    /// An insolvent account's whole book goes to it; the insurance fund pays it the deficit and what
    /// the fund cannot pay is moved to it from the pool's account (SocialisedLoss). Anyone may call it;
    /// it pays no reward. Emits AuctionBid (and for an insolvent account InsolvencyCovered) with the
    /// backstop as the bidder. Reverts with AuctionNotActive, AbsorbTooEarly or AccountHealthy.
    /// @dev The backstop needs no capital and has no margin check: the LPs own it (its value is part of
    /// `LiquidityPool.totalAssets`), and against the pool's account, which holds the other side of every
    /// position, its perps and options are a hedge. Keepers bid only when the discount pays for closing
    /// the slice; without a backstop an account nobody bids on stays below maintenance until it is
    /// insolvent (docs/reliability.md §3, finding 3). Nothing is priced off the skew, so there is
    /// nothing for a caller to move within the transaction (an earlier design netted the slice into the
    /// pool's account and could be sandwiched: docs/reliability.md §4, rows 33–35).
    /// @return filled The fraction the backstop took.
    /// @return payment Quote units the backstop paid the account (0 when insolvent).
    function absorb(uint256 accountId) external returns (uint256 filled, uint256 payment);

    /// @notice Trades `sizeDelta` of the backstop's position in `marketId` of `market` against the pool,
    /// at the market's fill with its fees and the given limit and deadline; only a reduction (same
    /// rules as IMarket.trade otherwise). Backstop role.
    /// @dev Against the pool the backstop's book is a hedge, so unwinding it moves no value between the
    /// LPs and the traders beyond the fee's insurance share: it takes the absorbed positions out of the
    /// skew, which then prices the LPs' real imbalance again. Restricted because the caller chooses the
    /// moment, and a trader who moved the skew first would earn the premium the unwind then pays
    /// (bounded by `limitPrice`). Reverts with UnwindNotReducing, or the market's errors.
    /// @dev Ends by sweeping the backstop's quote above what its remaining book requires to the pool
    /// (`sweepBackstopQuote`), as a collateral sale does.
    function unwindBackstop(
        address market,
        uint256 marketId,
        int256 sizeDelta,
        uint256 limitPrice,
        uint256 deadline
    ) external;

    /// @notice Moves the backstop's positive quote balance to the pool's account: all of it once the
    /// backstop holds no position, else what it holds above its book's initial requirement (the rest
    /// pays that book's losses; swept, a loss became a quote debt nothing repays). Anyone, at any time;
    /// moves nothing (returns 0) at a balance ≤ 0, without a surplus, or while the backstop's health does
    /// not read or rests on the floor shocks (a failed price or volatility feed).
    /// @dev The backstop's quote (the cash of the books it absorbed, its discount, its unwinds' gains, the
    /// fund's payouts) is the LPs' and counts in `LiquidityPool.totalAssets`, but LPs withdraw only from
    /// the pool's account: left in the backstop it was out of every LP's reach for good (review round 45:
    /// after an absorb and an unwind, 6,785.58 USDC of the only LP's 1,006,819.54 could not be redeemed).
    /// Value does not move (both accounts are the LPs'), so the share price is unchanged. What stays is
    /// what the pool's free margin deducts anyway (the backstop's shortfall against the same initial
    /// requirement), so the LPs' free margin rises by what moves.
    /// @return amount Quote units moved.
    function sweepBackstopQuote() external returns (uint256 amount);

    /// @notice The backstop account: created by this contract at deployment and owned by it, never
    /// auctioned, with no margin requirement; it holds what `absorb` takes until `unwindBackstop`
    /// (positions) and `buyBackstopCollateral` (collateral) take it out.
    function backstopAccountId() external view returns (uint256);

    /// @notice Sells `amount` of a collateral token the backstop holds (anything but the quote token) to
    /// `buyerAccountId`, which pays its value at the oracle less the current backstop discount, in quote
    /// at the quote's price, out of its positive quote balance (never on credit) into the backstop (the
    /// cash replaces the collateral as its book's margin), and must meet its initial requirement after;
    /// the sale ends with `sweepBackstopQuote`, which moves what the book does not need to the pool's
    /// account. Anyone authorised for the account; not
    /// while the engine or the vault is paused.
    /// @dev A Dutch auction: the discount grows from 0 at the backstop's last absorb to the auction's
    /// `maxDiscount` over its `duration` (`backstopCollateralQuote`), so the collateral sells at the
    /// smallest discount a buyer takes. Held, it is the LPs' exposure to the token's price, taken from
    /// accounts that were liquidated when that price was falling. Reverts with
    /// InvalidCollateralPurchase, BackstopSalePaused, PaymentAboveLimit above `maxPayment`,
    /// PaymentAboveQuoteBalance, the vault's and oracle's errors, and the engine's InsufficientMargin
    /// or AccountFrozen for the buyer.
    /// @return payment Quote units paid into the backstop.
    function buyBackstopCollateral(
        uint256 buyerAccountId,
        address token,
        uint256 amount,
        uint256 maxPayment
    ) external returns (uint256 payment);

    /// @notice What `buyBackstopCollateral(…, token, amount, …)` would pay now, and at which discount.
    /// Reverts as it does for the amount and the price.
    function backstopCollateralQuote(
        address token,
        uint256 amount
    ) external view returns (uint256 payment, uint256 discount);

    /// @notice When the backstop last absorbed a book: its collateral's discount starts from 0 there.
    function lastAbsorbAt() external view returns (uint64);

    /// @notice Ends the auction of an account that is healthy again (e.g. after an owner top-up). While a
    /// volatility feed of the account's book fails, its health is a lower bound that cannot show it
    /// healthy: reverts with the feed's error (a bid's restoration does not end the auction either).
    function endAuction(uint256 accountId) external;

    /// @notice Raises the recorded deficit of `accountId`'s running auction to its deficit now (−equity at
    /// mark), keeping `pendingDeficit` and the LP share price current between bids: an auction started
    /// while the account was solvent otherwise records nothing however far prices then move. Never
    /// lowers it, though a bid (even of one wei of the book, for one quote unit), a restart or the
    /// auction's end does: what keeps anyone from depositing LP at the price a stale record depresses,
    /// lowering it and redeeming at once is the pool's holding period and exit delay. Anyone may call it
    /// (keepers do before bidding). Reverts with AuctionNotActive.
    function updateDeficit(uint256 accountId) external;

    /// @notice Whether `accountId` is frozen by a running auction (deposits and risk-reducing actions
    /// only).
    function isFrozen(uint256 accountId) external view returns (bool);

    /// @notice The discount d(t) of `accountId`'s auction now (WAD).
    function currentDiscount(uint256 accountId) external view returns (uint256);

    /// @notice The first timestamp at which `absorb` may take `accountId`'s running auction: `duration`
    /// after its start, plus the sequencer's last outage and grace period if they interrupted it (a time
    /// a later outage moves). Reverts with AuctionNotActive when none runs.
    /// @dev Keepers and the SDK read it rather than adding `duration` to `startTime` themselves.
    function absorbableAt(uint256 accountId) external view returns (uint256);

    /// @notice What a bid of `fraction` would fill and pay now (for keepers and frontends). Reverts
    /// where `bid` would before pricing: AuctionNotActive, InvalidFraction (0 or above 1), AccountHealthy
    /// (equity_MM ≥ MM, though the auction still runs).
    /// @return filled Fraction after the cap.
    /// @return payment Quote units the bidder would pay; for an insolvent account, the deficit less the
    /// payout (0 once the payout covers it): not paid to anyone, but what the take costs the bidder at
    /// mark and what `maxPayment` must cover.
    /// @return insurancePayout Quote units the bidder would receive for taking an insolvent account.
    function quoteBid(
        uint256 accountId,
        uint256 fraction
    ) external view returns (uint256 filled, uint256 payment, uint256 insurancePayout);

    /// @notice The auction parameters (see AuctionParams).
    function params()
        external
        view
        returns (
            uint64 startDiscount,
            uint64 maxDiscount,
            uint64 penalty,
            uint32 duration,
            uint128 flagReward
        );

    /// @notice The auction state of `accountId`.
    function auctions(
        uint256 accountId
    ) external view returns (uint64 startTime, bool active, uint128 deficit, uint40 endedAt, uint128 paidIn);

    /// @notice Σ of the deficits of open auctions, in quote units: for each insolvent account, −equity
    /// at mark as of its auction's last touch (start, restart, a bid that left it open, or
    /// `updateDeficit`), removed when
    /// the auction ends. The loss the insurance fund and then the pool will pay when the books are
    /// taken; the pool's share price deducts what the fund cannot cover (`LiquidityPool.totalAssets`).
    /// A snapshot: price moves after the last touch are not in it.
    function pendingDeficit() external view returns (uint256);
}
