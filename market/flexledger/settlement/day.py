"""A market day's settlement at once (what `flexledger settle`, `claim` and `dispute` run): the
offers its final result awarded (``awarded_offers``), settled when the caller holds their
committed baselines or the oracle anchored their standard ones (``settle_day``); the settlements
whose dispute window is over made final (``finalise_day``), the buyer's requests refunded when due
(``refund_requests``), claims withdrawn (``withdraw_claims``); a settlement disputed with a
reading its meter signed (``dispute_offer``). The record in force of a settled offer is the
latest ``OfferSettled`` event of its (result, offer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from sqlalchemy.engine import Engine

from flexledger.baselines.fixes import NoBaselineLeftError, with_baselines_in_force
from flexledger.book.order_book import read_book
from flexledger.chain.bindings import (
    ClearingCommitmentClient,
    OrderBookClient,
    ReadingDisputesClient,
    SettlementClient,
)
from flexledger.chain.connection import ChainConnection
from flexledger.chain.structs import ReadingDisputesDisputeIn, ReadingIn, Record, Request, SettleIn
from flexledger.chain.transactions import Signer
from flexledger.clearing.commitment import AwardProof, award_proofs
from flexledger.deployment import Deployment
from flexledger.errors import FlexledgerError
from flexledger.oracle.anchoring import ProofError
from flexledger.oracle.baselines import BaselineError
from flexledger.oracle.store import ConflictingReading, StoredReading, session, signed_readings_of
from flexledger.rules.baselines import reveal_matches
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import BaselineMethod, Offer
from flexledger.settlement.offer import (
    Baseline,
    Member,
    ReadingProof,
    SettledOffer,
    SettlementInputError,
    StandardBaselines,
    finalise_in_batches,
    settle_input_from,
    settle_offer,
    settle_offers,
)
from flexledger.settlement.records import (
    FINAL,
    AwardFigures,
    SettledEvent,
    SettlementDataError,
    SettlementInput,
    SettlingCall,
    call_for,
    cleared_price_of,
    in_force,
    recompute,
    settled_events,
    settled_key,
    settling_calls,
)
from flexledger.times import iso


class SettlementNotReadyError(FlexledgerError):
    """The day cannot be settled (yet): no final clearing result, or its settlement window is not the right one."""


class BaselineMismatchError(FlexledgerError):
    """A baseline held for an offer is not the one the offer committed to."""


class ClaimNotDueError(FlexledgerError):
    """Nothing can be claimed yet: the settlements are in their dispute window."""


class DisputeError(FlexledgerError):
    """A dispute that cannot be raised: nothing settled, the window over, or no differing reading."""


BaselineSource = Callable[[Offer], Baseline | None]  # the caller's own baselines, by offer


@dataclass(frozen=True)
class AwardedOffer:
    """An offer the day's final result awarded, with its awards and the meter its asset reads (or,
    for a portfolio offer, the members whose meters count: those it had at the day's gate closure)."""

    offer: Offer
    digest: bytes
    awards: list[AwardProof]
    meter: str
    result_id: int
    members: tuple[Member, ...] = ()

    @property
    def key(self) -> tuple[int, bytes]:
        return (self.result_id, self.digest)


@dataclass
class DayContext:
    """What every day-level operation reads first: the market, its final result, the clients."""

    deployment: Deployment
    market: int
    day_start: int
    params: MarketParams
    result_id: int
    final_at: int  # when the day's result could be made final (DayState.challengeEnds)

    @property
    def conn(self) -> ChainConnection:
        return self.deployment.conn

    @property
    def settlement(self) -> SettlementClient:
        return self.deployment.settlement

    @property
    def clearing(self) -> ClearingCommitmentClient:
        return self.deployment.clearing

    @property
    def book(self) -> OrderBookClient:
        return self.deployment.order_book

    @property
    def disputes(self) -> ReadingDisputesClient:
        return self.deployment.reading_disputes

    def calls(self, tx_hash: str, separator: bytes | None = None) -> list[SettlingCall]:
        """The settlements a settling (or disputing) transaction carried."""
        return settling_calls(self.conn, self.settlement.address, tx_hash,
                              self.book_separator if separator is None else separator, self.disputes.address,
                              self.deployment.baseline_disputes.address)

    @property
    def closes_at(self) -> int:
        """The end of the day's settlement window (the seller's, with its baseline), from finality."""
        return self.params.settlement_closes(self.day_start, self.final_at)

    @property
    def book_separator(self) -> bytes:
        return self.deployment.book_separator

    def records(self) -> dict[tuple[int, bytes], SettledEvent]:
        return in_force(settled_events(self.settlement, result_id=self.result_id))

    def is_final(self, key: tuple[int, bytes]) -> bool:
        return bytes(self.settlement.records(record_key(*key))) == FINAL


