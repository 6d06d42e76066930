// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {DIDRegistry} from "../../src/identity/DIDRegistry.sol";

contract DIDRegistryTest is TestBase {
    DIDRegistry internal reg;
    uint256 internal constant KEY = 0xA11CE;
    address internal identity;
    address internal constant OTHER = address(0xB0B);

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
        (uint8 v, bytes32 r, bytes32 s) = _sign(KEY, abi.encodePacked("setAttribute", bytes32("did/svc/X"), bytes("v"), uint256(10)));
        reg.setAttributeSigned(identity, v, r, s, "did/svc/X", "v", 10);
        vm.expectRevert(); // the nonce moved on: the same signature now recovers another address
        reg.setAttributeSigned(identity, v, r, s, "did/svc/X", "v", 10);
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
}
