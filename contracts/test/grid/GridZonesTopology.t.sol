// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridZonesFixture} from "./GridZonesFixture.sol";
import {GridZones} from "../../src/grid/GridZones.sol";
import {RoleGated} from "../../src/access/RoleGated.sol";

contract GridZonesTopologyTest is GridZonesFixture {
    function test_treeRecordsAndPaths() public {
        buildTree();
        assertEq(zones.zoneCount(), 5, "five zones");
        (uint32 parent, uint8 depth, address operator, uint32 cap, uint32 staticUp, uint32 staticDown) = zones.zone(4);
        assertEq(parent, 2, "parent");
        assertEq(depth, 2, "depth");
        assertEq(operator, DSO1, "operator");
        assertEq(cap, 500_000, "asset cap");
        assertEq(staticUp, 0, "no static light up");
        assertEq(staticDown, 0, "no static light down");
        (parent, depth, operator,,,) = zones.zone(1);
        assertEq(parent, 0, "root has no parent");
        assertEq(depth, 0, "root depth");
        assertEq(operator, TSO, "root operated by the TSO");

        uint32[] memory path = zones.pathToRoot(5);
        assertEq(path.length, 4, "feeder at depth 3: four zones");
        assertEq(path[0], 5, "zone first");
        assertEq(path[1], 4, "substation");
        assertEq(path[2], 2, "perimeter");
        assertEq(path[3], 1, "root last");
        assertEq(zones.pathToRoot(1).length, 1, "a root's path is itself");

        assertTrue(zones.isInSubtree(5, 5), "own subtree");
        assertTrue(zones.isInSubtree(5, 2), "under perimeter 2");
        assertTrue(zones.isInSubtree(5, 1), "under the root");
        assertTrue(!zones.isInSubtree(5, 3), "not under perimeter 3");
        assertTrue(!zones.isInSubtree(2, 5), "an ancestor is not under its descendant");
        assertTrue(!zones.isInSubtree(5, 0), "0 is no zone");
        assertTrue(!zones.isInSubtree(5, 99), "unknown ancestor");
    }

    function test_addZoneEmits() public {
        vm.expectEmit();
        emit GridZones.ZoneAdded(1, 0, TSO, 0, 7);
        vm.prank(TSO);
        assertEq(zones.addZone(0, TSO, 7), 1, "first id is 1");
        vm.expectEmit();
        emit GridZones.ZoneAdded(2, 1, DSO1, 1, 1_000);
        vm.prank(TSO);
        zones.addZone(1, DSO1, 1_000);
    }

    function test_dsoOf() public {
        buildTree();
        (uint32 z, address dso) = zones.dsoOf(5);
        assertEq(z, 5, "the feeder's own operator is a DSO");
        assertEq(dso, DSO1, "DSO1");
        (z, dso) = zones.dsoOf(1);
        assertEq(z, 0, "no DSO above a TSO root");
        assertEq(dso, address(0), "none");
        // a TSO-operated sub-area between the root and a DSO perimeter
        vm.prank(TSO);
        uint32 sub = zones.addZone(1, TSO, 0);
        vm.prank(TSO);
        uint32 perim = zones.addZone(sub, DSO2, 10);
        vm.prank(DSO2);
        uint32 feeder = zones.addZone(perim, DSO2, 10);
        (z, dso) = zones.dsoOf(feeder);
        assertEq(z, feeder, "nearest DSO zone");
        (z, dso) = zones.dsoOf(sub);
        assertEq(z, 0, "a TSO sub-area has no DSO above it");
    }

    function test_dsoOfSkipsAnOperatorWhoLostTheRole() public {
        buildTree();
        vm.prank(ADMIN);
        roles.revokeCredential(DSO1, DSO_ROLE);
        (uint32 z, address dso) = zones.dsoOf(5);
        assertEq(z, 0, "nobody on the path holds DSO any more");
        assertEq(dso, address(0), "none");
    }

    function test_operatorPathCheck() public {
        buildTree();
        (bool onPath, uint32 cap) = zones.operatorPathCheck(5, DSO1);
        assertTrue(onPath, "DSO1 operates the feeder");
        assertEq(cap, 100_000, "feeder cap");
        (onPath,) = zones.operatorPathCheck(5, TSO);
        assertTrue(onPath, "the TSO operates the root of the path");
        (onPath,) = zones.operatorPathCheck(5, DSO2);
        assertTrue(!onPath, "DSO2 is elsewhere");
        (onPath,) = zones.operatorPathCheck(3, DSO1);
        assertTrue(!onPath, "DSO1 not on perimeter 3's path");
    }

    function test_rootNeedsATso() public {
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, DSO1, TSO_ROLE));
        vm.prank(DSO1);
        zones.addZone(0, DSO1, 0);
    }

    function test_rootIsOperatedByTheTsoWhoAddsIt() public {
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesInvalidOperator.selector, DSO1));
        vm.prank(TSO);
        zones.addZone(0, DSO1, 0);
    }

    function test_childOnlyByTheParentsOperator() public {
        buildTree();
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotOperator.selector, uint32(2), DSO2));
        vm.prank(DSO2);
        zones.addZone(2, DSO2, 0);
        // the root's operator cannot add under a DSO's perimeter either
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesNotOperator.selector, uint32(2), TSO));
        vm.prank(TSO);
        zones.addZone(2, TSO, 0);
    }

    function test_newOperatorNeedsARole() public {
        buildTree();
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesOperatorWithoutRole.selector, NOBODY));
        vm.prank(DSO1);
        zones.addZone(2, NOBODY, 0);
        grant(NOBODY, PROSUMER_ROLE);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesOperatorWithoutRole.selector, NOBODY));
        vm.prank(DSO1);
        zones.addZone(2, NOBODY, 0);
    }

    function test_parentOperatorWhoLostTheRoleCannotAdd() public {
        buildTree();
        vm.prank(ADMIN);
        roles.revokeCredential(DSO1, DSO_ROLE);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesOperatorWithoutRole.selector, DSO1));
        vm.prank(DSO1);
        zones.addZone(2, DSO2, 0);
    }

    function test_unknownOrSelfParent() public {
        buildTree();
        // 6 is the id the next zone would get: a zone cannot be its own parent
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesUnknownZone.selector, uint32(6)));
        vm.prank(DSO1);
        zones.addZone(6, DSO1, 0);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesUnknownZone.selector, uint32(99)));
        vm.prank(DSO1);
        zones.addZone(99, DSO1, 0);
    }

    function test_unknownZoneInViews() public {
        buildTree();
        bytes memory unknown = abi.encodeWithSelector(GridZones.GridZonesUnknownZone.selector, uint32(6));
        vm.expectRevert(unknown);
        zones.zone(6);
        vm.expectRevert(unknown);
        zones.pathToRoot(6);
        vm.expectRevert(unknown);
        zones.isInSubtree(6, 1);
        vm.expectRevert(unknown);
        zones.dsoOf(6);
        vm.expectRevert(unknown);
        zones.operatorPathCheck(6, DSO1);
        vm.expectRevert(abi.encodeWithSelector(GridZones.GridZonesUnknownZone.selector, uint32(0)));
        zones.zone(0);
    }

    function test_depthBound() public {
        buildTree(); // zone 5 is at depth 3
        uint32 parent = 5;
        for (uint256 depth = 4; depth <= zones.MAX_DEPTH(); ++depth) {
            vm.prank(DSO1);
            parent = zones.addZone(parent, DSO1, 0);
        }
        (, uint8 d,,,,) = zones.zone(parent);
        assertEq(d, zones.MAX_DEPTH(), "deepest zone");
        uint32[] memory path = zones.pathToRoot(parent);
        assertEq(path.length, uint256(zones.MAX_DEPTH()) + 1, "eight zones on the longest path");
        assertEq(path[path.length - 1], 1, "root last");
        assertEq(path[path.length - 2], 2, "perimeter before it");
        vm.expectRevert(
            abi.encodeWithSelector(GridZones.GridZonesTooDeep.selector, parent, uint8(zones.MAX_DEPTH() + 1))
        );
        vm.prank(DSO1);
        zones.addZone(parent, DSO1, 0);
    }

    /// Random trees: every zone's path follows its parents to a root, and isInSubtree agrees.
    function testFuzz_pathsFollowParents(uint256 seed) public {
        vm.prank(TSO);
        zones.addZone(0, TSO, 0);
        uint32[] memory parentOf = new uint32[](41);
        uint8[] memory depthOf = new uint8[](41);
        for (uint32 id = 2; id <= 40; ++id) {
            seed = uint256(keccak256(abi.encode(seed)));
            uint32 parent = uint32(1 + seed % (id - 1));
            if (depthOf[parent] == zones.MAX_DEPTH()) parent = 1;
            vm.prank(parent == 1 ? TSO : DSO1);
            assertEq(zones.addZone(parent, DSO1, 0), id, "ids in order");
            parentOf[id] = parent;
            depthOf[id] = depthOf[parent] + 1;
        }
        for (uint32 id = 1; id <= 40; ++id) {
            uint32[] memory path = zones.pathToRoot(id);
            assertEq(path.length, uint256(depthOf[id]) + 1, "path length = depth + 1");
            uint32 z = id;
            for (uint256 i = 0; i < path.length; ++i) {
                assertEq(path[i], z, "path follows the parents");
                assertTrue(zones.isInSubtree(id, z), "every zone on the path is an ancestor");
                z = parentOf[z];
            }
            assertEq(z, 0, "ends at a root");
            seed = uint256(keccak256(abi.encode(seed)));
            uint32 other = uint32(1 + seed % 40);
            bool onPath;
            for (uint256 i = 0; i < path.length; ++i) {
                if (path[i] == other) onPath = true;
            }
            assertTrue(zones.isInSubtree(id, other) == onPath, "isInSubtree iff on the path");
        }
    }
}
