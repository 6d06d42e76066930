"""The demo's own check of its settlement, independent of the contract and of the auditor.

Each settled offer's lines are recomputed from its inputs with ``flexledger.rules.settlement``
(the baseline revealed, the net consumption the settlement counted, the award's price and the
request's terms), and every party's token balance change after finality, refunds and
withdrawals is predicted from the records alone and compared with the chain, to the base unit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from flexledger.chain.bindings import OrderBookClient
from flexledger.chain.structs import Line, Record, SettleIn
from flexledger.rules.lights import Direction
from flexledger.rules.market import MarketParams, PricingRule
from flexledger.rules.orders import Product
from flexledger.rules.settlement import AwardIsp, AwardIspSettlement, bond_draw, settle_award_isp

ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class RequestTerms:
    buyer: str
    product: int
    max_price: int
    escrow: int  # what the request held before anything was settled


def request_terms(book: OrderBookClient, request_id: int) -> RequestTerms:
    request = book.request(request_id)
    return RequestTerms(request.buyer, request.product, request.max_price, int(book.escrow_left(request_id)))


def expected_lines(settle_in: SettleIn, net_wh: Sequence[int], params: MarketParams,
                   terms: Mapping[int, RequestTerms]) -> list[tuple[Line, AwardIspSettlement]]:
    """The lines ``settle_in`` must produce when each ISP's net consumption is ``net_wh``, with the
    figures behind each (the demo's market pays as bid: each award at its offer's price)."""
    if params.pricing_rule is not PricingRule.PAY_AS_BID:
        raise ValueError("the demo's check prices awards as bid")
    offer, baseline = settle_in.offer, settle_in.baseline_wh
    out = []
    for isp, net in zip(settle_in.isps, net_wh, strict=True):
        for a in isp.awards:
            q = terms[a.request_id]
            f = settle_award_isp(AwardIsp(a.power_w, offer.price, q.max_price, Product(q.product),
                                          Direction(offer.direction), baseline[(a.isp_start - offer.start)
                                                                               // params.isp_seconds], net, a.level_w),
                                 params, 0)
            out.append((Line(a.request_id, a.isp_start, f.payment, f.claim, f.penalty - f.from_payment), f))
    return out


@dataclass
class Moves:
    """Every token balance change the day's final records, refunds and withdrawals must make."""

    balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # by address
    bonds: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # bond changes, by seller
    claimed_by: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # each seller's claims
    drawn_for: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # penalties from bonds, by buyer
    claims: int = 0  # paid to sellers
    drawn: int = 0  # penalties drawn from bonds for buyers
    debts: int = 0  # penalties no bond covered (owed, not paid)


def expected_moves(records: Sequence[Record], terms: Mapping[int, RequestTerms], bonds: Mapping[str, int],
                   book: str) -> Moves:
    """The moves of finalising ``records`` in this order (each draw from a seller's bond sees what
    the earlier ones left), refunding every request of ``terms`` and withdrawing every claim. The
    settlement contract only passes claims and draws through: it moves nothing in the end."""
    m = Moves()
    left = dict(bonds)
    claimed: dict[int, int] = defaultdict(int)  # by request: what its escrow paid out to sellers
    for record in records:
        seller = record.seller
        for line in record.lines:
            request_id, claim, uncovered = line.request_id, line.claim, line.uncovered
            drawn = bond_draw(uncovered, left.get(seller, 0))
            left[seller] = left.get(seller, 0) - drawn
            claimed[request_id] += claim
            m.balances[seller] += claim
            m.balances[terms[request_id].buyer] += drawn
            m.claimed_by[seller] += claim
            m.drawn_for[terms[request_id].buyer] += drawn
            m.bonds[seller] -= drawn
            m.claims += claim
            m.drawn += drawn
            m.debts += uncovered - drawn
    for request_id, q in terms.items():
        m.balances[q.buyer] += q.escrow - claimed[request_id]  # the refund: all the escrow did not pay out
        m.balances[book] -= q.escrow
    m.balances[book] -= m.drawn
    return m


def flows(transfers: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """Each address's net change from ``(from, to, amount)`` movements (an ERC-20's Transfer events:
    OpenZeppelin's token changes a balance only with one)."""
    out: dict[str, int] = defaultdict(int)
    for sender, receiver, amount in transfers:
        out[sender] -= amount
        out[receiver] += amount
    out.pop(ZERO, None)  # mints and burns: the demo's settlement makes none, and the check below says so
    return dict(out)


def differences(expected: Moves, moved: Mapping[str, int], drawn: Mapping[str, int]) -> list[str]:
    """Where the token moved (``moved``: net per address) or bonds were drawn (``drawn``: per
    seller) otherwise than ``expected`` says."""
    out = []
    for who in sorted(set(moved) | set(expected.balances)):
        if moved.get(who, 0) != expected.balances.get(who, 0):
            out.append(f"{who}: balance moved {moved.get(who, 0)}, expected {expected.balances.get(who, 0)}")
    for seller in sorted(set(drawn) | set(expected.bonds)):
        if -drawn.get(seller, 0) != expected.bonds.get(seller, 0):
            out.append(f"{seller}: bond drawn {drawn.get(seller, 0)}, expected {-expected.bonds.get(seller, 0)}")
    if sum(moved.values()) != 0:
        out.append("the token's movements do not add up to zero: money was created or destroyed")
    return out
