"""flexledger: a blockchain-anchored, decentralised marketplace for electricity-grid flexibility."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flexledger")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0.0.0+unknown"
