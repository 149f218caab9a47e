// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

/// @title IOracleRouter
/// @notice The single entry point for every price and volatility the protocol uses. Every answer is
/// validated (positive, fresh, complete round, within bounds, sources agree, L2 sequencer up and out
/// of its grace period) and scaled to 18 decimals (WAD). Anything that fails reverts: the protocol
/// fails closed.
interface IOracleRouter {
    /// @notice One Chainlink-compatible source.
    /// @param aggregator The feed (a proxy on live networks).
    /// @param heartbeat Maximum age of an answer, in seconds, before it counts as stale.
    /// @param decimals The feed's `decimals()`, read when the source is configured.
    /// @param phaseId The proxy's phase then (a Chainlink round id's high 16 bits; 0 for a feed that is
    /// not a proxy). A round of another phase comes from another aggregator, whose decimals may differ:
    /// it is scaled with the feed's current `decimals()` instead.
    struct Source {
        AggregatorV3Interface aggregator;
        uint32 heartbeat;
        uint8 decimals;
        uint16 phaseId;
    }

    /// @notice A primary feed that `configureAsset` replaced, kept so that a series that expired while it
    /// was primary settles on its rounds (`getSettlementPrice`). No view returns it: `PrimaryRetired`
    /// carries it and `settlementFeed` reads it (with a view, a health check of one underlying cost
    /// +78 gas over the code before the history instead of +33: review round 162, §4 row 574).
    struct RetiredPrimary {
        Source source;
        uint48 retiredAt;
        uint80 lastRound;
        uint48 lastUpdatedAt;
    }

    /// @notice Configuration input for one asset's price.
    /// @param primary The primary feed.
    /// @param primaryHeartbeat Max age of the primary feed's answer, in seconds.
    /// @param secondaries Zero, one or two further feeds. With one, the primary is used and the two
    /// may differ by at most `maxDeviation`. With two (three sources), the median of the sources that
    /// pass validation is used, and at least two must pass.
    /// @param secondaryHeartbeats Max age for each secondary feed.
    /// @param minPrice Lowest accepted price (WAD), exclusive of 0.
    /// @param maxPrice Highest accepted price (WAD).
    /// @param maxDeviation Largest accepted relative difference between two sources (WAD, 0.02e18 = 2%),
    /// measured as |a - b| / min(a, b) and compared exactly (no rounding); a difference equal to it passes.
    struct AssetInput {
        AggregatorV3Interface primary;
        uint32 primaryHeartbeat;
        AggregatorV3Interface[] secondaries;
        uint32[] secondaryHeartbeats;
        uint256 minPrice;
        uint256 maxPrice;
        uint256 maxDeviation;
    }

