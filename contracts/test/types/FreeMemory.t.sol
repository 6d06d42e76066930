// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TestBase} from "../utils/TestBase.sol";
import {FreeMemory} from "../../src/types/FreeMemory.sol";

contract FreeMemoryTest is TestBase {
    function testFuzz_allocateThenRewind(uint8 a, uint8 b) public pure {
        uint256 mark = FreeMemory.pointer();
        uint256 start = FreeMemory.allocate(a);
        assertEq(start, mark, "room starts at the pointer");
        assertEq(FreeMemory.pointer(), mark + a, "and moves it up");
        bytes memory first = new bytes(b);
        uint256 firstAt;
        assembly ("memory-safe") {
            firstAt := first
        }
        assertEq(firstAt, mark + a, "allocations follow");
        FreeMemory.rewind(mark);
        assertEq(FreeMemory.pointer(), mark, "rewound");
        bytes memory second = new bytes(b);
        uint256 secondAt;
        assembly ("memory-safe") {
            secondAt := second
        }
        assertEq(secondAt, mark, "the next allocation reuses the freed memory");
    }

    /// A loop that rewinds each iteration uses one iteration's memory, however long it runs.
    function test_loopStaysFlat() public pure {
        uint256 mark = FreeMemory.pointer();
        uint256 highest;
        for (uint256 i = 0; i < 50; ++i) {
            FreeMemory.rewind(mark);
            bytes memory scratch = abi.encode(i, i, i);
            assertEq(scratch.length, 96, "used");
            if (FreeMemory.pointer() > highest) highest = FreeMemory.pointer();
        }
        assertEq(highest, mark + 0x20 + 96, "one iteration's memory");
    }
}
