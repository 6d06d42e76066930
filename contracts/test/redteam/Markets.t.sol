// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ClearingFixture} from "../market/ClearingFixture.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {ClearingCommitment} from "../../src/market/ClearingCommitment.sol";
import {AssetRegistry} from "../../src/grid/AssetRegistry.sol";
import {OfferWord} from "../../src/types/OfferWord.sol";

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
        assertEq(OfferWord.wrap(assets.offerWord(asset1)).market(), 0, "the word no longer names a market: history decides");

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
        assertEq(OfferWord.wrap(assets.offerWord(asset1)).market(), 0, "still pending");
        vm.warp(from);
        assets.applyMarket(asset1);
        assertEq(OfferWord.wrap(assets.offerWord(asset1)).market(), market2, "in force for every ISP still to offer");
    }

    /// Re-mapping with the same market schedules nothing.
    function test_remapInTheSameMarketChangesNothing() public {
        vm.prank(DSO1);
        assets.mapAsset(asset1, 5, UP_W / 2, DOWN_W, market);
        assertEq(OfferWord.wrap(assets.offerWord(asset1)).market(), market, "still in the word");
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
        assertEq(OfferWord.wrap(word).zone(), 5, "at the gate closure: feeder 5");
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

/// Issue 16's last residue: a portfolio offer's power as of the day's gate closure. The book
/// checks it at posting (the summed prequalified power of the portfolio's ACTIVE members); a DSO
/// suspending a member, or a member leaving, between the posting and the gate closure must shrink
/// what the result may award, as it does for an asset's own offer. P (aggregator's, feeder 5) holds
/// m1, m2, m3 (10 kW UP, 8 kW DOWN each) and offers 25 kW UP at 08:00: more than any two members.
contract RedteamPortfolioTermsTest is ClearingFixture {
    uint64 internal constant H8 = DAY0 + 8 hours;
    uint64 internal m1;
    uint64 internal m2;
    uint64 internal m3;
    uint32 internal pf;
    uint256 internal iPf; // P's offer in `listed`
    uint32 internal pfNonce;

    function buildBook() internal override {
        super.buildBook();
        (m1, m2, m3) = (newAsset(5), newAsset(5), newAsset(5));
        pf = join(assetIds(m1, m2, m3));
        iPf = relayPortfolio(pf, UP, 25_000);
    }

    /// `aggregator` founds a portfolio in feeder 5 of `owner`'s assets `ids`.
    function join(uint64[] memory ids) internal returns (uint32) {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        bytes[] memory sigs = new bytes[](ids.length);
        for (uint256 i = 0; i < ids.length; ++i) {
            bytes32 digest = assets.consentDigest(aggregator, ids[i], assets.consentNonce(ids[i]), deadline);
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_KEY, digest);
            sigs[i] = abi.encodePacked(r, s, v);
        }
        vm.prank(aggregator);
        return assets.createPortfolio(5, ids, sigs, deadline);
    }

    /// The aggregator offers `powerW` of portfolio `p` at 08:00 in `direction`: its index in `listed`.
    function relayPortfolio(uint32 p, uint8 direction, uint32 powerW) internal returns (uint256) {
        OrderBook.Offer[] memory os = new OrderBook.Offer[](1);
        os[0] = assetOffer(0, H8, ++pfNonce);
        (os[0].portfolio, os[0].direction, os[0].powerW) = (p, direction, powerW);
        return relayAllSignedBy(AGGREGATOR_KEY, os);
    }

    function pfGroup(uint256 i) internal view returns (Grp[] memory) {
        return groups(group(i, aw(offerAt(i).direction == UP ? R_DSO : R_DOWN, 0, 1_000)));
    }

    function termsChanged(uint256 i, uint256 availableW) internal view returns (bytes memory) {
        return abi.encodeWithSelector(
            ClearingCommitment.ClearingPortfolioTermsChanged.selector, digestOf(i), pf, availableW, offerAt(i).powerW
        );
    }

    /// To ten seconds before the gate closure; returns the time to come back to.
    function beforeClosure() internal returns (uint256 later) {
        later = block.timestamp;
        vm.warp(CLOSURE - 10);
    }

    function test_portfolioTermsAtTheGateClosure() public {
        (address agg, uint32 zone, uint256 upW, uint256 downW) = assets.portfolioTermsAt(pf, CLOSURE);
        assertEq(agg, aggregator, "its aggregator");
        assertEq(zone, 5, "its zone");
        assertEq(upW, 3 * uint256(UP_W), "three members UP");
        assertEq(downW, 3 * uint256(DOWN_W), "three members DOWN");
        (,, uint256 upBefore,) = assets.portfolioTermsAt(pf, 0);
        assertEq(upBefore, 0, "before it was founded: nobody");
        commit(OPERATOR, pfGroup(iPf));
    }

    /// The exploit: a DSO suspends m1 after the offer was posted, before the gate closure. The two
    /// members left are prequalified for 20 kW: the 25 kW offer cannot be awarded (before the fix
    /// it was, sold on m1's meter too). Reinstated after the gate closure: too late for the day.
    function test_memberSuspendedBeforeGateClosureRefused() public {
        uint256 later = beforeClosure();
        vm.prank(DSO1);
        assets.suspendAsset(m1);
        vm.warp(later);
        expectRejected(pfGroup(iPf), termsChanged(iPf, 2 * uint256(UP_W)));
        vm.prank(DSO1);
        assets.reinstateAsset(m1);
        expectRejected(pfGroup(iPf), termsChanged(iPf, 2 * uint256(UP_W)));
    }

    /// At the gate closure's very second, as the asset's own offers are judged (`offerWordAt`).
    function test_memberSuspendedAtTheGateClosureRefused() public {
        uint256 later = block.timestamp;
        vm.warp(CLOSURE);
        vm.prank(DSO1);
        assets.suspendAsset(m2);
        vm.warp(later);
        expectRejected(pfGroup(iPf), termsChanged(iPf, 2 * uint256(UP_W)));
    }

    function test_memberSuspendedAfterGateClosureCounts() public {
        vm.prank(DSO1);
        assets.suspendAsset(m1);
        vm.prank(DSO1);
        assets.suspendAsset(m2);
        commit(OPERATOR, pfGroup(iPf));
    }

    /// The portfolio's power falls when a member leaves before the gate closure (a DSO cannot
    /// lower a member's prequalified power while it is a member: only by taking it out first).
    function test_memberLeftBeforeGateClosure_powerFalls() public {
        vm.expectRevert(abi.encodeWithSelector(AssetRegistry.AssetInPortfolio.selector, m3, pf));
        vm.prank(DSO1);
        assets.mapAsset(m3, 5, 1_000, DOWN_W, market);
        uint256 later = beforeClosure();
        vm.prank(owner);
        assets.removeFromPortfolio(m3);
        vm.prank(DSO1);
        assets.mapAsset(m3, 5, 1_000, DOWN_W, market); // lowered while out: it is no member at all
        vm.warp(later);
        expectRejected(pfGroup(iPf), termsChanged(iPf, 2 * uint256(UP_W)));
    }

    /// Left after the gate closure, then re-mapped lower and deregistered: the day still sees the
    /// member as it was at the gate closure (its deregistration is in its history too).
    function test_memberLeftAfterGateClosure_laterChangesDoNotMatter() public {
        vm.prank(owner);
        assets.removeFromPortfolio(m3);
        vm.prank(DSO1);
        assets.mapAsset(m3, 5, 1_000, 1_000, market);
        vm.warp(block.timestamp + 1);
        vm.prank(owner);
        assets.deregisterAsset(m3);
        (uint256 word,) = assets.offerWordAt(m3, uint64(block.timestamp));
        assertEq(OfferWord.wrap(word).status(), 0, "deregistered now");
        (,, uint256 upW,) = assets.portfolioTermsAt(pf, CLOSURE);
        assertEq(upW, 3 * uint256(UP_W), "all three as at the gate closure");
        commit(OPERATOR, pfGroup(iPf));
    }

    /// A DOWN offer is judged on the members' DOWN power (8 kW each: 20 kW needs all three).
    function test_downOfferJudgedOnDownPower() public {
        uint256 later = block.timestamp;
        vm.warp(CLOSURE - 100);
        uint256 iDown = relayPortfolio(pf, DOWN, 20_000);
        vm.warp(CLOSURE - 10);
        vm.prank(DSO1);
        assets.suspendAsset(m3);
        vm.warp(later);
        expectRejected(pfGroup(iDown), termsChanged(iDown, 2 * uint256(DOWN_W)));
    }

    /// What the check costs an award of a three-member portfolio (compare the asset offers' figures).
    function test_gas_portfolioGroup() public {
        uint64 id = openAs(OPERATOR);
        Grp[] memory gs = pfGroup(iPf);
        bytes32[] memory roots = rootsOf(gs);
        ClearingCommitment.OfferAwards[] memory w = wire(gs);
        vm.prank(OPERATOR);
        uint256 g = gasleft();
        clearing.post(id, roots, w);
        emit log_named_uint("post: one portfolio group of 3 members, one award", g - gasleft());
    }

    /// The registry's side of the check, cold, per member (README "Clearing"): `portfolioTerms` (the
    /// book's, now) against `portfolioTermsAt` (the commitment's), members without a history, then
    /// with one (a suspension and a reinstatement after the gate closure).
    function test_gas_portfolioTermsAt_noHistory() public {
        uint256 g = gasleft();
        assets.portfolioTermsAt(pf, CLOSURE);
        emit log_named_uint("portfolioTermsAt, 3 members without history", g - gasleft());
    }

    function test_gas_portfolioTerms_now() public {
        uint256 g = gasleft();
        assets.portfolioTerms(pf);
        emit log_named_uint("portfolioTerms, 3 members", g - gasleft());
    }

    function test_gas_portfolioTermsAt_withHistory() public {
        uint64[3] memory ms = [m1, m2, m3];
        for (uint256 i = 0; i < 3; ++i) {
            vm.prank(DSO1);
            assets.suspendAsset(ms[i]);
            vm.prank(DSO1);
            assets.reinstateAsset(ms[i]);
        }
        // the slots just written are warm in this one transaction: cool them as a new one would find them
        vm.cool(address(assets));
        uint256 g = gasleft();
        assets.portfolioTermsAt(pf, CLOSURE);
        emit log_named_uint("portfolioTermsAt, 3 members with a history", g - gasleft());
    }

    // ------------------------------------------------------------------------------ the fuzz

    struct Plan {
        uint32 up;
        uint32 down;
        uint8 action; // 0 none, 1 suspended, 2 suspended then reinstated, 3 left, then re-mapped and deregistered
        uint64 at; // when the action starts
    }

    /// A fresh member: `owner`'s asset in feeder 5 with the given powers.
    function member(uint256 i, uint32 up, uint32 down) internal returns (uint64 id) {
        address meter = keyedMeter(0x3E8000 + i);
        grant(meter, METER_ROLE);
        id = registerWithMeter(assets, owner, meter, 2);
        vm.prank(DSO1);
        assets.mapAsset(id, 5, up, down, market);
    }

    /// Whether member `p` counts at the gate closure in the reference model: still a member then
    /// (one that left at the very second does not count) and ACTIVE then.
    function countsAtClosure(Plan memory p) internal pure returns (bool) {
        if (p.action == 0) return true;
        if (p.action == 3) return p.at > CLOSURE;
        if (p.action == 1) return p.at > CLOSURE;
        return p.at > CLOSURE || p.at + 300 <= CLOSURE; // reinstated 300 s after its suspension
    }

    function act(uint64 id, Plan memory p) internal {
        if (p.action == 0) return;
        vm.warp(p.at);
        if (p.action == 3) {
            vm.prank(owner);
            assets.removeFromPortfolio(id);
            vm.warp(p.at + 300);
            vm.prank(DSO1);
            assets.mapAsset(id, 5, 1, 1, market);
            vm.warp(p.at + 600);
            vm.prank(owner);
            assets.deregisterAsset(id);
            return;
        }
        vm.prank(DSO1);
        assets.suspendAsset(id);
        if (p.action == 2) {
            vm.warp(p.at + 300);
            vm.prank(DSO1);
            assets.reinstateAsset(id);
        }
    }

    /// Three fresh members of the plans' powers in a new portfolio, and its offer of `powerW`: its index in `listed`.
    function portfolioOf(Plan[3] memory plans, bool down, uint32 powerW)
        internal
        returns (uint64[] memory ids, uint32 p, uint256 i0)
    {
        ids = new uint64[](3);
        for (uint256 i = 0; i < 3; ++i) {
            ids[i] = member(i, plans[i].up, plans[i].down);
        }
        p = join(ids);
        OrderBook.Offer[] memory os = new OrderBook.Offer[](1);
        os[0] = assetOffer(0, H8, 1);
        (os[0].portfolio, os[0].direction, os[0].powerW) = (p, down ? DOWN : UP, powerW);
        i0 = relayAllSignedBy(AGGREGATOR_KEY, os);
    }

    /// Post offer `i0`'s award of 1 W, expecting `ClearingPortfolioTermsChanged` when `availableW`
    /// is below the offer's power.
    function postExpecting(uint256 i0, uint32 p, uint256 availableW) internal {
        OrderBook.Offer memory o = offerAt(i0);
        Grp[] memory gs = groups(group(i0, aw(o.direction == DOWN ? R_DOWN : R_DSO, 0, 1)));
        uint64 id = openAs(OPERATOR);
        if (availableW < o.powerW) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    ClearingCommitment.ClearingPortfolioTermsChanged.selector, digestOf(i0), p, availableW, o.powerW
                )
            );
        }
        postAs(OPERATOR, id, gs);
    }

    /// forge-config: default.fuzz.runs = 10000
    /// forge-config: quick.fuzz.runs = 1000
    /// Three fresh members of any powers; each suspended (and perhaps reinstated), or taken out
    /// (then re-mapped lower and deregistered), at any time around the gate closure, or left alone;
    /// an offer of any power the book takes, UP or DOWN. The award commits exactly when the offer's
    /// power is at most the reference sum (members then, ACTIVE then, powers then); otherwise it
    /// reverts naming that sum. `portfolioTermsAt` is the reference sum in both directions.
    function testFuzz_portfolioPowerJudgedAtGateClosure(
        uint32[3] memory ups,
        uint32[3] memory downs,
        uint8[3] memory actions,
        uint16[3] memory offsets,
        bool down,
        uint32 power
    ) public {
        vm.warp(CLOSURE - 2 hours);
        Plan[3] memory plans;
        uint256 sum;
        for (uint256 i = 0; i < 3; ++i) {
            plans[i] = Plan(
                uint32(bound(ups[i], 1, 20_000)), uint32(bound(downs[i], 1, 20_000)), actions[i] % 4,
                CLOSURE - 1500 + offsets[i] % 3000
            );
            sum += down ? plans[i].down : plans[i].up;
        }
        power = uint32(bound(power, 1, sum)); // what the book takes: at most the members' sum now
        (uint64[] memory ids, uint32 p, uint256 i0) = portfolioOf(plans, down, power);

        uint256[2] memory ref; // UP, DOWN
        for (uint256 i = 0; i < 3; ++i) {
            act(ids[i], plans[i]);
            if (countsAtClosure(plans[i])) (ref[0], ref[1]) = (ref[0] + plans[i].up, ref[1] + plans[i].down);
        }
        vm.warp(CLOSURE + 2400); // after every action, before the day begins
        (,, uint256 upW, uint256 downW) = assets.portfolioTermsAt(p, CLOSURE);
        assertEq(upW, ref[0], "UP: the reference sum");
        assertEq(downW, ref[1], "DOWN: the reference sum");
        postExpecting(i0, p, down ? ref[1] : ref[0]);
    }
}
