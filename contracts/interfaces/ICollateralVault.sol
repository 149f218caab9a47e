// SPDX-License-Identifier: BUSL-1.1
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IUpdateThrottle} from "./IUpdateThrottle.sol";

/// @title ICollateralVault
/// @notice Custody of all ERC-20 collateral, with balances kept per account and per token.
/// Non-quote balances are never negative. The quote token (the settlement asset, e.g. USDC) may go
/// negative: that is a debt to the protocol, backed by the rest of the account's portfolio and counted
/// at full value. Only the margin engine moves balances between accounts.
interface ICollateralVault is IUpdateThrottle {
    /// @notice Risk configuration of a listed collateral token.
    /// @param oracleAsset The OracleRouter asset that prices one whole token (for an ERC-4626 share:
    /// the asset of its underlying).
    /// @param initialWeight Haircut applied for the initial requirement (WAD, 0.9e18 = 90% counted).
    /// @param maintenanceWeight Haircut applied for the maintenance requirement; ≥ initialWeight.
    /// @param depositCap Maximum total deposits of the token, in token units.
    /// @param decimals The token's decimals, read once at listing.
    /// @param isErc4626 Priced as `convertToAssets(1 share)` units of the underlying, each unit of the
    /// share counted for at most `MAX_SHARE_UNIT_VALUE` (a donation to a share vault with next to no supply
    /// can grow it past the listing bound).
    /// @param listed Whether new deposits are accepted (delisted tokens still count as collateral).
    /// @param shockedWeight The weight the mark counts at in maintenance while the engine shocks the token
    /// with the account's positions on its oracle asset, and less the weights' gap in initial (0: its
    /// weights; `setShockedWeight`).
    struct CollateralConfig {
        bytes32 oracleAsset;
        uint64 initialWeight;
        uint64 maintenanceWeight;
        uint64 shockedWeight;
        uint8 decimals;
        bool isErc4626;
        bool listed;
        uint256 depositCap;
    }

    /// @notice How the annual interest rate on quote debt follows utilisation, u = owed / (owed + quote
    /// held by the vault), owed = `quoteDebt` + `interestReceivable` at the index recorded: linear from
    /// `baseRate` at u = 0 to `kinkRate` at `kinkUtilization`, then steeply to `maxRate` at u = 1, so
    /// that when the vault runs short of quote, borrowing it gets expensive enough to be repaid. Rates
    /// are annual, compounded continuously (WAD, 0.1e18 = 10%).
    struct InterestRateModel {
        uint64 baseRate;
        uint64 kinkRate;
        uint64 maxRate;
        uint64 kinkUtilization;
    }

    /// @notice Collateral value of an account, in USD WAD.
    /// @param initial Σ balance·price·initialWeight (debts at full value, rounded against the account).
    /// @param maintenance Σ balance·price·maintenanceWeight.
    /// @param mark Σ balance·price, no haircut.
    /// @param tokenMarks Each token held other than the quote: its oracle asset, its part of `mark` and what
    /// its shocked weight adds at both levels. The engine shocks the part whose asset is an underlying the
    /// account holds positions on with them, and only then counts those credits.
    struct CollateralValue {
        int256 initial;
        int256 maintenance;
        int256 mark;
        TokenMark[] tokenMarks;
    }

    /// @notice One token's unweighted value (USD WAD), the oracle asset that prices it, and what its
    /// shocked weight adds to equity_IM and equity_MM (USD WAD, ≥ 0): at both levels
    /// mark·(max(maintenanceWeight, shockedWeight) − maintenanceWeight), rounded down, so the weights' gap
    /// between the levels stays (review round 148).
    struct TokenMark {
        bytes32 oracleAsset;
        uint256 mark;
        uint256 credit;
    }

