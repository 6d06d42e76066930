"""Settlements as the chain states them, typed: the inputs of ``Settlement.settle`` and its
siblings (``SettleIn``, ``DisputeIn``) and the records they produced (``Record``, from the
``OfferSettled`` events), the inputs recovered from a settling transaction's calldata, and each
record's lines recomputed from its inputs with ``flexledger.rules.settlement``.

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

from flexledger.chain.abi import decode_values
from flexledger.chain.artifacts import load_artifact
from flexledger.chain.bindings import ClearingCommitmentClient, OrderBookClient, SettlementClient
from flexledger.chain.codegen import canonical_type, selector, signature
from flexledger.chain.connection import ChainConnection
from flexledger.errors import FlexledgerError

from .commitment import AwardProof
from .rules.lights import Direction
from .rules.market import MarketParams, PricingRule
from .rules.orders import Offer, Product
from .rules.settlement import AwardIsp, AwardIspSettlement, net_consumption, settle_award_isp

FINAL = (1).to_bytes(32, "big")  # Settlement.records' value once a settlement is final


class SettlementDataError(FlexledgerError):
    """A settling transaction whose inputs cannot be read back from the chain."""


@dataclass(frozen=True)
class Anchor:
    """``MeterOracle.Anchor``: an ISP's root as ``RootAnchored`` logged it."""

    root: bytes
    oracle: str
    leaf_count: int
    anchored_at: int

    def as_tuple(self) -> tuple[bytes, str, int, int]:
        return (self.root, self.oracle, self.leaf_count, self.anchored_at)


@dataclass(frozen=True)
class ReadingIn:
    """``Settlement.ReadingIn``: a meter's reading, its signature (whose hash the anchored leaf
    commits to) and its proof; a zero anchor and no proof for a reading in no root."""

    anchor: Anchor
    sequence: int
    import_wh: int
    export_wh: int
    signature: bytes
    proof: tuple[bytes, ...]

    @property
    def net_wh(self) -> int:
        return net_consumption(self.import_wh, self.export_wh)

    @property
    def anchored(self) -> bool:
        return self.anchor.root != ZERO_ROOT

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.anchor.as_tuple(), self.sequence, self.import_wh, self.export_wh, self.signature, list(self.proof))

    @classmethod
    def from_tuple(cls, raw: Sequence[Any]) -> ReadingIn:
        (root, oracle, count, at), sequence, imp, exp, signature, proof = raw
        return cls(Anchor(bytes(root), to_checksum_address(oracle), int(count), int(at)), int(sequence), int(imp),
                   int(exp), bytes(signature), tuple(bytes(p) for p in proof))


ZERO_ROOT = b"\x00" * 32
NO_ANCHOR = Anchor(ZERO_ROOT, to_checksum_address("0x" + "00" * 20), 0, 0)
NO_READING = ReadingIn(NO_ANCHOR, 0, 0, 0, b"", ())

# DeliveryMeter.MemberReading[], as Settlement.SettleIn.members carries it per ISP (ABI-encoded)
MEMBER_READINGS_TYPE = (
    "(uint64,(bytes32,address,uint32,uint64),uint64,uint64,uint64,bytes,bytes32[],int64,bytes32[])[]"
)


@dataclass(frozen=True)
class MemberReading:
    """``DeliveryMeter.MemberReading``: one portfolio member's anchored reading for an ISP and,
    for a ROLLING_AVERAGE offer, its anchored standard baseline."""

    asset: int
    reading: ReadingIn
    baseline_wh: int = 0
    baseline_proof: tuple[bytes, ...] = ()

    def as_tuple(self) -> tuple[Any, ...]:
        r = self.reading
        return (self.asset, r.anchor.as_tuple(), r.sequence, r.import_wh, r.export_wh, r.signature, list(r.proof),
                self.baseline_wh, list(self.baseline_proof))

    @classmethod
    def from_tuple(cls, raw: Sequence[Any]) -> MemberReading:
        asset, anchor, sequence, imp, exp, signature, proof, baseline, baseline_proof = raw
        return cls(int(asset), ReadingIn.from_tuple((anchor, sequence, imp, exp, signature, proof)), int(baseline),
                   tuple(bytes(h) for h in baseline_proof))


def encode_members(members: Sequence[MemberReading]) -> bytes:
    """One ISP's members' readings as ``Settlement.SettleIn.members`` carries them."""
    return abi_encode([MEMBER_READINGS_TYPE], [[m.as_tuple() for m in members]])


