"""Baselines: a committed baseline is revealed against its hash; the standard rolling average."""

from __future__ import annotations

import datetime as dt

from eth_abi import encode
from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from flexledger.rules.baselines import DAY, baseline_commitment, reveal_matches, rolling_average

MONDAY = int(dt.datetime(2026, 11, 30, 18, 0, tzinfo=dt.UTC).timestamp())


@given(st.lists(st.integers(-2**40, 2**40), min_size=1, max_size=8), st.binary(min_size=32, max_size=32))
def test_a_reveal_matches_only_its_commitment(values: list[int], salt: bytes) -> None:
    commitment = baseline_commitment(7, MONDAY, values, salt)
    assert commitment == keccak(encode(["uint64", "uint64", "int64[]", "bytes32"], [7, MONDAY, values, salt]))
    assert reveal_matches(commitment, 7, MONDAY, values, salt)
    assert not reveal_matches(commitment, 7, MONDAY, [*values[:-1], values[-1] + 1], salt)
    assert not reveal_matches(commitment, 8, MONDAY, values, salt)
    assert not reveal_matches(commitment, 7, MONDAY, values, bytes(32) if salt != bytes(32) else b"\x01" * 32)


def test_the_rolling_average_takes_days_of_the_same_kind() -> None:
    history = {MONDAY - k * DAY: 100 * k for k in range(1, 40)}  # Sunday 100, Saturday 200, Friday 300, ...
    weekdays = [k for k in range(1, 40) if (dt.datetime.fromtimestamp(MONDAY - k * DAY, dt.UTC).weekday() < 5)][:10]
    assert rolling_average(history, MONDAY) == int(sum(100 * k for k in weekdays) / 10)
    assert rolling_average({MONDAY - 3 * DAY: 5, MONDAY - 4 * DAY: 5}, MONDAY) is None  # two similar days only
    assert rolling_average({MONDAY - k * DAY: -7 for k in (3, 4, 5)}, MONDAY) == -7  # a PV home exports
    assert rolling_average({MONDAY - k * DAY: v for k, v in ((3, -1), (4, -1), (5, 0))}, MONDAY) == 0  # toward zero
