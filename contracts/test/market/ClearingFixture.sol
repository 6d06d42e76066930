// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {OrderBookFixture} from "./OrderBookFixture.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {ClearingCommitment} from "../../src/market/ClearingCommitment.sol";

/// @notice The OrderBook's batch tree, rebuilt independently: the leaves (offer digests) in
/// acceptance order are paired level by level with OpenZeppelin's commutative Keccak-256, an odd
/// last node moving up unchanged; proofs verify with `MerkleProof.verify`.
library BatchTree {
    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[][] memory ls = levels(leaves);
        return ls[ls.length - 1][0];
    }

    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory) {
        return proofAt(levels(leaves), index);
    }

    /// Every level of the tree, the leaves first, the root's level (one node) last.
    function levels(bytes32[] memory leaves) internal pure returns (bytes32[][] memory ls) {
        uint256 depth;
        for (uint256 count = leaves.length; count > 1; count = (count + 1) / 2) {
            ++depth;
        }
        ls = new bytes32[][](depth + 1);
        ls[0] = leaves;
        for (uint256 d = 1; d <= depth; ++d) {
            bytes32[] memory below = ls[d - 1];
            bytes32[] memory level = new bytes32[]((below.length + 1) / 2);
            for (uint256 i = 0; i + 1 < below.length; i += 2) {
                level[i / 2] = Hashes.commutativeKeccak256(below[i], below[i + 1]);
            }
            if (below.length % 2 == 1) level[level.length - 1] = below[below.length - 1]; // moves up unchanged
            ls[d] = level;
        }
    }

    /// The sibling of node `index` on each level where it has one, from the leaves up.
    function proofAt(bytes32[][] memory ls, uint256 index) internal pure returns (bytes32[] memory path) {
        bytes32[] memory siblings = new bytes32[](ls.length);
        uint256 n;
        for (uint256 d = 0; d + 1 < ls.length; ++d) {
            uint256 sibling = index ^ 1;
            if (sibling < ls[d].length) siblings[n++] = ls[d][sibling];
            index >>= 1;
        }
        path = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            path[i] = siblings[i];
        }
    }
}

