"""The Merkle tree of ``PairTree.sol``: the root an OrderBook batch leaves over the offers it
accepted (leaves: their EIP-712 digests, in acceptance order) and the root ClearingCommitment
keeps over a chunk's awards (leaves: ``award_leaf``, in posting order).

Each level pairs its nodes in order with the commutative Keccak-256 of OpenZeppelin's ``Hashes``
(the hash of the sorted pair), and an odd last node moves up unchanged. A proof lists the
siblings from the leaf up, so OpenZeppelin's ``MerkleProof.verify`` checks it on chain.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils import keccak


def pair_hash(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    if not leaves:
        raise ValueError("a batch tree needs at least one leaf")
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        nodes = levels[-1]
        up = [pair_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
        if len(nodes) % 2:
            up.append(nodes[-1])
        levels.append(up)
    return levels


def pair_root(leaves: Sequence[bytes]) -> bytes:
    return _levels(leaves)[-1][0]


def pair_proofs(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and every leaf's proof."""
    levels = _levels(leaves)
    proofs: list[list[bytes]] = []
    for index in range(len(leaves)):
        proof, i = [], index
        for nodes in levels[:-1]:
            sibling = i ^ 1
            if sibling < len(nodes):
                proof.append(nodes[sibling])
            i //= 2
        proofs.append(proof)
    return levels[-1][0], proofs


def verify(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    node = leaf
    for sibling in proof:
        node = pair_hash(node, sibling)
    return node == root
