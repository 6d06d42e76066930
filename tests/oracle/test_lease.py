"""The anchoring lease: one holder per market at a time, renewed by its holder, taken over once
expired, given back on a graceful stop; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from oracle_stores import STORES, store_url

from flexledger.oracle.lease import lease_holder, release_lease, take_lease
from flexledger.oracle.store import open_store


@pytest.mark.parametrize("store", STORES)
def test_one_holder_at_a_time_until_it_expires_or_is_given_back(tmp_path: Path, store: str) -> None:
    with store_url(store, tmp_path) as url:
        engine = open_store(url)
        try:
            assert lease_holder(engine, 1, 100) is None
            assert take_lease(engine, 1, "a", 100, 60)
            assert not take_lease(engine, 1, "b", 100, 60)
            assert take_lease(engine, 2, "b", 100, 60)  # another market's lease is its own
            assert take_lease(engine, 1, "a", 150, 60)  # renewed: now until 210
            assert not take_lease(engine, 1, "b", 209, 60)
            assert lease_holder(engine, 1, 209) == "a"
            assert take_lease(engine, 1, "b", 210, 60)  # expired: taken over
            assert not take_lease(engine, 1, "a", 211, 60)
            release_lease(engine, 1, "a")  # not a's to give back: nothing changes
            assert lease_holder(engine, 1, 211) == "b"
            release_lease(engine, 1, "b")
            assert lease_holder(engine, 1, 211) is None
            assert take_lease(engine, 1, "a", 212, 60)
        finally:
            engine.dispose()
