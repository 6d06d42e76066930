// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {OrderBook} from "../market/OrderBook.sol";

/**
 * @title PackedOffer
 * @notice An offer as it travels: `OrderBook.Offer`'s fields big-endian, in struct order, without
 * padding (93 bytes against 448 ABI-encoded).
 *
 * Written by sellers off chain (`Offer.pack` in `flexledger/rules/orders.py`) and relayed to
 * `OrderBook.submitOffers`; the book copies its `SIZE` bytes unchanged into its `OffersAccepted`
 * entries; read from calldata by the book and by `ClearingCommitment.postChunk` (`load`,
 * `subjectAndStart`); written in Solidity by `pack` (tests), and independently by the forge
 * fixtures (`OrderBookFixture.packed`).
 *
 * A field of N bits is the word at its byte offset shifted right by 256 - N, so it comes out clean
 * and cannot exceed its type: no packed offer is malformed.
 */
library PackedOffer {
    /// @notice Bytes of a packed offer.
    uint256 internal constant SIZE = 93;

    /// @notice Each field's byte offset.
    uint256 internal constant MARKET_AT = 0; // uint32
    uint256 internal constant ASSET_AT = 4; // uint64
    uint256 internal constant PORTFOLIO_AT = 12; // uint32
    uint256 internal constant START_AT = 16; // uint64
    uint256 internal constant ISPS_AT = 24; // uint16
    uint256 internal constant DIRECTION_AT = 26; // uint8
    uint256 internal constant POWER_AT = 27; // uint32
    uint256 internal constant PRICE_AT = 31; // uint96
    uint256 internal constant MODE_AT = 43; // uint8
    uint256 internal constant MIN_POWER_AT = 44; // uint32
    uint256 internal constant BASELINE_METHOD_AT = 48; // uint8
    uint256 internal constant BASELINE_AT = 49; // bytes32
    uint256 internal constant EXPIRY_AT = 81; // uint64
    uint256 internal constant NONCE_AT = 89; // uint32

    /// @dev `256 - N` for a field of N bits: the shift that brings it down from the top of a word.
    uint256 private constant U8 = 248;
    uint256 private constant U16 = 240;
    uint256 private constant U32 = 224;
    uint256 private constant U64 = 192;
    uint256 private constant U96 = 160;
    /// @dev Asset (8), portfolio (4) and start (8) lie side by side from `ASSET_AT`: 160 bits.
    uint256 private constant U160 = 96;
    /// @dev The type hash word and the struct's fourteen words: what hashStruct hashes.
    uint256 private constant HASHED = 480;

    /**
     * @notice Where offer `i` of a run of packed offers in calldata begins.
     * @param run The packed offers, one after the other.
     * @param i The offer's index (the caller checked that the run holds it).
     * @return at Its calldata offset.
     */
    function offset(bytes calldata run, uint256 i) internal pure returns (uint256 at) {
        assembly ("memory-safe") {
            at := add(run.offset, mul(i, SIZE))
        }
    }

    /**
     * @notice The packed offer at calldata offset `at` as the struct, laid out in newly allocated
     * memory right after `typehash` (a memory struct of static fields has the ABI layout), and its
     * EIP-712 hashStruct: one keccak over the two, without the ABI encoder's per-field work.
     * @param at The packed offer's calldata offset (`SIZE` bytes from it are the caller's to read).
     * @param typehash The EIP-712 type hash of `Offer` (`OrderBook.OFFER_TYPEHASH`).
     * @return o The offer.
     * @return structHash `keccak256(abi.encode(typehash, o))`.
     */
    function load(uint256 at, bytes32 typehash) internal pure returns (OrderBook.Offer memory o, bytes32 structHash) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typehash)
            o := add(ptr, 0x20)
            mstore(o, shr(U32, calldataload(add(at, MARKET_AT))))
            mstore(add(o, 0x20), shr(U64, calldataload(add(at, ASSET_AT))))
            mstore(add(o, 0x40), shr(U32, calldataload(add(at, PORTFOLIO_AT))))
            mstore(add(o, 0x60), shr(U64, calldataload(add(at, START_AT))))
            mstore(add(o, 0x80), shr(U16, calldataload(add(at, ISPS_AT))))
            mstore(add(o, 0xa0), shr(U8, calldataload(add(at, DIRECTION_AT))))
            mstore(add(o, 0xc0), shr(U32, calldataload(add(at, POWER_AT))))
            mstore(add(o, 0xe0), shr(U96, calldataload(add(at, PRICE_AT))))
            mstore(add(o, 0x100), shr(U8, calldataload(add(at, MODE_AT))))
            mstore(add(o, 0x120), shr(U32, calldataload(add(at, MIN_POWER_AT))))
            mstore(add(o, 0x140), shr(U8, calldataload(add(at, BASELINE_METHOD_AT))))
            mstore(add(o, 0x160), calldataload(add(at, BASELINE_AT)))
            mstore(add(o, 0x180), shr(U64, calldataload(add(at, EXPIRY_AT))))
            mstore(add(o, 0x1a0), shr(U32, calldataload(add(at, NONCE_AT))))
            mstore(0x40, add(ptr, HASHED))
            structHash := keccak256(ptr, HASHED)
        }
    }

    /**
     * @notice The packed offer's asset, portfolio and start read as one number
     * (`asset << 96 | portfolio << 64 | start`): the subject over the start, which orders a
     * clearing result's groups with one comparison.
     * @param at The packed offer's calldata offset.
     * @return key The number.
     */
    function subjectAndStart(uint256 at) internal pure returns (uint256 key) {
        assembly ("memory-safe") {
            key := shr(U160, calldataload(add(at, ASSET_AT)))
        }
    }

    /**
     * @notice `subjectAndStart`'s number taken apart.
     * @param key The number.
     * @return asset The asset (0 for a portfolio offer).
     * @return portfolio The portfolio (0 for an asset offer).
     * @return start The window's start.
     */
    function splitSubjectAndStart(uint256 key) internal pure returns (uint64 asset, uint32 portfolio, uint64 start) {
        return (uint64(key >> 96), uint32(key >> 64), uint64(key));
    }

    /**
     * @notice An offer packed: what a seller relays and `load` reads back.
     * @param o The offer.
     * @return packed Its `SIZE` bytes.
     */
    function pack(OrderBook.Offer memory o) internal pure returns (bytes memory packed) {
        packed = abi.encodePacked(o.market, o.asset, o.portfolio, o.start, o.isps, o.direction, o.powerW, o.price);
        packed = abi.encodePacked(packed, o.mode, o.minPowerW, o.baselineMethod, o.baseline, o.expiry, o.nonce);
    }
}
