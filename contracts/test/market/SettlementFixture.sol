// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {ClearingFixture} from "./ClearingFixture.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {ClearingCommitment} from "../../src/market/ClearingCommitment.sol";
import {MarketRegistry} from "../../src/market/MarketRegistry.sol";
import {MeterOracle} from "../../src/metering/MeterOracle.sol";
import {DeliveryMeter} from "../../src/metering/DeliveryMeter.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {ReadingDisputes} from "../../src/metering/ReadingDisputes.sol";

/// @notice The OpenZeppelin standard Merkle tree (npm `@openzeppelin/merkle-tree`), rebuilt in
/// Solidity: leaves sorted by value, laid out as a heap in an array (the root at 0, leaf `i` of
/// the sorted list at `length - 1 - i`), pairs hashed with the commutative Keccak-256.
library StandardTree {
    function build(bytes32[] memory leaves) internal pure returns (bytes32[] memory tree) {
        uint256 n = leaves.length;
        bytes32[] memory s = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            s[i] = leaves[i];
            for (uint256 j = i; j > 0 && s[j - 1] > s[j]; --j) {
                (s[j - 1], s[j]) = (s[j], s[j - 1]);
            }
        }
        tree = new bytes32[](2 * n - 1);
        for (uint256 i = 0; i < n; ++i) {
            tree[tree.length - 1 - i] = s[i];
        }
        for (uint256 i = n - 1; i > 0; --i) {
            tree[i - 1] = Hashes.commutativeKeccak256(tree[2 * i - 1], tree[2 * i]);
        }
    }

    /// The proof of `leaf` (siblings from the leaf up), as `getProof` of the npm package.
    function proof(bytes32[] memory tree, bytes32 leaf) internal pure returns (bytes32[] memory p) {
        uint256 j = tree.length - 1;
        while (tree[j] != leaf) {
            --j; // reverts (underflow) if the leaf is not in the tree
        }
        bytes32[] memory up = new bytes32[](64);
        uint256 n;
        while (j > 0) {
            up[n++] = tree[j % 2 == 1 ? j + 1 : j - 1];
            j = (j - 1) / 2;
        }
        p = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            p[i] = up[i];
        }
    }
}

