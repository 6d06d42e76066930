// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {BondWord} from "./BondWord.sol";
import {PairTree} from "../utils/PairTree.sol";
import {AssetWords} from "../grid/AssetWords.sol";
import {PackedOffer} from "../types/PackedOffer.sol";
import {OfferWord, OfferWordLibrary} from "../types/OfferWord.sol";
import {FreeMemory} from "../types/FreeMemory.sol";
import {RoleGated} from "../access/RoleGated.sol";
import {IRoleRegistry} from "../access/IRoleRegistry.sol";
import {MarketRegistry} from "./MarketRegistry.sol";
import {GridZones} from "../grid/GridZones.sol";
import {AssetRegistry} from "../grid/AssetRegistry.sol";

/**
 * @title OrderBook
 * @notice The market's order book (DESIGN.md vocabulary, rules 3 and 8): system operators post
 * flexibility requests with their maximum exposure in escrow; sellers' offers, signed as EIP-712
 * typed data by the asset's owner or the portfolio's aggregator, are relayed in batches by an
 * aggregator (or by the signer), so a prosumer never pays gas; sellers keep a bond that covers
 * their penalty exposure.
 *
 * @dev What the book holds on chain is deliberately small: per market day a running digest of
 * everything accepted (requests, offers, cancellations, in order), per asset and per portfolio
 * the last nonce, and the requests (their escrow is recomputed from their terms). The offers live in the
 * `OffersAccepted` events, from which anyone rebuilds the book and checks it against the digest.
 *
 * Offer nonces are per asset (or portfolio) and strictly increasing; an offer whose nonce is not
 * above the last accepted one is skipped (replayed or older). A newer offer for the same asset,
 * window and direction replaces the older one: the book keeps, per (asset or portfolio, start,
 * ISP count, direction), the accepted offer with the highest nonce. (OpenZeppelin's `Nonces` wants
 * the exact next nonce, which would let one skipped offer block every later one of its signer.)
 * Nonces are packed eight to a slot (32 bits each, by id), so a batch of consecutive assets
 * shares the storage writes.
 *
 * Each batch also leaves the root of a Merkle tree over the EIP-712 digests of the offers it
 * accepted (`isBatchRoot`, `OffersBatched`), so that a contract can be shown that an offer is in
 * the book with a short proof (the clearing commitment does). The tree (`PairTree`) pairs the
 * digests in acceptance order, level by level, with OpenZeppelin's commutative Keccak-256 (so
 * `MerkleProof.verify` checks its proofs); an odd node at the end of a level moves up unchanged.
 * A leaf is the offer's digest itself: a verifier always recomputes it from the offer's fields, so
 * no inner node can be passed off as a leaf.
 *
 * A window lies within one market day, starts on an ISP boundary, and is open until its market
 * day's gate closure (`dayStart >= now + gateClosureSeconds`: a day-ahead market, every ISP of a
 * day closes at once). Prices are token base units per
 * MWh. A request's escrow is its maximum exposure,
 * `ceil(powerW * isps * ispSeconds * maxPrice / 3.6e9)`.
 */
