// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {MarketAuthority} from "../../src/access/MarketAuthority.sol";
import {RoleRegistry} from "../../src/access/RoleRegistry.sol";
import {MarketRegistry} from "../../src/market/MarketRegistry.sol";
import {GridZones} from "../../src/grid/GridZones.sol";
import {AssetRegistry} from "../../src/grid/AssetRegistry.sol";

/// The deployed stack in deploy order (MarketAuthority, RoleRegistry, MarketRegistry, GridZones), roles for a TSO, two DSOs, an aggregator and two prosumers, one market (15-minute
/// ISPs, gate closure an hour ahead, days at 00:00 UTC), and helpers to pack lights.
abstract contract GridZonesFixture is TestBase {
    event log_named_uint(string key, uint256 val);

    address internal constant ADMIN = address(0xA);
    address internal constant TSO = address(0x750);
    address internal constant DSO1 = address(0xD51);
    address internal constant DSO2 = address(0xD52);
    address internal constant AGG = address(0xA66);
    address internal constant NOBODY = address(0xBAD);
    uint64 internal constant DAY0 = 1_800_000_000 - (1_800_000_000 % 86_400); // a UTC midnight
    uint32 internal constant ISP = 900;
    uint32 internal constant LEAD = 3600;

    uint8 internal constant UP = 0;
    uint8 internal constant DOWN = 1;
    uint8 internal constant UNSET = 0;
    uint8 internal constant GREEN = 1;
    uint8 internal constant YELLOW = 2;
    uint8 internal constant RED = 3;

    bytes32 internal constant TSO_ROLE = keccak256("TSO");
    bytes32 internal constant DSO_ROLE = keccak256("DSO");
    bytes32 internal constant AGGREGATOR_ROLE = keccak256("AGGREGATOR");
    bytes32 internal constant PROSUMER_ROLE = keccak256("PROSUMER");
    bytes32 internal constant METER_ROLE = keccak256("METER");

    /// The key of each meter made by `keyedMeter`: a registration needs the meter's signature.
    mapping(address meter => uint256 key) internal meterKeys;

    MarketAuthority internal auth;
    RoleRegistry internal roles;
    MarketRegistry internal markets;
    GridZones internal zones;
    uint32 internal market;

    function setUp() public virtual {
        vm.warp(DAY0 - 1 days);
        auth = new MarketAuthority(1 days, ADMIN);
        roles = new RoleRegistry(auth);
        markets = new MarketRegistry(auth);
        zones = new GridZones(roles, markets);
        grant(TSO, TSO_ROLE);
        grant(DSO1, DSO_ROLE);
        grant(DSO2, DSO_ROLE);
        grant(AGG, AGGREGATOR_ROLE);
        vm.prank(ADMIN);
        market = markets.createMarket(marketParams(ISP, 0));
    }

    function grant(address who, bytes32 role) internal {
        vm.prank(ADMIN);
        roles.issueCredential(who, role, 0, type(uint64).max, keccak256(abi.encode(who, role)));
    }

    function marketParams(uint32 isp, uint32 dayOffset) internal pure returns (MarketRegistry.MarketParams memory) {
        return MarketRegistry.MarketParams({
            ispSeconds: isp,
            gateClosureSeconds: LEAD,
            dayOffsetSeconds: dayOffset,
            toleranceBps: 500,
            penaltyFactorBps: 15_000,
            pricingRule: MarketRegistry.PricingRule.PAY_AS_BID,
            challengeWindowSeconds: 3600,
            disputeWindowSeconds: 2 days
        });
    }

    /// TSO area 1 > DSO1 perimeter 2 and DSO2 perimeter 3 > DSO1 substation 4 (under 2) > DSO1 feeder 5.
    function buildTree() internal {
        vm.prank(TSO);
        zones.addZone(0, TSO, 0);
        vm.prank(TSO);
        zones.addZone(1, DSO1, 1_000_000);
        vm.prank(TSO);
        zones.addZone(1, DSO2, 1_000_000);
        vm.prank(DSO1);
        zones.addZone(2, DSO1, 500_000);
        vm.prank(DSO1);
        zones.addZone(4, DSO1, 100_000);
    }

    function light(uint8 colour, uint32 capability) internal pure returns (uint32) {
        return (uint32(colour) << 30) | capability;
    }

    /// One zone's day (24 hour words): every ISP UP set to `up`, every ISP DOWN to `down`.
    function dayWords(uint32 up, uint32 down) internal pure returns (uint256[] memory words) {
        uint256[] memory perIsp = new uint256[](192);
        for (uint256 q = 0; q < 96; ++q) {
            perIsp[q] = up;
            perIsp[96 + q] = down;
        }
        return packDay(perIsp);
    }

    /// Pack 96 UP then 96 DOWN lights into 24 hour words (lane 4 * direction + ISP % 4).
    function packDay(uint256[] memory perIsp) internal pure returns (uint256[] memory words) {
        words = new uint256[](24);
        for (uint256 q = 0; q < 96; ++q) {
            words[q / 4] |= (perIsp[q] & 0xffffffff) << (32 * (q % 4));
            words[q / 4] |= (perIsp[96 + q] & 0xffffffff) << (32 * (4 + q % 4));
        }
    }

    function one(uint32 zoneId) internal pure returns (uint32[] memory list) {
        list = new uint32[](1);
        list[0] = zoneId;
    }

    function publish(address who, uint32 zoneId, uint64 dayStart, uint256[] memory words) internal {
        vm.prank(who);
        zones.publishDay(market, dayStart, one(zoneId), words);
    }

    function setStatic(address who, uint32 zoneId, uint8 direction, uint8 colour, uint32 capability) internal {
        vm.prank(who);
        zones.setStaticLight(zoneId, direction, colour, capability);
    }

    /// A meter with a key (recorded for `meterSignature`).
    function keyedMeter(uint256 key) internal returns (address meter) {
        meter = vm.addr(key);
        meterKeys[meter] = key;
    }

    /// The meter's `MeterRegistration` signature naming `owner_`, at the meter's current nonce.
    function meterSignature(AssetRegistry registry, address meter, address owner_, uint8 assetType, uint64 deadline)
        internal
        view
        returns (bytes memory)
    {
        uint256 key = meterKeys[meter];
        require(key != 0, "a meter without a known key");
        bytes32 digest = registry.meterRegistrationDigest(meter, owner_, assetType, registry.meterNonce(meter), deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// `who` registers the asset behind `meter`, with the meter's signature.
    function registerWithMeter(AssetRegistry registry, address who, address meter, uint8 assetType)
        internal
        returns (uint64 id)
    {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        bytes memory sig = meterSignature(registry, meter, who, assetType, deadline);
        vm.prank(who);
        id = registry.registerAsset(meter, assetType, deadline, sig);
    }
}
