// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {ClearingFixture, BatchTree} from "./ClearingFixture.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {ClearingCommitment} from "../../src/market/ClearingCommitment.sol";
import {RoleGated} from "../../src/access/RoleGated.sol";

/// Posts to two results in one transaction (what any contract account can do).
contract SameTransactionPoster {
    function openPostTwice(
        ClearingCommitment clearing,
        uint32 firstMarket,
        uint32 secondMarket,
        uint64 day,
        bytes32[] calldata firstRoots,
        ClearingCommitment.OfferAwards[] calldata first,
        bytes32[] calldata secondRoots,
        ClearingCommitment.OfferAwards[] calldata second
    ) external returns (uint64 secondId) {
        uint64 firstId = clearing.open(firstMarket, day);
        clearing.post(firstId, firstRoots, first);
        secondId = clearing.open(secondMarket, day);
        clearing.post(secondId, secondRoots, second);
        clearing.close(secondId);
    }
}

contract ClearingCommitmentTest is ClearingFixture {
    uint64 internal constant H8 = DAY0 + 8 hours;
    uint8 internal constant POSTING = uint8(ClearingCommitment.Status.POSTING);
    uint8 internal constant CURRENT = uint8(ClearingCommitment.Status.CURRENT);
    uint8 internal constant REPLACED = uint8(ClearingCommitment.Status.REPLACED);
    uint8 internal constant VOID = uint8(ClearingCommitment.Status.VOID);

    // --------------------------------------------------------------------------------- helpers

    function err(bytes4 selector, bytes32 digest) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(selector, digest);
    }

    /// The bytes of `OfferAwarded` for a group: per award requestId (8) | ISP start (8) | power (4).
    function packedOf(Grp memory g) internal pure returns (bytes memory p) {
        for (uint256 k = 0; k < g.awards.length; ++k) {
            Aw memory a = g.awards[k];
            p = abi.encodePacked(p, a.requestId, g.offer.start + uint64(a.isp) * ISP, a.powerW);
        }
    }

    function awardCount(Grp[] memory gs) internal pure returns (uint32 n) {
        for (uint256 i = 0; i < gs.length; ++i) {
            n += uint32(gs[i].awards.length);
        }
    }

    function slice(Grp[] memory gs, uint256 from, uint256 to)
        internal
        pure
        returns (Grp[] memory out)
    {
        out = new Grp[](to - from);
        for (uint256 i = from; i < to; ++i) {
            out[i - from] = gs[i];
        }
    }

    /// Expect one `OfferAwarded` per group, then `ChunkPosted`, for a chunk posted to `id`.
    function expectChunk(uint64 id, uint32 chunk, Grp[] memory gs) internal {
        bytes32[] memory leaves = chunkLeaves(gs);
        for (uint256 i = 0; i < gs.length; ++i) {
            bytes32 d = book.offerDigest(gs[i].offer);
            vm.expectEmit();
            emit ClearingCommitment.OfferAwarded(id, owner, d, packedOf(gs[i]));
        }
        vm.expectEmit();
        emit ClearingCommitment.ChunkPosted(id, chunk, uint32(gs.length), awardCount(gs), BatchTree.root(leaves));
    }

    function status(uint64 id) internal view returns (uint8) {
        return uint8(clearing.result(id).status);
    }

    /// The standard result: DSO and TSO awards, a four-ISP block split between them, a MIN_QUANTITY
    /// offer at its minimum, an ALL_OR_NOTHING offer in full; sorted.
    function happyGroups() internal view returns (Grp[] memory gs) {
        Aw[] memory blockAwards = new Aw[](4);
        blockAwards[0] = aw(R_DSO, 0, 3_000);
        blockAwards[1] = aw(R_DSO, 1, 3_000);
        blockAwards[2] = aw(R_TSO, 2, 3_000);
        blockAwards[3] = aw(R_TSO, 3, 3_000);
        gs = new Grp[](5);
        gs[0] = group(O_DIV, aw(R_DSO, 0, 5_000));
        gs[1] = group(O_BLOCK, blockAwards);
        gs[2] = group(O_MIN, aw(R_DSO, 0, 3_000));
        gs[3] = group(O_AON, aw(R_TSO, 0, 4_000));
        gs[4] = group(O_ZONE3, aw(R_TSO, 0, 5_000));
        gs = sorted(gs);
    }

    function happyDso() internal pure returns (uint256) {
        return value(5_000, DSO_MAX, 10_000) + 2 * value(3_000, DSO_MAX, 12_000) + value(3_000, DSO_MAX, 8_000);
    }

    function happyTso() internal pure returns (uint256) {
        return 2 * value(3_000, TSO_MAX, 12_000) + value(4_000, TSO_MAX, 9_000) + value(5_000, TSO_MAX, 10_000);
    }

    // -------------------------------------------------------------------------- the happy path

    function test_fixtureRebuildsTheBatchTrees() public view {
        for (uint256 i = 0; i < listed.length; ++i) {
            assertTrue(book.isBatchRoot(rootOf(i)), "root in the book");
            assertTrue(MerkleProof.verify(proofOf(i), rootOf(i), digestOf(i)), "proof verifies");
            assertEq(clearing.offerDigest(offerAt(i)), book.offerDigest(offerAt(i)), "same digest as the book's");
        }
        assertEq(rootOf(O_NEW), digestOf(O_NEW), "a one-offer batch: the root is the digest");
    }

    function test_openPostAndClose() public {
        Grp[] memory gs = happyGroups();
        bytes32 bookDigest = book.bookDigest(market, DAY0);
        vm.expectEmit();
        emit ClearingCommitment.ResultOpened(1, market, DAY0, OPERATOR, bookDigest);
        uint64 id = openAs(OPERATOR);
        assertEq(id, 1, "first id");
        assertEq(clearing.resultCount(), 1, "count");
        assertEq(status(id), POSTING, "posting");

        expectChunk(id, 0, gs);
        postAs(OPERATOR, id, gs);

        uint64 ends = uint64(block.timestamp) + CHALLENGE;
        vm.expectEmit();
        emit ClearingCommitment.ResultClosed(id, market, DAY0, 0, happyDso(), happyTso(), ends);
        closeAs(OPERATOR, id);

        ClearingCommitment.Result memory r = clearing.result(id);
        assertEq(r.author, OPERATOR, "author");
        assertEq(r.market, market, "market");
        assertEq(r.day, DAY0, "day");
        assertEq(uint8(r.status), CURRENT, "current");
        assertEq(r.chunks, 1, "chunks");
        assertEq(r.offers, 5, "offers");
        assertEq(r.awards, 8, "awards");
        assertEq(r.closedAt, block.timestamp, "closed at");
        assertEq(r.lastOrder, endKey(gs[4].offer), "last group: the highest subject, and its window's end");
        assertEq(r.bookDigest, bookDigest, "book digest");
        assertEq(r.dsoValue, happyDso(), "DSO value");
        assertEq(r.tsoValue, happyTso(), "TSO value");
        assertEq(r.dsoValue, 134_000_000, "DSO value, by hand");
        assertEq(r.tsoValue, 292_000_000, "TSO value, by hand");

        ClearingCommitment.DayState memory d = clearing.dayState(market, DAY0);
        assertEq(d.current, id, "in force");
        assertEq(d.challengeEnds, ends, "challenge window");
        assertTrue(!d.finalised, "not final");

        // welfare in token units: sum(W x (maxPrice - price)) x 900 s / 3.6e9, per stage, rounded down
        (uint256 dso, uint256 tso) = clearing.welfare(id);
        assertEq(dso, tokenUnits(happyDso()), "DSO welfare");
        assertEq(tso, tokenUnits(happyTso()), "TSO welfare");
        assertEq(dso, 33, "DSO welfare: 33.5 rounded down");
        assertEq(tso, 73, "TSO welfare");

        assertEq(clearing.requestLoad(id, R_DSO, 0), 11_000, "R_DSO 08:00: 5 + 3 + 3 kW");
        assertEq(clearing.requestLoad(id, R_DSO, 1), 3_000, "R_DSO 08:15: the block");
        assertEq(clearing.requestLoad(id, R_DSO, 2), 0, "R_DSO 08:30: none");
        assertEq(clearing.requestLoad(id, R_TSO, 0), 9_000, "R_TSO 08:00: 4 + 5 kW");
        assertEq(clearing.requestLoad(id, R_TSO, 1), 0, "R_TSO 08:15: none");
        assertEq(clearing.requestLoad(id, R_TSO, 3), 3_000, "R_TSO 08:45: the block");
        assertEq(clearing.clearingPrice(id, 2, UP, H8), 0, "PAY_AS_BID: no clearing price kept");
    }

    function test_offerAwardedPacksEachAward() public {
        // the block's 4 kW in every ISP: 08:00 split between the DSO and the TSO
        Aw[] memory a = new Aw[](5);
        a[0] = aw(R_DSO, 0, 2_500);
        a[1] = aw(R_TSO, 0, 1_500);
        a[2] = aw(R_DSO, 1, 4_000);
        a[3] = aw(R_TSO, 2, 4_000);
        a[4] = aw(R_DSO, 3, 4_000);
        bytes memory expected = abi.encodePacked(
            abi.encodePacked(uint64(R_DSO), uint64(H8), uint32(2_500)),
            abi.encodePacked(uint64(R_TSO), uint64(H8), uint32(1_500)),
            abi.encodePacked(uint64(R_DSO), uint64(H8 + ISP), uint32(4_000)),
            abi.encodePacked(uint64(R_TSO), uint64(H8 + 2 * ISP), uint32(4_000)),
            abi.encodePacked(uint64(R_DSO), uint64(H8 + 3 * ISP), uint32(4_000))
        );
        assertEq(expected.length, 100, "20 bytes per award");
        uint64 id = openAs(OPERATOR);
        vm.expectEmit();
        emit ClearingCommitment.OfferAwarded(id, owner, digestOf(O_BLOCK), expected);
        postAs(OPERATOR, id, groups(group(O_BLOCK, a)));
    }

    /// The order key the commitment keeps after an offer's group: its subject over its window's end.
    function endKey(OrderBook.Offer memory o) internal pure returns (uint256) {
        return (uint256(o.asset) << 32 | o.portfolio) << 64 | (o.start + uint256(o.isps) * ISP);
    }

    function test_postInTwoChunksContinuesTheSubjectOrder() public {
        Grp[] memory gs = happyGroups();
        Grp[] memory first = slice(gs, 0, 2);
        Grp[] memory second = slice(gs, 2, 5);
        uint64 id = openAs(OPERATOR);
        expectChunk(id, 0, first);
        postAs(OPERATOR, id, first);
        assertEq(clearing.result(id).lastOrder, endKey(gs[1].offer), "last group of chunk 0");

        // a chunk continues the order of the last: the same offer again overlaps itself, a lower subject is out of order
        OrderBook.Offer memory last = gs[1].offer;
        vm.expectRevert(
            abi.encodeWithSelector(
                ClearingCommitment.ClearingOffersOverlap.selector,
                book.offerDigest(last),
                last.asset,
                last.portfolio,
                last.start,
                uint64(endKey(last))
            )
        );
        postAs(OPERATOR, id, slice(gs, 1, 5));
        OrderBook.Offer memory lower = gs[0].offer;
        vm.expectRevert(
            abi.encodeWithSelector(
                ClearingCommitment.ClearingOfferOutOfOrder.selector,
                book.offerDigest(lower),
                lower.asset,
                lower.portfolio,
                lower.start
            )
        );
        postAs(OPERATOR, id, groups(gs[0]));

        expectChunk(id, 1, second);
        postAs(OPERATOR, id, second);
        closeAs(OPERATOR, id);
        ClearingCommitment.Result memory r = clearing.result(id);
        assertEq(r.chunks, 2, "chunks");
        assertEq(r.offers, 5, "offers");
        assertEq(r.awards, 8, "awards");
        assertEq(r.dsoValue, happyDso(), "DSO value as in one chunk");
        assertEq(r.tsoValue, happyTso(), "TSO value as in one chunk");
        assertEq(clearing.requestLoad(id, R_DSO, 0), 11_000, "loads add up over chunks");
    }

    function test_emptyResult() public {
        uint64 id = commit(OPERATOR, new Grp[](0));
        ClearingCommitment.Result memory r = clearing.result(id);
        assertEq(uint8(r.status), CURRENT, "current");
        assertEq(r.chunks + r.offers + r.awards, 0, "nothing posted");
        (uint256 dso, uint256 tso) = clearing.welfare(id);
        assertEq(dso + tso, 0, "no welfare");
        assertEq(clearing.dayState(market, DAY0).current, id, "in force");
        vm.warp(block.timestamp + CHALLENGE + 1);
        clearing.finalise(market, DAY0);
        assertTrue(clearing.dayState(market, DAY0).finalised, "final");
    }

    function test_emptyChunk() public {
        uint64 id = openAs(OPERATOR);
        vm.expectEmit();
        emit ClearingCommitment.ChunkPosted(id, 0, 0, 0, bytes32(0));
        postAs(OPERATOR, id, new Grp[](0));
        assertEq(clearing.result(id).chunks, 1, "counted");
    }

    // ----------------------------------------------------------------------------- the book

    function test_offerUnderTheWrongRoot() public {
        Grp memory g = group(O_DIV, aw(R_DSO, 0, 1_000));
        g.batchRoot = rootOf(O_NEW); // a root of the book, but not this offer's
        expectRejected(
            groups(g),
            abi.encodeWithSelector(ClearingCommitment.ClearingOfferNotInBook.selector, digestOf(O_DIV), g.batchRoot)
        );
    }

    function test_offerWithABadProof() public {
        Grp memory g = group(O_DIV, aw(R_DSO, 0, 1_000));
        g.proof[0] = bytes32(uint256(g.proof[0]) ^ 1);
        expectRejected(
            groups(g),
            abi.encodeWithSelector(ClearingCommitment.ClearingOfferNotInBook.selector, digestOf(O_DIV), g.batchRoot)
        );
        g = group(O_DIV, aw(R_DSO, 0, 1_000));
        g.proof = new bytes32[](0);
        expectRejected(
            groups(g),
            abi.encodeWithSelector(ClearingCommitment.ClearingOfferNotInBook.selector, digestOf(O_DIV), g.batchRoot)
        );
    }

    /// An asset's own offer, accepted before the asset joined a portfolio, can no longer be
    /// awarded: its aggregator offers it now, and its meter counts in the portfolio's delivery.
    function test_assetOfferWhoseAssetJoinedAPortfolio() public {
        uint64 assetId = offerAt(O_DIV).asset;
        (, uint32 zone,,,,,,) = assets.asset(assetId);
        uint256 later = block.timestamp;
        vm.warp(CLOSURE); // it joins at the gate closure: in a portfolio then, its own offer is out
        uint64 deadline = uint64(block.timestamp + 1 hours);
        bytes32 consent = assets.consentDigest(AGG, assetId, assets.consentNonce(assetId), deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_KEY, consent);
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = abi.encodePacked(r, s, v);
        vm.prank(AGG);
        assets.createPortfolio(zone, assetIds(assetId), sigs, deadline);
        vm.warp(later);
        expectRejected(
            groups(group(O_DIV, aw(R_DSO, 0, 1_000))),
            abi.encodeWithSelector(ClearingCommitment.ClearingAssetInPortfolio.selector, digestOf(O_DIV), assetId)
        );
    }

    /// A root the book never logged is refused before any group is read (no offer named).
    function test_offerUnderAnUnknownRoot() public {
        Grp memory g = group(O_DIV, aw(R_DSO, 0, 1_000));
        g.batchRoot = keccak256("no such batch");
        expectRejected(
            groups(g),
            abi.encodeWithSelector(ClearingCommitment.ClearingOfferNotInBook.selector, bytes32(0), g.batchRoot)
        );
        g.batchRoot = bytes32(0);
        expectRejected(
            groups(g),
            abi.encodeWithSelector(ClearingCommitment.ClearingOfferNotInBook.selector, bytes32(0), bytes32(0))
        );
    }

    function test_offerAlteredAfterSigning() public {
        Grp memory g = group(O_DIV, aw(R_DSO, 0, 1_000));
        g.offer.powerW = 10_000; // not what the seller signed: another digest, in no batch
        bytes32 d = book.offerDigest(g.offer);
        expectRejected(
            groups(g), abi.encodeWithSelector(ClearingCommitment.ClearingOfferNotInBook.selector, d, g.batchRoot)
        );
    }

    function test_groupsOutOfSubjectOrder() public {
        Grp[] memory gs =
            sorted(groups(group(O_DIV, aw(R_DSO, 0, 1_000)), group(O_MIN, aw(R_DSO, 0, 3_000))));
        OrderBook.Offer memory low = gs[0].offer;
        expectRejected(
            groups(gs[1], gs[0]),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingOfferOutOfOrder.selector, book.offerDigest(low), low.asset, low.portfolio, low.start
            )
        );
    }

    function test_sameOfferTwice() public {
        OrderBook.Offer memory o = listed[O_DIV].offer;
        expectRejected(
            groups(group(O_DIV, aw(R_DSO, 0, 1_000)), group(O_DIV, aw(R_TSO, 0, 1_000))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingOffersOverlap.selector, digestOf(O_DIV), o.asset, o.portfolio, o.start, o.start + ISP
            )
        );
    }

    function test_offerOfAnotherDay() public {
        expectRejected(
            groups(group(O_NEXT_DAY, aw(R_NEXT_DAY, 0, 1_000))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingOfferWrongDay.selector, digestOf(O_NEXT_DAY), market, H8 + 1 days
            )
        );
    }

    function test_offerOfAnotherMarket() public {
        expectRejected(
            groups(group(O_MARKET2, aw(R_DSO, 0, 1_000))),
            abi.encodeWithSelector(ClearingCommitment.ClearingOfferWrongDay.selector, digestOf(O_MARKET2), market2, H8)
        );
    }

    function test_groupWithoutAwards() public {
        expectRejected(
            groups(group(O_DIV, new Aw[](0))),
            err(ClearingCommitment.ClearingNoAwards.selector, digestOf(O_DIV))
        );
    }

    // ----------------------------------------------------------------------------- an award

    function test_ispOutsideTheOffer() public {
        expectRejected(
            groups(group(O_DIV, aw(R_DSO, 1, 1_000))),
            abi.encodeWithSelector(ClearingCommitment.ClearingIspOutsideOffer.selector, digestOf(O_DIV), R_DSO, 1)
        );
        expectRejected(
            groups(group(O_BLOCK, aw(R_DSO, 4, 1_000))),
            abi.encodeWithSelector(ClearingCommitment.ClearingIspOutsideOffer.selector, digestOf(O_BLOCK), R_DSO, 4)
        );
    }

    function test_zeroPower() public {
        expectRejected(
            groups(group(O_DIV, aw(R_DSO, 0, 0))),
            abi.encodeWithSelector(ClearingCommitment.ClearingZeroPower.selector, digestOf(O_DIV), R_DSO, H8)
        );
    }

    function test_unknownRequest() public {
        expectRejected(
            groups(group(O_DIV, aw(999, 0, 1_000))),
            abi.encodeWithSelector(ClearingCommitment.ClearingRequestNotOpen.selector, digestOf(O_DIV), uint64(999))
        );
    }

    function test_cancelledRequest() public {
        assertTrue(book.request(R_CANCELLED).status == OrderBook.RequestStatus.CANCELLED, "cancelled");
        expectRejected(
            groups(group(O_DIV, aw(R_CANCELLED, 0, 1_000))),
            abi.encodeWithSelector(ClearingCommitment.ClearingRequestNotOpen.selector, digestOf(O_DIV), R_CANCELLED)
        );
    }

    function test_requestOfAnotherDay() public {
        expectRejected(
            groups(group(O_DIV, aw(R_NEXT_DAY, 0, 1_000))),
            abi.encodeWithSelector(ClearingCommitment.ClearingRequestNotOpen.selector, digestOf(O_DIV), R_NEXT_DAY)
        );
    }

    function test_requestOfAnotherMarket() public {
        expectRejected(
            groups(group(O_DIV, aw(R_MARKET2, 0, 1_000))),
            abi.encodeWithSelector(ClearingCommitment.ClearingRequestNotOpen.selector, digestOf(O_DIV), R_MARKET2)
        );
    }

    function test_ispOutsideTheRequest() public {
        expectRejected(
            groups(group(O_LATE, aw(R_DSO, 0, 1_000))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingIspOutsideRequest.selector, digestOf(O_LATE), R_DSO, H8 + 1 hours
            )
        );
    }

    function test_directionMismatch() public {
        expectRejected(
            groups(group(O_DIV, aw(R_DOWN, 0, 1_000))),
            abi.encodeWithSelector(ClearingCommitment.ClearingDirectionMismatch.selector, digestOf(O_DIV), R_DOWN)
        );
        expectRejected(
            groups(group(O_DOWN, aw(R_TSO, 0, 1_000))),
            abi.encodeWithSelector(ClearingCommitment.ClearingDirectionMismatch.selector, digestOf(O_DOWN), R_TSO)
        );
    }

    function test_offerZoneOutsideTheRequestSubtree() public {
        expectRejected(
            groups(group(O_DIV, aw(R_ZONE6, 0, 1_000))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingZoneOutsideRequest.selector, digestOf(O_DIV), R_ZONE6, uint32(5), uint32(6)
            )
        );
        expectRejected(
            groups(group(O_ZONE3, aw(R_DSO, 0, 1_000))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingZoneOutsideRequest.selector, digestOf(O_ZONE3), R_DSO, uint32(3), uint32(2)
            )
        );
    }

    function test_priceAboveTheMaximum() public {
        expectRejected(
            groups(group(O_PRICEY, awards(aw(R_DSO, 0, 4_000), aw(R_DSO, 1, 4_000)))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingPriceAboveMax.selector, digestOf(O_PRICEY), R_DSO, uint96(25_000), DSO_MAX
            )
        );
        // the TSO pays up to 300: the same offer fits its request
        uint64 id = commit(OPERATOR, groups(group(O_PRICEY, awards(aw(R_TSO, 0, 4_000), aw(R_TSO, 1, 4_000)))));
        assertEq(clearing.result(id).tsoValue, 2 * value(4_000, TSO_MAX, 25_000), "TSO value");
    }

    function test_requestOverAllocatedAcrossTwoOffers() public {
        // R_SMALL wants 8 kW: 5 kW + 4 kW from two offers is too much
        expectRejected(
            sorted(groups(group(O_DIV, aw(R_SMALL, 0, 5_000)), group(O_MIN, aw(R_SMALL, 0, 4_000)))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingRequestOverAllocated.selector, laterOf(O_DIV, O_MIN), R_SMALL, H8, 9_000
            )
        );
        // two awards of one offer to the same request and ISP: refused as such (each pair once)
        expectRejected(
            groups(group(O_BLOCK, awards(aw(R_SMALL, 0, 4_000), aw(R_SMALL, 0, 4_001)))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingAwardsOutOfOrder.selector, digestOf(O_BLOCK), R_SMALL, uint16(0)
            )
        );
        uint64 id = commit(OPERATOR, groups(group(O_DIV, aw(R_SMALL, 0, 5_000)), group(O_MIN, aw(R_SMALL, 0, 3_000))));
        assertEq(clearing.requestLoad(id, R_SMALL, 0), 8_000, "exactly the request's power");
    }

    function test_offerOverAllocated() public {
        expectRejected(
            groups(group(O_DIV, awards(aw(R_DSO, 0, 3_000), aw(R_TSO, 0, 3_000)))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingOfferOverAllocated.selector, digestOf(O_DIV), H8, 6_000, uint32(5_000)
            )
        );
    }

    function test_minQuantityBelowItsMinimum() public {
        expectRejected(
            groups(group(O_MIN, aw(R_DSO, 0, 2_999))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingModeViolated.selector, digestOf(O_MIN), H8, 2_999, MIN_QUANTITY
            )
        );
        // the minimum may come from two requests
        commit(OPERATOR, groups(group(O_MIN, awards(aw(R_DSO, 0, 1_000), aw(R_TSO, 0, 2_000)))));
    }

    function test_allOrNothingPartial() public {
        expectRejected(
            groups(group(O_AON, aw(R_DSO, 0, 3_999))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingModeViolated.selector, digestOf(O_AON), H8, 3_999, ALL_OR_NOTHING
            )
        );
        // all of it, split between two requests
        commit(OPERATOR, groups(group(O_AON, awards(aw(R_DSO, 0, 2_000), aw(R_TSO, 0, 2_000)))));
    }

    function test_blockWithUnequalIsps() public {
        Aw[] memory a = new Aw[](4);
        a[0] = aw(R_DSO, 0, 3_000);
        a[1] = aw(R_DSO, 1, 3_000);
        a[2] = aw(R_DSO, 2, 3_000);
        a[3] = aw(R_DSO, 3, 2_000);
        expectRejected(
            groups(group(O_BLOCK, a)),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingBlockViolated.selector, digestOf(O_BLOCK), H8 + 3 * ISP, 2_000, 3_000
            )
        );
    }

    function test_blockWithAMissingIsp() public {
        Aw[] memory a = new Aw[](3);
        a[0] = aw(R_DSO, 0, 3_000);
        a[1] = aw(R_DSO, 1, 3_000);
        a[2] = aw(R_DSO, 3, 3_000);
        expectRejected(
            groups(group(O_BLOCK, a)),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingBlockViolated.selector, digestOf(O_BLOCK), H8 + 2 * ISP, 0, 3_000
            )
        );
        a[0] = aw(R_DSO, 2, 3_000); // ISPs 1 to 3: the first is missing
        expectRejected(
            groups(group(O_BLOCK, a)),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingBlockViolated.selector, digestOf(O_BLOCK), H8 + ISP, 3_000, 0
            )
        );
    }

    // -------------------------------------------------------------------------------- lights

    function test_tsoAwardUnderARedLightOnThePath() public {
        (uint8 colour,) = zones.effectiveLight(market, 4, DAY0 + 10 hours, UP);
        assertEq(colour, RED, "zone 4, above the asset's feeder, is RED at 10:00");
        expectRejected(
            groups(group(O_RED, aw(R_TSO_10, 0, 5_000))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingRedLight.selector, digestOf(O_RED), R_TSO_10, DAY0 + 10 hours, uint32(4)
            )
        );
        // lights bind the TSO only: the DSO's award in the same zone and ISP stands
        uint64 id = commit(OPERATOR, groups(group(O_RED, aw(R_DSO_10, 0, 5_000))));
        assertEq(clearing.result(id).dsoValue, value(5_000, DSO_MAX, 10_000), "DSO award accepted");
    }

    function test_tsoAwardUnderAStaticRedLight() public {
        expectRejected(
            groups(group(O_DOWN, aw(R_TSO_DOWN, 0, 5_000))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingRedLight.selector, digestOf(O_DOWN), R_TSO_DOWN, H8, uint32(3)
            )
        );
        commit(OPERATOR, groups(group(O_DOWN, aw(R_DSO3_DOWN, 0, 5_000))));
    }

    function test_tsoTotalOverAYellowCapability() public {
        // zone 5 is YELLOW 6 kW at 12:00: 4 kW + 3 kW from two offers there is too much
        expectRejected(
            sorted(groups(group(O_Y1, aw(R_TSO_12, 0, 4_000)), group(O_Y2, aw(R_TSO_12, 0, 3_000)))),
            abi.encodeWithSelector(
                ClearingCommitment.ClearingLightCapabilityExceeded.selector,
                laterOf(O_Y1, O_Y2),
                R_TSO_12,
                DAY0 + 12 hours,
                uint32(5),
                7_000,
                uint32(6_000)
            )
        );
        uint64 id = commit(OPERATOR, groups(group(O_Y1, aw(R_TSO_12, 0, 4_000)), group(O_Y2, aw(R_TSO_12, 0, 2_000))));
        assertEq(clearing.requestLoad(id, R_TSO_12, 0), 6_000, "up to the capability");
    }

    function test_tsoAwardsUnderGreenAndYellowLightsInAnotherIsp() public {
        // the YELLOW of 12:00 does not reach 08:00 (the happy path has 4 + 5 kW of TSO awards there)
        uint64 id = commit(OPERATOR, groups(group(O_DIV, aw(R_TSO, 0, 5_000)), group(O_MIN, aw(R_TSO, 0, 6_000))));
        assertEq(clearing.requestLoad(id, R_TSO, 0), 11_000, "no light binds at 08:00");
    }

    // ----------------------------------------------------------------------------- lifecycle

    function test_openByANonOperator() public {
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, NOBODY, CLEARING_ROLE));
        openAs(NOBODY);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, DSO1, CLEARING_ROLE));
        openAs(DSO1);
    }

    function test_openAfterTheOperatorsCredentialIsRevoked() public {
        vm.prank(ADMIN);
        roles.revokeCredential(OPERATOR, CLEARING_ROLE);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, OPERATOR, CLEARING_ROLE));
        openAs(OPERATOR);
        grantClearing(NOBODY); // another operator
        assertEq(openAs(NOBODY), 1, "the new operator opens the day");
    }

    function test_openBeforeGateClosure() public {
        vm.warp(CLOSURE); // the day's last second of trading
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingBeforeGateClosure.selector, market, DAY0, CLOSURE)
        );
        openAs(OPERATOR);
        vm.warp(CLOSURE - 1 days);
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingBeforeGateClosure.selector, market, DAY0, CLOSURE)
        );
        openAs(OPERATOR);
        vm.warp(CLOSURE + 1);
        assertEq(openAs(OPERATOR), 1, "the second after");
    }

    function test_openOnANonMarketDay() public {
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingNotMarketDay.selector, market, DAY0 + 1 hours)
        );
        vm.prank(OPERATOR);
        clearing.open(market, DAY0 + 1 hours);
    }

    function test_postOrCloseByAnotherAccount() public {
        uint64 id = openAs(OPERATOR);
        Grp[] memory gs = groups(group(O_DIV, aw(R_DSO, 0, 1_000)));
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNotAuthor.selector, id, NOBODY));
        postAs(NOBODY, id, gs);
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNotAuthor.selector, id, NOBODY));
        closeAs(NOBODY, id);
    }

    function test_postOrCloseAnUnknownResult() public {
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingUnknownResult.selector, uint64(7)));
        postAs(OPERATOR, 7, new Grp[](0));
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingUnknownResult.selector, uint64(7)));
        closeAs(OPERATOR, 7);
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingUnknownResult.selector, uint64(7)));
        clearing.welfare(7);
    }

    function test_postOrCloseAfterClose() public {
        uint64 id = commit(OPERATOR, groups(group(O_DIV, aw(R_DSO, 0, 1_000))));
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNotPosting.selector, id, CURRENT));
        postAs(OPERATOR, id, groups(group(O_MIN, aw(R_DSO, 0, 3_000))));
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNotPosting.selector, id, CURRENT));
        closeAs(OPERATOR, id);
    }

    // ----------------------------------------------------------------------------- challenges

    /// The operator's result: 5 kW DSO at a margin of 100, 2 kW TSO at 200: values (5e7, 4e7).
    function commitBaseline() internal returns (uint64) {
        return commit(OPERATOR, groups(group(O_DIV, aw(R_DSO, 0, 5_000)), group(O_ZONE3, aw(R_TSO, 0, 2_000))));
    }

    function challenge(Grp[] memory gs) internal returns (uint64 id) {
        id = openAs(NOBODY); // anyone may challenge a result in force
        postAs(NOBODY, id, sorted(gs));
    }

    function test_challengeWithLowerWelfare() public {
        commitBaseline();
        uint64 id = challenge(groups(group(O_DIV, aw(R_DSO, 0, 4_000))));
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingNotBetter.selector, 40_000_000, 0, 50_000_000, 40_000_000)
        );
        closeAs(NOBODY, id);
    }

    function test_challengeWithEqualWelfare() public {
        commitBaseline();
        uint64 id = challenge(groups(group(O_DIV, aw(R_DSO, 0, 5_000)), group(O_ZONE3, aw(R_TSO, 0, 2_000))));
        vm.expectRevert(
            abi.encodeWithSelector(
                ClearingCommitment.ClearingNotBetter.selector, 50_000_000, 40_000_000, 50_000_000, 40_000_000
            )
        );
        closeAs(NOBODY, id);
    }

    function test_challengeWithHigherWelfareReplaces() public {
        uint64 first = commitBaseline();
        uint64 ends = clearing.dayState(market, DAY0).challengeEnds;
        vm.warp(ends); // the last second of the window
        uint64 id = challenge(groups(group(O_DIV, aw(R_DSO, 0, 5_000)), group(O_MIN, aw(R_DSO, 0, 3_000))));
        vm.expectEmit();
        emit ClearingCommitment.ResultClosed(id, market, DAY0, first, 86_000_000, 0, ends);
        closeAs(NOBODY, id);
        assertEq(status(first), REPLACED, "replaced");
        assertEq(status(id), CURRENT, "in force");
        ClearingCommitment.DayState memory d = clearing.dayState(market, DAY0);
        assertEq(d.current, id, "the day's result");
        assertEq(d.challengeEnds, ends, "a challenge does not extend the window");
        // the replaced result takes no more chunks, and a later challenge must beat the new one
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNotPosting.selector, first, REPLACED));
        postAs(OPERATOR, first, new Grp[](0));
    }

    function test_challengeWithEqualDsoAndHigherTsoWelfareWins() public {
        uint64 first = commitBaseline();
        uint64 id = challenge(groups(group(O_DIV, aw(R_DSO, 0, 5_000)), group(O_ZONE3, aw(R_TSO, 0, 3_000))));
        closeAs(NOBODY, id);
        assertEq(status(first), REPLACED, "replaced");
        assertEq(clearing.dayState(market, DAY0).current, id, "in force");
    }

    function test_challengeWithHigherTotalButLowerDsoWelfareLoses() public {
        commitBaseline();
        uint64 id = challenge(groups(group(O_DIV, aw(R_DSO, 0, 4_000)), group(O_ZONE3, aw(R_TSO, 0, 5_000))));
        // total 1.4e8 against 9e7, but the DSO stage comes first (rule 2)
        vm.expectRevert(
            abi.encodeWithSelector(
                ClearingCommitment.ClearingNotBetter.selector, 40_000_000, 100_000_000, 50_000_000, 40_000_000
            )
        );
        closeAs(NOBODY, id);
    }

    function test_challengeOpenedAfterTheWindow() public {
        commitBaseline();
        uint64 ends = clearing.dayState(market, DAY0).challengeEnds;
        vm.warp(ends + 1);
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingChallengeWindowClosed.selector, market, DAY0, ends)
        );
        openAs(NOBODY);
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingChallengeWindowClosed.selector, market, DAY0, ends)
        );
        openAs(OPERATOR);
    }

    function test_challengeClosedAfterTheWindow() public {
        commitBaseline();
        uint64 ends = clearing.dayState(market, DAY0).challengeEnds;
        uint64 id = challenge(groups(group(O_DIV, aw(R_DSO, 0, 5_000)), group(O_MIN, aw(R_DSO, 0, 3_000))));
        vm.warp(ends + 1);
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingChallengeWindowClosed.selector, market, DAY0, ends)
        );
        closeAs(NOBODY, id);
    }

    function test_finaliseBeforeTheWindowEnds() public {
        commitBaseline();
        uint64 ends = clearing.dayState(market, DAY0).challengeEnds;
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingChallengeWindowOpen.selector, market, DAY0, ends)
        );
        clearing.finalise(market, DAY0);
        vm.warp(ends);
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingChallengeWindowOpen.selector, market, DAY0, ends)
        );
        clearing.finalise(market, DAY0);
    }

    function test_finaliseAfterTheWindow() public {
        uint64 id = commitBaseline();
        uint64 late = openAs(NOBODY); // a challenger still posting when the window ends
        uint64 ends = clearing.dayState(market, DAY0).challengeEnds;
        vm.warp(ends + 1);
        vm.expectEmit();
        emit ClearingCommitment.DayFinalised(market, DAY0, id);
        vm.prank(NOBODY); // anyone may
        clearing.finalise(market, DAY0);
        ClearingCommitment.DayState memory d = clearing.dayState(market, DAY0);
        assertTrue(d.finalised, "final");
        assertEq(d.current, id, "the result in force");

        bytes memory dayFinal = abi.encodeWithSelector(ClearingCommitment.ClearingDayFinal.selector, market, DAY0);
        vm.expectRevert(dayFinal);
        openAs(OPERATOR);
        vm.expectRevert(dayFinal);
        openAs(NOBODY);
        vm.expectRevert(dayFinal);
        clearing.finalise(market, DAY0);
        vm.expectRevert(dayFinal);
        closeAs(NOBODY, late);
    }

    function test_finaliseWithoutAResult() public {
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNoResult.selector, market, DAY0));
        clearing.finalise(market, DAY0);
        openAs(OPERATOR); // opened, never closed
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNoResult.selector, market, DAY0));
        clearing.finalise(market, DAY0);
    }

    // ----------------------------------------------------------------------- superseded offers

    /// The operator's result awarding O_OLD (superseded by O_NEW in the book) and O_DIV, in one chunk.
    function commitSuperseded() internal returns (uint64 id, ClearingCommitment.AwardProof memory oldAward) {
        Grp[] memory gs =
            sorted(groups(group(O_DIV, aw(R_DSO, 0, 5_000)), group(O_OLD, aw(R_DSO_11, 0, 5_000))));
        id = commit(OPERATOR, gs);
        oldAward = awardProof(gs, 0, book.offerDigest(gs[0].offer) == digestOf(O_OLD) ? 0 : 1, 0);
    }

    function prove(
        uint64 id,
        ClearingCommitment.AwardProof memory award,
        uint256 older,
        OrderBook.Offer memory newer,
        uint256 newerAt
    ) internal {
        vm.prank(NOBODY);
        clearing.proveSuperseded(id, award, offerAt(older), newer, rootOf(newerAt), proofOf(newerAt));
    }

    function notAwarded(uint64 id, uint256 older) internal {
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingOlderOfferNotAwarded.selector, id, digestOf(older)));
    }

    function notNewer(uint256 older, uint256 newer) internal {
        vm.expectRevert(
            abi.encodeWithSelector(
                ClearingCommitment.ClearingOfferNotNewer.selector, digestOf(newer), offerAt(newer).nonce, offerAt(older).nonce
            )
        );
    }

    function test_awardProofsHoldForEveryAwardOfAChunk() public {
        Grp[] memory gs = sorted(
            groups(group(O_DIV, awards(aw(R_DSO, 0, 3_000), aw(R_TSO, 0, 2_000))), group(O_OLD, aw(R_DSO_11, 0, 5_000)))
        );
        uint64 id = commit(OPERATOR, gs);
        for (uint256 g = 0; g < gs.length; ++g) {
            bytes32 digest = book.offerDigest(gs[g].offer);
            for (uint256 k = 0; k < gs[g].awards.length; ++k) {
                ClearingCommitment.AwardProof memory a = awardProof(gs, 0, g, k);
                assertTrue(clearing.isAwarded(id, digest, a), "each award proven");
                a.powerW += 1;
                assertTrue(!clearing.isAwarded(id, digest, a), "not with another power");
            }
        }
    }

    function test_proveSupersededVoidsTheResult() public {
        (uint64 id, ClearingCommitment.AwardProof memory oldAward) = commitSuperseded();
        vm.expectEmit();
        emit ClearingCommitment.ResultVoided(id, digestOf(O_OLD), digestOf(O_NEW), NOBODY);
        prove(id, oldAward, O_OLD, offerAt(O_NEW), O_NEW);
        assertEq(status(id), VOID, "void");
        assertEq(clearing.dayState(market, DAY0).current, 0, "no result in force");

        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNoResult.selector, market, DAY0));
        clearing.finalise(market, DAY0);
        // the day is committed anew: by an operator again, with a window of its own
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, NOBODY, CLEARING_ROLE));
        openAs(NOBODY);
        vm.warp(block.timestamp + 10 minutes);
        uint64 again = commit(OPERATOR, groups(group(O_NEW, aw(R_DSO_11, 0, 5_000))));
        ClearingCommitment.DayState memory d = clearing.dayState(market, DAY0);
        assertEq(d.current, again, "the new result");
        assertEq(d.challengeEnds, block.timestamp + CHALLENGE, "a new window");
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNotPosting.selector, id, VOID));
        prove(id, oldAward, O_OLD, offerAt(O_NEW), O_NEW);
    }

    function test_proveSupersededVoidsAResultStillPosting() public {
        uint64 id = openAs(OPERATOR);
        Grp[] memory gs = groups(group(O_OLD, aw(R_DSO_11, 0, 5_000)));
        postAs(OPERATOR, id, gs);
        prove(id, awardProof(gs, 0, 0, 0), O_OLD, offerAt(O_NEW), O_NEW);
        assertEq(status(id), VOID, "void");
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNotPosting.selector, id, VOID));
        closeAs(OPERATOR, id);
    }

    function test_proveSupersededWithABadAwardProof() public {
        (uint64 id, ClearingCommitment.AwardProof memory oldAward) = commitSuperseded();
        ClearingCommitment.AwardProof memory bad = oldAward;
        bad.chunk = 1; // no chunk 1
        notAwarded(id, O_OLD);
        prove(id, bad, O_OLD, offerAt(O_NEW), O_NEW);
        bad = commitSupersededAward(oldAward);
        bad.powerW = 4_000; // not what was awarded
        notAwarded(id, O_OLD);
        prove(id, bad, O_OLD, offerAt(O_NEW), O_NEW);
        bad = commitSupersededAward(oldAward);
        bad.proof = new bytes32[](0);
        notAwarded(id, O_OLD);
        prove(id, bad, O_OLD, offerAt(O_NEW), O_NEW);
        notAwarded(id, O_MIN);
        prove(id, oldAward, O_MIN, offerAt(O_NEW), O_NEW); // O_MIN was not awarded
    }

    function commitSupersededAward(ClearingCommitment.AwardProof memory a)
        internal
        pure
        returns (ClearingCommitment.AwardProof memory copy)
    {
        copy = ClearingCommitment.AwardProof(a.chunk, a.requestId, a.ispStart, a.powerW, a.levelW, a.proof);
    }

    function test_proveSupersededNotTheSameKey() public {
        (uint64 id, ClearingCommitment.AwardProof memory oldAward) = commitSuperseded();
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingOffersNotOverlapping.selector, digestOf(O_OLD), digestOf(O_Y1))
        );
        prove(id, oldAward, O_OLD, offerAt(O_Y1), O_Y1); // same asset, another window
    }

    function test_proveSupersededByALowerOrEqualNonce() public {
        Grp[] memory gs = groups(group(O_NEW, aw(R_DSO_11, 0, 5_000)));
        uint64 id = commit(OPERATOR, gs);
        ClearingCommitment.AwardProof memory a = awardProof(gs, 0, 0, 0);
        notNewer(O_NEW, O_OLD);
        prove(id, a, O_NEW, offerAt(O_OLD), O_OLD);
        notNewer(O_NEW, O_NEW);
        prove(id, a, O_NEW, offerAt(O_NEW), O_NEW);
    }

    function test_proveSupersededByAnOfferNotInTheBook() public {
        (uint64 id, ClearingCommitment.AwardProof memory oldAward) = commitSuperseded();
        OrderBook.Offer memory unsent = offerAt(O_NEW);
        unsent.nonce = 99; // signed perhaps, never relayed
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingOfferNotInBook.selector, book.offerDigest(unsent), rootOf(O_NEW))
        );
        prove(id, oldAward, O_OLD, unsent, O_NEW);
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingOfferNotInBook.selector, digestOf(O_NEW), keccak256("x"))
        );
        vm.prank(NOBODY);
        clearing.proveSuperseded(id, oldAward, offerAt(O_OLD), offerAt(O_NEW), keccak256("x"), proofOf(O_NEW));
    }

    function test_proveSupersededOnAFinalDay() public {
        (uint64 id, ClearingCommitment.AwardProof memory oldAward) = commitSuperseded();
        vm.warp(clearing.dayState(market, DAY0).challengeEnds + 1);
        clearing.finalise(market, DAY0);
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingDayFinal.selector, market, DAY0));
        prove(id, oldAward, O_OLD, offerAt(O_NEW), O_NEW);
    }

    function test_proveSupersededAfterTheWindow() public {
        (uint64 id, ClearingCommitment.AwardProof memory oldAward) = commitSuperseded();
        uint64 ends = clearing.dayState(market, DAY0).challengeEnds;
        vm.warp(ends + 1); // not finalised yet, but the window is over
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingChallengeWindowClosed.selector, market, DAY0, ends)
        );
        prove(id, oldAward, O_OLD, offerAt(O_NEW), O_NEW);
    }

    function test_proveSupersededOnAReplacedResult() public {
        (uint64 id, ClearingCommitment.AwardProof memory oldAward) = commitSuperseded();
        uint64 better = challenge(groups(group(O_DIV, aw(R_DSO, 0, 5_000)), group(O_MIN, aw(R_DSO, 0, 6_000))));
        closeAs(NOBODY, better);
        vm.expectRevert(abi.encodeWithSelector(ClearingCommitment.ClearingNotPosting.selector, id, REPLACED));
        prove(id, oldAward, O_OLD, offerAt(O_NEW), O_NEW);
    }

    // ---------------------------------------------------------------------------------- fuzz

    struct Draft {
        uint256[2][2][4] powers; // [offer F_A + o][DSO, TSO][ISP]
        uint256[2][2] reqLoad; // [DSO, TSO][ISP]
        bool feasible;
        uint256 dso;
        uint256 tso;
        Grp[] groups;
    }

    /// Random powers that mostly make a feasible result (an offer left out, or given a level its
    /// mode allows in every ISP, split at random between the two requests), then, half the time,
    /// one cell moved by 500 W (which may break a block, a mode, a power, or nothing); the
    /// requests' totals are left to chance.
    function drawPowers(Draft memory d, uint256 seed) internal view {
        for (uint256 o = 0; o < 4; ++o) {
            OrderBook.Offer memory off = offerAt(F_A + o);
            uint256 rnd = uint256(keccak256(abi.encode(seed, o)));
            if (rnd % 4 == 0) continue; // not awarded
            uint256 level = off.powerW;
            if (off.mode != ALL_OR_NOTHING) {
                uint256 lo = off.mode == MIN_QUANTITY ? off.minPowerW : 500;
                level = lo + ((rnd >> 8) % ((off.powerW - lo) / 500 + 1)) * 500;
            }
            for (uint256 t = 0; t < off.isps; ++t) {
                uint256 dsoPart = ((rnd >> (16 + 8 * t)) % (level / 500 + 1)) * 500;
                (d.powers[o][0][t], d.powers[o][1][t]) = (dsoPart, level - dsoPart);
            }
        }
        uint256 nudge = uint256(keccak256(abi.encode(seed, "nudge")));
        if (nudge % 2 == 0) {
            uint256 o = (nudge >> 8) % 4;
            uint256 r = (nudge >> 16) % 2;
            uint256 t = (nudge >> 24) % offerAt(F_A + o).isps;
            if ((nudge >> 32) % 2 == 0) d.powers[o][r][t] += 500;
            else if (d.powers[o][r][t] >= 500) d.powers[o][r][t] -= 500;
        }
    }

    /// The awards of fuzz offer `o` (nonzero powers only) into the draft's groups, and the
    /// reference check of its per-ISP totals: the offer's power, its block and its mode.
    function draftOffer(Draft memory d, uint256 o) internal view {
        OrderBook.Offer memory off = offerAt(F_A + o);
        Aw[] memory list = new Aw[](2 * off.isps);
        uint256[] memory totals = new uint256[](off.isps);
        uint256 n;
        for (uint256 r = 0; r < 2; ++r) {
            for (uint16 t = 0; t < off.isps; ++t) {
                uint256 p = d.powers[o][r][t];
                if (p == 0) continue;
                list[n++] = aw(r == 0 ? F_DSO : F_TSO, t, uint32(p));
                totals[t] += p;
                d.reqLoad[r][t] += p;
                if (r == 0) d.dso += value(p, DSO_MAX, off.price);
                else d.tso += value(p, TSO_MAX, off.price);
            }
        }
        if (n == 0) return;
        assembly ("memory-safe") {
            mstore(list, n)
        }
        d.groups = append(d.groups, group(F_A + o, list));
        for (uint256 t = 0; t < off.isps; ++t) {
            if (totals[t] != totals[0] || totals[t] > off.powerW) d.feasible = false; // block, power
            if (off.mode == MIN_QUANTITY && totals[t] < off.minPowerW) d.feasible = false;
            if (off.mode == ALL_OR_NOTHING && totals[t] != off.powerW) d.feasible = false;
        }
    }

    /// The draft of `seed`: its groups (sorted) and whether the reference check finds them feasible
    /// (per offer above, per request and ISP at most the request's power).
    function draft(uint256 seed) internal view returns (Draft memory d) {
        (d.feasible, d.groups) = (true, new Grp[](0));
        drawPowers(d, seed);
        for (uint256 o = 0; o < 4; ++o) {
            draftOffer(d, o);
        }
        for (uint256 t = 0; t < 2; ++t) {
            if (d.reqLoad[0][t] > 8_000 || d.reqLoad[1][t] > 6_000) d.feasible = false;
        }
        d.groups = sorted(d.groups);
    }

    /// Random awards over the fuzz book (offers F_A..F_D, requests F_DSO of 8 kW and F_TSO of 6 kW
    /// at 14:00 x2, no lights): `post` accepts exactly when the reference check finds them feasible.
    function testFuzz_acceptsExactlyTheFeasibleResults(uint256 seed) public {
        Draft memory d = draft(seed);
        Grp[] memory gs = d.groups;
        uint64 id = openAs(OPERATOR);
        bool accepted;
        vm.prank(OPERATOR);
        try clearing.post(id, rootsOf(gs), wire(gs)) {
            accepted = true;
        } catch {}
        assertTrue(accepted == d.feasible, d.feasible ? "feasible but rejected" : "infeasible but accepted");
        if (accepted) {
            ClearingCommitment.Result memory res = clearing.result(id);
            assertEq(res.dsoValue, d.dso, "DSO value");
            assertEq(res.tsoValue, d.tso, "TSO value");
            for (uint16 t = 0; t < 2; ++t) {
                assertEq(clearing.requestLoad(id, F_DSO, t), d.reqLoad[0][t], "DSO request load");
                assertEq(clearing.requestLoad(id, F_TSO, t), d.reqLoad[1][t], "TSO request load");
            }
        }
    }

    /// The batch tree helper against OpenZeppelin's verifier, for any batch size and leaf.
    function testFuzz_batchTreeProofsVerify(uint8 size, uint8 leaf, bytes32 salt) public pure {
        uint256 n = bound(size, 1, 70);
        uint256 i = bound(leaf, 0, n - 1);
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 k = 0; k < n; ++k) {
            leaves[k] = keccak256(abi.encode(salt, k));
        }
        assertTrue(MerkleProof.verify(BatchTree.proof(leaves, i), BatchTree.root(leaves), leaves[i]), "verifies");
        assertTrue(!MerkleProof.verify(BatchTree.proof(leaves, i), BatchTree.root(leaves), salt), "not another leaf");
    }

    // ------------------------------------------------------------------- per-transaction caches

    /// The request cache (transient storage) is keyed by the result's market and day too: a
    /// contract that posts to a market-1 result and then to a market-2 result of the same day, in
    /// one transaction, cannot get a market-1 request awarded in the market-2 result.
    function test_requestCheckedForEveryResultInOneTransaction() public {
        commit(OPERATOR, new Grp[](0));
        uint64 m2 = openIn(OPERATOR, market2);
        closeAs(OPERATOR, m2);
        SameTransactionPoster poster = new SameTransactionPoster();
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingRequestNotOpen.selector, digestOf(O_MARKET2), R_DSO)
        );
        Grp[] memory first = groups(group(O_DIV, aw(R_DSO, 0, 5_000)));
        Grp[] memory second = groups(group(O_MARKET2, aw(R_DSO, 0, 5_000)));
        poster.openPostTwice(clearing, market, market2, DAY0, rootsOf(first), wire(first), rootsOf(second), wire(second));
    }
}