    /// @notice The amount is zero.
    error ZeroAmount();
    /// @notice The token is not listed (never was, or was delisted for deposits).
    error TokenNotListed(address token);
    /// @notice The token is already listed.
    error TokenAlreadyListed(address token);
    /// @notice `max` tokens besides the quote token are listed already (delisted ones included), as many
    /// as an account can hold: the backstop account takes the collateral of the books it absorbs.
    error CollateralListFull(uint256 max);
    /// @notice The deposit would take the token's total deposits above its cap.
    error DepositCapExceeded(address token, uint256 totalAfter, uint256 cap);
    /// @notice The liquidity pool's and the backstop's accounts take no deposits but the quote token:
    /// their collateral is valued in every LP deposit and exit, so a donated token would tie those to
    /// its price feed (a stale BTC feed blocked every LP exit of a pool holding 1 satoshi).
    error ProtocolAccountCollateral(uint256 accountId, address token);
    /// @notice The account holds less of the token than requested.
    error InsufficientBalance(uint256 accountId, address token, int256 balance, uint256 amount);
    /// @notice The vault received a different amount than was sent (fee-on-transfer, rebasing).
    error TransferAmountMismatch(address token, uint256 expected, uint256 received);
    /// @notice An operator tried to withdraw to an address other than the account's owner.
    error InvalidRecipient(address to);
    /// @notice A weight, cap or step is outside its hard bounds.
    error ParameterOutOfBounds(bytes32 parameter, uint256 value);
    /// @notice The caller is not the margin engine.
    error NotMarginEngine(address caller);
    /// @notice The margin engine was already set, or is the zero address.
    error MarginEngineAlreadySet();
    /// @notice Balance operations need the engine to be set first.
    error MarginEngineNotSet();
    /// @notice The account already holds the maximum number of different collateral tokens.
    error TooManyCollaterals(uint256 accountId);
    /// @notice The token's oracle asset has no price feed.
    error UnpricedAsset(bytes32 oracleAsset);
    /// @notice The vault holds less of the token for its accounts than is to leave it. Only possible
    /// for the quote token: positive quote balances are partly backed by other accounts' quote debts,
    /// which are repaid (by deposits or liquidation) before that part can be withdrawn.
    error InsufficientLiquidity(address token, uint256 available, uint256 amount);
    /// @notice The quote token cannot be delisted: deposits of it must stay open so debts can be repaid.
    error CannotDelistQuoteToken();
    /// @notice The quote token has no shocked weight: it prices no underlying, so no group ever shocks it.
    error QuoteTokenNeverShocked();
    /// @notice A shocked weight above MAX_WEIGHT, or moving the weight it counts at (at either level) by
    /// more than MAX_WEIGHT_STEP in one update.
    error ShockedWeightOutOfBounds(address token, uint64 shockedWeight);
    /// @notice Nothing of `token` to recover: the vault holds no more than its accounts are credited with
    /// (the pool raises it too: it holds none, or `token` is its own shares).
    error NoSurplus(address token);

    /// @notice Emitted when a token is listed as collateral.
    event CollateralListed(
        address indexed token,
        bytes32 indexed oracleAsset,
        uint64 initialWeight,
        uint64 maintenanceWeight,
        uint256 depositCap,
        bool isErc4626
    );
    /// @notice Emitted when a token stops accepting deposits.
    event CollateralDelisted(address indexed token);
    /// @notice Emitted when a delisted token accepts deposits again (its configuration is unchanged).
    event CollateralRelisted(address indexed token);
    /// @notice Emitted when a token's weights change.
    event CollateralWeightsUpdated(address indexed token, uint64 initialWeight, uint64 maintenanceWeight);
    /// @notice Emitted when a token's shocked weight changes.
    event ShockedWeightUpdated(address indexed token, uint64 shockedWeight);
    /// @notice Emitted when a token's deposit cap changes.
    event DepositCapUpdated(address indexed token, uint256 depositCap);
    /// @notice Emitted on every deposit; `amount` in the token's units (its decimals, not WAD).
    event Deposited(uint256 indexed accountId, address indexed token, address indexed from, uint256 amount);
    /// @notice Emitted on every withdrawal; `amount` in the token's units (its decimals, not WAD).
    event Withdrawn(uint256 indexed accountId, address indexed token, address indexed to, uint256 amount);
    /// @notice Emitted when the engine moves a balance between accounts (PnL, fees, interest,
    /// liquidations); `amount` in the token's units. With Deposited, Withdrawn and QuotePaidOut it is
    /// every change of a recorded balance (`balanceOf`), so an indexer rebuilds balances from these four.
    event BalanceTransferred(
        uint256 indexed fromAccountId,
        uint256 indexed toAccountId,
        address indexed token,
        uint256 amount
    );
    /// @notice Emitted when the engine pays quote tokens out of an account to an external address
    /// (`amount` in quote units).
    event QuotePaidOut(uint256 indexed accountId, address indexed to, uint256 amount);
    /// @notice Emitted once, when the margin engine is wired in.
    event MarginEngineSet(address indexed marginEngine);
    /// @notice Emitted once, when the engine records the pool's, the backstop's and the insurance fund's
    /// accounts.
    event ProtocolAccountsSet(uint256 poolAccountId, uint256 backstopAccountId, uint256 insuranceAccountId);
    /// @notice Emitted when governance sets the interest rate model of quote debt.
    event InterestRateModelUpdated(InterestRateModel model);
    /// @notice Emitted when a debtor pays the interest its quote debt accrued since it last paid, `amount`
    /// in quote units (the lender's side is the `BalanceTransferred` event beside it).
    event QuoteInterestCharged(uint256 indexed accountId, uint256 lenderAccountId, uint256 amount);
    /// @notice Emitted when governance sends `amount` of `token` that no account was credited with (sent
    /// to the vault's address instead of deposited) to `to`.
    event SurplusRecovered(address indexed token, address indexed to, uint256 amount);

