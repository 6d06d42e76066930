// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SettlementFixture} from "../market/SettlementFixture.sol";
import {SameAssetFixture} from "./SameAsset.t.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {ClearingCommitment} from "../../src/market/ClearingCommitment.sol";
import {MeterOracle} from "../../src/metering/MeterOracle.sol";
import {ReadingDisputes} from "../../src/metering/ReadingDisputes.sol";

/// Red team (RT-6, RT-7 of the 2026-12-07 review), as regression tests of the defence: the
/// settlement fixture's world plus one sale (sOmit, owner3's, 5 kW at 08:00, committed baseline
/// 2000) whose meter signed +750 Wh (a full delivery) but whose reading is in no anchored root.
contract EvidenceTest is SettlementFixture {
    uint64 internal constant R_EXTRA = 11; // DSO1, zone 2, 08:00 x1, UP, 10 kW, MAX
    uint256 internal constant STAKE = 100_000;
    uint256 internal sOmit;

    function moreSales() internal override {
        assertEq(request(DSO1, market, 2, H8, 1, UP, 10_000, MAX, 0), R_EXTRA, "R_EXTRA");
        Terms memory t = terms(5_000);
        t.sellerKey = OWNER3_KEY;
        sOmit = addSale(t, b1(2000));
        award(sOmit, R_EXTRA, 0, 5_000);
        // no read(): the ISP 08:00 root (anchored in setUp) does not hold this meter's reading
        fundAndApprove(owner3, 1e12);
        vm.prank(owner3);
        book.postBond(owner3, 500_000);
    }

    function stakeOracle() internal {
        vm.prank(ADMIN);
        oracle.setRequiredStake(market, STAKE);
        mint(ORACLE1, STAKE);
        vm.startPrank(ORACLE1);
        token.approve(address(oracle), type(uint256).max);
        oracle.stake(market, uint128(STAKE));
        vm.stopPrank();
    }

    /// S_FAIL's whole award (8 kW at 08:00) penalised as undelivered.
    function voidPenalty() internal view returns (uint256 penalty) {
        (, penalty) = settlement.awardMoney(8_000, 8_000, ISP, 0, PRICE, false, 500, 15_000); // the fixture's tolerance, penalty factor
    }

    /// RT-6: the seller holds its meter's key and signs a second reading for an ISP the oracle
    /// anchored honestly, then disputes. The anchored leaf commits to the meter's first signature,
    /// so the dispute proves EQUIVOCATION: the seller's delivery in that ISP is void (fully
    /// penalised), the meter is marked, the honest oracle keeps its stake and is not marked.
    function test_RT6_sellerEquivocatingMeterSlashesHonestOracle() public {
        stakeOracle();
        uint256 meterKey = sales[S_FAIL].meterKey;
        Settlement.Record memory rec = settleSale(S_FAIL);
        assertEq(rec.lines[0].uncovered, 35_000, "50 % delivered: the penalty eats the payment and 35,000 more");
        uint256 before = token.balanceOf(owner2);
        ReadingDisputes.DisputeIn memory forged = signedDispute(S_FAIL, 0, 2, 0, 1000, meterKey);
        Settlement.SettleIn memory input = settleIn(S_FAIL);
        vm.expectEmit();
        emit ReadingDisputes.MeterEquivocated(rec.offerDigest, vm.addr(meterKey), market, H8, owner2);
        vm.prank(owner2);
        Settlement.Record memory c = disputes.dispute(input, rec, forged);
        assertEq(c.lines[0].payment, 0, "nothing paid for an ISP the meter signed twice");
        assertEq(c.lines[0].uncovered, voidPenalty(), "the whole award penalised");
        assertEq(token.balanceOf(owner2), before, "the seller gains nothing");
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKE, "the honest oracle keeps its stake");
        assertEq(disputes.faultsOf(ORACLE1), 0, "the honest oracle is not marked");
        assertEq(disputes.equivocationsOf(vm.addr(meterKey)), 1, "the meter is marked");
        // the same evidence cannot be replayed, nor a third reading undo the void
        forged = signedDispute(S_FAIL, 0, 3, 0, 2000, meterKey);
        vm.expectRevert(abi.encodeWithSelector(ReadingDisputes.DisputeIspVoided.selector, H8));
        disputes.dispute(input, c, forged);
        vm.warp(NOW0 + DISPUTE + 1);
        uint256 bond = book.bondOf(owner2);
        settlement.finalise(c);
        assertEq(bond - book.bondOf(owner2) + settlement.debtOf(owner2), voidPenalty(), "the seller pays it");
    }

    /// RT-6 sibling: the equivocation shown by anyone (here the buyer) voids the delivery the
    /// same way and pays the disputer nothing from the oracle.
    function test_RT6_equivocationShownByAThirdPartyPaysNobody() public {
        stakeOracle();
        Settlement.Record memory rec = settleSale(S_FULL);
        uint256 before = token.balanceOf(DSO1);
        Settlement.SettleIn memory input = settleIn(S_FULL);
        ReadingDisputes.DisputeIn memory d = signedDispute(S_FULL, 0, 2, 1500, 0, sales[S_FULL].meterKey);
        vm.prank(DSO1);
        Settlement.Record memory c = disputes.dispute(input, rec, d);
        assertEq(c.lines[0].payment, 0, "void");
        assertEq(token.balanceOf(DSO1), before, "no slash for an honest oracle");
        assertEq(oracle.stakeOf(market, ORACLE1).amount, STAKE, "stake intact");
    }

    /// RT-6 sibling: where the oracle DID anchor what the meter never signed (S_DISP: anchored
    /// 2000 Wh, the meter signed 750), the seller's own dispute corrects its settlement but the
    /// oracle's stake goes to the buyer, never to the disputed offer's seller.
    function test_RT6_slashNeverPaysTheDisputedSeller() public {
        stakeOracle();
        Settlement.Record memory rec = settleSale(S_DISP);
        uint256 sellerBefore = token.balanceOf(owner);
        uint256 buyerBefore = token.balanceOf(DSO1);
        (Settlement.SettleIn memory input, ReadingDisputes.DisputeIn memory d) = (settleIn(S_DISP), disputeIn(S_DISP, 0));
        vm.prank(owner);
        Settlement.Record memory c = disputes.dispute(input, rec, d);
        assertEq(c.lines[0].claim, 125_000, "re-settled at the meter's figure");
        assertEq(token.balanceOf(owner), sellerBefore, "the seller is not paid the stake");
        assertEq(token.balanceOf(DSO1) - buyerBefore, STAKE, "the buyer is");
        assertEq(disputes.faultsOf(ORACLE1), 1, "the oracle is marked");
    }

    /// RT-7: an honest seller whose reading is in no root (late, or left out by the oracle)
    /// brings its meter's signed reading itself (a zero anchor, no proof): it is settled on it,
    /// not by default with the full penalty.
    function test_RT7_omittedReadingPenalisesHonestSeller() public {
        Settlement.SettleIn memory s = omitIn(2, 750, sales[sOmit].meterKey);
        Settlement.Record memory r = settlement.settle(s);
        assertEq(r.lines[0].claim, 125_000, "1250 Wh saved: a full delivery, paid");
        assertEq(r.lines[0].uncovered, 0, "no penalty");
        vm.warp(WINDOW_CLOSES + 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementAlreadySettled.selector, digestOfSale(sOmit)));
        settlement.settleUnrevealed(s);
    }

    /// RT-7 sibling: a reading brought without an anchor must be the meter's: another key's
    /// signature, or the meter's over other values, is refused.
    function test_RT7_unanchoredReadingMustBeMeterSigned() public {
        bytes memory refused =
            abi.encodeWithSelector(Settlement.SettlementReadingNotAnchored.selector, digestOfSale(sOmit), H8);
        Settlement.SettleIn memory s = omitIn(1, 750, OWNER3_KEY);
        vm.expectRevert(refused);
        settlement.settle(s);
        s = omitIn(1, 750, sales[sOmit].meterKey);
        s.isps[0].reading.importWh = 0; // the signature was over 750
        vm.expectRevert(refused);
        settlement.settle(s);
        s = omitIn(1, 750, sales[sOmit].meterKey);
        s.isps[0].reading.anchor.oracle = ORACLE1; // a zero root with an oracle is no anchor either
        vm.expectRevert(refused);
        settlement.settle(s);
    }

    /// RT-7 sibling: a seller that brings, unanchored, another reading than the one its meter
    /// signed and the oracle anchored has equivocated: anyone shows the anchored one and the
    /// delivery is void.
    function test_RT7_unanchoredReadingAgainstTheAnchoredOneIsEquivocation() public {
        Settlement.SettleIn memory s = settleIn(S_FAIL);
        (uint64 imp, uint64 exp) = (uint64(0), uint64(1000)); // claims 2000 Wh saved instead of 1000
        s.isps[0].reading = unanchored(vm.addr(sales[S_FAIL].meterKey), 5, imp, exp, sales[S_FAIL].meterKey);
        Settlement.Record memory r = settlement.settle(s);
        assertEq(r.lines[0].uncovered, 0, "the seller's figure, until disputed");
        ReadingDisputes.DisputeIn memory d = disputeIn(S_FAIL, 0); // what the meter signed first (anchored)
        vm.prank(DSO1);
        Settlement.Record memory c = disputes.dispute(s, r, d);
        assertEq(c.lines[0].payment, 0, "void");
        assertEq(c.lines[0].uncovered, voidPenalty(), "fully penalised");
        assertEq(disputes.equivocationsOf(vm.addr(sales[S_FAIL].meterKey)), 1, "the meter is marked");
    }

    /// Sibling: a seller that let its AVAILABILITY award be settled by default (nothing paid)
    /// cannot turn it into a paid settlement by disputing it with its own second reading: a
    /// settlement made by default counted no reading, so there is nothing to dispute.
    function test_RT6_defaultSettlementCannotBeDisputedIntoPayment() public {
        Settlement.SettleIn memory s = settleIn(S_AVAIL);
        vm.warp(WINDOW_CLOSES + 1);
        Settlement.Record memory r = settlement.settleUnrevealed(s);
        assertEq(r.lines[0].payment, 0, "settled by default: capacity not paid");
        ReadingDisputes.DisputeIn memory d = signedDispute(S_AVAIL, 0, 2, 0, 500, sales[S_AVAIL].meterKey);
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementWindowClosed.selector, WINDOW_CLOSES));
        disputes.dispute(s, r, d);
    }

    function unanchored(address meter, uint64 sequence, uint64 importWh, uint64 exportWh, uint256 key)
        internal
        view
        returns (Settlement.ReadingIn memory r)
    {
        r.sequence = sequence;
        r.importWh = importWh;
        r.exportWh = exportWh;
        r.signature = signReading(key, Rd(meter, sequence, importWh, exportWh), H8);
    }

    /// sOmit's settlement inputs with its meter's reading (+`importWh`) brought unanchored, signed by `key`.
    function omitIn(uint64 sequence, uint64 importWh, uint256 key) internal view returns (Settlement.SettleIn memory s) {
        s = settleIn(S_FULL); // borrow a shape, then make it sOmit's
        s.offer = saleOffer[sOmit];
        s.baselineWh = sales[sOmit].baseline;
        s.salt = sales[sOmit].salt;
        Grp[] memory gs = sorted(groupsOf(market));
        uint256 g;
        while (book.offerDigest(gs[g].offer) != digestOfSale(sOmit)) ++g;
        s.isps[0].awards = awardsIn(gs, g, 0);
        s.isps[0].reading = unanchored(vm.addr(sales[sOmit].meterKey), sequence, importWh, 0, key);
    }
}