    /// @notice A source's answer is zero or negative.
    /// @param aggregator The source that answered.
    /// @param answer Its raw answer.
    error InvalidPrice(address aggregator, int256 answer);
    /// @notice A source's answer is older than the source's heartbeat.
    /// @param aggregator The source that answered.
    /// @param updatedAt When the answer was last updated.
    /// @param heartbeat The source's maximum age, in seconds.
    error StalePrice(address aggregator, uint256 updatedAt, uint256 heartbeat);
    /// @notice A round is not complete: `updatedAt == 0`, `answeredInRound < roundId`, or `updatedAt`
    /// lies in the future (a round the chain cannot have seen is not trusted). Also raised for a
    /// sequencer-uptime round with `startedAt == 0` or in the future.
    /// @param aggregator The source (or sequencer-uptime feed) that answered.
    /// @param roundId The round it reported.
    error IncompleteRound(address aggregator, uint80 roundId);
    /// @notice A source's `latestRoundData()` call reverted; or, for a round of a phase other than the
    /// configured one, its `decimals()` call reverted or answered above 36; or its `getRoundData()`
    /// reverted for a settlement round (`getPriceAtRound`, `getSettlementPrice`); or `configureAsset`
    /// was left too little gas to read the primary it retires (a starved read would pass for a dead
    /// feed and move the settlement of the series that expired under it to its successor), or
    /// `configureSequencerFeed` too little to read the outage window of the uptime feed it replaces (a
    /// starved read would carry no window, and re-date every auction that crossed it). With three
    /// sources such a source is dropped like any other failing one.
    /// @param aggregator The source that failed.
    error SourceUnavailable(address aggregator);
    /// @notice The scaled price (or volatility) is outside the asset's configured bounds.
    /// @param asset The asset (or underlying, for a volatility).
    /// @param price The scaled value (WAD); `type(uint256).max` if scaling overflowed.
    /// @param minPrice The lower bound (WAD).
    /// @param maxPrice The upper bound (WAD).
    error PriceOutOfBounds(bytes32 asset, uint256 price, uint256 minPrice, uint256 maxPrice);
    /// @notice Two sources differ by more than the asset's `maxDeviation`, where the deviation of
    /// `a` and `b` is `|a - b| / min(a, b)`.
    /// @param asset The asset.
    /// @param priceA The first price (the primary's, with two sources configured).
    /// @param priceB The second price.
    error PriceDeviation(bytes32 asset, uint256 priceA, uint256 priceB);
    /// @notice With three sources configured, fewer than two passed validation.
    /// @param asset The asset.
    /// @param valid How many sources passed.
    error NotEnoughValidSources(bytes32 asset, uint256 valid);
    /// @notice The L2 sequencer-uptime feed reports the sequencer down (any answer other than 0).
    error SequencerDown();
    /// @notice The sequencer is back up but its grace period has not elapsed.
    /// @param upSince When the sequencer came back up (the uptime round's `startedAt`).
    /// @param gracePeriod The grace period, in seconds.
    error GracePeriodNotOver(uint256 upSince, uint256 gracePeriod);
    /// @notice No price (or volatility) feed is configured for the asset.
    /// @param asset The asset (or underlying).
    error UnknownAsset(bytes32 asset);
    /// @notice A configuration value is outside what the router accepts.
    error InvalidConfig();

    /// @notice Emitted when an asset's price sources are set or replaced.
    event AssetConfigured(
        bytes32 indexed asset,
        address indexed primary,
        uint256 sourceCount,
        uint256 minPrice,
        uint256 maxPrice,
        uint256 maxDeviation
    );
    /// @notice Emitted when `configureAsset` replaces `asset`'s primary feed with another one: the series
    /// that expired while `feed` was primary settle on its rounds up to `lastRound`.
    /// @param lastRound The feed's latest round at its retirement (0 when it could not be read).
    /// @param lastUpdatedAt That round's `updatedAt` (0 when it could not be read).
    event PrimaryRetired(
        bytes32 indexed asset,
        address indexed feed,
        uint80 lastRound,
        uint256 lastUpdatedAt
    );
    /// @notice Emitted when an underlying's volatility feed is set or replaced.
    event VolatilityFeedConfigured(
        bytes32 indexed underlying,
        address indexed aggregator,
        uint32 heartbeat,
        uint256 minVol,
        uint256 maxVol
    );
    /// @notice Emitted when the L2 sequencer-uptime feed or its grace period changes.
    event SequencerFeedConfigured(address indexed feed, uint32 gracePeriod);
    /// @notice Emitted when `configureSequencerFeed` keeps the blocked window the replaced configuration
    /// showed (`sequencerClockStart` counts it for clocks begun before it ends).
    /// @param from When it began (the sequencer going down; the previous configuration's time when earlier).
    /// @param until When it ended: the end of its grace period, or the change when that came first.
    /// @param restartBefore A clock begun before this restarts at `until` instead of pausing (it also
    /// crossed an outage the feed does not show).
    event SequencerOutageCarried(uint256 from, uint256 until, uint256 restartBefore);

