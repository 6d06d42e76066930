// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AssetRegistry} from "./AssetRegistry.sol";

/**
 * @title AssetWords
 * @notice `AssetRegistry.offerWord` for contracts that read it once per offer or award (the order
 * book, the clearing commitment): a bare STATICCALL through the scratch space, without the ABI
 * encoder's memory work. The word's layout is `AssetRegistry.offerWord`'s.
 */
library AssetWords {
    /**
     * @notice The asset's record as one word (zero for an unknown asset).
     * @param registry The AssetRegistry.
     * @param assetId The asset.
     * @return word `owner | zone << 160 | state << 184 | upW << 192 | downW << 224`.
     */
    function offerWord(AssetRegistry registry, uint64 assetId) internal view returns (uint256 word) {
        bytes4 selector = AssetRegistry.offerWord.selector;
        assembly ("memory-safe") {
            mstore(0x00, selector)
            mstore(0x04, and(assetId, 0xffffffffffffffff))
            let ok := staticcall(gas(), registry, 0x00, 0x24, 0x00, 0x20)
            if iszero(and(ok, eq(returndatasize(), 0x20))) {
                returndatacopy(0x00, 0x00, returndatasize())
                revert(0x00, returndatasize())
            }
            word := mload(0x00)
        }
    }

    /**
     * @notice `AssetRegistry.offerWordAt`: the record with its in-a-portfolio bit as of time `t`.
     * @param registry The AssetRegistry.
     * @param assetId The asset.
     * @param t A Unix time.
     * @return word The packed record (layout as `offerWord`).
     */
    function offerWordAt(AssetRegistry registry, uint64 assetId, uint64 t) internal view returns (uint256 word) {
        bytes4 selector = AssetRegistry.offerWordAt.selector;
        assembly ("memory-safe") {
            let free := mload(0x40) // the call data runs over the free memory pointer: put it back
            mstore(0x00, selector)
            mstore(0x04, and(assetId, 0xffffffffffffffff))
            mstore(0x24, and(t, 0xffffffffffffffff))
            let ok := staticcall(gas(), registry, 0x00, 0x44, 0x00, 0x20)
            if iszero(and(ok, eq(returndatasize(), 0x20))) {
                returndatacopy(0x00, 0x00, returndatasize())
                revert(0x00, returndatasize())
            }
            word := mload(0x00)
            mstore(0x40, free)
        }
    }
}
