"""`flexledger broker`: the embedded MQTT broker."""

from __future__ import annotations

import shutil
from dataclasses import asdict

import typer

from flexledger.cli.context import STATE
from flexledger.cli.options import JsonOption
from flexledger.cli.output import console, emit_json
from flexledger.delivery.broker import (
    DEFAULT_PORT,
    MOSQUITTO_ACL,
    BrokerUser,
    local_broker,
    meter_user,
    require_embedded_broker,
)

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


user_app = typer.Typer(
    help="Who may connect to the embedded broker: each client is a user with a random password, "
    "connecting under its user name as client id, allowed only the topics given here. No anonymous "
    "client is admitted. The oracle's user is made on its first run.",
    no_args_is_help=True,
)
app.add_typer(user_app, name="user")


def _show_new_user(user: BrokerUser, password: str, json_: bool) -> None:
    if json_:
        emit_json({"user": user.name, "client_id": user.name, "password": password,
                   "publish": list(user.publish), "subscribe": list(user.subscribe)})
        return
    console.print(f"broker user [bold]{user.name}[/] (connect with this client id too)")
    console.print(f"  publish:   {', '.join(user.publish) or '(nothing)'}")
    console.print(f"  subscribe: {', '.join(user.subscribe) or '(nothing)'}")
    console.print(f"  password:  {password}   (shown once; give it to the client, e.g. as [broker] password_env)")


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="User name, also the only client id it may use."),
    publish: list[str] = typer.Option([], "--publish", help="A topic filter it may publish to (repeatable)."),
    subscribe: list[str] = typer.Option([], "--subscribe", help="A topic filter it may subscribe to (repeatable)."),
    json_: bool = JsonOption,
) -> None:
    """Make a user (or give an existing one a new password and these topics)."""
    settings = STATE.settings
    require_embedded_broker(settings)
    user = BrokerUser(name, tuple(publish), tuple(subscribe))
    password = local_broker(settings).users.add(user.name, publish=user.publish, subscribe=user.subscribe)
    _show_new_user(user, password, json_)


@user_app.command("add-meter")
def user_add_meter(
    meter: str = typer.Argument(..., help="The meter's address (0x...)."),
    asset: int | None = typer.Option(None, "--asset", help="Its asset: it may then read the asset's orders."),
    json_: bool = JsonOption,
) -> None:
    """Make the user of an edge agent: flexledger-edge-<meter>, which may publish only its meter's
    readings (and its asset's acknowledgements) and read only its meter's receipts (and its asset's
    orders)."""
    settings = STATE.settings
    require_embedded_broker(settings)
    user = meter_user(meter, asset)
    password = local_broker(settings).users.add(user.name, publish=user.publish, subscribe=user.subscribe)
    _show_new_user(user, password, json_)


@user_app.command("upgrade")
def user_upgrade(json_: bool = JsonOption) -> None:
    """Give the edge agents' users made before receipts the right to read their meter's receipts
    (passwords unchanged; the embedded broker's start does it too)."""
    settings = STATE.settings
    require_embedded_broker(settings)
    upgraded = local_broker(settings).users.upgrade_meters()
    if json_:
        emit_json({"upgraded": upgraded})
    else:
        console.print(f"upgraded {len(upgraded)} meter user(s)" + (f": {', '.join(upgraded)}" if upgraded else ""))


@app.command("mosquitto-acl")
def mosquitto_acl() -> None:
    """Print the Mosquitto ACL file for flexledger (meters by certificate CN or user name = their
    lowercase address, and the oracle's user): readings in, receipts and orders out."""
    console.print(MOSQUITTO_ACL, end="", markup=False, highlight=False)


@user_app.command("remove")
def user_remove(name: str = typer.Argument(...), json_: bool = JsonOption) -> None:
    """Remove a user: its next CONNECT is refused."""
    settings = STATE.settings
    require_embedded_broker(settings)
    removed = local_broker(settings).users.remove(name)
    if json_:
        emit_json({"removed": removed})
    else:
        console.print(f"removed {name}" if removed else f"no user {name}")


@user_app.command("list")
def user_list(json_: bool = JsonOption) -> None:
    """The users and their topics (never their passwords)."""
    settings = STATE.settings
    require_embedded_broker(settings)
    users = local_broker(settings).users.list()
    if json_:
        emit_json([{"user": u.name, "publish": list(u.publish), "subscribe": list(u.subscribe)} for u in users])
        return
    for u in users:
        console.print(f"{u.name}: publish {', '.join(u.publish) or '-'}; subscribe {', '.join(u.subscribe) or '-'}")
