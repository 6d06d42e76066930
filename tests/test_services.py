"""The configured database and broker: checked for real against the services CI names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flexledger.broker import LocalBroker
from flexledger.chain.node import free_port
from flexledger.services import check_broker, check_database, redact

pytestmark = pytest.mark.services

# CI points these at the machine's PostgreSQL and Mosquitto; unset, the embedded defaults hold.
TEST_DATABASE_URL = os.environ.get("FLEXLEDGER_TEST_DATABASE_URL")
TEST_MQTT_URL = os.environ.get("FLEXLEDGER_TEST_MQTT_URL")


def test_database_answers(tmp_path: Path) -> None:
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'flex.db'}"
    status = check_database(url)
    assert status.ok, status.detail


def test_unreachable_database_is_reported_not_raised() -> None:
    status = check_database(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none", timeout=2)
    assert not status.ok
    assert status.detail


def test_broker_answers(tmp_path: Path) -> None:
    if TEST_MQTT_URL is not None:
        status = check_broker(TEST_MQTT_URL)
    else:  # the embedded broker, on a free port
        broker = LocalBroker(tmp_path, port=free_port())
        try:
            status = check_broker(broker.start().url)
        finally:
            broker.stop()
    assert status.ok, status.detail


def test_unreachable_broker_is_reported_not_raised() -> None:
    status = check_broker(f"mqtt://127.0.0.1:{free_port()}", timeout=2)
    assert not status.ok


def test_passwords_are_not_printed() -> None:
    assert redact("postgresql://flex:s3cret@db/flex") == "postgresql://flex:***@db/flex"
