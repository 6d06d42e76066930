"""Fixtures the red-team regression tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flexledger.chain.node import free_port
from flexledger.delivery.broker import BrokerInfo, LocalBroker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[LocalBroker, BrokerInfo]]:
    """The embedded broker as `flexledger` starts it (users, passwords, ACLs), on a free port."""
    local = LocalBroker(tmp_path / "broker", port=free_port())
    info = local.start()
    yield local, info
    local.stop()
