"""Settling an awarded offer from Python: the inputs `Settlement.settle` takes, gathered from
public data (the result's award proofs from ClearingCommitment's events, the meter's readings
and their proofs from the oracle's store) and the seller's own baseline (its values and salt,
which only the seller holds until it reveals them), and the records the contract logs; many
offers at once in batches (``settle_offers``, ``finalise_offers``). A market day at once is
``flexledger.settlement.day``'s.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from flexledger.chain import structs
from flexledger.chain.bindings import ClearingCommitmentClient, SettlementClient
from flexledger.chain.structs import IspIn, Record, SettleIn
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import AwardProof, award_proofs
from flexledger.errors import FlexledgerError
from flexledger.rules.orders import BaselineMethod, Offer
from flexledger.settlement.records import NO_READING, MemberReading, encode_members, reading_in

ReadingProof = Callable[[str, int], dict[str, Any]]  # (meter, ISP start) -> oracle.anchoring.proof_for's answer


class SettlementInputError(FlexledgerError):
    """What a settlement needs is missing: an award, a reading or its proof."""


@dataclass(frozen=True)
class Baseline:
    """A committed baseline revealed: net consumption (Wh) per ISP of the offer's window, and the salt."""

    net_wh: Sequence[int]
    salt: bytes


@dataclass(frozen=True)
class StandardBaselines:
    """Where an offer naming ROLLING_AVERAGE takes its baseline: the oracle's anchored values
    (``oracle.baselines.baseline_proof_for``'s answers, by meter and ISP start; a settlement
    presents each one's ``witness``: the hash of its inputs, then its Merkle proof)."""

    proof: Callable[[str, int], dict[str, Any]]
    isp_seconds: int


Member = tuple[int, str]  # a portfolio member: (asset, its meter)


def settle_input(clearing: ClearingCommitmentClient, result_id: int, offer: Offer, digest: bytes,
                 baseline: Baseline | None, meter: str, reading: ReadingProof | None, *,
                 standard: StandardBaselines | None = None, members: Sequence[Member] = ()) -> SettleIn:
    """`Settlement.SettleIn` for ``offer``: its awards in ``result_id`` by ISP (each ISP's awards in
    increasing order of request), each ISP's anchored reading of ``meter`` and its proof (for a
    portfolio offer, of each of its ``members``' meters: those it had at the day's gate closure,
    ``DeliveryMeter.members``), and the baseline: the seller's revealed one (COMMITTED) or, with
    ``standard``, the oracle's anchored values and their proofs (ROLLING_AVERAGE; a portfolio's
    is its members' sum). Without a baseline and readings, the input of ``settleUnrevealed``."""
    return settle_input_from(result_id, offer, digest, award_proofs(clearing, result_id), baseline, meter, reading,
                             standard=standard, members=members)


def _member_readings(members: Sequence[Member], isp_start: int, reading: ReadingProof,
                     standard: StandardBaselines | None) -> list[MemberReading]:
    out = []
    for asset, meter in members:
        baseline = 0
        proof: tuple[bytes, ...] = ()
        if standard is not None:
            answer = standard.proof(meter, isp_start)
            baseline, proof = int(answer["baselineWh"]), tuple(bytes.fromhex(h[2:]) for h in answer["witness"])
        out.append(MemberReading(asset, reading_in(reading(meter, isp_start)), baseline, proof))
    return out


