"""Settlements as the chain states them: the inputs of ``Settlement.settle`` and its siblings as
the rules read them (:class:`SettlementInput`, over the generated ``SettleIn``), the records
they produced (``Record``, from the ``OfferSettled`` events), the inputs recovered from a
settling transaction's calldata, and each record's lines recomputed from its inputs with
``flexledger.rules.settlement``. The structs themselves are generated from the contracts'
ABIs (:mod:`flexledger.chain.structs`); only their readings live here.

Everything here reads public chain data only, so the CLI (what it settled, what it disputes) and
the auditor (every settlement of a day, recomputed) share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from flexledger.chain import structs
from flexledger.chain.abi import decode_values
from flexledger.chain.artifacts import load_artifact
from flexledger.chain.bindings import ClearingCommitmentClient, SettlementClient
from flexledger.chain.codegen import canonical_type, selector, signature
from flexledger.chain.connection import ChainConnection
from flexledger.chain.structs import (
    Anchor,
    BaselineDisputesDisputeIn,
    IspIn,
    Line,
    ReadingDisputesDisputeIn,
    ReadingIn,
    Record,
    Request,
    SettleIn,
)
from flexledger.clearing.commitment import AwardProof
from flexledger.errors import FlexledgerError
from flexledger.rules.lights import Direction
from flexledger.rules.market import MarketParams, PricingRule
from flexledger.rules.orders import Offer, Product
from flexledger.rules.settlement import (
    AwardIsp,
    AwardIspSettlement,
    net_consumption,
    settle_award_isp,
)

FINAL = (1).to_bytes(32, "big")  # Settlement.records' value once a settlement is final
ZERO_ROOT = b"\x00" * 32
NO_ANCHOR = Anchor(ZERO_ROOT, to_checksum_address("0x" + "00" * 20), 0, 0)
NO_READING = ReadingIn(NO_ANCHOR, 0, 0, 0, b"", ())


class SettlementDataError(FlexledgerError):
    """A settling transaction whose inputs cannot be read back from the chain."""


def reading_net_wh(r: ReadingIn) -> int:
    return net_consumption(r.import_wh, r.export_wh)


def is_anchored(r: ReadingIn) -> bool:
    """Whether the reading comes with a root (a zero anchor and no proof: a reading in no root)."""
    return r.anchor.root != ZERO_ROOT


def reading_in(answer: dict[str, Any]) -> ReadingIn:
    """``oracle.anchoring.proof_for``'s answer as a ``ReadingIn``."""
    a = answer["anchor"]
    return ReadingIn(Anchor(bytes.fromhex(a["root"][2:]), to_checksum_address(a["oracle"]), int(a["leafCount"]),
                            int(a["anchoredAt"])),
                     int(answer["sequence"]), int(answer["importWh"]), int(answer["exportWh"]),
                     bytes.fromhex(answer["signature"][2:]), tuple(bytes.fromhex(p[2:]) for p in answer["proof"]))


def line_penalty(line: Line) -> int:
    """A line's whole penalty: the part withheld from the payment and the part the bond is to cover."""
    return line.payment - line.claim + line.uncovered


def record_money(record: Record) -> dict[str, int]:
    """A settlement record's money summed over its lines: paid, claimable and penalty."""
    return {"payment": sum(ln.payment for ln in record.lines), "claim": sum(ln.claim for ln in record.lines),
            "penalty": sum(line_penalty(ln) for ln in record.lines)}


def settled_key(record: Record) -> tuple[int, bytes]:
    """(result, offer digest): what a settlement is known by."""
    return (record.result_id, record.offer_digest)


# DeliveryMeter.MemberReading[], as Settlement.SettleIn.members carries it per ISP (ABI-encoded): the
# struct is in no function's ABI (it travels as bytes), so it has no generated class
MEMBER_READINGS_TYPE = f"(uint64,{Anchor.ABI_TYPE},uint64,uint64,uint64,bytes,bytes32[],int64,bytes32[])[]"


