"""The API's and the relay's Alembic branches produce exactly their tables' metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from oracle_stores import STORES, store_url

import flexledger.api.tables
import flexledger.relay.tables
from flexledger.database.engine import Base, make_engine, migrate

OURS = {t.name for m in (flexledger.api.tables, flexledger.relay.tables) for t in Base.metadata.sorted_tables
        if t.name in {c.__tablename__ for c in vars(m).values() if isinstance(c, type) and hasattr(c, "__tablename__")}}


def _touches_ours(diff: object) -> bool:
    """Whether an Alembic difference (a tuple, or a list of them for column changes) is about our tables."""
    items = diff if isinstance(diff, list) else [diff]
    return any(any(getattr(part, "name", None) in OURS or getattr(getattr(part, "table", None), "name", None) in OURS
                   or part in OURS for part in item) for item in items)


@pytest.mark.parametrize("kind", STORES)
def test_the_migrations_make_exactly_the_api_and_relay_tables(tmp_path: Path, kind: str) -> None:
    assert {"api_nonces", "api_keys", "relay_offers"} == OURS
    with store_url(kind, tmp_path) as url:
        engine = make_engine(url)
        for branch in ("api@head", "relay@head"):  # each branch stands alone
            migrate(engine, branch)
        with engine.connect() as connection:
            diffs = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            assert [d for d in diffs if _touches_ours(d)] == []
            assert set(engine.dialect.get_table_names(connection)) >= OURS
        engine.dispose()
