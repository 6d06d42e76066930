// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AssetRegistry} from "./AssetRegistry.sol";
import {OfferWord} from "../types/OfferWord.sol";

/**
 * @title AssetWords
 * @notice `AssetRegistry.offerWord` for contracts that read it once per offer or award (the order
 * book, the clearing commitment): a bare STATICCALL through the scratch space, without the ABI
 * encoder's memory work. The word's layout is `OfferWord`'s.
 */
library AssetWords {
    /**
     * @notice The asset's record as one word (zero for an unknown asset).
     * @param registry The AssetRegistry.
     * @param assetId The asset.
     * @return word The record (`OfferWord`).
     */
    function offerWord(AssetRegistry registry, uint64 assetId) internal view returns (OfferWord word) {
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
     * @notice A one-word view of the registry taking up to three words (`marketFor`,
     * `marketOfPortfolio`: a view ignores the words it does not take), with the same bare call.
     * @param registry The AssetRegistry.
     * @param selector The view's selector.
     * @param a Its first argument.
     * @param b Its second argument (0 if none).
     * @param c Its third argument (0 if none).
     * @return word What it returns.
     */
    function call3(AssetRegistry registry, bytes4 selector, uint256 a, uint256 b, uint256 c)
        internal
        view
        returns (uint256 word)
    {
        assembly ("memory-safe") {
            let ptr := mload(0x40) // past the free memory pointer: not allocated, only borrowed
            mstore(ptr, selector)
            mstore(add(ptr, 0x04), a)
            mstore(add(ptr, 0x24), b)
            mstore(add(ptr, 0x44), c)
            let ok := staticcall(gas(), registry, ptr, 0x64, 0x00, 0x20)
            if iszero(and(ok, eq(returndatasize(), 0x20))) {
                returndatacopy(0x00, 0x00, returndatasize())
                revert(0x00, returndatasize())
            }
            word := mload(0x00)
        }
    }
}