@dataclass(frozen=True)
class MemberReading:
    """``DeliveryMeter.MemberReading``: one portfolio member's anchored reading for an ISP and,
    for a ROLLING_AVERAGE offer, its anchored standard baseline."""

    asset: int
    reading: ReadingIn
    baseline_wh: int = 0
    baseline_proof: tuple[bytes, ...] = ()

    def to_abi(self) -> tuple[Any, ...]:
        r = self.reading
        return (self.asset, r.anchor.to_abi(), r.sequence, r.import_wh, r.export_wh, r.signature, list(r.proof),
                self.baseline_wh, list(self.baseline_proof))

    @classmethod
    def from_abi(cls, raw: Sequence[Any]) -> MemberReading:
        asset, anchor, sequence, imp, exp, signature, proof, baseline, baseline_proof = raw
        return cls(int(asset), ReadingIn.from_abi((anchor, sequence, imp, exp, signature, proof)), int(baseline),
                   tuple(bytes(h) for h in baseline_proof))


def encode_members(members: Sequence[MemberReading]) -> bytes:
    """One ISP's members' readings as ``Settlement.SettleIn.members`` carries them."""
    return abi_encode([MEMBER_READINGS_TYPE], [[m.to_abi() for m in members]])


def decode_members(data: bytes) -> tuple[MemberReading, ...]:
    try:
        (raw,) = abi_decode([MEMBER_READINGS_TYPE], data)
    except Exception as exc:  # eth_abi raises several kinds for bytes that are not the encoding
        raise SettlementDataError(f"a portfolio's member readings cannot be decoded ({exc})") from exc
    return tuple(MemberReading.from_abi(m) for m in raw)


@dataclass(frozen=True)
class IspInput:
    """One ISP of a settlement: the asset meter's reading (an asset offer) or the portfolio
    members' readings (a portfolio offer), and the offer's awards there."""

    reading: ReadingIn
    awards: tuple[AwardProof, ...]
    members: tuple[MemberReading, ...] = ()

    @property
    def isp_start(self) -> int:
        return self.awards[0].isp_start if self.awards else 0


@dataclass(frozen=True)
class SettlementInput:
    """A ``Settlement.SettleIn`` as the rules read it: its offer as signed (and the offer's
    digest, the OrderBook's EIP-712 one), each ISP's awards and, for a portfolio, its members'
    readings decoded from the bytes the struct carries them in."""

    result_id: int
    offer: Offer
    digest: bytes
    baseline_wh: tuple[int, ...]
    salt: bytes  # COMMITTED: the commitment's salt
    isps: tuple[IspInput, ...]
    baseline_proofs: tuple[tuple[bytes, ...], ...] = ()  # ROLLING_AVERAGE: per ISP, the anchored value's proof

    @property
    def portfolio(self) -> bool:
        return self.offer.portfolio != 0

    def readings(self, isp: int) -> list[tuple[int, ReadingIn]]:
        """ISP ``isp``'s readings by asset: the asset's meter's, or each portfolio member's."""
        at = self.isps[isp]
        return [(m.asset, m.reading) for m in at.members] if self.portfolio else [(self.offer.asset, at.reading)]

    def net_wh(self) -> list[int]:
        """Each ISP's net consumption as presented (before any dispute's correction): its readings summed."""
        return [sum(reading_net_wh(r) for _a, r in self.readings(i)) for i in range(len(self.isps))]

    def disputed(self, d: ReadingDisputesDisputeIn) -> tuple[int, ReadingIn]:
        """The asset whose reading dispute ``d`` corrects and that reading as settled (for a
        portfolio, the member it names; ``(0, NO_READING)`` when it names none counted)."""
        return next(((a, r) for a, r in self.readings(d.isp) if not self.portfolio or a == d.member), (0, NO_READING))

    @classmethod
    def from_struct(cls, s: SettleIn, book_separator: bytes) -> SettlementInput:
        offer = Offer.from_fields(s.offer)
        digest = offer.digest(book_separator)
        out = []
        for n, isp in enumerate(s.isps):
            mine = decode_members(s.members[n]) if offer.portfolio and n < len(s.members) else ()
            awards = tuple(AwardProof(a.chunk, a.request_id, a.isp_start, a.power_w, a.level_w, a.proof, digest)
                           for a in isp.awards)
            out.append(IspInput(isp.reading, awards, mine))
        return cls(s.result_id, offer, digest, s.baseline_wh, s.salt, tuple(out), s.baseline_proofs)

    def to_struct(self) -> SettleIn:
        members = tuple(encode_members(i.members) for i in self.isps) if self.portfolio else ()
        isps = tuple(IspIn(i.reading, i.awards) for i in self.isps)
        return SettleIn(self.result_id, structs.Offer.like(self.offer), self.baseline_wh, self.salt, isps,
                        self.baseline_proofs, members)


