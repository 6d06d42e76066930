// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {OrderBookFixture} from "./OrderBookFixture.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";

contract OrderBookTest is OrderBookFixture {
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    function setUp() public override {
        super.setUp();
        assertEq(block.chainid, 31337, "forge's default chain id: the token mints");
        fundAndApprove(DSO1, 1_000_000);
        fundAndApprove(TSO, 1_000_000);
    }

    /// A skipped offer: the lenient batch accepts none and says why; the strict one reverts with the same reason.
    function expectSkipped(address relayer, OrderBook.Offer memory o, bytes memory sig, bytes memory reason) internal {
        (OrderBook.Offer[] memory os, bytes[] memory sigs) = single(o, sig);
        bytes32 digest = book.offerDigest(o);
        vm.expectEmit();
        emit OrderBook.OfferSkipped(0, digest, reason);
        vm.prank(relayer);
        assertEq(submit(book, os, sigs, false), 0, "skipped");
        vm.expectRevert(reason);
        vm.prank(relayer);
        submit(book, os, sigs, true);
    }

    function post(address who, OrderBook.RequestParams memory p) internal returns (uint64) {
        vm.prank(who);
        return book.postRequest(p);
    }

    // ------------------------------------------------------------------------------ requests

    function test_postRequestMovesTheMaximumExposure() public {
        OrderBook.RequestParams memory p = requestParams();
        p.maxPrice = 20_001; // 100 kW x 1 h x 200.01 EUR/MWh = 2,000.1 cents: rounded up
        uint256 before = token.balanceOf(DSO1);
        uint64 id = post(DSO1, p);
        assertEq(id, 1, "first id");
        assertEq(token.balanceOf(DSO1), before - 2001, "escrow paid");
        assertEq(token.balanceOf(address(book)), 2001 + 4 * STANDING_BOND, "escrow held (and the bonds)");
        OrderBook.Request memory q = book.request(id);
        assertEq(q.buyer, DSO1, "buyer");
        assertEq(book.maxExposure(q.powerW, q.isps, ISP, q.maxPrice), 2001, "escrow recomputed from the stored terms");
        assertEq(q.maxPrice, 20_001, "max price");
        assertTrue(q.status == OrderBook.RequestStatus.OPEN, "open");
        assertEq(book.maxExposure(100_000, 4, ISP, 20_000), 2000, "exact, no rounding");
    }

    function test_tsoBuysAnywhere() public {
        OrderBook.RequestParams memory p = requestParams();
        p.zone = 3; // DSO2's perimeter, under the TSO's area
        post(TSO, p);
        assertEq(book.requestCount(), 1, "posted");
    }

    function test_cancelBeforeGateClosureRefunds() public {
        uint256 before = token.balanceOf(DSO1);
        uint64 id = post(DSO1, requestParams());
        vm.warp(DAY0 - LEAD); // the last second before the day's gate closure
        vm.prank(DSO1);
        book.cancelRequest(id);
        assertEq(token.balanceOf(DSO1), before, "refunded");
        assertEq(token.balanceOf(address(book)), 4 * STANDING_BOND, "nothing held but the bonds");
        OrderBook.Request memory q = book.request(id);
        assertTrue(q.status == OrderBook.RequestStatus.CANCELLED, "cancelled");
    }

    function test_cancelAfterGateClosure() public {
        uint64 id = post(DSO1, requestParams());
        uint64 start = DAY0 + 8 hours;
        vm.warp(DAY0 - LEAD + 1); // the whole day closes at once, before its first ISP
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookAfterGateClosure.selector, start, DAY0 - LEAD));
        vm.prank(DSO1);
        book.cancelRequest(id);
    }

    function test_cancelByAnotherAccount() public {
        uint64 id = post(DSO1, requestParams());
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookNotBuyer.selector, id, DSO2));
        vm.prank(DSO2);
        book.cancelRequest(id);
    }

    function test_cancelTwice() public {
        uint64 id = post(DSO1, requestParams());
        vm.prank(DSO1);
        book.cancelRequest(id);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookRequestNotOpen.selector, id));
        vm.prank(DSO1);
        book.cancelRequest(id);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookUnknownRequest.selector, uint64(9)));
        vm.prank(DSO1);
        book.cancelRequest(9);
    }

    function test_requestByANonSystemOperator() public {
        fundAndApprove(AGG, 1_000_000);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookNotSystemOperator.selector, AGG));
        post(AGG, requestParams()); // an aggregator sells, it does not buy
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookNotSystemOperator.selector, NOBODY));
        post(NOBODY, requestParams());
    }

    function test_requestInAZoneTheBuyerMayNotBuyIn() public {
        fundAndApprove(DSO2, 1_000_000);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookZoneNotBuyable.selector, uint32(5), DSO2));
        post(DSO2, requestParams()); // feeder 5 is DSO1's
    }

    function test_requestZeroPriceOrPowerOrBadKind() public {
        OrderBook.RequestParams memory p = requestParams();
        p.maxPrice = 0;
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookZeroPrice.selector));
        post(DSO1, p);
        p = requestParams();
        p.powerW = 0;
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookInvalidPower.selector, uint32(0), uint256(0)));
        post(DSO1, p);
        p = requestParams();
        p.direction = 2;
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookInvalidDirection.selector, uint8(2)));
        post(DSO1, p);
        p = requestParams();
        p.purpose = 3;
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookInvalidRequestKind.selector, uint8(0), uint8(3)));
        post(DSO1, p);
    }

    function test_requestPriceOverflowsTheEscrow() public {
        OrderBook.RequestParams memory p = requestParams();
        p.maxPrice = type(uint256).max; // the product overflows 256 bits
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookEscrowOverflow.selector, p.maxPrice));
        post(DSO1, p);
        p.maxPrice = uint256(type(uint128).max) + 1; // the product fits, the stored price would not
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookEscrowOverflow.selector, p.maxPrice));
        post(DSO1, p);
    }

    function test_requestWithoutAllowance() public {
        mint(buyer, 1_000_000); // funded, not approved
        OrderBook.RequestParams memory p = requestParams();
        p.zone = 6;
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(book), uint256(0), uint256(2000))
        );
        post(buyer, p);
    }

    function test_requestWithoutBalance() public {
        vm.prank(DSO2);
        token.approve(address(book), type(uint256).max); // approved, not funded
        OrderBook.RequestParams memory p = requestParams();
        p.zone = 3;
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, DSO2, uint256(0), uint256(2000))
        );
        post(DSO2, p);
    }

    function test_requestWithPermit() public {
        mint(buyer, 5_000); // no approval: the permit gives it
        OrderBook.RequestParams memory p = requestParams();
        p.zone = 6;
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, buyer, address(book), uint256(2000), token.nonces(buyer), deadline));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(BUYER_KEY, digest);
        vm.prank(buyer);
        uint64 id = book.postRequestWithPermit(p, deadline, v, r, s);
        assertEq(book.request(id).buyer, buyer, "posted");
        assertEq(token.balanceOf(buyer), 3_000, "escrow paid");
        assertEq(token.nonces(buyer), 1, "permit used");
        assertEq(token.allowance(buyer, address(book)), 0, "exactly the escrow allowed");
        // the same permit again fails inside, and with no allowance left the transfer does too
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(book), uint256(0), uint256(2000))
        );
        vm.prank(buyer);
        book.postRequestWithPermit(p, deadline, v, r, s);
    }

    function test_requestWindowNotAligned() public {
        OrderBook.RequestParams memory p = requestParams();
        p.start = DAY0 + 8 hours + 60;
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookWindowNotAligned.selector, p.start, ISP));
        post(DSO1, p);
    }

    function test_requestWindowInPast() public {
        vm.warp(DAY0 + 9 hours);
        OrderBook.RequestParams memory p = requestParams(); // 08:00
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookWindowInPast.selector, p.start));
        post(DSO1, p);
    }

    function test_requestAfterGateClosure() public {
        OrderBook.RequestParams memory p = requestParams();
        vm.warp(DAY0 - LEAD + 1);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookAfterGateClosure.selector, p.start, DAY0 - LEAD));
        post(DSO1, p);
    }

    function test_requestCrossingTheMarketDay() public {
        OrderBook.RequestParams memory p = requestParams();
        p.start = DAY0 + 1 days - ISP; // the day's last ISP
        p.isps = 2;
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookInvalidWindow.selector, p.start, uint16(2)));
        post(DSO1, p);
        p.isps = 1; // the last ISP alone fits
        post(DSO1, p);
    }

    function test_requestZeroIsps() public {
        OrderBook.RequestParams memory p = requestParams();
        p.isps = 0;
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookInvalidWindow.selector, p.start, uint16(0)));
        post(DSO1, p);
    }

    // -------------------------------------------------------------------------------- offers

    function test_offerRelayedByAnAggregator() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        bytes memory sig = sign(OWNER_KEY, o);
        vm.expectEmit();
        emit OrderBook.OffersAccepted(DAY0, abi.encodePacked(owner, packed(o)));
        assertEq(relay(AGG, o, sig), 1, "accepted");
        assertEq(book.assetNonce(asset1), 1, "nonce used");
        assertEq(book.bookDigest(market, DAY0), keccak256(abi.encode(bytes32(0), book.offerDigest(o))), "digest");
    }

    function test_offerRelayedByItsOwner() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        assertEq(relay(owner, o, sign(OWNER_KEY, o)), 1, "the owner needs no AGGREGATOR role for its own offers");
    }

    function test_offerRelayedByNeitherAggregatorNorSigner() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        bytes memory reason = abi.encodeWithSelector(OrderBook.OrderBookNotRelayer.selector, NOBODY);
        expectSkipped(NOBODY, o, sign(OWNER_KEY, o), reason);
        // a prosumer relays only what it signed itself
        registerAndMap(owner2, METER2, 5);
        expectSkipped(
            owner2, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookNotRelayer.selector, owner2)
        );
    }

    function test_offerSignedByTheWrongKey() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        bytes memory reason = abi.encodeWithSelector(OrderBook.OrderBookNotSeller.selector, owner2, owner);
        expectSkipped(AGG, o, sign(OWNER2_KEY, o), reason);
    }

    function test_offerWithAGarbageSignature() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        bytes memory garbage = new bytes(65);
        for (uint256 i = 0; i < 65; ++i) {
            garbage[i] = 0x11; // v = 17: recovers nothing
        }
        expectSkipped(AGG, o, garbage, abi.encodeWithSelector(OrderBook.OrderBookInvalidSignature.selector));
    }

    function test_offerExpired() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        o.expiry = uint64(block.timestamp - 1);
        expectSkipped(AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookOfferExpired.selector, o.expiry));
        o.expiry = uint64(block.timestamp); // good up to and including its expiry
        assertEq(relay(AGG, o, sign(OWNER_KEY, o)), 1, "accepted at expiry");
    }

    function test_offerAfterGateClosure() public {
        uint64 start = DAY0 + 10 hours;
        OrderBook.Offer memory o = assetOffer(asset1, start, 1);
        bytes memory sig = sign(OWNER_KEY, o);
        vm.warp(DAY0 - LEAD + 1); // ten hours before the window, but the day has closed
        expectSkipped(AGG, o, sig, abi.encodeWithSelector(OrderBook.OrderBookAfterGateClosure.selector, start, DAY0 - LEAD));
    }

    function test_offerWindowInPast() public {
        uint64 start = DAY0 - 1 days - ISP; // now is DAY0 - 1 day
        OrderBook.Offer memory o = assetOffer(asset1, start, 1);
        expectSkipped(AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookWindowInPast.selector, start));
    }

    function test_offerWindowNotAligned() public {
        uint64 start = DAY0 + 10 hours + 1;
        OrderBook.Offer memory o = assetOffer(asset1, start, 1);
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookWindowNotAligned.selector, start, ISP)
        );
    }

    function test_offerWindowCrossingTheDayOrEmpty() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 1 days - ISP, 1);
        o.isps = 2;
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidWindow.selector, o.start, uint16(2))
        );
        o.isps = 0;
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidWindow.selector, o.start, uint16(0))
        );
    }

    function test_offerForAnUnknownMarket() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        o.market = 9;
        expectSkipped(AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookUnknownMarket.selector, uint32(9)));
        // market 0 first in a batch: skipped too, not a division by zero
        o.market = 0;
        expectSkipped(AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookUnknownMarket.selector, uint32(0)));
        // market 0 after a good offer (which loaded market 1): skipped, the batch goes on
        OrderBook.Offer[] memory os = new OrderBook.Offer[](3);
        bytes[] memory sigs = new bytes[](3);
        os[0] = assetOffer(asset1, DAY0 + 10 hours, 1);
        os[1] = assetOffer(asset1, DAY0 + 11 hours, 2);
        os[1].market = 0;
        os[2] = assetOffer(asset1, DAY0 + 12 hours, 3);
        for (uint256 i = 0; i < 3; ++i) {
            sigs[i] = sign(OWNER_KEY, os[i]);
        }
        bytes memory reason = abi.encodeWithSelector(OrderBook.OrderBookUnknownMarket.selector, uint32(0));
        bytes32 bad = book.offerDigest(os[1]);
        vm.expectEmit();
        emit OrderBook.OfferSkipped(1, bad, reason);
        vm.prank(AGG);
        assertEq(submit(book, os, sigs, false), 2, "the two good offers");
    }

    function test_offerOfAPendingAsset() public {
        uint64 id = registerWithMeter(assets, owner2, METER2, 1); // not mapped yet
        OrderBook.Offer memory o = assetOffer(id, DAY0 + 10 hours, 1);
        expectSkipped(
            AGG, o, sign(OWNER2_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookAssetNotActive.selector, id, uint8(1))
        );
    }

    function test_offerOfASuspendedAsset() public {
        vm.prank(DSO1);
        assets.suspendAsset(asset1);
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookAssetNotActive.selector, asset1, uint8(3))
        );
    }

    function test_offerOfAnUnknownSubject() public {
        OrderBook.Offer memory o = assetOffer(99, DAY0 + 10 hours, 1);
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookAssetNotActive.selector, uint64(99), uint8(0))
        );
        o = assetOffer(0, DAY0 + 10 hours, 1); // neither asset nor portfolio
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidSubject.selector, uint64(0), uint32(0))
        );
        o = assetOffer(asset1, DAY0 + 10 hours, 1);
        o.portfolio = 1; // both
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidSubject.selector, asset1, uint32(1))
        );
        o = assetOffer(0, DAY0 + 10 hours, 1);
        o.portfolio = 9;
        expectSkipped(
            AGG, o, sign(AGGREGATOR_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookUnknownPortfolio.selector, uint32(9))
        );
    }

    function test_offerOfAnAssetInAPortfolio() public {
        uint32 p = formPortfolio();
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookAssetInPortfolio.selector, asset1)
        );
    }

    function test_offerPowerZeroOrAbovePrequalified() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        o.powerW = 0;
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidPower.selector, uint32(0), uint256(UP_W))
        );
        o.powerW = UP_W + 1;
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidPower.selector, UP_W + 1, uint256(UP_W))
        );
        o.direction = DOWN; // checked against the DOWN prequalification
        o.powerW = DOWN_W + 1;
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidPower.selector, DOWN_W + 1, uint256(DOWN_W))
        );
        o.powerW = DOWN_W;
        assertEq(relay(AGG, o, sign(OWNER_KEY, o)), 1, "the whole prequalified power");
    }

    function test_offerInvalidDirection() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        o.direction = 2;
        expectSkipped(AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidDirection.selector, uint8(2)));
    }

    function test_offerReplayedOrOlderNonce() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 5);
        bytes memory sig = sign(OWNER_KEY, o);
        assertEq(relay(AGG, o, sig), 1, "accepted");
        expectSkipped(AGG, o, sig, abi.encodeWithSelector(OrderBook.OrderBookStaleNonce.selector, uint32(5), uint32(5)));
        o.nonce = 3;
        o.start = DAY0 + 11 hours; // another window does not help: nonces are per asset
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookStaleNonce.selector, uint32(3), uint32(5))
        );
        o.nonce = 9; // a gap is fine
        assertEq(relay(AGG, o, sign(OWNER_KEY, o)), 1, "newer nonce");
        assertEq(book.assetNonce(asset1), 9, "last nonce");
    }

    function test_offerInvalidModes() public {
        uint8[5] memory modes = [DIVISIBLE, MIN_QUANTITY, MIN_QUANTITY, ALL_OR_NOTHING, 3];
        uint32[5] memory minima = [uint32(1), 0, 5_001, 4_999, 0];
        for (uint256 i = 0; i < 5; ++i) {
            OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
            (o.mode, o.minPowerW) = (modes[i], minima[i]);
            expectSkipped(
                AGG,
                o,
                sign(OWNER_KEY, o),
                abi.encodeWithSelector(OrderBook.OrderBookInvalidMode.selector, modes[i], minima[i], uint32(5_000))
            );
        }
        // the good combinations
        OrderBook.Offer memory q = assetOffer(asset1, DAY0 + 10 hours, 1);
        (q.mode, q.minPowerW) = (MIN_QUANTITY, 5_000);
        assertEq(relay(AGG, q, sign(OWNER_KEY, q)), 1, "minimum = power");
        (q.mode, q.minPowerW, q.nonce) = (MIN_QUANTITY, 1, 2);
        assertEq(relay(AGG, q, sign(OWNER_KEY, q)), 1, "small minimum");
        (q.mode, q.minPowerW, q.nonce) = (ALL_OR_NOTHING, 5_000, 3);
        assertEq(relay(AGG, q, sign(OWNER_KEY, q)), 1, "all or nothing");
    }

    function test_offerInvalidBaseline() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        (o.baselineMethod, o.baseline) = (COMMITTED, bytes32(0));
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidBaseline.selector, COMMITTED, bytes32(0))
        );
        bytes32 h = keccak256("baseline");
        (o.baselineMethod, o.baseline) = (ROLLING_AVERAGE, h);
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidBaseline.selector, ROLLING_AVERAGE, h)
        );
        (o.baselineMethod, o.baseline) = (2, bytes32(0)); // no such method
        expectSkipped(
            AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookInvalidBaseline.selector, uint8(2), bytes32(0))
        );
        (o.baselineMethod, o.baseline) = (COMMITTED, h);
        assertEq(relay(AGG, o, sign(OWNER_KEY, o)), 1, "committed baseline with its hash");
    }

    function test_offerZeroPrice() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, 1);
        o.price = 0;
        expectSkipped(AGG, o, sign(OWNER_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookZeroPrice.selector));
    }

    function formPortfolio() internal returns (uint32 p) {
        uint64 b = registerAndMap(owner2, METER2, 5);
        uint64 c = registerAndMap(owner3, METER3, 5);
        uint64 deadline = uint64(block.timestamp + 1 hours);
        uint64[] memory ids = new uint64[](3);
        (ids[0], ids[1], ids[2]) = (asset1, b, c);
        bytes[] memory sigs = new bytes[](3);
        uint256[3] memory keys = [OWNER_KEY, OWNER2_KEY, OWNER3_KEY];
        for (uint256 i = 0; i < 3; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(keys[i], assets.consentDigest(aggregator, ids[i], 0, deadline));
            sigs[i] = abi.encodePacked(r, s, v);
        }
        vm.prank(aggregator);
        p = assets.createPortfolio(5, ids, sigs, deadline);
    }

    function test_portfolioOfferUpToTheActiveMembersPower() public {
        uint32 p = formPortfolio();
        vm.prank(DSO1);
        assets.suspendAsset(asset1); // a suspended member does not count
        OrderBook.Offer memory o = assetOffer(0, DAY0 + 10 hours, 1);
        o.portfolio = p;
        o.powerW = 2 * UP_W + 1;
        expectSkipped(
            aggregator,
            o,
            sign(AGGREGATOR_KEY, o),
            abi.encodeWithSelector(OrderBook.OrderBookInvalidPower.selector, 2 * UP_W + 1, uint256(2 * UP_W))
        );
        // a member's owner cannot sign for the portfolio
        o.powerW = 2 * UP_W;
        expectSkipped(
            AGG, o, sign(OWNER2_KEY, o), abi.encodeWithSelector(OrderBook.OrderBookNotSeller.selector, owner2, aggregator)
        );
        vm.expectEmit();
        emit OrderBook.OffersAccepted(DAY0, abi.encodePacked(aggregator, packed(o)));
        assertEq(relay(aggregator, o, sign(AGGREGATOR_KEY, o)), 1, "sum of the two active members");
        assertEq(book.portfolioNonce(p), 1, "portfolio nonce");
        assertEq(book.assetNonce(asset1), 0, "members' nonces untouched");
    }

    function test_oneBadOfferInABatchOfTwenty() public {
        OrderBook.Offer[] memory os = new OrderBook.Offer[](20);
        bytes[] memory sigs = new bytes[](20);
        for (uint256 i = 0; i < 20; ++i) {
            os[i] = assetOffer(asset1, DAY0 + uint64(i) * ISP, uint32(i + 1));
            if (i == 7) os[i].price = 0;
            sigs[i] = sign(OWNER_KEY, os[i]);
        }
        bytes memory reason = abi.encodeWithSelector(OrderBook.OrderBookZeroPrice.selector);
        vm.expectRevert(reason);
        vm.prank(AGG);
        submit(book, os, sigs, true);
        assertEq(book.assetNonce(asset1), 0, "strict: nothing kept");
        bytes32 bad = book.offerDigest(os[7]);
        vm.expectEmit();
        emit OrderBook.OfferSkipped(7, bad, reason);
        vm.prank(AGG);
        assertEq(submit(book, os, sigs, false), 19, "the other 19 accepted");
        assertEq(book.assetNonce(asset1), 20, "last nonce");
        bytes32 d;
        for (uint256 i = 0; i < 20; ++i) {
            if (i != 7) d = keccak256(abi.encode(d, book.offerDigest(os[i])));
        }
        assertEq(book.bookDigest(market, DAY0), d, "the skipped offer is not in the digest");
    }

    function test_lengthMismatch() public {
        OrderBook.Offer[] memory os = new OrderBook.Offer[](2);
        bytes[] memory sigs = new bytes[](1);
        sigs[0] = new bytes(65);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookLengthMismatch.selector, uint256(186), uint256(65)));
        vm.prank(AGG);
        submit(book, os, sigs, false);
        // not whole: a packed offer one byte short, a signature one byte long
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookLengthMismatch.selector, uint256(92), uint256(65)));
        vm.prank(AGG);
        book.submitOffers(new bytes(92), new bytes(65), false);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookLengthMismatch.selector, uint256(93), uint256(66)));
        vm.prank(AGG);
        book.submitOffers(new bytes(93), new bytes(66), false);
    }

    function test_bookDigestChainsEveryEntry() public {
        OrderBook.RequestParams memory p = requestParams();
        uint64 id = post(DSO1, p);
        OrderBook.Offer[] memory os = new OrderBook.Offer[](2);
        bytes[] memory sigs = new bytes[](2);
        os[0] = assetOffer(asset1, DAY0 + 8 hours, 1);
        os[1] = assetOffer(asset1, DAY0 + 9 hours, 2);
        (sigs[0], sigs[1]) = (sign(OWNER_KEY, os[0]), sign(OWNER_KEY, os[1]));
        vm.prank(AGG);
        submit(book, os, sigs, true);
        vm.prank(DSO1);
        book.cancelRequest(id);

        bytes32 d = keccak256(abi.encode(bytes32(0), keccak256(abi.encode(book.REQUEST_TAG(), id, DSO1, p, uint256(2000)))));
        d = keccak256(abi.encode(d, book.offerDigest(os[0])));
        d = keccak256(abi.encode(d, book.offerDigest(os[1])));
        d = keccak256(abi.encode(d, keccak256(abi.encode(book.CANCEL_TAG(), id))));
        assertEq(book.bookDigest(market, DAY0), d, "request, two offers, cancellation");
        assertEq(book.bookDigest(market, DAY0 + 1 days), bytes32(0), "the next day is empty");
    }

    function test_bookDigestOfABatchSpanningDays() public {
        // DAY0, DAY0 + 1, DAY0 again: each day's digest is saved and reloaded, not mixed
        OrderBook.Offer[] memory os = new OrderBook.Offer[](3);
        bytes[] memory sigs = new bytes[](3);
        os[0] = assetOffer(asset1, DAY0 + 8 hours, 1);
        os[1] = assetOffer(asset1, DAY0 + 1 days + 8 hours, 2);
        os[1].expiry = DAY0 + 1 days;
        os[2] = assetOffer(asset1, DAY0 + 9 hours, 3);
        for (uint256 i = 0; i < 3; ++i) {
            sigs[i] = sign(OWNER_KEY, os[i]);
        }
        vm.prank(AGG);
        assertEq(submit(book, os, sigs, true), 3, "all accepted");
        bytes32 day0 = keccak256(abi.encode(bytes32(0), book.offerDigest(os[0])));
        day0 = keccak256(abi.encode(day0, book.offerDigest(os[2])));
        assertEq(book.bookDigest(market, DAY0), day0, "DAY0");
        assertEq(
            book.bookDigest(market, DAY0 + 1 days),
            keccak256(abi.encode(bytes32(0), book.offerDigest(os[1]))),
            "DAY0 + 1"
        );
    }

    // --------------------------------------------------------------------------------- bonds

    address internal constant SETTLEMENT = address(0x5E77);
    address internal constant NEW_SELLER = address(0x5E11E7);

    function bondWord(address seller)
        internal
        view
        returns (uint256 amount, uint256 locked, uint256 withdrawing, uint64 noticeEnds, bool indebted)
    {
        uint256 w = book.bondWord(seller);
        return (uint64(w), uint64(w >> 64), uint64(w >> 128), uint40(w >> 192), w >> 255 != 0);
    }

    function postFor(address seller, uint256 amount) internal {
        fundAndApprove(seller, amount);
        vm.prank(seller);
        book.postBond(seller, amount);
    }

    function test_bondPostAndWithdrawAfterNotice() public {
        postFor(NEW_SELLER, 10_000);
        assertEq(book.bondOf(NEW_SELLER), 10_000, "bond");
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookBondNotice.selector, uint64(0)));
        vm.prank(NEW_SELLER); // no withdrawal without notice
        book.withdrawBond(4_000);
        vm.prank(NEW_SELLER);
        book.announceBondWithdrawal(4_000);
        uint64 ends = uint64(block.timestamp) + book.bondNoticeSeconds();
        assertEq(book.bondNoticeSeconds(), 30 days + 1 days + 3 * 2 days + 1, "advance + the longest horizon + 1");
        (, , uint256 withdrawing, uint64 noticeEnds,) = bondWord(NEW_SELLER);
        assertEq(withdrawing, 4_000, "under notice");
        assertEq(noticeEnds, ends, "notice ends");
        vm.warp(ends - 1);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookBondNotice.selector, ends));
        vm.prank(NEW_SELLER);
        book.withdrawBond(4_000);
        vm.warp(ends);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookBondLocked.selector, uint256(4_001), uint256(4_000)));
        vm.prank(NEW_SELLER); // only what was announced
        book.withdrawBond(4_001);
        vm.prank(NEW_SELLER);
        book.withdrawBond(4_000);
        assertEq(book.bondOf(NEW_SELLER), 6_000, "bond left");
        assertEq(token.balanceOf(NEW_SELLER), 4_000, "withdrawn");
        (, , withdrawing, noticeEnds,) = bondWord(NEW_SELLER);
        assertEq(withdrawing + noticeEnds, 0, "no notice left");
    }

    function test_bondWithPermitPaidForAnotherSeller() public {
        mint(owner, 10_000); // the owner pays its aggregator's bond, no approval: a permit
        uint256 ownersBefore = token.balanceOf(owner);
        uint256 deadline = block.timestamp + 1 hours;
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, owner, address(book), uint256(6_000), token.nonces(owner), deadline));
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(OWNER_KEY, keccak256(abi.encodePacked("\x19\x01", token.DOMAIN_SEPARATOR(), structHash)));
        vm.prank(owner);
        book.postBondWithPermit(aggregator, 6_000, deadline, v, r, s);
        assertEq(book.bondOf(aggregator), STANDING_BOND + 6_000, "the seller's bond");
        assertEq(book.bondOf(owner), STANDING_BOND, "not the payer's");
        assertEq(token.balanceOf(owner), ownersBefore - 6_000, "paid");
    }

    function test_bondWithdrawMoreThanAvailableAfterALock() public {
        postFor(NEW_SELLER, 10_000);
        vm.prank(ADMIN);
        book.setSettlement(SETTLEMENT);
        vm.prank(SETTLEMENT);
        book.setBondLock(NEW_SELLER, 7_000);
        vm.prank(NEW_SELLER);
        book.announceBondWithdrawal(10_000);
        vm.warp(block.timestamp + book.bondNoticeSeconds());
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookBondLocked.selector, uint256(3_001), uint256(3_000)));
        vm.prank(NEW_SELLER);
        book.withdrawBond(3_001);
        vm.prank(NEW_SELLER);
        book.withdrawBond(3_000);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookBondLocked.selector, uint256(7_001), uint256(7_000)));
        vm.prank(SETTLEMENT); // never above the bond
        book.setBondLock(NEW_SELLER, 7_001);
        vm.prank(SETTLEMENT);
        book.setBondLock(NEW_SELLER, 0);
        vm.prank(NEW_SELLER);
        book.withdrawBond(7_000);
        assertEq(token.balanceOf(NEW_SELLER), 10_000, "all back once released");
    }

    function test_bondLockByANonSettlementAccount() public {
        vm.prank(ADMIN);
        book.setSettlement(SETTLEMENT);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookNotSettlement.selector, NOBODY));
        vm.prank(NOBODY);
        book.setBondLock(owner, 0);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookNotSettlement.selector, NOBODY));
        vm.prank(NOBODY);
        book.clearDebt(owner);
    }

    /// A draw beyond the bond leaves the seller indebted; the lock never exceeds what is left.
    function test_bondDrawnBeyondItsAmountIndebtsTheSeller() public {
        postFor(NEW_SELLER, 10_000);
        vm.prank(ADMIN);
        book.setSettlement(SETTLEMENT);
        vm.prank(SETTLEMENT);
        book.setBondLock(NEW_SELLER, 9_000);
        vm.prank(SETTLEMENT);
        assertEq(book.transferBond(NEW_SELLER, SETTLEMENT, 4_000), 4_000, "drawn in full");
        (uint256 amount, uint256 locked,,, bool indebted) = bondWord(NEW_SELLER);
        assertEq(amount, 6_000, "bond left");
        assertEq(locked, 6_000, "the lock shrinks only to the bond");
        assertTrue(!indebted, "paid");
        vm.prank(SETTLEMENT);
        assertEq(book.transferBond(NEW_SELLER, SETTLEMENT, 8_000), 6_000, "what the bond had");
        (amount, locked,,, indebted) = bondWord(NEW_SELLER);
        assertEq(amount + locked, 0, "spent");
        assertTrue(indebted, "indebted");
        vm.prank(SETTLEMENT);
        book.clearDebt(NEW_SELLER);
        (,,,, indebted) = bondWord(NEW_SELLER);
        assertTrue(!indebted, "paid back");
    }

    /// DESIGN: a seller with debt, no free bond, or a bond under withdrawal notice does not sell.
    function test_offerRefusedUnlessTheSellerHasFreeBond() public {
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 8 hours, 1);
        vm.prank(owner);
        book.announceBondWithdrawal(1);
        uint64 ends = uint64(block.timestamp) + book.bondNoticeSeconds();
        (OrderBook.Offer[] memory os, bytes[] memory sigs) = single(o, sign(OWNER_KEY, o));
        vm.expectRevert(
            abi.encodeWithSelector(OrderBook.OrderBookSellerNotBonded.selector, owner, STANDING_BOND, false, ends)
        );
        vm.prank(aggregator);
        submit(book, os, sigs, true);
        vm.prank(owner);
        book.announceBondWithdrawal(0); // withdrawn: it sells again
        vm.prank(ADMIN);
        book.setSettlement(SETTLEMENT);
        vm.prank(SETTLEMENT);
        book.setBondLock(owner, STANDING_BOND); // all of it held for settlements
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookSellerNotBonded.selector, owner, 0, false, 0));
        vm.prank(aggregator);
        submit(book, os, sigs, true);
        vm.prank(SETTLEMENT);
        book.setBondLock(owner, 0);
        vm.prank(SETTLEMENT);
        book.transferBond(owner, SETTLEMENT, STANDING_BOND + 1); // a penalty beyond the bond
        postFor(owner, 5_000);
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookSellerNotBonded.selector, owner, 5_000, true, 0));
        vm.prank(aggregator);
        submit(book, os, sigs, true);
        vm.prank(SETTLEMENT);
        book.clearDebt(owner);
        assertEq(relay(aggregator, o, sigs[0]), 1, "bonded, no debt, no notice: it sells");
    }

    function test_offerForADayTooFarAhead() public {
        uint64 far = DAY0 + 31 days + 8 hours; // its day starts more than 30 days from now (DAY0 - 1 day)
        OrderBook.Offer memory o = assetOffer(asset1, far, 1);
        o.expiry = far;
        (OrderBook.Offer[] memory os, bytes[] memory sigs) = single(o, sign(OWNER_KEY, o));
        vm.expectRevert(abi.encodeWithSelector(OrderBook.OrderBookTooFarAhead.selector, far, DAY0 + 31 days));
        vm.prank(aggregator);
        submit(book, os, sigs, true);
        o = assetOffer(asset1, DAY0 + 29 days + 8 hours, 1);
        o.expiry = o.start;
        assertEq(relay(aggregator, o, sign(OWNER_KEY, o)), 1, "within 30 days");
    }

    // ---------------------------------------------------------------------------------- fuzz

    function testFuzz_maxExposureRoundsUp(uint32 power, uint16 isps, uint256 price) public view {
        power = uint32(bound(power, 1, type(uint32).max));
        isps = uint16(bound(isps, 1, type(uint16).max));
        price = bound(price, 1, type(uint128).max);
        uint256 escrow = book.maxExposure(power, isps, ISP, price);
        uint256 exposure = uint256(power) * isps * ISP * price; // W*s*units/MWh, below 2^190
        assertTrue(escrow * 3.6e9 >= exposure, "covers the exposure");
        assertTrue((escrow - 1) * 3.6e9 < exposure, "by less than one unit");
    }

    function testFuzz_nonceMustIncrease(uint32 first, uint32 second) public {
        first = uint32(bound(first, 1, type(uint32).max));
        OrderBook.Offer memory o = assetOffer(asset1, DAY0 + 10 hours, first);
        assertEq(relay(AGG, o, sign(OWNER_KEY, o)), 1, "first");
        o = assetOffer(asset1, DAY0 + 11 hours, second);
        bytes memory sig = sign(OWNER_KEY, o);
        if (second > first) {
            assertEq(relay(AGG, o, sig), 1, "higher nonce accepted");
            assertEq(book.assetNonce(asset1), second, "nonce");
        } else {
            expectSkipped(AGG, o, sig, abi.encodeWithSelector(OrderBook.OrderBookStaleNonce.selector, second, first));
            assertEq(book.assetNonce(asset1), first, "nonce kept");
        }
    }
}

