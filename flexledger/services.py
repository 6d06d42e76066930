"""Checking that the configured database and MQTT broker answer, before work starts."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import urlparse

from .errors import FlexledgerError


class ServiceUnavailableError(FlexledgerError):
    """A configured database or broker does not answer."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    ok: bool
    detail: str


def redact(url: str) -> str:
    """The URL without its password, fit to print."""
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return url


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
        return ServiceStatus("database", redact(url), False, str(exc.__cause__ or exc).splitlines()[0])
    finally:
        engine.dispose()


def check_broker(url: str, timeout: float = 5.0) -> ServiceStatus:
    """Open an MQTT session (CONNECT/CONNACK) with paho and close it."""
    import paho.mqtt.client as mqtt

    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
    done = threading.Event()
    outcome: dict[str, str] = {}

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object = None) -> None:
        outcome["reason"] = str(reason)
        done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if parsed.username:
        client.username_pw_set(parsed.username, parsed.password)
    if parsed.scheme == "mqtts":
        client.tls_set()
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except (TimeoutError, OSError) as exc:
        return ServiceStatus("broker", redact(url), False, str(exc))
    client.loop_start()
    try:
        if not done.wait(timeout):
            return ServiceStatus("broker", redact(url), False, f"no CONNACK within {timeout:.0f} s")
        reason = outcome.get("reason", "")
        return ServiceStatus("broker", redact(url), reason == "Success", reason)
    finally:
        client.disconnect()
        client.loop_stop()
