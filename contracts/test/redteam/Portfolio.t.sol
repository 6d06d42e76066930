// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SettlementPortfolioFixture} from "../market/SettlementPortfolio.t.sol";
import {OrderBookFixture} from "../market/OrderBookFixture.sol";
import {StandardTree} from "../market/SettlementFixture.sol";
import {Settlement} from "../../src/market/Settlement.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {ClearingCommitment} from "../../src/market/ClearingCommitment.sol";
import {DeliveryMeter} from "../../src/metering/DeliveryMeter.sol";
import {RoleGated} from "../../src/access/RoleGated.sol";
import {OfferWord} from "../../src/types/OfferWord.sol";

/// RT-5 and its siblings: portfolio membership is judged as of the day's gate closure on both
/// sides. Before DAY0's gate closure (in market2, whose result setUp leaves uncommitted): x
/// (owner's) offers 5 kW at 09:30 on its own; then x and y (owner2's) form P9, which offers 5 kW
/// at 09:30 too.
abstract contract RedteamPortfolioBase is SettlementPortfolioFixture {
    uint64 internal rOwn;
    uint64 internal rPf;
    uint256 internal sOwn;
    uint256 internal sPf;
    uint64 internal x;
    uint64 internal y;
    uint32 internal p9;

    function buildBook() internal virtual override {
        super.buildBook(); // still before the gate closure
        rOwn = request(DSO1, market2, 2, PF, 1, UP, 10_000, MAX, 0);
        rPf = request(DSO1, market2, 2, PF, 1, UP, 10_000, MAX, 0);
        Terms memory t = terms(5_000);
        (t.start, t.marketId) = (PF, market2);
        sOwn = addSale(t, b1(2000));
        x = sales[sOwn].assetId;
        relaySales(sOwn, sOwn + 1); // x's own offer, accepted while x is in no portfolio
        award(sOwn, rOwn, 0, 5_000);
        read(sOwn, 0, 750, 0); // x's meter, market2 09:30: +750 Wh
        bindMarket = market2; // P9's members share its market
        (y,) = newKeyedAsset(OWNER2_KEY, 5);
        bindMarket = 0;
        portfolioSale();
    }

    /// P9 = [x, y] and its sale (overridden where x joins no portfolio before the gate closure).
    function portfolioSale() internal virtual {
        uint256[] memory keys = new uint256[](2);
        (keys[0], keys[1]) = (OWNER_KEY, OWNER2_KEY);
        p9 = newPortfolio(assetIds(x, y), keys);
        sPf = addPortfolioSaleIn(market2, p9, 1, 5_000, COMMITTED, b1(3000));
        award(sPf, rPf, 0, 5_000);
        relaySales(sPf, sPf + 1);
        anchoredReadings[keyOf(market2, PF)].push(Rd(meterOf(y), 1, 1000, 0)); // y: +1000 Wh
    }

    function onlyGroup(uint256 sale) internal view returns (Grp[] memory gs) {
        gs = new Grp[](1);
        gs[0] = group(sales[sale].listed, saleAwards[sale]);
    }

    /// Commit and finalise market2's DAY0 with the awards of `sale` only (the others dropped).
    function finaliseMarket2(uint256 sale) internal {
        for (uint256 i = 0; i < sales.length; ++i) {
            if (i != sale && sales[i].marketId == market2) delete saleAwards[i];
        }
        uint256 now_ = block.timestamp;
        vm.warp(DAY0 - 1); // a first result comes into force before its day begins (RT-9)
        uint64 id = openIn(OPERATOR, market2);
        postAs(OPERATOR, id, sorted(groupsOf(market2)));
        closeAs(OPERATOR, id);
        resultOf[market2] = id;
        vm.warp(now_ > DAY0 + CHALLENGE ? now_ : DAY0 + CHALLENGE);
        clearing.finalise(market2, DAY0);
    }

    function settleP9() internal returns (Settlement.Record memory) {
        Settlement.SettleIn memory s = settleIn(sPf);
        DeliveryMeter.MemberReading[] memory rs = new DeliveryMeter.MemberReading[](2);
        (rs[0], rs[1]) = (memberReadingIn(market2, x, PF, false), memberReadingIn(market2, y, PF, false));
        s.members = new bytes[](1);
        s.members[0] = abi.encode(rs);
        return settlement.settle(s);
    }

}

