// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {RoleGated} from "../access/RoleGated.sol";
import {IRoleRegistry} from "../access/IRoleRegistry.sol";
import {MarketRegistry} from "../market/MarketRegistry.sol";

/**
 * @title GridZones
 * @notice The grid hierarchy (TSO area > DSO perimeter > substation > feeder) and its traffic
 * lights, DESIGN.md market rule 1. Each zone has one operator and at most one parent. Per zone and
 * direction its operator (a DSO) sets a static light; per market ISP and direction it may publish
 * a dynamic light that is only tighter, until that ISP's gate closure. `tsoHeadroom` answers what
 * the TSO may use in a zone: nothing if any zone on the path to the root is RED, else the smallest
 * YELLOW capability on the path, else no limit.
 *
 * @dev Zones and lights share one contract so that the headroom view reads no other account.
 *
 * Light encoding (static lights, dynamic entries, the words a DSO publishes): 32 bits,
 * `colour << 30 | capabilityW`, colour 0 = unset, 1 = GREEN, 2 = YELLOW, 3 = RED, and a capability
 * (W, YELLOW only) of at most 2^30 - 1 = 1,073,741,823 W (1.07 GW: above any single zone's
 * flexibility; a larger capability is simply GREEN). Tightness: RED < YELLOW (lower capability is
 * tighter) < GREEN.
 *
 * Dynamic lights follow the 15-minute ISP (`LIGHT_ISP_SECONDS`) and are stored one word per
 * market, zone and UTC hour: lanes 0-3 (bits 0-127) hold the hour's four ISPs UP, lanes 4-7
 * (bits 128-255) the same ISPs DOWN, lane `4 * direction + (ispStart % 3600) / 900`. Eight entries
 * share each new slot (22,100 / 8 = 2,763 gas of storage per entry), and any market day that
 * starts on a whole hour (00:00, 22:00 or 23:00 UTC) is exactly 24 words.
 *
 * Storage layout chosen for the headroom view (about one cold slot per level): a zone's hot word
 * holds its two static lights, its depth, the ids of all its ancestors (24 bits each, so at most
 * `MAX_ZONES` zones) and a "has had dynamic lights" bit. The view reads the leaf's word, then per
 * level either the light word first (when the leaf has dynamic lights: DSOs that publish, publish
 * the whole path) or the zone word first (when it has none: static lights only), and the other
 * slot only when needed. Root zones (the TSO's own areas) carry no lights - lights are the DSO's
 * instrument, and no DSO sits above a root - so the view never reads the root. The operator and
 * the asset power cap, needed only by writes, live in a second word.
 *
 * A static light may change at any time and applies at once wherever no dynamic light is set;
 * dynamic lights already published are not rewritten, so an operator tightening a static light
 * republishes the open ISPs whose dynamic lights would now be looser.
 */