/// RT-4 as a regression test: asset X (owner3's) sells 08:00 x1 (sale A) and 08:00 x2 (sale B);
/// the oracle anchored 2500 Wh imported for X's meter at 08:00 where the meter signed 0. The
/// review settled both sales on that one reading and slashed the oracle twice. Two defences: no
/// result holds both sales (RT-3: `ClearingOffersOverlap`), and a wrong reading is one fault and
/// one slash per (market, ISP, meter) however often it is disputed.
contract EvidenceDoubleSlashTest is SameAssetFixture {
    uint256 internal constant STAKE = 100_000;

    function xAnchoredImport() internal pure override returns (uint64) {
        return 2500; // one wrong anchored reading
    }

    bytes internal input; // abi.encode(SettleIn) of sA
    bytes[] internal signed; // abi.encode(DisputeIn): readings X's meter signed for 08:00


    function setUp() public override {
        super.setUp();
        input = abi.encode(settleIn(sA));
        for (uint64 v = 0; v < 4; ++v) {
            // 0 (what the meter signed first), 500, 1000, 1500 Wh imported: 2500 was anchored
            signed.push(abi.encode(signedDispute(sA, 0, 1 + v, v * 500, 0, sales[sA].meterKey)));
        }
        vm.prank(ADMIN);
        oracle.setRequiredStake(market, STAKE);
        mint(ORACLE1, 10 * STAKE);
        vm.startPrank(ORACLE1);
        token.approve(address(oracle), type(uint256).max);
        oracle.stake(market, uint128(10 * STAKE));
        vm.stopPrank();
    }

    function test_RT4_oneWrongReadingSlashedTwice() public {
        assertEq(bytes4(refusal), ClearingCommitment.ClearingOffersOverlap.selector, "no result holds A and B");
        Settlement.Record memory a = settleSale(sA);
        uint256 before = token.balanceOf(NOBODY);
        vm.startPrank(NOBODY);
        Settlement.Record memory ca = disputes.dispute(settleIn(sA), a, disputeIn(sA, 0));
        vm.stopPrank();
        assertEq(disputes.faultsOf(ORACLE1), 1, "one wrong reading, one fault");
        assertEq(token.balanceOf(NOBODY) - before, STAKE, "slashed once");
        assertEq(ca.lines[0].claim, 250_000, "A re-settled at the meter's 0 Wh: 2500 Wh saved");
    }

    /// The class: whatever sequence of disputes anyone brings against the offers settled on X's
    /// meter (each with a reading X's meter signed), the oracle is marked and slashed at most once
    /// for (market, 08:00, X's meter). Inputs are encoded once (`setUp`), so that a run stays cheap.
    /// forge-config: default.fuzz.runs = 10000
    /// forge-config: quick.fuzz.runs = 1000
    function testFuzz_RT4_slashedAtMostOncePerMeterAndIsp(uint256 seed) public {
        Settlement.SettleIn memory sIn = abi.decode(input, (Settlement.SettleIn));
        Settlement.Record memory r = settlement.settle(sIn);
        address[3] memory who = [NOBODY, DSO1, owner3];
        uint256 before = token.balanceOf(NOBODY) + token.balanceOf(DSO1) + token.balanceOf(owner3);
        for (uint256 step = 0; step < 6; ++step) {
            uint256 x = uint256(keccak256(abi.encode(seed, step)));
            ReadingDisputes.DisputeIn memory d = abi.decode(signed[(x >> 8) % signed.length], (ReadingDisputes.DisputeIn));
            vm.prank(who[(x >> 16) % 3]);
            try disputes.dispute(sIn, r, d) returns (Settlement.Record memory c) {
                r = c;
            } catch {}
            assertLe(disputes.faultsOf(ORACLE1), 1, "at most one fault");
        }
        uint256 paid = token.balanceOf(NOBODY) + token.balanceOf(DSO1) + token.balanceOf(owner3) - before;
        assertLe(paid, STAKE, "at most one slash");
        assertEq(oracle.stakeOf(market, ORACLE1).amount, 10 * STAKE - paid, "what left the stake was paid once");
    }
}

