// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {MarketRegistry} from "../market/MarketRegistry.sol";
import {MeterOracle} from "./MeterOracle.sol";
import {ReadingDisputes} from "./ReadingDisputes.sol";

/**
 * @title OmissionClaims
 * @notice Holds an oracle to its receipts: an oracle that signed a `ReadingReceipt` "accepted"
 * for a reading (MeterOracle's EIP-712 domain) promised that the reading is in the root it
 * anchors for that ISP. A reading in no root still settles on the meter's signature alone, so the
 * seller is whole either way; what this contract adds is that the oracle that broke its promise
 * is marked (`omissionsOf`) and slashed.
 *
 * Absence cannot be proven against a sorted-pair Merkle tree, so an omission is a claim with a
 * response window: once the ISP's root is anchored by the receipt's signer, anyone holding the
 * receipt claims (posting `claimBond`); during the market's dispute window anyone answers with the
 * reading's inclusion proof (the claim fails and its bond pays the answerer, so claims cannot
 * grief an honest oracle for free); unanswered, the claim is upheld: the bond goes back, the oracle
 * is marked and slashed the market's required stake, once per (market, ISP, meter), to the
 * claimant. The seller was already made whole by settling on the meter's signature; the claimant
 * (the meter's gateway, which alone receives the receipt) bore the bond and the watching, and the
 * omission is the oracle's act alone (it chose to receipt, then to leave out), so no party can
 * make it pay by itself.
 *
 * @dev One claim per (market, ISP, meter), whatever its outcome. A claim is filed no later than
 * the market's settlement horizon minus its dispute window after the anchor, so that it is judged
 * while the oracle's stake is still locked (`MeterOracle.requestUnstake` stops anchoring and unlocks
 * a settlement horizon later).
 */
