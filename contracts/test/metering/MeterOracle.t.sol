// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MeterOracleFixture} from "./MeterOracleFixture.sol";
import {RoleGated} from "../../src/access/RoleGated.sol";
import {MarketRegistry} from "../../src/market/MarketRegistry.sol";
import {MeterOracle} from "../../src/metering/MeterOracle.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

contract MeterOracleAnchorTest is MeterOracleFixture {
    bytes32 internal constant ROOT = keccak256("readings of ISP4");

    function test_anchorRoot_emitsAndStoresHash() public {
        vm.warp(ISP4 + ISP + 37);
        vm.expectEmit();
        emit RootAnchored(market, ISP4, ORACLE1, ROOT, 120, ISP4 + ISP + 37);
        vm.prank(ORACLE1);
        oracle.anchorRoot(market, ISP4, ROOT, 120);
        bytes32 expected = keccak256(abi.encode(ROOT, ORACLE1, uint32(120), uint64(ISP4 + ISP + 37)));
        assertEq(oracle.anchorHash(market, ISP4), expected, "stored hash");
        MeterOracle.Anchor memory a = MeterOracle.Anchor(ROOT, ORACLE1, 120, ISP4 + ISP + 37);
        assertEq(keccak256(abi.encode(a)), expected, "the struct encodes as its fields");
        assertTrue(oracle.isAnchored(market, ISP4, a), "isAnchored");
        assertEq(oracle.anchorHash(market, ISP4 + ISP), bytes32(0), "the next ISP has no anchor");
    }

    /// The oracle's standard baselines of an ISP: anchored once by an ORACLE, in the day before the
    /// ISP's gate closure only, each value provable with the hash of its inputs.
    function test_anchorBaselines_onceByAnOracle_inTheirWindow_valuesProvable() public {
        address m1 = address(0xA1);
        address m2 = address(0xA2);
        bytes32 in1 = oracle.baselineInputsHash(3, [int64(-250), -250, -250, 0, 0, 0, 0, 0, 0, 0]);
        bytes32 in2 = keccak256("other inputs");
        bytes32 l1 = oracle.baselineLeaf(m1, ISP4, -250, in1);
        bytes32 l2 = oracle.baselineLeaf(m2, ISP4, 1_200, in2);
        assertEq(l1, keccak256(bytes.concat(keccak256(abi.encode(m1, ISP4, int64(-250), in1)))), "standard tree leaf");
        bytes32 root = Hashes.commutativeKeccak256(l1, l2);
        (uint64 opens, uint64 closes) = oracle.baselineWindow(market, ISP4);
        assertEq(closes, markets.gateClosure(market, ISP4), "closes at the gate closure");
        assertEq(opens, closes - 1 days, "opens a day before");
        vm.warp(opens);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, NOBODY, ORACLE_ROLE));
        vm.prank(NOBODY);
        oracle.anchorBaselines(market, ISP4, root, 2);
        vm.startPrank(ORACLE1);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleNotAligned.selector, ISP4 + 1, ISP));
        oracle.anchorBaselines(market, ISP4 + 1, root, 2);
        vm.expectRevert(MeterOracle.MeterOracleEmptyRoot.selector);
        oracle.anchorBaselines(market, ISP4, bytes32(0), 2);
        vm.warp(opens - 1);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleBaselineWindow.selector, ISP4, opens, closes));
        oracle.anchorBaselines(market, ISP4, root, 2);
        vm.warp(closes + 1); // after the gate closure: sellers offered without it, the day's awards are known
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleBaselineWindow.selector, ISP4, opens, closes));
        oracle.anchorBaselines(market, ISP4, root, 2);
        vm.warp(closes);
        vm.expectEmit();
        emit MeterOracle.BaselinesAnchored(market, ISP4, ORACLE1, root, 2);
        oracle.anchorBaselines(market, ISP4, root, 2);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleBaselinesAnchored.selector, market, ISP4));
        vm.prank(ORACLE2);
        oracle.anchorBaselines(market, ISP4, root, 2); // the first oracle's stands (a wrong one is disputed)
        assertEq(oracle.baselineRoot(market, ISP4), root, "root kept");
        (address by, uint64 at) = oracle.baselineAnchor(market, ISP4);
        assertEq(by, ORACLE1, "who anchored");
        assertEq(at, closes, "when");
        checkWitness(m1, m2, in1, in2, l2);
    }

    function checkWitness(address m1, address m2, bytes32 in1, bytes32 in2, bytes32 l2) internal {
        bytes32[] memory witness = new bytes32[](2);
        (witness[0], witness[1]) = (in1, l2);
        assertTrue(oracle.verifyBaseline(market, ISP4, m1, -250, witness), "m1's value");
        assertTrue(!oracle.verifyBaseline(market, ISP4, m1, -249, witness), "another value");
        assertTrue(!oracle.verifyBaseline(market, ISP4, m2, -250, witness), "another meter");
        assertTrue(!oracle.verifyBaseline(market, ISP4 + ISP, m1, -250, witness), "another ISP: nothing anchored");
        witness[0] = in2;
        assertTrue(!oracle.verifyBaseline(market, ISP4, m1, -250, witness), "other inputs");
        assertTrue(!oracle.verifyBaseline(market, ISP4, m1, -250, new bytes32[](0)), "no witness");
        assertEq(oracle.anchorHash(market, ISP4), bytes32(0), "readings are anchored apart");
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleNotDisputes.selector, address(this)));
        oracle.fixBaseline(market, ISP4, m1, keccak256("a correction"));
    }

    function test_anchorHash_zeroWhenNone() public view {
        assertEq(oracle.anchorHash(market, ISP4), bytes32(0), "none");
        assertEq(oracle.anchorHash(7, ISP4), bytes32(0), "unknown market: none, no revert");
    }

    function test_oracleRole_isKeccakOfName() public view {
        assertEq(oracle.ORACLE_ROLE(), keccak256("ORACLE"), "role id");
        assertEq(address(oracle.markets()), address(markets), "markets");
        assertEq(address(oracle.roleRegistry()), address(roles), "roles");
    }

    function test_anchorRoot_revertsForNonOracle() public {
        vm.warp(ISP4 + ISP);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, NOBODY, ORACLE_ROLE));
        vm.prank(NOBODY);
        oracle.anchorRoot(market, ISP4, ROOT, 1);
    }

    function test_anchorRoot_revertsForRevokedOracle() public {
        vm.prank(ADMIN);
        roles.revokeCredential(ORACLE1, ORACLE_ROLE);
        vm.warp(ISP4 + ISP);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, ORACLE1, ORACLE_ROLE));
        vm.prank(ORACLE1);
        oracle.anchorRoot(market, ISP4, ROOT, 1);
    }

    function test_anchorRoot_revertsForExpiredOracle() public {
        address temp = address(0x0A3);
        uint64 validUntil = ISP4 + ISP + 10;
        grantUntil(temp, ORACLE_ROLE, validUntil);
        vm.warp(validUntil); // the last valid second: accepted
        anchor(temp, ISP4, ROOT, 1);
        vm.warp(validUntil + 1);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, temp, ORACLE_ROLE));
        vm.prank(temp);
        oracle.anchorRoot(market, ISP4 + ISP, ROOT, 1);
    }

    function test_anchorRoot_revertsForUnknownMarket() public {
        vm.warp(ISP4 + ISP);
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryUnknownMarket.selector, uint32(2)));
        vm.prank(ORACLE1);
        oracle.anchorRoot(2, ISP4, ROOT, 1);
    }

    function test_anchorRoot_revertsForMarketZero() public {
        vm.warp(ISP4 + ISP);
        vm.expectRevert(abi.encodeWithSelector(MarketRegistry.MarketRegistryUnknownMarket.selector, uint32(0)));
        vm.prank(ORACLE1);
        oracle.anchorRoot(0, ISP4, ROOT, 1);
    }

    function test_anchorRoot_revertsWhenNotAligned() public {
        vm.warp(ISP4 + 2 * ISP);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleNotAligned.selector, ISP4 + 60, ISP));
        vm.prank(ORACLE1);
        oracle.anchorRoot(market, ISP4 + 60, ROOT, 1);
    }

    function test_anchorRoot_revertsWhenAlignedToAnotherMarketOnly() public {
        vm.prank(ADMIN);
        uint32 hourly = markets.createMarket(marketParams(3600));
        vm.warp(ISP4 + 2 * 3600);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleNotAligned.selector, ISP4 + ISP, uint32(3600)));
        vm.prank(ORACLE1);
        oracle.anchorRoot(hourly, ISP4 + ISP, ROOT, 1);
    }

    function test_anchorRoot_revertsBeforeIspEnd() public {
        vm.warp(ISP4 + ISP - 1);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleIspNotEnded.selector, ISP4, ISP4 + ISP));
        vm.prank(ORACLE1);
        oracle.anchorRoot(market, ISP4, ROOT, 1);
    }

    function test_anchorRoot_revertsForFutureIsp() public {
        vm.warp(ISP4);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleIspNotEnded.selector, ISP4 + ISP, ISP4 + 2 * ISP));
        vm.prank(ORACLE1);
        oracle.anchorRoot(market, ISP4 + ISP, ROOT, 1);
    }

    function test_anchorRoot_acceptsExactlyAtIspEnd() public {
        vm.warp(ISP4 + ISP);
        MeterOracle.Anchor memory a = anchor(ORACLE1, ISP4, ROOT, 1);
        assertEq(a.anchoredAt, ISP4 + ISP, "anchored at the ISP's end");
        assertEq(oracle.anchorHash(market, ISP4), hashOf(a), "stored");
    }

    function test_anchorRoot_revertsForZeroRoot() public {
        vm.warp(ISP4 + ISP);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleEmptyRoot.selector));
        vm.prank(ORACLE1);
        oracle.anchorRoot(market, ISP4, bytes32(0), 5);
    }

    function test_anchorRoot_revertsForZeroLeafCount() public {
        vm.warp(ISP4 + ISP);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleEmptyRoot.selector));
        vm.prank(ORACLE1);
        oracle.anchorRoot(market, ISP4, ROOT, 0);
    }

    function test_anchorRoot_revertsWhenAnchoredTwice() public {
        vm.warp(ISP4 + ISP);
        MeterOracle.Anchor memory first = anchor(ORACLE1, ISP4, ROOT, 3);
        vm.warp(ISP4 + 2 * ISP);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleAlreadyAnchored.selector, market, ISP4));
        vm.prank(ORACLE1);
        oracle.anchorRoot(market, ISP4, ROOT, 3);
        assertEq(oracle.anchorHash(market, ISP4), hashOf(first), "the first anchor stays");
    }

    function test_anchorRoot_revertsWhenAnotherOracleAnchoredFirst() public {
        vm.warp(ISP4 + ISP);
        MeterOracle.Anchor memory first = anchor(ORACLE1, ISP4, ROOT, 3);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleAlreadyAnchored.selector, market, ISP4));
        vm.prank(ORACLE2);
        oracle.anchorRoot(market, ISP4, keccak256("another root"), 4);
        assertEq(oracle.anchorHash(market, ISP4), hashOf(first), "the first anchor stays");
    }

    function test_anchorRoot_marketsAreSeparate() public {
        vm.prank(ADMIN);
        uint32 other = markets.createMarket(marketParams(ISP));
        vm.warp(ISP4 + ISP);
        MeterOracle.Anchor memory a = anchor(ORACLE1, ISP4, ROOT, 3);
        vm.prank(ORACLE2);
        oracle.anchorRoot(other, ISP4, ROOT, 3);
        MeterOracle.Anchor memory b = MeterOracle.Anchor(ROOT, ORACLE2, 3, uint64(block.timestamp));
        assertTrue(oracle.isAnchored(market, ISP4, a), "market 1");
        assertTrue(oracle.isAnchored(other, ISP4, b), "market 2");
        assertTrue(!oracle.isAnchored(market, ISP4, b), "market 1 is not market 2's anchor");
    }

    /// Any ended ISP of the market can be anchored once, and only once.
    function testFuzz_anchorOnceOnly(uint256 ispIndex, bytes32 root, uint32 leafCount, uint256 wait, bytes32 root2)
        public
    {
        root = root == 0 ? bytes32(uint256(1)) : root;
        leafCount = leafCount == 0 ? 1 : leafCount;
        uint64 ispStart = uint64(bound(ispIndex, 0, 1_000_000_000)) * ISP; // up to year ~30,500
        uint256 endsAt = uint256(ispStart) + ISP;
        vm.warp(bound(wait, endsAt, endsAt + 365 days));
        MeterOracle.Anchor memory a = anchor(ORACLE1, ispStart, root, leafCount);
        assertEq(oracle.anchorHash(market, ispStart), hashOf(a), "stored");
        assertTrue(oracle.isAnchored(market, ispStart, a), "anchored");
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleAlreadyAnchored.selector, market, ispStart));
        vm.prank(ORACLE2);
        oracle.anchorRoot(market, ispStart, root2 == 0 ? root : root2, leafCount);
        assertEq(oracle.anchorHash(market, ispStart), hashOf(a), "unchanged");
    }
}

