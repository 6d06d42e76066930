// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridZonesFixture} from "./GridZonesFixture.sol";
import {GridZones} from "../../src/grid/GridZones.sol";

/// @notice Measures `tsoHeadroom` as another contract pays for it.
contract ZonesHeadroomProbe {
    /// @notice Gas of one `tsoHeadroom` call (gasleft() around the call), and its answer.
    function measure(GridZones zones, uint32 marketId, uint32 zoneId, uint64 ispStart, uint8 direction)
        external
        view
        returns (uint256 used, bool allowed, uint256 capabilityW)
    {
        uint256 before = gasleft();
        (allowed, capabilityW) = zones.tsoHeadroom(marketId, zoneId, ispStart, direction);
        used = before - gasleft();
    }
}

/// The benchmark's grid: TSO area 1 > DSO perimeter 2 > substation 3 > feeders 4..33, static
/// YELLOW 900 kW both ways on every DSO zone. Everything is set up in setUp(), so each test
/// function starts with every account and slot cold, as a fresh transaction does.
abstract contract LightsGasFixture is GridZonesFixture {
    uint256 internal constant FEEDERS = 30;
    uint32 internal constant FIRST_FEEDER = 4;
    ZonesHeadroomProbe internal probe;

    function setUp() public virtual override {
        super.setUp();
        probe = new ZonesHeadroomProbe();
        vm.prank(TSO);
        zones.addZone(0, TSO, 0);
        vm.prank(TSO);
        zones.addZone(1, DSO1, 1e9);
        vm.prank(DSO1);
        zones.addZone(2, DSO1, 1e9);
        for (uint256 i = 0; i < FEEDERS; ++i) {
            vm.prank(DSO1);
            zones.addZone(3, DSO1, 1e9);
        }
        for (uint32 z = 2; z < FIRST_FEEDER + FEEDERS; ++z) {
            setStatic(DSO1, z, UP, YELLOW, 900_000);
            setStatic(DSO1, z, DOWN, YELLOW, 900_000);
        }
    }

    /// A realistic day for feeder `i`: YELLOW 800 kW, an evening of tighter YELLOW, a RED hour down.
    function feederDay(uint256 i) internal pure returns (uint256[] memory) {
        uint256[] memory perIsp = new uint256[](192);
        for (uint256 d = 0; d < 2; ++d) {
            for (uint256 q = 0; q < 96; ++q) {
                uint32 l = light(YELLOW, 800_000);
                if (q >= 68 && q < 84) l = light(YELLOW, uint32(500_000 - 1000 * i));
                if (q >= 72 && q < 76 && d == 1) l = light(RED, 0);
                perIsp[96 * d + q] = l;
            }
        }
        return packDay(perIsp);
    }

    function feederList() internal pure returns (uint32[] memory list) {
        list = new uint32[](FEEDERS);
        for (uint256 i = 0; i < FEEDERS; ++i) {
            list[i] = uint32(FIRST_FEEDER + i);
        }
    }

    function allFeederWords() internal pure returns (uint256[] memory words) {
        words = new uint256[](FEEDERS * 24);
        for (uint256 i = 0; i < FEEDERS; ++i) {
            uint256[] memory day = feederDay(i);
            for (uint256 h = 0; h < 24; ++h) {
                words[24 * i + h] = day[h];
            }
        }
    }

    /// Intrinsic gas of a transaction carrying `data` (21,000 + 16 per non-zero byte + 4 per zero byte).
    function intrinsicGas(bytes memory data) internal pure returns (uint256 gas) {
        gas = 21_000;
        for (uint256 i = 0; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }
}

contract GridZonesPublishGasTest is LightsGasFixture {
    function test_gas_publishDayFor30Zones() public {
        uint32[] memory list = feederList();
        uint256[] memory words = allFeederWords();
        uint256 entries = FEEDERS * 96 * 2;
        uint256 intrinsic = intrinsicGas(abi.encodeCall(GridZones.publishDay, (market, DAY0, list, words)));
        vm.prank(DSO1);
        uint256 before = gasleft();
        zones.publishDay(market, DAY0, list, words);
        uint256 execution = before - gasleft();
        uint256 callee = vm.lastCallGas().gasTotalUsed;
        emit log_named_uint("publishDay 30 zones: execution gas (gasleft delta, with the caller's encoding)", execution);
        emit log_named_uint("publishDay 30 zones: execution gas of the call alone (lastCallGas)", callee);
        emit log_named_uint("publishDay 30 zones: intrinsic gas (21,000 + calldata)", intrinsic);
        emit log_named_uint("publishDay 30 zones: execution gas per entry", execution / entries);
        emit log_named_uint(
            "publishDay 30 zones: transaction gas per entry (estimate)", (execution + intrinsic) / entries
        );
        emit log_named_uint(
            "publishDay 30 zones: transaction gas per entry (lastCallGas + intrinsic)", (callee + intrinsic) / entries
        );
        assertLe((execution + intrinsic) / entries, 3_000, "at most 3,000 gas per entry");
        (uint8 colour,) = zones.effectiveLight(market, FIRST_FEEDER, DAY0 + 73 * 900, DOWN);
        assertEq(colour, RED, "published");
    }

    function test_gas_republishOpenDay() public {
        uint32[] memory list = feederList();
        uint256[] memory words = allFeederWords();
        vm.prank(DSO1);
        zones.publishDay(market, DAY0, list, words);
        for (uint256 i = 0; i < words.length; ++i) {
            words[i] ^= 1; // every word changes (capability - 1 W or + 1 W in lane 0)
        }
        vm.prank(DSO1);
        uint256 before = gasleft();
        zones.publishDay(market, DAY0, list, words);
        uint256 execution = before - gasleft();
        emit log_named_uint("republish (slots already written), execution gas per entry", execution / (FEEDERS * 192));
    }
}

/// The benchmark's case: the DSO published the day for the perimeter, the substation and the
/// feeders; the TSO area (root) carries no lights.
contract GridZonesHeadroomGasPublishedTest is LightsGasFixture {
    function setUp() public override {
        super.setUp();
        vm.prank(DSO1);
        zones.publishDay(market, DAY0, feederList(), allFeederWords());
        uint32[] memory upper = new uint32[](2);
        (upper[0], upper[1]) = (2, 3);
        uint256[] memory day = dayWords(light(YELLOW, 700_000), light(YELLOW, 700_000));
        uint256[] memory words = new uint256[](48);
        for (uint256 h = 0; h < 24; ++h) {
            (words[h], words[24 + h]) = (day[h], day[h]);
        }
        vm.prank(DSO1);
        zones.publishDay(market, DAY0, upper, words);
    }

    function test_gas_tsoHeadroomDepth4Cold() public {
        (uint256 used, bool allowed, uint256 cap) = probe.measure(zones, market, FIRST_FEEDER, DAY0 + 70 * 900, UP);
        emit log_named_uint("tsoHeadroom depth 4, cold, three levels published", used);
        assertTrue(allowed, "yellow");
        assertEq(cap, 500_000, "the feeder's evening capability is the minimum");
        assertLe(used, 15_000, "at most 15,000 gas");
    }
}

/// Static lights only: every level's (empty) light word and every ancestor's zone word are read.
contract GridZonesHeadroomGasStaticTest is LightsGasFixture {
    function test_gas_tsoHeadroomDepth4ColdStaticOnly() public {
        (uint256 used, bool allowed, uint256 cap) = probe.measure(zones, market, FIRST_FEEDER, DAY0 + 70 * 900, UP);
        emit log_named_uint("tsoHeadroom depth 4, cold, static lights only", used);
        assertTrue(allowed, "yellow");
        assertEq(cap, 900_000, "the static capability");
        assertLe(used, 15_000, "at most 15,000 gas");
    }
}

/// The feeders published, the substation and the perimeter static only: the worst order for the
/// view (the leaf has dynamic lights, so each ancestor's empty light word is read before its zone word).
contract GridZonesHeadroomGasLeafOnlyTest is LightsGasFixture {
    function setUp() public override {
        super.setUp();
        vm.prank(DSO1);
        zones.publishDay(market, DAY0, feederList(), allFeederWords());
    }

    function test_gas_tsoHeadroomDepth4ColdLeafPublishedOnly() public {
        (uint256 used,, uint256 cap) = probe.measure(zones, market, FIRST_FEEDER, DAY0 + 70 * 900, UP);
        emit log_named_uint("tsoHeadroom depth 4, cold, only the feeder published", used);
        assertEq(cap, 500_000, "the feeder's evening capability");
        assertLe(used, 18_500, "mixed case: six cold slots (reported; above the 15,000 target)");
    }
}

/// The substation and the perimeter published, the feeder static only.
contract GridZonesHeadroomGasAncestorsOnlyTest is LightsGasFixture {
    function setUp() public override {
        super.setUp();
        uint32[] memory upper = new uint32[](2);
        (upper[0], upper[1]) = (2, 3);
        uint256[] memory day = dayWords(light(YELLOW, 700_000), light(YELLOW, 700_000));
        uint256[] memory words = new uint256[](48);
        for (uint256 h = 0; h < 24; ++h) {
            (words[h], words[24 + h]) = (day[h], day[h]);
        }
        vm.prank(DSO1);
        zones.publishDay(market, DAY0, upper, words);
    }

    function test_gas_tsoHeadroomDepth4ColdAncestorsPublishedOnly() public {
        (uint256 used,, uint256 cap) = probe.measure(zones, market, FIRST_FEEDER, DAY0 + 70 * 900, UP);
        emit log_named_uint("tsoHeadroom depth 4, cold, only the substation and perimeter published", used);
        assertEq(cap, 700_000, "the substation's capability");
        assertLe(used, 16_500, "mixed case: five cold slots (reported; above the 15,000 target)");
    }
}
