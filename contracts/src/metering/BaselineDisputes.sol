// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {MarketRegistry} from "../market/MarketRegistry.sol";
import {OrderBook} from "../market/OrderBook.sol";
import {Settlement} from "../market/Settlement.sol";
import {AssetRegistry} from "../grid/AssetRegistry.sol";
import {AssetWords} from "../grid/AssetWords.sol";
import {OfferWord} from "../types/OfferWord.sol";
import {MeterOracle} from "./MeterOracle.sol";
import {DeliveryMeter} from "./DeliveryMeter.sol";
import {ReadingDisputes} from "./ReadingDisputes.sol";

/**
 * @title BaselineDisputes
 * @notice The evidence against a standard (ROLLING_AVERAGE) baseline, judged: a standard baseline
 * is a function of the meter's anchored readings, and its leaf (`MeterOracle.baselineLeaf`)
 * commits to the inputs it averaged, `(uint64 daysBack, int64[10] nets)`: bit `k - 1` of
 * `daysBack` set when the day `k` days before the ISP was used (1 <= k <= LOOKBACK), and `nets`
 * the meter's net consumption (Wh) on each used day in order of increasing `k` (most recent
 * first), zero after the last. The rule (`flexledger.rules.baselines`): the first DAYS days of the
 * ISP's kind (weekday, weekend) with an anchored reading by the time the baselines were anchored,
 * at least MIN_DAYS, their mean rounded toward zero.
 *
 * During a settlement's dispute window anyone proves the baseline in force for one of its ISPs
 * (the anchored leaf, or an earlier correction) wrong, with the settlement's inputs:
 * - ARITHMETIC: given its own inputs, a used day is of the wrong kind or out of the lookback,
 *   more than DAYS days are used, fewer than MIN_DAYS, or the mean is not the value;
 * - INPUT: an input's value is not the meter's reading of that day, anchored (proven against its
 *   root, `MeterOracle.verifyReading`) no later than the baselines;
 * - SKIPPED: a day of the right kind in the lookback, with such an anchored reading, was left
 *   out while fewer than DAYS days were used or an older day was.
 * The contract then computes the correction itself from the evidence (the inputs with the fix
 * applied, under the rule), so no disputer chooses a value: `MeterOracle.fixBaseline` puts it in
 * force for every settlement (or NO_BASELINE: too few days, no settlement stands on it), the
 * disputed offer is re-settled on it, and the oracle that anchored the leaf is marked and slashed
 * on the first correction of each (market, ISP, meter) only. The stake goes to the disputer unless
 * it is the offer's seller or the meter's owner (then to the buyer of the ISP's first award).
 * Other offers settled on the same baseline are re-settled with `applyCorrection`.
 *
 * (d) An input day with no anchored reading at all (the oracle invented it) cannot be proven: a
 * sorted-pair tree proves no absence. It is a challenge with a response window instead
 * (`challengeInput`, with `challengeBond`): the oracle (or anyone) answers with the day's anchored
 * reading carrying the input's value, and the bond pays the answerer; unanswered, anyone upholds
 * it (`upholdInput`): the correction is the rule on the inputs without that day, put in force as
 * a dispute's is, the oracle slashed to the challenger on the first correction of that (market,
 * ISP, meter) only, and the bond goes back.
 *
 * @dev A reading in a root anchored after the baselines, or one brought without a root, is no
 * evidence: the oracle could not have used it.
 */
