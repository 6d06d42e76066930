// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice An asset's record in one word: everything an offer's checks read, in one slot.
type OfferWord is uint256;

using OfferWordLibrary for OfferWord global;

/**
 * @title OfferWordLibrary
 * @notice The layout of `OfferWord`, from the lowest bit: `owner` (160 bits), `zone` (24),
 * `state` (8), `upW` (32, prequalified power upwards), `downW` (32, downwards). The state byte
 * holds the Status (bits 0-1, `AssetRegistry.Status`; 0: deregistered), whether the asset is in a
 * portfolio (bit 2), whether checks as of a past time must look past this word (bit 3: ever in a
 * portfolio, deregistered, or re-mapped, suspended or reinstated since its first mapping), and
 * its market for every ISP from now on (bits 4-7; 0: a change is scheduled, the market is above
 * 15 or none is set, and `AssetRegistry.marketFor` tells).
 *
 * Written by `AssetRegistry`, whose `Asset` struct is this word's slot (its fields in this order);
 * read through `AssetRegistry.offerWord` / `offerWordAt` by the order book (each offer), the
 * clearing commitment (each awarded offer), the settlement and the dispute contracts (the
 * owner), and off chain by `flexledger/rules/orders.py` (`closure_problem`, `asset_zone`).
 */
library OfferWordLibrary {
    uint256 internal constant ZONE_AT = 160;
    uint256 internal constant STATE_AT = 184;
    uint256 internal constant UP_AT = 192;
    uint256 internal constant DOWN_AT = 224;

    /// @notice Bits of the state byte (`Asset.state`, the word's bits 184-191).
    uint8 internal constant STATUS_MASK = 3;
    uint8 internal constant IN_PORTFOLIO = 4;
    uint8 internal constant CHECK_HISTORY = 8;
    uint8 internal constant MARKET_SHIFT = 4;

    /// @notice The owner, who signs the asset's offers (the zero address for an unknown asset).
    function owner(OfferWord w) internal pure returns (address) {
        return address(uint160(OfferWord.unwrap(w)));
    }

    /// @notice The zone the asset is mapped to (0 while pending).
    function zone(OfferWord w) internal pure returns (uint32) {
        return uint32(uint24(OfferWord.unwrap(w) >> ZONE_AT));
    }

    /// @notice The state byte, whose bits `STATUS_MASK`, `IN_PORTFOLIO`, `CHECK_HISTORY` and
    /// `MARKET_SHIFT` name.
    function state(OfferWord w) internal pure returns (uint8) {
        return uint8(OfferWord.unwrap(w) >> STATE_AT);
    }

    /// @notice The Status (`AssetRegistry.Status`: 0 NONE, 1 PENDING, 2 ACTIVE, 3 SUSPENDED).
    function status(OfferWord w) internal pure returns (uint8) {
        return uint8(OfferWord.unwrap(w) >> STATE_AT) & STATUS_MASK;
    }

    /// @notice Whether the asset belongs to a portfolio now (then its aggregator offers it).
    function inPortfolio(OfferWord w) internal pure returns (bool) {
        return uint8(OfferWord.unwrap(w) >> STATE_AT) & IN_PORTFOLIO != 0;
    }

    /// @notice Whether the record as of a past time may differ from this word (`offerWordAt` tells).
    function checkHistory(OfferWord w) internal pure returns (bool) {
        return uint8(OfferWord.unwrap(w) >> STATE_AT) & CHECK_HISTORY != 0;
    }

    /// @notice The asset's market for every ISP from now on, 0 when `AssetRegistry.marketFor` must tell.
    function market(OfferWord w) internal pure returns (uint8) {
        return uint8(OfferWord.unwrap(w) >> STATE_AT) >> MARKET_SHIFT;
    }

    /// @notice The prequalified power upwards (W).
    function upW(OfferWord w) internal pure returns (uint32) {
        return uint32(OfferWord.unwrap(w) >> UP_AT);
    }

    /// @notice The prequalified power downwards (W).
    function downW(OfferWord w) internal pure returns (uint32) {
        return uint32(OfferWord.unwrap(w) >> DOWN_AT);
    }

    /// @notice The prequalified power in a direction (W).
    /// @param direction 0 UP, else DOWN.
    function prequalified(OfferWord w, uint256 direction) internal pure returns (uint32) {
        return uint32(OfferWord.unwrap(w) >> (direction == 0 ? UP_AT : DOWN_AT));
    }

    /// @notice The word's upper 96 bits (zone, state, powers): what a record's history keeps.
    function upper(OfferWord w) internal pure returns (uint256) {
        return OfferWord.unwrap(w) >> ZONE_AT;
    }

    /// @notice The word with its upper 96 bits (zone, state, powers) replaced by `upper`, the owner
    /// kept: how a record's history (which keeps only those bits) is read back.
    function withUpper(OfferWord w, uint256 upper) internal pure returns (OfferWord) {
        return OfferWord.wrap(uint160(OfferWord.unwrap(w)) | upper << ZONE_AT);
    }
}
