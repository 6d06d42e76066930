"""The settlement auditor's recomputation of a standard (ROLLING_AVERAGE) baseline from anchored
readings: a standard baseline's leaf commits to its inputs (``BaselineInputs``: which days, and
the meter's net consumption on each), so the auditor asks the oracle for them and for each day's
reading proof (``oracle.baselines.baseline_proof_for`` and ``oracle.anchoring.proof_for``, or the
same answers from wherever the oracle serves them) and trusts none of it: the inputs must hash to
the leaf's, every used day's reading must be proven against a root ``RootAnchored`` logged no
later than the baselines, no similar day with such a reading may have been skipped, and the value
must be the rule's (``flexledger.rules.baselines.apply_rule``). What it flags is what
``BaselineDisputes`` upholds on chain (an input, the arithmetic or the day selection, a skipped day).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from sqlalchemy import Engine

from flexledger.chain.structs import ReadingIn
from flexledger.errors import FlexledgerError
from flexledger.oracle.anchoring import proof_for
from flexledger.oracle.baselines import baseline_proof_for
from flexledger.rules.baselines import DAYS, LOOKBACK, BaselineInputs, apply_rule
from flexledger.settlement.records import is_anchored, reading_in
from flexledger.times import iso

DAY = 86_400
Answer = dict[str, Any] | None


@dataclass(frozen=True)
class BaselineEvidence:
    """What the oracle serves, by (meter, ISP start): a standard baseline's inputs (``inputs``,
    ``baseline_proof_for``'s answer) and a kept reading with its proof (``reading``, ``proof_for``'s);
    None where it has none."""

    inputs: Callable[[str, int], Answer]
    reading: Callable[[str, int], Answer]


def store_evidence(engine: Engine, market: int) -> BaselineEvidence:
    """What an oracle's store serves (its baseline inputs and reading proofs), for the auditor to
    recompute standard baselines from: checked against the chain there, trusted nowhere."""

    def served(answer: Callable[..., dict[str, Any]], *args: Any) -> Answer:
        try:
            return dict(answer(*args))
        except FlexledgerError:  # nothing kept for it: the auditor says so where it matters
            return None

    return BaselineEvidence(lambda m, t: served(baseline_proof_for, engine, market, m, t),
                            lambda m, t: served(proof_for, engine, m, t))


# (meter, ISP start, the reading) -> why it is not an anchored reading of the meter, empty if it is
ReadingCheck = Callable[[str, int, ReadingIn], list[str]]


def recheck_standard(meter: str, isp_start: int, value: int, inputs_hash: bytes, anchored_at: int,
                     evidence: BaselineEvidence, check: ReadingCheck) -> list[str]:
    """Why the standard baseline ``value`` of ``meter`` for ``isp_start``, whose leaf carries
    ``inputs_hash`` and whose root was anchored at ``anchored_at``, is not the rule's over the
    meter's anchored readings; empty when it is."""
    where = f"the standard baseline of {meter} for {iso(isp_start)}"
    answer = evidence.inputs(meter, isp_start)
    if answer is None or "daysBack" not in answer:
        return [f"{where}: the oracle serves no inputs for it, so it cannot be recomputed"]
    inputs = BaselineInputs(int(answer["daysBack"]), tuple(int(v) for v in answer["nets"]))
    if inputs.hash() != inputs_hash:
        return [f"{where}: the inputs the oracle serves are not the ones its leaf commits to"]
    out: list[str] = []
    rule_value, kept = apply_rule(isp_start, inputs)
    if kept != inputs or rule_value != value:
        out.append(f"{where} is {value} Wh; the rule over its own inputs gives "
                   + ("no baseline (too few similar days)" if rule_value is None else f"{rule_value} Wh"))
    for k, net in zip(inputs.days()[:DAYS], inputs.padded(), strict=False):
        anchored = _anchored_net(meter, isp_start - k * DAY, anchored_at, evidence, check)
        if anchored is None:
            out.append(f"{where} uses {iso(isp_start - k * DAY)}, which has no reading of the meter anchored by then")
        elif anchored != net:
            out.append(f"{where} uses {net} Wh for {iso(isp_start - k * DAY)}; the anchored reading is {anchored} Wh")
    out += _skipped(meter, isp_start, kept, anchored_at, evidence, check, where)
    return out


