"""The demo's money, written as its token's base units in euros."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from flexledger.amounts import format_amount
from flexledger.errors import FlexledgerError

if TYPE_CHECKING:
    from flexledger.deployment import Deployment

# The demo deploys contracts/src/token/SettlementToken.sol, whose decimals() is 2 (euro cents):
# run_demo asks the deployed token once (check_token) rather than every printed line.
TOKEN_DECIMALS = 2


def eur(units: int | Fraction, places: int | None = None) -> str:
    """``units`` of the demo's token in euros, with ``places`` decimals (default: the token's)."""
    return format_amount(units, TOKEN_DECIMALS, places)


def check_token(chain: Deployment) -> None:
    """Fail before any amount is printed if the deployed token's decimals are not ``TOKEN_DECIMALS``."""
    decimals = chain.token.decimals()
    if decimals != TOKEN_DECIMALS:
        raise FlexledgerError(f"the deployed settlement token has {decimals} decimals, the demo writes amounts "
                              f"with {TOKEN_DECIMALS}", hint="set TOKEN_DECIMALS in flexledger/demo/money.py "
                              "to the token's decimals()")
