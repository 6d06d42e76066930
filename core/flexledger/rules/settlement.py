"""Settlement arithmetic (DESIGN.md rules 7-9): what one award pays, costs and moves per ISP.

This docstring is the reference the Settlement contract's NatSpec points to; the contract computes
the same figures, in the same order, with the same roundings. Everything is an integer.

Units: power W, energy Wh, time s, price token base units per MWh, money token base units.
1 MWh = 3,600,000,000 W*s (``WS_PER_MWH``). All energy is carried in W*s until the one division
that turns it into money, so nothing is rounded before the end.

Inputs of one award and ISP (:class:`AwardIsp`) and their bounds (a value outside them is rejected
with a ``ValueError`` naming the field; the contract reverts):

- ``power_w`` P: the awarded power, ``0 <= P <= 2^32 - 1`` (uint32).
- ``isp_seconds`` T: the market's ISP length, ``1 <= T <= 86,400`` and ``86,400 % T == 0``.
- ``price`` p: the award's price, ``max_price`` m: the request's maximum price,
  ``0 <= p <= m <= 2^128 - 1`` (uint128).
- ``product``: ``ACTIVATION`` (energy) or ``AVAILABILITY`` (capacity held).
- ``direction``: ``UP`` (sign s = +1: less consumption than the baseline is delivery) or ``DOWN``
  (s = -1: more consumption is delivery).
- ``baseline_wh`` B and ``measured_wh`` M: net consumption (import - export, Wh) expected without
  activation and measured (the meter's anchored reading), both int64; ``level_w`` L: the offer's
  power in the ISP over all its awards (an offer split between requests has several awards in one
  ISP; the clearing commitment's award leaves carry L), ``P <= L <= 2^32 - 1``. A reading whose
  ``importWh - exportWh`` falls outside int64 cannot be settled (:func:`net_consumption`).
- ``tolerance_bps``, ``0 <= tol <= 10,000``, and ``penalty_factor_bps``, ``0 <= f <= 100,000``:
  the market's (MarketParams).
- ``bond_available``: what is left of the seller's bond when this award-ISP is settled, uint256.

Figures of one award-ISP (:func:`settle_award_isp`), computed in this order; ``/`` is integer
division rounding down (Solidity's ``/`` on uint256), products are taken left to right::

    1  awarded_ws   = P * T
    2  delivered_ws = max(0, s * (B - M)) * 3600 * P / L    the offer's delivery in the ISP, shared
                                                            out among its awards there by power
    3  paid_ws      = min(delivered_ws, awarded_ws)      ACTIVATION: over-delivery is not paid
                    = awarded_ws                         AVAILABILITY: capacity held is paid
    4  payment      = paid_ws * p / 3,600,000,000
    5  reserved     = awarded_ws * m / 3,600,000,000
    6  shortfall_ws = awarded_ws - min(delivered_ws, awarded_ws)    ACTIVATION
                    = 0                                             AVAILABILITY: no penalty
    7  tolerance_ws = awarded_ws * tol / 10,000
    8  penalised_ws = max(0, shortfall_ws - tolerance_ws)
    9  penalty      = penalised_ws * p * f / 36,000,000,000,000       (= 3.6e9 * 10,000)
    10 from_payment = min(payment, penalty)        the penalty withheld from the payment
       claim        = payment - from_payment       what the seller may withdraw (pull)
       from_bond    = min(penalty - from_payment, bond_available)
       debt         = penalty - from_payment - from_bond   owed to the buyer (Settlement.owedTo): the
                                                       seller sells nothing until it is paid; its later
                                                       claims pay it first (at finalisation, before
                                                       they are credited), held for the buyer to collect

Roundings, and why none of them creates money:

- ``payment`` and ``reserved`` round down: a seller is never paid more than the energy is worth,
  and what an award-ISP may take from the escrow never exceeds its share of it.
- ``penalty`` rounds down once, after both multiplications (not per factor), so it is the exact
  floor of ``penalised energy x price x factor``. ``tolerance_ws`` rounds down, so the tolerance
  never covers more than ``tol`` of the award (the penalised energy is at most 1 W*s more than
  the exact figure). A penalty moves money from the seller to the buyer; it is never minted.
- The escrow (OrderBook, :func:`flexledger.rules.orders.max_exposure`) rounds up over the whole
  request. The rest of every rounding stays with the buyer as part of the refund.

Escrow bound (why payments never exceed the escrow): every award-ISP of a request pays at most
its ``reserved`` (``p <= m``), and for any set of award-ISPs whose powers in each ISP add up to at
most the request's power Pr over its ``n`` ISPs, ``sum(floor(P_i*T*m / D)) <= floor(sum(P_i*T*m) /
D) <= floor(Pr*n*T*m / D) <= ceil(Pr*n*T*m / D) = escrow`` (a sum of floors is at most the floor
of the sum). So the refund below is never negative.

Reading of DESIGN rule 7: only the shortfall *beyond* the tolerance is penalised (a 10 %
shortfall under a 5 % tolerance is penalised for 5 %), and the penalty uses the award's price p.
An ``AVAILABILITY`` award is paid for the capacity held, whatever was activated, and carries no
shortfall penalty (its delivered energy is still computed, for the record).

The request as a whole (:func:`request_refund`, :func:`money_moves`): the buyer gets back
``escrow - sum(payment) + sum(from_payment + from_bond)`` (the penalties actually collected; a
debt is not money and is not refunded). Money is conserved: ``escrow + sum(from_bond) =
sum(claim) + refund``. A seller's bond is drawn in the order the award-ISPs are settled, each
draw seeing what the earlier ones left (:func:`settle_in_order`).

Overflow bound (uint256 is enough for every intermediate, no ``mulDiv`` needed):
``awarded_ws <= (2^32-1) * 86,400 < 2^49``; ``|B - M| <= 2^64 - 1`` (computed in int256), so
``delivered_ws < 2^76``; ``paid_ws, shortfall_ws, penalised_ws <= awarded_ws < 2^49``;
``paid_ws * p < 2^177``; ``awarded_ws * m < 2^177``; ``awarded_ws * tol < 2^63``;
``penalised_ws * p * f < 2^49 * 2^128 * 2^17 = 2^194``. A request's escrow is below ``2^177 /
3.6e9`` (its ISPs lie within one market day), so sums over a request stay far below 2^256.

Worked examples (the tests check each; tol = 500 bps, f = 15,000 bps unless said):

A. ACTIVATION UP, short of the award beyond the tolerance. P = 100,000 W, T = 900 s,
   p = 50,000,000, m = 80,000,000, B = 40,000 Wh, M = 20,000 Wh.
   awarded_ws = 90,000,000 (25 kWh); delivered_ws = 20,000 * 3600 = 72,000,000 (20 kWh);
   paid_ws = 72,000,000; payment = 72,000,000 * 50,000,000 / 3.6e9 = 1,000,000;
   reserved = 90,000,000 * 80,000,000 / 3.6e9 = 2,000,000; shortfall_ws = 18,000,000;
   tolerance_ws = 90,000,000 * 500 / 10,000 = 4,500,000; penalised_ws = 13,500,000;
   penalty = 13,500,000 * 50,000,000 * 15,000 / 3.6e13 = 281,250; claim = 718,750.
   Alone in a request of 100,000 W for one ISP at m: escrow = 2,000,000, refund = 2,000,000 -
   1,000,000 + 281,250 = 1,281,250 = escrow - claim.
B. ACTIVATION DOWN, nothing delivered, the bond short (tol = 1,000 bps, f = 20,000 bps).
   P = 10,000 W, T = 900 s, p = m = 100,000,000, B = 1,000 Wh, M = 800 Wh (consumed less: the
   wrong way), bond_available = 300,000. awarded_ws = 9,000,000; delivered_ws = 0; payment = 0;
   reserved = 250,000; shortfall_ws = 9,000,000; tolerance_ws = 900,000; penalised_ws =
   8,100,000; penalty = 8,100,000 * 100,000,000 * 20,000 / 3.6e13 = 450,000; claim = 0;
   from_bond = 300,000; debt = 150,000. Alone in a one-ISP request of 10,000 W at m: escrow = 250,000,
   refund = 250,000 - 0 + 300,000 = 550,000 (the bond's 300,000 goes to the buyer).
C. ACTIVATION UP, over-delivery. P = 1,000 W, T = 900 s, p = m = 36,000,000, B = 1,000 Wh,
   M = 0 Wh. awarded_ws = 900,000 (250 Wh); delivered_ws = 3,600,000 (1 kWh); paid_ws = 900,000;
   payment = 9,000; penalty = 0; claim = 9,000 (the extra 750 Wh earn nothing).
D. AVAILABILITY, nothing activated. P = 1,000 W, T = 3,600 s, p = m = 7,200,000, B = M = 0.
   awarded_ws = paid_ws = 3,600,000; payment = 7,200; shortfall_ws = 0; penalty = 0;
   claim = 7,200.
E. The smallest amounts. P = 4 W, T = 900 s (1 Wh), p = m = 1, UP, B = 0, M = -1 (1 Wh exported).
   delivered_ws = 3,600; payment = 3,600 / 3.6e9 = 0; reserved = 0; penalty = 0. The request's
   escrow is ceil(3,600 / 3.6e9) = 1 and all of it goes back to the buyer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from flexledger.rules.lights import Direction
from flexledger.rules.market import DAY, MarketParams
from flexledger.rules.orders import SECONDS_PER_MWH_UNIT, UINT128_MAX, Product

WS_PER_MWH = SECONDS_PER_MWH_UNIT  # W*s in a MWh
WS_PER_WH = 3600
BPS = 10_000
PENALTY_DIVISOR = WS_PER_MWH * BPS  # one division for both the MWh and the basis points
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT256_MAX = 2**256 - 1
MAX_TOLERANCE_BPS = 10_000
MAX_PENALTY_FACTOR_BPS = 100_000  # MarketRegistry.MAX_PENALTY_FACTOR_BPS


def _check(field: str, value: int, low: int, high: int) -> None:
    # A float or a str would silently turn the arithmetic inexact or fail far from its cause.
    if not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{field} must be an integer in [{low}, {high}], not {value!r}")


def check_market(market: MarketParams) -> None:
    """Reject market parameters the registry would not have accepted (the bounds above rely on them)."""
    _check("isp_seconds", market.isp_seconds, 1, DAY)
    if DAY % market.isp_seconds:
        raise ValueError(f"isp_seconds must divide {DAY}, not {market.isp_seconds}")
    _check("tolerance_bps", market.tolerance_bps, 0, MAX_TOLERANCE_BPS)
    _check("penalty_factor_bps", market.penalty_factor_bps, 0, MAX_PENALTY_FACTOR_BPS)


def net_consumption(import_wh: int, export_wh: int) -> int:
    """M from a meter reading (uint64 import and export): rejected when it does not fit int64, since
    the baseline it is compared with is int64 and the overflow bound assumes both are."""
    _check("import_wh", import_wh, 0, UINT64_MAX)
    _check("export_wh", export_wh, 0, UINT64_MAX)
    net = import_wh - export_wh
    _check("measured_wh", net, INT64_MIN, INT64_MAX)
    return net


@dataclass(frozen=True)
class AwardIsp:
    """One award in one ISP, with what the meter and the baseline say about it."""

    power_w: int
    price: int
    max_price: int
    product: Product
    direction: Direction
    baseline_wh: int
    measured_wh: int
    level_w: int = 0  # the offer's power in the ISP over all its awards; 0: this award alone

    def __post_init__(self) -> None:
        _check("power_w", self.power_w, 0, UINT32_MAX)
        if self.level_w:
            _check("level_w", self.level_w, self.power_w, UINT32_MAX)
        _check("max_price", self.max_price, 0, UINT128_MAX)
        _check("price", self.price, 0, self.max_price)  # eligibility (rule 3) keeps p <= m
        _check("product", self.product, 0, len(Product) - 1)
        _check("direction", self.direction, 0, len(Direction) - 1)
        _check("baseline_wh", self.baseline_wh, INT64_MIN, INT64_MAX)
        _check("measured_wh", self.measured_wh, INT64_MIN, INT64_MAX)
        # Plain ints from the chain become the enums, so comparisons below read as the rules do.
        object.__setattr__(self, "product", Product(self.product))
        object.__setattr__(self, "direction", Direction(self.direction))


@dataclass(frozen=True)
class AwardIspSettlement:
    """Every figure of one settled award-ISP (the module docstring defines each, steps 1-10).

    ``payment = claim + from_payment`` and ``penalty = from_payment + from_bond + debt`` hold."""

    awarded_ws: int
    delivered_ws: int
    paid_ws: int
    payment: int
    reserved: int
    shortfall_ws: int
    tolerance_ws: int
    penalised_ws: int
    penalty: int
    claim: int
    from_payment: int
    from_bond: int
    debt: int

    @property
    def collected(self) -> int:
        """The penalty the buyer actually receives (a debt is owed, not paid)."""
        return self.from_payment + self.from_bond


def direction_sign(direction: Direction) -> int:
    return 1 if direction is Direction.UP else -1


def awarded_ws(power_w: int, isp_seconds: int) -> int:
    return power_w * isp_seconds


def delivered_ws(direction: Direction, baseline_wh: int, measured_wh: int) -> int:
    # The meter counts whole Wh, so delivery is a multiple of 3600 W*s; scaling before any
    # comparison with the award keeps a sub-Wh award (a few W) comparable without rounding.
    return max(0, direction_sign(direction) * (baseline_wh - measured_wh)) * WS_PER_WH


def share_ws(delivered: int, power_w: int, level_w: int) -> int:
    """This award's share of the offer's delivery in the ISP (step 2b), in proportion to its power
    among the offer's awards there, rounded down (the shares never add up to more)."""
    if power_w == level_w:  # the offer's only award in the ISP takes all of it (also a 0 W award)
        return delivered
    return delivered * power_w // level_w


