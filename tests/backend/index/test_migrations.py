"""The index branch's migrations make exactly the tables the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Table, inspect

import flexledger.index.tables  # noqa: F401 - its tables join Base.metadata
from flexledger.database.engine import MIGRATIONS, Base


def test_the_migrations_produce_the_metadata(engines: Callable[[], Engine]) -> None:
    engine = engines()  # migrated to every head
    with engine.connect() as c:
        context = MigrationContext.configure(c, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, Base.metadata)
    # another package's branch may add tables of its own; none of the indexer's may differ
    assert [d for d in differences if _table_of(d) in _index_tables()] == []
    assert _index_tables() <= set(inspect(engine).get_table_names())


def test_the_index_branch_starts_from_nothing() -> None:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    labelled = [r for r in ScriptDirectory.from_config(config).walk_revisions() if "index" in r.branch_labels]
    assert len(labelled) == 1 and labelled[0].down_revision is None


def _index_tables() -> set[str]:
    from flexledger.index.tables import LOG_TABLES, Block, Checkpoint

    return {Block.__tablename__, Checkpoint.__tablename__, *(t.name for t in LOG_TABLES)}


def _table_of(difference: Any) -> str:
    """The table a compare_metadata entry is about: ("add_table", table), ("add_index", index),
    ("add_column", schema, table name, column), or a list of ("modify_type", schema, table name, ...)."""
    entry = difference[0] if isinstance(difference, list) else difference
    if isinstance(entry[1], Table):
        return str(entry[1].name)
    if hasattr(entry[1], "table"):  # an index or a constraint
        return str(entry[1].table.name)
    return str(entry[2])
