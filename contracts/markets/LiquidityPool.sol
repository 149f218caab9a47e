// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {AccessManaged} from "@openzeppelin/contracts/access/manager/AccessManaged.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {SignedMath} from "@openzeppelin/contracts/utils/math/SignedMath.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ILiquidityPool} from "../interfaces/ILiquidityPool.sol";
import {IMarginEngine} from "../interfaces/IMarginEngine.sol";
import {ICollateralVault} from "../interfaces/ICollateralVault.sol";
import {IAccounts} from "../interfaces/IAccounts.sol";
import {ILiquidationAuction} from "../interfaces/ILiquidationAuction.sol";
import {IInsuranceFund} from "../interfaces/IInsuranceFund.sol";
import {IMarket} from "../interfaces/IMarket.sol";
import {UpdateThrottle} from "../governance/UpdateThrottle.sol";

/// @title LiquidityPool
/// @notice ERC-4626 vault on the quote token. Every asset it receives is deposited into its own margin
/// account, which takes the other side of every trade and lends the quote traders owe. The share price
/// is that account's mark-to-market equity (quote balance plus the unrealised PnL and funding of its
/// positions and the interest accrued on quote debts) plus the backstop account's (the books nobody bid
/// on, ILiquidationAuction.absorb), less the deficits of insolvent accounts in auction that the
/// insurance fund cannot cover.
/// @dev LP withdrawals go through the collateral vault, so they pass the engine's initial-margin check
/// of the pool account: LPs can never pull the capital that backs open interest. Minted shares are held
/// for `holdingPeriod` before they can leave the LP's address; with an `exitDelay`, LPs leave through a
/// request claimed later at the lower of the two share prices (`requestRedeem`, `claimRedeem`).
contract LiquidityPool is ILiquidityPool, AccessManaged, ERC4626, ReentrancyGuardTransient, UpdateThrottle {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @inheritdoc ILiquidityPool
    uint256 public constant MAX_HOLDING_PERIOD = 7 days;
    /// @inheritdoc ILiquidityPool
    uint256 public constant MAX_EXIT_DELAY = 7 days;
    /// @inheritdoc ILiquidityPool
    uint256 public constant CLAIM_WINDOW = 2 hours;
    /// @inheritdoc ILiquidityPool
    uint256 public constant MAX_CUT_TO_ZERO = 1 hours;

    /// @notice The vault holding the pool account's balances (the LPs' assets).
    ICollateralVault public immutable vault;
    /// @notice The engine that values the pool's account and checks its requirement on every exit.
    IMarginEngine public immutable engine;
    /// @inheritdoc ILiquidityPool
    uint256 public immutable accountId;
    /// @dev 10^(18 − quote decimals): one quote unit in USD WAD.
    uint256 internal immutable quoteScale;

    /// @inheritdoc ILiquidityPool
    uint256 public holdingPeriod;
    /// @dev The lock's end is kept in 2^-32 seconds: averaged in, a mint of dust then moves it by about
    /// 2^-32 s. In whole seconds, rounding up made every 1-wei mint a second, so one per block held
    /// any LP's deposit back for as long as the griefer paid gas (docs/reliability.md §4, row 45).
    struct Lock {
        uint160 shares;
        uint96 unlocksAtX32;
    }

    uint256 internal constant LOCK_TIME_SCALE = 2 ** 32;
    mapping(address owner => Lock) internal _locks;

    /// @inheritdoc ILiquidityPool
    uint256 public exitDelay;

    /// @dev Shares moved into the pool to be redeemed, their worth then (quote units) and when they can
    /// be claimed.
    struct RedeemRequest {
        uint128 shares;
        uint128 assets;
        uint64 claimableAt;
    }

    mapping(address owner => RedeemRequest) internal _redeemRequests;

    /// @dev True inside deposit, mint, withdraw and redeem. There a valuation that fails (a stale or
    /// broken feed under the pool's book) reverts with the feed's error, so the caller learns why; in
    /// the max* views, which ERC-4626 forbids to revert and integrators call to size their orders, it
    /// reads as closed (0).
    bool private transient _acting;

    modifier acting() {
        _acting = true;
        _;
        _acting = false;
    }

    /// @dev The pool's and the backstop's position values (USD WAD) for the rest of a deposit, mint,
    /// withdraw, redeem or claimRedeem once `_valueBook` or `_valueExit` read them: these read the share
    /// price two or three times (max*, preview*, a lock check) on one book, and no LP action moves a
    /// position (the pool's quote balance, which they move, is read each time). The heaviest book's
    /// values cost ~1.4M gas a read (§4 row 198). A view called from inside the action (a transfer hook of the quote token, which
    /// USDC does not have) reads these.
    int256 private transient _bookValue;
    bool private transient _bookValued;

    /// @dev An exit's spare initial margin (`_spareMargin`), read by the same evaluations as its book
    /// value (`_valueExit`), until the pool's quote leaves: the spare counts that quote.
    int256 private transient _spare;
    bool private transient _spareValued;

    modifier clearsBookValue() {
        _;
        _bookValued = false;
        _spareValued = false;
    }

    /// @dev Called where an action first needs a share price, after the refusals that need none
    /// (`RedeemRequestRequired`, a redeem's `SharesLocked`, a paused vault's max* of 0): valued before
    /// them, a failing feed's error hid the way out and every refusal paid for the whole book (review
    /// round 84, §4 row 207).
    function _valueBook() internal {
        _bookValue = positionValue() + backstopValue();
        _bookValued = true;
    }

    /// @dev An exit's `_valueBook`: one initial-margin evaluation of each book gives its value and its
    /// margin. Valued apart, each book's positions were priced twice (for the share price, and in its
    /// initial-margin evaluation): an LP's withdrawal took 16.16M gas, 96% of 2^24, with both books
    /// holding every perp market and live series (§4 row 210). Where an evaluation fails but the share
    /// price may not (a feed only the margin reads: the quote's, the pool's collateral), the book is
    /// valued alone and the margin left to `_freeQuote`, which names the feed: the refusals before it (a
    /// lock, a settlement pending) are named as they were before the exit valued both at once (§4 row
    /// 214).
    function _valueExit() internal {
        (bool priced, int256 spare, int256 positions) = _spareMargin(false);
        if (!priced) {
            _valueBook();
            return;
        }
        _bookValue = _bookValueWith(positions);
        _bookValued = true;
        _spare = spare;
        _spareValued = true;
    }

    /// @dev Both books' value from their positions' (`_spareMargin`): the backstop's collateral added.
    function _bookValueWith(int256 positions) internal view returns (int256) {
        uint256 backstop = engine.backstopAccountId();
        return backstop == 0 ? positions : positions + _collateralInQuote(backstop);
    }

    /// @dev The pool's and the backstop's position values: as read at the start of the action, if any.
    function _bookValueNow() internal view returns (int256) {
        return _bookValued ? _bookValue : positionValue() + backstopValue();
    }

    constructor(
        address authority,
        ICollateralVault vault_,
        IAccounts accounts,
        IMarginEngine engine_,
        string memory name_,
        string memory symbol_
    ) AccessManaged(authority) ERC20(name_, symbol_) ERC4626(vault_.quoteToken()) {
        vault = vault_;
        engine = engine_;
        accountId = accounts.createAccount(IAccounts.MarginMode.CROSS);
        quoteScale = 10 ** (18 - IERC20Metadata(address(vault_.quoteToken())).decimals());
        IERC20(asset()).forceApprove(address(vault_), type(uint256).max);
    }

    /// @inheritdoc ILiquidityPool
    function setHoldingPeriod(uint256 holdingPeriod_) external restricted {
        if (holdingPeriod_ > MAX_HOLDING_PERIOD) revert HoldingPeriodTooLong(holdingPeriod_);
        _checkCut("holdingPeriod", holdingPeriod, holdingPeriod_);
        holdingPeriod = holdingPeriod_;
        emit HoldingPeriodSet(holdingPeriod_);
    }

    /// @inheritdoc ILiquidityPool
    function setExitDelay(uint256 exitDelay_) external restricted {
        if (exitDelay_ > MAX_EXIT_DELAY) revert ExitDelayTooLong(exitDelay_);
        _checkCut("exitDelay", exitDelay, exitDelay_);
        exitDelay = exitDelay_;
        emit ExitDelaySet(exitDelay_);
    }

    /// @inheritdoc ILiquidityPool
    function recoverSurplus(
        address token,
        address to
    ) external restricted nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ICollateralVault.InvalidRecipient(to);
        amount = token == address(this) ? 0 : IERC20(token).balanceOf(address(this));
        if (amount == 0) revert ICollateralVault.NoSurplus(token);
        emit SurplusRecovered(token, to, amount);
        IERC20(token).safeTransfer(to, amount);
    }

    /// @dev The holding period and the exit delay protect the LPs from each other; cut at once, they
    /// reopen what they closed for whoever knows the cut is coming (§4, row 56: a cut to 0 for one
    /// block made 5,225 for an LP stepping out before a loss). A cut may at most halve the value, or
    /// take it to 0 from `MAX_CUT_TO_ZERO` or less, once a day; a raise only protects more, and is free.
    function _checkCut(bytes32 parameter, uint256 current, uint256 next) internal {
        if (next >= current) return;
        if (next == 0 ? current > MAX_CUT_TO_ZERO : next < current / 2) {
            revert ProtectionCutTooLarge(parameter, current, next);
        }
        _throttle(parameter, bytes32(0), MIN_UPDATE_INTERVAL);
    }

    /// @inheritdoc ILiquidityPool
    function unlockedShares(address owner) public view returns (uint256) {
        uint256 balance = balanceOf(owner);
        Lock memory lock = _locks[owner];
        if (lock.unlocksAtX32 <= block.timestamp * LOCK_TIME_SCALE) return balance;
        return balance > lock.shares ? balance - lock.shares : 0;
    }

    /// @inheritdoc ILiquidityPool
    function sharesLock(address owner) public view returns (uint256 shares, uint256 unlocksAt) {
        Lock memory lock = _locks[owner];
        return (lock.shares, Math.ceilDiv(lock.unlocksAtX32, LOCK_TIME_SCALE));
    }

    /// @notice Quote balance plus the value of the pool's positions and the interest owed to it, less
    /// the uncovered deficit, in quote units, rounded down; zero if the account is under water.
    /// @dev The positions' value counts an insolvent trader's whole loss as the pool's gain, but the
    /// part the insurance fund cannot pay comes back out of the pool when the account's book is taken:
    /// without the deduction an LP who sees the auction could redeem before the loss is socialised.
    function totalAssets() public view override returns (uint256) {
        int256 total = _equity();
        return total > 0 ? uint256(total) : 0;
    }

    /// @dev `totalAssets` before it is clamped at zero.
    function _equity() internal view returns (int256) {
        return _equityWith(_bookValueNow());
    }

    /// @dev `_equity` with the value of the pool's positions and the backstop given (USD WAD).
    function _equityWith(int256 value) internal view returns (int256) {
        int256 balance = vault.balanceOf(accountId, asset());
        // Round the value down (floor division for negatives) so LPs never over-count.
        int256 valueInQuote = value / int256(quoteScale);
        if (value < 0 && value % int256(quoteScale) != 0) valueInQuote -= 1;
        // Interest traders' quote debts owe the pool counts as its own, as it counts in their equity.
        return balance + valueInQuote + int256(vault.interestReceivable()) - int256(uncoveredDeficit());
    }

    /// @inheritdoc ILiquidityPool
    function backstopValue() public view returns (int256) {
        uint256 backstop = engine.backstopAccountId();
        // Before the engine is wired there is no backstop.
        if (backstop == 0) return 0;
        return _collateralInQuote(backstop) + engine.positionsValue(backstop);
    }

    /// @dev The backstop's collateral counted in the quote token, as the pool's own balance is: valued in
    /// USD at the quote's oracle price, a depeg moved the share price by the backstop's USDC though none
    /// moved (review round 11, F1). Positions settle in quote at 1 USD each.
    function _collateralInQuote(uint256 backstop) internal view returns (int256 collateral) {
        (collateral, ) = vault.markInQuote(backstop);
    }

    /// @inheritdoc ILiquidityPool
    function uncoveredDeficit() public view returns (uint256) {
        address auction = engine.liquidator();
        // Before the engine is wired there are no auctions.
        if (auction == address(0)) return 0;
        uint256 pending = ILiquidationAuction(auction).pendingDeficit();
        if (pending == 0) return 0;
        uint256 fund = IInsuranceFund(engine.insuranceFund()).balance();
        return pending > fund ? pending - fund : 0;
    }

    /// @inheritdoc ILiquidityPool
    /// @dev The engine's position values alone: a share price needs no requirements, and a withdrawal
    /// reads it twice (`maxWithdraw`, `previewWithdraw`) beside its free margin, which prices them.
    function positionValue() public view returns (int256) {
        return engine.positionsValue(accountId);
    }

    /// @notice Assets `receiver` can deposit now: none while the pool is under water (equity below zero,
    /// or zero with shares outstanding) or `settlementPending`, otherwise the room left under the vault's
    /// deposit cap on the quote token.
    /// @dev Under water, ERC-4626's conversion would give a new depositor nearly every share for assets
    /// that only pay down the pool's deficit: its deposit would be worth nothing the moment it landed.
    /// Like every max*, 0 while a feed the pool's book reads fails (the share price is unknown then);
    /// totalAssets, convertTo* and preview* revert with the feed's error instead, having no price to
    /// give.
    function maxDeposit(address) public view override returns (uint256) {
        return _depositsClosed() ? 0 : _depositRoom();
    }

    /// @notice Shares `receiver` can mint now (see maxDeposit).
    function maxMint(address) public view override returns (uint256) {
        if (_depositsClosed()) return 0;
        uint256 room = _depositRoom();
        return room == type(uint256).max ? room : _convertToShares(room, Math.Rounding.Floor);
    }

    /// @notice Assets `owner` can withdraw now: its unlocked shares' worth, capped by the pool's free margin
    /// (equity_IM − IM, in quote units at the quote's price and initial weight) and by its quote balance
    /// less the vault's `quoteDebt`, each less `uncoveredDeficit` (the insolvent books' takes will pay it
    /// out of that balance); none while the vault is paused or `settlementPending`, or while LPs exit
    /// through requests (`exitDelay` > 0).
    /// @dev The debt cap makes the pool the lender of the quote traders owe: their realised losses
    /// credited the pool in quote the vault never received, and without the cap LPs could withdraw
    /// other depositors' USDC in its place, leaving the last of them unable to withdraw their own.
    function maxWithdraw(address owner) public view override returns (uint256) {
        if (exitDelay != 0 || _withdrawalsClosed()) return 0;
        (uint256 free, uint256 assets) = _exitQuote();
        if (free == 0) return 0;
        return Math.min(Math.mulDiv(unlockedShares(owner), assets + 1, _virtualSupply()), free);
    }

    /// @notice Shares `owner` can redeem now (see maxWithdraw); 0 while LPs exit through requests.
    function maxRedeem(address owner) public view override returns (uint256) {
        if (exitDelay != 0 || _withdrawalsClosed()) return 0;
        (uint256 free, uint256 assets) = _exitQuote();
        if (free == 0) return 0;
        return Math.min(unlockedShares(owner), Math.mulDiv(free, _virtualSupply(), assets + 1));
    }

    /// @inheritdoc ILiquidityPool
    /// @dev One call per market the pool's account and the backstop hold. The backstop counts on its
    /// own: where other traders offset its series the pool's account holds none of it, but the
    /// backstop's value still jumps.
    function settlementPending() public view returns (bool) {
        return _nearSettlement(accountId) || _nearSettlement(engine.backstopAccountId());
    }

    /// @notice ERC-4626 `deposit`. The shares minted to `receiver` are locked for `holdingPeriod`
    /// (`SharesLocked`); where a feed under the pool's book fails it reverts with that feed's error.
    function deposit(
        uint256 assets,
        address receiver
    ) public override nonReentrant acting clearsBookValue returns (uint256) {
        _valueBook();
        return super.deposit(assets, receiver);
    }

    /// @notice ERC-4626 `mint`, locked and reverting as `deposit`.
    function mint(
        uint256 shares,
        address receiver
    ) public override nonReentrant acting clearsBookValue returns (uint256) {
        _valueBook();
        return super.mint(shares, receiver);
    }

    /// @notice ERC-4626 `withdraw`: reverts with RedeemRequestRequired while `exitDelay` > 0 (LPs leave
    /// through `requestRedeem`), and with SharesLocked for shares still in their holding period.
    function withdraw(
        uint256 assets,
        address receiver,
        address owner
    ) public override nonReentrant acting clearsBookValue returns (uint256) {
        _requireSynchronousExit();
        if (!_vaultPaused()) _valueExit();
        // A running lock is the likelier reason to refuse: name it rather than the max* it lowered.
        // (Beyond the owner's whole balance ERC-4626's own check refuses it, and previewWithdraw of
        // an absurd amount would overflow.)
        if (
            _locks[owner].unlocksAtX32 > block.timestamp * LOCK_TIME_SCALE &&
            assets <= _convertToAssets(balanceOf(owner), Math.Rounding.Floor)
        ) {
            _requireUnlocked(owner, previewWithdraw(assets));
        }
        return super.withdraw(assets, receiver, owner);
    }

    /// @notice ERC-4626 `redeem`, reverting as `withdraw`.
    function redeem(
        uint256 shares,
        address receiver,
        address owner
    ) public override nonReentrant acting clearsBookValue returns (uint256) {
        _requireSynchronousExit();
        // Beyond the owner's balance ERC-4626's own error, not a lock with no unlock time (round 84).
        if (shares <= balanceOf(owner)) _requireUnlocked(owner, shares);
        if (!_vaultPaused()) _valueExit();
        return super.redeem(shares, receiver, owner);
    }

    /// @inheritdoc ILiquidityPool
    function requestRedeem(uint256 shares) external nonReentrant acting returns (uint256 assets) {
        RedeemRequest memory pending = _redeemRequests[msg.sender];
        if (pending.shares != 0) revert RedeemRequestPending(msg.sender, pending.claimableAt);
        assets = _convertToAssets(shares, Math.Rounding.Floor);
        // Shares worth nothing now (dust, or a pool under water) would be paid nothing at any later
        // price: the claim never pays more than the request's worth.
        if (assets == 0) revert InvalidRedeemShares(shares, 0);
        uint256 claimableAt = block.timestamp + exitDelay;
        // Out of the unlocked balance only (`_update`): the request cannot free locked shares.
        _transfer(msg.sender, address(this), shares);
        _redeemRequests[msg.sender] = RedeemRequest({
            shares: shares.toUint128(),
            assets: assets.toUint128(),
            claimableAt: claimableAt.toUint64()
        });
        emit RedeemRequested(msg.sender, shares, assets, claimableAt);
    }

    /// @inheritdoc ILiquidityPool
    function claimRedeem(
        uint256 shares,
        address receiver,
        uint256 minAssets
    ) external nonReentrant acting clearsBookValue returns (uint256 assets) {
        RedeemRequest memory request = _claimableRequest(msg.sender);
        // A refusal that needs no price comes before the valuation (§4 rows 207, 213).
        _requireClaimShares(request, shares);
        bool closed = _withdrawalsClosed();
        if (closed) _valueBook();
        else _valueExit();
        uint256 requestedAssets;
        (assets, requestedAssets) = _claimValue(request, shares);
        uint256 available;
        if (!closed) (available, ) = _freeQuote();
        if (assets > available) revert ClaimUnavailable(assets, available);
        if (assets < minAssets) revert SlippageExceeded(assets, minAssets);
        if (shares == request.shares) {
            delete _redeemRequests[msg.sender];
        } else {
            // Both shrink by the claimed part: what remains keeps its price at the request.
            _redeemRequests[msg.sender].shares = request.shares - uint128(shares);
            _redeemRequests[msg.sender].assets = request.assets - uint128(requestedAssets);
        }
        // What the shares were worth above `assets` stays in the pool, with the LPs who carried it.
        _burn(address(this), shares);
        _spareValued = false;
        vault.withdraw(accountId, asset(), assets, receiver);
        emit Withdraw(msg.sender, receiver, msg.sender, assets, shares);
    }

    /// @inheritdoc ILiquidityPool
    function cancelRedeemRequest() external nonReentrant acting returns (uint256 shares) {
        RedeemRequest memory request = _pendingRequest(msg.sender);
        // Back at most what the request was worth: a request that gave its gains back when unused was
        // a free option — ask every day, cancel when the price rose, claim when a loss is coming
        // (review round 12, F1). What the shares gained stays with the LPs, as a claim leaves it.
        shares = _sharesWorth(request);
        delete _redeemRequests[msg.sender];
        _transfer(address(this), msg.sender, shares);
        if (shares < request.shares) _burn(address(this), request.shares - shares);
        emit RedeemRequestCancelled(msg.sender, shares, request.shares - shares);
    }

    /// @inheritdoc ILiquidityPool
    function redeemRequest(
        address owner
    ) external view returns (uint256 shares, uint256 assets, uint256 claimableAt, uint256 claimableUntil) {
        RedeemRequest memory request = _redeemRequests[owner];
        if (request.shares == 0) return (0, 0, 0, 0);
        return (
            request.shares,
            request.assets,
            request.claimableAt,
            uint256(request.claimableAt) + CLAIM_WINDOW
        );
    }

    /// @inheritdoc ILiquidityPool
    function previewClaim(address owner, uint256 shares) external view returns (uint256 assets) {
        RedeemRequest memory request = _pendingRequest(owner);
        _requireClaimShares(request, shares);
        (assets, ) = _claimValue(request, shares);
    }

    /// @inheritdoc ILiquidityPool
    /// @dev The claim of s shares pays min(⌊A·s/S⌋, ⌊s·T/N⌋) (T, N with the virtual assets and shares),
    /// which is at most `free` when either term is: s ≤ ((free+1)·S − 1)/A or s ≤ ((free+1)·N − 1)/T.
    /// Without it a frontend could not size a partial claim of a request above the free margin, and the
    /// SDK's default whole claim reverted `ClaimUnavailable` for the whole window (review round 47, F2).
    function maxClaim(address owner) external view returns (uint256) {
        RedeemRequest memory request = _redeemRequests[owner];
        if (request.shares == 0 || block.timestamp < request.claimableAt) return 0;
        if (block.timestamp > uint256(request.claimableAt) + CLAIM_WINDOW || _withdrawalsClosed()) return 0;
        (uint256 free, uint256 assets) = _exitQuote();
        if (free == 0) return 0;
        uint256 supply = _virtualSupply();
        assets += 1;
        uint256 byRequest = ((free + 1) * request.shares - 1) / request.assets;
        uint256 byPrice = ((free + 1) * supply - 1) / assets;
        return Math.min(request.shares, Math.max(byRequest, byPrice));
    }

    /// @inheritdoc ILiquidityPool
    function depositWithLimit(
        uint256 assets,
        address receiver,
        uint256 minShares
    ) external returns (uint256 shares) {
        shares = deposit(assets, receiver);
        if (shares < minShares) revert SlippageExceeded(shares, minShares);
    }

    /// @inheritdoc ILiquidityPool
    function mintWithLimit(
        uint256 shares,
        address receiver,
        uint256 maxAssets
    ) external returns (uint256 assets) {
        assets = mint(shares, receiver);
        if (assets > maxAssets) revert SlippageExceeded(assets, maxAssets);
    }

    /// @inheritdoc ILiquidityPool
    function withdrawWithLimit(
        uint256 assets,
        address receiver,
        address owner,
        uint256 maxShares
    ) external returns (uint256 shares) {
        shares = withdraw(assets, receiver, owner);
        if (shares > maxShares) revert SlippageExceeded(shares, maxShares);
    }

    /// @inheritdoc ILiquidityPool
    function redeemWithLimit(
        uint256 shares,
        address receiver,
        address owner,
        uint256 minAssets
    ) external returns (uint256 assets) {
        assets = redeem(shares, receiver, owner);
        if (assets < minAssets) revert SlippageExceeded(assets, minAssets);
    }

    function _deposit(address caller, address receiver, uint256 assets, uint256 shares) internal override {
        super._deposit(caller, receiver, assets, shares);
        vault.deposit(accountId, asset(), assets);
    }

    function _withdraw(
        address caller,
        address receiver,
        address owner,
        uint256 assets,
        uint256 shares
    ) internal override {
        // An exit that burns nothing moves nothing, and anyone could send it in any owner's name (OZ spends
        // an allowance of 0): refused as the vault refused it before dust exits were let through (§4 row 346).
        if (shares == 0) revert ICollateralVault.ZeroAmount();
        if (caller != owner) _spendAllowance(owner, caller, shares);
        _burn(owner, shares);
        // The vault debits the pool account and pays out; it does not margin-check the pool's account,
        // whose bound is this pool's (`_freeQuote`, read by every exit before it comes here; §4 row 198).
        _spareValued = false;
        // Shares worth less than a quote unit redeem for 0, which the vault refuses (`ZeroAmount`): they
        // are burned for nothing, as ERC-4626 prices them, so `maxRedeem` never names a redeem that reverts.
        if (assets != 0) vault.withdraw(accountId, asset(), assets, receiver);
        emit Withdraw(caller, receiver, owner, assets, shares);
    }

    /// @dev Shares leave an address (transfer, redeem, withdraw) only out of its unlocked balance; minted
    /// shares join the receiver's lock.
    /// The pool's own address holds requests' shares, which no lock binds.
    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && from != address(this)) _requireUnlocked(from, value);
        super._update(from, to, value);
        if (from == address(0) && to != address(this)) _lock(to, value);
    }

    /// @dev Locks `shares` minted to `owner` for the holding period. A running lock takes the
    /// share-weighted average of its unlock time and the new one: a gift of dust cannot hold an LP's
    /// deposit back, and new shares only unlock early in proportion to the locked shares beside them
    /// (to buy a jump with 1,000,000 for a minute, an LP would need 1,440 times that locked for a day).
    function _lock(address owner, uint256 shares) internal {
        uint256 period = holdingPeriod;
        if (period == 0 || shares == 0) return;
        Lock memory lock = _locks[owner];
        uint256 unlocksAt = (block.timestamp + period) * LOCK_TIME_SCALE;
        if (lock.unlocksAtX32 > block.timestamp * LOCK_TIME_SCALE) {
            uint256 total = shares + lock.shares;
            // Rounded up (against the minter), by at most 2^-32 s.
            unlocksAt = Math.ceilDiv(shares * unlocksAt + uint256(lock.shares) * lock.unlocksAtX32, total);
            shares = total;
        }
        _locks[owner] = Lock({shares: shares.toUint160(), unlocksAtX32: uint96(unlocksAt)});
    }

    function _requireSynchronousExit() internal view {
        uint256 delay = exitDelay;
        if (delay != 0) revert RedeemRequestRequired(delay);
    }

    /// @dev `owner`'s request, reverting with NoRedeemRequest when it has none.
    function _pendingRequest(address owner) internal view returns (RedeemRequest memory request) {
        request = _redeemRequests[owner];
        if (request.shares == 0) revert NoRedeemRequest(owner);
    }

    /// @dev `owner`'s request, reverting unless it is in its claim window.
    function _claimableRequest(address owner) internal view returns (RedeemRequest memory request) {
        request = _pendingRequest(owner);
        uint256 until = uint256(request.claimableAt) + CLAIM_WINDOW;
        if (block.timestamp < request.claimableAt || block.timestamp > until) {
            revert NotClaimable(owner, request.claimableAt, until);
        }
    }

    /// @dev The most of `request`'s shares worth no more than its assets once the rest are burned (the
    /// burn raises the share price, theirs too): s' with s'·T / (S − s + s') ≤ A, T and S counting the
    /// virtual assets and shares; all of them when they are worth less than A now.
    function _sharesWorth(RedeemRequest memory request) internal view returns (uint256) {
        uint256 supply = _virtualSupply();
        uint256 assets = totalAssets() + 1;
        if (request.assets >= assets) return request.shares;
        uint256 worth = Math.mulDiv(request.assets, supply - request.shares, assets - request.assets);
        return Math.min(request.shares, worth);
    }

    /// @dev A claim takes at least one and at most all of its request's shares.
    function _requireClaimShares(RedeemRequest memory request, uint256 shares) internal pure {
        if (shares == 0 || shares > request.shares) revert InvalidRedeemShares(shares, request.shares);
    }

    /// @dev What `shares` of `request` (`_requireClaimShares`) pay now: the lower of their part of the
    /// request's assets (`requestedAssets`, rounded down) and their worth at today's share price.
    function _claimValue(
        RedeemRequest memory request,
        uint256 shares
    ) internal view returns (uint256 assets, uint256 requestedAssets) {
        requestedAssets = Math.mulDiv(request.assets, shares, request.shares);
        assets = Math.min(requestedAssets, _convertToAssets(shares, Math.Rounding.Floor));
    }

    function _requireUnlocked(address owner, uint256 shares) internal view {
        uint256 unlocked = unlockedShares(owner);
        if (shares > unlocked) {
            // Beyond the balance, ERC-20's own error, not a lock (review round 141: a transfer was
            // refused as a lock unlocking in 1970, as row 209's redeem was); read only on this path.
            uint256 balance = balanceOf(owner);
            if (shares > balance) revert ERC20InsufficientBalance(owner, balance, shares);
            (, uint256 unlocksAt) = sharesLock(owner);
            revert SharesLocked(owner, shares, unlocked, unlocksAt);
        }
    }

    /// @dev The share supply with OpenZeppelin's virtual shares, as its conversions count it (with
    /// totalAssets() + 1, the virtual assets): the max* views convert over a total they have already
    /// valued, and the claim rules solve for shares, so they write the conversion out.
    function _virtualSupply() internal view returns (uint256) {
        return totalSupply() + 10 ** _decimalsOffset();
    }

    /// @dev Virtual shares make the first-depositor inflation attack unprofitable.
    function _decimalsOffset() internal pure override returns (uint8) {
        return 6;
    }

    function _nearSettlement(uint256 holder) internal view returns (bool) {
        IMarginEngine.MarketKey[] memory held = engine.accountMarkets(holder);
        for (uint256 i; i < held.length; ++i) {
            if (IMarket(held[i].market).nearSettlement(held[i].marketId)) return true;
        }
        return false;
    }

    function _depositsClosed() internal view returns (bool) {
        return _underwater() || settlementPending();
    }

    function _withdrawalsClosed() internal view returns (bool) {
        return _vaultPaused() || settlementPending();
    }

    function _vaultPaused() internal view returns (bool) {
        return Pausable(address(vault)).paused();
    }

    /// @dev Shares outstanding and nothing behind them, or a deficit even with no shares (every LP left
    /// and a trader's loss went unpaid since): either way a deposit would only pay the deficit down.
    /// Unpriced counts as under water (see `_acting`).
    function _underwater() internal view returns (bool) {
        int256 value;
        if (_acting) {
            value = _bookValueNow();
        } else {
            try engine.positionsValue(accountId) returns (int256 priced) {
                value = priced;
            } catch {
                return true;
            }
            try this.backstopValue() returns (int256 backstop) {
                value += backstop;
            } catch {
                return true;
            }
        }
        int256 equity = _equityWith(value);
        return equity < 0 || (equity == 0 && totalSupply() != 0);
    }

    /// @dev The quote token's deposit cap less its total deposits (what `vault.deposit` accepts).
    function _depositRoom() internal view returns (uint256) {
        address quote = asset();
        uint256 cap = vault.collateralConfig(quote).depositCap;
        uint256 total = vault.totalDeposits(quote);
        return cap > total ? cap - total : 0;
    }

    /// @dev `engine.initialMargin(id)` as equity_IM − IM and the position values it counted, and false for
    /// `priced` where it reverts and not `strict` (outside an action, see `_acting`; `_valueExit`); when
    /// `strict` the revert, with the failed feed's error, is the caller's. The initial level alone: an
    /// exit never needed the maintenance grid, and the pool's and the backstop's grids are the heaviest
    /// there are (§4 row 198).
    function _initialMarginOf(
        uint256 id,
        bool strict
    ) internal view returns (bool priced, int256 margin, int256 positions) {
        int256 equity;
        uint256 requirement;
        if (strict) {
            (equity, requirement, positions) = engine.initialMargin(id);
        } else {
            try engine.initialMargin(id) returns (int256 e, uint256 r, int256 v) {
                (equity, requirement, positions) = (e, r, v);
            } catch {
                return (false, 0, 0);
            }
        }
        return (true, equity - SafeCast.toInt256(requirement), positions);
    }

    /// @dev The pool's equity_IM − IM net of the backstop's shortfall against its own initial
    /// requirement, and both books' position values (the backstop's collateral apart). The backstop has
    /// no margin of its own and nobody liquidates it, so the LPs' capital is what backs its book. The
    /// pool's account alone can look flat (traders offsetting the backstop's skew) while the LPs hold
    /// the backstop's whole position (review of session 10, finding 1). Conservative where the two
    /// books offset: each is margined as if the other were not there.
    function _spareMargin(bool strict) internal view returns (bool priced, int256 spare, int256 positions) {
        (priced, spare, positions) = _initialMarginOf(accountId, strict);
        uint256 backstopId = engine.backstopAccountId();
        // Before the engine is wired there is no backstop (id 0).
        if (!priced || backstopId == 0) return (priced, spare, positions);
        (bool backstopPriced, int256 backstopMargin, int256 backstopPositions) = _initialMarginOf(
            backstopId,
            strict
        );
        if (!backstopPriced) return (false, 0, 0);
        return (true, spare + SignedMath.min(backstopMargin, 0), positions + backstopPositions);
    }

    /// @dev The pool's free margin in quote units (`_spareMargin`, or the exit's `_spare`), 0 when it
    /// cannot be priced (see `_acting`), less the uncovered deficit the pool will pay when the insolvent
    /// books are taken (`uncoveredDeficit`); and the position values its evaluation counted (0 where
    /// `_valueExit` made it: `_bookValue` holds them then).
    function _freeQuote() internal view returns (uint256 free, int256 positions) {
        bool priced;
        int256 spare;
        (priced, spare, positions) = _spareValued ? (true, _spare, int256(0)) : _spareMargin(_acting);
        if (!priced || spare <= 0) return (0, positions);
        // Withdrawing one quote token lowers equity_IM by its price times its initial weight.
        address quote = asset();
        free = vault.quoteForMargin(uint256(spare));
        // The pool's equity counts an insolvent trader's whole loss as its gain, but the part the fund
        // cannot cover leaves its balance when the book is taken: that quote cannot be withdrawn first
        // (review round 53: the only LP withdrew all but the requirement, and the take left the pool
        // 4,910.05 USDC below it).
        uint256 uncovered = uncoveredDeficit();
        if (free <= uncovered) return (0, positions);
        free -= uncovered;
        // Quote that traders owe is part of the pool's balance (their losses paid it) but not in the
        // vault: the pool keeps that much back, so every other account's positive quote stays there.
        // The uncovered deficit too: the take pays it out of this balance, not out of the pool's
        // unrealised gains (review round 57: with the margin roomy, the only LP withdrew the whole
        // balance and the take left the pool 4,970.35 USDC in debt, the vault that much short).
        int256 balance = vault.balanceOf(accountId, quote);
        uint256 kept = vault.quoteDebt() + uncovered;
        free = balance > 0 && uint256(balance) > kept ? Math.min(free, uint256(balance) - kept) : 0;
    }

    /// @dev `_freeQuote` and `totalAssets` from one initial-margin evaluation of each book, as an exit
    /// reads them (`_valueExit`): the max* views priced each book twice (its margin, then its share
    /// price), `maxWithdraw` 15.65M-16.09M gas on the heaviest books the caps allow, 96% of 2^24 and more
    /// than the exit itself (§4 row 221). `assets` is 0 where `free` is: the share price is then not read
    /// (a failed feed gives 0, not its error, as ERC-4626 asks of max*).
    function _exitQuote() internal view returns (uint256 free, uint256 assets) {
        int256 positions;
        (free, positions) = _freeQuote();
        if (free == 0) return (0, 0);
        int256 equity = _equityWith(_bookValued ? _bookValue : _bookValueWith(positions));
        assets = equity > 0 ? uint256(equity) : 0;
    }
}
