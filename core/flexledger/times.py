"""Times as people write them: Unix seconds or ISO 8601 (UTC unless the text names a zone), and
durations (``90s``, ``15m``, ``1h30m``, ``2d``) ahead of a given moment (``+1h30m``)."""

from __future__ import annotations

import datetime as dt
import re
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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_PART = re.compile(r"(\d+)([smhd])")


def parse_duration(text: str) -> int:
    """Seconds from ``90s``, ``15m``, ``1h30m``, ``2d`` (parts in any order, each a number and a unit).

    Raises ``ValueError`` for anything else.
    """
    spec = text.strip().lower()
    if not spec or _DURATION_PART.sub("", spec):
        raise ValueError(f"{text!r} is not a duration such as 90s, 15m, 1h30m or 2d")
    return sum(int(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(spec))


def parse_moment(value: str, now: int) -> int:
    """Unix seconds from a time (:func:`parse_time`) or ``+DURATION`` after ``now``.

    Raises ``ValueError`` for anything else.
    """
    text = value.strip()
    if text.startswith("+"):
        return now + parse_duration(text[1:])
    try:
        return parse_time(text)
    except ValueError:
        raise ValueError(f"{value!r} is neither Unix seconds, an ISO 8601 time (2026-12-01T00:00:00Z) "
                         "nor +DURATION (+90s, +15m, +1h30m, +2d)") from None
