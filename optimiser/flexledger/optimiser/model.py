"""The clearing model of one component and one stage (pyomo), built apart from solving.

Variables: ``x[p]`` >= 0, the power (W) of eligible pair p = (offer, request, ISP), continuous or,
when the continuous optimum is not in whole watts, integer; per block offer one power ``b[o]`` its
pairs add up to in each of its ISPs; per MIN_QUANTITY or ALL_OR_NOTHING offer, and per offer that
shares an asset and an ISP with another, a binary ``y[o]``.
Constraints: each offer's power within its power and its mode (on the offer's total over DSO and
TSO awards), each request's power per ISP, each lit zone's TSO capability, at most one offer
awarded per asset and ISP, and in stage 2 the DSO welfare held at stage 1's optimum.
Objective: one stage's welfare, sum of x[p] * (request's maximum price - offer's price) over the
pairs of that stage's buyer kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression

from flexledger.rules.orders import Mode


@dataclass
class OfferSlot:
    """An offer as the model sees it: its power and what its mode asks."""

    index: int  # position in the component's offer list (the canonical order)
    isps: list[int]  # ISP starts
    block: bool
    cap_w: int  # most power it can take (per ISP)
    min_w: int  # least power if it takes any (0: no minimum); cap_w for ALL_OR_NOTHING
    mode: Mode
    price: int


@dataclass
class Pair:
    offer: int  # OfferSlot index
    request: int  # RequestSlot index
    isp: int
    margin: int  # request's max price - offer's price (>= 0)
    tso: bool  # the request is the TSO's (stage 2's welfare), else the DSO's (stage 1's)


@dataclass
class RequestSlot:
    index: int
    isps: list[int]
    power_w: int


@dataclass
class StageProblem:
    offers: list[OfferSlot]
    requests: list[RequestSlot]
    pairs: list[Pair]
    light_caps: list[tuple[list[int], int]] = field(default_factory=list)  # (TSO pair indexes, capability W)
    exclusive: list[list[int]] = field(default_factory=list)  # offers (indexes) of which at most one is awarded
    tso_objective: bool = False  # stage 2: maximise the TSO's welfare; stage 1: the DSO's
    # stage 2: per stage-1 component inside, its DSO pairs and the welfare (W x price, exact) they keep
    holds: list[tuple[list[int], int]] = field(default_factory=list)
    integer: bool = False  # whole watts as a constraint of the model
    # proven bounds that every solution worth having keeps (stage 2, from stage 1's LP: fixing.py),
    # by pair index (its power), offer index (its binary) and block offer index (its level)
    pair_bounds: dict[int, tuple[int, int]] = field(default_factory=dict)
    binary_bounds: dict[int, tuple[int, int]] = field(default_factory=dict)
    level_bounds: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass
class BuiltModel:
    model: pyo.ConcreteModel
    problem: StageProblem
    binaries: int
    constraints: int


def _sum(coefs: list[float], variables: list[pyo.Var]) -> LinearExpression:
    return LinearExpression(constant=0, linear_coefs=coefs, linear_vars=variables)


def build(problem: StageProblem) -> BuiltModel:
    m = pyo.ConcreteModel()
    pairs = problem.pairs
    ub = {i: min(problem.offers[p.offer].cap_w, problem.requests[p.request].power_w) for i, p in enumerate(pairs)}
    domain = pyo.NonNegativeIntegers if problem.integer else pyo.NonNegativeReals
    m.x = pyo.Var(range(len(pairs)), domain=domain, bounds=lambda _m, i: (0, ub[i]))
    m.cons = pyo.ConstraintList()
    by_offer_isp: dict[tuple[int, int], list[int]] = {}
    by_request_isp: dict[tuple[int, int], list[int]] = {}
    for i, p in enumerate(pairs):
        by_offer_isp.setdefault((p.offer, p.isp), []).append(i)
        by_request_isp.setdefault((p.request, p.isp), []).append(i)

    used = sorted({p.offer for p in pairs})
    shared = {o for group in problem.exclusive for o in group}
    binary_offers = [o for o in used if problem.offers[o].min_w > 0 or o in shared]
    m.y = pyo.Var(binary_offers, domain=pyo.Binary)
    block_offers = [o for o in used if problem.offers[o].block]
    m.b = pyo.Var(block_offers, domain=pyo.NonNegativeReals, bounds=lambda _m, o: (0, problem.offers[o].cap_w))
    for bounds, var in ((problem.pair_bounds, m.x), (problem.binary_bounds, m.y), (problem.level_bounds, m.b)):
        for k, (lo, hi) in bounds.items():
            if k in var:
                var[k].setlb(max(lo, var[k].lb))
                var[k].setub(min(hi, var[k].ub))

    for o in used:
        slot = problem.offers[o]
        quantities = []  # one expression per ISP: the offer's total over DSO and TSO awards
        for t in slot.isps:
            members = by_offer_isp.get((o, t), [])
            quantities.append(_sum([1.0] * len(members), [m.x[i] for i in members]))
        if slot.block:
            # the same power in each of its ISPs: an ISP without an eligible request forces 0
            for q in quantities:
                m.cons.add(q - m.b[o] == 0)
            level = m.b[o]
        else:
            level = quantities[0]
        if slot.min_w > 0:
            m.cons.add(level - slot.min_w * m.y[o] >= 0)
        if o in binary_offers:
            m.cons.add(level - slot.cap_w * m.y[o] <= 0)
        elif not slot.block:
            m.cons.add(level <= slot.cap_w)

    for (r, _t), members in by_request_isp.items():
        m.cons.add(_sum([1.0] * len(members), [m.x[i] for i in members]) <= problem.requests[r].power_w)
    for members, cap in problem.light_caps:
        m.cons.add(_sum([1.0] * len(members), [m.x[i] for i in members]) <= cap)
    binary_set = set(binary_offers)
    for group in problem.exclusive:
        awardable = [o for o in group if o in binary_set]
        if len(awardable) > 1:
            m.cons.add(_sum([1.0] * len(awardable), [m.y[o] for o in awardable]) <= 1)

    def welfare(chosen: list[int]) -> LinearExpression:
        chosen = [i for i in chosen if pairs[i].margin > 0]
        return _sum([float(pairs[i].margin) for i in chosen], [m.x[i] for i in chosen])

    for members, hold in problem.holds:
        # Continuous powers: held at stage 1's optimum itself, not a unit below, so that stage 2's
        # feasible set is a face of stage 1's (its optimal face), whose vertices are vertices of
        # stage 1's model and so in whole watts as often as stage 1's are; a slack would open
        # fractional vertices that trade a fraction of a unit of DSO welfare for TSO welfare.
        # Integer powers: DSO welfare is then an integer, so half a unit below holds it exactly and
        # leaves HiGHS's feasibility tolerance room. The caller checks the exact value either way.
        if hold > 0:
            m.cons.add(welfare(members) >= (hold - 0.5 if problem.integer else hold))
    objective = [i for i, p in enumerate(pairs) if p.tso is problem.tso_objective]
    m.welfare = pyo.Objective(expr=welfare(objective), sense=pyo.maximize)
    return BuiltModel(m, problem, len(binary_offers), len(m.cons))

