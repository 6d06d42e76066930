"""flexledger's edge agent: the program on the prosumer's gateway.

It is its own small distribution and imports nothing from the rest of flexledger.
"""

__version__ = "0.1.0"