def record_key(result_id: int, digest: bytes) -> bytes:
    """``Settlement.records``' key of a settled offer."""
    return keccak(encode(["uint64", "bytes32"], [result_id, digest]))


def day_context(deployment: Deployment, market: int, day_start: int) -> DayContext:
    """The day's context; ``SettlementNotReadyError`` unless its clearing result is final."""
    state = deployment.clearing.day_state(market, day_start)
    current, ends, final = state.current, state.challenge_ends, state.finalised
    if current == 0:
        raise SettlementNotReadyError(f"market {market} has no clearing result for the day starting at {iso(day_start)}",
                                      hint="clear and commit the day first (`flexledger clear --commit`)")
    if not final:
        raise SettlementNotReadyError(f"result {current} of the day is not final: settlements need a final result",
                                      hint=f"run `flexledger finalise` after its challenge window ends ({iso(ends)})")
    return DayContext(deployment, market, day_start, deployment.params(market), current, ends)


def awarded_offers(ctx: DayContext) -> list[AwardedOffer]:
    """Every offer the day's final result awarded, in increasing digest order (the book's events
    give the offers, the result's events their awards, AssetRegistry the assets' meters,
    DeliveryMeter the portfolios' members at the gate closure)."""
    book = read_book(ctx.book, ctx.market, ctx.day_start)
    offer_of = {d: o for o, d in book.digests.items()}
    by_offer: dict[bytes, list[AwardProof]] = defaultdict(list)
    for award in award_proofs(ctx.clearing, ctx.result_id):
        by_offer[award.offer_digest].append(award)
    assets = ctx.deployment.assets
    out = []
    for digest in sorted(by_offer):
        offer = offer_of.get(digest)
        if offer is None:
            raise SettlementInputError(f"result {ctx.result_id} awards offer 0x{digest.hex()[:10]}, which the day's book "
                                       "does not hold", hint="the node's logs are incomplete: read them from another node")
        if offer.asset:
            out.append(AwardedOffer(offer, digest, by_offer[digest], str(assets.meter_of(offer.asset)), ctx.result_id))
            continue
        members = portfolio_members(ctx.deployment, offer)
        out.append(AwardedOffer(offer, digest, by_offer[digest], "", ctx.result_id, members))
    return out


def portfolio_members(deployment: Deployment, offer: Offer) -> tuple[Member, ...]:
    """The members whose meters a portfolio offer's delivery sums, with their meters: those
    DeliveryMeter counts (the portfolio's at the day's gate closure), in its order."""
    assets, meters = deployment.assets, deployment.delivery_meter
    return tuple((int(a), str(assets.meter_of(a))) for a in meters.members(offer.market, offer.portfolio, offer.start))


@dataclass(frozen=True)
class OfferOutcome:
    """What became of one awarded offer: ``settled`` now, ``settled earlier`` (by anyone),
    ``by default`` (settleUnrevealed), or left: ``no baseline`` (not the caller's, or no standard
    baseline anchored), ``no reading`` (none anchored for the meter, or a portfolio member's)."""

    offer: AwardedOffer
    status: str
    record: Record | None = None
    figures: tuple[AwardFigures, ...] = ()
    gas_used: int = 0
    reason: str = ""  # why it was left (a reading or a standard baseline missing from the oracle's store)


def _figures(ctx: DayContext, s_in: SettlementInput, net: list[int] | None) -> tuple[AwardFigures, ...]:
    cache: dict[int, Request] = {}

    def request(request_id: int) -> Request:
        if request_id not in cache:
            cache[request_id] = ctx.book.request(request_id)
        return cache[request_id]

    return tuple(recompute(s_in, net, ctx.params, request, cleared_price_of(ctx.clearing)))


