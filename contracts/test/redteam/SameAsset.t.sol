// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ClearingFixture} from "../market/ClearingFixture.sol";
import {SettlementFixture} from "../market/SettlementFixture.sol";
import {SettlementPortfolioFixture} from "../market/SettlementPortfolio.t.sol";
import {ClearingCommitment} from "../../src/market/ClearingCommitment.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";

/// RT-3 (clearing side), from the outside review (shared/redteam/contracts/RedteamSameAsset.t.sol):
/// two offers of ONE asset with overlapping windows (08:00 x1 and 08:00 x2, both at the asset's
/// full prequalified 10 kW) are both in the book. The defences asserted here: a result never
/// awards two offers of one asset (or portfolio) that share an ISP, whatever their directions
/// (`ClearingOffersOverlap`, checked as the groups arrive), and a result that awards the older of
/// two overlapping offers is voided by a proof that the book holds the newer (`proveSuperseded`).
contract RedteamOverlapChallengeTest is ClearingFixture {
    uint64 internal constant H8 = DAY0 + 8 hours;
    uint64 internal a6;
    uint256 internal iSingle;
    uint256 internal iBlock;

    function buildBook() internal override {
        super.buildBook();
        a6 = newAsset(5); // prequalified UP_W = 10 kW
        OrderBook.Offer[] memory os = new OrderBook.Offer[](2);
        os[0] = offer(a6, DAY0 + 8 hours, 1, UP_W, 10_000);
        os[1] = offer(a6, DAY0 + 8 hours, 2, UP_W, 10_000); // a block over the same ISP, a higher nonce
        iSingle = relayAll(os);
        iBlock = iSingle + 1;
    }

    function overlap(uint256 later, uint64 previousEnd) internal view returns (bytes memory) {
        return overlapOf(listed[later].offer, previousEnd);
    }

    function overlapOf(OrderBook.Offer memory o, uint64 previousEnd) internal view returns (bytes memory) {
        return abi.encodeWithSelector(
            ClearingCommitment.ClearingOffersOverlap.selector, book.offerDigest(o), o.asset, o.portfolio, o.start, previousEnd
        );
    }

    /// The review's exploit: a challenger adds a6's block offer to the honest result, awarding a6
    /// twice its prequalified power in ISP 08:00. Refused: the honest result stays in force.
    function test_RT3_challengerAwardsOneAssetTwiceItsPrequalifiedPower() public {
        uint64 honest = commit(OPERATOR, groups(group(iBlock, awards(aw(R_DSO, 0, UP_W), aw(R_DSO, 1, UP_W)))));
        Grp[] memory gs = groups(
            group(iSingle, aw(R_DSO, 0, UP_W)), group(iBlock, awards(aw(R_DSO, 0, UP_W), aw(R_DSO, 1, UP_W)))
        );
        uint64 challenger = openAs(NOBODY);
        vm.expectRevert(overlap(iBlock, H8 + ISP));
        postAs(NOBODY, challenger, sorted(gs));
        assertEq(clearing.dayState(market, DAY0).current, honest, "the honest result stays in force");
        assertEq(clearing.requestLoad(honest, R_DSO, 0), UP_W, "a6 awarded once its prequalified power");
    }

    /// The same pair in the other order (the block first, as a different sort would put it) and
    /// split over two chunks: the order check carries from chunk to chunk.
    function test_RT3_overlapRefusedAcrossChunksAndInEitherOrder() public {
        uint64 id = openAs(OPERATOR);
        postAs(OPERATOR, id, groups(group(iSingle, aw(R_DSO, 0, UP_W))));
        vm.expectRevert(overlap(iBlock, H8 + ISP));
        postAs(OPERATOR, id, groups(group(iBlock, awards(aw(R_DSO, 0, UP_W), aw(R_DSO, 1, UP_W)))));

        uint64 other = openAs(OPERATOR);
        postAs(OPERATOR, other, groups(group(iBlock, awards(aw(R_DSO, 0, UP_W), aw(R_DSO, 1, UP_W)))));
        vm.expectRevert(overlap(iSingle, H8 + 2 * ISP));
        postAs(OPERATOR, other, groups(group(iSingle, aw(R_DSO, 0, UP_W))));
    }

    /// A result awarding only the older offer (the newer block overlaps it and is in force): anyone voids it.
    function test_RT3_resultAwardingTheOlderOfTwoOverlappingOffersIsVoided() public {
        Grp[] memory gs = groups(group(iSingle, aw(R_DSO, 0, UP_W)));
        uint64 id = commit(OPERATOR, gs);
        proveAs(id, gs, iSingle, iBlock, "");
        assertEq(uint8(clearing.result(id).status), 4, "VOID");
        assertEq(clearing.dayState(market, DAY0).current, 0, "the day is committed anew");
    }

    /// The newer offer is the one in force: a result awarding it cannot be voided with the older.
    function test_RT3_theNewerOverlappingOfferStands() public {
        Grp[] memory gs = groups(group(iBlock, awards(aw(R_DSO, 0, UP_W), aw(R_DSO, 1, UP_W))));
        uint64 id = commit(OPERATOR, gs);
        bytes memory notNewer = abi.encodeWithSelector(
            ClearingCommitment.ClearingOfferNotNewer.selector, digestOf(iSingle), offerAt(iSingle).nonce, offerAt(iBlock).nonce
        );
        proveAs(id, gs, iBlock, iSingle, notNewer);
    }

    /// Sibling: one asset's UP and DOWN offers in one ISP (a5: O_ZONE3 UP 08:00, then O_DOWN DOWN
    /// 08:00). Each could commit its own baseline (UP 5000, DOWN -5000, net 0) and both be paid
    /// for one meter reading: refused in one result, and the newer voids a result with the older.
    function test_RT3_oppositeDirectionsOfOneAssetInOneIsp() public {
        Grp[] memory both = sorted(groups(group(O_ZONE3, aw(R_TSO, 0, 5_000)), group(O_DOWN, aw(R_DSO3_DOWN, 0, 5_000))));
        uint64 id = openAs(OPERATOR);
        vm.expectRevert(overlap(O_DOWN, H8 + ISP));
        postAs(OPERATOR, id, both);

        Grp[] memory older = groups(group(O_ZONE3, aw(R_TSO, 0, 5_000)));
        uint64 voided = commit(OPERATOR, older);
        proveAs(voided, older, O_ZONE3, O_DOWN, "");
        assertEq(uint8(clearing.result(voided).status), 4, "VOID: the DOWN offer replaced the UP one");
    }

    /// Offers of one asset that share no ISP still clear together (a1: 08:00 and 10:00).
    function test_RT3_separateWindowsOfOneAssetClearTogether() public {
        uint64 id = commit(OPERATOR, groups(group(O_DIV, aw(R_DSO, 0, 5_000)), group(O_RED, aw(R_DSO_10, 0, 5_000))));
        assertEq(clearing.result(id).offers, 2, "both posted");
    }

    /// forge-config: default.fuzz.runs = 10000
    /// forge-config: quick.fuzz.runs = 1000
    /// Fuzz over the class: two offers of one fresh asset, any windows in 08:00-09:00 and any
    /// directions. In one result they are refused exactly when they share an ISP; a result
    /// awarding only the older is voided by the newer exactly then.
    function testFuzz_RT3_overlappingOffersOfOneAsset(uint8 startA, uint8 ispsA, bool downA, uint8 startB, uint8 ispsB, bool downB)
        public
    {
        (startA, startB) = (startA % 4, startB % 4);
        ispsA = uint8(1 + ispsA % (4 - startA));
        ispsB = uint8(1 + ispsB % (4 - startB));
        vm.warp(CLOSURE - 1 hours);
        uint64 x = newAsset(5);
        OrderBook.Offer[] memory os = new OrderBook.Offer[](2);
        os[0] = offer(x, H8 + uint64(startA) * ISP, ispsA, 4_000, 10_000);
        os[1] = offer(x, H8 + uint64(startB) * ISP, ispsB, 4_000, 10_000);
        (os[0].direction, os[1].direction) = (downA ? DOWN : UP, downB ? DOWN : UP);
        uint256 first = relayAll(os);
        vm.warp(CLOSURE + 1);
        bool overlapping = startA < startB + ispsB && startB < startA + ispsA;

        Grp[] memory gs = sorted(groups(fullGroup(first, ispsA), fullGroup(first + 1, ispsB)));
        uint64 both = openAs(OPERATOR);
        if (overlapping) vm.expectRevert(overlapOf(gs[1].offer, gs[0].offer.start + uint64(gs[0].offer.isps) * ISP));
        postAs(OPERATOR, both, gs);

        Grp[] memory older = groups(fullGroup(first, ispsA));
        uint64 id = commit(OPERATOR, older);
        bytes memory reason = overlapping
            ? bytes("")
            : abi.encodeWithSelector(
                ClearingCommitment.ClearingOffersNotOverlapping.selector, digestOf(first), digestOf(first + 1)
            );
        proveAs(id, older, first, first + 1, reason);
        assertEq(uint8(clearing.result(id).status), overlapping ? 4 : 2, "VOID exactly when the windows overlap");
    }

    /// NOBODY voids result `id` (whose first award in `gs` is offer `older`'s) with the book's offer `newer`.
    /// Reverting with `reason` unless it is empty; emitting `ResultVoided` otherwise.
    function proveAs(uint64 id, Grp[] memory gs, uint256 older, uint256 newer, bytes memory reason) internal {
        ClearingCommitment.AwardProof memory award = awardProof(gs, 0, 0, 0);
        (OrderBook.Offer memory o, OrderBook.Offer memory n) = (offerAt(older), offerAt(newer));
        (bytes32 root, bytes32[] memory proof) = (rootOf(newer), proofOf(newer));
        if (reason.length != 0) {
            vm.expectRevert(reason);
        } else {
            vm.expectEmit();
            emit ClearingCommitment.ResultVoided(id, digestOf(older), digestOf(newer), NOBODY);
        }
        vm.prank(NOBODY);
        clearing.proveSuperseded(id, award, o, n, root, proof);
    }

    /// Offer `i` awarded 4 kW in each of its ISPs (UP to R_DSO, DOWN to R_DOWN: both 08:00 x4 over zone 5).
    function fullGroup(uint256 i, uint16 isps) internal view returns (Grp memory) {
        uint64 req = listed[i].offer.direction == DOWN ? R_DOWN : R_DSO;
        Aw[] memory a = new Aw[](isps);
        for (uint16 t = 0; t < isps; ++t) {
            a[t] = aw(req, t, 4_000);
        }
        return group(i, a);
    }
}

