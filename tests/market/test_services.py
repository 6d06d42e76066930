"""The configured database and broker: checked for real against the services CI names."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from flexledger.chain.node import free_port
from flexledger.delivery.broker import LocalBroker, meter_user
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
        if urlsplit(TEST_MQTT_URL).username is None:  # a broker open to anyone is not "fine"
            assert not status.ok and "anonymous" in status.detail
            return
    else:  # the embedded broker, on a free port, as the oracle connects to it
        broker = LocalBroker(tmp_path, port=free_port())
        try:
            url, client_id = broker.oracle_url(broker.start())
            status = check_broker(url, client_id=client_id)
        finally:
            broker.stop()
    assert status.ok, status.detail


def test_the_check_authenticates_and_needs_the_readings(tmp_path: Path) -> None:
    """Anonymous, a wrong password and a user who may not read the readings all fail the check."""
    broker = LocalBroker(tmp_path, port=free_port())
    info = broker.start()
    try:
        url, client_id = broker.oracle_url(info)
        assert check_broker(url, client_id=client_id).ok
        anonymous = check_broker(info.url)
        assert not anonymous.ok and "refused" in anonymous.detail
        wrong = check_broker(url.replace(urlsplit(url).password or "", "wrong"), client_id=client_id)
        assert not wrong.ok and "refused" in wrong.detail
        meter_url = broker.client_url(info, meter_user("0x" + "ab" * 20, 7))
        meter = check_broker(meter_url, client_id=meter_user("0x" + "ab" * 20).name)
        assert not meter.ok and "subscription" in meter.detail
    finally:
        broker.stop()


def test_unreachable_broker_is_reported_not_raised() -> None:
    status = check_broker(f"mqtt://127.0.0.1:{free_port()}", timeout=2)
    assert not status.ok


def test_passwords_are_not_printed() -> None:
    assert redact("postgresql://flex:s3cret@db/flex") == "postgresql://flex:***@db/flex"
