"""`flexledger clear`, `challenge`, `finalise`: clear a market day from chain data with the
optimiser, show the result, post it on chain; challenge the result in force with a better one;
make the day's result final after its challenge window."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import Progress
from rich.table import Table

from flexledger.cli.context import STATE, connect, deployment, load_manifest, load_signer
from flexledger.cli.options import DayOption, JsonOption, KeyOption, MarketOption, TimeLimitOption
from flexledger.cli.output import console, emit_json, market_money
from flexledger.errors import FlexledgerError
from flexledger.rules.market import MarketParams
from flexledger.times import iso

if TYPE_CHECKING:
    from flexledger.chain.connection import ChainConnection
    from flexledger.chain.manifest import Manifest
    from flexledger.chain.transactions import Signer
    from flexledger.clearing.market_day import MarketDay
    from flexledger.optimiser import ClearingResult
    from flexledger.optimiser.results import Award


def market_day_start(conn: ChainConnection, manifest: Manifest, market: int, day: str) -> tuple[MarketParams, int]:
    """The market's parameters and the first second of the market day named ``day``."""
    from flexledger.deployment import Deployment

    try:
        date = dt.date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(f"--day {day!r} is not YYYY-MM-DD") from None
    chain = Deployment(conn, manifest)
    return chain.params(market), chain.day_start(market, date)


