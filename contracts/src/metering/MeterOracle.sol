// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {RoleGated} from "../access/RoleGated.sol";
import {IRoleRegistry} from "../access/IRoleRegistry.sol";
import {MarketRegistry} from "../market/MarketRegistry.sol";

/**
 * @title MeterOracle
 * @notice Anchors, per market and ISP, the Merkle root of the meter readings an oracle collected
 * for that ISP, once the ISP has ended; anyone can then prove a single reading against it.
 *
 * @dev Leaves are those of the OpenZeppelin standard Merkle tree (npm `@openzeppelin/merkle-tree`,
 * `StandardMerkleTree` with leaf encoding `["address", "uint64", "uint64", "uint64", "uint64", "bytes32"]`:
 * meter, ISP start, sequence, import Wh, export Wh, keccak256 of the meter's signature), see
 * `readingLeaf`. Committing to the signature makes every anchored reading checkable as
 * meter-signed: a dispute can then tell an oracle's error from a meter that signed twice.
 *
 * Meters sign readings as EIP-712 typed data in this contract's domain (`readingDigest`), so
 * disputes (ReadingDisputes) can check a meter-signed reading on chain.
 *
 * Storage is ONE slot per anchored ISP: the `keccak256(abi.encode(anchor))` of its `Anchor`
 * (root, oracle, leaf count, time anchored). One cold slot (22,100 gas) is what keeps an anchor
 * near the 60,000 gas aimed at for the whole transaction: the rest is the role check and the
 * market's ISP length, read from their registries. The anchor's fields travel in the
 * `RootAnchored` event; whoever uses them presents them again and has them proven against the
 * stored hash (`isAnchored`).
 *
 * A market may require its oracles to stake (`setRequiredStake`, by the market authority): an
 * oracle then anchors only with at least that stake in the market, and each reading it anchored
 * that its meter never signed (ReadingDisputes' upheld dispute) costs it the required amount, once
 * per (market, ISP, meter) (`slash`). A stake leaves only after a lock that outlasts
 * every dispute of what it anchored (`requestUnstake`, then `withdrawStake`).
 *
 * Standard (ROLLING_AVERAGE) baselines are anchored per ISP in the day before its gate closure
 * (`anchorBaselines`, `baselineWindow`); each leaf commits to the inputs it averaged, so
 * BaselineDisputes can prove one wrong from anchored readings, put its correction in force
 * (`fixBaseline`, which `verifyBaseline` then honours) and slash the oracle that anchored it, once
 * per (market, ISP, meter).
 */