contract MeterOracleIsAnchoredTest is MeterOracleFixture {
    MeterOracle.Anchor internal a;

    function setUp() public override {
        super.setUp();
        vm.warp(ISP4 + ISP + 5);
        a = anchor(ORACLE1, ISP4, keccak256("root"), 42);
    }

    function test_isAnchored_trueForTheAnchor() public view {
        assertTrue(oracle.isAnchored(market, ISP4, a), "anchored");
    }

    function test_isAnchored_falseForWrongRoot() public view {
        MeterOracle.Anchor memory b = a;
        b.root = keccak256("other root");
        assertTrue(!oracle.isAnchored(market, ISP4, b), "root");
    }

    function test_isAnchored_falseForWrongOracle() public view {
        MeterOracle.Anchor memory b = a;
        b.oracle = ORACLE2;
        assertTrue(!oracle.isAnchored(market, ISP4, b), "oracle");
    }

    function test_isAnchored_falseForWrongLeafCount() public view {
        MeterOracle.Anchor memory b = a;
        b.leafCount = 43;
        assertTrue(!oracle.isAnchored(market, ISP4, b), "leafCount");
    }

    function test_isAnchored_falseForWrongAnchoredAt() public view {
        MeterOracle.Anchor memory b = a;
        b.anchoredAt = a.anchoredAt - 1;
        assertTrue(!oracle.isAnchored(market, ISP4, b), "anchoredAt");
    }

    function test_isAnchored_falseForWrongIsp() public view {
        assertTrue(!oracle.isAnchored(market, ISP4 + ISP, a), "ispStart");
    }

    function test_isAnchored_falseForWrongMarket() public view {
        assertTrue(!oracle.isAnchored(market + 1, ISP4, a), "market");
    }

    function test_isAnchored_falseForZeroAnchorWhereNone() public view {
        MeterOracle.Anchor memory zero;
        assertTrue(!oracle.isAnchored(market, ISP4 + ISP, zero), "nothing anchored");
    }
}