@dataclass(frozen=True)
class SettledEvent:
    """One ``OfferSettled`` event: a settlement, or its correction by a dispute."""

    record: Record
    tx_hash: str
    block_number: int
    log_index: int


def settled_events(settlement: SettlementClient, *, result_id: int | None = None,
                   digest: bytes | None = None) -> list[SettledEvent]:
    """Every ``OfferSettled`` event (of one result, of one offer), in chain order."""
    topics: list[Any] = [None if digest is None else "0x" + digest.hex(),
                         None if result_id is None else "0x" + result_id.to_bytes(32, "big").hex()]
    events = settlement.events("OfferSettled", topics=topics)
    out = [SettledEvent(e.args["record"], e.tx_hash, e.block_number, e.log_index) for e in events]
    return sorted(out, key=lambda e: (e.block_number, e.log_index))


def in_force(events: Iterable[SettledEvent]) -> dict[tuple[int, bytes], SettledEvent]:
    """The record in force per (result, offer): the latest event (a dispute re-logs the record)."""
    latest: dict[tuple[int, bytes], SettledEvent] = {}
    for e in sorted(events, key=lambda e: (e.block_number, e.log_index)):
        latest[settled_key(e.record)] = e
    return latest


# ------------------------------------------------------------------------------ calldata


@dataclass(frozen=True)
class SettlingCall:
    """The inputs of one settlement in a transaction: the function called, the ``SettleIn``, and
    for a dispute the record presented and the meter-signed reading."""

    function: str
    settle_in: SettlementInput
    record: Record | None = None
    dispute: ReadingDisputesDisputeIn | None = None  # a reading dispute (ReadingDisputes.dispute)
    baseline: BaselineDisputesDisputeIn | None = None  # a baseline dispute (BaselineDisputes.dispute)
    applied: tuple[int, int] | None = None  # BaselineDisputes.applyCorrection: (ISP index, member)

    @property
    def unrevealed(self) -> bool:
        return "Unrevealed" in self.function

    @property
    def corrects(self) -> bool:
        """Whether it re-settles a settlement in force (a dispute), rather than settling one."""
        return self.dispute is not None or self.baseline is not None or self.applied is not None


@cache
def _settling_functions() -> dict[bytes, tuple[str, tuple[str, ...]]]:
    """Selector -> (name, input types) of every Settlement (and ReadingDisputes, BaselineDisputes)
    function that takes a ``SettleIn`` (or an array of them): read from the ABIs so that functions
    added later (a batch) decode too. ``resettle`` is the disputes contracts' call into Settlement,
    never a transaction's; BaselineDisputes' ``dispute`` is named ``baselineDispute`` here."""
    abi = load_artifact("Settlement").abi
    settle = next(f for f in abi if f["type"] == "function" and f["name"] == "settle")
    settle_type = canonical_type(settle["inputs"][0])
    table = {}
    sources = [(False, abi), (False, load_artifact("ReadingDisputes").abi), (True, load_artifact("BaselineDisputes").abi)]
    for prefix, items in sources:
        for item in items:
            if item["type"] != "function" or item["name"] in ("resettle", "measure"):
                continue
            types = tuple(canonical_type(p) for p in item["inputs"])
            if any(t.removesuffix("[]") == settle_type for t in types):
                name = "baselineDispute" if prefix and item["name"] == "dispute" else item["name"]
                table[selector(signature(item))] = (name, types)
    return table


def _settle_type() -> str:
    return next(types[0] for name, types in _settling_functions().values() if name == "settle")


def decode_settling_call(data: bytes, book_separator: bytes) -> list[SettlingCall]:
    """The settlements a call to Settlement carries (empty when it calls no settling function)."""
    found = _settling_functions().get(data[:4])
    if found is None:
        return []
    name, types = found
    values = decode_values(list(types), data[4:])
    target = _settle_type()
    calls: list[SettlingCall] = []
    for typ, value in zip(types, values, strict=True):
        if typ == target:
            calls.append(SettlingCall(name, SettlementInput.from_struct(SettleIn.from_abi(value), book_separator)))
        elif typ == target + "[]":
            calls += [SettlingCall(name, SettlementInput.from_struct(SettleIn.from_abi(v), book_separator))
                      for v in value]
    if name == "dispute":  # dispute(SettleIn, Record, DisputeIn)
        _s, record, signed = values
        return [SettlingCall(name, calls[0].settle_in, Record.from_abi(record),
                             ReadingDisputesDisputeIn.from_abi(signed))]
    if name == "baselineDispute":  # BaselineDisputes.dispute(SettleIn, Record, DisputeIn)
        _s, record, evidence = values
        return [SettlingCall(name, calls[0].settle_in, Record.from_abi(record),
                             baseline=BaselineDisputesDisputeIn.from_abi(evidence))]
    if name == "applyCorrection":  # applyCorrection(SettleIn, Record, uint256 isp, uint64 member)
        _s, record, isp, member = values
        return [SettlingCall(name, calls[0].settle_in, Record.from_abi(record), applied=(int(isp), int(member)))]
    return calls


