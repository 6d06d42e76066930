// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {GridZonesFixture} from "./GridZonesFixture.sol";
import {AssetRegistry} from "../../src/grid/AssetRegistry.sol";
import {RoleGated} from "../../src/access/RoleGated.sol";

contract AssetRegistryTest is GridZonesFixture {
    AssetRegistry internal assets;
    uint256 internal constant OWNER_KEY = 0x0A11CE;
    uint256 internal constant OWNER2_KEY = 0x0B0B;
    address internal owner;
    address internal owner2;
    address internal METER1;
    address internal METER2;
    address internal METER3;

    function setUp() public override {
        super.setUp();
        buildTree(); // feeder 5 under substation 4 under perimeter 2 (DSO1); perimeter 3 (DSO2)
        assets = new AssetRegistry(roles, zones);
        owner = vm.addr(OWNER_KEY);
        owner2 = vm.addr(OWNER2_KEY);
        (METER1, METER2, METER3) = (keyedMeter(0x3E1), keyedMeter(0x3E2), keyedMeter(0x3E3));
        vm.startPrank(ADMIN);
        roles.issueCredential(owner, keccak256("PROSUMER"), 0, type(uint64).max, 0);
        roles.issueCredential(owner2, keccak256("PROSUMER"), 0, type(uint64).max, 0);
        roles.issueCredential(AGG, keccak256("AGGREGATOR"), 0, type(uint64).max, 0);
        roles.issueCredential(METER1, keccak256("METER"), 0, type(uint64).max, 0);
        roles.issueCredential(METER2, keccak256("METER"), 0, type(uint64).max, 0);
        roles.issueCredential(METER3, keccak256("METER"), 0, type(uint64).max, 0);
        vm.stopPrank();
    }

    function _registerAndMap(address who, address meter, uint32 zone) internal returns (uint64 id) {
        id = registerWithMeter(assets, who, meter, 2);
        vm.prank(zone == 3 ? DSO2 : DSO1);
        assets.mapAsset(id, zone, 10_000, 8_000, market);
    }

    function _consent(uint256 key, uint64 id, uint64 deadline) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, assets.consentDigest(AGG, id, assets.consentNonce(id), deadline));
        return abi.encodePacked(r, s, v);
    }

    function test_registerPendingThenMapped() public {
        uint64 id = registerWithMeter(assets, owner, METER1, 2);
        (address o, uint32 zone, AssetRegistry.Status status,,, address meter,,) = assets.asset(id);
        assertEq(o, owner, "owner");
        assertEq(zone, 0, "no zone yet");
        assertTrue(status == AssetRegistry.Status.PENDING, "pending");
        assertEq(meter, METER1, "meter");
        vm.prank(DSO1);
        assets.mapAsset(id, 5, 10_000, 8_000, market); // DSO1 operates feeder 5's path
        uint32 up;
        uint32 down;
        (, zone, status,,,, up, down) = assets.asset(id);
        assertEq(zone, 5, "mapped");
        assertTrue(status == AssetRegistry.Status.ACTIVE, "active");
        assertEq(up, 10_000, "up");
        assertEq(down, 8_000, "down");
    }

    function test_registerBadInputs() public {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        bytes memory sig = meterSignature(assets, METER1, NOBODY, 1, deadline);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetOwnerWithoutRole.selector, NOBODY));
        vm.prank(NOBODY);
        assets.registerAsset(METER1, 1, deadline, sig);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetMeterWithoutRole.selector, NOBODY));
        vm.prank(owner);
        assets.registerAsset(NOBODY, 1, deadline, sig);
        registerWithMeter(assets, owner, METER1, 1);
        sig = meterSignature(assets, METER1, owner2, 1, deadline);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetMeterTaken.selector, METER1, uint64(1)));
        vm.prank(owner2);
        assets.registerAsset(METER1, 1, deadline, sig);
    }

    function test_mappedByADsoOfAnotherZone() public {
        uint64 id = registerWithMeter(assets, owner, METER1, 1);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetNotZoneDso.selector, id, uint32(5), DSO2));
        vm.prank(DSO2);
        assets.mapAsset(id, 5, 1, 1, market);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, TSO, keccak256("DSO")));
        vm.prank(TSO); // operates the root, but is not a DSO
        assets.mapAsset(id, 5, 1, 1, market);
    }

    function test_powerAboveTheZoneLimitOrZero() public {
        uint64 id = registerWithMeter(assets, owner, METER1, 1);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetPowerAboveZoneLimit.selector, id, uint32(100_001), uint32(100_000)));
        vm.prank(DSO1);
        assets.mapAsset(id, 5, 100_001, 0, market);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetZeroPower.selector, id));
        vm.prank(DSO1);
        assets.mapAsset(id, 5, 0, 0, market);
    }

    function test_suspendAndReinstate() public {
        uint64 id = _registerAndMap(owner, METER1, 5);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetNotZoneDso.selector, id, uint32(5), DSO2));
        vm.prank(DSO2);
        assets.suspendAsset(id);
        vm.prank(DSO1);
        assets.suspendAsset(id);
        (,, AssetRegistry.Status status,,,,,) = assets.asset(id);
        assertTrue(status == AssetRegistry.Status.SUSPENDED, "suspended");
        vm.prank(DSO1);
        assets.reinstateAsset(id);
        (,, status,,,,,) = assets.asset(id);
        assertTrue(status == AssetRegistry.Status.ACTIVE, "active again");
    }

    function test_portfolioWithConsents() public {
        uint64 a = _registerAndMap(owner, METER1, 5);
        uint64 b = _registerAndMap(owner2, METER2, 5);
        uint64 deadline = uint64(block.timestamp + 1 hours);
        uint64[] memory ids = new uint64[](2);
        (ids[0], ids[1]) = (a, b);
        bytes[] memory sigs = new bytes[](2);
        (sigs[0], sigs[1]) = (_consent(OWNER_KEY, a, deadline), _consent(OWNER2_KEY, b, deadline));
        vm.prank(AGG);
        uint32 p = assets.createPortfolio(5, ids, sigs, deadline);
        (address agg, uint32 zone, uint64[] memory members) = assets.portfolio(p);
        assertEq(agg, AGG, "aggregator");
        assertEq(zone, 5, "zone");
        assertEq(members.length, 2, "two members");
        vm.prank(owner2); // an owner may always leave
        assets.removeFromPortfolio(b);
        (,, members) = assets.portfolio(p);
        assertEq(members.length, 1, "one left");
    }

    function test_portfolioSpanningZones() public {
        uint64 a = _registerAndMap(owner, METER1, 5);
        uint64 b = _registerAndMap(owner2, METER2, 4);
        uint64 deadline = uint64(block.timestamp + 1 hours);
        uint64[] memory ids = new uint64[](2);
        (ids[0], ids[1]) = (a, b);
        bytes[] memory sigs = new bytes[](2);
        (sigs[0], sigs[1]) = (_consent(OWNER_KEY, a, deadline), _consent(OWNER2_KEY, b, deadline));
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetOutsideZone.selector, b, uint32(4), uint32(5)));
        vm.prank(AGG);
        assets.createPortfolio(5, ids, sigs, deadline);
    }

    function test_portfolioWithoutConsent() public {
        uint64 a = _registerAndMap(owner, METER1, 5);
        uint64 deadline = uint64(block.timestamp + 1 hours);
        uint64[] memory ids = new uint64[](1);
        ids[0] = a;
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = _consent(OWNER2_KEY, a, deadline); // signed by someone else
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetConsentInvalid.selector, a, owner));
        vm.prank(AGG);
        assets.createPortfolio(5, ids, sigs, deadline);
        sigs[0] = hex"";
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetConsentInvalid.selector, a, owner));
        vm.prank(AGG);
        assets.createPortfolio(5, ids, sigs, deadline);
    }

    function test_consentIsGoodOnceAndExpires() public {
        uint64 a = _registerAndMap(owner, METER1, 5);
        uint64 deadline = uint64(block.timestamp + 1 hours);
        uint64[] memory ids = new uint64[](1);
        ids[0] = a;
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = _consent(OWNER_KEY, a, deadline);
        vm.prank(AGG);
        assets.createPortfolio(5, ids, sigs, deadline);
        vm.prank(AGG);
        assets.removeFromPortfolio(a);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetConsentInvalid.selector, a, owner));
        vm.prank(AGG); // the same consent again: its nonce is used
        assets.createPortfolio(5, ids, sigs, deadline);
        vm.warp(deadline + 1);
        sigs[0] = _consent(OWNER_KEY, a, deadline);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetConsentExpired.selector, deadline));
        vm.prank(AGG);
        assets.createPortfolio(5, ids, sigs, deadline);
    }

    function test_signedRegistrationRelayedByAnAggregator() public {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        address[] memory owners = new address[](2);
        address[] memory meters = new address[](2);
        uint8[] memory types = new uint8[](2);
        bytes[] memory sigs = new bytes[](2);
        (owners[0], owners[1], meters[0], meters[1], types[0], types[1]) = (owner, owner2, METER1, METER2, 1, 2);
        uint256[2] memory signingKeys = [OWNER_KEY, OWNER2_KEY];
        for (uint256 i = 0; i < 2; ++i) {
            bytes32 digest = _registrationDigest(owners[i], meters[i], types[i], deadline);
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(signingKeys[i], digest);
            sigs[i] = abi.encodePacked(r, s, v);
        }
        bytes[] memory meterSigs = new bytes[](2);
        for (uint256 i = 0; i < 2; ++i) {
            meterSigs[i] = meterSignature(assets, meters[i], owners[i], types[i], deadline);
        }
        vm.prank(AGG);
        uint64 first = assets.registerAssetsSigned(owners, meters, types, sigs, meterSigs, deadline);
        (address o,,,,,,,) = assets.asset(first + 1);
        assertEq(o, owner2, "owned by its signer, not the relayer");
        meters[0] = METER3; // a signature for another meter does not fit
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetRegistrationInvalid.selector, owner, METER3));
        vm.prank(AGG);
        assets.registerAssetsSigned(owners, meters, types, sigs, meterSigs, deadline);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, owner, keccak256("AGGREGATOR")));
        vm.prank(owner);
        assets.registerAssetsSigned(owners, meters, types, sigs, meterSigs, deadline);
    }

    function _registrationDigest(address o, address meter, uint8 kind, uint64 deadline) internal view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(assets.REGISTRATION_TYPEHASH(), o, meter, kind, deadline));
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = assets.eip712Domain();
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256(bytes(name)),
                keccak256(bytes(version)),
                chainId,
                verifying
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    /// A portfolio of AGG founded with `ids` (each owner's consent signed with `keys`).
    function _portfolio(uint64[] memory ids, uint256[] memory keys) internal returns (uint32 p) {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        bytes[] memory sigs = new bytes[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            sigs[i] = _consent(keys[i], ids[i], deadline);
        }
        vm.prank(AGG);
        p = assets.createPortfolio(5, ids, sigs, deadline);
    }

    /// Assets a, b, c of owner, owner2, owner in feeder 5, in a portfolio of AGG in that order.
    function _threeMemberPortfolio() internal returns (uint32 p, uint64 a, uint64 b, uint64 c) {
        a = _registerAndMap(owner, METER1, 5);
        b = _registerAndMap(owner2, METER2, 5);
        c = _registerAndMap(owner, METER3, 5);
        uint64[] memory ids = new uint64[](3);
        (ids[0], ids[1], ids[2]) = (a, b, c);
        uint256[] memory keys = new uint256[](3);
        (keys[0], keys[1], keys[2]) = (OWNER_KEY, OWNER2_KEY, OWNER_KEY);
        p = _portfolio(ids, keys);
    }

    function _assertMembers(uint64[] memory actual, uint64[] memory expected, string memory what) internal pure {
        assertEq(actual.length, expected.length, what);
        for (uint256 i = 0; i < expected.length; ++i) {
            assertEq(actual[i], expected[i], what);
        }
    }

    function test_membersAt_beforeAndAfterARemoval() public {
        (uint32 p, uint64 a, uint64 b, uint64 c) = _threeMemberPortfolio();
        uint64 founded = uint64(block.timestamp);
        _assertMembers(assets.membersAt(p, founded), assetIds(a, b, c), "founders, in order");
        assertEq(assets.membersAt(p, founded - 1).length, 0, "nobody before it was founded");
        uint64 t1 = founded + 100;
        vm.warp(t1);
        vm.expectEmit();
        emit AssetRegistry.PortfolioAssetRemoved(p, b, owner2);
        vm.prank(owner2);
        assets.removeFromPortfolio(b);
        _assertMembers(assets.membersAt(p, t1 - 1), assetIds(a, b, c), "b still a member the second before it left");
        _assertMembers(assets.membersAt(p, t1), assetIds(a, c), "a member that left at t is not one at t");
        _assertMembers(assets.membersAt(p, t1 + 1), assetIds(a, c), "nor after");
        uint64 t2 = t1 + 50;
        vm.warp(t2);
        vm.prank(AGG); // the aggregator may take a member out too
        assets.removeFromPortfolio(a);
        _assertMembers(assets.membersAt(p, t1 - 1), assetIds(a, b, c), "the past is kept");
        _assertMembers(assets.membersAt(p, t2 - 1), assetIds(a, c), "between the removals");
        _assertMembers(assets.membersAt(p, t2), assetIds(c), "after both");
        _assertMembers(assets.membersAt(p, type(uint64).max), assetIds(c), "far ahead: the current members");
        (,, uint64[] memory now_) = assets.portfolio(p);
        _assertMembers(now_, assetIds(c), "portfolio(): the current members");
        (,,,, uint32 portfolioId,,,) = assets.asset(a);
        assertEq(portfolioId, 0, "a is in no portfolio");
    }

    function test_membersAt_leavingThenJoiningAnotherPortfolio() public {
        (uint32 p, uint64 a, uint64 b, uint64 c) = _threeMemberPortfolio();
        uint64 left = uint64(block.timestamp) + 10;
        vm.warp(left);
        vm.prank(owner2);
        assets.removeFromPortfolio(b);
        uint256[] memory keys = new uint256[](1);
        keys[0] = OWNER2_KEY;
        uint32 q = _portfolio(assetIds(b), keys);
        _assertMembers(assets.membersAt(p, left - 1), assetIds(a, b, c), "b counts in p before it left");
        _assertMembers(assets.membersAt(p, left), assetIds(a, c), "not after");
        _assertMembers(assets.membersAt(q, left), assetIds(b), "b is q's");
        (,,,, uint32 portfolioId,,,) = assets.asset(b);
        assertEq(portfolioId, q, "b's portfolio");
        vm.prank(owner);
        assets.removeFromPortfolio(a);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetNotPortfolioMember.selector, uint32(0), a));
        vm.prank(owner);
        assets.removeFromPortfolio(a); // once more: it left, it is in no portfolio
        _assertMembers(assets.membersAt(p, left), assetIds(c), "a left at the same second as b");
    }

    function test_membersAt_unknownPortfolio() public {
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetUnknownPortfolio.selector, uint32(1)));
        assets.membersAt(1, uint64(block.timestamp));
        (uint32 p,,,) = _threeMemberPortfolio();
        assertEq(assets.membersAt(p, uint64(block.timestamp)).length, 3, "known now");
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetUnknownPortfolio.selector, p + 1));
        assets.membersAt(p + 1, uint64(block.timestamp));
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetUnknownPortfolio.selector, p + 1));
        assets.portfolio(p + 1);
    }

    function test_aggregatorOf() public {
        assertEq(assets.aggregatorOf(1), address(0), "no portfolio yet: the zero address");
        (uint32 p,, uint64 b,) = _threeMemberPortfolio();
        assertEq(assets.aggregatorOf(p), AGG, "the aggregator that founded it");
        vm.prank(owner2);
        assets.removeFromPortfolio(b);
        assertEq(assets.aggregatorOf(p), AGG, "members leaving do not change it");
        assertEq(assets.aggregatorOf(p + 1), address(0), "an unknown portfolio");
    }

    function test_portfolioTerms_removedMemberNotCounted() public {
        (uint32 p, uint64 a, uint64 b, uint64 c) = _threeMemberPortfolio();
        (address agg, uint32 zone, uint256 up, uint256 down) = assets.portfolioTerms(p);
        assertEq(agg, AGG, "aggregator");
        assertEq(zone, 5, "zone");
        assertEq(up, 30_000, "three members up");
        assertEq(down, 24_000, "three members down");
        vm.prank(owner2);
        assets.removeFromPortfolio(b);
        (,, up, down) = assets.portfolioTerms(p);
        assertEq(up, 20_000, "the removed member's power no longer counts (up)");
        assertEq(down, 16_000, "the removed member's power no longer counts (down)");
        vm.prank(DSO1); // a removed member is an asset of its own again: its DSO may re-map it
        assets.mapAsset(b, 5, 50_000, 50_000, market);
        (,, up, down) = assets.portfolioTerms(p);
        assertEq(up, 20_000, "its new power does not count either");
        vm.prank(DSO1);
        assets.suspendAsset(a);
        (,, up, down) = assets.portfolioTerms(p);
        assertEq(up, 10_000, "a suspended member does not count");
        assertEq(down, 8_000, "nor down");
        vm.prank(owner);
        assets.removeFromPortfolio(c);
        (,, up, down) = assets.portfolioTerms(p);
        assertEq(up, 0, "no active member left");
        assertEq(down, 0, "none");
        _assertMembers(assets.membersAt(p, type(uint64).max), assetIds(a), "the suspended member is still a member");
    }

    function test_pendingOrSuspendedAssetsCannotJoin() public {
        uint64 a = registerWithMeter(assets, owner, METER1, 1);
        uint64 deadline = uint64(block.timestamp + 1 hours);
        uint64[] memory ids = new uint64[](1);
        ids[0] = a;
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = _consent(OWNER_KEY, a, deadline);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetNotActive.selector, a));
        vm.prank(AGG);
        assets.createPortfolio(5, ids, sigs, deadline);
    }
}