    /// @notice The settlement asset; its balances may be negative.
    function quoteToken() external view returns (IERC20);

    /// @notice Deposits `amount` of `token` from the caller into `accountId`. Anyone may deposit the quote
    /// token into any account; other collateral only the account's owner or an operator (ERC-721
    /// approval). Never paused.
    function deposit(uint256 accountId, address token, uint256 amount) external;

    /// @notice Withdraws `amount` of `token` from `accountId` to `to`. The owner may send anywhere;
    /// an operator only to the owner. Afterwards the account must satisfy its initial requirement;
    /// the pool's account, which only the LiquidityPool withdraws from, is bounded by the pool's own
    /// stricter rule (its free margin net of the backstop's shortfall, `ILiquidityPool`) instead.
    /// Refused with `EnforcedPause` while the guardian has paused the vault (deposits are not).
    function withdraw(uint256 accountId, address token, uint256 amount, address to) external;

    /// @notice Whether `accountId` has nothing at risk: no position, no quote debt, no auction. Its
    /// requirement is then 0 and its equity, a sum of balances ≥ 0, meets it at any price, so the
    /// margin checks that must not read a price when they cannot fail (a withdrawal, a keeper's flat
    /// bidder account) skip it.
    function hasNothingAtRisk(uint256 accountId) external view returns (bool);

    /// @notice Moves `amount` of `token` between accounts; engine only. The quote token may go
    /// negative on `fromAccountId`; other tokens may not.
    function transferBalance(
        uint256 fromAccountId,
        uint256 toAccountId,
        address token,
        uint256 amount
    ) external;

    /// @notice Moves a trade's fee from `accountId`: `toPool` quote units to the pool's account and
    /// `toInsurance` to the insurance fund's; engine only. May take the account's quote negative.
    function chargeFees(uint256 accountId, uint256 toPool, uint256 toInsurance) external;

    /// @notice Records the liquidity pool's, the backstop's and the insurance fund's accounts, which take
    /// no deposits but the quote token (`ProtocolAccountCollateral`); engine only, from its one-time
    /// initialisation.
    function setProtocolAccounts(
        uint256 poolAccountId,
        uint256 backstopAccountId,
        uint256 insuranceAccountId
    ) external;

    /// @notice Sends `amount` of quote token out of `accountId` to `to` (fees to the insurance fund);
    /// engine only. The balance may go negative.
    function payOutQuote(uint256 accountId, address to, uint256 amount) external;

    /// @notice Sets how quote debt's interest rate follows utilisation (RISK_MANAGER). Interest paid
    /// to the lender, the pool's margin account, which the first call reads from the margin engine.
    /// Interest accrued so far stays at the old rate.
    /// @dev Reverts with ParameterOutOfBounds unless baseRate ≤ kinkRate ≤ maxRate, MIN_MAX_RATE ≤
    /// maxRate ≤ MAX_QUOTE_BORROW_RATE and MIN_KINK ≤ kinkUtilization ≤ MAX_KINK, and (after the first
    /// model) unless the rate at every utilisation u moves by at most MAX_RATE_STEP ("rateStep", u);
    /// MarginEngineNotSet before the engine knows the pool's account,
    /// UpdateTooSoon within a day of the last change.
    /// @param model The new model.
    function setInterestRateModel(InterestRateModel calldata model) external;

    /// @notice The interest rate model of quote debt.
    function interestRateModel() external view returns (InterestRateModel memory);

    /// @notice Sends the vault's holding of `token` beyond `totalDeposits[token]` (what its accounts are
    /// credited with: tokens transferred to the vault's address rather than deposited, which no account
    /// can withdraw) to `to`; TREASURY role, for governance to return them to their sender. Nothing an
    /// account holds can leave this way.
    /// @dev Reverts with InvalidRecipient for the zero address and NoSurplus when the vault holds no more.
    /// @param token Any ERC-20, listed or not.
    /// @param to The recipient.
    /// @return amount What was sent, in token units.
    function recoverSurplus(address token, address to) external returns (uint256 amount);