/// A 4-reading tree built the way the npm OpenZeppelin merkle-tree's StandardMerkleTree builds it:
/// double-hashed leaves sorted ascending, laid out at the end of the node array in reverse, each
/// inner node the commutative (sorted-pair) keccak of its children.
contract MeterOracleVerifyTest is MeterOracleFixture {
    /// `StandardMerkleTree.of(readings(), ["address","uint64","uint64","uint64","uint64","bytes32"]).root`
    /// from the npm OpenZeppelin merkle-tree package (the last value `keccak256(sigOf(i))`): the
    /// test's tree must match the library's.
    bytes32 internal constant NPM_ROOT = 0xe46e94f57ea1d72935c9a7aead3c905c028154e6631602b5e85728134e0fd564;

    struct Reading {
        address meter;
        uint64 sequence;
        uint64 importWh;
        uint64 exportWh;
    }

    Reading[4] internal readings;
    bytes32[7] internal tree; // tree[0] is the root; leaves at 3..6
    MeterOracle.Anchor internal a;

    function setUp() public override {
        super.setUp();
        readings[0] = Reading(address(0xE1), 1, 1500, 0);
        readings[1] = Reading(address(0xE2), 7, 0, 2750);
        readings[2] = Reading(address(0xE3), 3, 420, 80);
        readings[3] = Reading(address(0xE4), 12, 0, 0);
        bytes32[4] memory leaves;
        for (uint256 i = 0; i < 4; ++i) {
            leaves[i] = leafOf(i, ISP4);
        }
        for (uint256 i = 1; i < 4; ++i) {
            for (uint256 j = i; j > 0 && leaves[j - 1] > leaves[j]; --j) {
                (leaves[j - 1], leaves[j]) = (leaves[j], leaves[j - 1]);
            }
        }
        for (uint256 i = 0; i < 4; ++i) {
            tree[6 - i] = leaves[i];
        }
        for (uint256 i = 3; i > 0; --i) {
            tree[i - 1] = Hashes.commutativeKeccak256(tree[2 * i - 1], tree[2 * i]);
        }
        vm.warp(ISP4 + ISP);
        a = anchor(ORACLE1, ISP4, tree[0], 4);
    }

    function leafOf(uint256 i, uint64 ispStart) internal view returns (bytes32) {
        Reading memory r = readings[i];
        bytes32 sigHash = keccak256(sigOf(i));
        return keccak256(bytes.concat(keccak256(abi.encode(r.meter, ispStart, r.sequence, r.importWh, r.exportWh, sigHash))));
    }

    /// The signature kept with reading `i` (its bytes do not matter to the tree, only their hash).
    function sigOf(uint256 i) internal pure returns (bytes memory) {
        return abi.encodePacked(bytes32(uint256(0x5160 + i)));
    }

    /// The proof of reading `i`: its sibling, then its parent's sibling.
    function proofOf(uint256 i, uint64 ispStart) internal view returns (bytes32[] memory proof) {
        bytes32 leaf = leafOf(i, ispStart);
        uint256 node = 3;
        while (tree[node] != leaf) ++node;
        proof = new bytes32[](2);
        proof[0] = tree[node % 2 == 1 ? node + 1 : node - 1];
        uint256 parent = (node - 1) / 2;
        proof[1] = tree[parent == 1 ? 2 : 1];
    }

    function verify(uint256 i, uint64 ispStart, MeterOracle.Anchor memory anchor_, bytes32[] memory proof)
        internal
        view
        returns (bool)
    {
        Reading memory r = readings[i];
        return oracle.verifyReading(market, ispStart, anchor_, r.meter, r.sequence, r.importWh, r.exportWh, sigOf(i), proof);
    }

    function test_tree_matchesNpmStandardMerkleTree() public view {
        assertEq(tree[0], NPM_ROOT, "root as @openzeppelin/merkle-tree computes it");
    }

    function test_readingLeaf_isStandardTreeLeaf() public view {
        for (uint256 i = 0; i < 4; ++i) {
            Reading memory r = readings[i];
            assertEq(oracle.readingLeaf(r.meter, ISP4, r.sequence, r.importWh, r.exportWh, keccak256(sigOf(i))), leafOf(i, ISP4), "leaf");
        }
    }

    function test_verifyReading_trueForEachReading() public view {
        for (uint256 i = 0; i < 4; ++i) {
            assertTrue(verify(i, ISP4, a, proofOf(i, ISP4)), "reading proven");
        }
    }

    function test_verifyReading_falseForWrongImport() public view {
        Reading memory r = readings[2];
        assertTrue(
            !oracle.verifyReading(market, ISP4, a, r.meter, r.sequence, r.importWh + 1, r.exportWh, sigOf(2), proofOf(2, ISP4)),
            "importWh"
        );
    }

    function test_verifyReading_falseForWrongExport() public view {
        Reading memory r = readings[2];
        assertTrue(
            !oracle.verifyReading(market, ISP4, a, r.meter, r.sequence, r.importWh, r.exportWh - 1, sigOf(2), proofOf(2, ISP4)),
            "exportWh"
        );
    }

    function test_verifyReading_falseForWrongMeter() public view {
        Reading memory r = readings[2];
        assertTrue(
            !oracle.verifyReading(market, ISP4, a, address(0xE9), r.sequence, r.importWh, r.exportWh, sigOf(2), proofOf(2, ISP4)),
            "meter"
        );
    }

    function test_verifyReading_falseForWrongSequence() public view {
        Reading memory r = readings[2];
        assertTrue(
            !oracle.verifyReading(market, ISP4, a, r.meter, r.sequence + 1, r.importWh, r.exportWh, sigOf(2), proofOf(2, ISP4)),
            "sequence"
        );
    }

    function test_verifyReading_falseForAnotherReadingsProof() public view {
        assertTrue(!verify(0, ISP4, a, proofOf(1, ISP4)), "reading 1's proof does not prove reading 0");
    }

    function test_verifyReading_falseForTamperedProof() public view {
        bytes32[] memory proof = proofOf(3, ISP4);
        proof[1] = bytes32(uint256(proof[1]) ^ 1);
        assertTrue(!verify(3, ISP4, a, proof), "tampered sibling");
    }

    function test_verifyReading_falseForEmptyProof() public view {
        assertTrue(!verify(3, ISP4, a, new bytes32[](0)), "a leaf alone is not the root");
    }

    function test_verifyReading_falseForWrongIsp() public view {
        assertTrue(!verify(0, ISP4 + ISP, a, proofOf(0, ISP4)), "no anchor at the next ISP");
    }

    /// The same root anchored for another ISP proves nothing there: the leaf commits to its ISP.
    function test_verifyReading_falseForReadingOfAnotherIsp() public {
        vm.warp(ISP4 + 2 * ISP);
        MeterOracle.Anchor memory b = anchor(ORACLE1, ISP4 + ISP, tree[0], 4);
        assertTrue(!verify(0, ISP4 + ISP, b, proofOf(0, ISP4)), "ISP4's reading under ISP5's anchor");
    }

    function test_verifyReading_falseForWrongAnchor() public view {
        MeterOracle.Anchor memory b = a;
        b.leafCount = 5;
        assertTrue(!verify(0, ISP4, b, proofOf(0, ISP4)), "anchor not as stored");
    }
}