def settling_calls(conn: ChainConnection, settlement_address: str, tx_hash: str,
                   book_separator: bytes, disputes_address: str | None = None,
                   baseline_disputes_address: str | None = None) -> list[SettlingCall]:
    """The settlements transaction ``tx_hash`` carried in its calldata (sent to Settlement, or for
    a dispute to ReadingDisputes or BaselineDisputes, which re-settle through Settlement)."""
    tx = conn.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
    to = tx.get("to")
    targets = {to_checksum_address(a) for a in (settlement_address, disputes_address, baseline_disputes_address) if a}
    if to is None or to_checksum_address(to) not in targets:
        # a settlement sent through another contract (a wallet, a multicall) keeps its inputs in a
        # trace, which a plain node does not serve: say so rather than guess
        raise SettlementDataError(f"transaction {tx_hash} calls {to}, not Settlement or a disputes contract: its "
                                  "inputs are not in its calldata",
                                  hint="read them from a trace (debug_traceTransaction) of that transaction")
    data = bytes(tx["input"])
    return decode_settling_call(data, book_separator)


def call_for(calls: Sequence[SettlingCall], key: tuple[int, bytes]) -> SettlingCall:
    """The call among ``calls`` that settled the offer of ``key`` (result, offer digest)."""
    for c in calls:
        if (c.settle_in.result_id, c.settle_in.digest) == key:
            return c
    raise SettlementDataError(f"no input for offer 0x{key[1].hex()[:10]} of result {key[0]} in its transaction's calldata")


# ----------------------------------------------------------------------------- recompute


@dataclass(frozen=True)
class AwardFigures:
    """One award in one ISP, recomputed: its line and every figure behind it."""

    offer_digest: bytes
    power_w: int
    figures: AwardIspSettlement
    line: Line


ClearedPrice = Callable[[int, int, int, int], int]  # (result, zone, direction, ISP start) -> price


def cleared_price_of(clearing: ClearingCommitmentClient) -> ClearedPrice:
    return lambda result, zone, direction, isp: int(clearing.clearing_price(result, zone, direction, isp))


def recompute(s: SettlementInput, net_wh: Sequence[int] | None, params: MarketParams,
              request: Callable[[int], Request], cleared_price: ClearedPrice) -> list[AwardFigures]:
    """The lines ``Settlement`` computes for ``s`` with each ISP's net consumption ``net_wh`` (the
    anchored readings, or a dispute's corrections); ``None``: settled by default (nothing counts
    as delivered, nothing is paid). Raises ``ValueError`` for inputs the contract would refuse."""
    out = []
    for i, isp in enumerate(s.isps):
        index = (isp.isp_start - s.offer.start) // params.isp_seconds
        if net_wh is not None and not 0 <= index < len(s.baseline_wh):
            raise ValueError(f"ISP {isp.isp_start} has no baseline value")
        baseline, measured = (0, 0) if net_wh is None else (s.baseline_wh[index], net_wh[i])
        for a in isp.awards:
            q = request(a.request_id)
            price = s.offer.price
            if params.pricing_rule is PricingRule.PAY_AS_CLEARED:
                price = min(cleared_price(s.result_id, q.zone, q.direction, isp.isp_start), q.max_price)
            figures = settle_award_isp(AwardIsp(a.power_w, price, q.max_price, Product(q.product),
                                                Direction(s.offer.direction), baseline, measured, a.level_w), params, 0)
            payment = 0 if net_wh is None else figures.payment  # a seller that never settled is paid nothing
            from_payment = min(payment, figures.penalty)
            line = Line(a.request_id, isp.isp_start, payment, payment - from_payment, figures.penalty - from_payment)
            out.append(AwardFigures(s.digest, a.power_w, figures, line))
    return out
