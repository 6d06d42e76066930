"""The aggregator's offer relay: signed offers checked at intake and queued durably in SQL
(``queue``), then sent to the OrderBook in batches by the relayer (``relayer``), each offer's status
moving queued -> sending -> sent (tx hash) -> accepted | skipped (reason).

Its own Alembic branch (``relay``), apart from the API's: the relayer is a process of its own that
needs no HTTP server, and the API only writes into the queue through this package.
"""
