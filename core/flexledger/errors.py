"""The root of every error flexledger raises on purpose.

Each carries a message that says what was wrong and a ``hint`` that says what to do, so the
CLI can print both instead of a traceback and the API can answer with a reason.
"""

from __future__ import annotations


class FlexledgerError(Exception):
    """Base class of flexledger's own errors."""

    hint: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigurationError(FlexledgerError):
    """The configuration (file, environment or flags) is invalid or inconsistent."""
