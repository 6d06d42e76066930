"""The backend's SQL database: one engine per URL, one declarative base for every backend table,
and its schema moved by Alembic migrations (``migrate``).

The indexer's tables (``flexledger.index``) and the API's own (``flexledger.api``: sign-in nonces,
API keys, the offer queue) are two Alembic branches, labelled ``index`` and ``api``, each with its
own base revision under ``migrations/versions/``; ``migrate`` upgrades every head. SQLite by
default (the settings' ``database_url``), PostgreSQL by URL.
"""
