// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {IChainlinkCircuitBreaker, IChainlinkProxy} from "../interfaces/IChainlinkFeedInternals.sol";
import {IOracleRouter} from "../interfaces/IOracleRouter.sol";

/// @title OracleRouter
/// @notice Validated Chainlink prices and volatilities, scaled to WAD. See `IOracleRouter`.
/// @dev Order of checks on one source: round complete (`updatedAt != 0`, not in the future,
/// `answeredInRound >= roundId`), answer positive, age within the heartbeat, scaled value within
/// bounds (with the decimals of the round's phase: `_decimalsOf`). Completeness goes first because a
/// missing round reads as answer 0, and "incomplete" is the truer error for it. Each check is written
/// once, in `_tryLatest`, which returns the failure as ABI-encoded custom error instead of reverting:
/// single and dual sources revert with it, the three-source median drops the source.
contract OracleRouter is IOracleRouter, AccessManaged {
    /// @notice Longest accepted heartbeat: Chainlink's slowest feeds update every 24 h, plus slack.
    uint32 public constant MAX_HEARTBEAT = 2 days;
    /// @notice Longest accepted sequencer grace period (Chainlink suggests one hour).
    uint32 public constant MAX_GRACE_PERIOD = 1 days;
    /// @notice Largest accepted `maxDeviation` between two sources (50%).
    uint256 public constant MAX_DEVIATION = 0.5e18;
    /// @notice Largest accepted `decimals()` of a feed (so 10**decimals fits with room to spare).
    uint8 public constant MAX_DECIMALS = 36;
    /// @notice Largest accepted upper bound of a volatility (1000% a year).
    uint256 public constant MAX_VOLATILITY = 10e18;

    uint256 private constant WAD = 1e18;
    /// @dev A source's bounds keep 1/10 of the aggregator's band edge clear of it: an OCR aggregator refuses
    /// a median outside its band, so the feed stops at the last median inside it, near but above the
    /// floor (LUNA's stopped at 0.107 on a 0.10 floor), not at the floor (review round 34).
    uint256 private constant CIRCUIT_BREAKER_MARGIN = 10;

    /// @dev Five slots. A single-source price reads two of them: `sources[0]` (aggregator, heartbeat,
    /// decimals and phase share one slot) and the slot holding the count and bounds. Bounds are uint120
    /// (1.3e18 USD in WAD) so they fit beside the count, and so the deviation arithmetic cannot overflow.
    struct AssetConfig {
        uint8 sourceCount; // 1, 2 or 3; 0 = unknown asset
        uint120 minPrice;
        uint120 maxPrice;
        uint64 maxDeviation; // read only with secondaries
        Source[3] sources; // primary first
    }

    /// @dev Two slots.
    struct VolatilityConfig {
        Source source;
        uint128 minVol;
        uint128 maxVol;
    }

    /// @dev Gas given to the retiring primary's `latestRoundData()` (a proxy's costs ~15,000): with that
    /// much, a failure is the feed's own, not the executor's gas limit.
    uint256 private constant RETIREMENT_READ_GAS = 100_000;

    mapping(bytes32 asset => AssetConfig) private _assets;
    /// @dev Per asset, the primaries `configureAsset` replaced, oldest first (two slots each).
    mapping(bytes32 asset => RetiredPrimary[]) private _retired;
    mapping(bytes32 underlying => VolatilityConfig) private _volatilities;
    // One slot, read by every price (and by every auction clock).
    AggregatorV3Interface private _sequencerFeed;
    uint32 private _gracePeriod;
    /// @dev When `configureSequencerFeed` last ran: the configured feed speaks for the time after it, the
    /// carried window for the time before (2^32 s is the year 2106).
    uint32 private _sequencerSince;
    /// @dev End of the carried window (≤ `_sequencerSince`): a clock begun after it reads no more.
    uint32 private _carriedUntil;
    /// @dev The rest of the carried window, read only by clocks begun before `_carriedUntil`.
    CarriedOutage private _carried;

    /// @dev The blocked window the configurations before the last showed (`_carryOutage`).
    struct CarriedOutage {
        uint64 from;
        uint64 restartBefore;
    }

    /// @dev Gas given to the replaced uptime feed's outage read (`sequencerOutage`: three rounds, ~15,000
    /// each through a proxy).
    uint256 private constant OUTAGE_READ_GAS = 300_000;

    /// @param authority The protocol's `AccessManager`.
    constructor(address authority) AccessManaged(authority) {}

    // ---------------------------------------------------------------------------------------------
    // Configuration
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IOracleRouter
    function configureAsset(bytes32 asset, AssetInput calldata input) external restricted {
        uint256 secondaryCount = input.secondaries.length;
        if (secondaryCount > 2 || input.secondaryHeartbeats.length != secondaryCount) revert InvalidConfig();
        if (input.minPrice == 0 || input.minPrice >= input.maxPrice || input.maxPrice > type(uint120).max) {
            revert InvalidConfig();
        }
        // A deviation bound only means something between two sources; refuse one that would be ignored.
        if (secondaryCount == 0 ? input.maxDeviation != 0 : !_inRange(input.maxDeviation, MAX_DEVIATION)) {
            revert InvalidConfig();
        }

        AssetConfig storage config = _assets[asset];
        // A series that expired under the old primary settles on its rounds (`getSettlementPrice`).
        Source memory previous = config.sources[0];
        if (address(previous.aggregator) != address(0) && previous.aggregator != input.primary) {
            _retire(asset, previous);
        }
        config.sourceCount = uint8(secondaryCount + 1);
        config.minPrice = uint120(input.minPrice);
        config.maxPrice = uint120(input.maxPrice);
        config.maxDeviation = uint64(input.maxDeviation);
        config.sources[0] = _newSource(input.primary, input.primaryHeartbeat, input.minPrice, input.maxPrice);
        for (uint256 i = 0; i < 2; ++i) {
            if (i < secondaryCount) {
                AggregatorV3Interface feed = input.secondaries[i];
                // The same feed twice would make the deviation check and the median meaningless.
                if (feed == input.primary || (i == 1 && feed == input.secondaries[0])) revert InvalidConfig();
                config.sources[i + 1] = _newSource(
                    feed,
                    input.secondaryHeartbeats[i],
                    input.minPrice,
                    input.maxPrice
                );
            } else {
                delete config.sources[i + 1]; // a replaced configuration may have had more sources
            }
        }
        emit AssetConfigured(
            asset,
            address(input.primary),
            secondaryCount + 1,
            input.minPrice,
            input.maxPrice,
            input.maxDeviation
        );
    }

    /// @inheritdoc IOracleRouter
    function configureVolatilityFeed(
        bytes32 underlying,
        AggregatorV3Interface aggregator,
        uint32 heartbeat,
        uint256 minVol,
        uint256 maxVol
    ) external restricted {
        if (minVol == 0 || minVol >= maxVol || maxVol > MAX_VOLATILITY) revert InvalidConfig();
        _volatilities[underlying] = VolatilityConfig({
            source: _newSource(aggregator, heartbeat, minVol, maxVol),
            minVol: uint128(minVol),
            maxVol: uint128(maxVol)
        });
        emit VolatilityFeedConfigured(underlying, address(aggregator), heartbeat, minVol, maxVol);
    }

    /// @inheritdoc IOracleRouter
    function configureSequencerFeed(AggregatorV3Interface feed, uint32 gracePeriod) external restricted {
        if (address(feed) == address(0) ? gracePeriod != 0 : !_inRange(gracePeriod, MAX_GRACE_PERIOD)) {
            revert InvalidConfig();
        }
        _carryOutage();
        (_sequencerFeed, _gracePeriod, _sequencerSince) = (feed, gracePeriod, uint32(block.timestamp));
        emit SequencerFeedConfigured(address(feed), gracePeriod);
    }

    /// @dev Keeps the window the configuration being replaced shows from its own start up to now, so that
    /// no clock it paused is re-dated by the change (review round 166, §4 row 580: a swap one second
    /// before the first bid after the grace hour sold Alice's book at 10% instead of 2.2711%). Read through
    /// a gas-capped self-call: a feed that reverts, has no code or answers garbage carries nothing rather
    /// than locking governance out of replacing it, exactly when it has to.
    function _carryOutage() private {
        AggregatorV3Interface feed = _sequencerFeed;
        if (address(feed) == address(0)) return;
        // A starved read would pass for a broken feed and carry nothing (as `_retire`).
        if (gasleft() < OUTAGE_READ_GAS + OUTAGE_READ_GAS / 63 + 5_000)
            revert SourceUnavailable(address(feed));
        try this.sequencerOutage{gas: OUTAGE_READ_GAS}() returns (
            uint256 from,
            uint256 until,
            uint256 restartBefore
        ) {
            // Only what this configuration spoke for: after it began (before, the carried window did)
            // and up to now (after, the next one does).
            from = Math.max(from, _sequencerSince);
            until = Math.min(until, block.timestamp);
            if (until <= from) return;
            uint256 lastUntil = _carriedUntil;
            if (lastUntil == from) {
                // The carried window runs on into this one (a change during an outage): one window.
                from = _carried.from;
                restartBefore = Math.max(restartBefore, _carried.restartBefore);
            } else {
                // A clock that also crossed the older window restarts: one window is all that is kept.
                restartBefore = Math.max(restartBefore, lastUntil);
            }
            _carried = CarriedOutage(uint64(from), uint64(Math.min(restartBefore, type(uint64).max)));
            _carriedUntil = uint32(until);
            emit SequencerOutageCarried(from, until, restartBefore);
        } catch {}
    }

    // ---------------------------------------------------------------------------------------------
    // Reads
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc IOracleRouter
    function getPrice(bytes32 asset) external view returns (uint256) {
        _checkSequencer();
        return _price(asset);
    }

    /// @inheritdoc IOracleRouter
    function getPriceAndVolatility(
        bytes32 underlying
    ) external view returns (uint256 price, uint256 volatility) {
        _checkSequencer();
        return (_price(underlying), _volatility(underlying));
    }

    /// @inheritdoc IOracleRouter
    function getPriceAndVolatilityOrZero(
        bytes32 underlying
    ) external view returns (uint256 price, uint256 volatility) {
        _checkSequencer();
        price = _price(underlying);
        (volatility, ) = _tryVolatility(underlying);
    }

    /// @inheritdoc IOracleRouter
    function getPriceAtRound(
        bytes32 asset,
        uint80 roundId
    ) external view returns (uint256 price, uint256 updatedAt) {
        AssetConfig storage config = _assets[asset];
        Source memory primary = config.sources[0];
        if (address(primary.aggregator) == address(0)) revert UnknownAsset(asset);
        return _priceAtRound(asset, primary, roundId, config.minPrice, config.maxPrice);
    }

    /// @inheritdoc IOracleRouter
    function getSettlementPrice(
        bytes32 asset,
        uint256 time,
        uint80 roundId,
        bool phaseStart
    ) external view returns (uint256 price, uint256 updatedAt) {
        (Source memory source, uint256 from, uint80 lastRound, ) = _settlementSource(asset, time);
        // A round after the feed's last one as primary (or not posted yet) settles nothing.
        if (roundId > lastRound) return (0, 0);
        uint256 phase = roundId >> 64;
        // Round 1 of the phase the feed was configured in: the feed was configured no later than `from`,
        // so a round 1 at or after `from` is its first round since, and no earlier round can prove it
        // (a feed configured before its first answer, whose predecessor posted nothing: review round 162).
        bool firstOfFeed = uint64(roundId) == 1 && phase == source.phaseId;
        if (phaseStart) {
            // Phase ids start at 1 and a phase's aggregator rounds at 1: round 1 of a later phase.
            if (uint64(roundId) != 1 || phase <= 1) return (0, 0);
        } else if (phase != lastRound >> 64 || (uint64(roundId) <= 1 && !firstOfFeed)) {
            // Only the last phase: while a feed migrates, the old and the new aggregator both transmit,
            // each with its own first round after expiry, and the settler picked the price (review
            // round 22). The first round of a later phase has no round before it to prove it first.
            return (0, 0);
        }
        AssetConfig storage config = _assets[asset];
        (price, updatedAt) = _priceAtRound(asset, source, roundId, config.minPrice, config.maxPrice);
        bool proven = phaseStart || firstOfFeed || _roundBefore(source.aggregator, roundId - 1, from);
        if (updatedAt < from || !proven) return (0, 0);
    }

    /// @inheritdoc IOracleRouter
    function settlementFeed(
        bytes32 asset,
        uint256 time
    ) external view returns (address feed, uint256 from, uint80 lastRound, uint256 lastUpdatedAt) {
        Source memory source;
        (source, from, lastRound, lastUpdatedAt) = _settlementSource(asset, time);
        return (address(source.aggregator), from, lastRound, lastUpdatedAt);
    }

    /// @inheritdoc IOracleRouter
    function getVolatility(bytes32 underlying) external view returns (uint256) {
        _checkSequencer();
        return _volatility(underlying);
    }

    /// @inheritdoc IOracleRouter
    function checkSequencer() external view {
        _checkSequencer();
    }

    /// @inheritdoc IOracleRouter
    function hasPrice(bytes32 asset) external view returns (bool) {
        return _assets[asset].sourceCount != 0;
    }

    /// @inheritdoc IOracleRouter
    function primaryFeed(bytes32 asset) external view returns (address) {
        return address(_assets[asset].sources[0].aggregator);
    }

    /// @inheritdoc IOracleRouter
    function assetConfig(
        bytes32 asset
    )
        external
        view
        returns (Source[] memory sources, uint256 minPrice, uint256 maxPrice, uint256 maxDeviation)
    {
        AssetConfig storage config = _assets[asset];
        sources = new Source[](config.sourceCount);
        for (uint256 i = 0; i < sources.length; ++i) {
            sources[i] = config.sources[i];
        }
        return (sources, config.minPrice, config.maxPrice, config.maxDeviation);
    }

    /// @inheritdoc IOracleRouter
    function volatilityConfig(
        bytes32 underlying
    ) external view returns (Source memory source, uint256 minVol, uint256 maxVol) {
        VolatilityConfig storage config = _volatilities[underlying];
        return (config.source, config.minVol, config.maxVol);
    }

    /// @inheritdoc IOracleRouter
    function sequencerConfig() external view returns (AggregatorV3Interface feed, uint32 gracePeriod) {
        return (_sequencerFeed, _gracePeriod);
    }

    /// @inheritdoc IOracleRouter
    /// @dev The carried window counts for the time before the last configuration, the configured feed's
    /// for the time after it: the two never overlap, and a change re-dates nothing that already happened.
    function sequencerClockStart(uint256 start) external view returns (uint256) {
        uint256 paused;
        uint256 carriedUntil = _carriedUntil;
        if (start < carriedUntil) {
            CarriedOutage memory carried = _carried;
            paused = carriedUntil - (start < carried.restartBefore ? start : Math.max(carried.from, start));
        }
        AggregatorV3Interface feed = _sequencerFeed;
        if (address(feed) != address(0)) {
            uint256 begin = Math.max(start, _sequencerSince);
            (uint256 from, uint256 until, uint256 restartBefore) = _lastOutage(feed, _gracePeriod, begin);
            from = start < restartBefore ? begin : Math.max(from, begin);
            if (until > from) paused += until - from;
        }
        return start + paused;
    }

    /// @inheritdoc IOracleRouter
    /// @dev Read as for a clock begun when the feed was configured, as `sequencerClockStart` reads it: a
    /// feed swapped in during an outage restarts no clock for an outage before it, which it showed while
    /// the router read another feed and prices were open (review round 172: a swap back after the grace
    /// hour re-dated such an auction by 4,300 s).
    function sequencerOutage() external view returns (uint256 from, uint256 until, uint256 restartBefore) {
        AggregatorV3Interface feed = _sequencerFeed;
        if (address(feed) != address(0)) return _lastOutage(feed, _gracePeriod, _sequencerSince);
    }

    // ---------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------

    /// @dev Records `asset`'s primary `source` as retired now, with its latest round: rounds it posts
    /// later are not the asset's price and settle nothing. A feed that reverts (or answers an
    /// incomplete round) posted nothing usable: the series that expired under it settle on its
    /// successor. Read with a fixed gas allowance, refused when less is left: a read starved by the
    /// executor's gas limit would pass for a dead feed and choose that successor's price.
    function _retire(bytes32 asset, Source memory source) private {
        if (gasleft() < RETIREMENT_READ_GAS + RETIREMENT_READ_GAS / 63 + 5_000) {
            revert SourceUnavailable(address(source.aggregator));
        }
        uint80 lastRound;
        uint256 lastUpdatedAt;
        try source.aggregator.latestRoundData{gas: RETIREMENT_READ_GAS}() returns (
            uint80 roundId,
            int256,
            uint256,
            uint256 updatedAt,
            uint80
        ) {
            // A future or zero `updatedAt` is no round (`_roundFailure`); 2^48 s is 8.9 million years.
            if (updatedAt != 0 && updatedAt <= block.timestamp)
                (lastRound, lastUpdatedAt) = (roundId, updatedAt);
        } catch {}
        _retired[asset].push(
            RetiredPrimary({
                source: source,
                retiredAt: uint48(block.timestamp),
                lastRound: lastRound,
                lastUpdatedAt: uint48(lastUpdatedAt)
            })
        );
        emit PrimaryRetired(asset, address(source.aggregator), lastRound, lastUpdatedAt);
    }

    /// @dev Where the settlement price at `time` is: the primary at `time` (the first retired one whose
    /// retirement is after `time`, else the current one); while that feed's last round as primary is
    /// before the time sought, its successor from the swap on. Returns the source, the time sought on
    /// it, and its last round that may settle (the current primary's latest) with its `updatedAt`.
    function _settlementSource(
        bytes32 asset,
        uint256 time
    ) private view returns (Source memory source, uint256 from, uint80 lastRound, uint256 lastUpdatedAt) {
        RetiredPrimary[] storage retired = _retired[asset];
        uint256 count = retired.length;
        uint256 i = count;
        // From the newest: a recent expiry, with no swap since, reads one slot.
        while (i != 0 && retired[i - 1].retiredAt > time) --i;
        from = time;
        for (; i < count; ++i) {
            RetiredPrimary storage primary = retired[i];
            if (primary.lastUpdatedAt >= from) {
                return (primary.source, from, primary.lastRound, primary.lastUpdatedAt);
            }
            from = primary.retiredAt; // it posted nothing from `from` on: its successor's first round after the swap
        }
        source = _assets[asset].sources[0];
        if (address(source.aggregator) == address(0)) revert UnknownAsset(asset);
        (lastRound, , , lastUpdatedAt, ) = source.aggregator.latestRoundData();
    }

    /// @dev The validated price of `source`'s round `roundId` (complete, positive, within
    /// [minPrice, maxPrice], scaled with its phase's decimals) and its `updatedAt`; reverts otherwise.
    function _priceAtRound(
        bytes32 asset,
        Source memory source,
        uint80 roundId,
        uint256 minPrice,
        uint256 maxPrice
    ) private view returns (uint256 price, uint256 updatedAt) {
        int256 answer;
        uint80 id;
        uint80 answeredInRound;
        try source.aggregator.getRoundData(roundId) returns (
            uint80 roundIdRead,
            int256 answerRead,
            uint256,
            uint256 updatedAtRead,
            uint80 answeredInRoundRead
        ) {
            (id, answer, updatedAt, answeredInRound) = (
                roundIdRead,
                answerRead,
                updatedAtRead,
                answeredInRoundRead
            );
        } catch {
            revert SourceUnavailable(address(source.aggregator));
        }
        bytes memory failure = _roundFailure(
            address(source.aggregator),
            id,
            answer,
            updatedAt,
            answeredInRound
        );
        if (failure.length == 0) {
            uint8 decimals;
            (decimals, failure) = _decimalsAtRound(source, id);
            if (failure.length == 0) (price, failure) = _scale(asset, answer, decimals, minPrice, maxPrice);
        }
        if (failure.length != 0) _revertWith(failure);
    }

    /// @dev Whether `aggregator`'s round `roundId` exists and was updated before `time` (a missing round
    /// reads `updatedAt` 0, or reverts on some aggregators).
    function _roundBefore(
        AggregatorV3Interface aggregator,
        uint80 roundId,
        uint256 time
    ) private view returns (bool) {
        try aggregator.getRoundData(roundId) returns (uint80, int256, uint256, uint256 updatedAt, uint80) {
            return updatedAt != 0 && updatedAt < time;
        } catch {
            return false;
        }
    }

    /// @dev `getPrice` without the sequencer check.
    function _price(bytes32 asset) private view returns (uint256) {
        AssetConfig storage config = _assets[asset];
        Source memory primary = config.sources[0];
        if (address(primary.aggregator) == address(0)) revert UnknownAsset(asset);
        uint256 sourceCount = config.sourceCount;
        uint256 minPrice = config.minPrice;
        uint256 maxPrice = config.maxPrice;

        if (sourceCount == 1) return _latest(primary, asset, minPrice, maxPrice);

        if (sourceCount == 2) {
            // Fail closed: both must pass, and agree.
            uint256 primaryPrice = _latest(primary, asset, minPrice, maxPrice);
            uint256 secondaryPrice = _latest(config.sources[1], asset, minPrice, maxPrice);
            _checkDeviation(asset, primaryPrice, secondaryPrice, config.maxDeviation);
            return primaryPrice;
        }

        // Three sources: drop the failing ones.
        uint256[3] memory prices;
        uint256 valid = 0;
        for (uint256 i = 0; i < 3; ++i) {
            (uint256 price, bytes memory failure) = _tryLatest(config.sources[i], asset, minPrice, maxPrice);
            if (failure.length == 0) prices[valid++] = price;
        }
        if (valid < 2) revert NotEnoughValidSources(asset, valid);
        // The median tolerates one wrong source by construction, so it needs no deviation check.
        if (valid == 3) return _median(prices[0], prices[1], prices[2]);
        _checkDeviation(asset, prices[0], prices[1], config.maxDeviation);
        return Math.average(prices[0], prices[1]); // rounds down
    }

    /// @dev `getVolatility` without the sequencer check.
    function _volatility(bytes32 underlying) private view returns (uint256 volatility) {
        bytes memory failure;
        (volatility, failure) = _tryVolatility(underlying);
        if (failure.length != 0) _revertWith(failure);
    }

    /// @dev `_tryLatest` of `underlying`'s volatility source (an unknown one still reverts).
    function _tryVolatility(bytes32 underlying) private view returns (uint256, bytes memory) {
        VolatilityConfig storage config = _volatilities[underlying];
        Source memory source = config.source;
        if (address(source.aggregator) == address(0)) revert UnknownAsset(underlying);
        return _tryLatest(source, underlying, config.minVol, config.maxVol);
    }

    /// @dev Validates a source at configuration and records its decimals with the proxy's phase (see
    /// `_decimalsOf`). Where the feed exposes its circuit breaker (a Chainlink proxy's `aggregator()`
    /// with `minAnswer()`/`maxAnswer()`), the bounds [minValue, maxValue] must lie inside it with a
    /// tenth to spare (above 1.1 × floor, 1.1 × maxValue below the ceiling): an OCR aggregator refuses
    /// reports outside its band, so a crash through the floor leaves the feed at the last median inside
    /// it (LUNA: 0.107 USD on a 0.10 floor while the market traded far below). With the router's floor
    /// that far above the aggregator's, such an answer reads as `PriceOutOfBounds` (fail closed) rather
    /// than as a price (review rounds 33, 34). A proxy upgraded to an aggregator with another band is
    /// the timelock's to reconfigure, like any feed change.
    function _newSource(
        AggregatorV3Interface aggregator,
        uint32 heartbeat,
        uint256 minValue,
        uint256 maxValue
    ) private view returns (Source memory) {
        if (address(aggregator) == address(0) || !_inRange(heartbeat, MAX_HEARTBEAT)) revert InvalidConfig();
        uint8 decimals = aggregator.decimals();
        if (decimals > MAX_DECIMALS) revert InvalidConfig();
        (bool known, int256 minAnswer, int256 maxAnswer) = _circuitBreaker(aggregator);
        if (known) {
            // int192 answers scale below 2^256 / 1.1, so neither margin can overflow.
            uint256 floor = minAnswer > 0 ? _scaled(minAnswer, decimals) : 0;
            if (minValue <= floor + floor / CIRCUIT_BREAKER_MARGIN) revert InvalidConfig();
            if (
                maxAnswer <= 0 || maxValue + maxValue / CIRCUIT_BREAKER_MARGIN >= _scaled(maxAnswer, decimals)
            ) {
                revert InvalidConfig();
            }
        }
        uint16 phaseId;
        try aggregator.latestRoundData() returns (uint80 roundId, int256, uint256, uint256, uint80) {
            phaseId = uint16(roundId >> 64);
        } catch {} // no round yet: phase 0, and rounds of a later phase read the live decimals
        return Source({aggregator: aggregator, heartbeat: heartbeat, decimals: decimals, phaseId: phaseId});
    }

    /// @dev The band of the aggregator behind `feed` (`known` false when the feed does not expose one:
    /// not a Chainlink proxy, or an aggregator without a circuit breaker).
    function _circuitBreaker(
        AggregatorV3Interface feed
    ) private view returns (bool known, int256 minAnswer, int256 maxAnswer) {
        try IChainlinkProxy(address(feed)).aggregator() returns (address current) {
            if (current.code.length == 0) return (false, 0, 0);
            try IChainlinkCircuitBreaker(current).minAnswer() returns (int192 low) {
                try IChainlinkCircuitBreaker(current).maxAnswer() returns (int192 high) {
                    return (true, low, high);
                } catch {}
            } catch {}
        } catch {}
    }

    /// @dev The decimals of `source`'s round `roundId`, as failure data when they cannot be read. A
    /// Chainlink proxy answers with its current aggregator, and `confirmAggregator` starts a new phase
    /// (the round id's high 16 bits) whose aggregator may have other decimals; scaled with the recorded
    /// ones, an 8 → 10 upgrade read ETH at 300,000 and paid a 1 ETH long 297,087 USDC of the pool's
    /// money (review round 33). A round of the recorded phase uses the recorded decimals (no call); one
    /// of another phase reads the feed's current `decimals()` (~1,000 gas until the timelock
    /// reconfigures the source). A feed that is not a proxy keeps phase 0 and its recorded decimals.
    function _decimalsOf(
        Source memory source,
        uint80 roundId
    ) private view returns (uint8 decimals, bytes memory failure) {
        if (roundId >> 64 == source.phaseId) return (source.decimals, failure);
        try source.aggregator.decimals() returns (uint8 live) {
            if (live <= MAX_DECIMALS) return (live, failure);
        } catch {}
        return (0, abi.encodeWithSelector(SourceUnavailable.selector, source.aggregator));
    }

    /// @dev `_decimalsOf` for a round that may belong to an older phase than the proxy's current one:
    /// governance settles a series at the first round of a phase (`settleSeriesAtPhaseStart`) that a
    /// second upgrade may have left behind, and that round is in its own aggregator's decimals, read
    /// through the proxy's `phaseAggregators` (review round 34). A feed without phases reads as
    /// `_decimalsOf`.
    function _decimalsAtRound(
        Source memory source,
        uint80 roundId
    ) private view returns (uint8 decimals, bytes memory failure) {
        uint16 phase = uint16(roundId >> 64);
        if (phase != source.phaseId) {
            try IChainlinkProxy(address(source.aggregator)).phaseAggregators(phase) returns (
                address aggregator
            ) {
                if (aggregator.code.length != 0) {
                    try AggregatorV3Interface(aggregator).decimals() returns (uint8 phaseDecimals) {
                        if (phaseDecimals <= MAX_DECIMALS) return (phaseDecimals, failure);
                    } catch {}
                }
                return (0, abi.encodeWithSelector(SourceUnavailable.selector, source.aggregator));
            } catch {}
        }
        return _decimalsOf(source, roundId);
    }

    /// @dev Chainlink's uptime feed: answer 0 = up, anything else = down; `startedAt` = when the
    /// status last changed. On Arbitrum `startedAt` is 0 until the first status round, so a zero (or
    /// future) `startedAt` proves nothing about uptime and is refused as an incomplete round.
    function _checkSequencer() private view {
        AggregatorV3Interface feed = _sequencerFeed;
        if (address(feed) == address(0)) return; // L1
        uint256 gracePeriod = _gracePeriod;
        (uint80 roundId, int256 answer, uint256 startedAt, , ) = feed.latestRoundData();
        if (answer != 0) revert SequencerDown();
        if (startedAt == 0 || startedAt > block.timestamp) revert IncompleteRound(address(feed), roundId);
        if (block.timestamp - startedAt <= gracePeriod) revert GracePeriodNotOver(startedAt, gracePeriod);
    }

    /// @dev The last window `feed` shows in which prices were closed: from the sequencer going down (the
    /// previous round of the feed, which records a round per status change; 0 when it cannot show it: a
    /// missing round, a new aggregator phase, no status change) to the end of the grace period after it
    /// came back (to now while down), and the earliest clock start it pauses rather than restarts: one
    /// begun before the grace after the outage before it also crossed that one, which the feed no longer
    /// shows (max when the feed cannot show the sequencer up before the window). Reads only what a clock
    /// begun at `begin` needs: a window that ended before it, or one it began inside, skips the older
    /// rounds (review round 118's cost: +16,413 gas only on a clock the last outage interrupted).
    function _lastOutage(
        AggregatorV3Interface feed,
        uint256 grace,
        uint256 begin
    ) private view returns (uint256 from, uint256 until, uint256 restartBefore) {
        (uint80 round, int256 status, uint256 since, , ) = feed.latestRoundData();
        bool down = status != 0;
        // A down round dated after this block (an L1 or off-chain clock ahead of the L2's) pauses from its
        // date on: until then the clock runs.
        until = down ? Math.max(block.timestamp, since) : since + grace;
        if (begin >= until) return (until, until, 0);
        from = since;
        if (!down) {
            bool known;
            (known, from) = _previousStatusSince(feed, round, 1, since);
            if (!known) return (0, until, 0);
            round--;
        }
        if (begin >= from) return (from, until, 0);
        (bool upBefore, uint256 upSince) = _previousStatusSince(feed, round, 0, from);
        restartBefore = upBefore ? upSince + grace : type(uint256).max;
    }

    /// @dev When the round before `round` began, if it reported `status` no later than `notAfter`.
    function _previousStatusSince(
        AggregatorV3Interface feed,
        uint80 round,
        int256 status,
        uint256 notAfter
    ) private view returns (bool, uint256) {
        if (round < 2) return (false, 0);
        try feed.getRoundData(round - 1) returns (uint80, int256 answer, uint256 startedAt, uint256, uint80) {
            return (answer == status && startedAt != 0 && startedAt <= notAfter, startedAt);
        } catch {
            return (false, 0);
        }
    }

    /// @dev The validated latest value of `source`, or a revert with the reason it failed.
    function _latest(
        Source memory source,
        bytes32 asset,
        uint256 minValue,
        uint256 maxValue
    ) private view returns (uint256 value) {
        bytes memory failure;
        (value, failure) = _tryLatest(source, asset, minValue, maxValue);
        if (failure.length != 0) _revertWith(failure);
    }

    /// @dev Reads and validates the latest round of `source` without reverting. Returns the value in
    /// WAD and empty `failure`, or 0 and the ABI-encoded custom error that describes the failure.
    /// (Return data that cannot be decoded still reverts; `configureAsset` ensured there is code.)
    function _tryLatest(
        Source memory source,
        bytes32 asset,
        uint256 minValue,
        uint256 maxValue
    ) private view returns (uint256 value, bytes memory failure) {
        try source.aggregator.latestRoundData() returns (
            uint80 roundId,
            int256 answer,
            uint256,
            uint256 updatedAt,
            uint80 answeredInRound
        ) {
            failure = _roundFailure(address(source.aggregator), roundId, answer, updatedAt, answeredInRound);
            if (failure.length != 0) return (0, failure);
            // `updatedAt <= block.timestamp` was checked above.
            if (block.timestamp - updatedAt > source.heartbeat) {
                return (
                    0,
                    abi.encodeWithSelector(
                        StalePrice.selector,
                        source.aggregator,
                        updatedAt,
                        source.heartbeat
                    )
                );
            }
            uint8 decimals;
            (decimals, failure) = _decimalsOf(source, roundId);
            if (failure.length != 0) return (0, failure);
            return _scale(asset, answer, decimals, minValue, maxValue);
        } catch {
            return (0, abi.encodeWithSelector(SourceUnavailable.selector, source.aggregator));
        }
    }

    /// @dev Checks a round's completeness and sign (everything but age and bounds).
    function _roundFailure(
        address aggregator,
        uint80 roundId,
        int256 answer,
        uint256 updatedAt,
        uint80 answeredInRound
    ) private view returns (bytes memory failure) {
        if (updatedAt == 0 || updatedAt > block.timestamp || answeredInRound < roundId) {
            return abi.encodeWithSelector(IncompleteRound.selector, aggregator, roundId);
        }
        if (answer <= 0) return abi.encodeWithSelector(InvalidPrice.selector, aggregator, answer);
        return failure; // empty
    }

    /// @dev Scales a positive `answer` from `decimals` to WAD, rounding down, and checks the bounds.
    /// Scaling up saturates at `type(uint256).max` so an absurd answer is reported as out of bounds
    /// (and can be dropped by the median) rather than panicking.
    function _scale(
        bytes32 asset,
        int256 answer,
        uint8 decimals,
        uint256 minValue,
        uint256 maxValue
    ) private pure returns (uint256 value, bytes memory failure) {
        value = _scaled(answer, decimals);
        if (value < minValue || value > maxValue) {
            return (0, abi.encodeWithSelector(PriceOutOfBounds.selector, asset, value, minValue, maxValue));
        }
    }

    /// @dev A positive `answer` with `decimals` in WAD, rounded down, saturating at `type(uint256).max`.
    function _scaled(int256 answer, uint8 decimals) private pure returns (uint256) {
        return
            decimals <= 18
                ? Math.saturatingMul(uint256(answer), 10 ** (18 - uint256(decimals)))
                : uint256(answer) / 10 ** (uint256(decimals) - 18);
    }

    /// @dev Reverts with `PriceDeviation` if |a − b| / min(a, b) > maxDeviation. Evaluated exactly by
    /// cross-multiplying (|a − b|·1e18 > maxDeviation·min(a, b)), so there is no rounding to argue
    /// about; with prices below 2^120 and maxDeviation below 2^64 neither side can overflow.
    function _checkDeviation(bytes32 asset, uint256 a, uint256 b, uint256 maxDeviation) private pure {
        (uint256 low, uint256 high) = a < b ? (a, b) : (b, a);
        if ((high - low) * WAD > maxDeviation * low) revert PriceDeviation(asset, a, b);
    }

    /// @dev The middle value of three.
    function _median(uint256 a, uint256 b, uint256 c) private pure returns (uint256) {
        if (a > b) (a, b) = (b, a);
        // a <= b: the median is c clamped to [a, b].
        if (c < a) return a;
        if (c > b) return b;
        return c;
    }

    /// @dev 0 < value <= max.
    function _inRange(uint256 value, uint256 max) private pure returns (bool) {
        return value != 0 && value <= max;
    }

    /// @dev Reverts with an ABI-encoded custom error built by `_tryLatest` or `_scale`.
    function _revertWith(bytes memory failure) private pure {
        assembly ("memory-safe") {
            revert(add(failure, 0x20), mload(failure))
        }
    }
}