    /// @notice Charges `accountId` the whole quote units of interest its quote debt accrued since it last
    /// paid (rounded down; the rest stays owed) and credits the lender. Anyone may call it; every quote
    /// movement of the account settles it first anyway (rounded up), as the engine's call does before a
    /// liquidation slices the debt. It records no rate: utilisation counts the interest owed, settled or
    /// not, so how often anyone settles changes what the debt owes by a unit at most (review round 170;
    /// before, 2.79% more interest over 30 days settled daily at 89% utilisation).
    /// @param accountId The debtor (a no-op for any other account).
    function settleInterest(uint256 accountId) external;

    /// @notice The account's balance of `token` as recorded (token units; negative only for the quote
    /// token). A quote debt also owes `accruedInterest`, which valuations already count.
    function balanceOf(uint256 accountId, address token) external view returns (int256);

    /// @notice Interest the account's quote debt accrued since it last paid, in quote units, rounded up.
    /// Zero for an account without debt and for the lender.
    function accruedInterest(uint256 accountId) external view returns (uint256);

    /// @notice Interest accrued on every quote debt but the lender's own and not yet paid, in quote
    /// units, rounded down: the lender's receivable, part of the pool's equity.
    function interestReceivable() external view returns (uint256);

    /// @notice The interest state as stored, so that off-chain code computes `accruedInterest` at any
    /// time exactly (sdk/src/math/interest.ts): the index at t is
    /// `index · e^(rate · (t − updatedAt) / 365 days)` (InterestMath.compound), and a debt owes
    /// debt · index / its paid index − debt, rounded up. Both are recorded whenever a debt or the vault's
    /// quote changes, but not at `settleInterest`; the rate from utilisation (zero while nothing is owed).
    /// @return index The index (WAD, 1e18 at deployment) at `updatedAt`.
    /// @return rate The annual rate (WAD) in force since `updatedAt`.
    /// @return updatedAt When the index and the rate were written (seconds).
    /// @return lenderAccountId The account interest is paid to (the pool's); 0 before the model is set.
    function quoteInterest()
        external
        view
        returns (uint256 index, uint256 rate, uint256 updatedAt, uint256 lenderAccountId);

    /// @notice The index up to which the account's quote debt has paid interest (meaningful while its
    /// quote balance is negative).
    function paidInterestIndex(uint256 accountId) external view returns (uint256);

    /// @notice Every token the account has a nonzero balance in (bounded by MAX_COLLATERALS_PER_ACCOUNT).
    function collateralTokens(uint256 accountId) external view returns (address[] memory);

    /// @notice The account's collateral value with initial and maintenance haircuts and without.
    function collateralValue(uint256 accountId) external view returns (CollateralValue memory);

    /// @notice The account's collateral at mark counted in the quote token, 18 decimals: its quote
    /// balance at face (a debt with the interest it owes now), every other token at its oracle value
    /// converted at the quote's oracle price (rounded down). Also the same collateral's USD mark
    /// (`collateralValue(accountId).mark`), from the same reads.
    /// @dev What the account's collateral is worth in the unit every PnL, premium and payment settles
    /// in: the engine values the quote at its oracle price (a depeg is a loss for margin), but a
    /// liquidation payment or the LP share price must not buy or count the quote token at 0.95 of itself.
    function markInQuote(uint256 accountId) external view returns (int256 inQuote, int256 usdMark);

    /// @notice `collateralValue` of every account in `accountIds`, in order, reading each price once.
    function collateralValues(uint256[] calldata accountIds) external view returns (CollateralValue[] memory);

    /// @notice The USD value (WAD) of `amount` units of `token`, unweighted, rounded down.
    function tokenValue(address token, uint256 amount) external view returns (uint256);

    /// @notice The most quote units an account can give up for `marginUsd` (USD WAD) of equity_IM: each
    /// whole quote token counts at its oracle price times its initial weight (rounded up), so above 1 USD
    /// fewer tokens than USD of margin. What the pool's free margin lets LPs withdraw, and what the
    /// backstop's surplus over its requirement lets a sweep move.
    function quoteForMargin(uint256 marginUsd) external view returns (uint256);

    /// @notice The configuration of `token` (zeroed if never listed).
    function collateralConfig(address token) external view returns (CollateralConfig memory);

    /// @notice Every token ever listed, in listing order.
    function listedTokens() external view returns (address[] memory);

    /// @notice Total deposits of `token` across accounts, in token units (what the cap applies to).
    function totalDeposits(address token) external view returns (uint256);

    /// @notice The quote debt of every account together: Σ max(0, −quote balance), in quote units.
    /// @dev The vault holds this much less quote than the positive quote balances add up to. The
    /// liquidity pool, whose gains those debts paid, keeps at least this much of its own quote balance
    /// (`LiquidityPool.maxWithdraw`), so LPs never withdraw quote that other accounts deposited.
    function quoteDebt() external view returns (uint256);
}
