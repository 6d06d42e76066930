"""A market day cleared, as `flexledger clear` and the API run it: the input read from the chain,
the optimiser run, the result held to the market's rules, and its summary (volumes per zone and
direction, the money, the solver's figures) for people and machines alike."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flexledger.clearing.market_day import MarketDay, load_market_day
from flexledger.deployment import Deployment
from flexledger.optimiser import ClearingInput, ClearingResult, clear
from flexledger.optimiser.clearing import Backend
from flexledger.optimiser.results import Award
from flexledger.rules.clearing import violations


@dataclass(frozen=True)
class ClearedDay:
    loaded: MarketDay
    result: ClearingResult
    # the rules the result breaks: the optimiser must never produce one (a bug to report, not a result)
    problems: list[str]


def rule_problems(loaded: MarketDay, awards: Iterable[Award]) -> list[str]:
    """Every market rule ``awards`` break on the day's book, grid and lights (empty: the contract
    would take them as far as the rules go)."""
    inp = loaded.clearing
    return violations(inp.offers, inp.requests, awards, parent=inp.parent, lights=inp.lights,
                      isp_seconds=inp.isp_seconds)


def clear_day(deployment: Deployment, market: int, day_start: int, *, time_limit: float = 60.0,
              backend: Backend | None = None, progress: Callable[[str], None] | None = None) -> ClearedDay:
    """Clear the market day from chain data alone and hold the result to the rules."""
    loaded = load_market_day(deployment, market, day_start, time_limit=time_limit, progress=progress)
    inp = loaded.clearing
    if progress:
        progress(f"solving: {len(inp.offers)} offers, {len(inp.requests)} requests")
    result = clear(inp, backend=backend)
    return ClearedDay(loaded, result, rule_problems(loaded, result.awards))


def volumes(inp: ClearingInput, awards: Iterable[Award]) -> list[dict[str, Any]]:
    """Awards, energy (Wh) and money (token base units) per request zone and direction: of a
    clearing just run, or of a result read back from the chain (``commitment.read_result``)."""
    zone_of = {r.request_id: r.zone for r in inp.requests}
    direction_of = {r.request_id: r.direction.name for r in inp.requests}
    volume: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: {"awards": 0, "energy_wh": 0, "paid": 0})
    for a in awards:
        cell = volume[(zone_of[a.request_id], direction_of[a.request_id])]
        cell["awards"] += 1
        cell["energy_wh"] += a.power_w * inp.isp_seconds // 3600
        cell["paid"] += a.power_w * inp.isp_seconds * a.price // 3_600_000_000
    return [{"zone": z, "direction": d, **v} for (z, d), v in sorted(volume.items())]


def summarise(cleared: ClearedDay) -> dict[str, Any]:
    """The volumes and money per zone and direction, the welfare, and the solver's figures."""
    inp, result = cleared.loaded.clearing, cleared.result
    s = result.stats
    return {
        "awards": len(result.awards), "welfare": result.welfare, "volumes": volumes(inp, result.awards),
        "solver": {"status": s.status, "optimal": s.optimal, "gap": s.gap, "components": s.components,
                   "variables": s.variables, "binaries": s.binaries, "build_seconds": round(s.build_seconds, 3),
                   "solve_seconds": round(s.solve_seconds, 3)},
        "market": cleared.loaded.market, "day_start": cleared.loaded.day_start, "offers": len(inp.offers),
        "requests": len(inp.requests), "pricing": inp.pricing.name,
    }
