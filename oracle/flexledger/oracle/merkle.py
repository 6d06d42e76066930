"""Merkle trees in the OpenZeppelin standard format (npm ``@openzeppelin/merkle-tree``'s
``StandardMerkleTree``), so that its library, OpenZeppelin's ``MerkleProof`` in Solidity and this
module agree on roots and proofs (tests/oracle/test_merkle.py holds them against the npm library).

The format: a leaf is ``keccak256(keccak256(abi.encode(values)))`` (double hashing keeps a leaf
from ever equalling an inner node); leaves are sorted by hash; the tree is an array of
``2n - 1`` nodes with the leaves at the end in reverse order and node ``i``'s children at
``2i + 1`` and ``2i + 2``; a pair hashes as ``keccak256`` of its two nodes in ascending order.
The JSON dump (``dump``) is the npm library's ``StandardMerkleTree.dump()`` format, version ``v1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak

from flexledger.errors import FlexledgerError


class MerkleError(FlexledgerError):
    """An empty tree, a value not in the tree, or a dump that is not a standard tree."""


def leaf_hash(encoding: Sequence[str], values: Sequence[Any]) -> bytes:
    return keccak(keccak(encode(list(encoding), list(values))))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b if a < b else b + a)


@dataclass
class StandardMerkleTree:
    encoding: list[str]
    values: list[list[Any]]  # in the order given
    tree: list[bytes]
    positions: list[int]  # values[i] is at tree[positions[i]]

    @classmethod
    def of(cls, values: Sequence[Sequence[Any]], encoding: Sequence[str]) -> StandardMerkleTree:
        if not values:
            raise MerkleError("a Merkle tree needs at least one leaf")
        hashed = sorted(((leaf_hash(encoding, v), i) for i, v in enumerate(values)), key=lambda hv: hv[0])
        n = len(hashed)
        tree: list[bytes] = [b""] * (2 * n - 1)
        positions = [0] * n
        for k, (h, i) in enumerate(hashed):
            tree[len(tree) - 1 - k] = h
            positions[i] = len(tree) - 1 - k
        for node in range(len(tree) - 1 - n, -1, -1):
            tree[node] = hash_pair(tree[2 * node + 1], tree[2 * node + 2])
        return cls(list(encoding), [list(v) for v in values], tree, positions)

    @property
    def root(self) -> bytes:
        return self.tree[0]

    def proof(self, index: int) -> list[bytes]:
        """The proof of ``values[index]`` (sibling hashes from the leaf up)."""
        node = self.positions[index]
        out = []
        while node > 0:
            out.append(self.tree[node + 1 if node % 2 == 1 else node - 1])
            node = (node - 1) // 2
        return out

    def dump(self) -> dict[str, Any]:
        def show(v: Any) -> Any:
            return "0x" + v.hex() if isinstance(v, bytes) else v

        return {
            "format": "standard-v1",
            "leafEncoding": self.encoding,
            "tree": ["0x" + h.hex() for h in self.tree],
            "values": [{"value": [show(x) for x in v], "treeIndex": p} for v, p in zip(self.values, self.positions,
                                                                                      strict=True)],
        }


def verify(root: bytes, encoding: Sequence[str], values: Sequence[Any], proof: Sequence[bytes]) -> bool:
    """Whether ``proof`` shows ``values`` is a leaf of the tree with ``root`` (as MerkleProof.verify)."""
    node = leaf_hash(encoding, values)
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root
