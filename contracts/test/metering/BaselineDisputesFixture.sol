// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {SettlementTestBase} from "../market/Settlement.t.sol";
import {StandardTree} from "../market/SettlementFixture.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {MeterOracle} from "../../src/metering/MeterOracle.sol";
import {BaselineDisputes} from "../../src/metering/BaselineDisputes.sol";
import {MarketRegistry} from "../../src/market/MarketRegistry.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {AssetRegistry} from "../../src/grid/AssetRegistry.sol";
import {ReadingDisputes} from "../../src/metering/ReadingDisputes.sol";

/// The rule as a reader would write it from its statement (no shared code with the contract): the
/// reference `BaselineDisputes.rule` is fuzzed against.
library BaselineReference {
    uint256 internal constant DAY = 86_400;

    function weekday(uint256 dayNumber) internal pure returns (uint256) {
        return (dayNumber + 3) % 7; // day 0 (1970-01-01) was a Thursday; Monday is 0
    }

    struct Kept {
        uint64 bits;
        int64[10] nets;
        uint256 count;
        int256 sum;
    }

    function rule(uint64 ispStart, uint64 daysBack, int64[10] memory nets)
        internal
        pure
        returns (bool some, int64 value, bytes32 keptInputs)
    {
        (uint256[64] memory ks, uint256 used) = usedDays(daysBack);
        Kept memory x;
        for (uint256 i = 0; i < used && x.count < 10; ++i) {
            if (!similar(ispStart, ks[i])) continue;
            x.bits += uint64(1 << (ks[i] - 1));
            x.nets[x.count++] = nets[i];
            x.sum += nets[i];
        }
        keptInputs = keccak256(abi.encode(x.bits, x.nets));
        some = x.count >= 3;
        if (some) {
            uint256 magnitude = uint256(x.sum < 0 ? -x.sum : x.sum) / x.count; // toward zero
            value = int64(x.sum < 0 ? -int256(magnitude) : int256(magnitude));
        }
    }

    /// The used days, most recent first; only the first ten have values.
    function usedDays(uint64 daysBack) internal pure returns (uint256[64] memory ks, uint256 used) {
        for (uint256 k = 1; k <= 64; ++k) {
            if (daysBack & (uint64(1 << (k - 1))) != 0) ks[used++] = k;
        }
        if (used > 10) used = 10;
    }

    function similar(uint64 ispStart, uint256 k) internal pure returns (bool) {
        if (k > 60 || k * DAY > ispStart) return false;
        return (weekday(ispStart / DAY - k) >= 5) == (weekday(ispStart / DAY) >= 5);
    }
}

