"""The indexer's tables as rows to compare, and a rebuild to compare them with (for the tests of
tests/backend/index/)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.database.engine import make_engine, migrate
from flexledger.index.indexer import Indexer
from flexledger.index.tables import LOG_TABLES, Block, Checkpoint

Tables = dict[str, list[tuple[Any, ...]]]


def new_engine(url: str) -> Engine:
    """An engine on ``url``, its database migrated to every head."""
    engine = make_engine(url)
    migrate(engine)
    return engine


def dump(engine: Engine) -> Tables:
    """Every table the indexer writes, as sorted rows (JSON values as their text)."""
    out: Tables = {}
    with engine.connect() as c:
        for table in (Block.__table__, Checkpoint.__table__, *LOG_TABLES):
            rows = [tuple(repr(v) if isinstance(v, dict | list) else v for v in row)
                    for row in c.execute(select(table))]
            out[table.name] = sorted(rows, key=repr)
    return out


def rebuilt(engine: Engine, conn: ChainConnection, manifest: Manifest) -> Tables:
    """The tables a fresh read of the whole chain writes into ``engine``."""
    Indexer(engine, conn, manifest).run()
    return dump(engine)


def column(engine: Engine, table: str, name: str) -> list[Any]:
    """One column of one of the indexer's tables, in no particular order."""
    return [row[0] for row in columns(engine, table, name)]


def columns(engine: Engine, table: str, *names: str) -> list[tuple[Any, ...]]:
    """Some columns of one of the indexer's tables, row by row, in no particular order."""
    by_name = {t.name: t for t in LOG_TABLES}
    with engine.connect() as c:
        return [tuple(row) for row in c.execute(select(*(by_name[table].c[n] for n in names)))]
