// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {SettlementTestBase} from "../market/Settlement.t.sol";
import {StandardTree} from "../market/SettlementFixture.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {MeterOracle} from "../../src/metering/MeterOracle.sol";
import {BaselineDisputes} from "../../src/metering/BaselineDisputes.sol";
import {TestBase} from "../utils/TestBase.sol";
import {MarketRegistry} from "../../src/market/MarketRegistry.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {AssetRegistry} from "../../src/grid/AssetRegistry.sol";
import {ReadingDisputes} from "../../src/metering/ReadingDisputes.sol";

import {BaselineReference, BaselineDisputesFixture} from "./BaselineDisputesFixture.sol";

/// Standard (ROLLING_AVERAGE) baselines proven wrong: the exploit (an oracle anchors a wrong
/// baseline, the seller is paid for energy it did not deliver) and the defence (a dispute computes
/// the correction from anchored readings, re-settles, and slashes the oracle once, never to the seller).
contract BaselineDisputesTest is BaselineDisputesFixture {
    // ---------------------------------------------------------------------------- the honest oracle

    /// 2,150 Wh from the four anchored days: settled on it, and nothing to dispute.
    function test_honestBaseline_settlesAndCannotBeDisputed() public {
        (uint64 bits, int64[10] memory nets) = honestInputs();
        (bool some, int64 value,) = bd.rule(H9, bits, nets);
        assertTrue(some, "four days");
        assertEqInt(value, 2_150, "(2400 + 2000 + 1900 + 2300) / 4");
        anchorStd(2_150, bits, nets);
        Settlement.SettleIn memory s = stdIn(2_150, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        // 550 of 1,000 Wh: paid 55,000; 400 Wh short beyond the 50 tolerated x 1.5 x price: 60,000
        assertLine(r.lines[0], R_STD, H9, 55_000, 0, 5_000);
        BaselineDisputes.BaselineIn memory b = baselineIn(2_150, bits, nets, false);
        BaselineDisputes.DisputeIn memory agreeing = disputeIn(BaselineDisputes.Kind.INPUT, b, 1, historyIn(1));
        BaselineDisputes.DisputeIn memory used = disputeIn(BaselineDisputes.Kind.SKIPPED, b, similar[0], historyIn(0));
        // the fifth similar day's reading was anchored after the baselines: the oracle could not use it
        vm.warp(CLOSURE + 1);
        anchorHistory(4);
        vm.warp(NOW0 + 1);
        BaselineDisputes.DisputeIn memory late = disputeIn(BaselineDisputes.Kind.SKIPPED, b, similar[4], historyIn(4));
        bytes memory lateError = abi.encodeWithSelector(
            BaselineDisputes.BaselineReadingNotAnchored.selector, meter, H9 - uint64(similar[4] * 1 days));
        vm.startPrank(ANYONE);
        vm.expectRevert(notWrong());
        bd.dispute(s, r, arithmetic(b));
        vm.expectRevert(notWrong()); // the anchored reading agrees
        bd.dispute(s, r, agreeing);
        vm.expectRevert(notWrong()); // a day already used
        bd.dispute(s, r, used);
        vm.expectRevert(lateError);
        bd.dispute(s, r, late);
        // a revealed baseline that is not the anchored leaf
        b.baselineWh = 2_151;
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineNotInForce.selector, meter, H9));
        bd.dispute(s, r, arithmetic(b));
        vm.stopPrank();
        assertEq(bd.faultsOf(ORACLE1), 0, "no fault");
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKED, "no slash");
    }

    // ---------------------------------------------------------------------------- (b) the arithmetic

    /// The exploit: the oracle anchors 3,000 Wh on the honest inputs; the seller is paid in full for
    /// 550 Wh. The defence: the arithmetic is disputed, the baseline corrected to 2,150 for every
    /// settlement, the offer re-settled, the oracle slashed once, to the disputer.
    function test_wrongArithmetic_corrected_resettled_slashedOnce() public {
        (uint64 bits, int64[10] memory nets) = honestInputs();
        anchorStd(3_000, bits, nets);
        Settlement.SettleIn memory s = stdIn(3_000, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        assertLine(r.lines[0], R_STD, H9, 100_000, 100_000, 0); // the exploit: paid in full
        uint256 before = token.balanceOf(ANYONE);
        vm.expectEmit();
        emit BaselineDisputes.BaselineDisputed(
            r.offerDigest, ORACLE1, meter, H9, BaselineDisputes.Kind.ARITHMETIC, fixOf(2_150, bits, nets), 2_150,
            keccak256(abi.encode(bits, nets)), ANYONE
        );
        vm.prank(ANYONE);
        Settlement.Record memory c =
            bd.dispute(s, r, arithmetic(baselineIn(3_000, bits, nets, false)));
        assertLine(c.lines[0], R_STD, H9, 55_000, 0, 5_000);
        assertEq(oracle.baselineFix(market, H9, meter), fixOf(2_150, bits, nets), "the correction in force");
        assertEq(token.balanceOf(ANYONE), before + REQUIRED, "the disputer is paid the slash");
        assertEq(bd.faultsOf(ORACLE1), 1, "one fault");
        // the wrong value no longer settles anything; the corrected one does
        Settlement.SettleIn memory fixed_ = stdIn(2_150, keccak256(abi.encode(bits, nets)), true);
        assertTrue(!oracle.verifyBaseline(market, H9, meter, 3_000, s.baselineProofs[0]), "the wrong leaf is out");
        assertTrue(oracle.verifyBaseline(market, H9, meter, 2_150, fixed_.baselineProofs[0]), "the correction is in");
        // the correction is right: nothing more to dispute, and no second slash
        vm.prank(ANYONE);
        vm.expectRevert(notWrong());
        bd.dispute(fixed_, c, arithmetic(baselineIn(2_150, bits, nets, true)));
        // re-settling on the correction again changes nothing
        Settlement.Record memory again = bd.applyCorrection(fixed_, c, 0, 0);
        assertLine(again.lines[0], R_STD, H9, 55_000, 0, 5_000);
        finaliseAfterWindow(again); // final on the corrected baseline
    }

    /// The seller (or the meter's owner) disputing its own offer is made whole by the correction and
    /// never paid the slash: the buyer of the ISP's first award is.
    function test_sellerDisputes_slashGoesToTheBuyer() public {
        (uint64 bits, int64[10] memory nets) = inputsOf(idx4(0, 1, 2, 3), vals4(2400, 2000, 1900, 2300));
        anchorStd(1_000, bits, nets); // too low: the seller's 550 Wh count as none
        Settlement.SettleIn memory s = stdIn(1_000, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        address seller = sellerOf(std);
        uint256 sellerBefore = token.balanceOf(seller);
        uint256 buyerBefore = token.balanceOf(DSO1);
        vm.prank(seller);
        Settlement.Record memory c =
            bd.dispute(s, r, arithmetic(baselineIn(1_000, bits, nets, false)));
        assertLine(c.lines[0], R_STD, H9, 55_000, 0, 5_000);
        assertEq(token.balanceOf(seller), sellerBefore, "the seller is not paid the slash");
        assertEq(token.balanceOf(DSO1), buyerBefore + REQUIRED, "the buyer is");
    }

    // ---------------------------------------------------------------------------- (a) an input

    /// The oracle claims 4,000 Wh on the most recent similar day, whose anchored reading is 2,400:
    /// proven with that reading's Merkle proof; a second wrong input is corrected with no second slash.
    function test_wrongInput_correctedFromTheAnchoredReading_slashedOnce() public {
        (uint64 bits, int64[10] memory nets) = inputsOf(idx4(0, 1, 2, 3), vals4(4000, 2000, 1900, 3100));
        anchorStd(2_750, bits, nets); // (4000 + 2000 + 1900 + 3100) / 4
        Settlement.SettleIn memory s = stdIn(2_750, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        vm.prank(ANYONE);
        Settlement.Record memory c = bd.dispute(
            s, r, disputeIn(BaselineDisputes.Kind.INPUT, baselineIn(2_750, bits, nets, false), 0, historyIn(0))
        );
        nets[0] = 2_400;
        assertEq(oracle.baselineFix(market, H9, meter), fixOf(2_350, bits, nets), "(2400 + 2000 + 1900 + 3100) / 4");
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKED - REQUIRED, "slashed");
        // the fourth input, against the correction now in force
        Settlement.SettleIn memory s2 = stdIn(2_350, keccak256(abi.encode(bits, nets)), true);
        vm.prank(ANYONE);
        Settlement.Record memory c2 = bd.dispute(
            s2, c, disputeIn(BaselineDisputes.Kind.INPUT, baselineIn(2_350, bits, nets, true), 3, historyIn(3))
        );
        nets[3] = 2_300;
        assertEq(oracle.baselineFix(market, H9, meter), fixOf(2_150, bits, nets), "now the honest value");
        assertLine(c2.lines[0], R_STD, H9, 55_000, 0, 5_000);
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKED - REQUIRED, "slashed once per (market, ISP, meter)");
        assertEq(bd.faultsOf(ORACLE1), 1, "one fault");
        // a reading that is not the anchored one is no evidence
        Settlement.ReadingIn memory forged = historyIn(1);
        forged.importWh = 9_999;
        Settlement.SettleIn memory s3 = stdIn(2_150, keccak256(abi.encode(bits, nets)), true);
        BaselineDisputes.DisputeIn memory d = disputeIn(BaselineDisputes.Kind.INPUT, baselineIn(2_150, bits, nets, true), 1, forged);
        vm.prank(ANYONE);
        vm.expectRevert(abi.encodeWithSelector(
            BaselineDisputes.BaselineReadingNotAnchored.selector, meter, H9 - uint64(similar[1] * 1 days)));
        bd.dispute(s3, c2, d);
    }

    // ---------------------------------------------------------------------------- (c) a skipped day

    /// The oracle leaves out the most recent similar day (2,400 Wh) and averages the next three:
    /// 2,066 Wh. Its anchored reading proves the skip; the correction averages all four.
    function test_skippedDay_corrected() public {
        uint256[] memory which = new uint256[](3);
        (which[0], which[1], which[2]) = (1, 2, 3);
        int64[] memory values = new int64[](3);
        (values[0], values[1], values[2]) = (2000, 1900, 2300);
        (uint64 bits, int64[10] memory nets) = inputsOf(which, values);
        anchorStd(2_066, bits, nets);
        Settlement.SettleIn memory s = stdIn(2_066, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        // 466 Wh: paid 46,600; 484 Wh short beyond the tolerance: 72,600
        assertLine(r.lines[0], R_STD, H9, 46_600, 0, 26_000);
        vm.prank(ANYONE);
        Settlement.Record memory c = bd.dispute(
            s, r, disputeIn(BaselineDisputes.Kind.SKIPPED, baselineIn(2_066, bits, nets, false), similar[0], historyIn(0))
        );
        (uint64 hb, int64[10] memory hn) = honestInputs();
        assertEq(oracle.baselineFix(market, H9, meter), fixOf(2_150, hb, hn), "the four days");
        assertLine(c.lines[0], R_STD, H9, 55_000, 0, 5_000);
        assertEq(bd.faultsOf(ORACLE1), 1, "one fault");
    }

    // ---------------------------------------------------------------------------- too few days

    /// Two similar days are not enough: the baseline is NO_BASELINE, nothing delivered counts, and
    /// no settlement can stand on that meter's standard baseline for the ISP any more.
    function test_tooFewDays_noBaseline() public {
        uint256[] memory which = new uint256[](2);
        (which[0], which[1]) = (0, 1);
        int64[] memory values = new int64[](2);
        (values[0], values[1]) = (2400, 2000);
        (uint64 bits, int64[10] memory nets) = inputsOf(which, values);
        anchorStd(2_200, bits, nets);
        Settlement.SettleIn memory s = stdIn(2_200, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        vm.prank(ANYONE);
        Settlement.Record memory c =
            bd.dispute(s, r, arithmetic(baselineIn(2_200, bits, nets, false)));
        assertEq(oracle.baselineFix(market, H9, meter), oracle.NO_BASELINE(), "none");
        // nothing delivered: 950 Wh short beyond the tolerance x 1.5 x price
        assertLine(c.lines[0], R_STD, H9, 0, 0, 142_500);
        assertTrue(!oracle.verifyBaseline(market, H9, meter, 2_200, s.baselineProofs[0]), "no value stands");
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineNotCorrected.selector, meter, H9));
        bd.applyCorrection(s, c, 0, 0);
    }

    /// A used day of the other kind (a weekend day for a weekday ISP, or the reverse) is dropped.
    function test_wrongKindOfDay_dropped() public {
        uint256 k = 1;
        while (BaselineReference.weekday((H9 - k * 1 days) / 1 days) >= 5 == BaselineReference.weekday(H9 / 1 days) >= 5) ++k;
        (uint64 bits, int64[10] memory nets) = honestInputs();
        // the other-kind day k used too, with 9,000 Wh, in its place among the days
        uint64 withOther = bits | uint64(1 << (k - 1));
        int64[10] memory otherNets;
        uint256 at;
        uint256 j;
        for (uint256 d = 1; d <= 64; ++d) {
            if (withOther & (uint64(1 << (d - 1))) == 0) continue;
            otherNets[at++] = d == k ? int64(9_000) : history[j++];
        }
        int64 inflated = 3_520; // (2400 + 2000 + 1900 + 2300 + 9000) / 5
        anchorStd(inflated, withOther, otherNets);
        Settlement.SettleIn memory s = stdIn(inflated, keccak256(abi.encode(withOther, otherNets)), false);
        Settlement.Record memory r = settlement.settle(s);
        vm.prank(ANYONE);
        bd.dispute(s, r, arithmetic(baselineIn(inflated, withOther, otherNets, false)));
        assertEq(oracle.baselineFix(market, H9, meter), fixOf(2_150, bits, nets), "the four similar days");
    }

    /// A dispute comes in the settlement's dispute window only (Settlement.resettle's).
    function test_afterTheDisputeWindow_refused() public {
        (uint64 bits, int64[10] memory nets) = honestInputs();
        anchorStd(3_000, bits, nets);
        Settlement.SettleIn memory s = stdIn(3_000, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        vm.warp(r.settledAt + DISPUTE + 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementDisputeWindow.selector, r.settledAt + DISPUTE));
        bd.dispute(s, r, arithmetic(baselineIn(3_000, bits, nets, false)));
    }

    /// Gas of a dispute (the arithmetic kind and the input kind) and of anchoring an ISP's baselines.
    function test_gas_disputeAndAnchor() public {
        (uint64 bits, int64[10] memory nets) = honestInputs();
        uint256 later = block.timestamp;
        vm.warp(CLOSURE);
        bytes32 leaf = oracle.baselineLeaf(meter, H9, 3_000, keccak256(abi.encode(bits, nets)));
        bytes32 root = Hashes.commutativeKeccak256(leaf, otherLeaf);
        vm.prank(ORACLE1);
        uint256 g = gasleft();
        oracle.anchorBaselines(market, H9, root, 2);
        emit log_named_uint("anchorBaselines, gas (call)", g - gasleft());
        logGas("anchorBaselines", abi.encodeCall(MeterOracle.anchorBaselines, (market, H9, root, 2)), 1);
        vm.warp(later);
        Settlement.SettleIn memory s = stdIn(3_000, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        logGas("settle, ROLLING_AVERAGE, one award-ISP, reading proof of depth 20", abi.encodeCall(Settlement.settle, (s)), 1);
        BaselineDisputes.DisputeIn memory d =
            arithmetic(baselineIn(3_000, bits, nets, false));
        vm.prank(ANYONE);
        g = gasleft();
        bd.dispute(s, r, d);
        emit log_named_uint("BaselineDisputes.dispute ARITHMETIC (first: slash), gas (call)", g - gasleft());
        logGas("BaselineDisputes.dispute ARITHMETIC", abi.encodeCall(BaselineDisputes.dispute, (s, r, d)), 1);
    }

    /// Gas of an INPUT dispute (an anchored reading's proof checked against its root).
    function test_gas_inputDispute() public {
        (uint64 bits, int64[10] memory nets) = inputsOf(idx4(0, 1, 2, 3), vals4(4000, 2000, 1900, 3100));
        anchorStd(2_750, bits, nets);
        Settlement.SettleIn memory s = stdIn(2_750, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        BaselineDisputes.DisputeIn memory d =
            disputeIn(BaselineDisputes.Kind.INPUT, baselineIn(2_750, bits, nets, false), 0, historyIn(0));
        vm.prank(ANYONE);
        bd.dispute(s, r, d);
        logGas("BaselineDisputes.dispute INPUT (first: slash)", abi.encodeCall(BaselineDisputes.dispute, (s, r, d)), 1);
    }

    // ---------------------------------------------------------------------------- (d) an invented day

    /// The exploit: the oracle averages a fifth day it has no reading of (5,000 Wh): 2,720 Wh, and
    /// the seller is paid for 1,000 Wh it did not deliver. The defence: unanswered, the challenge is
    /// upheld by anyone; the correction (the four anchored days: 2,150) is in force for every
    /// settlement, the oracle slashed once to the challenger, the bond back.
    function test_inventedDay_unanswered_corrected_slashedOnce_bondBack() public {
        (uint64 bits, int64[10] memory nets) = inventedInputs(5_000);
        anchorStd(2_720, bits, nets);
        BaselineDisputes.BaselineIn memory b = baselineIn(2_720, bits, nets, false);
        uint64 answerBy = uint64(block.timestamp + DISPUTE);
        mint(CHALLENGER, BOND);
        vm.startPrank(CHALLENGER);
        token.approve(address(bd), BOND);
        vm.expectEmit();
        emit BaselineDisputes.BaselineInputChallenged(market, H9, meter, similar[4], 5_000, CHALLENGER, answerBy);
        bd.challengeInput(market, H9, meter, b, similar[4]);
        vm.stopPrank();
        assertEq(token.balanceOf(address(bd)), BOND, "the bond is held");
        // a second challenge of that day, while open (or ever), is refused
        vm.expectRevert(challengeError(BaselineDisputes.BaselineChallengeTaken.selector, similar[4]));
        vm.prank(ANYONE);
        bd.challengeInput(market, H9, meter, b, similar[4]);
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineAnswerOpen.selector, answerBy));
        bd.upholdInput(market, H9, meter, similar[4], b);
        vm.warp(answerBy + 1);
        (uint64 hb, int64[10] memory hn) = honestInputs();
        vm.expectEmit();
        emit BaselineDisputes.BaselineInputUpheld(
            market, H9, meter, similar[4], ORACLE1, fixOf(2_150, hb, hn), 2_150, keccak256(abi.encode(hb, hn)), REQUIRED,
            CHALLENGER
        );
        vm.prank(UPHOLDER);
        assertEq(bd.upholdInput(market, H9, meter, similar[4], b), REQUIRED, "slashed");
        assertEq(oracle.baselineFix(market, H9, meter), fixOf(2_150, hb, hn), "the rule without the day");
        assertEq(token.balanceOf(CHALLENGER), BOND + REQUIRED, "the bond back and the slash");
        assertEq(token.balanceOf(UPHOLDER), 0, "the upholder gets nothing");
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKED - REQUIRED, "slashed once");
        assertEq(bd.faultsOf(ORACLE1), 1, "one fault");
        assertEq(uint8(bd.challengeOf(market, H9, meter, similar[4]).status), uint8(BaselineDisputes.ChallengeStatus.Upheld), "upheld");
        vm.expectRevert(challengeError(BaselineDisputes.BaselineChallengeNotOpen.selector, similar[4]));
        bd.upholdInput(market, H9, meter, similar[4], b);
        // the settlement stands on the correction only
        Settlement.SettleIn memory s = stdIn(2_150, keccak256(abi.encode(hb, hn)), true);
        Settlement.Record memory r = settlement.settle(s);
        assertLine(r.lines[0], R_STD, H9, 55_000, 0, 5_000);
        assertLeafOut(2_720, bits, nets);
    }

    /// The honest oracle answers with the day's anchored reading: the bond pays it, nothing changes.
    function test_answered_bondToTheAnswerer_nothingChanges() public {
        (uint64 bits, int64[10] memory nets) = honestInputs();
        anchorStd(2_150, bits, nets);
        BaselineDisputes.BaselineIn memory b = baselineIn(2_150, bits, nets, false);
        challenge(b, similar[1]);
        uint256 before = token.balanceOf(ORACLE1);
        Settlement.ReadingIn memory r = historyIn(1);
        vm.expectEmit();
        emit BaselineDisputes.BaselineInputAnswered(market, H9, meter, similar[1], ORACLE1);
        vm.prank(ORACLE1);
        bd.answerInput(market, H9, meter, similar[1], r);
        assertEq(token.balanceOf(ORACLE1), before + BOND, "the bond pays the answerer");
        assertEq(oracle.baselineFix(market, H9, meter), bytes32(0), "the leaf stands");
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKED, "no slash");
        assertEq(bd.faultsOf(ORACLE1), 0, "no fault");
        pastAnswerWindow();
        vm.expectRevert(challengeError(BaselineDisputes.BaselineChallengeNotOpen.selector, similar[1]));
        bd.upholdInput(market, H9, meter, similar[1], b);
        vm.expectRevert(challengeError(BaselineDisputes.BaselineChallengeTaken.selector, similar[1]));
        bd.challengeInput(market, H9, meter, b, similar[1]);
    }

    /// Answers that prove nothing: another day's reading, a forged value, a reading anchored after
    /// the baselines, an anchored reading of another value than the input; and any answer too late.
    function test_wrongAnswers_refused() public {
        (uint64 bits, int64[10] memory nets) = inventedInputs(5_000);
        nets[0] = 4_000; // the anchored reading of that day is 2,400
        anchorStd(3_040, bits, nets); // (4000 + 2000 + 1900 + 2300 + 5000) / 5
        BaselineDisputes.BaselineIn memory b = baselineIn(3_040, bits, nets, false);
        challenge(b, similar[0]);
        challenge(b, similar[4]);
        bytes memory notAnchored0 = abi.encodeWithSelector(
            BaselineDisputes.BaselineReadingNotAnchored.selector, meter, H9 - uint64(similar[0] * 1 days));
        (Settlement.ReadingIn memory day0, Settlement.ReadingIn memory day1) = (historyIn(0), historyIn(1));
        Settlement.ReadingIn memory forged = historyIn(0);
        forged.importWh = 4_000;
        vm.startPrank(ORACLE1);
        vm.expectRevert(notAnchored0); // another day's reading
        bd.answerInput(market, H9, meter, similar[0], day1);
        vm.expectRevert(notAnchored0);
        bd.answerInput(market, H9, meter, similar[0], forged);
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineAnswerNotTheInput.selector, int64(4_000), int64(2_400)));
        bd.answerInput(market, H9, meter, similar[0], day0);
        vm.stopPrank();
        // the fifth day's reading, anchored only after the baselines: the oracle could not have used it
        vm.warp(CLOSURE + 1);
        anchorHistory(4);
        vm.warp(NOW0 + 1);
        Settlement.ReadingIn memory late = historyIn(4);
        vm.expectRevert(abi.encodeWithSelector(
            BaselineDisputes.BaselineReadingNotAnchored.selector, meter, H9 - uint64(similar[4] * 1 days)));
        vm.prank(ORACLE1);
        bd.answerInput(market, H9, meter, similar[4], late);
        pastAnswerWindow();
        uint64 answerBy = bd.challengeOf(market, H9, meter, similar[0]).answerBy;
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineAnswerClosed.selector, answerBy));
        bd.answerInput(market, H9, meter, similar[0], day0);
    }

    /// A challenge names a used day of the baseline in force, from the baselines' anchor until a
    /// settlement horizon minus a dispute window after it.
    function test_challenge_refusedOffTheBaselineOrLate() public {
        (uint64 bits, int64[10] memory nets) = honestInputs();
        BaselineDisputes.BaselineIn memory b = baselineIn(2_150, bits, nets, false);
        mint(CHALLENGER, BOND);
        vm.prank(CHALLENGER);
        token.approve(address(bd), BOND);
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineNotInForce.selector, meter, H9));
        vm.prank(CHALLENGER);
        bd.challengeInput(market, H9, meter, b, similar[0]); // nothing anchored yet
        anchorStd(2_150, bits, nets);
        vm.startPrank(CHALLENGER);
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineDayNotUsed.selector, meter, H9, similar[4]));
        bd.challengeInput(market, H9, meter, b, similar[4]);
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineDayNotUsed.selector, meter, H9, 0));
        bd.challengeInput(market, H9, meter, b, 0);
        b.baselineWh = 2_151;
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineNotInForce.selector, meter, H9));
        bd.challengeInput(market, H9, meter, b, similar[0]);
        b.baselineWh = 2_150;
        uint64 lastAt = CLOSURE + markets.settlementHorizon(market) - DISPUTE;
        vm.warp(lastAt + 1);
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineChallengeTooLate.selector, lastAt));
        bd.challengeInput(market, H9, meter, b, similar[0]);
        vm.stopPrank();
    }

    /// A dispute first (a wrong input: slashed), then the invented day upheld against the correction
    /// in force: corrected again, no second slash; the challenger gets its bond back only.
    function test_disputeThenChallenge_slashedOnce() public {
        (uint64 bits, int64[10] memory nets) = inventedInputs(5_000);
        nets[0] = 4_000;
        anchorStd(3_040, bits, nets);
        Settlement.SettleIn memory s = stdIn(3_040, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        vm.prank(ANYONE);
        bd.dispute(s, r, disputeIn(BaselineDisputes.Kind.INPUT, baselineIn(3_040, bits, nets, false), 0, historyIn(0)));
        nets[0] = 2_400;
        assertEq(oracle.baselineFix(market, H9, meter), fixOf(2_720, bits, nets), "(2400 + 2000 + 1900 + 2300 + 5000) / 5");
        BaselineDisputes.BaselineIn memory b = baselineIn(2_720, bits, nets, true);
        challenge(b, similar[4]);
        pastAnswerWindow();
        assertEq(bd.upholdInput(market, H9, meter, similar[4], b), 0, "no second slash");
        (uint64 hb, int64[10] memory hn) = honestInputs();
        assertEq(oracle.baselineFix(market, H9, meter), fixOf(2_150, hb, hn), "the four anchored days");
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKED - REQUIRED, "slashed once per (market, ISP, meter)");
        assertEq(bd.faultsOf(ORACLE1), 1, "one fault");
        assertEq(token.balanceOf(CHALLENGER), BOND, "the bond back");
    }

    /// The invented day upheld first (slashed), then a wrong input disputed against the correction:
    /// corrected, re-settled, no second slash.
    function test_challengeThenDispute_slashedOnce() public {
        (uint64 bits, int64[10] memory nets) = inventedInputs(5_000);
        nets[0] = 4_000;
        anchorStd(3_040, bits, nets);
        challenge(baselineIn(3_040, bits, nets, false), similar[4]);
        pastAnswerWindow();
        assertEq(bd.upholdInput(market, H9, meter, similar[4], baselineIn(3_040, bits, nets, false)), REQUIRED, "slashed");
        (uint64 kb, int64[10] memory kn) = inputsOf(idx4(0, 1, 2, 3), vals4(4000, 2000, 1900, 2300));
        assertEq(oracle.baselineFix(market, H9, meter), fixOf(2_550, kb, kn), "(4000 + 2000 + 1900 + 2300) / 4");
        Settlement.SettleIn memory s = stdIn(2_550, keccak256(abi.encode(kb, kn)), true);
        Settlement.Record memory r = settlement.settle(s);
        vm.prank(ANYONE);
        Settlement.Record memory c =
            bd.dispute(s, r, disputeIn(BaselineDisputes.Kind.INPUT, baselineIn(2_550, kb, kn, true), 0, historyIn(0)));
        assertLine(c.lines[0], R_STD, H9, 55_000, 0, 5_000);
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKED - REQUIRED, "slashed once per (market, ISP, meter)");
        assertEq(bd.faultsOf(ORACLE1), 1, "one fault");
    }

    /// Upheld against the correction in force when it still averages the input (no second slash);
    /// a challenge whose input no correction averages any more (here: no baseline left) lapses: the
    /// bond back, nothing else.
    function test_challenge_upheldOnTheCorrection_orLapses() public {
        uint256[] memory which = new uint256[](3);
        (which[0], which[1], which[2]) = (0, 1, 4);
        int64[] memory values = new int64[](3);
        (values[0], values[1], values[2]) = (4000, 2000, 5000); // day 0's anchored reading is 2,400
        (uint64 bits, int64[10] memory nets) = inputsOf(which, values);
        anchorStd(3_666, bits, nets);
        challenge(baselineIn(3_666, bits, nets, false), similar[4]);
        challenge(baselineIn(3_666, bits, nets, false), similar[1]); // left unanswered
        Settlement.SettleIn memory s = stdIn(3_666, keccak256(abi.encode(bits, nets)), false);
        Settlement.Record memory r = settlement.settle(s);
        vm.prank(ANYONE);
        bd.dispute(s, r, disputeIn(BaselineDisputes.Kind.INPUT, baselineIn(3_666, bits, nets, false), 0, historyIn(0)));
        nets[0] = 2_400;
        pastAnswerWindow();
        BaselineDisputes.BaselineIn memory fixed_ = baselineIn(3_133, bits, nets, true);
        assertEq(bd.upholdInput(market, H9, meter, similar[4], fixed_), 0, "no second slash");
        assertEq(oracle.baselineFix(market, H9, meter), oracle.NO_BASELINE(), "two days left: none");
        vm.expectEmit();
        emit BaselineDisputes.BaselineInputLapsed(market, H9, meter, similar[1]);
        bd.upholdInput(market, H9, meter, similar[1], fixed_);
        assertEq(uint8(bd.challengeOf(market, H9, meter, similar[1]).status), uint8(BaselineDisputes.ChallengeStatus.Lapsed), "lapsed");
        assertEq(token.balanceOf(CHALLENGER), 2 * BOND, "both bonds back");
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKED - REQUIRED, "slashed once");
    }

    /// Whatever the invented day and value, the upheld correction is the rule on the anchored days.
    function testFuzz_upheld_isTheRuleWithoutTheDay(int64 invented, uint8 extra) public {
        invented = invented % 1e9; // a meter's Wh in 15 minutes, generously
        uint256 k = similar[4] + 7 * (uint256(extra) % 5); // a later similar day: none anchored
        (uint64 bits, int64[10] memory nets) = honestInputs();
        bits |= uint64(1 << (k - 1));
        nets[4] = invented;
        (, int64 value,) = BaselineReference.rule(H9, bits, nets);
        anchorStd(value, bits, nets);
        challenge(baselineIn(value, bits, nets, false), k);
        pastAnswerWindow();
        bd.upholdInput(market, H9, meter, k, baselineIn(value, bits, nets, false));
        (uint64 hb, int64[10] memory hn) = honestInputs();
        (, int64 expected, bytes32 kept) = BaselineReference.rule(H9, hb, hn);
        assertEq(oracle.baselineFix(market, H9, meter), keccak256(abi.encode(expected, kept)), "the anchored days' rule");
    }

    /// Gas of a challenge, its answer, and an upheld one (first: slash).
    function test_gas_challengeAnswerUphold() public {
        (uint64 bits, int64[10] memory nets) = inventedInputs(5_000);
        anchorStd(2_720, bits, nets);
        BaselineDisputes.BaselineIn memory b = baselineIn(2_720, bits, nets, false);
        mint(CHALLENGER, 2 * BOND);
        vm.startPrank(CHALLENGER);
        token.approve(address(bd), 2 * BOND);
        uint256 g = gasleft();
        bd.challengeInput(market, H9, meter, b, similar[4]);
        emit log_named_uint("BaselineDisputes.challengeInput, gas (call)", g - gasleft());
        logGas("BaselineDisputes.challengeInput", abi.encodeCall(BaselineDisputes.challengeInput, (market, H9, meter, b, similar[4])), 1);
        bd.challengeInput(market, H9, meter, b, similar[0]);
        vm.stopPrank();
        Settlement.ReadingIn memory r = historyIn(0);
        vm.prank(ORACLE1);
        g = gasleft();
        bd.answerInput(market, H9, meter, similar[0], r);
        emit log_named_uint("BaselineDisputes.answerInput, gas (call)", g - gasleft());
        logGas("BaselineDisputes.answerInput", abi.encodeCall(BaselineDisputes.answerInput, (market, H9, meter, similar[0], r)), 1);
        pastAnswerWindow();
        g = gasleft();
        bd.upholdInput(market, H9, meter, similar[4], b);
        emit log_named_uint("BaselineDisputes.upholdInput (first: slash), gas (call)", g - gasleft());
        logGas("BaselineDisputes.upholdInput", abi.encodeCall(BaselineDisputes.upholdInput, (market, H9, meter, similar[4], b)), 1);
    }
}

