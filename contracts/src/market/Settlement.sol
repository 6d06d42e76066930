// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {MarketRegistry} from "./MarketRegistry.sol";
import {OrderBook} from "./OrderBook.sol";
import {ClearingCommitment} from "./ClearingCommitment.sol";
import {MeterOracle} from "../metering/MeterOracle.sol";
import {DeliveryMeter} from "../metering/DeliveryMeter.sol";
import {AssetRegistry} from "../grid/AssetRegistry.sol";
import {AssetWords} from "../grid/AssetWords.sol";
import {OfferWord} from "../types/OfferWord.sol";

/**
 * @title Settlement
 * @notice Settles a final clearing result against anchored meter data and baselines (DESIGN.md
 * rules 6-9): anyone may settle an awarded offer by presenting its awards (proven against the
 * result), the meter's readings (proven against the roots MeterOracle anchored) and the baseline:
 * revealed and checked against the offer's commitment (COMMITTED), or the standard values the
 * oracle computed from history and anchored, each proven against its root (ROLLING_AVERAGE). The arithmetic is
 * `flexledger.rules.settlement`'s, in the same order and with the same rounding; money moves only
 * once a settlement is final, after the market's dispute window: the seller's claim is credited
 * (and pulled with `withdraw`), a penalty the payment does not cover is drawn from the seller's
 * bond for the buyer, and what the escrow did not pay goes back to the buyer (`refund`).
 *
 * @dev An offer is settled whole: all its awards in all the ISPs it was awarded in, in one call.
 * Each award's leaf carries the offer's power in its ISP over all its awards (the level), so the
 * contract checks that the awards presented for an ISP add up to it (none left out) and shares the
 * delivered energy out among them in proportion to their power. One slot per settled offer keeps
 * the hash of its record (the lines of money it decided), which the record's event carries in
 * full; finalising, disputing and withdrawing present the record again.
 *
 * Disputes are judged by ReadingDisputes (the evidence): during the dispute window it re-settles
 * an offer here (`resettle`) with the net consumption the evidence shows, from readings this
 * contract proved (`measure`).
 *
 * A portfolio offer is measured by DeliveryMeter: its members' readings (and standard baselines)
 * at the day's gate closure, summed; its aggregator is the seller, and a dispute names the member
 * whose reading the meter signed otherwise.
 */
