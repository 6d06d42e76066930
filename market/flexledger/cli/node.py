"""`flexledger node`: the embedded local chain."""

from __future__ import annotations

from dataclasses import asdict

import typer

from flexledger.cli.context import STATE, local_node, require_local
from flexledger.cli.options import JsonOption
from flexledger.cli.output import console, emit_json

app = typer.Typer(
    help="Start, stop and inspect the local development chain (anvil) that the embedded "
    "configuration uses. Its state is kept in the data directory between runs unless --fresh.",
    no_args_is_help=True,
)


@app.command()
def start(
    fresh: bool = typer.Option(False, "--fresh", help="Forget the saved chain state and start empty."),
    json_: bool = JsonOption,
) -> None:
    """Start the local chain (on the configured port, or a free one if it is taken) and print its RPC URL."""
    settings = STATE.settings
    require_local(settings)
    node = local_node(settings)
    if fresh:
        node.stop()
        (settings.data_dir / "anvil-state.json").unlink(missing_ok=True)
    already = node.status()
    info = already or node.start()
    if json_:
        emit_json({**asdict(info), "already_running": already is not None})
        return
    verb = "already running" if already else "started"
    console.print(f"[green]local chain {verb}[/] at [bold]{info.rpc_url}[/] (chain id {info.chain_id}, pid {info.pid})")
    if info.port != settings.node_port:
        console.print(f"[yellow]port {settings.node_port} was taken; using {info.port}[/]")


@app.command()
def stop(json_: bool = JsonOption) -> None:
    """Stop the local chain; its state is written to the data directory first."""
    settings = STATE.settings
    require_local(settings)
    stopped = local_node(settings).stop()
    if json_:
        emit_json({"stopped": stopped})
    else:
        console.print("local chain stopped" if stopped else "no local chain was running")


@app.command()
def status(json_: bool = JsonOption) -> None:
    """Say whether the local chain runs, where, and its latest block."""
    from flexledger.chain.connection import ChainConnection

    settings = STATE.settings
    require_local(settings)
    info = local_node(settings).status()
    if info is None:
        if json_:
            emit_json({"running": False})
        else:
            console.print("no local chain is running (start one with `flexledger node start`)")
        raise typer.Exit(3)
    conn = ChainConnection.connect(info.rpc_url)
    block = int(conn.w3.eth.block_number)
    if json_:
        emit_json({"running": True, **asdict(info), "block": block, "client": conn.client_version()})
    else:
        console.print(
            f"local chain running at [bold]{info.rpc_url}[/]: chain id {info.chain_id}, "
            f"block {block}, pid {info.pid}, state {info.state_file or '(not kept)'}"
        )
