"""Times as people write them: Unix seconds or ISO 8601 (UTC unless the text names a zone)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def parse_time(value: Any) -> int:
    """Unix seconds from an int, a string of digits, or an ISO 8601 time (``Z`` accepted).

    Raises ``ValueError`` for anything else.
    """
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def iso(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