/// Gas of posting a chunk of 200 single-ISP awards from 200 offers (logged, not asserted).
contract ClearingGasTest is ClearingFixture {
    uint256 internal constant N = 200;
    uint64 internal gasDso;
    uint64 internal gasTso;
    uint256 internal firstOffer;

    /// 200 assets in feeder 5, one offer each at 18:00; a DSO request in zone 2 and a TSO request in
    /// zone 1 for all of it; zones 2, 4 and 5 YELLOW UP all day (2 MW), so a TSO award checks three lights.
    function buildBook() internal override {
        OrderBook.Offer[] memory os = new OrderBook.Offer[](N);
        for (uint256 i = 0; i < N; ++i) {
            os[i] = offer(newAsset(5), DAY0 + 18 hours, 1, 5_000, 10_000);
        }
        gasDso = request(DSO1, market, 2, DAY0 + 18 hours, 1, UP, uint32(N * 5_000), DSO_MAX);
        gasTso = request(TSO, market, 1, DAY0 + 18 hours, 1, UP, uint32(N * 5_000), TSO_MAX);
        uint32[] memory lit = new uint32[](3);
        (lit[0], lit[1], lit[2]) = (2, 4, 5);
        uint256[] memory day = dayWords(light(YELLOW, 2_000_000), 0);
        uint256[] memory words = new uint256[](72);
        for (uint256 i = 0; i < 72; ++i) {
            words[i] = day[i % 24];
        }
        vm.prank(DSO1);
        zones.publishDay(market, DAY0, lit, words);
        firstOffer = relayAll(os);
    }

    function postAndLog(uint64 requestId, string memory what) internal returns (uint64 id) {
        // the batch's tree built once (group() rebuilds it per offer: too slow for 200)
        bytes32[] memory leaves = batchLeaves[listed[firstOffer].batch];
        bytes32[][] memory tree = BatchTree.levels(leaves);
        bytes32 root = tree[tree.length - 1][0];
        Grp[] memory gs = new Grp[](N);
        for (uint256 i = 0; i < N; ++i) {
            uint256 k = i; // one offer per asset, assets created in order: posting order is batch order
            gs[k].offer = listed[firstOffer + i].offer;
            gs[k].batchRoot = root;
            gs[k].proof = BatchTree.proofAt(tree, i);
            gs[k].awards = awards(aw(requestId, 0, 5_000));
        }
        id = openAs(OPERATOR);
        bytes memory data = abi.encodeCall(ClearingCommitment.post, (id, rootsOf(gs), wire(gs)));
        uint256 calldataGas;
        for (uint256 i = 0; i < data.length; ++i) {
            calldataGas += data[i] == 0 ? 4 : 16;
        }
        vm.prank(OPERATOR);
        clearing.post(id, rootsOf(gs), wire(gs));
        uint256 execution = vm.lastCallGas().gasTotalUsed;
        assertEq(clearing.result(id).awards, N, "all posted");
        emit log_named_uint(string.concat(what, ": execution gas per award (lastCallGas)"), execution / N);
        emit log_named_uint(string.concat(what, ": calldata gas per award"), calldataGas / N);
        emit log_named_uint(
            string.concat(what, ": transaction gas per award (+21,000 + calldata)"),
            (execution + 21_000 + calldataGas) / N
        );
        emit log_named_uint(string.concat(what, ": transaction gas, whole chunk"), execution + 21_000 + calldataGas);
    }

    function test_gas_post200DsoAwards() public {
        uint64 id = postAndLog(gasDso, "200 DSO awards");
        assertEq(clearing.requestLoad(id, gasDso, 0), N * 5_000, "loaded");
    }

    function test_gas_post200TsoAwardsUnderYellowLights() public {
        (uint8 colour, uint32 capability) = zones.effectiveLight(market, 4, DAY0 + 18 hours, UP);
        assertEq(colour, YELLOW, "yellow");
        assertEq(capability, 2_000_000, "2 MW");
        uint64 id = postAndLog(gasTso, "200 TSO awards, 3 YELLOW zones on the path");
        assertEq(clearing.requestLoad(id, gasTso, 0), N * 5_000, "loaded");
    }
}
