// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {FreeMemory} from "../../src/types/FreeMemory.sol";

/// Pointers are read into locals before any assertion: an assertion's message is itself allocated.
contract FreeMemoryTest is TestBase {
    function testFuzz_allocateThenRewind(uint8 a, uint8 b) public pure {
        uint256 mark = FreeMemory.pointer();
        uint256 start = FreeMemory.allocate(a);
        uint256 afterRoom = FreeMemory.pointer();
        bytes memory first = new bytes(b);
        FreeMemory.rewind(mark);
        uint256 rewound = FreeMemory.pointer();
        bytes memory second = new bytes(b);
        uint256 firstAt;
        uint256 secondAt;
        assembly ("memory-safe") {
            firstAt := first
            secondAt := second
        }
        assertEq(start, mark, "room starts at the pointer");
        assertEq(afterRoom, mark + a, "and moves it up by its size");
        assertEq(firstAt, mark + a, "the next allocation follows the room");
        assertEq(rewound, mark, "rewound");
        assertEq(secondAt, mark, "the next allocation reuses the freed memory");
    }

    /// A loop that rewinds each iteration uses one iteration's memory, however long it runs.
    function test_loopStaysFlat() public pure {
        uint256 mark = FreeMemory.pointer();
        uint256 highest;
        uint256 total;
        for (uint256 i = 0; i < 50; ++i) {
            FreeMemory.rewind(mark);
            bytes memory scratch = abi.encode(i, i, i);
            total += scratch.length;
            uint256 top = FreeMemory.pointer();
            if (top > highest) highest = top;
        }
        assertEq(total, 50 * 96, "every iteration allocated");
        assertEq(highest, mark + 0x20 + 96, "one iteration's memory");
    }
}
