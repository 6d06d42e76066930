// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SettlementFixture, StandardTree} from "./SettlementFixture.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {ReadingDisputes} from "../../src/metering/ReadingDisputes.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {MeterOracle} from "../../src/metering/MeterOracle.sol";
import {DeliveryMeter} from "../../src/metering/DeliveryMeter.sol";

/// The settlement fixture's world plus three portfolios of `aggregator` in feeder 5 (each member
/// an asset of its own behind its own keyed meter, joined with its owner's EIP-712 consent), each
/// selling at 09:30 (PF) in `market` at PRICE, UP, DIVISIBLE, to a request of DSO1 in zone 2:
///
/// - P1 = [m1 (owner), m2 (owner2), m3 (owner3)], sale s1: COMMITTED (asset 0 in the commitment),
///   09:30 x2, 12 kW awarded in both ISPs to R_PF; baseline 6000 Wh per ISP (3000 Wh awarded each).
///   ISP 09:30: m1 +1000, m2 +2000, m3 -500 (exported): net 2500, 3500 delivered: full, 300,000.
///   ISP 09:45 anchored: m1 +1500, m2 +2000, m3 +1000: net 4500, 1500 delivered (50 %): payment
///   150,000, penalty 202,500 (52,500 beyond the payment). The meters of m1 and m3 signed +500
///   and 0 for 09:45: with m1 corrected the net is 3500 (payment 250,000, claim 197,500), with
///   both 2500 (full: 300,000). m2's meter signed what was anchored.
/// - P2 = [m4 (owner), m5 (owner2)], sale s2: ROLLING_AVERAGE, 09:30 x1, 8 kW to R_PF_STD. The
///   oracle anchored standard baselines m4 1500, m5 2500 (and 777 of a meter of no portfolio):
///   the portfolio's is 4000. Readings m4 +1000, m5 +1500: net 2500, 1500 delivered of 2000
///   awarded (75 %): payment 150,000, penalty 60,000, claim 90,000.
/// - P3 = [m6 (owner), m7 (owner2), m8 (owner3)], sale s3: COMMITTED, 09:30 x1, 6 kW to R_PF_LEFT,
///   baseline 3000. m7 left P3 after the offer was relayed but before DAY0's gate closure: at the
///   gate closure P3 is [m6, m8]. Readings m6 +500, m7 +700 (its meter still reports), m8 +1000:
///   net 1500, 1500 delivered = awarded: 150,000 (counting m7 it would be 800 Wh).
///
/// The aggregator posted a bond of AGGREGATOR_BOND. Every member reading has sequence 1.
abstract contract SettlementPortfolioFixture is SettlementFixture {
    uint64 internal constant PF = H9 + 2 * ISP; // 09:30
    uint64 internal constant R_PF = 11; // DSO1, zone 2, 09:30 x2, UP, 20 kW, MAX: escrow 2,000,000
    uint64 internal constant R_PF_STD = 12; // DSO1, zone 2, 09:30 x1, UP, 10 kW, MAX: escrow 500,000
    uint64 internal constant R_PF_LEFT = 13; // DSO1, zone 2, 09:30 x1, UP, 10 kW, MAX: escrow 500,000
    uint256 internal constant AGGREGATOR_BOND = 1_000_000;
    uint256 internal constant TOLERANCE_BPS = 500;
    uint256 internal constant PENALTY_FACTOR_BPS = 15_000;
    address internal constant OTHER_METER = address(0xBEEF);
    bytes32 internal constant INPUTS = keccak256("the days averaged"); // BaselineDisputes judges them, not Settlement

    uint32 internal p1;
    uint32 internal p2;
    uint32 internal p3;
    uint64 internal m1;
    uint64 internal m2;
    uint64 internal m3;
    uint64 internal m4;
    uint64 internal m5;
    uint64 internal m6;
    uint64 internal m7;
    uint64 internal m8;
    uint256 internal s1;
    uint256 internal s2;
    uint256 internal s3;
    uint64 internal m7LeftAt;

    /// Per sale of a portfolio, its members at the gate closure in founding order (what settles it).
    mapping(uint256 sale => uint64[]) internal presented;
    /// The standard baselines the oracle anchored for ISP 09:30, by asset, and their tree.
    mapping(uint64 assetId => int64) internal standardOf;
    bytes32[] internal baselineTree;
    mapping(uint32 portfolioId => uint32) internal portfolioNonce;

    function moreSales() internal virtual override {
        assertEq(request(DSO1, market, 2, PF, 2, UP, 20_000, MAX, 0), R_PF, "R_PF");
        assertEq(request(DSO1, market, 2, PF, 1, UP, 10_000, MAX, 0), R_PF_STD, "R_PF_STD");
        assertEq(request(DSO1, market, 2, PF, 1, UP, 10_000, MAX, 0), R_PF_LEFT, "R_PF_LEFT");

        (p1, m1, m2, m3) = newPortfolio3();
        s1 = addPortfolioSale(p1, 2, 12_000, COMMITTED, b2(6000, 6000));
        award(s1, R_PF, 0, 12_000);
        award(s1, R_PF, 1, 12_000);
        memberRead(m1, PF, 1000, 0);
        memberRead(m2, PF, 2000, 0);
        memberRead(m3, PF, 0, 500);
        memberMisread(m1, PF + ISP, 500, 0, 1500, 0);
        memberRead(m2, PF + ISP, 2000, 0);
        memberMisread(m3, PF + ISP, 0, 0, 1000, 0);
        presented[s1] = assetIds(m1, m2, m3);

        uint256 key4;
        uint256 key5;
        (m4, key4) = newKeyedAsset(OWNER_KEY, 5);
        (m5, key5) = newKeyedAsset(OWNER2_KEY, 5);
        uint256[] memory keys = new uint256[](2);
        (keys[0], keys[1]) = (OWNER_KEY, OWNER2_KEY);
        uint64[] memory founders = new uint64[](2);
        (founders[0], founders[1]) = (m4, m5);
        p2 = newPortfolio(founders, keys);
        s2 = addPortfolioSale(p2, 1, 8_000, ROLLING_AVERAGE, b1(4000));
        award(s2, R_PF_STD, 0, 8_000);
        memberRead(m4, PF, 1000, 0);
        memberRead(m5, PF, 1500, 0);
        (standardOf[m4], standardOf[m5]) = (1500, 2500);
        presented[s2] = founders;

        (p3, m6, m7, m8) = newPortfolio3();
        s3 = addPortfolioSale(p3, 1, 6_000, COMMITTED, b1(3000));
        award(s3, R_PF_LEFT, 0, 6_000);
        memberRead(m6, PF, 500, 0);
        memberRead(m7, PF, 700, 0);
        memberRead(m8, PF, 1000, 0);
        presented[s3] = assetIds(m6, m8);

        fundAndApprove(aggregator, 1e12);
        vm.prank(aggregator);
        book.postBond(aggregator, AGGREGATOR_BOND);
    }

    /// The book as the settlement fixture builds it, then m7 leaves P3 before the gate closure.
    function buildBook() internal virtual override {
        super.buildBook();
        assertTrue(block.timestamp < CLOSURE, "before the gate closure");
        vm.warp(block.timestamp + 1); // a second after P3 was founded: membersAt tells the two apart
        vm.prank(owner2);
        assets.removeFromPortfolio(m7);
        m7LeftAt = uint64(block.timestamp);
    }

    function setUp() public virtual override {
        super.setUp(); // the readings are anchored; now NOW0
        bytes32[] memory leaves = new bytes32[](3);
        leaves[0] = oracle.baselineLeaf(meterOf(m4), PF, standardOf[m4], INPUTS);
        leaves[1] = oracle.baselineLeaf(meterOf(m5), PF, standardOf[m5], INPUTS);
        leaves[2] = oracle.baselineLeaf(OTHER_METER, PF, 777, INPUTS);
        baselineTree = StandardTree.build(leaves);
        uint256 later = block.timestamp;
        vm.warp(CLOSURE); // anchored by the day's gate closure (`MeterOracle.baselineWindow`)
        vm.prank(ORACLE1);
        oracle.anchorBaselines(market, PF, baselineTree[0], 3);
        vm.warp(later);
    }

    // ------------------------------------------------------------------------------ building

    /// A portfolio of `aggregator` of new keyed assets of owner, owner2 and owner3 in feeder 5.
    function newPortfolio3() internal returns (uint32 p, uint64 a, uint64 b, uint64 c) {
        (a,) = newKeyedAsset(OWNER_KEY, 5);
        (b,) = newKeyedAsset(OWNER2_KEY, 5);
        (c,) = newKeyedAsset(OWNER3_KEY, 5);
        uint256[] memory keys = new uint256[](3);
        (keys[0], keys[1], keys[2]) = (OWNER_KEY, OWNER2_KEY, OWNER3_KEY);
        p = newPortfolio(assetIds(a, b, c), keys);
    }

    /// `aggregator` founds a portfolio in feeder 5 of `founders`, each owner (key in `keys`) consenting.
    function newPortfolio(uint64[] memory founders, uint256[] memory keys) internal returns (uint32 p) {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        bytes[] memory sigs = new bytes[](founders.length);
        for (uint256 i = 0; i < founders.length; ++i) {
            bytes32 digest = assets.consentDigest(aggregator, founders[i], assets.consentNonce(founders[i]), deadline);
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[i], digest);
            sigs[i] = abi.encodePacked(r, s, v);
        }
        vm.prank(aggregator);
        p = assets.createPortfolio(5, founders, sigs, deadline);
    }

    /// A sale of a portfolio (the aggregator signs it): UP at PRICE from PF, DIVISIBLE.
    function addPortfolioSale(uint32 portfolioId, uint16 isps, uint32 powerW, uint8 method, int64[] memory baseline)
        internal
        returns (uint256 id)
    {
        return addPortfolioSaleIn(market, portfolioId, isps, powerW, method, baseline);
    }

    /// The same in market `marketId`.
    function addPortfolioSaleIn(
        uint32 marketId,
        uint32 portfolioId,
        uint16 isps,
        uint32 powerW,
        uint8 method,
        int64[] memory baseline
    ) internal returns (uint256 id) {
        id = sales.length;
        Sale storage x = sales.push();
        (x.marketId, x.sellerKey) = (marketId, AGGREGATOR_KEY);
        x.salt = keccak256(abi.encode("portfolio salt", id));
        x.baseline = baseline;
        saleOffer[id] = OrderBook.Offer({
            market: marketId,
            asset: 0,
            portfolio: portfolioId,
            start: PF,
            isps: isps,
            direction: UP,
            powerW: powerW,
            price: uint96(PRICE),
            mode: DIVISIBLE,
            minPowerW: 0,
            baselineMethod: method,
            baseline: method == COMMITTED ? commitment(0, PF, baseline, x.salt) : bytes32(0),
            expiry: DAY0,
            nonce: ++portfolioNonce[portfolioId]
        });
    }

    function memberRead(uint64 assetId, uint64 ispStart, uint64 importWh, uint64 exportWh) internal {
        memberMisread(assetId, ispStart, importWh, exportWh, importWh, exportWh);
    }

    /// The member's meter signed one reading for `ispStart`, the oracle anchored another.
    function memberMisread(
        uint64 assetId,
        uint64 ispStart,
        uint64 signedImport,
        uint64 signedExport,
        uint64 anchoredImport,
        uint64 anchoredExport
    ) internal {
        address meter = meterOf(assetId);
        uint256 key = keyOf(market, ispStart);
        if (anchoredReadings[key].length == 0) anchorKeys.push(key);
        anchoredReadings[key].push(Rd(meter, 1, anchoredImport, anchoredExport));
        signedReadings[keccak256(abi.encode(meter, ispStart))] = Rd(meter, 1, signedImport, signedExport);
    }

    function meterOf(uint64 assetId) internal view returns (address) {
        return vm.addr(meterKeyOf[assetId]);
    }

    function assetIds(uint64 a, uint64 b, uint64 c, uint64 d) internal pure returns (uint64[] memory list) {
        list = new uint64[](4);
        (list[0], list[1], list[2], list[3]) = (a, b, c, d);
    }

    // ------------------------------------------------------------------------------ settling

    /// The anchored reading of a member's meter for `ispStart`, with its proof, and for a
    /// ROLLING_AVERAGE sale the member's anchored standard baseline with its proof.
    function memberReading(uint64 assetId, uint64 ispStart, bool standard)
        internal
        view
        returns (DeliveryMeter.MemberReading memory r)
    {
        return memberReadingIn(market, assetId, ispStart, standard);
    }

    /// The same in market `marketId`.
    function memberReadingIn(uint32 marketId, uint64 assetId, uint64 ispStart, bool standard)
        internal
        view
        returns (DeliveryMeter.MemberReading memory r)
    {
        address meter = meterOf(assetId);
        uint256 key = keyOf(marketId, ispStart);
        Rd[] storage rs = anchoredReadings[key];
        uint256 i;
        while (rs[i].meter != meter) ++i;
        bytes32[] memory leaves = leavesOf(rs, ispStart);
        r.asset = assetId;
        (r.anchor, r.sequence, r.importWh, r.exportWh) = (anchors[key], rs[i].sequence, rs[i].importWh, rs[i].exportWh);
        r.signature = anchoredSignature(rs[i], ispStart);
        r.proof = StandardTree.proof(StandardTree.build(leaves), leaves[i]);
        if (standard) {
            r.baselineWh = standardOf[assetId];
            bytes32[] memory path = StandardTree.proof(baselineTree, oracle.baselineLeaf(meter, ispStart, r.baselineWh, INPUTS));
            r.baselineProof = new bytes32[](path.length + 1); // the leaf's inputs hash, then its Merkle proof
            r.baselineProof[0] = INPUTS;
            for (uint256 k = 0; k < path.length; ++k) r.baselineProof[k + 1] = path[k];
        }
    }

    /// The readings of `list` (in that order) for ISP `isp` of the sale's window.
    function readingsOf(uint256 sale, uint16 isp, uint64[] memory list)
        internal
        view
        returns (DeliveryMeter.MemberReading[] memory rs)
    {
        OrderBook.Offer storage o = saleOffer[sale];
        bool standard = o.baselineMethod == ROLLING_AVERAGE;
        rs = new DeliveryMeter.MemberReading[](list.length);
        for (uint256 i = 0; i < list.length; ++i) {
            rs[i] = memberReading(list[i], o.start + uint64(isp) * ISP, standard);
        }
    }

    function readingsOf(uint256 sale, uint16 isp) internal view returns (DeliveryMeter.MemberReading[] memory) {
        return readingsOf(sale, isp, presented[sale]);
    }

    /// Everything that settles a portfolio's sale: its offer, baseline and salt, and per awarded
    /// ISP its awards (proven) and its members' readings at the gate closure (no `reading`).
    function portfolioIn(uint256 sale) internal view returns (Settlement.SettleIn memory s) {
        s = settleIn(sale);
        if (s.offer.baselineMethod != COMMITTED) s.salt = bytes32(0);
        s.members = new bytes[](s.isps.length);
        for (uint256 i = 0; i < s.isps.length; ++i) {
            uint16 t = uint16((s.isps[i].awards[0].ispStart - s.offer.start) / ISP);
            s.members[i] = abi.encode(readingsOf(sale, t));
        }
    }

    /// The reading `member`'s meter signed for ISP `isp` of the sale's window, as a dispute.
    function memberDispute(uint256 sale, uint16 isp, uint64 member) internal view returns (ReadingDisputes.DisputeIn memory) {
        uint64 ispStart = saleOffer[sale].start + uint64(isp) * ISP;
        Rd memory r = signedReadings[keccak256(abi.encode(meterOf(member), ispStart))];
        return memberSigned(sale, isp, member, r.sequence, r.importWh, r.exportWh, meterKeyOf[member]);
    }

    /// A dispute of `member`'s reading in ISP `isp`: the reading of `member`'s meter, signed by `key`.
    function memberSigned(
        uint256 sale,
        uint16 isp,
        uint64 member,
        uint64 sequence,
        uint64 importWh,
        uint64 exportWh,
        uint256 key
    ) internal view returns (ReadingDisputes.DisputeIn memory) {
        return disputeWith(sale, isp, Rd(meterOf(member), sequence, importWh, exportWh), member, key);
    }

    // --------------------------------------------------------------------------------- checks

    /// The line `settlement.awardMoney` makes of one award of a single-award ISP (ACTIVATION, PAY_AS_BID).
    function expectedLine(uint64 requestId, uint64 ispStart, uint32 powerW, int256 baselineWh, int256 netWh)
        internal
        view
        returns (Settlement.Line memory l)
    {
        int256 saved = baselineWh - netWh;
        uint256 deliveredWs = saved > 0 ? uint256(saved) * 3600 : 0;
        (uint256 payment, uint256 penalty) = settlement.awardMoney(
            powerW, powerW, ISP, deliveredWs, PRICE, false, TOLERANCE_BPS, PENALTY_FACTOR_BPS
        );
        uint256 fromPayment = payment < penalty ? payment : penalty;
        l = Settlement.Line(requestId, ispStart, payment, payment - fromPayment, penalty - fromPayment);
    }

    function assertLine(Settlement.Line memory l, Settlement.Line memory e) internal pure {
        assertLine(l, e.requestId, e.ispStart, e.payment, e.claim, e.uncovered);
    }

    function assertMembers(uint64[] memory actual, uint64[] memory expected, string memory what) internal pure {
        assertEq(actual.length, expected.length, what);
        for (uint256 i = 0; i < expected.length; ++i) {
            assertEq(actual[i], expected[i], what);
        }
    }

    function mismatch(uint32 portfolioId, uint64 ispStart, uint256 index, uint64 expected)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodeWithSelector(DeliveryMeter.PortfolioMembersMismatch.selector, portfolioId, ispStart, index, expected);
    }

    function agrees(uint64 member, uint64 ispStart) internal view returns (bytes memory) {
        return abi.encodeWithSelector(ReadingDisputes.DisputeAgreesWithSettlement.selector, meterOf(member), ispStart);
    }
}

