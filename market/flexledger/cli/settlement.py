"""`flexledger settle`, `claim`, `dispute`: settle a market day's awarded offers against the
anchored readings and the sellers' baselines, make settlements final and pull the money, and
correct a settlement with a reading the meter signed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import Progress
from rich.table import Table

from flexledger.cli.baseline import baselines_dir
from flexledger.cli.context import STATE, deployment
from flexledger.cli.options import (
    BaselineAssetOption,
    BaselineIspOption,
    DayOption,
    JsonOption,
    KeyOption,
    MarketOption,
    OptionalDayOption,
    SettledOfferOption,
    parse_day,
)
from flexledger.cli.output import console, emit_json, market_money
from flexledger.times import iso, parse_time

if TYPE_CHECKING:
    from flexledger.baselines.disputes import MarketOnChain
    from flexledger.chain.structs import Record
    from flexledger.chain.transactions import Signer
    from flexledger.settlement.day import DayContext


def _context(market: int, day: str, key: Path | None) -> tuple[DayContext, Signer]:
    """The day's context (its result must be final) and the signer of the command."""
    from flexledger.settlement.day import day_context

    chain = deployment(key)
    return day_context(chain, market, chain.day_start(market, parse_day(day))), chain.sender()


def settle_command(
    day: str = DayOption,
    market: int = MarketOption,
    baselines: Path | None = typer.Option(None, "--baselines", help="Folder of baseline files "
                                          "(default: <data dir>/baselines, as `flexledger baseline commit` writes)."),
    unrevealed: bool = typer.Option(False, "--unrevealed", help="After the settlement window: settle by default the "
                                    "offers nobody settled (nothing delivered, the shortfall penalised)."),
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Settle the day's awarded offers whose baselines you hold, and those naming the standard
    ROLLING_AVERAGE baseline (anyone may settle: the meter readings and standard baselines come
    with their proofs from the oracle's store, FLEXLEDGER_DATABASE_URL).

    Each offer is settled whole against the final clearing result: delivered = direction x
    (baseline - measured), paid for up to the award, a shortfall beyond the market's tolerance
    penalised. Prints a table per award and ISP; money moves at `flexledger claim`, after the
    dispute window.
    """
    from flexledger.oracle.store import open_store
    from flexledger.settlement.day import settle_day
    from flexledger.settlement.report import outcome_rows, stored_sources

    ctx, signer = _context(market, day, key)
    folder = baselines or baselines_dir()
    sources = stored_sources(folder, open_store(STATE.settings.effective_database_url), market, ctx.params.isp_seconds)
    with Progress(console=console, transient=True, disable=json_) as bar:
        # one bar: it pulses while the awards and readings are read, then counts the offers settled
        task = bar.add_task("reading the day's awards, baselines and readings", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, description="settling offers", total=total, completed=done)

        outcomes = settle_day(ctx, signer, baselines=sources.baselines, reading=sources.reading,
                              standard=sources.standard, unrevealed=unrevealed, progress=progress)
    rows = [row for o in outcomes for row in outcome_rows(o, ctx.params.isp_seconds)]
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    if json_:
        emit_json({"market": market, "day_start": ctx.day_start, "result_id": ctx.result_id, "counts": counts,
                   "gas_used": sum(o.gas_used for o in outcomes), "settlement_window_closes": ctx.closes_at,
                   "lines": rows})
        return
    console.print(f"market {market}, day {day}: result {ctx.result_id}, {len(outcomes)} awarded offers: "
                  + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    if rows:
        money = market_money(ctx.deployment)
        table = Table(title="settled per award and ISP (EUR)")
        for column in ("offer", "request", "ISP", "awarded kWh", "delivered kWh", "paid", "penalty", "status"):
            table.add_column(column, justify="left" if column in ("offer", "ISP", "status") else "right")
        for r in rows:
            table.add_row(r["offer"][:12], str(r["request"]), iso(r["isp_start"])[:16],
                          f"{r['awarded_wh'] / 1000:,.3f}",
                          "?" if r["delivered_wh"] is None else f"{r['delivered_wh'] / 1000:,.3f}",
                          "" if r["payment"] is None else money(r["payment"]),
                          "" if r["penalty"] is None else money(r["penalty"]), r["status"])
        console.print(table)
    for o in outcomes:
        if o.reason:
            console.print(f"offer 0x{o.offer.digest.hex()[:10]} left ({o.status}): {o.reason}")
    left = counts.get("no baseline", 0) + counts.get("no reading", 0)
    if left:
        console.print(f"{left} offer(s) left: their sellers settle them (baseline files in {folder}); after "
                      f"{iso(ctx.closes_at)} anyone settles them by default with --unrevealed")
    console.print(f"money moves once each settlement's dispute window ({ctx.params.dispute_window_seconds // 3600} h) "
                  "is over: `flexledger claim`")


def claim_command(
    day: str | None = OptionalDayOption,
    market: int = MarketOption,
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Pull the money: with --day, make final the day's settlements whose dispute window is over
    (anyone may) and refund your requests of the day when due; then withdraw what you may claim
    (claims as a seller, penalties as a buyer)."""
    from flexledger.settlement.claims import claim
    from flexledger.settlement.day import ClaimNotDueError

    chain = deployment(key)
    done = claim(chain, market, None if day is None else chain.day_start(market, parse_day(day)))
    out: dict[str, Any] = {
        "account": done.account,
        "finalised": [{"offer": "0x" + f.record.offer_digest.hex(), "seller": f.record.seller, "claimed": f.claimed,
                       "from_bond": f.from_bond, "debt": f.debt} for f in done.finalised],
        "waiting": [{"offer": "0x" + r.offer_digest.hex(), "dispute_window_ends": ends} for r, ends in done.waiting],
        "refunded": [{"request": q, "amount": a} for q, a in done.refunded],
        "refunds_waiting": [{"request": q, "reason": why} for q, why in done.refunds_waiting],
        "withdrawn": done.withdrawn,
    }
    if day is not None:
        out["settled"] = done.settled
    if not done.anything:
        message, hint = _nothing_yet(out, day)
        raise ClaimNotDueError(message, hint=hint)
    if json_:
        emit_json(out)
        return
    money = market_money(chain)
    for f in out["finalised"]:
        console.print(f"final: offer {f['offer'][:12]}: {money(f['claimed'])} EUR credited to its seller"
                      + (f", {money(f['from_bond'])} EUR drawn from its bond" if f["from_bond"] else "")
                      + (f", {money(f['debt'])} EUR owed" if f["debt"] else ""))
    for r in out["refunded"]:
        console.print(f"refunded: request {r['request']}: {money(r['amount'])} EUR")
    if out["withdrawn"]:
        console.print(f"[green]withdrawn: {money(out['withdrawn'])} EUR[/] to {done.account}")
    if out["waiting"]:
        ends = min(w["dispute_window_ends"] for w in out["waiting"])
        console.print(f"{len(out['waiting'])} settlement(s) still in their dispute window (the first ends {iso(ends)})")


def _nothing_yet(out: dict[str, Any], day: str | None) -> tuple[str, str]:
    """Why nothing could be claimed, and when to come back."""
    if out["waiting"]:
        ends = min(w["dispute_window_ends"] for w in out["waiting"])
        return (f"nothing to claim yet: {len(out['waiting'])} settlement(s) of {day} are in their dispute window "
                f"until {iso(ends)}, and money moves only once they are final",
                f"run `flexledger claim --day {day}` after {iso(ends)}")
    if out["refunds_waiting"]:
        first = out["refunds_waiting"][0]
        return (f"nothing to claim yet: request {first['request']} cannot be refunded: {first['reason']}",
                "claim again once the day's settlements are final and its settlement window has closed")
    where = f" for {day}" if day else ""
    nothing = (f"nothing to claim{where} for {out['account']}: no settlement to make final, no refund due, "
               "nothing to withdraw")
    if out.get("settled"):
        return (nothing + f" (the day's {out['settled']} settlements are final)",
                "what was due was claimed already; check the account (--key) if you expected more")
    return nothing, "settle the day first (`flexledger settle --day D`), or check the account (--key)"


def dispute_command(
    offer: str = SettledOfferOption,
    isp: str = typer.Option(..., "--isp", help="The disputed ISP's start: ISO 8601 (UTC) or Unix seconds."),
    member: int | None = typer.Option(None, "--member", min=1,
                                      help="A portfolio offer: the member asset whose reading is disputed "
                                           "(default: the first whose meter signed otherwise than anchored)."),
    day: str | None = OptionalDayOption,
    market: int = MarketOption,
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Dispute an offer's settlement with the reading its meter signed for that ISP, as the
    oracle's store keeps it, when it differs from the anchored one (anyone may, during the
    settlement's dispute window). ReadingDisputes judges it: if the meter also signed the
    anchored reading it equivocated, and the offer's delivery in that ISP is void (nobody is paid
    from the oracle); otherwise the offer is settled again with the meter's values and the oracle
    that anchored the root is marked. For a portfolio offer the dispute concerns one member's
    reading; the other members' stand."""
    from flexledger.oracle.store import open_store
    from flexledger.settlement.day import dispute_ends, dispute_offer

    digest, isp_start, ctx, signer = _disputed(offer, isp, day, market, key)
    settings = STATE.settings
    done = dispute_offer(ctx, signer, digest, isp_start, open_store(settings.effective_database_url), member=member)
    if json_:
        emit_json({"offer": "0x" + digest.hex(), "isp_start": isp_start, "asset": done.asset, "oracle": done.oracle,
                   "equivocation": done.equivocation,
                   "anchored": {"importWh": done.anchored.import_wh, "exportWh": done.anchored.export_wh},
                   "signed": {"sequence": done.signed.sequence, "importWh": done.signed.import_wh,
                              "exportWh": done.signed.export_wh},
                   "before": _money(done.before), "after": _money(done.after)})
        return
    verdict = ("[yellow]meter equivocated[/]: it signed both readings; the ISP's delivery is void, no oracle marked"
               if done.equivocation else f"[green]dispute upheld[/]: oracle {done.oracle} marked")
    console.print(f"{verdict}: offer {offer[:12]}, ISP {iso(isp_start)}, asset {done.asset}: counted "
                  f"{done.anchored.import_wh} Wh in / {done.anchored.export_wh} Wh out, the meter signed "
                  f"{done.signed.import_wh} / {done.signed.export_wh} (reading {done.signed.sequence})")
    before, after = _money(done.before), _money(done.after)
    money = market_money(ctx.deployment)
    console.print(f"paid {money(before['payment'])} -> {money(after['payment'])} EUR, penalty "
                  f"{money(before['penalty'])} -> {money(after['penalty'])} EUR; final after "
                  f"{iso(dispute_ends(ctx, done.after))}")


def _disputed(offer: str, isp: str, day: str | None, market: int, key: Path | None) -> tuple[bytes, int, DayContext, Signer]:
    """A dispute's offer digest and ISP from the command line, the day's context (the day given,
    or the settled offer's own) and the disputer's signer."""
    from flexledger.settlement.day import day_context
    from flexledger.settlement.report import day_of_offer

    try:
        digest = bytes.fromhex(offer.removeprefix("0x"))
        isp_start = parse_time(isp)
    except ValueError:
        raise typer.BadParameter("--offer is 32 bytes of hex; --isp is Unix seconds or an ISO 8601 time") from None
    if len(digest) != 32:
        raise typer.BadParameter("--offer is the offer's 32-byte digest")
    chain = deployment(key)
    if day is not None:
        start = chain.day_start(market, parse_day(day))
    else:
        market, start = day_of_offer(chain, digest)
    return digest, isp_start, day_context(chain, market, start), chain.sender()


def dispute_baseline_command(
    offer: str = SettledOfferOption,
    isp: str = typer.Option(..., "--isp", help="The ISP whose standard baseline is disputed: ISO 8601 (UTC) or "
                                               "Unix seconds."),
    member: int | None = typer.Option(None, "--member", min=1,
                                      help="A portfolio offer: the member asset whose baseline is disputed "
                                           "(default: the first shown wrong)."),
    day: str | None = OptionalDayOption,
    market: int = MarketOption,
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Dispute the standard (ROLLING_AVERAGE) baseline an offer's settlement used for one ISP
    (anyone may, during the settlement's dispute window), with the evidence the oracle's store
    holds: the baseline's inputs and proof, and the meter's anchored readings (`flexledger readings
    proof`). BaselineDisputes judges it and computes the correction itself from the rule: the
    arithmetic, an input that is not its day's anchored reading, or a skipped similar day with one.
    The offer is settled again on the corrected baseline and, on the first correction of that
    baseline, the oracle that anchored it is slashed (to you, unless you sell the offer or own the meter)."""
    from flexledger.baselines.disputes import dispute_standard_baseline
    from flexledger.oracle.store import open_store
    from flexledger.settlement.day import dispute_ends

    digest, isp_start, ctx, signer = _disputed(offer, isp, day, market, key)
    settings = STATE.settings
    done = dispute_standard_baseline(ctx, signer, digest, isp_start, open_store(settings.effective_database_url),
                                     member=member)
    if json_:
        emit_json({"offer": "0x" + digest.hex(), "isp_start": isp_start, "asset": done.asset, "meter": done.meter,
                   "kind": done.kind.name, "which": done.which, "baseline_was_wh": done.was_wh,
                   "baseline_now_wh": done.now_wh, "oracle": done.oracle, "slashed": done.slashed,
                   "slashed_to": done.slashed_to, "tx": done.tx_hash,
                   "before": _money(done.before), "after": _money(done.after)})
        return
    shown = "no baseline (too few similar days): nothing delivered counts" if done.now_wh is None \
        else f"{done.now_wh} Wh"
    what = {"ARITHMETIC": "the rule over its own inputs", "INPUT": f"input {done.which} is not its day's anchored reading",
            "SKIPPED": f"the similar day {done.which} days before was skipped"}[done.kind.name]
    money = market_money(ctx.deployment)
    console.print(f"[green]baseline dispute upheld[/] ({what}): offer {offer[:12]}, ISP {iso(isp_start)}, asset "
                  f"{done.asset}: baseline {done.was_wh} Wh -> {shown}; oracle {done.oracle} "
                  + (f"slashed {money(done.slashed)} EUR to {done.slashed_to}" if done.slashed else "marked"))
    before, after = _money(done.before), _money(done.after)
    console.print(f"paid {money(before['payment'])} -> {money(after['payment'])} EUR, penalty "
                  f"{money(before['penalty'])} -> {money(after['penalty'])} EUR; final after "
                  f"{iso(dispute_ends(ctx, done.after))}")


def _market_view(isp: str, market: int, key: Path | None) -> tuple[int, MarketOnChain, Signer]:
    from flexledger.baselines.disputes import MarketOnChain

    try:
        isp_start = parse_time(isp)
    except ValueError:
        raise typer.BadParameter("--isp is Unix seconds or an ISO 8601 time") from None
    chain = deployment(key)
    return isp_start, MarketOnChain(chain, market), chain.sender()


def challenge_baseline_command(
    asset: int = BaselineAssetOption,
    isp: str = BaselineIspOption,
    days_back: int | None = typer.Option(None, "--days-back", min=1, max=64,
                                         help="The input day, as days before the ISP (default: the first used day "
                                              "with no reading anchored by the baselines in the oracle's store)."),
    market: int = MarketOption,
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Challenge an input day of a standard baseline that has no anchored reading at all (the oracle
    invented it; no proof can show an absence). Posts the contract's bond: the oracle answers with
    the day's anchored reading within the dispute window and takes it; unanswered, `flexledger
    uphold-baseline` puts the rule without that day in force and slashes the oracle (to you)."""
    from flexledger.baselines.disputes import challenge_standard_baseline
    from flexledger.oracle.store import open_store

    isp_start, view, signer = _market_view(isp, market, key)
    done = challenge_standard_baseline(view, signer, open_store(STATE.settings.effective_database_url), asset,
                                       isp_start, days_back=days_back)
    if json_:
        emit_json({"asset": asset, "meter": done.meter, "isp_start": done.isp_start, "days_back": done.days_back,
                   "net": done.net, "answer_by": done.answer_by, "bond": done.bond, "tx": done.tx_hash})
        return
    money = market_money(view.deployment)
    console.print(f"challenged the input {done.days_back} days before {iso(isp_start)} ({done.net} Wh) of "
                  f"{done.meter}'s standard baseline; bond {money(done.bond)} EUR; answers taken until "
                  f"{iso(done.answer_by)}, then `flexledger uphold-baseline --asset {asset} --isp {isp_start} "
                  f"--days-back {done.days_back}`")


def uphold_baseline_command(
    asset: int = BaselineAssetOption,
    isp: str = BaselineIspOption,
    days_back: int = typer.Option(..., "--days-back", min=1, max=64, help="The challenged day, as days before the ISP."),
    market: int = MarketOption,
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Uphold an unanswered challenge of a standard baseline's input day after its answer window
    (anyone may): the rule without that day is put in force, the oracle slashed on the first
    correction of that meter and ISP, the challenger's bond returned. Settlements already made on the
    old baseline are re-settled with the correction during their dispute windows (`applyCorrection`)."""
    from flexledger.baselines.disputes import uphold_standard_challenge
    from flexledger.oracle.store import open_store

    isp_start, view, signer = _market_view(isp, market, key)
    done = uphold_standard_challenge(view, signer, open_store(STATE.settings.effective_database_url), asset,
                                     isp_start, days_back)
    if json_:
        emit_json({"asset": asset, "isp_start": isp_start, "days_back": days_back, "lapsed": done.lapsed,
                   "baseline_now_wh": done.baseline_wh, "slashed": done.slashed, "tx": done.tx_hash})
        return
    if done.lapsed:
        console.print("the challenge lapsed: a correction since no longer averages that input; the bond went back")
        return
    shown = "no baseline (too few similar days)" if done.baseline_wh is None else f"{done.baseline_wh} Wh"
    money = market_money(view.deployment)
    console.print(f"[green]challenge upheld[/]: the standard baseline of asset {asset} for {iso(isp_start)} is now "
                  f"{shown}; oracle " + (f"slashed {money(done.slashed)} EUR" if done.slashed else "marked")
                  + "; the bond went back to the challenger")


def resettle_baseline_command(
    offer: str = SettledOfferOption,
    isp: str = typer.Option(..., "--isp", help="The ISP whose standard baseline was corrected: ISO 8601 (UTC) or "
                                               "Unix seconds."),
    member: int | None = typer.Option(None, "--member", min=1,
                                      help="A portfolio offer: the member asset whose baseline was corrected "
                                           "(default: the first that moved)."),
    day: str | None = OptionalDayOption,
    market: int = MarketOption,
    key: Path | None = KeyOption,
    json_: bool = JsonOption,
) -> None:
    """Re-settle an offer on the standard baseline in force (anyone may, during the settlement's
    dispute window) once an upheld challenge (`flexledger uphold-baseline`) or a dispute of another
    offer corrected the baseline it was settled on (`BaselineDisputes.applyCorrection`)."""
    from flexledger.baselines.disputes import resettle_on_correction
    from flexledger.settlement.day import dispute_ends

    digest, isp_start, ctx, signer = _disputed(offer, isp, day, market, key)
    done = resettle_on_correction(ctx, signer, digest, isp_start, member=member)
    before, after = _money(done.before), _money(done.after)
    if json_:
        emit_json({"offer": "0x" + digest.hex(), "isp_start": isp_start, "baseline_was_wh": done.baseline_was_wh,
                   "baseline_now_wh": done.baseline_now_wh, "tx": done.tx_hash, "before": before, "after": after})
        return
    money = market_money(ctx.deployment)
    console.print(f"[green]re-settled[/] offer {offer[:12]} on the corrected baseline of {iso(isp_start)}: "
                  f"{done.baseline_was_wh} -> {done.baseline_now_wh} Wh; paid {money(before['payment'])} -> "
                  f"{money(after['payment'])} EUR, penalty {money(before['penalty'])} -> {money(after['penalty'])} "
                  f"EUR; final after {iso(dispute_ends(ctx, done.after))}")


def _money(record: Record) -> dict[str, int]:
    from flexledger.settlement.records import record_money

    return record_money(record)
