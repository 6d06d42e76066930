"""The HTTP API (FastAPI, versioned under ``/v1``): the market's public data from the index, each
party's own data after it signs in with its wallet (EIP-4361), and the aggregators' offer relay."""