def _earlier(ctx: DayContext, event: SettledEvent, separator: bytes,
            calls: dict[str, list[SettlingCall]]) -> tuple[AwardFigures, ...]:
    """The figures of a settlement made earlier, recomputed from its transaction's calldata
    (``calls``: the transactions decoded so far, a batch settles many offers)."""
    try:
        if event.tx_hash not in calls:
            calls[event.tx_hash] = ctx.calls(event.tx_hash, separator)
        call = call_for(calls[event.tx_hash], settled_key(event.record))
    except SettlementDataError:
        return ()  # shown without its delivered energy
    net = None if call.unrevealed else call.settle_in.net_wh()
    if call.corrects:
        return ()  # corrected by a dispute: the record shows the money
    return _figures(ctx, call.settle_in, net)


def settle_day(ctx: DayContext, signer: Signer, *, baselines: BaselineSource, reading: ReadingProof | None,
               standard: StandardBaselines | None = None, unrevealed: bool = False,
               progress: Callable[[int, int], None] | None = None) -> list[OfferOutcome]:
    """Settle every awarded offer of the day that can be: a COMMITTED baseline the caller holds
    (``baselines``), a ROLLING_AVERAGE one from the oracle's anchored values (``standard``), each
    ISP's reading proven by ``reading`` (the oracle's store); or, with ``unrevealed``, settle by
    default every offer nobody settled in the window. Every input is checked before the first
    transaction, so a bad baseline stops the run before any gas is spent."""
    now = ctx.conn.latest_timestamp()
    if not unrevealed and now >= ctx.closes_at:
        raise SettlementNotReadyError(f"the day's settlement window closed at {iso(ctx.closes_at)}",
                                      hint="offers nobody settled are settled by default with --unrevealed")
    if unrevealed and now < ctx.closes_at:
        raise SettlementNotReadyError(f"the day's settlement window is open until {iso(ctx.closes_at)}: sellers "
                                      "settle with their baselines until then", hint="settle --unrevealed after it")
    separator = ctx.book_separator
    existing = ctx.records()
    outcomes: list[OfferOutcome] = []
    calls: dict[str, list[SettlingCall]] = {}
    todo: list[tuple[AwardedOffer, SettleIn, list[int] | None]] = []
    for item in awarded_offers(ctx):
        if item.key in existing:
            event = existing[item.key]
            outcomes.append(OfferOutcome(item, "settled earlier", event.record, _earlier(ctx, event, separator, calls)))
        elif item.offer.portfolio and not item.members and not unrevealed:  # DeliveryMeter would refuse it
            outcomes.append(OfferOutcome(item, "no reading", reason=f"portfolio {item.offer.portfolio} had no member "
                                         "at the gate closure: no meter measures it (settled by default after the window)"))
        elif unrevealed:
            todo.append((item, settle_input_from(ctx.result_id, item.offer, item.digest, item.awards, None, item.meter,
                                                 None), None))
        else:
            try:
                s_in = _revealed_input(ctx, item, baselines, reading, standard)
            except (ProofError, BaselineError) as exc:  # this offer waits (or is settled by default), not the day
                outcomes.append(OfferOutcome(item, "no reading" if isinstance(exc, ProofError) else "no baseline",
                                             reason=exc.message))
                continue
            if s_in is None:
                outcomes.append(OfferOutcome(item, "no baseline"))
            else:
                todo.append((item, s_in, SettlementInput.from_struct(s_in, separator).net_wh()))
    settled = _send(ctx, signer, [s_in for _, s_in, _ in todo], unrevealed, progress)
    for (item, s_in, net), done in zip(todo, settled, strict=True):
        figures = _figures(ctx, SettlementInput.from_struct(s_in, separator), net)
        outcomes.append(OfferOutcome(item, "by default" if unrevealed else "settled", done.record,
                                     figures, done.gas_used))
    return sorted(outcomes, key=lambda o: o.offer.digest)


