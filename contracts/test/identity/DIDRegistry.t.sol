// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {DIDRegistry} from "../../src/identity/DIDRegistry.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

contract DIDRegistryTest is TestBase {
    DIDRegistry internal reg;
    uint256 internal constant KEY = 0xA11CE;
    address internal identity;
    address internal constant OTHER = address(0xB0B);
    /// The order of secp256k1: private keys are in [1, N - 1]; `N - s` is the malleable twin of `s`.
    uint256 internal constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    event DIDOwnerChanged(address indexed identity, address owner, uint256 previousChange);
    event DIDDelegateChanged(
        address indexed identity, bytes32 delegateType, address delegate, uint256 validTo, uint256 previousChange
    );
    event DIDAttributeChanged(
        address indexed identity, bytes32 name, bytes value, uint256 validTo, uint256 previousChange
    );

    function setUp() public {
        reg = new DIDRegistry();
        identity = vm.addr(KEY);
        vm.warp(1_700_000_000);
        vm.roll(100);
    }

    function _sign(uint256 key, bytes memory packedTail) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 hash = keccak256(
            abi.encodePacked(bytes1(0x19), bytes1(0), address(reg), reg.nonce(reg.identityOwner(identity)), identity, packedTail)
        );
        return vm.sign(key, hash);
    }

    function test_identityOwnsItselfUntilChanged() public view {
        assertEq(reg.identityOwner(identity), identity, "self-owned");
        assertEq(reg.changed(identity), 0, "no change yet");
    }

    function test_changeOwnerEmitsAndLinksPreviousChange() public {
        vm.expectEmit();
        emit DIDOwnerChanged(identity, OTHER, 0);
        vm.prank(identity);
        reg.changeOwner(identity, OTHER);
        assertEq(reg.identityOwner(identity), OTHER, "new owner");
        assertEq(reg.changed(identity), 100, "changed block");

        vm.roll(105);
        vm.expectEmit();
        emit DIDAttributeChanged(identity, "did/svc/X", "v", block.timestamp + 10, 100);
        vm.prank(OTHER);
        reg.setAttribute(identity, "did/svc/X", "v", 10);
        assertEq(reg.changed(identity), 105, "changed again");
    }

    function test_nonOwnerCannotChangeAnything() public {
        vm.startPrank(OTHER);
        vm.expectRevert(abi.encodeWithSelector(DIDRegistry.DIDRegistryNotOwner.selector, identity, OTHER));
        reg.changeOwner(identity, OTHER);
        vm.expectRevert(abi.encodeWithSelector(DIDRegistry.DIDRegistryNotOwner.selector, identity, OTHER));
        reg.setAttribute(identity, "did/svc/X", "v", 10);
        vm.expectRevert(abi.encodeWithSelector(DIDRegistry.DIDRegistryNotOwner.selector, identity, OTHER));
        reg.revokeAttribute(identity, "did/svc/X", "v");
        vm.expectRevert(abi.encodeWithSelector(DIDRegistry.DIDRegistryNotOwner.selector, identity, OTHER));
        reg.addDelegate(identity, "veriKey", OTHER, 10);
        vm.expectRevert(abi.encodeWithSelector(DIDRegistry.DIDRegistryNotOwner.selector, identity, OTHER));
        reg.revokeDelegate(identity, "veriKey", OTHER);
        vm.stopPrank();
    }

    function test_formerOwnerLosesControl() public {
        vm.prank(identity);
        reg.changeOwner(identity, OTHER);
        vm.prank(identity);
        vm.expectRevert(abi.encodeWithSelector(DIDRegistry.DIDRegistryNotOwner.selector, identity, identity));
        reg.setAttribute(identity, "did/svc/X", "v", 10);
    }

    function test_delegatesExpireAndRevoke() public {
        vm.expectEmit();
        emit DIDDelegateChanged(identity, "veriKey", OTHER, block.timestamp + 100, 0);
        vm.prank(identity);
        reg.addDelegate(identity, "veriKey", OTHER, 100);
        assertTrue(reg.validDelegate(identity, "veriKey", OTHER), "valid");
        assertTrue(!reg.validDelegate(identity, "sigAuth", OTHER), "other type");
        assertEq(reg.delegates(identity, keccak256(abi.encode(bytes32("veriKey"))), OTHER), block.timestamp + 100, "stored");
        vm.warp(block.timestamp + 101);
        assertTrue(!reg.validDelegate(identity, "veriKey", OTHER), "expired");
        vm.prank(identity);
        reg.addDelegate(identity, "veriKey", OTHER, 100);
        vm.prank(identity);
        reg.revokeDelegate(identity, "veriKey", OTHER);
        assertTrue(!reg.validDelegate(identity, "veriKey", OTHER), "revoked");
    }

    function test_revokeAttributeEmitsValidToZero() public {
        vm.expectEmit();
        emit DIDAttributeChanged(identity, "did/svc/X", "v", 0, 0);
        vm.prank(identity);
        reg.revokeAttribute(identity, "did/svc/X", "v");
    }

    function test_changeOwnerSigned() public {
        (uint8 v, bytes32 r, bytes32 s) = _sign(KEY, abi.encodePacked("changeOwner", OTHER));
        vm.prank(address(0xCAFE)); // anyone may send it
        reg.changeOwnerSigned(identity, v, r, s, OTHER);
        assertEq(reg.identityOwner(identity), OTHER, "changed by signature");
        assertEq(reg.nonce(identity), 1, "nonce of the signer");
    }

    function test_signedWithWrongKeyReverts() public {
        uint256 wrongKey = 0xBAD;
        (uint8 v, bytes32 r, bytes32 s) = _sign(wrongKey, abi.encodePacked("changeOwner", OTHER));
        vm.expectRevert(
            abi.encodeWithSelector(DIDRegistry.DIDRegistryInvalidSignature.selector, identity, vm.addr(wrongKey))
        );
        reg.changeOwnerSigned(identity, v, r, s, OTHER);
    }

    function test_replayedSignatureReverts() public {
        bytes memory tail = abi.encodePacked("setAttribute", bytes32("did/svc/X"), bytes("v"), uint256(10));
        (uint8 v, bytes32 r, bytes32 s) = _sign(KEY, tail);
        reg.setAttributeSigned(identity, v, r, s, "did/svc/X", "v", 10);
        // The nonce moved on: the same signature now recovers another address, refused as a wrong signer.
        bytes32 replayHash = keccak256(
            abi.encodePacked(bytes1(0x19), bytes1(0), address(reg), reg.nonce(identity), identity, tail)
        );
        vm.expectRevert(
            abi.encodeWithSelector(
                DIDRegistry.DIDRegistryInvalidSignature.selector, identity, ECDSA.recover(replayHash, v, r, s)
            )
        );
        reg.setAttributeSigned(identity, v, r, s, "did/svc/X", "v", 10);
        assertEq(reg.nonce(identity), 1, "the replay did not move the nonce");
    }

    function test_allSignedVariants() public {
        (uint8 v, bytes32 r, bytes32 s) =
            _sign(KEY, abi.encodePacked("addDelegate", bytes32("sigAuth"), OTHER, uint256(50)));
        reg.addDelegateSigned(identity, v, r, s, "sigAuth", OTHER, 50);
        assertTrue(reg.validDelegate(identity, "sigAuth", OTHER), "delegate added");
        (v, r, s) = _sign(KEY, abi.encodePacked("revokeDelegate", bytes32("sigAuth"), OTHER));
        reg.revokeDelegateSigned(identity, v, r, s, "sigAuth", OTHER);
        assertTrue(!reg.validDelegate(identity, "sigAuth", OTHER), "delegate revoked");
        (v, r, s) = _sign(KEY, abi.encodePacked("revokeAttribute", bytes32("did/svc/X"), bytes("v")));
        reg.revokeAttributeSigned(identity, v, r, s, "did/svc/X", "v");
        assertEq(reg.nonce(identity), 3, "three signed changes");
    }

    function testFuzz_signedOwnerChangeOnlyByOwnerKey(uint256 ownerKey, uint256 otherKey, address newOwner) public {
        ownerKey = bound(ownerKey, 1, 2 ** 128);
        otherKey = bound(otherKey, 1, 2 ** 128);
        vm.assume(ownerKey != otherKey);
        identity = vm.addr(ownerKey);
        (uint8 v, bytes32 r, bytes32 s) = _sign(otherKey, abi.encodePacked("changeOwner", newOwner));
        vm.expectRevert(
            abi.encodeWithSelector(DIDRegistry.DIDRegistryInvalidSignature.selector, identity, vm.addr(otherKey))
        );
        reg.changeOwnerSigned(identity, v, r, s, newOwner);
        (v, r, s) = _sign(ownerKey, abi.encodePacked("changeOwner", newOwner));
        reg.changeOwnerSigned(identity, v, r, s, newOwner);
        assertEq(reg.identityOwner(identity), newOwner == address(0) ? identity : newOwner, "owner");
    }

    function test_revokeDelegateStoresAndEmitsNow() public {
        vm.prank(identity);
        reg.addDelegate(identity, "veriKey", OTHER, 100);
        vm.roll(101);
        vm.warp(block.timestamp + 7);
        vm.expectEmit();
        emit DIDDelegateChanged(identity, "veriKey", OTHER, block.timestamp, 100);
        vm.prank(identity);
        reg.revokeDelegate(identity, "veriKey", OTHER);
        assertEq(reg.delegates(identity, keccak256(abi.encode(bytes32("veriKey"))), OTHER), block.timestamp, "now");
        assertEq(reg.changed(identity), 101, "changed block");
        assertTrue(!reg.validDelegate(identity, "veriKey", OTHER), "revoked");
    }

    function test_delegateIsValidStrictlyBeforeValidTo() public {
        vm.prank(identity);
        reg.addDelegate(identity, "sigAuth", OTHER, 60);
        vm.warp(block.timestamp + 59);
        assertTrue(reg.validDelegate(identity, "sigAuth", OTHER), "one second left");
        vm.warp(block.timestamp + 1);
        assertTrue(!reg.validDelegate(identity, "sigAuth", OTHER), "validTo itself is expired");
    }

    function test_setAttributeEmitsValidTo() public {
        vm.expectEmit();
        emit DIDAttributeChanged(identity, "did/pub/Secp256k1/veriKey/hex", hex"02ab", block.timestamp + 3600, 0);
        vm.prank(identity);
        reg.setAttribute(identity, "did/pub/Secp256k1/veriKey/hex", hex"02ab", 3600);
        assertEq(reg.changed(identity), 100, "changed block");
    }

    function test_validityOverflowReverts() public {
        vm.prank(identity);
        vm.expectRevert(abi.encodeWithSignature("Panic(uint256)", 0x11));
        reg.addDelegate(identity, "veriKey", OTHER, type(uint256).max);
    }

    /// ERC-1056 behaviour kept as is: the zero owner is what resolvers read as "deactivated" from the
    /// DIDOwnerChanged event, while `identityOwner` falls back to the identity itself.
    function test_zeroOwnerEmitsDeactivationAndFallsBackToIdentity() public {
        vm.expectEmit();
        emit DIDOwnerChanged(identity, address(0), 0);
        vm.prank(identity);
        reg.changeOwner(identity, address(0));
        assertEq(reg.owners(identity), address(0), "stored zero");
        assertEq(reg.identityOwner(identity), identity, "falls back to the identity");
    }

    function test_signedVariantsEmitAndSendersDoNotMatter() public {
        address relayer = address(0xCAFE);
        (uint8 v, bytes32 r, bytes32 s) =
            _sign(KEY, abi.encodePacked("addDelegate", bytes32("veriKey"), OTHER, uint256(50)));
        vm.expectEmit();
        emit DIDDelegateChanged(identity, "veriKey", OTHER, block.timestamp + 50, 0);
        vm.prank(relayer);
        reg.addDelegateSigned(identity, v, r, s, "veriKey", OTHER, 50);

        vm.roll(101);
        (v, r, s) = _sign(KEY, abi.encodePacked("revokeDelegate", bytes32("veriKey"), OTHER));
        vm.expectEmit();
        emit DIDDelegateChanged(identity, "veriKey", OTHER, block.timestamp, 100);
        vm.prank(relayer);
        reg.revokeDelegateSigned(identity, v, r, s, "veriKey", OTHER);

        vm.roll(102);
        (v, r, s) = _sign(KEY, abi.encodePacked("setAttribute", bytes32("did/svc/X"), bytes("https://x"), uint256(9)));
        vm.expectEmit();
        emit DIDAttributeChanged(identity, "did/svc/X", "https://x", block.timestamp + 9, 101);
        vm.prank(relayer);
        reg.setAttributeSigned(identity, v, r, s, "did/svc/X", "https://x", 9);

        vm.roll(103);
        (v, r, s) = _sign(KEY, abi.encodePacked("revokeAttribute", bytes32("did/svc/X"), bytes("https://x")));
        vm.expectEmit();
        emit DIDAttributeChanged(identity, "did/svc/X", "https://x", 0, 102);
        vm.prank(relayer);
        reg.revokeAttributeSigned(identity, v, r, s, "did/svc/X", "https://x");

        vm.roll(104);
        (v, r, s) = _sign(KEY, abi.encodePacked("changeOwner", OTHER));
        vm.expectEmit();
        emit DIDOwnerChanged(identity, OTHER, 103);
        vm.prank(relayer);
        reg.changeOwnerSigned(identity, v, r, s, OTHER);
        assertEq(reg.nonce(identity), 5, "five signed changes");
        assertEq(reg.changed(identity), 104, "last change");
    }

    /// After a handover the new owner signs, with its own nonce; the former owner's key is refused.
    function test_signedChangesFollowTheCurrentOwner() public {
        uint256 newKey = 0xC0FFEE;
        address newOwner = vm.addr(newKey);
        vm.prank(identity);
        reg.changeOwner(identity, newOwner);

        bytes memory tail = abi.encodePacked("setAttribute", bytes32("did/svc/X"), bytes("v"), uint256(10));
        (uint8 v, bytes32 r, bytes32 s) = _sign(KEY, tail);
        vm.expectRevert(abi.encodeWithSelector(DIDRegistry.DIDRegistryInvalidSignature.selector, identity, identity));
        reg.setAttributeSigned(identity, v, r, s, "did/svc/X", "v", 10);

        (v, r, s) = _sign(newKey, tail);
        reg.setAttributeSigned(identity, v, r, s, "did/svc/X", "v", 10);
        assertEq(reg.nonce(newOwner), 1, "nonce of the signer");
        assertEq(reg.nonce(identity), 0, "not of the identity");
    }

    function test_malformedSignaturesAreRefused() public {
        bytes memory tail = abi.encodePacked("changeOwner", OTHER);
        (uint8 v, bytes32 r, bytes32 s) = _sign(KEY, tail);
        bytes memory invalid = abi.encodeWithSelector(DIDRegistry.DIDRegistryInvalidSignature.selector, identity, address(0));
        // The malleable twin (high s, flipped v) recovers the owner with ecrecover; OpenZeppelin refuses it.
        vm.expectRevert(invalid);
        reg.changeOwnerSigned(identity, v == 27 ? 28 : 27, r, bytes32(N - uint256(s)), OTHER);
        vm.expectRevert(invalid);
        reg.changeOwnerSigned(identity, 0, r, s, OTHER);
        vm.expectRevert(invalid);
        reg.changeOwnerSigned(identity, v, bytes32(0), s, OTHER);
        reg.changeOwnerSigned(identity, v, r, s, OTHER);
        assertEq(reg.identityOwner(identity), OTHER, "the genuine signature still works");
    }

    function _keys(uint256 ownerKey, uint256 otherKey) internal returns (uint256, uint256) {
        ownerKey = bound(ownerKey, 1, N - 1);
        otherKey = bound(otherKey, 1, N - 1);
        vm.assume(ownerKey != otherKey);
        identity = vm.addr(ownerKey);
        return (ownerKey, otherKey);
    }

    function _expectInvalid(uint256 otherKey) internal {
        vm.expectRevert(
            abi.encodeWithSelector(DIDRegistry.DIDRegistryInvalidSignature.selector, identity, vm.addr(otherKey))
        );
    }

    function testFuzz_addDelegateSigned(
        uint256 ownerKey,
        uint256 otherKey,
        bytes32 delegateType,
        address delegate,
        uint256 validity,
        address relayer
    ) public {
        (ownerKey, otherKey) = _keys(ownerKey, otherKey);
        validity = bound(validity, 1, type(uint64).max);
        bytes memory tail = abi.encodePacked("addDelegate", delegateType, delegate, validity);
        (uint8 v, bytes32 r, bytes32 s) = _sign(otherKey, tail);
        _expectInvalid(otherKey);
        reg.addDelegateSigned(identity, v, r, s, delegateType, delegate, validity);

        (v, r, s) = _sign(ownerKey, tail);
        vm.expectEmit();
        emit DIDDelegateChanged(identity, delegateType, delegate, block.timestamp + validity, 0);
        vm.prank(relayer);
        reg.addDelegateSigned(identity, v, r, s, delegateType, delegate, validity);
        assertTrue(reg.validDelegate(identity, delegateType, delegate), "valid");
        assertEq(reg.nonce(identity), 1, "nonce");

        vm.expectRevert(); // replay: recovers some other address
        reg.addDelegateSigned(identity, v, r, s, delegateType, delegate, validity);
    }

    function testFuzz_revokeDelegateSigned(uint256 ownerKey, uint256 otherKey, bytes32 delegateType, address delegate)
        public
    {
        (ownerKey, otherKey) = _keys(ownerKey, otherKey);
        vm.prank(identity);
        reg.addDelegate(identity, delegateType, delegate, 1 days);
        bytes memory tail = abi.encodePacked("revokeDelegate", delegateType, delegate);
        (uint8 v, bytes32 r, bytes32 s) = _sign(otherKey, tail);
        _expectInvalid(otherKey);
        reg.revokeDelegateSigned(identity, v, r, s, delegateType, delegate);

        (v, r, s) = _sign(ownerKey, tail);
        vm.expectEmit();
        emit DIDDelegateChanged(identity, delegateType, delegate, block.timestamp, 100);
        reg.revokeDelegateSigned(identity, v, r, s, delegateType, delegate);
        assertTrue(!reg.validDelegate(identity, delegateType, delegate), "revoked");
        assertEq(reg.nonce(identity), 1, "nonce");
    }

    function testFuzz_setAttributeSigned(
        uint256 ownerKey,
        uint256 otherKey,
        bytes32 name,
        bytes calldata value,
        uint256 validity
    ) public {
        (ownerKey, otherKey) = _keys(ownerKey, otherKey);
        validity = bound(validity, 0, type(uint64).max);
        bytes memory tail = abi.encodePacked("setAttribute", name, value, validity);
        (uint8 v, bytes32 r, bytes32 s) = _sign(otherKey, tail);
        _expectInvalid(otherKey);
        reg.setAttributeSigned(identity, v, r, s, name, value, validity);

        (v, r, s) = _sign(ownerKey, tail);
        vm.expectEmit();
        emit DIDAttributeChanged(identity, name, value, block.timestamp + validity, 0);
        reg.setAttributeSigned(identity, v, r, s, name, value, validity);
        assertEq(reg.nonce(identity), 1, "nonce");
        assertEq(reg.changed(identity), 100, "changed");
    }

    function testFuzz_revokeAttributeSigned(uint256 ownerKey, uint256 otherKey, bytes32 name, bytes calldata value)
        public
    {
        (ownerKey, otherKey) = _keys(ownerKey, otherKey);
        bytes memory tail = abi.encodePacked("revokeAttribute", name, value);
        (uint8 v, bytes32 r, bytes32 s) = _sign(otherKey, tail);
        _expectInvalid(otherKey);
        reg.revokeAttributeSigned(identity, v, r, s, name, value);

        (v, r, s) = _sign(ownerKey, tail);
        vm.expectEmit();
        emit DIDAttributeChanged(identity, name, value, 0, 0);
        reg.revokeAttributeSigned(identity, v, r, s, name, value);
        assertEq(reg.nonce(identity), 1, "nonce");
    }

    function testFuzz_nonOwnerIsRefused(address actor, bytes32 name, bytes calldata value) public {
        vm.assume(actor != identity);
        bytes memory notOwner = abi.encodeWithSelector(DIDRegistry.DIDRegistryNotOwner.selector, identity, actor);
        vm.startPrank(actor);
        vm.expectRevert(notOwner);
        reg.setAttribute(identity, name, value, 1);
        vm.expectRevert(notOwner);
        reg.revokeAttribute(identity, name, value);
        vm.expectRevert(notOwner);
        reg.addDelegate(identity, name, actor, 1);
        vm.expectRevert(notOwner);
        reg.revokeDelegate(identity, name, actor);
        vm.expectRevert(notOwner);
        reg.changeOwner(identity, actor);
        vm.stopPrank();
    }
}
