"""`flexledger audit`: re-check a market day from public chain data alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from flexledger.cli.context import STATE, deployment
from flexledger.cli.options import DayOption, JsonOption, MarketOption, TimeLimitOption, parse_day
from flexledger.cli.output import Money, console, emit_json, market_money
from flexledger.times import iso

if TYPE_CHECKING:
    from flexledger.audit.baselines import BaselineEvidence
    from flexledger.audit.clearing import ClearingAudit
    from flexledger.audit.settlement import SettlementAudit

app = typer.Typer(help="Re-check what the market did, from public chain data alone.", no_args_is_help=True)


@app.command("clearing")
def audit_clearing_command(
    day: str = DayOption,
    market: int = MarketOption,
    time_limit: float = TimeLimitOption,
    json_: bool = JsonOption,
) -> None:
    """Re-run the day's clearing from chain data and compare it with the result in force, award by
    award: prints MATCH, or every difference and exits with status 1."""
    from flexledger.audit.clearing import audit_clearing

    chain = deployment(sign=False)
    with console.status("auditing...") as status:
        start = chain.day_start(market, parse_day(day))
        audit = audit_clearing(chain, market, start, time_limit=time_limit,
                               progress=lambda msg: status.update(msg + "..."))
    if json_:
        emit_json(_clearing_json(audit, market, start))
    else:
        _print_clearing(audit, market, start)
        console.print("[bold green]MATCH[/]" if audit.matches else "[bold red]DIFFERENCES[/]")
    if not audit.matches:
        raise typer.Exit(1)


def _clearing_json(audit: ClearingAudit, market: int, start: int) -> dict[str, Any]:
    committed = audit.committed
    return {"market": market, "day_start": start, "result_id": audit.result_id, "final": audit.final,
            "match": audit.matches, "awards_on_chain": len(committed.awards) if committed else 0,
            "awards_rerun": len(audit.rerun.awards), "differences": audit.differences, "infeasible": audit.infeasible}


def _print_clearing(audit: ClearingAudit, market: int, start: int) -> None:
    committed = audit.committed
    state = "final" if audit.final else "in its challenge window"
    if committed is not None:
        console.print(f"market {market}, day {iso(start)[:10]}: result {audit.result_id} ({state}), "
                      f"{len(committed.awards)} awards on chain, {len(audit.rerun.awards)} in the re-run")
    for line in audit.infeasible:
        console.print(f"[red]infeasible:[/] {line}")
    for line in audit.differences:
        console.print(f"[red]differs:[/] {line}")


@app.command("settle")
def audit_settle_command(day: str = DayOption, market: int = MarketOption, json_: bool = JsonOption) -> None:
    """Recompute every settlement of the day from public chain data (the settling transactions'
    inputs, the award and reading proofs, the baselines, the disputes' meter signatures) and follow
    its money (finalisations, bond draws, refunds, withdrawals, the token's transfers): prints a
    table per party and MATCH, or every difference and exits with status 1."""
    from flexledger.audit.settlement import audit_settlement

    chain = deployment(sign=False)
    with console.status("auditing the settlements..."):
        start = chain.day_start(market, parse_day(day))
        audit = audit_settlement(chain, market, start, _oracle_evidence(market))
    if json_:
        emit_json(_settlement_json(audit))
    else:
        _print_settlement(audit, market_money(chain))
        console.print("[bold green]MATCH[/]" if audit.matches else "[bold red]DIFFERENCES[/]")
    if not audit.matches:
        raise typer.Exit(1)


def _settlement_json(audit: SettlementAudit) -> dict[str, Any]:
    return {"market": audit.market, "day_start": audit.day, "result_id": audit.result_id, "match": audit.matches,
            "offers_settled": audit.offers_settled, "final": audit.final, "lines": audit.lines,
            "disputes": audit.disputes, "differences": audit.differences, "notes": audit.notes,
            "parties": {a: p.to_json() for a, p in sorted(audit.parties.items())}}


def _print_settlement(audit: SettlementAudit, money: Money) -> None:
    console.print(f"market {audit.market}, day {iso(audit.day)[:10]}: result {audit.result_id}, "
                  f"{audit.offers_settled} offers settled ({audit.final} final), {audit.lines} lines, "
                  f"{audit.disputes} dispute(s)")
    if audit.parties:
        table = Table(title="money per party (EUR; rules, and the chain where it differs)")
        figures = ["paid", "received", "penalties", "refunded", "withdrawn"]
        # debts (a seller's penalties its bond could not cover, repaid, collected) only when there are any
        figures += [n for n in ("debt", "repaid", "collected")
                    if any(getattr(p.rules, n) or getattr(p.chain, n) for p in audit.parties.values())]
        for column in ("party", "role", *figures):
            table.add_column(column, justify="left" if column in ("party", "role") else "right")
        for address, p in sorted(audit.parties.items(), key=lambda kv: (kv[1].role, kv[0])):
            cells = []
            for name in figures:
                ours, theirs = getattr(p.rules, name), getattr(p.chain, name)
                cells.append(money(ours) if ours == theirs else f"[red]{money(ours)} / chain {money(theirs)}[/]")
            table.add_row(address, p.role, *cells)
        console.print(table)
    for note in audit.notes:
        console.print(f"note: {note}")
    for line in audit.differences:
        console.print(f"[red]differs:[/] {line}")


@app.command("day")
def audit_day_command(
    day: str = typer.Argument(..., help="The market day (YYYY-MM-DD, UTC)."),
    market: int = MarketOption,
    time_limit: float = TimeLimitOption,
    json_: bool = JsonOption,
) -> None:
    """The clearing audit and the settlement audit of one day: MATCH only if both match."""
    from flexledger.audit.clearing import audit_clearing
    from flexledger.audit.settlement import audit_settlement

    chain = deployment(sign=False)
    with console.status("auditing...") as status:
        start = chain.day_start(market, parse_day(day))
        clearing = audit_clearing(chain, market, start, time_limit=time_limit,
                                  progress=lambda msg: status.update(msg + "..."))
        status.update("auditing the settlements...")
        settlement = audit_settlement(chain, market, start, _oracle_evidence(market))
    matches = clearing.matches and settlement.matches
    if json_:
        emit_json({"match": matches, "clearing": _clearing_json(clearing, market, start),
                   "settlement": _settlement_json(settlement)})
    else:
        _print_clearing(clearing, market, start)
        console.print(f"clearing: {'[green]MATCH[/]' if clearing.matches else '[red]DIFFERENCES[/]'}")
        _print_settlement(settlement, market_money(chain))
        console.print(f"settlement: {'[green]MATCH[/]' if settlement.matches else '[red]DIFFERENCES[/]'}")
        console.print("[bold green]MATCH[/]" if matches else "[bold red]DIFFERENCES[/]")
    if not matches:
        raise typer.Exit(1)


def _oracle_evidence(market: int) -> BaselineEvidence:
    """What the oracle of this data directory serves (its store's baseline inputs and reading
    proofs), for the auditor to recompute standard baselines from: checked against the chain there."""
    from flexledger.audit.baselines import store_evidence
    from flexledger.oracle.store import open_store

    return store_evidence(open_store(STATE.settings.effective_database_url), market)