contract BaselineDisputes {
    using SafeERC20 for IERC20;

    /// @notice What a dispute shows.
    enum Kind {
        ARITHMETIC,
        INPUT,
        SKIPPED
    }

    /// @notice Where a challenge of an input day stands.
    enum ChallengeStatus {
        None,
        Open,
        Answered,
        Upheld,
        Lapsed
    }

    /// @notice A challenge of one input day, by `challengeKey`.
    struct Challenge {
        address challenger;
        uint64 answerBy; // the last second an answer is taken
        ChallengeStatus status;
        int64 net; // the value the baseline averaged for that day: what an answer must show anchored
    }

    /// @notice The standard baseline in force for the disputed meter and ISP, its inputs revealed.
    struct BaselineIn {
        int64 baselineWh;
        uint64 daysBack;
        int64[10] nets;
        bytes32[] proof; // against the ISP's baselines root (empty for a correction in force)
    }

    /// @notice A dispute of the standard baseline one settlement used in one of its ISPs.
    struct DisputeIn {
        Kind kind;
        uint256 isp; // the ISP's index in the settlement's inputs
        uint64 member; // a portfolio offer: the member whose meter's baseline (ignored for an asset offer)
        BaselineIn baseline;
        uint256 input; // INPUT: which input (its position among the used days); SKIPPED: the day, as days before the ISP
        Settlement.ReadingIn reading; // INPUT, SKIPPED: the meter's anchored reading of that day
    }

    /// @notice At most this many similar days are averaged.
    uint256 public constant DAYS = 10;
    /// @notice At least this many are needed, else there is no baseline.
    uint256 public constant MIN_DAYS = 3;
    /// @notice Days before the ISP searched.
    uint256 public constant LOOKBACK = 60;
    uint256 internal constant DAY = 86_400;

    MarketRegistry public immutable markets;
    OrderBook public immutable book;
    AssetRegistry public immutable assets;
    MeterOracle public immutable oracle;
    Settlement public immutable settlement;
    /// @notice Settlements' net consumption as their reading disputes left it.
    ReadingDisputes public immutable readings;

    /// @notice The token challenge bonds are posted in (the settlement token).
    IERC20 public immutable bondToken;
    /// @notice What a challenge of an input day posts; it pays whoever answers it.
    uint256 public immutable challengeBond;

    /// @notice How many (market, ISP, meter) standard baselines an oracle anchored wrong.
    mapping(address oracleAccount => uint256) public faultsOf;
    mapping(bytes32 key => Challenge) private _challenges;

    /// @notice The offer does not name the standard baseline.
    error BaselineNotStandard(bytes32 offerDigest);
    /// @notice There is no ISP `isp` in the settlement's inputs.
    error BaselineNoSuchIsp(uint256 isp);
    /// @notice The asset is not a member whose reading the settlement presented.
    error BaselineNotMember(uint32 portfolioId, uint64 asset);
    /// @notice The revealed baseline is not the one in force that the settlement used.
    error BaselineNotInForce(address meter, uint64 ispStart);
    /// @notice The reading is not the meter's, anchored (by `anchoredBy` time) for the ISP starting at `ispStart`.
    error BaselineReadingNotAnchored(address meter, uint64 ispStart);
    /// @notice The evidence leaves the baseline as it is: nothing wrong shown.
    error BaselineNotWrong(address meter, uint64 ispStart);
    /// @notice No correction usable for a settlement is in force for that meter and ISP.
    error BaselineNotCorrected(address meter, uint64 ispStart);
    /// @notice That input day of that meter and ISP was challenged already (challenge `key`).
    error BaselineChallengeTaken(bytes32 key);
    /// @notice Challenges of that ISP's baselines were taken until `lastAt`.
    error BaselineChallengeTooLate(uint64 lastAt);
    /// @notice The baseline in force does not average the day `daysBack` days before the ISP.
    error BaselineDayNotUsed(address meter, uint64 ispStart, uint256 daysBack);
    /// @notice No open challenge `key`.
    error BaselineChallengeNotOpen(bytes32 key);
    /// @notice The answer window closed at `answerBy`.
    error BaselineAnswerClosed(uint64 answerBy);
    /// @notice The challenge can still be answered until `answerBy`.
    error BaselineAnswerOpen(uint64 answerBy);
    /// @notice The anchored reading's net consumption (`anchored`) is not the challenged input's (`challenged`).
    error BaselineAnswerNotTheInput(int64 challenged, int64 anchored);

    /// @notice `disputer` proved the standard baseline of `meter` for `ispStart` wrong (`kind`), as
    /// settled in offer `offerDigest`; `fix` is in force (`MeterOracle.baselineFix`): `baselineWh` on
    /// the inputs hashing to `inputsHash` (both zero for NO_BASELINE), what a settlement now presents.
    /// `oracleAccount` anchored the leaf.
    event BaselineDisputed(
        bytes32 indexed offerDigest,
        address indexed oracleAccount,
        address indexed meter,
        uint64 ispStart,
        Kind kind,
        bytes32 fix,
        int64 baselineWh,
        bytes32 inputsHash,
        address disputer
    );

    /// @notice `challenger` challenged the input of the day `daysBack` days before the ISP (`net` Wh) of
    /// `meter`'s standard baseline for `ispStart` in `market`: no anchored reading, it says; an answer is
    /// taken until `answerBy`.
    event BaselineInputChallenged(
        uint32 indexed market,
        uint64 indexed ispStart,
        address indexed meter,
        uint256 daysBack,
        int64 net,
        address challenger,
        uint64 answerBy
    );
    /// @notice `answerer` showed the day's anchored reading: the challenge failed, its bond paid `answerer`.
    event BaselineInputAnswered(
        uint32 indexed market, uint64 indexed ispStart, address indexed meter, uint256 daysBack, address answerer
    );
    /// @notice Unanswered, the challenge stood: `fix` is in force (`baselineWh` on the inputs hashing to
    /// `inputsHash`, both zero for NO_BASELINE), `oracleAccount` (which anchored the leaf) lost `slashed`
    /// to `challenger` (zero after an earlier correction of that meter and ISP), the bond went back.
    event BaselineInputUpheld(
        uint32 indexed market,
        uint64 indexed ispStart,
        address indexed meter,
        uint256 daysBack,
        address oracleAccount,
        bytes32 fix,
        int64 baselineWh,
        bytes32 inputsHash,
        uint256 slashed,
        address challenger
    );
    /// @notice A correction since the challenge no longer averages the challenged input: nothing to
    /// uphold, the bond went back to the challenger.
    event BaselineInputLapsed(uint32 indexed market, uint64 indexed ispStart, address indexed meter, uint256 daysBack);

    /// @dev What one dispute works on (memory, against the stack limit).
    struct Ctx {
        uint32 market;
        uint64 ispStart;
        uint64 asset;
        address meter;
        uint256 index; // the ISP's index in the offer's window
        bytes32 fix; // the correction in force before, zero for none
        bytes32 digest; // the offer's
        address anchoredBy; // the oracle that anchored the ISP's baselines
        uint64 anchoredAt; // and when: readings anchored later are no evidence
    }

    /**
     * @param marketRegistry The MarketRegistry (ISP lengths).
     * @param orderBook The OrderBook (offer digests, requests' buyers).
     * @param assetRegistry The AssetRegistry (meters and owners).
     * @param meterOracle The MeterOracle (anchors, corrections, slashing).
     * @param settlementContract The Settlement (re-settles).
     * @param readingDisputes The ReadingDisputes (settlements' net consumption after its corrections).
     * @param token The token challenge bonds are posted in.
     * @param bond What a challenge of an input day posts (token base units).
     */
    constructor(
        MarketRegistry marketRegistry,
        OrderBook orderBook,
        AssetRegistry assetRegistry,
        MeterOracle meterOracle,
        Settlement settlementContract,
        ReadingDisputes readingDisputes,
        IERC20 token,
        uint256 bond
    ) {
        markets = marketRegistry;
        book = orderBook;
        assets = assetRegistry;
        oracle = meterOracle;
        settlement = settlementContract;
        readings = readingDisputes;
        bondToken = token;
        challengeBond = bond;
    }

    /**
     * @notice During a settlement's dispute window, prove the standard baseline it used for one ISP
     * (of its asset's meter, or portfolio member `d.member`'s) wrong: the correction is computed
     * from the evidence and put in force, the offer re-settled on it, and, on the first correction
     * of that (market, ISP, meter), the anchoring oracle marked and slashed (see the notice).
     * @param s The settlement's inputs, with the standard baselines in force.
     * @param record The settlement's record, as logged.
     * @param d The ISP, the baseline revealed and the evidence.
     * @return corrected The new record.
     */
    function dispute(Settlement.SettleIn calldata s, Settlement.Record calldata record, DisputeIn calldata d)
        external
        returns (Settlement.Record memory corrected)
    {
        (int256[] memory net, bool[] memory voided) = readings.correctedNet(s); // proves s, the baselines in force too
        Ctx memory c = _context(s, d.isp, d.member);
        (int256 delta, bool none) = _judge(s, d, c);
        // NO_BASELINE: no delivery can be measured there, so none counts (the baseline stays as the net)
        corrected = _resettle(s, record, net, voided, d.isp, c.index, delta, none);
        if (c.fix == 0) {
            ++faultsOf[c.anchoredBy]; // one wrong anchored baseline, one fault, one slash
            oracle.slash(c.market, c.anchoredBy, _slashedTo(record, c.asset, c.ispStart));
        }
    }

    /// @dev Check that `d.baseline` is the baseline in force that `s` used, apply the evidence, and
    /// put the correction in force: how much the baseline moves, or `none` left.
    function _judge(Settlement.SettleIn calldata s, DisputeIn calldata d, Ctx memory c)
        internal
        returns (int256 delta, bool none)
    {
        (int64 used, bytes32 was) = _inForce(s, d, c);
        (bool some, int64 value, bytes32 keptInputs) = _correction(c, d);
        bytes32 fix = some ? keccak256(abi.encode(value, keptInputs)) : oracle.NO_BASELINE();
        if (fix == was) revert BaselineNotWrong(c.meter, c.ispStart);
        oracle.fixBaseline(c.market, c.ispStart, c.meter, fix);
        if (!some) keptInputs = 0;
        emit BaselineDisputed(c.digest, c.anchoredBy, c.meter, c.ispStart, d.kind, fix, value, keptInputs, msg.sender);
        return (some ? int256(value) - used : int256(0), !some);
    }

    /// @dev The baseline `s` used for the disputed meter, which `d.baseline` must reveal as the one
    /// in force (the anchored leaf, or the correction in force); its `baselineFix` encoding.
    function _inForce(Settlement.SettleIn calldata s, DisputeIn calldata d, Ctx memory c)
        internal
        view
        returns (int64 used, bytes32 was)
    {
        used = _used(s, c, d.isp);
        if (d.baseline.baselineWh != used) revert BaselineNotInForce(c.meter, c.ispStart);
        was = _revealed(c, d.baseline);
    }

    /// @dev Check that `b` is the standard baseline in force for `c`'s meter and ISP (the anchored
    /// leaf, or the correction in force); its `baselineFix` encoding.
    function _revealed(Ctx memory c, BaselineIn calldata b) internal view returns (bytes32 was) {
        bytes32 inputs = keccak256(abi.encode(b.daysBack, b.nets));
        was = keccak256(abi.encode(b.baselineWh, inputs));
        bool inForce = c.fix == 0
            ? oracle.isAnchoredBaseline(c.market, c.ispStart, c.meter, b.baselineWh, inputs, b.proof)
            : c.fix == was;
        if (!inForce) revert BaselineNotInForce(c.meter, c.ispStart);
    }

    /**
     * @notice Challenge an input of the standard baseline in force for `meter` and `ispStart` in
     * `market`: the day `daysBack` days before the ISP has no anchored reading, the oracle invented
     * it. Posts `challengeBond` (approved first). Taken from the baselines' anchor until the
     * settlement horizon minus a dispute window after it (judged while the oracle's stake is locked);
     * one challenge per (market, ISP, meter, day), whatever its outcome.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @param b The baseline in force, its inputs revealed (`proof` empty for a correction in force).
     * @param daysBack The challenged day, as days before the ISP (a used one).
     */
    function challengeInput(uint32 market, uint64 ispStart, address meter, BaselineIn calldata b, uint256 daysBack)
        external
    {
        bytes32 key = challengeKey(market, ispStart, meter, daysBack);
        if (_challenges[key].status != ChallengeStatus.None) revert BaselineChallengeTaken(key);
        Ctx memory c = _bare(market, ispStart, meter);
        _revealed(c, b); // nothing anchored: nothing in force
        uint64 window = markets.marketParams(market).disputeWindowSeconds;
        uint64 lastAt = c.anchoredAt + markets.settlementHorizon(market) - window;
        if (block.timestamp > lastAt) revert BaselineChallengeTooLate(lastAt);
        (bool used, uint256 at) = _position(b.daysBack, daysBack);
        if (!used) revert BaselineDayNotUsed(meter, ispStart, daysBack);
        uint64 answerBy = uint64(block.timestamp) + window;
        _challenges[key] = Challenge(msg.sender, answerBy, ChallengeStatus.Open, b.nets[at]);
        emit BaselineInputChallenged(market, ispStart, meter, daysBack, b.nets[at], msg.sender, answerBy);
        bondToken.safeTransferFrom(msg.sender, address(this), challengeBond);
    }

    /**
     * @notice Answer an open challenge with the meter's reading of the challenged day, anchored (its
     * proof against a root logged no later than the baselines) and carrying the input's value: the
     * challenge fails and its bond pays the caller.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @param daysBack The challenged day, as days before the ISP.
     * @param r The meter's anchored reading of that day, with its anchor and proof.
     */
    function answerInput(uint32 market, uint64 ispStart, address meter, uint256 daysBack, Settlement.ReadingIn calldata r)
        external
    {
        bytes32 key = challengeKey(market, ispStart, meter, daysBack);
        Challenge storage ch = _challenges[key];
        if (ch.status != ChallengeStatus.Open) revert BaselineChallengeNotOpen(key);
        if (block.timestamp > ch.answerBy) revert BaselineAnswerClosed(ch.answerBy);
        int64 anchored = _anchoredNet(_bare(market, ispStart, meter), r, daysBack);
        if (anchored != ch.net) revert BaselineAnswerNotTheInput(ch.net, anchored);
        ch.status = ChallengeStatus.Answered;
        emit BaselineInputAnswered(market, ispStart, meter, daysBack, msg.sender);
        bondToken.safeTransfer(msg.sender, challengeBond);
    }

    /**
     * @notice Uphold an unanswered challenge after its answer window (anyone may): the correction is
     * the rule applied to the inputs in force without the challenged day, put in force; on the first
     * correction of that (market, ISP, meter) the anchoring oracle is marked and slashed to the
     * challenger; the bond goes back. A correction since the challenge that no longer averages the
     * challenged input (or left no baseline) lapses it: the bond goes back, nothing else.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @param daysBack The challenged day, as days before the ISP.
     * @param b The baseline in force now, its inputs revealed (`proof` empty for a correction in force).
     * @return slashed What the oracle lost.
     */
    function upholdInput(uint32 market, uint64 ispStart, address meter, uint256 daysBack, BaselineIn calldata b)
        external
        returns (uint256 slashed)
    {
        bytes32 key = challengeKey(market, ispStart, meter, daysBack);
        Challenge storage ch = _challenges[key];
        if (ch.status != ChallengeStatus.Open) revert BaselineChallengeNotOpen(key);
        if (block.timestamp <= ch.answerBy) revert BaselineAnswerOpen(ch.answerBy);
        address challenger = ch.challenger;
        Ctx memory c = _bare(market, ispStart, meter);
        (bool used, uint256 at) = (false, 0);
        if (c.fix != oracle.NO_BASELINE()) {
            _revealed(c, b);
            (used, at) = _position(b.daysBack, daysBack);
        }
        if (!used || b.nets[at] != ch.net) {
            ch.status = ChallengeStatus.Lapsed;
            emit BaselineInputLapsed(market, ispStart, meter, daysBack);
            bondToken.safeTransfer(challenger, challengeBond);
            return 0;
        }
        ch.status = ChallengeStatus.Upheld;
        slashed = _correctWithout(c, b, daysBack, at, challenger);
        bondToken.safeTransfer(challenger, challengeBond);
    }

    /// @dev Put in force the rule on `b`'s inputs without the day `daysBack` (at `at` among them);
    /// slash on the first correction of the meter and ISP. What was slashed.
    function _correctWithout(Ctx memory c, BaselineIn calldata b, uint256 daysBack, uint256 at, address challenger)
        internal
        returns (uint256 slashed)
    {
        (bool some, int64 value, bytes32 keptInputs) =
            rule(c.ispStart, b.daysBack & ~uint64(1 << (daysBack - 1)), _without(b.nets, at));
        bytes32 fix = some ? keccak256(abi.encode(value, keptInputs)) : oracle.NO_BASELINE();
        oracle.fixBaseline(c.market, c.ispStart, c.meter, fix);
        if (c.fix == 0) {
            ++faultsOf[c.anchoredBy]; // as a dispute's: one slash per (market, ISP, meter)
            slashed = oracle.slash(c.market, c.anchoredBy, challenger);
        }
        if (!some) keptInputs = 0;
        emit BaselineInputUpheld(
            c.market, c.ispStart, c.meter, daysBack, c.anchoredBy, fix, value, keptInputs, slashed, challenger
        );
    }

    /**
     * @notice A challenge's state.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @param daysBack The challenged day, as days before the ISP.
     * @return The challenge (status None when there is none).
     */
    function challengeOf(uint32 market, uint64 ispStart, address meter, uint256 daysBack)
        external
        view
        returns (Challenge memory)
    {
        return _challenges[challengeKey(market, ispStart, meter, daysBack)];
    }

    /**
     * @notice The key of a challenge of one input day.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @param daysBack The day, as days before the ISP.
     * @return The key.
     */
    function challengeKey(uint32 market, uint64 ispStart, address meter, uint256 daysBack) public pure returns (bytes32) {
        return keccak256(abi.encode(market, ispStart, meter, daysBack));
    }

    /// @dev A challenge's meter and ISP: the correction in force and who anchored the baselines, when.
    function _bare(uint32 market, uint64 ispStart, address meter) internal view returns (Ctx memory c) {
        (c.market, c.ispStart, c.meter) = (market, ispStart, meter);
        c.fix = oracle.baselineFix(market, ispStart, meter);
        (c.anchoredBy, c.anchoredAt) = oracle.baselineAnchor(market, ispStart);
    }

    /// @dev Whether the day `k` days back is among the used days of `bits` with a value (one of the
    /// first DAYS), and its position among them.
    function _position(uint64 bits, uint256 k) internal pure returns (bool used, uint256 at) {
        if (k == 0 || k > 64 || (bits >> (k - 1)) & 1 == 0) return (false, 0);
        for (uint256 j = 1; j < k; ++j) {
            if ((bits >> (j - 1)) & 1 != 0) ++at;
        }
        used = at < DAYS;
    }

    /// @dev `nets` with the value at `at` taken out, the later ones moved up.
    function _without(int64[10] calldata nets, uint256 at) internal pure returns (int64[10] memory out) {
        for (uint256 i = 0; i < DAYS - 1; ++i) {
            out[i] = nets[i < at ? i : i + 1];
        }
    }

    /// @dev The rule applied to the inputs with the evidence: whether a baseline is left, its value,
    /// and the hash of the inputs it keeps.
    function _correction(Ctx memory c, DisputeIn calldata d)
        internal
        view
        returns (bool some, int64 value, bytes32 keptInputs)
    {
        (c.anchoredBy, c.anchoredAt) = oracle.baselineAnchor(c.market, c.ispStart);
        (uint64 bits, int64[10] memory nets) = _evidence(c, d);
        (some, value, keptInputs) = rule(c.ispStart, bits, nets);
    }

    /**
     * @notice During its dispute window, re-settle a settlement on the standard baselines in force
     * (anyone may), once a dispute of another offer corrected one it used: `s` carries the
     * corrected value of the meter (or member `member`) in ISP `isp`, and its readings as before.
     * @param s The settlement's inputs, with the standard baselines in force.
     * @param record The settlement's record, as logged.
     * @param isp The index in `s.isps` of an ISP whose baseline was corrected.
     * @param member A portfolio offer: the member whose meter's baseline was corrected.
     * @return corrected The new record.
     */
    function applyCorrection(Settlement.SettleIn calldata s, Settlement.Record calldata record, uint256 isp, uint64 member)
        external
        returns (Settlement.Record memory corrected)
    {
        Ctx memory c = _context(s, isp, member);
        if (c.fix == 0 || c.fix == oracle.NO_BASELINE()) revert BaselineNotCorrected(c.meter, c.ispStart);
        (int256[] memory net,) = readings.correctedNet(s);
        corrected = settlement.resettle(s, record, net);
    }

    /**
     * @notice The rule applied to inputs: of the days used (`daysBack`, `nets`), those of the ISP's
     * kind within the lookback, the first DAYS; whether there are at least MIN_DAYS, their mean
     * rounded toward zero, and the hash of the inputs kept (what a correct leaf carries).
     * @param ispStart The ISP's start.
     * @param daysBack Bit `k - 1` set: the day `k` days before was used.
     * @param nets The used days' net consumption, most recent first.
     * @return some Whether there is a baseline (at least MIN_DAYS days).
     * @return value The baseline (Wh).
     * @return keptInputs `keccak256(abi.encode(keptDaysBack, keptNets))`.
     */
    function rule(uint64 ispStart, uint64 daysBack, int64[10] memory nets)
        public
        pure
        returns (bool some, int64 value, bytes32 keptInputs)
    {
        (uint64 kept, int64[10] memory keptNets, uint256 count, int256 total) = _keep(ispStart, daysBack, nets);
        keptInputs = keccak256(abi.encode(kept, keptNets));
        some = count >= MIN_DAYS;
        if (some) value = int64(total / int256(count)); // Solidity's division rounds toward zero
    }

    /// @dev The used days the rule keeps, in order, their values, how many and their sum.
    function _keep(uint64 ispStart, uint64 daysBack, int64[10] memory nets)
        internal
        pure
        returns (uint64 kept, int64[10] memory keptNets, uint256 count, int256 total)
    {
        uint256 at; // position of the day among the used ones: its value's index
        for (uint256 k = 1; k <= 64 && at < DAYS && count < DAYS; ++k) {
            if ((daysBack >> (k - 1)) & 1 == 0) continue;
            int64 v = nets[at++];
            if (!_similar(ispStart, k)) continue;
            kept |= uint64(1 << (k - 1)); // k <= 64
            keptNets[count++] = v;
            total += v;
        }
    }

    /// @dev Whether the day `k` days before the ISP may be averaged for it: in the lookback, of its kind.
    function _similar(uint64 ispStart, uint256 k) internal pure returns (bool) {
        return k <= LOOKBACK && k * DAY <= ispStart && _weekend(ispStart - uint64(k * DAY)) == _weekend(ispStart);
    }

    /// @dev The inputs with the evidence applied: as revealed (ARITHMETIC), one value replaced by
    /// the anchored reading (INPUT), or a skipped day's anchored reading inserted (SKIPPED).
    function _evidence(Ctx memory c, DisputeIn calldata d)
        internal
        view
        returns (uint64 bits, int64[10] memory nets)
    {
        bits = d.baseline.daysBack;
        nets = d.baseline.nets;
        if (d.kind == Kind.ARITHMETIC) return (bits, nets);
        if (d.kind == Kind.INPUT) {
            uint256 k = _nthDay(bits, d.input);
            if (k == 0 || d.input >= DAYS) revert BaselineNotWrong(c.meter, c.ispStart);
            nets[d.input] = _anchoredNet(c, d.reading, k);
            return (bits, nets);
        }
        // SKIPPED: the day `d.input` days before the ISP, which must not be used yet
        uint256 back = d.input;
        if (back == 0 || back > 64 || (bits >> (back - 1)) & 1 != 0) revert BaselineNotWrong(c.meter, c.ispStart);
        int64 v = _anchoredNet(c, d.reading, back);
        // insert at its position among the used days (the rule keeps them in order)
        uint256 pos;
        for (uint256 k = 1; k < back; ++k) {
            if ((bits >> (k - 1)) & 1 != 0) ++pos;
        }
        if (pos >= DAYS) revert BaselineNotWrong(c.meter, c.ispStart); // older than DAYS used days: rightly left out
        for (uint256 i = DAYS - 1; i > pos; --i) {
            nets[i] = nets[i - 1];
        }
        nets[pos] = v;
        bits |= uint64(1 << (back - 1)); // back <= 64
    }

    /// @dev The `n`-th used day (from 0, most recent first) of `bits`, as days back; 0 if none.
    function _nthDay(uint64 bits, uint256 n) internal pure returns (uint256) {
        for (uint256 k = 1; k <= 64; ++k) {
            if ((bits >> (k - 1)) & 1 == 0) continue;
            if (n == 0) return k;
            --n;
        }
        return 0;
    }

    /// @dev The net consumption of the meter's reading of the day `k` days before the ISP, anchored
    /// (proven against a root anchored no later than the baselines).
    function _anchoredNet(Ctx memory c, Settlement.ReadingIn calldata r, uint256 k) internal view returns (int64) {
        uint64 day = c.ispStart - uint64(k * DAY);
        bytes32 leaf = oracle.readingLeaf(c.meter, day, r.sequence, r.importWh, r.exportWh, keccak256(r.signature));
        bool anchored = r.anchor.root != 0 && r.anchor.anchoredAt <= c.anchoredAt && oracle.isAnchored(c.market, day, r.anchor)
            && MerkleProof.verifyCalldata(r.proof, r.anchor.root, leaf);
        if (!anchored) revert BaselineReadingNotAnchored(c.meter, day);
        return SafeCast.toInt64(int256(uint256(r.importWh)) - int256(uint256(r.exportWh)));
    }

    /// @dev The disputed meter, ISP and the correction in force.
    function _context(Settlement.SettleIn calldata s, uint256 isp, uint64 member) internal view returns (Ctx memory c) {
        bytes32 digest = book.offerDigest(s.offer);
        c.digest = digest;
        if (s.offer.baselineMethod != uint8(OrderBook.Baseline.ROLLING_AVERAGE)) revert BaselineNotStandard(digest);
        if (isp >= s.isps.length) revert BaselineNoSuchIsp(isp);
        c.market = s.offer.market;
        c.ispStart = s.isps[isp].awards[0].ispStart;
        c.index = (c.ispStart - s.offer.start) / markets.marketParams(c.market).ispSeconds;
        c.asset = s.offer.portfolio == 0 ? s.offer.asset : member;
        if (s.offer.portfolio != 0 && (member == 0 || isp >= s.members.length)) revert BaselineNotMember(s.offer.portfolio, member);
        c.meter = assets.meterOf(c.asset);
        c.fix = oracle.baselineFix(c.market, c.ispStart, c.meter);
    }

    /// @dev The standard baseline `s` used for the meter in ISP `isp` (already proven in force by `measure`).
    function _used(Settlement.SettleIn calldata s, Ctx memory c, uint256 isp) internal pure returns (int64) {
        if (s.offer.portfolio == 0) return s.baselineWh[c.index];
        DeliveryMeter.MemberReading[] memory rs = abi.decode(s.members[isp], (DeliveryMeter.MemberReading[]));
        for (uint256 i = 0; i < rs.length; ++i) {
            if (rs[i].asset == c.asset) return rs[i].baselineWh;
        }
        revert BaselineNotMember(s.offer.portfolio, c.asset);
    }

    /// @dev Re-settle `s` with the ISP's baseline moved by `delta` (a portfolio's is its members'
    /// sum); a void ISP (or one left with no baseline) keeps its net at the baseline: nothing delivered.
    function _resettle(
        Settlement.SettleIn calldata s,
        Settlement.Record calldata record,
        int256[] memory net,
        bool[] memory voided,
        uint256 isp,
        uint256 index,
        int256 delta,
        bool none
    ) internal returns (Settlement.Record memory) {
        Settlement.SettleIn memory m = s;
        m.baselineWh[index] = SafeCast.toInt64(int256(m.baselineWh[index]) + delta);
        if (voided[isp] || none) net[isp] = m.baselineWh[index];
        return settlement.resettle(m, record, net);
    }

    /// @dev Whom a slash pays: the disputer, unless it is the settled offer's seller or the meter's
    /// owner (who must not profit from their own offer's evidence): then the buyer of the disputed
    /// ISP's first award.
    function _slashedTo(Settlement.Record calldata record, uint64 asset, uint64 ispStart) internal view returns (address) {
        address owner = address(uint160(OfferWord.unwrap(AssetWords.offerWord(assets, asset)))); // the owner: the word's lowest 160 bits
        if (msg.sender != record.seller && msg.sender != owner) return msg.sender;
        uint256 i;
        while (record.lines[i].ispStart != ispStart) ++i;
        return book.request(record.lines[i].requestId).buyer;
    }

    function _weekend(uint64 t) internal pure returns (bool) {
        return ((t / DAY) + 3) % 7 >= 5; // 1970-01-01 was a Thursday
    }
}
