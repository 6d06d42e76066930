// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {RoleGated} from "../access/RoleGated.sol";
import {IRoleRegistry} from "../access/IRoleRegistry.sol";
import {MarketRegistry} from "../market/MarketRegistry.sol";

/**
 * @title GridRegistry
 * @notice The grid's zones (TSO area > DSO perimeter > substation > feeder) and their traffic
 * lights (DESIGN.md rule 1): a static light per zone and direction, and dynamic lights per market
 * ISP that may only be tighter, published by the zone's operator until the ISP's gate closure.
 *
 * @dev Colours: 0 unset, 1 GREEN (no restriction), 2 YELLOW (the TSO may use flexibility up to a
 * capability in W, summed over its awards), 3 RED (the TSO may use none). A light is packed in 32
 * bits: colour in the top 2 bits, capability in W in the low 30 (so at most 1,073,741,823 W).
 * A zone's record is one slot: parent, operator and both static lights. Dynamic lights are
 * stored 8 ISPs to a word, per market, zone and direction, so a market day of 96 ISPs is 12
 * words per zone and direction.
 */
contract GridRegistry is RoleGated {
    uint8 public constant UP = 0;
    uint8 public constant DOWN = 1;
    uint8 public constant UNSET = 0;
    uint8 public constant GREEN = 1;
    uint8 public constant YELLOW = 2;
    uint8 public constant RED = 3;
    /// @notice Zones below a root are at most this many levels deep (root = depth 0).
    uint8 public constant MAX_DEPTH = 7;
    uint32 internal constant CAPABILITY_MASK = (1 << 30) - 1;

    bytes32 internal constant TSO_ROLE = keccak256("TSO");
    bytes32 internal constant DSO_ROLE = keccak256("DSO");

    /// @dev One slot: read once per zone on every path walk.
    struct Zone {
        uint32 parent;
        address operator;
        uint32 staticUp;
        uint32 staticDown;
    }

    /// @dev Read only when zones are added or assets mapped.
    struct ZoneInfo {
        uint8 depth;
        uint32 maxAssetPowerW;
    }

    /// @notice The markets whose ISP length and gate closure the dynamic lights follow.
    MarketRegistry public immutable markets;
    /// @notice How many zones exist; ids run from 1 to this.
    uint32 public zoneCount;
    mapping(uint32 zoneId => Zone) private _zones;
    mapping(uint32 zoneId => ZoneInfo) private _zoneInfo;
    mapping(bytes32 key => uint256 word) private _dynamic;

    error GridUnknownZone(uint32 zoneId);
    error GridNotZoneOperator(uint32 zoneId, address account);
    error GridOperatorWithoutRole(address operator);
    error GridTooDeep(uint32 parent, uint8 depth);
    error GridInvalidDirection(uint8 direction);
    error GridInvalidColour(uint8 colour);
    error GridCapabilityNotAllowed(uint8 colour, uint32 capabilityW);
    error GridCapabilityTooLarge(uint256 capabilityW);
    error GridLooserThanStatic(uint32 zoneId, uint8 direction, uint64 ispStart, uint32 light, uint32 staticLight);
    error GridStaticLooserThanDynamic(uint32 zoneId, uint8 direction);
    error GridAfterGateClosure(uint32 zoneId, uint64 ispStart, uint64 gateClosure);
    error GridNotAligned(uint64 ispStart, uint32 ispSeconds);
    error GridBadLength(uint256 expected, uint256 actual);

    event ZoneAdded(uint32 indexed zoneId, uint32 indexed parent, address indexed operator, uint8 depth, uint32 maxAssetPowerW);
    event ZoneOperatorChanged(uint32 indexed zoneId, address indexed operator);
    event StaticLightSet(uint32 indexed zoneId, uint8 direction, uint32 light);
    /// @notice Dynamic lights were published: `words[z * 2 * wordCount + d * wordCount + w]` holds
    /// ISPs `8w .. 8w+7` (counted from `firstIspStart`) of `zones[z]` in direction `d`.
    event DynamicLightsPublished(
        uint32 indexed marketId, uint64 firstIspStart, uint32 wordCount, uint32[] zones, uint256[] words, address publisher
    );

    /**
     * @param registry The RoleRegistry that says who is a TSO or a DSO.
     * @param marketRegistry The MarketRegistry of the markets the lights belong to.
     */
    constructor(IRoleRegistry registry, MarketRegistry marketRegistry) RoleGated(registry) {
        markets = marketRegistry;
    }

    // ---------------------------------------------------------------- zones

    /**
     * @notice Add a zone. A root (parent 0) is added by a TSO, who operates it; any other zone by
     * the operator of its parent. The new zone's operator must hold the DSO or TSO role.
     * @param parent The parent zone, or 0 for a TSO area.
     * @param operator Who operates the new zone (publishes its lights, maps its assets).
     * @param maxAssetPowerW The most power (W) a single asset in this zone may be prequalified for.
     * @return zoneId The new zone's id.
     */
    function addZone(uint32 parent, address operator, uint32 maxAssetPowerW) external returns (uint32 zoneId) {
        uint8 depth;
        if (parent == 0) {
            _checkMarketRole(msg.sender, TSO_ROLE);
            if (operator != msg.sender) revert GridNotZoneOperator(0, operator);
        } else {
            Zone storage p = _zone(parent);
            if (p.operator != msg.sender) revert GridNotZoneOperator(parent, msg.sender);
            depth = _zoneInfo[parent].depth + 1;
            if (depth > MAX_DEPTH) revert GridTooDeep(parent, depth);
        }
        if (!_hasMarketRole(operator, DSO_ROLE) && !_hasMarketRole(operator, TSO_ROLE)) {
            revert GridOperatorWithoutRole(operator);
        }
        zoneId = ++zoneCount;
        _zones[zoneId] = Zone(parent, operator, 0, 0);
        _zoneInfo[zoneId] = ZoneInfo(depth, maxAssetPowerW);
        emit ZoneAdded(zoneId, parent, operator, depth, maxAssetPowerW);
    }

    /**
     * @notice The zone record: parent, operator, static lights (packed), depth and asset power cap.
     * @param zoneId The zone.
     * @return parent The parent zone (0 for a root).
     * @return operator The operator.
     * @return staticUp The static light upwards (packed).
     * @return staticDown The static light downwards (packed).
     * @return depth The depth (0 for a root).
     * @return maxAssetPowerW The asset power cap.
     */
    function zone(uint32 zoneId)
        external
        view
        returns (uint32 parent, address operator, uint32 staticUp, uint32 staticDown, uint8 depth, uint32 maxAssetPowerW)
    {
        Zone storage z = _zone(zoneId);
        ZoneInfo storage info = _zoneInfo[zoneId];
        return (z.parent, z.operator, z.staticUp, z.staticDown, info.depth, info.maxAssetPowerW);
    }

    /**
     * @notice The zones from `zoneId` up to its root, `zoneId` first.
     * @param zoneId The zone.
     * @return path The zone ids.
     */
    function pathToRoot(uint32 zoneId) external view returns (uint32[] memory path) {
        path = new uint32[](uint256(_zoneInfo[zoneId].depth) + 1);
        uint32 current = zoneId;
        for (uint256 i = 0; i < path.length; ++i) {
            path[i] = current;
            current = _zone(current).parent;
        }
    }

    /**
     * @notice Whether `zoneId` lies in the subtree of `ancestor` (a zone is in its own subtree).
     * @param zoneId The zone.
     * @param ancestor The candidate ancestor.
     * @return True when `ancestor` is on the path from `zoneId` to the root.
     */
    function isInSubtree(uint32 zoneId, uint32 ancestor) public view returns (bool) {
        uint32 current = zoneId;
        _zone(current);
        while (current != 0) {
            if (current == ancestor) return true;
            current = _zones[current].parent;
        }
        return false;
    }

    /**
     * @notice Whether `account` operates `zoneId` or one of its ancestors.
     * @param zoneId The zone.
     * @param account The account.
     * @return True when `account` is an operator on the zone's path to the root.
     */
    function operatesPathOf(uint32 zoneId, address account) external view returns (bool) {
        uint32 current = zoneId;
        _zone(current);
        while (current != 0) {
            Zone storage z = _zones[current];
            if (z.operator == account) return true;
            current = z.parent;
        }
        return false;
    }

    /**
     * @notice The most power one asset in `zoneId` may be prequalified for.
     * @param zoneId The zone.
     * @return The cap in W.
     */
    function maxAssetPower(uint32 zoneId) external view returns (uint32) {
        _zone(zoneId);
        return _zoneInfo[zoneId].maxAssetPowerW;
    }

    // ---------------------------------------------------------------- lights

    /**
     * @notice Set the static light of a zone and direction (its operator only). It holds wherever
     * no dynamic light is published; dynamic lights are held to it when they are published.
     * @param zoneId The zone.
     * @param direction UP (0) or DOWN (1).
     * @param colour GREEN, YELLOW or RED.
     * @param capabilityW The capability in W (YELLOW only; 0 otherwise).
     */
    function setStaticLight(uint32 zoneId, uint8 direction, uint8 colour, uint32 capabilityW) external {
        Zone storage z = _zone(zoneId);
        if (z.operator != msg.sender) revert GridNotZoneOperator(zoneId, msg.sender);
        uint32 light = packLight(colour, capabilityW);
        if (colour == UNSET) revert GridInvalidColour(colour);
        if (direction == UP) z.staticUp = light;
        else if (direction == DOWN) z.staticDown = light;
        else revert GridInvalidDirection(direction);
        emit StaticLightSet(zoneId, direction, light);
    }

    /**
     * @notice Publish dynamic lights for many zones, both directions and `wordCount * 8` ISPs
     * from `firstIspStart` (a market day: 12 words of 8 ISPs). Each entry must be tighter than or
     * equal to the zone's static light, and an entry that changes must still be before its
     * ISP's gate closure. The caller must operate every zone listed.
     * @param marketId The market whose ISPs these are.
     * @param firstIspStart The first ISP's start; its ISP index must be a multiple of 8.
     * @param wordCount Words per zone and direction.
     * @param zones The zones.
     * @param words `zones.length * 2 * wordCount` packed words, zone by zone, UP then DOWN.
     */
    function publishLights(
        uint32 marketId,
        uint64 firstIspStart,
        uint32 wordCount,
        uint32[] calldata zones,
        uint256[] calldata words
    ) external {
        MarketRegistry.MarketParams memory params = markets.marketParams(marketId);
        Publication memory pub = Publication(marketId, 0, params.ispSeconds, params.gateClosureSeconds, false);
        if (firstIspStart % (pub.isp * 8) != 0) revert GridNotAligned(firstIspStart, params.ispSeconds);
        if (words.length != zones.length * 2 * wordCount) revert GridBadLength(zones.length * 2 * wordCount, words.length);
        pub.firstWord = firstIspStart / pub.isp / 8;
        // Published ahead of the first ISP's gate closure, every entry is open: the lean path.
        pub.allOpen = block.timestamp + pub.lead <= firstIspStart;
        uint256 span = 2 * uint256(wordCount);
        for (uint256 i = 0; i < zones.length; ++i) {
            _publishZone(pub, zones[i], words[i * span:(i + 1) * span]);
        }
        emit DynamicLightsPublished(marketId, firstIspStart, wordCount, zones, words, msg.sender);
    }

    /**
     * @notice The light in force for a zone, ISP and direction: the dynamic one if published
     * (bounded by the static one, should that have been tightened since), else the static one,
     * else GREEN.
     * @param marketId The market.
     * @param zoneId The zone.
     * @param ispStart The ISP's start.
     * @param direction UP or DOWN.
     * @return colour GREEN, YELLOW or RED.
     * @return capabilityW The capability (YELLOW only).
     */
    function effectiveLight(uint32 marketId, uint32 zoneId, uint64 ispStart, uint8 direction)
        public
        view
        returns (uint8 colour, uint32 capabilityW)
    {
        uint32 light = _effective(marketId, zoneId, _zone(zoneId), _ispIndex(marketId, ispStart), direction);
        return (uint8(light >> 30), light & CAPABILITY_MASK);
    }

    /**
     * @notice The lights in force and the TSO headroom for `count` consecutive ISPs (a day in one
     * call, for tools); see `effectiveLight` and `tsoHeadroom`.
     * @param marketId The market.
     * @param zoneId The zone.
     * @param firstIspStart The first ISP's start.
     * @param count How many ISPs.
     * @param direction UP or DOWN.
     * @return lights The packed lights in force (colour in the top 2 bits, capability below).
     * @return headroomW The TSO headroom per ISP (`type(uint256).max` without limit, 0 when RED).
     */
    function lightsOf(uint32 marketId, uint32 zoneId, uint64 firstIspStart, uint16 count, uint8 direction)
        external
        view
        returns (uint32[] memory lights, uint256[] memory headroomW)
    {
        uint64 first = _ispIndex(marketId, firstIspStart);
        Zone storage z = _zone(zoneId);
        lights = new uint32[](count);
        headroomW = new uint256[](count);
        for (uint256 q = 0; q < count; ++q) {
            lights[q] = _effective(marketId, zoneId, z, first + uint64(q), direction);
            headroomW[q] = _headroom(marketId, zoneId, first + uint64(q), direction);
        }
    }

    /**
     * @notice What the TSO may use of flexibility in `zoneId` for an ISP and direction, over the
     * whole path to the root: not at all if any zone on it is RED, else up to the smallest YELLOW
     * capability, else without limit (`type(uint256).max`).
     * @param marketId The market.
     * @param zoneId The asset's (or offer's) zone.
     * @param ispStart The ISP's start.
     * @param direction UP or DOWN.
     * @return allowed False when a zone on the path is RED.
     * @return capabilityW The headroom in W.
     */
    function tsoHeadroom(uint32 marketId, uint32 zoneId, uint64 ispStart, uint8 direction)
        external
        view
        returns (bool allowed, uint256 capabilityW)
    {
        _zone(zoneId);
        uint256 headroom = _headroom(marketId, zoneId, _ispIndex(marketId, ispStart), direction);
        return (headroom != 0 || !_redOnPath(marketId, zoneId, _ispIndex(marketId, ispStart), direction), headroom);
    }

    /**
     * @notice The stored dynamic lights of 8 ISPs (word `wordIndex` = ISP index / 8), as published.
     * @param marketId The market.
     * @param zoneId The zone.
     * @param direction UP or DOWN.
     * @param wordIndex The ISP index (ISP start / ISP length) divided by 8.
     * @return The packed word (0 where nothing is published).
     */
    function dynamicWord(uint32 marketId, uint32 zoneId, uint8 direction, uint64 wordIndex)
        external
        view
        returns (uint256)
    {
        return _dynamic[_key(marketId, zoneId, direction, wordIndex)];
    }

    /**
     * @notice Pack a colour and a capability as the contract stores them.
     * @param colour The colour (0-3).
     * @param capabilityW The capability in W (YELLOW only).
     * @return The packed light.
     */
    function packLight(uint8 colour, uint32 capabilityW) public pure returns (uint32) {
        if (colour > RED) revert GridInvalidColour(colour);
        if (capabilityW > CAPABILITY_MASK) revert GridCapabilityTooLarge(capabilityW);
        if (capabilityW != 0 && colour != YELLOW) revert GridCapabilityNotAllowed(colour, capabilityW);
        return (uint32(colour) << 30) | capabilityW;
    }

    // ---------------------------------------------------------------- internals

    struct Publication {
        uint32 marketId;
        uint64 firstWord;
        uint64 isp;
        uint64 lead;
        bool allOpen;
    }

    /// @dev One zone's words: UP then DOWN, half each.
    function _publishZone(Publication memory pub, uint32 zoneId, uint256[] calldata words) internal {
        Zone storage z = _zone(zoneId);
        if (z.operator != msg.sender) revert GridNotZoneOperator(zoneId, msg.sender);
        uint256 half = words.length / 2;
        for (uint8 d = 0; d < 2; ++d) {
            uint32 staticLight = d == UP ? z.staticUp : z.staticDown;
            uint256[] calldata part = words[d * half:(d + 1) * half];
            if (pub.allOpen) {
                _storeOpenWords(pub, zoneId, d, staticLight, part);
            } else {
                _storeWords(pub, zoneId, d, staticLight, part);
            }
        }
    }

    function _storeWords(
        Publication memory pub,
        uint32 zoneId,
        uint8 direction,
        uint32 staticLight,
        uint256[] calldata words
    ) internal {
        for (uint256 w = 0; w < words.length; ++w) {
            _publishWord(pub, zoneId, direction, staticLight, pub.firstWord + uint64(w), words[w]);
        }
    }

    function _publishWord(
        Publication memory pub,
        uint32 zoneId,
        uint8 direction,
        uint32 staticLight,
        uint64 wordIndex,
        uint256 word
    ) internal {
        uint64 wordStart = wordIndex * 8 * pub.isp;
        bytes32 key = _key(pub.marketId, zoneId, direction, wordIndex);
        // While every ISP of the word is before its gate closure, nothing needs reading back;
        // otherwise the closed entries must keep their stored value.
        if (block.timestamp + pub.lead > wordStart) {
            _checkClosed(zoneId, word, _dynamic[key], wordStart, pub.isp, pub.lead);
        }
        _checkWord(zoneId, direction, word, staticLight, wordStart, pub.isp);
        _dynamic[key] = word;
    }

    function _ispIndex(uint32 marketId, uint64 ispStart) internal view returns (uint64) {
        uint32 isp = markets.marketParams(marketId).ispSeconds;
        if (ispStart % isp != 0) revert GridNotAligned(ispStart, isp);
        return ispStart / isp;
    }

    function _zone(uint32 zoneId) internal view returns (Zone storage z) {
        z = _zones[zoneId];
        if (z.operator == address(0)) revert GridUnknownZone(zoneId);
    }

    function _key(uint32 marketId, uint32 zoneId, uint8 direction, uint64 wordIndex) internal pure returns (bytes32 k) {
        assembly ("memory-safe") {
            mstore(0x00, or(or(shl(96, marketId), shl(64, zoneId)), or(shl(56, direction), wordIndex)))
            k := keccak256(0x00, 0x20)
        }
    }

    /// @dev The tighter of the dynamic light (if published) and the static one (GREEN if unset):
    /// a dynamic light is never looser than the static one when published, and a static light
    /// tightened later still binds.
    function _effective(uint32 marketId, uint32 zoneId, Zone storage z, uint64 ispIndex, uint8 direction)
        internal
        view
        returns (uint32 light)
    {
        light = direction == UP ? z.staticUp : z.staticDown;
        if (light >> 30 == UNSET) light = uint32(GREEN) << 30;
        uint32 dynamic = uint32(_dynamic[_key(marketId, zoneId, direction, ispIndex / 8)] >> (32 * (ispIndex % 8)));
        if (dynamic >> 30 != UNSET && _capacity(dynamic) < _capacity(light)) light = dynamic;
    }

    /// @dev The TSO headroom over the path: 0 under a RED (or a YELLOW of 0 W), else the smallest
    /// YELLOW capability, else type(uint256).max.
    function _headroom(uint32 marketId, uint32 zoneId, uint64 ispIndex, uint8 direction)
        internal
        view
        returns (uint256 capabilityW)
    {
        capabilityW = type(uint256).max;
        uint32 current = zoneId;
        while (current != 0) {
            Zone storage z = _zones[current];
            uint256 capacity = _capacity(_effective(marketId, current, z, ispIndex, direction));
            if (capacity < capabilityW) capabilityW = capacity;
            if (capabilityW == 0) return 0;
            current = z.parent;
        }
    }

    function _redOnPath(uint32 marketId, uint32 zoneId, uint64 ispIndex, uint8 direction) internal view returns (bool) {
        uint32 current = zoneId;
        while (current != 0) {
            Zone storage z = _zones[current];
            if (_effective(marketId, current, z, ispIndex, direction) >> 30 == RED) return true;
            current = z.parent;
        }
        return false;
    }

    /// @dev Capacity order: RED (0) < YELLOW (its capability) < GREEN (unlimited).
    function _capacity(uint32 light) internal pure returns (uint256) {
        uint32 colour = light >> 30;
        if (colour == RED) return 0;
        if (colour == YELLOW) return light & CAPABILITY_MASK;
        return type(uint256).max;
    }

    // Lane masks: the same 32-bit pattern in each of a word's 8 lanes.
    uint256 internal constant LANES_BIT31 = 0x8000000080000000800000008000000080000000800000008000000080000000;
    uint256 internal constant LANES_BIT30 = 0x4000000040000000400000004000000040000000400000004000000040000000;
    uint256 internal constant LANES_CAPABILITY = 0x3fffffff3fffffff3fffffff3fffffff3fffffff3fffffff3fffffff3fffffff;
    uint256 internal constant LANES_ONE = 0x0000000100000001000000010000000100000001000000010000000100000001;

    /// @dev Stores words whose ISPs are all before gate closure: one fast check and one SSTORE
    /// per word, the mapping slot computed as Solidity does for `_dynamic[key]`.
    function _storeOpenWords(
        Publication memory pub,
        uint32 zoneId,
        uint8 direction,
        uint32 staticLight,
        uint256[] calldata words
    ) internal {
        uint256 prefix = (uint256(pub.marketId) << 96) | (uint256(zoneId) << 64) | (uint256(direction) << 56);
        uint256 first = pub.firstWord;
        for (uint256 w = 0; w < words.length;) {
            uint256 word = words[w];
            if (!_wordOk(word, staticLight)) {
                _checkWordSlowly(zoneId, direction, word, staticLight, uint64(first + w) * 8 * pub.isp, pub.isp);
            }
            assembly ("memory-safe") {
                mstore(0x00, or(prefix, add(first, w)))
                mstore(0x00, keccak256(0x00, 0x20)) // the key, as _key computes it
                mstore(0x20, _dynamic.slot)
                sstore(keccak256(0x00, 0x40), word)
            }
            unchecked {
                ++w;
            }
        }
    }

    /// @dev Checks all 8 entries of a word at once (lane-wise bit arithmetic); only a word that
    /// fails is walked entry by entry, to name the entry in the error. Per entry this is what keeps
    /// publication near the cost of its storage.
    function _checkWord(uint32 zoneId, uint8 direction, uint256 word, uint32 staticLight, uint64 wordStart, uint64 isp)
        internal
        pure
    {
        if (!_wordOk(word, staticLight)) _checkWordSlowly(zoneId, direction, word, staticLight, wordStart, isp);
    }

    function _wordOk(uint256 word, uint32 staticLight) internal pure returns (bool ok) {
        // 1 at bit 32j for each YELLOW lane (colour bits 10)
        uint256 yellow = (((word >> 1) & ~word & LANES_BIT30) >> 30);
        uint256 yellowCaps = yellow * CAPABILITY_MASK;
        ok = word & LANES_CAPABILITY & ~yellowCaps == 0; // capabilities on YELLOW only
        uint32 staticColour = staticLight >> 30;
        if (ok && staticColour == RED) {
            ok = ((word >> 1) ^ word) & LANES_BIT30 == 0; // every lane unset (00) or RED (11)
        } else if (ok && staticColour == YELLOW) {
            bool noGreen = (word & ~(word >> 1) & LANES_BIT30) == 0; // no lane 01
            uint256 caps = word & yellowCaps;
            uint256 bound = (staticLight & CAPABILITY_MASK) * LANES_ONE;
            ok = noGreen && ((bound | LANES_BIT31) - caps) & LANES_BIT31 == LANES_BIT31; // caps <= bound
        }
    }

    function _checkWordSlowly(
        uint32 zoneId,
        uint8 direction,
        uint256 word,
        uint32 staticLight,
        uint64 wordStart,
        uint64 isp
    ) internal pure {
        uint256 staticCap = staticLight >> 30 == UNSET ? type(uint256).max : _capacity(staticLight);
        for (uint256 j = 0; j < 8; ++j) {
            uint32 light = uint32(word >> (32 * j));
            uint32 colour = light >> 30;
            if (colour == UNSET) {
                if (light != 0) revert GridCapabilityNotAllowed(0, light & CAPABILITY_MASK);
                continue;
            }
            if (colour != YELLOW && light & CAPABILITY_MASK != 0) {
                revert GridCapabilityNotAllowed(uint8(colour), light & CAPABILITY_MASK);
            }
            if (_capacity(light) > staticCap) {
                revert GridLooserThanStatic(zoneId, direction, wordStart + uint64(j) * isp, light, staticLight);
            }
        }
    }

    function _checkClosed(uint32 zoneId, uint256 word, uint256 stored, uint64 wordStart, uint64 isp, uint64 lead)
        internal
        view
    {
        for (uint256 j = 0; j < 8; ++j) {
            uint64 ispStart = wordStart + uint64(j) * isp;
            uint64 closure = ispStart > lead ? ispStart - lead : 0;
            if (block.timestamp > closure && uint32(word >> (32 * j)) != uint32(stored >> (32 * j))) {
                revert GridAfterGateClosure(zoneId, ispStart, closure);
            }
        }
    }
}
