"""`flexledger clear`: clear a market day from chain data with the optimiser, and show the result."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import typer
from rich.table import Table

from flexledger.chain.bindings import MarketRegistryClient
from flexledger.market_day import load_market_day
from flexledger.optimiser import ClearingResult, clear
from flexledger.rules.clearing import violations
from flexledger.rules.market import MarketParams
from flexledger.times import iso

from .context import STATE, connect, load_manifest
from .output import JsonOption, console, emit_json


def summarise(result: ClearingResult, zone_of_request: dict[int, int], direction_of_request: dict[int, str],
              isp_seconds: int) -> dict[str, Any]:
    """Volumes per zone and direction, money, and the solver's figures, for people and machines."""
    volume: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: {"awards": 0, "energy_wh": 0, "paid": 0})
    for a in result.awards:
        cell = volume[(zone_of_request[a.request_id], direction_of_request[a.request_id])]
        cell["awards"] += 1
        cell["energy_wh"] += a.power_w * isp_seconds // 3600
        cell["paid"] += a.power_w * isp_seconds * a.price // 3_600_000_000
    s = result.stats
    return {
        "awards": len(result.awards), "welfare": result.welfare,
        "volumes": [{"zone": z, "direction": d, **v} for (z, d), v in sorted(volume.items())],
        "solver": {"status": s.status, "optimal": s.optimal, "gap": s.gap, "components": s.components,
                   "variables": s.variables, "binaries": s.binaries, "build_seconds": round(s.build_seconds, 3),
                   "solve_seconds": round(s.solve_seconds, 3)},
    }


def clear_command(
    day: str = typer.Option(..., "--day", help="The market day (YYYY-MM-DD, UTC)."),
    market: int = typer.Option(1, "--market", help="The market id."),
    time_limit: float = typer.Option(60.0, "--time-limit", help="Seconds the solver may take in all."),
    json_: bool = JsonOption,
) -> None:
    """Clear a market day from chain data alone (pyomo + HiGHS): awards, volumes, welfare, prices, gap.

    DSO requests clear first, TSO requests on what is left inside the traffic lights; the book
    read from events is checked against the contract's digest before anything is solved.
    """
    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(f"--day {day!r} is not YYYY-MM-DD") from None
    with console.status("reading the market day from the chain...") as status:
        params = MarketParams.from_tuple(MarketRegistryClient(conn, manifest.address("MarketRegistry")).market_params(market))
        midnight = int(dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC).timestamp())
        start = params.day_start(midnight + params.day_offset_seconds)
        loaded = load_market_day(conn, manifest, market, start, time_limit=time_limit,
                                 progress=lambda msg: status.update(msg + "..."))
        inp = loaded.clearing
        status.update(f"solving: {len(inp.offers)} offers, {len(inp.requests)} requests...")
        result = clear(inp)
    problems = violations(inp.offers, inp.requests, result.awards, parent=inp.parent, lights=inp.lights,
                          isp_seconds=inp.isp_seconds)
    if problems:  # the optimiser must never produce this; say so loudly rather than print a bad result
        raise typer.Exit(_report_bug(problems))
    zone_of = {r.request_id: r.zone for r in inp.requests}
    direction_of = {r.request_id: r.direction.name for r in inp.requests}
    data = summarise(result, zone_of, direction_of, inp.isp_seconds)
    data.update({"market": market, "day_start": start, "offers": len(inp.offers), "requests": len(inp.requests),
                 "pricing": inp.pricing.name})
    if json_:
        data["award_list"] = [{"request": a.request_id, "isp_start": a.isp_start, "offer": a.offer_key,
                               "power_w": a.power_w, "price": a.price} for a in result.awards]
        emit_json(data)
        return
    solver = data["solver"]
    console.print(f"market {market}, day {date}: {len(inp.offers)} offers, {len(inp.requests)} requests, "
                  f"{inp.pricing.name}; {data['awards']} awards, welfare {result.welfare / 100:,.2f} EUR; "
                  f"{solver['status']}, gap {solver['gap']:.2g}, built in {solver['build_seconds']} s, "
                  f"solved in {solver['solve_seconds']} s ({solver['components']} components)")
    if not result.awards:
        console.print("nothing clears: no offer is below a request's maximum price where both meet")
        return
    table = Table(title="awarded per request zone and direction")
    for column in ("zone", "dir", "awards", "energy kWh", "paid EUR", "avg EUR/MWh"):
        table.add_column(column, justify="left" if column == "dir" else "right")
    for v in data["volumes"]:
        average = v["paid"] * 1_000_000 / v["energy_wh"] / 100 if v["energy_wh"] else 0
        table.add_row(str(v["zone"]), v["direction"], str(v["awards"]), f"{v['energy_wh'] / 1000:,.1f}",
                      f"{v['paid'] / 100:,.2f}", f"{average:,.2f}")
    console.print(table)
    first, last = min(a.isp_start for a in result.awards), max(a.isp_start for a in result.awards)
    console.print(f"awards from {iso(first)} to {iso(last)}")


def _report_bug(problems: list[str]) -> int:
    console.print("[red]the clearing broke a rule; this is a bug in flexledger, please report it:[/]")
    for p in problems[:20]:
        console.print(f"  {p}")
    return 1