def post_with_progress(conn: ChainConnection, manifest: Manifest, signer: Signer, loaded: MarketDay,
                       awards: list[Award], *, quiet: bool) -> tuple[int, int, int]:
    from flexledger.clearing.commitment import post_result
    from flexledger.deployment import Deployment

    clearing = Deployment(conn, manifest).clearing
    with Progress(console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task("posting awards", total=max(len(awards), 1))
        return post_result(clearing, signer, loaded.market, loaded.day_start, awards, loaded.book,
                           loaded.params.isp_seconds, progress=lambda done, _total: bar.update(task, completed=done))


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
    day: str = DayOption,
    market: int = MarketOption,
    time_limit: float = TimeLimitOption,
    commit: bool = typer.Option(False, "--commit", help="Post the result on chain (CLEARING role; after gate closure)."),
    backend: str | None = typer.Option(
        None, "--backend", help="The model's build: highs (written into HiGHS's matrix, the default) or pyomo "
        "(the readable statement, slower); also $FLEXLEDGER_CLEARING_BACKEND."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Clear a market day from chain data alone (HiGHS): awards, volumes, welfare, prices, gap.

    DSO requests clear first, TSO requests on what is left inside the traffic lights; the book
    read from events is checked against the contract's digest before anything is solved. With
    --commit the result is posted to ClearingCommitment, which checks every award; anyone may then
    challenge it with a better one until the market's challenge window ends.
    """
    from flexledger.clearing.commitment import day_state
    from flexledger.clearing.market_day import load_market_day
    from flexledger.optimiser import clear
    from flexledger.rules.clearing import violations

    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    signer = load_signer(conn, key) if commit else None
    with console.status("reading the market day from the chain...") as status:
        _params, start = market_day_start(conn, manifest, market, day)
        date = dt.date.fromisoformat(day)
        loaded = load_market_day(conn, manifest, market, start, time_limit=time_limit,
                                 progress=lambda msg: status.update(msg + "..."))
        inp = loaded.clearing
        status.update(f"solving: {len(inp.offers)} offers, {len(inp.requests)} requests...")
        result = clear(inp, backend=backend)  # type: ignore[arg-type]  # clear() names an unknown one
    problems = violations(inp.offers, inp.requests, result.awards, parent=inp.parent, lights=inp.lights,
                          isp_seconds=inp.isp_seconds)
    if problems:  # the optimiser must never produce this; say so loudly rather than print a bad result
        raise typer.Exit(_report_bug(problems))
    zone_of = {r.request_id: r.zone for r in inp.requests}
    direction_of = {r.request_id: r.direction.name for r in inp.requests}
    data = summarise(result, zone_of, direction_of, inp.isp_seconds)
    data.update({"market": market, "day_start": start, "offers": len(inp.offers), "requests": len(inp.requests),
                 "pricing": inp.pricing.name})
    if signer is not None:
        result_id, gas, chunks = post_with_progress(conn, manifest, signer, loaded, result.awards, quiet=json_)
        ends = day_state(conn, manifest, market, start).challenge_ends
        data["committed"] = {"result_id": result_id, "gas_used": gas, "chunks": chunks, "challenge_ends": ends}
        if not json_:
            console.print(f"[green]committed as result {result_id}[/] in {chunks} chunk(s), {gas:,} gas; "
                          f"challenge window open until {iso(ends)}")
    if json_:
        data["award_list"] = [{"request": a.request_id, "isp_start": a.isp_start, "offer": a.offer_key,
                               "power_w": a.power_w, "price": a.price} for a in result.awards]
        emit_json(data)
        return
    solver = data["solver"]
    money = market_money(conn, manifest)
    console.print(f"market {market}, day {date}: {len(inp.offers)} offers, {len(inp.requests)} requests, "
                  f"{inp.pricing.name}; {data['awards']} awards, welfare {money(result.welfare)} EUR; "
                  f"{solver['status']}, gap {solver['gap']:.2g}, built in {solver['build_seconds']} s, "
                  f"solved in {solver['solve_seconds']} s ({solver['components']} components)")
    if not result.awards:
        console.print("nothing clears: no offer is below a request's maximum price where both meet")
        return
    table = Table(title="awarded per request zone and direction")
    for column in ("zone", "dir", "awards", "energy kWh", "paid EUR", "avg EUR/MWh"):
        table.add_column(column, justify="left" if column == "dir" else "right")
    for v in data["volumes"]:
        average = Fraction(v["paid"] * 1_000_000, v["energy_wh"]) if v["energy_wh"] else 0  # per MWh
        table.add_row(str(v["zone"]), v["direction"], str(v["awards"]), f"{v['energy_wh'] / 1000:,.1f}",
                      money(v["paid"]), money(average))
    console.print(table)
    first, last = min(a.isp_start for a in result.awards), max(a.isp_start for a in result.awards)
    console.print(f"awards from {iso(first)} to {iso(last)}")


def challenge_command(
    file: Path | None = typer.Argument(None, help="The better result: JSON as `flexledger clear --json` writes it."),
    day: str = DayOption,
    market: int = MarketOption,
    superseded: bool = typer.Option(False, "--superseded",
                                    help="Instead: void the result in force if it awarded an offer the book had replaced."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Challenge the day's result in force (anyone may, during the challenge window).

    With FILE: the file's awards are checked against the rules first; the contract checks them
    again and replaces the result in force only if the new one is better: higher DSO welfare, or
    equal DSO and higher TSO welfare. With --superseded: if the result awarded an offer for which
    the book holds a newer one (same asset, window and direction), prove it; the result is void
    and a clearing operator commits the day anew.
    """
    from flexledger.clearing.commitment import day_state, welfare_value
    from flexledger.clearing.market_day import load_market_day
    from flexledger.optimiser.results import Award
    from flexledger.rules.clearing import violations

    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    signer = load_signer(conn, key)
    if superseded:
        _void_superseded(conn, manifest, signer, market, day, json_)
        return
    if file is None:
        raise FlexledgerError("give the better result's FILE, or --superseded",
                              hint="write a result with `flexledger clear --day D --json > FILE`")
    try:
        raw = json.loads(file.read_text())
        awards = [Award(int(a["request"]), int(a["isp_start"]), str(a["offer"]), int(a["power_w"]), int(a["price"]))
                  for a in raw["award_list"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FlexledgerError(f"{file} is not a clearing result ({exc})",
                              hint="write one with `flexledger clear --day D --json > FILE`") from None
    with console.status("reading the market day from the chain..."):
        _params, start = market_day_start(conn, manifest, market, day)
        loaded = load_market_day(conn, manifest, market, start)
    inp = loaded.clearing
    problems = violations(inp.offers, inp.requests, awards, parent=inp.parent, lights=inp.lights,
                          isp_seconds=inp.isp_seconds)
    if problems:
        raise FlexledgerError(f"the result in {file} breaks the market's rules: " + "; ".join(problems[:5]),
                              hint="the contract would reject it; fix the awards or clear the day again")
    state = day_state(conn, manifest, market, start)
    current, ends, final = state.current, state.challenge_ends, state.finalised
    ours = welfare_value(awards, loaded.book)
    result_id, gas, chunks = post_with_progress(conn, manifest, signer, loaded, awards, quiet=json_)
    out = {"result_id": result_id, "replaced": current, "gas_used": gas, "chunks": chunks,
           "dso_value": ours[0], "tso_value": ours[1], "challenge_ends": ends, "final": final}
    if json_:
        emit_json(out)
    else:
        console.print(f"[green]result {result_id} replaced result {current}[/] ({len(awards)} awards, {chunks} chunk(s), "
                      f"{gas:,} gas); the window stays open until {iso(ends)}")


def _void_superseded(conn: ChainConnection, manifest: Manifest, signer: Signer, market: int, day: str,
                     json_: bool) -> None:
    from flexledger.clearing.commitment import day_state, find_superseded, prove_superseded
    from flexledger.clearing.market_day import load_market_day
    from flexledger.deployment import Deployment

    _params, start = market_day_start(conn, manifest, market, day)
    current = day_state(conn, manifest, market, start).current
    if current == 0:
        raise FlexledgerError(f"market {market}, day {day} has no result in force")
    loaded = load_market_day(conn, manifest, market, start)
    clearing = Deployment(conn, manifest).clearing
    found = find_superseded(clearing, current, loaded.book)
    if found:
        prove_superseded(clearing, signer, found[0])
    out = {"result_id": current, "superseded_offers": len(found), "voided": bool(found)}
    if json_:
        emit_json(out)
    elif found:
        console.print(f"[green]result {current} is void[/]: it awarded {len(found)} offer(s) the book had replaced "
                      "(the first was proven); a clearing operator commits the day anew")
    else:
        console.print(f"result {current} awards no superseded offer: nothing to void")


def finalise_command(day: str = DayOption, market: int = MarketOption, key: Path | None = KeyOption) -> None:
    """Make the day's clearing result final once its challenge window has passed (anyone may):
    its awards become the sellers' activation orders."""
    from flexledger.clearing.commitment import day_state

    chain = deployment(key)
    _params, start = market_day_start(chain.conn, chain.manifest, market, day)
    chain.clearing.finalise(market, start)
    current = day_state(chain.conn, chain.manifest, market, start).current
    console.print(f"[green]market {market}, day {day}: result {current} is final[/]")


def _report_bug(problems: list[str]) -> int:
    console.print("[red]the clearing broke a rule; this is a bug in flexledger, please report it:[/]")
    for p in problems[:20]:
        console.print(f"  {p}")
    return 1
