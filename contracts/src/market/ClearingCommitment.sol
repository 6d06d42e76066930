// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {RoleGated} from "../access/RoleGated.sol";
import {IRoleRegistry} from "../access/IRoleRegistry.sol";
import {MarketRegistry} from "./MarketRegistry.sol";
import {OrderBook} from "./OrderBook.sol";
import {GridZones} from "../grid/GridZones.sol";
import {AssetRegistry} from "../grid/AssetRegistry.sol";
import {PairTree} from "../utils/PairTree.sol";
import {AssetWords} from "../grid/AssetWords.sol";
import {PackedOffer} from "../types/PackedOffer.sol";
import {OfferWord, OfferWordLibrary} from "../types/OfferWord.sol";
import {FreeMemory} from "../types/FreeMemory.sol";

/**
 * @title ClearingCommitment
 * @notice A market day's clearing result on chain (DESIGN.md rule 5). After the day's gate
 * closure a clearing operator (CLEARING role) posts the result in chunks that fit a block; each
 * award is checked against rules 1-3 and the utilisation modes as it arrives, and a breach reverts
 * with an error that names the award. The contract adds up the result's welfare. During the
 * market's challenge window anyone may post another feasible result; if it is better it replaces
 * the current one. After the window the result is final: its `OfferAwarded` events are the
 * sellers' activation orders.
 *
 * @dev A result is posted as groups, one per awarded offer, in increasing order of the offers'
 * subject (asset, then portfolio) and start, and the offers of one subject must not overlap: a
 * group must start at or after the end of the previous group of its subject (`ClearingOffersOverlap`).
 * So no offer appears twice, its per-ISP totals are known within its group (modes and blocks are
 * checked there), and one asset's or portfolio's meters are sold at most once per ISP in a result,
 * whatever the direction (DESIGN "Money safety": an asset's awards in an ISP never exceed its
 * prequalified power, one meter's delivery is never paid twice). It costs a comparison per group. Each group carries the offer as signed, the root
 * of the OrderBook batch that accepted it and the Merkle proof of its digest under that root, and
 * its awards (request, ISP index in the offer's window, power). Per result, storage holds per
 * request and ISP the power awarded (eight ISPs to a slot) and, per lit zone, ISP and direction,
 * the TSO's power (eight lanes to a slot); under PAY_AS_CLEARED, per cell (request zone, ISP,
 * direction) the highest offer price awarded.
 *
 * Better means: higher DSO welfare, or equal DSO welfare and higher TSO welfare (rule 2 makes the
 * DSO stage come first). Welfare is kept as `sum(power W x (maxPrice - offerPrice))`, exact; in
 * token base units it is that times the ISP length over 3.6e9 (`welfare`).
 *
 * Rule 3's "a newer offer replaces the older one" cannot be checked award by award without
 * storage per offer; instead, while the window is open, anyone who shows that a result awarded an
 * offer for which the book holds a newer one (same asset or portfolio, an overlapping window in
 * either direction, higher nonce) voids that result (`proveSuperseded`), and the day is committed
 * anew. So at most one offer of an asset or portfolio is in force in any ISP.
 *
 * Each chunk keeps one root: the `PairTree` root over its awards' leaves (`awardLeaf`: the offer's
 * digest, the request, the ISP start, the power and the offer's power in that ISP), in the order posted, so that anyone can prove
 * a single award of a result (`isAwarded`): the settlement does before it pays, and
 * `proveSuperseded` takes such a proof.
 *
 * Money is not moved here: the settlement reads the final result.
 */