/// Everything is set up in setUp(), so the test starts with every account and slot cold, as a
/// fresh transaction does.
contract MeterOracleGasTest is MeterOracleFixture {
    function setUp() public override {
        super.setUp();
        vm.warp(ISP4 + ISP + 3);
    }

    /// Intrinsic gas of a transaction carrying `data` (21,000 + 16 per non-zero byte + 4 per zero byte).
    function intrinsicGas(bytes memory data) internal pure returns (uint256 gas) {
        gas = 21_000;
        for (uint256 i = 0; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }

    function test_gas_anchorRoot() public {
        bytes32 root = 0xa7e84e637041d93c9f1039b75a099d9454c58e66c330c5e8f51e523dd6f07f1b;
        uint32 leafCount = 1_000;
        // the market's first anchor also keeps its ISP length; the next ones read it back
        _logAnchor("first anchor of the market", ISP4, root, leafCount);
        vm.warp(block.timestamp + 900);
        _logAnchor("a later anchor", ISP4 + 900, root, leafCount);
        assertTrue(oracle.anchorHash(market, ISP4 + 900) != 0, "anchored");
    }

    function _logAnchor(string memory what, uint64 isp, bytes32 root, uint32 leafCount) internal {
        uint256 intrinsic = intrinsicGas(abi.encodeCall(MeterOracle.anchorRoot, (market, isp, root, leafCount)));
        vm.prank(ORACLE1);
        oracle.anchorRoot(market, isp, root, leafCount);
        uint256 callee = vm.lastCallGas().gasTotalUsed;
        emit log_named_uint(string.concat(what, ": execution gas of the call (lastCallGas)"), callee);
        emit log_named_uint(string.concat(what, ": transaction gas (lastCallGas + intrinsic)"), callee + intrinsic);
    }
}