    /// @notice Sets (or replaces) the price sources of `asset`. Governance only (the timelock).
    /// @dev Reverts with `InvalidConfig` unless: the primary is set; at most two secondaries, each
    /// with a heartbeat, all feeds distinct; every heartbeat in (0, 2 days]; every feed's
    /// `decimals()` ≤ 36; 0 < minPrice < maxPrice ≤ type(uint120).max; maxDeviation in
    /// (0, 0.5e18] with secondaries and 0 without (a single source has nothing to deviate from); and,
    /// for every feed that exposes its aggregator's circuit breaker (`aggregator()` with `minAnswer()`
    /// and `maxAnswer()`), minPrice above 1.1 × its floor and 1.1 × maxPrice below its ceiling (scaled
    /// to WAD), so a feed stuck at or near its floor or ceiling (an OCR aggregator keeps the last median
    /// inside its band) reads as `PriceOutOfBounds`, never as a price. A new primary feed retires the
    /// old one with its latest round (`RetiredPrimary`, `PrimaryRetired`): series that expired under it
    /// still settle on it (`getSettlementPrice`). Reverts with `SourceUnavailable` when too little gas
    /// is left to read that round (less than 100,000 for the read).
    function configureAsset(bytes32 asset, AssetInput calldata input) external;

    /// @notice Sets (or replaces) the annualised volatility feed of `underlying` (WAD after scaling,
    /// 0.8e18 = 80%). Governance only (the timelock).
    /// @dev Reverts with `InvalidConfig` unless the feed is set, heartbeat in (0, 2 days],
    /// `decimals()` ≤ 36, 0 < minVol < maxVol ≤ 10e18 (1000%), and [minVol, maxVol] inside the feed's
    /// circuit breaker with a tenth to spare where it exposes one (as `configureAsset`).
    function configureVolatilityFeed(
        bytes32 underlying,
        AggregatorV3Interface aggregator,
        uint32 heartbeat,
        uint256 minVol,
        uint256 maxVol
    ) external;

    /// @notice Sets the L2 sequencer-uptime feed (address(0) on L1) and its grace period. Governance
    /// only (the timelock).
    /// @dev Reverts with `InvalidConfig` unless the grace period is in (0, 1 day] with a
    /// feed, and 0 without one. First keeps the blocked window the replaced feed and grace show up to now
    /// (`SequencerOutageCarried`): a swap, a removal or a grace change re-dates no clock that window paused.
    /// A replaced feed that reverts or answers garbage carries nothing (it can always be replaced); one
    /// left too little gas to be read reverts with `SourceUnavailable`.
    function configureSequencerFeed(AggregatorV3Interface feed, uint32 gracePeriod) external;

    /// @notice The validated price of `asset`, in USD with 18 decimals.
    /// @dev Checks the sequencer first. One source: its price. Two sources: both must pass and be
    /// within `maxDeviation` of each other; returns the primary's price. Three sources: failing
    /// sources are dropped; three left: the median; two left: within `maxDeviation`, their average
    /// rounded down; fewer: `NotEnoughValidSources`.
    function getPrice(bytes32 asset) external view returns (uint256 price);

    /// @notice The price of `asset` in round `roundId` of its current primary feed, at a past time
    /// (settlement reads `getSettlementPrice`, which knows the feeds replaced since). Validated like `getPrice` (complete round, positive, within bounds) except for age, and
    /// without a sequencer check: a past round's value does not depend on when it is read.
    /// @return price The scaled price (WAD).
    /// @return updatedAt When the round was last updated.
    function getPriceAtRound(
        bytes32 asset,
        uint80 roundId
    ) external view returns (uint256 price, uint256 updatedAt);

    /// @notice The settlement price of `asset` at `time` (an option expiry): the first round at or after
    /// `time` posted by a primary feed while it was primary. That is the round of the feed that was
    /// primary at `time`, if that feed's latest round when it was retired is at or after `time`;
    /// otherwise (it posted nothing from `time` until its retirement, often why it was replaced) its
    /// successor's first round at or after the swap, and so on down the swaps; the current primary's
    /// rounds have no end. `roundId` must be that round in the phase of the feed's last round (its
    /// latest for the current primary), proven first by the round before it in the same phase
    /// (`updatedAt` nonzero and before the time sought), or by having none: round 1 of the phase the
    /// feed was configured in (a feed configured before its first answer) — or, with `phaseStart`
    /// (governance's path, for an aggregator upgrade the proof cannot cross), the first round of a
    /// phase after the first and at most the last one, at or after the time sought. Validated like
    /// `getPriceAtRound` (complete, positive, within bounds; a reverting `getRoundData` is
    /// `SourceUnavailable`).
    /// @return price The scaled price (WAD); 0 when `roundId` is not that round (the caller's refusal).
    /// @return updatedAt When the round was last updated (0 with price 0).
    function getSettlementPrice(
        bytes32 asset,
        uint256 time,
        uint80 roundId,
        bool phaseStart
    ) external view returns (uint256 price, uint256 updatedAt);

