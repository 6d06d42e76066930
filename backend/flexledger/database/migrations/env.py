"""Alembic's environment: migrations run on the connection ``flexledger.database.engine.migrate``
hands over (``alembic`` from the command line is not needed)."""

from __future__ import annotations

from alembic import context

from flexledger.database.engine import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