def _revealed_input(ctx: DayContext, item: AwardedOffer, baselines: BaselineSource, reading: ReadingProof | None,
                    standard: StandardBaselines | None) -> SettleIn | None:
    """The ``SettleIn`` of an offer settled with its baseline, or None when the caller has none."""
    offer = item.offer
    if offer.baseline_method == BaselineMethod.ROLLING_AVERAGE:
        if standard is None:
            return None
        anchored = settle_input_from(ctx.result_id, offer, item.digest, item.awards, None, item.meter, reading,
                                     standard=standard, members=item.members)
        # a correction put in force before settling (an upheld challenge, a dispute of another offer)
        # is what MeterOracle accepts now, not the leaf
        try:
            in_force = with_baselines_in_force(ctx.deployment,
                                               SettlementInput.from_struct(anchored, ctx.book_separator),
                                               ctx.params.isp_seconds)
        except NoBaselineLeftError as exc:
            raise BaselineError(exc.message, hint="settled by default after the window: nothing delivered counts "
                                "there, as the rules say for an offer without a baseline") from None
        return in_force.to_struct()
    baseline = baselines(offer)
    if baseline is None:
        return None
    if not reveal_matches(offer.baseline, offer.asset, offer.start, baseline.net_wh, baseline.salt):
        subject = f"asset {offer.asset}" if offer.asset else f"portfolio {offer.portfolio}"
        raise BaselineMismatchError(
            f"the baseline held for {subject} from {iso(offer.start)} is not the one offer "
            f"0x{item.digest.hex()[:10]} committed to (0x{offer.baseline.hex()})",
            hint="find the baseline file written when the offer was made; without it the offer is settled "
                 "by default after the window (`flexledger settle --unrevealed`)")
    return settle_input_from(ctx.result_id, offer, item.digest, item.awards, baseline, item.meter, reading,
                             members=item.members)


def _send(ctx: DayContext, signer: Signer, inputs: list[SettleIn], unrevealed: bool,
          progress: Callable[[int, int], None] | None) -> list[SettledOffer]:
    """Revealed settlements go in batches (``settleMany``: the cheapest per award); settling by
    default has no batch form, so one transaction each."""
    done = [0]

    def advanced(n: int) -> None:
        done[0] += n
        if progress:
            progress(done[0], len(inputs))

    if not inputs:
        return []
    if not unrevealed:
        return settle_offers(ctx.settlement, signer, inputs, progress=advanced)
    out = []
    for s_in in inputs:
        out.append(settle_offer(ctx.settlement, signer, s_in, unrevealed=True))
        advanced(1)
    return out


# ----------------------------------------------------------------------- finality and money



@dataclass(frozen=True)
class Finalised:
    record: Record
    claimed: int
    from_bond: int
    debt: int


def finalise_day(ctx: DayContext, signer: Signer) -> tuple[list[Finalised], list[Record]]:
    """Make final every settlement of the day whose dispute window is over (anyone may), those with a
    penalty the claim does not cover first; returns those finalised and those still in their window."""
    now = ctx.conn.latest_timestamp()
    due: list[Record] = []
    waiting: list[Record] = []
    for key, event in sorted(ctx.records().items()):
        if ctx.is_final(key):
            continue
        record = event.record
        (waiting if record.settled_at + ctx.params.dispute_window_seconds >= now else due).append(record)
    # Penalties first: a seller's claims finalised after its penalty in the same run repay the debt
    # the penalty left (the buyers are paid before the seller), whatever order the digests fall in.
    due.sort(key=lambda record: not any(line.uncovered for line in record.lines))
    txs = finalise_in_batches(ctx.settlement, signer, due)
    events = [e for tx in txs for e in tx.events if e.name == "SettlementFinalised"]  # one per record, in order
    done = [Finalised(record, int(e.args["claimed"]), int(e.args["fromBond"]), int(e.args["debt"]))
            for record, e in zip(due, events, strict=True)]
    return done, waiting


def dispute_ends(ctx: DayContext, record: Record) -> int:
    return record.settled_at + ctx.params.dispute_window_seconds


