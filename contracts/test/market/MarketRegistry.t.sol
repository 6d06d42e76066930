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

    event DispatcherSet(uint32 indexed marketId, address indexed previous, address indexed dispatcher);

    function _order() internal view returns (MarketRegistry.ActivationOrder memory) {
        return MarketRegistry.ActivationOrder({
            orderId: keccak256("order-1"), market: market, asset: 7, ispStart: DAY0 + 900, isps: 4, direction: 1,
            powerW: 2000, expiresAt: DAY0, resultId: 3, offerDigest: keccak256("offer")
        });
    }

    function test_theAuthorityNamesTheDispatcher() public {
        address d = vm.addr(0xD15);
        vm.expectEmit();
        emit DispatcherSet(market, address(0), d);
        vm.prank(ADMIN);
        markets.setDispatcher(market, d);
        assertEq(markets.dispatcher(market), d, "named");
        vm.expectEmit();
        emit DispatcherSet(market, d, address(0));
        vm.prank(ADMIN);
        markets.setDispatcher(market, address(0)); // cleared: no order of the market is executed
        assertEq(markets.dispatcher(market), address(0), "cleared");
    }

    function test_onlyTheAuthorityNamesTheDispatcher() public {
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryNotAuthority.selector, NOBODY));
        vm.prank(NOBODY);
        markets.setDispatcher(market, NOBODY);
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryUnknownMarket.selector, uint32(9)));
        vm.prank(ADMIN);
        markets.setDispatcher(9, NOBODY);
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryUnknownMarket.selector, uint32(9)));
        markets.dispatcher(9);
    }

    function _registrySeparator() internal view returns (bytes32) {
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = markets.eip712Domain();
        assertEq(keccak256(bytes(name)), keccak256("flexledger MarketRegistry"), "name");
        assertEq(keccak256(bytes(version)), keccak256("1"), "version");
        assertEq(verifying, address(markets), "verifying contract");
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes(name)), keccak256(bytes(version)), chainId, verifying
            )
        );
    }

    function _orderStructHash(MarketRegistry.ActivationOrder memory o) internal view returns (bytes32) {
        return keccak256(
            bytes.concat( // field by field, in two halves (one abi.encode of all eleven is too deep a stack)
                abi.encode(markets.ACTIVATION_ORDER_TYPEHASH(), o.orderId, o.market, o.asset, o.ispStart, o.isps),
                abi.encode(o.direction, o.powerW, o.expiresAt, o.resultId, o.offerDigest)
            )
        );
    }

    function test_activationOrderDigestIsEip712InTheRegistryDomain() public view {
        MarketRegistry.ActivationOrder memory o = _order();
        bytes32 digest = markets.activationOrderDigest(o);
        assertEq(digest, keccak256(abi.encodePacked("\x19\x01", _registrySeparator(), _orderStructHash(o))), "digest");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(0xD15, digest);
        assertEq(ecrecover(digest, v, r, s), vm.addr(0xD15), "a dispatcher's signature recovers");
        o.powerW += 1; // any field changed: another digest, the signature no longer names the dispatcher
        assertTrue(ecrecover(markets.activationOrderDigest(o), v, r, s) != vm.addr(0xD15), "bound to every field");
    }
}
