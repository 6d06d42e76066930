// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SettlementFixture} from "./SettlementFixture.sol";
import {ClearingFixture} from "./ClearingFixture.sol";
import {StandardTree} from "./SettlementFixture.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {ClearingCommitment} from "../../src/market/ClearingCommitment.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {MeterOracle} from "../../src/metering/MeterOracle.sol";
import {DeliveryMeter} from "../../src/metering/DeliveryMeter.sol";
import {ReadingDisputes} from "../../src/metering/ReadingDisputes.sol";
import {BondWord} from "../../src/market/BondWord.sol";

/// The fuzzer's entry points: each forwards to the test's action of the same name and counts
/// what the contracts accepted and what they refused (a refusal is fine: fail_on_revert is off).
contract MoneySafetyFlowHandler {
    MoneySafetyFlowInvariantTest internal immutable world;

    uint256 internal constant OFFER = 0;
    uint256 internal constant CLEAR = 1;
    uint256 internal constant SUPERSEDE = 2;
    uint256 internal constant SETTLE = 3;
    uint256 internal constant DISPUTE = 4;
    uint256 internal constant FINALISE = 5;
    uint256 internal constant WITHDRAW = 6;

    mapping(uint256 action => uint256) public accepted;
    mapping(uint256 action => uint256) public refused;

    constructor(MoneySafetyFlowInvariantTest w) {
        world = w;
    }

    function offer(uint256 seed) external {
        _count(OFFER, abi.encodeCall(MoneySafetyFlowInvariantTest.actOffer, (seed)));
    }

    function clear(uint256 seed) external {
        _count(CLEAR, abi.encodeCall(MoneySafetyFlowInvariantTest.actClear, (seed)));
    }

    function supersede(uint256 seed) external {
        _count(SUPERSEDE, abi.encodeCall(MoneySafetyFlowInvariantTest.actSupersede, (seed)));
    }

    function settle(uint256 seed) external {
        _count(SETTLE, abi.encodeCall(MoneySafetyFlowInvariantTest.actSettle, (seed)));
    }

    function dispute(uint256 seed) external {
        _count(DISPUTE, abi.encodeCall(MoneySafetyFlowInvariantTest.actDispute, (seed)));
    }

    function finalise(uint256 seed) external {
        _count(FINALISE, abi.encodeCall(MoneySafetyFlowInvariantTest.actFinalise, (seed)));
    }

    function withdraw(uint256 seed) external {
        _count(WITHDRAW, abi.encodeCall(MoneySafetyFlowInvariantTest.actWithdraw, (seed)));
    }

    function wait(uint256 seed) external {
        world.actWait(seed);
    }

    function _count(uint256 action, bytes memory call) internal {
        (bool ok, bytes memory out) = address(world).call(call);
        if (ok && abi.decode(out, (bool))) ++accepted[action];
        else if (!ok) ++refused[action];
    }
}