contract OmissionClaims {
    using SafeERC20 for IERC20;

    /// @notice What the receipt names: the reading the oracle took.
    struct ReceiptIn {
        address meter;
        uint64 ispStart;
        uint64 sequence;
        uint64 importWh;
        uint64 exportWh;
    }

    /// @notice Where a claim stands.
    enum Status {
        None,
        Open,
        Answered,
        Upheld
    }

    /// @notice A claim, by `keccak256(abi.encode(market, ispStart, meter))`.
    struct Claim {
        address claimant;
        uint64 answerBy; // the last second an answer is taken
        Status status;
        address oracle; // the receipt's signer, who anchored the ISP
        uint64 sequence;
        bytes32 root;
        uint64 importWh;
        uint64 exportWh;
    }

    /// @notice The markets (dispute windows, settlement horizons).
    MarketRegistry public immutable markets;
    /// @notice The MeterOracle (anchors, receipt digests, slashing).
    MeterOracle public immutable oracle;
    /// @notice ReadingDisputes: a reading already slashed there as an oracle's fault is not slashed again.
    ReadingDisputes public immutable disputes;
    /// @notice The token claim bonds are posted in (the settlement token).
    IERC20 public immutable bondToken;
    /// @notice What a claimant posts; it pays whoever answers a claim that fails.
    uint256 public immutable claimBond;

    /// @notice How many readings an oracle receipted as accepted and left out of its root.
    mapping(address oracleAccount => uint256) public omissionsOf;
    mapping(bytes32 readingKey => Claim) private _claims;

    /// @notice The receipt is not `anchoringOracle`'s "accepted" over that reading (another key,
    /// other values, or a receipt for a reading taken late or refused).
    error OmissionNotReceipted(address anchoringOracle);
    /// @notice The anchor given is not the ISP's anchor in `market`.
    error OmissionNotAnchored(uint32 market, uint64 ispStart);
    /// @notice A claim for that market, ISP and meter was already filed.
    error OmissionAlreadyClaimed(bytes32 readingKey);
    /// @notice Claims on that anchor were taken until `lastClaimAt`.
    error OmissionTooLate(uint64 lastClaimAt);
    /// @notice No open claim for that market, ISP and meter.
    error OmissionNotOpen(bytes32 readingKey);
    /// @notice The answer window closed at `answerBy`.
    error OmissionAnswerClosed(uint64 answerBy);
    /// @notice The claim can still be answered until `answerBy`.
    error OmissionAnswerOpen(uint64 answerBy);
    /// @notice The proof does not show the receipted reading in the anchored root.
    error OmissionNotProven();

    /// @notice `claimant` claimed that `oracleAccount` left `meter`'s receipted reading out of its
    /// root for the ISP starting at `ispStart` of `market`; it may be answered until `answerBy`.
    event OmissionClaimed(
        uint32 indexed market,
        uint64 indexed ispStart,
        address indexed meter,
        address oracleAccount,
        address claimant,
        uint64 answerBy
    );
    /// @notice `answerer` proved the reading in the root: the claim failed, its bond paid `answerer`.
    event OmissionAnswered(uint32 indexed market, uint64 indexed ispStart, address indexed meter, address answerer);
    /// @notice Unanswered, the claim stood: `oracleAccount` was marked, and `slashed` of its stake paid the claimant.
    event OmissionUpheld(
        uint32 indexed market, uint64 indexed ispStart, address indexed meter, address oracleAccount, uint256 slashed
    );

    /**
     * @param marketRegistry The MarketRegistry.
     * @param meterOracle The MeterOracle.
     * @param readingDisputes The ReadingDisputes.
     * @param token The token bonds are posted in.
     * @param bond What a claim posts (token base units).
     */
    constructor(
        MarketRegistry marketRegistry,
        MeterOracle meterOracle,
        ReadingDisputes readingDisputes,
        IERC20 token,
        uint256 bond
    ) {
        markets = marketRegistry;
        oracle = meterOracle;
        disputes = readingDisputes;
        bondToken = token;
        claimBond = bond;
    }

    /**
     * @notice Claim that the oracle which anchored the ISP's root left out a reading it receipted
     * as accepted; posts `claimBond` (approved first). Anyone holding the receipt may.
     * @param market The market.
     * @param r The receipted reading.
     * @param receiptSignature The oracle's signature over `receiptDigest(market, r..., true)`.
     * @param anchor The ISP's anchor, as in `RootAnchored` (its oracle must be the receipt's signer).
     */
    function claim(
        uint32 market,
        ReceiptIn calldata r,
        bytes calldata receiptSignature,
        MeterOracle.Anchor calldata anchor
    ) external {
        bytes32 key = readingKey(market, r.ispStart, r.meter);
        if (_claims[key].status != Status.None) revert OmissionAlreadyClaimed(key);
        if (!oracle.isAnchored(market, r.ispStart, anchor)) revert OmissionNotAnchored(market, r.ispStart);
        uint64 window = markets.marketParams(market).disputeWindowSeconds;
        uint64 lastClaimAt = anchor.anchoredAt + markets.settlementHorizon(market) - window;
        if (block.timestamp > lastClaimAt) revert OmissionTooLate(lastClaimAt);
        bytes32 digest =
            oracle.receiptDigest(market, r.meter, r.ispStart, r.sequence, r.importWh, r.exportWh, true);
        if (!SignatureChecker.isValidSignatureNow(anchor.oracle, digest, receiptSignature)) {
            revert OmissionNotReceipted(anchor.oracle);
        }
        uint64 answerBy = uint64(block.timestamp) + window;
        _claims[key] =
            Claim(msg.sender, answerBy, Status.Open, anchor.oracle, r.sequence, anchor.root, r.importWh, r.exportWh);
        emit OmissionClaimed(market, r.ispStart, r.meter, anchor.oracle, msg.sender, answerBy);
        bondToken.safeTransferFrom(msg.sender, address(this), claimBond);
    }

    /**
     * @notice Answer an open claim with the receipted reading's inclusion proof: the claim fails and
     * its bond pays the caller.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @param signatureHash `keccak256` of the meter's signature, as in the anchored leaf.
     * @param proof The leaf's Merkle proof against the anchored root.
     */
    function answer(uint32 market, uint64 ispStart, address meter, bytes32 signatureHash, bytes32[] calldata proof)
        external
    {
        bytes32 key = readingKey(market, ispStart, meter);
        Claim storage c = _claims[key];
        if (c.status != Status.Open) revert OmissionNotOpen(key);
        if (block.timestamp > c.answerBy) revert OmissionAnswerClosed(c.answerBy);
        bytes32 leaf = oracle.readingLeaf(meter, ispStart, c.sequence, c.importWh, c.exportWh, signatureHash);
        if (!MerkleProof.verifyCalldata(proof, c.root, leaf)) revert OmissionNotProven();
        c.status = Status.Answered;
        emit OmissionAnswered(market, ispStart, meter, msg.sender);
        bondToken.safeTransfer(msg.sender, claimBond);
    }

    /**
     * @notice Uphold an unanswered claim once its answer window has closed (anyone may): the
     * bond goes back to the claimant, the oracle is marked and slashed to the claimant, unless
     * ReadingDisputes already slashed it for that reading.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @return slashed What the oracle lost.
     */
    function uphold(uint32 market, uint64 ispStart, address meter) external returns (uint256 slashed) {
        bytes32 key = readingKey(market, ispStart, meter);
        Claim storage c = _claims[key];
        if (c.status != Status.Open) revert OmissionNotOpen(key);
        if (block.timestamp <= c.answerBy) revert OmissionAnswerOpen(c.answerBy);
        c.status = Status.Upheld;
        (address claimant, address oracleAccount) = (c.claimant, c.oracle);
        ++omissionsOf[oracleAccount];
        // one slash per (market, ISP, meter): an anchored reading the meter never signed was this one's
        bool faulted = disputes.judged(key) & disputes.FAULT() != 0;
        bondToken.safeTransfer(claimant, claimBond);
        if (!faulted) slashed = oracle.slash(market, oracleAccount, claimant);
        emit OmissionUpheld(market, ispStart, meter, oracleAccount, slashed);
    }

    /**
     * @notice A claim's state.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @return The claim (status None when there is none).
     */
    function claimOf(uint32 market, uint64 ispStart, address meter) external view returns (Claim memory) {
        return _claims[readingKey(market, ispStart, meter)];
    }

    /**
     * @notice Whether the claim on `key` was upheld (its oracle slashed for that reading): what
     * ReadingDisputes asks before it slashes a fault on the same reading.
     * @param key The reading's key (`readingKey`).
     * @return True when upheld.
     */
    function isUpheld(bytes32 key) external view returns (bool) {
        return _claims[key].status == Status.Upheld;
    }

    /**
     * @notice The key of a meter's reading for an ISP of a market, as ReadingDisputes' `judged`.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @return The key.
     */
    function readingKey(uint32 market, uint64 ispStart, address meter) public pure returns (bytes32) {
        return keccak256(abi.encode(market, ispStart, meter));
    }
}
