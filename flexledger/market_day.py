"""A market day's clearing input, read from the chain alone: the book from OrderBook's events
(checked against its digest), the zone tree from GridZones' events, the lights in force from
GridZones, each offer's zone from AssetRegistry, each request's buyer kind (DSO or TSO, fixed when it was
posted) from OrderBook. An asset's own offer is left out once the asset is in a portfolio (as
ClearingCommitment checks it when the day's result is posted)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flexledger.chain.bindings import (
    AssetRegistryClient,
    ClearingCommitmentClient,
    DeliveryMeterClient,
    GridZonesClient,
    MarketRegistryClient,
    OrderBookClient,
)
from flexledger.chain.client import BlockId
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.optimiser import BuyerKind, ClearingInput, OfferIn, RequestIn
from flexledger.rules.grid import path_to_root
from flexledger.rules.lights import Colour, Direction, Light
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import Mode

from .book import Book, read_book
from .commitment import day_state


@dataclass
class MarketDay:
    market: int
    day_start: int
    params: MarketParams
    book: Book
    clearing: ClearingInput


def load_market_day(
    conn: ChainConnection, manifest: Manifest, market: int, day_start: int, *, time_limit: float = 60.0,
    progress: Callable[[str], None] | None = None,
) -> MarketDay:
    """Everything the clearing of ``day_start`` needs, from chain data only."""
    say = progress or (lambda _msg: None)
    params = MarketParams.from_tuple(MarketRegistryClient(conn, manifest.address("MarketRegistry")).market_params(market))
    orders = OrderBookClient(conn, manifest.address("OrderBook"))
    say("reading the book from events")
    book = read_book(orders, market, day_start)
    grid = GridZonesClient(conn, manifest.address("GridZones"))
    parent = {e.args["zoneId"]: e.args["parent"] for e in grid.events("ZoneAdded")}
    assets = AssetRegistryClient(conn, manifest.address("AssetRegistry"))

    say("reading the offers' zones")
    # where each asset and portfolio sits, from AssetRegistry's events (the last mapping counts)
    zone_of: dict[tuple[int, int], int] = {}
    for e in sorted(assets.events("AssetMapped"), key=lambda e: (e.block_number, e.log_index)):
        zone_of[(e.args["assetId"], 0)] = e.args["zoneId"]
    for e in assets.events("PortfolioCreated"):
        zone_of[(0, e.args["portfolioId"])] = e.args["zoneId"]
    offers = []
    pooled = pooled_assets(assets, _committed_at(conn, manifest, market, day_start))
    meters = DeliveryMeterClient(conn, manifest.address("DeliveryMeter"))
    for o in book.offers:
        if o.asset in pooled:  # its aggregator offers it now: the commitment refuses it (ClearingAssetInPortfolio)
            continue
        subject = (o.asset, o.portfolio)
        # whose meters deliver it: a portfolio's members as its settlement counts them
        sold = (o.asset,) if o.asset else tuple(int(a) for a in meters.members(o.market, o.portfolio, o.start))
        offers.append(OfferIn("0x" + book.digests[o].hex(), zone_of[subject], o.start, o.isps,
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
    return MarketDay(market, day_start, params, book, clearing)


Position = tuple[int, int]  # (block, log index): where in the chain an event stands


def pooled_assets(assets: AssetRegistryClient, before: Position | None = None) -> set[int]:
    """The assets in a portfolio just before the event at ``before`` (now, without it), from
    AssetRegistry's events: an offer one of them made on its own before it joined can no longer be
    awarded (its meter counts in the portfolio's delivery)."""
    to_block: BlockId = "latest" if before is None else before[0]
    changes = [(e.block_number, e.log_index, True, int(a))
               for e in assets.events("PortfolioCreated", to_block=to_block) for a in e.args["assets"]]
    changes += [(e.block_number, e.log_index, False, int(e.args["assetId"]))
                for e in assets.events("PortfolioAssetRemoved", to_block=to_block)]
    pooled: set[int] = set()
    for block, index, joined, asset in sorted(changes):
        if before is None or (block, index) < before:
            (pooled.add if joined else pooled.discard)(asset)
    return pooled


def _committed_at(conn: ChainConnection, manifest: Manifest, market: int, day_start: int) -> Position | None:
    """Where the day's result in force was first posted (the commitment checked the assets then,
    and so must a re-run, whenever it runs); None while the day has no result."""
    current, _ends, _final = day_state(conn, manifest, market, day_start)
    if current == 0:
        return None
    clearing = ClearingCommitmentClient(conn, manifest.address("ClearingCommitment"))
    posted = clearing.events("ChunkPosted", topics=["0x" + current.to_bytes(32, "big").hex()])
    return min(((e.block_number, e.log_index) for e in posted), default=None)