/// 200 assets of 200 owners (distinct keys) in feeder 5, consecutive ids so their nonces share slots.
abstract contract OrderBookGasBase is OrderBookFixture {
    uint256 internal constant N = 200;
    uint256 internal constant KEY0 = 0x5EED00;
    uint64 internal firstAsset;

    function setUp() public virtual override {
        super.setUp();
        uint64[] memory ids = new uint64[](N);
        uint32[] memory zoneIds = new uint32[](N);
        uint32[] memory up = new uint32[](N);
        uint32[] memory down = new uint32[](N);
        uint32[] memory ms = new uint32[](N);
        for (uint256 i = 0; i < N; ++i) {
            address who = vm.addr(KEY0 + i);
            address meter = keyedMeter(0x1000000 + i);
            grant(who, PROSUMER_ROLE);
            grant(meter, METER_ROLE);
            ids[i] = registerWithMeter(assets, who, meter, 2);
            (zoneIds[i], up[i], down[i], ms[i]) = (5, UP_W, DOWN_W, market);
        }
        firstAsset = ids[0];
        for (uint256 i = 0; i < N; ++i) {
            address who = vm.addr(KEY0 + i);
            fundAndApprove(who, 1_000);
            vm.prank(who);
            book.postBond(who, 1_000);
        }
        vm.prank(DSO1);
        assets.mapAssets(ids, zoneIds, up, down, ms);
    }

    function batch(uint64 dayStart, uint32 nonce)
        internal
        view
        returns (OrderBook.Offer[] memory os, bytes[] memory sigs)
    {
        os = new OrderBook.Offer[](N);
        sigs = new bytes[](N);
        for (uint256 i = 0; i < N; ++i) {
            os[i] = assetOffer(firstAsset + uint64(i), dayStart + 18 hours, nonce);
            os[i].expiry = dayStart;
            sigs[i] = sign(KEY0 + i, os[i]);
        }
    }

    /// Relay the batch; log, and keep in `snapshots/<group>.json` (checked in CI), its gas per
    /// offer: the call's own (`lastCallGas`: what the test spends encoding 30 kB of calldata in
    /// its large memory is not the book's), the calldata's (16/4 per byte) and the transaction's
    /// (both with the 21,000 base shared by the batch). Returns the transaction's.
    /// One group (file) per test contract: forge checks a group written by two contracts wrongly.
    function relayAndLog(OrderBook.Offer[] memory os, bytes[] memory sigs, string memory group)
        internal
        returns (uint256 perOffer)
    {
        (bytes memory offers, bytes memory signatures) = packAll(os, sigs); // packed before the gas is measured
        bytes memory data = abi.encodeCall(OrderBook.submitOffers, (offers, signatures, false));
        uint256 calldataGas;
        for (uint256 i = 0; i < data.length; ++i) {
            calldataGas += data[i] == 0 ? 4 : 16;
        }
        vm.prank(AGG);
        uint256 accepted = book.submitOffers(offers, signatures, false);
        uint256 execution = vm.lastCallGas().gasTotalUsed;
        assertEq(accepted, N, "all accepted");
        perOffer = (execution + calldataGas + 21_000) / N;
        emit log_named_uint("execution gas per offer", execution / N);
        emit log_named_uint("calldata gas per offer", calldataGas / N);
        emit log_named_uint("transaction gas per offer", perOffer);
        vm.snapshotValue(group, "execution per offer", execution / N);
        vm.snapshotValue(group, "calldata per offer", calldataGas / N);
        vm.snapshotValue(group, "transaction per offer", perOffer);
    }
}

