"""The CLI writes amounts by the decimals its token states, asked once per command."""

from __future__ import annotations

from typing import cast

import pytest

from flexledger.chain.bindings import SettlementTokenClient
from flexledger.cli.output import money_format


class _Token:
    """A token that only answers decimals(), counting the questions."""

    def __init__(self, decimals: int) -> None:
        self.asked = 0
        self._decimals = decimals

    def decimals(self) -> int:
        self.asked += 1
        return self._decimals


@pytest.mark.parametrize(("decimals", "written"), [(2, ["0.00", "1,234,567.89", "-0.05"]),
                                                   (6, ["0.000000", "123.456789", "-0.000005"])])
def test_every_line_uses_the_decimals_read_once(decimals: int, written: list[str]) -> None:
    token = _Token(decimals)
    money = money_format(cast(SettlementTokenClient, token))
    assert [money(units) for units in (0, 123_456_789, -5)] == written
    assert token.asked == 1