/// DESIGN "Money safety" over the whole money path, driven at random: sellers post signed offers
/// (assets and a portfolio, overlapping windows of one asset, into the wrong market too: refused),
/// the clearing operator commits results with awards drawn at random from the book (most are
/// refused), challengers post better ones or void a result that awarded a superseded offer, the
/// oracle anchors random meter readings (zero, short, full and over-delivery; a quarter of them
/// not what the meter signed), and anyone settles (by default once the window is over), disputes
/// with what the meters signed, finalises and withdraws.
///
/// The world: `market` (PAY_AS_BID) and `market2` (the same rules), DAY0 08:00 x3 (ISPs T0-T2).
/// Assets in feeder 5: A (owner) and B (owner2) bound to `market`, C (owner) bound to `market2`,
/// and portfolio P of `aggregator` in `market` of members M1 (owner) and M2 (owner2); each asset
/// prequalified UP_W up and DOWN_W down. Requests: R1 DSO1 zone 2 UP 30 kW, R2 TSO zone 1 UP 20 kW
/// at TSO_MAX_PRICE, R3 DSO1 zone 5 DOWN 10 kW, R4 DSO1 zone 2 UP 10 kW AVAILABILITY, R5 DSO1
/// `market2` zone 2 UP 20 kW; each 08:00 x3.
///
/// (i) A meter is counted once per ISP: across both markets and every final result, at most one
/// settled offer (of its asset, or of a portfolio holding it) has lines in that ISP; and that
/// offer's ACTIVATION payments in the ISP are at most
///     floor(min(prequalified W x ISP s, deliveredWs) x price / 3.6e9)
/// with deliveredWs = max(0, sign x (baseline Wh - net Wh)) x 3600, net the meter's (or the
/// portfolio members' summed) anchored reading, or what the meter signed once a dispute
/// corrected it, and price the award's: both markets pay as bid, so the offer's price, which is
/// at most the highest request maximum (Settlement `_compute`/`awardMoney`: each award is paid
/// min(its pro-rata share of the offer's delivery, its energy) x price, rounded down, and the
/// offer's awards in an ISP add up to at most its power, at most the prequalified power).
/// AVAILABILITY awards are paid for capacity, not delivery: at most prequalified W x ISP s x price.
/// (ii) the oracle is marked at most once per (market, ISP, meter) it misread; (iii) a seller's
/// locked bond covers min(bond, the uncovered penalties of its settlements not yet final).
contract MoneySafetyFlowInvariantTest is SettlementFixture {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    uint64 internal constant T0 = DAY0 + 8 hours;
    uint16 internal constant ISPS = 3;
    uint64 internal constant R1 = 1;
    uint64 internal constant R2 = 2;
    uint64 internal constant R3 = 3;
    uint64 internal constant R4_AVAIL = 4;
    uint64 internal constant R5 = 5; // market2's
    uint256 internal constant AGG_BOND = 300_000;

    MoneySafetyFlowHandler internal handler;
    uint64 internal assetA;
    uint64 internal assetB;
    uint64 internal assetC; // bound to market2
    uint64 internal m1;
    uint64 internal m2;
    uint32 internal portfolio;
    uint32 internal portfolioNonce;
    uint64 internal bookTime; // when the book was built: the handler's offers come after it

    bool internal delivered; // the readings are anchored (and the days finalised where they could be)
    uint256 internal distinctMisreads; // (market, ISP, meter) anchored other than the meter signed
    mapping(bytes32 key => bool) internal corrected; // (market, ISP, meter) a dispute corrected
    mapping(uint64 assetId => address) internal meterAddr;
    // kept at anchoring, by keccak256(meter, ispStart): the meter's signature and the anchored leaf;
    // by keyOf(market, ispStart): the tree (proofs are cut from it, not rebuilt)
    mapping(bytes32 at => bytes) internal signatureAt;
    mapping(bytes32 at => bytes32) internal leafAt;
    mapping(uint256 key => bytes32[]) internal treeAt;

    // settled offers
    uint256[] internal recSale;
    bytes[] internal recInput; // abi.encode(SettleIn)
    bytes[] internal recRecord; // abi.encode(Record)
    bool[] internal recFinal;
    mapping(uint256 sale => bool) internal isSettled;
    mapping(address account => uint256) internal withdrawn;

    function setUp() public override {
        ClearingFixture.setUp(); // buildBook below, then the clock at the gate closure + 1
        vm.warp(bookTime); // back to the book: the handler may still offer before the gate closure
        handler = new MoneySafetyFlowHandler(this);
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory t) {
        bytes4[] memory actions = new bytes4[](8);
        actions[0] = MoneySafetyFlowHandler.offer.selector;
        actions[1] = MoneySafetyFlowHandler.clear.selector;
        actions[2] = MoneySafetyFlowHandler.supersede.selector;
        actions[3] = MoneySafetyFlowHandler.settle.selector;
        actions[4] = MoneySafetyFlowHandler.dispute.selector;
        actions[5] = MoneySafetyFlowHandler.finalise.selector;
        actions[6] = MoneySafetyFlowHandler.withdraw.selector;
        actions[7] = MoneySafetyFlowHandler.wait.selector;
        t = new FuzzSelector[](1);
        t[0] = FuzzSelector({addr: address(handler), selectors: actions});
    }

    // ------------------------------------------------------------------------------- the book

    function buildBook() internal override {
        oracle = new MeterOracle(roles, markets, IERC20(address(token)));
        grant(ORACLE1, ORACLE_ROLE);
        deliveryMeter = new DeliveryMeter(markets, assets, oracle);
        settlement = new Settlement(markets, book, clearing, oracle, assets, deliveryMeter);
        disputes = new ReadingDisputes(markets, book, assets, oracle, settlement);
        vm.startPrank(ADMIN);
        book.setSettlement(address(settlement));
        oracle.setDisputes(address(disputes));
        vm.stopPrank();

        assertEq(request(DSO1, market, 2, T0, ISPS, UP, 30_000, MAX, 0), R1, "R1");
        request(TSO, market, 1, T0, ISPS, UP, 20_000, TSO_MAX_PRICE, 0);
        request(DSO1, market, 5, T0, ISPS, DOWN, 10_000, MAX, 0);
        request(DSO1, market, 2, T0, ISPS, UP, 10_000, MAX, 1);
        assertEq(request(DSO1, market2, 2, T0, ISPS, UP, 20_000, MAX, 0), R5, "R5");

        (assetA,) = newKeyedAsset(OWNER_KEY, 5);
        (assetB,) = newKeyedAsset(OWNER2_KEY, 5);
        bindMarket = market2;
        (assetC,) = newKeyedAsset(OWNER_KEY, 5);
        bindMarket = 0;
        (m1,) = newKeyedAsset(OWNER_KEY, 5);
        (m2,) = newKeyedAsset(OWNER2_KEY, 5);
        portfolio = newPortfolio();
        uint64[5] memory all = [assetA, assetB, assetC, m1, m2];
        for (uint256 i = 0; i < 5; ++i) {
            meterAddr[all[i]] = vm.addr(meterKeyOf[all[i]]);
        }

        address[3] memory sellers = [owner, owner2, aggregator];
        uint256[3] memory bonds = [OWNER_BOND, OWNER2_BOND, AGG_BOND];
        for (uint256 i = 0; i < 3; ++i) {
            fundAndApprove(sellers[i], 1e12);
            vm.prank(sellers[i]);
            book.postBond(sellers[i], bonds[i]);
        }

        // a standing book: A's first offer is superseded by its second (overlapping, newer)
        _sale(OWNER_KEY, assetA, market, T0, 2, UP, 6_000, PRICE, b2(2000, 2000));
        _sale(OWNER_KEY, assetA, market, T0 + ISP, 1, UP, 5_000, PRICE, b1(1500));
        _sale(OWNER2_KEY, assetB, market, T0, 3, UP, 4_000, PRICE, b3(1000, 1000, 1000));
        _sale(OWNER_KEY, assetA, market, T0 + 2 * ISP, 1, DOWN, 4_000, 120_000_000, b1(500));
        _sale(OWNER_KEY, assetC, market2, T0, 1, UP, 5_000, PRICE, b1(2000));
        _portfolioSale(market, T0, 2, UP, 12_000, PRICE, b2(3000, 3000));
        relaySales(0, sales.length);
        bookTime = uint64(block.timestamp);
    }

    function newPortfolio() internal returns (uint32 p) {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        uint64[] memory founders = new uint64[](2);
        (founders[0], founders[1]) = (m1, m2);
        uint256[2] memory keys = [OWNER_KEY, OWNER2_KEY];
        bytes[] memory sigs = new bytes[](2);
        for (uint256 i = 0; i < 2; ++i) {
            bytes32 digest = assets.consentDigest(aggregator, founders[i], assets.consentNonce(founders[i]), deadline);
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[i], digest);
            sigs[i] = abi.encodePacked(r, s, v);
        }
        vm.prank(aggregator);
        p = assets.createPortfolio(5, founders, sigs, deadline);
    }

    function _sale(
        uint256 sellerKey,
        uint64 assetId,
        uint32 marketId,
        uint64 start,
        uint16 isps,
        uint8 direction,
        uint32 powerW,
        uint256 price,
        int64[] memory baseline
    ) internal returns (uint256) {
        return addSale(
            Terms({
                sellerKey: sellerKey,
                zone: 5,
                assetId: assetId,
                marketId: marketId,
                start: start,
                isps: isps,
                direction: direction,
                powerW: powerW,
                price: uint96(price)
            }),
            baseline
        );
    }

    /// A COMMITTED, DIVISIBLE offer of portfolio P (of `market`) in `marketId`, signed by its aggregator.
    function _portfolioSale(uint32 marketId, uint64 start, uint16 isps, uint8 direction, uint32 powerW, uint256 price, int64[] memory baseline)
        internal
        returns (uint256 id)
    {
        id = sales.length;
        Sale storage x = sales.push();
        (x.marketId, x.sellerKey) = (marketId, AGGREGATOR_KEY);
        x.salt = keccak256(abi.encode("portfolio salt", id));
        x.baseline = baseline;
        saleOffer[id] = OrderBook.Offer({
            market: marketId,
            asset: 0,
            portfolio: portfolio,
            start: start,
            isps: isps,
            direction: direction,
            powerW: powerW,
            price: uint96(price),
            mode: DIVISIBLE,
            minPowerW: 0,
            baselineMethod: COMMITTED,
            baseline: commitment(0, start, baseline, x.salt),
            expiry: DAY0,
            nonce: ++portfolioNonce
        });
    }

    // ------------------------------------------------------------------------------- actions

    modifier onlyHandler() {
        require(msg.sender == address(handler), "handler only");
        _;
    }

    function rnd(uint256 seed, uint256 salt) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, salt)));
    }

    /// A seller signs a random offer and the aggregator relays it (strict: a refusal reverts).
    /// Subjects: A, B or P in `market`, C in `market2`, or A in `market2` / C in `market` (refused:
    /// an asset sells in one market); windows inside T0-T2, overlapping earlier ones at will; power
    /// up to a little over the prequalified power, prices up to above the requests' maximum.
    function actOffer(uint256 seed) external onlyHandler returns (bool) {
        uint256 startIndex = rnd(seed, 1) % ISPS;
        uint16 isps = uint16(1 + rnd(seed, 2) % (ISPS - startIndex));
        uint64 start = T0 + uint64(startIndex) * ISP;
        int64[] memory baseline = new int64[](isps);
        for (uint256 i = 0; i < isps; ++i) {
            baseline[i] = [int64(0), 500, 1500, 3000][rnd(seed, 10 + i) % 4];
        }
        uint256 sale = _randomSale(seed, start, isps, baseline);
        if (rnd(seed, 7) % 4 == 0) {
            OrderBook.Offer storage o = saleOffer[sale];
            (o.mode, o.minPowerW) = (ALL_OR_NOTHING, o.powerW);
        }
        relaySales(sale, sale + 1);
        return true;
    }

    function _randomSale(uint256 seed, uint64 start, uint16 isps, int64[] memory baseline) internal returns (uint256) {
        Terms memory t;
        (t.start, t.isps, t.zone) = (start, isps, 5);
        t.direction = rnd(seed, 3) % 4 == 0 ? DOWN : UP;
        t.price = uint96([uint256(50_000_000), PRICE, 150_000_000, 250_000_000][rnd(seed, 4) % 4]);
        // A, B, C, P in their markets; A and P in market2, C in market, M1 alone (all refused)
        uint256 subject = rnd(seed, 5) % 8;
        t.assetId = [assetA, assetB, assetC, 0, assetA, assetC, m1, 0][subject];
        t.marketId = [market, market, market2, market, market2, market, market, market2][subject];
        t.powerW = uint32(500 + rnd(seed, 6) % (t.assetId == 0 ? 2 * UP_W + 1000 : UP_W + 1000));
        if (t.assetId == 0) return _portfolioSale(t.marketId, start, isps, t.direction, t.powerW, t.price, baseline);
        t.sellerKey = subject == 1 ? OWNER2_KEY : OWNER_KEY;
        return addSale(t, baseline);
    }

    /// The clearing operator (after the gate closure) commits a result of `market` or `market2`
    /// whose awards are drawn at random from the book's offers and the market's requests; with a
    /// result in force it is a challenge (it must be better). Mostly one offer per subject and
    /// window, sometimes two overlapping (refused).
    function actClear(uint256 seed) external onlyHandler returns (bool) {
        if (block.timestamp <= CLOSURE) vm.warp(CLOSURE + 1);
        uint32 m = rnd(seed, 1) % 4 == 0 ? market2 : market;
        uint256 n = sales.length;
        for (uint256 i = 0; i < n; ++i) {
            if (sales[i].marketId == m) delete saleAwards[i];
        }
        uint256 first = rnd(seed, 2) % n;
        for (uint256 j = 0; j < n; ++j) {
            uint256 i = (first + j) % n;
            if (sales[i].marketId != m || rnd(seed, 100 + i) % 3 == 0) continue;
            if (_overlapsAwarded(i) && rnd(seed, 200 + i) % 8 != 0) continue;
            _drawAwards(i, rnd(seed, 300 + i));
        }
        commitResult(m);
        vm.warp(block.timestamp + rnd(seed, 3) % 300);
        return true;
    }

    function _overlapsAwarded(uint256 i) internal view returns (bool) {
        OrderBook.Offer storage o = saleOffer[i];
        for (uint256 k = 0; k < sales.length; ++k) {
            if (k == i || saleAwards[k].length == 0) continue;
            OrderBook.Offer storage p = saleOffer[k];
            if (p.market != o.market || p.asset != o.asset || p.portfolio != o.portfolio) continue;
            if (p.start < o.start + uint64(o.isps) * ISP && o.start < p.start + uint64(p.isps) * ISP) return true;
        }
        return false;
    }

    /// Awards for every ISP of sale `i`'s window (a block gets the same power in each): a request
    /// of its direction, now and then any request; now and then the power split over two.
    function _drawAwards(uint256 i, uint256 r) internal {
        OrderBook.Offer storage o = saleOffer[i];
        uint32 power = o.mode == ALL_OR_NOTHING ? o.powerW : uint32(1 + r % o.powerW);
        uint64[5] memory all = [R1, R2, R3, R4_AVAIL, R5];
        uint64 q;
        if (r >> 32 & 7 == 0) q = all[(r >> 40) % 5];
        else if (o.market == market2) q = R5;
        else if (o.direction == DOWN) q = R3;
        else q = [R1, R2, R4_AVAIL][(r >> 40) % 3];
        bool split = power > 1 && q != R1 && o.direction == UP && o.market == market && (r >> 48) % 4 == 0;
        for (uint16 t = 0; t < o.isps; ++t) {
            if (split) {
                award(i, R1, t, power / 2);
                award(i, q, t, power - power / 2);
            } else {
                award(i, q, t, power);
            }
        }
    }

    /// While the challenge window is open, void a result that awarded an offer the book holds a
    /// newer one of (same subject, overlapping window): `ClearingCommitment.proveSuperseded`.
    function actSupersede(uint256 seed) external onlyHandler returns (bool) {
        uint32[2] memory ms = seed % 2 == 0 ? [market, market2] : [market2, market];
        for (uint256 k = 0; k < 2; ++k) {
            if (_supersede(ms[k])) return true;
        }
        return false;
    }

    function _supersede(uint32 m) internal returns (bool) {
        uint64 id = resultOf[m];
        if (id == 0) return false;
        Grp[] memory gs = sorted(groupsOf(m));
        for (uint256 g = 0; g < gs.length; ++g) {
            (bool found, uint256 newer) = _newerOf(gs[g].offer);
            if (!found) continue;
            clearing.proveSuperseded(
                id, awardProof(gs, 0, g, 0), gs[g].offer, listed[newer].offer, rootOf(newer), proofOf(newer)
            );
            resultOf[m] = 0;
            for (uint256 i = 0; i < sales.length; ++i) {
                if (sales[i].marketId == m) delete saleAwards[i];
            }
            return true;
        }
        return false;
    }

    function _newerOf(OrderBook.Offer memory o) internal view returns (bool, uint256) {
        for (uint256 k = 0; k < listed.length; ++k) {
            OrderBook.Offer storage p = listed[k].offer;
            bool overlapping = p.market == o.market && p.asset == o.asset && p.portfolio == o.portfolio
                && p.start < o.start + uint64(o.isps) * ISP && o.start < p.start + uint64(p.isps) * ISP;
            if (overlapping && p.nonce > o.nonce) return (true, k);
        }
        return (false, 0);
    }

    /// Settle an awarded offer of a final result (after the settlement window, by default:
    /// `settleUnrevealed`). The first call delivers the day: the clock goes
    /// to NOW0 (after every ISP), the days whose results can be finalised are, and the oracle
    /// anchors each meter's random reading of each ISP in both markets.
    function actSettle(uint256 seed) external onlyHandler returns (bool) {
        if (!delivered) _deliver(seed);
        uint256 n = sales.length;
        uint256 first = rnd(seed, 1) % n;
        for (uint256 j = 0; j < n; ++j) {
            uint256 i = (first + j) % n;
            if (isSettled[i] || saleAwards[i].length == 0 || resultOf[sales[i].marketId] == 0) continue;
            Settlement.SettleIn memory s = _settleInput(i);
            // after the settlement window nobody revealed it: settled by default, nothing delivered
            Settlement.Record memory r =
                block.timestamp > WINDOW_CLOSES ? settlement.settleUnrevealed(s) : settlement.settle(s);
            isSettled[i] = true;
            recSale.push(i);
            recInput.push(abi.encode(s));
            recRecord.push(abi.encode(r));
            recFinal.push(false);
            return true;
        }
        return false;
    }

    function _deliver(uint256 seed) internal {
        delivered = true;
        if (block.timestamp < NOW0) vm.warp(NOW0);
        uint32[2] memory ms = [market, market2];
        for (uint256 k = 0; k < 2; ++k) {
            try clearing.finalise(ms[k], DAY0) {} catch {}
        }
        uint64[4] memory inMarket = [assetA, assetB, m1, m2];
        for (uint16 t = 0; t < ISPS; ++t) {
            uint64 ispStart = T0 + uint64(t) * ISP;
            bytes32[] memory leaves = new bytes32[](4);
            for (uint256 a = 0; a < 4; ++a) {
                leaves[a] = _reading(market, inMarket[a], ispStart, rnd(seed, 1000 + 10 * t + a));
            }
            _anchor(market, ispStart, leaves);
            leaves = new bytes32[](1);
            leaves[0] = _reading(market2, assetC, ispStart, rnd(seed, 1000 + 10 * t + 4));
            _anchor(market2, ispStart, leaves);
        }
    }

    /// The meter signs a random reading (a fifth of them zero): up to 4 kWh imported, up to
    /// 3 kWh exported; a quarter of the time the oracle anchors another. Returns its leaf, with
    /// the meter's signature over what it signed (the oracle keeps that one).
    function _reading(uint32 m, uint64 assetId, uint64 ispStart, uint256 r) internal returns (bytes32 leaf) {
        address meter = meterAddr[assetId];
        uint64 imp = r % 5 == 0 ? 0 : uint64((r >> 8) % 4001);
        uint64 exp = (r >> 24) % 3 == 0 ? uint64((r >> 32) % 3001) : 0;
        Rd memory anchored = Rd(meter, 1, imp, exp);
        if ((r >> 64) % 4 == 0) {
            (anchored.importWh, anchored.exportWh) = (uint64((r >> 72) % 4001), 0);
            if (anchored.importWh == imp && exp == 0) ++anchored.importWh;
            ++distinctMisreads;
        }
        bytes32 at = keccak256(abi.encode(meter, ispStart));
        Rd memory signed_ = Rd(meter, 1, imp, exp);
        signedReadings[at] = signed_;
        anchoredReadings[keyOf(m, ispStart)].push(anchored);
        bytes memory signature = signReading(meterKeyOf[assetId], signed_, ispStart);
        signatureAt[at] = signature;
        leaf = oracle.readingLeaf(meter, ispStart, 1, anchored.importWh, anchored.exportWh, keccak256(signature));
        leafAt[at] = leaf;
    }

    /// ORACLE1 anchors the root of `leaves` for the ISP; the tree is kept for the proofs.
    function _anchor(uint32 m, uint64 ispStart, bytes32[] memory leaves) internal {
        bytes32[] memory tree = StandardTree.build(leaves);
        uint256 key = keyOf(m, ispStart);
        treeAt[key] = tree;
        vm.prank(ORACLE1);
        oracle.anchorRoot(m, ispStart, tree[0], uint32(leaves.length));
        anchors[key] = MeterOracle.Anchor({
            root: tree[0],
            oracle: ORACLE1,
            leafCount: uint32(leaves.length),
            anchoredAt: uint64(block.timestamp)
        });
    }

    /// The anchored reading of `meter` for the ISP, with its signature and proof.
    function _readingIn(uint32 m, address meter, uint64 ispStart) internal view returns (Settlement.ReadingIn memory r) {
        Rd memory rd = _anchored(m, meter, ispStart);
        bytes32 at = keccak256(abi.encode(meter, ispStart));
        (r.anchor, r.sequence, r.importWh, r.exportWh) = (anchors[keyOf(m, ispStart)], rd.sequence, rd.importWh, rd.exportWh);
        r.signature = signatureAt[at];
        r.proof = StandardTree.proof(treeAt[keyOf(m, ispStart)], leafAt[at]);
    }

    /// What settles sale `sale` in its market's result in force (SettlementFixture.settleIn, with
    /// the proofs kept at anchoring): per awarded ISP its awards, and its meter's reading or its
    /// portfolio members' readings.
    function _settleInput(uint256 sale) internal view returns (Settlement.SettleIn memory s) {
        Sale storage x = sales[sale];
        (s.resultId, s.offer, s.baselineWh, s.salt) = (resultOf[x.marketId], saleOffer[sale], x.baseline, x.salt);
        Grp[] memory gs = sorted(groupsOf(x.marketId));
        bytes32 digest = listed[x.listed].digest;
        uint256 g;
        while (book.offerDigest(gs[g].offer) != digest) ++g;
        uint256 n;
        for (uint16 t = 0; t < s.offer.isps; ++t) {
            if (levelOf(gs[g], t) != 0) ++n;
        }
        s.isps = new Settlement.IspIn[](n);
        if (s.offer.portfolio != 0) s.members = new bytes[](n);
        n = 0;
        for (uint16 t = 0; t < s.offer.isps; ++t) {
            if (levelOf(gs[g], t) == 0) continue;
            uint64 ispStart = s.offer.start + uint64(t) * ISP;
            s.isps[n].awards = awardsIn(gs, g, t);
            if (s.offer.portfolio == 0) s.isps[n].reading = _readingIn(x.marketId, meterAddr[s.offer.asset], ispStart);
            else s.members[n] = _memberReadings(ispStart);
            ++n;
        }
    }

    /// P's members' readings for the ISP, in founding order (DeliveryMeter.MemberReading[], encoded).
    function _memberReadings(uint64 ispStart) internal view returns (bytes memory) {
        DeliveryMeter.MemberReading[] memory rs = new DeliveryMeter.MemberReading[](2);
        uint64[2] memory members = [m1, m2];
        for (uint256 i = 0; i < 2; ++i) {
            Settlement.ReadingIn memory r = _readingIn(market, meterAddr[members[i]], ispStart);
            rs[i].asset = members[i];
            (rs[i].anchor, rs[i].sequence, rs[i].importWh, rs[i].exportWh) = (r.anchor, r.sequence, r.importWh, r.exportWh);
            (rs[i].signature, rs[i].proof) = (r.signature, r.proof);
        }
        return abi.encode(rs);
    }

    /// Dispute a settled, not final offer with what one of its meters signed for an ISP where the
    /// oracle anchored another reading (too late: refused).
    function actDispute(uint256 seed) external onlyHandler returns (bool) {
        uint256 n = recSale.length;
        if (n == 0) return false;
        uint256 first = rnd(seed, 1) % n;
        for (uint256 j = 0; j < n; ++j) {
            uint256 k = (first + j) % n;
            if (recFinal[k]) continue;
            Settlement.SettleIn memory s = abi.decode(recInput[k], (Settlement.SettleIn));
            (bool found, ReadingDisputes.DisputeIn memory d, bytes32 fixedKey) = _misread(s);
            if (!found) continue;
            Settlement.Record memory r = abi.decode(recRecord[k], (Settlement.Record));
            recRecord[k] = abi.encode(disputes.dispute(s, r, d));
            corrected[fixedKey] = true;
            return true;
        }
        return false;
    }

    /// The first ISP of `s` where a meter it counts was misread and not yet corrected: the
    /// dispute with what the meter signed, and its (market, ISP, meter) key.
    function _misread(Settlement.SettleIn memory s)
        internal
        view
        returns (bool, ReadingDisputes.DisputeIn memory d, bytes32 key)
    {
        uint64[] memory units = _unitOf(s.offer);
        for (uint16 i = 0; i < s.isps.length; ++i) {
            uint64 ispStart = s.isps[i].awards[0].ispStart;
            for (uint256 u = 0; u < units.length; ++u) {
                address meter = meterAddr[units[u]];
                key = keccak256(abi.encode(s.offer.market, ispStart, meter));
                Rd memory signed_ = signedReadings[keccak256(abi.encode(meter, ispStart))];
                Rd memory anchored = _anchored(s.offer.market, meter, ispStart);
                if (corrected[key] || (signed_.importWh == anchored.importWh && signed_.exportWh == anchored.exportWh)) {
                    continue;
                }
                d = ReadingDisputes.DisputeIn({
                    isp: i,
                    sequence: signed_.sequence,
                    importWh: signed_.importWh,
                    exportWh: signed_.exportWh,
                    signature: signReading(meterKeyOf[units[u]], signed_, ispStart),
                    member: s.offer.portfolio == 0 ? 0 : units[u]
                });
                return (true, d, key);
            }
        }
        return (false, d, key);
    }

    function _anchored(uint32 m, address meter, uint64 ispStart) internal view returns (Rd memory) {
        Rd[] storage rs = anchoredReadings[keyOf(m, ispStart)];
        for (uint256 i = 0; i < rs.length; ++i) {
            if (rs[i].meter == meter) return rs[i];
        }
        revert("no anchored reading");
    }

    /// The assets whose meters an offer counts: its asset, or the portfolio's members.
    function _unitOf(OrderBook.Offer memory o) internal view returns (uint64[] memory u) {
        if (o.portfolio == 0) {
            u = new uint64[](1);
            u[0] = o.asset;
        } else {
            u = new uint64[](2);
            (u[0], u[1]) = (m1, m2);
        }
    }

    function actFinalise(uint256 seed) external onlyHandler returns (bool) {
        uint256 n = recSale.length;
        if (n == 0) return false;
        uint256 first = rnd(seed, 1) % n;
        for (uint256 j = 0; j < n; ++j) {
            uint256 k = (first + j) % n;
            if (recFinal[k]) continue;
            settlement.finalise(abi.decode(recRecord[k], (Settlement.Record)));
            recFinal[k] = true;
            return true;
        }
        return false;
    }

    function actWithdraw(uint256 seed) external onlyHandler returns (bool) {
        address[6] memory who = [owner, owner2, aggregator, DSO1, TSO, buyer];
        for (uint256 j = 0; j < who.length; ++j) {
            address a = who[(seed + j) % who.length];
            uint256 amount = settlement.claimable(a);
            if (amount == 0) continue;
            vm.prank(a);
            settlement.withdraw();
            withdrawn[a] += amount;
            return true;
        }
        return false;
    }

    /// Moves the clock by a minute (within the clearing's hour), an hour, just over the dispute
    /// window, or three days and an hour: from the clearing, past the settlement window (then
    /// offers settle by default).
    function actWait(uint256 seed) external onlyHandler {
        uint256 pick = rnd(seed, 0) % 4;
        uint256 step = pick == 0 ? 1 minutes : pick == 1 ? 1 hours : pick == 2 ? 2 days + 1 : 3 days + 1 hours;
        vm.warp(block.timestamp + step);
    }

    // ---------------------------------------------------------------------------- invariants

    /// (i), (ii) and (iii) after every call of one campaign: the handler's calls cost far more
    /// than the checks, so one campaign checking all three runs three times the sequences that
    /// three campaigns would in the same time.
    /// forge-config: default.invariant.runs = 10000
    /// forge-config: quick.invariant.runs = 500
    /// forge-config: default.invariant.depth = 10
    /// forge-config: default.invariant.include-storage = false
    /// forge-config: default.invariant.include-push-bytes = false
    function invariant_moneySafety() public view {
        checkMeterPaidOncePerIspWithinItsDelivery();
        checkOracleMarkedOncePerMarketIspMeter();
        checkLockedBondCoversPendingPenalties();
    }

    /// (i) Each meter is counted in at most one settled offer per ISP (both markets, every final
    /// result), and that offer's payments in the ISP stay within its meters' delivery and
    /// prequalified power at its price (the bound in the contract's notice).
    function checkMeterPaidOncePerIspWithinItsDelivery() internal view {
        bytes32[] memory seen = new bytes32[](512);
        uint256 used;
        for (uint256 k = 0; k < recSale.length; ++k) {
            Settlement.Record memory r = abi.decode(recRecord[k], (Settlement.Record));
            uint256 l = 0;
            while (l < r.lines.length) {
                used = _countMeters(recSale[k], r.lines[l].ispStart, seen, used);
                l = _checkIsp(recSale[k], r.lines, l);
            }
        }
    }

    /// Marks the meters sale `sale` counts in the ISP as seen; none may have been seen before.
    function _countMeters(uint256 sale, uint64 ispStart, bytes32[] memory seen, uint256 used)
        internal
        view
        returns (uint256)
    {
        uint64[] memory units = _unitOf(saleOffer[sale]);
        for (uint256 u = 0; u < units.length; ++u) {
            bytes32 key = keccak256(abi.encode(meterAddr[units[u]], ispStart));
            for (uint256 s = 0; s < used; ++s) {
                assertTrue(seen[s] != key, "a meter is counted in one settled offer per ISP");
            }
            seen[used++] = key;
        }
        return used;
    }

    /// The bound of (i) on the lines of one ISP from line `l`; returns the first line after them.
    function _checkIsp(uint256 sale, Settlement.Line[] memory lines, uint256 l) internal view returns (uint256) {
        uint64 ispStart = lines[l].ispStart;
        uint256 activation;
        uint256 availability;
        for (; l < lines.length && lines[l].ispStart == ispStart; ++l) {
            if (lines[l].requestId == R4_AVAIL) availability += lines[l].payment;
            else activation += lines[l].payment;
        }
        OrderBook.Offer memory o = saleOffer[sale];
        uint64[] memory units = _unitOf(o);
        uint256 capacityWs = uint256(o.direction == UP ? UP_W : DOWN_W) * units.length * ISP;
        uint256 deliveredWs = _deliveredWs(sale, o, units, ispStart);
        uint256 paidWs = deliveredWs < capacityWs ? deliveredWs : capacityWs;
        // both markets pay as bid: the award's price is the offer's (at most its request's maximum)
        assertLe(activation, paidWs * o.price / WS_PER_MWH, "activation paid <= min(power, delivery) x price");
        assertLe(availability, capacityWs * o.price / WS_PER_MWH, "capacity paid <= power x price");
        return l;
    }

    /// max(0, sign x (baseline - net)) in W*s, net from the readings in force (signed once disputed).
    function _deliveredWs(uint256 sale, OrderBook.Offer memory o, uint64[] memory units, uint64 ispStart)
        internal
        view
        returns (uint256)
    {
        int256 net;
        for (uint256 u = 0; u < units.length; ++u) {
            address meter = meterAddr[units[u]];
            Rd memory rd = corrected[keccak256(abi.encode(o.market, ispStart, meter))]
                ? signedReadings[keccak256(abi.encode(meter, ispStart))]
                : _anchored(o.market, meter, ispStart);
            net += int256(uint256(rd.importWh)) - int256(uint256(rd.exportWh));
        }
        int256 saved = int256(sales[sale].baseline[(ispStart - o.start) / ISP]) - net;
        if (o.direction == DOWN) saved = -saved;
        return saved > 0 ? uint256(saved) * 3600 : 0;
    }

    /// (ii) However often the misread offers are disputed, the oracle is marked at most once per
    /// (market, ISP, meter) it misread.
    function checkOracleMarkedOncePerMarketIspMeter() internal view {
        assertLe(disputes.faultsOf(ORACLE1), distinctMisreads, "at most one fault per misread (market, ISP, meter)");
    }

    /// (iii) Each seller's locked bond covers min(bond, the uncovered penalties of its settlements
    /// not yet final).
    function checkLockedBondCoversPendingPenalties() internal view {
        address[3] memory sellers = [owner, owner2, aggregator];
        uint256[3] memory pending;
        for (uint256 k = 0; k < recSale.length; ++k) {
            if (recFinal[k]) continue;
            Settlement.Record memory r = abi.decode(recRecord[k], (Settlement.Record));
            uint256 s = r.seller == owner ? 0 : r.seller == owner2 ? 1 : 2;
            for (uint256 l = 0; l < r.lines.length; ++l) {
                pending[s] += r.lines[l].uncovered;
            }
        }
        for (uint256 s = 0; s < 3; ++s) {
            uint256 w = book.bondWord(sellers[s]);
            uint256 need = pending[s] < BondWord.amount(w) ? pending[s] : BondWord.amount(w);
            assertLe(need, BondWord.locked(w), "locked >= min(bond, pending penalties)");
        }
    }

    // ------------------------------------------------------------------------ the path is run

    /// A scripted run through the handler: offers (some refused), results (drawn until the first
    /// and two better ones are accepted), settlements, disputes, finality and withdrawals are all
    /// accepted, so the invariant above watches the money path, not just refusals (the void of a
    /// result by `proveSuperseded` is the next test).
    function test_aRunAcceptsOffersResultsSettlementsAndDisputes() public {
        for (uint256 seed = 0; seed < 12; ++seed) {
            handler.offer(seed);
        }
        assertTrue(handler.accepted(0) > 0, "offers accepted");
        assertTrue(handler.refused(0) > 0, "offers refused");
        for (uint256 seed = 0; seed < 40 && handler.accepted(1) < 3; ++seed) {
            handler.clear(seed);
        }
        assertTrue(handler.accepted(1) >= 3, "results accepted (the first, then better ones)");
        assertTrue(handler.refused(1) > 0, "results refused");
        for (uint256 seed = 0; seed < 40; ++seed) {
            handler.settle(seed);
        }
        assertTrue(handler.accepted(3) > 0, "settlements accepted");
        for (uint256 seed = 0; seed < 20; ++seed) {
            handler.dispute(seed);
        }
        assertTrue(handler.accepted(4) > 0, "disputes accepted");
        invariant_moneySafety();
        vm.warp(block.timestamp + 2 days + 1);
        for (uint256 seed = 0; seed < 20; ++seed) {
            handler.finalise(seed);
        }
        assertTrue(handler.accepted(5) > 0, "settlements finalised");
        for (uint256 seed = 0; seed < 6; ++seed) {
            handler.withdraw(seed);
        }
        assertTrue(handler.accepted(6) > 0, "claims withdrawn");
        invariant_moneySafety();
        string[7] memory names = ["offer", "clear", "supersede", "settle", "dispute", "finalise", "withdraw"];
        for (uint256 a = 0; a < 7; ++a) {
            emit log_named_uint(string.concat(names[a], ": accepted"), handler.accepted(a));
            emit log_named_uint(string.concat(names[a], ": refused"), handler.refused(a));
        }
        emit log_named_uint("settled offers", recSale.length);
        emit log_named_uint("oracle faults", disputes.faultsOf(ORACLE1));
    }

    /// A result that awarded A's first offer is voided: the book holds a newer one of A overlapping it.
    function test_aResultAwardingASupersededOfferIsVoided() public {
        vm.warp(CLOSURE + 1);
        award(0, R1, 0, 6_000);
        award(0, R1, 1, 6_000);
        commitResult(market);
        assertTrue(resultOf[market] != 0, "committed");
        handler.supersede(1); // market (seed 1 draws `market`)
        assertEq(handler.accepted(2), 1, "voided by proveSuperseded");
    }
}