contract RedteamPortfolioRegressionTest is RedteamPortfolioBase {
    /// RT-5: x leaves P9 after the gate closure. It was P9's at the gate closure on both sides: P9's
    /// delivery counts its meter, and the clearing refuses x's own offer, so one meter pays once.
    function test_RT5_leaveAfterGateClosure_ownOfferRefused() public {
        assertTrue(block.timestamp > CLOSURE, "after DAY0's gate closure");
        vm.prank(owner);
        assets.removeFromPortfolio(x);
        assertMembers(deliveryMeter.members(market2, p9, PF), assetIds(x, y), "x still counts in P9 for DAY0");
        assertEq(assets.portfolioAt(x, CLOSURE), p9, "x was P9's at the gate closure");
        assertEq(assets.portfolioAt(x, uint64(block.timestamp)), 0, "in none now");

        uint64 id = openIn(OPERATOR, market2);
        Grp[] memory gs = sorted(groupsOf(market2));
        vm.expectRevert(
            abi.encodeWithSelector(ClearingCommitment.ClearingAssetInPortfolio.selector, digestOfSale(sOwn), x)
        );
        postAs(OPERATOR, id, gs);

        finaliseMarket2(sPf);
        Settlement.Record memory pf = settleP9();
        assertEq(pf.lines[0].claim, 125_000, "P9: 3000 - (750 + 1000) = 1250 Wh, x's meter counted once");
    }

    /// RT-10 at the clearing: a portfolio's aggregator is judged at the gate closure: revoked
    /// before it, its portfolio's offers cannot be awarded; revoked after, they can.
    function test_RT10_aggregatorRevokedBeforeGateClosureCannotBeAwarded() public {
        uint256 later = block.timestamp;
        vm.warp(CLOSURE - 1);
        vm.prank(ADMIN);
        roles.revokeCredential(aggregator, AGGREGATOR_ROLE);
        vm.warp(later);
        uint64 id = openIn(OPERATOR, market2);
        vm.expectRevert(abi.encodeWithSelector(RoleGated.RoleGatedMissingRole.selector, aggregator, AGGREGATOR_ROLE));
        postAs(OPERATOR, id, onlyGroup(sPf));
    }

    function test_RT10_aggregatorRevokedAfterGateClosureKeepsTheDaysAwards() public {
        vm.prank(ADMIN);
        roles.revokeCredential(aggregator, AGGREGATOR_ROLE);
        finaliseMarket2(sPf);
        assertEq(settleP9().lines[0].claim, 125_000, "judged at the gate closure, when it was credentialed");
    }
}

/// RT-5 sibling: x joins a portfolio only after the gate closure: its own offer stays good for
/// the day, and the portfolio does not count it for the day.
contract RedteamPortfolioJoinLateTest is RedteamPortfolioBase {
    function portfolioSale() internal override {
        anchoredReadings[keyOf(market2, PF)].push(Rd(meterOf(y), 1, 1000, 0));
    }

    function test_RT5_joinAfterGateClosure_ownOfferCounts() public {
        uint256[] memory keys = new uint256[](2);
        (keys[0], keys[1]) = (OWNER_KEY, OWNER2_KEY);
        p9 = newPortfolio(assetIds(x, y), keys);
        assertEq(assets.portfolioAt(x, CLOSURE), 0, "in no portfolio at the gate closure");
        assertEq(deliveryMeter.members(market2, p9, PF).length, 0, "P9 counts nobody for DAY0");
        finaliseMarket2(sOwn);
        assertEq(settleSale(sOwn).lines[0].claim, 125_000, "x's own offer: 2000 - 750 = 1250 Wh");
    }
}

/// RT-5's class, fuzzed on the registry: joins and leaves of two portfolios in turn, at any times
/// around a gate closure. At any time t the asset's side (`portfolioAt`, which the clearing reads
/// when the asset's word says it was ever in a portfolio) and the portfolios' side (`membersAt`,
/// what the delivery counts) agree, and the asset is in at most one portfolio: its meter is
/// counted in at most one awarded offer.
contract RedteamPortfolioMembershipFuzzTest is OrderBookFixture {
    function consent(uint64 assetId, uint64 deadline) internal view returns (bytes[] memory sigs) {
        bytes32 digest = assets.consentDigest(aggregator, assetId, assets.consentNonce(assetId), deadline);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(OWNER_KEY, digest);
        sigs = new bytes[](1);
        sigs[0] = abi.encodePacked(r, s, v);
    }

    function join(uint64 assetId) internal returns (uint32) {
        uint64 deadline = uint64(block.timestamp + 1 hours);
        bytes[] memory sigs = consent(assetId, deadline);
        vm.prank(aggregator);
        return assets.createPortfolio(5, assetIds(assetId), sigs, deadline);
    }

    function leave(uint64 assetId) internal {
        vm.prank(owner);
        assets.removeFromPortfolio(assetId);
    }

    function contains(uint64[] memory list, uint64 a) internal pure returns (bool) {
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] == a) return true;
        }
        return false;
    }

    /// forge-config: default.fuzz.runs = 10000
    /// forge-config: quick.fuzz.runs = 1000
    function testFuzz_RT5_countedInAtMostOneOfferAtAnyTime(uint16[4] memory gaps, uint8 steps, uint32 probe) public {
        uint64 t0 = uint64(block.timestamp);
        uint32[2] memory ps;
        uint256 n = steps % 5; // join P1, leave, join P2, leave: the first n of them
        for (uint256 i = 0; i < n; ++i) {
            vm.warp(block.timestamp + gaps[i]);
            if (i % 2 == 0) ps[i / 2] = join(asset1);
            else leave(asset1);
        }
        uint64 t = t0 + uint64(probe % (uint256(gaps[0]) + gaps[1] + gaps[2] + gaps[3] + 2));
        uint32 at = assets.portfolioAt(asset1, t);
        uint256 countedBy;
        for (uint256 k = 0; k < 2; ++k) {
            if (ps[k] == 0) continue;
            bool member = contains(assets.membersAt(ps[k], t), asset1);
            assertTrue(member == (at == ps[k]), "both sides agree on the portfolio at t");
            if (member) ++countedBy;
        }
        assertTrue(countedBy <= 1, "in at most one portfolio at t");
        bool checkHistory = OfferWord.wrap(assets.offerWord(asset1)).checkHistory();
        bool ownOfferRefused = checkHistory && at != 0; // ClearingCommitment._seller's rule
        assertTrue(ownOfferRefused == (countedBy == 1), "its own offer clears exactly when no portfolio counts it");
    }
}
