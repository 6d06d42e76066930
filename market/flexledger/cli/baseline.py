"""`flexledger baseline`: a seller's committed baselines, kept until they are revealed at settlement."""

from __future__ import annotations

from pathlib import Path

import typer

from flexledger.cli.context import STATE
from flexledger.cli.options import JsonOption
from flexledger.cli.output import console, emit_json
from flexledger.times import iso, parse_time

app = typer.Typer(help="Committed baselines (DESIGN rule 6): values and salt kept by the seller until settlement.",
                  no_args_is_help=True)


def baselines_dir() -> Path:
    return STATE.settings.data_dir / "baselines"


def parse_values(text: str) -> list[int]:
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise typer.BadParameter(f"--values {text!r} is not a comma-separated list of whole Wh") from None


@app.command("commit")
def baseline_commit(
    asset: int = typer.Option(0, "--asset", help="The asset the offer is for."),
    portfolio: int = typer.Option(0, "--portfolio", help="Or the portfolio (an aggregator's offer): its members' "
                                                         "summed baseline."),
    start: str = typer.Option(..., "--start", help="The offer's first ISP: ISO 8601 (UTC) or Unix seconds."),
    values: str = typer.Option(..., "--values", help="Net consumption (import - export, Wh) per ISP of the offer, "
                                                    "comma-separated, e.g. 1500,1500."),
    out: Path | None = typer.Option(None, "--out", help="Write the file here (default: <data dir>/baselines/)."),
    json_: bool = JsonOption,
) -> None:
    """Commit to a baseline: a random salt, the file kept, the commitment printed.

    Pass the commitment to `flexledger offer typed-data ... --baseline-hash`; keep the file until
    the offer is settled (`flexledger settle` reveals it): without it the offer can only be settled
    by default, as if nothing were delivered.
    """
    from flexledger.baselines.files import new_baseline, save_baseline

    try:
        start_at = parse_time(start)
    except ValueError:
        raise typer.BadParameter(f"--start {start!r} is not Unix seconds or an ISO 8601 time") from None
    if (asset == 0) == (portfolio == 0):
        raise typer.BadParameter("give exactly one of --asset and --portfolio")
    baseline = new_baseline(asset, start_at, parse_values(values), portfolio=portfolio)
    path = save_baseline(baseline, baselines_dir(), out)
    if json_:
        emit_json({**baseline.to_json(), "file": str(path)})
        return
    subject = f"portfolio {portfolio}" if portfolio else f"asset {asset}"
    console.print(f"baseline of {subject} from {iso(start_at)} ({len(baseline.net_wh)} ISPs) kept in {path}")
    console.print(f"commitment [bold]0x{baseline.commitment.hex()}[/]  (give it to `flexledger offer typed-data "
                  "--baseline-hash`)")
