"""A market day's book summed up: requested and offered power per zone, direction and ISP (an
offer's zone is its asset's, or its portfolio's), with the book's counts and its digest as checked
against the chain when it was read. What `flexledger book show` prints and the API serves."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from flexledger.book.order_book import read_book
from flexledger.deployment import Deployment
from flexledger.rules.lights import Direction
from flexledger.rules.orders import RequestParams

Cell = tuple[int, str, int]  # (zone, direction, ISP start)


def _empty() -> dict[str, int]:
    return {"requested_w": 0, "offered_w": 0, "offers": 0}


@dataclass
class BookSummary:
    market: int
    day_start: int
    digest: bytes
    requests: int  # open
    cancelled: int
    offers: int  # in force
    replaced: int  # accepted, then replaced by a newer offer of the same subject
    cells: dict[Cell, dict[str, int]] = field(default_factory=lambda: defaultdict(_empty))

    def counts(self) -> dict[str, Any]:
        return {"market": self.market, "day_start": self.day_start, "digest": "0x" + self.digest.hex(),
                "requests": self.requests, "cancelled": self.cancelled, "offers": self.offers,
                "replaced": self.replaced}

    def to_json(self) -> dict[str, Any]:
        return {**self.counts(), "cells": [{"zone": z, "direction": d, "isp_start": t, **v}
                                           for (z, d, t), v in sorted(self.cells.items())]}

    def hourly(self) -> dict[Cell, dict[str, int]]:
        """The cells per hour (its start in place of the ISP's): the largest figure of its ISPs."""
        hours: dict[Cell, dict[str, int]] = defaultdict(_empty)
        for (z, d, t), v in self.cells.items():
            h = hours[(z, d, t - t % 3600)]
            for name in ("requested_w", "offered_w", "offers"):
                h[name] = max(h[name], v[name])
        return hours


def summarise_book(deployment: Deployment, market: int, day_start: int) -> BookSummary:
    """The book of the market day starting at ``day_start``, read from events and checked against
    the OrderBook's digest, summed per zone, direction and ISP."""
    isp_seconds = deployment.params(market).isp_seconds
    state = read_book(deployment.order_book, market, day_start)
    assets = deployment.assets
    zone_of: dict[tuple[int, int], int] = {}
    for o in state.offers:
        if (o.asset, o.portfolio) not in zone_of:
            zone_of[(o.asset, o.portfolio)] = (assets.offer_terms(o.asset).zone if o.asset
                                               else assets.portfolio_terms(o.portfolio).zone)
    summary = BookSummary(market, day_start, state.digest, len(state.requests), len(state.cancelled),
                          len(state.offers), len(state.accepted) - len(state.offers))
    for q in state.requests.values():
        p: RequestParams = q["params"]
        for k in range(p.isps):
            summary.cells[(p.zone, Direction(p.direction).name, p.start + k * isp_seconds)]["requested_w"] += p.power_w
    for o in state.offers:
        for k in range(o.isps):
            cell = summary.cells[(zone_of[(o.asset, o.portfolio)], Direction(o.direction).name,
                                  o.start + k * isp_seconds)]
            cell["offered_w"] += o.power_w
            cell["offers"] += 1
    return summary
