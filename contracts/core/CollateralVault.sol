// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {IERC4626} from "@openzeppelin/contracts/interfaces/IERC4626.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";
import {IOracleRouter} from "../interfaces/IOracleRouter.sol";
import {ILiquidationAuction} from "../interfaces/ILiquidationAuction.sol";
import {UpdateThrottle} from "../governance/UpdateThrottle.sol";
import {InterestMath} from "../libraries/InterestMath.sol";

/// @title CollateralVault
/// @notice Custody of all ERC-20 collateral of xmargin accounts, with per-account, per-token balances.
/// Anyone may deposit the quote token into any account at any time, other collateral only the owner or
/// an operator (deposits are never paused); withdrawals need the owner or an operator (who may only
/// send to the owner) and must leave the account above its initial requirement, as checked by the
/// margin engine. Only the engine moves balances between accounts.
/// @dev Accounting: `totalDeposits[token]` is the sum of all account balances of `token`, i.e. what
/// the vault holds for accounts (tokens sent to the vault without `deposit` are not counted, and only
/// `recoverSurplus` sends them out). For non-quote tokens every balance is ≥ 0. The quote token's
/// balances may be negative (debts); its positive balances are then partly backed by those debts rather
/// than by tokens in the vault.
///
/// Per-account token set: the quote token is tracked implicitly (it is part of the set exactly when
/// its balance is nonzero, negative included), the other tokens in a packed array of at most
/// `MAX_COLLATERALS_PER_ACCOUNT - 1` entries whose length shares a slot with its first element, so
/// the first deposit of a token into an account writes one new slot for the set. Reserving a place
/// for the quote token means the engine can always settle PnL, fees and funding into an account.
contract CollateralVault is
    ICollateralVault,
    AccessManaged,
    Pausable,
    ReentrancyGuardTransient,
    UpdateThrottle
{
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice At most this many different tokens (the quote token included) per account, so that
    /// valuing an account has a known gas ceiling.
    uint256 public constant MAX_COLLATERALS_PER_ACCOUNT = 8;
    /// @notice Hard floor for an initial weight: below 10% a token is not worth the oracle risk of
    /// listing it as collateral, and a tiny weight would let a huge, barely-counted balance hide
    /// concentration risk from the requirement.
    uint64 public constant MIN_INITIAL_WEIGHT = 0.1e18;
    /// @notice Hard ceiling for any weight: a token never counts for more than its price.
    uint64 public constant MAX_WEIGHT = 1e18;
    /// @notice Largest change of a weight in one update (absolute, WAD), so that a single (possibly
    /// compromised or mistaken) update cannot make a large set of accounts liquidatable at once.
    uint64 public constant MAX_WEIGHT_STEP = 0.1e18;
    /// @notice A deposit cap may at most be multiplied by this factor per update.
    uint256 public constant MAX_CAP_INCREASE_FACTOR = 2;
    /// @notice Largest accepted deposit cap. Caps are stored in 31 bytes next to the `listed` flag so
    /// that a deposit reads a single configuration slot; 2^248 − 1 units is still ~4.5e38 whole tokens
    /// at 36 decimals.
    uint256 public constant MAX_DEPOSIT_CAP = type(uint248).max;
    /// @notice Largest accepted `decimals()` of a collateral token (and of an ERC-4626's asset), so
    /// that `10 ** decimals` and the price arithmetic stay far from overflow.
    uint8 public constant MAX_DECIMALS = 36;
    /// @notice Most a token's smallest unit may be worth at listing (USD WAD: ten cents). A liquidation
    /// slices every balance in whole units, rounded down, while the bidder pays for the exact fraction:
    /// with a 0-decimal token worth 3,000 USD a unit, a bid for 47% of a book holding one unit moved
    /// none of it and the bidder (or the LPs, through the backstop's absorb) paid ~1,400 USD for it
    /// (review round 29). At ten cents a unit a slice misses at most that per token, and 2-decimal
    /// stablecoins (a euro at 1.08 USD: 1.08 cents a unit) and 6-decimal BTC still list (review round
    /// 30: a one-cent bound refused a 2-decimal dollar at 1.0001).
    uint256 public constant MAX_UNIT_VALUE = 0.1e18;

    /// @notice Most one unit of an ERC-4626 share counts for in any valuation (USD WAD): a hundred times
    /// the listing bound, room for the underlying's price and the share's rate to grow a hundredfold
    /// since listing. A donation to a share vault with next to no supply can grow its unit without limit
    /// after listing (`_price`); at the listing bound itself an honest 6-decimal BTC share lost a sixth
    /// of its value when BTC doubled (review round 37).
    uint256 public constant MAX_SHARE_UNIT_VALUE = 10e18;

    /// @notice Highest annual interest rate on quote debt the model may reach (300%, compounded
    /// continuously: a debt left at full utilisation for a year grows twentyfold).
    uint256 public constant MAX_QUOTE_BORROW_RATE = 3e18;
    /// @notice Lowest kink utilisation of the rate model.
    uint256 public constant MIN_KINK = 0.5e18;
    /// @notice Highest kink utilisation of the rate model.
    uint256 public constant MAX_KINK = 0.99e18;
    /// @notice Lowest rate the model may charge at full utilisation (50% a year): below it, borrowing
    /// every USDC in the vault and locking the LPs out costs next to nothing (§4, rows 20 and 57).
    uint256 public constant MIN_MAX_RATE = 0.5e18;
    /// @notice Largest move of the rate at any utilisation in one update (25 points a year; updates are
    /// a day apart): one call took every debtor from 2.6% to 300% a year, or the full-utilisation rate
    /// to 0 (row 57).
    uint256 public constant MAX_RATE_STEP = 0.25e18;

    /// @dev Non-quote tokens an account may hold; one place is kept for the quote token.
    uint256 private constant MAX_OTHER_TOKENS = MAX_COLLATERALS_PER_ACCOUNT - 1;
    uint256 private constant WAD = 1e18;

    /// @notice The account registry (existence, ownership, operators).
    IAccounts public immutable accounts;
    /// @notice The price source for every collateral token.
    IOracleRouter public immutable oracle;
    /// @inheritdoc ICollateralVault
    IERC20 public immutable quoteToken;

    /// @notice The margin engine, the only contract that moves balances between accounts; set once.
    IMarginEngine public marginEngine;
    /// @dev The pool's, the backstop's and the insurance fund's accounts (`setProtocolAccounts`), in the
    /// engine's slot: a deposit of a non-quote token reads them for one cold slot (the 110,000 budget of a
    /// first deposit). Created at deployment, before any user's, so 32 bits hold them.
    uint32 internal _poolAccountId;
    uint32 internal _backstopAccountId;
    uint32 internal _insuranceAccountId;

    /// @dev A token's configuration in three slots, packed by who reads them: the oracle asset and the
    /// pricing slot (weights, decimals, ERC-4626 flag) for valuations; the deposit cap with the
    /// `listed` flag, the only slot a deposit reads.
    struct Config {
        bytes32 oracleAsset;
        uint64 initialWeight;
        uint64 maintenanceWeight;
        uint8 decimals;
        // ERC-4626 only: the decimals of `asset()`, read at listing.
        uint8 assetDecimals;
        bool isErc4626;
        // The weight the mark counts at in maintenance (initial: that less the weights' gap) while a group of
        // the account's positions shocks the token (0 until set: its weights). Same slot as the weights:
        // valuing reads one slot.
        uint64 shockedWeight;
        uint248 depositCap;
        bool listed;
    }

    /// @dev The non-quote tokens of an account; `length` shares the first slot with `first`.
    struct TokenSet {
        address first;
        uint8 length;
        address[MAX_OTHER_TOKENS - 1] rest;
    }

    mapping(address token => Config) private _configs;
    address[] private _listedTokens;
    mapping(uint256 accountId => mapping(address token => int256)) private _balances;
    mapping(uint256 accountId => TokenSet) private _tokenSets;

    /// @inheritdoc ICollateralVault
    mapping(address token => uint256) public totalDeposits;

    /// @dev Σ quote debts (`quoteDebt`, the high 128 bits) and Σ over debtors other than the lender of
    /// debt · 1e18 / paid index, each rounded down (the low 128: times the index, what they owe with
    /// interest, in one read: `interestReceivable`). One slot, because every change of a debt writes both:
    /// in two, each paid a cold read and a write (5,000 gas more on every change of a debt, 22,100 on the
    /// vault's first: review round 153). A scaled debt is at most the debt (paid indices are at least
    /// 1e18), and 2^128 quote units are far beyond any token's supply: only interest left unpaid for
    /// decades reaches it (17.8 years at 150% a year for the largest debt the shipped caps back, at 18
    /// decimals; review round 157), an insolvent debtor is auctioned long before, and `_moveDebts` reverts past it.
    uint256 private _debts;

    /// @dev What one unit of quote debt has grown to since deployment (WAD, starts at 1e18), as of
    /// `_clock.updatedAt`.
    uint256 private _interestIndex = WAD;

    /// @dev The rate in force since the index was written, when, and the lender (the pool's account,
    /// read from the engine when the model is first set). The debt only changes at a checkpoint but for a
    /// settlement, which moves interest from owed to settled (what utilisation counts stays) and never
    /// takes the debt to or from zero, so between two of them it is either zero (nothing accrues) or the
    /// rate applies throughout.
    struct InterestClock {
        uint64 rate;
        uint48 updatedAt;
        uint48 lenderAccountId;
    }

    InterestClock private _clock;
    InterestRateModel private _model;
    /// @dev Per debtor: the index up to which its debt has paid interest (written when it falls into
    /// debt and whenever it pays).
    mapping(uint256 accountId => uint256) private _paidIndex;

    /// @param authority The protocol's AccessManager.
    /// @param accounts_ The account registry.
    /// @param oracle_ The oracle router.
    /// @param quoteToken_ The settlement asset; list it with `listCollateral` like any other token.
    constructor(
        address authority,
        IAccounts accounts_,
        IOracleRouter oracle_,
        IERC20 quoteToken_
    ) AccessManaged(authority) {
        accounts = accounts_;
        oracle = oracle_;
        quoteToken = quoteToken_;
    }

    modifier onlyMarginEngine() {
        _requireMarginEngine();
        _;
    }

    /// @dev The modifier's check, once in the bytecode rather than in each of its four functions (103
    /// bytes, which `chargeFees` needed).
    function _requireMarginEngine() private view {
        if (msg.sender != address(marginEngine)) revert NotMarginEngine(msg.sender);
    }

    // ---------------------------------------------------------------------------------------------
    // Governance
    // ---------------------------------------------------------------------------------------------

    /// @notice Lists `token` as collateral. Governance only (the timelock): a token is valued at any
    /// configured asset's price, so a listing is public ahead like a feed change.
    /// @dev Reads the token's decimals once (and, for an ERC-4626 share, its asset's decimals). Reverts
    /// with TokenAlreadyListed if the token was ever listed (use `relistCollateral`), CollateralListFull
    /// once MAX_COLLATERALS_PER_ACCOUNT − 1 tokens besides the quote token were listed (delisted ones
    /// included: accounts may still hold them), UnpricedAsset if
    /// the oracle has no price for `oracleAsset`, ParameterOutOfBounds for decimals above
    /// MAX_DECIMALS, weights outside MIN_INITIAL_WEIGHT ≤ initial ≤ maintenance ≤ MAX_WEIGHT, a
    /// cap of zero or above MAX_DEPOSIT_CAP, or ("unitValue", USD WAD) a smallest unit worth more than
    /// MAX_UNIT_VALUE at the oracle's price now.
    /// @param token The ERC-20 (or ERC-4626 share) to list.
    /// @param oracleAsset The oracle asset pricing one whole token (for a share: its underlying).
    /// @param initialWeight Weight counted towards the initial requirement (WAD).
    /// @param maintenanceWeight Weight counted towards the maintenance requirement (WAD).
    /// @param depositCap Maximum total deposits, in token units.
    /// @param isErc4626 Whether `token` is an ERC-4626 share priced through `convertToAssets`.
    function listCollateral(
        address token,
        bytes32 oracleAsset,
        uint64 initialWeight,
        uint64 maintenanceWeight,
        uint256 depositCap,
        bool isErc4626
    ) external restricted {
        Config storage config = _configs[token];
        if (config.initialWeight != 0) revert TokenAlreadyListed(token);
        // Every account, the pool's included, can then hold every listed token: the pool takes the
        // collateral of the accounts it absorbs, and a token it could not hold would block that.
        if (token != address(quoteToken) && _listedOtherTokens() == MAX_OTHER_TOKENS) {
            revert CollateralListFull(MAX_OTHER_TOKENS);
        }
        if (!oracle.hasPrice(oracleAsset)) revert UnpricedAsset(oracleAsset);
        _checkWeights(initialWeight, maintenanceWeight);
        _checkCap(depositCap);

        uint8 decimals = _readDecimals(token);
        uint8 assetDecimals = isErc4626 ? _readDecimals(IERC4626(token).asset()) : 0;

        config.oracleAsset = oracleAsset;
        config.initialWeight = initialWeight;
        config.maintenanceWeight = maintenanceWeight;
        config.decimals = decimals;
        config.assetDecimals = assetDecimals;
        config.isErc4626 = isErc4626;
        // Liquidations slice balances in whole units (see MAX_UNIT_VALUE).
        uint256 unitValue = Math.ceilDiv(_price(config, token, Math.Rounding.Ceil), 10 ** decimals);
        if (unitValue > MAX_UNIT_VALUE) revert ParameterOutOfBounds("unitValue", unitValue);
        // Bounded by _checkCap.
        config.depositCap = uint248(depositCap);
        config.listed = true;
        _listedTokens.push(token);
        emit CollateralListed(token, oracleAsset, initialWeight, maintenanceWeight, depositCap, isErc4626);
    }

    /// @notice Stops new deposits of `token` (LISTING role). Balances stay, keep counting as collateral
    /// at the current weights and can be withdrawn; lower the weights to phase the token out.
    /// @dev Reverts with TokenNotListed if not currently listed and CannotDelistQuoteToken for the
    /// quote token (its deposits repay debts).
    /// @param token The token to delist.
    function delistCollateral(address token) external restricted {
        if (token == address(quoteToken)) revert CannotDelistQuoteToken();
        Config storage config = _configs[token];
        if (!config.listed) revert TokenNotListed(token);
        config.listed = false;
        emit CollateralDelisted(token);
    }

    /// @notice Accepts deposits of a delisted `token` again, with its configuration unchanged
    /// (governance only: the timelock).
    /// @dev Reverts with TokenNotListed if the token was never listed, TokenAlreadyListed if it is
    /// listed. The oracle asset is not checked again: it was priced at listing, the router has no way
    /// to remove a price, and a price that fails makes every valuation revert (fail closed) anyway.
    /// @param token The token to relist.
    function relistCollateral(address token) external restricted {
        Config storage config = _configs[token];
        if (config.initialWeight == 0) revert TokenNotListed(token);
        if (config.listed) revert TokenAlreadyListed(token);
        config.listed = true;
        emit CollateralRelisted(token);
    }

    /// @notice Sets the weights of a (listed or delisted) token (RISK_MANAGER role).
    /// @dev Same bounds as at listing, and each weight may move by at most MAX_WEIGHT_STEP per update,
    /// the maintenance weight never below the current initial weight (cut the initial weight first);
    /// a step violation reverts with ParameterOutOfBounds("initialWeightStep" or
    /// "maintenanceWeightStep", proposed weight). At most one update per token per
    /// MIN_UPDATE_INTERVAL (UpdateTooSoon("collateralWeights", token, next)), in either direction:
    /// cutting a weight is what makes accounts liquidatable.
    /// @param token The token.
    /// @param initialWeight The new initial weight (WAD).
    /// @param maintenanceWeight The new maintenance weight (WAD).
    function setCollateralWeights(
        address token,
        uint64 initialWeight,
        uint64 maintenanceWeight
    ) external restricted {
        Config storage config = _knownConfig(token);
        _checkWeights(initialWeight, maintenanceWeight);
        if (_absDiff(initialWeight, config.initialWeight) > MAX_WEIGHT_STEP) {
            revert ParameterOutOfBounds("initialWeightStep", initialWeight);
        }
        // Nor below the current initial weight: an account meeting its initial requirement is then not
        // liquidatable after the update at unchanged prices. A 0.1 cut from WETH's 0.90 / 0.95 to 0.85
        // took a debtor with 950 USD of free initial margin to −550 of maintenance equity (review round 49).
        if (
            _absDiff(maintenanceWeight, config.maintenanceWeight) > MAX_WEIGHT_STEP ||
            maintenanceWeight < config.initialWeight
        ) {
            revert ParameterOutOfBounds("maintenanceWeightStep", maintenanceWeight);
        }
        // The steps are measured from the current weights: without the interval they chain.
        _throttle("collateralWeights", _tokenId(token), MIN_UPDATE_INTERVAL);
        config.initialWeight = initialWeight;
        config.maintenanceWeight = maintenanceWeight;
        emit CollateralWeightsUpdated(token, initialWeight, maintenanceWeight);
    }

    /// @notice Sets the weight a token's mark counts at while the engine shocks it with an account's
    /// positions on its oracle asset (RISK_MANAGER role). The grid then carries its price risk, so this
    /// haircut is for basis and liquidity only: maintenance counts max(its weight, this), initial that less
    /// the weights' gap (each level its weight plus the same credit), so the two lines stay apart.
    /// @dev At most MAX_WEIGHT, and max(weight, shockedWeight) at each level may move by at most
    /// MAX_WEIGHT_STEP per update (ShockedWeightOutOfBounds; the weight counted at either level moves by at
    /// most the maintenance one's move), and one clock with the weights: at most one update of either per
    /// token per MIN_UPDATE_INTERVAL (UpdateTooSoon("collateralWeights", token, next)). A cut liquidates
    /// like a weight cut, and on two clocks a shocked-weight cut and a weight cut in one day took an account
    /// at its IM below its MM (review round 148). The engine caps
    /// the credit at mark · the group's MM shock floor, so no value range is needed here for the first
    /// position on an underlying to never free margin (docs/decisions.md, Margin): the floors are the
    /// engine's, per underlying, and move. The quote token prices no underlying: refused
    /// (QuoteTokenNeverShocked) rather than stored to no effect.
    /// @param token The token.
    /// @param shockedWeight The new shocked weight (WAD; 0: the token's weights, no credit).
    function setShockedWeight(address token, uint64 shockedWeight) external restricted {
        if (token == address(quoteToken)) revert QuoteTokenNeverShocked();
        Config storage config = _knownConfig(token);
        uint64 old = config.shockedWeight;
        if (
            shockedWeight > MAX_WEIGHT ||
            _shockedStep(old, shockedWeight, config.initialWeight) > MAX_WEIGHT_STEP ||
            _shockedStep(old, shockedWeight, config.maintenanceWeight) > MAX_WEIGHT_STEP
        ) revert ShockedWeightOutOfBounds(token, shockedWeight);
        _throttle("collateralWeights", _tokenId(token), MIN_UPDATE_INTERVAL);
        config.shockedWeight = shockedWeight;
        emit ShockedWeightUpdated(token, shockedWeight);
    }

    /// @dev How far the weight counted at a level of weight `weight` moves from shocked weight `a` to `b`.
    function _shockedStep(uint64 a, uint64 b, uint64 weight) private pure returns (uint64) {
        return _absDiff(a > weight ? a : weight, b > weight ? b : weight);
    }

    /// @notice Sets the deposit cap of a (listed or delisted) token (RISK_MANAGER role).
    /// @dev The cap must be in (0, MAX_DEPOSIT_CAP] and at most MAX_CAP_INCREASE_FACTOR times the
    /// current one (ParameterOutOfBounds("depositCapStep", cap)), and raised at most once per token
    /// per MIN_UPDATE_INTERVAL (UpdateTooSoon("depositCap", token, next)). Decreases are unrestricted
    /// and do not start the interval: they reduce risk, and chaining them does nothing one decrease
    /// could not. A cap below the current total blocks further deposits, except into accounts in
    /// auction (their owners' cures).
    /// @param token The token.
    /// @param depositCap The new cap, in token units.
    function setDepositCap(address token, uint256 depositCap) external restricted {
        Config storage config = _knownConfig(token);
        _checkCap(depositCap);
        uint256 current = config.depositCap;
        if (depositCap > current * MAX_CAP_INCREASE_FACTOR) {
            revert ParameterOutOfBounds("depositCapStep", depositCap);
        }
        if (depositCap > current) _throttle("depositCap", _tokenId(token), MIN_UPDATE_INTERVAL);
        // Bounded by _checkCap.
        config.depositCap = uint248(depositCap);
        emit DepositCapUpdated(token, depositCap);
    }

    /// @inheritdoc ICollateralVault
    function setInterestRateModel(InterestRateModel calldata model) external restricted {
        if (model.maxRate > MAX_QUOTE_BORROW_RATE || model.maxRate < MIN_MAX_RATE) {
            revert ParameterOutOfBounds("maxRate", model.maxRate);
        }
        if (model.kinkRate > model.maxRate) revert ParameterOutOfBounds("kinkRate", model.kinkRate);
        if (model.baseRate > model.kinkRate) revert ParameterOutOfBounds("baseRate", model.baseRate);
        if (model.kinkUtilization < MIN_KINK || model.kinkUtilization > MAX_KINK) {
            revert ParameterOutOfBounds("kinkUtilization", model.kinkUtilization);
        }
        if (_clock.lenderAccountId == 0) {
            IMarginEngine engine = marginEngine;
            uint256 lender = address(engine) == address(0) ? 0 : engine.poolAccountId();
            if (lender == 0) revert MarginEngineNotSet();
            _clock.lenderAccountId = lender.toUint48();
            // The lender pays itself nothing: a debt it already has leaves the receivable.
            int256 balance = _balances[lender][address(quoteToken)];
            if (balance < 0) _moveDebts(0, 0, InterestMath.scaled(uint256(-balance), _paidIndex[lender]), 0);
        }
        // The first model is a listing (maxRate ≥ MIN_MAX_RATE once set): no step from nothing.
        if (_model.maxRate != 0) _checkRateStep(_model, model);
        _throttle("interestRateModel", bytes32(0), MIN_UPDATE_INTERVAL);
        _model = model;
        // What accrued so far stays at the old rate; the new one applies from now.
        _recordRate();
        emit InterestRateModelUpdated(model);
    }

    /// @dev Reverts with ParameterOutOfBounds("rateStep", u) if the rate at some utilisation u moves by
    /// more than MAX_RATE_STEP. Both curves are linear between 0, the two kinks and 1, so their gap is
    /// largest at one of those four points. Stepping each field alone was not enough: moving the kink
    /// took the rate at 90% utilisation from 80% to 0 in one call (review round 15).
    function _checkRateStep(InterestRateModel memory current, InterestRateModel memory next) private pure {
        uint256[4] memory points = [0, uint256(current.kinkUtilization), uint256(next.kinkUtilization), WAD];
        for (uint256 i = 0; i < points.length; ++i) {
            uint256 rateBefore = InterestMath.rateAt(current, points[i]);
            uint256 rateAfter = InterestMath.rateAt(next, points[i]);
            if ((rateBefore > rateAfter ? rateBefore - rateAfter : rateAfter - rateBefore) > MAX_RATE_STEP) {
                revert ParameterOutOfBounds("rateStep", points[i]);
            }
        }
    }

    /// @inheritdoc ICollateralVault
    function recoverSurplus(
        address token,
        address to
    ) external restricted nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert InvalidRecipient(to);
        uint256 held = IERC20(token).balanceOf(address(this));
        // The accounts' total (see the contract's accounting note), not the balance: it is theirs.
        uint256 credited = totalDeposits[token];
        if (held <= credited) revert NoSurplus(token);
        amount = held - credited;
        emit SurplusRecovered(token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /// @notice Pauses withdrawals (GUARDIAN role). Deposits and engine operations are never paused.
    function pause() external restricted {
        _pause();
    }

    /// @notice Resumes withdrawals (GUARDIAN role).
    function unpause() external restricted {
        _unpause();
    }

    /// @notice Wires in the margin engine (admin); possible once.
    /// @dev Reverts with MarginEngineAlreadySet if already set or if `engine` is the zero address.
    /// @param engine The MarginEngine.
    function setMarginEngine(address engine) external restricted {
        if (engine == address(0) || address(marginEngine) != address(0)) revert MarginEngineAlreadySet();
        marginEngine = IMarginEngine(engine);
        emit MarginEngineSet(engine);
    }

    // ---------------------------------------------------------------------------------------------
    // Accounts
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc ICollateralVault
    /// @dev Reverts with ZeroAmount, UnknownAccount (quote), TokenNotListed, ProtocolAccountCollateral,
    /// NotAuthorized (another token, from a sender that is neither the owner nor an operator, or into an
    /// unknown account), DepositCapExceeded, or
    /// TransferAmountMismatch when the vault's balance grew by anything other than `amount`. A quote
    /// deposit that leaves the account's quote balance ≤ 0 only repays debt and is not capped; nor is
    /// a quote deposit into an account in auction, or one into an account below its initial requirement
    /// whose part past the cap is worth (at initial weight) no more than the shortfall (a cure, which the
    /// quote always serves: a cap cut is immediate, and must not take away an owner's time to top up). Other
    /// tokens stay capped in auction: an owner could otherwise put its own account in auction, deposit
    /// past the cap and end the auction (§4 of docs/reliability.md, row 55).
    function deposit(uint256 accountId, address token, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        bool isQuote = token == address(quoteToken);
        // Reverts with UnknownAccount: credits to an id that does not exist would be lost.
        if (isQuote) accounts.marginMode(accountId);
        Config storage config = _configs[token];
        if (!config.listed) revert TokenNotListed(token);
        if (!isQuote) {
            _requireOwnCollateral(accountId, token);
            // Anyone may pay the quote into any account (cures, LP and insurance top-ups), but only the
            // owner or an operator chooses its other collateral: every margin check prices each token an
            // account holds, so a stranger's 1 satoshi of WBTC tied its owner's withdrawals, premium-paying
            // closes and liquidation to the BTC feed (review round 39). An unknown id authorises nobody.
            accounts.requireAuthorized(accountId, msg.sender);
        }

        // The amount received decides what is credited, so the pull comes first. Balances are read
        // only after it: a token's transfer hook runs in between, and although every balance-moving
        // entry point is locked while the guard is held (`transferBalance` included), nothing read
        // before the pull is written back after it.
        uint256 held = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = IERC20(token).balanceOf(address(this)) - held;
        if (received != amount) revert TransferAmountMismatch(token, amount, received);

        // A repayment pays the interest first, as every quote movement does.
        bool debtMoved = isQuote && _settleInterest(accountId);
        int256 balanceBefore = _balances[accountId][token];
        int256 balanceAfter = balanceBefore + amount.toInt256();
        uint256 totalAfter = totalDeposits[token] + amount;
        uint256 cap = config.depositCap;
        // A quote cure is not capped: into an account in auction (ARCHITECTURE.md counts top-ups), or into
        // one below its initial requirement, before it is liquidatable, up to its shortfall: a cap cut is
        // immediate and unthrottled, and the day between risk steps is the owners' time to top up (review
        // round 32); beyond the shortfall a deposit is not a cure (review round 34).
        if (
            totalAfter > cap &&
            balanceAfter > 0 &&
            !(isQuote && _quoteCure(accountId, config, Math.min(amount, totalAfter - cap)))
        ) {
            revert DepositCapExceeded(token, totalAfter, cap);
        }

        totalDeposits[token] = totalAfter;
        if (isQuote) {
            debtMoved = _writeQuoteBalance(accountId, balanceBefore, balanceAfter) || debtMoved;
            // More quote in the vault is lower utilisation: a new rate for the debts outstanding.
            if (debtMoved || _debts >> 128 != 0) _recordRate();
        } else {
            _balances[accountId][token] = balanceAfter;
            // Non-quote balances are never negative, so "was zero" means "not in the set yet".
            if (balanceBefore == 0) _addToken(accountId, token);
        }
        emit Deposited(accountId, token, msg.sender, amount);
    }

    /// @inheritdoc ICollateralVault
    /// @dev Reverts (in this order) with EnforcedPause, ZeroAmount, InvalidRecipient(0), the account
    /// registry's errors for an unknown account or an unauthorised caller, InvalidRecipient for an
    /// operator sending elsewhere than to the owner, InsufficientBalance (also for the quote token: a
    /// withdrawal never creates debt), InsufficientLiquidity, MarginEngineNotSet, and the engine's
    /// AccountFrozen or InsufficientMargin (never for the pool's account, which the pool bounds). An
    /// account with no position, no quote debt and no auction is not margin-checked, so it reads no
    /// price (it withdraws while a feed fails or the sequencer is down).
    function withdraw(
        uint256 accountId,
        address token,
        uint256 amount,
        address to
    ) external nonReentrant whenNotPaused {
        if (amount == 0) revert ZeroAmount();
        if (to == address(0)) revert InvalidRecipient(to);
        address owner = accounts.ownerOf(accountId);
        if (msg.sender != owner) {
            accounts.requireAuthorized(accountId, msg.sender);
            // Operators may trade for the owner but never take the money elsewhere.
            if (to != owner) revert InvalidRecipient(to);
        }

        int256 balance = _balances[accountId][token];
        if (balance < 0 || uint256(balance) < amount) {
            revert InsufficientBalance(accountId, token, balance, amount);
        }
        // amount ≤ balance ≤ type(int256).max, so the cast is exact.
        int256 balanceAfter = balance - int256(amount);
        _balances[accountId][token] = balanceAfter;
        if (balanceAfter == 0 && token != address(quoteToken)) _removeToken(accountId, token);
        _decreaseTotal(token, amount);
        // Less quote in the vault is higher utilisation: a new rate for the debts outstanding.
        if (token == address(quoteToken) && _debts >> 128 != 0) _recordRate();

        IMarginEngine engine = marginEngine;
        if (address(engine) == address(0)) revert MarginEngineNotSet();
        // Checked on the debited state, before any token leaves. An account with nothing at risk needs
        // no price: reading prices anyway locked its owner out for as long as any feed of a token it
        // holds failed (the sequencer down and its grace period, a stale or out-of-bounds USDC feed:
        // review round 33). A frozen account still goes to the engine (`AccountFrozen`).
        // The pool's account (only the pool withdraws from it, and it is never auctioned) is not checked
        // twice: the pool bounds every exit by its free margin on this same state, net of the
        // backstop's shortfall, the uncovered deficit and the traders' debt, which is stricter than IM;
        // a second pricing of the system's heaviest book took LP exits over EIP-7825's 2^24 gas a
        // transaction (§4 row 198).
        if (accountId != _poolAccountId && !hasNothingAtRisk(accountId))
            engine.requireInitialMargin(accountId);

        emit Withdrawn(accountId, token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    // ---------------------------------------------------------------------------------------------
    // Margin engine
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc ICollateralVault
    /// @dev A zero amount is a no-op (so the engine need not special-case zero PnL or fees). Reverts
    /// with NotMarginEngine, ReentrancyGuardReentrantCall inside a deposit or withdrawal,
    /// InsufficientBalance for a non-quote token, TooManyCollaterals when the
    /// receiver has no room for a new non-quote token. Account existence is the engine's concern.
    function transferBalance(
        uint256 fromAccountId,
        uint256 toAccountId,
        address token,
        uint256 amount
    ) external onlyMarginEngine {
        // A token's transfer hook inside `deposit` or `withdraw` could otherwise reach here through a
        // bid or a trade and move balances the outer call has already read.
        if (_reentrancyGuardEntered()) revert ReentrancyGuardReentrantCall();
        if (token == address(quoteToken)) {
            // The vault's quote did not move: only a change of the debt changes utilisation.
            if (_moveQuote(fromAccountId, toAccountId, amount)) _recordRate();
        } else if (amount != 0) {
            int256 delta = amount.toInt256();
            int256 fromBefore = _balances[fromAccountId][token];
            if (fromBefore < delta) revert InsufficientBalance(fromAccountId, token, fromBefore, amount);
            int256 fromAfter = fromBefore - delta;
            _balances[fromAccountId][token] = fromAfter;
            if (fromAfter == 0) _removeToken(fromAccountId, token);
            int256 toBefore = _balances[toAccountId][token];
            _balances[toAccountId][token] = toBefore + delta;
            if (toBefore == 0) _addToken(toAccountId, token);
            emit BalanceTransferred(fromAccountId, toAccountId, token, amount);
        }
    }

    /// @inheritdoc ICollateralVault
    /// @dev `transferBalance` of the quote to the pool's account, then to the insurance fund's (the
    /// accounts `setProtocolAccounts` recorded, the engine's), with the rate recorded once: the engine's
    /// two calls cost every fee a second call and a debtor's a second rate record (review round 153: a
    /// USDC-margined first open 1,415 gas more, a WETH-margined one 2,220). A zero part moves nothing and
    /// emits nothing. Reverts like `transferBalance`. (Named for its selector: among the names tried, the
    /// one whose place in the dispatch cost `collateralValue` and `transferBalance` least.)
    function chargeFees(uint256 accountId, uint256 toPool, uint256 toInsurance) external onlyMarginEngine {
        if (_reentrancyGuardEntered()) revert ReentrancyGuardReentrantCall();
        bool debtMoved = _moveQuote(accountId, _poolAccountId, toPool);
        if (_moveQuote(accountId, _insuranceAccountId, toInsurance) || debtMoved) _recordRate();
    }

    /// @dev Moves `amount` of the quote between accounts, interest first (so that a debt moves, or is
    /// repaid, with what it owes up to now); returns whether the debt changed, which the caller records.
    function _moveQuote(
        uint256 fromAccountId,
        uint256 toAccountId,
        uint256 amount
    ) private returns (bool debtMoved) {
        if (amount == 0) return false;
        int256 delta = amount.toInt256();
        address quote = address(quoteToken);
        debtMoved = _settleInterest(fromAccountId);
        debtMoved = _settleInterest(toAccountId) || debtMoved;
        int256 payerBefore = _balances[fromAccountId][quote];
        debtMoved = _writeQuoteBalance(fromAccountId, payerBefore, payerBefore - delta) || debtMoved;
        int256 payeeBefore = _balances[toAccountId][quote];
        debtMoved = _writeQuoteBalance(toAccountId, payeeBefore, payeeBefore + delta) || debtMoved;
        emit BalanceTransferred(fromAccountId, toAccountId, quote, amount);
    }

    /// @inheritdoc ICollateralVault
    /// @dev A zero amount is a no-op. Not paused by the guardian (fees must always settle). Reverts with
    /// NotMarginEngine or InsufficientLiquidity.
    function payOutQuote(
        uint256 accountId,
        address to,
        uint256 amount
    ) external onlyMarginEngine nonReentrant {
        if (amount == 0) return;
        bool debtMoved = _settleInterest(accountId);
        int256 balanceBefore = _balances[accountId][address(quoteToken)];
        debtMoved =
            _writeQuoteBalance(accountId, balanceBefore, balanceBefore - amount.toInt256()) || debtMoved;
        _decreaseTotal(address(quoteToken), amount);
        if (debtMoved || _debts >> 128 != 0) _recordRate();
        emit QuotePaidOut(accountId, to, amount);
        quoteToken.safeTransfer(to, amount);
    }

    /// @inheritdoc ICollateralVault
    /// @dev The engine calls it once, from `initialize` (itself once).
    function setProtocolAccounts(
        uint256 poolAccountId,
        uint256 backstopAccountId,
        uint256 insuranceAccountId
    ) external onlyMarginEngine {
        (_poolAccountId, _backstopAccountId, _insuranceAccountId) = (
            SafeCast.toUint32(poolAccountId),
            SafeCast.toUint32(backstopAccountId),
            SafeCast.toUint32(insuranceAccountId)
        );
        emit ProtocolAccountsSet(poolAccountId, backstopAccountId, insuranceAccountId);
    }

    /// @inheritdoc ICollateralVault
    /// @dev Locked like every balance move, so a token hook inside a deposit or withdrawal cannot reach it.
    /// Anyone's call charges only the whole quote units accrued (`_settleWholeUnits`): rounded up, a call
    /// every second charged a debtor a unit a second, a cent with a 2-decimal quote, 537 times what a
    /// 26,050 debt accrued (review round 126). The engine's, before it slices a debt, settles to now.
    function settleInterest(uint256 accountId) external nonReentrant {
        // No debt, nothing to ask of the caller: the engine calls this before every slice of a bid.
        if (_balances[accountId][address(quoteToken)] >= 0) return;
        // Nothing to record: the interest moves from owed to settled, and utilisation counts both.
        if (msg.sender == address(marginEngine)) _settleInterest(accountId);
        else _settleWholeUnits(accountId);
    }

    // ---------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc ICollateralVault
    function balanceOf(uint256 accountId, address token) external view returns (int256) {
        return _balances[accountId][token];
    }

    /// @inheritdoc ICollateralVault
    function accruedInterest(uint256 accountId) external view returns (uint256) {
        int256 balance = _balances[accountId][address(quoteToken)];
        return balance < 0 ? _accruedInterest(accountId, uint256(-balance)) : 0;
    }

    /// @inheritdoc ICollateralVault
    function interestReceivable() external view returns (uint256) {
        (uint256 debt, uint256 scaled) = _debtTotals();
        // No debt, nothing to read: the pool's share price reads this on every LP deposit and withdrawal.
        return debt == 0 ? 0 : _receivable(debt, scaled, _indexNow());
    }

    /// @inheritdoc ICollateralVault
    function quoteInterest()
        external
        view
        returns (uint256 index, uint256 rate, uint256 updatedAt, uint256 lenderAccountId)
    {
        InterestClock memory clock = _clock;
        return (_interestIndex, clock.rate, clock.updatedAt, clock.lenderAccountId);
    }

    /// @inheritdoc ICollateralVault
    function interestRateModel() external view returns (InterestRateModel memory) {
        return _model;
    }

    /// @inheritdoc ICollateralVault
    function quoteDebt() external view returns (uint256) {
        return _debts >> 128;
    }

    /// @inheritdoc ICollateralVault
    function paidInterestIndex(uint256 accountId) external view returns (uint256) {
        return _paidIndex[accountId];
    }

    /// @inheritdoc ICollateralVault
    /// @dev The quote token first (when its balance is nonzero, negative included), then the others.
    function collateralTokens(uint256 accountId) external view returns (address[] memory tokens) {
        TokenSet storage set = _tokenSets[accountId];
        uint256 length = set.length;
        uint256 offset = _balances[accountId][address(quoteToken)] != 0 ? 1 : 0;
        tokens = new address[](length + offset);
        if (offset == 1) tokens[0] = address(quoteToken);
        for (uint256 i = 0; i < length; ++i) {
            tokens[i + offset] = _tokenAt(set, i);
        }
    }

    /// @inheritdoc ICollateralVault
    /// @dev Per token: value = balance·price/10^decimals rounded down, then ·weight/1e18 rounded down.
    /// A negative quote balance counts at full value (weight 1) in all three sums, rounded up (more
    /// negative). Reverts if any price fails the oracle's checks (fail closed).
    function collateralValue(uint256 accountId) external view returns (CollateralValue memory) {
        return _collateralValue(accountId, _priceCache(0));
    }

    /// @inheritdoc ICollateralVault
    /// @dev The same numbers as `collateralValue` per account; each token's price is read once.
    function collateralValues(
        uint256[] calldata accountIds
    ) external view returns (CollateralValue[] memory values) {
        PriceCache memory cache = _priceCache(_listedTokens.length);
        values = new CollateralValue[](accountIds.length);
        for (uint256 i; i < accountIds.length; ++i) values[i] = _collateralValue(accountIds[i], cache);
    }

    /// @dev Token prices already read in this call (at most `capacity` tokens; 0 = read every time). A
    /// batch of accounts holds the same few tokens, and a warm oracle read still costs ~4,500 gas.
    struct PriceCache {
        address[] tokens;
        uint256[] prices;
        uint256 size;
    }

    function _priceCache(uint256 capacity) private pure returns (PriceCache memory) {
        return PriceCache(new address[](capacity), new uint256[](capacity), 0);
    }

    function _collateralValue(
        uint256 accountId,
        PriceCache memory cache
    ) private view returns (CollateralValue memory value) {
        address quote = address(quoteToken);
        int256 quoteBalance = _balances[accountId][quote];
        if (quoteBalance > 0) {
            _addValue(value, _configs[quote], quote, uint256(quoteBalance), cache);
        } else if (quoteBalance < 0) {
            Config storage config = _configs[quote];
            uint256 owed = _owedWithInterest(accountId, uint256(-quoteBalance));
            int256 debt = Math
                .mulDiv(
                    owed,
                    _price(config, quote, Math.Rounding.Ceil),
                    10 ** config.decimals,
                    Math.Rounding.Ceil
                )
                .toInt256();
            value.initial -= debt;
            value.maintenance -= debt;
            value.mark -= debt;
        }
        TokenSet storage set = _tokenSets[accountId];
        uint256 length = set.length;
        value.tokenMarks = new TokenMark[](length);
        for (uint256 i = 0; i < length; ++i) {
            address token = _tokenAt(set, i);
            value.tokenMarks[i] = _addTokenValue(value, token, uint256(_balances[accountId][token]), cache);
        }
    }

    /// @dev `_addValue` for a token other than the quote, which the engine may shock: returns its mark.
    function _addTokenValue(
        CollateralValue memory value,
        address token,
        uint256 amount,
        PriceCache memory cache
    ) private view returns (TokenMark memory) {
        Config storage config = _configs[token];
        (uint256 mark, uint256 credit) = _addValue(value, config, token, amount, cache);
        return TokenMark(config.oracleAsset, mark, credit);
    }

    /// @inheritdoc ICollateralVault
    /// @dev `inQuote` counts a quote balance at face, but `usdMark` prices it: an account holding quote
    /// reads the quote's feed, an empty one (the backstop before its first absorb, read by every LP
    /// action) reads none (§4 row 218).
    function markInQuote(uint256 accountId) external view returns (int256 inQuote, int256 usdMark) {
        PriceCache memory cache = _priceCache(MAX_COLLATERALS_PER_ACCOUNT);
        usdMark = _collateralValue(accountId, cache).mark;
        address quote = address(quoteToken);
        Config storage quoteConfig = _configs[quote];
        int256 quoteBalance = _balances[accountId][quote];
        if (quoteBalance < 0) quoteBalance = -_owedWithInterest(accountId, uint256(-quoteBalance)).toInt256();
        inQuote = quoteBalance * int256(10 ** (18 - quoteConfig.decimals));
        if (_tokenSets[accountId].length != 0) {
            uint256 quotePrice = _cachedPrice(quoteConfig, quote, cache);
            inQuote += _othersInQuote(accountId, quotePrice, cache).toInt256();
        }
    }

    /// @dev A quote debt with the interest accrued since the debtor last paid, which is owed already.
    function _owedWithInterest(uint256 accountId, uint256 debt) private view returns (uint256) {
        return debt + _accruedInterest(accountId, debt);
    }

    /// @dev Σ over `accountId`'s tokens other than the quote of their USD mark over `quotePrice`
    /// (each rounded down), in quote WAD.
    function _othersInQuote(
        uint256 accountId,
        uint256 quotePrice,
        PriceCache memory cache
    ) private view returns (uint256 total) {
        TokenSet storage set = _tokenSets[accountId];
        uint256 length = set.length;
        for (uint256 i = 0; i < length; ++i) {
            address token = _tokenAt(set, i);
            Config storage config = _configs[token];
            uint256 amount = uint256(_balances[accountId][token]);
            uint256 usd = Math.mulDiv(amount, _cachedPrice(config, token, cache), 10 ** config.decimals);
            total += Math.mulDiv(usd, WAD, quotePrice);
        }
    }

    /// @inheritdoc ICollateralVault
    /// @dev Reverts with TokenNotListed for a token that was never listed.
    function tokenValue(address token, uint256 amount) external view returns (uint256) {
        Config storage config = _knownConfig(token);
        return _value(config, token, amount);
    }

    /// @inheritdoc ICollateralVault
    function quoteForMargin(uint256 marginUsd) external view returns (uint256) {
        address quote = address(quoteToken);
        Config storage config = _configs[quote];
        uint256 oneToken = 10 ** config.decimals;
        uint256 tokenMargin = Math.mulDiv(
            _value(config, quote, oneToken),
            config.initialWeight,
            WAD,
            Math.Rounding.Ceil
        );
        return Math.mulDiv(marginUsd, oneToken, tokenMargin);
    }

    /// @inheritdoc ICollateralVault
    function collateralConfig(address token) external view returns (CollateralConfig memory) {
        Config storage config = _configs[token];
        return
            CollateralConfig({
                oracleAsset: config.oracleAsset,
                initialWeight: config.initialWeight,
                maintenanceWeight: config.maintenanceWeight,
                shockedWeight: config.shockedWeight,
                decimals: config.decimals,
                isErc4626: config.isErc4626,
                listed: config.listed,
                depositCap: config.depositCap
            });
    }

    /// @inheritdoc ICollateralVault
    function listedTokens() external view returns (address[] memory) {
        return _listedTokens;
    }

    // ---------------------------------------------------------------------------------------------
    // Internals
    // ---------------------------------------------------------------------------------------------

    /// @dev Whether a quote deposit into `accountId` whose part past the cap is `excess` cures it, which the
    /// cap does not bind: the account is in auction, or below its initial requirement by at least the
    /// excess's initial value (its health is read only once the cap is passed). Without that bound any
    /// account a tick under its requirement took any amount past the cap (review round 34: 1,000,000 USDC
    /// past a cut cap behind a 1 ETH long, which then refused every other USDC deposit and the LPs').
    function _quoteCure(
        uint256 accountId,
        Config storage config,
        uint256 excess
    ) internal view returns (bool) {
        if (_inAuction(accountId)) return true;
        IMarginEngine engine = marginEngine;
        if (address(engine) == address(0)) return false;
        IMarginEngine.Health memory h = engine.health(accountId);
        int256 shortfall = h.initialRequirement.toInt256() - h.equityInitial;
        if (shortfall <= 0) return false;
        uint256 cure = Math.mulDiv(_value(config, address(quoteToken), excess), config.initialWeight, WAD);
        return cure <= uint256(shortfall);
    }

    /// @inheritdoc ICollateralVault
    function hasNothingAtRisk(uint256 accountId) public view returns (bool) {
        return
            _balances[accountId][address(quoteToken)] >= 0 &&
            marginEngine.accountMarkets(accountId).length == 0 &&
            !_inAuction(accountId);
    }

    /// @dev Whether `accountId` is frozen by a liquidation auction (false before the engine is wired).
    function _inAuction(uint256 accountId) internal view returns (bool) {
        IMarginEngine engine = marginEngine;
        if (address(engine) == address(0)) return false;
        address auction = engine.liquidator();
        return auction != address(0) && ILiquidationAuction(auction).isFrozen(accountId);
    }

    /// @dev A token ever listed has a nonzero initial weight (the floor is > 0).
    function _knownConfig(address token) private view returns (Config storage config) {
        config = _configs[token];
        if (config.initialWeight == 0) revert TokenNotListed(token);
    }

    /// @dev A token's id in UpdateThrottle: its address, left-padded.
    function _tokenId(address token) private pure returns (bytes32) {
        return bytes32(uint256(uint160(token)));
    }

    function _checkCap(uint256 depositCap) private pure {
        if (depositCap == 0 || depositCap > MAX_DEPOSIT_CAP)
            revert ParameterOutOfBounds("depositCap", depositCap);
    }

    function _checkWeights(uint64 initialWeight, uint64 maintenanceWeight) private pure {
        if (initialWeight < MIN_INITIAL_WEIGHT) revert ParameterOutOfBounds("initialWeight", initialWeight);
        if (maintenanceWeight < initialWeight || maintenanceWeight > MAX_WEIGHT) {
            revert ParameterOutOfBounds("maintenanceWeight", maintenanceWeight);
        }
    }

    function _readDecimals(address token) private view returns (uint8 decimals) {
        decimals = IERC20Metadata(token).decimals();
        if (decimals > MAX_DECIMALS) revert ParameterOutOfBounds("decimals", decimals);
    }

    /// @dev Writes a quote balance, keeping `_debts` (Σ debts and Σ scaled debts)
    /// (the lender's excluded); returns whether the debt changed, which the caller must record
    /// (`_recordRate`). A debtor must have paid its interest first (`_settleInterest`), so its paid
    /// index is the index now; a new debt starts paying from it. Positive balances on both sides write
    /// nothing more, so a trade between accounts without debt pays nothing for the bookkeeping.
    function _writeQuoteBalance(
        uint256 accountId,
        int256 balanceBefore,
        int256 balanceAfter
    ) private returns (bool debtChanged) {
        _balances[accountId][address(quoteToken)] = balanceAfter;
        uint256 debtBefore = balanceBefore < 0 ? uint256(-balanceBefore) : 0;
        uint256 debtAfter = balanceAfter < 0 ? uint256(-balanceAfter) : 0;
        if (debtAfter == debtBefore) return false;
        uint256 index = _indexNow();
        if (debtBefore == 0) _paidIndex[accountId] = index;
        // The lender's own debt pays no interest: not in the scaled sum.
        uint256 scaledBefore;
        uint256 scaledAfter;
        if (accountId != _clock.lenderAccountId) {
            scaledBefore = InterestMath.scaled(debtBefore, index);
            scaledAfter = InterestMath.scaled(debtAfter, index);
        }
        _moveDebts(debtBefore, debtAfter, scaledBefore, scaledAfter);
        return true;
    }

    /// @dev Settles `accountId`'s debt to the index now, the interest rounded up: before a quote movement
    /// (so that what it adds to the debt accrues from now) and at the engine's call before a slice.
    /// Returns whether the debt changed. Kept apart from anyone's call (`_settleWholeUnits`): a flag
    /// between the two cost every quote transfer 20 gas per account settled, debt or not (review round
    /// 127: +80 a perp open, +269 a bid).
    function _settleInterest(uint256 accountId) private returns (bool debtChanged) {
        int256 balance = _balances[accountId][address(quoteToken)];
        if (balance >= 0) return false;
        uint256 index = _indexNow();
        uint256 paidIndex = _paidIndex[accountId];
        if (paidIndex == index) return false;
        uint256 debt = uint256(-balance);
        return _chargeInterest(accountId, debt, paidIndex, index, InterestMath.owed(debt, index, paidIndex));
    }

    /// @dev Anyone's settlement: the whole quote units accrued, rounded down, and the paid index moved
    /// only as far as they pay for (rounded down: the rest stays owed and keeps accruing).
    function _settleWholeUnits(uint256 accountId) private returns (bool debtChanged) {
        int256 balance = _balances[accountId][address(quoteToken)];
        if (balance >= 0) return false;
        uint256 paidIndex = _paidIndex[accountId];
        uint256 debt = uint256(-balance);
        uint256 charged = Math.mulDiv(debt, _indexNow(), paidIndex) - debt;
        if (charged == 0) return false;
        return
            _chargeInterest(
                accountId,
                debt,
                paidIndex,
                Math.mulDiv(paidIndex, debt + charged, debt),
                charged
            );
    }

    /// @dev Moves `charged` of interest from `accountId`'s debt of `debt` to the lender and marks it paid
    /// from `paidIndex` up to `index`; returns whether the debt changed. The lender's own debt (the pool
    /// can owe quote) is marked paid without a charge.
    function _chargeInterest(
        uint256 accountId,
        uint256 debt,
        uint256 paidIndex,
        uint256 index,
        uint256 charged
    ) private returns (bool) {
        _paidIndex[accountId] = index;
        uint256 lender = _clock.lenderAccountId;
        if (accountId == lender) return false;
        address quote = address(quoteToken);
        uint256 debtAfter = debt + charged;
        _balances[accountId][quote] = -debtAfter.toInt256();
        _moveDebts(
            debt,
            debtAfter,
            InterestMath.scaled(debt, paidIndex),
            InterestMath.scaled(debtAfter, index)
        );
        int256 lenderBalance = _balances[lender][quote];
        // The lender may itself owe quote: then this pays its debt down.
        _writeQuoteBalance(lender, lenderBalance, lenderBalance + charged.toInt256());
        emit BalanceTransferred(accountId, lender, quote, charged);
        emit QuoteInterestCharged(accountId, lender, charged);
        return true;
    }

    /// @dev Σ debts and Σ scaled debts.
    function _debtTotals() private view returns (uint256 debt, uint256 scaled) {
        uint256 word = _debts;
        return (word >> 128, uint128(word));
    }

    /// @dev Moves Σ debts from `debtBefore` to `debtAfter` and Σ scaled debts from `scaledBefore` to
    /// `scaledAfter` in one write (each added before it is subtracted). Past 128 bits the error names Σ
    /// debts, the one that overflows: Σ scaled debts is at most it (each scaled debt is at most its debt,
    /// the lender's debt is in the first sum only). `debt | scaled` named neither (review round 157).
    function _moveDebts(
        uint256 debtBefore,
        uint256 debtAfter,
        uint256 scaledBefore,
        uint256 scaledAfter
    ) private {
        (uint256 debt, uint256 scaled) = _debtTotals();
        debt = debt + debtAfter - debtBefore;
        scaled = scaled + scaledAfter - scaledBefore;
        if ((debt | scaled) >> 128 != 0) revert SafeCast.SafeCastOverflowedUintDowncast(128, debt);
        _debts = (debt << 128) | scaled;
    }

    /// @dev Interest a recorded debt of `debt` owes now, rounded up; none for the lender.
    function _accruedInterest(uint256 accountId, uint256 debt) private view returns (uint256) {
        if (accountId == _clock.lenderAccountId) return 0;
        return InterestMath.owed(debt, _indexNow(), _paidIndex[accountId]);
    }

    /// @dev The index now: the last recorded one grown at the rate recorded with it. Every change of
    /// the debt or of the vault's quote records both at once (zero rate while nothing is owed), so the
    /// index is the same however many times an operation asks for it.
    function _indexNow() private view returns (uint256) {
        InterestClock memory clock = _clock;
        uint256 index = _interestIndex;
        if (clock.rate == 0 || block.timestamp == clock.updatedAt) return index;
        return InterestMath.compound(index, clock.rate, block.timestamp - clock.updatedAt);
    }

    /// @dev Interest accrued on Σ debts `debt` (Σ scaled debts `scaled`) at `index` and not yet paid:
    /// Σ scaled debts · index less the debts of all but the lender, rounded down (each scaled debt is
    /// rounded down, so never more than the debtors owe).
    function _receivable(uint256 debt, uint256 scaled, uint256 index) private view returns (uint256) {
        int256 lenderBalance = _balances[_clock.lenderAccountId][address(quoteToken)];
        if (lenderBalance < 0) debt -= uint256(-lenderBalance);
        uint256 owedWithInterest = Math.mulDiv(scaled, index, WAD);
        return owedWithInterest > debt ? owedWithInterest - debt : 0;
    }

    /// @dev Records the index now and the model's rate at the utilisation the operation left (zero
    /// with no debt: nothing accrues until something is owed again).
    /// Utilisation counts what the debts owe at that index, settled or not (review round 170): read from
    /// the settled debts only, anyone's daily `settleInterest` raised a debtor's interest 2.79% over 30
    /// days at 89% utilisation (§4 row 326), and a settlement now leaves the rate as it was.
    function _recordRate() private {
        uint256 index = _indexNow();
        _interestIndex = index;
        (uint256 debt, uint256 scaled) = _debtTotals();
        uint64 rate = debt == 0
            ? 0
            : InterestMath
                .borrowRate(
                    _model,
                    debt + _receivable(debt, scaled, index),
                    totalDeposits[address(quoteToken)]
                )
                .toUint64();
        // Whole, not field by field: the IR build wrote each changed field of a copy back with its own
        // SSTORE (the clock three times on a debtor's first open).
        _clock = InterestClock(rate, uint48(block.timestamp), _clock.lenderAccountId);
    }

    /// @dev Only the quote token can make the vault's holdings short of a withdrawal (see the error).
    function _decreaseTotal(address token, uint256 amount) private {
        uint256 total = totalDeposits[token];
        if (total < amount) revert InsufficientLiquidity(token, total, amount);
        totalDeposits[token] = total - amount;
    }

    /// @dev Only the quote token may be deposited into the protocol's accounts (the backstop receives
    /// collateral through liquidations alone): the pool and the fund pay out the quote token only, so
    /// another token would stay for good and tie their withdrawals to its feed (review rounds 19, 24).
    function _requireOwnCollateral(uint256 accountId, address token) private view {
        if (
            accountId == _poolAccountId || accountId == _backstopAccountId || accountId == _insuranceAccountId
        ) {
            revert ProtocolAccountCollateral(accountId, token);
        }
    }

    /// @dev Adds the value of a positive balance to the three sums, each rounded down; returns its mark and
    /// the credit of its shocked weight (0 for the quote, which is never shocked).
    function _addValue(
        CollateralValue memory value,
        Config storage config,
        address token,
        uint256 amount,
        PriceCache memory cache
    ) private view returns (uint256 mark, uint256 credit) {
        mark = Math.mulDiv(amount, _cachedPrice(config, token, cache), 10 ** config.decimals);
        value.mark += mark.toInt256();
        // Each field read once: every read of the (warm) slot costs 100 gas, on every health check.
        (uint64 initialWeight, uint64 maintenanceWeight, uint64 shocked) = (
            config.initialWeight,
            config.maintenanceWeight,
            config.shockedWeight
        );
        value.initial += Math.mulDiv(mark, initialWeight, WAD).toInt256();
        value.maintenance += Math.mulDiv(mark, maintenanceWeight, WAD).toInt256();
        // One credit, over the maintenance weight, at both levels: the shocked token keeps its weights' gap
        // between equity_IM and equity_MM. Counted at the shocked weight at both, a hedged book's two lines
        // met (IM = MM = its contingency), and one allowed cut of either weight, the shocked weight or the
        // MM floor liquidated a WETH debtor at 7.8× its MM (review round 148, §4 row 451).
        credit = _credit(mark, shocked, maintenanceWeight);
    }

    /// @dev mark·(shockedWeight − weight), rounded down; 0 unless the shocked weight is above the weight. A
    /// plain product: marks are far below 2^196 and weights at most 1e18.
    function _credit(uint256 mark, uint64 shockedWeight, uint64 weight) private pure returns (uint256) {
        return shockedWeight > weight ? (mark * (shockedWeight - weight)) / WAD : 0;
    }

    /// @dev amount·price/10^decimals, rounded down.
    function _value(Config storage config, address token, uint256 amount) private view returns (uint256) {
        return Math.mulDiv(amount, _price(config, token, Math.Rounding.Floor), 10 ** config.decimals);
    }

    /// @dev `_price` rounded down, from `cache` when this call already read it.
    function _cachedPrice(
        Config storage config,
        address token,
        PriceCache memory cache
    ) private view returns (uint256 price) {
        uint256 size = cache.size;
        for (uint256 i; i < size; ++i) if (cache.tokens[i] == token) return cache.prices[i];
        price = _price(config, token, Math.Rounding.Floor);
        if (size < cache.tokens.length) {
            cache.tokens[size] = token;
            cache.prices[size] = price;
            cache.size = size + 1;
        }
    }

    /// @dev USD WAD price of one whole token. For an ERC-4626 share: the underlying's price times the
    /// assets one whole share converts to (`convertToAssets` rounds down, per ERC-4626), over
    /// 10^assetDecimals; rounded down, as every valuation reads it, at most MAX_SHARE_UNIT_VALUE per unit (the
    /// listing bound reads it rounded up, uncapped). The bound holds a share's unit only at listing, and
    /// a donation to a share vault with next to no supply multiplies the unit afterwards: the first
    /// depositor of an empty vault (1 wei of WETH, then 20 WETH sent to it) held one unit worth 30,000
    /// USD, and since slices move whole units, rounded down, every bid on her account paid for its share
    /// of that unit without getting any (review round 36: the backstop's absorb of 47% of her book took
    /// 11,902.94 USDC from the LPs, and she kept the unit for the next one). Counted at ten dollars, such
    /// a unit backs next to nothing and a slice misses at most that much of it; a share vault with real
    /// supply is nowhere near the bound (an 18-decimal ETH share: 3e-15 USD a unit).
    function _price(
        Config storage config,
        address token,
        Math.Rounding rounding
    ) private view returns (uint256 price) {
        price = oracle.getPrice(config.oracleAsset);
        if (config.isErc4626) {
            uint256 oneShare = 10 ** config.decimals;
            uint256 assetsPerShare = IERC4626(token).convertToAssets(oneShare);
            price = Math.mulDiv(price, assetsPerShare, 10 ** config.assetDecimals, rounding);
            if (rounding == Math.Rounding.Floor) price = Math.min(price, MAX_SHARE_UNIT_VALUE * oneShare);
        }
    }

    function _absDiff(uint64 a, uint64 b) private pure returns (uint64) {
        return a > b ? a - b : b - a;
    }

    function _tokenAt(TokenSet storage set, uint256 index) private view returns (address) {
        return index == 0 ? set.first : set.rest[index - 1];
    }

    function _setTokenAt(TokenSet storage set, uint256 index, address token) private {
        if (index == 0) set.first = token;
        else set.rest[index - 1] = token;
    }

    /// @dev Listed tokens (delisted ones included) other than the quote token.
    function _listedOtherTokens() private view returns (uint256 count) {
        address quote = address(quoteToken);
        for (uint256 i; i < _listedTokens.length; ++i) {
            if (_listedTokens[i] != quote) ++count;
        }
    }

    function _addToken(uint256 accountId, address token) private {
        TokenSet storage set = _tokenSets[accountId];
        uint8 length = set.length;
        // Unreachable while listings are capped at MAX_OTHER_TOKENS (listCollateral): the set's capacity.
        if (length == MAX_OTHER_TOKENS) revert TooManyCollaterals(accountId);
        if (length == 0) {
            // Both fields in one write: the common first-token case stays a single new slot.
            (set.first, set.length) = (token, 1);
        } else {
            set.rest[length - 1] = token;
            set.length = length + 1;
        }
    }

    /// @dev Swap-and-pop; the token is in the set (its balance was nonzero).
    function _removeToken(uint256 accountId, address token) private {
        TokenSet storage set = _tokenSets[accountId];
        uint256 last = set.length - 1;
        uint256 index = 0;
        while (_tokenAt(set, index) != token) ++index;
        if (index != last) _setTokenAt(set, index, _tokenAt(set, last));
        _setTokenAt(set, last, address(0));
        set.length = uint8(last);
    }
}