/// The OrderBook stack plus a ClearingCommitment, a CLEARING operator, a second market with the
/// same rules, and a market day (DAY0) whose book is built before its gate closure by `buildBook`
/// (a standard book by default, see below) and then closed: setUp ends one second after the day's
/// gate closure. Every relayed offer is recorded with its batch and position, so that tests can
/// rebuild the batch trees and prove the offers' membership.
///
/// Note: forge runs a test function as one transaction, so ClearingCommitment's request cache
/// (transient storage) outlives each call: once a post has loaded a request, later posts in the
/// same test skip that request's status, market and day checks. A test that expects
/// `ClearingRequestNotOpen` must not have posted that request before.
abstract contract ClearingFixture is OrderBookFixture {
    ClearingCommitment internal clearing;
    uint32 internal market2;

    address internal constant OPERATOR = address(0xC1EA0);
    bytes32 internal constant CLEARING_ROLE = keccak256("CLEARING");
    uint64 internal constant CLOSURE = DAY0 - LEAD; // the day's gate closure: the last second the book changes
    uint256 internal constant WS_PER_MWH = 3_600_000_000;
    uint32 internal constant CHALLENGE = 3600; // marketParams' challenge window

    struct Listed {
        OrderBook.Offer offer;
        uint256 batch;
        uint256 leaf;
        bytes32 digest;
    }

    /// Every relayed offer, in relay order (the standard book's indices are the O_/F_ constants).
    Listed[] internal listed;
    bytes32[][] internal batchLeaves;
    mapping(uint64 assetId => uint32) internal lastNonce;
    uint256 private _meters;

    // ---------------------------------------------------------------- the standard book (DAY0)
    // Zones (buildTree + OrderBookFixture): 1 root (TSO) > 2 (DSO1) > 4 (DSO1) > 5 feeder (DSO1);
    // 1 > 3 (DSO2); 1 > 6 (buyer, a DSO). Assets of `owner`: a1 = asset1 and a2, a3 in feeder 5,
    // a4 in substation 4, a5 in zone 3.
    uint64 internal a2;
    uint64 internal a3;
    uint64 internal a4;
    uint64 internal a5;

    // Requests, by id (all UP unless said; max prices: DSO 200, TSO 300 EUR/MWh in cents).
    uint64 internal constant R_DSO = 1; // DSO1, zone 2, 08:00 x4, 20 kW
    uint64 internal constant R_TSO = 2; // TSO, zone 1, 08:00 x4, 20 kW
    uint64 internal constant R_DOWN = 3; // DSO1, zone 5, DOWN, 08:00 x4, 10 kW
    uint64 internal constant R_ZONE6 = 4; // buyer, zone 6, 08:00 x4, 10 kW
    uint64 internal constant R_CANCELLED = 5; // DSO1, zone 2, 08:00 x4, cancelled before gate closure
    uint64 internal constant R_NEXT_DAY = 6; // DSO1, zone 2, DAY0 + 1 day 08:00 x4
    uint64 internal constant R_TSO_10 = 7; // TSO, zone 1, 10:00 x1, 20 kW (zone 4 RED then)
    uint64 internal constant R_DSO_10 = 8; // DSO1, zone 5, 10:00 x1, 20 kW
    uint64 internal constant R_TSO_12 = 9; // TSO, zone 1, 12:00 x1, 20 kW (zone 5 YELLOW 6 kW then)
    uint64 internal constant R_TSO_DOWN = 10; // TSO, zone 1, DOWN, 08:00 x1, 10 kW (zone 3 static RED DOWN)
    uint64 internal constant R_DSO3_DOWN = 11; // DSO2, zone 3, DOWN, 08:00 x1, 10 kW
    uint64 internal constant R_DSO_11 = 12; // DSO1, zone 2, 11:00 x1, 20 kW
    uint64 internal constant R_SMALL = 13; // DSO1, zone 2, 08:00 x1, 8 kW
    uint64 internal constant R_MARKET2 = 14; // DSO1, zone 2, market2, 08:00 x4, 20 kW
    uint64 internal constant F_DSO = 15; // DSO1, zone 2, 14:00 x2, 8 kW (the fuzz book)
    uint64 internal constant F_TSO = 16; // TSO, zone 1, 14:00 x2, 6 kW (the fuzz book)
    uint128 internal constant DSO_MAX = 20_000;
    uint128 internal constant TSO_MAX = 30_000;

    // Offers, by index in `listed` (all UP, one ISP, DIVISIBLE, 100 EUR/MWh unless said).
    uint256 internal constant O_DIV = 0; // a1, 08:00, 5 kW
    uint256 internal constant O_BLOCK = 1; // a2, 08:00 x4 (a block), 4 kW at 120
    uint256 internal constant O_MIN = 2; // a3, 08:00, 6 kW MIN_QUANTITY 3 kW at 80
    uint256 internal constant O_AON = 3; // a4, 08:00, 4 kW ALL_OR_NOTHING at 90
    uint256 internal constant O_ZONE3 = 4; // a5, 08:00, 5 kW
    uint256 internal constant O_LATE = 5; // a1, 09:00, 5 kW
    uint256 internal constant O_NEXT_DAY = 6; // a1, DAY0 + 1 day 08:00
    uint256 internal constant O_MARKET2 = 7; // a1, market2, 08:00, 5 kW
    uint256 internal constant O_PRICEY = 8; // a4, 08:00 x2, 4 kW at 250
    uint256 internal constant O_RED = 9; // a1, 10:00, 5 kW
    uint256 internal constant O_Y1 = 10; // a2, 12:00, 4 kW
    uint256 internal constant O_Y2 = 11; // a3, 12:00, 4 kW
    uint256 internal constant O_DOWN = 12; // a5, DOWN, 08:00, 5 kW
    uint256 internal constant O_OLD = 13; // a2, 11:00, 5 kW (superseded by O_NEW)
    uint256 internal constant F_A = 14; // a1, 14:00, 5 kW (F_A to F_D: consecutive)
    uint256 internal constant F_B = 15; // a2, 14:00 x2, 4 kW MIN_QUANTITY 2 kW
    uint256 internal constant F_C = 16; // a3, 14:00, 3 kW ALL_OR_NOTHING
    uint256 internal constant F_D = 17; // a4, 14:00 x2, 6 kW
    uint256 internal constant O_NEW = 18; // a2, 11:00, 5 kW at 110, a higher nonce, in a second batch

    function setUp() public virtual override {
        super.setUp();
        clearing = new ClearingCommitment(roles, markets, book, zones, assets);
        vm.prank(ADMIN);
        market2 = markets.createMarket(marketParams(ISP, 0));
        grantClearing(OPERATOR);
        fundAndApprove(DSO1, 1e12);
        fundAndApprove(DSO2, 1e12);
        fundAndApprove(TSO, 1e12);
        fundAndApprove(buyer, 1e12);
        buildBook();
        vm.warp(CLOSURE + 1);
    }

    /// A CLEARING credential, issued like the other roles.
    function grantClearing(address who) internal {
        grant(who, CLEARING_ROLE);
        assertTrue(roles.hasMarketRole(who, CLEARING_ROLE), "CLEARING credential issued");
    }

    /// The standard book of DAY0 (see the constants above); override to build another.
    function buildBook() internal virtual {
        a2 = newAsset(5);
        a3 = newAsset(5);
        a4 = newAsset(4);
        a5 = newAsset(3);

        uint64 h8 = DAY0 + 8 hours;
        assertEq(request(DSO1, market, 2, h8, 4, UP, 20_000, DSO_MAX), R_DSO, "R_DSO");
        request(TSO, market, 1, h8, 4, UP, 20_000, TSO_MAX);
        request(DSO1, market, 5, h8, 4, DOWN, 10_000, DSO_MAX);
        request(buyer, market, 6, h8, 4, UP, 10_000, DSO_MAX);
        request(DSO1, market, 2, h8, 4, UP, 20_000, DSO_MAX);
        vm.prank(DSO1);
        book.cancelRequest(R_CANCELLED);
        request(DSO1, market, 2, h8 + 1 days, 4, UP, 20_000, DSO_MAX);
        request(TSO, market, 1, DAY0 + 10 hours, 1, UP, 20_000, TSO_MAX);
        request(DSO1, market, 5, DAY0 + 10 hours, 1, UP, 20_000, DSO_MAX);
        request(TSO, market, 1, DAY0 + 12 hours, 1, UP, 20_000, TSO_MAX);
        request(TSO, market, 1, h8, 1, DOWN, 10_000, TSO_MAX);
        request(DSO2, market, 3, h8, 1, DOWN, 10_000, DSO_MAX);
        request(DSO1, market, 2, DAY0 + 11 hours, 1, UP, 20_000, DSO_MAX);
        request(DSO1, market, 2, h8, 1, UP, 8_000, DSO_MAX);
        request(DSO1, market2, 2, h8, 4, UP, 20_000, DSO_MAX);
        request(DSO1, market, 2, DAY0 + 14 hours, 2, UP, 8_000, DSO_MAX);
        assertEq(request(TSO, market, 1, DAY0 + 14 hours, 2, UP, 6_000, TSO_MAX), F_TSO, "F_TSO");

        // lights: zone 4 RED UP at 10:00, zone 5 YELLOW 6 kW UP at 12:00 (dynamic); zone 3 RED DOWN (static)
        vm.prank(DSO1);
        zones.setDynamicLight(market, 4, DAY0 + 10 hours, UP, RED, 0);
        vm.prank(DSO1);
        zones.setDynamicLight(market, 5, DAY0 + 12 hours, UP, YELLOW, 6_000);
        setStatic(DSO2, 3, DOWN, RED, 0);

        OrderBook.Offer[] memory os = new OrderBook.Offer[](18);
        os[O_DIV] = offer(asset1, h8, 1, 5_000, 10_000);
        os[O_BLOCK] = offer(a2, h8, 4, 4_000, 12_000);
        os[O_MIN] = withMode(offer(a3, h8, 1, 6_000, 8_000), MIN_QUANTITY, 3_000);
        os[O_AON] = withMode(offer(a4, h8, 1, 4_000, 9_000), ALL_OR_NOTHING, 4_000);
        os[O_ZONE3] = offer(a5, h8, 1, 5_000, 10_000);
        os[O_LATE] = offer(asset1, h8 + 1 hours, 1, 5_000, 10_000);
        os[O_NEXT_DAY] = offer(asset1, h8 + 1 days, 1, 5_000, 10_000);
        bindMarket = market2; // an asset sells in one market: O_MARKET2's is market2's
        os[O_MARKET2] = offer(newAsset(5), h8, 1, 5_000, 10_000);
        bindMarket = 0;
        os[O_MARKET2].market = market2;
        os[O_PRICEY] = offer(a4, h8, 2, 4_000, 25_000);
        os[O_RED] = offer(asset1, DAY0 + 10 hours, 1, 5_000, 10_000);
        os[O_Y1] = offer(a2, DAY0 + 12 hours, 1, 4_000, 10_000);
        os[O_Y2] = offer(a3, DAY0 + 12 hours, 1, 4_000, 10_000);
        os[O_DOWN] = offer(a5, h8, 1, 5_000, 10_000);
        os[O_DOWN].direction = DOWN;
        os[O_OLD] = offer(a2, DAY0 + 11 hours, 1, 5_000, 10_000);
        os[F_A] = offer(asset1, DAY0 + 14 hours, 1, 5_000, 10_000);
        os[F_B] = withMode(offer(a2, DAY0 + 14 hours, 2, 4_000, 10_000), MIN_QUANTITY, 2_000);
        os[F_C] = withMode(offer(a3, DAY0 + 14 hours, 1, 3_000, 10_000), ALL_OR_NOTHING, 3_000);
        os[F_D] = offer(a4, DAY0 + 14 hours, 2, 6_000, 10_000);
        relayAll(os);

        OrderBook.Offer[] memory newer = new OrderBook.Offer[](1);
        newer[0] = offer(a2, DAY0 + 11 hours, 1, 5_000, 11_000);
        assertEq(relayAll(newer), O_NEW, "O_NEW");
    }

    // ------------------------------------------------------------------------------- building

    function newAsset(uint32 zoneId) internal returns (uint64 id) {
        address meter = keyedMeter(0x3E1000 + ++_meters);
        grant(meter, METER_ROLE);
        if (zoneId == 6) {
            id = registerWithMeter(assets, owner, meter, 2);
            vm.prank(buyer);
            assets.mapAsset(id, 6, UP_W, DOWN_W, marketToBind());
        } else {
            id = registerAndMap(owner, meter, zoneId);
        }
    }

    function request(
        address who,
        uint32 marketId,
        uint32 zoneId,
        uint64 start,
        uint16 isps,
        uint8 direction,
        uint32 powerW,
        uint256 maxPrice
    ) internal returns (uint64 id) {
        return request(who, marketId, zoneId, start, isps, direction, powerW, maxPrice, 0);
    }

    /// `who` posts a request of `product` (ACTIVATION 0, AVAILABILITY 1).
    function request(
        address who,
        uint32 marketId,
        uint32 zoneId,
        uint64 start,
        uint16 isps,
        uint8 direction,
        uint32 powerW,
        uint256 maxPrice,
        uint8 product
    ) internal returns (uint64 id) {
        OrderBook.RequestParams memory p = OrderBook.RequestParams({
            market: marketId,
            zone: zoneId,
            start: start,
            isps: isps,
            direction: direction,
            powerW: powerW,
            maxPrice: maxPrice,
            product: product,
            purpose: 0
        });
        vm.prank(who);
        id = book.postRequest(p);
    }

    /// A DIVISIBLE UP offer of an asset of `owner`, with the asset's next nonce.
    function offer(uint64 assetId, uint64 start, uint16 isps, uint32 powerW, uint96 price)
        internal
        returns (OrderBook.Offer memory o)
    {
        o = assetOffer(assetId, start, ++lastNonce[assetId]);
        (o.isps, o.powerW, o.price) = (isps, powerW, price);
    }

    function withMode(OrderBook.Offer memory o, uint8 mode, uint32 minPowerW)
        internal
        pure
        returns (OrderBook.Offer memory)
    {
        (o.mode, o.minPowerW) = (mode, minPowerW);
        return o;
    }

    /// Relay offers of `owner`'s assets in one strict batch (the aggregator relays); checks that
    /// the book's batch root is the one BatchTree builds, records them; returns the first's index.
    function relayAll(OrderBook.Offer[] memory os) internal returns (uint256 first) {
        return relayAllSignedBy(OWNER_KEY, os);
    }

    /// The same for offers whose seller's key is `key` (AGGREGATOR_KEY: `aggregator`'s portfolios).
    function relayAllSignedBy(uint256 key, OrderBook.Offer[] memory os) internal returns (uint256 first) {
        bytes[] memory sigs = new bytes[](os.length);
        bytes32[] memory leaves = new bytes32[](os.length);
        for (uint256 i = 0; i < os.length; ++i) {
            sigs[i] = sign(key, os[i]);
            leaves[i] = book.offerDigest(os[i]);
        }
        bytes32 root = BatchTree.root(leaves);
        vm.expectEmit();
        emit OrderBook.OffersBatched(root, os.length);
        vm.prank(aggregator);
        assertEq(submit(book, os, sigs, true), os.length, "every offer accepted");
        assertTrue(book.isBatchRoot(root), "the book knows the rebuilt root");
        uint256 b = batchLeaves.length;
        batchLeaves.push(leaves);
        first = listed.length;
        for (uint256 i = 0; i < os.length; ++i) {
            listed.push(Listed({offer: os[i], batch: b, leaf: i, digest: leaves[i]}));
        }
    }

    // ------------------------------------------------------------------------- groups, awards

    /// A group as the tests build it (the offer as a struct, its batch root, unpacked awards);
    /// `rootsOf` and `wire` turn a list of them into what `post` takes (packed offers, a root
    /// index per group, packed awards). Both are pure, so they may sit between vm.prank and post.
    struct Aw {
        uint64 requestId;
        uint16 isp;
        uint32 powerW;
    }

    struct Grp {
        OrderBook.Offer offer;
        bytes32 batchRoot;
        bytes32[] proof;
        Aw[] awards;
    }

    function rootsOf(Grp[] memory gs) internal pure returns (bytes32[] memory roots) {
        roots = new bytes32[](gs.length);
        uint256 n;
        for (uint256 i = 0; i < gs.length; ++i) {
            bool seen;
            for (uint256 j = 0; j < n; ++j) {
                seen = seen || roots[j] == gs[i].batchRoot;
            }
            if (!seen) roots[n++] = gs[i].batchRoot;
        }
        assembly ("memory-safe") {
            mstore(roots, n)
        }
    }

    function wire(Grp[] memory gs) internal pure returns (ClearingCommitment.OfferAwards[] memory out) {
        bytes32[] memory roots = rootsOf(gs);
        out = new ClearingCommitment.OfferAwards[](gs.length);
        for (uint256 i = 0; i < gs.length; ++i) {
            out[i].offer = packed(gs[i].offer);
            for (uint256 j = 0; j < roots.length; ++j) {
                if (roots[j] == gs[i].batchRoot) out[i].batch = uint16(j);
            }
            out[i].proof = gs[i].proof;
            out[i].awards = new uint256[](gs[i].awards.length);
            for (uint256 k = 0; k < gs[i].awards.length; ++k) {
                Aw memory a = gs[i].awards[k];
                out[i].awards[k] = uint256(a.requestId) << 48 | uint256(a.isp) << 32 | a.powerW;
            }
        }
    }

    function offerAt(uint256 i) internal view returns (OrderBook.Offer memory) {
        return listed[i].offer;
    }

    function digestOf(uint256 i) internal view returns (bytes32) {
        return listed[i].digest;
    }

    function rootOf(uint256 i) internal view returns (bytes32) {
        return BatchTree.root(batchLeaves[listed[i].batch]);
    }

    function proofOf(uint256 i) internal view returns (bytes32[] memory) {
        return BatchTree.proof(batchLeaves[listed[i].batch], listed[i].leaf);
    }

    function aw(uint64 requestId, uint16 isp, uint32 powerW) internal pure returns (Aw memory) {
        return Aw({requestId: requestId, isp: isp, powerW: powerW});
    }

    function awards(Aw memory x) internal pure returns (Aw[] memory a) {
        a = new Aw[](1);
        a[0] = x;
    }

    function awards(Aw memory x, Aw memory y)
        internal
        pure
        returns (Aw[] memory a)
    {
        a = new Aw[](2);
        (a[0], a[1]) = (x, y);
    }

    /// Offer `i` with its batch root, its proof and `a`.
    function group(uint256 i, Aw[] memory a)
        internal
        view
        returns (Grp memory g)
    {
        g.offer = listed[i].offer;
        g.batchRoot = rootOf(i);
        g.proof = proofOf(i);
        g.awards = inPostingOrder(a);
    }

    /// The awards in the order `post` wants them: by ISP, then request (equal pairs kept, in turn).
    function inPostingOrder(Aw[] memory a) internal pure returns (Aw[] memory) {
        for (uint256 i = 1; i < a.length; ++i) {
            Aw memory x = a[i];
            uint256 j = i;
            while (j > 0 && (a[j - 1].isp > x.isp || (a[j - 1].isp == x.isp && a[j - 1].requestId > x.requestId))) {
                a[j] = a[j - 1];
                --j;
            }
            a[j] = x;
        }
        return a;
    }

    function group(uint256 i, Aw memory x)
        internal
        view
        returns (Grp memory)
    {
        return group(i, awards(x));
    }

    function groups(Grp memory g)
        internal
        pure
        returns (Grp[] memory gs)
    {
        gs = new Grp[](1);
        gs[0] = g;
    }

    /// The groups as given (not sorted).
    function groups(Grp memory g, Grp memory h)
        internal
        pure
        returns (Grp[] memory gs)
    {
        gs = new Grp[](2);
        (gs[0], gs[1]) = (g, h);
    }

    function append(Grp[] memory gs, Grp memory g)
        internal
        pure
        returns (Grp[] memory out)
    {
        out = new Grp[](gs.length + 1);
        for (uint256 i = 0; i < gs.length; ++i) {
            out[i] = gs[i];
        }
        out[gs.length] = g;
    }

    /// The power a group gives its offer in ISP `isp`, over all its awards.
    function levelOf(Grp memory g, uint16 isp) internal pure returns (uint32 level) {
        for (uint256 k = 0; k < g.awards.length; ++k) {
            if (g.awards[k].isp == isp) level += g.awards[k].powerW;
        }
    }

    /// The proof of award `k` of group `g` of a chunk posted as `gs` (in that order): the chunk's
    /// tree is over `awardLeaf` of every award in posting order.
    function awardProof(Grp[] memory gs, uint32 chunk, uint256 g, uint256 k)
        internal
        view
        returns (ClearingCommitment.AwardProof memory a)
    {
        bytes32[] memory leaves = chunkLeaves(gs);
        uint256 index = k;
        for (uint256 i = 0; i < g; ++i) {
            index += gs[i].awards.length;
        }
        Aw memory x = gs[g].awards[k];
        a.chunk = chunk;
        (a.requestId, a.ispStart, a.powerW) = (x.requestId, gs[g].offer.start + uint64(x.isp) * ISP, x.powerW);
        a.levelW = levelOf(gs[g], x.isp);
        a.proof = BatchTree.proof(leaves, index);
    }

    /// The award leaves of a chunk posted as `gs`, in posting order.
    function chunkLeaves(Grp[] memory gs) internal view returns (bytes32[] memory leaves) {
        uint256 n;
        for (uint256 i = 0; i < gs.length; ++i) {
            n += gs[i].awards.length;
        }
        leaves = new bytes32[](n);
        uint256 at;
        for (uint256 i = 0; i < gs.length; ++i) {
            bytes32 digest = book.offerDigest(gs[i].offer);
            for (uint256 j = 0; j < gs[i].awards.length; ++j) {
                leaves[at++] = leafOf(digest, gs[i], gs[i].awards[j]);
            }
        }
    }

    function leafOf(bytes32 digest, Grp memory g, Aw memory x) internal view returns (bytes32) {
        return clearing.awardLeaf(digest, x.requestId, g.offer.start + uint64(x.isp) * ISP, x.powerW, levelOf(g, x.isp));
    }

    /// The groups in increasing order of offer digest (the order `post` wants).
    function sorted(Grp[] memory gs)
        internal
        pure
        returns (Grp[] memory)
    {
        uint256[] memory keys = new uint256[](gs.length);
        for (uint256 i = 0; i < gs.length; ++i) {
            keys[i] = orderKey(gs[i].offer);
        }
        for (uint256 i = 1; i < gs.length; ++i) {
            (uint256 k, Grp memory g) = (keys[i], gs[i]);
            uint256 j = i;
            while (j > 0 && keys[j - 1] > k) {
                (keys[j], gs[j]) = (keys[j - 1], gs[j - 1]);
                --j;
            }
            (keys[j], gs[j]) = (k, g);
        }
        return gs;
    }

    /// Where the commitment wants an offer's group: by subject (asset, then portfolio), then start.
    function orderKey(OrderBook.Offer memory o) internal pure returns (uint256) {
        return (uint256(o.asset) << 32 | o.portfolio) << 64 | o.start;
    }

    /// The digest of the later of offers `i` and `j` in posting order (the one a pairwise check names).
    function laterOf(uint256 i, uint256 j) internal view returns (bytes32) {
        return orderKey(listed[i].offer) > orderKey(listed[j].offer) ? digestOf(i) : digestOf(j);
    }

    // ------------------------------------------------------------------------------ lifecycle

    function openAs(address who) internal returns (uint64) {
        return openIn(who, market);
    }

    function openIn(address who, uint32 marketId) internal returns (uint64) {
        vm.prank(who);
        return clearing.open(marketId, DAY0);
    }

    function postAs(address who, uint64 resultId, Grp[] memory gs) internal {
        vm.prank(who);
        clearing.post(resultId, rootsOf(gs), wire(gs));
    }

    function closeAs(address who, uint64 resultId) internal {
        vm.prank(who);
        clearing.close(resultId);
    }

    /// Open, post `gs` (sorted) as one chunk unless empty, close: the result's id.
    function commit(address who, Grp[] memory gs) internal returns (uint64 id) {
        id = openAs(who);
        if (gs.length != 0) postAs(who, id, sorted(gs));
        closeAs(who, id);
    }

    /// Post `gs` as given to a new result of `who`, expecting `reason`.
    function expectRejected(Grp[] memory gs, bytes memory reason) internal {
        uint64 id = openAs(OPERATOR);
        vm.expectRevert(reason);
        postAs(OPERATOR, id, gs);
    }

    /// `sum(W x (maxPrice - price))` of one award, as the contract keeps it.
    function value(uint256 powerW, uint256 maxPrice, uint256 price) internal pure returns (uint256) {
        return powerW * (maxPrice - price);
    }

    /// Token base units of a welfare value (ISPs of `ISP` seconds), rounded down.
    function tokenUnits(uint256 v) internal pure returns (uint256) {
        return v * ISP / WS_PER_MWH;
    }
}
