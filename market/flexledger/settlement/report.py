"""A day's settlement as the CLI and the API show it, and where its inputs come from on this
machine: one row per award and ISP of each offer's outcome (``outcome_rows``), the seller's
baseline files and the oracle's store as the sources ``settle_day`` takes (``stored_sources``),
and the day an offer was settled in (``day_of_offer``, when a dispute names only the offer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from flexledger.baselines.files import load_baseline
from flexledger.deployment import Deployment
from flexledger.oracle.anchoring import proof_for
from flexledger.oracle.baselines import baseline_proof_for
from flexledger.rules.orders import Offer
from flexledger.settlement.day import BaselineSource, DisputeError, OfferOutcome
from flexledger.settlement.offer import Baseline, ReadingProof, StandardBaselines
from flexledger.settlement.records import line_penalty, settled_events


def outcome_rows(outcome: OfferOutcome, isp_seconds: int) -> list[dict[str, Any]]:
    """One row per award and ISP: the record's money, the recomputed delivery when known."""
    power = {(a.request_id, a.isp_start): a.power_w for a in outcome.offer.awards}
    delivered = {(f.line.request_id, f.line.isp_start): f.figures.delivered_ws // 3600 for f in outcome.figures}
    out = []
    for (request_id, isp_start), watts in sorted(power.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        line = next((ln for ln in outcome.record.lines if (ln.request_id, ln.isp_start) == (request_id, isp_start)),
                    None) if outcome.record else None
        out.append({"offer": "0x" + outcome.offer.digest.hex(), "status": outcome.status, "request": request_id,
                    "isp_start": isp_start, "awarded_wh": watts * isp_seconds // 3600,
                    "delivered_wh": delivered.get((request_id, isp_start)),
                    "payment": line.payment if line else None, "claim": line.claim if line else None,
                    "penalty": line_penalty(line) if line else None, "uncovered": line.uncovered if line else None})
    return out


@dataclass(frozen=True)
class StoredSources:
    """What ``settle_day`` settles with here: the committed baselines a seller keeps in its files, the
    readings and standard baselines the oracle's store proves."""

    baselines: BaselineSource
    reading: ReadingProof
    standard: StandardBaselines


def stored_sources(folder: Path, engine: Engine, market: int, isp_seconds: int) -> StoredSources:
    def held(offer: Offer) -> Baseline | None:
        found = load_baseline(folder, offer.asset, offer.start, offer.baseline, portfolio=offer.portfolio)
        return found.baseline if found else None

    return StoredSources(held, lambda m, t: proof_for(engine, m, t),
                         StandardBaselines(lambda m, t: baseline_proof_for(engine, market, m, t), isp_seconds))


def day_of_offer(deployment: Deployment, digest: bytes) -> tuple[int, int]:
    """The market and day of an offer's latest settlement."""
    events = settled_events(deployment.settlement, digest=digest)
    if not events:
        raise DisputeError(f"offer 0x{digest.hex()[:10]} was never settled",
                           hint="check the digest (`flexledger settle --day D` lists them); settle it first")
    result = deployment.clearing.result(events[-1].record.result_id)
    return result.market, result.day
