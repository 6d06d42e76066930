// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/**
 * @title MarketRegistry
 * @notice The markets and their rules of time and money: ISP length, gate closure, the market
 * day's boundary, delivery tolerance, penalty factor, pricing rule, challenge and dispute windows.
 * Every other contract and the Python side read them from here, never from a config file.
 *
 * Each market names its dispatcher: the one key whose EIP-712 `ActivationOrder`s the sellers'
 * gateways execute (in this contract's domain, read with ERC-5267 `eip712Domain()`). An order
 * names the final result and the awarded offer it carries out, so a gateway can check it against
 * `ClearingCommitment.isAwarded` before its device acts.
 *
 * @dev A market's parameters are immutable once created: every party must see the same rules
 * for the days already traded. Changing the rules means creating a new market. The dispatcher is
 * not a rule of the market but a key, so it can be rotated (or cleared, stopping every gateway).
 */
contract MarketRegistry is EIP712 {
    /// @notice How accepted offers are paid: their own price, or the clearing price per zone, ISP and direction.
    enum PricingRule {
        PAY_AS_BID,
        PAY_AS_CLEARED
    }

    /// @notice One market's parameters (seconds, basis points).
    struct MarketParams {
        uint32 ispSeconds;
        uint32 gateClosureSeconds;
        uint32 dayOffsetSeconds;
        uint16 toleranceBps;
        uint32 penaltyFactorBps;
        PricingRule pricingRule;
        uint32 challengeWindowSeconds;
        uint32 disputeWindowSeconds;
    }

    /// @notice What a gateway executes: `powerW` in `direction` (0 UP, 1 DOWN) for `isps` ISPs from
    /// `ispStart` on asset `asset`, carrying out the award of `offerDigest` in final result
    /// `resultId` of market `market`; void after `expiresAt`. `orderId` is unique per order.
    struct ActivationOrder {
        bytes32 orderId;
        uint32 market;
        uint64 asset;
        uint64 ispStart;
        uint16 isps;
        uint8 direction;
        uint32 powerW;
        uint64 expiresAt;
        uint64 resultId;
        bytes32 offerDigest;
    }

    /// @notice The EIP-712 type hash of `ActivationOrder`.
    bytes32 public constant ACTIVATION_ORDER_TYPEHASH = keccak256(
        "ActivationOrder(bytes32 orderId,uint32 market,uint64 asset,uint64 ispStart,uint16 isps,uint8 direction,"
        "uint32 powerW,uint64 expiresAt,uint64 resultId,bytes32 offerDigest)"
    );

    uint32 internal constant DAY = 86_400;
    uint32 internal constant MAX_PENALTY_FACTOR_BPS = 100_000; // ten times the price
    uint32 internal constant MAX_WINDOW = 30 days;

    /// @notice The MarketAuthority; its default admin creates markets.
    IAccessControl public immutable authority;
    /// @notice How many markets exist; ids run from 1 to this.
    uint32 public marketCount;
    /// @notice The longest `settlementHorizon` of any market: what a seller's bond notice outlasts.
    uint64 public longestHorizon;
    mapping(uint32 marketId => MarketParams) private _markets;
    mapping(uint32 marketId => address) private _dispatchers;

    /// @notice `account` is not the market authority.
    error MarketRegistryNotAuthority(address account);
    /// @notice No market has id `marketId`.
    error MarketRegistryUnknownMarket(uint32 marketId);
    /// @notice A parameter is out of range; `field` names it.
    error MarketRegistryInvalidParameter(string field, uint256 value);

    /// @notice Market `marketId` was created with these parameters.
    event MarketCreated(uint32 indexed marketId, MarketParams params);
    /// @notice Market `marketId`'s activation orders are signed by `dispatcher` from now on (zero: by no one).
    event DispatcherSet(uint32 indexed marketId, address indexed previous, address indexed dispatcher);

    /// @param marketAuthority The MarketAuthority whose default admin may create markets.
    constructor(IAccessControl marketAuthority) EIP712("flexledger MarketRegistry", "1") {
        authority = marketAuthority;
    }

    /**
     * @notice Name the key that signs market `marketId`'s activation orders; only the market
     * authority may. The zero address names no one: gateways then execute no order of the market.
     * @param marketId The market.
     * @param newDispatcher The dispatcher's address.
     */
    function setDispatcher(uint32 marketId, address newDispatcher) external {
        if (!authority.hasRole(0x00, msg.sender)) revert MarketRegistryNotAuthority(msg.sender);
        if (marketId == 0 || marketId > marketCount) revert MarketRegistryUnknownMarket(marketId);
        address previous = _dispatchers[marketId];
        _dispatchers[marketId] = newDispatcher;
        emit DispatcherSet(marketId, previous, newDispatcher);
    }

    /**
     * @notice The key that signs market `marketId`'s activation orders (zero if none).
     * @param marketId The market.
     * @return The dispatcher's address.
     */
    function dispatcher(uint32 marketId) external view returns (address) {
        if (marketId == 0 || marketId > marketCount) revert MarketRegistryUnknownMarket(marketId);
        return _dispatchers[marketId];
    }

    /**
     * @notice The EIP-712 digest a dispatcher signs for `order`, in this contract's domain.
     * @param order The activation order.
     * @return The digest.
     */
    function activationOrderDigest(ActivationOrder calldata order) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ACTIVATION_ORDER_TYPEHASH, order)));
    }

    /**
     * @notice Create a market with `params`; only the market authority may.
     * @param params ISP length (divides a day), gate closure lead, day offset (a multiple of the
     * ISP, under a day), tolerance (<= 10,000 bps), penalty factor (<= 100,000 bps), pricing rule,
     * challenge window (1 s to the gate closure lead), dispute window (1 s to 30 days).
     * @return marketId The new market's id.
     */
    function createMarket(MarketParams calldata params) external returns (uint32 marketId) {
        if (!authority.hasRole(0x00, msg.sender)) revert MarketRegistryNotAuthority(msg.sender);
        _validate(params);
        marketId = ++marketCount;
        _markets[marketId] = params;
        uint64 horizon = _horizon(params);
        if (horizon > longestHorizon) longestHorizon = horizon;
        emit MarketCreated(marketId, params);
    }

    /**
     * @notice The parameters of market `marketId`.
     * @param marketId The market.
     * @return The market's parameters.
     */
    function marketParams(uint32 marketId) public view returns (MarketParams memory) {
        if (marketId == 0 || marketId > marketCount) revert MarketRegistryUnknownMarket(marketId);
        return _markets[marketId];
    }

    /**
     * @notice Whether `t` is the start of an ISP of market `marketId`.
     * @param marketId The market.
     * @param t A Unix time.
     * @return True when `t` is a multiple of the ISP length.
     */
    function isAligned(uint32 marketId, uint64 t) external view returns (bool) {
        return t % marketParams(marketId).ispSeconds == 0;
    }

    /**
     * @notice The gate closure of the ISP starting at `ispStart`: the gate closure of its market
     * day, `gateClosureSeconds` before the day starts (a day-ahead market: every ISP of a day
     * closes at once, so the day's book and lights are final before it is cleared).
     * @param marketId The market.
     * @param ispStart The ISP's start.
     * @return The last second at which that ISP's book and lights may still change.
     */
    function gateClosure(uint32 marketId, uint64 ispStart) external view returns (uint64) {
        uint64 lead = marketParams(marketId).gateClosureSeconds;
        uint64 day = dayStart(marketId, ispStart);
        return day > lead ? day - lead : 0;
    }

    /**
     * @notice The start of the market day that contains `t`.
     * @param marketId The market.
     * @param t A Unix time.
     * @return The market day's first second.
     */
    function dayStart(uint32 marketId, uint64 t) public view returns (uint64) {
        uint64 offset = marketParams(marketId).dayOffsetSeconds;
        if (t < offset) return 0;
        return t - ((t - offset) % DAY);
    }

    /**
     * @notice How long after a market day starts a settlement of it may still be made or
     * disputed: the day's first result closes before the day starts (a later one voids the day),
     * is final a challenge window later, the settlement window closes a dispute window after the
     * later of the day's end and that finality, a default settlement follows within another, and
     * its dispute within a third. Bonds and oracle stakes stay in place that long.
     * @param marketId The market.
     * @return Seconds from the market day's start.
     */
    function settlementHorizon(uint32 marketId) external view returns (uint64) {
        return _horizon(marketParams(marketId));
    }

    function _horizon(MarketParams memory p) private pure returns (uint64) {
        uint64 finalBy = p.challengeWindowSeconds > DAY ? p.challengeWindowSeconds : DAY;
        return finalBy + 3 * uint64(p.disputeWindowSeconds);
    }

    function _validate(MarketParams calldata p) private pure {
        if (p.ispSeconds == 0 || DAY % p.ispSeconds != 0) {
            revert MarketRegistryInvalidParameter("ispSeconds", p.ispSeconds);
        }
        if (p.gateClosureSeconds > MAX_WINDOW) revert MarketRegistryInvalidParameter("gateClosureSeconds", p.gateClosureSeconds);
        if (p.dayOffsetSeconds >= DAY || p.dayOffsetSeconds % p.ispSeconds != 0) {
            revert MarketRegistryInvalidParameter("dayOffsetSeconds", p.dayOffsetSeconds);
        }
        if (p.toleranceBps > 10_000) revert MarketRegistryInvalidParameter("toleranceBps", p.toleranceBps);
        if (p.penaltyFactorBps > MAX_PENALTY_FACTOR_BPS) {
            revert MarketRegistryInvalidParameter("penaltyFactorBps", p.penaltyFactorBps);
        }
        // a result closed at gate closure is final before its day starts: activations are known in time
        if (p.challengeWindowSeconds == 0 || p.challengeWindowSeconds > p.gateClosureSeconds) {
            revert MarketRegistryInvalidParameter("challengeWindowSeconds", p.challengeWindowSeconds);
        }
        if (p.disputeWindowSeconds == 0 || p.disputeWindowSeconds > MAX_WINDOW) {
            revert MarketRegistryInvalidParameter("disputeWindowSeconds", p.disputeWindowSeconds);
        }
    }
}
