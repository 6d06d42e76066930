// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";

/**
 * @title PairTree
 * @notice The Merkle root the order book leaves over a batch's offers and the clearing
 * commitment over a chunk's awards: the leaves, in order, are paired level by level with
 * OpenZeppelin's commutative Keccak-256 (so OpenZeppelin's `MerkleProof.verify` checks a proof),
 * and an odd node at the end of a level moves up unchanged. `flexledger.rules.pair_tree` builds
 * the same tree and its proofs.
 */
library PairTree {
    /**
     * @notice The root over the first `count` nodes, built in place (the nodes are overwritten).
     * @param nodes The leaves; at least `count` of them.
     * @param count How many leaves (at least one).
     * @return top The root.
     */
    function root(bytes32[] memory nodes, uint256 count) internal pure returns (bytes32 top) {
        // Every index stays below `count` <= nodes.length, so the reads and writes go without
        // bounds checks: the tree costs each leaf about one hash.
        unchecked {
            while (count > 1) {
                uint256 half = count >> 1;
                for (uint256 i = 0; i < half; ++i) {
                    bytes32 left;
                    bytes32 right;
                    assembly ("memory-safe") {
                        let at := add(add(nodes, 0x20), shl(6, i))
                        left := mload(at)
                        right := mload(add(at, 0x20))
                    }
                    bytes32 parent = Hashes.commutativeKeccak256(left, right);
                    assembly ("memory-safe") {
                        mstore(add(add(nodes, 0x20), shl(5, i)), parent)
                    }
                }
                if (count & 1 == 1) nodes[half] = nodes[count - 1];
                count = half + (count & 1);
            }
        }
        top = nodes[0];
    }
}
