// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {OrderBookFixture} from "../market/OrderBookFixture.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {AssetRegistry} from "../../src/grid/AssetRegistry.sol";
import {RoleGated} from "../../src/access/RoleGated.sol";

/// Regression tests of the red team's authorization findings (RT-10, RT-11, RT-12 and the buyer
/// kind), asserting the defence. OrderBookFixture: asset1 is owner's, mapped by DSO1 in feeder 5
/// (under DSO1's perimeter 2); DSO2 operates perimeter 3; now is DAY0 - 1 day.
contract RedteamAuthRegressionTest is OrderBookFixture {
    function portfolioOf(uint64 assetId) internal returns (uint32 p) {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        bytes32 digest = assets.consentDigest(aggregator, assetId, assets.consentNonce(assetId), deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_KEY, digest);
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = abi.encodePacked(r, s, v);
        vm.prank(aggregator);
        p = assets.createPortfolio(5, assetIds(assetId), sigs, deadline);
    }

    function statusOf(uint64 assetId) internal view returns (AssetRegistry.Status status) {
        (,, status,,,,,) = assets.asset(assetId);
    }

    // ------------------------------------------------------------------------------- RT-10

    /// RT-10: a revoked aggregator's portfolio offer is refused by the book (even relayed by
    /// itself), `suspendUncredentialed` suspends its members, and no DSO reinstates them while the
    /// aggregator has no credential and they are still its members.
    function test_RT10_revokedAggregatorCannotSellItsPortfolio() public {
        uint32 p = portfolioOf(asset1);
        vm.prank(ADMIN);
        roles.revokeCredential(aggregator, AGGREGATOR_ROLE);

        OrderBook.Offer memory o = assetOffer(0, DAY0 + 8 hours, 1);
        (o.asset, o.portfolio) = (0, p);
        bytes memory sig = sign(AGGREGATOR_KEY, o);
        assertEq(relay(aggregator, o, sig), 0, "refused when it relays itself");
        assertEq(relay(AGG, o, sig), 0, "refused when another aggregator relays it");
        (OrderBook.Offer[] memory os, bytes[] memory sigs) = single(o, sig);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, aggregator, AGGREGATOR_ROLE));
        vm.prank(AGG);
        submit(book, os, sigs, true);

        assertEq(assets.suspendUncredentialed(assetIds(asset1)), 1, "its member is suspended");
        assertEq(uint256(statusOf(asset1)), uint256(AssetRegistry.Status.SUSPENDED), "suspended");
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetAggregatorWithoutRole.selector, aggregator));
        vm.prank(DSO1);
        assets.reinstateAsset(asset1);
        // the owner leaves the portfolio: its own credential is enough again
        vm.prank(owner);
        assets.removeFromPortfolio(asset1);
        vm.prank(DSO1);
        assets.reinstateAsset(asset1);
        assertEq(uint256(statusOf(asset1)), uint256(AssetRegistry.Status.ACTIVE), "reinstated on its own");
    }

    /// RT-10 sibling: a credential judged at a past time: valid before its revocation, not from it.
    function test_RT10_credentialJudgedAtATime() public {
        uint64 before = uint64(block.timestamp);
        vm.warp(block.timestamp + 100);
        vm.prank(ADMIN);
        roles.revokeCredential(aggregator, AGGREGATOR_ROLE);
        assertTrue(roles.hasMarketRoleAt(aggregator, AGGREGATOR_ROLE, before), "held before the revocation");
        assertTrue(!roles.hasMarketRoleAt(aggregator, AGGREGATOR_ROLE, uint64(block.timestamp)), "not from it");
        assertEq(roles.revokedAt(aggregator, AGGREGATOR_ROLE), uint64(block.timestamp), "when");
    }

    /// A renewal of a credential held now continues it: the past stays valid; a re-issue after a
    /// revocation counts from its own start only.
    function test_RT10_renewalKeepsThePast() public {
        (uint64 from,,,) = roles.credentialOf(aggregator, AGGREGATOR_ROLE);
        uint64 t0 = uint64(block.timestamp);
        vm.warp(t0 + 100);
        vm.prank(ADMIN);
        roles.issueCredential(aggregator, AGGREGATOR_ROLE, t0 + 100, type(uint64).max, bytes32(uint256(1)));
        (uint64 renewedFrom,,,) = roles.credentialOf(aggregator, AGGREGATOR_ROLE);
        assertEq(renewedFrom, from, "renewal keeps the start");
        assertTrue(roles.hasMarketRoleAt(aggregator, AGGREGATOR_ROLE, t0), "held before the renewal");
        vm.prank(ADMIN);
        roles.revokeCredential(aggregator, AGGREGATOR_ROLE);
        vm.warp(t0 + 200);
        vm.prank(ADMIN);
        roles.issueCredential(aggregator, AGGREGATOR_ROLE, t0 + 200, type(uint64).max, bytes32(uint256(2)));
        assertTrue(!roles.hasMarketRoleAt(aggregator, AGGREGATOR_ROLE, t0 + 150), "the revoked gap stays revoked");
        assertTrue(roles.hasMarketRole(aggregator, AGGREGATOR_ROLE), "held again now");
    }

    // ------------------------------------------------------------------------------- RT-11

    /// RT-11a: DSO2 cannot re-map DSO1's asset into its own zone (nor raise its power, nor lift
    /// DSO1's suspension); DSO1 re-mapping it keeps it suspended.
    function test_RT11_anotherDsoCannotRemapAnAsset() public {
        vm.prank(DSO1);
        assets.suspendAsset(asset1);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetNotZoneDso.selector, asset1, uint32(5), DSO2));
        vm.prank(DSO2);
        assets.mapAsset(asset1, 3, 10 * UP_W, DOWN_W, market);
        vm.prank(DSO1);
        assets.mapAsset(asset1, 5, UP_W / 2, DOWN_W, market); // DSO1 may re-prequalify within its part of the grid
        (, uint32 zoneId, AssetRegistry.Status status,,,, uint32 upW,) = assets.asset(asset1);
        assertEq(zoneId, 5, "still DSO1's zone");
        assertEq(uint256(status), uint256(AssetRegistry.Status.SUSPENDED), "a re-mapping lifts no suspension");
        assertEq(upW, UP_W / 2, "DSO1's new power");
    }

    /// RT-11 hand-over: a move between DSOs needs both: DSO1 hands asset1 over to zone 3, then
    /// DSO2 maps it there; the suspension stays, and DSO1 no longer manages it.
    function test_RT11_handOverBetweenDsos() public {
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetNotZoneDso.selector, asset1, uint32(5), DSO2));
        vm.prank(DSO2); // the receiving DSO cannot hand it to itself
        assets.handOverAsset(asset1, 3);
        vm.prank(DSO1);
        assets.suspendAsset(asset1);
        vm.prank(DSO1);
        assets.handOverAsset(asset1, 3);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetNotZoneDso.selector, asset1, uint32(4), DSO2));
        vm.prank(DSO2); // only into the zone it was handed over to
        assets.mapAsset(asset1, 4, UP_W, DOWN_W, market);
        vm.prank(DSO2);
        assets.mapAsset(asset1, 3, UP_W, DOWN_W, market);
        (, uint32 zoneId, AssetRegistry.Status status,,,,,) = assets.asset(asset1);
        assertEq(zoneId, 3, "moved");
        assertEq(uint256(status), uint256(AssetRegistry.Status.SUSPENDED), "still suspended");
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetNotZoneDso.selector, asset1, uint32(3), DSO1));
        vm.prank(DSO1);
        assets.reinstateAsset(asset1);
        vm.prank(DSO2); // the hand-over was used once
        assets.mapAsset(asset1, 3, UP_W / 2, DOWN_W, market);
        vm.prank(DSO2);
        assets.reinstateAsset(asset1);
    }

    /// RT-11b: re-mapping does not reactivate an asset whose owner lost its credential, and a
    /// pending asset of such an owner is not activated by its first mapping.
    function test_RT11_remapDoesNotReactivateUncredentialedOwner() public {
        uint64 pending = registerWithMeter(assets, owner, METER2, 2);
        vm.prank(ADMIN);
        roles.revokeCredential(owner, PROSUMER_ROLE);
        assertEq(assets.suspendUncredentialed(assetIds(asset1)), 1, "suspended");
        vm.prank(DSO1);
        assets.mapAsset(asset1, 5, UP_W, DOWN_W, market);
        assertEq(uint256(statusOf(asset1)), uint256(AssetRegistry.Status.SUSPENDED), "still suspended");
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 8 hours, 1);
        assertEq(relay(owner, o, sign(OWNER_KEY, o)), 0, "the revoked owner's offer is refused");
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetOwnerWithoutRole.selector, owner));
        vm.prank(DSO1);
        assets.mapAsset(pending, 5, UP_W, DOWN_W, market);
    }

    /// RT-11 fuzz: whoever calls mapAsset on a mapped asset, it succeeds only for a DSO operating
    /// the asset's current zone's path, never changes its status, and never moves it out of the
    /// part of the grid its DSO operates without a hand-over.
    /// forge-config: default.fuzz.runs = 10000
    /// forge-config: quick.fuzz.runs = 1000
    function testFuzz_RT11_mapAssetCallers(uint8 callerPick, uint8 zonePick, bool suspended) public {
        address[5] memory callers = [DSO1, DSO2, TSO, AGG, owner];
        address caller = callers[callerPick % 5];
        uint32 zoneId = uint32(zonePick % 5) + 1;
        if (suspended) {
            vm.prank(DSO1);
            assets.suspendAsset(asset1);
        }
        AssetRegistry.Status before = statusOf(asset1);
        vm.prank(caller);
        try assets.mapAsset(asset1, zoneId, UP_W, DOWN_W, market) {
            (bool onCurrent,) = zones.operatorPathCheck(5, caller);
            (bool onNew,) = zones.operatorPathCheck(zoneId, caller);
            assertTrue(onCurrent && onNew, "only a DSO of both the old and the new zone re-maps");
            assertTrue(roles.hasMarketRole(caller, DSO_ROLE), "a DSO");
        } catch {}
        assertEq(uint256(statusOf(asset1)), uint256(before), "the status never changes");
    }

    // ------------------------------------------------------------------------------- RT-12

    /// RT-12: registering needs the meter's signature naming the owner: a squatter cannot take
    /// another's meter (with its own signature, or replaying the owner's), the owner can.
    function test_RT12_meterSquattingRefused() public {
        address victimMeter = METER2;
        uint64 deadline = uint64(block.timestamp + 1 hours);
        bytes memory ownersSig = meterSignature(assets, victimMeter, owner, 2, deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(
            OWNER3_KEY, assets.meterRegistrationDigest(victimMeter, owner3, 2, assets.meterNonce(victimMeter), deadline)
        );
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetMeterSignatureInvalid.selector, victimMeter, owner3));
        vm.prank(owner3);
        assets.registerAsset(victimMeter, 2, deadline, abi.encodePacked(r, s, v));
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetMeterSignatureInvalid.selector, victimMeter, owner3));
        vm.prank(owner3); // the front-runner copies the owner's transaction
        assets.registerAsset(victimMeter, 2, deadline, ownersSig);
        vm.prank(owner);
        uint64 id = assets.registerAsset(victimMeter, 2, deadline, ownersSig);
        (address assetOwner,,,,, address meter,,) = assets.asset(id);
        assertEq(assetOwner, owner, "the meter's owner owns it");
        assertEq(meter, victimMeter, "meter");
    }

    /// RT-12 deregistration: the owner frees its meter (not while in a portfolio); a DSO frees a
    /// pending one; nobody else can; a used meter signature never registers it again.
    function test_RT12_deregistrationFreesTheMeter() public {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        bytes memory sig = meterSignature(assets, METER2, owner2, 2, deadline);
        vm.prank(owner2);
        uint64 id = assets.registerAsset(METER2, 2, deadline, sig);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetNotAuthorized.selector, owner3));
        vm.prank(owner3);
        assets.deregisterAsset(id);
        vm.prank(DSO2); // any DSO may turn down a pending registration
        assets.deregisterAsset(id);
        assertEq(assets.assetOfMeter(METER2), 0, "the meter is free");
        assertEq(uint256(statusOf(id)), uint256(AssetRegistry.Status.NONE), "deregistered, still readable");
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetMeterSignatureInvalid.selector, METER2, owner2));
        vm.prank(owner2); // the old signature is spent
        assets.registerAsset(METER2, 2, deadline, sig);
        uint64 again = registerWithMeter(assets, owner2, METER2, 2);
        assertEq(assets.assetOfMeter(METER2), again, "registered anew with a fresh signature");

        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetNotAuthorized.selector, DSO1));
        vm.prank(DSO1); // a mapped asset is its owner's to deregister
        assets.deregisterAsset(asset1);
        portfolioOf(asset1);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetInPortfolio.selector, asset1, uint32(1)));
        vm.prank(owner);
        assets.deregisterAsset(asset1);
        vm.prank(owner);
        assets.removeFromPortfolio(asset1);
        vm.prank(owner);
        assets.deregisterAsset(asset1);
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 8 hours, 1);
        assertEq(relay(owner, o, sign(OWNER_KEY, o)), 0, "a deregistered asset sells nothing");
    }

    // ------------------------------------------------------------------- buyer kind (lower)

    /// Lower finding: the TSO, holding a DSO credential too, buys through its area (a root) as
    /// the TSO, so the lights bind its requests; the DSO of a zone buys there as the DSO.
    function test_dualRoleBuyerBuysAsTso() public {
        grant(TSO, DSO_ROLE);
        mint(TSO, 1e12);
        vm.prank(TSO);
        token.approve(address(book), type(uint256).max);
        OrderBook.RequestParams memory p = OrderBook.RequestParams({
            market: market,
            zone: 5, // DSO1's feeder, under the TSO's area
            start: DAY0 + 8 hours,
            isps: 1,
            direction: UP,
            powerW: 1_000,
            maxPrice: 1e6,
            product: 0,
            purpose: 0
        });
        vm.prank(TSO);
        uint64 id = book.postRequest(p);
        assertEq(uint256(book.request(id).kind), uint256(OrderBook.BuyerKind.TSO), "buys as the TSO");
        grant(buyer, TSO_ROLE); // the DSO operating zone 6 (under the root) with a TSO credential too
        mint(buyer, 1e12);
        vm.prank(buyer);
        token.approve(address(book), type(uint256).max);
        p.zone = 6;
        vm.prank(buyer);
        id = book.postRequest(p);
        assertEq(uint256(book.request(id).kind), uint256(OrderBook.BuyerKind.DSO), "its own zone: as the DSO");
    }
}