contract ClearingCommitment is RoleGated {
    /// @notice The role that may post a day's first result: `keccak256("CLEARING")`.
    bytes32 public constant CLEARING_ROLE = keccak256("CLEARING");

    enum Status {
        NONE,
        POSTING, // opened, chunks arriving
        CURRENT, // closed and in force (final once its day is finalised)
        REPLACED, // a better result replaced it
        VOID // shown to award a superseded offer
    }

    /// @notice An awarded offer, the proof that the book holds it, and its awards. `offer` is
    /// packed as the book takes and logs it (93 bytes, big-endian, in field order); `batch`
    /// indexes the chunk's batch roots; each award is one word, `requestId << 48 | isp << 32 |
    /// powerW`: `powerW` of the offer to request `requestId` in ISP `isp` of the offer's window (0
    /// is its first ISP), in increasing order of (ISP, request), each pair once. Packing keeps the
    /// calldata, most of an award's cost, small.
    struct OfferAwards {
        bytes offer;
        uint16 batch;
        bytes32[] proof;
        uint256[] awards;
    }

    struct Result {
        address author;
        uint32 market;
        uint64 day;
        Status status;
        uint32 chunks;
        uint32 offers;
        uint32 awards;
        uint64 closedAt;
        uint256 lastOrder; // the last group's `_orderKey`: its subject and the end of its window
        bytes32 bookDigest; // OrderBook.bookDigest of the day when the result was opened
        uint256 dsoValue; // sum of W x (maxPrice - price) over DSO awards
        uint256 tsoValue; // the same over TSO awards
    }

    struct DayState {
        uint64 current; // the result in force, 0 if none
        uint64 challengeEnds; // the last second a better result may close
        bool finalised;
    }

    /// @dev What one chunk carries from group to group (kept in memory, written once).
    struct Chunk {
        uint64 resultId;
        uint32 market;
        uint64 day;
        uint64 closure; // the day's gate closure: membership and roles are judged as of then
        uint32 ispSeconds;
        bool payAsCleared;
        uint256 dsoValue;
        uint256 tsoValue;
        uint32 awards;
        uint256 lastOrder;
        bytes32[] leaves; // the chunk's award leaves, in order (`awardLeaf`)
        uint256 leafCount;
        uint64 lastRequestId; // the request met last, packed as in the request cache
        uint256 lastRequest0;
        uint256 lastRequest1;
        bytes32 separator; // the book's EIP-712 domain separator, read once per chunk
    }

    /// @notice An award of a result, and its proof under its chunk's `awardsRoot`.
    struct AwardProof {
        uint32 chunk;
        uint64 requestId;
        uint64 ispStart;
        uint32 powerW;
        uint32 levelW; // the offer's power in that ISP over all its awards
        bytes32[] proof;
    }

    /// @dev One award, unpacked.
    struct AwardIn {
        uint64 requestId;
        uint16 isp;
        uint32 powerW;
    }

    /// @dev What the awards of one group share.
    struct Group {
        bytes32 digest;
        uint32 zone;
        uint8 direction;
        uint96 price;
        uint64 start;
        uint16 isps;
        uint256[] totals; // W awarded per ISP of the offer's window
        bytes packed; // the awards, for the event
        uint256 lastKey; // the last award's (ISP, request): awards come in increasing order, each once
    }

    /// @dev A request, as the checks need it (cached per transaction in transient storage).
    struct Req {
        uint32 zone;
        uint8 direction;
        bool tso;
        uint64 start;
        uint16 isps;
        uint32 powerW;
        uint128 maxPrice;
    }

    uint256 internal constant DAY = 86_400;
    uint256 internal constant ASSET_ACTIVE = 2; // AssetRegistry.Status.ACTIVE
    bytes32 internal constant AGGREGATOR_ROLE = keccak256("AGGREGATOR");
    uint256 internal constant WS_PER_MWH = 3_600_000_000;
    bytes32 private constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    // Tags of the per-transaction caches in transient storage (EIP-1153): a chunk meets the same
    // requests, zone pairs and lit ISPs again and again, and none of them can change within a
    // transaction (requests are frozen after gate closure, zones never move; see the notes on lights).
    bytes32 private constant REQUEST_CACHE = keccak256("flexledger.clearing.request");
    bytes32 private constant SUBTREE_CACHE = keccak256("flexledger.clearing.subtree");
    bytes32 private constant LIGHTS_CACHE = keccak256("flexledger.clearing.lights");

    MarketRegistry public immutable markets;
    OrderBook public immutable book;
    bytes32 private immutable _offerTypehash;
    bytes32 private immutable _cachedSeparator;
    uint256 private immutable _cachedChainId;
    GridZones public immutable zones;
    AssetRegistry public immutable assets;

    /// @notice How many results were opened; ids run from 1.
    uint64 public resultCount;
    mapping(uint64 resultId => Result) private _results;
    mapping(uint256 key => DayState) private _days; // market << 64 | day
    mapping(uint64 resultId => mapping(uint32 chunk => bytes32)) private _chunkRoots;
    // keys pack their fields into one word (see `_requestKey`, `_cellKey`, `_checkLights`)
    mapping(bytes32 key => uint256) private _requestLoad; // (result, request, ISP / 8) -> 8 x 32-bit W
    mapping(bytes32 key => uint256) private _tsoLoad; // (result, zone, direction, ISP / 8) -> 8 x 32-bit W
    mapping(bytes32 key => uint256) private _cellPrice; // (result, zone, direction, ISP start) -> highest price

    /// @notice The market day `day` of `market` closes at `gateClosure`: no result before.
    /// @custom:hint clear the day after its gate closure
    error ClearingBeforeGateClosure(uint32 market, uint64 day, uint64 gateClosure);
    /// @notice `day` is not the start of a market day of `market`.
    error ClearingNotMarketDay(uint32 market, uint64 day);
    /// @notice No result has this id.
    error ClearingUnknownResult(uint64 resultId);
    /// @notice Only the result's author may post to it or close it.
    error ClearingNotAuthor(uint64 resultId, address account);
    /// @notice The result is not being posted (status as `Status`).
    error ClearingNotPosting(uint64 resultId, uint8 status);
    /// @notice The day's result is final: nothing changes any more.
    /// @custom:hint the day is settled from its final result: clear another day
    error ClearingDayFinal(uint32 market, uint64 day);
    /// @notice The challenge window of the day closed at `challengeEnds`.
    /// @custom:hint the day's result in force is final once finalised: nothing can challenge it now
    error ClearingChallengeWindowClosed(uint32 market, uint64 day, uint64 challengeEnds);
    /// @notice The challenge window is open until `challengeEnds`: the day cannot be finalised yet.
    /// @custom:hint finalise after the challenge window ends
    error ClearingChallengeWindowOpen(uint32 market, uint64 day, uint64 challengeEnds);
    /// @notice The day has no result in force.
    error ClearingNoResult(uint32 market, uint64 day);
    /// @notice The day has begun without a result in force: it is void (nothing settles, escrows go back).
    /// @custom:hint a day is cleared before it begins: its escrows go back to the buyers (`flexledger claim`)
    error ClearingDayBegun(uint32 market, uint64 day);
    /// @notice The result is not better than the one in force: (DSO, TSO) welfare, compared in that order.
    /// @custom:hint only a result with more DSO welfare, or equal DSO welfare and more TSO welfare, replaces the one in force
    error ClearingNotBetter(uint256 dsoValue, uint256 tsoValue, uint256 currentDsoValue, uint256 currentTsoValue);
    /// @notice Groups must come in increasing order of subject (asset, then portfolio) and start.
    error ClearingOfferOutOfOrder(bytes32 offerDigest, uint64 asset, uint32 portfolio, uint64 start);
    /// @notice The offer's window starts before the end (`previousEnd`) of another awarded offer of
    /// the same asset or portfolio: its meters would be sold twice in one ISP.
    error ClearingOffersOverlap(bytes32 offerDigest, uint64 asset, uint32 portfolio, uint64 start, uint64 previousEnd);
    /// @notice The offer is not in the book: its batch root is unknown or its proof fails.
    error ClearingOfferNotInBook(bytes32 offerDigest, bytes32 batchRoot);
    /// @notice A packed offer is not 93 bytes, or a group names a batch root the chunk does not list.
    error ClearingMalformedGroup(uint256 group);
    /// @notice The offer belongs to another market or market day.
    error ClearingOfferWrongDay(bytes32 offerDigest, uint32 market, uint64 start);
    /// @notice The offer's asset was in a portfolio at the day's gate closure: its meter counts in
    /// that portfolio's delivery, so it cannot also sell alone; or it has been deregistered since.
    error ClearingAssetInPortfolio(bytes32 offerDigest, uint64 assetId);
    /// @notice As mapped at the day's gate closure (`AssetRegistry.offerWordAt`), the offer's asset
    /// could not sell it: it was not ACTIVE, or its prequalified power in the offer's direction
    /// was below the offer's power.
    error ClearingAssetTermsChanged(bytes32 offerDigest, uint64 assetId);
    /// @notice As it was at the day's gate closure (`AssetRegistry.portfolioTermsAt`), the offer's
    /// portfolio could not sell it: its members then that were then ACTIVE were prequalified for
    /// `availableW` in the offer's direction, summed, below the offer's `powerW`.
    error ClearingPortfolioTermsChanged(bytes32 offerDigest, uint32 portfolioId, uint256 availableW, uint32 powerW);
    /// @notice A group's awards must come in increasing order of (ISP index, request), each once.
    error ClearingAwardsOutOfOrder(bytes32 offerDigest, uint64 requestId, uint16 isp);
    /// @notice A group without awards.
    error ClearingNoAwards(bytes32 offerDigest);
    /// @notice The award's ISP index is outside the offer's window.
    error ClearingIspOutsideOffer(bytes32 offerDigest, uint64 requestId, uint16 isp);
    /// @notice The award's power is zero.
    error ClearingZeroPower(bytes32 offerDigest, uint64 requestId, uint64 ispStart);
    /// @notice The request is unknown, not open, or of another market or market day.
    error ClearingRequestNotOpen(bytes32 offerDigest, uint64 requestId);
    /// @notice The ISP lies outside the request's window.
    error ClearingIspOutsideRequest(bytes32 offerDigest, uint64 requestId, uint64 ispStart);
    /// @notice The offer's and the request's directions differ.
    error ClearingDirectionMismatch(bytes32 offerDigest, uint64 requestId);
    /// @notice The offer's zone does not lie in the request's zone subtree.
    error ClearingZoneOutsideRequest(bytes32 offerDigest, uint64 requestId, uint32 offerZone, uint32 requestZone);
    /// @notice The offer's price is above the request's maximum price.
    error ClearingPriceAboveMax(bytes32 offerDigest, uint64 requestId, uint96 price, uint128 maxPrice);
    /// @notice The request would get more than its power in the ISP.
    error ClearingRequestOverAllocated(bytes32 offerDigest, uint64 requestId, uint64 ispStart, uint256 awardedW);
    /// @notice The offer would give more than its power in the ISP.
    error ClearingOfferOverAllocated(bytes32 offerDigest, uint64 ispStart, uint256 awardedW, uint32 powerW);
    /// @notice The power awarded in the ISP breaks the offer's utilisation mode.
    error ClearingModeViolated(bytes32 offerDigest, uint64 ispStart, uint256 awardedW, uint8 mode);
    /// @notice A block offer must get the same power in each of its ISPs.
    error ClearingBlockViolated(bytes32 offerDigest, uint64 ispStart, uint256 awardedW, uint256 firstW);
    /// @notice A TSO award in a zone on the offer's path whose light is RED.
    error ClearingRedLight(bytes32 offerDigest, uint64 requestId, uint64 ispStart, uint32 zone);
    /// @notice The TSO's awards in a YELLOW zone would exceed its capability.
    error ClearingLightCapabilityExceeded(
        bytes32 offerDigest, uint64 requestId, uint64 ispStart, uint32 zone, uint256 tsoW, uint32 capabilityW
    );
    /// @notice Not superseded: the older offer is not awarded in result `resultId` (or the award's
    /// proof fails).
    error ClearingOlderOfferNotAwarded(uint64 resultId, bytes32 olderDigest);
    /// @notice Not superseded: the newer offer is of another market, asset or portfolio, or its
    /// window does not overlap the older one's.
    error ClearingOffersNotOverlapping(bytes32 olderDigest, bytes32 newerDigest);
    /// @notice Not superseded: the newer offer's nonce is not above the older one's.
    error ClearingOfferNotNewer(bytes32 newerDigest, uint32 newerNonce, uint32 olderNonce);

    /// @notice `author` opened result `resultId` for market day `day`, on the book with digest `bookDigest`.
    event ResultOpened(
        uint64 indexed resultId, uint32 indexed market, uint64 indexed day, address author, bytes32 bookDigest
    );
    /// @notice Offer `offerDigest`, sold by `seller`, was awarded in result `resultId`; `awards` packs
    /// each award as requestId (8 bytes), ISP start (8 bytes), power W (4 bytes), big-endian. Once
    /// the result is final, these are the seller's activation orders.
    event OfferAwarded(uint64 indexed resultId, address indexed seller, bytes32 offerDigest, bytes awards);
    /// @notice Chunk `chunk` of result `resultId` was posted; `awardsRoot` is the `PairTree` root
    /// over its awards' leaves (`awardLeaf`), in the order posted.
    event ChunkPosted(uint64 indexed resultId, uint32 chunk, uint32 offers, uint32 awards, bytes32 awardsRoot);
    /// @notice Result `resultId` was closed and is now in force for its day (replacing `replaced`, if not 0).
    event ResultClosed(
        uint64 indexed resultId, uint32 indexed market, uint64 indexed day, uint64 replaced, uint256 dsoValue,
        uint256 tsoValue, uint64 challengeEnds
    );
    /// @notice Result `resultId` was voided: it awarded offer `offerDigest`, superseded by `newerDigest`.
    event ResultVoided(uint64 indexed resultId, bytes32 offerDigest, bytes32 newerDigest, address prover);
    /// @notice The day's result `resultId` is final.
    event DayFinalised(uint32 indexed market, uint64 indexed day, uint64 resultId);

    /**
     * @param registry The RoleRegistry.
     * @param marketRegistry The MarketRegistry.
     * @param orderBook The OrderBook (offers' batch roots, requests, book digests).
     * @param gridZones The GridZones (zone tree and lights).
     * @param assetRegistry The AssetRegistry (assets' and portfolios' zones and sellers).
     */
    constructor(
        IRoleRegistry registry,
        MarketRegistry marketRegistry,
        OrderBook orderBook,
        GridZones gridZones,
        AssetRegistry assetRegistry
    ) RoleGated(registry) {
        markets = marketRegistry;
        book = orderBook;
        zones = gridZones;
        assets = assetRegistry;
        _offerTypehash = orderBook.OFFER_TYPEHASH();
        _cachedChainId = block.chainid;
        _cachedSeparator = _separator();
    }

    // ------------------------------------------------------------------------------ lifecycle

    /**
     * @notice Open a result for a market day, after its gate closure: the day's first result by a
     * clearing operator; a challenger's (anyone's) while the challenge window is open.
     * @param market The market.
     * @param day The market day's first second.
     * @return resultId The new result, to post chunks to and then close.
     */
    function open(uint32 market, uint64 day) external returns (uint64 resultId) {
        MarketRegistry.MarketParams memory m = markets.marketParams(market);
        if (day < m.dayOffsetSeconds || (day - m.dayOffsetSeconds) % DAY != 0) revert ClearingNotMarketDay(market, day);
        uint64 closure = day > m.gateClosureSeconds ? day - m.gateClosureSeconds : 0;
        if (block.timestamp <= closure) revert ClearingBeforeGateClosure(market, day, closure);
        DayState storage d = _days[_dayKey(market, day)];
        if (d.finalised) revert ClearingDayFinal(market, day);
        if (d.current == 0) {
            _checkMarketRole(msg.sender, CLEARING_ROLE);
        } else if (block.timestamp > d.challengeEnds) {
            revert ClearingChallengeWindowClosed(market, day, d.challengeEnds);
        }
        resultId = ++resultCount;
        Result storage r = _results[resultId];
        (r.author, r.market, r.day, r.status) = (msg.sender, market, day, Status.POSTING);
        r.bookDigest = book.bookDigest(market, day);
        emit ResultOpened(resultId, market, day, msg.sender, r.bookDigest);
    }

    /**
     * @notice Post one chunk of a result: its awarded offers, each with its proof and awards, in
     * increasing order of offer digest (continuing from the previous chunk). Every award is
     * checked; the first breach reverts the chunk with an error naming it.
     * @param resultId The result (opened by the caller).
     * @param batchRoots The OrderBook batch roots the groups' proofs lead to.
     * @param groups The awarded offers.
     */
    function post(uint64 resultId, bytes32[] calldata batchRoots, OfferAwards[] calldata groups) external {
        Result storage r = _posting(resultId);
        MarketRegistry.MarketParams memory m = markets.marketParams(r.market);
        Chunk memory c = Chunk({
            resultId: resultId,
            market: r.market,
            day: r.day,
            closure: r.day > m.gateClosureSeconds ? r.day - m.gateClosureSeconds : 0,
            ispSeconds: m.ispSeconds,
            payAsCleared: m.pricingRule == MarketRegistry.PricingRule.PAY_AS_CLEARED,
            dsoValue: 0,
            tsoValue: 0,
            awards: 0,
            lastOrder: r.lastOrder,
            leaves: new bytes32[](_awardCount(groups)),
            leafCount: 0,
            lastRequestId: 0,
            lastRequest0: 0,
            lastRequest1: 0,
            separator: _bookSeparator()
        });
        for (uint256 i = 0; i < batchRoots.length; ++i) {
            if (!book.isBatchRoot(batchRoots[i])) revert ClearingOfferNotInBook(bytes32(0), batchRoots[i]);
        }
        uint256 freeMemory = FreeMemory.pointer();
        for (uint256 g = 0; g < groups.length; ++g) {
            FreeMemory.rewind(freeMemory); // nothing a group allocates outlives it
            _group(c, batchRoots, groups[g], g);
        }
        uint32 chunk = r.chunks;
        bytes32 awardsRoot = c.leafCount == 0 ? bytes32(0) : PairTree.root(c.leaves, c.leafCount);
        _chunkRoots[resultId][chunk] = awardsRoot;
        r.chunks = chunk + 1;
        r.offers += uint32(groups.length);
        r.awards += c.awards;
        r.lastOrder = c.lastOrder;
        r.dsoValue += c.dsoValue;
        r.tsoValue += c.tsoValue;
        emit ChunkPosted(resultId, chunk, uint32(groups.length), c.awards, awardsRoot);
    }

    function _awardCount(OfferAwards[] calldata groups) internal pure returns (uint256 n) {
        for (uint256 g = 0; g < groups.length; ++g) {
            n += groups[g].awards.length;
        }
    }

    /**
     * @notice Close a result: the day's first result comes into force and the challenge window
     * opens (before the day begins, or never: the day is then void); a challenger's replaces the
     * one in force if it is better, within the window.
     * @param resultId The result (opened by the caller).
     */
    function close(uint64 resultId) external {
        Result storage r = _posting(resultId);
        DayState storage d = _days[_dayKey(r.market, r.day)];
        if (d.finalised) revert ClearingDayFinal(r.market, r.day);
        uint64 replaced = d.current;
        if (replaced == 0) {
            // a challenger's result opened against one since voided cannot become the day's first
            _checkMarketRole(msg.sender, CLEARING_ROLE);
            // sellers must know their activations before delivery: a day without a result in
            // force when it begins is void, and its windows cannot run late (RT-9)
            if (block.timestamp >= r.day) revert ClearingDayBegun(r.market, r.day);
            MarketRegistry.MarketParams memory m = markets.marketParams(r.market);
            d.challengeEnds = uint64(block.timestamp) + m.challengeWindowSeconds;
        } else {
            if (block.timestamp > d.challengeEnds) revert ClearingChallengeWindowClosed(r.market, r.day, d.challengeEnds);
            Result storage cur = _results[replaced];
            bool better = r.dsoValue > cur.dsoValue || (r.dsoValue == cur.dsoValue && r.tsoValue > cur.tsoValue);
            if (!better) revert ClearingNotBetter(r.dsoValue, r.tsoValue, cur.dsoValue, cur.tsoValue);
            cur.status = Status.REPLACED;
        }
        d.current = resultId;
        r.status = Status.CURRENT;
        r.closedAt = uint64(block.timestamp);
        emit ResultClosed(resultId, r.market, r.day, replaced, r.dsoValue, r.tsoValue, d.challengeEnds);
    }

    /**
     * @notice Make the day's result final once its challenge window has passed (anyone may).
     * @param market The market.
     * @param day The market day's first second.
     */
    function finalise(uint32 market, uint64 day) external {
        DayState storage d = _days[_dayKey(market, day)];
        if (d.finalised) revert ClearingDayFinal(market, day);
        if (d.current == 0) revert ClearingNoResult(market, day);
        if (block.timestamp <= d.challengeEnds) revert ClearingChallengeWindowOpen(market, day, d.challengeEnds);
        d.finalised = true;
        emit DayFinalised(market, day, d.current);
    }

    /**
     * @notice Void a result that awarded an offer the book had replaced with a newer one (same
     * asset or portfolio, a window that overlaps the older one's in either direction, higher
     * nonce), during the challenge window. The newer offer need not be in the result.
     * @param resultId The result.
     * @param award One award of the older offer in the result, with its proof under its chunk's root.
     * @param older The older offer as awarded.
     * @param newer The newer offer.
     * @param newerRoot The batch root that accepted the newer offer.
     * @param newerProof The newer offer's proof under `newerRoot`.
     */
    function proveSuperseded(
        uint64 resultId,
        AwardProof calldata award,
        OrderBook.Offer calldata older,
        OrderBook.Offer calldata newer,
        bytes32 newerRoot,
        bytes32[] calldata newerProof
    ) external {
        Result storage r = _results[resultId];
        if (r.status != Status.POSTING && r.status != Status.CURRENT) {
            revert ClearingNotPosting(resultId, uint8(r.status));
        }
        DayState storage d = _days[_dayKey(r.market, r.day)];
        if (d.finalised) revert ClearingDayFinal(r.market, r.day);
        if (d.current == resultId && block.timestamp > d.challengeEnds) {
            revert ClearingChallengeWindowClosed(r.market, r.day, d.challengeEnds);
        }
        bytes32 olderDigest = offerDigest(older);
        if (!isAwarded(resultId, olderDigest, award)) revert ClearingOlderOfferNotAwarded(resultId, olderDigest);
        bytes32 newerDigest = offerDigest(newer);
        // any overlap, either direction: one meter has one baseline and one delivery per ISP
        uint256 isp = markets.marketParams(r.market).ispSeconds;
        bool overlapping = newer.market == older.market && newer.asset == older.asset
            && newer.portfolio == older.portfolio && newer.start < older.start + uint256(older.isps) * isp
            && older.start < newer.start + uint256(newer.isps) * isp;
        if (!overlapping) revert ClearingOffersNotOverlapping(olderDigest, newerDigest);
        if (newer.nonce <= older.nonce) revert ClearingOfferNotNewer(newerDigest, newer.nonce, older.nonce);
        if (!book.isBatchRoot(newerRoot) || !MerkleProof.verifyCalldata(newerProof, newerRoot, newerDigest)) {
            revert ClearingOfferNotInBook(newerDigest, newerRoot);
        }
        r.status = Status.VOID;
        if (d.current == resultId) d.current = 0;
        emit ResultVoided(resultId, olderDigest, newerDigest, msg.sender);
    }

    // ---------------------------------------------------------------------------------- views

    /**
     * @notice A result's record.
     * @param resultId The result.
     * @return The result (status NONE if unknown).
     */
    function result(uint64 resultId) external view returns (Result memory) {
        return _results[resultId];
    }

    /**
     * @notice A result's market day, and whether it is the final result of that day (two slots
     * read, for the settlement; `result` reads seven).
     * @param resultId The result.
     * @return market The result's market (0 if unknown).
     * @return day The market day's first second.
     * @return isFinal Whether the day is finalised with this result in force.
     */
    function resultDay(uint64 resultId) external view returns (uint32 market, uint64 day, bool isFinal) {
        Result storage r = _results[resultId];
        (market, day) = (r.market, r.day);
        DayState storage d = _days[_dayKey(market, day)];
        isFinal = d.finalised && d.current == resultId;
    }

    /**
     * @notice The state of a market day: the result in force, the end of its challenge window,
     * whether it is final.
     * @param market The market.
     * @param day The market day's first second.
     * @return The day's state.
     */
    function dayState(uint32 market, uint64 day) external view returns (DayState memory) {
        return _days[_dayKey(market, day)];
    }

    /**
     * @notice A result's welfare in token base units (rounded down), DSO and TSO stages apart.
     * @param resultId The result.
     * @return dso The DSO requests' welfare.
     * @return tso The TSO requests' welfare.
     */
    function welfare(uint64 resultId) external view returns (uint256 dso, uint256 tso) {
        Result storage r = _results[resultId];
        if (r.status == Status.NONE) revert ClearingUnknownResult(resultId);
        uint256 isp = markets.marketParams(r.market).ispSeconds;
        return (r.dsoValue * isp / WS_PER_MWH, r.tsoValue * isp / WS_PER_MWH);
    }

    /**
     * @notice The power awarded so far in a result to a request in one ISP.
     * @param resultId The result.
     * @param requestId The request.
     * @param isp The ISP's index in the request's window.
     * @return The power (W).
     */
    function requestLoad(uint64 resultId, uint64 requestId, uint16 isp) external view returns (uint32) {
        return uint32(_requestLoad[_requestKey(resultId, requestId, isp >> 3)] >> (32 * (isp & 7)));
    }

    /**
     * @notice Under PAY_AS_CLEARED, the highest offer price awarded in a result for a cell (the
     * request's zone, the ISP, the direction); each award there is paid that, capped at its
     * request's maximum price. Zero where nothing was awarded.
     * @param resultId The result.
     * @param zone The request's zone.
     * @param direction UP (0) or DOWN (1).
     * @param ispStart The ISP's start.
     * @return The price (token base units per MWh).
     */
    function clearingPrice(uint64 resultId, uint32 zone, uint8 direction, uint64 ispStart)
        external
        view
        returns (uint256)
    {
        return _cellPrice[_cellKey(resultId, zone, direction, ispStart)];
    }

    /**
     * @notice The leaf of one award in its chunk's tree.
     * @param offerDigest The awarded offer's EIP-712 digest.
     * @param requestId The request.
     * @param ispStart The ISP's start.
     * @param powerW The power awarded (W).
     * @param levelW The offer's power awarded in that ISP over all its awards (the settlement
     * shares the delivery out among an offer's awards in proportion to their power).
     * @return The leaf: `keccak256(abi.encode(offerDigest, requestId, ispStart, powerW, levelW))`.
     */
    function awardLeaf(bytes32 offerDigest, uint64 requestId, uint64 ispStart, uint32 powerW, uint32 levelW)
        public
        pure
        returns (bytes32)
    {
        return _leaf(offerDigest, requestId, ispStart, powerW, levelW);
    }

    /// @dev `awardLeaf` hashed in memory past the free pointer, without allocating (every award pays it).
    function _leaf(bytes32 offerDigest, uint64 requestId, uint64 ispStart, uint32 powerW, uint32 levelW)
        internal
        pure
        returns (bytes32 leaf)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, offerDigest)
            mstore(add(ptr, 0x20), and(requestId, 0xffffffffffffffff))
            mstore(add(ptr, 0x40), and(ispStart, 0xffffffffffffffff))
            mstore(add(ptr, 0x60), and(powerW, 0xffffffff))
            mstore(add(ptr, 0x80), and(levelW, 0xffffffff))
            leaf := keccak256(ptr, 0xa0)
        }
    }

    /**
     * @notice Whether result `resultId` holds an award of offer `offerDigest` (proven against
     * its chunk's root): what the settlement asks before it pays for an award.
     * @param resultId The result.
     * @param offerDigest The offer's EIP-712 digest.
     * @param award The award and its proof.
     * @return True when the proof holds.
     */
    function isAwarded(uint64 resultId, bytes32 offerDigest, AwardProof calldata award) public view returns (bool) {
        bytes32 root = _chunkRoots[resultId][award.chunk];
        bytes32 leaf = _leaf(offerDigest, award.requestId, award.ispStart, award.powerW, award.levelW);
        return root != bytes32(0) && MerkleProof.verifyCalldata(award.proof, root, leaf);
    }

    /**
     * @notice An offer's EIP-712 digest in the OrderBook's domain (what its seller signed).
     * @param o The offer.
     * @return digest The digest.
     */
    function offerDigest(OrderBook.Offer calldata o) public view returns (bytes32) {
        return book.offerDigest(o); // the book's own hashing; posting hashes packed offers itself (`PackedOffer.load`)
    }

    // ------------------------------------------------------------------------------ internals

    function _posting(uint64 resultId) internal view returns (Result storage r) {
        r = _results[resultId];
        if (r.status == Status.NONE) revert ClearingUnknownResult(resultId);
        if (r.author != msg.sender) revert ClearingNotAuthor(resultId, msg.sender);
        if (r.status != Status.POSTING) revert ClearingNotPosting(resultId, uint8(r.status));
    }

    /// @dev One awarded offer: membership, order, day, then each award, then the mode and block.
    function _group(Chunk memory c, bytes32[] calldata roots, OfferAwards calldata g, uint256 index) internal {
        if (g.offer.length != PackedOffer.SIZE || g.batch >= roots.length) revert ClearingMalformedGroup(index);
        uint256 at = PackedOffer.offset(g.offer, 0);
        (OrderBook.Offer memory o, bytes32 digest) = PackedOffer.load(at, _offerTypehash);
        digest = MessageHashUtils.toTypedDataHash(c.separator, digest); // hashStruct in, the digest out
        uint256 orderKey = PackedOffer.subjectAndStart(at); // the subject over the start
        // groups in increasing (subject, start), one subject's windows apart: the previous group's
        // key holds its end instead of its start, so one comparison checks the order and the overlap
        if (orderKey < c.lastOrder) _revertOrder(orderKey, c.lastOrder, digest);
        unchecked {
            // at most 2^16 x 2^32 past a 64-bit start: a carry could only make the next check stricter
            c.lastOrder = orderKey + uint256(o.isps) * c.ispSeconds;
        }
        bytes32 root = roots[g.batch];
        if (!MerkleProof.verifyCalldata(g.proof, root, digest)) revert ClearingOfferNotInBook(digest, root);
        if (o.market != c.market || o.start < c.day || o.start >= c.day + DAY) {
            revert ClearingOfferWrongDay(digest, o.market, o.start);
        }
        if (g.awards.length == 0) revert ClearingNoAwards(digest);
        Group memory gr;
        (gr.digest, gr.direction, gr.price, gr.start, gr.isps) = (digest, o.direction, o.price, o.start, o.isps);
        address seller;
        (seller, gr.zone) = _seller(o, digest, c.closure);
        gr.totals = new uint256[](o.isps);
        gr.packed = new bytes(20 * g.awards.length);
        for (uint256 k = 0; k < g.awards.length; ++k) {
            _award(c, gr, g.awards[k], k);
        }
        _checkLevels(digest, o, gr.totals, c.ispSeconds);
        _addLeaves(c, gr, g.awards);
        c.awards += uint32(g.awards.length);
        emit OfferAwarded(c.resultId, seller, digest, gr.packed);
    }

    /// @dev One award of a group: rules 1-3 against its request, the request's total, welfare.
    function _award(Chunk memory c, Group memory gr, uint256 word, uint256 k) internal {
        AwardIn memory a = AwardIn(uint64(word >> 48), uint16(word >> 32), uint32(word));
        if (word >> 112 != 0) revert ClearingMalformedGroup(k);
        // one award per request and ISP: the settlement pays each award it can prove, once
        uint256 key = uint256(a.isp) << 64 | a.requestId;
        if (k > 0 && key <= gr.lastKey) revert ClearingAwardsOutOfOrder(gr.digest, a.requestId, a.isp);
        gr.lastKey = key;
        if (a.isp >= gr.isps) revert ClearingIspOutsideOffer(gr.digest, a.requestId, a.isp);
        uint64 ispStart = gr.start + uint64(a.isp) * c.ispSeconds;
        if (a.powerW == 0) revert ClearingZeroPower(gr.digest, a.requestId, ispStart);
        Req memory q = _request(c, gr.digest, a.requestId);
        if (ispStart < q.start || ispStart >= q.start + uint64(q.isps) * c.ispSeconds) {
            revert ClearingIspOutsideRequest(gr.digest, a.requestId, ispStart);
        }
        if (q.direction != gr.direction) revert ClearingDirectionMismatch(gr.digest, a.requestId);
        if (!_inSubtree(gr.zone, q.zone)) revert ClearingZoneOutsideRequest(gr.digest, a.requestId, gr.zone, q.zone);
        if (gr.price > q.maxPrice) revert ClearingPriceAboveMax(gr.digest, a.requestId, gr.price, q.maxPrice);
        _loadRequest(c, gr.digest, a, q, ispStart);
        uint256 value = uint256(a.powerW) * (q.maxPrice - gr.price);
        if (q.tso) {
            _checkLights(c, gr, a, ispStart);
            c.tsoValue += value;
        } else {
            c.dsoValue += value;
        }
        if (c.payAsCleared) _raiseCellPrice(c.resultId, q.zone, q.direction, ispStart, gr.price);
        gr.totals[a.isp] += a.powerW;

        _pack(gr.packed, k, a.requestId, ispStart, a.powerW);
    }

    /// @dev The group's award leaves, once the offer's power per ISP (its level) is known.
    function _addLeaves(Chunk memory c, Group memory gr, uint256[] calldata awards) internal pure {
        bytes32[] memory leaves = c.leaves;
        uint256 at = c.leafCount;
        for (uint256 k = 0; k < awards.length; ++k) {
            uint256 word = awards[k];
            uint256 isp = uint16(word >> 32);
            bytes32 leaf = _leaf(
                gr.digest, uint64(word >> 48), gr.start + uint64(isp) * c.ispSeconds, uint32(word), uint32(gr.totals[isp])
            );
            assembly ("memory-safe") {
                mstore(add(add(leaves, 0x20), shl(5, at)), leaf) // at < leaves.length: a slot per award was counted
            }
            ++at;
        }
        c.leafCount = at;
    }

    function _revertOrder(uint256 key, uint256 last, bytes32 digest) internal pure {
        (uint64 asset, uint32 portfolio, uint64 start) = PackedOffer.splitSubjectAndStart(key);
        if (key >> 64 == last >> 64) revert ClearingOffersOverlap(digest, asset, portfolio, start, uint64(last));
        revert ClearingOfferOutOfOrder(digest, asset, portfolio, start);
    }

    /// @dev Who sells the offer and from which zone, judged at the gate closure (DESIGN "Money
    /// safety"): an asset offer's asset must be registered, and then in no portfolio (whose
    /// delivery counts its meter), ACTIVE, with the offer's power prequalified, its zone the one
    /// then; a portfolio's aggregator must then hold the AGGREGATOR role, and its members then
    /// that were then ACTIVE must have been prequalified for the offer's power together (the
    /// order book's rule at posting, as of the gate closure).
    function _seller(OrderBook.Offer memory o, bytes32 digest, uint64 closure)
        internal
        view
        returns (address seller, uint32 zone)
    {
        if (o.asset != 0) {
            OfferWord word = AssetWords.offerWord(assets, o.asset);
            // one bit keeps the usual asset (never pooled, never deregistered) to this one read;
            // a deregistered asset's meter may serve another asset now (the bit by its named
            // offset, not the accessor: every awarded offer would pay a jump in and out)
            uint256 state = OfferWord.unwrap(word) >> OfferWordLibrary.STATE_AT;
            if (state & OfferWordLibrary.CHECK_HISTORY != 0) {
                if (word.status() == 0) revert ClearingAssetInPortfolio(digest, o.asset);
                (uint256 then, uint32 portfolio) = assets.offerWordAt(o.asset, closure);
                if (portfolio != 0) revert ClearingAssetInPortfolio(digest, o.asset);
                // without a change since its first mapping the word now is the word then
                word = OfferWord.wrap(then);
                if (word.status() != ASSET_ACTIVE || word.prequalified(o.direction) < o.powerW) {
                    revert ClearingAssetTermsChanged(digest, o.asset);
                }
            }
            uint256 raw = OfferWord.unwrap(word);
            return (address(uint160(raw)), uint32(uint24(raw >> OfferWordLibrary.ZONE_AT)));
        }
        uint256 upW;
        uint256 downW;
        (seller, zone, upW, downW) = assets.portfolioTermsAt(o.portfolio, closure);
        if (!roleRegistry.hasMarketRoleAt(seller, AGGREGATOR_ROLE, closure)) {
            revert RoleGatedMissingRole(seller, AGGREGATOR_ROLE);
        }
        uint256 available = o.direction == 0 ? upW : downW;
        if (available < o.powerW) revert ClearingPortfolioTermsChanged(digest, o.portfolio, available, o.powerW);
    }

    /// @dev The request's terms, read from the book once per transaction; it must be open and of
    /// the result's market and day.
    function _request(Chunk memory c, bytes32 digest, uint64 requestId) internal returns (Req memory q) {
        // keyed by the result's market and day too: one transaction may post to several results
        uint256 w0;
        uint256 w1;
        if (requestId == c.lastRequestId) {
            (w0, w1) = (c.lastRequest0, c.lastRequest1); // consecutive awards often share a request
        } else {
            (w0, w1) = _cachedRequest(c, digest, requestId);
            (c.lastRequestId, c.lastRequest0, c.lastRequest1) = (requestId, w0, w1);
        }
        q = Req({
            zone: uint32(w0),
            direction: uint8(w0 >> 32),
            tso: (w0 >> 40) & 1 == 1,
            start: uint64(w0 >> 48),
            isps: uint16(w0 >> 112),
            powerW: uint32(w0 >> 128),
            maxPrice: uint128(w1)
        });
    }

    function _cachedRequest(Chunk memory c, bytes32 digest, uint64 requestId) internal returns (uint256 w0, uint256 w1) {
        bytes32 slot = _cacheSlot(REQUEST_CACHE, uint256(c.market) << 128 | uint256(c.day) << 64 | requestId);
        assembly ("memory-safe") {
            w0 := tload(slot)
            w1 := tload(add(slot, 1))
        }
        if (w0 == 0) {
            OrderBook.Request memory full = book.request(requestId);
            bool ok = full.status == OrderBook.RequestStatus.OPEN && full.market == c.market && full.start >= c.day
                && full.start < c.day + DAY;
            if (!ok) revert ClearingRequestNotOpen(digest, requestId);
            w0 = uint256(full.zone) | uint256(full.direction) << 32 | (full.kind == OrderBook.BuyerKind.TSO ? 1 << 40 : 0)
                | uint256(full.start) << 48 | uint256(full.isps) << 112 | uint256(full.powerW) << 128 | 1 << 255;
            w1 = full.maxPrice;
            assembly ("memory-safe") {
                tstore(slot, w0)
                tstore(add(slot, 1), w1)
            }
        }
    }

    /// @dev Whether `zone` lies in `ancestor`'s subtree, asked of GridZones once per pair and transaction.
    function _inSubtree(uint32 zone, uint32 ancestor) internal returns (bool inside) {
        bytes32 slot = _cacheSlot(SUBTREE_CACHE, uint256(zone) << 32 | ancestor);
        uint256 cached;
        assembly ("memory-safe") {
            cached := tload(slot)
        }
        if (cached != 0) return cached == 2;
        inside = zones.isInSubtree(zone, ancestor);
        assembly ("memory-safe") {
            tstore(slot, add(1, inside))
        }
    }

    /// @dev The lit path of `zone` for one ISP and direction, asked of GridZones once per
    /// transaction: `zones` packs the path's zone ids but the root's (24 bits each, nearest first)
    /// and its length, `lights` the light in force of each (32 bits each).
    function _pathLights(uint32 market, uint32 zone, uint64 ispStart, uint8 direction)
        internal
        returns (uint256 packedZones, uint256 packedLights)
    {
        bytes32 slot = _cacheSlot(LIGHTS_CACHE, uint256(market) << 128 | uint256(zone) << 96 | uint256(ispStart) << 8 | direction);
        assembly ("memory-safe") {
            packedZones := tload(slot)
            packedLights := tload(add(slot, 1))
        }
        if (packedZones != 0) return (packedZones, packedLights);
        (uint32[] memory path, uint32[] memory lights) = zones.pathLights(market, zone, ispStart, direction);
        packedZones = 1 << 255 | lights.length;
        for (uint256 level = 0; level < lights.length; ++level) {
            packedZones |= uint256(path[level]) << (8 + 24 * level);
            packedLights |= uint256(lights[level]) << (32 * level);
        }
        assembly ("memory-safe") {
            tstore(slot, packedZones)
            tstore(add(slot, 1), packedLights)
        }
    }

    /// @dev Storage keys are the packed fields themselves (the mapping hashes them once); the TSO
    /// loads use the cell's layout with the ISP index over 8 in place of the ISP start.
    function _requestKey(uint64 resultId, uint64 requestId, uint256 word) internal pure returns (bytes32) {
        return bytes32(uint256(resultId) << 192 | uint256(requestId) << 128 | word);
    }

    function _cellKey(uint64 resultId, uint32 zone, uint8 direction, uint64 ispStart) internal pure returns (bytes32) {
        return bytes32(uint256(resultId) << 192 | uint256(zone) << 160 | uint256(direction) << 152 | ispStart);
    }

    function _cacheSlot(bytes32 tag, uint256 key) internal pure returns (bytes32 slot) {
        assembly ("memory-safe") {
            mstore(0x00, tag)
            mstore(0x20, key)
            slot := keccak256(0x00, 0x40)
        }
    }

    /// @dev Adds the award to its request's ISP total; reverts beyond the request's power.
    function _loadRequest(Chunk memory c, bytes32 digest, AwardIn memory a, Req memory q, uint64 ispStart) internal {
        uint256 index = (ispStart - q.start) / c.ispSeconds;
        bytes32 key = _requestKey(c.resultId, a.requestId, index >> 3);
        uint256 shift = 32 * (index & 7);
        uint256 word = _requestLoad[key];
        uint256 total = ((word >> shift) & 0xffffffff) + a.powerW;
        if (total > q.powerW) revert ClearingRequestOverAllocated(digest, a.requestId, ispStart, total);
        _requestLoad[key] = (word & ~(uint256(0xffffffff) << shift)) | (total << shift);
    }

    /// @dev Rule 1 for a TSO award: every lit zone on the offer's path (the root carries no lights)
    /// keeps the TSO's total within its light.
    function _checkLights(Chunk memory c, Group memory gr, AwardIn memory a, uint64 ispStart) internal {
        (uint256 packedZones, uint256 packedLights) = _pathLights(c.market, gr.zone, ispStart, gr.direction);
        uint256 index = (ispStart - c.day) / c.ispSeconds;
        uint256 levels = packedZones & 0xff;
        for (uint256 level = 0; level < levels; ++level) {
            uint32 light = uint32(packedLights >> (32 * level));
            uint256 colour = light >> 30;
            if (colour <= 1) continue; // unset or GREEN
            uint32 zone = uint32(uint24(packedZones >> (8 + 24 * level)));
            if (colour == 3) revert ClearingRedLight(gr.digest, a.requestId, ispStart, zone);
            uint32 capability = light & ((1 << 30) - 1);
            bytes32 key = _cellKey(c.resultId, zone, gr.direction, uint64(index >> 3));
            uint256 shift = 32 * (index & 7);
            uint256 word = _tsoLoad[key];
            uint256 total = ((word >> shift) & 0xffffffff) + a.powerW;
            if (total > capability) {
                revert ClearingLightCapabilityExceeded(gr.digest, a.requestId, ispStart, zone, total, capability);
            }
            _tsoLoad[key] = (word & ~(uint256(0xffffffff) << shift)) | (total << shift);
        }
    }

    function _raiseCellPrice(uint64 resultId, uint32 zone, uint8 direction, uint64 ispStart, uint96 price) internal {
        bytes32 key = _cellKey(resultId, zone, direction, ispStart);
        if (_cellPrice[key] < price) _cellPrice[key] = price;
    }

    /// @dev Per ISP: at most the offer's power, its mode, and for a block the same power throughout.
    function _checkLevels(bytes32 digest, OrderBook.Offer memory o, uint256[] memory totals, uint32 isp)
        internal
        pure
    {
        // the ISP's start is worked out only for an error: every award's offer pays this loop
        for (uint256 t = 0; t < totals.length; ++t) {
            uint256 level = totals[t];
            if (t > 0 && level != totals[0]) {
                revert ClearingBlockViolated(digest, o.start + uint64(t) * isp, level, totals[0]);
            }
            if (level > o.powerW) revert ClearingOfferOverAllocated(digest, o.start + uint64(t) * isp, level, o.powerW);
            bool modeOk = o.mode == uint8(OrderBook.Mode.DIVISIBLE)
                || (o.mode == uint8(OrderBook.Mode.MIN_QUANTITY) && level >= o.minPowerW)
                || (o.mode == uint8(OrderBook.Mode.ALL_OR_NOTHING) && level == o.powerW);
            if (!modeOk) revert ClearingModeViolated(digest, o.start + uint64(t) * isp, level, o.mode);
        }
    }

    /// @dev Award `k` into the event's packed bytes: requestId, ISP start, power.
    function _pack(bytes memory packed, uint256 k, uint64 requestId, uint64 ispStart, uint32 powerW) internal pure {
        uint256 word = uint256(requestId) << 192 | uint256(ispStart) << 128 | uint256(powerW) << 96;
        assembly ("memory-safe") {
            let at := add(add(packed, 0x20), mul(k, 20))
            // 20 bytes of the word, keeping what follows (the next award overwrites it anyway)
            mstore(at, or(word, and(mload(at), 0xffffffffffffffffffffffff)))
        }
    }

    /// @dev The OrderBook's EIP-712 domain separator (as its `EIP712` computes it), recomputed
    /// only if the chain id changed.
    function _bookSeparator() internal view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedSeparator : _separator();
    }

    function _separator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                EIP712_DOMAIN_TYPEHASH, keccak256("flexledger OrderBook"), keccak256("1"), block.chainid, address(book)
            )
        );
    }

    function _dayKey(uint32 market, uint64 day) internal pure returns (uint256) {
        return uint256(market) << 64 | day;
    }
}