def paid_ws(product: Product, delivered: int, awarded: int) -> int:
    return awarded if product is Product.AVAILABILITY else min(delivered, awarded)


def to_money(energy_ws: int, price: int) -> int:
    """Energy at a price, rounded down (steps 4 and 5)."""
    return energy_ws * price // WS_PER_MWH


def shortfall_ws(product: Product, delivered: int, awarded: int) -> int:
    return 0 if product is Product.AVAILABILITY else awarded - min(delivered, awarded)


def tolerance_ws(awarded: int, tolerance_bps: int) -> int:
    return awarded * tolerance_bps // BPS


def penalised_ws(shortfall: int, tolerance: int) -> int:
    return max(0, shortfall - tolerance)


def penalty(penalised: int, price: int, penalty_factor_bps: int) -> int:
    # One division after both products: dividing by 3.6e9 first would floor twice and lose up
    # to a whole factor's worth of base units.
    return penalised * price * penalty_factor_bps // PENALTY_DIVISOR


def bond_draw(uncovered: int, bond_available: int) -> int:
    """What the seller's bond pays of a penalty its payment did not cover (the rest is a debt)."""
    return min(uncovered, bond_available)


def split_penalty(payment: int, penalty: int, bond_available: int) -> tuple[int, int, int, int]:
    """``(claim, from_payment, from_bond, debt)``: the penalty comes out of the payment first, then
    out of the bond; what the bond cannot cover is a debt, so the buyer never receives money that
    no one paid."""
    from_payment = min(payment, penalty)
    from_bond = bond_draw(penalty - from_payment, bond_available)
    return payment - from_payment, from_payment, from_bond, penalty - from_payment - from_bond