/// `BaselineDisputes.rule` against the reference, fuzzed.
contract BaselineRuleFuzzTest is TestBase {
    BaselineDisputes internal bd;

    function assertEqInt(int256 actual, int256 expected, string memory what) internal pure {
        if (actual != expected) revert AssertionFailed(what);
    }

    function setUp() public {
        // `rule` is pure: no contract it names is called
        bd = new BaselineDisputes(
            MarketRegistry(address(0)), OrderBook(address(0)), AssetRegistry(address(0)), MeterOracle(address(0)),
            Settlement(address(0)), ReadingDisputes(address(0)), IERC20(address(0)), 0
        );
    }

    /// forge-config: default.fuzz.runs = 10000
    /// forge-config: quick.fuzz.runs = 1000
    function testFuzz_rule_matchesTheReference(uint32 day, uint64 daysBack, int64[10] memory nets) public view {
        uint64 ispStart = uint64(day) * 900; // any ISP start, including the first days after 1970
        for (uint256 i = 0; i < 10; ++i) {
            nets[i] = nets[i] % 1e12; // a meter's Wh in 15 minutes, generously (the sign kept)
        }
        (bool some, int64 value, bytes32 kept) = bd.rule(ispStart, daysBack, nets);
        (bool rs, int64 rv, bytes32 rk) = BaselineReference.rule(ispStart, daysBack, nets);
        assertTrue(some == rs, "some");
        assertEqInt(value, rv, "value");
        assertEq(kept, rk, "kept inputs");
    }

    /// Negative means round toward zero, so a baseline never claims more than was measured on average.
    function test_rule_roundsTowardZero() public view {
        int64[10] memory nets;
        (nets[0], nets[1], nets[2]) = (-1, -1, 0);
        uint64 monday = 4 days; // 1970-01-05
        uint64 bits = uint64(1 << 6 | 1 << 13 | 1 << 20); // 7, 14, 21 days back: Mondays
        (bool some, int64 value,) = bd.rule(monday + 30 days - 2 days, 0, nets); // none used
        assertTrue(!some, "no day");
        (some, value,) = bd.rule(monday + 28 days, bits, nets);
        assertTrue(some, "three Mondays");
        assertEqInt(value, 0, "-2 / 3 rounds to 0");
        (nets[0], nets[1], nets[2]) = (5, 5, 6);
        (, value,) = bd.rule(monday + 28 days, bits, nets);
        assertEqInt(value, 5, "16 / 3 rounds to 5");
    }
}
