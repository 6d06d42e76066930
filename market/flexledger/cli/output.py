"""Printing for people (rich) and for machines (``--json``), and errors without tracebacks."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from rich.console import Console

from flexledger.amounts import format_amount

if TYPE_CHECKING:
    from flexledger.chain.bindings import SettlementTokenClient
    from flexledger.deployment import Deployment

console = Console()
err_console = Console(stderr=True)


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if hasattr(value, "__fspath__"):
        return str(value)
    if hasattr(value, "to_json"):
        return value.to_json()
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=1, default=_default) + "\n")
    sys.stdout.flush()


# how a command writes the token's base units for people (an average price may be a fraction)
Money = Callable[[int | Fraction], str]


def money_format(token: SettlementTokenClient) -> Money:
    """In whole tokens, by the decimals the token states: read once here, not once a line."""
    decimals = token.decimals()

    def written(units: int | Fraction) -> str:
        return format_amount(units, decimals)

    return written


def market_money(chain: Deployment) -> Money:
    """``money_format`` of the deployment's settlement token (the one every amount of the market is in)."""
    return money_format(chain.token)
