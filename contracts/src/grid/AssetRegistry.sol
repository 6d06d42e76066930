// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {RoleGated} from "../access/RoleGated.sol";
import {IRoleRegistry} from "../access/IRoleRegistry.sol";
import {GridZones} from "./GridZones.sol";
import {OfferWord, OfferWordLibrary} from "../types/OfferWord.sol";

/**
 * @title AssetRegistry
 * @notice Flexible assets behind metering points, and aggregators' portfolios of them.
 * An owner registers an asset with its meter (no personal data: the meter's address is its DID)
 * and the meter's own EIP-712 signature naming the owner, so nobody registers a meter that is not
 * theirs; the owner (or a DSO, while it is pending) deregisters it, which frees the meter. The
 * asset stays PENDING until a DSO operating its zone maps it and sets its prequalified up and
 * down power; that DSO can suspend and reinstate it, re-map it within its own part of the grid, or
 * hand it over to another DSO's zone. An aggregator forms a portfolio of active assets in one
 * zone, each owner consenting with an EIP-712 signature (ERC-1271 wallets too). Membership is
 * kept as history on both sides (`membersAt`, `portfolioAt`): the market judges it as of a day's
 * gate closure, and so is the mapping (zone, status, prequalified power: `offerWordAt`).
 *
 * Each asset sells in one market per ISP (DESIGN "Money safety": one meter's delivery is paid
 * once). Its DSO names the market when mapping it; a later change of market is scheduled, not
 * immediate: it binds from `now + MARKET_CHANGE_LEAD` on, later than any ISP an offer can exist
 * for yet (a market day is traded at most 30 days ahead), so the market of an ISP that anyone
 * may already have offered never changes, whatever the markets' gate closures (`marketFor`).
 */
