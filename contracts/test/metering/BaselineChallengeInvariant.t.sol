// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {BaselineDisputes} from "../../src/metering/BaselineDisputes.sol";
import {BaselineReference, BaselineDisputesFixture} from "./BaselineDisputesFixture.sol";

/// The fuzzer's entry points: each forwards to the test's action of the same name and counts
/// what the contracts accepted and what they refused (the actions catch the contracts' refusals).
contract BaselineChallengeHandler {
    BaselineChallengeInvariantTest internal immutable world;

    uint256 internal constant CHALLENGE = 0;
    uint256 internal constant ANSWER = 1;
    uint256 internal constant UPHOLD = 2;
    uint256 internal constant DISPUTE = 3;

    mapping(uint256 action => uint256) public accepted;
    mapping(uint256 action => uint256) public refused;

    constructor(BaselineChallengeInvariantTest w) {
        world = w;
    }

    function challenge(uint256 seed) external {
        _count(CHALLENGE, abi.encodeCall(BaselineChallengeInvariantTest.actChallenge, (seed)));
    }

    function answer(uint256 seed) external {
        _count(ANSWER, abi.encodeCall(BaselineChallengeInvariantTest.actAnswer, (seed)));
    }

    function uphold(uint256 seed) external {
        _count(UPHOLD, abi.encodeCall(BaselineChallengeInvariantTest.actUphold, (seed)));
    }

    function dispute(uint256 seed) external {
        _count(DISPUTE, abi.encodeCall(BaselineChallengeInvariantTest.actDispute, (seed)));
    }

    function wait(uint256 seed) external {
        world.actWait(seed);
    }

    function _count(uint256 action, bytes memory call) internal {
        (bool ok, bytes memory out) = address(world).call(call);
        if (ok && abi.decode(out, (bool))) ++accepted[action];
        else ++refused[action];
    }
}

