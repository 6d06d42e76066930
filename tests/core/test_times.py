"""Times and durations as people write them (flexledger.times)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flexledger.times import iso, parse_duration, parse_moment, parse_time


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from("smhd")), min_size=1, max_size=4))
def test_a_duration_is_the_sum_of_its_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    assert parse_duration(text) == sum(n * unit[u] for n, u in parts)


@pytest.mark.parametrize("bad", ["", "h", "10", "1h 30m", "1w", "-5m", "soon", "1.5h"])
def test_anything_else_is_not_a_duration(bad: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(bad)


@given(st.integers(0, 2**33))
def test_iso_round_trips(seconds: int) -> None:
    assert parse_time(iso(seconds)) == seconds


def test_a_moment_is_a_time_or_a_duration_ahead() -> None:
    now = 1_800_000_000
    assert parse_moment("+1h30m", now) == now + 5400
    assert parse_moment(" 1800000005 ", now) == 1_800_000_005
    assert parse_moment("2026-12-01T00:00:00Z", now) == 1_796_083_200
    assert parse_moment("2026-12-01T01:00:00+01:00", now) == 1_796_083_200
    with pytest.raises(ValueError, match=r"neither Unix seconds, an ISO 8601 time .* nor \+DURATION"):
        parse_moment("tomorrow", now)
