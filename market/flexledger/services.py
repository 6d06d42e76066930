"""Checking that the configured chain, database and MQTT broker answer, before work starts."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flexledger.errors import FlexledgerError
from flexledger.redaction import redact_url, scrub_urls

if TYPE_CHECKING:
    from flexledger.config import Settings


class ServiceUnavailableError(FlexledgerError):
    """A configured database or broker does not answer."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    ok: bool
    detail: str


def redact(url: str) -> str:
    """The URL fit to print: :func:`flexledger.redaction.redact_url` (kept for callers of this name)."""
    return redact_url(url)


def check_chain(url: str, timeout: float = 5.0, *, manifest_chain_id: int | None = None) -> ServiceStatus:
    """Ask the node its chain id and head; "ok" only when it answers and, given the manifest's chain
    id, serves that chain."""
    from flexledger.chain.connection import ChainConnection
    from flexledger.chain.errors import ChainError

    try:
        conn = ChainConnection.connect(url, timeout=timeout)
        head = int(conn.w3.eth.block_number)
    except ChainError as exc:
        return ServiceStatus("chain", redact(url), False, scrub_urls(exc.message, url))
    detail = f"chain id {conn.chain_id}, block {head}, {conn.client_version()}"
    if manifest_chain_id is not None and manifest_chain_id != conn.chain_id:
        return ServiceStatus("chain", redact(url), False, f"{detail}: the manifest is for chain id {manifest_chain_id}")
    return ServiceStatus("chain", redact(url), True, detail)


def check_configured_chain(settings: Settings) -> ServiceStatus:
    """The chain commands would reach, against the manifest's chain id: the configured RPC URL, or
    the embedded node (checked, not started: commands start it)."""
    import json

    manifest = settings.manifest_path
    chain_id = json.loads(manifest.read_text()).get("chain_id") if manifest.is_file() else None
    if settings.rpc_url:
        return check_chain(settings.rpc_url, manifest_chain_id=chain_id)
    info = settings.local_node().status()
    if info is None:
        return ServiceStatus("chain", "(embedded anvil)", True, "not running: commands start it")
    return check_chain(info.rpc_url, manifest_chain_id=chain_id)


def check_database(url: str, timeout: float = 5.0) -> ServiceStatus:
    """Connect with SQLAlchemy and run ``SELECT 1``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    args = {"connect_timeout": int(timeout)} if url.startswith("postgresql") else {}
    engine = create_engine(url, connect_args=args)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT 1")).scalar_one()
        return ServiceStatus("database", redact(url), version == 1, engine.dialect.name)
    except SQLAlchemyError as exc:
        detail = str(exc.__cause__ or exc).splitlines()[0]
        return ServiceStatus("database", redact(url), False, scrub_urls(detail, url))
    finally:
        engine.dispose()


def check_broker(url: str, timeout: float = 5.0, *, client_id: str = "", ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None) -> ServiceStatus:
    """Connect as the oracle does (its user, password, TLS and client certificate) and subscribe to
    the readings: "ok" only when the broker accepts these credentials *and* grants the subscription,
    so a broker that lets anyone in, or this user read nothing, is not reported fine.

    The check connects under ``<client_id>:check`` with a clean session: never under the oracle's
    own id, whose persistent session a clean CONNECT would wipe (the embedded broker lets a user
    use ``<user>:<anything>``; a broker that forces the client id to the user name must not be
    used, for the same reason).
    """
    import paho.mqtt.client as mqtt

    from flexledger.oracle.consumer import READINGS_TOPIC, BrokerEndpoint

    shown = redact(url)
    try:
        endpoint = BrokerEndpoint.from_url(url, ca_file=ca_file, cert_file=cert_file, key_file=key_file)
    except ValueError as exc:
        return ServiceStatus("broker", shown, False, str(exc))
    connected, subscribed = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}

    def on_connect(client: mqtt.Client, _u: object, _flags: object, reason: mqtt.ReasonCode, _p: object = None) -> None:
        outcome["connect"] = str(reason)
        if not reason.is_failure:
            client.subscribe(READINGS_TOPIC, qos=1)
        connected.set()

    def on_subscribe(_c: mqtt.Client, _u: object, _mid: int, codes: list[mqtt.ReasonCode], _p: object = None) -> None:
        outcome["subscribe"] = ", ".join(str(c) for c in codes)
        outcome["granted"] = "yes" if not any(c.is_failure for c in codes) else "no"
        subscribed.set()

    check_id = f"{client_id}:check" if client_id else ""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=check_id, clean_session=True,
                         protocol=mqtt.MQTTv311)
    try:
        endpoint.apply(client)
    except (OSError, ValueError) as exc:  # an unreadable CA, certificate or key
        return ServiceStatus("broker", shown, False, scrub_urls(str(exc), url))
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=10)
    except (TimeoutError, OSError) as exc:
        return ServiceStatus("broker", shown, False, scrub_urls(str(exc), url))
    client.loop_start()
    try:
        if not connected.wait(timeout):
            return ServiceStatus("broker", shown, False, f"no CONNACK within {timeout:.0f} s")
        if "Success" not in outcome.get("connect", ""):
            return ServiceStatus("broker", shown, False, f"connection refused: {outcome.get('connect')}")
        if not subscribed.wait(timeout):
            return ServiceStatus("broker", shown, False, f"no SUBACK within {timeout:.0f} s")
        if outcome.get("granted") != "yes":
            return ServiceStatus("broker", shown, False,
                                 f"connected, but the subscription to {READINGS_TOPIC} was refused "
                                 f"({outcome.get('subscribe', 'no SUBACK')})")
        if endpoint.username is None and endpoint.cert_file is None:
            return ServiceStatus("broker", shown, False,
                                 "the broker let an anonymous client read every meter's readings: require a "
                                 "user and password (or client certificate) per client")
        who = endpoint.username or f"the certificate {endpoint.cert_file}"
        return ServiceStatus("broker", shown, True, f"authenticated as {who}, may read {READINGS_TOPIC}")
    finally:
        client.disconnect()
        client.loop_stop()