/// Attacks on the evidence that were refused at 71fccf1 and must stay refused.
contract EvidenceDefenceTest is SettlementFixture {
    /// S_FULL and S_M2 share one meter; market2's anchor of 08:00 does not prove a reading in `market`.
    function test_defence_readingOfAnotherMarketRefused() public {
        vm.warp(DAY0 - 1); // a first result comes into force before its day begins (RT-9)
        uint64 id = openIn(OPERATOR, market2);
        postAs(OPERATOR, id, sorted(groupsOf(market2)));
        closeAs(OPERATOR, id);
        vm.warp(NOW0);
        Settlement.SettleIn memory s = settleIn(S_FULL);
        s.isps[0].reading = readingIn(S_M2, 0);
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementReadingNotAnchored.selector, digestOfSale(S_FULL), H8));
        settlement.settle(s);
    }

    /// A second dispute of the same ISP with yet another signed value counts the oracle's fault
    /// once; the meter signed two readings, so that ISP's delivery is now void.
    function test_defence_repeatDisputeCountsOnce() public {
        Settlement.Record memory r = settleSale(S_DISP);
        Settlement.Record memory c = disputes.dispute(settleIn(S_DISP), r, disputeIn(S_DISP, 0));
        c = disputes.dispute(settleIn(S_DISP), c, signedDispute(S_DISP, 0, 1, 100, 0, sales[S_DISP].meterKey));
        assertEq(disputes.faultsOf(ORACLE1), 1, "one fault for one wrong reading of one offer");
        assertEq(c.lines[0].payment, 0, "the meter signed two readings: void");
    }

    /// Only ReadingDisputes re-settles, and only it slashes.
    function test_defence_onlyTheEvidenceResettlesAndSlashes() public {
        Settlement.Record memory r = settleSale(S_DISP);
        int256[] memory net = new int256[](1);
        Settlement.SettleIn memory input = settleIn(S_DISP);
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementNotDisputes.selector, NOBODY));
        vm.prank(NOBODY);
        settlement.resettle(input, r, net);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleNotDisputes.selector, address(settlement)));
        vm.prank(address(settlement));
        oracle.slash(market, ORACLE1, NOBODY);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleDisputesAlreadySet.selector, address(disputes)));
        vm.prank(ADMIN);
        oracle.setDisputes(NOBODY);
    }
}
