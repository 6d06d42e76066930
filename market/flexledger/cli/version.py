"""flexledger's version, as installed (``flexledger --version``, ``flexledger version``).

The namespace package ``flexledger`` has no ``__init__.py`` to carry it, so it lives with the CLI.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("flexledger")
except PackageNotFoundError:  # running from a checkout that is not installed
    __version__ = "0.0.0+unknown"
