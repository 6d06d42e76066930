// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Vm} from "./Vm.sol";

/// @notice Assertions for forge tests: a failed one reverts with what was expected and found.
abstract contract TestBase {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    error AssertionFailed(string what);
    error AssertionFailedUint(string what, uint256 expected, uint256 actual);
    error AssertionFailedAddress(string what, address expected, address actual);
    error AssertionFailedBytes32(string what, bytes32 expected, bytes32 actual);

    function assertTrue(bool condition, string memory what) internal pure {
        if (!condition) revert AssertionFailed(what);
    }

    function assertEq(uint256 actual, uint256 expected, string memory what) internal pure {
        if (actual != expected) revert AssertionFailedUint(what, expected, actual);
    }

    function assertEq(address actual, address expected, string memory what) internal pure {
        if (actual != expected) revert AssertionFailedAddress(what, expected, actual);
    }

    function assertEq(bytes32 actual, bytes32 expected, string memory what) internal pure {
        if (actual != expected) revert AssertionFailedBytes32(what, expected, actual);
    }

    function assertLe(uint256 actual, uint256 limit, string memory what) internal pure {
        if (actual > limit) revert AssertionFailedUint(what, limit, actual);
    }

    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        return min + (x % (max - min + 1));
    }

    function assetIds(uint64 a) internal pure returns (uint64[] memory list) {
        list = new uint64[](1);
        list[0] = a;
    }

    function assetIds(uint64 a, uint64 b) internal pure returns (uint64[] memory list) {
        list = new uint64[](2);
        (list[0], list[1]) = (a, b);
    }

    function assetIds(uint64 a, uint64 b, uint64 c) internal pure returns (uint64[] memory list) {
        list = new uint64[](3);
        (list[0], list[1], list[2]) = (a, b, c);
    }
}