    /// @notice Where `getSettlementPrice(asset, time, …)` looks: the feed, the time from which its first
    /// round is sought (`time`, or a later swap's time when the feeds before posted nothing after it),
    /// and the feed's last round that may settle (its latest, for the current primary) with that
    /// round's `updatedAt`. Settlement keepers search `feed` for its first round at or after `from`.
    function settlementFeed(
        bytes32 asset,
        uint256 time
    ) external view returns (address feed, uint256 from, uint80 lastRound, uint256 lastUpdatedAt);

    /// @notice The validated annualised volatility of `underlying`, 18 decimals.
    function getVolatility(bytes32 underlying) external view returns (uint256 volatility);

    /// @notice `getPrice(underlying)` and `getVolatility(underlying)` in one call, with one sequencer
    /// check: what a margin evaluation reads per underlying.
    function getPriceAndVolatility(
        bytes32 underlying
    ) external view returns (uint256 price, uint256 volatility);

    /// @notice `getPriceAndVolatility`, except that a volatility feed failing its checks (stale, out of
    /// bounds, incomplete, zero) reads as volatility 0 instead of reverting. The price, the sequencer and
    /// a configured volatility feed are required as there. What the engine's health views read: a
    /// group of perps margins at its floor shocks while its volatility feed is down (see MarginEngine).
    function getPriceAndVolatilityOrZero(
        bytes32 underlying
    ) external view returns (uint256 price, uint256 volatility);

    /// @notice Reverts unless the L2 sequencer is up and past its grace period (no-op on L1).
    function checkSequencer() external view;

    /// @notice Whether `asset` has price sources configured.
    function hasPrice(bytes32 asset) external view returns (bool);

    /// @notice The primary feed of `asset` (address(0) if unknown). A series may settle on a feed it
    /// replaced: settlement keepers look up round ids on `settlementFeed`.
    function primaryFeed(bytes32 asset) external view returns (address);

    /// @notice The price configuration of `asset` (empty `sources` if unknown).
    /// @return sources The primary first, then the secondaries.
    /// @return minPrice Lowest accepted price (WAD).
    /// @return maxPrice Highest accepted price (WAD).
    /// @return maxDeviation Largest accepted deviation between two sources (WAD).
    function assetConfig(
        bytes32 asset
    )
        external
        view
        returns (Source[] memory sources, uint256 minPrice, uint256 maxPrice, uint256 maxDeviation);

    /// @notice The volatility feed of `underlying` (a zero `source` if unknown) and its bounds (WAD).
    function volatilityConfig(
        bytes32 underlying
    ) external view returns (Source memory source, uint256 minVol, uint256 maxVol);

    /// @notice The L2 sequencer-uptime feed (address(0) on L1) and its grace period, in seconds.
    function sequencerConfig() external view returns (AggregatorV3Interface feed, uint32 gracePeriod);

    /// @notice When a clock begun at `start` (an auction's) counts from: `start` moved later by the time
    /// since then in which the sequencer was down or in its grace period, so that nobody could act on a
    /// price. Before the last `configureSequencerFeed` that is the window it carried, after it the last
    /// outage the configured feed shows. A clock begun inside a window, or where the feed cannot show the
    /// sequencer up from before `start` until the window, restarts at the window's end.
    /// @dev Reverts if the configured uptime feed's `latestRoundData` reverts.
    function sequencerClockStart(uint256 start) external view returns (uint256);

    /// @notice The last blocked window the configured uptime feed shows: from the sequencer going down
    /// (0 if the feed does not show it) to the end of the grace period after it came back (now while
    /// down), and the earliest start it pauses rather than restarts (0: any; 0 also when the feed was
    /// configured inside the window: the outage before it was not the router's). All 0 without a feed.
    function sequencerOutage() external view returns (uint256 from, uint256 until, uint256 restartBefore);
}
