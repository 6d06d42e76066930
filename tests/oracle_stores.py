"""Oracle stores for tests: SQLite in the test's folder, or PostgreSQL (FLEXLEDGER_TEST_DATABASE_URL)
in a schema of the test's own, dropped afterwards, so that no test touches tables another run
(or another version of the store) keeps there."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]


@contextmanager
def postgresql_schema() -> Iterator[str]:
    """A URL of FLEXLEDGER_TEST_DATABASE_URL's database whose tables live in a fresh schema."""
    url = os.environ.get("FLEXLEDGER_TEST_DATABASE_URL")
    if not url:
        pytest.skip("no database named by FLEXLEDGER_TEST_DATABASE_URL")
    schema = f"oracle_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def store_url(kind: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'oracle.db'}"
    else:
        with postgresql_schema() as url:
            yield url
