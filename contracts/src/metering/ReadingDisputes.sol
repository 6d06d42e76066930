// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {MarketRegistry} from "../market/MarketRegistry.sol";
import {OrderBook} from "../market/OrderBook.sol";
import {Settlement} from "../market/Settlement.sol";
import {AssetRegistry} from "../grid/AssetRegistry.sol";
import {AssetWords} from "../grid/AssetWords.sol";
import {OfferWord} from "../types/OfferWord.sol";
import {MeterOracle} from "./MeterOracle.sol";
import {DeliveryMeter} from "./DeliveryMeter.sol";

/// @dev What ReadingDisputes asks OmissionClaims (an interface: OmissionClaims reads this contract too).
interface IOmissionUpheld {
    function isUpheld(bytes32 readingKey) external view returns (bool);
}

/**
 * @title ReadingDisputes
 * @notice The evidence against a settlement's readings, judged (DESIGN.md rule 8 and "Money
 * safety"): during a settlement's dispute window anyone shows a reading the meter signed (EIP-712,
 * MeterOracle's domain) for one of its ISPs, other than the one the settlement counted.
 *
 * - The counted reading was meter-signed too (its signature is committed in the anchored leaf and
 *   presented with the settlement; or an earlier dispute put a signed reading in its place): the
 *   meter signed two readings for one ISP, it EQUIVOCATED. Its word is worth nothing for that ISP:
 *   the offer's delivery there is void (nothing counts as delivered; its shortfall penalty is drawn
 *   from the seller's bond at finality), the meter is marked, and nobody is paid from the oracle,
 *   which anchored what the meter first signed.
 * - The counted reading was NOT signed by the meter over those values: the oracle anchored
 *   something the meter never said. The offer is settled again at the meter's figure and the
 *   oracle is marked and slashed ONCE per (market, ISP, meter), however many offers settled on that
 *   reading (and not at all where OmissionClaims already slashed it for that reading). The stake goes to the disputer, unless the disputer is the offer's seller (its
 *   aggregator) or the meter's owner, who are made whole by the correction itself: then to the
 *   buyer of the disputed ISP's first award.
 *
 * @dev Settlement proves the readings (`Settlement.measure`) and recomputes the money
 * (`Settlement.resettle`, which only this contract may call); this contract keeps the corrections
 * and the marks.
 */