contract GridZones is RoleGated {
    /// @notice Direction `UP`: more injection or less consumption.
    uint8 public constant UP = 0;
    /// @notice Direction `DOWN`: less injection or more consumption.
    uint8 public constant DOWN = 1;
    /// @notice No light set (a dynamic entry: the static light holds; a static light: GREEN holds).
    uint8 public constant UNSET = 0;
    /// @notice No restriction for the TSO.
    uint8 public constant GREEN = 1;
    /// @notice The TSO may use flexibility up to the capability, summed over its awards.
    uint8 public constant YELLOW = 2;
    /// @notice The TSO may use no flexibility.
    uint8 public constant RED = 3;
    /// @notice A root has depth 0; zones are at most this deep, so a path holds at most 8 zones.
    uint8 public constant MAX_DEPTH = 7;
    /// @notice The largest capability a light can carry (30 bits, W).
    uint32 public constant MAX_CAPABILITY_W = (1 << 30) - 1;
    /// @notice The ISP length the dynamic lights follow (s); markets with lights use it.
    uint32 public constant LIGHT_ISP_SECONDS = 900;
    /// @notice Zone ids are stored in 24 bits in the ancestor lists.
    uint32 public constant MAX_ZONES = (1 << 24) - 1;
    /// @notice Words per zone in `publishDay`: one per hour of the market day.
    uint256 public constant WORDS_PER_DAY = 24;

    bytes32 private constant DSO_ROLE = keccak256("DSO");
    bytes32 private constant TSO_ROLE = keccak256("TSO");

    uint256 private constant HOUR = 3600;
    uint256 private constant DAY = 86_400;
    uint256 private constant LIGHT_MASK = 0xffffffff;

    // The hot zone word: static UP (bits 0-31), static DOWN (32-63), depth (64-71), ancestors
    // nearest first, 24 bits each (72-239), "has had dynamic lights" (254), "exists" (255).
    uint256 private constant DEPTH_SHIFT = 64;
    uint256 private constant ANCESTORS_SHIFT = 72;
    uint256 private constant ANCESTORS_MASK = (1 << 168) - 1;
    uint256 private constant HAS_LIGHTS = 1 << 254;
    uint256 private constant EXISTS = 1 << 255;

    // Lane masks: the same 32-bit pattern in each of a word's 8 lanes.
    uint256 private constant LANES_BIT31 = 0x8000000080000000800000008000000080000000800000008000000080000000;
    uint256 private constant LANES_BIT30 = 0x4000000040000000400000004000000040000000400000004000000040000000;
    uint256 private constant LANES_CAPABILITY = 0x3fffffff3fffffff3fffffff3fffffff3fffffff3fffffff3fffffff3fffffff;
    uint256 private constant LANES_ONE = 0x0000000100000001000000010000000100000001000000010000000100000001;
    uint256 private constant UP_LANES = (1 << 128) - 1;

    /// @dev Read by writes only: who operates the zone, and the asset power cap.
    struct ZoneInfo {
        address operator;
        uint32 maxAssetPowerW;
    }

    /// @notice The markets whose gate closure and day boundary the dynamic lights follow.
    MarketRegistry public immutable markets;
    /// @notice How many zones exist; ids run from 1 to this (0 means "none").
    uint32 public zoneCount;

    mapping(uint32 zoneId => uint256 word) private _zoneWords;
    mapping(uint32 zoneId => ZoneInfo) private _zoneInfo;
    /// @dev Key: `marketId << 128 | zoneId << 96 | hourIndex` (hourIndex = hour start / 3600).
    mapping(uint256 key => uint256 word) private _lights;

    /// @notice No zone has id `zoneId`.
    error GridZonesUnknownZone(uint32 zoneId);
    /// @notice `account` does not operate `zoneId`.
    error GridZonesNotOperator(uint32 zoneId, address account);
    /// @notice `operator` holds neither the DSO nor the TSO role.
    error GridZonesOperatorWithoutRole(address operator);
    /// @notice A root zone must be operated by the TSO who adds it.
    error GridZonesInvalidOperator(address operator);
    /// @notice A zone under `parent` would be at `depth`, beyond `MAX_DEPTH`.
    error GridZonesTooDeep(uint32 parent, uint8 depth);
    /// @notice All `MAX_ZONES` zone ids are taken.
    error GridZonesTooManyZones();
    /// @notice Root zones (TSO areas) carry no lights.
    error GridZonesRootHasNoLights(uint32 zoneId);
    /// @notice `direction` is neither UP (0) nor DOWN (1).
    error GridZonesInvalidDirection(uint8 direction);
    /// @notice `colour` is not a colour this call accepts.
    error GridZonesInvalidColour(uint8 colour);
    /// @notice A capability was given with a colour other than YELLOW.
    error GridZonesCapabilityNotAllowed(uint8 colour, uint256 capabilityW);
    /// @notice The capability does not fit in 30 bits.
    /// @custom:hint give a capability below 2^30 W (1,073,741,823 W)
    error GridZonesCapabilityOverflow(uint256 capabilityW);
    /// @notice A dynamic light (packed) is looser than the zone's static light (packed) for that direction.
    /// @custom:hint publish a dynamic light at most as loose as the zone's static light (RED < YELLOW by capability < GREEN), or loosen the static light first
    error GridZonesLooserThanStatic(uint32 zoneId, uint64 ispStart, uint8 direction, uint32 light, uint32 staticLight);
    /// @notice The light of the ISP starting at `ispStart` cannot change after its gate closure.
    error GridZonesAfterGateClosure(uint32 zoneId, uint64 ispStart, uint64 gateClosure);
    /// @notice `time` is not a multiple of `period` seconds.
    error GridZonesNotAligned(uint64 time, uint32 period);
    /// @notice Market `marketId` has `ispSeconds`, not the lights' 15-minute ISP.
    error GridZonesUnsupportedIsp(uint32 marketId, uint32 ispSeconds);
    /// @notice `dayStart` is not the start of a market day of `marketId`, or that day does not start on a whole hour.
    error GridZonesNotDayStart(uint32 marketId, uint64 dayStart);
    /// @notice The words do not match the zones (24 per zone).
    error GridZonesWordCountMismatch(uint256 expected, uint256 actual);
    /// @notice A published word failed a check that no single entry explains (not expected to happen).
    error GridZonesInvalidWord(uint32 zoneId, uint256 word);

    /// @notice Zone `zoneId` was added under `parent` (0 for a root), operated by `operator`.
    event ZoneAdded(
        uint32 indexed zoneId, uint32 indexed parent, address indexed operator, uint8 depth, uint32 maxAssetPowerW
    );
    /// @notice The static light of `zoneId` in `direction` was set.
    event StaticLightSet(uint32 indexed zoneId, uint8 direction, uint8 colour, uint32 capabilityW);
    /// @notice `publisher` published the dynamic lights of market day `dayStart` for `zones`:
    /// `words[24 * i + h]` is hour `h` of the day for `zones[i]`, lanes as stored (see the contract).
    event DayLightsPublished(
        uint32 indexed marketId, uint64 indexed dayStart, address indexed publisher, uint32[] zones, uint256[] words
    );
    /// @notice One dynamic light was set (colour UNSET: cleared, the static light holds again).
    event DynamicLightSet(
        uint32 indexed marketId,
        uint32 indexed zoneId,
        uint64 indexed ispStart,
        uint8 direction,
        uint8 colour,
        uint32 capabilityW
    );

    /**
     * @param registry The RoleRegistry (who is a TSO or a DSO).
     * @param marketRegistry The MarketRegistry (gate closure and market days of the dynamic lights).
     */
    constructor(IRoleRegistry registry, MarketRegistry marketRegistry) RoleGated(registry) {
        markets = marketRegistry;
    }

    // ------------------------------------------------------------------------------------ zones

    /**
     * @notice Add a zone. A root (parent 0) is added by a TSO, who must name itself operator; any
     * other zone by the operator of its parent (holding the DSO or TSO role), and its operator
     * must hold the DSO or TSO role. The parent is fixed for ever and must already exist, so the
     * hierarchy has no cycles.
     * @param parent The parent zone, or 0 for a root (TSO area).
     * @param operator Who operates the new zone: sets its lights, maps its assets, adds its children.
     * @param maxAssetPowerW The most power (W) one asset in the zone may be prequalified for.
     * @return zoneId The new zone's id.
     */
    function addZone(uint32 parent, address operator, uint32 maxAssetPowerW) external returns (uint32 zoneId) {
        uint256 word = EXISTS;
        uint256 depth;
        if (parent == 0) {
            _checkMarketRole(msg.sender, TSO_ROLE);
            if (operator != msg.sender) revert GridZonesInvalidOperator(operator);
        } else {
            uint256 parentWord = _existing(parent);
            if (_zoneInfo[parent].operator != msg.sender) revert GridZonesNotOperator(parent, msg.sender);
            _checkOperatorRole(msg.sender);
            depth = uint8(parentWord >> DEPTH_SHIFT) + 1;
            if (depth > MAX_DEPTH) revert GridZonesTooDeep(parent, uint8(depth));
            _checkOperatorRole(operator);
            uint256 ancestors = ((parentWord >> ANCESTORS_SHIFT) << 24 | parent) & ANCESTORS_MASK;
            word |= depth << DEPTH_SHIFT | ancestors << ANCESTORS_SHIFT;
        }
        zoneId = zoneCount + 1;
        if (zoneId > MAX_ZONES) revert GridZonesTooManyZones();
        zoneCount = zoneId;
        _zoneWords[zoneId] = word;
        _zoneInfo[zoneId] = ZoneInfo(operator, maxAssetPowerW);
        emit ZoneAdded(zoneId, parent, operator, uint8(depth), maxAssetPowerW);
    }

    /**
     * @notice A zone's record.
     * @param zoneId The zone.
     * @return parent The parent (0 for a root).
     * @return depth The depth (0 for a root).
     * @return operator The operator.
     * @return maxAssetPowerW The asset power cap (W).
     * @return staticUp The static light UP, packed (`colour << 30 | capabilityW`; 0 = unset, GREEN holds).
     * @return staticDown The static light DOWN, packed.
     */
    function zone(uint32 zoneId)
        external
        view
        returns (
            uint32 parent,
            uint8 depth,
            address operator,
            uint32 maxAssetPowerW,
            uint32 staticUp,
            uint32 staticDown
        )
    {
        uint256 word = _existing(zoneId);
        ZoneInfo storage info = _zoneInfo[zoneId];
        return (
            uint24(word >> ANCESTORS_SHIFT),
            uint8(word >> DEPTH_SHIFT),
            info.operator,
            info.maxAssetPowerW,
            uint32(word),
            uint32(word >> 32)
        );
    }

    /**
     * @notice The zones from `zoneId` up to its root: `zoneId` first, the root last.
     * @param zoneId The zone.
     * @return path The zone ids.
     */
    function pathToRoot(uint32 zoneId) external view returns (uint32[] memory path) {
        uint256 word = _existing(zoneId);
        uint256 depth = uint8(word >> DEPTH_SHIFT);
        path = new uint32[](depth + 1);
        path[0] = zoneId;
        for (uint256 i = 1; i <= depth; ++i) {
            path[i] = _ancestor(word, i);
        }
    }

    /**
     * @notice Whether `zoneId` lies in the subtree of `ancestor` (a zone lies in its own subtree).
     * @param zoneId The zone (must exist).
     * @param ancestor The candidate ancestor.
     * @return True when `ancestor` is on the path from `zoneId` to its root.
     */
    function isInSubtree(uint32 zoneId, uint32 ancestor) public view returns (bool) {
        uint256 word = _existing(zoneId);
        if (zoneId == ancestor) return true;
        if (ancestor == 0) return false;
        uint256 depth = uint8(word >> DEPTH_SHIFT);
        for (uint256 i = 1; i <= depth; ++i) {
            if (_ancestor(word, i) == ancestor) return true;
        }
        return false;
    }

    /**
     * @notice The DSO responsible for a zone: the nearest zone on the path to the root (the zone
     * itself first) whose operator holds the DSO role now.
     * @param zoneId The zone.
     * @return dsoZone That zone (0 if none on the path).
     * @return dso Its operator (address(0) if none).
     */
    function dsoOf(uint32 zoneId) external view returns (uint32 dsoZone, address dso) {
        uint256 word = _existing(zoneId);
        uint256 depth = uint8(word >> DEPTH_SHIFT);
        for (uint256 i = 0; i <= depth; ++i) {
            uint32 z = i == 0 ? zoneId : _ancestor(word, i);
            address operator = _zoneInfo[z].operator;
            if (_hasMarketRole(operator, DSO_ROLE)) return (z, operator);
        }
        return (0, address(0));
    }

    /**
     * @notice What an asset mapping needs to know: whether `account` operates `zoneId` or one of
     * its ancestors, and the zone's asset power cap.
     * @param zoneId The zone (must exist).
     * @param account The account.
     * @return onPath True when `account` operates a zone on the path from `zoneId` to its root.
     * @return maxAssetPowerW The zone's asset power cap (W).
     */
    function operatorPathCheck(uint32 zoneId, address account)
        external
        view
        returns (bool onPath, uint32 maxAssetPowerW)
    {
        uint256 word = _existing(zoneId);
        ZoneInfo storage info = _zoneInfo[zoneId];
        maxAssetPowerW = info.maxAssetPowerW;
        if (info.operator == account) return (true, maxAssetPowerW);
        uint256 depth = uint8(word >> DEPTH_SHIFT);
        for (uint256 i = 1; i <= depth; ++i) {
            if (_zoneInfo[_ancestor(word, i)].operator == account) return (true, maxAssetPowerW);
        }
        return (false, maxAssetPowerW);
    }

    /**
     * @notice What a request's buyer kind follows: whether `account` operates `zoneId` or one of
     * its ancestors, and whether the nearest such zone is a root (a TSO area).
     * @param zoneId The zone (must exist).
     * @param account The account.
     * @return onPath True when `account` operates a zone on the path from `zoneId` to its root.
     * @return atRoot True when the nearest zone it operates on that path is the root.
     */
    function buyerPathCheck(uint32 zoneId, address account) external view returns (bool onPath, bool atRoot) {
        uint256 word = _existing(zoneId);
        uint256 depth = uint8(word >> DEPTH_SHIFT);
        if (_zoneInfo[zoneId].operator == account) return (true, depth == 0);
        for (uint256 i = 1; i <= depth; ++i) {
            if (_zoneInfo[_ancestor(word, i)].operator == account) return (true, i == depth);
        }
        return (false, false);
    }

    // ----------------------------------------------------------------------------------- lights

    /**
     * @notice Set the static light of a zone and direction; the zone's operator only, holding the
     * DSO role. It holds for every ISP without a dynamic light. Dynamic lights already published
     * are not rewritten: tightening a static light, republish the open days as well.
     * @param zoneId The zone (not a root).
     * @param direction UP (0) or DOWN (1).
     * @param colour GREEN (1), YELLOW (2) or RED (3).
     * @param capabilityW The capability in W: YELLOW only (0 otherwise), at most `MAX_CAPABILITY_W`.
     */
    function setStaticLight(uint32 zoneId, uint8 direction, uint8 colour, uint256 capabilityW)
        external
        onlyMarketRole(DSO_ROLE)
    {
        uint256 word = _lightZone(zoneId);
        _checkDirection(direction);
        if (colour == UNSET) revert GridZonesInvalidColour(colour);
        uint256 light = _pack(colour, capabilityW);
        uint256 shift = 32 * uint256(direction);
        _zoneWords[zoneId] = (word & ~(LIGHT_MASK << shift)) | (light << shift);
        emit StaticLightSet(zoneId, direction, colour, uint32(capabilityW));
    }

    /**
     * @notice Publish the dynamic lights of a whole market day (96 ISPs, both directions) for
     * many zones in one transaction; the caller must hold the DSO role and operate every zone.
     * Each entry is checked: capability on YELLOW only, never looser than the zone's static
     * light, and unchanged once its ISP's gate closure has passed. An UNSET entry (0) leaves the
     * static light in force.
     * @param marketId The market (its ISP must be `LIGHT_ISP_SECONDS`; its day must start on a whole hour).
     * @param dayStart The market day's first second.
     * @param zones The zones (not roots).
     * @param words 24 words per zone, zone by zone: word `24 * i + h` covers hour `h` of the day
     * for `zones[i]`; its lane `k` (bits `32k` to `32k + 31`) is ISP `h * 4 + k % 4` of the day,
     * UP for `k < 4`, DOWN for `k >= 4`.
     */
    function publishDay(uint32 marketId, uint64 dayStart, uint32[] calldata zones, uint256[] calldata words)
        external
        onlyMarketRole(DSO_ROLE)
    {
        uint256 lead = _checkMarketDay(marketId, dayStart);
        if (words.length != zones.length * WORDS_PER_DAY) {
            revert GridZonesWordCountMismatch(zones.length * WORDS_PER_DAY, words.length);
        }
        uint256 keyPrefix = uint256(marketId) << 128 | uint256(dayStart / HOUR);
        // the whole market day closes at once, `lead` before it starts: before that nothing is closed
        uint256 closesAt = block.timestamp + lead > dayStart ? dayStart + DAY : 0;
        for (uint256 i = 0; i < zones.length; ++i) {
            _publishZone(zones[i], words[i * WORDS_PER_DAY:(i + 1) * WORDS_PER_DAY], keyPrefix, closesAt, lead);
        }
        emit DayLightsPublished(marketId, dayStart, msg.sender, zones, words);
    }

    /**
     * @notice Set (or, with colour UNSET, clear) one dynamic light, before its ISP's gate closure;
     * the zone's operator only, holding the DSO role.
     * @param marketId The market (its ISP must be `LIGHT_ISP_SECONDS`).
     * @param zoneId The zone (not a root).
     * @param ispStart The ISP's start (a multiple of 900 s).
     * @param direction UP (0) or DOWN (1).
     * @param colour UNSET (0, clears), GREEN, YELLOW or RED; never looser than the static light.
     * @param capabilityW The capability in W (YELLOW only).
     */
    function setDynamicLight(
        uint32 marketId,
        uint32 zoneId,
        uint64 ispStart,
        uint8 direction,
        uint8 colour,
        uint256 capabilityW
    ) external onlyMarketRole(DSO_ROLE) {
        MarketRegistry.MarketParams memory params = markets.marketParams(marketId);
        if (params.ispSeconds != LIGHT_ISP_SECONDS) revert GridZonesUnsupportedIsp(marketId, params.ispSeconds);
        _checkAligned(ispStart);
        _checkOpen(marketId, zoneId, ispStart, params.gateClosureSeconds);
        uint256 zoneWord = _lightZone(zoneId);
        _checkDirection(direction);
        if (colour > RED) revert GridZonesInvalidColour(colour);
        uint256 light = colour == UNSET ? _packUnset(capabilityW) : _pack(colour, capabilityW);
        uint32 staticLight = uint32(zoneWord >> (32 * uint256(direction)));
        if (light != 0 && _looseness(uint32(light)) > _looseness(staticLight)) {
            revert GridZonesLooserThanStatic(zoneId, ispStart, direction, uint32(light), staticLight);
        }
        if (zoneWord & HAS_LIGHTS == 0) _zoneWords[zoneId] = zoneWord | HAS_LIGHTS;
        uint256 key = _key(marketId, zoneId, ispStart);
        uint256 shift = _laneShift(ispStart, direction);
        _lights[key] = (_lights[key] & ~(LIGHT_MASK << shift)) | (light << shift);
        emit DynamicLightSet(marketId, zoneId, ispStart, direction, colour, uint32(capabilityW));
    }

    /**
     * @notice The light in force for a zone, market ISP and direction: the dynamic light if one is
     * set, else the static light, else GREEN. Roots are always GREEN.
     * @param marketId The market.
     * @param zoneId The zone.
     * @param ispStart The ISP's start (a multiple of 900 s).
     * @param direction UP (0) or DOWN (1).
     * @return colour GREEN, YELLOW or RED.
     * @return capabilityW The capability (W) when YELLOW, else 0.
     */
    function effectiveLight(uint32 marketId, uint32 zoneId, uint64 ispStart, uint8 direction)
        external
        view
        returns (uint8 colour, uint32 capabilityW)
    {
        _checkDirection(direction);
        _checkAligned(ispStart);
        uint32 light = _effective(marketId, zoneId, _existing(zoneId), ispStart, direction);
        return (uint8(light >> 30), light & MAX_CAPABILITY_W);
    }

    /**
     * @notice The lights in force and the TSO headroom of a zone for `count` consecutive ISPs
     * (a market day in one call, for tools and explorers; see `effectiveLight` and `tsoHeadroom`).
     * @param marketId The market.
     * @param zoneId The zone.
     * @param firstIspStart The first ISP's start (a multiple of 900 s).
     * @param count How many ISPs.
     * @param direction UP (0) or DOWN (1).
     * @return lights The packed lights in force (`colour << 30 | capabilityW`; GREEN where none is set).
     * @return headroomW The TSO headroom per ISP: 0 when not allowed, `type(uint256).max` without limit.
     */
    function lightsOf(uint32 marketId, uint32 zoneId, uint64 firstIspStart, uint16 count, uint8 direction)
        external
        view
        returns (uint32[] memory lights, uint256[] memory headroomW)
    {
        _checkDirection(direction);
        _checkAligned(firstIspStart);
        uint256 word = _existing(zoneId);
        lights = new uint32[](count);
        headroomW = new uint256[](count);
        for (uint256 q = 0; q < count; ++q) {
            uint64 ispStart = firstIspStart + uint64(q) * LIGHT_ISP_SECONDS;
            lights[q] = _effective(marketId, zoneId, word, ispStart, direction);
            (, headroomW[q]) = this.tsoHeadroom(marketId, zoneId, ispStart, direction);
        }
    }

    /**
     * @notice The zones from `zoneId` up to its root, and the light in force in each of them, but
     * the root, for one ISP and direction (what a TSO award in `zoneId` must respect, rule 1).
     * @param marketId The market.
     * @param zoneId The zone of the asset or portfolio.
     * @param ispStart The ISP's start (dynamic lights are looked up in its 900 s light ISP).
     * @param direction UP (0) or DOWN (1).
     * @return path The zone ids, `zoneId` first, the root last.
     * @return lights The packed light in force (`colour << 30 | capabilityW`) of `path[i]`, for
     * every level but the root's.
     */
    function pathLights(uint32 marketId, uint32 zoneId, uint64 ispStart, uint8 direction)
        external
        view
        returns (uint32[] memory path, uint32[] memory lights)
    {
        _checkDirection(direction);
        uint64 lightIsp = ispStart - ispStart % LIGHT_ISP_SECONDS;
        uint256 word = _existing(zoneId);
        uint256 depth = uint8(word >> DEPTH_SHIFT);
        path = new uint32[](depth + 1);
        lights = new uint32[](depth);
        path[0] = zoneId;
        for (uint256 i = 0; i < depth; ++i) {
            if (i > 0) {
                path[i] = _ancestor(word, i);
                lights[i] = _effective(marketId, path[i], _zoneWords[path[i]], lightIsp, direction);
            } else {
                lights[0] = _effective(marketId, zoneId, word, lightIsp, direction);
            }
        }
        path[depth] = depth == 0 ? zoneId : _ancestor(word, depth);
    }

    /**
     * @notice The dynamic light as published for a zone, market ISP and direction (UNSET if none).
     * @param marketId The market.
     * @param zoneId The zone.
     * @param ispStart The ISP's start (a multiple of 900 s).
     * @param direction UP (0) or DOWN (1).
     * @return colour UNSET, GREEN, YELLOW or RED.
     * @return capabilityW The capability (W) when YELLOW, else 0.
     */
    function dynamicLight(uint32 marketId, uint32 zoneId, uint64 ispStart, uint8 direction)
        external
        view
        returns (uint8 colour, uint32 capabilityW)
    {
        _checkDirection(direction);
        _checkAligned(ispStart);
        _existing(zoneId);
        uint32 light = uint32(_lights[_key(marketId, zoneId, ispStart)] >> _laneShift(ispStart, direction));
        return (uint8(light >> 30), light & MAX_CAPABILITY_W);
    }

    /**
     * @notice The stored word of one market, zone and hour (the four ISPs of the hour, both
     * directions, lanes as in `publishDay`); 0 where nothing was published.
     * @param marketId The market.
     * @param zoneId The zone.
     * @param hourStart The hour's start (a multiple of 3600 s).
     * @return The packed word.
     */
    function lightsWord(uint32 marketId, uint32 zoneId, uint64 hourStart) external view returns (uint256) {
        if (hourStart % HOUR != 0) revert GridZonesNotAligned(hourStart, uint32(HOUR));
        return _lights[_key(marketId, zoneId, hourStart)];
    }

    /**
     * @notice What the TSO may use of flexibility in `zoneId` for a market ISP and direction,
     * over the whole path to the root (rule 1): not at all if a zone on the path is RED, else up
     * to the smallest YELLOW capability on the path, else without limit.
     * @param marketId The market.
     * @param zoneId The zone of the asset or portfolio.
     * @param ispStart The ISP's start (a multiple of 900 s).
     * @param direction UP (0) or DOWN (1).
     * @return allowed False when a zone on the path is RED.
     * @return capabilityW The headroom in W: 0 when not allowed, `type(uint256).max` when all GREEN.
     */
    function tsoHeadroom(uint32 marketId, uint32 zoneId, uint64 ispStart, uint8 direction)
        external
        view
        returns (bool allowed, uint256 capabilityW)
    {
        if (direction > DOWN) revert GridZonesInvalidDirection(direction);
        if (ispStart % LIGHT_ISP_SECONDS != 0) revert GridZonesNotAligned(ispStart, LIGHT_ISP_SECONDS);
        // Every slot read here is `_zoneWords[z]` or `_lights[key]`, computed in the scratch space
        // as Solidity computes them; this view is what every TSO award check pays for.
        uint256 leafWord;
        assembly ("memory-safe") {
            mstore(0x00, zoneId)
            mstore(0x20, _zoneWords.slot)
            leafWord := sload(keccak256(0x00, 0x40))
        }
        if (leafWord & EXISTS == 0) revert GridZonesUnknownZone(zoneId);
        // Levels 0 .. depth - 1: the zone and its ancestors (listed in the zone's own word), the
        // root excluded. A level's light word is read only if that zone ever had dynamic lights
        // (its HAS_LIGHTS bit), its zone word only where it has no dynamic entry for this ISP. The
        // leaf's bit also picks the order for the ancestors: if the leaf has dynamic lights, its
        // ancestors likely have too, and each is read light word first (one cold slot per level
        // when they publish); if not, zone word first (one cold slot per level when nobody does).
        assembly ("memory-safe") {
            let depth := and(shr(DEPTH_SHIFT, leafWord), 0xff)
            let laneShift := shl(5, add(shl(2, direction), div(mod(ispStart, HOUR), LIGHT_ISP_SECONDS)))
            let staticShift := shl(5, direction)
            let keyPrefix := or(shl(128, marketId), div(ispStart, HOUR))
            let lightsFirst := and(leafWord, HAS_LIGHTS)
            let z := zoneId
            allowed := 1
            capabilityW := not(0)
            for { let level := 0 } lt(level, depth) { level := add(level, 1) } {
                let light := 0
                let word := leafWord
                let isAncestor := gt(level, 0)
                let zoneWordFirst := and(isAncestor, iszero(lightsFirst))
                if zoneWordFirst {
                    mstore(0x00, z)
                    mstore(0x20, _zoneWords.slot)
                    word := sload(keccak256(0x00, 0x40))
                }
                // the leaf's word, or the ancestor's own (zone word first): its HAS_LIGHTS bit;
                // light word first: the leaf's bit, set
                if and(word, HAS_LIGHTS) {
                    mstore(0x00, or(keyPrefix, shl(96, z)))
                    mstore(0x20, _lights.slot)
                    light := and(shr(laneShift, sload(keccak256(0x00, 0x40))), LIGHT_MASK)
                }
                if iszero(light) {
                    if and(isAncestor, iszero(zoneWordFirst)) {
                        mstore(0x00, z)
                        mstore(0x20, _zoneWords.slot)
                        word := sload(keccak256(0x00, 0x40))
                    }
                    light := and(shr(staticShift, word), LIGHT_MASK)
                }
                let colour := shr(30, light)
                if eq(colour, RED) {
                    allowed := 0
                    capabilityW := 0
                    break
                }
                if eq(colour, YELLOW) {
                    let capability := and(light, MAX_CAPABILITY_W)
                    if lt(capability, capabilityW) { capabilityW := capability }
                }
                z := and(shr(add(ANCESTORS_SHIFT, mul(24, level)), leafWord), 0xffffff)
            }
        }
    }

    /**
     * @notice Pack a colour and a capability the way lights are stored and published.
     * @param colour UNSET, GREEN, YELLOW or RED.
     * @param capabilityW The capability in W (YELLOW only).
     * @return The 32-bit light.
     */
    function packLight(uint8 colour, uint256 capabilityW) external pure returns (uint32) {
        if (colour > RED) revert GridZonesInvalidColour(colour);
        return uint32(colour == UNSET ? _packUnset(capabilityW) : _pack(colour, capabilityW));
    }

    // -------------------------------------------------------------------------------- internals

    /// @dev One zone's day: checks its operator once, reads its static lights once, then checks
    /// and stores its 24 words. Hours whose first ISP is past its gate closure are compared with
    /// what is stored; the others (all of them when a day is published ahead) are stored without
    /// reading back, in a loop that does only the lane-wise check, the slot's hash and the SSTORE.
    function _publishZone(uint32 zoneId, uint256[] calldata words, uint256 keyPrefix, uint256 closesAt, uint256 lead)
        private
    {
        uint256 zoneWord = _lightZone(zoneId);
        if (zoneWord & HAS_LIGHTS == 0) _zoneWords[zoneId] = zoneWord | HAS_LIGHTS;
        (uint256 forbidden, uint256 bound) = _limits(uint32(zoneWord), uint32(zoneWord >> 32));
        uint256 firstKey = keyPrefix | uint256(zoneId) << 96;
        uint256 firstHourStart = uint64(keyPrefix) * HOUR;
        uint256 closedHours;
        if (closesAt > firstHourStart) {
            closedHours = (closesAt - firstHourStart + HOUR - 1) / HOUR;
            if (closedHours > WORDS_PER_DAY) closedHours = WORDS_PER_DAY;
        }
        for (uint256 h = 0; h < closedHours; ++h) {
            uint256 word = words[h];
            uint256 hourStart = firstHourStart + h * HOUR;
            if (!_wordOk(word, forbidden, bound)) _explain(zoneId, word, zoneWord, hourStart);
            _checkClosed(zoneId, word, _lights[firstKey + h], hourStart, closesAt, lead);
            _lights[firstKey + h] = word;
        }
        uint256 badHour; // 1 + the hour of the first word that fails the check
        assembly ("memory-safe") {
            mstore(0x20, _lights.slot)
            let key := add(firstKey, closedHours)
            let lastKey := add(firstKey, WORDS_PER_DAY)
            for { let at := add(words.offset, shl(5, closedHours)) } lt(key, lastKey) {
                key := add(key, 1)
                at := add(at, 0x20)
            } {
                let word := calldataload(at)
                let high := shr(1, word)
                let capabilities := and(word, LANES_CAPABILITY)
                let yellow := and(and(high, not(word)), LANES_BIT30)
                let fail :=
                    or(
                        or(
                            and(capabilities, not(mul(shr(30, yellow), MAX_CAPABILITY_W))),
                            and(or(and(and(word, not(high)), LANES_BIT30), shl(1, yellow)), forbidden)
                        ),
                        and(not(sub(bound, capabilities)), LANES_BIT31)
                    )
                if fail {
                    badHour := add(sub(key, firstKey), 1)
                    break
                }
                mstore(0x00, key)
                sstore(keccak256(0x00, 0x40), word)
            }
        }
        if (badHour != 0) _explain(zoneId, words[badHour - 1], zoneWord, firstHourStart + (badHour - 1) * HOUR);
    }

    /// @dev The per-lane bounds of a zone's words, from its static lights: `forbidden` has bit 30
    /// of a lane set where GREEN is forbidden and bit 31 where YELLOW is; `bound` has bit 31 set
    /// in every lane and, below it, the largest YELLOW capability allowed there.
    function _limits(uint32 staticUp, uint32 staticDown) private pure returns (uint256 forbidden, uint256 bound) {
        bound = LANES_BIT31;
        for (uint256 d = 0; d < 2; ++d) {
            uint32 light = d == 0 ? staticUp : staticDown;
            uint256 lanes = d == 0 ? UP_LANES : ~UP_LANES;
            uint256 colour = light >> 30;
            if (colour == YELLOW) {
                forbidden |= LANES_BIT30 & lanes;
                bound |= (uint256(light & MAX_CAPABILITY_W) * LANES_ONE) & lanes;
            } else if (colour == RED) {
                forbidden |= (LANES_BIT30 | LANES_BIT31) & lanes;
            } else {
                bound |= LANES_CAPABILITY & lanes;
            }
        }
    }

    /// @dev All 8 entries of a word checked at once, lane-wise: capability on YELLOW only, no
    /// GREEN or YELLOW where the static light forbids it, YELLOW capabilities within the bound.
    /// (The loop in `_publishZone` inlines the same arithmetic.)
    function _wordOk(uint256 word, uint256 forbidden, uint256 bound) private pure returns (bool) {
        unchecked {
            uint256 high = word >> 1; // each lane's colour high bit, moved to bit 30
            uint256 green = word & ~high & LANES_BIT30;
            uint256 yellow = high & ~word & LANES_BIT30;
            uint256 capabilities = word & LANES_CAPABILITY;
            uint256 bad = (capabilities & ~((yellow >> 30) * MAX_CAPABILITY_W)) | ((green | yellow << 1) & forbidden);
            // bound lane = 2^31 + b, capability c < 2^30: bit 31 survives iff c <= b, no borrow between lanes
            return bad == 0 && ((bound - capabilities) & LANES_BIT31) == LANES_BIT31;
        }
    }

    /// @dev Names the first bad entry of a word that failed `_wordOk`, and reverts.
    function _explain(uint32 zoneId, uint256 word, uint256 zoneWord, uint256 hourStart) private pure {
        for (uint256 lane = 0; lane < 8; ++lane) {
            uint32 light = uint32(word >> (32 * lane));
            uint8 colour = uint8(light >> 30);
            uint32 capability = light & MAX_CAPABILITY_W;
            if (colour != YELLOW && capability != 0) revert GridZonesCapabilityNotAllowed(colour, capability);
            if (colour == UNSET) continue;
            uint8 direction = uint8(lane / 4);
            uint32 staticLight = uint32(zoneWord >> (32 * uint256(direction)));
            if (_looseness(light) > _looseness(staticLight)) {
                revert GridZonesLooserThanStatic(
                    zoneId, uint64(hourStart + (lane % 4) * LIGHT_ISP_SECONDS), direction, light, staticLight
                );
            }
        }
        revert GridZonesInvalidWord(zoneId, word);
    }

    /// @dev Entries of ISPs past their gate closure (start < `closesAt`) must stay as stored.
    function _checkClosed(
        uint32 zoneId,
        uint256 word,
        uint256 stored,
        uint256 hourStart,
        uint256 closesAt,
        uint256 lead
    ) private pure {
        uint256 changed = word ^ stored;
        if (changed == 0) return;
        for (uint256 k = 0; k < 4; ++k) {
            uint256 ispStart = hourStart + k * LIGHT_ISP_SECONDS;
            if (ispStart >= closesAt) return;
            uint256 lanes = (LIGHT_MASK << (32 * k)) | (LIGHT_MASK << (32 * k + 128));
            if (changed & lanes != 0) {
                uint256 day = closesAt - DAY; // closed days only reach here
                revert GridZonesAfterGateClosure(zoneId, uint64(ispStart), uint64(day > lead ? day - lead : 0));
            }
        }
    }

    /// @dev Reverts once the market day of `ispStart` is past its gate closure.
    function _checkOpen(uint32 marketId, uint32 zoneId, uint64 ispStart, uint64 lead) private view {
        uint64 day = markets.dayStart(marketId, ispStart);
        if (block.timestamp + lead > day) revert GridZonesAfterGateClosure(zoneId, ispStart, day > lead ? day - lead : 0);
    }

    /// @dev Checks the market and the day; returns the gate closure lead.
    function _checkMarketDay(uint32 marketId, uint64 dayStart) private view returns (uint256 lead) {
        MarketRegistry.MarketParams memory params = markets.marketParams(marketId);
        if (params.ispSeconds != LIGHT_ISP_SECONDS) revert GridZonesUnsupportedIsp(marketId, params.ispSeconds);
        uint256 offset = params.dayOffsetSeconds;
        if (dayStart < offset || (dayStart - offset) % DAY != 0 || dayStart % HOUR != 0) {
            revert GridZonesNotDayStart(marketId, dayStart);
        }
        return params.gateClosureSeconds;
    }

    /// @dev A zone that can carry lights, operated by the caller; returns its hot word.
    function _lightZone(uint32 zoneId) private view returns (uint256 word) {
        word = _existing(zoneId);
        if (uint8(word >> DEPTH_SHIFT) == 0) revert GridZonesRootHasNoLights(zoneId);
        if (_zoneInfo[zoneId].operator != msg.sender) revert GridZonesNotOperator(zoneId, msg.sender);
    }

    /// @dev The dynamic light if set, else the static one, else GREEN (packed).
    function _effective(uint32 marketId, uint32 zoneId, uint256 word, uint64 ispStart, uint8 direction)
        private
        view
        returns (uint32 light)
    {
        if (word & HAS_LIGHTS != 0) {
            light = uint32(_lights[_key(marketId, zoneId, ispStart)] >> _laneShift(ispStart, direction));
        }
        if (light == 0) light = uint32(word >> (32 * uint256(direction)));
        if (light == 0) light = uint32(GREEN) << 30;
    }

    function _existing(uint32 zoneId) private view returns (uint256 word) {
        word = _zoneWords[zoneId];
        if (word & EXISTS == 0) revert GridZonesUnknownZone(zoneId);
    }

    function _checkOperatorRole(address account) private view {
        if (!_hasMarketRole(account, DSO_ROLE) && !_hasMarketRole(account, TSO_ROLE)) {
            revert GridZonesOperatorWithoutRole(account);
        }
    }

    function _checkDirection(uint8 direction) private pure {
        if (direction > DOWN) revert GridZonesInvalidDirection(direction);
    }

    function _checkAligned(uint64 ispStart) private pure {
        if (ispStart % LIGHT_ISP_SECONDS != 0) revert GridZonesNotAligned(ispStart, LIGHT_ISP_SECONDS);
    }

    /// @dev `colour` is GREEN, YELLOW or RED.
    function _pack(uint8 colour, uint256 capabilityW) private pure returns (uint256) {
        if (colour > RED) revert GridZonesInvalidColour(colour);
        if (capabilityW > MAX_CAPABILITY_W) revert GridZonesCapabilityOverflow(capabilityW);
        if (capabilityW != 0 && colour != YELLOW) revert GridZonesCapabilityNotAllowed(colour, capabilityW);
        return uint256(colour) << 30 | capabilityW;
    }

    function _packUnset(uint256 capabilityW) private pure returns (uint256) {
        if (capabilityW != 0) revert GridZonesCapabilityNotAllowed(UNSET, capabilityW);
        return 0;
    }

    function _ancestor(uint256 word, uint256 i) private pure returns (uint32) {
        return uint24(word >> (ANCESTORS_SHIFT + 24 * (i - 1)));
    }

    function _key(uint32 marketId, uint32 zoneId, uint64 time) private pure returns (uint256) {
        return uint256(marketId) << 128 | uint256(zoneId) << 96 | uint256(time / HOUR);
    }

    function _laneShift(uint64 ispStart, uint8 direction) private pure returns (uint256) {
        return 32 * (4 * uint256(direction) + (ispStart % HOUR) / LIGHT_ISP_SECONDS);
    }

    /// @dev The order of tightness: RED (0) < YELLOW (1 + capability) < GREEN or unset (max).
    function _looseness(uint32 light) private pure returns (uint256) {
        uint256 colour = light >> 30;
        if (colour == RED) return 0;
        if (colour == YELLOW) return 1 + (light & MAX_CAPABILITY_W);
        return type(uint256).max;
    }
}