def refund_requests(ctx: DayContext, signer: Signer, buyer: str) -> tuple[list[tuple[int, int]], list[tuple[int, str]]]:
    """Refund ``buyer``'s requests of the day that are due: returns (request, amount) refunded and
    (request, why not) for the others."""
    book = read_book(ctx.book, ctx.market, ctx.day_start)
    refunded: list[tuple[int, int]] = []
    waiting: list[tuple[int, str]] = []
    now = ctx.conn.latest_timestamp()
    for request_id, info in sorted(book.requests.items()):
        if str(info["buyer"]).lower() != buyer.lower() or ctx.settlement.refunded(request_id):
            continue
        if now <= ctx.closes_at:
            waiting.append((request_id, f"the settlement window is open until {iso(ctx.closes_at)}"))
        elif ctx.settlement.pending_lines(request_id):
            waiting.append((request_id, "settlements of it are not final yet"))
        else:
            tx = ctx.settlement.refund(request_id, sender=signer)
            refunded.append((request_id, int(tx.event("Refunded").args["amount"])))
    return refunded, waiting


def withdraw_claims(settlement: SettlementClient, signer: Signer) -> int:
    """Withdraw what the caller may claim; 0 when there is nothing (no transaction then)."""
    if settlement.claimable(signer.address) == 0:
        return 0
    return int(settlement.withdraw(sender=signer).event("Withdrawn").args["amount"])


# --------------------------------------------------------------------------------- disputes


@dataclass(frozen=True)
class Disputed:
    before: Record
    after: Record
    isp_start: int
    signed: ReadingDisputesDisputeIn
    anchored: ReadingIn
    oracle: str
    asset: int  # whose meter's reading was corrected (a portfolio's member)
    equivocation: bool = False  # the meter signed the counted reading too: the ISP's delivery is void


def signed_readings(engine: Engine, meter: str, isp_start: int) -> list[StoredReading | ConflictingReading]:
    """Every reading of ``meter`` for the ISP the oracle's store keeps, the conflicting ones
    included (a reading the meter signed otherwise is in no root, but it is signed), newest first."""
    with session(engine) as s:
        mine = signed_readings_of(s, meter, isp_start)
        for r in mine:
            s.expunge(r)
    return sorted(mine, key=lambda r: r.sequence, reverse=True)


def disputable(ctx: DayContext, digest: bytes, isp_start: int) -> tuple[Record, SettlementInput, int]:
    """The record in force of offer ``digest``, the inputs that settle it now (the standard
    baselines in force: a baseline dispute's correction in place of the leaf it proved wrong)
    and the index of the ISP at ``isp_start`` among them; ``DisputeError`` when it cannot be disputed."""
    event = ctx.records().get((ctx.result_id, digest))
    if event is None:
        raise DisputeError(f"offer 0x{digest.hex()[:10]} has no settlement in result {ctx.result_id}",
                           hint="check the offer's digest and --day; an offer is disputed after it was settled")
    record = event.record
    if ctx.is_final(settled_key(record)):
        raise DisputeError(f"the settlement of offer 0x{digest.hex()[:10]} is final: it can no longer be disputed")
    ends = dispute_ends(ctx, record)
    if ctx.conn.latest_timestamp() >= ends:
        raise DisputeError(f"the dispute window of offer 0x{digest.hex()[:10]} ended at {iso(ends)}")
    call = call_for(ctx.calls(event.tx_hash), settled_key(record))
    index = next((i for i, isp in enumerate(call.settle_in.isps) if isp.isp_start == isp_start), None)
    if index is None:
        shown = ", ".join(iso(i.isp_start) for i in call.settle_in.isps)
        raise DisputeError(f"offer 0x{digest.hex()[:10]} was not settled for the ISP at {iso(isp_start)}",
                           hint=f"its settled ISPs: {shown}")
    if call.unrevealed:
        raise DisputeError(f"offer 0x{digest.hex()[:10]} was settled by default: no reading counted, none to dispute")
    try:
        s_in = with_baselines_in_force(ctx.deployment, call.settle_in, ctx.params.isp_seconds)
    except NoBaselineLeftError as exc:
        raise DisputeError(f"offer 0x{digest.hex()[:10]} cannot be disputed again: {exc.message}") from exc
    return record, s_in, index


