// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {RoleRegistry} from "../../src/access/RoleRegistry.sol";
import {MarketAuthority} from "../../src/access/MarketAuthority.sol";
import {RoleGated} from "../../src/access/RoleGated.sol";
import {IRoleRegistry} from "../../src/access/IRoleRegistry.sol";

/// A contract whose one function needs the DSO role, as every later contract's calls will.
contract GatedMock is RoleGated {
    uint256 public calls;

    constructor(IRoleRegistry registry) RoleGated(registry) {}

    function act() external onlyMarketRole(keccak256("DSO")) {
        calls++;
    }
}

/// A registry that answers nonsense: RoleGated must read it as "no role".
contract BrokenRegistry {
    uint256 public mode;

    function setMode(uint256 m) external {
        mode = m;
    }

    fallback(bytes calldata) external returns (bytes memory) {
        if (mode == 0) revert("broken");
        if (mode == 1) return abi.encode(uint256(2)); // not a bool
        return hex"01"; // too short
    }
}

contract RoleRegistryTest is TestBase {
    RoleRegistry internal reg;
    MarketAuthority internal auth;
    GatedMock internal gated;
    address internal constant ADMIN = address(0xA);
    address internal constant DSO = address(0xD50);
    address internal constant STRANGER = address(0x5);
    uint64 internal constant FOREVER = type(uint64).max;
    bytes32 internal dsoRole;

    event CredentialIssued(
        address indexed subject, bytes32 indexed role, uint64 validFrom, uint64 validUntil, bytes32 credentialHash, address indexed issuer
    );
    event CredentialRevoked(address indexed subject, bytes32 indexed role, address indexed issuer);

    function setUp() public {
        vm.warp(1_700_000_000);
        auth = new MarketAuthority(2 days, ADMIN);
        reg = new RoleRegistry(auth);
        gated = new GatedMock(reg);
        dsoRole = keccak256("DSO");
    }

    function _issue(address subject, uint64 from, uint64 until) internal {
        vm.prank(ADMIN);
        reg.issueCredential(subject, dsoRole, from, until, keccak256("vc"));
    }

    function test_issueGrantsAndGates() public {
        vm.expectEmit();
        emit CredentialIssued(DSO, dsoRole, uint64(block.timestamp), FOREVER, keccak256("vc"), ADMIN);
        _issue(DSO, uint64(block.timestamp), FOREVER);
        assertTrue(reg.hasMarketRole(DSO, dsoRole), "held");
        (uint64 from, uint64 until, bool revoked, bytes32 h) = reg.credentialOf(DSO, dsoRole);
        assertEq(from, block.timestamp, "from");
        assertEq(until, FOREVER, "until");
        assertTrue(!revoked, "not revoked");
        assertEq(h, keccak256("vc"), "hash");
        vm.prank(DSO);
        gated.act();
        assertEq(gated.calls(), 1, "gated call went through");
    }

    function test_issueByNonIssuerReverts() public {
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryNotIssuer.selector, STRANGER));
        vm.prank(STRANGER);
        reg.issueCredential(DSO, dsoRole, 0, FOREVER, 0);
    }

    function test_unknownRoleAndBadValidityRevert() public {
        vm.startPrank(ADMIN);
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryUnknownRole.selector, keccak256("KING")));
        reg.issueCredential(DSO, keccak256("KING"), 0, FOREVER, 0);
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryInvalidValidity.selector, uint64(10), uint64(5)));
        reg.issueCredential(DSO, dsoRole, 10, 5, 0);
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryInvalidValidity.selector, uint64(0), uint64(0)));
        reg.issueCredential(DSO, dsoRole, 0, 0, 0);
        vm.stopPrank();
    }

    function test_noCredentialIsRefusedByGatedCalls() public {
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, STRANGER, dsoRole));
        vm.prank(STRANGER);
        gated.act();
    }

    function test_expiredRoleIsRefused() public {
        _issue(DSO, uint64(block.timestamp), uint64(block.timestamp + 1 hours));
        vm.warp(block.timestamp + 1 hours + 1);
        assertTrue(!reg.hasMarketRole(DSO, dsoRole), "expired");
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, DSO, dsoRole));
        vm.prank(DSO);
        gated.act();
    }

    function test_notYetValidRoleIsRefused() public {
        _issue(DSO, uint64(block.timestamp + 1 days), FOREVER);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, DSO, dsoRole));
        vm.prank(DSO);
        gated.act();
        vm.warp(block.timestamp + 1 days);
        vm.prank(DSO);
        gated.act();
    }

    function test_revokedRoleIsRefusedAndCanBeReissued() public {
        _issue(DSO, uint64(block.timestamp), FOREVER);
        vm.expectEmit();
        emit CredentialRevoked(DSO, dsoRole, ADMIN);
        vm.prank(ADMIN);
        reg.revokeCredential(DSO, dsoRole);
        assertTrue(!reg.hasMarketRole(DSO, dsoRole), "revoked");
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, DSO, dsoRole));
        vm.prank(DSO);
        gated.act();
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryNotIssued.selector, DSO, dsoRole));
        vm.prank(ADMIN);
        reg.revokeCredential(DSO, dsoRole);
        _issue(DSO, uint64(block.timestamp), FOREVER);
        assertTrue(reg.hasMarketRole(DSO, dsoRole), "re-issued");
    }

    function test_revokingNothingReverts() public {
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryNotIssued.selector, DSO, dsoRole));
        vm.prank(ADMIN);
        reg.revokeCredential(DSO, dsoRole);
    }

    function test_batchIssue() public {
        address[] memory subjects = new address[](3);
        bytes32[] memory roles = new bytes32[](3);
        uint64[] memory from = new uint64[](3);
        uint64[] memory until = new uint64[](3);
        bytes32[] memory hashes = new bytes32[](3);
        for (uint256 i = 0; i < 3; ++i) {
            subjects[i] = address(uint160(0x1000 + i));
            roles[i] = keccak256("METER");
            until[i] = FOREVER;
        }
        vm.prank(ADMIN);
        reg.issueCredentials(subjects, roles, from, until, hashes);
        for (uint256 i = 0; i < 3; ++i) {
            assertTrue(reg.hasMarketRole(subjects[i], keccak256("METER")), "meter");
        }
        vm.expectRevert(RoleRegistry.RoleRegistryArrayLengthMismatch.selector);
        vm.prank(ADMIN);
        reg.issueCredentials(subjects, roles, from, until, new bytes32[](2));
    }

    function test_authorityIsHandedOverInTwoSteps() public {
        address council = address(0xC0C);
        vm.prank(ADMIN);
        auth.beginDefaultAdminTransfer(council);
        vm.warp(block.timestamp + 2 days + 1);
        vm.prank(council);
        auth.acceptDefaultAdminTransfer();
        assertEq(auth.defaultAdmin(), council, "new authority");
        bytes32 issuer = auth.ISSUER_ROLE();
        vm.prank(council);
        auth.grantRole(issuer, council);
        vm.prank(council);
        reg.issueCredential(DSO, dsoRole, 0, FOREVER, 0);
        vm.prank(council);
        auth.revokeRole(issuer, ADMIN);
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryNotIssuer.selector, ADMIN));
        vm.prank(ADMIN);
        reg.issueCredential(STRANGER, dsoRole, 0, FOREVER, 0);
    }

    function test_handoverCannotBeAcceptedBeforeTheDelay() public {
        address council = address(0xC0C);
        vm.prank(ADMIN);
        auth.beginDefaultAdminTransfer(council);
        vm.prank(council);
        vm.expectRevert();
        auth.acceptDefaultAdminTransfer();
    }

    function test_eip712DomainIsPublished() public view {
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = reg.eip712Domain();
        assertEq(keccak256(bytes(name)), keccak256("flexledger RoleRegistry"), "name");
        assertEq(keccak256(bytes(version)), keccak256("1"), "version");
        assertEq(chainId, block.chainid, "chain");
        assertEq(verifying, address(reg), "contract");
    }

    function test_aBrokenRegistryGrantsNothing() public {
        BrokenRegistry broken = new BrokenRegistry();
        GatedMock strict = new GatedMock(IRoleRegistry(address(broken)));
        for (uint256 m = 0; m < 3; ++m) {
            broken.setMode(m);
            vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, DSO, dsoRole));
            vm.prank(DSO);
            strict.act();
        }
    }

    function test_onlyTheAuthorityAppointsIssuers() public {
        bytes32 issuer = auth.ISSUER_ROLE();
        vm.expectRevert();
        vm.prank(STRANGER);
        auth.grantRole(issuer, STRANGER);
    }

    function testFuzz_validityWindow(uint64 from, uint64 until, uint64 at) public {
        vm.assume(until != 0 && until >= from);
        _issue(DSO, from, until);
        vm.warp(at);
        bool expected = from <= at && at <= until;
        assertTrue(reg.hasMarketRole(DSO, dsoRole) == expected, "validity window");
    }
}
