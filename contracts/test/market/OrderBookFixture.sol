// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {GridZonesFixture} from "../grid/GridZonesFixture.sol";
import {AssetRegistry} from "../../src/grid/AssetRegistry.sol";
import {SettlementToken} from "../../src/token/SettlementToken.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";

/// The GridZones stack plus AssetRegistry, SettlementToken and OrderBook (deploy order), the zone
/// tree of `buildTree` (feeder 5 under DSO1), a keyed buyer operating zone 6 under the root, keyed
/// owners and aggregator, one active asset in feeder 5, and helpers to build and sign offers.
abstract contract OrderBookFixture is GridZonesFixture {
    /// The market `registerAndMap` binds new assets to (0: `market`).
    uint32 internal bindMarket;
    /// An offer as `submitOffers` takes it and `OffersAccepted` carries it: its fields packed
    /// big-endian, in order (93 bytes); written independently of `PackedOffer` (src/types), so that the
    /// two check each other.
    function packed(OrderBook.Offer memory o) internal pure returns (bytes memory) {
        return abi.encodePacked(
            abi.encodePacked(o.market, o.asset, o.portfolio, o.start, o.isps, o.direction, o.powerW),
            abi.encodePacked(o.price, o.mode, o.minPowerW, o.baselineMethod, o.baseline, o.expiry, o.nonce)
        );
    }

    AssetRegistry internal assets;
    SettlementToken internal token;
    OrderBook internal book;

    uint256 internal constant OWNER_KEY = 0x0A11CE;
    uint256 internal constant OWNER2_KEY = 0x0B0B;
    uint256 internal constant OWNER3_KEY = 0x0C0C;
    uint256 internal constant AGGREGATOR_KEY = 0xA99;
    uint256 internal constant BUYER_KEY = 0xB0E;
    address internal owner;
    address internal owner2;
    address internal owner3;
    address internal aggregator; // an AGGREGATOR with a key: it signs portfolio offers
    address internal buyer; // a DSO with a key (permits), operating zone 6
    address internal METER1;
    address internal METER2;
    address internal METER3;
    address internal METER4;
    address internal constant CLEARING = address(0xC1EA);

    uint32 internal constant UP_W = 10_000;
    uint32 internal constant DOWN_W = 8_000;
    uint64 internal asset1; // owner's, active in feeder 5

    uint8 internal constant DIVISIBLE = 0;
    uint8 internal constant MIN_QUANTITY = 1;
    uint8 internal constant ALL_OR_NOTHING = 2;
    uint8 internal constant COMMITTED = 0;
    uint8 internal constant ROLLING_AVERAGE = 1;

    function setUp() public virtual override {
        super.setUp(); // now = DAY0 - 1 day: every ISP of DAY0 is before its gate closure
        buildTree();
        assets = new AssetRegistry(roles, zones);
        token = new SettlementToken(auth);
        book = new OrderBook(roles, markets, zones, assets, IERC20(address(token)));
        owner = vm.addr(OWNER_KEY);
        owner2 = vm.addr(OWNER2_KEY);
        owner3 = vm.addr(OWNER3_KEY);
        aggregator = vm.addr(AGGREGATOR_KEY);
        buyer = vm.addr(BUYER_KEY);
        grant(owner, PROSUMER_ROLE);
        grant(owner2, PROSUMER_ROLE);
        grant(owner3, PROSUMER_ROLE);
        grant(aggregator, AGGREGATOR_ROLE);
        grant(buyer, DSO_ROLE);
        (METER1, METER2, METER3, METER4) = (keyedMeter(0x3E1), keyedMeter(0x3E2), keyedMeter(0x3E3), keyedMeter(0x3E4));
        grant(METER1, METER_ROLE);
        grant(METER2, METER_ROLE);
        grant(METER3, METER_ROLE);
        grant(METER4, METER_ROLE);
        vm.prank(TSO);
        zones.addZone(1, buyer, 1_000_000); // zone 6
        asset1 = registerAndMap(owner, METER1, 5);
        bondSellers();
    }

    uint256 internal constant STANDING_BOND = 1_000_000_000;

    /// A seller without free bond does not sell: the fixture's sellers post one before offering
    /// (override to post other bonds, or none).
    function bondSellers() internal virtual {
        address[4] memory sellers = [owner, owner2, owner3, aggregator];
        for (uint256 i = 0; i < sellers.length; ++i) {
            fundAndApprove(sellers[i], STANDING_BOND);
            vm.prank(sellers[i]);
            book.postBond(sellers[i], STANDING_BOND);
        }
    }

    function registerAndMap(address who, address meter, uint32 zoneId) internal returns (uint64 id) {
        id = registerWithMeter(assets, who, meter, 2);
        vm.prank(zoneId == 3 ? DSO2 : DSO1);
        assets.mapAsset(id, zoneId, UP_W, DOWN_W, marketToBind());
    }

    /// The market new assets are bound to: `market` unless a test names another (`bindMarket`).
    function marketToBind() internal view returns (uint32) {
        return bindMarket == 0 ? market : bindMarket;
    }

    function mint(address to, uint256 amount) internal {
        vm.prank(ADMIN); // SettlementToken mints on forge's default chain id 31337 only
        token.mint(to, amount);
    }

    function fundAndApprove(address who, uint256 amount) internal {
        mint(who, amount);
        vm.prank(who);
        token.approve(address(book), type(uint256).max);
    }

    // -------------------------------------------------------------------------------- offers

    /// A valid single-ISP offer of `assetId` (5 kW UP at 100 EUR/MWh, divisible, rolling baseline).
    function assetOffer(uint64 assetId, uint64 start, uint32 nonce) internal view returns (OrderBook.Offer memory) {
        return OrderBook.Offer({
            market: market,
            asset: assetId,
            portfolio: 0,
            start: start,
            isps: 1,
            direction: UP,
            powerW: 5_000,
            price: 10_000,
            mode: DIVISIBLE,
            minPowerW: 0,
            baselineMethod: ROLLING_AVERAGE,
            baseline: bytes32(0),
            expiry: DAY0,
            nonce: nonce
        });
    }

    function sign(uint256 key, OrderBook.Offer memory o) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, book.offerDigest(o));
        return abi.encodePacked(r, s, v);
    }

    function single(OrderBook.Offer memory o, bytes memory sig)
        internal
        pure
        returns (OrderBook.Offer[] memory os, bytes[] memory sigs)
    {
        os = new OrderBook.Offer[](1);
        sigs = new bytes[](1);
        (os[0], sigs[0]) = (o, sig);
    }

    /// Offers and signatures as `submitOffers` takes them: packed (93 bytes an offer), concatenated.
    function packAll(OrderBook.Offer[] memory os, bytes[] memory sigs)
        internal
        pure
        returns (bytes memory offers, bytes memory signatures)
    {
        for (uint256 i = 0; i < os.length; ++i) {
            offers = bytes.concat(offers, packed(os[i]));
        }
        for (uint256 i = 0; i < sigs.length; ++i) {
            signatures = bytes.concat(signatures, sigs[i]);
        }
    }

    /// `target.submitOffers` of the packed batch (no external call before it: a prank or an
    /// expected revert set just before applies to it).
    function submit(OrderBook target, OrderBook.Offer[] memory os, bytes[] memory sigs, bool strict)
        internal
        returns (uint256)
    {
        (bytes memory offers, bytes memory signatures) = packAll(os, sigs);
        return target.submitOffers(offers, signatures, strict);
    }

    function relay(address relayer, OrderBook.Offer memory o, bytes memory sig) internal returns (uint256 accepted) {
        (OrderBook.Offer[] memory os, bytes[] memory sigs) = single(o, sig);
        vm.prank(relayer);
        accepted = submit(book, os, sigs, false);
    }

    // ------------------------------------------------------------------------------ requests

    /// 100 kW UP for four ISPs from DAY0 08:00 in feeder 5, at most 200 EUR/MWh: escrow 2,000 cents.
    function requestParams() internal view returns (OrderBook.RequestParams memory) {
        return OrderBook.RequestParams({
            market: market,
            zone: 5,
            start: DAY0 + 8 hours,
            isps: 4,
            direction: UP,
            powerW: 100_000,
            maxPrice: 20_000,
            product: 0,
            purpose: 0
        });
    }
}
