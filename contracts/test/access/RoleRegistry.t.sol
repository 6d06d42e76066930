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

/// Measures what a role check costs another contract (gasleft() around the check alone).
contract RoleCheckProbe is RoleGated {
    constructor(IRoleRegistry registry) RoleGated(registry) {}

    function measureGated(address subject, bytes32 role) external view returns (uint256 used, bool held) {
        uint256 before = gasleft();
        held = _hasMarketRole(subject, role);
        used = before - gasleft();
    }

    function measureInterface(address subject, bytes32 role) external view returns (uint256 used, bool held) {
        uint256 before = gasleft();
        held = roleRegistry.hasMarketRole(subject, role);
        used = before - gasleft();
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
    RoleCheckProbe internal probe;
    address internal constant PROBED = address(0x6A5);
    address internal constant ADMIN = address(0xA);
    address internal constant DSO = address(0xD50);
    address internal constant STRANGER = address(0x5);
    uint64 internal constant FOREVER = type(uint64).max;
    bytes32 internal dsoRole;

    event CredentialIssued(
        address indexed subject, bytes32 indexed role, uint64 validFrom, uint64 validUntil, bytes32 credentialHash, address indexed issuer
    );
    event CredentialRevoked(address indexed subject, bytes32 indexed role, address indexed issuer);
    event log_named_uint(string key, uint256 val);

    function setUp() public {
        vm.warp(1_700_000_000);
        auth = new MarketAuthority(2 days, ADMIN);
        reg = new RoleRegistry(auth);
        gated = new GatedMock(reg);
        dsoRole = keccak256("DSO");
        probe = new RoleCheckProbe(reg);
        vm.prank(ADMIN);
        reg.issueCredential(PROBED, keccak256("METER"), 0, FOREVER, keccak256("probe"));
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

    // Gas: these gasleft() figures are indicative; benchmarks/gas_identity.py (an eth_call into a probe,
    // every account and slot cold, plus whole-transaction gas for issuing) is authoritative.

    /// Forge runs each test as a fresh transaction: the registry account and PROBED's credential slot,
    /// written in setUp, are cold here, as in the benchmark's eth_call.
    function test_gas_hasMarketRoleFromAnotherContract() public {
        (uint256 used, bool held) = probe.measureGated(PROBED, keccak256("METER"));
        assertTrue(held, "held");
        emit log_named_uint("hasMarketRole via RoleGated, cold", used);
        assertLe(used, 5500, "hasMarketRole from another contract");
        (uint256 warm,) = probe.measureGated(PROBED, keccak256("METER"));
        assertEq(used - warm, (2600 - 100) + (2100 - 100), "the first check was cold (account + one slot)");
    }

    function test_gas_hasMarketRoleThroughTheAbiEncoder() public {
        (uint256 used, bool held) = probe.measureInterface(PROBED, keccak256("METER"));
        assertTrue(held, "held");
        emit log_named_uint("hasMarketRole via a Solidity interface call, cold", used);
        assertLe(used, 5700, "interface call");
    }

    /// Approximates the transaction's gas: execution measured with gasleft() (the registry account
    /// warmed first, as a transaction's target is; the authority and every slot stay cold), plus the
    /// 21,000 base and the calldata (cancun pricing).
    function test_gas_issueCredential() public {
        RoleRegistry r = reg; // read the test's own storage outside the bracket
        bytes32 role = dsoRole;
        address subject = address(0x5AB1EC7);
        bytes32 credentialHash = keccak256("vc");
        uint64 from = uint64(block.timestamp);
        bytes memory data = abi.encodeCall(RoleRegistry.issueCredential, (subject, role, from, FOREVER, credentialHash));
        uint256 calldataGas;
        for (uint256 i = 0; i < data.length; ++i) {
            calldataGas += data[i] == 0 ? 4 : 16;
        }
        assertTrue(address(r).code.length != 0, "warm the target account");
        vm.prank(ADMIN);
        uint256 before = gasleft();
        r.issueCredential(subject, role, from, FOREVER, credentialHash);
        uint256 used = before - gasleft();
        emit log_named_uint("issueCredential, execution (gasleft)", used);
        emit log_named_uint("issueCredential, as a transaction (+21,000 + calldata)", used + 21_000 + calldataGas);
        assertLe(used + 21_000 + calldataGas, 80_000, "issueCredential");
    }

    function test_allSevenRolesAreKnown() public {
        string[7] memory names = ["DSO", "TSO", "AGGREGATOR", "PROSUMER", "ORACLE", "AUDITOR", "METER"];
        vm.startPrank(ADMIN);
        for (uint256 i = 0; i < names.length; ++i) {
            bytes32 role = keccak256(bytes(names[i]));
            reg.issueCredential(DSO, role, 0, FOREVER, 0);
            assertTrue(reg.hasMarketRole(DSO, role), names[i]);
        }
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryUnknownRole.selector, keccak256("ISSUER")));
        reg.issueCredential(DSO, keccak256("ISSUER"), 0, FOREVER, 0);
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryUnknownRole.selector, bytes32(0)));
        reg.issueCredential(DSO, bytes32(0), 0, FOREVER, 0);
        vm.stopPrank();
        assertTrue(!reg.hasMarketRole(DSO, keccak256("ISSUER")), "not a market role");
    }

    function test_neverIssuedReadsAsZero() public view {
        (uint64 from, uint64 until, bool revoked, bytes32 h) = reg.credentialOf(DSO, dsoRole);
        assertEq(from, 0, "from");
        assertEq(until, 0, "until");
        assertTrue(!revoked, "revoked");
        assertEq(h, bytes32(0), "hash");
        assertTrue(!reg.hasMarketRole(DSO, dsoRole), "not held");
    }

    function test_revokeByNonIssuerReverts() public {
        _issue(DSO, 0, FOREVER);
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryNotIssuer.selector, STRANGER));
        vm.prank(STRANGER);
        reg.revokeCredential(DSO, dsoRole);
        assertTrue(reg.hasMarketRole(DSO, dsoRole), "still held");
    }

    function test_batchByNonIssuerReverts() public {
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryNotIssuer.selector, STRANGER));
        vm.prank(STRANGER);
        reg.issueCredentials(new address[](1), new bytes32[](1), new uint64[](1), new uint64[](1), new bytes32[](1));
    }

    function test_batchEmitsAndIsAtomic() public {
        address[] memory subjects = new address[](2);
        bytes32[] memory roles = new bytes32[](2);
        uint64[] memory from = new uint64[](2);
        uint64[] memory until = new uint64[](2);
        bytes32[] memory hashes = new bytes32[](2);
        subjects[0] = address(0x1000);
        subjects[1] = address(0x1001);
        roles[0] = keccak256("METER");
        roles[1] = keccak256("NOT_A_ROLE");
        until[0] = FOREVER;
        until[1] = FOREVER;
        hashes[0] = keccak256("m0");
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryUnknownRole.selector, keccak256("NOT_A_ROLE")));
        vm.prank(ADMIN);
        reg.issueCredentials(subjects, roles, from, until, hashes);
        assertTrue(!reg.hasMarketRole(subjects[0], roles[0]), "nothing issued");

        roles[1] = keccak256("METER");
        vm.expectEmit();
        emit CredentialIssued(subjects[0], roles[0], 0, FOREVER, hashes[0], ADMIN);
        vm.expectEmit();
        emit CredentialIssued(subjects[1], roles[1], 0, FOREVER, bytes32(0), ADMIN);
        vm.prank(ADMIN);
        reg.issueCredentials(subjects, roles, from, until, hashes);
    }

    function test_reissueRenewsTheCredential() public {
        _issue(DSO, uint64(block.timestamp), uint64(block.timestamp + 1 days));
        vm.prank(ADMIN);
        reg.revokeCredential(DSO, dsoRole);
        vm.expectEmit();
        emit CredentialIssued(DSO, dsoRole, 5, FOREVER, keccak256("vc2"), ADMIN);
        vm.prank(ADMIN);
        reg.issueCredential(DSO, dsoRole, 5, FOREVER, keccak256("vc2"));
        (uint64 from, uint64 until, bool revoked, bytes32 h) = reg.credentialOf(DSO, dsoRole);
        assertEq(from, 5, "from");
        assertEq(until, FOREVER, "until");
        assertTrue(!revoked, "fresh credential");
        assertEq(h, keccak256("vc2"), "new hash");
        vm.prank(DSO);
        gated.act();
    }

    function test_revokedStaysRefusedWhateverTheTime() public {
        _issue(DSO, uint64(block.timestamp + 1 days), FOREVER);
        vm.prank(ADMIN);
        reg.revokeCredential(DSO, dsoRole);
        vm.warp(block.timestamp + 2 days);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, DSO, dsoRole));
        vm.prank(DSO);
        gated.act();
    }

    function test_handoverWaitsForTheDelayExactly() public {
        address council = address(0xC0C);
        vm.prank(ADMIN);
        auth.beginDefaultAdminTransfer(council);
        (address pending, uint48 schedule) = auth.pendingDefaultAdmin();
        assertEq(pending, council, "pending");
        assertEq(schedule, block.timestamp + 2 days, "schedule");
        vm.warp(schedule);
        vm.expectRevert(abi.encodeWithSignature("AccessControlEnforcedDefaultAdminDelay(uint48)", schedule));
        vm.prank(council);
        auth.acceptDefaultAdminTransfer();
        vm.warp(uint256(schedule) + 1);
        vm.expectRevert(abi.encodeWithSignature("AccessControlInvalidDefaultAdmin(address)", STRANGER));
        vm.prank(STRANGER);
        auth.acceptDefaultAdminTransfer();
        vm.prank(council);
        auth.acceptDefaultAdminTransfer();
        assertEq(auth.defaultAdmin(), council, "accepted after the delay");
        // The old authority keeps ISSUER_ROLE until the new one revokes it.
        assertTrue(auth.hasRole(auth.ISSUER_ROLE(), ADMIN), "issuer kept");
    }

    function testFuzz_invalidValidityReverts(uint64 from, uint64 until) public {
        vm.assume(until == 0 || until < from);
        vm.expectRevert(abi.encodeWithSelector(RoleRegistry.RoleRegistryInvalidValidity.selector, from, until));
        vm.prank(ADMIN);
        reg.issueCredential(DSO, dsoRole, from, until, 0);
    }

    function testFuzz_gatedCallFollowsTheWindow(uint64 from, uint64 until, uint64 at) public {
        until = uint64(bound(until, 1, type(uint64).max));
        from = uint64(bound(from, 0, until));
        _issue(DSO, from, until);
        vm.warp(at);
        if (from <= at && at <= until) {
            vm.prank(DSO);
            gated.act();
            assertEq(gated.calls(), 1, "let through");
        } else {
            vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, DSO, dsoRole));
            vm.prank(DSO);
            gated.act();
        }
    }
}
