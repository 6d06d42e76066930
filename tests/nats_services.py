"""The replicated broker's tests run with the service tests (`make test-services`, which CI runs
with FLEXLEDGER_TEST_NATS=1 against this machine's nats-server): a NATS cluster started, killed
and restarted takes a minute of the suite, and a user's machine has no nats-server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from flexledger.delivery.nats_broker import NatsBroker, NatsServerMissingError

NATS_ENV = "FLEXLEDGER_TEST_NATS"


def nats_broker(folder: Path, **options: Any) -> NatsBroker:
    """A NatsBroker of the test's own, or the test skipped with the reason."""
    if not os.environ.get(NATS_ENV):
        pytest.skip(f"{NATS_ENV} is not set: the NATS variants run with the service tests (make test-services)")
    try:
        return NatsBroker(folder, **options)
    except NatsServerMissingError:
        pytest.skip("nats-server is not installed here: the replicated broker cannot be tested")
