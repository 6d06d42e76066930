// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/**
 * @title FreeMemory
 * @notice Solidity never frees memory: every `new`, `abi.encode` and memory struct moves the
 * free memory pointer (the word at 0x40) up for good, and memory costs quadratically in its
 * highest address. A loop whose iterations allocate only what dies with them (an offer's struct
 * and its error reason in `OrderBook.submitOffers`, a group's totals and event bytes in
 * `ClearingCommitment.postChunk`) takes the pointer before the loop (`pointer`) and puts it back
 * at the start of each iteration (`rewind`), so a batch of hundreds costs memory for one.
 *
 * Sound only when nothing allocated after the mark is read after the rewind: the caller keeps
 * every value that outlives an iteration in memory allocated before the mark, in storage or on
 * the stack. A bare call that writes its arguments over 0x40 (past the two scratch words) takes
 * the pointer first and rewinds to it after (`RoleGated._hasMarketRole`, inline: every gated call pays it).
 */
library FreeMemory {
    /**
     * @notice The free memory pointer: where the next allocation starts.
     * @return mark The pointer, to `rewind` to.
     */
    function pointer() internal pure returns (uint256 mark) {
        assembly ("memory-safe") {
            mark := mload(0x40)
        }
    }

    /**
     * @notice Room for `size` bytes that the caller writes in place (not zeroed, unlike `new`).
     * @param size Bytes.
     * @return start Where the room starts.
     */
    function allocate(uint256 size) internal pure returns (uint256 start) {
        assembly ("memory-safe") {
            start := mload(0x40)
            mstore(0x40, add(start, size))
        }
    }

    /**
     * @notice Free everything allocated since `pointer` returned `mark`.
     * @param mark A pointer `pointer` returned, not above the current one.
     */
    function rewind(uint256 mark) internal pure {
        assembly ("memory-safe") {
            mstore(0x40, mark)
        }
    }
}
