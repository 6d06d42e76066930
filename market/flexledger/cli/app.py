"""The `flexledger` command: one entry point for operators, aggregators, auditors and developers."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import typer
from rich.markup import escape

from flexledger.cli import (
    audit,
    baseline,
    book,
    broker,
    clearing,
    contracts,
    dev,
    grid,
    identity,
    node,
    omission,
    oracle,
    readings,
    settlement,
)
from flexledger.cli.context import STATE
from flexledger.cli.options import JsonOption
from flexledger.cli.output import console, emit_json, err_console
from flexledger.cli.version import __version__
from flexledger.errors import FlexledgerError

app = typer.Typer(
    name="flexledger",
    help=(
        "flexledger: a blockchain-anchored marketplace for grid flexibility.\n\n"
        "With no configuration it runs on embedded defaults: a local anvil chain it starts "
        "itself, SQLite under the data directory and a local MQTT broker. Point it at "
        "production with FLEXLEDGER_RPC_URL, FLEXLEDGER_DATABASE_URL and FLEXLEDGER_MQTT_URL "
        "(or a flexledger.toml). Start with `flexledger demo`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.add_typer(node.app, name="node")
app.add_typer(broker.app, name="broker")
app.add_typer(identity.identity_app, name="identity")
app.add_typer(identity.did_app, name="did")
app.add_typer(identity.role_app, name="role")
app.add_typer(grid.market_app, name="market")
app.add_typer(grid.grid_app, name="grid")
app.add_typer(book.offer_app, name="offer")
app.add_typer(book.request_app, name="request")
app.add_typer(book.book_app, name="book")
app.add_typer(book.bond_app, name="bond")
app.add_typer(book.token_app, name="token")
app.add_typer(readings.app, name="readings")
app.add_typer(oracle.app, name="oracle")
app.add_typer(omission.app, name="omission")
app.command("clear")(clearing.clear_command)
app.command("challenge")(clearing.challenge_command)
app.command("finalise")(clearing.finalise_command)
app.add_typer(baseline.app, name="baseline")
app.command("settle")(settlement.settle_command)
app.command("claim")(settlement.claim_command)
app.command("dispute")(settlement.dispute_command)
app.command("dispute-baseline")(settlement.dispute_baseline_command)
app.command("challenge-baseline")(settlement.challenge_baseline_command)
app.command("uphold-baseline")(settlement.uphold_baseline_command)
app.command("resettle-baseline")(settlement.resettle_baseline_command)
app.add_typer(audit.app, name="audit")
app.add_typer(dev.app, name="dev")
app.command("compile")(contracts.compile_command)
app.command("deploy")(contracts.deploy_command)


def _mount_installed_commands() -> None:
    """Mount the command groups other installed distributions offer (the backend's `index` and
    `api`) through the ``flexledger.commands`` entry points: the market never imports the backend,
    which sits above it, and a gateway without the backend simply has no such commands."""
    from importlib.metadata import entry_points

    for entry in sorted(entry_points(group="flexledger.commands"), key=lambda e: e.name):
        app.add_typer(entry.load(), name=entry.name)


_mount_installed_commands()


@app.callback()
def root(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Local state folder (FLEXLEDGER_DATA_DIR)."),
    rpc_url: str | None = typer.Option(None, "--rpc-url", help="Chain JSON-RPC URL (FLEXLEDGER_RPC_URL)."),
    config: Path | None = typer.Option(None, "--config", help="TOML config file (FLEXLEDGER_CONFIG); a "
                                       "./flexledger.toml is read only when named."),
) -> None:
    """Global options, given before the command."""
    import os

    if config is not None:
        os.environ["FLEXLEDGER_CONFIG"] = str(config)
    STATE.config_overrides = {"data_dir": data_dir, "rpc_url": rpc_url}
    STATE._settings = None


@app.command()
def version(json_: bool = JsonOption) -> None:
    """Print the versions of flexledger and of the toolchain it drives."""
    import json

    from flexledger.chain import paths

    build_info = paths.build_dir() / "build-info.json"
    solc = json.loads(build_info.read_text())["compiler"] if build_info.is_file() else None
    info = {"flexledger": __version__, "python": platform.python_version(), "solc": solc}
    try:
        import web3

        info["web3"] = web3.__version__
    except (ImportError, AttributeError):
        pass
    if json_:
        emit_json(info)
    else:
        for k, v in info.items():
            console.print(f"{k:<11} {v}")


@app.command("config")
def show_config(
    check: bool = typer.Option(False, "--check", help="Also check that the database and broker answer."),
    json_: bool = JsonOption,
) -> None:
    """Show the effective configuration (and, with --check, whether its services answer)."""
    from flexledger.delivery.broker import install_client_id, local_broker, mqtt_tls, oracle_broker
    from flexledger.services import check_broker, check_configured_chain, check_database

    settings = STATE.settings
    out: dict[str, object] = {"settings": settings.public()}
    if check:
        statuses = [check_configured_chain(settings), check_database(settings.effective_database_url)]
        if settings.mqtt_url:
            statuses.append(check_broker(settings.mqtt_url, client_id=install_client_id(settings.data_dir)
                                         if settings.mqtt_client_id is None else settings.mqtt_client_id,
                                         **mqtt_tls(settings)))
        elif local_broker(settings).status() is not None:  # the embedded broker, as the oracle uses it
            url, client_id = oracle_broker(settings, start_local=False)
            statuses.append(check_broker(url, client_id=client_id))
        out["services"] = [s.__dict__ for s in statuses]
    if json_:
        emit_json(out)
        return
    for k, v in settings.public().items():
        console.print(f"{k:<15} {v}")
    for s in out.get("services", []):  # type: ignore[attr-defined]
        colour = "green" if s["ok"] else "red"
        console.print(f"[{colour}]{s['name']:<15} {'ok' if s['ok'] else 'FAILED'}[/] {s['url']} ({s['detail']})")


@app.command()
def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the demo chain running afterwards."),
    json_: bool = JsonOption,
) -> None:
    """Run the whole market flow, as far as it is built, on a fresh local chain, with a summary."""
    from flexledger.demo.run import run_demo

    summary = run_demo(STATE.settings, keep=keep, quiet=json_)
    if json_:
        emit_json(summary)


def main() -> None:
    """Entry point: errors print as a message and a hint, never a traceback.

    Set FLEXLEDGER_DEBUG=1 to see the traceback of an unexpected error.
    """
    import os

    from flexledger.chain.errors import ContractCustomError

    try:
        app()  # standalone: typer itself prints usage errors and help, and exits
    except ContractCustomError as exc:
        from flexledger.refusals import plain

        _fail(*plain(exc))
    except FlexledgerError as exc:
        _fail(exc.message, exc.hint)
    except Exception as exc:
        if os.environ.get("FLEXLEDGER_DEBUG"):
            raise
        _fail(
            f"unexpected {type(exc).__name__}: {exc}",
            "this is a bug in flexledger; run again with FLEXLEDGER_DEBUG=1 and report the traceback",
        )


def _fail(message: str, hint: str | None) -> None:
    from flexledger.redaction import scrub_urls

    # the one place every error passes: whatever a library put in its text, no configured secret leaves
    configured = STATE._settings
    urls = (configured.rpc_url, configured.database_url, configured.mqtt_url) if configured else ()
    message = scrub_urls(message, *urls)
    hint = scrub_urls(hint, *urls) if hint else hint
    if "--json" in sys.argv:
        emit_json({"error": message, "hint": hint})
    else:
        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
        if hint:
            err_console.print(f"[yellow]what to do:[/] {escape(hint)}", highlight=False)
    sys.exit(1)


if __name__ == "__main__":
    main()
