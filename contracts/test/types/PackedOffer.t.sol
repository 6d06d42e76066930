// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {OrderBook} from "../../src/market/OrderBook.sol";
import {PackedOffer} from "../../src/types/PackedOffer.sol";

/// The library's calldata readers behind an external call, as the book and the commitment reach them.
contract PackedOfferReader {
    function load(bytes calldata packed, bytes32 typehash)
        external
        pure
        returns (OrderBook.Offer memory o, bytes32 structHash, bool allocated)
    {
        (o, structHash) = PackedOffer.load(PackedOffer.offset(packed, 0), typehash);
        assembly ("memory-safe") {
            allocated := iszero(gt(add(o, 0x1c0), mload(0x40))) // the struct's 14 words lie below the free pointer
        }
    }

    function subjectAndStart(bytes calldata packed) external pure returns (uint256) {
        return PackedOffer.subjectAndStart(PackedOffer.offset(packed, 0));
    }

    /// Offer `i` of a run, copied out as the book logs it (`SIZE` bytes from its offset).
    function copyOf(bytes calldata run, uint256 i) external pure returns (bytes memory out) {
        out = new bytes(PackedOffer.SIZE);
        uint256 at = PackedOffer.offset(run, i);
        uint256 size = PackedOffer.SIZE;
        assembly ("memory-safe") {
            calldatacopy(add(out, 0x20), at, size)
        }
    }
}

contract PackedOfferTest is TestBase {
    PackedOfferReader internal reader = new PackedOfferReader();
    bytes32 internal constant TYPEHASH = keccak256("any type hash");

    /// Written independently of the library (as `OrderBookFixture.packed`), so the two check each other.
    function independent(OrderBook.Offer memory o) internal pure returns (bytes memory) {
        return abi.encodePacked(
            abi.encodePacked(o.market, o.asset, o.portfolio, o.start, o.isps, o.direction, o.powerW),
            abi.encodePacked(o.price, o.mode, o.minPowerW, o.baselineMethod, o.baseline, o.expiry, o.nonce)
        );
    }

    function assertSame(OrderBook.Offer memory a, OrderBook.Offer memory b, string memory what) internal pure {
        assertEq(keccak256(abi.encode(a)), keccak256(abi.encode(b)), what);
    }

    function testFuzz_packThenLoadIsTheOffer(OrderBook.Offer memory o, bytes32 junk) public view {
        bytes memory packed = PackedOffer.pack(o);
        assertEq(packed.length, PackedOffer.SIZE, "93 bytes");
        assertEq(keccak256(packed), keccak256(independent(o)), "the library packs as the fixture does");
        // the next offer's bytes follow in a batch: no field may pick them up
        (OrderBook.Offer memory back, bytes32 structHash, bool allocated) =
            reader.load(abi.encodePacked(packed, junk, junk), TYPEHASH);
        assertSame(back, o, "load(pack(o)) == o");
        assertEq(structHash, keccak256(abi.encode(TYPEHASH, o)), "hashStruct as the ABI encoder does it");
        assertTrue(allocated, "the struct is allocated: later allocations do not overwrite it");
    }

    function testFuzz_subjectAndStart(OrderBook.Offer memory o) public view {
        uint256 key = reader.subjectAndStart(PackedOffer.pack(o));
        assertEq(key, uint256(o.asset) << 96 | uint256(o.portfolio) << 64 | o.start, "subject over start");
        (uint64 asset, uint32 portfolio, uint64 start) = PackedOffer.splitSubjectAndStart(key);
        assertEq(asset, o.asset, "asset");
        assertEq(portfolio, o.portfolio, "portfolio");
        assertEq(start, o.start, "start");
    }

    function testFuzz_offsetFindsEachOffer(OrderBook.Offer memory a, OrderBook.Offer memory b) public view {
        bytes memory run = abi.encodePacked(PackedOffer.pack(a), PackedOffer.pack(b));
        assertEq(keccak256(reader.copyOf(run, 0)), keccak256(PackedOffer.pack(a)), "first");
        assertEq(keccak256(reader.copyOf(run, 1)), keccak256(PackedOffer.pack(b)), "second");
    }

    /// Each field alone set to all ones reads back as its type's maximum, every other field as
    /// zero: the offsets and widths tile the 93 bytes with neither gap nor overlap.
    function test_fieldBoundaries() public view {
        uint256[14] memory at = [
            PackedOffer.MARKET_AT, PackedOffer.ASSET_AT, PackedOffer.PORTFOLIO_AT, PackedOffer.START_AT,
            PackedOffer.ISPS_AT, PackedOffer.DIRECTION_AT, PackedOffer.POWER_AT, PackedOffer.PRICE_AT,
            PackedOffer.MODE_AT, PackedOffer.MIN_POWER_AT, PackedOffer.BASELINE_METHOD_AT, PackedOffer.BASELINE_AT,
            PackedOffer.EXPIRY_AT, PackedOffer.NONCE_AT
        ];
        uint256[14] memory size = [uint256(4), 8, 4, 8, 2, 1, 4, 12, 1, 4, 1, 32, 8, 4];
        uint256 end = 0;
        for (uint256 f = 0; f < 14; ++f) {
            assertEq(at[f], end, "fields follow each other");
            end += size[f];
            bytes memory packed = new bytes(PackedOffer.SIZE);
            for (uint256 k = at[f]; k < at[f] + size[f]; ++k) {
                packed[k] = 0xff;
            }
            (OrderBook.Offer memory o,,) = reader.load(packed, TYPEHASH);
            uint256[14] memory got = [
                uint256(o.market), o.asset, o.portfolio, o.start, o.isps, o.direction, o.powerW, o.price, o.mode,
                o.minPowerW, o.baselineMethod, uint256(o.baseline), o.expiry, o.nonce
            ];
            for (uint256 g = 0; g < 14; ++g) {
                uint256 expected = g == f ? (size[g] == 32 ? type(uint256).max : (1 << (8 * size[g])) - 1) : 0;
                assertEq(got[g], expected, "one field set");
            }
        }
        assertEq(end, PackedOffer.SIZE, "the fields fill the packed offer");
    }

}
