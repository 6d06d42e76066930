"""format_amount: token base units written in whole tokens, by the token's decimals."""

from __future__ import annotations

from fractions import Fraction

import pytest

from flexledger.amounts import format_amount


@pytest.mark.parametrize(("units", "decimals", "written"), [
    (0, 2, "0.00"),
    (0, 6, "0.000000"),
    (0, 0, "0"),
    (1, 2, "0.01"),
    (12_345, 2, "123.45"),
    (-12_345, 2, "-123.45"),
    (-1, 2, "-0.01"),
    (123_456_789, 2, "1,234,567.89"),
    (1, 6, "0.000001"),
    (1_234_567_890, 6, "1,234.567890"),
    (-1_234_567_890, 6, "-1,234.567890"),
    (5, 0, "5"),
    # beyond a float's 53 bits: every digit kept
    (10**20 + 7, 2, "1,000,000,000,000,000,000.07"),
    (2**70 + 1, 6, "1,180,591,620,717,411.303425"),
])
def test_writes_every_digit_of_the_tokens_decimals(units: int, decimals: int, written: str) -> None:
    assert format_amount(units, decimals) == written


@pytest.mark.parametrize("units", [0, 1, 5, 99, 100, 12_345, -12_345, 250, 350, -250, 999_999_999_999, 2**52 + 1])
def test_two_decimals_print_as_the_float_formatting_did(units: int) -> None:
    # the CLI and the demo printed f"{units / 100:,.2f}" and f"{price / 100:,.0f}" before
    assert format_amount(units, 2) == f"{units / 100:,.2f}"
    assert format_amount(units, 2, 0) == f"{units / 100:,.0f}"


def test_fewer_places_round_half_to_even() -> None:
    assert [format_amount(u, 2, 0) for u in (150, 250, 149, 151, -150)] == ["2", "2", "1", "2", "-2"]
    assert format_amount(1_234_500, 6, 2) == "1.23"
    assert format_amount(1_235_500, 6, 2) == "1.24"


def test_more_places_than_the_token_has_pad_with_zeros() -> None:
    assert format_amount(12_345, 2, 4) == "123.4500"


def test_a_fraction_is_exact() -> None:
    # an average price: 1 EUR (100 cents) per 3 MWh
    assert format_amount(Fraction(100, 3), 2) == "0.33"
    assert format_amount(Fraction(200, 3), 2) == "0.67"
    assert format_amount(Fraction(-2_000_000, 3), 6) == "-0.666667"


def test_what_rounds_to_zero_prints_unsigned() -> None:
    assert format_amount(-1, 2, 0) == "0"
    assert format_amount(Fraction(-1, 3), 2) == "0.00"


def test_negative_decimals_or_places_are_refused() -> None:
    with pytest.raises(ValueError, match="decimals"):
        format_amount(1, -1)
    with pytest.raises(ValueError, match="places"):
        format_amount(1, 2, -1)