def settle_award_isp(award: AwardIsp, market: MarketParams, bond_available: int) -> AwardIspSettlement:
    """Settle one award in one ISP (steps 1-10 of the module docstring)."""
    check_market(market)
    _check("bond_available", bond_available, 0, UINT256_MAX)
    awarded = awarded_ws(award.power_w, market.isp_seconds)
    delivered = share_ws(delivered_ws(award.direction, award.baseline_wh, award.measured_wh), award.power_w,
                         award.level_w or award.power_w)
    paid = paid_ws(award.product, delivered, awarded)
    payment = to_money(paid, award.price)
    shortfall = shortfall_ws(award.product, delivered, awarded)
    tolerance = tolerance_ws(awarded, market.tolerance_bps)
    penalised = penalised_ws(shortfall, tolerance)
    owed = penalty(penalised, award.price, market.penalty_factor_bps)
    claim, from_payment, from_bond, debt = split_penalty(payment, owed, bond_available)
    return AwardIspSettlement(
        awarded_ws=awarded, delivered_ws=delivered, paid_ws=paid, payment=payment,
        reserved=to_money(awarded, award.max_price), shortfall_ws=shortfall, tolerance_ws=tolerance,
        penalised_ws=penalised, penalty=owed, claim=claim, from_payment=from_payment,
        from_bond=from_bond, debt=debt,
    )