contract AssetRegistry is RoleGated, EIP712 {
    using Checkpoints for Checkpoints.Trace208;

    enum Status {
        NONE,
        PENDING,
        ACTIVE,
        SUSPENDED
    }

    /// @dev One slot: everything an offer's checks read (the order book pays one cold read per
    /// offer), read as one word by `offerWord` (its layout: `OfferWord`, whose fields are these in
    /// this order). Zone ids fit 24 bits (GridZones.MAX_ZONES).
    struct Asset {
        address owner;
        uint24 zone;
        uint8 state; // bits 0-1: Status; bit 2: in a portfolio; bit 3: look past this word; 4-7: the market
        uint32 upW;
        uint32 downW;
    }

    /// @dev Read by views, mapping and portfolio management only.
    struct AssetInfo {
        address meter;
        uint32 portfolio;
        uint8 assetType;
        uint24 handoverZone; // the zone its DSO handed it over to (0: none pending)
    }

    /// @dev A portfolio's founding member: members only ever leave (`leftAt`), so who was a
    /// member at any past time stays readable (settlement measures a portfolio as it was).
    struct Member {
        uint64 asset;
        uint64 joinedAt;
        uint64 leftAt; // 0 while a member
    }

    /// @dev One stay of an asset in a portfolio, the asset's side of `Member`: which portfolio an
    /// asset was in at a past time stays readable (the clearing judges it at the gate closure).
    struct Stint {
        uint32 portfolio;
        uint64 joinedAt;
        uint64 leftAt; // 0 while a member
    }

    struct Portfolio {
        address aggregator;
        uint32 zone;
        uint32 market; // its members' market, which they cannot leave while members
        Member[] members;
    }

    /// @dev The state byte's bits (`OfferWord`): Status, in a portfolio now, look past the word
    /// (ever in a portfolio, deregistered, or re-mapped, suspended or reinstated since its first
    /// mapping), and the market's place (1 to 15; 0 when larger, scheduled or unset: `marketFor`).
    uint8 internal constant STATUS_MASK = OfferWordLibrary.STATUS_MASK;
    uint8 internal constant IN_PORTFOLIO = OfferWordLibrary.IN_PORTFOLIO;
    uint8 internal constant CHECK_HISTORY = OfferWordLibrary.CHECK_HISTORY;
    uint8 internal constant MARKET_SHIFT = OfferWordLibrary.MARKET_SHIFT;
    /// @dev How far ahead a change of an asset's market binds: the 30 days a market day may be
    /// traded ahead (OrderBook) and the day itself, so no offer exists yet for an ISP it changes.
    /// Not a public getter: one selector fewer keeps `offerWord`'s dispatch short (every offer).
    uint64 internal constant MARKET_CHANGE_LEAD = 31 days;
    bytes32 internal constant PROSUMER_ROLE = keccak256("PROSUMER");
    bytes32 internal constant AGGREGATOR_ROLE = keccak256("AGGREGATOR");
    bytes32 internal constant METER_ROLE = keccak256("METER");
    bytes32 internal constant DSO_ROLE = keccak256("DSO");
    bytes32 public constant REGISTRATION_TYPEHASH =
        keccak256("AssetRegistration(address owner,address meter,uint8 assetType,uint64 deadline)");
    /// @notice What a meter signs to be registered for `owner`: its consent, once (`nonce`).
    bytes32 public constant METER_REGISTRATION_TYPEHASH = keccak256(
        "MeterRegistration(address meter,address owner,uint8 assetType,uint256 nonce,uint64 deadline)"
    );
    bytes32 public constant CONSENT_TYPEHASH =
        keccak256("PortfolioConsent(address aggregator,uint64 asset,uint256 nonce,uint64 deadline)");

    /// @notice The grid whose zones assets are mapped to.
    GridZones public immutable grid;
    /// @notice How many assets exist; ids run from 1.
    uint64 public assetCount;
    /// @notice How many portfolios exist; ids run from 1.
    uint32 public portfolioCount;
    /// @notice The asset registered with a meter (0 if none).
    mapping(address meter => uint64 assetId) public assetOfMeter;
    /// @notice The next consent nonce of an asset: a consent is good once.
    mapping(uint64 assetId => uint256) public consentNonce;
    /// @notice The next registration nonce of a meter: its signature registers it once.
    mapping(address meter => uint256) public meterNonce;
    mapping(uint64 assetId => Asset) private _assets;
    mapping(uint64 assetId => AssetInfo) private _info;
    mapping(uint32 portfolioId => Portfolio) private _portfolios;
    mapping(uint64 assetId => Stint[]) private _stints;
    /// @dev The asset's market by the first ISP start it binds from (0: from the first mapping),
    /// once the word alone cannot say it (a change, a market above 15, a freed meter).
    mapping(uint64 assetId => Checkpoints.Trace208) private _markets;
    /// @dev The record's upper 96 bits (zone, state, powers) by the time they were set, once it
    /// changed after the first mapping (the first entry, at time 0, is the record before that).
    mapping(uint64 assetId => Checkpoints.Trace208) private _mappings;
    /// @dev A deregistered meter's next asset sells only ISPs from then on (its old asset's
    /// market may have sold earlier ones).
    mapping(address meter => uint64) private _meterFreeFrom;

    /// @notice No asset has id `assetId`.
    error AssetUnknown(uint64 assetId);
    /// @notice The meter `meter` holds no valid METER credential.
    /// @custom:hint the meter needs a valid METER credential (`flexledger role grant METER_ADDRESS METER`)
    error AssetMeterWithoutRole(address meter);
    /// @notice The meter `meter` already belongs to asset `assetId`: one meter, one asset.
    /// @custom:hint register another meter, or deregister the asset that holds this one
    error AssetMeterTaken(address meter, uint64 assetId);
    /// @notice `owner` holds neither a valid PROSUMER nor a valid AGGREGATOR credential.
    /// @custom:hint the owner needs a valid PROSUMER or AGGREGATOR credential (`flexledger role grant`)
    error AssetOwnerWithoutRole(address owner);
    /// @notice `account` is not the DSO of zone `zoneId`, where asset `assetId` is (or is to be) mapped.
    /// @custom:hint the DSO operating the asset's zone maps it; ask that DSO
    error AssetNotZoneDso(uint64 assetId, uint32 zoneId, address account);
    /// @notice Asset `assetId`'s power `powerW` is above its zone's limit `limitW`.
    /// @custom:hint register the asset with less power, or ask the DSO to raise the zone's limit
    error AssetPowerAboveZoneLimit(uint64 assetId, uint32 powerW, uint32 limitW);
    /// @notice Asset `assetId` would have no power in either direction.
    error AssetZeroPower(uint64 assetId);
    /// @notice Asset `assetId` is not active (pending its DSO's mapping, or suspended).
    /// @custom:hint the zone's DSO maps the asset first (`flexledger grid asset map`)
    error AssetNotActive(uint64 assetId);
    /// @notice Asset `assetId` belongs to portfolio `portfolioId`.
    error AssetInPortfolio(uint64 assetId, uint32 portfolioId);
    /// @notice Asset `assetId` is in zone `assetZone`, not in the portfolio's zone `portfolioZone`.
    error AssetOutsideZone(uint64 assetId, uint32 assetZone, uint32 portfolioZone);
    /// @notice The owner `owner` of asset `assetId` did not sign this consent.
    error AssetConsentInvalid(uint64 assetId, address owner);
    /// @notice The signed consent expired at `deadline`.
    /// @custom:hint have the owner sign a new consent with a later deadline
    error AssetConsentExpired(uint64 deadline);
    /// @notice Asset `assetId` is not a member of portfolio `portfolioId`.
    error AssetNotPortfolioMember(uint32 portfolioId, uint64 assetId);
    /// @notice No portfolio has id `portfolioId`.
    error AssetUnknownPortfolio(uint32 portfolioId);
    /// @notice `account` is neither the asset's owner nor its portfolio's aggregator.
    error AssetNotAuthorized(address account);
    /// @notice The lists given together differ in length.
    error AssetArrayLengthMismatch();
    /// @notice `owner` did not sign the registration of meter `meter`.
    error AssetRegistrationInvalid(address owner, address meter);
    /// @notice The meter did not sign this registration (owner, asset type, its nonce, deadline).
    error AssetMeterSignatureInvalid(address meter, address owner);
    /// @notice The asset belongs to no portfolio's aggregator holding the AGGREGATOR role.
    error AssetAggregatorWithoutRole(address aggregator);
    /// @notice A market id of 0, or a portfolio member bound to `market`, not the portfolio's
    /// `expected` (0: a change of market is scheduled).
    error AssetMarketMismatch(uint64 assetId, uint32 market, uint32 expected);

    event AssetRegistered(uint64 indexed assetId, address indexed owner, address indexed meter, uint8 assetType);
    event AssetMapped(uint64 indexed assetId, uint32 indexed zoneId, uint32 upW, uint32 downW, address dso);
    /// @notice The asset sells in `market` for the ISPs starting at or after `from`.
    event AssetMarketSet(uint64 indexed assetId, uint32 indexed market, uint64 from);
    /// @notice The DSO of the asset's zone handed it over to `toZone`, whose DSO may now map it.
    event AssetHandedOver(uint64 indexed assetId, uint32 indexed fromZone, uint32 indexed toZone, address dso);
    /// @notice The asset was deregistered: its meter is free to be registered again.
    event AssetDeregistered(uint64 indexed assetId, address indexed meter, address by);
    event AssetSuspended(uint64 indexed assetId, address dso);
    event AssetReinstated(uint64 indexed assetId, address dso);
    event PortfolioCreated(uint32 indexed portfolioId, address indexed aggregator, uint32 indexed zoneId, uint64[] assets);
    event PortfolioAssetRemoved(uint32 indexed portfolioId, uint64 indexed assetId, address by);

    /**
     * @param registry The RoleRegistry.
     * @param gridZones The GridZones of the zones.
     */
    constructor(IRoleRegistry registry, GridZones gridZones)
        RoleGated(registry)
        EIP712("flexledger AssetRegistry", "1")
    {
        grid = gridZones;
    }

    /**
     * @notice Register an asset behind `meter` (which must hold the METER role and sign the
     * registration: `meterRegistrationDigest`); it is PENDING until a DSO maps it. The caller (a
     * PROSUMER or an AGGREGATOR) owns it.
     * @param meter The meter's address (its did:ethr identity).
     * @param assetType A code for the kind of asset (PV, battery, heat pump, EV charger, load...).
     * @param deadline The meter signature's deadline (Unix seconds).
     * @param meterSignature The meter's EIP-712 `MeterRegistration` signature naming the caller.
     * @return assetId The new asset's id.
     */
    function registerAsset(address meter, uint8 assetType, uint64 deadline, bytes calldata meterSignature)
        external
        returns (uint64 assetId)
    {
        _checkOwner(msg.sender);
        if (block.timestamp > deadline) revert AssetConsentExpired(deadline);
        return _register(msg.sender, meter, assetType, deadline, meterSignature);
    }

    /**
     * @notice Register many assets of the caller in one transaction (see `registerAsset`).
     * @param meters The meters, one per asset.
     * @param assetTypes The asset types.
     * @param deadline The meter signatures' deadline.
     * @param meterSignatures Each meter's `MeterRegistration` signature naming the caller.
     * @return first The id of the first new asset (the others follow in order).
     */
    function registerAssets(
        address[] calldata meters,
        uint8[] calldata assetTypes,
        uint64 deadline,
        bytes[] calldata meterSignatures
    ) external returns (uint64 first) {
        if (meters.length != assetTypes.length || meters.length != meterSignatures.length) {
            revert AssetArrayLengthMismatch();
        }
        _checkOwner(msg.sender);
        if (block.timestamp > deadline) revert AssetConsentExpired(deadline);
        first = assetCount + 1;
        for (uint256 i = 0; i < meters.length; ++i) {
            _register(msg.sender, meters[i], assetTypes[i], deadline, meterSignatures[i]);
        }
    }

    /**
     * @notice Register assets that their owners signed for (EIP-712 `AssetRegistration(owner,
     * meter, assetType, deadline)`), relayed by anyone holding the AGGREGATOR role: the owners
     * need no gas. Each meter signs too (`MeterRegistration`, naming its owner); the meter's nonce
     * keeps either signature from registering the meter a second time after a deregistration.
     * @param owners The owners (PROSUMER or AGGREGATOR role).
     * @param meters Their meters.
     * @param assetTypes The asset types.
     * @param signatures The owners' signatures (ERC-1271 wallets too).
     * @param meterSignatures The meters' signatures.
     * @param deadline The signatures' deadline.
     * @return first The id of the first new asset (the others follow in order).
     */
    function registerAssetsSigned(
        address[] calldata owners,
        address[] calldata meters,
        uint8[] calldata assetTypes,
        bytes[] calldata signatures,
        bytes[] calldata meterSignatures,
        uint64 deadline
    ) external onlyMarketRole(AGGREGATOR_ROLE) returns (uint64 first) {
        uint256 n = owners.length;
        if (meters.length != n || assetTypes.length != n || signatures.length != n || meterSignatures.length != n) {
            revert AssetArrayLengthMismatch();
        }
        if (block.timestamp > deadline) revert AssetConsentExpired(deadline);
        first = assetCount + 1;
        for (uint256 i = 0; i < n; ++i) {
            _checkOwnerSigned(owners[i], meters[i], assetTypes[i], deadline, signatures[i]);
            _register(owners[i], meters[i], assetTypes[i], deadline, meterSignatures[i]);
        }
    }

    /**
     * @notice Deregister an asset, freeing its meter: by its owner (not while it is in a
     * portfolio), or by a DSO while it is still PENDING (a registration no DSO will map). Its
     * record stays readable, so that settlements of its past awards still find its meter.
     * @param assetId The asset.
     */
    function deregisterAsset(uint64 assetId) external {
        Asset storage a = _asset(assetId);
        if (msg.sender == a.owner) {
            if (a.state & IN_PORTFOLIO != 0) revert AssetInPortfolio(assetId, _info[assetId].portfolio);
        } else if (_status(a) != Status.PENDING || !_hasMarketRole(msg.sender, DSO_ROLE)) {
            revert AssetNotAuthorized(msg.sender);
        }
        address meter = _info[assetId].meter;
        // a mapped asset's history records it: a portfolio it left is judged with it as it was
        bool mapped = _status(a) != Status.PENDING;
        if (mapped) _changing(assetId, a);
        a.state = (a.state & ~STATUS_MASK) | CHECK_HISTORY; // Status NONE
        if (mapped) _changed(assetId, a);
        delete assetOfMeter[meter];
        _meterFreeFrom[meter] = uint64(block.timestamp) + MARKET_CHANGE_LEAD;
        emit AssetDeregistered(assetId, meter, msg.sender);
    }

    /**
     * @notice The EIP-712 digest a meter signs to be registered for `owner`.
     * @param meter The meter.
     * @param owner The owner it names.
     * @param assetType The asset type.
     * @param nonce The meter's current registration nonce (`meterNonce`).
     * @param deadline The signature's deadline.
     * @return The digest.
     */
    function meterRegistrationDigest(address meter, address owner, uint8 assetType, uint256 nonce, uint64 deadline)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(abi.encode(METER_REGISTRATION_TYPEHASH, meter, owner, assetType, nonce, deadline))
        );
    }

    /**
     * @notice Map an asset to a zone and set its prequalified power, within the zone's asset limit.
     * A PENDING asset (whose owner must be credentialed) is mapped by a DSO operating the zone or
     * one of its ancestors, and becomes ACTIVE. A mapped asset is re-mapped by a DSO operating
     * both its current zone's path and the new one's, or, after its DSO handed it over to the new
     * zone (`handOverAsset`), by the new zone's DSO; its status stays as it is (a suspension is
     * lifted by `reinstateAsset` only). The first mapping binds the asset to `market`; naming
     * another market later schedules the change for the ISPs from `now + MARKET_CHANGE_LEAD` on.
     * @param assetId The asset.
     * @param zoneId The zone.
     * @param upW Prequalified power upwards (W).
     * @param downW Prequalified power downwards (W).
     * @param market The market it sells in (MarketRegistry id).
     */
    function mapAsset(uint64 assetId, uint32 zoneId, uint32 upW, uint32 downW, uint32 market) public {
        _checkMarketRole(msg.sender, DSO_ROLE);
        Asset storage a = _asset(assetId);
        AssetInfo storage info = _info[assetId];
        if (a.state & IN_PORTFOLIO != 0) revert AssetInPortfolio(assetId, info.portfolio);
        if (market == 0) revert AssetMarketMismatch(assetId, 0, 0);
        (bool onPath, uint32 limit) = grid.operatorPathCheck(zoneId, msg.sender);
        if (!onPath) revert AssetNotZoneDso(assetId, zoneId, msg.sender);
        Checkpoints.Trace208 storage markets = _markets[assetId];
        uint64 from;
        bool first = _status(a) == Status.PENDING;
        if (first) {
            if (!_credentialed(a.owner)) revert AssetOwnerWithoutRole(a.owner);
            _setStatus(a, Status.ACTIVE);
            from = _meterFreeFrom[info.meter];
        } else {
            if (info.handoverZone == zoneId) {
                info.handoverZone = 0;
            } else {
                (bool current,) = grid.operatorPathCheck(a.zone, msg.sender);
                if (!current) revert AssetNotZoneDso(assetId, a.zone, msg.sender);
            }
            _changing(assetId, a);
            uint256 current = markets.length() == 0 ? a.state >> MARKET_SHIFT : markets.latest();
            from = current == market ? 0 : uint64(block.timestamp) + MARKET_CHANGE_LEAD;
            // a history starts with the market the word held alone since the first mapping
            if (from != 0 && markets.length() == 0) markets.push(0, uint208(current));
        }
        if (upW == 0 && downW == 0) revert AssetZeroPower(assetId);
        if (upW > limit) revert AssetPowerAboveZoneLimit(assetId, upW, limit);
        if (downW > limit) revert AssetPowerAboveZoneLimit(assetId, downW, limit);
        (a.zone, a.upW, a.downW) = (uint24(zoneId), upW, downW);
        if (first || from != 0) {
            // keys only grow: `now + MARKET_CHANGE_LEAD` never falls, a first key is the smallest;
            // a first market the word holds alone (from the start, 1 to 15) needs no history
            if (!first || from != 0 || market > 15) markets.push(uint48(from), market);
            // the word's market holds only while every ISP still to be offered is in it
            uint8 fast = from <= block.timestamp && market < 16 ? uint8(market) : 0;
            a.state = (a.state & 15) | (fast << MARKET_SHIFT);
            emit AssetMarketSet(assetId, market, from);
        }
        if (_mappings[assetId].length() != 0) _changed(assetId, a);
        emit AssetMapped(assetId, zoneId, upW, downW, msg.sender);
    }

    /**
     * @notice Once a scheduled change of an asset's market binds every ISP still to be offered,
     * put the market back in the asset's word (anyone may call it): the order book then checks an
     * offer's market without reading the history.
     * @param assetId The asset.
     */
    function applyMarket(uint64 assetId) external {
        Asset storage a = _asset(assetId);
        Checkpoints.Trace208 storage markets = _markets[assetId];
        (bool exists, uint48 key, uint208 market) = markets.latestCheckpoint();
        if (exists && key <= block.timestamp && market < 16) {
            a.state = (a.state & 15) | (uint8(market) << MARKET_SHIFT);
        }
    }

    /**
     * @notice Hand a mapped asset over to another zone (a DSO operating its current zone's path):
     * the DSO of `zoneId` may then map it there (`mapAsset`), with the power it prequalifies.
     * Until then nothing changes; a later hand-over replaces this one, `zoneId` 0 withdraws it.
     * @param assetId The asset.
     * @param zoneId The zone it moves to (0 to withdraw the hand-over).
     */
    function handOverAsset(uint64 assetId, uint32 zoneId) external {
        Asset storage a = _mappedBy(assetId, msg.sender);
        if (zoneId != 0) grid.operatorPathCheck(zoneId, msg.sender); // reverts for an unknown zone
        _info[assetId].handoverZone = uint24(zoneId);
        emit AssetHandedOver(assetId, a.zone, zoneId, msg.sender);
    }

    /**
     * @notice Map many assets in one transaction (see `mapAsset`).
     * @param assetIds The assets.
     * @param zoneIds Their zones.
     * @param upW Their power upwards.
     * @param downW Their power downwards.
     * @param markets Their markets.
     */
    function mapAssets(
        uint64[] calldata assetIds,
        uint32[] calldata zoneIds,
        uint32[] calldata upW,
        uint32[] calldata downW,
        uint32[] calldata markets
    ) external {
        uint256 n = assetIds.length;
        if (zoneIds.length != n || upW.length != n || downW.length != n || markets.length != n) {
            revert AssetArrayLengthMismatch();
        }
        for (uint256 i = 0; i < n; ++i) {
            mapAsset(assetIds[i], zoneIds[i], upW[i], downW[i], markets[i]);
        }
    }

    /**
     * @notice Suspend an asset (a DSO operating its zone's path): it cannot offer until reinstated.
     * @param assetId The asset.
     */
    function suspendAsset(uint64 assetId) external {
        Asset storage a = _mappedBy(assetId, msg.sender);
        _changing(assetId, a);
        _setStatus(a, Status.SUSPENDED);
        _changed(assetId, a);
        emit AssetSuspended(assetId, msg.sender);
    }

    /**
     * @notice Suspend the active assets among `assetIds` whose owner no longer holds a valid
     * PROSUMER or AGGREGATOR credential (revoked or expired), or whose portfolio's aggregator no
     * longer holds the AGGREGATOR role; anyone may call it. The order book does not re-read
     * owners' credentials for every offer (that would cost a cold slot per offer), so whoever
     * revokes a role, or notices that one expired, suspends the owner's assets with this; a DSO
     * reinstates them once the owner (and aggregator) is credentialed again, or the asset left
     * the portfolio.
     * @param assetIds The assets to look at; others, and credentialed sellers' assets, are left as they are.
     * @return suspended How many were suspended.
     */
    function suspendUncredentialed(uint64[] calldata assetIds) external returns (uint256 suspended) {
        for (uint256 i = 0; i < assetIds.length; ++i) {
            Asset storage a = _assets[assetIds[i]];
            if (_status(a) != Status.ACTIVE || _sellerCredentialed(assetIds[i], a)) continue;
            _changing(assetIds[i], a);
            _setStatus(a, Status.SUSPENDED);
            _changed(assetIds[i], a);
            emit AssetSuspended(assetIds[i], msg.sender);
            ++suspended;
        }
    }

    /**
     * @notice Reinstate a suspended asset.
     * @param assetId The asset.
     */
    function reinstateAsset(uint64 assetId) external {
        Asset storage a = _mappedBy(assetId, msg.sender);
        if (!_credentialed(a.owner)) revert AssetOwnerWithoutRole(a.owner);
        if (!_sellerCredentialed(assetId, a)) {
            revert AssetAggregatorWithoutRole(_portfolios[_info[assetId].portfolio].aggregator);
        }
        _changing(assetId, a);
        _setStatus(a, Status.ACTIVE);
        _changed(assetId, a);
        emit AssetReinstated(assetId, msg.sender);
    }

    /**
     * @notice Form a portfolio of active assets that are all mapped to `zoneId` and bound to one
     * market with no change scheduled (the portfolio's market), each with its owner's consent: an
     * EIP-712 `PortfolioConsent(aggregator, asset, nonce, deadline)` signature.
     * @param zoneId The zone of every asset.
     * @param assetIds The assets.
     * @param signatures One owner consent per asset.
     * @param deadline The consents' deadline (Unix seconds).
     * @return portfolioId The new portfolio's id.
     */
    function createPortfolio(
        uint32 zoneId,
        uint64[] calldata assetIds,
        bytes[] calldata signatures,
        uint64 deadline
    ) external onlyMarketRole(AGGREGATOR_ROLE) returns (uint32 portfolioId) {
        if (assetIds.length != signatures.length) revert AssetArrayLengthMismatch();
        if (block.timestamp > deadline) revert AssetConsentExpired(deadline);
        portfolioId = ++portfolioCount;
        Portfolio storage p = _portfolios[portfolioId];
        p.aggregator = msg.sender;
        p.zone = zoneId;
        for (uint256 i = 0; i < assetIds.length; ++i) {
            uint64 id = assetIds[i];
            Asset storage a = _asset(id);
            if (_status(a) != Status.ACTIVE) revert AssetNotActive(id);
            if (a.zone != zoneId) revert AssetOutsideZone(id, a.zone, zoneId);
            if (a.state & IN_PORTFOLIO != 0) revert AssetInPortfolio(id, _info[id].portfolio);
            // a member sells only through the portfolio, in the portfolio's market: for good
            // while a member (no re-mapping then), and so for every ISP its delivery counts in
            uint32 market = marketFor(id, uint64(block.timestamp), type(uint64).max);
            if (i == 0) p.market = market;
            if (market == 0 || market != p.market) revert AssetMarketMismatch(id, market, p.market);
            bytes32 digest = consentDigest(msg.sender, id, consentNonce[id], deadline);
            if (!SignatureChecker.isValidSignatureNow(a.owner, digest, signatures[i])) {
                revert AssetConsentInvalid(id, a.owner);
            }
            consentNonce[id]++;
            a.state |= IN_PORTFOLIO | CHECK_HISTORY;
            _info[id].portfolio = portfolioId;
            p.members.push(Member(id, uint64(block.timestamp), 0));
            _stints[id].push(Stint(portfolioId, uint64(block.timestamp), 0));
        }
        emit PortfolioCreated(portfolioId, msg.sender, zoneId, assetIds);
    }

    /**
     * @notice Take an asset out of its portfolio (its aggregator or the asset's owner, any time).
     * It still counts in the portfolio's delivery for the market days whose gate closure it was a
     * member at (`membersAt`): the portfolio's offers for them were made with it; and its own
     * offers for those days stay out of the clearing (`portfolioAt`).
     * @param assetId The asset.
     */
    function removeFromPortfolio(uint64 assetId) external {
        Asset storage a = _asset(assetId);
        uint32 portfolioId = _info[assetId].portfolio;
        if (portfolioId == 0) revert AssetNotPortfolioMember(0, assetId);
        Portfolio storage p = _portfolios[portfolioId];
        if (msg.sender != a.owner && msg.sender != p.aggregator) revert AssetNotAuthorized(msg.sender);
        Member[] storage members = p.members;
        for (uint256 i = 0; i < members.length; ++i) {
            if (members[i].asset == assetId && members[i].leftAt == 0) {
                members[i].leftAt = uint64(block.timestamp);
                break;
            }
        }
        Stint[] storage stints = _stints[assetId];
        stints[stints.length - 1].leftAt = uint64(block.timestamp);
        a.state &= ~IN_PORTFOLIO;
        _info[assetId].portfolio = 0;
        emit PortfolioAssetRemoved(portfolioId, assetId, msg.sender);
    }

    /**
     * @notice The EIP-712 digest an owner signs to consent to `aggregator` taking `assetId`.
     * @param aggregator The aggregator.
     * @param assetId The asset.
     * @param nonce The asset's current consent nonce.
     * @param deadline The consent's deadline.
     * @return The digest.
     */
    function consentDigest(address aggregator, uint64 assetId, uint256 nonce, uint64 deadline)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(CONSENT_TYPEHASH, aggregator, assetId, nonce, deadline)));
    }

    /**
     * @notice An asset's record.
     * @param assetId The asset.
     * @return owner The owner.
     * @return zone The zone (0 while pending).
     * @return status PENDING, ACTIVE or SUSPENDED.
     * @return assetType The type code.
     * @return portfolioId Its portfolio (0 if none).
     * @return meter The meter.
     * @return upW Prequalified power upwards.
     * @return downW Prequalified power downwards.
     */
    function asset(uint64 assetId)
        external
        view
        returns (
            address owner,
            uint32 zone,
            Status status,
            uint8 assetType,
            uint32 portfolioId,
            address meter,
            uint32 upW,
            uint32 downW
        )
    {
        Asset storage a = _assets[assetId];
        if (a.owner == address(0)) revert AssetUnknown(assetId); // a deregistered asset stays readable
        AssetInfo storage info = _info[assetId];
        return (a.owner, a.zone, _status(a), info.assetType, info.portfolio, info.meter, a.upW, a.downW);
    }

    /**
     * @notice An asset's meter, in one slot read (the settlement's per-offer read).
     * @param assetId The asset.
     * @return meter The meter (the zero address for an unknown asset).
     */
    function meterOf(uint64 assetId) external view returns (address meter) {
        return _info[assetId].meter;
    }

    /**
     * @notice Whether each meter may report readings now, in one call (the oracle asks for a batch
     * of meters at once): its asset's status (NONE when it has no asset), and whether it holds a
     * valid METER credential.
     * @param meters The meters.
     * @return statuses Per meter, its asset's Status (NONE without an asset).
     * @return credentialed Per meter, whether it holds a valid METER credential now.
     */
    function meterStates(address[] calldata meters)
        external
        view
        returns (Status[] memory statuses, bool[] memory credentialed)
    {
        statuses = new Status[](meters.length);
        credentialed = new bool[](meters.length);
        for (uint256 i = 0; i < meters.length; ++i) {
            uint64 id = assetOfMeter[meters[i]];
            statuses[i] = id == 0 ? Status.NONE : _status(_assets[id]);
            credentialed[i] = _hasMarketRole(meters[i], METER_ROLE);
        }
    }

    /**
     * @notice What an offer for an asset is checked against, in one call (the order book's
     * per-offer read: one slot). An unknown asset answers status NONE instead of reverting.
     * @param assetId The asset.
     * @return owner The owner (who signs its offers).
     * @return zone The zone (0 while pending).
     * @return status NONE, PENDING, ACTIVE or SUSPENDED.
     * @return inPortfolio Whether it belongs to a portfolio (then its aggregator offers it).
     * @return upW Prequalified power upwards.
     * @return downW Prequalified power downwards.
     */
    function offerTerms(uint64 assetId)
        external
        view
        returns (address owner, uint32 zone, Status status, bool inPortfolio, uint32 upW, uint32 downW)
    {
        Asset storage a = _assets[assetId];
        return (a.owner, a.zone, _status(a), a.state & IN_PORTFOLIO != 0, a.upW, a.downW);
    }

    /**
     * @notice The asset's record as one word, for contracts that check many offers (the order
     * book): owner, zone, state (Status, in a portfolio, look past this word, market) and
     * prequalified powers, laid out as `OfferWord` says. Zero for an unknown asset.
     * @param assetId The asset.
     * @return word The packed record.
     */
    function offerWord(uint64 assetId) external view returns (uint256 word) {
        Asset storage a = _assets[assetId];
        assembly ("memory-safe") {
            word := sload(a.slot)
        }
    }

    /**
     * @notice The asset's record as it was at time `t` (`OfferWord`, the owner as now):
     * its zone, status and prequalified power then, which the clearing judges at the day's gate
     * closure; and the portfolio it was then a member of (0 if none).
     * @param assetId The asset.
     * @param t A Unix time.
     * @return word The packed record at `t`.
     * @return portfolioId The portfolio at `t` (`portfolioAt`).
     */
    function offerWordAt(uint64 assetId, uint64 t) external view returns (uint256 word, uint32 portfolioId) {
        return (OfferWord.unwrap(_wordAt(assetId, t)), _portfolioAt(assetId, t));
    }

    /**
     * @notice The market an asset sells in for every ISP of the window `[start, end)`: 0 if the
     * window spans a change of market or precedes its first binding.
     * @param assetId The asset.
     * @param start The window's first second.
     * @param end The second after its last.
     * @return market The market (0 if none for the whole window).
     */
    function marketFor(uint64 assetId, uint64 start, uint64 end) public view returns (uint32 market) {
        Checkpoints.Trace208 storage h = _markets[assetId];
        uint256 n = h.length();
        // no history: the word's market, bound since the first mapping (0 if never mapped)
        if (n == 0) return uint32(_assets[assetId].state >> MARKET_SHIFT);
        // changes are few and the latest matter most: walk back from the latest
        for (uint256 i = n; i > 0; --i) {
            Checkpoints.Checkpoint208 memory c = h.at(uint32(i - 1));
            if (c._key <= start) return uint32(c._value);
            if (c._key < end) return 0;
        }
    }

    /**
     * @notice A portfolio's market: its members' (0 for an unknown portfolio).
     * @param portfolioId The portfolio.
     * @return The market.
     */
    function marketOfPortfolio(uint32 portfolioId) external view returns (uint32) {
        return _portfolios[portfolioId].market;
    }

    /**
     * @notice The portfolio an asset was a member of at time `t` (0 if none): it had joined at or
     * before `t` and not left by then.
     * @param assetId The asset.
     * @param t A Unix time.
     * @return portfolioId The portfolio (0 if none).
     */
    function portfolioAt(uint64 assetId, uint64 t) external view returns (uint32 portfolioId) {
        return _portfolioAt(assetId, t);
    }

    /**
     * @notice What an offer for a portfolio is checked against: its aggregator, zone, and the
     * prequalified power of its ACTIVE members, summed (a suspended member does not count).
     * An unknown portfolio answers the zero address.
     * @param portfolioId The portfolio.
     * @return aggregator The aggregator (who signs its offers).
     * @return zone The zone.
     * @return upW Summed prequalified power upwards of the active members.
     * @return downW Summed prequalified power downwards of the active members.
     */
    function portfolioTerms(uint32 portfolioId)
        external
        view
        returns (address aggregator, uint32 zone, uint256 upW, uint256 downW)
    {
        Portfolio storage p = _portfolios[portfolioId];
        Member[] storage members = p.members;
        for (uint256 i = 0; i < members.length; ++i) {
            Member storage m = members[i];
            if (m.leftAt != 0) continue;
            Asset storage member = _assets[m.asset];
            if (_status(member) != Status.ACTIVE) continue;
            upW += member.upW;
            downW += member.downW;
        }
        return (p.aggregator, p.zone, upW, downW);
    }

    /**
     * @notice `portfolioTerms` as of time `t`, which the clearing judges a portfolio's offer at
     * (the day's gate closure): the prequalified power of the members it had then (`membersAt`)
     * that were then ACTIVE, each as mapped then (`offerWordAt`), summed. An unknown portfolio
     * answers the zero address.
     * @param portfolioId The portfolio.
     * @param t A Unix time.
     * @return aggregator The aggregator (who signs its offers).
     * @return zone The zone.
     * @return upW Summed prequalified power upwards of the members active at `t`.
     * @return downW Summed prequalified power downwards of the members active at `t`.
     */
    function portfolioTermsAt(uint32 portfolioId, uint64 t)
        external
        view
        returns (address aggregator, uint32 zone, uint256 upW, uint256 downW)
    {
        Portfolio storage p = _portfolios[portfolioId];
        Member[] storage members = p.members;
        for (uint256 i = 0; i < members.length; ++i) {
            Member storage m = members[i];
            uint64 leftAt = m.leftAt;
            if (m.joinedAt > t || (leftAt != 0 && leftAt <= t)) continue; // `_membersAt`'s rule
            // the word's fields by their named offsets: an accessor is a jump per member and field
            uint256 word = OfferWord.unwrap(_wordAt(m.asset, t));
            if ((word >> OfferWordLibrary.STATE_AT) & STATUS_MASK != uint8(Status.ACTIVE)) continue;
            upW += uint32(word >> OfferWordLibrary.UP_AT);
            downW += uint32(word >> OfferWordLibrary.DOWN_AT);
        }
        return (p.aggregator, p.zone, upW, downW);
    }

    /**
     * @notice A portfolio: its aggregator, zone and member assets now.
     * @param portfolioId The portfolio.
     * @return aggregator The aggregator.
     * @return zone The zone.
     * @return members The member assets.
     */
    function portfolio(uint32 portfolioId)
        external
        view
        returns (address aggregator, uint32 zone, uint64[] memory members)
    {
        Portfolio storage p = _portfolios[portfolioId];
        if (p.aggregator == address(0)) revert AssetUnknownPortfolio(portfolioId);
        return (p.aggregator, p.zone, _membersAt(p, type(uint64).max));
    }

    /**
     * @notice The assets that were members of a portfolio at time `t` (those that had not left by
     * then), in the order it was founded with: whose meters a portfolio's delivery sums.
     * @param portfolioId The portfolio.
     * @param t A Unix time.
     * @return members The member assets at `t`.
     */
    function membersAt(uint32 portfolioId, uint64 t) external view returns (uint64[] memory members) {
        Portfolio storage p = _portfolios[portfolioId];
        if (p.aggregator == address(0)) revert AssetUnknownPortfolio(portfolioId);
        return _membersAt(p, t);
    }

    /**
     * @notice A portfolio's aggregator, who sells its flexibility (the zero address if unknown).
     * @param portfolioId The portfolio.
     * @return The aggregator.
     */
    function aggregatorOf(uint32 portfolioId) external view returns (address) {
        return _portfolios[portfolioId].aggregator;
    }

    /// @dev Members at `t`: joined at or before `t`, not left by then (one that left at `t` does not count).
    function _membersAt(Portfolio storage p, uint64 t) internal view returns (uint64[] memory members) {
        Member[] storage all = p.members;
        members = new uint64[](all.length);
        uint256 n;
        for (uint256 i = 0; i < all.length; ++i) {
            Member storage m = all[i];
            uint64 leftAt = m.leftAt;
            if (m.joinedAt <= t && (leftAt == 0 || leftAt > t)) members[n++] = m.asset;
        }
        assembly ("memory-safe") {
            mstore(members, n)
        }
    }

    /// @dev The record at `t` (`offerWordAt`): the word itself until its first change since the
    /// first mapping, which starts the history.
    function _wordAt(uint64 assetId, uint64 t) internal view returns (OfferWord word) {
        word = _word(_assets[assetId]);
        Checkpoints.Trace208 storage h = _mappings[assetId];
        if (h.length() != 0) word = word.withUpper(h.upperLookupRecent(uint48(t)));
    }

    /// @dev The record's slot as the word it is.
    function _word(Asset storage a) internal view returns (OfferWord word) {
        assembly ("memory-safe") {
            word := sload(a.slot)
        }
    }

    /// @dev Stints are in time order and never overlap: walk back until one ended by `t`.
    function _portfolioAt(uint64 assetId, uint64 t) internal view returns (uint32) {
        Stint[] storage stints = _stints[assetId];
        for (uint256 i = stints.length; i > 0; --i) {
            Stint storage st = stints[i - 1];
            uint64 leftAt = st.leftAt;
            if (leftAt != 0 && leftAt <= t) return 0;
            if (st.joinedAt <= t) return st.portfolio;
        }
        return 0;
    }

    /// @dev Before a change of a mapped asset's record: its history starts with the record as it
    /// was (from time 0: an offer of it exists only after its first mapping), and the clearing
    /// must now read it.
    function _changing(uint64 assetId, Asset storage a) internal {
        Checkpoints.Trace208 storage h = _mappings[assetId];
        if (h.length() == 0) h.push(0, _mappingWord(a));
        a.state |= CHECK_HISTORY;
    }

    /// @dev After a change of a mapped asset's record: the new record from now on.
    function _changed(uint64 assetId, Asset storage a) internal {
        _mappings[assetId].push(uint48(block.timestamp), _mappingWord(a));
    }

    /// @dev The record's upper 96 bits: zone, state, powers.
    function _mappingWord(Asset storage a) internal view returns (uint208) {
        return uint208(_word(a).upper());
    }

    /// @dev The owner is credentialed and, in a portfolio, so is its aggregator (who sells it).
    function _sellerCredentialed(uint64 assetId, Asset storage a) internal view returns (bool) {
        if (!_credentialed(a.owner)) return false;
        if (a.state & IN_PORTFOLIO == 0) return true;
        return _hasMarketRole(_portfolios[_info[assetId].portfolio].aggregator, AGGREGATOR_ROLE);
    }

    /// @dev The owner is credentialed and signed the relayed registration.
    function _checkOwnerSigned(address owner, address meter, uint8 assetType, uint64 deadline, bytes calldata sig)
        internal
        view
    {
        _checkOwner(owner);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(REGISTRATION_TYPEHASH, owner, meter, assetType, deadline)));
        if (!SignatureChecker.isValidSignatureNow(owner, digest, sig)) revert AssetRegistrationInvalid(owner, meter);
    }

    function _checkOwner(address owner) internal view {
        if (!_credentialed(owner)) revert AssetOwnerWithoutRole(owner);
    }

    function _credentialed(address owner) internal view returns (bool) {
        return _hasMarketRole(owner, PROSUMER_ROLE) || _hasMarketRole(owner, AGGREGATOR_ROLE);
    }

    /// @dev The caller checked the deadline.
    function _register(address owner, address meter, uint8 assetType, uint64 deadline, bytes calldata meterSignature)
        internal
        returns (uint64 assetId)
    {
        if (!_hasMarketRole(meter, METER_ROLE)) revert AssetMeterWithoutRole(meter);
        uint64 existing = assetOfMeter[meter];
        if (existing != 0) revert AssetMeterTaken(meter, existing);
        uint256 nonce = meterNonce[meter]++;
        bytes32 digest = meterRegistrationDigest(meter, owner, assetType, nonce, deadline);
        if (!SignatureChecker.isValidSignatureNow(meter, digest, meterSignature)) {
            revert AssetMeterSignatureInvalid(meter, owner);
        }
        assetId = ++assetCount;
        _assets[assetId] = Asset(owner, 0, uint8(Status.PENDING), 0, 0);
        _info[assetId] = AssetInfo(meter, 0, assetType, 0);
        assetOfMeter[meter] = assetId;
        emit AssetRegistered(assetId, owner, meter, assetType);
    }

    function _asset(uint64 assetId) internal view returns (Asset storage a) {
        a = _assets[assetId];
        if (_status(a) == Status.NONE) revert AssetUnknown(assetId);
    }

    function _status(Asset storage a) internal view returns (Status) {
        return Status(a.state & STATUS_MASK);
    }

    function _setStatus(Asset storage a, Status status) internal {
        a.state = (a.state & ~STATUS_MASK) | uint8(status);
    }

    function _mappedBy(uint64 assetId, address dso) internal view returns (Asset storage a) {
        _checkMarketRole(dso, DSO_ROLE);
        a = _asset(assetId);
        if (_status(a) == Status.PENDING) revert AssetNotZoneDso(assetId, a.zone, dso);
        (bool onPath,) = grid.operatorPathCheck(a.zone, dso);
        if (!onPath) revert AssetNotZoneDso(assetId, a.zone, dso);
    }
}
