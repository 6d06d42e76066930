"""`flexledger omission`: hold an oracle to a receipt it signed "accepted" (OmissionClaims)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from flexledger.cli.context import STATE, deployment
from flexledger.cli.options import IspOption, JsonOption, MarketOption, MeterOption, SenderKeyOption
from flexledger.cli.output import console, emit_json
from flexledger.times import iso, parse_time

if TYPE_CHECKING:
    from flexledger.chain.bindings import MeterOracleClient, OmissionClaimsClient

app = typer.Typer(help="Claims that an oracle left out of its root a reading it receipted as accepted.",
                  no_args_is_help=True)


def _claims(key: Path | None) -> tuple[OmissionClaimsClient, MeterOracleClient]:
    chain = deployment(key)
    return chain.omission_claims, chain.oracle


@app.command("claim")
def omission_claim(
    receipt: Path = typer.Option(..., "--receipt", exists=True, dir_okay=False,
                                 help="A signed receipt: one line of `flexledger-edge receipts`."),
    key: Path | None = SenderKeyOption,
    json_: bool = JsonOption,
) -> None:
    """Claim that the oracle which anchored the receipt's ISP left the reading out of its root
    (posts the contract's bond: it pays whoever proves the reading is in the root)."""
    from flexledger.chain.bindings import SettlementTokenClient
    from flexledger.delivery.omissions import SignedReceipt, file_claim

    signed = SignedReceipt.load(receipt.read_text().strip().splitlines()[0])
    chain = deployment(key)
    claims = chain.omission_claims
    token = chain.at(SettlementTokenClient, claims.bond_token())  # the bond is in the token the contract takes
    tx = file_claim(claims, chain.oracle, token, signed)
    answer_by = int(tx.event("OmissionClaimed").args["answerBy"])
    if json_:
        emit_json({"market": signed.market, "ispStart": signed.isp_start, "meter": signed.meter,
                   "oracle": signed.oracle, "answerBy": answer_by, "txHash": tx.tx_hash, "gasUsed": tx.gas_used})
    else:
        console.print(f"claimed: oracle {signed.oracle} left out reading {signed.sequence} of {signed.meter} at "
                      f"{iso(signed.isp_start)}; it may answer until {iso(answer_by)}, then "
                      "`flexledger omission uphold` marks and slashes it")


@app.command("answer")
def omission_answer(
    market: int = MarketOption,
    key: Path | None = SenderKeyOption,
    json_: bool = JsonOption,
) -> None:
    """Answer the open claims against this oracle (the key's) with proofs from its store
    (`oracle run` does it every round)."""
    from flexledger.delivery.omissions import answer_claims
    from flexledger.oracle.store import open_store

    claims, _ = _claims(key)
    answered = answer_claims(open_store(STATE.settings.effective_database_url), claims, market)
    if json_:
        emit_json({"answered": answered})
    else:
        console.print(f"answered {len(answered)} claim(s)")


@app.command("uphold")
def omission_uphold(
    market: int = MarketOption,
    meter: str = MeterOption,
    isp: str = IspOption,
    key: Path | None = SenderKeyOption,
    json_: bool = JsonOption,
) -> None:
    """Uphold an unanswered claim after its window: the oracle is marked and its stake pays the claimant."""
    from flexledger.delivery.omissions import uphold

    try:
        isp_start = parse_time(isp)
    except ValueError:
        raise typer.BadParameter(f"--isp {isp!r} is not Unix seconds or an ISO 8601 time") from None
    claims, _ = _claims(key)
    tx = uphold(claims, market, isp_start, meter)
    event = tx.event("OmissionUpheld")
    oracle, slashed = str(event.args["oracleAccount"]), int(event.args["slashed"])
    if json_:
        emit_json({"oracle": oracle, "slashed": slashed, "omissions": claims.omissions_of(oracle),
                   "txHash": tx.tx_hash, "gasUsed": tx.gas_used})
    else:
        console.print(f"upheld: oracle {oracle} marked ({claims.omissions_of(oracle)} omission(s)), "
                      f"{slashed:,} of its stake to the claimant")
