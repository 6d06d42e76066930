// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ClearingFixture} from "../market/ClearingFixture.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {ClearingCommitment} from "../../src/market/ClearingCommitment.sol";
import {AssetRegistry} from "../../src/grid/AssetRegistry.sol";

/// Issue 16's residue. (1) RT-3's sibling across markets: one asset offered in two markets for
/// the same ISP was awarded and paid in each (a result sees its own market only). Each asset now
/// sells in one market per ISP: the book refuses an offer outside it, and a change of market
/// binds only beyond the trading horizon. (2) The mapping (zone, status, prequalified power) is
/// judged as of the day's gate closure, as membership is: a DSO re-mapping between the gate
/// closure and the commitment no longer changes what a result may award.
contract RedteamMarketsTest is ClearingFixture {
    uint64 internal constant NEXT = DAY0 + 1 days + 8 hours; // still open after setUp's gate closure
    uint64 internal constant LEAD_31 = 31 days; // AssetRegistry.MARKET_CHANGE_LEAD

    function expectWrongMarket(OrderBook.Offer memory o, uint256 key) internal {
        (OrderBook.Offer[] memory os, bytes[] memory sigs) = single(o, sign(key, o));
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookWrongMarket.selector, o.asset, o.portfolio, o.market));
        vm.prank(aggregator);
        submit(book, os, sigs, true);
    }

    function expectAccepted(OrderBook.Offer memory o) internal {
        assertEq(relay(aggregator, o, sign(OWNER_KEY, o)), 1, "accepted");
    }

    function consents(uint64[] memory ids) internal view returns (bytes[] memory sigs, uint64 deadline) {
        deadline = uint64(block.timestamp + 1 hours);
        sigs = new bytes[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            bytes32 digest = assets.consentDigest(AGG, ids[i], assets.consentNonce(ids[i]), deadline);
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_KEY, digest);
            sigs[i] = abi.encodePacked(r, s, v);
        }
    }

    // ------------------------------------------------------------------ (1) one market per ISP

    /// The exploit: asset1, bound to `market`, offers the same ISP in market2. The book refuses it.
    function test_sameAssetInASecondMarketIsRefused() public {
        OrderBook.Offer memory o = offer(asset1, NEXT, 1, 5_000, 10_000);
        o.market = market2;
        expectWrongMarket(o, OWNER_KEY);
        o.market = market;
        expectAccepted(o);
        assertEq(assets.marketFor(asset1, NEXT, NEXT + ISP), market, "bound to the market it was mapped for");
    }

    /// A change of market binds only ISPs that nobody can have offered yet: an ISP already open in
    /// the old market stays there, whatever the two markets' gate closures.
    function test_changeOfMarketBindsBeyondTheTradingHorizon() public {
        uint64 from = uint64(block.timestamp) + LEAD_31;
        vm.expectEmit();
        emit AssetRegistry.AssetMarketSet(asset1, market2, from);
        vm.prank(DSO1);
        assets.mapAsset(asset1, 5, UP_W, DOWN_W, market2);
        assertEq((assets.offerWord(asset1) >> 188) & 15, 0, "the word no longer names a market: history decides");

        OrderBook.Offer memory o = offer(asset1, NEXT, 1, 5_000, 10_000);
        o.market = market2;
        expectWrongMarket(o, OWNER_KEY);
        o.market = market;
        expectAccepted(o);

        assertEq(assets.marketFor(asset1, from - ISP, from), market, "before the change: the old market");
        assertEq(assets.marketFor(asset1, from, from + ISP), market2, "from the change: the new one");
        assertEq(assets.marketFor(asset1, from - 1, from + 1), 0, "a window across the change: none");

        uint64 dayOfChange = from - from % 1 days;
        uint64 after_ = dayOfChange + 1 days;
        vm.warp(after_ - 3 days);
        o = offer(asset1, after_ + 8 hours, 1, 5_000, 10_000);
        (o.market, o.expiry) = (market, after_);
        expectWrongMarket(o, OWNER_KEY);
        o.market = market2;
        expectAccepted(o);
        o = offer(asset1, dayOfChange - 1 days + 8 hours, 1, 5_000, 10_000);
        (o.market, o.expiry) = (market2, after_);
        expectWrongMarket(o, OWNER_KEY);
        o.market = market;
        expectAccepted(o);

        assets.applyMarket(asset1); // too early: nothing changes
        assertEq((assets.offerWord(asset1) >> 188) & 15, 0, "still pending");
        vm.warp(from);
        assets.applyMarket(asset1);
        assertEq((assets.offerWord(asset1) >> 188) & 15, market2, "in force for every ISP still to offer");
    }

    /// Re-mapping with the same market schedules nothing.
    function test_remapInTheSameMarketChangesNothing() public {
        vm.prank(DSO1);
        assets.mapAsset(asset1, 5, UP_W / 2, DOWN_W, market);
        assertEq((assets.offerWord(asset1) >> 188) & 15, market, "still in the word");
        assertEq(assets.marketFor(asset1, type(uint64).max - 1, type(uint64).max), market, "no change ahead");
    }

    /// A portfolio's members share its market, with no change scheduled; its offers sell there only.
    function test_portfolioMembersShareOneMarket() public {
        bindMarket = market2;
        uint64 other = newAsset(5);
        bindMarket = 0;
        uint64[] memory ids = assetIds(a2, other);
        (bytes[] memory sigs, uint64 deadline) = consents(ids);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetMarketMismatch.selector, other, market2, market));
        vm.prank(AGG);
        assets.createPortfolio(5, ids, sigs, deadline);

        vm.prank(DSO1);
        assets.mapAsset(a3, 5, UP_W, DOWN_W, market2); // scheduled: a3 has two markets ahead
        ids = assetIds(a3);
        (sigs, deadline) = consents(ids);
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetMarketMismatch.selector, a3, 0, 0));
        vm.prank(AGG);
        assets.createPortfolio(5, ids, sigs, deadline);

        ids = assetIds(a2);
        (sigs, deadline) = consents(ids);
        vm.prank(AGG);
        uint32 p = assets.createPortfolio(5, ids, sigs, deadline);
        assertEq(assets.marketOfPortfolio(p), market, "the members' market");
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetInPortfolio.selector, a2, p));
        vm.prank(DSO1);
        assets.mapAsset(a2, 5, UP_W, DOWN_W, market2); // a member cannot leave its portfolio's market
    }

    /// A meter freed by a deregistration sells through its next asset only beyond the trading
    /// horizon: its old asset's market may have sold the ISPs before.
    function test_reregisteredMeterWaitsForTheHorizon() public {
        address meter = keyedMeter(0x3E9999);
        grant(meter, METER_ROLE);
        uint64 first = registerAndMap(owner, meter, 5);
        vm.prank(owner);
        assets.deregisterAsset(first);
        uint64 free = uint64(block.timestamp) + LEAD_31;
        uint64 second = registerWithMeter(assets, owner, meter, 2);
        vm.expectEmit();
        emit AssetRegistry.AssetMarketSet(second, market2, free);
        vm.prank(DSO1);
        assets.mapAsset(second, 5, UP_W, DOWN_W, market2);
        OrderBook.Offer memory o = offer(second, NEXT, 1, 5_000, 10_000);
        o.market = market2;
        expectWrongMarket(o, OWNER_KEY);
        assertEq(assets.marketFor(second, free, free + ISP), market2, "sells from then on");
    }

    /// What a DSO pays to map (BENCHMARKS.md): a first mapping in a market the word holds writes no
    /// history; the first change after it starts the mapping's history (two checkpoints).
    function test_gas_mapping() public {
        address meter = keyedMeter(0x3E7777);
        grant(meter, METER_ROLE);
        uint64 id = registerWithMeter(assets, owner, meter, 2);
        vm.prank(DSO1);
        uint256 g = gasleft();
        assets.mapAsset(id, 5, UP_W, DOWN_W, market);
        emit log_named_uint("first mapping gas", g - gasleft());
        vm.prank(DSO1);
        g = gasleft();
        assets.mapAsset(id, 5, UP_W / 2, DOWN_W, market);
        emit log_named_uint("first re-mapping gas", g - gasleft());
        vm.prank(DSO1);
        g = gasleft();
        assets.mapAsset(id, 5, UP_W, DOWN_W, market);
        emit log_named_uint("later re-mapping gas", g - gasleft());
        assertEq(assets.marketFor(id, NEXT, NEXT + ISP), market, "bound without a history");
    }

    // ------------------------------------------------- (2) the mapping as of the gate closure

    function awardDiv() internal pure returns (Aw memory) {
        return aw(R_DSO, 0, 1_000);
    }

    /// asset1 (feeder 5, under zone 2) is handed over to zone 3 after the gate closure: the result
    /// still sees it in feeder 5, as the book and the optimiser did.
    function test_remapAfterGateClosureDoesNotChangeTheResult() public {
        vm.prank(DSO1);
        assets.handOverAsset(asset1, 3);
        vm.prank(DSO2);
        assets.mapAsset(asset1, 3, UP_W, DOWN_W, market);
        (, uint32 zoneNow,,,,,,) = assets.asset(asset1);
        assertEq(zoneNow, 3, "re-mapped");
        (uint256 word,) = assets.offerWordAt(asset1, CLOSURE);
        assertEq(uint24(word >> 160), 5, "at the gate closure: feeder 5");
        commit(OPERATOR, groups(group(O_DIV, awardDiv())));
    }

    /// The same hand-over before the gate closure: the result sees zone 3, outside R_DSO's zone.
    function test_remapBeforeGateClosureCounts() public {
        uint256 later = block.timestamp;
        vm.warp(CLOSURE - 10);
        vm.prank(DSO1);
        assets.handOverAsset(asset1, 3);
        vm.prank(DSO2);
        assets.mapAsset(asset1, 3, UP_W, DOWN_W, market);
        vm.warp(later);
        expectRejected(
            groups(group(O_DIV, awardDiv())),
            abi.encodeWithSelector(ClearingCommitment.ClearingZoneOutsideRequest.selector, digestOf(O_DIV), R_DSO, 3, 2)
        );
    }

    /// Suspended after the gate closure: still awarded (it could sell then). Before: refused.
    function test_suspensionJudgedAtGateClosure() public {
        vm.prank(DSO1);
        assets.suspendAsset(asset1);
        commit(OPERATOR, groups(group(O_DIV, awardDiv())));
    }

    function test_suspensionBeforeGateClosureRefused() public {
        uint256 later = block.timestamp;
        vm.warp(CLOSURE - 10);
        vm.prank(DSO1);
        assets.suspendAsset(asset1);
        vm.warp(later);
        expectRejected(
            groups(group(O_DIV, awardDiv())),
            abi.encodeWithSelector(ClearingCommitment.ClearingAssetTermsChanged.selector, digestOf(O_DIV), asset1)
        );
        vm.prank(DSO1);
        assets.reinstateAsset(asset1); // after the gate closure: too late for DAY0
        expectRejected(
            groups(group(O_DIV, awardDiv())),
            abi.encodeWithSelector(ClearingCommitment.ClearingAssetTermsChanged.selector, digestOf(O_DIV), asset1)
        );
    }

    /// Prequalified power cut below the offer's 5 kW before the gate closure: the offer is out;
    /// cut after it: the offer stands.
    function test_prequalifiedPowerJudgedAtGateClosure() public {
        uint256 later = block.timestamp;
        vm.warp(CLOSURE - 10);
        vm.prank(DSO1);
        assets.mapAsset(asset1, 5, 4_000, DOWN_W, market);
        vm.warp(later);
        expectRejected(
            groups(group(O_DIV, awardDiv())),
            abi.encodeWithSelector(ClearingCommitment.ClearingAssetTermsChanged.selector, digestOf(O_DIV), asset1)
        );
        vm.prank(DSO1);
        assets.mapAsset(asset1, 5, UP_W, DOWN_W, market); // restored after the gate closure: too late
        expectRejected(
            groups(group(O_DIV, awardDiv())),
            abi.encodeWithSelector(ClearingCommitment.ClearingAssetTermsChanged.selector, digestOf(O_DIV), asset1)
        );
    }

    function test_prequalifiedPowerCutAfterGateClosure() public {
        vm.prank(DSO1);
        assets.mapAsset(asset1, 5, 1_000, DOWN_W, market);
        commit(OPERATOR, groups(group(O_DIV, awardDiv())));
    }
}