contract ReadingDisputes {
    /// @notice A dispute: the ISP (its index in the settlement's inputs) and the reading the meter signed.
    struct DisputeIn {
        uint256 isp;
        uint64 sequence;
        uint64 importWh;
        uint64 exportWh;
        bytes signature;
        uint64 member; // a portfolio offer: the member whose meter signed the reading (ignored for an asset offer)
    }

    /// @dev The reading a settlement counted for the disputed meter and ISP.
    struct Counted {
        uint64 asset;
        address meter;
        address anchoredBy; // zero for a reading brought without an anchor
        uint64 sequence;
        uint64 importWh;
        uint64 exportWh;
        bytes signature;
    }

    uint256 internal constant KEPT = 1 << 255; // a correction is stored (its value may be zero)
    uint256 internal constant VOID = 1 << 254; // the ISP's delivery is void (equivocation)

    MarketRegistry public immutable markets;
    OrderBook public immutable book;
    AssetRegistry public immutable assets;
    MeterOracle public immutable oracle;
    Settlement public immutable settlement;

    /// @notice How many (market, ISP, meter) readings an oracle anchored that its meter never signed.
    mapping(address oracleAccount => uint256) public faultsOf;
    /// @notice How many ISPs a meter signed two different readings for.
    mapping(address meter => uint256) public equivocationsOf;
    /// @notice What was judged of a meter's reading for an ISP, by `keccak256(abi.encode(market,
    /// ispStart, meter))`: `FAULT` (its oracle anchored what the meter never signed) and
    /// `EQUIVOCATION` bits; each is counted (and slashed) once, however many offers settled on it.
    mapping(bytes32 readingKey => uint256) public judged;

    /// @notice `judged` bit: the oracle was marked (and slashed) for this reading.
    uint256 public constant FAULT = 1;
    /// @notice `judged` bit: the meter was marked for signing two readings.
    uint256 public constant EQUIVOCATION = 2;
    /// @dev Corrections (`KEPT | VOID? | uint64(int64 net)`): an ISP's net consumption by
    /// `keccak256(record key, ISP start)`, one meter's in it by `keccak256(that key, meter)`.
    mapping(bytes32 correctionKey => uint256) private _corrected;

    /// @notice There is no ISP `isp` in the settlement's inputs.
    error DisputeNoSuchIsp(uint256 isp);
    /// @notice The asset is not a member whose reading the settlement presented.
    error DisputeNotMember(uint32 portfolioId, uint64 asset);
    /// @notice The reading is not signed by `meter` for the ISP starting at `ispStart`.
    error DisputeNotSignedByMeter(address meter, uint64 ispStart);
    /// @notice The reading agrees with what the settlement counted for that meter and ISP.
    error DisputeAgreesWithSettlement(address meter, uint64 ispStart);
    /// @notice The ISP's delivery was already voided by an equivocation: nothing more to dispute there.
    error DisputeIspVoided(uint64 ispStart);
    /// @notice The reading's net consumption does not fit an int64.
    error DisputeReadingOutOfRange(uint64 importWh, uint64 exportWh);

    /// @notice A meter-signed reading showed the root `oracleAccount` anchored for `ispStart` wrong:
    /// the meter never signed what was anchored.
    event ReadingDisputed(bytes32 indexed offerDigest, address indexed oracleAccount, uint64 ispStart, address disputer);
    /// @notice `meter` signed two different readings for the ISP starting at `ispStart` of
    /// `market`: the delivery of offer `offerDigest` there is void.
    event MeterEquivocated(
        bytes32 indexed offerDigest, address indexed meter, uint32 market, uint64 ispStart, address disputer
    );

    /**
     * @param marketRegistry The MarketRegistry (ISP lengths).
     * @param orderBook The OrderBook (offer digests, requests' buyers).
     * @param assetRegistry The AssetRegistry (assets' meters and owners).
     * @param meterOracle The MeterOracle (meter signatures, slashing).
     * @param settlementContract The Settlement (proves readings, re-settles).
     */
    constructor(
        MarketRegistry marketRegistry,
        OrderBook orderBook,
        AssetRegistry assetRegistry,
        MeterOracle meterOracle,
        Settlement settlementContract
    ) {
        markets = marketRegistry;
        book = orderBook;
        assets = assetRegistry;
        oracle = meterOracle;
        settlement = settlementContract;
    }

    /**
     * @notice During a settlement's dispute window, show a reading the meter of the asset (or of the
     * portfolio member `d.member`) signed for one of its ISPs, other than the one counted: an
     * equivocation voids the ISP's delivery; an anchored reading the meter never signed is
     * corrected to the meter's figure and its oracle marked and slashed (see the contract's notice).
     * @param s The settlement's inputs, as first presented.
     * @param record The settlement's record, as logged.
     * @param d The ISP disputed and the meter-signed reading.
     * @return corrected The new record.
     */
    function dispute(Settlement.SettleIn calldata s, Settlement.Record calldata record, DisputeIn calldata d)
        external
        returns (Settlement.Record memory corrected)
    {
        int256[] memory measured = settlement.measure(s);
        if (d.isp >= s.isps.length) revert DisputeNoSuchIsp(d.isp);
        uint64 ispStart = s.isps[d.isp].awards[0].ispStart;
        Counted memory c = _counted(s, d.isp, d.member);
        if (!oracle.isSignedReading(c.meter, ispStart, d.sequence, d.importWh, d.exportWh, d.signature)) {
            revert DisputeNotSignedByMeter(c.meter, ispStart);
        }
        bool signedTwice = _judge(s, d, c, ispStart, measured);
        bool first = _mark(keccak256(abi.encode(s.offer.market, ispStart, c.meter)), signedTwice ? EQUIVOCATION : FAULT);
        if (signedTwice) {
            if (first) ++equivocationsOf[c.meter];
            emit MeterEquivocated(record.offerDigest, c.meter, s.offer.market, ispStart, msg.sender);
        } else {
            emit ReadingDisputed(record.offerDigest, c.anchoredBy, ispStart, msg.sender);
        }
        corrected = settlement.resettle(s, record, measured);
        if (!signedTwice && first) {
            ++faultsOf[c.anchoredBy]; // one unsigned anchored reading, one fault, one slash
            // ... unless OmissionClaims already slashed it for leaving out the reading it promised there
            if (!_omissionUpheld(keccak256(abi.encode(s.offer.market, ispStart, c.meter)))) {
                oracle.slash(s.offer.market, c.anchoredBy, _slashedTo(record, c.asset, ispStart));
            }
        }
    }

    /// @dev Put the meter-signed reading `d` in `measured` and keep the correction: an equivocation
    /// (the counted reading was meter-signed too) voids the ISP's delivery, otherwise `d` replaces
    /// the counted reading. Returns whether the meter signed twice.
    function _judge(
        Settlement.SettleIn calldata s,
        DisputeIn calldata d,
        Counted memory c,
        uint64 ispStart,
        int256[] memory measured
    ) internal returns (bool signedTwice) {
        bytes32 ispKey = _applyCorrections(s, ispStart, measured);
        bytes32 meterKey = keccak256(abi.encode(ispKey, c.meter));
        int256 signedNet = _net(d.importWh, d.exportWh);
        int256 counted;
        (signedTwice, counted) = _compare(d, c, ispStart, _corrected[meterKey], signedNet);
        if (signedTwice) {
            // the meter's word for this ISP is worth nothing: no delivery counts (net = baseline)
            uint256 index = (ispStart - s.offer.start) / markets.marketParams(s.offer.market).ispSeconds;
            if (index >= s.baselineWh.length) revert DisputeNoSuchIsp(d.isp);
            measured[d.isp] = s.baselineWh[index];
            _corrected[ispKey] = KEPT | VOID | uint256(uint64(s.baselineWh[index]));
        } else {
            measured[d.isp] += signedNet - counted; // a portfolio's other members stand
            _corrected[meterKey] = KEPT | uint256(uint64(int64(signedNet)));
            _corrected[ispKey] = KEPT | uint256(uint64(SafeCast.toInt64(measured[d.isp])));
        }
    }

    /// @dev Earlier corrections of this settlement's ISPs stand (each dispute adds one); the key
    /// of the disputed ISP's correction, unless that ISP is void.
    function _applyCorrections(Settlement.SettleIn calldata s, uint64 ispStart, int256[] memory measured)
        internal
        view
        returns (bytes32 ispKey)
    {
        bytes32 key = _corrections(s, measured, new bool[](measured.length));
        ispKey = keccak256(abi.encode(key, ispStart));
        if (_corrected[ispKey] & VOID != 0) revert DisputeIspVoided(ispStart);
    }

    /**
     * @notice A settlement's net consumption per ISP as its disputes left it: its readings proven
     * (`Settlement.measure`), each correction in place, and which ISPs are void (an equivocation:
     * their net consumption is their baseline, so nothing counts as delivered whatever the baseline).
     * What BaselineDisputes re-settles from.
     * @param s The settlement's inputs (the standard baselines in force).
     * @return net Per ISP of `s.isps`, the net consumption.
     * @return voided Per ISP of `s.isps`, whether it is void.
     */
    function correctedNet(Settlement.SettleIn calldata s) external view returns (int256[] memory net, bool[] memory voided) {
        net = settlement.measure(s);
        voided = new bool[](net.length);
        _corrections(s, net, voided);
    }

    /// @dev Put the settlement's corrections in `net` (a void ISP's net is its baseline); its key.
    function _corrections(Settlement.SettleIn calldata s, int256[] memory net, bool[] memory voided)
        internal
        view
        returns (bytes32 key)
    {
        key = keccak256(abi.encode(s.resultId, book.offerDigest(s.offer)));
        uint256 ispSeconds;
        for (uint256 i = 0; i < s.isps.length; ++i) {
            uint64 start = s.isps[i].awards[0].ispStart;
            uint256 stored = _corrected[keccak256(abi.encode(key, start))];
            if (stored & VOID != 0) {
                // void whatever the baseline in force (a standard one may be corrected later)
                if (ispSeconds == 0) ispSeconds = markets.marketParams(s.offer.market).ispSeconds;
                uint256 index = (start - s.offer.start) / ispSeconds;
                if (index < s.baselineWh.length) net[i] = s.baselineWh[index];
                voided[i] = true;
            } else if (stored != 0) {
                net[i] = int64(uint64(stored));
            }
        }
    }

    /// @dev Whether the reading counted so far (`earlier`: one a dispute put in place, else the
    /// one presented) was meter-signed too, and its net consumption; `d` must differ from it.
    function _compare(DisputeIn calldata d, Counted memory c, uint64 ispStart, uint256 earlier, int256 signedNet)
        internal
        view
        returns (bool signedTwice, int256 counted)
    {
        if (earlier != 0) {
            counted = int64(uint64(earlier));
            if (signedNet == counted) revert DisputeAgreesWithSettlement(c.meter, ispStart);
            return (true, counted);
        }
        if (d.importWh == c.importWh && d.exportWh == c.exportWh) revert DisputeAgreesWithSettlement(c.meter, ispStart);
        counted = _net(c.importWh, c.exportWh);
        signedTwice = oracle.isSignedReading(c.meter, ispStart, c.sequence, c.importWh, c.exportWh, c.signature);
    }

    /// @dev Whether an omission claim on `readingKey` was upheld (and slashed) in OmissionClaims.
    function _omissionUpheld(bytes32 readingKey) internal view returns (bool) {
        address claims = oracle.omissionClaims();
        return claims != address(0) && IOmissionUpheld(claims).isUpheld(readingKey);
    }

    /// @dev Mark `readingKey` with `mark`; whether it was not marked so before.
    function _mark(bytes32 readingKey, uint256 mark) internal returns (bool first) {
        uint256 marks = judged[readingKey];
        judged[readingKey] = marks | mark;
        first = marks & mark == 0;
    }

    /// @dev The reading settlement `s` counted for ISP `isp`: the asset's, or portfolio member `member`'s.
    function _counted(Settlement.SettleIn calldata s, uint256 isp, uint64 member) internal view returns (Counted memory c) {
        if (s.offer.portfolio == 0) {
            Settlement.ReadingIn calldata r = s.isps[isp].reading;
            c = Counted(s.offer.asset, address(0), r.anchor.oracle, r.sequence, r.importWh, r.exportWh, r.signature);
        } else {
            if (isp >= s.members.length) revert DisputeNoSuchIsp(isp);
            DeliveryMeter.MemberReading[] memory rs = abi.decode(s.members[isp], (DeliveryMeter.MemberReading[]));
            uint256 i;
            while (i < rs.length && rs[i].asset != member) ++i;
            if (i == rs.length || member == 0) revert DisputeNotMember(s.offer.portfolio, member);
            DeliveryMeter.MemberReading memory m = rs[i];
            c = Counted(m.asset, address(0), m.anchor.oracle, m.sequence, m.importWh, m.exportWh, m.signature);
        }
        c.meter = assets.meterOf(c.asset);
    }

    /// @dev Whom a slash pays: the disputer, unless it is the settled offer's seller or the meter's
    /// owner (made whole by the correction, they must not profit from their own meter's data):
    /// then the buyer of the disputed ISP's first award.
    function _slashedTo(Settlement.Record calldata record, uint64 asset, uint64 ispStart) internal view returns (address) {
        address owner = address(uint160(OfferWord.unwrap(AssetWords.offerWord(assets, asset)))); // the owner: the word's lowest 160 bits
        if (msg.sender != record.seller && msg.sender != owner) return msg.sender;
        uint256 i;
        while (record.lines[i].ispStart != ispStart) ++i;
        return book.request(record.lines[i].requestId).buyer;
    }

    function _net(uint64 importWh, uint64 exportWh) internal pure returns (int256 net) {
        net = int256(uint256(importWh)) - int256(uint256(exportWh));
        if (net > type(int64).max || net < type(int64).min) revert DisputeReadingOutOfRange(importWh, exportWh);
    }
}
