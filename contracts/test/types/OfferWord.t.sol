// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {OfferWord, OfferWordLibrary} from "../../src/types/OfferWord.sol";

contract OfferWordTest is TestBase {
    /// Written independently of the library: the `Asset` struct's fields from the lowest bit.
    function word(address owner, uint24 zone, uint8 state, uint32 upW, uint32 downW) internal pure returns (OfferWord) {
        return OfferWord.wrap(
            uint256(uint160(owner)) | uint256(zone) << 160 | uint256(state) << 184 | uint256(upW) << 192
                | uint256(downW) << 224
        );
    }

    function testFuzz_accessorsReadTheFields(address owner, uint24 zone, uint8 state, uint32 upW, uint32 downW)
        public
        pure
    {
        OfferWord w = word(owner, zone, state, upW, downW);
        assertEq(w.owner(), owner, "owner");
        assertEq(w.zone(), zone, "zone");
        assertEq(w.state(), state, "state");
        assertEq(w.status(), state & 3, "status: bits 0-1");
        assertTrue(w.inPortfolio() == (state & 4 != 0), "in a portfolio: bit 2");
        assertTrue(w.checkHistory() == (state & 8 != 0), "look past the word: bit 3");
        assertEq(w.market(), state >> 4, "market: bits 4-7");
        assertEq(w.upW(), upW, "up");
        assertEq(w.downW(), downW, "down");
        assertEq(w.prequalified(0), upW, "UP");
        assertEq(w.prequalified(1), downW, "DOWN");
    }

    function testFuzz_upperRoundTrip(uint256 raw, uint256 other) public pure {
        OfferWord w = OfferWord.wrap(raw);
        assertEq(w.upper(), raw >> 160, "zone, state and powers");
        OfferWord swapped = w.withUpper(OfferWord.wrap(other).upper());
        assertEq(swapped.owner(), w.owner(), "the owner is kept");
        assertEq(swapped.upper(), other >> 160, "the rest replaced");
        assertEq(OfferWord.unwrap(w.withUpper(w.upper())), raw, "its own upper bits give the word back");
    }

    /// Each field alone set to all ones: the others read zero.
    function test_fieldBoundaries() public pure {
        OfferWord w = word(address(0), type(uint24).max, 0, 0, 0);
        assertEq(w.zone(), type(uint24).max, "zone");
        assertEq(uint160(w.owner()) | w.state() | w.upW() | w.downW(), 0, "zone alone");
        w = word(address(0), 0, type(uint8).max, 0, 0);
        assertEq(w.state(), 255, "state");
        assertEq(uint160(w.owner()) | w.zone() | w.upW() | w.downW(), 0, "state alone");
        w = word(address(0), 0, 0, type(uint32).max, 0);
        assertEq(uint160(w.owner()) | w.zone() | w.state() | w.downW(), 0, "up alone");
        w = word(address(type(uint160).max), 0, 0, 0, type(uint32).max);
        assertEq(w.zone() | w.state() | w.upW(), 0, "owner and down alone");
        assertEq(OfferWordLibrary.STATUS_MASK | OfferWordLibrary.IN_PORTFOLIO | OfferWordLibrary.CHECK_HISTORY, 15, "low nibble");
        assertEq(OfferWordLibrary.MARKET_SHIFT, 4, "the market is the high nibble");
    }
}
