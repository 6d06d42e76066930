"""The settlement auditor: every settlement of a market day recomputed from public chain data.

For each settled offer (the ``OfferSettled`` events of the day's final result, each re-logged by
its disputes; the latest is the record in force) the inputs it was computed from are read back
from the settling transaction's calldata (``settle``, a batch, ``settleUnrevealed``, ``dispute``;
BaselineDisputes's ``dispute``, judged against the rule and its evidence, and ``applyCorrection``)
and checked on their own: the offer is in the day's book, its awards are the result's (proven
against the chunks' ``awardsRoot``, none left out), its readings are the meter's anchored ones
(OpenZeppelin standard-tree proofs against the roots ``RootAnchored`` logged; for a portfolio
offer, one per member it had at the day's gate closure, as AssetRegistry records them), its baseline is
the one committed (or, for the standard method, the oracle's value proven against the root
``BaselinesAnchored`` logged, or the correction BaselineDisputes put in force, and, given what the
oracle serves, recomputed from the anchored readings: ``flexledger.audit.baselines``; a reading
in no root, the meter's signature over it), a dispute's
reading is signed by the asset's meter (recovered with eth-account) and judged as ReadingDisputes
must: if the meter had signed the reading counted too (the anchored leaf commits to its
signature), it equivocated and the ISP's delivery is void with nobody slashed; otherwise the oracle
that anchored what the meter never signed paid what the market's stake rule says, once per
(ISP, meter) however many offers settled on it, to the disputer (to the buyer when the disputer is
the offer's seller or the meter's owner). The lines are recomputed with ``flexledger.rules.settlement`` and compared with
every record logged, then the money is followed (``flexledger.audit.money``): finalisations,
bond draws, debts, refunds, withdrawals, and the token's Transfer events.

Only public data is read: events, calldata, contract state, never the oracle's store (what the
oracle serves to recompute standard baselines is checked against the chain, never trusted).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from eth_abi import encode
from eth_utils import keccak

from flexledger.audit.baselines import (
    DAY,
    NO_BASELINE,
    BaselineEvidence,
    correction_for,
    fix_of,
    recheck_standard,
)
from flexledger.audit.money import MoneyInputs, PartyMoney, audit_money
from flexledger.baselines.challenges import kept_after_uphold
from flexledger.book.order_book import Book, read_book
from flexledger.chain.bindings import (
    AssetRegistryAsset,
    AssetRegistryClient,
    MeterOracleClient,
    SettlementClient,
)
from flexledger.chain.client import BlockId
from flexledger.chain.connection import ChainConnection
from flexledger.chain.events import DecodedEvent
from flexledger.chain.structs import Anchor, Line, ReadingIn, Record, Request
from flexledger.clearing.commitment import award_leaf, award_proofs, day_state
from flexledger.deployment import Deployment
from flexledger.errors import FlexledgerError
from flexledger.identity.eip712 import Eip712Domain, TypedDataError, read_domain
from flexledger.oracle.baselines import BASELINE_ENCODING
from flexledger.oracle.merkle import verify as verify_reading_proof
from flexledger.oracle.readings import LEAF_ENCODING, Reading
from flexledger.rules.baselines import BaselineInputs, reveal_matches
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import BaselineMethod
from flexledger.rules.pair_tree import verify as verify_award_proof
from flexledger.settlement.records import (
    NO_ANCHOR,
    IspInput,
    SettledEvent,
    SettlementInput,
    SettlingCall,
    call_for,
    cleared_price_of,
    in_force,
    is_anchored,
    reading_in,
    reading_net_wh,
    recompute,
    settled_events,
    settled_key,
    settling_calls,
)
from flexledger.times import iso

__all__ = ["PartyMoney", "SettlementAudit", "audit_settlement"]


@dataclass
class SettlementAudit:
    market: int
    day: int
    result_id: int  # 0: no clearing result for the day
    differences: list[str] = field(default_factory=list)
    parties: dict[str, PartyMoney] = field(default_factory=dict)
    offers_settled: int = 0
    lines: int = 0
    disputes: int = 0
    final: int = 0  # settlements made final
    notes: list[str] = field(default_factory=list)  # what is not wrong but worth knowing (pending, unsettled)
    records: dict[tuple[int, bytes], Record] = field(default_factory=dict)  # in force, as logged

    @property
    def matches(self) -> bool:
        return self.result_id != 0 and not self.differences


@dataclass
class _Day:
    """What the checks of one day share."""

    deployment: Deployment
    market: int
    day: int
    params: MarketParams
    result_id: int
    book: Book
    separator: bytes
    settlement: SettlementClient
    disputes_address: str
    roots: dict[int, bytes]  # chunk -> awardsRoot of the result
    anchors: dict[int, list[Anchor]]  # ISP start -> the anchors RootAnchored logged for the market
    baseline_roots: dict[int, list[tuple[bytes, int]]]  # ISP start -> (root, block time) BaselinesAnchored logged
    awards: dict[bytes, set[tuple[int, int, int, int, int]]]  # offer -> (chunk, request, ISP, W, level) of the result
    oracle_domain: Eip712Domain
    assets: AssetRegistryClient
    request: Callable[[int], Request]
    cleared_price: Callable[[int, int, int, int], int]
    oracle: MeterOracleClient | None = None
    final_at: int = 0  # when the day's result could be made final (DayState.challengeEnds); _load reads it
    slashes: dict[str, list[DecodedEvent]] = field(default_factory=dict)  # tx -> OracleSlashed of the market
    meters: dict[int, AssetRegistryAsset] = field(default_factory=dict)  # what the registry says of each asset
    times: dict[int, int] = field(default_factory=dict)  # block -> timestamp (a batch settles many in one)
    portfolios: dict[int, tuple[str, tuple[int, ...]]] = field(default_factory=dict)  # -> (aggregator, members at gate closure)
    # (ISP start, meter) -> the upheld disputes of that reading, in any offer: the first is slashed
    upheld: dict[tuple[int, str], list[tuple[int, int, str, SettlingCall, SettledEvent]]] = field(default_factory=dict)
    # (ISP start, meter) -> the upheld baseline disputes, in any offer: (block, log, where, record
    # presented, asset, oracle that anchored the baselines, event); the first is slashed
    corrected: dict[tuple[int, str], list[tuple[int, int, str, Record, int, str, SettledEvent]]] = field(
        default_factory=dict)
    # (ISP start, meter) -> (block, log) of the first upheld challenge of an input day that corrected it
    challenged: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    baseline_disputes_address: str = ""
    evidence: BaselineEvidence | None = None  # what the oracle serves to recompute standard baselines
    unchecked: int = 0  # standard baselines met but not recomputed (no evidence given)
    superseded: int = 0  # anchored standard baselines met that a baseline dispute corrected since
    state_block: BlockId = "latest"  # the block whose state a settling call met (set per call)

    @property
    def conn(self) -> ChainConnection:
        return self.deployment.conn

    def block_time(self, block: int) -> int:
        if block not in self.times:
            self.times[block] = int(self.conn.w3.eth.get_block(block)["timestamp"])
        return self.times[block]

    def asset(self, asset_id: int) -> AssetRegistryAsset:
        if asset_id not in self.meters:
            self.meters[asset_id] = self.assets.asset(asset_id)
        return self.meters[asset_id]

    def portfolio(self, portfolio_id: int) -> tuple[str, tuple[int, ...]]:
        """Its aggregator, and the members whose meters count for the day (at its gate closure)."""
        if portfolio_id not in self.portfolios:
            members = self.assets.members_at(portfolio_id, self.params.gate_closure(self.day))
            self.portfolios[portfolio_id] = (str(self.assets.aggregator_of(portfolio_id)), tuple(int(a) for a in members))
        return self.portfolios[portfolio_id]

    def seller(self, s: SettlementInput) -> str:
        return self.portfolio(s.offer.portfolio)[0] if s.portfolio else self.asset(s.offer.asset).owner


def _load(deployment: Deployment, market: int, day_start: int, result_id: int) -> _Day:
    conn = deployment.conn
    params = deployment.params(market)
    orders = deployment.order_book
    clearing = deployment.clearing
    topic = "0x" + result_id.to_bytes(32, "big").hex()
    roots = {int(e.args["chunk"]): bytes(e.args["awardsRoot"]) for e in clearing.events("ChunkPosted", topics=[topic])}
    awards: dict[bytes, set[tuple[int, int, int, int, int]]] = defaultdict(set)
    for a in award_proofs(clearing, result_id):  # its leaves are checked against the chunk roots there
        awards[a.offer_digest].add((a.chunk, a.request_id, a.isp_start, a.power_w, a.level_w))
    oracle = deployment.oracle
    anchors: dict[int, list[Anchor]] = defaultdict(list)
    for e in oracle.events("RootAnchored", topics=["0x" + market.to_bytes(32, "big").hex()]):
        anchors[int(e.args["ispStart"])].append(Anchor(bytes(e.args["root"]), str(e.args["oracle"]),
                                                       int(e.args["leafCount"]), int(e.args["anchoredAt"])))
    baseline_roots: dict[int, list[tuple[bytes, int]]] = defaultdict(list)
    for e in oracle.events("BaselinesAnchored", topics=["0x" + market.to_bytes(32, "big").hex()]):
        at = int(conn.w3.eth.get_block(e.block_number)["timestamp"])
        baseline_roots[int(e.args["ispStart"])].append((bytes(e.args["root"]), at))
    cache: dict[int, Request] = {}

    def request(request_id: int) -> Request:
        if request_id not in cache:
            cache[request_id] = orders.request(request_id)
        return cache[request_id]

    slashes: dict[str, list[DecodedEvent]] = defaultdict(list)
    for e in oracle.events("OracleSlashed", topics=["0x" + market.to_bytes(32, "big").hex()]):
        slashes[e.tx_hash].append(e)
    return _Day(deployment, market, day_start, params, result_id, read_book(orders, market, day_start),
                deployment.book_separator, deployment.settlement, deployment.reading_disputes.address, roots, anchors,
                baseline_roots, awards, read_domain(conn, oracle.address), deployment.assets, request,
                cleared_price_of(clearing), oracle, clearing.day_state(market, day_start).challenge_ends, dict(slashes),
                baseline_disputes_address=deployment.baseline_disputes.address)


def audit_settlement(deployment: Deployment, market: int, day_start: int,
                     evidence: BaselineEvidence | None = None) -> SettlementAudit:
    """Recompute every settlement of the market day starting at ``day_start`` from public chain
    data, and follow its money; ``matches`` when every figure agrees. With ``evidence`` (what the
    oracle serves), every standard baseline met is recomputed from the anchored readings too."""
    deployment.manifest.verify(deployment.conn)  # the operator's manifest is evidence to check, not a premise
    state = day_state(deployment, market, day_start)
    current, final = state.current, state.finalised
    audit = SettlementAudit(market, day_start, current)
    if current == 0:
        audit.differences.append("no clearing result is in force for this day")
        return audit
    if not final:
        audit.notes.append(f"result {current} is not final yet: nothing of the day can be settled")
        return audit
    day = _load(deployment, market, day_start, current)
    day.evidence = evidence
    events = settled_events(day.settlement, result_id=current)
    by_key: dict[tuple[int, bytes], list[SettledEvent]] = defaultdict(list)
    for e in events:
        by_key[settled_key(e.record)].append(e)
    calls: dict[str, list[SettlingCall]] = {}
    lines: dict[tuple[int, bytes], list[Line]] = {}
    for key, history in sorted(by_key.items()):
        audit.differences += _check_history(day, key, history, calls, lines, audit)
    audit.differences += _check_challenges(day, audit.notes)
    audit.differences += _check_slashes(day)
    if day.unchecked:
        audit.notes.append(f"{day.unchecked} standard baseline(s) proven against their roots but not recomputed from "
                           "the anchored readings: no oracle evidence was given")
    if day.superseded:
        audit.notes.append(f"{day.superseded} settlement(s) used an anchored standard baseline that a baseline dispute "
                           "proved wrong and corrected since: not recomputed, the dispute is checked instead")
    forced = in_force(events)
    audit.records = {k: e.record for k, e in forced.items()}
    audit.offers_settled = len(forced)
    audit.lines = sum(len(e.record.lines) for e in forced.values())
    unsettled = sorted(set(day.awards) - {k[1] for k in forced})
    if unsettled:
        audit.notes.append(f"{len(unsettled)} awarded offer(s) not settled (yet): "
                           + ", ".join(f"0x{d.hex()[:10]}" for d in unsettled[:10]))
    money = audit_money(MoneyInputs(deployment, day.book, day.params, current,
                                    {k: lines.get(k, list(e.record.lines)) for k, e in forced.items()},
                                    {k: e.record for k, e in forced.items()}, day.request))
    audit.parties = money.parties
    audit.differences += money.differences
    audit.notes += money.notes
    audit.final = money.final
    return audit


def _calls(day: _Day, cache: dict[str, list[SettlingCall]], tx_hash: str) -> list[SettlingCall]:
    if tx_hash not in cache:
        cache[tx_hash] = settling_calls(day.conn, day.settlement.address, tx_hash, day.separator, day.disputes_address,
                                        day.baseline_disputes_address)
    return cache[tx_hash]


def _check_history(day: _Day, key: tuple[int, bytes], history: list[SettledEvent], cache: dict[str, list[SettlingCall]],
                   lines: dict[tuple[int, bytes], list[Line]], audit: SettlementAudit) -> list[str]:
    """One offer's settlement and its disputes, in order: each logged record recomputed."""
    where = f"offer 0x{key[1].hex()[:10]}"
    out: list[str] = []
    corrections: dict[tuple[int, int], int] = {}  # (ISP start, asset) -> the net a dispute set (they compose, as on chain)
    voided: set[int] = set()  # ISP starts whose delivery an equivocation voided
    by_default = False  # first settled by `settleUnrevealed`: no reading counted, none to dispute
    previous: Record | None = None
    for n, event in enumerate(history):
        try:
            call = call_for(_calls(day, cache, event.tx_hash), key)
        except FlexledgerError as exc:
            out.append(f"{where}: {exc.message}")
            return out
        s = call.settle_in
        at = day.block_time(event.block_number)
        if (n == 0) == call.corrects:
            out.append(f"{where}: event {n} was logged by {call.function}, expected "
                       f"{'a settlement' if n == 0 else 'a dispute'}")
        day.state_block = event.block_number - 1  # corrections in force are read as the call found them
        out += [f"{where}: {p}" for p in _check_inputs(day, s, call.unrevealed)]
        out += [f"{where}: {p}" for p in _check_timing(day, call, event, previous, at)]
        by_default = by_default or (n == 0 and call.unrevealed)
        computed_from, no_baseline = s, None  # a baseline dispute re-settles on the corrected baseline
        if call.baseline is not None or call.applied is not None:
            audit.disputes += 1
            judged = _check_baseline_dispute(day, call, event, where) if call.baseline else _check_applied(day, call)
            if by_default:
                judged = "it disputes a settlement made by default, which counted no reading"
            if isinstance(judged, str):
                out.append(f"{where}: {call.function} in {event.tx_hash}: {judged}")
            elif judged is not None:
                computed_from, no_baseline = judged
        elif call.dispute is not None:
            d = call.dispute
            audit.disputes += 1
            problem = _check_dispute(day, call, corrections, voided)
            if by_default:
                problem = "it disputes a settlement made by default, which counted no reading"
            if problem:
                out.append(f"{where}: dispute in {event.tx_hash}: {problem}")
            else:
                isp_start, asset = s.isps[d.isp].isp_start, s.disputed(d)[0]
                if _signed_twice(day, call, corrections):
                    voided.add(isp_start)  # the meter's word is worth nothing there: no slash either
                    out += [f"{where}: dispute in {event.tx_hash}: {p} (the meter equivocated: nobody is paid)"
                            for p in _check_slash(day, call, event, False)]
                else:
                    meter = day.asset(asset).meter.lower()
                    day.upheld.setdefault((isp_start, meter), []).append(
                        (event.block_number, event.log_index, where, call, event))
                    corrections[(isp_start, asset)] = d.import_wh - d.export_wh
            if previous is not None and call.record != previous:
                out.append(f"{where}: the dispute in {event.tx_hash} presented a record other than the one in force")
        net = None if call.unrevealed else _net_with(computed_from, corrections, voided, day.params.isp_seconds)
        if net is not None and no_baseline is not None:  # no delivery can be measured there: none counts
            net[no_baseline] = computed_from.baseline_wh[_index(day, s, no_baseline)]
        try:
            figures = recompute(computed_from, net, day.params, day.request, day.cleared_price)
        except ValueError as exc:
            out.append(f"{where}: its inputs cannot be settled by the rules ({exc})")
            return out
        ours = [f.line for f in figures]
        theirs = list(event.record.lines)
        out += [f"{where}, {event.tx_hash}: {p}" for p in compare_lines(theirs, ours)]
        owner = day.seller(s)
        if event.record.seller.lower() != owner.lower():
            whose = "the portfolio's aggregator" if s.portfolio else "the asset's owner"
            out.append(f"{where}: the record names seller {event.record.seller}, {whose} is {owner}")
        lines[key] = ours
        previous = event.record
    return out