contract OrderBookGasTest is OrderBookGasBase {
    function test_gas_relay200OffersFirstNonces() public {
        (OrderBook.Offer[] memory os, bytes[] memory sigs) = batch(DAY0, 1);
        relayAndLog(os, sigs, "OrderBookOffers200OwnersFirstNonces");
        assertEq(book.assetNonce(firstAsset + uint64(N - 1)), 1, "nonces set");
    }
}

/// The second day's batch in its own transaction, so the nonce slots are cold and already non-zero
/// (a second batch in the same test would find them warm and dirty, and look cheaper than it is).
contract OrderBookGasSecondDayTest is OrderBookGasBase {
    function setUp() public override {
        super.setUp();
        (OrderBook.Offer[] memory os, bytes[] memory sigs) = batch(DAY0, 1);
        vm.prank(AGG);
        submit(book, os, sigs, true);
    }

    function test_gas_relay200OffersSecondDay() public {
        (OrderBook.Offer[] memory os, bytes[] memory sigs) = batch(DAY0 + 1 days, 2);
        uint256 perOffer = relayAndLog(os, sigs, "OrderBookOffers200OwnersSecondDay");
        // the order-book issue's target, for assets offering again, with one owner per asset
        assertLe(perOffer, 20_000, "at most 20,000 gas per offer in a batch of 200");
        assertEq(book.assetNonce(firstAsset), 2, "nonces advanced");
    }
}
