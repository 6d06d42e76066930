// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

/**
 * @title BondWord
 * @notice A seller's bond in one storage word (OrderBook), so that the offer path reads all it
 * needs with one SLOAD. Amounts are token base units in 64 bits (the settlement token counts
 * euro cents: 1.8e17 euros); a larger bond reverts (SafeCast).
 *
 * Layout, from the lowest bit: `amount` (64 bits, the bond), `locked` (64, held for penalties of
 * settlements not yet final), `withdrawing` (64, under withdrawal notice, still drawn for
 * penalties until it leaves), `noticeEnds` (40, when the notice ends, 0 for none), and at bit
 * 255 `indebted` (a penalty the bond could not pay is still owed).
 */
library BondWord {
    uint256 internal constant LOCKED_AT = 64;
    uint256 internal constant WITHDRAWING_AT = 128;
    uint256 internal constant NOTICE_AT = 192;
    uint256 internal constant INDEBTED_AT = 255;
    uint256 internal constant AMOUNT_MASK = type(uint64).max;
    uint256 internal constant NOTICE_MASK = type(uint40).max;

    function amount(uint256 w) internal pure returns (uint256) {
        return w & AMOUNT_MASK;
    }

    function locked(uint256 w) internal pure returns (uint256) {
        return (w >> LOCKED_AT) & AMOUNT_MASK;
    }

    function indebted(uint256 w) internal pure returns (bool) {
        return w >> INDEBTED_AT != 0;
    }

    function unpack(uint256 w)
        internal
        pure
        returns (uint256 amount_, uint256 locked_, uint256 withdrawing, uint64 noticeEnds, bool indebted_)
    {
        amount_ = w & AMOUNT_MASK;
        locked_ = (w >> LOCKED_AT) & AMOUNT_MASK;
        withdrawing = (w >> WITHDRAWING_AT) & AMOUNT_MASK;
        noticeEnds = uint64((w >> NOTICE_AT) & NOTICE_MASK);
        indebted_ = w >> INDEBTED_AT != 0;
    }

    function withAmount(uint256 w, uint256 value) internal pure returns (uint256) {
        return (w & ~AMOUNT_MASK) | SafeCast.toUint64(value);
    }

    /// @dev `value` at most the amount (the callers check), so it fits.
    function withLocked(uint256 w, uint256 value) internal pure returns (uint256) {
        return (w & ~(AMOUNT_MASK << LOCKED_AT)) | (value << LOCKED_AT);
    }

    /// @dev `withdrawing` at most the amount (the callers check), so it fits; so does a time in 40 bits.
    function withNotice(uint256 w, uint256 withdrawing, uint64 noticeEnds) internal pure returns (uint256) {
        w &= ~((AMOUNT_MASK << WITHDRAWING_AT) | (NOTICE_MASK << NOTICE_AT));
        return w | (withdrawing << WITHDRAWING_AT) | (uint256(noticeEnds) << NOTICE_AT);
    }

    function withIndebted(uint256 w, bool value) internal pure returns (uint256) {
        return value ? w | (1 << INDEBTED_AT) : w & ~(uint256(1) << INDEBTED_AT);
    }
}