contract MeterOracle is RoleGated, EIP712 {
    using SafeERC20 for IERC20;

    /// @notice The role that may anchor roots: `keccak256("ORACLE")`.
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE");

    /// @notice One anchored root; only its hash is stored, the fields are in `RootAnchored`.
    struct Anchor {
        bytes32 root;
        address oracle;
        uint32 leafCount;
        uint64 anchoredAt;
    }

    /// @notice An oracle's stake in a market.
    struct Stake {
        uint128 amount;
        uint64 unlocksAt; // 0 while staked; else when it may be withdrawn (it anchors no more)
    }

    /// @notice The markets whose ISP length the anchors follow.
    MarketRegistry public immutable markets;
    /// @notice The token stakes are held in (the settlement token).
    IERC20 public immutable stakeToken;
    /// @notice ReadingDisputes, which may slash (set once by the market authority).
    address public disputes;
    /// @notice OmissionClaims, which may slash too (set once by the market authority).
    address public omissionClaims;
    /// @notice The stake a market requires of its oracles (0: none, nothing slashed).
    mapping(uint32 market => uint256) public requiredStake;
    mapping(uint32 market => mapping(address oracle => Stake)) private _stakes;

    /// @dev Key: `uint256(market) << 64 | ispStart`; value: `keccak256(abi.encode(anchor))`, zero if none.
    mapping(uint256 key => bytes32) private _anchors;
    mapping(uint32 market => uint32 ispSeconds) private _marketIsp;
    /// @dev Key as `_anchors`; value: the root of the ISP's standard baselines (`baselineLeaf`), zero if none.
    mapping(uint256 key => bytes32) private _baselineRoots;
    /// @dev Key as `_anchors`; value: `uint160(oracle) | anchoredAt << 160` of the ISP's baselines root.
    mapping(uint256 key => uint256) private _baselineAnchors;
    /// @dev By `keccak256(abi.encode(market, ispStart, meter))`: a standard baseline's correction (`baselineFix`).
    mapping(bytes32 meterKey => bytes32) private _baselineFixes;
    /// @notice BaselineDisputes, which corrects standard baselines and slashes for them (set once).
    address public baselineDisputes;
    /// @notice `baselineFix` of a baseline proven to have too few similar days: none stands.
    bytes32 public constant NO_BASELINE = bytes32(uint256(1));

    /// @notice `ispStart` is not a multiple of the market's `ispSeconds`.
    error MeterOracleNotAligned(uint64 ispStart, uint32 ispSeconds);
    /// @notice The ISP starting at `ispStart` has not ended: its readings are complete only at `endsAt`.
    /// @custom:hint anchor an ISP after it ends
    error MeterOracleIspNotEnded(uint64 ispStart, uint64 endsAt);
    /// @notice The root is zero or the leaf count is zero: there is nothing to anchor.
    error MeterOracleEmptyRoot();
    /// @notice The ISP starting at `ispStart` of `market` already has an anchor; anchors are never replaced.
    /// @custom:hint anchors are never replaced: a wrong reading is disputed instead
    error MeterOracleAlreadyAnchored(uint32 market, uint64 ispStart);

    /// @notice `account` is not the market authority.
    error MeterOracleNotAuthority(address account);
    /// @notice The disputes contract is named once.
    error MeterOracleDisputesAlreadySet(address disputes);
    /// @notice Only ReadingDisputes and OmissionClaims may slash.
    error MeterOracleNotDisputes(address account);
    /// @notice `oracle` holds `staked` in `market`, which requires `required` (or its stake is leaving).
    /// @custom:hint stake at least the market's required oracle stake before anchoring
    error MeterOracleStakeTooLow(uint32 market, address oracle, uint256 staked, uint256 required);
    /// @notice The stake is locked until `unlocksAt` (0: no unstaking was requested).
    /// @custom:hint unstake after the lock ends (request it first with `requestUnstake`)
    error MeterOracleStakeLocked(uint64 unlocksAt);

    /// @notice The market authority set the stake `market` requires of its oracles.
    event RequiredStakeSet(uint32 indexed market, uint256 amount);
    /// @notice `oracle`'s stake in `market` is now `amount` (staked, or withdrawn: 0).
    event StakeChanged(uint32 indexed market, address indexed oracle, uint256 amount, uint64 unlocksAt);
    /// @notice `amount` of `oracle`'s stake in `market` went to `to`, who proved a reading it anchored wrong.
    event OracleSlashed(uint32 indexed market, address indexed oracle, address indexed to, uint256 amount);

    /// @notice The standard baselines of the ISP starting at `ispStart` of `market` are already anchored.
    error MeterOracleBaselinesAnchored(uint32 market, uint64 ispStart);
    /// @notice The standard baselines of the ISP starting at `ispStart` are anchored from `opens` to `closes` only.
    error MeterOracleBaselineWindow(uint64 ispStart, uint64 opens, uint64 closes);

    /// @notice A dispute proved `meter`'s standard baseline for `ispStart` wrong: `fix` is in force (`baselineFix`).
    event BaselineCorrected(uint32 indexed market, uint64 indexed ispStart, address indexed meter, bytes32 fix);

    /// @notice `oracle` anchored `root` over the standard baselines of `leafCount` meters for the ISP
    /// starting at `ispStart` of `market`.
    event BaselinesAnchored(
        uint32 indexed market, uint64 indexed ispStart, address indexed oracle, bytes32 root, uint32 leafCount
    );

    /// @notice `oracle` anchored `root` over `leafCount` readings for the ISP starting at `ispStart` of
    /// `market`, at `anchoredAt`: these fields make up the `Anchor` whose hash was stored.
    event RootAnchored(
        uint32 indexed market,
        uint64 indexed ispStart,
        address indexed oracle,
        bytes32 root,
        uint32 leafCount,
        uint64 anchoredAt
    );

    /// @param registry The role registry whose ORACLE credentials may anchor.
    /// @param marketRegistry The markets whose ISPs are anchored.
    /// @param token The token stakes are held in.
    constructor(IRoleRegistry registry, MarketRegistry marketRegistry, IERC20 token)
        RoleGated(registry)
        EIP712("flexledger MeterOracle", "1")
    {
        markets = marketRegistry;
        stakeToken = token;
    }

    /**
     * @notice Anchor the Merkle root of the readings of the ISP starting at `ispStart` of `market`;
     * only an ORACLE may, once per ISP, after the ISP has ended.
     * @dev Reverts with `MarketRegistry.MarketRegistryUnknownMarket` for an unknown market.
     * @param market The market.
     * @param ispStart The ISP's start (a multiple of the market's ISP length).
     * @param root The root of the ISP's readings tree (`readingLeaf` leaves); not zero.
     * @param leafCount How many readings the tree holds; not zero.
     */
    function anchorRoot(uint32 market, uint64 ispStart, bytes32 root, uint32 leafCount)
        external
        onlyMarketRole(ORACLE_ROLE)
    {
        // A market's parameters never change once created: its ISP length is read from the
        // MarketRegistry on the market's first anchor only (a cold call and two slots), then kept.
        uint32 ispSeconds = _marketIsp[market];
        if (ispSeconds == 0) {
            ispSeconds = _ispSeconds(market);
            _marketIsp[market] = ispSeconds;
        }
        if (ispStart % ispSeconds != 0) revert MeterOracleNotAligned(ispStart, ispSeconds);
        // Late readings may still arrive while the ISP runs; an anchor is final, so it waits for the end.
        uint64 endsAt = ispStart + ispSeconds;
        if (block.timestamp < endsAt) revert MeterOracleIspNotEnded(ispStart, endsAt);
        if (root == 0 || leafCount == 0) revert MeterOracleEmptyRoot();
        _checkStake(market);
        uint256 key = _key(market, ispStart);
        if (_anchors[key] != 0) revert MeterOracleAlreadyAnchored(market, ispStart);
        uint64 anchoredAt = uint64(block.timestamp);
        _anchors[key] = keccak256(abi.encode(Anchor(root, msg.sender, leafCount, anchoredAt)));
        emit RootAnchored(market, ispStart, msg.sender, root, leafCount, anchoredAt);
    }

    /**
     * @notice Anchor the Merkle root of the standard (ROLLING_AVERAGE) baselines the oracle computed
     * for the ISP starting at `ispStart` of `market`; only an ORACLE may, once per ISP (the first
     * wins: a wrong one is disputed in BaselineDisputes and its oracle slashed), and only in the day
     * before the ISP's gate closure (`baselineWindow`): sellers know their baseline when they offer,
     * and the baseline reads the readings anchored by then. Each leaf (`baselineLeaf`) commits to
     * the inputs it was computed from, so the value is checkable against anchored readings.
     * @param market The market.
     * @param ispStart The ISP's start (a multiple of the market's ISP length).
     * @param root The root of the baselines tree (`baselineLeaf` leaves); not zero.
     * @param leafCount How many meters' baselines the tree holds; not zero.
     */
    function anchorBaselines(uint32 market, uint64 ispStart, bytes32 root, uint32 leafCount)
        external
        onlyMarketRole(ORACLE_ROLE)
    {
        uint32 ispSeconds = _ispSeconds(market);
        if (ispStart % ispSeconds != 0) revert MeterOracleNotAligned(ispStart, ispSeconds);
        (uint64 opens, uint64 closes) = baselineWindow(market, ispStart);
        if (block.timestamp < opens || block.timestamp > closes) {
            revert MeterOracleBaselineWindow(ispStart, opens, closes);
        }
        if (root == 0 || leafCount == 0) revert MeterOracleEmptyRoot();
        _checkStake(market);
        uint256 key = _key(market, ispStart);
        if (_baselineRoots[key] != 0) revert MeterOracleBaselinesAnchored(market, ispStart);
        _baselineRoots[key] = root;
        _baselineAnchors[key] = uint256(uint160(msg.sender)) | uint256(block.timestamp) << 160;
        emit BaselinesAnchored(market, ispStart, msg.sender, root, leafCount);
    }

    /**
     * @notice When the standard baselines of the ISP starting at `ispStart` may be anchored: the
     * day up to its market day's gate closure. Not later, so that a seller knows its baseline
     * before it offers and the oracle cannot fit it to the day's awards; not earlier, so that it
     * reads recent history (the days whose readings are anchored by then).
     * @param market The market.
     * @param ispStart The ISP's start.
     * @return opens The first second it may be anchored.
     * @return closes The last second (the gate closure).
     */
    function baselineWindow(uint32 market, uint64 ispStart) public view returns (uint64 opens, uint64 closes) {
        closes = markets.gateClosure(market, ispStart);
        opens = closes > 1 days ? closes - 1 days : 0;
    }

    /**
     * @notice The root of the standard baselines anchored for the ISP starting at `ispStart` of `market`.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @return The root, or zero if none was anchored.
     */
    function baselineRoot(uint32 market, uint64 ispStart) external view returns (bytes32) {
        return _baselineRoots[_key(market, ispStart)];
    }

    /**
     * @notice Who anchored the standard baselines of the ISP starting at `ispStart` of `market`, and when.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @return oracleAccount The oracle (zero if none anchored).
     * @return anchoredAt The block time of the anchor: the readings it may read were anchored by then.
     */
    function baselineAnchor(uint32 market, uint64 ispStart) external view returns (address oracleAccount, uint64 anchoredAt) {
        uint256 packed = _baselineAnchors[_key(market, ispStart)];
        return (address(uint160(packed)), uint64(packed >> 160));
    }

    /**
     * @notice The Merkle leaf of one meter's standard baseline (OpenZeppelin standard tree, leaf
     * encoding `["address", "uint64", "int64", "bytes32"]`: meter, ISP start, net consumption in
     * Wh, and `inputsHash`, the `baselineInputsHash` of the days it averaged).
     * @param meter The meter.
     * @param ispStart The ISP's start.
     * @param baselineWh The baseline net consumption (import - export, Wh).
     * @param inputsHash The hash of its inputs (`baselineInputsHash`).
     * @return The leaf.
     */
    function baselineLeaf(address meter, uint64 ispStart, int64 baselineWh, bytes32 inputsHash)
        public
        pure
        returns (bytes32)
    {
        return keccak256(bytes.concat(keccak256(abi.encode(meter, ispStart, baselineWh, inputsHash))));
    }

    /**
     * @notice The hash a baseline leaf carries of its inputs (BaselineDisputes judges them): the
     * days it averaged, bit `k - 1` of `daysBack` set for the day `k` days before the ISP, and the
     * meter's anchored net consumption (Wh) on each, most recent first, zero after the last.
     * @param daysBack The days used.
     * @param nets Their net consumption (Wh).
     * @return `keccak256(abi.encode(daysBack, nets))`.
     */
    function baselineInputsHash(uint64 daysBack, int64[10] calldata nets) external pure returns (bytes32) {
        return keccak256(abi.encode(daysBack, nets));
    }

    /**
     * @notice Whether `baselineWh` is the standard baseline in force for `meter` in the ISP starting
     * at `ispStart` of `market`: the oracle's anchored leaf or, once a dispute corrected it, the
     * correction (`baselineFix`). What a settlement proves.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @param baselineWh The baseline (Wh).
     * @param witness The leaf's inputs hash, then the Merkle proof of the leaf against the ISP's
     * baselines root (a corrected baseline: its inputs hash alone).
     * @return True when the value is the one in force.
     */
    function verifyBaseline(uint32 market, uint64 ispStart, address meter, int64 baselineWh, bytes32[] calldata witness)
        external
        view
        returns (bool)
    {
        if (witness.length == 0) return false;
        bytes32 fix = _baselineFixes[_meterKey(market, ispStart, meter)];
        if (fix != 0) return fix == keccak256(abi.encode(baselineWh, witness[0])); // NO_BASELINE matches nothing
        return isAnchoredBaseline(market, ispStart, meter, baselineWh, witness[0], witness[1:]);
    }

    /**
     * @notice Whether the oracle's anchored baselines of the ISP hold this leaf (corrections aside).
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @param baselineWh The baseline (Wh).
     * @param inputsHash The leaf's inputs hash.
     * @param proof The Merkle proof of the leaf against the ISP's baselines root.
     * @return True when the ISP has baselines anchored and the proof holds.
     */
    function isAnchoredBaseline(
        uint32 market,
        uint64 ispStart,
        address meter,
        int64 baselineWh,
        bytes32 inputsHash,
        bytes32[] calldata proof
    ) public view returns (bool) {
        bytes32 root = _baselineRoots[_key(market, ispStart)];
        return root != 0 && MerkleProof.verifyCalldata(proof, root, baselineLeaf(meter, ispStart, baselineWh, inputsHash));
    }

    /**
     * @notice The correction in force of `meter`'s standard baseline for the ISP starting at
     * `ispStart` of `market`: zero (none: the anchored leaf stands), `NO_BASELINE`, or
     * `keccak256(abi.encode(int64 baselineWh, bytes32 inputsHash))`.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @return The correction.
     */
    function baselineFix(uint32 market, uint64 ispStart, address meter) external view returns (bytes32) {
        return _baselineFixes[_meterKey(market, ispStart, meter)];
    }

    /**
     * @notice Put a correction in place of `meter`'s standard baseline for an ISP; only
     * BaselineDisputes may, having proven the baseline in force wrong.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param meter The meter.
     * @param fix The correction (`baselineFix`'s encoding); not zero.
     */
    function fixBaseline(uint32 market, uint64 ispStart, address meter, bytes32 fix) external {
        if (msg.sender != baselineDisputes || fix == 0) revert MeterOracleNotDisputes(msg.sender);
        _baselineFixes[_meterKey(market, ispStart, meter)] = fix;
        emit BaselineCorrected(market, ispStart, meter, fix);
    }

    function _meterKey(uint32 market, uint64 ispStart, address meter) private pure returns (bytes32) {
        return keccak256(abi.encode(market, ispStart, meter));
    }

    /// @notice The EIP-712 type meters sign their readings with (in this contract's domain, ERC-5267).
    bytes32 public constant READING_TYPEHASH =
        keccak256("Reading(address meter,uint64 ispStart,uint64 sequence,uint64 importWh,uint64 exportWh)");

    /**
     * @notice The EIP-712 digest a meter signs for one reading (energies measured during the ISP).
     * @param meter The meter.
     * @param ispStart The ISP's start.
     * @param sequence The meter's reading counter.
     * @param importWh Energy imported during the ISP (Wh).
     * @param exportWh Energy exported during the ISP (Wh).
     * @return The digest.
     */
    function readingDigest(address meter, uint64 ispStart, uint64 sequence, uint64 importWh, uint64 exportWh)
        external
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(READING_TYPEHASH, meter, ispStart, sequence, importWh, exportWh)));
    }

    /**
     * @notice Whether `meter` signed this reading (`readingDigest`, ECDSA or ERC-1271 as OpenZeppelin's
     * SignatureChecker checks it): what a dispute shows against an anchored reading.
     * @param meter The meter.
     * @param ispStart The ISP's start.
     * @param sequence The meter's reading counter.
     * @param importWh Energy imported during the ISP (Wh).
     * @param exportWh Energy exported during the ISP (Wh).
     * @param signature The meter's signature.
     * @return True when the signature is the meter's over that reading.
     */
    function isSignedReading(
        address meter,
        uint64 ispStart,
        uint64 sequence,
        uint64 importWh,
        uint64 exportWh,
        bytes calldata signature
    ) public view returns (bool) {
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(READING_TYPEHASH, meter, ispStart, sequence, importWh, exportWh)));
        return SignatureChecker.isValidSignatureNow(meter, digest, signature);
    }

    /// @notice The EIP-712 type an oracle signs its receipt of a reading with (in this contract's
    /// domain): `accepted` promises the reading is in the root the oracle anchors for that ISP of
    /// `market` (OmissionClaims holds it to that); false for a reading it took late or refused.
    bytes32 public constant RECEIPT_TYPEHASH = keccak256(
        "ReadingReceipt(uint32 market,address meter,uint64 ispStart,uint64 sequence,uint64 importWh,uint64 exportWh,bool accepted)"
    );

    /**
     * @notice The EIP-712 digest an oracle signs for its receipt of one reading.
     * @param market The market whose root the oracle anchors.
     * @param meter The meter.
     * @param ispStart The ISP's start.
     * @param sequence The meter's reading counter.
     * @param importWh Energy imported during the ISP (Wh).
     * @param exportWh Energy exported during the ISP (Wh).
     * @param accepted Whether the oracle took the reading for the ISP's root (false: late or refused).
     * @return The digest.
     */
    function receiptDigest(
        uint32 market,
        address meter,
        uint64 ispStart,
        uint64 sequence,
        uint64 importWh,
        uint64 exportWh,
        bool accepted
    ) external view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(RECEIPT_TYPEHASH, market, meter, ispStart, sequence, importWh, exportWh, accepted))
        );
    }

    /**
     * @notice The stored hash of the anchor of the ISP starting at `ispStart` of `market`.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @return The `keccak256(abi.encode(anchor))`, or zero if that ISP has no anchor.
     */
    function anchorHash(uint32 market, uint64 ispStart) external view returns (bytes32) {
        return _anchors[_key(market, ispStart)];
    }

    /**
     * @notice Whether `anchor` is the anchor of the ISP starting at `ispStart` of `market`.
     * @param market The market.
     * @param ispStart The ISP's start.
     * @param anchor The anchor's fields, as in `RootAnchored`.
     * @return True when that ISP is anchored and its stored hash is the hash of `anchor`.
     */
    function isAnchored(uint32 market, uint64 ispStart, Anchor calldata anchor) public view returns (bool) {
        bytes32 stored = _anchors[_key(market, ispStart)];
        return stored != 0 && stored == keccak256(abi.encode(anchor));
    }

    /**
     * @notice The Merkle leaf of one reading, as the OpenZeppelin standard Merkle tree computes it
     * (the encoded values hashed twice, so that no leaf can pass for an inner node).
     * @param meter The meter's address.
     * @param ispStart The ISP's start.
     * @param sequence The meter's reading sequence number.
     * @param importWh Energy imported during the ISP (Wh).
     * @param exportWh Energy exported during the ISP (Wh).
     * @param signatureHash `keccak256` of the meter's signature over the reading (`readingDigest`).
     * @return The leaf.
     */
    function readingLeaf(
        address meter,
        uint64 ispStart,
        uint64 sequence,
        uint64 importWh,
        uint64 exportWh,
        bytes32 signatureHash
    ) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(meter, ispStart, sequence, importWh, exportWh, signatureHash))));
    }

    /**
     * @notice Whether a reading may be settled on for the ISP starting at `ispStart` of `market`:
     * it is in that ISP's anchored readings (leaf and proof), or, with a zero `anchor.root`, it is
     * brought without an anchor and `signature` is the meter's over it (a reading the oracle
     * received late or left out). Either way the reading stands only as the meter's signed word:
     * another reading the meter signed for that ISP is equivocation (ReadingDisputes).
     * @param market The market.
     * @param ispStart The ISP's start (also part of the leaf, so a reading proves only for its own ISP).
     * @param anchor The ISP's anchor, as in `RootAnchored`; all zero for a reading brought without one.
     * @param meter The meter's address.
     * @param sequence The meter's reading sequence number.
     * @param importWh Energy imported during the ISP (Wh).
     * @param exportWh Energy exported during the ISP (Wh).
     * @param signature The meter's signature over the reading (its hash is in the leaf).
     * @param proof The Merkle proof of the reading's leaf against `anchor.root` (empty without an anchor).
     * @return True when the reading is anchored, or brought without an anchor and meter-signed.
     */
    function verifyReading(
        uint32 market,
        uint64 ispStart,
        Anchor calldata anchor,
        address meter,
        uint64 sequence,
        uint64 importWh,
        uint64 exportWh,
        bytes calldata signature,
        bytes32[] calldata proof
    ) external view returns (bool) {
        if (anchor.root == 0) {
            return anchor.oracle == address(0) && isSignedReading(meter, ispStart, sequence, importWh, exportWh, signature);
        }
        bytes32 leaf = readingLeaf(meter, ispStart, sequence, importWh, exportWh, keccak256(signature));
        return isAnchored(market, ispStart, anchor) && MerkleProof.verifyCalldata(proof, anchor.root, leaf);
    }

    // -------------------------------------------------------------------------------- stakes

    /**
     * @notice Name ReadingDisputes, which may slash (with OmissionClaims); once, by the market authority.
     * @param disputesContract The ReadingDisputes.
     */
    function setDisputes(address disputesContract) external {
        _onlyAuthority();
        if (disputes != address(0)) revert MeterOracleDisputesAlreadySet(disputes);
        disputes = disputesContract;
    }

    /**
     * @notice Name OmissionClaims, which may also slash (an oracle that left out a reading it
     * receipted as accepted); once, by the market authority.
     * @param omissionsContract The OmissionClaims.
     */
    function setOmissionClaims(address omissionsContract) external {
        _onlyAuthority();
        if (omissionClaims != address(0)) revert MeterOracleDisputesAlreadySet(omissionClaims);
        omissionClaims = omissionsContract;
    }

    /**
     * @notice Name BaselineDisputes, which corrects standard baselines and may slash for them; once,
     * by the market authority.
     * @param disputesContract The BaselineDisputes.
     */
    function setBaselineDisputes(address disputesContract) external {
        _onlyAuthority();
        if (baselineDisputes != address(0)) revert MeterOracleDisputesAlreadySet(baselineDisputes);
        baselineDisputes = disputesContract;
    }

    /**
     * @notice Set the stake `market` requires of its oracles (0: none); by the market authority.
     * Oracles below it anchor no more in that market until they top up.
     * @param market The market.
     * @param amount Token base units.
     */
    function setRequiredStake(uint32 market, uint256 amount) external {
        _onlyAuthority();
        markets.marketParams(market); // reverts for an unknown market
        requiredStake[market] = amount;
        emit RequiredStakeSet(market, amount);
    }

    /**
     * @notice Add `amount` to the caller's stake in `market` (the caller approves the tokens first).
     * @param market The market.
     * @param amount Token base units.
     */
    function stake(uint32 market, uint128 amount) external {
        Stake storage st = _stakes[market][msg.sender];
        if (st.unlocksAt != 0) revert MeterOracleStakeLocked(st.unlocksAt);
        st.amount += amount;
        emit StakeChanged(market, msg.sender, st.amount, 0);
        stakeToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice Start taking the caller's stake in `market` out: it anchors there no more, and the
     * stake is withdrawable once every dispute of what it anchored is over: what it anchored is of
     * ISPs that have ended, so of days that started before now, and a day's settlements are
     * disputed at most `MarketRegistry.settlementHorizon` after it starts.
     * @param market The market.
     */
    function requestUnstake(uint32 market) external {
        Stake storage st = _stakes[market][msg.sender];
        if (st.unlocksAt != 0) revert MeterOracleStakeLocked(st.unlocksAt);
        st.unlocksAt = uint64(block.timestamp) + markets.settlementHorizon(market) + 1;
        emit StakeChanged(market, msg.sender, st.amount, st.unlocksAt);
    }

    /**
     * @notice Withdraw the caller's stake in `market` after its lock.
     * @param market The market.
     */
    function withdrawStake(uint32 market) external {
        Stake storage st = _stakes[market][msg.sender];
        if (st.unlocksAt == 0 || block.timestamp < st.unlocksAt) revert MeterOracleStakeLocked(st.unlocksAt);
        uint256 amount = st.amount;
        delete _stakes[market][msg.sender];
        emit StakeChanged(market, msg.sender, 0, 0);
        stakeToken.safeTransfer(msg.sender, amount);
    }

    /**
     * @notice Take the market's required stake (or what is left of it) from `oracleAccount` and
     * pay it to `to` for a reading it anchored wrong (ReadingDisputes), a standard baseline it
     * anchored wrong (BaselineDisputes) or a reading it left out after receipting it as accepted
     * (OmissionClaims); only those three may.
     * @param market The market.
     * @param oracleAccount The oracle that anchored the wrong reading.
     * @param to Who proved it.
     * @return amount What was slashed (0 where the market requires no stake).
     */
    function slash(uint32 market, address oracleAccount, address to) external returns (uint256 amount) {
        if (msg.sender != disputes && msg.sender != omissionClaims && msg.sender != baselineDisputes) {
            revert MeterOracleNotDisputes(msg.sender);
        }
        Stake storage st = _stakes[market][oracleAccount];
        amount = requiredStake[market];
        if (amount > st.amount) amount = st.amount;
        if (amount == 0) return 0;
        st.amount -= uint128(amount);
        emit OracleSlashed(market, oracleAccount, to, amount);
        stakeToken.safeTransfer(to, amount);
    }

    /**
     * @notice An oracle's stake in a market.
     * @param market The market.
     * @param oracleAccount The oracle.
     * @return The amount and, once unstaking was requested, when it unlocks.
     */
    function stakeOf(uint32 market, address oracleAccount) external view returns (Stake memory) {
        return _stakes[market][oracleAccount];
    }

    /// @dev The caller may anchor in `market`: staked enough there, and not leaving (one cold slot
    /// when the market requires no stake).
    function _checkStake(uint32 market) private view {
        uint256 required = requiredStake[market];
        if (required == 0) return;
        Stake storage st = _stakes[market][msg.sender];
        if (st.amount < required || st.unlocksAt != 0) {
            revert MeterOracleStakeTooLow(market, msg.sender, st.unlocksAt != 0 ? 0 : st.amount, required);
        }
    }

    function _onlyAuthority() private view {
        if (!markets.authority().hasRole(0x00, msg.sender)) revert MeterOracleNotAuthority(msg.sender);
    }

    /// @dev `markets.marketParams(market).ispSeconds` through a bare STATICCALL in the scratch space:
    /// the ISP length is the first word of the answer, and decoding the whole struct would cost every
    /// anchor about a thousand gas more. The registry's revert (an unknown market) is passed on as is.
    function _ispSeconds(uint32 market) private view returns (uint32 ispSeconds) {
        MarketRegistry registry = markets;
        bytes4 selector = MarketRegistry.marketParams.selector;
        assembly ("memory-safe") {
            mstore(0x00, selector)
            mstore(0x04, market)
            if iszero(staticcall(gas(), registry, 0x00, 0x24, 0x00, 0x20)) {
                let free := mload(0x40)
                returndatacopy(free, 0, returndatasize())
                revert(free, returndatasize())
            }
            if lt(returndatasize(), 0x100) { revert(0, 0) }
            ispSeconds := mload(0x00)
            if gt(ispSeconds, 0xffffffff) { revert(0, 0) }
        }
    }

    function _key(uint32 market, uint64 ispStart) private pure returns (uint256) {
        return uint256(market) << 64 | ispStart;
    }
}
