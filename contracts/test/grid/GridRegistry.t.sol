// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridFixture} from "./GridFixture.sol";
import {GridRegistry} from "../../src/grid/GridRegistry.sol";
import {RoleGated} from "../../src/access/RoleGated.sol";

contract GridZonesTest is GridFixture {
    function test_treeAndPaths() public {
        buildTree();
        assertEq(grid.zoneCount(), 5, "five zones");
        uint32[] memory path = grid.pathToRoot(5);
        assertEq(path.length, 4, "depth 3 -> four zones");
        assertEq(path[0], 5, "leaf first");
        assertEq(path[3], 1, "root last");
        assertTrue(grid.isInSubtree(5, 2), "feeder under perimeter 2");
        assertTrue(!grid.isInSubtree(5, 3), "not under perimeter 3");
        assertTrue(grid.operatesPathOf(5, DSO1), "DSO1 operates the path");
        assertTrue(!grid.operatesPathOf(5, DSO2), "DSO2 does not");
        (uint32 parent, address operator,,, uint8 depth, uint32 cap) = grid.zone(4);
        assertEq(parent, 2, "parent");
        assertEq(operator, DSO1, "operator");
        assertEq(depth, 2, "depth");
        assertEq(cap, 500_000, "cap");
    }

    function test_rootNeedsATso() public {
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, DSO1, keccak256("TSO")));
        vm.prank(DSO1);
        grid.addZone(0, DSO1, 0);
    }

    function test_childOnlyByTheParentsOperator() public {
        buildTree();
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridNotZoneOperator.selector, uint32(2), DSO2));
        vm.prank(DSO2);
        grid.addZone(2, DSO2, 0);
    }

    function test_operatorNeedsARole() public {
        buildTree();
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridOperatorWithoutRole.selector, NOBODY));
        vm.prank(DSO1);
        grid.addZone(2, NOBODY, 0);
    }

    function test_unknownParentOrZone() public {
        buildTree();
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridUnknownZone.selector, uint32(6)));
        vm.prank(DSO1);
        grid.addZone(6, DSO1, 0); // its own id-to-be: a zone cannot be its own parent (no cycles)
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridUnknownZone.selector, uint32(99)));
        grid.pathToRoot(99);
    }

    function test_depthBound() public {
        buildTree(); // zone 5 is at depth 3
        uint32 parent = 5;
        for (uint8 depth = 4; depth <= grid.MAX_DEPTH(); ++depth) {
            vm.prank(DSO1);
            parent = grid.addZone(parent, DSO1, 0);
        }
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridTooDeep.selector, parent, uint8(grid.MAX_DEPTH() + 1)));
        vm.prank(DSO1);
        grid.addZone(parent, DSO1, 0);
    }
}

