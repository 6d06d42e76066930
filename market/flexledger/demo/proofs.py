"""Reading proofs for the demo's settlement, one Merkle tree per ISP.

``flexledger.oracle.anchoring.proof_for`` rebuilds the ISP's whole tree on every call, which is
right for one proof and far too slow for a day's hundreds (each tree holds a thousand readings).
This keeps each ISP's tree once and answers in ``proof_for``'s format, checked against the same
anchor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from flexledger.oracle.anchoring import ProofError, tree_of
from flexledger.oracle.merkle import StandardMerkleTree
from flexledger.oracle.store import StoredAnchor, readings_of_isp, session


@dataclass(frozen=True)
class _Isp:
    tree: StandardMerkleTree
    index: dict[str, int]  # meter (lower case) -> leaf
    values: list[tuple[str, int, int, int, int, bytes]]  # (meter, ISP start, sequence, import, export, signature)
    anchor: dict[str, Any]


class ReadingProofs:
    """``(meter, ISP start) -> proof_for(...)``'s answer, from a tree built once per ISP."""

    def __init__(self, engine: Engine, market: int) -> None:
        self.engine = engine
        self.market = market
        self._isps: dict[int, _Isp] = {}

    def _isp(self, isp_start: int) -> _Isp:
        if isp_start not in self._isps:
            with session(self.engine) as s:
                rows = readings_of_isp(s, isp_start)
                anchor = s.get(StoredAnchor, (self.market, isp_start))
                if anchor is None:
                    raise ProofError(f"the ISP starting at {isp_start} is not anchored yet")
                tree = tree_of(rows)
                if tree.root != anchor.root:
                    raise ProofError(f"the stored readings of ISP {isp_start} no longer give its anchored root")
                values = [(r.meter, r.isp_start, r.sequence, r.import_wh, r.export_wh, bytes(r.signature)) for r in rows]
                shown = {"market": anchor.market, "root": "0x" + anchor.root.hex(), "oracle": anchor.oracle,
                         "leafCount": anchor.leaf_count, "anchoredAt": anchor.anchored_at, "txHash": anchor.tx_hash}
            self._isps[isp_start] = _Isp(tree, {v[0].lower(): i for i, v in enumerate(values)}, values, shown)
        return self._isps[isp_start]

    def __call__(self, meter: str, isp_start: int) -> dict[str, Any]:
        isp = self._isp(isp_start)
        index = isp.index.get(meter.lower())
        if index is None:
            raise ProofError(f"no reading of {meter} for the ISP starting at {isp_start} in the root")
        who, start, sequence, imported, exported, signature = isp.values[index]
        return {"meter": who, "ispStart": start, "sequence": sequence, "importWh": imported, "exportWh": exported,
                "signature": "0x" + signature.hex(), "proof": ["0x" + p.hex() for p in isp.tree.proof(index)], "anchor": isp.anchor}