/// The world of the standard-baseline tests: SettlementTestBase's day, plus a standard-baseline
/// sale at 09:00 (`std`, 4 kW to R_STD, the meter measured 1,600 Wh), BaselineDisputes wired to
/// the oracle, ORACLE1 staked, and the meter's readings of the first four similar days before
/// H9 anchored before the baselines (the fifth's never).
abstract contract BaselineDisputesFixture is SettlementTestBase {
    uint64 internal constant R_STD = 11; // DSO1, zone 2, 09:00 x1, UP, 10 kW, MAX
    uint256 internal constant REQUIRED = 50_000;
    uint256 internal constant STAKED = 80_000;
    uint256 internal constant BOND = 10_000; // a challenge of an input day
    address internal constant OTHER_METER = address(0xBEEF);
    address internal constant ANYONE = address(0xD15);

    BaselineDisputes internal bd;
    uint256 internal std;

    function assertEqInt(int256 actual, int256 expected, string memory what) internal pure {
        if (actual != expected) revert AssertionFailed(what);
    }
    address internal meter;
    /// The first five days of H9's kind before it (as days back); the readings of the first four
    /// were anchored before the baselines, the fifth's after.
    uint256[5] internal similar;
    int64[5] internal history = [int64(2400), 2000, 1900, 2300, 5000];
    bytes32 internal otherLeaf;

    /// 4 kW at 09:00 for one ISP (1,000 Wh awarded), the meter measured 1,600 Wh. On the honest
    /// baseline of 2,150 Wh (the mean of the four anchored similar days) it delivered 550 Wh.
    function moreSales() internal override {
        assertEq(request(DSO1, market, 2, H9, 1, UP, 10_000, MAX, 0), R_STD, "R_STD");
        Terms memory t = terms(4_000);
        (t.start, t.isps) = (H9, 1);
        std = addSale(t, b1(0));
        (saleOffer[std].baselineMethod, saleOffer[std].baseline) = (ROLLING_AVERAGE, bytes32(0));
        award(std, R_STD, 0, 4_000);
        read(std, 0, 1_600, 0);
    }

    function setUp() public virtual override {
        super.setUp(); // now NOW0, the day's readings anchored
        bd = new BaselineDisputes(markets, book, assets, oracle, settlement, disputes, token, BOND);
        vm.prank(ADMIN);
        oracle.setBaselineDisputes(address(bd));
        mint(ORACLE1, STAKED);
        vm.prank(ORACLE1);
        token.approve(address(oracle), type(uint256).max);
        vm.prank(ADMIN);
        oracle.setRequiredStake(market, REQUIRED);
        vm.prank(ORACLE1);
        oracle.stake(market, uint128(STAKED));
        meter = vm.addr(sales[std].meterKey);
        uint256 n;
        for (uint256 k = 1; n < 5; ++k) {
            if (BaselineReference.weekday((H9 - k * 1 days) / 1 days) >= 5 == BaselineReference.weekday(H9 / 1 days) >= 5) {
                similar[n++] = k;
            }
        }
        uint256 later = block.timestamp;
        vm.warp(CLOSURE - 2 hours); // the history was anchored before the baselines
        for (uint256 i = 0; i < 4; ++i) {
            anchorHistory(i);
        }
        vm.warp(later);
        otherLeaf = oracle.baselineLeaf(OTHER_METER, H9, 777, keccak256("other inputs"));
    }

    // ---------------------------------------------------------------------------- building

    function anchorHistory(uint256 i) internal {
        uint64 day = H9 - uint64(similar[i] * 1 days);
        uint256 key = keyOf(market, day);
        anchoredReadings[key].push(Rd(meter, 7, uint64(history[i]), 0));
        anchorKey(key);
    }

    /// The inputs of the days `which` (indexes into `similar`) with the values `values`.
    function inputsOf(uint256[] memory which, int64[] memory values) internal view returns (uint64 bits, int64[10] memory nets) {
        for (uint256 i = 0; i < which.length; ++i) {
            bits |= uint64(1 << (similar[which[i]] - 1));
            nets[i] = values[i];
        }
    }

    function honestInputs() internal view returns (uint64 bits, int64[10] memory nets) {
        return inputsOf(idx4(0, 1, 2, 3), vals4(2400, 2000, 1900, 2300));
    }

    /// ORACLE1 anchors, at the gate closure, the baselines of H9: the meter's `value` on these inputs.
    function anchorStd(int64 value, uint64 bits, int64[10] memory nets) internal {
        uint256 later = block.timestamp;
        vm.warp(CLOSURE);
        bytes32 leaf = oracle.baselineLeaf(meter, H9, value, keccak256(abi.encode(bits, nets)));
        vm.prank(ORACLE1);
        oracle.anchorBaselines(market, H9, Hashes.commutativeKeccak256(leaf, otherLeaf), 2);
        vm.warp(later);
    }

    function stdIn(int64 value, bytes32 inputs, bool corrected) internal view returns (Settlement.SettleIn memory s) {
        s = settleIn(std);
        s.baselineWh[0] = value;
        s.baselineProofs = new bytes32[][](1);
        s.baselineProofs[0] = new bytes32[](corrected ? 1 : 2);
        s.baselineProofs[0][0] = inputs;
        if (!corrected) s.baselineProofs[0][1] = otherLeaf;
    }

    function baselineIn(int64 value, uint64 bits, int64[10] memory nets, bool corrected)
        internal
        view
        returns (BaselineDisputes.BaselineIn memory b)
    {
        b.baselineWh = value;
        b.daysBack = bits;
        b.nets = nets;
        b.proof = new bytes32[](corrected ? 0 : 1);
        if (!corrected) b.proof[0] = otherLeaf;
    }

    function arithmetic(BaselineDisputes.BaselineIn memory b) internal pure returns (BaselineDisputes.DisputeIn memory d) {
        d.kind = BaselineDisputes.Kind.ARITHMETIC;
        d.baseline = b;
    }

    function disputeIn(BaselineDisputes.Kind kind, BaselineDisputes.BaselineIn memory b, uint256 input, Settlement.ReadingIn memory r)
        internal
        pure
        returns (BaselineDisputes.DisputeIn memory d)
    {
        d.kind = kind;
        d.baseline = b;
        d.input = input;
        d.reading = r;
    }

    /// The anchored reading of the meter on similar day `i`, with its proof.
    function historyIn(uint256 i) internal view returns (Settlement.ReadingIn memory r) {
        uint64 day = H9 - uint64(similar[i] * 1 days);
        uint256 key = keyOf(market, day);
        Rd[] storage rs = anchoredReadings[key];
        (r.anchor, r.sequence, r.importWh, r.exportWh) = (anchors[key], rs[0].sequence, rs[0].importWh, rs[0].exportWh);
        r.signature = anchoredSignature(rs[0], day);
        bytes32[] memory leaves = leavesOf(rs, day);
        r.proof = StandardTree.proof(StandardTree.build(leaves), leaves[0]);
    }

    function idx4(uint256 a, uint256 b, uint256 c, uint256 d) internal pure returns (uint256[] memory x) {
        x = new uint256[](4);
        (x[0], x[1], x[2], x[3]) = (a, b, c, d);
    }

    function vals4(int64 a, int64 b, int64 c, int64 d) internal pure returns (int64[] memory x) {
        x = new int64[](4);
        (x[0], x[1], x[2], x[3]) = (a, b, c, d);
    }

    function fixOf(int64 value, uint64 bits, int64[10] memory nets) internal pure returns (bytes32) {
        return keccak256(abi.encode(value, keccak256(abi.encode(bits, nets))));
    }

    function notWrong() internal view returns (bytes memory) {
        return abi.encodeWithSelector(BaselineDisputes.BaselineNotWrong.selector, meter, H9);
    }

    // ---------------------------------------------------------------------------- challenges

    address internal constant CHALLENGER = address(0xC4A1);
    address internal constant UPHOLDER = address(0x0B01);

    /// The four anchored similar days and the fifth, whose reading was never anchored, with `invented` Wh.
    function inventedInputs(int64 invented) internal view returns (uint64 bits, int64[10] memory nets) {
        uint256[] memory which = new uint256[](5);
        int64[] memory values = new int64[](5);
        for (uint256 i = 0; i < 5; ++i) {
            (which[i], values[i]) = (i, i < 4 ? history[i] : invented);
        }
        return inputsOf(which, values);
    }

    function challengeError(bytes4 selector, uint256 daysBack) internal view returns (bytes memory) {
        return abi.encodeWithSelector(selector, bd.challengeKey(market, H9, meter, daysBack));
    }

    /// CHALLENGER, funded, challenges the day `daysBack` of the baseline in force `b`.
    function challenge(BaselineDisputes.BaselineIn memory b, uint256 daysBack) internal {
        mint(CHALLENGER, BOND);
        vm.startPrank(CHALLENGER);
        token.approve(address(bd), BOND);
        bd.challengeInput(market, H9, meter, b, daysBack);
        vm.stopPrank();
    }

    function assertLeafOut(int64 value, uint64 bits, int64[10] memory nets) internal view {
        bytes32[] memory witness = stdIn(value, keccak256(abi.encode(bits, nets)), false).baselineProofs[0];
        assertTrue(!oracle.verifyBaseline(market, H9, meter, value, witness), "the anchored leaf is out");
    }

    function pastAnswerWindow() internal {
        vm.warp(block.timestamp + DISPUTE + 1);
    }
}