def settle_in_order(
    awards: Sequence[tuple[str, AwardIsp]], market: MarketParams, bonds: Mapping[str, int]
) -> tuple[list[tuple[str, AwardIspSettlement]], dict[str, int]]:
    """Settle ``(seller, award-ISP)`` pairs in the given order (the contract's), each drawing on what
    the seller's earlier draws left of its bond; returns the settlements and the bonds left.
    A seller missing from ``bonds`` has none."""
    left = dict(bonds)
    settled: list[tuple[str, AwardIspSettlement]] = []
    for seller, award in awards:
        s = settle_award_isp(award, market, left.get(seller, 0))
        left[seller] = left.get(seller, 0) - s.from_bond
        settled.append((seller, s))
    return settled, left


def request_refund(escrow: int, settlements: Iterable[AwardIspSettlement]) -> int:
    """What the buyer gets back when the whole request is settled: the escrow less the payments,
    plus the penalties collected. A negative result means the award set was infeasible for the
    request (the escrow bound in the module docstring), so it is rejected rather than returned."""
    _check("escrow", escrow, 0, UINT256_MAX)
    items = list(settlements)
    paid = sum(s.payment for s in items)
    if paid > escrow:
        raise ValueError(f"settlements pay {paid}, more than the escrow {escrow}")
    return escrow - paid + sum(s.collected for s in items)


