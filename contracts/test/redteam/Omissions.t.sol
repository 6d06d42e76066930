// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SettlementFixture, StandardTree} from "../market/SettlementFixture.sol";
import {MeterOracle} from "../../src/metering/MeterOracle.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {ReadingDisputes} from "../../src/metering/ReadingDisputes.sol";
import {OmissionClaims} from "../../src/metering/OmissionClaims.sol";

/// Red team RT-7 (2026-12-07 review), the oracle's half: an oracle that received a reading, signed
/// its receipt "accepted", then left it out of the ISP's root was never marked (the seller settles
/// on the meter's signature alone, so only the oracle's word was broken). OmissionClaims holds it
/// to its receipt. The world: the settlement fixture, plus a keyed oracle (ORACLE_K) that anchors
/// ISP 06:00 of `market` with meter A's reading and, in the omission, without meter B's.
contract OmissionsTest is SettlementFixture {
    uint256 internal constant ORACLE_KEY = 0x0A11CE;
    uint256 internal constant STAKE = 100_000;
    uint256 internal constant BOND = 5_000;
    uint64 internal constant H6 = DAY0 + 6 hours;
    address internal oracleK;
    address internal meterA = address(0xA0A0);
    address internal meterB = address(0xB0B0);
    address internal claimant = address(0xC1A1);
    address internal answerer = address(0xA115);
    OmissionClaims internal claims;
    MeterOracle.Anchor internal anchorH6;
    bytes32[] internal leaves;

    function setUp() public override {
        super.setUp();
        claims = new OmissionClaims(markets, oracle, disputes, token, BOND);
        vm.prank(ADMIN);
        oracle.setOmissionClaims(address(claims));
        oracleK = vm.addr(ORACLE_KEY);
        grant(oracleK, ORACLE_ROLE);
        vm.prank(ADMIN);
        oracle.setRequiredStake(market, STAKE);
        mint(oracleK, STAKE);
        vm.startPrank(oracleK);
        token.approve(address(oracle), type(uint256).max);
        oracle.stake(market, uint128(STAKE));
        vm.stopPrank();
        mint(claimant, BOND);
        vm.prank(claimant);
        token.approve(address(claims), type(uint256).max);
    }

    /// ORACLE_K anchors ISP 06:00 over meter A's reading, and meter B's when `withB`.
    function anchorH6Root(bool withB) internal {
        leaves.push(oracle.readingLeaf(meterA, H6, 1, 100, 0, keccak256("sigA")));
        if (withB) leaves.push(oracle.readingLeaf(meterB, H6, 7, 750, 0, keccak256("sigB")));
        bytes32 root = StandardTree.build(leaves)[0];
        vm.prank(oracleK);
        oracle.anchorRoot(market, H6, root, uint32(leaves.length));
        anchorH6 = MeterOracle.Anchor(root, oracleK, uint32(leaves.length), uint64(block.timestamp));
    }

    function receiptB() internal view returns (OmissionClaims.ReceiptIn memory) {
        return OmissionClaims.ReceiptIn(meterB, H6, 7, 750, 0);
    }

    /// The receipt of meter B's reading, signed by `key`, `accepted` or not.
    function signReceipt(uint256 key, bool accepted) internal view returns (bytes memory) {
        bytes32 digest = oracle.receiptDigest(market, meterB, H6, 7, 750, 0, accepted);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function fileClaim() internal {
        bytes memory sig = signReceipt(ORACLE_KEY, true); // before the prank: it makes a call
        vm.prank(claimant);
        claims.claim(market, receiptB(), sig, anchorH6);
    }

    /// `fileClaim`, expected to revert with `err`.
    function fileClaimRefused(bytes memory err) internal {
        bytes memory sig = signReceipt(ORACLE_KEY, true);
        vm.expectRevert(err);
        vm.prank(claimant);
        claims.claim(market, receiptB(), sig, anchorH6);
    }

    /// RT-7: the oracle receipted B's reading as accepted and left it out. Unanswered, the claim
    /// marks it and its stake pays the claimant (the seller settles on the meter's signature).
    function test_RT7_omittingOracleIsMarkedAndSlashed() public {
        anchorH6Root(false);
        fileClaim();
        assertEq(token.balanceOf(claimant), 0, "the bond is posted");
        vm.expectRevert(abi.encodeWithSelector(OmissionClaims.OmissionAnswerOpen.selector, NOW0 + DISPUTE));
        claims.uphold(market, H6, meterB);
        vm.warp(NOW0 + DISPUTE + 1);
        vm.expectEmit();
        emit OmissionClaims.OmissionUpheld(market, H6, meterB, oracleK, STAKE);
        claims.uphold(market, H6, meterB);
        assertEq(claims.omissionsOf(oracleK), 1, "the oracle is marked");
        assertEq(oracle.stakeOf(market, oracleK).amount, 0, "and slashed");
        assertEq(token.balanceOf(claimant), BOND + STAKE, "the bond back and the stake to the claimant");
        assertEq(uint8(claims.claimOf(market, H6, meterB).status), uint8(OmissionClaims.Status.Upheld), "upheld");
    }

    /// Defence: the reading IS in the root: anyone answers with its proof, the claim fails and its
    /// bond pays the answerer (an honest oracle is not griefed for free); nobody is marked.
    function test_defence_answeredClaimFails() public {
        anchorH6Root(true);
        fileClaim();
        bytes32[] memory p = StandardTree.proof(StandardTree.build(leaves), leaves[1]);
        vm.prank(answerer);
        claims.answer(market, H6, meterB, keccak256("sigB"), p);
        assertEq(token.balanceOf(answerer), BOND, "the bond pays the answerer");
        vm.warp(NOW0 + DISPUTE + 1);
        vm.expectRevert(
            abi.encodeWithSelector(OmissionClaims.OmissionNotOpen.selector, claims.readingKey(market, H6, meterB))
        );
        claims.uphold(market, H6, meterB);
        assertEq(claims.omissionsOf(oracleK), 0, "not marked");
        assertEq(oracle.stakeOf(market, oracleK).amount, STAKE, "stake intact");
    }

    /// Defence: an answer must prove the receipted values (meter A's leaf, or B's with other
    /// values, proves nothing), and only within the window.
    function test_defence_answerMustProveTheReceiptedReading() public {
        anchorH6Root(false);
        fileClaim();
        bytes32[] memory p = StandardTree.proof(StandardTree.build(leaves), leaves[0]);
        vm.expectRevert(OmissionClaims.OmissionNotProven.selector);
        claims.answer(market, H6, meterB, keccak256("sigA"), p);
        vm.warp(NOW0 + DISPUTE + 1);
        vm.expectRevert(abi.encodeWithSelector(OmissionClaims.OmissionAnswerClosed.selector, NOW0 + DISPUTE));
        claims.answer(market, H6, meterB, keccak256("sigA"), p);
    }

    /// Defence: one claim per (market, ISP, meter): a second is refused while open and after its
    /// end, so the oracle is slashed once only.
    function test_defence_doubleClaimRefusedAndSlashOnce() public {
        anchorH6Root(false);
        fileClaim();
        bytes32 key = claims.readingKey(market, H6, meterB);
        fileClaimRefused(abi.encodeWithSelector(OmissionClaims.OmissionAlreadyClaimed.selector, key));
        vm.warp(NOW0 + DISPUTE + 1);
        claims.uphold(market, H6, meterB);
        vm.expectRevert(abi.encodeWithSelector(OmissionClaims.OmissionNotOpen.selector, key));
        claims.uphold(market, H6, meterB);
        fileClaimRefused(abi.encodeWithSelector(OmissionClaims.OmissionAlreadyClaimed.selector, key));
        assertEq(claims.omissionsOf(oracleK), 1, "marked once");
    }

    /// Defence: a receipt for a reading taken late or refused (accepted = false) promises nothing.
    function test_defence_lateReceiptCannotClaim() public {
        anchorH6Root(false);
        bytes memory late = signReceipt(ORACLE_KEY, false);
        vm.expectRevert(abi.encodeWithSelector(OmissionClaims.OmissionNotReceipted.selector, oracleK));
        vm.prank(claimant);
        claims.claim(market, receiptB(), late, anchorH6);
    }

    /// Defence: a receipt signed by a key that is not the anchoring oracle's (any key, or another
    /// oracle that anchored nothing for that ISP) is refused; so is a receipt over other values.
    function test_defence_receiptOfNonOracleKeyRefused() public {
        anchorH6Root(false);
        bytes memory forged = signReceipt(0xBAD, true);
        vm.expectRevert(abi.encodeWithSelector(OmissionClaims.OmissionNotReceipted.selector, oracleK));
        vm.prank(claimant);
        claims.claim(market, receiptB(), forged, anchorH6);
        OmissionClaims.ReceiptIn memory other = receiptB();
        other.importWh = 751;
        bytes memory genuine = signReceipt(ORACLE_KEY, true);
        vm.expectRevert(abi.encodeWithSelector(OmissionClaims.OmissionNotReceipted.selector, oracleK));
        vm.prank(claimant);
        claims.claim(market, other, genuine, anchorH6);
    }

    /// Defence: the claim names the ISP's real anchor, and the receipt's market.
    function test_defence_claimNeedsTheAnchor() public {
        anchorH6Root(false);
        MeterOracle.Anchor memory wrong = anchorH6;
        wrong.oracle = ORACLE1;
        bytes memory sig = signReceipt(ORACLE_KEY, true);
        vm.expectRevert(abi.encodeWithSelector(OmissionClaims.OmissionNotAnchored.selector, market, H6));
        vm.prank(claimant);
        claims.claim(market, receiptB(), sig, wrong);
        vm.expectRevert(abi.encodeWithSelector(OmissionClaims.OmissionNotAnchored.selector, market3, H6));
        vm.prank(claimant);
        claims.claim(market3, receiptB(), sig, anchorH6);
    }

    /// Defence: claims close while the oracle's stake is still locked (settlement horizon minus
    /// the answer window after the anchor).
    function test_defence_claimTooLate() public {
        anchorH6Root(false);
        uint64 last = anchorH6.anchoredAt + markets.settlementHorizon(market) - DISPUTE;
        vm.warp(last + 1);
        bytes memory sig = signReceipt(ORACLE_KEY, true);
        vm.expectRevert(abi.encodeWithSelector(OmissionClaims.OmissionTooLate.selector, last));
        vm.prank(claimant);
        claims.claim(market, receiptB(), sig, anchorH6);
    }

    /// Defence: a reading ReadingDisputes already slashed the oracle for (it anchored, in that
    /// meter's name, what the meter never signed) is marked but not slashed again.
    function test_defence_noSecondSlashAfterAFault() public {
        anchorH6Root(false);
        fileClaim();
        bytes32 key = claims.readingKey(market, H6, meterB);
        vm.mockCall(address(disputes), abi.encodeWithSelector(disputes.judged.selector, key), abi.encode(uint256(1)));
        vm.warp(NOW0 + DISPUTE + 1);
        assertEq(claims.uphold(market, H6, meterB), 0, "nothing slashed twice");
        assertEq(claims.omissionsOf(oracleK), 1, "but marked");
        assertEq(oracle.stakeOf(market, oracleK).amount, STAKE, "stake intact");
    }

    /// Defence, the other order: where an omission claim on a reading was upheld (the oracle
    /// slashed), ReadingDisputes marks a fault on that same reading but slashes nothing more
    /// (S_DISP: ORACLE1 anchored 2000 Wh for its meter at 08:00, the meter signed 750).
    function test_defence_noSecondSlashAfterAnUpheldOmission() public {
        mint(ORACLE1, STAKE);
        vm.startPrank(ORACLE1);
        token.approve(address(oracle), type(uint256).max);
        oracle.stake(market, uint128(STAKE));
        vm.stopPrank();
        bytes32 key = claims.readingKey(market, H8, vm.addr(sales[S_DISP].meterKey));
        vm.mockCall(address(claims), abi.encodeWithSelector(claims.isUpheld.selector, key), abi.encode(true));
        Settlement.Record memory rec = settleSale(S_DISP);
        (Settlement.SettleIn memory input, ReadingDisputes.DisputeIn memory d) = (settleIn(S_DISP), disputeIn(S_DISP, 0));
        vm.prank(DSO1);
        disputes.dispute(input, rec, d);
        assertEq(disputes.faultsOf(ORACLE1), 1, "the fault is marked");
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKE, "not slashed a second time");
    }

    /// Only ReadingDisputes and OmissionClaims may slash.
    function test_defence_onlyTheClaimsSlash() public {
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleNotDisputes.selector, claimant));
        vm.prank(claimant);
        oracle.slash(market, oracleK, claimant);
    }
}
