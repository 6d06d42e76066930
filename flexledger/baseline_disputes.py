"""Disputing a standard (ROLLING_AVERAGE) baseline from Python (``BaselineDisputes.dispute``):
the baseline in force revealed with its inputs (``oracle.baselines.baseline_proof_for``'s answer)
and, for an INPUT or SKIPPED dispute, the meter's anchored reading of that day
(``oracle.anchoring.proof_for``'s answer), the evidence the contract judges; it computes the
correction itself."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from flexledger.chain.bindings import BaselineDisputesClient
from flexledger.chain.client import TxResult
from flexledger.chain.transactions import Signer

from .audit_baselines import reading_in
from .rules.baselines import BaselineInputs
from .settlement_records import NO_READING


class Kind(IntEnum):
    """``BaselineDisputes.Kind``: what a dispute shows."""

    ARITHMETIC = 0  # the inputs break the rule on their own
    INPUT = 1  # an input is not the anchored reading of its day
    SKIPPED = 2  # a similar day with an anchored reading was left out


def dispute_input(kind: Kind, isp: int, baseline: dict[str, Any], *, member: int = 0, which: int = 0,
                  reading: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """``BaselineDisputes.DisputeIn``: ISP ``isp`` (its index in the settlement's inputs), the
    baseline in force (``baseline``: its value, inputs and Merkle proof; a correction's has no
    proof), ``which`` (INPUT: the input's position among the used days; SKIPPED: the day, as days
    before the ISP) and the anchored reading of that day."""
    inputs = BaselineInputs(int(baseline["daysBack"]), tuple(int(v) for v in baseline["nets"]))
    proof = [bytes.fromhex(h[2:]) for h in baseline.get("proof", [])]
    evidence = NO_READING if reading is None else reading_in(reading)
    return (int(kind), isp, member, (int(baseline["baselineWh"]), inputs.days_back, inputs.padded(), proof), which,
            evidence.as_tuple())


def dispute_baseline(disputes: BaselineDisputesClient, signer: Signer, settle_in: tuple[Any, ...],
                     record: tuple[Any, ...], d: tuple[Any, ...]) -> TxResult:
    """Send the dispute (anyone may, in the settlement's dispute window)."""
    return disputes.dispute(settle_in, record, d, sender=signer)
