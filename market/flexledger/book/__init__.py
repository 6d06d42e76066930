"""The order book seen from Python: relaying signed offers and reading a day's book back from the chain."""