def _skipped(meter: str, isp_start: int, kept: BaselineInputs, anchored_at: int, evidence: BaselineEvidence,
             check: ReadingCheck, where: str) -> list[str]:
    """A similar day with an anchored reading left out while fewer than DAYS were used, or an older one was."""
    used = kept.days()
    oldest = used[-1] if len(used) == DAYS else LOOKBACK
    for k in range(1, oldest + 1):
        if k in used or apply_rule(isp_start, BaselineInputs.of([(k, 0)]))[1].days_back == 0:
            continue  # used, or not a day of the ISP's kind within the lookback
        if _anchored_net(meter, isp_start - k * DAY, anchored_at, evidence, check) is not None:
            return [f"{where} leaves out {iso(isp_start - k * DAY)}, a similar day with an anchored reading"]
    return []


def _anchored_net(meter: str, isp_start: int, anchored_at: int, evidence: BaselineEvidence,
                  check: ReadingCheck) -> int | None:
    """The meter's net consumption in the ISP as anchored no later than ``anchored_at``; None if not proven."""
    answer = evidence.reading(meter, isp_start)
    if answer is None:
        return None
    r = reading_in(answer)
    if not is_anchored(r) or r.anchor.anchored_at > anchored_at or check(meter, isp_start, r):
        return None
    return r.import_wh - r.export_wh


NO_BASELINE = (1).to_bytes(32, "big")  # MeterOracle.NO_BASELINE: a correction that leaves no baseline
# the anchored net of the meter's reading of an earlier day, proven (None when it is not: no evidence)
DayNet = Callable[[int], int | None]


def correction_for(isp_start: int, kind: int, which: int, inputs: BaselineInputs,
                   day_net: DayNet) -> tuple[int | None, BaselineInputs] | str:
    """What ``BaselineDisputes`` must put in force for a dispute of the standard baseline whose
    revealed inputs are ``inputs``: the evidence (``kind`` 0 ARITHMETIC, 1 INPUT: the used day at
    position ``which`` replaced by its anchored reading, 2 SKIPPED: the day ``which`` days before
    inserted) applied, then the rule: the value (None: no baseline left) and the inputs kept; or
    why the contract must refuse the evidence."""
    days, nets = inputs.days(), inputs.padded()
    if kind == 1:
        if which >= min(DAYS, len(days)):
            return f"input {which} is not a used day"
        net = day_net(isp_start - days[which] * DAY)
        if net is None:
            return f"the reading of {iso(isp_start - days[which] * DAY)} brought is not the meter's, anchored by then"
        nets[which] = net
    elif kind == 2:
        if not 0 < which <= 64 or which in days:
            return f"the day {which} days before is used already, or out of range"
        pos = sum(1 for k in days if k < which)
        if pos >= DAYS:
            return "the skipped day is older than DAYS used days: rightly left out"
        net = day_net(isp_start - which * DAY)
        if net is None:
            return f"the reading of {iso(isp_start - which * DAY)} brought is not the meter's, anchored by then"
        nets = [*nets[:pos], net, *nets[pos:]][:DAYS]
        inputs = BaselineInputs(inputs.days_back | 1 << (which - 1), ())
    elif kind != 0:
        return f"unknown dispute kind {kind}"
    return apply_rule(isp_start, BaselineInputs(inputs.days_back, tuple(nets)))


def fix_of(value: int | None, kept: BaselineInputs) -> bytes:
    """``MeterOracle.baselineFix``'s encoding of a correction."""
    return NO_BASELINE if value is None else keccak(encode(["int64", "bytes32"], [value, kept.hash()]))
