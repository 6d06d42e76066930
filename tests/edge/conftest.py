"""Fixtures for the edge agent's tests: keys, configs, and an in-memory broker."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dispatch_world import DISPATCHER, REGISTRY

from flexledger_edge.publisher import BrokerUnavailableError, SessionCallbacks
from flexledger_edge.reading import OracleDomain

METER_KEY = "0x" + "4c" * 32
ORACLE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
CHAIN_ID = 31337


class FakeSession:
    """One connection to :class:`FakeBroker`."""

    def __init__(self, broker: FakeBroker, callbacks: SessionCallbacks) -> None:
        self.broker = broker
        self.callbacks = callbacks
        self.closed = False
        self.unacked: list[int] = []
        self.topics: dict[int, tuple[str, bytes]] = {}
        self.subscriptions: list[str] = []

    def publish(self, topic: str, payload: bytes) -> int | None:
        if self.closed or not self.broker.up:
            return None
        self.broker.mid += 1
        self.broker.received.append((topic, payload))
        self.unacked.append(self.broker.mid)
        self.topics[self.broker.mid] = (topic, payload)
        return self.broker.mid

    def subscribe(self, topic: str) -> bool:
        if self.closed or not self.broker.up:
            return False
        self.subscriptions.append(topic)
        return True

    def poll(self, timeout: float) -> bool:
        if self.closed or not self.broker.up:
            return False
        if self.broker.auto_ack:
            acks, self.unacked = self.unacked, []
            for mid in acks:
                self.callbacks.on_puback(mid)
                self.broker.oracle_receives(self, *self.topics.pop(mid))
        return True

    def close(self) -> None:
        self.closed = True

    def deliver(self, topic: str, payload: bytes) -> None:
        self.callbacks.on_message(topic, payload)


class FakeBroker:
    """An in-memory broker: can be down, can withhold PUBACKs, records what it received. Behind it an
    oracle that receipts every reading it keeps (as `flexledger oracle run`), except the next
    ``oracle_loses`` readings, which the broker acknowledges and the oracle never stores."""

    def __init__(self) -> None:
        self.up = True
        self.auto_ack = True
        self.mid = 0
        self.received: list[tuple[str, bytes]] = []
        self.sessions: list[FakeSession] = []
        self.attempts = 0
        self.receipts = True
        self.oracle_loses = 0
        self.stored: list[tuple[str, int]] = []  # what the oracle kept: (meter, sequence)

    def oracle_receives(self, session: FakeSession, topic: str, payload: bytes) -> None:
        if not topic.startswith("flexledger/v1/readings/"):
            return
        if self.oracle_loses > 0:
            self.oracle_loses -= 1
            return
        data = json.loads(payload)
        key = (data["meter"], data["sequence"])
        outcome = "duplicate" if key in self.stored else "stored"
        if outcome == "stored":
            self.stored.append(key)
        receipts = f"flexledger/v1/receipts/{data['meter'].lower()}"
        if self.receipts and receipts in session.subscriptions:
            session.deliver(receipts, json.dumps({**{k: data[k] for k in (
                "meter", "ispStart", "sequence", "importWh", "exportWh")}, "outcome": outcome}).encode())

    def connect(self, callbacks: SessionCallbacks) -> FakeSession:
        self.attempts += 1
        if not self.up:
            raise BrokerUnavailableError("fake broker is down")
        session = FakeSession(self, callbacks)
        self.sessions.append(session)
        return session

    @property
    def session(self) -> FakeSession:
        return self.sessions[-1]


@pytest.fixture
def fake_broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
def domain() -> OracleDomain:
    return OracleDomain(CHAIN_ID, ORACLE)


@pytest.fixture
def meter_key() -> bytes:
    return bytes.fromhex(METER_KEY[2:])


def render_toml(data: dict[str, Any], prefix: str = "") -> str:
    """A tiny TOML writer for the tests' configs (scalars and nested tables)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((f"{prefix}{key}", value))
        elif isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, str):
            lines.append(f"{key} = {value!r}".replace("'", '"'))
        else:
            lines.append(f"{key} = {value}")
    text = "\n".join(lines) + "\n"
    for name, table in tables:
        text += f"\n[{name}]\n" + render_toml(table, prefix=f"{name}.")
    return text


def base_config(state_dir: str = "state", **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "chain_id": CHAIN_ID,
        "oracle_address": ORACLE,
        "mode": "development",
        "state_dir": state_dir,
        "meter": {"private_key": METER_KEY},
        "broker": {"url": "mqtt://127.0.0.1:1"},
        "driver": {"kind": "simulated", "base_load_w": 500, "pv_peak_w": 3000, "seed": 7},
        "asset": {"id": 7, "device": {"kind": "battery", "capacity_wh": 10_000, "max_power_w": 5_000, "initial_soc": 0.5}},
        "orders": {"market": 1, "market_registry": REGISTRY, "dispatcher": DISPATCHER},
    }
    config.update(overrides)
    return config


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a config file (the base one, with top-level overrides) and return its path."""

    def write(data: dict[str, Any] | None = None, name: str = "agent.toml", **overrides: Any) -> Path:
        path = tmp_path / name
        path.write_text(render_toml(data if data is not None else base_config(**overrides)))
        return path

    return write

