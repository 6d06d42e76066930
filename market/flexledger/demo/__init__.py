"""`flexledger demo`: the whole market flow on a fresh local chain, each step a module."""