def _index(day: _Day, s: SettlementInput, isp: int) -> int:
    """The position of ISP ``isp`` (of the settlement's inputs) in the offer's window."""
    return (s.isps[isp].isp_start - s.offer.start) // day.params.isp_seconds


def _check_baseline_dispute(day: _Day, call: SettlingCall, event: SettledEvent,
                            where: str) -> tuple[SettlementInput, int | None] | str:
    """Judge a ``BaselineDisputes.dispute`` as the contract must: the baseline revealed is the one
    in force that the settlement used, the evidence (an anchored reading, proven, anchored no later
    than the baselines) applied and the rule run over it (``audit_baselines.correction_for``) moves
    it, and the correction put in force is that one. Then the inputs the record must have been
    computed from (the ISP's baseline moved by the correction) and the ISP left with no baseline,
    or why the dispute should have been refused. An upheld dispute is kept for the slash check."""
    b, s = call.baseline, call.settle_in
    assert b is not None and call.record is not None and day.oracle is not None
    if s.offer.baseline_method != BaselineMethod.ROLLING_AVERAGE:
        return "the offer does not name the standard baseline"
    if b.isp >= len(s.isps):
        return f"ISP index {b.isp} is not in the settlement"
    isp = s.isps[b.isp]
    index = _index(day, s, b.isp)
    if s.portfolio:
        member = next((m for m in isp.members if m.asset == b.member), None)
        if member is None:
            return f"asset {b.member} is not a member whose reading the settlement presented"
        asset, used = b.member, member.baseline_wh
    else:
        asset, used = s.offer.asset, s.baseline_wh[index]
    meter = day.asset(asset).meter
    inputs = BaselineInputs(b.baseline.days_back, b.baseline.nets)
    if b.baseline.baseline_wh != used or _anchored_baseline(day, meter, isp.isp_start, used,
                                                            (inputs.hash(), *b.baseline.proof)) is None:
        return "the baseline revealed is not the one in force that the settlement used"
    anchor = day.oracle.baseline_anchor(day.market, isp.isp_start, block=day.state_block)
    anchored_by, anchored_at = str(anchor[0]), int(anchor[1])

    def day_net(t: int) -> int | None:
        r = b.reading
        if not is_anchored(r) or r.anchor.anchored_at > anchored_at or _check_reading(day, meter, t, r):
            return None
        return r.import_wh - r.export_wh

    judged = correction_for(isp.isp_start, b.kind, b.input, inputs, day_net)
    if isinstance(judged, str):
        return judged
    value, kept = judged
    fix = fix_of(value, kept)
    if fix == fix_of(used, inputs):
        return "the evidence leaves the baseline as it is"
    in_force = bytes(day.oracle.baseline_fix(day.market, isp.isp_start, meter, block=event.block_number))
    if in_force != fix:
        return (f"it put correction 0x{in_force.hex()} in force; the rule over the evidence gives "
                + ("no baseline" if value is None else f"{value} Wh (0x{fix.hex()})"))
    day.corrected.setdefault((isp.isp_start, meter.lower()), []).append(
        (event.block_number, event.log_index, where, call.record, asset, anchored_by, event))
    moved = list(s.baseline_wh)
    moved[index] += 0 if value is None else value - used
    return replace(s, baseline_wh=tuple(moved)), (b.isp if value is None else None)