/// BaselineDisputes's money and corrections, driven at random: the oracle anchors the standard
/// baselines of H9 for two meters (the sale's meter: some of its four anchored days, honest or
/// misstated, and sometimes the fifth, never anchored, invented; OTHER_METER: days of which no
/// reading was ever anchored) with the rule's value or one off; then anyone challenges input days
/// (used or not, with the baseline in force or another), answers them (with the day's anchored
/// reading or another), upholds them (before or after the answer window), settles the sale on the
/// baseline in force, re-settles it on a later correction (`applyCorrection`) and disputes it
/// (ARITHMETIC, INPUT, SKIPPED, with right or wrong evidence), while the clock moves.
///
/// (i) The oracle is slashed at most once per (market, ISP, meter) across disputes and challenges,
/// marked once per meter corrected, and its stake is what it staked less what was slashed.
/// (ii) BaselineDisputes holds exactly the bonds of the open challenges.
/// (iii) Each party holds exactly what it was due: a challenger its bond back from each upheld or
/// lapsed challenge of its own and the slash of an upheld one, an answerer the bond of each
/// challenge it answered, a disputer the slash of its dispute; so nobody is paid twice and nobody
/// from another outcome (every party starts with nothing; a bond posted is minted just before).
/// (iv) The correction in force is the rule's on the evidence (the inputs in force without an
/// upheld day, with a disputed input fixed, a skipped day put back, or as they are).
contract BaselineChallengeInvariantTest is BaselineDisputesFixture {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    /// The baseline in force for a meter: the anchored leaf, a correction, or none left.
    struct InForce {
        bool none;
        bool corrected;
        int64 value;
        uint64 bits;
        int64[10] nets;
    }

    struct Challenge {
        uint256 meterIndex;
        uint256 daysBack;
        address challenger;
        address answerer;
    }

    address internal constant CHALLENGER_B = address(0xC4A2);
    address internal constant SINK = address(0x5111); // takes back a bond minted for a refused challenge

    BaselineChallengeHandler internal handler;
    bool internal anchored;
    bytes32[2] internal baselineLeafOf;
    InForce[2] internal inForce;
    Challenge[] internal challenges;
    uint256[2] internal slashes; // calls that slashed the oracle, by meter
    uint256 internal slashedTotal;
    mapping(address party => uint256) internal slashPaid;
    bool internal settled;
    bytes internal settledInput; // abi.encode(SettleIn): the sale's settlement in force
    bytes internal settledRecord; // abi.encode(Record)
    bytes32 internal settledOn; // the model's fix the settlement in force stands on

    modifier onlyHandler() {
        require(msg.sender == address(handler), "handler only");
        _;
    }

    function setUp() public override {
        super.setUp();
        handler = new BaselineChallengeHandler(this);
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory t) {
        bytes4[] memory actions = new bytes4[](5);
        actions[0] = BaselineChallengeHandler.challenge.selector;
        actions[1] = BaselineChallengeHandler.answer.selector;
        actions[2] = BaselineChallengeHandler.uphold.selector;
        actions[3] = BaselineChallengeHandler.dispute.selector;
        actions[4] = BaselineChallengeHandler.wait.selector;
        t = new FuzzSelector[](1);
        t[0] = FuzzSelector({addr: address(handler), selectors: actions});
    }

    function rnd(uint256 seed, uint256 salt) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, salt)));
    }

    function meterOf(uint256 j) internal view returns (address) {
        return j == 0 ? meter : OTHER_METER;
    }

    // ---------------------------------------------------------------------------- the anchor

    /// The first action anchors the baselines of H9 at the gate closure, at random (see the notice).
    function anchorOnce(uint256 seed) internal {
        if (anchored) return;
        anchored = true;
        (InForce memory m, InForce memory o) = draw(seed);
        baselineLeafOf[0] = oracle.baselineLeaf(meter, H9, m.value, keccak256(abi.encode(m.bits, m.nets)));
        baselineLeafOf[1] = oracle.baselineLeaf(OTHER_METER, H9, o.value, keccak256(abi.encode(o.bits, o.nets)));
        otherLeaf = baselineLeafOf[1]; // the fixture's proofs of the sale's meter
        uint256 later = block.timestamp;
        vm.warp(CLOSURE);
        vm.prank(ORACLE1);
        oracle.anchorBaselines(market, H9, Hashes.commutativeKeccak256(baselineLeafOf[0], baselineLeafOf[1]), 2);
        vm.warp(later);
        inForce[0] = m;
        inForce[1] = o;
    }

    /// The anchored baselines `seed` draws: the sale's meter's and OTHER_METER's.
    function draw(uint256 seed) internal view returns (InForce memory m, InForce memory o) {
        uint256 r = rnd(seed, 0xA);
        uint256 n;
        for (uint256 i = 0; i < 5; ++i) {
            uint256 x = (r >> (i * 8)) & 0xff;
            if (i < 4 ? x % 4 == 0 : x % 2 == 0) continue;
            m.bits |= uint64(1 << (similar[i] - 1));
            m.nets[n++] = i < 4 ? (x % 8 == 1 ? history[i] + 500 : history[i]) : int64(int256(x) * 20);
        }
        InForce memory o;
        for (uint256 i = 0; i < 3 + (r >> 40) % 2; ++i) {
            o.bits |= uint64(1 << (similar[i] - 1));
            o.nets[i] = int64(int256((r >> (48 + 12 * i)) & 0xfff));
        }
        m.value = ruleValue(m, (r >> 100) % 5 == 0);
        o.value = ruleValue(o, (r >> 104) % 7 == 0);
    }

    /// The rule's value of `f`'s inputs (any value when none is left), or one more.
    function ruleValue(InForce memory f, bool off) internal pure returns (int64 value) {
        (, value,) = BaselineReference.rule(H9, f.bits, f.nets);
        if (off) value += 1;
    }

    /// The baseline in force for meter `j`, revealed (the leaf's proof is the other leaf).
    function revealed(uint256 j) internal view returns (BaselineDisputes.BaselineIn memory b) {
        InForce memory f = inForce[j];
        (b.baselineWh, b.daysBack, b.nets) = (f.value, f.bits, f.nets);
        b.proof = new bytes32[](f.corrected ? 0 : 1);
        if (!f.corrected) b.proof[0] = baselineLeafOf[1 - j];
    }

    /// The rule applied as the contract states it, keeping the inputs: what a correction puts in force.
    function correct(uint256 j, uint64 bits, int64[10] memory nets) internal {
        (uint256[64] memory ks, uint256 used) = BaselineReference.usedDays(bits);
        InForce memory f;
        f.corrected = true;
        int256 sum;
        uint256 count;
        for (uint256 i = 0; i < used && count < 10; ++i) {
            if (!BaselineReference.similar(H9, ks[i])) continue;
            f.bits |= uint64(1 << (ks[i] - 1));
            f.nets[count++] = nets[i];
            sum += nets[i];
        }
        f.none = count < 3;
        if (!f.none) {
            uint256 magnitude = uint256(sum < 0 ? -sum : sum) / count;
            f.value = int64(sum < 0 ? -int256(magnitude) : int256(magnitude));
        }
        inForce[j] = f;
    }

    function modelFix(uint256 j) internal view returns (bytes32) {
        InForce memory f = inForce[j];
        if (!f.corrected) return 0;
        if (f.none) return oracle.NO_BASELINE();
        return keccak256(abi.encode(f.value, keccak256(abi.encode(f.bits, f.nets))));
    }

    /// The position of the day `k` among the used days of `bits`.
    function positionOf(uint64 bits, uint256 k) internal pure returns (uint256 at) {
        for (uint256 d = 1; d < k; ++d) {
            if ((bits >> (d - 1)) & 1 != 0) ++at;
        }
    }

    /// Count a slash of the oracle during the last call (the stake before it), paid to `to`.
    function countSlash(uint256 j, uint256 stakeBefore, address to) internal {
        uint256 stakeAfter = oracle.stakeOf(market, ORACLE1).amount;
        if (stakeAfter < stakeBefore) {
            ++slashes[j];
            slashedTotal += stakeBefore - stakeAfter;
            slashPaid[to] += stakeBefore - stakeAfter;
        }
    }

    // ---------------------------------------------------------------------------- the actions

    /// Someone challenges a day of a meter's baseline: mostly a used day with the baseline in
    /// force; else any day, or another baseline.
    function actChallenge(uint256 seed) external onlyHandler returns (bool) {
        anchorOnce(seed);
        uint256 j = rnd(seed, 1) % 2;
        InForce memory f = inForce[j];
        uint256 k = rnd(seed, 2) % 66;
        if (rnd(seed, 3) % 4 != 0) {
            (uint256[64] memory ks, uint256 used) = BaselineReference.usedDays(f.bits);
            if (used > 0) k = ks[rnd(seed, 4) % used];
        }
        BaselineDisputes.BaselineIn memory b = revealed(j);
        if (rnd(seed, 5) % 10 == 0) b.baselineWh += 1;
        uint256 pick = rnd(seed, 6) % 3;
        address who = pick == 0 ? CHALLENGER : pick == 1 ? CHALLENGER_B : ANYONE;
        mint(who, BOND);
        vm.startPrank(who);
        token.approve(address(bd), BOND);
        try bd.challengeInput(market, H9, meterOf(j), b, k) {
            vm.stopPrank();
            challenges.push(Challenge(j, k, who, address(0)));
            return true;
        } catch {
            token.transfer(SINK, BOND); // the bond was not taken: it leaves with the refusal
            vm.stopPrank();
            return false;
        }
    }

    /// Someone answers a challenge with an anchored reading of the sale's meter: mostly the
    /// challenged day's when there is one; else another day's.
    function actAnswer(uint256 seed) external onlyHandler returns (bool) {
        anchorOnce(seed);
        if (challenges.length == 0) return false;
        uint256 c = rnd(seed, 1) % challenges.length;
        Challenge memory ch = challenges[c];
        uint256 day = rnd(seed, 2) % 4;
        if (rnd(seed, 3) % 4 != 0) {
            for (uint256 i = 0; i < 4; ++i) {
                if (similar[i] == ch.daysBack) day = i;
            }
        }
        Settlement.ReadingIn memory r = historyIn(day);
        uint256 pick = rnd(seed, 4) % 3;
        address who = pick == 0 ? ORACLE1 : pick == 1 ? ANYONE : CHALLENGER_B;
        vm.prank(who);
        try bd.answerInput(market, H9, meterOf(ch.meterIndex), ch.daysBack, r) {
            challenges[c].answerer = who;
            return true;
        } catch {
            return false;
        }
    }

    /// Someone upholds a challenge, with the baseline in force now, whenever.
    function actUphold(uint256 seed) external onlyHandler returns (bool) {
        anchorOnce(seed);
        if (challenges.length == 0) return false;
        Challenge memory ch = challenges[rnd(seed, 1) % challenges.length];
        InForce memory f = inForce[ch.meterIndex];
        BaselineDisputes.BaselineIn memory b = revealed(ch.meterIndex);
        uint256 stakeBefore = oracle.stakeOf(market, ORACLE1).amount;
        vm.prank(rnd(seed, 2) % 2 == 0 ? UPHOLDER : CHALLENGER);
        try bd.upholdInput(market, H9, meterOf(ch.meterIndex), ch.daysBack, b) {
            countSlash(ch.meterIndex, stakeBefore, ch.challenger);
            BaselineDisputes.ChallengeStatus status = bd.challengeOf(market, H9, meterOf(ch.meterIndex), ch.daysBack).status;
            if (status == BaselineDisputes.ChallengeStatus.Upheld) {
                uint256 at = positionOf(f.bits, ch.daysBack);
                int64[10] memory nets;
                for (uint256 i = 0; i < 9; ++i) {
                    nets[i] = f.nets[i < at ? i : i + 1];
                }
                correct(ch.meterIndex, f.bits & ~uint64(1 << (ch.daysBack - 1)), nets);
            }
            return true;
        } catch {
            return false;
        }
    }

    /// Anyone settles the sale on the baseline in force, re-settles it on a correction since, or
    /// disputes its baseline: ARITHMETIC, INPUT (mostly with the day's anchored reading), SKIPPED.
    function actDispute(uint256 seed) external onlyHandler returns (bool) {
        anchorOnce(seed);
        InForce memory f = inForce[0];
        if (f.none) return false; // nothing a settlement can stand on
        Settlement.SettleIn memory now_ = stdIn(f.value, keccak256(abi.encode(f.bits, f.nets)), f.corrected);
        if (!settled) {
            try settlement.settle(now_) returns (Settlement.Record memory r) {
                (settled, settledInput, settledRecord, settledOn) = (true, abi.encode(now_), abi.encode(r), modelFix(0));
                return true;
            } catch {
                return false;
            }
        }
        Settlement.Record memory rec = abi.decode(settledRecord, (Settlement.Record));
        if (settledOn != modelFix(0)) {
            try bd.applyCorrection(now_, rec, 0, 0) returns (Settlement.Record memory r) {
                (settledInput, settledRecord, settledOn) = (abi.encode(now_), abi.encode(r), modelFix(0));
                return true;
            } catch {
                return false;
            }
        }
        return disputeSale(seed, f, abi.decode(settledInput, (Settlement.SettleIn)), rec);
    }

    function disputeSale(uint256 seed, InForce memory f, Settlement.SettleIn memory s, Settlement.Record memory rec)
        internal
        returns (bool)
    {
        BaselineDisputes.DisputeIn memory d;
        d.baseline = revealed(0);
        uint256 kind = rnd(seed, 1) % 3;
        d.kind = BaselineDisputes.Kind(kind);
        uint256 day = rnd(seed, 2) % 4;
        int64[10] memory nets = f.nets;
        uint64 bits = f.bits;
        if (kind == 1) {
            (uint256[64] memory ks, uint256 used) = BaselineReference.usedDays(f.bits);
            d.input = used == 0 ? 0 : rnd(seed, 3) % used;
            if (rnd(seed, 4) % 4 != 0) {
                for (uint256 i = 0; i < 4; ++i) {
                    if (similar[i] == ks[d.input]) day = i;
                }
            }
            nets[d.input] = history[day];
        } else if (kind == 2) {
            d.input = similar[day];
            uint256 pos = positionOf(f.bits, d.input);
            for (uint256 i = 9; i > pos; --i) {
                nets[i] = nets[i - 1];
            }
            if (pos < 10) nets[pos] = history[day];
            bits |= uint64(1 << (d.input - 1));
        }
        if (kind != 0) d.reading = historyIn(day);
        address who = rnd(seed, 5) % 2 == 0 ? ANYONE : CHALLENGER_B;
        uint256 stakeBefore = oracle.stakeOf(market, ORACLE1).amount;
        vm.prank(who);
        try bd.dispute(s, rec, d) returns (Settlement.Record memory r) {
            countSlash(0, stakeBefore, who);
            correct(0, bits, nets);
            InForce memory g = inForce[0];
            Settlement.SettleIn memory corrected = stdIn(g.value, keccak256(abi.encode(g.bits, g.nets)), true);
            (settledInput, settledRecord, settledOn) = (abi.encode(corrected), abi.encode(r), modelFix(0));
            return true;
        } catch {
            return false;
        }
    }

    /// Moves the clock by a minute, an hour, an hour short of the answer (and dispute) window, just
    /// over it, or three days: so that an uphold can fall inside the dispute window of a settlement
    /// made after the challenge, and outside it.
    function actWait(uint256 seed) external onlyHandler {
        uint256 pick = rnd(seed, 0) % 5;
        uint256 step = pick == 0 ? 1 minutes : pick == 1 ? 1 hours : pick == 2 ? DISPUTE - 1 hours
            : pick == 3 ? DISPUTE + 1 : 3 days;
        vm.warp(block.timestamp + step);
    }

    // ---------------------------------------------------------------------------- invariants

    /// (i) to (iv) after every call of one campaign.
    /// forge-config: default.invariant.runs = 10000
    /// forge-config: quick.invariant.runs = 500
    /// forge-config: default.invariant.depth = 10
    /// forge-config: default.invariant.include-storage = false
    /// forge-config: default.invariant.include-push-bytes = false
    function invariant_baselineChallenges() public view {
        checkSlashedOncePerMarketIspMeter();
        checkBondsHeldAreTheOpenChallenges();
        checkEachPaidByItsOutcomeOnly();
        checkCorrectionIsTheRules();
    }

    /// (i)
    function checkSlashedOncePerMarketIspMeter() internal view {
        uint256 corrected;
        for (uint256 j = 0; j < 2; ++j) {
            assertLe(slashes[j], 1, "slashed at most once per (market, ISP, meter)");
            if (oracle.baselineFix(market, H9, meterOf(j)) != 0) ++corrected;
        }
        assertEq(bd.faultsOf(ORACLE1), corrected, "one fault per meter corrected");
        assertEq(oracle.stakeOf(market, ORACLE1).amount + slashedTotal, STAKED, "the stake less what was slashed");
    }

    /// (ii)
    function checkBondsHeldAreTheOpenChallenges() internal view {
        uint256 open;
        for (uint256 c = 0; c < challenges.length; ++c) {
            if (statusOf(c) == BaselineDisputes.ChallengeStatus.Open) ++open;
        }
        assertEq(token.balanceOf(address(bd)), open * BOND, "the open challenges' bonds, nothing else");
    }

    /// (iii)
    function checkEachPaidByItsOutcomeOnly() internal view {
        address[5] memory parties = [CHALLENGER, CHALLENGER_B, ANYONE, ORACLE1, UPHOLDER];
        for (uint256 p = 0; p < parties.length; ++p) {
            uint256 due = slashPaid[parties[p]];
            for (uint256 c = 0; c < challenges.length; ++c) {
                BaselineDisputes.ChallengeStatus status = statusOf(c);
                bool back = status == BaselineDisputes.ChallengeStatus.Upheld
                    || status == BaselineDisputes.ChallengeStatus.Lapsed;
                if (back && challenges[c].challenger == parties[p]) due += BOND;
                if (status == BaselineDisputes.ChallengeStatus.Answered && challenges[c].answerer == parties[p]) {
                    due += BOND;
                }
                assertTrue(
                    (status == BaselineDisputes.ChallengeStatus.Answered) == (challenges[c].answerer != address(0)),
                    "answered exactly when an answer was taken"
                );
            }
            assertEq(token.balanceOf(parties[p]), due, "each party holds what its outcomes paid it, once");
        }
    }

    /// (iv)
    function checkCorrectionIsTheRules() internal view {
        for (uint256 j = 0; j < 2; ++j) {
            assertEq(oracle.baselineFix(market, H9, meterOf(j)), modelFix(j), "the rule's correction");
        }
    }

    function statusOf(uint256 c) internal view returns (BaselineDisputes.ChallengeStatus) {
        return bd.challengeOf(market, H9, meterOf(challenges[c].meterIndex), challenges[c].daysBack).status;
    }

    /// A run by hand, on an anchor that invents the fifth day and misstates an anchored one: the
    /// sale settled on the leaf, challenges taken and the honest days answered, then, past the answer
    /// window, the others upheld (the oracle slashed once for the sale's meter), and the invariants hold.
    function test_aRunChallengesAnswersUpholdsAndResettles() public {
        uint256 first;
        while (true) {
            (InForce memory m,) = draw(first);
            if (m.bits & uint64(1 << (similar[4] - 1)) != 0 && m.nets[0] != history[0] && m.bits & 1 << (similar[0] - 1) != 0) {
                break;
            }
            ++first;
        }
        handler.dispute(first); // anchored with it, and the sale settled on the leaf
        for (uint256 seed = 0; seed < 40; ++seed) {
            handler.challenge(seed);
            handler.answer(seed);
        }
        vm.warp(block.timestamp + DISPUTE + 1); // past the answer windows, within the sale's dispute window
        for (uint256 seed = 0; seed < 40; ++seed) {
            handler.uphold(seed);
            handler.dispute(seed);
        }
        invariant_baselineChallenges();
        assertTrue(settled, "the sale settled");
        for (uint256 a = 0; a < 4; ++a) {
            assertTrue(handler.accepted(a) > 0, "every action taken at least once");
        }
        assertTrue(slashes[0] == 1, "the sale's meter's baseline corrected, the oracle slashed once for it");
    }

    /// The invented day challenged, unanswered, upheld past the window (slashed once, to the
    /// challenger), and the sale, settled on the leaf before, re-settled on the correction.
    function test_anInventedDayUpheld_theSaleResettledOnTheCorrection() public {
        uint256 first;
        while (true) {
            (InForce memory m,) = draw(first);
            uint256 anchoredDays;
            for (uint256 i = 0; i < 4; ++i) {
                if (m.bits & uint64(1 << (similar[i] - 1)) != 0) ++anchoredDays;
            }
            if (m.bits & uint64(1 << (similar[4] - 1)) != 0 && anchoredDays >= 3) break;
            ++first;
        }
        handler.answer(first); // nothing to answer: anchored with it
        uint256 seed;
        while (!picksInvented(seed)) ++seed;
        handler.challenge(seed);
        assertEq(challenges.length, 1, "the invented day challenged");
        vm.warp(block.timestamp + 1 hours); // settled after the challenge: its dispute window outlasts the answer's
        handler.dispute(0);
        assertTrue(settled, "settled on the leaf");
        vm.warp(block.timestamp + DISPUTE - 1 hours + 1);
        handler.uphold(0);
        assertEq(slashes[0], 1, "slashed once");
        assertEq(slashPaid[challenges[0].challenger], REQUIRED, "to the challenger");
        assertTrue(settledOn != modelFix(0), "the sale stands on the leaf");
        handler.dispute(0);
        assertEq(settledOn, modelFix(0), "re-settled on the correction");
        assertEq(handler.accepted(3), 2, "settled, then re-settled");
        invariant_baselineChallenges();
    }

    /// Whether `actChallenge(seed)` challenges the sale's meter's invented day with its baseline in force.
    function picksInvented(uint256 seed) internal view returns (bool) {
        if (rnd(seed, 1) % 2 != 0 || rnd(seed, 3) % 4 == 0 || rnd(seed, 5) % 10 == 0) return false;
        (uint256[64] memory ks, uint256 used) = BaselineReference.usedDays(inForce[0].bits);
        return ks[rnd(seed, 4) % used] == similar[4];
    }
}