contract SettlementPortfolioTest is SettlementPortfolioFixture {
    // ---------------------------------------------------------------------------- the world

    function test_fixture_portfoliosAsDocumented() public view {
        assertEq(assets.aggregatorOf(p1), aggregator, "P1's aggregator");
        assertMembers(deliveryMeter.members(market, p1, PF), assetIds(m1, m2, m3), "P1 at the gate closure");
        assertMembers(deliveryMeter.members(market, p2, PF), assetIds(m4, m5), "P2 at the gate closure");
        assertMembers(deliveryMeter.members(market, p3, PF), assetIds(m6, m8), "P3 at the gate closure: m7 had left");
        assertTrue(m7LeftAt < CLOSURE, "m7 left before the gate closure");
        assertMembers(assets.membersAt(p3, m7LeftAt - 1), assetIds(m6, m7, m8), "P3 before m7 left");
        assertEq(markets.gateClosure(market, PF), CLOSURE, "the day's gate closure");
        assertEq(escrowOf(R_PF), 2_000_000, "R_PF escrow");
        assertEq(escrowOf(R_PF_STD), 500_000, "R_PF_STD escrow");
        assertEq(book.bondOf(aggregator), AGGREGATOR_BOND, "aggregator's bond");
        assertEq(book.portfolioNonce(p1), 1, "P1's offer accepted");
        checkMoney();
    }

    // ----------------------------------------------------------------------- COMMITTED offers

    function test_settle_committedPortfolio_paysTheAggregatorForTheSummedDelivery() public {
        Settlement.SettleIn memory s = portfolioIn(s1);
        bytes32 digest = digestOfSale(s1);
        // the `reading` of a portfolio's ISP is not read: any will do
        s.isps[0].reading.importWh = 123_456;
        s.isps[1].reading.anchor.root = keccak256("not a root");
        Settlement.Record memory empty;
        vm.expectEmit(true, true, true, false);
        emit Settlement.OfferSettled(digest, resultOf[market], aggregator, empty);
        vm.prank(NOBODY); // anyone may settle
        Settlement.Record memory r = settlement.settle(s);
        assertEq(r.offerDigest, digest, "digest");
        assertEq(r.seller, aggregator, "the aggregator sells");
        assertEq(r.settledAt, NOW0, "settled at");
        assertEq(r.lines.length, 2, "two ISPs");
        // 09:30: net 1000 + 2000 - 500 = 2500, 3500 delivered of 3000 awarded
        assertLine(r.lines[0], expectedLine(R_PF, PF, 12_000, 6000, 2500));
        assertLine(r.lines[0], R_PF, PF, 300_000, 300_000, 0);
        // 09:45: net 1500 + 2000 + 1000 = 4500, 1500 delivered: 50 %
        assertLine(r.lines[1], expectedLine(R_PF, PF + ISP, 12_000, 6000, 4500));
        assertLine(r.lines[1], R_PF, PF + ISP, 150_000, 0, 52_500);
        assertEq(settlement.records(recordKey(s1)), keccak256(abi.encode(r)), "record hash kept");
        assertEq(settlement.pendingLines(R_PF), 2, "two pending lines");
        assertEq(book.bondLocked(aggregator), 52_500, "the aggregator's bond locked for the uncovered penalty");
        checkMoney();

        vm.warp(NOW0 + DISPUTE + 1);
        uint256 buyerBefore = settlement.claimable(DSO1);
        settlement.finalise(r);
        assertEq(settlement.claimable(aggregator), 300_000, "the aggregator's claim");
        assertEq(settlement.claimable(DSO1) - buyerBefore, 52_500, "the uncovered penalty, from the bond, for the buyer");
        assertEq(book.bondOf(aggregator), AGGREGATOR_BOND - 52_500, "drawn from the aggregator's bond");
        assertEq(book.escrowPaid(R_PF), 300_000, "paid from the escrow");
        checkMoney();
        uint256 before = token.balanceOf(aggregator);
        vm.prank(aggregator);
        settlement.withdraw();
        assertEq(token.balanceOf(aggregator) - before, 300_000, "withdrawn by the aggregator");
        vm.warp(WINDOW_CLOSES + 1);
        before = token.balanceOf(DSO1);
        settlement.refund(R_PF);
        assertEq(token.balanceOf(DSO1) - before, 2_000_000 - 300_000, "the rest of the escrow back");
        checkMoney();
    }

    function test_settle_committedPortfolio_baselineNotItsCommitment() public {
        Settlement.SettleIn memory s = portfolioIn(s1);
        bytes32 digest = digestOfSale(s1);
        s.baselineWh[1] = 6001;
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementBaselineMismatch.selector, digest));
        settlement.settle(s);
        s = portfolioIn(s1);
        s.salt = bytes32(0);
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementBaselineMismatch.selector, digest));
        settlement.settle(s);
        // the commitment names asset 0, as an asset's names the asset
        assertEq(saleOffer[s1].baseline, keccak256(abi.encode(uint64(0), PF, sales[s1].baseline, sales[s1].salt)), "commitment");
        settlement.settle(portfolioIn(s1));
    }

    function test_settle_portfolioMembersOfEveryIsp() public {
        Settlement.SettleIn memory s = portfolioIn(s1);
        bytes32 digest = digestOfSale(s1);
        bytes memory incomplete = abi.encodeWithSelector(Settlement.SettlementIspsIncomplete.selector, digest);
        bytes[] memory one = new bytes[](1);
        one[0] = s.members[0];
        s.members = one;
        vm.expectRevert(incomplete);
        settlement.settle(s);
        s.members = new bytes[](0);
        vm.expectRevert(incomplete);
        settlement.settle(s);
        s = portfolioIn(s1);
        bytes[] memory three = new bytes[](3);
        (three[0], three[1], three[2]) = (s.members[0], s.members[1], s.members[1]);
        s.members = three;
        vm.expectRevert(incomplete);
        settlement.settle(s);
    }

    // ----------------------------------------------------------------------- the member lists

    function test_settle_memberMissing() public {
        Settlement.SettleIn memory s = portfolioIn(s1);
        s.members[0] = abi.encode(readingsOf(s1, 0, assetIds(m1, m2)));
        vm.expectRevert(mismatch(p1, PF, 2, m3));
        settlement.settle(s);
        s.members[0] = abi.encode(readingsOf(s1, 0, assetIds(m2, m3)));
        vm.expectRevert(mismatch(p1, PF, 0, m1));
        settlement.settle(s);
        s.members[0] = abi.encode(new DeliveryMeter.MemberReading[](0));
        vm.expectRevert(mismatch(p1, PF, 0, m1));
        settlement.settle(s);
        // the second ISP's list is checked as well
        s = portfolioIn(s1);
        s.members[1] = abi.encode(readingsOf(s1, 1, assetIds(m1, m3)));
        vm.expectRevert(mismatch(p1, PF + ISP, 1, m2));
        settlement.settle(s);
    }

    function test_settle_extraAsset() public {
        Settlement.SettleIn memory s = portfolioIn(s1);
        // m4 (P2's member) has an anchored reading for 09:30, but is not P1's
        s.members[0] = abi.encode(readingsOf(s1, 0, assetIds(m1, m2, m3, m4)));
        vm.expectRevert(mismatch(p1, PF, 3, 0));
        settlement.settle(s);
        s.members[0] = abi.encode(readingsOf(s1, 0, assetIds(m1, m4, m2, m3)));
        vm.expectRevert(mismatch(p1, PF, 1, m2));
        settlement.settle(s);
        s.members[0] = abi.encode(readingsOf(s1, 0, assetIds(m1, m2, m3, m3)));
        vm.expectRevert(mismatch(p1, PF, 3, 0));
        settlement.settle(s);
    }

    function test_settle_membersSwapped() public {
        Settlement.SettleIn memory s = portfolioIn(s1);
        s.members[0] = abi.encode(readingsOf(s1, 0, assetIds(m2, m1, m3)));
        vm.expectRevert(mismatch(p1, PF, 0, m1));
        settlement.settle(s);
        s.members[0] = abi.encode(readingsOf(s1, 0, assetIds(m1, m3, m2)));
        vm.expectRevert(mismatch(p1, PF, 1, m2));
        settlement.settle(s);
    }

    function test_settle_memberReadingNotAnchored() public {
        bytes memory notAnchored =
            abi.encodeWithSelector(DeliveryMeter.PortfolioReadingNotAnchored.selector, p1, PF, m2);
        Settlement.SettleIn memory s = portfolioIn(s1);
        DeliveryMeter.MemberReading[] memory rs = readingsOf(s1, 0);
        rs[1].proof = rs[0].proof; // m1's proof
        s.members[0] = abi.encode(rs);
        vm.expectRevert(notAnchored);
        settlement.settle(s);
        rs = readingsOf(s1, 0);
        rs[1].importWh = 1000; // not what was anchored
        s.members[0] = abi.encode(rs);
        vm.expectRevert(notAnchored);
        settlement.settle(s);
        rs = readingsOf(s1, 0);
        rs[1].anchor = anchors[keyOf(market, PF + ISP)]; // another ISP's anchor
        s.members[0] = abi.encode(rs);
        vm.expectRevert(notAnchored);
        settlement.settle(s);
        rs = readingsOf(s1, 0);
        rs[1].proof = new bytes32[](0);
        s.members[0] = abi.encode(rs);
        vm.expectRevert(notAnchored);
        settlement.settle(s);
    }

    // ------------------------------------------------------------------ ROLLING_AVERAGE offers

    function test_settle_standardPortfolio_baselineIsTheMembersSum() public {
        Settlement.Record memory r = settlement.settle(portfolioIn(s2));
        assertEq(r.seller, aggregator, "the aggregator sells");
        assertEq(r.lines.length, 1, "one ISP");
        // baseline 1500 + 2500, net 1000 + 1500: 1500 delivered of 2000 awarded
        assertLine(r.lines[0], expectedLine(R_PF_STD, PF, 8_000, 4000, 2500));
        assertLine(r.lines[0], R_PF_STD, PF, 150_000, 90_000, 0);
        checkMoney();
    }

    function test_settle_standardPortfolio_baselineNotTheSum() public {
        bytes32 digest = digestOfSale(s2);
        bytes memory notAnchored = abi.encodeWithSelector(Settlement.SettlementBaselineNotAnchored.selector, digest, PF);
        Settlement.SettleIn memory s = portfolioIn(s2);
        s.baselineWh[0] = 4001;
        vm.expectRevert(notAnchored);
        settlement.settle(s);
        s.baselineWh[0] = 1500; // m4's alone
        vm.expectRevert(notAnchored);
        settlement.settle(s);
        s.baselineWh[0] = 4000 + 777; // with a meter of no portfolio
        vm.expectRevert(notAnchored);
        settlement.settle(s);
        s.baselineWh = new int64[](0);
        vm.expectRevert(notAnchored);
        settlement.settle(s);
    }

    function test_settle_standardPortfolio_memberBaselineNotAnchored() public {
        Settlement.SettleIn memory s = portfolioIn(s2);
        DeliveryMeter.MemberReading[] memory rs = readingsOf(s2, 0);
        rs[0].baselineWh = 1501;
        s.members[0] = abi.encode(rs);
        s.baselineWh[0] = 4001; // the sum of what is presented
        vm.expectRevert(abi.encodeWithSelector(DeliveryMeter.PortfolioBaselineNotAnchored.selector, p2, PF, m4));
        settlement.settle(s);
        s = portfolioIn(s2);
        rs = readingsOf(s2, 0);
        rs[1].baselineProof = new bytes32[](0);
        s.members[0] = abi.encode(rs);
        vm.expectRevert(abi.encodeWithSelector(DeliveryMeter.PortfolioBaselineNotAnchored.selector, p2, PF, m5));
        settlement.settle(s);
        // a COMMITTED portfolio's members need no baseline: P1's readings carry none
        settlement.settle(portfolioIn(s1));
    }

    // ------------------------------------------------------------ membership at the gate closure

    function test_settle_memberLeftBeforeTheGateClosure_isNotPresented() public {
        Settlement.SettleIn memory s = portfolioIn(s3);
        s.members[0] = abi.encode(readingsOf(s3, 0, assetIds(m6, m7, m8)));
        vm.expectRevert(mismatch(p3, PF, 1, m8));
        settlement.settle(s);
        s.members[0] = abi.encode(readingsOf(s3, 0, assetIds(m6, m8, m7)));
        vm.expectRevert(mismatch(p3, PF, 2, 0));
        settlement.settle(s);
        // without m7: net 500 + 1000, 1500 delivered, in full
        Settlement.Record memory r = settlement.settle(portfolioIn(s3));
        assertLine(r.lines[0], expectedLine(R_PF_LEFT, PF, 6_000, 3000, 1500));
        assertLine(r.lines[0], R_PF_LEFT, PF, 150_000, 150_000, 0);
        checkMoney();
    }

    function test_settle_memberLeftAfterTheGateClosure_stillCounts() public {
        vm.prank(owner2);
        assets.removeFromPortfolio(m2);
        (,, uint64[] memory current) = assets.portfolio(p1);
        assertMembers(current, assetIds(m1, m3), "m2 left P1");
        assertMembers(deliveryMeter.members(market, p1, PF), assetIds(m1, m2, m3), "but was a member at the gate closure");
        Settlement.SettleIn memory s = portfolioIn(s1);
        s.members[0] = abi.encode(readingsOf(s1, 0, assetIds(m1, m3)));
        vm.expectRevert(mismatch(p1, PF, 1, m2));
        settlement.settle(s);
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        assertLine(r.lines[0], R_PF, PF, 300_000, 300_000, 0);
        assertLine(r.lines[1], R_PF, PF + ISP, 150_000, 0, 52_500);
        assertEq(r.seller, aggregator, "still the aggregator's sale");
    }

    // ------------------------------------------------------------------------------ disputes

    function test_dispute_portfolioMember_upheld() public {
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        Settlement.SettleIn memory s = portfolioIn(s1);
        ReadingDisputes.DisputeIn memory d = memberDispute(s1, 1, m1); // m1's meter signed +500, not +1500
        vm.warp(NOW0 + 1 days);
        vm.expectEmit();
        emit ReadingDisputes.ReadingDisputed(r.offerDigest, ORACLE1, PF + ISP, NOBODY);
        vm.prank(NOBODY);
        Settlement.Record memory c = disputes.dispute(s, r, d);
        assertLine(c.lines[0], R_PF, PF, 300_000, 300_000, 0); // the other ISP stands
        // only m1's contribution changes: 500 + 2000 + 1000 = 3500, 2500 delivered
        assertLine(c.lines[1], expectedLine(R_PF, PF + ISP, 12_000, 6000, 3500));
        assertLine(c.lines[1], R_PF, PF + ISP, 250_000, 197_500, 0);
        assertEq(c.seller, aggregator, "seller");
        assertEq(c.settledAt, NOW0, "the dispute window does not restart");
        assertEq(disputes.faultsOf(ORACLE1), 1, "the oracle is marked");
        assertEq(settlement.records(recordKey(s1)), keccak256(abi.encode(c)), "the corrected record");
        assertEq(book.bondLocked(aggregator), 0, "no uncovered penalty left");
        vm.warp(NOW0 + DISPUTE + 1);
        settlement.finalise(c);
        assertEq(settlement.claimable(aggregator), 300_000 + 197_500, "paid for what the meters signed");
        checkMoney();
    }

    function test_dispute_secondMemberKeepsTheFirstCorrection() public {
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        Settlement.SettleIn memory s = portfolioIn(s1);
        Settlement.Record memory c = disputes.dispute(s, r, memberDispute(s1, 1, m1));
        c = disputes.dispute(s, c, memberDispute(s1, 1, m3)); // m3's meter signed 0, not +1000
        // both corrections stand: 500 + 2000 + 0 = 2500, 3500 delivered (m3's alone would leave 3500 net)
        assertLine(c.lines[1], expectedLine(R_PF, PF + ISP, 12_000, 6000, 2500));
        assertLine(c.lines[1], R_PF, PF + ISP, 300_000, 300_000, 0);
        assertLine(c.lines[0], R_PF, PF, 300_000, 300_000, 0);
        assertEq(disputes.faultsOf(ORACLE1), 2, "one fault per meter's wrong reading");
        vm.warp(NOW0 + DISPUTE + 1);
        settlement.finalise(c);
        assertEq(settlement.claimable(aggregator), 600_000, "both ISPs paid in full");
        assertEq(book.bondOf(aggregator), AGGREGATOR_BOND, "no penalty drawn");
        checkMoney();
    }

    function test_dispute_membersInEitherOrderComposeAlike() public {
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        Settlement.SettleIn memory s = portfolioIn(s1);
        Settlement.Record memory c = disputes.dispute(s, r, memberDispute(s1, 1, m3));
        // m3 corrected first: 1500 + 2000 + 0 = 3500
        assertLine(c.lines[1], R_PF, PF + ISP, 250_000, 197_500, 0);
        c = disputes.dispute(s, c, memberDispute(s1, 1, m1));
        assertLine(c.lines[1], R_PF, PF + ISP, 300_000, 300_000, 0);
        assertEq(disputes.faultsOf(ORACLE1), 2, "two faults");
    }

    function test_dispute_sameMemberAgain_agreesWithTheSettlement() public {
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        Settlement.SettleIn memory s = portfolioIn(s1);
        ReadingDisputes.DisputeIn memory d = memberDispute(s1, 1, m1);
        Settlement.Record memory c = disputes.dispute(s, r, d);
        vm.expectRevert(agrees(m1, PF + ISP));
        disputes.dispute(s, c, d);
        // after another member's correction too
        c = disputes.dispute(s, c, memberDispute(s1, 1, m3));
        vm.expectRevert(agrees(m1, PF + ISP));
        disputes.dispute(s, c, d);
        assertEq(disputes.faultsOf(ORACLE1), 2, "each meter's fault once");
    }

    /// A meter that signed two readings for one ISP (the one a dispute put in place of the
    /// oracle's wrong leaf, then another): equivocation. The portfolio's delivery in that ISP is
    /// void (net = baseline), the meter is marked, and the oracle's fault still counts once.
    function test_dispute_sameMemberOtherSignedReading_isEquivocation() public {
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        Settlement.SettleIn memory s = portfolioIn(s1);
        Settlement.Record memory c = disputes.dispute(s, r, memberDispute(s1, 1, m1));
        ReadingDisputes.DisputeIn memory d = memberSigned(s1, 1, m1, 2, 700, 0, meterKeyOf[m1]);
        c = disputes.dispute(s, c, d);
        assertLine(c.lines[1], expectedLine(R_PF, PF + ISP, 12_000, 6000, 6000));
        assertLine(c.lines[0], R_PF, PF, 300_000, 300_000, 0); // the other ISP stands
        assertEq(disputes.faultsOf(ORACLE1), 1, "one fault for m1's meter in that ISP");
        assertEq(disputes.equivocationsOf(meterOf(m1)), 1, "m1's meter equivocated");
        d = memberDispute(s1, 1, m3);
        vm.expectRevert(abi.encodeWithSelector(ReadingDisputes.DisputeIspVoided.selector, PF + ISP));
        disputes.dispute(s, c, d);
    }

    function test_dispute_memberAgreesWithTheAnchor() public {
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        Settlement.SettleIn memory s = portfolioIn(s1);
        ReadingDisputes.DisputeIn memory d = memberDispute(s1, 1, m2); // m2's meter signed what was anchored
        vm.expectRevert(agrees(m2, PF + ISP));
        disputes.dispute(s, r, d);
        d = memberSigned(s1, 0, m1, 5, 1000, 0, meterKeyOf[m1]); // another sequence, the same energies
        vm.expectRevert(agrees(m1, PF));
        disputes.dispute(s, r, d);
    }

    function test_dispute_nonMember() public {
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        Settlement.SettleIn memory s = portfolioIn(s1);
        // m4's meter's own signature, but m4 is P2's
        ReadingDisputes.DisputeIn memory d = memberSigned(s1, 0, m4, 1, 0, 0, meterKeyOf[m4]);
        vm.expectRevert(abi.encodeWithSelector(ReadingDisputes.DisputeNotMember.selector, p1, m4));
        disputes.dispute(s, r, d);
        d = memberDispute(s1, 1, m1);
        d.member = 0;
        vm.expectRevert(abi.encodeWithSelector(ReadingDisputes.DisputeNotMember.selector, p1, uint64(0)));
        disputes.dispute(s, r, d);
        d.member = sales[S_FULL].assetId; // an asset of no portfolio
        vm.expectRevert(abi.encodeWithSelector(ReadingDisputes.DisputeNotMember.selector, p1, sales[S_FULL].assetId));
        disputes.dispute(s, r, d);
    }

    function test_dispute_notSignedByTheMembersMeter() public {
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        Settlement.SettleIn memory s = portfolioIn(s1);
        bytes memory forged = abi.encodeWithSelector(ReadingDisputes.DisputeNotSignedByMeter.selector, meterOf(m1), PF + ISP);
        // m1's reading signed by m3's meter
        ReadingDisputes.DisputeIn memory d = memberSigned(s1, 1, m1, 1, 500, 0, meterKeyOf[m3]);
        vm.expectRevert(forged);
        disputes.dispute(s, r, d);
        // m3's meter's own reading, named as m1's
        d = memberDispute(s1, 1, m3);
        d.member = m1;
        vm.expectRevert(forged);
        disputes.dispute(s, r, d);
        // signed by the aggregator
        d = memberSigned(s1, 1, m1, 1, 500, 0, AGGREGATOR_KEY);
        vm.expectRevert(forged);
        disputes.dispute(s, r, d);
        assertEq(disputes.faultsOf(ORACLE1), 0, "no fault");
    }

    function test_dispute_portfolio_noSuchIsp() public {
        Settlement.Record memory r = settlement.settle(portfolioIn(s1));
        ReadingDisputes.DisputeIn memory d = memberDispute(s1, 1, m1);
        Settlement.SettleIn memory s = portfolioIn(s1);
        d.isp = 2;
        vm.expectRevert(abi.encodeWithSelector(ReadingDisputes.DisputeNoSuchIsp.selector, 2));
        disputes.dispute(s, r, d);
    }

    // ------------------------------------------------------------------------ default, batches

    function test_settleUnrevealed_portfolio() public {
        Settlement.SettleIn memory s = portfolioIn(s1);
        (s.members, s.baselineWh, s.salt) = (new bytes[](0), new int64[](0), bytes32(0)); // none needed
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementWindowOpen.selector, WINDOW_CLOSES));
        settlement.settleUnrevealed(s);
        vm.warp(WINDOW_CLOSES + 1);
        Settlement.Record memory r = settlement.settleUnrevealed(s);
        assertEq(r.seller, aggregator, "the aggregator's sale");
        // nothing delivered: 95 % of 1.08e7 W*s at 1.5 x 1e8 per ISP
        assertLine(r.lines[0], expectedLine(R_PF, PF, 12_000, 0, 0));
        assertLine(r.lines[0], R_PF, PF, 0, 0, 427_500);
        assertLine(r.lines[1], R_PF, PF + ISP, 0, 0, 427_500);
        assertEq(book.bondLocked(aggregator), 855_000, "the aggregator's bond locked for it");
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementAlreadySettled.selector, r.offerDigest));
        settlement.settleUnrevealed(s);
        vm.warp(WINDOW_CLOSES + 1 + DISPUTE + 1);
        uint256 owed = settlement.claimable(DSO1);
        settlement.finalise(r);
        assertEq(settlement.claimable(DSO1) - owed, 855_000, "the penalty from the aggregator's bond, for the buyer");
        assertEq(book.bondOf(aggregator), AGGREGATOR_BOND - 855_000, "bond drawn");
        checkMoney();
    }

    function test_settleMany_portfolioAndAssetOffers() public {
        Settlement.SettleIn[] memory batch = new Settlement.SettleIn[](3);
        (batch[0], batch[1], batch[2]) = (portfolioIn(s1), settleIn(S_FULL), portfolioIn(s2));
        Settlement.Record[] memory rs = settlement.settleMany(batch);
        assertEq(rs[0].seller, aggregator, "P1's aggregator");
        assertEq(rs[1].seller, owner, "the asset's owner");
        assertEq(rs[2].seller, aggregator, "P2's aggregator");
        assertLine(rs[0].lines[1], R_PF, PF + ISP, 150_000, 0, 52_500);
        assertLine(rs[1].lines[0], R_UP, H8, 125_000, 125_000, 0);
        assertLine(rs[2].lines[0], R_PF_STD, PF, 150_000, 90_000, 0);
        checkMoney();
    }
}