/// RT-3 (settlement side): asset X (owner3's, 10 kW UP prequalified) sells 08:00 x1 (sale A) and
/// 08:00 x2 (sale B) at 10 kW each, both meant for R_X. The review settled both on one meter
/// reading (750,000 paid for what could be 500,000). The defence: no result can hold both, so the
/// settlement pays X's 08:00 once.
abstract contract SameAssetFixture is SettlementFixture {
    uint64 internal constant R_X = 11;
    uint256 internal sA;
    uint256 internal sB;

    /// What the oracle anchored as imported for X's meter at 08:00 (X's meter signed 0).
    function xAnchoredImport() internal pure virtual returns (uint64);

    function moreSales() internal override {
        assertEq(request(DSO1, market, 2, H8, 2, UP, 20_000, MAX, 0), R_X, "R_X");
        mint(owner3, OWNER_BOND); // a seller bonds before it offers (RT-1)
        vm.startPrank(owner3);
        token.approve(address(book), type(uint256).max);
        book.postBond(owner3, OWNER_BOND);
        vm.stopPrank();
        Terms memory t = terms(10_000);
        t.sellerKey = OWNER3_KEY;
        sA = addSale(t, b1(2500));
        t.assetId = sales[sA].assetId;
        t.isps = 2;
        sB = addSale(t, b2(2500, 2500));
        award(sA, R_X, 0, 10_000);
        award(sB, R_X, 0, 10_000);
        award(sB, R_X, 1, 10_000);
        refusedSale = sB; // the operator's attempt with both sales is refused; the day is committed with A alone
        misread(sA, 0, 0, 0, xAnchoredImport(), 0); // X's meter at 08:00: one reading, shared by A and B
        read(sB, 1, 0, 0);
    }
}

