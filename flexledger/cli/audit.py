"""`flexledger audit`: re-check a market day from public chain data alone."""

from __future__ import annotations

import typer

from flexledger.audit import audit_clearing
from flexledger.times import iso

from .clearing import DayOption, MarketOption, market_day_start
from .context import STATE, connect, load_manifest
from .output import JsonOption, console, emit_json

app = typer.Typer(help="Re-check what the market did, from public chain data alone.", no_args_is_help=True)


@app.command("clearing")
def audit_clearing_command(
    day: str = DayOption,
    market: int = MarketOption,
    time_limit: float = typer.Option(60.0, "--time-limit", help="Seconds the solver may take in all."),
    json_: bool = JsonOption,
) -> None:
    """Re-run the day's clearing from chain data and compare it with the result in force, award by
    award: prints MATCH, or every difference and exits with status 1."""
    settings = STATE.settings
    conn, _ = connect(settings)
    manifest = load_manifest(settings, conn)
    with console.status("auditing...") as status:
        _params, start = market_day_start(conn, manifest, market, day)
        audit = audit_clearing(conn, manifest, market, start, time_limit=time_limit,
                               progress=lambda msg: status.update(msg + "..."))
    committed = audit.committed
    if json_:
        emit_json({"market": market, "day_start": start, "result_id": audit.result_id, "final": audit.final,
                   "match": audit.matches, "awards_on_chain": len(committed.awards) if committed else 0,
                   "awards_rerun": len(audit.rerun.awards), "differences": audit.differences,
                   "infeasible": audit.infeasible})
    else:
        state = "final" if audit.final else "in its challenge window"
        if committed is not None:
            console.print(f"market {market}, day {iso(start)[:10]}: result {audit.result_id} ({state}), "
                          f"{len(committed.awards)} awards on chain, {len(audit.rerun.awards)} in the re-run")
        for line in audit.infeasible:
            console.print(f"[red]infeasible:[/] {line}")
        for line in audit.differences:
            console.print(f"[red]differs:[/] {line}")
        console.print("[bold green]MATCH[/]" if audit.matches else "[bold red]DIFFERENCES[/]")
    if not audit.matches:
        raise typer.Exit(1)
