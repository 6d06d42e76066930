// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SettlementFixture} from "../market/SettlementFixture.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {SettlementHandler} from "../market/SettlementInvariant.t.sol";
import {ReadingDisputes} from "../../src/metering/ReadingDisputes.sol";

/// Red team RT-1 and RT-2 (../shared/redteam/contracts/RedteamBonds.t.sol), turned into the
/// defence: penalties are backed by the seller's bond. The settlement fixture's world, plus a
/// second failing sale of owner2 (same figures as S_FAIL: 8 kW awarded, 50 % delivered: payment
/// 100,000, penalty 135,000, 35,000 beyond the payment) and a full delivery of owner2 (8 kW, paid
/// 200,000), each to its own request.
contract BondsTest is SettlementFixture {
    uint64 internal constant R_EXTRA = 11; // DSO1, zone 2, 08:00 x1, UP, 10 kW, MAX
    uint64 internal constant R_EXTRA2 = 12; // the same
    uint256 internal sFail2;
    uint256 internal sGood2;

    function moreSales() internal override {
        assertEq(request(DSO1, market, 2, H8, 1, UP, 10_000, MAX, 0), R_EXTRA, "R_EXTRA");
        assertEq(request(DSO1, market, 2, H8, 1, UP, 10_000, MAX, 0), R_EXTRA2, "R_EXTRA2");
        Terms memory t = terms(8_000);
        t.sellerKey = OWNER2_KEY;
        sFail2 = addSale(t, b1(1000));
        award(sFail2, R_EXTRA, 0, 8_000);
        read(sFail2, 0, 0, 0);
        sGood2 = addSale(t, b1(2000));
        award(sGood2, R_EXTRA2, 0, 8_000);
        read(sGood2, 0, 0, 0);
    }

    function nextOffer(uint256 sale) internal view returns (OrderBook.Offer memory o) {
        uint64 assetId = sales[sale].assetId;
        uint64 start = DAY0 + 10 days + 8 hours;
        o = assetOffer(assetId, start, book.assetNonce(assetId) + 1);
        o.expiry = start;
    }

    /// The offer, relayed strictly, is refused with `reason`.
    function assertRefused(OrderBook.Offer memory o, uint256 key, bytes memory reason) internal {
        (OrderBook.Offer[] memory os, bytes[] memory sigs) = single(o, sign(key, o));
        vm.expectRevert(reason);
        vm.prank(aggregator);
        submit(book, os, sigs, true);
    }

    /// RT-1: the seller that fell short cannot take its bond out before it is settled: a
    /// withdrawal needs a notice that outlasts every settlement of its earlier offers, and during
    /// the notice the bond still pays the penalty (owner2's whole bond, 20,000, goes to the buyer).
    function test_RT1_bondCannotLeaveBeforeSettlement() public {
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookBondNotice.selector, uint64(0)));
        vm.prank(owner2);
        book.withdrawBond(OWNER2_BOND);
        vm.prank(owner2);
        book.announceBondWithdrawal(OWNER2_BOND);
        uint64 ends = uint64(block.timestamp) + book.bondNoticeSeconds();
        assertTrue(ends > WINDOW_CLOSES + 2 * DISPUTE, "the notice outlasts the day's last dispute");
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookBondNotice.selector, ends));
        vm.prank(owner2);
        book.withdrawBond(OWNER2_BOND);

        Settlement.Record memory r = settleSale(S_FAIL);
        assertEq(r.lines[0].uncovered, 35_000, "35,000 of penalty beyond the payment");
        assertEq(book.bondLocked(owner2), OWNER2_BOND, "the bond locked for it");
        uint256 dsoBefore = settlement.claimable(DSO1);
        vm.warp(NOW0 + DISPUTE + 1);
        settlement.finalise(r);
        assertEq(settlement.claimable(DSO1) - dsoBefore, OWNER2_BOND, "the buyer gets the whole bond");
        assertEq(settlement.debtOf(owner2), 35_000 - OWNER2_BOND, "the rest is a debt");
        vm.warp(ends);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookBondLocked.selector, OWNER2_BOND, uint256(0)));
        vm.prank(owner2);
        book.withdrawBond(OWNER2_BOND);
    }

    /// RT-1: a seller with debt does not sell, even with a new bond; its later claims pay the debt
    /// first, its creditor collects it, and then it sells again.
    function test_RT1_indebtedSellerDoesNotOffer_claimsPayItsDebtFirst() public {
        Settlement.Record memory r = settleSale(S_FAIL);
        vm.warp(NOW0 + DISPUTE + 1);
        settlement.finalise(r);
        uint256 debt = 35_000 - OWNER2_BOND;
        assertEq(settlement.owedTo(owner2, DSO1), debt, "owed to the buyer");

        OrderBook.Offer memory o = nextOffer(S_FAIL);
        assertRefused(o, OWNER2_KEY, abi.encodeWithSelector(OrderBook.OrderBookSellerNotBonded.selector, owner2, 0, true, 0));
        vm.prank(owner2);
        book.postBond(owner2, 50_000); // a fresh bond does not pay the old debt
        assertRefused(o, OWNER2_KEY, abi.encodeWithSelector(OrderBook.OrderBookSellerNotBonded.selector, owner2, 50_000, true, 0));

        vm.warp(NOW0); // the full delivery is settled in the window, and finalised
        Settlement.Record memory good = settleSale(sGood2);
        assertEq(good.lines[0].claim, 200_000, "a full delivery");
        vm.warp(NOW0 + DISPUTE + 1);
        settlement.finalise(good);
        assertEq(settlement.claimable(owner2), 200_000 - debt, "the claim paid the debt first");
        assertEq(settlement.debtOf(owner2), 0, "no debt left");
        assertEq(settlement.repaidOf(owner2), debt, "held for the creditor");
        uint256 before = token.balanceOf(DSO1);
        vm.prank(DSO1);
        settlement.collectDebt(owner2);
        assertEq(token.balanceOf(DSO1) - before, debt, "the buyer collects its penalty in full");
        assertEq(settlement.owedTo(owner2, DSO1), 0, "settled");
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementNothingToWithdraw.selector, DSO1));
        vm.prank(DSO1);
        settlement.collectDebt(owner2);
        assertEq(relay(aggregator, o, sign(OWNER2_KEY, o)), 1, "debt paid: it sells again");
    }

    /// RT-1 sibling: anyone may pay a seller's debt; a seller without any bond does not sell.
    function test_RT1_debtPaidDirectly_unbondedSellerDoesNotOffer() public {
        Settlement.Record memory r = settleSale(S_FAIL);
        vm.warp(NOW0 + DISPUTE + 1);
        settlement.finalise(r);
        uint256 debt = settlement.debtOf(owner2);
        vm.prank(owner2);
        token.approve(address(settlement), debt);
        vm.prank(owner2);
        settlement.payDebt(owner2, debt + 1); // at most the debt is taken
        assertEq(settlement.debtOf(owner2), 0, "paid");
        assertEq(book.bondWord(owner2) >> 255, 0, "the book knows");
        uint256 before = token.balanceOf(DSO1);
        vm.prank(DSO1);
        settlement.collectDebt(owner2);
        assertEq(token.balanceOf(DSO1) - before, debt, "collected");

        (uint64 assetId,) = newKeyedAsset(OWNER3_KEY, 2); // owner3 never posted a bond
        uint64 start = DAY0 + 10 days + 8 hours;
        OrderBook.Offer memory o = assetOffer(assetId, start, 1);
        o.expiry = start;
        assertRefused(o, OWNER3_KEY, abi.encodeWithSelector(OrderBook.OrderBookSellerNotBonded.selector, owner3, 0, false, 0));
    }

    /// RT-2: finalising one settlement keeps the lock for the seller's other pending penalty (it
    /// was lowered twice); even after a withdrawal notice, what is locked stays until it is final.
    function test_RT2_finaliseKeepsTheLockForOtherPendingPenalties() public {
        vm.prank(owner2);
        book.postBond(owner2, 50_000); // 70,000: enough for both uncovered penalties
        vm.prank(owner2);
        book.announceBondWithdrawal(35_000);
        Settlement.Record memory r1 = settleSale(S_FAIL);
        Settlement.Record memory r2 = settleSale(sFail2);
        assertEq(book.bondLocked(owner2), 70_000, "the whole bond locked for them");
        vm.warp(NOW0 + DISPUTE + 1);
        settlement.finalise(r1);
        assertEq(settlement.exposureOf(owner2), 35_000, "r2's penalty still pending");
        assertEq(book.bondLocked(owner2), 35_000, "and locked");
        vm.warp(block.timestamp + book.bondNoticeSeconds()); // the notice is over, r2 still not final
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookBondLocked.selector, uint256(35_000), uint256(0)));
        vm.prank(owner2);
        book.withdrawBond(35_000);
        uint256 dsoBefore = settlement.claimable(DSO1);
        settlement.finalise(r2);
        assertEq(settlement.claimable(DSO1) - dsoBefore, 35_000, "r2's buyer is paid from the bond");
        assertEq(settlement.debtOf(owner2), 0, "no debt");
        assertEq(book.bondLocked(owner2), 0, "released once final");
    }

    /// RT-2's class: after any sequence of settlements and finalisations the lock is what is pending, within the bond.
    function testFuzz_RT2_lockIsPendingExposureWithinTheBond(uint256 extraBond, uint8 order) public {
        extraBond = bound(extraBond, 0, 100_000);
        vm.prank(owner2);
        book.postBond(owner2, extraBond);
        uint256[3] memory ss = [S_FAIL, sFail2, sGood2];
        Settlement.Record[3] memory rs;
        for (uint256 i = 0; i < 3; ++i) {
            rs[i] = settleSale(ss[(i + order) % 3]);
            assertEq(book.bondLocked(owner2), min(settlement.exposureOf(owner2), book.bondOf(owner2)), "lock after settle");
        }
        vm.warp(NOW0 + DISPUTE + 1);
        for (uint256 i = 0; i < 3; ++i) {
            settlement.finalise(rs[(i + order / 3) % 3]);
            assertEq(book.bondLocked(owner2), min(settlement.exposureOf(owner2), book.bondOf(owner2)), "lock after finalise");
        }
        assertEq(settlement.exposureOf(owner2), 0, "nothing pending");
        // 70,000 of uncovered penalties: the bond paid what it had, the claim of sGood2 the rest
        uint256 bond = OWNER2_BOND + extraBond;
        uint256 fromBond = bond < 70_000 ? bond : 70_000;
        assertEq(book.bondOf(owner2), bond - fromBond, "drawn");
        assertEq(settlement.debtOf(owner2) + settlement.repaidOf(owner2), 70_000 - fromBond, "the rest owed, or repaid");
    }

    function min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }
}