contract RedteamDoublePayTest is SameAssetFixture {
    function xAnchoredImport() internal pure override returns (uint64) {
        return 0;
    }

    function test_RT3_oneMetersDeliveryPaidTwiceInOneMarket() public {
        assertEq(bytes4(refusal), ClearingCommitment.ClearingOffersOverlap.selector, "a result awarding A and B was refused");
        Settlement.Record memory a = settleSale(sA);
        assertEq(a.lines[0].claim, 250_000, "A paid 2500 Wh");
        vm.warp(NOW0 + DISPUTE + 1);
        settlement.finalise(a);
        assertEq(book.escrowPaid(R_X), 250_000, "the buyer pays X's 08:00 once");
        checkMoney();
    }
}

/// RT-3, the portfolio sibling: a portfolio's two offers over one ISP (P1's 09:30 x2 block, then
/// a 09:30 x1 offer of P1) would both be paid for its members' one delivery. The result holding
/// both is refused; P1's block alone settles. (An asset's own offer beside its portfolio's is
/// `ClearingAssetInPortfolio`, judged as of the gate closure: the registry's side.)
contract RedteamPortfolioTwiceTest is SettlementPortfolioFixture {
    uint256 internal sTwice;

    function moreSales() internal override {
        super.moreSales();
        sTwice = addPortfolioSale(p1, 1, 2_000, COMMITTED, b1(1000));
        award(sTwice, R_PF_STD, 0, 2_000);
        refusedSale = sTwice;
    }


    function test_RT3_onePortfolioSoldTwiceInOneIsp() public {
        assertEq(bytes4(refusal), ClearingCommitment.ClearingOffersOverlap.selector, "both of P1's offers: refused");
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        assertEq(r.lines.length, 2, "P1's block settles alone");
    }
}
