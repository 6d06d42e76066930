"""The command-line options several commands share, defined once so that they read alike everywhere.

An option whose meaning differs from a shared one gets a name of its own here rather than a
second ``--key`` with other help text in some module.
"""

from __future__ import annotations

import datetime as dt

import typer

JsonOption = typer.Option(False, "--json", help="Print one JSON object for machines instead of text.")
KeyOption = typer.Option(None, "--key", help="Keystore of the signer (else FLEXLEDGER_KEY, else the dev key on a dev chain).")
# omission claims, answers and upholds: whoever sends the transaction, no role asked of it
SenderKeyOption = typer.Option(None, "--key", help="Keystore of the account that sends the transaction.")
# the oracle's own commands: anchoring needs the ORACLE role, staking only the oracle's account
AnchoringKeyOption = typer.Option(None, "--key", help="Keystore of the oracle (it must hold the ORACLE role).")
StakingKeyOption = typer.Option(None, "--key", help="Keystore of the oracle.")
MarketOption = typer.Option(1, "--market", help="The market id.")
DayOption = typer.Option(..., "--day", help="The market day (YYYY-MM-DD, UTC).")
# for the commands that act on one day when given one, else on everything due
OptionalDayOption = typer.Option(None, "--day", help="The market day (YYYY-MM-DD, UTC).")
MeterOption = typer.Option(..., "--meter", help="The meter's address.")
IspOption = typer.Option(..., "--isp", help="The ISP's start: ISO 8601 (UTC) or Unix seconds.")
# dispute, dispute-baseline, resettle-baseline: an offer named by its digest once settled
SettledOfferOption = typer.Option(..., "--offer", help="The settled offer's digest (0x.., as `flexledger settle` shows).")
# challenge-baseline, uphold-baseline: a standard baseline named by its asset and ISP
BaselineAssetOption = typer.Option(..., "--asset", min=1, help="The asset whose meter's standard baseline is challenged.")
BaselineIspOption = typer.Option(..., "--isp", help="The ISP of the baseline: ISO 8601 (UTC) or Unix seconds.")
# an offer's or a request's window
StartOption = typer.Option(..., "--start", help="First ISP's start: ISO 8601 (UTC) or Unix seconds.")
ZoneOption = typer.Option(..., "--zone", help="The zone.")
# the clearing's re-run in `audit day` too, where "the solver" alone would leave which one open
TimeLimitOption = typer.Option(60.0, "--time-limit", help="Seconds the clearing's solver may take in all.")


def parse_day(day: str) -> dt.date:
    """``--day``'s calendar date (the market day is the deployment's to place: ``Deployment.day_start``)."""
    try:
        return dt.date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(f"--day {day!r} is not YYYY-MM-DD") from None