/// The settlement handler's actions, plus a seller's bond at random: announcing a withdrawal,
/// withdrawing, settling by default, and long waits that let withdrawal notices end.
contract BondHandler is SettlementHandler {
    address[] internal bondSellers;
    mapping(uint256 sale => address) public sellerOfSale;

    constructor(Settlement s, ReadingDisputes j, address[] memory who, uint64[] memory ids, address[] memory sellers_)
        SettlementHandler(s, j, who, ids)
    {
        bondSellers = sellers_;
    }

    function setSeller(uint256 sale, address seller) external {
        require(msg.sender == deployer, "set-up only");
        sellerOfSale[sale] = seller;
    }

    function saleCount() external view returns (uint256) {
        return inputs.length;
    }

    /// Whether the sale is settled, and its record's uncovered penalty; whether it is final.
    function saleState(uint256 i) external view returns (bool settled, uint256 uncovered, bool isFinal) {
        settled = records[i].length != 0;
        isFinal = finalised[i];
        if (settled) {
            Settlement.Line[] memory lines = abi.decode(records[i], (Settlement.Record)).lines;
            for (uint256 k = 0; k < lines.length; ++k) {
                uncovered += lines[k].uncovered;
            }
        }
    }

    /// A seller announces the withdrawal of part of its bond (or of all of it, or withdraws the announcement).
    function announce(uint256 seed, uint256 share) external {
        address s = bondSellers[seed % bondSellers.length];
        uint256 amount = book.bondOf(s) * (share % 3) / 2; // none, half, all
        vm.prank(s);
        book.announceBondWithdrawal(amount);
    }

    /// A seller withdraws what it can try: its whole announced amount.
    function withdrawBond(uint256 seed) external {
        address s = bondSellers[seed % bondSellers.length];
        uint256 w = book.bondWord(s);
        uint256 amount = uint64(w >> 128);
        if (amount > book.bondOf(s)) amount = book.bondOf(s);
        vm.prank(s);
        try book.withdrawBond(amount) {} catch {}
    }

    /// Settles by default the first sale not settled yet (too early or too late: it reverts).
    function settleUnrevealed(uint256 seed) external {
        (uint256 i, bool found) = next(seed, inputs.length, Want.UNSETTLED);
        if (!found) return;
        try settlement.settleUnrevealed(abi.decode(inputs[i], (Settlement.SettleIn))) returns (Settlement.Record memory r) {
            records[i] = abi.encode(r);
        } catch {}
    }

    /// Moves the clock by ten to forty days: withdrawal notices end.
    function waitLong(uint256 seed) external {
        vm.warp(block.timestamp + 10 days + seed % 30 days);
    }
}

