"""Disputing a standard (ROLLING_AVERAGE) baseline from Python (``BaselineDisputes.dispute``):
the baseline in force revealed with its inputs (``oracle.baselines.baseline_proof_for``'s answer,
or a correction's kept inputs) and, for an INPUT or SKIPPED dispute, the meter's anchored reading
of that day (``oracle.anchoring.proof_for``'s answer), the evidence the contract judges; it
computes the correction itself. ``dispute_standard_baseline`` finds that evidence in the oracle's
store for a settled offer and files it (``flexledger dispute-baseline``); ``resettle_on_correction``
re-settles an offer settled before a correction was put in force (``flexledger resettle-baseline``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Engine

from flexledger.audit.baselines import DAY, correction_for
from flexledger.baselines.challenges import (
    UpheldChallenge,
    file_challenge,
    kept_after_uphold,
    unanchored_days,
    uphold_challenge,
)
from flexledger.baselines.fixes import correction_in_force
from flexledger.chain.bindings import BaselineDisputesClient
from flexledger.chain.client import TxResult
from flexledger.chain.structs import BaselineDisputesDisputeIn, BaselineIn, Record, SettleIn
from flexledger.chain.transactions import Signer
from flexledger.deployment import Deployment
from flexledger.errors import FlexledgerError
from flexledger.oracle.anchoring import proof_for
from flexledger.oracle.baselines import baseline_proof_for
from flexledger.rules.baselines import DAYS, LOOKBACK, BaselineInputs, apply_rule
from flexledger.rules.orders import BaselineMethod
from flexledger.settlement.day import DayContext, DisputeError, disputable
from flexledger.settlement.records import (
    NO_READING,
    call_for,
    decode_settling_call,
    is_anchored,
    reading_in,
    settled_key,
)
from flexledger.times import iso


class Kind(IntEnum):
    """``BaselineDisputes.Kind``: what a dispute shows."""

    ARITHMETIC = 0  # the inputs break the rule on their own
    INPUT = 1  # an input is not the anchored reading of its day
    SKIPPED = 2  # a similar day with an anchored reading was left out


def dispute_input(kind: Kind, isp: int, baseline: dict[str, Any], *, member: int = 0, which: int = 0,
                  reading: dict[str, Any] | None = None) -> BaselineDisputesDisputeIn:
    """``BaselineDisputes.DisputeIn``: ISP ``isp`` (its index in the settlement's inputs), the
    baseline in force (``baseline``: its value, inputs and Merkle proof; a correction's has no
    proof), ``which`` (INPUT: the input's position among the used days; SKIPPED: the day, as days
    before the ISP) and the anchored reading of that day."""
    inputs = BaselineInputs(int(baseline["daysBack"]), tuple(int(v) for v in baseline["nets"]))
    proof = tuple(bytes.fromhex(h[2:]) for h in baseline.get("proof", []))
    evidence = NO_READING if reading is None else reading_in(reading)
    used = BaselineIn(int(baseline["baselineWh"]), inputs.days_back, tuple(inputs.padded()), proof)
    return BaselineDisputesDisputeIn(int(kind), isp, member, used, which, evidence)


def dispute_baseline(disputes: BaselineDisputesClient, signer: Signer, settle_in: SettleIn,
                     record: Record, d: BaselineDisputesDisputeIn) -> TxResult:
    """Send the dispute (anyone may, in the settlement's dispute window)."""
    return disputes.dispute(settle_in, record, d, sender=signer)


@dataclass(frozen=True)
class BaselineDisputed:
    """A baseline dispute filed: what it showed and what the contract put in force."""

    before: Record
    after: Record
    isp_start: int
    asset: int
    meter: str
    kind: Kind
    which: int  # INPUT: the used day's position; SKIPPED: the day, as days before the ISP
    was_wh: int
    now_wh: int | None  # None: no baseline is left (too few similar days)
    oracle: str  # anchored the ISP's baselines
    slashed: int
    slashed_to: str | None
    tx_hash: str


Served = Callable[[int], dict[str, Any] | None]  # ISP start -> proof_for's answer for the meter, None if none


class MarketView(Protocol):
    """What revealing a baseline in force reads: the chain, the market (a ``DayContext`` is one)."""

    @property
    def deployment(self) -> Deployment: ...

    @property
    def market(self) -> int: ...

    @property
    def book_separator(self) -> bytes: ...


@dataclass(frozen=True)
class MarketOnChain:
    """A market on the chain, before any of its days is final (a challenge needs no settlement)."""

    deployment: Deployment
    market: int

    @property
    def book_separator(self) -> bytes:
        return self.deployment.book_separator


def revealed_inputs(ctx: MarketView, engine: Engine, meter: str, isp_start: int) -> tuple[dict[str, Any], BaselineInputs]:
    """The baseline in force for ``meter`` and ``isp_start`` as a dispute reveals it: the oracle's
    anchored leaf (its inputs and proof, from its store), or the correction in force (the inputs it
    keeps, recomputed from the dispute that put it in force, no proof)."""
    c = correction_in_force(ctx.deployment, ctx.market, isp_start, meter)
    if c is None:
        try:
            answer = baseline_proof_for(engine, ctx.market, meter, isp_start)
        except FlexledgerError as exc:
            raise DisputeError(f"the oracle's store cannot reveal the baseline of {meter} for {iso(isp_start)}: "
                               f"{exc.message}", hint=exc.hint) from exc
        return answer, BaselineInputs(int(answer["daysBack"]), tuple(int(v) for v in answer["nets"]))
    if c.value is None:
        raise DisputeError(f"a baseline dispute already left {meter} with no baseline for {iso(isp_start)}")
    data = bytes(ctx.deployment.conn.w3.eth.get_transaction(c.tx_hash)["input"])  # type: ignore[arg-type]
    if c.challenge:  # an upheld challenge: the rule on the inputs it revealed, without the day
        _isp, kept, value = kept_after_uphold(data)
        if value != c.value or kept.hash() != c.inputs_hash:
            raise DisputeError(f"the correction in force for {meter} at {iso(isp_start)} cannot be rebuilt from "
                               "the challenge that put it in force")
        return {"baselineWh": c.value, "daysBack": kept.days_back, "nets": list(kept.nets), "proof": []}, kept
    earlier = next(x.baseline for x in decode_settling_call(data, ctx.book_separator) if x.baseline is not None)
    reading = earlier.reading
    judged = correction_for(isp_start, earlier.kind, earlier.input, BaselineInputs(earlier.baseline.days_back, earlier.baseline.nets),
                            lambda _t: reading.import_wh - reading.export_wh)  # the chain judged it already
    if isinstance(judged, str) or judged[0] != c.value or judged[1].hash() != c.inputs_hash:
        raise DisputeError(f"the correction in force for {meter} at {iso(isp_start)} cannot be rebuilt from its dispute")
    kept = judged[1]
    return {"baselineWh": c.value, "daysBack": kept.days_back, "nets": list(kept.nets), "proof": []}, kept


def find_evidence(isp_start: int, inputs: BaselineInputs, value: int, anchored_at: int,
                  served: Served) -> tuple[Kind, int, dict[str, Any] | None] | None:
    """What shows the baseline ``value`` over ``inputs`` wrong, from the readings the oracle serves
    (anchored no later than the baselines, ``anchored_at``): the arithmetic, an input that is not
    its day's anchored reading, or a similar day with one that was skipped; None if nothing does.
    (The contract checks every proof; a wrong one only costs the sender a revert.)"""
    rule_value, kept = apply_rule(isp_start, inputs)
    if rule_value != value or kept.hash() != inputs.hash():
        return Kind.ARITHMETIC, 0, None

    def anchored(t: int) -> dict[str, Any] | None:
        answer = served(t)
        if answer is None or not is_anchored(reading_in(answer)) or int(answer["anchor"]["anchoredAt"]) > anchored_at:
            return None
        return answer

    days = inputs.days()
    for position, (k, net) in enumerate(zip(days[:DAYS], inputs.padded(), strict=False)):
        answer = anchored(isp_start - k * DAY)
        if answer is not None and int(answer["importWh"]) - int(answer["exportWh"]) != net:
            return Kind.INPUT, position, answer
    oldest = days[DAYS - 1] if len(days) >= DAYS else LOOKBACK
    for k in range(1, oldest + 1):
        if k in days or apply_rule(isp_start, BaselineInputs.of([(k, 0)]))[1].days_back == 0:
            continue  # used, or not a day of the ISP's kind within the lookback
        answer = anchored(isp_start - k * DAY)
        if answer is not None:
            return Kind.SKIPPED, k, answer
    return None


def dispute_standard_baseline(ctx: DayContext, signer: Signer, digest: bytes, isp_start: int, engine: Engine, *,
                              member: int | None = None) -> BaselineDisputed:
    """Dispute the standard baseline offer ``digest``'s settlement used for the ISP at ``isp_start``
    (a portfolio's: member ``member``'s, or the first member's shown wrong) with the evidence the
    oracle's store holds: ``DisputeError`` when it is not a standard baseline or nothing shows it wrong."""
    record, s_in, index = disputable(ctx, digest, isp_start)
    if s_in.offer.baseline_method != BaselineMethod.ROLLING_AVERAGE:
        raise DisputeError(f"offer 0x{digest.hex()[:10]} does not use the standard baseline",
                           hint="a committed baseline is the seller's own: it is disputed by no one")
    isp = s_in.isps[index]
    slot = (isp_start - s_in.offer.start) // ctx.params.isp_seconds
    used = [(m.asset, m.baseline_wh) for m in isp.members if member in (None, m.asset)] if s_in.portfolio \
        else [(s_in.offer.asset, s_in.baseline_wh[slot])]
    if not used:
        raise DisputeError(f"asset {member} is not a member of portfolio {s_in.offer.portfolio} counted for "
                           f"{iso(isp_start)}", hint="members: " + ", ".join(str(m.asset) for m in isp.members))
    assets = ctx.deployment.assets
    anchored_by, anchored_at = (str(x) for x in ctx.deployment.oracle.baseline_anchor(ctx.market, isp_start))
    for asset, value in used:
        meter = str(assets.meter_of(asset))
        answer, inputs = revealed_inputs(ctx, engine, meter, isp_start)
        if int(answer["baselineWh"]) != value:
            raise DisputeError(f"the baseline the settlement used for {meter} ({value} Wh) is not the one in force "
                               f"({answer['baselineWh']} Wh)")
        found = find_evidence(isp_start, inputs, value, int(anchored_at), partial(_served, engine, meter))
        if found is not None:
            break
    else:
        for asset, _value in used:  # (d): a used day with no anchored reading cannot be proven, only challenged
            meter = str(assets.meter_of(asset))
            _answer, inputs = revealed_inputs(ctx, engine, meter, isp_start)
            invented = unanchored_days(isp_start, inputs, int(anchored_at), partial(_served, engine, meter))
            if invented:
                raise DisputeError(f"the standard baseline of {meter} for {iso(isp_start)} averages the day "
                                   f"{invented[0]} days before it, which has no reading anchored by the baselines: "
                                   "no proof can show an absence",
                                   hint=f"challenge it (a bond, paid back if nobody answers): `flexledger "
                                        f"challenge-baseline --asset {asset} --isp {isp_start} --days-back "
                                        f"{invented[0]}`")
        raise DisputeError(f"nothing in the oracle's store shows the standard baseline of {iso(isp_start)} wrong: it "
                           "is the rule's over the meter's anchored readings",
                           hint="a dispute needs an anchored reading the baseline left out or misstated")
    kind, which, reading = found
    d = dispute_input(kind, index, answer, member=asset if s_in.portfolio else 0, which=which, reading=reading)
    tx = dispute_baseline(ctx.deployment.baseline_disputes, signer, s_in.to_struct(), record, d)
    event = tx.event("BaselineDisputed").args
    after: Record = next(e for e in tx.events if e.name == "OfferSettled").args["record"]
    slashes = [e.args for e in tx.events if e.name == "OracleSlashed"]
    none = bytes(event["inputsHash"]) == bytes(32)
    return BaselineDisputed(record, after, isp_start, asset, meter, kind, which, value,
                            None if none else int(event["baselineWh"]), anchored_by,
                            sum(int(s["amount"]) for s in slashes), str(slashes[0]["to"]) if slashes else None,
                            tx.tx_hash)


def _served(engine: Engine, meter: str, isp_start: int) -> dict[str, Any] | None:
    try:
        return dict(proof_for(engine, meter, isp_start))
    except FlexledgerError:
        return None


@dataclass(frozen=True)
class BaselineChallenged:
    """A challenge filed: the day, the input's value, until when it can be answered."""

    meter: str
    isp_start: int
    days_back: int
    net: int
    answer_by: int
    bond: int
    tx_hash: str


def challenge_standard_baseline(view: MarketView, signer: Signer, engine: Engine, asset: int, isp_start: int, *,
                                days_back: int | None = None) -> BaselineChallenged:
    """Challenge an input day of ``asset``'s standard baseline in force for ``isp_start``: the day
    ``days_back`` days before, or the first used day with no reading the oracle's store holds
    anchored by the baselines (``DisputeError`` when every day has one)."""
    meter = str(view.deployment.assets.meter_of(asset))
    answer, inputs = revealed_inputs(view, engine, meter, isp_start)
    if days_back is None:
        anchored_at = int(view.deployment.oracle.baseline_anchor(view.market, isp_start).anchored_at)
        invented = unanchored_days(isp_start, inputs, anchored_at, partial(_served, engine, meter))
        if not invented:
            raise DisputeError(f"every day the standard baseline of {meter} for {iso(isp_start)} averages has a "
                               "reading anchored by the baselines: a challenge would be answered (and lose its bond)",
                               hint="a wrong value or a skipped day is disputed instead: `flexledger dispute-baseline`")
        days_back = invented[0]
    signed = view.deployment.signed_by(signer)
    disputes = signed.baseline_disputes
    tx = file_challenge(disputes, signed.token, view.market, isp_start, meter, answer, days_back)
    e = tx.event("BaselineInputChallenged").args
    return BaselineChallenged(meter, isp_start, days_back, int(e["net"]), int(e["answerBy"]),
                              int(disputes.challenge_bond()), tx.tx_hash)


def uphold_standard_challenge(view: MarketView, signer: Signer, engine: Engine, asset: int, isp_start: int,
                              days_back: int) -> UpheldChallenge:
    """Uphold the unanswered challenge of that day (anyone may), revealing the baseline in force now."""
    meter = str(view.deployment.assets.meter_of(asset))
    try:
        answer, _inputs = revealed_inputs(view, engine, meter, isp_start)
    except DisputeError:
        # no baseline left, or none this store can reveal: the contract lapses a challenge on no baseline
        answer = {"baselineWh": 0, "daysBack": 0, "nets": [], "proof": []}
    return uphold_challenge(view.deployment.signed_by(signer).baseline_disputes, view.market, isp_start, meter, days_back, answer)


@dataclass(frozen=True)
class Resettled:
    """An offer re-settled on a correction put in force after it was settled (``applyCorrection``)."""

    before: Record
    after: Record
    isp_start: int
    baseline_was_wh: int
    baseline_now_wh: int
    tx_hash: str


def resettle_on_correction(ctx: DayContext, signer: Signer, digest: bytes, isp_start: int, *,
                           member: int | None = None) -> Resettled:
    """Re-settle offer ``digest`` on the standard baseline in force for the ISP at ``isp_start``
    (``BaselineDisputes.applyCorrection``, anyone may, in the settlement's dispute window): a
    correction put in force after it was settled, by an upheld challenge or a dispute of another
    offer (a portfolio's: member ``member``'s). ``DisputeError`` when no correction moved it."""
    record, s_in, index = disputable(ctx, digest, isp_start)
    event = ctx.records()[(ctx.result_id, digest)]
    used = call_for(ctx.calls(event.tx_hash), settled_key(record)).settle_in
    slot = (isp_start - s_in.offer.start) // ctx.params.isp_seconds
    was, now = used.baseline_wh[slot], s_in.baseline_wh[slot]
    if was == now and used.baseline_proofs[index] == s_in.baseline_proofs[index]:
        raise DisputeError(f"the settlement of offer 0x{digest.hex()[:10]} already stands on the baseline in force "
                           f"for {iso(isp_start)} ({now} Wh)",
                           hint="a correction comes first: `flexledger uphold-baseline` or `flexledger dispute-baseline`")
    if s_in.portfolio and member is None:
        moved = [a.asset for a, b in zip(used.isps[index].members, s_in.isps[index].members, strict=True) if a != b]
        member = moved[0] if moved else None
    tx = ctx.deployment.baseline_disputes.apply_correction(s_in.to_struct(), record, index, member or 0, sender=signer)
    after: Record = next(e for e in tx.events if e.name == "OfferSettled").args["record"]
    return Resettled(record, after, isp_start, int(was), int(now), tx.tx_hash)
