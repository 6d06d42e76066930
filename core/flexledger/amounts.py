"""Token amounts for people: base units written in whole tokens, by the token's own decimals."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction


def format_amount(units: int | Fraction, decimals: int, places: int | None = None) -> str:
    """``units`` base units of a token with ``decimals`` decimals, with thousands separators and
    ``places`` decimal places (default: all of the token's).

    Exact for any integer and any fraction (an average price, say): no float on the way. What is
    rounded rounds half to even, as Python's formatting of a float does; what rounds to zero
    prints as zero, unsigned.
    """
    if decimals < 0:
        raise ValueError(f"a token's decimals are not negative: {decimals}")
    shown = decimals if places is None else places
    if shown < 0:
        raise ValueError(f"decimal places are not negative: {shown}")
    rounded = round(Fraction(units) * 10**shown / 10**decimals)  # Fraction rounds half to even
    return f"{Decimal(rounded).scaleb(-shown):,.{shown}f}"