/// DESIGN (money safety): a seller's worst-case penalties are covered by its bond from the moment
/// its awards are final until their settlements are. Over the settlement fixture's world (every
/// award final), at random: settling, settling by default, disputing, finalising, withdrawing,
/// announcing and withdrawing bonds, waiting. After every call, for each seller: the part of its
/// bond that cannot leave now covers its pending worst-case penalties (a sale not settled yet but
/// still settleable: its penalty if nothing was delivered; settled, not final: its uncovered
/// penalty), up to the bond; and the lock is what its settled penalties need, within the bond.
contract BondInvariantTest is SettlementFixture {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    BondHandler internal handler;
    address[] internal sellers;
    uint256[] internal worstCase; // per handler sale: its penalty if nothing was delivered

    function setUp() public override {
        super.setUp();
        uint64[] memory touched = new uint64[](book.requestCount() - 1);
        uint256 n;
        for (uint64 r = 1; r <= book.requestCount(); ++r) {
            if (r != R_M2) touched[n++] = r;
        }
        sellers = [owner, owner2];
        address[] memory receivers = new address[](6);
        (receivers[0], receivers[1], receivers[2], receivers[3], receivers[4], receivers[5]) =
            (owner, owner2, DSO1, DSO2, TSO, buyer);
        handler = new BondHandler(settlement, disputes, receivers, touched, sellers);
        for (uint256 sale = 0; sale < sales.length; ++sale) {
            if (sale == S_M2) continue;
            uint256 i = handler.addSale(abi.encode(settleIn(sale)));
            handler.setSeller(i, sellerOf(sale));
            if (sale == S_DISP) handler.addDispute(i, abi.encode(disputeIn(S_DISP, 0)));
            uint256 snapshot = vm.snapshotState();
            vm.warp(WINDOW_CLOSES + 1);
            Settlement.Record memory r = settlement.settleUnrevealed(settleIn(sale));
            uint256 worst;
            for (uint256 k = 0; k < r.lines.length; ++k) {
                worst += r.lines[k].uncovered;
            }
            vm.revertToState(snapshot); // undoes everything since, storage of this contract too
            worstCase.push(worst);
        }
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory t) {
        bytes4[] memory actions = new bytes4[](10);
        actions[0] = SettlementHandler.settle.selector;
        actions[1] = SettlementHandler.finalise.selector;
        actions[2] = SettlementHandler.dispute.selector;
        actions[3] = SettlementHandler.withdraw.selector;
        actions[4] = SettlementHandler.wait.selector;
        actions[5] = BondHandler.announce.selector;
        actions[6] = BondHandler.withdrawBond.selector;
        actions[7] = BondHandler.settleUnrevealed.selector;
        actions[8] = BondHandler.waitLong.selector;
        actions[9] = SettlementHandler.finaliseMany.selector;
        t = new FuzzSelector[](1);
        t[0] = FuzzSelector({addr: address(handler), selectors: actions});
    }

    /// What of `s`'s bond could leave right now.
    function canLeave(address s) internal view returns (uint256) {
        uint256 w = book.bondWord(s);
        uint256 ends = uint40(w >> 192);
        if (ends == 0 || block.timestamp < ends) return 0;
        uint256 free = book.bondOf(s) - book.bondLocked(s);
        uint256 withdrawing = uint64(w >> 128);
        return withdrawing < free ? withdrawing : free;
    }

    /// forge-config: default.invariant.runs = 10000
    /// forge-config: quick.invariant.runs = 500
    /// forge-config: default.invariant.depth = 10
    function invariant_lockedBondCoversPendingWorstCasePenalties() public view {
        uint256[2] memory pending;
        uint256 count = handler.saleCount();
        for (uint256 i = 0; i < count; ++i) {
            (bool settled, uint256 uncovered, bool isFinal) = handler.saleState(i);
            if (isFinal) continue;
            uint256 p = settled ? uncovered : block.timestamp <= WINDOW_CLOSES + DISPUTE ? worstCase[i] : 0;
            pending[handler.sellerOfSale(i) == owner ? 0 : 1] += p;
        }
        for (uint256 k = 0; k < 2; ++k) {
            address s = sellers[k];
            uint256 bond = book.bondOf(s);
            uint256 stays = bond - canLeave(s);
            assertTrue(stays >= (pending[k] < bond ? pending[k] : bond), "the bond that cannot leave covers what is pending");
            uint256 exposure = settlement.exposureOf(s);
            assertEq(book.bondLocked(s), exposure < bond ? exposure : bond, "the lock is the settled exposure, within the bond");
        }
    }
}
