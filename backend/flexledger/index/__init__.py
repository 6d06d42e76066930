"""The chain indexer: every flexledger contract's events, from the manifest's deployment blocks,
into SQL tables that can be rebuilt from the chain at any time (the chain stays the truth)."""