/// Offers that stand after the portfolio changed under them, before the gate closure.
contract SettlementPortfolioMembershipTest is SettlementPortfolioFixture {
    uint64 internal constant R_JOIN_ASSET = 14; // DSO1, zone 2, 09:30 x1, UP, 10 kW, MAX
    uint64 internal constant R_JOIN_PORTFOLIO = 15; // DSO1, zone 2, 09:30 x1, UP, 10 kW, MAX
    uint64 internal constant R_EMPTY = 16; // DSO1, zone 2, 09:30 x1, UP, 10 kW, MAX
    uint256 internal sx; // x's own offer: 5 kW at 09:30, COMMITTED baseline 2000
    uint256 internal sp; // P4's offer: 5 kW at 09:30, COMMITTED baseline 3000
    uint256 internal se; // P5's offer: 5 kW at 09:30, COMMITTED baseline 1250
    uint64 internal x;
    uint64 internal y;
    uint64 internal z;
    uint32 internal p4;
    uint32 internal p5;

    /// Before the gate closure: x (owner's) offers 5 kW at 09:30 on its own and the book accepts
    /// it; then x and y (owner2's) join P4, which offers 5 kW at 09:30 too (x's meter measured
    /// +750 Wh, y's +1000 Wh). P5 = [z] offers 5 kW at 09:30, then z leaves P5: at the gate
    /// closure P5 has no member (z's meter reported nothing for 09:30).
    function buildBook() internal override {
        super.buildBook();
        assertEq(request(DSO1, market, 2, PF, 1, UP, 10_000, MAX, 0), R_JOIN_ASSET, "R_JOIN_ASSET");
        assertEq(request(DSO1, market, 2, PF, 1, UP, 10_000, MAX, 0), R_JOIN_PORTFOLIO, "R_JOIN_PORTFOLIO");
        assertEq(request(DSO1, market, 2, PF, 1, UP, 10_000, MAX, 0), R_EMPTY, "R_EMPTY");
        Terms memory t = terms(5_000);
        t.start = PF;
        sx = addSale(t, b1(2000));
        x = sales[sx].assetId;
        relaySales(sx, sx + 1); // in the book, never awarded: the clearing refuses it once x joins P4

        (y,) = newKeyedAsset(OWNER2_KEY, 5);
        uint256[] memory keys = new uint256[](2);
        (keys[0], keys[1]) = (OWNER_KEY, OWNER2_KEY);
        p4 = newPortfolio(assetIds(x, y), keys);
        sp = addPortfolioSale(p4, 1, 5_000, COMMITTED, b1(3000));
        award(sp, R_JOIN_PORTFOLIO, 0, 5_000);
        memberRead(x, PF, 750, 0);
        memberRead(y, PF, 1000, 0);
        presented[sp] = assetIds(x, y);

        (z,) = newKeyedAsset(OWNER3_KEY, 5);
        uint64[] memory founders = new uint64[](1);
        founders[0] = z;
        keys = new uint256[](1);
        keys[0] = OWNER3_KEY;
        p5 = newPortfolio(founders, keys);
        se = addPortfolioSale(p5, 1, 5_000, COMMITTED, b1(1250));
        // not awarded: the clearing judges P5's power at the gate closure and refuses it
        // (ClearingPortfolioTermsChanged, redteam/Markets.t.sol)
        relaySales(sp, se + 1);
        vm.prank(aggregator);
        assets.removeFromPortfolio(z);
    }

    /// An asset's own offer made before it joined a portfolio stays in the book, but the clearing
    /// no longer awards it (ClearingAssetInPortfolio, ClearingCommitment's tests): x's meter
    /// counts once, in P4's settlement (3000 - 750 - 1000 = 1250 Wh: 125,000).
    function test_settle_memberWhoseOwnOfferWasNotAwardedCountsOnce() public {
        assertMembers(deliveryMeter.members(market, p4, PF), assetIds(x, y), "x is P4's at the gate closure");
        Settlement.Record memory portfolio = settlement.settle(portfolioIn(sp));
        assertEq(portfolio.seller, aggregator, "P4's offer: the aggregator sells");
        assertLine(portfolio.lines[0], R_JOIN_PORTFOLIO, PF, 125_000, 125_000, 0);
        checkMoney();
    }

    /// A portfolio whose every member left after its offer was accepted but before the gate
    /// closure has no meter to measure it, and no power at the gate closure: the clearing refuses
    /// to award its offer (ClearingPortfolioTermsChanged), so no settlement reaches
    /// DeliveryMeter's `PortfolioWithoutMembers`, which stays as a second line of defence.
    function test_portfolioWithNoMemberAtTheGateClosure_hasNoPowerThen() public view {
        assertEq(deliveryMeter.members(market, p5, PF).length, 0, "no member at the gate closure");
        (,, uint256 upW,) = assets.portfolioTermsAt(p5, CLOSURE);
        assertEq(upW, 0, "no power at the gate closure");
        (,, upW,) = assets.portfolioTerms(p5);
        assertEq(upW, 0, "no power left");
    }
}

/// Gas of settling a portfolio offer: P1, three members, two award-ISPs (each ISP's three member
/// readings proven against the anchored root, through DeliveryMeter).
contract SettlementPortfolioGasTest is SettlementPortfolioFixture {
    function test_gas_settlePortfolio() public {
        Settlement.SettleIn memory s = portfolioIn(s1);
        bytes memory data = abi.encodeCall(Settlement.settle, (s));
        cool();
        settlement.settle(s);
        logGas("settle a portfolio of 3 members, 2 award-ISPs (member proofs of depth 2), per award-ISP", data, 2);
    }
}