/// The ClearingFixture world with its own book of DAY0 (`buildBook` is overridden), a MeterOracle
/// and a Settlement named by the OrderBook, committed baselines, bonds, a final result per market,
/// and the meters' readings anchored. setUp ends at NOW0 (DAY0 10:00), after every ISP sold.
///
/// Every offer ("sale", index S_*) is of its own asset, behind its own meter whose key is known
/// (`METER_KEY + n`), so that disputes can be signed. Prices are token base units per MWh: PRICE is
/// 1e8 (the module docstring's scale), MAX 2e8. Market `market` is PAY_AS_BID, `market3`
/// PAY_AS_CLEARED (same rules otherwise); `market2`'s one sale (S_M2) is left for a test to commit.
///
/// Figures below: ISP 900 s, tolerance 500 bps, penalty factor 15,000 bps, dispute window 2 days.
abstract contract SettlementFixture is ClearingFixture {
    MeterOracle internal oracle;
    Settlement internal settlement;
    DeliveryMeter internal deliveryMeter;
    ReadingDisputes internal disputes;
    uint32 internal market3; // PAY_AS_CLEARED

    address internal constant ORACLE1 = address(0x0A1);
    bytes32 internal constant ORACLE_ROLE = keccak256("ORACLE");
    uint256 internal constant METER_KEY = 0x3E7E7E00; // the meter of the n-th asset made here: METER_KEY + n
    uint256 internal constant PRICE = 100_000_000;
    uint256 internal constant MAX = 200_000_000;
    uint256 internal constant TSO_MAX_PRICE = 300_000_000;
    uint64 internal constant H8 = DAY0 + 8 hours;
    uint64 internal constant H9 = DAY0 + 9 hours;
    uint64 internal constant NOW0 = DAY0 + 10 hours; // setUp ends here
    uint64 internal constant DISPUTE = 2 days; // the markets' dispute window
    uint64 internal constant WINDOW_CLOSES = DAY0 + 1 days + DISPUTE; // DAY0's last second to settle
    uint256 internal constant OWNER_BOND = 1_000_000;
    uint256 internal constant OWNER2_BOND = 20_000;
    uint256 internal constant DEEP = 20; // the depth of the reading proofs of ISP 09:00

    // Requests (ids in posting order), ACTIVATION unless said.
    uint64 internal constant R_UP = 1; // DSO1, zone 2, 08:00 x1, UP, 40 kW, MAX: escrow 2,000,000
    uint64 internal constant R_TSO1 = 2; // TSO, zone 1, 08:00 x1, UP, 10 kW, TSO_MAX_PRICE: escrow 750,000
    uint64 internal constant R_DOWN1 = 3; // DSO1, zone 5, 08:00 x1, DOWN, 10 kW, MAX: escrow 500,000
    uint64 internal constant R_BLOCK = 4; // DSO1, zone 2, 08:00 x3, UP, 10 kW, MAX: escrow 1,500,000
    uint64 internal constant R_AVAIL = 5; // DSO1, zone 2, 08:00 x1, UP, 10 kW, MAX, AVAILABILITY: escrow 500,000
    uint64 internal constant R_SMALL3 = 6; // DSO2, zone 3, 08:00 x1, UP, 3 kW, PRICE: escrow 75,000
    uint64 internal constant R_GAS = 7; // DSO1, zone 2, 09:00 x1, UP, 10 kW, MAX
    uint64 internal constant R_M2 = 8; // DSO1, market2, zone 2, 08:00 x1, UP, 10 kW, MAX
    uint64 internal constant R_PC = 9; // DSO1, market3, zone 2, 08:00 x1, UP, 20 kW, MAX: escrow 1,000,000
    uint64 internal constant R_IDLE = 10; // buyer, zone 6, 08:00 x1, UP, 10 kW, MAX: nothing awarded

    // Sales (offers of owner's assets in feeder 5, UP, 08:00 x1, DIVISIBLE, at PRICE, unless said),
    // their awards, committed baseline B and anchored reading M (net Wh), and what they settle to.
    uint256 internal constant S_FULL = 0; // 5 kW to R_UP; B 2000, M 750: delivered 1250 Wh = awarded; claim 125,000
    uint256 internal constant S_SHORT = 1; // 8 kW to R_UP; B 3000, M 1400: 80 %; payment 160,000, penalty 45,000
    uint256 internal constant S_FAIL = 2; // owner2's, 8 kW to R_UP; B 1000, M 0: 50 %; payment 100,000, penalty 135,000
    uint256 internal constant S_OVER = 3; // 4 kW to R_UP; B 500, M -2500: 3000 Wh for 1000 awarded; payment 100,000
    uint256 internal constant S_DOWN = 4; // DOWN, 6 kW at 1.2e8 to R_DOWN1; B 500, M 2000: full; payment 180,000
    uint256 internal constant S_BLOCK = 5; // 08:00 x3, 4 kW to R_BLOCK; B 1500 x3, M 500, 800, 0: 100 %, 70 %, 300 %
    uint256 internal constant S_SPLIT = 6; // 6 kW: 4 kW to R_UP, 2 kW to R_TSO1; B 1200, M 0: 80 % shared pro rata
    uint256 internal constant S_AVAIL = 7; // 5 kW to R_AVAIL; B 0, M 0: capacity paid 125,000
    uint256 internal constant S_DISP = 8; // 5 kW to R_UP; B 2000, anchored M 2000 (penalty 178,125); the meter signed 750
    uint256 internal constant S_DISP2 = 9; // 08:00 x2, 4 kW to R_BLOCK; B 1000 x2, anchored M 1000 x2; the meter signed 0 x2
    uint256 internal constant S_DUP = 10; // zone 3, 6 kW: 3 kW to R_SMALL3, 3 kW to R_TSO1; B 1500, M 0: full
    uint256 internal constant S_GAS = 11; // 09:00, 5 kW to R_GAS; B 2000, M 750 (reading proofs of depth DEEP)
    uint256 internal constant S_M2 = 12; // market2, S_FULL's asset, 5 kW to R_M2 (not committed by setUp); B 2000
    uint256 internal constant S_PC1 = 13; // market3, 5 kW at 8e7 to R_PC; B 2000, M 750; paid the cleared 1e8
    uint256 internal constant S_PC2 = 14; // market3, 8 kW to R_PC; B 3000, M 1400 (as S_SHORT)

    /// One meter reading (an anchored leaf, or what the meter signed).
    struct Rd {
        address meter;
        uint64 sequence;
        uint64 importWh;
        uint64 exportWh;
    }

    struct Sale {
        uint256 listed; // index in `listed` (set when relayed)
        uint32 marketId;
        uint64 assetId;
        uint256 meterKey;
        uint256 sellerKey;
        bytes32 salt;
        int64[] baseline;
    }

    /// What `addSale` makes an offer of.
    struct Terms {
        uint256 sellerKey;
        uint32 zone;
        uint64 assetId; // 0: a new asset (with a new keyed meter) in `zone`
        uint32 marketId;
        uint64 start;
        uint16 isps;
        uint8 direction;
        uint32 powerW;
        uint96 price;
    }

    Sale[] internal sales;
    mapping(uint256 sale => OrderBook.Offer) internal saleOffer;
    mapping(uint256 sale => Aw[]) internal saleAwards;
    mapping(uint64 assetId => uint256) internal meterKeyOf;
    mapping(address meter => uint256) internal keyOfMeter;
    /// The readings an oracle anchors, per `market << 64 | ispStart`, and the anchors.
    mapping(uint256 key => Rd[]) internal anchoredReadings;
    mapping(uint256 key => MeterOracle.Anchor) internal anchors;
    uint256[] internal anchorKeys;
    /// What each meter signed for an ISP: `keccak256(meter, ispStart)`.
    mapping(bytes32 key => Rd) internal signedReadings;
    /// The final result of each market's DAY0 (0 if none).
    mapping(uint32 marketId => uint64) internal resultOf;
    /// The siblings of the one reading of ISP 09:00 of `market`: its proof (the root is built up from them).
    bytes32[] internal deepSiblings;
    uint256 internal deepKey;
    uint256 private _keyedMeters;

    function setUp() public virtual override {
        super.setUp(); // buildBook below, then the clock at the gate closure + 1
        oracle = new MeterOracle(roles, markets, IERC20(address(token)));
        grant(ORACLE1, ORACLE_ROLE);
        deliveryMeter = new DeliveryMeter(markets, assets, oracle);
        settlement = new Settlement(markets, book, clearing, oracle, assets, deliveryMeter);
        disputes = new ReadingDisputes(markets, book, assets, oracle, settlement);
        vm.startPrank(ADMIN);
        book.setSettlement(address(settlement));
        oracle.setDisputes(address(disputes));
        vm.stopPrank();
        commitResult(market);
        commitResult(market3);
        vm.warp(DAY0 + 2); // the challenge windows (an hour from the gate closure + 1) are over
        clearing.finalise(market, DAY0);
        clearing.finalise(market3, DAY0);
        vm.warp(NOW0);
        for (uint256 i = 0; i < anchorKeys.length; ++i) {
            anchorKey(anchorKeys[i]);
        }
    }

    // ------------------------------------------------------------------------------- the book

    function buildBook() internal virtual override {
        vm.prank(ADMIN);
        market3 = markets.createMarket(clearedParams());
        fundAndApprove(owner, 1e12);
        fundAndApprove(owner2, 1e12);

        assertEq(request(DSO1, market, 2, H8, 1, UP, 40_000, MAX, 0), R_UP, "R_UP");
        request(TSO, market, 1, H8, 1, UP, 10_000, TSO_MAX_PRICE, 0);
        request(DSO1, market, 5, H8, 1, DOWN, 10_000, MAX, 0);
        request(DSO1, market, 2, H8, 3, UP, 10_000, MAX, 0);
        request(DSO1, market, 2, H8, 1, UP, 10_000, MAX, uint8(OrderBook.Product.AVAILABILITY));
        request(DSO2, market, 3, H8, 1, UP, 3_000, PRICE, 0);
        request(DSO1, market, 2, H9, 1, UP, 10_000, MAX, 0);
        request(DSO1, market2, 2, H8, 1, UP, 10_000, MAX, 0);
        request(DSO1, market3, 2, H8, 1, UP, 20_000, MAX, 0);
        assertEq(request(buyer, market, 6, H8, 1, UP, 10_000, MAX, 0), R_IDLE, "R_IDLE");

        uint256 s;
        s = addSale(terms(5_000), b1(2000));
        award(s, R_UP, 0, 5_000);
        read(s, 0, 750, 0);

        s = addSale(terms(8_000), b1(3000));
        award(s, R_UP, 0, 8_000);
        read(s, 0, 1400, 0);

        Terms memory t = terms(8_000);
        t.sellerKey = OWNER2_KEY;
        s = addSale(t, b1(1000));
        award(s, R_UP, 0, 8_000);
        read(s, 0, 0, 0);

        s = addSale(terms(4_000), b1(500));
        award(s, R_UP, 0, 4_000);
        read(s, 0, 0, 2500);

        t = terms(6_000);
        (t.direction, t.price) = (DOWN, 120_000_000);
        s = addSale(t, b1(500));
        award(s, R_DOWN1, 0, 6_000);
        read(s, 0, 2000, 0);

        t = terms(4_000);
        t.isps = 3;
        s = addSale(t, b3(1500, 1500, 1500));
        for (uint16 i = 0; i < 3; ++i) {
            award(s, R_BLOCK, i, 4_000);
        }
        read(s, 0, 500, 0);
        read(s, 1, 800, 0);
        read(s, 2, 0, 0);

        s = addSale(terms(6_000), b1(1200));
        award(s, R_UP, 0, 4_000);
        award(s, R_TSO1, 0, 2_000);
        read(s, 0, 0, 0);

        s = addSale(terms(5_000), b1(0));
        award(s, R_AVAIL, 0, 5_000);
        read(s, 0, 0, 0);

        s = addSale(terms(5_000), b1(2000));
        award(s, R_UP, 0, 5_000);
        misread(s, 0, 750, 0, 2000, 0);

        t = terms(4_000);
        t.isps = 2;
        s = addSale(t, b2(1000, 1000));
        award(s, R_BLOCK, 0, 4_000);
        award(s, R_BLOCK, 1, 4_000);
        misread(s, 0, 0, 0, 1000, 0);
        misread(s, 1, 0, 0, 1000, 0);

        t = terms(6_000);
        t.zone = 3;
        s = addSale(t, b1(1500));
        award(s, R_SMALL3, 0, 3_000);
        award(s, R_TSO1, 0, 3_000);
        read(s, 0, 0, 0);

        t = terms(5_000);
        t.start = H9;
        s = addSale(t, b1(2000));
        award(s, R_GAS, 0, 5_000);
        read(s, 0, 750, 0);
        deepKey = keyOf(market, H9);

        t = terms(5_000);
        t.marketId = market2; // its own asset: S_FULL's is bound to `market`
        s = addSale(t, b1(2000));
        award(s, R_M2, 0, 5_000);
        read(s, 0, 750, 0);

        t = terms(5_000);
        (t.marketId, t.price) = (market3, 80_000_000);
        s = addSale(t, b1(2000));
        award(s, R_PC, 0, 5_000);
        read(s, 0, 750, 0);

        t = terms(8_000);
        t.marketId = market3;
        assertEq(s = addSale(t, b1(3000)), S_PC2, "S_PC2");
        award(s, R_PC, 0, 8_000);
        read(s, 0, 1400, 0);

        vm.prank(owner);
        book.postBond(owner, OWNER_BOND);
        vm.prank(owner2);
        book.postBond(owner2, OWNER2_BOND);
        moreSales();
        relaySales(0, sales.length);
    }

    /// The sellers post the bonds of `buildBook` (its figures), before they offer.
    function bondSellers() internal virtual override {}

    /// Sales a test contract adds to the book before it is relayed (none here).
    function moreSales() internal virtual {}

    function clearedParams() internal pure returns (MarketRegistry.MarketParams memory p) {
        p = marketParams(ISP, 0);
        p.pricingRule = MarketRegistry.PricingRule.PAY_AS_CLEARED;
    }

    /// owner's new asset in feeder 5, `market`, UP, 08:00 x1, at PRICE.
    function terms(uint32 powerW) internal view returns (Terms memory) {
        return Terms({
            sellerKey: OWNER_KEY,
            zone: 5,
            assetId: 0,
            marketId: market,
            start: H8,
            isps: 1,
            direction: UP,
            powerW: powerW,
            price: uint96(PRICE)
        });
    }

    function b1(int64 a) internal pure returns (int64[] memory b) {
        b = new int64[](1);
        b[0] = a;
    }

    function b2(int64 a, int64 c) internal pure returns (int64[] memory b) {
        b = new int64[](2);
        (b[0], b[1]) = (a, c);
    }

    function b3(int64 a, int64 c, int64 d) internal pure returns (int64[] memory b) {
        b = new int64[](3);
        (b[0], b[1], b[2]) = (a, c, d);
    }

    /// A keyed meter, METER credential, and an asset of `sellerKey`'s owner behind it in `zoneId`.
    function newKeyedAsset(uint256 sellerKey, uint32 zoneId) internal returns (uint64 id, uint256 meterKey) {
        meterKey = METER_KEY + ++_keyedMeters;
        address meter = keyedMeter(meterKey);
        grant(meter, METER_ROLE);
        id = registerAndMap(vm.addr(sellerKey), meter, zoneId);
        meterKeyOf[id] = meterKey;
        keyOfMeter[meter] = meterKey;
    }

    /// A sale: the offer (COMMITTED baseline `baseline`, salted), kept until `relaySales`.
    function addSale(Terms memory t, int64[] memory baseline) internal returns (uint256 id) {
        uint64 assetId = t.assetId;
        if (assetId == 0) {
            bindMarket = t.marketId; // an asset sells in one market (AssetRegistry.marketFor)
            (assetId,) = newKeyedAsset(t.sellerKey, t.zone);
            bindMarket = 0;
        }
        id = sales.length;
        Sale storage x = sales.push();
        (x.marketId, x.assetId, x.meterKey, x.sellerKey) = (t.marketId, assetId, meterKeyOf[assetId], t.sellerKey);
        x.salt = keccak256(abi.encode("salt", id));
        x.baseline = baseline;
        OrderBook.Offer memory o = offer(assetId, t.start, t.isps, t.powerW, t.price);
        (o.market, o.direction) = (t.marketId, t.direction);
        (o.baselineMethod, o.baseline) = (COMMITTED, commitment(assetId, t.start, baseline, x.salt));
        saleOffer[id] = o;
    }

    /// `offer.baseline` of a COMMITTED baseline.
    function commitment(uint64 assetId, uint64 start, int64[] memory netWh, bytes32 salt)
        internal
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(assetId, start, netWh, salt));
    }

    function award(uint256 sale, uint64 requestId, uint16 isp, uint32 powerW) internal {
        saleAwards[sale].push(aw(requestId, isp, powerW));
    }

    /// The meter signed and the oracle anchored the same reading for ISP `isp` of the sale's window.
    function read(uint256 sale, uint16 isp, uint64 importWh, uint64 exportWh) internal {
        misread(sale, isp, importWh, exportWh, importWh, exportWh);
    }

    /// The meter signed one reading, the oracle anchored another (sequence 1 both).
    function misread(uint256 sale, uint16 isp, uint64 signedImport, uint64 signedExport, uint64 anchoredImport, uint64 anchoredExport)
        internal
    {
        Sale storage x = sales[sale];
        address meter = vm.addr(x.meterKey);
        uint64 ispStart = saleOffer[sale].start + uint64(isp) * ISP;
        uint256 key = keyOf(x.marketId, ispStart);
        if (anchoredReadings[key].length == 0) anchorKeys.push(key);
        anchoredReadings[key].push(Rd(meter, 1, anchoredImport, anchoredExport));
        signedReadings[keccak256(abi.encode(meter, ispStart))] = Rd(meter, 1, signedImport, signedExport);
    }

    function keyOf(uint32 marketId, uint64 ispStart) internal pure returns (uint256) {
        return uint256(marketId) << 64 | ispStart;
    }

    /// Relay sales [from, to) in one strict batch (the aggregator relays, each seller signed).
    function relaySales(uint256 from, uint256 to) internal {
        uint256 n = to - from;
        OrderBook.Offer[] memory os = new OrderBook.Offer[](n);
        bytes[] memory sigs = new bytes[](n);
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            os[i] = saleOffer[from + i];
            sigs[i] = sign(sales[from + i].sellerKey, os[i]);
            leaves[i] = book.offerDigest(os[i]);
        }
        vm.prank(aggregator);
        assertEq(submit(book, os, sigs, true), n, "every sale accepted");
        uint256 b = batchLeaves.length;
        batchLeaves.push(leaves);
        for (uint256 i = 0; i < n; ++i) {
            sales[from + i].listed = listed.length;
            listed.push(Listed({offer: os[i], batch: b, leaf: i, digest: leaves[i]}));
        }
    }

    // ------------------------------------------------------------------- results and readings

    /// The awarded offers of `marketId`'s DAY0, as groups (unsorted).
    /// The awarded sales of a market, as groups (a sale never awarded is in the book only).
    function groupsOf(uint32 marketId) internal view returns (Grp[] memory gs) {
        uint256 n;
        for (uint256 i = 0; i < sales.length; ++i) {
            if (sales[i].marketId == marketId && saleAwards[i].length != 0) ++n;
        }
        gs = new Grp[](n);
        n = 0;
        for (uint256 i = 0; i < sales.length; ++i) {
            if (sales[i].marketId == marketId && saleAwards[i].length != 0) gs[n++] = group(sales[i].listed, saleAwards[i]);
        }
    }

    /// A sale whose awards `market`'s result first tries to hold, then drops (set by a test's
    /// `moreSales`), and the revert data of that attempt: a defence shown at the commitment.
    uint256 internal refusedSale = type(uint256).max;
    bytes internal refusal;

    /// Open, post (one chunk) and close `marketId`'s result of DAY0 as OPERATOR.
    function commitResult(uint32 marketId) internal virtual returns (uint64 id) {
        if (marketId == market && refusedSale != type(uint256).max) {
            id = openIn(OPERATOR, marketId);
            Grp[] memory gs = sorted(groupsOf(marketId));
            vm.prank(OPERATOR);
            (, refusal) = address(clearing).call(abi.encodeCall(ClearingCommitment.post, (id, rootsOf(gs), wire(gs))));
            delete saleAwards[refusedSale];
        }
        id = openIn(OPERATOR, marketId);
        postAs(OPERATOR, id, sorted(groupsOf(marketId)));
        closeAs(OPERATOR, id);
        resultOf[marketId] = id;
    }

    function leavesOf(Rd[] storage rs, uint64 ispStart) internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](rs.length);
        for (uint256 i = 0; i < rs.length; ++i) {
            leaves[i] = oracle.readingLeaf(
                rs[i].meter, ispStart, rs[i].sequence, rs[i].importWh, rs[i].exportWh, keccak256(anchoredSignature(rs[i], ispStart))
            );
        }
    }

    /// The signature the oracle keeps (and commits in the leaf) with an anchored reading: the
    /// meter's over what it signed for the ISP; over other values than anchored after a `misread`
    /// (the oracle's error), none for a meter whose key is unknown here.
    function anchoredSignature(Rd memory a, uint64 ispStart) internal view returns (bytes memory) {
        uint256 k = keyOfMeter[a.meter];
        if (k == 0) return "";
        Rd memory signed_ = signedReadings[keccak256(abi.encode(a.meter, ispStart))];
        if (signed_.meter == address(0)) signed_ = a;
        return signReading(k, signed_, ispStart);
    }

    /// `reading` for the ISP starting at `ispStart`, signed by `key` (MeterOracle's EIP-712 domain).
    function signReading(uint256 key, Rd memory reading, uint64 ispStart) internal view returns (bytes memory) {
        bytes32 digest =
            oracle.readingDigest(reading.meter, ispStart, reading.sequence, reading.importWh, reading.exportWh);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// ORACLE1 anchors the readings kept under `key` (ISP 09:00 of `market`: a root DEEP levels up).
    function anchorKey(uint256 key) internal {
        uint32 marketId = uint32(key >> 64);
        uint64 ispStart = uint64(key);
        bytes32[] memory leaves = leavesOf(anchoredReadings[key], ispStart);
        bytes32 root;
        bytes32[] memory tree = StandardTree.build(leaves);
        root = tree[0];
        if (key == deepKey) {
            // a tree of 2^k readings lifted DEEP - k levels up (as deep as a million meters' root)
            uint256 depth = StandardTree.proof(tree, leaves[0]).length;
            require(leaves.length == 1 << depth, "a full tree of readings under the deep root");
            for (uint256 i = depth; i < DEEP; ++i) {
                bytes32 sibling = keccak256(abi.encode("sibling", i));
                deepSiblings.push(sibling);
                root = Hashes.commutativeKeccak256(root, sibling);
            }
        }
        vm.prank(ORACLE1);
        oracle.anchorRoot(marketId, ispStart, root, uint32(leaves.length));
        anchors[key] = MeterOracle.Anchor({
            root: root,
            oracle: ORACLE1,
            leafCount: uint32(leaves.length),
            anchoredAt: uint64(block.timestamp)
        });
    }

    /// The anchored reading of the sale's meter for ISP `isp` of its window, with its proof.
    function readingIn(uint256 sale, uint16 isp) internal view returns (Settlement.ReadingIn memory r) {
        Sale storage x = sales[sale];
        address meter = vm.addr(x.meterKey);
        uint64 ispStart = saleOffer[sale].start + uint64(isp) * ISP;
        uint256 key = keyOf(x.marketId, ispStart);
        Rd[] storage rs = anchoredReadings[key];
        uint256 i;
        while (rs[i].meter != meter) ++i;
        (r.anchor, r.sequence, r.importWh, r.exportWh) = (anchors[key], rs[i].sequence, rs[i].importWh, rs[i].exportWh);
        r.signature = anchoredSignature(rs[i], ispStart);
        bytes32[] memory leaves = leavesOf(rs, ispStart);
        r.proof = StandardTree.proof(StandardTree.build(leaves), leaves[i]);
        if (key == deepKey) r.proof = concat(r.proof, deepSiblings);
    }

    function concat(bytes32[] memory a, bytes32[] memory b) internal pure returns (bytes32[] memory c) {
        c = new bytes32[](a.length + b.length);
        for (uint256 i = 0; i < a.length; ++i) {
            c[i] = a[i];
        }
        for (uint256 i = 0; i < b.length; ++i) {
            c[a.length + i] = b[i];
        }
    }

    /// Everything that settles a sale: its offer, baseline and salt, and per awarded ISP (in
    /// order) the anchored reading and every award with its proof under the result's chunk.
    function settleIn(uint256 sale) internal view returns (Settlement.SettleIn memory s) {
        Sale storage x = sales[sale];
        s.resultId = resultOf[x.marketId];
        s.offer = saleOffer[sale];
        s.baselineWh = x.baseline;
        s.salt = x.salt;
        Grp[] memory gs = sorted(groupsOf(x.marketId));
        uint256 g;
        while (book.offerDigest(gs[g].offer) != listed[x.listed].digest) ++g;
        uint256 n;
        for (uint16 t = 0; t < s.offer.isps; ++t) {
            if (levelOf(gs[g], t) != 0) ++n;
        }
        s.isps = new Settlement.IspIn[](n);
        n = 0;
        for (uint16 t = 0; t < s.offer.isps; ++t) {
            if (levelOf(gs[g], t) == 0) continue;
            if (s.offer.portfolio == 0) s.isps[n].reading = readingIn(sale, t); // a portfolio's: its members'
            s.isps[n].awards = awardsIn(gs, g, t);
            ++n;
        }
    }

    /// The awards of group `g` in ISP `t` of its window, with their proofs.
    function awardsIn(Grp[] memory gs, uint256 g, uint16 t)
        internal
        view
        returns (ClearingCommitment.AwardProof[] memory a)
    {
        uint256 n;
        for (uint256 k = 0; k < gs[g].awards.length; ++k) {
            if (gs[g].awards[k].isp == t) ++n;
        }
        a = new ClearingCommitment.AwardProof[](n);
        n = 0;
        for (uint256 k = 0; k < gs[g].awards.length; ++k) {
            if (gs[g].awards[k].isp == t) a[n++] = awardProof(gs, 0, g, k);
        }
    }

    function settleSale(uint256 sale) internal returns (Settlement.Record memory) {
        return settlement.settle(settleIn(sale));
    }

    /// The reading the sale's meter signed for ISP `isp` of the settlement's inputs, as a dispute.
    function disputeIn(uint256 sale, uint16 isp) internal view returns (ReadingDisputes.DisputeIn memory) {
        address meter = vm.addr(sales[sale].meterKey);
        Rd memory r = signedReadings[keccak256(abi.encode(meter, saleOffer[sale].start + uint64(isp) * ISP))];
        return signedDispute(sale, isp, r.sequence, r.importWh, r.exportWh, sales[sale].meterKey);
    }

    /// A dispute of ISP `isp` with a reading signed by `key`.
    function signedDispute(uint256 sale, uint16 isp, uint64 sequence, uint64 importWh, uint64 exportWh, uint256 key)
        internal
        view
        returns (ReadingDisputes.DisputeIn memory)
    {
        return disputeWith(sale, isp, Rd(vm.addr(sales[sale].meterKey), sequence, importWh, exportWh), 0, key);
    }

    /// A dispute of ISP `isp` with `reading` (of its meter, for `member` of a portfolio; 0 for an
    /// asset), signed by `key`.
    function disputeWith(uint256 sale, uint16 isp, Rd memory reading, uint64 member, uint256 key)
        internal
        view
        returns (ReadingDisputes.DisputeIn memory d)
    {
        uint64 ispStart = saleOffer[sale].start + uint64(isp) * ISP;
        d = ReadingDisputes.DisputeIn({
            isp: isp,
            sequence: reading.sequence,
            importWh: reading.importWh,
            exportWh: reading.exportWh,
            signature: signReading(key, reading, ispStart),
            member: member
        });
    }

    function digestOfSale(uint256 sale) internal view returns (bytes32) {
        return listed[sales[sale].listed].digest;
    }

    function recordKey(uint256 sale) internal view returns (bytes32) {
        return keccak256(abi.encode(resultOf[sales[sale].marketId], digestOfSale(sale)));
    }

    function sellerOf(uint256 sale) internal view returns (address) {
        return vm.addr(sales[sale].sellerKey);
    }

    // ---------------------------------------------------------------------------------- money

    function escrowOf(uint64 requestId) internal view returns (uint256) {
        OrderBook.Request memory q = book.request(requestId);
        return book.maxExposure(q.powerW, q.isps, ISP, q.maxPrice);
    }

    /// Everyone who may hold the token.
    function parties() internal view returns (address[] memory p) {
        p = new address[](8);
        (p[0], p[1], p[2], p[3]) = (DSO1, DSO2, TSO, buyer);
        (p[4], p[5], p[6], p[7]) = (owner, owner2, owner3, aggregator);
    }

    /// The book and the settlement hold exactly the open escrows' rest, the unpaid claims and the
    /// bonds; and every token is with them or a party (none created, none lost).
    function checkMoney() internal view {
        uint256 held = token.balanceOf(address(book)) + token.balanceOf(address(settlement));
        uint256 owed;
        for (uint64 r = 1; r <= book.requestCount(); ++r) {
            owed += book.escrowLeft(r);
        }
        address[] memory p = parties();
        uint256 total = held;
        for (uint256 i = 0; i < p.length; ++i) {
            owed += settlement.claimable(p[i]) + book.bondOf(p[i]);
            total += token.balanceOf(p[i]);
        }
        assertEq(held, owed, "book + settlement hold escrows left + claims + bonds");
        assertEq(total, token.totalSupply(), "every token is with the contracts or a party");
    }

    function assertLine(Settlement.Line memory l, uint64 requestId, uint64 ispStart, uint256 payment, uint256 claim, uint256 uncovered)
        internal
        pure
    {
        assertEq(l.requestId, requestId, "line: request");
        assertEq(l.ispStart, ispStart, "line: ISP");
        assertEq(l.payment, payment, "line: payment");
        assertEq(l.claim, claim, "line: claim");
        assertEq(l.uncovered, uncovered, "line: uncovered penalty");
    }

    /// Intrinsic gas of a transaction carrying `data` (21,000 + 16 per non-zero byte + 4 per zero byte).
    function intrinsicGas(bytes memory data) internal pure returns (uint256 gas) {
        gas = 21_000;
        for (uint256 i = 0; i < data.length; ++i) {
            gas += data[i] == 0 ? 4 : 16;
        }
    }

    /// Every contract a settlement call touches made cold again (as in a transaction of its own).
    function cool() internal {
        address[9] memory touched = [
            address(settlement), address(book), address(clearing), address(oracle),
            address(assets), address(markets), address(token), address(roles), address(deliveryMeter)
        ];
        for (uint256 i = 0; i < touched.length; ++i) {
            vm.cool(touched[i]);
        }
    }

    function logGas(string memory what, bytes memory data, uint256 per) internal {
        uint256 execution = vm.lastCallGas().gasTotalUsed;
        emit log_named_uint(string.concat(what, ": execution gas (lastCallGas)"), execution / per);
        emit log_named_uint(string.concat(what, ": transaction gas (+ intrinsic)"), (execution + intrinsicGas(data)) / per);
    }
}