def decode_members(data: bytes) -> tuple[MemberReading, ...]:
    try:
        (raw,) = abi_decode([MEMBER_READINGS_TYPE], data)
    except Exception as exc:  # eth_abi raises several kinds for bytes that are not the encoding
        raise SettlementDataError(f"a portfolio's member readings cannot be decoded ({exc})") from exc
    return tuple(MemberReading.from_tuple(m) for m in raw)


@dataclass(frozen=True)
class IspIn:
    """One ISP of a settlement: the asset meter's reading (an asset offer) or the portfolio
    members' readings (a portfolio offer), and the offer's awards there."""

    reading: ReadingIn
    awards: tuple[AwardProof, ...]
    members: tuple[MemberReading, ...] = ()

    @property
    def isp_start(self) -> int:
        return self.awards[0].isp_start if self.awards else 0


@dataclass(frozen=True)
class SettleIn:
    """``Settlement.SettleIn`` with the offer's digest (the OrderBook's EIP-712 digest)."""

    result_id: int
    offer: Offer
    digest: bytes
    baseline_wh: tuple[int, ...]
    salt: bytes  # COMMITTED: the commitment's salt
    isps: tuple[IspIn, ...]
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
        return [sum(r.net_wh for _a, r in self.readings(i)) for i in range(len(self.isps))]

    def disputed(self, d: DisputeIn) -> tuple[int, ReadingIn]:
        """The asset whose reading dispute ``d`` corrects and that reading as settled (for a
        portfolio, the member it names; ``(0, NO_READING)`` when it names none counted)."""
        return next(((a, r) for a, r in self.readings(d.isp) if not self.portfolio or a == d.member), (0, NO_READING))

    @classmethod
    def from_tuple(cls, raw: Sequence[Any], book_separator: bytes) -> SettleIn:
        result_id, offer_raw, baseline, salt, isps, baseline_proofs, members = raw
        values: list[Any] = [bytes(v) if isinstance(v, bytes | bytearray) else int(v) for v in offer_raw]
        offer = Offer(*values)
        digest = offer.digest(book_separator)
        out = []
        for n, (reading, awards) in enumerate(isps):
            mine = decode_members(bytes(members[n])) if offer.portfolio and n < len(members) else ()
            out.append(IspIn(ReadingIn.from_tuple(reading),
                             tuple(AwardProof(digest, int(c), int(q), int(t), int(w), int(lv), [bytes(p) for p in pr])
                                   for c, q, t, w, lv, pr in awards), mine))
        return cls(int(result_id), offer, digest, tuple(int(v) for v in baseline), bytes(salt), tuple(out),
                   tuple(tuple(bytes(h) for h in proof) for proof in baseline_proofs))

    def as_tuple(self) -> tuple[Any, ...]:
        members = [encode_members(i.members) for i in self.isps] if self.portfolio else []
        return (self.result_id, self.offer.as_tuple(), list(self.baseline_wh), self.salt,
                [(i.reading.as_tuple(), [a.as_tuple() for a in i.awards]) for i in self.isps],
                [list(p) for p in self.baseline_proofs], members)


@dataclass(frozen=True)
class Line:
    """``Settlement.Line``: one award in one ISP."""

    request_id: int
    isp_start: int
    payment: int
    claim: int
    uncovered: int

    @property
    def penalty(self) -> int:
        """The whole penalty: the part withheld from the payment and the part the bond is to cover."""
        return self.payment - self.claim + self.uncovered

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.request_id, self.isp_start, self.payment, self.claim, self.uncovered)


@dataclass(frozen=True)
class Record:
    """``Settlement.Record``: a settled offer, as its last ``OfferSettled`` event carries it."""

    offer_digest: bytes
    result_id: int
    seller: str
    settled_at: int
    lines: tuple[Line, ...]

    @classmethod
    def from_tuple(cls, raw: Sequence[Any]) -> Record:
        digest, result_id, seller, settled_at, lines = raw
        return cls(bytes(digest), int(result_id), to_checksum_address(seller), int(settled_at),
                   tuple(Line(*(int(x) for x in line)) for line in lines))

    def as_tuple(self) -> tuple[bytes, int, str, int, list[tuple[int, int, int, int, int]]]:
        return (self.offer_digest, self.result_id, self.seller, self.settled_at, [ln.as_tuple() for ln in self.lines])

    @property
    def key(self) -> tuple[int, bytes]:
        return (self.result_id, self.offer_digest)