contract OrderBook is RoleGated, EIP712 {
    using SafeERC20 for IERC20;

    enum Product {
        ACTIVATION,
        AVAILABILITY
    }

    enum Purpose {
        CONGESTION,
        BALANCING,
        VOLTAGE
    }

    enum Mode {
        DIVISIBLE,
        MIN_QUANTITY,
        ALL_OR_NOTHING
    }

    enum Baseline {
        COMMITTED,
        ROLLING_AVERAGE
    }

    enum RequestStatus {
        NONE,
        OPEN,
        CANCELLED
    }

    /// @notice Rule 2: DSO requests clear first, TSO requests on what is left, inside the lights.
    enum BuyerKind {
        DSO,
        TSO
    }

    /// @notice A seller's offer, as signed (EIP-712 primary type `Offer`).
    struct Offer {
        uint32 market;
        uint64 asset; // 0 for a portfolio offer
        uint32 portfolio; // 0 for an asset offer
        uint64 start; // the first ISP's start
        uint16 isps; // the window's length in ISPs; more than one makes a block offer
        uint8 direction; // 0 UP, 1 DOWN
        uint32 powerW;
        uint96 price; // token base units per MWh
        uint8 mode; // Mode
        uint32 minPowerW; // MIN_QUANTITY: the least accepted; ALL_OR_NOTHING: equal to powerW; DIVISIBLE: 0
        uint8 baselineMethod; // Baseline
        bytes32 baseline; // COMMITTED: the baseline's commitment hash; a named method: 0
        uint64 expiry;
        uint32 nonce;
    }

    /// @notice What a buyer posts (see `postRequest`).
    struct RequestParams {
        uint32 market;
        uint32 zone;
        uint64 start;
        uint16 isps;
        uint8 direction;
        uint32 powerW;
        uint256 maxPrice; // token base units per MWh
        uint8 product; // Product
        uint8 purpose; // Purpose
    }

    struct Request {
        address buyer;
        uint32 market;
        uint32 zone;
        uint8 direction;
        uint8 product;
        uint8 purpose;
        RequestStatus status;
        uint64 start;
        uint16 isps;
        uint32 powerW;
        uint128 maxPrice;
        BuyerKind kind; // DSO when the buyer held the DSO role and bought for a zone it operates below a root
    }


    /// @notice The EIP-712 type of an offer.
    bytes32 public constant OFFER_TYPEHASH = keccak256(
        "Offer(uint32 market,uint64 asset,uint32 portfolio,uint64 start,uint16 isps,uint8 direction,uint32 powerW,"
        "uint96 price,uint8 mode,uint32 minPowerW,uint8 baselineMethod,bytes32 baseline,uint64 expiry,uint32 nonce)"
    );
    /// @notice Tags of the entries hashed into a day's digest.
    bytes32 public constant REQUEST_TAG = keccak256("flexledger.request");
    bytes32 public constant CANCEL_TAG = keccak256("flexledger.cancel");

    bytes32 internal constant DSO_ROLE = keccak256("DSO");
    bytes32 internal constant TSO_ROLE = keccak256("TSO");
    bytes32 internal constant AGGREGATOR_ROLE = keccak256("AGGREGATOR");
    uint256 internal constant DAY = 86_400;
    uint256 internal constant SECONDS_PER_MWH_UNIT = 3_600_000_000; // W*s per MWh / 1
    uint8 internal constant ASSET_ACTIVE = 2; // AssetRegistry.Status.ACTIVE
    /// @notice How far ahead a market day may be traded: it bounds how long an accepted offer can
    /// still cost its seller a penalty, so that a bond's withdrawal notice outlasts it.
    uint64 internal constant MAX_ADVANCE_SECONDS = 30 days;

    MarketRegistry public immutable markets;
    GridZones public immutable zones;
    AssetRegistry public immutable assets;
    /// @notice The settlement token held in escrow and bonds.
    IERC20 public immutable token;

    /// @notice The contract that pays out escrows and draws bonds (the settlement), set once by the authority.
    address public settlement;
    /// @notice How many requests exist; ids run from 1.
    uint64 public requestCount;
    /// @dev Each seller's bond in one word (`BondWord`), so that the offer path reads it with one SLOAD.
    mapping(address seller => uint256) private _bonds;

    mapping(uint64 requestId => Request) private _requests;
    /// @notice How much of each request's escrow the settlement has paid out.
    mapping(uint64 requestId => uint256) public escrowPaid;
    mapping(uint256 key => bytes32) private _digests; // market << 64 | day start
    mapping(uint256 slot => uint256) private _assetNonces; // 8 x 32 bits per slot, by asset id
    mapping(uint256 slot => uint256) private _portfolioNonces; // same, by portfolio id
    /// @notice Whether a batch of accepted offers had this Merkle root (see the contract's notes).
    mapping(bytes32 root => bool) public isBatchRoot;

    /// @notice No market has id `market`.
    error OrderBookUnknownMarket(uint32 market);
    /// @notice The signature does not recover to an address.
    error OrderBookInvalidSignature();
    /// @notice `signer` signed, but the asset's owner or the portfolio's aggregator is `seller`.
    error OrderBookNotSeller(address signer, address seller);
    /// @notice The caller neither holds the AGGREGATOR role nor signed the offer.
    error OrderBookNotRelayer(address relayer);
    /// @notice The offer expired at `expiry`.
    error OrderBookOfferExpired(uint64 expiry);
    /// @notice The window starting at `start` is past its market day's gate closure (`gateClosure`).
    /// @custom:hint offer for a later market day: the gate closes `gateClosureSeconds` before each day starts
    error OrderBookAfterGateClosure(uint64 start, uint64 gateClosure);
    /// @notice The market day starting at `day` is more than `MAX_ADVANCE_SECONDS` ahead.
    /// @custom:hint a market day is traded at most 30 days ahead: offer for an earlier day
    error OrderBookTooFarAhead(uint64 start, uint64 day);
    /// @notice `seller` may not sell: it owes a penalty (`indebted`), its bond is under withdrawal
    /// notice until `noticeEnds`, or it has no free bond (`free`, beyond what settlements lock).
    /// @custom:hint pay any debt (`flexledger bond pay-debt`), post more bond (`flexledger bond post AMOUNT`), or wait until the withdrawal notice ends; `flexledger bond show SELLER` shows which
    error OrderBookSellerNotBonded(address seller, uint256 free, bool indebted, uint64 noticeEnds);
    /// @notice The bond's withdrawal notice runs until `noticeEnds` (0: no withdrawal was announced).
    /// @custom:hint announce the withdrawal first (`flexledger bond announce AMOUNT`) and withdraw after its notice
    error OrderBookBondNotice(uint64 noticeEnds);
    /// @notice The window starting at `start` has begun.
    /// @custom:hint choose a window that starts after now
    error OrderBookWindowInPast(uint64 start);
    /// @notice `start` is not a multiple of the market's ISP length.
    /// @custom:hint start the window on an ISP boundary (a multiple of the market's ISP length)
    error OrderBookWindowNotAligned(uint64 start, uint32 ispSeconds);
    /// @notice The window has no ISP, or runs past the end of its market day.
    error OrderBookInvalidWindow(uint64 start, uint16 isps);
    /// @notice Exactly one of asset and portfolio must be named.
    error OrderBookInvalidSubject(uint64 assetId, uint32 portfolioId);
    /// @notice The asset is unknown, pending or suspended (`status`, as AssetRegistry.Status).
    /// @custom:hint an asset sells once its zone's DSO has mapped it (`flexledger grid asset map`) and while its owner holds a valid credential
    error OrderBookAssetNotActive(uint64 assetId, uint8 status);
    /// @notice The asset belongs to a portfolio: its aggregator offers it.
    /// @custom:hint offer the portfolio instead (its aggregator signs), or take the asset out of the portfolio first
    error OrderBookAssetInPortfolio(uint64 assetId);
    /// @notice The asset (or portfolio) does not sell in `market` for every ISP of the window
    /// (AssetRegistry.marketFor, marketOfPortfolio): one meter is sold in one market per ISP.
    error OrderBookWrongMarket(uint64 assetId, uint32 portfolioId, uint32 market);
    /// @notice No portfolio has this id.
    error OrderBookUnknownPortfolio(uint32 portfolioId);
    /// @notice The power is zero, or above the prequalified power in that direction.
    /// @custom:hint offer at most the asset's prequalified power in that direction, and more than 0 W
    error OrderBookInvalidPower(uint32 powerW, uint256 prequalifiedW);
    /// @notice `direction` is neither UP (0) nor DOWN (1).
    error OrderBookInvalidDirection(uint8 direction);
    /// @notice The utilisation mode or its minimum is inconsistent (see `Offer.minPowerW`).
    error OrderBookInvalidMode(uint8 mode, uint32 minPowerW, uint32 powerW);
    /// @notice A committed baseline needs its hash; a named method takes none; or an unknown method.
    error OrderBookInvalidBaseline(uint8 method, bytes32 baseline);
    /// @notice The price is zero.
    error OrderBookZeroPrice();
    /// @notice The offer's nonce is not above the last one accepted for its asset or portfolio.
    /// @custom:hint sign the offer again with a nonce above the last one accepted (`flexledger offer typed-data` picks it)
    error OrderBookStaleNonce(uint32 nonce, uint32 lastNonce);
    /// @notice The packed offers (93 bytes each) and signatures (65 bytes each) are not whole or
    /// differ in number (`offers` and `signatures` are their byte lengths).
    error OrderBookLengthMismatch(uint256 offers, uint256 signatures);
    /// @notice `buyer` may not buy in `zoneId`: it operates no zone on the zone's path to the root.
    /// @custom:hint post the request in a zone you operate, or in a zone under one you operate
    error OrderBookZoneNotBuyable(uint32 zoneId, address buyer);
    /// @notice `account` holds neither the DSO nor the TSO role.
    error OrderBookNotSystemOperator(address account);
    /// @notice The product or purpose code is unknown.
    error OrderBookInvalidRequestKind(uint8 product, uint8 purpose);
    /// @notice The maximum exposure does not fit (price too large).
    error OrderBookEscrowOverflow(uint256 maxPrice);
    /// @notice No request has this id.
    error OrderBookUnknownRequest(uint64 requestId);
    /// @notice Only the request's buyer may do this.
    error OrderBookNotBuyer(uint64 requestId, address account);
    /// @notice The request is not open.
    error OrderBookRequestNotOpen(uint64 requestId);
    /// @notice The withdrawal would leave `locked` uncovered: only `available` is free.
    /// @custom:hint wait until the seller's pending settlements are final, or withdraw less
    error OrderBookBondLocked(uint256 amount, uint256 available);
    /// @notice Only the market authority may do this, once.
    error OrderBookNotAuthority(address account);
    /// @notice Only the settlement contract may pay out escrows or draw bonds.
    error OrderBookNotSettlement(address account);
    /// @notice The settlement contract is already set.
    error OrderBookSettlementAlreadySet(address settlement);
    /// @notice Paying `amount` would take more than the `left` of request `requestId`'s escrow.
    error OrderBookEscrowExceeded(uint64 requestId, uint256 amount, uint256 left);

    /// @notice A request was posted; `escrow` moved from the buyer into the book.
    event RequestPosted(
        uint64 indexed requestId, uint32 indexed market, uint64 indexed dayStart, address buyer, RequestParams params, uint256 escrow
    );
    /// @notice A request was cancelled before gate closure; its escrow was refunded.
    event RequestCancelled(uint64 indexed requestId, uint32 indexed market, uint64 indexed dayStart, uint256 refund);
    /// @notice Offers were accepted into the book of market day `dayStart`, in this order: one
    /// event per run of a batch's offers for one market day. `offers` is 113 bytes per offer, its
    /// seller (20) then the offer packed as relayed (`submitOffers`, 93). One log per run rather
    /// than per offer saves the log's and its topics' base cost (about 1,900 gas an offer).
    event OffersAccepted(uint64 indexed dayStart, bytes offers);
    /// @notice A batch accepted `offers` offers; `root` is the Merkle root over their digests, in order.
    event OffersBatched(bytes32 indexed root, uint256 offers);
    /// @notice Offer `index` of a batch was skipped; `reason` is the ABI-encoded custom error.
    event OfferSkipped(uint256 index, bytes32 offerDigest, bytes reason);
    /// @notice `seller`'s bond grew by `amount`, paid by `payer`.
    event BondPosted(address indexed seller, address indexed payer, uint256 amount);
    /// @notice `seller` withdrew `amount` of its bond.
    event BondWithdrawn(address indexed seller, uint256 amount);
    /// @notice `seller` announced the withdrawal of `amount` of its bond, possible from `noticeEnds`
    /// (amount 0: the announcement was withdrawn).
    event BondWithdrawalAnnounced(address indexed seller, uint256 amount, uint64 noticeEnds);
    /// @notice `seller` paid the penalties it owed (`indebted` false) or fell into debt (true).
    event SellerDebtChanged(address indexed seller, bool indebted);
    /// @notice The part of `seller`'s bond locked for awarded offers is now `locked`.
    event BondLockChanged(address indexed seller, uint256 locked);
    /// @notice The settlement contract was set.
    event SettlementSet(address settlement);
    /// @notice `amount` of request `requestId`'s escrow was paid to `to` by the settlement.
    event EscrowPaid(uint64 indexed requestId, address indexed to, uint256 amount);
    /// @notice `amount` of `seller`'s bond was drawn for `to` by the settlement.
    event BondDrawn(address indexed seller, address indexed to, uint256 amount);

    /// @dev What a batch carries from one offer to the next.
    struct Batch {
        uint32 market;
        uint32 isp;
        uint32 lead;
        uint32 dayOffset;
        bool relayerIsAggregator;
        address bondedSeller; // the seller whose bond was checked last (offers of one seller come in runs)
        uint256 digestKey; // the day whose digest is being built, 0 if none
        bytes32 digest;
        uint256 run; // memory: the `OffersAccepted` data of the day's run (offset, length, entries)
        uint256 runLength; // its entries' bytes so far
        uint256 freeMemory; // where each offer's memory starts
        bytes32 separator; // the EIP-712 domain separator, read once per batch
    }

    /// @dev Bytes of a signature (r, s, v), of an `OffersAccepted` entry (the seller, then the packed offer).
    uint256 internal constant SIGNATURE = 65;
    /// A literal: `20 + PackedOffer.SIZE` would be added, with its overflow check, at every use.
    uint256 internal constant ACCEPTED_ENTRY = 113;

    /**
     * @param registry The RoleRegistry.
     * @param marketRegistry The MarketRegistry (ISP length, gate closure, market days).
     * @param gridZones The GridZones (which zones a buyer may buy in).
     * @param assetRegistry The AssetRegistry (owners, mapping, prequalified power).
     * @param settlementToken The token of escrows and bonds.
     */
    constructor(
        IRoleRegistry registry,
        MarketRegistry marketRegistry,
        GridZones gridZones,
        AssetRegistry assetRegistry,
        IERC20 settlementToken
    ) RoleGated(registry) EIP712("flexledger OrderBook", "1") {
        markets = marketRegistry;
        zones = gridZones;
        assets = assetRegistry;
        token = settlementToken;
    }

    // ------------------------------------------------------------------------------ requests

    /**
     * @notice Post a flexibility request (DSO or TSO, in a zone on whose path to the root it
     * operates a zone) and move its maximum exposure from the caller into escrow; the caller
     * must have approved the book for it.
     * @param p The request.
     * @return requestId The new request's id.
     */
    function postRequest(RequestParams calldata p) public returns (uint64 requestId) {
        bool dso = _hasMarketRole(msg.sender, DSO_ROLE);
        if (!dso && !_hasMarketRole(msg.sender, TSO_ROLE)) revert OrderBookNotSystemOperator(msg.sender);
        MarketRegistry.MarketParams memory m = markets.marketParams(p.market);
        uint64 day = _checkWindowOrRevert(p.start, p.isps, m);
        if (p.direction > 1) revert OrderBookInvalidDirection(p.direction);
        if (p.product > uint8(type(Product).max) || p.purpose > uint8(type(Purpose).max)) {
            revert OrderBookInvalidRequestKind(p.product, p.purpose);
        }
        if (p.powerW == 0) revert OrderBookInvalidPower(0, 0);
        if (p.maxPrice == 0) revert OrderBookZeroPrice();
        // The kind follows the zone the buyer operates on the request's path, the nearest one: a
        // TSO area (a root) buys as the TSO even for a buyer that also holds the DSO role, so no
        // TSO escapes the lights with a DSO credential (README "The order book").
        (bool onPath, bool atRoot) = zones.buyerPathCheck(p.zone, msg.sender);
        if (!onPath) revert OrderBookZoneNotBuyable(p.zone, msg.sender);
        bool tso = !dso || atRoot;
        if (tso && dso && !_hasMarketRole(msg.sender, TSO_ROLE)) revert OrderBookNotSystemOperator(msg.sender);
        uint256 escrow = maxExposure(p.powerW, p.isps, m.ispSeconds, p.maxPrice);

        requestId = ++requestCount;
        _requests[requestId] = Request({
            buyer: msg.sender,
            market: p.market,
            zone: p.zone,
            direction: p.direction,
            product: p.product,
            purpose: p.purpose,
            status: RequestStatus.OPEN,
            start: p.start,
            isps: p.isps,
            powerW: p.powerW,
            maxPrice: uint128(p.maxPrice),
            kind: tso ? BuyerKind.TSO : BuyerKind.DSO
        });
        _append(p.market, day, keccak256(abi.encode(REQUEST_TAG, requestId, msg.sender, p, escrow)));
        emit RequestPosted(requestId, p.market, day, msg.sender, p, escrow);
        token.safeTransferFrom(msg.sender, address(this), escrow);
    }

    /**
     * @notice `postRequest` with an ERC-2612 permit for the escrow, so no separate approval is
     * needed. A permit that fails (already used, front-run) is ignored when the allowance is
     * there anyway, as OpenZeppelin advises.
     * @param p The request.
     * @param deadline The permit's deadline.
     * @param v The permit signature's v.
     * @param r The permit signature's r.
     * @param s The permit signature's s.
     * @return requestId The new request's id.
     */
    function postRequestWithPermit(RequestParams calldata p, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        returns (uint64 requestId)
    {
        MarketRegistry.MarketParams memory m = markets.marketParams(p.market);
        uint256 escrow = maxExposure(p.powerW, p.isps, m.ispSeconds, p.maxPrice);
        try IERC20Permit(address(token)).permit(msg.sender, address(this), escrow, deadline, v, r, s) {} catch {}
        return postRequest(p);
    }

    /**
     * @notice Cancel an open request before its market day's gate closure; the escrow goes back
     * to the buyer.
     * @param requestId The request.
     */
    function cancelRequest(uint64 requestId) external {
        Request storage q = _requests[requestId];
        if (q.status == RequestStatus.NONE) revert OrderBookUnknownRequest(requestId);
        if (q.buyer != msg.sender) revert OrderBookNotBuyer(requestId, msg.sender);
        if (q.status != RequestStatus.OPEN) revert OrderBookRequestNotOpen(requestId);
        MarketRegistry.MarketParams memory m = markets.marketParams(q.market);
        uint64 day = _dayStart(q.start, m.dayOffsetSeconds);
        if (block.timestamp + m.gateClosureSeconds > day) {
            revert OrderBookAfterGateClosure(q.start, _closure(day, m.gateClosureSeconds));
        }
        uint256 refund = maxExposure(q.powerW, q.isps, m.ispSeconds, q.maxPrice);
        q.status = RequestStatus.CANCELLED;
        _append(q.market, day, keccak256(abi.encode(CANCEL_TAG, requestId)));
        emit RequestCancelled(requestId, q.market, day, refund);
        token.safeTransfer(msg.sender, refund);
    }

    /**
     * @notice A request as stored (two slots; its escrow is `maxExposure` of its terms, not stored).
     * @param requestId The request.
     * @return The request (status NONE if unknown).
     */
    function request(uint64 requestId) external view returns (Request memory) {
        return _requests[requestId];
    }

    /**
     * @notice The escrow a request needs: its maximum exposure, rounded up.
     * @param powerW Power per ISP (W).
     * @param isps Number of ISPs.
     * @param ispSeconds The market's ISP length.
     * @param maxPrice Token base units per MWh.
     * @return The escrow in token base units.
     */
    function maxExposure(uint32 powerW, uint16 isps, uint32 ispSeconds, uint256 maxPrice)
        public
        pure
        returns (uint256)
    {
        (bool ok, uint256 product) = Math.tryMul(uint256(powerW) * isps * ispSeconds, maxPrice);
        if (!ok || maxPrice > type(uint128).max) revert OrderBookEscrowOverflow(maxPrice);
        return Math.ceilDiv(product, SECONDS_PER_MWH_UNIT);
    }

    // -------------------------------------------------------------------------------- offers

    /**
     * @notice Relay signed offers. The caller holds the AGGREGATOR role, or signed every offer
     * itself. Each offer is checked (signature, seller, asset or portfolio, power, window, gate
     * closure, expiry, nonce); a bad one is skipped with an `OfferSkipped` event naming its
     * reason, unless `strict`, when the whole batch reverts with that reason. The accepted offers
     * are logged by market day (`OffersAccepted`), and their digests make up the batch's Merkle
     * root (`OffersBatched`).
     * @dev Offers and signatures come packed, not ABI-encoded: 93 bytes an offer (its fields
     * big-endian in struct order, as `OffersAccepted` and `ClearingCommitment` carry it) against
     * 448 bytes of mostly zero words, and 65 bytes a signature (r, s, v) against 192 with its
     * offset and length (ABI-encoded, calldata was a fifth of an offer's gas). A packed field
     * cannot exceed its type, so no offer is malformed.
     * @param offers The offers, 93 bytes each.
     * @param signatures One 65-byte signature (r, s, v) per offer, in the same order.
     * @param strict Revert on the first bad offer instead of skipping it.
     * @return accepted How many offers were accepted.
     */
    function submitOffers(bytes calldata offers, bytes calldata signatures, bool strict)
        external
        returns (uint256 accepted)
    {
        uint256 n = offers.length / PackedOffer.SIZE;
        if (offers.length % PackedOffer.SIZE != 0 || signatures.length != n * SIGNATURE) {
            revert OrderBookLengthMismatch(offers.length, signatures.length);
        }
        Batch memory b;
        b.relayerIsAggregator = _hasMarketRole(msg.sender, AGGREGATOR_ROLE);
        b.separator = _domainSeparatorV4();
        bytes32[] memory leaves = new bytes32[](n);
        _allocateRun(b, n);
        for (uint256 i = 0; i < n; ++i) {
            // nothing allocated for one offer outlives it (`FreeMemory`)
            FreeMemory.rewind(b.freeMemory);
            uint256 at; // the packed offer's calldata offset
            uint256 signatureAt;
            uint256 packedSize = PackedOffer.SIZE; // a library's constant reaches assembly through a local
            assembly ("memory-safe") {
                at := add(offers.offset, mul(i, packedSize))
                signatureAt := add(signatures.offset, mul(i, SIGNATURE))
            }
            (Offer memory o, bytes32 digest) = PackedOffer.load(at, OFFER_TYPEHASH);
            digest = MessageHashUtils.toTypedDataHash(b.separator, digest); // hashStruct in, the EIP-712 digest out
            (bytes memory reason, address seller, uint64 day) = _checkOffer(o, digest, signatureAt, b);
            if (reason.length != 0) {
                if (strict) {
                    assembly ("memory-safe") {
                        revert(add(reason, 0x20), mload(reason))
                    }
                }
                emit OfferSkipped(i, digest, reason);
                continue;
            }
            _accept(b, o, digest, seller, day, at);
            leaves[accepted] = digest;
            unchecked {
                ++accepted;
            }
        }
        if (b.digestKey != 0) _closeRun(b);
        if (accepted != 0) {
            bytes32 root = PairTree.root(leaves, accepted);
            isBatchRoot[root] = true;
            emit OffersBatched(root, accepted);
        }
    }

    /**
     * @notice The EIP-712 digest of an offer: what its seller signs.
     * @param o The offer.
     * @return The digest.
     */
    function offerDigest(Offer calldata o) external view returns (bytes32) {
        bytes32 typehash = OFFER_TYPEHASH;
        bytes32 structHash;
        assembly ("memory-safe") {
            // a struct of static fields in calldata has the ABI layout hashStruct wants
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            calldatacopy(add(ptr, 0x20), o, 448)
            structHash := keccak256(ptr, 480)
        }
        return _hashTypedDataV4(structHash);
    }

    /// @dev `keccak256(abi.encode(previous, entry))` in the scratch space.
    function _chain(bytes32 previous, bytes32 entry) internal pure returns (bytes32 next) {
        assembly ("memory-safe") {
            mstore(0x00, previous)
            mstore(0x20, entry)
            next := keccak256(0x00, 0x40)
        }
    }

    /// @dev Room for a run's log data, written in place: offset and length words, up to `n`
    /// entries, a word of zero padding (not zeroed here: every byte logged is written first).
    function _allocateRun(Batch memory b, uint256 n) internal pure {
        uint256 run;
        unchecked {
            run = FreeMemory.allocate(0x60 + n * ACCEPTED_ENTRY); // n counts calldata: it cannot overflow
        }
        (b.run, b.freeMemory) = (run, FreeMemory.pointer());
    }

    /// @dev An accepted offer: its nonce used, its digest chained into its day's, its entry
    /// added to its day's run (a new day closes the run before).
    function _accept(Batch memory b, Offer memory o, bytes32 digest, address seller, uint64 day, uint256 at)
        internal
    {
        _useNonce(o);
        uint256 key = uint256(o.market) << 64 | day;
        if (key != b.digestKey) {
            if (b.digestKey != 0) _closeRun(b);
            b.digestKey = key;
            b.digest = _digests[key];
        }
        b.digest = _chain(b.digest, digest);
        _addToRun(b, seller, at);
    }

    /// @dev Append `seller` and the packed offer at calldata offset `at` to the run's log data.
    function _addToRun(Batch memory b, address seller, uint256 at) internal pure {
        uint256 end = b.run + 0x40 + b.runLength;
        uint256 packedSize = PackedOffer.SIZE;
        assembly ("memory-safe") {
            mstore(end, shl(96, seller)) // 20 bytes; the rest of the word is overwritten next
            calldatacopy(add(end, 20), at, packedSize) // the packed offer as relayed
        }
        b.runLength += ACCEPTED_ENTRY;
    }

    /// @dev Store the run's day digest and `emit OffersAccepted(day, entries)` from the run's
    /// memory (the ABI encoding of one `bytes`: offset, length, data padded with zeros).
    function _closeRun(Batch memory b) internal {
        _digests[b.digestKey] = b.digest;
        bytes32 topic = OffersAccepted.selector;
        (uint256 run, uint256 length, uint256 key) = (b.run, b.runLength, b.digestKey);
        assembly ("memory-safe") {
            mstore(run, 0x20)
            mstore(add(run, 0x20), length)
            mstore(add(add(run, 0x40), length), 0) // the padding (within the run's memory)
            // the day is the key's low 64 bits (`market << 64 | day`)
            log2(run, add(0x40, and(add(length, 31), not(31))), topic, and(key, 0xffffffffffffffff))
        }
        b.runLength = 0;
    }

    /**
     * @notice The last accepted nonce of an asset's offers (0 if none).
     * @param assetId The asset.
     * @return The nonce.
     */
    function assetNonce(uint64 assetId) external view returns (uint32) {
        return uint32(_assetNonces[assetId >> 3] >> (32 * (assetId & 7)));
    }

    /**
     * @notice The last accepted nonce of a portfolio's offers (0 if none).
     * @param portfolioId The portfolio.
     * @return The nonce.
     */
    function portfolioNonce(uint32 portfolioId) external view returns (uint32) {
        return uint32(_portfolioNonces[portfolioId >> 3] >> (32 * (portfolioId & 7)));
    }

    /**
     * @notice The running digest of a market day's book: `keccak256(abi.encode(previous, entry))`
     * over every entry in order, from zero; an offer's entry is its EIP-712 digest, a request's
     * `keccak256(abi.encode(REQUEST_TAG, requestId, buyer, params, escrow))`, a cancellation's
     * `keccak256(abi.encode(CANCEL_TAG, requestId))`.
     * @param market The market.
     * @param dayStart The market day's first second.
     * @return The digest (zero for an empty book).
     */
    function bookDigest(uint32 market, uint64 dayStart) external view returns (bytes32) {
        return _digests[uint256(market) << 64 | dayStart];
    }

    // --------------------------------------------------------------------------------- bonds

    /**
     * @notice A seller's bond word, as `BondWord` lays it out: the amount, the part locked for
     * settlements not yet final, the part under withdrawal notice, when the notice ends, whether
     * the seller owes a penalty.
     * @param seller The seller.
     * @return The word.
     */
    function bondWord(address seller) external view returns (uint256) {
        return _bonds[seller];
    }

    /**
     * @notice A seller's bond (token base units).
     * @param seller The seller.
     * @return The bond.
     */
    function bondOf(address seller) external view returns (uint256) {
        return BondWord.amount(_bonds[seller]);
    }

    /**
     * @notice The part of a seller's bond locked for penalties of its settlements not yet final.
     * @param seller The seller.
     * @return The locked amount.
     */
    function bondLocked(address seller) external view returns (uint256) {
        return BondWord.locked(_bonds[seller]);
    }

    /**
     * @notice How long a bond's withdrawal notice lasts: past the last second at which any offer
     * accepted before the notice can still be settled or disputed (its day lies at most
     * `MAX_ADVANCE_SECONDS` ahead, and is settled within the longest `settlementHorizon`).
     * @return Seconds.
     */
    function bondNoticeSeconds() public view returns (uint64) {
        return MAX_ADVANCE_SECONDS + markets.longestHorizon() + 1;
    }

    /**
     * @notice Add to `seller`'s bond, paid by the caller (who must have approved the book).
     * @param seller The seller (an asset owner or an aggregator).
     * @param amount Token base units.
     */
    function postBond(address seller, uint256 amount) public {
        uint256 w = _bonds[seller];
        _bonds[seller] = BondWord.withAmount(w, BondWord.amount(w) + amount);
        emit BondPosted(seller, msg.sender, amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice `postBond` with an ERC-2612 permit from the caller.
     * @param seller The seller.
     * @param amount Token base units.
     * @param deadline The permit's deadline.
     * @param v The permit signature's v.
     * @param r The permit signature's r.
     * @param s The permit signature's s.
     */
    function postBondWithPermit(address seller, uint256 amount, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        try IERC20Permit(address(token)).permit(msg.sender, address(this), amount, deadline, v, r, s) {} catch {}
        postBond(seller, amount);
    }

    /**
     * @notice Announce the withdrawal of `amount` of the caller's bond: it may leave once the
     * notice (`bondNoticeSeconds`) is over, when every offer the caller made before is settled
     * for good; until it leaves it still pays penalties, and the caller sells nothing. A new
     * announcement replaces the last and restarts the notice; `amount` 0 withdraws it.
     * @param amount Token base units (at most the bond).
     */
    function announceBondWithdrawal(uint256 amount) external {
        uint256 w = _bonds[msg.sender];
        uint256 bond = BondWord.amount(w);
        if (amount > bond) revert OrderBookBondLocked(amount, bond);
        uint64 ends = amount == 0 ? 0 : uint64(block.timestamp) + bondNoticeSeconds();
        _bonds[msg.sender] = BondWord.withNotice(w, amount, ends);
        emit BondWithdrawalAnnounced(msg.sender, amount, ends);
    }

    /**
     * @notice Withdraw announced bond once its notice is over, as far as settlements not yet
     * final do not lock it.
     * @param amount Token base units.
     */
    function withdrawBond(uint256 amount) external {
        (uint256 bond, uint256 locked, uint256 withdrawing, uint64 ends,) = BondWord.unpack(_bonds[msg.sender]);
        if (ends == 0 || block.timestamp < ends) revert OrderBookBondNotice(ends);
        uint256 available = Math.min(withdrawing, bond - locked);
        if (amount > available) revert OrderBookBondLocked(amount, available);
        withdrawing -= amount;
        uint256 w = BondWord.withNotice(_bonds[msg.sender], withdrawing, withdrawing == 0 ? 0 : ends);
        _bonds[msg.sender] = BondWord.withAmount(w, bond - amount);
        emit BondWithdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    /**
     * @notice Set the part of `seller`'s bond locked for its settlements' penalties (the
     * settlement only); it may not exceed the bond.
     * @param seller The seller.
     * @param locked The locked amount.
     */
    function setBondLock(address seller, uint256 locked) external {
        if (msg.sender != settlement) revert OrderBookNotSettlement(msg.sender);
        uint256 w = _bonds[seller];
        uint256 bond = BondWord.amount(w);
        if (locked > bond) revert OrderBookBondLocked(locked, bond);
        _bonds[seller] = BondWord.withLocked(w, locked);
        emit BondLockChanged(seller, locked);
    }

    /**
     * @notice Record that `seller` paid every penalty it owed (the settlement only): it may sell again.
     * @param seller The seller.
     */
    function clearDebt(address seller) external {
        if (msg.sender != settlement) revert OrderBookNotSettlement(msg.sender);
        _bonds[seller] = BondWord.withIndebted(_bonds[seller], false);
        emit SellerDebtChanged(seller, false);
    }

    // ---------------------------------------------------------------------------- settlement

    /**
     * @notice Name the settlement contract, once (the market authority only).
     * @param settlementContract The contract that pays out escrows and draws bonds.
     */
    function setSettlement(address settlementContract) external {
        if (!markets.authority().hasRole(0x00, msg.sender)) revert OrderBookNotAuthority(msg.sender);
        if (settlement != address(0)) revert OrderBookSettlementAlreadySet(settlement);
        settlement = settlementContract;
        emit SettlementSet(settlementContract);
    }

    /**
     * @notice What is left of a request's escrow (its maximum exposure less what was paid out).
     * @param requestId The request.
     * @return The token base units left.
     */
    function escrowLeft(uint64 requestId) public view returns (uint256) {
        Request storage q = _requests[requestId];
        if (q.status != RequestStatus.OPEN) return 0;
        uint32 ispSeconds = markets.marketParams(q.market).ispSeconds;
        return maxExposure(q.powerW, q.isps, ispSeconds, q.maxPrice) - escrowPaid[requestId];
    }

    /**
     * @notice Pay part of a request's escrow to `to` (the settlement only; never more than is left).
     * @param requestId The request.
     * @param to Who receives it.
     * @param amount Token base units.
     */
    function transferEscrow(uint64 requestId, address to, uint256 amount) external {
        if (msg.sender != settlement) revert OrderBookNotSettlement(msg.sender);
        uint256 left = escrowLeft(requestId);
        if (amount > left) revert OrderBookEscrowExceeded(requestId, amount, left);
        escrowPaid[requestId] += amount;
        emit EscrowPaid(requestId, to, amount);
        token.safeTransfer(to, amount);
    }

    /**
     * @notice Draw up to `amount` of `seller`'s bond for `to` (the settlement only): a penalty its
     * payment did not cover. The settlement has set the lock for what stays pending; it shrinks
     * only where the bond no longer holds it. A bond short of `amount` leaves the seller indebted.
     * @param seller The seller.
     * @param to Who receives it.
     * @param amount Token base units wanted.
     * @return drawn What the bond could give (at most `amount`).
     */
    function transferBond(address seller, address to, uint256 amount) external returns (uint256 drawn) {
        if (msg.sender != settlement) revert OrderBookNotSettlement(msg.sender);
        uint256 w = _bonds[seller];
        uint256 bond = BondWord.amount(w);
        drawn = Math.min(amount, bond);
        bond -= drawn;
        w = BondWord.withAmount(w, bond);
        if (BondWord.locked(w) > bond) w = BondWord.withLocked(w, bond);
        if (drawn < amount && !BondWord.indebted(w)) {
            w = BondWord.withIndebted(w, true);
            emit SellerDebtChanged(seller, true);
        }
        _bonds[seller] = w;
        emit BondDrawn(seller, to, drawn);
        if (drawn != 0) token.safeTransfer(to, drawn);
    }

    // ----------------------------------------------------------------------------- internals

    /// @dev The reason (an encoded custom error) an offer is refused, empty if it is good.
    function _checkOffer(Offer memory o, bytes32 digest, uint256 signatureAt, Batch memory b)
        internal
        view
        returns (bytes memory reason, address seller, uint64 day)
    {
        address signer = _recover(digest, signatureAt);
        if (signer == address(0)) return (abi.encodeWithSelector(OrderBookInvalidSignature.selector), seller, 0);
        if (!b.relayerIsAggregator && signer != msg.sender) {
            return (abi.encodeWithSelector(OrderBookNotRelayer.selector, msg.sender), seller, 0);
        }
        if (o.market == 0) return (abi.encodeWithSelector(OrderBookUnknownMarket.selector, o.market), seller, 0);
        if (o.market != b.market) {
            // one read of the market per run of offers for the same market
            if (o.market > markets.marketCount()) {
                return (abi.encodeWithSelector(OrderBookUnknownMarket.selector, o.market), seller, 0);
            }
            MarketRegistry.MarketParams memory m = markets.marketParams(o.market);
            (b.market, b.isp, b.lead, b.dayOffset) = (o.market, m.ispSeconds, m.gateClosureSeconds, m.dayOffsetSeconds);
        }
        (reason, day) = _checkWindow(o.start, o.isps, b.isp, b.lead, b.dayOffset);
        if (reason.length != 0) return (reason, seller, 0);
        if (block.timestamp > o.expiry) return (abi.encodeWithSelector(OrderBookOfferExpired.selector, o.expiry), seller, 0);
        if (o.direction > 1) return (abi.encodeWithSelector(OrderBookInvalidDirection.selector, o.direction), seller, 0);
        if (o.price == 0) return (abi.encodeWithSelector(OrderBookZeroPrice.selector), seller, 0);
        reason = _checkTerms(o);
        if (reason.length != 0) return (reason, seller, 0);
        uint256 prequalified;
        uint32 last;
        (reason, seller, prequalified, last) = _seller(o, b.isp);
        if (reason.length != 0) return (reason, seller, 0);
        if (signer != seller) return (abi.encodeWithSelector(OrderBookNotSeller.selector, signer, seller), seller, 0);
        if (seller != b.bondedSeller) {
            reason = _checkBond(seller);
            if (reason.length != 0) return (reason, seller, 0);
            b.bondedSeller = seller; // a seller's offers pay for its bond's slot once per run
        }
        if (o.powerW == 0 || o.powerW > prequalified) {
            return (abi.encodeWithSelector(OrderBookInvalidPower.selector, o.powerW, prequalified), seller, 0);
        }
        if (o.nonce <= last) return (abi.encodeWithSelector(OrderBookStaleNonce.selector, o.nonce, last), seller, 0);
        return (reason, seller, day);
    }

    /// @dev Why `seller` may not sell (DESIGN: a seller with debt or no free bond does not sell;
    /// nor while its bond is under withdrawal notice, which must outlast its offers), empty if it may.
    function _checkBond(address seller) internal view returns (bytes memory reason) {
        (uint256 bond, uint256 locked,, uint64 noticeEnds, bool indebted) = BondWord.unpack(_bonds[seller]);
        if (indebted || noticeEnds != 0 || bond <= locked) {
            reason = abi.encodeWithSelector(OrderBookSellerNotBonded.selector, seller, bond - locked, indebted, noticeEnds);
        }
    }

    /// @dev Who sells (the asset's owner or the portfolio's aggregator), its prequalified power in
    /// the offer's direction and its last nonce, or the reason the subject cannot be offered.
    function _seller(Offer memory o, uint32 isp)
        internal
        view
        returns (bytes memory reason, address seller, uint256 prequalified, uint32 last)
    {
        if (o.asset != 0 && o.portfolio == 0) {
            // `OfferWord`'s fields by its named offsets, not its accessors: a library call is a jump
            // in and out per field, on every offer
            uint256 word = OfferWord.unwrap(AssetWords.offerWord(assets, o.asset));
            uint8 state = uint8(word >> OfferWordLibrary.STATE_AT);
            if (state & OfferWordLibrary.STATUS_MASK != ASSET_ACTIVE) {
                reason = abi.encodeWithSelector(
                    OrderBookAssetNotActive.selector, o.asset, state & OfferWordLibrary.STATUS_MASK
                );
            } else if (state & OfferWordLibrary.IN_PORTFOLIO != 0) {
                reason = abi.encodeWithSelector(OrderBookAssetInPortfolio.selector, o.asset);
            } else if (state >> OfferWordLibrary.MARKET_SHIFT != o.market) {
                // the word's market binds every ISP from now on; 0: ask the history
                uint256 bound = state >> OfferWordLibrary.MARKET_SHIFT != 0 ? 0 : AssetWords.call3(
                    assets, AssetRegistry.marketFor.selector, o.asset, o.start, o.start + uint256(o.isps) * isp
                );
                if (bound != o.market) reason = _wrongMarket(o);
            }
            seller = address(uint160(word)); // the owner: the lowest 160 bits
            prequalified = uint32(word >> (o.direction == 0 ? OfferWordLibrary.UP_AT : OfferWordLibrary.DOWN_AT));
            last = uint32(_assetNonces[o.asset >> 3] >> (32 * (o.asset & 7)));
        } else if (o.asset == 0 && o.portfolio != 0) {
            (address aggregator,, uint256 upW, uint256 downW) = assets.portfolioTerms(o.portfolio);
            if (aggregator == address(0)) {
                reason = abi.encodeWithSelector(OrderBookUnknownPortfolio.selector, o.portfolio);
            } else if (!_hasMarketRole(aggregator, AGGREGATOR_ROLE)) {
                // a revoked aggregator sells no portfolio, even offers it relays itself
                reason = abi.encodeWithSelector(RoleGatedMissingRole.selector, aggregator, AGGREGATOR_ROLE);
            } else if (AssetWords.call3(assets, AssetRegistry.marketOfPortfolio.selector, o.portfolio, 0, 0) != o.market) {
                // its members are bound to its market for as long as they are members
                reason = _wrongMarket(o);
            }
            seller = aggregator;
            prequalified = o.direction == 0 ? upW : downW;
            last = uint32(_portfolioNonces[o.portfolio >> 3] >> (32 * (o.portfolio & 7)));
        } else {
            reason = abi.encodeWithSelector(OrderBookInvalidSubject.selector, o.asset, o.portfolio);
        }
    }

    function _wrongMarket(Offer memory o) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(OrderBookWrongMarket.selector, o.asset, o.portfolio, o.market);
    }

    /// @dev The signer of the 65-byte signature (r, s, v) at calldata offset `at`, as OpenZeppelin's
    /// ECDSA checks it (no malleable `s`); the zero address when there is none.
    function _recover(bytes32 digest, uint256 at) internal pure returns (address signer) {
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := calldataload(at)
            s := calldataload(add(at, 0x20))
            v := byte(0, calldataload(add(at, 0x40)))
        }
        (signer,,) = ECDSA.tryRecover(digest, v, r, s);
    }

    /// @dev Mode and baseline: what the offer says about itself, no storage.
    function _checkTerms(Offer memory o) internal pure returns (bytes memory) {
        Mode mode = Mode(o.mode > 2 ? 0 : o.mode);
        bool modeOk = o.mode <= 2
            && (
                (mode == Mode.DIVISIBLE && o.minPowerW == 0)
                    || (mode == Mode.MIN_QUANTITY && o.minPowerW != 0 && o.minPowerW <= o.powerW)
                    || (mode == Mode.ALL_OR_NOTHING && o.minPowerW == o.powerW)
            );
        if (!modeOk) return abi.encodeWithSelector(OrderBookInvalidMode.selector, o.mode, o.minPowerW, o.powerW);
        bool committed = o.baselineMethod == uint8(Baseline.COMMITTED);
        if (o.baselineMethod > uint8(type(Baseline).max) || committed == (o.baseline == bytes32(0))) {
            return abi.encodeWithSelector(OrderBookInvalidBaseline.selector, o.baselineMethod, o.baseline);
        }
        return "";
    }

    function _useNonce(Offer memory o) internal {
        if (o.asset != 0) {
            uint256 shift = 32 * (o.asset & 7);
            uint256 word = _assetNonces[o.asset >> 3];
            _assetNonces[o.asset >> 3] = (word & ~(uint256(0xffffffff) << shift)) | (uint256(o.nonce) << shift);
        } else {
            uint256 shift = 32 * (o.portfolio & 7);
            uint256 word = _portfolioNonces[o.portfolio >> 3];
            _portfolioNonces[o.portfolio >> 3] = (word & ~(uint256(0xffffffff) << shift)) | (uint256(o.nonce) << shift);
        }
    }

    /// @dev The window's market day, or the reason it is refused.
    function _checkWindow(uint64 start, uint16 isps, uint32 isp, uint32 lead, uint32 dayOffset)
        internal
        view
        returns (bytes memory reason, uint64 day)
    {
        if (start % isp != 0) return (abi.encodeWithSelector(OrderBookWindowNotAligned.selector, start, isp), 0);
        if (block.timestamp >= start) return (abi.encodeWithSelector(OrderBookWindowInPast.selector, start), 0);
        day = _dayStart(start, dayOffset);
        if (block.timestamp + lead > day) {
            return (abi.encodeWithSelector(OrderBookAfterGateClosure.selector, start, _closure(day, lead)), 0);
        }
        if (day > block.timestamp + MAX_ADVANCE_SECONDS) {
            return (abi.encodeWithSelector(OrderBookTooFarAhead.selector, start, day), 0);
        }
        if (isps == 0 || uint256(start) + uint256(isps) * isp > uint256(day) + DAY) {
            return (abi.encodeWithSelector(OrderBookInvalidWindow.selector, start, isps), 0);
        }
    }

    function _checkWindowOrRevert(uint64 start, uint16 isps, MarketRegistry.MarketParams memory m)
        internal
        view
        returns (uint64 day)
    {
        bytes memory reason;
        (reason, day) = _checkWindow(start, isps, m.ispSeconds, m.gateClosureSeconds, m.dayOffsetSeconds);
        if (reason.length != 0) {
            assembly ("memory-safe") {
                revert(add(reason, 0x20), mload(reason))
            }
        }
    }

    function _append(uint32 market, uint64 day, bytes32 entry) internal {
        uint256 key = uint256(market) << 64 | day;
        _digests[key] = keccak256(abi.encode(_digests[key], entry));
    }

    function _dayStart(uint64 t, uint32 dayOffset) internal pure returns (uint64) {
        if (t < dayOffset) return 0;
        return t - uint64((t - dayOffset) % DAY);
    }

    function _closure(uint64 start, uint32 lead) internal pure returns (uint64) {
        return start > lead ? start - lead : 0;
    }
}
