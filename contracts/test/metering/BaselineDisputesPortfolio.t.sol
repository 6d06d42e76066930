// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SettlementPortfolioFixture} from "../market/SettlementPortfolio.t.sol";
import {SettlementFixture, StandardTree} from "../market/SettlementFixture.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {DeliveryMeter} from "../../src/metering/DeliveryMeter.sol";
import {BaselineDisputes} from "../../src/metering/BaselineDisputes.sol";

/// A portfolio's standard baseline is its members' sum: a dispute names the member whose meter's
/// baseline is wrong (`DisputeIn.member`), the correction is that member's, and the portfolio's
/// offer is re-settled on the corrected sum. P2 = [m4, m5] sells 8 kW at 09:30; the oracle
/// anchors m4 1,500 Wh on inputs of three similar days of 1,000 Wh each (the rule gives 1,000), and
/// m5 2,500 on three days of 2,500 (right). Readings m4 +1000, m5 +1500: net 2,500.
contract BaselineDisputesPortfolioTest is SettlementPortfolioFixture {
    address internal constant ANYONE = address(0xD15);

    BaselineDisputes internal bd;
    uint64 internal bits; // 7, 14 and 21 days before: the ISP's weekday
    int64[10] internal netsM4;
    int64[10] internal netsM5;
    bytes32[] internal tree;

    /// The portfolio fixture's world, its standard baselines anchored with real inputs.
    function setUp() public override {
        SettlementFixture.setUp(); // the readings are anchored; now NOW0
        bd = new BaselineDisputes(markets, book, assets, oracle, settlement, disputes, token, 10_000);
        vm.prank(ADMIN);
        oracle.setBaselineDisputes(address(bd));
        bits = uint64(1 << 6 | 1 << 13 | 1 << 20);
        (netsM4[0], netsM4[1], netsM4[2]) = (1000, 1000, 1000);
        (netsM5[0], netsM5[1], netsM5[2]) = (2500, 2500, 2500);
        bytes32[] memory leaves = new bytes32[](3);
        leaves[0] = oracle.baselineLeaf(meterOf(m4), PF, 1500, keccak256(abi.encode(bits, netsM4)));
        leaves[1] = oracle.baselineLeaf(meterOf(m5), PF, 2500, keccak256(abi.encode(bits, netsM5)));
        leaves[2] = oracle.baselineLeaf(OTHER_METER, PF, 777, keccak256("other"));
        tree = StandardTree.build(leaves);
        uint256 later = block.timestamp;
        vm.warp(CLOSURE);
        vm.prank(ORACLE1);
        oracle.anchorBaselines(market, PF, tree[0], 3);
        vm.warp(later);
    }

    function pathOf(uint64 member, int64 value, int64[10] memory nets) internal view returns (bytes32[] memory) {
        return StandardTree.proof(tree, oracle.baselineLeaf(meterOf(member), PF, value, keccak256(abi.encode(bits, nets))));
    }

    /// m4's and m5's readings with the baselines `v4` and `v5`: anchored leaves, or (`corrected`) m4's
    /// correction, whose witness is its inputs hash alone.
    function stdIn(int64 v4, bool corrected) internal view returns (Settlement.SettleIn memory s) {
        s = settleIn(s2);
        s.salt = bytes32(0);
        s.baselineWh[0] = v4 + 2500;
        DeliveryMeter.MemberReading[] memory rs = new DeliveryMeter.MemberReading[](2);
        rs[0] = memberReading(m4, PF, false);
        rs[1] = memberReading(m5, PF, false);
        (rs[0].baselineWh, rs[1].baselineWh) = (v4, 2500);
        rs[0].baselineProof = witness(keccak256(abi.encode(bits, netsM4)), corrected ? new bytes32[](0) : pathOf(m4, 1500, netsM4));
        rs[1].baselineProof = witness(keccak256(abi.encode(bits, netsM5)), pathOf(m5, 2500, netsM5));
        s.members = new bytes[](1);
        s.members[0] = abi.encode(rs);
    }

    function witness(bytes32 inputs, bytes32[] memory path) internal pure returns (bytes32[] memory w) {
        w = new bytes32[](path.length + 1);
        w[0] = inputs;
        for (uint256 k = 0; k < path.length; ++k) w[k + 1] = path[k];
    }

    function arithmetic(uint64 member, int64 value, int64[10] memory nets) internal view returns (BaselineDisputes.DisputeIn memory d) {
        d.kind = BaselineDisputes.Kind.ARITHMETIC;
        d.member = member;
        d.baseline = BaselineDisputes.BaselineIn(value, bits, nets, pathOf(member, value, nets));
    }

    /// The exploit: m4's baseline 500 Wh too high pays the aggregator for 500 Wh m4 never saved.
    /// The defence: anyone disputes m4's arithmetic; its baseline becomes 1,000 for every settlement,
    /// the portfolio's 3,500, and the offer is re-settled on it; m5's (right) and a non-member's
    /// cannot be disputed, nor m4's twice; `applyCorrection` on the correction changes nothing more.
    function test_memberBaseline_disputed_portfolioResettledOnTheCorrectedSum() public {
        Settlement.SettleIn memory s = stdIn(1500, false);
        Settlement.Record memory r = settlement.settle(s);
        assertLine(r.lines[0], expectedLine(R_PF_STD, PF, 8_000, 4000, 2500)); // 1,500 of 2,000 Wh "delivered"
        bytes32 inputs = keccak256(abi.encode(bits, netsM4));
        bytes32 fix = keccak256(abi.encode(int64(1000), inputs));

        // (the evidence is built before each expected revert: building it calls the oracle)
        BaselineDisputes.DisputeIn memory right = arithmetic(m5, 2500, netsM5);
        BaselineDisputes.DisputeIn memory wrong = arithmetic(m4, 1500, netsM4);
        BaselineDisputes.DisputeIn memory other = arithmetic(m4, 1500, netsM4);
        bytes memory m5Right = abi.encodeWithSelector(BaselineDisputes.BaselineNotWrong.selector, meterOf(m5), PF);
        vm.startPrank(ANYONE);
        vm.expectRevert(m5Right);
        bd.dispute(s, r, right);
        other.member = m1; // of another portfolio
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineNotMember.selector, p2, m1));
        bd.dispute(s, r, other);
        other.member = 0; // a portfolio's dispute names its member
        vm.expectRevert(abi.encodeWithSelector(BaselineDisputes.BaselineNotMember.selector, p2, uint64(0)));
        bd.dispute(s, r, other);

        vm.expectEmit();
        emit BaselineDisputes.BaselineDisputed(
            r.offerDigest, ORACLE1, meterOf(m4), PF, BaselineDisputes.Kind.ARITHMETIC, fix, 1000, inputs, ANYONE
        );
        Settlement.Record memory c = bd.dispute(s, r, wrong);
        assertLine(c.lines[0], expectedLine(R_PF_STD, PF, 8_000, 3500, 2500)); // 1,000 of 2,000 Wh delivered
        assertEq(oracle.baselineFix(market, PF, meterOf(m4)), fix, "m4's correction in force");
        assertEq(oracle.baselineFix(market, PF, meterOf(m5)), bytes32(0), "m5's leaf stands");
        assertEq(bd.faultsOf(ORACLE1), 1, "one fault");

        // the wrong sum settles nothing any more; the corrected one, with m4's inputs hash as its witness, does
        Settlement.SettleIn memory fixed_ = stdIn(1000, true);
        BaselineDisputes.DisputeIn memory again = wrong; // the correction revealed: no proof
        again.baseline = BaselineDisputes.BaselineIn(1000, bits, netsM4, new bytes32[](0));
        // the settlement's proof of its baselines fails first: m4's leaf is no longer in force
        bytes memory notInForce = abi.encodeWithSelector(DeliveryMeter.PortfolioBaselineNotAnchored.selector, p2, PF, m4);
        bytes memory m4Right = abi.encodeWithSelector(BaselineDisputes.BaselineNotWrong.selector, meterOf(m4), PF);
        vm.expectRevert(notInForce);
        bd.dispute(s, c, wrong);
        vm.expectRevert(m4Right);
        bd.dispute(fixed_, c, again);
        Settlement.Record memory applied = bd.applyCorrection(fixed_, c, 0, m4);
        vm.stopPrank();
        assertLine(applied.lines[0], expectedLine(R_PF_STD, PF, 8_000, 3500, 2500));
        assertEq(bd.faultsOf(ORACLE1), 1, "still one fault");
        checkMoney();
    }
}