def dispute_offer(ctx: DayContext, signer: Signer, digest: bytes, isp_start: int, engine: Engine, *,
                  member: int | None = None) -> Disputed:
    """Dispute the settlement of offer ``digest`` for the ISP at ``isp_start`` with the meter-signed
    reading the oracle's store keeps for it, when it differs from the anchored one. For a portfolio
    offer, the first member (or ``member``) whose meter signed otherwise."""
    record, s_in, index = disputable(ctx, digest, isp_start)
    readings = s_in.readings(index)
    candidates = [(a, r) for a, r in readings if not s_in.portfolio or member in (None, a)]
    if not candidates:
        raise DisputeError(f"asset {member} is not among the members of portfolio {s_in.offer.portfolio} counted "
                           f"for {iso(isp_start)}", hint="members: " + ", ".join(str(a) for a, _r in readings))
    assets = ctx.deployment.assets
    corrections = _corrections(ctx, settled_key(record))
    for asset, anchored in candidates:
        meter = str(assets.meter_of(asset))
        corrected = corrections.get((isp_start, asset))
        differing = [r for r in signed_readings(engine, meter, isp_start)
                     if (r.import_wh, r.export_wh) != (anchored.import_wh, anchored.export_wh)
                     and r.import_wh - r.export_wh != corrected]
        if differing:
            break
    else:
        if len(candidates) > 1:
            raise DisputeError(f"the oracle's store keeps no reading of the {len(candidates)} members' meters for "
                               f"{iso(isp_start)} other than the anchored ones (or those disputes already set): "
                               "they agree with the settlement",
                               hint="a dispute needs a reading a meter signed that differs from the anchored one")
        if corrected is not None:
            raise DisputeError(f"the ISP at {iso(isp_start)} of offer 0x{digest.hex()[:10]} was already corrected by "
                               "a dispute with the meter's reading; the oracle's store keeps no other")
        raise DisputeError(
            f"the oracle's store keeps no reading of meter {meter} for {iso(isp_start)} other than the anchored one "
            f"({anchored.import_wh} Wh in, {anchored.export_wh} Wh out): it agrees with the settlement",
            hint="a dispute needs a reading the meter signed that differs from the anchored one")
    row = differing[0]
    signed = ReadingDisputesDisputeIn(index, row.sequence, row.import_wh, row.export_wh, bytes(row.signature),
                                      asset if s_in.portfolio else 0)
    tx = ctx.disputes.dispute(s_in.to_struct(), record, signed, sender=signer)
    block = tx.block_number or ctx.conn.w3.eth.block_number
    after: Record = _logged(ctx.settlement, "OfferSettled", tx.tx_hash, block)["record"]
    equivocation = bool(_logged(ctx.disputes, "MeterEquivocated", tx.tx_hash, block, required=False))
    return Disputed(record, after, isp_start, signed, anchored, anchored.anchor.oracle, asset, equivocation)


def _logged(contract: SettlementClient | ReadingDisputesClient, name: str, tx_hash: str, block: int, *,
            required: bool = True) -> dict[str, Any]:
    """The ``name`` event ``contract`` logged in transaction ``tx_hash`` (a dispute goes to
    ReadingDisputes, whose call makes Settlement log the new record); empty if none and not ``required``."""
    found = [e for e in contract.events(name, from_block=block, to_block=block) if e.tx_hash == tx_hash]
    if not found:
        if required:
            raise DisputeError(f"the dispute {tx_hash} logged no {name}")
        return {}
    return dict(found[-1].args)


def _corrections(ctx: DayContext, key: tuple[int, bytes]) -> dict[tuple[int, int], int]:
    """The net consumption earlier disputes of a settlement set, by (ISP start, asset) (the
    contract keeps them: a new dispute with the same value would be refused)."""
    out: dict[tuple[int, int], int] = {}
    separator = ctx.book_separator
    for event in settled_events(ctx.settlement, result_id=key[0], digest=key[1]):
        call = call_for(ctx.calls(event.tx_hash, separator), key)
        if call.dispute is not None:
            d = call.dispute
            out[(call.settle_in.isps[d.isp].isp_start, call.settle_in.disputed(d)[0])] = d.import_wh - d.export_wh
    return out
