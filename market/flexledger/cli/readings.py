"""`flexledger readings`: what the oracle keeps, and proofs that a reading is in an anchored root."""

from __future__ import annotations

import typer

from flexledger.cli.context import STATE
from flexledger.cli.options import IspOption, JsonOption, MeterOption
from flexledger.cli.output import console, emit_json
from flexledger.times import iso, parse_time

app = typer.Typer(help="Meter readings kept by the oracle: proofs against anchored roots, refusal counts, "
                       "conflicting signed readings.",
                  no_args_is_help=True)


@app.command("proof")
def readings_proof(
    meter: str = MeterOption,
    isp: str = IspOption,
    json_: bool = JsonOption,
) -> None:
    """A kept reading with its Merkle proof and its ISP's anchor (MeterOracle.verifyReading checks it)."""
    from flexledger.oracle.anchoring import proof_for
    from flexledger.oracle.store import open_store

    try:
        isp_start = parse_time(isp)
    except ValueError:
        raise typer.BadParameter(f"--isp {isp!r} is not Unix seconds or an ISO 8601 time") from None
    engine = open_store(STATE.settings.effective_database_url)
    proof = proof_for(engine, meter, isp_start)
    if json_:
        emit_json(proof)
        return
    anchor = proof["anchor"]
    console.print(f"meter {proof['meter']}, ISP {iso(proof['ispStart'])}: {proof['importWh']} Wh in, "
                  f"{proof['exportWh']} Wh out (reading {proof['sequence']})")
    console.print(f"root {anchor['root']} ({anchor['leafCount']} readings) anchored by {anchor['oracle']} "
                  f"in {anchor['txHash']}; proof of {len(proof['proof'])} hashes")


@app.command("refused")
def readings_refused(json_: bool = JsonOption) -> None:
    """How many readings the oracle refused, per reason (late ones are kept but counted here too)."""
    from flexledger.oracle.store import open_store, rejections, session

    with session(open_store(STATE.settings.effective_database_url)) as s:
        counts = rejections(s)
    if json_:
        emit_json(counts)
    else:
        for reason, n in sorted(counts.items()):
            console.print(f"{reason:<16} {n:,}")


@app.command("conflicts")
def readings_conflicts(
    meter: str | None = typer.Option(None, "--meter", help="Only this meter's."),
    isp: str | None = typer.Option(None, "--isp", help="Only this ISP's (ISO 8601 UTC or Unix seconds)."),
    json_: bool = JsonOption,
) -> None:
    """Readings a meter signed for an ISP that differ from the one the oracle kept (and anchored):
    the evidence that the meter signed two things for one ISP, each with both signatures."""
    from flexledger.oracle.store import equivocations, open_store, session

    try:
        isp_start = parse_time(isp) if isp is not None else None
    except ValueError:
        raise typer.BadParameter(f"--isp {isp!r} is not Unix seconds or an ISO 8601 time") from None
    with session(open_store(STATE.settings.effective_database_url)) as s:
        found = equivocations(s, meter=meter, isp_start=isp_start)
    if json_:
        emit_json(found)
        return
    for e in found:
        kept, other = e["kept"], e["conflicting"]
        shown = f"{kept['importWh']} in / {kept['exportWh']} out (reading {kept['sequence']})" if kept else "erased"
        console.print(f"{e['meter']} {iso(e['ispStart'])}: kept {shown}; also signed {other['importWh']} in / "
                      f"{other['exportWh']} out (reading {other['sequence']})")
    if not found:
        console.print("no meter signed two different readings for one ISP")
