"""`flexledger clear`, `challenge`, `finalise`: clear a market day from chain data with the
optimiser, show the result, post it on chain; challenge the result in force with a better one;
make the day's result final after its challenge window."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import Progress
from rich.table import Table

from flexledger.cli.context import deployment
from flexledger.cli.options import (
    DayOption,
    JsonOption,
    KeyOption,
    MarketOption,
    TimeLimitOption,
    parse_day,
)
from flexledger.cli.output import console, emit_json, market_money
from flexledger.errors import FlexledgerError
from flexledger.times import iso

if TYPE_CHECKING:
    from flexledger.clearing.commitment import Posted
    from flexledger.clearing.market_day import MarketDay
    from flexledger.deployment import Deployment
    from flexledger.optimiser.results import Award


def _post(chain: Deployment, loaded: MarketDay, awards: list[Award], *, quiet: bool) -> Posted:
    from flexledger.clearing.commitment import commit

    with Progress(console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task("posting awards", total=max(len(awards), 1))
        return commit(chain, loaded.market, loaded.day_start, awards, loaded.book,
                      progress=lambda done, _total: bar.update(task, completed=done))


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
    from flexledger.clearing.run import clear_day, summarise

    chain = deployment(key, sign=commit)
    date = parse_day(day)
    with console.status("reading the market day from the chain...") as status:
        start = chain.day_start(market, date)
        cleared = clear_day(chain, market, start, time_limit=time_limit, backend=backend,  # type: ignore[arg-type]
                            progress=lambda msg: status.update(msg + "..."))  # clear() names an unknown backend
    if cleared.problems:  # the optimiser must never produce this; say so loudly rather than print a bad result
        raise typer.Exit(_report_bug(cleared.problems))
    inp, result = cleared.loaded.clearing, cleared.result
    data = summarise(cleared)
    if commit:
        posted = _post(chain, cleared.loaded, result.awards, quiet=json_)
        ends = posted.state.challenge_ends
        data["committed"] = {"result_id": posted.result_id, "gas_used": posted.gas_used, "chunks": posted.chunks,
                             "challenge_ends": ends}
        if not json_:
            console.print(f"[green]committed as result {posted.result_id}[/] in {posted.chunks} chunk(s), "
                          f"{posted.gas_used:,} gas; challenge window open until {iso(ends)}")
    if json_:
        data["award_list"] = [{"request": a.request_id, "isp_start": a.isp_start, "offer": a.offer_key,
                               "power_w": a.power_w, "price": a.price} for a in result.awards]
        emit_json(data)
        return
    solver = data["solver"]
    money = market_money(chain)
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
    from flexledger.clearing.run import rule_problems
    from flexledger.optimiser.results import Award

    chain = deployment(key)
    if superseded:
        _void_superseded(chain, market, day, json_)
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
        start = chain.day_start(market, parse_day(day))
        loaded = load_market_day(chain, market, start)
    problems = rule_problems(loaded, awards)
    if problems:
        raise FlexledgerError(f"the result in {file} breaks the market's rules: " + "; ".join(problems[:5]),
                              hint="the contract would reject it; fix the awards or clear the day again")
    state = day_state(chain, market, start)
    current, ends, final = state.current, state.challenge_ends, state.finalised
    ours = welfare_value(awards, loaded.book)
    posted = _post(chain, loaded, awards, quiet=json_)
    out = {"result_id": posted.result_id, "replaced": current, "gas_used": posted.gas_used, "chunks": posted.chunks,
           "dso_value": ours[0], "tso_value": ours[1], "challenge_ends": ends, "final": final}
    if json_:
        emit_json(out)
    else:
        console.print(f"[green]result {posted.result_id} replaced result {current}[/] ({len(awards)} awards, "
                      f"{posted.chunks} chunk(s), {posted.gas_used:,} gas); the window stays open until {iso(ends)}")


def _void_superseded(chain: Deployment, market: int, day: str, json_: bool) -> None:
    from flexledger.clearing.commitment import day_state, void_superseded
    from flexledger.clearing.market_day import load_market_day

    start = chain.day_start(market, parse_day(day))
    if day_state(chain, market, start).current == 0:
        raise FlexledgerError(f"market {market}, day {day} has no result in force")
    voided = void_superseded(chain, market, start, load_market_day(chain, market, start).book)
    found = voided.superseded_offers
    out = {"result_id": voided.result_id, "superseded_offers": found, "voided": found > 0}
    if json_:
        emit_json(out)
    elif found:
        console.print(f"[green]result {voided.result_id} is void[/]: it awarded {voided.superseded_offers} offer(s) "
                      "the book had replaced (the first was proven); a clearing operator commits the day anew")
    else:
        console.print(f"result {voided.result_id} awards no superseded offer: nothing to void")


def finalise_command(day: str = DayOption, market: int = MarketOption, key: Path | None = KeyOption) -> None:
    """Make the day's clearing result final once its challenge window has passed (anyone may):
    its awards become the sellers' activation orders."""
    from flexledger.clearing.commitment import finalise

    chain = deployment(key)
    current = finalise(chain, market, chain.day_start(market, parse_day(day)))
    console.print(f"[green]market {market}, day {day}: result {current} is final[/]")


def _report_bug(problems: list[str]) -> int:
    console.print("[red]the clearing broke a rule; this is a bug in flexledger, please report it:[/]")
    for p in problems[:20]:
        console.print(f"  {p}")
    return 1