def settle_input_from(result_id: int, offer: Offer, digest: bytes, awards: Sequence[AwardProof],
                      baseline: Baseline | None, meter: str, reading: ReadingProof | None, *,
                      standard: StandardBaselines | None = None, members: Sequence[Member] = ()) -> SettleIn:
    """``settle_input`` from the result's awards already read (reading them is one query per
    result: a day's many offers share it)."""
    by_isp: dict[int, list[AwardProof]] = defaultdict(list)
    for award in awards:
        if award.offer_digest == digest:
            by_isp[award.isp_start].append(award)
    if not by_isp:
        raise SettlementInputError(f"offer 0x{digest.hex()[:10]} has no award in result {result_id}")
    portfolio = offer.portfolio != 0
    use_standard = standard if offer.baseline_method == BaselineMethod.ROLLING_AVERAGE else None
    isps = []
    per_isp_members: list[bytes] = []
    net = list(baseline.net_wh) if baseline else []
    salt = baseline.salt if baseline else b"\x00" * 32
    proofs: list[tuple[bytes, ...]] = []
    if use_standard is not None and reading is not None:
        net = [0] * offer.isps
    for isp_start in sorted(by_isp):
        ordered = sorted(by_isp[isp_start], key=lambda a: a.request_id)
        read = NO_READING
        if reading is not None and portfolio:
            mine = _member_readings(members, isp_start, reading, use_standard)
            per_isp_members.append(encode_members(mine))
            if use_standard is not None:
                net[(isp_start - offer.start) // use_standard.isp_seconds] = sum(m.baseline_wh for m in mine)
        elif reading is not None:
            read = reading_in(reading(meter, isp_start))
            if use_standard is not None:
                answer = use_standard.proof(meter, isp_start)
                net[(isp_start - offer.start) // use_standard.isp_seconds] = int(answer["baselineWh"])
                proofs.append(tuple(bytes.fromhex(h[2:]) for h in answer["witness"]))  # inputs hash, then the proof
        isps.append(IspIn(read, tuple(ordered)))
    return SettleIn(result_id, structs.Offer.like(offer), tuple(net), salt, tuple(isps), tuple(proofs),
                    tuple(per_isp_members))


@dataclass(frozen=True)
class SettledOffer:
    record: Record  # as `finalise` and `dispute` take it back
    gas_used: int


def settle_offer(settlement: SettlementClient, signer: Signer, settle_in: SettleIn, *,
                 unrevealed: bool = False) -> SettledOffer:
    """Settle (anyone may); ``unrevealed``: by default, after the settlement window."""
    tx = (settlement.settle_unrevealed if unrevealed else settlement.settle)(settle_in, sender=signer)
    return SettledOffer(tx.event("OfferSettled").args["record"], tx.gas_used or 0)


def finalise_offer(settlement: SettlementClient, signer: Signer, settled: SettledOffer) -> int:
    """Make a settlement final after its dispute window; returns the gas used."""
    return settlement.finalise(settled.record, sender=signer).gas_used or 0


# ------------------------------------------------------------------------------- in batches

BATCH_AWARD_ISPS = 60  # award-ISPs per settleMany transaction: about 6M gas, well inside a block
FINALISE_PER_TX = 100  # records per finaliseMany transaction
T = TypeVar("T")


def _batches(items: Sequence[T], size_of: Callable[[T], int], limit: int) -> list[list[T]]:
    out: list[list[T]] = []
    size = 0
    for item in items:
        n = size_of(item)
        if not out or size + n > limit:
            out.append([])
            size = 0
        out[-1].append(item)
        size += n
    return out


def settle_offers(settlement: SettlementClient, signer: Signer, inputs: Sequence[SettleIn], *,
                  award_isps_per_tx: int = BATCH_AWARD_ISPS,
                  progress: Callable[[int], None] | None = None) -> list[SettledOffer]:
    """Settle many offers with ``Settlement.settleMany`` (anyone may), ``award_isps_per_tx``
    award-ISPs to a transaction: the result's day and the requests are read once per
    transaction, which is what brings the gas per award-ISP down. Returns the records in the
    order of ``inputs``, each with its share of its transaction's gas. One offer the contract
    refuses reverts its whole transaction with that offer's error (a typed exception)."""
    settled: list[SettledOffer] = []
    def award_isps(s: SettleIn) -> int:
        return sum(len(isp.awards) for isp in s.isps)
    for batch in _batches(inputs, award_isps, award_isps_per_tx):
        tx = settlement.settle_many(batch, sender=signer)
        records = [e for e in tx.events if e.name == "OfferSettled"]
        share = (tx.gas_used or 0) // len(batch)
        settled += [SettledOffer(event.args["record"], share) for event in records]
        if progress is not None:
            progress(len(batch))
    return settled


def finalise_in_batches(settlement: SettlementClient, signer: Signer, records: Sequence[Record], *,
                        per_tx: int = FINALISE_PER_TX, progress: Callable[[int], None] | None = None) -> list[Any]:
    """Make many settlements final with ``Settlement.finaliseMany``, ``per_tx`` records (as
    logged) to a transaction, after their dispute windows; returns the transactions, whose
    ``SettlementFinalised`` events come one per record, in order."""
    txs = []
    for batch in _batches(records, lambda _r: 1, per_tx):
        txs.append(settlement.finalise_many(batch, sender=signer))
        if progress is not None:
            progress(len(batch))
    return txs


def finalise_offers(settlement: SettlementClient, signer: Signer, settled: Sequence[SettledOffer], *,
                    per_tx: int = FINALISE_PER_TX, progress: Callable[[int], None] | None = None) -> int:
    """``finalise_in_batches`` for settlements made here; returns the gas used in all."""
    txs = finalise_in_batches(settlement, signer, [s.record for s in settled], per_tx=per_tx, progress=progress)
    return sum(tx.gas_used or 0 for tx in txs)
