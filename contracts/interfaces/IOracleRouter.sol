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
    /// @param decimals The feed's `decimals()`, read once when the source is configured.
    struct Source {
        AggregatorV3Interface aggregator;
        uint32 heartbeat;
        uint8 decimals;
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
    /// @param maxDeviation Largest accepted relative difference between two sources (WAD, 0.02e18 = 2%).
    struct AssetInput {
        AggregatorV3Interface primary;
        uint32 primaryHeartbeat;
        AggregatorV3Interface[] secondaries;
        uint32[] secondaryHeartbeats;
        uint256 minPrice;
        uint256 maxPrice;
        uint256 maxDeviation;
    }

    /// @notice The price of `asset` failed validation: the answer is zero or negative.
    error InvalidPrice(address aggregator, int256 answer);
    /// @notice The answer is older than the source's heartbeat.
    error StalePrice(address aggregator, uint256 updatedAt, uint256 heartbeat);
    /// @notice The round is not complete (`updatedAt == 0`, or `answeredInRound < roundId`).
    error IncompleteRound(address aggregator, uint80 roundId);
    /// @notice The scaled price is outside the asset's [minPrice, maxPrice].
    error PriceOutOfBounds(bytes32 asset, uint256 price, uint256 minPrice, uint256 maxPrice);
    /// @notice Two sources differ by more than the asset's `maxDeviation`.
    error PriceDeviation(bytes32 asset, uint256 priceA, uint256 priceB);
    /// @notice With three sources configured, fewer than two passed validation.
    error NotEnoughValidSources(bytes32 asset, uint256 valid);
    /// @notice The L2 sequencer-uptime feed reports the sequencer down.
    error SequencerDown();
    /// @notice The sequencer is back up but its grace period has not elapsed.
    error GracePeriodNotOver(uint256 upSince, uint256 gracePeriod);
    /// @notice No price (or volatility) feed is configured for the asset.
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

    /// @notice Sets (or replaces) the price sources of `asset`. Listing role.
    function configureAsset(bytes32 asset, AssetInput calldata input) external;

    /// @notice Sets (or replaces) the annualised volatility feed of `underlying` (WAD after scaling,
    /// 0.8e18 = 80%). Listing role.
    function configureVolatilityFeed(
        bytes32 underlying,
        AggregatorV3Interface aggregator,
        uint32 heartbeat,
        uint256 minVol,
        uint256 maxVol
    ) external;

    /// @notice Sets the L2 sequencer-uptime feed (address(0) on L1) and its grace period. Listing role.
    function configureSequencerFeed(AggregatorV3Interface feed, uint32 gracePeriod) external;

    /// @notice The validated price of `asset`, in USD with 18 decimals.
    function getPrice(bytes32 asset) external view returns (uint256 price);

    /// @notice The validated annualised volatility of `underlying`, 18 decimals.
    function getVolatility(bytes32 underlying) external view returns (uint256 volatility);

    /// @notice Reverts unless the L2 sequencer is up and past its grace period (no-op on L1).
    function checkSequencer() external view;

    /// @notice Whether `asset` has price sources configured.
    function hasPrice(bytes32 asset) external view returns (bool);
}
