"""The command-line options several commands share, defined once so that they read alike everywhere.

An option whose meaning differs from a shared one gets a name of its own here rather than a
second ``--key`` with other help text in some module.
"""

from __future__ import annotations

import typer

JsonOption = typer.Option(False, "--json", help="Print one JSON object for machines instead of text.")
KeyOption = typer.Option(None, "--key", help="Keystore of the signer (else FLEXLEDGER_KEY, else the dev key on a dev chain).")
# omission claims, answers and upholds: whoever sends the transaction, no role asked of it
SenderKeyOption = typer.Option(None, "--key", help="Keystore of the account that sends the transaction.")
MarketOption = typer.Option(1, "--market", help="The market id.")
DayOption = typer.Option(..., "--day", help="The market day (YYYY-MM-DD, UTC).")
# for the commands that act on one day when given one, else on everything due
OptionalDayOption = typer.Option(None, "--day", help="The market day (YYYY-MM-DD, UTC).")
MeterOption = typer.Option(..., "--meter", help="The meter's address.")
IspOption = typer.Option(..., "--isp", help="The ISP's start: ISO 8601 (UTC) or Unix seconds.")
# the clearing's re-run in `audit day` too, where "the solver" alone would leave which one open
TimeLimitOption = typer.Option(60.0, "--time-limit", help="Seconds the clearing's solver may take in all.")