@dataclass(frozen=True)
class DisputeIn:
    isp: int
    sequence: int
    import_wh: int
    export_wh: int
    signature: bytes
    member: int = 0  # a portfolio offer: the member whose meter signed the reading

    def as_tuple(self) -> tuple[int, int, int, int, bytes, int]:
        return (self.isp, self.sequence, self.import_wh, self.export_wh, self.signature, self.member)


@dataclass(frozen=True)
class BaselineDisputeIn:
    """``BaselineDisputes.DisputeIn``: the standard baseline in force for one meter in ISP ``isp``
    (its value and revealed inputs; a proof against the anchored root unless it is a correction)
    and the evidence against it (``kind``: 0 ARITHMETIC, 1 INPUT, 2 SKIPPED; ``input``: the used
    day's position, or the skipped day as days before the ISP; ``reading``: that day's anchored one)."""

    kind: int
    isp: int
    member: int
    baseline_wh: int
    days_back: int
    nets: tuple[int, ...]
    proof: tuple[bytes, ...]
    input: int
    reading: ReadingIn

    @classmethod
    def from_tuple(cls, raw: Sequence[Any]) -> BaselineDisputeIn:
        kind, isp, member, (value, days_back, nets, proof), which, reading = raw
        return cls(int(kind), int(isp), int(member), int(value), int(days_back), tuple(int(v) for v in nets),
                   tuple(bytes(p) for p in proof), int(which), ReadingIn.from_tuple(reading))


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
    out = [SettledEvent(Record.from_tuple(e.args["record"]), e.tx_hash, e.block_number, e.log_index) for e in events]
    return sorted(out, key=lambda e: (e.block_number, e.log_index))


def in_force(events: Iterable[SettledEvent]) -> dict[tuple[int, bytes], SettledEvent]:
    """The record in force per (result, offer): the latest event (a dispute re-logs the record)."""
    latest: dict[tuple[int, bytes], SettledEvent] = {}
    for e in sorted(events, key=lambda e: (e.block_number, e.log_index)):
        latest[e.record.key] = e
    return latest


# ------------------------------------------------------------------------------ calldata


@dataclass(frozen=True)
class SettlingCall:
    """The inputs of one settlement in a transaction: the function called, the ``SettleIn``, and
    for a dispute the record presented and the meter-signed reading."""

    function: str
    settle_in: SettleIn
    record: Record | None = None
    dispute: DisputeIn | None = None  # a reading dispute (ReadingDisputes.dispute)
    baseline: BaselineDisputeIn | None = None  # a baseline dispute (BaselineDisputes.dispute)
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
            calls.append(SettlingCall(name, SettleIn.from_tuple(value, book_separator)))
        elif typ == target + "[]":
            calls += [SettlingCall(name, SettleIn.from_tuple(v, book_separator)) for v in value]
    if name == "dispute":  # dispute(SettleIn, Record, DisputeIn)
        record = Record.from_tuple(values[1])
        isp, sequence, imp, exp, sig, member = values[2]
        return [SettlingCall(name, calls[0].settle_in, record, DisputeIn(int(isp), int(sequence), int(imp), int(exp),
                                                                          bytes(sig), int(member)))]
    if name == "baselineDispute":  # BaselineDisputes.dispute(SettleIn, Record, DisputeIn)
        return [SettlingCall(name, calls[0].settle_in, Record.from_tuple(values[1]),
                             baseline=BaselineDisputeIn.from_tuple(values[2]))]
    if name == "applyCorrection":  # applyCorrection(SettleIn, Record, uint256 isp, uint64 member)
        return [SettlingCall(name, calls[0].settle_in, Record.from_tuple(values[1]),
                             applied=(int(values[2]), int(values[3])))]
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
class RequestInfo:
    """What settling needs of a request (``OrderBook.request``)."""

    request_id: int
    buyer: str
    market: int
    zone: int
    direction: int
    product: int
    start: int
    isps: int
    power_w: int
    max_price: int

    @classmethod
    def read(cls, book: OrderBookClient, request_id: int) -> RequestInfo:
        buyer, market, zone, direction, product, _purpose, _status, start, isps, power, max_price, _kind = (
            book.request(request_id))
        return cls(request_id, to_checksum_address(buyer), int(market), int(zone), int(direction), int(product),
                   int(start), int(isps), int(power), int(max_price))


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


def recompute(s: SettleIn, net_wh: Sequence[int] | None, params: MarketParams,
              request: Callable[[int], RequestInfo], cleared_price: ClearedPrice) -> list[AwardFigures]:
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
