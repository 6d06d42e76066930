"""`flexledger index`: follow the chain into the database, say how far it got, rebuild it.

Mounted on `flexledger` through the ``flexledger.commands`` entry point; light at import (SQL and
web3 load when a command runs), like the CLI's own modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from flexledger.cli.context import STATE
from flexledger.cli.options import JsonOption
from flexledger.cli.output import console, emit_json, err_console

if TYPE_CHECKING:
    from flexledger.index.chain_reader import Confirmations
    from flexledger.index.indexer import Indexer, StepReport

app = typer.Typer(
    help="The chain indexer: every flexledger contract's events, from the manifest's deployment "
    "blocks, into SQL tables (the configured database_url) that a rebuild from the chain reproduces.",
    no_args_is_help=True,
)

ConfirmationsOption = typer.Option(
    "0", "--confirmations",
    help="Blocks to stay behind the head before reading a block (0 on anvil), or `finalized` to read only "
    "what the node reports as finalized.",
)
SpanOption = typer.Option(2_000, "--span", min=1, help="Blocks read and written per transaction, at most.")


def _confirmations(text: str) -> Confirmations:
    if text == "finalized":
        return "finalized"
    try:
        depth = int(text)
    except ValueError:
        depth = -1
    if depth < 0:
        raise typer.BadParameter("a number of blocks (0 or more) or `finalized`", param_hint="--confirmations")
    return depth


def _indexer(confirmations: str, span: int) -> Indexer:
    from flexledger.cli.context import connect, load_manifest
    from flexledger.database.engine import make_engine, migrate
    from flexledger.index.indexer import Indexer

    settings = STATE.settings
    depth = _confirmations(confirmations)
    conn, _ = connect(settings, start_local=False)
    manifest = load_manifest(settings, conn)
    engine = make_engine(settings.effective_database_url)
    migrate(engine)
    return Indexer(engine, conn, manifest, confirmations=depth, span=span)


def _printer(json_: bool) -> tuple[Callable[[StepReport], None], Callable[[Exception, float], None]]:
    def report(step: StepReport) -> None:
        if json_:
            emit_json({"first": step.first, "last": step.last, "logs": step.logs, "rolled_back_to": step.rolled_back_to})
        elif step.rolled_back_to is not None:
            console.print(f"[yellow]fork: rolled back to block {step.rolled_back_to}[/], reading on")
        else:
            console.print(f"blocks {step.first}..{step.last}: {step.logs} logs")

    def trouble(exc: Exception, wait: float) -> None:
        err_console.print(f"[yellow]{exc}[/] (trying again in {wait:.1f} s)")

    return report, trouble


@app.command()
def run(
    follow: bool = typer.Option(True, "--follow/--once", help="Keep following the head, or stop once caught up."),
    confirmations: str = ConfirmationsOption,
    span: int = SpanOption,
    poll: float = typer.Option(0.25, "--poll", min=0.01, help="Seconds between looks at the head while following."),
    json_: bool = JsonOption,
) -> None:
    """Read every contract's events into the database, resuming at the checkpoint; with --follow
    (the default) keep reading new blocks as they come (Ctrl-C stops between transactions)."""
    indexer = _indexer(confirmations, span)
    report, trouble = _printer(json_)
    try:
        indexer.run(follow=follow, poll=poll, report=report, trouble=trouble)
    except KeyboardInterrupt:
        err_console.print("stopped")
    _print_status(indexer, json_)


@app.command()
def status(confirmations: str = ConfirmationsOption, json_: bool = JsonOption) -> None:
    """The head, the block indexed up to, the lag between them, and the rows of each table."""
    _print_status(_indexer(confirmations, 1), json_)


@app.command()
def rebuild(confirmations: str = ConfirmationsOption, span: int = SpanOption, json_: bool = JsonOption) -> None:
    """Empty the indexer's tables and read everything again from the deployment blocks (the chain is
    the truth: the result equals what following it incrementally wrote)."""
    indexer = _indexer(confirmations, span)
    indexer.clear()
    report, trouble = _printer(json_)
    indexer.run(follow=False, report=None if json_ else report, trouble=trouble,
                give_up_after=60.0)
    _print_status(indexer, json_)


def _print_status(indexer: Indexer, json_: bool) -> None:
    status = indexer.status()
    if json_:
        emit_json(status.to_json())
        return
    indexed = "nothing yet" if status.indexed is None else f"block {status.indexed}"
    console.print(f"head {status.head}, indexed {indexed}, lag {status.lag} blocks")
    for table, count in status.rows.items():
        console.print(f"  {table:<24} {count:>10,}")
