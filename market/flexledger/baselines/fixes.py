"""The standard baselines in force after ``BaselineDisputes`` corrections: once a dispute put a
correction in force for a (market, ISP, meter) (``MeterOracle.baselineFix``), a settlement, a
reading dispute or ``applyCorrection`` must present it, not the anchored leaf: its value and,
as the witness, the hash of the inputs it keeps (``MeterOracle.verifyBaseline``). Both come from
the ``BaselineDisputed`` (or, for an upheld challenge of an input day, ``BaselineInputUpheld``)
event that put it in force, so nobody has to hold them."""

from __future__ import annotations

from dataclasses import dataclass, replace

from flexledger.audit.baselines import NO_BASELINE
from flexledger.deployment import Deployment
from flexledger.rules.orders import BaselineMethod
from flexledger.settlement.records import SettlementDataError, SettlementInput
from flexledger.times import iso


@dataclass(frozen=True)
class Correction:
    """A correction in force: its value (None: no baseline is left), the hash of the inputs it
    keeps, and the dispute that put it in force."""

    value: int | None
    inputs_hash: bytes
    tx_hash: str
    challenge: bool = False  # put in force by an upheld challenge (``upholdInput``), not a dispute


class NoBaselineLeftError(SettlementDataError):
    """A dispute left the meter with no baseline for the ISP: no settlement can present one there."""


def correction_in_force(deployment: Deployment, market: int, isp_start: int, meter: str) -> Correction | None:
    """The correction in force for ``meter``'s standard baseline of ``isp_start``; None when the
    anchored leaf stands."""
    fix = bytes(deployment.oracle.baseline_fix(market, isp_start, meter))
    if fix == bytes(32):
        return None
    disputes = deployment.baseline_disputes
    topic = "0x" + bytes.fromhex(meter.removeprefix("0x")).rjust(32, b"\0").hex()
    for name in ("BaselineDisputed", "BaselineInputUpheld"):
        for e in reversed(disputes.events(name, topics=[None, None, topic])):
            if int(e.args["ispStart"]) == isp_start and bytes(e.args["fix"]) == fix:
                value = None if fix == NO_BASELINE else int(e.args["baselineWh"])
                return Correction(value, bytes(e.args["inputsHash"]), e.tx_hash, name == "BaselineInputUpheld")
    raise SettlementDataError(f"MeterOracle has a correction in force for {meter} at {iso(isp_start)} that no "
                              "BaselineDisputed or BaselineInputUpheld event logged")


def with_baselines_in_force(deployment: Deployment, s: SettlementInput, isp_seconds: int) -> SettlementInput:
    """``s`` presenting, for each ISP and meter, the standard baseline in force now: the corrections
    disputes put in force in place of the leaves they proved wrong (a portfolio's ISP baseline is its
    members' sum). Raises ``NoBaselineLeftError`` where a correction left none."""
    if s.offer.baseline_method != BaselineMethod.ROLLING_AVERAGE:
        return s
    assets = deployment.assets
    market = s.offer.market

    def corrected(asset: int, isp_start: int) -> Correction | None:
        c = correction_in_force(deployment, market, isp_start, str(assets.meter_of(asset)))
        if c is not None and c.value is None:
            raise NoBaselineLeftError(f"a baseline dispute left asset {asset} with no standard baseline for "
                                      f"{iso(isp_start)}: no delivery can be measured there",
                                      hint="the disputed offer was re-settled with nothing delivered in that ISP")
        return c

    baselines, proofs, isps = list(s.baseline_wh), [tuple(p) for p in s.baseline_proofs], list(s.isps)
    for i, isp in enumerate(s.isps):
        index = (isp.isp_start - s.offer.start) // isp_seconds
        if s.portfolio:
            members = []
            for m in isp.members:
                c = corrected(m.asset, isp.isp_start)
                members.append(m if c is None or c.value is None else
                               replace(m, baseline_wh=c.value, baseline_proof=(c.inputs_hash,)))
            isps[i] = replace(isp, members=tuple(members))
            baselines[index] = sum(m.baseline_wh for m in members)
        else:
            c = corrected(s.offer.asset, isp.isp_start)
            if c is not None and c.value is not None:
                baselines[index] = c.value
                proofs[i] = (c.inputs_hash,)
    return replace(s, baseline_wh=tuple(baselines), baseline_proofs=tuple(proofs), isps=tuple(isps))
