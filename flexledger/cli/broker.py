"""`flexledger broker`: the embedded MQTT broker."""

from __future__ import annotations

import shutil
from dataclasses import asdict

import typer

from flexledger.broker import DEFAULT_PORT, local_broker, require_embedded_broker

from .context import STATE
from .output import JsonOption, console, emit_json

app = typer.Typer(
    help="Start, stop and inspect the embedded MQTT broker (aedes, MQTT 3.1.1, on 127.0.0.1) that "
    "flexledger uses when no broker is configured. Persistent sessions (subscriptions and the QoS 1 "
    "messages queued for them) are kept in the data directory between runs unless --fresh. "
    "Set FLEXLEDGER_MQTT_URL (or mqtt_url in the config file) to use another broker, such as "
    "Mosquitto, instead.",
    no_args_is_help=True,
)


@app.command()
def start(
    fresh: bool = typer.Option(False, "--fresh", help="Forget the kept sessions and their queued messages."),
    json_: bool = JsonOption,
) -> None:
    """Start the embedded broker (on port 1883, or a free one if it is taken) and print its URL."""
    settings = STATE.settings
    require_embedded_broker(settings)
    broker = local_broker(settings)
    if fresh:
        broker.stop()
        shutil.rmtree(broker.state_dir, ignore_errors=True)
    already = broker.status()
    info = already or broker.start()
    if json_:
        emit_json({**asdict(info), "already_running": already is not None})
        return
    verb = "already running" if already else "started"
    console.print(f"[green]embedded MQTT broker {verb}[/] at [bold]{info.url}[/] (pid {info.pid})")
    if info.port != DEFAULT_PORT:
        console.print(f"[yellow]port {DEFAULT_PORT} was taken; using {info.port}[/]")


@app.command()
def stop(json_: bool = JsonOption) -> None:
    """Stop the embedded broker; its connected clients are disconnected."""
    settings = STATE.settings
    require_embedded_broker(settings)
    stopped = local_broker(settings).stop()
    if json_:
        emit_json({"stopped": stopped})
    else:
        console.print("embedded MQTT broker stopped" if stopped else "no embedded MQTT broker was running")


@app.command()
def status(json_: bool = JsonOption) -> None:
    """Say whether the embedded broker runs and where (exit code 3 when it does not)."""
    settings = STATE.settings
    require_embedded_broker(settings)
    info = local_broker(settings).status()
    if info is None:
        if json_:
            emit_json({"running": False})
        else:
            console.print("no embedded MQTT broker is running (start one with `flexledger broker start`)")
        raise typer.Exit(3)
    if json_:
        emit_json({"running": True, **asdict(info)})
    else:
        console.print(f"embedded MQTT broker running at [bold]{info.url}[/] (pid {info.pid}, log {info.log_file})")