contract GridLightsTest is GridFixture {
    uint8 internal constant UP = 0;
    uint8 internal constant DOWN = 1;

    function setUp() public override {
        super.setUp();
        buildTree();
    }

    function _publish(address who, uint32 zoneId, uint256[] memory words) internal {
        uint32[] memory zones = new uint32[](1);
        zones[0] = zoneId;
        vm.prank(who);
        grid.publishLights(market, DAY0, 12, zones, words);
    }

    function test_staticLights() public {
        vm.prank(DSO1);
        grid.setStaticLight(4, UP, 2, 40_000);
        (uint8 colour, uint32 cap) = grid.effectiveLight(market, 4, DAY0, UP);
        assertEq(colour, 2, "yellow");
        assertEq(cap, 40_000, "capability");
        (colour,) = grid.effectiveLight(market, 4, DAY0, DOWN);
        assertEq(colour, 1, "no static light: green");
    }

    function test_staticLightBadInputs() public {
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridNotZoneOperator.selector, uint32(4), DSO2));
        vm.prank(DSO2);
        grid.setStaticLight(4, UP, 3, 0);
        vm.startPrank(DSO1);
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridCapabilityNotAllowed.selector, uint8(1), uint32(5)));
        grid.setStaticLight(4, UP, 1, 5);
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridCapabilityNotAllowed.selector, uint8(3), uint32(5)));
        grid.setStaticLight(4, UP, 3, 5);
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridInvalidDirection.selector, uint8(2)));
        grid.setStaticLight(4, 2, 3, 0);
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridCapabilityTooLarge.selector, uint256(1 << 30)));
        grid.setStaticLight(4, UP, 2, uint32(1 << 30));
        vm.stopPrank();
    }

    function test_publishADay() public {
        vm.prank(DSO1);
        grid.setStaticLight(4, UP, 2, 40_000);
        _publish(DSO1, 4, dayWords(light(2, 10_000), light(3, 0)));
        (uint8 colour, uint32 cap) = grid.effectiveLight(market, 4, DAY0 + 95 * 900, UP);
        assertEq(colour, 2, "yellow");
        assertEq(cap, 10_000, "tighter capability");
        (colour,) = grid.effectiveLight(market, 4, DAY0, DOWN);
        assertEq(colour, 3, "red");
        (colour, cap) = grid.effectiveLight(market, 4, DAY0 + 1 days, UP);
        assertEq(cap, 40_000, "the next day: static");
    }

    function test_looserThanStaticReverts() public {
        vm.prank(DSO1);
        grid.setStaticLight(4, UP, 2, 40_000);
        uint256[] memory words = dayWords(light(2, 50_000), 0);
        vm.expectRevert(
            abi.encodeWithSelector(GridRegistry.GridLooserThanStatic.selector, uint32(4), uint8(0), DAY0, light(2, 50_000), light(2, 40_000))
        );
        _publish(DSO1, 4, words);
        words = dayWords(light(1, 0), 0);
        vm.expectRevert(
            abi.encodeWithSelector(GridRegistry.GridLooserThanStatic.selector, uint32(4), uint8(0), DAY0, light(1, 0), light(2, 40_000))
        );
        _publish(DSO1, 4, words);
    }

    function test_capabilityOnlyOnYellow() public {
        uint256[] memory words = dayWords(light(3, 7), 0);
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridCapabilityNotAllowed.selector, uint8(3), uint32(7)));
        _publish(DSO1, 4, words);
    }

    function test_publisherMustOperateTheZone() public {
        uint256[] memory words = dayWords(light(3, 0), 0);
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridNotZoneOperator.selector, uint32(4), DSO2));
        _publish(DSO2, 4, words);
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridUnknownZone.selector, uint32(77)));
        _publish(DSO1, 77, words);
    }

    function test_notAligned() public {
        uint32[] memory zones = new uint32[](1);
        zones[0] = 4;
        uint256[] memory words = dayWords(0, 0);
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridNotAligned.selector, DAY0 + 900, uint32(900)));
        vm.prank(DSO1);
        grid.publishLights(market, DAY0 + 900, 12, zones, words);
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridNotAligned.selector, DAY0 + 1, uint32(900)));
        grid.effectiveLight(market, 4, DAY0 + 1, UP);
    }

    function test_updatesUntilGateClosureOnly() public {
        _publish(DSO1, 4, dayWords(light(2, 10_000), 0));
        // 30 minutes before the day: ISPs 0..1 are past gate closure (one hour ahead), the rest open
        vm.warp(DAY0 - 1800);
        uint256[] memory words = dayWords(light(2, 10_000), 0);
        words[1] = dayWords(light(3, 0), 0)[1]; // ISPs 8-15 change: still open
        _publish(DSO1, 4, words);
        (uint8 colour,) = grid.effectiveLight(market, 4, DAY0 + 8 * 900, UP);
        assertEq(colour, 3, "open ISP updated");
        words[0] = dayWords(light(3, 0), 0)[0]; // ISP 0 changes: closed
        vm.expectRevert(abi.encodeWithSelector(GridRegistry.GridAfterGateClosure.selector, uint32(4), DAY0, DAY0 - 3600));
        _publish(DSO1, 4, words);
    }

    function test_tsoHeadroomAlongThePath() public {
        vm.prank(DSO1);
        grid.setStaticLight(2, UP, 2, 300_000); // the perimeter allows 300 kW
        _publish(DSO1, 4, dayWords(light(2, 120_000), light(3, 0))); // the substation: 120 kW up, none down
        (bool allowed, uint256 cap) = grid.tsoHeadroom(market, 5, DAY0, UP);
        assertTrue(allowed, "up allowed");
        assertEq(cap, 120_000, "the smallest capability on the path");
        (allowed, cap) = grid.tsoHeadroom(market, 5, DAY0, DOWN);
        assertTrue(!allowed, "red on the path");
        assertEq(cap, 0, "nothing");
        (allowed, cap) = grid.tsoHeadroom(market, 3, DAY0, UP);
        assertTrue(allowed, "the other perimeter is green");
        assertEq(cap, type(uint256).max, "unlimited");
    }

    function test_aLaterTighterStaticStillBinds() public {
        _publish(DSO1, 4, dayWords(light(2, 120_000), 0));
        vm.prank(DSO1);
        grid.setStaticLight(4, UP, 3, 0);
        (uint8 colour,) = grid.effectiveLight(market, 4, DAY0, UP);
        assertEq(colour, 3, "static red binds");
    }

    /// Random lights on the path of feeder 5: the headroom is the minimum capacity over the path.
    function testFuzz_headroomIsThePathMinimum(uint32[4] memory raw, uint8 isp) public {
        isp = uint8(bound(isp, 0, 95));
        uint32[4] memory path = [uint32(5), 4, 2, 1];
        address[4] memory ops = [DSO1, DSO1, DSO1, TSO];
        uint256 expected = type(uint256).max;
        bool allowed = true;
        for (uint256 i = 0; i < 4; ++i) {
            uint8 colour = uint8(bound(raw[i] >> 30, 1, 3));
            uint32 cap = colour == 2 ? uint32(bound(raw[i] & ((1 << 30) - 1), 0, (1 << 30) - 1)) : 0;
            uint256[] memory words = new uint256[](24);
            words[isp / 8] = uint256(light(colour, cap)) << (32 * (isp % 8));
            _publish(ops[i], path[i], words);
            if (colour == 3) allowed = false;
            if (colour == 2 && cap < expected) expected = cap;
        }
        (bool ok, uint256 headroom) = grid.tsoHeadroom(market, 5, DAY0 + uint64(isp) * 900, UP);
        assertTrue(ok == allowed, "allowed");
        if (allowed) assertEq(headroom, expected, "minimum over the path");
    }
}
