// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridZonesFixture} from "./GridZonesFixture.sol";
import {GridZones} from "../../src/grid/GridZones.sol";
import {MarketRegistry} from "../../src/market/MarketRegistry.sol";
import {RoleGated} from "../../src/access/RoleGated.sol";

contract GridZonesLightsTest is GridZonesFixture {
    uint256 internal constant MAX = type(uint256).max;

    function setUp() public override {
        super.setUp();
        buildTree();
    }

    function _effective(uint32 zoneId, uint64 ispStart, uint8 direction) internal view returns (uint32) {
        (uint8 colour, uint32 cap) = zones.effectiveLight(market, zoneId, ispStart, direction);
        return light(colour, cap);
    }

    function _expectLooser(uint32 zoneId, uint64 ispStart, uint8 direction, uint32 bad, uint32 staticLight) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                GridZones.GridZonesLooserThanStatic.selector, zoneId, ispStart, direction, bad, staticLight
            )
        );
    }

    // ------------------------------------------------------------------------- static lights

    function test_staticLights() public {
        vm.expectEmit();
        emit GridZones.StaticLightSet(4, UP, YELLOW, 40_000);
        setStatic(DSO1, 4, UP, YELLOW, 40_000);
        assertEq(_effective(4, DAY0, UP), light(YELLOW, 40_000), "static yellow");
        assertEq(_effective(4, DAY0, DOWN), light(GREEN, 0), "no static light: green");
        setStatic(DSO1, 4, DOWN, RED, 0);
        assertEq(_effective(4, DAY0 + 5 days, DOWN), light(RED, 0), "static red, any day");
        setStatic(DSO1, 4, DOWN, GREEN, 0);
        assertEq(_effective(4, DAY0, DOWN), light(GREEN, 0), "back to green");
        (,,,, uint32 staticUp, uint32 staticDown) = zones.zone(4);
        assertEq(staticUp, light(YELLOW, 40_000), "stored up");
        assertEq(staticDown, light(GREEN, 0), "stored down");
        assertEq(_effective(1, DAY0, UP), light(GREEN, 0), "a root is green");
    }

    function test_staticLightBadInputs() public {
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, NOBODY, DSO_ROLE));
        vm.prank(NOBODY);
        zones.setStaticLight(4, UP, RED, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotOperator.selector, uint32(4), DSO2));
        vm.prank(DSO2);
        zones.setStaticLight(4, UP, RED, 0);
        vm.startPrank(DSO1);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesUnknownZone.selector, uint32(99)));
        zones.setStaticLight(99, UP, RED, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesInvalidDirection.selector, uint8(2)));
        zones.setStaticLight(4, 2, RED, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesInvalidColour.selector, uint8(0)));
        zones.setStaticLight(4, UP, UNSET, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesInvalidColour.selector, uint8(4)));
        zones.setStaticLight(4, UP, 4, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesCapabilityNotAllowed.selector, GREEN, uint256(5)));
        zones.setStaticLight(4, UP, GREEN, 5);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesCapabilityNotAllowed.selector, RED, uint256(5)));
        zones.setStaticLight(4, UP, RED, 5);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesCapabilityOverflow.selector, uint256(1 << 30)));
        zones.setStaticLight(4, UP, YELLOW, 1 << 30);
        zones.setStaticLight(4, UP, YELLOW, (1 << 30) - 1); // the largest capability fits
        vm.stopPrank();
    }

    function test_rootsCarryNoLights() public {
        grant(TSO, DSO_ROLE); // even an operator holding both roles
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesRootHasNoLights.selector, uint32(1)));
        vm.prank(TSO);
        zones.setStaticLight(1, UP, RED, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesRootHasNoLights.selector, uint32(1)));
        vm.prank(TSO);
        zones.publishDay(market, DAY0, one(1), dayWords(light(RED, 0), 0));
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesRootHasNoLights.selector, uint32(1)));
        vm.prank(TSO);
        zones.setDynamicLight(market, 1, DAY0, UP, RED, 0);
    }

    // --------------------------------------------------------------------------- publishDay

    function test_publishDay() public {
        setStatic(DSO1, 4, UP, YELLOW, 40_000);
        publish(DSO1, 4, DAY0, dayWords(light(YELLOW, 10_000), light(RED, 0)));
        assertEq(_effective(4, DAY0, UP), light(YELLOW, 10_000), "first ISP, tighter capability");
        assertEq(_effective(4, DAY0 + 95 * 900, UP), light(YELLOW, 10_000), "last ISP");
        assertEq(_effective(4, DAY0 + 37 * 900, DOWN), light(RED, 0), "red down");
        assertEq(_effective(4, DAY0 + 1 days, UP), light(YELLOW, 40_000), "the next day: static");
        assertEq(_effective(4, DAY0 - 900, UP), light(YELLOW, 40_000), "the day before: static");
        (uint8 colour, uint32 cap) = zones.dynamicLight(market, 4, DAY0 + 900, UP);
        assertEq(light(colour, cap), light(YELLOW, 10_000), "dynamic as published");
        (colour, cap) = zones.dynamicLight(market, 4, DAY0 + 1 days, UP);
        assertEq(colour, UNSET, "nothing published the next day");
    }

    function test_publishDayManyZonesAndEmits() public {
        uint32[] memory list = new uint32[](3);
        (list[0], list[1], list[2]) = (2, 4, 5);
        uint256[] memory words = new uint256[](72);
        uint256[] memory a = dayWords(light(YELLOW, 1), light(YELLOW, 2));
        uint256[] memory b = dayWords(light(RED, 0), light(GREEN, 0));
        uint256[] memory c = dayWords(0, light(YELLOW, 3));
        for (uint256 h = 0; h < 24; ++h) {
            (words[h], words[24 + h], words[48 + h]) = (a[h], b[h], c[h]);
        }
        vm.expectEmit();
        emit GridZones.DayLightsPublished(market, DAY0, DSO1, list, words);
        vm.prank(DSO1);
        zones.publishDay(market, DAY0, list, words);
        assertEq(_effective(2, DAY0 + 3600, DOWN), light(YELLOW, 2), "zone 2");
        assertEq(_effective(4, DAY0 + 3600, UP), light(RED, 0), "zone 4");
        assertEq(_effective(5, DAY0 + 3600, UP), light(GREEN, 0), "zone 5 unset up: static (none): green");
        assertEq(_effective(5, DAY0 + 3600, DOWN), light(YELLOW, 3), "zone 5 down");
    }

    function test_wordLayout() public {
        uint256[] memory perIsp = new uint256[](192);
        for (uint256 i = 0; i < 192; ++i) {
            perIsp[i] = light(YELLOW, uint32(1000 + i));
        }
        uint256[] memory words = packDay(perIsp);
        publish(DSO1, 4, DAY0, words);
        for (uint256 h = 0; h < 24; ++h) {
            assertEq(zones.lightsWord(market, 4, DAY0 + uint64(h) * 3600), words[h], "stored as published");
        }
        for (uint256 q = 0; q < 96; ++q) {
            assertEq(_effective(4, DAY0 + uint64(q) * 900, UP), light(YELLOW, uint32(1000 + q)), "up lane");
            assertEq(_effective(4, DAY0 + uint64(q) * 900, DOWN), light(YELLOW, uint32(1096 + q)), "down lane");
        }
    }

    function test_unsetEntriesLeaveTheStaticLight() public {
        setStatic(DSO1, 4, UP, RED, 0);
        uint256[] memory perIsp = new uint256[](192); // all unset
        perIsp[10] = light(RED, 0);
        publish(DSO1, 4, DAY0, packDay(perIsp));
        assertEq(_effective(4, DAY0 + 11 * 900, UP), light(RED, 0), "static red holds");
        setStatic(DSO1, 4, UP, GREEN, 0);
        assertEq(_effective(4, DAY0 + 11 * 900, UP), light(GREEN, 0), "the static light holds, as it is now");
        assertEq(_effective(4, DAY0 + 10 * 900, UP), light(RED, 0), "the published entry holds");
    }

    function test_looserThanStaticReverts() public {
        setStatic(DSO1, 4, UP, YELLOW, 40_000);
        setStatic(DSO1, 4, DOWN, RED, 0);
        _expectLooser(4, DAY0, UP, light(YELLOW, 40_001), light(YELLOW, 40_000));
        publish(DSO1, 4, DAY0, dayWords(light(YELLOW, 40_001), 0));
        _expectLooser(4, DAY0, UP, light(GREEN, 0), light(YELLOW, 40_000));
        publish(DSO1, 4, DAY0, dayWords(light(GREEN, 0), 0));
        _expectLooser(4, DAY0, DOWN, light(YELLOW, 0), light(RED, 0));
        publish(DSO1, 4, DAY0, dayWords(0, light(YELLOW, 0)));
        _expectLooser(4, DAY0, DOWN, light(GREEN, 0), light(RED, 0));
        publish(DSO1, 4, DAY0, dayWords(0, light(GREEN, 0)));
        // one bad entry deep in the day is named
        uint256[] memory perIsp = new uint256[](192);
        for (uint256 q = 0; q < 96; ++q) {
            perIsp[q] = light(YELLOW, 40_000);
            perIsp[96 + q] = light(RED, 0);
        }
        perIsp[96 + 61] = light(YELLOW, 5);
        _expectLooser(4, DAY0 + 61 * 900, DOWN, light(YELLOW, 5), light(RED, 0));
        publish(DSO1, 4, DAY0, packDay(perIsp));
        perIsp[96 + 61] = light(RED, 0);
        publish(DSO1, 4, DAY0, packDay(perIsp)); // equal to the static light: fine
    }

    function test_capabilityOnlyOnYellow() public {
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesCapabilityNotAllowed.selector, GREEN, uint256(7)));
        publish(DSO1, 4, DAY0, dayWords(light(GREEN, 7), 0));
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesCapabilityNotAllowed.selector, RED, uint256(7)));
        publish(DSO1, 4, DAY0, dayWords(0, light(RED, 7)));
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesCapabilityNotAllowed.selector, UNSET, uint256(7)));
        publish(DSO1, 4, DAY0, dayWords(light(UNSET, 7), 0));
    }

    function test_gateClosure() public {
        uint256[] memory perIsp = new uint256[](192);
        for (uint256 q = 0; q < 192; ++q) {
            perIsp[q] = light(YELLOW, 1000);
        }
        publish(DSO1, 4, DAY0, packDay(perIsp));
        uint64 isp40 = DAY0 + 40 * 900; // 10:00
        vm.warp(DAY0 - LEAD); // the day's gate closure: the last second any of its ISPs may change
        perIsp[40] = light(YELLOW, 900);
        publish(DSO1, 4, DAY0, packDay(perIsp));
        vm.warp(DAY0 - LEAD + 1); // every ISP of the day closes at once, ISP 40 included
        perIsp[40] = light(YELLOW, 800);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesAfterGateClosure.selector, uint32(4), isp40, DAY0 - LEAD));
        publish(DSO1, 4, DAY0, packDay(perIsp));
        perIsp[40] = light(YELLOW, 900);
        perIsp[96 + 95] = light(RED, 0); // the day's last ISP, down
        vm.expectRevert(
            abi.encodeWithSelector(GridZones.GridZonesAfterGateClosure.selector, uint32(4), DAY0 + 95 * 900, DAY0 - LEAD)
        );
        publish(DSO1, 4, DAY0, packDay(perIsp));
        perIsp[96 + 95] = light(YELLOW, 1000);
        publish(DSO1, 4, DAY0, packDay(perIsp)); // a closed day republished as it is: fine
        assertEq(_effective(4, isp40, UP), light(YELLOW, 900), "closed ISP kept");
        // the next day is still open
        publish(DSO1, 4, DAY0 + 1 days, packDay(perIsp));
        // a day entirely in the past can only be republished as it is
        vm.warp(DAY0 + 2 days);
        publish(DSO1, 4, DAY0, packDay(perIsp));
        perIsp[95] = light(RED, 0);
        vm.expectRevert(
            abi.encodeWithSelector(GridZones.GridZonesAfterGateClosure.selector, uint32(4), DAY0 + 95 * 900, DAY0 - LEAD)
        );
        publish(DSO1, 4, DAY0, packDay(perIsp));
    }

    function test_publisherMustOperateEveryZone() public {
        uint32[] memory list = new uint32[](2);
        (list[0], list[1]) = (4, 3);
        uint256[] memory words = new uint256[](48);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotOperator.selector, uint32(3), DSO1));
        vm.prank(DSO1);
        zones.publishDay(market, DAY0, list, words);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, TSO, DSO_ROLE));
        vm.prank(TSO);
        zones.publishDay(market, DAY0, list, words);
    }

    function test_publishBadInputs() public {
        uint256[] memory words = new uint256[](24);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesUnknownZone.selector, uint32(99)));
        publish(DSO1, 99, DAY0, words);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesWordCountMismatch.selector, uint256(24), uint256(23)));
        publish(DSO1, 4, DAY0, new uint256[](23));
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotDayStart.selector, market, DAY0 + 3600));
        publish(DSO1, 4, DAY0 + 3600, words);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotDayStart.selector, market, DAY0 + 1));
        publish(DSO1, 4, DAY0 + 1, words);
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryUnknownMarket.selector, uint32(9)));
        vm.prank(DSO1);
        zones.publishDay(9, DAY0, one(4), words);
    }

    function test_marketsWithoutLightsOrOddDays() public {
        vm.startPrank(ADMIN);
        uint32 halfHourly = markets.createMarket(marketParams(1800, 0));
        uint32 quarterPast = markets.createMarket(marketParams(900, 900)); // days at 00:15 UTC
        vm.stopPrank();
        uint256[] memory words = new uint256[](24);
        vm.startPrank(DSO1);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesUnsupportedIsp.selector, halfHourly, uint32(1800)));
        zones.publishDay(halfHourly, DAY0, one(4), words);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesUnsupportedIsp.selector, halfHourly, uint32(1800)));
        zones.setDynamicLight(halfHourly, 4, DAY0, UP, RED, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotDayStart.selector, quarterPast, DAY0 + 900));
        zones.publishDay(quarterPast, DAY0 + 900, one(4), words);
        vm.stopPrank();
    }

    function test_marketDayAt23Utc() public {
        vm.prank(ADMIN);
        uint32 cet = markets.createMarket(marketParams(900, 23 hours)); // a CET market day
        uint64 dayStart = DAY0 - 1 hours;
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotDayStart.selector, cet, DAY0));
        vm.prank(DSO1);
        zones.publishDay(cet, DAY0, one(4), new uint256[](24));
        uint256[] memory perIsp = new uint256[](192);
        perIsp[0] = light(RED, 0); // 23:00 UTC the day before
        perIsp[95] = light(YELLOW, 3); // 22:45 UTC
        vm.prank(DSO1);
        zones.publishDay(cet, dayStart, one(4), packDay(perIsp));
        (uint8 colour,) = zones.effectiveLight(cet, 4, dayStart, UP);
        assertEq(colour, RED, "first ISP of the CET day");
        (uint8 c2, uint32 cap) = zones.effectiveLight(cet, 4, DAY0 + 22 hours + 45 minutes, UP);
        assertEq(light(c2, cap), light(YELLOW, 3), "last ISP of the CET day");
        (colour,) = zones.effectiveLight(market, 4, dayStart, UP);
        assertEq(colour, GREEN, "another market's lights are its own");
    }

    // ----------------------------------------------------------------------- setDynamicLight

    function test_setDynamicLight() public {
        setStatic(DSO1, 5, DOWN, YELLOW, 50_000);
        uint64 isp = DAY0 + 13 * 900;
        vm.expectEmit();
        emit GridZones.DynamicLightSet(market, 5, isp, DOWN, YELLOW, 20_000);
        vm.prank(DSO1);
        zones.setDynamicLight(market, 5, isp, DOWN, YELLOW, 20_000);
        assertEq(_effective(5, isp, DOWN), light(YELLOW, 20_000), "set");
        assertEq(_effective(5, isp + 900, DOWN), light(YELLOW, 50_000), "neighbour untouched");
        assertEq(_effective(5, isp, UP), light(GREEN, 0), "other direction untouched");
        vm.prank(DSO1);
        zones.setDynamicLight(market, 5, isp, DOWN, UNSET, 0);
        assertEq(_effective(5, isp, DOWN), light(YELLOW, 50_000), "cleared: static again");
    }

    function test_setDynamicLightBadInputs() public {
        setStatic(DSO1, 5, UP, YELLOW, 50_000);
        vm.startPrank(DSO1);
        _expectLooser(5, DAY0, UP, light(YELLOW, 50_001), light(YELLOW, 50_000));
        zones.setDynamicLight(market, 5, DAY0, UP, YELLOW, 50_001);
        _expectLooser(5, DAY0, UP, light(GREEN, 0), light(YELLOW, 50_000));
        zones.setDynamicLight(market, 5, DAY0, UP, GREEN, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotAligned.selector, DAY0 + 60, uint32(900)));
        zones.setDynamicLight(market, 5, DAY0 + 60, UP, RED, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesInvalidDirection.selector, uint8(7)));
        zones.setDynamicLight(market, 5, DAY0, 7, RED, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesInvalidColour.selector, uint8(4)));
        zones.setDynamicLight(market, 5, DAY0, UP, 4, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesCapabilityNotAllowed.selector, RED, uint256(1)));
        zones.setDynamicLight(market, 5, DAY0, UP, RED, 1);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesCapabilityNotAllowed.selector, UNSET, uint256(1)));
        zones.setDynamicLight(market, 5, DAY0, UP, UNSET, 1);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesCapabilityOverflow.selector, uint256(1 << 31)));
        zones.setDynamicLight(market, 5, DAY0, DOWN, YELLOW, 1 << 31);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesUnknownZone.selector, uint32(42)));
        zones.setDynamicLight(market, 42, DAY0, UP, RED, 0);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotOperator.selector, uint32(5), DSO2));
        vm.prank(DSO2);
        zones.setDynamicLight(market, 5, DAY0, UP, RED, 0);
        vm.warp(DAY0 - LEAD + 1);
        vm.expectRevert(
            abi.encodeWithSelector(GridZones.GridZonesAfterGateClosure.selector, uint32(5), DAY0, DAY0 - LEAD)
        );
        vm.prank(DSO1);
        zones.setDynamicLight(market, 5, DAY0, UP, RED, 0);
        vm.expectRevert(
            abi.encodeWithSelector(GridZones.GridZonesAfterGateClosure.selector, uint32(5), DAY0 + 900, DAY0 - LEAD)
        );
        vm.prank(DSO1);
        zones.setDynamicLight(market, 5, DAY0 + 900, UP, RED, 0); // the day's later ISPs closed with it
        vm.prank(DSO1);
        zones.setDynamicLight(market, 5, DAY0 + 1 days, UP, RED, 0); // the next day is still open
    }

    // --------------------------------------------------------------------------------- views

    function test_viewsRejectBadInputs() public {
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotAligned.selector, DAY0 + 1, uint32(900)));
        zones.effectiveLight(market, 4, DAY0 + 1, UP);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotAligned.selector, DAY0 + 1, uint32(900)));
        zones.tsoHeadroom(market, 4, DAY0 + 1, UP);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotAligned.selector, DAY0 + 1, uint32(900)));
        zones.dynamicLight(market, 4, DAY0 + 1, UP);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotAligned.selector, DAY0 + 900, uint32(3600)));
        zones.lightsWord(market, 4, DAY0 + 900);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesInvalidDirection.selector, uint8(2)));
        zones.effectiveLight(market, 4, DAY0, 2);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesInvalidDirection.selector, uint8(2)));
        zones.tsoHeadroom(market, 4, DAY0, 2);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesUnknownZone.selector, uint32(6)));
        zones.effectiveLight(market, 6, DAY0, UP);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesUnknownZone.selector, uint32(6)));
        zones.tsoHeadroom(market, 6, DAY0, UP);
    }

    function test_packLight() public {
        assertEq(zones.packLight(YELLOW, 12_345), light(YELLOW, 12_345), "yellow");
        assertEq(zones.packLight(RED, 0), uint256(3) << 30, "red");
        assertEq(zones.packLight(UNSET, 0), 0, "unset");
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesCapabilityOverflow.selector, uint256(1 << 30)));
        zones.packLight(YELLOW, 1 << 30);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesInvalidColour.selector, uint8(5)));
        zones.packLight(5, 0);
    }

    function test_tsoHeadroomAlongThePath() public {
        (bool allowed, uint256 cap) = zones.tsoHeadroom(market, 5, DAY0, UP);
        assertTrue(allowed && cap == MAX, "all green: no limit");
        setStatic(DSO1, 5, UP, YELLOW, 80_000);
        vm.prank(DSO1);
        zones.setDynamicLight(market, 4, DAY0 + 900, UP, YELLOW, 50_000);
        (allowed, cap) = zones.tsoHeadroom(market, 5, DAY0, UP);
        assertTrue(allowed, "yellow allows");
        assertEq(cap, 80_000, "the feeder's static light");
        (allowed, cap) = zones.tsoHeadroom(market, 5, DAY0 + 900, UP);
        assertEq(cap, 50_000, "the substation's dynamic light is tighter");
        (allowed, cap) = zones.tsoHeadroom(market, 4, DAY0, UP);
        assertTrue(allowed && cap == MAX, "the feeder's light does not bind its parent");
        vm.prank(DSO1);
        zones.setDynamicLight(market, 2, DAY0 + 900, UP, RED, 0);
        (allowed, cap) = zones.tsoHeadroom(market, 5, DAY0 + 900, UP);
        assertTrue(!allowed && cap == 0, "red on the perimeter stops the TSO");
        (allowed, cap) = zones.tsoHeadroom(market, 5, DAY0 + 900, DOWN);
        assertTrue(allowed && cap == MAX, "the other direction is free");
        (allowed, cap) = zones.tsoHeadroom(market, 3, DAY0 + 900, UP);
        assertTrue(allowed && cap == MAX, "the sibling perimeter is free");
        (allowed, cap) = zones.tsoHeadroom(market, 1, DAY0 + 900, UP);
        assertTrue(allowed && cap == MAX, "the root itself carries no light");
        vm.prank(DSO1);
        zones.setDynamicLight(market, 5, DAY0 + 1800, UP, YELLOW, 0);
        (allowed, cap) = zones.tsoHeadroom(market, 5, DAY0 + 1800, UP);
        assertTrue(allowed && cap == 0, "yellow 0 W: allowed, nothing to use");
    }

    // --------------------------------------------------------------------------------- fuzz

    /// Random static lights and random days: publication succeeds exactly when every entry is
    /// valid (checked entry by entry here, independently of the contract's lane arithmetic), and
    /// afterwards no light in force is looser than the static one.
    function testFuzz_publicationNeverLooserThanStatic(
        uint256 seed,
        uint8 upColour,
        uint8 downColour,
        uint32 upCap,
        uint32 downCap
    ) public {
        uint32[2] memory statics;
        statics[0] = _randomStatic(upColour, upCap);
        statics[1] = _randomStatic(downColour, downCap);
        for (uint8 d = 0; d < 2; ++d) {
            if (statics[d] != 0) setStatic(DSO1, 4, d, uint8(statics[d] >> 30), statics[d] & 0x3fffffff);
        }
        uint256[] memory perIsp = new uint256[](192);
        for (uint256 i = 0; i < 192; ++i) {
            seed = uint256(keccak256(abi.encode(seed, i)));
            perIsp[i] = _tighterOrEqual(statics[i / 96], seed);
        }
        if (seed % 2 == 0) {
            // corrupt one entry at random; it may or may not stay valid
            uint256 at = (seed >> 8) % 192;
            uint256 r = seed >> 16;
            perIsp[at] = uint32((r % 4) << 30) | uint32((r >> 2) % 4 == 0 ? 0 : (r >> 4) % (1 << 30));
        }
        bool valid = true;
        for (uint256 i = 0; i < 192; ++i) {
            if (!_validEntry(uint32(perIsp[i]), statics[i / 96])) valid = false;
        }
        vm.prank(DSO1);
        try zones.publishDay(market, DAY0, one(4), packDay(perIsp)) {
            assertTrue(valid, "accepted only when every entry is valid");
        } catch {
            assertTrue(!valid, "refused only when an entry is invalid");
            return;
        }
        for (uint256 q = 0; q < 96; q += 7) {
            for (uint8 d = 0; d < 2; ++d) {
                uint32 inForce = _effective(4, DAY0 + uint64(q) * 900, d);
                assertTrue(_looseness(inForce) <= _looseness(statics[d]), "never looser than static");
                if (perIsp[96 * d + q] != 0) assertEq(inForce, perIsp[96 * d + q], "the published entry holds");
            }
        }
    }

    /// Random lights on the path feeder 5 > substation 4 > perimeter 2 (> root 1): the headroom
    /// is "not allowed" under any RED, else the smallest YELLOW capability, else no limit. Some
    /// zones also get a dynamic light on another ISP only (so they "have dynamic lights" without
    /// one for the ISP asked about), which exercises both reading orders of the view.
    function testFuzz_headroomIsTheMinimumOverThePath(uint256 seed, uint8 direction, uint8 ispIndex) public {
        direction = direction % 2;
        uint64 ispStart = DAY0 + uint64(ispIndex % 96) * 900;
        uint32[3] memory path = [uint32(5), 4, 2];
        uint32[3] memory inForce;
        for (uint256 level = 0; level < 3; ++level) {
            seed = uint256(keccak256(abi.encode(seed, level)));
            uint32 staticLight = seed % 4 == 0 ? 0 : _randomStatic(uint8(seed >> 8), uint32(seed >> 16));
            if (staticLight != 0) {
                setStatic(DSO1, path[level], direction, uint8(staticLight >> 30), staticLight & 0x3fffffff);
            }
            uint32 dyn = (seed >> 64) % 3 == 0 ? 0 : uint32(_tighterOrEqual(staticLight, seed >> 72));
            if (dyn != 0) {
                vm.prank(DSO1);
                zones.setDynamicLight(market, path[level], ispStart, direction, uint8(dyn >> 30), dyn & 0x3fffffff);
            }
            if ((seed >> 200) % 2 == 0) {
                vm.prank(DSO1);
                zones.setDynamicLight(market, path[level], ispStart + 900, direction, RED, 0);
            }
            inForce[level] = dyn != 0 ? dyn : staticLight;
        }
        for (uint256 leaf = 0; leaf < 3; ++leaf) {
            _checkHeadroom(path, inForce, leaf, ispStart, direction);
        }
    }

    function _checkHeadroom(
        uint32[3] memory path,
        uint32[3] memory inForce,
        uint256 leaf,
        uint64 ispStart,
        uint8 direction
    ) internal view {
        bool expectAllowed = true;
        uint256 expectCap = MAX;
        for (uint256 level = leaf; level < 3; ++level) {
            if (inForce[level] >> 30 == RED) expectAllowed = false;
            if (inForce[level] >> 30 == YELLOW && (inForce[level] & 0x3fffffff) < expectCap) {
                expectCap = inForce[level] & 0x3fffffff;
            }
        }
        (bool allowed, uint256 cap) = zones.tsoHeadroom(market, path[leaf], ispStart, direction);
        assertTrue(allowed == expectAllowed, "allowed");
        assertEq(cap, expectAllowed ? expectCap : 0, "headroom = min over the path");
        (uint8 colour, uint32 c) = zones.effectiveLight(market, path[leaf], ispStart, direction);
        assertEq(light(colour, c), inForce[leaf] == 0 ? light(GREEN, 0) : inForce[leaf], "effective light");
    }

    /// One fuzzed word (lanes of every colour, capabilities on any colour, around the static
    /// bound) against fuzzed static lights: the contract's lane-wise check of all 8 entries at
    /// once must agree with an entry-by-entry check.
    function testFuzz_wordCheckAgreesWithEntryByEntry(
        uint256 seed,
        uint8 upColour,
        uint8 downColour,
        uint32 upCap,
        uint32 downCap
    ) public {
        uint32[2] memory statics = [_randomStatic(upColour, upCap), _randomStatic(downColour, downCap)];
        for (uint8 d = 0; d < 2; ++d) {
            if (statics[d] != 0) setStatic(DSO1, 4, d, uint8(statics[d] >> 30), statics[d] & 0x3fffffff);
        }
        uint256[] memory words = new uint256[](24);
        bool valid = true;
        for (uint256 lane = 0; lane < 8; ++lane) {
            uint256 r = uint256(keccak256(abi.encode(seed, lane)));
            uint32 colour = uint32(r % 4);
            uint32 bound = statics[lane / 4] & 0x3fffffff;
            uint32 cap;
            if (colour == YELLOW) cap = uint32((r >> 8) % (2 * uint256(bound) + 2));
            else if ((r >> 8) % 8 == 0) cap = uint32(1 + (r >> 16) % 1000);
            if ((r >> 40) % 16 == 0) cap = uint32((1 << 30) - 1 - (r >> 48) % 3); // near the top of the field
            uint32 entry = colour << 30 | cap;
            words[7] |= uint256(entry) << (32 * lane);
            if (!_validEntry(entry, statics[lane / 4])) valid = false;
        }
        vm.prank(DSO1);
        try zones.publishDay(market, DAY0, one(4), words) {
            assertTrue(valid, "accepted only when every entry is valid");
            assertEq(zones.lightsWord(market, 4, DAY0 + 7 hours), words[7], "stored");
        } catch (bytes memory reason) {
            assertTrue(!valid, "refused only when an entry is invalid");
            assertTrue(bytes4(reason) != GridZones.GridZonesInvalidWord.selector, "every refusal names its entry");
        }
    }

    // ------------------------------------------------------------------------------ helpers

    function _randomStatic(uint8 colour, uint32 cap) internal pure returns (uint32) {
        colour = colour % 4;
        if (colour == UNSET) return 0;
        return light(colour, colour == YELLOW ? cap % 2_000_000 : 0);
    }

    /// A random light no looser than `staticLight` (sometimes unset).
    function _tighterOrEqual(uint32 staticLight, uint256 r) internal pure returns (uint256) {
        uint256 pick = r % 5;
        if (pick == 0) return 0;
        if (pick == 1) return light(RED, 0);
        uint256 staticColour = staticLight >> 30;
        if (staticColour == RED) return light(RED, 0);
        if (staticColour == YELLOW) {
            uint32 bound = staticLight & 0x3fffffff;
            return light(YELLOW, uint32((r >> 8) % (uint256(bound) + 1)));
        }
        if (pick == 2) return light(GREEN, 0);
        return light(YELLOW, uint32((r >> 8) % (1 << 30)));
    }

    function _validEntry(uint32 entry, uint32 staticLight) internal pure returns (bool) {
        uint32 colour = entry >> 30;
        if (colour != YELLOW && (entry & 0x3fffffff) != 0) return false;
        if (colour == UNSET) return true;
        return _looseness(entry) <= _looseness(staticLight);
    }

    function _looseness(uint32 l) internal pure returns (uint256) {
        uint32 colour = l >> 30;
        if (colour == RED) return 0;
        if (colour == YELLOW) return 1 + (l & 0x3fffffff); // YELLOW 0 W is still looser than RED
        return MAX;
    }
}
