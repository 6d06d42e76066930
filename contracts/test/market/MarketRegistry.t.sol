// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridZonesFixture} from "../grid/GridZonesFixture.sol";
import {MarketRegistry} from "../../src/market/MarketRegistry.sol";

contract MarketRegistryTest is GridZonesFixture {
    function test_marketIsCreatedAndRead() public view {
        MarketRegistry.MarketParams memory p = markets.marketParams(market);
        assertEq(p.ispSeconds, 900, "isp");
        assertEq(p.gateClosureSeconds, 3600, "gate");
        assertEq(markets.marketCount(), 1, "count");
        assertTrue(markets.isAligned(market, DAY0 + 900), "aligned");
        assertTrue(!markets.isAligned(market, DAY0 + 901), "not aligned");
        assertEq(markets.gateClosure(market, DAY0), DAY0 - 3600, "gate closure");
        assertEq(markets.dayStart(market, DAY0 + 5000), DAY0, "day start");
    }

    function test_onlyTheAuthorityCreatesMarkets() public {
        MarketRegistry.MarketParams memory p = marketParams(ISP, 0);
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryNotAuthority.selector, NOBODY));
        vm.prank(NOBODY);
        markets.createMarket(p);
    }

    function test_unknownMarket() public {
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryUnknownMarket.selector, uint32(9)));
        markets.marketParams(9);
    }

    function test_invalidParameters() public {
        MarketRegistry.MarketParams memory p = marketParams(ISP, 0);
        p.ispSeconds = 7; // does not divide a day
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryInvalidParameter.selector, "ispSeconds", 7));
        vm.prank(ADMIN);
        markets.createMarket(p);
        p = marketParams(ISP, 0);
        p.dayOffsetSeconds = 100; // not a multiple of the ISP
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryInvalidParameter.selector, "dayOffsetSeconds", 100));
        vm.prank(ADMIN);
        markets.createMarket(p);
        p = marketParams(ISP, 0);
        p.toleranceBps = 10_001;
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryInvalidParameter.selector, "toleranceBps", 10_001));
        vm.prank(ADMIN);
        markets.createMarket(p);
        p = marketParams(ISP, 0);
        p.challengeWindowSeconds = 0;
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryInvalidParameter.selector, "challengeWindowSeconds", 0));
        vm.prank(ADMIN);
        markets.createMarket(p);
    }

    function testFuzz_dayStartContainsT(uint64 t) public {
        MarketRegistry.MarketParams memory p = marketParams(ISP, 0);
        p.dayOffsetSeconds = 3600;
        vm.prank(ADMIN);
        uint32 m = markets.createMarket(p);
        t = uint64(bound(t, 3600, type(uint64).max - 2 days));
        uint64 start = markets.dayStart(m, t);
        assertTrue(start <= t && t < start + 1 days, "t in its day");
        assertEq((start - 3600) % 1 days, 0, "boundary at the offset");
    }
}