contract Settlement {
    using SafeERC20 for IERC20;

    /// @notice The meter's reading for one ISP, its signature, and its proof against the anchor
    /// (`MeterOracle.verifyReading`: a zero anchor and no proof for a reading in no root).
    struct ReadingIn {
        MeterOracle.Anchor anchor;
        uint64 sequence;
        uint64 importWh;
        uint64 exportWh;
        bytes signature;
        bytes32[] proof;
    }

    /// @notice One ISP of the offer: the meter's reading and every award of the offer there.
    struct IspIn {
        ReadingIn reading;
        ClearingCommitment.AwardProof[] awards;
    }

    /// @notice What settles one offer.
    struct SettleIn {
        uint64 resultId;
        OrderBook.Offer offer;
        int64[] baselineWh; // the baseline, one value per ISP of the offer's window
        bytes32 salt; // COMMITTED: the commitment's salt
        IspIn[] isps;
        bytes32[][] baselineProofs; // ROLLING_AVERAGE: per ISP of `isps`, the proof of the oracle's anchored value
        bytes[] members; // a portfolio offer: per ISP of `isps`, its members' readings (DeliveryMeter.MemberReading[], ABI-encoded)
    }

    /// @notice One award in one ISP: what it was paid and what its shortfall cost.
    struct Line {
        uint64 requestId;
        uint64 ispStart;
        uint256 payment; // from the escrow
        uint256 claim; // the seller's: payment minus the penalty it covers
        uint256 uncovered; // the penalty the payment did not cover: drawn from the bond at finality
    }

    /// @dev What every line of one settlement shares (memory, against the stack limit).
    struct Ctx {
        bytes32 digest;
        uint64 resultId;
        uint256 offerPrice;
        uint256 ispSeconds;
        uint256 toleranceBps;
        uint256 penaltyFactorBps;
        bool payAsCleared;
        uint256 deliveredWs; // the offer's delivery in the ISP at hand
        uint64 ispStart; // the ISP at hand
        bool unrevealed; // settled by default: nothing delivered, nothing paid
    }

    /// @notice A settled offer.
    struct Record {
        bytes32 offerDigest;
        uint64 resultId;
        address seller;
        uint64 settledAt;
        Line[] lines;
    }

    uint256 internal constant WS_PER_MWH = 3_600_000_000;
    uint256 internal constant WS_PER_WH = 3600;
    uint256 internal constant BPS = 10_000;
    uint256 internal constant DAY = 86_400;
    bytes32 internal constant FINAL = bytes32(uint256(1));

    MarketRegistry public immutable markets;
    OrderBook public immutable book;
    ClearingCommitment public immutable clearing;
    MeterOracle public immutable oracle;
    AssetRegistry public immutable assets;
    /// @notice Measures portfolio offers from their members' readings.
    DeliveryMeter public immutable meters;
    /// @notice The settlement token (the order book's).
    IERC20 public immutable token;

    /// @notice Token base units each party may withdraw.
    mapping(address account => uint256) public claimable;
    /// @notice Penalties a seller's bond could not cover, not yet repaid: it sells nothing meanwhile.
    mapping(address seller => uint256) public debtOf;
    /// @notice What a seller's debt owes each buyer, repaid or not (`collectDebt`).
    mapping(address seller => mapping(address buyer => uint256)) public owedTo;
    /// @notice What a seller repaid (its later claims first), held for its creditors to collect.
    mapping(address seller => uint256) public repaidOf;
    /// @notice Settled offers' record hashes (FINAL once final), by `keccak256(resultId, offerDigest)`.
    mapping(bytes32 key => bytes32) public records;
    /// @notice Lines of a request not yet final: its refund waits for them.
    mapping(uint64 requestId => uint256) public pendingLines;
    mapping(uint64 requestId => bool) public refunded;
    /// @notice Penalties of a seller's settlements not yet final that their payments do not cover:
    /// that much of its bond is locked until they are.
    mapping(address seller => uint256) public exposureOf;

    /// @notice The result is not the final result of its day.
    /// @custom:hint finalise the day first (`flexledger finalise --day DAY`) after its challenge window
    error SettlementResultNotFinal(uint64 resultId);
    /// @notice An offer must name exactly one of an asset and a portfolio.
    error SettlementUnsupportedOffer(bytes32 offerDigest);
    /// @notice The revealed baseline does not match the offer's commitment.
    error SettlementBaselineMismatch(bytes32 offerDigest);
    /// @notice The baseline given for a ROLLING_AVERAGE offer is not the one the oracle anchored for the meter and ISP.
    error SettlementBaselineNotAnchored(bytes32 offerDigest, uint64 ispStart);
    /// @notice The offer was already settled in this result.
    /// @custom:hint nothing to do: the offer is settled (`flexledger settle --day DAY --json` lists the records)
    error SettlementAlreadySettled(bytes32 offerDigest);
    /// @notice An award is not in the result, or of another offer.
    error SettlementAwardNotInResult(bytes32 offerDigest, uint64 requestId, uint64 ispStart);
    /// @notice An ISP's awards must come in increasing order of request, each once.
    error SettlementAwardsOutOfOrder(bytes32 offerDigest, uint64 ispStart, uint64 requestId);
    /// @notice The awards presented for an ISP do not add up to the offer's power there (one is missing).
    error SettlementAwardsIncomplete(bytes32 offerDigest, uint64 ispStart, uint256 presentedW, uint32 levelW);
    /// @notice A block offer's ISPs must all be presented, in order.
    error SettlementIspsIncomplete(bytes32 offerDigest);
    /// @notice The reading is not the asset meter's anchored reading for that ISP.
    error SettlementReadingNotAnchored(bytes32 offerDigest, uint64 ispStart);
    /// @notice The reading's net consumption does not fit an int64.
    error SettlementReadingOutOfRange(uint64 importWh, uint64 exportWh);
    /// @notice The record does not match the settled offer's.
    error SettlementUnknownRecord(bytes32 offerDigest);
    /// @notice The dispute window of this settlement ends at `endsAt` (finalise after it, dispute before).
    /// @custom:hint dispute before the window ends, or finalise after it
    error SettlementDisputeWindow(uint64 endsAt);
    /// @notice The settlement window is still open until `closesAt`: the seller may settle with its baseline.
    /// @custom:hint settle by default only after the settlement window closes; the seller may settle with its baseline until then
    error SettlementWindowOpen(uint64 closesAt);
    /// @notice The settlement window of the market day is over (settled until `closesAt`).
    /// @custom:hint the day can only be settled by default now
    error SettlementWindowClosed(uint64 closesAt);
    /// @notice Only ReadingDisputes (`MeterOracle.disputes`) or BaselineDisputes (`MeterOracle.baselineDisputes`) re-settles.
    error SettlementNotDisputes(address account);
    /// @notice The request cannot be refunded yet (`reason`).
    error SettlementRefundNotDue(uint64 requestId, string reason);
    /// @notice Nothing to withdraw.
    /// @custom:hint nothing is owed to this account yet: claims appear once settlements are final
    error SettlementNothingToWithdraw(address account);

    /// @notice Offer `offerDigest` of result `resultId` was settled (or re-settled after a dispute); `record` in full.
    event OfferSettled(bytes32 indexed offerDigest, uint64 indexed resultId, address indexed seller, Record record);
    /// @notice The settlement of `offerDigest` is final: `claimed` credited to the seller, `fromBond` drawn for buyers.
    event SettlementFinalised(bytes32 indexed offerDigest, uint64 indexed resultId, uint256 claimed, uint256 fromBond, uint256 debt);
    /// @notice `amount` of request `requestId`'s escrow went back to its buyer.
    event Refunded(uint64 indexed requestId, address indexed buyer, uint256 amount);
    /// @notice `account` withdrew `amount`.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice `amount` of `seller`'s debt was repaid (from its claims, or by `payDebt`); `left` is still owed.
    event DebtRepaid(address indexed seller, uint256 amount, uint256 left);
    /// @notice `buyer` collected `amount` that `seller` repaid of what it owed it.
    event DebtCollected(address indexed seller, address indexed buyer, uint256 amount);

    /**
     * @param marketRegistry The MarketRegistry (ISP length, tolerance, penalty factor, windows).
     * @param orderBook The OrderBook (requests, escrows, bonds).
     * @param clearingCommitment The ClearingCommitment (final results, awards, cleared prices).
     * @param meterOracle The MeterOracle (anchored readings).
     * @param assetRegistry The AssetRegistry (assets' meters and owners, portfolios' aggregators).
     * @param deliveryMeter The DeliveryMeter (portfolio offers' deliveries).
     */
    constructor(
        MarketRegistry marketRegistry,
        OrderBook orderBook,
        ClearingCommitment clearingCommitment,
        MeterOracle meterOracle,
        AssetRegistry assetRegistry,
        DeliveryMeter deliveryMeter
    ) {
        markets = marketRegistry;
        book = orderBook;
        clearing = clearingCommitment;
        oracle = meterOracle;
        assets = assetRegistry;
        meters = deliveryMeter;
        token = orderBook.token();
    }

    // ------------------------------------------------------------------------------ settling

    /// @dev What the offers settled in one call share: their result's market and window (read
    /// once), and the requests their awards name (each read once, up to `REQUEST_CACHE`).
    struct Batch {
        uint64 resultId; // the result read last (0: none yet)
        uint32 market;
        uint64 closesAt; // the settlement window's end
        MarketRegistry.MarketParams m;
        uint64[] requestIds;
        OrderBook.Request[] requests;
        uint256 cached;
    }

    /**
     * @notice Settle an awarded offer (anyone may), after its day's result is final and within
     * the settlement window (the day's end plus the dispute window).
     * @param s The offer, its baseline revealed, and per ISP its reading and awards.
     * @return record The record of the settlement.
     */
    function settle(SettleIn calldata s) external returns (Record memory record) {
        record = _settle(s, _newBatch(), false);
    }

    /**
     * @notice Settle several awarded offers in one call (anyone may), each as `settle` would:
     * the result's day and the requests are read once for all of them, which is how a market
     * day is settled at the lowest gas per award. Any offer that cannot be settled reverts the call.
     * @param batch The offers, each with its baseline revealed and per ISP its reading and awards.
     * @return settled The records, in the order of `batch`.
     */
    function settleMany(SettleIn[] calldata batch) external returns (Record[] memory settled) {
        Batch memory b = _newBatch();
        settled = new Record[](batch.length);
        for (uint256 i = 0; i < batch.length; ++i) {
            settled[i] = _settle(batch[i], b, false);
        }
    }

    /// @dev Settle one offer in its window: from its readings, or `unrevealed` by default (in the
    /// dispute window after the settlement window, nothing read).
    function _settle(SettleIn calldata s, Batch memory b, bool unrevealed) internal returns (Record memory record) {
        bytes32 digest = book.offerDigest(s.offer);
        _load(b, s.resultId);
        uint64 closesAt = b.closesAt;
        if (unrevealed) {
            if (block.timestamp <= closesAt) revert SettlementWindowOpen(closesAt);
            closesAt += b.m.disputeWindowSeconds;
        }
        if (block.timestamp > closesAt) revert SettlementWindowClosed(closesAt);
        bytes32 key = keccak256(abi.encode(s.resultId, digest));
        if (records[key] != 0) revert SettlementAlreadySettled(digest);
        int256[] memory net;
        if (unrevealed) _checkShape(s, digest);
        else net = _readings(s, digest, b.m.ispSeconds);
        record = _compute(s, digest, b, net);
        _keep(key, record);
    }

    /**
     * @notice Settle by default an awarded offer nobody settled in the settlement window (anyone
     * may, until one dispute window after it closes): no baseline was revealed, so nothing counts
     * as delivered and nothing is paid; an ACTIVATION award's shortfall beyond the tolerance is
     * penalised as usual, from the seller's bond. Without it a seller short of its award could
     * escape the penalty by never revealing its baseline (or by settling nothing when its
     * meter's readings or standard baselines were never anchored).
     * @param s The offer and, per ISP, its awards (readings and baseline are not read).
     * @return record The record of the settlement.
     */
    function settleUnrevealed(SettleIn calldata s) external returns (Record memory record) {
        record = _settle(s, _newBatch(), true);
    }

    /// @dev A new settlement: its record's hash, its lines pending, the seller's bond locked for it.
    function _keep(bytes32 key, Record memory record) internal {
        records[key] = keccak256(abi.encode(record));
        for (uint256 i = 0; i < record.lines.length; ++i) {
            ++pendingLines[record.lines[i].requestId];
        }
        _lockExposure(record.seller, _uncovered(record.lines), 0);
        emit OfferSettled(record.offerDigest, record.resultId, record.seller, record);
    }

    /**
     * @notice Each ISP's net consumption (import - export, Wh) of an offer's meter, or portfolio,
     * from the readings in `s`, each proven (`MeterOracle.verifyReading`); with ROLLING_AVERAGE,
     * its baselines checked against the anchored ones. What a dispute starts from.
     * @param s The settlement's inputs.
     * @return net Per ISP of `s.isps`, the net consumption.
     */
    function measure(SettleIn calldata s) external view returns (int256[] memory net) {
        return _readings(s, book.offerDigest(s.offer), markets.marketParams(s.offer.market).ispSeconds);
    }

    /**
     * @notice Settle an offer again in its dispute window with the net consumption a dispute
     * showed (or with the standard baselines a dispute corrected); only ReadingDisputes (or
     * BaselineDisputes) may, and not a settlement made by default. The window does
     * not restart.
     * @param s The settlement's inputs, as first presented.
     * @param record The settlement's record, as logged.
     * @param measured Per ISP of `s.isps`, the net consumption to settle with.
     * @return corrected The new record.
     */
    function resettle(SettleIn calldata s, Record calldata record, int256[] calldata measured)
        external
        returns (Record memory corrected)
    {
        if (msg.sender != oracle.disputes() && msg.sender != oracle.baselineDisputes()) {
            revert SettlementNotDisputes(msg.sender);
        }
        bytes32 digest = book.offerDigest(s.offer);
        bytes32 key = _checkRecord(s.resultId, digest, record);
        Batch memory b = _newBatch();
        _load(b, s.resultId);
        // settled by default (after the window): no reading counted, so none to dispute, and
        // re-settling from readings would pay what the seller forfeited (an AVAILABILITY award)
        if (record.settledAt > b.closesAt) revert SettlementWindowClosed(b.closesAt);
        uint64 endsAt = record.settledAt + b.m.disputeWindowSeconds;
        if (block.timestamp > endsAt) revert SettlementDisputeWindow(endsAt);
        corrected = _compute(s, digest, b, measured);
        corrected.settledAt = record.settledAt;
        _rebalancePending(record.lines, corrected.lines);
        _lockExposure(record.seller, _uncovered(corrected.lines), _uncovered(record.lines));
        records[key] = keccak256(abi.encode(corrected));
        emit OfferSettled(digest, s.resultId, corrected.seller, corrected);
    }

    /**
     * @notice Make a settlement final after its dispute window (anyone may): the seller's claim is
     * credited, and penalties its payment did not cover are drawn from its bond for the buyers.
     * @param record The settlement's record, as logged.
     */
    function finalise(Record calldata record) external {
        _finalise(record);
    }

    /**
     * @notice Make several settlements final (anyone may), each as `finalise` would.
     * @param settled The settlements' records, as logged.
     */
    function finaliseMany(Record[] calldata settled) external {
        for (uint256 i = 0; i < settled.length; ++i) {
            _finalise(settled[i]);
        }
    }

    function _finalise(Record calldata record) internal {
        bytes32 key = _checkRecord(record.resultId, record.offerDigest, record);
        MarketRegistry.MarketParams memory m = markets.marketParams(_market(record.resultId));
        uint64 endsAt = record.settledAt + m.disputeWindowSeconds;
        if (block.timestamp <= endsAt) revert SettlementDisputeWindow(endsAt);
        records[key] = FINAL;
        _lockExposure(record.seller, 0, _uncovered(record.lines)); // released: drawn below
        uint256 claimed;
        uint256 drawn;
        uint256 debt;
        for (uint256 i = 0; i < record.lines.length; ++i) {
            Line calldata line = record.lines[i];
            --pendingLines[line.requestId];
            if (line.claim != 0) book.transferEscrow(line.requestId, address(this), line.claim);
            claimed += line.claim;
            if (line.uncovered != 0) {
                address buyer = book.request(line.requestId).buyer;
                uint256 fromBond = book.transferBond(record.seller, address(this), line.uncovered);
                claimable[buyer] += fromBond;
                drawn += fromBond;
                uint256 unpaid = line.uncovered - fromBond;
                if (unpaid != 0) {
                    owedTo[record.seller][buyer] += unpaid;
                    debt += unpaid;
                }
            }
        }
        emit SettlementFinalised(record.offerDigest, record.resultId, claimed, drawn, debt);
        uint256 owed = debtOf[record.seller] + debt;
        if (owed != 0) {
            // an indebted seller's claims pay its debt first
            uint256 repaid = Math.min(claimed, owed);
            claimed -= repaid;
            debtOf[record.seller] = owed - repaid;
            if (repaid != 0) _repaid(record.seller, repaid, owed - repaid);
        }
        claimable[record.seller] += claimed;
    }

    /**
     * @notice Repay (part of) `seller`'s debt (anyone may, the caller approves the tokens): held
     * for its creditors, and once the debt is paid the seller may sell again.
     * @param seller The indebted seller.
     * @param amount Token base units (at most the debt is taken).
     */
    function payDebt(address seller, uint256 amount) external {
        uint256 owed = debtOf[seller];
        amount = Math.min(amount, owed);
        if (amount == 0) revert SettlementNothingToWithdraw(seller);
        debtOf[seller] = owed - amount;
        _repaid(seller, amount, owed - amount);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice Collect what `seller` repaid of the penalties it owes the caller (a buyer), as far
     * as its repayments reach (creditors collect in the order they come).
     * @param seller The indebted seller.
     */
    function collectDebt(address seller) external {
        uint256 amount = Math.min(owedTo[seller][msg.sender], repaidOf[seller]);
        if (amount == 0) revert SettlementNothingToWithdraw(msg.sender);
        owedTo[seller][msg.sender] -= amount;
        repaidOf[seller] -= amount;
        emit DebtCollected(seller, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    function _repaid(address seller, uint256 amount, uint256 left) internal {
        repaidOf[seller] += amount;
        emit DebtRepaid(seller, amount, left);
        if (left == 0) book.clearDebt(seller);
    }

    /**
     * @notice Return to the buyer what a request's escrow did not pay (the buyer or anyone), once
     * its market day's settlement window has closed and every settlement of it is final.
     * @param requestId The request.
     */
    function refund(uint64 requestId) external {
        OrderBook.Request memory q = book.request(requestId);
        if (q.status != OrderBook.RequestStatus.OPEN) revert SettlementRefundNotDue(requestId, "not open");
        if (refunded[requestId]) revert SettlementRefundNotDue(requestId, "already refunded");
        MarketRegistry.MarketParams memory m = markets.marketParams(q.market);
        if (block.timestamp <= _closesAt(q.market, markets.dayStart(q.market, q.start), m.disputeWindowSeconds)) {
            revert SettlementRefundNotDue(requestId, "settlement window open");
        }
        if (pendingLines[requestId] != 0) revert SettlementRefundNotDue(requestId, "settlements not final");
        refunded[requestId] = true;
        uint256 amount = book.escrowLeft(requestId);
        emit Refunded(requestId, q.buyer, amount);
        if (amount != 0) book.transferEscrow(requestId, q.buyer, amount);
    }

    /**
     * @notice Withdraw what the caller may (claims, penalties received).
     */
    function withdraw() external {
        uint256 amount = claimable[msg.sender];
        if (amount == 0) revert SettlementNothingToWithdraw(msg.sender);
        claimable[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------------------- arithmetic

    /**
     * @notice One award in one ISP, as `flexledger.rules.settlement` computes it (W*s; prices per MWh).
     * @param powerW The award's power.
     * @param levelW The offer's power in that ISP over all its awards.
     * @param ispSeconds The ISP's length.
     * @param deliveredWs The offer's delivery in that ISP (before sharing out).
     * @param price The award's price.
     * @param availability AVAILABILITY (paid for capacity held) rather than ACTIVATION.
     * @param toleranceBps The market's tolerance.
     * @param penaltyFactorBps The market's penalty factor.
     * @return payment The payment out of the escrow.
     * @return penalty The penalty for the shortfall beyond the tolerance.
     */
    function awardMoney(
        uint256 powerW,
        uint256 levelW,
        uint256 ispSeconds,
        uint256 deliveredWs,
        uint256 price,
        bool availability,
        uint256 toleranceBps,
        uint256 penaltyFactorBps
    ) public pure returns (uint256 payment, uint256 penalty) {
        uint256 awarded = powerW * ispSeconds;
        if (availability) return (awarded * price / WS_PER_MWH, 0);
        uint256 delivered = levelW == 0 ? 0 : deliveredWs * powerW / levelW; // this award's share
        uint256 paid = Math.min(delivered, awarded);
        payment = paid * price / WS_PER_MWH;
        uint256 shortfall = awarded - paid;
        uint256 tolerance = awarded * toleranceBps / BPS;
        uint256 penalised = shortfall > tolerance ? shortfall - tolerance : 0;
        penalty = penalised * price * penaltyFactorBps / (WS_PER_MWH * BPS);
    }

    // ------------------------------------------------------------------------------ internals

    uint256 internal constant REQUEST_CACHE = 16;

    function _newBatch() internal pure returns (Batch memory b) {
        b.requestIds = new uint64[](REQUEST_CACHE);
        b.requests = new OrderBook.Request[](REQUEST_CACHE);
    }

    /// @dev Read result `resultId`'s day into `b` unless it is the one read last; it must be final.
    function _load(Batch memory b, uint64 resultId) internal view {
        if (b.resultId == resultId) return;
        (uint32 market, uint64 day, bool isFinal) = clearing.resultDay(resultId);
        if (!isFinal) revert SettlementResultNotFinal(resultId);
        b.resultId = resultId;
        b.market = market;
        b.m = markets.marketParams(market);
        b.closesAt = _closesAt(market, day, b.m.disputeWindowSeconds);
    }

    /// @dev A market day's settlement window ends a dispute window after the later of the day's
    /// end and its result's finality (DESIGN: a window that costs a party money starts when it could act).
    function _closesAt(uint32 market, uint64 day, uint64 disputeSeconds) internal view returns (uint64) {
        uint64 finalAt = clearing.dayState(market, day).challengeEnds;
        uint64 dayEnd = day + uint64(DAY);
        return (finalAt > dayEnd ? finalAt : dayEnd) + disputeSeconds;
    }

    /// @dev A request's terms, read from the book once per batch (while the cache has room).
    function _request(Batch memory b, uint64 requestId) internal view returns (OrderBook.Request memory q) {
        uint256 n = Math.min(b.cached, REQUEST_CACHE);
        for (uint256 i = 0; i < n; ++i) {
            if (b.requestIds[i] == requestId) return b.requests[i];
        }
        q = book.request(requestId);
        uint256 at = b.cached++ % REQUEST_CACHE;
        b.requestIds[at] = requestId;
        b.requests[at] = q;
    }

    function _market(uint64 resultId) internal view returns (uint32 market) {
        (market,,) = clearing.resultDay(resultId);
    }

    function _meter(uint64 assetId) internal view returns (address meter) {
        return assets.meterOf(assetId);
    }

    /// @dev Each ISP's anchored net consumption of the asset's meter (import - export, Wh); for a
    /// ROLLING_AVERAGE offer, each ISP's baseline checked against the oracle's anchored one.
    function _readings(SettleIn calldata s, bytes32 digest, uint256 ispSeconds) internal view returns (int256[] memory net) {
        _checkShape(s, digest);
        uint32 market = s.offer.market;
        bool standard = s.offer.baselineMethod == uint8(OrderBook.Baseline.ROLLING_AVERAGE);
        net = new int256[](s.isps.length);
        if (s.offer.portfolio != 0) return _portfolioReadings(s, digest, ispSeconds, standard, net);
        address meter = _meter(s.offer.asset);
        for (uint256 i = 0; i < s.isps.length; ++i) {
            IspIn calldata x = s.isps[i];
            uint64 ispStart = x.awards[0].ispStart;
            ReadingIn calldata r = x.reading;
            bool anchored = oracle.verifyReading(
                market, ispStart, r.anchor, meter, r.sequence, r.importWh, r.exportWh, r.signature, r.proof
            );
            if (!anchored) revert SettlementReadingNotAnchored(digest, ispStart);
            net[i] = _net(r.importWh, r.exportWh);
            if (standard) _checkStandard(s, digest, i, meter, ispSeconds);
        }
    }

    /// @dev A portfolio's net consumption per ISP (DeliveryMeter); for ROLLING_AVERAGE, each ISP's
    /// baseline must be the sum of its members' anchored ones.
    function _portfolioReadings(SettleIn calldata s, bytes32 digest, uint256 ispSeconds, bool standard, int256[] memory net)
        internal
        view
        returns (int256[] memory)
    {
        if (s.members.length != s.isps.length) revert SettlementIspsIncomplete(digest);
        for (uint256 i = 0; i < s.isps.length; ++i) {
            uint64 ispStart = s.isps[i].awards[0].ispStart;
            int256 baselineWh;
            (net[i], baselineWh) = meters.measure(s.offer.market, s.offer.portfolio, ispStart, standard, s.members[i]);
            if (!standard) continue;
            uint256 index = (ispStart - s.offer.start) / ispSeconds; // within the window: `_delivery` checks
            if (index >= s.baselineWh.length || s.baselineWh[index] != baselineWh) {
                revert SettlementBaselineNotAnchored(digest, ispStart);
            }
        }
        return net;
    }

    /// @dev ISP `i`'s baseline is the one the oracle anchored for `meter` (ROLLING_AVERAGE).
    function _checkStandard(SettleIn calldata s, bytes32 digest, uint256 i, address meter, uint256 ispSeconds)
        internal
        view
    {
        uint64 ispStart = s.isps[i].awards[0].ispStart;
        uint256 index = (ispStart - s.offer.start) / ispSeconds; // within the window: `_delivery` checks
        bool known = index < s.baselineWh.length && i < s.baselineProofs.length
            && oracle.verifyBaseline(s.offer.market, ispStart, meter, s.baselineWh[index], s.baselineProofs[i]);
        if (!known) revert SettlementBaselineNotAnchored(digest, ispStart);
    }

    /// @dev An asset offer, every ISP of a block presented, each with an award.
    function _checkShape(SettleIn calldata s, bytes32 digest) internal pure {
        if ((s.offer.asset == 0) == (s.offer.portfolio == 0)) revert SettlementUnsupportedOffer(digest);
        if (s.isps.length == 0 || (s.offer.isps > 1 && s.isps.length != s.offer.isps)) revert SettlementIspsIncomplete(digest);
        for (uint256 i = 0; i < s.isps.length; ++i) {
            if (s.isps[i].awards.length == 0) revert SettlementIspsIncomplete(digest);
        }
    }

    function _net(uint64 importWh, uint64 exportWh) internal pure returns (int256 net) {
        net = int256(uint256(importWh)) - int256(uint256(exportWh));
        if (net > type(int64).max || net < type(int64).min) revert SettlementReadingOutOfRange(importWh, exportWh);
    }

    /// @dev The record of an offer's settlement from its inputs and each ISP's net consumption.
    function _compute(SettleIn calldata s, bytes32 digest, Batch memory b, int256[] memory net)
        internal
        view
        returns (Record memory record)
    {
        bool unrevealed = net.length == 0; // `settleUnrevealed`: nothing counts as delivered, nothing is paid
        bool committed = s.offer.baselineMethod == uint8(OrderBook.Baseline.COMMITTED);
        if (!unrevealed && committed && keccak256(abi.encode(s.offer.asset, s.offer.start, s.baselineWh, s.salt)) != s.offer.baseline) {
            revert SettlementBaselineMismatch(digest);
        }
        uint256 count;
        for (uint256 i = 0; i < s.isps.length; ++i) {
            count += s.isps[i].awards.length;
        }
        record.offerDigest = digest;
        record.resultId = s.resultId;
        record.seller = s.offer.portfolio != 0
            ? assets.aggregatorOf(s.offer.portfolio)
            : address(uint160(OfferWord.unwrap(AssetWords.offerWord(assets, s.offer.asset)))); // the owner: the word's lowest 160 bits
        record.settledAt = uint64(block.timestamp);
        record.lines = new Line[](count);
        Ctx memory c = Ctx({
            digest: digest,
            resultId: s.resultId,
            offerPrice: s.offer.price,
            ispSeconds: b.m.ispSeconds,
            toleranceBps: b.m.toleranceBps,
            penaltyFactorBps: b.m.penaltyFactorBps,
            payAsCleared: b.m.pricingRule == MarketRegistry.PricingRule.PAY_AS_CLEARED,
            deliveredWs: 0,
            ispStart: 0,
            unrevealed: unrevealed
        });
        uint256 at;
        for (uint256 i = 0; i < s.isps.length; ++i) {
            _delivery(s, c, i, unrevealed ? int256(0) : net[i]);
            ClearingCommitment.AwardProof[] calldata awards = s.isps[i].awards;
            uint256 presented;
            for (uint256 k = 0; k < awards.length; ++k) {
                if (k > 0 && awards[k].requestId <= awards[k - 1].requestId) {
                    revert SettlementAwardsOutOfOrder(digest, c.ispStart, awards[k].requestId);
                }
                record.lines[at++] = _line(c, b, awards[k]);
                presented += awards[k].powerW;
            }
            if (presented != awards[0].levelW) {
                revert SettlementAwardsIncomplete(digest, c.ispStart, presented, awards[0].levelW);
            }
        }
    }

    /// @dev ISP `i`'s start and the offer's delivery there; ISPs come in increasing order, within the window.
    function _delivery(SettleIn calldata s, Ctx memory c, uint256 i, int256 net) internal pure {
        uint64 ispStart = s.isps[i].awards[0].ispStart;
        if (ispStart < s.offer.start || (i > 0 && ispStart <= c.ispStart)) revert SettlementIspsIncomplete(c.digest);
        uint256 index = (ispStart - s.offer.start) / c.ispSeconds;
        if (index >= s.offer.isps) revert SettlementIspsIncomplete(c.digest);
        c.ispStart = ispStart;
        if (c.unrevealed) {
            c.deliveredWs = 0;
            return;
        }
        if (index >= s.baselineWh.length) revert SettlementIspsIncomplete(c.digest);
        int256 saved = (s.offer.direction == 0 ? int256(1) : int256(-1)) * (int256(s.baselineWh[index]) - net);
        c.deliveredWs = saved > 0 ? uint256(saved) * WS_PER_WH : 0;
        c.ispStart = ispStart;
    }

    function _line(Ctx memory c, Batch memory b, ClearingCommitment.AwardProof calldata a)
        internal
        view
        returns (Line memory line)
    {
        if (a.ispStart != c.ispStart || a.levelW == 0 || !clearing.isAwarded(c.resultId, c.digest, a)) {
            revert SettlementAwardNotInResult(c.digest, a.requestId, a.ispStart);
        }
        OrderBook.Request memory q = _request(b, a.requestId);
        uint256 price = c.offerPrice;
        if (c.payAsCleared) price = Math.min(clearing.clearingPrice(c.resultId, q.zone, q.direction, c.ispStart), q.maxPrice);
        (uint256 payment, uint256 penalty) = awardMoney(
            a.powerW,
            a.levelW,
            c.ispSeconds,
            c.deliveredWs,
            price,
            q.product == uint8(OrderBook.Product.AVAILABILITY),
            c.toleranceBps,
            c.penaltyFactorBps
        );
        if (c.unrevealed) payment = 0; // a seller that never settled is paid nothing, not even for capacity
        uint256 fromPayment = Math.min(payment, penalty);
        line = Line({
            requestId: a.requestId,
            ispStart: c.ispStart,
            payment: payment,
            claim: payment - fromPayment,
            uncovered: penalty - fromPayment
        });
    }

    function _checkRecord(uint64 resultId, bytes32 digest, Record calldata record) internal view returns (bytes32 key) {
        key = keccak256(abi.encode(resultId, digest));
        bytes32 stored = records[key];
        if (stored == 0 || stored == FINAL || stored != keccak256(abi.encode(record))) {
            revert SettlementUnknownRecord(digest);
        }
    }

    function _uncovered(Line[] memory lines) internal pure returns (uint256 total) {
        for (uint256 i = 0; i < lines.length; ++i) {
            total += lines[i].uncovered;
        }
    }

    /// @dev Keep the seller's bond locked for the penalties of its settlements not yet final.
    function _lockExposure(address seller, uint256 add, uint256 release) internal {
        if (add == release) return; // unchanged: most settlements' payments cover their penalties
        uint256 exposure = exposureOf[seller] + add - release;
        exposureOf[seller] = exposure;
        book.setBondLock(seller, Math.min(exposure, book.bondOf(seller)));
    }

    function _rebalancePending(Line[] calldata before, Line[] memory after_) internal {
        for (uint256 i = 0; i < before.length; ++i) {
            --pendingLines[before[i].requestId];
        }
        for (uint256 i = 0; i < after_.length; ++i) {
            ++pendingLines[after_[i].requestId];
        }
    }
}
