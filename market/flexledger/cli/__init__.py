"""The `flexledger` command line."""
