// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SettlementFixture} from "../market/SettlementFixture.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {ClearingCommitment} from "../../src/market/ClearingCommitment.sol";
import {MarketRegistry} from "../../src/market/MarketRegistry.sol";
import {MeterOracle} from "../../src/metering/MeterOracle.sol";

/// Red team RT-9 (../shared/redteam/contracts/RedteamOracle.t.sol) and the windows' lower findings,
/// turned into the defence: windows that cost a party money start from finality, a day without a
/// result in force when it begins is void, an oracle's stake outlasts every dispute it can face.
contract WindowsTest is SettlementFixture {
    /// RT-9: a result committed after the day began cannot come into force: the day is void, no
    /// seller is settled by default (no penalty for a full delivery), and the buyer's escrow goes
    /// back in full.
    function test_RT9_lateFirstResultVoidsTheDay() public {
        vm.warp(WINDOW_CLOSES - CHALLENGE + 1);
        uint64 id = openIn(OPERATOR, market2);
        postAs(OPERATOR, id, sorted(groupsOf(market2)));
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingDayBegun.selector, market2, DAY0));
        vm.prank(OPERATOR);
        clearing.close(id);
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNoResult.selector, market2, DAY0));
        clearing.finalise(market2, DAY0);
        Settlement.SettleIn memory s = settleIn(S_M2);
        s.resultId = id;
        vm.warp(WINDOW_CLOSES + 1);
        vm.expectRevert(abi.encodeWithSelector(Settlement.SettlementResultNotFinal.selector, id));
        settlement.settleUnrevealed(s);
        uint256 before = token.balanceOf(DSO1);
        settlement.refund(R_M2);
        assertEq(token.balanceOf(DSO1) - before, escrowOf(R_M2), "the whole escrow back");
    }

    /// RT-9's boundary: the first result must be in force before the day's first second.
    function test_RT9_firstResultClosesBeforeTheDayOrNever() public {
        vm.warp(DAY0 - CHALLENGE + 1); // after the gate closure (an hour before the day)
        uint64 id = openIn(OPERATOR, market2);
        postAs(OPERATOR, id, sorted(groupsOf(market2)));
        vm.warp(DAY0);
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingDayBegun.selector, market2, DAY0));
        vm.prank(OPERATOR);
        clearing.close(id);
        vm.warp(DAY0 - 1);
        closeAs(OPERATOR, id);
        assertEq(clearing.dayState(market2, DAY0).current, id, "in force, a second before the day");
    }

    /// RT-9: the settlement window runs a dispute window from the later of the day's end and the
    /// result's finality: a result final after the day's end leaves the parties the full window
    /// (the refund, which waits for it, shows where it ends).
    function test_RT9_settlementWindowStartsAtFinality() public {
        MarketRegistry.MarketParams memory p = marketParams(ISP, 0);
        (p.gateClosureSeconds, p.challengeWindowSeconds) = (2 days, 2 days);
        vm.prank(ADMIN);
        uint32 slow = markets.createMarket(p); // a result closed before its day is final up to 2 days later
        uint64 day = DAY0 + 10 days;
        vm.warp(day - 3 days);
        uint64 q = request(DSO1, slow, 2, day + 8 hours, 1, UP, 10_000, MAX, 0);
        vm.warp(day - 1 hours);
        vm.prank(OPERATOR);
        uint64 id = clearing.open(slow, day);
        closeAs(OPERATOR, id); // nothing awarded: what matters is its window
        uint64 finalAt = day - 1 hours + 2 days;
        vm.warp(finalAt + 1);
        clearing.finalise(slow, day);
        uint64 closes = finalAt + DISPUTE;
        assertTrue(closes > day + 1 days + DISPUTE, "later than the calendar's window");
        vm.warp(day + 1 days + DISPUTE + 1);
        vm.expectRevert(
            abi.encodeWithSelector(Settlement.SettlementRefundNotDue.selector, q, "settlement window open")
        );
        settlement.refund(q);
        vm.warp(closes + 1);
        settlement.refund(q);
    }

    /// A challenge window longer than the gate closure lead would leave the result open during delivery.
    function test_challengeWindowWithinTheGateClosureLead() public {
        MarketRegistry.MarketParams memory p = marketParams(ISP, 0);
        p.challengeWindowSeconds = p.gateClosureSeconds + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                MarketRegistry.MarketRegistryInvalidParameter.selector, "challengeWindowSeconds", p.challengeWindowSeconds
            )
        );
        vm.prank(ADMIN);
        markets.createMarket(p);
    }

    /// Lower finding: an oracle's stake stays until the last dispute of what it anchored can be
    /// raised: a default settlement of the day's last ISP, settled at the end of its window and
    /// disputed at the end of its own (day end + 3 dispute windows), still finds it staked.
    function test_oracleUnstakeLockOutlastsTheDisputeHorizon() public {
        uint256 stakeAmount = 100_000;
        vm.prank(ADMIN);
        oracle.setRequiredStake(market, stakeAmount);
        mint(ORACLE1, stakeAmount);
        vm.startPrank(ORACLE1);
        token.approve(address(oracle), type(uint256).max);
        oracle.stake(market, uint128(stakeAmount));
        oracle.requestUnstake(market); // at NOW0, after anchoring DAY0's ISPs
        vm.stopPrank();
        uint64 unlocksAt = oracle.stakeOf(market, ORACLE1).unlocksAt;
        uint64 lastDispute = DAY0 + 1 days + 3 * DISPUTE; // the day's end, settlement, default and its dispute windows
        assertTrue(unlocksAt > lastDispute, "locked past the last dispute");
        assertEq(unlocksAt, NOW0 + markets.settlementHorizon(market) + 1, "from the registry's horizon");
        vm.warp(unlocksAt - 1);
        vm.expectRevert(abi.encodeWithSelector(MeterOracle.MeterOracleStakeLocked.selector, unlocksAt));
        vm.prank(ORACLE1);
        oracle.withdrawStake(market);
    }
}
