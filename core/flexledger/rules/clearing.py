"""Whether a clearing result is feasible under rules 1-3 and the utilisation modes: what the
commitment contract, the auditor and the property tests check, written once.

:func:`violations` takes the book and the result and names every award that breaks a rule.
It does not judge optimality (that is the challenge's job): only feasibility.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Protocol

from flexledger.rules.grid import path_to_root
from flexledger.rules.lights import Colour, Direction, Light
from flexledger.rules.orders import Mode


class OfferLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def zone(self) -> int: ...
    @property
    def start(self) -> int: ...
    @property
    def isps(self) -> int: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def power_w(self) -> int: ...
    @property
    def price(self) -> int: ...
    @property
    def mode(self) -> Mode: ...
    @property
    def min_power_w(self) -> int: ...
    @property
    def assets(self) -> tuple[int, ...]: ...  # whose meters deliver it (a portfolio offer: its members)


class RequestLike(Protocol):
    @property
    def request_id(self) -> int: ...
    @property
    def kind(self) -> int: ...  # 0 DSO, 1 TSO
    @property
    def zone(self) -> int: ...
    @property
    def start(self) -> int: ...
    @property
    def isps(self) -> int: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def power_w(self) -> int: ...
    @property
    def max_price(self) -> int: ...


class AwardLike(Protocol):
    @property
    def request_id(self) -> int: ...
    @property
    def isp_start(self) -> int: ...
    @property
    def offer_key(self) -> str: ...
    @property
    def power_w(self) -> int: ...
    @property
    def price(self) -> int: ...


TSO = 1


def violations(
    offers: Iterable[OfferLike],
    requests: Iterable[RequestLike],
    awards: Iterable[AwardLike],
    *,
    parent: Mapping[int, int],
    lights: Mapping[tuple[int, int, Direction], Light],
    isp_seconds: int,
) -> list[str]:
    """Every rule an award set breaks, one line each (empty when it is feasible)."""
    offer_by = {o.key: o for o in offers}
    request_by = {r.request_id: r for r in requests}
    problems: list[str] = []
    per_offer: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    per_request: dict[tuple[int, int], int] = defaultdict(int)
    tso_in_zone: dict[tuple[int, int, Direction], int] = defaultdict(int)
    for a in awards:
        o, r = offer_by.get(a.offer_key), request_by.get(a.request_id)
        where = f"award (request {a.request_id}, ISP {a.isp_start}, offer {a.offer_key[:10]})"
        if o is None or r is None:
            problems.append(f"{where}: unknown {'offer' if o is None else 'request'}")
            continue
        if a.power_w <= 0:
            problems.append(f"{where}: power {a.power_w} W is not positive")
        if o.direction != r.direction:
            problems.append(f"{where}: directions differ")
        offer_isps = range(o.start, o.start + o.isps * isp_seconds, isp_seconds)
        request_isps = range(r.start, r.start + r.isps * isp_seconds, isp_seconds)
        if a.isp_start not in offer_isps or a.isp_start not in request_isps:
            problems.append(f"{where}: the ISP is outside the offer's or the request's window")
        path = path_to_root(parent, o.zone)
        if r.zone not in path:
            problems.append(f"{where}: offer zone {o.zone} is not in request zone {r.zone}'s subtree")
        if o.price > r.max_price:
            problems.append(f"{where}: offer price {o.price} is above the maximum price {r.max_price}")
        if not o.price <= a.price <= r.max_price:
            problems.append(f"{where}: price {a.price} is outside [{o.price}, {r.max_price}]")
        per_offer[o.key][a.isp_start] += a.power_w
        per_request[(r.request_id, a.isp_start)] += a.power_w
        if r.kind == TSO:
            for zone in path:
                tso_in_zone[(zone, a.isp_start, o.direction)] += a.power_w
    # one meter is sold once per ISP: offers sharing an asset are never both awarded in an ISP
    sellers: dict[tuple[int, int], set[str]] = defaultdict(set)
    for key, by_isp in per_offer.items():
        for asset in offer_by[key].assets:
            for t in by_isp:
                sellers[(asset, t)].add(key)
    for (asset, t), keys in sorted(sellers.items()):
        if len(keys) > 1:
            problems.append(f"asset {asset}: offers {', '.join(k[:10] for k in sorted(keys))} are all awarded at ISP {t}: "
                            "one meter sold twice")
    for key, by_isp in per_offer.items():
        o = offer_by[key]
        levels = set(by_isp.values())
        if max(levels) > o.power_w:
            problems.append(f"offer {key[:10]}: {max(levels)} W awarded, more than its {o.power_w} W")
        if o.isps > 1 and (len(by_isp) != o.isps or len(levels) != 1):
            problems.append(f"offer {key[:10]}: a block must get the same power in each of its {o.isps} ISPs")
        for level in levels:
            if o.mode is Mode.MIN_QUANTITY and level < o.min_power_w:
                problems.append(f"offer {key[:10]}: {level} W is below its minimum {o.min_power_w} W")
            if o.mode is Mode.ALL_OR_NOTHING and level != o.power_w:
                problems.append(f"offer {key[:10]}: all or nothing, but {level} of {o.power_w} W awarded")
    for (request_id, t), total in per_request.items():
        if total > request_by[request_id].power_w:
            problems.append(f"request {request_id}: {total} W at ISP {t}, more than its {request_by[request_id].power_w} W")
    for (zone, t, d), total in tso_in_zone.items():
        light = lights.get((zone, t, d))
        if light is None or light.colour is Colour.GREEN:
            continue
        cap = 0 if light.colour is Colour.RED else light.capability_w
        if total > cap:
            problems.append(f"zone {zone}: TSO awards of {total} W at ISP {t} {d.name} exceed its {light}")
    return problems


def stage_welfare(
    offers: Iterable[OfferLike], requests: Iterable[RequestLike], awards: Iterable[AwardLike],
) -> tuple[int, int]:
    """(DSO, TSO) welfare of an award set as ``ClearingCommitment`` adds it up: the sum over awards
    of W x (request's maximum price - offer's price), exact, per buyer kind. What the award is
    paid does not enter: welfare is valued at the buyer's maximum and the seller's offer price."""
    price = {o.key: o.price for o in offers}
    value = {r.request_id: (r.max_price, r.kind == TSO) for r in requests}
    dso = tso = 0
    for a in awards:
        max_price, is_tso = value[a.request_id]
        margin = a.power_w * (max_price - price[a.offer_key])
        if is_tso:
            tso += margin
        else:
            dso += margin
    return dso, tso


def ranks_higher(a: tuple[int, int], b: tuple[int, int]) -> bool:
    """The chain's ranking of two results by their (DSO, TSO) welfare: more DSO welfare, or the
    same DSO welfare and more TSO welfare (rule 2: the DSO stage comes first). A challenge must
    rank strictly higher; results of equal welfare rank the same."""
    return a > b
