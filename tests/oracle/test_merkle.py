"""Our Merkle trees are OpenZeppelin standard trees: the npm @openzeppelin/merkle-tree computes the
same root and proofs from the same leaves, accepts our proofs, and dumps the same JSON."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexledger.chain import paths
from flexledger.oracle.merkle import MerkleError, StandardMerkleTree, verify

ENCODING = ["address", "uint64", "uint64", "uint64", "uint64"]


def npm(values: list[list[Any]], proofs: list[list[str]]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is needed to hold the tree against @openzeppelin/merkle-tree"
    out = subprocess.run([node, str(paths.project_root() / "tests" / "js" / "merkle.mjs")],
                         # numbers as strings: JSON numbers above 2^53 would lose digits in JavaScript
                         input=json.dumps({"encoding": ENCODING, "values": [[str(x) for x in v] for v in values],
                                           "proofs": proofs}),
                         capture_output=True, text=True, check=True, cwd=paths.project_root(), timeout=60).stdout
    result: dict[str, Any] = json.loads(out)
    return result


readings = st.lists(
    st.tuples(st.integers(1, 2**160 - 1).map(lambda a: "0x" + a.to_bytes(20, "big").hex()),
              st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 10**9), st.integers(0, 10**9)),
    min_size=1, max_size=40, unique_by=lambda r: r[0],
)


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(readings)
def test_the_npm_library_agrees_on_root_proofs_and_dump(values: list[tuple[Any, ...]]) -> None:
    rows = [list(v) for v in values]
    tree = StandardMerkleTree.of(rows, ENCODING)
    ours = [["0x" + h.hex() for h in tree.proof(i)] for i in range(len(rows))]
    theirs = npm(rows, ours)
    assert theirs["root"] == "0x" + tree.root.hex()
    assert theirs["proofs"] == ours
    assert all(theirs["accepted"])
    dump = tree.dump()
    assert dump["tree"] == theirs["dump"]["tree"] and dump["format"] == theirs["dump"]["format"]
    assert [v["treeIndex"] for v in dump["values"]] == [v["treeIndex"] for v in theirs["dump"]["values"]]
    for i, row in enumerate(rows):
        assert verify(tree.root, ENCODING, row, tree.proof(i))


def test_a_wrong_value_or_proof_is_refused() -> None:
    rows = [["0x" + f"{k:040x}", 1800000000, k, 100 * k, 0] for k in range(1, 6)]
    tree = StandardMerkleTree.of(rows, ENCODING)
    assert not verify(tree.root, ENCODING, [rows[0][0], 1800000000, 1, 101, 0], tree.proof(0))
    assert not verify(tree.root, ENCODING, rows[0], tree.proof(1))
    with pytest.raises(MerkleError):
        StandardMerkleTree.of([], ENCODING)