@dataclass(frozen=True)
class MoneyMoves:
    """Every balance change the settlement of one request makes, for the auditor.

    ``escrow`` is the request's escrow account (it empties: ``-escrow``), ``buyer`` the refund,
    ``sellers`` each seller's claims, ``bonds`` each seller's bond change (draws, so <= 0). They sum
    to zero (:meth:`net`). ``debts`` are recorded against sellers and move no money."""

    escrow: int
    buyer: int
    sellers: Mapping[str, int]
    bonds: Mapping[str, int]
    debts: Mapping[str, int]

    def net(self) -> int:
        return self.escrow + self.buyer + sum(self.sellers.values()) + sum(self.bonds.values())


def money_moves(escrow: int, settled: Sequence[tuple[str, AwardIspSettlement]]) -> MoneyMoves:
    """The balance changes of settling one request whose award-ISPs were settled as ``settled``."""
    sellers: dict[str, int] = {}
    bonds: dict[str, int] = {}
    debts: dict[str, int] = {}
    for seller, s in settled:
        sellers[seller] = sellers.get(seller, 0) + s.claim
        bonds[seller] = bonds.get(seller, 0) - s.from_bond
        debts[seller] = debts.get(seller, 0) + s.debt
    refund = request_refund(escrow, (s for _, s in settled))
    return MoneyMoves(escrow=-escrow, buyer=refund, sellers=sellers, bonds=bonds, debts=debts)