def _check_applied(day: _Day, call: SettlingCall) -> str | None:
    """``BaselineDisputes.applyCorrection``: it re-settles on the baselines in force (checked with
    the inputs), so it needs a usable correction in force for the meter and ISP it names."""
    assert call.applied is not None and day.oracle is not None
    isp, member = call.applied
    s = call.settle_in
    if s.offer.baseline_method != BaselineMethod.ROLLING_AVERAGE or isp >= len(s.isps):
        return f"ISP index {isp} is not a standard baseline's of the settlement"
    if s.portfolio and member == 0:
        return "it names no member of the portfolio"
    meter = day.asset(member if s.portfolio else s.offer.asset).meter
    fix = bytes(day.oracle.baseline_fix(day.market, s.isps[isp].isp_start, meter, block=day.state_block))
    if fix in (bytes(32), NO_BASELINE):
        return "no correction usable by a settlement was in force for that meter and ISP"
    return None


def _net_with(s: SettlementInput, corrections: dict[tuple[int, int], int], voided: set[int], isp_seconds: int) -> list[int]:
    """Each ISP's net consumption, every meter's reading as disputes corrected it; an ISP whose
    meter equivocated counts its baseline (nothing delivered)."""
    return [s.baseline_wh[(isp.isp_start - s.offer.start) // isp_seconds] if isp.isp_start in voided
            else sum(corrections.get((isp.isp_start, a), reading_net_wh(r)) for a, r in s.readings(i))
            for i, isp in enumerate(s.isps)]


def compare_lines(logged: list[Line], recomputed: list[Line]) -> list[str]:
    """Every line that differs between a logged record and the recomputation (empty if they agree)."""
    out = []
    if len(logged) != len(recomputed):
        out.append(f"the record has {len(logged)} lines, the rules give {len(recomputed)}")
    for theirs, ours in zip(logged, recomputed, strict=False):
        if theirs != ours:
            out.append(f"request {ours.request_id}, ISP {iso(ours.isp_start)}: on chain payment {theirs.payment}, "
                       f"claim {theirs.claim}, uncovered {theirs.uncovered}; the rules give {ours.payment}, {ours.claim}, "
                       f"{ours.uncovered}")
    return out


def _check_inputs(day: _Day, s: SettlementInput, unrevealed: bool) -> list[str]:
    """The inputs' own evidence: offer, awards, readings and baseline."""
    out = []
    if s.result_id != day.result_id:
        out.append(f"settled against result {s.result_id}, the day's final result is {day.result_id}")
    if s.digest not in day.book.digests.values() or s.offer.market != day.market:
        out.append("the offer is not in the day's book")
    if (s.offer.asset == 0) == (s.offer.portfolio == 0):
        out.append("the offer names both an asset and a portfolio, or neither")
        return out
    presented = set()
    for isp in s.isps:
        level = sum(a.power_w for a in isp.awards)
        for a in isp.awards:
            presented.add((a.chunk, a.request_id, a.isp_start, a.power_w, a.level_w))
            root = day.roots.get(a.chunk)
            leaf = award_leaf(s.digest, a.request_id, a.isp_start, a.power_w, a.level_w)
            if root is None or not verify_award_proof(a.proof, root, leaf):
                out.append(f"the award of request {a.request_id} at {iso(a.isp_start)} is not proven against chunk "
                           f"{a.chunk}'s awards root")
            if a.level_w != level:
                out.append(f"the awards presented at {iso(a.isp_start)} add up to {level} W, the offer's level is "
                           f"{a.level_w} W")
        if not unrevealed:
            out += _check_readings(day, s, isp)
    if presented != day.awards.get(s.digest, set()):
        out.append(f"the awards presented ({len(presented)}) are not the result's awards of the offer "
                   f"({len(day.awards.get(s.digest, set()))})")
    if not unrevealed:
        out += _check_baseline(day, s)
    return out


def _check_baseline(day: _Day, s: SettlementInput) -> list[str]:
    """The baseline: the one committed (COMMITTED), or per ISP the value the oracle anchored for the
    meter, proven against the root ``BaselinesAnchored`` logged (ROLLING_AVERAGE)."""
    if s.offer.baseline_method == BaselineMethod.COMMITTED:
        if reveal_matches(s.offer.baseline, s.offer.asset, s.offer.start, s.baseline_wh, s.salt):
            return []
        return ["the revealed baseline does not match the offer's commitment"]
    out = []
    for i, isp in enumerate(s.isps):
        index = (isp.isp_start - s.offer.start) // day.params.isp_seconds
        if not 0 <= index < len(s.baseline_wh):
            out.append(f"no baseline value for {iso(isp.isp_start)}")
            continue
        if s.portfolio:  # the members' anchored baselines, summed
            checks = [(day.asset(m.asset).meter, m.baseline_wh, m.baseline_proof) for m in isp.members]
            known = sum(m.baseline_wh for m in isp.members) == s.baseline_wh[index]
        else:
            checks = [(day.asset(s.offer.asset).meter, s.baseline_wh[index],
                       s.baseline_proofs[i] if i < len(s.baseline_proofs) else ())]
            known = True
        for meter, value, witness in checks:
            anchored_at = _anchored_baseline(day, meter, isp.isp_start, value, witness)
            if anchored_at is None:
                known = False
            elif anchored_at >= 0 and _corrected_since(day, meter, isp.isp_start):
                day.superseded += 1  # a dispute proved the leaf wrong and put the rule's value in force
            elif anchored_at >= 0:  # the oracle's leaf (a correction is the contract's own)
                out += _recompute(day, meter, isp.isp_start, value, witness[0], anchored_at)
        if not known:
            out.append(f"the standard baseline of {iso(isp.isp_start)} is not the one the oracle anchored for the "
                       + ("members' meters, summed" if s.portfolio else "meter"))
    return out


def _anchored_baseline(day: _Day, meter: str, isp_start: int, value: int, witness: tuple[bytes, ...]) -> int | None:
    """When the root holding this leaf (inputs hash, then its proof: ``MeterOracle.verifyBaseline``)
    was anchored; -1 for a value a BaselineDisputes correction put in force; None if neither."""
    if not witness:
        return None
    if day.oracle is not None:
        fix = bytes(day.oracle.baseline_fix(day.market, isp_start, meter, block=day.state_block))
        if fix != bytes(32):
            return -1 if fix == keccak(encode(["int64", "bytes32"], [value, witness[0]])) else None
    for root, at in day.baseline_roots.get(isp_start, []):
        if verify_reading_proof(root, BASELINE_ENCODING, [meter, isp_start, value, witness[0]], witness[1:]):
            return at
    return None


def _corrected_since(day: _Day, meter: str, isp_start: int) -> bool:
    """Whether a BaselineDisputes correction is in force now for the meter and ISP (its slash and
    re-settlements are checked where they were made)."""
    return day.oracle is not None and bytes(day.oracle.baseline_fix(day.market, isp_start, meter)) != bytes(32)


def _recompute(day: _Day, meter: str, isp_start: int, value: int, inputs_hash: bytes, anchored_at: int) -> list[str]:
    """The oracle's standard baseline recomputed from the anchored readings (``audit_baselines``)."""
    if day.evidence is None:
        day.unchecked += 1
        return []
    return recheck_standard(meter, isp_start, value, inputs_hash, anchored_at, day.evidence,
                            lambda m, t, r: _check_reading(day, m, t, r))


def _check_readings(day: _Day, s: SettlementInput, isp: IspInput) -> list[str]:
    """The asset meter's reading, or one reading per member the portfolio had at the gate closure."""
    if not s.portfolio:
        return _check_reading(day, day.asset(s.offer.asset).meter, isp.isp_start, isp.reading)
    _aggregator, members = day.portfolio(s.offer.portfolio)
    presented = tuple(m.asset for m in isp.members)
    if presented != members:
        return [f"the readings of {iso(isp.isp_start)} are of assets {list(presented)}; the portfolio's members at the "
                f"gate closure are {list(members)}"]
    out = []
    for m in isp.members:
        out += [f"member {m.asset}: {p}" for p in _check_reading(day, day.asset(m.asset).meter, isp.isp_start, m.reading)]
    return out


def _check_reading(day: _Day, meter: str, isp_start: int, r: ReadingIn) -> list[str]:
    reading = Reading(meter, isp_start, r.sequence, r.import_wh, r.export_wh)
    if not is_anchored(r):  # in no root: it stands on the meter's signature alone
        if r.anchor != NO_ANCHOR or not _signed_by(day, reading, r.signature, meter):
            return [f"the reading of {iso(isp_start)}, brought without an anchor, is not signed by the meter"]
        return []
    if r.anchor not in day.anchors.get(isp_start, []):
        return [f"the reading of {iso(isp_start)} names an anchor MeterOracle never logged for that ISP"]
    if not verify_reading_proof(r.anchor.root, LEAF_ENCODING, reading.leaf_values(r.signature), r.proof):
        return [f"the reading of {iso(isp_start)} ({r.import_wh} Wh in, {r.export_wh} Wh out) is not the meter's "
                "reading in the anchored root"]
    return []


def _check_slashes(day: _Day) -> list[str]:
    """Each reading an oracle anchored that its meter never signed costs it one slash, at its first
    upheld dispute in any offer (RT-4); later disputes of it slash nothing."""
    out = []
    for disputes in day.upheld.values():
        for n, (_block, _log, where, call, event) in enumerate(sorted(disputes, key=lambda x: (x[0], x[1]))):
            out += [f"{where}: dispute in {event.tx_hash}: {p}" for p in _check_slash(day, call, event, n == 0)]
    # a wrong standard baseline costs the oracle that anchored the ISP's baselines one slash, at its
    # first correction in any offer; a later correction of the correction slashes nothing
    for (isp_start, meter), fixes in day.corrected.items():
        challenged = day.challenged.get((isp_start, meter))  # an upheld challenge corrected it first
        for n, (block, log, where, record, asset, anchored_by, event) in enumerate(sorted(fixes, key=lambda x: (x[0], x[1]))):
            first = n == 0 and (challenged is None or challenged > (block, log))
            out += [f"{where}: baseline dispute in {event.tx_hash}: {p}"
                    for p in _check_paid(day, event, record, asset, isp_start, anchored_by, first)]
    return out


def _check_challenges(day: _Day, notes: list[str]) -> list[str]:
    """Each upheld challenge of an input day (dispute (d)) of the day's ISPs, as the contract must
    judge it: the correction in force is the rule over the inputs it revealed without that day, and
    the oracle that anchored the baselines paid the stake rule's slash to the challenger at the first
    correction of that (ISP, meter) in any offer or challenge, nothing after. A challenged day that
    had a reading anchored by the baselines with the input's value was the oracle's to answer: it
    lost by not answering, which costs nobody else (a SKIPPED dispute puts the day back): noted."""
    assert day.oracle is not None
    disputes = day.deployment.baseline_disputes
    market_topic = "0x" + day.market.to_bytes(32, "big").hex()
    out: list[str] = []
    upheld = [e for e in disputes.events("BaselineInputUpheld", topics=[market_topic])
              if day.day <= int(e.args["ispStart"]) < day.day + DAY]
    for e in sorted(upheld, key=lambda x: (x.block_number, x.log_index)):
        isp_start, meter, k = int(e.args["ispStart"]), str(e.args["meter"]), int(e.args["daysBack"])
        where = f"challenge of {meter}'s baseline for {iso(isp_start)} ({k} days back) in {e.tx_hash}"
        tx = day.conn.w3.eth.get_transaction(e.tx_hash)  # type: ignore[arg-type]
        if str(tx["to"]).lower() != day.baseline_disputes_address.lower():
            out.append(f"{where}: not a direct upholdInput call, its inputs cannot be read")
            continue
        _isp, kept, value = kept_after_uphold(bytes(tx["input"]))
        fix = fix_of(value, kept)
        if bytes(e.args["fix"]) != fix:
            out.append(f"{where}: it put 0x{bytes(e.args['fix']).hex()} in force; the rule without that day gives "
                       + ("no baseline" if value is None else f"{value} Wh (0x{fix.hex()})"))
        key = (isp_start, meter.lower())
        earlier = [(b, n) for b, n, *_rest in day.corrected.get(key, [])]
        first = key not in day.challenged and all((b, n) > (e.block_number, e.log_index) for b, n in earlier)
        day.challenged.setdefault(key, (e.block_number, e.log_index))
        before = e.block_number - 1
        want = 0
        if first:
            want = min(int(day.oracle.required_stake(day.market, block=before)),
                       day.oracle.stake_of(day.market, str(e.args["oracleAccount"]), block=before).amount)
        got = [(str(x.args["oracle"]).lower(), str(x.args["to"]).lower(), int(x.args["amount"]))
               for x in day.slashes.get(e.tx_hash, [])]
        expected = [(str(e.args["oracleAccount"]).lower(), str(e.args["challenger"]).lower(), want)] if want else []
        if got != expected or int(e.args["slashed"]) != want:
            out.append(f"{where}: oracle stakes slashed {got or 'nothing'}, the stake rule says {expected or 'nothing'}")
        if day.evidence is not None:
            answer = day.evidence.reading(meter, isp_start - k * DAY)
            anchored_at = int(day.oracle.baseline_anchor(day.market, isp_start).anchored_at)
            if answer is not None and is_anchored(reading_in(answer)) and int(answer["anchor"]["anchoredAt"]) <= anchored_at:
                notes.append(f"{where}: upheld unanswered although the oracle serves a reading of that day anchored "
                             "by the baselines (a negligent oracle: a SKIPPED dispute can put the day back)")
    return out


def _check_slash(day: _Day, call: SettlingCall, event: SettledEvent, first: bool) -> list[str]:
    """The oracle that anchored the disputed reading paid what the market's stake rule says (the
    required stake, or what was left of its stake; nothing without a stake, for a reading already
    slashed, or for an equivocation), read from the chain's state just before the dispute's block,
    to the disputer, or to the buyer of the ISP's first award when the disputer is the offer's
    seller or the meter's owner (a slash never pays them)."""
    assert call.dispute is not None and call.record is not None
    d, s = call.dispute, call.settle_in
    asset, anchored = s.disputed(d)
    return _check_paid(day, event, call.record, asset, s.isps[d.isp].isp_start, anchored.anchor.oracle, first)


def _check_paid(day: _Day, event: SettledEvent, record: Record, asset: int, isp_start: int, anchored_by: str,
                first: bool) -> list[str]:
    """The slash in ``event``'s transaction, as the stake rule says (see ``_check_slash``)."""
    assert day.oracle is not None
    got = [(str(e.args["oracle"]), str(e.args["to"]), int(e.args["amount"])) for e in day.slashes.get(event.tx_hash, [])]
    want = 0
    if first:
        before = event.block_number - 1
        required = int(day.oracle.required_stake(day.market, block=before))
        staked = day.oracle.stake_of(day.market, anchored_by, block=before).amount
        want = min(required, staked)
    to = str(day.conn.w3.eth.get_transaction(event.tx_hash)["from"])  # type: ignore[arg-type]
    if to.lower() in (record.seller.lower(), day.asset(asset).owner.lower()):
        line = next((ln for ln in record.lines if ln.isp_start == isp_start), None)
        to = day.request(line.request_id).buyer if line is not None else to
    expected = [(anchored_by, to, want)] if want else []
    if [tuple(str(x).lower() for x in g) for g in got] != [tuple(str(x).lower() for x in g) for g in expected]:
        shown = [(o, t, n) for o, t, n in got]
        return [f"oracle stakes slashed {shown or 'nothing'}, the stake rule says {expected or 'nothing'}"]
    return []


def _signed_by(day: _Day, reading: Reading, signature: bytes, meter: str) -> bool:
    try:
        return reading.typed(day.oracle_domain).recover(signature).lower() == meter.lower()
    except TypedDataError:
        return False


def _signed_twice(day: _Day, call: SettlingCall, corrections: dict[tuple[int, int], int]) -> bool:
    """Whether the reading the settlement counted for the disputed meter and ISP was meter-signed
    too: a dispute put a signed one in its place, or the presented reading's signature (committed
    in the anchored leaf) is the meter's over it. Then the dispute shows equivocation."""
    assert call.dispute is not None
    d, s = call.dispute, call.settle_in
    isp_start = s.isps[d.isp].isp_start
    asset, counted = s.disputed(d)
    if (isp_start, asset) in corrections:
        return True
    meter = day.asset(asset).meter
    return _signed_by(day, Reading(meter, isp_start, counted.sequence, counted.import_wh, counted.export_wh),
                      counted.signature, meter)


def _check_dispute(day: _Day, call: SettlingCall, corrections: dict[tuple[int, int], int],
                   voided: set[int]) -> str | None:
    """Why a dispute should have been refused, or None."""
    d = call.dispute
    s = call.settle_in
    assert d is not None
    if d.isp >= len(s.isps):
        return f"ISP index {d.isp} is not in the settlement"
    isp = s.isps[d.isp]
    if isp.isp_start in voided:
        return f"the delivery of {iso(isp.isp_start)} was already void (the meter equivocated)"
    asset, anchored = s.disputed(d)
    if asset == 0:
        return f"asset {d.member} is not a member whose reading the settlement counted"
    meter = day.asset(asset).meter
    reading = Reading(meter, isp.isp_start, d.sequence, d.import_wh, d.export_wh)
    try:
        signer = reading.typed(day.oracle_domain).recover(d.signature)
    except TypedDataError as exc:
        return f"the reading's signature is unusable ({exc.message})"
    if signer.lower() != meter.lower():
        return f"the reading was signed by {signer}, not by the asset's meter {meter}"
    earlier = corrections.get((isp.isp_start, asset))
    if earlier is not None and d.import_wh - d.export_wh == earlier:
        return "the signed reading agrees with the one an earlier dispute set"
    if earlier is None and (d.import_wh, d.export_wh) == (anchored.import_wh, anchored.export_wh):
        return "the signed reading agrees with the anchored one"
    return None



def _check_timing(day: _Day, call: SettlingCall, event: SettledEvent, previous: Record | None, at: int) -> list[str]:
    """Settled inside its window, and ``settledAt`` as the contract sets it (a dispute keeps it)."""
    closes = day.params.settlement_closes(day.day, day.final_at)
    record = event.record
    if call.corrects:
        if previous is not None and record.settled_at != previous.settled_at:
            return ["a dispute moved the settlement's time (its dispute window would restart)"]
        if previous is not None and at > previous.settled_at + day.params.dispute_window_seconds:
            return [f"disputed at {iso(at)}, after the dispute window ended"]
        return []
    out = []
    if record.settled_at != at:
        out.append(f"the record's settledAt {record.settled_at} is not its block's time {at}")
    if call.unrevealed and not closes < at <= closes + day.params.dispute_window_seconds:
        out.append(f"settled by default at {iso(at)}, outside ({iso(closes)}, one dispute window later]")
    if not call.unrevealed and at > closes:
        out.append(f"settled at {iso(at)}, after the settlement window closed ({iso(closes)})")
    return out
