"""A market day's clearing input, read from the chain alone: the book from OrderBook's events
(checked against its digest), the zone tree from GridZones' events, the lights in force from
GridZones, each offer's zone from AssetRegistry, each request's buyer kind (DSO or TSO, fixed when it was
posted) from OrderBook. Sellers and their assets' mappings are judged as of the day's gate closure,
as ClearingCommitment judges them: an asset's own offer is left out when the asset was then in a
portfolio (whose delivery counts its meter), not ACTIVE or prequalified for less than the offer's
power, or is deregistered; its zone is the one it was mapped to then; a portfolio's offer is left
out when its aggregator did not then hold the AGGREGATOR role, or when its members then that were
then ACTIVE were prequalified for less than the offer's power, summed (``portfolio_power``). An
offer the commitment would refuse is left out whole, never capped: the contract judges the offer's
signed power, so no award of it could commit. An offer outside its asset's (or portfolio's) market
for its window is left out too: the book never accepts one. ``MarketDay.refused`` names, per offer
left out for the gate closure, the error the commitment would revert with (the auditor quotes it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flexledger.book.order_book import Book, read_book
from flexledger.chain.bindings import AssetRegistryClient, RoleRegistryClient
from flexledger.deployment import Deployment
from flexledger.identity.roles import Role
from flexledger.optimiser import BuyerKind, ClearingInput, OfferIn, RequestIn
from flexledger.rules.grid import path_to_root
from flexledger.rules.lights import Colour, Direction, Light
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import Mode, asset_zone, closure_problem, portfolio_closure_problem


@dataclass
class MarketDay:
    market: int
    day_start: int
    params: MarketParams
    book: Book
    clearing: ClearingInput
    # offer key ("0x" + digest): the error ClearingCommitment refuses it with, judged at the gate closure
    refused: dict[str, str] = field(default_factory=dict)


def load_market_day(
    deployment: Deployment, market: int, day_start: int, *, time_limit: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> MarketDay:
    """Everything the clearing of ``day_start`` needs, from chain data only."""
    say = progress or (lambda _msg: None)
    params = deployment.params(market)
    say("reading the book from events")
    book = read_book(deployment.order_book, market, day_start)
    grid = deployment.zones
    parent = {e.args["zoneId"]: e.args["parent"] for e in grid.events("ZoneAdded")}
    assets = deployment.assets

    say("reading the offers' zones")
    # a portfolio's zone is fixed when it is formed; an asset's is the one it had at the gate closure
    zone_of: dict[tuple[int, int], int] = {}
    for e in assets.events("PortfolioCreated"):
        zone_of[(0, e.args["portfolioId"])] = e.args["zoneId"]
    offers = []
    closure = params.gate_closure(day_start)
    sellable = sellable_at(assets, deployment.roles, {(o.asset, o.portfolio) for o in book.offers}, closure)
    then: dict[int, tuple[int, int, int]] = {}  # asset: its word now, its word and portfolio at the gate closure
    members_then: dict[int, list[int]] = {}  # portfolio: its members' words at the gate closure
    refused: dict[str, str] = {}
    meters = deployment.delivery_meter
    for o in book.offers:
        subject = (o.asset, o.portfolio)
        offer_key = "0x" + book.digests[o].hex()
        if subject not in sellable:
            refused[offer_key] = "ClearingAssetInPortfolio" if o.asset else "RoleGatedMissingRole"
            continue
        if not in_market(assets, o.asset, o.portfolio, market, o.start, o.start + o.isps * params.isp_seconds):
            continue  # OrderBookWrongMarket: a book that held it would sell one meter twice
        if o.asset:
            if o.asset not in then:
                word_then, portfolio_then = assets.offer_word_at(o.asset, closure)
                then[o.asset] = (assets.offer_word(o.asset), word_then, portfolio_then)
            now_word, word_then, portfolio_then = then[o.asset]
            problem = closure_problem(now_word, word_then, portfolio_then, o.direction, o.power_w)
            zone_of[subject] = asset_zone(word_then)
        else:
            if o.portfolio not in members_then:
                members_then[o.portfolio] = [assets.offer_word_at(a, closure).word
                                             for a in assets.members_at(o.portfolio, closure)]
            problem = portfolio_closure_problem(members_then[o.portfolio], o.direction, o.power_w)
        if problem:
            refused[offer_key] = problem
            continue
        # whose meters deliver it: a portfolio's members as its settlement counts them
        sold = (o.asset,) if o.asset else tuple(int(a) for a in meters.members(o.market, o.portfolio, o.start))
        offers.append(OfferIn(offer_key, zone_of[subject], o.start, o.isps,
                              Direction(o.direction), o.power_w, o.price, Mode(o.mode), o.min_power_w, sold))
    requests = []
    for request_id, info in sorted(book.requests.items()):
        p = info["params"]
        requests.append(RequestIn(request_id, BuyerKind(book.kinds[request_id]), p.zone, p.start, p.isps,
                                  Direction(p.direction), p.power_w, p.max_price))

    say("reading the lights in force")
    # lights bind TSO awards only: the zones on offers' paths, at the ISPs and directions TSO requests need
    lights: dict[tuple[int, int, Direction], Light] = {}
    tso_cells = {(r.start + k * params.isp_seconds, r.direction) for r in requests if r.kind is BuyerKind.TSO
                 for k in range(r.isps)}
    zones = sorted({z for o in offers for z in path_to_root(parent, o.zone)}) if tso_cells else []
    for zone in zones:
        for isp_start, direction in sorted(tso_cells):
            colour, capability = grid.effective_light(market, zone, isp_start, int(direction))
            light = Light(Colour(colour), capability)
            if light.colour is not Colour.GREEN:
                lights[(zone, isp_start, direction)] = light
    clearing = ClearingInput(offers, requests, parent, lights, isp_seconds=params.isp_seconds,
                             pricing=params.pricing_rule, time_limit=time_limit)
    return MarketDay(market, day_start, params, book, clearing, refused)


ASSET_STATUS_MASK = 3  # AssetRegistry.offerWord: the Status in bits 184-185 (0: deregistered)


def in_market(assets: AssetRegistryClient, asset: int, portfolio: int, market: int, start: int, end: int) -> bool:
    """Whether the asset (or portfolio) sells in ``market`` for every ISP of ``[start, end)``
    (AssetRegistry.marketFor / marketOfPortfolio): one meter sells in one market per ISP."""
    bound = assets.market_for(asset, start, end) if asset else assets.market_of_portfolio(portfolio)
    return int(bound) == market


def sellable_at(assets: AssetRegistryClient, roles: RoleRegistryClient, subjects: set[tuple[int, int]],
                closure: int) -> set[tuple[int, int]]:
    """The (asset, portfolio) subjects whose offers the commitment takes for a day with gate
    closure ``closure`` (DESIGN "Money safety": membership and roles as of the gate closure): an
    asset then in no portfolio and still registered; a portfolio whose aggregator then held the
    AGGREGATOR role."""
    ok: set[tuple[int, int]] = set()
    for asset, portfolio in subjects:
        if asset:
            if assets.offer_word(asset) >> 184 & ASSET_STATUS_MASK and assets.portfolio_at(asset, closure) == 0:
                ok.add((asset, portfolio))
        elif roles.has_market_role_at(assets.aggregator_of(portfolio), Role.AGGREGATOR.id, closure):
            ok.add((asset, portfolio))
    return ok
